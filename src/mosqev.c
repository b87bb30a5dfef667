/* SPDX-License-Identifier: MIT */
/* A libmosquitto client on the sd-event loop; see include/gw/mosqev.h. */

#include <errno.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "gw/mosqev.h"
#include "gw/util.h"

struct gw_mosqev {
	sd_event *event;
	struct mosquitto *mosq;
	uint64_t tick_us;
	const bool *lost;
	char *last_error;
	size_t last_error_size;
	struct gw_mosqev_hooks hooks;
	void *user_data;
	int fd;
	sd_event_source *io;
	sd_event_source *tick;
};

/* The session ends: the hook frees m, so nothing of it is used afterwards. */
static void end(struct gw_mosqev *m, int rc)
{
	struct gw_mosqev_hooks hooks = m->hooks;
	void *ud = m->user_data;

	hooks.lost(ud, rc);
	hooks.after(ud);
}

static int io_cb(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct gw_mosqev *m = ud;
	int rc = MOSQ_ERR_SUCCESS;

	if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
		rc = mosquitto_loop_read(m->mosq, 1);
	if (!*m->lost && rc == MOSQ_ERR_SUCCESS && (revents & EPOLLOUT))
		rc = mosquitto_loop_write(m->mosq, 1);
	/* as in mqtt.c: a hang-up would wake the loop forever, so any error ends the session */
	if (*m->lost || rc != MOSQ_ERR_SUCCESS || (revents & (EPOLLHUP | EPOLLERR))) {
		if (!m->last_error[0] && m->fd >= 0) {
			int err = 0;
			socklen_t len = sizeof(err);

			if (getsockopt(m->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err)
				snprintf(m->last_error, m->last_error_size, "%s", strerror(err));
			else
				snprintf(m->last_error, m->last_error_size, "connection closed");
		}
		end(m, rc);
		return 0;
	}
	m->hooks.after(m->user_data);
	(void)gw_mosqev_update(m);
	return 0;
}

static int tick_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_mosqev *m = ud;
	int rc = mosquitto_loop_misc(m->mosq);

	if (*m->lost || rc != MOSQ_ERR_SUCCESS) {
		end(m, rc);
		return 0;
	}
	(void)sd_event_source_set_time_relative(s, m->tick_us);
	(void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	(void)gw_mosqev_update(m);
	return 0;
}

int gw_mosqev_new(sd_event *event, struct mosquitto *mosq, uint32_t keepalive_s,
		  const bool *lost, char *last_error, size_t last_error_size,
		  const struct gw_mosqev_hooks *hooks, void *user_data, struct gw_mosqev **ret)
{
	struct gw_mosqev *m = gw_new0(struct gw_mosqev, 1);
	/* a quarter of the keepalive keeps libmosquitto's ping in time */
	uint64_t us = (uint64_t)keepalive_s * 250000;
	int r;

	m->event = event;
	m->mosq = mosq;
	m->tick_us = us > 15000000 ? 15000000 : us;
	m->lost = lost;
	m->last_error = last_error;
	m->last_error_size = last_error_size;
	m->hooks = *hooks;
	m->user_data = user_data;
	m->fd = -1;
	r = sd_event_add_time_relative(event, &m->tick, CLOCK_MONOTONIC, m->tick_us, 0, tick_cb,
				       m);
	if (r < 0) {
		free(m);
		return r;
	}
	*ret = m;
	return 0;
}

int gw_mosqev_update(struct gw_mosqev *m)
{
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
	(void)sd_event_source_set_io_events(m->io, EPOLLIN | (mosquitto_want_write(m->mosq) ?
							      EPOLLOUT : 0));
	return 0;
}

struct gw_mosqev *gw_mosqev_free(struct gw_mosqev *m)
{
	if (!m)
		return NULL;
	m->io = sd_event_source_disable_unref(m->io);
	m->tick = sd_event_source_disable_unref(m->tick);
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
