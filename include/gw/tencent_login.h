/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Tencent MQTT login (src/cloud/tencent_login.c): the CONNECT parameters of a key (PSK) or
 * certificate device, the MQTT host of each region, the TLS-PSK key, the signature expiry,
 * and the checks of the identities and secrets a configuration names. Conventions in
 * gw/tencent_common.h.
 */

#include "gw/tencent_common.h"

/* docs/protocols/tencent.md §1.1, §1.7: the platform's keep-alive range ends at 900 s. */
#define GW_TENCENT_KEEPALIVE_MAX 900

/* docs/protocols/tencent.md §1.2: the sdkappid the Java SDK and most third-party code send. */
#define GW_TENCENT_DEFAULT_SDKAPPID 12010126u
/*
 * docs/protocols/tencent.md §1.2: the signature is valid until this Unix time (s). INT32_MAX
 * (2038-01-19) is the value the Java SDK (Integer.MAX_VALUE) and the C SDK on 32-bit targets send,
 * so every server-side integer width parses it; being in the far future it needs no clock on the
 * gateway.
 */
#define GW_TENCENT_DEFAULT_EXPIRY 2147483647u

/* "hmacsha256", "hmacsha1" ↔ the enum; case-sensitive, -EINVAL otherwise; NULL name. */
int gw_tencent_parse_sign_method(const char *s, enum gw_tencent_sign_method *ret);
const char *gw_tencent_name_sign_method(enum gw_tencent_sign_method method);

/*
 * Checks a region name: "ap-guangzhou" (alias "china", the SDKs' name), "us-east", "europe",
 * "ap-bangkok" (docs/protocols/tencent.md §1.5). NULL means GW_TENCENT_DEFAULT_REGION. Returns 0 or
 * -EINVAL.
 */
int gw_tencent_check_region(const char *region);

/* The MQTT host "<pid>.<domain of region>" (docs/protocols/tencent.md §1.5). Returns the
 * length, -EINVAL or -ENOBUFS. */
int gw_tencent_format_host(const char *product_id, const char *region, char *buf, size_t size);

/*
 * Input checks with a reason, for configuration loaders as much as for this module:
 * ProductId 1..32 letters and digits; DeviceName 1..64 of letters, digits and - _ . : @
 * (docs/protocols/tencent.md gives no rule; this keeps the username's ';' fields and topic
 * levels unambiguous); PSK canonical base64 (RFC 4648 alphabet, '=' padding, length a multiple
 * of 4, unused bits 0) of 1..48 bytes; ProductSecret 16..128 printable ASCII without space.
 * Return 0 or -EINVAL.
 */
int gw_tencent_check_product_id(const char *s, char *reason);
int gw_tencent_check_device_name(const char *s, char *reason);
int gw_tencent_check_psk(const char *s, char *reason);
int gw_tencent_check_product_secret(const char *s, char *reason);

/*
 * TLS-PSK (docs/protocols/tencent.md §1.4, the C SDK's 8883 mode): the TLS pre-shared key is the
 * base64-decoded PSK, which libmosquitto (mosquitto_tls_psk_set) takes as lower-case hex. Writes it
 * into buf (GW_TENCENT_PSK_HEX_MAX); returns 0, -EINVAL (reason: the PSK is not valid, as
 * gw_tencent_check_psk) or -ENOBUFS. buf is a secret: wipe it after use.
 */
#define GW_TENCENT_PSK_HEX_MAX (2 * GW_TENCENT_PSK_BYTES_MAX + 1)
#define GW_TENCENT_PSK_CIPHERS "PSK-AES128-CBC-SHA:PSK-AES256-CBC-SHA"
int gw_tencent_psk_hex(const char *psk, char *buf, size_t size, char *reason);

/*
 * docs/protocols/tencent.md §1.1, §1.7: a keep-alive for a Tencent connection: 1..900 s. 0 (which
 * the platform allows) is refused too: without PINGREQs sensorgw would not notice a dead link.
 * Returns 0, -ERANGE.
 */
int gw_tencent_check_keepalive(unsigned int seconds, char *reason);

/*
 * Fills buf with GW_TENCENT_CONNID_LEN random characters of [A-Za-z0-9] and a NUL
 * (docs/protocols/tencent.md §1.2; the SDKs draw a fresh one for every CONNECT). Returns 0,
 * -ENOBUFS, or -errno from getrandom(2).
 */
int gw_tencent_make_connid(char *buf, size_t size);

/*
 * expiry = auto: a login's signature expires GW_TENCENT_AUTO_EXPIRY_S after it was made (the Java
 * SDK's now + 600, docs/protocols/tencent.md §1.2), but only when the gateway's clock can be
 * trusted; otherwise the far-future default, which needs no clock ([SIGNTOOL]: "if the device clock
 * is not accurate"). What the system says about its clock, gathered by the caller:
 */
#define GW_TENCENT_AUTO_EXPIRY_S 600
struct gw_tencent_clock {
	int adjtimex_state;          /* adjtimex(2)'s return (TIME_OK, ...), or -1 */
	int adjtimex_status;         /* struct timex .status (STA_UNSYNC, ...) */
	bool timesyncd_synchronized; /* /run/systemd/timesync/synchronized exists */
	uint64_t now_s;              /* the wall clock, Unix seconds */
};
/* Trusted: the kernel says TIME_OK and not STA_UNSYNC (an NTP daemon disciplines it), or
 * systemd-timesyncd says it synchronised. Pure. */
bool gw_tencent_clock_trusted(const struct gw_tencent_clock *c);
/* The expiry to sign: configured (0 = the default) unless auto; with auto, now + 600 when the
 * clock is trusted, else 0 (the default) and *fell_back set. Pure. */
uint64_t gw_tencent_login_expiry(uint64_t configured, bool automatic,
				 const struct gw_tencent_clock *c, bool *fell_back);

enum gw_tencent_transport {
	/* 8883, server-certificate TLS plus the signed password (docs/protocols/tencent.md §1.4,
	 * [PY]) */
	GW_TENCENT_TLS,
	GW_TENCENT_TCP, /* 1883, plain TCP: the signed password is the only protection */
};

/*
 * What gw_tencent_build_connect() needs (docs/protocols/tencent.md §1.2).
 * psk: the device's PSK (DeviceSecret) as the console shows it, base64; NULL for a
 * certificate device (certificate true, docs/protocols/tencent.md §1.3: TLS with the device
 * certificate, no password).
 * connid: NULL draws a fresh one; else exactly GW_TENCENT_CONNID_LEN of [A-Za-z0-9].
 * expiry: Unix seconds; 0 means GW_TENCENT_DEFAULT_EXPIRY.
 * sdkappid: 0 means GW_TENCENT_DEFAULT_SDKAPPID.
 * region: see gw_tencent_check_region(). port: 0 picks the transport's.
 */
struct gw_tencent_login {
	const char *product_id;
	const char *device_name;
	const char *psk;
	const char *connid;
	uint64_t expiry;
	uint32_t sdkappid;
	enum gw_tencent_sign_method sign_method;
	const char *region;
	enum gw_tencent_transport transport;
	uint16_t port;
	bool certificate;
};

/* The MQTT CONNECT parameters; password is a secret. */
struct gw_tencent_connect {
	char host[GW_TENCENT_HOST_MAX];
	uint16_t port;
	bool tls;
	char client_id[GW_TENCENT_CLIENT_ID_MAX];
	char username[GW_TENCENT_USERNAME_MAX];
	char password[GW_TENCENT_PASSWORD_MAX];
};

/*
 * Builds the CONNECT parameters (docs/protocols/tencent.md §1.2): client id "<pid><dn>", username
 * "<pid><dn>;<sdkappid>;<connid>;<expiry>", password = lower-case hex HMAC_<m>(base64-decoded PSK,
 * username) + ";" + "hmacsha256" or "hmacsha1" (empty for a certificate device, which needs
 * GW_TENCENT_TLS and sends no password, docs/protocols/tencent.md §1.3). Returns 0, -EINVAL (reason
 * names the field), -ENOBUFS, -EIO or -errno from getrandom(2). *ret is wiped on failure.
 */
int gw_tencent_build_connect(const struct gw_tencent_login *l, struct gw_tencent_connect *ret,
			     char *reason);
