/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Strict JSON reading and compact writing shared by the two clouds' pure protocol modules
 * (src/cloud/aliyun_*.c, tencent_*.c): replies and pushes from a server are untrusted, may sit
 * next to secrets, and end up in log lines. Member readers name a member as where + name
 * ("data." + "deviceSecret") in their error text, which follows gw/util.h ("Error text").
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * The kind of a jansson parse error as a short fixed text. jansson's own error text quotes the
 * input near the error, which may be part of a secret, so only the kind (and the caller's
 * offset) ever goes into a reason.
 */
const char *gw_json_error_kind(const json_error_t *err);

/*
 * Parses buf[0..len) as one JSON object, duplicate keys refused. Returns 0 with a new
 * reference in *ret; -EMSGSIZE when len > max; -EBADMSG (empty, not JSON, not an object) with
 * why set (gw/util.h, "Error text"); -ENOMEM. *ret is NULL on error.
 */
int gw_json_load_object(const char *buf, size_t len, size_t max, json_t **ret, char *why,
			size_t why_size);

/*
 * Copies a server-chosen text of n bytes (UTF-8, as jansson checked) for logs: cut at a
 * character boundary to fit size (> 0) with its NUL, control characters as '?'.
 */
void gw_json_copy_text(char *dst, size_t size, const char *s, size_t n);

/*
 * A required string member: returns it (borrowed; *len its length, which may hide a NUL) or
 * NULL with why "no \"<where><name>\"" or "\"<where><name>\" is not a string".
 */
const char *gw_json_get_string(json_t *obj, const char *where, const char *name, size_t *len,
			       char *why, size_t why_size);

/*
 * An integer member within min..max: returns 1 with *ret set, 0 when it is absent and not
 * required (*ret untouched), -EBADMSG when it is missing, not an integer or out of range.
 */
int gw_json_get_int(json_t *obj, const char *where, const char *name, bool required,
		    json_int_t min, json_int_t max, json_int_t *ret, char *why, size_t why_size);

/*
 * An optional string member copied for logs as gw_json_copy_text() does; absent leaves dst
 * empty. Returns 0 or -EBADMSG (not a string).
 */
int gw_json_get_text(json_t *obj, const char *where, const char *name, char *dst, size_t size,
		     char *why, size_t why_size);

/* A required object member: returns it (borrowed) or NULL with why set. */
json_t *gw_json_get_object(json_t *obj, const char *where, const char *name, char *why,
			   size_t why_size);

/*
 * jansson frees strings without wiping them: a secret parsed out of a tree is wiped in the
 * tree (which owns its own copy) before the tree goes. Does nothing when name is no string.
 */
void gw_json_wipe_member(json_t *obj, const char *name);

/*
 * o (borrowed) as compact JSON, reals with 15 significant digits, in a malloc'd NUL-terminated
 * string (*ret, length *ret_len when ret_len is not NULL). Returns 0, -ENOMEM (o NULL too), or
 * -EMSGSIZE when the text is longer than max (*ret untouched, *ret_len the length it would
 * have had).
 */
int gw_json_dump(json_t *o, size_t max, char **ret, size_t *ret_len);
