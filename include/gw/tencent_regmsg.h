/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Tencent dynamic registration, the messages (src/cloud/tencent_regmsg.c): the signed HTTPS
 * request of the current and the legacy API, its reply, and the AES-encrypted credentials in
 * it. The client that sends and receives them is gw/tencent_register.h. Conventions in
 * gw/tencent_common.h.
 */

#include "gw/tencent_common.h"

/* docs/protocols/tencent.md §2.1, §2.2 */
#define GW_TENCENT_REGISTER_PATH "/device/register"
#define GW_TENCENT_LEGACY_REGISTER_PATH "/register/dev"
/* the legacy API's Accept, as the Explorer C SDK sends it (docs/protocols/tencent.md §2.2) */
#define GW_TENCENT_LEGACY_REGISTER_ACCEPT "text/xml,application/json;*/*"

/* Dynamic registration (一型一密, docs/protocols/tencent.md §2): which HTTP API. */
enum gw_tencent_dynreg_api {
	/* POST /device/register, X-TC-* headers (docs/protocols/tencent.md §2.1) */
	GW_TENCENT_DYNREG_V2,
	/* POST /register/dev, signed body (docs/protocols/tencent.md §2.2) */
	GW_TENCENT_DYNREG_LEGACY,
};

/*
 * A random nonce for a registration request: 1..2147483647, so that it is a positive "int" in
 * every SDK's sense. Returns 0 or -errno from getrandom(2).
 */
int gw_tencent_make_nonce(uint32_t *ret);

struct gw_tencent_dynreg {
	enum gw_tencent_dynreg_api api;
	const char *region;
	const char *product_id;
	const char *device_name;
	const char *product_secret;
	enum gw_tencent_sign_method sign_method; /* V2 only; the legacy API signs HMAC-SHA1 */
	uint64_t timestamp;                      /* Unix seconds */
	uint32_t nonce;                          /* 1..INT32_MAX */
};

/* An HTTPS registration request: POST url with headers (each "Name: value") and body. */
struct gw_tencent_https_request {
	char host[GW_TENCENT_HOST_MAX];
	uint16_t port; /* GW_TENCENT_PORT_HTTPS */
	char url[GW_TENCENT_URL_MAX];
	char headers[GW_TENCENT_HEADERS][GW_TENCENT_HEADER_MAX];
	size_t n_headers; /* Content-Type first */
	char body[GW_TENCENT_BODY_MAX];
};

/*
 * Builds the registration request of d->api:
 *   V2      https://<region>.gateway.tencentdevices.com/device/register, body
 *           {"ProductId":"<pid>","DeviceName":"<dn>"}, headers Content-Type
 *           (application/json; charset=utf-8), Accept, X-TC-Algorithm (hmacsha256|hmacsha1),
 *           X-TC-Timestamp, X-TC-Nonce, X-TC-Signature = base64(HMAC_<m>(ProductSecret,
 *           "POST\n<host>\n/device/register\n\n<m>\n<ts>\n<nonce>\n<hex SHA_<m>(body)>")).
 *   LEGACY  https://gateway.tencentdevices.com/register/dev (regional hosts elsewhere), body
 *           {"deviceName":…,"nonce":…,"productId":…,"timestamp":…,"signature":S} with
 *           S = base64(hex HMAC-SHA1(ProductSecret, "deviceName=<dn>&nonce=<n>&productId=<pid>
 *           &timestamp=<ts>")), headers Content-Type application/x-www-form-urlencoded and
 *           Accept GW_TENCENT_LEGACY_REGISTER_ACCEPT as the C SDK sends them.
 *           d->sign_method must be HMAC_SHA1.
 * Returns 0, -EINVAL (reason says which field), -ENOBUFS or -EIO. Nothing in *ret is secret.
 */
int gw_tencent_build_dynreg(const struct gw_tencent_dynreg *d, struct gw_tencent_https_request *ret,
			    char *reason);

/*
 * The X-TC-Signature of a current-API request (docs/protocols/tencent.md §2.1):
 * base64(HMAC_<method>(product_secret as ASCII,
 * "POST\n<host>\n/device/register\n\n<method>\n<timestamp>\n<nonce>\n<hex SHA_<method>(body)>"))
 * into buf. Returns the length, -EINVAL, -ENOBUFS or -EIO. Exposed so that a test cloud can check
 * what a device sends.
 */
int gw_tencent_sign_dynreg(enum gw_tencent_sign_method method, const char *product_secret,
			   const char *host, uint64_t timestamp, uint32_t nonce, const char *body,
			   size_t body_len, char *buf, size_t size);

enum gw_tencent_cred_kind {
	GW_TENCENT_CRED_NONE = 0,
	GW_TENCENT_CRED_CERT = 1, /* encryptionType 1: clientCert + clientKey */
	GW_TENCENT_CRED_PSK = 2,  /* encryptionType 2: psk */
};

/* What a registration reply yields. */
struct gw_tencent_credentials {
	enum gw_tencent_cred_kind kind;
	char psk[GW_TENCENT_PSK_MAX];
	char client_cert[GW_TENCENT_PEM_MAX];
	char client_key[GW_TENCENT_PEM_MAX];
	/* A refusal (-EREMOTEIO): V2 Response.Error.Code/Message, legacy code/message. */
	char error_code[GW_TENCENT_CODE_MAX];
	char message[GW_TENCENT_MESSAGE_MAX];
	char request_id[GW_TENCENT_CODE_MAX]; /* V2 Response.RequestId, when present */
};

/*
 * Parses a registration reply of api:
 *   V2      {"Response":{"Len":n,"Payload":"<base64>","RequestId":"…"}} (Len optional) or
 *           {"Response":{"Error":{"Code":…,"Message":"…"},"RequestId":"…"}};
 *   LEGACY  {"code":0,"message":…,"payload":"<base64>"} or a non-zero code.
 * The payload is decrypted as gw_tencent_dynreg_decrypt() does and must be a JSON object with
 * an integer "encryptionType": 2 with a "psk" (checked as gw_tencent_check_psk()), 1 with
 * PEM strings "clientCert" and "clientKey". Returns 0 with ret->kind set; -EREMOTEIO (refused:
 * error_code, message set); -EMSGSIZE (len > GW_TENCENT_HTTPS_REPLY_MAX); -EBADMSG (anything
 * malformed, including a payload that does not decrypt to JSON: a wrong ProductSecret);
 * -EINVAL (bad api or product_secret); -ENOMEM; -EIO. *ret is wiped first and on failure
 * (but for the refusal's fields).
 */
int gw_tencent_parse_dynreg_reply(enum gw_tencent_dynreg_api api, const char *product_secret,
				  const char *buf, size_t len, struct gw_tencent_credentials *ret,
				  char *reason);

/*
 * docs/protocols/tencent.md §2.1: base64-decodes payload (canonical base64 of a whole number of
 * 16-byte blocks), decrypts it with AES-128-CBC, key = the first 16 bytes of product_secret, IV =
 * 16 × '0', no PKCS#7 padding, and strips the zero padding: with len_hint >= 0 (the reply's Len)
 * the plaintext is its first len_hint bytes and the rest must be 0..15 zero bytes; without, the
 * trailing zero bytes (at most 15) go. The plaintext (not NUL-terminated by the cipher; a NUL is
 * added) goes to out; *out_len gets its length. Returns 0, -EINVAL, -ENOBUFS, -EBADMSG or -EIO. out
 * is wiped on failure.
 */
int gw_tencent_dynreg_decrypt(const char *product_secret, const char *payload, size_t payload_len,
			      long long len_hint, char *out, size_t size, size_t *out_len,
			      char *reason);

/*
 * The inverse, for tests and test clouds: zero-pads plain to a block boundary, encrypts it as
 * above and base64-encodes it into out (NUL-terminated). Returns the length, -EINVAL, -ENOBUFS
 * or -EIO.
 */
int gw_tencent_dynreg_encrypt(const char *product_secret, const char *plain, size_t plain_len,
			      char *out, size_t size);

/* Wipes every secret in c (the whole struct). */
void gw_tencent_credentials_wipe(struct gw_tencent_credentials *c);
