/* SPDX-License-Identifier: MIT */
/* Allocation, backoff, time, template, error-text and character helpers shared by every module. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "gw/util.h"

void *gw_malloc0(size_t size)
{
	void *p = calloc(1, size ? size : 1);

	if (!p) {
		fputs("sensorgw: out of memory\n", stderr);
		abort();
	}
	return p;
}

void *gw_realloc_array(void *p, size_t n, size_t size)
{
	void *q = reallocarray(p, n ? n : 1, size ? size : 1);

	if (!q) {
		fputs("sensorgw: out of memory\n", stderr);
		abort();
	}
	return q;
}

bool gw_is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool gw_has_length(const char *s, size_t min, size_t max)
{
	size_t n;

	if (!s)
		return false;
	n = strnlen(s, max + 1);
	return n >= min && n <= max;
}

void gw_why_set(char *why, size_t why_size, const char *fmt, ...)
{
	va_list ap;

	if (!why || !why_size)
		return;
	va_start(ap, fmt);
	vsnprintf(why, why_size, fmt, ap);
	va_end(ap);
}

void gw_why_append(char *why, size_t why_size, const char *fmt, ...)
{
	size_t n = why ? strnlen(why, why_size) : 0;
	va_list ap;

	if (!why || n + 1 >= why_size)
		return;
	va_start(ap, fmt);
	vsnprintf(why + n, why_size - n, fmt, ap);
	va_end(ap);
}

bool gw_streq_null(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

char *gw_strdup(const char *s)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d) {
		fputs("sensorgw: out of memory\n", stderr);
		abort();
	}
	return d;
}

void gw_strset(char **p, const char *s)
{
	char *n = s && s[0] ? gw_strdup(s) : NULL;

	free(*p);
	*p = n;
}

void gw_freep(void *p)
{
	void **pp = p;

	free(*pp);
	*pp = NULL;
}

char *gw_secret_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
	return NULL;
}

uint32_t gw_backoff_next(uint32_t prev, uint32_t min, uint32_t max)
{
	uint64_t d;

	if (min == 0)
		min = 1;
	if (max < min)
		max = min;
	d = prev == 0 ? min : (uint64_t)prev * 2;
	if (d < min)
		d = min;
	if (d > max)
		d = max;
	return (uint32_t)d;
}

uint32_t gw_backoff_jitter(uint32_t delay)
{
	uint32_t r = 0;
	uint32_t half = delay / 2;
	uint32_t span = delay - half;

	/* getrandom() without flags never blocks after boot-time seeding; on failure the delay
	 * simply has no jitter, which is still correct. */
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		return delay;
	return half + r % (span + 1);
}

int64_t gw_now_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t gw_now_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

int gw_template_expand(const char *tmpl, gw_template_lookup_fn lookup, void *user_data, char *buf,
		       size_t size)
{
	size_t n = 0;

	if (size == 0)
		return -ENOBUFS;
	for (const char *p = tmpl; *p;) {
		const char *val;
		const char *end;
		size_t vlen;

		if (*p != '{') {
			if (n + 1 >= size)
				return -ENOBUFS;
			buf[n++] = *p++;
			continue;
		}
		end = strchr(p, '}');
		if (!end)
			return -EINVAL;
		val = lookup(p + 1, (size_t)(end - p - 1), user_data);
		if (!val)
			return -EINVAL;
		vlen = strlen(val);
		if (n + vlen >= size)
			return -ENOBUFS;
		memcpy(buf + n, val, vlen);
		n += vlen;
		p = end + 1;
	}
	buf[n] = '\0';
	return (int)n;
}

struct check_ctx {
	const char *const *allowed;
};

static const char *check_lookup(const char *name, size_t len, void *user_data)
{
	const struct check_ctx *ctx = user_data;

	for (const char *const *a = ctx->allowed; *a; a++)
		if (strlen(*a) == len && memcmp(*a, name, len) == 0)
			return "";
	return NULL;
}

int gw_template_check(const char *tmpl, const char *const *allowed)
{
	struct check_ctx ctx = { .allowed = allowed };
	char buf[1024];
	int r;

	r = gw_template_expand(tmpl, check_lookup, &ctx, buf, sizeof(buf));
	return r == -ENOBUFS ? -EINVAL : (r < 0 ? r : 0);
}

static size_t seqset_find(const struct gw_seqset *s, uint64_t seq)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->v[mid] < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool gw_seqset_has(const struct gw_seqset *s, uint64_t seq)
{
	size_t i = seqset_find(s, seq);

	return i < s->n && s->v[i] == seq;
}

void gw_seqset_add(struct gw_seqset *s, uint64_t seq)
{
	size_t i = seqset_find(s, seq);

	if (i < s->n && s->v[i] == seq)
		return;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->v = gw_realloc_array(s->v, s->cap, sizeof(*s->v));
	}
	memmove(s->v + i + 1, s->v + i, (s->n - i) * sizeof(*s->v));
	s->v[i] = seq;
	s->n++;
}

void gw_seqset_prune(struct gw_seqset *s, uint64_t below)
{
	size_t i = seqset_find(s, below);

	if (i == 0)
		return; /* also keeps a never-allocated array away from memmove */
	memmove(s->v, s->v + i, (s->n - i) * sizeof(*s->v));
	s->n -= i;
}

void gw_seqset_free(struct gw_seqset *s)
{
	free(s->v);
	*s = (struct gw_seqset){ 0 };
}

void gw_rate_init(struct gw_rate *r, uint32_t per_s, uint64_t now_us)
{
	gw_rate_init_burst(r, per_s, per_s, now_us);
}

void gw_rate_init_burst(struct gw_rate *r, uint32_t per_s, uint32_t burst, uint64_t now_us)
{
	if (burst == 0)
		burst = 1;
	*r = (struct gw_rate){ .per_s = per_s, .burst = burst, .tokens = burst, .at_us = now_us };
}

uint64_t gw_rate_take(struct gw_rate *r, uint64_t now_us)
{
	double rate = r->per_s;

	if (r->per_s == 0)
		return 0;
	r->tokens += (double)(now_us - r->at_us) * rate / 1e6;
	r->at_us = now_us;
	if (r->tokens > r->burst)
		r->tokens = r->burst;
	if (r->tokens < 1.0)
		return (uint64_t)((1.0 - r->tokens) * 1e6 / rate) + 1;
	r->tokens -= 1.0;
	return 0;
}

void gw_rate_give_back(struct gw_rate *r)
{
	if (r->per_s)
		r->tokens += 1.0;
}

bool gw_every(uint64_t *last_us, uint64_t now_us, uint64_t interval_us)
{
	if (*last_us && now_us - *last_us < interval_us)
		return false;
	/* 0 means "never": a clock reading of 0 itself is moved off it */
	*last_us = now_us ? now_us : 1;
	return true;
}

void gw_window_init(struct gw_window *w, uint32_t n, uint64_t window_us)
{
	*w = (struct gw_window){ .n = n, .window_us = window_us };
}

uint64_t gw_window_wait(const struct gw_window *w, uint64_t now_us)
{
	uint64_t free_at;

	if (w->n == 0 || w->used < w->n)
		return 0;
	free_at = w->at[w->head] + w->window_us;
	return free_at > now_us ? free_at - now_us : 0;
}

uint64_t gw_window_take(struct gw_window *w, uint64_t now_us)
{
	uint64_t wait = gw_window_wait(w, now_us);

	if (w->n == 0)
		return 0;
	if (wait)
		return wait;
	if (!w->at)
		w->at = gw_new0(uint64_t, w->n);
	if (w->used == w->n) {
		/* the oldest left the window: its slot takes the newest */
		w->at[w->head] = now_us;
		w->head = (w->head + 1) % w->n;
	} else {
		w->at[(w->head + w->used) % w->n] = now_us;
		w->used++;
	}
	return 0;
}

void gw_window_give_back(struct gw_window *w)
{
	/* the newest goes; an oldest overwritten by it had left the window anyway */
	if (w->n && w->used)
		w->used--;
}

void gw_window_free(struct gw_window *w)
{
	free(w->at);
	w->at = NULL;
	w->used = 0;
	w->head = 0;
}

int gw_bprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= size)
		return -ENOBUFS;
	return n;
}
