/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The gateway: ports in, uplinks out. Every good telemetry or event frame becomes a record
 * (node identity, sequence, timestamp, mapped params) that is appended to the durable spool
 * before any uplink sees it; each uplink then reads the spool through its own cursor. The
 * spool is synced every sync_records records or sync_ms milliseconds (group commit).
 * It decides what is logged; the adapters below it only report.
 */

#include <stdbool.h>
#include <jansson.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "gw/config.h"

struct gw_gateway;

typedef void (*gw_gateway_stopped_fn)(struct gw_gateway *g, void *user_data);
/* r: 0, or -errno when the new configuration could not be applied whole (logged); the gateway
 * then takes no more records and the owner frees it. */
typedef void (*gw_gateway_reloaded_fn)(struct gw_gateway *g, int r, void *user_data);

/* Takes a reference to cfg (gw_config_ref) for as long as anything built from it runs.
 * started_us: when the daemon started (CLOCK_MONOTONIC), what the status's uptime counts from. */
int gw_gateway_new(sd_event *event, struct gw_config *cfg, uint64_t started_us,
		   struct gw_gateway **ret);
struct gw_gateway *gw_gateway_free(struct gw_gateway *g);
/* Opens the ports and connects the uplinks. */
int gw_gateway_start(struct gw_gateway *g);
/* Stops reading the ports, then calls done once every uplink has delivered what it holds, or
 * after timeout_usec, whichever comes first. */
void gw_gateway_stop(struct gw_gateway *g, uint64_t timeout_usec, gw_gateway_stopped_fn done,
		     void *user_data);
/*
 * Applies cfg (same state_dir, checked by the caller) to the running gateway, in place:
 * - a port whose settings did not change is handed over as it is: open, its decoder's partial
 *   frame and its counters kept, nothing flushed; a port whose settings changed keeps its
 *   object and counters and gets the new ones (the same device stays open with new termios;
 *   another device or framing: what was cut off is counted, see gw_port_reconfigure); new
 *   ports are opened, removed ones closed;
 * - an uplink whose settings did not change goes on as it is (session, cursor, records in
 *   flight, counters); one whose settings changed, or that was removed, hears of no new
 *   record, finishes what it has in flight (at most timeout_usec), logs its counters, saves
 *   its cursor and is freed; then the new ones start from their cursors. When a spool option
 *   (spool_max_bytes, min_free_bytes, spool_segment_bytes) changed, every uplink is replaced
 *   that way and the spool reopened between;
 * - the node table is kept unless device_name or max_nodes changed; pending commands are
 *   cancelled (answered) as at a stop; maps apply to the next frame.
 * done runs once all of it is in place (maybe before this returns). Returns 0, -EBUSY during a
 * reload or a stop, or -errno when it failed early (then done is not called, the gateway
 * takes no more records, and the owner frees it).
 */
int gw_gateway_reload(struct gw_gateway *g, struct gw_config *cfg, uint64_t timeout_usec,
		      gw_gateway_reloaded_fn done, void *user_data);
/* One line for sd_notify STATUS= */
void gw_gateway_status(const struct gw_gateway *g, char *buf, size_t size);
/* Logs the spool's and every uplink's counters (at exit, and on SIGUSR1). */
void gw_gateway_log_stats(const struct gw_gateway *g);
/* What `sensorgwctl status` shows (docs/status.md) but the daemon's pid and configuration
 * file, which its owner adds; NULL without memory. */
json_t *gw_gateway_status_json(struct gw_gateway *g);

struct gw_control;
/* Shows every frame (decoded or bad) and every chunk read to c's tail clients (gw/control.h,
 * gw/tap.h); NULL stops. Costs nothing while no client watches. c is borrowed. */
void gw_gateway_set_tail(struct gw_gateway *g, struct gw_control *c);
