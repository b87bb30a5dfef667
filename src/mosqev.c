/* SPDX-License-Identifier: MIT */
/* The libmosquitto adapter: a client on the sd-event loop; see include/gw/mosqev.h. */

#include <errno.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "gw/mosqev.h"
#include "gw/util.h"

struct gw_mosqev {
	sd_event *event;
	struct mosquitto *mosq;
	unsigned flags;
	uint64_t tick_us;
	struct gw_mosqev_hooks hooks;
	void *user_data;
	int fd;
	sd_event_source *io;
	sd_event_source *tick;
	bool up;     /* CONNACK 0, not closed since */
	bool closed; /* libmosquitto reported the connection gone */
	bool ended;  /* the owner gave the session up */
	bool held;   /* the owner reads the socket on its batch clock (gw_mosqev_hold) */
	bool in_off; /* EPOLLIN taken off while held: gw_mosqev_poll() reads instead */
	int connack_rc;
	char last_error[GW_MOSQEV_ERROR_MAX];
};

/* ---- libmosquitto's callbacks: the state first, then the owner ---- */

static void on_connect(struct mosquitto *mosq, void *ud, int rc)
{
	struct gw_mosqev *m = ud;

	/* after a refusal libmosquitto closes the connection; on_disconnect follows */
	m->connack_rc = rc;
	if (rc == 0) {
		m->up = true;
		m->last_error[0] = '\0';
	}
	if (m->hooks.connect)
		m->hooks.connect(m->user_data, rc);
}

static void on_disconnect(struct mosquitto *mosq, void *ud, int rc)
{
	struct gw_mosqev *m = ud;

	m->closed = true;
	m->up = false;
	if (rc != 0 && !m->last_error[0])
		snprintf(m->last_error, sizeof(m->last_error), "%s", mosquitto_strerror(rc));
}

static void on_subscribe(struct mosquitto *mosq, void *ud, int mid, int qos_count,
			 const int *granted_qos)
{
	struct gw_mosqev *m = ud;

	if (m->hooks.subscribe)
		m->hooks.subscribe(m->user_data, mid, qos_count, granted_qos);
}

static void on_message(struct mosquitto *mosq, void *ud, const struct mosquitto_message *msg)
{
	struct gw_mosqev *m = ud;

	if (m->hooks.message)
		m->hooks.message(m->user_data, msg);
}

static void on_publish(struct mosquitto *mosq, void *ud, int mid)
{
	struct gw_mosqev *m = ud;

	if (m->hooks.publish)
		m->hooks.publish(m->user_data, mid);
}

static void on_log(struct mosquitto *mosq, void *ud, int level, const char *str)
{
	struct gw_mosqev *m = ud;

	/* TLS and socket failures reach us only through the log; it never holds the password */
	gw_mosqev_note_log(mosq, level, str, m->last_error, sizeof(m->last_error));
	if (m->hooks.log)
		m->hooks.log(m->user_data, level, str);
}

/* ---- the loop ---- */

/* The session ends: the hook frees m, so nothing of it is used afterwards. */
static void end(struct gw_mosqev *m, int rc)
{
	m->hooks.lost(m->user_data, rc);
}

static int io_cb(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct gw_mosqev *m = ud;
	int rc = MOSQ_ERR_SUCCESS;

	if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
		rc = mosquitto_loop_read(m->mosq, 1);
	if (!gw_mosqev_lost(m) && rc == MOSQ_ERR_SUCCESS && (revents & EPOLLOUT))
		rc = mosquitto_loop_write(m->mosq, 1);
	/*
	 * Any error from libmosquitto, or a hang-up, ends the session. libmosquitto does not
	 * always close the socket itself (a refused non-blocking connect leaves it open), and a
	 * socket in hang-up would wake the loop forever.
	 */
	if (gw_mosqev_lost(m) || rc != MOSQ_ERR_SUCCESS || (revents & (EPOLLHUP | EPOLLERR))) {
		if (!m->last_error[0] && m->fd >= 0) {
			int err = 0;
			socklen_t len = sizeof(err);

			if (getsockopt(m->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err)
				snprintf(m->last_error, sizeof(m->last_error), "%s", strerror(err));
			else if ((m->flags & GW_MOSQEV_SAY_CLOSED) ||
				 (revents & (EPOLLHUP | EPOLLERR)))
				snprintf(m->last_error, sizeof(m->last_error), "connection closed");
		}
		end(m, rc);
		return 1; /* m is gone: gw_mosqev_poll() must not look at it (sd-event ignores it) */
	}
	/* a session held on the owner's clock that woke us once is read by gw_mosqev_poll()
	 * from now on: its next PUBACKs wait for the owner's next round instead of a wake-up */
	if (m->held && m->up && (revents & EPOLLIN))
		m->in_off = true;
	if (m->hooks.after)
		m->hooks.after(m->user_data);
	(void)gw_mosqev_update(m);
	return 0;
}

static int tick_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_mosqev *m = ud;
	int rc = m->hooks.tick ? m->hooks.tick(m->user_data) : MOSQ_ERR_SUCCESS;

	if (rc != MOSQ_ERR_SUCCESS) {
		end(m, rc);
		return 0;
	}
	rc = mosquitto_loop_misc(m->mosq);
	if (gw_mosqev_lost(m) || rc != MOSQ_ERR_SUCCESS) {
		end(m, rc);
		return 0;
	}
	(void)sd_event_source_set_time_relative(s, m->tick_us);
	(void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	(void)gw_mosqev_update(m);
	return 0;
}

/* ---- the object ---- */

int gw_mosqev_new(sd_event *event, const char *client_id, bool clean_session, unsigned flags,
		  const struct gw_mosqev_hooks *hooks, void *user_data, struct gw_mosqev **ret)
{
	struct gw_mosqev *m = gw_new0(struct gw_mosqev, 1);

	m->event = event;
	m->flags = flags;
	m->hooks = *hooks;
	m->user_data = user_data;
	m->fd = -1;
	m->mosq = mosquitto_new(client_id, clean_session, m);
	if (!m->mosq) {
		free(m);
		return -ENOMEM;
	}
	mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	mosquitto_connect_callback_set(m->mosq, on_connect);
	mosquitto_disconnect_callback_set(m->mosq, on_disconnect);
	mosquitto_publish_callback_set(m->mosq, on_publish);
	mosquitto_subscribe_callback_set(m->mosq, on_subscribe);
	mosquitto_message_callback_set(m->mosq, on_message);
	mosquitto_log_callback_set(m->mosq, on_log);
	*ret = m;
	return 0;
}

struct mosquitto *gw_mosqev_client(struct gw_mosqev *m)
{
	return m->mosq;
}

int gw_mosqev_connect(struct gw_mosqev *m, const char *host, uint16_t port,
		      uint32_t keepalive_s)
{
	/* a quarter of the keepalive keeps libmosquitto's ping in time */
	uint64_t us = (uint64_t)keepalive_s * 250000;
	int rc;
	int r;

	rc = mosquitto_connect_async(m->mosq, host, port, (int)keepalive_s);
	if (rc != MOSQ_ERR_SUCCESS || (m->flags & GW_MOSQEV_NO_TICK))
		return rc;
	m->tick_us = us > 15000000 ? 15000000 : us;
	r = sd_event_add_time_relative(m->event, &m->tick, CLOCK_MONOTONIC, m->tick_us, 0,
				       tick_cb, m);
	if (r < 0) {
		snprintf(m->last_error, sizeof(m->last_error), "cannot arm its timer: %s",
			 strerror(-r));
		return MOSQ_ERR_NOMEM;
	}
	return MOSQ_ERR_SUCCESS;
}

int gw_mosqev_update(struct gw_mosqev *m)
{
	uint32_t events;
	int fd;
	int r;

	if (!m)
		return 0;
	fd = mosquitto_socket(m->mosq);
	if (fd != m->fd) {
		m->io = sd_event_source_disable_unref(m->io);
		m->fd = fd;
		if (fd < 0)
			return 0;
		r = sd_event_add_io(m->event, &m->io, fd, EPOLLIN, io_cb, m);
		if (r < 0)
			return r;
	}
	/* sd-event leaves an unchanged mask alone (no epoll_ctl) */
	events = (m->in_off && m->up ? 0 : EPOLLIN) |
		 (mosquitto_want_write(m->mosq) ? EPOLLOUT : 0);
	(void)sd_event_source_set_io_events(m->io, events);
	return 0;
}

void gw_mosqev_hold(struct gw_mosqev *m, bool hold)
{
	if (!m || m->held == hold)
		return;
	m->held = hold;
	if (!hold && m->in_off) {
		m->in_off = false;
		(void)gw_mosqev_update(m);
	}
}

/* At most this many read rounds per poll: a peer that never stops sending cannot hold the
 * loop; what is left wakes it once the hold ends. */
#define MOSQEV_POLL_ROUNDS 64

void gw_mosqev_poll(struct gw_mosqev *m)
{
	/*
	 * libmosquitto reads only as many packets a round as it has QoS 1 and 2 messages
	 * queued: a wake-up comes back for the rest, a poll must ask again itself, or a busy
	 * socket (messages at QoS 0) would be drained a packet a tick.
	 */
	for (int i = 0; i < MOSQEV_POLL_ROUNDS && m && m->in_off && m->io && !gw_mosqev_lost(m);
	     i++) {
		struct pollfd p = { .fd = m->fd, .events = POLLIN };

		/* a lost round freed m (hooks.lost): nothing of it is used after one */
		if (io_cb(m->io, m->fd, EPOLLIN, m) != 0 || !m->in_off)
			return;
		if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN))
			return;
	}
}

void gw_mosqev_end(struct gw_mosqev *m, const char *why)
{
	m->ended = true;
	if (why && !m->last_error[0])
		snprintf(m->last_error, sizeof(m->last_error), "%s", why);
}

void gw_mosqev_hang_up(struct gw_mosqev *m)
{
	if (!m || !m->up)
		return;
	(void)mosquitto_disconnect(m->mosq);
	(void)mosquitto_loop_write(m->mosq, 1);
}

void gw_mosqev_quiet(struct gw_mosqev *m)
{
	mosquitto_log_callback_set(m->mosq, NULL);
}

bool gw_mosqev_lost(const struct gw_mosqev *m)
{
	return m->closed || m->ended;
}

bool gw_mosqev_up(const struct gw_mosqev *m)
{
	return m->up;
}

int gw_mosqev_connack(const struct gw_mosqev *m)
{
	return m->connack_rc;
}

const char *gw_mosqev_last_error(const struct gw_mosqev *m)
{
	return m->last_error;
}

struct gw_mosqev *gw_mosqev_free(struct gw_mosqev *m)
{
	if (!m)
		return NULL;
	m->io = sd_event_source_disable_unref(m->io);
	m->tick = sd_event_source_disable_unref(m->tick);
	if (m->mosq)
		mosquitto_destroy(m->mosq);
	free(m);
	return NULL;
}

void gw_mosqev_note_log(struct mosquitto *mosq, int level, const char *str, char *last_error,
			size_t last_error_size)
{
	SSL *ssl;
	long v;
	const char *host;

	if (!(level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING)) || !last_error_size)
		return;
	if (!strstr(str, "verify failed")) {
		snprintf(last_error, last_error_size, "%s", str);
		return;
	}
	/* The SSL object of the failed handshake still holds which check refused it. */
	ssl = mosquitto_ssl_get(mosq);
	v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	if (v == X509_V_ERR_UNSPECIFIED && strstr(last_error, "host name verification failed")) {
		/* libmosquitto's own host check failed and said so in the line before; the
		 * name it checked is the one it sent as SNI */
		host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
		snprintf(last_error, last_error_size,
			 "%s (the certificate does not name the host%s%s)", str, host ? " " : "",
			 host ? host : "");
	} else if (v != X509_V_OK) {
		snprintf(last_error, last_error_size, "%s (%s)", str,
			 X509_verify_cert_error_string(v));
	} else {
		snprintf(last_error, last_error_size, "%s", str);
	}
}
