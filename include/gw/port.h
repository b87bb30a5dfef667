/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A configured port: the serial device plus its frame decoder. It reports decoded frames
 * (and bad ones) to its owner, logs the device coming and going, and resets the decoder
 * whenever the device is reopened so no half frame from before an unplug is glued to new
 * bytes.
 */

#include <systemd/sd-event.h>

#include "gw/config.h"
#include "gw/frame.h"
#include "gw/serial.h"

struct gw_port;

typedef void (*gw_port_frame_fn)(struct gw_port *p, const struct gw_frame *f,
				 enum gw_frame_error err, void *user_data);
typedef void (*gw_port_state_fn)(struct gw_port *p, enum gw_serial_state state, void *user_data);
/* Bytes as read from the device, before the decoder sees them. */
typedef void (*gw_port_raw_fn)(struct gw_port *p, const uint8_t *buf, size_t len, void *user_data);

/* cfg is borrowed and must outlive the port. */
int gw_port_new(sd_event *event, const struct gw_config_port *cfg, gw_port_frame_fn frame_fn,
		gw_port_state_fn state_fn, void *user_data, struct gw_port **ret);
/*
 * New settings for the port of the same name (a reload); cfg is borrowed from now on, as by
 * gw_port_new. The port object, its decoder state and its counters stay. The same device stays
 * open (only its line settings change, nothing is flushed: gw_serial_reconfigure()); a framing
 * change drops, counts and reports a partial frame first (GW_FRAME_ERR_TRUNCATED). Returns 0,
 * or -errno when the device refused the settings (then it is retried as after an unplug).
 */
int gw_port_reconfigure(struct gw_port *p, const struct gw_config_port *cfg);
/* Accepts NULL; returns NULL. A partial frame of an open port is counted and reported through
 * frame_fn (GW_FRAME_ERR_TRUNCATED) before it goes. */
struct gw_port *gw_port_free(struct gw_port *p);

/* Shows every chunk read to fn (user_data as given to gw_port_new) before decoding it; NULL
 * stops. */
void gw_port_set_raw_fn(struct gw_port *p, gw_port_raw_fn fn);

const char *gw_port_name(const struct gw_port *p);
/* The section it runs with (the last one given to gw_port_new or gw_port_reconfigure). */
const struct gw_config_port *gw_port_config(const struct gw_port *p);
enum gw_serial_state gw_port_state(const struct gw_port *p);
int gw_port_write(struct gw_port *p, const uint8_t *buf, size_t len);
/* Batching: gw_serial_hold() and gw_serial_poll() of its device; frames read by the poll
 * reach frame_fn as ever. */
void gw_port_hold(struct gw_port *p, bool hold);
size_t gw_port_poll(struct gw_port *p);
const struct gw_frame_stats *gw_port_frame_stats(const struct gw_port *p);
const struct gw_serial_stats *gw_port_serial_stats(const struct gw_port *p);
