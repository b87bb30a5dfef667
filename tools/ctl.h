/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * What the parts of sensorgwctl share: the command table shape, messages and exit codes
 * (0 success, 1 the command failed, 2 the command line is wrong).
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXIT_USAGE 2

struct command {
	const char *name;
	const char *summary;
	/* argv[0] is the command's own name; returns the exit code. */
	int (*run)(int argc, char **argv);
};

/* "sensorgwctl: CMD: message" on stderr. */
void ctl_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A usage error: the message, the synopsis and where to find more; returns EXIT_USAGE. */
int ctl_usage_error(const char *cmd, const char *synopsis, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Reads a secret from path ("-" = standard input): one line, the newline (LF or CRLF) at its
 * end removed. Returns a malloc'd string or NULL after a message naming cmd and opt.
 */
char *ctl_read_secret(const char *cmd, const char *opt, const char *path);
/* A decimal number 0..max (digits only): 0 or -EINVAL. */
int ctl_parse_u64(const char *s, uint64_t max, uint64_t *ret);

/* Sends request to the control socket at path and reads the whole reply into *ret
 * (NUL-terminated, free it); waits at most timeout_ms for each read. 0 or -errno. */
int ctl_ask(const char *path, const char *request, int timeout_ms, char **ret, size_t *ret_len);
/* ctl_ask(), then the reply parsed as a JSON object into *ret_obj (the raw text in *ret_reply;
 * free both). On failure the reason is printed for cmd and -1 returned, with nothing to free. */
int ctl_ask_object(const char *cmd, const char *path, const char *request, int timeout_ms,
		   json_t **ret_obj, char **ret_reply);
/*
 * The options of a command that asks the daemon: -j/--json (*json_out), -s/--socket PATH
 * (*path, default GW_CONFIG_DEFAULT_CONTROL_SOCKET) and -h/--help (help() is called). Returns
 * -1 to go on, else the exit code to return (after the help, or a usage error).
 */
int ctl_socket_options(int argc, char **argv, const char *cmd, const char *synopsis,
		       void (*help)(void), const char **path, bool *json_out);
/* The string member key of o, or none. */
const char *ctl_str(const json_t *o, const char *key, const char *none);

/* sensorgwctl status [--json] [--socket PATH] (ctl_status.c) */
int ctl_status(int argc, char **argv);

/* sensorgwctl decode [-c CONFIG] --port NAME [--json] FRAME... (ctl_decode.c) */
int ctl_decode(int argc, char **argv);

/* sensorgwctl reload [--json] [--socket PATH] (ctl_reload.c) */
int ctl_reload(int argc, char **argv);

/* sensorgwctl sign aliyun-subdev, sign tencent-bind (ctl_gwsign.c) */
int ctl_sign_aliyun_subdev(int argc, char **argv);
int ctl_sign_tencent_bind(int argc, char **argv);
