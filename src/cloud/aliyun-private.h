/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Between the three parts of the Aliyun protocol module, not for callers outside them:
 * aliyun_login.c owns the identifier rules that aliyun_regmsg.c and aliyun_msg.c check too, and
 * the registration signature that both the MQTT login (aliyun_login.c) and the HTTPS request
 * (aliyun_regmsg.c) carry. Pure, as gw/aliyun.h says.
 */

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "gw/aliyun.h"
#include "gw/json.h"
#include "gw/util.h"

/* The reason buffers of gw/aliyun.h hold GW_ALIYUN_REASON_MAX bytes (or are NULL). */
#define set_reason(reason, ...) gw_why_set((reason), GW_ALIYUN_REASON_MAX, __VA_ARGS__)

/* ProductKey, region, instance id: 1..64 of [A-Za-z0-9-], as they become DNS labels. */
bool gw_aliyun_valid_label(const char *s);
/* DeviceName: 1..64 of [A-Za-z0-9] and - _ @ . : (docs/protocols/aliyun.md §2). */
bool gw_aliyun_valid_device_name(const char *s);
/* The dynamic-registration random: 1..64 of [A-Za-z0-9]. */
bool gw_aliyun_valid_random(const char *s);

/*
 * docs/protocols/aliyun.md §3: hex HMAC_method(product_secret,
 * "deviceName<dn>productKey<pk>random<r>"), upper-case when upper, for both the MQTT and the
 * HTTPS dynamic registration. Returns as gw_aliyun_sign_hex().
 */
int gw_aliyun_sign_registration(enum gw_aliyun_sign_method method, const char *product_key,
				const char *device_name, const char *product_secret,
				const char *random, bool upper, char *buf, size_t size);

/*
 * docs/protocols/aliyun.md §5 request envelope, members in the documented order:
 * {"id":"<id>","version":"1.0",["sys":{"ack":0},]"params":P[,"method":M]}; method NULL leaves
 * it out (docs/protocols/gateway.md §G2: the batch requests of the SDKs send none). Steals
 * params (NULL gives -ENOMEM). Returns 0 or -ENOMEM. (aliyun_msg.c)
 */
int gw_aliyun_build_request(uint32_t id, bool ack, json_t *params, const char *method,
			    char **ret, size_t *ret_len);

/* An Alink id: s[0..n) is 1..10 decimal digits, value at most UINT32_MAX, stored in *num when
 * num is not NULL (docs/protocols/aliyun.md §5). (aliyun_msg.c) */
bool gw_aliyun_valid_msg_id(const char *s, size_t n, uint32_t *num);

/* The required "id" of root as such an id, copied to id (GW_ALIYUN_MSG_ID_MAX bytes): 0 or
 * -EBADMSG. (aliyun_msg.c) */
int gw_aliyun_get_msg_id(json_t *root, char *id, uint32_t *num, char *reason);

/* A downlink request whose "method", when present, is method, with "id" and an object
 * "params": as gw_aliyun_parse_property_set() (ret is not cleared first). (aliyun_msg.c) */
int gw_aliyun_parse_request(const char *method, const char *buf, size_t len,
			    struct gw_aliyun_request *ret, char *reason);

/* The required integer "code" of an HTTPS or Alink reply: 0 or -EBADMSG. */
static inline int gw_aliyun_get_code(json_t *root, int *code, char *reason)
{
	json_int_t c = 0;
	int r = gw_json_get_int(root, "", "code", true, INT_MIN, INT_MAX, &c, reason,
				GW_ALIYUN_REASON_MAX);

	if (r < 0)
		return r;
	*code = (int)c;
	return 0;
}
