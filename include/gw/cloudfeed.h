/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The spool side of a cloud uplink with one MQTT session per node device (src/cloud/feed.c,
 * used by src/cloud/aliyun_uplink.c and tencent_uplink.c through the cloud core, gw/cloud.h):
 * one spool reader with a persistent cursor feeding many sessions.
 *
 * A record whose device has no live session waits in the spool and never blocks other
 * devices' records: the driver calls gw_cloudfeed_wait() and reads on; the lowest waiting
 * record holds the cursor back, and gw_cloudfeed_rescan() reads again from there when a device
 * comes online or loses its session. Records acknowledged (or dead-lettered) above the cursor
 * are kept in a skip set, as in mqtt.c. Records in flight belong to a session (an opaque
 * owner pointer); when that session ends they wait again (gw_cloudfeed_requeue()).
 *
 * The cursor is saved at most once a second (a crash re-sends at most that much) and at
 * gw_cloudfeed_free().
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "gw/spool.h"

struct gw_cloudfeed;
struct gw_credstore;

/*
 *   produced = acked + queued + dropped_overflow + dropped_enospc + deadlettered + lost_corrupt
 */
struct gw_cloudfeed_stats {
	uint64_t produced;
	uint64_t acked;
	uint64_t queued;
	uint64_t dropped_overflow;
	uint64_t dropped_enospc;
	uint64_t deadlettered;
	uint64_t lost_corrupt;
	uint64_t inflight;
	uint64_t resent; /* in flight when their session ended: sent again */
};

/* name: the uplink's (its cursor's name, and the log's). spool is borrowed. from_start: a
 * new uplink (no cursor yet) starts at the oldest stored record, not at the end. Returns 0
 * or -errno (logged). */
int gw_cloudfeed_new(sd_event *event, struct gw_spool *spool, const char *name,
		     size_t max_inflight, bool from_start, struct gw_cloudfeed **ret);
/* Saves the cursor. Accepts NULL; returns NULL. */
struct gw_cloudfeed *gw_cloudfeed_free(struct gw_cloudfeed *f);

/* The next record neither in flight nor acknowledged: 1, 0 at the end, -errno. */
int gw_cloudfeed_next(struct gw_cloudfeed *f, struct gw_spool_record *rec);
/* Whether another record may go in flight. */
bool gw_cloudfeed_has_room(const struct gw_cloudfeed *f);
size_t gw_cloudfeed_inflight(const struct gw_cloudfeed *f);
/* seq went out on owner's session as message mid. Needs gw_cloudfeed_has_room(). */
void gw_cloudfeed_sent(struct gw_cloudfeed *f, uint64_t seq, int mid, void *owner);
/* owner's message mid was acknowledged: true when it carried a record (now acknowledged). */
bool gw_cloudfeed_puback(struct gw_cloudfeed *f, void *owner, int mid);
/* Every record in flight on owner's session waits for its next one. */
void gw_cloudfeed_requeue(struct gw_cloudfeed *f, void *owner);
/* The record cannot be sent, ever: it goes to the dead-letter file (logged with why). */
void gw_cloudfeed_deadletter(struct gw_cloudfeed *f, uint64_t seq, const char *why);
/* seq waits for its device's session. */
void gw_cloudfeed_wait(struct gw_cloudfeed *f, uint64_t seq);
/* The records that waited are read again, from the lowest. */
void gw_cloudfeed_rescan(struct gw_cloudfeed *f);
/* Moves the cursor over what was sent; call after a round of sending. */
void gw_cloudfeed_update_cursor(struct gw_cloudfeed *f);
/* Saves the cursor now when it moved. Returns 0 or -errno (logged, retried in a second). */
int gw_cloudfeed_save(struct gw_cloudfeed *f);
void gw_cloudfeed_get_stats(const struct gw_cloudfeed *f, struct gw_cloudfeed_stats *ret);
/* For the status: bytes of the queued records, age of the oldest (0 when none). */
void gw_cloudfeed_backlog(struct gw_cloudfeed *f, uint64_t *ret_bytes, int64_t *ret_oldest_ms);

/*
 * One device's entry in a cloud uplink's status (docs/status.md): device, session (the
 * driver's state name), provisioning ("provisioned" with a credential, else
 * "needs-provisioning" with "refused" and "next_retry_ms" when the store's marker says so,
 * else "unprovisioned") and last_error (null when empty). A new reference, or NULL.
 */
json_t *gw_cloudfeed_device_status(struct gw_credstore *store, const char *device,
				   const char *session, bool has_cred, const char *last_error);
