/* SPDX-License-Identifier: MIT */
/*
 * sensorgwctl sign CLOUD: one engine for its variants (sign aliyun, sign tencent in
 * ctl_sign_login.c; sign aliyun-subdev, sign tencent-bind in ctl_gwsign.c), as one engine serves
 * thin variants elsewhere in the project. The engine owns the option scan (help, missing values,
 * unknown options and stray arguments as usage errors with the variant's synopsis), the one
 * secret a variant takes (inline, wiped from argv at once; from a file or standard input; or a
 * file the variant reads itself), wiping it after use, and the check that standard output was
 * written. A variant owns its options, the rules of its command line, and what it computes and
 * prints.
 */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

int ctl_sign_take_secret(struct ctl_sign *s, int kind, const char *opt, enum ctl_secret_form form,
			 char *arg)
{
	if (s->secret_kind)
		return ctl_usage_error(s->v->cmd, s->v->synopsis, "%s and %s exclude each other",
				       s->secret_opt, opt);
	s->secret_kind = kind;
	s->secret_opt = opt;
	s->secret_form = form;
	s->secret_arg = arg;
	return 0;
}

/* The secret the command line gave, as a malloc'd string; NULL after a message. */
static char *read_secret(const struct ctl_sign *s)
{
	char *secret;

	if (s->secret_form == CTL_SECRET_FILE)
		return ctl_read_secret(s->v->cmd, s->secret_opt, s->secret_arg);
	secret = strdup(s->secret_arg);
	if (!secret) {
		ctl_error(s->v->cmd, "out of memory");
		return NULL;
	}
	/* Shortens the time an inline secret shows in /proc/PID/cmdline; the man page points at
	 * the *-file options, which avoid it altogether. */
	if (s->secret_form == CTL_SECRET_INLINE)
		explicit_bzero(s->secret_arg, strlen(s->secret_arg));
	return secret;
}

int ctl_sign_run(const struct ctl_sign_variant *v, void *args, int argc, char **argv)
{
	struct ctl_sign s = { .v = v, .args = args };
	int c, r;

	optind = 0; /* a fresh getopt scan over this command's own argv */
	opterr = 0; /* unknown options get our message, with the synopsis */
	while ((c = getopt_long(argc, argv, ":h", v->options, NULL)) != -1) {
		if (c == 'h') {
			v->help();
			return EXIT_SUCCESS;
		}
		if (c == ':')
			return ctl_usage_error(v->cmd, v->synopsis, "%s needs a value",
					       argv[optind - 1]);
		if (c == '?')
			return ctl_usage_error(v->cmd, v->synopsis, "unknown option '%s'",
					       argv[optind - 1]);
		r = v->option(&s, c, optarg);
		if (r)
			return r;
	}
	if (optind < argc)
		return ctl_usage_error(v->cmd, v->synopsis, "unexpected argument '%s'",
				       argv[optind]);
	r = v->check(&s);
	if (r)
		return r;
	if (!s.secret_kind) /* check() refuses that; a variant that forgot is a bug */
		return ctl_usage_error(v->cmd, v->synopsis, "the secret is missing");
	s.secret = read_secret(&s);
	if (!s.secret)
		return EXIT_FAILURE;
	r = v->run(&s);
	if (r == EXIT_SUCCESS && (fflush(stdout) != 0 || ferror(stdout))) {
		ctl_error(v->cmd, "cannot write to standard output: %s", strerror(errno));
		r = EXIT_FAILURE;
	}
	explicit_bzero(s.secret, strlen(s.secret));
	free(s.secret);
	return r;
}
