/* SPDX-License-Identifier: MIT */
/*
 * The spool side of a per-device cloud uplink: reader, cursor, skip set, records in flight,
 * dead-letter. See include/gw/cloudfeed.h.
 */

#include <errno.h>
#include <string.h>

#include "gw/cloudfeed.h"
#include "gw/credstore.h"
#include "gw/log.h"
#include "gw/util.h"

struct flight {
	uint64_t seq;
	int mid;
	void *owner;
};

struct gw_cloudfeed {
	const char *name;
	struct gw_spool *spool;
	struct gw_spool_reader *reader;
	struct flight *inflight; /* max_inflight slots, unordered */
	size_t n_inflight;
	size_t max_inflight;
	/* records at or above the cursor acknowledged (or dead-lettered) out of order; sorted */
	struct gw_seqset skip;
	uint64_t overflow_acked; /* dropped by the spool while in flight, then acknowledged */
	/* the lowest record passed over because its device was not online, UINT64_MAX if none */
	uint64_t waiting;
	sd_event_source *save_timer;
	bool cursor_dirty;

	uint64_t initial_backlog;
	uint64_t appended_at_start;
	uint64_t acked;
	uint64_t resent;
};

static int save_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	(void)gw_cloudfeed_save(ud);
	return 0;
}

int gw_cloudfeed_new(sd_event *event, struct gw_spool *spool, const char *name,
		     size_t max_inflight, bool from_start, struct gw_cloudfeed **ret)
{
	struct gw_cloudfeed *f = gw_new0(struct gw_cloudfeed, 1);
	int r;

	f->name = name;
	f->spool = spool;
	f->max_inflight = max_inflight;
	f->inflight = gw_new0(struct flight, max_inflight);
	f->waiting = UINT64_MAX;
	r = gw_spool_reader_new(spool, name, from_start, &f->reader);
	if (r < 0) {
		gw_log_uplink(LOG_ERR, name, "cannot set up its cursor: %s", strerror(-r));
		goto fail;
	}
	f->initial_backlog = gw_spool_reader_stats(f->reader)->initial;
	f->appended_at_start = gw_spool_stats(spool)->appended;
	/* the cursor is saved at most once a second: a crash re-sends at most that much */
	r = sd_event_add_time_relative(event, &f->save_timer, CLOCK_MONOTONIC, 1000000, 100000,
				       save_cb, f);
	if (r < 0) {
		gw_log_uplink(LOG_ERR, name, "cannot arm its cursor timer: %s", strerror(-r));
		goto fail;
	}
	(void)sd_event_source_set_enabled(f->save_timer, SD_EVENT_OFF);
	*ret = f;
	return 0;
fail:
	gw_cloudfeed_free(f);
	return r;
}

struct gw_cloudfeed *gw_cloudfeed_free(struct gw_cloudfeed *f)
{
	if (!f)
		return NULL;
	if (f->reader) {
		f->cursor_dirty = true;
		(void)gw_cloudfeed_save(f);
	}
	f->save_timer = sd_event_source_disable_unref(f->save_timer);
	gw_spool_reader_free(f->reader);
	free(f->inflight);
	gw_seqset_free(&f->skip);
	free(f);
	return NULL;
}

static bool in_flight(const struct gw_cloudfeed *f, uint64_t seq)
{
	for (size_t i = 0; i < f->n_inflight; i++)
		if (f->inflight[i].seq == seq)
			return true;
	return false;
}

/* The lowest record neither acknowledged nor dead-lettered: below the read position,
 * everything was sent except what is in flight or waits for its device. */
void gw_cloudfeed_update_cursor(struct gw_cloudfeed *f)
{
	uint64_t c = gw_spool_reader_position(f->reader);

	if (f->waiting < c)
		c = f->waiting;
	for (size_t i = 0; i < f->n_inflight; i++)
		if (f->inflight[i].seq < c)
			c = f->inflight[i].seq;
	while (f->skip.n && f->skip.v[0] <= c) {
		if (f->skip.v[0] == c)
			c++;
		gw_seqset_prune(&f->skip, c);
	}
	if (c > gw_spool_reader_cursor(f->reader)) {
		gw_spool_reader_ack(f->reader, c);
		f->cursor_dirty = true;
		(void)sd_event_source_set_enabled(f->save_timer, SD_EVENT_ONESHOT);
	}
	gw_seqset_prune(&f->skip, gw_spool_reader_cursor(f->reader));
}

static void acknowledge(struct gw_cloudfeed *f, uint64_t seq)
{
	f->acked++;
	/* dropped for the spool's bounds while in flight, then delivered after all: acked */
	if (seq < gw_spool_reader_cursor(f->reader)) {
		f->overflow_acked++;
		return;
	}
	gw_seqset_add(&f->skip, seq);
	gw_cloudfeed_update_cursor(f);
}

void gw_cloudfeed_deadletter(struct gw_cloudfeed *f, uint64_t seq, const char *why)
{
	struct gw_spool_record rec;
	uint64_t pos = gw_spool_reader_position(f->reader);
	int r;

	gw_spool_reader_seek(f->reader, seq);
	r = gw_spool_reader_next(f->reader, &rec);
	if (r > 0 && rec.seq == seq)
		r = gw_spool_reader_deadletter(f->reader, &rec);
	gw_spool_reader_seek(f->reader, pos);
	gw_log_uplink(LOG_WARNING, f->name, "record %llu moved to the dead-letter file: %s%s",
		      (unsigned long long)seq, why,
		      r < 0 ? " (and writing it there failed)" : "");
	gw_seqset_add(&f->skip, seq);
	gw_cloudfeed_update_cursor(f);
}

void gw_cloudfeed_rescan(struct gw_cloudfeed *f)
{
	if (f->waiting == UINT64_MAX)
		return;
	if (f->waiting < gw_spool_reader_position(f->reader))
		gw_spool_reader_seek(f->reader, f->waiting);
	f->waiting = UINT64_MAX;
}

void gw_cloudfeed_wait(struct gw_cloudfeed *f, uint64_t seq)
{
	if (seq < f->waiting)
		f->waiting = seq;
}

int gw_cloudfeed_next(struct gw_cloudfeed *f, struct gw_spool_record *rec)
{
	int r;

	for (;;) {
		r = gw_spool_reader_next(f->reader, rec);
		if (r <= 0)
			return r;
		/* below the cursor: done, though not in the skip set any more (the cursor passes
		 * the read position when a record read again is dead-lettered before records
		 * acknowledged behind it) */
		if (rec->seq >= gw_spool_reader_cursor(f->reader) &&
		    !gw_seqset_has(&f->skip, rec->seq) && !in_flight(f, rec->seq))
			return 1;
	}
}

bool gw_cloudfeed_has_room(const struct gw_cloudfeed *f)
{
	return f->n_inflight < f->max_inflight;
}

size_t gw_cloudfeed_inflight(const struct gw_cloudfeed *f)
{
	return f->n_inflight;
}

void gw_cloudfeed_sent(struct gw_cloudfeed *f, uint64_t seq, int mid, void *owner)
{
	f->inflight[f->n_inflight++] = (struct flight){ .seq = seq, .mid = mid, .owner = owner };
}

bool gw_cloudfeed_puback(struct gw_cloudfeed *f, void *owner, int mid)
{
	for (size_t i = 0; i < f->n_inflight; i++) {
		if (f->inflight[i].owner == owner && f->inflight[i].mid == mid) {
			uint64_t seq = f->inflight[i].seq;

			f->inflight[i] = f->inflight[--f->n_inflight];
			acknowledge(f, seq);
			return true;
		}
	}
	return false;
}

void gw_cloudfeed_requeue(struct gw_cloudfeed *f, void *owner)
{
	for (size_t i = 0; i < f->n_inflight;) {
		if (f->inflight[i].owner != owner) {
			i++;
			continue;
		}
		gw_cloudfeed_wait(f, f->inflight[i].seq);
		f->resent++;
		f->inflight[i] = f->inflight[--f->n_inflight];
	}
}

int gw_cloudfeed_save(struct gw_cloudfeed *f)
{
	int r;

	if (!f->cursor_dirty)
		return 0;
	r = gw_spool_reader_save(f->reader);
	if (r < 0) {
		gw_log_uplink(LOG_ERR, f->name, "cannot save the cursor: %s; retrying",
			      strerror(-r));
		(void)sd_event_source_set_time_relative(f->save_timer, 1000000);
		(void)sd_event_source_set_enabled(f->save_timer, SD_EVENT_ONESHOT);
		return r;
	}
	f->cursor_dirty = false;
	(void)sd_event_source_set_time_relative(f->save_timer, 1000000);
	(void)sd_event_source_set_enabled(f->save_timer, SD_EVENT_OFF);
	return 0;
}

void gw_cloudfeed_get_stats(const struct gw_cloudfeed *f, struct gw_cloudfeed_stats *ret)
{
	const struct gw_spool_reader_stats *rs = gw_spool_reader_stats(f->reader);
	uint64_t backlog = gw_spool_reader_backlog(f->reader);

	*ret = (struct gw_cloudfeed_stats){
		.produced = f->initial_backlog + gw_spool_stats(f->spool)->appended -
			    f->appended_at_start + rs->dropped_enospc,
		.acked = f->acked,
		.queued = backlog > f->skip.n ? backlog - f->skip.n : 0,
		.dropped_overflow = rs->dropped_overflow - f->overflow_acked,
		.dropped_enospc = rs->dropped_enospc,
		.deadlettered = rs->deadlettered,
		.lost_corrupt = rs->lost_corrupt,
		.inflight = f->n_inflight,
		.resent = f->resent,
	};
}

void gw_cloudfeed_backlog(struct gw_cloudfeed *f, uint64_t *ret_bytes, int64_t *ret_oldest_ms)
{
	*ret_bytes = gw_spool_reader_backlog_bytes(f->reader);
	*ret_oldest_ms = gw_spool_reader_oldest_age(f->reader, gw_now_wall_ms());
}

json_t *gw_cloudfeed_device_status(struct gw_credstore *store, const char *device,
				   const char *session, bool has_cred, const char *last_error)
{
	char reason[GW_CREDSTORE_REASON_MAX];
	struct gw_cred_state st;
	bool refused = false;
	json_t *o;

	/* the marker is what survives restarts: read it rather than keep a copy */
	if (!has_cred && gw_credstore_get_state(store, device, &st, reason, sizeof(reason)) == 0 &&
	    st.status == GW_CRED_STATUS_NEEDS_PROVISIONING)
		refused = true;
	o = json_pack("{s:s,s:s,s:s,s:o}", "device", device, "session", session, "provisioning",
		      has_cred ? "provisioned" : refused ? "needs-provisioning" : "unprovisioned",
		      "last_error", last_error[0] ? json_string(last_error) : json_null());
	if (o && refused) {
		(void)json_object_set_new(o, "refused", json_string(st.why));
		(void)json_object_set_new(o, "next_retry_ms", json_integer(st.next_retry_ms));
	}
	return o;
}
