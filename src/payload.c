/* SPDX-License-Identifier: MIT */
/* Topic and JSON payload for a record, as every MQTT uplink sends it (docs/payload.md). */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/jsonw.h"
#include "gw/payload.h"
#include "gw/util.h"

const char *gw_payload_kind(enum gw_frame_type type)
{
	return type == GW_FRAME_EVENT ? "event" : "telemetry";
}

struct topic_ctx {
	const struct gw_payload_view *v;
	const char *uplink;
};

static const char *topic_lookup(const char *name, size_t len, void *user_data)
{
	struct topic_ctx *c = user_data;

#define IS(s) (len == sizeof(s) - 1 && memcmp(name, s, len) == 0)
	if (IS("device"))
		return c->v->device;
	if (IS("uid"))
		return c->v->node;
	if (IS("port"))
		return c->v->port;
	if (IS("addr"))
		return c->v->addr;
	if (IS("kind"))
		return gw_payload_kind(c->v->type);
	if (IS("uplink"))
		return c->uplink;
#undef IS
	return NULL;
}

int gw_payload_topic(const char *tmpl, const struct gw_payload_view *v, const char *uplink,
		     char *buf, size_t size)
{
	struct topic_ctx c = { .v = v, .uplink = uplink };

	return gw_template_expand(tmpl, topic_lookup, &c, buf, size);
}

int gw_payload_pack(const struct gw_record *r, const char *json, size_t json_len, uint8_t **ret,
		    size_t *ret_len)
{
	const struct gw_node *n = r->node;
	char addr[8] = "";
	size_t ld = strlen(n->device) + 1, ln = strlen(n->id) + 1, lp = strlen(n->port) + 1, la;
	uint8_t *b, *p;

	if (n->has_addr)
		snprintf(addr, sizeof(addr), "%u", n->addr);
	la = strlen(addr) + 1;
	p = b = gw_malloc0(ld + ln + lp + la + json_len);
	memcpy(p, n->device, ld);
	p += ld;
	memcpy(p, n->id, ln);
	p += ln;
	memcpy(p, n->port, lp);
	p += lp;
	memcpy(p, addr, la);
	p += la;
	memcpy(p, json, json_len);
	*ret = b;
	*ret_len = ld + ln + lp + la + json_len;
	return 0;
}

int gw_payload_unpack(const uint8_t *buf, size_t len, uint8_t type, struct gw_payload_view *v)
{
	const char *s[4];
	size_t off = 0;

	if (type != GW_FRAME_TELEMETRY && type != GW_FRAME_EVENT)
		return -EBADMSG;
	for (size_t i = 0; i < 4; i++) {
		const uint8_t *nul = memchr(buf + off, '\0', len - off);

		if (!nul)
			return -EBADMSG;
		s[i] = (const char *)buf + off;
		off = (size_t)(nul - buf) + 1;
	}
	v->device = s[0];
	v->node = s[1];
	v->port = s[2];
	v->addr = s[3];
	v->type = type;
	v->json = (const char *)buf + off;
	v->json_len = len - off;
	return 0;
}

/* Key order is fixed so payloads are easy to read (docs/payload.md). */
static void write_json(const struct gw_record *r, const char *params, size_t params_len,
		       struct gw_jsonw *w)
{
	const struct gw_node *n = r->node;

	gw_jsonw_object_begin(w);
	GW_JSONW_KEY(w, "device");
	gw_jsonw_string(w, n->device);
	GW_JSONW_KEY(w, "node");
	gw_jsonw_string(w, n->id);
	GW_JSONW_KEY(w, "port");
	gw_jsonw_string(w, n->port);
	if (n->has_addr) {
		GW_JSONW_KEY(w, "addr");
		gw_jsonw_uint(w, n->addr);
	}
	GW_JSONW_KEY(w, "seq");
	/* as jansson printed it: a json_int_t, so the same digits for any seq below 2^63 */
	gw_jsonw_int(w, (int64_t)r->seq);
	if (r->has_node_seq) {
		GW_JSONW_KEY(w, "node_seq");
		gw_jsonw_uint(w, r->node_seq);
	}
	if (n->has_boot) {
		GW_JSONW_KEY(w, "boot");
		gw_jsonw_uint(w, n->boot_counter);
	}
	/* the firmware version from the hello: a cloud uplink reports it as base info */
	if (n->fw_version[0]) {
		GW_JSONW_KEY(w, "fw");
		gw_jsonw_string(w, n->fw_version);
	}
	GW_JSONW_KEY(w, "ts");
	gw_jsonw_int(w, r->ts_ms);
	if (r->type == GW_FRAME_EVENT) {
		GW_JSONW_KEY(w, "event");
		gw_jsonw_string(w, r->event);
	}
	/* the node's own clientToken / id, for tracing (docs/protocol.md 2.4.1) */
	if (r->trace[0]) {
		GW_JSONW_KEY(w, "trace");
		gw_jsonw_string(w, r->trace);
	}
	GW_JSONW_KEY(w, "params");
	gw_jsonw_json(w, params, params_len);
	gw_jsonw_object_end(w);
}

int gw_payload_build(const struct gw_record *r, const char *params, size_t params_len,
		     struct gw_jsonw *w)
{
	const struct gw_node *n = r->node;
	char addr[GW_JSONW_INT_MAX];
	size_t la = 0;

	if (n->has_addr)
		la = gw_jsonw_format_uint(addr, n->addr);
	addr[la] = '\0';
	gw_jsonw_raw(w, n->device, strlen(n->device) + 1);
	gw_jsonw_raw(w, n->id, strlen(n->id) + 1);
	gw_jsonw_raw(w, n->port, strlen(n->port) + 1);
	gw_jsonw_raw(w, addr, la + 1);
	write_json(r, params, params_len, w);
	return gw_jsonw_error(w);
}

int gw_payload_json(const struct gw_record *r, char **ret, size_t *ret_len)
{
	struct gw_jsonw *w;
	char *params = NULL, *s;
	const char *data;
	size_t len;
	int r_;

	/* 15 significant digits, as gw_jsonw_real() prints them */
	if (r->params) {
		params = json_dumps(r->params, JSON_COMPACT | JSON_REAL_PRECISION(15));
		if (!params)
			return -ENOMEM;
	}
	w = gw_jsonw_new();
	write_json(r, params ? params : "{}", params ? strlen(params) : 2, w);
	free(params);
	r_ = gw_jsonw_error(w);
	if (r_ < 0)
		goto out;
	data = gw_jsonw_data(w, &len);
	s = gw_malloc0(len + 1);
	memcpy(s, data, len);
	*ret = s;
	if (ret_len)
		*ret_len = len;
out:
	gw_jsonw_free(w);
	return r_;
}
