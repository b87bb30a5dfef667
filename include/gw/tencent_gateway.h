/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Tencent gateway mode (src/cloud/tencent_gateway.c): one MQTT session, the gateway's, carries
 * the nodes as sub-devices. The bind signature, the operations the gateway sends on
 * $gateway/operation/<pid>/<dn>, the parser of what comes back on
 * $gateway/operation/result/<pid>/<dn> (replies and the cloud's own change, search_devices and
 * unbind_all), and the acknowledgements of those. Protocol rules from
 * docs/protocols/gateway.md, cited as §Gn. Conventions in gw/tencent_common.h; the
 * sub-devices' data-template topics are those of gw/tencent_msg.h with the sub-device's
 * ProductId and DeviceName (§G18).
 */

#include "gw/tencent_common.h"
#include "gw/tencent_msg.h"

/* §G18: sub-devices bound to one gateway, and so the most a message can name. */
#define GW_TENCENT_GATEWAY_DEVICES_MAX 1500
/* §G17: base64 of an HMAC-SHA256 (44 characters) and the NUL. */
#define GW_TENCENT_BIND_SIGNATURE_MAX 45
/* §G17: the random is printed with %d by the C SDK: 0..INT32_MAX. */
#define GW_TENCENT_BIND_RANDOM_MAX 2147483647u
/* §G17: the lower-case hex MD5 of a certificate file, the key of a certificate bind, and NUL. */
#define GW_TENCENT_CERT_KEY_MAX 33

/* The "type" of a gateway message (§G16, §G18). */
enum gw_tencent_gw_type {
	GW_TENCENT_GW_BIND,
	GW_TENCENT_GW_UNBIND,
	GW_TENCENT_GW_ONLINE,
	GW_TENCENT_GW_OFFLINE,
	GW_TENCENT_GW_DESCRIBE_SUB_DEVICES,
	GW_TENCENT_GW_CHANGE,         /* ↓ the console bound or unbound; ↑ its ack */
	GW_TENCENT_GW_SEARCH_DEVICES, /* ↓ start or stop discovery; ↑ its ack */
	GW_TENCENT_GW_UNBIND_ALL,     /* ↓ every binding is gone; ↑ its ack */
};

/* "bind", "unbind", ...; NULL for an invalid value. */
const char *gw_tencent_name_gw_type(enum gw_tencent_gw_type type);

/* §G15: the gateway publishes on OPERATION and subscribes to RESULT. */
enum gw_tencent_gw_topic {
	GW_TENCENT_GW_OPERATION, /* ↑ $gateway/operation/<pid>/<dn> */
	GW_TENCENT_GW_RESULT,    /* ↓ $gateway/operation/result/<pid>/<dn> */
};

/* The topic of kind for the gateway product_id/device_name. Returns the length, -EINVAL or
 * -ENOBUFS. */
int gw_tencent_build_gw_topic(enum gw_tencent_gw_topic kind, const char *product_id,
			      const char *device_name, char *buf, size_t size);

/* Recognises the gateway's two topics exactly. Returns 0 or -ENOENT. */
int gw_tencent_classify_gw_topic(const char *topic, const char *product_id,
				 const char *device_name, enum gw_tencent_gw_topic *kind);

/*
 * §G17: signature = base64(HMAC_method(key, "<product_id><device_name>;<random>;<timestamp>"))
 * of the raw digest, 28 characters for SHA-1, 44 for SHA-256. key[0..key_len) is the
 * sub-device's PSK text as it is (not base64-decoded), or for a certificate device the key of
 * gw_tencent_cert_bind_key(). random 0..GW_TENCENT_BIND_RANDOM_MAX, timestamp Unix seconds
 * (real UTC: the platform refuses a stale one with -805). Writes the text and a NUL into buf
 * (GW_TENCENT_BIND_SIGNATURE_MAX); returns its length, -EINVAL, -ENOBUFS or -EIO.
 */
int gw_tencent_sign_bind(enum gw_tencent_sign_method method, const char *key, size_t key_len,
			 const char *product_id, const char *device_name, uint32_t random,
			 uint64_t timestamp, char *buf, size_t size);

/*
 * §G17, authtype "certificate": the key is the lower-case hex MD5 of the whole certificate file
 * pem[0..len) (as the C SDK does; the doc says SHA-1, unverified). Writes 32 hex digits and a NUL
 * into buf (GW_TENCENT_CERT_KEY_MAX). Returns 32, -EINVAL, -ENOBUFS or -EIO.
 */
int gw_tencent_cert_bind_key(const char *pem, size_t len, char *buf, size_t size);

/* A fresh bind random in 0..GW_TENCENT_BIND_RANDOM_MAX. Returns 0 or -errno of getrandom(2). */
int gw_tencent_make_bind_random(uint32_t *ret);

/*
 * What gw_tencent_build_bind() needs. product_id, device_name: the sub-device's, with the rules
 * of gw_tencent_check_product_id() and gw_tencent_check_device_name(). key: certificate false:
 * the sub-device's PSK text (gw_tencent_check_psk()); certificate true: the 32 hex digits of
 * gw_tencent_cert_bind_key(). random, timestamp: as for gw_tencent_sign_bind().
 */
struct gw_tencent_bind {
	const char *product_id;
	const char *device_name;
	const char *key;
	bool certificate;
	enum gw_tencent_sign_method sign_method;
	uint32_t random;
	uint64_t timestamp;
};

/*
 * Builders: compact JSON in a malloc'd NUL-terminated string (*ret, length *ret_len when not
 * NULL), one device per message as every SDK sends (§G16). Return 0, -EINVAL (reason, where
 * there is one, says which argument), -EIO or -ENOMEM.
 *
 * bind: {"type":"bind","payload":{"devices":[{"product_id","device_name","signature",
 * "random","timestamp","signmethod","authtype"}]}}, random and timestamp numbers, signmethod
 * "hmacsha1" or "hmacsha256", authtype "psk" or "certificate".
 */
int gw_tencent_build_bind(const struct gw_tencent_bind *b, char **ret, size_t *ret_len,
			  char *reason);

/* unbind, online, offline (type): {"type":T,"payload":{"devices":[{"product_id",
 * "device_name"}]}}. */
int gw_tencent_build_gw_op(enum gw_tencent_gw_type type, const char *product_id,
			   const char *device_name, char **ret, size_t *ret_len);

/* describe_sub_devices: {"type":"describe_sub_devices"}. */
int gw_tencent_build_describe_sub_devices(char **ret, size_t *ret_len);

/* One sub-device in a gateway message. */
struct gw_tencent_gw_device {
	char product_id[GW_TENCENT_PRODUCT_ID_MAX];
	char device_name[GW_TENCENT_DEVICE_NAME_MAX];
	bool has_result;
	int result; /* 0 success, else §G16's codes (-801..-809, -1, -2) */
	/* ↑ bind only (gw_tencent_parse_gw_msg() with GW_TENCENT_UP) */
	char signature[GW_TENCENT_BIND_SIGNATURE_MAX];
	char signmethod[16];
	char authtype[16];
	uint32_t random;
	uint64_t timestamp;
};

/*
 * The acknowledgements of the cloud's messages (§G18):
 * change: {"type":"change","payload":{"status":S,"devices":[{"product_id","device_name",
 *   "result":R},…]}}, status 0 or 1 as in the change, devs[0..n) (1..
 *   GW_TENCENT_GATEWAY_DEVICES_MAX, their product_id, device_name and result read);
 * search_devices: {"type":"search_devices","payload":{"status":S,"result":R}}, status 0 or 1;
 * unbind_all: {"type":"unbind_all","payload":{"result":R}}.
 */
int gw_tencent_build_change_ack(int status, const struct gw_tencent_gw_device *devs, size_t n,
				char **ret, size_t *ret_len);
int gw_tencent_build_search_devices_ack(int status, int result, char **ret, size_t *ret_len);
int gw_tencent_build_unbind_all_ack(int result, char **ret, size_t *ret_len);

/* A gateway message, parsed. */
struct gw_tencent_gw_msg {
	enum gw_tencent_gw_type type;
	bool has_status;
	int status;          /* change, search_devices: 1 bind/start, 0 unbind/stop */
	bool has_result;
	int result;          /* ↑ search_devices and unbind_all acks */
	size_t n;            /* entries in devices */
	struct gw_tencent_gw_device *devices; /* malloc'd; NULL when n is 0 */
};

/*
 * Parses a message on the gateway's topics: dir GW_TENCENT_DOWN for what arrives on the result
 * topic (what sensorgw reads), GW_TENCENT_UP for what the gateway sends on the operation topic
 * (what a test cloud reads). An object with a string "type" and, where the type has one, an
 * object "payload" whose "devices" is an array of objects with string "product_id" and
 * "device_name" (the rules of gw_tencent_check_*()), at most GW_TENCENT_GATEWAY_DEVICES_MAX.
 * Per type and direction:
 *   ↓ bind, unbind, online, offline: 1.. devices, each with an integer "result".
 *   ↓ describe_sub_devices: 0.. devices (payload and devices may be absent: none bound).
 *   ↓ change: integer "status" 0 or 1, 1.. devices; ↓ search_devices: "status" 0 or 1;
 *     ↓ unbind_all: nothing more.
 *   ↑ bind: exactly 1 device with "signature" (string), "random" (0..INT32_MAX), "timestamp"
 *     (integer >= 0), "signmethod" and "authtype" (strings); ↑ unbind, online, offline: 1..
 *     devices; ↑ describe_sub_devices: nothing more; ↑ change: "status" and 1.. devices each
 *     with "result"; ↑ search_devices: "status" and "result"; ↑ unbind_all: "result".
 * Members not named are ignored. Returns 0; -ENOENT (a string type we do not know: ignore it);
 * -EMSGSIZE (len > GW_TENCENT_PAYLOAD_MAX); -EBADMSG with reason; -EINVAL (bad dir);
 * -ENOMEM. *ret is cleared first and on failure holds nothing to free.
 */
int gw_tencent_parse_gw_msg(enum gw_tencent_direction dir, const char *buf, size_t len,
			    struct gw_tencent_gw_msg *ret, char *reason);

/* Frees m's devices and clears it. NULL-safe. */
void gw_tencent_gw_msg_free(struct gw_tencent_gw_msg *m);
