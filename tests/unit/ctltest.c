/* SPDX-License-Identifier: MIT */
/* See ctltest.h. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctltest.h"

int ctltest_run(const char *args, const char *stdin_text, char *out, size_t size)
{
	const char *ctl = getenv("GW_SENSORGWCTL");
	char cmd[2048], in_path[] = "/tmp/test-ctl-in-XXXXXX";
	size_t n;
	FILE *p;
	int st, fd;

	ck_assert_ptr_nonnull(ctl);
	if (stdin_text) {
		fd = mkstemp(in_path);
		ck_assert_int_ge(fd, 0);
		ck_assert(write(fd, stdin_text, strlen(stdin_text)) == (ssize_t)strlen(stdin_text));
		close(fd);
		snprintf(cmd, sizeof(cmd), "'%s' %s <%s 2>/dev/null", ctl, args, in_path);
	} else {
		snprintf(cmd, sizeof(cmd), "'%s' %s </dev/null 2>/dev/null", ctl, args);
	}
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	n = fread(out, 1, size - 1, p);
	out[n] = '\0';
	st = pclose(p);
	if (stdin_text)
		unlink(in_path);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

int ctltest_main(const char *name, Suite *(*suite)(bool cli))
{
	const char *only = getenv("CK_RUN_CASE");
	bool cli = getenv("GW_SENSORGWCTL") != NULL;
	SRunner *sr;
	int failed;

	if (only && strcmp(only, "cli") == 0 && !cli) {
		fprintf(stderr, "%s: CK_RUN_CASE=cli needs GW_SENSORGWCTL\n", name);
		return EXIT_FAILURE;
	}
	sr = srunner_create(suite(cli));
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
