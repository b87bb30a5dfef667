/* SPDX-License-Identifier: MIT */
/*
 * The tail stream's event lines (gw/tap.h): the exact text of each kind of event, values as
 * decoded, and a clear refusal of what JSON cannot carry.
 */

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "../helpers/ckrun.h"
#include "gw/tap.h"

static struct gw_jsonw *w;

static void setup(void)
{
	w = gw_jsonw_new();
}

static void teardown(void)
{
	w = gw_jsonw_free(w);
}

/* The line written, NUL-terminated, after checking that jansson reads it as one object. */
static const char *line(void)
{
	static char buf[4096];
	size_t len;
	const char *data = gw_jsonw_data(w, &len);
	json_error_t err;
	json_t *o;

	ck_assert_uint_lt(len, sizeof(buf));
	memcpy(buf, data, len);
	buf[len] = '\0';
	o = json_loads(buf, 0, &err);
	ck_assert_msg(json_is_object(o), "%s: %s", buf, err.text);
	json_decref(o);
	return buf;
}

static void add(struct gw_frame *f, const char *key, enum gw_value_type type)
{
	struct gw_field *fl = &f->fields[f->n_fields++];

	snprintf(fl->key, sizeof(fl->key), "%s", key);
	fl->value.type = type;
}

START_TEST(test_telemetry)
{
	struct gw_frame f = {
		.type = GW_FRAME_TELEMETRY, .has_addr = true, .addr = 3, .has_seq = true, .seq = 17
	};

	add(&f, "MQ2", GW_VALUE_INT);
	f.fields[0].value.i = 30;
	add(&f, "DHT11_T", GW_VALUE_DOUBLE);
	f.fields[1].value.d = 21.5;
	add(&f, "relay", GW_VALUE_BOOL);
	f.fields[2].value.b = true;
	add(&f, "state", GW_VALUE_STRING);
	snprintf(f.fields[3].value.s, sizeof(f.fields[3].value.s), "a\"b");
	ck_assert_int_eq(gw_tap_frame(w, 1700000000123ULL, "uart0", "0123456789abcdef01234567", &f),
			 0);
	ck_assert_str_eq(line(),
			 "{\"event\":\"frame\",\"time_ms\":1700000000123,\"port\":\"uart0\","
			 "\"node\":\"0123456789abcdef01234567\",\"type\":\"telemetry\","
			 "\"addr\":3,\"seq\":17,\"fields\":{\"MQ2\":30,\"DHT11_T\":21.5,"
			 "\"relay\":true,\"state\":\"a\\\"b\"}}");

	/* a text line: no address, no sequence, no node yet */
	f = (struct gw_frame){ .type = GW_FRAME_TELEMETRY };
	add(&f, "t", GW_VALUE_DOUBLE);
	f.fields[0].value.d = NAN;
	add(&f, "u", GW_VALUE_DOUBLE);
	f.fields[1].value.d = -INFINITY;
	ck_assert_int_eq(gw_tap_frame(w, 5, "txt", NULL, &f), 0);
	ck_assert_str_eq(line(),
			 "{\"event\":\"frame\",\"time_ms\":5,\"port\":\"txt\",\"node\":null,"
			 "\"type\":\"telemetry\",\"fields\":{\"t\":\"nan\",\"u\":\"-inf\"}}");
}
END_TEST

START_TEST(test_other_frames)
{
	struct gw_frame f = { .type = GW_FRAME_HELLO,
			      .has_addr = true,
			      .addr = 1,
			      .has_seq = true,
			      .seq = 0,
			      .boot_counter = 7 };

	for (int i = 0; i < GW_UID_SIZE; i++)
		f.uid[i] = (uint8_t)(0x10 + i);
	snprintf(f.fw_version, sizeof(f.fw_version), "1.2.3");
	ck_assert_int_eq(gw_tap_frame(w, 1, "bus", "101112131415161718191a1b", &f), 0);
	ck_assert_str_eq(line(),
			 "{\"event\":\"frame\",\"time_ms\":1,\"port\":\"bus\","
			 "\"node\":\"101112131415161718191a1b\",\"type\":\"hello\",\"addr\":1,"
			 "\"seq\":0,\"uid\":\"101112131415161718191a1b\","
			 "\"firmware\":\"1.2.3\",\"boot\":7}");

	f = (struct gw_frame){ .type = GW_FRAME_COMMAND_REPLY,
			       .has_addr = true,
			       .addr = 2,
			       .has_seq = true,
			       .seq = 9,
			       .cmd_id = 44,
			       .code = 200 };
	add(&f, "report_interval_ms", GW_VALUE_INT);
	f.fields[0].value.i = 700;
	ck_assert_int_eq(gw_tap_frame(w, 2, "bus", "n2", &f), 0);
	ck_assert_str_eq(line(),
			 "{\"event\":\"frame\",\"time_ms\":2,\"port\":\"bus\",\"node\":\"n2\","
			 "\"type\":\"command-reply\",\"addr\":2,\"seq\":9,\"cmd_id\":44,"
			 "\"code\":200,\"fields\":{\"report_interval_ms\":700}}");

	f = (struct gw_frame){ .type = GW_FRAME_EVENT };
	snprintf(f.name, sizeof(f.name), "alarm");
	ck_assert_int_eq(gw_tap_frame(w, 3, "bus", "n2", &f), 0);
	ck_assert_str_eq(line(),
			 "{\"event\":\"frame\",\"time_ms\":3,\"port\":\"bus\",\"node\":\"n2\","
			 "\"type\":\"event\",\"name\":\"alarm\",\"fields\":{}}");
}
END_TEST

START_TEST(test_bad_and_raw)
{
	static const uint8_t bytes[] = { 'M', 'Q', '2', '=', '3', '0', '\r', '\n', 0x00, 0xff };

	ck_assert_int_eq(gw_tap_bad(w, 9, "txt", NULL, GW_FRAME_ERR_CRC, ""), 0);
	ck_assert_str_eq(line(), "{\"event\":\"bad\",\"time_ms\":9,\"port\":\"txt\",\"node\":null,"
				 "\"reason\":\"crc\",\"why\":\"\"}");
	ck_assert_int_eq(gw_tap_bad(w, 9, "bin", "n1", GW_FRAME_ERR_MALFORMED, "bad field 2"), 0);
	ck_assert_str_eq(line(),
			 "{\"event\":\"bad\",\"time_ms\":9,\"port\":\"bin\",\"node\":\"n1\","
			 "\"reason\":\"malformed\",\"why\":\"bad field 2\"}");
	ck_assert_int_eq(gw_tap_raw(w, 10, "txt", bytes, sizeof(bytes)), 0);
	ck_assert_str_eq(line(), "{\"event\":\"raw\",\"time_ms\":10,\"port\":\"txt\","
				 "\"hex\":\"4d51323d33300d0a00ff\"}");
	ck_assert_int_eq(gw_tap_raw(w, 10, "txt", bytes, 0), 0);
	ck_assert_str_eq(line(),
			 "{\"event\":\"raw\",\"time_ms\":10,\"port\":\"txt\",\"hex\":\"\"}");
}
END_TEST

START_TEST(test_long_raw)
{
	uint8_t bytes[4096];
	size_t len;
	const char *data;

	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)i;
	ck_assert_int_eq(gw_tap_raw(w, 1, "p", bytes, sizeof(bytes)), 0);
	data = gw_jsonw_data(w, &len);
	/* the head, every byte as two digits, the end */
	ck_assert_uint_eq(len,
			  strlen("{\"event\":\"raw\",\"time_ms\":1,\"port\":\"p\",\"hex\":\"\"}") +
				  2 * sizeof(bytes));
	ck_assert(memcmp(data + len - 6, "feff\"}", 6) == 0);
}
END_TEST

START_TEST(test_not_utf8)
{
	struct gw_frame f = { .type = GW_FRAME_TELEMETRY };

	add(&f, "s", GW_VALUE_STRING);
	snprintf(f.fields[0].value.s, sizeof(f.fields[0].value.s), "\xff");
	ck_assert_int_eq(gw_tap_frame(w, 1, "txt", NULL, &f), -EINVAL);
	/* the writer starts clean for the next event */
	ck_assert_int_eq(gw_tap_bad(w, 9, "txt", NULL, GW_FRAME_ERR_CRC, ""), 0);
	ck_assert_ptr_nonnull(strstr(line(), "\"reason\":\"crc\""));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("tap");
	TCase *tc = tcase_create("lines");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_telemetry);
	tcase_add_test(tc, test_other_frames);
	tcase_add_test(tc, test_bad_and_raw);
	tcase_add_test(tc, test_long_raw);
	tcase_add_test(tc, test_not_utf8);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ck_run_suite(suite());
}
