/* SPDX-License-Identifier: MIT */
/*
 * The thing model applied to a record's JSON. See include/gw/cloudmodel.h.
 */

#include <errno.h>

#include "gw/cloudmodel.h"

const char *gw_cloud_model_event_type(const struct gw_thingmodel *m, const char *event,
				      const char *fallback)
{
	enum gw_thingmodel_event_type t;

	if (!m || !event || gw_thingmodel_event_type(m, event, &t) < 0)
		return fallback;
	return gw_thingmodel_event_type_to_string(t);
}

int gw_cloud_model_apply(const struct gw_thingmodel *m, json_t *o, gw_thingmodel_refused_fn fn,
			 void *user_data)
{
	json_t *params = json_object_get(o, "params");
	const char *event = json_string_value(json_object_get(o, "event"));
	size_t before;
	json_t *out;
	int r;

	if (!json_is_object(params))
		return -EBADMSG;
	before = json_object_size(params);
	r = gw_thingmodel_convert_params(m, event, params, &out, fn, user_data);
	if (r < 0)
		return r == -EINVAL ? -EBADMSG : r;
	if (before > 0 && json_object_size(out) == 0) {
		json_decref(out);
		return -ENODATA;
	}
	r = (int)(before - json_object_size(out));
	if (json_object_set_new(o, "params", out) < 0)
		return -ENOMEM;
	return r;
}
