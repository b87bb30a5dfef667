/* SPDX-License-Identifier: MIT */
/*
 * Aliyun MQTT login: the CONNECT parameters (host, port, TLS, client id, username and signed
 * password) of every login mode, the names of sign methods and login modes, the HMAC signing
 * the login and the dynamic registration share, and the identifier rules every part of the
 * module checks. The contract is in include/gw/aliyun_login.h; protocol rules from
 * docs/protocols/aliyun.md with section numbers cited as §N.
 *
 * Pure: the only system call is getrandom(2) in gw_aliyun_make_random(); nothing logs.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "aliyun-private.h"
#include "proto.h"

#define CONTENT_MAX 512 /* a sign content string: four names and values of bounded length */
#define ID_RULE "1..64 characters of A-Z a-z 0-9 -"

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

bool gw_aliyun_valid_label(const char *s)
{
	if (!gw_has_length(s, 1, GW_ALIYUN_ID_MAX - 1))
		return false;
	for (; *s; s++)
		if (!gw_is_alnum(*s) && *s != '-')
			return false;
	return true;
}

/* Letters, digits and the five punctuation characters docs/protocols/aliyun.md §2 says a
 * DeviceName may hold. */
bool gw_aliyun_valid_device_name(const char *s)
{
	if (!gw_has_length(s, 1, GW_ALIYUN_ID_MAX - 1))
		return false;
	for (; *s; s++)
		if (!gw_is_alnum(*s) && !strchr("-_@.:", *s))
			return false;
	return true;
}

bool gw_aliyun_valid_random(const char *s)
{
	if (!gw_has_length(s, 1, GW_ALIYUN_RANDOM_MAX - 1))
		return false;
	for (; *s; s++)
		if (!gw_is_alnum(*s))
			return false;
	return true;
}

/* Secrets, tokens and client ids: printable ASCII without space and without any character of
 * forbid. A space or control character in a secret is a copy-and-paste accident, and '|'
 * would end a client id early. */
static bool valid_token(const char *s, size_t max, const char *forbid)
{
	return gw_proto_printable(s, 1, max, false, forbid);
}

int gw_aliyun_parse_sign_method(const char *s, enum gw_aliyun_sign_method *ret)
{
	int i = gw_proto_lookup(sign_method_names, N_ELEMENTS(sign_method_names), s);

	if (i >= 0)
		*ret = (enum gw_aliyun_sign_method)i;
	return i < 0 ? i : 0;
}

const char *gw_aliyun_name_sign_method(enum gw_aliyun_sign_method method)
{
	return gw_proto_name(sign_method_names, N_ELEMENTS(sign_method_names), method);
}

int gw_aliyun_parse_auth(const char *s, enum gw_aliyun_auth *ret)
{
	int i = gw_proto_lookup(auth_names, N_ELEMENTS(auth_names), s);

	if (i >= 0)
		*ret = (enum gw_aliyun_auth)i;
	return i < 0 ? i : 0;
}

const char *gw_aliyun_name_auth(enum gw_aliyun_auth auth)
{
	return gw_proto_name(auth_names, N_ELEMENTS(auth_names), auth);
}

int gw_aliyun_sign_hex(enum gw_aliyun_sign_method method, const char *key, size_t key_len,
		       const char *content, size_t content_len, bool upper, char *buf,
		       size_t size)
{
	const EVP_MD *md = gw_proto_hmac_md(gw_aliyun_name_sign_method(method));
	unsigned char mac[EVP_MAX_MD_SIZE];
	int n;

	if (!md || !key || !content || key_len > INT_MAX)
		return -EINVAL;
	if (size < (size_t)EVP_MD_size(md) * 2 + 1)
		return -ENOBUFS;
	n = gw_proto_hmac(md, key, key_len, content, content_len, mac);
	if (n >= 0)
		gw_proto_hex(mac, (size_t)n, upper, buf);
	explicit_bzero(mac, sizeof(mac));
	return n < 0 ? n : 2 * n;
}

int gw_aliyun_format_host(const char *product_key, const char *region, const char *instance_id,
			  char *buf, size_t size)
{
	if (region && instance_id)
		return -EINVAL;
	if (instance_id) {
		if (!gw_aliyun_valid_label(instance_id))
			return -EINVAL;
		return gw_bprintf(buf, size, "%s.mqtt.iothub.aliyuncs.com", instance_id);
	}
	if (!region)
		region = GW_ALIYUN_DEFAULT_REGION;
	if (!gw_aliyun_valid_label(product_key) || !gw_aliyun_valid_label(region))
		return -EINVAL;
	return gw_bprintf(buf, size, "%s.iot-as-mqtt.%s.aliyuncs.com", product_key, region);
}

int gw_aliyun_make_random(char *buf, size_t size)
{
	if (size <= GW_ALIYUN_RANDOM_LEN)
		return -ENOBUFS;
	return gw_proto_random_alnum(buf, GW_ALIYUN_RANDOM_LEN);
}

int gw_aliyun_sign_registration(enum gw_aliyun_sign_method method, const char *product_key,
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

/* Checks l against the contract in aliyun_login.h; the reason names the first field at
 * fault. */
static int check_login(const struct gw_aliyun_login *l, int *securemode, char *reason)
{
	const char *why = NULL;

	if (!gw_aliyun_valid_label(l->product_key))
		why = "the ProductKey must be " ID_RULE;
	else if (!gw_aliyun_valid_device_name(l->device_name))
		why = "the DeviceName must be 1..64 characters of A-Z a-z 0-9 - _ @ . :";
	else if (l->region && l->instance_id)
		why = "a region and an instance id exclude each other";
	else if (l->region && !gw_aliyun_valid_label(l->region))
		why = "the region must be " ID_RULE;
	else if (l->instance_id && !gw_aliyun_valid_label(l->instance_id))
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
		else if (!valid_token(l->secret, GW_ALIYUN_SECRET_MAX - 1, NULL))
			why = "the DeviceSecret must be 1..128 printable characters without space";
		else if (l->client_id && !valid_token(l->client_id, GW_ALIYUN_CID_MAX - 1, "|"))
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
		else if (!valid_token(l->secret, GW_ALIYUN_SECRET_MAX - 1, NULL))
			why = "the ProductSecret must be 1..128 printable characters without space";
		else if (l->client_id)
			why = "dynamic registration fixes the client id";
		else if (l->has_timestamp)
			why = "dynamic registration sends no timestamp";
		else if (!gw_aliyun_valid_random(l->random))
			why = "the random must be 1..64 characters of A-Z a-z 0-9";
		break;
	case GW_ALIYUN_AUTH_CONNWL:
		*securemode = l->securemode ? l->securemode : -2;
		if (*securemode != -2)
			why = "securemode must be -2 for a DeviceToken login";
		else if (!valid_token(l->secret, GW_ALIYUN_TOKEN_MAX - 1, NULL))
			why = "the DeviceToken must be 1..512 printable characters without space";
		else if (!valid_token(l->client_id, GW_ALIYUN_NWL_CID_MAX - 1, "|"))
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

/* docs/protocols/aliyun.md §4: the content names the submitted parameters sorted by name,
 * each name followed by its value; the client id in it is the bare id. */
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

/* docs/protocols/aliyun.md §3: the client id is fixed to "<dn>.<pk>" and carries the
 * registration parameters. The password is sent in lower-case hex, as the official Python SDK
 * does; the platform compares the hex case-insensitively (docs/protocols/aliyun.md §2). */
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
	r = gw_aliyun_sign_registration(l->sign_method, l->product_key, l->device_name, l->secret,
					l->random, false, ret->password, sizeof(ret->password));
	return r < 0 ? r : 0;
}

/* docs/protocols/aliyun.md §4: the ClientID from /ext/regnwl, authType=connwl, and the
 * DeviceToken as the password. */
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
