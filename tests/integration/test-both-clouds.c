/* SPDX-License-Identifier: MIT */
/*
 * Both clouds at once: one node's stream, stored once in the spool, delivered by an aliyun
 * uplink to the loopback Aliyun test cloud and by a tencent uplink to the loopback Tencent
 * test cloud, each with its own cursor: every record reaches both, and a cloud that is down
 * holds back only its own uplink.
 */

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cloud.h"
#include "cloudctl.h"
#include "fixture.h"
#include "tcloud.h"

#define N 10

static size_t count_reports(void)
{
	return tc_count("thing_uplink", "method", "report");
}

static size_t count_posts(void)
{
	return cl_count("alink_post", "deviceName", CL_DN);
}

START_TEST(test_both)
{
	const char *const counters_ali[] = { "uplink ali", "counters:", " acked=15 ", NULL };
	const char *const counters_tc[] = { "uplink tc", "counters:", " queued=5 ", NULL };
	char products[2048], extra[1024];
	struct fx_pty n1;
	char *conf;

	snprintf(products, sizeof(products),
		 "{\"products\": [{\"productKey\": \"" CL_PK "\", \"productSecret\": \"%s"
		 "\", \"dynamicRegistration\": false, \"allowTcp\": false, \"schema\": "
		 "{\"MQ2\": \"int\", \"DHT11_T\": \"float\"}, \"devices\": [{\"deviceName\": \""
		 CL_DN "\", \"deviceSecret\": \"%s\"}]}]}",
		 CL_PS, CL_DS);
	json_decref(cl_launch("aliyun_cloud.py", products));
	cl_provision(CL_DN, CL_DS);
	tc_start(fx_strf("{\"deviceName\": \"" TC_DN "\", \"psk\": \"%s\"}", TC_PSK), NULL);
	tc_provision_psk(TC_DN, TC_PSK);

	snprintf(extra, sizeof(extra),
		 "auth = device-secret\n\n"
		 "[uplink tc]\ntype = tencent\nproduct_id = " TC_PID "\nhost = localhost\n"
		 "port = %d\nca_file = %s\nreconnect_min_ms = 1000\nreconnect_max_ms = 2000\n",
		 tc_mqtts_port, fx_path("broker/ca.crt"));
	fx_pty_new(&n1, "tty-n1");
	conf = cl_aliyun_config(extra);
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), FX_WAIT_MS));

	for (int i = 0; i < N; i++) {
		char line[64];
		int len = snprintf(line, sizeof(line), "MQ2=%d,DHT11_T=%d.5\r\n", 100 + i, 20 + i);

		fx_pty_write(&n1, line, (size_t)len);
		fx_sleep_ms(50);
	}
	ck_assert_uint_eq(fx_wait_count(count_posts, N, 30000), N);
	ck_assert_uint_eq(fx_wait_count(count_reports, N, 30000), N);
	ck_assert(cl_wait_property(CL_DN, "MQ2", 100 + N - 1, 5000));

	/* the Tencent cloud goes away: Aliyun goes on, the Tencent uplink keeps its backlog */
	json_decref(cc_ctl(tc_ctl_port, "shutdown", json_object()));
	fx_sleep_ms(500);
	for (int i = 0; i < 5; i++) {
		char line[64];
		int len = snprintf(line, sizeof(line), "MQ2=%d,DHT11_T=1.5\r\n", 500 + i);

		fx_pty_write(&n1, line, (size_t)len);
		fx_sleep_ms(50);
	}
	ck_assert_uint_eq(fx_wait_count(count_posts, N + 5, 30000), N + 5);
	ck_assert_int_eq(fx_daemon_stop(NULL), 0);
	/* one spool, two cursors: all acknowledged by one, five still queued for the other */
	ck_assert_msg(fx_daemon_log_line_has(counters_ali), "aliyun counters");
	ck_assert_msg(fx_daemon_log_line_has(counters_tc), "tencent counters");
	free(conf);
	fx_pty_close(&n1);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("both-clouds");
	TCase *tc = tcase_create("both-clouds");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_both);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cl_run(suite());
}
