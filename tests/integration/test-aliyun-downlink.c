/* SPDX-License-Identifier: MIT */
/*
 * Commands from the cloud with the real daemon, the loopback Aliyun test cloud
 * (tests/cloud/aliyun_cloud.py) and a node simulated by sensorgw-sim in binary framing on a
 * pty: property sets, service calls and RRPC requests reach the node as command frames, and
 * the cloud gets the node's code back, or an error code when no node can answer.
 */

#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cloud.h"
#include "fixture.h"

#define PK CL_PK
#define DN CL_DN /* device_name = dev-{port}: the binary node on [port n1] */
#define DS CL_DS
#define DN2 "dev-n2" /* a text node on [port n2] */
#define DS2 fx_secret("aliyun-device2")

/*
 * The cloud with both devices, their secrets in the credential store, the simulated binary
 * node on tty-n1 (two frames a second), a text pty on tty-n2 and the daemon; returns when
 * dev-n1 is online. The simulator's pid goes to *sim.
 */
static void start_all(struct fx_pty *n2, pid_t *sim)
{
	const char *const online[] = { "device " DN ": online", NULL };
	char extra[512];
	char *conf;
	json_t *r;

	cl_start(fx_strf("{\"deviceName\": \"" DN "\", \"deviceSecret\": \"%s\"}, "
			 "{\"deviceName\": \"" DN2 "\", \"deviceSecret\": \"%s\"}", DS, DS2));
	/* the simulator's gas readings are not in the test product's schema */
	r = cl_ctl("set_product", json_pack("{s:s,s:n}", "productKey", PK, "schema"));
	ck_assert(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	cl_provision(DN, DS);
	cl_provision(DN2, DS2);

	*sim = cl_sim_start("0123456789abcdef01234567");
	fx_pty_new(n2, "tty-n2");
	snprintf(extra, sizeof(extra), "auth = device-secret\n\n[port n2]\npath = %s\n"
		 "framing = text\n", fx_path("tty-n2"));
	conf = cl_binary_config(cl_aliyun_config(extra), NULL);
	fx_daemon_start(conf);
	free(conf);
	ck_assert(fx_pty_wait_opened(n2, fx_daemon_pid(), FX_WAIT_MS));
	ck_assert_msg(fx_daemon_wait_log_line(online, 30000), "dev-n1 never came online");
	/* a text record makes dev-n2 a device with a session too */
	cl_write_line(n2, "temp=5.5,hum=5\r\n");
}

START_TEST(test_commands)
{
	struct fx_pty n2;
	json_t *reply, *payload;
	pid_t sim;

	start_all(&n2, &sim);

	/* property set: the node applies it and answers with the value now in force */
	reply = cl_downlink("property_set", json_pack("{s:s,s:{s:i}}", "deviceName", DN, "params",
						   "report_interval_ms", 700), 10);
	ck_assert_int_eq(cl_reply_code(reply), 200);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(reply, "data"),
							    "report_interval_ms")), 700);
	ck_assert_str_eq(json_string_value(json_object_get(reply, "topic")),
			 "/sys/" PK "/" DN "/thing/service/property/set_reply");
	ck_assert_msg(cl_sim_log_has("property-set '' -> 200 report_interval_ms=700"),
		      "the simulator did not get the value");
	json_decref(reply);

	/* the node refuses a property it does not have: its code reaches the cloud */
	reply = cl_downlink("property_set", json_pack("{s:s,s:{s:i}}", "deviceName", DN, "params",
						   "no_such_property", 1), 10);
	ck_assert_int_eq(cl_reply_code(reply), 422);
	ck_assert(cl_sim_log_has("-> 422 rejected=no_such_property"));
	json_decref(reply);

	/* asynchronous service call: the answer on thing/service/ping_reply */
	reply = cl_downlink("service_call", json_pack("{s:s,s:s,s:{}}", "deviceName", DN, "service",
						   "ping", "params"), 10);
	ck_assert_int_eq(cl_reply_code(reply), 200);
	ck_assert_str_eq(json_string_value(json_object_get(reply, "topic")),
			 "/sys/" PK "/" DN "/thing/service/ping_reply");
	ck_assert(json_integer_value(json_object_get(json_object_get(reply, "data"),
						     "uptime_ms")) > 0);
	json_decref(reply);

	/* a service the node does not offer */
	reply = cl_downlink("service_call", json_pack("{s:s,s:s,s:{}}", "deviceName", DN, "service",
						   "selfdestruct", "params"), 10);
	ck_assert_int_eq(cl_reply_code(reply), 404);
	json_decref(reply);

	/* RRPC: answered on rrpc/response/<msgId> within the 8 s the platform waits */
	reply = cl_downlink("rrpc", json_pack("{s:s,s:s,s:{s:s,s:s,s:s,s:{}}}", "deviceName", DN,
					   "msgId", "1234567", "payload", "id", "42",
					   "version", "1.0", "method", "thing.service.ping",
					   "params"), 8);
	ck_assert_int_lt(json_integer_value(json_object_get(reply, "latencyMs")), 8000);
	ck_assert_str_eq(json_string_value(json_object_get(reply, "topic")),
			 "/sys/" PK "/" DN "/rrpc/response/1234567");
	payload = json_loads(json_string_value(json_object_get(reply, "payload")), 0, NULL);
	ck_assert_ptr_nonnull(payload);
	ck_assert_int_eq(json_integer_value(json_object_get(payload, "code")), 200);
	ck_assert_str_eq(json_string_value(json_object_get(payload, "id")), "42");
	json_decref(payload);
	json_decref(reply);

	/* an RRPC payload that is no Alink request is answered at once, not dropped */
	reply = cl_downlink("rrpc", json_pack("{s:s,s:s}", "deviceName", DN, "payload", "ping"), 8);
	payload = json_loads(json_string_value(json_object_get(reply, "payload")), 0, NULL);
	ck_assert_ptr_nonnull(payload);
	ck_assert_int_eq(json_integer_value(json_object_get(payload, "code")), 460);
	ck_assert(json_is_string(json_object_get(payload, "message")));
	json_decref(payload);
	json_decref(reply);

	/* a property set the frame cannot carry: refused with 460 and a reason */
	reply = cl_downlink("property_set", json_pack("{s:s,s:{s:{s:i}}}", "deviceName", DN,
						   "params", "nested", "a", 1), 10);
	ck_assert_int_eq(cl_reply_code(reply), 460);
	json_decref(reply);
	ck_assert(fx_daemon_log_contains("answered with code 460"));

	/* a text node has no command channel */
	ck_assert(cl_wait(json_pack("{s:s,s:s,s:i}", "ev", "mqtt_connect", "deviceName", DN2,
				       "rc", 0), 30));
	ck_assert(cl_wait(json_pack("{s:s,s:s}", "ev", "mqtt_subscribe", "deviceName", DN2), 10));
	reply = cl_downlink("property_set", json_pack("{s:s,s:{s:b}}", "deviceName", DN2, "params",
						   "led", 1), 10);
	ck_assert_int_eq(cl_reply_code(reply), 400);
	json_decref(reply);
	ck_assert(fx_daemon_log_contains("text framing, which has no command channel"));

	fx_sim_stop();
	fx_pty_close(&n2);
}
END_TEST

START_TEST(test_no_answer)
{
	const char *const closed[] = { "port n1", "went away", NULL };
	struct fx_pty n2;
	json_t *reply;
	json_int_t latency;
	pid_t sim;

	start_all(&n2, &sim);

	/* a node that never answers: an error after the node timeout, still within 8 s */
	ck_assert_int_eq(kill(sim, SIGSTOP), 0);
	reply = cl_downlink("property_set", json_pack("{s:s,s:{s:b}}", "deviceName", DN, "params",
						   "led", 1), 10);
	ck_assert_int_eq(kill(sim, SIGCONT), 0);
	ck_assert_int_eq(cl_reply_code(reply), 500);
	latency = json_integer_value(json_object_get(reply, "latencyMs"));
	ck_assert_msg(latency >= 4500 && latency < 8000, "answered after %lld ms",
		      (long long)latency);
	json_decref(reply);
	ck_assert(fx_daemon_log_contains("did not answer command"));
	/* its late reply is noticed and dropped */
	{
		const char *const late[] = { "ignored: no such command is pending", NULL };

		ck_assert(fx_daemon_wait_log_line(late, FX_WAIT_MS));
	}

	/* the node is unplugged: its device still has a session, the command an error */
	fx_sim_stop();
	ck_assert(fx_daemon_wait_log_line(closed, FX_WAIT_MS));
	reply = cl_downlink("property_set", json_pack("{s:s,s:{s:b}}", "deviceName", DN, "params",
						   "led", 0), 10);
	ck_assert_int_eq(cl_reply_code(reply), 6100);
	ck_assert_int_lt(json_integer_value(json_object_get(reply, "latencyMs")), 4000);
	json_decref(reply);
	ck_assert(fx_daemon_log_contains("is closed (unplugged?)"));
	fx_pty_close(&n2);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("aliyun-downlink");
	TCase *tc = tcase_create("downlink");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_commands);
	tcase_add_test(tc, test_no_answer);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cl_run(suite());
}
