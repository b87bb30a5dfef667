/* SPDX-License-Identifier: MIT */
/*
 * The Tencent dynamic-registration module without a cloud: the host a v2 request is signed
 * for, the arguments gw_tencent_register_start() refuses, that done is never called from
 * within start, and that a cancelled registration neither calls done nor stores anything.
 * The protocol against the loopback test cloud: tests/integration/test-tencent-register.c.
 */

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../helpers/ckrun.h"
#include "gw/tencent_register.h"

START_TEST(test_signed_host)
{
	static const struct {
		const char *url;
		const char *host; /* NULL: -EINVAL */
	} cases[] = {
		{ "https://ap-guangzhou.gateway.tencentdevices.com/device/register",
		  "ap-guangzhou.gateway.tencentdevices.com" },
		{ "https://localhost:8443/device/register", "localhost" },
		{ "https://127.0.0.1:1/register/dev", "127.0.0.1" },
		{ "https://[::1]:8443/device/register", "[::1]" },
		{ "https://Example.COM/device/register?x=1#f", "Example.COM" },
		{ "https://example.com", "example.com" },
		{ "http://localhost/device/register", NULL },
		{ "HTTPS://localhost/device/register", NULL },
		{ "https://", NULL },
		{ "https://user:pw@localhost/device/register", NULL },
		{ "https://user@localhost/device/register", NULL },
		{ "localhost/device/register", NULL },
		{ "", NULL },
	};
	char buf[128];

	ck_assert_int_eq(gw_http_lib_init(), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = gw_tencent_register_signed_host(cases[i].url, buf, sizeof(buf));

		if (cases[i].host) {
			ck_assert_msg(r == (int)strlen(cases[i].host), "%s: %d", cases[i].url, r);
			ck_assert_str_eq(buf, cases[i].host);
		} else {
			ck_assert_msg(r == -EINVAL, "%s: %d", cases[i].url, r);
		}
	}
	ck_assert_int_eq(gw_tencent_register_signed_host(NULL, buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(gw_tencent_register_signed_host("https://localhost/x", buf, 9), -ENOBUFS);
	ck_assert_int_eq(gw_tencent_register_signed_host("https://localhost/x", buf, 10), 9);
}
END_TEST

/* ---- the object on a loop, with no server ---- */

static char tmp[64];
static sd_event *loop;
static struct gw_http *http;
static struct gw_credstore *store;
static struct gw_config_uplink cfg;
static int calls;

static void setup(void)
{
	char dir[128];

	snprintf(tmp, sizeof(tmp), "/tmp/test-treg-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	snprintf(dir, sizeof(dir), "%s/creds", tmp);
	ck_assert_int_ge(sd_event_new(&loop), 0);
	gw_http_lib_init();
	ck_assert_int_eq(gw_http_new(loop, &http), 0);
	ck_assert_int_eq(gw_credstore_open(dir, &store, NULL, 0), 0);
	cfg = (struct gw_config_uplink){ .name = "tc" };
	cfg.tencent.product_id = (char *)"CS0SLTKSYA";
	cfg.cloud.product_secret = (char *)"testProductSecret123";
	/* nothing listens there: the request fails fast once the loop runs */
	cfg.cloud.register_url = (char *)"https://127.0.0.1:1/device/register";
	calls = 0;
}

static void teardown(void)
{
	char cmd[128];

	store = gw_credstore_close(store);
	http = gw_http_free(http);
	loop = sd_event_unref(loop);
	gw_http_lib_cleanup();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	ck_assert_int_eq(system(cmd), 0);
}

struct seen {
	enum gw_tencent_register_result result;
	char why[512];
};

static void on_done(struct gw_tencent_register *reg, const struct gw_tencent_register_outcome *o,
		    void *ud)
{
	struct seen *s = ud;

	(void)reg;
	calls++;
	s->result = o->result;
	snprintf(s->why, sizeof(s->why), "%s", o->why);
	ck_assert_ptr_null(o->cred);
	sd_event_exit(loop, 0);
}

START_TEST(test_start_refuses)
{
	struct gw_tencent_register *reg = (struct gw_tencent_register *)&cfg; /* untouched */
	struct gw_tencent_register *const before = reg;
	struct gw_config_uplink bad;
	struct seen s;

	ck_assert_int_eq(gw_tencent_register_start(loop, http, store, &cfg, "dev:1", on_done, &s,
						   &reg), -EINVAL); /* not a store name */
	ck_assert_int_eq(gw_tencent_register_start(loop, http, store, &cfg, "dev/1", on_done, &s,
						   &reg), -EINVAL);
	ck_assert_int_eq(gw_tencent_register_start(loop, http, store, &cfg, "", on_done, &s, &reg),
			 -EINVAL);
	ck_assert_int_eq(gw_tencent_register_start(loop, http, store, &cfg, NULL, on_done, &s,
						   &reg), -EINVAL);
	ck_assert_int_eq(gw_tencent_register_start(loop, http, store, &cfg, "dev1", NULL, &s, &reg),
			 -EINVAL);
	bad = cfg;
	bad.tencent.product_id = NULL;
	ck_assert_int_eq(gw_tencent_register_start(loop, http, store, &bad, "dev1", on_done, &s,
						   &reg), -EINVAL);
	bad = cfg;
	bad.cloud.product_secret = (char *)"short";
	ck_assert_int_eq(gw_tencent_register_start(loop, http, store, &bad, "dev1", on_done, &s,
						   &reg), -EINVAL);
	bad = cfg;
	bad.cloud.product_secret = NULL;
	ck_assert_int_eq(gw_tencent_register_start(loop, http, store, &bad, "dev1", on_done, &s,
						   &reg), -EINVAL);
	bad = cfg;
	bad.cloud.region = (char *)"cn-shanghai";
	ck_assert_int_eq(gw_tencent_register_start(loop, http, store, &bad, "dev1", on_done, &s,
						   &reg), -EINVAL);
	bad = cfg;
	bad.tencent.register_api = (enum gw_register_api)7;
	ck_assert_int_eq(gw_tencent_register_start(loop, http, store, &bad, "dev1", on_done, &s,
						   &reg), -EINVAL);
	bad = cfg;
	bad.cloud.sign_method = (enum gw_sign_method)7;
	ck_assert_int_eq(gw_tencent_register_start(loop, http, store, &bad, "dev1", on_done, &s,
						   &reg), -EINVAL);
	ck_assert_ptr_eq(reg, before);
	ck_assert_int_eq(calls, 0);
	ck_assert_ptr_null(gw_tencent_register_cancel(NULL));
}
END_TEST

/* done runs from the loop, exactly once, never from within start. */
START_TEST(test_done_from_loop)
{
	struct gw_tencent_register *reg = NULL;
	struct seen s = { 0 };
	struct gw_cred c;

	ck_assert_int_eq(gw_tencent_register_start(loop, http, store, &cfg, "dev1", on_done, &s,
						   &reg), 0);
	ck_assert_ptr_nonnull(reg);
	ck_assert_int_eq(calls, 0);
	ck_assert_int_ge(sd_event_loop(loop), 0);
	ck_assert_int_eq(calls, 1);
	ck_assert_int_eq(s.result, GW_TENCENT_REGISTER_FAILED);
	ck_assert_msg(strstr(s.why, "registration request failed"), "why: %s", s.why);
	ck_assert_int_eq(gw_http_running(http), 0);
	ck_assert_int_eq(gw_credstore_load(store, "dev1", &c, NULL, 0), -ENOENT);
}
END_TEST

/* A URL that the module cannot use fails from the loop too, never from start. */
START_TEST(test_bad_url_fails_from_loop)
{
	struct gw_tencent_register *reg = NULL;
	struct seen s = { 0 };

	cfg.cloud.register_url = (char *)"https://user:pw@127.0.0.1:1/device/register";
	ck_assert_int_eq(gw_tencent_register_start(loop, http, store, &cfg, "dev1", on_done, &s,
						   &reg), 0);
	ck_assert_int_eq(calls, 0);
	ck_assert_int_ge(sd_event_loop(loop), 0);
	ck_assert_int_eq(calls, 1);
	ck_assert_int_eq(s.result, GW_TENCENT_REGISTER_FAILED);
	ck_assert_msg(strstr(s.why, "without user info") && !strstr(s.why, "pw"), "why: %s", s.why);
}
END_TEST

static int stop_cb(sd_event_source *src, uint64_t usec, void *ud)
{
	(void)src;
	(void)usec;
	(void)ud;
	sd_event_exit(loop, 0);
	return 0;
}

/* Cancelled before and while the request runs: done is not called, the request is gone. */
START_TEST(test_cancel)
{
	struct gw_tencent_register *reg = NULL;
	struct seen s = { 0 };
	sd_event_source *stop = NULL;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	char url[128];
	int fd;

	ck_assert_int_eq(gw_tencent_register_start(loop, http, store, &cfg, "dev1", on_done, &s,
						   &reg), 0);
	ck_assert_ptr_null(gw_tencent_register_cancel(reg));

	/* a peer that never answers: the kernel completes the handshake, nobody accepts */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/device/register", ntohs(a.sin_port));
	cfg.cloud.register_url = url;
	ck_assert_int_eq(gw_tencent_register_start(loop, http, store, &cfg, "dev1", on_done, &s,
						   &reg), 0);
	ck_assert_int_ge(sd_event_add_time_relative(loop, &stop, CLOCK_MONOTONIC, 200 * 1000, 0,
						    stop_cb, NULL), 0);
	ck_assert_int_ge(sd_event_loop(loop), 0);
	ck_assert_int_eq(calls, 0);
	ck_assert_int_eq(gw_http_running(http), 1);
	ck_assert_ptr_null(gw_tencent_register_cancel(reg));
	ck_assert_int_eq(gw_http_running(http), 0);
	ck_assert_int_eq(calls, 0);
	sd_event_source_unref(stop);
	close(fd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tencent_register");
	TCase *tc = tcase_create("pure");

	tcase_add_test(tc, test_signed_host);
	suite_add_tcase(s, tc);
	tc = tcase_create("object");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_start_refuses);
	tcase_add_test(tc, test_done_from_loop);
	tcase_add_test(tc, test_bad_url_fails_from_loop);
	tcase_add_test(tc, test_cancel);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return ck_run_suite(s);
}
