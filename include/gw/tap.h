/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The event lines of `sensorgwctl tail` (the control socket's tail stream, gw/control.h;
 * docs/tail.md): one compact JSON object per event, written into a reused gw_jsonw. Pure.
 *
 *   {"event":"frame","time_ms":T,"port":P,"node":ID|null,"type":"telemetry","addr":A,"seq":S,
 *    "fields":{...}}       a decoded frame, its values as decoded (before any [map]);
 *                          hello adds "uid","firmware","boot"; event adds "name"; command
 *                          replies add "cmd_id","code"
 *   {"event":"bad","time_ms":T,"port":P,"node":ID|null,"reason":R,"why":W}
 *                          a refused frame: R is the counter it went to (crc, oversize, ...),
 *                          W the decoder's detail ("" when it has none)
 *   {"event":"raw","time_ms":T,"port":P,"hex":"..."}
 *                          bytes as read from the device, before decoding
 *
 * Each function empties w first. A real that is not finite is written as the string "nan",
 * "inf" or "-inf". Returns gw_jsonw_error(w): 0, or -EINVAL for a string that is not UTF-8
 * (the caller then has no line to send).
 */

#include <stddef.h>
#include <stdint.h>

#include "gw/frame.h"
#include "gw/jsonw.h"

int gw_tap_frame(struct gw_jsonw *w, uint64_t time_ms, const char *port, const char *node,
		 const struct gw_frame *f);
int gw_tap_bad(struct gw_jsonw *w, uint64_t time_ms, const char *port, const char *node,
	       enum gw_frame_error err, const char *why);
int gw_tap_raw(struct gw_jsonw *w, uint64_t time_ms, const char *port, const uint8_t *buf,
	       size_t len);
