/* SPDX-License-Identifier: MIT */
/*
 * Bad HTTPS registration replies with the real daemon against the loopback Aliyun test cloud
 * (tests/cloud/aliyun_cloud.py, its https_fail modes), plus a wrong CA and a certificate for
 * the wrong host name. For each: no credential and no marker written, one log line per failed
 * attempt naming the cause, attempts spaced as the backoff says (reconnect_min_ms = 1000,
 * jitter [d/2, d]), and, for the faults of a server that recovers, registration and data once
 * the fault is gone.
 *
 * To keep the run short, a transient fault is injected for the next 2 requests only (the
 * cloud's https_fail count), so the third attempt, 1.5 to 3 s after the first, is the one that
 * registers. A slow fault (drip, hang) costs a timeout per attempt and is injected once.
 */

#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloud.h"
#include "fixture.h"

#define DN CL_DN

#define CRED_FILE "state/credentials/ali/" DN ".json"
#define STATE_FILE "state/credentials/ali/" DN ".state"
#define FAILED "registration over HTTPS failed"
#define NOTHING_WRITTEN "no credential written"

enum kind {
	TRANSIENT, /* fails fast: injected twice, then the cloud answers */
	SLOW,      /* costs a timeout: injected once, then the cloud answers */
	REFUSAL,   /* a reply code: the needs-provisioning marker, a slow retry */
};

static const struct fault {
	const char *mode;
	const char *cause; /* what the daemon's failure line says */
	enum kind kind;
} faults[] = {
	{ "http500", "HTTP status 500", TRANSIENT },
	{ "http503", "HTTP status 503", TRANSIENT },
	{ "truncated", "malformed reply", TRANSIENT },
	{ "short_body", "bytes remaining to read", TRANSIENT },
	{ "wrong_types", "malformed reply", TRANSIENT },
	{ "no_secret", "malformed reply", TRANSIENT },
	{ "not_json", "malformed reply", TRANSIENT },
	{ "huge", "response body over 4096 bytes, cut off", TRANSIENT },
	{ "redirect_http", "HTTP status 302, a redirect to http://127.0.0.1:", TRANSIENT },
	{ "reset", "reset by peer", TRANSIENT },
	{ "drip", "timed out during the reply: Operation too slow", SLOW },
	{ "hang", "timed out before any reply: Operation too slow", SLOW },
	{ "code_error", "registration refused by the platform (code 500: injected error)",
	  REFUSAL },
};

/* Daemon log lines that contain every needle (ignoring case). */
static size_t log_lines(const char *const needles[])
{
	char *text = fx_read_file(fx_path("daemon.log"));
	char *save = NULL;
	size_t n = 0;

	if (!text)
		return 0;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		bool all = true;

		for (size_t i = 0; needles[i] && all; i++)
			all = strcasestr(line, needles[i]) != NULL;
		n += all;
	}
	free(text);
	return n;
}

static bool wait_log_lines(const char *const needles[], size_t n, int timeout_ms)
{
	int64_t end = fx_mono_ms() + (int64_t)timeout_ms * fx_timeout_scale();

	while (log_lines(needles) < n) {
		if (fx_mono_ms() >= end)
			return false;
		fx_sleep_ms(50);
	}
	return true;
}

/* The cloud times (epoch ms) of the events named ev whose field equals value (field may be
 * NULL), in order; returns how many (at most max). */
static size_t event_times(const char *ev, const char *field, const char *value, int64_t *t,
			  size_t max)
{
	json_t *r = cl_ctl("log", json_pack("{s:s}", "ev", ev));
	size_t i, n = 0;
	json_t *e;

	json_array_foreach(json_object_get(r, "events"), i, e) {
		const char *v = field ? json_string_value(json_object_get(e, field)) : NULL;

		if (n < max && (!field || (v && strcmp(v, value) == 0)))
			t[n++] = json_integer_value(json_object_get(e, "t"));
	}
	json_decref(r);
	return n;
}

static void https_fail(const char *mode, int count)
{
	json_t *args = json_pack("{s:s}", "mode", mode);
	json_t *r;

	if (count > 0)
		json_object_set_new(args, "count", json_integer(count));
	r = cl_ctl("https_fail", args);
	ck_assert_msg(json_is_true(json_object_get(r, "ok")), "https_fail %s refused", mode);
	json_decref(r);
}

/* Starts the daemon with config conf and gives it a record of a new node. */
static void start_daemon(const char *conf, struct fx_pty *n1)
{
	fx_pty_new(n1, "tty-n1");
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(n1, fx_daemon_pid(), FX_WAIT_MS));
	cl_write_line(n1, "temp=21.5,hum=40\r\n");
}

static void assert_nothing_written(void)
{
	ck_assert_msg(!cl_file_exists(fx_path(CRED_FILE)), "a credential was written");
	ck_assert_msg(!cl_file_exists(fx_path(STATE_FILE)), "a needs-provisioning marker was "
		      "written for a fault that is not a refusal");
}

START_TEST(test_bad_reply)
{
	const struct fault *f = &faults[_i];
	const char *const failed[] = { "device " DN, FAILED, f->cause, NOTHING_WRITTEN, NULL };
	const char *const refused[] = { "device " DN, f->cause, NOTHING_WRITTEN, NULL };
	int injected = f->kind == SLOW ? 1 : 2;
	int64_t t[8], treg;
	struct fx_pty n1;
	char *conf, *cred;

	cl_start("\"" DN "\"");
	https_fail(f->mode, f->kind == REFUSAL ? 0 : injected);
	conf = cl_register_config_via("https"); /* no MQTT fallback */
	start_daemon(conf, &n1);

	if (f->kind == REFUSAL) {
		ck_assert_msg(fx_daemon_wait_log_line(refused, 15000), "no refusal line");
		ck_assert(!cl_file_exists(fx_path(CRED_FILE)));
		ck_assert(cl_file_exists(fx_path(STATE_FILE)));
		/* the next attempt is a minute away: none in the next 2.5 s (the backoff of a
		 * transport failure would have retried within 1 s) */
		fx_sleep_ms(2500);
		ck_assert_uint_eq(cl_count("https_request", "injected", f->mode), 1);
		ck_assert_uint_eq(log_lines(refused), 1);
		ck_assert_uint_eq(cl_count("https_register", NULL, NULL), 0);
		goto out;
	}

	/* every failed attempt: its own line, and nothing on disk (the next attempt is at least
	 * 0.5 s away when the line appears, so the checks cannot race with it) */
	for (int i = 1; i <= injected; i++) {
		ck_assert_msg(wait_log_lines(failed, (size_t)i, 25000),
			      "no failure line %d naming '%s'", i, f->cause);
		assert_nothing_written();
	}

	/* the cloud answers again: the next attempt registers and the record arrives */
	ck_assert_msg(cl_wait(json_pack("{s:s,s:s,s:i}", "ev", "alink_post", "deviceName", DN,
				       "code", 200), 25), "no data after the fault ended");
	ck_assert_int_eq(cl_device_field(DN, "registerCount"), 1);
	ck_assert_uint_eq(cl_count("https_register", NULL, NULL), 1);
	ck_assert_uint_eq(cl_count("https_request", "injected", f->mode), (size_t)injected);
	ck_assert_uint_eq(log_lines(failed), (size_t)injected);
	ck_assert(!cl_file_exists(fx_path(STATE_FILE)));
	cred = fx_read_file(fx_path(CRED_FILE));
	ck_assert_ptr_nonnull(cred);
	/* the injected replies' fake secrets were never stored */
	ck_assert_ptr_null(strstr(cred, "INJECTED"));
	ck_assert_ptr_null(strstr(cred, "INSECURE"));
	free(cred);

	/* attempts spaced by the backoff: 1 s then 2 s, each jittered to [d/2, d]; the gap
	 * includes the failed request's own time, so only the lower bounds are exact */
	ck_assert_uint_eq(event_times("https_request", "injected", f->mode, t, 8),
			  (size_t)injected);
	ck_assert_uint_eq(event_times("https_register", NULL, NULL, &treg, 1), 1);
	t[injected] = treg;
	ck_assert_msg(t[1] - t[0] >= 490, "second attempt %lld ms after the first",
		      (long long)(t[1] - t[0]));
	if (injected == 2)
		ck_assert_msg(t[2] - t[1] >= 990, "third attempt %lld ms after the second",
			      (long long)(t[2] - t[1]));
	if (f->kind == SLOW)
		/* cut off by the low-speed limit (5 s), within the total timeout (15 s) */
		ck_assert_msg(t[1] - t[0] >= 4900 && t[1] - t[0] < 25000,
			      "the slow reply ended after %lld ms", (long long)(t[1] - t[0]));
	else
		ck_assert_msg(treg - t[0] < 12000, "registered %lld ms after the first attempt",
			      (long long)(treg - t[0]));
out:
	/* a redirect is never followed (the plain listener would log it) */
	ck_assert_uint_eq(cl_count("insecure_request", NULL, NULL), 0);
	if (strcmp(f->mode, "huge") == 0) {
		/* the body cap ended the transfer: the cloud could not send its 10 MiB */
		json_t *r = cl_ctl("log", json_pack("{s:s}", "ev", "https_fault_aborted"));
		json_t *e = json_array_get(json_object_get(r, "events"), 0);

		ck_assert_msg(e, "the cloud sent the whole huge body");
		ck_assert_int_lt(json_integer_value(json_object_get(e, "sent")), 10 * 1024 * 1024);
		json_decref(r);
	}
	free(conf);
	fx_pty_close(&n1);
}
END_TEST

/* conf with its one occurrence of from replaced by to. Free the result. */
static char *replace(const char *conf, const char *from, const char *to)
{
	const char *at = strstr(conf, from);
	char *out = NULL;

	ck_assert_ptr_nonnull(at);
	ck_assert_int_gt(asprintf(&out, "%.*s%s%s", (int)(at - conf), conf, to,
				  at + strlen(from)), 0);
	return out;
}

/*
 * A wrong CA: the daemon's ca_file is an unrelated CA, so the cloud's certificate does not
 * verify. The attempts never get past the handshake (the cloud logs tls_error each time), the
 * line names the host, the CA file and the cause, and the retry waits like after a refusal
 * (from reconnect_max_ms, 8 s here), not at the reconnect pace.
 */
START_TEST(test_wrong_ca)
{
	char cause[4200];
	const char *const failed[] = { "device " DN, FAILED, cause, NOTHING_WRITTEN, NULL };
	struct fx_pty n1;
	size_t lines, tls;
	char *conf, *reg;

	cl_start("\"" DN "\"");
	reg = cl_register_config_via("https"); /* no MQTT fallback */
	conf = replace(reg, fx_path("broker/ca.crt"), fx_path("broker/wrongca.crt"));
	free(reg);
	snprintf(cause, sizeof(cause), "TLS: the certificate of localhost does not verify against "
		 "%s: unable to get local issuer certificate (verify error 20)",
		 fx_path("broker/wrongca.crt"));
	start_daemon(conf, &n1);
	ck_assert_msg(fx_daemon_wait_log_line(failed, 15000), "no failure line naming the CA");
	assert_nothing_written();
	/* the next attempt after 4 to 8 s (reconnect_max_ms 8 s, jitter [d/2, d]); at the reconnect
	 * pace (from 1 s) there would be 2 to 4 by now */
	fx_sleep_ms(3500);
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);
	lines = log_lines(failed);
	tls = cl_count("tls_error", "listener", "https");
	ck_assert_msg(lines == 1, "%zu failed attempts in 3.5 s", lines);
	ck_assert_msg(tls == 1, "%zu handshakes, %zu lines", tls, lines);
	ck_assert_uint_eq(cl_count("https_request", NULL, NULL), 0);
	assert_nothing_written();
	free(conf);
	fx_pty_close(&n1);
}
END_TEST

/* The right CA, but a certificate for another host name: the host check refuses it. */
START_TEST(test_wrong_host)
{
	const char *const failed[] = { "device " DN, FAILED,
				       "subject name matches target host name 'localhost'",
				       NOTHING_WRITTEN, NULL };
	char key[4096], csr[4096], ext[4096], ca[4096], cakey[4096], serial[4096], crt[4096];
	const char *const mkcsr[] = { "/usr/bin/openssl", "req", "-new", "-key", key, "-out", csr,
				      "-subj", "/CN=other.example", NULL };
	const char *const sign[] = { "/usr/bin/openssl", "x509", "-req", "-in", csr, "-CA", ca,
				     "-CAkey", cakey, "-CAserial", serial, "-days", "2", "-sha256",
				     "-extfile", ext, "-out", crt, NULL };
	struct fx_pty n1;
	char *conf;
	int st;

	/* the fixture's server certificate, re-issued by the same CA for another name */
	fx_make_certs();
	snprintf(key, sizeof(key), "%s/broker/server.key", fx_dir());
	snprintf(csr, sizeof(csr), "%s/broker/other.csr", fx_dir());
	snprintf(ext, sizeof(ext), "%s/broker/other.ext", fx_dir());
	snprintf(ca, sizeof(ca), "%s/broker/ca.crt", fx_dir());
	snprintf(cakey, sizeof(cakey), "%s/broker/ca.key", fx_dir());
	snprintf(serial, sizeof(serial), "%s/broker/ca.srl", fx_dir());
	snprintf(crt, sizeof(crt), "%s/broker/server.crt", fx_dir());
	fx_write_file(ext, "subjectAltName=DNS:other.example\nbasicConstraints=CA:FALSE\n"
		      "extendedKeyUsage=serverAuth\n", 0644);
	st = fx_run(mkcsr, NULL, NULL, 20000);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	st = fx_run(sign, NULL, NULL, 20000);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	cl_start("\"" DN "\"");
	conf = cl_register_config_via("https"); /* no MQTT fallback */
	start_daemon(conf, &n1);
	ck_assert_msg(fx_daemon_wait_log_line(failed, 15000), "no failure line naming the host");
	assert_nothing_written();
	/* libcurl checks the name after the handshake, so the cloud sees no error, only the
	 * connection closing before a request */
	ck_assert_uint_eq(cl_count("https_request", NULL, NULL), 0);
	free(conf);
	fx_pty_close(&n1);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("aliyun-regfaults");
	TCase *tc = tcase_create("regfaults");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_loop_test(tc, test_bad_reply, 0, (int)(sizeof(faults) / sizeof(faults[0])));
	tcase_add_test(tc, test_wrong_ca);
	tcase_add_test(tc, test_wrong_host);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cl_run(suite());
}
