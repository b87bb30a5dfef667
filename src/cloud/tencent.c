/* SPDX-License-Identifier: MIT */
/*
 * Tencent Cloud IoT Explorer: MQTT signing, dynamic registration (request, reply, payload
 * decryption) and the data-template messages and topics. Pure (see include/gw/tencent.h);
 * protocol rules from the fact sheet shared/protocols/tencent.md, cited as §N.
 */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/timex.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "gw/tencent.h"
#include "gw/json.h"
#include "gw/util.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))
#define AES_BLOCK 16
#define SIGN_SOURCE_MAX 512 /* a StringToSign: bounded names and numbers, one 64-digit hash */
#define THING_ID_RULE "1..64 printable characters without space"

static const char *const sign_method_names[] = {
	[GW_TENCENT_HMAC_SHA256] = "hmacsha256",
	[GW_TENCENT_HMAC_SHA1] = "hmacsha1",
};

static const char *const method_names[] = {
	[GW_TENCENT_METHOD_REPORT] = "report",
	[GW_TENCENT_METHOD_REPORT_REPLY] = "report_reply",
	[GW_TENCENT_METHOD_REPORT_INFO] = "report_info",
	[GW_TENCENT_METHOD_REPORT_INFO_REPLY] = "report_info_reply",
	[GW_TENCENT_METHOD_GET_STATUS] = "get_status",
	[GW_TENCENT_METHOD_GET_STATUS_REPLY] = "get_status_reply",
	[GW_TENCENT_METHOD_CLEAR_CONTROL] = "clear_control",
	[GW_TENCENT_METHOD_CONTROL] = "control",
	[GW_TENCENT_METHOD_CONTROL_REPLY] = "control_reply",
	[GW_TENCENT_METHOD_EVENT_POST] = "event_post",
	[GW_TENCENT_METHOD_EVENTS_POST] = "events_post",
	[GW_TENCENT_METHOD_EVENT_REPLY] = "event_reply",
	[GW_TENCENT_METHOD_ACTION] = "action",
	[GW_TENCENT_METHOD_ACTION_REPLY] = "action_reply",
};

static const char *const topic_names[] = {
	[GW_TENCENT_TOPIC_PROPERTY] = "property",
	[GW_TENCENT_TOPIC_EVENT] = "event",
	[GW_TENCENT_TOPIC_ACTION] = "action",
};

/*
 * §1.5. The legacy registration host differs from the current one only in Guangzhou; the fact
 * sheet names the regional gateway hosts for the legacy API too ("us-east.gateway… etc.").
 */
static const struct region {
	const char *name;
	const char *alias;
	const char *mqtt_domain;
	const char *dynreg_host;
	const char *legacy_dynreg_host;
} regions[] = {
	{ "ap-guangzhou", "china", "iotcloud.tencentdevices.com",
	  "ap-guangzhou.gateway.tencentdevices.com", "gateway.tencentdevices.com" },
	{ "us-east", NULL, "us-east.iotcloud.tencentdevices.com",
	  "us-east.gateway.tencentdevices.com", "us-east.gateway.tencentdevices.com" },
	{ "europe", NULL, "europe.iothub.tencentdevices.com", "europe.gateway.tencentdevices.com",
	  "europe.gateway.tencentdevices.com" },
	{ "ap-bangkok", NULL, "ap-bangkok.iothub.tencentdevices.com",
	  "ap-bangkok.gateway.tencentdevices.com", "ap-bangkok.gateway.tencentdevices.com" },
};

static void set_reason(char *reason, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_reason(char *reason, const char *fmt, ...)
{
	va_list ap;

	if (!reason)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, GW_TENCENT_REASON_MAX, fmt, ap);
	va_end(ap);
}

/* Printable ASCII, space only when allowed. */
static bool printable_n(const char *s, size_t n, size_t min, size_t max, bool space)
{
	size_t i;

	if (!s || n < min || n > max)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] < (space ? ' ' : '!') || s[i] > '~')
			return false;
	return true;
}

static bool printable(const char *s, size_t min, size_t max, bool space)
{
	return s && printable_n(s, strnlen(s, max + 1), min, max, space);
}

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

static bool valid_token_n(const char *s, size_t n)
{
	return printable_n(s, n, 1, GW_TENCENT_TOKEN_MAX - 1, true);
}

static bool valid_token(const char *s)
{
	return printable(s, 1, GW_TENCENT_TOKEN_MAX - 1, true);
}

static bool valid_thing_id_n(const char *s, size_t n)
{
	return printable_n(s, n, 1, GW_TENCENT_THING_ID_MAX - 1, false);
}

static const struct region *find_region(const char *name)
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
	return find_region(region) ? 0 : -EINVAL;
}

int gw_tencent_parse_sign_method(const char *s, enum gw_tencent_sign_method *ret)
{
	size_t i;

	for (i = 0; s && i < N_ELEMENTS(sign_method_names); i++) {
		if (strcmp(s, sign_method_names[i]) == 0) {
			*ret = (enum gw_tencent_sign_method)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *gw_tencent_name_sign_method(enum gw_tencent_sign_method method)
{
	if ((unsigned)method >= N_ELEMENTS(sign_method_names))
		return NULL;
	return sign_method_names[method];
}

const char *gw_tencent_name_method(enum gw_tencent_method m)
{
	if ((unsigned)m >= N_ELEMENTS(method_names))
		return NULL;
	return method_names[m];
}

/* Base64 (RFC 4648 §4), canonical only: '=' padding to a multiple of 4, nothing else, and the
 * unused low bits of the last character zero, so that one text means one key. */
static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Returns the decoded length, -EBADMSG for text that is not canonical base64, -ENOBUFS. */
static int b64_decode(const char *s, size_t n, unsigned char *out, size_t size)
{
	size_t i, o = 0;

	if (n == 0 || n % 4 != 0 || n / 4 * 3 > INT_MAX)
		return -EBADMSG;
	for (i = 0; i < n; i += 4) {
		bool last = i + 4 == n;
		int v[4], k, pad = 0;
		uint32_t bits = 0;

		for (k = 0; k < 4; k++) {
			if (last && k >= 2 && s[i + k] == '=') {
				pad++;
				v[k] = 0;
				continue;
			}
			v[k] = pad ? -1 : b64_value(s[i + k]);
			if (v[k] < 0)
				return -EBADMSG;
		}
		bits = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
		       (uint32_t)v[3];
		if ((pad == 1 && (bits & 0xff)) || (pad == 2 && (bits & 0xffff)))
			return -EBADMSG;
		if (o + 3 - (size_t)pad > size)
			return -ENOBUFS;
		out[o++] = (unsigned char)(bits >> 16);
		if (pad < 2)
			out[o++] = (unsigned char)(bits >> 8);
		if (pad < 1)
			out[o++] = (unsigned char)bits;
	}
	return (int)o;
}

/* Returns the length of the text (NUL-terminated in out) or -ENOBUFS. */
static int b64_encode(const unsigned char *in, size_t n, char *out, size_t size)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;

	if ((n + 2) / 3 * 4 + 1 > size || (n + 2) / 3 * 4 > INT_MAX)
		return -ENOBUFS;
	for (i = 0; i < n; i += 3) {
		uint32_t bits = (uint32_t)in[i] << 16;

		if (i + 1 < n)
			bits |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			bits |= in[i + 2];
		out[o++] = alphabet[bits >> 18 & 63];
		out[o++] = alphabet[bits >> 12 & 63];
		out[o++] = i + 1 < n ? alphabet[bits >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? alphabet[bits & 63] : '=';
	}
	out[o] = '\0';
	return (int)o;
}

static void to_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static const EVP_MD *method_md(enum gw_tencent_sign_method m)
{
	switch (m) {
	case GW_TENCENT_HMAC_SHA256:
		return EVP_sha256();
	case GW_TENCENT_HMAC_SHA1:
		return EVP_sha1();
	default:
		return NULL;
	}
}

/* The raw MAC into mac (EVP_MAX_MD_SIZE bytes); returns its length or -EIO. */
static int hmac(enum gw_tencent_sign_method m, const void *key, size_t key_len, const char *msg,
		size_t msg_len, unsigned char *mac)
{
	const EVP_MD *md = method_md(m);
	unsigned int n = 0;

	if (!md || key_len > INT_MAX)
		return -EINVAL;
	if (!HMAC(md, key, (int)key_len, (const unsigned char *)msg, msg_len, mac, &n))
		return -EIO;
	return (int)n;
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
	r = b64_decode(s, strlen(s), key, GW_TENCENT_PSK_BYTES_MAX);
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
	static const char digits[] = "0123456789abcdef";
	unsigned char key[GW_TENCENT_PSK_BYTES_MAX];
	int n = decode_psk(psk, key, reason);

	if (n >= 0 && (size_t)n * 2 + 1 > size)
		n = -ENOBUFS;
	for (int i = 0; i < n; i++) {
		buf[2 * i] = digits[key[i] >> 4];
		buf[2 * i + 1] = digits[key[i] & 15];
	}
	if (n >= 0)
		buf[2 * n] = '\0';
	explicit_bzero(key, sizeof(key));
	return n < 0 ? n : 0;
}

int gw_tencent_check_product_secret(const char *s, char *reason)
{
	if (printable(s, GW_TENCENT_SECRET_MIN, GW_TENCENT_SECRET_MAX - 1, false))
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
	const struct region *rg = find_region(region);

	if (!rg || !valid_product_id(product_id))
		return -EINVAL;
	return gw_bprintf(buf, size, "%s.%s", product_id, rg->mqtt_domain);
}

/* Unbiased random characters of [A-Za-z0-9]. */
static int random_alnum(char *buf, size_t n)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char bytes[32];
	size_t got_n = 0, i = sizeof(bytes);
	ssize_t got;

	while (got_n < n) {
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
		/* 248 = 4 * 62: the rest would make the first eight characters likelier. */
		if (bytes[i] < 248)
			buf[got_n++] = alphabet[bytes[i] % 62];
		i++;
	}
	buf[n] = '\0';
	return 0;
}

int gw_tencent_make_connid(char *buf, size_t size)
{
	if (size <= GW_TENCENT_CONNID_LEN)
		return -ENOBUFS;
	return random_alnum(buf, GW_TENCENT_CONNID_LEN);
}

int gw_tencent_make_nonce(uint32_t *ret)
{
	uint32_t v = 0;
	ssize_t got;

	do {
		got = getrandom(&v, sizeof(v), 0);
		if (got < 0 && errno != EINTR)
			return -errno;
		v &= INT32_MAX;
	} while (got != (ssize_t)sizeof(v) || v == 0);
	*ret = v;
	return 0;
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
	if (!find_region(l->region)) {
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
	/* §1.3: the certificate authenticates the device; the C SDK sends no password */
	if (l->certificate) {
		r = 0;
		goto out;
	}
	/* §1.2: the key is the decoded PSK bytes, not its base64 text. */
	r = hmac(l->sign_method, key, (size_t)key_len, ret->username, (size_t)n, mac);
	if (r < 0)
		goto out;
	to_hex(mac, (size_t)r, ret->password);
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

static int add_header(struct gw_tencent_https_request *req, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int add_header(struct gw_tencent_https_request *req, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (req->n_headers >= GW_TENCENT_HEADERS)
		return -ENOBUFS;
	va_start(ap, fmt);
	n = vsnprintf(req->headers[req->n_headers], GW_TENCENT_HEADER_MAX, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= GW_TENCENT_HEADER_MAX)
		return -ENOBUFS;
	req->n_headers++;
	return 0;
}

/* §2.1: lower-case hex SHA-256 or SHA-1 of the body, by the algorithm (see the fact sheet on
 * why SHA-1 goes with hmacsha1 despite the doc). */
static int body_hash_hex(enum gw_tencent_sign_method m, const char *body, size_t n, char *out)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (!EVP_Digest(body, n, digest, &len, method_md(m), NULL))
		return -EIO;
	to_hex(digest, len, out);
	return 0;
}

int gw_tencent_sign_dynreg(enum gw_tencent_sign_method method, const char *product_secret,
			   const char *host, uint64_t timestamp, uint32_t nonce, const char *body,
			   size_t body_len, char *buf, size_t size)
{
	const char *alg = gw_tencent_name_sign_method(method);
	char hash[2 * EVP_MAX_MD_SIZE + 1], source[SIGN_SOURCE_MAX];
	unsigned char mac[EVP_MAX_MD_SIZE];
	int r, n;

	if (!alg || !product_secret || !host || !body)
		return -EINVAL;
	r = body_hash_hex(method, body, body_len, hash);
	if (r < 0)
		return r;
	/* Eight fields, the fourth (the query string) empty, no newline at the end. */
	n = gw_bprintf(source, sizeof(source), "POST\n%s\n%s\n\n%s\n%" PRIu64 "\n%" PRIu32 "\n%s",
		    host, GW_TENCENT_REGISTER_PATH, alg, timestamp, nonce, hash);
	if (n < 0)
		return n == -ENOBUFS ? -EINVAL : n;
	/* The key is the ProductSecret's own bytes, not base64-decoded (§2.1). */
	r = hmac(method, product_secret, strlen(product_secret), source, (size_t)n, mac);
	if (r < 0)
		return r;
	r = b64_encode(mac, (size_t)r, buf, size);
	explicit_bzero(mac, sizeof(mac));
	return r;
}

static int build_dynreg_v2(const struct gw_tencent_dynreg *d, const struct region *rg,
			   struct gw_tencent_https_request *ret)
{
	const char *alg = gw_tencent_name_sign_method(d->sign_method);
	char sig[2 * EVP_MAX_MD_SIZE + 1];
	int r;

	r = gw_bprintf(ret->host, sizeof(ret->host), "%s", rg->dynreg_host);
	if (r >= 0)
		r = gw_bprintf(ret->url, sizeof(ret->url), "https://%s" GW_TENCENT_REGISTER_PATH,
			    ret->host);
	/* Both names are checked to need no JSON escaping; the hash covers these exact bytes. */
	if (r >= 0)
		r = gw_bprintf(ret->body, sizeof(ret->body),
			    "{\"ProductId\":\"%s\",\"DeviceName\":\"%s\"}", d->product_id,
			    d->device_name);
	if (r < 0)
		return r;
	r = gw_tencent_sign_dynreg(d->sign_method, d->product_secret, ret->host, d->timestamp,
				   d->nonce, ret->body, strlen(ret->body), sig, sizeof(sig));
	if (r < 0)
		return r;
	r = add_header(ret, "Content-Type: application/json; charset=utf-8");
	if (r >= 0)
		r = add_header(ret, "Accept: application/json;*/*");
	if (r >= 0)
		r = add_header(ret, "X-TC-Algorithm: %s", alg);
	if (r >= 0)
		r = add_header(ret, "X-TC-Timestamp: %" PRIu64, d->timestamp);
	if (r >= 0)
		r = add_header(ret, "X-TC-Nonce: %" PRIu32, d->nonce);
	if (r >= 0)
		r = add_header(ret, "X-TC-Signature: %s", sig);
	return r;
}

static int build_dynreg_legacy(const struct gw_tencent_dynreg *d, const struct region *rg,
			       struct gw_tencent_https_request *ret)
{
	char source[SIGN_SOURCE_MAX], hex[2 * EVP_MAX_MD_SIZE + 1], sig[4 * EVP_MAX_MD_SIZE + 4];
	unsigned char mac[EVP_MAX_MD_SIZE];
	int r, n;

	r = gw_bprintf(ret->host, sizeof(ret->host), "%s", rg->legacy_dynreg_host);
	if (r >= 0)
		r = gw_bprintf(ret->url, sizeof(ret->url),
			    "https://%s" GW_TENCENT_LEGACY_REGISTER_PATH, ret->host);
	if (r < 0)
		return r;
	/* §2.2: the keys in ASCII order; the signature is base64 of the hex text, which is what
	 * the platform checks (base64 of the raw digest fails with code 1010). */
	n = gw_bprintf(source, sizeof(source),
		    "deviceName=%s&nonce=%" PRIu32 "&productId=%s&timestamp=%" PRIu64,
		    d->device_name, d->nonce, d->product_id, d->timestamp);
	if (n < 0)
		return n;
	r = hmac(GW_TENCENT_HMAC_SHA1, d->product_secret, strlen(d->product_secret), source,
		 (size_t)n, mac);
	if (r < 0)
		return r;
	to_hex(mac, (size_t)r, hex);
	explicit_bzero(mac, sizeof(mac));
	r = b64_encode((const unsigned char *)hex, strlen(hex), sig, sizeof(sig));
	if (r < 0)
		return r;
	r = gw_bprintf(ret->body, sizeof(ret->body),
		    "{\"deviceName\":\"%s\",\"nonce\":%" PRIu32 ",\"productId\":\"%s\","
		    "\"timestamp\":%" PRIu64 ",\"signature\":\"%s\"}",
		    d->device_name, d->nonce, d->product_id, d->timestamp, sig);
	if (r >= 0)
		r = add_header(ret, "Content-Type: application/x-www-form-urlencoded");
	return r;
}

int gw_tencent_build_dynreg(const struct gw_tencent_dynreg *d, struct gw_tencent_https_request *ret,
			    char *reason)
{
	const struct region *rg;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = gw_tencent_check_product_id(d->product_id, reason);
	if (r >= 0)
		r = gw_tencent_check_device_name(d->device_name, reason);
	if (r >= 0)
		r = gw_tencent_check_product_secret(d->product_secret, reason);
	if (r < 0)
		return r;
	rg = find_region(d->region);
	if (!rg) {
		set_reason(reason, "unknown region (ap-guangzhou, us-east, europe, ap-bangkok)");
		return -EINVAL;
	}
	if (d->nonce == 0 || d->nonce > INT32_MAX) {
		set_reason(reason, "the nonce must be 1..2147483647");
		return -EINVAL;
	}
	ret->port = GW_TENCENT_PORT_HTTPS;
	switch (d->api) {
	case GW_TENCENT_DYNREG_V2:
		if (!method_md(d->sign_method)) {
			set_reason(reason, "unknown sign method");
			return -EINVAL;
		}
		r = build_dynreg_v2(d, rg, ret);
		break;
	case GW_TENCENT_DYNREG_LEGACY:
		if (d->sign_method != GW_TENCENT_HMAC_SHA1) {
			set_reason(reason, "the legacy registration API signs with hmacsha1 only");
			return -EINVAL;
		}
		r = build_dynreg_legacy(d, rg, ret);
		break;
	default:
		set_reason(reason, "unknown registration API");
		return -EINVAL;
	}
	if (r < 0) {
		memset(ret, 0, sizeof(*ret));
		set_reason(reason, r == -EIO ? "libcrypto cannot compute the signature" :
					       "the request is too long");
	}
	return r < 0 ? r : 0;
}

/* One AES-128-CBC pass without padding over n bytes (a multiple of the block). */
static int aes_cbc(bool encrypt, const char *product_secret, const unsigned char *in, size_t n,
		   unsigned char *out)
{
	unsigned char iv[AES_BLOCK];
	EVP_CIPHER_CTX *ctx;
	int len = 0, fin = 0, r = -EIO;

	memset(iv, '0', sizeof(iv)); /* 16 × ASCII '0' */
	if (n > INT_MAX)
		return -EINVAL;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -ENOMEM;
	/* §2.1: the key is the first 16 bytes of the ProductSecret; the padding is zeros,
	 * stripped by the caller, so OpenSSL's own (PKCS#7) is off. */
	if (EVP_CipherInit_ex(ctx, EVP_aes_128_cbc(), NULL, (const unsigned char *)product_secret,
			      iv, encrypt ? 1 : 0) == 1 &&
	    EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
	    EVP_CipherUpdate(ctx, out, &len, in, (int)n) == 1 &&
	    EVP_CipherFinal_ex(ctx, out + len, &fin) == 1 && (size_t)len + (size_t)fin == n)
		r = 0;
	EVP_CIPHER_CTX_free(ctx);
	return r;
}

int gw_tencent_dynreg_decrypt(const char *product_secret, const char *payload, size_t payload_len,
			      long long len_hint, char *out, size_t size, size_t *out_len,
			      char *reason)
{
	unsigned char *raw = NULL;
	size_t cap = payload_len / 4 * 3, n, plain, i;
	int r;

	if (gw_tencent_check_product_secret(product_secret, reason) < 0)
		return -EINVAL;
	if (!payload || !out || size == 0)
		return -EINVAL;
	explicit_bzero(out, size);
	if (payload_len == 0) {
		set_reason(reason, "empty payload");
		return -EBADMSG;
	}
	raw = malloc(cap ? cap : 1);
	if (!raw)
		return -ENOMEM;
	r = b64_decode(payload, payload_len, raw, cap);
	if (r < 0) {
		set_reason(reason, "the payload is not base64");
		r = -EBADMSG;
		goto out;
	}
	n = (size_t)r;
	if (n == 0 || n % AES_BLOCK != 0) {
		set_reason(reason, "the payload is %zu bytes, not a whole number of AES blocks", n);
		r = -EBADMSG;
		goto out;
	}
	if (n + 1 > size) {
		set_reason(reason, "the payload does not fit %zu bytes", size);
		r = -ENOBUFS;
		goto out;
	}
	r = aes_cbc(false, product_secret, raw, n, (unsigned char *)out);
	if (r < 0) {
		set_reason(reason, "libcrypto cannot decrypt");
		goto out;
	}
	if (len_hint >= 0) {
		if ((unsigned long long)len_hint > n || n - (size_t)len_hint >= AES_BLOCK) {
			set_reason(reason, "Len %lld does not match %zu decrypted bytes", len_hint,
				   n);
			r = -EBADMSG;
			goto out;
		}
		plain = (size_t)len_hint;
	} else {
		plain = n;
		while (plain > 0 && out[plain - 1] == '\0' && n - plain < AES_BLOCK)
			plain--;
	}
	/* Zero padding to the block boundary, nothing else: anything else is a corrupt payload
	 * or a ProductSecret that is not the product's. */
	for (i = plain; i < n; i++) {
		if (out[i] != '\0') {
			set_reason(reason, "bad padding after the decrypted payload (wrong "
					   "ProductSecret?)");
			r = -EBADMSG;
			goto out;
		}
	}
	out[plain] = '\0';
	*out_len = plain;
	r = 0;
out:
	if (raw) {
		explicit_bzero(raw, cap ? cap : 1);
		free(raw);
	}
	if (r < 0)
		explicit_bzero(out, size);
	return r;
}

int gw_tencent_dynreg_encrypt(const char *product_secret, const char *plain, size_t plain_len,
			      char *out, size_t size)
{
	size_t n = (plain_len / AES_BLOCK + (plain_len % AES_BLOCK ? 1 : 0)) * AES_BLOCK;
	unsigned char *buf;
	int r;

	if (gw_tencent_check_product_secret(product_secret, NULL) < 0 || !plain || plain_len == 0)
		return -EINVAL;
	buf = calloc(1, n);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, plain, plain_len);
	r = aes_cbc(true, product_secret, buf, n, buf);
	if (r >= 0)
		r = b64_encode(buf, n, out, size);
	explicit_bzero(buf, n);
	free(buf);
	return r;
}

void gw_tencent_credentials_wipe(struct gw_tencent_credentials *c)
{
	if (c)
		explicit_bzero(c, sizeof(*c));
}

/* Reasons stay within GW_TENCENT_REASON_MAX (include/gw/json.h). */
static int load_object(const char *buf, size_t len, size_t max, json_t **ret, char *reason)
{
	return gw_json_load_object(buf, len, max, ret, reason, GW_TENCENT_REASON_MAX);
}

/* An optional string member copied for logs; absent leaves dst empty. */
static int get_text(json_t *obj, const char *where, const char *name, char *dst, size_t size,
		    char *reason)
{
	json_t *v = json_object_get(obj, name);

	dst[0] = '\0';
	if (!v)
		return 0;
	if (!json_is_string(v)) {
		set_reason(reason, "\"%s%s\" is not a string", where, name);
		return -EBADMSG;
	}
	gw_json_copy_text(dst, size, json_string_value(v), json_string_length(v));
	return 0;
}

static int get_int(json_t *obj, const char *where, const char *name, bool required,
		   json_int_t min, json_int_t max, json_int_t *ret, char *reason)
{
	json_t *v = json_object_get(obj, name);

	if (!v) {
		if (!required)
			return 0;
		set_reason(reason, "no \"%s%s\"", where, name);
		return -EBADMSG;
	}
	if (!json_is_integer(v)) {
		set_reason(reason, "\"%s%s\" is not an integer", where, name);
		return -EBADMSG;
	}
	if (json_integer_value(v) < min || json_integer_value(v) > max) {
		set_reason(reason, "\"%s%s\" out of range", where, name);
		return -EBADMSG;
	}
	*ret = json_integer_value(v);
	return 1;
}

/* A required string member; returns it (borrowed) or NULL after setting the reason. */
static const char *get_string(json_t *obj, const char *where, const char *name, size_t *len,
			      char *reason)
{
	json_t *v = json_object_get(obj, name);

	if (!v) {
		set_reason(reason, "no \"%s%s\"", where, name);
		return NULL;
	}
	if (!json_is_string(v)) {
		set_reason(reason, "\"%s%s\" is not a string", where, name);
		return NULL;
	}
	*len = json_string_length(v);
	return json_string_value(v);
}

/* jansson frees strings without wiping them: a secret parsed from a tree is wiped in it. */
static void wipe_member(json_t *obj, const char *name)
{
	json_t *v = json_object_get(obj, name);

	if (json_is_string(v))
		explicit_bzero((char *)json_string_value(v), json_string_length(v));
}

/* A PEM block as the registration returns it: "-----BEGIN …", printable ASCII and newlines. */
static int get_pem(json_t *obj, const char *name, char *dst, size_t size, char *reason)
{
	const char *s;
	size_t n, i;

	s = get_string(obj, "payload.", name, &n, reason);
	if (!s)
		return -EBADMSG;
	if (n == 0 || n >= size || strncmp(s, "-----BEGIN ", 11) != 0) {
		set_reason(reason, "\"payload.%s\" is not a PEM block of at most %zu bytes", name,
			   size - 1);
		return -EBADMSG;
	}
	for (i = 0; i < n; i++) {
		if ((s[i] < ' ' || s[i] > '~') && s[i] != '\n' && s[i] != '\r') {
			set_reason(reason, "\"payload.%s\" holds a control character", name);
			return -EBADMSG;
		}
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

/* The decrypted payload (§2.1): {"encryptionType":1|2, "psk" | "clientCert"+"clientKey"}. */
static int parse_credentials(const char *plain, size_t n, struct gw_tencent_credentials *ret,
			     char *reason)
{
	json_t *root = NULL;
	json_int_t type = 0;
	const char *s;
	size_t len;
	int r;

	r = load_object(plain, n, n, &root, reason);
	if (r == -EBADMSG)
		set_reason(reason, "the decrypted payload is not a JSON object (wrong "
				   "ProductSecret?)");
	if (r < 0)
		return r;
	r = get_int(root, "payload.", "encryptionType", true, 0, INT_MAX, &type, reason);
	if (r < 0)
		goto out;
	if (type == GW_TENCENT_CRED_PSK) {
		s = get_string(root, "payload.", "psk", &len, reason);
		if (!s || len >= sizeof(ret->psk) || strlen(s) != len ||
		    gw_tencent_check_psk(s, NULL) < 0) {
			if (s)
				set_reason(reason, "\"payload.psk\" is not a base64 PSK of 1..48 "
						   "bytes");
			r = -EBADMSG;
			goto out;
		}
		memcpy(ret->psk, s, len + 1);
		ret->kind = GW_TENCENT_CRED_PSK;
		r = 0;
	} else if (type == GW_TENCENT_CRED_CERT) {
		r = get_pem(root, "clientCert", ret->client_cert, sizeof(ret->client_cert), reason);
		if (r >= 0)
			r = get_pem(root, "clientKey", ret->client_key, sizeof(ret->client_key),
				    reason);
		if (r >= 0)
			ret->kind = GW_TENCENT_CRED_CERT;
	} else {
		set_reason(reason, "unknown encryptionType %lld", (long long)type);
		r = -EBADMSG;
	}
out:
	wipe_member(root, "psk");
	wipe_member(root, "clientKey");
	json_decref(root);
	return r;
}

/* V2 error: {"Response":{"Error":{"Code":…,"Message":…},…}}. Code is text in Tencent's cloud
 * API style; an integer is taken too, as the fact sheet does not show one. */
static int parse_v2_error(json_t *err, struct gw_tencent_credentials *ret, char *reason)
{
	json_t *code;
	int r;

	if (!json_is_object(err)) {
		set_reason(reason, "\"Response.Error\" is not an object");
		return -EBADMSG;
	}
	code = json_object_get(err, "Code");
	if (json_is_string(code))
		gw_json_copy_text(ret->error_code, sizeof(ret->error_code), json_string_value(code),
			     json_string_length(code));
	else if (json_is_integer(code))
		snprintf(ret->error_code, sizeof(ret->error_code), "%lld",
			 (long long)json_integer_value(code));
	else if (code) {
		set_reason(reason, "\"Response.Error.Code\" is neither a string nor an integer");
		return -EBADMSG;
	}
	r = get_text(err, "Response.Error.", "Message", ret->message, sizeof(ret->message), reason);
	if (r < 0)
		return r;
	set_reason(reason, "registration refused: %s: %s",
		   ret->error_code[0] ? ret->error_code : "?", ret->message);
	return -EREMOTEIO;
}

/* Finds the payload of a reply of api; returns 0 with *payload, *n and *len_hint set. */
static int reply_payload(enum gw_tencent_dynreg_api api, json_t *root,
			 struct gw_tencent_credentials *ret, const char **payload, size_t *n,
			 long long *len_hint, char *reason)
{
	json_int_t v = -1;
	json_t *resp;
	int r;

	*len_hint = -1;
	if (api == GW_TENCENT_DYNREG_LEGACY) {
		r = get_int(root, "", "code", true, INT_MIN, INT_MAX, &v, reason);
		if (r < 0)
			return r;
		r = get_text(root, "", "message", ret->message, sizeof(ret->message), reason);
		if (r < 0)
			return r;
		if (v != 0) {
			snprintf(ret->error_code, sizeof(ret->error_code), "%lld", (long long)v);
			set_reason(reason, "registration refused: code %lld: %s", (long long)v,
				   ret->message);
			return -EREMOTEIO;
		}
		*payload = get_string(root, "", "payload", n, reason);
		return *payload ? 0 : -EBADMSG;
	}

	resp = json_object_get(root, "Response");
	if (!json_is_object(resp)) {
		set_reason(reason, resp ? "\"Response\" is not an object" : "no \"Response\"");
		return -EBADMSG;
	}
	r = get_text(resp, "Response.", "RequestId", ret->request_id, sizeof(ret->request_id),
		     reason);
	if (r < 0)
		return r;
	if (json_object_get(resp, "Error"))
		return parse_v2_error(json_object_get(resp, "Error"), ret, reason);
	r = get_int(resp, "Response.", "Len", false, 1, GW_TENCENT_HTTPS_REPLY_MAX, &v, reason);
	if (r < 0)
		return r;
	if (r > 0)
		*len_hint = v;
	*payload = get_string(resp, "Response.", "Payload", n, reason);
	return *payload ? 0 : -EBADMSG;
}

int gw_tencent_parse_dynreg_reply(enum gw_tencent_dynreg_api api, const char *product_secret,
				  const char *buf, size_t len, struct gw_tencent_credentials *ret,
				  char *reason)
{
	char *plain = NULL;
	const char *payload;
	size_t n = 0, plain_len = 0, plain_size = 0;
	long long len_hint;
	json_t *root = NULL;
	int r;

	explicit_bzero(ret, sizeof(*ret));
	if (api != GW_TENCENT_DYNREG_V2 && api != GW_TENCENT_DYNREG_LEGACY) {
		set_reason(reason, "unknown registration API");
		return -EINVAL;
	}
	r = gw_tencent_check_product_secret(product_secret, reason);
	if (r < 0)
		return r;
	r = load_object(buf, len, GW_TENCENT_HTTPS_REPLY_MAX, &root, reason);
	if (r < 0)
		return r;
	r = reply_payload(api, root, ret, &payload, &n, &len_hint, reason);
	if (r < 0)
		goto out;
	plain_size = n + 1;
	plain = malloc(plain_size);
	if (!plain) {
		r = -ENOMEM;
		goto out;
	}
	r = gw_tencent_dynreg_decrypt(product_secret, payload, n, len_hint, plain, plain_size,
				      &plain_len, reason);
	if (r == -ENOBUFS || r == -EINVAL)
		r = -EBADMSG; /* cannot happen with plain_size > n; keep the contract anyway */
	if (r < 0)
		goto out;
	r = parse_credentials(plain, plain_len, ret, reason);
out:
	if (plain) {
		explicit_bzero(plain, plain_size);
		free(plain);
	}
	json_decref(root);
	if (r < 0 && r != -EREMOTEIO) {
		char request_id[GW_TENCENT_CODE_MAX];

		memcpy(request_id, ret->request_id, sizeof(request_id));
		explicit_bzero(ret, sizeof(*ret));
		memcpy(ret->request_id, request_id, sizeof(request_id));
	} else if (r == -EREMOTEIO) {
		ret->kind = GW_TENCENT_CRED_NONE;
	}
	return r;
}

/* Data template. */

int gw_tencent_build_topic(enum gw_tencent_direction dir, enum gw_tencent_topic kind,
			   const char *product_id, const char *device_name, char *buf, size_t size)
{
	if ((dir != GW_TENCENT_UP && dir != GW_TENCENT_DOWN) ||
	    (unsigned)kind >= N_ELEMENTS(topic_names) || !valid_product_id(product_id) ||
	    !valid_device_name(device_name))
		return -EINVAL;
	return gw_bprintf(buf, size, "$thing/%s/%s/%s/%s", dir == GW_TENCENT_UP ? "up" : "down",
		       topic_names[kind], product_id, device_name);
}

/* Skips prefix at *s; true when it was there. */
static bool skip(const char **s, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncmp(*s, prefix, n) != 0)
		return false;
	*s += n;
	return true;
}

int gw_tencent_classify_topic(const char *topic, const char *product_id,
			      const char *device_name, enum gw_tencent_direction *dir,
			      enum gw_tencent_topic *kind)
{
	const char *s = topic;
	size_t i;

	if (!topic || !valid_product_id(product_id) || !valid_device_name(device_name) ||
	    !skip(&s, "$thing/"))
		return -ENOENT;
	if (skip(&s, "up/"))
		*dir = GW_TENCENT_UP;
	else if (skip(&s, "down/"))
		*dir = GW_TENCENT_DOWN;
	else
		return -ENOENT;
	for (i = 0; i < N_ELEMENTS(topic_names); i++) {
		const char *t = s;

		if (skip(&t, topic_names[i]) && skip(&t, "/") && skip(&t, product_id) &&
		    skip(&t, "/") && strcmp(t, device_name) == 0) {
			*kind = (enum gw_tencent_topic)i;
			return 0;
		}
	}
	return -ENOENT;
}

int gw_tencent_format_client_token(const char *product_id, uint64_t seq, char *buf, size_t size)
{
	if (!valid_product_id(product_id))
		return -EINVAL;
	return gw_bprintf(buf, size, "%s-%" PRIu64, product_id, seq);
}

/* Dumps o (which it takes) with the §1.7 size limit. */
static int dump(json_t *o, char **ret, size_t *ret_len)
{
	char *s;
	size_t n;

	if (!o)
		return -ENOMEM;
	s = json_dumps(o, DUMP_FLAGS);
	json_decref(o);
	if (!s)
		return -ENOMEM;
	n = strlen(s);
	if (n > GW_TENCENT_PAYLOAD_MAX) {
		/* the size it would have had, for the caller's log line */
		if (ret_len)
			*ret_len = n;
		free(s);
		return -EMSGSIZE;
	}
	*ret = s;
	if (ret_len)
		*ret_len = n;
	return 0;
}

/* The envelope every uplink message starts with: method, then clientToken. */
static json_t *envelope(enum gw_tencent_method m, const char *client_token)
{
	if (!valid_token(client_token))
		return NULL;
	return json_pack("{s:s,s:s}", "method", method_names[m], "clientToken", client_token);
}

static int set_timestamp(json_t *o, int64_t ts)
{
	if (ts < 0)
		return 0;
	return json_object_set_new(o, "timestamp", json_integer((json_int_t)ts));
}

int gw_tencent_build_report(const char *client_token, json_t *params, int64_t timestamp_ms,
			    char **ret, size_t *ret_len)
{
	json_t *o;
	int fail;

	if (!valid_token(client_token) || !json_is_object(params) || json_object_size(params) == 0)
		return -EINVAL;
	o = envelope(GW_TENCENT_METHOD_REPORT, client_token);
	if (!o)
		return -ENOMEM;
	fail = set_timestamp(o, timestamp_ms);
	fail |= json_object_set(o, "params", params);
	if (fail) {
		json_decref(o);
		return -ENOMEM;
	}
	return dump(o, ret, ret_len);
}

int gw_tencent_build_report_info(const char *client_token, const char *fw_ver, json_t *info,
				 char **ret, size_t *ret_len)
{
	json_t *o, *p;
	int fail;

	if (!valid_token(client_token) || !printable(fw_ver, 1, 64, false) ||
	    (info && (!json_is_object(info) || json_object_get(info, "fw_ver"))))
		return -EINVAL;
	p = info ? json_copy(info) : json_object();
	o = envelope(GW_TENCENT_METHOD_REPORT_INFO, client_token);
	if (!o || !p) {
		json_decref(o);
		json_decref(p);
		return -ENOMEM;
	}
	fail = json_object_set_new(p, "fw_ver", json_string(fw_ver));
	fail |= json_object_set_new(o, "params", p);
	if (fail) {
		json_decref(o);
		return -ENOMEM;
	}
	return dump(o, ret, ret_len);
}

int gw_tencent_build_get_status(const char *client_token, char **ret, size_t *ret_len)
{
	if (!valid_token(client_token))
		return -EINVAL;
	return dump(json_pack("{s:s,s:s,s:s,s:i}", "method",
			      method_names[GW_TENCENT_METHOD_GET_STATUS], "clientToken",
			      client_token, "type", "report", "showmeta", 0),
		    ret, ret_len);
}

int gw_tencent_build_clear_control(const char *client_token, char **ret, size_t *ret_len)
{
	if (!valid_token(client_token))
		return -EINVAL;
	return dump(envelope(GW_TENCENT_METHOD_CLEAR_CONTROL, client_token), ret, ret_len);
}

/* A status we send: printable ASCII, bounded, so a reply stays small and loggable. */
static bool valid_status(const char *s)
{
	return !s || printable(s, 0, GW_TENCENT_MESSAGE_MAX - 1, true);
}

int gw_tencent_build_control_reply(const char *client_token, int code, const char *status,
				   char **ret, size_t *ret_len)
{
	json_t *o;
	int fail;

	if (!valid_token(client_token) || !valid_status(status))
		return -EINVAL;
	o = envelope(GW_TENCENT_METHOD_CONTROL_REPLY, client_token);
	if (!o)
		return -ENOMEM;
	fail = json_object_set_new(o, "code", json_integer(code));
	if (status)
		fail |= json_object_set_new(o, "status", json_string(status));
	if (fail) {
		json_decref(o);
		return -ENOMEM;
	}
	return dump(o, ret, ret_len);
}

static bool valid_event(const struct gw_tencent_event *ev)
{
	static const char *const types[] = { "info", "alert", "fault", "fatal" };
	size_t i;

	if (!ev || !ev->event_id || !valid_thing_id_n(ev->event_id, strlen(ev->event_id)) ||
	    !json_is_object(ev->params) || !ev->type)
		return false;
	for (i = 0; i < N_ELEMENTS(types); i++)
		if (strcmp(ev->type, types[i]) == 0)
			return true;
	return false;
}

/* Adds the members of one event to o, in the documented order. */
static int add_event(json_t *o, const struct gw_tencent_event *ev)
{
	int fail;

	fail = json_object_set_new(o, "eventId", json_string(ev->event_id));
	fail |= json_object_set_new(o, "type", json_string(ev->type));
	fail |= set_timestamp(o, ev->timestamp_ms);
	fail |= json_object_set(o, "params", ev->params);
	return fail ? -ENOMEM : 0;
}

int gw_tencent_build_event_post(const char *client_token, const struct gw_tencent_event *ev,
				 char **ret, size_t *ret_len)
{
	json_t *o;

	if (!valid_token(client_token) || !valid_event(ev))
		return -EINVAL;
	o = envelope(GW_TENCENT_METHOD_EVENT_POST, client_token);
	if (!o)
		return -ENOMEM;
	if (json_object_set_new(o, "version", json_string("1.0")) || add_event(o, ev) < 0) {
		json_decref(o);
		return -ENOMEM;
	}
	return dump(o, ret, ret_len);
}

int gw_tencent_build_events_post(const char *client_token, const struct gw_tencent_event *ev,
				 size_t n, char **ret, size_t *ret_len)
{
	json_t *o, *a;
	size_t i;

	if (!valid_token(client_token) || !ev || n == 0)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!valid_event(&ev[i]))
			return -EINVAL;
	o = envelope(GW_TENCENT_METHOD_EVENTS_POST, client_token);
	if (!o)
		return -ENOMEM;
	a = json_array();
	if (json_object_set_new(o, "events", a)) { /* a NULL a fails here too */
		json_decref(o);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		json_t *e = json_object();

		if (!e || json_array_append_new(a, e) || add_event(e, &ev[i]) < 0) {
			json_decref(o);
			return -ENOMEM;
		}
	}
	return dump(o, ret, ret_len);
}

int gw_tencent_build_action_reply(const char *client_token, int code, const char *status,
				  json_t *response, char **ret, size_t *ret_len)
{
	json_t *o;
	int fail;

	if (!valid_token(client_token) || !valid_status(status) ||
	    (response && !json_is_object(response)))
		return -EINVAL;
	o = envelope(GW_TENCENT_METHOD_ACTION_REPLY, client_token);
	if (!o)
		return -ENOMEM;
	fail = json_object_set_new(o, "code", json_integer(code));
	if (status)
		fail |= json_object_set_new(o, "status", json_string(status));
	fail |= response ? json_object_set(o, "response", response) :
			   json_object_set_new(o, "response", json_object());
	if (fail) {
		json_decref(o);
		return -ENOMEM;
	}
	return dump(o, ret, ret_len);
}

/* "method" must be m. */
static int check_method(json_t *root, enum gw_tencent_method m, char *reason)
{
	const char *want = method_names[m];
	const char *s;
	size_t n;

	s = get_string(root, "", "method", &n, reason);
	if (!s)
		return -EBADMSG;
	if (n != strlen(want) || strcmp(s, want) != 0) {
		set_reason(reason, "\"method\" is not \"%s\"", want);
		return -EBADMSG;
	}
	return 0;
}

static int get_token(json_t *root, char *dst, char *reason)
{
	const char *s;
	size_t n;

	s = get_string(root, "", "clientToken", &n, reason);
	if (!s)
		return -EBADMSG;
	if (!valid_token_n(s, n) || strlen(s) != n) {
		set_reason(reason, "\"clientToken\" is not 1..%d printable characters",
			   GW_TENCENT_TOKEN_MAX - 1);
		return -EBADMSG;
	}
	memcpy(dst, s, n + 1);
	return 0;
}

int gw_tencent_peek_method(const char *buf, size_t len, enum gw_tencent_method *ret,
			   char *reason)
{
	json_t *root;
	const char *s;
	size_t n, i;
	int r;

	r = load_object(buf, len, GW_TENCENT_PAYLOAD_MAX, &root, reason);
	if (r < 0)
		return r;
	s = get_string(root, "", "method", &n, reason);
	r = s ? -ENOENT : -EBADMSG;
	for (i = 0; s && i < N_ELEMENTS(method_names); i++) {
		if (n == strlen(method_names[i]) && strcmp(s, method_names[i]) == 0) {
			*ret = (enum gw_tencent_method)i;
			r = 0;
			break;
		}
	}
	if (r == -ENOENT)
		set_reason(reason, "unknown method");
	json_decref(root);
	return r;
}

static int parse_reply(enum gw_tencent_method m, const char *buf, size_t len,
		       struct gw_tencent_reply *ret, char *reason)
{
	json_int_t code = 0;
	json_t *root, *data, *control;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = load_object(buf, len, GW_TENCENT_PAYLOAD_MAX, &root, reason);
	if (r < 0)
		return r;
	r = check_method(root, m, reason);
	if (r >= 0)
		r = get_token(root, ret->client_token, reason);
	if (r >= 0)
		r = get_int(root, "", "code", true, INT_MIN, INT_MAX, &code, reason);
	if (r >= 0)
		r = get_text(root, "", "status", ret->status, sizeof(ret->status), reason);
	if (r < 0)
		goto out;
	ret->code = (int)code;
	if (m == GW_TENCENT_METHOD_GET_STATUS_REPLY && ret->code == GW_TENCENT_CODE_OK) {
		/* §3.1: what was set while the device was away is data.control. */
		data = json_object_get(root, "data");
		if (!json_is_object(data)) {
			set_reason(reason, data ? "\"data\" is not an object" : "no \"data\"");
			r = -EBADMSG;
			goto out;
		}
		control = json_object_get(data, "control");
		if (control && !json_is_object(control)) {
			set_reason(reason, "\"data.control\" is not an object");
			r = -EBADMSG;
			goto out;
		}
		if (control && json_object_size(control) > 0)
			ret->control = json_incref(control);
	}
out:
	json_decref(root);
	if (r < 0)
		memset(ret, 0, sizeof(*ret));
	return r < 0 ? r : 0;
}

int gw_tencent_parse_report_reply(const char *buf, size_t len, struct gw_tencent_reply *ret,
				  char *reason)
{
	return parse_reply(GW_TENCENT_METHOD_REPORT_REPLY, buf, len, ret, reason);
}

int gw_tencent_parse_report_info_reply(const char *buf, size_t len, struct gw_tencent_reply *ret,
				       char *reason)
{
	return parse_reply(GW_TENCENT_METHOD_REPORT_INFO_REPLY, buf, len, ret, reason);
}

int gw_tencent_parse_event_reply(const char *buf, size_t len, struct gw_tencent_reply *ret,
				 char *reason)
{
	return parse_reply(GW_TENCENT_METHOD_EVENT_REPLY, buf, len, ret, reason);
}

int gw_tencent_parse_get_status_reply(const char *buf, size_t len, struct gw_tencent_reply *ret,
				      char *reason)
{
	return parse_reply(GW_TENCENT_METHOD_GET_STATUS_REPLY, buf, len, ret, reason);
}

static int parse_request(enum gw_tencent_method m, const char *buf, size_t len,
			 struct gw_tencent_request *ret, char *reason)
{
	json_t *root, *params;
	const char *s;
	size_t n;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = load_object(buf, len, GW_TENCENT_PAYLOAD_MAX, &root, reason);
	if (r < 0)
		return r;
	/* The token first: with it, even a malformed request can be answered. */
	r = get_token(root, ret->client_token, reason);
	if (r < 0)
		goto out;
	r = check_method(root, m, reason);
	if (r < 0)
		goto out;
	if (m == GW_TENCENT_METHOD_ACTION) {
		s = get_string(root, "", "actionId", &n, reason);
		if (!s) {
			r = -EBADMSG;
			goto out;
		}
		if (!valid_thing_id_n(s, n) || strlen(s) != n) {
			set_reason(reason, "\"actionId\" is not " THING_ID_RULE);
			r = -EBADMSG;
			goto out;
		}
		memcpy(ret->action_id, s, n + 1);
	}
	params = json_object_get(root, "params");
	if (!json_is_object(params)) {
		set_reason(reason, params ? "\"params\" is not an object" : "no \"params\"");
		r = -EBADMSG;
		goto out;
	}
	ret->params = json_incref(params);
out:
	json_decref(root);
	if (r < 0)
		ret->action_id[0] = '\0';
	return r;
}

int gw_tencent_parse_control(const char *buf, size_t len, struct gw_tencent_request *ret,
			     char *reason)
{
	return parse_request(GW_TENCENT_METHOD_CONTROL, buf, len, ret, reason);
}

int gw_tencent_parse_action(const char *buf, size_t len, struct gw_tencent_request *ret,
			    char *reason)
{
	return parse_request(GW_TENCENT_METHOD_ACTION, buf, len, ret, reason);
}
