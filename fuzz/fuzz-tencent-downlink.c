/* SPDX-License-Identifier: MIT */
/*
 * What Tencent IoT Explorer sends down, as the uplink handles it: "TOPIC\0PAYLOAD". A
 * $thing/down topic of ours is classified, the method peeked, the payload parsed by the
 * parser of that method, and control/action params encoded into the node command frame.
 */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "gw/command.h"
#include "gw/tencent.h"
#include "sgw_node.h"

#define PID "CS0SLTKSYA"
#define DN "dev1"

static void encode(enum gw_command_kind kind, const char *name, json_t *params)
{
	uint8_t out[SGW_MAX_WIRE];
	char reason[128];

	if (params)
		(void)gw_command_encode(NULL, "uart1", 1, 7, 9, kind, name, params, out,
					sizeof(out), reason, sizeof(reason));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char topic[256], reason[GW_TENCENT_REASON_MAX];
	const uint8_t *nul = memchr(data, 0, size);
	size_t tlen = nul ? (size_t)(nul - data) : size;
	const char *payload = nul ? (const char *)nul + 1 : "";
	size_t plen = nul ? size - tlen - 1 : 0;
	enum gw_tencent_direction dir;
	enum gw_tencent_topic kind;
	enum gw_tencent_method method;
	struct gw_tencent_request req = { 0 };
	struct gw_tencent_reply rep = { 0 };

	if (tlen >= sizeof(topic))
		return 0;
	memcpy(topic, data, tlen);
	topic[tlen] = '\0';
	if (gw_tencent_classify_topic(topic, PID, DN, &dir, &kind) < 0 || dir != GW_TENCENT_DOWN)
		return 0;
	if (gw_tencent_peek_method(payload, plen, &method, reason) < 0)
		return 0;
	switch (method) {
	case GW_TENCENT_METHOD_REPORT_REPLY:
		(void)gw_tencent_parse_report_reply(payload, plen, &rep, reason);
		break;
	case GW_TENCENT_METHOD_REPORT_INFO_REPLY:
		(void)gw_tencent_parse_report_info_reply(payload, plen, &rep, reason);
		break;
	case GW_TENCENT_METHOD_GET_STATUS_REPLY:
		if (gw_tencent_parse_get_status_reply(payload, plen, &rep, reason) == 0)
			encode(GW_COMMAND_PROPERTY_SET, NULL, rep.control);
		break;
	case GW_TENCENT_METHOD_EVENT_REPLY:
		(void)gw_tencent_parse_event_reply(payload, plen, &rep, reason);
		break;
	case GW_TENCENT_METHOD_CONTROL:
		if (gw_tencent_parse_control(payload, plen, &req, reason) == 0)
			encode(GW_COMMAND_PROPERTY_SET, NULL, req.params);
		break;
	case GW_TENCENT_METHOD_ACTION:
		if (gw_tencent_parse_action(payload, plen, &req, reason) == 0)
			encode(GW_COMMAND_SERVICE, req.action_id, req.params);
		break;
	case GW_TENCENT_METHOD_REPORT:
	case GW_TENCENT_METHOD_REPORT_INFO:
	case GW_TENCENT_METHOD_GET_STATUS:
	case GW_TENCENT_METHOD_CLEAR_CONTROL:
	case GW_TENCENT_METHOD_CONTROL_REPLY:
	case GW_TENCENT_METHOD_EVENT_POST:
	case GW_TENCENT_METHOD_EVENTS_POST:
	case GW_TENCENT_METHOD_ACTION_REPLY:
		break; /* upward methods: the uplink ignores them coming down */
	}
	json_decref(req.params);
	json_decref(rep.control);
	return 0;
}
