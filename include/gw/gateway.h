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

/* cfg is borrowed and must outlive the gateway. */
int gw_gateway_new(sd_event *event, const struct gw_config *cfg, struct gw_gateway **ret);
struct gw_gateway *gw_gateway_free(struct gw_gateway *g);
/* Opens the ports and connects the uplinks. */
int gw_gateway_start(struct gw_gateway *g);
/* Stops reading the ports, then calls done once every uplink has delivered what it holds, or
 * after timeout_usec, whichever comes first. */
void gw_gateway_stop(struct gw_gateway *g, uint64_t timeout_usec, gw_gateway_stopped_fn done,
		     void *user_data);
/* One line for sd_notify STATUS= */
void gw_gateway_status(const struct gw_gateway *g, char *buf, size_t size);
/* Logs the spool's and every uplink's counters (at exit, and on SIGUSR1). */
void gw_gateway_log_stats(const struct gw_gateway *g);
/* What `sensorgwctl status` shows (docs/status.md); NULL without memory. */
json_t *gw_gateway_status_json(struct gw_gateway *g);
