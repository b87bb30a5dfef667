/* SPDX-License-Identifier: MIT */
/* Small-file I/O and the trusted-file rule (gw/fileio.h), in a temporary directory. */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../helpers/ckrun.h"
#include "gw/fileio.h"

static char dir[32];
static int dfd = -1;

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/gw-fileio-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(dfd, 0);
}

static void teardown(void)
{
	char cmd[64];

	close(dfd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void put(const char *name, const char *text)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(gw_file_write_full(fd, text, strlen(text)), 0);
	close(fd);
}

static void assert_holds(const char *name, const char *text)
{
	char buf[64];
	size_t n;

	ck_assert_int_eq(gw_file_read_small(dfd, name, buf, sizeof(buf) - 1, &n), 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, text);
}

START_TEST(test_write_atomic)
{
	enum gw_file_step step = GW_FILE_STEP_NONE;
	struct stat st;

	ck_assert_int_eq(gw_file_write_atomic(dfd, "f", ".f.tmp", "one", 3, &step), 0);
	assert_holds("f", "one");
	ck_assert_int_eq(fstatat(dfd, "f", &st, 0), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(gw_file_write_atomic(dfd, "f", ".f.tmp", "second", 6, NULL), 0);
	assert_holds("f", "second");
	ck_assert_int_eq(faccessat(dfd, ".f.tmp", F_OK, AT_SYMLINK_NOFOLLOW), -1);
	ck_assert_int_eq(step, GW_FILE_STEP_NONE);
}
END_TEST

/* A stale tmp that is a hard link to another file is removed, never written through. */
START_TEST(test_stale_link)
{
	put("other", "keep");
	ck_assert_int_eq(linkat(dfd, "other", dfd, ".f.tmp", 0), 0);
	ck_assert_int_eq(gw_file_write_atomic(dfd, "f", ".f.tmp", "new", 3, NULL), 0);
	assert_holds("other", "keep");
	assert_holds("f", "new");
}
END_TEST

/* A failed rename leaves the name as it was and no tmp behind, and says which step failed. */
START_TEST(test_rename_fails)
{
	enum gw_file_step step = GW_FILE_STEP_NONE;

	ck_assert_int_eq(mkdirat(dfd, "d", 0700), 0);
	ck_assert_int_eq(mkdirat(dfd, "d/x", 0700), 0);
	ck_assert_int_lt(gw_file_write_atomic(dfd, "d", ".d.tmp", "x", 1, &step), 0);
	ck_assert_int_eq(step, GW_FILE_STEP_RENAME);
	ck_assert_str_eq(gw_file_step_name(step), "rename");
	ck_assert_int_eq(faccessat(dfd, ".d.tmp", F_OK, AT_SYMLINK_NOFOLLOW), -1);
	ck_assert_int_eq(faccessat(dfd, "d/x", F_OK, 0), 0);
}
END_TEST

START_TEST(test_read_small)
{
	char buf[4];
	size_t n;
	int fd;

	put("long", "0123456789");
	ck_assert_int_eq(gw_file_read_small(dfd, "long", buf, sizeof(buf), &n), 0);
	ck_assert_uint_eq(n, sizeof(buf));
	ck_assert(memcmp(buf, "0123", 4) == 0);
	ck_assert_int_eq(gw_file_read_small(dfd, "missing", buf, sizeof(buf), &n), -ENOENT);
	ck_assert_int_eq(symlinkat("long", dfd, "link"), 0);
	ck_assert_int_eq(gw_file_read_small(dfd, "link", buf, sizeof(buf), &n), -ELOOP);
	/* followed when asked */
	fd = gw_file_open_read(dfd, "link", false);
	ck_assert_int_ge(fd, 0);
	close(fd);
	/* a FIFO does not block: it reads as empty */
	ck_assert_int_eq(mkfifoat(dfd, "fifo", 0600), 0);
	ck_assert_int_eq(gw_file_read_small(dfd, "fifo", buf, sizeof(buf), &n), 0);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_trust)
{
	const struct gw_file_rule private_rule = { .root_ok = false, .also_uid = (uid_t)-1,
						   .forbidden = 077 };
	const struct gw_file_rule shared_rule = { .root_ok = true, .also_uid = 4242,
						  .forbidden = 022 };
	struct stat st = { .st_uid = geteuid(), .st_mode = S_IFREG | 0600 };

	ck_assert_int_eq(gw_file_check(&st, &private_rule), GW_FILE_TRUSTED);
	st.st_mode = S_IFREG | 0640;
	ck_assert_int_eq(gw_file_check(&st, &private_rule), GW_FILE_OPEN_MODE);
	ck_assert_int_eq(gw_file_check(&st, &shared_rule), GW_FILE_TRUSTED);
	st.st_mode = S_IFREG | 0664;
	ck_assert_int_eq(gw_file_check(&st, &shared_rule), GW_FILE_OPEN_MODE);
	st.st_mode = S_IFREG | 0644;
	st.st_uid = 4242;
	ck_assert_int_eq(gw_file_check(&st, &shared_rule), GW_FILE_TRUSTED);
	ck_assert_int_eq(gw_file_check(&st, &private_rule), GW_FILE_FOREIGN_OWNER);
	st.st_uid = 0;
	ck_assert_int_eq(gw_file_check(&st, &shared_rule), GW_FILE_TRUSTED);
	if (geteuid() != 0)
		ck_assert_int_eq(gw_file_check(&st, &private_rule), GW_FILE_FOREIGN_OWNER);
	st.st_uid = 4243;
	ck_assert_int_eq(gw_file_check(&st, &shared_rule), GW_FILE_FOREIGN_OWNER);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fileio");
	TCase *tc = tcase_create("fileio");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_write_atomic);
	tcase_add_test(tc, test_stale_link);
	tcase_add_test(tc, test_rename_fails);
	tcase_add_test(tc, test_read_small);
	tcase_add_test(tc, test_trust);
	suite_add_tcase(s, tc);
	return ck_run_suite(s);
}
