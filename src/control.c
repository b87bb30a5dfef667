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

enum arg_kind { ARG_NONE, ARG_MS, ARG_TAIL };

static const struct {
	const char *word;
	enum gw_control_command command;
	enum arg_kind args;
} command_words[] = {
	{ "status", GW_CONTROL_STATUS, ARG_NONE },
	{ "version", GW_CONTROL_VERSION, ARG_NONE },
	{ "reload", GW_CONTROL_RELOAD, ARG_NONE },
	{ "tail", GW_CONTROL_TAIL, ARG_TAIL },
	{ "debug-stall", GW_CONTROL_DEBUG_STALL, ARG_MS },
};

#define WORDS_MAX 4

struct word {
	const char *s;
	size_t len;
};

static bool word_is(const struct word *w, const char *lit)
{
	return w->len == strlen(lit) && memcmp(w->s, lit, w->len) == 0;
}

/* The argument of debug-stall: decimal milliseconds, 1..GW_CONTROL_STALL_MAX_MS. */
static int parse_ms(const struct word *w, uint32_t *ret)
{
	uint32_t v = 0;

	if (w->len == 0 || w->len > 5)
		return -EINVAL;
	for (size_t i = 0; i < w->len; i++) {
		if (w->s[i] < '0' || w->s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint32_t)(w->s[i] - '0');
	}
	if (v == 0 || v > GW_CONTROL_STALL_MAX_MS)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* tail's filters: port=NAME, node=ID, raw; each at most once. */
static int parse_tail(const struct word *args, size_t n, struct gw_control_request *ret, char *why,
		      size_t why_size)
{
	for (size_t i = 0; i < n; i++) {
		const struct word *w = &args[i];
		char *dst = NULL;
		size_t skip = 0;

		if (word_is(w, "raw") && !ret->raw) {
			ret->raw = true;
			continue;
		}
		if (w->len > 5 && memcmp(w->s, "port=", 5) == 0 && !ret->port[0]) {
			dst = ret->port;
			skip = 5;
		} else if (w->len > 5 && memcmp(w->s, "node=", 5) == 0 && !ret->node[0]) {
			dst = ret->node;
			skip = 5;
		}
		if (!dst) {
			snprintf(why, why_size,
				 "'tail' takes port=NAME, node=ID and raw, each once; "
				 "not '%.*s'",
				 (int)(w->len > 32 ? 32 : w->len), w->s);
			return -EINVAL;
		}
		if (w->len - skip >= GW_CONTROL_FILTER_MAX) {
			snprintf(why, why_size, "'tail': %.*s longer than %d bytes",
				 (int)(skip - 1), w->s, GW_CONTROL_FILTER_MAX - 1);
			return -EINVAL;
		}
		memcpy(dst, w->s + skip, w->len - skip);
		dst[w->len - skip] = '\0';
	}
	return 0;
}

int gw_control_parse_request(const char *buf, size_t len, struct gw_control_request *ret,
			     char *why, size_t why_size)
{
	struct gw_control_request req = { 0 };
	struct word words[WORDS_MAX + 1];
	size_t n, n_words = 0;
	const char *p, *end;

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
	/* blank-separated words; one more than any request takes is enough to refuse */
	end = buf + n;
	for (p = buf; p < end && n_words <= WORDS_MAX;) {
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p == end)
			break;
		words[n_words].s = p;
		while (p < end && *p != ' ' && *p != '\t')
			p++;
		words[n_words].len = (size_t)(p - words[n_words].s);
		n_words++;
	}
	if (n_words == 0) {
		snprintf(why, why_size, "empty request");
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(command_words) / sizeof(command_words[0]); i++) {
		const struct word *w = &words[0];

		if (!word_is(w, command_words[i].word))
			continue;
		switch (command_words[i].args) {
		case ARG_NONE:
			if (n_words > 1) {
				snprintf(why, why_size, "'%s' takes no argument",
					 command_words[i].word);
				return -EINVAL;
			}
			break;
		case ARG_MS:
			if (n_words != 2 || parse_ms(&words[1], &req.ms) < 0) {
				snprintf(why, why_size, "'%s' needs milliseconds, 1..%d",
					 command_words[i].word, GW_CONTROL_STALL_MAX_MS);
				return -EINVAL;
			}
			break;
		case ARG_TAIL:
			if (n_words > WORDS_MAX) {
				snprintf(why, why_size,
					 "'tail' takes port=NAME, node=ID and raw, "
					 "each once");
				return -EINVAL;
			}
			if (parse_tail(words + 1, n_words - 1, &req, why, why_size) < 0)
				return -EINVAL;
			break;
		}
		req.command = command_words[i].command;
		*ret = req;
		return 0;
	}
	snprintf(why, why_size, "unknown request '%.*s' (status, version, reload, tail)",
		 (int)(words[0].len > 32 ? 32 : words[0].len), words[0].s);
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
	/* a tail client: its filters, and its queue q[q_off..q_len) of whole lines */
	bool stream;
	struct gw_control_request filter;
	char *q;
	size_t q_len, q_off;
	uint64_t q_dropped; /* lines dropped since the client was last told */
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
	size_t n_streams;
	uint64_t refused; /* peers of another user */
	struct client *answering; /* whose request the handler is handling */
	gw_control_ticket last_ticket;
	uint64_t stream_events, stream_dropped;
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
	if (cl->stream)
		c->n_streams--;
	free(cl->reply);
	free(cl->q);
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

/* ---- tail clients ---- */

static const char stream_hello[] = "{\"ok\":true,\"stream\":\"tail\"}\n";

/* Appends what fits; false when the line (and its newline) does not. */
static bool queue_line(struct client *cl, const char *line, size_t len, bool newline)
{
	size_t need = len + (newline ? 1 : 0);

	if (cl->q_off && cl->q_len + need > GW_CONTROL_STREAM_QUEUE) {
		memmove(cl->q, cl->q + cl->q_off, cl->q_len - cl->q_off);
		cl->q_len -= cl->q_off;
		cl->q_off = 0;
	}
	if (cl->q_len + need > GW_CONTROL_STREAM_QUEUE)
		return false;
	memcpy(cl->q + cl->q_len, line, len);
	cl->q_len += len;
	if (newline)
		cl->q[cl->q_len++] = '\n';
	return true;
}

/* Tells the client how many lines it lost, once there is room for the notice. */
static bool queue_dropped(struct client *cl)
{
	char notice[64];
	int n;

	if (!cl->q_dropped)
		return true;
	n = snprintf(notice, sizeof(notice), "{\"event\":\"dropped\",\"count\":%llu}",
		     (unsigned long long)cl->q_dropped);
	if (!queue_line(cl, notice, (size_t)n, true))
		return false;
	cl->q_dropped = 0;
	return true;
}

static void want_write(struct client *cl)
{
	(void)sd_event_source_set_io_events(cl->io, EPOLLIN | EPOLLOUT);
}

/* Sends what the socket takes; frees the client when it went away. */
static void stream_flush(struct client *cl)
{
	ssize_t n;

	for (;;) {
		if (cl->q_off == cl->q_len) {
			cl->q_off = cl->q_len = 0;
			if (!cl->q_dropped || !queue_dropped(cl))
				break;
		}
		n = send(cl->fd, cl->q + cl->q_off, cl->q_len - cl->q_off,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			want_write(cl);
			return;
		}
		if (n <= 0) {
			client_free(cl);
			return;
		}
		cl->q_off += (size_t)n;
	}
	(void)sd_event_source_set_io_events(cl->io, EPOLLIN);
}

static void start_stream(struct client *cl, const struct gw_control_request *req)
{
	struct gw_control *c = cl->c;

	if (c->n_streams >= GW_CONTROL_STREAMS_MAX) {
		char why[96];

		snprintf(why, sizeof(why), "busy: %d tail clients already", GW_CONTROL_STREAMS_MAX);
		set_error_reply(cl, why);
		return;
	}
	cl->stream = true;
	cl->filter = *req;
	cl->q = gw_malloc0(GW_CONTROL_STREAM_QUEUE);
	c->n_streams++;
	(void)queue_line(cl, stream_hello, sizeof(stream_hello) - 1, false);
	/* a stream has no deadline: it lasts until the client closes */
	(void)sd_event_source_set_enabled(cl->timer, SD_EVENT_OFF);
}

/* A tail client's socket: what it sends after its request is read and ignored; its end
 * (or an error) ends the stream. */
static void stream_io(struct client *cl, uint32_t revents)
{
	char sink[256];
	ssize_t n;

	if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		n = read(cl->fd, sink, sizeof(sink));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			client_free(cl);
			return;
		}
	}
	if (revents & EPOLLOUT)
		stream_flush(cl);
}

static bool stream_matches(const struct client *cl, enum gw_control_event kind, const char *port,
			   const char *node)
{
	const struct gw_control_request *f = &cl->filter;

	if (kind == GW_CONTROL_EVENT_RAW && !f->raw)
		return false;
	if (f->port[0] && (!port || strcmp(f->port, port) != 0))
		return false;
	if (f->node[0] && (!node || strcmp(f->node, node) != 0))
		return false;
	return true;
}

bool gw_control_streaming(const struct gw_control *c, enum gw_control_event kind)
{
	for (size_t i = 0; c && c->n_streams && i < c->n_clients; i++)
		if (c->clients[i]->stream &&
		    (kind != GW_CONTROL_EVENT_RAW || c->clients[i]->filter.raw))
			return true;
	return false;
}

void gw_control_publish(struct gw_control *c, enum gw_control_event kind, const char *port,
			const char *node, const char *line, size_t len)
{
	for (size_t i = 0; c && c->n_streams && i < c->n_clients; i++) {
		struct client *cl = c->clients[i];
		bool idle;

		if (!cl->stream || !stream_matches(cl, kind, port, node))
			continue;
		idle = cl->q_off == cl->q_len;
		if (!queue_dropped(cl) || !queue_line(cl, line, len, true)) {
			cl->q_dropped++;
			c->stream_dropped++;
			continue;
		}
		c->stream_events++;
		if (idle)
			want_write(cl);
	}
}

void gw_control_get_stats(const struct gw_control *c, struct gw_control_stats *ret)
{
	*ret = (struct gw_control_stats){ 0 };
	if (!c)
		return;
	ret->streams = c->n_streams;
	ret->stream_events = c->stream_events;
	ret->stream_dropped = c->stream_dropped;
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
	if (req.command == GW_CONTROL_TAIL) {
		start_stream(cl, &req);
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

	if (cl->stream) {
		stream_io(cl, revents);
		return 0;
	}
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
		if (cl->stream) {
			want_write(cl);
			return 0;
		}
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
