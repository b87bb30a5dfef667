/* SPDX-License-Identifier: MIT */
/* The loopback Aliyun test cloud for the integration tests; see cloud.h. */

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cloud.h"
#include "cloudctl.h"
#include "gw/credstore.h"

int cl_ctl_port;
int cl_https_port;
int cl_mqtts_port;

/* POSTs args (stolen) to the cloud's control API; returns its JSON reply (ok or not). */
json_t *cl_ctl(const char *cmd, json_t *args)
{
	return cc_ctl(cl_ctl_port, cmd, args);
}

json_t *cl_dev_args(const char *dn)
{
	return json_pack("{s:s,s:s}", "productKey", CL_PK, "deviceName", dn);
}

bool cl_wait(json_t *match, int timeout_s)
{
	return cc_wait(cl_ctl_port, match, timeout_s);
}

bool cl_wait_since(json_t *match, json_int_t since, int timeout_s)
{
	return cc_wait_since(cl_ctl_port, match, since, timeout_s);
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
	return cc_count(cl_ctl_port, ev, field, value);
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
	int64_t end = fx_mono_ms() + (int64_t)timeout_ms * fx_timeout_scale();

	while (fx_mono_ms() < end) {
		if (cl_has_property(dn, name, value))
			return true;
		fx_sleep_ms(200);
	}
	return false;
}

json_t *cl_launch(const char *script, const char *products)
{
	return cl_launch_https_ca(script, products, NULL);
}

json_t *cl_launch_https_ca(const char *script, const char *products, const char *https_ca)
{
	char crt[4096] = "", key[4096] = "";
	json_t *ports;

	fx_make_certs();
	ck_assert_int_eq(mkdir(fx_path("cloud"), 0700), 0);
	fx_write_file(fx_path("cloud/products.json"), products, 0600);
	if (https_ca) {
		cc_make_https_ca(https_ca);
		snprintf(crt, sizeof(crt), "%s/server.crt", fx_path(https_ca));
		snprintf(key, sizeof(key), "%s/server.key", fx_path(https_ca));
	}
	ports = cc_start_https(script, "cloud", "cloud/products.json", "cloud.log",
			       https_ca ? crt : NULL, https_ca ? key : NULL);
	cl_ctl_port = cc_port(ports, "control");
	cl_https_port = cc_port(ports, "https");
	cl_mqtts_port = cc_port(ports, "mqtts");
	return ports;
}

void cl_start_opts(const char *devices, bool registration_free)
{
	cl_start_https_ca(devices, registration_free, NULL);
}

void cl_start_https_ca(const char *devices, bool registration_free, const char *https_ca)
{
	char products[8192];

	snprintf(products, sizeof(products),
		 "{\"products\": [{\"productKey\": \"" CL_PK "\", "
		 "\"productSecret\": \"%s\", "
		 "\"dynamicRegistration\": true, \"registrationFree\": %s, \"allowTcp\": false, "
		 "\"schema\": {\"temp\": \"float\", \"hum\": \"int\"}, \"devices\": [%s]}]}",
		 CL_PS, registration_free ? "true" : "false", devices);
	json_decref(cl_launch_https_ca("aliyun_cloud.py", products, https_ca));
}

/* A gateway with one text port n1 and the aliyun uplink "ali"; extra holds the auth keys. */
char *cl_aliyun_config(const char *extra)
{
	char *c = NULL;

	ck_assert_int_gt(asprintf(&c,
				  "[gateway]\n"
				  "state_dir = %s\n"
				  "control_socket = %s\n"
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
				  fx_path("state"), fx_path("control"), fx_path("tty-n1"),
				  cl_mqtts_port, fx_path("broker/ca.crt"), extra), 0);
	return c;
}

char *cl_register_config_via(const char *via)
{
	bool mqtt = via && strcmp(via, "mqtt") == 0;
	char extra[512], url[128] = "";

	fx_write_secret(fx_path("product.secret"), CL_PS);
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
	return cc_run(s);
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
	cc_store_cred("ali", &cred);
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
	json_object_set_new(args, "wait", json_integer(cc_wait_s(wait_s)));
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
