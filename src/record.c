/* SPDX-License-Identifier: MIT */
/* The record step, frame → record (gw/record.h): the mapping, then the payload. */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gw/jsonw.h"
#include "gw/mapping.h"
#include "gw/payload.h"
#include "gw/record.h"

int gw_record_build(const struct gw_config *cfg, const char *port, const struct gw_node *node,
		    const struct gw_frame *f, uint64_t seq, int64_t ts_ms, struct gw_jsonw *params,
		    struct gw_jsonw *out)
{
	struct gw_record rec = {
		.seq = seq,
		.ts_ms = ts_ms,
		.type = f->type,
		.node = node,
		.has_node_seq = f->has_seq,
		.node_seq = f->seq,
	};
	const char *json;
	size_t len;

	if (f->type != GW_FRAME_TELEMETRY && f->type != GW_FRAME_EVENT)
		return -EINVAL;
	if (f->type == GW_FRAME_EVENT)
		snprintf(rec.event, sizeof(rec.event), "%s", f->name);
	/* every frame: a copy, not a snprintf (hundreds of instructions for an empty string) */
	_Static_assert(sizeof(rec.trace) == sizeof(f->trace), "one size");
	memcpy(rec.trace, f->trace, sizeof(rec.trace));
	rec.trace[sizeof(rec.trace) - 1] = '\0';
	gw_jsonw_reset(params);
	if (gw_mapping_write_params(cfg, port, f, params) < 0)
		return -EDOM;
	json = gw_jsonw_data(params, &len);
	gw_jsonw_reset(out);
	return gw_payload_build(&rec, json, len, out);
}
