/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Tencent data-template ($thing) messages (src/cloud/tencent_msg.c): the topics of one device,
 * the messages it sends (report, report_info, get_status, clear_control, event posts, the
 * replies to control and action) and those it receives. Conventions in gw/tencent_common.h.
 */

#include "gw/tencent_common.h"

/* Data-template reply code for success (docs/protocols/tencent.md §3). */
#define GW_TENCENT_CODE_OK 0

/* Data template (docs/protocols/tencent.md §3). Topic "$thing/<up|down>/<kind>/<pid>/<dn>". */
enum gw_tencent_direction {
	GW_TENCENT_UP,
	GW_TENCENT_DOWN,
};

enum gw_tencent_topic {
	GW_TENCENT_TOPIC_PROPERTY,
	GW_TENCENT_TOPIC_EVENT,
	GW_TENCENT_TOPIC_ACTION,
};

/* Builds the topic. Returns the length, -EINVAL or -ENOBUFS. */
int gw_tencent_build_topic(enum gw_tencent_direction dir, enum gw_tencent_topic kind,
			   const char *product_id, const char *device_name, char *buf, size_t size);

/*
 * Recognises "$thing/<up|down>/<property|event|action>/<product_id>/<device_name>" exactly.
 * Returns 0, or -ENOENT for any other topic (another device's, $thing/down/service, ...).
 */
int gw_tencent_classify_topic(const char *topic, const char *product_id,
			      const char *device_name, enum gw_tencent_direction *dir,
			      enum gw_tencent_topic *kind);

/* The "method" of every data-template message sensorgw sends or understands
 * (docs/protocols/tencent.md §3). */
enum gw_tencent_method {
	GW_TENCENT_METHOD_REPORT,            /* ↑ property */
	GW_TENCENT_METHOD_REPORT_REPLY,      /* ↓ property */
	GW_TENCENT_METHOD_REPORT_INFO,       /* ↑ property */
	GW_TENCENT_METHOD_REPORT_INFO_REPLY, /* ↓ property */
	GW_TENCENT_METHOD_GET_STATUS,        /* ↑ property */
	GW_TENCENT_METHOD_GET_STATUS_REPLY,  /* ↓ property */
	GW_TENCENT_METHOD_CLEAR_CONTROL,     /* ↑ property */
	GW_TENCENT_METHOD_CONTROL,           /* ↓ property */
	GW_TENCENT_METHOD_CONTROL_REPLY,     /* ↑ property */
	GW_TENCENT_METHOD_EVENT_POST,        /* ↑ event */
	GW_TENCENT_METHOD_EVENTS_POST,       /* ↑ event */
	GW_TENCENT_METHOD_EVENT_REPLY,       /* ↓ event */
	GW_TENCENT_METHOD_ACTION,            /* ↓ action */
	GW_TENCENT_METHOD_ACTION_REPLY,      /* ↑ action */
};

const char *gw_tencent_name_method(enum gw_tencent_method m);

/*
 * Reads only the "method" of a downlink message, to dispatch it (the property topic carries
 * four kinds). Returns 0, -ENOENT (a string method we do not know: ignore it), -EMSGSIZE or
 * -EBADMSG (not an object, no string "method").
 */
int gw_tencent_peek_method(const char *buf, size_t len, enum gw_tencent_method *ret,
			   char *reason);

/*
 * "<pid>-<seq>", the clientToken form the SDKs use (docs/protocols/tencent.md §3). Returns the
 * length, -EINVAL or -ENOBUFS.
 */
int gw_tencent_format_client_token(const char *product_id, uint64_t seq, char *buf, size_t size);

/*
 * Uplink builders: compact JSON in a malloc'd NUL-terminated string (*ret, length *ret_len
 * when not NULL); reals keep 15 significant digits. client_token: 1..128 printable ASCII.
 * json_t arguments are borrowed. All return 0, -EINVAL, -EMSGSIZE (the payload would exceed
 * GW_TENCENT_PAYLOAD_MAX; then *ret_len, when not NULL, is the size it would have had) or
 * -ENOMEM. In report and event params and in an action's response, every JSON true/false is
 * sent as 1/0, the data template's bool (docs/protocols/tencent.md §3.1).
 *
 * report: {"method":"report","clientToken":T[,"timestamp":ts_ms],"params":P}; timestamp_ms < 0
 * leaves it out (live data); a replayed record passes the time of its reading (ms, the unit the C
 * SDK uses for timestamps, docs/protocols/tencent.md §3.2). params is a non-empty object.
 */
int gw_tencent_build_report(const char *client_token, json_t *params, int64_t timestamp_ms,
			    char **ret, size_t *ret_len);

/*
 * report_info: {"method":"report_info","clientToken":T,"params":{"fw_ver":V,...info}}; info
 * (may be NULL) is an object of further base-info members (module_hardinfo, mac, ...) that
 * must not hold "fw_ver". fw_ver: 1..64 printable ASCII.
 */
int gw_tencent_build_report_info(const char *client_token, const char *fw_ver, json_t *info,
				 char **ret, size_t *ret_len);

/* get_status: {"method":"get_status","clientToken":T,"type":"report","showmeta":0}. */
int gw_tencent_build_get_status(const char *client_token, char **ret, size_t *ret_len);

/* clear_control: {"method":"clear_control","clientToken":T}, T from the get_status_reply. */
int gw_tencent_build_clear_control(const char *client_token, char **ret, size_t *ret_len);

/*
 * control_reply: {"method":"control_reply","clientToken":T,"code":C[,"status":S]}, T the
 * control's token; status NULL leaves it out.
 */
int gw_tencent_build_control_reply(const char *client_token, int code, const char *status,
				   char **ret, size_t *ret_len);

/* One event of an event_post or events_post. type: "info", "alert", "fault" or "fatal". */
struct gw_tencent_event {
	const char *event_id;  /* 1..64 printable ASCII without space */
	const char *type;
	int64_t timestamp_ms;  /* < 0: left out */
	json_t *params;        /* an object */
};

/*
 * event_post: {"method":"event_post","clientToken":T,"version":"1.0","eventId":…,"type":…,
 * ["timestamp":…,]"params":…}; events_post: {"method":"events_post","clientToken":T,
 * "events":[{"eventId":…,"type":…,["timestamp":…,]"params":…},…]} with 1..n events.
 */
int gw_tencent_build_event_post(const char *client_token, const struct gw_tencent_event *ev,
				 char **ret, size_t *ret_len);
int gw_tencent_build_events_post(const char *client_token, const struct gw_tencent_event *ev,
				 size_t n, char **ret, size_t *ret_len);

/*
 * action_reply: {"method":"action_reply","clientToken":T,"code":C[,"status":S],
 * "response":R}; response (an object) NULL gives {}.
 */
int gw_tencent_build_action_reply(const char *client_token, int code, const char *status,
				  json_t *response, char **ret, size_t *ret_len);

/* A reply from the platform: report_reply, report_info_reply, event_reply, get_status_reply. */
struct gw_tencent_reply {
	char client_token[GW_TENCENT_TOKEN_MAX];
	int code;                              /* GW_TENCENT_CODE_OK or an error, e.g. 406 */
	char status[GW_TENCENT_MESSAGE_MAX];   /* empty when absent; controls as '?' */
	json_t *control; /* get_status_reply only: data.control when non-empty, else NULL */
};

/*
 * Parse a reply: an object with "method" equal to the expected one, a string "clientToken"
 * (1..128 printable ASCII), an integer "code" and, when present, a string "status". A reply
 * with an error code parses fine: the caller looks at code. get_status_reply: with code 0,
 * "data" must be an object; "data.control", when present, an object, returned as a new
 * reference in ret->control (json_decref it) unless it is empty. Return 0, -EMSGSIZE or
 * -EBADMSG; *ret is zeroed on failure.
 */
int gw_tencent_parse_report_reply(const char *buf, size_t len, struct gw_tencent_reply *ret,
				  char *reason);
int gw_tencent_parse_report_info_reply(const char *buf, size_t len, struct gw_tencent_reply *ret,
				       char *reason);
int gw_tencent_parse_event_reply(const char *buf, size_t len, struct gw_tencent_reply *ret,
				 char *reason);
int gw_tencent_parse_get_status_reply(const char *buf, size_t len, struct gw_tencent_reply *ret,
				      char *reason);

/* A request from the platform: control or action. */
struct gw_tencent_request {
	char client_token[GW_TENCENT_TOKEN_MAX]; /* to be echoed in the reply */
	char action_id[GW_TENCENT_THING_ID_MAX]; /* action only */
	json_t *params; /* new reference to the params object; json_decref() it */
};

/*
 * Parse a control ({"method":"control","clientToken":T,"params":{…}}) or an action
 * ({"method":"action","clientToken":T,"actionId":A,"params":{…}}, "timestamp" ignored). Return
 * 0 with ret->params owned by the caller; -EMSGSIZE or -EBADMSG with ret->params NULL and
 * ret->client_token set when the token itself was readable (so the caller can still answer
 * with an error code), else empty.
 */
int gw_tencent_parse_control(const char *buf, size_t len, struct gw_tencent_request *ret,
			     char *reason);
int gw_tencent_parse_action(const char *buf, size_t len, struct gw_tencent_request *ret,
			    char *reason);
