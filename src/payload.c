/* SPDX-License-Identifier: MIT */
/* Topic and JSON payload for a record, as every MQTT uplink sends it (docs/payload.md). */

#include <errno.h>
#include <stdio.h>
#include <string.h>

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

int gw_payload_json(const struct gw_record *r, char **ret, size_t *ret_len)
{
	const struct gw_node *n = r->node;
	json_t *o = json_object();
	char *s;
	int r_ = -ENOMEM;

	if (!o)
		return -ENOMEM;
	/* Key order is fixed (jansson keeps insertion order) so payloads are easy to read. */
	if (json_object_set_new(o, "device", json_string(n->device)) < 0 ||
	    json_object_set_new(o, "node", json_string(n->id)) < 0 ||
	    json_object_set_new(o, "port", json_string(n->port)) < 0)
		goto out;
	if (n->has_addr && json_object_set_new(o, "addr", json_integer(n->addr)) < 0)
		goto out;
	if (json_object_set_new(o, "seq", json_integer((json_int_t)r->seq)) < 0)
		goto out;
	if (r->has_node_seq && json_object_set_new(o, "node_seq", json_integer(r->node_seq)) < 0)
		goto out;
	if (n->has_boot && json_object_set_new(o, "boot", json_integer(n->boot_counter)) < 0)
		goto out;
	/* the firmware version from the hello: a cloud uplink reports it as base info */
	if (n->fw_version[0] && json_object_set_new(o, "fw", json_string(n->fw_version)) < 0)
		goto out;
	if (json_object_set_new(o, "ts", json_integer(r->ts_ms)) < 0)
		goto out;
	if (r->type == GW_FRAME_EVENT && json_object_set_new(o, "event", json_string(r->event)) < 0)
		goto out;
	if (json_object_set_new(o, "params", r->params ? json_incref(r->params) : json_object()) < 0)
		goto out;
	/* 15 significant digits: a scaled sensor value like 215 * 0.1 prints as 21.5, not
	 * 21.500000000000004. */
	s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
	if (!s)
		goto out;
	*ret = s;
	if (ret_len)
		*ret_len = strlen(s);
	r_ = 0;
out:
	json_decref(o);
	return r_;
}
