/* SPDX-License-Identifier: MIT */
/*
 * What the Aliyun platform sends down, as the uplink handles it: the input is "TOPIC\0PAYLOAD".
 * The topic is classified, the payload goes to the parser its kind selects, and a request's
 * params are encoded into the node command frame, as the driver does before writing it out.
 */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "gw/aliyun.h"
#include "gw/command.h"
#include "sgw_node.h"

#define PK "a1B2c3D4e5F"
#define DN "stm32-0001"

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
	char topic[256], id[GW_ALIYUN_ID_MAX], service[GW_ALIYUN_ID_MAX];
	char reason[GW_ALIYUN_REASON_MAX];
	const uint8_t *nul = memchr(data, 0, size);
	size_t tlen = nul ? (size_t)(nul - data) : size;
	const char *payload = nul ? (const char *)nul + 1 : "";
	size_t plen = nul ? size - tlen - 1 : 0;
	enum gw_aliyun_topic kind;
	struct gw_aliyun_request req = { 0 };
	struct gw_aliyun_post_reply pr;

	if (tlen >= sizeof(topic))
		return 0;
	memcpy(topic, data, tlen);
	topic[tlen] = '\0';
	if (gw_aliyun_classify_topic(topic, PK, DN, &kind, id, sizeof(id)) < 0)
		return 0;
	switch (kind) {
	case GW_ALIYUN_TOPIC_PROPERTY_POST_REPLY:
	case GW_ALIYUN_TOPIC_EVENT_POST_REPLY:
		(void)gw_aliyun_parse_post_reply(payload, plen, &pr, reason);
		break;
	case GW_ALIYUN_TOPIC_PROPERTY_SET:
		if (gw_aliyun_parse_property_set(payload, plen, &req, reason) == 0)
			encode(GW_COMMAND_PROPERTY_SET, NULL, req.params);
		break;
	case GW_ALIYUN_TOPIC_SERVICE:
		if (gw_aliyun_parse_service_call(id, payload, plen, &req, reason) == 0)
			encode(GW_COMMAND_SERVICE, id, req.params);
		break;
	case GW_ALIYUN_TOPIC_RRPC_REQUEST:
		if (gw_aliyun_parse_rrpc_request(payload, plen, &req, &kind, service, reason) == 0)
			encode(kind == GW_ALIYUN_TOPIC_SERVICE ? GW_COMMAND_SERVICE :
			       GW_COMMAND_PROPERTY_SET, service, req.params);
		break;
	case GW_ALIYUN_TOPIC_PROPERTY_POST:
	case GW_ALIYUN_TOPIC_EVENT_POST:
	case GW_ALIYUN_TOPIC_PROPERTY_SET_REPLY:
	case GW_ALIYUN_TOPIC_SERVICE_REPLY:
	case GW_ALIYUN_TOPIC_RRPC_RESPONSE:
		break;
	}
	json_decref(req.params);
	return 0;
}
