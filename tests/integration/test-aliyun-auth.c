/* SPDX-License-Identifier: MIT */
/*
 * The aliyun uplink's dynamic provisioning modes with the real daemon against the loopback
 * Aliyun test cloud (tests/cloud/aliyun_cloud.py): regnwl (ClientID + DeviceToken, then
 * connwl logins), register over MQTT, register_via = auto falling back from HTTPS to MQTT,
 * refusals on the MQTT registration connection, and a stored credential that the platform
 * refuses at login (a device reset in the console) going on the slow retry, not a loop.
 */

#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloud.h"
#include "fixture.h"

#define PK CL_PK
#define DN CL_DN

#define CRED_FILE "state/credentials/ali/" DN ".json"
#define STATE_FILE "state/credentials/ali/" DN ".state"

/* CONNECTs of DN the cloud answered, with authType auth ("none" for a normal login; NULL:
 * any) and CONNACK code rc (-1: any). */
static size_t count_connects(const char *auth, int rc)
{
	json_t *r = cl_ctl("log", json_pack("{s:s}", "ev", "mqtt_connect"));
	json_t *events = json_object_get(r, "events");
	size_t i, n = 0;
	json_t *e;

	json_array_foreach(events, i, e) {
		const char *dn = json_string_value(json_object_get(e, "deviceName"));
		const char *a = json_string_value(json_object_get(e, "authType"));

		if (!dn || strcmp(dn, DN) != 0)
			continue;
		if (auth && strcmp(auth, a ? a : "none") != 0)
			continue;
		if (rc >= 0 && json_integer_value(json_object_get(e, "rc")) != rc)
			continue;
		n++;
	}
	json_decref(r);
	return n;
}

static char *device_string(const char *field)
{
	json_t *r = cl_ctl("device", cl_dev_args(DN));
	const char *v = json_string_value(json_object_get(r, field));
	char *s = v ? strdup(v) : NULL;

	json_decref(r);
	return s;
}

static void assert_cred_file(const char *kind)
{
	char want[64];
	struct stat st;
	char *text;

	ck_assert_int_eq(stat(fx_path(CRED_FILE), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	text = fx_read_file(fx_path(CRED_FILE));
	ck_assert_ptr_nonnull(text);
	snprintf(want, sizeof(want), "\"kind\":\"%s\"", kind);
	ck_assert_msg(strstr(text, want), "%s is not a %s", CRED_FILE, kind);
	free(text);
}

/* New node → registered → stored (0600) → connected → data; restart → no registration. */
static void run_to_data_and_restart(const char *conf, const char *kind, const char *reg_kind)
{
	struct fx_pty n1;
	size_t pushes;
	int status;

	fx_pty_new(&n1, "tty-n1");
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), FX_WAIT_MS));
	cl_write_line(&n1, "temp=21.5,hum=40\r\n");
	ck_assert_msg(cl_wait(json_pack("{s:s,s:s,s:i}", "ev", "alink_post", "deviceName", DN,
					   "code", 200), 20), "no accepted property post");
	ck_assert(cl_wait_property(DN, "temp", 21.5, 5000));
	ck_assert(cl_wait_property(DN, "hum", 40, 5000));
	assert_cred_file(kind);
	ck_assert(!cl_file_exists(fx_path(STATE_FILE)));
	/* the registration connection was closed with a DISCONNECT, not left to time out */
	ck_assert(cl_wait(json_pack("{s:s,s:s,s:s}", "ev", "mqtt_disconnect", "deviceName", DN,
				    "kind", reg_kind), 5));
	pushes = cl_count("register_push", NULL, NULL);
	ck_assert_uint_eq(pushes, 1);

	ck_assert(WIFEXITED(status = fx_daemon_stop(NULL)));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), FX_WAIT_MS));
	cl_write_line(&n1, "temp=22.5,hum=41\r\n");
	ck_assert_msg(cl_wait_property(DN, "temp", 22.5, 20000), "no data after the restart");
	ck_assert(cl_wait_property(DN, "hum", 41, 5000));
	ck_assert_uint_eq(cl_count("register_push", NULL, NULL), pushes);
	ck_assert_uint_eq(cl_count("https_register", NULL, NULL), 0);
	fx_pty_close(&n1);
}

START_TEST(test_regnwl)
{
	char extra[512];
	char *conf;

	/* registration-free: the device does not exist in the cloud beforehand */
	cl_start_opts("", true);
	fx_write_secret(fx_path("product.secret"), CL_PS);
	snprintf(extra, sizeof(extra), "auth = regnwl\nproduct_secret_file = %s\n",
		 fx_path("product.secret"));
	conf = cl_aliyun_config(extra);
	run_to_data_and_restart(conf, "device_token", "regnwl");
	ck_assert_uint_eq(cl_count("register_push", "kind", "regnwl"), 1);
	/* every data session logged in with the token; none with a DeviceSecret */
	ck_assert_uint_ge(count_connects("connwl", 0), 2);
	ck_assert_uint_eq(count_connects("none", -1), 0);
	ck_assert(fx_daemon_log_contains("device " DN ": registered over MQTT; ClientID and "
					 "DeviceToken stored"));
	free(conf);
}
END_TEST

START_TEST(test_register_mqtt)
{
	char *conf;
	char *source;

	cl_start("\"" DN "\"");
	conf = cl_register_config_via("mqtt");
	run_to_data_and_restart(conf, "device_secret", "register");
	ck_assert_uint_eq(cl_count("register_push", "kind", "register"), 1);
	source = device_string("secretSource");
	ck_assert_str_eq(source, "mqtt");
	free(source);
	ck_assert_uint_eq(cl_count("https_request", NULL, NULL), 0);
	free(conf);
}
END_TEST

/* register_via = auto: HTTPS that fails without a refusal hands over to MQTT at once. */
static const char *const fallback_modes[] = { "reset", "http503" };

START_TEST(test_fallback)
{
	const char *const fell_back[] = { "device " DN ": registration over HTTPS failed",
					  "trying MQTT", NULL };
	struct fx_pty n1;
	char *source;
	char *conf;
	json_t *r;

	cl_start("\"" DN "\"");
	r = cl_ctl("https_fail", json_pack("{s:s}", "mode", fallback_modes[_i]));
	ck_assert(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	fx_pty_new(&n1, "tty-n1");
	conf = cl_register_config(); /* register_via not set: auto */
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), FX_WAIT_MS));
	cl_write_line(&n1, "temp=21.5,hum=40\r\n");
	ck_assert_msg(cl_wait_property(DN, "temp", 21.5, 20000), "no data after the fallback");
	ck_assert(fx_daemon_log_line_has(fell_back));
	ck_assert_uint_eq(cl_count("https_request", "injected", fallback_modes[_i]), 1);
	ck_assert_uint_eq(cl_count("https_register", NULL, NULL), 0);
	ck_assert_uint_eq(cl_count("register_push", "kind", "register"), 1);
	source = device_string("secretSource");
	ck_assert_str_eq(source, "mqtt");
	free(source);
	assert_cred_file("device_secret");
	free(conf);
	fx_pty_close(&n1);
}
END_TEST

/* Refusals on the MQTT registration connection: recorded, nothing stored, no retry loop. */
static const struct {
	const char *devices;   /* in the cloud */
	const char *secret;    /* the fx_secret() ProductSecret the daemon has */
	bool regnwl;
} refusals[] = {
	{ "\"" DN "\"", "aliyun-product-wrong", false }, /* the sign does not verify */
	{ "", "aliyun-product", false },                 /* not pre-registered */
	{ "", "aliyun-product-wrong", true },            /* regnwl with a bad sign */
};

START_TEST(test_mqtt_refusal)
{
	const char *const refused[] = { "device " DN ": registration refused by the platform "
					"(CONNACK 5", "over MQTT", "no credential written", NULL };
	struct fx_pty n1;
	char extra[512];
	char *state;
	char *conf;

	cl_start_opts(refusals[_i].devices, refusals[_i].regnwl);
	fx_write_file(fx_path("product.secret"), fx_secret(refusals[_i].secret), 0600);
	snprintf(extra, sizeof(extra), "auth = %s\nproduct_secret_file = %s\n%s",
		 refusals[_i].regnwl ? "regnwl" : "register", fx_path("product.secret"),
		 refusals[_i].regnwl ? "" : "register_via = mqtt\n");
	conf = cl_aliyun_config(extra);
	fx_pty_new(&n1, "tty-n1");
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), FX_WAIT_MS));
	cl_write_line(&n1, "temp=21.5,hum=40\r\n");
	ck_assert(fx_daemon_wait_log_line(refused, 15000));
	/* more records, and time for a loop to show: still the one attempt */
	cl_write_line(&n1, "temp=22.5,hum=41\r\n");
	fx_sleep_ms(4000);
	ck_assert_uint_eq(count_connects(refusals[_i].regnwl ? "regnwl" : "register", 5), 1);
	ck_assert_uint_eq(count_connects(NULL, -1), 1);
	ck_assert_uint_eq(cl_count("register_push", NULL, NULL), 0);
	ck_assert(!cl_file_exists(fx_path(CRED_FILE)));
	state = fx_read_file(fx_path(STATE_FILE));
	ck_assert_msg(state && strstr(state, "\"needs_provisioning\""), "no marker");
	ck_assert(!strstr(state, fx_secret(refusals[_i].secret)));
	free(state);
	ck_assert(!fx_daemon_log_contains(fx_secret(refusals[_i].secret)));
	free(conf);
	fx_pty_close(&n1);
}
END_TEST

/* The device is reset in the console (its DeviceSecret forgotten, its tokens dropped) while
 * the daemon runs: the re-login is refused, logged, and the device waits for the slow retry. */
START_TEST(test_stale_credential)
{
	bool nwl = _i == 1;
	const char *const stale[] = { "device " DN ": the platform refused its stored ",
				      nwl ? "DeviceToken at login (CONNACK 5" :
					    "DeviceSecret at login (CONNACK 5",
				      "registering again in", NULL };
	struct fx_pty n1;
	char extra[512];
	char *state;
	char *conf;
	json_t *r;

	if (nwl) {
		cl_start_opts("", true);
		fx_write_secret(fx_path("product.secret"), CL_PS);
		snprintf(extra, sizeof(extra), "auth = regnwl\nproduct_secret_file = %s\n",
			 fx_path("product.secret"));
		conf = cl_aliyun_config(extra);
	} else {
		cl_start("\"" DN "\"");
		conf = cl_register_config();
	}
	fx_pty_new(&n1, "tty-n1");
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), FX_WAIT_MS));
	cl_write_line(&n1, "temp=21.5,hum=40\r\n");
	ck_assert(cl_wait_property(DN, "temp", 21.5, 20000));

	r = cl_ctl("reset_device", json_pack("{s:s,s:s,s:b}", "productKey", PK, "deviceName", DN,
					     "forgetSecret", 1));
	ck_assert(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	r = cl_ctl("kick", cl_dev_args(DN));
	json_decref(r);
	ck_assert(fx_daemon_wait_log_line(stale, 15000));
	cl_write_line(&n1, "temp=22.5,hum=41\r\n");
	fx_sleep_ms(4000);
	/* one refused login, no registration yet (the first retry is a minute away) */
	ck_assert_uint_eq(count_connects(nwl ? "connwl" : "none", 5), 1);
	ck_assert_uint_eq(count_connects(nwl ? "connwl" : "none", 0), 1);
	ck_assert_uint_eq(cl_count("https_register", NULL, NULL), nwl ? 0 : 1);
	ck_assert_uint_eq(cl_count("register_push", NULL, NULL), nwl ? 1 : 0);
	/* the stale credential is kept, and the marker says why */
	assert_cred_file(nwl ? "device_token" : "device_secret");
	state = fx_read_file(fx_path(STATE_FILE));
	ck_assert_msg(state && strstr(state, nwl ? "login with the stored DeviceToken refused" :
						   "login with the stored DeviceSecret refused"),
		      "no marker");
	free(state);
	ck_assert(!cl_has_property(DN, "temp", 22.5));
	free(conf);
	fx_pty_close(&n1);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("aliyun-auth");
	TCase *tc = tcase_create("aliyun-auth");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_regnwl);
	tcase_add_test(tc, test_register_mqtt);
	tcase_add_loop_test(tc, test_fallback, 0,
			    (int)(sizeof(fallback_modes) / sizeof(fallback_modes[0])));
	tcase_add_loop_test(tc, test_mqtt_refusal, 0,
			    (int)(sizeof(refusals) / sizeof(refusals[0])));
	tcase_add_loop_test(tc, test_stale_credential, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cl_run(suite());
}
