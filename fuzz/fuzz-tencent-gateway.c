/* SPDX-License-Identifier: MIT */
/*
 * Tencent gateway mode: the messages on $gateway/operation/result (docs/protocols/gateway.md
 * §G16, §G18) as sensorgw reads them, and those on $gateway/operation as a test cloud reads
 * them. The first byte picks the direction; the rest is the payload. What parses as a change
 * is acknowledged, so the builder sees parsed devices too.
 */
#include <stdlib.h>

#include "fuzz.h"
#include "gw/tencent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char reason[GW_TENCENT_REASON_MAX];
	struct gw_tencent_gw_msg m;
	char *ack = NULL;

	if (size < 1)
		return 0;
	if (gw_tencent_parse_gw_msg(data[0] & 1 ? GW_TENCENT_UP : GW_TENCENT_DOWN,
				    (const char *)data + 1, size - 1, &m, reason) == 0 &&
	    m.type == GW_TENCENT_GW_CHANGE &&
	    gw_tencent_build_change_ack(m.status, m.devices, m.n, &ack, NULL) == 0)
		free(ack);
	gw_tencent_gw_msg_free(&m);
	return 0;
}
