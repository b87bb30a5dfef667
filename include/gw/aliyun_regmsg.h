/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Aliyun dynamic registration, the messages (src/cloud/aliyun_regmsg.c): the HTTPS
 * pre-registration request and its reply, and the credentials pushed on /ext/register and
 * /ext/regnwl after a registration login (gw/aliyun_login.h builds that login). The client that
 * sends and receives them is gw/aliyun_register.h. Conventions in gw/aliyun_common.h.
 */

#include "gw/aliyun_common.h"

/* HTTPS dynamic registration (pre-registration only), docs/protocols/aliyun.md §2. */
#define GW_ALIYUN_REGISTER_PATH "/auth/register/device"
#define GW_ALIYUN_REGISTER_CONTENT_TYPE "application/x-www-form-urlencoded"
#define GW_ALIYUN_REGISTER_ACCEPT "text/xml,text/javascript,text/html,application/json"

/* Topics the platform pushes the MQTT dynamic-registration result on
 * (docs/protocols/aliyun.md §3). */
#define GW_ALIYUN_TOPIC_REGISTER "/ext/register"
#define GW_ALIYUN_TOPIC_REGNWL "/ext/regnwl"

/* An HTTPS dynamic-registration request: POST url with the headers above and body. */
struct gw_aliyun_https_request {
	char host[GW_ALIYUN_HOST_MAX]; /* iot-auth.<region>.aliyuncs.com */
	uint16_t port;                 /* GW_ALIYUN_PORT_HTTPS */
	char url[GW_ALIYUN_URL_MAX];   /* https://<host>/auth/register/device */
	char body[GW_ALIYUN_BODY_MAX]; /* form-encoded; holds the sign, not the secret */
};

/*
 * Builds the HTTPS pre-registration request (docs/protocols/aliyun.md §2): body
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
