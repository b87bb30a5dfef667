/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Tencent Cloud IoT Explorer (物联网开发平台), the pure half of the driver: MQTT CONNECT
 * parameters of a key (PSK) device, the HTTPS dynamic-registration request and its encrypted
 * reply, and the data-template ($thing) messages and topics.
 *
 * Pure: no sockets, no files, no event loop, no globals. The only system call is getrandom(2)
 * in gw_tencent_make_connid() and gw_tencent_make_nonce(). Every protocol rule here comes from
 * the fact sheet (shared/protocols/tencent.md, cited as §N); docs/tencent.md describes how
 * sensorgw uses them.
 *
 * Conventions, as in gw/aliyun.h: functions return 0 (or a length) on success and -errno:
 *   -EINVAL    an argument breaks the contract stated at the function (reason says which)
 *   -ENOBUFS   the result does not fit the caller's buffer
 *   -EMSGSIZE  a message is larger than GW_TENCENT_PAYLOAD_MAX (built or received)
 *   -EBADMSG   a received message is malformed; reason says why
 *   -EREMOTEIO the platform refused (a registration error reply); retrying the same request
 *              will not help, the device needs provisioning (code and message are filled in)
 *   -ENOENT    a topic or method that is not one of ours
 *   -ENOMEM    out of memory (jansson)
 *   -EIO       libcrypto refused to compute a digest, MAC or cipher
 * Reason buffers hold GW_TENCENT_REASON_MAX bytes (or are NULL) and never contain a secret.
 * Results that hold secrets (password, psk, client_key) should be wiped by the caller with
 * explicit_bzero.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Buffer sizes, each including the NUL. The fact sheet gives none of these except the connid
 * length; the others are our own bounds, generous for what Tencent hands out (10-character
 * ProductIds, 24-character PSKs).
 */
#define GW_TENCENT_PRODUCT_ID_MAX 33  /* 1..32 of [A-Za-z0-9]: a DNS label of the host */
#define GW_TENCENT_DEVICE_NAME_MAX 65 /* 1..64 of [A-Za-z0-9] and - _ . : @ */
#define GW_TENCENT_PSK_MAX 65         /* base64 of 1..48 bytes (the C SDK's key buffer) */
#define GW_TENCENT_PSK_BYTES_MAX 48
#define GW_TENCENT_SECRET_MAX 129     /* ProductSecret: 16..128 printable, no space */
#define GW_TENCENT_SECRET_MIN 16      /* the AES-128 key is its first 16 bytes (§2.1) */
#define GW_TENCENT_CONNID_LEN 5       /* §1.2: 5 characters of [A-Za-z0-9] */
#define GW_TENCENT_HOST_MAX 128
#define GW_TENCENT_CLIENT_ID_MAX (GW_TENCENT_PRODUCT_ID_MAX + GW_TENCENT_DEVICE_NAME_MAX)
#define GW_TENCENT_USERNAME_MAX 160
#define GW_TENCENT_PASSWORD_MAX 80    /* 64 hex digits + ";hmacsha256" */
#define GW_TENCENT_URL_MAX 192
#define GW_TENCENT_BODY_MAX 512
#define GW_TENCENT_HEADER_MAX 128
#define GW_TENCENT_HEADERS 6
#define GW_TENCENT_PEM_MAX 8192       /* a certificate or key from dynamic registration */
#define GW_TENCENT_MESSAGE_MAX 128    /* a server-chosen text, cut to this for logging */
#define GW_TENCENT_CODE_MAX 64        /* Response.Error.Code */
#define GW_TENCENT_TOKEN_MAX 129      /* clientToken: 1..128 printable ASCII */
#define GW_TENCENT_THING_ID_MAX 65    /* eventId, actionId: 1..64 printable, no space */
#define GW_TENCENT_TOPIC_MAX 256      /* §1.7: a topic is at most 255 bytes */
#define GW_TENCENT_REASON_MAX 160

/* §1.7: the largest PUBLISH payload the platform takes; builders and parsers refuse larger. */
#define GW_TENCENT_PAYLOAD_MAX 16384
/* The largest HTTPS registration reply we read (two PEMs, encrypted and base64'd, fit). */
#define GW_TENCENT_HTTPS_REPLY_MAX 32768
/* §1.1, §1.7: the platform's keep-alive range ends at 900 s. */
#define GW_TENCENT_KEEPALIVE_MAX 900

/* §1.2: the sdkappid the Java SDK and most third-party code send. */
#define GW_TENCENT_DEFAULT_SDKAPPID 12010126u
/*
 * §1.2: the signature is valid until this Unix time (s). INT32_MAX (2038-01-19) is the value
 * the Java SDK (Integer.MAX_VALUE) and the C SDK on 32-bit targets send, so every server-side
 * integer width parses it; being in the far future it needs no clock on the gateway.
 */
#define GW_TENCENT_DEFAULT_EXPIRY 2147483647u

/* §1.4 */
#define GW_TENCENT_PORT_TCP 1883
#define GW_TENCENT_PORT_TLS 8883
#define GW_TENCENT_PORT_HTTPS 443

/* §1.5: the default region, the SDKs' "china". */
#define GW_TENCENT_DEFAULT_REGION "ap-guangzhou"

/* §2.1, §2.2 */
#define GW_TENCENT_REGISTER_PATH "/device/register"
#define GW_TENCENT_LEGACY_REGISTER_PATH "/register/dev"

/* Data-template reply code for success (§3). */
#define GW_TENCENT_CODE_OK 0

enum gw_tencent_sign_method {
	GW_TENCENT_HMAC_SHA256,
	GW_TENCENT_HMAC_SHA1,
};

/* "hmacsha256", "hmacsha1" ↔ the enum; case-sensitive, -EINVAL otherwise; NULL name. */
int gw_tencent_parse_sign_method(const char *s, enum gw_tencent_sign_method *ret);
const char *gw_tencent_name_sign_method(enum gw_tencent_sign_method method);

/*
 * Checks a region name: "ap-guangzhou" (alias "china", the SDKs' name), "us-east", "europe",
 * "ap-bangkok" (§1.5). NULL means GW_TENCENT_DEFAULT_REGION. Returns 0 or -EINVAL.
 */
int gw_tencent_check_region(const char *region);

/* The MQTT host "<pid>.<domain of region>" (§1.5). Returns the length, -EINVAL or -ENOBUFS. */
int gw_tencent_format_host(const char *product_id, const char *region, char *buf, size_t size);

/*
 * Input checks with a reason, for configuration loaders as much as for this module:
 * ProductId 1..32 letters and digits; DeviceName 1..64 of letters, digits and - _ . : @ (the
 * fact sheet gives no rule; this keeps the username's ';' fields and topic levels unambiguous);
 * PSK canonical base64 (RFC 4648 alphabet, '=' padding, length a multiple of 4, unused bits 0)
 * of 1..48 bytes; ProductSecret 16..128 printable ASCII without space. Return 0 or -EINVAL.
 */
int gw_tencent_check_product_id(const char *s, char *reason);
int gw_tencent_check_device_name(const char *s, char *reason);
int gw_tencent_check_psk(const char *s, char *reason);
int gw_tencent_check_product_secret(const char *s, char *reason);

/*
 * TLS-PSK (§1.4, the C SDK's 8883 mode): the TLS pre-shared key is the base64-decoded PSK,
 * which libmosquitto (mosquitto_tls_psk_set) takes as lower-case hex. Writes it into buf
 * (GW_TENCENT_PSK_HEX_MAX); returns 0, -EINVAL (reason: the PSK is not valid, as
 * gw_tencent_check_psk) or -ENOBUFS. buf is a secret: wipe it after use.
 */
#define GW_TENCENT_PSK_HEX_MAX (2 * GW_TENCENT_PSK_BYTES_MAX + 1)
#define GW_TENCENT_PSK_CIPHERS "PSK-AES128-CBC-SHA:PSK-AES256-CBC-SHA"
int gw_tencent_psk_hex(const char *psk, char *buf, size_t size, char *reason);

/*
 * §1.1, §1.7: a keep-alive for a Tencent connection: 1..900 s. 0 (which the platform allows)
 * is refused too: without PINGREQs sensorgw would not notice a dead link. Returns 0, -ERANGE.
 */
int gw_tencent_check_keepalive(unsigned int seconds, char *reason);

/*
 * Fills buf with GW_TENCENT_CONNID_LEN random characters of [A-Za-z0-9] and a NUL (§1.2; the
 * SDKs draw a fresh one for every CONNECT). Returns 0, -ENOBUFS, or -errno from getrandom(2).
 */
int gw_tencent_make_connid(char *buf, size_t size);

/*
 * expiry = auto: a login's signature expires GW_TENCENT_AUTO_EXPIRY_S after it was made (the
 * Java SDK's now + 600, §1.2), but only when the gateway's clock can be trusted; otherwise the
 * far-future default, which needs no clock ([SIGNTOOL]: "if the device clock is not
 * accurate"). What the system says about its clock, gathered by the caller:
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
	GW_TENCENT_TLS, /* 8883, server-certificate TLS plus the signed password (§1.4, [PY]) */
	GW_TENCENT_TCP, /* 1883, plain TCP: the signed password is the only protection */
};

/*
 * What gw_tencent_build_connect() needs (§1.2).
 * psk: the device's PSK (DeviceSecret) as the console shows it, base64; NULL for a
 * certificate device (certificate true, §1.3: TLS with the device certificate, no password).
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
 * Builds the CONNECT parameters (§1.2): client id "<pid><dn>", username
 * "<pid><dn>;<sdkappid>;<connid>;<expiry>", password = lower-case hex
 * HMAC_<m>(base64-decoded PSK, username) + ";" + "hmacsha256" or "hmacsha1" (empty for a
 * certificate device, which needs GW_TENCENT_TLS and sends no password, §1.3). Returns 0,
 * -EINVAL (reason names the field), -ENOBUFS, -EIO or -errno from getrandom(2). *ret is wiped
 * on failure.
 */
int gw_tencent_build_connect(const struct gw_tencent_login *l, struct gw_tencent_connect *ret,
			     char *reason);

/* Dynamic registration (一型一密, §2): which HTTP API. */
enum gw_tencent_dynreg_api {
	GW_TENCENT_DYNREG_V2,     /* POST /device/register, X-TC-* headers (§2.1) */
	GW_TENCENT_DYNREG_LEGACY, /* POST /register/dev, signed body (§2.2) */
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
 *           &timestamp=<ts>")), header Content-Type application/x-www-form-urlencoded as the C
 *           SDK sends it. d->sign_method must be HMAC_SHA1.
 * Returns 0, -EINVAL (reason says which field), -ENOBUFS or -EIO. Nothing in *ret is secret.
 */
int gw_tencent_build_dynreg(const struct gw_tencent_dynreg *d, struct gw_tencent_https_request *ret,
			    char *reason);

/*
 * The X-TC-Signature of a current-API request (§2.1): base64(HMAC_<method>(product_secret as
 * ASCII, "POST\n<host>\n/device/register\n\n<method>\n<timestamp>\n<nonce>\n<hex
 * SHA_<method>(body)>")) into buf. Returns the length, -EINVAL, -ENOBUFS or -EIO. Exposed so
 * that a test cloud can check what a device sends.
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
 * §2.1: base64-decodes payload (canonical base64 of a whole number of 16-byte blocks),
 * decrypts it with AES-128-CBC, key = the first 16 bytes of product_secret, IV = 16 × '0',
 * no PKCS#7 padding, and strips the zero padding: with len_hint >= 0 (the reply's Len) the
 * plaintext is its first len_hint bytes and the rest must be 0..15 zero bytes; without, the
 * trailing zero bytes (at most 15) go. The plaintext (not NUL-terminated by the cipher; a NUL
 * is added) goes to out; *out_len gets its length. Returns 0, -EINVAL, -ENOBUFS, -EBADMSG or
 * -EIO. out is wiped on failure.
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

/* Data template (§3). Topic "$thing/<up|down>/<kind>/<pid>/<dn>". */
enum gw_tencent_direction {
	GW_TENCENT_UP,
	GW_TENCENT_DOWN,
};

enum gw_tencent_topic {
	GW_TENCENT_TOPIC_PROPERTY,
	GW_TENCENT_TOPIC_EVENT,
	GW_TENCENT_TOPIC_ACTION,
};

/* Builds the topic. Returns the length, -EINVAL or -ENOBUFS. */
int gw_tencent_build_topic(enum gw_tencent_direction dir, enum gw_tencent_topic kind,
			   const char *product_id, const char *device_name, char *buf, size_t size);

/*
 * Recognises "$thing/<up|down>/<property|event|action>/<product_id>/<device_name>" exactly.
 * Returns 0, or -ENOENT for any other topic (another device's, $thing/down/service, ...).
 */
int gw_tencent_classify_topic(const char *topic, const char *product_id,
			      const char *device_name, enum gw_tencent_direction *dir,
			      enum gw_tencent_topic *kind);

/* The "method" of every data-template message sensorgw sends or understands (§3). */
enum gw_tencent_method {
	GW_TENCENT_METHOD_REPORT,            /* ↑ property */
	GW_TENCENT_METHOD_REPORT_REPLY,      /* ↓ property */
	GW_TENCENT_METHOD_REPORT_INFO,       /* ↑ property */
	GW_TENCENT_METHOD_REPORT_INFO_REPLY, /* ↓ property */
	GW_TENCENT_METHOD_GET_STATUS,        /* ↑ property */
	GW_TENCENT_METHOD_GET_STATUS_REPLY,  /* ↓ property */
	GW_TENCENT_METHOD_CLEAR_CONTROL,     /* ↑ property */
	GW_TENCENT_METHOD_CONTROL,           /* ↓ property */
	GW_TENCENT_METHOD_CONTROL_REPLY,     /* ↑ property */
	GW_TENCENT_METHOD_EVENT_POST,        /* ↑ event */
	GW_TENCENT_METHOD_EVENTS_POST,       /* ↑ event */
	GW_TENCENT_METHOD_EVENT_REPLY,       /* ↓ event */
	GW_TENCENT_METHOD_ACTION,            /* ↓ action */
	GW_TENCENT_METHOD_ACTION_REPLY,      /* ↑ action */
};

const char *gw_tencent_name_method(enum gw_tencent_method m);

/*
 * Reads only the "method" of a downlink message, to dispatch it (the property topic carries
 * four kinds). Returns 0, -ENOENT (a string method we do not know: ignore it), -EMSGSIZE or
 * -EBADMSG (not an object, no string "method").
 */
int gw_tencent_peek_method(const char *buf, size_t len, enum gw_tencent_method *ret,
			   char *reason);

/*
 * "<pid>-<seq>", the clientToken form the SDKs use (§3). Returns the length, -EINVAL or
 * -ENOBUFS.
 */
int gw_tencent_format_client_token(const char *product_id, uint64_t seq, char *buf, size_t size);

/*
 * Uplink builders: compact JSON in a malloc'd NUL-terminated string (*ret, length *ret_len
 * when not NULL); reals keep 15 significant digits. client_token: 1..128 printable ASCII.
 * json_t arguments are borrowed. All return 0, -EINVAL, -EMSGSIZE (the payload would exceed
 * GW_TENCENT_PAYLOAD_MAX; then *ret_len, when not NULL, is the size it would have had) or
 * -ENOMEM.
 *
 * report: {"method":"report","clientToken":T[,"timestamp":ts_ms],"params":P}; timestamp_ms
 * < 0 leaves it out (live data); a replayed record passes the time of its reading (ms, the
 * unit the C SDK uses for timestamps, §3.2). params is a non-empty object.
 */
int gw_tencent_build_report(const char *client_token, json_t *params, int64_t timestamp_ms,
			    char **ret, size_t *ret_len);

/*
 * report_info: {"method":"report_info","clientToken":T,"params":{"fw_ver":V,...info}}; info
 * (may be NULL) is an object of further base-info members (module_hardinfo, mac, ...) that
 * must not hold "fw_ver". fw_ver: 1..64 printable ASCII.
 */
int gw_tencent_build_report_info(const char *client_token, const char *fw_ver, json_t *info,
				 char **ret, size_t *ret_len);

/* get_status: {"method":"get_status","clientToken":T,"type":"report","showmeta":0}. */
int gw_tencent_build_get_status(const char *client_token, char **ret, size_t *ret_len);

/* clear_control: {"method":"clear_control","clientToken":T}, T from the get_status_reply. */
int gw_tencent_build_clear_control(const char *client_token, char **ret, size_t *ret_len);

/*
 * control_reply: {"method":"control_reply","clientToken":T,"code":C[,"status":S]}, T the
 * control's token; status NULL leaves it out.
 */
int gw_tencent_build_control_reply(const char *client_token, int code, const char *status,
				   char **ret, size_t *ret_len);

/* One event of an event_post or events_post. type: "info", "alert", "fault" or "fatal". */
struct gw_tencent_event {
	const char *event_id;  /* 1..64 printable ASCII without space */
	const char *type;
	int64_t timestamp_ms;  /* < 0: left out */
	json_t *params;        /* an object */
};

/*
 * event_post: {"method":"event_post","clientToken":T,"version":"1.0","eventId":…,"type":…,
 * ["timestamp":…,]"params":…}; events_post: {"method":"events_post","clientToken":T,
 * "events":[{"eventId":…,"type":…,["timestamp":…,]"params":…},…]} with 1..n events.
 */
int gw_tencent_build_event_post(const char *client_token, const struct gw_tencent_event *ev,
				 char **ret, size_t *ret_len);
int gw_tencent_build_events_post(const char *client_token, const struct gw_tencent_event *ev,
				 size_t n, char **ret, size_t *ret_len);

/*
 * action_reply: {"method":"action_reply","clientToken":T,"code":C[,"status":S],
 * "response":R}; response (an object) NULL gives {}.
 */
int gw_tencent_build_action_reply(const char *client_token, int code, const char *status,
				  json_t *response, char **ret, size_t *ret_len);

/* A reply from the platform: report_reply, report_info_reply, event_reply, get_status_reply. */
struct gw_tencent_reply {
	char client_token[GW_TENCENT_TOKEN_MAX];
	int code;                              /* GW_TENCENT_CODE_OK or an error, e.g. 406 */
	char status[GW_TENCENT_MESSAGE_MAX];   /* empty when absent; controls as '?' */
	json_t *control; /* get_status_reply only: data.control when non-empty, else NULL */
};

/*
 * Parse a reply: an object with "method" equal to the expected one, a string "clientToken"
 * (1..128 printable ASCII), an integer "code" and, when present, a string "status". A reply
 * with an error code parses fine: the caller looks at code. get_status_reply: with code 0,
 * "data" must be an object; "data.control", when present, an object, returned as a new
 * reference in ret->control (json_decref it) unless it is empty. Return 0, -EMSGSIZE or
 * -EBADMSG; *ret is zeroed on failure.
 */
int gw_tencent_parse_report_reply(const char *buf, size_t len, struct gw_tencent_reply *ret,
				  char *reason);
int gw_tencent_parse_report_info_reply(const char *buf, size_t len, struct gw_tencent_reply *ret,
				       char *reason);
int gw_tencent_parse_event_reply(const char *buf, size_t len, struct gw_tencent_reply *ret,
				 char *reason);
int gw_tencent_parse_get_status_reply(const char *buf, size_t len, struct gw_tencent_reply *ret,
				      char *reason);

/* A request from the platform: control or action. */
struct gw_tencent_request {
	char client_token[GW_TENCENT_TOKEN_MAX]; /* to be echoed in the reply */
	char action_id[GW_TENCENT_THING_ID_MAX]; /* action only */
	json_t *params; /* new reference to the params object; json_decref() it */
};

/*
 * Parse a control ({"method":"control","clientToken":T,"params":{…}}) or an action
 * ({"method":"action","clientToken":T,"actionId":A,"params":{…}}, "timestamp" ignored). Return
 * 0 with ret->params owned by the caller; -EMSGSIZE or -EBADMSG with ret->params NULL and
 * ret->client_token set when the token itself was readable (so the caller can still answer
 * with an error code), else empty.
 */
int gw_tencent_parse_control(const char *buf, size_t len, struct gw_tencent_request *ret,
			     char *reason);
int gw_tencent_parse_action(const char *buf, size_t len, struct gw_tencent_request *ret,
			    char *reason);
