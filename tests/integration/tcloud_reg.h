/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The loopback Tencent test cloud (tests/cloud/tencent_cloud.py, tests/cloud/TENCENT.md) for
 * the dynamic-registration tests: its products, its control API's device and fault commands.
 * Starting it, cl_ctl(), cl_wait() and cl_count() come from cloud.h. Every call fails the
 * running Check test on error. Needs fx_setup().
 */

#include <jansson.h>

#include "cloud.h"

#define TC_PID "CS0SLTKSYA"          /* authType psk, registerType 1 */
#define TC_PS fx_secret("tencent-product") /* testProductSecret123 outside canary mode */
#define TC_CERT_PID "CERTPROD01"     /* authType cert, registerType 1 */
#define TC_CERT_PS fx_secret("tencent-product-cert") /* certProductSecret456 */
/* The PSK in the success bodies of the cloud's truncated, short_body and drip faults, and the
 * one its plain-http listener hands out: neither may ever be stored. */
#define TC_INJECTED_PSK "SU5KRUNURUQtTk9ULVVTRQ=="
#define TC_INSECURE_PSK "SU5TRUNVUkUtSFRUUCEhIQ=="

/* The cloud's plain-http port (the target of its redirect_http fault). */
extern int tc_http_port;

/* Starts the cloud with TC_PID (pre-created devices given as JSON array members, e.g.
 * "\"dev1\", \"dev2\"") and TC_CERT_PID (devices cert_devices). */
void tc_start(const char *psk_devices, const char *cert_devices);
/* {"productId": pid, "deviceName": dn} */
json_t *tc_dev_args(const char *pid, const char *dn);
/* The cloud's summary of a device (json_decref it); with_cert adds "cert". */
json_t *tc_device(const char *pid, const char *dn, bool with_cert);
/* A copy of the PSK the cloud holds for dn of TC_PID (free it); NULL when it has none. */
char *tc_device_psk(const char *dn);
/* The next count (0: every) HTTPS registration requests get fault mode; opts (stolen, may be
 * NULL) adds the mode's options. mode "none" clears it. */
void tc_https_fail(const char *mode, int count, json_t *opts);
/* set_product: pid plus the fields of fields (stolen). */
void tc_set_product(const char *pid, json_t *fields);
/* The register_url of the cloud's HTTPS listener for the v2 (legacy false) or legacy API. */
const char *tc_register_url(bool legacy);
