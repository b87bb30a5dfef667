/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The record step of the data path (serial → frame → record → spool → uplink): a decoded
 * telemetry or event frame becomes the bytes the spool stores for it, the packed record of
 * gw/payload.h (the node's identity, then the JSON payload of docs/payload.md with the [map]
 * sections applied). sensorgwd (gateway.c) and sensorgwctl decode (preview.c) both build their
 * records here, so what decode shows is what the daemon stores and its uplinks send.
 *
 * Pure: no I/O, no logging, no clock. The caller gives the record's seq and time, and two
 * writers it keeps from frame to frame (no allocation once they have grown).
 */

#include <stdint.h>

#include "gw/config.h"
#include "gw/frame.h"
#include "gw/node.h"

struct gw_jsonw;

/*
 * Builds the record for frame f (GW_FRAME_TELEMETRY or GW_FRAME_EVENT) from node, received on
 * the port named port (cfg's maps for it apply; cfg may be NULL), stamped ts_ms, to be stored
 * as seq with the record type f->type. Both writers are reset first; params is scratch, and on
 * success out holds the packed record (gw_jsonw_data). Returns 0; -EDOM when a value cannot be
 * converted as its [map] section says (the daemon skips such a frame and counts it);
 * -EINVAL when f is of another type or a name is not valid UTF-8.
 */
int gw_record_build(const struct gw_config *cfg, const char *port, const struct gw_node *node,
		    const struct gw_frame *f, uint64_t seq, int64_t ts_ms, struct gw_jsonw *params,
		    struct gw_jsonw *out);
