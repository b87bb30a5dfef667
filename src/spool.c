/* SPDX-License-Identifier: MIT */
/*
 * The durable spool: append-only segment files of CRC-framed records, read by each uplink
 * through its own persistent cursor. On-disk format and recovery rules: docs/spool-format.md.
 *
 * In memory we keep one index entry per live segment (seq range, valid length, a sparse offset
 * index every IDX_STRIDE records) so that reading, seeking and dropping never rescan a file.
 * The active segment is always the newest one and the only one ever written.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include "gw/crc32c.h"
#include "gw/fileio.h"
#include "gw/spool.h"
#include "gw/util.h"

#define SEG_MAGIC "GWQ1"
#define SEG_VERSION 1u
#define SEG_HDR_SIZE 32u
#define REC_HDR_SIZE 8u /* len | crc */
#define REC_FIXED 17u   /* seq | ts_ms | type: the part of len before the payload */
#define REC_PREFIX (REC_HDR_SIZE + REC_FIXED)
#define REC_MAX_LEN (REC_FIXED + GW_SPOOL_MAX_PAYLOAD)
#define IDX_STRIDE 64u
#define STATVFS_EVERY 64u
#define DEFAULT_SEGMENT_BYTES (1024u * 1024u)
#define MIN_SEGMENT_BYTES 64u
/* Large enough for any record, so one window read always covers a whole record. */
#define WIN_CAP (2u * (REC_HDR_SIZE + REC_MAX_LEN))
/* What a window starts with: about a hundred typical records per pread. Each uplink's reader
 * has one, so WIN_CAP for every window was a quarter of a megabyte of resident memory with
 * two uplinks; a window grows to WIN_CAP only for a record that needs it. */
#define WIN_SMALL (16u * 1024u)
#define COPY_CHUNK (64u * 1024u)
#define NAME_MAX_LEN 31u
#define TMP_PREFIX ".tmp-"

struct seg {
	uint64_t first_seq;
	uint64_t skip_from; /* from the header: seqs skip_from..first_seq - 1 were never used */
	uint64_t last_seq; /* first_seq - 1 while empty */
	uint64_t records;
	uint64_t bytes;    /* valid length of the file, header included */
	int rfd;           /* read fd, opened when a reader first needs it */
	uint64_t *idx;     /* offset of record number k * IDX_STRIDE */
	size_t nidx;
	size_t idx_cap;
};

/* A read-ahead window over one file: records are parsed in place, one pread per 16 KiB
 * (WIN_SMALL) or 128 KiB (WIN_CAP, after a record that needed it). */
struct win {
	const void *key; /* whose bytes buf holds; NULL when it holds nothing */
	uint8_t *buf;
	size_t cap;
	uint64_t off;
	size_t len;
};

#define RESERVE_FILE "reserve"
/* A cursor saved in place is made durable at least this often (cursor_save()). */
#define CURSOR_DURABLE_USEC (10 * 1000000ULL)
/* A record found by resynchronising must have a seq this close above the last good one. */
#define RESYNC_SEQ_SPAN (1ull << 32)

struct gw_spool {
	int dfd;
	int wfd; /* the active segment, segs[nsegs - 1]; -1 when it has to be (re)created */
	uint64_t segment_bytes;
	uint64_t max_bytes;
	uint64_t min_free_bytes;
	struct seg **segs;
	size_t nsegs;
	size_t segs_cap;
	uint64_t next_seq;
	size_t unsynced;
	bool dir_dirty;
	bool free_known;
	unsigned int since_statvfs;
	uint64_t free_est;
	uint64_t reserved; /* appends may use seqs below this without writing RESERVE_FILE */
	uint64_t skip_from; /* for the next segment's header: the skipped seqs before it */
	struct gw_spool_range *lost; /* seq ranges found missing at open */
	size_t nlost;
	struct gw_spool_reader *readers;
	struct gw_spool_stats stats;
};

struct gw_spool_reader {
	struct gw_spool *s;
	struct gw_spool_reader *next;
	char name[NAME_MAX_LEN + 1];
	uint64_t cursor;
	uint64_t saved_cursor;
	bool saved_valid; /* the cursor file holds saved_cursor */
	uint64_t pos;
	struct seg *loc_seg; /* where record loc_seq starts: loc_off in loc_seg */
	uint64_t loc_off;
	uint64_t loc_seq;
	struct win win;
	bool oldest_valid;
	uint64_t oldest_for;
	int64_t oldest_ts;
	int dl_fd;
	/* the cursor file, open for saves in place (gw_spool_reader_save()); -1 before the first */
	int cursor_fd;
	size_t cursor_len;   /* the length of the line it holds */
	bool cursor_dirty;   /* that line is not durable yet */
	uint64_t durable_us; /* when a line was last made durable */
	struct gw_spool_reader_stats stats;
};

/*
 * The clang-analyzer NOLINTs here and in the spool reader: it does not know that errno is
 * positive, so it follows paths on which reader_get() failed with "-errno >= 0" and the caller
 * then reads p unset or after win_get() replaced the window. gcc -fanalyzer does not.
 */
static inline uint32_t get_le32(const uint8_t *p)
{
	/* NOLINTNEXTLINE(clang-analyzer-unix.Malloc): see above */
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static void seg_name(char *buf, size_t size, uint64_t first_seq)
{
	snprintf(buf, size, "seg-%016" PRIx64 ".log", first_seq);
}

/* Accepts exactly what seg_name() writes, so that the name is always rebuilt byte for byte. */
static bool seg_name_parse(const char *name, uint64_t *ret)
{
	uint64_t v = 0;

	if (strlen(name) != 24 || strncmp(name, "seg-", 4) != 0 || strcmp(name + 20, ".log") != 0)
		return false;
	for (int i = 4; i < 20; i++) {
		char c = name[i];

		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			return false;
	}
	/* seq 0 is never used: first_seq - 1 must not wrap */
	if (v == 0)
		return false;
	*ret = v;
	return true;
}

static void seg_header_build(uint8_t *h, uint64_t first_seq, uint64_t skip_from)
{
	memset(h, 0, SEG_HDR_SIZE);
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): a binary magic, not a string */
	memcpy(h, SEG_MAGIC, 4);
	put_le32(h + 4, SEG_VERSION);
	put_le64(h + 8, first_seq);
	put_le64(h + 16, skip_from < first_seq ? skip_from : 0);
	put_le32(h + 24, gw_crc32c(0, h, 24));
}

static bool seg_header_ok(const uint8_t *h, uint64_t first_seq)
{
	return !memcmp(h, SEG_MAGIC, 4) && get_le32(h + 4) == SEG_VERSION &&
	       get_le64(h + 8) == first_seq && get_le32(h + 24) == gw_crc32c(0, h, 24);
}

static void rec_header_build(uint8_t *h, uint64_t seq, int64_t ts_ms, uint8_t type,
			     const void *payload, size_t len)
{
	put_le32(h, (uint32_t)(REC_FIXED + len));
	put_le64(h + 8, seq);
	put_le64(h + 16, (uint64_t)ts_ms);
	h[24] = type;
	put_le32(h + 4, gw_crc32c(gw_crc32c(0, h + REC_HDR_SIZE, REC_FIXED), payload, len));
}

static struct seg *seg_new(uint64_t first_seq)
{
	struct seg *seg = gw_new0(struct seg, 1);

	seg->first_seq = first_seq;
	seg->last_seq = first_seq - 1;
	seg->bytes = SEG_HDR_SIZE;
	seg->rfd = -1;
	return seg;
}

static void seg_free(struct seg *seg)
{
	if (!seg)
		return;
	if (seg->rfd >= 0)
		close(seg->rfd);
	free(seg->idx);
	free(seg);
}

/* Accounts a record of length len (seq..payload) stored at off. */
static void seg_add_record(struct seg *seg, uint64_t off, uint32_t len)
{
	if (seg->records % IDX_STRIDE == 0) {
		if (seg->nidx == seg->idx_cap) {
			seg->idx_cap = seg->idx_cap ? seg->idx_cap * 2 : 8;
			seg->idx = gw_realloc_array(seg->idx, seg->idx_cap, sizeof(*seg->idx));
		}
		seg->idx[seg->nidx++] = off;
	}
	seg->records++;
	seg->last_seq = seg->first_seq + seg->records - 1;
	seg->bytes = off + REC_HDR_SIZE + len;
}

/*
 * Makes bytes [off, off + n) of fd available in w and points *ret at them. limit is the valid
 * length of the file: nothing beyond it is ever read. -ENODATA when the file ends first.
 */
static int win_get(struct win *w, const void *key, int fd, uint64_t limit, uint64_t off,
		   size_t n, const uint8_t **ret)
{
	size_t want, got = 0;

	if (off > limit || n > limit - off || n > WIN_CAP)
		return -ENODATA;
	if (w->key == key && off >= w->off && off + n <= w->off + w->len) {
		*ret = w->buf + (off - w->off);
		return 0;
	}
	if (w->cap < n || !w->buf) {
		/* not gw_malloc0: zeroing what pread overwrites is wasted work */
		w->cap = n > WIN_SMALL ? WIN_CAP : WIN_SMALL;
		free(w->buf);
		w->buf = malloc(w->cap);
		if (!w->buf) {
			fputs("sensorgw: out of memory\n", stderr);
			abort();
		}
	}
	w->key = NULL;
	want = limit - off < w->cap ? (size_t)(limit - off) : w->cap;
	while (got < want) {
		ssize_t k = pread(fd, w->buf + got, want - got, (off_t)(off + got));

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			break;
		got += (size_t)k;
	}
	if (got < n)
		return -ENODATA;
	w->key = key;
	w->off = off;
	w->len = got;
	*ret = w->buf;
	return 0;
}

/*
 * Walks the records of a segment file from off on, expecting seqs from seg->first_seq, and
 * indexes every valid one; stops at the first record that is short, out of bounds, fails its
 * CRC or breaks the seq sequence. seg->bytes ends up at the end of that run (off for none).
 */
static void seg_scan(struct seg *seg, struct win *w, int fd, uint64_t off, uint64_t size)
{
	seg->bytes = off;
	while (off < size) {
		const uint8_t *p;
		uint32_t len;

		if (win_get(w, seg, fd, size, off, REC_HDR_SIZE, &p) < 0)
			break;
		len = get_le32(p);
		if (len < REC_FIXED || len > REC_MAX_LEN)
			break;
		if (win_get(w, seg, fd, size, off, REC_HDR_SIZE + len, &p) < 0)
			break;
		if (gw_crc32c(0, p + REC_HDR_SIZE, len) != get_le32(p + 4))
			break;
		if (get_le64(p + REC_HDR_SIZE) != seg->first_seq + seg->records)
			break;
		seg_add_record(seg, off, len);
		off += REC_HDR_SIZE + len;
	}
	w->key = NULL;
}

/*
 * Resynchronises after damage: the first offset at or after off where a whole record with a
 * valid length and CRC starts whose seq lies above after_seq (and not absurdly far above it).
 * Cheap checks first, so the CRC runs only where length and seq are plausible.
 */
static bool seg_resync(struct win *w, int fd, uint64_t size, uint64_t off, uint64_t after_seq,
		       uint64_t *ret_off, uint64_t *ret_seq)
{
	static const char key; /* the window's owner during the search */

	for (; off + REC_PREFIX <= size; off++) {
		const uint8_t *p = NULL; /* set by win_get() when it returns 0 */
		uint64_t seq;
		uint32_t len;

		if (win_get(w, &key, fd, size, off, REC_PREFIX, &p) < 0)
			break;
		len = get_le32(p);
		seq = get_le64(p + REC_HDR_SIZE);
		if (len < REC_FIXED || len > REC_MAX_LEN || len > size - off - REC_HDR_SIZE ||
		    seq <= after_seq || seq - after_seq > RESYNC_SEQ_SPAN)
			continue;
		if (win_get(w, &key, fd, size, off, REC_HDR_SIZE + len, &p) < 0 ||
		    gw_crc32c(0, p + REC_HDR_SIZE, len) != get_le32(p + 4))
			continue;
		*ret_off = off;
		*ret_seq = seq;
		w->key = NULL;
		return true;
	}
	w->key = NULL;
	return false;
}

static void spool_add_lost(struct gw_spool *s, uint64_t lo, uint64_t hi)
{
	s->lost = gw_realloc_array(s->lost, s->nlost + 1, sizeof(*s->lost));
	s->lost[s->nlost].lo = lo;
	s->lost[s->nlost].hi = hi;
	s->nlost++;
	s->stats.seq_gaps++;
	s->stats.records_lost_corrupt += hi - lo + 1;
}

/* Seqs in [lo, hi] that were found missing at open. */
static uint64_t spool_lost_between(const struct gw_spool *s, uint64_t lo, uint64_t hi)
{
	uint64_t n = 0;

	for (size_t i = 0; i < s->nlost; i++) {
		uint64_t a = s->lost[i].lo > lo ? s->lost[i].lo : lo;
		uint64_t b = s->lost[i].hi < hi ? s->lost[i].hi : hi;

		if (a <= b)
			n += b - a + 1;
	}
	return n;
}

static void spool_push_seg(struct gw_spool *s, struct seg *seg)
{
	if (s->nsegs == s->segs_cap) {
		s->segs_cap = s->segs_cap ? s->segs_cap * 2 : 16;
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, as meant */
		s->segs = gw_realloc_array(s->segs, s->segs_cap, sizeof(*s->segs));
	}
	s->segs[s->nsegs++] = seg;
	s->stats.segments = s->nsegs;
	s->stats.bytes += seg->bytes;
}

/* Unlinks segment i and forgets it; readers looking at it find their place again by seq. */
static void spool_unlink_seg(struct gw_spool *s, size_t i)
{
	struct seg *seg = s->segs[i];
	char name[64];

	for (struct gw_spool_reader *rd = s->readers; rd; rd = rd->next) {
		if (rd->loc_seg == seg)
			rd->loc_seg = NULL;
		if (rd->win.key == seg)
			rd->win.key = NULL;
	}
	seg_name(name, sizeof(name), seg->first_seq);
	/* close first: a file still open somewhere keeps its blocks allocated */
	if (seg->rfd >= 0) {
		close(seg->rfd);
		seg->rfd = -1;
	}
	unlinkat(s->dfd, name, 0);
	s->stats.bytes -= seg->bytes;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, as meant */
	memmove(s->segs + i, s->segs + i + 1, (s->nsegs - i - 1) * sizeof(*s->segs));
	s->nsegs--;
	s->stats.segments = s->nsegs;
	s->dir_dirty = true;
	s->since_statvfs = STATVFS_EVERY;
	seg_free(seg);
}

/* Renames name to name.corrupt (or name.N.corrupt), never over an earlier quarantined file. */
static int rename_aside(int dfd, const char *name)
{
	char bad[96];

	for (int i = 0; i < 100; i++) {
		if (i == 0)
			snprintf(bad, sizeof(bad), "%s.corrupt", name);
		else
			snprintf(bad, sizeof(bad), "%s.%d.corrupt", name, i);
		if (renameat2(dfd, name, dfd, bad, RENAME_NOREPLACE) == 0)
			return 0;
		if (errno == EEXIST)
			continue;
		if (errno != EINVAL && errno != ENOSYS)
			return -errno;
		/* a file system without RENAME_NOREPLACE: check, then rename */
		if (faccessat(dfd, bad, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			continue;
		if (renameat(dfd, name, dfd, bad) < 0)
			return -errno;
		return 0;
	}
	return -EEXIST;
}

/*
 * Writes bytes [lo, hi) of fd, records of consecutive seqs from first_seq, as the segment
 * seg-<first_seq>.log with a fresh header (tmp file, fsync, rename). Returns 0 or -errno.
 */
static int seg_write_back(struct gw_spool *s, int fd, uint64_t first_seq, uint64_t skip_from,
			  uint64_t lo, uint64_t hi)
{
	char name[64], tmp[80];
	uint8_t hdr[SEG_HDR_SIZE];
	uint8_t *buf;
	int out, r;

	seg_name(name, sizeof(name), first_seq);
	snprintf(tmp, sizeof(tmp), TMP_PREFIX "%s", name);
	unlinkat(s->dfd, tmp, 0);
	out = openat(s->dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return -errno;
	seg_header_build(hdr, first_seq, skip_from);
	r = gw_file_write_full(out, hdr, sizeof(hdr));
	buf = gw_malloc0(COPY_CHUNK);
	for (uint64_t off = lo; r == 0 && off < hi;) {
		uint64_t left = hi - off;
		size_t want = left < COPY_CHUNK ? (size_t)left : COPY_CHUNK;
		ssize_t k = pread(fd, buf, want, (off_t)off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			r = k < 0 ? -errno : -EIO;
			break;
		}
		r = gw_file_write_full(out, buf, (size_t)k);
		off += (uint64_t)k;
	}
	free(buf);
	if (r == 0 && fsync(out) < 0)
		r = -errno;
	if (close(out) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(s->dfd, tmp, s->dfd, name) < 0)
		r = -errno;
	if (r < 0)
		unlinkat(s->dfd, tmp, 0);
	s->dir_dirty = true;
	return r;
}

/* The atomic recipe (docs/spool-format.md, "Cursor file"; gw/fileio.h), through TMP_PREFIX
 * name. */
static int write_atomic(int dfd, const char *name, const void *buf, size_t len)
{
	char tmp[96];

	snprintf(tmp, sizeof(tmp), TMP_PREFIX "%s", name);
	return gw_file_write_atomic(dfd, name, tmp, buf, len, NULL);
}

/*
 * The small state files (cursor-<reader>, reserve) hold one checked line:
 * "<body> <crc32c of body, 8 lower-case hex digits>\n", the body starting with a seq in decimal
 * (1..20 digits, not 0). Returns the seq and the rest of the body after it ("" for a cursor,
 * " c" or " r" for the reservation) in *ret_tail (length *ret_tail_len).
 */
static int checked_parse(const char *buf, size_t n, uint64_t *ret, const char **ret_tail,
			 size_t *ret_tail_len)
{
	size_t body, digits = 0;
	uint64_t v = 0;
	uint32_t crc = 0;

	if (n < 11 || buf[n - 1] != '\n' || buf[n - 10] != ' ')
		return -EBADMSG;
	body = n - 10;
	for (size_t i = body + 1; i < n - 1; i++) {
		char c = buf[i];

		if (c >= '0' && c <= '9')
			crc = crc << 4 | (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			crc = crc << 4 | (uint32_t)(c - 'a' + 10);
		else
			return -EBADMSG;
	}
	if (crc != gw_crc32c(0, buf, body))
		return -EBADMSG;
	while (digits < body && buf[digits] >= '0' && buf[digits] <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			return -EBADMSG;
		v = v * 10 + (uint64_t)(buf[digits] - '0');
		digits++;
	}
	if (digits < 1 || digits > 20 || v == 0)
		return -EBADMSG;
	*ret = v;
	*ret_tail = buf + digits;
	*ret_tail_len = body - digits;
	return 0;
}

/* Writes "<seq><tail> <crc>\n" as name, atomically. */
/* The checked line for seq and tail into buf (48 bytes); its length. */
static size_t checked_format(char *buf, uint64_t seq, const char *tail)
{
	int n;

	n = snprintf(buf, 48, "%" PRIu64 "%s", seq, tail);
	n += snprintf(buf + n, 48 - (size_t)n, " %08" PRIx32 "\n", gw_crc32c(0, buf, (size_t)n));
	return (size_t)n;
}

static int checked_save(int dfd, const char *name, uint64_t seq, const char *tail)
{
	char buf[48];

	return write_atomic(dfd, name, buf, checked_format(buf, seq, tail));
}

/* A cursor file: "<seq> <crc>\n". */
static int cursor_load(int dfd, const char *fname, uint64_t *ret)
{
	const char *tail;
	char buf[64];
	size_t n, tail_len;
	int r = gw_file_read_small(dfd, fname, buf, sizeof(buf), &n);

	if (r < 0)
		return r;
	r = checked_parse(buf, n, ret, &tail, &tail_len);
	if (r < 0)
		return r;
	return tail_len == 0 ? 0 : -EBADMSG;
}

/*
 * The reservation file: "<seq> <state> <crc>\n", state 'c' (written by a clean close: seq is
 * exactly the next seq) or 'r' (running: seqs below seq may have been handed out).
 */
static int reserve_load(int dfd, uint64_t *ret, bool *ret_clean)
{
	const char *tail;
	char buf[64];
	size_t n, tail_len;
	int r = gw_file_read_small(dfd, RESERVE_FILE, buf, sizeof(buf), &n);

	if (r < 0)
		return r;
	r = checked_parse(buf, n, ret, &tail, &tail_len);
	if (r < 0)
		return r;
	if (tail_len != 2 || tail[0] != ' ' || (tail[1] != 'c' && tail[1] != 'r'))
		return -EBADMSG;
	*ret_clean = tail[1] == 'c';
	return 0;
}

/* Makes seqs below upto durable as handed out (atomically, fsync'ed). */
static int reserve_save(struct gw_spool *s, uint64_t upto, bool clean)
{
	int r = checked_save(s->dfd, RESERVE_FILE, upto, clean ? " c" : " r");

	if (r < 0)
		return r;
	s->reserved = upto;
	return 0;
}

static struct seg *spool_active(const struct gw_spool *s)
{
	return s->nsegs ? s->segs[s->nsegs - 1] : NULL;
}

/*
 * Starts a new active segment at next_seq (rotation). The old one is synced first so that it
 * is complete on disk before a newer segment exists: recovery treats damage in any but the
 * newest segment as media damage.
 */
static int spool_begin_segment(struct gw_spool *s)
{
	struct seg *last = spool_active(s);
	struct seg *seg;
	uint8_t hdr[SEG_HDR_SIZE];
	char name[64];
	int fd, r;

	if (s->wfd >= 0) {
		if (s->unsynced && fdatasync(s->wfd) == 0)
			s->stats.syncs++;
		close(s->wfd);
		s->wfd = -1;
		s->unsynced = 0;
	}
	seg_name(name, sizeof(name), s->next_seq);
	if (last && last->records == 0 && last->first_seq == s->next_seq) {
		/* the empty newest segment already has the right name: reuse it, cutting off
		 * whatever a failed append may have left behind its header */
		fd = openat(s->dfd, name, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		if (ftruncate(fd, SEG_HDR_SIZE) < 0) {
			r = -errno;
			close(fd);
			return r;
		}
		s->wfd = fd;
		s->skip_from = 0;
		return 0;
	}

	fd = openat(s->dfd, name, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    0600);
	if (fd < 0 && errno == EEXIST && rename_aside(s->dfd, name) == 0) {
		/* a file we do not index holds the name: keep it for inspection */
		s->stats.segments_quarantined++;
		fd = openat(s->dfd, name,
			    O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		return -errno;
	seg_header_build(hdr, s->next_seq, s->skip_from);
	r = gw_file_write_full(fd, hdr, sizeof(hdr));
	if (r < 0) {
		unlinkat(s->dfd, name, 0);
		close(fd);
		return r;
	}
	s->skip_from = 0;
	s->dir_dirty = true;
	s->since_statvfs = STATVFS_EVERY;
	seg = seg_new(s->next_seq);
	spool_push_seg(s, seg);
	s->wfd = fd;
	/* an empty older segment (left by a seq jump at open) holds nothing */
	if (last && last->records == 0)
		spool_unlink_seg(s, s->nsegs - 2);
	return 0;
}

static void spool_refresh_free(struct gw_spool *s)
{
	struct statvfs v;

	s->since_statvfs = 0;
	s->free_known = fstatvfs(s->dfd, &v) == 0;
	if (s->free_known)
		s->free_est = (uint64_t)v.f_bavail * v.f_frsize;
}

static bool spool_over_bounds(struct gw_spool *s, uint64_t reclen)
{
	if (s->max_bytes && s->stats.bytes + reclen > s->max_bytes)
		return true;
	if (s->min_free_bytes) {
		if (s->since_statvfs >= STATVFS_EVERY)
			spool_refresh_free(s);
		if (s->free_known &&
		    (s->free_est < reclen || s->free_est - reclen < s->min_free_bytes))
			return true;
	}
	return false;
}

static void spool_drop_oldest(struct gw_spool *s)
{
	struct seg *seg = s->segs[0];

	for (struct gw_spool_reader *rd = s->readers; rd; rd = rd->next) {
		if (seg->records && rd->cursor <= seg->last_seq) {
			uint64_t from = rd->cursor > seg->first_seq ? rd->cursor : seg->first_seq;

			rd->stats.dropped_overflow += seg->last_seq - from + 1;
			rd->cursor = seg->last_seq + 1;
		}
	}
	s->stats.dropped_overflow += seg->records;
	spool_unlink_seg(s, 0);
}

/* Even with every older segment dropped the record would not fit: drop nothing for it. */
static bool spool_never_fits(const struct gw_spool *s, uint64_t reclen)
{
	if (s->max_bytes && SEG_HDR_SIZE + reclen > s->max_bytes)
		return true;
	/* the disk is full of someone else's files: our data would not make the difference */
	if (s->min_free_bytes && s->free_known &&
	    s->free_est + s->stats.bytes < reclen + s->min_free_bytes + SEG_HDR_SIZE)
		return true;
	return false;
}

/*
 * Drops oldest segments until a record of reclen bytes fits the bounds. -ENOSPC when it
 * cannot fit at all (then nothing is dropped for it), or when only an empty active segment is
 * left.
 */
static int spool_make_room(struct gw_spool *s, uint64_t reclen)
{
	if (spool_over_bounds(s, reclen) && spool_never_fits(s, reclen))
		return -ENOSPC;
	while (spool_over_bounds(s, reclen)) {
		int r;

		if (s->nsegs >= 2) {
			spool_drop_oldest(s);
			continue;
		}
		if (s->nsegs == 1 && s->segs[0]->records > 0) {
			/* the newest segment is never dropped: make it an older one first */
			r = spool_begin_segment(s);
			if (r < 0)
				return r;
			continue;
		}
		return -ENOSPC;
	}
	return 0;
}

static void spool_free(struct gw_spool *s)
{
	if (s->wfd >= 0)
		close(s->wfd);
	for (size_t i = 0; i < s->nsegs; i++)
		seg_free(s->segs[i]);
	free(s->segs);
	free(s->lost);
	if (s->dfd >= 0)
		close(s->dfd);
	free(s);
}

static int seqcmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Lists the directory: segment seqs (sorted), the highest valid cursor; removes tmp files. */
static int spool_list(struct gw_spool *s, uint64_t **ret, size_t *ret_n, uint64_t *cursor_max)
{
	uint64_t *seqs = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int fd;

	fd = openat(s->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		int r = -errno;

		close(fd);
		return r;
	}
	*cursor_max = 0;
	while ((de = readdir(d))) {
		uint64_t v;

		if (!strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX))) {
			unlinkat(s->dfd, de->d_name, 0);
			s->dir_dirty = true;
		} else if (seg_name_parse(de->d_name, &v)) {
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				seqs = gw_realloc_array(seqs, cap, sizeof(*seqs));
			}
			seqs[n++] = v;
		} else if (!strncmp(de->d_name, "cursor-", 7)) {
			if (cursor_load(s->dfd, de->d_name, &v) == 0 && v > *cursor_max)
				*cursor_max = v;
		}
	}
	closedir(d);
	if (n)
		qsort(seqs, n, sizeof(*seqs), seqcmp);
	*ret = seqs;
	*ret_n = n;
	return 0;
}

/* A run of valid records found past damage: its index entry and where it starts in the file. */
struct run {
	struct seg *seg;
	uint64_t off;
};

/* Opens and indexes a segment file written by seg_write_back(). NULL if it cannot be read. */
static struct seg *seg_load(struct gw_spool *s, struct win *w, uint64_t first_seq)
{
	struct seg *seg;
	struct stat st;
	char name[64];
	int fd;

	seg_name(name, sizeof(name), first_seq);
	fd = openat(s->dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return NULL;
	}
	seg = seg_new(first_seq);
	seg_scan(seg, w, fd, SEG_HDR_SIZE, (uint64_t)st.st_size);
	close(fd);
	if (!seg->records) {
		seg_free(seg);
		return NULL;
	}
	return seg;
}

/*
 * Scans one segment file and decides its fate, pushing what is live of it onto s->segs: the
 * file itself or, after damage, its valid records (the prefix under the file's own name, each
 * later run of consecutive seqs as a segment of its own). Seqs it does not keep show up as
 * holes between the live segments and are counted by spool_recover(). *seq_floor is raised
 * past every seq the file shows was handed out. next_name is the next segment file's name
 * (UINT64_MAX for the newest); runs are looked for only below it.
 */
static void spool_recover_seg(struct gw_spool *s, uint64_t name_seq, uint64_t next_name,
			      struct win *w, uint64_t *seq_floor)
{
	bool newest = next_name == UINT64_MAX;
	struct seg *prev = spool_active(s);
	uint64_t prev_end = prev ? prev->last_seq + 1 : 0;
	struct run *runs = NULL;
	size_t nruns = 0;
	uint8_t hdr[SEG_HDR_SIZE];
	const uint8_t *p;
	struct seg *seg;
	struct stat st;
	uint64_t size;
	char name[64];
	bool hdr_ok;
	int fd;

	seg_name(name, sizeof(name), name_seq);
	if (name_seq > *seq_floor)
		*seq_floor = name_seq;
	fd = -1;
	if (newest)
		fd = openat(s->dfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	/* read-only is enough to index it; the cut of a torn tail then fails (see below) */
	if (fd < 0)
		fd = openat(s->dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return;
	}
	size = (uint64_t)st.st_size;
	if (newest && size < SEG_HDR_SIZE) {
		/* a crash while the segment was being created: nothing was ever in it */
		unlinkat(s->dfd, name, 0);
		s->dir_dirty = true;
		s->stats.recovered_torn_tail++;
		close(fd);
		return;
	}
	hdr_ok = win_get(w, hdr, fd, size, 0, SEG_HDR_SIZE, &p) == 0 && seg_header_ok(p, name_seq);
	seg = seg_new(name_seq);
	if (hdr_ok)
		seg->skip_from = get_le64(p + 16);
	w->key = NULL;
	/* with a bad header the records still carry their own CRC and seq: scan them anyway */
	seg_scan(seg, w, fd, SEG_HDR_SIZE, size);
	if (seg->records && seg->last_seq + 1 > *seq_floor)
		*seq_floor = seg->last_seq + 1;

	if (seg->first_seq < prev_end) {
		/* overlaps the segment before it: nothing here can be trusted to be new */
		s->stats.segments_quarantined++;
		s->dir_dirty = true;
		rename_aside(s->dfd, name);
		goto drop;
	}
	/* past the damage: every later run of valid records, resynchronised on */
	if (seg->bytes < size) {
		uint64_t after = seg->records ? seg->last_seq : name_seq - 1;
		uint64_t off = seg->bytes, roff, rseq;

		while (seg_resync(w, fd, size, off, after, &roff, &rseq) && rseq < next_name) {
			struct seg *run = seg_new(rseq);

			seg_scan(run, w, fd, roff, size);
			if (run->last_seq >= next_name) {
				seg_free(run);
				break;
			}
			runs = gw_realloc_array(runs, nruns + 1, sizeof(*runs));
			runs[nruns++] = (struct run){ .seg = run, .off = roff };
			after = run->last_seq;
			if (after + 1 > *seq_floor)
				*seq_floor = after + 1;
			off = run->bytes;
		}
	}

	if (nruns || !hdr_ok || (!newest && seg->bytes < size)) {
		/* damage: the file goes aside as *.corrupt, its valid records come back */
		s->stats.segments_quarantined++;
		s->dir_dirty = true;
		if (rename_aside(s->dfd, name) < 0 ||
		    (seg->records &&
		     seg_write_back(s, fd, name_seq, seg->skip_from, SEG_HDR_SIZE, seg->bytes) < 0))
			seg->records = 0;
		if (seg->records)
			spool_push_seg(s, seg);
		else
			seg_free(seg);
		seg = NULL;
		for (size_t i = 0; i < nruns; i++) {
			struct seg *run = runs[i].seg;

			if (seg_write_back(s, fd, run->first_seq, 0, runs[i].off, run->bytes) == 0) {
				struct seg *back = seg_load(s, w, run->first_seq);

				if (back)
					spool_push_seg(s, back);
			}
			seg_free(run);
		}
		free(runs);
		close(fd);
		return;
	}
	free(runs);
	if (seg->bytes < size) {
		/* the torn tail of the newest segment: a write the crash interrupted */
		if (ftruncate(fd, (off_t)seg->bytes) == 0 && fsync(fd) == 0)
			s->stats.recovered_torn_tail++;
		/* if the cut fails the garbage stays behind the valid prefix; a new active
		 * segment is begun (below) and the next open salvages this one */
	}
	if (seg->records == 0 && !newest) {
		unlinkat(s->dfd, name, 0);
		s->dir_dirty = true;
		goto drop;
	}
	close(fd);
	spool_push_seg(s, seg);
	return;
drop:
	close(fd);
	seg_free(seg);
}

static int spool_recover(struct gw_spool *s)
{
	struct win w = { 0 };
	uint64_t *seqs = NULL;
	uint64_t seq_floor = 1, cursor_max = 0, expect, reserved = 0;
	bool tail_ok = false, clean = false;
	size_t n = 0;
	int r;

	r = spool_list(s, &seqs, &n, &cursor_max);
	if (r < 0)
		return r;
	if (reserve_load(s->dfd, &reserved, &clean) < 0)
		reserved = 0;
	for (size_t i = 0; i < n; i++)
		spool_recover_seg(s, seqs[i], i + 1 < n ? seqs[i + 1] : UINT64_MAX, &w, &seq_floor);
	free(w.buf);
	if (s->nsegs) {
		struct seg *last = spool_active(s);
		struct stat st;
		char name[64];

		/* appendable only when nothing invalid follows the valid prefix */
		seg_name(name, sizeof(name), last->first_seq);
		tail_ok = fstatat(s->dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			  (uint64_t)st.st_size == last->bytes;
	}

	/* every seq from the oldest segment's name on was handed out once: what is not in a
	 * live segment now was lost to damage */
	expect = n ? seqs[0] : 1;
	for (size_t i = 0; i < s->nsegs; i++) {
		struct seg *seg = s->segs[i];
		/* seqs skipped after a crash, noted in the header of the segment after them, were
		 * never records (or were reported as possibly lost at that open) */
		uint64_t end = seg->first_seq;

		if (seg->skip_from && seg->skip_from < end)
			end = seg->skip_from > expect ? seg->skip_from : expect;
		if (end > expect)
			spool_add_lost(s, expect, end - 1);
		if (seg->last_seq + 1 > expect)
			expect = seg->last_seq + 1;
	}
	free(seqs);
	/* a cursor beyond the stored records means they were delivered and then lost (power
	 * cut before a sync, a cut file): never hand their seqs out again. So does a
	 * reservation written by a clean close, which is exact. */
	s->next_seq = seq_floor > cursor_max ? seq_floor : cursor_max;
	if (expect > s->next_seq)
		s->next_seq = expect;
	if (clean && reserved > s->next_seq)
		s->next_seq = reserved;
	if (s->next_seq > expect)
		spool_add_lost(s, expect, s->next_seq - 1);
	/* after a crash, seqs up to the reservation may or may not have been used */
	if (!clean && reserved > s->next_seq) {
		s->stats.seqs_skipped = reserved - s->next_seq;
		s->stats.skipped_lo = s->next_seq;
		s->stats.skipped_hi = reserved - 1;
		s->skip_from = s->next_seq;
		s->next_seq = reserved;
	}
	/* the running mark: a crash from here on cannot hand out a seq twice */
	(void)reserve_save(s, s->next_seq + GW_SPOOL_RESERVE_BLOCK, false);

	if (tail_ok && s->nsegs) {
		struct seg *last = spool_active(s);
		char name[64];

		seg_name(name, sizeof(name), last->first_seq);
		if (last->last_seq + 1 == s->next_seq && last->bytes < s->segment_bytes)
			s->wfd = openat(s->dfd, name, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	}
	/* failing to begin a segment (a full disk) is not fatal: append retries */
	if (s->wfd < 0)
		spool_begin_segment(s);
	if (s->dir_dirty && fsync(s->dfd) == 0)
		s->dir_dirty = false;
	s->since_statvfs = STATVFS_EVERY;
	return 0;
}

int gw_spool_open(const struct gw_spool_options *o, struct gw_spool **ret)
{
	struct gw_spool *s;
	bool created = false;
	int r;

	if (!o || !o->dir || !*o->dir || !ret)
		return -EINVAL;
	s = gw_new0(struct gw_spool, 1);
	s->dfd = -1;
	s->wfd = -1;
	s->segment_bytes = o->segment_bytes ? o->segment_bytes : DEFAULT_SEGMENT_BYTES;
	if (s->segment_bytes < MIN_SEGMENT_BYTES)
		s->segment_bytes = MIN_SEGMENT_BYTES;
	s->max_bytes = o->max_bytes;
	s->min_free_bytes = o->min_free_bytes;

	if (mkdir(o->dir, 0700) == 0)
		created = true;
	else if (errno != EEXIST) {
		r = -errno;
		goto fail;
	}
	s->dfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dfd < 0) {
		r = -errno;
		goto fail;
	}
	/* after mkdir: the new directory entry must survive a power cut like the files in it */
	if (created)
		(void)gw_file_fsync_parent(o->dir);
	r = spool_recover(s);
	if (r < 0)
		goto fail;
	*ret = s;
	return 0;
fail:
	spool_free(s);
	return r;
}

int gw_spool_sync(struct gw_spool *s)
{
	int r = 0;

	if (s->wfd >= 0 && s->unsynced) {
		if (fdatasync(s->wfd) < 0) {
			r = -errno;
			/* after a failed fsync the kernel may have dropped the dirty pages; a retry
			 * could report success over lost data, so this segment is finished */
			close(s->wfd);
			s->wfd = -1;
			s->unsynced = 0;
			spool_begin_segment(s);
		} else {
			s->stats.syncs++;
			s->unsynced = 0;
		}
	}
	if (s->dir_dirty) {
		if (fsync(s->dfd) < 0) {
			if (r == 0)
				r = -errno;
		} else {
			s->dir_dirty = false;
		}
	}
	return r;
}

struct gw_spool *gw_spool_close(struct gw_spool *s)
{
	if (!s)
		return NULL;
	/* only after the records are durable may the reservation say exactly where they end */
	if (gw_spool_sync(s) == 0)
		(void)reserve_save(s, s->next_seq, true);
	spool_free(s);
	return NULL;
}

/*
 * A reader at the tail would read the record just written straight back (one pread per record
 * at a few hundred a second): a window that ends where the record starts gets a copy of it
 * instead, the same bytes as in the file, while it has room.
 */
static void feed_windows(struct gw_spool *s, const struct seg *seg, const uint8_t *h,
			 const void *payload, size_t len)
{
	for (struct gw_spool_reader *rd = s->readers; rd; rd = rd->next) {
		struct win *w = &rd->win;

		if (w->key != seg || w->off + w->len != seg->bytes ||
		    w->cap - w->len < REC_PREFIX + len)
			continue;
		memcpy(w->buf + w->len, h, REC_PREFIX);
		if (len)
			memcpy(w->buf + w->len + REC_PREFIX, payload, len);
		w->len += REC_PREFIX + len;
	}
}

int gw_spool_append(struct gw_spool *s, int64_t ts_ms, uint8_t type, const void *payload,
		    size_t len, uint64_t *ret_seq)
{
	uint8_t h[REC_PREFIX];
	struct iovec iov[2];
	struct seg *seg;
	uint64_t reclen = REC_PREFIX + len;
	int r;

	if (len > GW_SPOOL_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (len && !payload)
		return -EINVAL;
	seg = spool_active(s);
	/* an open wfd always belongs to the newest segment; !seg keeps that explicit for
	 * gcc -fanalyzer, which cannot see the invariant */
	if (s->wfd < 0 || !seg || (seg->bytes >= s->segment_bytes && seg->records > 0)) {
		r = spool_begin_segment(s);
		if (r < 0)
			goto fail;
	}
	r = spool_make_room(s, reclen);
	if (r < 0)
		goto fail;
	/* never a seq that is not durably reserved: a power cut must not hand it out again */
	if (s->next_seq >= s->reserved) {
		r = reserve_save(s, s->next_seq + GW_SPOOL_RESERVE_BLOCK, false);
		if (r < 0)
			goto fail;
	}
	seg = spool_active(s);

	rec_header_build(h, s->next_seq, ts_ms, type, payload, len);
	iov[0].iov_base = h;
	iov[0].iov_len = sizeof(h);
	iov[1].iov_base = (void *)payload;
	iov[1].iov_len = len;
	r = gw_file_writev_full(s->wfd, iov, 2);
	if (r < 0) {
		/* cut a partial record off at once: the next append would land behind it. If
		 * that fails, or the device reported EIO, this segment takes no more writes. */
		if (ftruncate(s->wfd, (off_t)seg->bytes) < 0 || r == -EIO) {
			close(s->wfd);
			s->wfd = -1;
		}
		goto fail;
	}
	feed_windows(s, seg, h, payload, len);
	seg_add_record(seg, seg->bytes, (uint32_t)(REC_FIXED + len));
	s->stats.bytes += reclen;
	s->stats.appended++;
	if (ret_seq)
		*ret_seq = s->next_seq;
	s->next_seq++;
	s->unsynced++;
	s->since_statvfs++;
	s->free_est = s->free_est > reclen ? s->free_est - reclen : 0;
	return 0;
fail:
	s->stats.dropped_enospc++;
	for (struct gw_spool_reader *rd = s->readers; rd; rd = rd->next)
		rd->stats.dropped_enospc++;
	return -ENOSPC;
}

size_t gw_spool_unsynced(const struct gw_spool *s)
{
	return s->unsynced;
}

const struct gw_spool_range *gw_spool_lost_ranges(const struct gw_spool *s, size_t *ret_n)
{
	*ret_n = s->nlost;
	return s->lost;
}

uint64_t gw_spool_first_seq(const struct gw_spool *s)
{
	for (size_t i = 0; i < s->nsegs; i++)
		if (s->segs[i]->records)
			return s->segs[i]->first_seq;
	return s->next_seq;
}

uint64_t gw_spool_next_seq(const struct gw_spool *s)
{
	return s->next_seq;
}

const struct gw_spool_stats *gw_spool_stats(const struct gw_spool *s)
{
	return &s->stats;
}

static bool reader_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n < 1 || n > NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

int gw_spool_reader_new(struct gw_spool *s, const char *name, bool from_start,
			struct gw_spool_reader **ret)
{
	struct gw_spool_reader *rd;
	uint64_t first = gw_spool_first_seq(s);
	bool new_reader = false;
	uint64_t c = 0;
	char fname[64];
	int r;

	if (!reader_name_ok(name))
		return -EINVAL;
	for (rd = s->readers; rd; rd = rd->next)
		if (!strcmp(rd->name, name))
			return -EEXIST;

	rd = gw_new0(struct gw_spool_reader, 1);
	rd->s = s;
	rd->dl_fd = -1;
	rd->cursor_fd = -1;
	strcpy(rd->name, name);
	snprintf(fname, sizeof(fname), "cursor-%s", name);
	r = cursor_load(s->dfd, fname, &c);
	if (r == 0) {
		rd->saved_valid = true;
		rd->saved_cursor = c;
		if (c > s->next_seq)
			c = s->next_seq;
		rd->stats.lost_corrupt = spool_lost_between(s, c, UINT64_MAX);
		if (c < first) {
			rd->stats.dropped_overflow =
				first - c - spool_lost_between(s, c, first - 1);
			c = first;
		}
	} else if (r == -ENOENT) {
		c = from_start ? first : s->next_seq;
		new_reader = true;
	} else {
		/* unreadable or damaged: replay everything stored (duplicates, never loss) */
		c = first;
	}
	rd->cursor = c;
	rd->pos = c;
	rd->stats.initial = gw_spool_reader_backlog(rd) + rd->stats.lost_corrupt +
			    rd->stats.dropped_overflow;
	/* a new reader's starting point must outlive a crash before its first save: without the
	 * file the next start would take it for new again and skip what was stored meanwhile.
	 * If this fails, the first save (the owner retries) writes it. */
	if (new_reader)
		(void)gw_spool_reader_save(rd);
	rd->next = s->readers;
	s->readers = rd;
	*ret = rd;
	return 0;
}

static int cursor_save(struct gw_spool_reader *rd, bool durable);

struct gw_spool_reader *gw_spool_reader_free(struct gw_spool_reader *rd)
{
	struct gw_spool_reader **pp;

	if (!rd)
		return NULL;
	(void)cursor_save(rd, true);
	if (rd->cursor_fd >= 0)
		close(rd->cursor_fd);
	for (pp = &rd->s->readers; *pp; pp = &(*pp)->next) {
		if (*pp == rd) {
			*pp = rd->next;
			break;
		}
	}
	if (rd->dl_fd >= 0)
		close(rd->dl_fd);
	free(rd->win.buf);
	free(rd);
	return NULL;
}

static int reader_get(struct gw_spool_reader *rd, struct seg *seg, uint64_t off, size_t n,
		      const uint8_t **p)
{
	int r;

	if (seg->rfd < 0) {
		char name[64];

		seg_name(name, sizeof(name), seg->first_seq);
		seg->rfd = openat(rd->s->dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (seg->rfd < 0)
			return -errno;
	}
	r = win_get(&rd->win, seg, seg->rfd, seg->bytes, off, n, p);
	/* the index says the bytes are there: a shorter file is an I/O problem */
	return r == -ENODATA ? -EIO : r;
}

/* Finds the first stored record with seq >= want. Returns 1, 0 when there is none, -errno. */
static int reader_locate(struct gw_spool_reader *rd, uint64_t want, struct seg **ret_seg,
			 uint64_t *ret_off, uint64_t *ret_seq)
{
	struct gw_spool *s = rd->s;
	size_t lo = 0, hi = s->nsegs;
	struct seg *seg;
	uint64_t off, cur, k;

	/* last_seq never decreases along segs (an empty segment has first_seq - 1, the last
	 * seq of the one before it), so the first segment ending at or after want is found by
	 * bisection; empty ones are then stepped over */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->segs[mid]->last_seq < want)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (lo < s->nsegs && !s->segs[lo]->records)
		lo++;
	if (lo == s->nsegs)
		return 0;
	seg = s->segs[lo];
	if (want < seg->first_seq)
		want = seg->first_seq;
	k = (want - seg->first_seq) / IDX_STRIDE;
	off = seg->idx[k];
	for (cur = seg->first_seq + k * IDX_STRIDE; cur < want; cur++) {
		const uint8_t *p;
		int r = reader_get(rd, seg, off, REC_HDR_SIZE, &p);

		if (r < 0)
			return r;
		off += REC_HDR_SIZE + get_le32(p); /* NOLINT(clang-analyzer-core.CallAndMessage) */
	}
	*ret_seg = seg;
	*ret_off = off;
	*ret_seq = want;
	return 1;
}

/* Reads and checks the record seq at off in seg. */
static int reader_read_at(struct gw_spool_reader *rd, struct seg *seg, uint64_t off,
			  uint64_t seq, struct gw_spool_record *rec)
{
	const uint8_t *p;
	uint32_t len;
	int r;

	r = reader_get(rd, seg, off, REC_HDR_SIZE, &p);
	if (r < 0)
		return r;
	len = get_le32(p); /* NOLINT(clang-analyzer-core.CallAndMessage): see get_le32() */
	if (len < REC_FIXED || len > REC_MAX_LEN)
		return -EIO;
	r = reader_get(rd, seg, off, REC_HDR_SIZE + len, &p);
	if (r < 0)
		return r;
	/* checked again: the disk or the page cache may have changed since we wrote it */
	if (gw_crc32c(0, p + REC_HDR_SIZE, len) != get_le32(p + 4) ||
	    get_le64(p + REC_HDR_SIZE) != seq)
		return -EIO;
	rec->seq = seq;
	rec->ts_ms = (int64_t)get_le64(p + 16);
	rec->type = p[24];
	rec->payload = p + REC_PREFIX;
	rec->len = len - REC_FIXED;
	return 0;
}

int gw_spool_reader_next(struct gw_spool_reader *rd, struct gw_spool_record *rec)
{
	struct gw_spool *s = rd->s;
	int r;

	if (rd->pos >= s->next_seq)
		return 0;
	if (!rd->loc_seg || rd->loc_seq != rd->pos || rd->pos > rd->loc_seg->last_seq) {
		struct seg *seg;
		uint64_t off, seq;

		r = reader_locate(rd, rd->pos, &seg, &off, &seq);
		if (r <= 0)
			return r;
		rd->loc_seg = seg;
		rd->loc_off = off;
		rd->loc_seq = seq;
		rd->pos = seq;
	}
	r = reader_read_at(rd, rd->loc_seg, rd->loc_off, rd->pos, rec);
	if (r < 0)
		return r;
	rd->loc_off += REC_PREFIX + rec->len;
	rd->pos++;
	rd->loc_seq = rd->pos;
	return 1;
}

void gw_spool_reader_seek(struct gw_spool_reader *rd, uint64_t seq)
{
	rd->pos = seq < rd->s->next_seq ? seq : rd->s->next_seq;
	rd->loc_seg = NULL;
}

uint64_t gw_spool_reader_position(const struct gw_spool_reader *rd)
{
	return rd->pos;
}

/*
 * Deletes the oldest segments every reader's cursor has passed. The cursor files are written
 * first: a cursor file left below a deleted segment would read back as a loss after a crash.
 * On a full disk that write may fail; the segments go anyway, space matters more.
 */
static void spool_gc(struct gw_spool *s)
{
	uint64_t min = UINT64_MAX;
	bool saved = false;

	if (!s->readers)
		return;
	for (struct gw_spool_reader *rd = s->readers; rd; rd = rd->next)
		if (rd->cursor < min)
			min = rd->cursor;
	while (s->nsegs >= 2 && s->segs[0]->last_seq < min) {
		if (!saved) {
			/* durably: an unlink that survived a power cut the cursor did not would
			 * read back the same way */
			for (struct gw_spool_reader *rd = s->readers; rd; rd = rd->next)
				(void)cursor_save(rd, true);
			saved = true;
		}
		spool_unlink_seg(s, 0);
	}
}

void gw_spool_reader_ack(struct gw_spool_reader *rd, uint64_t seq)
{
	struct gw_spool *s = rd->s;

	if (seq > s->next_seq)
		seq = s->next_seq;
	if (seq <= rd->cursor)
		return;
	rd->cursor = seq;
	spool_gc(s);
}

uint64_t gw_spool_reader_cursor(const struct gw_spool_reader *rd)
{
	return rd->cursor;
}

/*
 * The first save of a run replaces the file atomically and durably (written, fsynced, renamed,
 * the directory fsynced), then keeps it open. Later ones overwrite its line in place: one
 * pwrite, which a crash of the daemon keeps (it is in the page cache), made durable with
 * fdatasync when durable is set or CURSOR_DURABLE_USEC have passed since the last time, and
 * otherwise written back by the kernel. A power cut can thus take the latest saves: the cursor
 * found is older, and the records after it are sent again (duplicates, never a loss). The line
 * only grows (the cursor never goes back; a shorter one takes the atomic way), so the old one
 * never shows through; it is a few dozen bytes at the start of one block, which a cut does not
 * tear, and the CRC would show it if it did (docs/spool-format.md).
 */
static int cursor_save(struct gw_spool_reader *rd, bool durable)
{
	bool same = rd->saved_valid && rd->saved_cursor == rd->cursor;
	uint64_t now = gw_now_mono_us();
	char fname[64], buf[48];
	size_t n;
	int r;

	if (same && !(durable && rd->cursor_dirty))
		return 0;
	n = checked_format(buf, rd->cursor, "");
	durable = durable || now - rd->durable_us >= CURSOR_DURABLE_USEC;
	if (rd->cursor_fd >= 0 && n >= rd->cursor_len &&
	    (same || pwrite(rd->cursor_fd, buf, n, 0) == (ssize_t)n) &&
	    (!durable || fdatasync(rd->cursor_fd) == 0)) {
		rd->cursor_len = n;
		rd->cursor_dirty = !durable;
		if (durable)
			rd->durable_us = now;
		goto saved;
	}
	if (rd->cursor_fd >= 0) {
		close(rd->cursor_fd);
		rd->cursor_fd = -1;
	}
	snprintf(fname, sizeof(fname), "cursor-%s", rd->name);
	r = checked_save(rd->s->dfd, fname, rd->cursor, "");
	if (r < 0)
		return r;
	/* without the fd the next save takes this way again */
	rd->cursor_fd = openat(rd->s->dfd, fname, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	rd->cursor_len = n;
	rd->cursor_dirty = false;
	rd->durable_us = now;
saved:
	rd->saved_valid = true;
	rd->saved_cursor = rd->cursor;
	return 0;
}

int gw_spool_reader_save(struct gw_spool_reader *rd)
{
	return cursor_save(rd, false);
}

uint64_t gw_spool_reader_backlog_bytes(const struct gw_spool_reader *rd)
{
	const struct gw_spool *s = rd->s;
	uint64_t n = 0;

	for (size_t i = 0; i < s->nsegs; i++) {
		const struct seg *seg = s->segs[i];
		uint64_t from, data;

		if (!seg->records || seg->last_seq < rd->cursor)
			continue;
		data = seg->bytes > SEG_HDR_SIZE ? seg->bytes - SEG_HDR_SIZE : 0;
		if (rd->cursor <= seg->first_seq) {
			n += data;
			continue;
		}
		/* the cursor's segment: its share by record count, good enough for a status */
		from = rd->cursor - seg->first_seq;
		n += (uint64_t)((double)data * (double)(seg->records - from) / (double)seg->records);
	}
	return n;
}

uint64_t gw_spool_reader_backlog(const struct gw_spool_reader *rd)
{
	const struct gw_spool *s = rd->s;
	uint64_t n = 0;

	for (size_t i = 0; i < s->nsegs; i++) {
		const struct seg *seg = s->segs[i];

		if (seg->records && seg->last_seq >= rd->cursor)
			n += seg->last_seq -
			     (rd->cursor > seg->first_seq ? rd->cursor : seg->first_seq) + 1;
	}
	return n;
}

int64_t gw_spool_reader_oldest_age(struct gw_spool_reader *rd, int64_t now_ms)
{
	if (rd->cursor >= rd->s->next_seq)
		return 0;
	if (!rd->oldest_valid || rd->oldest_for != rd->cursor) {
		struct gw_spool_record rec;
		struct seg *seg;
		uint64_t off, seq;

		if (reader_locate(rd, rd->cursor, &seg, &off, &seq) <= 0 ||
		    reader_read_at(rd, seg, off, seq, &rec) < 0)
			return 0;
		rd->oldest_valid = true;
		rd->oldest_for = rd->cursor;
		rd->oldest_ts = rec.ts_ms;
	}
	return now_ms > rd->oldest_ts ? now_ms - rd->oldest_ts : 0;
}

int gw_spool_reader_deadletter(struct gw_spool_reader *rd, const struct gw_spool_record *rec)
{
	uint8_t h[REC_PREFIX];
	struct iovec iov[2];
	struct stat st;
	int r;

	if (rec->len > GW_SPOOL_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (rd->dl_fd < 0) {
		char fname[64];

		snprintf(fname, sizeof(fname), "deadletter-%s.log", rd->name);
		rd->dl_fd = openat(rd->s->dfd, fname,
				   O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (rd->dl_fd < 0)
			return -errno;
		/* the file may be new: its directory entry must be durable too */
		fsync(rd->s->dfd);
	}
	if (fstat(rd->dl_fd, &st) < 0)
		return -errno;
	rec_header_build(h, rec->seq, rec->ts_ms, rec->type, rec->payload, rec->len);
	iov[0].iov_base = h;
	iov[0].iov_len = sizeof(h);
	iov[1].iov_base = (void *)rec->payload;
	iov[1].iov_len = rec->len;
	r = gw_file_writev_full(rd->dl_fd, iov, 2);
	if (r < 0) {
		/* no torn record left for the next one to follow */
		if (ftruncate(rd->dl_fd, st.st_size) < 0) {
			close(rd->dl_fd);
			rd->dl_fd = -1;
		}
		return r;
	}
	if (fdatasync(rd->dl_fd) < 0)
		return -errno;
	rd->stats.deadlettered++;
	return 0;
}

const struct gw_spool_reader_stats *gw_spool_reader_stats(const struct gw_spool_reader *rd)
{
	return &rd->stats;
}
