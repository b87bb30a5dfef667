/* SPDX-License-Identifier: MIT */
/*
 * The record step (gw/record.h): frame → the packed record the spool stores. It must give the
 * bytes of the reference path (gw_mapping_params, gw_payload_json, gw_payload_pack), tell a
 * frame its [map] sections cannot convert (-EDOM) from one that is no record (-EINVAL), and
 * depend on nothing but its inputs.
 */

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../helpers/ckrun.h"
#include "gw/jsonw.h"
#include "gw/mapping.h"
#include "gw/payload.h"
#include "gw/record.h"
#include "gw/util.h"

#define SEQ 4711u
#define TS_MS 1763761800123

static struct gw_nodes *nodes;
static struct gw_node *node;
static struct gw_config cfg;
static struct gw_jsonw *params_w, *out_w;

static void setup(void)
{
	struct gw_config_map *m = &cfg.maps[cfg.n_maps++];

	ck_assert_int_eq(gw_nodes_new("dev-{port}-{addr}", GW_NODES_MAX, &nodes), 0);
	ck_assert_int_eq(gw_nodes_get(nodes, "bin", true, 7, &node, NULL), 0);
	/* [map t] on every port: t = raw * 0.1 - 40, as temperature */
	snprintf(m->field, sizeof(m->field), "t");
	snprintf(m->identifier, sizeof(m->identifier), "temperature");
	m->scale = 0.1;
	m->offset = -40;
	m->type = GW_MAP_TYPE_FLOAT;
	params_w = gw_jsonw_new();
	out_w = gw_jsonw_new();
}

static void teardown(void)
{
	gw_nodes_free(nodes);
	gw_jsonw_free(params_w);
	gw_jsonw_free(out_w);
	memset(&cfg, 0, sizeof(cfg));
}

static void add_int(struct gw_frame *f, const char *key, int64_t i)
{
	struct gw_field *fl = &f->fields[f->n_fields++];

	snprintf(fl->key, sizeof(fl->key), "%s", key);
	fl->value.type = GW_VALUE_INT;
	fl->value.i = i;
}

static void add_str(struct gw_frame *f, const char *key, const char *s)
{
	struct gw_field *fl = &f->fields[f->n_fields++];

	snprintf(fl->key, sizeof(fl->key), "%s", key);
	fl->value.type = GW_VALUE_STRING;
	snprintf(fl->value.s, sizeof(fl->value.s), "%s", s);
}

/* The reference: the jansson path, as the record step's outcome must be byte for byte. */
static void assert_reference(const struct gw_frame *f, const char *got, size_t got_len)
{
	struct gw_record r = {
		.seq = SEQ,
		.ts_ms = TS_MS,
		.type = f->type,
		.node = node,
		.has_node_seq = f->has_seq,
		.node_seq = f->seq,
	};
	char *json;
	uint8_t *packed;
	size_t len, plen;

	if (f->type == GW_FRAME_EVENT)
		snprintf(r.event, sizeof(r.event), "%s", f->name);
	ck_assert_int_eq(gw_mapping_params(&cfg, "bin", f, &r.params), 0);
	ck_assert_int_eq(gw_payload_json(&r, &json, &len), 0);
	ck_assert_int_eq(gw_payload_pack(&r, json, len, &packed, &plen), 0);
	ck_assert_uint_eq(got_len, plen);
	ck_assert(memcmp(got, packed, plen) == 0);
	free(packed);
	free(json);
	json_decref(r.params);
}

START_TEST(test_telemetry)
{
	struct gw_frame f = { .type = GW_FRAME_TELEMETRY, .has_addr = true, .addr = 7,
			      .has_seq = true, .seq = 65535 };
	struct gw_payload_view v;
	const char *got;
	size_t len;

	add_int(&f, "t", 615);
	add_int(&f, "MQ2", 30);
	ck_assert_int_eq(gw_record_build(&cfg, "bin", node, &f, SEQ, TS_MS, params_w, out_w), 0);
	got = gw_jsonw_data(out_w, &len);
	assert_reference(&f, got, len);
	ck_assert_int_eq(gw_payload_unpack((const uint8_t *)got, len, f.type, &v), 0);
	ck_assert_str_eq(v.device, node->device);
	ck_assert_str_eq(v.port, "bin");
	ck_assert_str_eq(v.addr, "7");
	ck_assert_ptr_nonnull(memmem(v.json, v.json_len, "\"temperature\":21.5", 18));
	ck_assert_ptr_nonnull(memmem(v.json, v.json_len, "\"seq\":4711", 10));
}
END_TEST

START_TEST(test_event)
{
	struct gw_frame f = { .type = GW_FRAME_EVENT, .has_addr = true, .addr = 7 };
	const char *got;
	size_t len;

	snprintf(f.name, sizeof(f.name), "door_open");
	add_str(&f, "who", "a\"b");
	ck_assert_int_eq(gw_record_build(&cfg, "bin", node, &f, SEQ, TS_MS, params_w, out_w), 0);
	got = gw_jsonw_data(out_w, &len);
	assert_reference(&f, got, len);
	ck_assert_ptr_nonnull(memmem(got, len, "door_open", 9));
}
END_TEST

/* A text line in a cloud's shape keeps its clientToken / id as the record's "trace", after
 * "event" and before "params" (docs/payload.md); other records have none. */
START_TEST(test_trace)
{
	struct gw_frame f;
	struct gw_record r = { .seq = SEQ, .ts_ms = TS_MS, .node = node };
	char *json;
	const char *got;
	size_t len;
	static const char line[] = "{\"method\":\"event_post\",\"clientToken\":\"t-\\\"7\","
				   "\"eventId\":\"gas\",\"type\":\"alert\",\"params\":{\"MQ2\":900}}";
	static const char want[] = "\"event\":\"gas\",\"trace\":\"t-\\\"7\",\"params\":"
				   "{\"MQ2\":900}}";

	ck_assert_int_eq(gw_text_parse_line(line, strlen(line), &f), GW_FRAME_OK);
	ck_assert_int_eq(gw_record_build(&cfg, "bin", node, &f, SEQ, TS_MS, params_w, out_w), 0);
	got = gw_jsonw_data(out_w, &len);
	ck_assert_ptr_nonnull(memmem(got, len, want, strlen(want)));
	/* the reference path says the same */
	r.type = GW_FRAME_EVENT;
	snprintf(r.event, sizeof(r.event), "gas");
	snprintf(r.trace, sizeof(r.trace), "%s", f.trace);
	ck_assert_int_eq(gw_mapping_params(&cfg, "bin", &f, &r.params), 0);
	ck_assert_int_eq(gw_payload_json(&r, &json, NULL), 0);
	ck_assert_ptr_nonnull(memmem(got, len, json, strlen(json)));
	free(json);
	json_decref(r.params);

	f.trace[0] = '\0';
	ck_assert_int_eq(gw_record_build(&cfg, "bin", node, &f, SEQ, TS_MS, params_w, out_w), 0);
	got = gw_jsonw_data(out_w, &len);
	ck_assert_ptr_null(memmem(got, len, "trace", 5));
}
END_TEST

/* No cfg: every field passes through under its own key. */
START_TEST(test_no_config)
{
	struct gw_frame f = { .type = GW_FRAME_TELEMETRY };
	const char *got;
	size_t len;

	add_int(&f, "t", 615);
	ck_assert_int_eq(gw_record_build(NULL, "bin", node, &f, SEQ, TS_MS, params_w, out_w), 0);
	got = gw_jsonw_data(out_w, &len);
	ck_assert_ptr_nonnull(memmem(got, len, "\"t\":615", 7));
	ck_assert_ptr_null(memmem(got, len, "temperature", 11));
}
END_TEST

/* A value its map cannot convert is -EDOM (skipped and counted), not -EINVAL. */
START_TEST(test_unmapped)
{
	struct gw_frame f = { .type = GW_FRAME_TELEMETRY };

	add_str(&f, "t", "warm");
	ck_assert_int_eq(gw_record_build(&cfg, "bin", node, &f, SEQ, TS_MS, params_w, out_w),
			 -EDOM);
}
END_TEST

START_TEST(test_not_a_record)
{
	static const enum gw_frame_type others[] = { GW_FRAME_HELLO, GW_FRAME_ACK,
						     GW_FRAME_COMMAND, GW_FRAME_COMMAND_REPLY };

	for (size_t i = 0; i < N_ELEMENTS(others); i++) {
		struct gw_frame f = { .type = others[i] };

		ck_assert_int_eq(gw_record_build(&cfg, "bin", node, &f, SEQ, TS_MS, params_w,
						 out_w), -EINVAL);
	}
}
END_TEST

/* Pure: the same inputs give the same bytes, whatever the writers held before. */
START_TEST(test_pure)
{
	struct gw_frame f = { .type = GW_FRAME_TELEMETRY, .has_seq = true, .seq = 3 };
	struct gw_frame big = { .type = GW_FRAME_TELEMETRY };
	char first[1024];
	const char *got;
	size_t len, first_len;

	add_int(&f, "t", 100);
	for (int i = 0; i < 16; i++) {
		char key[8];

		snprintf(key, sizeof(key), "k%d", i);
		add_str(&big, key, "a long string value to grow the writers");
	}
	ck_assert_int_eq(gw_record_build(&cfg, "bin", node, &f, SEQ, TS_MS, params_w, out_w), 0);
	got = gw_jsonw_data(out_w, &first_len);
	ck_assert_uint_lt(first_len, sizeof(first));
	memcpy(first, got, first_len);
	ck_assert_int_eq(gw_record_build(&cfg, "bin", node, &big, 1, 2, params_w, out_w), 0);
	ck_assert_int_eq(gw_record_build(&cfg, "bin", node, &f, SEQ, TS_MS, params_w, out_w), 0);
	got = gw_jsonw_data(out_w, &len);
	ck_assert_uint_eq(len, first_len);
	ck_assert(memcmp(got, first, len) == 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("record");
	TCase *tc = tcase_create("record");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_telemetry);
	tcase_add_test(tc, test_event);
	tcase_add_test(tc, test_trace);
	tcase_add_test(tc, test_no_config);
	tcase_add_test(tc, test_unmapped);
	tcase_add_test(tc, test_not_a_record);
	tcase_add_test(tc, test_pure);
	suite_add_tcase(s, tc);
	return ck_run_suite(s);
}
