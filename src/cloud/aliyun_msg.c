/* SPDX-License-Identifier: MIT */
/*
 * Aliyun Alink thing-model messages: the topics of one device ("/sys/<pk>/<dn>/..."), built
 * and recognised; the property and event posts it sends; the post replies, property sets,
 * service calls and RRPC requests it receives; and the replies it sends to them. The contract
 * is in include/gw/aliyun_msg.h; protocol rules from docs/protocols/aliyun.md with section
 * numbers cited as §N.
 *
 * Pure: no I/O, nothing logs. Payloads are compact JSON in malloc'd strings; parsers check
 * every member they take and say in the reason what is wrong.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "aliyun-private.h"
#include "proto.h"

#define METHOD_MAX 128

/* A thing id (event, service, RRPC message id) is one topic level. */
static bool valid_thing_id(const char *s, bool allow_plus)
{
	if (allow_plus && s && strcmp(s, "+") == 0)
		return true;
	return gw_proto_printable(s, 1, GW_ALIYUN_ID_MAX - 1, false, "/+#");
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static bool valid_event_id(const char *s, bool allow_plus)
{
	return valid_thing_id(s, allow_plus) && strcmp(s, "property") != 0;
}

static bool valid_service_id(const char *s, bool allow_plus)
{
	return valid_thing_id(s, allow_plus) && strcmp(s, "property") != 0 &&
	       !ends_with(s, "_reply");
}

int gw_aliyun_build_topic(enum gw_aliyun_topic kind, const char *product_key,
			  const char *device_name, const char *id, char *buf, size_t size)
{
	const char *head, *tail = "";
	bool ok;

	if (!gw_aliyun_valid_label(product_key) || !gw_aliyun_valid_device_name(device_name))
		return -EINVAL;
	switch (kind) {
	case GW_ALIYUN_TOPIC_PROPERTY_POST:
		head = "thing/event/property/post";
		ok = !id;
		break;
	case GW_ALIYUN_TOPIC_PROPERTY_POST_REPLY:
		head = "thing/event/property/post_reply";
		ok = !id;
		break;
	case GW_ALIYUN_TOPIC_EVENT_POST:
		head = "thing/event/";
		tail = "/post";
		ok = valid_event_id(id, false);
		break;
	case GW_ALIYUN_TOPIC_EVENT_POST_REPLY:
		head = "thing/event/";
		tail = "/post_reply";
		ok = valid_event_id(id, true);
		break;
	case GW_ALIYUN_TOPIC_PROPERTY_SET:
		head = "thing/service/property/set";
		ok = !id;
		break;
	case GW_ALIYUN_TOPIC_PROPERTY_SET_REPLY:
		head = "thing/service/property/set_reply";
		ok = !id;
		break;
	case GW_ALIYUN_TOPIC_SERVICE:
		head = "thing/service/";
		ok = valid_service_id(id, true);
		break;
	case GW_ALIYUN_TOPIC_SERVICE_REPLY:
		head = "thing/service/";
		tail = "_reply";
		ok = valid_service_id(id, false);
		break;
	case GW_ALIYUN_TOPIC_RRPC_REQUEST:
		head = "rrpc/request/";
		ok = valid_thing_id(id, true);
		break;
	case GW_ALIYUN_TOPIC_RRPC_RESPONSE:
		head = "rrpc/response/";
		ok = valid_thing_id(id, false);
		break;
	default:
		return -EINVAL;
	}
	if (!ok)
		return -EINVAL;
	return gw_bprintf(buf, size, "/sys/%s/%s/%s%s%s", product_key, device_name, head,
		       id ? id : "", tail);
}

/* Copies the single topic level at s (up to the end) to id when it is a valid thing id. */
static int take_id(const char *s, bool service, char *id, size_t id_size)
{
	if (service ? !valid_service_id(s, false) : !valid_thing_id(s, false))
		return -ENOENT;
	return gw_bprintf(id, id_size, "%s", s) < 0 ? -ENOBUFS : 0;
}

int gw_aliyun_classify_topic(const char *topic, const char *product_key, const char *device_name,
			     enum gw_aliyun_topic *kind, char *id, size_t id_size)
{
	static const char ev[] = "thing/event/", svc[] = "thing/service/", rrpc[] = "rrpc/request/";
	size_t pk_len, dn_len;
	const char *rest, *slash;
	int r;

	if (!topic || !product_key || !device_name || !id || id_size == 0)
		return -ENOENT;
	id[0] = '\0';
	pk_len = strlen(product_key);
	dn_len = strlen(device_name);
	if (strncmp(topic, "/sys/", 5) != 0 || strncmp(topic + 5, product_key, pk_len) != 0 ||
	    topic[5 + pk_len] != '/' || strncmp(topic + 6 + pk_len, device_name, dn_len) != 0 ||
	    topic[6 + pk_len + dn_len] != '/')
		return -ENOENT;
	rest = topic + 7 + pk_len + dn_len;

	if (strcmp(rest, "thing/event/property/post_reply") == 0) {
		*kind = GW_ALIYUN_TOPIC_PROPERTY_POST_REPLY;
		return 0;
	}
	if (strcmp(rest, "thing/service/property/set") == 0) {
		*kind = GW_ALIYUN_TOPIC_PROPERTY_SET;
		return 0;
	}
	if (strncmp(rest, ev, sizeof(ev) - 1) == 0) {
		char event[GW_ALIYUN_ID_MAX];
		size_t n;

		rest += sizeof(ev) - 1;
		slash = strchr(rest, '/');
		if (!slash || strcmp(slash, "/post_reply") != 0)
			return -ENOENT;
		n = (size_t)(slash - rest);
		if (n == 0 || n >= sizeof(event))
			return -ENOENT;
		memcpy(event, rest, n);
		event[n] = '\0';
		if (!valid_event_id(event, false))
			return -ENOENT;
		r = take_id(event, false, id, id_size);
		if (r == 0)
			*kind = GW_ALIYUN_TOPIC_EVENT_POST_REPLY;
		return r;
	}
	if (strncmp(rest, svc, sizeof(svc) - 1) == 0) {
		r = take_id(rest + sizeof(svc) - 1, true, id, id_size);
		if (r == 0)
			*kind = GW_ALIYUN_TOPIC_SERVICE;
		return r;
	}
	if (strncmp(rest, rrpc, sizeof(rrpc) - 1) == 0) {
		r = take_id(rest + sizeof(rrpc) - 1, false, id, id_size);
		if (r == 0)
			*kind = GW_ALIYUN_TOPIC_RRPC_REQUEST;
		return r;
	}
	return -ENOENT;
}

/* Dumps o (borrowed): Alink payloads have no size limit of their own here. */
static int dump(json_t *o, char **ret, size_t *ret_len)
{
	return gw_json_dump(o, SIZE_MAX, ret, ret_len);
}

int gw_aliyun_build_request(uint32_t id, bool ack, json_t *params, const char *method,
			    char **ret, size_t *ret_len)
{
	char id_str[GW_ALIYUN_MSG_ID_MAX];
	json_t *o = json_object();
	int fail = 0, r;

	snprintf(id_str, sizeof(id_str), "%" PRIu32, id);
	if (!o || !params) {
		json_decref(o);
		json_decref(params);
		return -ENOMEM;
	}
	fail |= json_object_set_new(o, "id", json_string(id_str));
	fail |= json_object_set_new(o, "version", json_string("1.0"));
	/* ack absent means "reply" (D89298), so only the opt-out is spelt out. */
	if (!ack)
		fail |= json_object_set_new(o, "sys", json_pack("{s:i}", "ack", 0));
	fail |= json_object_set_new(o, "params", params);
	if (method)
		fail |= json_object_set_new(o, "method", json_string(method));
	r = fail ? -ENOMEM : dump(o, ret, ret_len);
	json_decref(o);
	return r;
}

int gw_aliyun_build_property_post(uint32_t id, json_t *params, int64_t time_ms, bool ack,
				  char **ret, size_t *ret_len)
{
	const char *key;
	json_t *p, *v, *vals;
	int fail = 0;

	if (!json_is_object(params))
		return -EINVAL;
	/* the thing model's bool is 0/1 */
	vals = gw_proto_bools_as_ints(params);
	if (time_ms < 0)
		return gw_aliyun_build_request(id, ack, vals, "thing.event.property.post", ret,
					       ret_len);

	p = json_object();
	if (!p || !vals) {
		json_decref(p);
		json_decref(vals);
		return -ENOMEM;
	}
	json_object_foreach(vals, key, v)
		fail |= json_object_set_new(p, key, json_pack("{s:O,s:I}", "value", v, "time",
							     (json_int_t)time_ms));
	json_decref(vals);
	if (fail) {
		json_decref(p);
		return -ENOMEM;
	}
	return gw_aliyun_build_request(id, ack, p, "thing.event.property.post", ret, ret_len);
}

int gw_aliyun_build_event_post(uint32_t id, const char *event_id, json_t *value, int64_t time_ms,
			       enum gw_aliyun_event_form form, bool ack, char **ret,
			       size_t *ret_len)
{
	char method[METHOD_MAX];
	json_t *vals;

	if (!valid_event_id(event_id, false) || !json_is_object(value) || time_ms < 0 ||
	    (form != GW_ALIYUN_EVENT_VALUE_TIME && form != GW_ALIYUN_EVENT_OUTPUTS))
		return -EINVAL;
	if (gw_bprintf(method, sizeof(method), "thing.event.%s.post", event_id) < 0)
		return -EINVAL;
	vals = gw_proto_bools_as_ints(value);
	if (!vals)
		return -ENOMEM;
	/* the SDKs' form: the outputs are the params, as in a live property post */
	if (form == GW_ALIYUN_EVENT_OUTPUTS)
		return gw_aliyun_build_request(id, ack, vals, method, ret, ret_len);
	/* "o" steals vals: json_pack releases it also when it fails */
	return gw_aliyun_build_request(id, ack,
				       json_pack("{s:o,s:I}", "value", vals, "time",
						 (json_int_t)time_ms),
				       method, ret, ret_len);
}

bool gw_aliyun_valid_msg_id(const char *s, size_t n, uint32_t *num)
{
	uint64_t v = 0;
	size_t i;

	if (n < 1 || n > GW_ALIYUN_MSG_ID_MAX - 1)
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	if (num)
		*num = (uint32_t)v;
	return true;
}

int gw_aliyun_build_reply(const char *id, int code, json_t *data, char **ret, size_t *ret_len)
{
	json_t *o;
	int r;

	if (!id || !gw_aliyun_valid_msg_id(id, strlen(id), NULL) || (data && !json_is_object(data)))
		return -EINVAL;
	/* the node's outputs, with the thing model's 0/1 bools ("o" steals them, NULL fails) */
	o = data ? json_pack("{s:s,s:i,s:o}", "id", id, "code", code, "data",
			     gw_proto_bools_as_ints(data)) :
		   json_pack("{s:s,s:i,s:{}}", "id", id, "code", code, "data");
	if (!o)
		return -ENOMEM;
	r = dump(o, ret, ret_len);
	json_decref(o);
	return r;
}

int gw_aliyun_build_reply_message(const char *id, int code, json_t *data, const char *message,
				  char **ret, size_t *ret_len)
{
	json_t *o;
	int fail = 0, r;

	if ((id && !gw_aliyun_valid_msg_id(id, strlen(id), NULL)) ||
	    (data && !json_is_object(data)) || !message)
		return -EINVAL;
	o = json_object();
	if (!o)
		return -ENOMEM;
	if (id)
		fail |= json_object_set_new(o, "id", json_string(id));
	fail |= json_object_set_new(o, "code", json_integer(code));
	fail |= json_object_set_new(o, "data", data ? gw_proto_bools_as_ints(data) : json_object());
	/* json_string refuses invalid UTF-8: the caller's text is ours, never the node's */
	fail |= json_object_set_new(o, "message", json_string(message));
	r = fail ? -EINVAL : dump(o, ret, ret_len);
	json_decref(o);
	return r;
}

int gw_aliyun_get_msg_id(json_t *root, char *id, uint32_t *num, char *reason)
{
	const char *s;
	size_t n;

	s = gw_json_get_string(root, "", "id", &n, reason, GW_ALIYUN_REASON_MAX);
	if (!s)
		return -EBADMSG;
	if (!gw_aliyun_valid_msg_id(s, n, num)) {
		set_reason(reason, "\"id\" is not a decimal number up to 4294967295");
		return -EBADMSG;
	}
	memcpy(id, s, n + 1);
	return 0;
}

int gw_aliyun_parse_post_reply(const char *buf, size_t len, struct gw_aliyun_post_reply *ret,
			       char *reason)
{
	char id[GW_ALIYUN_MSG_ID_MAX];
	json_t *root;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = gw_json_load_object(buf, len, GW_ALIYUN_DOWNLINK_MAX, &root, reason,
				GW_ALIYUN_REASON_MAX);
	if (r < 0)
		return r;
	r = gw_aliyun_get_msg_id(root, id, &ret->id, reason);
	if (r >= 0)
		r = gw_aliyun_get_code(root, &ret->code, reason);
	if (r >= 0)
		r = gw_json_get_text(root, "", "message", ret->message, sizeof(ret->message),
				     reason, GW_ALIYUN_REASON_MAX);
	json_decref(root);
	if (r < 0)
		memset(ret, 0, sizeof(*ret));
	return r;
}

/*
 * The request envelope of a downlink: loads buf and reads "id" into ret (first, so that even a
 * request with a bad method can be answered with it). Returns 0 with *root a new reference
 * (also after an id error when the object loaded), or an error with *root NULL.
 */
static int load_request(const char *buf, size_t len, struct gw_aliyun_request *ret,
			json_t **root, char *reason)
{
	int r;

	r = gw_json_load_object(buf, len, GW_ALIYUN_DOWNLINK_MAX, root, reason,
				GW_ALIYUN_REASON_MAX);
	if (r < 0)
		return r;
	return gw_aliyun_get_msg_id(*root, ret->id, &ret->id_num, reason);
}

/* The object "params" of a request, a new reference in ret->params. */
static int take_params(json_t *root, struct gw_aliyun_request *ret, char *reason)
{
	json_t *v = gw_json_get_object(root, "", "params", reason, GW_ALIYUN_REASON_MAX);

	if (!v)
		return -EBADMSG;
	ret->params = json_incref(v);
	return 0;
}

int gw_aliyun_parse_request(const char *method, const char *buf, size_t len,
			    struct gw_aliyun_request *ret, char *reason)
{
	json_t *root = NULL, *v;
	int r;

	r = load_request(buf, len, ret, &root, reason);
	if (r < 0)
		goto out;
	v = json_object_get(root, "method");
	if (v && (!json_is_string(v) || strcmp(json_string_value(v), method) != 0 ||
		  json_string_length(v) != strlen(method))) {
		set_reason(reason, "\"method\" is not \"%s\"", method);
		r = -EBADMSG;
		goto out;
	}
	r = take_params(root, ret, reason);
out:
	json_decref(root);
	return r;
}

int gw_aliyun_parse_property_set(const char *buf, size_t len, struct gw_aliyun_request *ret,
				 char *reason)
{
	memset(ret, 0, sizeof(*ret));
	return gw_aliyun_parse_request("thing.service.property.set", buf, len, ret, reason);
}

int gw_aliyun_parse_service_call(const char *service_id, const char *buf, size_t len,
				 struct gw_aliyun_request *ret, char *reason)
{
	char method[METHOD_MAX];

	memset(ret, 0, sizeof(*ret));
	if (!valid_service_id(service_id, false) ||
	    gw_bprintf(method, sizeof(method), "thing.service.%s", service_id) < 0)
		return -EINVAL;
	return gw_aliyun_parse_request(method, buf, len, ret, reason);
}

int gw_aliyun_parse_rrpc_request(const char *buf, size_t len, struct gw_aliyun_request *ret,
				 enum gw_aliyun_topic *kind, char *service_id, char *reason)
{
	static const char prefix[] = "thing.service.";
	char method[METHOD_MAX];
	const char *m;
	json_t *root = NULL, *v;
	int r;

	memset(ret, 0, sizeof(*ret));
	service_id[0] = '\0';
	r = load_request(buf, len, ret, &root, reason);
	if (r < 0)
		goto out;
	v = json_object_get(root, "method");
	if (!json_is_string(v)) {
		set_reason(reason, v ? "\"method\" is not a string" : "no \"method\"");
		r = -EBADMSG;
		goto out;
	}
	m = json_string_value(v);
	if (json_string_length(v) >= sizeof(method) || strlen(m) != json_string_length(v) ||
	    strncmp(m, prefix, sizeof(prefix) - 1) != 0) {
		set_reason(reason, "\"method\" is not thing.service.<id>");
		r = -EBADMSG;
		goto out;
	}
	m += sizeof(prefix) - 1;
	if (strcmp(m, "property.set") == 0) {
		*kind = GW_ALIYUN_TOPIC_PROPERTY_SET;
	} else if (strncmp(m, "property.", 9) != 0 && valid_service_id(m, false)) {
		*kind = GW_ALIYUN_TOPIC_SERVICE;
		snprintf(service_id, GW_ALIYUN_ID_MAX, "%s", m);
	} else {
		set_reason(reason, "\"method\" names no service a device can offer");
		r = -EBADMSG;
		goto out;
	}
	r = take_params(root, ret, reason);
out:
	json_decref(root);
	if (r < 0)
		service_id[0] = '\0';
	return r;
}
