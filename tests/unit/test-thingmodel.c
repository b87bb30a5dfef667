/* SPDX-License-Identifier: MIT */
/*
 * Thing models: the two console exports of tests/data/models parse to the same model; every
 * conversion and every refusal; parse errors with their positions; malformed files.
 */

#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../helpers/ckrun.h"
#include "gw/cloudmodel.h"
#include "gw/thingmodel.h"

static char *data_path(const char *name)
{
	const char *dir = getenv("GW_TEST_DATA");
	char *p;

	ck_assert_ptr_nonnull(dir);
	ck_assert_int_gt(asprintf(&p, "%s/models/%s", dir, name), 0);
	return p;
}

static struct gw_thingmodel *load(const char *name)
{
	struct gw_thingmodel_error err;
	struct gw_thingmodel *m = NULL;
	char *path = data_path(name);
	int r = gw_thingmodel_load(path, &m, &err);

	ck_assert_msg(r == 0, "%s: %d %u:%u: %s", path, r, err.line, err.column, err.text);
	free(path);
	return m;
}

static char *slurp(const char *name, size_t *len)
{
	char *path = data_path(name), *buf;
	FILE *f = fopen(path, "rb");
	long n;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	free(path);
	*len = (size_t)n;
	return buf;
}

static struct gw_thingmodel *parse_ok(const char *text)
{
	struct gw_thingmodel_error err;
	struct gw_thingmodel *m = NULL;
	int r = gw_thingmodel_parse(text, strlen(text), &m, &err);

	ck_assert_msg(r == 0, "%d %u:%u: %s", r, err.line, err.column, err.text);
	return m;
}

/* Parses text, which must fail with text want at line:column (0: not checked). */
static void parse_fails(const char *text, const char *want, unsigned line, unsigned column)
{
	struct gw_thingmodel *m = (struct gw_thingmodel *)&m;
	struct gw_thingmodel_error err;
	int r = gw_thingmodel_parse(text, strlen(text), &m, &err);

	ck_assert_int_eq(r, -EBADMSG);
	ck_assert_ptr_eq(m, (struct gw_thingmodel *)&m); /* untouched */
	ck_assert_msg(strstr(err.text, want), "\"%s\" is not in \"%s\"", want, err.text);
	if (line)
		ck_assert_msg(err.line == line, "line %u, not %u: %s", err.line, line, err.text);
	if (column)
		ck_assert_msg(err.column == column, "column %u, not %u: %s", err.column, column,
			      err.text);
}

/* ------------------------------------------------------------------------------------------ */

static void same_param(const struct gw_thingmodel_param *a, const struct gw_thingmodel_param *b)
{
	ck_assert_str_eq(a->identifier, b->identifier);
	ck_assert_str_eq(a->name, b->name);
	ck_assert_int_eq(a->type, b->type);
	ck_assert_int_eq(a->writable, b->writable);
	ck_assert_int_eq(a->has_min, b->has_min);
	ck_assert_int_eq(a->has_max, b->has_max);
	ck_assert(a->min == b->min && a->max == b->max && a->step == b->step);
	ck_assert_str_eq(a->unit, b->unit);
	ck_assert_uint_eq(a->max_length, b->max_length);
	ck_assert_uint_eq(a->n_enums, b->n_enums);
	for (size_t i = 0; i < a->n_enums; i++) {
		ck_assert_str_eq(a->enums[i].key, b->enums[i].key);
		ck_assert_int_eq(a->enums[i].value, b->enums[i].value);
		ck_assert_str_eq(a->enums[i].text, b->enums[i].text);
	}
}

START_TEST(test_both_formats_same_model)
{
	struct gw_thingmodel *a = load("aliyun-tsl.json"), *t = load("tencent-template.json");
	const struct gw_thingmodel_param *p;
	const struct gw_thingmodel_event *ea, *et;

	ck_assert_int_eq(a->format, GW_THINGMODEL_ALIYUN);
	ck_assert_int_eq(t->format, GW_THINGMODEL_TENCENT);
	ck_assert_str_eq(a->product, "a1TestProd01");
	ck_assert_str_eq(t->product, "CS0SLTKSYA");
	ck_assert_uint_eq(a->n_services, 2); /* the standard set and get */
	ck_assert_uint_eq(t->n_services, 0);

	ck_assert_uint_eq(a->n_properties, 8);
	ck_assert_uint_eq(t->n_properties, a->n_properties);
	for (size_t i = 0; i < a->n_properties; i++)
		same_param(&a->properties[i], &t->properties[i]);

	/* the standard "post" event of the TSL export is not an event of the model */
	ck_assert_uint_eq(a->n_events, 1);
	ck_assert_uint_eq(t->n_events, 1);
	ck_assert_ptr_null(gw_thingmodel_event(a, "post"));
	ea = gw_thingmodel_event(a, "GasAlarm");
	et = gw_thingmodel_event(t, "GasAlarm");
	ck_assert_ptr_nonnull(ea);
	ck_assert_ptr_nonnull(et);
	ck_assert_int_eq(ea->type, GW_THINGMODEL_EVENT_ALERT);
	ck_assert_int_eq(et->type, GW_THINGMODEL_EVENT_ALERT);
	ck_assert_uint_eq(ea->n_outputs, 2);
	ck_assert_uint_eq(et->n_outputs, 2);
	for (size_t i = 0; i < ea->n_outputs; i++)
		same_param(&ea->outputs[i], &et->outputs[i]);

	/* a close look at some */
	p = gw_thingmodel_property(a, "DHT11_T");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(p->type, GW_THINGMODEL_FLOAT);
	ck_assert(p->has_min && p->min == -20 && p->has_max && p->max == 60 && p->step == 0.1);
	ck_assert_str_eq(p->unit, "°C");
	ck_assert(!p->writable);
	p = gw_thingmodel_property(t, "MQ135");
	ck_assert_int_eq(p->type, GW_THINGMODEL_INT);
	ck_assert(p->min == 0 && p->max == 1000 && p->step == 1);
	p = gw_thingmodel_property(t, "Buzzer");
	ck_assert_int_eq(p->type, GW_THINGMODEL_BOOL);
	ck_assert(p->writable);
	p = gw_thingmodel_property(a, "WorkMode");
	ck_assert_int_eq(p->type, GW_THINGMODEL_ENUM);
	ck_assert_uint_eq(p->n_enums, 3);
	ck_assert_str_eq(p->enums[2].text, "关闭");
	p = gw_thingmodel_event_output(et, "GasType");
	ck_assert_int_eq(p->type, GW_THINGMODEL_STRING);
	ck_assert_uint_eq(p->max_length, 16);
	ck_assert_ptr_null(gw_thingmodel_property(a, "CO2"));
	ck_assert_ptr_null(gw_thingmodel_event_output(ea, "CO2"));

	gw_thingmodel_free(a);
	gw_thingmodel_free(t);
}
END_TEST

START_TEST(test_names)
{
	static const char *const refusals[] = { "ok",           "unknown identifier", "wrong type",
						"out of range", "not in enum",        "too long" };

	for (int r = 0; r < _GW_THINGMODEL_REFUSAL_MAX; r++)
		ck_assert_str_eq(gw_thingmodel_refusal_to_string(r), refusals[r]);
	ck_assert_str_eq(gw_thingmodel_event_type_to_string(GW_THINGMODEL_EVENT_INFO), "info");
	ck_assert_str_eq(gw_thingmodel_event_type_to_string(GW_THINGMODEL_EVENT_ALERT), "alert");
	ck_assert_str_eq(gw_thingmodel_event_type_to_string(GW_THINGMODEL_EVENT_ERROR), "error");
	ck_assert_str_eq(gw_thingmodel_event_type_to_string(GW_THINGMODEL_EVENT_FAULT), "fault");
	ck_assert_str_eq(gw_thingmodel_type_to_string(GW_THINGMODEL_DATE), "date");
	ck_assert_str_eq(gw_thingmodel_type_to_string(GW_THINGMODEL_STRINGENUM), "stringenum");
	ck_assert_str_eq(gw_thingmodel_format_to_string(GW_THINGMODEL_ALIYUN), "aliyun");
	ck_assert_str_eq(gw_thingmodel_format_to_string(GW_THINGMODEL_TENCENT), "tencent");
	ck_assert_ptr_null(gw_thingmodel_free(NULL));
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Conversions, the same against both models */

struct conv {
	const char *id;
	const char *in;  /* JSON */
	const char *out; /* JSON, or NULL: refused with reason */
	enum gw_thingmodel_refusal reason;
};

static const struct conv convs[] = {
	/* float, step 0.1 from 0, 0..10000 */
	{ "MQ2", "30", "30.0", GW_THINGMODEL_OK },
	{ "MQ2", "\"30\"", "30.0", GW_THINGMODEL_OK },
	{ "MQ2", "\"812.37\"", "812.4", GW_THINGMODEL_OK },
	{ "MQ2", "23.94", "23.9", GW_THINGMODEL_OK },
	{ "MQ2", "10000.04", "10000.0", GW_THINGMODEL_OK },
	{ "MQ2", "10000.06", NULL, GW_THINGMODEL_OUT_OF_RANGE },
	{ "MQ2", "-1", NULL, GW_THINGMODEL_OUT_OF_RANGE },
	{ "MQ2", "\"abc\"", NULL, GW_THINGMODEL_WRONG_TYPE },
	{ "MQ2", "\" 30\"", NULL, GW_THINGMODEL_WRONG_TYPE },
	{ "MQ2", "\"30 ppm\"", NULL, GW_THINGMODEL_WRONG_TYPE },
	{ "MQ2", "\"nan\"", NULL, GW_THINGMODEL_WRONG_TYPE },
	{ "MQ2", "null", NULL, GW_THINGMODEL_WRONG_TYPE },
	{ "MQ2", "{}", NULL, GW_THINGMODEL_WRONG_TYPE },
	/* float, step 0.1 from -20, -20..60 */
	{ "DHT11_T", "24", "24.0", GW_THINGMODEL_OK },
	{ "DHT11_T", "\"23.96\"", "24.0", GW_THINGMODEL_OK },
	{ "DHT11_T", "-20.04", "-20.0", GW_THINGMODEL_OK },
	{ "DHT11_T", "-20.06", NULL, GW_THINGMODEL_OUT_OF_RANGE },
	{ "DHT11_T", "60.1", NULL, GW_THINGMODEL_OUT_OF_RANGE },
	/* int, step 1, 0..1000 and 0..100 */
	{ "MQ135", "95", "95", GW_THINGMODEL_OK },
	{ "MQ135", "95.4", "95", GW_THINGMODEL_OK },
	{ "MQ135", "95.6", "96", GW_THINGMODEL_OK },
	{ "MQ135", "\"95\"", "95", GW_THINGMODEL_OK },
	{ "MQ135", "1000.4", "1000", GW_THINGMODEL_OK },
	{ "MQ135", "1001", NULL, GW_THINGMODEL_OUT_OF_RANGE },
	{ "MQ135", "1e300", NULL, GW_THINGMODEL_OUT_OF_RANGE },
	{ "MQ135", "[]", NULL, GW_THINGMODEL_WRONG_TYPE },
	{ "DHT11_H", "55", "55", GW_THINGMODEL_OK },
	{ "DHT11_H", "120", NULL, GW_THINGMODEL_OUT_OF_RANGE },
	{ "DHT11_H", "true", "1", GW_THINGMODEL_OK },
	/* bool */
	{ "Buzzer", "true", "1", GW_THINGMODEL_OK },
	{ "Buzzer", "false", "0", GW_THINGMODEL_OK },
	{ "Buzzer", "1", "1", GW_THINGMODEL_OK },
	{ "Buzzer", "0.0", "0", GW_THINGMODEL_OK },
	{ "Buzzer", "\"0\"", "0", GW_THINGMODEL_OK },
	{ "Buzzer", "\"true\"", "1", GW_THINGMODEL_OK },
	{ "Buzzer", "\"FALSE\"", "0", GW_THINGMODEL_OK },
	{ "Buzzer", "2", NULL, GW_THINGMODEL_NOT_IN_ENUM },
	{ "Buzzer", "0.5", NULL, GW_THINGMODEL_NOT_IN_ENUM },
	{ "Buzzer", "\"on\"", NULL, GW_THINGMODEL_WRONG_TYPE },
	{ "Buzzer", "null", NULL, GW_THINGMODEL_WRONG_TYPE },
	/* enum 0 自动, 1 手动, 2 关闭 */
	{ "WorkMode", "1", "1", GW_THINGMODEL_OK },
	{ "WorkMode", "\"2\"", "2", GW_THINGMODEL_OK },
	{ "WorkMode", "2.0", "2", GW_THINGMODEL_OK },
	{ "WorkMode", "\"手动\"", "1", GW_THINGMODEL_OK },
	{ "WorkMode", "3", NULL, GW_THINGMODEL_NOT_IN_ENUM },
	{ "WorkMode", "1.5", NULL, GW_THINGMODEL_NOT_IN_ENUM },
	{ "WorkMode", "\"turbo\"", NULL, GW_THINGMODEL_NOT_IN_ENUM },
	{ "WorkMode", "[1]", NULL, GW_THINGMODEL_WRONG_TYPE },
	{ "WorkMode", "true", NULL, GW_THINGMODEL_WRONG_TYPE },
	/* not in the model */
	{ "CO2", "400", NULL, GW_THINGMODEL_UNKNOWN_IDENTIFIER },
	{ "mq2", "30", NULL, GW_THINGMODEL_UNKNOWN_IDENTIFIER },
};

static void check_conv(const struct gw_thingmodel *m, const struct conv *c)
{
	enum gw_thingmodel_refusal reason = _GW_THINGMODEL_REFUSAL_MAX;
	json_t *in = json_loads(c->in, JSON_DECODE_ANY, NULL), *out = NULL, *want;
	int r;

	ck_assert_ptr_nonnull(in);
	r = gw_thingmodel_convert(m, c->id, in, &out, &reason);
	if (!c->out) {
		ck_assert_msg(r == -EDOM && reason == c->reason, "%s %s %s: %d %s", c->id, c->in,
			      gw_thingmodel_format_to_string(m->format), r,
			      gw_thingmodel_refusal_to_string(reason));
		ck_assert_ptr_null(out);
	} else {
		char *got;

		ck_assert_msg(r == 0, "%s %s %s: %d %s", c->id, c->in,
			      gw_thingmodel_format_to_string(m->format), r,
			      gw_thingmodel_refusal_to_string(reason));
		ck_assert_int_eq(reason, GW_THINGMODEL_OK);
		want = json_loads(c->out, JSON_DECODE_ANY, NULL);
		ck_assert_ptr_nonnull(want);
		got = json_dumps(out, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
		/* json_equal is type-strict: 30 and 30.0 differ */
		ck_assert_msg(json_equal(out, want), "%s %s: %s, not %s", c->id, c->in, got,
			      c->out);
		free(got);
		json_decref(want);
		json_decref(out);
	}
	json_decref(in);
}

START_TEST(test_convert)
{
	struct gw_thingmodel *a = load("aliyun-tsl.json"), *t = load("tencent-template.json");

	for (size_t i = 0; i < sizeof(convs) / sizeof(convs[0]); i++) {
		check_conv(a, &convs[i]);
		check_conv(t, &convs[i]);
	}
	gw_thingmodel_free(a);
	gw_thingmodel_free(t);
}
END_TEST

static struct gw_value v_bool(bool b)
{
	return (struct gw_value){ .type = GW_VALUE_BOOL, .b = b };
}

static struct gw_value v_int(int64_t i)
{
	return (struct gw_value){ .type = GW_VALUE_INT, .i = i };
}

static struct gw_value v_double(double d)
{
	return (struct gw_value){ .type = GW_VALUE_DOUBLE, .d = d };
}

static struct gw_value v_string(const char *s)
{
	struct gw_value v = { .type = GW_VALUE_STRING };

	snprintf(v.s, sizeof(v.s), "%s", s);
	return v;
}

START_TEST(test_convert_frame_value)
{
	struct gw_thingmodel *m = load(_i ? "tencent-template.json" : "aliyun-tsl.json");
	enum gw_thingmodel_refusal reason;
	struct gw_value v;
	json_t *out = NULL;

	v = v_bool(true);
	ck_assert_int_eq(gw_thingmodel_convert_value(m, "Buzzer", &v, &out, &reason), 0);
	ck_assert(json_is_integer(out) && json_integer_value(out) == 1);
	json_decref(out);
	v = v_string("21.5");
	ck_assert_int_eq(gw_thingmodel_convert_value(m, "DHT11_T", &v, &out, NULL), 0);
	ck_assert(json_is_real(out) && json_real_value(out) == 21.5);
	json_decref(out);
	v = v_int(2);
	ck_assert_int_eq(gw_thingmodel_convert_value(m, "WorkMode", &v, &out, NULL), 0);
	ck_assert(json_is_integer(out) && json_integer_value(out) == 2);
	json_decref(out);
	out = NULL;

	v = v_double(NAN);
	ck_assert_int_eq(gw_thingmodel_convert_value(m, "DHT11_T", &v, &out, &reason), -EDOM);
	ck_assert_int_eq(reason, GW_THINGMODEL_WRONG_TYPE);
	v = v_double(INFINITY);
	ck_assert_int_eq(gw_thingmodel_convert_value(m, "MQ2", &v, &out, &reason), -EDOM);
	ck_assert_int_eq(reason, GW_THINGMODEL_WRONG_TYPE);
	v = v_string("bad\xff");
	ck_assert_int_eq(gw_thingmodel_convert_value(m, "MQ2", &v, &out, &reason), -EDOM);
	ck_assert_int_eq(reason, GW_THINGMODEL_WRONG_TYPE);
	v = v_int(7);
	ck_assert_int_eq(gw_thingmodel_convert_value(m, "CO2", &v, &out, &reason), -EDOM);
	ck_assert_int_eq(reason, GW_THINGMODEL_UNKNOWN_IDENTIFIER);
	ck_assert_ptr_null(out);
	gw_thingmodel_free(m);
}
END_TEST

struct refused {
	char ids[8][32];
	enum gw_thingmodel_refusal reasons[8];
	size_t n;
};

static void on_refused(const char *identifier, json_t *value, enum gw_thingmodel_refusal reason,
		       void *user_data)
{
	struct refused *r = user_data;

	ck_assert_ptr_nonnull(value);
	ck_assert_uint_lt(r->n, 8);
	snprintf(r->ids[r->n], sizeof(r->ids[0]), "%s", identifier);
	r->reasons[r->n++] = reason;
}

START_TEST(test_convert_params)
{
	struct gw_thingmodel *m = load(_i ? "tencent-template.json" : "aliyun-tsl.json");
	json_t *params, *out = NULL, *want;
	struct refused ref = { 0 };

	params = json_loads("{\"MQ2\":\"30\",\"CO2\":1,\"Buzzer\":true,\"DHT11_H\":120,"
			    "\"WorkMode\":\"自动\"}",
			    0, NULL);
	ck_assert_int_eq(gw_thingmodel_convert_params(m, NULL, params, &out, on_refused, &ref), 0);
	want = json_loads("{\"MQ2\":30.0,\"Buzzer\":1,\"WorkMode\":0}", 0, NULL);
	ck_assert(json_equal(out, want));
	/* in their order */
	ck_assert_str_eq(json_object_iter_key(json_object_iter(out)), "MQ2");
	ck_assert_uint_eq(ref.n, 2);
	ck_assert_str_eq(ref.ids[0], "CO2");
	ck_assert_int_eq(ref.reasons[0], GW_THINGMODEL_UNKNOWN_IDENTIFIER);
	ck_assert_str_eq(ref.ids[1], "DHT11_H");
	ck_assert_int_eq(ref.reasons[1], GW_THINGMODEL_OUT_OF_RANGE);
	json_decref(out);
	json_decref(want);
	json_decref(params);

	/* an event's outputs */
	memset(&ref, 0, sizeof(ref));
	params = json_loads("{\"GasType\":\"MQ2\",\"Concentration\":\"812.37\"}", 0, NULL);
	ck_assert_int_eq(gw_thingmodel_convert_params(m, "GasAlarm", params, &out, NULL, NULL), 0);
	want = json_loads("{\"GasType\":\"MQ2\",\"Concentration\":812.4}", 0, NULL);
	ck_assert(json_equal(out, want));
	json_decref(out);
	json_decref(want);
	json_decref(params);

	params = json_loads("{\"GasType\":\"methane and propane\",\"Concentration\":-3,"
			    "\"MQ2\":30,\"Level\":2}",
			    0, NULL);
	ck_assert_int_eq(gw_thingmodel_convert_params(m, "GasAlarm", params, &out, on_refused,
						      &ref),
			 0);
	ck_assert_uint_eq(json_object_size(out), 0);
	ck_assert_uint_eq(ref.n, 4);
	ck_assert_int_eq(ref.reasons[0], GW_THINGMODEL_TOO_LONG);
	ck_assert_int_eq(ref.reasons[1], GW_THINGMODEL_OUT_OF_RANGE);
	ck_assert_int_eq(ref.reasons[2], GW_THINGMODEL_UNKNOWN_IDENTIFIER); /* a property */
	ck_assert_int_eq(ref.reasons[3], GW_THINGMODEL_UNKNOWN_IDENTIFIER);
	json_decref(out);
	out = NULL;

	ck_assert_int_eq(gw_thingmodel_convert_params(m, "Smoke", params, &out, on_refused, &ref),
			 -ENOENT);
	ck_assert_uint_eq(ref.n, 4);
	json_decref(params);
	params = json_integer(1);
	ck_assert_int_eq(gw_thingmodel_convert_params(m, NULL, params, &out, NULL, NULL), -EINVAL);
	ck_assert_ptr_null(out);
	json_decref(params);
	gw_thingmodel_free(m);
}
END_TEST

/* The cloud core's step: a record's params (or its event's outputs) replaced by their
 * conversion, what was left out counted; an unknown event and nothing left said apart. */
START_TEST(test_cloud_model_apply)
{
	struct gw_thingmodel *m = load(_i ? "tencent-template.json" : "aliyun-tsl.json");
	struct refused ref = { 0 };
	json_t *o, *want;

	o = json_loads("{\"device\":\"d1\",\"ts\":1,\"params\":{\"MQ2\":\"30\",\"Buzzer\":true,"
		       "\"DHT11_H\":120,\"CO2\":1}}",
		       0, NULL);
	ck_assert_int_eq(gw_cloud_model_apply(m, o, on_refused, &ref), 2);
	want = json_loads("{\"device\":\"d1\",\"ts\":1,\"params\":{\"MQ2\":30.0,\"Buzzer\":1}}", 0,
			  NULL);
	ck_assert(json_equal(o, want));
	ck_assert_uint_eq(ref.n, 2);
	json_decref(want);
	json_decref(o);

	o = json_loads("{\"event\":\"GasAlarm\",\"params\":{\"GasType\":\"MQ2\","
		       "\"Concentration\":\"812.37\"}}",
		       0, NULL);
	ck_assert_int_eq(gw_cloud_model_apply(m, o, NULL, NULL), 0);
	want = json_loads("{\"event\":\"GasAlarm\",\"params\":{\"GasType\":\"MQ2\","
			  "\"Concentration\":812.4}}",
			  0, NULL);
	ck_assert(json_equal(o, want));
	json_decref(want);
	json_decref(o);

	/* every value refused: o stays as it was */
	o = json_loads("{\"params\":{\"DHT11_H\":120,\"CO2\":1}}", 0, NULL);
	want = json_deep_copy(o);
	ck_assert_int_eq(gw_cloud_model_apply(m, o, NULL, NULL), -ENODATA);
	ck_assert(json_equal(o, want));
	json_decref(want);
	json_decref(o);

	o = json_loads("{\"event\":\"Smoke\",\"params\":{\"a\":1}}", 0, NULL);
	ck_assert_int_eq(gw_cloud_model_apply(m, o, NULL, NULL), -ENOENT);
	json_decref(o);
	o = json_loads("{\"params\":[1]}", 0, NULL);
	ck_assert_int_eq(gw_cloud_model_apply(m, o, NULL, NULL), -EBADMSG);
	json_decref(o);
	/* an empty params object stays empty: nothing was refused */
	o = json_loads("{\"params\":{}}", 0, NULL);
	ck_assert_int_eq(gw_cloud_model_apply(m, o, NULL, NULL), 0);
	json_decref(o);
	ck_assert_str_eq(gw_cloud_model_event_type(m, "GasAlarm", "info"), "alert");
	ck_assert_str_eq(gw_cloud_model_event_type(m, "Smoke", "info"), "info");
	ck_assert_str_eq(gw_cloud_model_event_type(NULL, "GasAlarm", "info"), "info");
	ck_assert_str_eq(gw_cloud_model_event_type(m, NULL, "x"), "x");
	gw_thingmodel_free(m);
}
END_TEST

START_TEST(test_event_types)
{
	struct gw_thingmodel *m;
	enum gw_thingmodel_event_type t = GW_THINGMODEL_EVENT_INFO;

	m = parse_ok("{\"version\":\"1.0\",\"profile\":{\"ProductId\":\"P\"},\"events\":["
		     "{\"id\":\"a\",\"name\":\"A\",\"type\":\"info\",\"params\":[]},"
		     "{\"id\":\"b\",\"name\":\"B\",\"type\":\"alert\",\"params\":[]},"
		     "{\"id\":\"c\",\"name\":\"C\",\"type\":\"fault\",\"params\":[]}]}");
	ck_assert_int_eq(gw_thingmodel_event_type(m, "c", &t), 0);
	ck_assert_int_eq(t, GW_THINGMODEL_EVENT_FAULT);
	ck_assert_int_eq(gw_thingmodel_event_type(m, "b", &t), 0);
	ck_assert_int_eq(t, GW_THINGMODEL_EVENT_ALERT);
	ck_assert_int_eq(gw_thingmodel_event_type(m, "a", &t), 0);
	ck_assert_int_eq(t, GW_THINGMODEL_EVENT_INFO);
	t = GW_THINGMODEL_EVENT_ALERT;
	ck_assert_int_eq(gw_thingmodel_event_type(m, "d", &t), -ENOENT);
	ck_assert_int_eq(t, GW_THINGMODEL_EVENT_ALERT);
	gw_thingmodel_free(m);

	m = parse_ok("{\"schema\":\"s\",\"events\":[{\"identifier\":\"e\",\"type\":\"error\","
		     "\"outputData\":[]}]}");
	ck_assert_int_eq(gw_thingmodel_event_type(m, "e", &t), 0);
	ck_assert_int_eq(t, GW_THINGMODEL_EVENT_ERROR);
	gw_thingmodel_free(m);

	/* each format has only its own */
	parse_fails("{\"schema\":\"s\",\"events\":[{\"identifier\":\"e\",\"type\":\"fault\"}]}",
		    "events[0].type: unknown event type \"fault\" (info, alert or error)", 1, 0);
	parse_fails("{\"version\":\"1.0\",\"events\":[{\"id\":\"e\",\"type\":\"error\"}]}",
		    "events[0].type: unknown event type \"error\" (info, alert or fault)", 1, 0);
	parse_fails("{\"version\":\"1.0\",\"events\":[{\"id\":\"e\",\"type\":\"fatal\"}]}",
		    "unknown event type \"fatal\"", 1, 0);
}
END_TEST

START_TEST(test_convert_date)
{
	static const char *const aliyun = "{\"schema\":\"s\",\"properties\":[{\"identifier\":\"T\","
					  "\"dataType\":{\"type\":\"date\",\"specs\":{}}}]}";
	static const char *const tencent = "{\"version\":\"1.0\",\"properties\":[{\"id\":\"T\","
					   "\"define\":{\"type\":\"timestamp\"}}]}";
	struct gw_thingmodel *a = parse_ok(aliyun), *t = parse_ok(tencent);
	static const struct conv date_a[] = {
		{ "T", "1700000000000", "\"1700000000000\"", GW_THINGMODEL_OK },
		{ "T", "\"1700000000000\"", "\"1700000000000\"", GW_THINGMODEL_OK },
		{ "T", "1700000000000.0", "\"1700000000000\"", GW_THINGMODEL_OK },
		{ "T", "0", "\"0\"", GW_THINGMODEL_OK },
		{ "T", "-1", NULL, GW_THINGMODEL_OUT_OF_RANGE },
		{ "T", "\"-1\"", NULL, GW_THINGMODEL_OUT_OF_RANGE },
		{ "T", "1e300", NULL, GW_THINGMODEL_OUT_OF_RANGE },
		{ "T", "1.5", NULL, GW_THINGMODEL_WRONG_TYPE },
		{ "T", "\"17e11\"", NULL, GW_THINGMODEL_WRONG_TYPE },
		{ "T", "\"+1\"", NULL, GW_THINGMODEL_WRONG_TYPE },
		{ "T", "\"\"", NULL, GW_THINGMODEL_WRONG_TYPE },
		{ "T", "true", NULL, GW_THINGMODEL_WRONG_TYPE },
	};
	static const struct conv date_t[] = {
		{ "T", "1700000000", "1700000000", GW_THINGMODEL_OK },
		{ "T", "\"1700000000\"", "1700000000", GW_THINGMODEL_OK },
		{ "T", "-5", NULL, GW_THINGMODEL_OUT_OF_RANGE },
		{ "T", "\"soon\"", NULL, GW_THINGMODEL_WRONG_TYPE },
	};

	ck_assert_int_eq(a->properties[0].type, GW_THINGMODEL_DATE);
	ck_assert_int_eq(t->properties[0].type, GW_THINGMODEL_DATE);
	for (size_t i = 0; i < sizeof(date_a) / sizeof(date_a[0]); i++)
		check_conv(a, &date_a[i]);
	for (size_t i = 0; i < sizeof(date_t) / sizeof(date_t[0]); i++)
		check_conv(t, &date_t[i]);
	gw_thingmodel_free(a);
	gw_thingmodel_free(t);
}
END_TEST

START_TEST(test_convert_strings)
{
	struct gw_thingmodel *a, *t;
	static const struct conv text_a[] = {
		{ "S", "\"abcd\"", "\"abcd\"", GW_THINGMODEL_OK },
		{ "S", "\"abcde\"", NULL, GW_THINGMODEL_TOO_LONG },
		{ "S", "\"温度\"", "\"温度\"", GW_THINGMODEL_OK }, /* 6 bytes */
		{ "S", "\"温度x\"", NULL, GW_THINGMODEL_TOO_LONG },
		{ "S", "42", "\"42\"", GW_THINGMODEL_OK },
		{ "S", "2.5", "\"2.5\"", GW_THINGMODEL_OK },
		{ "S", "true", NULL, GW_THINGMODEL_WRONG_TYPE },
		{ "S", "null", NULL, GW_THINGMODEL_WRONG_TYPE },
		{ "U", "\"any length at all, no specs\"", "\"any length at all, no specs\"",
		  GW_THINGMODEL_OK },
	};
	static const struct conv text_t[] = {
		{ "S", "\"ab\"", "\"ab\"", GW_THINGMODEL_OK },
		{ "S", "\"a\"", NULL, GW_THINGMODEL_OUT_OF_RANGE },
		{ "S", "\"abcd\"", "\"abcd\"", GW_THINGMODEL_OK },
		{ "S", "\"abcde\"", NULL, GW_THINGMODEL_TOO_LONG },
		{ "E", "\"low\"", "\"low\"", GW_THINGMODEL_OK },
		{ "E", "\"高\"", "\"high\"", GW_THINGMODEL_OK },
		{ "E", "\"mid\"", NULL, GW_THINGMODEL_NOT_IN_ENUM },
		{ "E", "1", NULL, GW_THINGMODEL_NOT_IN_ENUM },
		{ "E", "true", NULL, GW_THINGMODEL_WRONG_TYPE },
		{ "N", "2", "\"2\"", GW_THINGMODEL_OK },
	};

	a = parse_ok("{\"schema\":\"s\",\"properties\":["
		     "{\"identifier\":\"S\",\"dataType\":{\"type\":\"text\",\"specs\":"
		     "{\"length\":\"6\"}}},"
		     "{\"identifier\":\"U\",\"dataType\":{\"type\":\"text\"}}]}");
	/* Aliyun's length counts bytes, hence 6 for the test of 温度 */
	a->properties[0].max_length = 4;
	check_conv(a, &text_a[0]);
	check_conv(a, &text_a[1]);
	a->properties[0].max_length = 6;
	for (size_t i = 2; i < sizeof(text_a) / sizeof(text_a[0]); i++)
		check_conv(a, &text_a[i]);
	gw_thingmodel_free(a);

	t = parse_ok("{\"version\":\"1.0\",\"profile\":{\"ProductId\":\"P\"},\"properties\":["
		     "{\"id\":\"S\",\"define\":{\"type\":\"string\",\"min\":\"2\",\"max\":\"4\"}},"
		     "{\"id\":\"E\",\"define\":{\"type\":\"stringenum\",\"mapping\":"
		     "{\"low\":\"低\",\"high\":\"高\"}}},"
		     "{\"id\":\"N\",\"define\":{\"type\":\"stringenum\",\"mapping\":"
		     "{\"1x\":\"one\",\"2\":\"two\"}}}]}");
	ck_assert_int_eq(t->properties[1].type, GW_THINGMODEL_STRINGENUM);
	for (size_t i = 0; i < sizeof(text_t) / sizeof(text_t[0]); i++)
		check_conv(t, &text_t[i]);
	gw_thingmodel_free(t);
}
END_TEST

START_TEST(test_convert_struct_array)
{
	struct gw_thingmodel *a, *t;
	static const struct conv conv_a[] = {
		{ "P", "{\"a\":\"5\",\"b\":\"x\"}", "{\"a\":5,\"b\":\"x\"}", GW_THINGMODEL_OK },
		{ "P", "{}", "{}", GW_THINGMODEL_OK },
		{ "P", "{\"a\":11}", NULL, GW_THINGMODEL_OUT_OF_RANGE },
		{ "P", "{\"c\":1}", NULL, GW_THINGMODEL_UNKNOWN_IDENTIFIER },
		{ "P", "\"x\"", NULL, GW_THINGMODEL_WRONG_TYPE },
		{ "L", "[1,\"2\"]", "[1,2]", GW_THINGMODEL_OK },
		{ "L", "[]", "[]", GW_THINGMODEL_OK },
		{ "L", "[1,2,3]", NULL, GW_THINGMODEL_TOO_LONG },
		{ "L", "[1,\"x\"]", NULL, GW_THINGMODEL_WRONG_TYPE },
		{ "L", "{}", NULL, GW_THINGMODEL_WRONG_TYPE },
		{ "Q", "[{\"n\":1.25}]", "[{\"n\":1.25}]", GW_THINGMODEL_OK },
		{ "Q", "[{\"n\":true}]", "[{\"n\":1.0}]", GW_THINGMODEL_OK },
	};

	a = parse_ok(
		"{\"schema\":\"s\",\"properties\":["
		"{\"identifier\":\"P\",\"dataType\":{\"type\":\"struct\",\"specs\":["
		"{\"identifier\":\"a\",\"name\":\"A\",\"dataType\":{\"type\":\"int\",\"specs\":"
		"{\"min\":\"0\",\"max\":\"10\"}}},"
		"{\"identifier\":\"b\",\"name\":\"B\",\"dataType\":{\"type\":\"text\",\"specs\":"
		"{\"length\":\"8\"}}}]}},"
		"{\"identifier\":\"L\",\"dataType\":{\"type\":\"array\",\"specs\":{\"size\":\"2\","
		"\"item\":{\"type\":\"int\"}}}},"
		"{\"identifier\":\"Q\",\"dataType\":{\"type\":\"array\",\"specs\":{\"size\":\"10\","
		"\"item\":{\"dataType\":{\"type\":\"struct\",\"specs\":[{\"identifier\":\"n\","
		"\"dataType\":{\"type\":\"double\",\"specs\":{}}}]}}}}}]}");
	ck_assert_uint_eq(a->properties[0].n_members, 2);
	ck_assert_uint_eq(a->properties[1].max_items, 2);
	ck_assert_int_eq(a->properties[2].item->type, GW_THINGMODEL_STRUCT);
	ck_assert_int_eq(a->properties[2].item->members[0].type, GW_THINGMODEL_DOUBLE);
	for (size_t i = 0; i < sizeof(conv_a) / sizeof(conv_a[0]); i++)
		check_conv(a, &conv_a[i]);
	gw_thingmodel_free(a);

	/* the SDK example's struct: members carry "dataType" in a Tencent template */
	t = parse_ok("{\"version\":\"1.0\",\"properties\":[{\"id\":\"position\",\"define\":{"
		     "\"type\":\"struct\",\"specs\":[{\"id\":\"longitude\",\"name\":\"经度\","
		     "\"dataType\":{\"type\":\"int\",\"min\":\"-180\",\"max\":\"180\","
		     "\"start\":\"1\",\"step\":\"1\",\"unit\":\"度\"}}]}},"
		     "{\"id\":\"v\",\"define\":{\"type\":\"array\"}}]}");
	ck_assert_int_eq(t->properties[0].members[0].min, -180);
	ck_assert_str_eq(t->properties[0].members[0].unit, "度");
	{
		static const struct conv c1 = { "position", "{\"longitude\":\"-181\"}", NULL,
						GW_THINGMODEL_OUT_OF_RANGE };
		static const struct conv c2 = { "v", "[1,\"a\",true]", "[1,\"a\",true]",
						GW_THINGMODEL_OK };

		check_conv(t, &c1);
		check_conv(t, &c2);
	}
	gw_thingmodel_free(t);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Parse errors and their positions */

START_TEST(test_parse_errors_syntax)
{
	struct gw_thingmodel *m = (struct gw_thingmodel *)&m;
	struct gw_thingmodel_error err;
	size_t len;
	char *buf = slurp("aliyun-tsl.json", &len), *big;

	/* truncated in the middle of line 30 */
	{
		size_t cut = 0;
		unsigned lines = 1;

		while (lines < 30)
			if (buf[cut++] == '\n')
				lines++;
		cut += 5;
		ck_assert_int_eq(gw_thingmodel_parse(buf, cut, &m, &err), -EBADMSG);
		ck_assert_ptr_eq(m, (struct gw_thingmodel *)&m);
		ck_assert_uint_eq(err.line, 30);
		ck_assert_uint_gt(err.column, 0);
		ck_assert_str_ne(err.text, "");
	}
	free(buf);

	parse_fails("{\"schema\":\"s\",\n  \"properties\": [,]}", "", 2, 18);
	parse_fails("{\"schema\":\"s\",\"schema\":\"t\"}", "duplicate", 1, 0);
	parse_fails("", "", 0, 0);
	parse_fails("{\"schema\":\"s\"} x", "end of file expected", 1, 0);
	ck_assert_int_eq(gw_thingmodel_parse(NULL, 0, &m, &err), -EBADMSG);
	ck_assert_int_eq(gw_thingmodel_parse(NULL, 0, &m, NULL), -EBADMSG);

	big = calloc(1, GW_THINGMODEL_FILE_MAX + 1);
	ck_assert_int_eq(gw_thingmodel_parse(big, GW_THINGMODEL_FILE_MAX + 1, &m, &err), -EMSGSIZE);
	ck_assert_ptr_nonnull(strstr(err.text, "more than"));
	free(big);
	ck_assert_ptr_eq(m, (struct gw_thingmodel *)&m);
}
END_TEST

START_TEST(test_parse_errors_semantic)
{
	/* position: the member, or the object that lacks it */
	parse_fails("{\"schema\":\"s\",\"properties\":[\n"
		    "  {\"identifier\":\"A\",\"dataType\":{\"type\":\"int\"}},\n"
		    "  {\"name\":\"B\",\n"
		    "   \"dataType\":{\"type\":\"int\"}}]}",
		    "properties[1]: no \"identifier\"", 3, 3);
	parse_fails("{\"schema\":\"s\",\"properties\":[\n"
		    "  {\"identifier\":\"A\",\n"
		    "   \"dataType\":{\"type\":\"long\"}}]}",
		    "properties[0].dataType.type: unknown data type \"long\"", 3, 23);
	parse_fails("{\"version\":\"1.0\",\"properties\":[{\"id\":\"A\",\"define\":{\"type\":\"text\"}}]}",
		    "properties[0].define.type: unknown data type \"text\"", 1, 59);
	parse_fails("{\"schema\":\"s\",\"properties\":[{\"identifier\":\"A\",\"dataType\":{\"type\":"
		    "\"stringenum\",\"specs\":{}}}]}",
		    "unknown data type \"stringenum\"", 1, 0);
	parse_fails("{\"schema\":\"s\",\"properties\":[{\"identifier\":\"A\",\"dataType\":\n"
		    "{\"type\":\"float\",\"specs\":{\"min\":\"10\",\"max\":\"5\"}}}]}",
		    "properties[0].dataType.specs.min: min 10 is above max 5", 2, 32);
	parse_fails("{\"schema\":\"s\",\"properties\":[{\"identifier\":\"A\",\"dataType\":"
		    "{\"type\":\"float\",\"specs\":{\"min\":\"abc\"}}}]}",
		    "properties[0].dataType.specs.min: \"abc\" is not a number", 1, 0);
	parse_fails("{\"schema\":\"s\",\"properties\":[{\"identifier\":\"A\",\"dataType\":"
		    "{\"type\":\"float\",\"specs\":{\"step\":\"-1\"}}}]}",
		    "specs.step: negative step", 1, 0);
	parse_fails("{\"schema\":\"s\",\"properties\":[{\"identifier\":\"A\",\"dataType\":"
		    "{\"type\":\"float\",\"specs\":{\"max\":[]}}}]}",
		    "specs.max: not a number", 1, 0);
	parse_fails("{\"schema\":\"s\",\"properties\":[{\"identifier\":\"A\",\"dataType\":"
		    "{\"type\":\"text\",\"specs\":{\"length\":\"2.5\"}}}]}",
		    "specs.length: not a whole number", 1, 0);
	parse_fails("{\"schema\":\"s\",\"properties\":[{\"identifier\":\"A\",\"dataType\":"
		    "{\"type\":\"enum\",\"specs\":{\"0\":\"a\",\"x\":\"b\"}}}]}",
		    "properties[0].dataType.specs.x: value \"x\" is not an integer", 1, 0);
	parse_fails("{\"schema\":\"s\",\"properties\":[{\"identifier\":\"A\",\"dataType\":"
		    "{\"type\":\"enum\",\"specs\":{}}}]}",
		    "properties[0].dataType.specs: no values", 1, 0);
	parse_fails("{\"schema\":\"s\",\"properties\":[{\"identifier\":\"A\",\"dataType\":"
		    "{\"type\":\"enum\"}}]}",
		    "properties[0].dataType: no \"specs\"", 1, 0);
	parse_fails("{\"schema\":\"s\",\"properties\":[{\"identifier\":\"A\",\"dataType\":"
		    "{\"type\":\"bool\",\"specs\":{\"0\":\"off\",\"2\":\"on\"}}}]}",
		    "specs.2: a bool has only the values 0 and 1", 1, 0);
	parse_fails("{\"schema\":\"s\",\"properties\":[{\"identifier\":\"A\",\"dataType\":"
		    "{\"type\":\"bool\",\"specs\":{\"0\":1}}}]}",
		    "specs.0: not a string", 1, 0);
	parse_fails("{\"schema\":\"s\",\"properties\":[{\"identifier\":\"A\",\"dataType\":"
		    "{\"type\":\"int\"}},{\"identifier\":\"A\",\"dataType\":{\"type\":\"int\"}}]}",
		    "properties[1]: identifier \"A\" appears twice", 1, 0);
	parse_fails("{\"schema\":\"s\",\"properties\":[{\"identifier\":\"a b\",\"dataType\":"
		    "{\"type\":\"int\"}}]}",
		    "properties[0].identifier: identifier \"a b\" is not printable ASCII", 1, 0);
	parse_fails("{\"schema\":\"s\",\"properties\":[{\"identifier\":\"\",\"dataType\":"
		    "{\"type\":\"int\"}}]}",
		    "properties[0].identifier: empty identifier", 1, 0);
	parse_fails("{\"schema\":\"s\",\"properties\":[{\"identifier\":7,\"dataType\":"
		    "{\"type\":\"int\"}}]}",
		    "properties[0].identifier: not a string", 1, 0);
	parse_fails("{\"schema\":\"s\",\"properties\":[{\"identifier\":\"A\"}]}",
		    "properties[0]: no \"dataType\"", 1, 0);
	parse_fails("{\"version\":\"1.0\",\"properties\":[{\"id\":\"A\",\"dataType\":{}}]}",
		    "properties[0]: no \"define\"", 1, 0);
	parse_fails("{\"schema\":\"s\",\"properties\":{}}", "properties: not an array", 1, 28);
	parse_fails("{\"schema\":\"s\",\"properties\":[7]}", "properties[0]: not an object", 1, 0);
	parse_fails("{\"schema\":\"s\",\"events\":[\"post\"]}", "events[0]: not an object", 1, 0);
	parse_fails("{\"schema\":\"s\",\"services\":{}}", "services: not an array", 1, 0);
	parse_fails("{\"version\":\"1\",\"actions\":7}", "actions: not an array", 1, 0);
	parse_fails("{\"schema\":\"s\",\"profile\":[]}", "profile: not an object", 1, 0);
	parse_fails("{\"schema\":\"s\",\"profile\":{\"productKey\":1}}",
		    "profile.productKey: not a string", 1, 0);
	parse_fails("{\"schema\":\"s\",\"properties\":[{\"identifier\":\"A\",\"name\":[],"
		    "\"dataType\":{\"type\":\"int\"}}]}",
		    "properties[0].name: not a string", 1, 0);
	/* nesting the platforms do not allow */
	parse_fails("{\"schema\":\"s\",\"properties\":[{\"identifier\":\"A\",\"dataType\":"
		    "{\"type\":\"struct\",\"specs\":[{\"identifier\":\"b\",\"dataType\":"
		    "{\"type\":\"struct\",\"specs\":[]}}]}}]}",
		    "properties[0].dataType.specs[0].dataType.type: a struct cannot hold a struct",
		    1, 0);
	parse_fails("{\"schema\":\"s\",\"properties\":[{\"identifier\":\"A\",\"dataType\":"
		    "{\"type\":\"array\",\"specs\":{\"item\":{\"type\":\"array\",\"specs\":{}}}}}]}",
		    "properties[0].dataType.specs.item.type: a array cannot hold a array", 1, 0);
	parse_fails("{\"schema\":\"s\",\"properties\":[{\"identifier\":\"A\",\"dataType\":"
		    "{\"type\":\"struct\"}}]}",
		    "properties[0].dataType: no \"specs\"", 1, 0);
	parse_fails("{\"version\":\"1.0\",\"properties\":[{\"id\":\"A\",\"define\":"
		    "{\"type\":\"string\",\"min\":\"5\",\"max\":\"4\"}}]}",
		    "properties[0].define.min: min 5 is above max 4", 1, 0);
	/* neither format, or not an object */
	parse_fails("{\"foo\":1}", "neither an Aliyun TSL nor a Tencent data template", 1, 1);
	parse_fails("  [1, 2]", "not a JSON object", 1, 3);
	parse_fails("{\"schema\":\"s\",\"events\":[{\"identifier\":\"e\",\"type\":\"info\","
		    "\"outputData\":[{\"identifier\":\"x\",\"dataType\":{\"type\":\"?\"}}]}]}",
		    "events[0].outputData[0].dataType.type: unknown data type \"?\"", 1, 0);
	parse_fails("{\"schema\":\"s\",\"events\":[{\"identifier\":\"e\",\"type\":\"info\"},"
		    "{\"identifier\":\"e\",\"type\":\"alert\"}]}",
		    "events[1]: identifier \"e\" appears twice", 1, 0);
	parse_fails("{\"schema\":\"s\",\"events\":[{\"identifier\":\"e\"}]}",
		    "events[0]: no \"type\"", 1, 0);
}
END_TEST

/* A console export with one change: the error is on the line that holds it. */
START_TEST(test_parse_errors_in_export)
{
	static const struct {
		const char *file, *from, *to, *want;
	} cases[] = {
		{ "aliyun-tsl.json", "\"type\": \"enum\"", "\"type\": \"enums\"",
		  "properties[7].dataType.type: unknown data type \"enums\"" },
		{ "aliyun-tsl.json", "\"max\": \"60\"", "\"max\": \"-60\"",
		  "properties[4].dataType.specs.min: min -20 is above max -60" },
		{ "aliyun-tsl.json", "\"type\": \"alert\"", "\"type\": \"warning\"",
		  "events[1].type: unknown event type \"warning\" (info, alert or error)" },
		{ "tencent-template.json", "\"id\": \"MQ7\"", "\"ID\": \"MQ7\"",
		  "properties[3]: no \"id\"" },
		{ "tencent-template.json", "\"2\": \"关闭\"", "\"two\": \"关闭\"",
		  "properties[7].define.mapping.two: value \"two\" is not an integer" },
		{ "tencent-template.json", "\"max\": \"16\"", "\"max\": \"sixteen\"",
		  "events[0].params[0].define.max: \"sixteen\" is not a number" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len, flen = strlen(cases[i].from), tlen = strlen(cases[i].to);
		char *buf = slurp(cases[i].file, &len), *at = strstr(buf, cases[i].from), *edited;
		unsigned line = 1;
		struct gw_thingmodel *m = NULL;
		struct gw_thingmodel_error err;

		ck_assert_ptr_nonnull(at);
		for (char *p = buf; p < at; p++)
			line += *p == '\n';
		edited = calloc(1, len - flen + tlen + 1);
		memcpy(edited, buf, (size_t)(at - buf));
		memcpy(edited + (at - buf), cases[i].to, tlen);
		memcpy(edited + (at - buf) + tlen, at + flen, len - (size_t)(at - buf) - flen);
		ck_assert_int_eq(gw_thingmodel_parse(edited, len - flen + tlen, &m, &err),
				 -EBADMSG);
		ck_assert_msg(strcmp(err.text, cases[i].want) == 0, "%s, not %s", err.text,
			      cases[i].want);
		/* a missing member is reported where its object starts, the line before */
		if (strstr(cases[i].want, ": no "))
			ck_assert_uint_eq(err.line, line - 1);
		else if (strstr(cases[i].want, "min -20"))
			ck_assert_uint_eq(err.line, line - 1); /* min is the line above max */
		else
			ck_assert_uint_eq(err.line, line);
		free(edited);
		free(buf);
	}
}
END_TEST

START_TEST(test_detect)
{
	struct gw_thingmodel *m;

	/* no profile, no schema/version: the shape of the first property or event */
	m = parse_ok("{\"properties\":[{\"identifier\":\"a\",\"dataType\":{\"type\":\"int\"}}]}");
	ck_assert_int_eq(m->format, GW_THINGMODEL_ALIYUN);
	ck_assert_str_eq(m->product, "");
	gw_thingmodel_free(m);
	m = parse_ok("{\"events\":[{\"id\":\"a\",\"type\":\"fault\"}]}");
	ck_assert_int_eq(m->format, GW_THINGMODEL_TENCENT);
	gw_thingmodel_free(m);
	/* the profile wins over schema/version */
	m = parse_ok("{\"version\":\"1.0\",\"profile\":{\"productKey\":\"pk\"}}");
	ck_assert_int_eq(m->format, GW_THINGMODEL_ALIYUN);
	ck_assert_str_eq(m->product, "pk");
	gw_thingmodel_free(m);
	/* empty models are models */
	m = parse_ok("{\"version\":\"1.0\",\"profile\":{\"ProductId\":\"P\",\"CategoryId\":\"1\"},"
		     "\"properties\":[],\"events\":[],\"actions\":[]}");
	ck_assert_int_eq(m->format, GW_THINGMODEL_TENCENT);
	ck_assert_uint_eq(m->n_properties + m->n_events + m->n_services, 0);
	gw_thingmodel_free(m);
	/* numbers as numbers, and "" as absent */
	m = parse_ok("{\"schema\":\"s\",\"properties\":[{\"identifier\":\"a\",\"dataType\":"
		     "{\"type\":\"double\",\"specs\":{\"min\":-1.5,\"max\":2,\"step\":\"\"}}}]}");
	ck_assert(m->properties[0].min == -1.5 && m->properties[0].max == 2);
	ck_assert(m->properties[0].step == 0);
	gw_thingmodel_free(m);
}
END_TEST

START_TEST(test_load)
{
	struct gw_thingmodel *m = (struct gw_thingmodel *)&m;
	struct gw_thingmodel_error err;
	char dir[] = "/tmp/test-thingmodel-XXXXXX", path[64];
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/none.json", dir);
	ck_assert_int_eq(gw_thingmodel_load(path, &m, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.text, "open: "));
	ck_assert_int_eq(gw_thingmodel_load(dir, &m, &err), -EINVAL);
	ck_assert_str_eq(err.text, "not a regular file");

	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseek(f, GW_THINGMODEL_FILE_MAX, SEEK_SET), 0);
	fputc('}', f);
	fclose(f);
	ck_assert_int_eq(gw_thingmodel_load(path, &m, &err), -EFBIG);
	ck_assert_ptr_eq(m, (struct gw_thingmodel *)&m);

	f = fopen(path, "w");
	fputs("{\"schema\":\"s\",\n\"properties\":[{\"identifier\":\"A\"}]}\n", f);
	fclose(f);
	ck_assert_int_eq(gw_thingmodel_load(path, &m, &err), -EBADMSG);
	ck_assert_str_eq(err.text, "properties[0]: no \"dataType\"");
	ck_assert_uint_eq(err.line, 2);
	ck_assert_uint_eq(err.column, 15);
	ck_assert_ptr_eq(m, (struct gw_thingmodel *)&m);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

static Suite *thingmodel_suite(void)
{
	Suite *s = suite_create("thingmodel");
	TCase *tc = tcase_create("model");

	tcase_add_test(tc, test_both_formats_same_model);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_detect);
	tcase_add_test(tc, test_event_types);
	tcase_add_test(tc, test_load);
	suite_add_tcase(s, tc);

	tc = tcase_create("convert");
	tcase_add_test(tc, test_convert);
	tcase_add_loop_test(tc, test_convert_frame_value, 0, 2);
	tcase_add_loop_test(tc, test_convert_params, 0, 2);
	tcase_add_loop_test(tc, test_cloud_model_apply, 0, 2);
	tcase_add_test(tc, test_convert_date);
	tcase_add_test(tc, test_convert_strings);
	tcase_add_test(tc, test_convert_struct_array);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, test_parse_errors_syntax);
	tcase_add_test(tc, test_parse_errors_semantic);
	tcase_add_test(tc, test_parse_errors_in_export);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ck_run_suite(thingmodel_suite());
}
