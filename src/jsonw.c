/* SPDX-License-Identifier: MIT */
/*
 * Append-only JSON writer (see gw/jsonw.h). It exists because building a jansson tree and
 * dumping it cost about half of the instructions the daemon spent on a frame: a tree node and
 * a malloc per value, and a printf per number.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "decimal-private.h"
#include "gw/jsonw.h"
#include "gw/util.h"

struct gw_jsonw {
	char *buf;
	size_t len, cap;
	int err;
	unsigned depth;
	/* bit d: the object at depth d has a member already, so the next one needs a comma */
	uint32_t has_member;
};

struct gw_jsonw *gw_jsonw_new(void)
{
	return gw_new0(struct gw_jsonw, 1);
}

struct gw_jsonw *gw_jsonw_free(struct gw_jsonw *w)
{
	if (w) {
		free(w->buf);
		free(w);
	}
	return NULL;
}

void gw_jsonw_reset(struct gw_jsonw *w)
{
	w->len = 0;
	w->err = 0;
	w->depth = 0;
	w->has_member = 0;
}

int gw_jsonw_error(const struct gw_jsonw *w)
{
	return w->err;
}

const char *gw_jsonw_data(const struct gw_jsonw *w, size_t *ret_len)
{
	*ret_len = w->len;
	return w->buf;
}

static void fail(struct gw_jsonw *w, int err)
{
	if (!w->err)
		w->err = err;
}

/* Room for n more bytes; the buffer only grows, so a steady stream of frames stops allocating
 * after the first few. */
static char *reserve(struct gw_jsonw *w, size_t n)
{
	if (n > w->cap - w->len) {
		size_t cap = w->cap ? w->cap : 256;

		while (cap - w->len < n)
			cap *= 2;
		w->buf = realloc(w->buf, cap);
		if (!w->buf)
			abort(); /* as gw_malloc0: systemd brings the daemon back */
		w->cap = cap;
	}
	return w->buf + w->len;
}

static void put(struct gw_jsonw *w, const void *p, size_t n)
{
	memcpy(reserve(w, n), p, n);
	w->len += n;
}

static void put_c(struct gw_jsonw *w, char c)
{
	*reserve(w, 1) = c;
	w->len++;
}

void gw_jsonw_raw(struct gw_jsonw *w, const void *p, size_t n)
{
	if (!w->err)
		put(w, p, n);
}

/* Before a value: the comma between members was written by gw_jsonw_key(). */
static bool begin_value(const struct gw_jsonw *w)
{
	return !w->err;
}

void gw_jsonw_key(struct gw_jsonw *w, const char *key)
{
	uint32_t bit;

	if (w->err)
		return;
	if (w->depth == 0) {
		fail(w, -EINVAL);
		return;
	}
	bit = 1u << (w->depth - 1);
	if (w->has_member & bit)
		put_c(w, ',');
	w->has_member |= bit;
	gw_jsonw_string(w, key);
	if (!w->err)
		put_c(w, ':');
}

void gw_jsonw_object_begin(struct gw_jsonw *w)
{
	if (!begin_value(w))
		return;
	if (w->depth == GW_JSONW_DEPTH) {
		fail(w, -E2BIG);
		return;
	}
	w->depth++;
	w->has_member &= ~(1u << (w->depth - 1));
	put_c(w, '{');
}

void gw_jsonw_object_end(struct gw_jsonw *w)
{
	if (w->err)
		return;
	if (w->depth == 0) {
		fail(w, -EINVAL);
		return;
	}
	w->depth--;
	put_c(w, '}');
}

void gw_jsonw_json(struct gw_jsonw *w, const char *json, size_t n)
{
	if (begin_value(w))
		put(w, json, n);
}

/* The length of the valid UTF-8 sequence of 2 to 4 bytes at p (at most n bytes), or 0. */
static size_t utf8_sequence(const unsigned char *p, size_t n)
{
	unsigned char c = *p;
	uint32_t cp;
	size_t len;

	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0; /* a continuation byte, an overlong C0/C1 or beyond U+10FFFF */
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || (len == 3 && cp < 0x800) ||
	    (len == 4 && cp < 0x10000))
		return 0;
	return len;
}

bool gw_jsonw_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < len;) {
		size_t n = p[i] < 0x80 ? 1 : utf8_sequence(p + i, len - i);

		if (!n)
			return false;
		i += n;
	}
	return true;
}

/* What an ASCII byte needs in a JSON string: 0 nothing, 'u' \u00XX, else the letter after
 * the backslash. Bytes from 0x80 start a UTF-8 sequence, which is checked. */
static const char byte_class[128] = {
	['\0'] = 'u', [0x01] = 'u', [0x02] = 'u', [0x03] = 'u', [0x04] = 'u', [0x05] = 'u',
	[0x06] = 'u', [0x07] = 'u', ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', [0x0b] = 'u',
	['\f'] = 'f', ['\r'] = 'r', [0x0e] = 'u', [0x0f] = 'u', [0x10] = 'u', [0x11] = 'u',
	[0x12] = 'u', [0x13] = 'u', [0x14] = 'u', [0x15] = 'u', [0x16] = 'u', [0x17] = 'u',
	[0x18] = 'u', [0x19] = 'u', [0x1a] = 'u', [0x1b] = 'u', [0x1c] = 'u', [0x1d] = 'u',
	[0x1e] = 'u', [0x1f] = 'u', ['"'] = '"', ['\\'] = '\\',
};

/* One pass: copies, escapes and checks the UTF-8 at once, into room reserved up front. */
static void put_string(struct gw_jsonw *w, const char *str, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = (const unsigned char *)str;
	char *start = reserve(w, 6 * len + 2), *o = start;

	*o++ = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		char k = c < 0x80 ? byte_class[c] : '8';
		size_t n;

		if (!k) {
			*o++ = (char)c;
			continue;
		}
		switch (k) {
		case '8':
			n = utf8_sequence(s + i, len - i);
			if (!n) {
				fail(w, -EINVAL);
				return;
			}
			memcpy(o, s + i, n);
			o += n;
			i += n - 1;
			break;
		case 'u':
			/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): not a string */
			memcpy(o, "\\u00", 4);
			o[4] = hex[c >> 4];
			o[5] = hex[c & 15];
			o += 6;
			break;
		default:
			o[0] = '\\';
			o[1] = k;
			o += 2;
			break;
		}
	}
	*o++ = '"';
	w->len += (size_t)(o - start);
}

void gw_jsonw_string(struct gw_jsonw *w, const char *s)
{
	if (begin_value(w))
		put_string(w, s, strlen(s));
}

void gw_jsonw_key_ascii(struct gw_jsonw *w, const char *key, size_t len)
{
	uint32_t bit;
	char *o;

	if (w->err)
		return;
	if (w->depth == 0) {
		fail(w, -EINVAL);
		return;
	}
	bit = 1u << (w->depth - 1);
	o = reserve(w, len + 4);
	if (w->has_member & bit)
		*o++ = ',';
	w->has_member |= bit;
	*o++ = '"';
	memcpy(o, key, len);
	o += len;
	*o++ = '"';
	*o++ = ':';
	w->len = (size_t)(o - w->buf);
}

/* Writes v's digits and a NUL at buf, which has room for GW_JSONW_INT_MAX bytes. */
static size_t format_u64(char *buf, uint64_t v)
{
	char tmp[GW_JSONW_INT_MAX];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
	return n;
}

size_t gw_jsonw_format_uint(char buf[GW_JSONW_INT_MAX], uint64_t v)
{
	return format_u64(buf, v);
}

size_t gw_jsonw_format_int(char buf[GW_JSONW_INT_MAX], int64_t v)
{
	if (v >= 0)
		return gw_jsonw_format_uint(buf, (uint64_t)v);
	buf[0] = '-';
	/* -(v + 1) + 1 stays in range for INT64_MIN */
	return 1 + format_u64(buf + 1, (uint64_t)(-(v + 1)) + 1);
}

void gw_jsonw_int(struct gw_jsonw *w, int64_t v)
{
	if (begin_value(w))
		w->len += gw_jsonw_format_int(reserve(w, GW_JSONW_INT_MAX), v);
}

void gw_jsonw_uint(struct gw_jsonw *w, uint64_t v)
{
	if (begin_value(w))
		w->len += gw_jsonw_format_uint(reserve(w, GW_JSONW_INT_MAX), v);
}

void gw_jsonw_bool(struct gw_jsonw *w, bool v)
{
	if (begin_value(w))
		put(w, v ? "true" : "false", v ? 4 : 5);
}

/*
 * printf's "%.15g" and then what jansson does to it (jsonp_dtostr): ".0" after a text that
 * would read back as an integer, no '+' and no leading zeros in the exponent.
 */
static int format_real_printf(char *buf, double v)
{
	int n = snprintf(buf, GW_JSONW_REAL_MAX - 2, "%.15g", v);
	char *e, *from;

	if (n < 0 || n >= GW_JSONW_REAL_MAX - 2)
		return -EINVAL;
	e = strchr(buf, 'e');
	if (!e) {
		if (!strchr(buf, '.')) {
			memcpy(buf + n, ".0", 3);
			n += 2;
		}
		return n;
	}
	e++;
	from = e + 1; /* past the exponent's sign */
	if (*e == '-')
		e++;
	while (*from == '0')
		from++;
	memmove(e, from, strlen(from) + 1);
	return (int)strlen(buf);
}

/*
 * The 15 significant digits "%.15g" prints for v (positive, finite, between about 1e-5 and
 * 1e15, not an integer), computed exactly: v = M * 2^-s, so the digits are M * 10^k / 2^s
 * rounded half to even, as glibc's printf rounds the exact binary value. The product fits
 * 128 bits: M < 2^53, 10^k <= 10^19 < 2^64. Returns false outside that range (the caller
 * then asks printf).
 */
static bool digits15(double v, uint64_t *ret_q, int *ret_x)
{
	uint64_t mant;
	int e, k;
	double m = frexp(v, &e); /* v = m * 2^e, 0.5 <= m < 1 */

	mant = (uint64_t)ldexp(m, 53);
	/* decimal exponent: floor(log10(v)), first guess from the binary one */
	if (!gw_decimal_digits(mant, 53 - e, 15, (int)floor((e - 1) * 0.30102999566398120), ret_q,
			       &k))
		return false;
	*ret_x = 14 - k;
	return true;
}

int gw_jsonw_format_real(char buf[GW_JSONW_REAL_MAX], double v)
{
	char digits[16], *p = buf;
	bool neg = signbit(v);
	uint64_t q;
	int x, last;

	if (!isfinite(v))
		return -EINVAL;
	if (neg) {
		*p++ = '-';
		v = -v;
	}
	if (v < 1e15 && v == (double)(uint64_t)v) {
		/* an integer: "%.15g" prints all its digits, jansson adds ".0" */
		p += format_u64(p, (uint64_t)v);
		memcpy(p, ".0", 3);
		return (int)(p + 2 - buf);
	}
	if (!digits15(v, &q, &x) || x < -4 || x > 14)
		return format_real_printf(buf, neg ? -v : v);
	/* fixed notation, as "%g" uses it for exponents -4..14 */
	for (int i = 14; i >= 0; i--, q /= 10)
		digits[i] = (char)('0' + q % 10);
	for (last = 14; last > 0 && digits[last] == '0'; last--)
		;
	if (x >= 0) {
		memcpy(p, digits, (size_t)x + 1);
		p += x + 1;
		if (last > x) {
			*p++ = '.';
			memcpy(p, digits + x + 1, (size_t)(last - x));
			p += last - x;
		} else {
			*p++ = '.';
			*p++ = '0';
		}
	} else {
		*p++ = '0';
		*p++ = '.';
		for (int i = 0; i < -x - 1; i++)
			*p++ = '0';
		memcpy(p, digits, (size_t)last + 1);
		p += last + 1;
	}
	*p = '\0';
	return (int)(p - buf);
}

void gw_jsonw_real(struct gw_jsonw *w, double v)
{
	int n;

	if (!begin_value(w))
		return;
	n = gw_jsonw_format_real(reserve(w, GW_JSONW_REAL_MAX), v);
	if (n < 0)
		fail(w, n);
	else
		w->len += (size_t)n;
}
