/* SPDX-License-Identifier: MIT */
/*
 * Tencent gateway mode: the bind signature, the operations a gateway sends for its sub-devices
 * on $gateway/operation, the parser of the messages on both gateway topics, and the
 * acknowledgements of the cloud's change, search_devices and unbind_all. The contract is in
 * include/gw/tencent_gateway.h; protocol rules from docs/protocols/gateway.md, cited as §Gn.
 *
 * Pure: the only system call is getrandom(2) in gw_tencent_make_bind_random(); nothing logs.
 * MACs are wiped before return.
 */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "tencent-private.h"

#define TEXT_MAX 160   /* "<pid><dn>;<random>;<timestamp>" */
#define WHERE_MAX 40   /* "payload.devices[1499]." */

static const char *const type_names[] = {
	[GW_TENCENT_GW_BIND] = "bind",
	[GW_TENCENT_GW_UNBIND] = "unbind",
	[GW_TENCENT_GW_ONLINE] = "online",
	[GW_TENCENT_GW_OFFLINE] = "offline",
	[GW_TENCENT_GW_DESCRIBE_SUB_DEVICES] = "describe_sub_devices",
	[GW_TENCENT_GW_CHANGE] = "change",
	[GW_TENCENT_GW_SEARCH_DEVICES] = "search_devices",
	[GW_TENCENT_GW_UNBIND_ALL] = "unbind_all",
};

const char *gw_tencent_name_gw_type(enum gw_tencent_gw_type type)
{
	return gw_proto_name(type_names, N_ELEMENTS(type_names), type);
}

static bool valid_device(const char *product_id, const char *device_name)
{
	return gw_tencent_check_product_id(product_id, NULL) == 0 &&
	       gw_tencent_check_device_name(device_name, NULL) == 0;
}

int gw_tencent_build_gw_topic(enum gw_tencent_gw_topic kind, const char *product_id,
			      const char *device_name, char *buf, size_t size)
{
	if ((kind != GW_TENCENT_GW_OPERATION && kind != GW_TENCENT_GW_RESULT) ||
	    !valid_device(product_id, device_name))
		return -EINVAL;
	return gw_bprintf(buf, size, "$gateway/operation/%s%s/%s",
			  kind == GW_TENCENT_GW_RESULT ? "result/" : "", product_id, device_name);
}

int gw_tencent_classify_gw_topic(const char *topic, const char *product_id,
				 const char *device_name, enum gw_tencent_gw_topic *kind)
{
	char want[GW_TENCENT_TOPIC_MAX];
	int k;

	if (!topic || !kind)
		return -ENOENT;
	for (k = GW_TENCENT_GW_OPERATION; k <= GW_TENCENT_GW_RESULT; k++) {
		if (gw_tencent_build_gw_topic((enum gw_tencent_gw_topic)k, product_id, device_name,
					      want, sizeof(want)) < 0)
			return -ENOENT;
		if (strcmp(topic, want) == 0) {
			*kind = (enum gw_tencent_gw_topic)k;
			return 0;
		}
	}
	return -ENOENT;
}

int gw_tencent_sign_bind(enum gw_tencent_sign_method method, const char *key, size_t key_len,
			 const char *product_id, const char *device_name, uint32_t random,
			 uint64_t timestamp, char *buf, size_t size)
{
	const EVP_MD *md = gw_tencent_sign_md(method);
	unsigned char mac[EVP_MAX_MD_SIZE];
	char text[TEXT_MAX];
	int n, r;

	if (!md || !key || key_len == 0 || random > GW_TENCENT_BIND_RANDOM_MAX ||
	    !valid_device(product_id, device_name) || !buf)
		return -EINVAL;
	/* §G17: "%s%s;%d;%d" in the C SDK, decimal integers, no spaces */
	n = gw_bprintf(text, sizeof(text), "%s%s;%" PRIu32 ";%" PRIu64, product_id, device_name,
		       random, timestamp);
	if (n < 0)
		return -EINVAL;
	r = gw_proto_hmac(md, key, key_len, text, (size_t)n, mac);
	if (r >= 0)
		r = gw_proto_base64_encode(mac, (size_t)r, buf, size);
	explicit_bzero(mac, sizeof(mac));
	return r;
}

int gw_tencent_cert_bind_key(const char *pem, size_t len, char *buf, size_t size)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!pem || len == 0 || !buf)
		return -EINVAL;
	if (size < GW_TENCENT_CERT_KEY_MAX)
		return -ENOBUFS;
	if (!EVP_Digest(pem, len, md, &n, EVP_md5(), NULL) || n != 16)
		return -EIO;
	gw_proto_hex(md, n, false, buf);
	return 32;
}

int gw_tencent_make_bind_random(uint32_t *ret)
{
	uint32_t v;
	ssize_t got;

	do {
		got = getrandom(&v, sizeof(v), 0);
	} while (got < 0 && errno == EINTR);
	if (got < 0)
		return -errno;
	if ((size_t)got != sizeof(v))
		return -EIO;
	*ret = v & GW_TENCENT_BIND_RANDOM_MAX;
	return 0;
}

/* Dumps o (which it takes) with the §1.7 size limit of docs/protocols/tencent.md. */
static int dump(json_t *o, char **ret, size_t *ret_len)
{
	int r;

	if (!o)
		return -ENOMEM;
	r = gw_json_dump(o, GW_TENCENT_PAYLOAD_MAX, ret, ret_len);
	json_decref(o);
	return r;
}

/* {"type":T,"payload":{"devices":[device]}}; steals device. */
static int one_device(enum gw_tencent_gw_type type, json_t *device, char **ret, size_t *ret_len)
{
	return dump(json_pack("{s:s,s:{s:[o]}}", "type", type_names[type], "payload", "devices",
			      device),
		    ret, ret_len);
}

/* 32 lower-case hex digits, as gw_tencent_cert_bind_key() writes them. */
static bool valid_cert_key(const char *s)
{
	size_t i;

	if (!s || strlen(s) != GW_TENCENT_CERT_KEY_MAX - 1)
		return false;
	for (i = 0; s[i]; i++)
		if (!strchr("0123456789abcdef", s[i]))
			return false;
	return true;
}

int gw_tencent_build_bind(const struct gw_tencent_bind *b, char **ret, size_t *ret_len,
			  char *reason)
{
	char sig[GW_TENCENT_BIND_SIGNATURE_MAX];
	int r;

	if (!b) {
		set_reason(reason, "no bind");
		return -EINVAL;
	}
	r = gw_tencent_check_product_id(b->product_id, reason);
	if (r == 0)
		r = gw_tencent_check_device_name(b->device_name, reason);
	if (r == 0 && !b->certificate)
		r = gw_tencent_check_psk(b->key, reason);
	if (r == 0 && b->certificate && !valid_cert_key(b->key)) {
		set_reason(reason, "a certificate bind is keyed with 32 lower-case hex digits");
		r = -EINVAL;
	}
	if (r == 0 && !gw_tencent_name_sign_method(b->sign_method)) {
		set_reason(reason, "unknown sign method");
		r = -EINVAL;
	}
	if (r == 0 && b->random > GW_TENCENT_BIND_RANDOM_MAX) {
		set_reason(reason, "the random must be 0..%u", GW_TENCENT_BIND_RANDOM_MAX);
		r = -EINVAL;
	}
	if (r == 0 && b->timestamp > INT64_MAX) {
		set_reason(reason, "the timestamp is out of range");
		r = -EINVAL;
	}
	if (r < 0)
		return r;
	r = gw_tencent_sign_bind(b->sign_method, b->key, strlen(b->key), b->product_id,
				 b->device_name, b->random, b->timestamp, sig, sizeof(sig));
	if (r < 0) {
		set_reason(reason, "libcrypto cannot compute the MAC");
		return r;
	}
	return one_device(GW_TENCENT_GW_BIND,
			  json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s}", "product_id", b->product_id,
				    "device_name", b->device_name, "signature", sig, "random",
				    (json_int_t)b->random, "timestamp", (json_int_t)b->timestamp,
				    "signmethod", gw_tencent_name_sign_method(b->sign_method),
				    "authtype", b->certificate ? "certificate" : "psk"),
			  ret, ret_len);
}

int gw_tencent_build_gw_op(enum gw_tencent_gw_type type, const char *product_id,
			   const char *device_name, char **ret, size_t *ret_len)
{
	if ((type != GW_TENCENT_GW_UNBIND && type != GW_TENCENT_GW_ONLINE &&
	     type != GW_TENCENT_GW_OFFLINE) ||
	    !valid_device(product_id, device_name))
		return -EINVAL;
	return one_device(type,
			  json_pack("{s:s,s:s}", "product_id", product_id, "device_name",
				    device_name),
			  ret, ret_len);
}

int gw_tencent_build_describe_sub_devices(char **ret, size_t *ret_len)
{
	return dump(json_pack("{s:s}", "type", type_names[GW_TENCENT_GW_DESCRIBE_SUB_DEVICES]),
		    ret, ret_len);
}

int gw_tencent_build_change_ack(int status, const struct gw_tencent_gw_device *devs, size_t n,
				char **ret, size_t *ret_len)
{
	json_t *a, *o;
	size_t i;

	if ((status != 0 && status != 1) || !devs || n == 0 ||
	    n > GW_TENCENT_GATEWAY_DEVICES_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!valid_device(devs[i].product_id, devs[i].device_name))
			return -EINVAL;
	a = json_array();
	for (i = 0; a && i < n; i++) {
		if (json_array_append_new(a, json_pack("{s:s,s:s,s:i}", "product_id",
						       devs[i].product_id, "device_name",
						       devs[i].device_name, "result",
						       devs[i].result))) {
			json_decref(a);
			a = NULL;
		}
	}
	if (!a)
		return -ENOMEM;
	o = json_pack("{s:s,s:{s:i,s:o}}", "type", type_names[GW_TENCENT_GW_CHANGE], "payload",
		      "status", status, "devices", a);
	return dump(o, ret, ret_len);
}

int gw_tencent_build_search_devices_ack(int status, int result, char **ret, size_t *ret_len)
{
	if (status != 0 && status != 1)
		return -EINVAL;
	return dump(json_pack("{s:s,s:{s:i,s:i}}", "type",
			      type_names[GW_TENCENT_GW_SEARCH_DEVICES], "payload", "status",
			      status, "result", result),
		    ret, ret_len);
}

int gw_tencent_build_unbind_all_ack(int result, char **ret, size_t *ret_len)
{
	return dump(json_pack("{s:s,s:{s:i}}", "type", type_names[GW_TENCENT_GW_UNBIND_ALL],
			      "payload", "result", result),
		    ret, ret_len);
}

void gw_tencent_gw_msg_free(struct gw_tencent_gw_msg *m)
{
	if (!m)
		return;
	free(m->devices);
	memset(m, 0, sizeof(*m));
}

/* A required string member of o into dst (size bytes, the value 1..size-1 printable ASCII
 * without space). */
static int get_word(json_t *o, const char *where, const char *name, char *dst, size_t size,
		    char *reason)
{
	const char *s;
	size_t n;

	s = get_string(o, where, name, &n, reason);
	if (!s)
		return -EBADMSG;
	if (n >= size || strlen(s) != n ||
	    !gw_proto_printable_n(s, n, 1, size - 1, false, NULL)) {
		set_reason(reason, "\"%s%s\" is not a valid value", where, name);
		return -EBADMSG;
	}
	memcpy(dst, s, n + 1);
	return 0;
}

/* What a device entry must carry besides its identity. */
enum entry_rule {
	ENTRY_PLAIN,
	ENTRY_RESULT,
	ENTRY_BIND,
};

static int parse_device(json_t *o, const char *where, enum entry_rule rule,
			struct gw_tencent_gw_device *d, char *reason)
{
	json_int_t v = 0;
	int r;

	if (!json_is_object(o)) {
		set_reason(reason, "\"%s\" is not an object", where);
		return -EBADMSG;
	}
	r = get_word(o, where, "product_id", d->product_id, sizeof(d->product_id), reason);
	if (r == 0)
		r = get_word(o, where, "device_name", d->device_name, sizeof(d->device_name),
			     reason);
	if (r == 0 && !valid_device(d->product_id, d->device_name)) {
		set_reason(reason, "\"%s\" names no valid device", where);
		r = -EBADMSG;
	}
	if (r == 0) {
		/* a result where none is required is still read */
		r = get_int(o, where, "result", rule == ENTRY_RESULT, INT_MIN, INT_MAX, &v, reason);
		d->has_result = r == 1;
		d->result = (int)v;
		r = r < 0 ? r : 0;
	}
	if (r < 0 || rule != ENTRY_BIND)
		return r;
	r = get_word(o, where, "signature", d->signature, sizeof(d->signature), reason);
	if (r == 0)
		r = get_word(o, where, "signmethod", d->signmethod, sizeof(d->signmethod), reason);
	if (r == 0)
		r = get_word(o, where, "authtype", d->authtype, sizeof(d->authtype), reason);
	if (r == 0)
		r = get_int(o, where, "random", true, 0, GW_TENCENT_BIND_RANDOM_MAX, &v, reason);
	if (r < 0)
		return r;
	d->random = (uint32_t)v;
	r = get_int(o, where, "timestamp", true, 0, INT64_MAX, &v, reason);
	if (r < 0)
		return r;
	d->timestamp = (uint64_t)v;
	return 0;
}

/* payload.devices: min..max entries, each by rule; absent counts as empty. */
static int parse_devices(json_t *payload, size_t min, size_t max, enum entry_rule rule,
			 struct gw_tencent_gw_msg *ret, char *reason)
{
	json_t *a = payload ? json_object_get(payload, "devices") : NULL;
	char where[WHERE_MAX];
	size_t i, n;
	int r = 0;

	if (a && !json_is_array(a)) {
		set_reason(reason, "\"payload.devices\" is not an array");
		return -EBADMSG;
	}
	n = json_array_size(a); /* 0 for NULL */
	if (n < min || n > max) {
		if (!a)
			set_reason(reason, "no \"payload.devices\"");
		else
			set_reason(reason, "\"payload.devices\" holds %zu entries, not %zu..%zu",
				   n, min, max);
		return -EBADMSG;
	}
	if (n == 0)
		return 0;
	ret->devices = calloc(n, sizeof(*ret->devices));
	if (!ret->devices)
		return -ENOMEM;
	ret->n = n;
	for (i = 0; r == 0 && i < n; i++) {
		snprintf(where, sizeof(where), "payload.devices[%zu].", i);
		r = parse_device(json_array_get(a, i), where, rule, &ret->devices[i], reason);
	}
	return r;
}

/* payload.status, 0 or 1, required. */
static int get_status(json_t *payload, struct gw_tencent_gw_msg *ret, char *reason)
{
	json_int_t v = 0;
	int r = get_int(payload, "payload.", "status", true, 0, 1, &v, reason);

	if (r < 0)
		return r;
	ret->has_status = true;
	ret->status = (int)v;
	return 0;
}

static int get_result(json_t *payload, struct gw_tencent_gw_msg *ret, char *reason)
{
	json_int_t v = 0;
	int r = get_int(payload, "payload.", "result", true, INT_MIN, INT_MAX, &v, reason);

	if (r < 0)
		return r;
	ret->has_result = true;
	ret->result = (int)v;
	return 0;
}

static int parse_payload(enum gw_tencent_direction dir, json_t *root,
			 struct gw_tencent_gw_msg *ret, char *reason)
{
	const size_t max = GW_TENCENT_GATEWAY_DEVICES_MAX;
	bool up = dir == GW_TENCENT_UP;
	json_t *payload = json_object_get(root, "payload");
	enum gw_tencent_gw_type t = ret->type;
	int r;

	if (payload && !json_is_object(payload)) {
		set_reason(reason, "\"payload\" is not an object");
		return -EBADMSG;
	}
	/* what has nothing more to read */
	if (t == GW_TENCENT_GW_DESCRIBE_SUB_DEVICES && up)
		return 0;
	if (t == GW_TENCENT_GW_DESCRIBE_SUB_DEVICES)
		return parse_devices(payload, 0, max, ENTRY_PLAIN, ret, reason);
	if (t == GW_TENCENT_GW_UNBIND_ALL && !up)
		return 0;
	if (!payload) {
		set_reason(reason, "no \"payload\"");
		return -EBADMSG;
	}
	switch (t) {
	case GW_TENCENT_GW_BIND:
		if (up)
			return parse_devices(payload, 1, 1, ENTRY_BIND, ret, reason);
		return parse_devices(payload, 1, max, ENTRY_RESULT, ret, reason);
	case GW_TENCENT_GW_UNBIND:
	case GW_TENCENT_GW_ONLINE:
	case GW_TENCENT_GW_OFFLINE:
		return parse_devices(payload, 1, max, up ? ENTRY_PLAIN : ENTRY_RESULT, ret, reason);
	case GW_TENCENT_GW_CHANGE:
		r = get_status(payload, ret, reason);
		if (r < 0)
			return r;
		return parse_devices(payload, 1, max, up ? ENTRY_RESULT : ENTRY_PLAIN, ret, reason);
	case GW_TENCENT_GW_SEARCH_DEVICES:
		r = get_status(payload, ret, reason);
		return r < 0 || !up ? r : get_result(payload, ret, reason);
	case GW_TENCENT_GW_UNBIND_ALL:
		return get_result(payload, ret, reason);
	case GW_TENCENT_GW_DESCRIBE_SUB_DEVICES:
		break;
	}
	return 0;
}

int gw_tencent_parse_gw_msg(enum gw_tencent_direction dir, const char *buf, size_t len,
			    struct gw_tencent_gw_msg *ret, char *reason)
{
	json_t *root = NULL;
	const char *s;
	size_t n;
	int r, i;

	memset(ret, 0, sizeof(*ret));
	if (dir != GW_TENCENT_UP && dir != GW_TENCENT_DOWN)
		return -EINVAL;
	r = load_object(buf, len, GW_TENCENT_PAYLOAD_MAX, &root, reason);
	if (r < 0)
		return r;
	s = get_string(root, "", "type", &n, reason);
	if (!s) {
		r = -EBADMSG;
		goto out;
	}
	/* a NUL inside the string matches no name */
	i = strlen(s) == n ? gw_proto_lookup(type_names, N_ELEMENTS(type_names), s) : -EINVAL;
	if (i < 0) {
		set_reason(reason, "unknown type");
		r = -ENOENT;
		goto out;
	}
	ret->type = (enum gw_tencent_gw_type)i;
	r = parse_payload(dir, root, ret, reason);
out:
	json_decref(root);
	if (r < 0)
		gw_tencent_gw_msg_free(ret);
	return r;
}
