/* SPDX-License-Identifier: MIT */
/*
 * Alibaba Cloud uplink: one libmosquitto session per node device on the sd-event loop, fed
 * from one spool reader. See include/gw/aliyun_uplink.h for the contract.
 */

#include <errno.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gw/aliyun.h"
#include "gw/aliyun_register.h"
#include "gw/aliyun_uplink.h"
#include "gw/cloud.h"
#include "gw/cloudfeed.h"
#include "gw/credstore.h"
#include "gw/http.h"
#include "gw/log.h"
#include "gw/mosqev.h"
#include "gw/payload.h"
#include "gw/uplink.h"
#include "gw/util.h"

enum dev_state {
	DEV_IDLE,        /* its timer brings the next credential or connection attempt */
	DEV_REGISTERING, /* its registration (HTTPS or MQTT, aliyun_register.c) is running */
	DEV_CONNECTING,  /* CONNECT sent */
	DEV_SUBSCRIBING, /* CONNACK 0, waiting for the SUBACK of the post_reply filter */
	DEV_ONLINE,
};

/* An answer to a command that found its device's window full: sent when it frees. */
struct reply {
	struct reply *next;
	int code;
	char *payload;
	size_t len;
	char topic[GW_ALIYUN_TOPIC_MAX];
	char what[GW_ALIYUN_ID_MAX + 64];
};

struct dev {
	struct gw_aliyun_uplink *u;
	char name[GW_ALIYUN_ID_MAX];
	enum dev_state state;
	char *secret; /* the DeviceSecret or DeviceToken, once loaded or registered and stored */
	char *client_id; /* with a DeviceToken: the ClientID from /ext/regnwl (connwl login) */
	struct gw_aliyun_register *reg;
	uint32_t reg_backoff_ms;
	uint32_t backoff_ms;
	sd_event_source *timer;

	struct mosquitto *mosq;
	struct gw_mosqev *ev; /* its socket and timer on the event loop */
	int sub_mid;
	uint64_t connected_at_us;
	char last_error[GW_MOSQEV_ERROR_MAX]; /* of the last session, for the status */

	/* its messages in the last GW_ALIYUN_UPLINK_RATE_WINDOW_MS, at most max_rate */
	struct gw_window rate;
	bool rate_limited; /* its last record waited for the window; for the log */
	struct reply *replies; /* queued answers, oldest first; they go before its records */
	struct reply **replies_tail;
	unsigned n_replies;         /* at most GW_ALIYUN_UPLINK_REPLIES_MAX */
	uint64_t replies_dropped;   /* answers dropped because the queue was full */
};

struct gw_aliyun_uplink {
	sd_event *event;
	const struct gw_config_uplink *cfg;
	gw_aliyun_uplink_notify_fn notify;
	void *user_data;
	struct gw_uplink_commands commands;
	char *cred_dir;
	struct gw_credstore *store;
	struct gw_http *http;

	struct dev **devs; /* cfg->max_devices slots */
	size_t n_devs;
	uint64_t next_slot_us; /* pacing of new sessions and registrations */

	/* the spool reader, its cursor, the records in flight (cloudfeed.h) */
	struct gw_cloudfeed *feed;

	/* wakes the uplink when the first full device window frees; 0 when not armed */
	sd_event_source *rate_timer;
	uint64_t rate_wake_us;

	struct gw_cloud_counters n; /* answers_dropped: all devices' replies_dropped */
	/* commands from the cloud, before any reaches a node: command_rate, command_burst */
	struct gw_cloud_throttle throttle;
	uint64_t drop_logged_us;
};

#define ulog(u, level, ...) gw_log_uplink(level, (u)->cfg->name, __VA_ARGS__)

/* The session's state (mosqev.h), or what its last session left. */
static bool dev_is_lost(const struct dev *d)
{
	return d->ev && gw_mosqev_lost(d->ev);
}

static int dev_connack(const struct dev *d)
{
	return d->ev ? gw_mosqev_connack(d->ev) : 0;
}

static const char *dev_error(const struct dev *d)
{
	return d->ev ? gw_mosqev_last_error(d->ev) : d->last_error;
}

static void pump(struct gw_aliyun_uplink *u);
static void dev_update_interest(struct dev *d);
static void dev_arm(struct dev *d, uint64_t delay_ms);

static void notify(struct gw_aliyun_uplink *u, bool state_changed)
{
	if (u->notify)
		u->notify(u, state_changed, u->user_data);
}

/* The spool side (cloudfeed.h), in this file's words. */
static void deadletter(struct gw_aliyun_uplink *u, uint64_t seq, const char *why)
{
	gw_cloudfeed_deadletter(u->feed, seq, why);
}

static void rescan(struct gw_aliyun_uplink *u)
{
	gw_cloudfeed_rescan(u->feed);
}

static void wait_for_device(struct gw_aliyun_uplink *u, uint64_t seq)
{
	gw_cloudfeed_wait(u->feed, seq);
}

/* ---- the per-device rate ---- */

/* Arms the rate timer to fire in wait_us, unless it fires sooner anyway. */
static void rate_wake(struct gw_aliyun_uplink *u, uint64_t wait_us)
{
	uint64_t at = gw_now_mono_us() + wait_us;

	if (u->rate_wake_us && u->rate_wake_us <= at)
		return;
	u->rate_wake_us = at;
	(void)sd_event_source_set_time(u->rate_timer, at);
	(void)sd_event_source_set_enabled(u->rate_timer, SD_EVENT_ONESHOT);
}

static void reply_free(struct reply *r)
{
	free(r->payload);
	free(r);
}

/* Publishes an answer at QoS 0, as RRPC responses must be (docs/protocols/aliyun.md §5) and
 * SDKs send replies; its slot in the device's window is taken. */
static void reply_publish(struct dev *d, const char *topic, const char *what, int code,
			  const char *payload, size_t len)
{
	int r = mosquitto_publish(d->mosq, NULL, topic, (int)len, payload, 0, false);

	if (r != MOSQ_ERR_SUCCESS) {
		gw_window_give_back(&d->rate);
		ulog(d->u, LOG_WARNING, "device %s: %s: the answer (code %d) was not sent: %s",
		     d->name, what, code, mosquitto_strerror(r));
	}
	dev_update_interest(d);
}

/* Sends the queued answers its window has room for; the rest wait for the rate timer. */
static void dev_flush_replies(struct dev *d)
{
	while (d->replies) {
		struct reply *r = d->replies;
		uint64_t wait = gw_window_take(&d->rate, gw_now_mono_us());

		if (wait) {
			rate_wake(d->u, wait);
			return;
		}
		d->replies = r->next;
		d->n_replies--;
		if (!d->replies)
			d->replies_tail = &d->replies;
		reply_publish(d, r->topic, r->what, r->code, r->payload, r->len);
		reply_free(r);
	}
}

/* The session ended: the answers it owed cannot go out any more (the request was made to that
 * session; the cloud sees no answer, as for a request lost with it). */
static void dev_drop_replies(struct dev *d)
{
	while (d->replies) {
		struct reply *r = d->replies;

		d->replies = r->next;
		d->n_replies--;
		ulog(d->u, LOG_WARNING, "device %s: %s: the session ended before the answer "
		     "(code %d) could be sent", d->name, r->what, r->code);
		reply_free(r);
	}
	d->replies_tail = &d->replies;
}

/* ---- sessions ---- */

static void dev_teardown(struct dev *d)
{
	struct gw_aliyun_uplink *u = d->u;

	if (d->ev)
		snprintf(d->last_error, sizeof(d->last_error), "%s", gw_mosqev_last_error(d->ev));
	d->ev = gw_mosqev_free(d->ev);
	d->mosq = NULL;
	dev_drop_replies(d);
	/* what was in flight waits in the spool and goes out again after the reconnect */
	gw_cloudfeed_requeue(u->feed, d);
	d->state = DEV_IDLE;
}

/* Ends the session and schedules the next attempt with backoff. */
static bool login_refused(struct dev *d, int rc);

static void dev_lost(struct dev *d, int rc)
{
	struct gw_aliyun_uplink *u = d->u;
	const struct gw_config_uplink *c = u->cfg;
	bool was_online = d->state == DEV_ONLINE;
	char why[384];
	uint32_t delay;

	if (login_refused(d, rc))
		return;
	gw_cloud_describe_loss(dev_connack(d), rc, dev_error(d), false, why, sizeof(why));
	u->n.connection_losses += was_online;
	delay = gw_cloud_loss_delay(c, &d->backoff_ms, was_online, d->connected_at_us,
				    GW_ALIYUN_UPLINK_STABLE_S);
	dev_teardown(d);
	ulog(u, LOG_WARNING, "device %s: %s: %s; reconnecting in %.1f s", d->name,
	     was_online ? "connection lost" : "connecting failed", why, delay / 1000.0);
	dev_arm(d, delay);
	/* its records wait now; other devices' records behind them may go on */
	rescan(u);
	notify(u, true);
}

static void dev_online(struct dev *d)
{
	struct gw_aliyun_uplink *u = d->u;

	d->state = DEV_ONLINE;
	ulog(u, LOG_INFO, "device %s: online", d->name);
	rescan(u);
	notify(u, true);
}

/* What each session subscribes to: the post replies, and the commands a device must take
 * (docs/protocols/aliyun.md §5). */
static const struct {
	enum gw_aliyun_topic kind;
	const char *id;
	const char *what; /* for the log when the platform refuses it */
} subs[] = {
	{ GW_ALIYUN_TOPIC_EVENT_POST_REPLY, "+",
	  "post replies; rejected posts will not be noticed" },
	{ GW_ALIYUN_TOPIC_PROPERTY_SET, NULL, "property sets" },
	{ GW_ALIYUN_TOPIC_SERVICE, "+", "service calls" },
	{ GW_ALIYUN_TOPIC_RRPC_REQUEST, "+", "RRPC requests" },
};
#define N_SUBS (sizeof(subs) / sizeof(subs[0]))

static void on_connect(void *ud, int rc)
{
	struct dev *d = ud;
	const struct gw_config_uplink *c = d->u->cfg;
	char filter[N_SUBS][GW_ALIYUN_TOPIC_MAX];
	char *filters[N_SUBS];
	int r = 0;

	if (rc != 0) {
		/* libmosquitto closes the connection after a refusal */
		return;
	}
	d->connected_at_us = gw_now_mono_us();
	d->u->n.connects++;
	/* one SUBSCRIBE for all of them; "+" for the event id also matches the property
	 * post_reply (aliyun.h) */
	for (size_t i = 0; i < N_SUBS; i++) {
		r = gw_aliyun_build_topic(subs[i].kind, c->product_key, d->name, subs[i].id,
					  filter[i], sizeof(filter[i]));
		if (r < 0)
			break;
		filters[i] = filter[i];
	}
	if (r >= 0)
		r = mosquitto_subscribe_multiple(d->mosq, &d->sub_mid, N_SUBS, filters, 0, 0, NULL);
	if (r != MOSQ_ERR_SUCCESS) {
		gw_mosqev_end(d->ev, "cannot subscribe to the post replies and command topics");
		return;
	}
	d->state = DEV_SUBSCRIBING;
}

static void on_subscribe(void *ud, int mid, int qos_count, const int *granted_qos)
{
	struct dev *d = ud;

	if (mid != d->sub_mid || d->state != DEV_SUBSCRIBING)
		return;
	for (size_t i = 0; i < N_SUBS; i++)
		if (i >= (size_t)qos_count || granted_qos[i] == 0x80)
			ulog(d->u, LOG_WARNING, "device %s: the platform refused the subscription "
			     "to its %s", d->name, subs[i].what);
	dev_online(d);
}

static void on_publish(void *ud, int mid)
{
	struct dev *d = ud;

	(void)gw_cloudfeed_puback(d->u->feed, d, mid);
}

/* ---- commands from the cloud ---- */

/* A command on its way to the node; freed when answered. */
struct cmd {
	struct dev *d;
	enum gw_aliyun_topic kind; /* PROPERTY_SET, SERVICE or RRPC_REQUEST: how to answer */
	bool has_id;
	char id[GW_ALIYUN_MSG_ID_MAX]; /* the request's Alink id */
	char topic[GW_ALIYUN_TOPIC_MAX]; /* where the answer goes */
	char what[GW_ALIYUN_ID_MAX + 64]; /* "property set 123", "service ping 123", ... */
};

/* Publishes the answer, or queues it while the device's window is full: an answer counts
 * against the device's max_rate as any message does, but is never dropped for it. */
static void cmd_answer(struct cmd *c, int code, json_t *data, const char *message)
{
	struct dev *d = c->d;
	struct gw_aliyun_uplink *u = d->u;
	char *payload = NULL;
	size_t len = 0;
	struct reply *q;
	int r;

	if (message) {
		r = gw_aliyun_build_reply_message(c->has_id ? c->id : NULL, code, data, message,
						  &payload, &len);
		/* a reason quoting a param cut mid-character is not UTF-8: answer all the same */
		if (r == -EINVAL)
			r = gw_aliyun_build_reply_message(c->has_id ? c->id : NULL, code, NULL,
							  "see the gateway's log", &payload, &len);
	} else
		r = gw_aliyun_build_reply(c->id, code, data, &payload, &len);
	if (r < 0) {
		ulog(u, LOG_ERR, "device %s: %s: cannot build the answer: %s", d->name, c->what,
		     strerror(-r));
		return;
	}
	if (!d->mosq || d->state != DEV_ONLINE || dev_is_lost(d)) {
		ulog(u, LOG_WARNING, "device %s: %s: the session ended before the answer (code %d) "
		     "could be sent", d->name, c->what, code);
		free(payload);
		return;
	}
	if (!d->replies && gw_window_take(&d->rate, gw_now_mono_us()) == 0) {
		reply_publish(d, c->topic, c->what, code, payload, len);
		free(payload);
		return;
	}
	if (d->n_replies >= GW_ALIYUN_UPLINK_REPLIES_MAX) {
		/* a cloud that sends commands faster than max_rate lets answers go out must not
		 * grow this queue without bound; each line names another command, so gw_log's
		 * limit of identical lines would not hold it: one warning per interval */
		d->replies_dropped++;
		u->n.answers_dropped++;
		ulog(u, gw_every(&u->drop_logged_us, gw_now_mono_us(),
				 GW_CLOUD_LIMIT_LOG_US) ? LOG_WARNING : LOG_DEBUG,
		     "device %s: %s: %d answers already wait for room within max_rate; this one "
		     "(code %d) is dropped (%" PRIu64 " so far for the device, %" PRIu64 " for the "
		     "uplink)", d->name, c->what, GW_ALIYUN_UPLINK_REPLIES_MAX, code,
		     d->replies_dropped, u->n.answers_dropped);
		free(payload);
		return;
	}
	q = gw_new0(struct reply, 1);
	d->n_replies++;
	q->code = code;
	q->payload = payload;
	q->len = len;
	snprintf(q->topic, sizeof(q->topic), "%s", c->topic);
	snprintf(q->what, sizeof(q->what), "%s", c->what);
	*d->replies_tail = q;
	d->replies_tail = &q->next;
	ulog(u, LOG_DEBUG, "device %s: %s: the answer waits for room within max_rate", d->name,
	     c->what);
	rate_wake(u, gw_window_wait(&d->rate, gw_now_mono_us()));
}

static int status_code(enum gw_command_status s)
{
	switch (s) {
	case GW_COMMAND_REPLIED:
		return GW_ALIYUN_CODE_OK;
	case GW_COMMAND_ABSENT:
	case GW_COMMAND_PORT_CLOSED:
	case GW_COMMAND_NODE_GONE:
		return GW_ALIYUN_CODE_NOT_FOUND;
	case GW_COMMAND_NO_CHANNEL:
	case GW_COMMAND_FAILED:
		return GW_ALIYUN_CODE_BAD_REQUEST;
	case GW_COMMAND_BUSY:
		return GW_ALIYUN_CODE_THROTTLED;
	case GW_COMMAND_INVALID:
		return GW_ALIYUN_CODE_BAD_PARAMS;
	case GW_COMMAND_TIMEOUT:
	case GW_COMMAND_CANCELLED:
		break;
	}
	return GW_ALIYUN_CODE_UNKNOWN;
}

static void cmd_done(const struct gw_command_result *res, void *ud)
{
	struct cmd *c = ud;
	struct dev *d = c->d;
	char msg[GW_COMMAND_REASON_MAX + 64];

	if (res->status == GW_COMMAND_REPLIED) {
		ulog(d->u, res->code == GW_ALIYUN_CODE_OK ? LOG_INFO : LOG_NOTICE,
		     "device %s: %s: node %s answered with code %u in %llu ms", d->name, c->what,
		     res->node, res->code, (unsigned long long)res->elapsed_ms);
		if (res->code == GW_ALIYUN_CODE_OK) {
			cmd_answer(c, res->code, res->params, NULL);
		} else {
			snprintf(msg, sizeof(msg), "the node answered with code %u", res->code);
			cmd_answer(c, res->code, res->params, msg);
		}
	} else {
		int code = status_code(res->status);

		ulog(d->u, LOG_WARNING, "device %s: %s answered with code %d: %s", d->name,
		     c->what, code, res->reason);
		cmd_answer(c, code, NULL, res->reason);
	}
	free(c);
}

/* A request that cannot go to the node: answered at once with code and reason. */
static void cmd_refuse(struct cmd *c, int code, const char *reason)
{
	ulog(c->d->u, LOG_WARNING, "device %s: %s answered with code %d: %s", c->d->name, c->what,
	     code, reason);
	cmd_answer(c, code, NULL, reason);
	free(c);
}

/* command_rate (gw_cloud_throttled(), 429 as for busy, docs/protocols/aliyun.md §4.7, D120329):
 * true when c was answered (and freed). Every request that can be answered counts as a command. */
static bool cmd_throttled(struct cmd *c)
{
	struct gw_aliyun_uplink *u = c->d->u;

	u->n.commands++;
	if (!gw_cloud_throttled(&u->throttle, u->cfg, c->d->name, c->what,
				GW_ALIYUN_CODE_THROTTLED))
		return false;
	cmd_answer(c, GW_ALIYUN_CODE_THROTTLED, NULL, GW_CLOUD_THROTTLED_TEXT);
	free(c);
	return true;
}

static void on_command(struct dev *d, enum gw_aliyun_topic kind, const char *id,
		       const struct mosquitto_message *msg)
{
	struct gw_aliyun_uplink *u = d->u;
	const struct gw_config_uplink *cf = u->cfg;
	struct cmd *c = gw_new0(struct cmd, 1);
	struct gw_aliyun_request req;
	enum gw_aliyun_topic what = kind;
	char service[GW_ALIYUN_ID_MAX] = "";
	char reason[GW_ALIYUN_REASON_MAX] = "";
	int r, t;

	c->d = d;
	c->kind = kind;
	if (kind == GW_ALIYUN_TOPIC_PROPERTY_SET) {
		r = gw_aliyun_parse_property_set(msg->payload, (size_t)msg->payloadlen, &req,
						 reason);
		t = gw_aliyun_build_topic(GW_ALIYUN_TOPIC_PROPERTY_SET_REPLY, cf->product_key,
					  d->name, NULL, c->topic, sizeof(c->topic));
		snprintf(c->what, sizeof(c->what), "property set %s", req.id[0] ? req.id : "?");
	} else if (kind == GW_ALIYUN_TOPIC_SERVICE) {
		r = gw_aliyun_parse_service_call(id, msg->payload, (size_t)msg->payloadlen, &req,
						 reason);
		snprintf(service, sizeof(service), "%s", id);
		t = gw_aliyun_build_topic(GW_ALIYUN_TOPIC_SERVICE_REPLY, cf->product_key, d->name,
					  id, c->topic, sizeof(c->topic));
		snprintf(c->what, sizeof(c->what), "call of service %s %s", id,
			 req.id[0] ? req.id : "?");
	} else {
		/* classic RRPC: the msgId in the topic names the response, whatever the payload */
		r = gw_aliyun_parse_rrpc_request(msg->payload, (size_t)msg->payloadlen, &req, &what,
						 service, reason);
		t = gw_aliyun_build_topic(GW_ALIYUN_TOPIC_RRPC_RESPONSE, cf->product_key, d->name,
					  id, c->topic, sizeof(c->topic));
		snprintf(c->what, sizeof(c->what), "RRPC %s (%s%s)", id,
			 r < 0 ? "malformed" : what == GW_ALIYUN_TOPIC_SERVICE ? "service " :
			 "property set", service);
	}
	c->has_id = req.id[0] != '\0';
	snprintf(c->id, sizeof(c->id), "%s", req.id);
	if (t < 0) {
		/* classify_topic accepted these ids, so this cannot happen; never drop silently */
		ulog(u, LOG_ERR, "device %s: %s: no reply topic can be built; not answered",
		     d->name, c->what);
		json_decref(req.params);
		free(c);
		return;
	}
	if ((c->has_id || kind == GW_ALIYUN_TOPIC_RRPC_REQUEST) && cmd_throttled(c)) {
		json_decref(req.params);
		return;
	}
	if (r < 0) {
		if (!c->has_id && kind != GW_ALIYUN_TOPIC_RRPC_REQUEST) {
			ulog(u, LOG_WARNING, "device %s: ignored a malformed %s: %s (without a "
			     "readable id it cannot be answered)", d->name,
			     kind == GW_ALIYUN_TOPIC_SERVICE ? "service call" : "property set",
			     reason[0] ? reason : strerror(-r));
			free(c);
			return;
		}
		cmd_refuse(c, GW_ALIYUN_CODE_BAD_PARAMS, reason[0] ? reason : strerror(-r));
		return;
	}
	if (!u->commands.send) {
		json_decref(req.params);
		cmd_refuse(c, GW_ALIYUN_CODE_BAD_REQUEST, "this gateway has no command path");
		return;
	}
	/* completes through cmd_done, possibly before it returns */
	u->commands.send(u->commands.user_data, d->name,
			 what == GW_ALIYUN_TOPIC_PROPERTY_SET ? GW_COMMAND_PROPERTY_SET :
			 GW_COMMAND_SERVICE, service, req.params,
			 GW_ALIYUN_UPLINK_COMMAND_TIMEOUT_MS, cmd_done, c);
	json_decref(req.params);
}

static void on_message(void *ud, const struct mosquitto_message *msg)
{
	struct dev *d = ud;
	struct gw_aliyun_uplink *u = d->u;
	struct gw_aliyun_post_reply reply;
	enum gw_aliyun_topic kind;
	char id[GW_ALIYUN_ID_MAX];
	char reason[GW_ALIYUN_REASON_MAX];

	if (gw_aliyun_classify_topic(msg->topic, u->cfg->product_key, d->name, &kind, id,
				     sizeof(id)) < 0)
		return;
	if (kind == GW_ALIYUN_TOPIC_PROPERTY_SET || kind == GW_ALIYUN_TOPIC_SERVICE ||
	    kind == GW_ALIYUN_TOPIC_RRPC_REQUEST) {
		on_command(d, kind, id, msg);
		return;
	}
	if (kind != GW_ALIYUN_TOPIC_PROPERTY_POST_REPLY && kind != GW_ALIYUN_TOPIC_EVENT_POST_REPLY)
		return;
	if (gw_aliyun_parse_post_reply(msg->payload, (size_t)msg->payloadlen, &reply,
				       reason) < 0) {
		ulog(u, LOG_NOTICE, "device %s: ignored a malformed post_reply: %s", d->name,
		     reason);
		return;
	}
	if (reply.code == GW_ALIYUN_CODE_OK)
		return;
	/* The PUBACK acknowledged it already: the platform would refuse it again. */
	u->n.rejected++;
	ulog(u, LOG_WARNING, "device %s: the platform rejected post %" PRIu32 " with code %d: %s",
	     d->name, reply.id, reply.code, reply.message[0] ? reply.message : "(no message)");
}

static void on_log(void *ud, int level, const char *str)
{
	struct dev *d = ud;

	ulog(d->u, LOG_DEBUG, "device %s: libmosquitto: %s", d->name, str);
}

static void dev_update_interest(struct dev *d)
{
	int r = gw_mosqev_update(d->ev);

	if (r < 0)
		ulog(d->u, LOG_ERR, "device %s: cannot watch the MQTT socket: %s", d->name,
		     strerror(-r));
}

static void ev_lost(void *ud, int rc)
{
	struct dev *d = ud;

	dev_lost(d, rc);
	pump(d->u);
}

/* after every socket round and every lost session: send what waits */
static void ev_after(void *ud)
{
	struct dev *d = ud;

	pump(d->u);
}

static const struct gw_mosqev_hooks ev_hooks = {
	.connect = on_connect,
	.subscribe = on_subscribe,
	.message = on_message,
	.publish = on_publish,
	.log = on_log,
	.lost = ev_lost,
	.after = ev_after,
};

static void dev_connect(struct dev *d)
{
	struct gw_aliyun_uplink *u = d->u;
	const struct gw_config_uplink *c = u->cfg;
	/* a DeviceToken (regnwl) logs in with authType=connwl and its ClientID
	 * (docs/protocols/aliyun.md §4) */
	struct gw_aliyun_login l = {
		.auth = d->client_id ? GW_ALIYUN_AUTH_CONNWL : GW_ALIYUN_AUTH_DEVICE,
		.product_key = c->product_key,
		.device_name = d->name,
		.region = c->region,
		.instance_id = c->instance_id,
		.port = c->port,
		.sign_method = c->sign_method,
		.secret = d->secret,
		.client_id = d->client_id,
	};
	struct gw_aliyun_connect conn;
	char reason[GW_ALIYUN_REASON_MAX];
	int rc = MOSQ_ERR_NOMEM;
	int r;

	d->last_error[0] = '\0';
	r = gw_aliyun_build_connect(&l, &conn, reason);
	if (r < 0) {
		ulog(u, LOG_ERR, "device %s: cannot build its login: %s; retrying in %d s", d->name,
		     r == -EINVAL ? reason : strerror(-r), GW_ALIYUN_UPLINK_RECHECK_MS / 1000);
		dev_arm(d, GW_ALIYUN_UPLINK_RECHECK_MS);
		return;
	}
	if (gw_mosqev_new(u->event, conn.client_id, true, GW_MOSQEV_SAY_CLOSED, &ev_hooks, d,
			  &d->ev) < 0)
		goto fail;
	d->mosq = gw_mosqev_client(d->ev);
	mosquitto_max_inflight_messages_set(d->mosq, c->max_inflight);
	rc = mosquitto_username_pw_set(d->mosq, conn.username, conn.password);
	if (rc != MOSQ_ERR_SUCCESS)
		goto fail;
	rc = mosquitto_tls_set(d->mosq, c->ca_file, NULL, NULL, NULL, NULL);
	if (rc != MOSQ_ERR_SUCCESS)
		goto fail;
	/* peer and host name verification stay on */
	rc = mosquitto_tls_opts_set(d->mosq, 1, NULL, NULL);
	if (rc != MOSQ_ERR_SUCCESS)
		goto fail;
	d->state = DEV_CONNECTING;
	rc = gw_mosqev_connect(d->ev, c->host ? c->host : conn.host, conn.port, c->keepalive);
	if (rc != MOSQ_ERR_SUCCESS)
		goto fail;
	explicit_bzero(&conn, sizeof(conn));
	dev_update_interest(d);
	return;
fail:
	explicit_bzero(&conn, sizeof(conn));
	dev_lost(d, rc);
}

/* ---- credentials ---- */

static void dev_arm_wall(struct dev *d, int64_t at_ms)
{
	int64_t now = gw_now_wall_ms();

	dev_arm(d, at_ms > now ? (uint64_t)(at_ms - now) : 0);
}

static bool dynamic_auth(const struct gw_config_uplink *c)
{
	return c->auth == GW_CLOUD_AUTH_REGISTER || c->auth == GW_CLOUD_AUTH_REGNWL;
}

#define secs_until gw_cloud_secs_until

static void mark_refused(struct dev *d, const char *why, struct gw_cred_state *st)
{
	gw_cloud_mark_refused(d->u->store, d->u->cfg->name, d->name, why, st);
}

/* The platform refused: it says why, and asking again soon would not change its mind. */
static void registration_refused(struct dev *d, const char *via, const char *why)
{
	struct gw_aliyun_uplink *u = d->u;
	char marker[GW_CREDSTORE_WHY_MAX + 1];
	struct gw_cred_state st;

	u->n.registration_failures++;
	snprintf(marker, sizeof(marker), "registration over %s refused: %s", via, why);
	mark_refused(d, marker, &st);
	ulog(u, LOG_WARNING, "device %s: registration refused by the platform (%s) over %s; no "
	     "credential written; next attempt in %lld s (an activated device needs ResetThing "
	     "in the console)", d->name, why, via, secs_until(st.next_retry_ms));
	dev_arm_wall(d, st.next_retry_ms);
}

/* A transport failure or a malformed answer: nothing was issued that we know of. */
static void registration_failed(struct dev *d, const char *via, const char *why)
{
	struct gw_aliyun_uplink *u = d->u;
	uint32_t delay;

	u->n.registration_failures++;
	d->reg_backoff_ms = gw_backoff_next(d->reg_backoff_ms, u->cfg->reconnect_min_ms,
					    u->cfg->reconnect_max_ms);
	delay = gw_backoff_jitter(d->reg_backoff_ms);
	ulog(u, LOG_WARNING, "device %s: registration over %s failed: %s; no credential "
	     "written; retrying in %.1f s", d->name, via, why, delay / 1000.0);
	dev_arm(d, delay);
}

/* A stored credential refused at login (CONNACK 4 or 5): the device was reset in the console
 * or its secret replaced. Asking again at once would be refused again (docs/protocols/aliyun.md §4:
 * do not hot-loop on 4/5), so the device goes on the slow schedule of a refused registration, and
 * with register/regnwl registers again when that is due. The credential file stays until a new one
 * is stored, which keeps it as .json.bak. True when the loss was such a refusal. */
static bool login_refused(struct dev *d, int rc)
{
	struct gw_aliyun_uplink *u = d->u;
	int connack = dev_connack(d);
	const char *what = d->client_id ? "DeviceToken" : "DeviceSecret";
	char why[GW_CREDSTORE_WHY_MAX + 1];
	struct gw_cred_state st;

	if (d->state != DEV_CONNECTING || (connack != 4 && connack != 5))
		return false;
	dev_teardown(d);
	d->secret = gw_secret_free(d->secret);
	d->client_id = gw_secret_free(d->client_id);
	snprintf(why, sizeof(why), "login with the stored %s refused: CONNACK %d: %s", what,
		 connack, mosquitto_connack_string(connack));
	mark_refused(d, why, &st);
	if (dynamic_auth(u->cfg)) {
		ulog(u, LOG_WARNING, "device %s: the platform refused its stored %s at login "
		     "(CONNACK %d: %s): the credential is stale (device reset or secret replaced "
		     "in the console?); registering again in %lld s, keeping the old one until then",
		     d->name, what, connack, mosquitto_connack_string(connack),
		     secs_until(st.next_retry_ms));
		dev_arm_wall(d, st.next_retry_ms);
	} else {
		ulog(u, LOG_WARNING, "device %s: the platform refused its stored %s at login "
		     "(CONNACK %d: %s): it needs provisioning (a new DeviceSecret in %s/%s.json); "
		     "trying the old one again in %lld s", d->name, what, connack,
		     mosquitto_connack_string(connack), u->cred_dir, d->name,
		     secs_until(st.next_retry_ms));
		/* a DeviceSecret provisioned meanwhile is picked up at the next look */
		dev_arm(d, secs_until(st.next_retry_ms) * 1000 < GW_ALIYUN_UPLINK_RECHECK_MS ?
				   (uint64_t)secs_until(st.next_retry_ms) * 1000 :
				   GW_ALIYUN_UPLINK_RECHECK_MS);
	}
	rescan(u);
	notify(u, true);
	return true;
}

static void on_registered(struct gw_aliyun_register *reg,
			  const struct gw_aliyun_register_outcome *o, void *ud)
{
	struct dev *d = ud;
	struct gw_aliyun_uplink *u = d->u;
	bool token;

	d->reg = NULL;
	d->state = DEV_IDLE;
	switch (o->result) {
	case GW_ALIYUN_REGISTER_STORED:
		break;
	case GW_ALIYUN_REGISTER_REFUSED:
		registration_refused(d, o->via, o->why);
		return;
	case GW_ALIYUN_REGISTER_FAILED:
		registration_failed(d, o->via, o->why);
		return;
	}
	/* aliyun_register.c stored it durably before handing it on */
	token = o->cred->kind == GW_CRED_DEVICE_TOKEN;
	d->secret = gw_secret_free(d->secret);
	d->client_id = gw_secret_free(d->client_id);
	d->secret = gw_strdup(token ? o->cred->token : o->cred->secret);
	d->client_id = token ? gw_strdup(o->cred->client_id) : NULL;
	d->reg_backoff_ms = 0;
	u->n.registrations++;
	ulog(u, LOG_INFO, "device %s: registered over %s; %s stored in %s/%s.json", d->name,
	     o->via, token ? "ClientID and DeviceToken" : "DeviceSecret", u->cred_dir, d->name);
	dev_arm(d, 0);
}

static void dev_register(struct dev *d)
{
	struct gw_aliyun_uplink *u = d->u;
	int r;

	r = gw_aliyun_register_start(u->event, u->http, u->store, u->cfg, d->name, on_registered,
				     d, &d->reg);
	if (r < 0) {
		registration_failed(d, u->cfg->auth == GW_CLOUD_AUTH_REGNWL ? "MQTT" : "HTTPS",
				    strerror(-r));
		return;
	}
	d->state = DEV_REGISTERING;
}

/* Finds the device's credential: the store first, then registration when allowed. */
static void dev_provision(struct dev *d)
{
	struct gw_aliyun_uplink *u = d->u;
	const struct gw_config_uplink *c = u->cfg;
	char reason[GW_CREDSTORE_REASON_MAX];
	struct gw_cred_state st;
	struct gw_cred cred;
	bool token;
	int r;

	r = gw_credstore_load(u->store, d->name, &cred, reason, sizeof(reason));
	if (r == 0) {
		if (reason[0])
			ulog(u, LOG_WARNING, "device %s: %s", d->name, reason);
		token = cred.kind == GW_CRED_DEVICE_TOKEN;
		if (cred.cloud != GW_CRED_CLOUD_ALIYUN ||
		    (cred.kind != GW_CRED_DEVICE_SECRET && !token) ||
		    strcmp(cred.product, c->product_key) != 0) {
			ulog(u, LOG_ERR, "device %s: %s/%s.json is not an Aliyun DeviceSecret or "
			     "DeviceToken of product %s; not connecting", d->name, u->cred_dir,
			     d->name, c->product_key);
			gw_credstore_wipe(&cred);
			dev_arm(d, GW_ALIYUN_UPLINK_RECHECK_MS);
			return;
		}
		/* device-secret: once the retry is due, the old one is tried again, slowly */
		if (gw_cloud_cred_refused(u->store, c->name, d->name, &cred, &st) &&
		    (dynamic_auth(c) || st.next_retry_ms > gw_now_wall_ms())) {
			gw_credstore_wipe(&cred);
			if (st.next_retry_ms > gw_now_wall_ms()) {
				ulog(u, dynamic_auth(c) ? LOG_NOTICE : LOG_DEBUG, "device %s: its "
				     "stored credential was refused (%s); next attempt in %lld s",
				     d->name, st.why, secs_until(st.next_retry_ms));
				if (dynamic_auth(c))
					dev_arm_wall(d, st.next_retry_ms);
				else
					dev_arm(d, GW_ALIYUN_UPLINK_RECHECK_MS);
				return;
			}
			ulog(u, LOG_INFO, "device %s: registering again: its stored credential "
			     "was refused (%s)", d->name, st.why);
			dev_register(d);
			return;
		}
		d->secret = gw_steal_str(token ? &cred.token : &cred.secret);
		d->client_id = token ? gw_steal_str(&cred.client_id) : NULL;
		gw_credstore_wipe(&cred);
		dev_connect(d);
		return;
	}
	if (r == -EBADMSG) {
		ulog(u, LOG_WARNING, "device %s: %s", d->name, reason);
	} else if (r != -ENOENT) {
		ulog(u, LOG_ERR, "device %s: cannot load its credential: %s; retrying in %d s",
		     d->name, reason[0] ? reason : strerror(-r), GW_ALIYUN_UPLINK_RECHECK_MS / 1000);
		dev_arm(d, GW_ALIYUN_UPLINK_RECHECK_MS);
		return;
	}
	if (!dynamic_auth(c)) {
		ulog(u, LOG_WARNING, "device %s: no DeviceSecret in %s/%s.json (auth = "
		     "device-secret: provision it, see sensorgw.conf(5)); looking again in %d s",
		     d->name, u->cred_dir, d->name, GW_ALIYUN_UPLINK_RECHECK_MS / 1000);
		dev_arm(d, GW_ALIYUN_UPLINK_RECHECK_MS);
		return;
	}
	r = gw_credstore_get_state(u->store, d->name, &st, reason, sizeof(reason));
	if (r == 0 && st.status == GW_CRED_STATUS_NEEDS_PROVISIONING &&
	    st.next_retry_ms > gw_now_wall_ms()) {
		ulog(u, LOG_NOTICE, "device %s: registration was refused before (%s); next "
		     "attempt in %lld s", d->name, st.why, secs_until(st.next_retry_ms));
		dev_arm_wall(d, st.next_retry_ms);
		return;
	}
	dev_register(d);
}

/* Each attempt of a device waits for the next free pacing slot, so that a gateway with many
 * nodes never opens its sessions (or registers) in one burst. */
static int dev_timer_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct dev *d = ud;
	struct gw_aliyun_uplink *u = d->u;
	uint64_t now = gw_now_mono_us();

	if (now < u->next_slot_us) {
		(void)sd_event_source_set_time(s, u->next_slot_us);
		(void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
		return 0;
	}
	u->next_slot_us = now + (uint64_t)GW_ALIYUN_UPLINK_PACE_MS * 1000;
	if (d->secret)
		dev_connect(d);
	else
		dev_provision(d);
	return 0;
}

static void dev_arm(struct dev *d, uint64_t delay_ms)
{
	(void)sd_event_source_set_time_relative(d->timer, delay_ms * 1000);
	(void)sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
}

static struct dev *dev_find(struct gw_aliyun_uplink *u, const char *name)
{
	for (size_t i = 0; i < u->n_devs; i++)
		if (strcmp(u->devs[i]->name, name) == 0)
			return u->devs[i];
	return NULL;
}

/* A device seen for the first time. NULL with why filled when it cannot have a session. */
static struct dev *dev_add(struct gw_aliyun_uplink *u, const char *name, char *why, size_t size)
{
	struct dev *d;
	int r;

	if (!gw_credstore_name_valid(name)) {
		snprintf(why, size, "device name '%s' is not valid for Aliyun (1..64 of A-Z a-z "
			 "0-9 _ . @ -)", name);
		return NULL;
	}
	if (u->n_devs == u->cfg->max_devices) {
		snprintf(why, size, "device %s would exceed max_devices (%" PRIu32 ")", name,
			 u->cfg->max_devices);
		return NULL;
	}
	d = gw_new0(struct dev, 1);
	d->u = u;
	d->replies_tail = &d->replies;
	gw_window_init(&d->rate, u->cfg->max_rate, (uint64_t)GW_ALIYUN_UPLINK_RATE_WINDOW_MS * 1000);
	snprintf(d->name, sizeof(d->name), "%s", name);
	r = sd_event_add_time_relative(u->event, &d->timer, CLOCK_MONOTONIC, 0, 0, dev_timer_cb,
				       d);
	if (r < 0) {
		snprintf(why, size, "cannot arm a timer for device %s: %s", name, strerror(-r));
		free(d);
		return NULL;
	}
	u->devs[u->n_devs++] = d;
	ulog(u, LOG_INFO, "device %s: new, starting its session", name);
	return d;
}

static void dev_free(struct dev *d)
{
	d->reg = gw_aliyun_register_cancel(d->reg);
	if (d->ev && d->state == DEV_ONLINE)
		gw_mosqev_hang_up(d->ev); /* a DISCONNECT tells the platform this was intended */
	dev_teardown(d);
	d->timer = sd_event_source_disable_unref(d->timer);
	d->secret = gw_secret_free(d->secret);
	d->client_id = gw_secret_free(d->client_id);
	gw_window_free(&d->rate);
	free(d);
}

/* ---- sending ---- */

/* The Alink message for a record: topic and payload (malloc'd). why says what is wrong. */
static int build_post(const struct gw_config_uplink *cfg, const struct gw_spool_record *rec,
		      const struct gw_payload_view *v, const char *device, char *topic, size_t size,
		      char **payload, size_t *len, char *why, size_t why_size)
{
	json_error_t jerr;
	json_t *o = json_loadb(v->json, v->json_len, 0, &jerr);
	json_t *params = json_object_get(o, "params");
	json_t *ts = json_object_get(o, "ts");
	const char *event = json_string_value(json_object_get(o, "event"));
	uint32_t id = (uint32_t)rec->seq; /* seq mod 2^32: unique per device per day */
	int64_t time_ms;
	int r = -EBADMSG;

	if (!json_is_object(params) || !json_is_integer(ts)) {
		snprintf(why, why_size, "its payload has no params object or no ts");
		goto out;
	}
	time_ms = json_integer_value(ts);
	if (v->type == GW_FRAME_EVENT) {
		r = gw_aliyun_build_topic(GW_ALIYUN_TOPIC_EVENT_POST, cfg->product_key, device,
					  event, topic, size);
		if (r >= 0)
			r = gw_aliyun_build_event_post(id, event, params, time_ms, true, payload,
						       len);
	} else {
		/* live data is stamped by the platform; a replayed reading keeps its time */
		if (gw_now_wall_ms() - time_ms <= GW_ALIYUN_UPLINK_REPLAY_MS)
			time_ms = -1;
		r = gw_aliyun_build_topic(GW_ALIYUN_TOPIC_PROPERTY_POST, cfg->product_key, device,
					  NULL, topic, size);
		if (r >= 0)
			r = gw_aliyun_build_property_post(id, params, time_ms, true, payload, len);
	}
	if (r < 0)
		snprintf(why, why_size, "no Alink message can be built for it: %s",
			 strerror(-r));
out:
	json_decref(o);
	return r < 0 ? r : 0;
}

/* Whether d may send a record now. If not, the record waits as for an offline device (never
 * blocking other devices' records) and the rate timer reads it again when the window frees. */
static bool record_slot(struct dev *d)
{
	struct gw_aliyun_uplink *u = d->u;
	uint64_t wait;

	/* queued answers go first; the rate timer is armed for them already */
	if (d->replies)
		return false;
	wait = gw_window_take(&d->rate, gw_now_mono_us());
	if (wait == 0) {
		d->rate_limited = false;
		return true;
	}
	if (!d->rate_limited)
		ulog(u, LOG_DEBUG, "device %s: %" PRIu32 " messages in %d ms (max_rate): its "
		     "records wait %.3f s", d->name, u->cfg->max_rate,
		     GW_ALIYUN_UPLINK_RATE_WINDOW_MS, wait / 1e6);
	d->rate_limited = true;
	rate_wake(u, wait);
	return false;
}

/* 1: handed to libmosquitto; 0: waits for its device or its window, or was dead-lettered. */
static int send_record(struct gw_aliyun_uplink *u, const struct gw_spool_record *rec)
{
	struct gw_payload_view v;
	char topic[GW_ALIYUN_TOPIC_MAX];
	char why[256];
	char *payload = NULL;
	size_t len = 0;
	struct dev *d;
	int mid = 0;
	int rc;

	if (gw_payload_unpack(rec->payload, rec->len, rec->type, &v) < 0) {
		deadletter(u, rec->seq, "not a record this version can send");
		return 0;
	}
	d = dev_find(u, v.device);
	if (!d)
		d = dev_add(u, v.device, why, sizeof(why));
	if (!d) {
		deadletter(u, rec->seq, why);
		return 0;
	}
	if (d->state != DEV_ONLINE || dev_is_lost(d) || !record_slot(d)) {
		wait_for_device(u, rec->seq);
		return 0;
	}
	if (build_post(u->cfg, rec, &v, d->name, topic, sizeof(topic), &payload, &len, why,
		       sizeof(why)) < 0) {
		gw_window_give_back(&d->rate);
		deadletter(u, rec->seq, why);
		return 0;
	}
	rc = mosquitto_publish(d->mosq, &mid, topic, (int)len, payload, 1, false);
	free(payload);
	if (rc != MOSQ_ERR_SUCCESS)
		gw_window_give_back(&d->rate);
	if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST || rc == MOSQ_ERR_ERRNO) {
		/* the session is going away: its io or tick callback tears it down */
		gw_mosqev_end(d->ev, NULL);
		wait_for_device(u, rec->seq);
		return 0;
	}
	if (rc != MOSQ_ERR_SUCCESS) {
		snprintf(why, sizeof(why), "libmosquitto refused it: %s", mosquitto_strerror(rc));
		deadletter(u, rec->seq, why);
		return 0;
	}
	gw_cloudfeed_sent(u->feed, rec->seq, mid, d);
	dev_update_interest(d);
	return 1;
}

static int pump_send(void *ud, const struct gw_spool_record *rec)
{
	return send_record(ud, rec);
}

static void pump(struct gw_aliyun_uplink *u)
{
	if (gw_cloud_pump(u->feed, u->cfg->name, pump_send, u))
		notify(u, false);
}

/* The first full window freed: queued answers go first, then the records that waited for a
 * window are read again (with those of offline devices, which wait on). */
static int rate_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_aliyun_uplink *u = ud;

	u->rate_wake_us = 0;
	for (size_t i = 0; i < u->n_devs; i++) {
		struct dev *d = u->devs[i];

		if (d->replies && d->state == DEV_ONLINE && !dev_is_lost(d) && d->mosq)
			dev_flush_replies(d);
	}
	rescan(u);
	pump(u);
	return 0;
}

/* ---- the object ---- */

int gw_aliyun_uplink_new(sd_event *event, const struct gw_config_uplink *cfg,
			 const char *state_dir, struct gw_spool *spool,
			 gw_aliyun_uplink_notify_fn notify_fn,
			 const struct gw_uplink_commands *commands, void *user_data,
			 struct gw_aliyun_uplink **ret)
{
	struct gw_aliyun_uplink *u = gw_new0(struct gw_aliyun_uplink, 1);
	char reason[GW_CREDSTORE_REASON_MAX];
	int r;

	u->event = sd_event_ref(event);
	u->cfg = cfg;
	u->notify = notify_fn;
	u->user_data = user_data;
	if (commands)
		u->commands = *commands;
	gw_cloud_throttle_init(&u->throttle, cfg);
	u->devs = gw_new0(struct dev *, cfg->max_devices);
	if (asprintf(&u->cred_dir, "%s/credentials/%s", state_dir, cfg->name) < 0) {
		u->cred_dir = NULL;
		r = -ENOMEM;
		goto fail;
	}
	r = gw_credstore_open(u->cred_dir, &u->store, reason, sizeof(reason));
	if (r < 0) {
		ulog(u, LOG_ERR, "cannot open the credential store %s: %s", u->cred_dir,
		     reason[0] ? reason : strerror(-r));
		goto fail;
	}
	r = gw_http_new(event, &u->http);
	if (r < 0)
		goto fail;
	r = gw_cloudfeed_new(event, spool, cfg->name, cfg->max_inflight,
			     cfg->start_from == GW_START_FROM_OLDEST, &u->feed);
	if (r < 0)
		goto fail;
	r = sd_event_add_time_relative(event, &u->rate_timer, CLOCK_MONOTONIC, 1000000, 1000,
				       rate_cb, u);
	if (r < 0)
		goto fail;
	(void)sd_event_source_set_enabled(u->rate_timer, SD_EVENT_OFF);
	*ret = u;
	return 0;
fail:
	gw_aliyun_uplink_free(u);
	return r;
}

int gw_aliyun_uplink_start(struct gw_aliyun_uplink *u)
{
	pump(u);
	return 0;
}

int gw_aliyun_uplink_save(struct gw_aliyun_uplink *u)
{
	return gw_cloudfeed_save(u->feed);
}

struct gw_aliyun_uplink *gw_aliyun_uplink_free(struct gw_aliyun_uplink *u)
{
	if (!u)
		return NULL;
	u->notify = NULL;
	for (size_t i = 0; i < u->n_devs; i++)
		dev_free(u->devs[i]);
	u->rate_timer = sd_event_source_disable_unref(u->rate_timer);
	/* saves the cursor */
	gw_cloudfeed_free(u->feed);
	gw_http_free(u->http);
	gw_credstore_close(u->store);
	free(u->cred_dir);
	free(u->devs);
	sd_event_unref(u->event);
	free(u);
	return NULL;
}

void gw_aliyun_uplink_kick(struct gw_aliyun_uplink *u, uint64_t seq)
{
	pump(u);
}

size_t gw_aliyun_uplink_inflight(const struct gw_aliyun_uplink *u)
{
	return gw_cloudfeed_inflight(u->feed);
}

/* The counters of the log line and the status, in their order. */
static const char *const log_counters[] = {
	"produced", "acked", "queued", "dropped_overflow", "dropped_enospc", "deadlettered",
	"lost_corrupt", "rejected", "inflight", "resent", "devices", "online", "connects",
	"connection_losses", "registrations", "registration_failures", "commands",
	"commands_throttled", "answers_dropped", NULL,
};
static const char *const status_counters[] = {
	"produced", "acked", "queued", "dropped_overflow", "dropped_enospc", "deadlettered",
	"lost_corrupt", "rejected", "inflight", "resent", "connects", "connection_losses",
	"registrations", "registration_failures", "commands", "commands_throttled",
	"answers_dropped", NULL,
};

static void get_counters(const struct gw_aliyun_uplink *u, struct gw_cloudfeed_stats *fs,
			 struct gw_cloud_counters *ret)
{
	gw_cloudfeed_get_stats(u->feed, fs);
	*ret = u->n;
	ret->commands_throttled = u->throttle.refused;
	ret->devices = u->n_devs;
	for (size_t i = 0; i < u->n_devs; i++)
		ret->online += u->devs[i]->state == DEV_ONLINE;
}

/* ---- the uplink driver (gw/uplink.h) ---- */

static void driver_notify(struct gw_aliyun_uplink *u, bool state_changed, void *ud)
{
	gw_uplink_notify(ud, state_changed);
}

static int driver_new(const struct gw_uplink_env *env, void **ret)
{
	struct gw_aliyun_uplink *u;
	/* it logs what failed */
	int r = gw_aliyun_uplink_new(env->event, env->cfg, env->state_dir, env->spool,
				     driver_notify, &env->commands, env->self, &u);

	if (r < 0)
		return r;
	*ret = u;
	return 0;
}

static void driver_free(void *impl)
{
	gw_aliyun_uplink_free(impl);
}

static int driver_start(void *impl)
{
	return gw_aliyun_uplink_start(impl);
}

static void driver_kick(void *impl, uint64_t seq)
{
	gw_aliyun_uplink_kick(impl, seq);
}

static int driver_save(void *impl)
{
	return gw_aliyun_uplink_save(impl);
}

/* only online sessions carry records in flight */
static size_t driver_draining(const void *impl)
{
	return gw_aliyun_uplink_inflight(impl);
}

static void driver_summary(const void *impl, struct gw_uplink_summary *ret)
{
	struct gw_cloudfeed_stats fs;
	struct gw_cloud_counters n;

	get_counters(impl, &fs, &n);
	gw_cloud_summary(&fs, &n, ret);
}

static void driver_log_counters(const void *impl)
{
	const struct gw_aliyun_uplink *u = impl;
	struct gw_cloudfeed_stats fs;
	struct gw_cloud_counters n;

	get_counters(u, &fs, &n);
	gw_cloud_log_counters(u->cfg->name, log_counters, &fs, &n);
}

static json_t *dev_status(struct dev *d)
{
	static const char *const states[] = {
		[DEV_IDLE] = "idle",
		[DEV_REGISTERING] = "registering",
		[DEV_CONNECTING] = "connecting",
		[DEV_SUBSCRIBING] = "subscribing",
		[DEV_ONLINE] = "online",
	};

	return gw_cloudfeed_device_status(d->u->store, d->name, states[d->state], d->secret != NULL,
					  dev_error(d));
}

static void driver_status(void *impl, json_t *o)
{
	struct gw_aliyun_uplink *u = impl;
	struct gw_cloudfeed_stats fs;
	struct gw_cloud_counters n;
	json_t *devs = json_array();

	get_counters(u, &fs, &n);
	for (size_t i = 0; i < u->n_devs; i++)
		(void)json_array_append_new(devs, dev_status(u->devs[i]));
	(void)json_object_set_new(o, "devices", devs);
	gw_cloud_status(u->feed, status_counters, &n, o);
}

/* What send_record() would publish for rec, for sensorgwctl decode. */
static int driver_preview(const struct gw_config_uplink *cfg, const struct gw_spool_record *rec,
			  char *topic, size_t topic_size, char **payload, size_t *len, char *why,
			  size_t why_size)
{
	struct gw_payload_view v;

	if (gw_payload_unpack(rec->payload, rec->len, rec->type, &v) < 0) {
		snprintf(why, why_size, "not a record this version can send");
		return -EBADMSG;
	}
	if (!gw_credstore_name_valid(v.device)) {
		snprintf(why, why_size, "device name '%s' is not valid for Aliyun (1..64 of A-Z "
			 "a-z 0-9 _ . @ -)", v.device);
		return -EINVAL;
	}
	return build_post(cfg, rec, &v, v.device, topic, topic_size, payload, len, why,
			  why_size);
}

const struct gw_uplink_ops gw_aliyun_uplink_ops = {
	.type = GW_UPLINK_ALIYUN,
	.new = driver_new,
	.free = driver_free,
	.start = driver_start,
	.kick = driver_kick,
	.save = driver_save,
	.draining = driver_draining,
	.summary = driver_summary,
	.log_counters = driver_log_counters,
	.status = driver_status,
	.preview = driver_preview,
};
