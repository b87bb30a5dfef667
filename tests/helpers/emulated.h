/* SPDX-License-Identifier: MIT */
/*
 * Tests that run under qemu-user too (tools/cross-test.sh sets GW_TEST_EMULATED=1 for its
 * arm64 and armhf runs). Two things differ there, and only there:
 *  - test_scale(): the exhaustive unit loops run 1/16 of their cases, with a stride over the
 *    whole range, because the reference they compare with (glibc's printf and strto*) is
 *    emulated instruction by instruction and test-frame alone would take minutes;
 *  - test_emulated(): a test may pass over what the emulator cannot do, saying so, where a
 *    native run proves it (qemu-user 7.2 translates no termios rate above B460800).
 * Natively neither applies: every case runs.
 */
#ifndef GW_TEST_EMULATED_H
#define GW_TEST_EMULATED_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static inline bool test_emulated(void)
{
	const char *s = getenv("GW_TEST_EMULATED");

	return s && strcmp(s, "1") == 0;
}

static inline int test_scale(void)
{
	return test_emulated() ? 16 : 1;
}

#endif
