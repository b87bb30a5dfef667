/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The control socket: how sensorgwctl talks to a running sensorgwd ([gateway] control_socket,
 * default /run/sensorgw/control).
 *
 * A Unix stream socket, mode 0600, answering only its own user (and root; checked with
 * SO_PEERCRED). A client sends one request line of at most GW_CONTROL_REQUEST_MAX bytes and
 * gets one JSON object, a newline, and the end of the stream:
 *
 *   status          {"ok":true, ... the gateway's state, docs/status.md}
 *   version         {"ok":true,"version":"..."}
 *   reload          {"ok":true,...} once the new configuration runs, or {"ok":false,
 *                   "error":"...","problems":["FILE:LINE: message",...]} (sensorgwd(8))
 *   tail [port=NAME] [node=ID] [raw]
 *                   {"ok":true,"stream":"tail"} and then, until the client closes, one JSON
 *                   line per event the owner publishes (gw_control_publish)
 *   debug-stall MS  a test hook: the loop sleeps MS ms (only with SENSORGW_TEST_HOOKS=1)
 *
 * Any other request, or a malformed one, is answered {"ok":false,"error":"..."}. A handler
 * may answer later (gw_control_defer): the client then waits up to
 * GW_CONTROL_DEFER_TIMEOUT_MS. A client that
 * sends nothing within GW_CONTROL_TIMEOUT_MS is dropped; at most GW_CONTROL_CLIENTS_MAX are
 * served at once, and a further one is answered "busy". The socket never blocks the loop:
 * requests are read and replies written as the socket allows.
 *
 * A tail client (a stream) stays until it closes; at most GW_CONTROL_STREAMS_MAX at once, so
 * the other places keep answering requests. Each has a queue of GW_CONTROL_STREAM_QUEUE bytes:
 * an event that does not fit is dropped for that client and counted, and once there is room
 * again the client is told {"event":"dropped","count":N} before the next event. A reader that
 * does not read costs the daemon that queue and nothing more, and never delays it.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#define GW_CONTROL_REQUEST_MAX 256
#define GW_CONTROL_CLIENTS_MAX 8
#define GW_CONTROL_TIMEOUT_MS 2000
#define GW_CONTROL_DEFER_TIMEOUT_MS 60000
#define GW_CONTROL_STALL_MAX_MS 60000
#define GW_CONTROL_STREAMS_MAX 4
#define GW_CONTROL_STREAM_QUEUE (64 * 1024)
#define GW_CONTROL_FILTER_MAX 64 /* a tail filter's value, with its NUL */

enum gw_control_command {
	GW_CONTROL_STATUS,
	GW_CONTROL_VERSION,
	GW_CONTROL_RELOAD,
	GW_CONTROL_TAIL,
	GW_CONTROL_DEBUG_STALL,
};

struct gw_control_request {
	enum gw_control_command command;
	uint32_t ms; /* debug-stall: 1..GW_CONTROL_STALL_MAX_MS */
	/* tail: only events of this port / node ("" = any), raw chunks only when asked */
	char port[GW_CONTROL_FILTER_MAX];
	char node[GW_CONTROL_FILTER_MAX];
	bool raw;
};

/*
 * Parses one request: len bytes of buf (no NUL needed), a line of printable ASCII words
 * separated by blanks, optionally ending in "\n" or "\r\n". debug-stall takes milliseconds
 * (1..GW_CONTROL_STALL_MAX_MS); tail takes port=NAME, node=ID and raw, in any order, each at
 * most once, values shorter than GW_CONTROL_FILTER_MAX; the others take nothing. Pure.
 * Returns 0, or -EINVAL with why set (empty, not one line, unknown command, unexpected or bad
 * argument), -EMSGSIZE when longer than GW_CONTROL_REQUEST_MAX.
 */
int gw_control_parse_request(const char *buf, size_t len, struct gw_control_request *ret,
			     char *why, size_t why_size);

struct gw_control;

/* What a tail client is sent: decoded frames and bad frames always, raw chunks on request. */
enum gw_control_event {
	GW_CONTROL_EVENT_FRAME,
	GW_CONTROL_EVENT_RAW,
};

struct gw_control_stats {
	uint64_t streams;        /* tail clients now */
	uint64_t stream_events;  /* event lines queued for them, this run */
	uint64_t stream_dropped; /* event lines dropped because a client's queue was full */
};

/* One client waiting for a deferred answer; 0 is never one. */
typedef uint64_t gw_control_ticket;

/* Returns the reply object (the caller's reference, "ok" is added when missing), or NULL with
 * why set for an error reply, or NULL with why empty after gw_control_defer(). */
typedef json_t *(*gw_control_handler_fn)(struct gw_control *c,
					 const struct gw_control_request *req, char *why,
					 size_t why_size, void *user_data);

/*
 * Listens on path. An existing socket nobody answers on is replaced; one that answers means
 * another daemon: -EADDRINUSE. Anything else at path is left alone: -EEXIST. The directory is
 * created (0700) when missing, as systemd's RuntimeDirectory= would. Logs why it fails.
 */
int gw_control_new(sd_event *event, const char *path, gw_control_handler_fn handler,
		   void *user_data, struct gw_control **ret);
/* Closes every client and removes the socket. Accepts NULL; returns NULL. */
struct gw_control *gw_control_free(struct gw_control *c);
/* Stops accepting and removes the socket; clients already there are still answered. For a
 * socket that moves to another path: gw_control_free it later. */
void gw_control_stop_listening(struct gw_control *c);

/* From inside the handler: the client of the request being handled will be answered later,
 * with gw_control_complete(ticket). Returns the ticket (0 outside a handler). */
gw_control_ticket gw_control_defer(struct gw_control *c);
/* Is a tail client there that would take an event of this kind? Lets the owner skip
 * building events nobody reads. NULL-safe (false). */
bool gw_control_streaming(const struct gw_control *c, enum gw_control_event kind);
/*
 * Queues one event line (len bytes of JSON without its newline) for every tail client whose
 * filters match: port must equal its port= (when set), node its node= (when set; an event
 * without a node never matches one), and RAW events need raw. Never blocks; a client whose
 * queue is full loses the line (counted). NULL-safe.
 */
void gw_control_publish(struct gw_control *c, enum gw_control_event kind, const char *port,
			const char *node, const char *line, size_t len);
/* NULL-safe: zeros. */
void gw_control_get_stats(const struct gw_control *c, struct gw_control_stats *ret);

/* Answers a deferred client (steals reply; NULL: the error reply why). A client that is gone
 * (timed out, or the socket was freed) is forgotten: -ENOENT, and reply is dropped. */
int gw_control_complete(struct gw_control *c, gw_control_ticket ticket, json_t *reply,
			const char *why);
