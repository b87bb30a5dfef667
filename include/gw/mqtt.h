/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * An MQTT uplink: libmosquitto driven by the sd-event loop (mosquitto_socket, loop_read,
 * loop_write, loop_misc; never mosquitto_loop_start). It owns a bounded FIFO of messages and
 * hands libmosquitto at most GW_MQTT_WINDOW of them at a time, so libmosquitto's unbounded
 * offline queue is never used. A QoS 1 message leaves the FIFO only on its PUBACK; after a
 * connection loss the libmosquitto instance is destroyed (dropping its queues) and every
 * unacknowledged message is sent again after the reconnect, in order.
 *
 * Reconnects use exponential backoff with jitter (reconnect_min_ms .. reconnect_max_ms),
 * never give up, and the backoff is reset after a connection stayed up for
 * GW_MQTT_STABLE_S seconds.
 *
 * An adapter: it logs only at debug level and reports state through a callback.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "gw/config.h"

#define GW_MQTT_WINDOW 64         /* messages in flight per uplink */
#define GW_MQTT_QUEUE_MAX 100000  /* messages held while the broker is unreachable */
#define GW_MQTT_STABLE_S 30

struct gw_mqtt;

enum gw_mqtt_state {
	GW_MQTT_DISCONNECTED, /* waiting for the retry timer */
	GW_MQTT_CONNECTING,
	GW_MQTT_CONNECTED,
};

struct gw_mqtt_stats {
	uint64_t enqueued;
	uint64_t acked;  /* PUBACK received (QoS 1) or handed to the socket (QoS 0) */
	uint64_t resent; /* messages sent again after a connection loss */
	uint64_t dropped_overflow;
	uint64_t rejected; /* refused by libmosquitto (e.g. payload too large) */
	uint64_t connects;
	uint64_t connection_losses;
};

/* state changed. reason is a human-readable cause for DISCONNECTED (never a secret), NULL
 * otherwise; retry_ms is the delay before the next attempt. */
typedef void (*gw_mqtt_state_fn)(struct gw_mqtt *m, enum gw_mqtt_state state, const char *reason,
				 uint32_t retry_ms, void *user_data);
/* The FIFO became empty (all acknowledged). */
typedef void (*gw_mqtt_idle_fn)(struct gw_mqtt *m, void *user_data);

/* cfg is borrowed and must outlive the object. Call gw_mqtt_lib_init() once first. */
int gw_mqtt_new(sd_event *event, const struct gw_config_uplink *cfg, gw_mqtt_state_fn state_fn,
		gw_mqtt_idle_fn idle_fn, void *user_data, struct gw_mqtt **ret);
/* Disconnects cleanly when connected. Accepts NULL; returns NULL. Not from its callbacks. */
struct gw_mqtt *gw_mqtt_free(struct gw_mqtt *m);
/* Makes the first connection attempt. */
int gw_mqtt_start(struct gw_mqtt *m);

/* Queues a message; takes ownership of payload (malloc'd). When the FIFO is full the oldest
 * message not in flight is dropped and counted. Returns 0. */
int gw_mqtt_enqueue(struct gw_mqtt *m, const char *topic, char *payload, size_t len);

enum gw_mqtt_state gw_mqtt_get_state(const struct gw_mqtt *m);
size_t gw_mqtt_pending(const struct gw_mqtt *m); /* queued + in flight */
const struct gw_mqtt_stats *gw_mqtt_stats(const struct gw_mqtt *m);
const char *gw_mqtt_name(const struct gw_mqtt *m);

void gw_mqtt_lib_init(void);
void gw_mqtt_lib_cleanup(void);
