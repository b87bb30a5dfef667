/* SPDX-License-Identifier: MIT */
/*
 * The aliyun uplink with the real daemon against the loopback Aliyun test cloud
 * (tests/cloud/aliyun_cloud.py): HTTPS dynamic registration (its failures are in
 * test-aliyun-regfaults.c), the credential store across a restart, a pre-provisioned
 * DeviceSecret, and Alink property posts carrying a pty node's values. The cloud's TLS certificate comes from the fixture's own test CA.
 */

#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloud.h"
#include "fixture.h"
#include "gw/credstore.h"

#define PK CL_PK
#define PS CL_PS
#define DN CL_DN
#define DS CL_DS

#define CRED_FILE "state/credentials/ali/" DN ".json"

START_TEST(test_register_then_restart)
{
	struct fx_pty n1;
	struct stat st;
	char *conf;
	int status;

	cl_start("\"" DN "\"");
	fx_pty_new(&n1, "tty-n1");
	conf = cl_register_config();
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), FX_WAIT_MS));

	/* a new node appears: registered, stored, connected, its values arrive */
	cl_write_line(&n1, "temp=21.5,hum=40\r\n");
	ck_assert_msg(cl_wait(json_pack("{s:s,s:s,s:i}", "ev", "alink_post", "deviceName", DN,
					   "code", 200), 20), "no accepted property post");
	ck_assert_int_eq(cl_device_field(DN, "registerCount"), 1);
	ck_assert_int_ge(cl_device_field(DN, "connectCount"), 1);
	ck_assert(fx_daemon_log_contains("device " DN ": registered over HTTPS"));
	ck_assert_int_eq(stat(fx_path(CRED_FILE), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	ck_assert(cl_wait_property(DN, "temp", 21.5, 5000));
	ck_assert(cl_wait_property(DN, "hum", 40, 5000));

	/* restart: the stored secret is used, no second registration */
	ck_assert(WIFEXITED(status = fx_daemon_stop(NULL)));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), FX_WAIT_MS));
	cl_write_line(&n1, "temp=22.5,hum=41\r\n");
	ck_assert_msg(cl_wait_property(DN, "temp", 22.5, 20000), "no data after the restart");
	ck_assert(cl_wait_property(DN, "hum", 41, 5000));
	ck_assert_int_eq(cl_device_field(DN, "registerCount"), 1);
	ck_assert_int_eq(cl_count("https_register", NULL, NULL), 1);
	free(conf);
	fx_pty_close(&n1);
}
END_TEST

START_TEST(test_device_secret)
{
	struct gw_cred cred = {
		.cloud = GW_CRED_CLOUD_ALIYUN,
		.kind = GW_CRED_DEVICE_SECRET,
		.product = (char *)PK,
		.device = (char *)DN,
		.secret = (char *)DS,
	};
	char reason[GW_CREDSTORE_REASON_MAX];
	const char *const waited[] = { "device dev-n2: no DeviceSecret", NULL };
	const char *const counters[] = { "uplink ali", "counters:", " acked=1 queued=1 ", NULL };
	struct gw_credstore *store;
	struct fx_pty n1, n2;
	char extra[512];
	char *conf;

	cl_start("{\"deviceName\": \"" DN "\", \"deviceSecret\": \"" DS "\"}");
	/* provisioned beforehand through the credential store, as the man page tells */
	ck_assert_int_eq(mkdir(fx_path("state"), 0700), 0);
	ck_assert_int_eq(gw_credstore_open(fx_path("state/credentials/ali"), &store, reason,
					   sizeof(reason)), 0);
	ck_assert_msg(gw_credstore_save(store, &cred, reason, sizeof(reason)) == 0, "%s", reason);
	gw_credstore_close(store);

	fx_pty_new(&n1, "tty-n1");
	/* a second node whose device has no credential: its record comes first and waits */
	fx_pty_new(&n2, "tty-n2");
	snprintf(extra, sizeof(extra), "auth = device-secret\n\n[port n2]\npath = %s\n"
		 "framing = text\n", fx_path("tty-n2"));
	conf = cl_aliyun_config(extra);
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), FX_WAIT_MS));
	ck_assert(fx_pty_wait_opened(&n2, fx_daemon_pid(), FX_WAIT_MS));
	cl_write_line(&n2, "temp=5.5,hum=5\r\n");
	ck_assert(fx_daemon_wait_log_line(waited, FX_WAIT_MS));
	cl_write_line(&n1, "temp=19.5,hum=33\r\n");
	ck_assert(cl_wait(json_pack("{s:s,s:s,s:i}", "ev", "mqtt_connect", "deviceName", DN,
				       "rc", 0), 20));
	ck_assert(cl_wait_property(DN, "temp", 19.5, 10000));
	ck_assert(cl_wait_property(DN, "hum", 33, 5000));
	ck_assert_int_eq(cl_count("https_request", NULL, NULL), 0);
	ck_assert(fx_daemon_log_contains("device " DN ": online"));
	/* dev-n2's record is still stored, behind the cursor, for when it gets its secret */
	fx_daemon_stop(NULL);
	ck_assert(fx_daemon_log_line_has(counters));
	free(conf);
	fx_pty_close(&n1);
	fx_pty_close(&n2);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("aliyun");
	TCase *tc = tcase_create("aliyun");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_register_then_restart);
	tcase_add_test(tc, test_device_secret);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cl_run(suite());
}
