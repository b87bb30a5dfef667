/* SPDX-License-Identifier: MIT */
/*
 * The control socket (gw/control.h): a request parser without I/O, and a small non-blocking
 * server on the event loop.
 */

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "gw/control.h"
#include "gw/log.h"
#include "gw/util.h"

/* ---- the request parser ---- */

static const struct {
	const char *word;
	enum gw_control_command command;
	bool takes_ms;
} command_words[] = {
	{ "status", GW_CONTROL_STATUS, false },
	{ "version", GW_CONTROL_VERSION, false },
	{ "reload", GW_CONTROL_RELOAD, false },
	{ "debug-stall", GW_CONTROL_DEBUG_STALL, true },
};

/* The argument of debug-stall: decimal milliseconds, 1..GW_CONTROL_STALL_MAX_MS. */
static int parse_ms(const char *s, size_t len, uint32_t *ret)
{
	uint32_t v = 0;

	if (len == 0 || len > 5)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	if (v == 0 || v > GW_CONTROL_STALL_MAX_MS)
		return -EINVAL;
	*ret = v;
	return 0;
}

int gw_control_parse_request(const char *buf, size_t len, struct gw_control_request *ret,
			     char *why, size_t why_size)
{
	const char *word, *end, *arg;
	size_t n, wlen, alen;
	bool more = false;

	if (len > GW_CONTROL_REQUEST_MAX) {
		snprintf(why, why_size, "request longer than %d bytes", GW_CONTROL_REQUEST_MAX);
		return -EMSGSIZE;
	}
	/* one line: a final "\n" (or "\r\n") is the only line break allowed */
	n = len;
	if (n && buf[n - 1] == '\n')
		n--;
	if (n && buf[n - 1] == '\r')
		n--;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)buf[i];

		if (ch != ' ' && ch != '\t' && (ch < 0x21 || ch > 0x7e)) {
			snprintf(why, why_size, "request is not one line of printable ASCII");
			return -EINVAL;
		}
	}
	word = buf;
	end = buf + n;
	while (word < end && (*word == ' ' || *word == '\t'))
		word++;
	wlen = 0;
	while (word + wlen < end && word[wlen] != ' ' && word[wlen] != '\t')
		wlen++;
	if (wlen == 0) {
		snprintf(why, why_size, "empty request");
		return -EINVAL;
	}
	/* at most one argument after the word */
	arg = word + wlen;
	while (arg < end && (*arg == ' ' || *arg == '\t'))
		arg++;
	alen = 0;
	while (arg + alen < end && arg[alen] != ' ' && arg[alen] != '\t')
		alen++;
	for (const char *p = arg + alen; p < end; p++)
		more |= *p != ' ' && *p != '\t';
	for (size_t i = 0; i < sizeof(command_words) / sizeof(command_words[0]); i++) {
		if (strlen(command_words[i].word) != wlen ||
		    memcmp(command_words[i].word, word, wlen) != 0)
			continue;
		if (!command_words[i].takes_ms && (alen || more)) {
			snprintf(why, why_size, "'%.*s' takes no argument", (int)wlen, word);
			return -EINVAL;
		}
		if (command_words[i].takes_ms && (more || parse_ms(arg, alen, &ret->ms) < 0)) {
			snprintf(why, why_size, "'%.*s' needs milliseconds, 1..%d", (int)wlen, word,
				 GW_CONTROL_STALL_MAX_MS);
			return -EINVAL;
		}
		ret->command = command_words[i].command;
		return 0;
	}
	snprintf(why, why_size, "unknown request '%.*s' (status, version, reload)",
		 (int)(wlen > 32 ? 32 : wlen), word);
	return -EINVAL;
}

/* ---- the server ---- */

struct client {
	struct gw_control *c;
	int fd;
	sd_event_source *io;
	sd_event_source *timer;
	char req[GW_CONTROL_REQUEST_MAX + 1];
	size_t req_len;
	char *reply; /* once the request is answered */
	size_t reply_len, reply_sent;
	gw_control_ticket ticket; /* non-zero while an answer is deferred */
};

struct gw_control {
	sd_event *event;
	char *path;
	int fd;
	sd_event_source *io;
	gw_control_handler_fn handler;
	void *user_data;
	struct client *clients[GW_CONTROL_CLIENTS_MAX];
	size_t n_clients;
	uint64_t refused; /* peers of another user */
	struct client *answering; /* whose request the handler is handling */
	gw_control_ticket last_ticket;
};

static void client_free(struct client *cl)
{
	struct gw_control *c = cl->c;

	for (size_t i = 0; i < c->n_clients; i++)
		if (c->clients[i] == cl) {
			c->clients[i] = c->clients[--c->n_clients];
			break;
		}
	cl->io = sd_event_source_disable_unref(cl->io);
	cl->timer = sd_event_source_disable_unref(cl->timer);
	if (cl->fd >= 0)
		close(cl->fd);
	free(cl->reply);
	free(cl);
}

/* Error replies are small and built without jansson so they cannot fail. */
static void set_error_reply(struct client *cl, const char *why)
{
	json_t *o = json_pack("{s:b,s:s}", "ok", 0, "error", why);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	free(cl->reply);
	if (text && asprintf(&cl->reply, "%s\n", text) >= 0) {
		cl->reply_len = strlen(cl->reply);
	} else {
		cl->reply = gw_strdup("{\"ok\":false,\"error\":\"out of memory\"}\n");
		cl->reply_len = strlen(cl->reply);
	}
	free(text);
}

/* Turns a reply object (stolen) into the client's reply text. */
static void set_reply(struct client *cl, json_t *reply)
{
	char *text;

	if (!json_object_get(reply, "ok"))
		(void)json_object_set_new(reply, "ok", json_true());
	text = json_dumps(reply, JSON_COMPACT);
	json_decref(reply);
	free(cl->reply);
	if (!text || asprintf(&cl->reply, "%s\n", text) < 0) {
		cl->reply = NULL;
		set_error_reply(cl, "out of memory");
	} else {
		cl->reply_len = strlen(cl->reply);
	}
	free(text);
}

static void answer(struct client *cl)
{
	struct gw_control *c = cl->c;
	struct gw_control_request req = { 0 };
	char why[128] = "";
	json_t *reply;

	if (gw_control_parse_request(cl->req, cl->req_len, &req, why, sizeof(why)) < 0) {
		set_error_reply(cl, why);
		return;
	}
	c->answering = cl;
	reply = c->handler(c, &req, why, sizeof(why), c->user_data);
	c->answering = NULL;
	if (!reply && !why[0] && (cl->ticket || cl->reply))
		return; /* deferred: gw_control_complete() answers, or did already */
	cl->ticket = 0;
	if (!reply) {
		set_error_reply(cl, why[0] ? why : "the request failed");
		return;
	}
	set_reply(cl, reply);
}

static int client_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct client *cl = ud;
	ssize_t n;

	if (!cl->reply) {
		n = read(fd, cl->req + cl->req_len, sizeof(cl->req) - cl->req_len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n < 0) {
			client_free(cl);
			return 0;
		}
		cl->req_len += (size_t)n;
		if (n > 0 && !memchr(cl->req, '\n', cl->req_len) && cl->req_len < sizeof(cl->req))
			return 0;
		if (cl->req_len == 0) {
			client_free(cl); /* closed without asking */
			return 0;
		}
		answer(cl);
		(void)shutdown(fd, SHUT_RD);
		if (!cl->reply) {
			/* deferred: nothing to do on the socket until the answer comes */
			(void)sd_event_source_set_enabled(cl->io, SD_EVENT_OFF);
			(void)sd_event_source_set_time_relative(cl->timer,
								GW_CONTROL_DEFER_TIMEOUT_MS *
								1000ULL);
			return 0;
		}
		(void)sd_event_source_set_io_events(cl->io, EPOLLOUT);
	}
	while (cl->reply_sent < cl->reply_len) {
		n = send(fd, cl->reply + cl->reply_sent, cl->reply_len - cl->reply_sent,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0)
			break;
		cl->reply_sent += (size_t)n;
	}
	client_free(cl);
	return 0;
}

static int client_timeout(sd_event_source *s, uint64_t usec, void *ud)
{
	struct client *cl = ud;

	if (cl->ticket)
		gw_log(LOG_NOTICE, "control socket: a client waited %d s for its answer; dropped",
		       GW_CONTROL_DEFER_TIMEOUT_MS / 1000);
	client_free(cl);
	return 0;
}

gw_control_ticket gw_control_defer(struct gw_control *c)
{
	if (!c || !c->answering)
		return 0;
	c->answering->ticket = ++c->last_ticket;
	return c->answering->ticket;
}

int gw_control_complete(struct gw_control *c, gw_control_ticket ticket, json_t *reply,
			const char *why)
{
	struct client *cl = NULL;

	for (size_t i = 0; c && ticket && i < c->n_clients; i++)
		if (c->clients[i]->ticket == ticket)
			cl = c->clients[i];
	if (!cl) {
		json_decref(reply);
		return -ENOENT;
	}
	cl->ticket = 0;
	if (reply)
		set_reply(cl, reply);
	else
		set_error_reply(cl, why && why[0] ? why : "the request failed");
	(void)sd_event_source_set_time_relative(cl->timer, GW_CONTROL_TIMEOUT_MS * 1000ULL);
	(void)sd_event_source_set_io_events(cl->io, EPOLLOUT);
	(void)sd_event_source_set_enabled(cl->io, SD_EVENT_ON);
	return 0;
}

static bool peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	return cred.uid == 0 || cred.uid == geteuid();
}

/* Takes one waiting client; false when none was waiting. */
static bool accept_one(struct gw_control *c, int fd)
{
	struct client *cl;
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (cfd < 0)
		return false;
	if (!peer_allowed(cfd)) {
		/* the socket's mode keeps others out already; this is the second lock */
		if (c->refused++ == 0)
			gw_log(LOG_WARNING, "control socket: refused a client of another user");
		close(cfd);
		return true;
	}
	cl = gw_new0(struct client, 1);
	cl->c = c;
	cl->fd = cfd;
	if (c->n_clients == GW_CONTROL_CLIENTS_MAX) {
		/* answer at once, without reading: the reply is all it gets */
		static const char busy[] = "{\"ok\":false,\"error\":\"busy: too many clients\"}\n";

		(void)send(cfd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(cfd);
		free(cl);
		return true;
	}
	c->clients[c->n_clients++] = cl;
	if (sd_event_add_io(c->event, &cl->io, cfd, EPOLLIN, client_io, cl) < 0 ||
	    sd_event_add_time_relative(c->event, &cl->timer, CLOCK_MONOTONIC,
				       GW_CONTROL_TIMEOUT_MS * 1000ULL, 10000, client_timeout,
				       cl) < 0)
		client_free(cl);
	return true;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	/* every client waiting now, so requests that came together are handled together (after
	 * a busy moment of the loop, a second reload finds the first one under way) */
	for (int i = 0; i <= GW_CONTROL_CLIENTS_MAX; i++)
		if (!accept_one(ud, fd))
			break;
	return 0;
}

/* Is something listening at path? A socket left by a crash refuses the connection. */
static bool someone_listens(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool yes;

	if (fd < 0)
		return false;
	yes = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
	close(fd);
	return yes;
}

int gw_control_new(sd_event *event, const char *path, gw_control_handler_fn handler,
		   void *user_data, struct gw_control **ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct gw_control *c;
	_cleanup_free_ char *dir = NULL;
	struct stat st;
	mode_t old_mask;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	dir = gw_strdup(path);
	if (mkdir(dirname(dir), 0700) < 0 && errno != EEXIST) {
		r = -errno;
		gw_log(LOG_WARNING, "control socket %s: cannot create its directory: %s", path,
		       strerror(errno));
		return r;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			gw_log(LOG_WARNING, "control socket %s: something else is there; left alone",
			       path);
			return -EEXIST;
		}
		if (someone_listens(&sa)) {
			gw_log(LOG_WARNING, "control socket %s: another process answers on it (a "
			       "second sensorgwd?)", path);
			return -EADDRINUSE;
		}
		(void)unlink(path);
	}
	c = gw_new0(struct gw_control, 1);
	c->event = sd_event_ref(event);
	c->handler = handler;
	c->user_data = user_data;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		r = -errno;
		goto fail_log;
	}
	/* born 0600: no moment in which another user could connect */
	old_mask = umask(0177);
	r = bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	umask(old_mask);
	if (r < 0)
		goto fail_log;
	c->path = gw_strdup(path);
	if (listen(c->fd, GW_CONTROL_CLIENTS_MAX) < 0) {
		r = -errno;
		goto fail_log;
	}
	r = sd_event_add_io(event, &c->io, c->fd, EPOLLIN, on_accept, c);
	if (r < 0)
		goto fail_log;
	*ret = c;
	return 0;
fail_log:
	gw_log(LOG_WARNING, "control socket %s: cannot listen: %s", path, strerror(-r));
	gw_control_free(c);
	return r;
}

void gw_control_stop_listening(struct gw_control *c)
{
	if (!c)
		return;
	c->io = sd_event_source_disable_unref(c->io);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->path)
		(void)unlink(c->path);
	free(c->path);
	c->path = NULL;
}

struct gw_control *gw_control_free(struct gw_control *c)
{
	if (!c)
		return NULL;
	/* client_free() takes each out of clients[]; clang-analyzer does not see that it is
	 * always there, so thinks clients[0] could be freed twice */
	while (c->n_clients)
		client_free(c->clients[0]); /* NOLINT(clang-analyzer-unix.Malloc) */
	gw_control_stop_listening(c);
	sd_event_unref(c->event);
	free(c);
	return NULL;
}
