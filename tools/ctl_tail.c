/* SPDX-License-Identifier: MIT */
/*
 * sensorgwctl tail: frames as they arrive, one line each, in the manner of candump: decoded
 * frames with their values, bad frames with their reason and, with --raw, the bytes as read,
 * in hex or as text. The events come from the control socket's tail stream (gw/control.h,
 * gw/tap.h; docs/tail.md); --json prints them as the daemon sends them.
 */

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "gw/config.h"

#define TAIL_CMD "tail"
#define TAIL_SYNOPSIS \
	"sensorgwctl tail [--port NAME] [--node ID] [--raw[=hex|text]] [--json] [--socket PATH]"
#define FILTER_MAX 63
#define HEX_PER_LINE 24

enum raw_form { RAW_NONE, RAW_HEX, RAW_TEXT };

static void tail_help(void)
{
	printf("Usage: " TAIL_SYNOPSIS "\n"
	       "Show the frames the running sensorgwd receives, as they arrive: decoded values,\n"
	       "bad frames with their reason, and with --raw the bytes as read. Ends on Ctrl-C\n"
	       "or q.\n\n"
	       "  -p, --port NAME     only this port's events ([port NAME])\n"
	       "  -n, --node ID       only this node's frames (its id in 'sensorgwctl status')\n"
	       "  -r, --raw[=FORM]    also the bytes as read, before decoding: hex (the default)\n"
	       "                      or text (printable ASCII, the rest as C escapes)\n"
	       "  -j, --json          print the daemon's events as JSON lines (docs/tail.md)\n"
	       "  -s, --socket PATH   the control socket (default %s; [gateway]\n"
	       "                      control_socket in sensorgw.conf)\n"
	       "  -h, --help          show this help\n",
	       GW_CONFIG_DEFAULT_CONTROL_SOCKET);
}

/* A filter goes into the request line: printable ASCII without blanks. */
static bool filter_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > FILTER_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

static void print_time(FILE *f, const json_t *ev)
{
	json_int_t ms = json_integer_value(json_object_get(ev, "time_ms"));
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (localtime_r(&t, &tm))
		fprintf(f, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
			(int)(ms % 1000));
	else
		fprintf(f, "--:--:--.---");
}

static void print_fields(FILE *f, const json_t *fields)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)fields, key, v) {
		char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));

		fprintf(f, " %s=%s", key, text ? text : "?");
		free(text);
	}
}

static void print_frame(FILE *f, const json_t *ev)
{
	const char *type = ctl_str(ev, "type", "?");
	json_t *seq = json_object_get(ev, "seq");

	fprintf(f, "%s", type);
	if (seq)
		fprintf(f, " seq=%lld", (long long)json_integer_value(seq));
	if (!strcmp(type, "hello"))
		fprintf(f, " uid=%s firmware=%s boot=%lld", ctl_str(ev, "uid", "?"),
			ctl_str(ev, "firmware", "?"),
			(long long)json_integer_value(json_object_get(ev, "boot")));
	else if (!strcmp(type, "event") || !strcmp(type, "command"))
		fprintf(f, " %s", ctl_str(ev, "name", "?"));
	else if (!strcmp(type, "command-reply"))
		fprintf(f, " cmd=%lld code=%lld",
			(long long)json_integer_value(json_object_get(ev, "cmd_id")),
			(long long)json_integer_value(json_object_get(ev, "code")));
	print_fields(f, json_object_get(ev, "fields"));
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void print_raw(FILE *f, const json_t *ev, enum raw_form form, const char *indent)
{
	const char *hex = ctl_str(ev, "hex", "");
	size_t n = strlen(hex) / 2;

	if (form == RAW_TEXT)
		fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		unsigned char b = (unsigned char)(hi < 0 || lo < 0 ? '?' : hi << 4 | lo);

		if (form == RAW_HEX) {
			if (i && i % HEX_PER_LINE == 0)
				fprintf(f, "\n%s", indent);
			fprintf(f, "%s%02x", i % HEX_PER_LINE ? " " : "", b);
		} else if (b == '\n') {
			fputs("\\n", f);
		} else if (b == '\r') {
			fputs("\\r", f);
		} else if (b == '"' || b == '\\') {
			fprintf(f, "\\%c", b);
		} else if (isprint(b)) {
			fputc(b, f);
		} else {
			fprintf(f, "\\x%02x", b);
		}
	}
	if (form == RAW_TEXT)
		fputc('"', f);
}

/* One event as one line (raw hex may wrap, indented). */
static void print_event(FILE *f, const json_t *ev, enum raw_form raw, bool color)
{
	const char *event = ctl_str(ev, "event", "?");
	const json_t *node = json_object_get(ev, "node");
	char indent[64];
	int w;

	print_time(f, ev);
	if (!strcmp(event, "dropped")) {
		fprintf(f, "  -- %lld event(s) dropped by sensorgwd: this reader fell behind --\n",
			(long long)json_integer_value(json_object_get(ev, "count")));
		return;
	}
	w = fprintf(f, "  %-8s ", ctl_str(ev, "port", "?"));
	if (!strcmp(event, "raw")) {
		w += fprintf(f, "RAW  ");
		snprintf(indent, sizeof(indent), "%*s", 12 + w, "");
		print_raw(f, ev, raw, indent);
	} else {
		fprintf(f, "%-24s ", json_is_string(node) ? json_string_value(node) : "-");
		if (!strcmp(event, "bad")) {
			const char *why = ctl_str(ev, "why", "");

			fprintf(f, "%sBAD %s%s%s%s", color ? "\033[1;31m" : "",
				ctl_str(ev, "reason", "?"), why[0] ? ": " : "", why,
				color ? "\033[0m" : "");
		} else {
			print_frame(f, ev);
		}
	}
	fputc('\n', f);
}

int ctl_tail(int argc, char **argv)
{
	static const struct option options[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "node", required_argument, NULL, 'n' },
		{ "raw", optional_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = GW_CONFIG_DEFAULT_CONTROL_SOCKET, *port = NULL, *node = NULL;
	enum raw_form raw = RAW_NONE;
	bool json_out = false, color;
	struct ctl_live *l;
	char request[256];
	int opt, r, rc = EXIT_SUCCESS;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":p:n:r::js:h", options, NULL)) != -1) {
		switch (opt) {
		case 'p':
		case 'n':
			if (!filter_ok(optarg))
				return ctl_usage_error(TAIL_CMD, TAIL_SYNOPSIS,
						       "%s: '%s' is not a port name or node id "
						       "(1..%d printable characters, no blanks)",
						       opt == 'p' ? "--port" : "--node", optarg,
						       FILTER_MAX);
			*(opt == 'p' ? &port : &node) = optarg;
			break;
		case 'r':
			if (!optarg || !strcmp(optarg, "hex"))
				raw = RAW_HEX;
			else if (!strcmp(optarg, "text"))
				raw = RAW_TEXT;
			else
				return ctl_usage_error(TAIL_CMD, TAIL_SYNOPSIS,
						       "--raw: '%s' is not hex or text", optarg);
			break;
		case 'j':
			json_out = true;
			break;
		case 's':
			path = optarg;
			break;
		case 'h':
			tail_help();
			return EXIT_SUCCESS;
		case ':':
			return ctl_usage_error(TAIL_CMD, TAIL_SYNOPSIS, "%s needs a value",
					       argv[optind - 1]);
		default:
			return ctl_usage_error(TAIL_CMD, TAIL_SYNOPSIS, "unknown option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return ctl_usage_error(TAIL_CMD, TAIL_SYNOPSIS, "unexpected argument '%s'",
				       argv[optind]);
	snprintf(request, sizeof(request), "tail%s%s%s%s%s\n", port ? " port=" : "",
		 port ? port : "", node ? " node=" : "", node ? node : "", raw ? " raw" : "");
	if (ctl_live_open(TAIL_CMD, path, request, &l) < 0)
		return EXIT_FAILURE;
	color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
	for (;;) {
		json_t *ev = NULL;

		r = ctl_live_next(l, -1, &ev);
		if (r == CTL_LIVE_EVENT) {
			if (json_out) {
				char *text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);

				if (text)
					puts(text);
				free(text);
			} else {
				print_event(stdout, ev, raw, color);
			}
			json_decref(ev);
			if (fflush(stdout) != 0) {
				/* the reader of our output went away (EPIPE): nothing to say */
				rc = errno == EPIPE ? EXIT_SUCCESS : EXIT_FAILURE;
				break;
			}
			continue;
		}
		if (r == CTL_LIVE_RESIZE || r == CTL_LIVE_TIMEOUT)
			continue;
		if (r == CTL_LIVE_CLOSED) {
			ctl_error(TAIL_CMD, "sensorgwd closed the stream (it stopped)");
			rc = EXIT_FAILURE;
		} else if (r < 0) {
			rc = EXIT_FAILURE;
		}
		break; /* CTL_LIVE_QUIT: the user's end */
	}
	ctl_live_close(l);
	return rc;
}
