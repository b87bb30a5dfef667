/* SPDX-License-Identifier: MIT */
/*
 * Aliyun registration replies: the HTTPS /auth/register/device body and the MQTT pushes on
 * /ext/register and /ext/regnwl. The first byte picks the parser.
 */
#include <stdlib.h>

#include "fuzz.h"
#include "gw/aliyun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_aliyun_credentials c;
	char reason[GW_ALIYUN_REASON_MAX];
	const char *buf;

	if (size < 1)
		return 0;
	buf = (const char *)data + 1;
	switch (data[0] % 3) {
	case 0:
		(void)gw_aliyun_parse_https_register(buf, size - 1, &c, reason);
		break;
	case 1:
		(void)gw_aliyun_parse_register_push(GW_ALIYUN_AUTH_REGISTER, "a1B2c3D4e5F",
						    "stm32-0001", buf, size - 1, &c, reason);
		break;
	default:
		(void)gw_aliyun_parse_register_push(GW_ALIYUN_AUTH_REGNWL, "a1B2c3D4e5F",
						    "stm32-0001", buf, size - 1, &c, reason);
		break;
	}
	return 0;
}
