/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Whether a tty belongs to someone else: the active system console, or the line of a login (a
 * getty waiting for a user, or a user's session). sensorgwd never opens such a tty: reading it
 * would take the console's or the getty's input, and a getty hangs up whoever else holds its
 * line (on a Raspberry Pi /dev/ttyAMA0 or /dev/ttyS0, behind /dev/serial0, often is the serial
 * console with a getty on it).
 *
 * The signals, read afresh at every call:
 *   - the console: the names in /sys/class/tty/console/active ("tty0 ttyS0"), the kernel's
 *     list of active consoles; "tty0" stands for every virtual terminal /dev/ttyN;
 *   - a login: a record in utmp (/run/utmp) for the line, of type INIT_PROCESS (systemd starting
 *     a getty with UtmpIdentifier=), LOGIN_PROCESS (a getty waiting) or USER_PROCESS (a session),
 *     whose process still exists. A getty's end is recorded there as DEAD_PROCESS, so a line
 *     whose getty was stopped is free again at once; the tty's owner and mode (agetty makes it
 *     root:tty 0620) are not used, because they stay so after the getty is gone.
 * A source that cannot be read (no sysfs, no utmp: a container) counts as "not in use".
 *
 * Pure apart from reading those two files and kill(pid, 0); no logging.
 */

#include <stddef.h>

enum gw_tty_use {
	GW_TTY_FREE = 0,
	GW_TTY_CONSOLE, /* an active system console */
	GW_TTY_LOGIN,   /* a getty or a session is on it */
};

#define GW_TTY_CONSOLE_ACTIVE "/sys/class/tty/console/active"

/* Where to look; NULL members (or a NULL struct) mean the system's files. For tests. */
struct gw_tty_sources {
	const char *console_active; /* default GW_TTY_CONSOLE_ACTIVE */
	const char *utmp;           /* default _PATH_UTMP (/var/run/utmp) */
};

/*
 * Whether device (a path; symlinks such as /dev/serial0 and /dev/serial/by-id/... are resolved
 * to the device they name) is an active console or has a login on it. Returns a
 * enum gw_tty_use; for anything but GW_TTY_FREE, why (may be NULL) gets one sentence naming the
 * device and the reason, e.g. "ttyAMA0 is an active system console (/sys/class/tty/console/
 * active: ttyAMA0)". -errno when device cannot be resolved (realpath).
 */
int gw_tty_use(const char *device, const struct gw_tty_sources *src, char *why, size_t why_size);

const char *gw_tty_use_to_string(enum gw_tty_use u); /* "free", "console", "login" */
