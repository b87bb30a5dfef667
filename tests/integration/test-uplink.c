/* SPDX-License-Identifier: MIT */
/*
 * Uplink behaviour with the real daemon and a real broker: replay pacing (max_rate), order =
 * live-first, and a poison record moved to the dead-letter file without blocking the records
 * behind it.
 */

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"

/* Index i of a text frame, as the test wrote it (params.i), or -1. */
static long msg_index(const struct fx_msg *m)
{
	json_error_t err;
	json_t *o = json_loads(m->payload, 0, &err);
	json_t *i;
	long r = -1;

	if (!o)
		return -1;
	i = json_object_get(json_object_get(o, "params"), "i");
	if (json_is_integer(i))
		r = (long)json_integer_value(i);
	json_decref(o);
	return r;
}

static void write_frames(const struct fx_pty *p, int from, int to)
{
	char line[128];

	for (int i = from; i < to; i++) {
		int n = snprintf(line, sizeof(line), "i=%d,MQ2=%d,DHT11_T=21.5\r\n", i, 30 + i % 7);

		fx_pty_write(p, line, (size_t)n);
	}
}

/* The number of records in the daemon's spool so far (from the SIGUSR1 counters line). */
static bool wait_spooled(int n, int timeout_ms)
{
	char needle[64];
	int64_t end = fx_mono_ms() + (int64_t)timeout_ms * fx_timeout_scale();

	snprintf(needle, sizeof(needle), "appended=%d ", n);
	while (fx_mono_ms() < end) {
		fx_daemon_signal(SIGUSR1);
		fx_sleep_ms(100);
		if (fx_daemon_log_contains(needle))
			return true;
	}
	return false;
}

START_TEST(test_max_rate_paces_delivery)
{
	struct fx_pty txt, bin;
	char *conf;
	struct fx_msg *m;
	size_t n;
	int64_t first, last;

	fx_broker_start();
	fx_subscriber_start("sensorgw/#");
	fx_pty_new(&txt, "tty-txt");
	fx_pty_new(&bin, "tty-bin");
	conf = fx_config(fx_path("broker/ca.crt"), "max_rate = 40\n");
	fx_daemon_start(conf);
	free(conf);
	ck_assert(fx_daemon_wait_connected(FX_WAIT_MS));
	ck_assert(fx_pty_wait_opened(&txt, fx_daemon_pid(), FX_WAIT_MS));

	/* 120 records at once: a one-second burst of 40, then 40 per second */
	write_frames(&txt, 0, 120);
	ck_assert_msg(fx_subscriber_wait_count(120, 20000), "got %zu of 120",
		      fx_subscriber_count());
	m = fx_subscriber_messages(&n);
	ck_assert_uint_eq(n, 120);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(msg_index(&m[i]), (long)i);
	first = m[0].rx_ms;
	last = m[n - 1].rx_ms;
	/* (120 - 40) / 40 = 2 s at the least; unpaced it takes a few milliseconds */
	ck_assert_msg(last - first >= 1800, "120 records in %lld ms at max_rate 40",
		      (long long)(last - first));
	/* The upper bound catches pacing far slower than asked for. A daemon run under
	 * GW_DAEMON_WRAPPER (valgrind) is that much slower at everything, so the bound is widened
	 * by GW_TIMEOUT_SCALE there; the lower bound holds at any speed. */
	ck_assert_msg(last - first <= 6000 * fx_timeout_scale(), "pacing too slow: %lld ms",
		      (long long)(last - first));
	fx_msgs_free(m, n);
	ck_assert_int_eq(fx_daemon_stop(NULL), 0);
}
END_TEST

START_TEST(test_live_first)
{
	struct fx_broker_opts opts = { .persistence = true };
	struct fx_pty txt, bin;
	char *conf;
	struct fx_msg *m;
	size_t n, live_pos = SIZE_MAX;

	/* A persistent subscriber session that survives the broker's restart, so nothing the
	 * daemon publishes is missed whenever it reconnects. */
	fx_broker_start_opts(&opts);
	fx_subscriber_start_persistent("sensorgw/#");
	fx_subscriber_stop();
	fx_broker_stop();

	fx_pty_new(&txt, "tty-txt");
	fx_pty_new(&bin, "tty-bin");
	conf = fx_config(fx_path("broker/ca.crt"), "max_rate = 10\norder = live-first\n");
	fx_daemon_start(conf);
	free(conf);
	ck_assert(fx_pty_wait_opened(&txt, fx_daemon_pid(), FX_WAIT_MS));
	write_frames(&txt, 0, 80); /* the backlog: 7 s at 10/s after a burst of 10 */
	ck_assert(wait_spooled(80, FX_WAIT_MS));

	fx_broker_relaunch();
	fx_subscriber_start_persistent("sensorgw/#");
	ck_assert(fx_daemon_wait_connected(FX_WAIT_MS));
	/* The observer may lag the daemon by a second or two on a loaded machine: the backlog
	 * is long enough that the live record must still overtake most of it. */
	ck_assert(fx_subscriber_wait_count(10, FX_WAIT_MS));
	write_frames(&txt, 1000, 1001); /* the live record */
	ck_assert_msg(fx_subscriber_wait_count(81, 30000), "got %zu of 81",
		      fx_subscriber_count());
	m = fx_subscriber_messages(&n);
	for (size_t i = 0; i < n; i++)
		if (msg_index(&m[i]) == 1000)
			live_pos = i;
	ck_assert_msg(live_pos != SIZE_MAX, "the live record never arrived");
	/*
	 * The order that counts is the daemon's, which the broker logs as it receives each
	 * PUBLISH; the observer may lag on a loaded machine. The live record's payload is the
	 * longest (i=1000). It must have overtaken the rest of the backlog: at least 30 backlog
	 * records were received after it.
	 */
	{
		char *log = fx_read_file(fx_path("broker.log"));
		size_t sizes[256], n_pub = 0, live_at = SIZE_MAX, max = 0;

		for (char *l = log; l && *l && n_pub < 256;) {
			char *nl = strchr(l, '\n');
			char *b;

			if (nl)
				*nl = '\0';
			b = strstr(l, "Received PUBLISH from sensorgw");
			if (b && (b = strrchr(l, '(')) && sscanf(b, "(%zu bytes", &sizes[n_pub]) == 1)
				n_pub++;
			l = nl ? nl + 1 : NULL;
		}
		free(log);
		ck_assert_uint_eq(n_pub, 81);
		for (size_t i = 0; i < n_pub; i++) {
			if (sizes[i] > max) {
				max = sizes[i];
				live_at = i;
			}
		}
		ck_assert_msg(live_at + 30 < n_pub, "the broker received the live record as number "
			      "%zu of %zu (the observer saw it at %zu)", live_at + 1, n_pub,
			      live_pos + 1);
	}
	fx_msgs_free(m, n);
	ck_assert_int_eq(fx_daemon_stop(NULL), 0);
}
END_TEST

START_TEST(test_poison_deadlettered)
{
	struct fx_pty txt, bin;
	char *conf, *dl;
	char line[600];
	struct fx_msg *m;
	size_t n, n_small = 0;
	FILE *f;
	struct stat st;
	int len;
	bool seen[40] = { false };

	/* The broker disconnects any client whose packet exceeds 500 bytes: the big record
	 * below is refused every time it is sent. */
	fx_broker_prepare(NULL);
	f = fopen(fx_path("broker/mosquitto.conf"), "a");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "max_packet_size 500\n");
	fclose(f);
	fx_broker_relaunch();
	fx_subscriber_start("sensorgw/#");

	fx_pty_new(&txt, "tty-txt");
	fx_pty_new(&bin, "tty-bin");
	conf = fx_config(fx_path("broker/ca.crt"), "deadletter_after = 3\n");
	fx_daemon_start(conf);
	free(conf);
	ck_assert(fx_daemon_wait_connected(FX_WAIT_MS));
	ck_assert(fx_pty_wait_opened(&txt, fx_daemon_pid(), FX_WAIT_MS));

	write_frames(&txt, 0, 20);
	len = snprintf(line, sizeof(line), "i=99");
	for (int k = 0; k < 6; k++)
		len += snprintf(line + len, sizeof(line) - (size_t)len, ",pad%d=%.60s", k,
				"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	len += snprintf(line + len, sizeof(line) - (size_t)len, "\r\n");
	fx_pty_write(&txt, line, (size_t)len);
	write_frames(&txt, 20, 40);

	ck_assert_msg(fx_daemon_wait_log_line((const char *const[]){ "dead-letter", NULL }, 30000),
		      "no dead-letter log line");
	/* every small record arrives (some perhaps twice), the big one never */
	for (int t = 0; t < 200 * fx_timeout_scale() && n_small < 40; t++) {
		m = fx_subscriber_messages(&n);
		n_small = 0;
		memset(seen, 0, sizeof(seen));
		for (size_t i = 0; i < n; i++) {
			long idx = msg_index(&m[i]);

			ck_assert_int_ne(idx, 99);
			if (idx >= 0 && idx < 40 && !seen[idx]) {
				seen[idx] = true;
				n_small++;
			}
		}
		fx_msgs_free(m, n);
		if (n_small < 40)
			fx_sleep_ms(100);
	}
	ck_assert_uint_eq(n_small, 40);

	ck_assert_int_eq(stat(fx_path("state/spool/deadletter-local.log"), &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_gt(st.st_size, 500);
	/* the record itself, binary header and all: its JSON carries i=99 */
	dl = malloc((size_t)st.st_size);
	f = fopen(fx_path("state/spool/deadletter-local.log"), "re");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fread(dl, 1, (size_t)st.st_size, f), (size_t)st.st_size);
	fclose(f);
	ck_assert_ptr_nonnull(memmem(dl, (size_t)st.st_size, "\"i\":99", 6));
	free(dl);
	ck_assert_int_eq(fx_daemon_stop(NULL), 0);
	ck_assert(fx_daemon_log_contains("rejected=1 "));
}
END_TEST

static Suite *uplink_suite(void)
{
	Suite *s = suite_create("uplink");
	TCase *tc;

	tc = tcase_create("rate");
	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_max_rate_paces_delivery);
	suite_add_tcase(s, tc);

	tc = tcase_create("live-first");
	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_live_first);
	suite_add_tcase(s, tc);

	tc = tcase_create("poison");
	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_poison_deadlettered);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(uplink_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
