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

#include "config-private.h"
#include "gw-build.h"
#include "gw/config.h"
#include "gw/fileio.h"
#include "gw/node.h"
#include "gw/util.h"

#define MAX_SECTION_KEYS 48
#define DEFAULT_STATE_DIR "/var/lib/sensorgw"
#define SECRET_MAX 4096 /* bytes in a password file or credential */
#define STRING_MAX GW_CONFIG_STRING_MAX
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
_Static_assert(sizeof(enum gw_sign_method) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum gw_register_api) == sizeof(int), "enums are stored as int");

enum section_kind {
	SEC_GATEWAY,
	SEC_PORT,
	SEC_UPLINK,
	SEC_MAP,
};

struct section_def {
	const char *kind;
	enum section_kind id;
	const struct gw_config_key *keys;
	size_t n_keys;
	void (*close)(struct gw_config_parser *p);
};

struct diag_entry {
	unsigned line;
	unsigned seq;
	char *text;
};

struct pending_key {
	char *name;
	char *value; /* may be a secret: wiped */
	unsigned line;
};

struct gw_config_parser {
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
	/* the keys the section takes: its table's, or an uplink's common and type keys */
	const struct gw_config_key *keys[MAX_SECTION_KEYS];
	size_t n_keys;
	unsigned key_lines[MAX_SECTION_KEYS]; /* 0: not given */
	bool key_bad[MAX_SECTION_KEYS];       /* given, but refused */
	/* an [uplink]'s lines, kept until its type is known */
	struct pending_key *pending;
	size_t n_pending;
	size_t pending_alloc;

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

void gw_config_report(struct gw_config_parser *p, unsigned line, const char *fmt, ...)
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

static void flush_diags(struct gw_config_parser *p, FILE *diag)
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

static void *field_at(void *obj, const struct gw_config_key *k)
{
	return (char *)obj + k->offset;
}

static void store_uint(void *dst, size_t size, uint64_t v)
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

static void store_string(void *obj, const struct gw_config_key *k, const char *v)
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
static bool parse_u64(const char *v, uint64_t *ret)
{
	unsigned long long x;
	char *end;

	if (!isdigit((unsigned char)v[0]))
		return false;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (*end)
		return false;
	*ret = errno == ERANGE ? UINT64_MAX : (uint64_t)x;
	return true;
}

static bool is_negative_integer(const char *v)
{
	uint64_t ignored;

	return v[0] == '-' && parse_u64(v + 1, &ignored);
}

static void join_words(const struct gw_config_word *w, char *buf, size_t size)
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

bool gw_config_set_string(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			  const char *v)
{
	size_t n = strlen(v);

	if (k->max && n > k->max) {
		gw_config_report(p, p->line, "%s: too long (%zu bytes, max %" PRIu64 ")", k->name,
				 n, k->max);
		return false;
	}
	store_string(obj, k, v);
	return true;
}

static bool set_path(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
		     const char *v)
{
	if ((k->flags & GW_KF_ABSOLUTE) && v[0] != '/') {
		gw_config_report(p, p->line, "%s: '%s' is not an absolute path", k->name, v);
		return false;
	}
	store_string(obj, k, v);
	return true;
}

/* A Unix socket's path must fit sockaddr_un.sun_path with its NUL. */
static bool set_socket_path(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			    const char *v)
{
	if (strlen(v) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
		gw_config_report(p, p->line,
				 "%s: '%s' is longer than a Unix socket path may be (%zu bytes)",
				 k->name, v, sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1);
		return false;
	}
	return set_path(p, k, obj, v);
}

/* node_exporter's textfile collector reads only *.prom files of its directory. */
static bool set_metrics_file(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			     const char *v)
{
	size_t n = strlen(v);
	const char *base = strrchr(v, '/');

	if (v[0] == '/' && (n < 5 || strcmp(v + n - 5, ".prom") != 0 || !base || base[1] == '.')) {
		gw_config_report(p, p->line,
				 "%s: '%s' must be a file name ending in .prom, not starting with "
				 "'.' (node_exporter's textfile collector reads only those)",
				 k->name, v);
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
static bool file_safe(struct gw_config_parser *p, const struct gw_config_key *k, const char *path,
		      const struct stat *st, bool secret)
{
	char buf[160];
	const char *why = file_problem(st, service_uid(p->c->state_dir), secret, buf, sizeof(buf));

	if (!why)
		return true;
	gw_config_report(p, p->line, "%s: %s %s", k->name, path, why);
	return false;
}

/*
 * Opens the configuration itself under the same rule (it names the secrets and the brokers,
 * so it must not be writable by others) without blocking on a FIFO. The inline-secret rule
 * (gw_config_set_secret) comes on top. 0 or -errno after writing "PATH:0: ..." to diag.
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
static int open_regular(struct gw_config_parser *p, const struct gw_config_key *k, const char *path,
			struct stat *st)
{
	int fd = gw_file_open_read(AT_FDCWD, path, false);

	if (fd < 0) {
		gw_config_report(p, p->line, "%s: cannot read %s: %s", k->name, path,
				 strerror(-fd));
		return -1;
	}
	if (fstat(fd, st) < 0) {
		gw_config_report(p, p->line, "%s: cannot read %s: %s", k->name, path,
				 strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		gw_config_report(p, p->line, "%s: %s is not a regular file", k->name, path);
		close(fd);
		return -1;
	}
	return fd;
}

bool gw_config_set_readable_file(struct gw_config_parser *p, const struct gw_config_key *k,
				 void *obj, const char *v)
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
bool gw_config_set_private_file(struct gw_config_parser *p, const struct gw_config_key *k,
				void *obj, const char *v)
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

bool gw_config_set_template(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			    const char *v)
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
		gw_config_report(p, p->line, "%s: unknown placeholder '{%s}' (allowed: %s)",
				 k->name, ctx.bad, allowed);
		return false;
	}
	if (r < 0) {
		gw_config_report(p, p->line, "%s: '{' without a matching '}'", k->name);
		return false;
	}
	if ((k->flags & GW_KF_TOPIC_LEVEL) && strpbrk(v, "/+#")) {
		gw_config_report(p, p->line,
				 "%s: must not contain '/', '+' or '#' (it is one topic level)",
				 k->name);
		return false;
	}
	if ((k->flags & GW_KF_TOPIC) && strpbrk(v, "+#")) {
		gw_config_report(p, p->line, "%s: must not contain the MQTT wildcards '+' or '#'",
				 k->name);
		return false;
	}
	store_string(obj, k, v);
	return true;
}

bool gw_config_set_uint(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			const char *v)
{
	uint64_t x;

	if (is_negative_integer(v)) {
		gw_config_report(p, p->line, "%s: %s is out of range (%" PRIu64 "..%" PRIu64 ")",
				 k->name, v, k->min, k->max);
		return false;
	}
	if (!parse_u64(v, &x)) {
		gw_config_report(p, p->line,
				 "%s: '%s' is not an integer (expected %" PRIu64 "..%" PRIu64 ")",
				 k->name, v, k->min, k->max);
		return false;
	}
	if (x < k->min || x > k->max) {
		gw_config_report(p, p->line, "%s: %s is out of range (%" PRIu64 "..%" PRIu64 ")",
				 k->name, v, k->min, k->max);
		return false;
	}
	store_uint(field_at(obj, k), k->size, x);
	return true;
}

/* A byte count: an integer with an optional K, M or G suffix (powers of 1024). 0 is allowed
 * where min is 0 (meaning "no limit"). */
static bool set_size(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
		     const char *v)
{
	char num[32];
	size_t n = strlen(v);
	uint64_t mult = 1, x;

	if (n > 0 && n < sizeof(num)) {
		char last = v[n - 1];

		if (last == 'K' || last == 'k')
			mult = 1024;
		else if (last == 'M' || last == 'm')
			mult = 1024 * 1024;
		else if (last == 'G' || last == 'g')
			mult = 1024 * 1024 * 1024;
		memcpy(num, v, n + 1);
		if (mult != 1)
			num[n - 1] = '\0';
	}
	if (n == 0 || n >= sizeof(num) || is_negative_integer(num) || !parse_u64(num, &x) ||
	    (x != 0 && mult > UINT64_MAX / x)) {
		gw_config_report(p, p->line,
				 "%s: '%s' is not a size (a number of bytes, optionally with K, M "
				 "or G, e.g. 64M)",
				 k->name, v);
		return false;
	}
	x *= mult;
	if ((x != 0 || k->min != 0) && (x < k->min || x > k->max)) {
		gw_config_report(p, p->line,
				 "%s: %s is out of range (%" PRIu64 "..%" PRIu64 " bytes%s)",
				 k->name, v, k->min, k->max, k->min == 0 ? ", 0 = no limit" : "");
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

static bool set_baud(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
		     const char *v)
{
	uint64_t x;

	if (!parse_u64(v, &x)) {
		gw_config_report(p, p->line, "%s: '%s' is not an integer (" BAUD_HELP ")", k->name,
				 v);
		return false;
	}
	for (size_t i = 0; i < sizeof(baud_rates) / sizeof(baud_rates[0]); i++) {
		if (baud_rates[i] == x) {
			store_uint(field_at(obj, k), k->size, x);
			return true;
		}
	}
	gw_config_report(p, p->line, "%s: %s is not a supported rate (" BAUD_HELP ")", k->name, v);
	return false;
}

static bool set_hex16(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
		      const char *v)
{
	int x;

	if (strlen(v) != 4 || !isxdigit((unsigned char)v[0]) || !isxdigit((unsigned char)v[1]) ||
	    !isxdigit((unsigned char)v[2]) || !isxdigit((unsigned char)v[3])) {
		gw_config_report(p, p->line, "%s: '%s' is not 4 hex digits (e.g. 0483)", k->name,
				 v);
		return false;
	}
	x = (int)strtol(v, NULL, 16);
	memcpy(field_at(obj, k), &x, sizeof(x));
	return true;
}

bool gw_config_set_enum(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			const char *v)
{
	struct suggestion s = { .word = v };
	char list[128];
	const char *hint;

	for (const struct gw_config_word *w = k->words; w->word; w++) {
		if (strcmp(w->word, v) == 0) {
			memcpy(field_at(obj, k), &w->value, sizeof(w->value));
			return true;
		}
		suggest_consider(&s, w->word);
	}
	join_words(k->words, list, sizeof(list));
	hint = suggest_result(&s);
	if (hint)
		gw_config_report(p, p->line, "%s: '%s' is not one of %s (did you mean '%s'?)",
				 k->name, v, list, hint);
	else
		gw_config_report(p, p->line, "%s: '%s' is not one of %s", k->name, v, list);
	return false;
}

static const struct gw_config_word bool_words[] = {
	{ "yes", 1 }, { "no", 0 }, { "true", 1 }, { "false", 0 }, { "on", 1 },
	{ "off", 0 }, { "1", 1 },  { "0", 0 },    { NULL, 0 },
};

bool gw_config_set_bool(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			const char *v)
{
	char list[128];

	for (const struct gw_config_word *w = bool_words; w->word; w++) {
		if (strcmp(w->word, v) == 0) {
			bool b = w->value;

			memcpy(field_at(obj, k), &b, sizeof(b));
			return true;
		}
	}
	join_words(bool_words, list, sizeof(list));
	gw_config_report(p, p->line, "%s: '%s' is not a boolean (%s)", k->name, v, list);
	return false;
}

/* tls: a boolean, or psk (TLS-PSK; only type = tencent takes it: the mqtt type refuses it) */
bool gw_config_set_tls(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
		       const char *v)
{
	struct gw_config_uplink *u = obj;

	u->tls_psk = strcmp(v, "psk") == 0;
	if (u->tls_psk) {
		u->tls = true;
		return true;
	}
	return gw_config_set_bool(p, k, obj, v);
}

static bool set_double(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
		       const char *v)
{
	char *end;
	double x;

	errno = 0;
	x = strtod(v, &end);
	if (end == v || *end) {
		gw_config_report(p, p->line, "%s: '%s' is not a number", k->name, v);
		return false;
	}
	if (!isfinite(x)) {
		gw_config_report(p, p->line, "%s: '%s' is not a finite number", k->name, v);
		return false;
	}
	if ((k->flags & GW_KF_NONZERO) && x == 0) {
		gw_config_report(p, p->line, "%s: must not be 0", k->name);
		return false;
	}
	memcpy(field_at(obj, k), &x, sizeof(x));
	return true;
}

static bool set_identifier(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			   const char *v)
{
	if (!valid_identifier(v, k->size)) {
		gw_config_report(p, p->line, "%s: '%s' is not valid (" IDENT_HELP ")", k->name, v);
		return false;
	}
	memcpy(field_at(obj, k), v, strlen(v) + 1);
	return true;
}

/* Home Assistant's unit_of_measurement: printable, no quote or backslash (it goes into JSON
 * as it is), at most the field's size. */
static bool set_unit(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
		     const char *v)
{
	size_t n = strlen(v);

	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f || v[i] == '"' || v[i] == '\\') {
			gw_config_report(p, p->line,
					 "%s: '%s' holds a control character, quote or "
					 "backslash",
					 k->name, v);
			return false;
		}
	}
	if (n >= k->size) {
		gw_config_report(p, p->line, "%s: too long (%zu bytes, max %zu)", k->name, n,
				 k->size - 1);
		return false;
	}
	memcpy(field_at(obj, k), v, n + 1);
	return true;
}

/* Home Assistant's device_class: a lower-case word such as temperature or carbon_monoxide. */
static bool set_device_class(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			     const char *v)
{
	size_t n = strlen(v);

	if (n >= k->size || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_") != n) {
		gw_config_report(p, p->line,
				 "%s: '%s' is not a device class (1..%zu of a-z 0-9 _, e.g. "
				 "temperature, humidity, carbon_monoxide)",
				 k->name, v, k->size - 1);
		return false;
	}
	memcpy(field_at(obj, k), v, n + 1);
	return true;
}

static bool set_name_ref(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			 const char *v)
{
	if (v[0] && !valid_name(v)) {
		gw_config_report(p, p->line, "%s: '%s' is not a valid port name (" NAME_HELP ")",
				 k->name, v);
		return false;
	}
	memcpy(field_at(obj, k), v, strlen(v) + 1);
	return true;
}

/* The secret keys share setters: the field they fill is the key's own (password or
 * product_secret), and the messages name the sibling keys after the key's base name. */
static void store_secret(void *obj, const struct gw_config_key *k, char *secret)
{
	char **dst = field_at(obj, k);

	*dst = gw_secret_free(*dst);
	*dst = secret;
}

bool gw_config_set_secret(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			  const char *v)
{
	if (p->mode & 077) {
		gw_config_report(p, p->line,
				 "%s: %s holds an inline %s but is readable by group or others "
				 "(mode %04o); use %s_file or %s_credential, or chmod 600 %s",
				 k->name, p->path, k->name, (unsigned)(p->mode & 07777), k->name,
				 k->name, p->path);
		return false;
	}
	store_secret(obj, k, gw_strdup(v));
	return true;
}

/* Reads a secret; one trailing newline is not part of it (echo adds one). */
static bool read_secret(struct gw_config_parser *p, const struct gw_config_key *k, const char *path,
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
		gw_config_report(p, p->line, "%s: cannot read %s: %s", k->name, path, strerror(-r));
		goto out;
	}
	if (n > SECRET_MAX) {
		gw_config_report(p, p->line, "%s: %s is too large (max %d bytes)", k->name, path,
				 SECRET_MAX);
		goto out;
	}
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n == 0) {
		gw_config_report(p, p->line, "%s: %s is empty", k->name, path);
		goto out;
	}
	if (memchr(buf, '\0', n)) {
		gw_config_report(p, p->line, "%s: %s contains a NUL byte", k->name, path);
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

bool gw_config_set_secret_file(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			       const char *v)
{
	char *secret = NULL;

	if (!read_secret(p, k, v, true, &secret))
		return false;
	store_secret(obj, k, secret);
	return true;
}

bool gw_config_set_secret_credential(struct gw_config_parser *p, const struct gw_config_key *k,
				     void *obj, const char *v)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	/* "password_credential" -> "password", for "or use password_file" */
	int base = (int)(strlen(k->name) - strlen("_credential"));
	char *secret = NULL;
	char *path;
	bool ok;

	if (strchr(v, '/') || strcmp(v, ".") == 0 || strcmp(v, "..") == 0 || strlen(v) > 255) {
		gw_config_report(p, p->line, "%s: '%s' is not a valid credential name", k->name, v);
		return false;
	}
	if (!dir || !dir[0]) {
		gw_config_report(p, p->line,
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

/* The clouds' ids (ProductKey, region, instance id) are DNS labels of the platforms' hosts. */
bool gw_config_set_label(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			 const char *v)
{
	size_t n = strlen(v);

	for (size_t i = 0; i < n; i++) {
		if (!isalnum((unsigned char)v[i]) && v[i] != '-') {
			gw_config_report(p, p->line,
					 "%s: '%s' is not valid (1..%" PRIu64 " of A-Z a-z 0-9 -)",
					 k->name, v, k->max);
			return false;
		}
	}
	return gw_config_set_string(p, k, obj, v);
}

/* Tables */

static const struct gw_config_word log_level_words[] = {
	{ "error", LOG_ERR }, { "warning", LOG_WARNING }, { "notice", LOG_NOTICE },
	{ "info", LOG_INFO }, { "debug", LOG_DEBUG },     { NULL, 0 },
};
static const char *const device_placeholders[] = { "uid", "port", "addr", NULL };

static const struct gw_config_key gateway_keys[] = {
	GW_CONFIG_KEY("state_dir", set_path, struct gw_config, state_dir, DEFAULT_STATE_DIR, 0, 0,
		      GW_KF_ABSOLUTE),
	GW_CONFIG_KEY_TEMPLATE("device_name", struct gw_config, device_name, "stm32-{uid}",
			       device_placeholders, GW_KF_TOPIC_LEVEL),
	GW_CONFIG_KEY_ENUM("log_level", struct gw_config, log_level, "info", log_level_words),
	GW_CONFIG_KEY("spool_max_bytes", set_size, struct gw_config, spool_max_bytes, "64M", 0,
		      UINT64_C(1) << 40, 0),
	GW_CONFIG_KEY("min_free_bytes", set_size, struct gw_config, min_free_bytes, "16M", 0,
		      UINT64_C(1) << 40, 0),
	GW_CONFIG_KEY("spool_segment_bytes", set_size, struct gw_config, spool_segment_bytes, "1M",
		      4096, UINT64_C(64) << 20, 0),
	GW_CONFIG_KEY("sync_records", gw_config_set_uint, struct gw_config, sync_records, "100", 1,
		      100000, 0),
	GW_CONFIG_KEY("sync_ms", gw_config_set_uint, struct gw_config, sync_ms, "200", 1, 60000, 0),
	GW_CONFIG_KEY("batch_ms", gw_config_set_uint, struct gw_config, batch_ms, "4", 0, 50, 0),
	GW_CONFIG_KEY("control_socket", set_socket_path, struct gw_config, control_socket,
		      GW_CONFIG_DEFAULT_CONTROL_SOCKET, 0, 0, GW_KF_ABSOLUTE),
	/* node.h says why GW_NODES_MAX is the most */
	GW_CONFIG_KEY("max_nodes", gw_config_set_uint, struct gw_config, max_nodes, "256", 1,
		      GW_NODES_MAX, 0),
	GW_CONFIG_KEY("metrics_file", set_metrics_file, struct gw_config, metrics_file, NULL, 0, 0,
		      GW_KF_ABSOLUTE),
	GW_CONFIG_KEY("metrics_interval_s", gw_config_set_uint, struct gw_config,
		      metrics_interval_s, "15", 1, 3600, 0),
};

static const struct gw_config_word parity_words[] = {
	{ "none", GW_PARITY_NONE },
	{ "odd", GW_PARITY_ODD },
	{ "even", GW_PARITY_EVEN },
	{ NULL, 0 },
};
static const struct gw_config_word flow_words[] = {
	{ "none", GW_FLOW_NONE },
	{ "rtscts", GW_FLOW_RTSCTS },
	{ "xonxoff", GW_FLOW_XONXOFF },
	{ NULL, 0 },
};
static const struct gw_config_word framing_words[] = {
	{ "text", GW_FRAMING_TEXT },
	{ "binary", GW_FRAMING_BINARY },
	{ NULL, 0 },
};

#define PORT_T struct gw_config_port
static const struct gw_config_key port_keys[] = {
	GW_CONFIG_KEY("path", set_path, PORT_T, path, NULL, 0, 0, 0),
	GW_CONFIG_KEY("match_vid", set_hex16, PORT_T, match_vid, NULL, 0, 0, 0),
	GW_CONFIG_KEY("match_pid", set_hex16, PORT_T, match_pid, NULL, 0, 0, 0),
	GW_CONFIG_KEY("match_serial", gw_config_set_string, PORT_T, match_serial, NULL, 0,
		      STRING_MAX, 0),
	GW_CONFIG_KEY("match_description", gw_config_set_string, PORT_T, match_description, NULL, 0,
		      STRING_MAX, 0),
	GW_CONFIG_KEY("baud", set_baud, PORT_T, baud, "115200", 0, 0, 0),
	GW_CONFIG_KEY("data_bits", gw_config_set_uint, PORT_T, data_bits, "8", 5, 8, 0),
	GW_CONFIG_KEY_ENUM("parity", PORT_T, parity, "none", parity_words),
	GW_CONFIG_KEY("stop_bits", gw_config_set_uint, PORT_T, stop_bits, "1", 1, 2, 0),
	GW_CONFIG_KEY_ENUM("flow_control", PORT_T, flow, "none", flow_words),
	GW_CONFIG_KEY_ENUM("framing", PORT_T, framing, "text", framing_words),
	GW_CONFIG_KEY("reopen_min_ms", gw_config_set_uint, PORT_T, reopen_min_ms, "500", 10, 600000,
		      0),
	GW_CONFIG_KEY("reopen_max_ms", gw_config_set_uint, PORT_T, reopen_max_ms, "30000", 10,
		      3600000, 0),
};

static const struct gw_config_word uplink_type_words[] = {
	{ "mqtt", GW_UPLINK_MQTT },
	{ "aliyun", GW_UPLINK_ALIYUN },
	{ "tencent", GW_UPLINK_TENCENT },
	{ NULL, 0 },
};
static const struct gw_config_word start_from_words[] = {
	{ "now", GW_START_FROM_NOW },
	{ "oldest", GW_START_FROM_OLDEST },
	{ NULL, 0 },
};

#define UPLINK_T struct gw_config_uplink
/*
 * The keys every uplink type takes; each type adds its own (struct gw_config_uplink_type).
 * port has no default here: it derives from other keys when the section closes.
 */
static const struct gw_config_key uplink_keys[] = {
	GW_CONFIG_KEY_ENUM("type", UPLINK_T, type, NULL, uplink_type_words),
	GW_CONFIG_KEY("host", gw_config_set_string, UPLINK_T, host, "127.0.0.1", 0, STRING_MAX, 0),
	GW_CONFIG_KEY("port", gw_config_set_uint, UPLINK_T, port, NULL, 1, 65535, 0),
	GW_CONFIG_KEY("ca_file", gw_config_set_readable_file, UPLINK_T, ca_file, NULL, 0, 0, 0),
	GW_CONFIG_KEY("keepalive", gw_config_set_uint, UPLINK_T, keepalive, "60", 5, 65535, 0),
	GW_CONFIG_KEY("reconnect_min_ms", gw_config_set_uint, UPLINK_T, reconnect_min_ms, "1000",
		      100, 600000, 0),
	GW_CONFIG_KEY("reconnect_max_ms", gw_config_set_uint, UPLINK_T, reconnect_max_ms, "60000",
		      100, 3600000, 0),
	GW_CONFIG_KEY("max_inflight", gw_config_set_uint, UPLINK_T, max_inflight, "64", 1, 1000, 0),
	GW_CONFIG_KEY("max_rate", gw_config_set_uint, UPLINK_T, max_rate, "0", 0, 100000, 0),
	GW_CONFIG_KEY_ENUM("start_from", UPLINK_T, start_from, "now", start_from_words),
};

/* The uplink types, in the order of their type = words. */
static const struct gw_config_uplink_type *const uplink_types[] = {
	&gw_config_mqtt_type,
	&gw_config_aliyun_type,
	&gw_config_tencent_type,
};

static const struct gw_config_word map_type_words[] = {
	{ "auto", GW_MAP_TYPE_AUTO },     { "int", GW_MAP_TYPE_INT },
	{ "float", GW_MAP_TYPE_FLOAT },   { "bool", GW_MAP_TYPE_BOOL },
	{ "string", GW_MAP_TYPE_STRING }, { NULL, 0 },
};

#define MAP_T struct gw_config_map
/* identifier defaults to the section's FIELD, which the table cannot know. */
static const struct gw_config_key map_keys[] = {
	GW_CONFIG_KEY("identifier", set_identifier, MAP_T, identifier, NULL, 0, 0, 0),
	GW_CONFIG_KEY("scale", set_double, MAP_T, scale, "1", 0, 0, GW_KF_NONZERO),
	GW_CONFIG_KEY("offset", set_double, MAP_T, offset, "0", 0, 0, 0),
	GW_CONFIG_KEY_ENUM("type", MAP_T, type, "auto", map_type_words),
	GW_CONFIG_KEY("port", set_name_ref, MAP_T, port, "", 0, 0, GW_KF_EMPTY_OK),
	GW_CONFIG_KEY("unit", set_unit, MAP_T, unit, "", 0, 0, GW_KF_EMPTY_OK),
	GW_CONFIG_KEY("device_class", set_device_class, MAP_T, device_class, "", 0, 0,
		      GW_KF_EMPTY_OK),
};

_Static_assert(N_ELEMENTS(uplink_keys) <= MAX_SECTION_KEYS, "raise MAX_SECTION_KEYS");
_Static_assert(N_ELEMENTS(port_keys) <= MAX_SECTION_KEYS, "raise MAX_SECTION_KEYS");

static void apply_defaults(const struct gw_config_key *keys, size_t n, void *obj)
{
	/* Defaults are constants of this file: a parse error here is a bug, so no parser. */
	struct gw_config_parser quiet = { .path = "(defaults)" };

	for (size_t i = 0; i < n; i++)
		if (keys[i].def && !keys[i].set(&quiet, &keys[i], obj, keys[i].def))
			abort();
}

/* Section checks, run when the section ends */

static size_t key_index(const struct gw_config_parser *p, const char *name)
{
	for (size_t i = 0; i < p->n_keys; i++)
		if (strcmp(p->keys[i]->name, name) == 0)
			return i;
	abort();
}

unsigned gw_config_line(const struct gw_config_parser *p)
{
	return p->line;
}

unsigned gw_config_section_line(const struct gw_config_parser *p)
{
	return p->sec_line;
}

const char *gw_config_title(const struct gw_config_parser *p)
{
	return p->title;
}

/* The line the key was given on, 0 when it was not given. */
unsigned gw_config_given(const struct gw_config_parser *p, const char *name)
{
	return p->key_lines[key_index(p, name)];
}

bool gw_config_given_ok(const struct gw_config_parser *p, const char *name)
{
	size_t i = key_index(p, name);

	return p->key_lines[i] && !p->key_bad[i];
}

bool gw_config_bad(const struct gw_config_parser *p, const char *name)
{
	return p->key_bad[key_index(p, name)];
}

static void check_min_max(struct gw_config_parser *p, const char *min_name, uint32_t min,
			  const char *max_name, uint32_t max)
{
	unsigned line;

	if (max >= min || gw_config_bad(p, min_name) || gw_config_bad(p, max_name))
		return;
	line = gw_config_given(p, max_name) ? gw_config_given(p, max_name) :
					      gw_config_given(p, min_name);
	gw_config_report(p, line, "%s: %" PRIu32 " is less than %s (%" PRIu32 ")", max_name, max,
			 min_name, min);
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

static void close_port(struct gw_config_parser *p)
{
	static const char *const match_keys[] = {
		"match_vid", "match_pid", "match_serial", "match_description",
	};
	struct gw_config_port *port = p->obj;
	const char *match = NULL;
	unsigned match_line = 0;

	for (size_t i = 0; i < N_ELEMENTS(match_keys) && !match; i++) {
		match_line = gw_config_given(p, match_keys[i]);
		if (match_line)
			match = match_keys[i];
	}
	if (!gw_config_given(p, "path") && !match)
		gw_config_report(p, p->sec_line,
				 "%s needs either path or a USB match (match_vid, match_pid, match_serial, "
				 "match_description)",
				 p->title);
	if (gw_config_given(p, "path") && match)
		gw_config_report(p, gw_config_given(p, "path"),
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
			gw_config_report(p, gw_config_given(p, "path"),
					 "duplicate port: path %s already used by [port %s] at line %u",
					 port->path, other->name, other->line);
			break;
		}
		/* /dev/serial/by-id/... and /dev/ttyUSB0 may well be the same device */
		real = same_device(other->path, port->path);
		if (real) {
			gw_config_report(p, gw_config_given(p, "path"),
					 "duplicate port: path %s already used by [port %s] at line %u "
					 "(both are %s)",
					 port->path, other->name, other->line, real);
			free(real);
			break;
		}
	}
}

/* At most one source of a secret; returns the key that was given first, or NULL. */
const char *gw_config_one_source(struct gw_config_parser *p, const char *const *sources, size_t n,
				 const char *list)
{
	const char *first = NULL;

	for (size_t i = 0; i < n; i++) {
		if (!gw_config_given(p, sources[i]))
			continue;
		if (!first) {
			first = sources[i];
			continue;
		}
		gw_config_report(p, gw_config_given(p, sources[i]),
				 "%s: only one of %s may be set (%s at line %u)", sources[i], list,
				 first, gw_config_given(p, first));
	}
	return first;
}

void gw_config_default_ca(struct gw_config_parser *p, struct gw_config_uplink *u, const char *path)
{
	if (access(path, R_OK) < 0) {
		gw_config_report(p, p->sec_line,
				 "%s needs ca_file: the default %s cannot be read (%s)", p->title,
				 path, strerror(errno));
		return;
	}
	u->ca_file = gw_strdup(path);
}

static void add_keys(struct gw_config_parser *p, const struct gw_config_key *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p->n_keys == MAX_SECTION_KEYS)
			abort(); /* raise MAX_SECTION_KEYS */
		p->keys[p->n_keys++] = &keys[i];
	}
}

/* The type an [uplink] section names (the first type = line), or NULL. */
static const struct gw_config_uplink_type *pending_type(const struct gw_config_parser *p)
{
	for (size_t i = 0; i < p->n_pending; i++) {
		if (strcmp(p->pending[i].name, "type") != 0)
			continue;
		for (size_t t = 0; t < N_ELEMENTS(uplink_types); t++)
			if (strcmp(uplink_types[t]->name, p->pending[i].value) == 0)
				return uplink_types[t];
		return NULL;
	}
	return NULL;
}

/* The key of another type than the section's, and that type; NULL when no type takes it. */
static const struct gw_config_key *foreign_key(const struct gw_config_uplink_type *own,
					       const char *name,
					       const struct gw_config_uplink_type **ret)
{
	for (size_t t = 0; t < N_ELEMENTS(uplink_types); t++) {
		if (uplink_types[t] == own)
			continue;
		for (size_t s = 0; s < N_ELEMENTS(uplink_types[t]->keys); s++) {
			const struct gw_config_keys *keys = uplink_types[t]->keys[s];

			for (size_t i = 0; keys && i < keys->n; i++) {
				if (strcmp(keys->keys[i].name, name) == 0) {
					*ret = uplink_types[t];
					return &keys->keys[i];
				}
			}
		}
	}
	return NULL;
}

static void report_empty(struct gw_config_parser *p, const struct gw_config_key *k);
static void apply_key(struct gw_config_parser *p, const char *name, const char *value);

/* A key only other types take: a value they would refuse gets their message, so a typo'd type
 * and a bad value both show; a good one is refused as not used by this type. */
static void refuse_foreign(struct gw_config_parser *p, const struct gw_config_uplink_type *own,
			   const struct gw_config_key *k, const struct gw_config_uplink_type *other,
			   const char *value)
{
	struct gw_config_uplink scratch = { 0 };
	bool ok = (value[0] || (k->flags & GW_KF_EMPTY_OK)) && k->set(p, k, &scratch, value);

	if (!value[0] && !(k->flags & GW_KF_EMPTY_OK))
		report_empty(p, k);
	if (ok)
		gw_config_report(p, p->line, "%s: not used by type = %s", k->name, own->name);
	other->clear(&scratch);
}

static void close_uplink(struct gw_config_parser *p)
{
	const struct gw_config_uplink_type *type = pending_type(p);
	struct gw_config_uplink *u = p->obj;
	unsigned reader_line = p->line;

	/* an unknown or missing type is judged as mqtt, so its other problems still show */
	if (!type)
		type = &gw_config_mqtt_type;
	for (size_t s = 0; s < N_ELEMENTS(type->keys) && type->keys[s]; s++) {
		add_keys(p, type->keys[s]->keys, type->keys[s]->n);
		apply_defaults(type->keys[s]->keys, type->keys[s]->n, u);
	}
	for (size_t i = 0; i < p->n_pending; i++) {
		const struct pending_key *k = &p->pending[i];
		const struct gw_config_uplink_type *other = NULL;
		const struct gw_config_key *foreign = NULL;
		bool known = false;

		for (size_t j = 0; j < p->n_keys && !known; j++)
			known = strcmp(p->keys[j]->name, k->name) == 0;
		if (!known)
			foreign = foreign_key(type, k->name, &other);
		p->line = k->line;
		if (foreign)
			refuse_foreign(p, type, foreign, other, k->value);
		else
			apply_key(p, k->name, k->value);
	}
	p->line = reader_line;

	if (!gw_config_given(p, "type"))
		gw_config_report(p, p->sec_line, "%s needs type = mqtt, aliyun or tencent",
				 p->title);
	type->close(p, u);
	check_min_max(p, "reconnect_min_ms", u->reconnect_min_ms, "reconnect_max_ms",
		      u->reconnect_max_ms);
}

static void close_map(struct gw_config_parser *p)
{
	struct gw_config_map *m = p->obj;

	/* the port must exist, but ports may follow: check_file() needs this line later */
	p->map_port_line[m - p->c->maps] = gw_config_given(p, "port");
	if (gw_config_given(p, "identifier"))
		return;
	if (valid_identifier(m->field, sizeof(m->identifier)))
		memcpy(m->identifier, m->field, strlen(m->field) + 1);
	else
		gw_config_report(p, p->sec_line,
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

static void drop_pending(struct gw_config_parser *p)
{
	for (size_t i = 0; i < p->n_pending; i++) {
		free(p->pending[i].name);
		p->pending[i].value = gw_secret_free(p->pending[i].value);
	}
	p->n_pending = 0;
}

static void close_section(struct gw_config_parser *p)
{
	if (p->in_section && !p->skip && p->sec->close)
		p->sec->close(p);
	drop_pending(p);
	p->in_section = false;
	p->skip = false;
	p->sec = NULL;
	p->obj = NULL;
}

static void *new_section_object(struct gw_config_parser *p, const char *name)
{
	switch (p->sec->id) {
	case SEC_GATEWAY:
		p->gateway_line = p->line;
		return p->c;
	case SEC_PORT: {
		struct gw_config_port *port;

		for (size_t i = 0; i < p->c->n_ports; i++) {
			if (strcmp(p->c->ports[i].name, name) == 0) {
				gw_config_report(p, p->line,
						 "duplicate section %s (first at line %u)",
						 p->title, p->c->ports[i].line);
				return NULL;
			}
		}
		if (p->c->n_ports == GW_CONFIG_MAX_PORTS) {
			gw_config_report(p, p->line, "too many [port] sections (max %d)",
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
				gw_config_report(p, p->line,
						 "duplicate section %s (first at line %u)",
						 p->title, p->c->uplinks[i].line);
				return NULL;
			}
		}
		if (p->c->n_uplinks == GW_CONFIG_MAX_UPLINKS) {
			gw_config_report(p, p->line, "too many [uplink] sections (max %d)",
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
			gw_config_report(p, p->line, "too many [map] sections (max %d)",
					 GW_CONFIG_MAX_MAPS);
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
static void open_section(struct gw_config_parser *p, const char *text, size_t len)
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
		gw_config_report(p, p->line, "section header too long");
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
			gw_config_report(p, p->line,
					 "unknown section [%s%s%s]: expected [gateway], [port NAME], "
					 "[uplink NAME] or [map FIELD] (did you mean '%s'?)",
					 kind, *name ? " " : "", name, suggest_result(&s));
		else
			gw_config_report(p, p->line,
					 "unknown section [%s%s%s]: expected [gateway], [port NAME], "
					 "[uplink NAME] or [map FIELD]",
					 kind, *name ? " " : "", name);
		return;
	}
	if (p->sec->id == SEC_GATEWAY) {
		if (*name) {
			gw_config_report(p, p->line, "[gateway %s]: [gateway] takes no name", name);
			return;
		}
		snprintf(p->title, sizeof(p->title), "[gateway]");
		if (p->gateway_line) {
			gw_config_report(p, p->line,
					 "duplicate section [gateway] (first at line %u)",
					 p->gateway_line);
			return;
		}
	} else {
		const char *what = p->sec->id == SEC_MAP ? "FIELD" : "NAME";

		if (!*name) {
			gw_config_report(p, p->line, "[%s] needs a name: [%s %s]", kind, kind,
					 what);
			return;
		}
		if (!valid_name(name)) {
			gw_config_report(p, p->line, "invalid name '%s' in [%s %s] (" NAME_HELP ")",
					 name, kind, name);
			return;
		}
		snprintf(p->title, sizeof(p->title), "[%.8s %.31s]", kind, name);
	}
	p->obj = new_section_object(p, name);
	if (!p->obj)
		return;
	p->n_keys = 0;
	add_keys(p, p->sec->keys, p->sec->n_keys);
	if (p->sec->id != SEC_GATEWAY)
		apply_defaults(p->sec->keys, p->sec->n_keys, p->obj);
	p->skip = false;
}

/* Reader: the only place that knows line numbers */

static void check_key_handled(struct gw_config_parser *p)
{
	if (p->key_pending && !p->key_handled)
		gw_config_report(p, p->line,
				 "syntax error: expected 'key = value', '[section]' or a comment");
	p->key_pending = false;
}

/* Ends the current section and ignores the keys up to the next header. */
static void skip_section(struct gw_config_parser *p)
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
	struct gw_config_parser *p = stream;
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
			gw_config_report(p, p->line, "line contains a NUL byte");
		else
			gw_config_report(p, p->line, "line too long (max %d characters)", num - 2);
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
			gw_config_report(p, p->line, "syntax error: '[' without ']'");
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
	struct gw_config_parser *p = user;
	struct pending_key *k;

	p->key_handled = true;
	if (!name[0]) {
		gw_config_report(p, p->line, "syntax error: missing key name before '='");
		return 1;
	}
	if (!p->in_section) {
		gw_config_report(p, p->line, "key '%s' outside of any section", name);
		return 1;
	}
	if (p->skip)
		return 1;
	if (p->sec->id != SEC_UPLINK) {
		apply_key(p, name, value);
		return 1;
	}
	/* judged when the section ends, once its type is known */
	if (p->n_pending == p->pending_alloc) {
		p->pending_alloc = p->pending_alloc ? p->pending_alloc * 2 : 16;
		k = reallocarray(p->pending, p->pending_alloc, sizeof(*k));
		if (!k)
			oom();
		p->pending = k;
	}
	k = &p->pending[p->n_pending++];
	k->name = gw_strdup(name);
	k->value = gw_strdup(value);
	k->line = p->line;
	return 1;
}

static void report_empty(struct gw_config_parser *p, const struct gw_config_key *k)
{
	if (k->set == gw_config_set_uint)
		gw_config_report(p, p->line, "%s: empty value (expected %" PRIu64 "..%" PRIu64 ")",
				 k->name, k->min, k->max);
	else if (k->set == set_baud)
		gw_config_report(p, p->line, "%s: empty value (" BAUD_HELP ")", k->name);
	else
		gw_config_report(p, p->line, "%s: empty value", k->name);
}

/* Every uplink key's name, for a hint on a name none of them has. */
static void suggest_uplink_key(struct suggestion *s)
{
	for (size_t t = 0; t < N_ELEMENTS(uplink_types); t++) {
		for (size_t k = 0; k < N_ELEMENTS(uplink_types[t]->keys); k++) {
			const struct gw_config_keys *keys = uplink_types[t]->keys[k];

			for (size_t i = 0; keys && i < keys->n; i++)
				suggest_consider(s, keys->keys[i].name);
		}
	}
}

/* One key = value of the current section, at line p->line. */
static void apply_key(struct gw_config_parser *p, const char *name, const char *value)
{
	const struct gw_config_key *k = NULL;
	struct suggestion s = { .word = name };
	size_t i;

	for (i = 0; i < p->n_keys; i++) {
		if (strcmp(p->keys[i]->name, name) == 0) {
			k = p->keys[i];
			break;
		}
		suggest_consider(&s, p->keys[i]->name);
	}
	if (!k && p->sec->id == SEC_UPLINK)
		suggest_uplink_key(&s);
	if (!k) {
		if (suggest_result(&s))
			gw_config_report(p, p->line, "unknown key '%s' in %s (did you mean '%s'?)",
					 name, p->title, suggest_result(&s));
		else
			gw_config_report(p, p->line, "unknown key '%s' in %s", name, p->title);
		return;
	}
	if (p->key_lines[i]) {
		gw_config_report(p, p->line, "duplicate key '%s' in %s (first at line %u)", name,
				 p->title, p->key_lines[i]);
		return;
	}
	p->key_lines[i] = p->line;
	if (!value[0] && !(k->flags & GW_KF_EMPTY_OK)) {
		report_empty(p, k);
		p->key_bad[i] = true;
		return;
	}
	if (!k->set(p, k, p->obj, value))
		p->key_bad[i] = true;
}

/* Whole-file checks */

static bool port_exists(const struct gw_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_ports; i++)
		if (strcmp(c->ports[i].name, name) == 0)
			return true;
	return false;
}

static void check_file(struct gw_config_parser *p)
{
	struct gw_config *c = p->c;

	for (size_t i = 0; i < c->n_maps; i++) {
		const struct gw_config_map *m = &c->maps[i];

		if (m->port[0] && !port_exists(c, m->port))
			gw_config_report(p, p->map_port_line[i],
					 "port: no [port %s] section (in [map %s])", m->port,
					 m->field);
		for (size_t j = 0; j < i; j++) {
			const struct gw_config_map *o = &c->maps[j];

			if (strcmp(o->field, m->field) != 0 || strcmp(o->port, m->port) != 0)
				continue;
			if (m->port[0])
				gw_config_report(p, m->line,
						 "duplicate map: [map %s] for port %s already defined at "
						 "line %u",
						 m->field, m->port, o->line);
			else
				gw_config_report(p, m->line,
						 "duplicate map: [map %s] for every port already defined at "
						 "line %u",
						 m->field, o->line);
			break;
		}
	}
	/* No port is valid: the packaged example opens none until the user configures one. */
	if (c->n_uplinks == 0)
		gw_config_report(p, 0, "no [uplink NAME] section: at least one uplink is required");
}

int gw_config_load(const char *path, FILE *diag, struct gw_config **ret)
{
	struct gw_config_parser p = { .path = path };
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
	free(p.pending);
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
		gw_config_report(&p, 0, "cannot read: %s", strerror(p.read_errno));
		r = -p.read_errno;
		goto fail;
	}
	if (r > 0 && p.n_diags == 0)
		gw_config_report(&p, (unsigned)r, "syntax error");
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

static const struct gw_config_uplink_type *uplink_type(enum gw_uplink_type t)
{
	for (size_t i = 0; i < N_ELEMENTS(uplink_types); i++)
		if (uplink_types[i]->type == t)
			return uplink_types[i];
	abort();
}

bool gw_config_uplink_equal(const struct gw_config_uplink *a, const struct gw_config_uplink *b)
{
	return strcmp(a->name, b->name) == 0 && SAME(type) && SAME_STR(host) && SAME(port) &&
	       SAME(tls) && SAME(tls_psk) && SAME_STR(ca_file) && SAME(keepalive) &&
	       SAME(reconnect_min_ms) && SAME(reconnect_max_ms) && SAME(max_inflight) &&
	       SAME(max_rate) && SAME(start_from) && uplink_type(a->type)->equal(a, b);
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
	free(c->metrics_file);
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
		uplink_type(u->type)->clear(u);
	}
	free(c);
	return NULL;
}

/* The config word of a value: the words the keys take, read backwards. */
static const char *word_of(const struct gw_config_word *w, int value)
{
	for (; w->word; w++)
		if (w->value == value)
			return w->word;
	return "invalid";
}

const char *gw_parity_to_string(enum gw_parity p)
{
	return word_of(parity_words, (int)p);
}

const char *gw_flow_to_string(enum gw_flow f)
{
	return word_of(flow_words, (int)f);
}

const char *gw_framing_to_string(enum gw_framing f)
{
	return word_of(framing_words, (int)f);
}

const char *gw_uplink_type_to_string(enum gw_uplink_type t)
{
	return word_of(uplink_type_words, (int)t);
}
