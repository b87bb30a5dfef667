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
 * cannot be converted (e.g. the string "abc" to int); then *ret is untouched.
 */
int gw_mapping_params(const struct gw_config *c, const char *port, const struct gw_frame *f,
		      json_t **ret);

/* Converts one value by map m (NULL = pass through) to a new JSON value; -EINVAL as above. */
int gw_mapping_value(const struct gw_config_map *m, const struct gw_value *v, json_t **ret);
