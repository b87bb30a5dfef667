/* SPDX-License-Identifier: MIT */
/* gw_command_encode(): params become the fields of a command frame, or are refused. */

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../helpers/ckrun.h"
#include "gw/command.h"
#include "sgw_node.h"

/* Encodes and decodes again with the gateway's own parser. Returns the encode result. */
static int roundtrip(const struct gw_config *cfg, enum gw_command_kind kind, const char *name,
		     const char *params_json, struct gw_frame *f, char *reason)
{
	uint8_t wire[SGW_MAX_WIRE], pkt[SGW_MAX_PACKET];
	json_t *params = params_json ? json_loads(params_json, 0, NULL) : NULL;
	int len, n;

	ck_assert(!params_json || params);
	len = gw_command_encode(cfg, "bin", 3, 256, 17, kind, name, params, wire, sizeof(wire),
				reason, GW_COMMAND_REASON_MAX);
	json_decref(params);
	if (len < 0)
		return len;
	ck_assert_int_le(len, SGW_MAX_WIRE);
	ck_assert_uint_eq(wire[len - 1], 0);
	n = sgw_cobs_decode(wire, (size_t)len - 1, pkt, sizeof(pkt));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(gw_binary_parse_packet(pkt, (size_t)n, f), GW_FRAME_OK);
	ck_assert_int_eq(f->type, GW_FRAME_COMMAND);
	ck_assert_uint_eq(f->addr, 3);
	ck_assert_uint_eq(f->seq, 256);
	ck_assert_uint_eq(f->cmd_id, 17);
	ck_assert_uint_eq(f->cmd_kind, kind);
	return len;
}

static const struct gw_field *field(const struct gw_frame *f, const char *key)
{
	for (size_t i = 0; i < f->n_fields; i++)
		if (strcmp(f->fields[i].key, key) == 0)
			return &f->fields[i];
	ck_abort_msg("no field %s", key);
	return NULL;
}

/* docs/protocol.md §1.6: property period = 10 on node 3, command 17, gateway seq 256 */
START_TEST(test_doc_example)
{
	static const uint8_t expect[] = { 0x05, 0x01, 0x04, 0x03, 0x01, 0x01, 0x03, 0x11, 0x01,
					  0x09, 0x06, 0x70, 0x65, 0x72, 0x69, 0x6f, 0x64, 0x02,
					  0x01, 0x01, 0x04, 0x0a, 0x28, 0x80, 0x00 };
	uint8_t wire[SGW_MAX_WIRE];
	char reason[GW_COMMAND_REASON_MAX];
	json_t *p = json_pack("{s:i}", "period", 10);
	int len;

	len = gw_command_encode(NULL, "bin", 3, 256, 17, GW_COMMAND_PROPERTY_SET, NULL, p, wire,
				sizeof(wire), reason, sizeof(reason));
	json_decref(p);
	ck_assert_int_eq(len, (int)sizeof(expect));
	ck_assert_mem_eq(wire, expect, sizeof(expect));
}
END_TEST

START_TEST(test_value_types)
{
	struct gw_frame f;
	char reason[GW_COMMAND_REASON_MAX];

	ck_assert_int_gt(roundtrip(NULL, GW_COMMAND_SERVICE, "ping",
				   "{\"on\":true,\"off\":false,\"small\":-5,"
				   "\"big\":5000000000,\"real\":21.25,\"text\":\"hello\","
				   "\"empty\":\"\"}", &f, reason), 0);
	ck_assert_str_eq(f.name, "ping");
	ck_assert_uint_eq(f.n_fields, 7);
	ck_assert(field(&f, "on")->value.type == GW_VALUE_BOOL && field(&f, "on")->value.b);
	ck_assert(field(&f, "off")->value.type == GW_VALUE_BOOL && !field(&f, "off")->value.b);
	ck_assert_int_eq(field(&f, "small")->value.i, -5);
	ck_assert_int_eq(field(&f, "big")->value.i, 5000000000LL);
	ck_assert(field(&f, "real")->value.type == GW_VALUE_DOUBLE);
	ck_assert_double_eq(field(&f, "real")->value.d, 21.25);
	ck_assert_str_eq(field(&f, "text")->value.s, "hello");
	ck_assert_str_eq(field(&f, "empty")->value.s, "");

	/* no params at all: a control with its name only */
	ck_assert_int_gt(roundtrip(NULL, GW_COMMAND_CONTROL, "identify", NULL, &f, reason), 0);
	ck_assert_uint_eq(f.n_fields, 0);
	ck_assert_str_eq(f.name, "identify");
}
END_TEST

/* What a command frame cannot carry is refused with a reason, never cut. */
static const struct {
	enum gw_command_kind kind;
	const char *name;
	const char *params;
	int err;
	const char *reason;
} refused[] = {
	{ GW_COMMAND_PROPERTY_SET, NULL, "{\"a\":{\"b\":1}}", -EINVAL, "\"a\" is an object" },
	{ GW_COMMAND_PROPERTY_SET, NULL, "{\"a\":[1,2]}", -EINVAL, "\"a\" is an array" },
	{ GW_COMMAND_PROPERTY_SET, NULL, "{\"a\":null}", -EINVAL, "\"a\" is null" },
	{ GW_COMMAND_PROPERTY_SET, NULL,
	  "{\"s\":\"0123456789012345678901234567890123456789012345678901234567890123\"}",
	  -EINVAL, "printable ASCII" },
	{ GW_COMMAND_PROPERTY_SET, NULL, "{\"s\":\"caf\\u00e9\"}", -EINVAL, "printable ASCII" },
	{ GW_COMMAND_PROPERTY_SET, NULL, "{\"k23456789012345678901234567890123\":1}", -EINVAL,
	  "is not a field key" },
	{ GW_COMMAND_PROPERTY_SET, NULL, "{\"a b\":1}", -EINVAL, "is not a field key" },
	{ GW_COMMAND_PROPERTY_SET, NULL, "{\"\":1}", -EINVAL, "is not a field key" },
	{ GW_COMMAND_SERVICE, "", "{}", -EINVAL, "the name" },
	{ GW_COMMAND_SERVICE, "s2345678901234567890123456789012", "{}", -EINVAL, "the name" },
	{ GW_COMMAND_SERVICE, "tab\there", "{}", -EINVAL, "the name" },
	{ GW_COMMAND_PROPERTY_SET, NULL,
	  "{\"a\":\"012345678901234567890123456789012345678901234567890123456789\","
	  "\"b\":\"012345678901234567890123456789012345678901234567890123456789\","
	  "\"c\":\"012345678901234567890123456789012345678901234567890123456789\","
	  "\"d\":\"012345678901234567890123456789012345678901234567890123456789\"}",
	  -EMSGSIZE, "do not fit" },
};

START_TEST(test_refused)
{
	struct gw_frame f;
	char reason[GW_COMMAND_REASON_MAX];
	int r;

	r = roundtrip(NULL, refused[_i].kind, refused[_i].name, refused[_i].params, &f, reason);
	ck_assert_int_eq(r, refused[_i].err);
	ck_assert_msg(strstr(reason, refused[_i].reason), "reason: %s", reason);
}
END_TEST

START_TEST(test_too_many_fields)
{
	json_t *p = json_object();
	uint8_t wire[SGW_MAX_WIRE];
	char reason[GW_COMMAND_REASON_MAX];
	char key[8];

	for (int i = 0; i < GW_FRAME_MAX_FIELDS + 1; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		json_object_set_new(p, key, json_true());
	}
	ck_assert_int_eq(gw_command_encode(NULL, "bin", 3, 0, 1, GW_COMMAND_PROPERTY_SET, "", p,
					   wire, sizeof(wire), reason, sizeof(reason)), -EINVAL);
	ck_assert_msg(strstr(reason, "at most 32"), "reason: %s", reason);
	/* 32 bools fit in 240 bytes (32 x 5..6 bytes) and are accepted */
	json_object_del(p, "k32");
	ck_assert_int_gt(gw_command_encode(NULL, "bin", 3, 0, 1, GW_COMMAND_PROPERTY_SET, "", p,
					   wire, sizeof(wire), reason, sizeof(reason)), 0);
	json_decref(p);
}
END_TEST

/* A [map] turns the thing-model identifier back into the frame key and raw value. */
START_TEST(test_reverse_map)
{
	static struct gw_config cfg;
	struct gw_frame f;
	char reason[GW_COMMAND_REASON_MAX];

	memset(&cfg, 0, sizeof(cfg));
	cfg.n_maps = 2;
	snprintf(cfg.maps[0].field, sizeof(cfg.maps[0].field), "t");
	snprintf(cfg.maps[0].identifier, sizeof(cfg.maps[0].identifier), "temp");
	cfg.maps[0].scale = 0.5;
	cfg.maps[0].offset = 10;
	snprintf(cfg.maps[1].field, sizeof(cfg.maps[1].field), "period");
	snprintf(cfg.maps[1].identifier, sizeof(cfg.maps[1].identifier), "interval");
	cfg.maps[1].scale = 1;

	ck_assert_int_gt(roundtrip(&cfg, GW_COMMAND_PROPERTY_SET, NULL,
				   "{\"temp\":20,\"interval\":7,\"other\":1.5}", &f, reason), 0);
	ck_assert_uint_eq(f.n_fields, 3);
	/* (20 - 10) / 0.5 = 20, an integer in, an integer out */
	ck_assert(field(&f, "t")->value.type == GW_VALUE_INT);
	ck_assert_int_eq(field(&f, "t")->value.i, 20);
	ck_assert_int_eq(field(&f, "period")->value.i, 7);
	ck_assert_double_eq(field(&f, "other")->value.d, 1.5);
	/* a fraction stays a real */
	ck_assert_int_gt(roundtrip(&cfg, GW_COMMAND_PROPERTY_SET, NULL, "{\"temp\":10.25}", &f,
				   reason), 0);
	ck_assert(field(&f, "t")->value.type == GW_VALUE_DOUBLE);
	ck_assert_double_eq(field(&f, "t")->value.d, 0.5);
	/* two members that are one field */
	ck_assert_int_eq(roundtrip(&cfg, GW_COMMAND_PROPERTY_SET, NULL, "{\"temp\":1,\"t\":2}",
				   &f, reason), -EINVAL);
	ck_assert_msg(strstr(reason, "both field t"), "reason: %s", reason);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("command");
	TCase *tc = tcase_create("encode");

	tcase_add_test(tc, test_doc_example);
	tcase_add_test(tc, test_value_types);
	tcase_add_loop_test(tc, test_refused, 0, (int)(sizeof(refused) / sizeof(refused[0])));
	tcase_add_test(tc, test_too_many_fields);
	tcase_add_test(tc, test_reverse_map);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ck_run_suite(suite());
}
