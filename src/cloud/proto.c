/* SPDX-License-Identifier: MIT */
/*
 * Pure helpers shared by the Aliyun and Tencent protocol modules: name tables, printable-ASCII
 * checks, random identifiers, HMAC, hex, base64 and the thing models' bools. The contract is in
 * proto.h.
 */

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/hmac.h>

#include "proto.h"

int gw_proto_lookup(const char *const *names, size_t n, const char *s)
{
	size_t i;

	for (i = 0; s && i < n; i++)
		if (names[i] && strcmp(s, names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

const char *gw_proto_name(const char *const *names, size_t n, unsigned int i)
{
	return i < n ? names[i] : NULL;
}

bool gw_proto_printable_n(const char *s, size_t n, size_t min, size_t max, bool space,
			  const char *forbid)
{
	size_t i;

	if (!s || n < min || n > max)
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] < (space ? ' ' : '!') || s[i] > '~')
			return false;
		if (forbid && strchr(forbid, s[i]))
			return false;
	}
	return true;
}

bool gw_proto_printable(const char *s, size_t min, size_t max, bool space, const char *forbid)
{
	return s && gw_proto_printable_n(s, strnlen(s, max + 1), min, max, space, forbid);
}

int gw_proto_random_alnum(char *buf, size_t n)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char bytes[64];
	size_t got_n = 0, i = sizeof(bytes);
	ssize_t got;

	while (got_n < n) {
		if (i == sizeof(bytes)) {
			got = getrandom(bytes, sizeof(bytes), 0);
			if (got < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			if ((size_t)got != sizeof(bytes))
				continue;
			i = 0;
		}
		/* 248 = 4 * 62: the rest would make the first eight characters likelier. */
		if (bytes[i] < 248)
			buf[got_n++] = alphabet[bytes[i] % 62];
		i++;
	}
	buf[n] = '\0';
	return 0;
}

const EVP_MD *gw_proto_hmac_md(const char *method)
{
	if (!method)
		return NULL;
	if (strcmp(method, "hmacsha256") == 0)
		return EVP_sha256();
	if (strcmp(method, "hmacsha1") == 0)
		return EVP_sha1();
	if (strcmp(method, "hmacmd5") == 0)
		return EVP_md5();
	return NULL;
}

int gw_proto_hmac(const EVP_MD *md, const void *key, size_t key_len, const char *msg,
		  size_t msg_len, unsigned char *mac)
{
	unsigned int n = 0;

	if (!md || key_len > INT_MAX)
		return -EINVAL;
	if (!HMAC(md, key, (int)key_len, (const unsigned char *)msg, msg_len, mac, &n))
		return -EIO;
	return (int)n;
}

void gw_proto_hex(const unsigned char *in, size_t n, bool upper, char *out)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int gw_proto_base64_decode(const char *s, size_t n, unsigned char *out, size_t size)
{
	size_t i, o = 0;

	if (n == 0 || n % 4 != 0 || n / 4 * 3 > INT_MAX)
		return -EBADMSG;
	for (i = 0; i < n; i += 4) {
		bool last = i + 4 == n;
		int v[4], k, pad = 0;
		uint32_t bits = 0;

		for (k = 0; k < 4; k++) {
			if (last && k >= 2 && s[i + k] == '=') {
				pad++;
				v[k] = 0;
				continue;
			}
			v[k] = pad ? -1 : b64_value(s[i + k]);
			if (v[k] < 0)
				return -EBADMSG;
		}
		bits = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
		       (uint32_t)v[3];
		if ((pad == 1 && (bits & 0xff)) || (pad == 2 && (bits & 0xffff)))
			return -EBADMSG;
		if (o + 3 - (size_t)pad > size)
			return -ENOBUFS;
		out[o++] = (unsigned char)(bits >> 16);
		if (pad < 2)
			out[o++] = (unsigned char)(bits >> 8);
		if (pad < 1)
			out[o++] = (unsigned char)bits;
	}
	return (int)o;
}

int gw_proto_base64_encode(const unsigned char *in, size_t n, char *out, size_t size)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;

	if ((n + 2) / 3 * 4 + 1 > size || (n + 2) / 3 * 4 > INT_MAX)
		return -ENOBUFS;
	for (i = 0; i < n; i += 3) {
		uint32_t bits = (uint32_t)in[i] << 16;

		if (i + 1 < n)
			bits |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			bits |= in[i + 2];
		out[o++] = alphabet[bits >> 18 & 63];
		out[o++] = alphabet[bits >> 12 & 63];
		out[o++] = i + 1 < n ? alphabet[bits >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? alphabet[bits & 63] : '=';
	}
	out[o] = '\0';
	return (int)o;
}

static bool has_bool(json_t *v)
{
	const char *key;
	json_t *m;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_TRUE:
	case JSON_FALSE:
		return true;
	case JSON_OBJECT:
		json_object_foreach(v, key, m)
			if (has_bool(m))
				return true;
		return false;
	case JSON_ARRAY:
		json_array_foreach(v, i, m)
			if (has_bool(m))
				return true;
		return false;
	case JSON_STRING:
	case JSON_INTEGER:
	case JSON_REAL:
	case JSON_NULL:
		return false;
	}
	return false;
}

/* The members and elements of v (a copy of ours), bools replaced in place; -ENOMEM. */
static int bools_to_ints(json_t *v)
{
	int fail = 0;
	json_t *m;
	size_t i;

	if (json_is_object(v)) {
		for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
			m = json_object_iter_value(it);
			if (json_is_boolean(m))
				fail |= json_object_iter_set_new(v, it, json_integer(json_is_true(m)));
			else if (bools_to_ints(m) < 0)
				fail = -1;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, m) {
			if (json_is_boolean(m))
				fail |= json_array_set_new(v, i, json_integer(json_is_true(m)));
			else if (bools_to_ints(m) < 0)
				fail = -1;
		}
	}
	return fail ? -ENOMEM : 0;
}

json_t *gw_proto_bools_as_ints(json_t *v)
{
	json_t *copy;

	if (!v || !has_bool(v))
		return json_incref(v);
	if (json_is_boolean(v))
		return json_integer(json_is_true(v));
	copy = json_deep_copy(v);
	if (copy && bools_to_ints(copy) < 0) {
		json_decref(copy);
		return NULL;
	}
	return copy;
}
