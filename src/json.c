/* SPDX-License-Identifier: MIT */
/* Strict JSON reading and compact writing for the cloud protocol modules; see include/gw/json.h. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/json.h"
#include "gw/util.h"

const char *gw_json_error_kind(const json_error_t *err)
{
	switch (json_error_code(err)) {
	case json_error_premature_end_of_input:
		return "truncated JSON";
	case json_error_end_of_input_expected:
		return "data after the JSON value";
	case json_error_duplicate_key:
		return "duplicate key";
	case json_error_null_character:
	case json_error_null_byte_in_key:
		return "NUL character";
	case json_error_invalid_utf8:
		return "invalid UTF-8";
	case json_error_wrong_type:
		return "not a JSON object";
	case json_error_numeric_overflow:
		return "number out of range";
	case json_error_unknown:
	case json_error_out_of_memory:
	case json_error_stack_overflow:
	case json_error_cannot_open_file:
	case json_error_invalid_argument:
	case json_error_invalid_syntax:
	case json_error_invalid_format:
	case json_error_null_value:
	case json_error_item_not_found:
	case json_error_index_out_of_range:
	default:
		return "invalid JSON";
	}
}

int gw_json_load_object(const char *buf, size_t len, size_t max, json_t **ret, char *why,
			size_t why_size)
{
	json_error_t err;
	json_t *root;

	*ret = NULL;
	if (len > max) {
		gw_why_set(why, why_size, "message of %zu bytes exceeds the limit of %zu", len,
			   max);
		return -EMSGSIZE;
	}
	if (!buf || len == 0) {
		gw_why_set(why, why_size, "empty message");
		return -EBADMSG;
	}
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
	if (!root) {
		if (json_error_code(&err) == json_error_out_of_memory)
			return -ENOMEM;
		gw_why_set(why, why_size, "%s at byte %d", gw_json_error_kind(&err), err.position);
		return -EBADMSG;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		gw_why_set(why, why_size, "not a JSON object");
		return -EBADMSG;
	}
	*ret = root;
	return 0;
}

void gw_json_copy_text(char *dst, size_t size, const char *s, size_t n)
{
	size_t i;

	if (n >= size) {
		n = size - 1;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	for (i = 0; i < n; i++)
		dst[i] = ((unsigned char)s[i] < ' ' || s[i] == 0x7f) ? '?' : s[i];
	dst[n] = '\0';
}

const char *gw_json_get_string(json_t *obj, const char *where, const char *name, size_t *len,
			       char *why, size_t why_size)
{
	json_t *v = json_object_get(obj, name);

	if (!v) {
		gw_why_set(why, why_size, "no \"%s%s\"", where, name);
		return NULL;
	}
	if (!json_is_string(v)) {
		gw_why_set(why, why_size, "\"%s%s\" is not a string", where, name);
		return NULL;
	}
	*len = json_string_length(v);
	return json_string_value(v);
}

int gw_json_get_int(json_t *obj, const char *where, const char *name, bool required,
		    json_int_t min, json_int_t max, json_int_t *ret, char *why, size_t why_size)
{
	json_t *v = json_object_get(obj, name);

	if (!v) {
		if (!required)
			return 0;
		gw_why_set(why, why_size, "no \"%s%s\"", where, name);
		return -EBADMSG;
	}
	if (!json_is_integer(v)) {
		gw_why_set(why, why_size, "\"%s%s\" is not an integer", where, name);
		return -EBADMSG;
	}
	if (json_integer_value(v) < min || json_integer_value(v) > max) {
		gw_why_set(why, why_size, "\"%s%s\" out of range", where, name);
		return -EBADMSG;
	}
	*ret = json_integer_value(v);
	return 1;
}

int gw_json_get_text(json_t *obj, const char *where, const char *name, char *dst, size_t size,
		     char *why, size_t why_size)
{
	json_t *v = json_object_get(obj, name);

	dst[0] = '\0';
	if (!v)
		return 0;
	if (!json_is_string(v)) {
		gw_why_set(why, why_size, "\"%s%s\" is not a string", where, name);
		return -EBADMSG;
	}
	gw_json_copy_text(dst, size, json_string_value(v), json_string_length(v));
	return 0;
}

json_t *gw_json_get_object(json_t *obj, const char *where, const char *name, char *why,
			   size_t why_size)
{
	json_t *v = json_object_get(obj, name);

	if (!json_is_object(v)) {
		gw_why_set(why, why_size, v ? "\"%s%s\" is not an object" : "no \"%s%s\"", where,
			   name);
		return NULL;
	}
	return v;
}

void gw_json_wipe_member(json_t *obj, const char *name)
{
	json_t *v = json_object_get(obj, name);

	if (json_is_string(v))
		explicit_bzero((char *)json_string_value(v), json_string_length(v));
}

int gw_json_dump(json_t *o, size_t max, char **ret, size_t *ret_len)
{
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
	size_t n;

	if (!s)
		return -ENOMEM;
	n = strlen(s);
	if (ret_len)
		*ret_len = n;
	if (n > max) {
		free(s);
		return -EMSGSIZE;
	}
	*ret = s;
	return 0;
}
