/* SPDX-License-Identifier: MIT */
/*
 * The end of every Check test program's main(): run the suite with Check's normal output and
 * turn the failures into the exit status meson reads.
 */
#ifndef GW_TEST_CKRUN_H
#define GW_TEST_CKRUN_H

#include <check.h>
#include <stdlib.h>

static inline int ck_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
