/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A cloud uplink's thing model (thing_model = FILE, gw/thingmodel.h) applied to a stored
 * record's JSON before the cloud's driver builds its message: each value of the record's params
 * (a property post) or of its event's outputs is converted to the model's type, and a value the
 * model would refuse is left out and reported to the caller, who counts and logs it (the cloud
 * core) or shows it (sensorgwctl decode). Pure (library gwproto): no I/O, no logging.
 */

#include <jansson.h>

#include "gw/thingmodel.h"

/*
 * Replaces o's "params" (an object) by its conversion under m, the outputs of o's "event" when
 * it has one, else the properties; fn (may be NULL) is called for each value left out. Returns
 * how many were left out (>= 0); -ENOENT when o's event is not in m; -ENODATA when every value
 * was left out (o unchanged); -EBADMSG when o has no params object; -ENOMEM.
 */
int gw_cloud_model_apply(const struct gw_thingmodel *m, json_t *o, gw_thingmodel_refused_fn fn,
			 void *user_data);

/* The type m gives event ("info", "alert", ...); fallback when m is NULL or has no such event. */
const char *gw_cloud_model_event_type(const struct gw_thingmodel *m, const char *event,
				      const char *fallback);
