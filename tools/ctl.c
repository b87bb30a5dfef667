/* SPDX-License-Identifier: MIT */
/*
 * sensorgwctl: the command-line companion of sensorgwd.
 *
 * Commands are looked up in tables, two levels deep ("sign aliyun"), so that new ones ("sign
 * tencent", "status", "reload", "decode") are one function and one table row each. Exit codes:
 * 0 success, 1 the command failed, 2 the command line is wrong.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "gw-build.h"
#include "gw/aliyun.h"
#include "gw/tencent.h"
#include "gw/util.h"

/* A secret file larger than this is certainly not a secret (they are 32..512 bytes). */
#define SECRET_FILE_MAX 4096

static int cmd_sign(int argc, char **argv);

static const struct command commands[] = {
	{ "sign", "print the MQTT CONNECT parameters of a device on a cloud platform", cmd_sign },
	{ "status", "show the running daemon's ports, nodes, uplinks and spool", ctl_status },
	{ "metrics", "print the running daemon's counters as Prometheus metrics", ctl_metrics },
	{ "tail", "show the frames the running daemon receives, as they arrive", ctl_tail },
	{ "top", "a live full-screen view of ports, uplinks and nodes", ctl_top },
	{ "reload", "make the running daemon reload its configuration file", ctl_reload },
	{ "decode", "show what the daemon would make of frames on a port", ctl_decode },
};

static const struct command sign_targets[] = {
	{ "aliyun", "Alibaba Cloud IoT Platform (阿里云物联网平台)", ctl_sign_aliyun },
	{ "tencent", "Tencent Cloud IoT Explorer (物联网开发平台)", ctl_sign_tencent },
	{ "aliyun-subdev", "Aliyun gateway: a sub-device's topo/add and login sign",
	  ctl_sign_aliyun_subdev },
	{ "tencent-bind", "Tencent gateway: a sub-device's bind signature", ctl_sign_tencent_bind },
};

void ctl_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "sensorgwctl: %s%s", cmd ? cmd : "", cmd ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int ctl_usage_error(const char *cmd, const char *synopsis, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "sensorgwctl: %s%s", cmd ? cmd : "", cmd ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nUsage: %s\nTry 'sensorgwctl %s%s--help' for more information.\n",
		synopsis, cmd ? cmd : "", cmd ? " " : "");
	return EXIT_USAGE;
}

static void list_commands(FILE *f, const char *prefix, const struct command *table, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		fprintf(f, "  %s%-*s %s\n", prefix, (int)(22 - strlen(prefix)), table[i].name,
			table[i].summary);
}

#define MAIN_SYNOPSIS "sensorgwctl COMMAND [ARG]..."

static void main_help(void)
{
	printf("Usage: " MAIN_SYNOPSIS "\n"
	       "       sensorgwctl --help | --version\n"
	       "Control and inspect sensorgw.\n\nCommands:\n");
	list_commands(stdout, "", commands, N_ELEMENTS(commands));
	printf("\nCloud platforms of 'sign':\n");
	list_commands(stdout, "sign ", sign_targets, N_ELEMENTS(sign_targets));
	printf("\n"
	       "  -h, --help     show this help and exit\n"
	       "  -V, --version  show the version and exit\n"
	       "\n'sensorgwctl COMMAND --help' describes a command. See sensorgwctl(1).\n");
}

/* Runs the command named argv[0] from table; what names the level for messages. */
static int dispatch(const struct command *table, size_t n, const char *what, const char *synopsis,
		    int argc, char **argv)
{
	size_t i;

	if (argc < 1)
		return ctl_usage_error(what, synopsis, "missing %s",
				   what ? "cloud platform" : "command");
	for (i = 0; i < n; i++)
		if (strcmp(argv[0], table[i].name) == 0)
			return table[i].run(argc, argv);
	return ctl_usage_error(what, synopsis, "unknown %s '%s'", what ? "cloud platform" : "command",
			   argv[0]);
}

#define SIGN_SYNOPSIS "sensorgwctl sign CLOUD [OPTION]..."

static int cmd_sign(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("Usage: " SIGN_SYNOPSIS "\n"
		       "Print the MQTT CONNECT parameters of a device, or the signed fields of a\n"
		       "sub-device behind a gateway, one key=value per line.\n\n");
		list_commands(stdout, "sign ", sign_targets, N_ELEMENTS(sign_targets));
		return EXIT_SUCCESS;
	}
	return dispatch(sign_targets, N_ELEMENTS(sign_targets), "sign", SIGN_SYNOPSIS, argc - 1,
			argv + 1);
}

char *ctl_read_file(const char *cmd, const char *opt, const char *path, size_t max, size_t *len)
{
	bool use_stdin = strcmp(path, "-") == 0;
	const char *name = use_stdin ? "standard input" : path;
	FILE *opened = use_stdin ? NULL : fopen(path, "re"); /* closed here; stdin is not */
	FILE *f = use_stdin ? stdin : opened;
	char *buf;
	size_t n;

	if (!f) {
		ctl_error(cmd, "%s: cannot open %s: %s", opt, path, strerror(errno));
		return NULL;
	}
	buf = calloc(1, max + 1);
	if (!buf) {
		ctl_error(cmd, "out of memory");
		goto out;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f) || n > max) {
		if (ferror(f))
			ctl_error(cmd, "%s: cannot read %s", opt, name);
		else
			ctl_error(cmd, "%s: %s is larger than %zu bytes", opt, name, max);
		explicit_bzero(buf, max + 1);
		free(buf);
		buf = NULL;
		goto out;
	}
	*len = n;
out:
	if (opened)
		fclose(opened);
	return buf;
}

char *ctl_read_secret(const char *cmd, const char *opt, const char *path)
{
	size_t n = 0;
	char *buf = ctl_read_file(cmd, opt, path, SECRET_FILE_MAX, &n);

	if (!buf)
		return NULL;
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	if (n == 0 || memchr(buf, '\n', n) || strlen(buf) != n) {
		ctl_error(cmd, "%s: %s must hold the secret alone on one line", opt,
			  strcmp(path, "-") == 0 ? "standard input" : path);
		explicit_bzero(buf, SECRET_FILE_MAX + 1);
		free(buf);
		return NULL;
	}
	return buf;
}

int ctl_parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		main_help();
		return EXIT_SUCCESS;
	}
	if (argc >= 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))) {
		printf("sensorgwctl %s\n", GW_VERSION);
		return EXIT_SUCCESS;
	}
	if (argc >= 2 && argv[1][0] == '-')
		return ctl_usage_error(NULL, MAIN_SYNOPSIS, "unknown option '%s'", argv[1]);
	return dispatch(commands, N_ELEMENTS(commands), NULL, MAIN_SYNOPSIS, argc - 1, argv + 1);
}
