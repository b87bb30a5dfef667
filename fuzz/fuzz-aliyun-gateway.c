/* SPDX-License-Identifier: MIT */
/*
 * Aliyun gateway mode: what the platform sends a gateway (docs/protocols/gateway.md §G4-§G13),
 * replies, topo/change, /ext/error, disable/enable/delete. The first byte picks the kind the
 * parser is told the message arrived as; the rest is the payload.
 */
#include "fuzz.h"
#include "gw/aliyun.h"

static const enum gw_aliyun_gw_topic kinds[] = {
	GW_ALIYUN_GW_TOPO_ADD_REPLY,         GW_ALIYUN_GW_TOPO_DELETE_REPLY,
	GW_ALIYUN_GW_TOPO_GET_REPLY,         GW_ALIYUN_GW_TOPO_ADD_NOTIFY,
	GW_ALIYUN_GW_TOPO_CHANGE,            GW_ALIYUN_GW_SUB_REGISTER_REPLY,
	GW_ALIYUN_GW_PRODUCT_REGISTER_REPLY, GW_ALIYUN_GW_LOGIN_REPLY,
	GW_ALIYUN_GW_BATCH_LOGIN_REPLY,      GW_ALIYUN_GW_LOGOUT_REPLY,
	GW_ALIYUN_GW_BATCH_LOGOUT_REPLY,     GW_ALIYUN_GW_ERROR,
	GW_ALIYUN_GW_DISABLE,                GW_ALIYUN_GW_ENABLE,
	GW_ALIYUN_GW_DELETE,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char reason[GW_ALIYUN_REASON_MAX];
	struct gw_aliyun_gw_msg m;

	if (size < 1)
		return 0;
	if (gw_aliyun_parse_gw_msg(kinds[data[0] % (sizeof(kinds) / sizeof(kinds[0]))],
				   (const char *)data + 1, size - 1, &m, reason) == 0)
		(void)gw_aliyun_classify_gw_code(m.code);
	gw_aliyun_gw_msg_free(&m);
	return 0;
}
