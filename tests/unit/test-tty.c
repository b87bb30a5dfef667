/* SPDX-License-Identifier: MIT */
/*
 * gw_tty_use (gw/tty.h) on files of the test's own: a console list naming the device, by its
 * name and through /dev/serial0- and by-id-style symlinks; a virtual terminal under "tty0";
 * utmp records of a getty (LOGIN_PROCESS), a session (USER_PROCESS) and systemd's INIT_PROCESS
 * for the line, alive or not, and a DEAD_PROCESS; missing sources; a missing device.
 */

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utmp.h>

#include "../helpers/ckrun.h"
#include "gw/tty.h"

static char tmp[64], active[128], utmpf[128];

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void setup(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/test-tty-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	snprintf(active, sizeof(active), "%s/active", tmp);
	snprintf(utmpf, sizeof(utmpf), "%s/utmp", tmp);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	ck_assert_int_eq(system(cmd), 0);
}

static const char *in_tmp(const char *name)
{
	static char path[4][160];
	static unsigned k;
	char *p = path[k++ % 4];

	snprintf(p, sizeof(path[0]), "%s/%s", tmp, name);
	return p;
}

/* Writes utmp records: {type, line, pid} each. */
static void write_utmp(const int *types, const char *const *lines, const pid_t *pids, size_t n)
{
	FILE *f = fopen(utmpf, "we");

	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < n; i++) {
		struct utmp u;

		memset(&u, 0, sizeof(u));
		u.ut_type = (short)types[i];
		u.ut_pid = pids[i];
		strncpy(u.ut_line, lines[i], sizeof(u.ut_line));
		ck_assert_int_eq(fwrite(&u, sizeof(u), 1, f), 1);
	}
	fclose(f);
}

/* A pid that no process has: a child that has exited and been reaped. */
static pid_t dead_pid(void)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
	return pid;
}

START_TEST(test_console)
{
	const struct gw_tty_sources src = { .console_active = active, .utmp = utmpf };
	char why[256] = "";

	/* /dev/null stands in for a UART: any device node with a name serves */
	write_text(active, "tty0 ttyS9\n");
	ck_assert_int_eq(gw_tty_use("/dev/null", &src, why, sizeof(why)), GW_TTY_FREE);
	write_text(active, "tty0 null\n");
	ck_assert_int_eq(gw_tty_use("/dev/null", &src, why, sizeof(why)), GW_TTY_CONSOLE);
	ck_assert_msg(strstr(why, "/dev/null is an active system console") &&
		      strstr(why, active) && strstr(why, "tty0 null"), "%s", why);
	/* a /dev/serial0-style link, and a by-id link to that link, name the same device */
	ck_assert_int_eq(symlink("/dev/null", in_tmp("serial0")), 0);
	ck_assert_int_eq(mkdir(in_tmp("by-id"), 0700), 0);
	ck_assert_int_eq(symlink("../serial0", in_tmp("by-id/usb-FTDI_port0")), 0);
	why[0] = '\0';
	ck_assert_int_eq(gw_tty_use(in_tmp("serial0"), &src, why, sizeof(why)), GW_TTY_CONSOLE);
	ck_assert_msg(strstr(why, "/dev/null is"), "%s", why);
	ck_assert_int_eq(gw_tty_use(in_tmp("by-id/usb-FTDI_port0"), &src, NULL, 0),
			 GW_TTY_CONSOLE);
	/* the name must match whole: "null0" is not "null" */
	write_text(active, "null0 nul\n");
	ck_assert_int_eq(gw_tty_use(in_tmp("serial0"), &src, NULL, 0), GW_TTY_FREE);
	/* no console list (no sysfs): not a console */
	unlink(active);
	ck_assert_int_eq(gw_tty_use("/dev/null", &src, NULL, 0), GW_TTY_FREE);
	/* a device that does not exist */
	ck_assert_int_eq(gw_tty_use(in_tmp("nope"), &src, NULL, 0), -ENOENT);
}
END_TEST

START_TEST(test_virtual_terminal)
{
	const struct gw_tty_sources src = { .console_active = active, .utmp = utmpf };

	if (access("/dev/tty1", F_OK) != 0)
		return; /* no virtual terminals here (a container): nothing to resolve */
	write_text(active, "tty0\n");
	ck_assert_int_eq(gw_tty_use("/dev/tty1", &src, NULL, 0), GW_TTY_CONSOLE);
	write_text(active, "ttyS0\n");
	ck_assert_int_eq(gw_tty_use("/dev/tty1", &src, NULL, 0), GW_TTY_FREE);
}
END_TEST

START_TEST(test_login)
{
	const struct gw_tty_sources src = { .console_active = active, .utmp = utmpf };
	const pid_t me = getpid(), gone = dead_pid();
	char why[256] = "";

	write_text(active, "ttyS0\n");
	{
		/* a getty waiting on the line, alive */
		const int t[] = { LOGIN_PROCESS };
		const char *const l[] = { "null" };
		const pid_t p[] = { me };

		write_utmp(t, l, p, 1);
		ck_assert_int_eq(gw_tty_use(in_tmp("../../dev/null"), &src, why, sizeof(why)),
				 GW_TTY_LOGIN);
		ck_assert_msg(strstr(why, "/dev/null has a login on it") && strstr(why, utmpf),
			      "%s", why);
	}
	{
		/* pid 1 is alive and not ours (EPERM for an unprivileged test): still a login */
		const int t[] = { DEAD_PROCESS, USER_PROCESS };
		const char *const l[] = { "null", "null" };
		const pid_t p[] = { me, 1 };

		write_utmp(t, l, p, 2);
		ck_assert_int_eq(gw_tty_use("/dev/null", &src, NULL, 0), GW_TTY_LOGIN);
	}
	{
		/* systemd starting the getty (UtmpIdentifier=) */
		const int t[] = { INIT_PROCESS };
		const char *const l[] = { "null" };
		const pid_t p[] = { me };

		write_utmp(t, l, p, 1);
		ck_assert_int_eq(gw_tty_use("/dev/null", &src, NULL, 0), GW_TTY_LOGIN);
	}
	{
		/* the getty ended (DEAD_PROCESS), one whose process is gone, another line, and a
		 * boot record: free */
		const int t[] = { DEAD_PROCESS, LOGIN_PROCESS, LOGIN_PROCESS, BOOT_TIME };
		const char *const l[] = { "null", "null", "ttyS1", "~" };
		const pid_t p[] = { me, gone, me, me };

		write_utmp(t, l, p, 4);
		ck_assert_int_eq(gw_tty_use("/dev/null", &src, NULL, 0), GW_TTY_FREE);
	}
	/* no utmp at all */
	unlink(utmpf);
	ck_assert_int_eq(gw_tty_use("/dev/null", &src, NULL, 0), GW_TTY_FREE);
	/* the console comes first */
	write_text(active, "null\n");
	ck_assert_int_eq(gw_tty_use("/dev/null", &src, NULL, 0), GW_TTY_CONSOLE);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tty");
	TCase *tc = tcase_create("tty");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_console);
	tcase_add_test(tc, test_virtual_terminal);
	tcase_add_test(tc, test_login);
	suite_add_tcase(s, tc);
	return ck_run_suite(s);
}
