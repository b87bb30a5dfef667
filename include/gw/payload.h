/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Records and what an MQTT uplink sends for them: the topic (from the uplink's template) and
 * the JSON payload. Pure: no I/O. The payload format is documented in docs/payload.md.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw/frame.h"
#include "gw/node.h"

/* One decoded reading on its way to the uplinks. */
struct gw_record {
	uint64_t seq;  /* gateway record sequence: strictly increasing */
	int64_t ts_ms; /* wall clock when the frame was decoded */
	enum gw_frame_type type; /* GW_FRAME_TELEMETRY or GW_FRAME_EVENT */
	const struct gw_node *node;
	bool has_node_seq;
	uint16_t node_seq;
	char event[GW_NAME_MAX]; /* event frames */
	char trace[GW_STR_MAX]; /* the node's own message id (gw_frame.trace); "" for none */
	json_t *params; /* borrowed: mapped params (see mapping.h); gw_payload_json only */
};

/* Serialises r as compact JSON. Returns 0 and a malloc'd NUL-terminated string, -ENOMEM, or
 * -EINVAL when a name is not valid UTF-8. */
int gw_payload_json(const struct gw_record *r, char **ret, size_t *ret_len);

/*
 * What the spool stores for a record: the identity an uplink needs for its topic, then the
 * JSON payload, so that an MQTT uplink publishes the stored bytes as they are:
 *   device NUL node NUL port NUL addr NUL json      (addr: decimal, or empty)
 * The record type (telemetry or event) is the spool record's type byte.
 */
struct gw_payload_view {
	const char *device;
	const char *node;
	const char *port;
	const char *addr; /* "" when the node has no bus address */
	enum gw_frame_type type;
	const char *json; /* not NUL-terminated */
	size_t json_len;
};

/* Packs r and its JSON; returns 0 and a malloc'd buffer. */
int gw_payload_pack(const struct gw_record *r, const char *json, size_t json_len, uint8_t **ret,
		    size_t *ret_len);
/*
 * What gw_payload_pack(r, gw_payload_json(r)) gives, appended to w with no allocation once w
 * has grown: the per-frame path. params is r's params object already serialised (see
 * gw_mapping_write_params); r->params is not used. Returns 0 or -EINVAL (a name that is not
 * valid UTF-8).
 */
struct gw_jsonw;
int gw_payload_build(const struct gw_record *r, const char *params, size_t params_len,
		     struct gw_jsonw *w);
/* Parses a stored record; v points into buf. -EBADMSG when it is not a packed payload. */
int gw_payload_unpack(const uint8_t *buf, size_t len, uint8_t type, struct gw_payload_view *v);

/* "telemetry" or "event": the {kind} placeholder. */
const char *gw_payload_kind(enum gw_frame_type type);
/* Expands tmpl ({device} {uid} {port} {addr} {kind} {uplink}) for v into buf. Returns the
 * length, -EINVAL for an unknown placeholder, -ENOBUFS when it does not fit. */
int gw_payload_topic(const char *tmpl, const struct gw_payload_view *v, const char *uplink,
		     char *buf, size_t size);
