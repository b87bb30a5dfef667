/* SPDX-License-Identifier: MIT */
/*
 * Text framing: splitting a byte stream into lines and parsing one line into a gw_frame.
 * docs/protocol.md ("Text framing") is the normative description of every rule below.
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame-private.h"
#include "gw/frame.h"

/* ---- line splitter ---- */

void gw_text_splitter_reset(struct gw_text_splitter *s)
{
	s->len = 0;
	s->discarding = false;
	s->after_cr = false;
}

size_t gw_text_splitter_pending(const struct gw_text_splitter *s)
{
	return s->discarding ? 0 : s->len;
}

void gw_text_splitter_feed(struct gw_text_splitter *s, const uint8_t *buf, size_t len,
			   gw_text_line_fn fn, void *user_data)
{
	size_t i;

	for (i = 0; i < len; i++) {
		uint8_t c = buf[i];
		bool was_cr = s->after_cr;

		s->after_cr = c == '\r';
		if (c == '\r' || c == '\n') {
			/* CR LF is one terminator: the LF completes a line that is already done. */
			if (c == '\n' && was_cr)
				continue;
			if (!s->discarding && s->len > 0)
				fn(s->line, s->len, false, user_data);
			s->len = 0;
			s->discarding = false;
			continue;
		}
		if (s->discarding)
			continue;
		if (s->len == GW_TEXT_LINE_MAX) {
			s->discarding = true;
			s->len = 0;
			fn(NULL, 0, true, user_data);
			continue;
		}
		s->line[s->len++] = (char)c;
	}
}

/* ---- line parser ---- */

static bool is_sep(char c)
{
	return c == ' ' || c == '\t' || c == ',' || c == ';';
}

static bool is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_printable(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool key_ok(const char *key, size_t len)
{
	size_t i;

	if (len < 1 || len >= GW_KEY_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (!is_key_char(key[i]))
			return false;
	return true;
}

static bool token_is(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(s, word, len) == 0;
}

/* Decimal integer with optional sign; false when it is not one or does not fit int64. */
static bool parse_int64(const char *s, size_t len, int64_t *ret)
{
	uint64_t limit = INT64_MAX, v = 0;
	bool neg = false;
	size_t i = 0;

	if (len > 0 && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == len)
		return false;
	if (neg)
		limit = (uint64_t)INT64_MAX + 1;
	for (; i < len; i++) {
		if (!is_digit(s[i]))
			return false;
		if (v > (limit - (uint64_t)(s[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (neg)
		*ret = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	else
		*ret = (int64_t)v;
	return true;
}

/*
 * Decimal floating point: [+-] (digits [. digits*] | . digits) [(e|E) [+-] digits]. Checked
 * here rather than left to strtod alone, which would also take "0x1p4", "inf" and "nan".
 */
static bool is_decimal_number(const char *s, size_t len)
{
	size_t i = 0, int_digits = 0, frac_digits = 0, exp_digits = 0;

	if (i < len && (s[i] == '+' || s[i] == '-'))
		i++;
	for (; i < len && is_digit(s[i]); i++)
		int_digits++;
	if (i < len && s[i] == '.')
		for (i++; i < len && is_digit(s[i]); i++)
			frac_digits++;
	if (int_digits + frac_digits == 0)
		return false;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		for (; i < len && is_digit(s[i]); i++)
			exp_digits++;
		if (exp_digits == 0)
			return false;
	}
	return i == len;
}

static bool set_string(struct gw_value *v, const char *s, size_t len)
{
	if (len >= GW_STR_MAX || !is_printable(s, len))
		return false;
	v->type = GW_VALUE_STRING;
	memcpy(v->s, s, len);
	v->s[len] = '\0';
	return true;
}

/* Types an unquoted value token (1..GW_TEXT_LINE_MAX bytes, no separators). */
static bool type_value(const char *s, size_t len, struct gw_value *v)
{
	char num[GW_TEXT_LINE_MAX + 1];
	double d;

	if (token_is(s, len, "true") || token_is(s, len, "false")) {
		v->type = GW_VALUE_BOOL;
		v->b = s[0] == 't';
		return true;
	}
	if (parse_int64(s, len, &v->i)) {
		v->type = GW_VALUE_INT;
		return true;
	}
	if (is_decimal_number(s, len) && len < sizeof(num)) {
		/* The token is not NUL-terminated in the line, so strtod works on a copy. */
		memcpy(num, s, len);
		num[len] = '\0';
		d = strtod(num, NULL);
		if (isfinite(d)) {
			v->type = GW_VALUE_DOUBLE;
			v->d = d;
			return true;
		}
	}
	return set_string(v, s, len);
}

struct pair {
	const char *key;
	size_t key_len;
	const char *val;
	size_t val_len;
	bool quoted;
};

/* Returns 1 with the next pair in *ret, 0 at the end of the line, -1 when malformed. */
static int next_pair(const char **pp, const char *end, struct pair *ret)
{
	const char *p = *pp, *q;

	while (p < end && is_sep(*p))
		p++;
	if (p == end)
		return 0;
	ret->key = p;
	while (p < end && *p != '=' && *p != ':' && !is_sep(*p))
		p++;
	ret->key_len = (size_t)(p - ret->key);
	if (p == end || is_sep(*p) || !key_ok(ret->key, ret->key_len))
		return -1;
	p++;
	if (p < end && *p == '"') {
		q = memchr(p + 1, '"', (size_t)(end - p - 1));
		if (!q)
			return -1;
		ret->val = p + 1;
		ret->val_len = (size_t)(q - p - 1);
		ret->quoted = true;
		p = q + 1;
		if (p < end && !is_sep(*p))
			return -1;
	} else {
		ret->val = p;
		while (p < end && !is_sep(*p))
			p++;
		ret->val_len = (size_t)(p - ret->val);
		ret->quoted = false;
		if (ret->val_len == 0)
			return -1;
	}
	*pp = p;
	return 1;
}

/* Returns the field for key: the existing one (a duplicate key replaces the earlier value) or
 * a new one; NULL when the frame is full. */
static struct gw_field *field_for_key(struct gw_frame *f, const char *key, size_t len)
{
	struct gw_field *field;
	size_t i;

	for (i = 0; i < f->n_fields; i++)
		if (strlen(f->fields[i].key) == len && memcmp(f->fields[i].key, key, len) == 0) {
			field = &f->fields[i];
			memset(&field->value, 0, sizeof(field->value));
			return field;
		}
	if (f->n_fields == GW_FRAME_MAX_FIELDS)
		return NULL;
	field = &f->fields[f->n_fields++];
	memcpy(field->key, key, len);
	field->key[len] = '\0';
	return field;
}

static enum gw_frame_error parse_pairs(const char *p, const char *end, struct gw_frame *f)
{
	struct gw_field *field;
	struct pair pr;
	int r;

	while ((r = next_pair(&p, end, &pr)) > 0) {
		field = field_for_key(f, pr.key, pr.key_len);
		if (!field)
			return GW_FRAME_ERR_MALFORMED;
		if (pr.quoted ? !set_string(&field->value, pr.val, pr.val_len)
			      : !type_value(pr.val, pr.val_len, &field->value))
			return GW_FRAME_ERR_MALFORMED;
	}
	if (r < 0 || f->n_fields == 0)
		return GW_FRAME_ERR_MALFORMED;
	return GW_FRAME_OK;
}

static bool parse_uid(const char *s, size_t len, uint8_t uid[GW_UID_SIZE])
{
	size_t i;
	int hi, lo;

	if (len != 2 * GW_UID_SIZE)
		return false;
	for (i = 0; i < GW_UID_SIZE; i++) {
		hi = hex_value(s[2 * i]);
		lo = hex_value(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		uid[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

static bool parse_u32(const char *s, size_t len, uint32_t *ret)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 10)
		return false;
	for (i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*ret = (uint32_t)v;
	return true;
}

/* p points just after the word "hello". Values are taken verbatim, not typed: fw=1.10 is the
 * version "1.10", not the number 1.1. */
static enum gw_frame_error parse_hello(const char *p, const char *end, struct gw_frame *f)
{
	bool have_uid = false;
	struct pair pr;
	int r;

	f->type = GW_FRAME_HELLO;
	while ((r = next_pair(&p, end, &pr)) > 0) {
		if (token_is(pr.key, pr.key_len, "uid")) {
			if (!parse_uid(pr.val, pr.val_len, f->uid))
				return GW_FRAME_ERR_MALFORMED;
			have_uid = true;
		} else if (token_is(pr.key, pr.key_len, "fw")) {
			if (pr.val_len >= GW_NAME_MAX || !is_printable(pr.val, pr.val_len))
				return GW_FRAME_ERR_MALFORMED;
			memcpy(f->fw_version, pr.val, pr.val_len);
			f->fw_version[pr.val_len] = '\0';
		} else if (token_is(pr.key, pr.key_len, "boot")) {
			if (!parse_u32(pr.val, pr.val_len, &f->boot_counter))
				return GW_FRAME_ERR_MALFORMED;
		} else {
			return GW_FRAME_ERR_MALFORMED;
		}
	}
	if (r < 0 || !have_uid)
		return GW_FRAME_ERR_MALFORMED;
	return GW_FRAME_OK;
}

/* ---- JSON lines ---- */

static enum gw_frame_error why(struct gw_frame *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Notes in f->why what is wrong with the line; returns GW_FRAME_ERR_MALFORMED. */
static enum gw_frame_error why(struct gw_frame *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(f->why, sizeof(f->why), fmt, ap);
	va_end(ap);
	return GW_FRAME_ERR_MALFORMED;
}

/* s as a reason may show it: at most 40 bytes, anything but printable ASCII as '?'. */
static const char *shown(const char *s, char buf[static 41])
{
	size_t i;

	for (i = 0; i < 40 && s[i]; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e ? '?' : s[i];
	buf[i] = '\0';
	return buf;
}

/* Sets the field key of f to the JSON scalar v; in_params: v is a member of an envelope's
 * params (docs/protocol.md 2.4.1), else of a flat object (2.4). */
static enum gw_frame_error take_value(struct gw_frame *f, const char *key, json_t *v,
				      bool in_params)
{
	const char *of = in_params ? " of params" : "";
	size_t klen = strlen(key);
	struct gw_field *field;
	char k[41];

	if (!key_ok(key, klen))
		return why(f, "key '%s'%s is not 1..31 of [A-Za-z0-9_.-]", shown(key, k), of);
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if (in_params)
			return why(f, "nested object in field '%s' of params (struct values are not "
				   "taken)", key);
		return why(f, "nested object in field '%s' (only a Tencent report/event or an "
			   "Alink post envelope may hold objects)", key);
	case JSON_ARRAY:
		return why(f, "array in field '%s'%s (arrays are not taken)", key, of);
	case JSON_NULL:
		return why(f, "null in field '%s'%s", key, of);
	case JSON_INTEGER:
	case JSON_REAL:
	case JSON_TRUE:
	case JSON_FALSE:
	case JSON_STRING:
		break;
	}
	field = field_for_key(f, key, klen);
	if (!field)
		return why(f, "more than %d fields", GW_FRAME_MAX_FIELDS);
	switch (json_typeof(v)) {
	case JSON_INTEGER:
		field->value.type = GW_VALUE_INT;
		field->value.i = json_integer_value(v);
		break;
	case JSON_REAL:
		field->value.type = GW_VALUE_DOUBLE;
		field->value.d = json_real_value(v);
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		field->value.type = GW_VALUE_BOOL;
		field->value.b = json_is_true(v);
		break;
	case JSON_STRING:
		if (!set_string(&field->value, json_string_value(v), json_string_length(v)))
			return why(f, "the string in field '%s'%s is longer than %d bytes or not "
				   "printable ASCII", key, of, GW_STR_MAX - 1);
		break;
	case JSON_OBJECT:
	case JSON_ARRAY:
	case JSON_NULL:
		break;
	}
	return GW_FRAME_OK;
}

/* The cloud message shapes a line may have (docs/protocol.md 2.4.1). */
enum shape {
	TENCENT_REPORT, /* docs/protocols/tencent.md §3.1 */
	TENCENT_EVENT,  /* docs/protocols/tencent.md §3.2 */
	ALINK_PROPERTY, /* docs/protocols/aliyun.md §5 */
	ALINK_EVENT,
};

static const char *const shape_names[] = {
	[TENCENT_REPORT] = "a Tencent report",
	[TENCENT_EVENT] = "a Tencent event_post",
	[ALINK_PROPERTY] = "an Alink post",
	[ALINK_EVENT] = "an Alink post",
};

/* The members each shape may have, NULL-terminated. */
static const char *const *shape_members(enum shape shape)
{
	static const char *const report[] = { "method", "clientToken", "timestamp", "params",
					      NULL };
	static const char *const event[] = { "method", "clientToken", "version", "eventId",
					     "type", "timestamp", "params", NULL };
	static const char *const alink[] = { "id", "version", "sys", "params", "method", NULL };

	return shape == TENCENT_REPORT ? report : shape == TENCENT_EVENT ? event : alink;
}

static bool listed(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

static bool has_prefix(const char *s, size_t n, const char *prefix)
{
	size_t m = strlen(prefix);

	return n >= m && memcmp(s, prefix, m) == 0;
}

/* Which shape method names; an Alink event's identifier goes to f->name. */
static enum gw_frame_error read_method(json_t *m, struct gw_frame *f, enum shape *ret)
{
	static const char pre[] = "thing.event.", post[] = ".post";
	const char *s;
	size_t n, id_len, i;
	char shown_m[41];

	if (!m)
		return why(f, "\"params\" is an object but there is no \"method\" (only a Tencent "
			   "report/event_post or an Alink post may hold objects)");
	if (!json_is_string(m))
		return why(f, "\"method\" is not a string");
	s = json_string_value(m);
	n = json_string_length(m);
	if (strlen(s) == n && strcmp(s, "report") == 0) {
		*ret = TENCENT_REPORT;
		return GW_FRAME_OK;
	}
	if (strlen(s) == n && strcmp(s, "event_post") == 0) {
		*ret = TENCENT_EVENT;
		return GW_FRAME_OK;
	}
	if (strlen(s) == n && strcmp(s, "thing.event.property.post") == 0) {
		*ret = ALINK_PROPERTY;
		return GW_FRAME_OK;
	}
	id_len = n > sizeof(pre) + sizeof(post) - 2 ? n - (sizeof(pre) + sizeof(post) - 2) : 0;
	if (strlen(s) == n && has_prefix(s, n, pre) && id_len > 0 && id_len < GW_NAME_MAX &&
	    strcmp(s + n - (sizeof(post) - 1), post) == 0) {
		const char *id = s + sizeof(pre) - 1;

		for (i = 0; i < id_len; i++)
			if (!is_key_char(id[i]) || id[i] == '.')
				break;
		if (i == id_len) {
			memcpy(f->name, id, id_len);
			f->name[id_len] = '\0';
			*ret = ALINK_EVENT;
			return GW_FRAME_OK;
		}
	}
	return why(f, "method \"%s\" is not report, event_post, thing.event.property.post or "
		   "thing.event.<identifier>.post", shown(s, shown_m));
}

/* The envelope's clientToken (Tencent) or id (Alink) as f->trace. */
static enum gw_frame_error read_trace(json_t *root, bool tencent, struct gw_frame *f)
{
	const char *name = tencent ? "clientToken" : "id";
	json_t *v = json_object_get(root, name);
	char num[32];
	const char *s;
	size_t n;

	if (!v)
		return GW_FRAME_OK;
	if (json_is_string(v)) {
		s = json_string_value(v);
		n = json_string_length(v);
	} else if (!tencent && json_is_integer(v)) {
		n = (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
				     json_integer_value(v));
		s = num;
	} else {
		return why(f, tencent ? "clientToken is not a string" :
					"id is not a string or an integer");
	}
	if (n >= sizeof(f->trace))
		return why(f, "%s is longer than %d bytes", name, GW_STR_MAX - 1);
	if (!is_printable(s, n))
		return why(f, "%s is not printable ASCII", name);
	memcpy(f->trace, s, n);
	f->trace[n] = '\0';
	return GW_FRAME_OK;
}

/* The other members of the envelope, checked; a Tencent event's id goes to f->name. */
static enum gw_frame_error read_members(json_t *root, enum shape shape, struct gw_frame *f)
{
	static const char *const types[] = { "info", "alert", "fault", "fatal", NULL };
	json_t *v;
	char b[41];
	size_t n;

	v = json_object_get(root, "version");
	if (v && !json_is_string(v))
		return why(f, "version is not a string");
	v = json_object_get(root, "timestamp");
	if (v && !json_is_integer(v))
		return why(f, "timestamp is not an integer");
	v = json_object_get(root, "sys");
	if (v && !json_is_object(v))
		return why(f, "sys is not an object");
	if (shape != TENCENT_EVENT)
		return GW_FRAME_OK;
	v = json_object_get(root, "eventId");
	if (!v)
		return why(f, "no eventId in a Tencent event_post");
	n = json_string_length(v);
	if (!json_is_string(v) || n == 0 || n >= GW_NAME_MAX ||
	    !is_printable(json_string_value(v), n))
		return why(f, "eventId is not 1..%d printable ASCII bytes", GW_NAME_MAX - 1);
	memcpy(f->name, json_string_value(v), n + 1);
	v = json_object_get(root, "type");
	if (v && (!json_is_string(v) || !listed(types, json_string_value(v))))
		return why(f, "type \"%s\" is not info, alert, fault or fatal",
			   json_is_string(v) ? shown(json_string_value(v), b) : "?");
	return GW_FRAME_OK;
}

/* {"value":V} or {"value":V,"time":<integer>}: an Alink value with its time. */
static json_t *alink_value(json_t *v)
{
	json_t *value = json_object_get(v, "value"), *time = json_object_get(v, "time");

	if (!json_is_object(v) || !value)
		return NULL;
	if (json_object_size(v) == 1 || (json_object_size(v) == 2 && json_is_integer(time)))
		return value;
	return NULL;
}

/*
 * A line that is a cloud's own message (docs/protocol.md 2.4.1): its params become the fields,
 * the event identifier the name of an event, the clientToken / id the trace. Timestamps and
 * the Tencent event type are checked, not kept: the record is stamped when it is decoded.
 */
static enum gw_frame_error parse_envelope(json_t *root, json_t *params, struct gw_frame *f)
{
	enum gw_frame_error err;
	enum shape shape = TENCENT_REPORT; /* read_method() sets it */
	const char *key;
	json_t *v, *value, *outputs;
	char k[41];

	err = read_method(json_object_get(root, "method"), f, &shape);
	if (err != GW_FRAME_OK)
		return err;
	json_object_foreach(root, key, v)
		if (!listed(shape_members(shape), key))
			return why(f, "member \"%s\" is not part of %s", shown(key, k),
				   shape_names[shape]);
	err = read_trace(root, shape == TENCENT_REPORT || shape == TENCENT_EVENT, f);
	if (err == GW_FRAME_OK)
		err = read_members(root, shape, f);
	if (err != GW_FRAME_OK)
		return err;
	if (shape == TENCENT_EVENT || shape == ALINK_EVENT)
		f->type = GW_FRAME_EVENT;
	/* an Alink event's outputs: in params (the SDKs' form) or in params.value */
	outputs = shape == ALINK_EVENT ? alink_value(params) : NULL;
	if (outputs && json_is_object(outputs))
		params = outputs;
	if (f->type == GW_FRAME_TELEMETRY && json_object_size(params) == 0)
		return why(f, "params is empty (%s needs at least one property)",
			   shape_names[shape]);
	json_object_foreach(params, key, v) {
		value = shape == ALINK_PROPERTY ? alink_value(v) : NULL;
		err = take_value(f, key, value ? value : v, true);
		if (err != GW_FRAME_OK)
			return err;
	}
	return GW_FRAME_OK;
}

/* A JSON line: a flat object (docs/protocol.md 2.4), or a cloud's message (2.4.1, *envelope). */
static enum gw_frame_error parse_json(const char *p, const char *end, struct gw_frame *f,
				      bool *envelope)
{
	enum gw_frame_error err = GW_FRAME_OK;
	json_error_t jerr;
	const char *key;
	json_t *root, *v, *params;

	root = json_loadb(p, (size_t)(end - p), 0, &jerr);
	if (!root)
		return why(f, "not JSON: %s (at byte %d)", jerr.text, jerr.position);
	if (!json_is_object(root)) {
		err = why(f, "not a JSON object");
		goto out;
	}
	params = json_object_get(root, "params");
	*envelope = json_is_object(params);
	if (*envelope) {
		err = parse_envelope(root, params, f);
		goto out;
	}
	if (json_object_size(root) == 0) {
		err = why(f, "empty object (a JSON line needs at least one member)");
		goto out;
	}
	json_object_foreach(root, key, v) {
		err = take_value(f, key, v, false);
		if (err != GW_FRAME_OK)
			break;
	}
out:
	json_decref(root);
	return err;
}

/* A telemetry record with a string field "event" is an event named by it. */
static enum gw_frame_error promote_event(struct gw_frame *f)
{
	size_t i, len;

	for (i = 0; i < f->n_fields; i++) {
		if (strcmp(f->fields[i].key, "event") != 0 ||
		    f->fields[i].value.type != GW_VALUE_STRING)
			continue;
		len = strlen(f->fields[i].value.s);
		if (len == 0 || len >= GW_NAME_MAX)
			return GW_FRAME_ERR_MALFORMED;
		memcpy(f->name, f->fields[i].value.s, len + 1);
		memmove(&f->fields[i], &f->fields[i + 1],
			(f->n_fields - i - 1) * sizeof(f->fields[0]));
		f->n_fields--;
		memset(&f->fields[f->n_fields], 0, sizeof(f->fields[0]));
		f->type = GW_FRAME_EVENT;
		break;
	}
	return GW_FRAME_OK;
}

/* Parses "@N" followed by one address separator; returns the byte after it, or NULL. */
static const char *parse_addr(const char *p, const char *end, uint8_t *ret)
{
	unsigned int v = 0, digits = 0;

	for (p++; p < end && is_digit(*p) && digits < 4; p++, digits++)
		v = v * 10 + (unsigned int)(*p - '0');
	if (digits == 0 || digits > 3 || v > 254 || p == end)
		return NULL;
	if (!is_sep(*p) && *p != ':')
		return NULL;
	*ret = (uint8_t)v;
	return p + 1;
}

enum gw_frame_error gw_text_parse_line(const char *line, size_t len, struct gw_frame *ret)
{
	const char *p = line, *end = line + len, *body, *star, *q;
	enum gw_frame_error err;
	bool envelope = false;
	uint8_t sum = 0;
	int hi, lo;

	memset(ret, 0, sizeof(*ret));
	ret->type = GW_FRAME_TELEMETRY;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (p < end && *p == '$')
		p++;
	body = p;

	/* Best effort first, so that even a line that fails later is counted for its node. */
	if (p < end && *p == '@') {
		p = parse_addr(p, end, &ret->addr);
		if (!p)
			return GW_FRAME_ERR_MALFORMED;
		ret->has_addr = true;
	}

	for (q = body; q < end; q++)
		if ((unsigned char)*q < 0x20 ? *q != '\t' : (unsigned char)*q > 0x7e)
			return GW_FRAME_ERR_MALFORMED;

	star = end - body >= 3 ? end - 3 : NULL;
	if (star && *star == '*' && !memchr(star + 1, '*', 2)) {
		hi = hex_value(star[1]);
		lo = hex_value(star[2]);
		if (hi >= 0 && lo >= 0) {
			for (q = body; q < star; q++)
				sum ^= (uint8_t)*q;
			if (sum != (uint8_t)(hi << 4 | lo))
				return GW_FRAME_ERR_CRC;
			end = star;
			if (p > end)
				return GW_FRAME_ERR_MALFORMED;
		}
	}

	/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): line is never NULL (len > 0) */
	while (p < end && is_sep(*p))
		p++;
	if (p == end)
		return GW_FRAME_ERR_MALFORMED;
	if (*p == '{')
		err = parse_json(p, end, ret, &envelope);
	else if (end - p >= 5 && memcmp(p, "hello", 5) == 0 && (end - p == 5 || is_sep(p[5])))
		return parse_hello(p + 5, end, ret);
	else
		err = parse_pairs(p, end, ret);
	if (err != GW_FRAME_OK)
		return err;
	/* a cloud's message says itself whether it is an event */
	return envelope ? GW_FRAME_OK : promote_event(ret);
}
