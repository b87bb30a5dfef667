/* SPDX-License-Identifier: MIT */
/*
 * sensorgwctl tail and top against the real daemon, in a real terminal: tmux runs them in an
 * 80x24 pane (send-keys types, capture-pane reads the screen), with sensorgw-sim feeding a
 * binary port (its values, and frames it corrupts on purpose) and lines written to a text port.
 *
 *   - tail: the sim's values and the text line's, a bad frame's reason, the raw bytes as text;
 *     q and Ctrl-C end it with status 0; the control socket answers status meanwhile;
 *   - top: the node, its values and sparklines, the port and the uplink; q ends it and the
 *     terminal's screen comes back; as plain lines without a terminal;
 *   - a reader that never reads: the daemon's queue for it stays bounded (its memory does not
 *     grow), status is answered, every record still reaches the broker, and the reader is told
 *     how many events it lost, as many as the daemon counted; a fifth tail client is refused.
 *
 * tmux is Debian's tmux package (tools/install-deps.sh); meson passes its path as GW_TMUX.
 * Without it the test is skipped (exit 77) with the reason, except with CI set.
 */

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloud.h"
#include "fixture.h"

#define SIM_UID "0123456789abcdef01234567"

#if defined(__SANITIZE_ADDRESS__)
#define ASAN 1
#else
#define ASAN 0
#endif

static char tmux_sock[64];

/* ---- tmux ---- */

static void tmux(const char *const args[])
{
	const char *argv[16] = { fx_env("GW_TMUX"), "-S", tmux_sock, "-f", "/dev/null" };
	size_t n = 5;
	char *err = NULL;
	int rc;

	for (size_t i = 0; args[i]; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	rc = fx_run(argv, NULL, &err, 10000);
	ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "tmux %s: %s", args[0], err);
	free(err);
}

static void tmux_kill_server(void)
{
	if (fork() == 0) {
		execl(getenv("GW_TMUX"), "tmux", "-S", tmux_sock, "kill-server", (char *)NULL);
		_exit(127);
	}
	(void)wait(NULL);
	(void)unlink(tmux_sock);
}

/* Runs cmd (a shell command) in a new 80x24 window named name; its exit status goes to
 * fx_path("NAME.exit"), and the pane stays (cat waits on it) so the screen can be read after. */
static void term_start(const char *name, const char *cmd)
{
	char *line = NULL;

	ck_assert_int_gt(asprintf(&line, "LANG=C.UTF-8 %s; echo $? > %s/%s.exit; exec cat", cmd,
				  fx_dir(), name),
			 0);
	tmux((const char *const[]){ "new-session", "-d", "-x", "80", "-y", "24", "-s", name, line,
				    NULL });
	free(line);
}

/* (not inlined: gcc -O3 then takes the text for a pointer to its local variable) */
__attribute__((noinline)) static char *screen(const char *name)
{
	const char *const argv[] = {
		fx_env("GW_TMUX"), "-S", tmux_sock, "capture-pane", "-p", "-t", name, NULL
	};
	char *out = NULL;
	int rc = fx_run(argv, &out, NULL, 10000);

	ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "capture-pane %s", name);
	return out;
}

/* Waits until the screen holds every needle; fails with the screen at the deadline. */
static void wait_screen(const char *name, const char *const needles[], int timeout_ms)
{
	int64_t end = fx_mono_ms() + (int64_t)timeout_ms * fx_timeout_scale();
	char *s = NULL;

	for (;;) {
		bool all = true;

		free(s);
		s = screen(name);
		for (size_t i = 0; needles[i] && all; i++)
			all = strstr(s, needles[i]) != NULL;
		if (all)
			break;
		ck_assert_msg(fx_mono_ms() < end, "the %s screen lacks what was expected:\n%s",
			      name, s);
		fx_sleep_ms(100);
	}
	free(s);
}

/* The exit status the window's command left (waits for it). */
static int term_exit(const char *name)
{
	char path[512];
	int64_t end = fx_mono_ms() + 10000LL * fx_timeout_scale();
	char *text;
	int st;

	snprintf(path, sizeof(path), "%s/%s.exit", fx_dir(), name);
	while (access(path, R_OK) != 0) {
		ck_assert_msg(fx_mono_ms() < end, "%s did not end", name);
		fx_sleep_ms(50);
	}
	/* the shell may not have written it yet */
	for (text = fx_read_file(path); !strchr(text, '\n') && fx_mono_ms() < end;
	     text = fx_read_file(path)) {
		free(text);
		fx_sleep_ms(20);
	}
	st = atoi(text);
	free(text);
	return st;
}

static void keys(const char *name, const char *key)
{
	tmux((const char *const[]){ "send-keys", "-t", name, key, NULL });
}

/* ---- the daemon and what feeds it ---- */

static json_int_t control_num(const char *key)
{
	json_t *st = fx_status_json();
	json_int_t v = json_integer_value(json_object_get(json_object_get(st, "control"), key));

	json_decref(st);
	return v;
}

static void wait_tail_clients(json_int_t n)
{
	int64_t end = fx_mono_ms() + (int64_t)FX_WAIT_MS * fx_timeout_scale();

	while (control_num("tail_clients") != n) {
		ck_assert_msg(fx_mono_ms() < end, "tail clients: %lld, not %lld",
			      (long long)control_num("tail_clients"), (long long)n);
		fx_sleep_ms(50);
	}
}

static struct fx_pty txt;

/* The broker, a subscriber, the daemon with a text port and the sim's binary port; rate is
 * the sim's frames a second, crc the share it corrupts. */
static void start_all(const char *rate, const char *crc)
{
	struct fx_pty bin;
	char extra[512];
	char *conf;

	fx_broker_start();
	fx_subscriber_start("sensorgw/#");
	fx_pty_new(&txt, "tty-txt");
	fx_pty_new(&bin, "tty-bin");
	snprintf(extra, sizeof(extra), "\n[port sim]\npath = %s\nframing = binary\n",
		 fx_path("tty-sim"));
	conf = fx_config(fx_path("broker/ca.crt"), extra);
	fx_daemon_start(conf);
	free(conf);
	ck_assert(fx_pty_wait_opened(&txt, fx_daemon_pid(), FX_WAIT_MS));
	ck_assert(fx_daemon_wait_connected(FX_WAIT_MS));
	ck_assert(fx_daemon_wait_started(FX_WAIT_MS));
	{
		const char *const args[] = { "--pty",
					     "--link",
					     fx_path("tty-sim"),
					     "--framing",
					     "binary",
					     "--rate",
					     rate,
					     "--uid",
					     SIM_UID,
					     "--crc-errors",
					     crc,
					     "--seed",
					     "7",
					     NULL };

		fx_sim_start(args);
	}
	ck_assert(fx_daemon_wait_log_line((const char *const[]){ "opened", "binary framing", NULL },
					  FX_WAIT_MS));
}

static const char *ctl_cmd(const char *args)
{
	return fx_strf("%s %s --socket %s", fx_env("GW_CTL"), args, fx_path("control"));
}

/* ---- tail ---- */

START_TEST(test_tail)
{
	char cmd[1024];
	json_t *st;

	start_all("5", "0.3");
	snprintf(cmd, sizeof(cmd), "%s", ctl_cmd("tail"));
	term_start("tail", cmd);
	wait_tail_clients(1);

	/* the sim's node: its hello, its values, and the frames it corrupted, with the reason */
	wait_screen("tail",
		    (const char *const[]){ "sim", SIM_UID,
					   "telemetry seq=", "MQ2=", "DHT11_T=", "BAD crc", NULL },
		    FX_WAIT_MS);
	/* a line on the text port, value for value */
	fx_pty_write(&txt, "MQ2=30,DHT11_T=21.5\r\n", 21);
	wait_screen("tail", (const char *const[]){ "txt", "telemetry MQ2=30 DHT11_T=21.5", NULL },
		    FX_WAIT_MS);
	fx_pty_write(&txt, "MQ2=31*00\r\n", 11);
	wait_screen("tail", (const char *const[]){ "txt      -", "BAD crc", NULL }, FX_WAIT_MS);

	/* while it streams, the socket answers requests */
	st = fx_status_json();
	ck_assert_int_eq(json_integer_value(
				 json_object_get(json_object_get(st, "control"), "tail_clients")),
			 1);
	ck_assert_int_gt(json_integer_value(
				 json_object_get(json_object_get(st, "control"), "tail_events")),
			 0);
	json_decref(st);

	keys("tail", "q");
	ck_assert_int_eq(term_exit("tail"), 0);
	wait_tail_clients(0);

	/* the raw bytes of one port as text; Ctrl-C ends it as cleanly */
	snprintf(cmd, sizeof(cmd), "%s", ctl_cmd("tail --port txt --raw=text"));
	term_start("raw", cmd);
	wait_tail_clients(1);
	fx_pty_write(&txt, "MQ2=32,DHT11_H=40\r\n", 19);
	wait_screen("raw",
		    (const char *const[]){ "RAW  \"MQ2=32,DHT11_H=40\\r\\n\"",
					   "telemetry MQ2=32 DHT11_H=40", NULL },
		    FX_WAIT_MS);
	{
		char *s = screen("raw");

		/* --port txt: nothing of the sim's port */
		ck_assert_msg(!strstr(s, SIM_UID), "%s", s);
		free(s);
	}
	keys("raw", "C-c");
	ck_assert_int_eq(term_exit("raw"), 0);

	/* a filter on a node: only its frames */
	snprintf(cmd, sizeof(cmd), "%s", ctl_cmd("tail --node " SIM_UID));
	term_start("node", cmd);
	wait_tail_clients(1);
	fx_pty_write(&txt, "MQ2=33\r\n", 8);
	wait_screen("node", (const char *const[]){ SIM_UID " telemetry", NULL }, FX_WAIT_MS);
	{
		char *s = screen("node");

		ck_assert_msg(!strstr(s, "MQ2=33"), "%s", s);
		free(s);
	}
	keys("node", "q");
	ck_assert_int_eq(term_exit("node"), 0);

	/* the daemon stops under a tail: it says so and fails */
	snprintf(cmd, sizeof(cmd), "%s", ctl_cmd("tail"));
	term_start("stop", cmd);
	wait_tail_clients(1);
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);
	ck_assert_int_eq(term_exit("stop"), 1);
	wait_screen("stop", (const char *const[]){ "sensorgwd closed the stream", NULL },
		    FX_WAIT_MS);
}
END_TEST

/* ---- top ---- */

/* The block characters (U+2581..U+2588: e2 96 81..88) on the screen's row of field. */
static size_t sparkline_blocks(const char *text, const char *field)
{
	char head[64];
	const char *row, *eol;
	size_t blocks = 0;

	snprintf(head, sizeof(head), "\n  %s ", field);
	row = strstr(text, head);
	if (!row)
		return 0;
	eol = strchr(row + 1, '\n');
	if (!eol)
		eol = row + strlen(row);
	for (; row + 1 < eol; row++)
		blocks += (unsigned char)row[0] == 0xe2 && (unsigned char)row[1] == 0x96;
	return blocks;
}

START_TEST(test_top)
{
	char cmd[1024];
	char *out = NULL, *s;
	int rc;

	start_all("5", "0.2");
	snprintf(cmd, sizeof(cmd), "%s", ctl_cmd("top"));
	term_start("top", cmd);
	/* the node with its values, and a sparkline of at least three seconds for MQ2 */
	wait_screen("top",
		    (const char *const[]){ "PORT", "sim", "open", "UPLINK", "local", "online",
					   SIM_UID, "MQ2", "DHT11_H", "q: quit", NULL },
		    FX_WAIT_MS);
	fx_pty_write(&txt, "MQ2=30,DHT11_T=21.5\r\n", 21);
	wait_screen("top", (const char *const[]){ "DHT11_T      21.5", NULL }, FX_WAIT_MS);
	{
		int64_t end = fx_mono_ms() + 20000LL * fx_timeout_scale();
		bool found = false;

		while (!found) {
			s = screen("top");
			found = sparkline_blocks(s, "MQ2") >= 3;
			ck_assert_msg(found || fx_mono_ms() < end, "no sparkline:\n%s", s);
			free(s);
			if (!found)
				fx_sleep_ms(200);
		}
	}
	/* the bad frames the sim made, with their reason */
	wait_screen("top", (const char *const[]){ "crc", NULL }, FX_WAIT_MS);
	/* 24 rows of 80 columns at most */
	s = screen("top");
	{
		size_t rows = 0;

		for (char *l = s; *l; rows++) {
			char *eol = strchr(l, '\n');
			size_t cols = 0;

			for (char *c = l; c < (eol ? eol : l + strlen(l)); c++)
				cols += ((unsigned char)*c & 0xc0) != 0x80;
			ck_assert_msg(cols <= 80, "a line of %zu columns:\n%s", cols, s);
			l = eol ? eol + 1 : l + strlen(l);
		}
		ck_assert_uint_le(rows, 24);
	}
	free(s);

	keys("top", "q");
	ck_assert_int_eq(term_exit("top"), 0);
	/* the alternate screen is left: what was there before comes back */
	s = screen("top");
	ck_assert_msg(!strstr(s, "UPLINK"), "%s", s);
	free(s);

	/* without a terminal: plain lines, no escape sequences */
	{
		const char *const argv[] = {
			fx_env("GW_CTL"),   "top", "--iterations", "2", "--socket",
			fx_path("control"), NULL
		};

		rc = fx_run(argv, &out, NULL, 20000);
	}
	ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "top -n 2: 0x%x", rc);
	ck_assert_ptr_null(strchr(out, '\033'));
	ck_assert_ptr_nonnull(strstr(strstr(out, "UPLINK") + 1, "UPLINK"));
	ck_assert_ptr_nonnull(strstr(out, SIM_UID));
	free(out);
}
END_TEST

/* ---- a reader that does not read ---- */

static int tail_socket(const char *request, int rcvbuf)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	if (rcvbuf)
		ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx_path("control"));
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(send(fd, request, strlen(request), MSG_NOSIGNAL),
			 (ssize_t)strlen(request));
	return fd;
}

/* The next line of fd into buf (bounded wait): its length, or -1 at the end or deadline. */
static ssize_t read_line(int fd, char *buf, size_t size, int timeout_ms)
{
	size_t n = 0;

	while (n + 1 < size) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, timeout_ms * fx_timeout_scale()) <= 0 || read(fd, buf + n, 1) != 1)
			return -1;
		if (buf[n] == '\n') {
			buf[n] = '\0';
			return (ssize_t)n;
		}
		n++;
	}
	return -1;
}

static long rss_kib(pid_t pid)
{
	char *text = fx_read_file(fx_strf("/proc/%d/status", (int)pid));
	const char *p = strstr(text, "VmRSS:");
	long kib;

	ck_assert_ptr_nonnull(p);
	kib = strtol(p + 6, NULL, 10);
	free(text);
	return kib;
}

START_TEST(test_slow_reader)
{
	json_int_t dropped, told = 0, events = 0;
	long rss0, rss1;
	char line[65536];
	json_t *st, *u;
	int fd, extra[4];
	ssize_t n;

	start_all("400", "0.1");
	/* asks for everything, raw bytes too, and reads nothing */
	fd = tail_socket("tail raw\n", 4096);
	wait_tail_clients(1);
	/* three more watchers fill the places; a fifth is refused, and status still answers */
	for (int i = 0; i < 3; i++)
		extra[i] = tail_socket("tail port=bin\n", 0); /* a quiet port: they lose nothing */
	wait_tail_clients(4);
	extra[3] = tail_socket("tail port=bin\n", 0);
	ck_assert_int_gt(read_line(extra[3], line, sizeof(line), 5000), 0);
	ck_assert_msg(strstr(line, "busy: 4 tail clients already"), "%s", line);
	for (int i = 0; i < 4; i++)
		close(extra[i]);
	wait_tail_clients(1);

	/* the queue is full, and stays full: lines are dropped, counted */
	{
		int64_t end = fx_mono_ms() + (int64_t)FX_WAIT_MS * fx_timeout_scale();

		while ((dropped = control_num("tail_dropped")) < 1000) {
			ck_assert_msg(fx_mono_ms() < end, "only %lld dropped", (long long)dropped);
			fx_sleep_ms(100);
		}
	}
	rss0 = rss_kib(fx_daemon_pid());
	{
		int64_t end = fx_mono_ms() + 60000LL * fx_timeout_scale();

		/* five times as many again: an unbounded queue would have grown by megabytes */
		while (control_num("tail_dropped") < 5 * dropped) {
			ck_assert_msg(fx_mono_ms() < end, "dropping stopped at %lld",
				      (long long)control_num("tail_dropped"));
			fx_sleep_ms(200);
		}
	}
	rss1 = rss_kib(fx_daemon_pid());
	fprintf(stderr,
		"slow reader: %lld then %lld lines dropped; daemon RSS %ld KiB then %ld KiB\n",
		(long long)dropped, (long long)control_num("tail_dropped"), rss0, rss1);
	/* Under valgrind the figure is valgrind's own, and under ASan its quarantine keeps what
	 * is freed: the plain build checks it. */
	if (!getenv("GW_DAEMON_WRAPPER") && !ASAN)
		ck_assert_msg(rss1 - rss0 < 512, "the daemon grew by %ld KiB", rss1 - rss0);
	else
		fprintf(stderr, "slow reader: RSS not checked under %s\n",
			ASAN ? "AddressSanitizer" : "valgrind");

	/* nothing of the records: every one the sim sent reaches the broker */
	fx_sim_stop();
	st = fx_status_json();
	u = json_array_get(json_object_get(st, "uplinks"), 0);
	ck_assert(json_is_true(json_object_get(json_object_get(u, "law"), "exact")));
	{
		size_t records = (size_t)json_integer_value(json_object_get(st, "records"));

		ck_assert_msg(fx_subscriber_wait_count(records, FX_WAIT_MS * 2),
			      "%zu of %zu records at the broker", fx_subscriber_count(), records);
	}
	json_decref(st);

	/* the reader catches up: it learns how many lines it lost, as many as the daemon
	 * counted (no more events come: the sim has stopped) */
	dropped = control_num("tail_dropped");
	ck_assert_int_gt(read_line(fd, line, sizeof(line), 5000), 0);
	ck_assert_str_eq(line, "{\"ok\":true,\"stream\":\"tail\"}");
	while (told < dropped && (n = read_line(fd, line, sizeof(line), 5000)) > 0) {
		json_t *ev = json_loads(line, 0, NULL);

		ck_assert_msg(json_is_object(ev), "%s", line);
		if (!strcmp(json_string_value(json_object_get(ev, "event")), "dropped"))
			told += json_integer_value(json_object_get(ev, "count"));
		else
			events++;
		json_decref(ev);
	}
	ck_assert_msg(told == dropped, "told of %lld dropped lines, the daemon counted %lld",
		      (long long)told, (long long)dropped);
	ck_assert_int_gt(events, 0);
	close(fd);
	wait_tail_clients(0);
	ck_assert(fx_daemon_running());
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tail");
	TCase *tc = tcase_create("tail");

	if (access(getenv("GW_TMUX") ? getenv("GW_TMUX") : "", X_OK) != 0 && !getenv("CI")) {
		printf("tail test skipped: no tmux (tools/install-deps.sh installs it)\n");
		return 77;
	}
	snprintf(tmux_sock, sizeof(tmux_sock), "/tmp/sensorgw-tmux.%d", (int)getpid());
	setenv("TERM", "xterm-256color", 1);
	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_add_unchecked_fixture(tc, NULL, tmux_kill_server);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_tail);
	tcase_add_test(tc, test_top);
	tcase_add_test(tc, test_slow_reader);
	suite_add_tcase(s, tc);
	return cl_run(s);
}
