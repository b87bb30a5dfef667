/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Between the two clouds' protocol modules (aliyun_{login,regmsg,msg}.c and
 * tencent_{login,regmsg,msg}.c), not for the drivers: the pure helpers both clouds need in the
 * same form, so that each exists once. Name tables, printable-ASCII checks, random
 * identifiers, HMAC, hex, base64 and the thing models' bools. JSON member readers and the
 * compact writer are in gw/json.h.
 *
 * Pure: no files, no sockets, no logging; the only system call is getrandom(2) in
 * gw_proto_random_alnum(). Functions that can fail return -errno.
 */

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

/* The index of s in names[0..n), compared case-sensitively; -EINVAL for NULL or unknown s. */
int gw_proto_lookup(const char *const *names, size_t n, const char *s);
/* names[i], or NULL when i is not below n. */
const char *gw_proto_name(const char *const *names, size_t n, unsigned int i);

/*
 * s[0..n) (n bytes, NULs included) is min..max characters of printable ASCII, a space only
 * when space is set, and none of forbid (NULL: nothing more is forbidden). s NULL is false.
 * gw_proto_printable() looks at the NUL-terminated s (at most max + 1 bytes of it).
 */
bool gw_proto_printable_n(const char *s, size_t n, size_t min, size_t max, bool space,
			  const char *forbid);
bool gw_proto_printable(const char *s, size_t min, size_t max, bool space, const char *forbid);

/*
 * n unbiased random characters of [A-Za-z0-9] and a NUL into buf (n + 1 bytes). Returns 0 or
 * -errno from getrandom(2).
 */
int gw_proto_random_alnum(char *buf, size_t n);

/* The digest of an HMAC sign method name: "hmacsha256", "hmacsha1", "hmacmd5"; else NULL. */
const EVP_MD *gw_proto_hmac_md(const char *method);

/*
 * HMAC_md(key, msg) into mac (EVP_MAX_MD_SIZE bytes). Returns its length in bytes, -EINVAL
 * (md NULL, key longer than INT_MAX) or -EIO (libcrypto refused, e.g. MD5 in FIPS mode).
 */
int gw_proto_hmac(const EVP_MD *md, const void *key, size_t key_len, const char *msg,
		  size_t msg_len, unsigned char *mac);

/* in[0..n) as hex digits (upper-case when upper) and a NUL into out (2 * n + 1 bytes). */
void gw_proto_hex(const unsigned char *in, size_t n, bool upper, char *out);

/*
 * Base64 (RFC 4648 §4). Decoding takes canonical text only: '=' padding to a multiple of 4,
 * nothing else, and the unused low bits of the last character zero, so that one text means
 * one key. Returns the decoded length, -EBADMSG (not canonical base64) or -ENOBUFS (more than
 * size bytes). Encoding writes the text and a NUL; returns its length or -ENOBUFS.
 */
int gw_proto_base64_decode(const char *s, size_t n, unsigned char *out, size_t size);
int gw_proto_base64_encode(const unsigned char *in, size_t n, char *out, size_t size);

/*
 * v as a thing model wants it: every true and false, at any depth, as the integers 1 and 0
 * (both clouds' bool type; docs/protocols/aliyun.md §5, docs/protocols/tencent.md §3.1). A new
 * reference: v itself when it holds no bool, else a changed deep copy (v is not touched).
 * NULL for NULL v or when memory runs out.
 */
json_t *gw_proto_bools_as_ints(json_t *v);
