/* SPDX-License-Identifier: MIT */
/*
 * The batch clock ([gateway] batch_ms, docs/performance.md) against the real daemon, a real
 * mosquitto and a pty: a lone frame after a quiet spell is handled at once and starts the
 * clock; frames that keep coming within the window are read on its ticks together with the
 * broker's acknowledgements, every one delivered, in order, the law exact; a tick without a
 * frame ends the hold. A window of 0 turns the clock off. A stop in the middle of a held spell
 * drains what is in flight (the acknowledgements are read again as they come).
 */

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "fixture.h"

static json_int_t batch_field(json_t *st, const char *name)
{
	json_t *v = json_object_get(json_object_get(st, "batch"), name);

	ck_assert_msg(v, "status has no batch.%s", name);
	return json_is_boolean(v) ? json_is_true(v) : json_integer_value(v);
}

static json_t *uplink(json_t *st)
{
	return json_array_get(json_object_get(st, "uplinks"), 0);
}

/* What fx_wait_count() asks: the clock let go and nothing is queued or in flight. */
static size_t settled(void)
{
	json_t *st = fx_status_json();
	json_t *u = uplink(st);
	bool ok = !batch_field(st, "held") &&
		  json_integer_value(json_object_get(u, "queued")) == 0 &&
		  json_integer_value(json_object_get(u, "inflight")) == 0;

	json_decref(st);
	return ok;
}

/* fx_config() with batch_ms in its [gateway] section. */
static void start(struct fx_pty *txt, int batch_ms)
{
	struct fx_pty bin;
	char *conf, *with;
	const char *rest;

	fx_broker_start();
	fx_subscriber_start("sensorgw/#");
	fx_pty_new(txt, "tty-txt");
	fx_pty_new(&bin, "tty-bin");
	conf = fx_config(fx_path("broker/ca.crt"), NULL);
	rest = strstr(conf, "[gateway]\n");
	ck_assert_ptr_nonnull(rest);
	ck_assert_int_ge(asprintf(&with, "[gateway]\nbatch_ms = %d\n%s", batch_ms,
				  rest + strlen("[gateway]\n")),
			 0);
	fx_daemon_start(with);
	ck_assert(fx_pty_wait_opened(txt, fx_daemon_pid(), FX_WAIT_MS));
	ck_assert(fx_daemon_wait_connected(FX_WAIT_MS));
	ck_assert(fx_daemon_wait_started(FX_WAIT_MS));
	free(conf);
	free(with);
}

static void write_frame(const struct fx_pty *txt, int i)
{
	char line[64];
	int len = snprintf(line, sizeof(line), "temp=%d.5,hum=%d\r\n", i, i % 100);

	fx_pty_write(txt, line, (size_t)len);
}

/* The subscriber got frames 1..n once each and in order (the temp values). */
static void assert_delivered_in_order(int n)
{
	size_t count;
	struct fx_msg *m = fx_subscriber_messages(&count);

	ck_assert_uint_eq(count, (size_t)n);
	for (size_t i = 0; i < count; i++) {
		char want[32];

		snprintf(want, sizeof(want), "\"temp\":%zu.5", i + 1);
		ck_assert_msg(strstr(m[i].payload, want), "message %zu: %s", i, m[i].payload);
	}
	fx_msgs_free(m, count);
}

static void assert_law_exact(void)
{
	json_t *st = fx_status_json();
	json_t *law = json_object_get(uplink(st), "law");

	fx_check_status_schema(st);
	ck_assert(json_is_true(json_object_get(law, "exact")));
	json_decref(st);
}

START_TEST(test_held)
{
	struct fx_pty txt;
	json_int_t holds, ticks;
	json_t *st;

	start(&txt, 50);
	st = fx_status_json();
	ck_assert_int_eq(batch_field(st, "window_ms"), 50);
	ck_assert_int_eq(batch_field(st, "holds"), 0);
	json_decref(st);

	/* a lone frame on a quiet line: handled at once, and the clock starts */
	write_frame(&txt, 1);
	ck_assert(fx_subscriber_wait_count(1, FX_WAIT_MS));
	st = fx_status_json();
	ck_assert_int_eq(batch_field(st, "holds"), 1);
	json_decref(st);
	/* its first tick finds no frame and lets go */
	ck_assert(fx_wait_count(settled, 1, FX_WAIT_MS));
	st = fx_status_json();
	ck_assert_int_ge(batch_field(st, "ticks"), 1);
	holds = batch_field(st, "holds");
	ticks = batch_field(st, "ticks");
	json_decref(st);

	/* a frame every 10 ms for about a second: read on the 50 ms ticks, the spell held */
	for (int i = 2; i <= 100; i++) {
		write_frame(&txt, i);
		fx_sleep_ms(10);
	}
	ck_assert(fx_subscriber_wait_count(100, FX_WAIT_MS));
	ck_assert(fx_wait_count(settled, 1, FX_WAIT_MS));
	st = fx_status_json();
	/* about 20 ticks for the spell; a daemon slowed down (valgrind) may let go between
	 * frames now and then, each time holding again at the next one */
	ck_assert_msg(batch_field(st, "ticks") - ticks >= 5, "ticks %lld -> %lld",
		      (long long)ticks, (long long)batch_field(st, "ticks"));
	ck_assert_msg(batch_field(st, "ticks") - ticks > batch_field(st, "holds") - holds,
		      "every hold a single tick: %lld holds, %lld ticks",
		      (long long)(batch_field(st, "holds") - holds),
		      (long long)(batch_field(st, "ticks") - ticks));
	json_decref(st);
	assert_delivered_in_order(100);
	assert_law_exact();
}
END_TEST

START_TEST(test_off)
{
	struct fx_pty txt;
	json_t *st;

	start(&txt, 0);
	for (int i = 1; i <= 30; i++) {
		write_frame(&txt, i);
		fx_sleep_ms(5);
	}
	ck_assert(fx_subscriber_wait_count(30, FX_WAIT_MS));
	ck_assert(fx_wait_count(settled, 1, FX_WAIT_MS));
	st = fx_status_json();
	ck_assert_int_eq(batch_field(st, "window_ms"), 0);
	ck_assert_int_eq(batch_field(st, "holds"), 0);
	ck_assert_int_eq(batch_field(st, "ticks"), 0);
	json_decref(st);
	assert_delivered_in_order(30);
	assert_law_exact();
}
END_TEST

START_TEST(test_stop_held)
{
	struct fx_pty txt;
	int64_t ms;
	int status;

	start(&txt, 50);
	/* frames every 2 ms, the stop in the middle of the spell */
	for (int i = 1; i <= 40; i++) {
		write_frame(&txt, i);
		fx_sleep_ms(2);
	}
	status = fx_daemon_stop(&ms);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	/* the drain read its acknowledgements: nothing left in flight at the exit */
	ck_assert_msg(!fx_daemon_log_contains("record(s) in flight; they stay in the spool"),
		      "the stop did not drain");
	/* and it was held when it stopped */
	ck_assert(fx_daemon_log_contains("batch: window_ms=50 holds="));
	ck_assert(!fx_daemon_log_contains("batch: window_ms=50 holds=0 "));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("batch");
	TCase *tc = tcase_create("batch");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_held);
	tcase_add_test(tc, test_off);
	tcase_add_test(tc, test_stop_held);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
