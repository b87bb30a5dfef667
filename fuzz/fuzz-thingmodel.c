/* SPDX-License-Identifier: MIT */
/*
 * Thing-model files (docs/protocols/aliyun.md §9, docs/protocols/tencent.md §7): the TSL or data
 * template parser with its error positions, then, for a model that parses, every property and
 * event output fed a few values of each JSON type through the conversion.
 */
#include <stdlib.h>

#include "fuzz.h"
#include "gw/thingmodel.h"

static const char *const samples[] = {
	"0",
	"1",
	"-1",
	"23.94",
	"1e300",
	"\"30\"",
	"\"abc\"",
	"\"自动\"",
	"true",
	"null",
	"\"1700000000000\"",
	"{\"a\":1}",
	"[1,\"2\"]",
};

static void feed(const struct gw_thingmodel *m, const struct gw_thingmodel_param *p, json_t *v)
{
	enum gw_thingmodel_refusal reason;
	json_t *out = NULL;

	if (gw_thingmodel_convert_param(m, p, v, &out, &reason) == 0)
		json_decref(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *values[sizeof(samples) / sizeof(samples[0])], *params, *out;
	struct gw_thingmodel_error err;
	struct gw_thingmodel *m = NULL;
	size_t n = 0;

	if (gw_thingmodel_parse((const char *)data, size, &m, &err) < 0)
		return 0;
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		json_t *v = json_loads(samples[i], JSON_DECODE_ANY, NULL);

		if (v)
			values[n++] = v;
	}
	params = json_object();
	for (size_t i = 0; i < m->n_properties; i++) {
		for (size_t k = 0; k < n; k++)
			feed(m, &m->properties[i], values[k]);
		if (params && n)
			json_object_set(params, m->properties[i].identifier, values[i % n]);
	}
	for (size_t i = 0; i < m->n_events; i++)
		for (size_t j = 0; j < m->events[i].n_outputs; j++)
			for (size_t k = 0; k < n; k++)
				feed(m, &m->events[i].outputs[j], values[k]);
	if (params && gw_thingmodel_convert_params(m, NULL, params, &out, NULL, NULL) == 0)
		json_decref(out);
	if (params && m->n_events &&
	    gw_thingmodel_convert_params(m, m->events[0].identifier, params, &out, NULL, NULL) == 0)
		json_decref(out);
	json_decref(params);
	for (size_t k = 0; k < n; k++)
		json_decref(values[k]);
	gw_thingmodel_free(m);
	return 0;
}
