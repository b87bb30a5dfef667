/* SPDX-License-Identifier: MIT */
/*
 * The tencent uplink's other ways to log in, with the real daemon, a node simulated by sensorgw-sim
 * in binary framing and the loopback Tencent test cloud (tests/cloud/tencent_cloud.py):
 *
 * - auth = certificate (docs/protocols/tencent.md §1.3): a client certificate with CN
 * <ProductId><DeviceName> from a CA
 *
 * the test makes and the cloud trusts, on a TLS listener that requires one; records arrive
 *
 * as reports. A certificate from another CA is refused in the handshake: nothing is
 *
 * delivered, the daemon says so, and it retries with backoff, not in a loop;
 *
 * - auth = register with a certificate product: the registration's encryptionType 1 answer
 *
 * (clientCert, clientKey) is stored 0600 and the session logs in with it;
 *
 * - tls = psk (docs/protocols/tencent.md §1.4, the C SDK's 8883 mode): see the TLS-PSK tests below.
 */

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloudctl.h"
#include "gw/tencent.h"
#include "fixture.h"
#include "tcloud.h"

#define DN TC_DN
#define CN TC_PID DN

static void start_sim(void)
{
	char link[4096];
	const char *const args[] = { "--pty", "--link", link, "--framing", "binary", "--rate", "2",
				     "--uid", "0123456789abcdef01234567", NULL };

	snprintf(link, sizeof(link), "%s", fx_path("tty-n1"));
	(void)fx_sim_start(args);
}

static void ctl_ok(const char *cmd, json_t *args)
{
	json_t *r = tc_ctl(cmd, args);

	ck_assert_msg(json_is_true(json_object_get(r, "ok")), "%s: %s", cmd,
		      json_string_value(json_object_get(r, "error")));
	json_decref(r);
}

/* The cloud's product becomes a certificate product (docs/protocols/tencent.md §1.3) whose TLS
 * listener requires a client certificate. */
static void cert_product(void)
{
	ctl_ok("set_product", json_pack("{s:s,s:s}", "productId", TC_PID, "authType", "cert"));
	ctl_ok("settings", json_pack("{s:s}", "client_cert", "required"));
}

static void trust(const char *ca)
{
	char path[4096];
	char *pem;

	snprintf(path, sizeof(path), "%s/%s.crt", fx_dir(), ca);
	pem = fx_read_file(path);
	ck_assert_ptr_nonnull(pem);
	ctl_ok("trust_ca", json_pack("{s:s}", "pem", pem));
	free(pem);
}

static bool wait_since(json_t *match, json_int_t since, int timeout_s)
{
	json_t *r = tc_ctl("wait", json_pack("{s:o,s:I,s:i}", "match", match, "since", since,
					     "timeout", timeout_s));
	bool ok = json_is_true(json_object_get(r, "ok")) && json_object_get(r, "event");

	json_decref(r);
	return ok;
}

static size_t count_since(const char *ev, json_int_t since)
{
	json_t *r = tc_ctl("log", json_pack("{s:I,s:s}", "since", since, "ev", ev));
	size_t n = json_array_size(json_object_get(r, "events"));

	json_decref(r);
	return n;
}

START_TEST(test_certificate)
{
	const char *const online[] = { "device " DN ": online", NULL };
	const char *const refused[] = { "device " DN ": the platform refused its stored "
					"certificate at login (in the TLS handshake", "unknown ca",
					"it needs provisioning", NULL };
	char *cert, *key, *conf;
	json_int_t since;
	int64_t t0;
	size_t tries;
	json_t *st, *dev;

	tc_start("\"" DN "\"", NULL);
	cert_product();
	tc_make_ca("ca-good");
	tc_make_ca("ca-other");
	trust("ca-good");
	tc_issue_cert("ca-good", CN, &cert, &key);
	tc_provision_cert(DN, cert, key);
	free(cert);
	free(key);
	start_sim();
	conf = tc_config("auth = certificate\n");
	fx_daemon_start(conf);
	ck_assert_msg(fx_daemon_wait_log_line(online, 30000), "dev-n1 never came online");
	ck_assert(tc_wait(json_pack("{s:s,s:s,s:s,s:i}", "ev", "mqtt_connect", "deviceName", DN,
				    "auth", "cert", "rc", 0), 10));
	ck_assert(tc_wait(json_pack("{s:s,s:b,s:s}", "ev", "tls_ok", "clientCert", 1, "clientCN",
				    CN), 10));
	ck_assert_msg(tc_wait(json_pack("{s:s,s:s,s:s,s:i}", "ev", "thing_uplink", "method",
					"report", "deviceName", DN, "code", 0), 20),
		      "no accepted report with certificate auth");
	ck_assert(tc_wait_property(DN, "MQ2", 10000));
	/* docs/protocols/tencent.md §1.3: a certificate device sends no password */
	ck_assert(tc_wait(json_pack("{s:s,s:s,s:i,s:b}", "ev", "mqtt_connect", "deviceName", DN,
				    "rc", 0, "hasPassword", 0), 5));
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);

	/* the same CN from a CA the cloud does not trust: refused in the TLS handshake */
	tc_issue_cert("ca-other", CN, &cert, &key);
	tc_provision_cert(DN, cert, key);
	free(cert);
	free(key);
	since = tc_last_seq();
	fx_write_file(fx_path("daemon.log"), "", 0644); /* the lines of this run only */
	tc_wait_connect_window(DN);
	fx_daemon_start(conf);
	free(conf);
	ck_assert_msg(fx_daemon_wait_log_line(refused, 30000), "no line about the refusal");
	ck_assert_msg(wait_since(json_pack("{s:s}", "ev", "tls_error"), since, 20),
		      "the cloud saw no failed handshake");
	/* a refused certificate is retried slowly (the credential store's marker: 1 min first),
	 * not at the reconnect backoff. (An attempt may end before the client reads the
	 * server's alert, as a plain failure with the usual backoff; the next one reads it.) */
	tries = count_since("tls_error", since);
	/* a slow daemon (valgrind: GW_TIMEOUT_SCALE) misses the alert more often */
	ck_assert_msg(tries >= 1 && tries <= (fx_timeout_scale() > 1 ? 6u : 3u),
		      "%zu handshakes before the refusal", tries);
	t0 = fx_mono_ms();
	while (fx_mono_ms() - t0 < 14000)
		fx_sleep_ms(500);
	ck_assert_msg(count_since("tls_error", since) == tries, "retried within 14 s of the "
		      "refusal (%zu handshakes)", count_since("tls_error", since));
	st = tc_status_json();
	fx_check_status_schema(st);
	dev = json_array_get(json_object_get(tc_status_uplink(st, "tc"), "devices"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(dev, "provisioning")),
			 "needs-provisioning");
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(dev, "refused")),
				     "unknown ca"));
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(dev, "last_error")),
				     "unknown ca"));
	json_decref(st);
	ck_assert_int_eq(count_since("mqtt_connect", since), 0);
	ck_assert_int_eq(count_since("thing_uplink", since), 0);
	ck_assert(fx_daemon_running());
	ck_assert(!fx_daemon_log_contains("device " DN ": online"));
	ck_assert(!fx_daemon_log_contains("PRIVATE KEY"));
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);
}
END_TEST

/* The session's own TLS context (the client certificate's) still verifies the server. */
START_TEST(test_certificate_wrong_server_ca)
{
	const char *const failed[] = { "device " DN ": connecting failed", "TLS failure",
				       "certificate verify failed", NULL };
	char *cert, *key, *conf, *text, *at;

	tc_start("\"" DN "\"", NULL);
	cert_product();
	tc_make_ca("ca-good");
	trust("ca-good");
	tc_issue_cert("ca-good", CN, &cert, &key);
	tc_provision_cert(DN, cert, key);
	free(cert);
	free(key);
	start_sim();
	text = tc_config("auth = certificate\n");
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

/* auth = register, and the product hands out certificates (encryptionType 1,
 * docs/protocols/tencent.md §2.1). */
START_TEST(test_register_certificate)
{
	const char *const online[] = { "device " DN ": online", NULL };
	char extra[1024];
	char *conf, *stored;
	struct stat st;

	tc_start("\"" DN "\"", NULL);
	cert_product();
	fx_write_secret(fx_path("tps"), TC_PS);
	snprintf(extra, sizeof(extra), "auth = register\nproduct_secret_file = %s\n"
		 "register_url = https://localhost:%d/device/register\nregister_ca_file = %s\n",
		 fx_path("tps"), tc_https_port, fx_path("broker/ca.crt"));
	start_sim();
	conf = tc_config(extra);
	fx_daemon_start(conf);
	free(conf);
	ck_assert_msg(fx_daemon_wait_log_line(online, 40000), "dev-n1 never came online");
	ck_assert(fx_daemon_log_contains("device " DN ": registered; certificate and key stored"));
	ck_assert_int_eq(tc_count("https_register", NULL, NULL), 1);
	ck_assert_int_eq(stat(fx_path("state/credentials/tc/" DN ".json"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	stored = fx_read_file(fx_path("state/credentials/tc/" DN ".json"));
	ck_assert_ptr_nonnull(stored);
	ck_assert_ptr_nonnull(strstr(stored, "\"kind\":\"certificate\""));
	ck_assert_ptr_nonnull(strstr(stored, "PRIVATE KEY"));
	free(stored);
	ck_assert(tc_wait(json_pack("{s:s,s:s,s:s,s:i}", "ev", "mqtt_connect", "deviceName", DN,
				    "auth", "cert", "rc", 0), 10));
	ck_assert(tc_wait(json_pack("{s:s,s:s,s:s,s:i}", "ev", "thing_uplink", "method", "report",
				    "deviceName", DN, "code", 0), 20));
	ck_assert(!fx_daemon_log_contains("PRIVATE KEY"));
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);
}
END_TEST

/* TC_PSK, base64-decoded, as hex (docs/protocols/tencent.md §1.2; 2325e6516e6c53fab5be76f9cb34e479
 * outside canary mode) */
static const char *psk_hex(void)
{
	static char hex[GW_TENCENT_PSK_HEX_MAX];
	char reason[GW_TENCENT_REASON_MAX];

	ck_assert_msg(gw_tencent_psk_hex(TC_PSK, hex, sizeof(hex), reason) == 0, "%s", reason);
	return hex;
}
#define TC_PSK_HEX psk_hex()

static bool front_log_has(const char *needle)
{
	char *log = fx_read_file(fx_path("pskfront.log"));
	bool has = log && strstr(log, needle);

	free(log);
	return has;
}

static size_t front_log_count(const char *needle)
{
	char *log = fx_read_file(fx_path("pskfront.log"));
	size_t n = 0;

	for (const char *p = log; p && (p = strstr(p, needle)); p++)
		n++;
	free(log);
	return n;
}

/* tls = psk (docs/protocols/tencent.md §1.4): a real TLS-PSK handshake with the device's decoded
 * PSK as the key and <PID><DN> as the identity, one of the C SDK's cipher suites, TLS 1.2 even when
 * the server would take 1.3; the username without a password; records arrive as reports. */
START_TEST(test_tls_psk)
{
	const char *const online[] = { "device " DN ": online", NULL };
	json_int_t since;
	char *conf;
	int port;

	tc_start(fx_strf("{\"deviceName\": \"" DN "\", \"psk\": \"%s\"}", TC_PSK), NULL);
	tc_provision_psk(DN, TC_PSK);
	port = tc_pskfront_start(TC_PSK_HEX, false);
	start_sim();
	conf = tc_config_psk(port, NULL);
	fx_daemon_start(conf);
	free(conf);
	ck_assert_msg(fx_daemon_wait_log_line(online, 30000), "dev-n1 never came online");
	ck_assert(tc_wait(json_pack("{s:s,s:s,s:s,s:s}", "ev", "tls_psk", "identity", CN,
				    "cipher", "PSK-AES128-CBC-SHA", "version", "TLSv1.2"), 10));
	ck_assert(front_log_has("handshake ok identity=" CN " cipher=PSK-AES128-CBC-SHA "
				"version=TLSv1.2"));
	ck_assert(tc_wait(json_pack("{s:s,s:s,s:s,s:i,s:b}", "ev", "mqtt_connect", "deviceName",
				    DN, "auth", "tls-psk", "rc", 0, "hasPassword", 0), 10));
	ck_assert_msg(tc_wait(json_pack("{s:s,s:s,s:s,s:i}", "ev", "thing_uplink", "method",
					"report", "deviceName", DN, "code", 0), 20),
		      "no accepted report over TLS-PSK");
	ck_assert(tc_wait_property(DN, "MQ2", 10000));
	ck_assert(!fx_daemon_log_contains(TC_PSK_HEX));
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);

	/* libmosquitto 2.0 offers TLS 1.3 next to the PSK suites: a server that takes it gets
	 * the same PSK and identity with a TLS 1.3 suite, and the login works as well */
	since = tc_last_seq();
	port = tc_pskfront_start(TC_PSK_HEX, true);
	conf = tc_config_psk(port, NULL);
	tc_wait_connect_window(DN);
	fx_daemon_start(conf);
	free(conf);
	ck_assert(wait_since(json_pack("{s:s,s:s,s:s}", "ev", "tls_psk", "identity", CN,
				       "version", "TLSv1.3"), since, 30));
	ck_assert(wait_since(json_pack("{s:s,s:s,s:i}", "ev", "mqtt_connect", "auth", "tls-psk",
				       "rc", 0), since, 10));
	ck_assert(wait_since(json_pack("{s:s,s:s,s:i}", "ev", "thing_uplink", "method", "report",
				       "code", 0), since, 20));
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);
}
END_TEST

/* The device's PSK is not the one the server holds: the handshake fails, nothing arrives. */
START_TEST(test_tls_psk_wrong_key)
{
	size_t n;
	const char *const failed[] = { "device " DN ": the platform refused its stored PSK at "
				       "login (in the TLS handshake", "bad record mac", NULL };
	char *conf;
	int port;

	tc_start(fx_strf("{\"deviceName\": \"" DN "\", \"psk\": \"%s\"}", TC_PSK), NULL);
	tc_provision_psk(DN, fx_secret("tencent-psk-wrong"));
	port = tc_pskfront_start(TC_PSK_HEX, false);
	start_sim();
	conf = tc_config_psk(port, NULL);
	fx_daemon_start(conf);
	free(conf);
	ck_assert_msg(fx_daemon_wait_log_line(failed, 30000), "no line about the failed login");
	ck_assert(front_log_has("handshake failed"));
	ck_assert(!front_log_has("handshake ok"));
	ck_assert_int_eq(tc_count("tls_psk", NULL, NULL), 0);
	ck_assert_int_eq(tc_count("mqtt_connect", NULL, NULL), 0);
	ck_assert(!fx_daemon_log_contains("device " DN ": online"));
	/* a wrong key is retried slowly (the store's marker), not at the reconnect backoff */
	n = front_log_count("handshake failed");
	ck_assert_int_ge(n, 1);
	fx_sleep_ms(8000);
	ck_assert_int_eq(front_log_count("handshake failed"), n);
	ck_assert(fx_daemon_running());
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("tencent-auth");
	TCase *tc = tcase_create("tencent-auth");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_certificate);
	tcase_add_test(tc, test_certificate_wrong_server_ca);
	tcase_add_test(tc, test_register_certificate);
	tcase_add_test(tc, test_tls_psk);
	tcase_add_test(tc, test_tls_psk_wrong_key);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cc_run(suite());
}
