/* SPDX-License-Identifier: MIT */
/*
 * sensorgwd: command line, start-up and shut-down order, sd_notify.
 *
 * Start: config (exit 78 on any problem, before READY) -> event loop and signals -> gateway
 * (uplinks, then ports) -> READY=1. Stop (SIGTERM/SIGINT): STOPPING=1 -> ports closed ->
 * uplinks drain what they hold (bounded) -> disconnect -> exit 0.
 *
 * Reload (SIGHUP, or `reload` on the control socket): RELOADING=1 -> the file is loaded and
 * checked completely while the running gateway goes on -> if anything is wrong, every problem
 * is logged and answered as FILE:LINE: message and nothing changes -> else the running
 * gateway applies it in place (gw_gateway_reload): ports and uplinks whose settings did not
 * change go on untouched (a port is not closed, nothing is flushed, no counter restarts),
 * changed ones get their new settings or are replaced once what they have in flight is
 * acknowledged -> READY=1. Stopping the whole gateway instead would close every port for a
 * moment, and what a UART sends meanwhile is lost. Only when the gateway cannot apply the new
 * configuration (rare: out of memory, a port that cannot be set up) is it freed and built
 * again from the previous one.
 */

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
#include "gw/uplink.h"
#include "gw/util.h"

#define STOP_TIMEOUT_USEC (1500 * 1000ULL) /* SIGTERM to exit stays under 2 s */
#define TEST_HOOKS_ENV "SENSORGW_TEST_HOOKS"

struct daemon {
	sd_event *event;
	struct gw_config *cfg; /* the running configuration */
	struct gw_gateway *gateway;
	struct gw_control *control;
	struct gw_control *old_control; /* left at a reload that moved the socket; answers its
					 * last clients, freed at the next reload or the exit */
	int cli_level; /* -l, which a reload does not override; -1 without */
	uint64_t started_us;
	bool stopping;
	bool failed; /* no gateway could be built again after a reload: exit non-zero */
	bool test_hooks;
	/* a reload under way */
	bool reloading;
	struct gw_config *next_cfg;
	struct gw_control *next_control; /* the socket at a new control_socket path */
	struct gw_control *waiter_control; /* where the client that asked waits, if one did */
	gw_control_ticket waiter;
	int reload_result; /* what gw_gateway_reload said */
	sd_event_source *apply;
	sd_event_source *log_timer; /* writes the log's pending "suppressed" summaries */
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
	       "                          file's [gateway] log_level, also after a reload)\n"
	       "  -h, --help              show this help\n"
	       "  -V, --version           show the version\n"
	       "\n"
	       "Signals: SIGTERM and SIGINT stop in order and exit 0; SIGHUP reloads the\n"
	       "configuration file (applied only when it is valid, in place: unchanged ports\n"
	       "stay open and unchanged uplinks connected, nothing spooled is lost;\n"
	       "'sensorgwctl reload' does the same and shows the problems);\n"
	       "SIGUSR1 logs the spool's and every uplink's counters.\n"
	       "See sensorgwd(8) and sensorgw.conf(5).\n",
	       GW_CONFIG_DEFAULT_PATH);
}

/* ---- reload ---- */

static void on_stopped(struct gw_gateway *g, void *ud);

static json_t *on_control(struct gw_control *c, const struct gw_control_request *req, char *why,
			  size_t why_size, void *ud);

/*
 * The line of key in [section] of path, for a problem with a value the loader accepted but a
 * reload cannot apply; 0 when it is not found (a default).
 */
static unsigned key_line(const char *path, const char *section, const char *key)
{
	FILE *f = fopen(path, "re");
	size_t klen = strlen(key), slen = strlen(section), size = 0;
	char *line = NULL;
	unsigned n = 0, found = 0;
	bool inside = false;

	while (f && getline(&line, &size, f) > 0) {
		const char *p = line + strspn(line, " \t");

		n++;
		if (*p == '[') {
			inside = strncmp(p + 1, section, slen) == 0 && p[1 + slen] == ']';
			continue;
		}
		if (inside && strncmp(p, key, klen) == 0 && p[klen] && strchr(" \t=", p[klen]))
			found = n;
	}
	free(line);
	if (f)
		fclose(f);
	return found;
}

static void add_problem(json_t *problems, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void add_problem(json_t *problems, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	(void)json_array_append_new(problems, json_string(buf));
}

/* Whether an uplink talks HTTP (libcurl): the cloud uplinks do, MQTT ones do not. */
static bool needs_http(const struct gw_config *cfg)
{
	for (size_t i = 0; i < cfg->n_uplinks; i++)
		if (cfg->uplinks[i].type != GW_UPLINK_MQTT)
			return true;
	return false;
}

/*
 * Loads the file again and checks what a reload needs beyond gw_config_load: what start-up
 * would refuse, and what cannot change under a running spool. 0 with *ret, or -errno with
 * problems filled (FILE:LINE: message each).
 */
static int reload_validate(struct daemon *d, json_t *problems, struct gw_config **ret)
{
	const char *path = d->cfg->path;
	struct gw_config *cfg = NULL;
	char *diag = NULL, *line, *save = NULL;
	size_t diag_len = 0;
	FILE *mem = open_memstream(&diag, &diag_len);
	int r;

	if (!mem)
		return -ENOMEM;
	r = gw_config_load(path, mem, &cfg);
	/* a memory stream fails to close only for want of memory, and diag may then be NULL:
	 * the problems are lost, the result of the load is not */
	if (fclose(mem) != 0 && !diag)
		add_problem(problems, "%s:0: out of memory for the problems found", path);
	for (line = diag ? strtok_r(diag, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save))
		(void)json_array_append_new(problems, json_string(line));
	free(diag);
	if (r < 0) {
		if (json_array_size(problems) == 0)
			add_problem(problems, "%s:0: cannot load: %s", path, strerror(-r));
		return r;
	}
	/* The spool and the cursors live in state_dir: moving it would strand what is queued. */
	if (strcmp(cfg->state_dir, d->cfg->state_dir) != 0)
		add_problem(problems, "%s:%u: state_dir: cannot change from %s to %s while "
			    "sensorgwd runs (the spool and the uplink cursors are there); restart "
			    "it instead", path, key_line(path, "gateway", "state_dir"),
			    d->cfg->state_dir, cfg->state_dir);
	for (size_t i = 0; i < cfg->n_uplinks; i++)
		if (!gw_uplink_driver(cfg->uplinks[i].type))
			add_problem(problems, "%s:%u: [uplink %s]: type %s is not in this build",
				    path, cfg->uplinks[i].line, cfg->uplinks[i].name,
				    gw_uplink_type_to_string(cfg->uplinks[i].type));
	/* a gateway that started MQTT-only has not loaded libcurl yet */
	if (needs_http(cfg) && gw_http_lib_init() < 0)
		add_problem(problems, "%s:0: cannot load libcurl, which the cloud uplinks need: %s",
			    path, gw_http_lib_error());
	if (json_array_size(problems) == 0 &&
	    strcmp(cfg->control_socket, d->cfg->control_socket) != 0) {
		/* listen on the new path now, so a path that cannot work refuses the reload */
		r = gw_control_new(d->event, cfg->control_socket, on_control, d, &d->next_control);
		if (r < 0)
			add_problem(problems, "%s:%u: control_socket: cannot listen on %s: %s",
				    path, key_line(path, "gateway", "control_socket"),
				    cfg->control_socket, strerror(-r));
	}
	if (json_array_size(problems) > 0) {
		d->next_control = gw_control_free(d->next_control);
		gw_config_free(cfg);
		return -EINVAL;
	}
	*ret = cfg;
	return 0;
}

static void reload_finish(struct daemon *d, bool ok, const char *error, json_t *problems)
{
	char status[256] = "";
	json_t *reply;

	d->reloading = false;
	if (d->gateway)
		gw_gateway_status(d->gateway, status, sizeof(status));
	/* after STOPPING=1 systemd hears nothing more of this reload */
	if (!d->stopping)
		(void)sd_notifyf(0, "READY=1\nSTATUS=%s%s", ok ? "" : "reload failed; ", status);
	if (ok)
		gw_log(LOG_NOTICE, "configuration %s reloaded: %zu port(s), %zu uplink(s), %zu "
		       "map(s)", d->cfg->path, d->cfg->n_ports, d->cfg->n_uplinks, d->cfg->n_maps);
	if (!d->waiter) {
		json_decref(problems);
		return;
	}
	reply = json_pack("{s:b,s:s,s:I,s:I,s:I,s:o}", "ok", ok, "config", d->cfg->path,
			  "ports", (json_int_t)d->cfg->n_ports, "uplinks",
			  (json_int_t)d->cfg->n_uplinks, "maps", (json_int_t)d->cfg->n_maps,
			  "problems", problems ? problems : json_array());
	if (reply && !ok)
		(void)json_object_set_new(reply, "error", json_string(error));
	(void)gw_control_complete(d->waiter_control, d->waiter, reply, error);
	d->waiter = 0;
	d->waiter_control = NULL;
}

static int gateway_build(struct daemon *d)
{
	int r = gw_gateway_new(d->event, d->cfg, d->started_us, &d->gateway);

	if (r >= 0)
		r = gw_gateway_start(d->gateway);
	if (r < 0)
		d->gateway = gw_gateway_free(d->gateway);
	else
		gw_gateway_set_tail(d->gateway, d->control); /* NULL at the start: set below */
	return r;
}

/* Runs from a timer: the gateway's callback that got us here has returned. */
static int reload_apply(sd_event_source *s, uint64_t usec, void *ud)
{
	struct daemon *d = ud;
	struct gw_config *old = d->cfg;
	json_t *problems;
	int r = d->reload_result;

	d->apply = sd_event_source_disable_unref(d->apply);
	if (r < 0) {
		/* rare: the gateway could not apply what the loader accepted; it takes no more
		 * records. Build it again from the previous configuration, which worked. */
		gw_log(LOG_ERR, "cannot apply the new configuration %s: %s (see the lines above); "
		       "going back to the previous one", d->next_cfg->path, strerror(-r));
		problems = json_array();
		add_problem(problems, "%s:0: cannot apply it: %s (see the daemon's log)",
			    d->next_cfg->path, strerror(-r));
		d->gateway = gw_gateway_free(d->gateway);
		d->next_cfg = gw_config_free(d->next_cfg);
		d->next_control = gw_control_free(d->next_control);
		if (d->stopping) {
			reload_finish(d, false, "sensorgwd is stopping; the reload was not applied",
				      problems);
			return sd_event_exit(d->event, 0);
		}
		r = gateway_build(d);
		if (r < 0) {
			gw_log(LOG_ERR, "cannot start again with the previous configuration either: "
			       "%s; exiting", strerror(-r));
			d->failed = true;
			reload_finish(d, false, "cannot start with the new or the previous "
				      "configuration; sensorgwd exits", problems);
			return sd_event_exit(d->event, 0);
		}
		reload_finish(d, false, "the new configuration cannot start; the previous one "
			      "runs again", problems);
		return 0;
	}
	/* the gateway runs with it: it holds its own references to what it uses */
	d->cfg = d->next_cfg;
	d->next_cfg = NULL;
	gw_config_free(old);
	gw_log_set_level(d->cli_level >= 0 ? d->cli_level : d->cfg->log_level);
	if (d->next_control) {
		/* the waiting client, if any, is on the old socket: answer it there */
		gw_control_free(d->old_control);
		d->old_control = d->control;
		gw_control_stop_listening(d->old_control);
		d->control = d->next_control;
		d->next_control = NULL;
		gw_gateway_set_tail(d->gateway, d->control);
		gw_log(LOG_INFO, "control socket moved to %s", d->cfg->control_socket);
	}
	reload_finish(d, true, NULL, NULL);
	/* SIGTERM while the reload was under way: now is the stop */
	if (d->stopping)
		gw_gateway_stop(d->gateway, STOP_TIMEOUT_USEC, on_stopped, d);
	return 0;
}

static void on_reloaded(struct gw_gateway *g, int r, void *ud)
{
	struct daemon *d = ud;

	d->reload_result = r;
	/* Not here: this may run inside the gateway (or an uplink) that reload_apply frees. A
	 * timer rather than a defer source: events already waiting (a second reload request)
	 * are dispatched first, and find the reload under way. */
	if (sd_event_add_time_relative(d->event, &d->apply, CLOCK_MONOTONIC, 0, 0, reload_apply,
				       d) < 0) {
		gw_log(LOG_ERR, "cannot schedule the reload: out of memory; exiting");
		d->failed = true;
		(void)sd_event_exit(d->event, 0);
	}
}

/*
 * Starts a reload; waiter is the control client waiting for the outcome (0: SIGHUP). Returns
 * -EBUSY, without doing anything, while a reload or a stop is under way.
 */
static int reload_start(struct daemon *d, struct gw_control *waiter_control,
			gw_control_ticket waiter)
{
	json_t *problems;
	int r;

	if (d->stopping || d->reloading)
		return -EBUSY;
	d->reloading = true;
	d->waiter_control = waiter_control;
	d->waiter = waiter;
	/* MONOTONIC_USEC: systemd 253+ matches RELOADING=1 to the reload it asked for */
	(void)sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
			 (unsigned long long)gw_now_mono_us(), d->cfg->path);
	gw_log(LOG_INFO, "reloading the configuration %s", d->cfg->path);
	problems = json_array();
	r = reload_validate(d, problems, &d->next_cfg);
	if (r < 0) {
		size_t i;
		json_t *v;

		json_array_foreach(problems, i, v)
			gw_log(LOG_ERR, "%s", json_string_value(v));
		gw_log(LOG_ERR, "configuration %s is not valid (%zu problem(s)); the running "
		       "configuration is kept", d->cfg->path, json_array_size(problems));
		reload_finish(d, false, "the configuration is not valid; the running "
			      "configuration is kept", problems);
		return 0;
	}
	json_decref(problems);
	r = gw_gateway_reload(d->gateway, d->next_cfg, STOP_TIMEOUT_USEC, on_reloaded, d);
	if (r < 0)
		on_reloaded(d->gateway, r, d);
	return 0;
}

/* ---- the control socket ---- */

/* A test hook: the loop does nothing for ms, as a hung loop would (WATCHDOG=1 stops). */
static json_t *debug_stall(struct daemon *d, uint32_t ms, char *why, size_t why_size)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	if (!d->test_hooks) {
		snprintf(why, why_size, "debug-stall is a test hook: it needs %s=1 in sensorgwd's "
			 "environment", TEST_HOOKS_ENV);
		return NULL;
	}
	gw_log(LOG_NOTICE, "test hook: the loop stalls for %u ms", ms);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	gw_log(LOG_NOTICE, "test hook: the stall is over");
	return json_pack("{s:I}", "stalled_ms", (json_int_t)ms);
}

static json_t *control_json(const struct gw_control *c)
{
	struct gw_control_stats st;

	gw_control_get_stats(c, &st);
	return json_pack("{s:I,s:I,s:I}", "tail_clients", (json_int_t)st.streams, "tail_events",
			 (json_int_t)st.stream_events, "tail_dropped",
			 (json_int_t)st.stream_dropped);
}

static json_t *on_control(struct gw_control *c, const struct gw_control_request *req, char *why,
			  size_t why_size, void *ud)
{
	struct daemon *d = ud;
	json_t *o = NULL;

	switch (req->command) {
	case GW_CONTROL_STATUS:
		if (!d->gateway) {
			snprintf(why, why_size, "busy: no gateway runs at this moment");
			return NULL;
		}
		o = gw_gateway_status_json(d->gateway);
		if (!o)
			break;
		(void)json_object_set_new(o, "pid", json_integer(getpid()));
		(void)json_object_set_new(o, "config", json_string(d->cfg->path));
		(void)json_object_set_new(o, "control", control_json(d->control));
		break;
	case GW_CONTROL_VERSION:
		o = json_pack("{s:s}", "version", GW_VERSION);
		break;
	case GW_CONTROL_RELOAD:
		if (d->stopping || d->reloading) {
			snprintf(why, why_size, "busy: %s", d->stopping ? "sensorgwd is stopping" :
				 "a reload is already under way");
			return NULL;
		}
		(void)reload_start(d, c, gw_control_defer(c));
		return NULL; /* answered by reload_finish, maybe already */
	case GW_CONTROL_DEBUG_STALL:
		return debug_stall(d, req->ms, why, why_size);
	case GW_CONTROL_TAIL:
		break; /* the control socket serves it itself */
	}
	if (!o)
		snprintf(why, why_size, "out of memory");
	return o;
}

/* ---- the log's summaries of suppressed lines (gw/log.h) ---- */

/* From inside gw_log: a summary is due at due_us. Must not log. */
static void log_pending(uint64_t due_us, void *ud)
{
	struct daemon *d = ud;
	int enabled = SD_EVENT_OFF;
	uint64_t armed = 0;

	if (!d->log_timer)
		return;
	(void)sd_event_source_get_enabled(d->log_timer, &enabled);
	if (enabled != SD_EVENT_OFF && sd_event_source_get_time(d->log_timer, &armed) >= 0 &&
	    armed <= due_us)
		return;
	(void)sd_event_source_set_time(d->log_timer, due_us);
	(void)sd_event_source_set_enabled(d->log_timer, SD_EVENT_ONESHOT);
}

static int log_flush(sd_event_source *s, uint64_t usec, void *ud)
{
	uint64_t next = gw_log_flush_suppressed(gw_now_mono_us());

	if (next) {
		(void)sd_event_source_set_time(s, next);
		(void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	}
	return 0;
}

/* ---- signals ---- */

static void on_stopped(struct gw_gateway *g, void *ud)
{
	struct daemon *d = ud;

	(void)sd_event_exit(d->event, 0);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
	struct daemon *d = ud;

	if (si->ssi_signo == SIGUSR1) {
		if (d->gateway)
			gw_gateway_log_stats(d->gateway);
		return 0;
	}
	if (si->ssi_signo == SIGHUP) {
		if (reload_start(d, NULL, 0) == -EBUSY)
			gw_log(LOG_NOTICE, "SIGHUP ignored: %s", d->stopping ?
			       "sensorgwd is stopping" : "a reload is already under way");
		return 0;
	}
	if (d->stopping) {
		gw_log(LOG_NOTICE, "second stop signal: exiting now");
		return sd_event_exit(d->event, 0);
	}
	d->stopping = true;
	gw_log(LOG_INFO, "%s received, stopping", strsignal((int)si->ssi_signo));
	(void)sd_notify(0, "STOPPING=1");
	/* during a reload the gateway is busy with it; reload_apply sees d->stopping and stops */
	if (!d->reloading)
		gw_gateway_stop(d->gateway, STOP_TIMEOUT_USEC, on_stopped, d);
	return 0;
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
	const char *hooks;
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
	d.cli_level = cli_level;
	hooks = getenv(TEST_HOOKS_ENV);
	d.test_hooks = hooks && strcmp(hooks, "1") == 0;
	if (d.test_hooks)
		gw_log(LOG_WARNING, "%s=1: test hooks are on (debug-stall); never in production",
		       TEST_HOOKS_ENV);

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
	/* Summaries of suppressed log lines are written when their window ends, whether or not
	 * the message comes back; the timer is armed when one is due. */
	if (sd_event_add_time(d.event, &d.log_timer, CLOCK_MONOTONIC, 0, 100000, log_flush, &d) >=
	    0) {
		(void)sd_event_source_set_enabled(d.log_timer, SD_EVENT_OFF);
		gw_log_set_pending_fn(log_pending, &d);
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
	cfg = NULL; /* d.cfg from here: a reload replaces it */
	d.started_us = gw_now_mono_us();
	r = gateway_build(&d);
	if (r < 0) {
		gw_log(LOG_ERR, "cannot start: %s", strerror(-r));
		goto out;
	}
	/* Status is a convenience: without the socket the daemon still does its job. */
	(void)gw_control_new(d.event, d.cfg->control_socket, on_control, &d, &d.control);
	gw_gateway_set_tail(d.gateway, d.control);
	gw_log(LOG_INFO, "sensorgwd %s started: %zu port(s), %zu uplink(s)", GW_VERSION,
	       d.cfg->n_ports, d.cfg->n_uplinks);
	(void)sd_notify(0, "READY=1");

	r = sd_event_loop(d.event);
	if (r < 0) {
		gw_log(LOG_ERR, "event loop failed: %s", strerror(-r));
		goto out;
	}
	exit_code = d.failed ? EXIT_FAILURE : EXIT_SUCCESS;
	if (d.gateway)
		gw_gateway_log_stats(d.gateway);
	gw_log_flush_suppressed(UINT64_MAX);
	gw_log(LOG_INFO, "stopped");
out:
	d.apply = sd_event_source_disable_unref(d.apply);
	if (d.gateway)
		gw_gateway_set_tail(d.gateway, NULL); /* its closing ports report to no one */
	d.next_control = gw_control_free(d.next_control);
	d.old_control = gw_control_free(d.old_control);
	d.control = gw_control_free(d.control);
	d.gateway = gw_gateway_free(d.gateway);
	/* what the last bursts suppressed is said before exiting, whatever the way out */
	gw_log_set_pending_fn(NULL, NULL);
	gw_log_flush_suppressed(UINT64_MAX);
	d.log_timer = sd_event_source_disable_unref(d.log_timer);
	gw_http_lib_cleanup(); /* nothing when libcurl was not loaded */
	gw_mqtt_lib_cleanup();
	d.event = sd_event_unref(d.event);
	gw_config_free(d.next_cfg);
	gw_config_free(d.cfg);
	gw_config_free(cfg);
	return exit_code;
}
