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
