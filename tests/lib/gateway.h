/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * What the topology = gateway integration tests (test-aliyun-gateway.c,
 * test-tencent-gateway.c) share, whichever test cloud they run against: a daemon whose two
 * binary buses n1 and n2 (nodes named "n<bus>-<addr>", device_name = {port}-{addr}) reach the
 * cloud as sub-devices of one gateway uplink, two sensorgw-sim processes feeding the buses,
 * that uplink's status and sub-devices as sensorgwctl shows them, and counts over the test
 * cloud's event log.
 *
 * Call gt_init() in each test once its test cloud runs (cl_launch(), tc_start()): it names the
 * cloud's control port and the uplink the other helpers read. Every wait's deadline is
 * stretched by fx_timeout_scale(), and every call fails the running Check test on error. Used
 * with fixture.h (fx_setup/teardown) and cloud.h or tcloud.h (cloud_dep).
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The test cloud's control port (cl_ctl_port, tc_ctl_port), the uplink's name in the
 * configuration ("ali", "tc") and whether each status read is checked against
 * docs/status.schema.json (fx_check_status_schema()). */
void gt_init(int ctl_port, const char *uplink, bool check_schema);

/* "n1-3": the node at address 3 of bus 1 (fx_strf()'s buffer). */
const char *gt_node(int bus, int addr);

/*
 * The daemon's configuration (a static buffer, valid until the next call): [gateway] with
 * fx_path("state"), the control socket fx_path("control") and device_name = {port}-{addr};
 * binary ports n1 and n2 on fx_path("tty-n1") and fx_path("tty-n2"); and [uplink <uplink>]
 * (gt_init()'s name) of type with host = localhost, keepalive = 30, reconnects from 500 to 4000 ms,
 * topology = gateway, max_devices = 64 and gateway_secret_file, to which gw_secret is written
 * (0600), then keys, the cloud's own (product, port, the gateway's identity, auth).
 */
const char *gt_config(const char *type, const char *gw_secret, const char *keys);

/* Starts the two buses: sensorgw-sim with nodes binary nodes from address 1, each bus ten
 * readings a second, on the pty links tty-n1 (fx_sim_start(): sim.log, fx_sim_stop()) and
 * tty-n2 (seed 7, sim2.log). Returns the pid of bus 2 (fx_child_stop() it). */
pid_t gt_sims_start(int nodes);
/* Starts bus 2 again (after fx_child_stop()) as gt_sims_start() did, with seed; its pid. */
pid_t gt_sim2_start(int seed);
/* Waits for accepted(dn, since, timeout_s) of every node that gt_sims_start() started but
 * skip (NULL: none); fails the test with "no accepted <what> of <dn>" at the first that is
 * false. */
void gt_wait_nodes(const char *skip,
		   bool (*accepted)(const char *dn, json_int_t since, int timeout_s),
		   const char *what, json_int_t since, int timeout_s);

/* The uplink's member of `sensorgwctl status --json` (tc_status_json(): the control socket
 * fx_path("control")), a new reference; the whole status is first checked against the schema
 * when gt_init() asked for it. */
json_t *gt_uplink_status(void);
/* A string field of sub-device dn in the uplink's status u ("session", "refused", ...);
 * NULL when dn or the field is not there. */
const char *gt_dev_field(json_t *u, const char *dn, const char *field);
/* Waits until sub-device dn's session is state, every 200 ms; false at the deadline. */
bool gt_wait_dev_state(const char *dn, const char *state, int timeout_ms);
/* A counter of the uplink's status u. */
json_int_t gt_counter(json_t *u, const char *name);
/* Waits (timeout_ms, scaled) until the uplink's counter name is above than. */
bool gt_wait_counter_above(const char *name, json_int_t than, int timeout_ms);
/* The uplink's status says topology gateway, the gateway's session online, sub-device dn
 * online and the first device attached. */
void gt_assert_online(const char *dn);
/* Nothing dead-lettered, rejected or dropped for overflow so far (the uplink's counters). */
void gt_assert_no_losses(void);
/* Stops both buses (fx_sim_stop(), fx_child_stop(sim2)); then nothing is lost: within 30 s the
 * uplink has nothing queued or in flight, and it acknowledged every record produced, none
 * dead-lettered or rejected. Returns that status of the uplink (a new reference). */
json_t *gt_stop_sims_all_acked(pid_t sim2);

/* The cloud's events named ev after seq since whose field equals the string value (field
 * NULL: every one). */
size_t gt_count_since(json_int_t since, const char *ev, const char *field, const char *value);
/* Records the cloud received twice: events named ev (and, unless method is NULL, whose
 * "method" is method) with the deviceName and id_field of an earlier one. */
size_t gt_duplicates(const char *ev, const char *method, const char *id_field);

/* Fails the test unless fx_path(path) exists with permissions mode. */
void gt_assert_mode(const char *path, mode_t mode);
