/* SPDX-License-Identifier: MIT */
/*
 * Mapping: decoded frame fields become thing-model params. Pure: no I/O, no logging. The map
 * lookup, gw_config_find_map(), lives here rather than in config.c: this protocol library
 * must not depend on the config library, which is built on top of it.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw/jsonw.h"
#include "gw/mapping.h"

/* Port-specific map first, then one for every port. */
const struct gw_config_map *gw_config_find_map(const struct gw_config *c, const char *port,
					       const char *field)
{
	const struct gw_config_map *any = NULL;

	if (!c)
		return NULL;
	for (size_t i = 0; i < c->n_maps; i++) {
		const struct gw_config_map *m = &c->maps[i];

		if (strcmp(m->field, field) != 0)
			continue;
		if (!m->port[0])
			any = m;
		else if (port && strcmp(m->port, port) == 0)
			return m;
	}
	return any;
}

static bool identity(const struct gw_config_map *m)
{
	return m->scale == 1 && m->offset == 0;
}

/* A whole string that strtod() accepts, e.g. "21.5" from a text frame. */
static int parse_number(const char *s, double *ret)
{
	char *end;
	double x;

	errno = 0;
	x = strtod(s, &end);
	if (end == s || *end || errno == ERANGE)
		return -EINVAL;
	*ret = x;
	return 0;
}

/*
 * The numeric value of v after scale and offset. Booleans count as 0 and 1 without scaling:
 * the scale of a sensor reading has no meaning for an on/off state.
 */
static int scaled(const struct gw_config_map *m, const struct gw_value *v, double *ret)
{
	double raw = NAN;
	int r;

	switch (v->type) {
	case GW_VALUE_BOOL:
		*ret = v->b ? 1 : 0;
		return 0;
	case GW_VALUE_INT:
		raw = (double)v->i;
		break;
	case GW_VALUE_DOUBLE:
		raw = v->d;
		break;
	case GW_VALUE_STRING:
		r = parse_number(v->s, &raw);
		if (r < 0)
			return r;
		break;
	}
	/* NaN stays NaN here, so a corrupt type is refused below */
	raw = raw * m->scale + m->offset;
	if (!isfinite(raw))
		return -EINVAL;
	*ret = raw;
	return 0;
}

/*
 * A converted value, before it becomes JSON: both the jansson tree (gw_mapping_value, used by
 * the command and cloud paths) and the payload writer (gw_mapping_write_params, the per-frame
 * path) are made from it, so the two cannot disagree.
 */
enum mapped_type {
	MAPPED_BOOL,
	MAPPED_INT,
	MAPPED_REAL,
	MAPPED_STRING,
};

struct mapped {
	enum mapped_type type;
	bool b;
	long long i;
	double d;
	const char *s; /* MAPPED_STRING: valid UTF-8; points into the value or into buf */
	char buf[64];
};

static int new_real(double d, struct mapped *ret)
{
	if (!isfinite(d))
		return -EINVAL;
	ret->type = MAPPED_REAL;
	ret->d = d;
	return 0;
}

static int new_integer(long long i, struct mapped *ret)
{
	ret->type = MAPPED_INT;
	ret->i = i;
	return 0;
}

static int new_bool(bool b, struct mapped *ret)
{
	ret->type = MAPPED_BOOL;
	ret->b = b;
	return 0;
}

/* A string that is not valid UTF-8 is refused, as jansson's json_string() refuses it. */
static int new_string(const char *s, struct mapped *ret)
{
	if (!gw_jsonw_utf8_valid(s, strlen(s)))
		return -EINVAL;
	ret->type = MAPPED_STRING;
	ret->s = s;
	return 0;
}

static int pass_through(const struct gw_value *v, struct mapped *ret)
{
	switch (v->type) {
	case GW_VALUE_BOOL:
		return new_bool(v->b, ret);
	case GW_VALUE_INT:
		return new_integer(v->i, ret);
	case GW_VALUE_DOUBLE:
		return new_real(v->d, ret);
	case GW_VALUE_STRING:
		return new_string(v->s, ret);
	}
	return -EINVAL;
}

static int to_int(const struct gw_config_map *m, const struct gw_value *v, struct mapped *ret)
{
	double d;
	int r;

	/* exact for the whole int64 range, which a detour through double is not */
	if (v->type == GW_VALUE_INT && identity(m))
		return new_integer(v->i, ret);
	r = scaled(m, v, &d);
	if (r < 0)
		return r;
	/* cppcheck 2.10 misreads the hex float literals 0x1p63 as 0, hence "always false" */
	/* cppcheck-suppress incorrectLogicOperator */
	if (!(d >= -0x1p63 && d < 0x1p63))
		return -EINVAL;
	return new_integer(llround(d), ret);
}

static int to_bool(const struct gw_config_map *m, const struct gw_value *v, struct mapped *ret)
{
	static const char *const truthy[] = { "true", "on", "yes", "1" };
	static const char *const falsy[] = { "false", "off", "no", "0" };
	double d;
	int r;

	if (v->type == GW_VALUE_STRING) {
		for (size_t i = 0; i < sizeof(truthy) / sizeof(truthy[0]); i++) {
			if (strcasecmp(v->s, truthy[i]) == 0)
				return new_bool(true, ret);
			if (strcasecmp(v->s, falsy[i]) == 0)
				return new_bool(false, ret);
		}
		return -EINVAL;
	}
	r = scaled(m, v, &d);
	if (r < 0)
		return r;
	return new_bool(d != 0, ret);
}

static int to_string(const struct gw_config_map *m, const struct gw_value *v, struct mapped *ret)
{
	double d;
	int r;

	switch (v->type) {
	case GW_VALUE_BOOL:
		return new_string(v->b ? "true" : "false", ret);
	case GW_VALUE_STRING:
		return new_string(v->s, ret);
	case GW_VALUE_INT:
		if (identity(m)) {
			snprintf(ret->buf, sizeof(ret->buf), "%lld", (long long)v->i);
			return new_string(ret->buf, ret);
		}
		break;
	case GW_VALUE_DOUBLE:
		break;
	}
	r = scaled(m, v, &d);
	if (r < 0)
		return r;
	snprintf(ret->buf, sizeof(ret->buf), "%.15g", d);
	return new_string(ret->buf, ret);
}

/* Numbers are scaled; an INT stays INT only when the map leaves it unchanged. */
static int to_auto(const struct gw_config_map *m, const struct gw_value *v, struct mapped *ret)
{
	double d;
	int r;

	switch (v->type) {
	case GW_VALUE_BOOL:
	case GW_VALUE_STRING:
		return pass_through(v, ret);
	case GW_VALUE_INT:
		if (identity(m))
			return new_integer(v->i, ret);
		break;
	case GW_VALUE_DOUBLE:
		break;
	}
	r = scaled(m, v, &d);
	if (r < 0)
		return r;
	return new_real(d, ret);
}

/* ret->s may point into v, which must outlive *ret. */
static int convert(const struct gw_config_map *m, const struct gw_value *v, struct mapped *ret)
{
	double d;
	int r;

	if (!m)
		return pass_through(v, ret);
	switch (m->type) {
	case GW_MAP_TYPE_AUTO:
		return to_auto(m, v, ret);
	case GW_MAP_TYPE_INT:
		return to_int(m, v, ret);
	case GW_MAP_TYPE_FLOAT:
		r = scaled(m, v, &d);
		return r < 0 ? r : new_real(d, ret);
	case GW_MAP_TYPE_BOOL:
		return to_bool(m, v, ret);
	case GW_MAP_TYPE_STRING:
		return to_string(m, v, ret);
	}
	return -EINVAL;
}

int gw_mapping_value(const struct gw_config_map *m, const struct gw_value *v, json_t **ret)
{
	struct mapped x;
	json_t *j = NULL;
	int r;

	r = convert(m, v, &x);
	if (r < 0)
		return r;
	switch (x.type) {
	case MAPPED_BOOL:
		j = json_boolean(x.b);
		break;
	case MAPPED_INT:
		j = json_integer(x.i);
		break;
	case MAPPED_REAL:
		j = json_real(x.d);
		break;
	case MAPPED_STRING:
		j = json_string(x.s);
		/* jansson refuses strings that are not valid UTF-8 with NULL, as it does on OOM */
		if (!j)
			return -EINVAL;
		break;
	}
	if (!j)
		return -ENOMEM;
	*ret = j;
	return 0;
}

static void write_mapped(struct gw_jsonw *w, const struct mapped *x)
{
	switch (x->type) {
	case MAPPED_BOOL:
		gw_jsonw_bool(w, x->b);
		break;
	case MAPPED_INT:
		gw_jsonw_int(w, x->i);
		break;
	case MAPPED_REAL:
		gw_jsonw_real(w, x->d);
		break;
	case MAPPED_STRING:
		gw_jsonw_string(w, x->s);
		break;
	}
}

static bool has_fields(enum gw_frame_type type)
{
	switch (type) {
	case GW_FRAME_TELEMETRY:
	case GW_FRAME_EVENT:
	case GW_FRAME_COMMAND_REPLY:
		return true;
	case GW_FRAME_HELLO:
	case GW_FRAME_COMMAND:
	case GW_FRAME_ACK:
		return false;
	}
	return false;
}

int gw_mapping_params(const struct gw_config *c, const char *port, const struct gw_frame *f,
		      json_t **ret)
{
	json_t *params = json_object();
	size_t n;
	int r;

	if (!params)
		return -ENOMEM;
	n = has_fields(f->type) ? f->n_fields : 0;
	if (n > GW_FRAME_MAX_FIELDS)
		n = GW_FRAME_MAX_FIELDS;
	for (size_t i = 0; i < n; i++) {
		const struct gw_field *field = &f->fields[i];
		const struct gw_config_map *m = gw_config_find_map(c, port, field->key);
		json_t *v;

		r = gw_mapping_value(m, &field->value, &v);
		if (r < 0)
			goto fail;
		/* json_object_set_new() takes v even when it fails (e.g. a non-UTF-8 key) */
		if (json_object_set_new(params, m ? m->identifier : field->key, v) < 0) {
			r = -EINVAL;
			goto fail;
		}
	}
	*ret = params;
	return 0;
fail:
	json_decref(params);
	return r;
}

int gw_mapping_write_params(const struct gw_config *c, const char *port, const struct gw_frame *f,
			    struct gw_jsonw *w)
{
	struct mapped vals[GW_FRAME_MAX_FIELDS];
	const char *keys[GW_FRAME_MAX_FIELDS];
	uint8_t first[GW_FRAME_MAX_FIELDS], last[GW_FRAME_MAX_FIELDS];
	size_t n;
	int r;

	n = has_fields(f->type) ? f->n_fields : 0;
	if (n > GW_FRAME_MAX_FIELDS)
		n = GW_FRAME_MAX_FIELDS;
	/* Every value is converted first: one that cannot be refuses the whole frame, even
	 * when a later field of the same name would replace it. */
	for (size_t i = 0; i < n; i++) {
		const struct gw_field *field = &f->fields[i];
		const struct gw_config_map *m = gw_config_find_map(c, port, field->key);

		r = convert(m, &field->value, &vals[i]);
		if (r < 0)
			return r;
		keys[i] = m ? m->identifier : field->key;
		if (!gw_jsonw_utf8_valid(keys[i], strlen(keys[i])))
			return -EINVAL;
	}
	/* A key that comes again keeps its first place and takes its last value, as a jansson
	 * object does (gw_mapping_params). */
	for (size_t i = 0; i < n; i++) {
		first[i] = (uint8_t)i;
		for (size_t j = 0; j < i; j++)
			if (keys[j][0] == keys[i][0] && strcmp(keys[j], keys[i]) == 0) {
				first[i] = first[j];
				break;
			}
		last[first[i]] = (uint8_t)i;
	}
	gw_jsonw_object_begin(w);
	for (size_t i = 0; i < n; i++) {
		if (first[i] != i)
			continue;
		gw_jsonw_key(w, keys[i]);
		write_mapped(w, &vals[last[i]]);
	}
	gw_jsonw_object_end(w);
	return gw_jsonw_error(w);
}
