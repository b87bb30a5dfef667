/* SPDX-License-Identifier: MIT */
/*
 * sensorgwd: command line, start-up and shut-down order, sd_notify.
 *
 * Start: config (exit 78 on any problem, before READY) -> event loop and signals -> gateway
 * (uplinks, then ports) -> READY=1. Stop (SIGTERM/SIGINT): STOPPING=1 -> ports closed ->
 * uplinks drain what they hold (bounded) -> disconnect -> exit 0.
 */

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "gw-build.h"
#include "gw/config.h"
#include "gw/control.h"
#include "gw/gateway.h"
#include "gw/http.h"
#include "gw/log.h"
#include "gw/mqtt.h"
#include "gw/util.h"

#define STOP_TIMEOUT_USEC (1500 * 1000ULL) /* SIGTERM to exit stays under 2 s */

struct daemon {
	sd_event *event;
	const struct gw_config *cfg;
	struct gw_gateway *gateway;
	struct gw_control *control;
	uint64_t started_us;
	bool stopping;
};

static void help(void)
{
	printf("Usage: sensorgwd [OPTIONS]\n"
	       "\n"
	       "Reads sensor frames from STM32 nodes on serial ports and delivers them as JSON\n"
	       "to MQTT uplinks.\n"
	       "\n"
	       "Options:\n"
	       "  -c, --config FILE       configuration file (default %s)\n"
	       "      --check-config      check the configuration, print every problem as\n"
	       "                          FILE:LINE: message, exit 0 if valid and 78 if not\n"
	       "  -l, --log-level LEVEL   error, warning, notice, info or debug (overrides the\n"
	       "                          file's [gateway] log_level)\n"
	       "  -h, --help              show this help\n"
	       "  -V, --version           show the version\n"
	       "\n"
	       "Signals: SIGTERM and SIGINT stop in order and exit 0; SIGUSR1 logs the spool's\n"
	       "and every uplink's counters; SIGHUP is reserved for reloading the configuration.\n"
	       "See sensorgwd(8) and sensorgw.conf(5).\n",
	       GW_CONFIG_DEFAULT_PATH);
}

static json_t *on_control(const struct gw_control_request *req, char *why, size_t why_size,
			  void *ud)
{
	struct daemon *d = ud;
	json_t *o = NULL;

	switch (req->command) {
	case GW_CONTROL_STATUS:
		o = gw_gateway_status_json(d->gateway);
		if (!o)
			break;
		(void)json_object_set_new(o, "version", json_string(GW_VERSION));
		(void)json_object_set_new(o, "pid", json_integer(getpid()));
		(void)json_object_set_new(o, "config", json_string(d->cfg->path));
		(void)json_object_set_new(o, "uptime_ms", json_integer((json_int_t)
			((gw_now_mono_us() - d->started_us) / 1000)));
		break;
	case GW_CONTROL_VERSION:
		o = json_pack("{s:s}", "version", GW_VERSION);
		break;
	}
	if (!o)
		snprintf(why, why_size, "out of memory");
	return o;
}

static void on_stopped(struct gw_gateway *g, void *ud)
{
	struct daemon *d = ud;

	(void)sd_event_exit(d->event, 0);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
	struct daemon *d = ud;

	if (si->ssi_signo == SIGUSR1) {
		gw_gateway_log_stats(d->gateway);
		return 0;
	}
	if (si->ssi_signo == SIGHUP) {
		/* Reload is not part of this version: keep running on the config we have. */
		gw_log(LOG_NOTICE, "SIGHUP received: configuration reload is not supported by this "
		       "version; running configuration kept");
		return 0;
	}
	if (d->stopping) {
		gw_log(LOG_NOTICE, "second stop signal: exiting now");
		return sd_event_exit(d->event, 0);
	}
	d->stopping = true;
	gw_log(LOG_INFO, "%s received, stopping", strsignal((int)si->ssi_signo));
	(void)sd_notify(0, "STOPPING=1");
	gw_gateway_stop(d->gateway, STOP_TIMEOUT_USEC, on_stopped, d);
	return 0;
}

/* Whether an uplink talks HTTP (libcurl): the cloud uplinks do, MQTT ones do not. */
static bool needs_http(const struct gw_config *cfg)
{
	for (size_t i = 0; i < cfg->n_uplinks; i++)
		if (cfg->uplinks[i].type != GW_UPLINK_MQTT)
			return true;
	return false;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = GW_CONFIG_DEFAULT_PATH;
	bool check_only = false;
	int cli_level = -1;
	struct gw_config *cfg = NULL;
	struct daemon d = { 0 };
	sigset_t mask;
	int exit_code = EXIT_FAILURE;
	int opt, r;

	gw_log_init("sensorgwd");
	while ((opt = getopt_long(argc, argv, "c:l:hV", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'C':
			check_only = true;
			break;
		case 'l':
			cli_level = gw_log_level_from_string(optarg);
			if (cli_level < 0) {
				fprintf(stderr, "sensorgwd: unknown log level '%s' (error, warning, "
						"notice, info, debug)\n", optarg);
				return 2;
			}
			break;
		case 'h':
			help();
			return EXIT_SUCCESS;
		case 'V':
			printf("sensorgwd %s\n", GW_VERSION);
			return EXIT_SUCCESS;
		default:
			fprintf(stderr, "Try 'sensorgwd --help'.\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sensorgwd: unexpected argument '%s'\nTry 'sensorgwd --help'.\n",
			argv[optind]);
		return 2;
	}

	r = gw_config_load(config_path, stderr, &cfg);
	if (check_only) {
		if (r < 0)
			return GW_CONFIG_EX_CONFIG;
		printf("%s: configuration is valid (%zu port(s), %zu uplink(s), %zu map(s))\n",
		       config_path, cfg->n_ports, cfg->n_uplinks, cfg->n_maps);
		gw_config_free(cfg);
		return EXIT_SUCCESS;
	}
	if (r < 0) {
		gw_log(LOG_ERR, "configuration %s is not valid (see the lines above); not starting",
		       config_path);
		(void)sd_notifyf(0, "STATUS=configuration %s is not valid\nERRNO=%d", config_path,
				 -r);
		return GW_CONFIG_EX_CONFIG;
	}
	gw_log_set_level(cli_level >= 0 ? cli_level : cfg->log_level);

	/* Signals are taken through signalfd only: block them before anything else runs. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	/* A broker that closes the socket must not kill us on the next TLS write. */
	signal(SIGPIPE, SIG_IGN);

	r = sd_event_default(&d.event);
	if (r < 0) {
		gw_log(LOG_ERR, "cannot create the event loop: %s", strerror(-r));
		goto out;
	}
	if (sd_event_add_signal(d.event, NULL, SIGTERM, on_signal, &d) < 0 ||
	    sd_event_add_signal(d.event, NULL, SIGINT, on_signal, &d) < 0 ||
	    sd_event_add_signal(d.event, NULL, SIGHUP, on_signal, &d) < 0 ||
	    sd_event_add_signal(d.event, NULL, SIGUSR1, on_signal, &d) < 0) {
		gw_log(LOG_ERR, "cannot watch signals");
		goto out;
	}
	/* WATCHDOG=1 from the loop itself: it stops when the loop stops making progress. */
	(void)sd_event_set_watchdog(d.event, true);

	gw_mqtt_lib_init();
	/* libcurl and its dependencies (GnuTLS, Kerberos, LDAP, ...) are loaded only for a cloud
	 * uplink: about 3 MiB of resident memory an MQTT-only gateway does not need. */
	if (needs_http(cfg) && gw_http_lib_init() < 0) {
		gw_log(LOG_ERR, "cannot load libcurl, which the cloud uplinks need: %s",
		       gw_http_lib_error());
		goto out;
	}
	d.cfg = cfg;
	d.started_us = gw_now_mono_us();
	r = gw_gateway_new(d.event, cfg, &d.gateway);
	if (r >= 0)
		r = gw_gateway_start(d.gateway);
	if (r < 0) {
		gw_log(LOG_ERR, "cannot start: %s", strerror(-r));
		goto out;
	}
	/* Status is a convenience: without the socket the daemon still does its job. */
	(void)gw_control_new(d.event, cfg->control_socket, on_control, &d, &d.control);
	gw_log(LOG_INFO, "sensorgwd %s started: %zu port(s), %zu uplink(s)", GW_VERSION,
	       cfg->n_ports, cfg->n_uplinks);
	(void)sd_notify(0, "READY=1");

	r = sd_event_loop(d.event);
	if (r < 0) {
		gw_log(LOG_ERR, "event loop failed: %s", strerror(-r));
		goto out;
	}
	exit_code = EXIT_SUCCESS;
	gw_gateway_log_stats(d.gateway);
	gw_log(LOG_INFO, "stopped");
out:
	d.control = gw_control_free(d.control);
	d.gateway = gw_gateway_free(d.gateway);
	gw_http_lib_cleanup(); /* nothing when libcurl was not loaded */
	gw_mqtt_lib_cleanup();
	d.event = sd_event_unref(d.event);
	gw_config_free(cfg);
	return exit_code;
}
