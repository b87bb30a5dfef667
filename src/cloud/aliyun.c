/* SPDX-License-Identifier: MIT */
/*
 * Alibaba Cloud IoT Platform: signing, dynamic registration messages, Alink thing-model
 * messages and topics. Pure (see include/gw/aliyun.h); protocol rules from the fact sheet
 * shared/protocols/aliyun.md, section numbers cited as §N.
 */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "gw/aliyun.h"
#include "gw/json.h"
#include "gw/util.h"

#define CONTENT_MAX 512 /* a sign content string: four names and values of bounded length */
#define METHOD_MAX 128
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

static const char *const sign_method_names[] = {
	[GW_ALIYUN_HMAC_SHA256] = "hmacsha256",
	[GW_ALIYUN_HMAC_SHA1] = "hmacsha1",
	[GW_ALIYUN_HMAC_MD5] = "hmacmd5",
};

static const char *const auth_names[] = {
	[GW_ALIYUN_AUTH_DEVICE] = "device",
	[GW_ALIYUN_AUTH_REGISTER] = "register",
	[GW_ALIYUN_AUTH_REGNWL] = "regnwl",
	[GW_ALIYUN_AUTH_CONNWL] = "connwl",
};


static void set_reason(char *reason, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_reason(char *reason, const char *fmt, ...)
{
	va_list ap;

	if (!reason)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, GW_ALIYUN_REASON_MAX, fmt, ap);
	va_end(ap);
}

/* ProductKey, region, instance id: they become DNS labels of the MQTT host. */
static bool valid_label(const char *s)
{
	if (!gw_has_length(s, 1, GW_ALIYUN_ID_MAX - 1))
		return false;
	for (; *s; s++)
		if (!gw_is_alnum(*s) && *s != '-')
			return false;
	return true;
}

/* DeviceName: letters, digits and the five punctuation characters the fact sheet (§2) says a
 * DeviceName may hold. */
static bool valid_device_name(const char *s)
{
	if (!gw_has_length(s, 1, GW_ALIYUN_ID_MAX - 1))
		return false;
	for (; *s; s++)
		if (!gw_is_alnum(*s) && !strchr("-_@.:", *s))
			return false;
	return true;
}

/* Printable ASCII without space and without any character of forbid: secrets, tokens and
 * client ids. A space or control character in a secret is a copy-and-paste accident, and '|'
 * would end a client id early. */
static bool valid_token_n(const char *s, size_t n, size_t min, size_t max, const char *forbid)
{
	size_t i;

	if (n < min || n > max)
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] <= ' ' || s[i] > '~')
			return false;
		if (forbid && strchr(forbid, s[i]))
			return false;
	}
	return true;
}

static bool valid_token(const char *s, size_t min, size_t max, const char *forbid)
{
	if (!s)
		return false;
	return valid_token_n(s, strnlen(s, max + 1), min, max, forbid);
}

static bool valid_random(const char *s)
{
	if (!gw_has_length(s, 1, GW_ALIYUN_RANDOM_MAX - 1))
		return false;
	for (; *s; s++)
		if (!gw_is_alnum(*s))
			return false;
	return true;
}

/* A thing id (event, service, RRPC message id) is one topic level. */
static bool valid_thing_id(const char *s, bool allow_plus)
{
	if (allow_plus && s && strcmp(s, "+") == 0)
		return true;
	return valid_token(s, 1, GW_ALIYUN_ID_MAX - 1, "/+#");
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static bool valid_event_id(const char *s, bool allow_plus)
{
	return valid_thing_id(s, allow_plus) && strcmp(s, "property") != 0;
}

static bool valid_service_id(const char *s, bool allow_plus)
{
	return valid_thing_id(s, allow_plus) && strcmp(s, "property") != 0 &&
	       !ends_with(s, "_reply");
}

int gw_aliyun_parse_sign_method(const char *s, enum gw_aliyun_sign_method *ret)
{
	size_t i;

	for (i = 0; s && i < N_ELEMENTS(sign_method_names); i++) {
		if (strcmp(s, sign_method_names[i]) == 0) {
			*ret = (enum gw_aliyun_sign_method)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *gw_aliyun_name_sign_method(enum gw_aliyun_sign_method method)
{
	if ((unsigned)method >= N_ELEMENTS(sign_method_names))
		return NULL;
	return sign_method_names[method];
}

int gw_aliyun_parse_auth(const char *s, enum gw_aliyun_auth *ret)
{
	size_t i;

	for (i = 0; s && i < N_ELEMENTS(auth_names); i++) {
		if (strcmp(s, auth_names[i]) == 0) {
			*ret = (enum gw_aliyun_auth)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *gw_aliyun_name_auth(enum gw_aliyun_auth auth)
{
	if ((unsigned)auth >= N_ELEMENTS(auth_names))
		return NULL;
	return auth_names[auth];
}

static const EVP_MD *sign_method_md(enum gw_aliyun_sign_method method)
{
	switch (method) {
	case GW_ALIYUN_HMAC_SHA256:
		return EVP_sha256();
	case GW_ALIYUN_HMAC_SHA1:
		return EVP_sha1();
	case GW_ALIYUN_HMAC_MD5:
		return EVP_md5();
	default:
		return NULL;
	}
}

int gw_aliyun_sign_hex(enum gw_aliyun_sign_method method, const char *key, size_t key_len,
		       const char *content, size_t content_len, bool upper, char *buf,
		       size_t size)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	const EVP_MD *md = sign_method_md(method);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	if (!md || !key || !content || key_len > INT_MAX)
		return -EINVAL;
	if (size < (size_t)EVP_MD_size(md) * 2 + 1)
		return -ENOBUFS;
	if (!HMAC(md, key, (int)key_len, (const unsigned char *)content, content_len, mac, &n))
		return -EIO;
	for (i = 0; i < n; i++) {
		buf[2 * i] = digits[mac[i] >> 4];
		buf[2 * i + 1] = digits[mac[i] & 0xf];
	}
	buf[2 * n] = '\0';
	explicit_bzero(mac, sizeof(mac));
	return (int)(2 * n);
}

int gw_aliyun_format_host(const char *product_key, const char *region, const char *instance_id,
			  char *buf, size_t size)
{
	if (region && instance_id)
		return -EINVAL;
	if (instance_id) {
		if (!valid_label(instance_id))
			return -EINVAL;
		return gw_bprintf(buf, size, "%s.mqtt.iothub.aliyuncs.com", instance_id);
	}
	if (!region)
		region = GW_ALIYUN_DEFAULT_REGION;
	if (!valid_label(product_key) || !valid_label(region))
		return -EINVAL;
	return gw_bprintf(buf, size, "%s.iot-as-mqtt.%s.aliyuncs.com", product_key, region);
}

int gw_aliyun_make_random(char *buf, size_t size)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char bytes[64];
	size_t n = 0, i = sizeof(bytes);
	ssize_t got;

	if (size <= GW_ALIYUN_RANDOM_LEN)
		return -ENOBUFS;
	while (n < GW_ALIYUN_RANDOM_LEN) {
		if (i == sizeof(bytes)) {
			got = getrandom(bytes, sizeof(bytes), 0);
			if (got < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			if ((size_t)got != sizeof(bytes))
				continue;
			i = 0;
		}
		/* 248 = 4 * 62: rejecting the rest keeps every character equally likely. */
		if (bytes[i] < 248)
			buf[n++] = alphabet[bytes[i] % 62];
		i++;
	}
	buf[n] = '\0';
	return 0;
}

/* §3: "deviceName<dn>productKey<pk>random<r>", keyed with the ProductSecret, for both the MQTT
 * and the HTTPS dynamic registration. */
static int sign_registration(enum gw_aliyun_sign_method method, const char *product_key,
			     const char *device_name, const char *product_secret,
			     const char *random, bool upper, char *buf, size_t size)
{
	char content[CONTENT_MAX];
	int r;

	r = gw_bprintf(content, sizeof(content), "deviceName%sproductKey%srandom%s", device_name,
		    product_key, random);
	if (r < 0)
		return r;
	return gw_aliyun_sign_hex(method, product_secret, strlen(product_secret), content,
				  (size_t)r, upper, buf, size);
}

#define ID_RULE "1..64 characters of A-Z a-z 0-9 -"

/* Checks l against the contract in aliyun.h; the reason names the first field at fault. */
static int check_login(const struct gw_aliyun_login *l, int *securemode, char *reason)
{
	const char *why = NULL;

	if (!valid_label(l->product_key))
		why = "the ProductKey must be " ID_RULE;
	else if (!valid_device_name(l->device_name))
		why = "the DeviceName must be 1..64 characters of A-Z a-z 0-9 - _ @ . :";
	else if (l->region && l->instance_id)
		why = "a region and an instance id exclude each other";
	else if (l->region && !valid_label(l->region))
		why = "the region must be " ID_RULE;
	else if (l->instance_id && !valid_label(l->instance_id))
		why = "the instance id must be " ID_RULE;
	else if (l->auth != GW_ALIYUN_AUTH_CONNWL && !gw_aliyun_name_sign_method(l->sign_method))
		why = "unknown sign method";
	if (why)
		goto fail;

	switch (l->auth) {
	case GW_ALIYUN_AUTH_DEVICE:
		*securemode = l->securemode ? l->securemode : 2;
		if (*securemode != 2 && *securemode != 3)
			why = "securemode must be 2 (TLS) or 3 (TCP) for a DeviceSecret login";
		else if (!valid_token(l->secret, 1, GW_ALIYUN_SECRET_MAX - 1, NULL))
			why = "the DeviceSecret must be 1..128 printable characters without space";
		else if (l->client_id && !valid_token(l->client_id, 1, GW_ALIYUN_CID_MAX - 1, "|"))
			why = "the client id must be 1..64 printable characters without space "
			      "and '|'";
		else if (l->random)
			why = "a random belongs to dynamic registration only";
		break;
	case GW_ALIYUN_AUTH_REGISTER:
	case GW_ALIYUN_AUTH_REGNWL:
		*securemode = l->securemode ? l->securemode : 2;
		if (*securemode != 2 && *securemode != -2)
			why = "securemode must be 2 or -2 for dynamic registration (TLS only)";
		else if (!valid_token(l->secret, 1, GW_ALIYUN_SECRET_MAX - 1, NULL))
			why = "the ProductSecret must be 1..128 printable characters without space";
		else if (l->client_id)
			why = "dynamic registration fixes the client id";
		else if (l->has_timestamp)
			why = "dynamic registration sends no timestamp";
		else if (!valid_random(l->random))
			why = "the random must be 1..64 characters of A-Z a-z 0-9";
		break;
	case GW_ALIYUN_AUTH_CONNWL:
		*securemode = l->securemode ? l->securemode : -2;
		if (*securemode != -2)
			why = "securemode must be -2 for a DeviceToken login";
		else if (!valid_token(l->secret, 1, GW_ALIYUN_TOKEN_MAX - 1, NULL))
			why = "the DeviceToken must be 1..512 printable characters without space";
		else if (!valid_token(l->client_id, 1, GW_ALIYUN_NWL_CID_MAX - 1, "|"))
			why = "a DeviceToken login needs the ClientID from regnwl (1..128 "
			      "printable characters without space and '|')";
		else if (l->has_timestamp)
			why = "a DeviceToken login sends no timestamp";
		else if (l->random)
			why = "a random belongs to dynamic registration only";
		break;
	default:
		why = "unknown auth mode";
		break;
	}
	if (!why)
		return 0;
fail:
	set_reason(reason, "%s", why);
	return -EINVAL;
}

/* §4: the content names the submitted parameters sorted by name, each name followed by its
 * value; the client id in it is the bare id. */
static int build_device(const struct gw_aliyun_login *l, int securemode,
			struct gw_aliyun_connect *ret)
{
	const char *method = gw_aliyun_name_sign_method(l->sign_method);
	char cid_default[GW_ALIYUN_CID_MAX];
	char content[CONTENT_MAX];
	char ts[24] = "";
	const char *cid = l->client_id;
	int r, n;

	if (!cid) {
		r = gw_bprintf(cid_default, sizeof(cid_default), "%s.%s", l->product_key,
			    l->device_name);
		if (r < 0)
			return -EINVAL; /* the pair is too long to be a client id at all */
		cid = cid_default;
	}
	if (l->has_timestamp)
		snprintf(ts, sizeof(ts), "%" PRIu64, l->timestamp_ms);

	r = gw_bprintf(ret->client_id, sizeof(ret->client_id), "%s|securemode=%d,signmethod=%s%s%s|",
		    cid, securemode, method, l->has_timestamp ? ",timestamp=" : "", ts);
	if (r < 0)
		return r;
	n = gw_bprintf(content, sizeof(content), "clientId%sdeviceName%sproductKey%s%s%s", cid,
		    l->device_name, l->product_key, l->has_timestamp ? "timestamp" : "", ts);
	if (n < 0)
		return n;
	r = gw_aliyun_sign_hex(l->sign_method, l->secret, strlen(l->secret), content, (size_t)n,
			       false, ret->password, sizeof(ret->password));
	return r < 0 ? r : 0;
}

/* §3: the client id is fixed to "<dn>.<pk>" and carries the registration parameters. The
 * password is sent in lower-case hex, as the official Python SDK does; the platform compares
 * the hex case-insensitively (§2). */
static int build_dynreg(const struct gw_aliyun_login *l, int securemode,
			struct gw_aliyun_connect *ret)
{
	const char *method = gw_aliyun_name_sign_method(l->sign_method);
	int r;

	r = gw_bprintf(ret->client_id, sizeof(ret->client_id),
		    "%s.%s|random=%s,authType=%s,securemode=%d,signmethod=%s%s%s|", l->device_name,
		    l->product_key, l->random, gw_aliyun_name_auth(l->auth), securemode, method,
		    l->instance_id ? ",instanceId=" : "", l->instance_id ? l->instance_id : "");
	if (r < 0)
		return r;
	r = sign_registration(l->sign_method, l->product_key, l->device_name, l->secret,
			      l->random, false, ret->password, sizeof(ret->password));
	return r < 0 ? r : 0;
}

/* §4: the ClientID from /ext/regnwl, authType=connwl, and the DeviceToken as the password. */
static int build_connwl(const struct gw_aliyun_login *l, int securemode,
			struct gw_aliyun_connect *ret)
{
	int r;

	r = gw_bprintf(ret->client_id, sizeof(ret->client_id), "%s|securemode=%d,authType=connwl|",
		    l->client_id, securemode);
	if (r < 0)
		return r;
	r = gw_bprintf(ret->password, sizeof(ret->password), "%s", l->secret);
	return r < 0 ? r : 0;
}

int gw_aliyun_build_connect(const struct gw_aliyun_login *l, struct gw_aliyun_connect *ret,
			    char *reason)
{
	int securemode = 0;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = check_login(l, &securemode, reason);
	if (r < 0)
		goto out;
	r = gw_aliyun_format_host(l->product_key, l->region, l->instance_id, ret->host,
				  sizeof(ret->host));
	if (r < 0)
		goto out;
	ret->tls = securemode != 3;
	if (l->port)
		ret->port = l->port;
	else if (!ret->tls)
		ret->port = GW_ALIYUN_PORT_TCP;
	else if (l->instance_id)
		ret->port = GW_ALIYUN_PORT_INSTANCE_TLS;
	else
		ret->port = GW_ALIYUN_PORT_LEGACY_TLS;
	r = gw_bprintf(ret->username, sizeof(ret->username), "%s&%s", l->device_name, l->product_key);
	if (r < 0)
		goto out;

	switch (l->auth) {
	case GW_ALIYUN_AUTH_DEVICE:
		r = build_device(l, securemode, ret);
		break;
	case GW_ALIYUN_AUTH_REGISTER:
	case GW_ALIYUN_AUTH_REGNWL:
		r = build_dynreg(l, securemode, ret);
		break;
	case GW_ALIYUN_AUTH_CONNWL:
		r = build_connwl(l, securemode, ret);
		break;
	default:
		r = -EINVAL;
		break;
	}
out:
	if (r < 0) {
		explicit_bzero(ret, sizeof(*ret));
		if (r == -ENOBUFS)
			set_reason(reason, "the parameters are too long for a client id");
		else if (r == -EIO)
			set_reason(reason, "libcrypto cannot compute the MAC");
	}
	return r < 0 ? r : 0;
}

/* application/x-www-form-urlencoded: unreserved characters stay, the rest becomes %XX. */
static int append_form_value(char *buf, size_t size, size_t *pos, const char *v)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;

	for (; *v; v++) {
		c = (unsigned char)*v;
		if (gw_is_alnum((char)c) || strchr("-._~", c)) {
			if (*pos + 1 >= size)
				return -ENOBUFS;
			buf[(*pos)++] = (char)c;
		} else {
			if (*pos + 3 >= size)
				return -ENOBUFS;
			buf[(*pos)++] = '%';
			buf[(*pos)++] = hex[c >> 4];
			buf[(*pos)++] = hex[c & 0xf];
		}
	}
	buf[*pos] = '\0';
	return 0;
}

static int append_form_field(char *buf, size_t size, size_t *pos, const char *name,
			     const char *value)
{
	int r;

	r = gw_bprintf(buf + *pos, size - *pos, "%s%s=", *pos ? "&" : "", name);
	if (r < 0)
		return r;
	*pos += (size_t)r;
	return append_form_value(buf, size, pos, value);
}

int gw_aliyun_build_https_register(const char *region, const char *product_key,
				   const char *device_name, const char *product_secret,
				   const char *random, enum gw_aliyun_sign_method method,
				   struct gw_aliyun_https_request *ret)
{
	char sign[EVP_MAX_MD_SIZE * 2 + 1];
	size_t pos = 0;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!region)
		region = GW_ALIYUN_DEFAULT_REGION;
	if (!valid_label(region) || !valid_label(product_key) ||
	    !valid_device_name(device_name) || !valid_random(random) ||
	    !valid_token(product_secret, 1, GW_ALIYUN_SECRET_MAX - 1, NULL) ||
	    !gw_aliyun_name_sign_method(method))
		return -EINVAL;

	r = gw_bprintf(ret->host, sizeof(ret->host), "iot-auth.%s.aliyuncs.com", region);
	if (r < 0)
		goto out;
	ret->port = GW_ALIYUN_PORT_HTTPS;
	r = gw_bprintf(ret->url, sizeof(ret->url), "https://%s%s", ret->host,
		    GW_ALIYUN_REGISTER_PATH);
	if (r < 0)
		goto out;
	/* Upper-case hex, as the official C SDKs send it (§2, and the fact sheet's body). */
	r = sign_registration(method, product_key, device_name, product_secret, random, true,
			      sign, sizeof(sign));
	if (r < 0)
		goto out;
	r = append_form_field(ret->body, sizeof(ret->body), &pos, "productKey", product_key);
	if (r >= 0)
		r = append_form_field(ret->body, sizeof(ret->body), &pos, "deviceName",
				      device_name);
	if (r >= 0)
		r = append_form_field(ret->body, sizeof(ret->body), &pos, "random", random);
	if (r >= 0)
		r = append_form_field(ret->body, sizeof(ret->body), &pos, "sign", sign);
	if (r >= 0)
		r = append_form_field(ret->body, sizeof(ret->body), &pos, "signMethod",
				      gw_aliyun_name_sign_method(method));
out:
	if (r < 0)
		memset(ret, 0, sizeof(*ret));
	return r < 0 ? r : 0;
}

/* Reasons stay within GW_ALIYUN_REASON_MAX (include/gw/json.h). */
static int load_object(const char *buf, size_t len, size_t max, json_t **ret, char *reason)
{
	return gw_json_load_object(buf, len, max, ret, reason, GW_ALIYUN_REASON_MAX);
}

/* Optional "message" member: a string when present. */
static int get_message(json_t *root, char *dst, size_t size, char *reason)
{
	json_t *v = json_object_get(root, "message");

	dst[0] = '\0';
	if (!v)
		return 0;
	if (!json_is_string(v)) {
		set_reason(reason, "\"message\" is not a string");
		return -EBADMSG;
	}
	gw_json_copy_text(dst, size, json_string_value(v), json_string_length(v));
	return 0;
}

static int get_code(json_t *root, int *code, char *reason)
{
	json_t *v = json_object_get(root, "code");
	json_int_t c;

	if (!v) {
		set_reason(reason, "no \"code\"");
		return -EBADMSG;
	}
	if (!json_is_integer(v)) {
		set_reason(reason, "\"code\" is not an integer");
		return -EBADMSG;
	}
	c = json_integer_value(v);
	if (c < INT_MIN || c > INT_MAX) {
		set_reason(reason, "\"code\" out of range");
		return -EBADMSG;
	}
	*code = (int)c;
	return 0;
}

/* A required string member holding a credential: printable ASCII without space. */
static int get_credential(json_t *obj, const char *where, const char *name, const char *forbid,
			  char *dst, size_t size, char *reason)
{
	json_t *v = json_object_get(obj, name);
	const char *s;
	size_t n;

	if (!v) {
		set_reason(reason, "no \"%s%s\"", where, name);
		return -EBADMSG;
	}
	if (!json_is_string(v)) {
		set_reason(reason, "\"%s%s\" is not a string", where, name);
		return -EBADMSG;
	}
	s = json_string_value(v);
	n = json_string_length(v);
	if (!valid_token_n(s, n, 1, size - 1, forbid)) {
		set_reason(reason, "\"%s%s\" is empty, too long or holds invalid characters",
			   where, name);
		return -EBADMSG;
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

/*
 * jansson frees strings without wiping them; a credential parsed out of a message is wiped in
 * the tree (which owns its own copy of it) before the tree goes.
 */
static void wipe_member(json_t *obj, const char *name)
{
	json_t *v = json_object_get(obj, name);

	if (json_is_string(v))
		explicit_bzero((char *)json_string_value(v), json_string_length(v));
}

int gw_aliyun_parse_https_register(const char *buf, size_t len, struct gw_aliyun_credentials *ret,
				   char *reason)
{
	json_t *root = NULL, *data;
	int r;

	explicit_bzero(ret, sizeof(*ret));
	r = load_object(buf, len, GW_ALIYUN_HTTPS_REPLY_MAX, &root, reason);
	if (r < 0)
		return r;
	r = get_code(root, &ret->code, reason);
	if (r < 0)
		goto out;
	r = get_message(root, ret->message, sizeof(ret->message), reason);
	if (r < 0)
		goto out;
	if (ret->code != GW_ALIYUN_CODE_OK) {
		set_reason(reason, "registration refused: code %d: %s", ret->code, ret->message);
		r = -EREMOTEIO;
		goto out;
	}
	data = json_object_get(root, "data");
	if (!json_is_object(data)) {
		set_reason(reason, data ? "\"data\" is not an object" : "no \"data\"");
		r = -EBADMSG;
		goto out;
	}
	r = get_credential(data, "data.", "deviceSecret", NULL, ret->device_secret,
			   sizeof(ret->device_secret), reason);
out:
	wipe_member(json_object_get(root, "data"), "deviceSecret");
	json_decref(root);
	if (r < 0 && r != -EREMOTEIO) {
		int code = ret->code;

		explicit_bzero(ret, sizeof(*ret));
		ret->code = code;
	}
	return r;
}

/* A push may name its device; one for another device must not be taken for ours. */
static int check_identity(json_t *root, const char *name, const char *expected, char *reason)
{
	json_t *v = json_object_get(root, name);

	if (!v)
		return 0;
	if (!json_is_string(v)) {
		set_reason(reason, "\"%s\" is not a string", name);
		return -EBADMSG;
	}
	if (strcmp(json_string_value(v), expected) != 0 ||
	    strlen(expected) != json_string_length(v)) {
		set_reason(reason, "\"%s\" names another device", name);
		return -EBADMSG;
	}
	return 0;
}

int gw_aliyun_parse_register_push(enum gw_aliyun_auth auth, const char *product_key,
				  const char *device_name, const char *buf, size_t len,
				  struct gw_aliyun_credentials *ret, char *reason)
{
	json_t *root = NULL;
	int r;

	explicit_bzero(ret, sizeof(*ret));
	if ((auth != GW_ALIYUN_AUTH_REGISTER && auth != GW_ALIYUN_AUTH_REGNWL) || !product_key ||
	    !device_name) {
		set_reason(reason, "only register and regnwl have a push");
		return -EINVAL;
	}
	r = load_object(buf, len, GW_ALIYUN_DOWNLINK_MAX, &root, reason);
	if (r < 0)
		return r;
	r = check_identity(root, "productKey", product_key, reason);
	if (r < 0)
		goto out;
	r = check_identity(root, "deviceName", device_name, reason);
	if (r < 0)
		goto out;
	if (auth == GW_ALIYUN_AUTH_REGISTER) {
		r = get_credential(root, "", "deviceSecret", NULL, ret->device_secret,
				   sizeof(ret->device_secret), reason);
	} else {
		r = get_credential(root, "", "clientId", "|", ret->client_id,
				   sizeof(ret->client_id), reason);
		if (r >= 0)
			r = get_credential(root, "", "deviceToken", NULL, ret->device_token,
					   sizeof(ret->device_token), reason);
	}
	if (r >= 0)
		ret->code = GW_ALIYUN_CODE_OK;
out:
	wipe_member(root, "deviceSecret");
	wipe_member(root, "deviceToken");
	json_decref(root);
	if (r < 0)
		explicit_bzero(ret, sizeof(*ret));
	return r;
}

int gw_aliyun_build_topic(enum gw_aliyun_topic kind, const char *product_key,
			  const char *device_name, const char *id, char *buf, size_t size)
{
	const char *head, *tail = "";
	bool ok;

	if (!valid_label(product_key) || !valid_device_name(device_name))
		return -EINVAL;
	switch (kind) {
	case GW_ALIYUN_TOPIC_PROPERTY_POST:
		head = "thing/event/property/post";
		ok = !id;
		break;
	case GW_ALIYUN_TOPIC_PROPERTY_POST_REPLY:
		head = "thing/event/property/post_reply";
		ok = !id;
		break;
	case GW_ALIYUN_TOPIC_EVENT_POST:
		head = "thing/event/";
		tail = "/post";
		ok = valid_event_id(id, false);
		break;
	case GW_ALIYUN_TOPIC_EVENT_POST_REPLY:
		head = "thing/event/";
		tail = "/post_reply";
		ok = valid_event_id(id, true);
		break;
	case GW_ALIYUN_TOPIC_PROPERTY_SET:
		head = "thing/service/property/set";
		ok = !id;
		break;
	case GW_ALIYUN_TOPIC_PROPERTY_SET_REPLY:
		head = "thing/service/property/set_reply";
		ok = !id;
		break;
	case GW_ALIYUN_TOPIC_SERVICE:
		head = "thing/service/";
		ok = valid_service_id(id, true);
		break;
	case GW_ALIYUN_TOPIC_SERVICE_REPLY:
		head = "thing/service/";
		tail = "_reply";
		ok = valid_service_id(id, false);
		break;
	case GW_ALIYUN_TOPIC_RRPC_REQUEST:
		head = "rrpc/request/";
		ok = valid_thing_id(id, true);
		break;
	case GW_ALIYUN_TOPIC_RRPC_RESPONSE:
		head = "rrpc/response/";
		ok = valid_thing_id(id, false);
		break;
	default:
		return -EINVAL;
	}
	if (!ok)
		return -EINVAL;
	return gw_bprintf(buf, size, "/sys/%s/%s/%s%s%s", product_key, device_name, head,
		       id ? id : "", tail);
}

/* Copies the single topic level at s (up to the end) to id when it is a valid thing id. */
static int take_id(const char *s, bool service, char *id, size_t id_size)
{
	if (service ? !valid_service_id(s, false) : !valid_thing_id(s, false))
		return -ENOENT;
	return gw_bprintf(id, id_size, "%s", s) < 0 ? -ENOBUFS : 0;
}

int gw_aliyun_classify_topic(const char *topic, const char *product_key, const char *device_name,
			     enum gw_aliyun_topic *kind, char *id, size_t id_size)
{
	static const char ev[] = "thing/event/", svc[] = "thing/service/", rrpc[] = "rrpc/request/";
	size_t pk_len, dn_len;
	const char *rest, *slash;
	int r;

	if (!topic || !product_key || !device_name || !id || id_size == 0)
		return -ENOENT;
	id[0] = '\0';
	pk_len = strlen(product_key);
	dn_len = strlen(device_name);
	if (strncmp(topic, "/sys/", 5) != 0 || strncmp(topic + 5, product_key, pk_len) != 0 ||
	    topic[5 + pk_len] != '/' || strncmp(topic + 6 + pk_len, device_name, dn_len) != 0 ||
	    topic[6 + pk_len + dn_len] != '/')
		return -ENOENT;
	rest = topic + 7 + pk_len + dn_len;

	if (strcmp(rest, "thing/event/property/post_reply") == 0) {
		*kind = GW_ALIYUN_TOPIC_PROPERTY_POST_REPLY;
		return 0;
	}
	if (strcmp(rest, "thing/service/property/set") == 0) {
		*kind = GW_ALIYUN_TOPIC_PROPERTY_SET;
		return 0;
	}
	if (strncmp(rest, ev, sizeof(ev) - 1) == 0) {
		char event[GW_ALIYUN_ID_MAX];
		size_t n;

		rest += sizeof(ev) - 1;
		slash = strchr(rest, '/');
		if (!slash || strcmp(slash, "/post_reply") != 0)
			return -ENOENT;
		n = (size_t)(slash - rest);
		if (n == 0 || n >= sizeof(event))
			return -ENOENT;
		memcpy(event, rest, n);
		event[n] = '\0';
		if (!valid_event_id(event, false))
			return -ENOENT;
		r = take_id(event, false, id, id_size);
		if (r == 0)
			*kind = GW_ALIYUN_TOPIC_EVENT_POST_REPLY;
		return r;
	}
	if (strncmp(rest, svc, sizeof(svc) - 1) == 0) {
		r = take_id(rest + sizeof(svc) - 1, true, id, id_size);
		if (r == 0)
			*kind = GW_ALIYUN_TOPIC_SERVICE;
		return r;
	}
	if (strncmp(rest, rrpc, sizeof(rrpc) - 1) == 0) {
		r = take_id(rest + sizeof(rrpc) - 1, false, id, id_size);
		if (r == 0)
			*kind = GW_ALIYUN_TOPIC_RRPC_REQUEST;
		return r;
	}
	return -ENOENT;
}

static int dump(json_t *o, char **ret, size_t *ret_len)
{
	char *s = json_dumps(o, DUMP_FLAGS);

	if (!s)
		return -ENOMEM;
	*ret = s;
	if (ret_len)
		*ret_len = strlen(s);
	return 0;
}

/* §5 request envelope, members in the documented order. Steals params. */
static int build_request(uint32_t id, bool ack, json_t *params, const char *method, char **ret,
			 size_t *ret_len)
{
	char id_str[GW_ALIYUN_MSG_ID_MAX];
	json_t *o = json_object();
	int fail = 0, r;

	snprintf(id_str, sizeof(id_str), "%" PRIu32, id);
	if (!o || !params) {
		json_decref(o);
		json_decref(params);
		return -ENOMEM;
	}
	fail |= json_object_set_new(o, "id", json_string(id_str));
	fail |= json_object_set_new(o, "version", json_string("1.0"));
	/* ack absent means "reply" (D89298), so only the opt-out is spelt out. */
	if (!ack)
		fail |= json_object_set_new(o, "sys", json_pack("{s:i}", "ack", 0));
	fail |= json_object_set_new(o, "params", params);
	fail |= json_object_set_new(o, "method", json_string(method));
	r = fail ? -ENOMEM : dump(o, ret, ret_len);
	json_decref(o);
	return r;
}

int gw_aliyun_build_property_post(uint32_t id, json_t *params, int64_t time_ms, bool ack,
				  char **ret, size_t *ret_len)
{
	const char *key;
	json_t *p, *v;
	int fail = 0;

	if (!json_is_object(params))
		return -EINVAL;
	if (time_ms < 0)
		return build_request(id, ack, json_incref(params), "thing.event.property.post",
				     ret, ret_len);

	p = json_object();
	if (!p)
		return -ENOMEM;
	json_object_foreach(params, key, v)
		fail |= json_object_set_new(p, key, json_pack("{s:O,s:I}", "value", v, "time",
							     (json_int_t)time_ms));
	if (fail) {
		json_decref(p);
		return -ENOMEM;
	}
	return build_request(id, ack, p, "thing.event.property.post", ret, ret_len);
}

int gw_aliyun_build_event_post(uint32_t id, const char *event_id, json_t *value, int64_t time_ms,
			       bool ack, char **ret, size_t *ret_len)
{
	char method[METHOD_MAX];

	if (!valid_event_id(event_id, false) || !json_is_object(value) || time_ms < 0)
		return -EINVAL;
	if (gw_bprintf(method, sizeof(method), "thing.event.%s.post", event_id) < 0)
		return -EINVAL;
	return build_request(id, ack,
			     json_pack("{s:O,s:I}", "value", value, "time", (json_int_t)time_ms),
			     method, ret, ret_len);
}

/* An Alink id: 1..10 decimal digits, value at most UINT32_MAX (§5). */
static bool valid_msg_id(const char *s, size_t n, uint32_t *num)
{
	uint64_t v = 0;
	size_t i;

	if (n < 1 || n > GW_ALIYUN_MSG_ID_MAX - 1)
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	if (num)
		*num = (uint32_t)v;
	return true;
}

int gw_aliyun_build_reply(const char *id, int code, json_t *data, char **ret, size_t *ret_len)
{
	json_t *o;
	int r;

	if (!id || !valid_msg_id(id, strlen(id), NULL) || (data && !json_is_object(data)))
		return -EINVAL;
	o = data ? json_pack("{s:s,s:i,s:O}", "id", id, "code", code, "data", data) :
		   json_pack("{s:s,s:i,s:{}}", "id", id, "code", code, "data");
	if (!o)
		return -ENOMEM;
	r = dump(o, ret, ret_len);
	json_decref(o);
	return r;
}

static int get_msg_id(json_t *root, char *id, uint32_t *num, char *reason)
{
	json_t *v = json_object_get(root, "id");

	if (!v) {
		set_reason(reason, "no \"id\"");
		return -EBADMSG;
	}
	if (!json_is_string(v)) {
		set_reason(reason, "\"id\" is not a string");
		return -EBADMSG;
	}
	if (!valid_msg_id(json_string_value(v), json_string_length(v), num)) {
		set_reason(reason, "\"id\" is not a decimal number up to 4294967295");
		return -EBADMSG;
	}
	memcpy(id, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

int gw_aliyun_parse_post_reply(const char *buf, size_t len, struct gw_aliyun_post_reply *ret,
			       char *reason)
{
	char id[GW_ALIYUN_MSG_ID_MAX];
	json_t *root;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = load_object(buf, len, GW_ALIYUN_DOWNLINK_MAX, &root, reason);
	if (r < 0)
		return r;
	r = get_msg_id(root, id, &ret->id, reason);
	if (r >= 0)
		r = get_code(root, &ret->code, reason);
	if (r >= 0)
		r = get_message(root, ret->message, sizeof(ret->message), reason);
	json_decref(root);
	if (r < 0)
		memset(ret, 0, sizeof(*ret));
	return r;
}

static int parse_request(const char *method, const char *buf, size_t len,
			 struct gw_aliyun_request *ret, char *reason)
{
	json_t *root, *v;
	int r;

	r = load_object(buf, len, GW_ALIYUN_DOWNLINK_MAX, &root, reason);
	if (r < 0)
		return r;
	r = get_msg_id(root, ret->id, &ret->id_num, reason);
	if (r < 0)
		goto out;
	v = json_object_get(root, "method");
	if (v && (!json_is_string(v) || strcmp(json_string_value(v), method) != 0 ||
		  json_string_length(v) != strlen(method))) {
		set_reason(reason, "\"method\" is not \"%s\"", method);
		r = -EBADMSG;
		goto out;
	}
	v = json_object_get(root, "params");
	if (!json_is_object(v)) {
		set_reason(reason, v ? "\"params\" is not an object" : "no \"params\"");
		r = -EBADMSG;
		goto out;
	}
	ret->params = json_incref(v);
out:
	json_decref(root);
	return r;
}

int gw_aliyun_parse_property_set(const char *buf, size_t len, struct gw_aliyun_request *ret,
				 char *reason)
{
	memset(ret, 0, sizeof(*ret));
	return parse_request("thing.service.property.set", buf, len, ret, reason);
}

int gw_aliyun_parse_service_call(const char *service_id, const char *buf, size_t len,
				 struct gw_aliyun_request *ret, char *reason)
{
	char method[METHOD_MAX];

	memset(ret, 0, sizeof(*ret));
	if (!valid_service_id(service_id, false) ||
	    gw_bprintf(method, sizeof(method), "thing.service.%s", service_id) < 0)
		return -EINVAL;
	return parse_request(method, buf, len, ret, reason);
}

int gw_aliyun_build_reply_message(const char *id, int code, json_t *data, const char *message,
				  char **ret, size_t *ret_len)
{
	json_t *o;
	int fail = 0, r;

	if ((id && !valid_msg_id(id, strlen(id), NULL)) || (data && !json_is_object(data)) ||
	    !message)
		return -EINVAL;
	o = json_object();
	if (!o)
		return -ENOMEM;
	if (id)
		fail |= json_object_set_new(o, "id", json_string(id));
	fail |= json_object_set_new(o, "code", json_integer(code));
	fail |= json_object_set_new(o, "data", data ? json_incref(data) : json_object());
	/* json_string refuses invalid UTF-8: the caller's text is ours, never the node's */
	fail |= json_object_set_new(o, "message", json_string(message));
	r = fail ? -EINVAL : dump(o, ret, ret_len);
	json_decref(o);
	return r;
}

int gw_aliyun_parse_rrpc_request(const char *buf, size_t len, struct gw_aliyun_request *ret,
				 enum gw_aliyun_topic *kind, char *service_id, char *reason)
{
	static const char prefix[] = "thing.service.";
	char method[METHOD_MAX];
	const char *m;
	json_t *root, *v;
	int r;

	memset(ret, 0, sizeof(*ret));
	service_id[0] = '\0';
	r = load_object(buf, len, GW_ALIYUN_DOWNLINK_MAX, &root, reason);
	if (r < 0)
		return r;
	/* the id first, so that even a request with a bad method can be answered with it */
	r = get_msg_id(root, ret->id, &ret->id_num, reason);
	if (r < 0)
		goto out;
	v = json_object_get(root, "method");
	if (!json_is_string(v)) {
		set_reason(reason, v ? "\"method\" is not a string" : "no \"method\"");
		r = -EBADMSG;
		goto out;
	}
	m = json_string_value(v);
	if (json_string_length(v) >= sizeof(method) || strlen(m) != json_string_length(v) ||
	    strncmp(m, prefix, sizeof(prefix) - 1) != 0) {
		set_reason(reason, "\"method\" is not thing.service.<id>");
		r = -EBADMSG;
		goto out;
	}
	m += sizeof(prefix) - 1;
	if (strcmp(m, "property.set") == 0) {
		*kind = GW_ALIYUN_TOPIC_PROPERTY_SET;
	} else if (strncmp(m, "property.", 9) != 0 && valid_service_id(m, false)) {
		*kind = GW_ALIYUN_TOPIC_SERVICE;
		snprintf(service_id, GW_ALIYUN_ID_MAX, "%s", m);
	} else {
		set_reason(reason, "\"method\" names no service a device can offer");
		r = -EBADMSG;
		goto out;
	}
	v = json_object_get(root, "params");
	if (!json_is_object(v)) {
		set_reason(reason, v ? "\"params\" is not an object" : "no \"params\"");
		r = -EBADMSG;
		goto out;
	}
	ret->params = json_incref(v);
out:
	json_decref(root);
	if (r < 0)
		service_id[0] = '\0';
	return r;
}
