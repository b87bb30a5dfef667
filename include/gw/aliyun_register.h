/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Aliyun dynamic registration of one device (一型一密), on the sd-event loop: fetch the
 * device's credential with the ProductSecret and store it durably in the credential store
 * before anyone can use it (losing an issued credential can brick the device:
 * docs/protocols/aliyun.md §1).
 *
 *   auth = register, register_via = https  HTTPS POST /auth/register/device
 *                                          (docs/protocols/aliyun.md §2)
 *   auth = register, register_via = mqtt   MQTT CONNECT authType=register, push /ext/register
 *                                          (docs/protocols/aliyun.md §3)
 *   auth = register, register_via = auto   HTTPS; in the same attempt MQTT when HTTPS failed
 *                                          without a refusal (transport, TLS, timeout, an HTTP
 *                                          status other than 200, a malformed reply)
 *   auth = regnwl                          MQTT CONNECT authType=regnwl, push /ext/regnwl
 *                                          (docs/protocols/aliyun.md §3)
 *
 * The HTTPS registration verifies iot-auth with gw_cloud_reg_https_ca() of ca_file: the bundled
 * roots (GW_ALIYUN_REGISTER_CA_FILE, the same bundle as MQTT: docs/protocols/aliyun.md §2) unless
 * the administrator named another ca_file. The MQTT registration is a short-lived libmosquitto session (TLS with ca_file and host name
 * verification, no SUBSCRIBE, no reconnect) that waits at most GW_ALIYUN_REGISTER_MQTT_MS for
 * the platform's one push, stores what it carries, DISCONNECTs and closes.
 *
 * Outcomes: STORED (a DeviceSecret, or ClientID + DeviceToken as GW_CRED_DEVICE_TOKEN, saved
 * with gw_credstore_save()); REFUSED (the platform said no: an HTTPS reply code other than 200,
 * or CONNACK 4/5 on the registration connection; asking again soon will not change that);
 * FAILED (no connection, TLS, timeout, malformed answer, or the credential could not be
 * stored, in which case it is not used either). The module logs the start of each transport
 * and a fallback; the final outcome is for the caller to log. The timer, the outcome and the
 * storing are those of the cloud core's registration job (gw/cloudreg.h).
 */

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "gw/aliyun_common.h"
#include "gw/config.h"
#include "gw/credstore.h"
#include "gw/http.h"

/* The protocol module's HMAC for the uplink's sign_method (the two enums agree, which
 * src/cloud/aliyun_config.c asserts). */
static inline enum gw_aliyun_sign_method
gw_aliyun_config_sign_method(const struct gw_config_uplink *cfg)
{
	return (enum gw_aliyun_sign_method)cfg->cloud.sign_method;
}

/* Longest wait from the start of the MQTT registration connection to the platform's push. */
#define GW_ALIYUN_REGISTER_MQTT_MS 10000

struct gw_aliyun_register;

enum gw_aliyun_register_result {
	GW_ALIYUN_REGISTER_STORED,
	GW_ALIYUN_REGISTER_REFUSED,
	GW_ALIYUN_REGISTER_FAILED,
};

struct gw_aliyun_register_outcome {
	enum gw_aliyun_register_result result;
	const char *via;            /* "HTTPS" or "MQTT": the transport that decided */
	const char *why;            /* REFUSED, FAILED: one line without secrets; else "" */
	const struct gw_cred *cred; /* STORED: what was stored; valid during the callback */
	bool untrusted;             /* FAILED over HTTPS: the registration host did not verify
				     * against the trust in use (gw/cloudreg.h) */
};

/* Called exactly once per started registration, from the loop (never from within
 * gw_aliyun_register_start()), unless it was cancelled; reg is freed when it returns. */
typedef void (*gw_aliyun_register_fn)(struct gw_aliyun_register *reg,
				      const struct gw_aliyun_register_outcome *o,
				      void *user_data);

/*
 * Starts registering device (a valid credential-store name) for the aliyun uplink cfg
 * (auth = register or regnwl, product_secret set). event, http, store and cfg are borrowed
 * and must outlive the registration; device is copied. Returns 0 with the registration in
 * *ret, or -EINVAL (cfg is not a dynamic mode, bad name) or -errno from sd-event; *ret is
 * untouched on failure and done is not called.
 */
int gw_aliyun_register_start(sd_event *event, struct gw_http *http, struct gw_credstore *store,
			     const struct gw_config_uplink *cfg, const char *device,
			     gw_aliyun_register_fn done, void *user_data,
			     struct gw_aliyun_register **ret);

/* Stops a running registration (its connection is closed, nothing is stored from now on) and
 * frees it without calling done. Not from within done. Accepts NULL; returns NULL. */
struct gw_aliyun_register *gw_aliyun_register_cancel(struct gw_aliyun_register *reg);
