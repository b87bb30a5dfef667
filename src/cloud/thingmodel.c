/* SPDX-License-Identifier: MIT */
/*
 * Thing models: the Aliyun TSL and the Tencent data template read into one typed model (the
 * conversion of values to it is thingmodel_convert.c); see include/gw/thingmodel.h. Formats: docs/protocols/aliyun.md §9,
 * docs/protocols/tencent.md §7. Pure: no I/O (gw_thingmodel_load() is in thingmodel_load.c), no
 * logging.
 *
 * Positions. jansson keeps no position per value, so a semantic error is located afterwards:
 * the parser keeps the JSON path it is at (properties[3].dataType.type), and on an error a small
 * scanner walks that path through the text, which jansson has already checked to be valid JSON.
 */

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw/json.h"
#include "gw/thingmodel.h"
#include "gw/util.h"
#include "thingmodel-private.h"

#define PATH_DEPTH 16
#define IDENTIFIER_MAX 128
#define QUOTE_MAX 40 /* a quoted piece of the file in a message, cut to fit */

/* ------------------------------------------------------------------------------------------ */
/* Names */

struct type_name {
	const char *name;
	enum gw_thingmodel_type type;
};

static const struct type_name aliyun_types[] = {
	{ "int", GW_THINGMODEL_INT },       { "float", GW_THINGMODEL_FLOAT },
	{ "double", GW_THINGMODEL_DOUBLE }, { "text", GW_THINGMODEL_STRING },
	{ "date", GW_THINGMODEL_DATE },     { "bool", GW_THINGMODEL_BOOL },
	{ "enum", GW_THINGMODEL_ENUM },     { "struct", GW_THINGMODEL_STRUCT },
	{ "array", GW_THINGMODEL_ARRAY },
};

static const struct type_name tencent_types[] = {
	{ "int", GW_THINGMODEL_INT },
	{ "float", GW_THINGMODEL_FLOAT },
	{ "bool", GW_THINGMODEL_BOOL },
	{ "enum", GW_THINGMODEL_ENUM },
	{ "string", GW_THINGMODEL_STRING },
	{ "timestamp", GW_THINGMODEL_DATE },
	{ "stringenum", GW_THINGMODEL_STRINGENUM },
	{ "struct", GW_THINGMODEL_STRUCT },
	{ "array", GW_THINGMODEL_ARRAY },
};

const char *gw_thingmodel_format_to_string(enum gw_thingmodel_format f)
{
	return f == GW_THINGMODEL_TENCENT ? "tencent" : "aliyun";
}

const char *gw_thingmodel_type_to_string(enum gw_thingmodel_type t)
{
	static const char *const names[] = {
		[GW_THINGMODEL_INT] = "int",       [GW_THINGMODEL_FLOAT] = "float",
		[GW_THINGMODEL_DOUBLE] = "double", [GW_THINGMODEL_BOOL] = "bool",
		[GW_THINGMODEL_ENUM] = "enum",     [GW_THINGMODEL_STRING] = "string",
		[GW_THINGMODEL_DATE] = "date",     [GW_THINGMODEL_STRINGENUM] = "stringenum",
		[GW_THINGMODEL_STRUCT] = "struct", [GW_THINGMODEL_ARRAY] = "array",
	};

	if ((size_t)t >= N_ELEMENTS(names))
		return "?";
	return names[t];
}

const char *gw_thingmodel_event_type_to_string(enum gw_thingmodel_event_type t)
{
	switch (t) {
	case GW_THINGMODEL_EVENT_INFO:
		return "info";
	case GW_THINGMODEL_EVENT_ALERT:
		return "alert";
	case GW_THINGMODEL_EVENT_ERROR:
		return "error";
	case GW_THINGMODEL_EVENT_FAULT:
		return "fault";
	}
	return "?";
}

const char *gw_thingmodel_refusal_to_string(enum gw_thingmodel_refusal r)
{
	switch (r) {
	case GW_THINGMODEL_OK:
		return "ok";
	case GW_THINGMODEL_UNKNOWN_IDENTIFIER:
		return "unknown identifier";
	case GW_THINGMODEL_WRONG_TYPE:
		return "wrong type";
	case GW_THINGMODEL_OUT_OF_RANGE:
		return "out of range";
	case GW_THINGMODEL_NOT_IN_ENUM:
		return "not in enum";
	case GW_THINGMODEL_TOO_LONG:
		return "too long";
	case _GW_THINGMODEL_REFUSAL_MAX:
		break;
	}
	return "?";
}

/* ------------------------------------------------------------------------------------------ */
/* Freeing */

static void param_clear(param_t *p)
{
	if (!p)
		return;
	free(p->identifier);
	free(p->name);
	free(p->unit);
	for (size_t i = 0; i < p->n_enums; i++) {
		free(p->enums[i].key);
		free(p->enums[i].text);
	}
	free(p->enums);
	for (size_t i = 0; i < p->n_members; i++)
		param_clear(&p->members[i]);
	free(p->members);
	param_clear(p->item);
	free(p->item);
}

struct gw_thingmodel *gw_thingmodel_free(struct gw_thingmodel *m)
{
	if (!m)
		return NULL;
	free(m->product);
	for (size_t i = 0; i < m->n_properties; i++)
		param_clear(&m->properties[i]);
	free(m->properties);
	for (size_t i = 0; i < m->n_events; i++) {
		struct gw_thingmodel_event *e = &m->events[i];

		free(e->identifier);
		free(e->name);
		for (size_t j = 0; j < e->n_outputs; j++)
			param_clear(&e->outputs[j]);
		free(e->outputs);
	}
	free(m->events);
	free(m);
	return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Positions: a JSON path walked through text that jansson has already accepted */

struct step {
	const char *key; /* NULL: an array index */
	size_t index;
};

struct pctx {
	const char *buf;
	size_t len;
	enum gw_thingmodel_format format;
	struct step path[PATH_DEPTH];
	size_t depth; /* may exceed PATH_DEPTH: the steps beyond it are not kept */
	struct gw_thingmodel_error *err;
};

static void push_key(struct pctx *c, const char *key)
{
	if (c->depth < PATH_DEPTH)
		c->path[c->depth] = (struct step){ .key = key };
	c->depth++;
}

static void push_index(struct pctx *c, size_t index)
{
	if (c->depth < PATH_DEPTH)
		c->path[c->depth] = (struct step){ .index = index };
	c->depth++;
}

static void pop(struct pctx *c)
{
	c->depth--;
}

static bool is_ws(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static size_t skip_ws(const char *b, size_t n, size_t i)
{
	while (i < n && is_ws(b[i]))
		i++;
	return i;
}

/* b[i] is '"': the index after the closing quote. */
static size_t skip_string(const char *b, size_t n, size_t i)
{
	for (i++; i < n && b[i] != '"'; i++)
		if (b[i] == '\\')
			i++;
	return i < n ? i + 1 : n;
}

/* The index after the value that starts at (or after blanks from) i. */
static size_t skip_value(const char *b, size_t n, size_t i)
{
	size_t depth = 0;

	i = skip_ws(b, n, i);
	do {
		if (i >= n)
			return n;
		switch (b[i]) {
		case '"':
			i = skip_string(b, n, i);
			break;
		case '{':
		case '[':
			depth++;
			i++;
			break;
		case '}':
		case ']':
			if (depth == 0)
				return i;
			depth--;
			i++;
			break;
		default:
			if (depth == 0) {
				while (i < n && !is_ws(b[i]) && !strchr(",:]}", b[i]))
					i++;
				return i;
			}
			i++;
			break;
		}
	} while (depth > 0);
	return i;
}

/* b[i] is '{': where the value of member key starts, or n. */
static size_t find_member(const char *b, size_t n, size_t i, const char *key)
{
	size_t klen = strlen(key);

	for (i++;;) {
		size_t ks, ke;

		i = skip_ws(b, n, i);
		if (i >= n || b[i] != '"')
			return n;
		ks = i + 1;
		i = skip_string(b, n, i);
		ke = i - 1;
		i = skip_ws(b, n, i);
		if (i >= n || b[i] != ':')
			return n;
		i = skip_ws(b, n, i + 1);
		if (ke >= ks && ke - ks == klen && memcmp(b + ks, key, klen) == 0)
			return i;
		i = skip_ws(b, n, skip_value(b, n, i));
		if (i >= n || b[i] != ',')
			return n;
		i++;
	}
}

/* b[i] is '[': where element index starts, or n. */
static size_t find_element(const char *b, size_t n, size_t i, size_t index)
{
	for (size_t k = 0, j = i + 1;; k++) {
		j = skip_ws(b, n, j);
		if (j >= n || b[j] == ']')
			return n;
		if (k == index)
			return j;
		j = skip_ws(b, n, skip_value(b, n, j));
		if (j >= n || b[j] != ',')
			return n;
		j++;
	}
}

/* The offset of the value at the first depth steps of the path, or len. */
static size_t locate(const struct pctx *c, size_t depth)
{
	size_t i = skip_ws(c->buf, c->len, 0);

	for (size_t k = 0; k < depth && i < c->len; k++) {
		const struct step *s = &c->path[k];

		if (s->key && c->buf[i] == '{')
			i = find_member(c->buf, c->len, i, s->key);
		else if (!s->key && c->buf[i] == '[')
			i = find_element(c->buf, c->len, i, s->index);
		else
			return c->len;
	}
	return i;
}

static void set_position(const struct pctx *c)
{
	size_t depth = c->depth < PATH_DEPTH ? c->depth : PATH_DEPTH;
	size_t off, line = 1, col = 1;

	/* a key the scanner cannot match (written with escapes): the nearest enclosing value */
	for (;;) {
		off = locate(c, depth);
		if (off < c->len || depth == 0)
			break;
		depth--;
	}
	if (off >= c->len) {
		c->err->line = c->err->column = 0;
		return;
	}
	for (size_t i = 0; i < off; i++) {
		if (c->buf[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	c->err->line = line > UINT_MAX ? 0 : (unsigned)line;
	c->err->column = col > UINT_MAX ? 0 : (unsigned)col;
}

static void path_text(const struct pctx *c, char *buf, size_t size)
{
	size_t depth = c->depth < PATH_DEPTH ? c->depth : PATH_DEPTH;

	buf[0] = '\0';
	for (size_t k = 0; k < depth; k++) {
		if (c->path[k].key)
			gw_why_append(buf, size, "%s%s", k ? "." : "", c->path[k].key);
		else
			gw_why_append(buf, size, "[%zu]", c->path[k].index);
	}
	if (c->depth > PATH_DEPTH)
		gw_why_append(buf, size, "...");
}

/* Records the error at the current path; returns -EBADMSG. */
static int fail(struct pctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct pctx *c, const char *fmt, ...)
{
	char path[160], msg[GW_THINGMODEL_ERROR_MAX];
	va_list ap;

	if (!c->err)
		return -EBADMSG;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	path_text(c, path, sizeof(path));
	if (path[0])
		gw_why_set(c->err->text, sizeof(c->err->text), "%s: %s", path, msg);
	else
		gw_why_set(c->err->text, sizeof(c->err->text), "%s", msg);
	set_position(c);
	return -EBADMSG;
}

/* A piece of the file for a message: cut, controls as '?'. */
static const char *quote(char *buf, size_t size, const char *s)
{
	gw_json_copy_text(buf, size, s, strlen(s));
	return buf;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading members */

/* A whole string that strtod() accepts, finite, without blanks around it. */
int gw_thingmodel_parse_number(const char *s, double *ret)
{
	char *end;
	double x;

	if (!*s || is_ws(*s))
		return -EINVAL;
	errno = 0;
	x = strtod(s, &end);
	if (end == s || *end || errno == ERANGE || !isfinite(x))
		return -EINVAL;
	*ret = x;
	return 0;
}

/* A whole string of decimal digits with an optional '-' (strtoll), without blanks. */
int gw_thingmodel_parse_integer(const char *s, int64_t *ret)
{
	char *end;
	long long x;

	if (!*s || is_ws(*s) || *s == '+')
		return -EINVAL;
	errno = 0;
	x = strtoll(s, &end, 10);
	if (end == s || *end || errno == ERANGE)
		return -EINVAL;
	*ret = x;
	return 0;
}

/* An optional string member, copied (absent: ""); 0 or -EBADMSG. */
static int get_text(struct pctx *c, json_t *o, const char *key, char **ret)
{
	json_t *v = json_object_get(o, key);

	if (v && !json_is_string(v)) {
		push_key(c, key);
		return fail(c, "not a string");
	}
	*ret = gw_strdup(v ? json_string_value(v) : "");
	return 0;
}

/* A required identifier: 1..IDENTIFIER_MAX printable ASCII characters without blanks. */
static int get_identifier(struct pctx *c, json_t *o, const char *key, char **ret)
{
	json_t *v = json_object_get(o, key);
	char q[QUOTE_MAX];
	const char *s;
	size_t n;

	if (!v)
		return fail(c, "no \"%s\"", key);
	push_key(c, key);
	if (!json_is_string(v))
		return fail(c, "not a string");
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 0)
		return fail(c, "empty identifier");
	if (n > IDENTIFIER_MAX)
		return fail(c, "identifier longer than %d bytes", IDENTIFIER_MAX);
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return fail(c, "identifier \"%s\" is not printable ASCII",
				    quote(q, sizeof(q), s));
	pop(c);
	*ret = gw_strdup(s);
	return 0;
}

/* An optional number, written as a number or a string ("min":"0"); "" counts as absent.
 * Returns 1 (set), 0 (absent) or -EBADMSG. */
static int get_number(struct pctx *c, json_t *o, const char *key, double *ret)
{
	json_t *v = json_object_get(o, key);
	char q[QUOTE_MAX];

	if (!v)
		return 0;
	push_key(c, key);
	if (json_is_integer(v)) {
		*ret = (double)json_integer_value(v);
	} else if (json_is_real(v)) {
		*ret = json_real_value(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);

		if (!*s) {
			pop(c);
			return 0;
		}
		if (gw_thingmodel_parse_number(s, ret) < 0)
			return fail(c, "\"%s\" is not a number", quote(q, sizeof(q), s));
	} else {
		return fail(c, "not a number");
	}
	pop(c);
	return 1;
}

/* An optional count (a length, a number of elements): a whole number >= 0. */
static int get_size(struct pctx *c, json_t *o, const char *key, size_t *ret)
{
	double x = 0;
	int r = get_number(c, o, key, &x);

	if (r <= 0)
		return r;
	if (x < 0 || x != floor(x) || x > (double)INT32_MAX) {
		push_key(c, key);
		return fail(c, "not a whole number from 0 to %d", INT32_MAX);
	}
	*ret = (size_t)x;
	return 1;
}

/* min, max, step and unit of a number type, from o (Aliyun specs, Tencent define). */
static int parse_range(struct pctx *c, json_t *o, param_t *p)
{
	int r;

	r = get_number(c, o, "min", &p->min);
	if (r < 0)
		return r;
	p->has_min = r > 0;
	r = get_number(c, o, "max", &p->max);
	if (r < 0)
		return r;
	p->has_max = r > 0;
	r = get_number(c, o, "step", &p->step);
	if (r < 0)
		return r;
	if (p->step < 0) {
		push_key(c, "step");
		return fail(c, "negative step");
	}
	if (p->has_min && p->has_max && p->min > p->max) {
		push_key(c, "min");
		return fail(c, "min %.15g is above max %.15g", p->min, p->max);
	}
	free(p->unit);
	p->unit = NULL;
	return get_text(c, o, "unit", &p->unit);
}

/* The listed values of a bool, enum or stringenum: the object o[key] of value -> description. */
static int parse_enums(struct pctx *c, json_t *o, const char *key, param_t *p)
{
	json_t *m = json_object_get(o, key), *v;
	char q[QUOTE_MAX];
	const char *k;

	if (!m) {
		if (p->type == GW_THINGMODEL_BOOL)
			return 0; /* 0 and 1 all the same */
		return fail(c, "no \"%s\"", key);
	}
	push_key(c, key);
	if (!json_is_object(m))
		return fail(c, "not an object");
	if (json_object_size(m) == 0 && p->type != GW_THINGMODEL_BOOL)
		return fail(c, "no values");
	p->enums = gw_new0(struct gw_thingmodel_enum, json_object_size(m));
	json_object_foreach(m, k, v) {
		struct gw_thingmodel_enum *e = &p->enums[p->n_enums];

		push_key(c, k);
		if (!json_is_string(v))
			return fail(c, "not a string");
		if (p->type != GW_THINGMODEL_STRINGENUM) {
			if (gw_thingmodel_parse_integer(k, &e->value) < 0)
				return fail(c, "value \"%s\" is not an integer",
					    quote(q, sizeof(q), k));
			if (p->type == GW_THINGMODEL_BOOL && e->value != 0 && e->value != 1)
				return fail(c, "a bool has only the values 0 and 1");
		} else if (!*k) {
			return fail(c, "empty value");
		}
		e->key = gw_strdup(k);
		e->text = gw_strdup(json_string_value(v));
		p->n_enums++;
		pop(c);
	}
	pop(c);
	return 0;
}

static int parse_param(struct pctx *c, json_t *o, param_t *p, bool member);

/* The members of a struct: the array a, each a param with its own data type. */
static int parse_members(struct pctx *c, json_t *a, param_t *p)
{
	char q[QUOTE_MAX];

	if (!json_is_array(a))
		return fail(c, "not an array");
	p->members = gw_new0(param_t, json_array_size(a) ? json_array_size(a) : 1);
	for (size_t i = 0; i < json_array_size(a); i++) {
		int r;

		push_index(c, i);
		p->n_members = i + 1;
		r = parse_param(c, json_array_get(a, i), &p->members[i], true);
		if (r < 0)
			return r;
		for (size_t j = 0; j < i; j++)
			if (strcmp(p->members[j].identifier, p->members[i].identifier) == 0)
				return fail(c, "identifier \"%s\" appears twice",
					    quote(q, sizeof(q), p->members[i].identifier));
		pop(c);
	}
	return 0;
}

static int parse_type_name(struct pctx *c, json_t *o, param_t *p)
{
	const struct type_name *names = aliyun_types;
	size_t n = N_ELEMENTS(aliyun_types);
	json_t *v = json_object_get(o, "type");
	char q[QUOTE_MAX];

	if (c->format == GW_THINGMODEL_TENCENT) {
		names = tencent_types;
		n = N_ELEMENTS(tencent_types);
	}
	if (!v)
		return fail(c, "no \"type\"");
	push_key(c, "type");
	if (!json_is_string(v))
		return fail(c, "not a string");
	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i].name, json_string_value(v)) == 0) {
			p->type = names[i].type;
			pop(c);
			return 0;
		}
	}
	return fail(c, "unknown data type \"%s\"", quote(q, sizeof(q), json_string_value(v)));
}

/*
 * A data type: Aliyun {"type":…,"specs":…}, Tencent {"type":…,<specs inline>}. A struct's
 * members are scalars; an array's item may be a struct (of scalars), never an array.
 */
static int parse_data_type(struct pctx *c, json_t *d, param_t *p, bool in_struct, bool in_array)
{
	bool aliyun = c->format == GW_THINGMODEL_ALIYUN;
	json_t *specs = d;
	int r;

	if (!json_is_object(d))
		return fail(c, "not an object");
	r = parse_type_name(c, d, p);
	if (r < 0)
		return r;
	if ((p->type == GW_THINGMODEL_STRUCT && in_struct) ||
	    (p->type == GW_THINGMODEL_ARRAY && (in_struct || in_array))) {
		push_key(c, "type");
		return fail(c, "a %s cannot hold a %s", in_struct ? "struct" : "array",
			    gw_thingmodel_type_to_string(p->type));
	}
	if (aliyun && p->type != GW_THINGMODEL_BOOL && p->type != GW_THINGMODEL_ENUM) {
		specs = json_object_get(d, "specs");
		if (!specs) {
			if (p->type == GW_THINGMODEL_STRUCT || p->type == GW_THINGMODEL_ARRAY)
				return fail(c, "no \"specs\"");
			specs = NULL;
		} else {
			push_key(c, "specs");
			/* a date's specs is {}; a struct's is an array */
			if (p->type != GW_THINGMODEL_STRUCT && !json_is_object(specs))
				return fail(c, "not an object");
		}
	}

	switch (p->type) {
	case GW_THINGMODEL_INT:
	case GW_THINGMODEL_FLOAT:
	case GW_THINGMODEL_DOUBLE:
		r = specs ? parse_range(c, specs, p) : 0;
		if (r == 0 && !p->unit)
			p->unit = gw_strdup("");
		break;
	case GW_THINGMODEL_STRING:
		if (!specs)
			break;
		if (aliyun) {
			r = get_size(c, specs, "length", &p->max_length);
			break;
		}
		r = get_size(c, specs, "min", &p->min_length);
		if (r >= 0)
			r = get_size(c, specs, "max", &p->max_length);
		if (r >= 0 && p->max_length && p->min_length > p->max_length) {
			push_key(c, "min");
			return fail(c, "min %zu is above max %zu", p->min_length, p->max_length);
		}
		break;
	case GW_THINGMODEL_DATE:
		break;
	case GW_THINGMODEL_BOOL:
	case GW_THINGMODEL_ENUM:
	case GW_THINGMODEL_STRINGENUM:
		r = parse_enums(c, d, aliyun ? "specs" : "mapping", p);
		break;
	case GW_THINGMODEL_STRUCT:
		if (!aliyun) {
			specs = json_object_get(d, "specs");
			if (!specs)
				return fail(c, "no \"specs\"");
			push_key(c, "specs");
		}
		r = parse_members(c, specs, p);
		if (!aliyun && r == 0)
			pop(c);
		break;
	case GW_THINGMODEL_ARRAY:
		/* Tencent's array shape is not documented where we looked: elements unchecked */
		if (aliyun) {
			json_t *item = json_object_get(specs, "item"), *it;

			r = get_size(c, specs, "size", &p->max_items);
			if (r < 0 || !item)
				break;
			push_key(c, "item");
			it = json_object_get(item, "dataType");
			if (it)
				push_key(c, "dataType");
			p->item = gw_new0(param_t, 1);
			r = parse_data_type(c, it ? it : item, p->item, false, true);
			if (r < 0)
				return r;
			if (it)
				pop(c);
			pop(c);
		}
		break;
	}
	if (r < 0)
		return r;
	if (aliyun && specs && specs != d)
		pop(c);
	if (!p->unit)
		p->unit = gw_strdup("");
	return 0;
}

/*
 * A property, an event output or a struct member: Aliyun {"identifier","name","accessMode",
 * "required","dataType"}; Tencent {"id","name","mode","required","define"} (a struct member
 * has "dataType" in place of "define").
 */
static int parse_param(struct pctx *c, json_t *o, param_t *p, bool member)
{
	bool aliyun = c->format == GW_THINGMODEL_ALIYUN;
	const char *dkey = aliyun ? "dataType" : "define";
	json_t *mode, *d;
	int r;

	if (!json_is_object(o))
		return fail(c, "not an object");
	r = get_identifier(c, o, aliyun ? "identifier" : "id", &p->identifier);
	if (r == 0)
		r = get_text(c, o, "name", &p->name);
	if (r < 0)
		return r;
	mode = json_object_get(o, aliyun ? "accessMode" : "mode");
	if (json_is_string(mode))
		p->writable = strchr(json_string_value(mode), 'w') != NULL;
	p->required = json_is_true(json_object_get(o, "required"));
	d = json_object_get(o, dkey);
	if (!d && member && !aliyun) {
		dkey = "dataType";
		d = json_object_get(o, dkey);
	}
	if (!d)
		return fail(c, "no \"%s\"", dkey);
	push_key(c, dkey);
	r = parse_data_type(c, d, p, member, false);
	if (r < 0)
		return r;
	pop(c);
	return 0;
}

/* The params of an array member key of the root (properties, an event's outputs). */
static int parse_params(struct pctx *c, json_t *o, const char *key, param_t **ret, size_t *n)
{
	json_t *a = json_object_get(o, key);
	char q[QUOTE_MAX];

	if (!a)
		return 0;
	push_key(c, key);
	if (!json_is_array(a))
		return fail(c, "not an array");
	*ret = gw_new0(param_t, json_array_size(a) ? json_array_size(a) : 1);
	for (size_t i = 0; i < json_array_size(a); i++) {
		param_t *p = &(*ret)[i];
		int r;

		push_index(c, i);
		*n = i + 1;
		r = parse_param(c, json_array_get(a, i), p, false);
		if (r < 0)
			return r;
		for (size_t j = 0; j < i; j++)
			if (strcmp((*ret)[j].identifier, p->identifier) == 0)
				return fail(c, "identifier \"%s\" appears twice",
					    quote(q, sizeof(q), p->identifier));
		pop(c);
	}
	pop(c);
	return 0;
}

static int parse_event_type(struct pctx *c, json_t *o, struct gw_thingmodel_event *e)
{
	json_t *v = json_object_get(o, "type");
	const char *s;
	char q[QUOTE_MAX];

	if (!v)
		return fail(c, "no \"type\"");
	push_key(c, "type");
	if (!json_is_string(v))
		return fail(c, "not a string");
	s = json_string_value(v);
	if (strcmp(s, "info") == 0)
		e->type = GW_THINGMODEL_EVENT_INFO;
	else if (strcmp(s, "alert") == 0)
		e->type = GW_THINGMODEL_EVENT_ALERT;
	else if (c->format == GW_THINGMODEL_ALIYUN && strcmp(s, "error") == 0)
		e->type = GW_THINGMODEL_EVENT_ERROR;
	else if (c->format == GW_THINGMODEL_TENCENT && strcmp(s, "fault") == 0)
		e->type = GW_THINGMODEL_EVENT_FAULT;
	else
		return fail(c, "unknown event type \"%s\" (%s)", quote(q, sizeof(q), s),
			    c->format == GW_THINGMODEL_ALIYUN ? "info, alert or error" :
								"info, alert or fault");
	pop(c);
	return 0;
}

/* Aliyun's property post, listed among the events of every TSL export. */
static bool is_property_post(json_t *o)
{
	json_t *id = json_object_get(o, "identifier"), *method = json_object_get(o, "method");

	return json_is_string(id) && strcmp(json_string_value(id), "post") == 0 &&
	       json_is_string(method) &&
	       strcmp(json_string_value(method), "thing.event.property.post") == 0;
}

static int parse_events(struct pctx *c, json_t *root, struct gw_thingmodel *m)
{
	bool aliyun = c->format == GW_THINGMODEL_ALIYUN;
	json_t *a = json_object_get(root, "events");
	char q[QUOTE_MAX];

	if (!a)
		return 0;
	push_key(c, "events");
	if (!json_is_array(a))
		return fail(c, "not an array");
	m->events = gw_new0(struct gw_thingmodel_event,
			    json_array_size(a) ? json_array_size(a) : 1);
	for (size_t i = 0; i < json_array_size(a); i++) {
		json_t *o = json_array_get(a, i);
		struct gw_thingmodel_event *e = &m->events[m->n_events];
		int r;

		push_index(c, i);
		if (!json_is_object(o))
			return fail(c, "not an object");
		if (aliyun && is_property_post(o)) {
			pop(c);
			continue;
		}
		m->n_events++;
		r = get_identifier(c, o, aliyun ? "identifier" : "id", &e->identifier);
		if (r == 0)
			r = get_text(c, o, "name", &e->name);
		if (r == 0)
			r = parse_event_type(c, o, e);
		if (r == 0)
			r = parse_params(c, o, aliyun ? "outputData" : "params", &e->outputs,
					 &e->n_outputs);
		if (r < 0)
			return r;
		for (size_t j = 0; j + 1 < m->n_events; j++)
			if (strcmp(m->events[j].identifier, e->identifier) == 0)
				return fail(c, "identifier \"%s\" appears twice",
					    quote(q, sizeof(q), e->identifier));
		pop(c);
	}
	pop(c);
	return 0;
}

/* Which console exported root; -EBADMSG when it cannot be told. */
static int detect(struct pctx *c, json_t *root)
{
	json_t *profile = json_object_get(root, "profile");
	const char *lists[] = { "properties", "events" };

	if (json_is_object(profile)) {
		if (json_object_get(profile, "productKey")) {
			c->format = GW_THINGMODEL_ALIYUN;
			return 0;
		}
		if (json_object_get(profile, "ProductId")) {
			c->format = GW_THINGMODEL_TENCENT;
			return 0;
		}
	}
	if (json_object_get(root, "schema")) {
		c->format = GW_THINGMODEL_ALIYUN;
		return 0;
	}
	if (json_object_get(root, "version")) {
		c->format = GW_THINGMODEL_TENCENT;
		return 0;
	}
	for (size_t i = 0; i < N_ELEMENTS(lists); i++) {
		json_t *first = json_array_get(json_object_get(root, lists[i]), 0);

		if (json_object_get(first, "identifier") || json_object_get(first, "dataType")) {
			c->format = GW_THINGMODEL_ALIYUN;
			return 0;
		}
		if (json_object_get(first, "id") || json_object_get(first, "define")) {
			c->format = GW_THINGMODEL_TENCENT;
			return 0;
		}
	}
	return fail(c, "neither an Aliyun TSL nor a Tencent data template (no profile.productKey "
		       "or profile.ProductId)");
}

static int parse_root(struct pctx *c, json_t *root, struct gw_thingmodel *m)
{
	bool aliyun;
	json_t *profile, *services;
	int r;

	if (!json_is_object(root))
		return fail(c, "not a JSON object");
	r = detect(c, root);
	if (r < 0)
		return r;
	aliyun = c->format == GW_THINGMODEL_ALIYUN;
	m->format = c->format;
	profile = json_object_get(root, "profile");
	if (profile) {
		push_key(c, "profile");
		if (!json_is_object(profile))
			return fail(c, "not an object");
		r = get_text(c, profile, aliyun ? "productKey" : "ProductId", &m->product);
		if (r < 0)
			return r;
		pop(c);
	}
	if (!m->product)
		m->product = gw_strdup("");
	r = parse_params(c, root, "properties", &m->properties, &m->n_properties);
	if (r == 0)
		r = parse_events(c, root, m);
	if (r < 0)
		return r;
	services = json_object_get(root, aliyun ? "services" : "actions");
	if (services) {
		push_key(c, aliyun ? "services" : "actions");
		if (!json_is_array(services))
			return fail(c, "not an array");
		pop(c);
		m->n_services = json_array_size(services);
	}
	return 0;
}

int gw_thingmodel_parse(const char *buf, size_t len, struct gw_thingmodel **ret,
			struct gw_thingmodel_error *err)
{
	struct pctx c = { .buf = buf, .len = len, .err = err };
	struct gw_thingmodel *m;
	json_error_t jerr;
	json_t *root;
	int r;

	if (err)
		*err = (struct gw_thingmodel_error){ 0 };
	if (len > GW_THINGMODEL_FILE_MAX) {
		if (err)
			gw_why_set(err->text, sizeof(err->text),
				   "%zu bytes, more than the %d a model may have", len,
				   GW_THINGMODEL_FILE_MAX);
		return -EMSGSIZE;
	}
	if (!buf) {
		c.buf = buf = "";
		c.len = len = 0;
	}
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (json_error_code(&jerr) == json_error_out_of_memory)
			return -ENOMEM;
		if (err) {
			err->line = jerr.line > 0 ? (unsigned)jerr.line : 0;
			err->column = jerr.column > 0 ? (unsigned)jerr.column : 0;
			gw_why_set(err->text, sizeof(err->text), "%s", jerr.text);
		}
		return -EBADMSG;
	}
	m = gw_new0(struct gw_thingmodel, 1);
	r = parse_root(&c, root, m);
	json_decref(root);
	if (r < 0) {
		gw_thingmodel_free(m);
		return r;
	}
	*ret = m;
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Lookups */

const struct gw_thingmodel_param *gw_thingmodel_property(const struct gw_thingmodel *m,
							 const char *identifier)
{
	if (!m || !identifier)
		return NULL;
	for (size_t i = 0; i < m->n_properties; i++)
		if (strcmp(m->properties[i].identifier, identifier) == 0)
			return &m->properties[i];
	return NULL;
}

const struct gw_thingmodel_event *gw_thingmodel_event(const struct gw_thingmodel *m,
						      const char *identifier)
{
	if (!m || !identifier)
		return NULL;
	for (size_t i = 0; i < m->n_events; i++)
		if (strcmp(m->events[i].identifier, identifier) == 0)
			return &m->events[i];
	return NULL;
}

const struct gw_thingmodel_param *gw_thingmodel_event_output(const struct gw_thingmodel_event *e,
							     const char *identifier)
{
	if (!e || !identifier)
		return NULL;
	for (size_t i = 0; i < e->n_outputs; i++)
		if (strcmp(e->outputs[i].identifier, identifier) == 0)
			return &e->outputs[i];
	return NULL;
}

int gw_thingmodel_event_type(const struct gw_thingmodel *m, const char *identifier,
			     enum gw_thingmodel_event_type *ret)
{
	const struct gw_thingmodel_event *e = gw_thingmodel_event(m, identifier);

	if (!e)
		return -ENOENT;
	*ret = e->type;
	return 0;
}
