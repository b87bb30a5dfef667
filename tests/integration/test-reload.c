/* SPDX-License-Identifier: MIT */
/*
 * Reloading the configuration of the running daemon (SIGHUP and `sensorgwctl reload`), with
 * real ptys and a real mosquitto: a good file that adds a port, changes a mapping and changes
 * the uplink (its topic and pacing) while records are still queued; every record written
 * before the reload reaches the broker (by its index and its spool sequence, none missing, none
 * twice in the spool); a file that removes a port; files with problems, which change nothing
 * and are answered with every problem as FILE:LINE.
 */

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

#define N_BEFORE 150

/* A message's payload as JSON (the caller's reference), or NULL. */
static json_t *payload(const struct fx_msg *m)
{
	json_error_t err;

	return json_loads(m->payload, 0, &err);
}

static long param_int(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(json_object_get(o, "params"), key);

	return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

static void write_frames(const struct fx_pty *p, int from, int to)
{
	char line[128];

	for (int i = from; i < to; i++) {
		int n = snprintf(line, sizeof(line), "i=%d,temp=%d\r\n", i, 20 + i % 7);

		fx_pty_write(p, line, (size_t)n);
	}
}

/* The number of records in the daemon's spool so far (from the SIGUSR1 counters line). */
static bool wait_spooled(int n, int timeout_ms)
{
	char needle[64];
	int64_t end = fx_mono_ms() + timeout_ms;

	snprintf(needle, sizeof(needle), "appended=%d ", n);
	while (fx_mono_ms() < end) {
		fx_daemon_signal(SIGUSR1);
		fx_sleep_ms(100);
		if (fx_daemon_log_contains(needle))
			return true;
	}
	return false;
}

/* Replaces the first from in text (which it must contain) by to; returns a new string. */
static char *replace(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	char *r = NULL;

	ck_assert_msg(at, "'%s' is not in the configuration", from);
	ck_assert(asprintf(&r, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from)) > 0);
	return r;
}

/* Removes the section that starts with header, up to the next blank line. */
static char *cut_section(const char *text, const char *header)
{
	const char *at = strstr(text, header), *end;
	char *r = NULL;

	ck_assert_msg(at, "%s is not in the configuration", header);
	end = strstr(at, "\n\n");
	ck_assert(end);
	ck_assert(asprintf(&r, "%.*s%s", (int)(at - text), text, end + 2) > 0);
	return r;
}

/* The 1-based line of the first line of text that starts with needle. */
static unsigned line_of(const char *text, const char *needle)
{
	unsigned line = 1;

	for (const char *p = text; *p; p++) {
		if ((p == text || p[-1] == '\n') && strncmp(p, needle, strlen(needle)) == 0)
			return line;
		line += *p == '\n';
	}
	ck_abort_msg("'%s' is not in the configuration", needle);
	return 0;
}

/* `sensorgwctl reload`: the wait status, its stdout and stderr (free them). */
static int ctl_reload(char **out, char **err)
{
	const char *const argv[] = { fx_env("GW_CTL"), "reload", "--socket", fx_path("control"),
		NULL };

	return fx_run(argv, out, err, 60000);
}

static bool has_port(const json_t *st, const char *name)
{
	size_t i;
	json_t *v;

	json_array_foreach(json_object_get(st, "ports"), i, v)
		if (!strcmp(json_string_value(json_object_get(v, "name")), name))
			return true;
	return false;
}

/* Waits for a message from port whose params hold key = value; returns its topic. */
static char *wait_message(const char *port, const char *key, long value, int timeout_ms)
{
	int64_t end = fx_mono_ms() + timeout_ms;

	do {
		size_t n;
		struct fx_msg *m = fx_subscriber_messages(&n);
		char *topic = NULL;

		for (size_t i = 0; i < n && !topic; i++) {
			json_t *o = payload(&m[i]);
			const char *p = json_string_value(json_object_get(o, "port"));

			if (p && !strcmp(p, port) && param_int(o, key) == value)
				topic = strdup(m[i].topic);
			json_decref(o);
		}
		fx_msgs_free(m, n);
		if (topic)
			return topic;
		fx_sleep_ms(100);
	} while (fx_mono_ms() < end);
	return NULL;
}

START_TEST(test_reload)
{
	struct fx_pty txt, bin, extra;
	char *conf0, *conf1, *conf2, *bad, *tmp, *out = NULL, *err = NULL, *topic;
	char needle[4096];
	json_t *st;
	uint8_t *seen_i;
	uint64_t min_seq = UINT64_MAX, max_seq = 0;
	size_t n, got = 0;
	struct fx_msg *m;
	int status;

	fx_broker_start();
	fx_subscriber_start("#");
	fx_pty_new(&txt, "tty-txt");
	fx_pty_new(&bin, "tty-bin");
	fx_pty_new(&extra, "tty-extra");

	/* paced, so that most of the records written before the reload are still queued */
	conf0 = fx_config(fx_path("broker/ca.crt"), "max_rate = 40\n");
	fx_daemon_start(conf0);
	ck_assert(fx_pty_wait_opened(&txt, fx_daemon_pid(), FX_WAIT_MS));
	ck_assert(fx_pty_wait_opened(&bin, fx_daemon_pid(), FX_WAIT_MS));
	ck_assert(fx_daemon_wait_connected(FX_WAIT_MS));
	/* the control socket is bound just before "started", after the ports opened */
	ck_assert(fx_daemon_wait_started(FX_WAIT_MS));

	write_frames(&txt, 0, N_BEFORE);
	ck_assert(wait_spooled(N_BEFORE, 20000));

	/* 1: a new port, a map, the uplink's topic and pacing changed; asked with sensorgwctl */
	tmp = replace(conf0, "topic = sensorgw/{device}/{kind}", "topic = reloaded/{port}/{kind}");
	snprintf(needle, sizeof(needle),
		 "max_rate = 0\n"
		 "\n"
		 "[port extra]\n"
		 "path = %s\n"
		 "framing = text\n"
		 "\n"
		 "[map temp]\n"
		 "identifier = temperature\n",
		 fx_path("tty-extra"));
	conf1 = replace(tmp, "max_rate = 40\n", needle);
	free(tmp);
	fx_write_file(fx_path("sensorgw.conf"), conf1, 0600);
	status = ctl_reload(&out, &err);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reload failed: %s%s", out,
		      err);
	ck_assert_msg(strstr(out, "reloaded") && strstr(out, "3 port(s)"), "%s", out);
	free(out);
	free(err);
	ck_assert(fx_pty_wait_opened(&extra, fx_daemon_pid(), FX_WAIT_MS));
	ck_assert(fx_pty_wait_opened(&txt, fx_daemon_pid(), FX_WAIT_MS));

	/* the new port delivers, mapped, under the new topic */
	write_frames(&extra, 1000, 1001);
	topic = wait_message("extra", "i", 1000, 20000);
	ck_assert_msg(topic, "nothing from the new port");
	ck_assert_str_eq(topic, "reloaded/extra/telemetry");
	free(topic);
	/* the map applies to the old port too */
	write_frames(&txt, 2000, 2001);
	topic = wait_message("txt", "temperature", 20 + 2000 % 7, 20000);
	ck_assert_msg(topic, "the new [map temp] was not applied");
	free(topic);

	/* every record written before the reload arrived: by index, and by spool sequence */
	ck_assert_msg(fx_subscriber_wait_count(N_BEFORE + 2, 30000), "got %zu of %d",
		      fx_subscriber_count(), N_BEFORE + 2);
	m = fx_subscriber_messages(&n);
	seen_i = calloc(N_BEFORE, 1);
	for (size_t k = 0; k < n; k++) {
		json_t *o = payload(&m[k]);
		long i = param_int(o, "i");
		json_t *seq = json_object_get(o, "seq");

		if (i >= 0 && i < N_BEFORE) {
			if (!seen_i[i])
				got++;
			seen_i[i] = 1;
			ck_assert(json_is_integer(seq));
			if ((uint64_t)json_integer_value(seq) < min_seq)
				min_seq = (uint64_t)json_integer_value(seq);
			if ((uint64_t)json_integer_value(seq) > max_seq)
				max_seq = (uint64_t)json_integer_value(seq);
		}
		json_decref(o);
	}
	for (int i = 0; i < N_BEFORE; i++)
		ck_assert_msg(seen_i[i], "record i=%d, written before the reload, never arrived", i);
	ck_assert_uint_eq(got, N_BEFORE);
	/* the records kept their spool sequence: one contiguous run, nothing stored twice */
	ck_assert_uint_eq(max_seq - min_seq + 1, N_BEFORE);
	free(seen_i);
	fx_msgs_free(m, n);
	/* some of them went out under the old topic, the rest under the new: the uplink changed
	 * while it had a backlog (at max_rate 40 the backlog takes seconds) */
	ck_assert_msg(fx_daemon_log_contains("reloaded"), "no reload line in the log");

	/* 2: a port removed, by SIGHUP */
	conf2 = cut_section(conf1, "[port bin]");
	fx_write_file(fx_path("sensorgw.conf"), conf2, 0600);
	fx_daemon_signal(SIGHUP);
	{
		const char *const needles[] = { "reloaded", "2 port(s)", NULL };

		ck_assert_msg(fx_daemon_wait_log_line(needles, 20000), "no second reload");
	}
	st = fx_status_json();
	ck_assert(!has_port(st, "bin"));
	ck_assert(has_port(st, "txt"));
	ck_assert(has_port(st, "extra"));
	json_decref(st);

	/* 3: problems: an unknown key and a bad baud rate; nothing changes */
	snprintf(needle, sizeof(needle),
		 "[port extra]\n"
		 "baud = 12345\n"
		 "colour = blue\n");
	bad = replace(conf2, "[port extra]\n", needle);
	fx_write_file(fx_path("sensorgw.conf"), bad, 0600);
	status = ctl_reload(&out, &err);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "a bad file was accepted: %s",
		      out);
	snprintf(needle, sizeof(needle), "%s:%u: ", fx_path("sensorgw.conf"),
		 line_of(bad, "baud = 12345"));
	ck_assert_msg(strstr(err, needle), "no '%s' in: %s", needle, err);
	ck_assert_msg(fx_daemon_log_contains(needle), "'%s' not logged", needle);
	snprintf(needle, sizeof(needle), "%s:%u: ", fx_path("sensorgw.conf"),
		 line_of(bad, "colour = blue"));
	ck_assert_msg(strstr(err, needle), "no '%s' in: %s", needle, err);
	ck_assert_msg(strstr(err, "not valid"), "%s", err);
	free(out);
	free(err);
	free(bad);
	/* the running configuration still works: new port, map, topic */
	write_frames(&extra, 3000, 3001);
	topic = wait_message("extra", "i", 3000, 20000);
	ck_assert_msg(topic, "the old configuration stopped working after a refused reload");
	ck_assert_str_eq(topic, "reloaded/extra/telemetry");
	free(topic);
	topic = wait_message("extra", "temperature", 20 + 3000 % 7, 20000);
	ck_assert(topic);
	free(topic);

	/* a file that cannot be read at all: also refused, with FILE:0 */
	ck_assert_int_eq(chmod(fx_path("sensorgw.conf"), 0), 0);
	if (geteuid() != 0) {
		status = ctl_reload(&out, &err);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1);
		snprintf(needle, sizeof(needle), "%s:0: ", fx_path("sensorgw.conf"));
		ck_assert_msg(strstr(err, needle), "%s", err);
		free(out);
		free(err);
	}
	ck_assert(fx_daemon_running());
	ck_assert_int_eq(fx_daemon_stop(NULL), 0);
	free(conf0);
	free(conf1);
	free(conf2);
}
END_TEST

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

/* Reads the answer until the daemon closes (bounded); returns it (free it). */
static char *read_answer(int fd, int timeout_ms)
{
	char buf[65536];
	size_t len = 0;
	int64_t end = fx_mono_ms() + timeout_ms;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int left = (int)(end - fx_mono_ms());

		ck_assert_msg(left > 0, "the daemon did not answer in time");
		if (poll(&p, 1, left) <= 0)
			continue;
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd);
	return strdup(buf);
}

/* How many times needle is in the daemon's log. */
static int log_count(const char *needle)
{
	char *log = fx_read_file(fx_path("daemon.log"));
	int n = 0;

	for (const char *p = log ? strstr(log, needle) : NULL; p; p = strstr(p + 1, needle))
		n++;
	free(log);
	return n;
}

/*
 * A reload asked while one is under way is answered busy, not queued. To have both requests
 * waiting at once, the loop is stalled (the debug-stall test hook) while they are sent: the
 * first starts the reload, the second finds it under way.
 */
START_TEST(test_reload_busy_and_stop)
{
	struct fx_pty txt, bin;
	char *conf, *a1, *a2, *a0;
	int f0, f1, f2;
	bool busy_seen = false;

	fx_broker_start();
	fx_pty_new(&txt, "tty-txt");
	fx_pty_new(&bin, "tty-bin");
	conf = fx_config(fx_path("broker/ca.crt"), NULL);
	ck_assert_int_eq(setenv("SENSORGW_TEST_HOOKS", "1", 1), 0);
	fx_daemon_start(conf);
	ck_assert_int_eq(unsetenv("SENSORGW_TEST_HOOKS"), 0);
	ck_assert(fx_daemon_wait_connected(FX_WAIT_MS));
	ck_assert(fx_pty_wait_opened(&txt, fx_daemon_pid(), FX_WAIT_MS));
	/* the control socket is bound just before "started", after the ports opened */
	ck_assert(fx_daemon_wait_started(FX_WAIT_MS));

	/* The loop's order decides which request is first; a try where both came apart (the
	 * first reload done before the second was read) proves nothing, so try a few times. */
	for (int attempt = 0; attempt < 5 && !busy_seen; attempt++) {
		int stalls = 0;

		f0 = send_request("debug-stall 1500\n");
		for (int64_t end = fx_mono_ms() + FX_WAIT_MS; fx_mono_ms() < end; fx_sleep_ms(20)) {
			stalls = log_count("test hook: the loop stalls");
			if (stalls > attempt)
				break;
		}
		ck_assert_msg(stalls > attempt, "the stall did not begin");
		f1 = send_request("reload\n");
		f2 = send_request("reload\n");
		a0 = read_answer(f0, 20000);
		a1 = read_answer(f1, 60000);
		a2 = read_answer(f2, 60000);
		ck_assert_msg(strstr(a0, "\"stalled_ms\":1500"), "%s", a0);
		/* every answer is a reload done or a busy refusal, and never both refused */
		ck_assert_msg(strstr(a1, "\"ok\":true") || strstr(a1, "busy: a reload is "
			      "already under way"), "%s", a1);
		ck_assert_msg(strstr(a2, "\"ok\":true") || strstr(a2, "busy: a reload is "
			      "already under way"), "%s", a2);
		ck_assert_msg(strstr(a1, "\"ok\":true") || strstr(a2, "\"ok\":true"), "%s / %s",
			      a1, a2);
		busy_seen = strstr(a1, "busy") || strstr(a2, "busy");
		free(a0);
		free(a1);
		free(a2);
	}
	ck_assert_msg(busy_seen, "a reload sent while another was under way was never refused");
	ck_assert(fx_pty_wait_opened(&txt, fx_daemon_pid(), FX_WAIT_MS));

	/* SIGHUP then SIGTERM at once: the stop wins, cleanly */
	fx_daemon_signal(SIGHUP);
	ck_assert_int_eq(fx_daemon_stop(NULL), 0);
	free(conf);
}
END_TEST

/* Without SENSORGW_TEST_HOOKS=1 the hook is refused. */
START_TEST(test_no_hooks)
{
	struct fx_pty txt, bin;
	char *conf, *a;

	fx_broker_start();
	fx_pty_new(&txt, "tty-txt");
	fx_pty_new(&bin, "tty-bin");
	conf = fx_config(fx_path("broker/ca.crt"), NULL);
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&txt, fx_daemon_pid(), FX_WAIT_MS));
	ck_assert(fx_daemon_wait_connected(FX_WAIT_MS));
	/* the control socket is bound just before "started", after the ports opened */
	ck_assert(fx_daemon_wait_started(FX_WAIT_MS));
	a = read_answer(send_request("debug-stall 100\n"), 10000);
	ck_assert_msg(strstr(a, "\"ok\":false") && strstr(a, "test hook"), "%s", a);
	free(a);
	ck_assert_int_eq(fx_daemon_stop(NULL), 0);
	free(conf);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("reload");
	TCase *tc = tcase_create("reload");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_reload);
	tcase_add_test(tc, test_reload_busy_and_stop);
	tcase_add_test(tc, test_no_hooks);
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
