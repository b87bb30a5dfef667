/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * What the loopback test clouds (tests/cloud/aliyun_cloud.py, tencent_cloud.py) have in common
 * for the integration tests: starting one and reading its ports.json, and its HTTP control
 * API (wait, log). cloud.h (Aliyun) and tcloud.h (Tencent) are built on it. Every call fails
 * the running Check test on error.
 */

#include <check.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "gw/credstore.h"

/* Starts /usr/bin/python3 SOURCE_ROOT/tests/cloud/<script> --dir fx_path(dir) with the
 * fixture's server certificate and fx_path(products); returns its ports.json (a new
 * reference) once every listener is up. The output goes to fx_path(log). */
json_t *cc_start(const char *script, const char *dir, const char *products, const char *log);
/* The same with the HTTPS registration listener alone under https_crt/https_key (paths; both
 * NULL: the fixture's server certificate, as cc_start()). */
json_t *cc_start_https(const char *script, const char *dir, const char *products, const char *log,
		       const char *https_crt, const char *https_key);
/* A second test CA, unrelated to the fixture's (fx_make_certs()), for the HTTPS registration
 * listener: fx_path("<name>/ca.crt") and a server certificate for localhost and 127.0.0.1
 * fx_path("<name>/server.crt") with its key "<name>/server.key". The platforms serve
 * registration under another root than MQTT (docs/protocols/tencent.md §1.6). */
void cc_make_https_ca(const char *name);
/* An integer member of ports (> 0, or the test fails). */
int cc_port(json_t *ports, const char *name);
/* POSTs args (stolen) to the control API on port; returns its JSON reply (ok or not). */
json_t *cc_ctl(int port, const char *cmd, json_t *args);
/* Waits for a cloud event matching match (stolen); true when it came. The deadline,
 * timeout_s, is stretched by fx_timeout_scale() (GW_TIMEOUT_SCALE): the event is the work of
 * a daemon that may run under valgrind. */
bool cc_wait(int port, json_t *match, int timeout_s);
/* A wait of s seconds the test asks a cloud to make for the daemon (a downlink's reply, a
 * push's acknowledgement), stretched like every wait on it (fx_timeout_scale()) and capped at
 * the 60 s a cloud waits at most. */
int cc_wait_s(int s);
/* The same for events after seq since. */
bool cc_wait_since(int port, json_t *match, json_int_t since, int timeout_s);
/* Number of cloud events named ev for which field (may be NULL) equals the string value. */
size_t cc_count(int port, const char *ev, const char *field, const char *value);
/* Runs suite s (freed) with libcurl set up for cc_ctl(); returns the process exit status. */
int cc_run(Suite *s);
/* Saves cred into the credential store of uplink (STATE/credentials/UPLINK), as provisioning
 * would, before the daemon starts. */
void cc_store_cred(const char *uplink, const struct gw_cred *cred);
