/* SPDX-License-Identifier: MIT */
/*
 * sensorgwctl metrics: asks the running daemon for its status over the control socket and
 * prints it as Prometheus metrics in the text exposition format (gw/metrics.h,
 * docs/metrics.md), for a scrape through a wrapper or node_exporter's textfile collector.
 */

#include <stdio.h>
#include <stdlib.h>

#include "ctl.h"
#include "gw/config.h"
#include "gw/metrics.h"

#define METRICS_CMD "metrics"
#define METRICS_SYNOPSIS "sensorgwctl metrics [--socket PATH]"
#define TIMEOUT_MS 5000

static void metrics_help(void)
{
	printf("Usage: " METRICS_SYNOPSIS "\n"
	       "Print the running sensorgwd's counters and gauges as Prometheus metrics (text\n"
	       "exposition format; docs/metrics.md lists the series).\n\n"
	       "  -s, --socket PATH  the control socket (default %s; [gateway]\n"
	       "                     control_socket in sensorgw.conf)\n"
	       "  -h, --help         show this help\n",
	       GW_CONFIG_DEFAULT_CONTROL_SOCKET);
}

int ctl_metrics(int argc, char **argv)
{
	const char *path;
	bool json_out;
	char *reply = NULL, *text = NULL;
	size_t len = 0;
	json_t *st;
	int r;

	r = ctl_socket_options(argc, argv, METRICS_CMD, METRICS_SYNOPSIS, metrics_help, &path,
			       &json_out);
	if (r >= 0)
		return r;
	if (json_out)
		return ctl_usage_error(METRICS_CMD, METRICS_SYNOPSIS,
				       "--json is not an option here: 'sensorgwctl status --json' "
				       "prints the status as JSON");
	if (ctl_ask_object(METRICS_CMD, path, "status\n", TIMEOUT_MS, &st, &reply) < 0)
		return EXIT_FAILURE;
	free(reply);
	if (!json_is_true(json_object_get(st, "ok"))) {
		ctl_error(METRICS_CMD, "sensorgwd refused: %s",
			  ctl_str(st, "error", "no reason given"));
		json_decref(st);
		return EXIT_FAILURE;
	}
	r = gw_metrics_format(st, &text, &len);
	json_decref(st);
	if (r < 0) {
		ctl_error(METRICS_CMD, "cannot format the metrics: out of memory");
		return EXIT_FAILURE;
	}
	fwrite(text, 1, len, stdout);
	free(text);
	return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
