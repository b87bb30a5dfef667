/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The loopback Tencent test cloud (tests/cloud/tencent_cloud.py, see tests/cloud/TENCENT.md)
 * from the integration tests: start it with one product whose data template holds the six
 * seed sensors (and a certificate product for the registration tests), drive its control
 * API (devices, products, HTTPS faults), provision PSKs and certificates and write the
 * daemon's tencent config. Every call fails the running Check test on error. Used with
 * fixture.h (fx_setup/teardown).
 */

#include <check.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "fixture.h"

#define TC_PID "CS0SLTKSYA"
#define TC_PS fx_secret("tencent-product") /* testProductSecret123 outside canary mode */
#define TC_DN "dev-n1" /* device_name = dev-{port} on [port n1] */
#define TC_PSK fx_secret("tencent-psk") /* IyXmUW5sU/q1vnb5yzTkeQ== outside canary mode */
#define TC_CERT_PID "CERTPROD01"     /* authType cert, registerType 1 */
#define TC_CERT_PS fx_secret("tencent-product-cert") /* certProductSecret456 */
/* The PSK in the success bodies of the cloud's truncated, short_body and drip faults, and the
 * one its plain-http listener hands out: neither may ever be stored. */
#define TC_INJECTED_PSK "SU5KRUNURUQtTk9ULVVTRQ=="
#define TC_INSECURE_PSK "SU5TRUNVUkUtSFRUUCEhIQ=="

/* Ports of the running cloud. */
extern int tc_ctl_port;
extern int tc_https_port;
extern int tc_mqtts_port;
extern int tc_mqttpsk_port; /* plain, loopback: behind the TLS-PSK front only */
extern int tc_mqtt_port;    /* plain TCP (tls = no) */
extern int tc_http_port;    /* plain http: the target of its redirect_http fault */

/* Starts the cloud with product TC_PID (PSK devices, registerType 1; template: MQ2, MQ135,
 * MQ4, MQ7 int, DHT11_T, DHT11_H float, report_interval_ms int, led bool) whose pre-created
 * devices are given as JSON array members (e.g. "\"dev1\", \"dev2\""), and, when
 * cert_devices is not NULL, TC_CERT_PID (certificate devices, registerType 1) with those.
 * Needs fx_setup(). */
void tc_start(const char *psk_devices, const char *cert_devices);
/* The same with the HTTPS registration listener under a second CA, https_ca (a name: its
 * certificate is fx_path("<https_ca>/ca.crt"), see cc_make_https_ca()), while MQTT stays under
 * the fixture's broker/ca.crt, as the platform serves them (docs/protocols/tencent.md §1.6).
 * NULL: tc_start(). */
void tc_start_https_ca(const char *psk_devices, const char *cert_devices, const char *https_ca);
/* POSTs args (stolen) to the control API; returns its JSON reply (ok or not). */
json_t *tc_ctl(const char *cmd, json_t *args);
/* {"productId": TC_PID, "deviceName": dn} */
json_t *tc_dev_args(const char *dn);
/* The cloud's summary of device dn of product pid (json_decref it); with_cert adds "cert". */
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
/* Waits for a cloud event matching match (stolen); true when it came. Like
 * tc_wait_property(), the deadline is stretched by fx_timeout_scale(). */
bool tc_wait(json_t *match, int timeout_s);
/* The same for events after seq since (tc_last_seq()). */
bool tc_wait_since(json_t *match, json_int_t since, int timeout_s);
/* Number of cloud events named ev for which field (may be NULL) equals value. */
size_t tc_count(const char *ev, const char *field, const char *value);
/* The seq of the cloud's latest event (for "wait since"). */
json_int_t tc_last_seq(void);
/* An integer field of the device summary of dn. */
json_int_t tc_device_field(const char *dn, const char *field);
/* Waits until the platform's CONNECT window for dn (settings.connect_interval after the last
 * CONNECT the cloud answered, from its device summary) has passed, so that the next CONNECT of
 * dn is answered; returns at once when none was answered yet. */
void tc_wait_connect_window(const char *dn);
/* The same for device dn of product pid (a gateway's). */
void tc_wait_device_connect_window(const char *pid, const char *dn);
/* Waits until the cloud recorded property name of dn (any value); false at the deadline. */
bool tc_wait_property(const char *dn, const char *name, int timeout_ms);
/* Stores psk for dn in the daemon's credential store of uplink "tc" (state/credentials/tc),
 * as sensorgw.conf(5) tells an operator to. */
void tc_provision_psk(const char *dn, const char *psk);
/* `sensorgwctl status --json` of the daemon started with tc_config() (its control socket is
 * fx_path("control")): the answer, a new reference. */
json_t *tc_status_json(void);
/* The member of status.uplinks named name (borrowed); fails the test when there is none. */
json_t *tc_status_uplink(json_t *status, const char *name);
/* Stores a certificate and key (PEM) for dn in the same store (auth = certificate). */
void tc_provision_cert(const char *dn, const char *cert, const char *key);
/* A test CA made with the openssl CLI: fx_path("<name>.crt") and its key "<name>.key". */
void tc_make_ca(const char *name);
/* A client certificate (EC P-256, clientAuth) with CN cn from CA name; malloc'd PEMs. */
void tc_issue_cert(const char *ca, const char *cn, char **cert, char **key);
/* A gateway with one binary port n1 (fx_path("tty-n1")) and the tencent uplink "tc" to the
 * cloud's TLS port with the fixture's CA; extra is appended. Returns a malloc'd text. */
char *tc_config(const char *extra);
/* Starts tests/integration/tcloud_pskfront.c ($GW_PSKFRONT) in front of the cloud's mqttpsk
 * listener for identity TC_PID TC_DN with the key psk_hex (TLS 1.2, or 1.2 and 1.3 with
 * tls13); its log is fx_path("pskfront.log"). Returns its port. */
int tc_pskfront_start(const char *psk_hex, bool tls13);
/* The same for the device whose TLS-PSK identity (client id) is identity. */
int tc_pskfront_start_id(const char *identity, const char *psk_hex, bool tls13);
/* tc_config() with tls = psk to port (the front) and no ca_file. */
char *tc_config_psk(int port, const char *extra);
