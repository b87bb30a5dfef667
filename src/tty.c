/* SPDX-License-Identifier: MIT */
/* Is a tty the system console or a login's line? See gw/tty.h for the signals and why. */

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utmp.h>

#include "gw/tty.h"

const char *gw_tty_use_to_string(enum gw_tty_use u)
{
	switch (u) {
	case GW_TTY_FREE:
		return "free";
	case GW_TTY_CONSOLE:
		return "console";
	case GW_TTY_LOGIN:
		return "login";
	}
	return "?";
}

/* Whether name ("ttyS0", "pts/3") is among the active consoles in the file at path. */
static bool tty_is_console(const char *name, const char *path, char *list, size_t list_size)
{
	FILE *f = fopen(path, "re");
	char *tok, *save = NULL;
	bool vt, found = false;
	size_t n;

	list[0] = '\0';
	if (!f)
		return strcmp(name, "console") == 0;
	n = fread(list, 1, list_size - 1, f);
	fclose(f);
	list[n] = '\0';
	list[strcspn(list, "\n")] = '\0';
	/* a virtual terminal ttyN: "tty0" in the list means the foreground one, whichever it is */
	vt = strncmp(name, "tty", 3) == 0 && name[3] >= '0' && name[3] <= '9' &&
	     strspn(name + 3, "0123456789") == strlen(name + 3);
	{
		char copy[256];

		snprintf(copy, sizeof(copy), "%s", list);
		for (tok = strtok_r(copy, " \t", &save); tok && !found;
		     tok = strtok_r(NULL, " \t", &save))
			found = strcmp(tok, name) == 0 || (vt && strcmp(tok, "tty0") == 0);
	}
	return found || strcmp(name, "console") == 0;
}

static bool pid_alive(pid_t pid)
{
	/* EPERM: it exists but is not ours (a getty runs as root) */
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* The pid of a live getty or session on line name per the utmp file at path, or 0. */
static pid_t tty_login_pid(const char *name, const char *path)
{
	FILE *f;
	struct utmp u;
	pid_t pid = 0;

	if (strlen(name) >= sizeof(u.ut_line))
		return 0;
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (!pid && fread(&u, sizeof(u), 1, f) == 1) {
		if (u.ut_type != INIT_PROCESS && u.ut_type != LOGIN_PROCESS &&
		    u.ut_type != USER_PROCESS)
			continue;
		if (strncmp(u.ut_line, name, sizeof(u.ut_line)) != 0)
			continue;
		if (pid_alive(u.ut_pid))
			pid = u.ut_pid;
	}
	fclose(f);
	return pid;
}

int gw_tty_use(const char *device, const struct gw_tty_sources *src, char *why, size_t why_size)
{
	const char *active = src && src->console_active ? src->console_active :
							  GW_TTY_CONSOLE_ACTIVE;
	const char *utmp = src && src->utmp ? src->utmp : _PATH_UTMP;
	char *real = realpath(device, NULL), list[256];
	const char *name;
	int r = GW_TTY_FREE;
	pid_t pid;

	if (!real)
		return -errno;
	name = strncmp(real, "/dev/", 5) == 0 ? real + 5 : real;
	if (tty_is_console(name, active, list, sizeof(list))) {
		if (why)
			snprintf(why, why_size, "%s is an active system console (%s: %s)", real,
				 active, list);
		r = GW_TTY_CONSOLE;
	} else if ((pid = tty_login_pid(name, utmp)) > 0) {
		if (why)
			snprintf(why, why_size, "%s has a login on it (a getty or a session, pid %ld, "
				 "in %s)", real, (long)pid, utmp);
		r = GW_TTY_LOGIN;
	}
	free(real);
	return r;
}
