/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Alibaba Cloud IoT Platform (阿里云物联网平台), the pure half of the driver: MQTT CONNECT
 * parameters for every login mode, the HTTPS dynamic-registration request and its reply, the
 * MQTT dynamic-registration pushes, and the Alink thing-model messages and topics.
 *
 * Pure: no sockets, no files, no event loop, no globals. The only system call is getrandom(2)
 * in gw_aliyun_make_random(). Every protocol rule here comes from the fact sheet
 * (shared/protocols/aliyun.md); docs/aliyun.md describes how sensorgw uses them.
 *
 * Conventions: functions return 0 (or a length) on success and -errno on failure:
 *   -EINVAL    an argument breaks the contract stated at the function
 *   -ENOBUFS   the result does not fit the caller's buffer
 *   -EMSGSIZE  a received message is larger than the limit for its kind
 *   -EBADMSG   a received message is malformed; reason says why
 *   -EREMOTEIO the platform answered with an error code (code and message are filled in)
 *   -ENOMEM    out of memory (jansson)
 *   -EIO       libcrypto refused to compute a MAC (e.g. MD5 in FIPS mode)
 * Parsers take a reason buffer of GW_ALIYUN_REASON_MAX bytes (or NULL) that receives a short,
 * human-readable explanation of a failure; it never contains a secret. Strings in results are
 * NUL-terminated. Results that hold secrets should be wiped by the caller with explicit_bzero.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Buffer sizes, each including the NUL. The platform documents none of these except the
 * 64-character client id; the others are our own bounds, generous for the values Aliyun hands
 * out (11-character ProductKeys, 32-character DeviceSecrets).
 */
#define GW_ALIYUN_ID_MAX 65        /* ProductKey, DeviceName, region, instance id, thing ids */
#define GW_ALIYUN_CID_MAX 65       /* device-chosen client id: "≤ 64 chars" (D73742) */
#define GW_ALIYUN_NWL_CID_MAX 129  /* ClientID handed out by /ext/regnwl */
#define GW_ALIYUN_SECRET_MAX 129   /* DeviceSecret, ProductSecret */
#define GW_ALIYUN_TOKEN_MAX 513    /* DeviceToken from /ext/regnwl */
#define GW_ALIYUN_RANDOM_MAX 65    /* the dynamic-registration random */
#define GW_ALIYUN_HOST_MAX 128
#define GW_ALIYUN_CLIENT_ID_MAX 320 /* "<cid>|<ext params>|" */
#define GW_ALIYUN_USERNAME_MAX (2 * GW_ALIYUN_ID_MAX)
#define GW_ALIYUN_PASSWORD_MAX GW_ALIYUN_TOKEN_MAX
#define GW_ALIYUN_TOPIC_MAX 256
#define GW_ALIYUN_MESSAGE_MAX 128  /* a reply's "message", cut to this for logging */
#define GW_ALIYUN_REASON_MAX 160
#define GW_ALIYUN_MSG_ID_MAX 11    /* Alink "id": decimal uint32, 1..10 digits */
#define GW_ALIYUN_URL_MAX 192
#define GW_ALIYUN_BODY_MAX 1024
#define GW_ALIYUN_RANDOM_LEN 15    /* what gw_aliyun_make_random() produces, as [PY] does */

/* Input size limits of the parsers: anything larger is refused unread (-EMSGSIZE). */
#define GW_ALIYUN_HTTPS_REPLY_MAX 4096
#define GW_ALIYUN_DOWNLINK_MAX 16384

/* Default region of the legacy endpoints: the one region every mode (regnwl too) exists in. */
#define GW_ALIYUN_DEFAULT_REGION "cn-shanghai"

/* Ports (fact sheet §2–§4): plain TCP on 1883 (securemode 3), TLS on 443 for the legacy
 * *.aliyuncs.com hosts ([IKE]) and on 8883 for instance endpoints ([LS42]). */
#define GW_ALIYUN_PORT_TCP 1883
#define GW_ALIYUN_PORT_LEGACY_TLS 443
#define GW_ALIYUN_PORT_INSTANCE_TLS 8883
#define GW_ALIYUN_PORT_HTTPS 443

/* HTTPS dynamic registration (pre-registration only), fact sheet §2. */
#define GW_ALIYUN_REGISTER_PATH "/auth/register/device"
#define GW_ALIYUN_REGISTER_CONTENT_TYPE "application/x-www-form-urlencoded"
#define GW_ALIYUN_REGISTER_ACCEPT "text/xml,text/javascript,text/html,application/json"

/* Topics the platform pushes the MQTT dynamic-registration result on (fact sheet §3). */
#define GW_ALIYUN_TOPIC_REGISTER "/ext/register"
#define GW_ALIYUN_TOPIC_REGNWL "/ext/regnwl"

/* Alink reply code for success. */
#define GW_ALIYUN_CODE_OK 200

enum gw_aliyun_sign_method {
	GW_ALIYUN_HMAC_SHA256,
	GW_ALIYUN_HMAC_SHA1,
	GW_ALIYUN_HMAC_MD5,
};

enum gw_aliyun_auth {
	GW_ALIYUN_AUTH_DEVICE,   /* DeviceSecret: 一机一密, or after a `register` */
	GW_ALIYUN_AUTH_REGISTER, /* 一型一密 pre-registered: fetch the DeviceSecret over MQTT */
	GW_ALIYUN_AUTH_REGNWL,   /* 一型一密 without pre-registration: fetch ClientID + token */
	GW_ALIYUN_AUTH_CONNWL,   /* log in with the ClientID + DeviceToken from regnwl */
};

/*
 * What gw_aliyun_build_connect() needs. Exactly one of region and instance_id selects the
 * host; both NULL means GW_ALIYUN_DEFAULT_REGION on the legacy endpoint.
 *
 * product_key: 1..64 of [A-Za-z0-9-] (it is a DNS label of the legacy host).
 * device_name: 1..64 of [A-Za-z0-9] and - _ @ . : (fact sheet §2).
 * region, instance_id: 1..64 of [A-Za-z0-9-].
 * secret: DEVICE: the DeviceSecret; REGISTER, REGNWL: the ProductSecret; CONNWL: the
 *   DeviceToken. Printable ASCII without space, 1..128 bytes (1..512 for a token).
 * client_id: DEVICE: the bare client id, 1..64 printable ASCII without space and '|'; NULL
 *   gives "<pk>.<dn>" as Link SDK 4 uses. CONNWL: the ClientID from /ext/regnwl (required).
 *   REGISTER, REGNWL: must be NULL (the platform fixes it to "<dn>.<pk>").
 * timestamp_ms: DEVICE only, sent and signed when has_timestamp; not freshness-checked by the
 *   platform (SDKs send a fixed 2524608000000), so any value works.
 * random: REGISTER, REGNWL only (required): 1..64 of [A-Za-z0-9].
 * securemode: 0 picks the default: 2 for DEVICE, REGISTER and REGNWL, -2 for CONNWL. DEVICE
 *   accepts 2 (TLS) or 3 (plain TCP); REGISTER and REGNWL 2 or -2 (TLS only; the official SDKs
 *   send 2, Alibaba's English page asks -2 on instance endpoints); CONNWL only -2.
 * port: 0 picks GW_ALIYUN_PORT_TCP for securemode 3, else the TLS port of the host kind.
 * sign_method: DEVICE, REGISTER, REGNWL; ignored for CONNWL (the token is sent verbatim).
 */
struct gw_aliyun_login {
	enum gw_aliyun_auth auth;
	const char *product_key;
	const char *device_name;
	const char *region;
	const char *instance_id;
	uint16_t port;
	int securemode;
	enum gw_aliyun_sign_method sign_method;
	const char *secret;
	const char *client_id;
	bool has_timestamp;
	uint64_t timestamp_ms;
	const char *random;
};

/* The MQTT CONNECT parameters: exactly what goes into an MQTT client. password is a secret. */
struct gw_aliyun_connect {
	char host[GW_ALIYUN_HOST_MAX];
	uint16_t port;
	bool tls;
	char client_id[GW_ALIYUN_CLIENT_ID_MAX];
	char username[GW_ALIYUN_USERNAME_MAX];
	char password[GW_ALIYUN_PASSWORD_MAX];
};

/*
 * Builds the CONNECT parameters for l (fact sheet §3, §4):
 *   DEVICE    client_id "<cid>|securemode=<2|3>,signmethod=<m>[,timestamp=<ms>]|",
 *             username "<dn>&<pk>", password = lower-case hex HMAC_<m>(DeviceSecret,
 *             "clientId<cid>deviceName<dn>productKey<pk>[timestamp<ms>]").
 *   REGISTER  client_id "<dn>.<pk>|random=<r>,authType=register,securemode=<2|-2>,
 *   REGNWL              signmethod=<m>[,instanceId=<id>]|" (instanceId on instance endpoints),
 *             username "<dn>&<pk>", password = lower-case hex HMAC_<m>(ProductSecret,
 *             "deviceName<dn>productKey<pk>random<r>").
 *   CONNWL    client_id "<ClientID>|securemode=-2,authType=connwl|", username "<dn>&<pk>",
 *             password = the DeviceToken verbatim.
 * Returns 0, -EINVAL (l breaks the rules at struct gw_aliyun_login; reason names the field),
 * -ENOBUFS or -EIO. *ret is wiped on failure.
 */
int gw_aliyun_build_connect(const struct gw_aliyun_login *l, struct gw_aliyun_connect *ret,
			    char *reason);

/*
 * The MQTT host: "<pk>.iot-as-mqtt.<region>.aliyuncs.com" (legacy) or
 * "<instance_id>.mqtt.iothub.aliyuncs.com" (new public and Enterprise instances). Exactly one
 * of region and instance_id may be given; both NULL means GW_ALIYUN_DEFAULT_REGION. Returns
 * the length, -EINVAL or -ENOBUFS.
 */
int gw_aliyun_format_host(const char *product_key, const char *region, const char *instance_id,
			  char *buf, size_t size);

/*
 * HMAC_method(key, content) as hex (upper-case when upper) into buf. Returns the number of hex
 * digits (64, 40 or 32), -ENOBUFS when buf cannot hold them and the NUL, -EINVAL for a bad
 * method, -EIO when libcrypto fails.
 */
int gw_aliyun_sign_hex(enum gw_aliyun_sign_method method, const char *key, size_t key_len,
		       const char *content, size_t content_len, bool upper, char *buf,
		       size_t size);

/* "hmacsha256", "hmacsha1", "hmacmd5" ↔ the enum. Parsing is case-sensitive; -EINVAL for
 * anything else. The name of an invalid value is NULL. */
int gw_aliyun_parse_sign_method(const char *s, enum gw_aliyun_sign_method *ret);
const char *gw_aliyun_name_sign_method(enum gw_aliyun_sign_method method);
/* "device", "register", "regnwl", "connwl" ↔ the enum, likewise. */
int gw_aliyun_parse_auth(const char *s, enum gw_aliyun_auth *ret);
const char *gw_aliyun_name_auth(enum gw_aliyun_auth auth);

/*
 * Fills buf with GW_ALIYUN_RANDOM_LEN random characters of [A-Za-z0-9] and a NUL (size must
 * be > GW_ALIYUN_RANDOM_LEN). The platform checks no uniqueness (fact sheet §2); fresh
 * randomness just keeps one registration's sign from being replayed as another's. Returns 0,
 * -ENOBUFS, or -errno from getrandom(2).
 */
int gw_aliyun_make_random(char *buf, size_t size);

/* An HTTPS dynamic-registration request: POST url with the headers above and body. */
struct gw_aliyun_https_request {
	char host[GW_ALIYUN_HOST_MAX]; /* iot-auth.<region>.aliyuncs.com */
	uint16_t port;                 /* GW_ALIYUN_PORT_HTTPS */
	char url[GW_ALIYUN_URL_MAX];   /* https://<host>/auth/register/device */
	char body[GW_ALIYUN_BODY_MAX]; /* form-encoded; holds the sign, not the secret */
};

/*
 * Builds the HTTPS pre-registration request (fact sheet §2): body
 * "productKey=<pk>&deviceName=<dn>&random=<r>&sign=<SIGN>&signMethod=<m>" with every value
 * form-encoded, SIGN = upper-case hex HMAC_<m>(ProductSecret,
 * "deviceName<dn>productKey<pk>random<r>") as the official C SDKs send it. region NULL means
 * GW_ALIYUN_DEFAULT_REGION. Argument rules as for struct gw_aliyun_login. Returns 0, -EINVAL,
 * -ENOBUFS or -EIO.
 */
int gw_aliyun_build_https_register(const char *region, const char *product_key,
				   const char *device_name, const char *product_secret,
				   const char *random, enum gw_aliyun_sign_method method,
				   struct gw_aliyun_https_request *ret);

/* What a registration yields. */
struct gw_aliyun_credentials {
	int code;                                /* HTTPS reply code; 200 for MQTT pushes */
	char message[GW_ALIYUN_MESSAGE_MAX];     /* HTTPS reply message, controls as '?' */
	char device_secret[GW_ALIYUN_SECRET_MAX]; /* HTTPS, /ext/register */
	char client_id[GW_ALIYUN_NWL_CID_MAX];    /* /ext/regnwl */
	char device_token[GW_ALIYUN_TOKEN_MAX];   /* /ext/regnwl */
};

/*
 * Parses the body of an HTTPS registration reply: one JSON object with an integer "code"; for
 * 200 an object "data" with a string "deviceSecret" (printable ASCII, no space); "message",
 * when present, a string. Other members are ignored. Returns 0 with device_secret set (code
 * 200); -EREMOTEIO with code and message set (any other code); -EMSGSIZE (len >
 * GW_ALIYUN_HTTPS_REPLY_MAX); -EBADMSG (not JSON, truncated, wrong types, missing members).
 * *ret is wiped first.
 */
int gw_aliyun_parse_https_register(const char *buf, size_t len, struct gw_aliyun_credentials *ret,
				   char *reason);

/*
 * Parses the payload of an MQTT dynamic-registration push: for GW_ALIYUN_AUTH_REGISTER
 * (/ext/register) a JSON object with a string "deviceSecret"; for GW_ALIYUN_AUTH_REGNWL
 * (/ext/regnwl) strings "clientId" (no '|') and "deviceToken". All printable ASCII without
 * space. "productKey" and "deviceName", when present, must be strings equal to product_key and
 * device_name: a push for another device is refused. Returns 0, -EINVAL (auth is neither),
 * -EMSGSIZE (len > GW_ALIYUN_DOWNLINK_MAX) or -EBADMSG. *ret is wiped first.
 */
int gw_aliyun_parse_register_push(enum gw_aliyun_auth auth, const char *product_key,
				  const char *device_name, const char *buf, size_t len,
				  struct gw_aliyun_credentials *ret, char *reason);

/*
 * Alink topics, all "/sys/<pk>/<dn>/<suffix>" (fact sheet §5). id is the event id, service id
 * or RRPC message id where the suffix has one (NULL otherwise). For the kinds the device
 * subscribes to (marked ↓), id may be "+" to build the subscription filter;
 * EVENT_POST_REPLY with "+" also matches the property post_reply.
 */
enum gw_aliyun_topic {
	GW_ALIYUN_TOPIC_PROPERTY_POST,       /* ↑ thing/event/property/post */
	GW_ALIYUN_TOPIC_PROPERTY_POST_REPLY, /* ↓ thing/event/property/post_reply */
	GW_ALIYUN_TOPIC_EVENT_POST,          /* ↑ thing/event/<id>/post */
	GW_ALIYUN_TOPIC_EVENT_POST_REPLY,    /* ↓ thing/event/<id>/post_reply */
	GW_ALIYUN_TOPIC_PROPERTY_SET,        /* ↓ thing/service/property/set */
	GW_ALIYUN_TOPIC_PROPERTY_SET_REPLY,  /* ↑ thing/service/property/set_reply */
	GW_ALIYUN_TOPIC_SERVICE,             /* ↓ thing/service/<id> */
	GW_ALIYUN_TOPIC_SERVICE_REPLY,       /* ↑ thing/service/<id>_reply */
	GW_ALIYUN_TOPIC_RRPC_REQUEST,        /* ↓ rrpc/request/<id> */
	GW_ALIYUN_TOPIC_RRPC_RESPONSE,       /* ↑ rrpc/response/<id> */
};

/*
 * Builds the topic of kind for product_key/device_name. A thing id is 1..64 printable ASCII
 * without space, '/', '+' and '#'; an event id may not be "property" (its topic would be the
 * property post's); a service id may not be "property" nor end in "_reply", for the same
 * reason. Returns the length, -EINVAL or -ENOBUFS.
 */
int gw_aliyun_build_topic(enum gw_aliyun_topic kind, const char *product_key,
			  const char *device_name, const char *id, char *buf, size_t size);

/*
 * Recognises a topic the platform delivers to product_key/device_name: PROPERTY_POST_REPLY,
 * EVENT_POST_REPLY, PROPERTY_SET, SERVICE or RRPC_REQUEST, with the event id, service id or
 * RRPC message id copied to id (empty for the others). Returns 0, -ENOENT for any other topic
 * (another device's, an uplink kind, thing/service/property/get, ...) or -ENOBUFS when the id
 * does not fit id_size.
 */
int gw_aliyun_classify_topic(const char *topic, const char *product_key, const char *device_name,
			     enum gw_aliyun_topic *kind, char *id, size_t id_size);

/*
 * Uplink payloads, compact JSON in a malloc'd NUL-terminated string (*ret, length *ret_len
 * when ret_len is not NULL); reals keep 15 significant digits and always a decimal point.
 *
 * Property post: {"id":"<id>","version":"1.0",["sys":{"ack":0},]"params":P,
 * "method":"thing.event.property.post"}. params is an object (borrowed). With time_ms < 0, P
 * is params itself (live data); otherwise every member v becomes {"value":v,"time":time_ms}
 * (replayed data: the platform keeps the time of the reading). ack false asks the platform
 * not to send a post_reply. Returns 0, -EINVAL or -ENOMEM.
 */
int gw_aliyun_build_property_post(uint32_t id, json_t *params, int64_t time_ms, bool ack,
				  char **ret, size_t *ret_len);

/*
 * Event post: {"id":"<id>","version":"1.0",["sys":{"ack":0},]"params":{"value":V,
 * "time":time_ms},"method":"thing.event.<event_id>.post"}. value is an object (borrowed),
 * time_ms >= 0, event_id as for gw_aliyun_build_topic(). Returns 0, -EINVAL or -ENOMEM.
 */
int gw_aliyun_build_event_post(uint32_t id, const char *event_id, json_t *value, int64_t time_ms,
			       bool ack, char **ret, size_t *ret_len);

/*
 * Reply to a property set or a service call: {"id":"<id>","code":<code>,"data":D}, id the
 * request's id string as parsed, D data (borrowed) or {} when data is NULL. data must be an
 * object. Returns 0, -EINVAL or -ENOMEM.
 */
int gw_aliyun_build_reply(const char *id, int code, json_t *data, char **ret, size_t *ret_len);

/* A post_reply. */
struct gw_aliyun_post_reply {
	uint32_t id;
	int code; /* GW_ALIYUN_CODE_OK or an error code (D120329) */
	char message[GW_ALIYUN_MESSAGE_MAX]; /* empty when absent; controls as '?' */
};

/*
 * Parses a post_reply: an object with "id" (a string of 1..10 decimal digits, at most
 * 4294967295) and an integer "code"; "message", when present, a string. "data" and others are
 * ignored. A reply with an error code parses fine: the caller looks at code. Returns 0,
 * -EMSGSIZE (len > GW_ALIYUN_DOWNLINK_MAX) or -EBADMSG.
 */
int gw_aliyun_parse_post_reply(const char *buf, size_t len, struct gw_aliyun_post_reply *ret,
			       char *reason);

/* A downlink request: property set or service call. */
struct gw_aliyun_request {
	char id[GW_ALIYUN_MSG_ID_MAX]; /* as sent, to be echoed in the reply */
	uint32_t id_num;
	json_t *params; /* new reference to the params object; json_decref() it */
};

/*
 * Parses a property set (method, when present, "thing.service.property.set") or a call of
 * service service_id (method, when present, "thing.service.<service_id>"): an object with
 * "id" as in a post_reply and an object "params". Returns 0 with ret->params owned by the
 * caller; -EINVAL (bad service_id), -EMSGSIZE or -EBADMSG with ret->params NULL and ret->id
 * set when the id itself was readable (so the caller can still answer it with an error code)
 * or empty.
 */
int gw_aliyun_parse_property_set(const char *buf, size_t len, struct gw_aliyun_request *ret,
				 char *reason);
int gw_aliyun_parse_service_call(const char *service_id, const char *buf, size_t len,
				 struct gw_aliyun_request *ret, char *reason);

/*
 * A reply that carries a message, as the platform's own replies do (§5 reply envelope):
 * {"id":"<id>","code":<code>,"data":D,"message":"<message>"}. id NULL leaves "id" out (an
 * RRPC request whose payload had none: the response topic names the request). data as for
 * gw_aliyun_build_reply(). Returns 0, -EINVAL (bad id or data, message NULL or not UTF-8) or
 * -ENOMEM.
 */
int gw_aliyun_build_reply_message(const char *id, int code, json_t *data, const char *message,
				  char **ret, size_t *ret_len);

/*
 * Parses the payload of a classic RRPC request (rrpc/request/<msgId>, §5) as sensorgw expects
 * it: an Alink request envelope whose "method" (required here: the topic does not say what is
 * asked) is "thing.service.property.set" (*kind = GW_ALIYUN_TOPIC_PROPERTY_SET) or
 * "thing.service.<serviceId>" (*kind = GW_ALIYUN_TOPIC_SERVICE, the id copied to service_id,
 * GW_ALIYUN_ID_MAX bytes), with "id" and an object "params". Returns 0 with ret->params owned
 * by the caller, or -EMSGSIZE / -EBADMSG with ret->id set when the id was readable.
 */
int gw_aliyun_parse_rrpc_request(const char *buf, size_t len, struct gw_aliyun_request *ret,
				 enum gw_aliyun_topic *kind, char *service_id, char *reason);
