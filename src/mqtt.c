/* SPDX-License-Identifier: MIT */
/*
 * MQTT uplink: libmosquitto on the sd-event loop, with our own bounded FIFO and in-flight
 * window. See include/gw/mqtt.h for the contract.
 */

#include <errno.h>
#include <mosquitto.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "gw/log.h"
#include "gw/mqtt.h"
#include "gw/util.h"

struct msg {
	struct msg *prev, *next;
	char *topic;
	char *payload;
	size_t len;
	int mid;
	bool inflight;
};

struct gw_mqtt {
	sd_event *event;
	const struct gw_config_uplink *cfg;
	gw_mqtt_state_fn state_fn;
	gw_mqtt_idle_fn idle_fn;
	void *user_data;

	struct mosquitto *mosq;
	int fd;
	sd_event_source *io;
	sd_event_source *tick;
	sd_event_source *retry;
	enum gw_mqtt_state state;
	uint32_t backoff_ms;
	uint64_t connected_at_us;
	bool lost;      /* set by on_disconnect, handled after the libmosquitto call returns */
	int connack_rc; /* last CONNACK refusal, 0 if none */
	char last_error[256];

	struct msg *head, *tail;
	struct msg *next_send; /* first message not yet handed to libmosquitto */
	size_t n_queued;
	size_t n_inflight;
	struct gw_mqtt_stats stats;
};

static void schedule_retry(struct gw_mqtt *m, const char *reason);
static void update_interest(struct gw_mqtt *m);

void gw_mqtt_lib_init(void)
{
	mosquitto_lib_init();
}

void gw_mqtt_lib_cleanup(void)
{
	mosquitto_lib_cleanup();
}

static void msg_free(struct msg *x)
{
	free(x->topic);
	free(x->payload);
	free(x);
}

static void msg_unlink(struct gw_mqtt *m, struct msg *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		m->head = x->next;
	if (x->next)
		x->next->prev = x->prev;
	else
		m->tail = x->prev;
	if (m->next_send == x)
		m->next_send = x->next;
	if (x->inflight)
		m->n_inflight--;
	m->n_queued--;
}

static void set_state(struct gw_mqtt *m, enum gw_mqtt_state state, const char *reason,
		      uint32_t retry_ms)
{
	m->state = state;
	if (m->state_fn)
		m->state_fn(m, state, reason, retry_ms, m->user_data);
}

/* Hands queued messages to libmosquitto while the window has room. */
static void pump(struct gw_mqtt *m)
{
	while (m->state == GW_MQTT_CONNECTED && m->mosq && !m->lost && m->next_send &&
	       m->n_inflight < GW_MQTT_WINDOW) {
		struct msg *x = m->next_send;
		int mid = 0;
		int rc;

		rc = mosquitto_publish(m->mosq, &mid, x->topic, (int)x->len, x->payload,
				       m->cfg->qos, false);
		if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST || rc == MOSQ_ERR_ERRNO)
			break;
		m->next_send = x->next;
		if (rc != MOSQ_ERR_SUCCESS) {
			/* A message libmosquitto refuses now will be refused forever: drop it
			 * rather than block the head of the queue. */
			gw_log_uplink(LOG_WARNING, m->cfg->name,
				      "message for topic '%s' refused by libmosquitto: %s, dropped",
				      x->topic, mosquitto_strerror(rc));
			m->stats.rejected++;
			msg_unlink(m, x);
			msg_free(x);
			continue;
		}
		if (m->cfg->qos == 0) {
			/* No acknowledgement exists at QoS 0: handing it over is all we get. */
			m->stats.acked++;
			msg_unlink(m, x);
			msg_free(x);
			continue;
		}
		x->mid = mid;
		x->inflight = true;
		m->n_inflight++;
	}
	if (m->n_queued == 0 && m->idle_fn)
		m->idle_fn(m, m->user_data);
}

static void on_connect(struct mosquitto *mosq, void *ud, int rc)
{
	struct gw_mqtt *m = ud;

	if (rc != 0) {
		/* libmosquitto closes the connection after a refusal; on_disconnect follows. */
		m->connack_rc = rc;
		return;
	}
	m->connack_rc = 0;
	m->connected_at_us = gw_now_mono_us();
	m->stats.connects++;
	m->last_error[0] = '\0';
	set_state(m, GW_MQTT_CONNECTED, NULL, 0);
}

static void on_disconnect(struct mosquitto *mosq, void *ud, int rc)
{
	struct gw_mqtt *m = ud;

	m->lost = true;
	if (rc != 0 && !m->last_error[0])
		snprintf(m->last_error, sizeof(m->last_error), "%s", mosquitto_strerror(rc));
}

static void on_publish(struct mosquitto *mosq, void *ud, int mid)
{
	struct gw_mqtt *m = ud;

	/* The window is small, and PUBACKs arrive nearly in order: a scan from the head is
	 * short. Acks are tracked as a set all the same. */
	for (struct msg *x = m->head; x && x != m->next_send; x = x->next) {
		if (x->inflight && x->mid == mid) {
			m->stats.acked++;
			msg_unlink(m, x);
			msg_free(x);
			return;
		}
	}
}

static void on_log(struct mosquitto *mosq, void *ud, int level, const char *str)
{
	struct gw_mqtt *m = ud;

	/* libmosquitto reports TLS and socket failures only through its log; keep the last
	 * error as the reason we show. It never logs the password. */
	if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
		snprintf(m->last_error, sizeof(m->last_error), "%s", str);
	gw_log_uplink(LOG_DEBUG, m->cfg->name, "libmosquitto: %s", str);
}

static const char *describe_rc(struct gw_mqtt *m, int rc, char *buf, size_t size)
{
	if (m->connack_rc)
		snprintf(buf, size, "broker refused the connection: %s",
			 mosquitto_connack_string(m->connack_rc));
	else if (rc == MOSQ_ERR_TLS)
		snprintf(buf, size, "TLS failure: %s",
			 m->last_error[0] ? m->last_error : "handshake failed");
	else if (rc == MOSQ_ERR_KEEPALIVE)
		snprintf(buf, size, "no answer from the broker within the keepalive");
	else if (rc == MOSQ_ERR_ERRNO)
		snprintf(buf, size, "%s", m->last_error[0] ? m->last_error : strerror(errno));
	else if (m->last_error[0] && strstr(m->last_error, "OpenSSL"))
		snprintf(buf, size, "TLS failure: %s", m->last_error);
	else
		snprintf(buf, size, "%s", m->last_error[0] ? m->last_error : mosquitto_strerror(rc));
	return buf;
}

/* Drops the libmosquitto instance and its queues; our FIFO keeps every unacked message. */
static void teardown(struct gw_mqtt *m)
{
	m->io = sd_event_source_disable_unref(m->io);
	m->tick = sd_event_source_disable_unref(m->tick);
	m->fd = -1;
	if (m->mosq) {
		mosquitto_destroy(m->mosq);
		m->mosq = NULL;
	}
	for (struct msg *x = m->head; x && x != m->next_send; x = x->next) {
		if (x->inflight) {
			x->inflight = false;
			m->stats.resent++;
		}
	}
	m->n_inflight = 0;
	m->next_send = m->head;
	m->lost = false;
}

static void handle_lost(struct gw_mqtt *m, int rc)
{
	char reason[384];

	describe_rc(m, rc, reason, sizeof(reason));
	if (m->state == GW_MQTT_CONNECTED) {
		m->stats.connection_losses++;
		/* A connection that stayed up for a while was healthy: start backing off
		 * from the minimum again. */
		if (gw_now_mono_us() - m->connected_at_us >= (uint64_t)GW_MQTT_STABLE_S * 1000000)
			m->backoff_ms = 0;
	}
	teardown(m);
	m->connack_rc = 0;
	schedule_retry(m, reason);
}

/* Called after every libmosquitto call: the fd may have changed, writes may be pending. */
static int io_cb(sd_event_source *s, int fd, uint32_t revents, void *ud);

static void update_interest(struct gw_mqtt *m)
{
	int fd;
	uint32_t events;
	int r;

	if (!m->mosq)
		return;
	fd = mosquitto_socket(m->mosq);
	if (fd != m->fd) {
		m->io = sd_event_source_disable_unref(m->io);
		m->fd = fd;
		if (fd < 0)
			return;
		r = sd_event_add_io(m->event, &m->io, fd, EPOLLIN, io_cb, m);
		if (r < 0) {
			gw_log_uplink(LOG_ERR, m->cfg->name, "cannot watch the MQTT socket: %s",
				      strerror(-r));
			return;
		}
	}
	events = EPOLLIN | (mosquitto_want_write(m->mosq) ? EPOLLOUT : 0);
	(void)sd_event_source_set_io_events(m->io, events);
}

static int io_cb(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct gw_mqtt *m = ud;
	int rc = MOSQ_ERR_SUCCESS;

	if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
		rc = mosquitto_loop_read(m->mosq, 1);
	if (!m->lost && rc == MOSQ_ERR_SUCCESS && (revents & EPOLLOUT))
		rc = mosquitto_loop_write(m->mosq, 1);
	if (m->lost || (rc != MOSQ_ERR_SUCCESS && mosquitto_socket(m->mosq) < 0)) {
		handle_lost(m, rc);
		return 0;
	}
	pump(m);
	update_interest(m);
	return 0;
}

/* libmosquitto needs loop_misc for keepalive pings; a quarter of the keepalive keeps the
 * ping in time and leaves the loop asleep in between (no 1 s polling). */
static uint64_t tick_usec(const struct gw_mqtt *m)
{
	uint64_t s = m->cfg->keepalive / 4;

	if (s < 1)
		s = 1;
	if (s > 15)
		s = 15;
	return s * 1000000;
}

static int tick_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_mqtt *m = ud;
	int rc;

	rc = mosquitto_loop_misc(m->mosq);
	if (m->lost || (rc != MOSQ_ERR_SUCCESS && mosquitto_socket(m->mosq) < 0)) {
		handle_lost(m, rc);
		return 0;
	}
	(void)sd_event_source_set_time_relative(s, tick_usec(m));
	(void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	update_interest(m);
	return 0;
}

static int connect_now(struct gw_mqtt *m)
{
	const struct gw_config_uplink *c = m->cfg;
	char reason[384];
	int rc;
	int r;

	m->last_error[0] = '\0';
	m->connack_rc = 0;
	m->mosq = mosquitto_new(c->client_id, c->clean_session, m);
	if (!m->mosq)
		return -ENOMEM;
	mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	mosquitto_connect_callback_set(m->mosq, on_connect);
	mosquitto_disconnect_callback_set(m->mosq, on_disconnect);
	mosquitto_publish_callback_set(m->mosq, on_publish);
	mosquitto_log_callback_set(m->mosq, on_log);
	mosquitto_max_inflight_messages_set(m->mosq, GW_MQTT_WINDOW);
	if (c->username) {
		rc = mosquitto_username_pw_set(m->mosq, c->username, c->password);
		if (rc != MOSQ_ERR_SUCCESS)
			goto fail;
	}
	if (c->tls) {
		rc = mosquitto_tls_set(m->mosq, c->ca_file, NULL, c->cert_file, c->key_file, NULL);
		if (rc != MOSQ_ERR_SUCCESS)
			goto fail;
		/* Peer and hostname verification stay on (tls_insecure defaults to false). */
		rc = mosquitto_tls_opts_set(m->mosq, 1, NULL, NULL);
		if (rc != MOSQ_ERR_SUCCESS)
			goto fail;
	}
	set_state(m, GW_MQTT_CONNECTING, NULL, 0);
	rc = mosquitto_connect_async(m->mosq, c->host, c->port, (int)c->keepalive);
	if (rc != MOSQ_ERR_SUCCESS)
		goto fail;
	r = sd_event_add_time_relative(m->event, &m->tick, CLOCK_MONOTONIC, tick_usec(m), 0,
				       tick_cb, m);
	if (r < 0)
		return r;
	update_interest(m);
	return 0;
fail:
	describe_rc(m, rc, reason, sizeof(reason));
	teardown(m);
	schedule_retry(m, reason);
	return 0;
}

static int retry_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_mqtt *m = ud;
	int r;

	r = connect_now(m);
	if (r < 0)
		schedule_retry(m, strerror(-r));
	return 0;
}

static void schedule_retry(struct gw_mqtt *m, const char *reason)
{
	uint32_t delay;
	int r;

	m->backoff_ms = gw_backoff_next(m->backoff_ms, m->cfg->reconnect_min_ms,
					m->cfg->reconnect_max_ms);
	delay = gw_backoff_jitter(m->backoff_ms);
	if (!m->retry) {
		r = sd_event_add_time_relative(m->event, &m->retry, CLOCK_MONOTONIC,
					       (uint64_t)delay * 1000, 0, retry_cb, m);
		if (r < 0) {
			gw_log_uplink(LOG_ERR, m->cfg->name, "cannot arm the reconnect timer: %s",
				      strerror(-r));
			return;
		}
	} else {
		(void)sd_event_source_set_time_relative(m->retry, (uint64_t)delay * 1000);
	}
	(void)sd_event_source_set_enabled(m->retry, SD_EVENT_ONESHOT);
	set_state(m, GW_MQTT_DISCONNECTED, reason, delay);
}

int gw_mqtt_new(sd_event *event, const struct gw_config_uplink *cfg, gw_mqtt_state_fn state_fn,
		gw_mqtt_idle_fn idle_fn, void *user_data, struct gw_mqtt **ret)
{
	struct gw_mqtt *m = gw_new0(struct gw_mqtt, 1);

	m->event = sd_event_ref(event);
	m->cfg = cfg;
	m->state_fn = state_fn;
	m->idle_fn = idle_fn;
	m->user_data = user_data;
	m->fd = -1;
	m->state = GW_MQTT_DISCONNECTED;
	*ret = m;
	return 0;
}

int gw_mqtt_start(struct gw_mqtt *m)
{
	return connect_now(m);
}

struct gw_mqtt *gw_mqtt_free(struct gw_mqtt *m)
{
	if (!m)
		return NULL;
	if (m->mosq && m->state == GW_MQTT_CONNECTED) {
		/* Best effort: a DISCONNECT packet tells the broker this was intended. */
		(void)mosquitto_disconnect(m->mosq);
		(void)mosquitto_loop_write(m->mosq, 1);
	}
	m->state_fn = NULL;
	m->idle_fn = NULL;
	teardown(m);
	m->retry = sd_event_source_disable_unref(m->retry);
	while (m->head) {
		struct msg *x = m->head;

		msg_unlink(m, x);
		msg_free(x);
	}
	sd_event_unref(m->event);
	free(m);
	return NULL;
}

int gw_mqtt_enqueue(struct gw_mqtt *m, const char *topic, char *payload, size_t len)
{
	struct msg *x;

	if (m->n_queued >= GW_MQTT_QUEUE_MAX && m->next_send) {
		/* Full: the oldest message that is not in flight makes room. */
		struct msg *old = m->next_send;

		msg_unlink(m, old);
		msg_free(old);
		m->stats.dropped_overflow++;
	}
	x = gw_new0(struct msg, 1);
	x->topic = gw_strdup(topic);
	x->payload = payload;
	x->len = len;
	x->prev = m->tail;
	if (m->tail)
		m->tail->next = x;
	else
		m->head = x;
	m->tail = x;
	if (!m->next_send)
		m->next_send = x;
	m->n_queued++;
	m->stats.enqueued++;
	if (m->state == GW_MQTT_CONNECTED) {
		pump(m);
		update_interest(m);
	}
	return 0;
}

enum gw_mqtt_state gw_mqtt_get_state(const struct gw_mqtt *m)
{
	return m->state;
}

size_t gw_mqtt_pending(const struct gw_mqtt *m)
{
	return m->n_queued;
}

const struct gw_mqtt_stats *gw_mqtt_stats(const struct gw_mqtt *m)
{
	return &m->stats;
}

const char *gw_mqtt_name(const struct gw_mqtt *m)
{
	return m->cfg->name;
}
