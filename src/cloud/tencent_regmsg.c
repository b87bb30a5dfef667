/* SPDX-License-Identifier: MIT */
/*
 * Tencent dynamic registration (一型一密), the message formats: the signed HTTPS request of the
 * current (V2) and the legacy API, the reply of either, and the AES-encrypted payload in it
 * that carries the device's PSK or certificate and key. The contract is in
 * include/gw/tencent_regmsg.h; the I/O around it is tencent_register.c. Protocol rules from
 * docs/protocols/tencent.md, cited as §N.
 *
 * Pure: the only system call is getrandom(2) in gw_tencent_make_nonce(); nothing logs. Every
 * secret read out of a reply is wiped in the JSON tree and in the buffers it passed through.
 */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "tencent-private.h"

#define AES_BLOCK 16
#define SIGN_SOURCE_MAX 512 /* a StringToSign: bounded names and numbers, one 64-digit hash */

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

/* docs/protocols/tencent.md §2.1: lower-case hex SHA-256 or SHA-1 of the body, by the
 * algorithm (see that section on why SHA-1 goes with hmacsha1 despite the doc). */
static int body_hash_hex(enum gw_tencent_sign_method m, const char *body, size_t n, char *out)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (!EVP_Digest(body, n, digest, &len, gw_tencent_sign_md(m), NULL))
		return -EIO;
	gw_proto_hex(digest, len, false, out);
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
	/* The key is the ProductSecret's own bytes, not base64-decoded
	 * (docs/protocols/tencent.md §2.1). */
	r = gw_proto_hmac(gw_tencent_sign_md(method), product_secret, strlen(product_secret),
			  source, (size_t)n, mac);
	if (r < 0)
		return r;
	r = gw_proto_base64_encode(mac, (size_t)r, buf, size);
	explicit_bzero(mac, sizeof(mac));
	return r;
}

static int build_dynreg_v2(const struct gw_tencent_dynreg *d, const struct gw_tencent_region *rg,
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

static int build_dynreg_legacy(const struct gw_tencent_dynreg *d,
			       const struct gw_tencent_region *rg,
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
	/* docs/protocols/tencent.md §2.2: the keys in ASCII order; the signature is base64 of the
	 * hex text, which is what the platform checks (base64 of the raw digest fails with code
	 * 1010). */
	n = gw_bprintf(source, sizeof(source),
		    "deviceName=%s&nonce=%" PRIu32 "&productId=%s&timestamp=%" PRIu64,
		    d->device_name, d->nonce, d->product_id, d->timestamp);
	if (n < 0)
		return n;
	r = gw_proto_hmac(gw_tencent_sign_md(GW_TENCENT_HMAC_SHA1), d->product_secret,
			  strlen(d->product_secret), source, (size_t)n, mac);
	if (r < 0)
		return r;
	gw_proto_hex(mac, (size_t)r, false, hex);
	explicit_bzero(mac, sizeof(mac));
	r = gw_proto_base64_encode((const unsigned char *)hex, strlen(hex), sig, sizeof(sig));
	if (r < 0)
		return r;
	r = gw_bprintf(ret->body, sizeof(ret->body),
		    "{\"deviceName\":\"%s\",\"nonce\":%" PRIu32 ",\"productId\":\"%s\","
		    "\"timestamp\":%" PRIu64 ",\"signature\":\"%s\"}",
		    d->device_name, d->nonce, d->product_id, d->timestamp, sig);
	if (r >= 0)
		r = add_header(ret, "Content-Type: application/x-www-form-urlencoded");
	if (r >= 0)
		r = add_header(ret, "Accept: " GW_TENCENT_LEGACY_REGISTER_ACCEPT);
	return r;
}

int gw_tencent_build_dynreg(const struct gw_tencent_dynreg *d, struct gw_tencent_https_request *ret,
			    char *reason)
{
	const struct gw_tencent_region *rg;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = gw_tencent_check_product_id(d->product_id, reason);
	if (r >= 0)
		r = gw_tencent_check_device_name(d->device_name, reason);
	if (r >= 0)
		r = gw_tencent_check_product_secret(d->product_secret, reason);
	if (r < 0)
		return r;
	rg = gw_tencent_find_region(d->region);
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
		if (!gw_tencent_sign_md(d->sign_method)) {
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
	/* docs/protocols/tencent.md §2.1: the key is the first 16 bytes of the ProductSecret;
	 * the padding is zeros, stripped by the caller, so OpenSSL's own (PKCS#7) is off. */
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
	r = gw_proto_base64_decode(payload, payload_len, raw, cap);
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
		r = gw_proto_base64_encode(buf, n, out, size);
	explicit_bzero(buf, n);
	free(buf);
	return r;
}

void gw_tencent_credentials_wipe(struct gw_tencent_credentials *c)
{
	if (c)
		explicit_bzero(c, sizeof(*c));
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

/* The decrypted payload (docs/protocols/tencent.md §2.1): {"encryptionType":1|2, "psk" |
 * "clientCert"+"clientKey"}. */
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
	gw_json_wipe_member(root, "psk");
	gw_json_wipe_member(root, "clientKey");
	json_decref(root);
	return r;
}

/* V2 error: {"Response":{"Error":{"Code":…,"Message":…},…}}. Code is text in Tencent's cloud
 * API style; an integer is taken too, as docs/protocols/tencent.md §2.1 shows none. */
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

	resp = get_object(root, "", "Response", reason);
	if (!resp)
		return -EBADMSG;
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
