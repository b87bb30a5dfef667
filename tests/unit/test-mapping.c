/* SPDX-License-Identifier: MIT */
/* Mapping: frame fields to thing-model params, with maps built in memory (no config file). */

#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../helpers/ckrun.h"
#include "gw/mapping.h"

static struct gw_config *config_new(void)
{
	struct gw_config *c = calloc(1, sizeof(*c));

	ck_assert_ptr_nonnull(c);
	return c;
}

static struct gw_config_map *add_map(struct gw_config *c, const char *field, const char *ident,
				     double scale, double offset, enum gw_map_type type,
				     const char *port)
{
	struct gw_config_map *m = &c->maps[c->n_maps++];

	snprintf(m->field, sizeof(m->field), "%s", field);
	snprintf(m->identifier, sizeof(m->identifier), "%s", ident);
	m->scale = scale;
	m->offset = offset;
	m->type = type;
	snprintf(m->port, sizeof(m->port), "%s", port);
	return m;
}

static struct gw_config_map map_of(enum gw_map_type type, double scale, double offset)
{
	struct gw_config_map m = { .field = "x", .identifier = "x", .scale = scale,
				   .offset = offset, .type = type };

	return m;
}

static struct gw_value v_int(int64_t i)
{
	struct gw_value v = { .type = GW_VALUE_INT, .i = i };

	return v;
}

static struct gw_value v_double(double d)
{
	struct gw_value v = { .type = GW_VALUE_DOUBLE, .d = d };

	return v;
}

static struct gw_value v_bool(bool b)
{
	struct gw_value v = { .type = GW_VALUE_BOOL, .b = b };

	return v;
}

static struct gw_value v_string(const char *s)
{
	struct gw_value v = { .type = GW_VALUE_STRING };

	snprintf(v.s, sizeof(v.s), "%s", s);
	return v;
}

static void add_field(struct gw_frame *f, const char *key, struct gw_value v)
{
	struct gw_field *field = &f->fields[f->n_fields++];

	snprintf(field->key, sizeof(field->key), "%s", key);
	field->value = v;
}

/* Maps one value and checks the JSON text it becomes. */
static void assert_maps_to(const struct gw_config_map *m, struct gw_value v, const char *want)
{
	json_t *j = NULL;
	char *text;

	ck_assert_int_eq(gw_mapping_value(m, &v, &j), 0);
	ck_assert_ptr_nonnull(j);
	text = json_dumps(j, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
	ck_assert_str_eq(text, want);
	free(text);
	json_decref(j);
}

static void assert_refused(const struct gw_config_map *m, struct gw_value v)
{
	json_t *j = (json_t *)&j; /* a sentinel: failure must leave it alone */

	ck_assert_int_eq(gw_mapping_value(m, &v, &j), -EINVAL);
	ck_assert_ptr_eq(j, (json_t *)&j);
}

static char *params_text(const struct gw_config *c, const char *port, const struct gw_frame *f)
{
	json_t *params = NULL;
	char *text;

	ck_assert_int_eq(gw_mapping_params(c, port, f, &params), 0);
	ck_assert(json_is_object(params));
	text = json_dumps(params, JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(params);
	return text;
}

START_TEST(test_pass_through)
{
	assert_maps_to(NULL, v_int(412), "412");
	assert_maps_to(NULL, v_int(INT64_MIN), "-9223372036854775808");
	assert_maps_to(NULL, v_double(21.5), "21.5");
	assert_maps_to(NULL, v_double(3), "3.0");
	assert_maps_to(NULL, v_bool(true), "true");
	assert_maps_to(NULL, v_bool(false), "false");
	assert_maps_to(NULL, v_string("v1.2"), "\"v1.2\"");
	assert_maps_to(NULL, v_string(""), "\"\"");
	assert_maps_to(NULL, v_string("23 \xc2\xb0" "C"), "\"23 \xc2\xb0" "C\"");
	assert_refused(NULL, v_double(NAN));
	assert_refused(NULL, v_double(INFINITY));
	assert_refused(NULL, v_string("bad \xff utf-8"));
}
END_TEST

START_TEST(test_auto)
{
	struct gw_config_map same = map_of(GW_MAP_TYPE_AUTO, 1, 0);
	struct gw_config_map tenth = map_of(GW_MAP_TYPE_AUTO, 0.1, 0);
	struct gw_config_map lin = map_of(GW_MAP_TYPE_AUTO, 2, 5);
	struct gw_config_map offset = map_of(GW_MAP_TYPE_AUTO, 1, -40);
	json_t *j = NULL;
	struct gw_value v = v_int(215);

	/* an unchanged int stays an int, exactly, even beyond 2^53 */
	assert_maps_to(&same, v_int(INT64_MAX), "9223372036854775807");
	assert_maps_to(&same, v_double(1.25), "1.25");
	assert_maps_to(&lin, v_int(10), "25.0");
	assert_maps_to(&offset, v_int(65), "25.0");
	assert_maps_to(&lin, v_double(0.5), "6.0");
	assert_maps_to(&lin, v_bool(true), "true");
	assert_maps_to(&lin, v_string("abc"), "\"abc\"");

	ck_assert_int_eq(gw_mapping_value(&tenth, &v, &j), 0);
	ck_assert(json_is_real(j));
	ck_assert_double_eq_tol(json_real_value(j), 21.5, 1e-9);
	json_decref(j);

	lin.scale = 1e308;
	assert_refused(&lin, v_double(10));
	assert_refused(&same, v_double(NAN));
}
END_TEST

START_TEST(test_int)
{
	struct gw_config_map same = map_of(GW_MAP_TYPE_INT, 1, 0);
	struct gw_config_map tenth = map_of(GW_MAP_TYPE_INT, 0.1, 0);
	struct gw_config_map big = map_of(GW_MAP_TYPE_INT, 1e12, 0);

	assert_maps_to(&same, v_int(INT64_MAX), "9223372036854775807");
	assert_maps_to(&tenth, v_int(215), "22");
	assert_maps_to(&tenth, v_int(-215), "-22");
	assert_maps_to(&tenth, v_int(214), "21");
	assert_maps_to(&same, v_double(2.5), "3");
	assert_maps_to(&same, v_double(-2.5), "-3");
	assert_maps_to(&same, v_double(-0.4), "0");
	assert_maps_to(&same, v_bool(true), "1");
	assert_maps_to(&same, v_bool(false), "0");
	assert_maps_to(&same, v_string("42"), "42");
	assert_maps_to(&tenth, v_string("215"), "22");
	assert_maps_to(&same, v_string("-7.6"), "-8");
	assert_refused(&same, v_string("abc"));
	assert_refused(&same, v_string("42abc"));
	assert_refused(&same, v_string(""));
	assert_refused(&same, v_double(1e19));
	assert_refused(&same, v_double(-1e19));
	assert_refused(&same, v_double(0x1p63));
	assert_refused(&big, v_int(INT64_MAX / 1000));
	assert_refused(&same, v_double(NAN));
}
END_TEST

START_TEST(test_float)
{
	struct gw_config_map same = map_of(GW_MAP_TYPE_FLOAT, 1, 0);
	struct gw_config_map tenth = map_of(GW_MAP_TYPE_FLOAT, 0.1, -2.5);

	assert_maps_to(&same, v_int(3), "3.0");
	assert_maps_to(&same, v_double(1.0 / 3), "0.333333333333333");
	assert_maps_to(&tenth, v_int(215), "19.0");
	assert_maps_to(&same, v_bool(true), "1.0");
	assert_maps_to(&same, v_string("21.5"), "21.5");
	assert_refused(&same, v_string("warm"));
	assert_refused(&same, v_double(INFINITY));
}
END_TEST

START_TEST(test_bool)
{
	struct gw_config_map same = map_of(GW_MAP_TYPE_BOOL, 1, 0);
	struct gw_config_map shifted = map_of(GW_MAP_TYPE_BOOL, 1, -1);
	static const char *const yes[] = { "true", "on", "yes", "1", "TRUE", "On", "YES" };
	static const char *const no[] = { "false", "off", "no", "0", "False", "OFF", "No" };

	assert_maps_to(&same, v_int(0), "false");
	assert_maps_to(&same, v_int(5), "true");
	assert_maps_to(&same, v_int(-1), "true");
	assert_maps_to(&same, v_double(0.0), "false");
	assert_maps_to(&same, v_double(0.25), "true");
	assert_maps_to(&shifted, v_int(1), "false");
	assert_maps_to(&same, v_bool(true), "true");
	assert_maps_to(&same, v_bool(false), "false");
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		assert_maps_to(&same, v_string(yes[i]), "true");
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_maps_to(&same, v_string(no[i]), "false");
	assert_refused(&same, v_string("maybe"));
	assert_refused(&same, v_string(""));
	assert_refused(&same, v_string("2"));
	assert_refused(&same, v_double(NAN));
}
END_TEST

START_TEST(test_string)
{
	struct gw_config_map same = map_of(GW_MAP_TYPE_STRING, 1, 0);
	struct gw_config_map tenth = map_of(GW_MAP_TYPE_STRING, 0.1, 0);

	assert_maps_to(&same, v_int(42), "\"42\"");
	assert_maps_to(&same, v_int(INT64_MIN), "\"-9223372036854775808\"");
	assert_maps_to(&tenth, v_int(215), "\"21.5\"");
	assert_maps_to(&same, v_double(1.0 / 3), "\"0.333333333333333\"");
	assert_maps_to(&same, v_double(1e21), "\"1e+21\"");
	assert_maps_to(&same, v_bool(true), "\"true\"");
	assert_maps_to(&same, v_bool(false), "\"false\"");
	assert_maps_to(&same, v_string("idle"), "\"idle\"");
	assert_refused(&same, v_string("\xc3\x28"));
	assert_refused(&same, v_double(NAN));
}
END_TEST

START_TEST(test_params_rename_and_scale)
{
	struct gw_config *c = config_new();
	struct gw_frame f = { .type = GW_FRAME_TELEMETRY };
	json_t *params = NULL;
	char *text;

	add_map(c, "DHT11_T", "temperature", 0.1, 0, GW_MAP_TYPE_FLOAT, "");
	add_map(c, "MQ2", "smoke", 1, 0, GW_MAP_TYPE_AUTO, "");
	add_field(&f, "DHT11_T", v_int(215));
	add_field(&f, "MQ2", v_int(412));
	add_field(&f, "MQ135", v_int(99));
	add_field(&f, "rssi", v_double(-71.5));
	add_field(&f, "door", v_bool(true));
	add_field(&f, "fw", v_string("1.2.3"));

	ck_assert_int_eq(gw_mapping_params(c, "uart0", &f, &params), 0);
	ck_assert_uint_eq(json_object_size(params), 6);
	ck_assert_double_eq_tol(json_real_value(json_object_get(params, "temperature")), 21.5,
				1e-9);
	ck_assert(json_is_integer(json_object_get(params, "smoke")));
	ck_assert_ptr_null(json_object_get(params, "DHT11_T"));
	ck_assert_ptr_null(json_object_get(params, "MQ2"));
	json_decref(params);

	text = params_text(c, "uart0", &f);
	ck_assert_str_eq(text, "{\"MQ135\":99,\"door\":true,\"fw\":\"1.2.3\",\"rssi\":-71.5,"
			       "\"smoke\":412,\"temperature\":21.5}");
	free(text);

	/* without any config every field passes through */
	text = params_text(NULL, "uart0", &f);
	ck_assert_str_eq(text, "{\"DHT11_T\":215,\"MQ135\":99,\"MQ2\":412,\"door\":true,"
			       "\"fw\":\"1.2.3\",\"rssi\":-71.5}");
	free(text);
	free(c);
}
END_TEST

START_TEST(test_params_port_specific_first)
{
	struct gw_config *c = config_new();
	struct gw_frame f = { .type = GW_FRAME_TELEMETRY };
	char *text;

	/* the global map comes first in the file, the port-specific one still wins */
	add_map(c, "MQ2", "smoke", 1, 0, GW_MAP_TYPE_AUTO, "");
	add_map(c, "MQ2", "smoke_kitchen", 2, 0, GW_MAP_TYPE_INT, "uart1");
	add_map(c, "T", "temp_cellar", 1, 0, GW_MAP_TYPE_AUTO, "usb0");
	add_map(c, "T", "temp", 1, 0, GW_MAP_TYPE_AUTO, "");
	add_field(&f, "MQ2", v_int(10));
	add_field(&f, "T", v_int(7));

	text = params_text(c, "uart1", &f);
	ck_assert_str_eq(text, "{\"smoke_kitchen\":20,\"temp\":7}");
	free(text);
	text = params_text(c, "usb0", &f);
	ck_assert_str_eq(text, "{\"smoke\":10,\"temp_cellar\":7}");
	free(text);
	text = params_text(c, NULL, &f);
	ck_assert_str_eq(text, "{\"smoke\":10,\"temp\":7}");
	free(text);
	free(c);
}
END_TEST

START_TEST(test_params_frame_types)
{
	struct gw_config *c = config_new();
	struct gw_frame f = { .type = GW_FRAME_EVENT, .name = "overheat" };
	char *text;

	add_map(c, "level", "alarm_level", 1, 0, GW_MAP_TYPE_STRING, "");
	add_field(&f, "level", v_int(3));
	text = params_text(c, "uart0", &f);
	ck_assert_str_eq(text, "{\"alarm_level\":\"3\"}");
	free(text);

	f.type = GW_FRAME_COMMAND_REPLY;
	f.cmd_id = 7;
	text = params_text(c, "uart0", &f);
	ck_assert_str_eq(text, "{\"alarm_level\":\"3\"}");
	free(text);

	/* these types carry no params, whatever n_fields says */
	f.type = GW_FRAME_HELLO;
	text = params_text(c, "uart0", &f);
	ck_assert_str_eq(text, "{}");
	free(text);
	f.type = GW_FRAME_COMMAND;
	text = params_text(c, "uart0", &f);
	ck_assert_str_eq(text, "{}");
	free(text);
	f.type = GW_FRAME_ACK;
	text = params_text(c, "uart0", &f);
	ck_assert_str_eq(text, "{}");
	free(text);

	/* a telemetry frame without fields */
	f.type = GW_FRAME_TELEMETRY;
	f.n_fields = 0;
	text = params_text(c, "uart0", &f);
	ck_assert_str_eq(text, "{}");
	free(text);
	free(c);
}
END_TEST

START_TEST(test_params_failure)
{
	struct gw_config *c = config_new();
	struct gw_frame f = { .type = GW_FRAME_TELEMETRY };
	json_t *params = (json_t *)&params; /* a sentinel: failure must leave it alone */

	add_map(c, "state", "running", 1, 0, GW_MAP_TYPE_BOOL, "");
	add_field(&f, "MQ2", v_int(1));
	add_field(&f, "state", v_string("sometimes"));
	ck_assert_int_eq(gw_mapping_params(c, "uart0", &f, &params), -EINVAL);
	ck_assert_ptr_eq(params, (json_t *)&params);

	f.n_fields = 0;
	add_field(&f, "name", v_string("\xe2\x82"));
	ck_assert_int_eq(gw_mapping_params(c, "uart0", &f, &params), -EINVAL);
	ck_assert_ptr_eq(params, (json_t *)&params);

	f.n_fields = 0;
	add_field(&f, "bad\xff", v_int(1));
	ck_assert_int_eq(gw_mapping_params(c, "uart0", &f, &params), -EINVAL);
	ck_assert_ptr_eq(params, (json_t *)&params);
	free(c);
}
END_TEST

static Suite *mapping_suite(void)
{
	Suite *s = suite_create("mapping");
	TCase *tc = tcase_create("value");

	tcase_add_test(tc, test_pass_through);
	tcase_add_test(tc, test_auto);
	tcase_add_test(tc, test_int);
	tcase_add_test(tc, test_float);
	tcase_add_test(tc, test_bool);
	tcase_add_test(tc, test_string);
	suite_add_tcase(s, tc);

	tc = tcase_create("params");
	tcase_add_test(tc, test_params_rename_and_scale);
	tcase_add_test(tc, test_params_port_specific_first);
	tcase_add_test(tc, test_params_frame_types);
	tcase_add_test(tc, test_params_failure);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ck_run_suite(mapping_suite());
}
