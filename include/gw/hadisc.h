/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Home Assistant MQTT discovery for a type = mqtt uplink with discovery = homeassistant
 * (docs/homeassistant.md). It decides what to publish; the uplink (mqtt.c) publishes it,
 * retained at QoS 1, on its own session:
 *
 *  - for every node and field of the telemetry the uplink sends, a config message on
 *    <prefix>/sensor/<node>/<field>/config (binary_sensor for a boolean) with a stable
 *    unique_id, the device block (the node, via_device the gateway), the state topic and a
 *    value_template into the telemetry JSON, unit, device_class and state_class;
 *  - the gateway: a connectivity binary_sensor on its availability topic
 *    sensorgw/<gateway>/status ("online" after each connect, "offline" as the MQTT will and
 *    at a clean stop), which every entity's availability includes;
 *  - per node, sensorgw/<gateway>/<node>/status: "online" while its readings are fresh,
 *    "offline" after node_timeout_s without one.
 *
 * Configs go out when a node or field first appears, again after every connect and whenever
 * Home Assistant's status topic (<prefix>/status) says "online". What was announced is kept in
 * <state_dir>/discovery/<uplink>.json, so that a restart announces it at once and a field
 * whose [map] was removed or renamed gets an empty retained config, which removes the entity.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw/config.h"
#include "gw/payload.h"

struct gw_hadisc;

/* Publishes a retained QoS 1 message; payload may be empty (a removal). */
typedef void (*gw_hadisc_publish_fn)(void *user_data, const char *topic, const char *payload,
				     size_t len);

/* maps: the configuration's [map] sections (n_maps of them), for units, device classes and
 * removals. Reads the state file (a damaged one is logged and counts as empty). 0 or -errno. */
int gw_hadisc_new(const struct gw_config_uplink *cfg, const char *state_dir,
		  const struct gw_config_map *maps, size_t n_maps, struct gw_hadisc **ret);
/* Accepts NULL; returns NULL. */
struct gw_hadisc *gw_hadisc_free(struct gw_hadisc *d);

/* The gateway's availability topic (the MQTT will: "offline", retained). */
const char *gw_hadisc_gateway_topic(const struct gw_hadisc *d);
/* Home Assistant's status topic, to subscribe to. */
const char *gw_hadisc_ha_status_topic(const struct gw_hadisc *d);

/* After a connect, or when Home Assistant says it is online: the gateway's "online", every
 * known entity's config, every node's availability, and the removals still owed. */
void gw_hadisc_announce(struct gw_hadisc *d, int64_t now_ms, gw_hadisc_publish_fn pub, void *ud);
/* A telemetry record the uplink is about to send on state_topic: configs for what is new,
 * "online" for a node that was not. */
void gw_hadisc_record(struct gw_hadisc *d, const struct gw_payload_view *v, const char *state_topic,
		      int64_t now_ms, gw_hadisc_publish_fn pub, void *ud);
/* Nodes silent for node_timeout_s go "offline". Returns the ms until the next check. */
int64_t gw_hadisc_tick(struct gw_hadisc *d, int64_t now_ms, gw_hadisc_publish_fn pub, void *ud);
/* A clean stop: the gateway's "offline" (the will covers the rest). */
void gw_hadisc_goodbye(struct gw_hadisc *d, gw_hadisc_publish_fn pub, void *ud);
