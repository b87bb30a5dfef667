/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Uplinks: where records go. Each [uplink NAME] section is one gw_uplink, carried out by the
 * driver its type names (mqtt.c, src/cloud/aliyun_uplink.c, src/cloud/tencent_uplink.c; the
 * cloud drivers share the cloud core, gw/cloud.h). The driver table is the
 * only vtable in the daemon: the gateway knows uplinks only through it, so a new cloud is a new
 * driver and nothing else.
 *
 * Every driver reads the spool with its own persistent cursor (gw/spool.h), so each uplink
 * delivers the one record stream at its own pace, and one uplink being down never holds
 * another back.
 */

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "gw/command.h"
#include "gw/config.h"
#include "gw/spool.h"

struct gw_uplink;

/*
 * The command path a cloud uplink hands cloud commands to (the gateway's, see gw/command.h):
 * send has the contract of gw_command_send() with user_data in front.
 */
struct gw_uplink_commands {
	int (*send)(void *user_data, const char *device, enum gw_command_kind kind,
		    const char *name, json_t *params, uint32_t timeout_ms, gw_command_done_fn done,
		    void *done_ud);
	void *user_data;
};

/* What every uplink can say about itself, whatever its driver. */
struct gw_uplink_summary {
	uint64_t sessions;        /* MQTT sessions it wants: 1, or one per cloud device */
	uint64_t online;          /* of those, how many are up */
	uint64_t queued;          /* records stored and not yet acknowledged */
	uint64_t inflight;        /* sent, waiting for the acknowledgement */
	uint64_t acked;
	uint64_t rejected;        /* acknowledged, but answered with an error by the cloud */
};

/* What a driver gets to build its object. Everything is borrowed and outlives it. */
struct gw_uplink_env {
	sd_event *event;
	const struct gw_config_uplink *cfg;
	const char *state_dir;
	const struct gw_config_map *maps; /* the configuration's [map] sections */
	size_t n_maps;
	struct gw_spool *spool;
	struct gw_uplink_commands commands; /* a NULL send: every command is refused */
	struct gw_uplink *self;             /* to pass to gw_uplink_notify() */
};

struct gw_uplink_ops {
	enum gw_uplink_type type;
	/* Returns 0 or -errno, having logged why. */
	int (*new)(const struct gw_uplink_env *env, void **ret);
	/* Saves the cursor and says goodbye to the peer. */
	void (*free)(void *impl);
	int (*start)(void *impl);
	/* A new record (seq) was appended to the spool. */
	void (*kick)(void *impl, uint64_t seq);
	/* Saves the cursor now. */
	int (*save)(void *impl);
	/* Batching (docs/performance.md): hold on, its sessions' sockets may be read on the
	 * gateway's batch clock instead of waking the loop (gw_mosqev_hold()); poll reads them
	 * at each tick of that clock. Both optional. */
	void (*hold)(void *impl, bool hold);
	void (*poll)(void *impl);
	/* Records in flight on a live session: worth a moment's wait when stopping. */
	size_t (*draining)(const void *impl);
	void (*summary)(const void *impl, struct gw_uplink_summary *ret);
	/* One log line with every counter the driver keeps. */
	void (*log_counters)(const void *impl);
	/* Adds what `sensorgwctl status` shows beyond the summary to obj (docs/status.md):
	 * every counter, the last error, per-device sessions. May read files (the credential
	 * store); never blocks on the network. Optional. */
	void (*status)(void *impl, json_t *obj);
	/* What the driver would publish for rec with this configuration: topic and a malloc'd
	 * payload. Pure: no object, no I/O (sensorgwctl decode). 0, or -errno with why set.
	 * Optional. */
	int (*preview)(const struct gw_config_uplink *cfg, const struct gw_spool_record *rec,
		       char *topic, size_t topic_size, char **payload, size_t *len, char *why,
		       size_t why_size);
};

extern const struct gw_uplink_ops gw_mqtt_uplink_ops;
extern const struct gw_uplink_ops gw_aliyun_uplink_ops;
extern const struct gw_uplink_ops gw_tencent_uplink_ops;

/* The driver of type, NULL when this build has none. */
const struct gw_uplink_ops *gw_uplink_driver(enum gw_uplink_type type);

/* How the gateway hears from its uplinks: state_changed when a session came up or went down,
 * otherwise something was acknowledged and it may be time to finish stopping. */
typedef void (*gw_uplink_notify_fn)(struct gw_uplink *u, bool state_changed, void *user_data);

/* cfg (one of gw's uplinks), gw (for state_dir and the [map]s) and spool are borrowed.
 * Returns 0 or -errno (logged). */
int gw_uplink_new(sd_event *event, const struct gw_config_uplink *cfg, const struct gw_config *gw,
		  struct gw_spool *spool, const struct gw_uplink_commands *commands,
		  gw_uplink_notify_fn notify, void *user_data, struct gw_uplink **ret);
/* Accepts NULL; returns NULL. */
struct gw_uplink *gw_uplink_free(struct gw_uplink *u);
int gw_uplink_start(struct gw_uplink *u);
void gw_uplink_kick(struct gw_uplink *u, uint64_t seq);
void gw_uplink_hold(struct gw_uplink *u, bool hold);
void gw_uplink_poll(struct gw_uplink *u);
int gw_uplink_save(struct gw_uplink *u);
size_t gw_uplink_draining(const struct gw_uplink *u);
void gw_uplink_summary(const struct gw_uplink *u, struct gw_uplink_summary *ret);
void gw_uplink_log_counters(const struct gw_uplink *u);
/* The uplink as `sensorgwctl status` shows it (docs/status.md); NULL without memory. */
json_t *gw_uplink_status_json(struct gw_uplink *u);
const char *gw_uplink_name(const struct gw_uplink *u);
/* The section it was built from. */
const struct gw_config_uplink *gw_uplink_config(const struct gw_uplink *u);
/* For drivers: tell the gateway. */
void gw_uplink_notify(struct gw_uplink *u, bool state_changed);
