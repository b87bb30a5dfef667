/* SPDX-License-Identifier: MIT */
/*
 * Logging backend: journald with structured fields when stderr is the journal, readable
 * stderr lines otherwise, with a small rate limiter for repeated warnings and errors.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "gw/log.h"
#include "gw/util.h"

#define RL_SLOTS 16

struct rl_slot {
	uint64_t hash;
	uint64_t window_start_us;
	unsigned count;
	unsigned suppressed;
	int level;
	struct gw_log_ctx ctx; /* strings are not kept: only for the summary line's fields */
};

static int max_level = LOG_INFO;
static bool journal;
static const char *log_ident = "sensorgw";
static struct rl_slot rl[RL_SLOTS];

static const char *const level_names[] = {
	[LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
	[LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

/* systemd sets JOURNAL_STREAM=dev:ino for a service whose stderr is the journal; compare it
 * with our stderr so that a child whose stderr was redirected does not log to the journal. */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char *end;

	/* strtoull, not sscanf: a number out of range is an error, not undefined */
	if (!e)
		return false;
	errno = 0;
	dev = strtoull(e, &end, 10);
	if (errno || end == e || *end != ':')
		return false;
	e = end + 1;
	ino = strtoull(e, &end, 10);
	if (errno || end == e || *end)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

void gw_log_init(const char *ident)
{
	if (ident)
		log_ident = ident;
	journal = stderr_is_journal();
}

void gw_log_set_level(int level)
{
	if (level < LOG_EMERG)
		level = LOG_EMERG;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;
	max_level = level;
}

int gw_log_get_level(void)
{
	return max_level;
}

int gw_log_to_journal(void)
{
	return journal;
}

int gw_log_level_from_string(const char *s)
{
	static const struct {
		const char *name;
		int level;
	} names[] = {
		{ "error", LOG_ERR }, { "err", LOG_ERR },   { "warning", LOG_WARNING },
		{ "warn", LOG_WARNING }, { "notice", LOG_NOTICE }, { "info", LOG_INFO },
		{ "debug", LOG_DEBUG },
	};

	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].name) == 0)
			return names[i].level;
	if (s[0] >= '3' && s[0] <= '7' && s[1] == '\0')
		return s[0] - '0';
	return -EINVAL;
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (; s && *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h * 1099511628211ULL;
}

static int add_field(struct gw_log_fields *f, const char *name, const char *value)
{
	if (f->n >= GW_LOG_FIELDS_MAX || asprintf(&f->field[f->n], "%s=%s", name, value) < 0)
		return -ENOMEM;
	f->n++;
	return 0;
}

void gw_log_fields_free(struct gw_log_fields *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->field[i]);
	f->n = 0;
}

int gw_log_fields_build(struct gw_log_fields *f, const char *ident, int level,
			const struct gw_log_ctx *ctx, const char *msg)
{
	char prio[4];
	int r = 0;

	*f = (struct gw_log_fields){ .n = 0 };
	snprintf(prio, sizeof(prio), "%d", level);
	r |= add_field(f, "MESSAGE", msg);
	r |= add_field(f, "PRIORITY", prio);
	r |= add_field(f, "SYSLOG_IDENTIFIER", ident);
	if (ctx && ctx->port)
		r |= add_field(f, "PORT", ctx->port);
	if (ctx && ctx->node_uid)
		r |= add_field(f, "NODE_UID", ctx->node_uid);
	if (ctx && ctx->uplink)
		r |= add_field(f, "UPLINK", ctx->uplink);
	if (r) {
		gw_log_fields_free(f);
		return -ENOMEM;
	}
	return 0;
}

static void emit(int level, const struct gw_log_ctx *ctx, const char *msg)
{
	if (journal) {
		struct gw_log_fields f;
		struct iovec iov[GW_LOG_FIELDS_MAX];

		if (gw_log_fields_build(&f, log_ident, level, ctx, msg) < 0)
			return;
		for (size_t i = 0; i < f.n; i++)
			iov[i] = (struct iovec){ f.field[i], strlen(f.field[i]) };
		(void)sd_journal_sendv(iov, (int)f.n);
		gw_log_fields_free(&f);
		return;
	}

	/* One fprintf per line, so lines from the daemon and a test harness do not interleave. */
	char prefix[160] = "";
	size_t n = 0;

	if (ctx && ctx->uplink)
		n += (size_t)snprintf(prefix + n, sizeof(prefix) - n, "uplink %s: ", ctx->uplink);
	if (ctx && ctx->port && n < sizeof(prefix))
		n += (size_t)snprintf(prefix + n, sizeof(prefix) - n, "port %s: ", ctx->port);
	if (ctx && ctx->node_uid && n < sizeof(prefix))
		snprintf(prefix + n, sizeof(prefix) - n, "node %s: ", ctx->node_uid);
	fprintf(stderr, "%s: %s: %s%s\n", log_ident, level_names[level], prefix, msg);
}

/* Returns true when the message may be printed; may print a "suppressed" summary first. */
static bool rate_limit(int level, const struct gw_log_ctx *ctx, const char *msg)
{
	uint64_t now = gw_now_mono_us();
	uint64_t h = 14695981039346656037ULL;
	struct rl_slot *slot = NULL, *oldest = &rl[0];

	if (level > LOG_WARNING)
		return true;
	h = fnv1a(h, msg);
	if (ctx) {
		h = fnv1a(h, ctx->port);
		h = fnv1a(h, ctx->node_uid);
		h = fnv1a(h, ctx->uplink);
	}
	for (size_t i = 0; i < RL_SLOTS; i++) {
		if (rl[i].hash == h && rl[i].count) {
			slot = &rl[i];
			break;
		}
		if (rl[i].window_start_us < oldest->window_start_us)
			oldest = &rl[i];
	}
	if (!slot) {
		slot = oldest;
		*slot = (struct rl_slot){ .hash = h, .window_start_us = now, .level = level };
	}
	if (now - slot->window_start_us > (uint64_t)GW_LOG_INTERVAL_S * 1000000) {
		if (slot->suppressed) {
			char line[128];

			snprintf(line, sizeof(line), "%u similar messages were suppressed",
				 slot->suppressed);
			emit(slot->level, ctx, line);
		}
		slot->window_start_us = now;
		slot->count = 0;
		slot->suppressed = 0;
	}
	if (++slot->count > GW_LOG_BURST) {
		slot->suppressed++;
		return false;
	}
	return true;
}

void gw_log_ctxv(int level, const struct gw_log_ctx *ctx, const char *fmt, va_list ap)
{
	char msg[1024];
	int saved_errno = errno;

	if (level > max_level)
		return;
	if (level < LOG_EMERG)
		level = LOG_ERR;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (rate_limit(level, ctx, msg))
		emit(level, ctx, msg);
	errno = saved_errno;
}

void gw_log_ctx(int level, const struct gw_log_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	gw_log_ctxv(level, ctx, fmt, ap);
	va_end(ap);
}
