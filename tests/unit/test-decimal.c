/* SPDX-License-Identifier: MIT */
/*
 * The exact binary-to-decimal digits of src/decimal.c against glibc's printf, which rounds the
 * exact binary value half to even: gw_decimal_digits() must give printf's "%.*e" digits, and
 * gw_decimal_reads_back_f32() must agree with strtof(). Built twice (tests/meson.build): with
 * the compiler's unsigned __int128 where it has one, and with -DGW_U128_PORTABLE, the two
 * 64-bit halves 32-bit targets use, so both paths are checked on every machine.
 */

#include <check.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../helpers/ckrun.h"
#include "decimal-private.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

/* xorshift64*: the same sequence on every run, so a failure can be reproduced */
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* printf's digits of v = mant * 2^-s: q and k with v ~ q * 10^-k, as gw_decimal_digits()
 * returns them */
static void printf_digits(double v, int digits, uint64_t *ret_q, int *ret_k)
{
	char buf[64], *e, *w = buf;
	int exp10;

	snprintf(buf, sizeof(buf), "%.*e", digits - 1, v);
	e = strchr(buf, 'e');
	ck_assert_ptr_nonnull(e);
	exp10 = atoi(e + 1);
	*e = '\0';
	/* drop the decimal point */
	for (char *r = buf; *r; r++)
		if (*r != '.')
			*w++ = *r;
	*w = '\0';
	*ret_q = strtoull(buf, NULL, 10);
	*ret_k = digits - 1 - exp10;
}

/* One case: the result must be printf's wherever the function answers, and it must answer
 * wherever k stays inside 1..18 and the guess x is within 1 of the truth. */
static int check_digits(uint64_t mant, int s, int digits, int x_off)
{
	double v = ldexp((double)mant, -s);
	uint64_t q = 0, want_q;
	int k = 0, want_k, x = (int)floor(log10(v)) + x_off;
	bool ok = gw_decimal_digits(mant, s, digits, x, &q, &k);

	printf_digits(v, digits, &want_q, &want_k);
	if (ok) {
		ck_assert_msg(q == want_q && k == want_k,
			      "mant=%" PRIu64 " s=%d digits=%d: got %" PRIu64
			      "e-%d, printf %" PRIu64 "e-%d",
			      mant, s, digits, q, k, want_q, want_k);
		return 1;
	}
	/* a first k outside 0..19 (a guess one off, a carry) refuses at the edges */
	ck_assert_msg(want_k <= 0 || want_k >= 19,
		      "mant=%" PRIu64 " s=%d digits=%d: refused, printf %" PRIu64 "e-%d", mant, s,
		      digits, want_q, want_k);
	return 0;
}

START_TEST(test_digits_random)
{
	int answered = 0;

	for (int i = 0; i < 200000; i++) {
		/* doubles' and floats' mantissas, every shift and digit count the callers use */
		uint64_t mant = i & 1 ? (rnd() >> 11) | (UINT64_C(1) << 52) :
					(rnd() >> 40) | (UINT64_C(1) << 23);
		int s = 1 + (int)(rnd() % 70), digits = 1 + (int)(rnd() % 15);
		int x_off = (int)(rnd() % 3) - 1;

		answered += check_digits(mant, s, digits, x_off);
	}
	/* most values are in range: a function that refuses everything must not pass */
	ck_assert_int_gt(answered, 100000);
}
END_TEST

START_TEST(test_digits_ties)
{
	/* exact halves: mant * 10^k / 2^s ends in .5 for s = 1, so half to even decides */
	for (uint64_t mant = 1; mant < 100000; mant += 2)
		for (int digits = 1; digits <= 6; digits++)
			check_digits(mant, 1, digits, 0);
	/* the carry that makes 10^digits: 9.999... rounded up */
	check_digits(UINT64_C(0x1fffffffffffff), 53, 15, 0);
	check_digits(UINT64_C(0xffffff), 24, 6, 0);
	check_digits(UINT64_C(0xffffff), 4, 3, 0);
}
END_TEST

START_TEST(test_reads_back_f32)
{
	int yes = 0, no = 0;

	for (int i = 0; i < 100000; i++) {
		uint32_t mant = (uint32_t)(rnd() >> 41) | (UINT32_C(1) << 23);
		int s = 1 + (int)(rnd() % 60);
		float f = ldexpf((float)mant, -s);

		if (i % 7 == 0)
			mant = UINT32_C(1) << 23, f = ldexpf((float)mant, -s);
		for (int digits = 6; digits <= 9; digits++) {
			uint64_t q;
			int k, x = (int)floor(log10((double)f));
			char buf[48];
			bool want;

			if (!gw_decimal_digits(mant, s, digits, x, &q, &k))
				continue;
			snprintf(buf, sizeof(buf), "%" PRIu64 "e-%d", q, k);
			want = strtof(buf, NULL) == f;
			ck_assert_msg(gw_decimal_reads_back_f32(mant, s, q, k) == want,
				      "mant=%" PRIu32 " s=%d: %s reads back %s", mant, s, buf,
				      want ? "yes" : "no");
			want ? yes++ : no++;
		}
	}
	/* both answers are common */
	ck_assert_int_gt(yes, 10000);
	ck_assert_int_gt(no, 10000);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("decimal");
	TCase *tc = tcase_create("decimal");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_digits_random);
	tcase_add_test(tc, test_digits_ties);
	tcase_add_test(tc, test_reads_back_f32);
	suite_add_tcase(s, tc);
	return ck_run_suite(s);
}
