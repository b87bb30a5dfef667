/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Logging. Under systemd (stderr connected to the journal, as JOURNAL_STREAM says) every line
 * goes to journald with structured fields: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, and PORT=,
 * NODE_UID=, UPLINK= where they apply, so `journalctl -u sensorgw PORT=uart1` answers "what
 * happened on this port". In a terminal or a test, readable lines go to stderr.
 *
 * Identical warnings and errors are rate-limited: after GW_LOG_BURST repeats of one message
 * within GW_LOG_INTERVAL_S seconds the rest are counted, and one line ("N similar messages
 * were suppressed (30 s window): \"<the message>\"", with the message's fields) reports them
 * once the window has ended. That line never waits for the message to come back: the program
 * that owns the event loop calls gw_log_flush_suppressed() when the callback set with
 * gw_log_set_pending_fn() says a summary is due, and once more with UINT64_MAX at exit. A
 * slot taken over by another message reports what it held first. Secrets are never passed to
 * these functions.
 */

#include <stdarg.h>
#include <stdint.h>
#include <syslog.h>

#define GW_LOG_BURST 5
#define GW_LOG_INTERVAL_S 30

/* The context a line is about; any member may be NULL. */
struct gw_log_ctx {
	const char *port;
	const char *node_uid;
	const char *uplink;
};

void gw_log_init(const char *ident);
void gw_log_set_level(int level); /* LOG_ERR .. LOG_DEBUG */
int gw_log_get_level(void);
/* Parses "error", "warning", "notice", "info", "debug" (or 3..7); -EINVAL otherwise. */
int gw_log_level_from_string(const char *s);
/* True when lines go to the journal rather than to stderr. */
int gw_log_to_journal(void);

/*
 * Writes the summary of every burst whose window ended by now_us (CLOCK_MONOTONIC, µs, as
 * gw_now_mono_us()); UINT64_MAX writes every pending one at once (exit). Returns when the next
 * pending summary is due, or 0 when none is.
 */
uint64_t gw_log_flush_suppressed(uint64_t now_us);
/* fn(due_us) is called, from inside a gw_log call, when a line was first suppressed in a
 * window: a summary is due at due_us (CLOCK_MONOTONIC). fn must not log. NULL turns it off. */
typedef void (*gw_log_pending_fn)(uint64_t due_us, void *user_data);
void gw_log_set_pending_fn(gw_log_pending_fn fn, void *user_data);

/* The journal fields of one line, each "NAME=value" as sd_journal_sendv() takes them:
 * MESSAGE=, PRIORITY=, SYSLOG_IDENTIFIER= (the ident of gw_log_init), then PORT=, NODE_UID=,
 * UPLINK= for each member of ctx that is set (none for a NULL ctx). */
#define GW_LOG_FIELDS_MAX 6
struct gw_log_fields {
	char *field[GW_LOG_FIELDS_MAX];
	size_t n;
};

/* Pure: builds the fields of a line into f; 0, or -ENOMEM with nothing to free. */
int gw_log_fields_build(struct gw_log_fields *f, const char *ident, int level,
			const struct gw_log_ctx *ctx, const char *msg);
void gw_log_fields_free(struct gw_log_fields *f);

void gw_log_ctx(int level, const struct gw_log_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void gw_log_ctxv(int level, const struct gw_log_ctx *ctx, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

#define gw_log(level, ...) gw_log_ctx(level, NULL, __VA_ARGS__)
#define gw_log_port(level, port_, ...) \
	gw_log_ctx(level, &(const struct gw_log_ctx){ .port = (port_) }, __VA_ARGS__)
#define gw_log_node(level, port_, uid_, ...) \
	gw_log_ctx(level, &(const struct gw_log_ctx){ .port = (port_), .node_uid = (uid_) }, __VA_ARGS__)
#define gw_log_uplink(level, uplink_, ...) \
	gw_log_ctx(level, &(const struct gw_log_ctx){ .uplink = (uplink_) }, __VA_ARGS__)
