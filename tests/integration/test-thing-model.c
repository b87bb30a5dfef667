/* SPDX-License-Identifier: MIT */
/*
 * Thing models end to end: an aliyun and a tencent uplink, each with the model exported from
 * its console (tests/data/models), deliver one node's stream to the test clouds, which check
 * every post against the same models. The node sends what firmware sends: a bool as true, a
 * humidity out of range, an identifier the model does not have, an alert event. The daemon
 * converts (bool -> 1, numbers to their step), leaves out and counts what the model refuses,
 * takes the event type from the model, and dead-letters a record with nothing left; the clouds
 * see no violation at all. Without the models the same stream is refused by both clouds.
 */

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloud.h"
#include "cloudctl.h"
#include "fixture.h"
#include "tcloud.h"

#define N 5

static char *model(const char *name)
{
	char *p = NULL;

	ck_assert_int_gt(asprintf(&p, "%s/tests/data/models/%s", getenv("GW_SOURCE_ROOT"), name), 0);
	return p;
}

static size_t count_posts(void)
{
	return cl_count("alink_post", "deviceName", CL_DN);
}

static size_t count_reports(void)
{
	return tc_count("thing_uplink", "method", "report") +
	       tc_count("thing_uplink", "method", "event_post");
}

static json_int_t counter(json_t *status, const char *uplink, const char *name)
{
	json_t *u = tc_status_uplink(status, uplink);

	ck_assert_ptr_nonnull(u);
	return json_integer_value(json_object_get(json_object_get(u, "counters"), name));
}

static void start_clouds(void)
{
	char *tsl = model("aliyun-tsl.json"), *tmpl = model("tencent-template.json");

	cl_start(fx_strf("{\"deviceName\": \"" CL_DN "\", \"deviceSecret\": \"%s\"}", CL_DS));
	cl_provision(CL_DN, CL_DS);
	json_decref(cl_ctl("thing_model", json_pack("{s:s}", "file", tsl)));
	tc_start(fx_strf("{\"deviceName\": \"" TC_DN "\", \"psk\": \"%s\"}", TC_PSK), NULL);
	tc_provision_psk(TC_DN, TC_PSK);
	json_decref(tc_ctl("thing_model", json_pack("{s:s,s:s}", "file", tmpl, "productId",
						     TC_PID)));
	free(tsl);
	free(tmpl);
}

/* The daemon with both uplinks; with_models: each with its console's model. */
static char *config(bool with_models)
{
	char *tsl = model("aliyun-tsl.json"), *tmpl = model("tencent-template.json");
	const char *extra;
	char *conf;

	extra = fx_strf("%s%s%s\n"
			"[uplink tc]\ntype = tencent\nproduct_id = " TC_PID "\nhost = localhost\n"
			"port = %d\nca_file = %s\nreconnect_min_ms = 1000\n"
			"reconnect_max_ms = 2000\n%s%s%s",
			with_models ? "thing_model = " : "", with_models ? tsl : "",
			with_models ? "\n" : "", tc_mqtts_port, fx_path("broker/ca.crt"),
			with_models ? "thing_model = " : "", with_models ? tmpl : "",
			with_models ? "\n" : "");
	conf = cl_aliyun_config(extra);
	free(tsl);
	free(tmpl);
	return conf;
}

static void send_stream(const struct fx_pty *n1)
{
	for (int i = 0; i < N; i++) {
		cl_write_line(n1, fx_strf("MQ2=%d.27,MQ135=%d,Buzzer=true,DHT11_H=150,CO2=1\r\n",
					  30 + i, 12 + i));
		fx_sleep_ms(50);
	}
	cl_write_line(n1, "{\"event\":\"GasAlarm\",\"GasType\":\"MQ2\",\"Concentration\":812.37}\r\n");
}

START_TEST(test_models)
{
	const char *const logged[] = { "uplink ali", "thing model", "refuses DHT11_H = 150",
				       "out of range", NULL };
	const char *const unknown[] = { "uplink tc", "thing model", "refuses CO2 = 1",
					"unknown identifier", NULL };
	struct fx_pty n1;
	json_t *st;
	char *conf;

	start_clouds();
	fx_pty_new(&n1, "tty-n1");
	conf = config(true);
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), FX_WAIT_MS));
	send_stream(&n1);
	ck_assert_uint_eq(fx_wait_count(count_posts, N + 1, 30000), N + 1);
	ck_assert_uint_eq(fx_wait_count(count_reports, N + 1, 30000), N + 1);
	/* converted as the models say: the float to its step, the bool to 1 */
	ck_assert(cl_wait_property(CL_DN, "MQ2", 30.3, 5000));
	ck_assert(cl_has_property(CL_DN, "Buzzer", 1));
	ck_assert(cl_has_property(CL_DN, "MQ135", 12 + N - 1));
	ck_assert(!cl_has_property(CL_DN, "DHT11_H", 150));
	/* the Tencent event went out with the model's type */
	ck_assert(tc_wait(json_pack("{s:s,s:s,s:i}", "ev", "thing_uplink", "method", "event_post",
				    "code", 0),
			  10));
	/* the clouds, checking the same models, refused nothing */
	ck_assert_uint_eq(cl_count("thing_model_violation", NULL, NULL), 0);
	ck_assert_uint_eq(tc_count("thing_model_violation", NULL, NULL), 0);

	/* nothing left of a record: dead-lettered by both, counted, the law holds */
	cl_write_line(&n1, "DHT11_H=150\r\n");
	ck_assert(fx_daemon_wait_log_line((const char *const[]){ "uplink tc", "dead-letter",
								 "refuses every value", NULL },
					  FX_WAIT_MS));
	st = tc_status_json();
	fx_check_status_schema(st);
	for (int u = 0; u < 2; u++) {
		const char *name = u ? "tc" : "ali";
		json_t *law = json_object_get(tc_status_uplink(st, name), "law");

		ck_assert_int_eq(counter(st, name, "model_refused"), 2 * N + 1);
		ck_assert_int_eq(counter(st, name, "rejected"), 0);
		ck_assert(json_is_true(json_object_get(law, "exact")));
	}
	ck_assert_int_eq(counter(st, "tc", "deadlettered"), 1);
	json_decref(st);
	ck_assert_int_eq(fx_daemon_stop(NULL), 0);
	ck_assert_msg(fx_daemon_log_line_has(logged), "DHT11_H's refusal logged");
	ck_assert_msg(fx_daemon_log_line_has(unknown), "CO2's refusal logged");
	free(conf);
	fx_pty_close(&n1);
}
END_TEST

/* The same stream without the models: the clouds refuse it (what the models are for). */
START_TEST(test_without_models)
{
	struct fx_pty n1;
	char *conf;

	start_clouds();
	fx_pty_new(&n1, "tty-n1");
	conf = config(false);
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), FX_WAIT_MS));
	send_stream(&n1);
	ck_assert_uint_eq(fx_wait_count(count_posts, N + 1, 30000), N + 1);
	ck_assert_uint_eq(fx_wait_count(count_reports, N + 1, 30000), N + 1);
	ck_assert_uint_ge(cl_count("thing_model_violation", "identifier", "DHT11_H"), N);
	ck_assert_uint_ge(tc_count("thing_model_violation", "identifier", "DHT11_H"), N);
	/* a frame's event has no severity of its own: info, which the model says is an alert */
	ck_assert_uint_eq(tc_count("thing_model_violation", "check", "event_type"), 1);
	ck_assert_int_eq(fx_daemon_stop(NULL), 0);
	free(conf);
	fx_pty_close(&n1);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("thing-model");
	TCase *tc = tcase_create("thing-model");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_models);
	tcase_add_test(tc, test_without_models);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cl_run(suite());
}
