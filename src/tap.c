/* SPDX-License-Identifier: MIT */
/*
 * The tail stream's event lines (gw/tap.h): pure formatting with the payload writer.
 */

#include <math.h>

#include "gw/tap.h"

static void head(struct gw_jsonw *w, const char *event, uint64_t time_ms, const char *port)
{
	gw_jsonw_reset(w);
	gw_jsonw_object_begin(w);
	GW_JSONW_KEY(w, "event");
	gw_jsonw_string(w, event);
	GW_JSONW_KEY(w, "time_ms");
	gw_jsonw_uint(w, time_ms);
	GW_JSONW_KEY(w, "port");
	gw_jsonw_string(w, port);
}

static void node_key(struct gw_jsonw *w, const char *node)
{
	GW_JSONW_KEY(w, "node");
	if (node)
		gw_jsonw_string(w, node);
	else
		gw_jsonw_json(w, "null", 4);
}

static void value(struct gw_jsonw *w, const struct gw_value *v)
{
	switch (v->type) {
	case GW_VALUE_BOOL:
		gw_jsonw_bool(w, v->b);
		break;
	case GW_VALUE_INT:
		gw_jsonw_int(w, v->i);
		break;
	case GW_VALUE_DOUBLE:
		if (isfinite(v->d))
			gw_jsonw_real(w, v->d);
		else
			gw_jsonw_string(w, isnan(v->d) ? "nan" : v->d > 0 ? "inf" : "-inf");
		break;
	case GW_VALUE_STRING:
		gw_jsonw_string(w, v->s);
		break;
	}
}

int gw_tap_frame(struct gw_jsonw *w, uint64_t time_ms, const char *port, const char *node,
		 const struct gw_frame *f)
{
	char uid[GW_UID_SIZE * 2 + 1];

	head(w, "frame", time_ms, port);
	node_key(w, node);
	GW_JSONW_KEY(w, "type");
	gw_jsonw_string(w, gw_frame_type_to_string(f->type));
	if (f->has_addr) {
		GW_JSONW_KEY(w, "addr");
		gw_jsonw_uint(w, f->addr);
	}
	if (f->has_seq) {
		GW_JSONW_KEY(w, "seq");
		gw_jsonw_uint(w, f->seq);
	}
	switch (f->type) {
	case GW_FRAME_HELLO:
		gw_uid_to_hex(f->uid, uid);
		GW_JSONW_KEY(w, "uid");
		gw_jsonw_string(w, uid);
		GW_JSONW_KEY(w, "firmware");
		gw_jsonw_string(w, f->fw_version);
		GW_JSONW_KEY(w, "boot");
		gw_jsonw_uint(w, f->boot_counter);
		break;
	case GW_FRAME_EVENT:
	case GW_FRAME_COMMAND:
		GW_JSONW_KEY(w, "name");
		gw_jsonw_string(w, f->name);
		break;
	case GW_FRAME_COMMAND_REPLY:
		GW_JSONW_KEY(w, "cmd_id");
		gw_jsonw_uint(w, f->cmd_id);
		GW_JSONW_KEY(w, "code");
		gw_jsonw_uint(w, f->code);
		break;
	case GW_FRAME_ACK:
		GW_JSONW_KEY(w, "acked_seq");
		gw_jsonw_uint(w, f->acked_seq);
		break;
	case GW_FRAME_TELEMETRY:
		break;
	}
	if (f->type != GW_FRAME_HELLO && f->type != GW_FRAME_ACK) {
		GW_JSONW_KEY(w, "fields");
		gw_jsonw_object_begin(w);
		for (size_t i = 0; i < f->n_fields; i++) {
			gw_jsonw_key(w, f->fields[i].key);
			value(w, &f->fields[i].value);
		}
		gw_jsonw_object_end(w);
	}
	gw_jsonw_object_end(w);
	return gw_jsonw_error(w);
}

int gw_tap_bad(struct gw_jsonw *w, uint64_t time_ms, const char *port, const char *node,
	       enum gw_frame_error err, const char *why)
{
	head(w, "bad", time_ms, port);
	node_key(w, node);
	GW_JSONW_KEY(w, "reason");
	gw_jsonw_string(w, gw_frame_error_to_string(err));
	GW_JSONW_KEY(w, "why");
	gw_jsonw_string(w, why ? why : "");
	gw_jsonw_object_end(w);
	return gw_jsonw_error(w);
}

int gw_tap_raw(struct gw_jsonw *w, uint64_t time_ms, const char *port, const uint8_t *buf,
	       size_t len)
{
	static const char digits[] = "0123456789abcdef";
	char chunk[2 * 64];

	head(w, "raw", time_ms, port);
	GW_JSONW_KEY(w, "hex");
	/* the digits need no escaping: written as they are between the quotes */
	gw_jsonw_raw(w, "\"", 1);
	for (size_t i = 0; i < len;) {
		size_t n = 0;

		for (; i < len && n < sizeof(chunk); i++) {
			chunk[n++] = digits[buf[i] >> 4];
			chunk[n++] = digits[buf[i] & 0xf];
		}
		gw_jsonw_raw(w, chunk, n);
	}
	gw_jsonw_raw(w, "\"", 1);
	gw_jsonw_object_end(w);
	return gw_jsonw_error(w);
}
