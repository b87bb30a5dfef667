/* SPDX-License-Identifier: MIT */
/*
 * Aliyun dynamic registration of one device over HTTPS or a short-lived MQTT session, the
 * credential stored before it is handed on. See include/gw/aliyun_register.h.
 */

#include <errno.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw-build.h"
#include "gw/aliyun.h"
#include "gw/aliyun_register.h"
#include "gw/cloudreg.h"
#include "gw/log.h"
#include "gw/mosqev.h"
#include "gw/util.h"

enum phase {
	PHASE_STARTING, /* the timer brings the first transport */
	PHASE_HTTPS,    /* the POST is running */
	PHASE_MQTT,     /* the registration connection is up or coming up; the timer bounds it */
};

struct gw_aliyun_register {
	struct gw_cloud_reg job; /* device, timer, outcome (gw/cloudreg.h) */
	gw_aliyun_register_fn done;
	void *user_data;

	enum phase phase;
	enum gw_aliyun_auth mqtt_auth; /* REGISTER or REGNWL */
	struct gw_mosqev *ev; /* the registration connection (mosqev.h) */
	bool connected;  /* CONNACK 0 */
	bool answered;   /* the push was handled: the outcome is set */
};

_Static_assert((int)GW_ALIYUN_REGISTER_FAILED == (int)GW_CLOUD_REG_FAILED &&
		       (int)GW_ALIYUN_REGISTER_REFUSED == (int)GW_CLOUD_REG_REFUSED,
	       "the results are the job's");

#define rlog(reg, level, ...) gw_log_uplink(level, (reg)->job.cfg->name, __VA_ARGS__)
#define finish(reg, result, ...) \
	gw_cloud_reg_finish(&(reg)->job, GW_CLOUD_REG_##result, __VA_ARGS__)

static void start_mqtt(struct gw_aliyun_register *reg);

static void mqtt_close(struct gw_aliyun_register *reg)
{
	reg->ev = gw_mosqev_free(reg->ev);
}

/* Stores what the platform issued; it is used only once it is on disk. */
static void store(struct gw_aliyun_register *reg, const char *via,
		  const struct gw_aliyun_credentials *creds)
{
	bool token = reg->mqtt_auth == GW_ALIYUN_AUTH_REGNWL && strcmp(via, "MQTT") == 0;
	struct gw_cred cred = {
		.cloud = GW_CRED_CLOUD_ALIYUN,
		.kind = token ? GW_CRED_DEVICE_TOKEN : GW_CRED_DEVICE_SECRET,
		.product = reg->job.cfg->aliyun.product_key,
		.device = reg->job.device,
		.secret = token ? NULL : (char *)creds->device_secret,
		.token = token ? (char *)creds->device_token : NULL,
		.client_id = token ? (char *)creds->client_id : NULL,
	};

	gw_cloud_reg_store(&reg->job, &cred, via, token ? "DeviceToken" : "DeviceSecret");
}

/* ---- HTTPS (pre-registration only, docs/protocols/aliyun.md §2) ---- */

/* A failure that is not the platform's refusal: with register_via = auto MQTT gets its turn. */
static void https_failed(struct gw_aliyun_register *reg, const char *why)
{
	if (reg->job.cfg->aliyun.register_via == GW_REGISTER_VIA_AUTO) {
		rlog(reg, LOG_WARNING, "device %s: registration over HTTPS failed: %s; trying MQTT",
		     reg->job.device, why);
		start_mqtt(reg);
		return;
	}
	finish(reg, FAILED, "HTTPS", "%s", why);
}

static void on_https_done(struct gw_http_request *req, const struct gw_http_response *resp,
			  void *ud)
{
	struct gw_aliyun_register *reg = ud;
	struct gw_aliyun_credentials creds;
	char reason[GW_ALIYUN_REASON_MAX];
	char why[GW_ALIYUN_REASON_MAX + 256];
	int r;

	reg->job.req = NULL;
	if (gw_cloud_reg_http_status(&reg->job, resp, why, sizeof(why)) < 0) {
		https_failed(reg, why);
		return;
	}
	r = gw_aliyun_parse_https_register(resp->body, resp->len, &creds, reason);
	if (r == -EREMOTEIO) {
		/* final: MQTT would hear the same from the same platform */
		finish(reg, REFUSED, "HTTPS", "code %d: %s", creds.code,
		       creds.message[0] ? creds.message : "(no message)");
		return;
	}
	if (r < 0) {
		explicit_bzero(&creds, sizeof(creds));
		snprintf(why, sizeof(why), "malformed reply: %s",
			 r == -EBADMSG ? reason : strerror(-r));
		https_failed(reg, why);
		return;
	}
	store(reg, "HTTPS", &creds);
	explicit_bzero(&creds, sizeof(creds));
}

static void start_https(struct gw_aliyun_register *reg)
{
	static const char *const headers[] = { "Accept: " GW_ALIYUN_REGISTER_ACCEPT, NULL };
	const struct gw_config_uplink *c = reg->job.cfg;
	/* the reply is small: a larger body is cut off in transfer, never buffered */
	struct gw_http_options o = { .ca_file = reg->job.https_ca_file,
				     .max_body = GW_ALIYUN_HTTPS_REPLY_MAX };
	struct gw_aliyun_https_request req;
	char rnd[GW_ALIYUN_RANDOM_MAX];
	int r;

	reg->phase = PHASE_HTTPS;
	r = gw_aliyun_make_random(rnd, sizeof(rnd));
	if (r >= 0)
		/* the registration host is per region, the same for instance endpoints
		 * (docs/protocols/aliyun.md §2) */
		r = gw_aliyun_build_https_register(c->cloud.region, c->aliyun.product_key,
						   reg->job.device, c->cloud.product_secret, rnd,
						   gw_aliyun_config_sign_method(c), &req);
	if (r < 0) {
		finish(reg, FAILED, "HTTPS",
		       "cannot build the registration request: %s", strerror(-r));
		return;
	}
	rlog(reg, LOG_INFO, "device %s: registering over HTTPS", reg->job.device);
	r = gw_http_post(reg->job.http, c->cloud.register_url ? c->cloud.register_url : req.url,
			 GW_ALIYUN_REGISTER_CONTENT_TYPE, headers, req.body, strlen(req.body), &o,
			 on_https_done, reg, &reg->job.req);
	explicit_bzero(&req, sizeof(req));
	if (r < 0)
		https_failed(reg, strerror(-r));
}

/* ---- MQTT (register and regnwl, docs/protocols/aliyun.md §3) ---- */

static void on_connect(void *ud, int rc)
{
	struct gw_aliyun_register *reg = ud;

	/* after a refusal libmosquitto closes the connection; the io callback decides */
	reg->connected = rc == 0;
}

/* The one push the platform sends without a SUBSCRIBE. */
static void on_message(void *ud, const struct mosquitto_message *msg)
{
	struct gw_aliyun_register *reg = ud;
	const char *topic = reg->mqtt_auth == GW_ALIYUN_AUTH_REGNWL ? GW_ALIYUN_TOPIC_REGNWL :
								       GW_ALIYUN_TOPIC_REGISTER;
	struct gw_aliyun_credentials creds;
	char reason[GW_ALIYUN_REASON_MAX];
	int r;

	if (reg->answered || strcmp(msg->topic, topic) != 0) {
		rlog(reg, LOG_DEBUG, "device %s: ignored a message on %s during registration",
		     reg->job.device, msg->topic);
		return;
	}
	reg->answered = true;
	/* the connection can carry nothing else (docs/protocols/aliyun.md §3): it is closed after
	 * this round */
	gw_mosqev_end(reg->ev, NULL);
	r = gw_aliyun_parse_register_push(reg->mqtt_auth, reg->job.cfg->aliyun.product_key,
					  reg->job.device, msg->payload, (size_t)msg->payloadlen,
					  &creds, reason);
	if (r < 0) {
		explicit_bzero(&creds, sizeof(creds));
		finish(reg, FAILED, "MQTT", "malformed %s message: %s", topic,
		       r == -EBADMSG ? reason : strerror(-r));
		return;
	}
	store(reg, "MQTT", &creds);
	explicit_bzero(&creds, sizeof(creds));
}

static void on_log(void *ud, int level, const char *str)
{
	struct gw_aliyun_register *reg = ud;

	rlog(reg, LOG_DEBUG, "device %s: registration: libmosquitto: %s", reg->job.device, str);
}

static void update_interest(struct gw_aliyun_register *reg)
{
	int r = gw_mosqev_update(reg->ev);

	if (r < 0) {
		mqtt_close(reg);
		finish(reg, FAILED, "MQTT",
		       "cannot watch the registration socket: %s", strerror(-r));
	}
}

/* The connection ended before the push, or could not be made. */
static void mqtt_ended(struct gw_aliyun_register *reg, int rc)
{
	int connack = gw_mosqev_connack(reg->ev);
	const char *last_error = gw_mosqev_last_error(reg->ev);
	char why[GW_MOSQEV_ERROR_MAX];

	snprintf(why, sizeof(why), "%s", last_error[0] ? last_error :
				 rc != MOSQ_ERR_SUCCESS ? mosquitto_strerror(rc) :
				 "connection closed");
	mqtt_close(reg);
	/* 4 and 5 are the platform judging the ProductSecret sign, the device or its quota
	 * (docs/protocols/aliyun.md §3, §4): asking again soon will not change that */
	if (connack == 4 || connack == 5)
		finish(reg, REFUSED, "MQTT", "CONNACK %d: %s", connack,
		       mosquitto_connack_string(connack));
	else if (connack)
		finish(reg, FAILED, "MQTT", "CONNACK %d: %s", connack,
		       mosquitto_connack_string(connack));
	else if (reg->connected)
		finish(reg, FAILED, "MQTT",
		       "the platform closed the connection without a %s message (%s)",
		       reg->mqtt_auth == GW_ALIYUN_AUTH_REGNWL ? GW_ALIYUN_TOPIC_REGNWL :
								 GW_ALIYUN_TOPIC_REGISTER, why);
	else
		finish(reg, FAILED, "MQTT", "%s", why);
}

/* Done with the connection: it can carry nothing else (docs/protocols/aliyun.md §3), so
 * DISCONNECT and close. */
static void mqtt_hang_up(struct gw_aliyun_register *reg)
{
	if (reg->ev)
		gw_mosqev_hang_up(reg->ev);
	mqtt_close(reg);
}

/* The round ended the connection: with the push handled that was the plan. */
static void ev_lost(void *ud, int rc)
{
	struct gw_aliyun_register *reg = ud;

	if (reg->answered)
		mqtt_hang_up(reg);
	else
		mqtt_ended(reg, rc);
}

static const struct gw_mosqev_hooks ev_hooks = {
	.connect = on_connect,
	.message = on_message,
	.log = on_log,
	.lost = ev_lost,
};

static void start_mqtt(struct gw_aliyun_register *reg)
{
	const struct gw_config_uplink *c = reg->job.cfg;
	struct gw_aliyun_login l = {
		.auth = reg->mqtt_auth,
		.product_key = c->aliyun.product_key,
		.device_name = reg->job.device,
		.region = c->cloud.region,
		.instance_id = c->aliyun.instance_id,
		.port = c->port,
		.sign_method = gw_aliyun_config_sign_method(c),
		.secret = c->cloud.product_secret,
	};
	struct gw_aliyun_connect conn;
	char reason[GW_ALIYUN_REASON_MAX];
	char rnd[GW_ALIYUN_RANDOM_MAX];
	char why[GW_MOSQEV_ERROR_MAX];
	struct mosquitto *mosq;
	int rc = MOSQ_ERR_NOMEM;
	int r;

	reg->phase = PHASE_MQTT;
	/* the outcome is this transport's now */
	reg->job.untrusted = false;
	r = gw_aliyun_make_random(rnd, sizeof(rnd));
	l.random = rnd;
	if (r >= 0)
		r = gw_aliyun_build_connect(&l, &conn, reason);
	if (r < 0) {
		finish(reg, FAILED, "MQTT", "cannot build the login: %s",
		       r == -EINVAL ? reason : strerror(-r));
		return;
	}
	rlog(reg, LOG_INFO, "device %s: registering over MQTT (authType=%s)", reg->job.device,
	     gw_aliyun_name_auth(reg->mqtt_auth));
	if (gw_mosqev_new(reg->job.event, conn.client_id, true, GW_MOSQEV_NO_TICK, &ev_hooks, reg,
			  &reg->ev) < 0)
		goto fail;
	mosq = gw_mosqev_client(reg->ev);
	rc = mosquitto_username_pw_set(mosq, conn.username, conn.password);
	if (rc != MOSQ_ERR_SUCCESS)
		goto fail;
	rc = mosquitto_tls_set(mosq, c->ca_file, NULL, NULL, NULL, NULL);
	if (rc != MOSQ_ERR_SUCCESS)
		goto fail;
	/* peer and host name verification stay on: the ProductSecret's sign goes over it */
	rc = mosquitto_tls_opts_set(mosq, 1, NULL, NULL);
	if (rc != MOSQ_ERR_SUCCESS)
		goto fail;
	rc = gw_mosqev_connect(reg->ev, c->host ? c->host : conn.host, conn.port, c->keepalive);
	if (rc != MOSQ_ERR_SUCCESS)
		goto fail;
	explicit_bzero(&conn, sizeof(conn));
	/* the platform answers right after CONNACK; a session that hangs is given up */
	gw_cloud_reg_arm(&reg->job, GW_ALIYUN_REGISTER_MQTT_MS);
	update_interest(reg);
	return;
fail:
	explicit_bzero(&conn, sizeof(conn));
	snprintf(why, sizeof(why), "%s", reg->ev && gw_mosqev_last_error(reg->ev)[0] ?
		 gw_mosqev_last_error(reg->ev) : mosquitto_strerror(rc));
	mqtt_close(reg);
	finish(reg, FAILED, "MQTT", "%s", why);
}

/* ---- the object ---- */

static void reg_free(struct gw_aliyun_register *reg)
{
	mqtt_close(reg);
	gw_cloud_reg_free(&reg->job);
}

/* The timer before the outcome: the first transport, or the MQTT deadline. */
static void step(struct gw_cloud_reg *job)
{
	struct gw_aliyun_register *reg = (struct gw_aliyun_register *)job;

	switch (reg->phase) {
	case PHASE_STARTING:
		if (job->cfg->cloud.auth == GW_CLOUD_AUTH_REGISTER &&
		    job->cfg->aliyun.register_via != GW_REGISTER_VIA_MQTT)
			start_https(reg);
		else
			start_mqtt(reg);
		return;
	case PHASE_HTTPS:
		return; /* not armed while the request runs */
	case PHASE_MQTT:
		mqtt_hang_up(reg);
		finish(reg, FAILED, "MQTT", "no %s message within %d s",
		       reg->mqtt_auth == GW_ALIYUN_AUTH_REGNWL ? GW_ALIYUN_TOPIC_REGNWL :
		       GW_ALIYUN_TOPIC_REGISTER, GW_ALIYUN_REGISTER_MQTT_MS / 1000);
		return;
	}
}

static void done(struct gw_cloud_reg *job, const struct gw_cloud_reg_outcome *o)
{
	struct gw_aliyun_register *reg = (struct gw_aliyun_register *)job;
	struct gw_aliyun_register_outcome out = {
		(enum gw_aliyun_register_result)o->result, o->via, o->why, o->cred, o->untrusted,
	};

	mqtt_close(reg);
	reg->done(reg, &out, reg->user_data);
	reg_free(reg);
}

static const struct gw_cloud_reg_hooks hooks = { .step = step, .done = done };

int gw_aliyun_register_start(sd_event *event, struct gw_http *http, struct gw_credstore *store,
			     const struct gw_config_uplink *cfg, const char *device,
			     gw_aliyun_register_fn done_fn, void *user_data,
			     struct gw_aliyun_register **ret)
{
	struct gw_aliyun_register *reg;
	int r;

	if ((cfg->cloud.auth != GW_CLOUD_AUTH_REGISTER &&
	     cfg->cloud.auth != GW_CLOUD_AUTH_REGNWL) ||
	    !cfg->cloud.product_secret || !gw_credstore_name_valid(device) || !done_fn)
		return -EINVAL;
	r = gw_cloud_reg_new(sizeof(*reg), event, http, store, cfg, device, &hooks, (void **)&reg);
	if (r < 0)
		return r;
	reg->mqtt_auth = cfg->cloud.auth == GW_CLOUD_AUTH_REGNWL ? GW_ALIYUN_AUTH_REGNWL :
								   GW_ALIYUN_AUTH_REGISTER;
	reg->done = done_fn;
	reg->user_data = user_data;
	/* iot-auth chains to the same roots as MQTT (docs/protocols/aliyun.md §2): the bundled
	 * ones, unless the administrator named another ca_file */
	reg->job.https_ca_file = gw_cloud_reg_https_ca(cfg->cloud.register_ca_file, cfg->ca_file,
						       GW_ALIYUN_CA_FILE,
						       GW_ALIYUN_REGISTER_CA_FILE);
	*ret = reg;
	return 0;
}

struct gw_aliyun_register *gw_aliyun_register_cancel(struct gw_aliyun_register *reg)
{
	if (!reg)
		return NULL;
	mqtt_hang_up(reg);
	reg_free(reg);
	return NULL;
}
