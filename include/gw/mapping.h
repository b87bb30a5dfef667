/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Mapping: the fields of a decoded frame become thing-model params (a JSON object).
 * Pure: no I/O. A field with a [map FIELD] section (for this port or for every port) is
 * renamed, scaled (value = raw * scale + offset) and converted; any other field passes
 * through under its own key with its decoded type.
 */

#include <jansson.h>

#include "gw/config.h"
#include "gw/frame.h"

/*
 * Builds the params object for frame f (telemetry, event, command reply) received on the port
 * named port. Returns 0 and a new reference in *ret, -ENOMEM, or -EINVAL when a mapped value
 * cannot be converted (e.g. the string "abc" to int), is not finite, or is a string that is
 * not valid UTF-8; then *ret is untouched. Other frame types give an empty object. c may be
 * NULL (no maps: every field passes through), and so may port (only maps for every port).
 */
int gw_mapping_params(const struct gw_config *c, const char *port, const struct gw_frame *f,
		      json_t **ret);

/*
 * Converts one value by map m (NULL = pass through) to a new JSON value; -EINVAL as above.
 * value = raw * scale + offset for numbers (and for numeric strings when the type is int or
 * float). auto: an INT stays an integer when the map leaves it unchanged, other numbers become
 * reals, bools and strings pass through. int: rounded (llround), refused outside int64. bool:
 * numbers are true when nonzero; strings true/false/on/off/yes/no/1/0 (any case). string: ints
 * as %lld, reals as %.15g, bools as true/false. A bool counts as 0/1 for int and float.
 */
int gw_mapping_value(const struct gw_config_map *m, const struct gw_value *v, json_t **ret);

struct gw_jsonw;
/*
 * The same params object as gw_mapping_params() makes, byte for byte as json_dumps() would
 * print it (docs/payload.md), appended to w as one value: the per-frame path, with no jansson
 * tree. Returns 0, or -EINVAL as above (w then holds a partial object: reset it).
 */
int gw_mapping_write_params(const struct gw_config *c, const char *port, const struct gw_frame *f,
			    struct gw_jsonw *w);
