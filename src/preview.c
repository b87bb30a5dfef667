/* SPDX-License-Identifier: MIT */
/*
 * sensorgwctl decode's engine (gw/preview.h): the daemon's frame-to-record step (gw/record.h,
 * as gateway.c calls it), run on bytes from the command line, then every uplink driver's
 * preview.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gw/frame.h"
#include "gw/jsonw.h"
#include "gw/node.h"
#include "gw/payload.h"
#include "gw/preview.h"
#include "gw/record.h"
#include "gw/spool.h"
#include "gw/uplink.h"
#include "gw/util.h"

struct gw_preview {
	const struct gw_config *cfg;
	const struct gw_config_port *port;
	struct gw_decoder *decoder;
	struct gw_nodes *nodes;
	struct gw_jsonw *params_w, *record_w; /* the record step's writers, as the gateway's */
	uint64_t next_seq;
	json_t *out; /* during a feed */
	int frames;
};

int gw_preview_new(const struct gw_config *cfg, const char *port, struct gw_preview **ret,
		   char *why, size_t why_size)
{
	struct gw_preview *p;
	int r;

	for (size_t i = 0; i < cfg->n_ports; i++)
		if (strcmp(cfg->ports[i].name, port) == 0) {
			p = gw_new0(struct gw_preview, 1);
			p->cfg = cfg;
			p->port = &cfg->ports[i];
			p->next_seq = 1;
			p->params_w = gw_jsonw_new();
			p->record_w = gw_jsonw_new();
			r = gw_decoder_new(p->port->framing, &p->decoder);
			if (r >= 0)
				r = gw_nodes_new(cfg->device_name, cfg->max_nodes, &p->nodes);
			if (r < 0) {
				gw_why_set(why, why_size, "%s", strerror(-r));
				gw_preview_free(p);
				return r;
			}
			*ret = p;
			return 0;
		}
	gw_why_set(why, why_size, "no [port %s] in %s", port, cfg->path);
	return -ENOENT;
}

struct gw_preview *gw_preview_free(struct gw_preview *p)
{
	if (!p)
		return NULL;
	gw_decoder_free(p->decoder);
	gw_nodes_free(p->nodes);
	gw_jsonw_free(p->params_w);
	gw_jsonw_free(p->record_w);
	free(p);
	return NULL;
}

bool gw_preview_is_text(const struct gw_preview *p)
{
	return p->port->framing == GW_FRAMING_TEXT;
}

/* Every uplink's topic and payload for the packed record. */
static json_t *uplinks_json(const struct gw_preview *p, const struct gw_spool_record *rec)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < p->cfg->n_uplinks; i++) {
		const struct gw_config_uplink *u = &p->cfg->uplinks[i];
		const struct gw_uplink_ops *ops = gw_uplink_driver(u->type);
		char topic[512], why[256] = "";
		char *payload = NULL;
		size_t len = 0;
		json_t *o = json_pack("{s:s,s:s}", "name", u->name, "type",
				      gw_uplink_type_to_string(u->type));

		if (!ops || !ops->preview)
			(void)json_object_set_new(o, "error", json_string("this driver cannot "
									   "show its messages"));
		else if (ops->preview(u, rec, topic, sizeof(topic), &payload, &len, why,
				      sizeof(why)) < 0)
			(void)json_object_set_new(o, "error", json_string(why));
		else {
			(void)json_object_set_new(o, "topic", json_string(topic));
			(void)json_object_set_new(o, "payload", json_stringn(payload, len));
			/* a cloud's thing model left these values out */
			if (why[0])
				(void)json_object_set_new(o, "left_out", json_string(why));
		}
		free(payload);
		(void)json_array_append_new(arr, o);
	}
	return arr;
}

/* The record the daemon would store for f from node: the same step as gateway.c's (gw/record.h). */
static void add_record(struct gw_preview *p, struct gw_node *node, const struct gw_frame *f,
		       json_t *o)
{
	struct gw_spool_record srec = {
		.seq = p->next_seq,
		.ts_ms = gw_now_wall_ms(),
		.type = (uint8_t)f->type,
	};
	struct gw_payload_view v;
	int r;

	r = gw_record_build(p->cfg, p->port->name, node, f, srec.seq, srec.ts_ms, p->params_w,
			    p->record_w);
	if (r == -EDOM) {
		(void)json_object_set_new(o, "error", json_string("a value cannot be converted as "
								  "its [map] section says: the "
								  "daemon skips this frame"));
		return;
	}
	if (r < 0) {
		(void)json_object_set_new(o, "error", json_string(strerror(-r)));
		return;
	}
	srec.payload = (const uint8_t *)gw_jsonw_data(p->record_w, &srec.len);
	r = gw_payload_unpack(srec.payload, srec.len, srec.type, &v);
	if (r < 0) {
		(void)json_object_set_new(o, "error", json_string(strerror(-r)));
		return;
	}
	p->next_seq++;
	/* as text: reparsing would print reals with jansson's digits, not the daemon's */
	(void)json_object_set_new(o, "record", json_stringn(v.json, v.json_len));
	(void)json_object_set_new(o, "uplinks", uplinks_json(p, &srec));
}

static void on_frame(const struct gw_frame *f, enum gw_frame_error err, void *ud)
{
	struct gw_preview *p = ud;
	struct gw_node *node;
	bool created;
	json_t *o;
	int r;

	p->frames++;
	if (err != GW_FRAME_OK) {
		o = json_pack("{s:b,s:s,s:s}", "ok", 0, "error", gw_frame_error_to_string(err),
			      "effect", "counted as a bad frame and skipped");
		/* what was wrong, when the parser could tell (a text line) */
		if (f && f->why[0])
			(void)json_object_set_new(o, "reason", json_string(f->why));
		(void)json_array_append_new(p->out, o);
		return;
	}
	o = json_pack("{s:b,s:s}", "ok", 1, "type", gw_frame_type_to_string(f->type));
	if (f->has_addr)
		(void)json_object_set_new(o, "addr", json_integer(f->addr));
	if (f->has_seq)
		(void)json_object_set_new(o, "seq", json_integer(f->seq));
	(void)json_array_append_new(p->out, o);
	r = gw_nodes_get(p->nodes, p->port->name, f->has_addr, f->addr, &node, &created);
	if (r < 0) {
		(void)json_object_set_new(o, "error", json_string(r == -ENOSPC ?
								  "node table full" :
								  "the node cannot be named"));
		return;
	}
	if (f->type == GW_FRAME_HELLO && gw_node_hello(p->nodes, node, f) < 0) {
		(void)json_object_set_new(o, "error", json_string("device name template cannot be "
								  "expanded"));
		return;
	}
	(void)json_object_set_new(o, "node", json_string(node->id));
	(void)json_object_set_new(o, "device", json_string(node->device));
	switch (f->type) {
	case GW_FRAME_TELEMETRY:
	case GW_FRAME_EVENT:
		add_record(p, node, f, o);
		return;
	case GW_FRAME_HELLO:
		(void)json_object_set_new(o, "effect", json_string("names the node; no record"));
		return;
	case GW_FRAME_COMMAND_REPLY:
		(void)json_object_set_new(o, "effect", json_string("answers a pending cloud "
								   "command; no record"));
		return;
	case GW_FRAME_ACK:
	case GW_FRAME_COMMAND:
		(void)json_object_set_new(o, "effect", json_string("ignored from a node"));
		return;
	}
}

int gw_preview_feed(struct gw_preview *p, const uint8_t *buf, size_t len, json_t *out)
{
	bool text = p->port->framing == GW_FRAMING_TEXT;
	uint8_t end = text ? '\n' : 0;

	p->out = out;
	p->frames = 0;
	gw_decoder_feed(p->decoder, buf, len, on_frame, p);
	if (len == 0 || buf[len - 1] != end)
		gw_decoder_feed(p->decoder, &end, 1, on_frame, p);
	p->out = NULL;
	return p->frames;
}
