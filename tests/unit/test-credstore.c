/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the credential store: round trips of every kind, modes, the .bak copy, crash
 * safety under SIGKILL at random points, damaged files (every truncation, bit flips, wrong
 * types, versions, sizes), unsafe files, names, refusal markers, and that no reason string
 * ever carries secret material (every secret here contains CANARY).
 */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gw/credstore.h"
#include "gw/spool.h"
#include "gw/util.h"

#define CANARY "CANARY"
#define DEV "node-01"
#define MAIN DEV ".json"
#define BAK DEV ".json.bak"
#define CRASH_ITERATIONS 200

/* Quiet checks for hot loops (in fork mode every ck_assert writes to a file). */
#define req(cond)                                                              \
	do {                                                                   \
		if (!(cond))                                                   \
			ck_abort_msg("line %d: '%s' failed", __LINE__, #cond); \
	} while (0)
#define req_msg(cond, ...)                         \
	do {                                       \
		if (!(cond))                       \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

static char *scratch;

/* Every reason a test receives goes through here. */
static void check_reason(const char *reason)
{
	req_msg(strstr(reason, CANARY) == NULL, "reason leaks a secret: %s", reason);
	req_msg(strstr(reason, "s3cr3t") == NULL, "reason leaks a secret: %s", reason);
}

static char *path_join(const char *a, const char *b)
{
	char *p;

	req(asprintf(&p, "%s/%s", a, b) >= 0);
	return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh, not yet existing, store directory (nested, so that open creates parents). */
static char *new_dir(const char *tag)
{
	char *base = NULL, *dir;

	req(asprintf(&base, "%s/cred-%s-XXXXXX", scratch, tag) >= 0);
	req(mkdtemp(base) != NULL);
	dir = path_join(base, "credentials/uplink");
	free(base);
	return dir;
}

static void drop_dir(char *dir)
{
	char *base = strdup(dir);

	*strstr(base, "/credentials/uplink") = '\0';
	rm_rf(base);
	free(base);
	free(dir);
}

static struct gw_credstore *open_ok(const char *dir)
{
	char reason[GW_CREDSTORE_REASON_MAX];
	struct gw_credstore *s = NULL;
	int r = gw_credstore_open(dir, &s, reason, sizeof(reason));

	req_msg(r == 0, "open %s: %d %s", dir, r, reason);
	check_reason(reason);
	return s;
}

static struct gw_cred make_cred(enum gw_cred_kind kind, unsigned int gen)
{
	struct gw_cred c = { .cloud = GW_CRED_CLOUD_ALIYUN, .kind = kind };
	char *v = NULL;

	c.product = gw_strdup("a1B2c3D4e5F");
	c.device = gw_strdup(DEV);
	c.obtained_at_ms = INT64_C(1700000000000) + gen;
	switch (kind) {
	case GW_CRED_DEVICE_SECRET:
		req(asprintf(&c.secret, CANARY "-s3cr3t-gen-%06u", gen) >= 0);
		break;
	case GW_CRED_DEVICE_TOKEN:
		req(asprintf(&c.token, CANARY "-token-%06u", gen) >= 0);
		req(asprintf(&c.client_id, "a1B2c3D4e5F." DEV "|%u", gen) >= 0);
		break;
	case GW_CRED_PSK:
		c.cloud = GW_CRED_CLOUD_TENCENT;
		req(asprintf(&c.psk, CANARY "+psk/base64==%u", gen) >= 0);
		break;
	case GW_CRED_CERTIFICATE:
		c.cloud = GW_CRED_CLOUD_TENCENT;
		/* PEM, plus the characters that need escaping in JSON. */
		req(asprintf(&c.cert, "-----BEGIN CERTIFICATE-----\r\nMIIB" CANARY "%u\"q\\b\tt\n"
				      "-----END CERTIFICATE-----\n", gen) >= 0);
		for (int i = 0; i < 20; i++) {
			char *t = NULL;

			req(asprintf(&t, "%s%s", v ? v : "", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" CANARY
				     "BKcwggSjAgEAAoIBAQC7\n") >= 0);
			free(v);
			v = t;
		}
		req(asprintf(&c.key, "-----BEGIN PRIVATE KEY-----\n%s-----END PRIVATE KEY-----\n",
			     v) >= 0);
		free(v);
		break;
	}
	return c;
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool cred_eq(const struct gw_cred *a, const struct gw_cred *b)
{
	return a->cloud == b->cloud && a->kind == b->kind && str_eq(a->product, b->product) &&
	       str_eq(a->device, b->device) && str_eq(a->secret, b->secret) &&
	       str_eq(a->token, b->token) && str_eq(a->client_id, b->client_id) &&
	       str_eq(a->psk, b->psk) && str_eq(a->cert, b->cert) && str_eq(a->key, b->key) &&
	       a->obtained_at_ms == b->obtained_at_ms;
}

static void save_ok(struct gw_credstore *s, const struct gw_cred *c)
{
	char reason[GW_CREDSTORE_REASON_MAX];
	int r = gw_credstore_save(s, c, reason, sizeof(reason));

	req_msg(r == 0, "save: %d %s", r, reason);
	check_reason(reason);
}

/* Loads and returns the result; *out filled on success. */
static int load(struct gw_credstore *s, const char *dev, struct gw_cred *out, char *reason)
{
	int r = gw_credstore_load(s, dev, out, reason, GW_CREDSTORE_REASON_MAX);

	check_reason(reason);
	return r;
}

static char *read_all(const char *dir, const char *name, size_t *len)
{
	char *p = path_join(dir, name), *buf = NULL;
	FILE *f = fopen(p, "rbe");
	size_t cap = 0;

	free(p);
	*len = 0;
	if (!f)
		return NULL;
	buf = gw_malloc0(65536);
	cap = fread(buf, 1, 65535, f);
	fclose(f);
	*len = cap;
	return buf;
}

static void write_all_mode(const char *dir, const char *name, const void *data, size_t len,
			   mode_t mode)
{
	char *p = path_join(dir, name);
	int fd;

	(void)unlink(p);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	req(fd >= 0);
	req(write(fd, data, len) == (ssize_t)len);
	req(fchmod(fd, mode) == 0);
	req(close(fd) == 0);
	free(p);
}

static void write_str(const char *dir, const char *name, const char *s)
{
	write_all_mode(dir, name, s, strlen(s), 0600);
}

static bool exists(const char *dir, const char *name)
{
	char *p = path_join(dir, name);
	struct stat st;
	bool r = lstat(p, &st) == 0;

	free(p);
	return r;
}

static mode_t file_mode(const char *dir, const char *name)
{
	char *p = path_join(dir, name);
	struct stat st;

	req(lstat(p, &st) == 0);
	free(p);
	return st.st_mode & 07777;
}

/* Number of entries whose name contains pat. */
static unsigned int count_names(const char *dir, const char *pat)
{
	unsigned int n = 0;
	struct dirent *e;
	DIR *d = opendir(dir);

	req(d != NULL);
	while ((e = readdir(d)))
		n += strstr(e->d_name, pat) != NULL;
	closedir(d);
	return n;
}

/* Removes every file of the store directory, keeping the directory. */
static void empty_dir(const char *dir)
{
	struct dirent *e;
	DIR *d = opendir(dir);

	req(d != NULL);
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			char *p = path_join(dir, e->d_name);

			req(unlink(p) == 0);
			free(p);
		}
	}
	closedir(d);
}

/* body + the checksum member, as the store writes it: for fixtures that must pass the CRC. */
static char *with_crc(const char *body)
{
	char *s = NULL;

	req(asprintf(&s, "%s,\"crc32c\":\"%08" PRIx32 "\"}\n", body,
		     gw_crc32c(0, body, strlen(body))) >= 0);
	return s;
}

START_TEST(test_roundtrip)
{
	static const enum gw_cred_kind kinds[] = { GW_CRED_DEVICE_SECRET, GW_CRED_DEVICE_TOKEN,
						   GW_CRED_PSK, GW_CRED_CERTIFICATE };
	char reason[GW_CREDSTORE_REASON_MAX];
	char *dir = new_dir("rt"), *base;
	struct gw_credstore *s = open_ok(dir);
	struct gw_cred c, got;
	struct stat st;
	size_t len;
	char *buf;

	/* the store directory and the parents it created are 0700 */
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	base = strdup(dir);
	*strrchr(base, '/') = '\0';
	ck_assert_int_eq(stat(base, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	free(base);

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		c = make_cred(kinds[i], (unsigned int)i);
		save_ok(s, &c);
		ck_assert_uint_eq(file_mode(dir, MAIN), 0600);
		ck_assert_int_eq(load(s, DEV, &got, reason), 0);
		ck_assert_str_eq(reason, "");
		ck_assert_msg(cred_eq(&c, &got), "kind %s differs after the round trip",
			      gw_credstore_kind_name(kinds[i]));
		gw_credstore_wipe(&got);
		/* a reopened store (a restart) reads the same */
		s = gw_credstore_close(s);
		s = open_ok(dir);
		ck_assert_int_eq(load(s, DEV, &got, reason), 0);
		ck_assert(cred_eq(&c, &got));
		gw_credstore_wipe(&got);
		gw_credstore_wipe(&c);
		ck_assert_ptr_null(c.product);
	}

	/* the format: fixed order, checksum last */
	c = make_cred(GW_CRED_DEVICE_SECRET, 7);
	save_ok(s, &c);
	buf = read_all(dir, MAIN, &len);
	base = with_crc("{\"v\":1,\"cloud\":\"aliyun\",\"product\":\"a1B2c3D4e5F\","
			"\"device\":\"node-01\",\"kind\":\"device_secret\","
			"\"secret\":\"CANARY-s3cr3t-gen-000007\",\"obtained_at\":1700000000007");
	ck_assert_str_eq(buf, base);
	free(base);
	free(buf);
	ck_assert_uint_eq(file_mode(dir, BAK), 0600);

	/* obtained_at 0 means now */
	c.obtained_at_ms = 0;
	save_ok(s, &c);
	ck_assert_int_eq(load(s, DEV, &got, reason), 0);
	ck_assert_int_ge(got.obtained_at_ms, gw_now_wall_ms() - 60000);
	ck_assert_int_le(got.obtained_at_ms, gw_now_wall_ms());
	gw_credstore_wipe(&got);
	gw_credstore_wipe(&c);

	/* nothing else: no state file, no temporary files, no quarantine */
	ck_assert_uint_eq(count_names(dir, ".tmp"), 0);
	ck_assert_uint_eq(count_names(dir, ".state"), 0);
	ck_assert_uint_eq(count_names(dir, "corrupt"), 0);
	ck_assert_int_eq(load(s, "node-02", &got, reason), -ENOENT);
	gw_credstore_close(s);
	gw_credstore_wipe(NULL);
	drop_dir(dir);
}
END_TEST

START_TEST(test_backup)
{
	char reason[GW_CREDSTORE_REASON_MAX];
	char *dir = new_dir("bak"), *b1, *b2;
	struct gw_credstore *s = open_ok(dir);
	struct gw_cred c[4], got;
	size_t l1, l2;

	for (unsigned int i = 0; i < 4; i++)
		c[i] = make_cred(GW_CRED_DEVICE_SECRET, i);
	save_ok(s, &c[0]);
	ck_assert(!exists(dir, BAK));
	b1 = read_all(dir, MAIN, &l1);
	save_ok(s, &c[1]);
	/* .bak holds exactly the previous file */
	b2 = read_all(dir, BAK, &l2);
	ck_assert_uint_eq(l1, l2);
	ck_assert_mem_eq(b1, b2, l1);
	free(b1);
	free(b2);
	b1 = read_all(dir, MAIN, &l1);
	save_ok(s, &c[2]);
	b2 = read_all(dir, BAK, &l2);
	ck_assert_uint_eq(l1, l2);
	ck_assert_mem_eq(b1, b2, l1);
	free(b2);

	/* a damaged current file never becomes the backup: .bak stays the last good copy */
	write_str(dir, MAIN, "{\"v\":1,garbage");
	save_ok(s, &c[3]);
	b2 = read_all(dir, BAK, &l2);
	ck_assert_uint_eq(l1, l2);
	ck_assert_mem_eq(b1, b2, l1);
	free(b1);
	free(b2);
	ck_assert_int_eq(load(s, DEV, &got, reason), 0);
	ck_assert(cred_eq(&got, &c[3]));
	gw_credstore_wipe(&got);

	/* main deleted: restored from .bak (which holds c[1]) */
	b1 = path_join(dir, MAIN);
	ck_assert_int_eq(unlink(b1), 0);
	free(b1);
	ck_assert_int_eq(load(s, DEV, &got, reason), 0);
	ck_assert_ptr_nonnull(strstr(reason, "is missing"));
	ck_assert(cred_eq(&got, &c[1]));
	gw_credstore_wipe(&got);
	ck_assert(exists(dir, MAIN));
	ck_assert_uint_eq(file_mode(dir, MAIN), 0600);
	ck_assert_int_eq(load(s, DEV, &got, reason), 0);
	ck_assert_str_eq(reason, "");
	ck_assert(cred_eq(&got, &c[1]));
	gw_credstore_wipe(&got);

	/* a stale temporary file that is a hard link to the live file is not written into */
	b1 = path_join(dir, MAIN);
	b2 = path_join(dir, "." MAIN ".tmp");
	ck_assert_int_eq(link(b1, b2), 0);
	free(b1);
	free(b2);
	save_ok(s, &c[2]);
	ck_assert(!exists(dir, "." MAIN ".tmp"));
	ck_assert_int_eq(load(s, DEV, &got, reason), 0);
	ck_assert(cred_eq(&got, &c[2]));
	gw_credstore_wipe(&got);
	b1 = read_all(dir, BAK, &l1);
	ck_assert_ptr_nonnull(strstr(b1, "gen-000001"));
	free(b1);

	/* stale temporary files are removed when the store is opened */
	write_str(dir, "." MAIN ".tmp", "partial");
	write_str(dir, "." BAK ".tmp", "partial");
	gw_credstore_close(s);
	s = open_ok(dir);
	ck_assert_uint_eq(count_names(dir, ".tmp"), 0);

	for (unsigned int i = 0; i < 4; i++)
		gw_credstore_wipe(&c[i]);
	gw_credstore_close(s);
	drop_dir(dir);
}
END_TEST

static unsigned int secret_gen(const struct gw_cred *c)
{
	unsigned int g = 0;

	req(sscanf(c->secret, CANARY "-s3cr3t-gen-%u", &g) == 1);
	return g;
}

static bool file_crc_ok(const char *dir, const char *name)
{
	size_t len;
	char *b = read_all(dir, name, &len);
	uint32_t crc = 0;
	bool ok;

	ok = b && len > 22 && sscanf(b + len - 22, ",\"crc32c\":\"%8" SCNx32 "\"}", &crc) == 1 &&
	     crc == gw_crc32c(0, b, len - 22);
	free(b);
	return ok;
}

START_TEST(test_crash)
{
	char reason[GW_CREDSTORE_REASON_MAX];
	char *dir = new_dir("crash");
	struct gw_credstore *s = open_ok(dir);
	unsigned int *done;
	unsigned int base = 0, mid_save = 0, no_save = 0, total_saves = 0, in_tmp = 0;
	struct gw_cred c = make_cred(GW_CRED_DEVICE_SECRET, 0), got;

	done = mmap(NULL, sizeof(*done), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		    0);
	ck_assert_ptr_ne(done, MAP_FAILED);
	save_ok(s, &c);
	gw_credstore_wipe(&c);
	srand((unsigned int)getpid());

	for (unsigned int it = 0; it < CRASH_ITERATIONS; it++) {
		unsigned int g, completed;
		pid_t pid;
		int status;

		__atomic_store_n(done, base, __ATOMIC_SEQ_CST);
		pid = fork();
		req(pid >= 0);
		if (pid == 0) {
			for (unsigned int gen = base + 1;; gen++) {
				struct gw_cred n = make_cred(GW_CRED_DEVICE_SECRET, gen);

				if (gw_credstore_save(s, &n, NULL, 0) < 0)
					_exit(1);
				gw_credstore_wipe(&n);
				__atomic_store_n(done, gen, __ATOMIC_SEQ_CST);
			}
		}
		/* From "before the first save began" to "several saves in": 0..3 ms. */
		usleep((useconds_t)(rand() % 3000));
		req(kill(pid, SIGKILL) == 0);
		req(waitpid(pid, &status, 0) == pid);
		req_msg(WIFSIGNALED(status), "iteration %u: the saving child failed", it);
		completed = __atomic_load_n(done, __ATOMIC_SEQ_CST);
		in_tmp += count_names(dir, ".tmp") > 0;

		/* what a restart sees: the last completed save, or the one in flight */
		req_msg(load(s, DEV, &got, reason) == 0, "iteration %u: load failed: %s", it,
			reason);
		req_msg(reason[0] == '\0', "iteration %u: %s", it, reason);
		g = secret_gen(&got);
		req_msg(g == completed || g == completed + 1,
			"iteration %u: loaded gen %u, completed %u", it, g, completed);
		gw_credstore_wipe(&got);
		mid_save += g == completed + 1;
		no_save += completed == base;
		total_saves += completed - base;
		req(count_names(dir, "corrupt") == 0);
		req(!exists(dir, BAK) || file_crc_ok(dir, BAK));
		base = g;
	}
	fprintf(stderr, "crash: %d kills, %u saves completed; killed with a temporary file present "
		"%u times, after the rename of the save in flight %u times, before any save "
		"completed %u times\n", CRASH_ITERATIONS, total_saves, in_tmp, mid_save, no_save);
	munmap(done, sizeof(*done));
	gw_credstore_close(s);
	drop_dir(dir);
}
END_TEST

START_TEST(test_truncated)
{
	char reason[GW_CREDSTORE_REASON_MAX];
	char *dir = new_dir("trunc"), *good, *bak, *q;
	struct gw_credstore *s = open_ok(dir);
	struct gw_cred c0 = make_cred(GW_CRED_DEVICE_TOKEN, 0);
	struct gw_cred c1 = make_cred(GW_CRED_DEVICE_TOKEN, 1), got;
	size_t len, blen, qlen;

	save_ok(s, &c0);
	bak = read_all(dir, MAIN, &blen);
	save_ok(s, &c1);
	good = read_all(dir, MAIN, &len);

	for (size_t off = 0; off < len; off++) {
		/* without a backup: -EBADMSG, moved aside with its content, main gone */
		empty_dir(dir);
		write_all_mode(dir, MAIN, good, off, 0600);
		req_msg(load(s, DEV, &got, reason) == -EBADMSG, "offset %zu loaded", off);
		req(reason[0] != '\0');
		req(!exists(dir, MAIN));
		q = read_all(dir, MAIN ".corrupt-1", &qlen);
		req_msg(q && qlen == off, "offset %zu: not quarantined", off);
		req(memcmp(q, good, off) == 0);
		free(q);
		/* and the next start is a clean "no credential", not a loop */
		req(load(s, DEV, &got, reason) == -ENOENT);

		/* with a good backup: its credential, and main restored from it */
		empty_dir(dir);
		write_all_mode(dir, MAIN, good, off, 0600);
		write_all_mode(dir, BAK, bak, blen, 0600);
		req_msg(load(s, DEV, &got, reason) == 0, "offset %zu: %s", off, reason);
		req(cred_eq(&got, &c0));
		gw_credstore_wipe(&got);
		req(strstr(reason, "restored from " BAK) != NULL);
		req(strstr(reason, "moved aside as " MAIN ".corrupt-1") != NULL);
		req(exists(dir, MAIN ".corrupt-1"));
		q = read_all(dir, MAIN, &qlen);
		req(qlen == blen && memcmp(q, bak, blen) == 0);
		free(q);
	}
	fprintf(stderr, "truncated: every offset 0..%zu of a %zu-byte file, with and without "
		"a backup\n", len - 1, len);

	/* second quarantine of the same name gets the next number */
	empty_dir(dir);
	write_str(dir, MAIN, "");
	write_str(dir, MAIN ".corrupt-1", "older evidence");
	ck_assert_int_eq(load(s, DEV, &got, reason), -EBADMSG);
	ck_assert(exists(dir, MAIN ".corrupt-2"));
	ck_assert_uint_eq(file_mode(dir, MAIN ".corrupt-2"), 0600);
	ck_assert_ptr_nonnull(strstr(reason, "is empty"));

	/* both copies damaged: both moved aside, -EBADMSG, then -ENOENT, then a save works */
	empty_dir(dir);
	write_all_mode(dir, MAIN, good, len / 2, 0600);
	write_all_mode(dir, BAK, bak, blen - 1, 0600);
	ck_assert_int_eq(load(s, DEV, &got, reason), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(reason, "backup:"));
	ck_assert(exists(dir, MAIN ".corrupt-1"));
	ck_assert(exists(dir, BAK ".corrupt-1"));
	ck_assert_int_eq(load(s, DEV, &got, reason), -ENOENT);
	save_ok(s, &c1);
	ck_assert_int_eq(load(s, DEV, &got, reason), 0);
	gw_credstore_wipe(&got);

	free(good);
	free(bak);
	gw_credstore_wipe(&c0);
	gw_credstore_wipe(&c1);
	gw_credstore_close(s);
	drop_dir(dir);
}
END_TEST

/* Loads a damaged main file with no backup: -EBADMSG, quarantined, a canary-free reason. */
static void expect_bad(struct gw_credstore *s, const char *dir, const void *data, size_t len,
		       const char *what, const char *expect)
{
	char reason[GW_CREDSTORE_REASON_MAX];
	struct gw_cred got;
	size_t qlen;
	char *q;
	int r;

	empty_dir(dir);
	write_all_mode(dir, MAIN, data, len, 0600);
	r = load(s, DEV, &got, reason);
	req_msg(r == -EBADMSG, "%s: load returned %d (%s)", what, r, reason);
	req_msg(reason[0] != '\0', "%s: no reason", what);
	req_msg(!expect || strstr(reason, expect), "%s: reason '%s' lacks '%s'", what, reason,
		expect);
	req_msg(!exists(dir, MAIN), "%s: still in place", what);
	q = read_all(dir, MAIN ".corrupt-1", &qlen);
	req_msg(q && qlen == len, "%s: not quarantined", what);
	free(q);
}

#define BODY_HEAD "{\"v\":1,\"cloud\":\"aliyun\",\"product\":\"a1B2c3D4e5F\",\"device\":\"node-01\""
#define BODY_KIND ",\"kind\":\"device_secret\""
#define BODY_SECRET ",\"secret\":\"" CANARY "-s3cr3t-x\""
#define BODY_TIME ",\"obtained_at\":1700000000000"

START_TEST(test_damaged)
{
	static const struct {
		const char *what;
		const char *body;   /* the checksum is added, so only the named check can fail */
		const char *expect; /* in the reason */
	} fixtures[] = {
		{ "version as string", "{\"v\":\"1\",\"cloud\":\"aliyun\"", "not an integer" },
		{ "version real", "{\"v\":1.0,\"cloud\":\"aliyun\"", "not an integer" },
		{ "unknown version", "{\"v\":2" BODY_KIND BODY_SECRET, "unsupported format version" },
		{ "no version", "{\"cloud\":\"aliyun\"" BODY_SECRET, "no format version" },
		{ "array", "[1,2", NULL },
		{ "secret number", BODY_HEAD BODY_KIND ",\"secret\":12345" BODY_TIME, "'secret'" },
		{ "secret array", BODY_HEAD BODY_KIND ",\"secret\":[\"" CANARY "\"]" BODY_TIME,
		  "'secret'" },
		{ "secret null", BODY_HEAD BODY_KIND ",\"secret\":null" BODY_TIME, "'secret'" },
		{ "secret empty", BODY_HEAD BODY_KIND ",\"secret\":\"\"" BODY_TIME, "'secret'" },
		{ "secret control char", BODY_HEAD BODY_KIND ",\"secret\":\"" CANARY "\\u0001\""
		  BODY_TIME, "'secret'" },
		{ "secret missing", BODY_HEAD BODY_KIND BODY_TIME, "'secret'" },
		{ "obtained_at string", BODY_HEAD BODY_KIND BODY_SECRET ",\"obtained_at\":\"17\"",
		  "obtained_at" },
		{ "obtained_at negative", BODY_HEAD BODY_KIND BODY_SECRET ",\"obtained_at\":-5",
		  "obtained_at" },
		{ "obtained_at missing", BODY_HEAD BODY_KIND BODY_SECRET, "obtained_at" },
		{ "unknown kind", BODY_HEAD ",\"kind\":\"password\"" BODY_SECRET BODY_TIME, "kind" },
		{ "kind number", BODY_HEAD ",\"kind\":1" BODY_SECRET BODY_TIME, "kind" },
		{ "unknown cloud", "{\"v\":1,\"cloud\":\"aws\",\"product\":\"p\",\"device\":\"node-01\""
		  BODY_KIND BODY_SECRET BODY_TIME, "cloud" },
		{ "bad product", "{\"v\":1,\"cloud\":\"aliyun\",\"product\":\"a/b\",\"device\":"
		  "\"node-01\"" BODY_KIND BODY_SECRET BODY_TIME, "product" },
		{ "other device", "{\"v\":1,\"cloud\":\"aliyun\",\"product\":\"p\",\"device\":\"node-02\""
		  BODY_KIND BODY_SECRET BODY_TIME, "file name" },
		{ "field of another kind", BODY_HEAD BODY_KIND BODY_SECRET ",\"token\":\"" CANARY "\""
		  BODY_TIME, "'token'" },
		{ "unknown field", BODY_HEAD BODY_KIND BODY_SECRET ",\"" CANARY "\":\"x\"" BODY_TIME,
		  "unknown name" },
		{ "duplicate field", BODY_HEAD BODY_KIND BODY_SECRET BODY_SECRET BODY_TIME, "JSON" },
		{ "not JSON", "{\"v\":1,\"secret\":\"" CANARY "\" garbage", "JSON" },
		/* jansson's error text would quote this token: the reason must not */
		{ "unquoted secret", "{\"v\":1,\"secret\":" CANARY "-s3cr3t", "JSON" },
	};
	char *dir = new_dir("damaged"), *good, *f;
	struct gw_credstore *s = open_ok(dir);
	struct gw_cred c = make_cred(GW_CRED_DEVICE_SECRET, 42);
	unsigned int flips = 0;
	size_t len, at;
	char big[20480];

	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		f = with_crc(fixtures[i].body);
		expect_bad(s, dir, f, strlen(f), fixtures[i].what, fixtures[i].expect);
		free(f);
	}
	/* the fixtures' checksums are right: the same body passes when well-formed */
	f = with_crc(BODY_HEAD BODY_KIND BODY_SECRET BODY_TIME);
	write_str(dir, MAIN, f);
	free(f);
	{
		char reason[GW_CREDSTORE_REASON_MAX];
		struct gw_cred got;

		ck_assert_int_eq(load(s, DEV, &got, reason), 0);
		ck_assert_str_eq(got.secret, CANARY "-s3cr3t-x");
		gw_credstore_wipe(&got);
	}

	save_ok(s, &c);
	good = read_all(dir, MAIN, &len);
	/* every bit of every byte of the secret value */
	at = (size_t)(strstr(good, CANARY) - good);
	for (size_t i = at; i < at + strlen(c.secret); i++) {
		for (int b = 0; b < 8; b++) {
			good[i] ^= (char)(1 << b);
			expect_bad(s, dir, good, len, "bit flip in the secret", NULL);
			good[i] ^= (char)(1 << b);
			flips++;
		}
	}
	fprintf(stderr, "damaged: %zu typed fixtures, %u bit flips in the secret\n",
		sizeof(fixtures) / sizeof(fixtures[0]), flips);

	/* a wrong checksum, one in upper case, the final newline missing, no checksum */
	f = strdup(good);
	f[len - 5] = f[len - 5] == '0' ? '1' : '0';
	expect_bad(s, dir, f, len, "wrong crc", "checksum");
	memcpy(f, good, len);
	memcpy(f + len - 11, "ABCDEF01", 8);
	expect_bad(s, dir, f, len, "upper-case crc", "checksum");
	free(f);
	expect_bad(s, dir, good, len - 1, "no newline", "checksum");
	f = strdup(BODY_HEAD BODY_KIND BODY_SECRET BODY_TIME "}\n");
	expect_bad(s, dir, f, strlen(f), "no crc", "checksum");
	free(f);
	expect_bad(s, dir, "", 0, "empty", "is empty");
	expect_bad(s, dir, "\n", 1, "newline only", "JSON");
	/* 20 KiB: refused on its size alone, before parsing */
	memset(big, ' ', sizeof(big));
	memcpy(big + sizeof(big) - len, good, len);
	expect_bad(s, dir, big, sizeof(big), "20 KiB", "more than the 16384 allowed");

	/* a damaged file with a good backup: the backup's credential */
	{
		char reason[GW_CREDSTORE_REASON_MAX];
		struct gw_cred got;

		empty_dir(dir);
		write_all_mode(dir, MAIN, big, sizeof(big), 0600);
		write_all_mode(dir, BAK, good, len, 0600);
		ck_assert_int_eq(load(s, DEV, &got, reason), 0);
		ck_assert(cred_eq(&got, &c));
		gw_credstore_wipe(&got);
		ck_assert(exists(dir, MAIN ".corrupt-1"));
	}
	free(good);
	gw_credstore_wipe(&c);
	gw_credstore_close(s);
	drop_dir(dir);
}
END_TEST

/* An unsafe main file: -EPERM, the reason names the problem, nothing moved or restored. */
static void expect_unsafe(struct gw_credstore *s, const char *dir, const char *what,
			  const char *expect)
{
	char reason[GW_CREDSTORE_REASON_MAX];
	struct gw_cred got;
	int r;

	r = load(s, DEV, &got, reason);
	req_msg(r == -EPERM, "%s: load returned %d (%s)", what, r, reason);
	req_msg(strstr(reason, expect) && strstr(reason, MAIN), "%s: reason '%s' lacks '%s'",
		what, reason, expect);
	req_msg(exists(dir, MAIN), "%s: moved", what);
	req_msg(count_names(dir, "corrupt") == 0, "%s: quarantined", what);
}

START_TEST(test_unsafe)
{
	char reason[GW_CREDSTORE_REASON_MAX];
	char *dir = new_dir("unsafe"), *good, *p, *other, *odir;
	struct gw_credstore *s = open_ok(dir), *s2 = NULL;
	struct gw_cred c = make_cred(GW_CRED_DEVICE_SECRET, 1);
	struct gw_cred_state st;
	size_t len;

	save_ok(s, &c);
	save_ok(s, &c); /* so that a good .bak exists, which must not be used */
	good = read_all(dir, MAIN, &len);
	p = path_join(dir, MAIN);

	ck_assert_int_eq(chmod(p, 0644), 0);
	expect_unsafe(s, dir, "0644", "mode 0644");
	ck_assert_int_eq(chmod(p, 0640), 0);
	expect_unsafe(s, dir, "0640", "mode 0640");
	ck_assert_int_eq(chmod(p, 0604), 0);
	expect_unsafe(s, dir, "0604", "mode 0604");
	ck_assert_uint_eq(file_mode(dir, MAIN), 0604);
	/* a save does not silently replace it either */
	ck_assert_int_eq(gw_credstore_save(s, &c, reason, sizeof(reason)), -EPERM);
	check_reason(reason);
	ck_assert_ptr_nonnull(strstr(reason, "mode 0604"));
	ck_assert_uint_eq(file_mode(dir, MAIN), 0604);

	/* a symlink to a valid 0600 file */
	other = path_join(dir, "elsewhere");
	write_all_mode(dir, "elsewhere", good, len, 0600);
	ck_assert_int_eq(unlink(p), 0);
	ck_assert_int_eq(symlink(other, p), 0);
	expect_unsafe(s, dir, "symlink", "symbolic link");

	/* a FIFO with no writer: must not block */
	ck_assert_int_eq(unlink(p), 0);
	ck_assert_int_eq(mkfifo(p, 0600), 0);
	alarm(5);
	expect_unsafe(s, dir, "fifo", "FIFO");
	alarm(0);

	/* a directory */
	ck_assert_int_eq(unlink(p), 0);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	expect_unsafe(s, dir, "directory", "not a regular file");
	ck_assert_int_eq(rmdir(p), 0);

	if (geteuid() == 0) {
		write_all_mode(dir, MAIN, good, len, 0600);
		ck_assert_int_eq(chown(p, 65534, 65534), 0);
		expect_unsafe(s, dir, "foreign owner", "owned by uid 65534");
	} else {
		fprintf(stderr, "unsafe: not root, foreign-owner case skipped\n");
	}

	/* the state marker is checked the same way */
	write_str(dir, DEV ".state", "{}");
	free(p);
	p = path_join(dir, DEV ".state");
	ck_assert_int_eq(chmod(p, 0644), 0);
	ck_assert_int_eq(gw_credstore_get_state(s, DEV, &st, reason, sizeof(reason)), -EPERM);
	check_reason(reason);
	ck_assert_ptr_nonnull(strstr(reason, "mode 0644"));
	ck_assert_int_eq(gw_credstore_mark_refused(s, DEV, "x", 0, NULL), -EPERM);
	ck_assert_uint_eq(file_mode(dir, DEV ".state"), 0644);
	free(p);

	/* unsafe store directories */
	odir = new_dir("unsafe-dir");
	ck_assert_int_eq(mkdir(p = strndup(odir, strlen(odir) - strlen("/uplink")), 0700), 0);
	ck_assert_int_eq(mkdir(odir, 0755), 0);
	ck_assert_int_eq(gw_credstore_open(odir, &s2, reason, sizeof(reason)), -EPERM);
	ck_assert_ptr_nonnull(strstr(reason, "mode 0755"));
	ck_assert_int_eq(chmod(odir, 0700), 0);
	if (geteuid() == 0) {
		ck_assert_int_eq(chown(odir, 65534, 65534), 0);
		ck_assert_int_eq(gw_credstore_open(odir, &s2, reason, sizeof(reason)), -EPERM);
		ck_assert_ptr_nonnull(strstr(reason, "owned by uid 65534"));
	}
	ck_assert_int_eq(rmdir(odir), 0);
	ck_assert_int_eq(symlink(dir, odir), 0);
	ck_assert_int_eq(gw_credstore_open(odir, &s2, reason, sizeof(reason)), -EPERM);
	ck_assert_ptr_nonnull(strstr(reason, "symbolic link"));
	ck_assert_ptr_null(s2);
	free(p);

	free(other);
	free(good);
	gw_credstore_wipe(&c);
	gw_credstore_close(s);
	drop_dir(odir);
	drop_dir(dir);
}
END_TEST

START_TEST(test_names)
{
	static const char *const bad[] = {
		"", "a/b", "..\\x", "a b", "n\xc3\xa4me", "x\n", "node\t1", "a:b", "../etc",
		"0123456789012345678901234567890123456789012345678901234567890123X",
	};
	static const char *const good[] = {
		"a", "A.b@c-d_e", "0123456789012345678901234567890123456789012345678901234567890123",
	};
	char reason[GW_CREDSTORE_REASON_MAX];
	char *dir = new_dir("names");
	struct gw_credstore *s = open_ok(dir);
	struct gw_cred c = make_cred(GW_CRED_DEVICE_SECRET, 3), got;
	struct gw_cred_state st;
	char *saved = c.device;

	ck_assert(!gw_credstore_name_valid(NULL));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(!gw_credstore_name_valid(bad[i]), "'%s' accepted", bad[i]);
		ck_assert_int_eq(load(s, bad[i], &got, reason), -EINVAL);
		ck_assert_int_eq(gw_credstore_get_state(s, bad[i], &st, reason, sizeof(reason)),
				 -EINVAL);
		ck_assert_int_eq(gw_credstore_mark_refused(s, bad[i], "x", 0, NULL), -EINVAL);
		c.device = (char *)bad[i];
		ck_assert_int_eq(gw_credstore_save(s, &c, reason, sizeof(reason)), -EINVAL);
		check_reason(reason);
	}
	ck_assert_int_eq(gw_credstore_save(s, &c, NULL, 0), -EINVAL);
	ck_assert_uint_eq(count_names(dir, "."), 2); /* only "." and ".." */
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ck_assert_msg(gw_credstore_name_valid(good[i]), "'%s' refused", good[i]);
		c.device = (char *)good[i];
		save_ok(s, &c);
		ck_assert_int_eq(load(s, good[i], &got, reason), 0);
		ck_assert_str_eq(got.device, good[i]);
		gw_credstore_wipe(&got);
	}
	c.device = saved;
	gw_credstore_wipe(&c);
	gw_credstore_close(s);
	drop_dir(dir);
}
END_TEST

START_TEST(test_invalid_cred)
{
	char reason[GW_CREDSTORE_REASON_MAX];
	char *dir = new_dir("inval");
	struct gw_credstore *s = open_ok(dir);
	struct gw_cred c = make_cred(GW_CRED_DEVICE_SECRET, 1);
	struct gw_cred t = make_cred(GW_CRED_DEVICE_TOKEN, 1);
	struct gw_cred k = make_cred(GW_CRED_CERTIFICATE, 1);
	char *keep, *huge;

#define EXPECT_INVALID(cred, field)                                                      \
	do {                                                                             \
		ck_assert_int_eq(gw_credstore_save(s, &(cred), reason, sizeof(reason)),  \
				 -EINVAL);                                               \
		check_reason(reason);                                                    \
		ck_assert_msg(strstr(reason, field), "'%s' lacks '%s'", reason, field); \
	} while (0)

	keep = c.secret;
	c.secret = NULL;
	EXPECT_INVALID(c, "secret");
	c.secret = (char *)"";
	EXPECT_INVALID(c, "secret");
	c.secret = (char *)CANARY "\x01";
	EXPECT_INVALID(c, "secret");
	c.secret = (char *)CANARY "\xc3\xa4";
	EXPECT_INVALID(c, "secret");
	c.secret = keep;
	c.psk = (char *)CANARY;
	EXPECT_INVALID(c, "psk");
	c.psk = NULL;
	keep = t.client_id;
	t.client_id = NULL;
	EXPECT_INVALID(t, "client_id");
	t.client_id = keep;
	keep = c.product;
	c.product = (char *)"a b";
	EXPECT_INVALID(c, "product");
	c.product = keep;
	c.kind = (enum gw_cred_kind)9;
	EXPECT_INVALID(c, "kind");
	ck_assert_str_eq(gw_credstore_kind_name(c.kind), "?");
	c.kind = GW_CRED_DEVICE_SECRET;
	c.cloud = (enum gw_cred_cloud)9;
	EXPECT_INVALID(c, "cloud");
	c.cloud = GW_CRED_CLOUD_ALIYUN;
	c.obtained_at_ms = -1;
	EXPECT_INVALID(c, "obtained_at");
	c.obtained_at_ms = 1;
	/* one value over GW_CREDSTORE_VALUE_MAX */
	huge = gw_malloc0(GW_CREDSTORE_VALUE_MAX + 2);
	memset(huge, 'A', GW_CREDSTORE_VALUE_MAX + 1);
	keep = k.key;
	k.key = huge;
	EXPECT_INVALID(k, "key");
	/* each value allowed, the whole too large: -EFBIG */
	huge[GW_CREDSTORE_VALUE_MAX] = '\0';
	k.cert = gw_secret_free(k.cert);
	k.cert = gw_strdup(huge);
	k.key = gw_strdup(huge);
	ck_assert_int_eq(gw_credstore_save(s, &k, reason, sizeof(reason)), -EFBIG);
	check_reason(reason);
	ck_assert_ptr_nonnull(strstr(reason, "larger than"));
	k.key = gw_secret_free(k.key);
	k.key = keep;
	free(huge);
	ck_assert_uint_eq(count_names(dir, DEV), 0);
	/* still fine with plain values */
	save_ok(s, &c);
	save_ok(s, &k);

	gw_credstore_wipe(&c);
	gw_credstore_wipe(&t);
	gw_credstore_wipe(&k);
	gw_credstore_close(s);
	drop_dir(dir);
}
END_TEST

START_TEST(test_write_failure)
{
	char reason[GW_CREDSTORE_REASON_MAX];
	char *dir = new_dir("wfail"), *before, *after;
	struct gw_credstore *s = open_ok(dir);
	struct gw_cred c = make_cred(GW_CRED_DEVICE_SECRET, 1);
	struct gw_cred k = make_cred(GW_CRED_CERTIFICATE, 2), got;
	struct rlimit rl = { .rlim_cur = 1024, .rlim_max = RLIM_INFINITY };
	size_t l1, l2;
	int r;

	save_ok(s, &c);
	before = read_all(dir, MAIN, &l1);
	/* the write of the temporary file fails half-way (EFBIG past RLIMIT_FSIZE) */
	signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	r = gw_credstore_save(s, &k, reason, sizeof(reason));
	/* Check writes its own results to a file too (with CK_FORK=no, in this process). */
	rl.rlim_cur = RLIM_INFINITY;
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	check_reason(reason);
	ck_assert_int_eq(r, -EFBIG);
	ck_assert_ptr_nonnull(strstr(reason, "write failed"));
	after = read_all(dir, MAIN, &l2);
	ck_assert_uint_eq(l1, l2);
	ck_assert_mem_eq(before, after, l1);
	ck_assert_uint_eq(count_names(dir, ".tmp"), 0);
	ck_assert(!exists(dir, BAK));
	ck_assert_int_eq(load(s, DEV, &got, reason), 0);
	ck_assert(cred_eq(&got, &c));
	gw_credstore_wipe(&got);
	free(before);
	free(after);
	gw_credstore_wipe(&c);
	gw_credstore_wipe(&k);
	gw_credstore_close(s);
	drop_dir(dir);
}
END_TEST

START_TEST(test_state)
{
	char reason[GW_CREDSTORE_REASON_MAX];
	char *dir = new_dir("state"), *f, *body = NULL;
	struct gw_credstore *s = open_ok(dir);
	struct gw_cred c = make_cred(GW_CRED_DEVICE_SECRET, 1);
	struct gw_cred_state st, st2;
	int64_t now = gw_now_wall_ms();
	size_t len;

	ck_assert_int_eq(gw_credstore_retry_after(0), 60000);
	ck_assert_int_eq(gw_credstore_retry_after(1), 60000);
	ck_assert_int_eq(gw_credstore_retry_after(2), 300000);
	ck_assert_int_eq(gw_credstore_retry_after(3), 900000);
	ck_assert_int_eq(gw_credstore_retry_after(4), 3600000);
	ck_assert_int_eq(gw_credstore_retry_after(UINT32_MAX), 3600000);

	ck_assert_int_eq(gw_credstore_get_state(s, DEV, &st, reason, sizeof(reason)), 0);
	ck_assert_int_eq(st.status, GW_CRED_STATUS_OK);
	ck_assert_uint_eq(st.attempts, 0);

	ck_assert_int_eq(gw_credstore_mark_refused(s, DEV, "already activated (6289)", 0, &st),
			 0);
	ck_assert_int_eq(st.status, GW_CRED_STATUS_NEEDS_PROVISIONING);
	ck_assert_uint_eq(st.attempts, 1);
	ck_assert_int_ge(st.next_retry_ms, now + 60000);
	ck_assert_int_le(st.next_retry_ms, gw_now_wall_ms() + 60000);
	ck_assert_uint_eq(file_mode(dir, DEV ".state"), 0600);
	ck_assert_int_eq(gw_credstore_mark_refused(s, DEV, "already activated\n\x01\xff", 0, &st),
			 0);
	ck_assert_uint_eq(st.attempts, 2);
	ck_assert_str_eq(st.why, "already activated???");
	ck_assert_int_ge(st.next_retry_ms, now + 300000);

	/* persisted across a restart */
	gw_credstore_close(s);
	s = open_ok(dir);
	ck_assert_int_eq(gw_credstore_get_state(s, DEV, &st2, reason, sizeof(reason)), 0);
	ck_assert_int_eq(st2.status, GW_CRED_STATUS_NEEDS_PROVISIONING);
	ck_assert_uint_eq(st2.attempts, 2);
	ck_assert_str_eq(st2.why, st.why);
	ck_assert_int_eq(st2.last_attempt_ms, st.last_attempt_ms);
	ck_assert_int_eq(st2.next_retry_ms, st.next_retry_ms);

	/* never more than an hour away: given too late, or the clock was set back */
	ck_assert_int_eq(gw_credstore_mark_refused(s, DEV, "x", now + 10 * 3600000, &st), 0);
	ck_assert_uint_eq(st.attempts, 3);
	ck_assert_int_le(st.next_retry_ms, gw_now_wall_ms() + GW_CREDSTORE_RETRY_MAX_MS);
	ck_assert_int_eq(gw_credstore_mark_refused(s, DEV, "x", now + 120000, &st), 0);
	ck_assert_int_eq(st.next_retry_ms, now + 120000);
	req(asprintf(&body, "{\"v\":1,\"device\":\"" DEV "\",\"status\":\"needs_provisioning\","
		     "\"why\":\"w\",\"attempts\":7,\"last_attempt\":%" PRId64 ",\"next_retry\":%"
		     PRId64, now + INT64_C(86400000) * 365, now + INT64_C(86400000) * 366) >= 0);
	f = with_crc(body);
	write_str(dir, DEV ".state", f);
	free(f);
	free(body);
	ck_assert_int_eq(gw_credstore_get_state(s, DEV, &st, reason, sizeof(reason)), 0);
	ck_assert_uint_eq(st.attempts, 7);
	ck_assert_int_le(st.next_retry_ms, gw_now_wall_ms() + GW_CREDSTORE_RETRY_MAX_MS);

	/* no secret in the marker, which a successful save removes */
	f = read_all(dir, DEV ".state", &len);
	ck_assert_ptr_null(strstr(f, CANARY));
	free(f);
	save_ok(s, &c);
	ck_assert(!exists(dir, DEV ".state"));
	ck_assert_int_eq(gw_credstore_get_state(s, DEV, &st, reason, sizeof(reason)), 0);
	ck_assert_int_eq(st.status, GW_CRED_STATUS_OK);

	/* a damaged marker: moved aside, reported, and the next refusal starts over */
	write_str(dir, DEV ".state", "{\"v\":1,\"attempts\":");
	ck_assert_int_eq(gw_credstore_get_state(s, DEV, &st, reason, sizeof(reason)), -EBADMSG);
	check_reason(reason);
	ck_assert_ptr_nonnull(strstr(reason, "moved aside as " DEV ".state.corrupt-1"));
	ck_assert_int_eq(gw_credstore_get_state(s, DEV, &st, reason, sizeof(reason)), 0);
	ck_assert_int_eq(st.status, GW_CRED_STATUS_OK);
	f = with_crc("{\"v\":1,\"device\":\"" DEV "\",\"status\":\"needs_provisioning\","
		     "\"why\":\"w\",\"attempts\":\"7\",\"last_attempt\":1,\"next_retry\":2");
	write_str(dir, DEV ".state", f);
	free(f);
	ck_assert_int_eq(gw_credstore_mark_refused(s, DEV, "again", 0, &st), 0);
	ck_assert_uint_eq(st.attempts, 1);
	ck_assert(exists(dir, DEV ".state.corrupt-2"));

	gw_credstore_wipe(&c);
	gw_credstore_close(s);
	drop_dir(dir);
}
END_TEST

static Suite *credstore_suite(void)
{
	Suite *s = suite_create("credstore");
	TCase *tc = tcase_create("credstore");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_backup);
	tcase_add_test(tc, test_crash);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_damaged);
	tcase_add_test(tc, test_unsafe);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_invalid_cred);
	tcase_add_test(tc, test_write_failure);
	tcase_add_test(tc, test_state);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	struct stat st;
	SRunner *sr;
	int failed;

	/* Recovery logic, not durability, is under test: tmpfs keeps the sweeps fast. */
	scratch = gw_strdup(stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
			    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	/* The usual umask: the store must not depend on a stricter one for its modes. */
	umask(022);
	sr = srunner_create(credstore_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	free(scratch);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
