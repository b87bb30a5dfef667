/* SPDX-License-Identifier: MIT */
/*
 * Tencent data-template ($thing) messages: the topics of one device, built and recognised;
 * what the device sends (report, report_info, get_status, clear_control, event posts and the
 * replies to control and action); and what it receives (the replies to those, control,
 * action), dispatched by their "method". The contract is in include/gw/tencent_msg.h; protocol
 * rules from docs/protocols/tencent.md, cited as §N.
 *
 * Pure: no I/O, nothing logs. Payloads are compact JSON in malloc'd strings of at most
 * GW_TENCENT_PAYLOAD_MAX bytes; parsers check every member they take and say in the reason
 * what is wrong.
 */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "tencent-private.h"

#define THING_ID_RULE "1..64 printable characters without space"

static const char *const method_names[] = {
	[GW_TENCENT_METHOD_REPORT] = "report",
	[GW_TENCENT_METHOD_REPORT_REPLY] = "report_reply",
	[GW_TENCENT_METHOD_REPORT_INFO] = "report_info",
	[GW_TENCENT_METHOD_REPORT_INFO_REPLY] = "report_info_reply",
	[GW_TENCENT_METHOD_GET_STATUS] = "get_status",
	[GW_TENCENT_METHOD_GET_STATUS_REPLY] = "get_status_reply",
	[GW_TENCENT_METHOD_CLEAR_CONTROL] = "clear_control",
	[GW_TENCENT_METHOD_CONTROL] = "control",
	[GW_TENCENT_METHOD_CONTROL_REPLY] = "control_reply",
	[GW_TENCENT_METHOD_EVENT_POST] = "event_post",
	[GW_TENCENT_METHOD_EVENTS_POST] = "events_post",
	[GW_TENCENT_METHOD_EVENT_REPLY] = "event_reply",
	[GW_TENCENT_METHOD_ACTION] = "action",
	[GW_TENCENT_METHOD_ACTION_REPLY] = "action_reply",
};

static const char *const topic_names[] = {
	[GW_TENCENT_TOPIC_PROPERTY] = "property",
	[GW_TENCENT_TOPIC_EVENT] = "event",
	[GW_TENCENT_TOPIC_ACTION] = "action",
};

/* A clientToken: 1..128 printable ASCII, space allowed. */
static bool valid_token_n(const char *s, size_t n)
{
	return gw_proto_printable_n(s, n, 1, GW_TENCENT_TOKEN_MAX - 1, true, NULL);
}

static bool valid_token(const char *s)
{
	return gw_proto_printable(s, 1, GW_TENCENT_TOKEN_MAX - 1, true, NULL);
}

static bool valid_thing_id_n(const char *s, size_t n)
{
	return gw_proto_printable_n(s, n, 1, GW_TENCENT_THING_ID_MAX - 1, false, NULL);
}

/* The product and device a topic names: the rules of gw_tencent_check_product_id() and
 * gw_tencent_check_device_name(). */
static bool valid_device(const char *product_id, const char *device_name)
{
	return gw_tencent_check_product_id(product_id, NULL) == 0 &&
	       gw_tencent_check_device_name(device_name, NULL) == 0;
}

const char *gw_tencent_name_method(enum gw_tencent_method m)
{
	return gw_proto_name(method_names, N_ELEMENTS(method_names), m);
}

int gw_tencent_build_topic(enum gw_tencent_direction dir, enum gw_tencent_topic kind,
			   const char *product_id, const char *device_name, char *buf, size_t size)
{
	if ((dir != GW_TENCENT_UP && dir != GW_TENCENT_DOWN) ||
	    (unsigned)kind >= N_ELEMENTS(topic_names) || !valid_device(product_id, device_name))
		return -EINVAL;
	return gw_bprintf(buf, size, "$thing/%s/%s/%s/%s", dir == GW_TENCENT_UP ? "up" : "down",
		       topic_names[kind], product_id, device_name);
}

/* Skips prefix at *s; true when it was there. */
static bool skip(const char **s, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncmp(*s, prefix, n) != 0)
		return false;
	*s += n;
	return true;
}

int gw_tencent_classify_topic(const char *topic, const char *product_id,
			      const char *device_name, enum gw_tencent_direction *dir,
			      enum gw_tencent_topic *kind)
{
	const char *s = topic;
	size_t i;

	if (!topic || !valid_device(product_id, device_name) || !skip(&s, "$thing/"))
		return -ENOENT;
	if (skip(&s, "up/"))
		*dir = GW_TENCENT_UP;
	else if (skip(&s, "down/"))
		*dir = GW_TENCENT_DOWN;
	else
		return -ENOENT;
	for (i = 0; i < N_ELEMENTS(topic_names); i++) {
		const char *t = s;

		if (skip(&t, topic_names[i]) && skip(&t, "/") && skip(&t, product_id) &&
		    skip(&t, "/") && strcmp(t, device_name) == 0) {
			*kind = (enum gw_tencent_topic)i;
			return 0;
		}
	}
	return -ENOENT;
}

int gw_tencent_format_client_token(const char *product_id, uint64_t seq, char *buf, size_t size)
{
	if (gw_tencent_check_product_id(product_id, NULL) < 0)
		return -EINVAL;
	return gw_bprintf(buf, size, "%s-%" PRIu64, product_id, seq);
}

/* Dumps o (which it takes) with the docs/protocols/tencent.md §1.7 size limit. */
static int dump(json_t *o, char **ret, size_t *ret_len)
{
	int r = gw_json_dump(o, GW_TENCENT_PAYLOAD_MAX, ret, ret_len);

	json_decref(o);
	return r;
}

/* Ends a builder: o (which it takes) is dumped, or dropped with -ENOMEM when a member could
 * not be set (fail). */
static int finish(json_t *o, int fail, char **ret, size_t *ret_len)
{
	if (fail) {
		json_decref(o);
		return -ENOMEM;
	}
	return dump(o, ret, ret_len);
}

/* The envelope every uplink message starts with: method, then clientToken. */
static json_t *envelope(enum gw_tencent_method m, const char *client_token)
{
	if (!valid_token(client_token))
		return NULL;
	return json_pack("{s:s,s:s}", "method", method_names[m], "clientToken", client_token);
}

static int set_timestamp(json_t *o, int64_t ts)
{
	if (ts < 0)
		return 0;
	return json_object_set_new(o, "timestamp", json_integer((json_int_t)ts));
}

/* "code" and, when status is not NULL, "status" of a reply to the platform. */
static int set_code_status(json_t *o, int code, const char *status)
{
	int fail = json_object_set_new(o, "code", json_integer(code));

	if (status)
		fail |= json_object_set_new(o, "status", json_string(status));
	return fail;
}

int gw_tencent_build_report(const char *client_token, json_t *params, int64_t timestamp_ms,
			    char **ret, size_t *ret_len)
{
	json_t *o;
	int fail;

	if (!valid_token(client_token) || !json_is_object(params) || json_object_size(params) == 0)
		return -EINVAL;
	o = envelope(GW_TENCENT_METHOD_REPORT, client_token);
	if (!o)
		return -ENOMEM;
	fail = set_timestamp(o, timestamp_ms);
	/* the data template's bool is 0/1 */
	fail |= json_object_set_new(o, "params", gw_proto_bools_as_ints(params));
	return finish(o, fail, ret, ret_len);
}

int gw_tencent_build_report_info(const char *client_token, const char *fw_ver, json_t *info,
				 char **ret, size_t *ret_len)
{
	json_t *o, *p;
	int fail;

	if (!valid_token(client_token) || !gw_proto_printable(fw_ver, 1, 64, false, NULL) ||
	    (info && (!json_is_object(info) || json_object_get(info, "fw_ver"))))
		return -EINVAL;
	p = info ? json_copy(info) : json_object();
	o = envelope(GW_TENCENT_METHOD_REPORT_INFO, client_token);
	if (!o || !p) {
		json_decref(o);
		json_decref(p);
		return -ENOMEM;
	}
	fail = json_object_set_new(p, "fw_ver", json_string(fw_ver));
	fail |= json_object_set_new(o, "params", p);
	return finish(o, fail, ret, ret_len);
}

int gw_tencent_build_get_status(const char *client_token, char **ret, size_t *ret_len)
{
	if (!valid_token(client_token))
		return -EINVAL;
	return dump(json_pack("{s:s,s:s,s:s,s:i}", "method",
			      method_names[GW_TENCENT_METHOD_GET_STATUS], "clientToken",
			      client_token, "type", "report", "showmeta", 0),
		    ret, ret_len);
}

int gw_tencent_build_clear_control(const char *client_token, char **ret, size_t *ret_len)
{
	if (!valid_token(client_token))
		return -EINVAL;
	return dump(envelope(GW_TENCENT_METHOD_CLEAR_CONTROL, client_token), ret, ret_len);
}

/* A status we send: printable ASCII, bounded, so a reply stays small and loggable. */
static bool valid_status(const char *s)
{
	return !s || gw_proto_printable(s, 0, GW_TENCENT_MESSAGE_MAX - 1, true, NULL);
}

int gw_tencent_build_control_reply(const char *client_token, int code, const char *status,
				   char **ret, size_t *ret_len)
{
	json_t *o;

	if (!valid_token(client_token) || !valid_status(status))
		return -EINVAL;
	o = envelope(GW_TENCENT_METHOD_CONTROL_REPLY, client_token);
	if (!o)
		return -ENOMEM;
	return finish(o, set_code_status(o, code, status), ret, ret_len);
}

static bool valid_event(const struct gw_tencent_event *ev)
{
	static const char *const types[] = { "info", "alert", "fault", "fatal" };

	if (!ev || !ev->event_id || !valid_thing_id_n(ev->event_id, strlen(ev->event_id)) ||
	    !json_is_object(ev->params) || !ev->type)
		return false;
	return gw_proto_lookup(types, N_ELEMENTS(types), ev->type) >= 0;
}

/* Adds the members of one event to o, in the documented order. */
static int add_event(json_t *o, const struct gw_tencent_event *ev)
{
	int fail;

	fail = json_object_set_new(o, "eventId", json_string(ev->event_id));
	fail |= json_object_set_new(o, "type", json_string(ev->type));
	fail |= set_timestamp(o, ev->timestamp_ms);
	fail |= json_object_set_new(o, "params", gw_proto_bools_as_ints(ev->params));
	return fail ? -ENOMEM : 0;
}

int gw_tencent_build_event_post(const char *client_token, const struct gw_tencent_event *ev,
				 char **ret, size_t *ret_len)
{
	json_t *o;

	if (!valid_token(client_token) || !valid_event(ev))
		return -EINVAL;
	o = envelope(GW_TENCENT_METHOD_EVENT_POST, client_token);
	if (!o)
		return -ENOMEM;
	return finish(o,
		      json_object_set_new(o, "version", json_string("1.0")) || add_event(o, ev) < 0,
		      ret, ret_len);
}

int gw_tencent_build_events_post(const char *client_token, const struct gw_tencent_event *ev,
				 size_t n, char **ret, size_t *ret_len)
{
	json_t *o, *a;
	size_t i;

	if (!valid_token(client_token) || !ev || n == 0)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!valid_event(&ev[i]))
			return -EINVAL;
	o = envelope(GW_TENCENT_METHOD_EVENTS_POST, client_token);
	if (!o)
		return -ENOMEM;
	a = json_array();
	if (json_object_set_new(o, "events", a)) { /* a NULL a fails here too */
		json_decref(o);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		json_t *e = json_object();

		if (!e || json_array_append_new(a, e) || add_event(e, &ev[i]) < 0) {
			json_decref(o);
			return -ENOMEM;
		}
	}
	return dump(o, ret, ret_len);
}

int gw_tencent_build_action_reply(const char *client_token, int code, const char *status,
				  json_t *response, char **ret, size_t *ret_len)
{
	json_t *o;
	int fail;

	if (!valid_token(client_token) || !valid_status(status) ||
	    (response && !json_is_object(response)))
		return -EINVAL;
	o = envelope(GW_TENCENT_METHOD_ACTION_REPLY, client_token);
	if (!o)
		return -ENOMEM;
	fail = set_code_status(o, code, status);
	fail |= json_object_set_new(o, "response",
				    response ? gw_proto_bools_as_ints(response) : json_object());
	return finish(o, fail, ret, ret_len);
}

/* "method" must be m. */
static int check_method(json_t *root, enum gw_tencent_method m, char *reason)
{
	const char *want = method_names[m];
	const char *s;
	size_t n;

	s = get_string(root, "", "method", &n, reason);
	if (!s)
		return -EBADMSG;
	if (n != strlen(want) || strcmp(s, want) != 0) {
		set_reason(reason, "\"method\" is not \"%s\"", want);
		return -EBADMSG;
	}
	return 0;
}

static int get_token(json_t *root, char *dst, char *reason)
{
	const char *s;
	size_t n;

	s = get_string(root, "", "clientToken", &n, reason);
	if (!s)
		return -EBADMSG;
	if (!valid_token_n(s, n) || strlen(s) != n) {
		set_reason(reason, "\"clientToken\" is not 1..%d printable characters",
			   GW_TENCENT_TOKEN_MAX - 1);
		return -EBADMSG;
	}
	memcpy(dst, s, n + 1);
	return 0;
}

int gw_tencent_peek_method(const char *buf, size_t len, enum gw_tencent_method *ret,
			   char *reason)
{
	json_t *root;
	const char *s;
	size_t n;
	int r, i;

	r = load_object(buf, len, GW_TENCENT_PAYLOAD_MAX, &root, reason);
	if (r < 0)
		return r;
	s = get_string(root, "", "method", &n, reason);
	if (!s) {
		r = -EBADMSG;
	} else {
		/* a NUL inside the string matches no name */
		i = strlen(s) == n ? gw_proto_lookup(method_names, N_ELEMENTS(method_names), s) :
				     -EINVAL;
		if (i >= 0) {
			*ret = (enum gw_tencent_method)i;
			r = 0;
		} else {
			set_reason(reason, "unknown method");
			r = -ENOENT;
		}
	}
	json_decref(root);
	return r;
}

static int parse_reply(enum gw_tencent_method m, const char *buf, size_t len,
		       struct gw_tencent_reply *ret, char *reason)
{
	json_int_t code = 0;
	json_t *root, *data, *control;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = load_object(buf, len, GW_TENCENT_PAYLOAD_MAX, &root, reason);
	if (r < 0)
		return r;
	r = check_method(root, m, reason);
	if (r >= 0)
		r = get_token(root, ret->client_token, reason);
	if (r >= 0)
		r = get_int(root, "", "code", true, INT_MIN, INT_MAX, &code, reason);
	if (r >= 0)
		r = get_text(root, "", "status", ret->status, sizeof(ret->status), reason);
	if (r < 0)
		goto out;
	ret->code = (int)code;
	if (m == GW_TENCENT_METHOD_GET_STATUS_REPLY && ret->code == GW_TENCENT_CODE_OK) {
		/* docs/protocols/tencent.md §3.1: what was set while the device was away is
		 * data.control. */
		data = get_object(root, "", "data", reason);
		if (!data) {
			r = -EBADMSG;
			goto out;
		}
		control = json_object_get(data, "control");
		if (control && !json_is_object(control)) {
			set_reason(reason, "\"data.control\" is not an object");
			r = -EBADMSG;
			goto out;
		}
		if (control && json_object_size(control) > 0)
			ret->control = json_incref(control);
	}
out:
	json_decref(root);
	if (r < 0)
		memset(ret, 0, sizeof(*ret));
	return r < 0 ? r : 0;
}

int gw_tencent_parse_report_reply(const char *buf, size_t len, struct gw_tencent_reply *ret,
				  char *reason)
{
	return parse_reply(GW_TENCENT_METHOD_REPORT_REPLY, buf, len, ret, reason);
}

int gw_tencent_parse_report_info_reply(const char *buf, size_t len, struct gw_tencent_reply *ret,
				       char *reason)
{
	return parse_reply(GW_TENCENT_METHOD_REPORT_INFO_REPLY, buf, len, ret, reason);
}

int gw_tencent_parse_event_reply(const char *buf, size_t len, struct gw_tencent_reply *ret,
				 char *reason)
{
	return parse_reply(GW_TENCENT_METHOD_EVENT_REPLY, buf, len, ret, reason);
}

int gw_tencent_parse_get_status_reply(const char *buf, size_t len, struct gw_tencent_reply *ret,
				      char *reason)
{
	return parse_reply(GW_TENCENT_METHOD_GET_STATUS_REPLY, buf, len, ret, reason);
}

static int parse_request(enum gw_tencent_method m, const char *buf, size_t len,
			 struct gw_tencent_request *ret, char *reason)
{
	json_t *root, *params;
	const char *s;
	size_t n;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = load_object(buf, len, GW_TENCENT_PAYLOAD_MAX, &root, reason);
	if (r < 0)
		return r;
	/* The token first: with it, even a malformed request can be answered. */
	r = get_token(root, ret->client_token, reason);
	if (r < 0)
		goto out;
	r = check_method(root, m, reason);
	if (r < 0)
		goto out;
	if (m == GW_TENCENT_METHOD_ACTION) {
		s = get_string(root, "", "actionId", &n, reason);
		if (!s) {
			r = -EBADMSG;
			goto out;
		}
		if (!valid_thing_id_n(s, n) || strlen(s) != n) {
			set_reason(reason, "\"actionId\" is not " THING_ID_RULE);
			r = -EBADMSG;
			goto out;
		}
		memcpy(ret->action_id, s, n + 1);
	}
	params = get_object(root, "", "params", reason);
	if (!params) {
		r = -EBADMSG;
		goto out;
	}
	ret->params = json_incref(params);
out:
	json_decref(root);
	if (r < 0)
		ret->action_id[0] = '\0';
	return r;
}

int gw_tencent_parse_control(const char *buf, size_t len, struct gw_tencent_request *ret,
			     char *reason)
{
	return parse_request(GW_TENCENT_METHOD_CONTROL, buf, len, ret, reason);
}

int gw_tencent_parse_action(const char *buf, size_t len, struct gw_tencent_request *ret,
			    char *reason)
{
	return parse_request(GW_TENCENT_METHOD_ACTION, buf, len, ret, reason);
}
