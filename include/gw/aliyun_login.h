/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Aliyun MQTT login (src/cloud/aliyun_login.c): the CONNECT parameters of every login mode
 * (DeviceSecret, the two dynamic-registration logins, DeviceToken), the MQTT host and port, the
 * HMAC signing, the names of sign methods and login modes, and the registration random.
 * Conventions in gw/aliyun_common.h.
 */

#include "gw/aliyun_common.h"

/*
 * What gw_aliyun_build_connect() needs. Exactly one of region and instance_id selects the
 * host; both NULL means GW_ALIYUN_DEFAULT_REGION on the legacy endpoint.
 *
 * product_key: 1..64 of [A-Za-z0-9-] (it is a DNS label of the legacy host).
 * device_name: 1..64 of [A-Za-z0-9] and - _ @ . : (docs/protocols/aliyun.md §2).
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
 * Builds the CONNECT parameters for l (docs/protocols/aliyun.md §3, §4):
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
 * be > GW_ALIYUN_RANDOM_LEN). The platform checks no uniqueness
 * (docs/protocols/aliyun.md §2); fresh randomness just keeps one registration's sign from
 * being replayed as another's. Returns 0, -ENOBUFS, or -errno from getrandom(2).
 */
int gw_aliyun_make_random(char *buf, size_t size);
