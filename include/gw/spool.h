/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The durable spool: every decoded record is appended here before any uplink sees it, and
 * each uplink reads it through its own persistent cursor. Guarantees: docs/reliability.md;
 * format and recovery rules: docs/spool-format.md.
 *
 * On disk, in <state_dir>/spool/:
 *   seg-<first_seq as 16 hex digits>.log   segments, GW_SPOOL_SEGMENT header then records
 *   cursor-<reader name>                   the reader's cursor: lowest seq not yet acked
 *   reserve                                seqs reserved ahead (see "Sequence numbers")
 *   *.corrupt                              quarantined segments (mid-log damage)
 *   deadletter-<reader name>.log           records a reader gave up on (same record format)
 *
 * Segment header (32 bytes): magic "GWQ1" | u32 version (1) | u64 first_seq | u64 reserved 0 |
 *   u32 crc32c of the preceding 24 bytes | u32 reserved 0.
 * Record: u32 len (of seq..payload, i.e. 17 + payload length) | u32 crc32c(seq..payload) |
 *   u64 seq | i64 ts_ms | u8 type | payload. Integers little-endian.
 *
 * Sequence numbers are persistent and strictly increasing, and no seq is ever handed out twice,
 * across any crash or power cut: before an append would use a seq at or above the durable
 * reservation in `reserve`, the reservation is moved GW_SPOOL_RESERVE_BLOCK seqs ahead and
 * fsync'ed. A clean close writes the exact next seq there (marked clean). At open, next_seq is
 * at least the reservation: after a clean close the seqs missing below it were certainly
 * issued and are counted as lost_corrupt (e.g. a cut newest segment); after a crash they are
 * counted as seqs_skipped (never issued, or records not yet synced when the power failed).
 *
 * Durability: gw_spool_append() write()s the record at once (a crash of the process loses
 * nothing written); gw_spool_sync() fdatasync()s, the owner calls it every N records or T ms
 * (group commit), so a power cut loses at most one window.
 *
 * Recovery (gw_spool_open) never refuses to start. Damage anywhere is skipped record by
 * record: the segment is moved aside as *.corrupt, the scan resynchronises on the next record
 * whose length, CRC and seq are valid, and every valid record is written back (each run of
 * consecutive seqs as a segment of its own); only the damaged records are lost, and every
 * missing seq range is counted (lost_corrupt, seq_gaps) and listed by gw_spool_lost_ranges().
 * Damage in the newest segment with no valid record after it is a torn tail: truncated and
 * counted in recovered_torn_tail.
 *
 * Bounds: when appending would make the spool larger than max_bytes, or leave less than
 * min_free_bytes free on its file system, the oldest whole segment is dropped (never the
 * newest) and every reader whose cursor was inside it counts the records it lost as
 * dropped_overflow. On ENOSPC (or EIO) from write, the record is not stored, counted as
 * dropped_enospc, and -ENOSPC returned; the spool stays usable.
 *
 * Pure storage: no event loop, no logging above debug.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw/crc32c.h" /* the checksum of the formats above */

#define GW_SPOOL_MAX_PAYLOAD 65536
#define GW_SPOOL_RESERVE_BLOCK 4096u

struct gw_spool;
struct gw_spool_reader;

struct gw_spool_options {
	const char *dir;          /* created 0700 if missing (the parent must exist) */
	uint64_t segment_bytes;   /* rotate when a segment reaches this size; default 1 MiB */
	uint64_t max_bytes;       /* 0 = no limit */
	uint64_t min_free_bytes;  /* 0 = no reserve */
};

struct gw_spool_stats {
	uint64_t appended;           /* records appended since open */
	uint64_t bytes;              /* bytes on disk in live segments */
	uint64_t segments;           /* live segments */
	uint64_t syncs;
	uint64_t recovered_torn_tail; /* tails truncated at open */
	uint64_t segments_quarantined;
	uint64_t records_lost_corrupt;
	uint64_t seq_gaps;
	uint64_t seqs_skipped;        /* reserved seqs not found after a crash (see above) */
	uint64_t skipped_lo, skipped_hi; /* their range, when seqs_skipped > 0 */
	uint64_t dropped_overflow;    /* records in segments dropped for the bounds */
	uint64_t dropped_enospc;      /* records that could not be written */
};

struct gw_spool_reader_stats {
	/* at creation, what the reader was owed from before: its backlog, and what of it was
	 * already dropped or lost (the two counters below start with that part) */
	uint64_t initial;
	uint64_t dropped_overflow; /* records this reader had not acked when dropped */
	uint64_t dropped_enospc;   /* records never stored while this reader existed */
	uint64_t lost_corrupt;     /* records past this reader's cursor lost to damage */
	uint64_t deadlettered;
};

struct gw_spool_record {
	uint64_t seq;
	int64_t ts_ms;
	uint8_t type;
	const uint8_t *payload; /* valid until the next call on the same reader */
	size_t len;
};

/* Opens (creating if needed) and recovers the spool. Returns 0, or -errno when the directory
 * cannot be created or opened (damage inside it is never an error). */
int gw_spool_open(const struct gw_spool_options *o, struct gw_spool **ret);
/* Syncs and closes; readers must have been freed. Accepts NULL; returns NULL. */
struct gw_spool *gw_spool_close(struct gw_spool *s);

/* Appends one record; *ret_seq gets its seq (may be NULL). Returns 0, -EMSGSIZE for a payload
 * over GW_SPOOL_MAX_PAYLOAD, or -ENOSPC (counted; see above). */
int gw_spool_append(struct gw_spool *s, int64_t ts_ms, uint8_t type, const void *payload,
		    size_t len, uint64_t *ret_seq);
/* fdatasync()s what was appended since the last sync (and the directory after a segment was
 * created or removed). Returns 0 or -errno; a failed sync is not retried on the same data:
 * the segment is closed and a new one begun. */
int gw_spool_sync(struct gw_spool *s);
/* Records appended and not yet synced. */
size_t gw_spool_unsynced(const struct gw_spool *s);

struct gw_spool_range {
	uint64_t lo, hi; /* inclusive */
};
/* The seq ranges found lost at open (damage, cut segments), in order; *ret_n of them. The
 * array stays valid until the spool is closed. */
const struct gw_spool_range *gw_spool_lost_ranges(const struct gw_spool *s, size_t *ret_n);

uint64_t gw_spool_first_seq(const struct gw_spool *s); /* oldest seq still stored */
uint64_t gw_spool_next_seq(const struct gw_spool *s);  /* seq the next append gets */
const struct gw_spool_stats *gw_spool_stats(const struct gw_spool *s);

/*
 * A reader (one per uplink): name is [A-Za-z0-9_.-]{1,31}. Its cursor is loaded from
 * cursor-<name>. A reader without a cursor file is new: it starts at next_seq (it does not
 * replay what was stored before it was configured) or, with from_start, at the oldest stored
 * record, and its cursor file is written at once, so that records appended from then on are
 * its own even if the process dies before its first acknowledgement. A cursor below first_seq
 * is raised to it and the difference counted as dropped_overflow.
 */
int gw_spool_reader_new(struct gw_spool *s, const char *name, bool from_start,
			struct gw_spool_reader **ret);
/* Saves the cursor and frees. Accepts NULL; returns NULL. */
struct gw_spool_reader *gw_spool_reader_free(struct gw_spool_reader *r);

/* Reads the record at the read position and advances it. Returns 1 (rec filled), 0 at the end,
 * or -errno on an I/O error. Records lost to damage or dropped segments are skipped. */
int gw_spool_reader_next(struct gw_spool_reader *r, struct gw_spool_record *rec);
/* Moves the read position back (or forward) to seq, e.g. to the cursor after a reconnect. */
void gw_spool_reader_seek(struct gw_spool_reader *r, uint64_t seq);
uint64_t gw_spool_reader_position(const struct gw_spool_reader *r);

/* Sets the cursor: every record below seq is delivered. Never moves backwards. Segments every
 * reader has passed are deleted. gw_spool_reader_save writes the cursor file: the first time
 * in a run atomically and durably, later in place with one pwrite (a crash of the daemon keeps
 * it; it is made durable at least every 10 s and by gw_spool_reader_free(), so a power cut can
 * only find an older cursor, never a newer one). Cheap enough for the owner to call after
 * every hundred acknowledgements. */
void gw_spool_reader_ack(struct gw_spool_reader *r, uint64_t seq);
uint64_t gw_spool_reader_cursor(const struct gw_spool_reader *r);
int gw_spool_reader_save(struct gw_spool_reader *r);
/* Records between the cursor and the end of the spool. */
uint64_t gw_spool_reader_backlog(const struct gw_spool_reader *r);
/* Bytes those records take on disk; within the cursor's segment estimated by record count. */
uint64_t gw_spool_reader_backlog_bytes(const struct gw_spool_reader *r);
/* Age in ms of the oldest record not yet acked (0 when none), against now_ms. */
int64_t gw_spool_reader_oldest_age(struct gw_spool_reader *r, int64_t now_ms);

/* Appends rec to deadletter-<name>.log (synced) and counts it. */
int gw_spool_reader_deadletter(struct gw_spool_reader *r, const struct gw_spool_record *rec);
const struct gw_spool_reader_stats *gw_spool_reader_stats(const struct gw_spool_reader *r);
