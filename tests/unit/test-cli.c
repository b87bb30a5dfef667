/* SPDX-License-Identifier: MIT */
/*
 * The command line of every installed binary (sensorgwd, sensorgwctl, sensorgw-sim): --version
 * and -V print "NAME VERSION" (the project's version) and exit 0, --help and -h print a usage
 * text and exit 0, an unknown option exits 2 with a hint on stderr and nothing on stdout.
 * The binaries come from GW_SENSORGWD, GW_SENSORGWCTL and GW_SENSORGW_SIM.
 */

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../helpers/ckrun.h"
#include "gw-build.h"

struct run {
	int status; /* exit code, or -1 when killed by a signal */
	char out[16384];
	char err[16384];
};

static void slurp(int fd, char *buf, size_t size)
{
	ssize_t n;
	size_t len = 0;

	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	while (len + 1 < size && (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(fd);
}

static int tmp_fd(void)
{
	char path[] = "/tmp/gw-cli-XXXXXX";
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	unlink(path);
	return fd;
}

/* Runs the binary in env var VAR with up to three arguments; stdin is /dev/null. */
static void run(struct run *r, const char *var, const char *a1, const char *a2, const char *a3)
{
	const char *exe = getenv(var);
	int out = tmp_fd(), err = tmp_fd(), st;
	pid_t pid;

	ck_assert_msg(exe != NULL, "%s is not set", var);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
			_exit(127);
		execl(exe, exe, a1, a2, a3, (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	slurp(out, r->out, sizeof(r->out));
	slurp(err, r->err, sizeof(r->err));
}

static const struct {
	const char *var;
	const char *name;
} bins[] = {
	{ "GW_SENSORGWD", "sensorgwd" },
	{ "GW_SENSORGWCTL", "sensorgwctl" },
	{ "GW_SENSORGW_SIM", "sensorgw-sim" },
};

START_TEST(test_version)
{
	static struct run r;
	char want[128];

	snprintf(want, sizeof(want), "%s %s\n", bins[_i].name, GW_VERSION);
	run(&r, bins[_i].var, "--version", NULL, NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, want);
	ck_assert_str_eq(r.err, "");
	run(&r, bins[_i].var, "-V", NULL, NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, want);
}
END_TEST

START_TEST(test_help)
{
	static struct run r;
	char want[128];

	snprintf(want, sizeof(want), "Usage: %s ", bins[_i].name);
	run(&r, bins[_i].var, "--help", NULL, NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(strncmp(r.out, want, strlen(want)) == 0, "--help printed: %.200s", r.out);
	ck_assert_ptr_nonnull(strstr(r.out, "--version"));
	ck_assert_str_eq(r.err, "");
	run(&r, bins[_i].var, "-h", NULL, NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(strncmp(r.out, want, strlen(want)) == 0, "-h printed: %.200s", r.out);
}
END_TEST

/* Exit 2 (a bad command line), the option named, --help suggested, stdout untouched. */
START_TEST(test_unknown_option)
{
	static struct run r;

	run(&r, bins[_i].var, "--no-such-option", NULL, NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_str_eq(r.out, "");
	ck_assert_msg(strstr(r.err, "no-such-option") != NULL, "stderr: %.300s", r.err);
	ck_assert_msg(strstr(r.err, "--help") != NULL, "no hint on stderr: %.300s", r.err);
}
END_TEST

/* sensorgwctl's commands have their own --help; an unknown command is a bad command line. */
START_TEST(test_ctl_commands)
{
	static const char *const cmds[][2] = {
		{ "sign", NULL }, { "sign", "aliyun" }, { "sign", "tencent" },
		{ "status", NULL }, { "reload", NULL }, { "decode", NULL },
	};
	static struct run r;

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char want[64];

		snprintf(want, sizeof(want), "Usage: sensorgwctl %s", cmds[i][0]);
		if (cmds[i][1])
			run(&r, "GW_SENSORGWCTL", cmds[i][0], cmds[i][1], "--help");
		else
			run(&r, "GW_SENSORGWCTL", cmds[i][0], "--help", NULL);
		ck_assert_msg(r.status == 0, "%s %s --help: exit %d", cmds[i][0],
			      cmds[i][1] ? cmds[i][1] : "", r.status);
		ck_assert_msg(strncmp(r.out, want, strlen(want)) == 0, "%s --help printed: %.200s",
			      cmds[i][0], r.out);
	}
	run(&r, "GW_SENSORGWCTL", "no-such-command", NULL, NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "no-such-command"));
	ck_assert_ptr_nonnull(strstr(r.err, "--help"));
	run(&r, "GW_SENSORGWCTL", "status", "--no-such-option", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "no-such-option"));
	/* the options status and reload share (ctl_socket_options) */
	run(&r, "GW_SENSORGWCTL", "reload", "--socket", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "reload: --socket needs a value"));
	run(&r, "GW_SENSORGWCTL", "reload", "stray", NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "unexpected argument 'stray'"));
	ck_assert_ptr_nonnull(strstr(r.err, "Usage: sensorgwctl reload"));
}
END_TEST

/* sensorgwd takes no operands. */
START_TEST(test_daemon_operand)
{
	static struct run r;

	run(&r, "GW_SENSORGWD", "stray", NULL, NULL);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "stray"));
	ck_assert_ptr_nonnull(strstr(r.err, "--help"));
}
END_TEST

static Suite *cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("cli");
	int n = (int)(sizeof(bins) / sizeof(bins[0]));

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_version, 0, n);
	tcase_add_loop_test(tc, test_help, 0, n);
	tcase_add_loop_test(tc, test_unknown_option, 0, n);
	tcase_add_test(tc, test_ctl_commands);
	tcase_add_test(tc, test_daemon_operand);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ck_run_suite(cli_suite());
}
