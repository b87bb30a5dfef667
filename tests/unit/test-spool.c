/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the durable spool: round trips, cursors and gc, crash and damage recovery
 * (every truncation and bit flip of a 3-segment spool), bounds, ENOSPC on a tiny tmpfs.
 */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gw/spool.h"
#include "gw/util.h"

#define TS(seq) (INT64_C(1700000000000) + (int64_t)(seq) * 10)
#define TYPE(seq) ((uint8_t)((seq) % 5))
#define SEG_HDR 32u
#define REC_PREFIX 25u

/*
 * For hot loops: in fork mode every ck_assert_*() records its location through a file, which
 * makes the F6 sweep several times slower. These check the same and report only on failure.
 */
#define req(cond)                                                                 \
	do {                                                                      \
		if (!(cond))                                                      \
			ck_abort_msg("line %d: '%s' failed", __LINE__, #cond);    \
	} while (0)
#define req_msg(cond, ...)                                                        \
	do {                                                                      \
		if (!(cond))                                                      \
			ck_abort_msg(__VA_ARGS__);                                \
	} while (0)

/* Every test spool lives under one scratch directory, on tmpfs when there is one: the tests
 * look at recovery logic, not at durability (fsync on tmpfs is a no-op, which keeps F6 fast). */
static char *scratch;

static size_t pay_len(uint64_t seq, unsigned int maxlen)
{
	return 1 + (size_t)((seq * 7919u) % maxlen);
}

static void pay_fill(uint64_t seq, uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seq * 131u + i * 7u + 3u);
}

static uint64_t rec_size(uint64_t seq, unsigned int maxlen)
{
	return REC_PREFIX + pay_len(seq, maxlen);
}

static char *path_join(const char *a, const char *b)
{
	char *p;

	req(asprintf(&p, "%s/%s", a, b) >= 0);
	return p;
}

static char *mk_scratch_dir(const char *tag)
{
	char *tmpl = NULL;

	req(asprintf(&tmpl, "%s/%s-XXXXXX", scratch, tag) >= 0);
	req(mkdtemp(tmpl) != NULL);
	return tmpl;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void copy_file(const char *src, const char *dst)
{
	char buf[8192];
	int in = open(src, O_RDONLY | O_CLOEXEC);
	int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t k;

	req(in >= 0);
	req(out >= 0);
	while ((k = read(in, buf, sizeof(buf))) > 0)
		req(write(out, buf, (size_t)k) == k);
	req(k == 0);
	close(in);
	close(out);
}

static void copy_dir(const char *src, const char *dst)
{
	struct dirent *de;
	DIR *d = opendir(src);

	req(d != NULL);
	req(mkdir(dst, 0700) == 0);
	while ((de = readdir(d))) {
		char *a, *b;

		if (de->d_name[0] == '.')
			continue;
		a = path_join(src, de->d_name);
		b = path_join(dst, de->d_name);
		copy_file(a, b);
		free(a);
		free(b);
	}
	closedir(d);
}

static unsigned int count_files(const char *dir, const char *prefix, const char *suffix)
{
	struct dirent *de;
	unsigned int n = 0;
	DIR *d = opendir(dir);

	req(d != NULL);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name), sl = strlen(suffix);

		if (!strncmp(de->d_name, prefix, strlen(prefix)) && l >= sl &&
		    !strcmp(de->d_name + l - sl, suffix))
			n++;
	}
	closedir(d);
	return n;
}

/* Sum of the sizes of the live segment files. */
static uint64_t seg_bytes_on_disk(const char *dir)
{
	struct dirent *de;
	uint64_t n = 0;
	DIR *d = opendir(dir);

	req(d != NULL);
	while ((de = readdir(d))) {
		struct stat st;
		char *p;

		if (strncmp(de->d_name, "seg-", 4) || strlen(de->d_name) != 24)
			continue;
		p = path_join(dir, de->d_name);
		req(stat(p, &st) == 0);
		n += (uint64_t)st.st_size;
		free(p);
	}
	closedir(d);
	return n;
}

static char *seg_path(const char *dir, uint64_t first_seq)
{
	char *p;

	req(asprintf(&p, "%s/seg-%016" PRIx64 ".log", dir, first_seq) >= 0);
	return p;
}

/* The first seqs of the live segments, sorted; returns how many. */
static size_t seg_list(const char *dir, uint64_t *out, size_t max)
{
	struct dirent *de;
	size_t n = 0;
	DIR *d = opendir(dir);

	req(d != NULL);
	while ((de = readdir(d))) {
		unsigned long long v;
		char tail[8];

		if (strlen(de->d_name) != 24 ||
		    sscanf(de->d_name, "seg-%16llx.%3s", &v, tail) != 2 || strcmp(tail, "log"))
			continue;
		req(n < max);
		out[n++] = v;
	}
	closedir(d);
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && out[j - 1] > out[j]; j--) {
			uint64_t t = out[j];

			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return n;
}

static struct gw_spool *spool_open_ok(const char *dir, uint64_t seg_bytes, uint64_t max_bytes,
				      uint64_t min_free)
{
	struct gw_spool_options o = { .dir = dir, .segment_bytes = seg_bytes,
				      .max_bytes = max_bytes, .min_free_bytes = min_free };
	struct gw_spool *s = NULL;

	req(gw_spool_open(&o, &s) == 0);
	req(s != NULL);
	return s;
}

static int append_seq(struct gw_spool *s, uint64_t seq, unsigned int maxlen)
{
	uint8_t buf[256];
	size_t len = pay_len(seq, maxlen);
	uint64_t got = 0;
	int r;

	req(len <= sizeof(buf));
	pay_fill(seq, buf, len);
	r = gw_spool_append(s, TS(seq), TYPE(seq), buf, len, &got);
	if (r == 0)
		req(got == seq);
	return r;
}

/* Appends n records; their payloads follow from their seqs. */
static void append_n(struct gw_spool *s, uint64_t n, unsigned int maxlen)
{
	for (uint64_t i = 0; i < n; i++)
		req(append_seq(s, gw_spool_next_seq(s), maxlen) == 0);
}

static bool rec_matches(const struct gw_spool_record *rec, unsigned int maxlen)
{
	uint8_t buf[256];
	size_t len = pay_len(rec->seq, maxlen);

	pay_fill(rec->seq, buf, len);
	return rec->len == len && rec->ts_ms == TS(rec->seq) && rec->type == TYPE(rec->seq) &&
	       !memcmp(rec->payload, buf, len);
}

/* Reads to the end, checking that the seqs run from first to last without a hole. */
static void read_expect(struct gw_spool_reader *r, uint64_t first, uint64_t last,
			unsigned int maxlen)
{
	struct gw_spool_record rec;
	uint64_t want = first;
	int k;

	while ((k = gw_spool_reader_next(r, &rec)) == 1) {
		req(rec.seq == want);
		req_msg(rec_matches(&rec, maxlen), "record %" PRIu64 " altered", rec.seq);
		want++;
	}
	req_msg(want == last + 1, "read %" PRIu64 "..%" PRIu64 " stopped before %" PRIu64 ": %d",
		first, last, want, k);
	req(gw_spool_reader_next(r, &rec) == 0);
}

START_TEST(test_crc32c)
{
	ck_assert_uint_eq(gw_crc32c(0, "123456789", 9), 0xe3069283u);
	/* chaining equals one pass, across the 8-byte fast path */
	ck_assert_uint_eq(gw_crc32c(gw_crc32c(0, "12345", 5), "6789", 4), 0xe3069283u);
	ck_assert_uint_eq(gw_crc32c(0, "", 0), 0);
}
END_TEST

/* 1. Round trip over many segments, reopen, readers at next_seq vs from_start, modes. */
START_TEST(test_roundtrip)
{
	char *dir = mk_scratch_dir("rt");
	char *sd = path_join(dir, "spool");
	struct gw_spool_reader *all, *late, *fresh;
	struct gw_spool *s = spool_open_ok(sd, 4096, 0, 0);
	struct gw_spool_record rec;
	struct dirent *de;
	struct stat st;
	DIR *d;

	ck_assert_uint_eq(gw_spool_next_seq(s), 1);
	ck_assert_uint_eq(gw_spool_first_seq(s), 1);
	ck_assert_int_eq(gw_spool_reader_new(s, "all", true, &all), 0);
	ck_assert_int_eq(gw_spool_reader_new(s, "all", true, &late), -EEXIST);
	ck_assert_int_eq(gw_spool_reader_new(s, "bad/name", true, &late), -EINVAL);
	ck_assert_int_eq(gw_spool_reader_new(s, "", true, &late), -EINVAL);
	append_n(s, 100, 60);
	ck_assert_int_eq(gw_spool_reader_new(s, "late", false, &late), 0);
	ck_assert_uint_eq(gw_spool_reader_position(late), 101);
	ck_assert_uint_eq(gw_spool_reader_cursor(late), 101);
	ck_assert_int_eq(gw_spool_reader_new(s, "fresh", true, &fresh), 0);
	ck_assert_uint_eq(gw_spool_reader_position(fresh), 1);
	append_n(s, 500, 60);
	ck_assert_uint_ge(gw_spool_stats(s)->segments, 5);
	ck_assert_uint_eq(gw_spool_stats(s)->appended, 600);
	ck_assert_uint_eq(gw_spool_stats(s)->bytes, seg_bytes_on_disk(sd));
	ck_assert_uint_eq(count_files(sd, "seg-", ".log"), gw_spool_stats(s)->segments);
	ck_assert_uint_ne(gw_spool_unsynced(s), 0);
	ck_assert_int_eq(gw_spool_sync(s), 0);
	ck_assert_uint_eq(gw_spool_unsynced(s), 0);

	read_expect(all, 1, 600, 60);
	read_expect(late, 101, 600, 60);
	ck_assert_uint_eq(gw_spool_reader_backlog(late), 500);
	/* a reader at the end sees records as they arrive, across a rotation */
	append_n(s, 100, 60);
	read_expect(all, 601, 700, 60);
	gw_spool_reader_ack(fresh, 5);
	all = gw_spool_reader_free(all);
	late = gw_spool_reader_free(late);
	fresh = gw_spool_reader_free(fresh);
	s = gw_spool_close(s);
	ck_assert_ptr_null(s);

	s = spool_open_ok(sd, 4096, 0, 0);
	ck_assert_uint_eq(gw_spool_next_seq(s), 701);
	ck_assert_uint_eq(gw_spool_first_seq(s), 1);
	ck_assert_uint_eq(gw_spool_stats(s)->recovered_torn_tail, 0);
	ck_assert_uint_eq(gw_spool_stats(s)->segments_quarantined, 0);
	append_n(s, 50, 60);
	ck_assert_int_eq(gw_spool_reader_new(s, "fresh", true, &fresh), 0);
	ck_assert_uint_eq(gw_spool_reader_cursor(fresh), 5);
	read_expect(fresh, 5, 750, 60);
	ck_assert_int_eq(gw_spool_reader_new(s, "newer", false, &late), 0);
	ck_assert_uint_eq(gw_spool_reader_position(late), 751);
	ck_assert_int_eq(gw_spool_reader_next(late, &rec), 0);
	ck_assert_int_eq(gw_spool_reader_new(s, "newest", true, &all), 0);
	ck_assert_uint_eq(gw_spool_reader_position(all), 1);
	read_expect(all, 1, 750, 60);
	all = gw_spool_reader_free(all);
	late = gw_spool_reader_free(late);
	fresh = gw_spool_reader_free(fresh);
	gw_spool_close(s);

	/* reopened with a smaller segment_bytes, the newest segment is full: an empty active
	 * segment follows it, and reading must step over it */
	s = spool_open_ok(sd, 64, 0, 0);
	ck_assert_uint_eq(gw_spool_next_seq(s), 751);
	ck_assert_int_eq(gw_spool_reader_new(s, "newest", true, &all), 0);
	gw_spool_reader_seek(all, 745);
	read_expect(all, 745, 750, 60);
	append_n(s, 3, 60);
	read_expect(all, 751, 753, 60);
	all = gw_spool_reader_free(all);
	gw_spool_close(s);

	/* everything created is 0600 in a 0700 directory */
	ck_assert_int_eq(stat(sd, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	d = opendir(sd);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d))) {
		char *p;

		if (de->d_name[0] == '.')
			continue;
		p = path_join(sd, de->d_name);
		ck_assert_int_eq(stat(p, &st), 0);
		ck_assert_msg((st.st_mode & 07777) == 0600, "%s has mode %o", de->d_name,
			      st.st_mode & 07777);
		free(p);
	}
	closedir(d);
	rm_rf(dir);
	free(sd);
	free(dir);
}
END_TEST

static uint64_t cursor_file_value(const char *sd, const char *name)
{
	char *p = NULL, buf[64] = { 0 };
	unsigned long long v = 0;
	FILE *f;

	ck_assert_int_ge(asprintf(&p, "%s/cursor-%s", sd, name), 0);
	f = fopen(p, "re");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
	fclose(f);
	ck_assert_int_eq(sscanf(buf, "%llu", &v), 1);
	free(p);
	return v;
}

/* 2. Segments go only when every reader passed them; cursors persist; seek re-reads. */
START_TEST(test_ack_gc)
{
	char *dir = mk_scratch_dir("gc");
	char *sd = path_join(dir, "spool");
	struct gw_spool *s = spool_open_ok(sd, 4096, 0, 0);
	struct gw_spool_reader *a, *b;
	struct gw_spool_record rec;
	uint64_t nseg0, segs[64], first_seqs[64];
	size_t n;

	ck_assert_int_eq(gw_spool_reader_new(s, "a", true, &a), 0);
	ck_assert_int_eq(gw_spool_reader_new(s, "b", true, &b), 0);
	append_n(s, 600, 60);
	nseg0 = gw_spool_stats(s)->segments;
	ck_assert_uint_ge(nseg0, 5);
	n = seg_list(sd, first_seqs, 64);
	ck_assert_uint_eq(n, nseg0);

	read_expect(a, 1, 600, 60);
	gw_spool_reader_ack(a, 601);
	ck_assert_uint_eq(gw_spool_reader_cursor(a), 601);
	/* b has not moved: nothing may go */
	ck_assert_uint_eq(gw_spool_stats(s)->segments, nseg0);
	ck_assert_uint_eq(count_files(sd, "seg-", ".log"), nseg0);

	for (int i = 0; i < 250; i++)
		ck_assert_int_eq(gw_spool_reader_next(b, &rec), 1);
	gw_spool_reader_ack(b, gw_spool_reader_position(b));
	ck_assert_uint_eq(gw_spool_reader_cursor(b), 251);
	/* exactly the segments whose records all lie below 251 are gone */
	{
		size_t gone = 0;

		while (gone + 1 < n && first_seqs[gone + 1] <= 251)
			gone++;
		ck_assert_uint_ge(gone, 1);
		ck_assert_uint_eq(gw_spool_stats(s)->segments, nseg0 - gone);
		ck_assert_uint_eq(seg_list(sd, segs, 64), nseg0 - gone);
		ck_assert_uint_eq(segs[0], first_seqs[gone]);
		ck_assert_uint_eq(gw_spool_first_seq(s), first_seqs[gone]);
	}
	ck_assert_uint_eq(gw_spool_stats(s)->bytes, seg_bytes_on_disk(sd));
	/* the cursors were written before the segments went */
	ck_assert_uint_eq(cursor_file_value(sd, "a"), 601);
	ck_assert_uint_eq(cursor_file_value(sd, "b"), 251);
	ck_assert_uint_eq(gw_spool_reader_backlog(b), 350);
	ck_assert_uint_eq(gw_spool_reader_backlog(a), 0);
	/* acks never move backwards */
	gw_spool_reader_ack(b, 100);
	ck_assert_uint_eq(gw_spool_reader_cursor(b), 251);

	/* a reconnect: back to the cursor, the same records again */
	read_expect(b, 251, 600, 60);
	gw_spool_reader_seek(b, gw_spool_reader_cursor(b));
	read_expect(b, 251, 600, 60);
	gw_spool_reader_seek(b, 300);
	ck_assert_int_eq(gw_spool_reader_next(b, &rec), 1);
	ck_assert_uint_eq(rec.seq, 300);
	ck_assert(rec_matches(&rec, 60));
	/* a seek below the stored records lands on the oldest one */
	gw_spool_reader_seek(b, 1);
	ck_assert_int_eq(gw_spool_reader_next(b, &rec), 1);
	ck_assert_uint_eq(rec.seq, gw_spool_first_seq(s));

	a = gw_spool_reader_free(a);
	b = gw_spool_reader_free(b);
	nseg0 = gw_spool_stats(s)->segments;
	gw_spool_close(s);

	s = spool_open_ok(sd, 4096, 0, 0);
	ck_assert_uint_eq(gw_spool_stats(s)->segments, nseg0);
	ck_assert_int_eq(gw_spool_reader_new(s, "a", false, &a), 0);
	ck_assert_int_eq(gw_spool_reader_new(s, "b", false, &b), 0);
	ck_assert_uint_eq(gw_spool_reader_cursor(a), 601);
	ck_assert_uint_eq(gw_spool_reader_cursor(b), 251);
	ck_assert_uint_eq(gw_spool_reader_stats(b)->dropped_overflow, 0);
	ck_assert_uint_eq(gw_spool_reader_backlog(b), 350);
	read_expect(b, 251, 600, 60);
	gw_spool_reader_ack(b, gw_spool_reader_position(b));
	/* everyone passed everything: only the active (newest) segment stays */
	ck_assert_uint_eq(gw_spool_stats(s)->segments, 1);
	ck_assert_uint_eq(count_files(sd, "seg-", ".log"), 1);
	a = gw_spool_reader_free(a);
	b = gw_spool_reader_free(b);
	gw_spool_close(s);

	/* and its header or last record keeps the sequence going */
	s = spool_open_ok(sd, 4096, 0, 0);
	ck_assert_uint_eq(gw_spool_next_seq(s), 601);
	append_n(s, 1, 60);
	gw_spool_close(s);
	rm_rf(dir);
	free(sd);
	free(dir);
}
END_TEST

static void write_u64(int fd, uint64_t v)
{
	if (write(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		_exit(3);
}

/* 3. A process crash (SIGKILL, _exit without sync or close) loses nothing write() took. */
START_TEST(test_crash)
{
	char *dir = mk_scratch_dir("crash");
	char *sd = path_join(dir, "spool");
	uint64_t v, max_reported = 0, first_reported = 0, got = 0, prev = 0;
	struct gw_spool_reader *r;
	struct gw_spool_record rec;
	struct gw_spool *s;
	int p[2], status;
	pid_t pid;

	/* a: _exit() with nothing synced and nothing closed */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct gw_spool_options o = { .dir = sd, .segment_bytes = 4096 };

		if (gw_spool_open(&o, &s) < 0)
			_exit(2);
		for (int i = 0; i < 500; i++)
			if (append_seq(s, gw_spool_next_seq(s), 60) < 0)
				_exit(2);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	s = spool_open_ok(sd, 4096, 0, 0);
	/* nothing lost; the rest of the reservation is skipped, never reused */
	ck_assert_uint_eq(gw_spool_next_seq(s), 1 + GW_SPOOL_RESERVE_BLOCK);
	ck_assert_uint_eq(gw_spool_stats(s)->seqs_skipped, GW_SPOOL_RESERVE_BLOCK - 500);
	ck_assert_uint_eq(gw_spool_stats(s)->skipped_lo, 501);
	ck_assert_uint_eq(gw_spool_stats(s)->records_lost_corrupt, 0);
	ck_assert_uint_eq(gw_spool_stats(s)->recovered_torn_tail, 0);
	ck_assert_int_eq(gw_spool_reader_new(s, "r", true, &r), 0);
	read_expect(r, 1, 500, 60);
	r = gw_spool_reader_free(r);
	gw_spool_close(s);

	/* b: SIGKILL at an arbitrary point of a busy append loop */
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct gw_spool_options o = { .dir = sd, .segment_bytes = 4096 };

		close(p[0]);
		if (gw_spool_open(&o, &s) < 0)
			_exit(2);
		for (;;) {
			uint64_t seq = gw_spool_next_seq(s);

			if (append_seq(s, seq, 60) < 0)
				_exit(2);
			/* reported only once append() returned */
			write_u64(p[1], seq);
			if (seq % 97 == 0)
				gw_spool_sync(s);
		}
	}
	close(p[1]);
	while (read(p[0], &v, sizeof(v)) == (ssize_t)sizeof(v)) {
		if (!first_reported)
			first_reported = v;
		max_reported = v;
		if (v >= first_reported + 3000)
			break;
	}
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	while (read(p[0], &v, sizeof(v)) == (ssize_t)sizeof(v))
		max_reported = v;
	close(p[0]);
	ck_assert_uint_ge(max_reported, first_reported + 3000);

	s = spool_open_ok(sd, 4096, 0, 0);
	ck_assert_uint_le(gw_spool_stats(s)->recovered_torn_tail, 1);
	ck_assert_uint_eq(gw_spool_stats(s)->segments_quarantined, 0);
	ck_assert_uint_eq(gw_spool_stats(s)->records_lost_corrupt, 0);
	ck_assert_uint_ge(gw_spool_next_seq(s), max_reported + 1);
	/* a: 1..500 after its clean close; b: from a's clean reservation on, every record
	 * append() reported, and then the skipped rest of b's reservation */
	ck_assert_uint_eq(first_reported, 1 + GW_SPOOL_RESERVE_BLOCK);
	ck_assert_int_eq(gw_spool_reader_new(s, "r", false, &r), 0);
	gw_spool_reader_seek(r, 1);
	while (gw_spool_reader_next(r, &rec) == 1) {
		ck_assert_uint_eq(rec.seq, prev == 500 ? first_reported : prev + 1);
		ck_assert_msg(rec_matches(&rec, 60), "record %" PRIu64 " altered", rec.seq);
		prev = rec.seq;
		got++;
	}
	ck_assert_uint_ge(prev, max_reported);
	ck_assert_uint_eq(gw_spool_next_seq(s) - 1 - prev, gw_spool_stats(s)->seqs_skipped);
	fprintf(stderr, "crash: child killed after %" PRIu64 " reported appends, %" PRIu64
		" records recovered, torn tails %" PRIu64 ", %" PRIu64 " reserved seqs skipped\n",
		max_reported - first_reported + 1 + 500, got,
		gw_spool_stats(s)->recovered_torn_tail, gw_spool_stats(s)->seqs_skipped);
	r = gw_spool_reader_free(r);
	gw_spool_close(s);
	rm_rf(dir);
	free(sd);
	free(dir);
}
END_TEST

/* 4. The newest segment cut at every byte of its last two records. */
START_TEST(test_torn_tail)
{
	char *dir = mk_scratch_dir("torn");
	char *pristine = path_join(dir, "pristine");
	char *work = path_join(dir, "work");
	struct gw_spool *s = spool_open_ok(pristine, 4096, 0, 0);
	uint64_t n, size, off_last, off_prev, segs[64], newest, cuts = 0;
	struct stat st;
	size_t nseg;
	char *seg;

	append_n(s, 300, 60);
	nseg = seg_list(pristine, segs, 64);
	newest = segs[nseg - 1];
	/* the newest segment must hold at least two records */
	while (gw_spool_next_seq(s) - newest < 2) {
		append_n(s, 1, 60);
		nseg = seg_list(pristine, segs, 64);
		newest = segs[nseg - 1];
	}
	n = gw_spool_next_seq(s) - 1;
	gw_spool_close(s);
	seg = seg_path(pristine, newest);
	ck_assert_int_eq(stat(seg, &st), 0);
	size = (uint64_t)st.st_size;
	free(seg);
	off_last = size - rec_size(n, 60);
	off_prev = off_last - rec_size(n - 1, 60);

	for (uint64_t cut = off_prev; cut < size; cut++) {
		uint64_t last = cut >= off_last ? n - 1 : n - 2;
		bool boundary = cut == off_prev || cut == off_last;
		struct gw_spool_reader *r;

		copy_dir(pristine, work);
		seg = seg_path(work, newest);
		ck_assert_int_eq(truncate(seg, (off_t)cut), 0);
		s = spool_open_ok(work, 4096, 0, 0);
		/* the clean close's reservation: the cut records were issued, and are counted */
		ck_assert_uint_eq(gw_spool_next_seq(s), n + 1);
		ck_assert_uint_eq(gw_spool_stats(s)->records_lost_corrupt, n - last);
		ck_assert_uint_eq(gw_spool_stats(s)->seq_gaps, 1);
		ck_assert_uint_eq(gw_spool_stats(s)->recovered_torn_tail, boundary ? 0 : 1);
		ck_assert_uint_eq(gw_spool_stats(s)->segments_quarantined, 0);
		ck_assert_int_eq(stat(seg, &st), 0);
		/* cut back to the end of the last whole record */
		ck_assert_uint_eq(st.st_size, cut >= off_last ? off_last : off_prev);
		ck_assert_int_eq(gw_spool_reader_new(s, "r", true, &r), 0);
		read_expect(r, 1, last, 60);
		/* appending goes on right behind the valid prefix, with a seq never issued */
		append_n(s, 1, 60);
		read_expect(r, n + 1, n + 1, 60);
		r = gw_spool_reader_free(r);
		gw_spool_close(s);

		s = spool_open_ok(work, 4096, 0, 0);
		ck_assert_uint_eq(gw_spool_next_seq(s), n + 2);
		ck_assert_uint_eq(gw_spool_stats(s)->recovered_torn_tail, 0);
		gw_spool_close(s);
		rm_rf(work);
		free(seg);
		cuts++;
	}
	ck_assert_uint_eq(cuts, size - off_prev);
	fprintf(stderr, "torn tail: %" PRIu64 " cuts of the last 2 records of %" PRIu64 "\n",
		cuts, n);
	rm_rf(dir);
	free(pristine);
	free(work);
	free(dir);
}
END_TEST

/*
 * 5. F6/F8: a 3-segment spool truncated, or one bit flipped, at every byte offset of every
 * segment. Open never fails, every record returned is an original, in order, and the
 * counters say exactly what was lost.
 */
struct f6_seg {
	uint64_t first;
	uint64_t n;
	uint64_t size;
	uint64_t *off; /* start of record k; off[n] = size */
};

/* Records of segment g that end at or before byte o: those a damage at o leaves intact. */
static uint64_t f6_records_before(const struct f6_seg *g, uint64_t o)
{
	uint64_t k = 0;

	while (k < g->n && g->off[k + 1] <= o)
		k++;
	return k;
}

static unsigned int f6_run(const char *pristine, const char *work, const struct f6_seg *g,
			   int f, uint64_t o, bool flip, uint64_t total)
{
	uint64_t kept, lost = 0, next, quar = 0, torn = 0;
	bool newest = f == 2, boundary = false;
	const struct gw_spool_stats *st;
	struct gw_spool_reader *r;
	struct gw_spool_record rec;
	struct gw_spool *s;
	uint64_t prev = 0, got = 0;
	char *seg;
	int fd;

	copy_dir(pristine, work);
	seg = seg_path(work, g[f].first);
	if (flip) {
		uint8_t b;

		fd = open(seg, O_RDWR | O_CLOEXEC);
		req(fd >= 0);
		req(pread(fd, &b, 1, (off_t)o) == 1);
		b ^= (uint8_t)(1u << (o % 8));
		req(pwrite(fd, &b, 1, (off_t)o) == 1);
		close(fd);
	} else {
		req(truncate(seg, (off_t)o) == 0);
	}
	free(seg);

	/*
	 * What must come out. A cut loses the records from the cut on; a flip only the record
	 * holding it, since the scan resynchronises on the next valid record. The pristine spool
	 * was closed cleanly, so its reservation says exactly where the records ended: what a
	 * cut or flip takes off the newest segment's end is counted too.
	 */
	if (!flip && o < SEG_HDR) {
		kept = 0;
		if (newest)
			torn = 1;
		else
			quar = 1;
	} else if (flip && o < SEG_HDR) {
		/* the header: bytes 28..31 are reserved and not covered by its CRC; anywhere
		 * else the segment is quarantined and its intact records salvaged */
		kept = g[f].n;
		quar = o < 28;
	} else if (!flip) {
		kept = f6_records_before(&g[f], o);
		/* a cut exactly between two records leaves no damaged bytes behind */
		boundary = g[f].off[kept] == o;
		if (newest)
			torn = !boundary;
		else
			quar = !boundary;
	} else {
		uint64_t k = f6_records_before(&g[f], o);
		bool last_rec = k + 1 == g[f].n;

		kept = g[f].n - 1;
		/* the newest segment's last record damaged: nothing valid follows, a torn tail */
		if (newest && last_rec)
			torn = 1;
		else
			quar = 1;
	}
	lost = g[f].n - kept;
	next = total + 1;

	s = spool_open_ok(work, 1024, 0, 0);
	st = gw_spool_stats(s);
	req_msg(st->recovered_torn_tail == torn && st->segments_quarantined == quar &&
			st->records_lost_corrupt == lost && st->seq_gaps == (lost ? 1 : 0) &&
			gw_spool_next_seq(s) == next,
		"%s seg %d at %" PRIu64 ": torn %" PRIu64 "/%" PRIu64 " quar %" PRIu64 "/%" PRIu64
		" lost %" PRIu64 "/%" PRIu64 " next %" PRIu64 "/%" PRIu64, flip ? "flip" : "cut", f,
		o, st->recovered_torn_tail, torn, st->segments_quarantined, quar,
		st->records_lost_corrupt, lost, gw_spool_next_seq(s), next);
	req(gw_spool_reader_new(s, "r", true, &r) == 0);
	while (gw_spool_reader_next(r, &rec) == 1) {
		req(rec.seq > prev);
		req(rec.seq <= total);
		req_msg(rec_matches(&rec, 16), "record %" PRIu64 " altered", rec.seq);
		prev = rec.seq;
		got++;
	}
	req(got == total - lost);
	req(gw_spool_reader_backlog(r) == got);
	/* appends go on with the right seq */
	req(append_seq(s, next, 16) == 0);
	req(gw_spool_reader_next(r, &rec) == 1);
	req(rec.seq == next);
	r = gw_spool_reader_free(r);
	gw_spool_close(s);
	req(count_files(work, "seg-", ".corrupt") == quar);
	req(count_files(work, ".tmp-", "") == 0);
	rm_rf(work);
	return (unsigned int)(torn + 2 * quar);
}

START_TEST(test_damage_every_offset)
{
	char *dir = mk_scratch_dir("f6");
	char *pristine = path_join(dir, "pristine");
	char *work = path_join(dir, "work");
	struct gw_spool *s = spool_open_ok(pristine, 1024, 0, 0);
	uint64_t firsts[8], total, runs = 0, bytes = 0, torn_runs = 0, quar_runs = 0;
	struct f6_seg g[3];
	size_t nseg;

	while (gw_spool_stats(s)->segments < 3)
		append_n(s, 1, 16);
	append_n(s, 8, 16);
	total = gw_spool_next_seq(s) - 1;
	gw_spool_close(s);
	nseg = seg_list(pristine, firsts, 8);
	ck_assert_uint_eq(nseg, 3);
	for (int f = 0; f < 3; f++) {
		uint64_t off = SEG_HDR;
		struct stat st;
		char *p = seg_path(pristine, firsts[f]);

		g[f].first = firsts[f];
		g[f].n = (f < 2 ? firsts[f + 1] : total + 1) - firsts[f];
		g[f].off = calloc(g[f].n + 1, sizeof(uint64_t));
		ck_assert_ptr_nonnull(g[f].off);
		for (uint64_t k = 0; k < g[f].n; k++) {
			g[f].off[k] = off;
			off += rec_size(g[f].first + k, 16);
		}
		g[f].off[g[f].n] = off;
		ck_assert_int_eq(stat(p, &st), 0);
		g[f].size = (uint64_t)st.st_size;
		ck_assert_uint_eq(g[f].size, off);
		bytes += g[f].size;
		free(p);
	}

	for (int flip = 0; flip < 2; flip++) {
		for (int f = 0; f < 3; f++) {
			for (uint64_t o = 0; o < g[f].size; o++) {
				unsigned int k = f6_run(pristine, work, g, f, o, flip, total);

				torn_runs += k & 1;
				quar_runs += k >> 1;
				runs++;
			}
		}
	}
	ck_assert_uint_eq(runs, 2 * bytes);
	fprintf(stderr, "F6: %" PRIu64 " records in 3 segments (%" PRIu64 "+%" PRIu64 "+%" PRIu64
		" records, %" PRIu64 " bytes); %" PRIu64 " damaged copies opened (every offset cut "
		"and bit-flipped): %" PRIu64 " torn tails truncated, %" PRIu64 " quarantines\n",
		total, g[0].n, g[1].n, g[2].n, bytes, runs, torn_runs, quar_runs);
	for (int f = 0; f < 3; f++)
		free(g[f].off);
	rm_rf(dir);
	free(pristine);
	free(work);
	free(dir);
}
END_TEST

/* 6. max_bytes below the backlog: oldest segments dropped, each reader's loss exact. */
START_TEST(test_bounds)
{
	char *dir = mk_scratch_dir("bounds");
	char *sd = path_join(dir, "spool");
	const uint64_t max = 20000;
	struct gw_spool *s = spool_open_ok(sd, 4096, max, 0);
	struct gw_spool_reader *a, *b;
	struct gw_spool_record rec;
	uint64_t attempts = 0, acked_b = 0;
	const struct gw_spool_reader_stats *sa, *sb;

	ck_assert_int_eq(gw_spool_reader_new(s, "a", true, &a), 0);
	ck_assert_int_eq(gw_spool_reader_new(s, "b", true, &b), 0);
	for (int i = 0; i < 3000; i++) {
		req(append_seq(s, gw_spool_next_seq(s), 60) == 0);
		attempts++;
		req(gw_spool_stats(s)->bytes <= max);
		if (i % 50 == 49) {
			uint64_t before;

			/* b drains slower than the producer: it loses some, but less than a */
			for (int k = 0; k < 30 && gw_spool_reader_next(b, &rec) == 1; k++)
				req(rec_matches(&rec, 60));
			before = gw_spool_reader_cursor(b);
			gw_spool_reader_ack(b, gw_spool_reader_position(b));
			acked_b += gw_spool_reader_cursor(b) - before;
		}
	}
	sa = gw_spool_reader_stats(a);
	sb = gw_spool_reader_stats(b);
	/* a never acked: everything below the oldest stored seq was dropped under it */
	ck_assert_uint_gt(gw_spool_first_seq(s), 1);
	ck_assert_uint_eq(gw_spool_stats(s)->dropped_overflow, gw_spool_first_seq(s) - 1);
	ck_assert_uint_eq(sa->dropped_overflow, gw_spool_first_seq(s) - 1);
	ck_assert_uint_eq(gw_spool_reader_backlog(a), gw_spool_next_seq(s) - gw_spool_first_seq(s));
	ck_assert_uint_eq(gw_spool_reader_cursor(a), gw_spool_first_seq(s));
	ck_assert_uint_gt(sb->dropped_overflow, 0);
	ck_assert_uint_lt(sb->dropped_overflow, sa->dropped_overflow);
	/* the conservation law, per reader */
	ck_assert_uint_eq(attempts, 0 + gw_spool_reader_backlog(a) + sa->dropped_overflow +
			  sa->dropped_enospc + sa->lost_corrupt);
	ck_assert_uint_eq(attempts, acked_b + gw_spool_reader_backlog(b) + sb->dropped_overflow +
			  sb->dropped_enospc + sb->lost_corrupt);
	ck_assert_uint_eq(gw_spool_stats(s)->bytes, seg_bytes_on_disk(sd));
	/* what is left reads back intact, from the oldest stored record on */
	read_expect(a, gw_spool_first_seq(s), gw_spool_next_seq(s) - 1, 60);
	fprintf(stderr, "bounds: %" PRIu64 " appended into max_bytes %" PRIu64 ": spool dropped %"
		PRIu64 "; reader a lost %" PRIu64 ", reader b acked %" PRIu64 " lost %" PRIu64
		" backlog %" PRIu64 "\n", attempts, max, gw_spool_stats(s)->dropped_overflow,
		sa->dropped_overflow, acked_b, sb->dropped_overflow, gw_spool_reader_backlog(b));

	/* one record larger than max_bytes can never fit: refused and counted, nothing lost */
	{
		uint8_t *big = calloc(1, 30000);
		uint64_t before_first = gw_spool_first_seq(s);
		uint64_t before_dropped = gw_spool_stats(s)->dropped_overflow;

		ck_assert_ptr_nonnull(big);
		ck_assert_int_eq(gw_spool_append(s, 1, 1, big, 30000, NULL), -ENOSPC);
		ck_assert_uint_eq(gw_spool_stats(s)->dropped_enospc, 1);
		ck_assert_uint_eq(sa->dropped_enospc, 1);
		ck_assert_uint_eq(gw_spool_first_seq(s), before_first);
		ck_assert_uint_eq(gw_spool_stats(s)->dropped_overflow, before_dropped);
		ck_assert_int_eq(gw_spool_append(s, 1, 1, big, GW_SPOOL_MAX_PAYLOAD + 1, NULL),
				 -EMSGSIZE);
		free(big);
	}
	a = gw_spool_reader_free(a);
	b = gw_spool_reader_free(b);
	gw_spool_close(s);

	/* a reader absent while its records were dropped finds out at its return */
	s = spool_open_ok(sd, 4096, max, 0);
	ck_assert_int_eq(gw_spool_reader_new(s, "b", false, &b), 0);
	append_n(s, 400, 60);
	b = gw_spool_reader_free(b);
	ck_assert_int_eq(gw_spool_reader_new(s, "a", false, &a), 0);
	ck_assert_uint_gt(gw_spool_reader_stats(a)->dropped_overflow, 0);
	ck_assert_uint_eq(gw_spool_reader_cursor(a), gw_spool_first_seq(s));
	a = gw_spool_reader_free(a);
	gw_spool_close(s);
	rm_rf(dir);
	free(sd);
	free(dir);
}
END_TEST

/*
 * A private tmpfs of size bytes, in a mount namespace of this (forked) test process only.
 * Returns the mount point, or NULL when this process may not do that (the test then skips,
 * or fails with CI=true set). Propagation changes ignore source and type; "none" rather than
 * NULL keeps valgrind quiet.
 */
static char *private_tmpfs(const char *size)
{
	const char *ci = getenv("CI");
	bool must = ci && !strcmp(ci, "true");
	char opts[64], *mnt;

	if (geteuid() != 0 || unshare(CLONE_NEWNS) < 0 ||
	    mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0) {
		ck_assert_msg(!must, "CI=true: this test needs root to mount a private tmpfs (%s)",
			      strerror(errno));
		fprintf(stderr, "SKIP: needs root for a private tmpfs mount\n");
		return NULL;
	}
	mnt = mk_scratch_dir("mnt");
	snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
	ck_assert_msg(mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, opts) == 0,
		      "mount tmpfs: %s", strerror(errno));
	return mnt;
}

static void private_tmpfs_done(char *mnt)
{
	umount2(mnt, MNT_DETACH);
	rmdir(mnt);
	free(mnt);
}

static void fill_secret(uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 37u + 11u);
}

static bool file_equals(const char *path, const uint8_t *b, size_t n)
{
	uint8_t buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t k;

	if (fd < 0)
		return false;
	k = read(fd, buf, sizeof(buf));
	close(fd);
	return k == (ssize_t)n && !memcmp(buf, b, n);
}

/* 7. A full disk: appends fail with -ENOSPC and are counted, no torn record, recovery. */
START_TEST(test_enospc)
{
	char *mnt = private_tmpfs("64k");
	struct gw_spool_reader *a;
	struct gw_spool *s;
	uint64_t ok = 0, failed = 0, acked = 0, before;
	uint8_t secret[1500], pay[200];
	char *sd, *cred;
	int fd, r;

	if (!mnt)
		return;
	sd = path_join(mnt, "spool");
	cred = path_join(sd, "cred.json");
	s = spool_open_ok(sd, 4096, 0, 0);
	fill_secret(secret, sizeof(secret));
	fd = open(cred, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, secret, sizeof(secret)), (ssize_t)sizeof(secret));
	ck_assert_int_eq(fsync(fd), 0);
	close(fd);
	ck_assert_int_eq(gw_spool_reader_new(s, "a", true, &a), 0);

	memset(pay, 0x5a, sizeof(pay));
	for (int i = 0; i < 10000 && failed < 10; i++) {
		r = gw_spool_append(s, TS(i), 1, pay, sizeof(pay), NULL);
		if (r == 0) {
			ck_assert_uint_eq(failed, 0);
			ok++;
		} else {
			ck_assert_int_eq(r, -ENOSPC);
			failed++;
		}
	}
	ck_assert_uint_gt(ok, 50);
	ck_assert_uint_eq(failed, 10);
	ck_assert_uint_eq(gw_spool_stats(s)->dropped_enospc, 10);
	ck_assert_uint_eq(gw_spool_reader_stats(a)->dropped_enospc, 10);
	ck_assert_uint_eq(gw_spool_stats(s)->appended, ok);
	/* no torn record: the files hold exactly the records the index has */
	ck_assert_uint_eq(seg_bytes_on_disk(sd), gw_spool_stats(s)->bytes);
	ck_assert_int_eq(gw_spool_sync(s), 0);
	ck_assert_msg(file_equals(cred, secret, sizeof(secret)), "cred file changed");
	for (uint64_t i = 0; i < ok; i++) {
		struct gw_spool_record rec;

		ck_assert_int_eq(gw_spool_reader_next(a, &rec), 1);
		ck_assert_uint_eq(rec.seq, i + 1);
		ck_assert_uint_eq(rec.len, sizeof(pay));
		ck_assert(!memcmp(rec.payload, pay, sizeof(pay)));
	}
	/* space comes back when the uplink catches up (the cursor write may itself fail on the
	 * full disk; the segments go anyway) */
	before = gw_spool_reader_cursor(a);
	gw_spool_reader_ack(a, gw_spool_reader_position(a));
	acked += gw_spool_reader_cursor(a) - before;
	ck_assert_uint_eq(gw_spool_stats(s)->segments, 1);
	for (int i = 0; i < 20; i++) {
		ck_assert_int_eq(gw_spool_append(s, TS(i), 1, pay, sizeof(pay), NULL), 0);
		ok++;
	}
	ck_assert_int_eq(gw_spool_reader_save(a), 0);
	ck_assert_uint_eq(ok + failed, acked + gw_spool_reader_backlog(a) +
			  gw_spool_reader_stats(a)->dropped_overflow +
			  gw_spool_reader_stats(a)->dropped_enospc +
			  gw_spool_reader_stats(a)->lost_corrupt);
	fprintf(stderr, "enospc: %" PRIu64 " records fit a 64 KiB tmpfs, %" PRIu64
		" refused and counted, %" PRIu64 " appended after the ack freed space\n",
		ok - 20, failed, (uint64_t)20);
	a = gw_spool_reader_free(a);
	gw_spool_close(s);

	s = spool_open_ok(sd, 4096, 0, 0);
	ck_assert_uint_eq(gw_spool_stats(s)->recovered_torn_tail, 0);
	ck_assert_uint_eq(gw_spool_stats(s)->segments_quarantined, 0);
	ck_assert_uint_eq(gw_spool_next_seq(s), ok + 1);
	ck_assert_int_eq(gw_spool_reader_new(s, "a", false, &a), 0);
	ck_assert_uint_eq(gw_spool_reader_backlog(a), 20);
	a = gw_spool_reader_free(a);
	gw_spool_close(s);
	ck_assert_msg(file_equals(cred, secret, sizeof(secret)), "cred file changed");
	rm_rf(sd);
	free(sd);
	free(cred);
	private_tmpfs_done(mnt);
}
END_TEST

/* 7b. min_free_bytes: the spool gives up its oldest segments to keep the reserve free. */
START_TEST(test_min_free)
{
	char *mnt = private_tmpfs("256k");
	const uint64_t reserve = 128 * 1024;
	struct gw_spool_reader *a;
	struct gw_spool *s;
	struct statvfs v;
	uint64_t free_now;
	char *sd;

	if (!mnt)
		return;
	sd = path_join(mnt, "spool");
	s = spool_open_ok(sd, 4096, 0, reserve);
	ck_assert_int_eq(gw_spool_reader_new(s, "a", true, &a), 0);
	for (int i = 0; i < 3000; i++)
		req(append_seq(s, gw_spool_next_seq(s), 200) == 0);
	ck_assert_uint_gt(gw_spool_stats(s)->dropped_overflow, 0);
	ck_assert_uint_eq(gw_spool_reader_stats(a)->dropped_overflow,
			  gw_spool_first_seq(s) - 1);
	ck_assert_uint_eq(gw_spool_reader_stats(a)->dropped_enospc, 0);
	ck_assert_uint_eq(3000, gw_spool_reader_backlog(a) +
			  gw_spool_reader_stats(a)->dropped_overflow);
	ck_assert_int_eq(statvfs(sd, &v), 0);
	free_now = (uint64_t)v.f_bavail * v.f_frsize;
	/* free space is sampled every 64 appends: allow that much (and page rounding) */
	ck_assert_uint_ge(free_now + 64 * 225 + 2 * 4096, reserve);
	fprintf(stderr, "min_free: 3000 records into a 256 KiB tmpfs with a 128 KiB reserve: %"
		PRIu64 " dropped, %" PRIu64 " KiB free at the end\n",
		gw_spool_stats(s)->dropped_overflow, free_now / 1024);
	a = gw_spool_reader_free(a);
	gw_spool_close(s);
	rm_rf(sd);
	free(sd);
	private_tmpfs_done(mnt);
}
END_TEST

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* 8. Dead letters, oldest age, damaged cursor files, a cursor ahead of the data. */
START_TEST(test_deadletter_cursor)
{
	char *dir = mk_scratch_dir("dl");
	char *sd = path_join(dir, "spool");
	char *dl = path_join(sd, "deadletter-a.log");
	char *cur = path_join(sd, "cursor-a");
	struct gw_spool *s = spool_open_ok(sd, 4096, 0, 0);
	static const char *const bad[] = { "", "garbage", "12 deadbeef\n", "12\n12\n",
					   "-1 00000000\n", "99999999999999999999999 0\n" };
	struct gw_spool_reader *a;
	struct gw_spool_record rec, copy;
	uint8_t buf[256];
	struct stat st;
	char line[64];
	int fd;

	append_n(s, 10, 60);
	ck_assert_int_eq(gw_spool_reader_new(s, "a", true, &a), 0);
	/* the age of the oldest unacked record, against a given now */
	ck_assert_int_eq(gw_spool_reader_oldest_age(a, TS(1) + 500), 500);
	ck_assert_int_eq(gw_spool_reader_oldest_age(a, TS(1) - 500), 0);
	ck_assert_int_eq(gw_spool_reader_next(a, &rec), 1);
	ck_assert_int_eq(gw_spool_reader_next(a, &rec), 1);
	ck_assert_uint_eq(rec.seq, 2);
	copy = rec;
	ck_assert_int_eq(gw_spool_reader_deadletter(a, &rec), 0);
	ck_assert_uint_eq(gw_spool_reader_stats(a)->deadlettered, 1);
	ck_assert_int_eq(stat(dl, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_uint_eq(st.st_size, REC_PREFIX + copy.len);
	fd = open(dl, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), (ssize_t)(REC_PREFIX + copy.len));
	close(fd);
	/* same record format as the segments */
	ck_assert_uint_eq(buf[0] | buf[1] << 8, 17 + copy.len);
	ck_assert_uint_eq((uint32_t)buf[4] | (uint32_t)buf[5] << 8 | (uint32_t)buf[6] << 16 |
			  (uint32_t)buf[7] << 24, gw_crc32c(0, buf + 8, 17 + copy.len));
	ck_assert_uint_eq(buf[8], 2);
	ck_assert_int_eq(gw_spool_reader_next(a, &rec), 1);
	ck_assert_int_eq(gw_spool_reader_deadletter(a, &rec), 0);
	ck_assert_uint_eq(gw_spool_reader_stats(a)->deadlettered, 2);
	ck_assert_int_eq(stat(dl, &st), 0);
	ck_assert_uint_eq(st.st_size, 2 * REC_PREFIX + copy.len + rec.len);

	gw_spool_reader_ack(a, 4);
	ck_assert_int_eq(gw_spool_reader_oldest_age(a, TS(4) + 7), 7);
	gw_spool_reader_ack(a, 11);
	ck_assert_int_eq(gw_spool_reader_oldest_age(a, TS(20)), 0);
	a = gw_spool_reader_free(a);
	ck_assert_uint_eq(cursor_file_value(sd, "a"), 11);

	/* a damaged cursor file: replay everything stored, count nothing as lost */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_text(cur, bad[i]);
		ck_assert_int_eq(gw_spool_reader_new(s, "a", false, &a), 0);
		ck_assert_msg(gw_spool_reader_cursor(a) == 1, "cursor file \"%s\"", bad[i]);
		ck_assert_uint_eq(gw_spool_reader_stats(a)->dropped_overflow, 0);
		ck_assert_uint_eq(gw_spool_reader_stats(a)->lost_corrupt, 0);
		read_expect(a, 1, 10, 60);
		a = gw_spool_reader_free(a);
		/* freeing rewrote it in good order */
		ck_assert_uint_eq(cursor_file_value(sd, "a"), 1);
	}
	/* one flipped digit is caught by the checksum */
	snprintf(line, sizeof(line), "5 %08x\n", gw_crc32c(0, "5", 1));
	write_text(cur, line);
	ck_assert_int_eq(gw_spool_reader_new(s, "a", false, &a), 0);
	ck_assert_uint_eq(gw_spool_reader_cursor(a), 5);
	a = gw_spool_reader_free(a);
	line[0] = '7';
	write_text(cur, line);
	ck_assert_int_eq(gw_spool_reader_new(s, "a", false, &a), 0);
	ck_assert_uint_eq(gw_spool_reader_cursor(a), 1);
	a = gw_spool_reader_free(a);
	gw_spool_close(s);

	/* a cursor past the stored records (they were delivered, then lost to a power cut):
	 * their seqs are never handed out again */
	snprintf(line, sizeof(line), "700 %08x\n", gw_crc32c(0, "700", 3));
	write_text(cur, line);
	s = spool_open_ok(sd, 4096, 0, 0);
	ck_assert_uint_eq(gw_spool_next_seq(s), 700);
	ck_assert_uint_eq(gw_spool_stats(s)->seq_gaps, 1);
	append_n(s, 1, 60);
	ck_assert_int_eq(gw_spool_reader_new(s, "a", false, &a), 0);
	ck_assert_uint_eq(gw_spool_reader_cursor(a), 700);
	read_expect(a, 700, 700, 60);
	a = gw_spool_reader_free(a);
	gw_spool_close(s);
	rm_rf(dir);
	free(sd);
	free(dl);
	free(cur);
	free(dir);
}
END_TEST

/*
 * Readers that follow the tail record by record get each new record copied into their read
 * windows at append (no pread back): the bytes must be the file's, also across a segment
 * change, a record too large for the window's room, and a reader that seeks back.
 */
START_TEST(test_tail_readers)
{
	char *dir = mk_scratch_dir("tail");
	char *sd = path_join(dir, "spool");
	struct gw_spool *s = spool_open_ok(sd, 256 * 1024, 0, 0);
	struct gw_spool_reader *a, *b;
	struct gw_spool_record rec;
	static uint8_t big[40000];

	ck_assert_int_eq(gw_spool_reader_new(s, "a", true, &a), 0);
	ck_assert_int_eq(gw_spool_reader_new(s, "b", true, &b), 0);
	for (uint64_t seq = 1; seq <= 6000; seq++) {
		size_t len = seq % 997 == 0 ? sizeof(big) : (size_t)(seq * 7919 % 200);

		for (size_t i = 0; i < len; i++)
			big[i] = (uint8_t)(seq * 31 + i);
		ck_assert_int_eq(gw_spool_append(s, (int64_t)seq, 2, big, len, NULL), 0);
		/* a reads every record at once, b every third one in a burst */
		for (int k = 0; k < (seq % 3 == 0 ? 3 : 0) + 1; k++) {
			struct gw_spool_reader *r = k == 0 ? a : b;

			if (k == 0 || gw_spool_reader_position(b) <= seq) {
				uint64_t want = gw_spool_reader_position(r);

				ck_assert_int_eq(gw_spool_reader_next(r, &rec), 1);
				ck_assert_uint_eq(rec.seq, want);
				ck_assert_int_eq(rec.ts_ms, (int64_t)want);
				len = want % 997 == 0 ? sizeof(big) : (size_t)(want * 7919 % 200);
				ck_assert_uint_eq(rec.len, len);
				for (size_t i = 0; i < len; i++)
					ck_assert_uint_eq(rec.payload[i], (uint8_t)(want * 31 + i));
			}
		}
		if (seq == 3000) {
			/* back to an earlier record, as after a reconnect */
			gw_spool_reader_seek(a, 2500);
			for (uint64_t want = 2500; want <= 3000; want++) {
				ck_assert_int_eq(gw_spool_reader_next(a, &rec), 1);
				ck_assert_uint_eq(rec.seq, want);
			}
		}
	}
	ck_assert_int_eq(gw_spool_reader_next(a, &rec), 0);
	gw_spool_reader_free(a);
	gw_spool_reader_free(b);
	gw_spool_close(s);
	rm_rf(dir);
	free(sd);
	free(dir);
}
END_TEST


/*
 * 9. Power cuts: the segment keeps only what was fdatasync'ed (the copy is cut back to the
 * size the file had at the last sync), repeatedly. No seq is ever handed out twice: every
 * record appended after a cut gets a seq above every seq issued before it, and what a cut
 * took is within the reservation reported as skipped.
 */
START_TEST(test_power_cut)
{
	char *dir = mk_scratch_dir("power");
	char *live = path_join(dir, "live");
	uint64_t issued_max = 0, cuts = 0, lost_unsynced = 0;

	for (int round = 0; round < 10; round++) {
		/* start, synced size of the newest segment, its name, the last seq issued */
		uint64_t v[4], start;
		struct gw_spool_record rec;
		struct gw_spool_reader *r;
		struct gw_spool *s;
		int p[2], status;
		pid_t pid;
		char *seg;

		ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			struct gw_spool_options o = { .dir = live, .segment_bytes = 1 << 20 };
			uint64_t segs[64];
			struct stat st;
			size_t nseg;

			if (gw_spool_open(&o, &s) < 0)
				_exit(2);
			v[0] = gw_spool_next_seq(s);
			for (int i = 0; i < 150; i++)
				if (append_seq(s, gw_spool_next_seq(s), 60) < 0)
					_exit(2);
			if (gw_spool_sync(s) < 0)
				_exit(2);
			nseg = seg_list(live, segs, 64);
			seg = seg_path(live, segs[nseg - 1]);
			if (stat(seg, &st) < 0)
				_exit(2);
			v[1] = (uint64_t)st.st_size;
			v[2] = segs[nseg - 1];
			/* written (and, in the daemon, published), never synced */
			for (int i = 0; i < 37 + round * 5; i++)
				if (append_seq(s, gw_spool_next_seq(s), 60) < 0)
					_exit(2);
			v[3] = gw_spool_next_seq(s) - 1;
			if (write(p[1], v, sizeof(v)) != (ssize_t)sizeof(v))
				_exit(2);
			_exit(0); /* the power fails: no sync, no close */
		}
		close(p[1]);
		ck_assert_int_eq(read(p[0], v, sizeof(v)), (ssize_t)sizeof(v));
		close(p[0]);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		start = v[0];
		ck_assert_uint_gt(start, issued_max);
		issued_max = v[3];
		/* the disk keeps the synced prefix only */
		seg = seg_path(live, v[2]);
		ck_assert_int_eq(truncate(seg, (off_t)v[1]), 0);
		free(seg);

		s = spool_open_ok(live, 1 << 20, 0, 0);
		ck_assert_msg(gw_spool_next_seq(s) > issued_max,
			      "after cut %d the next seq is %" PRIu64 ", but %" PRIu64
			      " was already issued", round, gw_spool_next_seq(s), issued_max);
		ck_assert_uint_ge(gw_spool_stats(s)->seqs_skipped, issued_max - (start + 149));
		ck_assert_uint_eq(gw_spool_stats(s)->skipped_lo, start + 150);
		ck_assert_uint_eq(gw_spool_stats(s)->records_lost_corrupt, 0);
		lost_unsynced += issued_max - (start + 149);
		/* the synced records are all there */
		ck_assert_int_eq(gw_spool_reader_new(s, "r", true, &r), 0);
		gw_spool_reader_seek(r, start);
		for (uint64_t want = start; want < start + 150; want++) {
			ck_assert_int_eq(gw_spool_reader_next(r, &rec), 1);
			ck_assert_uint_eq(rec.seq, want);
		}
		ck_assert_int_eq(gw_spool_reader_next(r, &rec), 0);
		gw_spool_reader_free(r);
		gw_spool_close(s);
		cuts++;
	}
	fprintf(stderr, "power cut: %" PRIu64 " cuts, %" PRIu64 " unsynced records cut off, "
		"no seq issued twice\n", cuts, lost_unsynced);
	rm_rf(dir);
	free(live);
	free(dir);
}
END_TEST

/*
 * 10. A new reader (no cursor file) whose process dies before its first acknowledgement:
 * after the restart it starts where it first started, not at the new end of the spool.
 */
START_TEST(test_new_reader_crash)
{
	char *dir = mk_scratch_dir("newreader");
	char *sd = path_join(dir, "spool");
	struct gw_spool_reader *r;
	struct gw_spool *s;
	int status;
	pid_t pid;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct gw_spool_options o = { .dir = sd, .segment_bytes = 4096 };

		if (gw_spool_open(&o, &s) < 0 || gw_spool_reader_new(s, "u", false, &r) < 0)
			_exit(2);
		for (int i = 0; i < 1000; i++)
			if (append_seq(s, gw_spool_next_seq(s), 60) < 0)
				_exit(2);
		_exit(0); /* no save, no close: a crash before the first PUBACK */
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	s = spool_open_ok(sd, 4096, 0, 0);
	ck_assert_int_eq(gw_spool_reader_new(s, "u", false, &r), 0);
	ck_assert_uint_eq(gw_spool_reader_cursor(r), 1);
	ck_assert_uint_eq(gw_spool_reader_backlog(r), 1000);
	read_expect(r, 1, 1000, 60);
	gw_spool_reader_free(r);
	/* a reader added now, to a spool that holds records, starts at the end unless asked */
	ck_assert_int_eq(gw_spool_reader_new(s, "late", false, &r), 0);
	ck_assert_uint_eq(gw_spool_reader_backlog(r), 0);
	gw_spool_reader_free(r);
	ck_assert_int_eq(gw_spool_reader_new(s, "late2", true, &r), 0);
	ck_assert_uint_eq(gw_spool_reader_backlog(r), 1000);
	gw_spool_reader_free(r);
	gw_spool_close(s);
	rm_rf(dir);
	free(sd);
	free(dir);
}
END_TEST

static ino_t cursor_inode(const char *sd, const char *name)
{
	char *p = NULL;
	struct stat st;

	ck_assert_int_ge(asprintf(&p, "%s/cursor-%s", sd, name), 0);
	ck_assert_int_eq(stat(p, &st), 0);
	free(p);
	return st.st_ino;
}

/*
 * Cursor saves after the first of a run overwrite the file in place (one pwrite): the same
 * inode, the new value in the file at once (a crash of the process keeps it), no temporary
 * file; the first save of the next run replaces it atomically again.
 */
START_TEST(test_cursor_in_place)
{
	char *dir = mk_scratch_dir("inplace");
	char *sd = path_join(dir, "spool");
	struct gw_spool *s = spool_open_ok(sd, 1 << 20, 0, 0);
	struct gw_spool_reader *r;
	struct gw_spool_record rec;
	ino_t first, in_place;
	int status;
	pid_t pid;

	ck_assert_int_eq(gw_spool_reader_new(s, "u", true, &r), 0);
	append_n(s, 2000, 40);
	first = cursor_inode(sd, "u");
	/* from 1 digit to 4: the line grows, each save in place */
	for (uint64_t c = 2; c <= 2001; c = c * 3 + 1) {
		while (gw_spool_reader_position(r) < c)
			ck_assert_int_eq(gw_spool_reader_next(r, &rec), 1);
		gw_spool_reader_ack(r, c);
		ck_assert_int_eq(gw_spool_reader_save(r), 0);
		ck_assert_uint_eq(cursor_file_value(sd, "u"), c);
	}
	in_place = cursor_inode(sd, "u");
	/* a new reader's file was written atomically at its creation, every save since in place */
	ck_assert_uint_eq(first, in_place);
	ck_assert_uint_eq(count_files(sd, ".tmp-", ""), 0);
	gw_spool_reader_ack(r, 1990);
	ck_assert_int_eq(gw_spool_reader_save(r), 0);
	ck_assert_uint_eq(cursor_inode(sd, "u"), in_place);
	ck_assert_uint_eq(cursor_file_value(sd, "u"), 1990);

	/* a process that dies after an in-place save: the next open finds that cursor */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		gw_spool_reader_ack(r, 2000);
		_exit(gw_spool_reader_save(r) == 0 ? 0 : 2);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_uint_eq(cursor_inode(sd, "u"), in_place);
	ck_assert_uint_eq(cursor_file_value(sd, "u"), 2000);
	gw_spool_reader_free(r);
	gw_spool_close(s);
	s = spool_open_ok(sd, 1 << 20, 0, 0);
	ck_assert_int_eq(gw_spool_reader_new(s, "u", true, &r), 0);
	ck_assert_uint_eq(gw_spool_reader_cursor(r), 2000);
	ck_assert_uint_eq(gw_spool_reader_backlog(r), 1);
	/* the first save of this run replaces the file, atomically */
	ck_assert_int_eq(gw_spool_reader_next(r, &rec), 1);
	gw_spool_reader_ack(r, 2001);
	ck_assert_int_eq(gw_spool_reader_save(r), 0);
	ck_assert_uint_ne(cursor_inode(sd, "u"), in_place);
	ck_assert_uint_eq(cursor_file_value(sd, "u"), 2001);
	gw_spool_reader_free(r);
	gw_spool_close(s);
	rm_rf(dir);
	free(sd);
	free(dir);
}
END_TEST

static Suite *spool_suite(void)
{
	Suite *s = suite_create("spool");
	TCase *tc = tcase_create("spool");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_crc32c);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_tail_readers);
	tcase_add_test(tc, test_ack_gc);
	tcase_add_test(tc, test_crash);
	tcase_add_test(tc, test_torn_tail);
	tcase_add_test(tc, test_damage_every_offset);
	tcase_add_test(tc, test_bounds);
	tcase_add_test(tc, test_enospc);
	tcase_add_test(tc, test_min_free);
	tcase_add_test(tc, test_deadletter_cursor);
	tcase_add_test(tc, test_power_cut);
	tcase_add_test(tc, test_new_reader_crash);
	tcase_add_test(tc, test_cursor_in_place);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	struct stat st;
	SRunner *sr;
	int failed;

	scratch = gw_strdup(stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
			    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	sr = srunner_create(spool_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	free(scratch);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
