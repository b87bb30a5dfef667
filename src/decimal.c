/* SPDX-License-Identifier: MIT */
/*
 * Exact binary-to-decimal digits (see decimal-private.h): the 128-bit helpers, native or in
 * two halves, and the two computations built on them.
 */
#include "decimal-private.h"

const uint64_t gw_pow10_u64[20] = {
	1ull,
	10ull,
	100ull,
	1000ull,
	10000ull,
	100000ull,
	1000000ull,
	10000000ull,
	100000000ull,
	1000000000ull,
	10000000000ull,
	100000000000ull,
	1000000000000ull,
	10000000000000ull,
	100000000000000ull,
	1000000000000000ull,
	10000000000000000ull,
	100000000000000000ull,
	1000000000000000000ull,
	10000000000000000000ull,
};

/* Shift counts are always 0..127 below. */
#if defined(__SIZEOF_INT128__) && !defined(GW_U128_PORTABLE)

__extension__ typedef unsigned __int128 u128; /* -Wpedantic: a GCC/Clang extension */

static u128 u128_of(uint64_t a)
{
	return a;
}

static u128 u128_mul(uint64_t a, uint64_t b)
{
	return (u128)a * b;
}

static u128 u128_shl(u128 a, int n)
{
	return a << n;
}

static u128 u128_shr(u128 a, int n)
{
	return a >> n;
}

static u128 u128_sub(u128 a, u128 b)
{
	return a - b;
}

static int u128_cmp(u128 a, u128 b)
{
	return (a > b) - (a < b);
}

static uint64_t u128_lo(u128 a)
{
	return (uint64_t)a;
}

/* bit n of a */
static bool u128_bit(u128 a, int n)
{
	return (a >> n) & 1;
}

/* whether the low n bits of a are all zero */
static bool u128_low_zero(u128 a, int n)
{
	return n == 0 || (a & (((u128)1 << n) - 1)) == 0;
}

#else

typedef struct {
	uint64_t hi, lo;
} u128;

static u128 u128_of(uint64_t a)
{
	return (u128){ .hi = 0, .lo = a };
}

/* schoolbook, in 32-bit limbs: no partial sum overflows 64 bits */
static u128 u128_mul(uint64_t a, uint64_t b)
{
	uint64_t a0 = (uint32_t)a, a1 = a >> 32, b0 = (uint32_t)b, b1 = b >> 32;
	uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
	uint64_t mid = (p00 >> 32) + (uint32_t)p01 + (uint32_t)p10;

	return (u128){ .hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32),
		       .lo = (mid << 32) | (uint32_t)p00 };
}

static u128 u128_shl(u128 a, int n)
{
	if (n == 0)
		return a;
	if (n >= 64)
		return (u128){ .hi = a.lo << (n - 64), .lo = 0 };
	return (u128){ .hi = (a.hi << n) | (a.lo >> (64 - n)), .lo = a.lo << n };
}

static u128 u128_shr(u128 a, int n)
{
	if (n == 0)
		return a;
	if (n >= 64)
		return (u128){ .hi = 0, .lo = a.hi >> (n - 64) };
	return (u128){ .hi = a.hi >> n, .lo = (a.lo >> n) | (a.hi << (64 - n)) };
}

static u128 u128_sub(u128 a, u128 b)
{
	return (u128){ .hi = a.hi - b.hi - (a.lo < b.lo), .lo = a.lo - b.lo };
}

static int u128_cmp(u128 a, u128 b)
{
	if (a.hi != b.hi)
		return a.hi > b.hi ? 1 : -1;
	return (a.lo > b.lo) - (a.lo < b.lo);
}

static uint64_t u128_lo(u128 a)
{
	return a.lo;
}

static bool u128_bit(u128 a, int n)
{
	return n < 64 ? (a.lo >> n) & 1 : (a.hi >> (n - 64)) & 1;
}

static bool u128_low_zero(u128 a, int n)
{
	if (n < 64)
		return n == 0 || (a.lo & ((UINT64_C(1) << n) - 1)) == 0;
	return a.lo == 0 && (n == 64 || (a.hi & ((UINT64_C(1) << (n - 64)) - 1)) == 0);
}

#endif

bool gw_decimal_digits(uint64_t mant, int s, int digits, int x, uint64_t *ret_q, int *ret_k)
{
	if (s < 1 || s > 70 || digits < 1 || digits > 15)
		return false;
	for (int tries = 0; tries < 4; tries++) {
		int k = digits - 1 - x;
		u128 n, t;
		uint64_t q;

		if (k < 0 || k > 19)
			return false;
		/* n < 2^53 * 10^19 < 2^117 */
		n = u128_mul(mant, gw_pow10_u64[k]);
		t = u128_shr(n, s);
		if (u128_cmp(t, u128_of(gw_pow10_u64[digits])) >= 0) {
			x++;
			continue;
		}
		if (u128_cmp(t, u128_of(gw_pow10_u64[digits - 1])) < 0) {
			x--;
			continue;
		}
		q = u128_lo(t);
		/* the remainder n mod 2^s against half of 2^s: its top bit, then the bits below */
		if (u128_bit(n, s - 1) && (!u128_low_zero(n, s - 1) || (q & 1)))
			q++;
		if (q == gw_pow10_u64[digits]) {
			q /= 10;
			k--;
			if (k < 0)
				return false;
		}
		*ret_q = q;
		*ret_k = k;
		return true;
	}
	return false;
}

bool gw_decimal_reads_back_f32(uint32_t mant, int s, uint64_t q, int k)
{
	/* everything scaled by 2^(s+2) * 10^k: d < 2^92, fv < 2^90 */
	u128 d = u128_shl(u128_of(q), s + 2), fv = u128_shl(u128_mul(mant, gw_pow10_u64[k]), 2);
	u128 up = u128_shl(u128_of(gw_pow10_u64[k]), 1);
	/* below a power of two the next float down is half as far */
	u128 down = mant == (UINT32_C(1) << 23) ? u128_of(gw_pow10_u64[k]) : up;
	bool even = !(mant & 1);
	int c;

	if (u128_cmp(d, fv) >= 0) {
		c = u128_cmp(u128_sub(d, fv), up);
		return c < 0 || (c == 0 && even);
	}
	c = u128_cmp(u128_sub(fv, d), down);
	return c < 0 || (c == 0 && even);
}
