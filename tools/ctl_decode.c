/* SPDX-License-Identifier: MIT */
/*
 * sensorgwctl decode: what the daemon would make of frames on one of its ports, with the
 * configuration's [map] sections and uplinks, without opening anything (gw/preview.h).
 */

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "gw/config.h"
#include "gw/preview.h"

#define DECODE_CMD "decode"
#define DECODE_SYNOPSIS "sensorgwctl decode [-c CONFIG] --port NAME [--json] FRAME..."
#define FRAME_MAX 4096

static void decode_help(void)
{
	printf("Usage: " DECODE_SYNOPSIS "\n"
	       "Show what sensorgwd would make of frames arriving on a port: the decoded frame,\n"
	       "its node and device, the record it stores, and the topic and payload each\n"
	       "configured uplink would publish. Nothing is opened or sent.\n\n"
	       "A FRAME is one text line on a text port (e.g. 'temp=21.5,hum=40'), or hex bytes\n"
	       "on a binary port (COBS with the 00 delimiter; blanks and ':' between bytes are\n"
	       "allowed). Frames are fed in order, so a hello names the node of later frames.\n\n"
	       "  -c, --config FILE  configuration (default %s)\n"
	       "  -p, --port NAME    the [port NAME] the frames arrive on\n"
	       "  -j, --json         one JSON array of the results\n"
	       "  -h, --help         show this help\n",
	       GW_CONFIG_DEFAULT_PATH);
}

/* Hex digits, optionally separated by blanks or ':', into out. -EINVAL on anything else. */
static int parse_hex(const char *s, uint8_t *out, size_t cap, size_t *ret_len)
{
	size_t n = 0;

	while (*s) {
		unsigned v;

		if (isspace((unsigned char)*s) || *s == ':') {
			s++;
			continue;
		}
		/* two hex digits cannot overflow v, which cert-err34-c fears of sscanf */
		if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]) ||
		    sscanf(s, "%2x", &v) != 1) /* NOLINT(cert-err34-c) */
			return -EINVAL;
		if (n == cap)
			return -E2BIG;
		out[n++] = (uint8_t)v;
		s += 2;
	}
	*ret_len = n;
	return 0;
}

static void print_result(const json_t *o)
{
	const json_t *rec = json_object_get(o, "record");
	const char *err = json_string_value(json_object_get(o, "error"));
	const char *effect = json_string_value(json_object_get(o, "effect"));
	const char *reason = json_string_value(json_object_get(o, "reason"));
	size_t i;
	json_t *u;

	if (!json_is_true(json_object_get(o, "ok"))) {
		printf("bad frame: %s%s%s (%s)\n", err ? err : "?", reason ? ": " : "",
		       reason ? reason : "", effect ? effect : "");
		return;
	}
	printf("%s frame", json_string_value(json_object_get(o, "type")));
	if (json_object_get(o, "addr"))
		printf(", address %lld", (long long)json_integer_value(json_object_get(o, "addr")));
	if (json_object_get(o, "seq"))
		printf(", sequence %lld", (long long)json_integer_value(json_object_get(o, "seq")));
	if (json_object_get(o, "node"))
		printf(" from node %s, device %s",
		       json_string_value(json_object_get(o, "node")),
		       json_string_value(json_object_get(o, "device")));
	printf("\n");
	if (effect)
		printf("  %s\n", effect);
	if (err)
		printf("  error: %s\n", err);
	if (rec)
		printf("  record: %s\n", json_string_value(rec));
	json_array_foreach(json_object_get(o, "uplinks"), i, u) {
		const char *uerr = json_string_value(json_object_get(u, "error"));

		printf("  uplink %s (%s): ", json_string_value(json_object_get(u, "name")),
		       json_string_value(json_object_get(u, "type")));
		if (uerr)
			printf("not sent: %s\n", uerr);
		else
			printf("%s\n    %s\n", json_string_value(json_object_get(u, "topic")),
			       json_string_value(json_object_get(u, "payload")));
		if (!uerr && json_object_get(u, "left_out"))
			printf("    left out by the thing model: %s\n",
			       json_string_value(json_object_get(u, "left_out")));
	}
}

int ctl_decode(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "port", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = GW_CONFIG_DEFAULT_PATH, *port = NULL;
	struct gw_preview *p = NULL;
	struct gw_config *cfg = NULL;
	json_t *results = NULL;
	bool json_out = false;
	char why[256];
	int opt, rc = EXIT_FAILURE;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":c:p:jh", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'p':
			port = optarg;
			break;
		case 'j':
			json_out = true;
			break;
		case 'h':
			decode_help();
			return EXIT_SUCCESS;
		case ':':
			return ctl_usage_error(DECODE_CMD, DECODE_SYNOPSIS, "%s needs a value",
					       argv[optind - 1]);
		default:
			return ctl_usage_error(DECODE_CMD, DECODE_SYNOPSIS, "unknown option '%s'",
					       argv[optind - 1]);
		}
	}
	if (!port)
		return ctl_usage_error(DECODE_CMD, DECODE_SYNOPSIS, "--port is missing");
	if (optind == argc)
		return ctl_usage_error(DECODE_CMD, DECODE_SYNOPSIS, "no FRAME given");
	/* the loader prints every problem as FILE:LINE: message */
	if (gw_config_load(config, stderr, &cfg) < 0) {
		ctl_error(DECODE_CMD, "%s is not a valid configuration", config);
		return EXIT_FAILURE;
	}
	if (gw_preview_new(cfg, port, &p, why, sizeof(why)) < 0) {
		ctl_error(DECODE_CMD, "%s", why);
		goto out;
	}
	results = json_array();
	for (int i = optind; i < argc; i++) {
		uint8_t buf[FRAME_MAX];
		size_t len;
		int r;

		if (gw_preview_is_text(p)) {
			len = strlen(argv[i]);
			if (len > sizeof(buf)) {
				ctl_error(DECODE_CMD, "frame %d is longer than %d bytes", i - optind + 1,
					  FRAME_MAX);
				goto out;
			}
			memcpy(buf, argv[i], len);
		} else {
			r = parse_hex(argv[i], buf, sizeof(buf), &len);
			if (r < 0) {
				ctl_error(DECODE_CMD, "frame %d: %s", i - optind + 1,
					  r == -E2BIG ? "longer than 4096 bytes" :
					  "not hex bytes (port is binary: e.g. '05 01 02 ... 00')");
				goto out;
			}
		}
		if (gw_preview_feed(p, buf, len, results) == 0 && !json_out)
			printf("frame %d: no complete frame in it\n", i - optind + 1);
	}
	if (json_out) {
		char *text = json_dumps(results, JSON_COMPACT | JSON_PRESERVE_ORDER);

		if (!text)
			goto out;
		printf("%s\n", text);
		free(text);
	} else {
		size_t i;
		json_t *o;

		json_array_foreach(results, i, o)
			print_result(o);
	}
	rc = EXIT_SUCCESS;
out:
	json_decref(results);
	gw_preview_free(p);
	gw_config_free(cfg);
	return rc;
}
