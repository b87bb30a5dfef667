/* SPDX-License-Identifier: MIT */
/*
 * The Tencent gateway topology (topology = gateway): the gateway's own session, and the nodes as
 * its sub-devices over it (docs/protocols/gateway.md §G15-§G18, §G20). The core (gw/cloud.h,
 * struct gw_cloud_gateway_ops) decides when a sub-device attaches; this file says how: a `bind`
 * signed with the sub-device's PSK text and the wall clock (§G17) for one not bound yet, then
 * `online` (§G16), one device per message at QoS 0 on $gateway/operation/{gwPID}/{gwDN}; the
 * results come on $gateway/operation/result/{gwPID}/{gwDN} and, there being no message id
 * (§G15), are matched by type and sub-device to the operation the sub-device waits for. A result
 * code is an attach outcome as result_outcome() reads §G16. `offline` logs out a sub-device
 * silent for idle_logout_s. The platform's `change`, `search_devices` and `unbind_all` are
 * acknowledged as §G18 shows; an unbinding refuses the sub-device (its records are
 * dead-lettered until its refusal's retry, its binding forgotten), a binding in the console
 * lets a refused one attach at once.
 *
 * The sub-devices' credentials (auth = psk: the credential store; auth = register: HTTPS
 * registration with the sub-device product's ProductSecret, §G18), data-template messages,
 * commands and answers are the direct driver's (tencent_uplink.c) on their own $thing topics,
 * one SUBSCRIBE each (§G18); the gateway logs in as a direct PSK device of its own product,
 * in any TLS mode (tls = yes, psk or no).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/credstore.h"
#include "gw/log.h"
#include "gw/tencent_register.h"
#include "tencent_uplink-private.h"

#define GW_PID(c) ((c)->cfg->tencent.gateway_product_id)
#define SUB_PID(c) ((c)->cfg->tencent.product_id)

/* §G16: the bind results; the rest are refusals for good */
#define BIND_EXPIRED (-805)       /* the timestamp is too far from the platform's clock */
#define BIND_ALREADY_BOUND (-809) /* already bound to this gateway */
/* §G16 [TD-ONL]: the online results */
#define ONLINE_NOT_BOUND (-1)
#define ONLINE_SYSTEM_ERROR (-2)

static const char *op_name(enum gw_tencent_gw_type type)
{
	const char *s = gw_tencent_name_gw_type(type);

	return s ? s : "?";
}

/* Publishes an operation or acknowledgement on the gateway's operation topic at QoS 0, as every
 * SDK does (§G15). 0, or -errno with why. */
static int op_publish(struct gw_cloud *c, enum gw_tencent_gw_type type, const char *payload,
		      size_t len, char *why, size_t why_size)
{
	char topic[GW_TENCENT_TOPIC_MAX];
	int rc;

	if (!c->gw->mosq) {
		snprintf(why, why_size, "%s not sent: the gateway has no session", op_name(type));
		return -ENOTCONN;
	}
	if (gw_tencent_build_gw_topic(GW_TENCENT_GW_OPERATION, GW_PID(c), c->gw->name, topic,
				      sizeof(topic)) < 0) {
		snprintf(why, why_size, "%s not sent: no operation topic for gateway %s/%s",
			 op_name(type), GW_PID(c), c->gw->name);
		return -EINVAL;
	}
	rc = mosquitto_publish(c->gw->mosq, NULL, topic, (int)len, payload, 0, false);
	if (rc != MOSQ_ERR_SUCCESS) {
		snprintf(why, why_size, "%s not sent: %s", op_name(type), mosquitto_strerror(rc));
		return -EIO;
	}
	gw_cloud_dev_update(c->gw);
	return 0;
}

/* §G17: bind keyed with the PSK text, or for a certificate a registration handed out the hex
 * MD5 of the certificate file; the timestamp is the wall clock, which the platform wants to be
 * real UTC (-805 otherwise). */
static int build_bind(struct gw_cloud_dev *d, char **payload, size_t *len, char *reason)
{
	const struct gw_config_uplink *cfg = d->cloud->cfg;
	const struct gw_cred *cred = &DEV(d)->cred;
	char key[GW_TENCENT_CERT_KEY_MAX] = "";
	struct gw_tencent_bind b = {
		.product_id = cfg->tencent.product_id,
		.device_name = d->name,
		.key = cred->psk,
		.sign_method = gw_tencent_config_sign_method(cfg),
		.timestamp = (uint64_t)(gw_now_wall_ms() / 1000),
	};
	int r = gw_tencent_make_bind_random(&b.random);

	if (r >= 0 && cred->kind == GW_CRED_CERTIFICATE) {
		b.key = key;
		b.certificate = true;
		r = cred->cert ? gw_tencent_cert_bind_key(cred->cert, strlen(cred->cert), key,
							  sizeof(key)) :
				 -EINVAL;
	}
	if (r >= 0)
		r = gw_tencent_build_bind(&b, payload, len, reason);
	explicit_bzero(key, sizeof(key));
	return r;
}

/* Sends sub-device d's bind or online; its result is waited for. When it cannot go out the
 * attach is over: refused when the message cannot be built from its credential, else failed. */
static void send_op(struct gw_cloud_dev *d, enum gw_tencent_gw_type type)
{
	struct gw_cloud *c = d->cloud;
	char reason[GW_TENCENT_REASON_MAX] = "", why[256];
	char *payload = NULL;
	size_t len = 0;
	int r;

	DEV(d)->gw_waiting = false;
	if (type == GW_TENCENT_GW_BIND)
		r = build_bind(d, &payload, &len, reason);
	else
		r = gw_tencent_build_gw_op(type, SUB_PID(c), d->name, &payload, &len);
	if (r < 0) {
		snprintf(why, sizeof(why), "cannot build its %s: %s", op_name(type),
			 reason[0] ? reason : strerror(-r));
		gw_cloud_sub_attach_done(d,
					 r == -EINVAL ? GW_CLOUD_ATTACH_REFUSED :
							GW_CLOUD_ATTACH_FAILED,
					 why);
		return;
	}
	r = op_publish(c, type, payload, len, why, sizeof(why));
	free(payload);
	if (r < 0) {
		gw_cloud_sub_attach_done(d, GW_CLOUD_ATTACH_FAILED, why);
		return;
	}
	DEV(d)->gw_op = type;
	DEV(d)->gw_waiting = true;
}

/* The core's batch (one sub-device, attach_max): bound before, it goes online; else bind
 * first (§G1's order). */
static int attach(struct gw_cloud *c, struct gw_cloud_dev *const *subs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		send_op(subs[i], gw_cloud_sub_attached_before(subs[i]) ? GW_TENCENT_GW_ONLINE :
									 GW_TENCENT_GW_BIND);
	return 0;
}

/* ---- results ---- */

/* What a refused bind or online means (§G16): whether trying again may help, and why. */
struct outcome {
	int result;
	enum gw_cloud_attach outcome;
	const char *text;
};

static const struct outcome bind_outcomes[] = {
	{ -801, GW_CLOUD_ATTACH_REFUSED, "parameter error" },
	{ -802, GW_CLOUD_ATTACH_REFUSED, "the sub-device does not exist" },
	{ -803, GW_CLOUD_ATTACH_BAD_CREDENTIAL,
	  "signature check failed: its PSK is not the platform's" },
	{ -804, GW_CLOUD_ATTACH_REFUSED, "sign method not supported" },
	{ BIND_EXPIRED, GW_CLOUD_ATTACH_FAILED,
	  "signature expired: the gateway's clock is not real UTC" },
	{ -806, GW_CLOUD_ATTACH_REFUSED, "bound to another gateway" },
	{ -807, GW_CLOUD_ATTACH_REFUSED,
	  "not allowed to bind (is its product associated with the gateway's?)" },
	{ -808, GW_CLOUD_ATTACH_REFUSED, "operation not permitted" },
};

static const struct outcome online_outcomes[] = {
	/* the platform has no binding: bind it again */
	{ ONLINE_NOT_BOUND, GW_CLOUD_ATTACH_READD, "the gateway is not bound to it" },
	{ ONLINE_SYSTEM_ERROR, GW_CLOUD_ATTACH_FAILED, "system error" },
};

static enum gw_cloud_attach result_outcome(enum gw_tencent_gw_type type, int result,
					   const char **text)
{
	bool bind = type == GW_TENCENT_GW_BIND;
	const struct outcome *o = bind ? bind_outcomes : online_outcomes;
	size_t n = bind ? N_ELEMENTS(bind_outcomes) : N_ELEMENTS(online_outcomes);

	for (size_t i = 0; i < n; i++)
		if (o[i].result == result) {
			*text = o[i].text;
			return o[i].outcome;
		}
	*text = "unknown result";
	return GW_CLOUD_ATTACH_FAILED;
}

/* The result of the bind or online sub-device d waited for. */
static void op_result(struct gw_cloud_dev *d, enum gw_tencent_gw_type type, int result)
{
	char why[GW_CREDSTORE_WHY_MAX];
	enum gw_cloud_attach outcome;
	const char *text;

	DEV(d)->gw_waiting = false;
	if (type == GW_TENCENT_GW_BIND && (result == 0 || result == BIND_ALREADY_BOUND)) {
		/* bound now, or before (the topology file was lost or older than the platform's) */
		gw_cloud_sub_set_attached(d, true);
		send_op(d, GW_TENCENT_GW_ONLINE);
		return;
	}
	if (type == GW_TENCENT_GW_ONLINE && result == 0) {
		gw_cloud_sub_attach_done(d, GW_CLOUD_ATTACH_OK, NULL);
		return;
	}
	outcome = result_outcome(type, result, &text);
	snprintf(why, sizeof(why), "%s answered with result %d: %s", op_name(type), result, text);
	gw_cloud_sub_attach_done(d, outcome, why);
}

/* The sub-device an entry names: one of ours, of the sub-device product. */
static struct gw_cloud_dev *entry_dev(struct gw_cloud *c, const struct gw_tencent_gw_device *e)
{
	return strcmp(e->product_id, SUB_PID(c)) == 0 ? gw_cloud_sub_find(c, e->device_name) : NULL;
}

static void results(struct gw_cloud *c, const struct gw_tencent_gw_msg *m)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct gw_tencent_gw_device *e = &m->devices[i];
		struct gw_cloud_dev *d = entry_dev(c, e);

		if (!d)
			continue;
		if (m->type == GW_TENCENT_GW_OFFLINE || m->type == GW_TENCENT_GW_UNBIND) {
			/* unanswered operations: a refusal is only worth a line */
			if (e->result)
				gw_cloud_log(c, LOG_NOTICE, "device %s: %s answered with result %d",
					     d->name, op_name(m->type), e->result);
			continue;
		}
		/* a result that came too late (after the attach timed out) is ignored */
		if (d->state != GW_CLOUD_DEV_ATTACHING || !DEV(d)->gw_waiting ||
		    DEV(d)->gw_op != m->type)
			continue;
		op_result(d, m->type, e->result);
	}
}

/* ---- what the platform pushes (§G18) ---- */

static void send_ack(struct gw_cloud *c, enum gw_tencent_gw_type type, int r, char *payload,
		     size_t len)
{
	char why[256];

	if (r >= 0)
		r = op_publish(c, type, payload, len, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "cannot build it: %s", strerror(-r));
	if (r < 0)
		gw_cloud_log(c, LOG_WARNING, "gateway %s: %s not sent: %s", c->gw->name,
			     op_name(type), why);
	free(payload);
}

/* Unbound by the platform: refused for good outside an attach, its binding forgotten; what the
 * session owed it ends with it. One still registering has no binding to lose: it binds once
 * registered. */
static void refuse(struct gw_cloud_dev *d, const char *why)
{
	if (d->state == GW_CLOUD_DEV_REGISTERING) {
		gw_cloud_sub_set_attached(d, false);
		return;
	}
	if (d->state != GW_CLOUD_DEV_IDLE)
		gw_tencent_uplink_session_end(d);
	gw_cloud_sub_refuse(d, why, true);
}

/* Bound in the console (change status 1): remembered as bound; one waiting for its next
 * attempt (an unbinding's retry among them: it left its credential alone) attaches now. */
static void rebound(struct gw_cloud_dev *d)
{
	gw_cloud_sub_set_attached(d, true);
	if (d->state == GW_CLOUD_DEV_IDLE)
		gw_cloud_dev_arm(d, 0);
}

static void change(struct gw_cloud *c, struct gw_tencent_gw_msg *m)
{
	char *payload = NULL;
	size_t len = 0;
	int r;

	/* every device taken note of: result 0, as the SDKs answer */
	for (size_t i = 0; i < m->n; i++)
		m->devices[i].result = 0;
	r = gw_tencent_build_change_ack(m->status, m->devices, m->n, &payload, &len);
	send_ack(c, GW_TENCENT_GW_CHANGE, r, payload, len);
	for (size_t i = 0; i < m->n; i++) {
		struct gw_cloud_dev *d = entry_dev(c, &m->devices[i]);

		if (!d)
			continue;
		if (m->status == 1) {
			gw_cloud_log(c, LOG_NOTICE, "device %s: bound to gateway %s in the console",
				     d->name, c->gw->name);
			rebound(d);
		} else {
			refuse(d, "unbound in the console (change)");
		}
	}
}

/*
 * The bindings the platform holds (describe_sub_devices, asked for at every gateway login):
 * what the topology file remembers follows them, so that a binding removed or made while the
 * gateway was away costs no refused online (-1) or redundant bind. A sub-device attaching now
 * keeps what its own results say.
 */
static void described(struct gw_cloud *c, const struct gw_tencent_gw_msg *m)
{
	size_t changed = 0;

	for (size_t i = 0; i < c->n_devs; i++) {
		struct gw_cloud_dev *d = c->devs[i];
		bool bound = false;

		for (size_t k = 0; k < m->n && !bound; k++)
			bound = strcmp(m->devices[k].product_id, SUB_PID(c)) == 0 &&
				strcmp(m->devices[k].device_name, d->name) == 0;
		if (d->state == GW_CLOUD_DEV_ATTACHING || gw_cloud_sub_attached_before(d) == bound)
			continue;
		gw_cloud_sub_set_attached(d, bound);
		changed++;
	}
	gw_cloud_log(c, changed ? LOG_NOTICE : LOG_DEBUG,
		     "gateway %s: the platform holds %zu binding(s); %zu remembered binding(s) "
		     "corrected",
		     c->gw->name, m->n, changed);
}

static void gateway_online(struct gw_cloud_dev *gw)
{
	char *payload = NULL;
	size_t len = 0;
	int r = gw_tencent_build_describe_sub_devices(&payload, &len);

	send_ack(gw->cloud, GW_TENCENT_GW_DESCRIBE_SUB_DEVICES, r, payload, len);
}

static void on_result(struct gw_cloud *c, const struct mosquitto_message *msg)
{
	char reason[GW_TENCENT_REASON_MAX] = "";
	char *payload = NULL;
	struct gw_tencent_gw_msg m;
	size_t len = 0;
	int r;

	r = gw_tencent_parse_gw_msg(GW_TENCENT_DOWN, msg->payload, (size_t)msg->payloadlen, &m,
				    reason);
	if (r < 0) {
		gw_cloud_log(c, r == -ENOENT ? LOG_DEBUG : LOG_NOTICE,
			     "gateway %s: ignored %s on %s: %s", c->gw->name,
			     r == -ENOENT ? "a message of a type it does not use" :
					    "a malformed message",
			     msg->topic, reason[0] ? reason : strerror(-r));
		return;
	}
	switch (m.type) {
	case GW_TENCENT_GW_BIND:
	case GW_TENCENT_GW_UNBIND:
	case GW_TENCENT_GW_ONLINE:
	case GW_TENCENT_GW_OFFLINE:
		results(c, &m);
		break;
	case GW_TENCENT_GW_CHANGE:
		change(c, &m);
		break;
	case GW_TENCENT_GW_SEARCH_DEVICES:
		/* the nodes are the configured buses': nothing to discover, acknowledged */
		gw_cloud_log(c, LOG_INFO,
			     "gateway %s: the platform asks it to %s searching for sub-devices; "
			     "its sub-devices are its nodes: acknowledged",
			     c->gw->name, m.status ? "start" : "stop");
		r = gw_tencent_build_search_devices_ack(m.status, 0, &payload, &len);
		send_ack(c, m.type, r, payload, len);
		break;
	case GW_TENCENT_GW_UNBIND_ALL:
		gw_cloud_log(c, LOG_WARNING, "gateway %s: every binding was removed (unbind_all)",
			     c->gw->name);
		r = gw_tencent_build_unbind_all_ack(0, &payload, &len);
		send_ack(c, m.type, r, payload, len);
		for (size_t i = 0; i < c->n_devs; i++)
			refuse(c->devs[i], "unbound in the console (unbind_all)");
		break;
	case GW_TENCENT_GW_DESCRIBE_SUB_DEVICES:
		described(c, &m);
		break;
	}
	gw_tencent_gw_msg_free(&m);
	gw_cloud_dev_update(c->gw);
}

static void message(struct gw_cloud_dev *gw, const struct mosquitto_message *msg)
{
	struct gw_cloud *c = gw->cloud;
	enum gw_tencent_gw_topic kind;
	const char *dn;
	struct gw_cloud_dev *d;

	if (gw_tencent_classify_gw_topic(msg->topic, GW_PID(c), gw->name, &kind) == 0) {
		if (kind == GW_TENCENT_GW_RESULT)
			on_result(c, msg);
		return;
	}
	/* a sub-device's own $thing/down/<kind>/<subPID>/<subDN> (§G18): the direct driver
	 * checks the rest of the topic */
	dn = strrchr(msg->topic, '/');
	d = dn ? gw_cloud_sub_find(c, dn + 1) : NULL;
	if (d && (d->state == GW_CLOUD_DEV_SUBSCRIBING || d->state == GW_CLOUD_DEV_ONLINE))
		gw_tencent_uplink_message(d, msg);
	else
		gw_cloud_log(c, LOG_DEBUG, "gateway %s: ignored a message on %s", gw->name,
			     msg->topic);
}

/* ---- the gateway's session ---- */

/* idle_logout_s: offline, its result not waited for (a refusal is logged) */
static void detach(struct gw_cloud_dev *d)
{
	struct gw_cloud *c = d->cloud;
	char *payload = NULL, why[256];
	size_t len = 0;
	int r;

	DEV(d)->gw_waiting = false;
	r = gw_tencent_build_gw_op(GW_TENCENT_GW_OFFLINE, SUB_PID(c), d->name, &payload, &len);
	if (r >= 0)
		r = op_publish(c, GW_TENCENT_GW_OFFLINE, payload, len, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "cannot build its offline: %s", strerror(-r));
	free(payload);
	if (r < 0)
		gw_cloud_log(c, LOG_NOTICE, "device %s: %s", d->name, why);
}

/* The gateway is a PSK device of the gateway product (the configuration's secret). */
static int login(struct gw_cloud_dev *gw, struct gw_cloud_login *l, char *why, size_t size)
{
	const char *psk = gw->cloud->cfg->cloud.gateway_secret;

	if (!psk) {
		snprintf(why, size, "no gateway secret (gateway_secret_file)");
		return -EINVAL;
	}
	return gw_tencent_uplink_login(gw, GW_PID(gw->cloud), psk, l, why, size);
}

/* §G15: the results and the platform's messages, on one topic */
static int gw_filter(struct gw_cloud_dev *gw, size_t i, char *buf, size_t size)
{
	return gw_tencent_build_gw_topic(GW_TENCENT_GW_RESULT, GW_PID(gw->cloud), gw->name, buf,
					 size);
}
static const char *const gw_what[] = { "operation results and binding changes" };

static const char *product(const struct gw_config_uplink *cfg)
{
	return cfg->tencent.gateway_product_id;
}

static const char *sub_product(const struct gw_config_uplink *cfg)
{
	return cfg->tencent.product_id;
}

const struct gw_cloud_gateway_ops gw_tencent_gateway_ops = {
	/* one device per operation, as every SDK sends (§G16) */
	.attach_max = 1,
	/* an attach is a bind (the first time), an online, then the sub-device's three
	 * SUBSCRIBEs (§G18): at most five packets every 300 ms, 17 a second, well within the
	 * gateway's 30 messages a second (docs/protocols/tencent.md §1.7), which count its
	 * operations */
	.attach_gap_ms = 300,
	/* the C SDK waits 20 s for a result (§G15); longer than a registration's HTTPS timeout,
	 * which the core also bounds with it */
	.attach_timeout_ms = 20000,
	.product = product,
	.sub_product = sub_product,
	.login = login,
	/* [EXPC] subscribes to the result topic at QoS 1 (§G15) */
	.subs = { .n = N_ELEMENTS(gw_what),
		  .what = gw_what,
		  .qos = 1,
		  .filter = gw_filter,
		  .failed = "cannot subscribe to the gateway's operation results" },
	/* .sub_subs: the direct device's, one SUBSCRIBE each */
	.message = message,
	.attach = attach,
	.online = gateway_online,
	.detach = detach,
};
