/* SPDX-License-Identifier: MIT */
/*
 * sensorgwctl top: a full-screen view of the running daemon, redrawn every second: each port's
 * frame rate and bad frames (with the last reason), each uplink's state and backlog, and each
 * node's frame rate, bad frames and last values with a sparkline of the last minute per field.
 * The values come from the tail stream (ctl_live.c), the counters from a status request each
 * second. When stdout is not a terminal the same screen is printed as plain lines, one block
 * a second, with no escape sequences.
 */

#include <errno.h>
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "gw/config.h"

#define TOP_CMD "top"
#define TOP_SYNOPSIS "sensorgwctl top [--iterations N] [--socket PATH]"
#define SPARK 60 /* seconds of history per field */
#define NODES_MAX 64
#define FIELDS_MAX 16
#define PORTS_MAX 16
#define ASK_TIMEOUT_MS 2000

struct field {
	char key[32];
	char last[24];
	double v[SPARK];
	int64_t at[SPARK]; /* the second each slot holds */
};

struct node {
	char id[64];
	size_t n_fields;
	struct field fields[FIELDS_MAX];
	json_int_t frames; /* at the last status */
	double rate;
};

struct port_bad {
	char port[32];
	char why[96];
};

struct top {
	size_t n_nodes;
	struct node nodes[NODES_MAX];
	size_t n_ports;
	struct port_bad bad[PORTS_MAX];
	json_int_t port_frames[PORTS_MAX];
	double port_rate[PORTS_MAX];
	json_t *status;
	char status_error[160];
	int64_t status_ms; /* when it was taken (monotonic) */
	uint64_t dropped;  /* events the daemon dropped for us */
	bool utf8;
	/* the screen being built */
	char **lines;
	size_t n_lines, cap_lines;
	int cols, rows;
};

static void top_help(void)
{
	printf("Usage: " TOP_SYNOPSIS "\n"
	       "A full-screen view of the running sensorgwd, redrawn every second: ports, uplinks\n"
	       "and nodes with their last values and a sparkline of the last minute. Ends on q or\n"
	       "Ctrl-C. When standard output is not a terminal, prints the view as plain lines.\n\n"
	       "  -n, --iterations N  stop after N screens (default: until q or Ctrl-C)\n"
	       "  -s, --socket PATH   the control socket (default %s; [gateway]\n"
	       "                      control_socket in sensorgw.conf)\n"
	       "  -h, --help          show this help\n",
	       GW_CONFIG_DEFAULT_CONTROL_SOCKET);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct node *node_get(struct top *t, const char *id)
{
	struct node *n;

	for (size_t i = 0; i < t->n_nodes; i++)
		if (!strcmp(t->nodes[i].id, id))
			return &t->nodes[i];
	if (t->n_nodes == NODES_MAX)
		return NULL;
	n = &t->nodes[t->n_nodes++];
	memset(n, 0, sizeof(*n));
	snprintf(n->id, sizeof(n->id), "%s", id);
	return n;
}

static struct field *field_get(struct node *n, const char *key)
{
	struct field *f;

	for (size_t i = 0; i < n->n_fields; i++)
		if (!strcmp(n->fields[i].key, key))
			return &n->fields[i];
	if (n->n_fields == FIELDS_MAX)
		return NULL;
	f = &n->fields[n->n_fields++];
	memset(f, 0, sizeof(*f));
	snprintf(f->key, sizeof(f->key), "%s", key);
	for (size_t i = 0; i < SPARK; i++)
		f->at[i] = -1;
	return f;
}

static void on_event(struct top *t, const json_t *ev, int64_t now_s)
{
	const char *kind = ctl_str(ev, "event", ""), *id = ctl_str(ev, "node", NULL), *key;
	struct node *n;
	json_t *v;

	if (!strcmp(kind, "dropped")) {
		t->dropped += (uint64_t)json_integer_value(json_object_get(ev, "count"));
		return;
	}
	if (!strcmp(kind, "bad")) {
		const char *port = ctl_str(ev, "port", "?"), *why = ctl_str(ev, "why", "");
		size_t i;

		for (i = 0; i < t->n_ports && strcmp(t->bad[i].port, port) != 0; i++)
			;
		if (i == PORTS_MAX)
			return;
		if (i == t->n_ports)
			snprintf(t->bad[t->n_ports++].port, sizeof(t->bad[i].port), "%s", port);
		snprintf(t->bad[i].why, sizeof(t->bad[i].why), "%s%s%s", ctl_str(ev, "reason", "?"),
			 why[0] ? ": " : "", why);
		return;
	}
	if (strcmp(kind, "frame") != 0 || !id || !(n = node_get(t, id)))
		return;
	json_object_foreach((json_t *)json_object_get(ev, "fields"), key, v) {
		struct field *f = field_get(n, key);
		char *text;
		double d = NAN;

		if (!f)
			continue;
		text = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(6));
		snprintf(f->last, sizeof(f->last), "%s", text ? text : "?");
		free(text);
		if (json_is_number(v))
			d = json_number_value(v);
		else if (json_is_boolean(v))
			d = json_is_true(v);
		f->v[now_s % SPARK] = d;
		f->at[now_s % SPARK] = isnan(d) ? -1 : now_s;
	}
}

/* Frame rates from the change of the frame counters since the last status. */
static void take_status(struct top *t, json_t *st, int64_t now_ms)
{
	double dt = t->status ? (double)(now_ms - t->status_ms) / 1000.0 : 0;
	size_t i;
	json_t *o;

	json_array_foreach(json_object_get(st, "nodes"), i, o) {
		struct node *n = node_get(t, ctl_str(o, "id", "?"));
		json_int_t frames = json_integer_value(json_object_get(o, "frames"));

		if (!n)
			continue;
		n->rate = dt > 0 && n->frames ? (double)(frames - n->frames) / dt : 0;
		n->frames = frames;
	}
	json_array_foreach(json_object_get(st, "ports"), i, o) {
		json_int_t frames = json_integer_value(json_object_get(o, "frames"));

		if (i >= PORTS_MAX)
			break;
		t->port_rate[i] = dt > 0 && t->port_frames[i] ?
					  (double)(frames - t->port_frames[i]) / dt :
					  0;
		t->port_frames[i] = frames;
	}
	json_decref(t->status);
	t->status = st;
	t->status_ms = now_ms;
}

static void add_line(struct top *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_line(struct top *t, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (!s)
		return;
	if (t->n_lines == t->cap_lines) {
		size_t cap = t->cap_lines ? 2 * t->cap_lines : 64;
		char **nl = realloc(t->lines, cap * sizeof(*nl));

		if (!nl) {
			free(s);
			return;
		}
		t->lines = nl;
		t->cap_lines = cap;
	}
	t->lines[t->n_lines++] = s;
}

/* width columns of the last seconds of f, oldest left; a gap where a second had no value */
static void sparkline(const struct top *t, const struct field *f, int64_t now_s, int width,
		      char *buf, size_t size)
{
	static const char *const blocks[8] = { "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█" };
	static const char ascii[] = "_.-:=+*#";
	double lo = INFINITY, hi = -INFINITY;
	size_t used = 0;

	for (int k = 0; k < width; k++) {
		int64_t s = now_s - (width - 1) + k;

		if (s >= 0 && f->at[s % SPARK] == s) {
			lo = fmin(lo, f->v[s % SPARK]);
			hi = fmax(hi, f->v[s % SPARK]);
		}
	}
	for (int k = 0; k < width && used + 4 < size; k++) {
		int64_t s = now_s - (width - 1) + k;
		int level;

		if (s < 0 || f->at[s % SPARK] != s) {
			buf[used++] = ' ';
			continue;
		}
		level = hi > lo ? (int)lround((f->v[s % SPARK] - lo) / (hi - lo) * 7) : 3;
		if (t->utf8) {
			memcpy(buf + used, blocks[level], 3);
			used += 3;
		} else {
			buf[used++] = ascii[level];
		}
	}
	buf[used] = '\0';
}

static void build(struct top *t, int64_t now_s)
{
	const json_t *st = t->status, *o;
	json_int_t up = ctl_num(st, "uptime_ms"), now_ms = ctl_num(st, "time_ms");
	int spark_w = t->cols - 27 > SPARK ? SPARK : t->cols - 27;
	char a[32], spark[SPARK * 3 + 1];
	size_t i;

	t->n_lines = 0;
	add_line(t, "sensorgwd %s  up %lldh%02lldm%02llds  %lld records  %s%s",
		 ctl_str(st, "version", "?"), (long long)(up / 3600000),
		 (long long)(up / 60000 % 60), (long long)(up / 1000 % 60),
		 (long long)ctl_num(st, "records"),
		 t->status_error[0] ? t->status_error : "q: quit",
		 t->dropped ? "  (view fell behind)" : "");
	add_line(t, "%s", "");
	add_line(t, "%-12s %-7s %8s %8s  %s", "PORT", "STATE", "FRAMES/S", "BAD", "LAST BAD");
	json_array_foreach(json_object_get(st, "ports"), i, o) {
		const char *why = "";

		for (size_t k = 0; k < t->n_ports; k++)
			if (!strcmp(t->bad[k].port, ctl_str(o, "name", "")))
				why = t->bad[k].why;
		add_line(t, "%-12s %-7s %8.1f %8lld  %s", ctl_str(o, "name", "?"),
			 ctl_str(o, "state", "?"), i < PORTS_MAX ? t->port_rate[i] : 0,
			 (long long)ctl_num(o, "bad_frames"), why);
	}
	add_line(t, "%s", "");
	add_line(t, "%-12s %-7s %-8s %8s %8s %9s  %s", "UPLINK", "TYPE", "STATE", "QUEUED",
		 "INFLIGHT", "ACKED", "OLDEST");
	json_array_foreach(json_object_get(st, "uplinks"), i, o) {
		ctl_format_age(ctl_num(o, "oldest_age_ms"), a, sizeof(a));
		add_line(t, "%-12s %-7s %-8s %8lld %8lld %9lld  %s", ctl_str(o, "name", "?"),
			 ctl_str(o, "type", "?"), ctl_str(o, "state", "?"),
			 (long long)ctl_num(o, "queued"), (long long)ctl_num(o, "inflight"),
			 (long long)ctl_num(o, "acked"), a);
	}
	add_line(t, "%s", "");
	add_line(t, "%-26s %-12s %6s %6s  %s", "NODE", "PORT", "FR/S", "BAD", "SEEN");
	json_array_foreach(json_object_get(st, "nodes"), i, o) {
		struct node *n = node_get(t, ctl_str(o, "id", "?"));

		ctl_format_age(now_ms - ctl_num(o, "last_seen_ms"), a, sizeof(a));
		add_line(t, "%-26s %-12s %6.1f %6lld  %s ago", ctl_str(o, "id", "?"),
			 ctl_str(o, "port", "?"), n ? n->rate : 0, (long long)ctl_num(o, "errors"),
			 a);
		for (size_t k = 0; n && k < n->n_fields; k++) {
			if (spark_w > 0)
				sparkline(t, &n->fields[k], now_s, spark_w, spark, sizeof(spark));
			else
				spark[0] = '\0';
			add_line(t, "  %-12.12s %-10.10s  %s", n->fields[k].key, n->fields[k].last,
				 spark);
		}
	}
}

/* Writes the screen: redrawn in place on a terminal, cut to its size; plain lines otherwise. */
static int draw(struct top *t, bool tty)
{
	size_t rows = tty ? (size_t)t->rows : t->n_lines;

	if (tty)
		fputs("\033[H", stdout);
	for (size_t i = 0; i < t->n_lines && i < rows; i++) {
		const char *s = t->lines[i];
		bool last = tty && (i + 1 == rows || i + 1 == t->n_lines);

		if (tty && i + 1 == rows && t->n_lines > rows) {
			printf("... %zu more line(s): a taller terminal shows them\033[K",
			       t->n_lines - rows + 1);
			break;
		}
		/* cut to the width: only the sparkline has multi-byte characters, and it was
		 * made to fit */
		if (tty && strlen(s) > (size_t)t->cols && !strstr(s, "\xe2\x96"))
			printf("%.*s", t->cols, s);
		else
			fputs(s, stdout);
		fputs(tty ? "\033[K" : "", stdout);
		if (!last)
			fputc('\n', stdout);
	}
	fputs(tty ? "\033[J" : "\n", stdout);
	for (size_t i = 0; i < t->n_lines; i++)
		free(t->lines[i]);
	t->n_lines = 0;
	return fflush(stdout) == 0 ? 0 : -errno;
}

static void size_of_terminal(struct top *t)
{
	struct winsize ws;

	t->cols = 80;
	t->rows = 24;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col && ws.ws_row) {
		t->cols = ws.ws_col;
		t->rows = ws.ws_row;
	}
}

static void refresh(struct top *t, const char *path, int64_t now_ms)
{
	json_t *st = NULL;
	char *reply = NULL;
	size_t len;
	int r = ctl_ask(path, "status\n", ASK_TIMEOUT_MS, &reply, &len);

	t->status_error[0] = '\0';
	if (r == 0)
		st = json_loadb(reply, len, 0, NULL);
	free(reply);
	if (json_is_true(json_object_get(st, "ok"))) {
		take_status(t, st, now_ms);
		return;
	}
	snprintf(t->status_error, sizeof(t->status_error), "status: %s",
		 r < 0 ? strerror(-r) : ctl_str(st, "error", "not understood"));
	json_decref(st);
}

int ctl_top(int argc, char **argv)
{
	static const struct option options[] = {
		{ "iterations", required_argument, NULL, 'n' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = GW_CONFIG_DEFAULT_CONTROL_SOCKET;
	uint64_t iterations = 0, drawn = 0;
	struct ctl_live *l;
	struct top *t;
	int64_t next;
	bool tty;
	int opt, r, rc = EXIT_SUCCESS;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":n:s:h", options, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (ctl_parse_u64(optarg, 1000000, &iterations) < 0 || iterations == 0)
				return ctl_usage_error(TOP_CMD, TOP_SYNOPSIS,
						       "--iterations: '%s' is not a number of "
						       "screens, 1..1000000",
						       optarg);
			break;
		case 's':
			path = optarg;
			break;
		case 'h':
			top_help();
			return EXIT_SUCCESS;
		case ':':
			return ctl_usage_error(TOP_CMD, TOP_SYNOPSIS, "%s needs a value",
					       argv[optind - 1]);
		default:
			return ctl_usage_error(TOP_CMD, TOP_SYNOPSIS, "unknown option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return ctl_usage_error(TOP_CMD, TOP_SYNOPSIS, "unexpected argument '%s'",
				       argv[optind]);
	t = calloc(1, sizeof(*t));
	if (!t) {
		ctl_error(TOP_CMD, "out of memory");
		return EXIT_FAILURE;
	}
	setlocale(LC_CTYPE, "");
	t->utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
	if (ctl_live_open(TOP_CMD, path, "tail\n", &l) < 0) {
		free(t);
		return EXIT_FAILURE;
	}
	tty = isatty(STDOUT_FILENO);
	if (tty)
		fputs("\033[?1049h\033[?25l", stdout); /* the alternate screen, no cursor */
	next = mono_ms();
	for (;;) {
		int64_t now = mono_ms();
		json_t *ev = NULL;

		if (now >= next) {
			refresh(t, path, now);
			size_of_terminal(t);
			if (t->status) {
				build(t, now / 1000);
				if (draw(t, tty) < 0)
					break;
				if (iterations && ++drawn == iterations)
					break;
			}
			next += 1000;
			if (next <= now)
				next = now + 1000;
			continue;
		}
		r = ctl_live_next(l, (int)(next - now), &ev);
		if (r == CTL_LIVE_EVENT) {
			on_event(t, ev, mono_ms() / 1000);
			json_decref(ev);
		} else if (r == CTL_LIVE_RESIZE) {
			next = mono_ms(); /* redraw now */
		} else if (r == CTL_LIVE_QUIT) {
			break;
		} else if (r == CTL_LIVE_CLOSED || r < 0) {
			rc = r == CTL_LIVE_CLOSED ? EXIT_FAILURE : -1;
			break;
		}
	}
	if (tty)
		fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	ctl_live_close(l);
	if (rc == EXIT_FAILURE)
		ctl_error(TOP_CMD, "sensorgwd closed the stream (it stopped)");
	if (rc < 0)
		rc = EXIT_FAILURE; /* said by ctl_live_next */
	json_decref(t->status);
	free(t->lines);
	free(t);
	return rc;
}
