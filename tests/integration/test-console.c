/* SPDX-License-Identifier: MIT */
/*
 * sensorgwd does not take over a console or a login's line (gw/tty.h): a configured port whose
 * device (here a pty, through the test's symlink, as /dev/serial0 links to a UART) is listed in
 * /sys/class/tty/console/active is not opened; the log names the port, the device and the
 * reason, sensorgwctl status counts the refusals with the reason; when the console moves away
 * but utmp still shows a getty on the line it is refused for that; when the getty's record
 * ends, the port opens by itself on its reopen backoff and frames flow.
 *
 * The test needs root: in a mount namespace of its own it binds a file over
 * /sys/class/tty/console/active and mounts a tmpfs over /run for its own /run/utmp. The daemon,
 * its child, sees those; nothing outside the test does.
 */

#include <check.h>
#include <jansson.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utmp.h>

#include "fixture.h"

#define CONSOLE_ACTIVE "/sys/class/tty/console/active"

/* Rewrites path in place: a bind mount shows the same inode, so no unlink and rename. */
static void overwrite(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static void write_utmp(short type, const char *line, pid_t pid)
{
	struct utmp u;

	memset(&u, 0, sizeof(u));
	u.ut_type = type;
	u.ut_pid = pid;
	strncpy(u.ut_line, line, sizeof(u.ut_line));
	strncpy(u.ut_id, "test", sizeof(u.ut_id));
	overwrite(_PATH_UTMP, &u, sizeof(u));
}

/* Lines of the daemon's log that contain needle. */
static int log_lines_with(const char *needle)
{
	char *log = fx_read_file(fx_path("daemon.log")), *save = NULL;
	int n = 0;

	ck_assert_ptr_nonnull(log);
	for (char *l = strtok_r(log, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		n += strstr(l, needle) != NULL;
	free(log);
	return n;
}

/* The port txt's object in `sensorgwctl status --json` (the caller's reference). */
static json_t *port_status(void)
{
	const char *const argv[] = { fx_env("GW_CTL"), "status", "--json", "--socket",
		fx_path("control"), NULL };
	char *out = NULL, *err = NULL;
	int st = fx_run(argv, &out, &err, 10000);
	json_t *o, *v, *port = NULL;
	size_t i;

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status: %s", err);
	o = json_loads(out, 0, NULL);
	ck_assert_msg(o, "%s", out);
	json_array_foreach(json_object_get(o, "ports"), i, v)
		if (strcmp(json_string_value(json_object_get(v, "name")), "txt") == 0)
			port = json_incref(v);
	ck_assert_msg(port, "no port txt: %s", out);
	json_decref(o);
	free(out);
	free(err);
	return port;
}

START_TEST(test_console_refused)
{
	struct fx_pty txt, bin;
	char *conf, *tuned, text[64];
	json_t *st;
	const char *line;
	int64_t end;

	ck_assert_msg(geteuid() == 0, "this test needs root (a mount namespace of its own)");
	ck_assert_msg(unshare(CLONE_NEWNS) == 0, "unshare: %s", strerror(errno));
	ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	fx_broker_start();
	fx_pty_new(&txt, "tty-txt");
	fx_pty_new(&bin, "tty-bin");
	line = txt.slave + strlen("/dev/");

	/* the pty is the console; a getty is on it, too */
	ck_assert_int_lt(snprintf(text, sizeof(text), "tty0 %.40s\n", line), (int)sizeof(text));
	fx_write_file(fx_path("console-active"), text, 0644);
	ck_assert_msg(mount(fx_path("console-active"), CONSOLE_ACTIVE, NULL, MS_BIND, NULL) == 0,
		      "bind over %s: %s", CONSOLE_ACTIVE, strerror(errno));
	ck_assert_msg(mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") == 0, "tmpfs on /run: %s",
		      strerror(errno));
	fx_write_file(_PATH_UTMP, "", 0644);
	write_utmp(LOGIN_PROCESS, line, getpid());

	conf = fx_config(fx_path("broker/ca.crt"), NULL);
	{
		const char *anchor = "framing = text\n";
		char *at = strstr(conf, anchor);

		ck_assert(at);
		at += strlen(anchor);
		ck_assert(asprintf(&tuned, "%.*sreopen_min_ms = 100\nreopen_max_ms = 300\n%s",
				   (int)(at - conf), conf, at) > 0);
	}
	fx_daemon_start(tuned);
	ck_assert(fx_daemon_wait_started(FX_WAIT_MS));
	{
		const char *const needles[] = { "txt", "not opened", txt.slave,
			"is an active system console", CONSOLE_ACTIVE, NULL };

		if (!fx_daemon_wait_log_line(needles, FX_WAIT_MS)) {
			fx_dump_logs();
			ck_abort_msg("no line saying why the console is not opened");
		}
	}
	/* the other port is not affected */
	ck_assert(fx_pty_wait_opened(&bin, fx_daemon_pid(), FX_WAIT_MS));
	/* refused, counted, with the reason; retried on the backoff, logged once */
	end = fx_mono_ms() + FX_WAIT_MS * fx_timeout_scale();
	for (;;) {
		st = port_status();
		if (json_integer_value(json_object_get(st, "refused")) >= 3)
			break;
		ck_assert_msg(fx_mono_ms() < end, "the port is not tried again: %s",
			      json_dumps(st, 0));
		json_decref(st);
		fx_sleep_ms(50);
	}
	ck_assert_str_eq(json_string_value(json_object_get(st, "state")), "absent");
	ck_assert_msg(strstr(json_string_value(json_object_get(st, "refused_why")),
			     "is an active system console"), "%s", json_dumps(st, 0));
	json_decref(st);
	ck_assert_int_eq(log_lines_with("not opened: "), 1);

	/* the console moves away; the getty is still there */
	overwrite(fx_path("console-active"), "tty0\n", 5);
	{
		const char *const needles[] = { "txt", "not opened", txt.slave,
			"has a login on it", _PATH_UTMP, NULL };

		if (!fx_daemon_wait_log_line(needles, FX_WAIT_MS)) {
			fx_dump_logs();
			ck_abort_msg("no line saying the getty's line is not opened");
		}
	}

	/* the getty ends: the port opens by itself and frames flow */
	write_utmp(DEAD_PROCESS, line, getpid());
	ck_assert_msg(fx_pty_wait_opened(&txt, fx_daemon_pid(), FX_WAIT_MS),
		      "the port did not open once the console and the getty were gone");
	fx_subscriber_start("sensorgw/#");
	fx_pty_write(&txt, "MQ2=412\r\n", 9);
	ck_assert(fx_subscriber_wait_count(1, FX_WAIT_MS));
	{
		size_t n;
		struct fx_msg *m = fx_subscriber_messages(&n);

		ck_assert_msg(strstr(m[0].payload, "412"), "%s", m[0].payload);
		fx_msgs_free(m, n);
	}
	ck_assert_int_eq(fx_daemon_stop(NULL), 0);
	free(tuned);
	free(conf);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("console");
	TCase *tc = tcase_create("console");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_console_refused);
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
