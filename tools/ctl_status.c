/* SPDX-License-Identifier: MIT */
/*
 * sensorgwctl status: asks the running daemon over its control socket (gw/control.h) and
 * prints the answer as tables, or as the daemon's JSON with --json (docs/status.md).
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "gw/config.h"

#define STATUS_CMD "status"
#define STATUS_SYNOPSIS "sensorgwctl status [--json] [--socket PATH]"
#define REPLY_MAX (16u << 20) /* far above any real status; a bound for a confused peer */
#define TIMEOUT_MS 5000

static void status_help(void)
{
	printf("Usage: " STATUS_SYNOPSIS "\n"
	       "Show the running sensorgwd's ports, nodes, uplinks and spool.\n\n"
	       "  -j, --json         print the daemon's JSON answer (docs/status.md)\n"
	       "  -s, --socket PATH  the control socket (default %s; [gateway]\n"
	       "                     control_socket in sensorgw.conf)\n"
	       "  -h, --help         show this help\n",
	       GW_CONFIG_DEFAULT_CONTROL_SOCKET);
}

int ctl_connect(const char *path, const char *request, int *ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, request, strlen(request), MSG_NOSIGNAL) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	*ret = fd;
	return 0;
}

const char *ctl_connect_hint(int r)
{
	return r == -ENOENT || r == -ECONNREFUSED ?
		       " (is it running? see [gateway] control_socket)" :
	       r == -EACCES ? " (run as the daemon's user or root)" :
			      "";
}

int ctl_ask(const char *path, const char *request, int timeout_ms, char **ret, size_t *ret_len)
{
	size_t len = 0, cap = 0;
	char *buf = NULL;
	int fd = -1, r;

	r = ctl_connect(path, request, &fd);
	if (r < 0)
		return r;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, timeout_ms) == 0) {
			r = -ETIMEDOUT;
			goto out;
		}
		if (cap - len < 4096) {
			char *nb;

			if (cap >= REPLY_MAX) {
				r = -EMSGSIZE;
				goto out;
			}
			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap + 1);
			if (!nb) {
				r = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (!buf) {
		r = -ENODATA;
		goto out;
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return r;
}

json_int_t ctl_num(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}


const char *ctl_str(const json_t *o, const char *key, const char *none)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : none;
}

int ctl_ask_object(const char *cmd, const char *path, const char *request, int timeout_ms,
		   json_t **ret_obj, char **ret_reply)
{
	json_error_t jerr;
	char *reply = NULL;
	size_t len = 0;
	json_t *o;
	int r;

	r = ctl_ask(path, request, timeout_ms, &reply, &len);
	if (r < 0) {
		ctl_error(cmd, "cannot ask sensorgwd on %s: %s%s", path, strerror(-r),
			  ctl_connect_hint(r));
		return -1;
	}
	o = json_loadb(reply, len, 0, &jerr);
	if (!json_is_object(o)) {
		ctl_error(cmd, "sensorgwd answered something that is not a JSON object: %s",
			  jerr.text);
		json_decref(o);
		free(reply);
		return -1;
	}
	*ret_obj = o;
	*ret_reply = reply;
	return 0;
}

void ctl_format_age(int64_t ms, char *buf, size_t size)
{
	if (ms < 0)
		snprintf(buf, size, "-");
	else if (ms < 120000)
		snprintf(buf, size, "%" PRId64 " s", ms / 1000);
	else if (ms < 2 * 3600000)
		snprintf(buf, size, "%" PRId64 " min", ms / 60000);
	else
		snprintf(buf, size, "%" PRId64 " h", ms / 3600000);
}

static void print_tables(const json_t *st)
{
	const json_t *spool = json_object_get(st, "spool");
	json_int_t now = ctl_num(st, "time_ms");
	const json_t *nt;
	char age[32];
	size_t i;
	json_t *v;

	ctl_format_age(ctl_num(st, "uptime_ms"), age, sizeof(age));
	printf("sensorgwd %s (pid %" JSON_INTEGER_FORMAT "), %s, up %s, config %s\n",
	       ctl_str(st, "version", "?"), ctl_num(st, "pid"), ctl_str(st, "state", "?"), age,
	       ctl_str(st, "config", "?"));
	/* as the daemon's start-up line: an empty spool (segment headers only) is not "1..0" */
	if (ctl_num(spool, "first_seq") == ctl_num(spool, "next_seq"))
		printf("spool: empty, the next record is %" JSON_INTEGER_FORMAT "; ",
		       ctl_num(spool, "next_seq"));
	else
		printf("spool: records %" JSON_INTEGER_FORMAT "..%" JSON_INTEGER_FORMAT ", ",
		       ctl_num(spool, "first_seq"), ctl_num(spool, "next_seq") - 1);
	printf("%" JSON_INTEGER_FORMAT " bytes in %" JSON_INTEGER_FORMAT
	       " segment(s); appended %" JSON_INTEGER_FORMAT ", dropped %" JSON_INTEGER_FORMAT
	       ", lost %" JSON_INTEGER_FORMAT ", duplicates %" JSON_INTEGER_FORMAT "\n",
	       ctl_num(spool, "bytes"), ctl_num(spool, "segments"), ctl_num(spool, "appended"),
	       ctl_num(spool, "dropped_overflow") + ctl_num(spool, "dropped_enospc"),
	       ctl_num(spool, "lost_corrupt"), ctl_num(spool, "duplicates"));

	printf("\n%-12s %-7s %12s %10s %6s %6s %8s\n", "PORT", "STATE", "BYTES", "FRAMES", "BAD",
	       "CRC", "RESYNCS");
	json_array_foreach(json_object_get(st, "ports"), i, v)
		printf("%-12s %-7s %12" JSON_INTEGER_FORMAT " %10" JSON_INTEGER_FORMAT
		       " %6" JSON_INTEGER_FORMAT " %6" JSON_INTEGER_FORMAT " %8" JSON_INTEGER_FORMAT
		       "\n",
		       ctl_str(v, "name", "?"), ctl_str(v, "state", "?"), ctl_num(v, "bytes_in"),
		       ctl_num(v, "frames"), ctl_num(v, "bad_frames"), ctl_num(v, "crc_errors"),
		       ctl_num(v, "resyncs"));
	json_array_foreach(json_object_get(st, "ports"), i, v)
		if (ctl_num(v, "refused") > 0)
			printf("  %s: %" JSON_INTEGER_FORMAT " open attempt(s) refused, the last "
			       "because %s\n",
			       ctl_str(v, "name", "?"), ctl_num(v, "refused"),
			       ctl_str(v, "refused_why", "?"));

	printf("\n%-32s %-12s %-5s %-10s %8s %6s %9s\n", "NODE / DEVICE", "PORT", "ADDR",
	       "FIRMWARE", "FRAMES", "GAPS", "LAST SEEN");
	json_array_foreach(json_object_get(st, "nodes"), i, v) {
		char addr[8] = "-";

		if (json_is_integer(json_object_get(v, "addr")))
			snprintf(addr, sizeof(addr), "%" JSON_INTEGER_FORMAT, ctl_num(v, "addr"));
		ctl_format_age(now - ctl_num(v, "last_seen_ms"), age, sizeof(age));
		printf("%-32s %-12s %-5s %-10s %8" JSON_INTEGER_FORMAT " %6" JSON_INTEGER_FORMAT
		       " %9s\n",
		       ctl_str(v, "id", "?"), ctl_str(v, "port", "?"), addr,
		       ctl_str(v, "firmware", "-"), ctl_num(v, "frames"), ctl_num(v, "seq_gaps"),
		       age);
		printf("  %s\n", ctl_str(v, "device", "?"));
	}
	nt = json_object_get(st, "node_table");
	if (nt)
		printf("%" JSON_INTEGER_FORMAT " node(s) of at most %" JSON_INTEGER_FORMAT
		       " (max_nodes); refused: %" JSON_INTEGER_FORMAT
		       " node(s), %" JSON_INTEGER_FORMAT " frame(s) dropped\n",
		       ctl_num(nt, "known"), ctl_num(nt, "max"), ctl_num(nt, "refused"),
		       ctl_num(nt, "frames_refused"));

	printf("\n%-12s %-7s %-8s %9s %9s %9s %10s %9s %8s\n", "UPLINK", "TYPE", "STATE",
	       "SESSIONS", "QUEUED", "INFLIGHT", "ACKED", "REJECTED", "OLDEST");
	json_array_foreach(json_object_get(st, "uplinks"), i, v) {
		char sessions[32];
		const json_t *devs = json_object_get(v, "devices");
		const json_t *counters = json_object_get(v, "counters");
		const json_t *gw = json_object_get(v, "gateway");
		json_int_t throttled, dropped;
		const char *err = ctl_str(v, "last_error", NULL);
		size_t j;
		json_t *d;

		snprintf(sessions, sizeof(sessions),
			 "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT, ctl_num(v, "online"),
			 ctl_num(v, "sessions"));
		ctl_format_age(ctl_num(v, "queued") ? ctl_num(v, "oldest_age_ms") : -1, age,
			       sizeof(age));
		printf("%-12s %-7s %-8s %9s %9" JSON_INTEGER_FORMAT " %9" JSON_INTEGER_FORMAT
		       " %10" JSON_INTEGER_FORMAT " %9" JSON_INTEGER_FORMAT " %8s\n",
		       ctl_str(v, "name", "?"), ctl_str(v, "type", "?"), ctl_str(v, "state", "?"),
		       sessions, ctl_num(v, "queued"), ctl_num(v, "inflight"), ctl_num(v, "acked"),
		       ctl_num(v, "rejected"), age);
		if (err)
			printf("  last error: %s\n", err);
		if (gw) {
			const char *gerr = ctl_str(gw, "last_error", NULL);
			size_t up = 0;

			json_array_foreach(devs, j, d)
				up += strcmp(ctl_str(d, "session", ""), "online") == 0;
			printf("  gateway %s: %s; %zu of %zu sub-device(s) online%s%s\n",
			       ctl_str(gw, "device", "?"), ctl_str(gw, "session", "?"), up,
			       json_array_size(devs), gerr ? "; last error: " : "",
			       gerr ? gerr : "");
		}
		throttled = ctl_num(counters, "commands_throttled");
		dropped = ctl_num(counters, "answers_dropped");
		if (throttled || dropped)
			printf("  commands refused over command_rate: %" JSON_INTEGER_FORMAT
			       "; answers dropped (max_rate queue full): %" JSON_INTEGER_FORMAT
			       "\n", throttled, dropped);
		json_array_foreach(devs, j, d) {
			const char *derr = ctl_str(d, "last_error", NULL);

			const json_t *att = json_object_get(d, "attached");

			printf("  device %s: %s, %s%s%s%s\n", ctl_str(d, "device", "?"),
			       ctl_str(d, "session", "?"), ctl_str(d, "provisioning", "?"),
			       !att ? "" : json_is_true(att) ? ", attached" : ", not attached",
			       derr ? "; last error: " : "", derr ? derr : "");
		}
	}
}

int ctl_socket_options(int argc, char **argv, const char *cmd, const char *synopsis,
		       void (*help)(void), const char **path, bool *json_out)
{
	static const struct option options[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	*path = GW_CONFIG_DEFAULT_CONTROL_SOCKET;
	*json_out = false;
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":js:h", options, NULL)) != -1) {
		switch (opt) {
		case 'j':
			*json_out = true;
			break;
		case 's':
			*path = optarg;
			break;
		case 'h':
			help();
			return EXIT_SUCCESS;
		case ':':
			return ctl_usage_error(cmd, synopsis, "%s needs a value", argv[optind - 1]);
		default:
			return ctl_usage_error(cmd, synopsis, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return ctl_usage_error(cmd, synopsis, "unexpected argument '%s'", argv[optind]);
	return -1;
}

int ctl_status(int argc, char **argv)
{
	const char *path;
	bool json_out;
	char *reply = NULL;
	json_t *st;
	int r;

	r = ctl_socket_options(argc, argv, STATUS_CMD, STATUS_SYNOPSIS, status_help, &path,
			       &json_out);
	if (r >= 0)
		return r;
	if (ctl_ask_object(STATUS_CMD, path, "status\n", TIMEOUT_MS, &st, &reply) < 0)
		return EXIT_FAILURE;
	if (!json_is_true(json_object_get(st, "ok"))) {
		ctl_error(STATUS_CMD, "sensorgwd refused: %s", ctl_str(st, "error", "no reason given"));
		json_decref(st);
		free(reply);
		return EXIT_FAILURE;
	}
	/* A false positive of gcc -fanalyzer: ctl_ask() sets reply whenever it returns >= 0, but
	 * the analyzer does not know that errno is positive, so it follows a "-errno >= 0" path on
	 * which reply is still NULL. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wanalyzer-null-argument"
#endif
	if (json_out)
		fputs(reply, stdout);
	else
		print_tables(st);
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
	json_decref(st);
	free(reply);
	return EXIT_SUCCESS;
}
