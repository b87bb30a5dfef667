/* SPDX-License-Identifier: MIT */
/*
 * Exact binary-to-decimal digits for the number writers (jsonw.c: doubles as "%.15g" prints
 * them; frame.c: a float's shortest decimal). Both compute with integers what printf computes,
 * so a hot path avoids printf and strtod while giving the same text byte for byte.
 *
 * The arithmetic needs 128-bit products. Where the compiler has unsigned __int128 (x86-64,
 * arm64) that is used; elsewhere (32-bit ARM, armhf) two 64-bit halves do the same work, so
 * every target takes the same path with the same results. Building with -DGW_U128_PORTABLE
 * forces the halves everywhere (tests/unit/test-decimal.c runs both).
 */
#ifndef GW_DECIMAL_PRIVATE_H
#define GW_DECIMAL_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

/* 10^0 .. 10^19: every power of ten a uint64_t holds. */
extern const uint64_t gw_pow10_u64[20];

/*
 * The value mant * 2^-s (mant < 2^53, 1 <= s <= 70) printed with `digits` (1..15) significant
 * digits, rounded half to even from the exact value as glibc's printf rounds: q * 10^-k with
 * 10^(digits-1) <= q < 10^digits. x is a guess of floor(log10(value)) within 3 of the truth.
 * False where k would fall outside 0..19 or the guess is too far off; the caller then asks
 * printf.
 */
bool gw_decimal_digits(uint64_t mant, int s, int digits, int x, uint64_t *ret_q, int *ret_k);

/*
 * Whether strtof() of q * 10^-k (q < 10^9, 0 <= k <= 19) gives back the float mant * 2^-s
 * (2^23 <= mant < 2^24, 1 <= s <= 60): the decimal lies within half a unit in the float's last
 * place, a tie going to the even mantissa. Exact.
 */
bool gw_decimal_reads_back_f32(uint32_t mant, int s, uint64_t q, int k);

#endif
