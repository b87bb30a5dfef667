/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The loopback Aliyun test cloud (tests/cloud/aliyun_cloud.py) from the integration tests:
 * start it with one product, drive its control API, and write the daemon's aliyun config.
 * cl_launch(), cl_ctl(), cl_wait() and cl_count() serve the Tencent test cloud
 * (tests/cloud/tencent_cloud.py) as well: it has the same process model and control API.
 * Every call fails the running Check test on error. Used with fixture.h (fx_setup/teardown).
 */

#include <check.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "fixture.h"

#define CL_PK "a1TestProd01"
#define CL_PS fx_secret("aliyun-product") /* testProductSecret123 outside canary mode */
#define CL_DN "dev-n1" /* device_name = dev-{port} on [port n1] */
#define CL_DS fx_secret("aliyun-device") /* testDeviceSecret456 */

/* Ports of the running cloud. */
extern int cl_ctl_port;
extern int cl_https_port;
extern int cl_mqtts_port;

/* Starts the test cloud tests/cloud/<script> (aliyun_cloud.py, tencent_cloud.py: both take
 * --dir/--cert/--key/--products and write ports.json) in fx_path("cloud") with the fixture's
 * server certificate and products (the products file's text), waits for ports.json and sets
 * the ports above. Returns ports.json (json_decref it). Needs fx_setup(). */
json_t *cl_launch(const char *script, const char *products);
/* The same with the HTTPS registration listener alone under a second CA named https_ca
 * (cc_make_https_ca(): fx_path("<https_ca>/ca.crt")); NULL: cl_launch(). */
json_t *cl_launch_https_ca(const char *script, const char *products, const char *https_ca);
/* Starts the cloud with product CL_PK (dynamic registration on, registration-free per
 * regnwl, TLS only) whose devices are given as JSON array members. Needs fx_setup(). */
void cl_start(const char *devices);
void cl_start_opts(const char *devices, bool registration_free);
void cl_start_https_ca(const char *devices, bool registration_free, const char *https_ca);
/* POSTs args (stolen) to the control API; returns its JSON reply (ok or not). */
json_t *cl_ctl(const char *cmd, json_t *args);
/* {"productKey": CL_PK, "deviceName": dn} */
json_t *cl_dev_args(const char *dn);
/* Waits for a cloud event matching match (stolen); true when it came. Like every wait on
 * the daemon here (cl_wait*, cl_downlink), the deadline is stretched by fx_timeout_scale(). */
bool cl_wait(json_t *match, int timeout_s);
/* The same for events after seq since. */
bool cl_wait_since(json_t *match, json_int_t since, int timeout_s);
/* The seq of the cloud's last event so far. */
json_int_t cl_seq(void);
/* Number of cloud events named ev for which field (may be NULL) equals value. */
size_t cl_count(const char *ev, const char *field, const char *value);
/* An integer field of the device summary of dn. */
json_int_t cl_device_field(const char *dn, const char *field);
/* Whether the cloud recorded property name of dn with exactly value; waiting up to timeout_ms. */
bool cl_has_property(const char *dn, const char *name, double value);
bool cl_wait_property(const char *dn, const char *name, double value, int timeout_ms);
/* A gateway with one text port n1, the control socket fx_path("control") (never the system's
 * default) and the aliyun uplink "ali"; extra holds the auth keys and may add sections.
 * Returns a malloc'd config text. */
char *cl_aliyun_config(const char *extra);
/* cl_aliyun_config() for auth = register with the HTTPS registration URL of the cloud. */
char *cl_register_config(void);
/* The same with register_via = via (NULL: not set, so auto); "mqtt" leaves out register_url. */
char *cl_register_config_via(const char *via);
/* Runs suite s (freed) with libcurl set up for cl_ctl(); returns the process exit status. */
int cl_run(Suite *s);
/* Writes a whole line to the pty. */
void cl_write_line(const struct fx_pty *p, const char *line);
bool cl_file_exists(const char *path);
/* Stores DeviceSecret ds of device dn in the uplink "ali"'s credential store, as an operator
 * provisions it. */
void cl_provision(const char *dn, const char *ds);
/* text (freed) from cl_aliyun_config() with binary framing on [port n1] and, unless
 * device_name is NULL, that device_name template instead of dev-{port}. Returns a new text. */
char *cl_binary_config(char *text, const char *device_name);
/* Starts sensorgw-sim in binary framing on the pty link tty-n1 (two frames a second), its
 * hello announcing uid (24 hex digits); its stderr goes to sim.log. Returns its pid. */
pid_t cl_sim_start(const char *uid);
/* Whether sim.log holds needle. */
bool cl_sim_log_has(const char *needle);
/* Sends a downlink command (property_set, service_call, rrpc) through the control API to
 * product CL_PK, waiting up to wait_s (stretched, at most 60: the cloud's cap) for the
 * device's reply; checks that the cloud delivered it to a session and that the reply came.
 * Returns the reply object (a new reference). */
json_t *cl_downlink(const char *cmd, json_t *args, int wait_s);
json_int_t cl_reply_code(json_t *reply);
