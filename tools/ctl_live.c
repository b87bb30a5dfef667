/* SPDX-License-Identifier: MIT */
/*
 * What sensorgwctl's live views (tail, top) share: the tail stream of the control socket
 * (gw/control.h), read one JSON line at a time, and the terminal they run in. One poll() waits
 * on the stream, the keyboard (q quits; only when stdin and stdout are a terminal, which is then
 * put in non-canonical mode without echo and restored at the end) and the signals that end or
 * resize the view (taken through a signalfd, so Ctrl-C ends it the same clean way as q).
 */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "ctl.h"

#define LINE_MAX_BYTES (256 * 1024) /* far above any event; a bound for a confused peer */
#define HELLO_TIMEOUT_MS 5000

struct ctl_live {
	const char *cmd;
	int fd;  /* the stream */
	int sfd; /* the signalfd */
	sigset_t old_mask;
	bool keys; /* reading q from a terminal */
	struct termios old_tio;
	char *buf;
	size_t len;
	bool closed; /* the daemon ended the stream */
};

/* One whole line from the buffer into *ret (NUL-terminated in place): 1, or 0 for none yet. */
static int take_line(struct ctl_live *l, char **ret, size_t *ret_len)
{
	char *nl = l->buf ? memchr(l->buf, '\n', l->len) : NULL;

	if (!nl)
		return 0;
	*nl = '\0';
	*ret = l->buf;
	*ret_len = (size_t)(nl - l->buf);
	return 1;
}

static void drop_line(struct ctl_live *l, size_t line_len)
{
	memmove(l->buf, l->buf + line_len + 1, l->len - line_len - 1);
	l->len -= line_len + 1;
}

/* Reads what the stream has: 0, or -errno; sets closed at its end. */
static int fill(struct ctl_live *l)
{
	ssize_t n;

	if (l->len == LINE_MAX_BYTES)
		return -EMSGSIZE;
	n = read(l->fd, l->buf + l->len, LINE_MAX_BYTES - l->len);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	if (n == 0)
		l->closed = true;
	l->len += (size_t)n;
	return 0;
}

int ctl_live_open(const char *cmd, const char *path, const char *request, struct ctl_live **ret)
{
	struct ctl_live *l = calloc(1, sizeof(*l));
	json_t *hello = NULL;
	json_error_t jerr;
	sigset_t mask;
	char *line;
	size_t n;
	int r;

	if (!l || !(l->buf = malloc(LINE_MAX_BYTES))) {
		free(l);
		ctl_error(cmd, "out of memory");
		return -1;
	}
	l->cmd = cmd;
	l->fd = -1;
	l->sfd = -1;
	r = ctl_connect(path, request, &l->fd);
	if (r < 0) {
		ctl_error(cmd, "cannot reach sensorgwd on %s: %s%s", path, strerror(-r),
			  ctl_connect_hint(r));
		goto fail;
	}
	/* the first line says whether the daemon streams */
	while (!take_line(l, &line, &n)) {
		struct pollfd p = { .fd = l->fd, .events = POLLIN };

		if (poll(&p, 1, HELLO_TIMEOUT_MS) == 0 || (r = fill(l)) < 0 || l->closed) {
			ctl_error(cmd, "sensorgwd did not answer the request: %s",
				  l->closed ? "it closed the connection" :
				  r < 0     ? strerror(-r) :
					      "timed out");
			goto fail;
		}
	}
	hello = json_loads(line, 0, &jerr);
	if (!json_is_true(json_object_get(hello, "ok")) ||
	    !json_is_string(json_object_get(hello, "stream"))) {
		const char *why = ctl_str(hello, "error", NULL);

		if (why)
			ctl_error(cmd, "sensorgwd refused: %s%s", why,
				  strstr(why, "unknown request") ?
					  " (sensorgwd is older than this sensorgwctl)" :
					  "");
		else
			ctl_error(cmd, "sensorgwd answered something unexpected: %.80s", line);
		json_decref(hello);
		goto fail;
	}
	json_decref(hello);
	drop_line(l, n);

	/* Ctrl-C, a hang-up and SIGTERM end the view cleanly; a resize redraws it */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGWINCH);
	sigprocmask(SIG_BLOCK, &mask, &l->old_mask);
	l->sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (l->sfd < 0) {
		ctl_error(cmd, "signalfd: %s", strerror(errno));
		goto fail;
	}
	/* a reader of our output that went away ends us through EPIPE, not SIGPIPE */
	signal(SIGPIPE, SIG_IGN);
	if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) &&
	    tcgetattr(STDIN_FILENO, &l->old_tio) == 0) {
		struct termios tio = l->old_tio;

		/* keys one by one and unechoed; Ctrl-C still signals */
		tio.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		tio.c_cc[VMIN] = 1;
		tio.c_cc[VTIME] = 0;
		l->keys = tcsetattr(STDIN_FILENO, TCSANOW, &tio) == 0;
	}
	*ret = l;
	return 0;
fail:
	ctl_live_close(l);
	return -1;
}

int ctl_live_next(struct ctl_live *l, int timeout_ms, json_t **ret)
{
	for (;;) {
		struct pollfd p[3] = {
			{ .fd = l->fd, .events = POLLIN },
			{ .fd = l->sfd, .events = POLLIN },
			{ .fd = l->keys ? STDIN_FILENO : -1, .events = POLLIN },
		};
		json_error_t jerr;
		char *line;
		size_t n;
		int r;

		if (take_line(l, &line, &n)) {
			json_t *o = json_loads(line, 0, &jerr);

			drop_line(l, n);
			if (!json_is_object(o)) {
				json_decref(o);
				ctl_error(l->cmd,
					  "sensorgwd sent a line that is not a JSON object: %s",
					  jerr.text);
				return -EBADMSG;
			}
			*ret = o;
			return CTL_LIVE_EVENT;
		}
		if (l->closed)
			return CTL_LIVE_CLOSED;
		r = poll(p, 3, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return CTL_LIVE_TIMEOUT;
		if (p[1].revents) {
			struct signalfd_siginfo si;

			if (read(l->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				return si.ssi_signo == SIGWINCH ? CTL_LIVE_RESIZE : CTL_LIVE_QUIT;
		}
		if (p[2].revents) {
			char key;
			ssize_t k = read(STDIN_FILENO, &key, 1);

			if (k == 0)
				l->keys = false; /* the terminal is gone: signals remain */
			else if (k == 1 && (key == 'q' || key == 'Q'))
				return CTL_LIVE_QUIT;
		}
		if (p[0].revents) {
			r = fill(l);
			if (r < 0) {
				ctl_error(l->cmd, "reading from sensorgwd: %s", strerror(-r));
				return r;
			}
		}
	}
}

bool ctl_live_interactive(const struct ctl_live *l)
{
	return l->keys;
}

void ctl_live_close(struct ctl_live *l)
{
	if (!l)
		return;
	if (l->keys)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &l->old_tio);
	if (l->sfd >= 0) {
		close(l->sfd);
		sigprocmask(SIG_SETMASK, &l->old_mask, NULL);
	}
	if (l->fd >= 0)
		close(l->fd);
	free(l->buf);
	free(l);
}
