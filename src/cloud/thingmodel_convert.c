/* SPDX-License-Identifier: MIT */
/*
 * Values converted to what a thing model says their property or event output is, or refused
 * with a reason; see include/gw/thingmodel.h (the model itself is read by thingmodel.c). Pure:
 * no I/O, no logging.
 */

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw/json.h"
#include "gw/thingmodel.h"
#include "gw/util.h"
#include "thingmodel-private.h"

/* ------------------------------------------------------------------------------------------ */
/* Conversion. Internally: 0 with *ret set, a refusal (> 0), or -ENOMEM. */

/* A number from a number, a numeric string or (allow_bool) a boolean. */
static int read_number(json_t *in, bool allow_bool, double *ret)
{
	switch (json_typeof(in)) {
	case JSON_INTEGER:
		*ret = (double)json_integer_value(in);
		return 0;
	case JSON_REAL:
		*ret = json_real_value(in);
		return isfinite(*ret) ? 0 : GW_THINGMODEL_WRONG_TYPE;
	case JSON_TRUE:
	case JSON_FALSE:
		if (!allow_bool)
			return GW_THINGMODEL_WRONG_TYPE;
		*ret = json_is_true(in) ? 1 : 0;
		return 0;
	case JSON_STRING:
		return gw_thingmodel_parse_number(json_string_value(in), ret) < 0 ? GW_THINGMODEL_WRONG_TYPE : 0;
	case JSON_OBJECT:
	case JSON_ARRAY:
	case JSON_NULL:
	default:
		return GW_THINGMODEL_WRONG_TYPE;
	}
}

/* 10^d for the fewest decimals d (up to 9) that write x exactly enough; 0: none do. */
static double decimal_scale(double x)
{
	double s = 1;

	for (int d = 0; d <= 9; d++) {
		double y = fabs(x) * s;

		if (fabs(y - round(y)) <= 1e-9 * fmax(1, y))
			return s;
		s *= 10;
	}
	return 0;
}

/* v rounded to p's step counted from min (or 0), with only the decimals the step has. */
static double round_to_step(const param_t *p, double v)
{
	double base = p->has_min ? p->min : 0, q, s, sb;

	if (p->step <= 0)
		return v;
	q = base + round((v - base) / p->step) * p->step;
	s = decimal_scale(p->step);
	sb = decimal_scale(base);
	if (s > 0 && sb > 0) {
		s = fmax(s, sb);
		q = round(q * s) / s;
	}
	return q;
}

static bool in_range(const param_t *p, double x)
{
	return (!p->has_min || x >= p->min) && (!p->has_max || x <= p->max);
}

static int new_value(json_t *v, json_t **ret)
{
	if (!v)
		return -ENOMEM;
	*ret = v;
	return 0;
}

/* The listed value with this key, or with this description (text_ok), or NULL. */
static const struct gw_thingmodel_enum *find_enum(const param_t *p, const char *key, bool text_ok)
{
	for (size_t i = 0; i < p->n_enums; i++)
		if (strcmp(p->enums[i].key, key) == 0)
			return &p->enums[i];
	for (size_t i = 0; text_ok && i < p->n_enums; i++)
		if (p->enums[i].text[0] && strcmp(p->enums[i].text, key) == 0)
			return &p->enums[i];
	return NULL;
}

static int convert_bool(json_t *in, json_t **ret)
{
	double x;

	if (json_is_string(in)) {
		const char *s = json_string_value(in);

		if (strcasecmp(s, "true") == 0)
			return new_value(json_integer(1), ret);
		if (strcasecmp(s, "false") == 0)
			return new_value(json_integer(0), ret);
	}
	if (read_number(in, true, &x) != 0)
		return GW_THINGMODEL_WRONG_TYPE;
	if (x != 0 && x != 1)
		return GW_THINGMODEL_NOT_IN_ENUM;
	return new_value(json_integer(x == 1), ret);
}

static int convert_enum(const param_t *p, json_t *in, json_t **ret)
{
	const struct gw_thingmodel_enum *e;
	double x;

	if (json_is_string(in) && (e = find_enum(p, json_string_value(in), true)))
		return new_value(json_integer(e->value), ret);
	if (read_number(in, false, &x) != 0)
		return json_is_string(in) ? GW_THINGMODEL_NOT_IN_ENUM : GW_THINGMODEL_WRONG_TYPE;
	for (size_t i = 0; i < p->n_enums; i++)
		if ((double)p->enums[i].value == x)
			return new_value(json_integer(p->enums[i].value), ret);
	return GW_THINGMODEL_NOT_IN_ENUM;
}

static int convert_stringenum(const param_t *p, json_t *in, json_t **ret)
{
	const struct gw_thingmodel_enum *e;
	char num[32];
	const char *s;

	if (json_is_string(in)) {
		s = json_string_value(in);
	} else if (json_is_integer(in)) {
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(in));
		s = num;
	} else {
		return GW_THINGMODEL_WRONG_TYPE;
	}
	e = find_enum(p, s, true);
	if (!e)
		return GW_THINGMODEL_NOT_IN_ENUM;
	return new_value(json_string(e->key), ret);
}

static int convert_string(const param_t *p, json_t *in, json_t **ret)
{
	char num[40];
	const char *s;
	size_t n;

	if (json_is_string(in)) {
		s = json_string_value(in);
		n = json_string_length(in);
	} else if (json_is_integer(in)) {
		n = (size_t)snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(in));
		s = num;
	} else if (json_is_real(in) && isfinite(json_real_value(in))) {
		n = (size_t)snprintf(num, sizeof(num), "%.15g", json_real_value(in));
		s = num;
	} else {
		return GW_THINGMODEL_WRONG_TYPE;
	}
	if (p->max_length && n > p->max_length)
		return GW_THINGMODEL_TOO_LONG;
	if (n < p->min_length)
		return GW_THINGMODEL_OUT_OF_RANGE;
	return new_value(json_stringn(s, n), ret);
}

static int convert_date(const struct gw_thingmodel *m, json_t *in, json_t **ret)
{
	int64_t v;
	char num[32];

	if (json_is_integer(in)) {
		v = json_integer_value(in);
	} else if (json_is_real(in)) {
		double d = json_real_value(in);

		if (!isfinite(d) || d != floor(d))
			return GW_THINGMODEL_WRONG_TYPE;
		if (d < 0)
			return GW_THINGMODEL_OUT_OF_RANGE;
		if (d >= 9007199254740992.0) /* 2^53: beyond it a real is no exact integer */
			return GW_THINGMODEL_OUT_OF_RANGE;
		v = (int64_t)d;
	} else if (json_is_string(in)) {
		if (gw_thingmodel_parse_integer(json_string_value(in), &v) < 0)
			return GW_THINGMODEL_WRONG_TYPE;
	} else {
		return GW_THINGMODEL_WRONG_TYPE;
	}
	if (v < 0)
		return GW_THINGMODEL_OUT_OF_RANGE;
	if (m->format == GW_THINGMODEL_TENCENT)
		return new_value(json_integer(v), ret);
	snprintf(num, sizeof(num), "%lld", (long long)v);
	return new_value(json_string(num), ret);
}

static int convert(const struct gw_thingmodel *m, const param_t *p, json_t *in, json_t **ret);

static int convert_struct(const struct gw_thingmodel *m, const param_t *p, json_t *in, json_t **ret)
{
	json_t *out, *v;
	const char *k;

	if (!json_is_object(in))
		return GW_THINGMODEL_WRONG_TYPE;
	out = json_object();
	if (!out)
		return -ENOMEM;
	json_object_foreach(in, k, v) {
		const param_t *mp = NULL;
		json_t *cv;
		int r;

		for (size_t i = 0; i < p->n_members && !mp; i++)
			if (strcmp(p->members[i].identifier, k) == 0)
				mp = &p->members[i];
		r = mp ? convert(m, mp, v, &cv) : GW_THINGMODEL_UNKNOWN_IDENTIFIER;
		if (r == 0 && json_object_set_new(out, k, cv) < 0)
			r = -ENOMEM;
		if (r != 0) {
			json_decref(out);
			return r;
		}
	}
	*ret = out;
	return 0;
}

static int convert_array(const struct gw_thingmodel *m, const param_t *p, json_t *in, json_t **ret)
{
	json_t *out;

	if (!json_is_array(in))
		return GW_THINGMODEL_WRONG_TYPE;
	if (p->max_items && json_array_size(in) > p->max_items)
		return GW_THINGMODEL_TOO_LONG;
	out = json_array();
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < json_array_size(in); i++) {
		json_t *v = json_array_get(in, i), *cv;
		int r = 0;

		if (p->item)
			r = convert(m, p->item, v, &cv);
		else
			cv = json_incref(v);
		if (r == 0 && json_array_append_new(out, cv) < 0)
			r = -ENOMEM;
		if (r != 0) {
			json_decref(out);
			return r;
		}
	}
	*ret = out;
	return 0;
}

static int convert(const struct gw_thingmodel *m, const param_t *p, json_t *in, json_t **ret)
{
	double x;
	int r;

	switch (p->type) {
	case GW_THINGMODEL_INT:
		r = read_number(in, true, &x);
		if (r != 0)
			return r;
		x = round(round_to_step(p, x));
		if (!in_range(p, x) || x < INT32_MIN || x > INT32_MAX)
			return GW_THINGMODEL_OUT_OF_RANGE;
		return new_value(json_integer((json_int_t)x), ret);
	case GW_THINGMODEL_FLOAT:
	case GW_THINGMODEL_DOUBLE:
		r = read_number(in, true, &x);
		if (r != 0)
			return r;
		x = round_to_step(p, x);
		if (!in_range(p, x))
			return GW_THINGMODEL_OUT_OF_RANGE;
		return new_value(json_real(x), ret);
	case GW_THINGMODEL_BOOL:
		return convert_bool(in, ret);
	case GW_THINGMODEL_ENUM:
		return convert_enum(p, in, ret);
	case GW_THINGMODEL_STRINGENUM:
		return convert_stringenum(p, in, ret);
	case GW_THINGMODEL_STRING:
		return convert_string(p, in, ret);
	case GW_THINGMODEL_DATE:
		return convert_date(m, in, ret);
	case GW_THINGMODEL_STRUCT:
		return convert_struct(m, p, in, ret);
	case GW_THINGMODEL_ARRAY:
		return convert_array(m, p, in, ret);
	}
	return GW_THINGMODEL_WRONG_TYPE;
}

/* The public form of an internal result. */
static int result(int r, enum gw_thingmodel_refusal *reason)
{
	if (r > 0) {
		if (reason)
			*reason = (enum gw_thingmodel_refusal)r;
		return -EDOM;
	}
	if (r == 0 && reason)
		*reason = GW_THINGMODEL_OK;
	return r;
}

int gw_thingmodel_convert_param(const struct gw_thingmodel *m, const struct gw_thingmodel_param *p,
				json_t *in, json_t **ret, enum gw_thingmodel_refusal *reason)
{
	if (!m || !p || !in)
		return result(GW_THINGMODEL_WRONG_TYPE, reason);
	return result(convert(m, p, in, ret), reason);
}

int gw_thingmodel_convert(const struct gw_thingmodel *m, const char *identifier, json_t *in,
			  json_t **ret, enum gw_thingmodel_refusal *reason)
{
	const param_t *p = gw_thingmodel_property(m, identifier);

	if (!p)
		return result(GW_THINGMODEL_UNKNOWN_IDENTIFIER, reason);
	return gw_thingmodel_convert_param(m, p, in, ret, reason);
}

int gw_thingmodel_convert_value(const struct gw_thingmodel *m, const char *identifier,
				const struct gw_value *v, json_t **ret,
				enum gw_thingmodel_refusal *reason)
{
	const param_t *p = gw_thingmodel_property(m, identifier);
	json_t *in = NULL;
	int r;

	if (!p)
		return result(GW_THINGMODEL_UNKNOWN_IDENTIFIER, reason);
	switch (v->type) {
	case GW_VALUE_BOOL:
		in = json_boolean(v->b);
		break;
	case GW_VALUE_INT:
		in = json_integer(v->i);
		break;
	case GW_VALUE_DOUBLE:
		if (!isfinite(v->d))
			return result(GW_THINGMODEL_WRONG_TYPE, reason);
		in = json_real(v->d);
		break;
	case GW_VALUE_STRING:
		/* NULL here is text that is not UTF-8 (or, rarely, no memory): refused */
		in = json_string(v->s);
		if (!in)
			return result(GW_THINGMODEL_WRONG_TYPE, reason);
		break;
	}
	if (!in)
		return -ENOMEM;
	r = gw_thingmodel_convert_param(m, p, in, ret, reason);
	json_decref(in);
	return r;
}

int gw_thingmodel_convert_params(const struct gw_thingmodel *m, const char *event, json_t *params,
				 json_t **ret, gw_thingmodel_refused_fn fn, void *user_data)
{
	const struct gw_thingmodel_event *e = NULL;
	json_t *out, *v;
	const char *k;

	if (!m || !json_is_object(params))
		return -EINVAL;
	if (event) {
		e = gw_thingmodel_event(m, event);
		if (!e)
			return -ENOENT;
	}
	out = json_object();
	if (!out)
		return -ENOMEM;
	json_object_foreach(params, k, v) {
		const param_t *p = e ? gw_thingmodel_event_output(e, k) :
				       gw_thingmodel_property(m, k);
		json_t *cv = NULL;
		int r = p ? convert(m, p, v, &cv) : GW_THINGMODEL_UNKNOWN_IDENTIFIER;

		if (r == 0 && json_object_set_new(out, k, cv) < 0)
			r = -ENOMEM;
		if (r < 0) {
			json_decref(out);
			return r;
		}
		if (r > 0 && fn)
			fn(k, v, (enum gw_thingmodel_refusal)r, user_data);
	}
	*ret = out;
	return 0;
}
