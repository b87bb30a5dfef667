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
	json_t *params; /* borrowed: mapped params (see mapping.h) */
};

/* "telemetry" or "event": the {kind} placeholder. */
const char *gw_payload_kind(const struct gw_record *r);
/* Expands tmpl ({device} {uid} {port} {addr} {kind} {uplink}) for r into buf. Returns the
 * length, -EINVAL for an unknown placeholder, -ENOBUFS when it does not fit. */
int gw_payload_topic(const char *tmpl, const struct gw_record *r, const char *uplink, char *buf,
		     size_t size);
/* Serialises r as compact JSON. Returns 0 and a malloc'd NUL-terminated string, or -ENOMEM. */
int gw_payload_json(const struct gw_record *r, char **ret, size_t *ret_len);
