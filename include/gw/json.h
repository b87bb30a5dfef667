/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Strict JSON reading shared by the cloud drivers' pure parsers (aliyun.c, tencent.c): replies
 * and pushes from a server are untrusted, may sit next to secrets, and end up in log lines.
 */

#include <jansson.h>
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
