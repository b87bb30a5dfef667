/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * What sensorgwd would make of bytes on one of its ports, without opening the port, the spool
 * or a connection: for `sensorgwctl decode`. The same decoder, node table, [map] sections,
 * record payload and uplink drivers as the daemon, so what it shows is what would be sent.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw/config.h"

struct gw_preview;

/* port names a [port] section of cfg (borrowed, outlives the object). -ENOENT (why set) when
 * there is none, -ENOMEM. */
int gw_preview_new(const struct gw_config *cfg, const char *port, struct gw_preview **ret,
		   char *why, size_t why_size);
struct gw_preview *gw_preview_free(struct gw_preview *p);
/* Whether the port's framing is text (frames are lines) rather than binary. */
bool gw_preview_is_text(const struct gw_preview *p);

/*
 * Feeds len bytes as the port would receive them: a text line (a missing line end is added),
 * or binary frames (COBS with their 00 delimiters; a missing final 00 is added). Appends one
 * JSON object per frame found to out (docs/status.md "sensorgwctl decode"): the frame, its
 * node and device, the record as stored, and per uplink the topic and payload it would
 * publish, or why it would not. Nodes persist across calls, so a hello before telemetry names
 * the node as it would in the daemon. Returns the number of frames, or -ENOMEM.
 */
int gw_preview_feed(struct gw_preview *p, const uint8_t *buf, size_t len, json_t *out);
