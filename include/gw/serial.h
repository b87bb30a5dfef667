/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Serial ports on the event loop. One struct gw_serial per configured port: it finds the
 * device (by path, or by USB VID/PID/serial/description through libserialport's enumeration,
 * so an adapter that re-enumerates as another ttyUSBn is found again), opens it with termios
 * (one path for ttyAMA/ttyS/ttyUSB/ttyACM and ptys alike), takes an exclusive flock, and
 * delivers bytes. A device that is an active system console or has a login (a getty) on it is
 * not opened (gw/tty.h): the attempt fails with -EPERM (console) or -EBUSY (login), counts in stats.refused, and is retried
 * on the same backoff as an absent device, so the port opens once the console or getty is gone.
 * When the device goes away (EPOLLHUP/EPOLLERR, read() returning 0 or EIO) it
 * closes the fd and retries with exponential backoff (reopen_min_ms .. reopen_max_ms) on a
 * timer: no polling, no busy loop while the device is absent. The input is flushed only at the
 * first open; never at a reopen after an unplug or at gw_serial_reconfigure().
 *
 * An adapter: it never logs above debug level; it reports through callbacks and the caller
 * decides what to log.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "gw/config.h"

struct gw_serial;

enum gw_serial_state {
	GW_SERIAL_ABSENT, /* not found or not openable; a retry timer is armed */
	GW_SERIAL_OPEN,
};

struct gw_serial_stats {
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t opens;  /* successful opens */
	uint64_t closes; /* hang-ups and errors that closed the port */
	/* Open attempts refused because the device is an active system console or has a login
	 * on it (gw/tty.h), and why the last one was; "" before any. */
	uint64_t refused;
	char refused_why[192];
};

/* Bytes read from the port; buf is valid only during the call. */
typedef void (*gw_serial_data_fn)(struct gw_serial *s, const uint8_t *buf, size_t len,
				  void *user_data);
/* The port changed state. err is 0 or a negative errno saying why it is absent (e.g. -ENOENT,
 * -EBUSY when another process holds the lock, -EIO after a hang-up); device is the path that
 * was opened or tried (may be NULL when a USB match found nothing); retry_ms is the delay
 * before the next attempt when absent. */
typedef void (*gw_serial_state_fn)(struct gw_serial *s, enum gw_serial_state state, int err,
				   const char *device, uint32_t retry_ms, void *user_data);

/*
 * Creates the port and makes the first open attempt at once (reported through state_fn before
 * this returns). cfg is borrowed and must outlive the object. Returns 0, -ENOMEM, or -EINVAL
 * for an unusable config (e.g. a baud rate termios lacks).
 */
int gw_serial_new(sd_event *event, const struct gw_config_port *cfg, gw_serial_data_fn data_fn,
		  gw_serial_state_fn state_fn, void *user_data, struct gw_serial **ret);
/*
 * New settings for a port that runs (a reload): cfg replaces the one given before and is
 * borrowed the same way. When the device is open and cfg finds the same device (path and USB
 * match unchanged), the open fd is kept and only its termios change: no byte that arrived is
 * lost, nothing is flushed, and state_fn is not called; returns 0. Otherwise an open device
 * is let go and the new one is tried at once (reported through state_fn as by
 * gw_serial_new); returns 1. A driver that refuses the new line settings is treated as a
 * hang-up (state_fn reports it, retries follow) and its error returned. -EINVAL for an
 * unusable cfg (nothing changed). Not from inside its callbacks.
 */
int gw_serial_reconfigure(struct gw_serial *s, const struct gw_config_port *cfg);
/* Closes the fd, disarms timers. Accepts NULL; returns NULL. Not from inside its callbacks. */
struct gw_serial *gw_serial_free(struct gw_serial *s);

/* Queues bytes for writing (downlink commands); written when the fd is writable. Returns 0,
 * -ENOTCONN when the port is absent, or -ENOBUFS when more than 64 KiB are already queued. */
int gw_serial_write(struct gw_serial *s, const uint8_t *buf, size_t len);

/*
 * Batching (docs/performance.md): while hold is on the port is not read when bytes arrive;
 * the owner's clock reads it with gw_serial_poll(), which delivers what came through data_fn
 * (and a hang-up found through state_fn) like a wake-up would, and returns the bytes it
 * read. Writes and hang-ups are watched as ever. Not from inside its callbacks; accept NULL.
 */
void gw_serial_hold(struct gw_serial *s, bool hold);
size_t gw_serial_poll(struct gw_serial *s);

enum gw_serial_state gw_serial_get_state(const struct gw_serial *s);
const char *gw_serial_name(const struct gw_serial *s);   /* the [port NAME] */
const char *gw_serial_device(const struct gw_serial *s); /* path in use, or NULL */
const struct gw_serial_stats *gw_serial_stats(const struct gw_serial *s);

/* Pure helpers, exposed for tests. */
/* termios speed constant for baud, or 0 when termios has none. */
unsigned gw_serial_baud_to_speed(uint32_t baud);
