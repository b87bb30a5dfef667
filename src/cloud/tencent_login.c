/* SPDX-License-Identifier: MIT */
/*
 * Tencent MQTT login: the CONNECT parameters (host, port, TLS, client id, username and signed
 * password) of a key (PSK) or certificate device, the TLS-PSK key, the regions and their
 * hosts, the checks of the identities and secrets a configuration names, and the signature
 * expiry a clock allows. The contract is in include/gw/tencent_login.h; protocol rules from
 * docs/protocols/tencent.md, cited as §N.
 *
 * Pure: the only system call is getrandom(2) in gw_tencent_make_connid(); nothing logs.
 * Decoded keys and MACs are wiped before return.
 */

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/timex.h>

#include "tencent-private.h"

static const char *const sign_method_names[] = {
	[GW_TENCENT_HMAC_SHA256] = "hmacsha256",
	[GW_TENCENT_HMAC_SHA1] = "hmacsha1",
};

/*
 * docs/protocols/tencent.md §1.5. The legacy registration host differs from the current one
 * only in Guangzhou; that section names the regional gateway hosts for the legacy API too
 * ("us-east.gateway… etc.").
 */
static const struct gw_tencent_region regions[] = {
	{ "ap-guangzhou", "china", "iotcloud.tencentdevices.com",
	  "ap-guangzhou.gateway.tencentdevices.com", "gateway.tencentdevices.com" },
	{ "us-east", NULL, "us-east.iotcloud.tencentdevices.com",
	  "us-east.gateway.tencentdevices.com", "us-east.gateway.tencentdevices.com" },
	{ "europe", NULL, "europe.iothub.tencentdevices.com", "europe.gateway.tencentdevices.com",
	  "europe.gateway.tencentdevices.com" },
	{ "ap-bangkok", NULL, "ap-bangkok.iothub.tencentdevices.com",
	  "ap-bangkok.gateway.tencentdevices.com", "ap-bangkok.gateway.tencentdevices.com" },
};

static bool valid_product_id(const char *s)
{
	if (!gw_has_length(s, 1, GW_TENCENT_PRODUCT_ID_MAX - 1))
		return false;
	for (; *s; s++)
		if (!gw_is_alnum(*s))
			return false;
	return true;
}

static bool valid_device_name(const char *s)
{
	if (!gw_has_length(s, 1, GW_TENCENT_DEVICE_NAME_MAX - 1))
		return false;
	for (; *s; s++)
		if (!gw_is_alnum(*s) && !strchr("-_.:@", *s))
			return false;
	return true;
}

const struct gw_tencent_region *gw_tencent_find_region(const char *name)
{
	size_t i;

	if (!name)
		return &regions[0];
	for (i = 0; i < N_ELEMENTS(regions); i++)
		if (strcmp(name, regions[i].name) == 0 ||
		    (regions[i].alias && strcmp(name, regions[i].alias) == 0))
			return &regions[i];
	return NULL;
}

int gw_tencent_check_region(const char *region)
{
	return gw_tencent_find_region(region) ? 0 : -EINVAL;
}

int gw_tencent_parse_sign_method(const char *s, enum gw_tencent_sign_method *ret)
{
	int i = gw_proto_lookup(sign_method_names, N_ELEMENTS(sign_method_names), s);

	if (i >= 0)
		*ret = (enum gw_tencent_sign_method)i;
	return i < 0 ? i : 0;
}

const char *gw_tencent_name_sign_method(enum gw_tencent_sign_method method)
{
	return gw_proto_name(sign_method_names, N_ELEMENTS(sign_method_names), method);
}

int gw_tencent_check_product_id(const char *s, char *reason)
{
	if (valid_product_id(s))
		return 0;
	set_reason(reason, "the ProductId must be 1..32 letters and digits");
	return -EINVAL;
}

int gw_tencent_check_device_name(const char *s, char *reason)
{
	if (valid_device_name(s))
		return 0;
	set_reason(reason, "the DeviceName must be 1..64 characters of A-Z a-z 0-9 - _ . : @");
	return -EINVAL;
}

/* Decodes a PSK into key (GW_TENCENT_PSK_BYTES_MAX bytes); returns its length or -EINVAL. */
static int decode_psk(const char *s, unsigned char *key, char *reason)
{
	int r;

	if (!gw_has_length(s, 1, GW_TENCENT_PSK_MAX - 1)) {
		set_reason(reason, "the PSK must be 4..64 characters of base64");
		return -EINVAL;
	}
	r = gw_proto_base64_decode(s, strlen(s), key, GW_TENCENT_PSK_BYTES_MAX);
	if (r == -EBADMSG) {
		set_reason(reason, "the PSK is not canonical base64 (A-Z a-z 0-9 + /, '=' padding "
				   "to a multiple of 4 characters)");
		return -EINVAL;
	}
	if (r < 0) {
		set_reason(reason, "the PSK is longer than %d bytes", GW_TENCENT_PSK_BYTES_MAX);
		return -EINVAL;
	}
	return r;
}

int gw_tencent_check_psk(const char *s, char *reason)
{
	unsigned char key[GW_TENCENT_PSK_BYTES_MAX];
	int r = decode_psk(s, key, reason);

	explicit_bzero(key, sizeof(key));
	return r < 0 ? r : 0;
}

bool gw_tencent_clock_trusted(const struct gw_tencent_clock *c)
{
	if (c->timesyncd_synchronized)
		return true;
	return c->adjtimex_state == TIME_OK && !(c->adjtimex_status & STA_UNSYNC);
}

uint64_t gw_tencent_login_expiry(uint64_t configured, bool automatic,
				 const struct gw_tencent_clock *c, bool *fell_back)
{
	*fell_back = false;
	if (!automatic)
		return configured;
	if (gw_tencent_clock_trusted(c))
		return c->now_s + GW_TENCENT_AUTO_EXPIRY_S;
	*fell_back = true;
	return 0;
}

int gw_tencent_psk_hex(const char *psk, char *buf, size_t size, char *reason)
{
	unsigned char key[GW_TENCENT_PSK_BYTES_MAX];
	int n = decode_psk(psk, key, reason);

	if (n >= 0 && (size_t)n * 2 + 1 > size)
		n = -ENOBUFS;
	if (n >= 0)
		gw_proto_hex(key, (size_t)n, false, buf);
	explicit_bzero(key, sizeof(key));
	return n < 0 ? n : 0;
}

int gw_tencent_check_product_secret(const char *s, char *reason)
{
	if (gw_proto_printable(s, GW_TENCENT_SECRET_MIN, GW_TENCENT_SECRET_MAX - 1, false, NULL))
		return 0;
	set_reason(reason, "the ProductSecret must be 16..128 printable characters without space");
	return -EINVAL;
}

int gw_tencent_check_keepalive(unsigned int seconds, char *reason)
{
	if (seconds >= 1 && seconds <= GW_TENCENT_KEEPALIVE_MAX)
		return 0;
	set_reason(reason, "keep-alive %u s is outside 1..%d s (the platform's limit is %d s; 0 "
			   "would hide a dead link)",
		   seconds, GW_TENCENT_KEEPALIVE_MAX, GW_TENCENT_KEEPALIVE_MAX);
	return -ERANGE;
}

int gw_tencent_format_host(const char *product_id, const char *region, char *buf, size_t size)
{
	const struct gw_tencent_region *rg = gw_tencent_find_region(region);

	if (!rg || !valid_product_id(product_id))
		return -EINVAL;
	return gw_bprintf(buf, size, "%s.%s", product_id, rg->mqtt_domain);
}

int gw_tencent_make_connid(char *buf, size_t size)
{
	if (size <= GW_TENCENT_CONNID_LEN)
		return -ENOBUFS;
	return gw_proto_random_alnum(buf, GW_TENCENT_CONNID_LEN);
}

static bool valid_connid(const char *s)
{
	size_t i;

	if (!gw_has_length(s, GW_TENCENT_CONNID_LEN, GW_TENCENT_CONNID_LEN))
		return false;
	for (i = 0; i < GW_TENCENT_CONNID_LEN; i++)
		if (!gw_is_alnum(s[i]))
			return false;
	return true;
}

int gw_tencent_build_connect(const struct gw_tencent_login *l, struct gw_tencent_connect *ret,
			     char *reason)
{
	unsigned char key[GW_TENCENT_PSK_BYTES_MAX], mac[EVP_MAX_MD_SIZE];
	char connid[GW_TENCENT_CONNID_LEN + 1];
	const char *method;
	int key_len = 0, r, n;

	memset(ret, 0, sizeof(*ret));
	method = gw_tencent_name_sign_method(l->sign_method);
	r = gw_tencent_check_product_id(l->product_id, reason);
	if (r >= 0)
		r = gw_tencent_check_device_name(l->device_name, reason);
	if (r < 0)
		return r;
	if (!gw_tencent_find_region(l->region)) {
		set_reason(reason, "unknown region (ap-guangzhou, us-east, europe, ap-bangkok)");
		return -EINVAL;
	}
	if (!method) {
		set_reason(reason, "unknown sign method");
		return -EINVAL;
	}
	if (l->transport != GW_TENCENT_TLS && l->transport != GW_TENCENT_TCP) {
		set_reason(reason, "unknown transport");
		return -EINVAL;
	}
	if (l->connid && !valid_connid(l->connid)) {
		set_reason(reason, "the connid must be %d letters and digits",
			   GW_TENCENT_CONNID_LEN);
		return -EINVAL;
	}
	if (l->certificate && l->transport != GW_TENCENT_TLS) {
		set_reason(reason, "a certificate device needs TLS");
		return -EINVAL;
	}
	if (!l->certificate) {
		key_len = decode_psk(l->psk, key, reason);
		if (key_len < 0) {
			explicit_bzero(key, sizeof(key));
			return key_len;
		}
	}

	if (l->connid) {
		memcpy(connid, l->connid, sizeof(connid));
	} else {
		r = gw_tencent_make_connid(connid, sizeof(connid));
		if (r < 0) {
			set_reason(reason, "cannot draw a connid");
			goto out;
		}
	}
	r = gw_tencent_format_host(l->product_id, l->region, ret->host, sizeof(ret->host));
	if (r < 0)
		goto out;
	ret->tls = l->transport == GW_TENCENT_TLS;
	ret->port = l->port ? l->port : ret->tls ? GW_TENCENT_PORT_TLS : GW_TENCENT_PORT_TCP;
	r = gw_bprintf(ret->client_id, sizeof(ret->client_id), "%s%s", l->product_id, l->device_name);
	if (r < 0)
		goto out;
	n = gw_bprintf(ret->username, sizeof(ret->username), "%s;%" PRIu32 ";%s;%" PRIu64,
		    ret->client_id, l->sdkappid ? l->sdkappid : GW_TENCENT_DEFAULT_SDKAPPID, connid,
		    l->expiry ? l->expiry : (uint64_t)GW_TENCENT_DEFAULT_EXPIRY);
	if (n < 0) {
		r = n;
		goto out;
	}
	/* docs/protocols/tencent.md §1.3: the certificate authenticates the device; the C SDK
	 * sends no password */
	if (l->certificate) {
		r = 0;
		goto out;
	}
	/* docs/protocols/tencent.md §1.2: the key is the decoded PSK bytes, not its base64 text. */
	r = gw_proto_hmac(gw_tencent_sign_md(l->sign_method), key, (size_t)key_len, ret->username,
			  (size_t)n, mac);
	if (r < 0)
		goto out;
	gw_proto_hex(mac, (size_t)r, false, ret->password);
	r = gw_bprintf(ret->password + 2 * r, sizeof(ret->password) - 2 * (size_t)r, ";%s", method);
out:
	explicit_bzero(key, sizeof(key));
	explicit_bzero(mac, sizeof(mac));
	if (r < 0) {
		explicit_bzero(ret, sizeof(*ret));
		if (r == -EIO)
			set_reason(reason, "libcrypto cannot compute the MAC");
		else if (r == -ENOBUFS)
			set_reason(reason, "the parameters are too long");
		return r;
	}
	return 0;
}
