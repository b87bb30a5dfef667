/* SPDX-License-Identifier: MIT */
/*
 * The credential store: atomic, checksummed, permission-checked files of issued device
 * credentials, plus the needs-provisioning markers. Contract in include/gw/credstore.h,
 * format in docs/credentials.md.
 *
 * We write the JSON ourselves, in one fixed field order, and the checksum covers exactly the
 * bytes before the final "crc32c" member. That makes the checksum independent of any JSON
 * library's formatting, and lets us build the file in one fixed buffer that we zero
 * afterwards (jansson's dump grows its buffer with realloc, leaving copies behind).
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw/crc32c.h"
#include "gw/credstore.h"
#include "gw/fileio.h"
#include "gw/util.h"

#define FORMAT_VERSION 1
/* Sized for ".<name>.json.bak.tmp" and "<name>.json.bak.corrupt-<N>" with a 64-char name. */
#define FNAME_SIZE 112
#define QUARANTINE_MAX 100u
/* ,"crc32c":"xxxxxxxx"}\n */
#define CRC_HEAD ",\"crc32c\":\""
#define CRC_HEAD_LEN (sizeof(CRC_HEAD) - 1)
#define CRC_TAIL_LEN (CRC_HEAD_LEN + 8 + 3)

struct gw_credstore {
	int dfd;
	char *path;
};

/* The store, and every file in it, belongs to the daemon's user alone. */
static const struct gw_file_rule private_rule = {
	.root_ok = false, .also_uid = (uid_t)-1, .forbidden = 077
};

/* The secret-bearing fields, in file order; kind_fields says which kind uses which. */
enum field {
	F_SECRET,
	F_TOKEN,
	F_CLIENT_ID,
	F_PSK,
	F_CERT,
	F_KEY,
	F_COUNT,
};

static const char *const field_names[F_COUNT] = {
	[F_SECRET] = "secret", [F_TOKEN] = "token", [F_CLIENT_ID] = "client_id",
	[F_PSK] = "psk",       [F_CERT] = "cert",   [F_KEY] = "key",
};

static char **cred_field(struct gw_cred *c, enum field f)
{
	switch (f) {
	case F_SECRET:
		return &c->secret;
	case F_TOKEN:
		return &c->token;
	case F_CLIENT_ID:
		return &c->client_id;
	case F_PSK:
		return &c->psk;
	case F_CERT:
		return &c->cert;
	case F_KEY:
		return &c->key;
	case F_COUNT:
		break;
	}
	abort();
}

static bool kind_uses(enum gw_cred_kind kind, enum field f)
{
	switch (kind) {
	case GW_CRED_DEVICE_SECRET:
		return f == F_SECRET;
	case GW_CRED_DEVICE_TOKEN:
		return f == F_TOKEN || f == F_CLIENT_ID;
	case GW_CRED_PSK:
		return f == F_PSK;
	case GW_CRED_CERTIFICATE:
		return f == F_CERT || f == F_KEY;
	}
	return false;
}

const char *gw_credstore_cloud_name(enum gw_cred_cloud cloud)
{
	switch (cloud) {
	case GW_CRED_CLOUD_ALIYUN:
		return "aliyun";
	case GW_CRED_CLOUD_TENCENT:
		return "tencent";
	}
	return "?";
}

const char *gw_credstore_kind_name(enum gw_cred_kind kind)
{
	switch (kind) {
	case GW_CRED_DEVICE_SECRET:
		return "device_secret";
	case GW_CRED_DEVICE_TOKEN:
		return "device_token";
	case GW_CRED_PSK:
		return "psk";
	case GW_CRED_CERTIFICATE:
		return "certificate";
	}
	return "?";
}

static int cloud_from_name(const char *s, enum gw_cred_cloud *ret)
{
	if (strcmp(s, "aliyun") == 0)
		*ret = GW_CRED_CLOUD_ALIYUN;
	else if (strcmp(s, "tencent") == 0)
		*ret = GW_CRED_CLOUD_TENCENT;
	else
		return -EINVAL;
	return 0;
}

static int kind_from_name(const char *s, enum gw_cred_kind *ret)
{
	static const enum gw_cred_kind kinds[] = { GW_CRED_DEVICE_SECRET, GW_CRED_DEVICE_TOKEN,
						   GW_CRED_PSK, GW_CRED_CERTIFICATE };

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strcmp(s, gw_credstore_kind_name(kinds[i])) == 0) {
			*ret = kinds[i];
			return 0;
		}
	}
	return -EINVAL;
}

bool gw_credstore_name_valid(const char *name)
{
	size_t n;

	if (!name)
		return false;
	n = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.@-");
	return n > 0 && n <= GW_CREDSTORE_NAME_MAX && name[n] == '\0';
}

/* Values we write as JSON strings: printable ASCII, and the whitespace PEM contains. */
static bool value_valid(const char *s)
{
	size_t n = 0;

	if (!s || !*s)
		return false;
	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];

		if ((c < 0x20 || c > 0x7e) && c != '\n' && c != '\r' && c != '\t')
			return false;
		if (n >= GW_CREDSTORE_VALUE_MAX)
			return false;
	}
	return true;
}

/* Zeroes and frees a buffer of known size (secrets may contain NUL-free but unterminated data). */
static void wipe_buf(char *buf, size_t size)
{
	if (buf) {
		explicit_bzero(buf, size);
		free(buf);
	}
}


/*
 * --- Output: a fixed buffer of GW_CREDSTORE_FILE_MAX bytes, never reallocated. ---
 */

struct out {
	char *buf;
	size_t len;
	bool overflow;
};

static void out_raw(struct out *o, const char *s, size_t n)
{
	if (o->overflow || n > GW_CREDSTORE_FILE_MAX - o->len) {
		o->overflow = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static void out_str(struct out *o, const char *s)
{
	out_raw(o, "\"", 1);
	for (; *s; s++) {
		switch (*s) {
		case '"':
			out_raw(o, "\\\"", 2);
			break;
		case '\\':
			out_raw(o, "\\\\", 2);
			break;
		case '\n':
			out_raw(o, "\\n", 2);
			break;
		case '\r':
			out_raw(o, "\\r", 2);
			break;
		case '\t':
			out_raw(o, "\\t", 2);
			break;
		default:
			out_raw(o, s, 1);
			break;
		}
	}
	out_raw(o, "\"", 1);
}

static void out_member_str(struct out *o, const char *key, const char *val)
{
	out_raw(o, ",\"", 2);
	out_raw(o, key, strlen(key));
	out_raw(o, "\":", 2);
	out_str(o, val);
}

static void out_member_int(struct out *o, const char *key, int64_t v)
{
	char num[32];
	int n = snprintf(num, sizeof(num), "%" PRId64, v);

	out_raw(o, ",\"", 2);
	out_raw(o, key, strlen(key));
	out_raw(o, "\":", 2);
	out_raw(o, num, (size_t)n);
}

/* Appends the checksum member over everything written so far, and the closing brace. */
static void out_finish(struct out *o)
{
	char tail[CRC_TAIL_LEN + 1];

	if (o->overflow)
		return;
	snprintf(tail, sizeof(tail), CRC_HEAD "%08" PRIx32 "\"}\n", gw_crc32c(0, o->buf, o->len));
	out_raw(o, tail, CRC_TAIL_LEN);
}

/* The file's own bytes must end in the checksum member, and the checksum must match. */
static bool crc_ok(const char *buf, size_t len)
{
	const char *t;
	uint32_t stored = 0;

	if (len <= CRC_TAIL_LEN)
		return false;
	t = buf + len - CRC_TAIL_LEN;
	if (memcmp(t, CRC_HEAD, CRC_HEAD_LEN) != 0 || memcmp(t + CRC_HEAD_LEN + 8, "\"}\n", 3) != 0)
		return false;
	for (size_t i = 0; i < 8; i++) {
		char c = t[CRC_HEAD_LEN + i];

		if (c >= '0' && c <= '9')
			stored = stored << 4 | (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			stored = stored << 4 | (uint32_t)(c - 'a' + 10);
		else
			return false;
	}
	return stored == gw_crc32c(0, buf, len - CRC_TAIL_LEN);
}

/*
 * --- jansson with a zeroing free ---
 *
 * The parser copies every string token into scratch buffers it frees as it goes; while we
 * parse a credential, those frees zero the memory first. Only done when jansson uses the libc
 * allocator, so that malloc_usable_size() is valid for its blocks (blocks it allocated before
 * or after the swap are plain malloc blocks either way).
 */

static void zeroing_free(void *p)
{
	if (p) {
		explicit_bzero(p, malloc_usable_size(p));
		free(p);
	}
}

static json_t *parse_json(const char *buf, size_t len, json_error_t *err)
{
	json_malloc_t m;
	json_free_t f;
	json_t *root;
	bool swap;

	json_get_alloc_funcs(&m, &f);
	swap = m == malloc && f == free;
	if (swap)
		json_set_alloc_funcs(malloc, zeroing_free);
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, err);
	if (swap)
		json_set_alloc_funcs(malloc, free);
	return root;
}

/* Zeroes every string value in the object before it is freed, then frees it. */
static void json_wipe_decref(json_t *root)
{
	const char *k;
	json_t *v;

	if (!root)
		return;
	if (json_is_object(root)) {
		json_object_foreach(root, k, v) {
			if (json_is_string(v))
				explicit_bzero((char *)json_string_value(v), json_string_length(v));
		}
	}
	json_decref(root);
}

/*
 * --- Files ---
 */

/*
 * Reads name from the store after the safety checks. Returns 0 with a buffer the caller must
 * wipe_buf(buf, GW_CREDSTORE_FILE_MAX + 1), -ENOENT, -EPERM (unsafe; nothing read),
 * -EBADMSG (empty or too large) or -errno.
 */
static int read_safe(struct gw_credstore *s, const char *name, char **ret_buf, size_t *ret_len,
		     char *why, size_t why_size)
{
	struct stat st;
	enum gw_file_trust trust;
	char *buf = NULL;
	size_t len = 0;
	int fd, r;

	/* Look before opening: opening a device node could have side effects. */
	if (fstatat(s->dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		r = -errno;
		if (r != -ENOENT)
			gw_why_set(why, why_size, "%s/%s: cannot stat: %s", s->path, name,
				   strerror(-r));
		return r;
	}
	if (S_ISLNK(st.st_mode)) {
		gw_why_set(why, why_size, "%s/%s: is a symbolic link; refusing to follow it",
			   s->path, name);
		return -EPERM;
	}
	if (!S_ISREG(st.st_mode)) {
		gw_why_set(why, why_size, "%s/%s: is not a regular file (%s); refusing it", s->path,
			   name,
			   S_ISFIFO(st.st_mode) ? "a FIFO" :
			   S_ISDIR(st.st_mode)  ? "a directory" :
			   S_ISSOCK(st.st_mode) ? "a socket" :
						  "a device node");
		return -EPERM;
	}
	fd = gw_file_open_read(s->dfd, name, true);
	if (fd < 0) {
		r = fd;
		if (r == -ELOOP) {
			gw_why_set(why, why_size,
				   "%s/%s: is a symbolic link; refusing to follow it", s->path,
				   name);
			return -EPERM;
		}
		if (r != -ENOENT)
			gw_why_set(why, why_size, "%s/%s: cannot open: %s", s->path, name,
				   strerror(-r));
		return r;
	}
	/* The checks that count are on what we opened: the name may have changed meanwhile. */
	if (fstat(fd, &st) < 0) {
		r = -errno;
		gw_why_set(why, why_size, "%s/%s: cannot stat: %s", s->path, name, strerror(-r));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EPERM;
		gw_why_set(why, why_size, "%s/%s: is not a regular file; refusing it", s->path,
			   name);
		goto out;
	}
	trust = gw_file_check(&st, &private_rule);
	if (trust == GW_FILE_FOREIGN_OWNER) {
		r = -EPERM;
		gw_why_set(why, why_size,
			   "%s/%s: is owned by uid %u, not by the daemon's uid %u; refusing it",
			   s->path, name, (unsigned int)st.st_uid, (unsigned int)geteuid());
		goto out;
	}
	if (trust == GW_FILE_OPEN_MODE) {
		r = -EPERM;
		gw_why_set(why, why_size,
			   "%s/%s: mode %04o gives group/other access; refusing it (expected 0600)",
			   s->path, name, (unsigned int)(st.st_mode & 07777));
		goto out;
	}
	if (st.st_size > GW_CREDSTORE_FILE_MAX) {
		r = -EBADMSG;
		gw_why_set(why, why_size, "%s/%s: is %jd bytes, more than the %d allowed", s->path,
			   name, (intmax_t)st.st_size, GW_CREDSTORE_FILE_MAX);
		goto out;
	}
	/* One byte more than allowed, to notice a file that grew since fstat. */
	buf = gw_malloc0(GW_CREDSTORE_FILE_MAX + 1);
	r = gw_file_read_fd(fd, buf, GW_CREDSTORE_FILE_MAX + 1, &len);
	if (r < 0) {
		gw_why_set(why, why_size, "%s/%s: read failed: %s", s->path, name, strerror(-r));
		goto out;
	}
	if (len == 0 || len > GW_CREDSTORE_FILE_MAX) {
		r = -EBADMSG;
		gw_why_set(why, why_size, "%s/%s: %s", s->path, name,
			   len ? "is larger than allowed" : "is empty");
		goto out;
	}
	*ret_buf = buf;
	*ret_len = len;
	buf = NULL;
	r = 0;
out:
	wipe_buf(buf, GW_CREDSTORE_FILE_MAX + 1);
	close(fd);
	return r;
}

/*
 * Makes name.bak a second link to the current name. Through a temporary link and a rename,
 * so that .bak is always either the old or the new backup.
 */
static int keep_backup(struct gw_credstore *s, const char *name, char *why, size_t why_size)
{
	char bak[FNAME_SIZE], tmp[FNAME_SIZE + 8];
	int r;

	snprintf(bak, sizeof(bak), "%s.bak", name);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", bak);
	if (unlinkat(s->dfd, tmp, 0) < 0 && errno != ENOENT) {
		r = -errno;
		gw_why_set(why, why_size, "%s/%s: cannot remove stale file: %s", s->path, tmp,
			   strerror(-r));
		return r;
	}
	if (linkat(s->dfd, name, s->dfd, tmp, 0) < 0) {
		r = -errno;
		gw_why_set(why, why_size, "%s/%s: cannot link the current file for backup: %s",
			   s->path, name, strerror(-r));
		return r;
	}
	if (renameat(s->dfd, tmp, s->dfd, bak) < 0) {
		r = -errno;
		gw_why_set(why, why_size, "%s/%s: cannot rename the backup into place: %s", s->path,
			   bak, strerror(-r));
		(void)unlinkat(s->dfd, tmp, 0);
		return r;
	}
	return 0;
}

/* The atomic recipe (docs/spool-format.md, "Cursor file"; gw/fileio.h): any failure before the
 * rename leaves name as it was. */
static int write_atomic(struct gw_credstore *s, const char *name, const char *data, size_t len,
			bool backup, char *why, size_t why_size)
{
	char tmp[FNAME_SIZE];
	enum gw_file_step step;
	int r;

	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	r = gw_file_write_tmp(s->dfd, tmp, data, len, &step);
	if (r == 0 && backup) {
		r = keep_backup(s, name, why, why_size);
		if (r < 0) {
			(void)unlinkat(s->dfd, tmp, 0);
			return r;
		}
	}
	if (r == 0)
		r = gw_file_commit(s->dfd, tmp, name, &step);
	if (r == 0)
		return 0;
	if (step == GW_FILE_STEP_UNLINK_STALE)
		gw_why_set(why, why_size, "%s/%s: cannot remove stale file: %s", s->path, tmp,
			   strerror(-r));
	else if (step == GW_FILE_STEP_CREATE)
		gw_why_set(why, why_size, "%s/%s: cannot create: %s", s->path, tmp, strerror(-r));
	else if (step == GW_FILE_STEP_FSYNC_DIR)
		gw_why_set(why, why_size, "%s: fsync of the directory after writing %s failed: %s",
			   s->path, name, strerror(-r));
	else
		gw_why_set(why, why_size, "%s/%s: %s failed: %s", s->path, tmp,
			   gw_file_step_name(step), strerror(-r));
	return r;
}

/*
 * Moves a damaged file aside as <name>.corrupt-<N> for inspection. Only files that passed the
 * owner and mode checks get here, so the copy kept is private to us. Returns N, or -errno.
 */
static int quarantine(struct gw_credstore *s, const char *name)
{
	char q[FNAME_SIZE];
	int r;

	for (unsigned int n = 1; n <= QUARANTINE_MAX; n++) {
		snprintf(q, sizeof(q), "%s.corrupt-%u", name, n);
		if (renameat2(s->dfd, name, s->dfd, q, RENAME_NOREPLACE) == 0) {
			(void)gw_file_fsync_dir(s->dfd);
			return (int)n;
		}
		if (errno == EEXIST)
			continue;
		if (errno != EINVAL)
			return -errno;
		/* A file system without RENAME_NOREPLACE: link, then unlink, never overwriting. */
		if (linkat(s->dfd, name, s->dfd, q, 0) < 0) {
			if (errno == EEXIST)
				continue;
			return -errno;
		}
		r = unlinkat(s->dfd, name, 0) < 0 ? -errno : (int)n;
		(void)gw_file_fsync_dir(s->dfd);
		return r;
	}
	/* Full of earlier evidence: dropping the file is better than tripping over it forever. */
	r = unlinkat(s->dfd, name, 0) < 0 ? -errno : 0;
	(void)gw_file_fsync_dir(s->dfd);
	return r;
}

/* Appends to why what happened to a damaged file. */
static void note_quarantine(char *why, size_t why_size, const char *name, int q)
{
	if (q > 0)
		gw_why_append(why, why_size, "; moved aside as %s.corrupt-%d", name, q);
	else if (q == 0)
		gw_why_append(why, why_size, "; deleted (too many quarantined copies)");
	else
		gw_why_append(why, why_size, "; could not move it aside: %s", strerror(-q));
}

/*
 * --- Credentials ---
 */

static const char *cred_check(const struct gw_cred *c)
{
	if (strcmp(gw_credstore_cloud_name(c->cloud), "?") == 0)
		return "invalid cloud";
	if (strcmp(gw_credstore_kind_name(c->kind), "?") == 0)
		return "invalid kind";
	if (!gw_credstore_name_valid(c->product))
		return "invalid product";
	if (!gw_credstore_name_valid(c->device))
		return "invalid device name";
	if (c->obtained_at_ms < 0)
		return "negative obtained_at";
	for (enum field f = 0; f < F_COUNT; f++) {
		char *v = *cred_field((struct gw_cred *)c, f);

		if (!kind_uses(c->kind, f) && v)
			return field_names[f];
		if (kind_uses(c->kind, f) && !value_valid(v))
			return field_names[f];
	}
	return NULL;
}

static int cred_format(const struct gw_cred *c, struct out *o)
{
	o->buf = gw_malloc0(GW_CREDSTORE_FILE_MAX);
	o->len = 0;
	o->overflow = false;
	out_raw(o, "{\"v\":1", 6);
	out_member_str(o, "cloud", gw_credstore_cloud_name(c->cloud));
	out_member_str(o, "product", c->product);
	out_member_str(o, "device", c->device);
	out_member_str(o, "kind", gw_credstore_kind_name(c->kind));
	for (enum field f = 0; f < F_COUNT; f++) {
		if (kind_uses(c->kind, f))
			out_member_str(o, field_names[f], *cred_field((struct gw_cred *)c, f));
	}
	out_member_int(o, "obtained_at", c->obtained_at_ms ? c->obtained_at_ms : gw_now_wall_ms());
	out_finish(o);
	return o->overflow ? -EFBIG : 0;
}

/* A string member that must be present; NULL otherwise. */
static const char *get_str(json_t *root, const char *key)
{
	return json_string_value(json_object_get(root, key));
}

/* Checks the version, then the checksum. Fills what with the problem. */
static int check_envelope(json_t *root, const char *buf, size_t len, const char **what)
{
	json_t *v = json_object_get(root, "v");

	if (!json_is_object(root))
		*what = "is not a JSON object";
	else if (!v)
		*what = "has no format version";
	else if (!json_is_integer(v))
		*what = "has a format version that is not an integer";
	else if (json_integer_value(v) != FORMAT_VERSION)
		*what = "has an unsupported format version";
	else if (!crc_ok(buf, len) || !json_is_string(json_object_get(root, "crc32c")))
		*what = "fails its checksum";
	else
		return 0;
	return -EBADMSG;
}

/* The names a credential file may contain, besides the secret fields of its kind. */
static bool cred_key_known(const char *k, enum gw_cred_kind kind, const char **what)
{
	static const char *const common[] = { "v", "cloud", "product", "device", "kind",
					      "obtained_at", "crc32c" };

	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++) {
		if (strcmp(k, common[i]) == 0)
			return true;
	}
	for (enum field f = 0; f < F_COUNT; f++) {
		if (strcmp(k, field_names[f]) == 0) {
			if (kind_uses(kind, f))
				return true;
			*what = field_names[f];
			return false;
		}
	}
	*what = NULL;
	return false;
}

/*
 * Parses and verifies a credential file's bytes; fills *ret on success. Reasons never quote
 * the file: only our own field names appear in them.
 */
static int cred_parse(struct gw_credstore *s, const char *name, const char *device, const char *buf,
		      size_t len, struct gw_cred *ret, char *why, size_t why_size)
{
	struct gw_cred c = { 0 };
	const char *what = NULL, *str, *k;
	json_error_t jerr;
	json_t *root, *v;
	int r = -EBADMSG;

	root = parse_json(buf, len, &jerr);
	if (!root) {
		/* jerr.text may quote the input, so only the position is reported. */
		gw_why_set(why, why_size, "%s/%s: is not valid JSON (line %d, column %d)", s->path,
			   name, jerr.line, jerr.column);
		return -EBADMSG;
	}
	if (check_envelope(root, buf, len, &what) < 0)
		goto bad;
	str = get_str(root, "kind");
	if (!str || kind_from_name(str, &c.kind) < 0) {
		what = "has a missing or unknown kind";
		goto bad;
	}
	str = get_str(root, "cloud");
	if (!str || cloud_from_name(str, &c.cloud) < 0) {
		what = "has a missing or unknown cloud";
		goto bad;
	}
	str = get_str(root, "product");
	if (!gw_credstore_name_valid(str)) {
		what = "has a missing or invalid product";
		goto bad;
	}
	c.product = gw_strdup(str);
	str = get_str(root, "device");
	if (!str || strcmp(str, device) != 0) {
		what = "has a device field that does not match its file name";
		goto bad;
	}
	c.device = gw_strdup(str);
	v = json_object_get(root, "obtained_at");
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		what = "has a missing or invalid obtained_at";
		goto bad;
	}
	c.obtained_at_ms = json_integer_value(v);
	json_object_foreach(root, k, v) {
		if (!cred_key_known(k, c.kind, &what)) {
			gw_why_set(why, why_size,
				   "%s/%s: has a field %s%s%s that its kind %s does not use",
				   s->path, name, what ? "'" : "", what ? what : "of unknown name",
				   what ? "'" : "", gw_credstore_kind_name(c.kind));
			goto out;
		}
	}
	for (enum field f = 0; f < F_COUNT; f++) {
		if (!kind_uses(c.kind, f))
			continue;
		str = get_str(root, field_names[f]);
		if (!value_valid(str)) {
			gw_why_set(why, why_size, "%s/%s: has a missing or invalid '%s' field",
				   s->path, name, field_names[f]);
			goto out;
		}
		*cred_field(&c, f) = gw_strdup(str);
	}
	*ret = c;
	memset(&c, 0, sizeof(c));
	r = 0;
	goto out;
bad:
	gw_why_set(why, why_size, "%s/%s: %s", s->path, name, what);
out:
	gw_credstore_wipe(&c);
	json_wipe_decref(root);
	return r;
}

/* Reads and verifies one credential file; *ret_buf (if asked) gets its verified bytes. */
static int cred_read(struct gw_credstore *s, const char *name, const char *device,
		     struct gw_cred *ret, char **ret_buf, size_t *ret_len, char *why,
		     size_t why_size)
{
	char *buf = NULL;
	size_t len = 0;
	int r;

	r = read_safe(s, name, &buf, &len, why, why_size);
	if (r < 0)
		return r;
	r = cred_parse(s, name, device, buf, len, ret, why, why_size);
	if (r == 0 && ret_buf) {
		*ret_buf = buf;
		*ret_len = len;
		buf = NULL;
	}
	wipe_buf(buf, GW_CREDSTORE_FILE_MAX + 1);
	return r;
}

void gw_credstore_wipe(struct gw_cred *cred)
{
	if (!cred)
		return;
	for (enum field f = 0; f < F_COUNT; f++)
		*cred_field(cred, f) = gw_secret_free(*cred_field(cred, f));
	free(cred->product);
	free(cred->device);
	explicit_bzero(cred, sizeof(*cred));
}

int gw_credstore_load(struct gw_credstore *s, const char *device, struct gw_cred *ret, char *why,
		      size_t why_size)
{
	char main_name[FNAME_SIZE], bak_name[FNAME_SIZE];
	char main_why[GW_CREDSTORE_REASON_MAX] = "", bak_why[GW_CREDSTORE_REASON_MAX] = "";
	struct gw_cred c;
	char *buf = NULL;
	size_t len = 0;
	int r, rb, w;

	gw_why_set(why, why_size, "%s", "");
	if (!gw_credstore_name_valid(device)) {
		gw_why_set(why, why_size, "invalid device name");
		return -EINVAL;
	}
	snprintf(main_name, sizeof(main_name), "%s.json", device);
	snprintf(bak_name, sizeof(bak_name), "%s.json.bak", device);
	r = cred_read(s, main_name, device, ret, NULL, NULL, main_why, sizeof(main_why));
	if (r == 0)
		return 0;
	if (r != -EBADMSG && r != -ENOENT) {
		gw_why_set(why, why_size, "%s", main_why);
		return r;
	}
	if (r == -EBADMSG)
		note_quarantine(main_why, sizeof(main_why), main_name, quarantine(s, main_name));

	rb = cred_read(s, bak_name, device, &c, &buf, &len, bak_why, sizeof(bak_why));
	if (rb == 0) {
		/* Put the good copy back under the main name, leaving .bak as it is. */
		w = write_atomic(s, main_name, buf, len, false, bak_why, sizeof(bak_why));
		wipe_buf(buf, GW_CREDSTORE_FILE_MAX + 1);
		if (r == -ENOENT)
			gw_why_set(why, why_size, "%s/%s: is missing; %s %s", s->path, main_name,
				   w < 0 ? "using" : "restored it from", bak_name);
		else
			gw_why_set(why, why_size, "%s; %s %s", main_why,
				   w < 0 ? "using" : "restored from", bak_name);
		if (w < 0)
			gw_why_append(why, why_size, " (restoring failed: %s)", bak_why);
		*ret = c;
		return 0;
	}
	if (rb == -ENOENT) {
		gw_why_set(why, why_size, "%s", main_why);
		return r;
	}
	if (rb == -EBADMSG)
		note_quarantine(bak_why, sizeof(bak_why), bak_name, quarantine(s, bak_name));
	if (r == -EBADMSG)
		gw_why_set(why, why_size, "%s; backup: %s", main_why, bak_why);
	else
		gw_why_set(why, why_size, "%s/%s: is missing; backup: %s", s->path, main_name,
			   bak_why);
	return rb;
}

int gw_credstore_save(struct gw_credstore *s, const struct gw_cred *cred, char *why,
		      size_t why_size)
{
	char main_name[FNAME_SIZE], state_name[FNAME_SIZE];
	struct out o = { 0 };
	struct gw_cred old;
	const char *bad;
	bool backup;
	int r;

	gw_why_set(why, why_size, "%s", "");
	bad = cred_check(cred);
	if (bad) {
		gw_why_set(why, why_size,
			   "credential not saved: missing, stray or invalid field (%s)", bad);
		return -EINVAL;
	}
	r = cred_format(cred, &o);
	if (r < 0) {
		gw_why_set(why, why_size, "credential of %s not saved: larger than %d bytes",
			   cred->device, GW_CREDSTORE_FILE_MAX);
		goto out;
	}
	snprintf(main_name, sizeof(main_name), "%s.json", cred->device);
	snprintf(state_name, sizeof(state_name), "%s.state", cred->device);
	/*
	 * Only a copy that verifies becomes the backup: .bak is the last known good one. An
	 * unsafe file is refused here as on load, rather than silently replaced: it may be the
	 * operator's copy of the only secret the cloud will ever issue for this device.
	 */
	r = cred_read(s, main_name, cred->device, &old, NULL, NULL, why, why_size);
	if (r == -EPERM)
		goto out;
	backup = r == 0;
	if (backup)
		gw_credstore_wipe(&old);
	gw_why_set(why, why_size, "%s", "");
	r = write_atomic(s, main_name, o.buf, o.len, backup, why, why_size);
	if (r < 0)
		goto out;
	/*
	 * The marker only delays registration while there is no credential, so clearing it is
	 * best-effort: a marker that survives a crash here is ignored next to the credential.
	 */
	if (unlinkat(s->dfd, state_name, 0) == 0)
		(void)gw_file_fsync_dir(s->dfd);
out:
	wipe_buf(o.buf, GW_CREDSTORE_FILE_MAX);
	return r;
}

/*
 * --- Needs-provisioning markers ---
 */

int64_t gw_credstore_retry_after(uint32_t attempts)
{
	static const int64_t steps[] = { 60000, 300000, 900000, GW_CREDSTORE_RETRY_MAX_MS };
	size_t n = sizeof(steps) / sizeof(steps[0]);

	if (attempts == 0)
		attempts = 1;
	return steps[attempts < n ? attempts - 1 : n - 1];
}

static int64_t clamp_retry(int64_t t, int64_t now)
{
	if (t < now)
		return now;
	if (t - now > GW_CREDSTORE_RETRY_MAX_MS)
		return now + GW_CREDSTORE_RETRY_MAX_MS;
	return t;
}

static int64_t get_int(json_t *root, const char *key, int64_t min, int64_t max, bool *ok)
{
	json_t *v = json_object_get(root, key);

	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		*ok = false;
		return 0;
	}
	return json_integer_value(v);
}

static int state_parse(struct gw_credstore *s, const char *name, const char *device,
		       const char *buf, size_t len, struct gw_cred_state *ret, char *why,
		       size_t why_size)
{
	struct gw_cred_state st = { .status = GW_CRED_STATUS_NEEDS_PROVISIONING };
	static const char *const keys[] = { "v", "device", "status", "why", "attempts",
					    "last_attempt", "next_retry", "crc32c" };
	const char *what = NULL, *str, *k;
	json_error_t jerr;
	json_t *root, *v;
	bool ok = true;
	int r = -EBADMSG;

	root = parse_json(buf, len, &jerr);
	if (!root) {
		gw_why_set(why, why_size, "%s/%s: is not valid JSON (line %d, column %d)", s->path,
			   name, jerr.line, jerr.column);
		return -EBADMSG;
	}
	if (check_envelope(root, buf, len, &what) < 0)
		goto bad;
	json_object_foreach(root, k, v) {
		size_t i = 0;

		while (i < sizeof(keys) / sizeof(keys[0]) && strcmp(k, keys[i]) != 0)
			i++;
		if (i == sizeof(keys) / sizeof(keys[0])) {
			what = "has a field of unknown name";
			goto bad;
		}
	}
	str = get_str(root, "device");
	if (!str || strcmp(str, device) != 0) {
		what = "has a device field that does not match its file name";
		goto bad;
	}
	str = get_str(root, "status");
	if (!str || strcmp(str, "needs_provisioning") != 0) {
		what = "has a missing or unknown status";
		goto bad;
	}
	str = get_str(root, "why");
	if (!str || strlen(str) > GW_CREDSTORE_WHY_MAX) {
		what = "has a missing or overlong reason";
		goto bad;
	}
	memcpy(st.why, str, strlen(str) + 1);
	st.attempts = (uint32_t)get_int(root, "attempts", 1, UINT32_MAX, &ok);
	st.last_attempt_ms = get_int(root, "last_attempt", 0, INT64_MAX, &ok);
	st.next_retry_ms = get_int(root, "next_retry", 0, INT64_MAX, &ok);
	if (!ok) {
		what = "has a missing or invalid attempts, last_attempt or next_retry";
		goto bad;
	}
	st.next_retry_ms = clamp_retry(st.next_retry_ms, gw_now_wall_ms());
	*ret = st;
	r = 0;
	goto out;
bad:
	gw_why_set(why, why_size, "%s/%s: %s", s->path, name, what);
out:
	json_decref(root);
	return r;
}

int gw_credstore_get_state(struct gw_credstore *s, const char *device, struct gw_cred_state *ret,
			   char *why, size_t why_size)
{
	char name[FNAME_SIZE];
	char *buf = NULL;
	size_t len = 0;
	int r;

	gw_why_set(why, why_size, "%s", "");
	if (!gw_credstore_name_valid(device)) {
		gw_why_set(why, why_size, "invalid device name");
		return -EINVAL;
	}
	snprintf(name, sizeof(name), "%s.state", device);
	r = read_safe(s, name, &buf, &len, why, why_size);
	if (r == -ENOENT) {
		memset(ret, 0, sizeof(*ret));
		ret->status = GW_CRED_STATUS_OK;
		return 0;
	}
	if (r == 0)
		r = state_parse(s, name, device, buf, len, ret, why, why_size);
	if (r == -EBADMSG)
		note_quarantine(why, why_size, name, quarantine(s, name));
	wipe_buf(buf, GW_CREDSTORE_FILE_MAX + 1);
	return r;
}

int gw_credstore_mark_refused(struct gw_credstore *s, const char *device, const char *why,
			      int64_t next_retry_ms, struct gw_cred_state *ret)
{
	struct gw_cred_state st = { 0 };
	char name[FNAME_SIZE];
	struct out o = { 0 };
	int64_t now = gw_now_wall_ms();
	size_t n = 0;
	int r;

	if (!gw_credstore_name_valid(device))
		return -EINVAL;
	r = gw_credstore_get_state(s, device, &st, NULL, 0);
	if (r == -EPERM || (r < 0 && r != -EBADMSG))
		return r;
	if (r < 0 || st.status != GW_CRED_STATUS_NEEDS_PROVISIONING)
		st.attempts = 0;
	st.status = GW_CRED_STATUS_NEEDS_PROVISIONING;
	if (st.attempts < UINT32_MAX)
		st.attempts++;
	st.last_attempt_ms = now;
	if (next_retry_ms <= 0)
		next_retry_ms = now + gw_credstore_retry_after(st.attempts);
	st.next_retry_ms = clamp_retry(next_retry_ms, now);
	/* Reasons come from the cloud's replies; keep them one printable line. */
	for (; why && why[n] && n < GW_CREDSTORE_WHY_MAX; n++)
		st.why[n] = why[n] >= 0x20 && why[n] <= 0x7e ? why[n] : '?';
	st.why[n] = '\0';

	o.buf = gw_malloc0(GW_CREDSTORE_FILE_MAX);
	out_raw(&o, "{\"v\":1", 6);
	out_member_str(&o, "device", device);
	out_member_str(&o, "status", "needs_provisioning");
	out_member_str(&o, "why", st.why);
	out_member_int(&o, "attempts", st.attempts);
	out_member_int(&o, "last_attempt", st.last_attempt_ms);
	out_member_int(&o, "next_retry", st.next_retry_ms);
	out_finish(&o);
	snprintf(name, sizeof(name), "%s.state", device);
	r = write_atomic(s, name, o.buf, o.len, false, NULL, 0);
	free(o.buf);
	if (r == 0 && ret)
		*ret = st;
	return r;
}

/*
 * --- The store ---
 */

/* mkdir -p with mode 0700 for every directory we create. */
static int mkdir_parents(const char *dir)
{
	char *p = gw_strdup(dir);
	char save;
	int r = 0;

	for (char *c = p + 1; ; c++) {
		if (*c != '/' && *c != '\0')
			continue;
		save = *c;
		*c = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			r = -errno;
			break;
		}
		*c = save;
		if (!save)
			break;
	}
	free(p);
	return r;
}

/* Files a crashed save left behind: partial copies of a secret serve nobody. */
static void remove_stale_tmp(struct gw_credstore *s)
{
	struct dirent *e;
	DIR *d;
	int fd;

	fd = openat(s->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);

		if (e->d_name[0] == '.' && n > 5 && strcmp(e->d_name + n - 4, ".tmp") == 0)
			(void)unlinkat(s->dfd, e->d_name, 0);
	}
	closedir(d);
}

int gw_credstore_open(const char *dir, struct gw_credstore **ret, char *why, size_t why_size)
{
	struct gw_credstore *s;
	struct stat st;
	enum gw_file_trust trust;
	int dfd, r;

	gw_why_set(why, why_size, "%s", "");
	if (!dir || !*dir) {
		gw_why_set(why, why_size, "no credential directory given");
		return -EINVAL;
	}
	r = mkdir_parents(dir);
	if (r < 0) {
		gw_why_set(why, why_size, "%s: cannot create: %s", dir, strerror(-r));
		return r;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		r = -errno;
		if (r == -ELOOP || r == -ENOTDIR) {
			gw_why_set(why, why_size, "%s: is not a directory (or a symbolic link)",
				   dir);
			return -EPERM;
		}
		gw_why_set(why, why_size, "%s: cannot open: %s", dir, strerror(-r));
		return r;
	}
	if (fstat(dfd, &st) < 0) {
		r = -errno;
		gw_why_set(why, why_size, "%s: cannot stat: %s", dir, strerror(-r));
		goto fail;
	}
	trust = gw_file_check(&st, &private_rule);
	if (trust == GW_FILE_FOREIGN_OWNER) {
		r = -EPERM;
		gw_why_set(why, why_size, "%s: is owned by uid %u, not by the daemon's uid %u", dir,
			   (unsigned int)st.st_uid, (unsigned int)geteuid());
		goto fail;
	}
	if (trust == GW_FILE_OPEN_MODE) {
		r = -EPERM;
		gw_why_set(why, why_size, "%s: mode %04o gives group/other access (expected 0700)",
			   dir, (unsigned int)(st.st_mode & 07777));
		goto fail;
	}
	s = gw_new0(struct gw_credstore, 1);
	s->dfd = dfd;
	s->path = gw_strdup(dir);
	remove_stale_tmp(s);
	*ret = s;
	return 0;
fail:
	close(dfd);
	return r;
}

struct gw_credstore *gw_credstore_close(struct gw_credstore *s)
{
	if (s) {
		close(s->dfd);
		free(s->path);
		free(s);
	}
	return NULL;
}
