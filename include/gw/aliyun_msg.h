/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Aliyun Alink thing-model messages (src/cloud/aliyun_msg.c): the topics of one device, the
 * property and event posts, the replies to them, the property sets, service calls and RRPC
 * requests the platform sends, and the device's replies. Conventions in gw/aliyun_common.h.
 */

#include "gw/aliyun_common.h"

/*
 * Alink topics, all "/sys/<pk>/<dn>/<suffix>" (docs/protocols/aliyun.md §5). id is the event
 * id, service id or RRPC message id where the suffix has one (NULL otherwise). For the kinds
 * the device subscribes to (marked ↓), id may be "+" to build the subscription filter;
 * EVENT_POST_REPLY with "+" also matches the property post_reply.
 */
enum gw_aliyun_topic {
	GW_ALIYUN_TOPIC_PROPERTY_POST,       /* ↑ thing/event/property/post */
	GW_ALIYUN_TOPIC_PROPERTY_POST_REPLY, /* ↓ thing/event/property/post_reply */
	GW_ALIYUN_TOPIC_EVENT_POST,          /* ↑ thing/event/<id>/post */
	GW_ALIYUN_TOPIC_EVENT_POST_REPLY,    /* ↓ thing/event/<id>/post_reply */
	GW_ALIYUN_TOPIC_PROPERTY_SET,        /* ↓ thing/service/property/set */
	GW_ALIYUN_TOPIC_PROPERTY_SET_REPLY,  /* ↑ thing/service/property/set_reply */
	GW_ALIYUN_TOPIC_SERVICE,             /* ↓ thing/service/<id> */
	GW_ALIYUN_TOPIC_SERVICE_REPLY,       /* ↑ thing/service/<id>_reply */
	GW_ALIYUN_TOPIC_RRPC_REQUEST,        /* ↓ rrpc/request/<id> */
	GW_ALIYUN_TOPIC_RRPC_RESPONSE,       /* ↑ rrpc/response/<id> */
};

/*
 * Builds the topic of kind for product_key/device_name. A thing id is 1..64 printable ASCII
 * without space, '/', '+' and '#'; an event id may not be "property" (its topic would be the
 * property post's); a service id may not be "property" nor end in "_reply", for the same
 * reason. Returns the length, -EINVAL or -ENOBUFS.
 */
int gw_aliyun_build_topic(enum gw_aliyun_topic kind, const char *product_key,
			  const char *device_name, const char *id, char *buf, size_t size);

/*
 * Recognises a topic the platform delivers to product_key/device_name: PROPERTY_POST_REPLY,
 * EVENT_POST_REPLY, PROPERTY_SET, SERVICE or RRPC_REQUEST, with the event id, service id or
 * RRPC message id copied to id (empty for the others). Returns 0, -ENOENT for any other topic
 * (another device's, an uplink kind, thing/service/property/get, ...) or -ENOBUFS when the id
 * does not fit id_size.
 */
int gw_aliyun_classify_topic(const char *topic, const char *product_key, const char *device_name,
			     enum gw_aliyun_topic *kind, char *id, size_t id_size);

/*
 * Uplink payloads, compact JSON in a malloc'd NUL-terminated string (*ret, length *ret_len
 * when ret_len is not NULL); reals keep 15 significant digits and always a decimal point. In
 * params, an event's value and a reply's data, every JSON true/false is sent as 1/0, the TSL's
 * bool (docs/protocols/aliyun.md §5).
 *
 * Property post: {"id":"<id>","version":"1.0",["sys":{"ack":0},]"params":P,
 * "method":"thing.event.property.post"}. params is an object (borrowed). With time_ms < 0, P
 * is params itself (live data); otherwise every member v becomes {"value":v,"time":time_ms}
 * (replayed data: the platform keeps the time of the reading). ack false asks the platform
 * not to send a post_reply. Returns 0, -EINVAL or -ENOMEM.
 */
int gw_aliyun_build_property_post(uint32_t id, json_t *params, int64_t time_ms, bool ack,
				  char **ret, size_t *ret_len);

/* What params of an event post hold (docs/protocols/aliyun.md §5, event post). */
enum gw_aliyun_event_form {
	GW_ALIYUN_EVENT_VALUE_TIME, /* {"value":V,"time":time_ms}: the documented form */
	GW_ALIYUN_EVENT_OUTPUTS,    /* V itself, no time: what the official SDKs send */
};

/*
 * Event post: {"id":"<id>","version":"1.0",["sys":{"ack":0},]"params":P,
 * "method":"thing.event.<event_id>.post"}, P {"value":V,"time":time_ms} or, with
 * GW_ALIYUN_EVENT_OUTPUTS, V (time_ms is then checked but not sent). value is an object
 * (borrowed), time_ms >= 0, event_id as for gw_aliyun_build_topic(). Returns 0, -EINVAL or
 * -ENOMEM.
 */
int gw_aliyun_build_event_post(uint32_t id, const char *event_id, json_t *value, int64_t time_ms,
			       enum gw_aliyun_event_form form, bool ack, char **ret,
			       size_t *ret_len);

/*
 * Reply to a property set or a service call: {"id":"<id>","code":<code>,"data":D}, id the
 * request's id string as parsed, D data (borrowed) or {} when data is NULL. data must be an
 * object. Returns 0, -EINVAL or -ENOMEM.
 */
int gw_aliyun_build_reply(const char *id, int code, json_t *data, char **ret, size_t *ret_len);

/* A post_reply. */
struct gw_aliyun_post_reply {
	uint32_t id;
	int code; /* GW_ALIYUN_CODE_OK or an error code (D120329) */
	char message[GW_ALIYUN_MESSAGE_MAX]; /* empty when absent; controls as '?' */
};

/*
 * Parses a post_reply: an object with "id" (a string of 1..10 decimal digits, at most
 * 4294967295) and an integer "code"; "message", when present, a string. "data" and others are
 * ignored. A reply with an error code parses fine: the caller looks at code. Returns 0,
 * -EMSGSIZE (len > GW_ALIYUN_DOWNLINK_MAX) or -EBADMSG.
 */
int gw_aliyun_parse_post_reply(const char *buf, size_t len, struct gw_aliyun_post_reply *ret,
			       char *reason);

/* A downlink request: property set or service call. */
struct gw_aliyun_request {
	char id[GW_ALIYUN_MSG_ID_MAX]; /* as sent, to be echoed in the reply */
	uint32_t id_num;
	json_t *params; /* new reference to the params object; json_decref() it */
};

/*
 * Parses a property set (method, when present, "thing.service.property.set") or a call of
 * service service_id (method, when present, "thing.service.<service_id>"): an object with
 * "id" as in a post_reply and an object "params". Returns 0 with ret->params owned by the
 * caller; -EINVAL (bad service_id), -EMSGSIZE or -EBADMSG with ret->params NULL and ret->id
 * set when the id itself was readable (so the caller can still answer it with an error code)
 * or empty.
 */
int gw_aliyun_parse_property_set(const char *buf, size_t len, struct gw_aliyun_request *ret,
				 char *reason);
int gw_aliyun_parse_service_call(const char *service_id, const char *buf, size_t len,
				 struct gw_aliyun_request *ret, char *reason);

/*
 * A reply that carries a message, as the platform's own replies do
 * (docs/protocols/aliyun.md §5 reply envelope):
 * {"id":"<id>","code":<code>,"data":D,"message":"<message>"}. id NULL leaves "id" out (an
 * RRPC request whose payload had none: the response topic names the request). data as for
 * gw_aliyun_build_reply(). Returns 0, -EINVAL (bad id or data, message NULL or not UTF-8) or
 * -ENOMEM.
 */
int gw_aliyun_build_reply_message(const char *id, int code, json_t *data, const char *message,
				  char **ret, size_t *ret_len);

/*
 * Parses the payload of a classic RRPC request (rrpc/request/<msgId>,
 * docs/protocols/aliyun.md §5) as sensorgw expects it: an Alink request envelope whose
 * "method" (required here: the topic does not say what is asked) is
 * "thing.service.property.set" (*kind = GW_ALIYUN_TOPIC_PROPERTY_SET) or
 * "thing.service.<serviceId>" (*kind = GW_ALIYUN_TOPIC_SERVICE, the id copied to service_id,
 * GW_ALIYUN_ID_MAX bytes), with "id" and an object "params". Returns 0 with ret->params owned
 * by the caller, or -EMSGSIZE / -EBADMSG with ret->id set when the id was readable.
 */
int gw_aliyun_parse_rrpc_request(const char *buf, size_t len, struct gw_aliyun_request *ret,
				 enum gw_aliyun_topic *kind, char *service_id, char *reason);
