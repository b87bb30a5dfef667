/* SPDX-License-Identifier: MIT */
/*
 * MQTT uplink: libmosquitto on the sd-event loop, fed from the spool through a cursor, with a
 * bounded in-flight window. See include/gw/mqtt.h for the contract.
 */

#include <errno.h>
#include <mosquitto.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gw/hadisc.h"
#include "gw/log.h"
#include "gw/mosqev.h"
#include "gw/mqtt.h"
#include "gw/payload.h"
#include "gw/uplink.h"
#include "gw/util.h"

#define GW_MQTT_SAVE_ACKS 100
#define GW_MQTT_SAVE_MIN_MS 50

struct flight {
	uint64_t seq;
	int mid;
};

struct gw_mqtt {
	sd_event *event;
	const struct gw_config_uplink *cfg;
	gw_mqtt_state_fn state_fn;
	gw_mqtt_idle_fn idle_fn;
	void *user_data;

	struct gw_mosqev *ev; /* the session (mosqev.h), NULL between sessions */
	struct mosquitto *mosq; /* its client */
	sd_event_source *retry;
	enum gw_mqtt_state state;
	uint32_t backoff_ms;
	uint64_t connected_at_us;
	char status_error[256]; /* the last reason the session went down, for the status */

	struct gw_spool *spool;
	struct gw_spool_reader *reader;
	struct flight *inflight; /* cfg->max_inflight slots, unordered */
	size_t n_inflight;
	/* Records at or above the cursor that need no sending: acknowledged out of order, or
	 * dead-lettered. Sorted; pruned as the cursor passes them. */
	struct gw_seqset skip;
	/* live-first: new records to send before the backlog */
	uint64_t live[GW_MQTT_LIVE_QUEUE];
	size_t live_head, n_live;
	/* last time the in-flight window made progress: an ack, or the first record into an
	 * empty window */
	uint64_t progress_us;
	bool stalled;
	/* batching: the gateway's clock reads the socket (gw_mosqev_hold), unless the window
	 * is half full, when acknowledgements are read as they come */
	bool held;
	/* poison detection */
	uint64_t acks_this_conn;
	uint64_t suspect_seq;
	uint32_t suspect_tries;
	/* pacing */
	struct gw_rate rate;
	sd_event_source *rate_timer;
	/* cursor persistence */
	sd_event_source *save_timer;
	bool cursor_dirty;
	uint64_t acks_unsaved;
	uint64_t overflow_acked; /* dropped by the spool while in flight, then acknowledged */
	uint64_t saved_at_us;

	/* counters: see the conservation law in mqtt.h */
	uint64_t initial_backlog;
	uint64_t appended_at_start;
	uint64_t acked;
	uint64_t resent;
	uint64_t connects;
	uint64_t connection_losses;

	/* discovery = homeassistant (gw/hadisc.h); NULL otherwise */
	struct gw_hadisc *disc;
	sd_event_source *disc_timer; /* nodes' availability */
};

static void schedule_retry(struct gw_mqtt *m, const char *reason);
static void update_interest(struct gw_mqtt *m);
int gw_mqtt_save(struct gw_mqtt *m);

void gw_mqtt_lib_init(void)
{
	mosquitto_lib_init();
}

void gw_mqtt_lib_cleanup(void)
{
	mosquitto_lib_cleanup();
}

static void set_state(struct gw_mqtt *m, enum gw_mqtt_state state, const char *reason,
		      uint32_t retry_ms)
{
	m->state = state;
	if (m->state_fn)
		m->state_fn(m, state, reason, retry_ms, m->user_data);
}

/* ---- the skip set: records at or above the cursor that are already taken care of ---- */

static bool in_flight(const struct gw_mqtt *m, uint64_t seq)
{
	for (size_t i = 0; i < m->n_inflight; i++)
		if (m->inflight[i].seq == seq)
			return true;
	return false;
}

/* The cursor: the lowest record neither acknowledged nor dead-lettered. Everything below the
 * read position was sent; of that, what is still in flight holds the cursor back. */
static void update_cursor(struct gw_mqtt *m)
{
	uint64_t c = gw_spool_reader_position(m->reader);

	for (size_t i = 0; i < m->n_inflight; i++)
		if (m->inflight[i].seq < c)
			c = m->inflight[i].seq;
	/* skipped records directly at the cursor are done too */
	while (m->skip.n && m->skip.v[0] <= c) {
		if (m->skip.v[0] == c)
			c++;
		gw_seqset_prune(&m->skip, c);
	}
	if (c > gw_spool_reader_cursor(m->reader)) {
		m->acks_unsaved += c - gw_spool_reader_cursor(m->reader);
		gw_spool_reader_ack(m->reader, c);
		m->cursor_dirty = true;
		/*
		 * Saved every GW_MQTT_SAVE_ACKS records or once a second, whichever comes first,
		 * but not more often than every GW_MQTT_SAVE_MIN_MS: after a crash the uplink
		 * resends at most that much. A save is one pwrite, made durable every 10 s
		 * (gw_spool_reader_save()), so this costs the block device nothing per record.
		 */
		if (m->acks_unsaved >= GW_MQTT_SAVE_ACKS &&
		    gw_now_mono_us() - m->saved_at_us >= GW_MQTT_SAVE_MIN_MS * 1000)
			(void)gw_mqtt_save(m);
		else if (m->save_timer)
			(void)sd_event_source_set_enabled(m->save_timer, SD_EVENT_ONESHOT);
	}
	gw_seqset_prune(&m->skip, gw_spool_reader_cursor(m->reader));
}

static void acknowledge(struct gw_mqtt *m, uint64_t seq)
{
	/* A record below the cursor was dropped for the spool's bounds while in flight, and the
	 * spool counted it as dropped: it was delivered after all, so it moves over to acked
	 * (the conservation law stays exact). */
	if (seq < gw_spool_reader_cursor(m->reader)) {
		m->acked++;
		m->overflow_acked++;
		return;
	}
	m->acked++;
	m->acks_this_conn++;
	m->progress_us = gw_now_mono_us();
	if (seq == m->suspect_seq)
		m->suspect_tries = 0;
	gw_seqset_add(&m->skip, seq);
	update_cursor(m);
}

/* Moves the record at seq to the dead-letter file; it counts as rejected. */
static void deadletter(struct gw_mqtt *m, uint64_t seq, const char *why)
{
	struct gw_spool_record rec;
	uint64_t pos = gw_spool_reader_position(m->reader);
	int r;

	gw_spool_reader_seek(m->reader, seq);
	r = gw_spool_reader_next(m->reader, &rec);
	if (r > 0 && rec.seq == seq)
		r = gw_spool_reader_deadletter(m->reader, &rec);
	gw_spool_reader_seek(m->reader, pos);
	gw_log_uplink(LOG_WARNING, m->cfg->name, "record %llu moved to the dead-letter file: %s%s",
		      (unsigned long long)seq, why, r < 0 ? " (and writing it there failed)" : "");
	gw_seqset_add(&m->skip, seq);
	update_cursor(m);
}

/*
 * Called when a connection is lost. A poison record kills the connection right after its
 * PUBLISH, before any acknowledgement: if this connection acknowledged nothing, the oldest
 * record in flight is suspect, and after deadletter_after such losses in a row it goes to the
 * dead-letter file. A connection that made progress clears suspicion, so a broker that merely
 * restarts never costs a record.
 */
static void suspect_poison(struct gw_mqtt *m)
{
	uint64_t head = UINT64_MAX;

	if (m->state != GW_MQTT_CONNECTED || m->n_inflight == 0)
		return;
	if (m->acks_this_conn > 0) {
		m->suspect_tries = 0;
		return;
	}
	for (size_t i = 0; i < m->n_inflight; i++)
		if (m->inflight[i].seq < head)
			head = m->inflight[i].seq;
	if (head != m->suspect_seq) {
		m->suspect_seq = head;
		m->suspect_tries = 0;
	}
	if (++m->suspect_tries >= m->cfg->mqtt.deadletter_after) {
		/* The rest of the window stays in flight here so the cursor stops at it; the
		 * teardown that follows sends it again. */
		deadletter(m, head, "the connection was lost after each attempt to send it");
		m->suspect_tries = 0;
	}
}

/* Token bucket: max_rate per second, at most one second's worth of burst. */
static bool take_token(struct gw_mqtt *m)
{
	uint64_t wait = gw_rate_take(&m->rate, gw_now_mono_us());

	if (wait == 0)
		return true;
	(void)sd_event_source_set_time_relative(m->rate_timer, wait);
	(void)sd_event_source_set_enabled(m->rate_timer, SD_EVENT_ONESHOT);
	return false;
}

/* Next record to send: a live one first under live-first, else the next from the cursor. */
static int next_record(struct gw_mqtt *m, struct gw_spool_record *rec)
{
	int r;

	while (m->n_live) {
		uint64_t seq = m->live[m->live_head];
		uint64_t pos = gw_spool_reader_position(m->reader);

		m->live_head = (m->live_head + 1) % GW_MQTT_LIVE_QUEUE;
		m->n_live--;
		if (seq < pos || gw_seqset_has(&m->skip, seq) || in_flight(m, seq))
			continue;
		gw_spool_reader_seek(m->reader, seq);
		r = gw_spool_reader_next(m->reader, rec);
		gw_spool_reader_seek(m->reader, pos);
		if (r > 0 && rec->seq == seq)
			return 1;
	}
	for (;;) {
		r = gw_spool_reader_next(m->reader, rec);
		if (r <= 0)
			return r;
		if (!gw_seqset_has(&m->skip, rec->seq) && !in_flight(m, rec->seq))
			return 1;
	}
}

/* Discovery's messages: retained, QoS 1, outside the in-flight window (on_publish does not
 * know their ids and ignores them); a session lost before they go out announces again. */
static void disc_publish(void *ud, const char *topic, const char *payload, size_t len)
{
	struct gw_mqtt *m = ud;
	int rc;

	if (!m->mosq)
		return;
	rc = mosquitto_publish(m->mosq, NULL, topic, (int)len, payload, 1, true);
	if (rc != MOSQ_ERR_SUCCESS)
		gw_log_uplink(LOG_WARNING, m->cfg->name, "discovery: cannot publish on %s: %s",
			      topic, mosquitto_strerror(rc));
}

/* Hands records to libmosquitto while the window has room. */
static void pump(struct gw_mqtt *m)
{
	while (m->state == GW_MQTT_CONNECTED && m->mosq && !gw_mosqev_lost(m->ev) &&
	       m->n_inflight < m->cfg->max_inflight) {
		struct gw_spool_record rec;
		struct gw_payload_view v;
		char topic[512];
		int mid = 0;
		int rc, r;

		if (!take_token(m))
			break;
		r = next_record(m, &rec);
		if (r < 0) {
			gw_log_uplink(LOG_ERR, m->cfg->name, "cannot read the spool: %s",
				      strerror(-r));
			break;
		}
		if (r == 0) {
			gw_rate_give_back(&m->rate); /* nothing sent: give it back */
			break;
		}
		if (gw_payload_unpack(rec.payload, rec.len, rec.type, &v) < 0) {
			deadletter(m, rec.seq, "not a record this version can send");
			continue;
		}
		r = gw_payload_topic(m->cfg->mqtt.topic, &v, m->cfg->name, topic, sizeof(topic));
		if (r < 0) {
			deadletter(m, rec.seq, "the topic template cannot be expanded for it");
			continue;
		}
		/* the entities first, so that Home Assistant has them when the reading comes */
		if (m->disc && v.type == GW_FRAME_TELEMETRY)
			gw_hadisc_record(m->disc, &v, topic, gw_now_wall_ms(), disc_publish, m);
		rc = mosquitto_publish(m->mosq, &mid, topic, (int)v.json_len, v.json,
				       m->cfg->mqtt.qos, false);
		if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST || rc == MOSQ_ERR_ERRNO) {
			/* not sent: read it again after the reconnect */
			gw_spool_reader_seek(m->reader, gw_spool_reader_cursor(m->reader));
			break;
		}
		if (rc != MOSQ_ERR_SUCCESS) {
			/* What libmosquitto refuses now (too large, bad topic) it refuses forever. */
			char why[128];

			snprintf(why, sizeof(why), "libmosquitto refused it: %s",
				 mosquitto_strerror(rc));
			deadletter(m, rec.seq, why);
			continue;
		}
		if (m->cfg->mqtt.qos == 0) {
			/* No acknowledgement exists at QoS 0: handing it over is all we get. */
			acknowledge(m, rec.seq);
			continue;
		}
		if (m->n_inflight == 0)
			m->progress_us = gw_now_mono_us();
		m->inflight[m->n_inflight++] = (struct flight){ .seq = rec.seq, .mid = mid };
	}
	if (m->n_inflight == 0 && m->idle_fn)
		m->idle_fn(m, m->user_data);
}

static int rate_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_mqtt *m = ud;

	pump(m);
	update_interest(m);
	return 0;
}

static int save_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_mqtt *m = ud;

	(void)gw_mqtt_save(m);
	return 0;
}
static void on_connect(void *ud, int rc)
{
	struct gw_mqtt *m = ud;

	if (rc != 0)
		return; /* libmosquitto closes the connection after a refusal */
	m->connected_at_us = gw_now_mono_us();
	m->acks_this_conn = 0;
	m->connects++;
	/*
	 * libmosquitto formats every log line (a malloc and a vsnprintf) whenever a log callback
	 * is set, two debug lines per message: about a quarter of the instructions per frame.
	 * The callback is needed for the reasons of failed connects (TLS, sockets); once
	 * connected, and unless debug lines are wanted, a loss is described from its return
	 * code and the socket error instead. The next connect makes a new instance with it.
	 */
	if (gw_log_get_level() < LOG_DEBUG)
		gw_mosqev_quiet(m->ev);
	if (m->disc) {
		int src = mosquitto_subscribe(m->mosq, NULL, gw_hadisc_ha_status_topic(m->disc), 1);

		if (src != MOSQ_ERR_SUCCESS)
			gw_log_uplink(LOG_WARNING, m->cfg->name,
				      "discovery: cannot subscribe to %s: %s",
				      gw_hadisc_ha_status_topic(m->disc), mosquitto_strerror(src));
		gw_hadisc_announce(m->disc, gw_now_wall_ms(), disc_publish, m);
		(void)sd_event_source_set_time_relative(m->disc_timer, 1000000);
		(void)sd_event_source_set_enabled(m->disc_timer, SD_EVENT_ONESHOT);
	}
	set_state(m, GW_MQTT_CONNECTED, NULL, 0);
}

/* Home Assistant (re)started: it has forgotten what it was told, so tell it again. */
static void on_message(void *ud, const struct mosquitto_message *msg)
{
	struct gw_mqtt *m = ud;

	if (m->disc && strcmp(msg->topic, gw_hadisc_ha_status_topic(m->disc)) == 0 &&
	    msg->payloadlen == 6 && memcmp(msg->payload, "online", 6) == 0)
		gw_hadisc_announce(m->disc, gw_now_wall_ms(), disc_publish, m);
}

static int disc_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_mqtt *m = ud;
	int64_t next = 1000;

	if (m->state == GW_MQTT_CONNECTED) {
		next = gw_hadisc_tick(m->disc, gw_now_wall_ms(), disc_publish, m);
		update_interest(m);
	}
	(void)sd_event_source_set_time_relative(s, (uint64_t)next * 1000);
	(void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	return 0;
}

static void on_publish(void *ud, int mid)
{
	struct gw_mqtt *m = ud;

	for (size_t i = 0; i < m->n_inflight; i++) {
		if (m->inflight[i].mid == mid) {
			uint64_t seq = m->inflight[i].seq;

			m->inflight[i] = m->inflight[--m->n_inflight];
			acknowledge(m, seq);
			return;
		}
	}
}

static void on_log(void *ud, int level, const char *str)
{
	struct gw_mqtt *m = ud;

	gw_log_uplink(LOG_DEBUG, m->cfg->name, "libmosquitto: %s", str);
}

static const char *describe_rc(struct gw_mqtt *m, int rc, char *buf, size_t size)
{
	const char *last_error = gw_mosqev_last_error(m->ev);
	int connack = gw_mosqev_connack(m->ev);

	if (connack)
		snprintf(buf, size, "broker refused the connection: %s",
			 mosquitto_connack_string(connack));
	else if (rc == MOSQ_ERR_TLS)
		snprintf(buf, size, "TLS failure: %s",
			 last_error[0] ? last_error :
			 m->state == GW_MQTT_CONNECTED ? "on the established connection" :
			 "handshake failed");
	else if (rc == MOSQ_ERR_KEEPALIVE && m->stalled)
		snprintf(buf, size, "no acknowledgement from the broker within the keepalive "
			 "(%u s) while records were in flight", m->cfg->keepalive);
	else if (rc == MOSQ_ERR_KEEPALIVE)
		snprintf(buf, size, "no answer from the broker within the keepalive");
	else if (rc == MOSQ_ERR_ERRNO)
		snprintf(buf, size, "%s", last_error[0] ? last_error : strerror(errno));
	else if (last_error[0] && strstr(last_error, "OpenSSL"))
		snprintf(buf, size, "TLS failure: %s", last_error);
	else
		snprintf(buf, size, "%s", last_error[0] ? last_error : mosquitto_strerror(rc));
	return buf;
}

/* Drops the libmosquitto instance and its queues; our FIFO keeps every unacked message. */
static void teardown(struct gw_mqtt *m)
{
	m->ev = gw_mosqev_free(m->ev);
	m->mosq = NULL;
	/* Everything in flight goes out again from the cursor after the reconnect. */
	m->resent += m->n_inflight;
	m->n_inflight = 0;
	m->n_live = 0;
	gw_spool_reader_seek(m->reader, gw_spool_reader_cursor(m->reader));
}

static void handle_lost(struct gw_mqtt *m, int rc)
{
	char why[384], reason[512];

	describe_rc(m, rc, why, sizeof(why));
	snprintf(reason, sizeof(reason), "%s %s:%u %s: %s",
		 m->state == GW_MQTT_CONNECTED ? "connection to" : "connecting to", m->cfg->host,
		 m->cfg->port, m->state == GW_MQTT_CONNECTED ? "lost" : "failed", why);
	suspect_poison(m);
	if (m->state == GW_MQTT_CONNECTED) {
		m->connection_losses++;
		/* A connection that stayed up for a while was healthy: start backing off
		 * from the minimum again. */
		if (gw_now_mono_us() - m->connected_at_us >= (uint64_t)GW_MQTT_STABLE_S * 1000000)
			m->backoff_ms = 0;
	}
	teardown(m);
	m->stalled = false;
	schedule_retry(m, reason);
}

/* Called after every libmosquitto call: the fd may have changed, writes may be pending. */
static void update_interest(struct gw_mqtt *m)
{
	int r;

	gw_mosqev_hold(m->ev, m->held && m->n_inflight < m->cfg->max_inflight / 2);
	r = gw_mosqev_update(m->ev);

	if (r < 0)
		gw_log_uplink(LOG_ERR, m->cfg->name, "cannot watch the MQTT socket: %s",
			      strerror(-r));
}

static void ev_lost(void *ud, int rc)
{
	handle_lost(ud, rc);
}

static void ev_after(void *ud)
{
	pump(ud);
}

/*
 * A link cut silently (no RST) leaves TCP waiting for minutes and libmosquitto's ping needs
 * up to two keepalives to notice. Records in flight with no acknowledgement for a whole
 * keepalive tell us sooner: the broker answers a PUBLISH at once when it can.
 */
static int ev_tick(void *ud)
{
	struct gw_mqtt *m = ud;

	if (m->state == GW_MQTT_CONNECTED && m->n_inflight > 0 &&
	    gw_now_mono_us() - m->progress_us >= (uint64_t)m->cfg->keepalive * 1000000) {
		m->stalled = true;
		return MOSQ_ERR_KEEPALIVE;
	}
	return MOSQ_ERR_SUCCESS;
}

static const struct gw_mosqev_hooks ev_hooks = {
	.connect = on_connect,
	.message = on_message,
	.publish = on_publish,
	.log = on_log,
	.tick = ev_tick,
	.lost = ev_lost,
	.after = ev_after,
};

static int connect_now(struct gw_mqtt *m)
{
	const struct gw_config_uplink *c = m->cfg;
	char reason[384];
	int rc;
	int r;

	r = gw_mosqev_new(m->event, c->mqtt.client_id, c->mqtt.clean_session, 0, &ev_hooks, m,
			  &m->ev);
	if (r < 0)
		return r;
	m->mosq = gw_mosqev_client(m->ev);
	mosquitto_max_inflight_messages_set(m->mosq, m->cfg->max_inflight);
	if (c->mqtt.username) {
		rc = mosquitto_username_pw_set(m->mosq, c->mqtt.username, c->mqtt.password);
		if (rc != MOSQ_ERR_SUCCESS)
			goto fail;
	}
	if (c->tls) {
		rc = mosquitto_tls_set(m->mosq, c->ca_file, NULL, c->mqtt.cert_file,
				       c->mqtt.key_file, NULL);
		if (rc != MOSQ_ERR_SUCCESS)
			goto fail;
		/* Peer and hostname verification stay on (tls_insecure defaults to false). */
		rc = mosquitto_tls_opts_set(m->mosq, 1, NULL, NULL);
		if (rc != MOSQ_ERR_SUCCESS)
			goto fail;
	}
	/* the gateway's availability says offline when the broker loses us */
	if (m->disc) {
		rc = mosquitto_will_set(m->mosq, gw_hadisc_gateway_topic(m->disc), 7, "offline", 1,
					true);
		if (rc != MOSQ_ERR_SUCCESS)
			goto fail;
	}
	set_state(m, GW_MQTT_CONNECTING, NULL, 0);
	rc = gw_mosqev_connect(m->ev, c->host, c->port, c->keepalive);
	if (rc != MOSQ_ERR_SUCCESS)
		goto fail;
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

int gw_mqtt_new(sd_event *event, const struct gw_config_uplink *cfg, struct gw_spool *spool,
		gw_mqtt_state_fn state_fn, gw_mqtt_idle_fn idle_fn, void *user_data,
		struct gw_mqtt **ret)
{
	struct gw_mqtt *m = gw_new0(struct gw_mqtt, 1);
	int r;

	m->event = sd_event_ref(event);
	m->cfg = cfg;
	m->spool = spool;
	m->state_fn = state_fn;
	m->idle_fn = idle_fn;
	m->user_data = user_data;
	m->state = GW_MQTT_DISCONNECTED;
	m->inflight = gw_new0(struct flight, cfg->max_inflight);
	gw_rate_init(&m->rate, cfg->max_rate, gw_now_mono_us());
	r = gw_spool_reader_new(spool, cfg->name, cfg->start_from == GW_START_FROM_OLDEST,
				&m->reader);
	if (r < 0)
		goto fail;
	m->initial_backlog = gw_spool_reader_stats(m->reader)->initial;
	m->appended_at_start = gw_spool_stats(spool)->appended;
	r = sd_event_add_time_relative(event, &m->rate_timer, CLOCK_MONOTONIC, 1000000, 1000,
				       rate_cb, m);
	if (r < 0)
		goto fail;
	(void)sd_event_source_set_enabled(m->rate_timer, SD_EVENT_OFF);
	/* The cursor is saved at most once a second: a crash re-sends at most that much. */
	r = sd_event_add_time_relative(event, &m->save_timer, CLOCK_MONOTONIC, 1000000, 100000,
				       save_cb, m);
	if (r < 0)
		goto fail;
	(void)sd_event_source_set_enabled(m->save_timer, SD_EVENT_OFF);
	*ret = m;
	return 0;
fail:
	gw_mqtt_free(m);
	return r;
}

int gw_mqtt_start(struct gw_mqtt *m)
{
	return connect_now(m);
}

int gw_mqtt_save(struct gw_mqtt *m)
{
	int r;

	if (!m->cursor_dirty)
		return 0;
	r = gw_spool_reader_save(m->reader);
	if (r < 0) {
		gw_log_uplink(LOG_ERR, m->cfg->name, "cannot save the cursor: %s; retrying",
			      strerror(-r));
		(void)sd_event_source_set_time_relative(m->save_timer, 1000000);
		(void)sd_event_source_set_enabled(m->save_timer, SD_EVENT_ONESHOT);
		return r;
	}
	m->cursor_dirty = false;
	m->acks_unsaved = 0;
	m->saved_at_us = gw_now_mono_us();
	(void)sd_event_source_set_time_relative(m->save_timer, 1000000);
	(void)sd_event_source_set_enabled(m->save_timer, SD_EVENT_OFF);
	return 0;
}

struct gw_mqtt *gw_mqtt_free(struct gw_mqtt *m)
{
	if (!m)
		return NULL;
	if (m->ev && m->state == GW_MQTT_CONNECTED) {
		/* a clean stop fires no will: say it, then DISCONNECT */
		if (m->disc)
			gw_hadisc_goodbye(m->disc, disc_publish, m);
		gw_mosqev_hang_up(m->ev); /* a DISCONNECT tells the broker this was intended */
	}
	m->state_fn = NULL;
	m->idle_fn = NULL;
	if (m->reader) {
		m->cursor_dirty = true;
		teardown(m);
		(void)gw_mqtt_save(m);
	}
	m->retry = sd_event_source_disable_unref(m->retry);
	m->rate_timer = sd_event_source_disable_unref(m->rate_timer);
	m->save_timer = sd_event_source_disable_unref(m->save_timer);
	m->disc_timer = sd_event_source_disable_unref(m->disc_timer);
	gw_hadisc_free(m->disc);
	gw_spool_reader_free(m->reader);
	free(m->inflight);
	gw_seqset_free(&m->skip);
	sd_event_unref(m->event);
	free(m);
	return NULL;
}

void gw_mqtt_kick(struct gw_mqtt *m, uint64_t seq)
{
	/* Only while connected: what arrives during an outage is backlog like the rest, and
	 * queueing it here would put the first record after a reconnect behind all of it. */
	if (m->cfg->mqtt.order == GW_ORDER_LIVE_FIRST && m->state == GW_MQTT_CONNECTED &&
	    seq > gw_spool_reader_position(m->reader)) {
		/* Replaying: remember the new record so it goes out before the backlog. The
		 * oldest live entry makes room; the backlog reaches it anyway. */
		if (m->n_live == GW_MQTT_LIVE_QUEUE) {
			m->live_head = (m->live_head + 1) % GW_MQTT_LIVE_QUEUE;
			m->n_live--;
		}
		m->live[(m->live_head + m->n_live) % GW_MQTT_LIVE_QUEUE] = seq;
		m->n_live++;
	}
	if (m->state == GW_MQTT_CONNECTED) {
		pump(m);
		update_interest(m);
	}
}

enum gw_mqtt_state gw_mqtt_get_state(const struct gw_mqtt *m)
{
	return m->state;
}

size_t gw_mqtt_inflight(const struct gw_mqtt *m)
{
	return m->n_inflight;
}

void gw_mqtt_get_stats(const struct gw_mqtt *m, struct gw_mqtt_stats *ret)
{
	const struct gw_spool_reader_stats *rs = gw_spool_reader_stats(m->reader);
	uint64_t backlog = gw_spool_reader_backlog(m->reader);

	*ret = (struct gw_mqtt_stats){
		.produced = m->initial_backlog + gw_spool_stats(m->spool)->appended -
			    m->appended_at_start + rs->dropped_enospc,
		.acked = m->acked,
		/* acknowledged or dead-lettered out of order: stored, but no longer queued */
		.queued = backlog > m->skip.n ? backlog - m->skip.n : 0,
		.dropped_overflow = rs->dropped_overflow - m->overflow_acked,
		.dropped_enospc = rs->dropped_enospc,
		.rejected = rs->deadlettered,
		.lost_corrupt = rs->lost_corrupt,
		.inflight = m->n_inflight,
		.resent = m->resent,
		.connects = m->connects,
		.connection_losses = m->connection_losses,
	};
}

const char *gw_mqtt_name(const struct gw_mqtt *m)
{
	return m->cfg->name;
}

/* ---- the uplink driver (gw/uplink.h) ---- */

static void driver_state(struct gw_mqtt *m, enum gw_mqtt_state state, const char *reason,
			 uint32_t retry_ms, void *ud)
{
	const char *name = m->cfg->name;

	switch (state) {
	case GW_MQTT_CONNECTED:
		{
			struct gw_mqtt_stats st;

			gw_mqtt_get_stats(m, &st);
			gw_log_uplink(LOG_INFO, name, "connected, %llu record(s) to send",
				      (unsigned long long)st.queued);
		}
		break;
	case GW_MQTT_CONNECTING:
		gw_log_uplink(LOG_DEBUG, name, "connecting");
		break;
	case GW_MQTT_DISCONNECTED:
		gw_log_uplink(LOG_WARNING, name, "%s; reconnecting in %.1f s", reason,
			      retry_ms / 1000.0);
		snprintf(m->status_error, sizeof(m->status_error), "%s", reason ? reason : "");
		break;
	}
	gw_uplink_notify(ud, true);
}

static void driver_idle(struct gw_mqtt *m, void *ud)
{
	gw_uplink_notify(ud, false);
}

static int driver_new(const struct gw_uplink_env *env, void **ret)
{
	struct gw_mqtt *m;
	int r = gw_mqtt_new(env->event, env->cfg, env->spool, driver_state, driver_idle,
			    env->self, &m);

	if (r < 0) {
		gw_log_uplink(LOG_ERR, env->cfg->name, "cannot set up its cursor: %s",
			      strerror(-r));
		return r;
	}
	if (env->cfg->mqtt.discovery == GW_DISCOVERY_HOMEASSISTANT) {
		r = gw_hadisc_new(env->cfg, env->state_dir, env->maps, env->n_maps, &m->disc);
		if (r >= 0)
			r = sd_event_add_time_relative(env->event, &m->disc_timer, CLOCK_MONOTONIC,
						       1000000, 100000, disc_cb, m);
		if (r < 0) {
			gw_log_uplink(LOG_ERR, env->cfg->name, "cannot set up discovery: %s",
				      strerror(-r));
			gw_mqtt_free(m);
			return r;
		}
		(void)sd_event_source_set_enabled(m->disc_timer, SD_EVENT_OFF);
	}
	*ret = m;
	return 0;
}

static void driver_free(void *impl)
{
	gw_mqtt_free(impl);
}

static void driver_hold(void *impl, bool hold)
{
	struct gw_mqtt *m = impl;

	m->held = hold;
	if (m->ev)
		update_interest(m);
}

static void driver_poll(void *impl)
{
	struct gw_mqtt *m = impl;

	/* hooks.lost may free the session: nothing of it is used afterwards */
	gw_mosqev_poll(m->ev);
}

static int driver_start(void *impl)
{
	return gw_mqtt_start(impl);
}

static void driver_kick(void *impl, uint64_t seq)
{
	gw_mqtt_kick(impl, seq);
}

static int driver_save(void *impl)
{
	return gw_mqtt_save(impl);
}

/* Without a session nothing in flight can be acknowledged: no reason to wait for it. */
static size_t driver_draining(const void *impl)
{
	const struct gw_mqtt *m = impl;

	return m->state == GW_MQTT_CONNECTED ? m->n_inflight : 0;
}

static void driver_summary(const void *impl, struct gw_uplink_summary *ret)
{
	const struct gw_mqtt *m = impl;
	struct gw_mqtt_stats st;

	gw_mqtt_get_stats(m, &st);
	ret->sessions = 1;
	ret->online = m->state == GW_MQTT_CONNECTED;
	ret->queued = st.queued;
	ret->inflight = st.inflight;
	ret->acked = st.acked;
	ret->rejected = st.rejected;
}

static void driver_log_counters(const void *impl)
{
	const struct gw_mqtt *m = impl;
	struct gw_mqtt_stats st;

	gw_mqtt_get_stats(m, &st);
	gw_log_uplink(LOG_INFO, m->cfg->name,
		      "counters: produced=%llu acked=%llu queued=%llu dropped_overflow=%llu "
		      "dropped_enospc=%llu rejected=%llu lost_corrupt=%llu inflight=%llu "
		      "resent=%llu connects=%llu connection_losses=%llu",
		      (unsigned long long)st.produced, (unsigned long long)st.acked,
		      (unsigned long long)st.queued, (unsigned long long)st.dropped_overflow,
		      (unsigned long long)st.dropped_enospc, (unsigned long long)st.rejected,
		      (unsigned long long)st.lost_corrupt, (unsigned long long)st.inflight,
		      (unsigned long long)st.resent, (unsigned long long)st.connects,
		      (unsigned long long)st.connection_losses);
}

static void driver_status(void *impl, json_t *o)
{
	struct gw_mqtt *m = impl;
	struct gw_mqtt_stats st;
	static const char *const states[] = {
		[GW_MQTT_DISCONNECTED] = "disconnected",
		[GW_MQTT_CONNECTING] = "connecting",
		[GW_MQTT_CONNECTED] = "connected",
	};

	gw_mqtt_get_stats(m, &st);
	(void)json_object_set_new(o, "session", json_string(states[m->state]));
	(void)json_object_set_new(o, "host", json_string(m->cfg->host));
	(void)json_object_set_new(o, "port", json_integer(m->cfg->port));
	(void)json_object_set_new(o, "tls", json_boolean(m->cfg->tls));
	(void)json_object_set_new(o, "last_error", m->status_error[0] ?
				  json_string(m->status_error) : json_null());
	(void)json_object_set_new(o, "backlog_bytes",
				  json_integer((json_int_t)gw_spool_reader_backlog_bytes(m->reader)));
	(void)json_object_set_new(o, "oldest_age_ms",
				  json_integer(gw_spool_reader_oldest_age(m->reader,
									  gw_now_wall_ms())));
	(void)json_object_set_new(o, "counters", json_pack(
		"{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
		"produced", (json_int_t)st.produced, "acked", (json_int_t)st.acked,
		"queued", (json_int_t)st.queued, "dropped_overflow",
		(json_int_t)st.dropped_overflow, "dropped_enospc", (json_int_t)st.dropped_enospc,
		"rejected", (json_int_t)st.rejected, "lost_corrupt", (json_int_t)st.lost_corrupt,
		"inflight", (json_int_t)st.inflight, "resent", (json_int_t)st.resent, "connects",
		(json_int_t)st.connects, "connection_losses", (json_int_t)st.connection_losses));
}

/* What pump() would publish for rec, for sensorgwctl decode. */
static int driver_preview(const struct gw_config_uplink *cfg, const struct gw_spool_record *rec,
			  char *topic, size_t topic_size, char **payload, size_t *len, char *why,
			  size_t why_size)
{
	struct gw_payload_view v;

	if (gw_payload_unpack(rec->payload, rec->len, rec->type, &v) < 0) {
		snprintf(why, why_size, "not a record this version can send");
		return -EBADMSG;
	}
	if (gw_payload_topic(cfg->mqtt.topic, &v, cfg->name, topic, topic_size) < 0) {
		snprintf(why, why_size, "the topic template cannot be expanded for it");
		return -EINVAL;
	}
	*payload = gw_new0(char, v.json_len + 1);
	memcpy(*payload, v.json, v.json_len);
	(*payload)[v.json_len] = '\0';
	*len = v.json_len;
	return 0;
}

const struct gw_uplink_ops gw_mqtt_uplink_ops = {
	.type = GW_UPLINK_MQTT,
	.new = driver_new,
	.free = driver_free,
	.start = driver_start,
	.kick = driver_kick,
	.hold = driver_hold,
	.poll = driver_poll,
	.save = driver_save,
	.draining = driver_draining,
	.summary = driver_summary,
	.log_counters = driver_log_counters,
	.status = driver_status,
	.preview = driver_preview,
};
