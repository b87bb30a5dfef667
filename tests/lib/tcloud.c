/* SPDX-License-Identifier: MIT */
/* The loopback Tencent test cloud for the integration tests; see tcloud.h. */

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloudctl.h"
#include "gw/credstore.h"
#include "tcloud.h"

int tc_ctl_port;
int tc_https_port;
int tc_mqtts_port;
int tc_mqttpsk_port;
int tc_mqtt_port;
int tc_http_port;

json_t *tc_ctl(const char *cmd, json_t *args)
{
	return cc_ctl(tc_ctl_port, cmd, args);
}

static json_t *dev_args(const char *pid, const char *dn)
{
	return json_pack("{s:s,s:s}", "productId", pid, "deviceName", dn);
}

json_t *tc_dev_args(const char *dn)
{
	return dev_args(TC_PID, dn);
}

bool tc_wait(json_t *match, int timeout_s)
{
	return cc_wait(tc_ctl_port, match, timeout_s);
}

bool tc_wait_since(json_t *match, json_int_t since, int timeout_s)
{
	return cc_wait_since(tc_ctl_port, match, since, timeout_s);
}

size_t tc_count(const char *ev, const char *field, const char *value)
{
	return cc_count(tc_ctl_port, ev, field, value);
}

json_int_t tc_last_seq(void)
{
	json_t *r = tc_ctl("health", json_object());
	json_int_t seq = json_integer_value(json_object_get(r, "seq"));

	json_decref(r);
	return seq;
}

json_int_t tc_device_field(const char *dn, const char *field)
{
	json_t *r = tc_ctl("device", tc_dev_args(dn));
	json_int_t v = json_integer_value(json_object_get(r, field));

	json_decref(r);
	return v;
}

bool tc_wait_property(const char *dn, const char *name, int timeout_ms)
{
	int64_t end = fx_mono_ms() + (int64_t)timeout_ms * fx_timeout_scale();

	while (fx_mono_ms() < end) {
		json_t *args = tc_dev_args(dn);
		json_t *r;
		bool found;

		json_object_set_new(args, "name", json_string(name));
		r = tc_ctl("properties", args);
		found = json_array_size(json_object_get(r, "properties")) > 0;
		json_decref(r);
		if (found)
			return true;
		fx_sleep_ms(200);
	}
	return false;
}

void tc_wait_connect_window(const char *dn)
{
	tc_wait_device_connect_window(TC_PID, dn);
}

void tc_wait_device_connect_window(const char *pid, const char *dn)
{
	json_t *dev = tc_device(pid, dn, false);
	json_t *set = tc_ctl("settings", json_object());
	json_t *last = json_object_get(dev, "lastConnect");
	double gap = json_number_value(json_object_get(set, "connect_interval"));
	/* the window starts at the CONNECT's answer (t, epoch ms); 250 ms for the two clocks */
	int64_t end = json_integer_value(json_object_get(last, "t")) + (int64_t)(gap * 1000) + 250;
	int64_t left;

	ck_assert_msg(json_is_true(json_object_get(set, "ok")), "settings refused");
	ck_assert_msg(gap >= 0 && gap <= 60, "connect_interval %g", gap);
	if (json_is_object(last))
		while ((left = end - fx_now_ms()) > 0)
			fx_sleep_ms(left < 100 ? (int)left : 100);
	json_decref(set);
	json_decref(dev);
}

void tc_start(const char *psk_devices, const char *cert_devices)
{
	tc_start_https_ca(psk_devices, cert_devices, NULL);
}

void tc_start_https_ca(const char *psk_devices, const char *cert_devices, const char *https_ca)
{
	char crt[4096] = "", key[4096] = "";
	char products[8192];
	char cert_product[1024] = "";
	json_t *ports;

	fx_make_certs();
	ck_assert_int_eq(mkdir(fx_path("tcloud"), 0700), 0);
	if (cert_devices)
		snprintf(cert_product, sizeof(cert_product),
			 ", {\"productId\": \"" TC_CERT_PID "\", \"productSecret\": \"%s\", "
			 "\"dynamicRegistration\": true, \"registerType\": 1, "
			 "\"authType\": \"cert\", \"devices\": [%s]}",
			 TC_CERT_PS, cert_devices);
	snprintf(products, sizeof(products),
		 "{\"products\": [{\"productId\": \"" TC_PID "\", \"productSecret\": \"%s\", "
		 "\"dynamicRegistration\": true, \"registerType\": 1, \"authType\": \"psk\", "
		 "\"template\": {\"properties\": {\"MQ2\": {\"type\": \"int\", \"min\": 0, "
		 "\"max\": 10000}, \"MQ135\": \"int\", \"MQ4\": \"int\", \"MQ7\": \"int\", "
		 "\"DHT11_T\": \"float\", \"DHT11_H\": \"float\", \"report_interval_ms\": \"int\", "
		 "\"led\": \"bool\"}}, \"devices\": [%s]}%s], \"settings\": {\"connect_interval\": 5}}",
		 TC_PS, psk_devices, cert_product);
	fx_write_file(fx_path("tcloud/products.json"), products, 0600);
	if (https_ca) {
		cc_make_https_ca(https_ca);
		snprintf(crt, sizeof(crt), "%s/server.crt", fx_path(https_ca));
		snprintf(key, sizeof(key), "%s/server.key", fx_path(https_ca));
	}
	ports = cc_start_https("tencent_cloud.py", "tcloud", "tcloud/products.json", "tcloud.log",
			       https_ca ? crt : NULL, https_ca ? key : NULL);
	tc_ctl_port = cc_port(ports, "control");
	tc_https_port = cc_port(ports, "https");
	tc_http_port = cc_port(ports, "http");
	tc_mqtts_port = cc_port(ports, "mqtts");
	tc_mqttpsk_port = cc_port(ports, "mqttpsk");
	tc_mqtt_port = cc_port(ports, "mqtt");
	json_decref(ports);
}

json_t *tc_device(const char *pid, const char *dn, bool with_cert)
{
	json_t *args = dev_args(pid, dn);
	json_t *r;

	if (with_cert)
		json_object_set_new(args, "withCert", json_true());
	r = tc_ctl("device", args);
	ck_assert_msg(json_is_true(json_object_get(r, "ok")), "device %s/%s unknown", pid, dn);
	return r;
}

char *tc_device_psk(const char *dn)
{
	json_t *r = tc_device(TC_PID, dn, false);
	const char *psk = json_string_value(json_object_get(r, "psk"));
	char *copy = psk ? strdup(psk) : NULL;

	json_decref(r);
	return copy;
}

void tc_https_fail(const char *mode, int count, json_t *opts)
{
	json_t *args = opts ? opts : json_object();
	json_t *r;

	json_object_set_new(args, "mode", json_string(mode));
	if (count > 0)
		json_object_set_new(args, "count", json_integer(count));
	r = tc_ctl("https_fail", args);
	ck_assert_msg(json_is_true(json_object_get(r, "ok")), "https_fail %s refused", mode);
	json_decref(r);
}

void tc_set_product(const char *pid, json_t *fields)
{
	json_t *r;

	json_object_set_new(fields, "productId", json_string(pid));
	r = tc_ctl("set_product", fields);
	ck_assert_msg(json_is_true(json_object_get(r, "ok")), "set_product %s refused", pid);
	json_decref(r);
}

const char *tc_register_url(bool legacy)
{
	static char url[2][128];

	snprintf(url[legacy], sizeof(url[legacy]), "https://localhost:%d%s", tc_https_port,
		 legacy ? "/register/dev" : "/device/register");
	return url[legacy];
}

void tc_provision_psk(const char *dn, const char *psk)
{
	struct gw_cred cred = {
		.cloud = GW_CRED_CLOUD_TENCENT,
		.kind = GW_CRED_PSK,
		.product = (char *)TC_PID,
		.device = (char *)dn,
		.psk = (char *)psk,
	};
	cc_store_cred("tc", &cred);
}

void tc_provision_cert(const char *dn, const char *cert, const char *key)
{
	struct gw_cred cred = {
		.cloud = GW_CRED_CLOUD_TENCENT,
		.kind = GW_CRED_CERTIFICATE,
		.product = (char *)TC_PID,
		.device = (char *)dn,
		.cert = (char *)cert,
		.key = (char *)key,
	};
	cc_store_cred("tc", &cred);
}

static void openssl(const char *const args[])
{
	const char *argv[32] = { "/usr/bin/openssl" };
	char *out = NULL, *err = NULL;
	size_t n = 1;
	int st;

	for (; *args && n < 31; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	st = fx_run(argv, &out, &err, 30000);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "openssl %s: %s", argv[1], err);
	free(out);
	free(err);
}

void tc_make_ca(const char *name)
{
	char crt[4096], key[4096], subj[256];

	snprintf(crt, sizeof(crt), "%s/%s.crt", fx_dir(), name);
	snprintf(key, sizeof(key), "%s/%s.key", fx_dir(), name);
	snprintf(subj, sizeof(subj), "/CN=sensorgw test %s", name);
	openssl((const char *const[]){ "req", "-x509", "-newkey", "ec", "-pkeyopt",
		"ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-keyout", key, "-out", crt,
		"-subj", subj, "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
		"keyUsage=critical,keyCertSign,cRLSign", NULL });
}

void tc_issue_cert(const char *ca, const char *cn, char **cert, char **key)
{
	char crt[4096], cakey[4096], base[4096], subj[256], path[4200];

	snprintf(crt, sizeof(crt), "%s/%s.crt", fx_dir(), ca);
	snprintf(cakey, sizeof(cakey), "%s/%s.key", fx_dir(), ca);
	snprintf(base, sizeof(base), "%s/%s-%s", fx_dir(), ca, cn);
	snprintf(subj, sizeof(subj), "/CN=%s", cn);
	snprintf(path, sizeof(path), "%s.ext", base);
	fx_write_file(path, "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n", 0600);
	{
		char keyf[4200], csr[4200], out[4200];

		snprintf(keyf, sizeof(keyf), "%s.key", base);
		snprintf(csr, sizeof(csr), "%s.csr", base);
		snprintf(out, sizeof(out), "%s.crt", base);
		openssl((const char *const[]){ "req", "-newkey", "ec", "-pkeyopt",
			"ec_paramgen_curve:P-256", "-nodes", "-keyout", keyf, "-out", csr, "-subj",
			subj, NULL });
		openssl((const char *const[]){ "x509", "-req", "-in", csr, "-CA", crt, "-CAkey",
			cakey, "-CAcreateserial", "-days", "30", "-sha256", "-extfile", path,
			"-out", out, NULL });
		*cert = fx_read_file(out);
		*key = fx_read_file(keyf);
	}
	ck_assert_ptr_nonnull(*cert);
	ck_assert_ptr_nonnull(*key);
}

char *tc_config(const char *extra)
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
				  "framing = binary\n"
				  "\n"
				  "[uplink tc]\n"
				  "type = tencent\n"
				  "product_id = " TC_PID "\n"
				  "host = localhost\n"
				  "port = %d\n"
				  "ca_file = %s\n"
				  "keepalive = 30\n"
				  "reconnect_min_ms = 1000\n"
				  "reconnect_max_ms = 8000\n"
				  "%s",
				  fx_path("state"), fx_path("control"), fx_path("tty-n1"),
				  tc_mqtts_port,
				  fx_path("broker/ca.crt"), extra ? extra : ""), 0);
	return c;
}

json_t *tc_status_json(void)
{
	return fx_status_json();
}

json_t *tc_status_uplink(json_t *status, const char *name)
{
	size_t i;
	json_t *u;

	json_array_foreach(json_object_get(status, "uplinks"), i, u)
		if (json_is_string(json_object_get(u, "name")) &&
		    strcmp(json_string_value(json_object_get(u, "name")), name) == 0)
			return u;
	ck_abort_msg("no uplink %s in the status", name);
	return NULL;
}

int tc_pskfront_start(const char *psk_hex, bool tls13)
{
	return tc_pskfront_start_id(TC_PID TC_DN, psk_hex, tls13);
}

int tc_pskfront_start_id(const char *identity, const char *psk_hex, bool tls13)
{
	char backend[16];
	const char *const argv[] = { fx_env("GW_PSKFRONT"),
				     "--port-file",
				     fx_path("pskfront.port"),
				     "--backend",
				     backend,
				     "--identity",
				     identity,
				     "--psk",
				     psk_hex,
				     tls13 ? "--tls13" : NULL,
				     NULL };
	int64_t end = fx_mono_ms() + 10000;
	pid_t pid;

	snprintf(backend, sizeof(backend), "%d", tc_mqttpsk_port);
	(void)unlink(fx_path("pskfront.port"));
	pid = fx_spawn(argv, "pskfront.log");
	while (fx_mono_ms() < end) {
		char *text = fx_read_file(fx_path("pskfront.port"));
		int port = text ? atoi(text) : 0;

		free(text);
		if (port > 0)
			return port;
		ck_assert_msg(fx_child_running(pid), "the TLS-PSK front exited");
		fx_sleep_ms(50);
	}
	ck_abort_msg("the TLS-PSK front did not start");
	return -1;
}

char *tc_config_psk(int port, const char *extra)
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
				  "framing = binary\n"
				  "\n"
				  "[uplink tc]\n"
				  "type = tencent\n"
				  "product_id = " TC_PID "\n"
				  "host = localhost\n"
				  "port = %d\n"
				  "tls = psk\n"
				  "keepalive = 30\n"
				  "reconnect_min_ms = 1000\n"
				  "reconnect_max_ms = 8000\n"
				  "%s",
				  fx_path("state"), fx_path("control"), fx_path("tty-n1"), port,
				  extra ? extra : ""), 0);
	return c;
}
