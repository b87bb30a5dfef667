/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * An append-only JSON writer into a buffer that is reused from frame to frame, for the hot
 * path (one payload per frame): no tree of values, no allocation once the buffer has grown to
 * the largest payload. Pure: no I/O.
 *
 * Its output is byte for byte what jansson's json_dumps(JSON_COMPACT | JSON_REAL_PRECISION(15))
 * prints for the same values in the same order (docs/payload.md; test-jsonw checks it against
 * jansson): strings escaped as jansson does (", \, control characters; UTF-8 as it is),
 * integers in decimal, reals as printf "%.15g" with ".0" added when that looks like an integer
 * and the exponent without '+' or leading zeros.
 *
 * Errors are sticky: the first one (-EINVAL for a string that is not valid UTF-8 or a real
 * that is not finite, -E2BIG for nesting deeper than GW_JSONW_DEPTH) is kept and returned by
 * gw_jsonw_error(); later calls do nothing. Memory is gw_malloc'd (aborts on OOM).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_JSONW_DEPTH 8
#define GW_JSONW_REAL_MAX 32 /* room for any real gw_jsonw_format_real() prints, with NUL */
#define GW_JSONW_INT_MAX 21  /* "-9223372036854775808" and NUL */

struct gw_jsonw;

struct gw_jsonw *gw_jsonw_new(void);
/* Accepts NULL; returns NULL. */
struct gw_jsonw *gw_jsonw_free(struct gw_jsonw *w);
/* Empties the buffer (keeping its memory) and clears the error. */
void gw_jsonw_reset(struct gw_jsonw *w);

/* Bytes as they are, outside any JSON value (e.g. the NUL-separated head of a spool record). */
void gw_jsonw_raw(struct gw_jsonw *w, const void *p, size_t n);
/* A JSON text that is already serialised (e.g. a params object), as one value. */
void gw_jsonw_json(struct gw_jsonw *w, const char *json, size_t n);
void gw_jsonw_object_begin(struct gw_jsonw *w);
void gw_jsonw_object_end(struct gw_jsonw *w);
/* The key of the next member of the open object. */
void gw_jsonw_key(struct gw_jsonw *w, const char *key);
/* The same for a key of len bytes that needs no escaping and no UTF-8 check (the fixed keys of
 * a payload: plain ASCII letters); the caller vouches for it. */
void gw_jsonw_key_ascii(struct gw_jsonw *w, const char *key, size_t len);
#define GW_JSONW_KEY(w, literal) gw_jsonw_key_ascii((w), "" literal, sizeof(literal) - 1)
void gw_jsonw_string(struct gw_jsonw *w, const char *s);
void gw_jsonw_int(struct gw_jsonw *w, int64_t v);
void gw_jsonw_uint(struct gw_jsonw *w, uint64_t v);
void gw_jsonw_real(struct gw_jsonw *w, double v);
void gw_jsonw_bool(struct gw_jsonw *w, bool v);

/* 0, or the first error. */
int gw_jsonw_error(const struct gw_jsonw *w);
/* What was written so far (not NUL-terminated) and its length. */
const char *gw_jsonw_data(const struct gw_jsonw *w, size_t *ret_len);

/* The formatting routines, also for tests. Each writes a NUL-terminated text into buf and
 * returns its length; _real returns -EINVAL for NaN and infinities. */
size_t gw_jsonw_format_int(char buf[GW_JSONW_INT_MAX], int64_t v);
size_t gw_jsonw_format_uint(char buf[GW_JSONW_INT_MAX], uint64_t v);
int gw_jsonw_format_real(char buf[GW_JSONW_REAL_MAX], double v);
/* Whether s is valid UTF-8 as jansson checks it (no overlong forms, no surrogates, at most
 * U+10FFFF). */
bool gw_jsonw_utf8_valid(const char *s, size_t len);
