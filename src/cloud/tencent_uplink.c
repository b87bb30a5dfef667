/* SPDX-License-Identifier: MIT */
/*
 * Tencent Cloud IoT Explorer uplink: one libmosquitto session per node device on the sd-event
 * loop, fed from one spool reader (src/cloud/feed.c). See include/gw/tencent_uplink.h.
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
#include "gw/cloudfeed.h"
#include "gw/credstore.h"
#include "gw/http.h"
#include "gw/log.h"
#include "gw/mosqev.h"
#include "gw/payload.h"
#include "gw/tencent.h"
#include "gw/tencent_register.h"
#include "gw/tencent_uplink.h"
#include "gw/uplink.h"
#include "gw/util.h"

enum dev_state {
	DEV_IDLE,        /* its timer brings the next credential or connection attempt */
	DEV_REGISTERING, /* auth = register: its registration (tencent_register.c) is running */
	DEV_CONNECTING,  /* CONNECT sent */
	DEV_SUBSCRIBING, /* CONNACK 0, waiting for the three SUBACKs */
	DEV_ONLINE,
};

/* The downlink topics, one SUBSCRIBE each (docs/protocols/tencent.md §1.7). */
static const struct {
	enum gw_tencent_topic kind;
	const char *what; /* for the log when the platform refuses it */
} subs[] = {
	{ GW_TENCENT_TOPIC_PROPERTY, "report replies and controls" },
	{ GW_TENCENT_TOPIC_EVENT, "event replies" },
	{ GW_TENCENT_TOPIC_ACTION, "actions" },
};
#define N_SUBS (sizeof(subs) / sizeof(subs[0]))

struct dev {
	struct gw_tencent_uplink *u;
	char name[GW_TENCENT_DEVICE_NAME_MAX];
	enum dev_state state;
	struct gw_cred cred; /* PSK or certificate + key, once loaded (cred.psk or cred.cert) */
	bool has_cred;
	struct gw_tencent_register *reg;
	uint32_t reg_backoff_ms;
	uint32_t backoff_ms;
	uint64_t last_connect_us; /* when its last CONNECT attempt began; 0: never */
	sd_event_source *timer;

	struct mosquitto *mosq;
	struct gw_mosqev *ev; /* its socket and timer on the event loop */
	int sub_mid[N_SUBS];
	unsigned subacked;
	uint64_t connected_at_us;
	char last_error[GW_MOSQEV_ERROR_MAX]; /* of the last session, for the status */

	/* max_rate records a second (docs/protocols/tencent.md §1.7: 30 up per device) */
	struct gw_rate rate;
	char fw[GW_TENCENT_THING_ID_MAX]; /* the node's firmware version, from its records */
	bool info_sent; /* report_info of fw sent on this session */
	uint64_t token_seq; /* for the tokens of session messages */
	char status_token[GW_TENCENT_TOKEN_MAX]; /* of the get_status sent on this session */
};

struct gw_tencent_uplink {
	sd_event *event;
	const struct gw_config_uplink *cfg;
	struct gw_uplink *self;
	struct gw_uplink_commands commands;
	char *cred_dir;
	struct gw_credstore *store;
	struct gw_http *http; /* auth = register only */
	struct gw_cloudfeed *feed;

	struct dev **devs; /* cfg->max_devices slots */
	size_t n_devs;
	uint64_t next_slot_us; /* pacing of new sessions */
	sd_event_source *rate_timer; /* a device's rate allows its next record */

	struct gw_cloud_counters n;
	int clock_said; /* expiry = auto: 0 not yet logged, 1 trusted, -1 not trusted */

	/* controls and actions from the cloud, before any reaches a node: command_rate and
	 * command_burst (a control fetched with get_status is not counted: one a session) */
	struct gw_cloud_throttle throttle;
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

static void pump(struct gw_tencent_uplink *u);
static void dev_update_interest(struct dev *d);
static void dev_arm(struct dev *d, uint64_t delay_ms);
static void send_info(struct dev *d);
static void on_command(struct dev *d, enum gw_tencent_method m,
		       const struct mosquitto_message *msg);

static void notify(struct gw_tencent_uplink *u, bool state_changed)
{
	if (u->self)
		gw_uplink_notify(u->self, state_changed);
}

/* ---- sessions ---- */

static void dev_teardown(struct dev *d)
{
	struct gw_tencent_uplink *u = d->u;

	if (d->ev)
		snprintf(d->last_error, sizeof(d->last_error), "%s", gw_mosqev_last_error(d->ev));
	d->ev = gw_mosqev_free(d->ev);
	d->mosq = NULL;
	/* what was in flight waits in the spool and goes out again after the reconnect */
	gw_cloudfeed_requeue(u->feed, d);
	d->subacked = 0;
	d->info_sent = false;
	d->status_token[0] = '\0';
	d->state = DEV_IDLE;
}

/* The time until the device may send its next CONNECT (docs/protocols/tencent.md §1.7), in ms. */
static uint64_t connect_gap_left_ms(const struct dev *d)
{
	uint64_t now = gw_now_mono_us();
	uint64_t at = d->last_connect_us + (uint64_t)GW_TENCENT_UPLINK_CONNECT_GAP_MS * 1000;

	if (!d->last_connect_us || now >= at)
		return 0;
	return (at - now + 999) / 1000;
}

#define secs_until gw_cloud_secs_until

static void mark_refused(struct dev *d, const char *why, struct gw_cred_state *st)
{
	gw_cloud_mark_refused(d->u->store, d->u->cfg->name, d->name, why, st);
}

/* The TLS alerts with which a server turns down the credential rather than the connection
 * (RFC 8446 §6.2 as OpenSSL words them): a client certificate, or with tls = psk the PSK (a
 * wrong key shows as a record the server cannot authenticate). The credential, not the
 * network, is what has to change. */
static bool refused_in_tls(const struct dev *d)
{
	static const char *const cert_alerts[] = {
		"alert unknown ca", "alert bad certificate", "alert certificate revoked",
		"alert certificate expired", "alert certificate unknown",
		"alert certificate required", "alert unsupported certificate",
	};
	static const char *const psk_alerts[] = {
		"alert bad record mac", "alert decrypt error", "alert unknown psk identity",
	};
	bool cert = d->cred.kind == GW_CRED_CERTIFICATE;
	const char *const *alerts = cert ? cert_alerts : psk_alerts;
	size_t n = cert ? sizeof(cert_alerts) / sizeof(cert_alerts[0]) :
			  sizeof(psk_alerts) / sizeof(psk_alerts[0]);

	if (dev_connack(d) || (!cert && !d->u->cfg->tls_psk))
		return false;
	for (size_t i = 0; i < n; i++)
		if (strstr(dev_error(d), alerts[i]))
			return true;
	return false;
}

/*
 * The stored credential refused at login (CONNACK 4 or 5, or a TLS alert about it, see
 * refused_in_tls(): the device was reset, its PSK replaced, its certificate revoked or issued
 * by a CA the platform does not trust). Retrying at once would be refused again, so the refusal is
 * recorded in the store's marker and the device waits for a newer credential, or retries the
 * old one slowly. True when the loss was such a refusal.
 */
static bool login_refused(struct dev *d)
{
	struct gw_tencent_uplink *u = d->u;
	int connack = dev_connack(d);
	const char *what = d->cred.kind == GW_CRED_PSK ? "PSK" : "certificate";
	char why[GW_CREDSTORE_WHY_MAX + 1], how[GW_CREDSTORE_WHY_MAX - 48];
	struct gw_cred_state st;
	long long left;

	if (d->state != DEV_CONNECTING)
		return false;
	if (connack == 4 || connack == 5)
		snprintf(how, sizeof(how), "CONNACK %d: %s", connack,
			 mosquitto_connack_string(connack));
	else if (refused_in_tls(d))
		snprintf(how, sizeof(how), "in the TLS handshake: %.*s",
			 (int)sizeof(how) - 23, dev_error(d));
	else
		return false;
	dev_teardown(d);
	gw_credstore_wipe(&d->cred);
	d->has_cred = false;
	snprintf(why, sizeof(why), "login with the stored %s refused: %s", what, how);
	mark_refused(d, why, &st);
	left = secs_until(st.next_retry_ms);
	snprintf(d->last_error, sizeof(d->last_error), "%s", why);
	ulog(u, LOG_WARNING, "device %s: the platform refused its stored %s at login (%s): it "
	     "needs provisioning (a new credential in %s/%s.json); trying the old one again in "
	     "%lld s", d->name, what, how, u->cred_dir, d->name, left);
	/* a credential provisioned meanwhile is picked up at the next look */
	dev_arm(d, left * 1000 < GW_TENCENT_UPLINK_RECHECK_MS ? (uint64_t)left * 1000 :
								GW_TENCENT_UPLINK_RECHECK_MS);
	gw_cloudfeed_rescan(u->feed);
	notify(u, true);
	return true;
}

/* Ends the session and schedules the next attempt with backoff, never sooner than the
 * platform answers a CONNECT again. */
static void dev_lost(struct dev *d, int rc)
{
	struct gw_tencent_uplink *u = d->u;
	const struct gw_config_uplink *c = u->cfg;
	bool was_online = d->state == DEV_ONLINE;
	char why[384];
	uint64_t delay, gap;

	if (login_refused(d))
		return;
	gw_cloud_describe_loss(dev_connack(d), rc, dev_error(d), true, why, sizeof(why));
	u->n.connection_losses += was_online;
	delay = gw_cloud_loss_delay(c, &d->backoff_ms, was_online, d->connected_at_us,
				    GW_TENCENT_UPLINK_STABLE_S);
	dev_teardown(d);
	gap = connect_gap_left_ms(d);
	if (gap > delay)
		delay = gap;
	ulog(u, LOG_WARNING, "device %s: %s: %s; reconnecting in %.1f s", d->name,
	     was_online ? "connection lost" : "connecting failed", why, delay / 1000.0);
	dev_arm(d, delay);
	/* its records wait now; other devices' records behind them may go on */
	gw_cloudfeed_rescan(u->feed);
	notify(u, true);
}

/* A token for a message that is not a record: "<ProductId>-gw<n>", apart from the records'
 * "<ProductId>-<seq>". */
static int session_token(struct dev *d, char *buf, size_t size)
{
	return gw_bprintf(buf, size, "%s-gw%" PRIu64, d->u->cfg->product_id, ++d->token_seq);
}

/* Publishes a session message (QoS 0, as the SDKs send replies); payload is freed. It takes
 * a token of the device's rate but is sent even without one: these are few, and a reply the
 * platform waits for must not be held back behind records. */
static void publish_session(struct dev *d, enum gw_tencent_topic kind, char *payload, size_t len,
			    const char *what)
{
	struct gw_tencent_uplink *u = d->u;
	char topic[GW_TENCENT_TOPIC_MAX];
	int r;

	(void)gw_rate_take(&d->rate, gw_now_mono_us());
	if (!d->mosq || dev_is_lost(d) || (d->state != DEV_ONLINE && d->state != DEV_SUBSCRIBING)) {
		ulog(u, LOG_WARNING, "device %s: the session ended before the %s could be sent",
		     d->name, what);
		free(payload);
		return;
	}
	r = gw_tencent_build_topic(GW_TENCENT_UP, kind, u->cfg->product_id, d->name, topic,
				   sizeof(topic));
	if (r >= 0)
		r = mosquitto_publish(d->mosq, NULL, topic, (int)len, payload, 0, false);
	else
		r = MOSQ_ERR_INVAL;
	free(payload);
	if (r != MOSQ_ERR_SUCCESS)
		ulog(u, LOG_WARNING, "device %s: the %s was not sent: %s", d->name, what,
		     mosquitto_strerror(r));
	dev_update_interest(d);
}

/* docs/protocols/tencent.md §3.1: controls issued while the device was offline come back in
 * get_status_reply. */
static void send_get_status(struct dev *d)
{
	char *payload = NULL;
	size_t len = 0;
	int r;

	r = session_token(d, d->status_token, sizeof(d->status_token));
	if (r >= 0)
		r = gw_tencent_build_get_status(d->status_token, &payload, &len);
	if (r < 0) {
		ulog(d->u, LOG_ERR, "device %s: cannot build get_status: %s", d->name, strerror(-r));
		d->status_token[0] = '\0';
		return;
	}
	publish_session(d, GW_TENCENT_TOPIC_PROPERTY, payload, len, "get_status");
}

static void dev_online(struct dev *d)
{
	struct gw_tencent_uplink *u = d->u;

	d->state = DEV_ONLINE;
	ulog(u, LOG_INFO, "device %s: online", d->name);
	send_get_status(d);
	send_info(d);
	gw_cloudfeed_rescan(u->feed);
	notify(u, true);
}

static void on_connect(void *ud, int rc)
{
	struct dev *d = ud;
	const struct gw_config_uplink *c = d->u->cfg;
	char filter[GW_TENCENT_TOPIC_MAX];
	int r = 0;

	if (rc != 0) {
		/* libmosquitto closes the connection after a refusal */
		return;
	}
	d->connected_at_us = gw_now_mono_us();
	d->u->n.connects++;
	d->subacked = 0;
	/* docs/protocols/tencent.md §1.7: one topic filter per SUBSCRIBE */
	for (size_t i = 0; i < N_SUBS && r >= 0; i++) {
		r = gw_tencent_build_topic(GW_TENCENT_DOWN, subs[i].kind, c->product_id, d->name,
					   filter, sizeof(filter));
		if (r >= 0)
			r = mosquitto_subscribe(d->mosq, &d->sub_mid[i], filter, 1) ==
					    MOSQ_ERR_SUCCESS ? 0 : -EIO;
	}
	if (r < 0) {
		gw_mosqev_end(d->ev, "cannot subscribe to the downlink topics");
		return;
	}
	d->state = DEV_SUBSCRIBING;
}

static void on_subscribe(void *ud, int mid, int qos_count, const int *granted_qos)
{
	struct dev *d = ud;

	if (d->state != DEV_SUBSCRIBING)
		return;
	for (size_t i = 0; i < N_SUBS; i++) {
		if (mid != d->sub_mid[i])
			continue;
		if (qos_count < 1 || granted_qos[0] == 0x80)
			ulog(d->u, LOG_WARNING, "device %s: the platform refused the subscription "
			     "to its %s", d->name, subs[i].what);
		d->subacked |= 1u << i;
	}
	if (d->subacked == (1u << N_SUBS) - 1)
		dev_online(d);
}

static void on_publish(void *ud, int mid)
{
	struct dev *d = ud;

	(void)gw_cloudfeed_puback(d->u->feed, d, mid);
}

/* ---- base info ---- */

/* report_info with the node's firmware version, once a session and the version are there. */
static void send_info(struct dev *d)
{
	char token[GW_TENCENT_TOKEN_MAX];
	char *payload = NULL;
	size_t len = 0;
	int r;

	if (d->state != DEV_ONLINE || d->info_sent || !d->fw[0])
		return;
	d->info_sent = true;
	r = session_token(d, token, sizeof(token));
	if (r >= 0)
		r = gw_tencent_build_report_info(token, d->fw, NULL, &payload, &len);
	if (r < 0) {
		ulog(d->u, LOG_WARNING, "device %s: no report_info for firmware '%s': %s", d->name,
		     d->fw, strerror(-r));
		return;
	}
	ulog(d->u, LOG_INFO, "device %s: reporting firmware %s", d->name, d->fw);
	publish_session(d, GW_TENCENT_TOPIC_PROPERTY, payload, len, "report_info");
}

/* A record names the node's firmware (its hello's): a new version is reported. */
static void note_firmware(struct dev *d, const char *fw)
{
	if (!fw || !fw[0] || strcmp(fw, d->fw) == 0)
		return;
	snprintf(d->fw, sizeof(d->fw), "%s", fw);
	d->info_sent = false;
	send_info(d);
}

/* ---- replies ---- */

static void on_reply(struct dev *d, enum gw_tencent_method m,
		     const struct mosquitto_message *msg);

static void on_message(void *ud, const struct mosquitto_message *msg)
{
	struct dev *d = ud;
	struct gw_tencent_uplink *u = d->u;
	enum gw_tencent_direction dir;
	enum gw_tencent_topic kind;
	enum gw_tencent_method m;
	char reason[GW_TENCENT_REASON_MAX] = "";
	int r;

	if (gw_tencent_classify_topic(msg->topic, u->cfg->product_id, d->name, &dir, &kind) < 0 ||
	    dir != GW_TENCENT_DOWN) {
		ulog(u, LOG_DEBUG, "device %s: ignored a message on %s", d->name, msg->topic);
		return;
	}
	r = gw_tencent_peek_method(msg->payload, (size_t)msg->payloadlen, &m, reason);
	if (r == -ENOENT) {
		/* clear_control_reply and methods of features sensorgw does not use */
		ulog(u, LOG_DEBUG, "device %s: ignored a message with a method it does not use",
		     d->name);
		return;
	}
	if (r < 0) {
		ulog(u, LOG_NOTICE, "device %s: ignored a malformed message on %s: %s", d->name,
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
	ulog(u, LOG_NOTICE, "device %s: ignored an uplink method (%s) on %s", d->name,
	     gw_tencent_name_method(m), msg->topic);
}

static void run_offline_control(struct dev *d, const char *token, json_t *control);

static void on_reply(struct dev *d, enum gw_tencent_method m, const struct mosquitto_message *msg)
{
	struct gw_tencent_uplink *u = d->u;
	struct gw_tencent_reply reply;
	char reason[GW_TENCENT_REASON_MAX] = "";
	const char *name = gw_tencent_name_method(m);
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
		ulog(u, LOG_NOTICE, "device %s: ignored a malformed %s: %s", d->name, name,
		     reason[0] ? reason : strerror(-r));
		return;
	}
	if (m == GW_TENCENT_METHOD_GET_STATUS_REPLY) {
		if (strcmp(reply.client_token, d->status_token) != 0)
			ulog(u, LOG_NOTICE, "device %s: ignored a get_status_reply for %s, not this "
			     "session's", d->name, reply.client_token);
		else if (reply.code != GW_TENCENT_CODE_OK)
			ulog(u, LOG_WARNING, "device %s: get_status answered with code %d: %s; "
			     "controls issued while it was offline are not fetched", d->name,
			     reply.code, reply.status[0] ? reply.status : "(no status)");
		else if (reply.control)
			run_offline_control(d, reply.client_token, reply.control);
		json_decref(reply.control);
		return;
	}
	if (reply.code == GW_TENCENT_CODE_OK)
		return;
	if (m == GW_TENCENT_METHOD_REPORT_INFO_REPLY) {
		ulog(u, LOG_WARNING, "device %s: the platform refused report_info with code %d: %s",
		     d->name, reply.code, reply.status[0] ? reply.status : "(no status)");
		return;
	}
	/* The PUBACK acknowledged it already: the platform would refuse it again. */
	u->n.rejected++;
	ulog(u, LOG_WARNING, "device %s: the platform rejected %s with code %d: %s", d->name,
	     reply.client_token, reply.code, reply.status[0] ? reply.status : "(no status)");
}

/* ---- commands from the cloud ---- */

enum cmd_kind {
	CMD_CONTROL,         /* answered with control_reply */
	CMD_ACTION,          /* answered with action_reply */
	CMD_OFFLINE_CONTROL, /* from get_status: cleared with clear_control once the node took it */
};

/* A command on its way to the node; freed when answered. */
struct cmd {
	struct dev *d;
	enum cmd_kind kind;
	char token[GW_TENCENT_TOKEN_MAX]; /* to echo, or the get_status token to clear */
	char what[GW_TENCENT_THING_ID_MAX + GW_TENCENT_TOKEN_MAX + 32];
};

static void cmd_answer(struct cmd *c, int code, const char *status, json_t *response)
{
	struct dev *d = c->d;
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
		ulog(d->u, LOG_ERR, "device %s: %s: cannot build the answer: %s", d->name, c->what,
		     strerror(-r));
		return;
	}
	publish_session(d, c->kind == CMD_ACTION ? GW_TENCENT_TOPIC_ACTION :
						   GW_TENCENT_TOPIC_PROPERTY, payload, len,
			c->kind == CMD_OFFLINE_CONTROL ? "clear_control" : "answer");
}

static int status_code(enum gw_command_status s)
{
	switch (s) {
	case GW_COMMAND_REPLIED:
		return GW_TENCENT_CODE_OK;
	case GW_COMMAND_ABSENT:
	case GW_COMMAND_PORT_CLOSED:
	case GW_COMMAND_NODE_GONE:
		return GW_TENCENT_UPLINK_CODE_NOT_FOUND;
	case GW_COMMAND_NO_CHANNEL:
		return GW_TENCENT_UPLINK_CODE_NO_CHANNEL;
	case GW_COMMAND_FAILED:
		return GW_TENCENT_UPLINK_CODE_FAILED;
	case GW_COMMAND_BUSY:
		return GW_TENCENT_UPLINK_CODE_THROTTLED;
	case GW_COMMAND_INVALID:
		return GW_TENCENT_UPLINK_CODE_BAD_REQUEST;
	case GW_COMMAND_TIMEOUT:
	case GW_COMMAND_CANCELLED:
		break;
	}
	return GW_TENCENT_UPLINK_CODE_TIMEOUT;
}

static void cmd_done(const struct gw_command_result *res, void *ud)
{
	struct cmd *c = ud;
	struct dev *d = c->d;
	char msg[GW_COMMAND_REASON_MAX + 64];

	if (res->status == GW_COMMAND_REPLIED) {
		/* the node's 200 is the data template's 0; any other code is passed on as is */
		int code = res->code == 200 ? GW_TENCENT_CODE_OK : res->code;

		ulog(d->u, res->code == 200 ? LOG_INFO : LOG_NOTICE, "device %s: %s: node %s "
		     "answered with code %u in %llu ms", d->name, c->what, res->node, res->code,
		     (unsigned long long)res->elapsed_ms);
		snprintf(msg, sizeof(msg), "the node answered with code %u", res->code);
		cmd_answer(c, code, code == GW_TENCENT_CODE_OK ? NULL : msg, res->params);
	} else if (c->kind == CMD_OFFLINE_CONTROL) {
		/* not cleared: the next session's get_status brings it again */
		ulog(d->u, LOG_WARNING, "device %s: %s did not reach the node (%s); it stays "
		     "pending on the platform", d->name, c->what, res->reason);
	} else {
		int code = status_code(res->status);

		ulog(d->u, LOG_WARNING, "device %s: %s answered with code %d: %s", d->name,
		     c->what, code, res->reason);
		cmd_answer(c, code, res->reason, NULL);
	}
	free(c);
}

static void cmd_send(struct cmd *c, enum gw_command_kind kind, const char *name, json_t *params)
{
	struct gw_tencent_uplink *u = c->d->u;

	u->n.commands++;
	if (!u->commands.send) {
		if (c->kind != CMD_OFFLINE_CONTROL) {
			ulog(u, LOG_WARNING, "device %s: %s answered with code %d: this gateway has "
			     "no command path", c->d->name, c->what, GW_TENCENT_UPLINK_CODE_FAILED);
			cmd_answer(c, GW_TENCENT_UPLINK_CODE_FAILED, "this gateway has no command "
				   "path", NULL);
		}
		free(c);
		return;
	}
	/* completes through cmd_done, possibly before it returns */
	u->commands.send(u->commands.user_data, c->d->name, kind, name, params,
			 GW_TENCENT_UPLINK_COMMAND_TIMEOUT_MS, cmd_done, c);
}

static void run_offline_control(struct dev *d, const char *token, json_t *control)
{
	struct cmd *c = gw_new0(struct cmd, 1);

	c->d = d;
	c->kind = CMD_OFFLINE_CONTROL;
	snprintf(c->token, sizeof(c->token), "%s", token);
	snprintf(c->what, sizeof(c->what), "control issued while offline (get_status %s)", token);
	ulog(d->u, LOG_INFO, "device %s: %s: passing it to the node", d->name, c->what);
	cmd_send(c, GW_COMMAND_PROPERTY_SET, NULL, control);
}

/* command_rate (gw_cloud_throttled(), answered as for busy): true when c was answered (and
 * freed); it then counts as a command. */
static bool cmd_throttled(struct cmd *c)
{
	struct gw_tencent_uplink *u = c->d->u;

	if (!gw_cloud_throttled(&u->throttle, u->cfg, c->d->name, c->what,
				GW_TENCENT_UPLINK_CODE_THROTTLED))
		return false;
	u->n.commands++;
	cmd_answer(c, GW_TENCENT_UPLINK_CODE_THROTTLED, GW_CLOUD_THROTTLED_TEXT, NULL);
	free(c);
	return true;
}

static void on_command(struct dev *d, enum gw_tencent_method m,
		       const struct mosquitto_message *msg)
{
	struct gw_tencent_uplink *u = d->u;
	struct cmd *c = gw_new0(struct cmd, 1);
	struct gw_tencent_request req;
	char reason[GW_TENCENT_REASON_MAX] = "";
	bool action = m == GW_TENCENT_METHOD_ACTION;
	int r;

	c->d = d;
	c->kind = action ? CMD_ACTION : CMD_CONTROL;
	if (action)
		r = gw_tencent_parse_action(msg->payload, (size_t)msg->payloadlen, &req, reason);
	else
		r = gw_tencent_parse_control(msg->payload, (size_t)msg->payloadlen, &req, reason);
	snprintf(c->token, sizeof(c->token), "%s", req.client_token);
	if (action)
		snprintf(c->what, sizeof(c->what), "action %s %s", req.action_id[0] ?
			 req.action_id : "?", req.client_token[0] ? req.client_token : "?");
	else
		snprintf(c->what, sizeof(c->what), "control %s", req.client_token[0] ?
			 req.client_token : "?");
	if (req.client_token[0] && cmd_throttled(c)) {
		json_decref(req.params);
		return;
	}
	if (r < 0) {
		if (!req.client_token[0]) {
			ulog(u, LOG_WARNING, "device %s: ignored a malformed %s: %s (without a "
			     "readable clientToken it cannot be answered)", d->name,
			     action ? "action" : "control", reason[0] ? reason : strerror(-r));
			free(c);
			return;
		}
		ulog(u, LOG_WARNING, "device %s: %s answered with code %d: %s", d->name, c->what,
		     GW_TENCENT_UPLINK_CODE_BAD_REQUEST, reason[0] ? reason : strerror(-r));
		cmd_answer(c, GW_TENCENT_UPLINK_CODE_BAD_REQUEST, reason[0] ? reason :
			   strerror(-r), NULL);
		free(c);
		return;
	}
	cmd_send(c, action ? GW_COMMAND_SERVICE : GW_COMMAND_PROPERTY_SET,
		 action ? req.action_id : NULL, req.params);
	json_decref(req.params);
}

/* ---- the session on the event loop ---- */

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

/*
 * auth = certificate: libmosquitto takes client certificates only as files, so the stored
 * PEMs go into an SSL_CTX of ours instead; nothing of the key is written anywhere. The context
 * does all of the verification itself (ca_file, the peer's chain, the host name, TLS >= 1.2):
 * libmosquitto 2.0's own verify callback finds its client through an ex_data index it makes
 * only when it builds a context itself, so with a context of ours and its defaults it would
 * refuse every server certificate.
 */
static int tls_client_ctx(const struct gw_cred *cred, const char *host, const char *ca_file,
			  SSL_CTX **ret, char *why, size_t size)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	BIO *cb = BIO_new_mem_buf(cred->cert, -1);
	BIO *kb = BIO_new_mem_buf(cred->key, -1);
	X509 *cert = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
	EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
	X509_VERIFY_PARAM *param = ctx ? SSL_CTX_get0_param(ctx) : NULL;
	int r = -EINVAL;

	if (!ctx || !cb || !kb)
		snprintf(why, size, "out of memory for its TLS context");
	else if (!cert)
		snprintf(why, size, "its stored certificate is not a PEM certificate");
	else if (!key)
		snprintf(why, size, "its stored key is not a PEM private key");
	else if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
		 SSL_CTX_check_private_key(ctx) != 1)
		snprintf(why, size, "its stored certificate and key do not belong together");
	else if (!ca_file || SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)
		snprintf(why, size, "cannot load the CA file %s", ca_file ? ca_file : "(none)");
	else if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
		 /* an address is matched against the certificate's IP names, a name against its
		  * DNS names; each SSL made from the context inherits the check */
		 (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1 &&
		  X509_VERIFY_PARAM_set1_host(param, host, 0) != 1))
		(void)gw_bprintf(why, size, "cannot set up the verification of %s", host);
	else
		r = 0;
	ERR_clear_error();
	X509_free(cert);
	EVP_PKEY_free(key);
	BIO_free(cb);
	BIO_free(kb);
	if (r < 0) {
		SSL_CTX_free(ctx);
		return r;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	*ret = ctx;
	return 0;
}

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
static uint64_t login_expiry(struct gw_tencent_uplink *u)
{
	struct gw_tencent_clock clk = { 0 };
	bool fell_back = false;
	uint64_t expiry;

	if (!u->cfg->expiry_auto)
		return u->cfg->expiry;
	read_clock(&clk);
	expiry = gw_tencent_login_expiry(u->cfg->expiry, true, &clk, &fell_back);
	if (fell_back && u->clock_said != -1)
		ulog(u, LOG_WARNING, "expiry = auto: the system clock is not synchronised "
		     "(adjtimex state %d%s, no /run/systemd/timesync/synchronized); logins carry the "
		     "far-future expiry %u until it is", clk.adjtimex_state,
		     clk.adjtimex_status & STA_UNSYNC ? ", STA_UNSYNC" : "",
		     GW_TENCENT_DEFAULT_EXPIRY);
	else if (!fell_back && u->clock_said != 1)
		ulog(u, LOG_INFO, "expiry = auto: the system clock is synchronised; logins expire "
		     "%d s after they are made", GW_TENCENT_AUTO_EXPIRY_S);
	u->clock_said = fell_back ? -1 : 1;
	return expiry;
}

static void dev_connect(struct dev *d)
{
	struct gw_tencent_uplink *u = d->u;
	const struct gw_config_uplink *c = u->cfg;
	bool certificate = d->cred.kind == GW_CRED_CERTIFICATE;
	struct gw_tencent_login l = {
		.product_id = c->product_id,
		.device_name = d->name,
		.psk = certificate ? NULL : d->cred.psk,
		.expiry = login_expiry(u),
		.sdkappid = c->sdkappid,
		.sign_method = c->tc_sign_method,
		.region = c->region,
		.transport = c->tls ? GW_TENCENT_TLS : GW_TENCENT_TCP,
		.port = c->port,
		.certificate = certificate,
	};
	struct gw_tencent_connect conn;
	char reason[GW_TENCENT_REASON_MAX] = "";
	char psk_hex[GW_TENCENT_PSK_HEX_MAX] = "";
	/* docs/protocols/tencent.md §1.3: a certificate device, and §1.4: TLS-PSK, send no
	 * password */
	bool password = !certificate && !c->tls_psk;
	SSL_CTX *ctx = NULL;
	int rc = MOSQ_ERR_NOMEM;
	int r;

	d->last_error[0] = '\0';
	r = gw_tencent_build_connect(&l, &conn, reason);
	if (r >= 0 && certificate)
		r = tls_client_ctx(&d->cred, c->host ? c->host : conn.host, c->ca_file, &ctx,
				   reason, sizeof(reason));
	else if (r >= 0 && c->tls_psk)
		r = gw_tencent_psk_hex(d->cred.psk, psk_hex, sizeof(psk_hex), reason);
	if (r < 0) {
		ulog(u, LOG_ERR, "device %s: cannot build its login: %s; retrying in %d s", d->name,
		     reason[0] ? reason : strerror(-r), GW_TENCENT_UPLINK_RECHECK_MS / 1000);
		explicit_bzero(&conn, sizeof(conn));
		dev_arm(d, GW_TENCENT_UPLINK_RECHECK_MS);
		return;
	}
	if (gw_mosqev_new(u->event, conn.client_id, true, GW_MOSQEV_SAY_CLOSED, &ev_hooks, d,
			  &d->ev) < 0)
		goto fail;
	d->mosq = gw_mosqev_client(d->ev);
	mosquitto_max_inflight_messages_set(d->mosq, c->max_inflight);
	rc = mosquitto_username_pw_set(d->mosq, conn.username, password ? conn.password : NULL);
	if (rc != MOSQ_ERR_SUCCESS)
		goto fail;
	if (ctx) {
		/* verifies by itself (tls_client_ctx): no defaults of libmosquitto's on top */
		rc = mosquitto_opts_set(d->mosq, MOSQ_OPT_SSL_CTX, ctx);
		if (rc == MOSQ_ERR_SUCCESS)
			rc = mosquitto_int_option(d->mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
		if (rc != MOSQ_ERR_SUCCESS)
			goto fail;
	} else if (c->tls_psk) {
		/* docs/protocols/tencent.md §1.4: identity <PID><DN>, the decoded PSK, the C SDK's
		 * cipher suites, no CA. libmosquitto 2.0.11 offers TLS 1.3 too: the platform (up to
		 * TLS 1.2, docs/protocols/tencent.md §1.1) picks a PSK suite; a TLS 1.3 server
		 * would use the same PSK with a TLS 1.3 suite (integration-tencent-auth shows
		 * both). */
		rc = mosquitto_tls_psk_set(d->mosq, psk_hex, conn.client_id,
					   GW_TENCENT_PSK_CIPHERS);
		explicit_bzero(psk_hex, sizeof(psk_hex));
		if (rc != MOSQ_ERR_SUCCESS)
			goto fail;
	} else if (c->tls) {
		rc = mosquitto_tls_set(d->mosq, c->ca_file, NULL, NULL, NULL, NULL);
		if (rc != MOSQ_ERR_SUCCESS)
			goto fail;
		/* peer and host name verification stay on */
		rc = mosquitto_tls_opts_set(d->mosq, 1, NULL, NULL);
		if (rc != MOSQ_ERR_SUCCESS)
			goto fail;
	}
	d->state = DEV_CONNECTING;
	d->last_connect_us = gw_now_mono_us();
	rc = gw_mosqev_connect(d->ev, c->host ? c->host : conn.host, conn.port, c->keepalive);
	if (rc != MOSQ_ERR_SUCCESS)
		goto fail;
	explicit_bzero(&conn, sizeof(conn));
	SSL_CTX_free(ctx); /* libmosquitto holds its own reference */
	dev_update_interest(d);
	return;
fail:
	explicit_bzero(&conn, sizeof(conn));
	explicit_bzero(psk_hex, sizeof(psk_hex));
	SSL_CTX_free(ctx);
	dev_lost(d, rc);
}

/* ---- credentials ---- */

/* Whether the platform refused cred at login after it was obtained and the retry is not due:
 * then it is not tried again yet. A credential stored later wins. */
static bool cred_refused(struct dev *d, const struct gw_cred *cred, struct gw_cred_state *st)
{
	return gw_cloud_cred_refused(d->u->store, d->u->cfg->name, d->name, cred, st) &&
	       st->next_retry_ms > gw_now_wall_ms();
}

/* ---- dynamic registration (auth = register) ---- */

static void on_registered(struct gw_tencent_register *reg,
			  const struct gw_tencent_register_outcome *o, void *ud)
{
	struct dev *d = ud;
	struct gw_tencent_uplink *u = d->u;
	char marker[GW_CREDSTORE_WHY_MAX + 1];
	struct gw_cred_state st;
	uint32_t delay;

	d->reg = NULL;
	d->state = DEV_IDLE;
	switch (o->result) {
	case GW_TENCENT_REGISTER_STORED:
		break;
	case GW_TENCENT_REGISTER_REFUSED:
		/* asking again soon would not change the platform's mind */
		u->n.registration_failures++;
		snprintf(marker, sizeof(marker), "registration refused: %s", o->why);
		mark_refused(d, marker, &st);
		ulog(u, LOG_WARNING, "device %s: registration refused by the platform (%s); no "
		     "credential written; it needs provisioning; next attempt in %lld s", d->name,
		     o->why, secs_until(st.next_retry_ms));
		dev_arm(d, (uint64_t)secs_until(st.next_retry_ms) * 1000);
		return;
	case GW_TENCENT_REGISTER_FAILED:
		u->n.registration_failures++;
		d->reg_backoff_ms = gw_backoff_next(d->reg_backoff_ms, u->cfg->reconnect_min_ms,
						    u->cfg->reconnect_max_ms);
		delay = gw_backoff_jitter(d->reg_backoff_ms);
		ulog(u, LOG_WARNING, "device %s: registration failed: %s; no credential written; "
		     "retrying in %.1f s", d->name, o->why, delay / 1000.0);
		dev_arm(d, delay);
		return;
	}
	/* tencent_register.c stored it durably before handing it on */
	gw_credstore_wipe(&d->cred);
	d->has_cred = false;
	d->reg_backoff_ms = 0;
	u->n.registrations++;
	ulog(u, LOG_INFO, "device %s: registered; %s stored in %s/%s.json", d->name,
	     o->cred->kind == GW_CRED_PSK ? "PSK" : "certificate and key", u->cred_dir, d->name);
	/* loaded back from the store: what is used is exactly what survives a restart */
	dev_arm(d, 0);
}

/* Registers the device unless a refusal is recorded whose retry is not due yet. */
static void dev_register(struct dev *d)
{
	struct gw_tencent_uplink *u = d->u;
	char reason[GW_CREDSTORE_REASON_MAX];
	struct gw_cred_state st;
	int r;

	r = gw_credstore_get_state(u->store, d->name, &st, reason, sizeof(reason));
	if (r == 0 && st.status == GW_CRED_STATUS_NEEDS_PROVISIONING &&
	    st.next_retry_ms > gw_now_wall_ms()) {
		ulog(u, LOG_NOTICE, "device %s: registration was refused before (%s); next attempt "
		     "in %lld s", d->name, st.why, secs_until(st.next_retry_ms));
		dev_arm(d, (uint64_t)secs_until(st.next_retry_ms) * 1000);
		return;
	}
	r = gw_tencent_register_start(u->event, u->http, u->store, u->cfg, d->name, on_registered,
				      d, &d->reg);
	if (r < 0) {
		struct gw_tencent_register_outcome o = {
			.result = GW_TENCENT_REGISTER_FAILED,
			.why = strerror(-r),
		};

		on_registered(NULL, &o, d);
		return;
	}
	d->state = DEV_REGISTERING;
}

/* Finds the device's credential in the store (or registers it, with auth = register). */
static void dev_provision(struct dev *d)
{
	struct gw_tencent_uplink *u = d->u;
	const struct gw_config_uplink *c = u->cfg;
	bool certificate = c->auth == GW_CLOUD_AUTH_CERTIFICATE;
	enum gw_cred_kind want = certificate ? GW_CRED_CERTIFICATE : GW_CRED_PSK;
	const char *what = certificate ? "certificate and key" : "PSK";
	char reason[GW_CREDSTORE_REASON_MAX];
	struct gw_cred_state st;
	struct gw_cred cred;
	int r;

	r = gw_credstore_load(u->store, d->name, &cred, reason, sizeof(reason));
	if (r == 0) {
		if (reason[0])
			ulog(u, LOG_WARNING, "device %s: %s", d->name, reason);
		/* a registration hands out whichever kind the product is set up for */
		if (c->auth == GW_CLOUD_AUTH_REGISTER && cred.kind == GW_CRED_CERTIFICATE)
			want = GW_CRED_CERTIFICATE;
		if (cred.cloud != GW_CRED_CLOUD_TENCENT || cred.kind != want ||
		    strcmp(cred.product, c->product_id) != 0) {
			ulog(u, LOG_ERR, "device %s: %s/%s.json is not a Tencent %s of product %s; "
			     "not connecting; looking again in %d s", d->name, u->cred_dir, d->name,
			     what, c->product_id, GW_TENCENT_UPLINK_RECHECK_MS / 1000);
			gw_credstore_wipe(&cred);
			dev_arm(d, GW_TENCENT_UPLINK_RECHECK_MS);
			return;
		}
		if (cred_refused(d, &cred, &st)) {
			ulog(u, LOG_DEBUG, "device %s: its stored %s was refused (%s); next attempt "
			     "in %lld s", d->name, what, st.why, secs_until(st.next_retry_ms));
			gw_credstore_wipe(&cred);
			dev_arm(d, GW_TENCENT_UPLINK_RECHECK_MS);
			return;
		}
		gw_credstore_wipe(&d->cred);
		d->cred = cred;
		d->has_cred = true;
		dev_connect(d);
		return;
	}
	if ((r == -ENOENT || r == -EBADMSG) && c->auth == GW_CLOUD_AUTH_REGISTER) {
		if (r == -EBADMSG)
			ulog(u, LOG_WARNING, "device %s: %s", d->name, reason);
		dev_register(d);
		return;
	}
	if (r == -ENOENT || r == -EBADMSG)
		ulog(u, LOG_WARNING, "device %s: no %s in %s/%s.json%s%s (auth = %s: provision it, "
		     "see sensorgw.conf(5)); looking again in %d s", d->name, what, u->cred_dir,
		     d->name, reason[0] ? ": " : "", reason, certificate ? "certificate" : "psk",
		     GW_TENCENT_UPLINK_RECHECK_MS / 1000);
	else
		ulog(u, LOG_ERR, "device %s: cannot load its credential: %s; looking again in %d s",
		     d->name, reason[0] ? reason : strerror(-r),
		     GW_TENCENT_UPLINK_RECHECK_MS / 1000);
	dev_arm(d, GW_TENCENT_UPLINK_RECHECK_MS);
}

/* Each attempt waits for the next free pacing slot, so that a gateway with many nodes never
 * opens its sessions in one burst, and for the device's own CONNECT gap
 * (docs/protocols/tencent.md §1.7). */
static int dev_timer_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct dev *d = ud;
	struct gw_tencent_uplink *u = d->u;
	uint64_t now = gw_now_mono_us();
	uint64_t gap = connect_gap_left_ms(d);

	if (gap) {
		dev_arm(d, gap);
		return 0;
	}
	if (now < u->next_slot_us) {
		(void)sd_event_source_set_time(s, u->next_slot_us);
		(void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
		return 0;
	}
	u->next_slot_us = now + (uint64_t)GW_TENCENT_UPLINK_PACE_MS * 1000;
	if (d->has_cred)
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

static struct dev *dev_find(struct gw_tencent_uplink *u, const char *name)
{
	for (size_t i = 0; i < u->n_devs; i++)
		if (strcmp(u->devs[i]->name, name) == 0)
			return u->devs[i];
	return NULL;
}

/* A device seen for the first time. NULL with why filled when it cannot have a session. */
static struct dev *dev_add(struct gw_tencent_uplink *u, const char *name, char *why, size_t size)
{
	char reason[GW_TENCENT_REASON_MAX] = "";
	struct dev *d;
	int r;

	if (gw_tencent_check_device_name(name, reason) < 0 || !gw_credstore_name_valid(name)) {
		snprintf(why, size, "device name '%s' is not valid for Tencent (1..64 of A-Z a-z "
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
	snprintf(d->name, sizeof(d->name), "%s", name);
	gw_rate_init(&d->rate, u->cfg->max_rate, gw_now_mono_us());
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
	d->reg = gw_tencent_register_cancel(d->reg);
	if (d->ev && d->state == DEV_ONLINE)
		gw_mosqev_hang_up(d->ev); /* a DISCONNECT tells the platform this was intended */
	dev_teardown(d);
	d->timer = sd_event_source_disable_unref(d->timer);
	gw_credstore_wipe(&d->cred);
	free(d);
}

/* ---- sending ---- */

/* The data-template message for a record o (its parsed payload) of device: topic and payload
 * (malloc'd). why says what is wrong; -EMSGSIZE: over the platform's 16 KB (why has the size).
 * Pure apart from the clock: send_record() and sensorgwctl decode (driver_preview) share it. */
static int build_message(const struct gw_config_uplink *cfg, const struct gw_spool_record *rec,
			 const struct gw_payload_view *v, const char *device, json_t *o,
			 char *topic, size_t size, char **payload, size_t *len, char *why,
			 size_t why_size)
{
	json_t *params = json_object_get(o, "params");
	json_t *ts = json_object_get(o, "ts");
	const char *event = json_string_value(json_object_get(o, "event"));
	const char *what = v->type == GW_FRAME_EVENT ? "event_post" : "report";
	char token[GW_TENCENT_TOKEN_MAX];
	int64_t time_ms;
	int r;

	*len = 0;
	if (!json_is_object(params) || !json_is_integer(ts)) {
		snprintf(why, why_size, "its payload has no params object or no ts");
		return -EBADMSG;
	}
	r = gw_tencent_format_client_token(cfg->product_id, rec->seq, token, sizeof(token));
	if (r < 0) {
		snprintf(why, why_size, "no clientToken for it: %s", strerror(-r));
		return r;
	}
	time_ms = json_integer_value(ts);
	if (v->type == GW_FRAME_EVENT) {
		/* a frame's event has no severity: info, the mildest of docs/protocols/tencent.md
		 * §3.2 */
		struct gw_tencent_event ev = {
			.event_id = event ? event : "",
			.type = "info",
			.timestamp_ms = time_ms,
			.params = params,
		};

		r = gw_tencent_build_topic(GW_TENCENT_UP, GW_TENCENT_TOPIC_EVENT, cfg->product_id,
					   device, topic, size);
		if (r >= 0)
			r = gw_tencent_build_event_post(token, &ev, payload, len);
	} else {
		/* live data is stamped by the platform; a replayed reading keeps its time */
		if (gw_now_wall_ms() - time_ms <= GW_TENCENT_UPLINK_REPLAY_MS)
			time_ms = -1;
		r = gw_tencent_build_topic(GW_TENCENT_UP, GW_TENCENT_TOPIC_PROPERTY,
					   cfg->product_id, device, topic, size);
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

/* The device's rate is spent: its records wait and are read again when it has tokens. */
static void wait_for_rate(struct gw_tencent_uplink *u, uint64_t wait_us)
{
	uint64_t now = gw_now_mono_us(), at = 0;
	int enabled = SD_EVENT_OFF;

	(void)sd_event_source_get_enabled(u->rate_timer, &enabled);
	(void)sd_event_source_get_time(u->rate_timer, &at);
	if (enabled != SD_EVENT_OFF && at <= now + wait_us)
		return;
	(void)sd_event_source_set_time(u->rate_timer, now + wait_us);
	(void)sd_event_source_set_enabled(u->rate_timer, SD_EVENT_ONESHOT);
}

/* 1: handed to libmosquitto; 0: waits for its device or was dead-lettered. */
static int send_record(struct gw_tencent_uplink *u, const struct gw_spool_record *rec)
{
	struct gw_payload_view v;
	char topic[GW_TENCENT_TOPIC_MAX];
	char why[256];
	char *payload = NULL;
	size_t len = 0;
	json_error_t jerr;
	json_t *o;
	struct dev *d;
	uint64_t wait;
	int mid = 0;
	int rc;

	if (gw_payload_unpack(rec->payload, rec->len, rec->type, &v) < 0) {
		gw_cloudfeed_deadletter(u->feed, rec->seq, "not a record this version can send");
		return 0;
	}
	d = dev_find(u, v.device);
	if (!d)
		d = dev_add(u, v.device, why, sizeof(why));
	if (!d) {
		gw_cloudfeed_deadletter(u->feed, rec->seq, why);
		return 0;
	}
	o = json_loadb(v.json, v.json_len, 0, &jerr);
	if (!o) {
		gw_cloudfeed_deadletter(u->feed, rec->seq, "its payload is not JSON");
		return 0;
	}
	note_firmware(d, json_string_value(json_object_get(o, "fw")));
	if (d->state != DEV_ONLINE || dev_is_lost(d)) {
		json_decref(o);
		gw_cloudfeed_wait(u->feed, rec->seq);
		return 0;
	}
	wait = gw_rate_take(&d->rate, gw_now_mono_us());
	if (wait) {
		json_decref(o);
		gw_cloudfeed_wait(u->feed, rec->seq);
		wait_for_rate(u, wait);
		return 0;
	}
	rc = build_message(u->cfg, rec, &v, d->name, o, topic, sizeof(topic), &payload, &len, why,
			   sizeof(why));
	json_decref(o);
	if (rc < 0) {
		gw_rate_give_back(&d->rate);
		if (rc == -EMSGSIZE)
			u->n.too_large++;
		gw_cloudfeed_deadletter(u->feed, rec->seq, why);
		return 0;
	}
	rc = mosquitto_publish(d->mosq, &mid, topic, (int)len, payload, 1, false);
	free(payload);
	if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST || rc == MOSQ_ERR_ERRNO) {
		/* the session is going away: its io or tick callback tears it down */
		gw_mosqev_end(d->ev, NULL);
		gw_cloudfeed_wait(u->feed, rec->seq);
		return 0;
	}
	if (rc != MOSQ_ERR_SUCCESS) {
		snprintf(why, sizeof(why), "libmosquitto refused it: %s", mosquitto_strerror(rc));
		gw_cloudfeed_deadletter(u->feed, rec->seq, why);
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

static void pump(struct gw_tencent_uplink *u)
{
	if (gw_cloud_pump(u->feed, u->cfg->name, pump_send, u))
		notify(u, false);
}

static int rate_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_tencent_uplink *u = ud;

	gw_cloudfeed_rescan(u->feed);
	pump(u);
	return 0;
}

/* ---- the object ---- */

static struct gw_tencent_uplink *tencent_free(struct gw_tencent_uplink *u)
{
	if (!u)
		return NULL;
	u->self = NULL;
	for (size_t i = 0; i < u->n_devs; i++)
		dev_free(u->devs[i]);
	u->rate_timer = sd_event_source_disable_unref(u->rate_timer);
	gw_cloudfeed_free(u->feed);
	gw_http_free(u->http);
	gw_credstore_close(u->store);
	free(u->cred_dir);
	free(u->devs);
	sd_event_unref(u->event);
	free(u);
	return NULL;
}

static int driver_new(const struct gw_uplink_env *env, void **ret)
{
	const struct gw_config_uplink *cfg = env->cfg;
	struct gw_tencent_uplink *u = gw_new0(struct gw_tencent_uplink, 1);
	char reason[GW_CREDSTORE_REASON_MAX];
	int r;

	u->event = sd_event_ref(env->event);
	u->cfg = cfg;
	u->self = env->self;
	u->commands = env->commands;
	gw_cloud_throttle_init(&u->throttle, cfg);
	u->devs = gw_new0(struct dev *, cfg->max_devices);
	if (asprintf(&u->cred_dir, "%s/credentials/%s", env->state_dir, cfg->name) < 0) {
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
	if (cfg->auth == GW_CLOUD_AUTH_REGISTER) {
		r = gw_http_new(env->event, &u->http);
		if (r < 0) {
			ulog(u, LOG_ERR, "cannot set up HTTPS for registration: %s", strerror(-r));
			goto fail;
		}
	}
	r = gw_cloudfeed_new(env->event, env->spool, cfg->name, cfg->max_inflight,
			     cfg->start_from == GW_START_FROM_OLDEST, &u->feed);
	if (r < 0)
		goto fail;
	r = sd_event_add_time_relative(env->event, &u->rate_timer, CLOCK_MONOTONIC, 1000000, 1000,
				       rate_cb, u);
	if (r < 0)
		goto fail;
	(void)sd_event_source_set_enabled(u->rate_timer, SD_EVENT_OFF);
	if (!cfg->tls)
		ulog(u, LOG_WARNING, "tls = no: plain TCP to %s:%u; the data travels in the clear "
		     "and the signed password is its only protection", cfg->host ? cfg->host : "?",
		     cfg->port);
	*ret = u;
	return 0;
fail:
	tencent_free(u);
	return r;
}

static void driver_free(void *impl)
{
	tencent_free(impl);
}

static int driver_start(void *impl)
{
	pump(impl);
	return 0;
}

static void driver_kick(void *impl, uint64_t seq)
{
	pump(impl);
}

static int driver_save(void *impl)
{
	struct gw_tencent_uplink *u = impl;

	return gw_cloudfeed_save(u->feed);
}

/* only online sessions carry records in flight */
static size_t driver_draining(const void *impl)
{
	const struct gw_tencent_uplink *u = impl;

	return gw_cloudfeed_inflight(u->feed);
}

/* The counters of the log line and the status, in their order. */
static const char *const counter_names[] = {
	"produced", "acked", "queued", "dropped_overflow", "dropped_enospc", "deadlettered",
	"lost_corrupt", "rejected", "inflight", "resent", "too_large", "devices", "online",
	"connects", "connection_losses", "commands", "commands_throttled", "registrations",
	"registration_failures", NULL,
};

static void get_counters(const struct gw_tencent_uplink *u, struct gw_cloudfeed_stats *fs,
			 struct gw_cloud_counters *ret)
{
	gw_cloudfeed_get_stats(u->feed, fs);
	*ret = u->n;
	ret->commands_throttled = u->throttle.refused;
	ret->devices = u->n_devs;
	for (size_t i = 0; i < u->n_devs; i++)
		ret->online += u->devs[i]->state == DEV_ONLINE;
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
	const struct gw_tencent_uplink *u = impl;
	struct gw_cloudfeed_stats fs;
	struct gw_cloud_counters n;

	get_counters(u, &fs, &n);
	gw_cloud_log_counters(u->cfg->name, counter_names, &fs, &n);
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

	return gw_cloudfeed_device_status(d->u->store, d->name, states[d->state], d->has_cred,
					  dev_error(d));
}

static void driver_status(void *impl, json_t *o)
{
	struct gw_tencent_uplink *u = impl;
	struct gw_cloudfeed_stats fs;
	struct gw_cloud_counters n;
	json_t *devs = json_array();

	get_counters(u, &fs, &n);
	for (size_t i = 0; i < u->n_devs; i++)
		(void)json_array_append_new(devs, dev_status(u->devs[i]));
	(void)json_object_set_new(o, "devices", devs);
	/* the names of log_counters' line, and the registrations of auth = register */
	gw_cloud_status(u->feed, counter_names, &n, o);
}

/* What send_record() would publish for rec, for sensorgwctl decode. */
static int driver_preview(const struct gw_config_uplink *cfg, const struct gw_spool_record *rec,
			  char *topic, size_t topic_size, char **payload, size_t *len, char *why,
			  size_t why_size)
{
	char reason[GW_TENCENT_REASON_MAX] = "";
	struct gw_payload_view v;
	json_error_t jerr;
	json_t *o;
	int r;

	if (gw_payload_unpack(rec->payload, rec->len, rec->type, &v) < 0) {
		snprintf(why, why_size, "not a record this version can send");
		return -EBADMSG;
	}
	if (gw_tencent_check_device_name(v.device, reason) < 0 ||
	    !gw_credstore_name_valid(v.device)) {
		snprintf(why, why_size, "device name '%s' is not valid for Tencent (1..64 of A-Z "
			 "a-z 0-9 _ . @ -)", v.device);
		return -EINVAL;
	}
	o = json_loadb(v.json, v.json_len, 0, &jerr);
	if (!o) {
		snprintf(why, why_size, "its payload is not JSON");
		return -EBADMSG;
	}
	r = build_message(cfg, rec, &v, v.device, o, topic, topic_size, payload, len, why,
			  why_size);
	json_decref(o);
	return r;
}

const struct gw_uplink_ops gw_tencent_uplink_ops = {
	.type = GW_UPLINK_TENCENT,
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
