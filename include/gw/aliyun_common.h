/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Aliyun protocol module, what its parts share: the conventions every function follows,
 * the buffer sizes, limits, ports and enums. Include gw/aliyun.h (or the part you need:
 * gw/aliyun_login.h, gw/aliyun_regmsg.h, gw/aliyun_msg.h), not this file alone.
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

/* Ports (docs/protocols/aliyun.md §2–§4): plain TCP on 1883 (securemode 3), TLS on 443 for
 * the legacy *.aliyuncs.com hosts ([IKE]) and on 8883 for instance endpoints ([LS42]). */
#define GW_ALIYUN_PORT_TCP 1883
#define GW_ALIYUN_PORT_LEGACY_TLS 443
#define GW_ALIYUN_PORT_INSTANCE_TLS 8883
#define GW_ALIYUN_PORT_HTTPS 443


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
