/* SPDX-License-Identifier: MIT */
/*
 * Tencent Cloud IoT Explorer uplink: a driver of the cloud core (gw/cloud.h), which runs one
 * libmosquitto session per node device fed from one spool reader. This file says what Tencent
 * says differently: the data-template topics and messages, the PSK, certificate or TLS-PSK
 * login, get_status and report_info on each new session, controls and actions, registration.
 * With topology = gateway the same code serves the sub-devices on the gateway's session; the
 * gateway's own part is tencent_subdev.c. See include/gw/tencent_uplink.h.
 */

#include <errno.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

#include "gw/cloud.h"
#include "gw/cloudmodel.h"
#include "gw/credstore.h"
#include "gw/http.h"
#include "gw/log.h"
#include "gw/payload.h"
#include "gw/tencent.h"
#include "gw/tencent_register.h"
#include "gw/tencent_uplink.h"
#include "gw/util.h"
#include "tencent_uplink-private.h"

static void on_command(struct gw_cloud_dev *d, enum gw_tencent_method m,
		       const struct mosquitto_message *msg);

/* ---- session messages ---- */

/* A token for a message that is not a record: "<ProductId>-gw<n>", apart from the records'
 * "<ProductId>-<seq>". */
static int session_token(struct gw_cloud_dev *d, char *buf, size_t size)
{
	return gw_bprintf(buf, size, "%s-gw%" PRIu64, d->cloud->cfg->tencent.product_id,
			  ++DEV(d)->token_seq);
}

/* Publishes a session message (QoS 0, as the SDKs send replies); payload is freed. It takes
 * a token of the device's rate but is sent even without one: these are few, and a reply the
 * platform waits for must not be held back behind records. */
static void publish_session(struct gw_cloud_dev *d, enum gw_tencent_topic kind, char *payload,
			    size_t len, const char *what)
{
	char topic[GW_TENCENT_TOPIC_MAX];
	int r;

	(void)gw_rate_take(&DEV(d)->rate, gw_now_mono_us());
	if (!d->mosq || gw_cloud_dev_lost(d) ||
	    (d->state != GW_CLOUD_DEV_ONLINE && d->state != GW_CLOUD_DEV_SUBSCRIBING)) {
		ulog(d, LOG_WARNING, "device %s: the session ended before the %s could be sent",
		     d->name, what);
		free(payload);
		return;
	}
	r = gw_tencent_build_topic(GW_TENCENT_UP, kind, d->cloud->cfg->tencent.product_id, d->name,
				   topic, sizeof(topic));
	if (r >= 0)
		r = mosquitto_publish(d->mosq, NULL, topic, (int)len, payload, 0, false);
	else
		r = MOSQ_ERR_INVAL;
	free(payload);
	if (r != MOSQ_ERR_SUCCESS)
		ulog(d, LOG_WARNING, "device %s: the %s was not sent: %s", d->name, what,
		     mosquitto_strerror(r));
	gw_cloud_dev_update(d);
}

/* docs/protocols/tencent.md §3.1: controls issued while the device was offline come back in
 * get_status_reply. */
static void send_get_status(struct gw_cloud_dev *d)
{
	struct dev *p = DEV(d);
	char *payload = NULL;
	size_t len = 0;
	int r;

	r = session_token(d, p->status_token, sizeof(p->status_token));
	if (r >= 0)
		r = gw_tencent_build_get_status(p->status_token, &payload, &len);
	if (r < 0) {
		ulog(d, LOG_ERR, "device %s: cannot build get_status: %s", d->name, strerror(-r));
		p->status_token[0] = '\0';
		return;
	}
	publish_session(d, GW_TENCENT_TOPIC_PROPERTY, payload, len, "get_status");
}

/* report_info with the node's firmware version, once a session and the version are there. */
static void send_info(struct gw_cloud_dev *d)
{
	struct dev *p = DEV(d);
	char token[GW_TENCENT_TOKEN_MAX];
	char *payload = NULL;
	size_t len = 0;
	int r;

	if (d->state != GW_CLOUD_DEV_ONLINE || p->info_sent || !p->fw[0])
		return;
	p->info_sent = true;
	r = session_token(d, token, sizeof(token));
	if (r >= 0)
		r = gw_tencent_build_report_info(token, p->fw, NULL, &payload, &len);
	if (r < 0) {
		ulog(d, LOG_WARNING, "device %s: no report_info for firmware '%s': %s", d->name,
		     p->fw, strerror(-r));
		return;
	}
	ulog(d, LOG_INFO, "device %s: reporting firmware %s", d->name, p->fw);
	publish_session(d, GW_TENCENT_TOPIC_PROPERTY, payload, len, "report_info");
}

/* All three SUBACKs came: get_status, and report_info when the firmware is known. */
static void online(struct gw_cloud_dev *d)
{
	send_get_status(d);
	send_info(d);
}

void gw_tencent_uplink_session_end(struct gw_cloud_dev *d)
{
	DEV(d)->info_sent = false;
	DEV(d)->status_token[0] = '\0';
	DEV(d)->gw_waiting = false;
}

/* The downlink topics, one SUBSCRIBE each (docs/protocols/tencent.md §1.7), and what each
 * brings, for the log when the platform refuses one. */
static const enum gw_tencent_topic subs[] = { GW_TENCENT_TOPIC_PROPERTY, GW_TENCENT_TOPIC_EVENT,
					      GW_TENCENT_TOPIC_ACTION };
static const char *const sub_what[] = { "report replies and controls", "event replies",
					"actions" };

static int sub_filter(struct gw_cloud_dev *d, size_t i, char *buf, size_t size)
{
	return gw_tencent_build_topic(GW_TENCENT_DOWN, subs[i], d->cloud->cfg->tencent.product_id,
				      d->name, buf, size);
}

/* ---- replies ---- */

static void on_reply(struct gw_cloud_dev *d, enum gw_tencent_method m,
		     const struct mosquitto_message *msg);

void gw_tencent_uplink_message(struct gw_cloud_dev *d, const struct mosquitto_message *msg)
{
	enum gw_tencent_direction dir;
	enum gw_tencent_topic kind;
	enum gw_tencent_method m;
	char reason[GW_TENCENT_REASON_MAX] = "";
	int r;

	if (gw_tencent_classify_topic(msg->topic, d->cloud->cfg->tencent.product_id, d->name, &dir,
				      &kind) < 0 ||
	    dir != GW_TENCENT_DOWN) {
		ulog(d, LOG_DEBUG, "device %s: ignored a message on %s", d->name, msg->topic);
		return;
	}
	r = gw_tencent_peek_method(msg->payload, (size_t)msg->payloadlen, &m, reason);
	if (r == -ENOENT) {
		/* clear_control_reply and methods of features sensorgw does not use */
		ulog(d, LOG_DEBUG, "device %s: ignored a message with a method it does not use",
		     d->name);
		return;
	}
	if (r < 0) {
		ulog(d, LOG_NOTICE, "device %s: ignored a malformed message on %s: %s", d->name,
		     msg->topic, reason[0] ? reason : strerror(-r));
		return;
	}
	switch (m) {
	case GW_TENCENT_METHOD_CONTROL:
	case GW_TENCENT_METHOD_ACTION:
		on_command(d, m, msg);
		return;
	case GW_TENCENT_METHOD_REPORT_REPLY:
	case GW_TENCENT_METHOD_REPORT_INFO_REPLY:
	case GW_TENCENT_METHOD_GET_STATUS_REPLY:
	case GW_TENCENT_METHOD_EVENT_REPLY:
		on_reply(d, m, msg);
		return;
	case GW_TENCENT_METHOD_REPORT:
	case GW_TENCENT_METHOD_REPORT_INFO:
	case GW_TENCENT_METHOD_GET_STATUS:
	case GW_TENCENT_METHOD_CLEAR_CONTROL:
	case GW_TENCENT_METHOD_CONTROL_REPLY:
	case GW_TENCENT_METHOD_EVENT_POST:
	case GW_TENCENT_METHOD_EVENTS_POST:
	case GW_TENCENT_METHOD_ACTION_REPLY:
		break;
	}
	ulog(d, LOG_NOTICE, "device %s: ignored an uplink method (%s) on %s", d->name,
	     gw_tencent_name_method(m), msg->topic);
}

static void run_offline_control(struct gw_cloud_dev *d, const char *token, json_t *control);

static void on_reply(struct gw_cloud_dev *d, enum gw_tencent_method m,
		     const struct mosquitto_message *msg)
{
	struct gw_tencent_reply reply;
	char reason[GW_TENCENT_REASON_MAX] = "";
	const char *name = gw_tencent_name_method(m);
	const char *status;
	size_t len = (size_t)msg->payloadlen;
	int r;

	if (m == GW_TENCENT_METHOD_REPORT_REPLY)
		r = gw_tencent_parse_report_reply(msg->payload, len, &reply, reason);
	else if (m == GW_TENCENT_METHOD_REPORT_INFO_REPLY)
		r = gw_tencent_parse_report_info_reply(msg->payload, len, &reply, reason);
	else if (m == GW_TENCENT_METHOD_EVENT_REPLY)
		r = gw_tencent_parse_event_reply(msg->payload, len, &reply, reason);
	else
		r = gw_tencent_parse_get_status_reply(msg->payload, len, &reply, reason);
	if (r < 0) {
		ulog(d, LOG_NOTICE, "device %s: ignored a malformed %s: %s", d->name, name,
		     reason[0] ? reason : strerror(-r));
		return;
	}
	status = reply.status[0] ? reply.status : "(no status)";
	if (m == GW_TENCENT_METHOD_GET_STATUS_REPLY) {
		if (strcmp(reply.client_token, DEV(d)->status_token) != 0)
			ulog(d, LOG_NOTICE, "device %s: ignored a get_status_reply for %s, not this "
			     "session's", d->name, reply.client_token);
		else if (reply.code != GW_TENCENT_CODE_OK)
			ulog(d, LOG_WARNING, "device %s: get_status answered with code %d: %s; "
			     "controls issued while it was offline are not fetched", d->name,
			     reply.code, status);
		else if (reply.control)
			run_offline_control(d, reply.client_token, reply.control);
		json_decref(reply.control);
		return;
	}
	if (reply.code == GW_TENCENT_CODE_OK)
		return;
	if (m == GW_TENCENT_METHOD_REPORT_INFO_REPLY) {
		ulog(d, LOG_WARNING, "device %s: the platform refused report_info with code %d: %s",
		     d->name, reply.code, status);
		return;
	}
	/* The PUBACK acknowledged it already: the platform would refuse it again. */
	d->cloud->n.rejected++;
	ulog(d, LOG_WARNING, "device %s: the platform rejected %s with code %d: %s", d->name,
	     reply.client_token, reply.code, status);
}

/* ---- commands from the cloud ---- */

enum cmd_kind {
	CMD_CONTROL,         /* answered with control_reply */
	CMD_ACTION,          /* answered with action_reply */
	CMD_OFFLINE_CONTROL, /* from get_status: cleared with clear_control once the node took it */
};

/* A command on its way to the node; freed by the core when answered. */
struct cmd {
	struct gw_cloud_cmd base;
	enum cmd_kind kind;
	char token[GW_TENCENT_TOKEN_MAX]; /* to echo, or the get_status token to clear */
};

static void answer(struct gw_cloud_cmd *base, int code, const char *status, json_t *response)
{
	struct cmd *c = (struct cmd *)base;
	struct gw_cloud_dev *d = base->d;
	char *payload = NULL;
	size_t len = 0;
	int r;

	if (c->kind == CMD_OFFLINE_CONTROL)
		r = gw_tencent_build_clear_control(c->token, &payload, &len);
	else if (c->kind == CMD_CONTROL)
		r = gw_tencent_build_control_reply(c->token, code, status, &payload, &len);
	else
		r = gw_tencent_build_action_reply(c->token, code, status, response, &payload, &len);
	/* a status quoting a param cut mid-character is not UTF-8: answer all the same */
	if (r == -EINVAL && status && c->kind == CMD_CONTROL)
		r = gw_tencent_build_control_reply(c->token, code, "see the gateway's log",
						   &payload, &len);
	else if (r == -EINVAL && c->kind == CMD_ACTION)
		r = gw_tencent_build_action_reply(c->token, code, "see the gateway's log", NULL,
						  &payload, &len);
	if (r < 0) {
		ulog(d, LOG_ERR, "device %s: %s: cannot build the answer: %s", d->name, base->what,
		     strerror(-r));
		return;
	}
	publish_session(d, c->kind == CMD_ACTION ? GW_TENCENT_TOPIC_ACTION :
						   GW_TENCENT_TOPIC_PROPERTY, payload, len,
			c->kind == CMD_OFFLINE_CONTROL ? "clear_control" : "answer");
}

/* Every command handed on counts (a throttled one is counted by the core). */
static void cmd_send(struct cmd *c, enum gw_command_kind kind, const char *name, json_t *params)
{
	c->base.d->cloud->n.commands++;
	gw_cloud_cmd_send(&c->base, kind, name, params);
}

static void run_offline_control(struct gw_cloud_dev *d, const char *token, json_t *control)
{
	struct cmd *c = gw_new0(struct cmd, 1);

	c->base.d = d;
	c->base.stays_pending = true; /* the next session's get_status brings it again */
	c->kind = CMD_OFFLINE_CONTROL;
	snprintf(c->token, sizeof(c->token), "%s", token);
	snprintf(c->base.what, sizeof(c->base.what), "control issued while offline (get_status "
		 "%s)", token);
	ulog(d, LOG_INFO, "device %s: %s: passing it to the node", d->name, c->base.what);
	cmd_send(c, GW_COMMAND_PROPERTY_SET, NULL, control);
}

static void on_command(struct gw_cloud_dev *d, enum gw_tencent_method m,
		       const struct mosquitto_message *msg)
{
	struct cmd *c = gw_new0(struct cmd, 1);
	struct gw_tencent_request req;
	char reason[GW_TENCENT_REASON_MAX] = "";
	bool action = m == GW_TENCENT_METHOD_ACTION;
	const char *token;
	int r;

	c->base.d = d;
	c->kind = action ? CMD_ACTION : CMD_CONTROL;
	if (action)
		r = gw_tencent_parse_action(msg->payload, (size_t)msg->payloadlen, &req, reason);
	else
		r = gw_tencent_parse_control(msg->payload, (size_t)msg->payloadlen, &req, reason);
	snprintf(c->token, sizeof(c->token), "%s", req.client_token);
	token = req.client_token[0] ? req.client_token : "?";
	if (action)
		snprintf(c->base.what, sizeof(c->base.what), "action %s %s", req.action_id[0] ?
			 req.action_id : "?", token);
	else
		snprintf(c->base.what, sizeof(c->base.what), "control %s", token);
	/* command_rate, answered as for busy */
	if (req.client_token[0] && gw_cloud_cmd_throttled(&c->base))
		json_decref(req.params);
	else if (r < 0 && !req.client_token[0]) {
		ulog(d, LOG_WARNING, "device %s: ignored a malformed %s: %s (without a readable "
		     "clientToken it cannot be answered)", d->name, action ? "action" : "control",
		     reason[0] ? reason : strerror(-r));
		free(c);
	} else if (r < 0) {
		gw_cloud_cmd_refuse(&c->base, GW_TENCENT_UPLINK_CODE_BAD_REQUEST,
				    reason[0] ? reason : strerror(-r));
	} else {
		cmd_send(c, action ? GW_COMMAND_SERVICE : GW_COMMAND_PROPERTY_SET,
			 action ? req.action_id : NULL, req.params);
		json_decref(req.params);
	}
}

/* ---- login ---- */

/* What the system says about its clock (gw_tencent_clock_trusted() decides). */
static void read_clock(struct gw_tencent_clock *c)
{
	struct timex tx = { 0 };

	c->adjtimex_state = adjtimex(&tx);
	c->adjtimex_status = tx.status;
	c->timesyncd_synchronized = access("/run/systemd/timesync/synchronized", F_OK) == 0;
	c->now_s = (uint64_t)time(NULL);
}

/* expiry = auto: the expiry of this login; says so in the log when the clock's trust changes
 * (once, not per CONNECT). */
static uint64_t login_expiry(struct gw_cloud *u)
{
	int *clock_said = &((struct uplink *)u->priv)->clock_said;
	struct gw_tencent_clock clk = { 0 };
	bool fell_back = false;
	uint64_t expiry;

	if (!u->cfg->tencent.expiry_auto)
		return u->cfg->tencent.expiry;
	read_clock(&clk);
	expiry = gw_tencent_login_expiry(u->cfg->tencent.expiry, true, &clk, &fell_back);
	if (fell_back && *clock_said != -1)
		gw_cloud_log(u, LOG_WARNING, "expiry = auto: the system clock is not synchronised "
		     "(adjtimex state %d%s, no /run/systemd/timesync/synchronized); logins carry the "
		     "far-future expiry %u until it is", clk.adjtimex_state,
		     clk.adjtimex_status & STA_UNSYNC ? ", STA_UNSYNC" : "",
		     GW_TENCENT_DEFAULT_EXPIRY);
	else if (!fell_back && *clock_said != 1)
		gw_cloud_log(u, LOG_INFO, "expiry = auto: the system clock is synchronised; logins expire "
		     "%d s after they are made", GW_TENCENT_AUTO_EXPIRY_S);
	*clock_said = fell_back ? -1 : 1;
	return expiry;
}

int gw_tencent_uplink_login(struct gw_cloud_dev *d, const char *product_id, const char *psk,
			    struct gw_cloud_login *ret, char *why, size_t size)
{
	const struct gw_config_uplink *c = d->cloud->cfg;
	struct dev *p = DEV(d);
	bool certificate = !psk;
	struct gw_tencent_login l = {
		.product_id = product_id,
		.device_name = d->name,
		.psk = psk,
		.expiry = login_expiry(d->cloud),
		.sdkappid = c->tencent.sdkappid,
		.sign_method = gw_tencent_config_sign_method(c),
		.region = c->cloud.region,
		.transport = c->tls ? GW_TENCENT_TLS : GW_TENCENT_TCP,
		.port = c->port,
		.certificate = certificate,
	};
	char reason[GW_TENCENT_REASON_MAX] = "";
	int r;

	if (!p->conn)
		p->conn = gw_new0(struct gw_tencent_connect, 1);
	r = gw_tencent_build_connect(&l, p->conn, reason);
	if (r >= 0 && certificate)
		r = gw_cloud_tls_ctx(&p->cred, c->host ? c->host : p->conn->host, c->ca_file,
				     (void **)&p->ctx, reason, sizeof(reason));
	else if (r >= 0 && c->tls_psk)
		r = gw_tencent_psk_hex(psk, p->psk_hex, sizeof(p->psk_hex), reason);
	if (r < 0) {
		snprintf(why, size, "%s", reason[0] ? reason : strerror(-r));
		return r;
	}
	/* docs/protocols/tencent.md §1.3: a certificate device, and §1.4: TLS-PSK, send no
	 * password */
	*ret = GW_CLOUD_LOGIN(*p->conn, !certificate && !c->tls_psk);
	return 0;
}

static int login(struct gw_cloud_dev *d, struct gw_cloud_login *ret, char *why, size_t size)
{
	const struct gw_cred *cred = &DEV(d)->cred;

	return gw_tencent_uplink_login(d, d->cloud->cfg->tencent.product_id,
				       cred->kind == GW_CRED_CERTIFICATE ? NULL : cred->psk, ret,
				       why, size);
}

static int tls(struct gw_cloud_dev *d, struct mosquitto *mosq)
{
	const struct gw_config_uplink *c = d->cloud->cfg;
	struct dev *p = DEV(d);
	int rc = MOSQ_ERR_SUCCESS;

	if (p->ctx) {
		/* verifies by itself (gw_cloud_tls_ctx): no defaults of libmosquitto's on top */
		rc = mosquitto_opts_set(mosq, MOSQ_OPT_SSL_CTX, p->ctx);
		if (rc == MOSQ_ERR_SUCCESS)
			rc = mosquitto_int_option(mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
	} else if (c->tls_psk) {
		/* docs/protocols/tencent.md §1.4: identity <PID><DN>, the decoded PSK, the C SDK's
		 * cipher suites, no CA. libmosquitto 2.0.11 offers TLS 1.3 too: the platform (up to
		 * TLS 1.2, docs/protocols/tencent.md §1.1) picks a PSK suite; a TLS 1.3 server
		 * would use the same PSK with a TLS 1.3 suite (integration-tencent-auth shows
		 * both). */
		rc = mosquitto_tls_psk_set(mosq, p->psk_hex, p->conn->client_id,
					   GW_TENCENT_PSK_CIPHERS);
		explicit_bzero(p->psk_hex, sizeof(p->psk_hex));
	} else if (c->tls) {
		rc = mosquitto_tls_set(mosq, c->ca_file, NULL, NULL, NULL, NULL);
		/* peer and host name verification stay on */
		if (rc == MOSQ_ERR_SUCCESS)
			rc = mosquitto_tls_opts_set(mosq, 1, NULL, NULL);
	}
	return rc;
}

static void login_end(struct gw_cloud_dev *d)
{
	struct dev *p = DEV(d);

	if (p->conn)
		explicit_bzero(p->conn, sizeof(*p->conn));
	free(p->conn);
	p->conn = NULL;
	explicit_bzero(p->psk_hex, sizeof(p->psk_hex));
	SSL_CTX_free(p->ctx); /* libmosquitto holds its own reference */
	p->ctx = NULL;
}

/* The TLS alerts with which a server turns down the credential rather than the connection
 * (RFC 8446 §6.2 as OpenSSL words them): a client certificate, or with tls = psk the PSK (a
 * wrong key shows as a record the server cannot authenticate). The credential, not the
 * network, is what has to change. */
static bool refused_in_tls(const struct gw_cloud_dev *d)
{
	static const char *const cert_alerts[] = {
		"alert unknown ca", "alert bad certificate", "alert certificate revoked",
		"alert certificate expired", "alert certificate unknown",
		"alert certificate required", "alert unsupported certificate",
	};
	static const char *const psk_alerts[] = {
		"alert bad record mac", "alert decrypt error", "alert unknown psk identity",
	};
	bool cert = DEV(d)->cred.kind == GW_CRED_CERTIFICATE;
	const char *const *alerts = cert ? cert_alerts : psk_alerts;
	size_t n = cert ? N_ELEMENTS(cert_alerts) : N_ELEMENTS(psk_alerts);

	if (gw_cloud_dev_connack(d) || (!cert && !d->cloud->cfg->tls_psk))
		return false;
	for (size_t i = 0; i < n; i++)
		if (strstr(gw_cloud_dev_error(d), alerts[i]))
			return true;
	return false;
}

/* The stored credential refused at login: CONNACK 4 or 5, or a TLS alert about it (the device
 * was reset, its PSK replaced, its certificate revoked or issued by a CA the platform does
 * not trust). */
static bool login_refused(struct gw_cloud_dev *d, char *how, size_t size)
{
	int connack = gw_cloud_dev_connack(d);

	if (connack == 4 || connack == 5)
		snprintf(how, size, "CONNACK %d: %s", connack, mosquitto_connack_string(connack));
	else if (refused_in_tls(d))
		snprintf(how, size, "in the TLS handshake: %.*s", (int)size - 23,
			 gw_cloud_dev_error(d));
	else
		return false;
	return true;
}

/* ---- credentials and registration (auth = register) ---- */

static bool has_cred(const struct gw_cloud_dev *d)
{
	return DEV(d)->has_cred;
}

static const char *cred_name(const struct gw_cloud_dev *d)
{
	return DEV(d)->cred.kind == GW_CRED_PSK ? "PSK" : "certificate";
}

static const char *stored_name(const struct gw_config_uplink *cfg)
{
	return cfg->cloud.auth == GW_CLOUD_AUTH_CERTIFICATE ? "certificate and key" : "PSK";
}

static bool cred_fits(struct gw_cloud_dev *d, const struct gw_cred *cred)
{
	const struct gw_cloud *c = d->cloud;
	enum gw_cred_kind want = c->cfg->cloud.auth == GW_CLOUD_AUTH_CERTIFICATE ?
					 GW_CRED_CERTIFICATE :
					 GW_CRED_PSK;

	/* a registration hands out whichever kind the product is set up for */
	if (c->cfg->cloud.auth == GW_CLOUD_AUTH_REGISTER && cred->kind == GW_CRED_CERTIFICATE)
		want = GW_CRED_CERTIFICATE;
	if (cred->cloud == GW_CRED_CLOUD_TENCENT && cred->kind == want &&
	    strcmp(cred->product, c->cfg->tencent.product_id) == 0)
		return true;
	ulog(d, LOG_ERR,
	     "device %s: %s/%s.json is not a Tencent %s of product %s; not connecting; "
	     "looking again in %d s",
	     d->name, c->cred_dir, d->name, stored_name(c->cfg), c->cfg->tencent.product_id,
	     GW_TENCENT_UPLINK_RECHECK_MS / 1000);
	return false;
}

static void cred_forget(struct gw_cloud_dev *d)
{
	gw_credstore_wipe(&DEV(d)->cred);
	DEV(d)->has_cred = false;
}

static void cred_take(struct gw_cloud_dev *d, struct gw_cred *cred)
{
	cred_forget(d);
	DEV(d)->cred = *cred;
	DEV(d)->has_cred = true;
	*cred = (struct gw_cred){ 0 };
}

static const char *cred_desc(const struct gw_cred *cred)
{
	return cred->kind == GW_CRED_PSK ? "PSK" : "certificate and key";
}

static void cred_missing(struct gw_cloud_dev *d, int r, const char *reason)
{
	const struct gw_config_uplink *c = d->cloud->cfg;

	ulog(d, LOG_WARNING,
	     "device %s: no %s in %s/%s.json%s%s (auth = %s: provision it, see "
	     "sensorgw.conf(5)); looking again in %d s",
	     d->name, stored_name(c), d->cloud->cred_dir, d->name, reason[0] ? ": " : "", reason,
	     c->cloud.auth == GW_CLOUD_AUTH_CERTIFICATE ? "certificate" : "psk",
	     GW_TENCENT_UPLINK_RECHECK_MS / 1000);
}

static bool dynamic(const struct gw_config_uplink *c)
{
	return c->cloud.auth == GW_CLOUD_AUTH_REGISTER;
}

static void on_registered(struct gw_tencent_register *reg,
			  const struct gw_tencent_register_outcome *o, void *ud)
{
	gw_cloud_dev_registered(ud, &(struct gw_cloud_reg_outcome){
		(enum gw_cloud_reg_result)o->result, NULL, o->why, o->cred, o->untrusted });
}

static int register_start(struct gw_cloud_dev *d, const char **via)
{
	struct gw_cloud *c = d->cloud;

	return gw_tencent_register_start(c->event, c->http, c->store, c->cfg, d->name,
					 on_registered, d, (struct gw_tencent_register **)&d->reg);
}

static void register_cancel(struct gw_cloud_dev *d, void *reg)
{
	gw_tencent_register_cancel(reg);
}

/* ---- records ---- */

/* A record names the node's firmware (its hello's): a new version is reported. */
static int record_seen(struct gw_cloud_dev *d, json_t *o, char *why, size_t why_size)
{
	struct dev *p = DEV(d);
	const char *fw = json_string_value(json_object_get(o, "fw"));

	if (!o) {
		snprintf(why, why_size, "its payload is not JSON");
		return -EBADMSG;
	}
	if (fw && fw[0] && strcmp(fw, p->fw) != 0) {
		snprintf(p->fw, sizeof(p->fw), "%s", fw);
		p->info_sent = false;
		send_info(d);
	}
	return 0;
}

/* The data-template message for a record of device: topic and payload (malloc'd). why says
 * what is wrong; -EMSGSIZE: over the platform's 16 KB (why has the size). Pure apart from the
 * clock: the core's sending and sensorgwctl decode share it. */
static int build_message(const struct gw_config_uplink *cfg, const struct gw_spool_record *rec,
			 const struct gw_payload_view *v, json_t *o, const char *device,
			 char *topic, size_t size, char **payload, size_t *len, char *why,
			 size_t why_size)
{
	const char *what = v->type == GW_FRAME_EVENT ? "event_post" : "report";
	char token[GW_TENCENT_TOKEN_MAX];
	const char *event;
	json_t *params;
	int64_t time_ms;
	int r;

	*len = 0;
	if (!o) {
		snprintf(why, why_size, "its payload is not JSON");
		return -EBADMSG;
	}
	r = gw_cloud_record_fields(o, v, GW_TENCENT_UPLINK_REPLAY_MS, &params, &time_ms, &event,
				   why, why_size);
	if (r < 0)
		return r;
	r = gw_tencent_format_client_token(cfg->tencent.product_id, rec->seq, token, sizeof(token));
	if (r < 0) {
		snprintf(why, why_size, "no clientToken for it: %s", strerror(-r));
		return r;
	}
	if (v->type == GW_FRAME_EVENT) {
		/* the thing model's type for the event; without one (a frame's event has no
		 * severity) info, the mildest of docs/protocols/tencent.md §3.2 */
		struct gw_tencent_event ev = {
			.event_id = event ? event : "",
			.type = gw_cloud_model_event_type(cfg->cloud.model, event, "info"),
			.timestamp_ms = time_ms,
			.params = params,
		};

		r = gw_tencent_build_topic(GW_TENCENT_UP, GW_TENCENT_TOPIC_EVENT,
					   cfg->tencent.product_id, device, topic, size);
		if (r >= 0)
			r = gw_tencent_build_event_post(token, &ev, payload, len);
	} else {
		r = gw_tencent_build_topic(GW_TENCENT_UP, GW_TENCENT_TOPIC_PROPERTY,
					   cfg->tencent.product_id, device, topic, size);
		if (r >= 0)
			r = gw_tencent_build_report(token, params, time_ms, payload, len);
	}
	if (r == -EMSGSIZE)
		snprintf(why, why_size, "its %s would be %zu bytes, over the platform's %d-byte "
			 "payload limit (§1.7)", what, *len, GW_TENCENT_PAYLOAD_MAX);
	else if (r < 0)
		snprintf(why, why_size, "no data-template message can be built for it (empty "
			 "params, or an event id that is not 1..64 printable characters): %s",
			 strerror(-r));
	return r < 0 ? r : 0;
}

static uint64_t rate_take(struct gw_cloud_dev *d)
{
	return gw_rate_take(&DEV(d)->rate, gw_now_mono_us());
}

static void rate_give_back(struct gw_cloud_dev *d)
{
	gw_rate_give_back(&DEV(d)->rate);
}

/* ---- the devices and the uplink ---- */

static bool name_valid(const char *name)
{
	char reason[GW_TENCENT_REASON_MAX] = "";

	return gw_tencent_check_device_name(name, reason) >= 0;
}

static void dev_init(struct gw_cloud_dev *d)
{
	gw_rate_init(&DEV(d)->rate, d->cloud->cfg->max_rate, gw_now_mono_us());
}

/* tls = no is worth a word at start-up */
static int init(struct gw_cloud *c)
{
	const struct gw_config_uplink *cfg = c->cfg;

	if (!cfg->tls)
		gw_cloud_log(c, LOG_WARNING, "tls = no: plain TCP to %s:%u; the data travels in the "
			     "clear and the signed password is its only protection",
			     cfg->host ? cfg->host : "?", cfg->port);
	return 0;
}

/* The counters of the log line and the status, in their order (the status shows the
 * registrations of auth = register too). */
static const char *const counter_names[] = {
	"produced", "acked", "queued", "dropped_overflow", "dropped_enospc", "deadlettered",
	"lost_corrupt", "rejected", "inflight", "resent", "too_large", "devices", "online",
	"connects", "connection_losses", "commands", "commands_throttled", "registrations",
	"registration_failures", "model_refused", NULL,
};

static const struct gw_cloud_ops cloud_ops = {
	.title = "Tencent",
	.size = sizeof(struct uplink),
	.dev_size = sizeof(struct dev),
	/* docs/protocols/tencent.md §1.7: a CONNECT per 5 s, 30 messages a second */
	.pace_ms = GW_TENCENT_UPLINK_PACE_MS, .connect_gap_ms = GW_TENCENT_UPLINK_CONNECT_GAP_MS,
	.recheck_ms = GW_TENCENT_UPLINK_RECHECK_MS, .stable_s = GW_TENCENT_UPLINK_STABLE_S,
	.command_timeout_ms = GW_TENCENT_UPLINK_COMMAND_TIMEOUT_MS,
	.tls_from_log = true,
	.retry_whole_s = true,
	.recheck_verb = "looking again",
	.log_counters = counter_names, .status_counters = counter_names,
	.init = init,
	.name_valid = name_valid,
	.dev_init = dev_init, .dev_fini = cred_forget,
	.record_seen = record_seen, .build = build_message,
	.rate_take = rate_take, .rate_give_back = rate_give_back,
	.login = login, .tls = tls, .login_end = login_end,
	/* credentials: the PSK, or certificate and key, of auth = psk, certificate or register */
	.has_cred = has_cred, .cred_name = cred_name, .cred_fits = cred_fits,
	.cred_take = cred_take, .cred_forget = cred_forget, .cred_missing = cred_missing,
	.stored_name = stored_name, .new_cred_name = "credential", .cred_desc = cred_desc,
	.login_refused = login_refused, .refusal_is_error = true,
	.dynamic = dynamic, .register_start = register_start, .register_cancel = register_cancel,
	.refused_needs = "it needs provisioning; ", .refused_hint = "",
	.subs = { .n = N_ELEMENTS(subs), .what = sub_what, .qos = 1, .filter = sub_filter,
		  .failed = "cannot subscribe to the downlink topics" },
	.online = online, .session_end = gw_tencent_uplink_session_end,
	.message = gw_tencent_uplink_message,
	.answer = answer,
	.codes = {
		GW_TENCENT_CODE_OK, GW_TENCENT_UPLINK_CODE_NOT_FOUND,
		GW_TENCENT_UPLINK_CODE_NO_CHANNEL, GW_TENCENT_UPLINK_CODE_FAILED,
		GW_TENCENT_UPLINK_CODE_THROTTLED, GW_TENCENT_UPLINK_CODE_BAD_REQUEST,
		GW_TENCENT_UPLINK_CODE_TIMEOUT, GW_TENCENT_UPLINK_CODE_FAILED,
	},
	.gateway = &gw_tencent_gateway_ops,
};

/* The uplink driver (gw/uplink.h): the core with cloud_ops. */
GW_CLOUD_DRIVER(gw_tencent_uplink_ops, GW_UPLINK_TENCENT, cloud_ops);
