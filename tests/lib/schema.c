/* SPDX-License-Identifier: MIT */
/*
 * The answer of `sensorgwctl status --json` checked against docs/status.schema.json, with the
 * JSON Schema subset that file uses: type, enum, required, properties, additionalProperties,
 * items. One checker for every test that reads the status (fixture.h), and the one way they
 * read it (fx_status_json()).
 */

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "fixture.h"

static bool type_is(const json_t *v, const char *t)
{
	if (!strcmp(t, "object"))
		return json_is_object(v);
	if (!strcmp(t, "array"))
		return json_is_array(v);
	if (!strcmp(t, "string"))
		return json_is_string(v);
	if (!strcmp(t, "integer"))
		return json_is_integer(v);
	if (!strcmp(t, "boolean"))
		return json_is_boolean(v);
	if (!strcmp(t, "null"))
		return json_is_null(v);
	ck_abort_msg("schema: unknown type %s", t);
	return false;
}

static void validate(const json_t *schema, const json_t *v, const char *path)
{
	const json_t *type = json_object_get(schema, "type");
	const json_t *e, *props = json_object_get(schema, "properties");
	const json_t *extra = json_object_get(schema, "additionalProperties");
	const char *key;
	json_t *sub;
	size_t i;
	bool ok = false;

	if (json_is_string(type)) {
		ok = type_is(v, json_string_value(type));
	} else {
		json_array_foreach(type, i, e)
			ok = ok || type_is(v, json_string_value(e));
	}
	ck_assert_msg(ok, "%s: wrong type", path);
	if ((e = json_object_get(schema, "enum"))) {
		ok = false;
		json_array_foreach(e, i, sub)
			ok = ok || json_equal(sub, v);
		ck_assert_msg(ok, "%s: %s is not one of the documented values", path,
			      json_string_value(v) ? json_string_value(v) : "(value)");
	}
	json_array_foreach(json_object_get(schema, "required"), i, e)
		ck_assert_msg(json_object_get(v, json_string_value(e)), "%s: %s missing", path,
			      json_string_value(e));
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, sub) {
			char p[256];
			const json_t *s = json_object_get(props, key);

			snprintf(p, sizeof(p), "%s.%s", path, key);
			if (!s && json_is_object(extra))
				s = extra;
			ck_assert_msg(s || !json_is_false(extra), "%s: not documented", p);
			if (s)
				validate(s, sub, p);
		}
	}
	if (json_is_array(v) && json_object_get(schema, "items"))
		json_array_foreach((json_t *)v, i, sub) {
			char p[256];

			snprintf(p, sizeof(p), "%s[%zu]", path, i);
			validate(json_object_get(schema, "items"), sub, p);
		}
}

void fx_check_status_schema(const json_t *status)
{
	char path[4096];
	json_error_t err;
	json_t *schema;

	snprintf(path, sizeof(path), "%s/docs/status.schema.json", fx_env("GW_SOURCE_ROOT"));
	schema = json_load_file(path, 0, &err);
	ck_assert_msg(schema, "%s: %s", path, err.text);
	validate(schema, status, "$");
	json_decref(schema);
}

json_t *fx_status_json(void)
{
	const char *const argv[] = { fx_env("GW_CTL"), "status",           "--json",
				     "--socket",       fx_path("control"), NULL };
	char *out = NULL, *err = NULL;
	json_error_t jerr;
	json_t *o;
	int st = fx_run(argv, &out, &err, 10000);

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status failed: %s", err);
	o = json_loads(out, 0, &jerr);
	ck_assert_msg(json_is_object(o), "not JSON: %s (%s)", jerr.text, out);
	free(out);
	free(err);
	return o;
}
