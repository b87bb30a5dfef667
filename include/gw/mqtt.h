/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * An MQTT uplink: libmosquitto driven by the sd-event loop (mosquitto_socket, loop_read,
 * loop_write, loop_misc; never mosquitto_loop_start), reading records from the durable spool
 * through its own persistent cursor.
 *
 * At most max_inflight records are handed to libmosquitto at a time, so its unbounded offline
 * queue is never used: everything else waits on disk. A PUBACK (QoS 1) acknowledges a record;
 * the cursor is the lowest record not yet acknowledged, saved every second. After a
 * connection loss the libmosquitto instance is destroyed (with its queues) and reading
 * restarts at the cursor: records may be sent twice, never lost; a record acknowledged out of
 * order is remembered and not sent again.
 *
 * A poison record, one after whose PUBLISH the connection keeps dying without any
 * acknowledgement, goes to the dead-letter file after deadletter_after tries and never blocks
 * the head of the queue. Replay is paced to max_rate messages per second; order = live-first
 * sends a new record before the backlog.
 *
 * Reconnects use exponential backoff with jitter (reconnect_min_ms .. reconnect_max_ms; each
 * delay is drawn from [d/2, d]), never give up, and the backoff is reset after a connection
 * stayed up for GW_MQTT_STABLE_S seconds.
 *
 * An adapter: it logs only warnings about records it gives up on, and reports state through a
 * callback.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "gw/config.h"
#include "gw/spool.h"

#define GW_MQTT_STABLE_S 30
#define GW_MQTT_LIVE_QUEUE 256 /* new records remembered for live-first while replaying */

struct gw_mqtt;

enum gw_mqtt_state {
	GW_MQTT_DISCONNECTED, /* waiting for the retry timer */
	GW_MQTT_CONNECTING,
	GW_MQTT_CONNECTED,
};

/*
 * Per uplink, these obey exactly:
 *   produced = acked + queued + dropped_overflow + dropped_enospc + rejected + lost_corrupt
 */
struct gw_mqtt_stats {
	uint64_t produced; /* records meant for this uplink: backlog at start + new ones */
	uint64_t acked;    /* PUBACK received (QoS 1) or handed to the socket (QoS 0) */
	uint64_t queued;   /* stored, not yet acknowledged (in flight included) */
	uint64_t dropped_overflow;
	uint64_t dropped_enospc;
	uint64_t rejected; /* dead-lettered */
	uint64_t lost_corrupt;
	uint64_t inflight;
	uint64_t resent; /* records sent again after a connection loss */
	uint64_t connects;
	uint64_t connection_losses;
};

/* state changed. reason is a human-readable cause for DISCONNECTED (never a secret), NULL
 * otherwise; retry_ms is the delay before the next attempt. */
typedef void (*gw_mqtt_state_fn)(struct gw_mqtt *m, enum gw_mqtt_state state, const char *reason,
				 uint32_t retry_ms, void *user_data);
/* Nothing is in flight any more. */
typedef void (*gw_mqtt_idle_fn)(struct gw_mqtt *m, void *user_data);

/* cfg and spool are borrowed and must outlive the object. Call gw_mqtt_lib_init() first.
 * Returns 0 or -errno (the cursor cannot be set up). */
int gw_mqtt_new(sd_event *event, const struct gw_config_uplink *cfg, struct gw_spool *spool,
		gw_mqtt_state_fn state_fn, gw_mqtt_idle_fn idle_fn, void *user_data,
		struct gw_mqtt **ret);
/* Saves the cursor, disconnects cleanly when connected. Accepts NULL; returns NULL. Not from
 * its callbacks. */
struct gw_mqtt *gw_mqtt_free(struct gw_mqtt *m);
/* Makes the first connection attempt. */
int gw_mqtt_start(struct gw_mqtt *m);
/* A new record (seq) was appended to the spool. */
void gw_mqtt_kick(struct gw_mqtt *m, uint64_t seq);
/* Saves the cursor now (also done every second and at free). */
int gw_mqtt_save(struct gw_mqtt *m);

enum gw_mqtt_state gw_mqtt_get_state(const struct gw_mqtt *m);
size_t gw_mqtt_inflight(const struct gw_mqtt *m);
void gw_mqtt_get_stats(const struct gw_mqtt *m, struct gw_mqtt_stats *ret);
const char *gw_mqtt_name(const struct gw_mqtt *m);

void gw_mqtt_lib_init(void);
void gw_mqtt_lib_cleanup(void);
