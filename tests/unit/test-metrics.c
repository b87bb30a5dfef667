/* SPDX-License-Identifier: MIT */
/*
 * The status object as Prometheus text (src/metrics.c) on a status made here: a cloud
 * uplink in gateway topology with sub-devices in several states, names that need escaping,
 * null and missing fields, numbers as milliseconds and above 2^32. The real daemon's output
 * and promtool are checked by tests/integration/test-metrics.c.
 */

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../helpers/ckrun.h"
#include "gw/metrics.h"

static char *format(const char *status_text)
{
	json_error_t err;
	json_t *st = json_loads(status_text, 0, &err);
	char *text = NULL;
	size_t len = 0;

	ck_assert_msg(st, "bad test JSON: %s", err.text);
	ck_assert_int_eq(gw_metrics_format(st, &text, &len), 0);
	ck_assert_uint_eq(strlen(text), len);
	json_decref(st);
	return text;
}

/* (the whole text goes to stderr: Check's messages are short) */
#define has(text, line)                                                       \
	do {                                                                  \
		if (!strstr(text, line "\n"))                                 \
			fputs(text, stderr);                                  \
		ck_assert_msg(strstr(text, line "\n"), "no line '%s'", line); \
	} while (0)
#define lacks(text, what)                                               \
	do {                                                            \
		if (strstr(text, what))                                 \
			fputs(text, stderr);                            \
		ck_assert_msg(!strstr(text, what), "'%s' found", what); \
	} while (0)

START_TEST(test_gateway_uplink)
{
	char *t = format(
		"{\"version\":\"1.2\",\"uptime_ms\":61500,\"records\":5000000000,\"state\":\"running\","
		"\"spool\":{\"bytes\":10,\"dropped_overflow\":2,\"dropped_enospc\":0,"
		"\"lost_corrupt\":null,\"reserve\":{\"min_free_bytes\":16,\"fs_bytes\":null}},"
		"\"ports\":[{\"name\":\"a\\\"b\\\\c\\nd\",\"state\":\"absent\",\"crc_errors\":3}],"
		"\"uplinks\":[{\"name\":\"ali\",\"type\":\"aliyun\",\"state\":\"partial\","
		"\"counters\":{\"acked\":7,\"queued\":3,\"inflight\":1,\"commands\":2},"
		"\"law\":{\"exact\":false},\"oldest_age_ms\":2500,"
		"\"gateway\":{\"device\":\"PK/gw\",\"session\":\"online\"},"
		"\"devices\":[{\"device\":\"n1\",\"session\":\"online\","
		"\"provisioning\":\"provisioned\"},{\"device\":\"n2\",\"session\":\"logged-out\"}]}]}");

	has(t, "sensorgw_info{version=\"1.2\"} 1");
	has(t, "sensorgw_uptime_seconds 61.5");
	has(t, "sensorgw_records_stored_total 5000000000");
	has(t, "sensorgw_stopping 0");
	has(t, "sensorgw_spool_lost_records_total{reason=\"overflow\"} 2");
	has(t, "sensorgw_spool_lost_records_total{reason=\"enospc\"} 0");
	lacks(t, "reason=\"corrupt\"}"); /* null: no sample */
	has(t, "sensorgw_spool_reserve_bytes 16");
	lacks(t, "\nsensorgw_spool_fs_size_bytes ");
	/* the exposition format's three escapes */
	has(t, "sensorgw_port_open{port=\"a\\\"b\\\\c\\nd\"} 0");
	has(t, "sensorgw_port_bad_frames_total{port=\"a\\\"b\\\\c\\nd\",reason=\"crc\"} 3");
	has(t, "sensorgw_uplink_online{uplink=\"ali\",type=\"aliyun\"} 0");
	has(t, "sensorgw_uplink_oldest_age_seconds{uplink=\"ali\",type=\"aliyun\"} 2.5");
	has(t, "sensorgw_uplink_events_total{uplink=\"ali\",type=\"aliyun\",event=\"commands\"} 2");
	has(t, "sensorgw_uplink_events_total{uplink=\"ali\",type=\"aliyun\",event=\"acked\"} 7");
	/* gauges among the driver's counters have families of their own */
	lacks(t, "event=\"queued\"");
	lacks(t, "event=\"inflight\"");
	has(t, "sensorgw_uplink_law_exact{uplink=\"ali\",type=\"aliyun\"} 0");
	has(t, "sensorgw_gateway_online{uplink=\"ali\",device=\"PK/gw\"} 1");
	has(t, "sensorgw_device_session{uplink=\"ali\",device=\"n1\",state=\"online\"} 1");
	has(t, "sensorgw_device_session{uplink=\"ali\",device=\"n1\",state=\"idle\"} 0");
	has(t, "sensorgw_device_session{uplink=\"ali\",device=\"n2\",state=\"logged-out\"} 1");
	has(t, "sensorgw_device_session{uplink=\"ali\",device=\"n2\",state=\"online\"} 0");
	has(t, "sensorgw_device_provisioned{uplink=\"ali\",device=\"n1\"} 1");
	lacks(t, "sensorgw_device_provisioned{uplink=\"ali\",device=\"n2\"}");
	free(t);
}
END_TEST

/* Every family keeps its HELP and TYPE with no sample; each name is declared once. */
START_TEST(test_empty_status)
{
	char *t = format("{}"), *p;
	size_t help = 0, type = 0;

	for (p = t; (p = strstr(p, "# HELP ")); p++)
		help++;
	for (p = t; (p = strstr(p, "# TYPE ")); p++)
		type++;
	ck_assert_uint_gt(help, 50);
	ck_assert_uint_eq(help, type);
	for (p = t; *p; p = strchr(p, '\n') + 1)
		ck_assert_msg(*p == '#', "a sample from an empty status: %.60s", p);
	has(t, "# TYPE sensorgw_port_frames_total counter");
	has(t, "# TYPE sensorgw_uplink_queued_records gauge");
	free(t);
}
END_TEST

START_TEST(test_not_object)
{
	json_t *a = json_array();
	char *text = (char *)"untouched";
	size_t len = 7;

	ck_assert_int_eq(gw_metrics_format(a, &text, &len), -EINVAL);
	ck_assert_str_eq(text, "untouched");
	ck_assert_uint_eq(len, 7);
	ck_assert_int_eq(gw_metrics_format(NULL, &text, &len), -EINVAL);
	json_decref(a);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");

	tcase_add_test(tc, test_gateway_uplink);
	tcase_add_test(tc, test_empty_status);
	tcase_add_test(tc, test_not_object);
	suite_add_tcase(s, tc);
	return ck_run_suite(s);
}
