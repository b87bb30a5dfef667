/* SPDX-License-Identifier: MIT */
#pragma once
/* Small helpers shared by every module: allocation, backoff, string templates, time, error text
 * and character classes. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* The number of elements of an array (an array, not a pointer). */
#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* An ASCII letter or digit, whatever the locale. */
bool gw_is_alnum(char c);
/* s is not NULL and holds min..max bytes before its NUL (at most max + 1 are looked at). */
bool gw_has_length(const char *s, size_t min, size_t max);

/*
 * Error text. A function that can say why it failed takes `char *why, size_t why_size`: a
 * buffer of why_size bytes, or NULL (then nothing is written), always NUL-terminated and cut
 * to fit, one line without secrets. gw_why_set writes it; gw_why_append adds to what is there.
 */
void gw_why_set(char *why, size_t why_size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void gw_why_append(char *why, size_t why_size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Our own allocations abort on OOM (systemd's Restart= brings the daemon back). */
void *gw_malloc0(size_t size);
char *gw_strdup(const char *s); /* NULL stays NULL */
/* *p becomes a copy of s, NULL when s is NULL or empty; the old string is freed. */
void gw_strset(char **p, const char *s);
bool gw_streq_null(const char *a, const char *b); /* both NULL, or equal strings */
#define gw_new0(type, n) ((type *)gw_malloc0(sizeof(type) * (n)))
/* reallocarray(p, n, size) that aborts as gw_malloc0 does. */
void *gw_realloc_array(void *p, size_t n, size_t size);

/* Frees *p and sets it to NULL; for __attribute__((cleanup)). */
void gw_freep(void *p);
/* systemd's name for it; a reserved name in theory, defined by no libc */
/* NOLINTNEXTLINE(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp) */
#define _cleanup_free_ __attribute__((cleanup(gw_freep)))

/* Wipes and frees a secret string. Accepts NULL; returns NULL. */
char *gw_secret_free(char *s);

/*
 * Exponential backoff: the next delay after prev (0 = first failure gives min), doubled and
 * capped at max. With jitter, the result is drawn uniformly from [d/2, d] so that many clients
 * that lost the same server do not return in step.
 */
uint32_t gw_backoff_next(uint32_t prev, uint32_t min, uint32_t max);
uint32_t gw_backoff_jitter(uint32_t delay);

/* snprintf that reports truncation as -ENOBUFS (and a format error as -EINVAL), so that a
 * cut host name, client id or URL never goes out on the wire. Returns the length. */
int gw_bprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* CLOCK_REALTIME in milliseconds since the epoch; CLOCK_MONOTONIC in microseconds. */
int64_t gw_now_wall_ms(void);
uint64_t gw_now_mono_us(void);

/*
 * Expands a template: every "{name}" is replaced by lookup(name); unknown names and a '{'
 * without '}' make it fail with -EINVAL. Writes at most size bytes including the NUL; -ENOBUFS
 * when the result does not fit. Returns the length written.
 */
typedef const char *(*gw_template_lookup_fn)(const char *name, size_t len, void *user_data);
int gw_template_expand(const char *tmpl, gw_template_lookup_fn lookup, void *user_data, char *buf,
		       size_t size);
/* Checks that tmpl uses only the names in allowed (NULL-terminated); -EINVAL otherwise. */
int gw_template_check(const char *tmpl, const char *const *allowed);

/* Returns *p and sets it to NULL: hands ownership on (ell's l_steal_ptr). */
static inline char *gw_steal_str(char **p)
{
	char *t = *p;

	*p = NULL;
	return t;
}

/*
 * A sorted set of sequence numbers (an uplink's records acknowledged out of order or
 * dead-lettered, above its cursor). Zero-initialise; free with gw_seqset_free.
 */
struct gw_seqset {
	uint64_t *v;
	size_t n, cap;
};
bool gw_seqset_has(const struct gw_seqset *s, uint64_t seq);
void gw_seqset_add(struct gw_seqset *s, uint64_t seq);
/* Drops every member below `below`. */
void gw_seqset_prune(struct gw_seqset *s, uint64_t below);
void gw_seqset_free(struct gw_seqset *s);

/* A token bucket: per_s tokens a second, at most burst saved up (gw_rate_init: one second's
 * worth); it starts full; per_s = 0: no limit. */
struct gw_rate {
	uint32_t per_s;
	uint32_t burst;
	double tokens;
	uint64_t at_us;
};
void gw_rate_init(struct gw_rate *r, uint32_t per_s, uint64_t now_us);
/* burst 0 counts as 1: a bucket that never holds a token would refuse everything. */
void gw_rate_init_burst(struct gw_rate *r, uint32_t per_s, uint32_t burst, uint64_t now_us);
/* Takes a token: returns 0, or the microseconds to wait until one is there. */
uint64_t gw_rate_take(struct gw_rate *r, uint64_t now_us);
/* Returns a token taken for nothing. */
void gw_rate_give_back(struct gw_rate *r);

/*
 * For a log line that a peer could otherwise repeat at will: true at the first call and then
 * at most once per interval_us (*last_us, zero-initialised, keeps the time it was last true). The
 * caller logs the other occurrences at LOG_DEBUG and keeps a count the line can quote.
 */
bool gw_every(uint64_t *last_us, uint64_t now_us, uint64_t interval_us);

/*
 * At most n events in any window of window_us: the sliding window a cloud counts a device's
 * messages in (Aliyun: 30 a second per device). Unlike gw_rate it never lets 2n through in one
 * window after a pause. The ring of the last n event times is allocated at the first take;
 * n = 0: no limit.
 */
struct gw_window {
	uint32_t n;
	uint64_t window_us;
	uint64_t *at; /* the times of the last `used` events, the oldest at `head` */
	uint32_t head;
	uint32_t used;
};
void gw_window_init(struct gw_window *w, uint32_t n, uint64_t window_us);
/* Takes a slot at now_us: returns 0, or the microseconds until one is free (nothing taken). */
uint64_t gw_window_take(struct gw_window *w, uint64_t now_us);
/* The microseconds until a slot is free at now_us, 0 if one is free now; takes nothing. */
uint64_t gw_window_wait(const struct gw_window *w, uint64_t now_us);
/* Returns the slot taken last, for a message that was not sent after all. */
void gw_window_give_back(struct gw_window *w);
void gw_window_free(struct gw_window *w);
