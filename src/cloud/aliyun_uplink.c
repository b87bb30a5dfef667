/* SPDX-License-Identifier: MIT */
/*
 * Alibaba Cloud uplink: a driver of the cloud core (gw/cloud.h), which runs one libmosquitto
 * session per node device fed from one spool reader. This file says what Aliyun says
 * differently: the Alink topics and messages, the DeviceSecret or DeviceToken login, the
 * per-device message window with its queue of answers, commands and registration. See
 * include/gw/aliyun_uplink.h for the contract.
 */

#include <errno.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <stdio.h>
#include <string.h>

#include "aliyun_uplink-private.h"
#include "gw/aliyun.h"
#include "gw/aliyun_register.h"
#include "gw/aliyun_uplink.h"
#include "gw/cloud.h"
#include "gw/credstore.h"
#include "gw/log.h"
#include "gw/payload.h"
#include "gw/util.h"

/* ---- the per-device window and its queue of answers ---- */

static void reply_free(struct reply *r)
{
	free(r->payload);
	free(r);
}

/* Publishes an answer at QoS 0, as RRPC responses must be (docs/protocols/aliyun.md §5) and
 * SDKs send replies; its slot in the device's window is taken. */
static void reply_publish(struct gw_cloud_dev *d, const char *topic, const char *what, int code,
			  const char *payload, size_t len)
{
	int r = mosquitto_publish(d->mosq, NULL, topic, (int)len, payload, 0, false);

	if (r != MOSQ_ERR_SUCCESS) {
		gw_window_give_back(&DEV(d)->rate);
		ulog(d, LOG_WARNING, "device %s: %s: the answer (code %d) was not sent: %s",
		     d->name, what, code, mosquitto_strerror(r));
	}
	gw_cloud_dev_update(d);
}

/* The rate timer fired: the queued answers its window has room for go; the rest wait. */
static void rate_tick(struct gw_cloud_dev *d)
{
	struct dev *p = DEV(d);

	while (p->replies) {
		struct reply *r = p->replies;
		uint64_t wait = gw_window_take(&p->rate, gw_now_mono_us());

		if (wait) {
			gw_cloud_rate_wake(d->cloud, wait);
			return;
		}
		p->replies = r->next;
		p->n_replies--;
		if (!p->replies)
			p->replies_tail = &p->replies;
		reply_publish(d, r->topic, r->what, r->code, r->payload, r->len);
		reply_free(r);
	}
}

/* The session ended: the answers it owed cannot go out any more (the request was made to that
 * session; the cloud sees no answer, as for a request lost with it). */
static void session_end(struct gw_cloud_dev *d)
{
	struct dev *p = DEV(d);

	if (gw_cloud_dev_is_gateway(d))
		gw_aliyun_subdev_session_end(d);

	while (p->replies) {
		struct reply *r = p->replies;

		p->replies = r->next;
		p->n_replies--;
		ulog(d, LOG_WARNING, "device %s: %s: the session ended before the answer "
		     "(code %d) could be sent", d->name, r->what, r->code);
		reply_free(r);
	}
	p->replies_tail = &p->replies;
}

/* Whether d may send a record now. If not, the record waits as for an offline device (never
 * blocking other devices' records) and the rate timer reads it again when the window frees. */
static uint64_t rate_take(struct gw_cloud_dev *d)
{
	struct dev *p = DEV(d);
	uint64_t wait;

	/* queued answers go first; the rate timer is armed for them already */
	if (p->replies)
		return GW_CLOUD_WAIT_QUEUED;
	wait = gw_window_take(&p->rate, gw_now_mono_us());
	if (wait == 0) {
		p->rate_limited = false;
		return 0;
	}
	if (!p->rate_limited)
		ulog(d, LOG_DEBUG, "device %s: %" PRIu32 " messages in %d ms (max_rate): its "
		     "records wait %.3f s", d->name, d->cloud->cfg->max_rate,
		     GW_ALIYUN_UPLINK_RATE_WINDOW_MS, wait / 1e6);
	p->rate_limited = true;
	return wait;
}

static void rate_give_back(struct gw_cloud_dev *d)
{
	gw_window_give_back(&DEV(d)->rate);
}

/* ---- commands from the cloud ---- */

/* A command on its way to the node; freed by the core when answered. */
struct cmd {
	struct gw_cloud_cmd base;
	enum gw_aliyun_topic kind; /* PROPERTY_SET, SERVICE or RRPC_REQUEST: how to answer */
	bool has_id;
	char id[GW_ALIYUN_MSG_ID_MAX]; /* the request's Alink id */
	char topic[GW_ALIYUN_TOPIC_MAX]; /* where the answer goes */
};

/* Publishes the answer, or queues it while the device's window is full: an answer counts
 * against the device's max_rate as any message does, but is never dropped for it. */
static void answer(struct gw_cloud_cmd *base, int code, const char *message, json_t *data)
{
	struct cmd *c = (struct cmd *)base;
	struct gw_cloud_dev *d = base->d;
	struct dev *p = DEV(d);
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
		ulog(d, LOG_ERR, "device %s: %s: cannot build the answer: %s", d->name, base->what,
		     strerror(-r));
		return;
	}
	if (!d->mosq || d->state != GW_CLOUD_DEV_ONLINE || gw_cloud_dev_lost(d)) {
		ulog(d, LOG_WARNING, "device %s: %s: the session ended before the answer (code %d) "
		     "could be sent", d->name, base->what, code);
		free(payload);
		return;
	}
	if (!p->replies && gw_window_take(&p->rate, gw_now_mono_us()) == 0) {
		reply_publish(d, c->topic, base->what, code, payload, len);
		free(payload);
		return;
	}
	if (p->n_replies >= GW_ALIYUN_UPLINK_REPLIES_MAX) {
		/* a cloud that sends commands faster than max_rate lets answers go out must not
		 * grow this queue without bound; each line names another command, so gw_log's
		 * limit of identical lines would not hold it: one warning per interval */
		p->replies_dropped++;
		d->cloud->n.answers_dropped++;
		ulog(d, gw_every(&UPLINK(d)->drop_logged_us, gw_now_mono_us(),
				 GW_CLOUD_LIMIT_LOG_US) ? LOG_WARNING : LOG_DEBUG,
		     "device %s: %s: %d answers already wait for room within max_rate; this one "
		     "(code %d) is dropped (%" PRIu64 " so far for the device, %" PRIu64 " for the "
		     "uplink)", d->name, base->what, GW_ALIYUN_UPLINK_REPLIES_MAX, code,
		     p->replies_dropped, d->cloud->n.answers_dropped);
		free(payload);
		return;
	}
	q = gw_new0(struct reply, 1);
	p->n_replies++;
	q->code = code;
	q->payload = payload;
	q->len = len;
	snprintf(q->topic, sizeof(q->topic), "%s", c->topic);
	snprintf(q->what, sizeof(q->what), "%s", base->what);
	*p->replies_tail = q;
	p->replies_tail = &q->next;
	ulog(d, LOG_DEBUG, "device %s: %s: the answer waits for room within max_rate", d->name,
	     base->what);
	gw_cloud_rate_wake(d->cloud, gw_window_wait(&p->rate, gw_now_mono_us()));
}

/* The request's parse, its answer's topic and its name in the log. */
static int parse_command(struct gw_cloud_dev *d, struct cmd *c, const char *id,
			 const struct mosquitto_message *msg, struct gw_aliyun_request *req,
			 enum gw_aliyun_topic *what, char *service, char *reason, int *t)
{
	const char *pk = d->cloud->cfg->aliyun.product_key;
	size_t len = (size_t)msg->payloadlen;
	int r;

	if (c->kind == GW_ALIYUN_TOPIC_PROPERTY_SET) {
		r = gw_aliyun_parse_property_set(msg->payload, len, req, reason);
		*t = gw_aliyun_build_topic(GW_ALIYUN_TOPIC_PROPERTY_SET_REPLY, pk, d->name, NULL,
					   c->topic, sizeof(c->topic));
		snprintf(c->base.what, GW_ALIYUN_ID_MAX + 64, "property set %s",
			 req->id[0] ? req->id : "?");
	} else if (c->kind == GW_ALIYUN_TOPIC_SERVICE) {
		r = gw_aliyun_parse_service_call(id, msg->payload, len, req, reason);
		snprintf(service, GW_ALIYUN_ID_MAX, "%s", id);
		*t = gw_aliyun_build_topic(GW_ALIYUN_TOPIC_SERVICE_REPLY, pk, d->name, id, c->topic,
					   sizeof(c->topic));
		snprintf(c->base.what, GW_ALIYUN_ID_MAX + 64, "call of service %s %s", id,
			 req->id[0] ? req->id : "?");
	} else {
		/* classic RRPC: the msgId in the topic names the response, whatever the payload */
		r = gw_aliyun_parse_rrpc_request(msg->payload, len, req, what, service, reason);
		*t = gw_aliyun_build_topic(GW_ALIYUN_TOPIC_RRPC_RESPONSE, pk, d->name, id, c->topic,
					   sizeof(c->topic));
		snprintf(c->base.what, GW_ALIYUN_ID_MAX + 64, "RRPC %s (%s%s)", id,
			 r < 0 ? "malformed" : *what == GW_ALIYUN_TOPIC_SERVICE ? "service " :
			 "property set", service);
	}
	return r;
}

static void on_command(struct gw_cloud_dev *d, enum gw_aliyun_topic kind, const char *id,
		       const struct mosquitto_message *msg)
{
	struct cmd *c = gw_new0(struct cmd, 1);
	struct gw_aliyun_request req;
	enum gw_aliyun_topic what = kind;
	char service[GW_ALIYUN_ID_MAX] = "";
	char reason[GW_ALIYUN_REASON_MAX] = "";
	bool rrpc = kind == GW_ALIYUN_TOPIC_RRPC_REQUEST;
	int r, t;

	c->base.d = d;
	c->kind = kind;
	r = parse_command(d, c, id, msg, &req, &what, service, reason, &t);
	c->has_id = req.id[0] != '\0';
	snprintf(c->id, sizeof(c->id), "%s", req.id);
	if (t < 0) {
		/* classify_topic accepted these ids, so this cannot happen; never drop silently */
		ulog(d, LOG_ERR, "device %s: %s: no reply topic can be built; not answered",
		     d->name, c->base.what);
		json_decref(req.params);
		free(c);
		return;
	}
	/* command_rate (429 as for busy, docs/protocols/aliyun.md §4.7, D120329): every
	 * request that can be answered counts as a command */
	if (c->has_id || rrpc) {
		if (gw_cloud_cmd_throttled(&c->base)) {
			json_decref(req.params);
			return;
		}
		d->cloud->n.commands++;
	}
	if (r < 0 && !c->has_id && !rrpc) {
		ulog(d, LOG_WARNING, "device %s: ignored a malformed %s: %s (without a readable id "
		     "it cannot be answered)", d->name, kind == GW_ALIYUN_TOPIC_SERVICE ?
		     "service call" : "property set", reason[0] ? reason : strerror(-r));
		free(c);
	} else if (r < 0) {
		gw_cloud_cmd_refuse(&c->base, GW_ALIYUN_CODE_BAD_PARAMS,
				    reason[0] ? reason : strerror(-r));
	} else {
		gw_cloud_cmd_send(&c->base, what == GW_ALIYUN_TOPIC_PROPERTY_SET ?
				  GW_COMMAND_PROPERTY_SET : GW_COMMAND_SERVICE, service, req.params);
		json_decref(req.params);
	}
}

/* ---- the session ---- */

/* What each session subscribes to: the post replies, and the commands a device must take
 * (docs/protocols/aliyun.md §5); one SUBSCRIBE for all of them. "+" for the event id also
 * matches the property post_reply (aliyun.h). */
static const struct {
	enum gw_aliyun_topic kind;
	const char *id;
} subs[] = {
	{ GW_ALIYUN_TOPIC_EVENT_POST_REPLY, "+" },
	{ GW_ALIYUN_TOPIC_PROPERTY_SET, NULL },
	{ GW_ALIYUN_TOPIC_SERVICE, "+" },
	{ GW_ALIYUN_TOPIC_RRPC_REQUEST, "+" },
};
_Static_assert(N_ELEMENTS(subs) == GW_ALIYUN_UPLINK_SUBS, "aliyun_subdev.c's sub-devices");
/* for the log when the platform refuses one */
static const char *const sub_what[] = { "post replies; rejected posts will not be noticed",
					"property sets", "service calls", "RRPC requests" };

int gw_aliyun_uplink_sub_filter(struct gw_cloud_dev *d, size_t i, char *buf, size_t size)
{
	return gw_aliyun_build_topic(subs[i].kind, d->cloud->cfg->aliyun.product_key, d->name,
				     subs[i].id, buf, size);
}

void gw_aliyun_uplink_message(struct gw_cloud_dev *d, const struct mosquitto_message *msg)
{
	struct gw_aliyun_post_reply reply;
	enum gw_aliyun_topic kind;
	char id[GW_ALIYUN_ID_MAX];
	char reason[GW_ALIYUN_REASON_MAX];

	if (gw_aliyun_classify_topic(msg->topic, d->cloud->cfg->aliyun.product_key, d->name, &kind,
				     id, sizeof(id)) < 0)
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
		ulog(d, LOG_NOTICE, "device %s: ignored a malformed post_reply: %s", d->name,
		     reason);
		return;
	}
	if (reply.code == GW_ALIYUN_CODE_OK)
		return;
	/* The PUBACK acknowledged it already: the platform would refuse it again. */
	d->cloud->n.rejected++;
	ulog(d, LOG_WARNING, "device %s: the platform rejected post %" PRIu32 " with code %d: %s",
	     d->name, reply.id, reply.code, reply.message[0] ? reply.message : "(no message)");
}

int gw_aliyun_uplink_login(struct gw_cloud_dev *d, const char *product_key, const char *secret,
			   struct gw_cloud_login *ret, char *why, size_t size)
{
	const struct gw_config_uplink *c = d->cloud->cfg;
	struct dev *p = DEV(d);
	/* a DeviceToken (regnwl) logs in with authType=connwl and its ClientID
	 * (docs/protocols/aliyun.md §4) */
	struct gw_aliyun_login l = {
		.auth = p->client_id ? GW_ALIYUN_AUTH_CONNWL : GW_ALIYUN_AUTH_DEVICE,
		.product_key = product_key,
		.device_name = d->name,
		.region = c->cloud.region,
		.instance_id = c->aliyun.instance_id,
		.port = c->port,
		.sign_method = gw_aliyun_config_sign_method(c),
		.secret = secret,
		.client_id = p->client_id,
	};
	char reason[GW_ALIYUN_REASON_MAX];
	int r;

	if (!p->conn)
		p->conn = gw_new0(struct gw_aliyun_connect, 1);
	r = gw_aliyun_build_connect(&l, p->conn, reason);

	if (r < 0) {
		snprintf(why, size, "%s", r == -EINVAL ? reason : strerror(-r));
		return r;
	}
	*ret = GW_CLOUD_LOGIN(*p->conn, true);
	return 0;
}

static int login(struct gw_cloud_dev *d, struct gw_cloud_login *ret, char *why, size_t size)
{
	return gw_aliyun_uplink_login(d, d->cloud->cfg->aliyun.product_key, DEV(d)->secret, ret,
				      why, size);
}

static int tls(struct gw_cloud_dev *d, struct mosquitto *mosq)
{
	int rc = mosquitto_tls_set(mosq, d->cloud->cfg->ca_file, NULL, NULL, NULL, NULL);

	/* peer and host name verification stay on */
	return rc == MOSQ_ERR_SUCCESS ? mosquitto_tls_opts_set(mosq, 1, NULL, NULL) : rc;
}

static void login_end(struct gw_cloud_dev *d)
{
	struct dev *p = DEV(d);

	if (p->conn)
		explicit_bzero(p->conn, sizeof(*p->conn));
	free(p->conn);
	p->conn = NULL;
}

/* A stored credential refused at login is CONNACK 4 or 5 (docs/protocols/aliyun.md §4: do
 * not hot-loop on 4/5): the device was reset in the console or its secret replaced. */
static bool login_refused(struct gw_cloud_dev *d, char *how, size_t size)
{
	int connack = gw_cloud_dev_connack(d);

	if (connack != 4 && connack != 5)
		return false;
	snprintf(how, size, "CONNACK %d: %s", connack, mosquitto_connack_string(connack));
	return true;
}

/* ---- credentials and registration ---- */

static bool has_cred(const struct gw_cloud_dev *d)
{
	return DEV(d)->secret != NULL;
}

static const char *cred_name(const struct gw_cloud_dev *d)
{
	return DEV(d)->client_id ? "DeviceToken" : "DeviceSecret";
}

static const char *stored_name(const struct gw_config_uplink *cfg)
{
	return "credential";
}

static bool cred_fits(struct gw_cloud_dev *d, const struct gw_cred *cred)
{
	const struct gw_cloud *c = d->cloud;

	if (cred->cloud == GW_CRED_CLOUD_ALIYUN &&
	    (cred->kind == GW_CRED_DEVICE_SECRET || cred->kind == GW_CRED_DEVICE_TOKEN) &&
	    strcmp(cred->product, c->cfg->aliyun.product_key) == 0)
		return true;
	ulog(d, LOG_ERR,
	     "device %s: %s/%s.json is not an Aliyun DeviceSecret or DeviceToken of "
	     "product %s; not connecting",
	     d->name, c->cred_dir, d->name, c->cfg->aliyun.product_key);
	return false;
}

static void cred_forget(struct gw_cloud_dev *d)
{
	DEV(d)->secret = gw_secret_free(DEV(d)->secret);
	DEV(d)->client_id = gw_secret_free(DEV(d)->client_id);
}

static void cred_take(struct gw_cloud_dev *d, struct gw_cred *cred)
{
	bool token = cred->kind == GW_CRED_DEVICE_TOKEN;

	cred_forget(d);
	DEV(d)->secret = gw_steal_str(token ? &cred->token : &cred->secret);
	DEV(d)->client_id = token ? gw_steal_str(&cred->client_id) : NULL;
}

/* aliyun_register.c stored it durably before handing it on */
static void cred_registered(struct gw_cloud_dev *d, const struct gw_cred *cred)
{
	bool token = cred->kind == GW_CRED_DEVICE_TOKEN;

	cred_forget(d);
	DEV(d)->secret = gw_strdup(token ? cred->token : cred->secret);
	DEV(d)->client_id = token ? gw_strdup(cred->client_id) : NULL;
}

static const char *cred_desc(const struct gw_cred *cred)
{
	return cred->kind == GW_CRED_DEVICE_TOKEN ? "ClientID and DeviceToken" : "DeviceSecret";
}

static void cred_missing(struct gw_cloud_dev *d, int r, const char *reason)
{
	if (r == -EBADMSG)
		ulog(d, LOG_WARNING, "device %s: %s", d->name, reason);
	ulog(d, LOG_WARNING, "device %s: no DeviceSecret in %s/%s.json (auth = device-secret: "
	     "provision it, see sensorgw.conf(5)); looking again in %d s", d->name,
	     d->cloud->cred_dir, d->name, GW_ALIYUN_UPLINK_RECHECK_MS / 1000);
}

static bool dynamic(const struct gw_config_uplink *c)
{
	return c->cloud.auth == GW_CLOUD_AUTH_REGISTER || c->cloud.auth == GW_CLOUD_AUTH_REGNWL;
}

static void on_registered(struct gw_aliyun_register *reg,
			  const struct gw_aliyun_register_outcome *o, void *ud)
{
	struct gw_cloud_reg_outcome out = { (enum gw_cloud_reg_result)o->result, o->via, o->why,
					    o->cred, o->untrusted };

	gw_cloud_dev_registered(ud, &out);
}

static int register_start(struct gw_cloud_dev *d, const char **via)
{
	struct gw_cloud *c = d->cloud;

	if (d->sub)
		return gw_aliyun_subdev_register_start(d, via);

	*via = c->cfg->cloud.auth == GW_CLOUD_AUTH_REGNWL ? "MQTT" : "HTTPS";
	return gw_aliyun_register_start(c->event, c->http, c->store, c->cfg, d->name, on_registered,
					d, (struct gw_aliyun_register **)&d->reg);
}

static void register_cancel(struct gw_cloud_dev *d, void *reg)
{
	if (d->sub)
		gw_aliyun_subdev_register_cancel(d, reg);
	else
		gw_aliyun_register_cancel(reg);
}

/* ---- records ---- */

/* The Alink message for a record: topic and payload (malloc'd). why says what is wrong. */
static int build_post(const struct gw_config_uplink *cfg, const struct gw_spool_record *rec,
		      const struct gw_payload_view *v, json_t *o, const char *device, char *topic,
		      size_t size, char **payload, size_t *len, char *why, size_t why_size)
{
	uint32_t id = (uint32_t)rec->seq; /* seq mod 2^32: unique per device per day */
	const char *event;
	json_t *params;
	int64_t time_ms;
	int r;

	r = gw_cloud_record_fields(o, v, GW_ALIYUN_UPLINK_REPLAY_MS, &params, &time_ms, &event,
				   why, why_size);
	if (r < 0)
		return r;
	if (v->type == GW_FRAME_EVENT) {
		r = gw_aliyun_build_topic(GW_ALIYUN_TOPIC_EVENT_POST, cfg->aliyun.product_key,
					  device, event, topic, size);
		if (r >= 0)
			r = gw_aliyun_build_event_post(
				id, event, params, time_ms,
				(enum gw_aliyun_event_form)cfg->aliyun.event_params, true,
				payload, len);
	} else {
		r = gw_aliyun_build_topic(GW_ALIYUN_TOPIC_PROPERTY_POST, cfg->aliyun.product_key,
					  device, NULL, topic, size);
		if (r >= 0)
			r = gw_aliyun_build_property_post(id, params, time_ms, true, payload, len);
	}
	if (r < 0)
		snprintf(why, why_size, "no Alink message can be built for it: %s",
			 strerror(-r));
	return r < 0 ? r : 0;
}

/* ---- the devices and the uplink ---- */

static void dev_init(struct gw_cloud_dev *d)
{
	DEV(d)->replies_tail = &DEV(d)->replies;
	gw_window_init(&DEV(d)->rate, d->cloud->cfg->max_rate,
		       (uint64_t)GW_ALIYUN_UPLINK_RATE_WINDOW_MS * 1000);
}

static void dev_fini(struct gw_cloud_dev *d)
{
	cred_forget(d);
	gw_window_free(&DEV(d)->rate);
}

/* The counters of the log line and the status, in their order. */
static const char *const log_counters[] = {
	"produced", "acked", "queued", "dropped_overflow", "dropped_enospc", "deadlettered",
	"lost_corrupt", "rejected", "inflight", "resent", "devices", "online", "connects",
	"connection_losses", "registrations", "registration_failures", "commands",
	"commands_throttled", "answers_dropped", "model_refused", NULL,
};
static const char *const status_counters[] = {
	"produced", "acked", "queued", "dropped_overflow", "dropped_enospc", "deadlettered",
	"lost_corrupt", "rejected", "inflight", "resent", "connects", "connection_losses",
	"registrations", "registration_failures", "commands", "commands_throttled",
	"answers_dropped", "model_refused", NULL,
};

static const struct gw_cloud_ops cloud_ops = {
	.title = "Aliyun",
	.size = sizeof(struct uplink),
	.dev_size = sizeof(struct dev),
	.pace_ms = GW_ALIYUN_UPLINK_PACE_MS,
	.recheck_ms = GW_ALIYUN_UPLINK_RECHECK_MS,
	.stable_s = GW_ALIYUN_UPLINK_STABLE_S,
	.command_timeout_ms = GW_ALIYUN_UPLINK_COMMAND_TIMEOUT_MS,
	.give_back_unsent = true,
	.recheck_verb = "retrying",
	.log_counters = log_counters,
	.status_counters = status_counters,
	.dev_init = dev_init,
	.dev_fini = dev_fini,
	.build = build_post,
	/* the window, and the answers queued for it */
	.rate_take = rate_take,
	.rate_give_back = rate_give_back,
	.rate_tick = rate_tick,
	.login = login,
	.tls = tls,
	.login_end = login_end,
	.login_refused = login_refused,
	.reregister_on_refusal = true,
	/* the DeviceSecret, or ClientID and DeviceToken (regnwl) */
	.has_cred = has_cred,
	.cred_name = cred_name,
	.cred_fits = cred_fits,
	.cred_take = cred_take,
	.cred_forget = cred_forget,
	.cred_registered = cred_registered,
	.cred_missing = cred_missing,
	.stored_name = stored_name,
	.cred_desc = cred_desc,
	.new_cred_name = "DeviceSecret",
	.dynamic = dynamic,
	.register_start = register_start,
	.register_cancel = register_cancel,
	.refused_needs = "",
	.refused_hint = " (an activated device needs ResetThing in the console)",
	.subs = { .n = N_ELEMENTS(subs),
		  .what = sub_what,
		  .together = true,
		  .qos = 0,
		  .filter = gw_aliyun_uplink_sub_filter,
		  .failed = "cannot subscribe to the post replies and command topics" },
	.session_end = session_end,
	.message = gw_aliyun_uplink_message,
	.answer = answer,
	/* D120329's meanings (aliyun_uplink.h) */
	.codes = { GW_ALIYUN_CODE_OK, GW_ALIYUN_CODE_NOT_FOUND, GW_ALIYUN_CODE_BAD_REQUEST,
		   GW_ALIYUN_CODE_BAD_REQUEST, GW_ALIYUN_CODE_THROTTLED, GW_ALIYUN_CODE_BAD_PARAMS,
		   GW_ALIYUN_CODE_UNKNOWN, GW_ALIYUN_CODE_BAD_REQUEST },
	.gateway = &gw_aliyun_gateway_ops,
};

/* The uplink driver (gw/uplink.h): the core with cloud_ops. */
GW_CLOUD_DRIVER(gw_aliyun_uplink_ops, GW_UPLINK_ALIYUN, cloud_ops);
