/* SPDX-License-Identifier: MIT */
/*
 * The aliyun uplink with the real daemon against the loopback Aliyun test cloud
 * (tests/cloud/aliyun_cloud.py): HTTPS dynamic registration (its failures are in
 * test-aliyun-regfaults.c), the credential store across a restart, a pre-provisioned
 * DeviceSecret, Alink property posts carrying a pty node's values, event posts in both
 * event_params forms, and max_rate counted per device. The cloud's TLS certificate comes
 * from the fixture's own test CA.
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

#define DN2 "dev-n2"
#define DS2 fx_secret("aliyun-device2")
#define BURST 120

#define CRED_FILE "state/credentials/ali/" DN ".json"

/* Whether the cloud recorded event alarm of DN in form with outputs {"level":level} within
 * timeout_ms. */
static bool wait_event(const char *form, int level, int timeout_ms)
{
	int64_t end = fx_mono_ms() + (int64_t)timeout_ms * fx_timeout_scale();

	while (fx_mono_ms() < end) {
		json_t *r = cl_ctl("events", json_pack("{s:s,s:s,s:s}", "productKey", PK,
						       "deviceName", DN, "event", "alarm"));
		bool found = false;
		size_t i;
		json_t *e;

		json_array_foreach(json_object_get(r, "events"), i, e) {
			const char *f = json_string_value(json_object_get(e, "form"));
			json_t *out = json_object_get(e, "outputs");

			if (f && strcmp(f, form) == 0 && json_object_size(out) == 1 &&
			    json_integer_value(json_object_get(out, "level")) == level)
				found = true;
		}
		json_decref(r);
		if (found)
			return true;
		fx_sleep_ms(200);
	}
	return false;
}

START_TEST(test_register_then_restart)
{
	struct fx_pty n1;
	struct stat st;
	char *conf, *conf2;
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
	/* an event, in the default event_params = value-time form */
	cl_write_line(&n1, "{\"id\":\"1\",\"version\":\"1.0\",\"params\":{\"level\":3},"
			   "\"method\":\"thing.event.alarm.post\"}\r\n");
	ck_assert_msg(wait_event("value-time", 3, 10000), "no {value,time} event post");

	/* restart, now with event_params = outputs: the stored secret is used, no second
	 * registration, and events go out in the SDKs' form */
	ck_assert(WIFEXITED(status = fx_daemon_stop(NULL)));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_gt(asprintf(&conf2, "%sevent_params = outputs\n", conf), 0);
	fx_daemon_start(conf2);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), FX_WAIT_MS));
	cl_write_line(&n1, "temp=22.5,hum=41\r\n");
	ck_assert_msg(cl_wait_property(DN, "temp", 22.5, 20000), "no data after the restart");
	ck_assert(cl_wait_property(DN, "hum", 41, 5000));
	cl_write_line(&n1, "{\"id\":\"2\",\"version\":\"1.0\",\"params\":{\"level\":4},"
			   "\"method\":\"thing.event.alarm.post\"}\r\n");
	ck_assert_msg(wait_event("outputs", 4, 10000), "no event post with the outputs as params");
	ck_assert_int_eq(cl_device_field(DN, "registerCount"), 1);
	ck_assert_int_eq(cl_count("https_register", NULL, NULL), 1);
	free(conf);
	free(conf2);
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

	cl_start(fx_strf("{\"deviceName\": \"" DN "\", \"deviceSecret\": \"%s\"}", DS));
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

/* The cloud's accepted property posts of dn after event seq since: their times (ms) in t,
 * at most max; returns how many. */
static size_t post_times(const char *dn, json_int_t since, json_int_t *t, size_t max)
{
	json_t *r = cl_ctl("log", json_pack("{s:s,s:I,s:i}", "ev", "alink_post", "since", since,
					    "limit", 100000));
	size_t i, n = 0;
	json_t *e;

	json_array_foreach(json_object_get(r, "events"), i, e) {
		const char *d = json_string_value(json_object_get(e, "deviceName"));

		if (!d || strcmp(d, dn) != 0 || json_integer_value(json_object_get(e, "code")) != 200)
			continue;
		if (n < max)
			t[n] = json_integer_value(json_object_get(e, "t"));
		n++;
	}
	json_decref(r);
	return n;
}

/* Each of hum = 0..n-1 recorded exactly once for dn. */
static void assert_each_once(const char *dn, int n)
{
	json_t *r = cl_ctl("properties", json_pack("{s:s,s:s,s:s}", "productKey", PK,
						"deviceName", dn, "name", "hum"));
	int seen[BURST] = { 0 };
	size_t i;
	json_t *p;

	json_array_foreach(json_object_get(r, "properties"), i, p) {
		json_int_t v = json_integer_value(json_object_get(p, "value"));

		if (v >= 0 && v < n)
			seen[v]++;
	}
	json_decref(r);
	for (int v = 0; v < n; v++)
		ck_assert_msg(seen[v] == 1, "hum=%d recorded %d times", v, seen[v]);
}

/*
 * max_rate (30) is per device: a node writing 120 records at once is sent at most 30 in any
 * second, as the cloud counts them (it drops the excess, so a lost record would show), and
 * another node's record written after that burst does not wait behind it.
 */
START_TEST(test_rate_per_device)
{
	struct fx_pty n1, n2;
	json_int_t t[BURST + 1], t2, mark, max_in_1s = 0;
	char extra[512], burst[BURST * 32];
	size_t len = 0, n;
	json_t *reply;
	char *conf;
	int status;

	cl_start(fx_strf("{\"deviceName\": \"" DN "\", \"deviceSecret\": \"%s\"}, "
			 "{\"deviceName\": \"" DN2 "\", \"deviceSecret\": \"%s\"}", DS, DS2));
	cl_provision(DN, DS);
	cl_provision(DN2, DS2);
	fx_pty_new(&n1, "tty-n1");
	fx_pty_new(&n2, "tty-n2");
	snprintf(extra, sizeof(extra), "auth = device-secret\n\n[port n2]\npath = %s\n"
		 "framing = text\n", fx_path("tty-n2"));
	conf = cl_aliyun_config(extra);
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), FX_WAIT_MS));
	ck_assert(fx_pty_wait_opened(&n2, fx_daemon_pid(), FX_WAIT_MS));
	/* both sessions up first */
	cl_write_line(&n1, "temp=0.5,hum=1000\r\n");
	cl_write_line(&n2, "temp=0.5,hum=1000\r\n");
	ck_assert(cl_wait_property(DN, "hum", 1000, 30000));
	ck_assert(cl_wait_property(DN2, "hum", 1000, 30000));
	mark = cl_seq();

	for (int i = 0; i < BURST; i++)
		len += (size_t)snprintf(burst + len, sizeof(burst) - len, "temp=1.5,hum=%d\r\n", i);
	fx_pty_write(&n1, burst, len);
	/* dev-n2's record comes after the burst was read */
	fx_sleep_ms(300);
	cl_write_line(&n2, "temp=2.5,hum=2000\r\n");
	/* an answer to a command counts against dev-n1's full window, and is not dropped (a text
	 * node has no command channel: the answer is 400) */
	reply = cl_downlink("property_set", json_pack("{s:s,s:{s:b}}", "deviceName", DN, "params",
						      "led", 1), 10);
	ck_assert_int_eq(cl_reply_code(reply), 400);
	json_decref(reply);

	for (int64_t end = fx_mono_ms() + 60000 * fx_timeout_scale(); fx_mono_ms() < end;
	     fx_sleep_ms(250))
		if (post_times(DN, mark, t, BURST) >= BURST)
			break;
	n = post_times(DN, mark, t, BURST);
	ck_assert_msg(n == BURST, "%zu of %d posts of the burst accepted", n, BURST);
	ck_assert_uint_eq(post_times(DN2, mark, &t2, 1), 1);
	for (size_t i = 0; i < n; i++) {
		json_int_t k = 0;

		for (size_t j = i; j < n && t[j] - t[i] < 1000; j++)
			k++;
		if (k > max_in_1s)
			max_in_1s = k;
	}
	fprintf(stderr, "rate: %d records of one device in %lld ms (%.1f/s), at most %lld in "
		"any 1 s at the cloud; the other device's record after %lld ms\n", BURST,
		(long long)(t[n - 1] - t[0]), (n - 1) * 1000.0 / (double)(t[n - 1] - t[0]),
		(long long)max_in_1s, (long long)(t2 - t[0]));
	ck_assert_msg(t[n - 1] - t[0] >= 2500, "%d records in %lld ms: faster than 30/s", BURST,
		      (long long)(t[n - 1] - t[0]));
	ck_assert_msg(t2 < t[n - 1], "dev-n2's record waited behind dev-n1's burst");
	ck_assert_uint_eq(cl_count("throttled", NULL, NULL), 0);
	assert_each_once(DN, BURST);

	/* a restart sends none of it again */
	ck_assert(WIFEXITED(status = fx_daemon_stop(NULL)));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), FX_WAIT_MS));
	cl_write_line(&n1, "temp=3.5,hum=3000\r\n");
	ck_assert(cl_wait_property(DN, "hum", 3000, 30000));
	ck_assert_uint_eq(post_times(DN, mark, t, BURST + 1), BURST + 1);
	assert_each_once(DN, BURST);
	free(conf);
	fx_pty_close(&n1);
	fx_pty_close(&n2);
}
END_TEST

/* A post the platform refuses in its post_reply (429, too many requests) is counted as
 * rejected and logged with the platform's message; it is not sent again, the next one goes. */
START_TEST(test_post_rejected)
{
	const char *const logged[] = { "device " DN ": the platform rejected post",
				       "with code 429: rate limit, too many requests", NULL };
	const char *const counters[] = { "uplink ali", "counters:", " rejected=1 ", NULL };
	struct fx_pty n1;
	char *conf;
	json_t *r;

	cl_start(fx_strf("{\"deviceName\": \"" DN "\", \"deviceSecret\": \"%s\"}", DS));
	cl_provision(DN, DS);
	r = cl_ctl("inject_reply", json_pack("{s:s,s:s,s:i,s:i,s:s}", "productKey", PK,
					     "deviceName", DN, "code", 429, "count", 1, "kind",
					     "property"));
	ck_assert(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	fx_pty_new(&n1, "tty-n1");
	conf = cl_aliyun_config("auth = device-secret\n");
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), FX_WAIT_MS));
	cl_write_line(&n1, "temp=11.5,hum=11\r\n");
	ck_assert(cl_wait(json_pack("{s:s,s:s,s:i}", "ev", "alink_post", "deviceName", DN,
				    "code", 429), 30));
	ck_assert(fx_daemon_wait_log_line(logged, FX_WAIT_MS));
	cl_write_line(&n1, "temp=12.5,hum=12\r\n");
	ck_assert(cl_wait_property(DN, "hum", 12, 10000));
	ck_assert(!cl_has_property(DN, "hum", 11));
	fx_daemon_stop(NULL);
	ck_assert(fx_daemon_log_line_has(counters));
	/* sent once: the PUBACK took it, and the platform would refuse it again */
	ck_assert_uint_eq(cl_count("alink_post", "deviceName", DN), 2);
	free(conf);
	fx_pty_close(&n1);
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
	tcase_add_test(tc, test_rate_per_device);
	tcase_add_test(tc, test_post_rejected);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cl_run(suite());
}
