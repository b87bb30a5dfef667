/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * What the parts of sensorgwctl share: the command table shape, messages and exit codes
 * (0 success, 1 the command failed, 2 the command line is wrong).
 */

#include <getopt.h>
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
/* The whole file at path ('-': standard input), at most max bytes, NUL-terminated, in a
 * malloc'd buffer, its length in *len; NULL after a message naming cmd and opt. */
char *ctl_read_file(const char *cmd, const char *opt, const char *path, size_t max, size_t *len);
char *ctl_read_secret(const char *cmd, const char *opt, const char *path);
/* A decimal number 0..max (digits only): 0 or -EINVAL. */
int ctl_parse_u64(const char *s, uint64_t max, uint64_t *ret);

/* Connects to the control socket at path and sends request: the socket in *ret, or -errno. */
int ctl_connect(const char *path, const char *request, int *ret);
/* What to add to a message about a ctl_connect() error: a likely reason, or "". */
const char *ctl_connect_hint(int r);
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
/* The integer member key of o, 0 when there is none. */
json_int_t ctl_num(const json_t *o, const char *key);
/* "3 s", "4 min", "2 h" (an age in milliseconds; "-" when negative) into buf. */
void ctl_format_age(int64_t ms, char *buf, size_t size);
/* The string member key of o, or none. */
const char *ctl_str(const json_t *o, const char *key, const char *none);

/* sensorgwctl status [--json] [--socket PATH] (ctl_status.c) */
int ctl_status(int argc, char **argv);

/* sensorgwctl metrics [--socket PATH] (ctl_metrics.c) */
int ctl_metrics(int argc, char **argv);

/* ---- live views on the control socket's tail stream (ctl_live.c) ---- */

struct ctl_live;

enum {
	CTL_LIVE_EVENT,   /* *ret holds the next event object */
	CTL_LIVE_TIMEOUT, /* nothing within the time given */
	CTL_LIVE_RESIZE,  /* the terminal changed its size */
	CTL_LIVE_QUIT,    /* q, Ctrl-C, SIGTERM or a hang-up */
	CTL_LIVE_CLOSED,  /* sensorgwd ended the stream (it stopped) */
};

/* Connects to path, sends request (a "tail ..." line) and checks the daemon's first answer;
 * takes the signals and, when stdin and stdout are a terminal, the keyboard. -1 after a
 * message for cmd. */
int ctl_live_open(const char *cmd, const char *path, const char *request, struct ctl_live **ret);
/* Waits at most timeout_ms (-1: no limit): one of the CTL_LIVE_ values, or -errno after a
 * message. */
int ctl_live_next(struct ctl_live *l, int timeout_ms, json_t **ret);
/* Are keys read (stdin and stdout a terminal)? */
bool ctl_live_interactive(const struct ctl_live *l);
/* Gives back the terminal and the signals. Accepts NULL. */
void ctl_live_close(struct ctl_live *l);

/* sensorgwctl tail [--port P] [--node N] [--raw[=hex|text]] [--json] [--socket PATH] */
int ctl_tail(int argc, char **argv);
/* sensorgwctl top [--iterations N] [--socket PATH] */
int ctl_top(int argc, char **argv);

/* sensorgwctl decode [-c CONFIG] --port NAME [--json] FRAME... (ctl_decode.c) */
int ctl_decode(int argc, char **argv);

/* sensorgwctl reload [--json] [--socket PATH] (ctl_reload.c) */
int ctl_reload(int argc, char **argv);

/* ---- sensorgwctl sign: the engine (ctl_sign.c) and its variants ---- */

/* How a sign command's secret was given. */
enum ctl_secret_form {
	CTL_SECRET_INLINE, /* on the command line: copied, then wiped from argv */
	CTL_SECRET_FILE,   /* a file ('-': standard input) holding it alone on one line */
	CTL_SECRET_PATH,   /* a file the variant reads itself: secret is its path */
};

struct ctl_sign_variant;

/* One run of a sign command. */
struct ctl_sign {
	const struct ctl_sign_variant *v;
	void *args;             /* the variant's */
	int secret_kind;        /* the variant's kind of secret; 0 while none was given */
	const char *secret_opt; /* the option that gave it, for messages */
	enum ctl_secret_form secret_form;
	char *secret_arg; /* the secret (argv) or the file's name */
	char *secret;     /* the secret (CTL_SECRET_PATH: the path) during run() */
};

struct ctl_sign_variant {
	const char *cmd;      /* "sign aliyun" */
	const char *synopsis; /* for usage errors */
	void (*help)(void);
	const struct option *options; /* getopt_long's table, with { "help", ..., 'h' } */
	/* one option of the table but -h: 0, or the exit code after a usage error */
	int (*option)(struct ctl_sign *s, int opt, char *arg);
	/* the command line's own rules once it is read (a secret given among them): 0 or an
	 * exit code */
	int (*check)(struct ctl_sign *s);
	/* computes and prints with s->secret; the exit code (the engine checks stdout) */
	int (*run)(struct ctl_sign *s);
};

/* Runs variant v over argv (argv[0] is its name) with args its own state: the exit code. */
int ctl_sign_run(const struct ctl_sign_variant *v, void *args, int argc, char **argv);
/* The secret from option opt: exactly one may be given (else a usage error's exit code). */
int ctl_sign_take_secret(struct ctl_sign *s, int kind, const char *opt, enum ctl_secret_form form,
			 char *arg);

/* sensorgwctl sign aliyun, sign tencent (ctl_sign_login.c) */
int ctl_sign_aliyun(int argc, char **argv);
int ctl_sign_tencent(int argc, char **argv);
/* sensorgwctl sign aliyun-subdev, sign tencent-bind (ctl_gwsign.c) */
int ctl_sign_aliyun_subdev(int argc, char **argv);
int ctl_sign_tencent_bind(int argc, char **argv);
