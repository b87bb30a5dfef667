/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The command path to nodes: a property set, a service call or a control request for a device
 * (the device name its records carry) becomes a binary command frame (docs/protocol.md §1.2)
 * on the port of that device's node; the node's command-reply completes it.
 *
 * gw_command_send() finds the node by device name, encodes the frame with the node library,
 * queues it on the port's write queue and keeps it pending under (port, node address, cmd_id)
 * with a timeout on the event loop. Every send is completed exactly once through its done
 * callback, possibly before gw_command_send() returns: with the node's code and its reply
 * fields, or with a status and a reason (no such node, text framing, port closed, timeout, too
 * many pending, parameters the frame cannot carry, ...).
 *
 * Commands live only in memory: nothing is spooled, so a command pending when the daemon stops
 * is completed with GW_COMMAND_CANCELLED and never replayed.
 *
 * Parameters become fields as follows (gw_command_encode()): each member of the params object
 * is one field. A [map] section whose identifier is the member's name (one for the node's port
 * first, then one for every port) turns it back into the frame key, and a number back into the
 * raw value, (value - offset) / scale. JSON true/false become bool, integers i32 (i64 when
 * they do not fit), reals f64, strings str. Nothing is truncated: null, arrays, objects,
 * strings longer than 63 bytes or not printable ASCII, keys that are not 1..31 of
 * [A-Za-z0-9_.-], more than GW_FRAME_MAX_FIELDS members, two members mapping to one key, and
 * a payload over 240 bytes are refused with a reason.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "gw/config.h"
#include "gw/frame.h"
#include "gw/node.h"
#include "gw/port.h"

#define GW_COMMAND_MAX_PENDING 16    /* commands waiting for a reply, all nodes together */
#define GW_COMMAND_REASON_MAX 160

/* The wire values of docs/protocol.md (enum sgw_cmd_kind). */
enum gw_command_kind {
	GW_COMMAND_PROPERTY_SET = 1,
	GW_COMMAND_SERVICE = 2,
	GW_COMMAND_CONTROL = 3,
};

enum gw_command_status {
	GW_COMMAND_REPLIED,     /* the node answered: code and params are its reply */
	GW_COMMAND_ABSENT,      /* no node has this device name */
	GW_COMMAND_NO_CHANNEL,  /* the node is on a text-framing port: no command channel */
	GW_COMMAND_PORT_CLOSED, /* its port is closed, or closed while the command was pending */
	GW_COMMAND_NODE_GONE,   /* another node, or a rebooted one, took its place while pending */
	GW_COMMAND_TIMEOUT,     /* no reply within the timeout */
	GW_COMMAND_BUSY,        /* GW_COMMAND_MAX_PENDING commands are pending already */
	GW_COMMAND_INVALID,     /* the name or params cannot be carried by a command frame */
	GW_COMMAND_FAILED,      /* the port's write queue refused the frame */
	GW_COMMAND_CANCELLED,   /* the gateway is stopping */
};

struct gw_command_result {
	enum gw_command_status status;
	uint16_t code;      /* GW_COMMAND_REPLIED: the node's code (200 = success) */
	json_t *params;     /* GW_COMMAND_REPLIED: the reply's fields, mapped as telemetry is
			     * (borrowed, valid during the callback); NULL otherwise */
	const char *reason; /* never NULL: "" when replied, else why it failed */
	const char *port;   /* the node's port and id, "" when no node was found */
	const char *node;
	uint16_t cmd_id;
	uint64_t elapsed_ms;
};

typedef void (*gw_command_done_fn)(const struct gw_command_result *res, void *user_data);
/* The open port named name, or NULL when the gateway has none by that name (yet). */
typedef struct gw_port *(*gw_command_port_fn)(const char *name, void *user_data);

struct gw_command;

/* cfg and nodes are borrowed and must outlive the object. */
int gw_command_new(sd_event *event, const struct gw_config *cfg, struct gw_nodes *nodes,
		   gw_command_port_fn port_fn, void *port_ud, struct gw_command **ret);
/* Completes every pending command with GW_COMMAND_CANCELLED. Accepts NULL; returns NULL. */
struct gw_command *gw_command_free(struct gw_command *c);

/*
 * Sends a command to the node of device. kind PROPERTY_SET: name "" (or NULL); SERVICE and
 * CONTROL: the service or control name (1..31 printable ASCII). params: an object (borrowed;
 * NULL = no fields). timeout_ms > 0. done is called exactly once, possibly before this
 * returns. Returns 1 when the command is pending, 0 when it was completed already.
 */
int gw_command_send(struct gw_command *c, const char *device, enum gw_command_kind kind,
		    const char *name, json_t *params, uint32_t timeout_ms, gw_command_done_fn done,
		    void *user_data);

/* A good command-reply frame f from port: completes the matching command. Returns true when
 * one was pending, false when none was (answered too late, or never ours). */
bool gw_command_reply(struct gw_command *c, const char *port, const struct gw_frame *f);
/* The port closed: its pending commands fail with GW_COMMAND_PORT_CLOSED. */
void gw_command_port_closed(struct gw_command *c, const char *port);
/* The node at (port, addr) was replaced or rebooted: its pending commands fail with
 * GW_COMMAND_NODE_GONE. */
void gw_command_node_reset(struct gw_command *c, const char *port, uint8_t addr, const char *why);
/* Completes every pending command with GW_COMMAND_CANCELLED (the gateway is stopping). */
void gw_command_cancel_all(struct gw_command *c);
size_t gw_command_pending(const struct gw_command *c);

const char *gw_command_status_to_string(enum gw_command_status s);
const char *gw_command_kind_to_string(enum gw_command_kind k);

/*
 * Pure: encodes a command frame for node addr on port (maps of cfg apply; cfg may be NULL) as
 * it goes on the wire (COBS and the 0x00 delimiter) into out, at least SGW_MAX_WIRE bytes.
 * Returns the length, or -EINVAL (why says which member or the name cannot be carried,
 * see the top of this file), -EMSGSIZE (the fields do not fit the 240-byte payload).
 */
int gw_command_encode(const struct gw_config *cfg, const char *port, uint8_t addr, uint16_t seq,
		      uint16_t cmd_id, enum gw_command_kind kind, const char *name, json_t *params,
		      uint8_t *out, size_t cap, char *why, size_t why_size);
