/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Tencent Cloud IoT Explorer dynamic registration of one device (一型一密, docs/protocols/tencent.md
 * §2), on the sd-event loop: POST the signed request with the ProductSecret over HTTPS, decrypt the
 * reply, and store the PSK (or certificate and key) durably in the credential store before anyone
 * can use it. Re-registering a device that has not connected yet issues a NEW secret and
 * invalidates the old one, and once it has connected registration is refused
 * (docs/protocols/tencent.md §2.1): so the caller loads the store first (gw_credstore_load) and
 * starts a registration only when it has no credential. This module never looks at the store before
 * it registers.
 *
 *   cfg->register_api = GW_TENCENT_DYNREG_V2      POST /device/register, X-TC-* headers
 *                                                 (docs/protocols/tencent.md §2.1), signed with
 *                                                 cfg->tc_sign_method
 *   cfg->register_api = GW_TENCENT_DYNREG_LEGACY  POST /register/dev, signed body
 *                                                 (docs/protocols/tencent.md §2.2); always
 *                                                 HMAC-SHA1, whatever tc_sign_method says
 *
 * The URL is cfg->register_url when set (https only, the full URL with its path: a test cloud,
 * a proxy), else the registration host of cfg->region (docs/protocols/tencent.md §1.5). A v2
 * request is signed for the URL's host name without a port (what the PY SDK signs; on the real
 * platform, port 443, that is exactly the Host header sent, as docs/protocols/tencent.md §2.1
 * asks). The TLS peer is verified with the registration host's own trust, not the MQTT root
 * (docs/protocols/tencent.md §1.6): gw_cloud_reg_https_ca() of cfg->ca_file, so the bundled
 * registration roots (GW_TENCENT_REGISTER_CA_FILE: DigiCert Global Root CA for the v2 host, the
 * Iothub root for the legacy one) when ca_file is the bundled MQTT root or unset, the system's CA
 * bundle when those cannot be read, and an administrator's ca_file as it is; redirects are never
 * followed. A peer that does not verify is FAILED with untrusted set.
 *
 * Outcomes: STORED (GW_CRED_PSK or GW_CRED_CERTIFICATE of cloud GW_CRED_CLOUD_TENCENT, saved with
 * gw_credstore_save()); REFUSED (the platform said no: a v2 Response.Error or a non-zero legacy
 * code; the caller marks the device with gw_credstore_mark_refused() and does not retry in a
 * loop); FAILED (no connection, TLS, timeout, an HTTP status other than 200, a malformed,
 * truncated or oversized reply, a payload that does not decrypt with the ProductSecret, or the
 * credential could not be stored, in which case it is not used either; retry with backoff).
 * The module logs the start of the request; the outcome is for the caller to log. The timer,
 * the outcome and the storing are those of the cloud core's registration job (gw/cloudreg.h).
 */

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "gw/config.h"
#include "gw/credstore.h"
#include "gw/http.h"
#include "gw/tencent_login.h"
#include "gw/tencent_regmsg.h"

/* The protocol module's HMAC and registration API for the uplink's sign_method and
 * register_api (the register_api enums agree, which src/cloud/tencent_config.c asserts). */
static inline enum gw_tencent_sign_method
gw_tencent_config_sign_method(const struct gw_config_uplink *cfg)
{
	return cfg->cloud.sign_method == GW_SIGN_HMAC_SHA1 ? GW_TENCENT_HMAC_SHA1 :
							     GW_TENCENT_HMAC_SHA256;
}

static inline enum gw_tencent_dynreg_api
gw_tencent_config_register_api(const struct gw_config_uplink *cfg)
{
	return (enum gw_tencent_dynreg_api)cfg->tencent.register_api;
}

/* The whole request, from connecting to the last byte of the reply. */
#define GW_TENCENT_REGISTER_TIMEOUT_MS 15000

struct gw_tencent_register;

enum gw_tencent_register_result {
	GW_TENCENT_REGISTER_STORED,
	GW_TENCENT_REGISTER_REFUSED,
	GW_TENCENT_REGISTER_FAILED,
};

struct gw_tencent_register_outcome {
	enum gw_tencent_register_result result;
	const char *why;            /* REFUSED, FAILED: one line without secrets; else "" */
	const struct gw_cred *cred; /* STORED: what was stored; valid during the callback */
	bool untrusted;             /* FAILED: the registration host did not verify against the
				     * trust in use (gw/cloudreg.h) */
};

/* Called exactly once per started registration, from the loop (never from within
 * gw_tencent_register_start()), unless it was cancelled; reg is freed when it returns. */
typedef void (*gw_tencent_register_fn)(struct gw_tencent_register *reg,
				       const struct gw_tencent_register_outcome *o,
				       void *user_data);

/*
 * Starts registering device (a valid Tencent DeviceName and credential-store name) for the
 * uplink cfg: product_id, product_secret (16.. characters), region (NULL: the default),
 * register_url, ca_file, tc_sign_method and register_api are read. event, http, store and cfg
 * are borrowed and must outlive the registration; device is copied. Returns 0 with the
 * registration in *ret, or -EINVAL (a field above is missing or invalid, or done is NULL) or
 * -errno from sd-event; *ret is untouched on failure and done is not called.
 */
int gw_tencent_register_start(sd_event *event, struct gw_http *http, struct gw_credstore *store,
			      const struct gw_config_uplink *cfg, const char *device,
			      gw_tencent_register_fn done, void *user_data,
			      struct gw_tencent_register **ret);

/* Stops a running registration (its request is cancelled, nothing is stored from now on) and
 * frees it without calling done. Not from within done. Accepts NULL; returns NULL. */
struct gw_tencent_register *gw_tencent_register_cancel(struct gw_tencent_register *reg);

/*
 * The host a v2 request to url is signed for: the URL's host name, without user info or port,
 * as libcurl parses it ("https://localhost:8443/device/register" → "localhost"). Pure; exposed
 * for the unit tests. Returns the length, -EINVAL (not an https:// URL, no host, or user info,
 * which could hold a password: the URL is logged), -ENOBUFS or -ENOMEM.
 */
int gw_tencent_register_signed_host(const char *url, char *buf, size_t size);
