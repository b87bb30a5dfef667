/* SPDX-License-Identifier: MIT */
/*
 * The tencent uplink with the real daemon against the loopback Tencent test cloud
 * (tests/cloud/tencent_cloud.py) over TLS with the fixture's test CA, and a node simulated by
 * sensorgw-sim in binary framing on a pty, whose PSK was provisioned beforehand: data-template
 * reports of the six seed sensors and their replies, report_info with the node's firmware,
 * control and action round trips, a control issued while offline fetched by get_status and
 * cleared, a restart, a wrong CA, and the CONNECT pacing of docs/protocols/tencent.md §1.7.
 */

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloudctl.h"
#include "fixture.h"
#include "tcloud.h"

#define DN TC_DN

static const char *const seed_sensors[] = { "MQ2", "MQ135", "MQ4", "MQ7", "DHT11_T", "DHT11_H" };

/* The cloud with dev-n1 and its PSK, the PSK in the credential store, the simulated binary
 * node on tty-n1 (two frames a second) and the daemon with extra config; returns when dev-n1
 * is online. */
static void start_all(const char *extra)
{
	char link[4096];
	const char *const args[] = { "--pty", "--link", link, "--framing", "binary", "--rate", "2",
				     "--uid", "0123456789abcdef01234567", NULL };
	const char *const online[] = { "device " DN ": online", NULL };
	char *conf;

	tc_start(fx_strf("{\"deviceName\": \"" DN "\", \"psk\": \"%s\"}", TC_PSK), NULL);
	tc_provision_psk(DN, TC_PSK);
	/* fx_path() rotates its buffers: keep the link's name */
	snprintf(link, sizeof(link), "%s", fx_path("tty-n1"));
	(void)fx_sim_start(args);
	conf = tc_config(extra);
	fx_daemon_start(conf);
	free(conf);
	ck_assert_msg(fx_daemon_wait_log_line(online, 30000), "dev-n1 never came online");
}

/* control or action through the control API, waiting up to wait_s for the reply; returns the
 * reply (a new reference), checking that a session got it. */
static json_t *downlink(const char *cmd, json_t *args, int wait_s)
{
	json_t *r, *reply;

	json_object_set_new(args, "productId", json_string(TC_PID));
	json_object_set_new(args, "deviceName", json_string(DN));
	json_object_set_new(args, "wait", json_integer(cc_wait_s(wait_s)));
	r = tc_ctl(cmd, args);
	ck_assert_msg(json_is_true(json_object_get(r, "ok")), "%s refused: %s", cmd,
		      json_string_value(json_object_get(r, "error")));
	ck_assert_msg(json_array_size(json_object_get(r, "deliveredTo")) == 1,
		      "%s was not delivered: the device is not subscribed", cmd);
	ck_assert_msg(!json_is_true(json_object_get(r, "timedOut")), "%s: no reply in %d s", cmd,
		      wait_s);
	reply = json_incref(json_object_get(r, "reply"));
	json_decref(r);
	ck_assert(json_is_object(reply));
	return reply;
}

static json_int_t reply_code(json_t *reply)
{
	ck_assert(json_is_integer(json_object_get(reply, "code")));
	return json_integer_value(json_object_get(reply, "code"));
}

static bool sim_log_has(const char *needle)
{
	char *log = fx_read_file(fx_path("sim.log"));
	bool has = log && strstr(log, needle);

	free(log);
	return has;
}

static bool wait_sim_log(const char *needle, int timeout_ms)
{
	int64_t end = fx_mono_ms() + timeout_ms;

	while (fx_mono_ms() < end) {
		if (sim_log_has(needle))
			return true;
		fx_sleep_ms(100);
	}
	return false;
}

static size_t pending_controls(void)
{
	json_t *r = tc_ctl("device", tc_dev_args(DN));
	size_t n = json_array_size(json_object_get(r, "pendingControls"));

	json_decref(r);
	return n;
}

static bool wait_since(json_t *match, json_int_t since, int timeout_s)
{
	json_t *r = tc_ctl("wait", json_pack("{s:o,s:I,s:i}", "match", match, "since", since,
					     "timeout", timeout_s));
	bool ok = json_is_true(json_object_get(r, "ok")) && json_object_get(r, "event");

	json_decref(r);
	return ok;
}

START_TEST(test_reports_and_commands)
{
	const char *const rejected[] = { "device " DN ": the platform rejected " TC_PID "-",
					 "with code 406", "out of range", NULL };
	json_t *r, *reply, *info, *tmpl;
	const char *fw;

	start_all(NULL);

	/* the six seed sensors, in data-template form, accepted (report_reply code 0) */
	ck_assert_msg(tc_wait(json_pack("{s:s,s:s,s:s,s:i}", "ev", "thing_uplink", "method",
					"report", "deviceName", DN, "code", 0), 20),
		      "no accepted report");
	for (size_t i = 0; i < sizeof(seed_sensors) / sizeof(seed_sensors[0]); i++)
		ck_assert_msg(tc_wait_property(DN, seed_sensors[i], 10000), "no %s recorded",
			      seed_sensors[i]);
	/* one SUBSCRIBE per topic (docs/protocols/tencent.md §1.7): none refused */
	ck_assert_int_eq(tc_count("subscribe_refused", NULL, NULL), 0);
	ck_assert_int_ge(tc_count("mqtt_subscribe", "deviceName", DN), 3);

	/* base info: the node's firmware version from its hello */
	ck_assert_msg(tc_wait(json_pack("{s:s,s:s,s:i}", "ev", "thing_uplink", "method",
					"report_info", "code", 0), 20), "no report_info");
	r = tc_ctl("infos", tc_dev_args(DN));
	info = json_array_get(json_object_get(r, "infos"), 0);
	fw = json_string_value(json_object_get(json_object_get(info, "params"), "fw_ver"));
	ck_assert_msg(fw && strncmp(fw, "sim-", 4) == 0, "fw_ver %s", fw ? fw : "(none)");
	json_decref(r);

	/* control: the node applies it; control_reply carries its code (200 -> 0) */
	reply = downlink("control", json_pack("{s:{s:i}}", "params", "report_interval_ms", 700),
			 10);
	ck_assert_int_eq(reply_code(reply), 0);
	json_decref(reply);
	ck_assert(wait_sim_log("property-set '' -> 200 report_interval_ms=700", 5000));
	/* a property the node does not have: the node's 422 reaches the cloud */
	/* (the cloud's bool is 0/1, the node's a JSON boolean: force skips the template) */
	reply = downlink("control", json_pack("{s:{s:b},s:b}", "params", "led", 1, "force", 1),
			 10);
	ck_assert_int_eq(reply_code(reply), 0);
	json_decref(reply);
	reply = downlink("control", json_pack("{s:{s:i},s:b}", "params", "nope", 1, "force", 1),
			 10);
	ck_assert_int_eq(reply_code(reply), 422);
	json_decref(reply);

	/* action: a service call named by its actionId; the node's fields are the response */
	reply = downlink("action", json_pack("{s:s,s:{}}", "actionId", "ping", "params"), 10);
	ck_assert_int_eq(reply_code(reply), 0);
	ck_assert(json_integer_value(json_object_get(json_object_get(reply, "response"),
						     "uptime_ms")) > 0);
	json_decref(reply);
	reply = downlink("action", json_pack("{s:s,s:{}}", "actionId", "selfdestruct", "params"),
			 10);
	ck_assert_int_eq(reply_code(reply), 404);
	json_decref(reply);

	/* a template the readings break: report_reply 406, logged and counted, never resent */
	tmpl = json_loads("{\"properties\": {\"MQ2\": {\"type\": \"int\", \"min\": 0, \"max\": 1},"
			  " \"MQ135\": \"int\", \"MQ4\": \"int\", \"MQ7\": \"int\", \"DHT11_T\": "
			  "\"float\", \"DHT11_H\": \"float\"}}", 0, NULL);
	ck_assert_ptr_nonnull(tmpl);
	r = tc_ctl("set_product", json_pack("{s:s,s:o}", "productId", TC_PID, "template", tmpl));
	ck_assert(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	ck_assert_msg(fx_daemon_wait_log_line(rejected, 20000), "no rejection logged");
	ck_assert(WIFEXITED(fx_daemon_stop(NULL)));
	{
		const char *const counters[] = { "uplink tc", "counters:", " connects=1 ", NULL };
		const char *const none[] = { "uplink tc", "counters:", " rejected=0 ", NULL };

		ck_assert(fx_daemon_log_line_has(counters));
		ck_assert(!fx_daemon_log_line_has(none));
	}
	ck_assert_int_eq(tc_count("mqtt_connect_limited", NULL, NULL), 0);
	ck_assert_int_eq(tc_count("throttled", NULL, NULL), 0);
}
END_TEST

START_TEST(test_offline_control_and_restart)
{
	json_t *r;
	json_int_t since;
	char *conf;
	int status;

	start_all(NULL);
	ck_assert(tc_wait(json_pack("{s:s,s:s,s:i}", "ev", "thing_uplink", "method", "report",
				    "code", 0), 20));
	ck_assert(WIFEXITED(status = fx_daemon_stop(NULL)));
	ck_assert_int_eq(WEXITSTATUS(status), 0);

	/* issued while the device is offline: the cloud keeps it for get_status
	 * (docs/protocols/tencent.md §3.1) */
	r = tc_ctl("control", json_pack("{s:s,s:s,s:{s:i}}", "productId", TC_PID, "deviceName", DN,
					"params", "report_interval_ms", 900));
	ck_assert(json_is_true(json_object_get(r, "ok")));
	ck_assert(json_is_true(json_object_get(r, "queued")));
	json_decref(r);
	ck_assert_int_eq(pending_controls(), 1);

	/* restart, past the platform's CONNECT window: the same PSK, no registration */
	since = tc_last_seq();
	tc_wait_connect_window(DN);
	conf = fx_read_file(fx_path("sensorgw.conf"));
	ck_assert_ptr_nonnull(conf);
	fx_daemon_start(conf);
	free(conf);
	ck_assert_msg(wait_since(json_pack("{s:s,s:s}", "ev", "get_status", "deviceName", DN),
				 since, 30), "no get_status after the restart");
	ck_assert_msg(wait_since(json_pack("{s:s,s:i}", "ev", "clear_control", "code", 0), since,
				 20), "the offline control was not cleared");
	ck_assert(sim_log_has("property-set '' -> 200 report_interval_ms=900"));
	ck_assert_int_eq(pending_controls(), 0);
	ck_assert_msg(wait_since(json_pack("{s:s,s:s,s:i}", "ev", "thing_uplink", "method",
					   "report", "code", 0), since, 20),
		      "no data after the restart");
	ck_assert_int_eq(tc_count("https_register", NULL, NULL), 0);
	ck_assert_int_eq(tc_count("mqtt_connect_limited", NULL, NULL), 0);
	ck_assert(fx_daemon_running());
}
END_TEST

/* auth = register: a node whose device has no PSK yet registers itself once (一型一密), the
 * PSK is stored 0600 before it is used, and a restart uses the stored one. */
START_TEST(test_register_then_restart)
{
	char link[4096], extra[1024];
	const char *const args[] = { "--pty", "--link", link, "--framing", "binary", "--rate", "2",
				     "--uid", "0123456789abcdef01234567", NULL };
	const char *const online[] = { "device " DN ": online", NULL };
	json_int_t since;
	struct stat st;
	char *conf;
	int status;

	/* pre-created in the console without a secret: registerType 1 lets it register */
	tc_start("\"" DN "\"", NULL);
	fx_write_secret(fx_path("tps"), TC_PS);
	snprintf(extra, sizeof(extra), "auth = register\nproduct_secret_file = %s\n"
		 "register_url = https://localhost:%d/device/register\nregister_ca_file = %s\n",
		 fx_path("tps"), tc_https_port, fx_path("broker/ca.crt"));
	snprintf(link, sizeof(link), "%s", fx_path("tty-n1"));
	(void)fx_sim_start(args);
	conf = tc_config(extra);
	fx_daemon_start(conf);
	ck_assert_msg(fx_daemon_wait_log_line(online, 30000), "dev-n1 never came online");
	ck_assert(fx_daemon_log_contains("device " DN ": registered; PSK stored"));
	ck_assert_int_eq(tc_count("https_register", NULL, NULL), 1);
	ck_assert_int_eq(stat(fx_path("state/credentials/tc/" DN ".json"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(stat(fx_path("state/credentials/tc"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0700);
	ck_assert(tc_wait(json_pack("{s:s,s:s,s:i}", "ev", "thing_uplink", "method", "report",
				    "code", 0), 20));

	/* restart, past the CONNECT window: the stored PSK, no second registration */
	ck_assert(WIFEXITED(status = fx_daemon_stop(NULL)));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	since = tc_last_seq();
	tc_wait_connect_window(DN);
	fx_daemon_start(conf);
	free(conf);
	ck_assert_msg(wait_since(json_pack("{s:s,s:s,s:i}", "ev", "thing_uplink", "method",
					   "report", "code", 0), since, 30),
		      "no data after the restart");
	ck_assert_int_eq(tc_count("https_register", NULL, NULL), 1);
	ck_assert_int_eq(tc_count("mqtt_connect_limited", NULL, NULL), 0);
}
END_TEST

START_TEST(test_wrong_ca)
{
	const char *const failed[] = { "device " DN ": connecting failed", "TLS", NULL };
	char link[4096];
	const char *const args[] = { "--pty", "--link", link, "--framing", "binary", "--rate", "2",
				     NULL };
	char *conf, *text, *at;

	tc_start(fx_strf("{\"deviceName\": \"" DN "\", \"psk\": \"%s\"}", TC_PSK), NULL);
	tc_provision_psk(DN, TC_PSK);
	snprintf(link, sizeof(link), "%s", fx_path("tty-n1"));
	(void)fx_sim_start(args);
	text = tc_config(NULL);
	at = strstr(text, "broker/ca.crt");
	ck_assert_ptr_nonnull(at);
	ck_assert_int_gt(asprintf(&conf, "%.*sbroker/wrongca.crt%s", (int)(at - text), text,
				  at + strlen("broker/ca.crt")), 0);
	free(text);
	fx_daemon_start(conf);
	free(conf);
	ck_assert_msg(fx_daemon_wait_log_line(failed, 20000), "no line about the TLS failure");
	ck_assert_int_eq(tc_count("mqtt_connect", NULL, NULL), 0);
	ck_assert(fx_daemon_running());
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);
}
END_TEST

/* Sessions the cloud closes right after CONNACK are not retried faster than the platform
 * answers CONNECTs (docs/protocols/tencent.md §1.7: one per 5 s per device). */
START_TEST(test_connect_pacing)
{
	json_int_t since = 0;
	int64_t t0;

	start_all(NULL);
	t0 = fx_mono_ms();
	for (int i = 0; i < 3; i++) {
		json_t *r;

		ck_assert_msg(wait_since(json_pack("{s:s,s:s,s:i}", "ev", "mqtt_connect",
						   "deviceName", DN, "rc", 0), since, 30),
			      "no reconnect %d", i);
		since = tc_last_seq();
		r = tc_ctl("kick", tc_dev_args(DN));
		ck_assert(json_is_true(json_object_get(r, "ok")));
		json_decref(r);
	}
	ck_assert(wait_since(json_pack("{s:s,s:s,s:i}", "ev", "mqtt_connect", "deviceName", DN,
				       "rc", 0), since, 30));
	/* three gaps of at least 5 s */
	ck_assert_int_ge(fx_mono_ms() - t0, 15000);
	ck_assert_int_eq(tc_count("mqtt_connect_limited", NULL, NULL), 0);
	ck_assert(fx_daemon_running());
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("tencent");
	TCase *tc = tcase_create("tencent");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_reports_and_commands);
	tcase_add_test(tc, test_offline_control_and_restart);
	tcase_add_test(tc, test_register_then_restart);
	tcase_add_test(tc, test_wrong_ca);
	tcase_add_test(tc, test_connect_pacing);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cc_run(suite());
}
