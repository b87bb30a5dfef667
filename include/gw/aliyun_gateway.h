/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Aliyun gateway mode (src/cloud/aliyun_gateway.c): one MQTT session, the gateway's, carries
 * the nodes as sub-devices. The sub-device sign, the requests on the gateway's topology,
 * session and registration topics, the parsers of their replies and of what the platform
 * pushes (topology changes, /ext/error, disable/enable/delete), and the topics involved.
 * Protocol rules from docs/protocols/gateway.md, cited as §Gn. Conventions in
 * gw/aliyun_common.h; the sub-devices' own data topics are those of gw/aliyun_msg.h, built with
 * the sub-device's ProductKey and DeviceName (§G11).
 */

#include "gw/aliyun_common.h"
#include "gw/aliyun_msg.h"

/* §G14 limits per request. */
#define GW_ALIYUN_TOPO_ADD_MAX 30    /* sub-devices per thing/topo/add (and topo/delete) */
#define GW_ALIYUN_BATCH_LOGIN_MAX 50 /* per combine/batch_login and batch_logout */
#define GW_ALIYUN_SUB_REGISTER_MAX 30 /* per thing/sub/register and product_register */
#define GW_ALIYUN_TOPO_MAX 2000      /* sub-devices attached to one gateway (topo/get reply) */

/* The largest gateway message the parsers read: a topo/get reply listing GW_ALIYUN_TOPO_MAX
 * sub-devices, with room to spare. */
#define GW_ALIYUN_GATEWAY_MSG_MAX 262144

#define GW_ALIYUN_SIGN_MAX 65        /* the hex of an HMAC-SHA256 and the NUL */
#define GW_ALIYUN_TIMESTAMP_MAX 21   /* a uint64 in decimal and the NUL */

/*
 * Gateway topics. "gw" kinds are "/sys/<gwPK>/<gwDN>/...", "/ext/session/<gwPK>/<gwDN>/..." or
 * "/ext/error/<gwPK>/<gwDN>" and name the gateway; "sub" kinds are "/sys/<subPK>/<subDN>/..."
 * and name the sub-device (§G12). ↑ the gateway publishes, ↓ it receives.
 */
enum gw_aliyun_gw_topic {
	GW_ALIYUN_GW_TOPO_ADD,               /* gw ↑ thing/topo/add (§G4) */
	GW_ALIYUN_GW_TOPO_ADD_REPLY,         /* gw ↓ thing/topo/add_reply */
	GW_ALIYUN_GW_TOPO_DELETE,            /* gw ↑ thing/topo/delete (§G5) */
	GW_ALIYUN_GW_TOPO_DELETE_REPLY,      /* gw ↓ thing/topo/delete_reply */
	GW_ALIYUN_GW_TOPO_GET,               /* gw ↑ thing/topo/get (§G5) */
	GW_ALIYUN_GW_TOPO_GET_REPLY,         /* gw ↓ thing/topo/get_reply */
	GW_ALIYUN_GW_TOPO_ADD_NOTIFY,        /* gw ↓ thing/topo/add/notify (§G5) */
	GW_ALIYUN_GW_TOPO_ADD_NOTIFY_REPLY,  /* gw ↑ thing/topo/add/notify_reply */
	GW_ALIYUN_GW_TOPO_CHANGE,            /* gw ↓ thing/topo/change (§G6) */
	GW_ALIYUN_GW_SUB_REGISTER,           /* gw ↑ thing/sub/register (§G13) */
	GW_ALIYUN_GW_SUB_REGISTER_REPLY,     /* gw ↓ thing/sub/register_reply */
	GW_ALIYUN_GW_PRODUCT_REGISTER,       /* gw ↑ thing/proxy/provisioning/product_register */
	GW_ALIYUN_GW_PRODUCT_REGISTER_REPLY, /* gw ↓ …/product_register_reply (§G13) */
	GW_ALIYUN_GW_LOGIN,                  /* gw ↑ /ext/session/…/combine/login (§G7) */
	GW_ALIYUN_GW_LOGIN_REPLY,            /* gw ↓ combine/login_reply */
	GW_ALIYUN_GW_BATCH_LOGIN,            /* gw ↑ combine/batch_login (§G8) */
	GW_ALIYUN_GW_BATCH_LOGIN_REPLY,      /* gw ↓ combine/batch_login_reply */
	GW_ALIYUN_GW_LOGOUT,                 /* gw ↑ combine/logout (§G9) */
	GW_ALIYUN_GW_LOGOUT_REPLY,           /* gw ↓ combine/logout_reply (also forced, §G10) */
	GW_ALIYUN_GW_BATCH_LOGOUT,           /* gw ↑ combine/batch_logout (§G8) */
	GW_ALIYUN_GW_BATCH_LOGOUT_REPLY,     /* gw ↓ combine/batch_logout_reply */
	GW_ALIYUN_GW_ERROR,                  /* gw ↓ /ext/error/<gwPK>/<gwDN> (§G10) */
	GW_ALIYUN_GW_DISABLE,                /* sub ↓ thing/disable (§G12) */
	GW_ALIYUN_GW_DISABLE_REPLY,          /* sub ↑ thing/disable_reply */
	GW_ALIYUN_GW_ENABLE,                 /* sub ↓ thing/enable */
	GW_ALIYUN_GW_ENABLE_REPLY,           /* sub ↑ thing/enable_reply */
	GW_ALIYUN_GW_DELETE,                 /* sub ↓ thing/delete */
	GW_ALIYUN_GW_DELETE_REPLY,           /* sub ↑ thing/delete_reply */
};

/* "thing/topo/add", "combine/login", ...: the kind's name for logs ("error" for /ext/error);
 * NULL for an invalid kind. */
const char *gw_aliyun_name_gw_topic(enum gw_aliyun_gw_topic kind);

/*
 * The topic of kind for the device product_key/device_name (the gateway's for "gw" kinds, the
 * sub-device's for "sub" kinds). Every kind can be built, ↓ ones as subscription topics.
 * Returns the length, -EINVAL (bad kind or identity) or -ENOBUFS.
 */
int gw_aliyun_build_gw_topic(enum gw_aliyun_gw_topic kind, const char *product_key,
			     const char *device_name, char *buf, size_t size);

/*
 * Recognises a topic the gateway receives (a ↓ kind) and copies the ProductKey and DeviceName
 * it names into product_key and device_name (GW_ALIYUN_ID_MAX bytes each): the gateway's for
 * "gw" kinds, which the caller compares with its own, a sub-device's for "sub" kinds. Returns 0,
 * or -ENOENT for any other topic (an ↑ kind, a data topic, malformed identities).
 */
int gw_aliyun_classify_gw_topic(const char *topic, enum gw_aliyun_gw_topic *kind,
				char *product_key, char *device_name);

/*
 * The device a "/sys/<pk>/<dn>/..." topic names (§G11: a sub-device's data topics on the
 * gateway session), copied into product_key and device_name (GW_ALIYUN_ID_MAX bytes each), so
 * that the caller can find the sub-device and hand the topic to gw_aliyun_classify_topic().
 * Returns 0 or -ENOENT.
 */
int gw_aliyun_topic_device(const char *topic, char *product_key, char *device_name);

/*
 * One sub-device as the builders take it. Which members a builder reads is said at it.
 * product_key, device_name: as for a direct login (gw/aliyun_login.h).
 * device_secret: the sub-device's DeviceSecret, 1..128 printable ASCII without space.
 * client_id: what is sent and signed (§G3), 1..319 printable ASCII without space, a "|k=v|"
 *   suffix allowed; NULL means "<pk>.<dn>", as the SDKs send.
 * timestamp_ms: sent and signed as a decimal string; epoch ms (§G20), not checked for
 *   freshness by the platform (§G3).
 */
struct gw_aliyun_subdev {
	const char *product_key;
	const char *device_name;
	const char *device_secret;
	const char *client_id;
	uint64_t timestamp_ms;
};

/* The signed fields of a sub-device (§G3), as they are sent. */
struct gw_aliyun_subdev_sign {
	char client_id[GW_ALIYUN_CLIENT_ID_MAX];
	char timestamp[GW_ALIYUN_TIMESTAMP_MAX];
	const char *sign_method; /* "hmacSha256", "hmacSha1" or "hmacMd5" (static) */
	char sign[GW_ALIYUN_SIGN_MAX];
};

/* The signMethod value sent for method (§G3, the documented spelling): "hmacSha256",
 * "hmacSha1", "hmacMd5"; NULL for an invalid method. */
const char *gw_aliyun_gw_sign_method(enum gw_aliyun_sign_method method);

/*
 * §G3: sign = hex(HMAC_method(device_secret, "clientId<cid>deviceName<dn>productKey<pk>
 * timestamp<ts>")), upper-case hex when upper (Link SDK 4) else lower-case (3.x, Python).
 * Reads every member of s. Returns 0, -EINVAL (reason names the member), -ENOBUFS or -EIO;
 * *ret is wiped on failure.
 */
int gw_aliyun_sign_subdev(enum gw_aliyun_sign_method method, bool upper,
			  const struct gw_aliyun_subdev *s, struct gw_aliyun_subdev_sign *ret,
			  char *reason);

/*
 * Request builders. Each writes the compact JSON envelope of gw/aliyun_msg.h,
 * {"id":"<id>","version":"1.0","params":P[,"method":M]}, into a malloc'd NUL-terminated
 * string (*ret, length *ret_len when ret_len is not NULL), and returns 0, -EINVAL (reason says
 * which argument; n out of range), -ENOBUFS (a client id too long), -EIO or -ENOMEM. Lists
 * take subs[0..n). The signed ones sign with method and hex case upper as
 * gw_aliyun_sign_subdev().
 *
 * topo/add (§G4), method "thing.topo.add", 1..GW_ALIYUN_TOPO_ADD_MAX sub-devices (all
 * members read): P = [{"productKey","deviceName","clientId","timestamp","signmethod","sign"},…].
 */
int gw_aliyun_build_topo_add(uint32_t id, enum gw_aliyun_sign_method method, bool upper,
			     const struct gw_aliyun_subdev *subs, size_t n, char **ret,
			     size_t *ret_len, char *reason);

/* topo/delete (§G5), method "thing.topo.delete", 1..GW_ALIYUN_TOPO_ADD_MAX sub-devices
 * (product_key and device_name read): P = [{"productKey","deviceName"},…]. */
int gw_aliyun_build_topo_delete(uint32_t id, const struct gw_aliyun_subdev *subs, size_t n,
				char **ret, size_t *ret_len, char *reason);

/* topo/get (§G5), method "thing.topo.get": P = {}. */
int gw_aliyun_build_topo_get(uint32_t id, char **ret, size_t *ret_len);

/*
 * combine/login (§G7), method "combine.login", one sub-device (all members read):
 * P = {"productKey","deviceName","clientId","timestamp","signMethod","sign","cleanSession"},
 * cleanSession "true" (drop the QoS 1 messages queued while it was offline) or "false".
 */
int gw_aliyun_build_login(uint32_t id, enum gw_aliyun_sign_method method, bool upper,
			  const struct gw_aliyun_subdev *sub, bool clean_session, char **ret,
			  size_t *ret_len, char *reason);

/*
 * combine/batch_login (§G8), no method (as the SDKs that use it), 1..GW_ALIYUN_BATCH_LOGIN_MAX
 * sub-devices (all members read): P = {"signMethod":M,"deviceList":[{"productKey",
 * "deviceName","clientId","timestamp","cleanSession","sign"},…]}. All or nothing: when the
 * reply is an error, none is online.
 */
int gw_aliyun_build_batch_login(uint32_t id, enum gw_aliyun_sign_method method, bool upper,
				const struct gw_aliyun_subdev *subs, size_t n, bool clean_session,
				char **ret, size_t *ret_len, char *reason);

/* combine/logout (§G9), method "combine.logout", one sub-device (product_key, device_name):
 * P = {"productKey","deviceName"}. */
int gw_aliyun_build_logout(uint32_t id, const struct gw_aliyun_subdev *sub, char **ret,
			   size_t *ret_len, char *reason);

/* combine/batch_logout (§G8), no method, 1..GW_ALIYUN_BATCH_LOGIN_MAX sub-devices
 * (product_key, device_name): P = [{"productKey","deviceName"},…]. */
int gw_aliyun_build_batch_logout(uint32_t id, const struct gw_aliyun_subdev *subs, size_t n,
				 char **ret, size_t *ret_len, char *reason);

/* thing/sub/register (§G13), method "thing.sub.register", 1..GW_ALIYUN_SUB_REGISTER_MAX
 * pre-registered sub-devices (product_key, device_name), no sign:
 * P = [{"productKey","deviceName"},…]. */
int gw_aliyun_build_sub_register(uint32_t id, const struct gw_aliyun_subdev *subs, size_t n,
				 char **ret, size_t *ret_len, char *reason);

/* A sub-device for proxy product registration (§G13), signed with its product's
 * ProductSecret: random 1..64 of [A-Za-z0-9] (gw_aliyun_make_random()). */
struct gw_aliyun_proxied {
	const char *product_key;
	const char *device_name;
	const char *product_secret;
	const char *random;
};

/*
 * §G13: the sign of one proxied sub-device, hex(HMAC_method(product_secret,
 * "deviceName<dn>productKey<pk>random<r>")), upper-case hex when upper (Link SDK 4), into buf
 * (GW_ALIYUN_SIGN_MAX). Returns the number of hex digits, -EINVAL (reason names the member),
 * -ENOBUFS or -EIO.
 */
int gw_aliyun_sign_proxied(enum gw_aliyun_sign_method method, bool upper,
			   const struct gw_aliyun_proxied *s, char *buf, size_t size,
			   char *reason);

/*
 * thing/proxy/provisioning/product_register (§G13), method
 * "thing.proxy.provisioning.product_register", 1..GW_ALIYUN_SUB_REGISTER_MAX sub-devices:
 * P = {"proxieds":[{"productKey","deviceName","random","signMethod","sign"},…]},
 * sign = hex(HMAC_method(ProductSecret, "deviceName<dn>productKey<pk>random<r>")).
 */
int gw_aliyun_build_product_register(uint32_t id, enum gw_aliyun_sign_method method, bool upper,
				     const struct gw_aliyun_proxied *subs, size_t n, char **ret,
				     size_t *ret_len, char *reason);

/* The answer to a topo/add/notify, a topo/change or a disable/enable/delete is the plain
 * {"id","code":200,"data":{}} of gw_aliyun_build_reply(). */

/* §G6 topo/change status. */
enum gw_aliyun_topo_status {
	GW_ALIYUN_TOPO_ADDED = 0,
	GW_ALIYUN_TOPO_DELETED = 1,
	GW_ALIYUN_TOPO_ENABLED = 2,
	GW_ALIYUN_TOPO_DISABLED = 8,
};

/* One sub-device named in a gateway message. */
struct gw_aliyun_gw_device {
	char product_key[GW_ALIYUN_ID_MAX];
	char device_name[GW_ALIYUN_ID_MAX];
	char iot_id[GW_ALIYUN_ID_MAX];           /* sub/register reply, when given; else empty */
	char device_secret[GW_ALIYUN_SECRET_MAX]; /* registration replies; else empty. Secret. */
};

/* A gateway message the platform sent: a reply, a push or a request to the gateway. */
struct gw_aliyun_gw_msg {
	enum gw_aliyun_gw_topic kind;
	char id[GW_ALIYUN_MSG_ID_MAX]; /* as sent; empty for an /ext/error without a valid one */
	uint32_t id_num;
	int code;                            /* replies and /ext/error; 0 otherwise */
	char message[GW_ALIYUN_MESSAGE_MAX]; /* empty when absent; controls as '?' */
	int status;                          /* TOPO_CHANGE: an enum gw_aliyun_topo_status */
	size_t n;                            /* entries in devices */
	struct gw_aliyun_gw_device *devices; /* malloc'd; NULL when n is 0 */
};

/*
 * Parses a message of ↓ kind (as gw_aliyun_classify_gw_topic() found it). Everything is an
 * object with "id" (a string of 1..10 decimal digits); then per kind:
 *   *_REPLY: "code" an integer or a string of decimal digits (§G2), "message" an optional
 *     string; "data" (optional) names the sub-devices: an object {productKey, deviceName} for
 *     LOGIN/LOGOUT (one entry; {} none), an array of such objects for the others (an object
 *     gives none, the older topo/add form). SUB_REGISTER_REPLY entries carry "deviceSecret"
 *     (required with code 200) and "iotId"; PRODUCT_REGISTER_REPLY entries (the layout is
 *     unverified, §G13) may carry "deviceSecret", in "data" or "data.proxieds". With code 200
 *     the entries must be well-formed; with an error code a malformed "data" is ignored, so
 *     the refusal still reaches the caller. At most the kind's limit of entries
 *     (GW_ALIYUN_TOPO_ADD_MAX, GW_ALIYUN_BATCH_LOGIN_MAX, GW_ALIYUN_SUB_REGISTER_MAX,
 *     GW_ALIYUN_TOPO_MAX for topo/get).
 *   ERROR (§G10): "code" as above, "message", "data" an optional object naming one
 *     sub-device; the "id" may be absent or anything (then id is empty).
 *   TOPO_CHANGE (§G6): "method", when present, "thing.topo.change"; "params" an object with
 *     "status" 0, 1, 2 or 8 and "subList" an array of 1..GW_ALIYUN_TOPO_MAX sub-devices.
 *   TOPO_ADD_NOTIFY (§G5): "params" an array of 1..GW_ALIYUN_TOPO_ADD_MAX sub-devices.
 *   DISABLE, ENABLE, DELETE (§G12): "method", when present, "thing.disable", ... and "params"
 *     an object; no entries (the topic names the sub-device).
 * Returns 0; -EINVAL (kind is not ↓); -EMSGSIZE (len > GW_ALIYUN_GATEWAY_MSG_MAX); -EBADMSG
 * with reason; -ENOMEM. *ret is cleared first and on failure holds nothing to free.
 */
int gw_aliyun_parse_gw_msg(enum gw_aliyun_gw_topic kind, const char *buf, size_t len,
			   struct gw_aliyun_gw_msg *ret, char *reason);

/* Wipes the secrets in m, frees its devices and clears it. NULL-safe. */
void gw_aliyun_gw_msg_free(struct gw_aliyun_gw_msg *m);

/*
 * What a gateway does about a code in a reply or on /ext/error (§G7, §G10, §G20):
 */
enum gw_aliyun_gw_action {
	GW_ALIYUN_GW_ACT_OK,         /* 200 */
	GW_ALIYUN_GW_ACT_RELOGIN,    /* 520: no session: log the sub-device in again */
	GW_ALIYUN_GW_ACT_READD,      /* 6401: no topology: topo/add again, then log in */
	GW_ALIYUN_GW_ACT_BAD_SECRET, /* 6287: the sign or the DeviceSecret is wrong: stop */
	GW_ALIYUN_GW_ACT_BACKOFF,    /* 428 too many online, 429 throttled: wait, then retry */
	GW_ALIYUN_GW_ACT_DISABLED,   /* 522: disabled: wait for topo/change status 2 */
	GW_ALIYUN_GW_ACT_GONE,       /* 521 deleted, 6100 not found: stop */
	GW_ALIYUN_GW_ACT_TAKEN_OVER, /* 427: logged in through another gateway or connection */
	GW_ALIYUN_GW_ACT_REFUSED,    /* 460, 401, 6402 and other 4xx: the request is wrong */
	GW_ALIYUN_GW_ACT_RETRY,      /* 500 and anything unknown: retry later */
};

enum gw_aliyun_gw_action gw_aliyun_classify_gw_code(int code);
/* "ok", "relogin", "readd", "bad_secret", "backoff", "disabled", "gone", "taken_over",
 * "refused", "retry"; NULL for an invalid value. */
const char *gw_aliyun_name_gw_action(enum gw_aliyun_gw_action action);
