/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Between the cloud core (core.c) and its gateway topology (topology.c): what each calls of the
 * other. Nothing here is for drivers (gw/cloud.h).
 */

#include "gw/cloud.h"

/* ---- core.c ---- */

/* A device of c that is not in the device table (the gateway); NULL with why. */
struct gw_cloud_dev *gw_cloud_core_dev_new(struct gw_cloud *c, const char *name, char *why,
					   size_t why_size);
void gw_cloud_core_dev_free(struct gw_cloud_dev *d);
/* The device's credential (the store, then registration), then dev_connect (a sub-device:
 * gw_cloud_topo_ready()). */
void gw_cloud_core_provision(struct gw_cloud_dev *d);
/* Subscribes subs on d->mosq; -EIO when libmosquitto refused. */
int gw_cloud_core_subscribe(struct gw_cloud_dev *d, const struct gw_cloud_subs *subs);
/* A SUBACK for d: true once every one of subs came. */
bool gw_cloud_core_subacked(struct gw_cloud_dev *d, const struct gw_cloud_subs *subs, int mid,
			    int qos_count, const int *granted_qos);
/* All SUBACKs came: d is online (logged, the feed read again). */
void gw_cloud_core_dev_online(struct gw_cloud_dev *d);
void gw_cloud_core_pump(struct gw_cloud *c);
void gw_cloud_core_notify(struct gw_cloud *c, bool state_changed);

/* ---- topology.c: topology = gateway ---- */

/* Creates c->gw and reads the remembered topology; 0 or -errno (logged). */
int gw_cloud_topo_new(struct gw_cloud *c, const char *state_dir);
/* After the device table is freed. */
void gw_cloud_topo_free(struct gw_cloud *c);
/* A new sub-device d of the table. */
void gw_cloud_topo_dev_added(struct gw_cloud_dev *d);
/* Its timer fired. */
void gw_cloud_topo_timer(struct gw_cloud_dev *d);
/* It has its credential: it waits for the next attach call. */
void gw_cloud_topo_ready(struct gw_cloud_dev *d);
/* The gateway is online / its session ended. */
void gw_cloud_topo_gateway_online(struct gw_cloud *c);
void gw_cloud_topo_gateway_lost(struct gw_cloud *c);
/* A SUBACK on the gateway's session that is not the gateway's own. */
void gw_cloud_topo_suback(struct gw_cloud *c, int mid, int qos_count, const int *granted_qos);
/* A record of sub-device d: 0 (on: it is sent once online), or -1 with why (dead-lettered). */
int gw_cloud_topo_record(struct gw_cloud_dev *d, char *why, size_t why_size);
/* It was handed to libmosquitto. */
void gw_cloud_topo_sent(struct gw_cloud_dev *d);
/* The session state shown for sub-device d, and its fields beside it. */
const char *gw_cloud_topo_dev_state(const struct gw_cloud_dev *d);
void gw_cloud_topo_dev_status(const struct gw_cloud_dev *d, json_t *o);
/* The uplink's "topology" and "gateway" fields. */
void gw_cloud_topo_status(struct gw_cloud *c, json_t *o);
