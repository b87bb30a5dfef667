/* SPDX-License-Identifier: MIT */
/*
 * The aliyun uplink with the real daemon against the loopback Aliyun test cloud
 * (tests/cloud/aliyun_cloud.py): HTTPS dynamic registration and its failures, the credential
 * store across a restart, a pre-provisioned DeviceSecret, and Alink property posts carrying a
 * pty node's values. The cloud's TLS certificate comes from the fixture's own test CA.
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

#include "fixture.h"
#include "gw/credstore.h"

#define PK "a1TestProd01"
#define PS "testProductSecret123"
#define DN "dev-n1" /* device_name = dev-{port} on [port n1] */
#define DS "testDeviceSecret456"

static int ctl_port;
static int https_port;
static int mqtts_port;

struct body {
	char *p;
	size_t n;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct body *b = ud;
	size_t n = size * nmemb;

	b->p = realloc(b->p, b->n + n + 1);
	ck_assert_ptr_nonnull(b->p);
	memcpy(b->p + b->n, ptr, n);
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

/* POSTs args (stolen) to the cloud's control API; returns its JSON reply (ok or not). */
static json_t *ctl(const char *cmd, json_t *args)
{
	char url[128];
	char *text = json_dumps(args, JSON_COMPACT);
	struct body b = { 0 };
	CURL *c = curl_easy_init();
	json_error_t err;
	json_t *reply;
	CURLcode rc;

	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_nonnull(c);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/%s", ctl_port, cmd);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 130L);
	rc = curl_easy_perform(c);
	ck_assert_msg(rc == CURLE_OK, "control %s: %s", cmd, curl_easy_strerror(rc));
	curl_easy_cleanup(c);
	free(text);
	json_decref(args);
	reply = json_loads(b.p ? b.p : "", 0, &err);
	ck_assert_msg(reply, "control %s: not JSON: %s", cmd, b.p ? b.p : "");
	free(b.p);
	return reply;
}

static json_t *dev_args(void)
{
	return json_pack("{s:s,s:s}", "productKey", PK, "deviceName", DN);
}

/* Waits for a cloud event matching match (stolen); true when it came. */
static bool cloud_wait(json_t *match, int timeout_s)
{
	json_t *r = ctl("wait", json_pack("{s:o,s:i}", "match", match, "timeout", timeout_s));
	bool ok = json_is_true(json_object_get(r, "ok")) && json_object_get(r, "event");

	json_decref(r);
	return ok;
}

/* Number of cloud events named ev for which field (may be NULL) equals value. */
static size_t cloud_count(const char *ev, const char *field, const char *value)
{
	json_t *r = ctl("log", json_pack("{s:s}", "ev", ev));
	json_t *events = json_object_get(r, "events");
	size_t i, n = 0;
	json_t *e;

	json_array_foreach(events, i, e) {
		if (!field || (json_is_string(json_object_get(e, field)) &&
			       strcmp(json_string_value(json_object_get(e, field)), value) == 0))
			n++;
	}
	json_decref(r);
	return n;
}

static json_int_t device_field(const char *field)
{
	json_t *r = ctl("device", dev_args());
	json_int_t v = json_integer_value(json_object_get(r, field));

	json_decref(r);
	return v;
}

/* Whether the cloud recorded property name with exactly value (a real or an integer). */
static bool has_property(const char *name, double value)
{
	json_t *r = ctl("properties", json_pack("{s:s,s:s,s:s}", "productKey", PK,
						"deviceName", DN, "name", name));
	json_t *props = json_object_get(r, "properties");
	bool found = false;
	size_t i;
	json_t *p;

	json_array_foreach(props, i, p) {
		if (json_number_value(json_object_get(p, "value")) == value)
			found = true;
	}
	json_decref(r);
	return found;
}

static bool wait_property(const char *name, double value, int timeout_ms)
{
	int64_t end = fx_mono_ms() + timeout_ms;

	while (fx_mono_ms() < end) {
		if (has_property(name, value))
			return true;
		fx_sleep_ms(200);
	}
	return false;
}

/* Starts the test cloud with one product whose devices are given as JSON. */
static void cloud_start(const char *devices)
{
	const char *root = fx_env("GW_SOURCE_ROOT");
	char script[4096], products[8192];
	const char *argv[12];
	int64_t end;
	json_error_t err;
	json_t *ports = NULL;
	char *text;

	fx_make_certs();
	ck_assert_int_eq(mkdir(fx_path("cloud"), 0700), 0);
	snprintf(products, sizeof(products),
		 "{\"products\": [{\"productKey\": \"" PK "\", \"productSecret\": \"" PS "\", "
		 "\"dynamicRegistration\": true, \"allowTcp\": false, "
		 "\"schema\": {\"temp\": \"float\", \"hum\": \"int\"}, \"devices\": [%s]}]}",
		 devices);
	fx_write_file(fx_path("cloud/products.json"), products, 0600);
	snprintf(script, sizeof(script), "%s/tests/cloud/aliyun_cloud.py", root);
	argv[0] = "/usr/bin/python3";
	argv[1] = script;
	argv[2] = "--dir";
	argv[3] = fx_path("cloud");
	argv[4] = "--cert";
	argv[5] = fx_path("broker/server.crt");
	argv[6] = "--key";
	argv[7] = fx_path("broker/server.key");
	argv[8] = "--products";
	argv[9] = fx_path("cloud/products.json");
	argv[10] = NULL;
	fx_spawn(argv, "cloud.log");
	end = fx_mono_ms() + FX_WAIT_MS;
	while (!(text = fx_read_file(fx_path("cloud/ports.json")))) {
		ck_assert_msg(fx_mono_ms() < end, "the test cloud did not start (see cloud.log)");
		fx_sleep_ms(20);
	}
	ports = json_loads(text, 0, &err);
	ck_assert_ptr_nonnull(ports);
	ctl_port = (int)json_integer_value(json_object_get(ports, "control"));
	https_port = (int)json_integer_value(json_object_get(ports, "https"));
	mqtts_port = (int)json_integer_value(json_object_get(ports, "mqtts"));
	ck_assert(ctl_port > 0 && https_port > 0 && mqtts_port > 0);
	json_decref(ports);
	free(text);
}

/* A gateway with one text port n1 and the aliyun uplink "ali"; extra holds the auth keys. */
static char *aliyun_config(const char *extra)
{
	char *c = NULL;

	ck_assert_int_gt(asprintf(&c,
				  "[gateway]\n"
				  "state_dir = %s\n"
				  "device_name = dev-{port}\n"
				  "\n"
				  "[port n1]\n"
				  "path = %s\n"
				  "framing = text\n"
				  "\n"
				  "[uplink ali]\n"
				  "type = aliyun\n"
				  "product_key = " PK "\n"
				  "host = localhost\n"
				  "port = %d\n"
				  "ca_file = %s\n"
				  "keepalive = 30\n"
				  "reconnect_min_ms = 1000\n"
				  "reconnect_max_ms = 8000\n"
				  "%s",
				  fx_path("state"), fx_path("tty-n1"), mqtts_port,
				  fx_path("broker/ca.crt"), extra), 0);
	return c;
}

static char *register_config(void)
{
	char extra[512];

	fx_write_file(fx_path("product.secret"), PS "\n", 0600);
	snprintf(extra, sizeof(extra),
		 "auth = register\n"
		 "product_secret_file = %s\n"
		 "register_url = https://localhost:%d/auth/register/device\n",
		 fx_path("product.secret"), https_port);
	return aliyun_config(extra);
}

static void write_line(const struct fx_pty *p, const char *line)
{
	fx_pty_write(p, line, strlen(line));
}

static bool file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

#define CRED_FILE "state/credentials/ali/" DN ".json"
#define STATE_FILE "state/credentials/ali/" DN ".state"

START_TEST(test_register_then_restart)
{
	struct fx_pty n1;
	struct stat st;
	char *conf;
	int status;

	cloud_start("\"" DN "\"");
	fx_pty_new(&n1, "tty-n1");
	conf = register_config();
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), FX_WAIT_MS));

	/* a new node appears: registered, stored, connected, its values arrive */
	write_line(&n1, "temp=21.5,hum=40\r\n");
	ck_assert_msg(cloud_wait(json_pack("{s:s,s:s,s:i}", "ev", "alink_post", "deviceName", DN,
					   "code", 200), 20), "no accepted property post");
	ck_assert_int_eq(device_field("registerCount"), 1);
	ck_assert_int_ge(device_field("connectCount"), 1);
	ck_assert(fx_daemon_log_contains("device " DN ": registered over HTTPS"));
	ck_assert_int_eq(stat(fx_path(CRED_FILE), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	ck_assert(wait_property("temp", 21.5, 5000));
	ck_assert(wait_property("hum", 40, 5000));

	/* restart: the stored secret is used, no second registration */
	ck_assert(WIFEXITED(status = fx_daemon_stop(NULL)));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), FX_WAIT_MS));
	write_line(&n1, "temp=22.5,hum=41\r\n");
	ck_assert_msg(wait_property("temp", 22.5, 20000), "no data after the restart");
	ck_assert(wait_property("hum", 41, 5000));
	ck_assert_int_eq(device_field("registerCount"), 1);
	ck_assert_int_eq(cloud_count("https_register", NULL, NULL), 1);
	free(conf);
	fx_pty_close(&n1);
}
END_TEST

/* Bad registration replies: nothing stored, one log line per failure, attempts bounded. */
static const struct {
	const char *mode;
	const char *log; /* what the daemon's line says */
	bool refusal;    /* a reply code: slow retry from the needs-provisioning marker */
} bad_replies[] = {
	{ "http500", "HTTP status 500", false },
	{ "truncated", "malformed reply", false },
	{ "wrong_types", "malformed reply", false },
	{ "code_error", "registration refused by the platform (code 500: injected error)", true },
};

START_TEST(test_bad_registration_reply)
{
	const char *mode = bad_replies[_i].mode;
	const char *const failed[] = { "device " DN, bad_replies[_i].log, "no credential written",
				       NULL };
	struct fx_pty n1;
	json_t *r;
	size_t attempts;
	char *conf;

	cloud_start("\"" DN "\"");
	r = ctl("https_fail", json_pack("{s:s}", "mode", mode));
	ck_assert(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	fx_pty_new(&n1, "tty-n1");
	conf = register_config();
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), FX_WAIT_MS));
	write_line(&n1, "temp=21.5,hum=40\r\n");
	ck_assert(cloud_wait(json_pack("{s:s,s:s}", "ev", "https_request", "injected", mode), 15));
	/* backoff from 1 s (jitter [d/2, d]): attempts at 0, <= 1, <= 3 s, none before 0.5 s */
	fx_sleep_ms(4500);
	attempts = cloud_count("https_request", "injected", mode);
	ck_assert(fx_daemon_wait_log_line(failed, 2000));
	ck_assert(!file_exists(fx_path(CRED_FILE)));
	ck_assert_int_eq(cloud_count("https_register", NULL, NULL), 0);
	if (bad_replies[_i].refusal) {
		/* refused: the next attempt is a minute away, and the marker says so */
		ck_assert_uint_eq(attempts, 1);
		ck_assert(file_exists(fx_path(STATE_FILE)));
	} else {
		ck_assert_msg(attempts >= 2 && attempts <= 4, "%zu attempts in 4.5 s", attempts);
		ck_assert(!file_exists(fx_path(STATE_FILE)));
		/* the cloud recovers: the next attempt registers and data flows */
		r = ctl("https_fail", json_pack("{s:s}", "mode", "none"));
		json_decref(r);
		ck_assert(cloud_wait(json_pack("{s:s,s:s,s:i}", "ev", "alink_post", "deviceName",
					       DN, "code", 200), 20));
		ck_assert(file_exists(fx_path(CRED_FILE)));
		ck_assert_int_eq(device_field("registerCount"), 1);
	}
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

	cloud_start("{\"deviceName\": \"" DN "\", \"deviceSecret\": \"" DS "\"}");
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
	conf = aliyun_config(extra);
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), FX_WAIT_MS));
	ck_assert(fx_pty_wait_opened(&n2, fx_daemon_pid(), FX_WAIT_MS));
	write_line(&n2, "temp=5.5,hum=5\r\n");
	ck_assert(fx_daemon_wait_log_line(waited, FX_WAIT_MS));
	write_line(&n1, "temp=19.5,hum=33\r\n");
	ck_assert(cloud_wait(json_pack("{s:s,s:s,s:i}", "ev", "mqtt_connect", "deviceName", DN,
				       "rc", 0), 20));
	ck_assert(wait_property("temp", 19.5, 10000));
	ck_assert(wait_property("hum", 33, 5000));
	ck_assert_int_eq(cloud_count("https_request", NULL, NULL), 0);
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
	tcase_add_loop_test(tc, test_bad_registration_reply, 0,
			    (int)(sizeof(bad_replies) / sizeof(bad_replies[0])));
	tcase_add_test(tc, test_device_secret);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
