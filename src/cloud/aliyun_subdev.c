/* SPDX-License-Identifier: MIT */
/*
 * The Aliyun gateway topology (topology = gateway): the gateway's own session, and the nodes as
 * its sub-devices over it (docs/protocols/gateway.md §G2-§G14). The core (gw/cloud.h, struct
 * gw_cloud_gateway_ops) decides when a sub-device attaches; this file says how: thing/topo/add
 * for the ones not added yet (chunks of GW_ALIYUN_TOPO_ADD_MAX, §G4), then combine/batch_login
 * (chunks of GW_ALIYUN_BATCH_LOGIN_MAX, §G8) or, for a sub-device whose batch failed, its own
 * combine/login (§G7); the replies' codes as gw_aliyun_classify_gw_code() reads them (§G20);
 * /ext/error, topo/change and thing/disable|enable|delete (§G6, §G10, §G12); registration
 * through the gateway (§G13). The sub-devices' data, commands and answers are the direct
 * driver's (aliyun_uplink.c) on their own /sys topics (§G11).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aliyun_uplink-private.h"
#include "gw/aliyun_gateway.h"
#include "gw/aliyun_register.h"
#include "gw/credstore.h"
#include "gw/log.h"

#define GW_PK(c) ((c)->cfg->aliyun.gateway_product_key)
#define SUB_PK(c) ((c)->cfg->aliyun.product_key)

/* A request on the gateway's session and the sub-devices it is for. */
struct gw_aliyun_gwreq {
	struct gw_aliyun_gwreq *next;
	struct uplink *u;
	uint32_t id;
	enum gw_aliyun_gw_topic kind;
	size_t n;
	char names[GW_ALIYUN_BATCH_LOGIN_MAX][GW_CREDSTORE_NAME_MAX + 1];
};

static void req_unlink(struct gw_aliyun_gwreq *r)
{
	for (struct gw_aliyun_gwreq **p = &r->u->reqs; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			return;
		}
}

/* Publishes payload on the gateway's topic of kind (QoS 0, as the SDKs send them, §G2) and
 * remembers the request under id; NULL when it did not go out (why). */
static struct gw_aliyun_gwreq *req_send(struct gw_cloud *c, enum gw_aliyun_gw_topic kind,
					uint32_t id, char *payload, size_t len,
					struct gw_cloud_dev *const *subs, size_t n, char *why,
					size_t why_size)
{
	struct uplink *u = c->priv;
	char topic[GW_ALIYUN_TOPIC_MAX];
	struct gw_aliyun_gwreq *r;
	int rc;

	if (gw_aliyun_build_gw_topic(kind, GW_PK(c), c->gw->name, topic, sizeof(topic)) < 0) {
		snprintf(why, why_size, "no %s topic for the gateway",
			 gw_aliyun_name_gw_topic(kind));
		return NULL;
	}
	rc = mosquitto_publish(c->gw->mosq, NULL, topic, (int)len, payload, 0, false);
	if (rc != MOSQ_ERR_SUCCESS) {
		snprintf(why, why_size, "%s not sent: %s", gw_aliyun_name_gw_topic(kind),
			 mosquitto_strerror(rc));
		return NULL;
	}
	r = gw_new0(struct gw_aliyun_gwreq, 1);
	r->u = u;
	r->id = id;
	r->kind = kind;
	for (size_t i = 0; i < n; i++)
		snprintf(r->names[r->n++], sizeof(r->names[0]), "%s", subs[i]->name);
	r->next = u->reqs;
	u->reqs = r;
	return r;
}

static uint32_t next_id(struct gw_cloud *c)
{
	struct uplink *u = c->priv;

	/* Alink ids are 1..4294967295 as strings of digits (§G2) */
	if (++u->next_id == 0)
		u->next_id = 1;
	return u->next_id;
}

/* The sub-devices' signed fields (§G3): the secrets are borrowed from their devices. */
static void fill(struct gw_cloud *c, struct gw_cloud_dev *const *subs, size_t n,
		 struct gw_aliyun_subdev *out)
{
	uint64_t now = (uint64_t)gw_now_wall_ms();

	for (size_t i = 0; i < n; i++)
		out[i] = (struct gw_aliyun_subdev){ SUB_PK(c), subs[i]->name, DEV(subs[i])->secret,
						    NULL, now };
}

static void fail_all(struct gw_cloud_dev *const *subs, size_t n, enum gw_cloud_attach result,
		     const char *why)
{
	for (size_t i = 0; i < n; i++)
		gw_cloud_sub_attach_done(subs[i], result, why);
}

_Static_assert(GW_ALIYUN_TOPO_ADD_MAX <= GW_ALIYUN_BATCH_LOGIN_MAX, "send_signed()'s array");

/* A signed request for n sub-devices (§G3): thing/topo/add (§G4), combine/batch_login for
 * n > 1 (all or nothing, §G8) or combine/login for one (§G7). */
static void send_signed(struct gw_cloud *c, enum gw_aliyun_gw_topic kind,
			struct gw_cloud_dev *const *subs, size_t n)
{
	enum gw_aliyun_sign_method m = gw_aliyun_config_sign_method(c->cfg);
	struct gw_aliyun_subdev s[GW_ALIYUN_BATCH_LOGIN_MAX];
	char reason[GW_ALIYUN_REASON_MAX] = "", why[256];
	uint32_t id = next_id(c);
	char *payload = NULL;
	size_t len = 0;
	int r;

	fill(c, subs, n, s);
	/* cleanSession false: what the cloud queued at QoS 1 while it was away still comes */
	if (kind == GW_ALIYUN_GW_TOPO_ADD)
		r = gw_aliyun_build_topo_add(id, m, true, s, n, &payload, &len, reason);
	else if (kind == GW_ALIYUN_GW_BATCH_LOGIN)
		r = gw_aliyun_build_batch_login(id, m, true, s, n, false, &payload, &len, reason);
	else
		r = gw_aliyun_build_login(id, m, true, s, false, &payload, &len, reason);
	explicit_bzero(s, sizeof(s));
	if (r < 0) {
		snprintf(why, sizeof(why), "cannot build %s: %s", gw_aliyun_name_gw_topic(kind),
			 reason[0] ? reason : strerror(-r));
		fail_all(subs, n, GW_CLOUD_ATTACH_REFUSED, why);
		return;
	}
	if (!req_send(c, kind, id, payload, len, subs, n, why, sizeof(why)))
		fail_all(subs, n, GW_CLOUD_ATTACH_FAILED, why);
	gw_secret_free(payload);
}

static void send_login(struct gw_cloud *c, struct gw_cloud_dev *const *subs, size_t n)
{
	send_signed(c, n > 1 ? GW_ALIYUN_GW_BATCH_LOGIN : GW_ALIYUN_GW_LOGIN, subs, n);
}

static void send_topo_add(struct gw_cloud *c, struct gw_cloud_dev *const *subs, size_t n)
{
	send_signed(c, GW_ALIYUN_GW_TOPO_ADD, subs, n);
}

/* The core's batch: topology first for those without, then the logins (§G1's order). */
static int attach(struct gw_cloud *c, struct gw_cloud_dev *const *subs, size_t n)
{
	struct gw_cloud_dev *add[GW_ALIYUN_TOPO_ADD_MAX], *batch[GW_ALIYUN_BATCH_LOGIN_MAX];
	size_t n_add = 0, n_batch = 0;

	for (size_t i = 0; i < n; i++) {
		struct gw_cloud_dev *d = subs[i];

		if (!gw_cloud_sub_attached_before(d) && DEV(d)->solo) {
			send_topo_add(c, &subs[i], 1);
		} else if (!gw_cloud_sub_attached_before(d)) {
			add[n_add++] = d;
			if (n_add == GW_ALIYUN_TOPO_ADD_MAX) {
				send_topo_add(c, add, n_add);
				n_add = 0;
			}
		} else if (DEV(d)->solo) {
			send_login(c, &subs[i], 1);
		} else {
			batch[n_batch++] = d;
		}
	}
	if (n_add)
		send_topo_add(c, add, n_add);
	if (n_batch)
		send_login(c, batch, n_batch);
	return 0;
}

/* ---- replies ---- */

/* What an error code means for a sub-device (§G20), and why for the log. */
static void code_outcome(struct gw_cloud_dev *d, const char *what, int code, const char *message,
			 bool attaching)
{
	char why[GW_CREDSTORE_WHY_MAX];
	enum gw_aliyun_gw_action a = gw_aliyun_classify_gw_code(code);

	/* topo/add says 401 for a sign that does not match (§G4): the DeviceSecret, as 6287 */
	if (code == 401 && strcmp(what, "thing/topo/add") == 0)
		a = GW_ALIYUN_GW_ACT_BAD_SECRET;

	snprintf(why, sizeof(why), "%s: code %d (%s)%s%s", what, code, gw_aliyun_name_gw_action(a),
		 message[0] ? ": " : "", message);
	switch (a) {
	case GW_ALIYUN_GW_ACT_OK:
		if (attaching)
			gw_cloud_sub_attach_done(d, GW_CLOUD_ATTACH_OK, NULL);
		return;
	case GW_ALIYUN_GW_ACT_READD:
		if (attaching)
			gw_cloud_sub_attach_done(d, GW_CLOUD_ATTACH_READD, why);
		else {
			gw_cloud_sub_set_attached(d, false);
			gw_cloud_sub_logged_out(d, why);
		}
		return;
	case GW_ALIYUN_GW_ACT_DISABLED:
		gw_cloud_sub_attach_done(d, GW_CLOUD_ATTACH_FAILED, why);
		gw_cloud_sub_disable(d, why);
		return;
	case GW_ALIYUN_GW_ACT_BAD_SECRET:
		if (attaching)
			gw_cloud_sub_attach_done(d, GW_CLOUD_ATTACH_BAD_CREDENTIAL, why);
		else
			gw_cloud_sub_refuse_credential(d, why);
		return;
	case GW_ALIYUN_GW_ACT_GONE:
	case GW_ALIYUN_GW_ACT_REFUSED:
		if (attaching)
			gw_cloud_sub_attach_done(d, GW_CLOUD_ATTACH_REFUSED, why);
		else
			gw_cloud_sub_refuse(d, why, a == GW_ALIYUN_GW_ACT_GONE);
		return;
	case GW_ALIYUN_GW_ACT_RELOGIN:
	case GW_ALIYUN_GW_ACT_BACKOFF:
	case GW_ALIYUN_GW_ACT_TAKEN_OVER:
	case GW_ALIYUN_GW_ACT_RETRY:
		break;
	}
	if (attaching)
		gw_cloud_sub_attach_done(d, GW_CLOUD_ATTACH_FAILED, why);
	else
		gw_cloud_sub_logged_out(d, why);
}

/* The sub-device the reply's entry i names, or the request's i-th. */
static struct gw_cloud_dev *req_dev(struct gw_cloud *c, const struct gw_aliyun_gwreq *r, size_t i)
{
	return i < r->n ? gw_cloud_sub_find(c, r->names[i]) : NULL;
}

static bool in_reply(const struct gw_aliyun_gw_msg *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->devices[i].device_name, name) == 0)
			return true;
	return false;
}

static void topo_add_reply(struct gw_cloud *c, struct gw_aliyun_gwreq *r,
			   const struct gw_aliyun_gw_msg *m)
{
	struct gw_cloud_dev *ok[GW_ALIYUN_TOPO_ADD_MAX];
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++) {
		struct gw_cloud_dev *d = req_dev(c, r, i);

		if (!d || d->state != GW_CLOUD_DEV_ATTACHING)
			continue;
		if (m->code != GW_ALIYUN_CODE_OK && r->n > 1 && !(m->n && in_reply(m, d->name))) {
			/* one refusal for the request: each is added alone next, so that one
			 * sub-device's refusal does not hold back the others */
			DEV(d)->solo = true;
			code_outcome(d, "thing/topo/add", 500, m->message, true);
			continue;
		}
		if (m->code != GW_ALIYUN_CODE_OK) {
			code_outcome(d, "thing/topo/add", m->code, m->message, true);
			continue;
		}
		gw_cloud_sub_set_attached(d, true);
		ok[n++] = d;
	}
	for (size_t i = 0; i < n; i += GW_ALIYUN_BATCH_LOGIN_MAX)
		send_login(c, &ok[i],
			   n - i < GW_ALIYUN_BATCH_LOGIN_MAX ? n - i : GW_ALIYUN_BATCH_LOGIN_MAX);
}

static void login_reply(struct gw_cloud *c, struct gw_aliyun_gwreq *r,
			const struct gw_aliyun_gw_msg *m)
{
	const char *what = r->kind == GW_ALIYUN_GW_BATCH_LOGIN ? "combine/batch_login" :
								 "combine/login";

	for (size_t i = 0; i < r->n; i++) {
		struct gw_cloud_dev *d = req_dev(c, r, i);

		if (!d || d->state != GW_CLOUD_DEV_ATTACHING)
			continue;
		if (m->code != GW_ALIYUN_CODE_OK && r->n > 1 && !(m->n && in_reply(m, d->name))) {
			/* all or nothing (§G8): each logs in alone next, so that one sub-device's
			 * refusal does not hold back the others */
			DEV(d)->solo = true;
			code_outcome(d, what, 500, m->message, true);
			continue;
		}
		code_outcome(d, what, m->code, m->message, true);
	}
}

/* sub/register or product_register answered (§G13): the DeviceSecret stored, then used. */
static void register_reply(struct gw_cloud *c, struct gw_aliyun_gwreq *r,
			   const struct gw_aliyun_gw_msg *m)
{
	struct gw_cloud_dev *d = req_dev(c, r, 0);
	char why[GW_CREDSTORE_REASON_MAX];
	struct gw_cloud_reg_outcome o = { .via = "the gateway's session", .why = why };
	const struct gw_aliyun_gw_device *e = NULL;
	struct gw_cred cred = { 0 };
	int rc;

	if (!d || d->reg != r)
		return;
	d->reg = NULL;
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->devices[i].device_name, d->name) == 0 &&
		    m->devices[i].device_secret[0])
			e = &m->devices[i];
	if (m->code != GW_ALIYUN_CODE_OK || !e) {
		o.result = m->code == GW_ALIYUN_CODE_OK || m->code >= 500 ? GW_CLOUD_REG_FAILED :
									    GW_CLOUD_REG_REFUSED;
		snprintf(why, sizeof(why), "%s: code %d%s%s", gw_aliyun_name_gw_topic(r->kind),
			 m->code, m->message[0] ? ": " : "",
			 m->code == GW_ALIYUN_CODE_OK ? "no DeviceSecret for it" : m->message);
		gw_cloud_dev_registered(d, &o);
		return;
	}
	cred.cloud = GW_CRED_CLOUD_ALIYUN;
	cred.kind = GW_CRED_DEVICE_SECRET;
	cred.product = gw_strdup(SUB_PK(c));
	cred.device = gw_strdup(d->name);
	cred.secret = gw_strdup(e->device_secret);
	rc = gw_credstore_save(c->store, &cred, why, sizeof(why));
	if (rc < 0) {
		/* issued once (§G13): not storing it would lose it; the next attempt is refused
		 * and says so */
		o.result = GW_CLOUD_REG_FAILED;
		if (!why[0])
			snprintf(why, sizeof(why), "cannot store the DeviceSecret: %s",
				 strerror(-rc));
	} else {
		o.result = GW_CLOUD_REG_STORED;
		o.cred = &cred;
		why[0] = '\0';
	}
	gw_cloud_dev_registered(d, &o);
	gw_credstore_wipe(&cred);
}

/* ---- what the platform pushes ---- */

/* The {"id","code":200,"data":{}} answer on topic + "_reply" (§G5, §G6, §G12). */
static void answer_ok(struct gw_cloud *c, const char *topic, const char *id)
{
	char reply[GW_ALIYUN_TOPIC_MAX];
	char *payload = NULL;
	size_t len = 0;

	if (!id[0] || gw_bprintf(reply, sizeof(reply), "%s_reply", topic) < 0 ||
	    gw_aliyun_build_reply(id, GW_ALIYUN_CODE_OK, NULL, &payload, &len) < 0)
		return;
	(void)mosquitto_publish(c->gw->mosq, NULL, reply, (int)len, payload, 0, false);
	free(payload);
}

static void topo_change(struct gw_cloud *c, const struct gw_aliyun_gw_msg *m)
{
	for (size_t i = 0; i < m->n; i++) {
		struct gw_cloud_dev *d = gw_cloud_sub_find(c, m->devices[i].device_name);

		if (!d || strcmp(m->devices[i].product_key, SUB_PK(c)) != 0)
			continue;
		switch (m->status) {
		case GW_ALIYUN_TOPO_ADDED:
			gw_cloud_sub_set_attached(d, true);
			break;
		case GW_ALIYUN_TOPO_DELETED:
			/* removed in the console: not added back at once against its will */
			gw_cloud_sub_refuse(d,
					    "its topology was deleted in the console "
					    "(thing/topo/change)",
					    true);
			break;
		case GW_ALIYUN_TOPO_ENABLED:
			gw_cloud_sub_enable(d);
			break;
		case GW_ALIYUN_TOPO_DISABLED:
			gw_cloud_sub_disable(d, "disabled in the console (thing/topo/change)");
			break;
		}
	}
}

static void on_gw_msg(struct gw_cloud *c, const struct mosquitto_message *msg,
		      enum gw_aliyun_gw_topic kind, const char *pk, const char *dn)
{
	struct uplink *u = c->priv;
	char reason[GW_ALIYUN_REASON_MAX] = "";
	struct gw_aliyun_gw_msg m;
	struct gw_aliyun_gwreq *r;
	struct gw_cloud_dev *d;
	int rc;

	rc = gw_aliyun_parse_gw_msg(kind, msg->payload, (size_t)msg->payloadlen, &m, reason);
	if (rc < 0) {
		gw_cloud_log(c, LOG_NOTICE, "gateway %s: ignored a malformed %s: %s", c->gw->name,
			     gw_aliyun_name_gw_topic(kind), reason[0] ? reason : strerror(-rc));
		return;
	}
	if (kind == GW_ALIYUN_GW_TOPO_ADD_REPLY || kind == GW_ALIYUN_GW_LOGIN_REPLY ||
	    kind == GW_ALIYUN_GW_BATCH_LOGIN_REPLY || kind == GW_ALIYUN_GW_SUB_REGISTER_REPLY ||
	    kind == GW_ALIYUN_GW_PRODUCT_REGISTER_REPLY) {
		for (r = u->reqs; r && r->id != m.id_num; r = r->next)
			;
		if (r) {
			req_unlink(r);
			if (kind == GW_ALIYUN_GW_TOPO_ADD_REPLY)
				topo_add_reply(c, r, &m);
			else if (kind == GW_ALIYUN_GW_SUB_REGISTER_REPLY ||
				 kind == GW_ALIYUN_GW_PRODUCT_REGISTER_REPLY)
				register_reply(c, r, &m);
			else
				login_reply(c, r, &m);
			free(r);
		}
	} else if (kind == GW_ALIYUN_GW_ERROR || kind == GW_ALIYUN_GW_LOGOUT_REPLY) {
		/* §G10: pushed about one sub-device; a logout of ours answered 200 is nothing */
		d = m.n && strcmp(m.devices[0].product_key, SUB_PK(c)) == 0 ?
			    gw_cloud_sub_find(c, m.devices[0].device_name) :
			    NULL;
		if (d && m.code != GW_ALIYUN_CODE_OK) {
			/* what it published meanwhile was acknowledged and dropped */
			if (kind == GW_ALIYUN_GW_ERROR && d->state == GW_CLOUD_DEV_ONLINE)
				c->n.rejected++;
			code_outcome(d,
				     kind == GW_ALIYUN_GW_ERROR ? "/ext/error" :
								  "combine/logout_reply",
				     m.code, m.message, d->state == GW_CLOUD_DEV_ATTACHING);
		}
	} else if (kind == GW_ALIYUN_GW_TOPO_CHANGE) {
		answer_ok(c, msg->topic, m.id);
		topo_change(c, &m);
	} else if (kind == GW_ALIYUN_GW_TOPO_ADD_NOTIFY) {
		/* the console asks for topology the gateway adds itself when a node speaks */
		answer_ok(c, msg->topic, m.id);
	} else if (kind == GW_ALIYUN_GW_DISABLE || kind == GW_ALIYUN_GW_ENABLE ||
		   kind == GW_ALIYUN_GW_DELETE) {
		d = strcmp(pk, SUB_PK(c)) == 0 ? gw_cloud_sub_find(c, dn) : NULL;
		if (d) {
			answer_ok(c, msg->topic, m.id);
			if (kind == GW_ALIYUN_GW_DISABLE)
				gw_cloud_sub_disable(d, "disabled in the console (thing/disable)");
			else if (kind == GW_ALIYUN_GW_ENABLE)
				gw_cloud_sub_enable(d);
			else
				gw_cloud_sub_refuse(d, "deleted in the console (thing/delete)",
						    true);
		}
	}
	gw_aliyun_gw_msg_free(&m);
	gw_cloud_dev_update(c->gw);
}

static void message(struct gw_cloud_dev *gw, const struct mosquitto_message *msg)
{
	struct gw_cloud *c = gw->cloud;
	char pk[GW_ALIYUN_ID_MAX], dn[GW_ALIYUN_ID_MAX];
	enum gw_aliyun_gw_topic kind;
	const char *t = msg->topic;
	struct gw_cloud_dev *d;

	if (gw_aliyun_classify_gw_topic(t, &kind, pk, dn) == 0) {
		bool sub_kind = kind == GW_ALIYUN_GW_DISABLE || kind == GW_ALIYUN_GW_ENABLE ||
				kind == GW_ALIYUN_GW_DELETE;

		if (sub_kind || (strcmp(pk, GW_PK(c)) == 0 && strcmp(dn, gw->name) == 0))
			on_gw_msg(c, msg, kind, pk, dn);
		return;
	}
	/* a sub-device's own topic (§G11), RRPC's /ext/rrpc/<id>/sys/... too */
	if (strncmp(t, "/ext/rrpc/", strlen("/ext/rrpc/")) == 0)
		t = strstr(t, "/sys/");
	if (!t || gw_aliyun_topic_device(t, pk, dn) < 0 || strcmp(pk, SUB_PK(c)) != 0)
		return;
	d = gw_cloud_sub_find(c, dn);
	if (d && d->state == GW_CLOUD_DEV_ONLINE)
		gw_aliyun_uplink_message(d, msg);
}

/* ---- registration through the gateway (§G13) ---- */

int gw_aliyun_subdev_register_start(struct gw_cloud_dev *d, const char **via)
{
	struct gw_cloud *c = d->cloud;
	bool proxied = c->cfg->cloud.auth == GW_CLOUD_AUTH_REGNWL;
	enum gw_aliyun_gw_topic kind = proxied ? GW_ALIYUN_GW_PRODUCT_REGISTER :
						 GW_ALIYUN_GW_SUB_REGISTER;
	char reason[GW_ALIYUN_REASON_MAX] = "", why[256];
	uint32_t id = next_id(c);
	char *payload = NULL;
	size_t len = 0;
	int r;

	*via = "the gateway's session";
	if (!c->gw->mosq)
		return -ENOTCONN;
	if (proxied) {
		char random[21];
		struct gw_aliyun_proxied p = { SUB_PK(c), d->name, c->cfg->cloud.product_secret,
					       random };

		r = gw_aliyun_make_random(random, sizeof(random));
		if (r >= 0)
			r = gw_aliyun_build_product_register(id,
							     gw_aliyun_config_sign_method(c->cfg),
							     true, &p, 1, &payload, &len, reason);
	} else {
		struct gw_aliyun_subdev s = { SUB_PK(c), d->name, NULL, NULL, 0 };

		r = gw_aliyun_build_sub_register(id, &s, 1, &payload, &len, reason);
	}
	if (r < 0)
		return r;
	d->reg = req_send(c, kind, id, payload, len, &d, 1, why, sizeof(why));
	free(payload);
	if (!d->reg)
		return -EIO;
	gw_cloud_dev_update(c->gw);
	return 0;
}

void gw_aliyun_subdev_register_cancel(struct gw_cloud_dev *d, void *reg)
{
	struct gw_aliyun_gwreq *r = reg;

	req_unlink(r);
	free(r);
}

void gw_aliyun_subdev_session_end(struct gw_cloud_dev *gw)
{
	struct uplink *u = gw->cloud->priv;

	/* the registrations among them are cancelled by the core with their sub-devices */
	while (u->reqs) {
		struct gw_aliyun_gwreq *r = u->reqs;
		struct gw_cloud_dev *d = r->n ? gw_cloud_sub_find(gw->cloud, r->names[0]) : NULL;

		if (d && d->reg == r)
			d->reg = NULL;
		u->reqs = r->next;
		free(r);
	}
}

/* ---- the gateway's session ---- */

static int login(struct gw_cloud_dev *gw, struct gw_cloud_login *l, char *why, size_t size)
{
	return gw_aliyun_uplink_login(gw, GW_PK(gw->cloud), gw->cloud->cfg->cloud.gateway_secret, l,
				      why, size);
}

/* The gateway's replies and pushes (§G4-§G10, §G13). */
static const enum gw_aliyun_gw_topic gw_subs[] = {
	GW_ALIYUN_GW_TOPO_ADD_REPLY,         GW_ALIYUN_GW_TOPO_CHANGE,
	GW_ALIYUN_GW_TOPO_ADD_NOTIFY,        GW_ALIYUN_GW_SUB_REGISTER_REPLY,
	GW_ALIYUN_GW_PRODUCT_REGISTER_REPLY, GW_ALIYUN_GW_LOGIN_REPLY,
	GW_ALIYUN_GW_BATCH_LOGIN_REPLY,      GW_ALIYUN_GW_LOGOUT_REPLY,
};

static int gw_filter(struct gw_cloud_dev *gw, size_t i, char *buf, size_t size)
{
	enum gw_aliyun_gw_topic kind = i < N_ELEMENTS(gw_subs) ? gw_subs[i] : GW_ALIYUN_GW_ERROR;

	return gw_aliyun_build_gw_topic(kind, GW_PK(gw->cloud), gw->name, buf, size);
}
static const char *const gw_what[] = {
	"topology add replies",         "topology changes",
	"topology add requests",        "registration replies",
	"proxied registration replies", "login replies",
	"batch login replies",          "logout replies",
	"errors (/ext/error)",
};
_Static_assert(N_ELEMENTS(gw_subs) + 1 == N_ELEMENTS(gw_what), "one text each, and /ext/error");
_Static_assert(N_ELEMENTS(gw_what) <= GW_CLOUD_SUBS_MAX, "the core's subscriptions");

/* A sub-device's: the direct device's, and the console's disable, enable and delete (§G12). */
static const enum gw_aliyun_gw_topic lifecycle[] = { GW_ALIYUN_GW_DISABLE, GW_ALIYUN_GW_ENABLE,
						     GW_ALIYUN_GW_DELETE };
static const char *const sub_what[] = {
	"post replies; rejected posts will not be noticed",
	"property sets",
	"service calls",
	"RRPC requests",
	"disable requests",
	"enable requests",
	"delete requests",
};

static int sub_filter(struct gw_cloud_dev *d, size_t i, char *buf, size_t size)
{
	if (i < GW_ALIYUN_UPLINK_SUBS)
		return gw_aliyun_uplink_sub_filter(d, i, buf, size);
	return gw_aliyun_build_gw_topic(lifecycle[i - GW_ALIYUN_UPLINK_SUBS], SUB_PK(d->cloud),
					d->name, buf, size);
}

static void detach(struct gw_cloud_dev *d)
{
	struct gw_cloud *c = d->cloud;
	struct gw_aliyun_subdev s = { SUB_PK(c), d->name, NULL, NULL, 0 };
	char reason[GW_ALIYUN_REASON_MAX], why[256];
	char *payload = NULL;
	uint32_t id = next_id(c);
	size_t len = 0;
	struct gw_aliyun_gwreq *r;

	if (gw_aliyun_build_logout(id, &s, &payload, &len, reason) < 0)
		return;
	/* its reply is nothing to wait for (a refusal comes as a forced logout_reply) */
	r = req_send(c, GW_ALIYUN_GW_LOGOUT, id, payload, len, &d, 1, why, sizeof(why));
	if (r) {
		req_unlink(r);
		free(r);
	} else
		gw_cloud_log(c, LOG_NOTICE, "device %s: %s", d->name, why);
	free(payload);
}

static const char *product(const struct gw_config_uplink *cfg)
{
	return cfg->aliyun.gateway_product_key;
}

static const char *sub_product(const struct gw_config_uplink *cfg)
{
	return cfg->aliyun.product_key;
}

const struct gw_cloud_gateway_ops gw_aliyun_gateway_ops = {
	/* topo/add takes 30 (§G14): a batch of that many needs one request of each kind */
	.attach_max = GW_ALIYUN_TOPO_ADD_MAX,
	.attach_gap_ms = 200,
	.attach_timeout_ms = 10000,
	.product = product,
	.sub_product = sub_product,
	.login = login,
	.subs = { .n = N_ELEMENTS(gw_what),
		  .what = gw_what,
		  .together = true,
		  .qos = 0,
		  .filter = gw_filter,
		  .failed = "cannot subscribe to the gateway's topology and session topics" },
	.sub_subs = { .n = N_ELEMENTS(sub_what),
		      .what = sub_what,
		      .together = true,
		      .qos = 0,
		      .filter = sub_filter,
		      .failed = "cannot subscribe to the sub-device's topics" },
	.message = message,
	.attach = attach,
	.detach = detach,
};
