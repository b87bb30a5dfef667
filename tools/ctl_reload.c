/* SPDX-License-Identifier: MIT */
/*
 * sensorgwctl reload: asks the running daemon over its control socket (gw/control.h) to load
 * its configuration file again, and prints the outcome: what runs now, or every problem as
 * FILE:LINE: message (the daemon keeps its running configuration then).
 */

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "gw/config.h"

#define RELOAD_CMD "reload"
#define RELOAD_SYNOPSIS "sensorgwctl reload [--json] [--socket PATH]"
/* Far above a reload's drain (1.5 s) and a new gateway's set-up. */
#define RELOAD_TIMEOUT_MS 30000

static void reload_help(void)
{
	printf("Usage: " RELOAD_SYNOPSIS "\n"
	       "Make the running sensorgwd load its configuration file again, as SIGHUP does,\n"
	       "and show the outcome. A file with any problem is not applied: the problems are\n"
	       "printed as FILE:LINE: message and the exit status is 1.\n\n"
	       "  -j, --json         print the daemon's JSON answer\n"
	       "  -s, --socket PATH  the control socket (default %s; [gateway]\n"
	       "                     control_socket in sensorgw.conf)\n"
	       "  -h, --help         show this help\n",
	       GW_CONFIG_DEFAULT_CONTROL_SOCKET);
}

int ctl_reload(int argc, char **argv)
{
	const char *path;
	bool json_out, ok;
	char *reply = NULL;
	size_t i;
	json_t *o, *v;
	int r;

	r = ctl_socket_options(argc, argv, RELOAD_CMD, RELOAD_SYNOPSIS, reload_help, &path,
			       &json_out);
	if (r >= 0)
		return r;
	if (ctl_ask_object(RELOAD_CMD, path, "reload\n", RELOAD_TIMEOUT_MS, &o, &reply) < 0)
		return EXIT_FAILURE;
	ok = json_is_true(json_object_get(o, "ok"));
	if (json_out) {
		fputs(reply, stdout);
	} else if (ok) {
		printf("sensorgwd reloaded %s: %" JSON_INTEGER_FORMAT " port(s), %"
		       JSON_INTEGER_FORMAT " uplink(s), %" JSON_INTEGER_FORMAT " map(s)\n",
		       ctl_str(o, "config", "?"), json_integer_value(json_object_get(o, "ports")),
		       json_integer_value(json_object_get(o, "uplinks")),
		       json_integer_value(json_object_get(o, "maps")));
	} else {
		ctl_error(RELOAD_CMD, "%s", ctl_str(o, "error", "refused, no reason given"));
		json_array_foreach(json_object_get(o, "problems"), i, v)
			fprintf(stderr, "%s\n", json_string_value(v) ? json_string_value(v) : "?");
	}
	json_decref(o);
	free(reply);
	return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
