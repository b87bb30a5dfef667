/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The loopback Tencent test cloud (tests/cloud/tencent_cloud.py, see tests/cloud/TENCENT.md)
 * from the integration tests: start it with one product whose data template holds the six
 * seed sensors, drive its control API, provision PSKs and write the daemon's tencent config.
 * Every call fails the running Check test on error. Used with fixture.h (fx_setup/teardown).
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

/* Ports of the running cloud. */
extern int tc_ctl_port;
extern int tc_https_port;
extern int tc_mqtts_port;
extern int tc_mqttpsk_port; /* plain, loopback: behind the TLS-PSK front only */

/* Starts the cloud with product TC_PID (PSK devices; template: MQ2, MQ135, MQ4, MQ7 int,
 * DHT11_T, DHT11_H float, report_interval_ms int, led bool) whose devices are given as JSON
 * array members. Needs fx_setup(). */
void tc_start(const char *devices);
/* POSTs args (stolen) to the control API; returns its JSON reply (ok or not). */
json_t *tc_ctl(const char *cmd, json_t *args);
/* {"productId": TC_PID, "deviceName": dn} */
json_t *tc_dev_args(const char *dn);
/* Waits for a cloud event matching match (stolen); true when it came. Like
 * tc_wait_property(), the deadline is stretched by fx_timeout_scale(). */
bool tc_wait(json_t *match, int timeout_s);
/* Number of cloud events named ev for which field (may be NULL) equals value. */
size_t tc_count(const char *ev, const char *field, const char *value);
/* The seq of the cloud's latest event (for "wait since"). */
json_int_t tc_last_seq(void);
/* An integer field of the device summary of dn. */
json_int_t tc_device_field(const char *dn, const char *field);
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
/* Fails the test unless status matches docs/status.schema.json. */
void tc_check_status_schema(const json_t *status);
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
/* tc_config() with tls = psk to port (the front) and no ca_file. */
char *tc_config_psk(int port, const char *extra);
