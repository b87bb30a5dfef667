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
 *   status    {"ok":true, ... the gateway's state, docs/status.md}
 *   version   {"ok":true,"version":"..."}
 *
 * Any other request, or a malformed one, is answered {"ok":false,"error":"..."}. A client that
 * sends nothing within GW_CONTROL_TIMEOUT_MS is dropped; at most GW_CONTROL_CLIENTS_MAX are
 * served at once, and a further one is answered "busy". The socket never blocks the loop:
 * requests are read and replies written as the socket allows.
 */

#include <jansson.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#define GW_CONTROL_REQUEST_MAX 256
#define GW_CONTROL_CLIENTS_MAX 8
#define GW_CONTROL_TIMEOUT_MS 2000

enum gw_control_command {
	GW_CONTROL_STATUS,
	GW_CONTROL_VERSION,
};

struct gw_control_request {
	enum gw_control_command command;
};

/*
 * Parses one request: len bytes of buf (no NUL needed), a line of printable ASCII words
 * separated by blanks, optionally ending in "\n" or "\r\n". Pure. Returns 0, or -EINVAL with
 * why set (empty, not one line, unknown command, unexpected argument), -EMSGSIZE when longer
 * than GW_CONTROL_REQUEST_MAX.
 */
int gw_control_parse_request(const char *buf, size_t len, struct gw_control_request *ret,
			     char *why, size_t why_size);

struct gw_control;

/* Returns the reply object (the caller's reference, "ok" is added when missing), or NULL with
 * why set for an error reply. */
typedef json_t *(*gw_control_handler_fn)(const struct gw_control_request *req, char *why,
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
