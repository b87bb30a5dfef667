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
 *   debug-stall MS  a test hook: the loop sleeps MS ms (only with SENSORGW_TEST_HOOKS=1)
 *
 * Any other request, or a malformed one, is answered {"ok":false,"error":"..."}. A handler
 * may answer later (gw_control_defer): the client then waits up to
 * GW_CONTROL_DEFER_TIMEOUT_MS. A client that
 * sends nothing within GW_CONTROL_TIMEOUT_MS is dropped; at most GW_CONTROL_CLIENTS_MAX are
 * served at once, and a further one is answered "busy". The socket never blocks the loop:
 * requests are read and replies written as the socket allows.
 */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#define GW_CONTROL_REQUEST_MAX 256
#define GW_CONTROL_CLIENTS_MAX 8
#define GW_CONTROL_TIMEOUT_MS 2000
#define GW_CONTROL_DEFER_TIMEOUT_MS 60000
#define GW_CONTROL_STALL_MAX_MS 60000

enum gw_control_command {
	GW_CONTROL_STATUS,
	GW_CONTROL_VERSION,
	GW_CONTROL_RELOAD,
	GW_CONTROL_DEBUG_STALL,
};

struct gw_control_request {
	enum gw_control_command command;
	uint32_t ms; /* debug-stall: 1..GW_CONTROL_STALL_MAX_MS */
};

/*
 * Parses one request: len bytes of buf (no NUL needed), a line of printable ASCII words
 * separated by blanks, optionally ending in "\n" or "\r\n". Only debug-stall takes an
 * argument (milliseconds, 1..GW_CONTROL_STALL_MAX_MS). Pure. Returns 0, or -EINVAL with why set
 * (empty, not one line, unknown command, unexpected or bad argument), -EMSGSIZE when longer
 * than GW_CONTROL_REQUEST_MAX.
 */
int gw_control_parse_request(const char *buf, size_t len, struct gw_control_request *ret,
			     char *why, size_t why_size);

struct gw_control;

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
/* Answers a deferred client (steals reply; NULL: the error reply why). A client that is gone
 * (timed out, or the socket was freed) is forgotten: -ENOENT, and reply is dropped. */
int gw_control_complete(struct gw_control *c, gw_control_ticket ticket, json_t *reply,
			const char *why);
