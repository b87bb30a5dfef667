/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Between the three parts of the Tencent protocol module, not for callers outside them:
 * tencent_login.c owns the region table, whose MQTT domains the login uses and whose gateway
 * hosts the registration request (tencent_regmsg.c) is sent to, and the digest behind each
 * sign method. Pure, as gw/tencent.h says.
 */

#include "gw/json.h"
#include "gw/tencent.h"
#include "gw/util.h"

#include "proto.h"

/* The reason buffers of gw/tencent.h hold GW_TENCENT_REASON_MAX bytes (or are NULL). */
#define set_reason(reason, ...) gw_why_set((reason), GW_TENCENT_REASON_MAX, __VA_ARGS__)

/* One region of docs/protocols/tencent.md §1.5 and its hosts. */
struct gw_tencent_region {
	const char *name;
	const char *alias;
	const char *mqtt_domain;
	const char *dynreg_host;
	const char *legacy_dynreg_host;
};

/* The region called name (or its alias); NULL means the default region. NULL when unknown. */
const struct gw_tencent_region *gw_tencent_find_region(const char *name);

/* The digest of sign method m (HMAC and the body hash of a registration); NULL when unknown. */
static inline const EVP_MD *gw_tencent_sign_md(enum gw_tencent_sign_method m)
{
	return gw_proto_hmac_md(gw_tencent_name_sign_method(m));
}

/* The JSON member readers of gw/json.h with the reason buffers of gw/tencent.h. */
static inline const char *get_string(json_t *obj, const char *where, const char *name,
				     size_t *len, char *reason)
{
	return gw_json_get_string(obj, where, name, len, reason, GW_TENCENT_REASON_MAX);
}

static inline int get_int(json_t *obj, const char *where, const char *name, bool required,
			  json_int_t min, json_int_t max, json_int_t *ret, char *reason)
{
	return gw_json_get_int(obj, where, name, required, min, max, ret, reason,
			       GW_TENCENT_REASON_MAX);
}

static inline int get_text(json_t *obj, const char *where, const char *name, char *dst,
			   size_t size, char *reason)
{
	return gw_json_get_text(obj, where, name, dst, size, reason, GW_TENCENT_REASON_MAX);
}

static inline int load_object(const char *buf, size_t len, size_t max, json_t **ret,
			      char *reason)
{
	return gw_json_load_object(buf, len, max, ret, reason, GW_TENCENT_REASON_MAX);
}

static inline json_t *get_object(json_t *obj, const char *where, const char *name, char *reason)
{
	return gw_json_get_object(obj, where, name, reason, GW_TENCENT_REASON_MAX);
}
