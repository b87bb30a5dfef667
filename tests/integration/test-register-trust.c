/* SPDX-License-Identifier: MIT */
/*
 * The trust of the HTTPS registration host, with the real daemon against the loopback test
 * clouds serving registration under a second CA made by the test (cc_make_https_ca()) while
 * MQTT stays under the fixture's broker/ca.crt: the platforms do the same (Tencent's
 * registration host chains to DigiCert Global Root CA, MQTT to the Iothub root,
 * docs/protocols/tencent.md §1.6).
 *
 * Shown: a registration whose host does not verify against the trust in use (here the MQTT CA)
 * is logged with the host, the CA file and OpenSSL's cause with its code, and is retried with
 * growing delays (from reconnect_max_ms, doubling: a refusal's pace, not the reconnect pace), for
 * Tencent and for Aliyun over HTTPS; the cloud sees TLS failures and no request. With
 * register_ca_file set to the registration host's CA, registration and MQTT each verify under
 * their own CA and the device registers on the first try, for Tencent and for Aliyun over HTTPS.
 * And the default configuration (no ca_file, no register_ca_file) registers on the first try:
 * in a mount namespace of the test's own, the directory of the installed roots holds the test's
 * two CAs under the installed names (the MQTT root file and the registration root file).
 */

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cloud.h"
#include "cloudctl.h"
#include "fixture.h"
#include "gw-build.h"
#include "tcloud.h"

#define DN "dev-n1"
#define N_TRIES 4

/* text with the first from replaced by to (must be there); a new string */
static char *replace(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	char *out = NULL;

	ck_assert_msg(at, "no '%s' in the configuration", from);
	ck_assert_int_gt(asprintf(&out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from)),
			 0);
	return out;
}

/* The delays of the daemon log's "registration ... failed: ... retrying in X s" lines that
 * hold cause, in order; returns how many (up to max). */
static int failure_delays(const char *cause, double *delays, int max)
{
	char *text = fx_read_file(fx_path("daemon.log"));
	char *line, *save = NULL;
	int n = 0;

	ck_assert_ptr_nonnull(text);
	for (line = strtok_r(text, "\n", &save); line && n < max; line = strtok_r(NULL, "\n", &save)) {
		const char *r = strstr(line, "; retrying in ");

		if (!strstr(line, "device " DN ": registration") || !strstr(line, " failed: ") ||
		    !strstr(line, cause) || !r)
			continue;
		ck_assert_int_eq(sscanf(r, "; retrying in %lf s", &delays[n]), 1);
		n++;
	}
	free(text);
	return n;
}

/* Waits for N_TRIES failures with cause and checks that the delays grow: each from its
 * backoff step b..2b after one of b/2..b (jitter), so never shorter, and the third at least
 * twice the first step. */
static void assert_backs_off(const char *cause, double max_s)
{
	const char *const line[] = { "device " DN ": registration", cause, "retrying in", NULL };
	double d[N_TRIES];
	int64_t end = fx_mono_ms() + 60000 * fx_timeout_scale();
	int n;

	ck_assert_msg(fx_daemon_wait_log_line(line, 30000), "no line about the TLS failure");
	while ((n = failure_delays(cause, d, N_TRIES)) < N_TRIES) {
		ck_assert_msg(fx_mono_ms() < end, "%d failures logged, want %d", n, N_TRIES);
		fx_sleep_ms(200);
	}
	for (int i = 0; i < N_TRIES; i++)
		fprintf(stderr, "try %d: retrying in %.1f s\n", i + 1, d[i]);
	/* the first step is reconnect_max_ms (jittered down to half), not reconnect_min_ms */
	ck_assert_msg(d[0] >= max_s / 2 - 0.05 && d[0] <= max_s + 0.05, "first delay %.1f s",
		      d[0]);
	for (int i = 1; i < N_TRIES; i++)
		ck_assert_msg(d[i] >= d[i - 1] - 0.05, "delay %d (%.1f s) < delay %d (%.1f s)", i + 1,
			      d[i], i, d[i - 1]);
	ck_assert_msg(d[2] >= 2 * max_s - 0.05, "third delay %.1f s: not growing", d[2]);
	ck_assert(fx_daemon_running());
	ck_assert(!fx_daemon_log_contains("registered"));
}

/* Tencent: register_ca_file names the MQTT CA, and the registration host is served under
 * another CA. */
START_TEST(test_tencent_untrusted_backs_off)
{
	char link[4096], extra[1024], cause[4200];
	const char *const args[] = { "--pty", "--link", link, "--framing", "binary", "--rate", "2",
				     "--uid", "0123456789abcdef01234567", NULL };
	char *text, *conf;

	tc_start_https_ca("\"" DN "\"", NULL, "regca");
	fx_write_secret(fx_path("tps"), TC_PS);
	snprintf(extra, sizeof(extra), "auth = register\nproduct_secret_file = %s\n"
		 "register_url = https://localhost:%d/device/register\nregister_ca_file = %s\n",
		 fx_path("tps"), tc_https_port, fx_path("broker/ca.crt"));
	snprintf(link, sizeof(link), "%s", fx_path("tty-n1"));
	(void)fx_sim_start(args);
	text = tc_config(extra);
	conf = replace(text, "reconnect_max_ms = 8000", "reconnect_max_ms = 1000");
	free(text);
	fx_daemon_start(conf);
	free(conf);
	snprintf(cause, sizeof(cause), "TLS: the certificate of localhost does not verify against "
		 "%s: unable to get local issuer certificate (verify error 20)",
		 fx_path("broker/ca.crt"));
	assert_backs_off(cause, 1.0);
	/* every try ended in the handshake: the cloud saw no request */
	ck_assert_int_eq(tc_count("https_register", NULL, NULL), 0);
	ck_assert_int_eq(tc_count("https_request", NULL, NULL), 0);
	ck_assert_int_ge(tc_count("tls_error", "listener", "https"), N_TRIES);
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);
}
END_TEST

/* Aliyun over HTTPS (register_via = https: no MQTT fallback), the same. */
START_TEST(test_aliyun_untrusted_backs_off)
{
	char cause[4200];
	struct fx_pty n1;
	char *text, *conf;

	cl_start_https_ca("\"" DN "\"", false, "regca");
	text = cl_register_config_via("https");
	conf = replace(text, "reconnect_max_ms = 8000", "reconnect_max_ms = 1000");
	free(text);
	/* a text node on the pty: its first line brings the device */
	fx_pty_new(&n1, "tty-n1");
	fx_daemon_start(conf);
	free(conf);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), FX_WAIT_MS));
	cl_write_line(&n1, "temp=21.5,hum=40\r\n");
	snprintf(cause, sizeof(cause), "TLS: the certificate of localhost does not verify against "
		 "%s: unable to get local issuer certificate (verify error 20)",
		 fx_path("broker/ca.crt"));
	assert_backs_off(cause, 1.0);
	ck_assert_int_eq(cl_count("https_register", NULL, NULL), 0);
	ck_assert_int_eq(cl_count("https_request", NULL, NULL), 0);
	ck_assert_int_ge(cl_count("tls_error", "listener", "https"), N_TRIES);
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);
	fx_pty_close(&n1);
}
END_TEST

/* register_ca_file names the registration host's CA; ca_file stays the MQTT CA. */
START_TEST(test_tencent_own_ca_first_try)
{
	char link[4096], extra[2048];
	const char *const args[] = { "--pty", "--link", link, "--framing", "binary", "--rate", "2",
				     "--uid", "0123456789abcdef01234567", NULL };
	const char *const online[] = { "device " DN ": online", NULL };
	char *conf;

	tc_start_https_ca("\"" DN "\"", NULL, "regca");
	fx_write_secret(fx_path("tps"), TC_PS);
	snprintf(extra, sizeof(extra), "auth = register\nproduct_secret_file = %s\n"
		 "register_url = https://localhost:%d/device/register\nregister_ca_file = %s\n",
		 fx_path("tps"), tc_https_port, fx_path("regca/ca.crt"));
	snprintf(link, sizeof(link), "%s", fx_path("tty-n1"));
	(void)fx_sim_start(args);
	conf = tc_config(extra);
	fx_daemon_start(conf);
	free(conf);
	ck_assert_msg(fx_daemon_wait_log_line(online, 30000), "dev-n1 never came online");
	ck_assert(fx_daemon_log_contains("device " DN ": registered; PSK stored"));
	ck_assert(!fx_daemon_log_contains("registration failed"));
	ck_assert_int_eq(tc_count("https_register", NULL, NULL), 1);
	ck_assert_int_eq(tc_count("tls_error", NULL, NULL), 0);
	ck_assert(tc_wait(json_pack("{s:s,s:s,s:i}", "ev", "thing_uplink", "method", "report",
				    "code", 0), 20));
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);
}
END_TEST

START_TEST(test_aliyun_own_ca_first_try)
{
	struct fx_pty n1;
	char line[4200];
	char *text, *conf;

	cl_start_https_ca("\"" DN "\"", false, "regca");
	text = cl_register_config_via("https");
	snprintf(line, sizeof(line), "register_ca_file = %s\n", fx_path("regca/ca.crt"));
	ck_assert_int_gt(asprintf(&conf, "%s%s", text, line), 0);
	free(text);
	fx_pty_new(&n1, "tty-n1");
	fx_daemon_start(conf);
	free(conf);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), FX_WAIT_MS));
	cl_write_line(&n1, "temp=21.5,hum=40\r\n");
	ck_assert_msg(cl_wait(json_pack("{s:s}", "ev", "https_register"), 30),
		      "no registration reached the cloud");
	ck_assert_msg(cl_wait_property(DN, "temp", 21.5, 30000), "no data after registering");
	ck_assert(!fx_daemon_log_contains("registration over HTTPS failed"));
	ck_assert_int_eq(cl_count("https_register", NULL, NULL), 1);
	ck_assert_int_eq(cl_count("tls_error", NULL, NULL), 0);
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);
	fx_pty_close(&n1);
}
END_TEST

/* The directory of the installed roots (GW_TENCENT_CA_FILE's), in a mount namespace of this
 * test process and its children only: a tmpfs on it, or on its deepest existing ancestor when
 * sensorgw is not installed (the path below is made in the tmpfs), holding mqtt_ca under the
 * MQTT root's name and reg_ca under the registration roots' name. */
static void install_roots(const char *mqtt_ca, const char *reg_ca)
{
	char dir[4096], at[4096];
	char *slash, *text;

	ck_assert_msg(geteuid() == 0, "this test needs root (a mount namespace of its own)");
	ck_assert_msg(unshare(CLONE_NEWNS) == 0, "unshare: %s", strerror(errno));
	ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	snprintf(dir, sizeof(dir), "%s", GW_TENCENT_CA_FILE);
	*strrchr(dir, '/') = '\0';
	snprintf(at, sizeof(at), "%s", dir);
	while (access(at, F_OK) != 0 && (slash = strrchr(at, '/')) && slash != at)
		*slash = '\0';
	ck_assert_msg(mount("tmpfs", at, "tmpfs", 0, "mode=0755") == 0, "tmpfs on %s: %s", at,
		      strerror(errno));
	for (char *p = dir + strlen(at) + 1; p <= dir + strlen(dir); p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			ck_assert_msg(mkdir(dir, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", dir,
				      strerror(errno));
			*p = c;
		}
	}
	text = fx_read_file(mqtt_ca);
	fx_write_file(GW_TENCENT_CA_FILE, text, 0644);
	free(text);
	text = fx_read_file(reg_ca);
	fx_write_file(GW_TENCENT_REGISTER_CA_FILE, text, 0644);
	free(text);
}

/* The default configuration: no ca_file, no register_ca_file; the installed roots (here the
 * test's CAs) verify MQTT and the registration host, each its own. */
START_TEST(test_tencent_default_first_try)
{
	char link[4096], extra[2048];
	const char *const args[] = { "--pty", "--link", link, "--framing", "binary", "--rate", "2",
				     "--uid", "0123456789abcdef01234567", NULL };
	const char *const online[] = { "device " DN ": online", NULL };
	char *text, *conf, *line;

	tc_start_https_ca("\"" DN "\"", NULL, "regca");
	install_roots(fx_path("broker/ca.crt"), fx_path("regca/ca.crt"));
	fx_write_secret(fx_path("tps"), TC_PS);
	snprintf(extra, sizeof(extra), "auth = register\nproduct_secret_file = %s\n"
		 "register_url = https://localhost:%d/device/register\n", fx_path("tps"),
		 tc_https_port);
	snprintf(link, sizeof(link), "%s", fx_path("tty-n1"));
	(void)fx_sim_start(args);
	text = tc_config(extra);
	ck_assert_int_gt(asprintf(&line, "ca_file = %s\n", fx_path("broker/ca.crt")), 0);
	conf = replace(text, line, "");
	free(line);
	free(text);
	ck_assert_ptr_null(strstr(conf, "ca_file"));
	fx_daemon_start(conf);
	free(conf);
	ck_assert_msg(fx_daemon_wait_log_line(online, 30000), "dev-n1 never came online");
	ck_assert(fx_daemon_log_contains("device " DN ": registered; PSK stored"));
	ck_assert(!fx_daemon_log_contains("registration failed"));
	ck_assert_int_eq(tc_count("https_register", NULL, NULL), 1);
	ck_assert_int_eq(tc_count("tls_error", NULL, NULL), 0);
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("register-trust");
	TCase *tc = tcase_create("register-trust");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_tencent_untrusted_backs_off);
	tcase_add_test(tc, test_aliyun_untrusted_backs_off);
	tcase_add_test(tc, test_tencent_own_ca_first_try);
	tcase_add_test(tc, test_aliyun_own_ca_first_try);
	tcase_add_test(tc, test_tencent_default_first_try);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cc_run(suite());
}
