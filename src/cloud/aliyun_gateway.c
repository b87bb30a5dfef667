/* SPDX-License-Identifier: MIT */
/*
 * Aliyun gateway mode: the sub-device sign, the requests a gateway sends for its sub-devices
 * (topology, session, registration), the parsers of the replies and pushes it receives, and the
 * gateway's topics. The contract is in include/gw/aliyun_gateway.h; protocol rules from
 * docs/protocols/gateway.md, cited as §Gn.
 *
 * Pure: no I/O, nothing logs. The envelope, the id rules, the HMAC and the registration sign
 * are those of the rest of the module (aliyun-private.h); parsers check every member they take
 * and say in the reason what is wrong.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aliyun-private.h"
#include "proto.h"

#define CONTENT_MAX 768 /* "clientId<cid>deviceName<dn>productKey<pk>timestamp<ts>" */
#define WHERE_MAX 32    /* "data.proxieds[1999]." */

enum prefix {
	SYS,     /* /sys/<pk>/<dn>/<suffix> */
	SESSION, /* /ext/session/<pk>/<dn>/<suffix> */
	ERROR,   /* /ext/error/<pk>/<dn> */
};

struct topic_def {
	enum prefix prefix;
	const char *suffix;
	bool down;
};

static const struct topic_def topics[] = {
	[GW_ALIYUN_GW_TOPO_ADD] = { SYS, "thing/topo/add", false },
	[GW_ALIYUN_GW_TOPO_ADD_REPLY] = { SYS, "thing/topo/add_reply", true },
	[GW_ALIYUN_GW_TOPO_DELETE] = { SYS, "thing/topo/delete", false },
	[GW_ALIYUN_GW_TOPO_DELETE_REPLY] = { SYS, "thing/topo/delete_reply", true },
	[GW_ALIYUN_GW_TOPO_GET] = { SYS, "thing/topo/get", false },
	[GW_ALIYUN_GW_TOPO_GET_REPLY] = { SYS, "thing/topo/get_reply", true },
	[GW_ALIYUN_GW_TOPO_ADD_NOTIFY] = { SYS, "thing/topo/add/notify", true },
	[GW_ALIYUN_GW_TOPO_ADD_NOTIFY_REPLY] = { SYS, "thing/topo/add/notify_reply", false },
	[GW_ALIYUN_GW_TOPO_CHANGE] = { SYS, "thing/topo/change", true },
	[GW_ALIYUN_GW_SUB_REGISTER] = { SYS, "thing/sub/register", false },
	[GW_ALIYUN_GW_SUB_REGISTER_REPLY] = { SYS, "thing/sub/register_reply", true },
	[GW_ALIYUN_GW_PRODUCT_REGISTER] = { SYS, "thing/proxy/provisioning/product_register",
					    false },
	[GW_ALIYUN_GW_PRODUCT_REGISTER_REPLY] = { SYS,
						  "thing/proxy/provisioning/product_register_reply",
						  true },
	[GW_ALIYUN_GW_LOGIN] = { SESSION, "combine/login", false },
	[GW_ALIYUN_GW_LOGIN_REPLY] = { SESSION, "combine/login_reply", true },
	[GW_ALIYUN_GW_BATCH_LOGIN] = { SESSION, "combine/batch_login", false },
	[GW_ALIYUN_GW_BATCH_LOGIN_REPLY] = { SESSION, "combine/batch_login_reply", true },
	[GW_ALIYUN_GW_LOGOUT] = { SESSION, "combine/logout", false },
	[GW_ALIYUN_GW_LOGOUT_REPLY] = { SESSION, "combine/logout_reply", true },
	[GW_ALIYUN_GW_BATCH_LOGOUT] = { SESSION, "combine/batch_logout", false },
	[GW_ALIYUN_GW_BATCH_LOGOUT_REPLY] = { SESSION, "combine/batch_logout_reply", true },
	[GW_ALIYUN_GW_ERROR] = { ERROR, "error", true },
	[GW_ALIYUN_GW_DISABLE] = { SYS, "thing/disable", true },
	[GW_ALIYUN_GW_DISABLE_REPLY] = { SYS, "thing/disable_reply", false },
	[GW_ALIYUN_GW_ENABLE] = { SYS, "thing/enable", true },
	[GW_ALIYUN_GW_ENABLE_REPLY] = { SYS, "thing/enable_reply", false },
	[GW_ALIYUN_GW_DELETE] = { SYS, "thing/delete", true },
	[GW_ALIYUN_GW_DELETE_REPLY] = { SYS, "thing/delete_reply", false },
};

static const char *const prefixes[] = {
	[SYS] = "/sys/",
	[SESSION] = "/ext/session/",
	[ERROR] = "/ext/error/",
};

/* §G3: the documented spelling; the platform takes any case. */
static const char *const gw_sign_method_names[] = {
	[GW_ALIYUN_HMAC_SHA256] = "hmacSha256",
	[GW_ALIYUN_HMAC_SHA1] = "hmacSha1",
	[GW_ALIYUN_HMAC_MD5] = "hmacMd5",
};

static const char *const action_names[] = {
	[GW_ALIYUN_GW_ACT_OK] = "ok",
	[GW_ALIYUN_GW_ACT_RELOGIN] = "relogin",
	[GW_ALIYUN_GW_ACT_READD] = "readd",
	[GW_ALIYUN_GW_ACT_BAD_SECRET] = "bad_secret",
	[GW_ALIYUN_GW_ACT_BACKOFF] = "backoff",
	[GW_ALIYUN_GW_ACT_DISABLED] = "disabled",
	[GW_ALIYUN_GW_ACT_GONE] = "gone",
	[GW_ALIYUN_GW_ACT_TAKEN_OVER] = "taken_over",
	[GW_ALIYUN_GW_ACT_REFUSED] = "refused",
	[GW_ALIYUN_GW_ACT_RETRY] = "retry",
};

const char *gw_aliyun_name_gw_topic(enum gw_aliyun_gw_topic kind)
{
	return (unsigned)kind < N_ELEMENTS(topics) ? topics[kind].suffix : NULL;
}

const char *gw_aliyun_gw_sign_method(enum gw_aliyun_sign_method method)
{
	return gw_proto_name(gw_sign_method_names, N_ELEMENTS(gw_sign_method_names), method);
}

const char *gw_aliyun_name_gw_action(enum gw_aliyun_gw_action action)
{
	return gw_proto_name(action_names, N_ELEMENTS(action_names), action);
}

enum gw_aliyun_gw_action gw_aliyun_classify_gw_code(int code)
{
	switch (code) {
	case GW_ALIYUN_CODE_OK:
		return GW_ALIYUN_GW_ACT_OK;
	case 520:
		return GW_ALIYUN_GW_ACT_RELOGIN;
	case 6401:
		return GW_ALIYUN_GW_ACT_READD;
	case 6287:
		return GW_ALIYUN_GW_ACT_BAD_SECRET;
	case 428:
	case 429:
		return GW_ALIYUN_GW_ACT_BACKOFF;
	case 522:
		return GW_ALIYUN_GW_ACT_DISABLED;
	case 521:
	case 6100:
		return GW_ALIYUN_GW_ACT_GONE;
	case 427:
		return GW_ALIYUN_GW_ACT_TAKEN_OVER;
	case 6402:
		return GW_ALIYUN_GW_ACT_REFUSED;
	default:
		if (code >= 400 && code < 500)
			return GW_ALIYUN_GW_ACT_REFUSED;
		return GW_ALIYUN_GW_ACT_RETRY;
	}
}

int gw_aliyun_build_gw_topic(enum gw_aliyun_gw_topic kind, const char *product_key,
			     const char *device_name, char *buf, size_t size)
{
	const struct topic_def *t;

	if ((unsigned)kind >= N_ELEMENTS(topics) || !gw_aliyun_valid_label(product_key) ||
	    !gw_aliyun_valid_device_name(device_name))
		return -EINVAL;
	t = &topics[kind];
	if (t->prefix == ERROR)
		return gw_bprintf(buf, size, "%s%s/%s", prefixes[ERROR], product_key, device_name);
	return gw_bprintf(buf, size, "%s%s/%s/%s", prefixes[t->prefix], product_key, device_name,
			  t->suffix);
}

/* Copies the topic level at *s (up to '/' or the end) into dst (GW_ALIYUN_ID_MAX bytes) and
 * moves *s past it; false when it is empty or too long. */
static bool take_level(const char **s, char *dst)
{
	size_t n = strcspn(*s, "/");

	if (n == 0 || n >= GW_ALIYUN_ID_MAX)
		return false;
	memcpy(dst, *s, n);
	dst[n] = '\0';
	*s += n;
	return true;
}

/* "<prefix><pk>/<dn>" and what follows (*rest: "" or "/..."). */
static bool split_device(const char *topic, enum prefix p, char *pk, char *dn, const char **rest)
{
	const char *s = topic;
	size_t n = strlen(prefixes[p]);

	if (strncmp(s, prefixes[p], n) != 0)
		return false;
	s += n;
	if (!take_level(&s, pk) || *s++ != '/' || !take_level(&s, dn))
		return false;
	*rest = s;
	return gw_aliyun_valid_label(pk) && gw_aliyun_valid_device_name(dn);
}

int gw_aliyun_classify_gw_topic(const char *topic, enum gw_aliyun_gw_topic *kind,
				char *product_key, char *device_name)
{
	const char *rest = NULL;
	enum prefix p;
	size_t i;

	if (!topic || !kind || !product_key || !device_name)
		return -ENOENT;
	for (p = SYS; p <= ERROR; p++)
		if (split_device(topic, p, product_key, device_name, &rest))
			break;
	if (p > ERROR)
		goto none;
	if (p == ERROR) {
		if (*rest)
			goto none;
		*kind = GW_ALIYUN_GW_ERROR;
		return 0;
	}
	if (*rest++ != '/')
		goto none;
	for (i = 0; i < N_ELEMENTS(topics); i++) {
		if (topics[i].down && topics[i].prefix == p &&
		    strcmp(rest, topics[i].suffix) == 0) {
			*kind = (enum gw_aliyun_gw_topic)i;
			return 0;
		}
	}
none:
	product_key[0] = device_name[0] = '\0';
	return -ENOENT;
}

int gw_aliyun_topic_device(const char *topic, char *product_key, char *device_name)
{
	const char *rest;

	if (topic && product_key && device_name &&
	    split_device(topic, SYS, product_key, device_name, &rest) && rest[0] == '/' &&
	    rest[1])
		return 0;
	if (product_key)
		product_key[0] = '\0';
	if (device_name)
		device_name[0] = '\0';
	return -ENOENT;
}

/* A DeviceSecret or ProductSecret: 1..128 printable ASCII without space. */
static bool valid_secret_n(const char *s, size_t n)
{
	return gw_proto_printable_n(s, n, 1, GW_ALIYUN_SECRET_MAX - 1, false, NULL);
}

static bool valid_secret(const char *s)
{
	return gw_proto_printable(s, 1, GW_ALIYUN_SECRET_MAX - 1, false, NULL);
}

/* The identity of s; the reason names the member. */
static int check_identity(const struct gw_aliyun_subdev *s, char *reason)
{
	if (!s) {
		set_reason(reason, "no sub-device");
		return -EINVAL;
	}
	if (!gw_aliyun_valid_label(s->product_key)) {
		set_reason(reason, "the sub-device's ProductKey must be 1..64 characters of "
				   "A-Z a-z 0-9 -");
		return -EINVAL;
	}
	if (!gw_aliyun_valid_device_name(s->device_name)) {
		set_reason(reason, "the sub-device's DeviceName must be 1..64 characters of "
				   "A-Z a-z 0-9 - _ @ . :");
		return -EINVAL;
	}
	return 0;
}

int gw_aliyun_sign_subdev(enum gw_aliyun_sign_method method, bool upper,
			  const struct gw_aliyun_subdev *s, struct gw_aliyun_subdev_sign *ret,
			  char *reason)
{
	char content[CONTENT_MAX];
	int r, n;

	memset(ret, 0, sizeof(*ret));
	r = check_identity(s, reason);
	if (r < 0)
		return r;
	ret->sign_method = gw_aliyun_gw_sign_method(method);
	if (!ret->sign_method) {
		set_reason(reason, "unknown sign method");
		r = -EINVAL;
	} else if (!valid_secret(s->device_secret)) {
		set_reason(reason, "the DeviceSecret must be 1..128 printable characters without "
				   "space");
		r = -EINVAL;
	} else if (s->client_id && !gw_proto_printable(s->client_id, 1,
							 GW_ALIYUN_CLIENT_ID_MAX - 1, false,
							 NULL)) {
		set_reason(reason, "the client id must be 1..%d printable characters without "
				   "space", GW_ALIYUN_CLIENT_ID_MAX - 1);
		r = -EINVAL;
	}
	if (r < 0)
		goto out;
	if (s->client_id)
		r = gw_bprintf(ret->client_id, sizeof(ret->client_id), "%s", s->client_id);
	else
		r = gw_bprintf(ret->client_id, sizeof(ret->client_id), "%s.%s", s->product_key,
			       s->device_name);
	if (r < 0)
		goto out;
	snprintf(ret->timestamp, sizeof(ret->timestamp), "%" PRIu64, s->timestamp_ms);
	/* §G3: every parameter but sign, signMethod and cleanSession, sorted by name */
	n = gw_bprintf(content, sizeof(content), "clientId%sdeviceName%sproductKey%stimestamp%s",
		       ret->client_id, s->device_name, s->product_key, ret->timestamp);
	if (n < 0) {
		r = n;
		goto out;
	}
	r = gw_aliyun_sign_hex(method, s->device_secret, strlen(s->device_secret), content,
			       (size_t)n, upper, ret->sign, sizeof(ret->sign));
out:
	if (r < 0) {
		explicit_bzero(ret, sizeof(*ret));
		if (r == -ENOBUFS)
			set_reason(reason, "the client id is too long");
		else if (r == -EIO)
			set_reason(reason, "libcrypto cannot compute the MAC");
	}
	return r < 0 ? r : 0;
}

static int check_count(size_t n, size_t max, char *reason)
{
	if (n >= 1 && n <= max)
		return 0;
	set_reason(reason, "%zu sub-devices: one request takes 1..%zu", n, max);
	return -EINVAL;
}

/* {"productKey","deviceName"} of s, or NULL (-ENOMEM). */
static json_t *identity(const struct gw_aliyun_subdev *s)
{
	return json_pack("{s:s,s:s}", "productKey", s->product_key, "deviceName", s->device_name);
}

/* [{"productKey","deviceName"},…] of subs[0..n) in *ret. */
static int identity_list(const struct gw_aliyun_subdev *subs, size_t n, size_t max,
			 json_t **ret, char *reason)
{
	json_t *a;
	size_t i;
	int r;

	*ret = NULL;
	r = check_count(n, max, reason);
	for (i = 0; r == 0 && subs && i < n; i++)
		r = check_identity(&subs[i], reason);
	if (r == 0 && !subs)
		r = -EINVAL;
	if (r < 0)
		return r;
	a = json_array();
	for (i = 0; a && i < n; i++) {
		if (json_array_append_new(a, identity(&subs[i]))) {
			json_decref(a);
			a = NULL;
		}
	}
	*ret = a;
	return a ? 0 : -ENOMEM;
}

/* The signed entry of s in the member order of form. */
enum entry_form {
	ENTRY_TOPO_ADD, /* productKey, deviceName, clientId, timestamp, signmethod, sign (§G4) */
	ENTRY_LOGIN,    /* productKey, deviceName, clientId, timestamp, signMethod, sign,
			   cleanSession (§G7) */
	ENTRY_BATCH,    /* productKey, deviceName, clientId, timestamp, cleanSession, sign (§G8) */
};

static int signed_entry(enum entry_form form, enum gw_aliyun_sign_method method, bool upper,
			const struct gw_aliyun_subdev *s, bool clean_session, json_t **ret,
			char *reason)
{
	const char *clean = clean_session ? "true" : "false";
	struct gw_aliyun_subdev_sign sg;
	int r;

	*ret = NULL;
	r = gw_aliyun_sign_subdev(method, upper, s, &sg, reason);
	if (r < 0)
		return r;
	switch (form) {
	case ENTRY_TOPO_ADD:
		*ret = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "productKey", s->product_key,
				 "deviceName", s->device_name, "clientId", sg.client_id,
				 "timestamp", sg.timestamp, "signmethod", sg.sign_method, "sign",
				 sg.sign);
		break;
	case ENTRY_LOGIN:
		*ret = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "productKey", s->product_key,
				 "deviceName", s->device_name, "clientId", sg.client_id,
				 "timestamp", sg.timestamp, "signMethod", sg.sign_method, "sign",
				 sg.sign, "cleanSession", clean);
		break;
	case ENTRY_BATCH:
		*ret = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "productKey", s->product_key,
				 "deviceName", s->device_name, "clientId", sg.client_id,
				 "timestamp", sg.timestamp, "cleanSession", clean, "sign", sg.sign);
		break;
	}
	return *ret ? 0 : -ENOMEM;
}

/* [signed entries] of subs[0..n) in *ret. */
static int signed_list(enum entry_form form, enum gw_aliyun_sign_method method, bool upper,
		       const struct gw_aliyun_subdev *subs, size_t n, size_t max,
		       bool clean_session, json_t **ret, char *reason)
{
	json_t *a, *e;
	size_t i;
	int r;

	*ret = NULL;
	r = check_count(n, max, reason);
	if (r < 0)
		return r;
	if (!subs)
		return -EINVAL;
	a = json_array();
	if (!a)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		r = signed_entry(form, method, upper, &subs[i], clean_session, &e, reason);
		if (r == 0 && json_array_append_new(a, e))
			r = -ENOMEM;
		if (r < 0) {
			json_decref(a);
			return r;
		}
	}
	*ret = a;
	return 0;
}

/* Sends params (stolen) in the envelope, or passes on r. */
static int finish(int r, uint32_t id, json_t *params, const char *method, char **ret,
		  size_t *ret_len)
{
	if (r < 0) {
		json_decref(params);
		return r;
	}
	return gw_aliyun_build_request(id, true, params, method, ret, ret_len);
}

int gw_aliyun_build_topo_add(uint32_t id, enum gw_aliyun_sign_method method, bool upper,
			     const struct gw_aliyun_subdev *subs, size_t n, char **ret,
			     size_t *ret_len, char *reason)
{
	json_t *p;
	int r = signed_list(ENTRY_TOPO_ADD, method, upper, subs, n, GW_ALIYUN_TOPO_ADD_MAX, false,
			    &p, reason);

	return finish(r, id, p, "thing.topo.add", ret, ret_len);
}

int gw_aliyun_build_topo_delete(uint32_t id, const struct gw_aliyun_subdev *subs, size_t n,
				char **ret, size_t *ret_len, char *reason)
{
	json_t *p;
	int r = identity_list(subs, n, GW_ALIYUN_TOPO_ADD_MAX, &p, reason);

	return finish(r, id, p, "thing.topo.delete", ret, ret_len);
}

int gw_aliyun_build_topo_get(uint32_t id, char **ret, size_t *ret_len)
{
	return gw_aliyun_build_request(id, true, json_object(), "thing.topo.get", ret, ret_len);
}

int gw_aliyun_build_login(uint32_t id, enum gw_aliyun_sign_method method, bool upper,
			  const struct gw_aliyun_subdev *sub, bool clean_session, char **ret,
			  size_t *ret_len, char *reason)
{
	json_t *p;
	int r = signed_entry(ENTRY_LOGIN, method, upper, sub, clean_session, &p, reason);

	return finish(r, id, p, "combine.login", ret, ret_len);
}

int gw_aliyun_build_batch_login(uint32_t id, enum gw_aliyun_sign_method method, bool upper,
				const struct gw_aliyun_subdev *subs, size_t n, bool clean_session,
				char **ret, size_t *ret_len, char *reason)
{
	json_t *list, *p = NULL;
	int r = signed_list(ENTRY_BATCH, method, upper, subs, n, GW_ALIYUN_BATCH_LOGIN_MAX,
			    clean_session, &list, reason);

	if (r == 0) {
		/* "o" steals list, also when json_pack fails */
		p = json_pack("{s:s,s:o}", "signMethod", gw_aliyun_gw_sign_method(method),
			      "deviceList", list);
		r = p ? 0 : -ENOMEM;
	}
	return finish(r, id, p, NULL, ret, ret_len);
}

int gw_aliyun_build_logout(uint32_t id, const struct gw_aliyun_subdev *sub, char **ret,
			   size_t *ret_len, char *reason)
{
	int r = check_identity(sub, reason);

	return finish(r, id, r < 0 ? NULL : identity(sub), "combine.logout", ret, ret_len);
}

int gw_aliyun_build_batch_logout(uint32_t id, const struct gw_aliyun_subdev *subs, size_t n,
				 char **ret, size_t *ret_len, char *reason)
{
	json_t *p;
	int r = identity_list(subs, n, GW_ALIYUN_BATCH_LOGIN_MAX, &p, reason);

	return finish(r, id, p, NULL, ret, ret_len);
}

int gw_aliyun_build_sub_register(uint32_t id, const struct gw_aliyun_subdev *subs, size_t n,
				 char **ret, size_t *ret_len, char *reason)
{
	json_t *p;
	int r = identity_list(subs, n, GW_ALIYUN_SUB_REGISTER_MAX, &p, reason);

	return finish(r, id, p, "thing.sub.register", ret, ret_len);
}

int gw_aliyun_sign_proxied(enum gw_aliyun_sign_method method, bool upper,
			   const struct gw_aliyun_proxied *s, char *buf, size_t size,
			   char *reason)
{
	struct gw_aliyun_subdev ident = { 0 };
	int r;

	if (!s) {
		set_reason(reason, "no sub-device");
		return -EINVAL;
	}
	ident.product_key = s->product_key;
	ident.device_name = s->device_name;
	r = check_identity(&ident, reason);
	if (r < 0)
		return r;
	if (!gw_aliyun_gw_sign_method(method)) {
		set_reason(reason, "unknown sign method");
		return -EINVAL;
	}
	if (!valid_secret(s->product_secret)) {
		set_reason(reason, "the ProductSecret must be 1..128 printable characters "
				   "without space");
		return -EINVAL;
	}
	if (!gw_aliyun_valid_random(s->random)) {
		set_reason(reason, "the random must be 1..64 characters of A-Z a-z 0-9");
		return -EINVAL;
	}
	r = gw_aliyun_sign_registration(method, s->product_key, s->device_name, s->product_secret,
					s->random, upper, buf, size);
	if (r == -EIO)
		set_reason(reason, "libcrypto cannot compute the MAC");
	return r;
}

static int proxied_entry(enum gw_aliyun_sign_method method, bool upper,
			 const struct gw_aliyun_proxied *s, json_t **ret, char *reason)
{
	char sign[GW_ALIYUN_SIGN_MAX];
	int r;

	*ret = NULL;
	r = gw_aliyun_sign_proxied(method, upper, s, sign, sizeof(sign), reason);
	if (r < 0)
		return r;
	*ret = json_pack("{s:s,s:s,s:s,s:s,s:s}", "productKey", s->product_key, "deviceName",
			 s->device_name, "random", s->random, "signMethod",
			 gw_aliyun_gw_sign_method(method), "sign", sign);
	return *ret ? 0 : -ENOMEM;
}

int gw_aliyun_build_product_register(uint32_t id, enum gw_aliyun_sign_method method, bool upper,
				     const struct gw_aliyun_proxied *subs, size_t n, char **ret,
				     size_t *ret_len, char *reason)
{
	json_t *a = NULL, *e, *p = NULL;
	size_t i;
	int r = check_count(n, GW_ALIYUN_SUB_REGISTER_MAX, reason);

	if (r == 0 && !subs)
		r = -EINVAL;
	if (r == 0) {
		a = json_array();
		r = a ? 0 : -ENOMEM;
	}
	for (i = 0; r == 0 && i < n; i++) {
		r = proxied_entry(method, upper, &subs[i], &e, reason);
		if (r == 0 && json_array_append_new(a, e))
			r = -ENOMEM;
	}
	if (r == 0) {
		p = json_pack("{s:o}", "proxieds", a); /* steals a */
		a = NULL;
		r = p ? 0 : -ENOMEM;
	}
	json_decref(a);
	return finish(r, id, p, "thing.proxy.provisioning.product_register", ret, ret_len);
}

void gw_aliyun_gw_msg_free(struct gw_aliyun_gw_msg *m)
{
	if (!m)
		return;
	if (m->devices) {
		explicit_bzero(m->devices, m->n * sizeof(*m->devices));
		free(m->devices);
	}
	memset(m, 0, sizeof(*m));
}

/* §G2: "code" is a number, once a string of digits in a doc example. */
static int get_code(json_t *root, int *code, char *reason)
{
	json_t *v = json_object_get(root, "code");
	const char *s;
	size_t n, i;
	long long c = 0;

	if (json_is_integer(v))
		return gw_aliyun_get_code(root, code, reason);
	if (!json_is_string(v)) {
		set_reason(reason, v ? "\"code\" is not an integer" : "no \"code\"");
		return -EBADMSG;
	}
	s = json_string_value(v);
	n = json_string_length(v);
	for (i = 0; i < n && n <= 9; i++) {
		if (s[i] < '0' || s[i] > '9')
			break;
		c = c * 10 + (s[i] - '0');
	}
	if (n == 0 || n > 9 || i != n) {
		set_reason(reason, "\"code\" is neither an integer nor a string of digits");
		return -EBADMSG;
	}
	*code = (int)c;
	return 0;
}

/* A string member of o that is an identifier of at most size - 1 bytes, checked by valid
 * (NULL: 1..size-1 printable without space), into dst; required or not. */
static int get_ident(json_t *o, const char *where, const char *name, bool required,
		     bool (*valid)(const char *), char *dst, size_t size, char *reason)
{
	const char *s;
	size_t n;

	dst[0] = '\0';
	if (!required && !json_object_get(o, name))
		return 0;
	s = gw_json_get_string(o, where, name, &n, reason, GW_ALIYUN_REASON_MAX);
	if (!s)
		return -EBADMSG;
	if (n >= size || strlen(s) != n ||
	    (valid ? !valid(s) : !gw_proto_printable_n(s, n, 1, size - 1, false, NULL))) {
		set_reason(reason, "\"%s%s\" is not a valid value", where, name);
		return -EBADMSG;
	}
	memcpy(dst, s, n + 1);
	return 0;
}

enum secret_rule {
	SECRET_NONE,     /* not read */
	SECRET_OPTIONAL, /* read when present */
	SECRET_REQUIRED,
};

static int parse_device(json_t *o, const char *where, enum secret_rule secret,
			struct gw_aliyun_gw_device *d, char *reason)
{
	const char *s;
	size_t n;
	int r;

	if (!json_is_object(o)) {
		set_reason(reason, "\"%s\" is not an object", where);
		return -EBADMSG;
	}
	r = get_ident(o, where, "productKey", true, gw_aliyun_valid_label, d->product_key,
		      sizeof(d->product_key), reason);
	if (r == 0)
		r = get_ident(o, where, "deviceName", true, gw_aliyun_valid_device_name,
			      d->device_name, sizeof(d->device_name), reason);
	if (r == 0 && secret != SECRET_NONE)
		r = get_ident(o, where, "iotId", false, NULL, d->iot_id, sizeof(d->iot_id),
			      reason);
	if (r < 0 || secret == SECRET_NONE)
		return r;
	if (secret == SECRET_OPTIONAL && !json_object_get(o, "deviceSecret"))
		return 0;
	s = gw_json_get_string(o, where, "deviceSecret", &n, reason, GW_ALIYUN_REASON_MAX);
	if (!s)
		return -EBADMSG;
	if (!valid_secret_n(s, n) || strlen(s) != n) {
		set_reason(reason, "\"%sdeviceSecret\" is not 1..128 printable characters", where);
		return -EBADMSG;
	}
	memcpy(d->device_secret, s, n + 1);
	gw_json_wipe_member(o, "deviceSecret");
	return 0;
}

/* The entries of array a (named name) into ret->devices: min..max of them. */
static int parse_list(json_t *a, const char *name, size_t min, size_t max,
		      enum secret_rule secret, struct gw_aliyun_gw_msg *ret, char *reason)
{
	char where[WHERE_MAX];
	size_t i, n;
	int r = 0;

	if (!json_is_array(a)) {
		set_reason(reason, "\"%s\" is not an array", name);
		return -EBADMSG;
	}
	n = json_array_size(a);
	if (n < min || n > max) {
		set_reason(reason, "\"%s\" holds %zu entries, not %zu..%zu", name, n, min, max);
		return -EBADMSG;
	}
	if (n == 0)
		return 0;
	ret->devices = calloc(n, sizeof(*ret->devices));
	if (!ret->devices)
		return -ENOMEM;
	ret->n = n;
	for (i = 0; r == 0 && i < n; i++) {
		snprintf(where, sizeof(where), "%s[%zu].", name, i);
		r = parse_device(json_array_get(a, i), where, secret, &ret->devices[i], reason);
	}
	/* the tree still holds the secrets of a bad entry and those after it */
	for (i = 0; secret != SECRET_NONE && i < n; i++)
		gw_json_wipe_member(json_array_get(a, i), "deviceSecret");
	return r;
}

/* One sub-device in the object o (named name) as the only entry. */
static int parse_one(json_t *o, const char *name, struct gw_aliyun_gw_msg *ret, char *reason)
{
	char where[WHERE_MAX];

	ret->devices = calloc(1, sizeof(*ret->devices));
	if (!ret->devices)
		return -ENOMEM;
	ret->n = 1;
	snprintf(where, sizeof(where), "%s.", name);
	return parse_device(o, where, SECRET_NONE, &ret->devices[0], reason);
}

/* The "data" of a reply. */
static int parse_reply_data(json_t *root, struct gw_aliyun_gw_msg *ret, char *reason)
{
	json_t *data = json_object_get(root, "data");
	enum secret_rule secret = SECRET_NONE;
	size_t max = GW_ALIYUN_TOPO_ADD_MAX;
	bool need = false;

	enum gw_aliyun_gw_topic k = ret->kind;

	if (k == GW_ALIYUN_GW_LOGIN_REPLY || k == GW_ALIYUN_GW_LOGOUT_REPLY ||
	    k == GW_ALIYUN_GW_ERROR) {
		if (!data || (json_is_object(data) && json_object_size(data) == 0))
			return 0;
		return parse_one(data, "data", ret, reason);
	}
	if (k == GW_ALIYUN_GW_TOPO_GET_REPLY) {
		max = GW_ALIYUN_TOPO_MAX;
		need = true;
	} else if (k == GW_ALIYUN_GW_BATCH_LOGIN_REPLY || k == GW_ALIYUN_GW_BATCH_LOGOUT_REPLY) {
		max = GW_ALIYUN_BATCH_LOGIN_MAX;
	} else if (k == GW_ALIYUN_GW_SUB_REGISTER_REPLY) {
		max = GW_ALIYUN_SUB_REGISTER_MAX;
		secret = ret->code == GW_ALIYUN_CODE_OK ? SECRET_REQUIRED : SECRET_OPTIONAL;
		need = true;
	} else if (k == GW_ALIYUN_GW_PRODUCT_REGISTER_REPLY) {
		max = GW_ALIYUN_SUB_REGISTER_MAX;
		secret = SECRET_OPTIONAL;
		need = true;
		/* §G13: unverified layout; a list in data or in data.proxieds */
		if (json_is_object(data) && json_object_get(data, "proxieds"))
			return parse_list(json_object_get(data, "proxieds"), "data.proxieds", 0,
					  max, secret, ret, reason);
	}
	if (!data) {
		if (need && ret->code == GW_ALIYUN_CODE_OK) {
			set_reason(reason, "no \"data\"");
			return -EBADMSG;
		}
		return 0;
	}
	/* §G4: an older reply to topo/add carries data {} */
	if (json_is_object(data) && !need)
		return 0;
	return parse_list(data, "data", 0, max, secret, ret, reason);
}

/* "method", when present, is method. */
static int check_method(json_t *root, const char *method, char *reason)
{
	json_t *v = json_object_get(root, "method");

	if (v && (!json_is_string(v) || strcmp(json_string_value(v), method) != 0 ||
		  json_string_length(v) != strlen(method))) {
		set_reason(reason, "\"method\" is not \"%s\"", method);
		return -EBADMSG;
	}
	return 0;
}

static int parse_topo_change(json_t *root, struct gw_aliyun_gw_msg *ret, char *reason)
{
	json_int_t status = 0;
	json_t *params;
	int r;

	r = check_method(root, "thing.topo.change", reason);
	if (r < 0)
		return r;
	params = gw_json_get_object(root, "", "params", reason, GW_ALIYUN_REASON_MAX);
	if (!params)
		return -EBADMSG;
	r = gw_json_get_int(params, "params.", "status", true, 0, 8, &status, reason,
			    GW_ALIYUN_REASON_MAX);
	if (r < 0)
		return r;
	if (status != GW_ALIYUN_TOPO_ADDED && status != GW_ALIYUN_TOPO_DELETED &&
	    status != GW_ALIYUN_TOPO_ENABLED && status != GW_ALIYUN_TOPO_DISABLED) {
		set_reason(reason, "\"params.status\" is not 0, 1, 2 or 8");
		return -EBADMSG;
	}
	ret->status = (int)status;
	if (!json_object_get(params, "subList")) {
		set_reason(reason, "no \"params.subList\"");
		return -EBADMSG;
	}
	return parse_list(json_object_get(params, "subList"), "params.subList", 1,
			  GW_ALIYUN_TOPO_MAX, SECRET_NONE, ret, reason);
}

static int parse_body(json_t *root, struct gw_aliyun_gw_msg *ret, char *reason)
{
	json_t *params;
	int r;

	enum gw_aliyun_gw_topic k = ret->kind;

	if (k == GW_ALIYUN_GW_TOPO_CHANGE)
		return parse_topo_change(root, ret, reason);
	if (k == GW_ALIYUN_GW_TOPO_ADD_NOTIFY) {
		r = check_method(root, "thing.topo.add.notify", reason);
		if (r < 0)
			return r;
		params = json_object_get(root, "params");
		if (!params) {
			set_reason(reason, "no \"params\"");
			return -EBADMSG;
		}
		return parse_list(params, "params", 1, GW_ALIYUN_TOPO_ADD_MAX, SECRET_NONE, ret,
				  reason);
	}
	if (k == GW_ALIYUN_GW_DISABLE || k == GW_ALIYUN_GW_ENABLE || k == GW_ALIYUN_GW_DELETE) {
		/* the id was read: what is left is the method and an object params */
		r = check_method(root, k == GW_ALIYUN_GW_DISABLE ? "thing.disable" :
				       k == GW_ALIYUN_GW_ENABLE	 ? "thing.enable" :
								   "thing.delete",
				 reason);
		if (r == 0 && !gw_json_get_object(root, "", "params", reason,
						  GW_ALIYUN_REASON_MAX))
			r = -EBADMSG;
		return r;
	}
	/* a reply or /ext/error */
	r = get_code(root, &ret->code, reason);
	if (r == 0)
		r = gw_json_get_text(root, "", "message", ret->message, sizeof(ret->message),
				     reason, GW_ALIYUN_REASON_MAX);
	if (r < 0)
		return r;
	r = parse_reply_data(root, ret, reason);
	if (r < 0 && ret->code != GW_ALIYUN_CODE_OK) {
		/* a refusal with a data we cannot read is still a refusal */
		if (ret->devices)
			explicit_bzero(ret->devices, ret->n * sizeof(*ret->devices));
		free(ret->devices);
		ret->devices = NULL;
		ret->n = 0;
		if (reason)
			reason[0] = '\0';
		r = r == -ENOMEM ? r : 0;
	}
	return r;
}

int gw_aliyun_parse_gw_msg(enum gw_aliyun_gw_topic kind, const char *buf, size_t len,
			   struct gw_aliyun_gw_msg *ret, char *reason)
{
	json_t *root = NULL, *id;
	int r;

	memset(ret, 0, sizeof(*ret));
	if ((unsigned)kind >= N_ELEMENTS(topics) || !topics[kind].down)
		return -EINVAL;
	ret->kind = kind;
	r = gw_json_load_object(buf, len, GW_ALIYUN_GATEWAY_MSG_MAX, &root, reason,
				GW_ALIYUN_REASON_MAX);
	if (r < 0)
		goto out;
	id = json_object_get(root, "id");
	if (kind == GW_ALIYUN_GW_ERROR) {
		/* §G10: a push, not a reply: its id only helps the log */
		if (json_is_string(id) && gw_aliyun_valid_msg_id(json_string_value(id),
								  json_string_length(id),
								  &ret->id_num))
			memcpy(ret->id, json_string_value(id), json_string_length(id) + 1);
	} else {
		r = gw_aliyun_get_msg_id(root, ret->id, &ret->id_num, reason);
	}
	if (r == 0)
		r = parse_body(root, ret, reason);
out:
	json_decref(root);
	if (r < 0) {
		gw_aliyun_gw_msg_free(ret);
		ret->kind = kind;
	}
	return r;
}
