/* SPDX-License-Identifier: MIT */
#pragma once
/* Between the two parts of the thing-model module (thingmodel.c reads a model,
 * thingmodel_convert.c converts values to it); not for other callers. */

#include <stdint.h>

#include "gw/thingmodel.h"

typedef struct gw_thingmodel_param param_t;

/* The whole of s as a finite number (no leading space): 0 or -EINVAL. */
int gw_thingmodel_parse_number(const char *s, double *ret);
/* The whole of s as a decimal integer (no leading space or '+'): 0 or -EINVAL. */
int gw_thingmodel_parse_integer(const char *s, int64_t *ret);
