/* SPDX-License-Identifier: MIT */
/*
 * Component test of the HTTPS client on a real sd-event loop against a real HTTPS server on
 * 127.0.0.1 (tests/helpers/https_server.py) with a CA made by the test.
 */

#include <check.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../helpers/ckrun.h"
#include "gw/http.h"
#include "gw/util.h"

static char tmp[64];
static pid_t server;
static int port;
static sd_event *loop;
static struct gw_http *http;

struct result {
	bool done;
	int err;
	long status;
	char *body;
	size_t len;
	char error[1024];
	char location[256];
	bool untrusted;
	long verify_result;
};

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ck_assert_msg(system(cmd) == 0, "command failed: %s", cmd);
}

static void make_certs(void)
{
	for (int i = 0; i < 2; i++) {
		const char *ca = i ? "wrongca" : "ca";

		sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 "
		   "-keyout %s/%s.key -out %s/%s.crt -subj '/CN=Test %s' "
		   "-addext basicConstraints=critical,CA:TRUE "
		   "-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null",
		   tmp, ca, tmp, ca, ca);
	}
	sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s/server.key "
	   "-out %s/server.csr -subj /CN=localhost 2>/dev/null", tmp, tmp);
	sh("printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n"
	   "extendedKeyUsage=serverAuth\\n' > %s/server.ext", tmp);
	sh("openssl x509 -req -in %s/server.csr -CA %s/ca.crt -CAkey %s/ca.key -CAcreateserial "
	   "-days 30 -extfile %s/server.ext -out %s/server.crt 2>/dev/null",
	   tmp, tmp, tmp, tmp, tmp);
}

static void setup(void)
{
	char portfile[128], buf[16];
	const char *src = getenv("GW_SOURCE_ROOT");
	char script[512];

	snprintf(tmp, sizeof(tmp), "/tmp/test-http-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	make_certs();
	snprintf(portfile, sizeof(portfile), "%s/port", tmp);
	snprintf(script, sizeof(script), "%s/tests/helpers/https_server.py", src ? src : ".");
	server = fork();
	ck_assert_int_ge(server, 0);
	if (server == 0) {
		char cert[128], key[128], log[128];

		snprintf(cert, sizeof(cert), "%s/server.crt", tmp);
		snprintf(key, sizeof(key), "%s/server.key", tmp);
		snprintf(log, sizeof(log), "%s/requests.jsonl", tmp);
		execl("/usr/bin/python3", "python3", script, "--cert", cert, "--key", key,
		      "--portfile", portfile, "--log", log, "--big", "10485760", (char *)NULL);
		_exit(127);
	}
	/* bounded wait for the port file */
	for (int i = 0; i < 200; i++) {
		int fd = open(portfile, O_RDONLY | O_CLOEXEC);

		if (fd >= 0) {
			ssize_t n = read(fd, buf, sizeof(buf) - 1);

			close(fd);
			ck_assert_int_gt(n, 0);
			buf[n] = '\0';
			port = atoi(buf);
			break;
		}
		usleep(25000);
	}
	ck_assert_int_gt(port, 0);
	ck_assert_int_ge(sd_event_new(&loop), 0);
	ck_assert_int_eq(gw_http_lib_init(), 0);
	ck_assert_int_eq(gw_http_new(loop, &http), 0);
}

static void teardown(void)
{
	char cmd[128];

	http = gw_http_free(http);
	loop = sd_event_unref(loop);
	gw_http_lib_cleanup();
	if (server > 0) {
		kill(server, SIGTERM);
		waitpid(server, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmp);
}

static void on_done(struct gw_http_request *req, const struct gw_http_response *resp, void *ud)
{
	struct result *r = ud;

	r->done = true;
	r->err = resp->err;
	r->status = resp->status;
	r->body = gw_strdup(resp->body);
	r->len = resp->len;
	r->untrusted = resp->untrusted;
	r->verify_result = resp->verify_result;
	snprintf(r->error, sizeof(r->error), "%s", resp->error ? resp->error : "");
	snprintf(r->location, sizeof(r->location), "%s", resp->location ? resp->location : "");
}

/* Runs the loop until the request is done, for at most limit_s seconds. */
static double run(struct result *r, double limit_s)
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &b);
		double t = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;

		if (r->done || t > limit_s)
			return t;
		ck_assert_int_ge(sd_event_run(loop, 100000), 0);
	}
}

static void post(const char *path, const char *ca, const struct gw_http_options *opt,
		 struct result *r)
{
	char url[128], cafile[128];
	struct gw_http_options o = opt ? *opt : (struct gw_http_options){ 0 };
	static const char *const hdr[] = { "X-Test: 1", NULL };

	snprintf(url, sizeof(url), "https://localhost:%d%s", port, path);
	snprintf(cafile, sizeof(cafile), "%s/%s.crt", tmp, ca);
	o.ca_file = cafile;
	ck_assert_int_eq(gw_http_post(http, url, "application/x-www-form-urlencoded", hdr,
				      "a=1&b=2", 7, &o, on_done, r, NULL), 0);
}

START_TEST(test_ok)
{
	struct result r = { 0 };

	post("/ok", "ca", NULL, &r);
	run(&r, 10);
	ck_assert(r.done);
	ck_assert_int_eq(r.err, 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.location, "");
	ck_assert_ptr_nonnull(strstr(r.body, "\"body\": \"a=1&b=2\""));
	ck_assert_uint_eq(gw_http_running(http), 0);
	free(r.body);
}
END_TEST

START_TEST(test_status_500)
{
	struct result r = { 0 };

	post("/status/500", "ca", NULL, &r);
	run(&r, 10);
	ck_assert(r.done);
	ck_assert_int_eq(r.err, 0);
	ck_assert(!r.untrusted);
	ck_assert_int_eq(r.status, 500);
	ck_assert_str_eq(r.body, "{\"code\":500,\"message\":\"boom\"}");
	free(r.body);
}
END_TEST

START_TEST(test_wrong_ca)
{
	struct result r = { 0 };

	char want[512];

	post("/ok", "wrongca", NULL, &r);
	run(&r, 10);
	ck_assert(r.done);
	ck_assert_int_eq(r.err, -EPROTO);
	ck_assert_int_eq(r.status, 0);
	/* flagged, with the verify code, and one line naming the host, the file and the cause */
	ck_assert(r.untrusted);
	ck_assert_int_eq(r.verify_result, 20); /* X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY */
	snprintf(want, sizeof(want), "TLS: the certificate of localhost does not verify against "
		 "%s/wrongca.crt: unable to get local issuer certificate (verify error 20)", tmp);
	ck_assert_str_eq(r.error, want);
	free(r.body);
}
END_TEST

/* A CA file that cannot be read is a matter of trust too: untrusted, and the line says so. */
START_TEST(test_missing_ca_file)
{
	struct result r = { 0 };

	post("/ok", "missing", NULL, &r);
	run(&r, 10);
	ck_assert(r.done);
	ck_assert_int_eq(r.err, -EPROTO);
	ck_assert(r.untrusted);
	ck_assert_msg(strstr(r.error, "TLS: cannot verify localhost: the CA file ") &&
		      strstr(r.error, "/missing.crt cannot be used"), "%s", r.error);
	free(r.body);
}
END_TEST

START_TEST(test_big_body_capped)
{
	struct result r = { 0 };
	struct gw_http_options o = { .max_body = 64 * 1024 };

	post("/big", "ca", &o, &r);
	run(&r, 20);
	ck_assert(r.done);
	ck_assert_int_eq(r.err, -EMSGSIZE);
	ck_assert_uint_le(r.len, 64 * 1024);
	ck_assert_str_eq(r.error, "response body over 65536 bytes, cut off");
	free(r.body);
}
END_TEST

START_TEST(test_slow_drip_times_out)
{
	struct result r = { 0 };
	struct gw_http_options o = { .timeout_ms = 1500 };
	double t;

	post("/drip", "ca", &o, &r);
	t = run(&r, 10);
	ck_assert(r.done);
	ck_assert_int_eq(r.err, -ETIMEDOUT);
	ck_assert_msg(strncmp(r.error, "timed out during the reply: ", 28) == 0, "%s", r.error);
	ck_assert(t < 5.0);
	free(r.body);
}
END_TEST

START_TEST(test_redirect_not_followed)
{
	struct result r = { 0 };

	post("/redirect", "ca", NULL, &r);
	run(&r, 10);
	ck_assert(r.done);
	ck_assert_int_eq(r.err, 0);
	ck_assert_int_eq(r.status, 302);
	/* named, so that the log line can say where it pointed */
	ck_assert_str_eq(r.location, "http://127.0.0.1:1/ok");
	free(r.body);
}
END_TEST

START_TEST(test_plain_http_refused)
{
	struct result r = { 0 };

	ck_assert_int_eq(gw_http_post(http, "http://127.0.0.1:1/", "text/plain", NULL, "", 0, NULL,
				      on_done, &r, NULL), -EINVAL);
	ck_assert_uint_eq(gw_http_running(http), 0);
}
END_TEST

START_TEST(test_refused_and_cancel)
{
	struct result r = { 0 }, r2 = { 0 };
	struct gw_http_request *req;
	struct gw_http_options o = { .connect_timeout_ms = 2000 };

	/* a port nobody listens on */
	ck_assert_int_eq(gw_http_post(http, "https://127.0.0.1:1/", "text/plain", NULL, "x", 1, &o,
				      on_done, &r, NULL), 0);
	run(&r, 10);
	ck_assert(r.done);
	ck_assert_int_eq(r.err, -ECONNREFUSED);
	free(r.body);

	/* a cancelled request never calls back and leaves nothing running */
	post("/drip", "ca", NULL, &r2);
	ck_assert_uint_eq(gw_http_running(http), 1);
	for (int i = 0; i < 5; i++)
		sd_event_run(loop, 50000);
	req = NULL;
	ck_assert_int_eq(gw_http_post(http, "https://127.0.0.1:1/", "text/plain", NULL, "x", 1,
				      &o, on_done, &r2, &req), 0);
	gw_http_cancel(req);
	ck_assert_uint_eq(gw_http_running(http), 1);
	/* freeing with a request running is clean too (teardown) */
}
END_TEST

static Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("https");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_ok);
	tcase_add_test(tc, test_status_500);
	tcase_add_test(tc, test_wrong_ca);
	tcase_add_test(tc, test_missing_ca_file);
	tcase_add_test(tc, test_big_body_capped);
	tcase_add_test(tc, test_slow_drip_times_out);
	tcase_add_test(tc, test_redirect_not_followed);
	tcase_add_test(tc, test_plain_http_refused);
	tcase_add_test(tc, test_refused_and_cancel);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ck_run_suite(http_suite());
}
