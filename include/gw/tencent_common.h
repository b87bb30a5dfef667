/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Tencent protocol module, what its parts share: the conventions every function
 * follows, the buffer sizes, limits, ports, the default region and the sign methods. Include
 * gw/tencent.h (or the part you need: gw/tencent_login.h, gw/tencent_regmsg.h,
 * gw/tencent_msg.h), not this file alone.
 *
 * Conventions, as in gw/aliyun_common.h: functions return 0 (or a length) on success and -errno:
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
 * Buffer sizes, each including the NUL. docs/protocols/tencent.md gives none of these except
 * the connid length (its sections cited as § in this table); the others are our own bounds,
 * generous for what Tencent hands out (10-character ProductIds, 24-character PSKs).
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

/* docs/protocols/tencent.md §1.7: the largest PUBLISH payload the platform takes; builders and
 * parsers refuse larger. */
#define GW_TENCENT_PAYLOAD_MAX 16384
/* The largest HTTPS registration reply we read (two PEMs, encrypted and base64'd, fit). */
#define GW_TENCENT_HTTPS_REPLY_MAX 32768

/* docs/protocols/tencent.md §1.4 */
#define GW_TENCENT_PORT_TCP 1883
#define GW_TENCENT_PORT_TLS 8883
#define GW_TENCENT_PORT_HTTPS 443

/* docs/protocols/tencent.md §1.5: the default region, the SDKs' "china". */
#define GW_TENCENT_DEFAULT_REGION "ap-guangzhou"

enum gw_tencent_sign_method {
	GW_TENCENT_HMAC_SHA256,
	GW_TENCENT_HMAC_SHA1,
};
