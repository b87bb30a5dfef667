/* SPDX-License-Identifier: MIT */
/*
 * Configuration loading and validation. libinih splits the file into sections and
 * key = value pairs; this module numbers the lines (through its own reader, because Debian
 * builds inih without INI_HANDLER_LINENO), drives every key through one table per section,
 * runs the cross-key checks when a section ends and the whole-file checks at the end, and
 * reads secrets. Every problem is collected and printed sorted by line, so one run shows all.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "gw-build.h"
#include "gw/config.h"
#include "gw/fileio.h"
#include "gw/node.h"
#include "gw/util.h"

#define MAX_SECTION_KEYS 48
#define DEFAULT_STATE_DIR "/var/lib/sensorgw"
#define SECRET_MAX 4096 /* bytes in a password file or credential */
#define CLIENT_ID_MAX 64
#define STRING_MAX 255 /* host names, user names, USB strings */
#define TITLE_MAX (GW_CONFIG_NAME_MAX + 16)

/* The section-name charset is also the map FIELD charset and the port-reference charset. */
#define NAME_HELP "1..31 of A-Z a-z 0-9 _ . -"
#define IDENT_HELP "1..63 of A-Z a-z 0-9 _"

_Static_assert(sizeof(enum gw_parity) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum gw_flow) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum gw_framing) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum gw_uplink_type) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum gw_map_type) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum gw_cloud_auth) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum gw_aliyun_sign_method) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum gw_tencent_dynreg_api) == sizeof(int), "enums are stored as int");

struct parser;
struct key_def;

typedef bool (*setter_fn)(struct parser *p, const struct key_def *k, void *obj, const char *v);

struct word {
	const char *word;
	int value;
};

enum key_flags {
	KF_ABSOLUTE = 1 << 0,    /* path: must start with '/' */
	KF_TOPIC = 1 << 1,       /* template: no MQTT wildcards */
	KF_TOPIC_LEVEL = 1 << 2, /* template: no wildcards and no '/' (one topic level) */
	KF_NONZERO = 1 << 3,     /* double: 0 is refused */
	KF_EMPTY_OK = 1 << 4,    /* an empty value is meaningful */
};

/*
 * One row per key: its name, the setter that parses and stores it, the default (applied
 * through the same setter when the section opens, so defaults obey the same rules; NULL when
 * there is none or it depends on other keys and is computed when the section closes), the
 * bounds (numbers: min..max; strings: max length), the accepted words and where it is stored.
 */
struct key_def {
	const char *name;
	setter_fn set;
	const char *def;
	unsigned long min;
	unsigned long max;
	const struct word *words;
	const char *const *placeholders;
	size_t offset;
	size_t size;
	unsigned flags;
};

enum section_kind {
	SEC_GATEWAY,
	SEC_PORT,
	SEC_UPLINK,
	SEC_MAP,
};

struct section_def {
	const char *kind;
	enum section_kind id;
	const struct key_def *keys;
	size_t n_keys;
	void (*close)(struct parser *p);
};

struct diag_entry {
	unsigned line;
	unsigned seq;
	char *text;
};

struct parser {
	const char *path;
	struct gw_config *c;
	mode_t mode; /* of the config file itself, for the inline-secret rule */

	/* reader */
	FILE *f;
	char *buf;
	size_t buf_size;
	unsigned line;
	int read_errno;
	bool key_pending; /* the last line handed to inih should produce a key */
	bool key_handled; /* ... and the handler saw it */

	/* current section */
	bool in_section;
	bool skip; /* the section header was refused: its keys are ignored */
	const struct section_def *sec;
	void *obj;
	unsigned sec_line;
	char title[TITLE_MAX];
	unsigned key_lines[MAX_SECTION_KEYS]; /* 0: not given */
	bool key_bad[MAX_SECTION_KEYS];       /* given, but refused */

	unsigned gateway_line;
	unsigned map_port_line[GW_CONFIG_MAX_MAPS];

	struct diag_entry *diags;
	size_t n_diags;
	size_t diag_alloc;
};

static _Noreturn void oom(void)
{
	fputs("sensorgw: out of memory\n", stderr);
	abort();
}

static void report(struct parser *p, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(struct parser *p, unsigned line, const char *fmt, ...)
{
	struct diag_entry *d;
	va_list ap;
	char *text;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (r < 0)
		oom();
	if (p->n_diags == p->diag_alloc) {
		p->diag_alloc = p->diag_alloc ? p->diag_alloc * 2 : 16;
		d = reallocarray(p->diags, p->diag_alloc, sizeof(*d));
		if (!d)
			oom();
		p->diags = d;
	}
	d = &p->diags[p->n_diags];
	d->line = line;
	d->seq = (unsigned)p->n_diags;
	d->text = text;
	p->n_diags++;
}

/* Line 0 (nothing applies) sorts last: those are whole-file summaries. */
static int diag_cmp(const void *a, const void *b)
{
	const struct diag_entry *x = a;
	const struct diag_entry *y = b;
	unsigned lx = x->line ? x->line : UINT_MAX;
	unsigned ly = y->line ? y->line : UINT_MAX;

	if (lx != ly)
		return lx < ly ? -1 : 1;
	return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

static void flush_diags(struct parser *p, FILE *diag)
{
	if (p->n_diags > 1)
		qsort(p->diags, p->n_diags, sizeof(*p->diags), diag_cmp);
	for (size_t i = 0; i < p->n_diags; i++) {
		if (diag)
			fprintf(diag, "%s:%u: %s\n", p->path, p->diags[i].line, p->diags[i].text);
		free(p->diags[i].text);
	}
	if (diag)
		fflush(diag);
	free(p->diags);
	p->diags = NULL;
	p->n_diags = 0;
	p->diag_alloc = 0;
}

/* Suggestions */

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a);
	size_t lb = strlen(b);
	size_t row[65];

	if (la > 64 || lb > 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

struct suggestion {
	const char *word;
	const char *close;     /* within edit distance 2 */
	size_t dist;
	const char *contained; /* one contains the other, e.g. baudrate and baud */
};

static void suggest_consider(struct suggestion *s, const char *cand)
{
	size_t d = edit_distance(s->word, cand);
	size_t lw = strlen(s->word);
	size_t lc = strlen(cand);

	if (d <= 2 && d < lw && d < lc && (!s->close || d < s->dist)) {
		s->close = cand;
		s->dist = d;
	}
	if (!s->contained && (lw < lc ? lw : lc) >= 4 &&
	    (strstr(s->word, cand) || strstr(cand, s->word)))
		s->contained = cand;
}

static const char *suggest_result(const struct suggestion *s)
{
	return s->close ? s->close : s->contained;
}

/* Value helpers */

static void *field_at(void *obj, const struct key_def *k)
{
	return (char *)obj + k->offset;
}

static void store_uint(void *dst, size_t size, unsigned long v)
{
	if (size == sizeof(uint8_t)) {
		uint8_t x = (uint8_t)v;

		memcpy(dst, &x, sizeof(x));
	} else if (size == sizeof(uint16_t)) {
		uint16_t x = (uint16_t)v;

		memcpy(dst, &x, sizeof(x));
	} else if (size == sizeof(uint32_t)) {
		uint32_t x = (uint32_t)v;

		memcpy(dst, &x, sizeof(x));
	} else if (size == sizeof(uint64_t)) {
		uint64_t x = (uint64_t)v;

		memcpy(dst, &x, sizeof(x));
	} else {
		abort();
	}
}

static void store_string(void *obj, const struct key_def *k, const char *v)
{
	char **dst = field_at(obj, k);

	free(*dst);
	*dst = gw_strdup(v);
}

static bool is_name_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '_' || ch == '.' || ch == '-';
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= GW_CONFIG_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_name_char(s[i]))
			return false;
	return true;
}

static bool valid_identifier(const char *s, size_t size)
{
	size_t n = strlen(s);

	if (n == 0 || n >= size)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

/* Accepts only plain decimal digits, so "-1", "+1", " 1" and "1k" are all refused. */
static bool parse_ulong(const char *v, unsigned long *ret)
{
	unsigned long x;
	char *end;

	if (!isdigit((unsigned char)v[0]))
		return false;
	errno = 0;
	x = strtoul(v, &end, 10);
	if (*end)
		return false;
	*ret = errno == ERANGE ? ULONG_MAX : x;
	return true;
}

static bool is_negative_integer(const char *v)
{
	unsigned long ignored;

	return v[0] == '-' && parse_ulong(v + 1, &ignored);
}

static void join_words(const struct word *w, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (; w->word && n < size; w++) {
		int r = snprintf(buf + n, size - n, "%s%s", n ? ", " : "", w->word);

		if (r < 0)
			break;
		n += (size_t)r;
	}
}

/* Setters: each parses v, reports a problem at the current line, or stores the value. */

static bool set_string(struct parser *p, const struct key_def *k, void *obj, const char *v)
{
	size_t n = strlen(v);

	if (k->max && n > k->max) {
		report(p, p->line, "%s: too long (%zu bytes, max %lu)", k->name, n, k->max);
		return false;
	}
	store_string(obj, k, v);
	return true;
}

static bool set_path(struct parser *p, const struct key_def *k, void *obj, const char *v)
{
	if ((k->flags & KF_ABSOLUTE) && v[0] != '/') {
		report(p, p->line, "%s: '%s' is not an absolute path", k->name, v);
		return false;
	}
	store_string(obj, k, v);
	return true;
}

/* A Unix socket's path must fit sockaddr_un.sun_path with its NUL. */
static bool set_socket_path(struct parser *p, const struct key_def *k, void *obj, const char *v)
{
	if (strlen(v) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
		report(p, p->line, "%s: '%s' is longer than a Unix socket path may be (%zu bytes)",
		       k->name, v, sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1);
		return false;
	}
	return set_path(p, k, obj, v);
}

/* ---- permission rules for the files the configuration names, and for itself ---- */

/*
 * The user the service runs as, for a run as root (`sudo sensorgwd --check-config`): the
 * owner of the state directory, which systemd-tmpfiles creates for that user. (uid_t)-1
 * when it does not exist yet.
 */
static uid_t service_uid(const char *state_dir)
{
	struct stat st;

	if (!state_dir || stat(state_dir, &st) < 0)
		return (uid_t)-1;
	return st.st_uid;
}

/*
 * The rule for a file the operator provides and the daemon only reads, judged on the opened
 * file (a symbolic link is followed: its target is what is read, so its target is judged).
 * Owned by root, by the daemon's effective user or by the service user; a secret (password,
 * ProductSecret, private key) has no group/other permission bit at all, any other file (the
 * configuration, certificates) no group/other write bit. Returns NULL or the problem.
 */
static const char *file_problem(const struct stat *st, uid_t trusted, bool secret, char *buf,
				size_t size)
{
	const struct gw_file_rule rule = {
		.root_ok = true, .also_uid = trusted, .forbidden = secret ? 077 : 022
	};
	unsigned mode = (unsigned)(st->st_mode & 07777);

	switch (gw_file_check(st, &rule)) {
	case GW_FILE_TRUSTED:
		break;
	case GW_FILE_FOREIGN_OWNER:
		snprintf(buf, size,
			 "is owned by uid %u, not by root or the daemon's user (uid %u); chown it",
			 (unsigned)st->st_uid, (unsigned)geteuid());
		return buf;
	case GW_FILE_OPEN_MODE:
		if (secret)
			snprintf(buf, size,
				 "is readable by group or others (mode %04o); chmod 600 it", mode);
		else
			snprintf(buf, size,
				 "is writable by group or others (mode %04o); chmod go-w it", mode);
		return buf;
	}
	return NULL;
}

/* Reports a file named by key k that breaks the rule; true when it is safe. */
static bool file_safe(struct parser *p, const struct key_def *k, const char *path,
		      const struct stat *st, bool secret)
{
	char buf[160];
	const char *why = file_problem(st, service_uid(p->c->state_dir), secret, buf, sizeof(buf));

	if (!why)
		return true;
	report(p, p->line, "%s: %s %s", k->name, path, why);
	return false;
}

/*
 * Opens the configuration itself under the same rule (it names the secrets and the brokers,
 * so it must not be writable by others) without blocking on a FIFO. The inline-secret rule
 * (set_password) comes on top. 0 or -errno after writing "PATH:0: ..." to diag.
 */
static int open_config(const char *path, FILE *diag, FILE **ret, struct stat *st)
{
	char buf[160];
	const char *why = NULL;
	int fd, r = 0;

	fd = gw_file_open_read(AT_FDCWD, path, false);
	if (fd < 0) {
		r = fd;
		if (diag)
			fprintf(diag, "%s:0: cannot open: %s\n", path, strerror(-r));
		return r;
	}
	if (fstat(fd, st) < 0) {
		r = -errno;
		why = strerror(-r);
	} else if (S_ISDIR(st->st_mode)) {
		r = -EISDIR;
		why = strerror(EISDIR);
	} else if (!S_ISREG(st->st_mode)) {
		r = -EPERM;
		why = S_ISFIFO(st->st_mode) ? "is not a regular file (a FIFO)"
					    : "is not a regular file";
	} else {
		why = file_problem(st, service_uid(DEFAULT_STATE_DIR), false, buf,
				   sizeof(buf));
		if (why)
			r = -EPERM;
	}
	if (r == 0 && fcntl(fd, F_SETFL, 0) < 0)
		r = -errno, why = strerror(errno);
	if (r == 0 && !(*ret = fdopen(fd, "re")))
		r = -errno, why = strerror(errno);
	if (r < 0) {
		if (diag)
			fprintf(diag, "%s:0: %s%s\n", path, r == -EPERM ? "this file " : "cannot open: ",
				why);
		close(fd);
	}
	return r;
}

/*
 * O_NONBLOCK so that a FIFO cannot stall the loader; the type is checked right after.
 * Returns the fd or -1 after reporting.
 */
static int open_regular(struct parser *p, const struct key_def *k, const char *path,
			struct stat *st)
{
	int fd = gw_file_open_read(AT_FDCWD, path, false);

	if (fd < 0) {
		report(p, p->line, "%s: cannot read %s: %s", k->name, path, strerror(-fd));
		return -1;
	}
	if (fstat(fd, st) < 0) {
		report(p, p->line, "%s: cannot read %s: %s", k->name, path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		report(p, p->line, "%s: %s is not a regular file", k->name, path);
		close(fd);
		return -1;
	}
	return fd;
}

static bool set_readable_file(struct parser *p, const struct key_def *k, void *obj, const char *v)
{
	struct stat st;
	int fd = open_regular(p, k, v, &st);
	bool ok;

	if (fd < 0)
		return false;
	ok = file_safe(p, k, v, &st, false);
	close(fd);
	if (ok)
		store_string(obj, k, v);
	return ok;
}

/* A private key: read by libmosquitto later, so only its name is kept, but it is a secret. */
static bool set_private_file(struct parser *p, const struct key_def *k, void *obj, const char *v)
{
	struct stat st;
	int fd = open_regular(p, k, v, &st);
	bool ok;

	if (fd < 0)
		return false;
	ok = file_safe(p, k, v, &st, true);
	close(fd);
	if (ok)
		store_string(obj, k, v);
	return ok;
}

struct template_ctx {
	const char *const *allowed;
	char bad[64];
};

static const char *template_lookup(const char *name, size_t len, void *user_data)
{
	struct template_ctx *ctx = user_data;

	for (const char *const *a = ctx->allowed; *a; a++)
		if (strlen(*a) == len && memcmp(*a, name, len) == 0)
			return "";
	snprintf(ctx->bad, sizeof(ctx->bad), "%.*s", (int)(len < 60 ? len : 60), name);
	return NULL;
}

static bool set_template(struct parser *p, const struct key_def *k, void *obj, const char *v)
{
	struct template_ctx ctx = { .allowed = k->placeholders };
	char allowed[128] = "";
	char buf[1024];
	size_t n = 0;
	int r;

	r = gw_template_expand(v, template_lookup, &ctx, buf, sizeof(buf));
	if (r < 0 && ctx.bad[0]) {
		for (const char *const *a = k->placeholders; *a && n < sizeof(allowed); a++) {
			int w = snprintf(allowed + n, sizeof(allowed) - n, "%s{%s}", n ? " " : "",
					 *a);

			if (w < 0)
				break;
			n += (size_t)w;
		}
		report(p, p->line, "%s: unknown placeholder '{%s}' (allowed: %s)", k->name, ctx.bad,
		       allowed);
		return false;
	}
	if (r < 0) {
		report(p, p->line, "%s: '{' without a matching '}'", k->name);
		return false;
	}
	if ((k->flags & KF_TOPIC_LEVEL) && strpbrk(v, "/+#")) {
		report(p, p->line, "%s: must not contain '/', '+' or '#' (it is one topic level)",
		       k->name);
		return false;
	}
	if ((k->flags & KF_TOPIC) && strpbrk(v, "+#")) {
		report(p, p->line, "%s: must not contain the MQTT wildcards '+' or '#'", k->name);
		return false;
	}
	store_string(obj, k, v);
	return true;
}

static bool set_uint(struct parser *p, const struct key_def *k, void *obj, const char *v)
{
	unsigned long x;

	if (is_negative_integer(v)) {
		report(p, p->line, "%s: %s is out of range (%lu..%lu)", k->name, v, k->min, k->max);
		return false;
	}
	if (!parse_ulong(v, &x)) {
		report(p, p->line, "%s: '%s' is not an integer (expected %lu..%lu)", k->name, v,
		       k->min, k->max);
		return false;
	}
	if (x < k->min || x > k->max) {
		report(p, p->line, "%s: %s is out of range (%lu..%lu)", k->name, v, k->min, k->max);
		return false;
	}
	store_uint(field_at(obj, k), k->size, x);
	return true;
}

/* A byte count: an integer with an optional K, M or G suffix (powers of 1024). 0 is allowed
 * where min is 0 (meaning "no limit"). */
static bool set_size(struct parser *p, const struct key_def *k, void *obj, const char *v)
{
	char num[32];
	size_t n = strlen(v);
	unsigned long mult = 1, x;

	if (n > 0 && n < sizeof(num)) {
		char last = v[n - 1];

		if (last == 'K' || last == 'k')
			mult = 1024UL;
		else if (last == 'M' || last == 'm')
			mult = 1024UL * 1024;
		else if (last == 'G' || last == 'g')
			mult = 1024UL * 1024 * 1024;
		memcpy(num, v, n + 1);
		if (mult != 1)
			num[n - 1] = '\0';
	}
	if (n == 0 || n >= sizeof(num) || is_negative_integer(num) || !parse_ulong(num, &x) ||
	    (x != 0 && mult > ULONG_MAX / x)) {
		report(p, p->line, "%s: '%s' is not a size (a number of bytes, optionally with K, M "
		       "or G, e.g. 64M)", k->name, v);
		return false;
	}
	x *= mult;
	if ((x != 0 || k->min != 0) && (x < k->min || x > k->max)) {
		report(p, p->line, "%s: %s is out of range (%lu..%lu bytes%s)", k->name, v, k->min,
		       k->max, k->min == 0 ? ", 0 = no limit" : "");
		return false;
	}
	store_uint(field_at(obj, k), k->size, x);
	return true;
}

/* The rates every Linux termios knows as Bnnn constants. */
static const uint32_t baud_rates[] = {
	50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400,
	57600, 115200, 230400, 460800, 500000, 576000, 921600,
};

#define BAUD_HELP "50..921600, e.g. 9600, 115200, 921600"

static bool set_baud(struct parser *p, const struct key_def *k, void *obj, const char *v)
{
	unsigned long x;

	if (!parse_ulong(v, &x)) {
		report(p, p->line, "%s: '%s' is not an integer (" BAUD_HELP ")", k->name, v);
		return false;
	}
	for (size_t i = 0; i < sizeof(baud_rates) / sizeof(baud_rates[0]); i++) {
		if (baud_rates[i] == x) {
			store_uint(field_at(obj, k), k->size, x);
			return true;
		}
	}
	report(p, p->line, "%s: %s is not a supported rate (" BAUD_HELP ")", k->name, v);
	return false;
}

static bool set_hex16(struct parser *p, const struct key_def *k, void *obj, const char *v)
{
	int x;

	if (strlen(v) != 4 || !isxdigit((unsigned char)v[0]) || !isxdigit((unsigned char)v[1]) ||
	    !isxdigit((unsigned char)v[2]) || !isxdigit((unsigned char)v[3])) {
		report(p, p->line, "%s: '%s' is not 4 hex digits (e.g. 0483)", k->name, v);
		return false;
	}
	x = (int)strtol(v, NULL, 16);
	memcpy(field_at(obj, k), &x, sizeof(x));
	return true;
}

static bool set_enum(struct parser *p, const struct key_def *k, void *obj, const char *v)
{
	struct suggestion s = { .word = v };
	char list[128];
	const char *hint;

	for (const struct word *w = k->words; w->word; w++) {
		if (strcmp(w->word, v) == 0) {
			memcpy(field_at(obj, k), &w->value, sizeof(w->value));
			return true;
		}
		suggest_consider(&s, w->word);
	}
	join_words(k->words, list, sizeof(list));
	hint = suggest_result(&s);
	if (hint)
		report(p, p->line, "%s: '%s' is not one of %s (did you mean '%s'?)", k->name, v,
		       list, hint);
	else
		report(p, p->line, "%s: '%s' is not one of %s", k->name, v, list);
	return false;
}

static const struct word bool_words[] = {
	{ "yes", 1 }, { "no", 0 }, { "true", 1 }, { "false", 0 },
	{ "on", 1 },  { "off", 0 }, { "1", 1 },   { "0", 0 },
	{ NULL, 0 },
};

static bool set_bool(struct parser *p, const struct key_def *k, void *obj, const char *v)
{
	char list[128];

	for (const struct word *w = bool_words; w->word; w++) {
		if (strcmp(w->word, v) == 0) {
			bool b = w->value;

			memcpy(field_at(obj, k), &b, sizeof(b));
			return true;
		}
	}
	join_words(bool_words, list, sizeof(list));
	report(p, p->line, "%s: '%s' is not a boolean (%s)", k->name, v, list);
	return false;
}

/* expiry: Unix seconds (0 = the default), or auto (type = tencent only, as the key) */
static bool set_expiry(struct parser *p, const struct key_def *k, void *obj, const char *v)
{
	struct gw_config_uplink *u = obj;

	u->expiry_auto = strcmp(v, "auto") == 0;
	if (u->expiry_auto) {
		u->expiry = 0;
		return true;
	}
	return set_uint(p, k, obj, v);
}

/* tls: a boolean, or psk (TLS-PSK, type = tencent only: close_uplink() checks the type) */
static bool set_tls(struct parser *p, const struct key_def *k, void *obj, const char *v)
{
	struct gw_config_uplink *u = obj;

	u->tls_psk = strcmp(v, "psk") == 0;
	if (u->tls_psk) {
		u->tls = true;
		return true;
	}
	return set_bool(p, k, obj, v);
}

static bool set_double(struct parser *p, const struct key_def *k, void *obj, const char *v)
{
	char *end;
	double x;

	errno = 0;
	x = strtod(v, &end);
	if (end == v || *end) {
		report(p, p->line, "%s: '%s' is not a number", k->name, v);
		return false;
	}
	if (!isfinite(x)) {
		report(p, p->line, "%s: '%s' is not a finite number", k->name, v);
		return false;
	}
	if ((k->flags & KF_NONZERO) && x == 0) {
		report(p, p->line, "%s: must not be 0", k->name);
		return false;
	}
	memcpy(field_at(obj, k), &x, sizeof(x));
	return true;
}

static bool set_identifier(struct parser *p, const struct key_def *k, void *obj, const char *v)
{
	if (!valid_identifier(v, k->size)) {
		report(p, p->line, "%s: '%s' is not valid (" IDENT_HELP ")", k->name, v);
		return false;
	}
	memcpy(field_at(obj, k), v, strlen(v) + 1);
	return true;
}

static bool set_name_ref(struct parser *p, const struct key_def *k, void *obj, const char *v)
{
	if (v[0] && !valid_name(v)) {
		report(p, p->line, "%s: '%s' is not a valid port name (" NAME_HELP ")", k->name, v);
		return false;
	}
	memcpy(field_at(obj, k), v, strlen(v) + 1);
	return true;
}

/* The secret keys share setters: the field they fill is the key's own (password or
 * product_secret), and the messages name the sibling keys after the key's base name. */
static void store_secret(void *obj, const struct key_def *k, char *secret)
{
	char **dst = field_at(obj, k);

	*dst = gw_secret_free(*dst);
	*dst = secret;
}

static bool set_password(struct parser *p, const struct key_def *k, void *obj, const char *v)
{
	if (p->mode & 077) {
		report(p, p->line,
		       "%s: %s holds an inline %s but is readable by group or others "
		       "(mode %04o); use %s_file or %s_credential, or chmod 600 %s",
		       k->name, p->path, k->name, (unsigned)(p->mode & 07777), k->name, k->name,
		       p->path);
		return false;
	}
	store_secret(obj, k, gw_strdup(v));
	return true;
}

/* Reads a secret; one trailing newline is not part of it (echo adds one). */
static bool read_secret(struct parser *p, const struct key_def *k, const char *path,
			bool check_mode, char **ret)
{
	char buf[SECRET_MAX + 1];
	struct stat st;
	size_t n = 0;
	bool ok = false;
	int fd, r;

	fd = open_regular(p, k, path, &st);
	if (fd < 0)
		return false;
	if (check_mode && !file_safe(p, k, path, &st, true))
		goto out;
	r = gw_file_read_fd(fd, buf, sizeof(buf), &n);
	if (r < 0) {
		report(p, p->line, "%s: cannot read %s: %s", k->name, path, strerror(-r));
		goto out;
	}
	if (n > SECRET_MAX) {
		report(p, p->line, "%s: %s is too large (max %d bytes)", k->name, path, SECRET_MAX);
		goto out;
	}
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n == 0) {
		report(p, p->line, "%s: %s is empty", k->name, path);
		goto out;
	}
	if (memchr(buf, '\0', n)) {
		report(p, p->line, "%s: %s contains a NUL byte", k->name, path);
		goto out;
	}
	*ret = gw_malloc0(n + 1);
	memcpy(*ret, buf, n);
	ok = true;
out:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return ok;
}

static bool set_password_file(struct parser *p, const struct key_def *k, void *obj,
			      const char *v)
{
	char *secret = NULL;

	if (!read_secret(p, k, v, true, &secret))
		return false;
	store_secret(obj, k, secret);
	return true;
}

static bool set_password_credential(struct parser *p, const struct key_def *k, void *obj,
				    const char *v)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	/* "password_credential" -> "password", for "or use password_file" */
	int base = (int)(strlen(k->name) - strlen("_credential"));
	char *secret = NULL;
	char *path;
	bool ok;

	if (strchr(v, '/') || strcmp(v, ".") == 0 || strcmp(v, "..") == 0 || strlen(v) > 255) {
		report(p, p->line, "%s: '%s' is not a valid credential name", k->name, v);
		return false;
	}
	if (!dir || !dir[0]) {
		report(p, p->line,
		       "%s: CREDENTIALS_DIRECTORY is not set (run under systemd with "
		       "LoadCredential=%s:PATH, or use %.*s_file)",
		       k->name, v, base, k->name);
		return false;
	}
	if (asprintf(&path, "%s/%s", dir, v) < 0)
		oom();
	/* systemd creates credentials 0400 and owns that directory: no mode rule here */
	ok = read_secret(p, k, path, false, &secret);
	free(path);
	if (ok)
		store_secret(obj, k, secret);
	return ok;
}

/* Aliyun ids (ProductKey, region, instance id) are DNS labels of the platform's hosts. */
static bool set_aliyun_id(struct parser *p, const struct key_def *k, void *obj, const char *v)
{
	size_t n = strlen(v);

	for (size_t i = 0; i < n; i++) {
		if (!isalnum((unsigned char)v[i]) && v[i] != '-') {
			report(p, p->line, "%s: '%s' is not valid (1..%lu of A-Z a-z 0-9 -)",
			       k->name, v, k->max);
			return false;
		}
	}
	return set_string(p, k, obj, v);
}

/* Tencent ProductIds are DNS labels of the MQTT host: the pure module's rule. */
static bool set_tencent_product_id(struct parser *p, const struct key_def *k, void *obj,
				   const char *v)
{
	char reason[GW_TENCENT_REASON_MAX] = "";

	if (gw_tencent_check_product_id(v, reason) < 0) {
		report(p, p->line, "%s: '%s' is not valid: %s", k->name, v, reason);
		return false;
	}
	return set_string(p, k, obj, v);
}

/* The registration request carries a sign that a man in the middle could replay: TLS only. */
static bool set_https_url(struct parser *p, const struct key_def *k, void *obj, const char *v)
{
	if (strncmp(v, "https://", strlen("https://")) != 0 || !v[strlen("https://")]) {
		report(p, p->line, "%s: '%s' is not an https:// URL", k->name, v);
		return false;
	}
	return set_string(p, k, obj, v);
}

/* Tables */

#define KEY(n, fn, st, fld, d, lo, hi, fl)                                                 \
	{ .name = (n), .set = (fn), .def = (d), .min = (lo), .max = (hi),                     \
	  .offset = offsetof(st, fld), .size = sizeof(((st *)NULL)->fld), .flags = (fl) }
#define KEY_ENUM(n, st, fld, d, w)                                                         \
	{ .name = (n), .set = set_enum, .def = (d), .words = (w), .offset = offsetof(st, fld), \
	  .size = sizeof(((st *)NULL)->fld) }
#define KEY_TEMPLATE(n, st, fld, d, ph, fl)                                                \
	{ .name = (n), .set = set_template, .def = (d), .placeholders = (ph),                 \
	  .offset = offsetof(st, fld), .size = sizeof(((st *)NULL)->fld), .flags = (fl) }

static const struct word log_level_words[] = {
	{ "error", LOG_ERR }, { "warning", LOG_WARNING }, { "notice", LOG_NOTICE },
	{ "info", LOG_INFO }, { "debug", LOG_DEBUG },     { NULL, 0 },
};
static const char *const device_placeholders[] = { "uid", "port", "addr", NULL };

static const struct key_def gateway_keys[] = {
	KEY("state_dir", set_path, struct gw_config, state_dir, DEFAULT_STATE_DIR, 0, 0,
	    KF_ABSOLUTE),
	KEY_TEMPLATE("device_name", struct gw_config, device_name, "stm32-{uid}",
		     device_placeholders, KF_TOPIC_LEVEL),
	KEY_ENUM("log_level", struct gw_config, log_level, "info", log_level_words),
	KEY("spool_max_bytes", set_size, struct gw_config, spool_max_bytes, "64M", 0,
	    1UL << 40, 0),
	KEY("min_free_bytes", set_size, struct gw_config, min_free_bytes, "16M", 0, 1UL << 40, 0),
	KEY("spool_segment_bytes", set_size, struct gw_config, spool_segment_bytes, "1M", 4096,
	    64UL << 20, 0),
	KEY("sync_records", set_uint, struct gw_config, sync_records, "100", 1, 100000, 0),
	KEY("sync_ms", set_uint, struct gw_config, sync_ms, "200", 1, 60000, 0),
	KEY("control_socket", set_socket_path, struct gw_config, control_socket,
	    GW_CONFIG_DEFAULT_CONTROL_SOCKET, 0, 0, KF_ABSOLUTE),
	/* node.h says why GW_NODES_MAX is the most */
	KEY("max_nodes", set_uint, struct gw_config, max_nodes, "256", 1, GW_NODES_MAX, 0),
};

static const struct word parity_words[] = {
	{ "none", GW_PARITY_NONE }, { "odd", GW_PARITY_ODD }, { "even", GW_PARITY_EVEN },
	{ NULL, 0 },
};
static const struct word flow_words[] = {
	{ "none", GW_FLOW_NONE }, { "rtscts", GW_FLOW_RTSCTS }, { "xonxoff", GW_FLOW_XONXOFF },
	{ NULL, 0 },
};
static const struct word framing_words[] = {
	{ "text", GW_FRAMING_TEXT }, { "binary", GW_FRAMING_BINARY }, { NULL, 0 },
};

#define PORT_T struct gw_config_port
static const struct key_def port_keys[] = {
	KEY("path", set_path, PORT_T, path, NULL, 0, 0, 0),
	KEY("match_vid", set_hex16, PORT_T, match_vid, NULL, 0, 0, 0),
	KEY("match_pid", set_hex16, PORT_T, match_pid, NULL, 0, 0, 0),
	KEY("match_serial", set_string, PORT_T, match_serial, NULL, 0, STRING_MAX, 0),
	KEY("match_description", set_string, PORT_T, match_description, NULL, 0, STRING_MAX, 0),
	KEY("baud", set_baud, PORT_T, baud, "115200", 0, 0, 0),
	KEY("data_bits", set_uint, PORT_T, data_bits, "8", 5, 8, 0),
	KEY_ENUM("parity", PORT_T, parity, "none", parity_words),
	KEY("stop_bits", set_uint, PORT_T, stop_bits, "1", 1, 2, 0),
	KEY_ENUM("flow_control", PORT_T, flow, "none", flow_words),
	KEY_ENUM("framing", PORT_T, framing, "text", framing_words),
	KEY("reopen_min_ms", set_uint, PORT_T, reopen_min_ms, "500", 10, 600000, 0),
	KEY("reopen_max_ms", set_uint, PORT_T, reopen_max_ms, "30000", 10, 3600000, 0),
};

static const struct word uplink_type_words[] = {
	{ "mqtt", GW_UPLINK_MQTT }, { "aliyun", GW_UPLINK_ALIYUN }, { "tencent", GW_UPLINK_TENCENT },
	{ NULL, 0 },
};
/* Both clouds' words: close_aliyun() and close_tencent() refuse the other cloud's. */
static const struct word auth_words[] = {
	{ "device-secret", GW_CLOUD_AUTH_DEVICE_SECRET }, { "register", GW_CLOUD_AUTH_REGISTER },
	{ "regnwl", GW_CLOUD_AUTH_REGNWL }, { "psk", GW_CLOUD_AUTH_PSK },
	{ "certificate", GW_CLOUD_AUTH_CERTIFICATE }, { NULL, 0 },
};
static const struct word register_api_words[] = {
	{ "v2", GW_TENCENT_DYNREG_V2 }, { "legacy", GW_TENCENT_DYNREG_LEGACY }, { NULL, 0 },
};
static const struct word register_via_words[] = {
	{ "auto", GW_REGISTER_VIA_AUTO }, { "https", GW_REGISTER_VIA_HTTPS },
	{ "mqtt", GW_REGISTER_VIA_MQTT }, { NULL, 0 },
};
static const struct word sign_method_words[] = {
	{ "hmacsha256", GW_ALIYUN_HMAC_SHA256 }, { "hmacsha1", GW_ALIYUN_HMAC_SHA1 },
	{ "hmacmd5", GW_ALIYUN_HMAC_MD5 }, { NULL, 0 },
};
static const struct word order_words[] = {
	{ "fifo", GW_ORDER_FIFO }, { "live-first", GW_ORDER_LIVE_FIRST }, { NULL, 0 },
};
static const struct word start_from_words[] = {
	{ "now", GW_START_FROM_NOW }, { "oldest", GW_START_FROM_OLDEST }, { NULL, 0 },
};
static const char *const topic_placeholders[] = {
	"device", "uid", "port", "addr", "kind", "uplink", NULL,
};

#define UPLINK_T struct gw_config_uplink
/* port, tls and client_id have no default here: they derive from other keys. */
static const struct key_def uplink_keys[] = {
	KEY_ENUM("type", UPLINK_T, type, NULL, uplink_type_words),
	KEY("host", set_string, UPLINK_T, host, "127.0.0.1", 0, STRING_MAX, 0),
	KEY("port", set_uint, UPLINK_T, port, NULL, 1, 65535, 0),
	KEY("tls", set_tls, UPLINK_T, tls, NULL, 0, 0, 0),
	KEY("ca_file", set_readable_file, UPLINK_T, ca_file, NULL, 0, 0, 0),
	KEY("cert_file", set_readable_file, UPLINK_T, cert_file, NULL, 0, 0, 0),
	KEY("key_file", set_private_file, UPLINK_T, key_file, NULL, 0, 0, 0),
	KEY("username", set_string, UPLINK_T, username, NULL, 0, STRING_MAX, 0),
	KEY("password", set_password, UPLINK_T, password, NULL, 0, 0, 0),
	KEY("password_file", set_password_file, UPLINK_T, password, NULL, 0, 0, 0),
	KEY("password_credential", set_password_credential, UPLINK_T, password, NULL, 0, 0, 0),
	KEY("client_id", set_string, UPLINK_T, client_id, NULL, 0, CLIENT_ID_MAX, 0),
	KEY("qos", set_uint, UPLINK_T, qos, "1", 0, 1, 0),
	KEY("keepalive", set_uint, UPLINK_T, keepalive, "60", 5, 65535, 0),
	KEY("clean_session", set_bool, UPLINK_T, clean_session, "yes", 0, 0, 0),
	KEY_TEMPLATE("topic", UPLINK_T, topic, "sensorgw/{device}/{kind}", topic_placeholders,
		     KF_TOPIC),
	KEY("reconnect_min_ms", set_uint, UPLINK_T, reconnect_min_ms, "1000", 100, 600000, 0),
	KEY("reconnect_max_ms", set_uint, UPLINK_T, reconnect_max_ms, "60000", 100, 3600000, 0),
	KEY("max_inflight", set_uint, UPLINK_T, max_inflight, "64", 1, 1000, 0),
	KEY("max_rate", set_uint, UPLINK_T, max_rate, "0", 0, 100000, 0),
	KEY_ENUM("order", UPLINK_T, order, "fifo", order_words),
	KEY_ENUM("start_from", UPLINK_T, start_from, "now", start_from_words),
	KEY("deadletter_after", set_uint, UPLINK_T, deadletter_after, "5", 1, 100, 0),
	KEY("product_key", set_aliyun_id, UPLINK_T, product_key, NULL, 0, GW_ALIYUN_ID_MAX - 1, 0),
	KEY("region", set_aliyun_id, UPLINK_T, region, NULL, 0, GW_ALIYUN_ID_MAX - 1, 0),
	KEY("instance_id", set_aliyun_id, UPLINK_T, instance_id, NULL, 0, GW_ALIYUN_ID_MAX - 1, 0),
	KEY_ENUM("auth", UPLINK_T, auth, "device-secret", auth_words),
	KEY("product_secret", set_password, UPLINK_T, product_secret, NULL, 0, 0, 0),
	KEY("product_secret_file", set_password_file, UPLINK_T, product_secret, NULL, 0, 0, 0),
	KEY("product_secret_credential", set_password_credential, UPLINK_T, product_secret, NULL,
	    0, 0, 0),
	KEY_ENUM("register_via", UPLINK_T, register_via, "auto", register_via_words),
	KEY("register_url", set_https_url, UPLINK_T, register_url, NULL, 0, GW_ALIYUN_URL_MAX - 1,
	    0),
	KEY_ENUM("sign_method", UPLINK_T, sign_method, "hmacsha256", sign_method_words),
	KEY("max_devices", set_uint, UPLINK_T, max_devices, "32", 1, 256, 0),
	/* commands from the cloud a second, and how many at once, before a node's serial line
	 * sees them; 0 = no limit (type = aliyun and tencent) */
	KEY("command_rate", set_uint, UPLINK_T, command_rate, "10", 0, 1000, 0),
	KEY("command_burst", set_uint, UPLINK_T, command_burst, "20", 1, 1000, 0),
	KEY("product_id", set_tencent_product_id, UPLINK_T, product_id, NULL, 0,
	    GW_TENCENT_PRODUCT_ID_MAX - 1, 0),
	KEY("sdkappid", set_uint, UPLINK_T, sdkappid, "12010126", 1, UINT32_MAX, 0),
	/* 0: the default far-future expiry; auto: now + 600 s with a synchronised clock;
	 * otherwise any later Unix time (docs/protocols/tencent.md §1.2) */
	KEY("expiry", set_expiry, UPLINK_T, expiry, "0", 0, UINT64_MAX, 0),
	KEY_ENUM("register_api", UPLINK_T, register_api, "v2", register_api_words),
};

static const struct word map_type_words[] = {
	{ "auto", GW_MAP_TYPE_AUTO },	  { "int", GW_MAP_TYPE_INT },
	{ "float", GW_MAP_TYPE_FLOAT },	  { "bool", GW_MAP_TYPE_BOOL },
	{ "string", GW_MAP_TYPE_STRING }, { NULL, 0 },
};

#define MAP_T struct gw_config_map
/* identifier defaults to the section's FIELD, which the table cannot know. */
static const struct key_def map_keys[] = {
	KEY("identifier", set_identifier, MAP_T, identifier, NULL, 0, 0, 0),
	KEY("scale", set_double, MAP_T, scale, "1", 0, 0, KF_NONZERO),
	KEY("offset", set_double, MAP_T, offset, "0", 0, 0, 0),
	KEY_ENUM("type", MAP_T, type, "auto", map_type_words),
	KEY("port", set_name_ref, MAP_T, port, "", 0, 0, KF_EMPTY_OK),
};

_Static_assert(N_ELEMENTS(uplink_keys) <= MAX_SECTION_KEYS, "raise MAX_SECTION_KEYS");
_Static_assert(N_ELEMENTS(port_keys) <= MAX_SECTION_KEYS, "raise MAX_SECTION_KEYS");

static void apply_defaults(const struct key_def *keys, size_t n, void *obj)
{
	/* Defaults are constants of this file: a parse error here is a bug, so no parser. */
	struct parser quiet = { .path = "(defaults)" };

	for (size_t i = 0; i < n; i++)
		if (keys[i].def && !keys[i].set(&quiet, &keys[i], obj, keys[i].def))
			abort();
}

/* Section checks, run when the section ends */

static size_t key_index(const struct parser *p, const char *name)
{
	for (size_t i = 0; i < p->sec->n_keys; i++)
		if (strcmp(p->sec->keys[i].name, name) == 0)
			return i;
	abort();
}

/* The line the key was given on, 0 when it was not given. */
static unsigned given(const struct parser *p, const char *name)
{
	return p->key_lines[key_index(p, name)];
}

static bool given_ok(const struct parser *p, const char *name)
{
	size_t i = key_index(p, name);

	return p->key_lines[i] && !p->key_bad[i];
}

static bool bad(const struct parser *p, const char *name)
{
	return p->key_bad[key_index(p, name)];
}

static void check_min_max(struct parser *p, const char *min_name, uint32_t min,
			  const char *max_name, uint32_t max)
{
	unsigned line;

	if (max >= min || bad(p, min_name) || bad(p, max_name))
		return;
	line = given(p, max_name) ? given(p, max_name) : given(p, min_name);
	report(p, line, "%s: %" PRIu32 " is less than %s (%" PRIu32 ")", max_name, max, min_name,
	       min);
}

/* Returns the path both names resolve to (to be freed), or NULL for different devices. */
static char *same_device(const char *a, const char *b)
{
	char *ra = realpath(a, NULL);
	char *rb = realpath(b, NULL);

	if (!ra || !rb || strcmp(ra, rb) != 0) {
		free(ra);
		ra = NULL;
	}
	free(rb);
	return ra;
}

static void close_port(struct parser *p)
{
	static const char *const match_keys[] = {
		"match_vid", "match_pid", "match_serial", "match_description",
	};
	struct gw_config_port *port = p->obj;
	const char *match = NULL;
	unsigned match_line = 0;

	for (size_t i = 0; i < N_ELEMENTS(match_keys) && !match; i++) {
		match_line = given(p, match_keys[i]);
		if (match_line)
			match = match_keys[i];
	}
	if (!given(p, "path") && !match)
		report(p, p->sec_line,
		       "%s needs either path or a USB match (match_vid, match_pid, match_serial, "
		       "match_description)",
		       p->title);
	if (given(p, "path") && match)
		report(p, given(p, "path"),
		       "path: cannot be combined with %s (line %u); use either a path or a "
		       "USB match",
		       match, match_line);
	check_min_max(p, "reopen_min_ms", port->reopen_min_ms, "reopen_max_ms",
		      port->reopen_max_ms);

	if (!port->path)
		return;
	for (size_t i = 0; i + 1 < p->c->n_ports; i++) {
		const struct gw_config_port *other = &p->c->ports[i];

		char *real;

		if (!other->path)
			continue;
		if (strcmp(other->path, port->path) == 0) {
			report(p, given(p, "path"),
			       "duplicate port: path %s already used by [port %s] at line %u",
			       port->path, other->name, other->line);
			break;
		}
		/* /dev/serial/by-id/... and /dev/ttyUSB0 may well be the same device */
		real = same_device(other->path, port->path);
		if (real) {
			report(p, given(p, "path"),
			       "duplicate port: path %s already used by [port %s] at line %u "
			       "(both are %s)",
			       port->path, other->name, other->line, real);
			free(real);
			break;
		}
	}
}

static void default_client_id(struct gw_config_uplink *u)
{
	char host[HOST_NAME_MAX + 1] = "localhost";
	char *id;

	if (gethostname(host, sizeof(host)) < 0 || !host[0])
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	if (asprintf(&id, "sensorgw-%s-%s", host, u->name) < 0)
		oom();
	/* The broker limit we promise is 64 bytes; a long host name is cut, not refused. */
	if (strlen(id) > CLIENT_ID_MAX)
		id[CLIENT_ID_MAX] = '\0';
	u->client_id = id;
}

/* At most one source of a secret; returns the key that was given first, or NULL. */
static const char *one_source(struct parser *p, const char *const *sources, size_t n,
			      const char *list)
{
	const char *first = NULL;

	for (size_t i = 0; i < n; i++) {
		if (!given(p, sources[i]))
			continue;
		if (!first) {
			first = sources[i];
			continue;
		}
		report(p, given(p, sources[i]), "%s: only one of %s may be set (%s at line %u)",
		       sources[i], list, first, given(p, first));
	}
	return first;
}

/* Keys one uplink type has no use for: refused, so a typo'd type never goes unnoticed. */
static const char *const mqtt_only_keys[] = {
	"tls", "cert_file", "key_file", "username", "password", "password_file",
	"password_credential", "client_id", "qos", "clean_session", "topic", "order",
	"deadletter_after",
};
static const char *const aliyun_only_keys[] = {
	"product_key", "region", "instance_id", "auth", "product_secret", "product_secret_file",
	"product_secret_credential", "register_via", "register_url", "sign_method", "max_devices",
};
static const char *const tencent_only_keys[] = {
	"product_id", "sdkappid", "expiry", "register_api",
};
/* The command path: only the cloud uplinks take commands. */
static const char *const command_keys[] = { "command_rate", "command_burst" };
/* What type = tencent has no use for: the MQTT-only keys but tls, and Aliyun's own. */
static const char *const not_tencent_keys[] = {
	"cert_file", "key_file", "username", "password", "password_file", "password_credential",
	"client_id", "qos", "clean_session", "topic", "order", "deadletter_after", "product_key",
	"instance_id", "register_via",
};

static void refuse_keys(struct parser *p, const char *const *keys, size_t n, const char *type)
{
	/* a value refused already has its message */
	for (size_t i = 0; i < n; i++)
		if (given_ok(p, keys[i]))
			report(p, given(p, keys[i]), "%s: not used by type = %s", keys[i], type);
}

static void close_mqtt(struct parser *p)
{
	static const char *const sources[] = { "password", "password_file", "password_credential" };
	struct gw_config_uplink *u = p->obj;
	const char *first;

	refuse_keys(p, aliyun_only_keys, N_ELEMENTS(aliyun_only_keys), "mqtt");
	refuse_keys(p, tencent_only_keys, N_ELEMENTS(tencent_only_keys), "mqtt");
	refuse_keys(p, command_keys, N_ELEMENTS(command_keys), "mqtt");
	if (!given(p, "tls"))
		u->tls = u->ca_file != NULL;
	else if (u->tls && !given(p, "ca_file") && !bad(p, "tls"))
		report(p, given(p, "tls"), "tls: yes requires ca_file");
	if (!given(p, "port"))
		u->port = u->tls ? 8883 : 1883;

	if (given(p, "cert_file") && !given(p, "key_file"))
		report(p, given(p, "cert_file"), "cert_file: needs key_file");
	if (given(p, "key_file") && !given(p, "cert_file"))
		report(p, given(p, "key_file"), "key_file: needs cert_file");
	if (given(p, "cert_file") && given_ok(p, "tls") && !u->tls)
		report(p, given(p, "cert_file"), "cert_file: a client certificate needs tls = yes");

	first = one_source(p, sources, N_ELEMENTS(sources),
			   "password, password_file and password_credential");
	if (first && !given(p, "username"))
		report(p, given(p, first), "%s: needs username", first);

	if (!u->client_id)
		default_client_id(u);
}

/* Without ca_file: the platform's roots installed with sensorgw (conf/ca/aliyun-iot-roots.pem:
 * GlobalSign Root CA R1 and R6, Aliyun IoT Root CA), which cover every port
 * (docs/protocols/aliyun.md §4.4). */
static void default_aliyun_ca(struct parser *p, struct gw_config_uplink *u)
{
	if (access(GW_ALIYUN_CA_FILE, R_OK) < 0) {
		report(p, p->sec_line, "%s needs ca_file: the default %s cannot be read (%s)",
		       p->title, GW_ALIYUN_CA_FILE, strerror(errno));
		return;
	}
	u->ca_file = gw_strdup(GW_ALIYUN_CA_FILE);
}

/*
 * The platform's rules (docs/protocols/aliyun.md §4): TLS only here (plain TCP is closed to new
 * devices), keepalive 30..1200 s, 30 messages per second per device. host and port default to the
 * platform's endpoint, which the driver derives from region or instance_id.
 */
static void close_aliyun(struct parser *p)
{
	static const char *const sources[] = {
		"product_secret", "product_secret_file", "product_secret_credential",
	};
	struct gw_config_uplink *u = p->obj;
	const char *first;
	bool dynamic;

	refuse_keys(p, mqtt_only_keys, N_ELEMENTS(mqtt_only_keys), "aliyun");
	refuse_keys(p, tencent_only_keys, N_ELEMENTS(tencent_only_keys), "aliyun");
	u->tls = true;
	if (!given(p, "product_key") && !bad(p, "product_key"))
		report(p, p->sec_line, "%s needs product_key", p->title);
	if (!given(p, "ca_file"))
		default_aliyun_ca(p, u);
	if (given(p, "region") && given(p, "instance_id"))
		report(p, given(p, "instance_id"),
		       "instance_id: cannot be combined with region (line %u)", given(p, "region"));
	if (!given(p, "host")) {
		free(u->host);
		u->host = NULL;
	}
	if (!given(p, "keepalive"))
		u->keepalive = 300;
	else if (!bad(p, "keepalive") && (u->keepalive < 30 || u->keepalive > 1200))
		report(p, given(p, "keepalive"),
		       "keepalive: %" PRIu32 " is out of range for type = aliyun (30..1200)",
		       u->keepalive);
	if (!given(p, "max_rate"))
		u->max_rate = 30;
	else if (!bad(p, "max_rate") && u->max_rate > GW_CONFIG_ALIYUN_MAX_RATE)
		/* per device, each with a ring of that many send times */
		report(p, given(p, "max_rate"),
		       "max_rate: %" PRIu32 " is out of range for type = aliyun (0..%d, per device)",
		       u->max_rate, GW_CONFIG_ALIYUN_MAX_RATE);

	first = one_source(p, sources, N_ELEMENTS(sources),
			   "product_secret, product_secret_file and product_secret_credential");
	if (bad(p, "auth"))
		return;
	if (u->auth == GW_CLOUD_AUTH_PSK || u->auth == GW_CLOUD_AUTH_CERTIFICATE) {
		report(p, given(p, "auth"), "auth: %s is for type = tencent (aliyun: device-secret, "
		       "register or regnwl)", u->auth == GW_CLOUD_AUTH_PSK ? "psk" : "certificate");
		return;
	}
	dynamic = u->auth == GW_CLOUD_AUTH_REGISTER || u->auth == GW_CLOUD_AUTH_REGNWL;
	if (dynamic && !first)
		report(p, given(p, "auth"),
		       "auth: %s needs product_secret_file or product_secret_credential",
		       u->auth == GW_CLOUD_AUTH_REGNWL ? "regnwl" : "register");
	if (!dynamic && first && given_ok(p, first))
		report(p, given(p, first), "%s: only used with auth = register or regnwl", first);
	/* regnwl exists over MQTT only (docs/protocols/aliyun.md §1): no HTTPS endpoint to
	 * choose */
	if (u->auth != GW_CLOUD_AUTH_REGISTER && given_ok(p, "register_via"))
		report(p, given(p, "register_via"), "register_via: only used with auth = register%s",
		       u->auth == GW_CLOUD_AUTH_REGNWL ? " (regnwl registers over MQTT only)" : "");
	if (u->auth != GW_CLOUD_AUTH_REGISTER && given_ok(p, "register_url"))
		report(p, given(p, "register_url"), "register_url: only used with auth = register%s",
		       u->auth == GW_CLOUD_AUTH_REGNWL ? " (regnwl registers over MQTT only)" : "");
	else if (u->register_via == GW_REGISTER_VIA_MQTT && given_ok(p, "register_url") &&
		 !bad(p, "register_via"))
		report(p, given(p, "register_url"),
		       "register_url: not used with register_via = mqtt (line %u)",
		       given(p, "register_via"));
}

/* Without ca_file: the platform's root installed with sensorgw (conf/ca/tencent-iot-roots.pem:
 * the "Tencent Iothub" root of docs/protocols/tencent.md §1.6, which no system trust store has). */
static void default_tencent_ca(struct parser *p, struct gw_config_uplink *u)
{
	if (access(GW_TENCENT_CA_FILE, R_OK) < 0) {
		report(p, p->sec_line, "%s needs ca_file: the default %s cannot be read (%s)",
		       p->title, GW_TENCENT_CA_FILE, strerror(errno));
		return;
	}
	u->ca_file = gw_strdup(GW_TENCENT_CA_FILE);
}

/* Host and port: the platform's MQTT host for product_id and region (docs/protocols/tencent.md
 * §1.5), 8883 with TLS (docs/protocols/tencent.md §1.4); plain TCP (1883) only when tls = false is
 * written down. */
static void tencent_endpoint(struct parser *p, struct gw_config_uplink *u)
{
	char host[GW_TENCENT_HOST_MAX];

	if (!given(p, "tls"))
		u->tls = true;
	if (!u->tls && given_ok(p, "ca_file"))
		report(p, given(p, "ca_file"), "ca_file: not used with tls = no (line %u)",
		       given(p, "tls"));
	/* docs/protocols/tencent.md §1.4: TLS-PSK authenticates both ends with the device's PSK; no
	 * certificates */
	if (u->tls_psk && given_ok(p, "ca_file"))
		report(p, given(p, "ca_file"), "ca_file: not used with tls = psk (line %u): "
		       "TLS-PSK has no certificates", given(p, "tls"));
	if (u->tls && !u->tls_psk && !given(p, "ca_file"))
		default_tencent_ca(p, u);
	if (!given(p, "port"))
		u->port = u->tls ? GW_TENCENT_PORT_TLS : GW_TENCENT_PORT_TCP;
	else if (u->tls && u->port == GW_TENCENT_PORT_TCP && !bad(p, "port"))
		report(p, given(p, "port"), "port: %d is the platform's plain-TCP port; with TLS it "
		       "is %d (plain TCP needs tls = no, written down)", GW_TENCENT_PORT_TCP,
		       GW_TENCENT_PORT_TLS);
	if (given(p, "host"))
		return;
	free(u->host);
	u->host = NULL;
	if (u->product_id && !bad(p, "region") &&
	    gw_tencent_format_host(u->product_id, u->region, host, sizeof(host)) > 0)
		u->host = gw_strdup(host);
}

/*
 * The platform's rules (docs/protocols/tencent.md §1): keepalive up to 900 s, 30 messages per
 * second per device, one region of docs/protocols/tencent.md §1.5, hmacsha256 or hmacsha1. auth =
 * psk or certificate read the credential store; register fetches it with the ProductSecret.
 */
static void close_tencent(struct parser *p)
{
	static const char *const sources[] = {
		"product_secret", "product_secret_file", "product_secret_credential",
	};
	struct gw_config_uplink *u = p->obj;
	char reason[GW_TENCENT_REASON_MAX] = "";
	const char *first;

	refuse_keys(p, not_tencent_keys, N_ELEMENTS(not_tencent_keys), "tencent");
	if (!given(p, "product_id") && !bad(p, "product_id"))
		report(p, p->sec_line, "%s needs product_id", p->title);
	if (!given(p, "region"))
		u->region = gw_strdup(GW_TENCENT_DEFAULT_REGION);
	else if (!bad(p, "region") && gw_tencent_check_region(u->region) < 0)
		report(p, given(p, "region"), "region: '%s' is not a Tencent region (ap-guangzhou, "
		       "us-east, europe, ap-bangkok)", u->region);
	tencent_endpoint(p, u);
	if (!given(p, "keepalive"))
		u->keepalive = 240;
	else if (!bad(p, "keepalive") && gw_tencent_check_keepalive(u->keepalive, reason) < 0)
		report(p, given(p, "keepalive"),
		       "keepalive: %" PRIu32 " is out of range for type = tencent (5..%d)",
		       u->keepalive, GW_TENCENT_KEEPALIVE_MAX);
	if (!given(p, "max_rate"))
		u->max_rate = 30;
	else if (!bad(p, "max_rate") && (u->max_rate < 1 || u->max_rate > 30))
		report(p, given(p, "max_rate"), "max_rate: %" PRIu32 " is out of range for type = "
		       "tencent (1..30 messages per second per device)", u->max_rate);
	if (!bad(p, "sign_method")) {
		if (u->sign_method == GW_ALIYUN_HMAC_MD5)
			report(p, given(p, "sign_method"), "sign_method: hmacmd5 is not one of "
			       "hmacsha256, hmacsha1 (type = tencent)");
		u->tc_sign_method = u->sign_method == GW_ALIYUN_HMAC_SHA1 ? GW_TENCENT_HMAC_SHA1 :
										GW_TENCENT_HMAC_SHA256;
	}
	if (u->expiry && u->expiry <= (uint64_t)time(NULL) && !bad(p, "expiry"))
		report(p, given(p, "expiry"), "expiry: %" PRIu64 " is in the past (0 = the default, "
		       "2038-01-19)", u->expiry);

	first = one_source(p, sources, N_ELEMENTS(sources),
			   "product_secret, product_secret_file and product_secret_credential");
	if (bad(p, "auth"))
		return;
	if (!given(p, "auth"))
		u->auth = GW_CLOUD_AUTH_PSK;
	if (u->auth != GW_CLOUD_AUTH_PSK && u->auth != GW_CLOUD_AUTH_CERTIFICATE &&
	    u->auth != GW_CLOUD_AUTH_REGISTER) {
		report(p, given(p, "auth"), "auth: %s is for type = aliyun (tencent: psk, "
		       "certificate or register)", u->auth == GW_CLOUD_AUTH_REGNWL ? "regnwl" :
		       "device-secret");
		return;
	}
	if (u->auth == GW_CLOUD_AUTH_CERTIFICATE && !u->tls && !bad(p, "tls"))
		report(p, given(p, "auth"), "auth: certificate needs TLS (tls = no at line %u)",
		       given(p, "tls"));
	if (u->auth == GW_CLOUD_AUTH_CERTIFICATE && u->tls_psk)
		report(p, given(p, "auth"), "auth: certificate needs certificate TLS, not tls = "
		       "psk (line %u), which logs in with a PSK", given(p, "tls"));
	if (u->auth != GW_CLOUD_AUTH_REGISTER) {
		static const char *const reg_keys[] = { "register_api", "register_url" };

		if (first && given_ok(p, first))
			report(p, given(p, first), "%s: only used with auth = register", first);
		for (size_t i = 0; i < N_ELEMENTS(reg_keys); i++)
			if (given_ok(p, reg_keys[i]))
				report(p, given(p, reg_keys[i]), "%s: only used with auth = register",
				       reg_keys[i]);
		return;
	}
	if (!first)
		report(p, given(p, "auth"),
		       "auth: register needs product_secret_file or product_secret_credential");
	else if (u->product_secret && gw_tencent_check_product_secret(u->product_secret,
								      reason) < 0)
		report(p, given(p, first), "%s: %s", first, reason);
	if (u->register_api == GW_TENCENT_DYNREG_LEGACY && u->tc_sign_method !=
	    GW_TENCENT_HMAC_SHA1 && given_ok(p, "sign_method"))
		report(p, given(p, "sign_method"), "sign_method: the legacy registration API signs "
		       "with hmacsha1 only");
}

static void close_uplink(struct parser *p)
{
	struct gw_config_uplink *u = p->obj;

	if (!given(p, "type"))
		report(p, p->sec_line, "%s needs type = mqtt, aliyun or tencent", p->title);
	/* (aliyun refuses tls altogether) */
	if (u->tls_psk && u->type != GW_UPLINK_TENCENT) {
		if (u->type == GW_UPLINK_MQTT && given(p, "type"))
			report(p, given(p, "tls"), "tls: psk (TLS-PSK) is for type = tencent");
		u->tls_psk = false;
		u->tls = false;
	}
	/* an unknown or missing type is judged as mqtt, so its other problems still show */
	if (u->type == GW_UPLINK_ALIYUN)
		close_aliyun(p);
	else if (u->type == GW_UPLINK_TENCENT)
		close_tencent(p);
	else
		close_mqtt(p);
	check_min_max(p, "reconnect_min_ms", u->reconnect_min_ms, "reconnect_max_ms",
		      u->reconnect_max_ms);
}

static void close_map(struct parser *p)
{
	struct gw_config_map *m = p->obj;

	/* the port must exist, but ports may follow: check_file() needs this line later */
	p->map_port_line[m - p->c->maps] = given(p, "port");
	if (given(p, "identifier"))
		return;
	if (valid_identifier(m->field, sizeof(m->identifier)))
		memcpy(m->identifier, m->field, strlen(m->field) + 1);
	else
		report(p, p->sec_line,
		       "%s: '%s' is not a valid identifier, so identifier must be set (" IDENT_HELP
		       ")",
		       p->title, m->field);
}

static const struct section_def sections[] = {
	{ "gateway", SEC_GATEWAY, gateway_keys, N_ELEMENTS(gateway_keys), NULL },
	{ "port", SEC_PORT, port_keys, N_ELEMENTS(port_keys), close_port },
	{ "uplink", SEC_UPLINK, uplink_keys, N_ELEMENTS(uplink_keys), close_uplink },
	{ "map", SEC_MAP, map_keys, N_ELEMENTS(map_keys), close_map },
};

static void close_section(struct parser *p)
{
	if (p->in_section && !p->skip && p->sec->close)
		p->sec->close(p);
	p->in_section = false;
	p->skip = false;
	p->sec = NULL;
	p->obj = NULL;
}

static void *new_section_object(struct parser *p, const char *name)
{
	switch (p->sec->id) {
	case SEC_GATEWAY:
		p->gateway_line = p->line;
		return p->c;
	case SEC_PORT: {
		struct gw_config_port *port;

		for (size_t i = 0; i < p->c->n_ports; i++) {
			if (strcmp(p->c->ports[i].name, name) == 0) {
				report(p, p->line, "duplicate section %s (first at line %u)",
				       p->title, p->c->ports[i].line);
				return NULL;
			}
		}
		if (p->c->n_ports == GW_CONFIG_MAX_PORTS) {
			report(p, p->line, "too many [port] sections (max %d)",
			       GW_CONFIG_MAX_PORTS);
			return NULL;
		}
		port = &p->c->ports[p->c->n_ports++];
		strcpy(port->name, name);
		port->line = p->line;
		port->match_vid = -1;
		port->match_pid = -1;
		return port;
	}
	case SEC_UPLINK: {
		struct gw_config_uplink *u;

		for (size_t i = 0; i < p->c->n_uplinks; i++) {
			if (strcmp(p->c->uplinks[i].name, name) == 0) {
				report(p, p->line, "duplicate section %s (first at line %u)",
				       p->title, p->c->uplinks[i].line);
				return NULL;
			}
		}
		if (p->c->n_uplinks == GW_CONFIG_MAX_UPLINKS) {
			report(p, p->line, "too many [uplink] sections (max %d)",
			       GW_CONFIG_MAX_UPLINKS);
			return NULL;
		}
		u = &p->c->uplinks[p->c->n_uplinks++];
		strcpy(u->name, name);
		u->line = p->line;
		return u;
	}
	case SEC_MAP: {
		struct gw_config_map *m;

		/* The same FIELD may appear once per port: duplicates are judged at the end. */
		if (p->c->n_maps == GW_CONFIG_MAX_MAPS) {
			report(p, p->line, "too many [map] sections (max %d)", GW_CONFIG_MAX_MAPS);
			return NULL;
		}
		m = &p->c->maps[p->c->n_maps++];
		strcpy(m->field, name);
		m->line = p->line;
		return m;
	}
	}
	abort();
}

/* text is what stands between '[' and ']'. */
static void open_section(struct parser *p, const char *text, size_t len)
{
	struct suggestion s;
	char buf[128];
	char *kind;
	char *name;
	char *end;

	close_section(p);
	p->in_section = true;
	p->skip = true;
	p->sec_line = p->line;
	memset(p->key_lines, 0, sizeof(p->key_lines));
	memset(p->key_bad, 0, sizeof(p->key_bad));

	if (len >= sizeof(buf)) {
		report(p, p->line, "section header too long");
		return;
	}
	memcpy(buf, text, len);
	buf[len] = '\0';
	kind = buf;
	while (isspace((unsigned char)*kind))
		kind++;
	end = kind + strlen(kind);
	while (end > kind && isspace((unsigned char)end[-1]))
		*--end = '\0';
	name = kind + strcspn(kind, " \t");
	if (*name) {
		*name++ = '\0';
		while (isspace((unsigned char)*name))
			name++;
	}

	for (size_t i = 0; i < N_ELEMENTS(sections); i++)
		if (strcmp(sections[i].kind, kind) == 0)
			p->sec = &sections[i];
	if (!p->sec) {
		s = (struct suggestion){ .word = kind };
		for (size_t i = 0; i < N_ELEMENTS(sections); i++)
			suggest_consider(&s, sections[i].kind);
		if (suggest_result(&s))
			report(p, p->line,
			       "unknown section [%s%s%s]: expected [gateway], [port NAME], "
			       "[uplink NAME] or [map FIELD] (did you mean '%s'?)",
			       kind, *name ? " " : "", name, suggest_result(&s));
		else
			report(p, p->line,
			       "unknown section [%s%s%s]: expected [gateway], [port NAME], "
			       "[uplink NAME] or [map FIELD]",
			       kind, *name ? " " : "", name);
		return;
	}
	if (p->sec->id == SEC_GATEWAY) {
		if (*name) {
			report(p, p->line, "[gateway %s]: [gateway] takes no name", name);
			return;
		}
		snprintf(p->title, sizeof(p->title), "[gateway]");
		if (p->gateway_line) {
			report(p, p->line, "duplicate section [gateway] (first at line %u)",
			       p->gateway_line);
			return;
		}
	} else {
		const char *what = p->sec->id == SEC_MAP ? "FIELD" : "NAME";

		if (!*name) {
			report(p, p->line, "[%s] needs a name: [%s %s]", kind, kind, what);
			return;
		}
		if (!valid_name(name)) {
			report(p, p->line, "invalid name '%s' in [%s %s] (" NAME_HELP ")", name,
			       kind, name);
			return;
		}
		snprintf(p->title, sizeof(p->title), "[%.8s %.31s]", kind, name);
	}
	p->obj = new_section_object(p, name);
	if (!p->obj)
		return;
	if (p->sec->id != SEC_GATEWAY)
		apply_defaults(p->sec->keys, p->sec->n_keys, p->obj);
	p->skip = false;
}

/* Reader: the only place that knows line numbers */

static void check_key_handled(struct parser *p)
{
	if (p->key_pending && !p->key_handled)
		report(p, p->line,
		       "syntax error: expected 'key = value', '[section]' or a comment");
	p->key_pending = false;
}

/* Ends the current section and ignores the keys up to the next header. */
static void skip_section(struct parser *p)
{
	close_section(p);
	p->in_section = true;
	p->skip = true;
}

static char *blank_line(char *str)
{
	str[0] = '\n';
	str[1] = '\0';
	return str;
}

/*
 * Hands inih one whole line per call, so its line count and ours agree: the handler for a key
 * runs before the next call. Lines are passed left-trimmed, so inih never sees an indented
 * line and never glues it to the previous value as a continuation.
 */
static char *read_line(char *str, int num, void *stream)
{
	struct parser *p = stream;
	bool has_nul;
	size_t len;
	ssize_t n;
	char *s;

	check_key_handled(p);
	if (num < 3)
		return NULL;
	errno = 0;
	n = getline(&p->buf, &p->buf_size, p->f);
	if (n < 0) {
		/* Not only a read error: getline() also fails without setting the stream's error
		 * flag when it cannot grow its buffer (ENOMEM). Anything but the end of the file
		 * must not read as one, or the rest of the file would be silently dropped. */
		if (ferror(p->f) || !feof(p->f))
			p->read_errno = errno ? errno : EIO;
		return NULL;
	}
	p->line++;
	s = p->buf;
	len = (size_t)n;
	has_nul = memchr(s, '\0', len) != NULL;
	if (p->line == 1 && len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
		s += 3;
		len -= 3;
	}
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
	while (len > 0 && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	/* Room for the newline and the NUL; longer lines would be split by inih. */
	if (has_nul || len + 2 > (size_t)num) {
		if (has_nul)
			report(p, p->line, "line contains a NUL byte");
		else
			report(p, p->line, "line too long (max %d characters)", num - 2);
		/* a lost section header must not let its keys land in the previous section */
		if (*s == '[')
			skip_section(p);
		return blank_line(str);
	}

	if (*s == '[') {
		const char *end = strchr(s, ']');

		if (end) {
			open_section(p, s + 1, (size_t)(end - s - 1));
		} else {
			report(p, p->line, "syntax error: '[' without ']'");
			skip_section(p);
		}
	} else if (*s && *s != ';' && *s != '#') {
		p->key_pending = true;
		p->key_handled = false;
	}
	memcpy(str, s, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}

/*
 * inih's section argument is not used: the reader already knows the section, including empty
 * ones and refused ones, and the line of its header.
 */
static int handle_key(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	const struct key_def *k = NULL;
	struct suggestion s = { .word = name };
	size_t i;

	p->key_handled = true;
	if (!name[0]) {
		report(p, p->line, "syntax error: missing key name before '='");
		return 1;
	}
	if (!p->in_section) {
		report(p, p->line, "key '%s' outside of any section", name);
		return 1;
	}
	if (p->skip)
		return 1;
	for (i = 0; i < p->sec->n_keys; i++) {
		if (strcmp(p->sec->keys[i].name, name) == 0) {
			k = &p->sec->keys[i];
			break;
		}
		suggest_consider(&s, p->sec->keys[i].name);
	}
	if (!k) {
		if (suggest_result(&s))
			report(p, p->line, "unknown key '%s' in %s (did you mean '%s'?)", name,
			       p->title, suggest_result(&s));
		else
			report(p, p->line, "unknown key '%s' in %s", name, p->title);
		return 1;
	}
	if (p->key_lines[i]) {
		report(p, p->line, "duplicate key '%s' in %s (first at line %u)", name, p->title,
		       p->key_lines[i]);
		return 1;
	}
	p->key_lines[i] = p->line;
	if (!value[0] && !(k->flags & KF_EMPTY_OK)) {
		if (k->set == set_uint)
			report(p, p->line, "%s: empty value (expected %lu..%lu)", name, k->min,
			       k->max);
		else if (k->set == set_baud)
			report(p, p->line, "%s: empty value (" BAUD_HELP ")", name);
		else
			report(p, p->line, "%s: empty value", name);
		p->key_bad[i] = true;
		return 1;
	}
	if (!k->set(p, k, p->obj, value))
		p->key_bad[i] = true;
	return 1;
}

/* Whole-file checks */

static bool port_exists(const struct gw_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_ports; i++)
		if (strcmp(c->ports[i].name, name) == 0)
			return true;
	return false;
}

static void check_file(struct parser *p)
{
	struct gw_config *c = p->c;

	for (size_t i = 0; i < c->n_maps; i++) {
		const struct gw_config_map *m = &c->maps[i];

		if (m->port[0] && !port_exists(c, m->port))
			report(p, p->map_port_line[i], "port: no [port %s] section (in [map %s])",
			       m->port, m->field);
		for (size_t j = 0; j < i; j++) {
			const struct gw_config_map *o = &c->maps[j];

			if (strcmp(o->field, m->field) != 0 || strcmp(o->port, m->port) != 0)
				continue;
			if (m->port[0])
				report(p, m->line,
				       "duplicate map: [map %s] for port %s already defined at "
				       "line %u",
				       m->field, m->port, o->line);
			else
				report(p, m->line,
				       "duplicate map: [map %s] for every port already defined at "
				       "line %u",
				       m->field, o->line);
			break;
		}
	}
	/* No port is valid: the packaged example opens none until the user configures one. */
	if (c->n_uplinks == 0)
		report(p, 0, "no [uplink NAME] section: at least one uplink is required");
}

int gw_config_load(const char *path, FILE *diag, struct gw_config **ret)
{
	struct parser p = { .path = path };
	struct stat st = { 0 }; /* filled by open_config() whenever it returns >= 0 */
	int r;

	r = open_config(path, diag, &p.f, &st);
	if (r < 0)
		return r;
	p.mode = st.st_mode;
	p.c = gw_new0(struct gw_config, 1);
	p.c->path = gw_strdup(path);
	apply_defaults(gateway_keys, N_ELEMENTS(gateway_keys), p.c);

	r = ini_parse_stream(read_line, &p, handle_key, &p);
	check_key_handled(&p);
	close_section(&p);
	if (p.buf) {
		/* the buffer held the last line, which may have been a password */
		explicit_bzero(p.buf, p.buf_size);
		free(p.buf);
	}
	fclose(p.f);
	if (r == -2) {
		r = -ENOMEM;
		goto fail;
	}
	if (p.read_errno) {
		report(&p, 0, "cannot read: %s", strerror(p.read_errno));
		r = -p.read_errno;
		goto fail;
	}
	if (r > 0 && p.n_diags == 0)
		report(&p, (unsigned)r, "syntax error");
	check_file(&p);
	if (p.n_diags > 0) {
		r = -EINVAL;
		goto fail;
	}
	flush_diags(&p, diag);
	*ret = p.c;
	return 0;
fail:
	flush_diags(&p, diag);
	gw_config_free(p.c);
	return r;
}

struct gw_config *gw_config_ref(struct gw_config *c)
{
	if (c)
		c->extra_refs++;
	return c;
}

/* Field by field, the section's line (where it is written) aside. */
#define SAME(f) (a->f == b->f)
#define SAME_STR(f) gw_streq_null(a->f, b->f)

bool gw_config_port_equal(const struct gw_config_port *a, const struct gw_config_port *b)
{
	return strcmp(a->name, b->name) == 0 && SAME_STR(path) && SAME(match_vid) &&
	       SAME(match_pid) && SAME_STR(match_serial) && SAME_STR(match_description) &&
	       SAME(baud) && SAME(data_bits) && SAME(parity) && SAME(stop_bits) && SAME(flow) &&
	       SAME(framing) && SAME(reopen_min_ms) && SAME(reopen_max_ms);
}

bool gw_config_uplink_equal(const struct gw_config_uplink *a, const struct gw_config_uplink *b)
{
	return strcmp(a->name, b->name) == 0 && SAME(type) && SAME_STR(host) && SAME(port) &&
	       SAME(tls) && SAME(tls_psk) && SAME_STR(ca_file) && SAME_STR(cert_file) &&
	       SAME_STR(key_file) && SAME_STR(username) && SAME_STR(password) &&
	       SAME_STR(client_id) && SAME(qos) && SAME(keepalive) && SAME(clean_session) &&
	       SAME_STR(topic) && SAME(reconnect_min_ms) && SAME(reconnect_max_ms) &&
	       SAME(max_inflight) && SAME(max_rate) && SAME(order) && SAME(deadletter_after) &&
	       SAME_STR(product_key) && SAME_STR(region) && SAME_STR(instance_id) &&
	       SAME(auth) && SAME_STR(product_secret) && SAME(register_via) &&
	       SAME_STR(register_url) && SAME(sign_method) && SAME(max_devices) &&
	       SAME(command_rate) && SAME(command_burst) && SAME_STR(product_id) &&
	       SAME(tc_sign_method) && SAME(register_api) && SAME(sdkappid) && SAME(expiry) &&
	       SAME(expiry_auto);
}

#undef SAME
#undef SAME_STR

struct gw_config *gw_config_free(struct gw_config *c)
{
	if (!c)
		return NULL;
	if (c->extra_refs) {
		c->extra_refs--;
		return NULL;
	}
	free(c->path);
	free(c->state_dir);
	free(c->control_socket);
	free(c->device_name);
	for (size_t i = 0; i < c->n_ports; i++) {
		free(c->ports[i].path);
		free(c->ports[i].match_serial);
		free(c->ports[i].match_description);
	}
	for (size_t i = 0; i < c->n_uplinks; i++) {
		struct gw_config_uplink *u = &c->uplinks[i];

		free(u->host);
		free(u->ca_file);
		free(u->cert_file);
		free(u->key_file);
		free(u->username);
		u->password = gw_secret_free(u->password);
		free(u->client_id);
		free(u->topic);
		free(u->product_key);
		free(u->region);
		free(u->instance_id);
		u->product_secret = gw_secret_free(u->product_secret);
		free(u->register_url);
		free(u->product_id);
	}
	free(c);
	return NULL;
}

const char *gw_parity_to_string(enum gw_parity p)
{
	switch (p) {
	case GW_PARITY_NONE:
		return "none";
	case GW_PARITY_ODD:
		return "odd";
	case GW_PARITY_EVEN:
		return "even";
	}
	return "invalid";
}

const char *gw_flow_to_string(enum gw_flow f)
{
	switch (f) {
	case GW_FLOW_NONE:
		return "none";
	case GW_FLOW_RTSCTS:
		return "rtscts";
	case GW_FLOW_XONXOFF:
		return "xonxoff";
	}
	return "invalid";
}

const char *gw_framing_to_string(enum gw_framing f)
{
	switch (f) {
	case GW_FRAMING_TEXT:
		return "text";
	case GW_FRAMING_BINARY:
		return "binary";
	}
	return "invalid";
}

const char *gw_uplink_type_to_string(enum gw_uplink_type t)
{
	for (const struct word *w = uplink_type_words; w->word; w++)
		if (w->value == (int)t)
			return w->word;
	return "invalid";
}
