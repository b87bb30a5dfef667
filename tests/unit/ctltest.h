/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Unit tests that also check sensorgwctl: their "cli" case runs the built binary, and only
 * where meson points GW_SENSORGWCTL at it (test-aliyun, test-tencent, test-aliyun-gateway,
 * test-tencent-gateway).
 */

#include <check.h>
#include <stdbool.h>
#include <stddef.h>

/* Runs "$GW_SENSORGWCTL ARGS" (args is shell text, stderr dropped), stdin_text (or nothing)
 * on its standard input; its standard output in out (NUL-terminated, cut to size); returns
 * its exit status. */
int ctltest_run(const char *args, const char *stdin_text, char *out, size_t size);

/* The test's main(): suite(cli) with the cli case when GW_SENSORGWCTL is set; asked for
 * CK_RUN_CASE=cli without it, fails (naming name) rather than pass having run nothing. */
int ctltest_main(const char *name, Suite *(*suite)(bool cli));
