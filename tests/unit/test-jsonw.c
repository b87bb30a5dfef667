/* SPDX-License-Identifier: MIT */
/*
 * The JSON writer of the per-frame path against jansson, which it replaced there: every
 * payload byte must stay what json_dumps(JSON_COMPACT | JSON_REAL_PRECISION(15)) printed
 * (docs/payload.md), for numbers, strings, params objects and whole spool records.
 */

#include <check.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../helpers/ckrun.h"
#include "../helpers/emulated.h"
#include "gw/jsonw.h"
#include "gw/mapping.h"
#include "gw/node.h"
#include "gw/payload.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15) | JSON_ENCODE_ANY)

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* xorshift64*: the same sequence on every run, so a failure can be reproduced */
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static void check_real(double v)
{
	char buf[GW_JSONW_REAL_MAX];
	json_t *j = json_real(v);
	char *want = json_dumps(j, DUMP_FLAGS);
	int n = gw_jsonw_format_real(buf, v);

	ck_assert_ptr_nonnull(want);
	if (n < 0 || strcmp(buf, want) != 0)
		ck_abort_msg("%a (%.17g): got '%s' (%d), jansson '%s'", v, v, n < 0 ? "" : buf, n,
			     want);
	ck_assert_int_eq(n, (int)strlen(want));
	free(want);
	json_decref(j);
}

START_TEST(test_real_listed)
{
	static const double listed[] = {
		0.0, 1.0, 2.0, 21.5, 24.3, 215 * 0.1, 0.1, 0.2, 0.3, 1.0 / 3, 2.0 / 3, 100.0, 1e14,
		99999999999999.9, 999999999999999.0, 999999999999999.4, 999999999999999.6, 1e15,
		1e15 + 2, 1e16, 1e17, 1e21, 1e22, 1e23, 1e100, 1e300, DBL_MAX, 1e-4, 0.0001,
		0.00011, 9.99999999999999e-5, 9.999999999999999e-5, 9.9999999999999995e-5, 1e-5,
		1.5e-5, 1e-7, 1e-300, DBL_MIN, DBL_MIN / 4, 5e-324, 562949953421312.5,
		562949953421313.5, 281474976710656.25, 0.5, 0.25, 0.125, 1.5, 2.5, 3.5, 1e-4 * 3,
		123456789012345.6, 12345678901234.56, 1234567890123.456, 0.1234567890123456,
		0.00012345678901234567, 4503599627370496.0, 4503599627370497.0, 9007199254740993.0,
		3.141592653589793, 2.718281828459045, 6.02214076e23, 1.602176634e-19, 65535.0,
		4294967295.0, 4294967296.5, 0.000999999999999999, 0.00999999999999999,
	};

	for (size_t i = 0; i < sizeof(listed) / sizeof(listed[0]); i++) {
		check_real(listed[i]);
		check_real(-listed[i]);
	}
}
END_TEST

/* binary32 readings widened to double, as the binary decoder hands them on */
START_TEST(test_real_floats)
{
	for (int i = -200000; i <= 200000; i += test_scale()) {
		check_real((double)((float)i / 10.0f));
		check_real((double)(20.0f + (float)(i % 50) / 10.0f));
		check_real((double)((float)i * 0.37f));
	}
	for (int i = 0; i < 200000 / test_scale(); i++) {
		union {
			uint32_t u;
			float f;
		} x = { .u = (uint32_t)rnd() };

		if (isfinite(x.f))
			check_real(x.f);
	}
}
END_TEST

/* decimals with few digits, as text frames and scaled readings give them */
START_TEST(test_real_decimals)
{
	for (int i = 0; i < 300000 / test_scale(); i++) {
		int64_t m = (int64_t)(rnd() % 100000000) - 50000000;
		int k = (int)(rnd() % 12);
		double v = (double)m / pow(10, k);

		check_real(v);
		check_real(v * 0.1);
		check_real(v * 0.01 + 0.5);
	}
}
END_TEST

/* any double at all: random bit patterns, and log-uniform over the fixed-notation range */
START_TEST(test_real_random)
{
	for (int i = 0; i < 300000 / test_scale(); i++) {
		union {
			uint64_t u;
			double d;
		} x = { .u = rnd() };

		if (isfinite(x.d))
			check_real(x.d);
		check_real(pow(10, -7 + (double)(rnd() % 2400000) / 100000.0) *
			   ((rnd() & 1) ? -1 : 1));
	}
}
END_TEST

START_TEST(test_real_refused)
{
	char buf[GW_JSONW_REAL_MAX];
	struct gw_jsonw *w = gw_jsonw_new();
	size_t len;

	ck_assert_int_eq(gw_jsonw_format_real(buf, NAN), -EINVAL);
	ck_assert_int_eq(gw_jsonw_format_real(buf, -NAN), -EINVAL);
	ck_assert_int_eq(gw_jsonw_format_real(buf, INFINITY), -EINVAL);
	ck_assert_int_eq(gw_jsonw_format_real(buf, -INFINITY), -EINVAL);
	gw_jsonw_object_begin(w);
	gw_jsonw_key(w, "x");
	gw_jsonw_real(w, NAN);
	ck_assert_int_eq(gw_jsonw_error(w), -EINVAL);
	/* sticky: nothing more is written */
	gw_jsonw_key(w, "y");
	gw_jsonw_int(w, 1);
	ck_assert_int_eq(gw_jsonw_error(w), -EINVAL);
	gw_jsonw_reset(w);
	ck_assert_int_eq(gw_jsonw_error(w), 0);
	gw_jsonw_real(w, 1.5);
	ck_assert(memcmp(gw_jsonw_data(w, &len), "1.5", 3) == 0);
	ck_assert_uint_eq(len, 3);
	gw_jsonw_free(w);
}
END_TEST

static void check_int(int64_t v)
{
	char buf[GW_JSONW_INT_MAX], want[32];

	snprintf(want, sizeof(want), "%" PRId64, v);
	ck_assert_uint_eq(gw_jsonw_format_int(buf, v), strlen(want));
	ck_assert_str_eq(buf, want);
	if (v >= 0) {
		ck_assert_uint_eq(gw_jsonw_format_uint(buf, (uint64_t)v), strlen(want));
		ck_assert_str_eq(buf, want);
	}
}

START_TEST(test_int)
{
	char buf[GW_JSONW_INT_MAX];

	check_int(0);
	check_int(INT64_MIN);
	check_int(INT64_MIN + 1);
	check_int(INT64_MAX);
	for (int64_t p = 1; p < INT64_MAX / 10; p *= 10) {
		check_int(p);
		check_int(p - 1);
		check_int(-p);
		check_int(-p + 1);
	}
	for (int i = 0; i < 100000; i++)
		check_int((int64_t)rnd() >> (rnd() % 64));
	ck_assert_uint_eq(gw_jsonw_format_uint(buf, UINT64_MAX), 20);
	ck_assert_str_eq(buf, "18446744073709551615");
}
END_TEST

/* s as a JSON string: the writer and jansson agree on whether it is valid and how it looks */
static void check_string(const char *s)
{
	struct gw_jsonw *w = gw_jsonw_new();
	json_t *j = json_string(s);
	const char *got;
	size_t len;

	ck_assert_int_eq(gw_jsonw_utf8_valid(s, strlen(s)), j != NULL);
	gw_jsonw_string(w, s);
	got = gw_jsonw_data(w, &len);
	if (!j) {
		ck_assert_int_eq(gw_jsonw_error(w), -EINVAL);
	} else {
		char *want = json_dumps(j, DUMP_FLAGS);

		ck_assert_int_eq(gw_jsonw_error(w), 0);
		ck_assert_uint_eq(len, strlen(want));
		ck_assert(memcmp(got, want, len) == 0);
		free(want);
	}
	json_decref(j);
	gw_jsonw_free(w);
}

START_TEST(test_string)
{
	char s[8];

	check_string("");
	check_string("plain");
	check_string("a\"b\\c/d\b\f\n\r\t\x01\x1f\x7f end");
	check_string("温度 °C ✓ 😀");
	for (int c = 1; c < 256; c++) {
		snprintf(s, sizeof(s), "x%cy", c);
		check_string(s);
	}
	/* every two-byte sequence, and random short byte strings (mostly not UTF-8) */
	for (int a = 1; a < 256; a++)
		for (int b = 1; b < 256; b++) {
			s[0] = (char)a;
			s[1] = (char)b;
			s[2] = '\0';
			check_string(s);
		}
	for (int i = 0; i < 300000; i++) {
		size_t n = 1 + rnd() % 5;

		for (size_t k = 0; k < n; k++) {
			uint8_t b = (uint8_t)rnd();

			/* lean towards lead and continuation bytes, to reach the 3- and 4-byte
			 * forms, overlong ones and surrogates */
			if (k > 0 && (rnd() & 1))
				b = (uint8_t)(0x80 | (b & 0x3f));
			s[k] = (char)(b ? b : 'z');
		}
		s[n] = '\0';
		check_string(s);
	}
}
END_TEST

START_TEST(test_objects)
{
	struct gw_jsonw *w = gw_jsonw_new();
	const char *got;
	size_t len;

	for (int round = 0; round < 3; round++) {
		gw_jsonw_reset(w);
		gw_jsonw_raw(w, "ab\0", 3);
		gw_jsonw_object_begin(w);
		gw_jsonw_key(w, "a");
		gw_jsonw_object_begin(w);
		gw_jsonw_object_end(w);
		gw_jsonw_key(w, "b");
		gw_jsonw_object_begin(w);
		gw_jsonw_key(w, "c");
		gw_jsonw_bool(w, true);
		gw_jsonw_key(w, "d");
		gw_jsonw_bool(w, false);
		gw_jsonw_object_end(w);
		gw_jsonw_key(w, "e");
		gw_jsonw_json(w, "{\"f\":1}", 7);
		gw_jsonw_key(w, "g");
		gw_jsonw_uint(w, 7);
		gw_jsonw_object_end(w);
		ck_assert_int_eq(gw_jsonw_error(w), 0);
		got = gw_jsonw_data(w, &len);
		ck_assert_uint_eq(len, 3 + strlen("{\"a\":{},\"b\":{\"c\":true,\"d\":false},"
						  "\"e\":{\"f\":1},\"g\":7}"));
		ck_assert(memcmp(got, "ab\0{\"a\":{},\"b\":{\"c\":true,\"d\":false},\"e\":{\"f\":1},"
				 "\"g\":7}", len) == 0);
	}
	/* a key outside an object, nesting too deep */
	gw_jsonw_reset(w);
	gw_jsonw_key(w, "x");
	ck_assert_int_eq(gw_jsonw_error(w), -EINVAL);
	gw_jsonw_reset(w);
	for (int i = 0; i <= GW_JSONW_DEPTH; i++)
		gw_jsonw_object_begin(w);
	ck_assert_int_eq(gw_jsonw_error(w), -E2BIG);
	/* a long payload grows the buffer */
	gw_jsonw_reset(w);
	gw_jsonw_object_begin(w);
	for (int i = 0; i < 1000; i++) {
		gw_jsonw_key(w, "key");
		gw_jsonw_real(w, i + 0.5);
	}
	gw_jsonw_object_end(w);
	ck_assert_int_eq(gw_jsonw_error(w), 0);
	got = gw_jsonw_data(w, &len);
	ck_assert_uint_gt(len, 10000);
	ck_assert(got[0] == '{' && got[len - 1] == '}');
	gw_jsonw_free(w);
}
END_TEST

static struct gw_value random_value(void)
{
	struct gw_value v = { 0 };
	static const char *const strings[] = { "idle", "on", "OFF", "yes", "0", "1", "21.5",
					       "-3e2", "abc", "", "a\"q\\", "温度", "\x01\t",
					       "\xff\xfe", "nan", "inf" };

	switch (rnd() % 5) {
	case 0:
		v.type = GW_VALUE_BOOL;
		v.b = rnd() & 1;
		break;
	case 1:
		v.type = GW_VALUE_INT;
		v.i = (int64_t)rnd() >> (rnd() % 64);
		break;
	case 2:
		v.type = GW_VALUE_DOUBLE;
		v.d = (double)((int64_t)(rnd() % 2000000) - 1000000) / pow(10, (double)(rnd() % 6));
		break;
	case 3:
		v.type = GW_VALUE_DOUBLE;
		v.d = (double)(float)v.d + (double)(rnd() % 1000) / 7.0f;
		break;
	default:
		v.type = GW_VALUE_STRING;
		snprintf(v.s, sizeof(v.s), "%s", strings[rnd() % (sizeof(strings) /
							       sizeof(strings[0]))]);
		break;
	}
	return v;
}

/* params objects from random frames and maps: the writer prints what jansson printed */
START_TEST(test_params)
{
	static const char *const keys[] = { "MQ2", "MQ135", "DHT11_T", "DHT11_H", "ok", "state",
					    "i", "a.b", "x-y" };
	static const double scales[] = { 1, 0.1, 0.01, 10, -1, 1e-6 };
	struct gw_config *c = calloc(1, sizeof(*c));
	struct gw_jsonw *w = gw_jsonw_new();
	unsigned agree = 0, refused = 0;

	ck_assert_ptr_nonnull(c);
	for (int round = 0; round < 20000; round++) {
		struct gw_frame f = { .type = (rnd() & 1) ? GW_FRAME_TELEMETRY : GW_FRAME_EVENT };
		json_t *params = NULL;
		int r1, r2;

		/* a new set of maps every 100 rounds: renames (also onto each other), scales,
		 * every type, for one port or for all */
		if (round % 100 == 0) {
			c->n_maps = 0;
			for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
				struct gw_config_map *m;

				if (rnd() % 3 == 0)
					continue;
				m = &c->maps[c->n_maps++];
				memset(m, 0, sizeof(*m));
				snprintf(m->field, sizeof(m->field), "%s", keys[i]);
				snprintf(m->identifier, sizeof(m->identifier), "%s",
					 rnd() % 4 == 0 ? "same" : keys[i]);
				m->scale = scales[rnd() % (sizeof(scales) / sizeof(scales[0]))];
				m->offset = (rnd() & 1) ? 0 : 0.5;
				m->type = (enum gw_map_type)(rnd() % 5);
				snprintf(m->port, sizeof(m->port), "%s", (rnd() & 1) ? "" : "p");
			}
		}
		f.n_fields = rnd() % 9;
		for (size_t i = 0; i < f.n_fields; i++) {
			snprintf(f.fields[i].key, sizeof(f.fields[i].key), "%s",
				 keys[rnd() % (sizeof(keys) / sizeof(keys[0]))]);
			f.fields[i].value = random_value();
		}
		{
			const char *port = (round & 1) ? "p" : "q";
			const char *got;
			char *want;
			size_t len;

			r1 = gw_mapping_params(c, port, &f, &params);
			gw_jsonw_reset(w);
			r2 = gw_mapping_write_params(c, port, &f, w);
			ck_assert_int_eq(r1, r2);
			if (r1 < 0) {
				refused++;
				continue;
			}
			want = json_dumps(params, DUMP_FLAGS);
			got = gw_jsonw_data(w, &len);
			if (len != strlen(want) || memcmp(got, want, len) != 0)
				ck_abort_msg("round %d: got '%.*s', jansson '%s'", round, (int)len,
					     got, want);
			free(want);
			json_decref(params);
			agree++;
		}
	}
	/* both outcomes were reached */
	ck_assert_uint_gt(agree, 1000);
	ck_assert_uint_gt(refused, 100);
	gw_jsonw_free(w);
	free(c);
}
END_TEST

/* the spool record the gateway builds: what gw_payload_pack(gw_payload_json()) made */
START_TEST(test_record)
{
	static const uint8_t uid[GW_UID_SIZE] = { 1, 35, 69, 103, 137, 171, 205, 239, 1, 35, 69,
						  103 };
	struct gw_frame hello = { .type = GW_FRAME_HELLO, .boot_counter = 4000000000u };
	struct gw_nodes *nodes;
	struct gw_node *node, *text_node;
	struct gw_jsonw *w = gw_jsonw_new();
	const char *params = "{\"MQ2\":30,\"t\":21.5}";

	ck_assert_int_eq(gw_nodes_new("dev-{port}-{addr}", GW_NODES_MAX, &nodes), 0);
	ck_assert_int_eq(gw_nodes_get(nodes, "bin", true, 254, &node, NULL), 0);
	memcpy(hello.uid, uid, sizeof(uid));
	ck_assert_int_eq(gw_node_hello(nodes, node, &hello), 1);
	ck_assert_int_eq(gw_nodes_get(nodes, "txt", false, 0, &text_node, NULL), 0);
	for (int i = 0; i < 64; i++) {
		struct gw_record r = {
			.seq = i < 32 ? (uint64_t)i * 1000003 : (uint64_t)INT64_MAX - (uint64_t)i,
			.ts_ms = 1763761800123 + i,
			.type = (i & 1) ? GW_FRAME_EVENT : GW_FRAME_TELEMETRY,
			.node = (i & 2) ? node : text_node,
			.has_node_seq = i & 4,
			.node_seq = (uint16_t)(65535 - i),
		};
		json_error_t err;
		char *json;
		uint8_t *packed;
		size_t len, plen, got_len;
		const char *got;

		snprintf(r.event, sizeof(r.event), "ev\"%d", i);
		r.params = json_loads(params, 0, &err);
		ck_assert_ptr_nonnull(r.params);
		ck_assert_int_eq(gw_payload_json(&r, &json, &len), 0);
		ck_assert_int_eq(gw_payload_pack(&r, json, len, &packed, &plen), 0);
		gw_jsonw_reset(w);
		ck_assert_int_eq(gw_payload_build(&r, params, strlen(params), w), 0);
		got = gw_jsonw_data(w, &got_len);
		ck_assert_uint_eq(got_len, plen);
		ck_assert(memcmp(got, packed, plen) == 0);
		free(packed);
		free(json);
		json_decref(r.params);
	}
	gw_jsonw_free(w);
	gw_nodes_free(nodes);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("jsonw");
	TCase *tc = tcase_create("jsonw");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_real_listed);
	tcase_add_test(tc, test_real_floats);
	tcase_add_test(tc, test_real_decimals);
	tcase_add_test(tc, test_real_random);
	tcase_add_test(tc, test_real_refused);
	tcase_add_test(tc, test_int);
	tcase_add_test(tc, test_string);
	tcase_add_test(tc, test_objects);
	tcase_add_test(tc, test_params);
	tcase_add_test(tc, test_record);
	suite_add_tcase(s, tc);
	return ck_run_suite(s);
}
