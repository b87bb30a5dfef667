/* SPDX-License-Identifier: MIT */
/* The loopback Aliyun test cloud for the integration tests; see cloud.h. */

#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cloud.h"
#include "gw/credstore.h"

int cl_ctl_port;
int cl_https_port;
int cl_mqtts_port;

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
json_t *cl_ctl(const char *cmd, json_t *args)
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
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/%s", cl_ctl_port, cmd);
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

json_t *cl_dev_args(const char *dn)
{
	return json_pack("{s:s,s:s}", "productKey", CL_PK, "deviceName", dn);
}

/* Waits for a cloud event matching match (stolen); true when it came. */
bool cl_wait(json_t *match, int timeout_s)
{
	json_t *r = cl_ctl("wait", json_pack("{s:o,s:i}", "match", match, "timeout", timeout_s));
	bool ok = json_is_true(json_object_get(r, "ok")) && json_object_get(r, "event");

	json_decref(r);
	return ok;
}

bool cl_wait_since(json_t *match, json_int_t since, int timeout_s)
{
	json_t *r = cl_ctl("wait", json_pack("{s:o,s:I,s:i}", "match", match, "since", since,
					     "timeout", timeout_s));
	bool ok = json_is_true(json_object_get(r, "ok")) && json_object_get(r, "event");

	json_decref(r);
	return ok;
}

json_int_t cl_seq(void)
{
	json_t *r = cl_ctl("health", json_object());
	json_int_t seq = json_integer_value(json_object_get(r, "seq"));

	json_decref(r);
	return seq;
}

/* Number of cloud events named ev for which field (may be NULL) equals value. */
size_t cl_count(const char *ev, const char *field, const char *value)
{
	json_t *r = cl_ctl("log", json_pack("{s:s}", "ev", ev));
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

json_int_t cl_device_field(const char *dn, const char *field)
{
	json_t *r = cl_ctl("device", cl_dev_args(dn));
	json_int_t v = json_integer_value(json_object_get(r, field));

	json_decref(r);
	return v;
}

/* Whether the cloud recorded property name with exactly value (a real or an integer). */
bool cl_has_property(const char *dn, const char *name, double value)
{
	json_t *r = cl_ctl("properties", json_pack("{s:s,s:s,s:s}", "productKey", CL_PK,
						"deviceName", dn, "name", name));
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

bool cl_wait_property(const char *dn, const char *name, double value, int timeout_ms)
{
	int64_t end = fx_mono_ms() + timeout_ms;

	while (fx_mono_ms() < end) {
		if (cl_has_property(dn, name, value))
			return true;
		fx_sleep_ms(200);
	}
	return false;
}

json_t *cl_launch(const char *script, const char *products)
{
	const char *root = fx_env("GW_SOURCE_ROOT");
	char path[4096];
	const char *argv[12];
	int64_t end;
	json_error_t err;
	json_t *ports = NULL;
	char *text;

	fx_make_certs();
	ck_assert_int_eq(mkdir(fx_path("cloud"), 0700), 0);
	fx_write_file(fx_path("cloud/products.json"), products, 0600);
	snprintf(path, sizeof(path), "%s/tests/cloud/%s", root, script);
	argv[0] = "/usr/bin/python3";
	argv[1] = path;
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
	cl_ctl_port = (int)json_integer_value(json_object_get(ports, "control"));
	cl_https_port = (int)json_integer_value(json_object_get(ports, "https"));
	cl_mqtts_port = (int)json_integer_value(json_object_get(ports, "mqtts"));
	ck_assert(cl_ctl_port > 0 && cl_https_port > 0 && cl_mqtts_port > 0);
	free(text);
	return ports;
}

void cl_start_opts(const char *devices, bool registration_free)
{
	char products[8192];

	snprintf(products, sizeof(products),
		 "{\"products\": [{\"productKey\": \"" CL_PK "\", "
		 "\"productSecret\": \"" CL_PS "\", "
		 "\"dynamicRegistration\": true, \"registrationFree\": %s, \"allowTcp\": false, "
		 "\"schema\": {\"temp\": \"float\", \"hum\": \"int\"}, \"devices\": [%s]}]}",
		 registration_free ? "true" : "false", devices);
	json_decref(cl_launch("aliyun_cloud.py", products));
}

/* A gateway with one text port n1 and the aliyun uplink "ali"; extra holds the auth keys. */
char *cl_aliyun_config(const char *extra)
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
				  "product_key = " CL_PK "\n"
				  "host = localhost\n"
				  "port = %d\n"
				  "ca_file = %s\n"
				  "keepalive = 30\n"
				  "reconnect_min_ms = 1000\n"
				  "reconnect_max_ms = 8000\n"
				  "%s",
				  fx_path("state"), fx_path("tty-n1"), cl_mqtts_port,
				  fx_path("broker/ca.crt"), extra), 0);
	return c;
}

char *cl_register_config_via(const char *via)
{
	bool mqtt = via && strcmp(via, "mqtt") == 0;
	char extra[512], url[128] = "";

	fx_write_file(fx_path("product.secret"), CL_PS "\n", 0600);
	if (!mqtt)
		snprintf(url, sizeof(url), "register_url = https://localhost:%d/auth/register/device\n",
			 cl_https_port);
	snprintf(extra, sizeof(extra), "auth = register\nproduct_secret_file = %s\n%s%s%s%s",
		 fx_path("product.secret"), via ? "register_via = " : "", via ? via : "",
		 via ? "\n" : "", url);
	return cl_aliyun_config(extra);
}

char *cl_register_config(void)
{
	return cl_register_config_via(NULL);
}

void cl_write_line(const struct fx_pty *p, const char *line)
{
	fx_pty_write(p, line, strlen(line));
}

bool cl_file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

void cl_start(const char *devices)
{
	cl_start_opts(devices, false);
}

int cl_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

void cl_provision(const char *dn, const char *ds)
{
	struct gw_cred cred = {
		.cloud = GW_CRED_CLOUD_ALIYUN,
		.kind = GW_CRED_DEVICE_SECRET,
		.product = (char *)CL_PK,
		.device = (char *)dn,
		.secret = (char *)ds,
	};
	char reason[GW_CREDSTORE_REASON_MAX];
	struct gw_credstore *store;

	(void)mkdir(fx_path("state"), 0700);
	ck_assert_int_eq(gw_credstore_open(fx_path("state/credentials/ali"), &store, reason,
					   sizeof(reason)), 0);
	ck_assert_msg(gw_credstore_save(store, &cred, reason, sizeof(reason)) == 0, "%s", reason);
	gw_credstore_close(store);
}

char *cl_binary_config(char *text, const char *device_name)
{
	const char *at = strstr(text, "framing = text\n");
	const char *dn = strstr(text, "device_name = dev-{port}\n");
	char *conf, *out;

	/* [port n1] comes first: binary framing for the simulated node */
	ck_assert_ptr_nonnull(at);
	ck_assert_ptr_nonnull(dn);
	ck_assert(strstr(text, "[port n1]") < at);
	ck_assert_int_gt(asprintf(&conf, "%.*sframing = binary\n%s", (int)(at - text), text,
				  at + strlen("framing = text\n")), 0);
	free(text);
	if (!device_name)
		return conf;
	dn = strstr(conf, "device_name = dev-{port}\n");
	ck_assert_int_gt(asprintf(&out, "%.*sdevice_name = %s\n%s", (int)(dn - conf), conf,
				  device_name, dn + strlen("device_name = dev-{port}\n")), 0);
	free(conf);
	return out;
}

pid_t cl_sim_start(const char *uid)
{
	char link[4096];
	const char *const args[] = { "--pty", "--link", link, "--framing", "binary", "--rate", "2",
				     "--uid", uid, NULL };

	/* fx_path() rotates its buffers: keep the link's name */
	snprintf(link, sizeof(link), "%s", fx_path("tty-n1"));
	return fx_sim_start(args);
}

bool cl_sim_log_has(const char *needle)
{
	char *log = fx_read_file(fx_path("sim.log"));
	bool has = log && strstr(log, needle);

	free(log);
	return has;
}

json_t *cl_downlink(const char *cmd, json_t *args, int wait_s)
{
	json_t *r, *reply;

	json_object_set_new(args, "productKey", json_string(CL_PK));
	json_object_set_new(args, "wait", json_integer(wait_s));
	r = cl_ctl(cmd, args);
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

json_int_t cl_reply_code(json_t *reply)
{
	return json_integer_value(json_object_get(reply, "code"));
}
