/* SPDX-License-Identifier: MIT */
/*
 * What sensorgwd tells systemd, read from a NOTIFY_SOCKET of the test's own (an AF_UNIX
 * datagram socket in the test directory, read by a thread that timestamps every message), with
 * WATCHDOG_USEC and WATCHDOG_PID set as systemd sets them: READY=1, STATUS=, WATCHDOG=1 again
 * and again, none while the loop is stalled (the debug-stall test hook) and again after it,
 * RELOADING=1 (with MONOTONIC_USEC=) then READY=1 for a good and for a refused reload, and
 * STOPPING=1 at SIGTERM. STATUS= stays current while records flow, without a port or an uplink
 * changing state (it once said "0 records" after hundreds had been delivered), and is not sent
 * again while its text stays the same. An invalid configuration: exit 78, a STATUS= saying so,
 * and never READY=1 (what the unit's RestartPreventExitStatus=78 relies on). A configuration
 * without ports (the packaged example): READY=1 and a notice.
 */

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

#define WATCHDOG_USEC "400000"
#define MAX_MSGS 4096

struct note {
	int64_t mono_ms;
	char text[512];
};

static struct {
	pthread_t thread;
	pthread_mutex_t lock;
	int fd;
	volatile bool stop;
	struct note notes[MAX_MSGS];
	size_t n;
} rx = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1 };

static void *reader(void *arg)
{
	while (!rx.stop) {
		struct pollfd p = { .fd = rx.fd, .events = POLLIN };
		char buf[512];
		ssize_t n;

		if (poll(&p, 1, 50) <= 0)
			continue;
		n = recv(rx.fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		pthread_mutex_lock(&rx.lock);
		if (rx.n < MAX_MSGS) {
			rx.notes[rx.n].mono_ms = fx_mono_ms();
			snprintf(rx.notes[rx.n].text, sizeof(rx.notes[rx.n].text), "%s", buf);
			rx.n++;
		}
		pthread_mutex_unlock(&rx.lock);
	}
	return NULL;
}

static void notify_start(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	rx.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(rx.fd, 0);
	ck_assert_uint_lt(strlen(fx_path("notify")), sizeof(sa.sun_path));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx_path("notify"));
	ck_assert_msg(bind(rx.fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind: %s",
		      strerror(errno));
	ck_assert_int_eq(pthread_create(&rx.thread, NULL, reader, NULL), 0);
}

static void notify_stop(void)
{
	rx.stop = true;
	pthread_join(rx.thread, NULL);
	close(rx.fd);
}

/* Whether message i holds the line line (a whole line of the datagram). */
static bool has_line(size_t i, const char *line)
{
	const char *t = rx.notes[i].text, *p = t;
	size_t len = strlen(line);

	while ((p = strstr(p, line))) {
		if ((p == t || p[-1] == '\n') && (p[len] == '\0' || p[len] == '\n'))
			return true;
		p++;
	}
	return false;
}

/* The index of the first message at or after from with a line starting with prefix; waits up
 * to timeout_ms. -1 at the deadline. */
static long wait_note(size_t from, const char *prefix, int timeout_ms)
{
	int64_t end = fx_mono_ms() + timeout_ms;

	do {
		pthread_mutex_lock(&rx.lock);
		for (size_t i = from; i < rx.n; i++) {
			const char *t = rx.notes[i].text;

			for (const char *p = t; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
				if (strncmp(p, prefix, strlen(prefix)) == 0) {
					pthread_mutex_unlock(&rx.lock);
					return (long)i;
				}
		}
		pthread_mutex_unlock(&rx.lock);
		fx_sleep_ms(20);
	} while (fx_mono_ms() < end);
	return -1;
}

static size_t notes_count(void)
{
	size_t n;

	pthread_mutex_lock(&rx.lock);
	n = rx.n;
	pthread_mutex_unlock(&rx.lock);
	return n;
}

/* WATCHDOG=1 messages received in [from_ms, to_ms]. */
static int watchdogs_between(int64_t from_ms, int64_t to_ms)
{
	int n = 0;

	pthread_mutex_lock(&rx.lock);
	for (size_t i = 0; i < rx.n; i++)
		if (rx.notes[i].mono_ms >= from_ms && rx.notes[i].mono_ms <= to_ms &&
		    has_line(i, "WATCHDOG=1"))
			n++;
	pthread_mutex_unlock(&rx.lock);
	return n;
}

static void dump_notes(void)
{
	pthread_mutex_lock(&rx.lock);
	for (size_t i = 0; i < rx.n; i++)
		fprintf(stderr, "notify %lld: %s\n", (long long)rx.notes[i].mono_ms,
			rx.notes[i].text);
	pthread_mutex_unlock(&rx.lock);
}

/* A control request on a raw socket; returns the fd to read the answer from. */
static int send_request(const char *req)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx_path("control"));
	ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s",
		      strerror(errno));
	ck_assert_int_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	return fd;
}

static void read_answer(int fd, char *buf, size_t size, int timeout_ms)
{
	size_t len = 0;
	int64_t end = fx_mono_ms() + timeout_ms;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int left = (int)(end - fx_mono_ms());

		ck_assert_msg(left > 0, "the daemon did not answer in time");
		if (poll(&p, 1, left) <= 0)
			continue;
		n = read(fd, buf + len, size - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd);
}

/* WATCHDOG_PID must be the daemon's own pid, which only the child knows before exec: a shell
 * that exports its $$ and execs the daemon keeps that pid. */
static void use_wrapper(void)
{
	char *script = NULL;

	ck_assert(asprintf(&script, "#!/bin/sh\nWATCHDOG_PID=$$\nexport WATCHDOG_PID\n"
			   "exec '%s' \"$@\"\n", fx_env("GW_SENSORGWD")) > 0);
	fx_write_file(fx_path("sensorgwd-wrapper"), script, 0700);
	free(script);
	ck_assert_int_eq(setenv("GW_SENSORGWD", fx_path("sensorgwd-wrapper"), 1), 0);
}

START_TEST(test_notify_sequence)
{
	struct fx_pty txt, bin;
	char *conf, *good, *bad, answer[8192], *out = NULL, *err = NULL;
	long ready, status, reloading, ready2, reloading2, ready3, stopping;
	int64_t t_send, t_answer;
	size_t mark;
	int st, fd;

	fx_broker_start();
	fx_pty_new(&txt, "tty-txt");
	fx_pty_new(&bin, "tty-bin");
	notify_start();
	use_wrapper();
	conf = fx_config(fx_path("broker/ca.crt"), NULL);
	/* only the daemon gets these: the broker, started above, must not talk to our socket */
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", fx_path("notify"), 1), 0);
	ck_assert_int_eq(setenv("WATCHDOG_USEC", WATCHDOG_USEC, 1), 0);
	ck_assert_int_eq(setenv("SENSORGW_TEST_HOOKS", "1", 1), 0);
	fx_daemon_start(conf);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("SENSORGW_TEST_HOOKS");
	ck_assert(fx_pty_wait_opened(&txt, fx_daemon_pid(), FX_WAIT_MS));
	ck_assert(fx_daemon_wait_connected(FX_WAIT_MS));

	/* start: READY=1, then a STATUS= (the uplink came up), then the watchdog */
	ready = wait_note(0, "READY=1", FX_WAIT_MS);
	ck_assert_msg(ready >= 0, "no READY=1");
	status = wait_note((size_t)ready, "STATUS=", FX_WAIT_MS);
	ck_assert_msg(status >= 0, "no STATUS= after READY=1");
	ck_assert(wait_note((size_t)ready, "WATCHDOG=1", FX_WAIT_MS) >= 0);
	/* WATCHDOG_USEC 400 ms: sd-event pings at least every 300 ms; 3 in 3 s is lenient */
	fx_sleep_ms(3000);
	ck_assert_msg(watchdogs_between(fx_mono_ms() - 3000, fx_mono_ms()) >= 3,
		      "WATCHDOG=1 is not repeated");

	/* a stalled loop stops the pings; they resume after it */
	t_send = fx_mono_ms();
	fd = send_request("debug-stall 3000\n");
	read_answer(fd, answer, sizeof(answer), 20000);
	t_answer = fx_mono_ms();
	ck_assert_msg(strstr(answer, "\"stalled_ms\":3000"), "%s", answer);
	ck_assert_msg(t_answer - t_send >= 2900, "the stall lasted %lld ms",
		      (long long)(t_answer - t_send));
	/* the request reaches the loop within a moment; the margin covers a slow machine */
	if (watchdogs_between(t_send + 700, t_answer - 100) != 0) {
		dump_notes();
		ck_abort_msg("WATCHDOG=1 while the loop was stalled");
	}
	fx_sleep_ms(2000);
	ck_assert_msg(watchdogs_between(t_answer, fx_mono_ms()) >= 2,
		      "WATCHDOG=1 did not resume after the stall");

	/* SIGHUP with a good change: RELOADING=1 (with MONOTONIC_USEC=), then READY=1 */
	good = fx_config(fx_path("broker/ca.crt"), "\n[map temp]\nidentifier = temperature\n");
	fx_write_file(fx_path("sensorgw.conf"), good, 0600);
	mark = notes_count();
	fx_daemon_signal(SIGHUP);
	reloading = wait_note(mark, "RELOADING=1", FX_WAIT_MS);
	ck_assert_msg(reloading >= 0, "no RELOADING=1");
	ck_assert_msg(strstr(rx.notes[reloading].text, "\nMONOTONIC_USEC="), "%s",
		      rx.notes[reloading].text);
	ready2 = wait_note((size_t)reloading, "READY=1", 20000);
	ck_assert_msg(ready2 > reloading, "no READY=1 after RELOADING=1");
	ck_assert_msg(strstr(rx.notes[ready2].text, "STATUS=running"), "%s",
		      rx.notes[ready2].text);
	{
		const char *const needles[] = { "reloaded", "1 map(s)", NULL };

		ck_assert(fx_daemon_wait_log_line(needles, FX_WAIT_MS));
	}

	/* a bad file via sensorgwctl: refused with FILE:LINE, RELOADING=1 then READY=1, and the
	 * daemon runs on */
	bad = fx_config(fx_path("broker/ca.crt"), "keepalive = forever\n");
	fx_write_file(fx_path("sensorgw.conf"), bad, 0600);
	mark = notes_count();
	{
		const char *const argv[] = { fx_env("GW_CTL"), "reload", "--socket",
			fx_path("control"), NULL };

		st = fx_run(argv, &out, &err, 60000);
	}
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "exit %d: %s", st, out);
	snprintf(answer, sizeof(answer), "%s:", fx_path("sensorgw.conf"));
	ck_assert_msg(strstr(err, answer) && strstr(err, "keepalive"), "%s", err);
	free(out);
	free(err);
	reloading2 = wait_note(mark, "RELOADING=1", FX_WAIT_MS);
	ck_assert(reloading2 >= 0);
	ready3 = wait_note((size_t)reloading2, "READY=1", FX_WAIT_MS);
	ck_assert_msg(ready3 > reloading2, "no READY=1 after a refused reload");
	ck_assert_msg(strstr(rx.notes[ready3].text, "STATUS=reload failed"), "%s",
		      rx.notes[ready3].text);
	ck_assert(fx_daemon_running());
	fx_sleep_ms(1000);
	ck_assert_msg(watchdogs_between(fx_mono_ms() - 1000, fx_mono_ms()) >= 1,
		      "the watchdog stopped after a refused reload");

	/* SIGTERM: STOPPING=1 */
	mark = notes_count();
	ck_assert_int_eq(fx_daemon_stop(NULL), 0);
	stopping = wait_note(mark, "STOPPING=1", FX_WAIT_MS);
	ck_assert_msg(stopping >= 0, "no STOPPING=1");
	notify_stop();
	free(conf);
	free(good);
	free(bad);
}
END_TEST

/* The last STATUS= line received at or after message from, into buf; false if none. */
static bool last_status(size_t from, char *buf, size_t size)
{
	bool found = false;

	pthread_mutex_lock(&rx.lock);
	for (size_t i = from; i < rx.n; i++) {
		const char *p = strstr(rx.notes[i].text, "STATUS=");

		if (p && (p == rx.notes[i].text || p[-1] == '\n')) {
			snprintf(buf, size, "%.*s", (int)strcspn(p, "\n"), p);
			found = true;
		}
	}
	pthread_mutex_unlock(&rx.lock);
	return found;
}

#define N_STATUS_RECORDS 25

START_TEST(test_status_current)
{
	struct fx_pty txt, bin;
	char *conf, want[256], last[512] = "";
	long ready, current, wd;
	size_t mark, repeats = 0;

	fx_broker_start();
	fx_pty_new(&txt, "tty-txt");
	fx_pty_new(&bin, "tty-bin");
	notify_start();
	use_wrapper();
	conf = fx_config(fx_path("broker/ca.crt"), NULL);
	/* WATCHDOG_USEC 400 ms: STATUS= is looked at every 200 ms (half the watchdog interval) */
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", fx_path("notify"), 1), 0);
	ck_assert_int_eq(setenv("WATCHDOG_USEC", WATCHDOG_USEC, 1), 0);
	fx_daemon_start(conf);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	ck_assert(fx_pty_wait_opened(&txt, fx_daemon_pid(), FX_WAIT_MS));
	ck_assert(fx_daemon_wait_connected(FX_WAIT_MS));
	ready = wait_note(0, "READY=1", FX_WAIT_MS);
	ck_assert_msg(ready >= 0, "no READY=1");
	fx_subscriber_start("sensorgw/#");

	/* records flow; no port or uplink changes state meanwhile */
	for (int i = 0; i < N_STATUS_RECORDS; i++) {
		char line[64];
		int len = snprintf(line, sizeof(line), "MQ2=%d,MQ135=%d\r\n", 100 + i, i);

		fx_pty_write(&txt, line, (size_t)len);
	}
	ck_assert_msg(fx_subscriber_wait_count(N_STATUS_RECORDS, FX_WAIT_MS * fx_timeout_scale()),
		      "%zu of %d records arrived", fx_subscriber_count(), N_STATUS_RECORDS);
	/* every record delivered and acknowledged: STATUS= says so within a few refresh periods */
	snprintf(want, sizeof(want), "STATUS=running; ports 2/2 open; uplinks 1/1 online; 1 nodes; "
		 "%d records; backlog 0", N_STATUS_RECORDS);
	current = wait_note((size_t)ready, want, 5000 * fx_timeout_scale());
	if (current < 0) {
		last_status(0, last, sizeof(last));
		dump_notes();
		ck_abort_msg("STATUS= is stale: %d records were delivered, the last STATUS= "
			     "received is '%s'", N_STATUS_RECORDS, last);
	}

	/* nothing changes now: ten more watchdog pings (2 s), and not one STATUS= repeated */
	mark = (size_t)current + 1;
	wd = (long)mark;
	for (int i = 0; i < 10; i++) {
		wd = wait_note((size_t)wd, "WATCHDOG=1", FX_WAIT_MS);
		ck_assert_msg(wd >= 0, "WATCHDOG=1 stopped");
		wd++;
	}
	pthread_mutex_lock(&rx.lock);
	for (size_t i = mark; i < (size_t)wd; i++)
		repeats += strstr(rx.notes[i].text, "STATUS=") != NULL;
	pthread_mutex_unlock(&rx.lock);
	if (repeats) {
		dump_notes();
		ck_abort_msg("%zu STATUS= message(s) sent again with nothing changed", repeats);
	}

	fx_subscriber_stop();
	ck_assert_int_eq(fx_daemon_stop(NULL), 0);
	notify_stop();
	free(conf);
}
END_TEST

/* An invalid configuration: exit 78 with a STATUS= saying so, never READY=1. */
START_TEST(test_invalid_config_no_ready)
{
	char *conf, *out = NULL, *err = NULL;
	long status;
	int st;

	notify_start();
	conf = fx_config("/nonexistent/ca.crt", "colour = blue\n");
	fx_write_file(fx_path("bad.conf"), conf, 0600);
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", fx_path("notify"), 1), 0);
	{
		const char *const argv[] = { fx_env("GW_SENSORGWD"), "-c", fx_path("bad.conf"),
			NULL };

		st = fx_run(argv, &out, &err, 20000);
	}
	unsetenv("NOTIFY_SOCKET");
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 78, "exit 0x%x: %s", st, err);
	ck_assert_msg(strstr(err, fx_path("bad.conf")) && strstr(err, "colour"), "%s", err);
	status = wait_note(0, "STATUS=configuration", FX_WAIT_MS);
	ck_assert_msg(status >= 0, "no STATUS= for the invalid configuration");
	ck_assert_msg(wait_note(0, "READY=1", 0) < 0, "READY=1 with an invalid configuration");
	notify_stop();
	free(out);
	free(err);
	free(conf);
}
END_TEST

/* No [port] section (the packaged example): READY=1, a notice saying so, ports 0/0. */
START_TEST(test_no_ports_ready)
{
	char *conf, *from, *to;
	long ready;

	fx_broker_start();
	notify_start();
	conf = fx_config(fx_path("broker/ca.crt"), NULL);
	from = strstr(conf, "[port txt]");
	to = strstr(conf, "[uplink local]");
	ck_assert(from && to && from < to);
	memmove(from, to, strlen(to) + 1);
	ck_assert_ptr_null(strstr(conf, "[port"));
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", fx_path("notify"), 1), 0);
	fx_daemon_start(conf);
	unsetenv("NOTIFY_SOCKET");
	ready = wait_note(0, "READY=1", FX_WAIT_MS * fx_timeout_scale());
	if (ready < 0) {
		fx_dump_logs();
		ck_abort_msg("no READY=1 without ports");
	}
	ck_assert(wait_note(0, "STATUS=running; ports 0/0 open", FX_WAIT_MS) >= 0);
	ck_assert_msg(fx_daemon_log_contains("no ports configured"), "no notice about no ports");
	ck_assert(fx_daemon_wait_connected(FX_WAIT_MS));
	ck_assert_int_eq(fx_daemon_stop(NULL), 0);
	notify_stop();
	free(conf);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("notify");
	TCase *tc = tcase_create("notify");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_notify_sequence);
	tcase_add_test(tc, test_status_current);
	tcase_add_test(tc, test_invalid_config_no_ready);
	tcase_add_test(tc, test_no_ports_ready);
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
