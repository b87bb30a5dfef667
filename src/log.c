/* SPDX-License-Identifier: MIT */
/*
 * Logging backend: journald with structured fields when stderr is the journal, readable
 * stderr lines otherwise, with a small rate limiter for repeated warnings and errors.
 *
 * The limiter keeps what it needs to report a burst by itself (the start of the message and
 * copies of the context strings), so a summary never depends on the message coming back:
 * gw_log_flush_suppressed() reports every window that has ended, a slot taken over by another
 * message reports first, and the owner of the event loop is told (gw_log_set_pending_fn) when
 * a summary becomes due. This module has no event loop of its own.
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
#define RL_WINDOW_US ((uint64_t)GW_LOG_INTERVAL_S * 1000000)
#define RL_MSG_KEEP 120 /* bytes of a suppressed message the summary quotes */
#define RL_CTX_KEEP 64

struct rl_slot {
	uint64_t hash;
	uint64_t window_start_us;
	unsigned count;
	unsigned suppressed;
	int level;
	/* copies: the summary may be written long after the caller's strings are gone */
	char msg[RL_MSG_KEEP];
	char port[RL_CTX_KEEP], node_uid[RL_CTX_KEEP], uplink[RL_CTX_KEEP];
	bool has_port, has_node_uid, has_uplink;
};

static int max_level = LOG_INFO;
static bool journal;
static const char *log_ident = "sensorgw";
static struct rl_slot rl[RL_SLOTS];
static gw_log_pending_fn pending_fn;
static void *pending_ud;

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

static void keep(char *dst, size_t size, bool *has, const char *src)
{
	*has = src != NULL;
	snprintf(dst, size, "%s", src ? src : "");
}

/* Writes the summary of slot's suppressed lines, if any, and empties the count. */
static void rl_summarise(struct rl_slot *slot)
{
	const struct gw_log_ctx ctx = {
		.port = slot->has_port ? slot->port : NULL,
		.node_uid = slot->has_node_uid ? slot->node_uid : NULL,
		.uplink = slot->has_uplink ? slot->uplink : NULL,
	};
	char line[RL_MSG_KEEP + 128];

	if (!slot->suppressed)
		return;
	snprintf(line, sizeof(line), "%u similar messages were suppressed (%d s window): \"%s%s\"",
		 slot->suppressed, GW_LOG_INTERVAL_S, slot->msg,
		 strlen(slot->msg) == RL_MSG_KEEP - 1 ? "..." : "");
	slot->suppressed = 0;
	emit(slot->level, &ctx, line);
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
		/* what the slot held is reported before another message takes it over */
		slot = oldest;
		rl_summarise(slot);
		*slot = (struct rl_slot){ .hash = h, .window_start_us = now, .level = level };
		{
			/* kept cut to the slot's size; the summary marks a cut text with "..." */
			size_t n = strnlen(msg, sizeof(slot->msg) - 1);

			memcpy(slot->msg, msg, n);
			slot->msg[n] = '\0';
		}
		keep(slot->port, sizeof(slot->port), &slot->has_port, ctx ? ctx->port : NULL);
		keep(slot->node_uid, sizeof(slot->node_uid), &slot->has_node_uid,
		     ctx ? ctx->node_uid : NULL);
		keep(slot->uplink, sizeof(slot->uplink), &slot->has_uplink,
		     ctx ? ctx->uplink : NULL);
	}
	if (now - slot->window_start_us > RL_WINDOW_US) {
		rl_summarise(slot);
		slot->window_start_us = now;
		slot->count = 0;
	}
	if (++slot->count > GW_LOG_BURST) {
		if (slot->suppressed++ == 0 && pending_fn)
			pending_fn(slot->window_start_us + RL_WINDOW_US + 1, pending_ud);
		return false;
	}
	return true;
}

uint64_t gw_log_flush_suppressed(uint64_t now_us)
{
	uint64_t next = 0;

	for (size_t i = 0; i < RL_SLOTS; i++) {
		struct rl_slot *slot = &rl[i];
		uint64_t due = slot->window_start_us + RL_WINDOW_US + 1;

		if (!slot->suppressed)
			continue;
		if (now_us == UINT64_MAX || now_us >= due) {
			rl_summarise(slot);
			/* the burst is over: the next line of it starts a new window */
			slot->count = 0;
			continue;
		}
		if (!next || due < next)
			next = due;
	}
	return next;
}

void gw_log_set_pending_fn(gw_log_pending_fn fn, void *user_data)
{
	pending_fn = fn;
	pending_ud = user_data;
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
