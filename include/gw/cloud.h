/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The cloud core: what the per-device cloud uplinks (src/cloud/aliyun_uplink.c,
 * src/cloud/tencent_uplink.c) share, so that each driver keeps only what its cloud says
 * differently. Under the first-level driver table (gw/uplink.h) a cloud driver is built from
 * these pieces:
 *
 *  - the feed pump: one spool reader (gw/cloudfeed.h) handing records to the driver's send
 *    function while the in-flight window has room;
 *  - the law of the counters: one table of counter names for the log line and the status, in
 *    the order each cloud lists them;
 *  - session loss: the reason shown for a lost or failed session, and the reconnect backoff
 *    (a session up for stable_s starts again from the minimum);
 *  - provisioning with refusal backoff: the refusal marker of the credential store, written
 *    and read the same way for every cloud;
 *  - command_rate: the token bucket every command from the cloud takes before it may reach a
 *    node, with its rate-limited warning.
 *
 * The functions log through gw_log_uplink() under the uplink's name, as the drivers do; they
 * never log a secret. Everything passed in is borrowed.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw/cloudfeed.h"
#include "gw/config.h"
#include "gw/credstore.h"
#include "gw/spool.h"
#include "gw/uplink.h"
#include "gw/util.h"

/* How often a limit a peer can hit at will (command_rate, an answer queue) is logged above
 * debug; each line carries the running count. */
#define GW_CLOUD_LIMIT_LOG_US (10ULL * 1000000)

/* The counters a cloud uplink keeps beyond its feed's (gw_cloudfeed_stats). */
struct gw_cloud_counters {
	uint64_t rejected; /* acknowledged, then refused by the platform's reply */
	uint64_t connects;
	uint64_t connection_losses;
	uint64_t registrations;
	uint64_t registration_failures;
	uint64_t commands;
	uint64_t commands_throttled;
	uint64_t answers_dropped;
	uint64_t too_large;
	uint64_t devices;
	uint64_t online;
};

/*
 * The counters by name, in the order names lists them (NULL-terminated): produced, acked,
 * queued, dropped_overflow, dropped_enospc, deadlettered, lost_corrupt, inflight, resent (the
 * feed's) and the fields of gw_cloud_counters. gw_cloud_log_counters() logs them as one line
 * "counters: a=1 b=2 ..."; gw_cloud_counters_json() returns them as an object (NULL without
 * memory).
 */
void gw_cloud_log_counters(const char *uplink, const char *const *names,
			   const struct gw_cloudfeed_stats *feed, const struct gw_cloud_counters *c);
json_t *gw_cloud_counters_json(const char *const *names, const struct gw_cloudfeed_stats *feed,
			       const struct gw_cloud_counters *c);
/* The summary every uplink gives (gw/uplink.h). */
void gw_cloud_summary(const struct gw_cloudfeed_stats *feed, const struct gw_cloud_counters *c,
		      struct gw_uplink_summary *ret);
/* The status fields every cloud uplink shows beside its devices: backlog_bytes, oldest_age_ms
 * and counters (names as above). */
void gw_cloud_status(struct gw_cloudfeed *feed, const char *const *names,
		     const struct gw_cloud_counters *c, json_t *o);

/*
 * Reads records while the window has room and hands each to send (1: sent, 0: it waits or
 * was dead-lettered), then moves the cursor. True when nothing is in flight afterwards (the
 * gateway may finish stopping).
 */
bool gw_cloud_pump(struct gw_cloudfeed *feed, const char *uplink,
		   int (*send)(void *user_data, const struct gw_spool_record *rec),
		   void *user_data);

/* Why a session ended: its CONNACK refusal, a TLS failure (also when tls_from_log and the
 * last error is an OpenSSL one), a keepalive timeout, the last error or libmosquitto's text
 * for rc. Returns buf. */
const char *gw_cloud_describe_loss(int connack, int rc, const char *last_error,
				   bool tls_from_log, char *buf, size_t size);
/* The delay before the next attempt of a session that ended: backoff between cfg's
 * reconnect_min_ms and reconnect_max_ms, from the minimum again when it was online for
 * stable_s. *backoff_ms is the device's. */
uint32_t gw_cloud_loss_delay(const struct gw_config_uplink *cfg, uint32_t *backoff_ms,
			     bool was_online, uint64_t connected_at_us, uint32_t stable_s);

/* Whole seconds until the wall-clock time at_ms, 0 when it is past. */
long long gw_cloud_secs_until(int64_t at_ms);
/* Records a refusal (why) in the device's needs-provisioning marker; st gets the next retry.
 * Without a marker it still waits as long as a first refusal would (logged). */
void gw_cloud_mark_refused(struct gw_credstore *store, const char *uplink, const char *device,
			   const char *why, struct gw_cred_state *st);
/* Whether the marker says cred was refused at login after it was obtained (st filled); a
 * credential stored later wins. An unreadable marker is logged and counts as no refusal. */
bool gw_cloud_cred_refused(struct gw_credstore *store, const char *uplink, const char *device,
			   const struct gw_cred *cred, struct gw_cred_state *st);

/* command_rate and command_burst of an uplink, and its refusals. */
struct gw_cloud_throttle {
	struct gw_rate rate;
	uint64_t refused;   /* the commands_throttled counter */
	uint64_t logged_us; /* gw_every: one warning per GW_CLOUD_LIMIT_LOG_US */
};

void gw_cloud_throttle_init(struct gw_cloud_throttle *t, const struct gw_config_uplink *cfg);
/* Takes a token for a command (what) of device. Without one: counted, logged (a warning per
 * interval, else debug) as answered with code, and true: the caller answers it with
 * GW_CLOUD_THROTTLED_TEXT. */
bool gw_cloud_throttled(struct gw_cloud_throttle *t, const struct gw_config_uplink *cfg,
			const char *device, const char *what, int code);
#define GW_CLOUD_THROTTLED_TEXT "too many commands: more than command_rate a second; try again later"
