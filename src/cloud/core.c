/* SPDX-License-Identifier: MIT */
/*
 * The cloud core: the engine of the per-device cloud drivers (the device table, sessions,
 * provisioning, the feed pump, commands, counters and the gw_uplink_ops glue) and the pieces
 * they share. See include/gw/cloud.h.
 */

#include <errno.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core-private.h"
#include "gw/cloudmodel.h"
#include "gw/log.h"

/* ---- the counters ---- */

static const struct {
	const char *name;
	bool feed;     /* of gw_cloudfeed_stats, else of gw_cloud_counters */
	size_t offset;
} counters[] = {
#define F(n) { #n, true, offsetof(struct gw_cloudfeed_stats, n) }
#define C(n) { #n, false, offsetof(struct gw_cloud_counters, n) }
	F(produced), F(acked), F(queued), F(dropped_overflow), F(dropped_enospc),
	F(deadlettered), F(lost_corrupt), F(inflight), F(resent),
	C(rejected), C(connects), C(connection_losses), C(registrations),
	C(registration_failures), C(commands), C(commands_throttled), C(answers_dropped),
	C(too_large), C(model_refused), C(devices), C(online),
#undef F
#undef C
};

static uint64_t counter(const char *name, const struct gw_cloudfeed_stats *feed,
			const struct gw_cloud_counters *c)
{
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		if (strcmp(counters[i].name, name) != 0)
			continue;
		return *(const uint64_t *)((const char *)(counters[i].feed ? (const void *)feed :
							  (const void *)c) +
					   counters[i].offset);
	}
	return 0;
}

void gw_cloud_log_counters(const char *uplink, const char *const *names,
			   const struct gw_cloudfeed_stats *feed, const struct gw_cloud_counters *c)
{
	char line[1024];
	size_t n = 0;

	line[0] = '\0';
	for (size_t i = 0; names[i] && n < sizeof(line); i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s=%llu", i ? " " : "",
				      names[i], (unsigned long long)counter(names[i], feed, c));
	gw_log_uplink(LOG_INFO, uplink, "counters: %s", line);
}

json_t *gw_cloud_counters_json(const char *const *names, const struct gw_cloudfeed_stats *feed,
			       const struct gw_cloud_counters *c)
{
	json_t *o = json_object();

	for (size_t i = 0; o && names[i]; i++)
		if (json_object_set_new(o, names[i],
					json_integer((json_int_t)counter(names[i], feed, c))) < 0) {
			json_decref(o);
			return NULL;
		}
	return o;
}

void gw_cloud_summary(const struct gw_cloudfeed_stats *feed, const struct gw_cloud_counters *c,
		      struct gw_uplink_summary *ret)
{
	ret->sessions = c->devices;
	ret->online = c->online;
	ret->queued = feed->queued;
	ret->inflight = feed->inflight;
	ret->acked = feed->acked;
	ret->rejected = c->rejected;
}

void gw_cloud_status(struct gw_cloudfeed *feed, const char *const *names,
		     const struct gw_cloud_counters *c, json_t *o)
{
	struct gw_cloudfeed_stats fs;
	uint64_t bytes;
	int64_t oldest;

	gw_cloudfeed_get_stats(feed, &fs);
	gw_cloudfeed_backlog(feed, &bytes, &oldest);
	(void)json_object_set_new(o, "backlog_bytes", json_integer((json_int_t)bytes));
	(void)json_object_set_new(o, "oldest_age_ms", json_integer(oldest));
	(void)json_object_set_new(o, "counters", gw_cloud_counters_json(names, &fs, c));
}

/* ---- the feed pump ---- */

bool gw_cloud_pump(struct gw_cloudfeed *feed, const char *uplink,
		   int (*send)(void *user_data, const struct gw_spool_record *rec),
		   void *user_data)
{
	while (gw_cloudfeed_has_room(feed)) {
		struct gw_spool_record rec;
		int r = gw_cloudfeed_next(feed, &rec);

		if (r < 0)
			gw_log_uplink(LOG_ERR, uplink, "cannot read the spool: %s", strerror(-r));
		if (r <= 0)
			break;
		(void)send(user_data, &rec);
	}
	gw_cloudfeed_update_cursor(feed);
	return gw_cloudfeed_inflight(feed) == 0;
}

/* ---- sessions ---- */

const char *gw_cloud_describe_loss(int connack, int rc, const char *last_error,
				   bool tls_from_log, char *buf, size_t size)
{
	if (connack)
		snprintf(buf, size, "the platform refused the connection: %s",
			 mosquitto_connack_string(connack));
	else if (rc == MOSQ_ERR_TLS || (tls_from_log && strstr(last_error, "OpenSSL Error")))
		snprintf(buf, size, "TLS failure: %s",
			 last_error[0] ? last_error : "handshake failed");
	else if (rc == MOSQ_ERR_KEEPALIVE)
		snprintf(buf, size, "no answer from the platform within the keepalive");
	else if (last_error[0])
		snprintf(buf, size, "%s", last_error);
	else
		snprintf(buf, size, "%s", mosquitto_strerror(rc));
	return buf;
}

uint32_t gw_cloud_loss_delay(const struct gw_config_uplink *cfg, uint32_t *backoff_ms,
			     bool was_online, uint64_t connected_at_us, uint32_t stable_s)
{
	if (was_online && gw_now_mono_us() - connected_at_us >= (uint64_t)stable_s * 1000000)
		*backoff_ms = 0;
	*backoff_ms = gw_backoff_next(*backoff_ms, cfg->reconnect_min_ms, cfg->reconnect_max_ms);
	return gw_backoff_jitter(*backoff_ms);
}

/* ---- provisioning: the refusal marker ---- */

long long gw_cloud_secs_until(int64_t at_ms)
{
	int64_t left = at_ms - gw_now_wall_ms();

	return left > 0 ? (long long)((left + 999) / 1000) : 0;
}

void gw_cloud_mark_refused(struct gw_credstore *store, const char *uplink, const char *device,
			   const char *why, struct gw_cred_state *st)
{
	int r = gw_credstore_mark_refused(store, device, why, 0, st);

	if (r < 0) {
		/* no marker: still wait as long as a first refusal would */
		st->next_retry_ms = gw_now_wall_ms() + gw_credstore_retry_after(1);
		gw_log_uplink(LOG_ERR, uplink, "device %s: cannot record the refusal: %s", device,
			      strerror(-r));
	}
}

bool gw_cloud_cred_refused(struct gw_credstore *store, const char *uplink, const char *device,
			   const struct gw_cred *cred, struct gw_cred_state *st)
{
	char reason[GW_CREDSTORE_REASON_MAX];
	int r = gw_credstore_get_state(store, device, st, reason, sizeof(reason));

	if (r < 0) {
		gw_log_uplink(LOG_WARNING, uplink, "device %s: %s", device,
			      reason[0] ? reason : strerror(-r));
		return false;
	}
	return st->status == GW_CRED_STATUS_NEEDS_PROVISIONING &&
	       st->last_attempt_ms >= cred->obtained_at_ms;
}

/* ---- command_rate ---- */

void gw_cloud_throttle_init(struct gw_cloud_throttle *t, const struct gw_config_uplink *cfg)
{
	*t = (struct gw_cloud_throttle){ 0 };
	gw_rate_init_burst(&t->rate, cfg->cloud.command_rate, cfg->cloud.command_burst,
			   gw_now_mono_us());
}

/*
 * The cloud (or whoever holds the broker) must not make the gateway flood a node's serial
 * line, nor its log with refusals: every command that can be answered takes a token, malformed
 * ones too; without one it is answered at once with the code the command path uses for busy,
 * so nothing is lost silently.
 */
bool gw_cloud_throttled(struct gw_cloud_throttle *t, const struct gw_config_uplink *cfg,
			const char *device, const char *what, int code)
{
	uint64_t now = gw_now_mono_us();

	if (gw_rate_take(&t->rate, now) == 0)
		return false;
	t->refused++;
	gw_log_uplink(gw_every(&t->logged_us, now, GW_CLOUD_LIMIT_LOG_US) ? LOG_WARNING : LOG_DEBUG,
		      cfg->name,
		      "device %s: %s answered with code %d: more than "
		      "command_rate = %" PRIu32 " commands a second (command_burst = %" PRIu32
		      ") came from the cloud (%" PRIu64 " refused so far)",
		      device, what, code, cfg->cloud.command_rate, cfg->cloud.command_burst,
		      t->refused);
	return true;
}

/* ---- TLS with a stored client certificate ---- */

/*
 * auth = certificate: libmosquitto takes client certificates only as files, so the stored
 * PEMs go into an SSL_CTX of ours instead. The context does all of the verification itself:
 * libmosquitto 2.0's own verify callback finds its client through an ex_data index it makes
 * only when it builds a context itself, so with a context of ours and its defaults it would
 * refuse every server certificate.
 */
int gw_cloud_tls_ctx(const struct gw_cred *cred, const char *host, const char *ca_file,
		     void **ret, char *why, size_t size)
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

/* ==== the engine ==== */

#define clog gw_cloud_log

static void pump(struct gw_cloud *c);
static void dev_connect(struct gw_cloud_dev *d);

static void notify(struct gw_cloud *c, bool state_changed)
{
	if (c->self)
		gw_uplink_notify(c->self, state_changed);
}

void gw_cloud_core_notify(struct gw_cloud *c, bool state_changed)
{
	notify(c, state_changed);
}

/* The device whose session carries d's messages: a sub-device's gateway, else d. */
static struct gw_cloud_dev *sess(const struct gw_cloud_dev *d)
{
	return d->sub ? d->cloud->gw : (struct gw_cloud_dev *)d;
}

bool gw_cloud_dev_lost(const struct gw_cloud_dev *d)
{
	d = sess(d);
	return d->ev && gw_mosqev_lost(d->ev);
}

int gw_cloud_dev_connack(const struct gw_cloud_dev *d)
{
	return d->ev ? gw_mosqev_connack(d->ev) : 0;
}

const char *gw_cloud_dev_error(const struct gw_cloud_dev *d)
{
	return d->ev ? gw_mosqev_last_error(d->ev) : d->last_error ? d->last_error : "";
}

void gw_cloud_dev_update(struct gw_cloud_dev *d)
{
	int r;

	d = sess(d);
	if (!d->ev)
		return;
	r = gw_mosqev_update(d->ev);
	if (r < 0)
		clog(d->cloud, LOG_ERR, "device %s: cannot watch the MQTT socket: %s", d->name,
		     strerror(-r));
}

void gw_cloud_dev_arm(struct gw_cloud_dev *d, uint64_t delay_ms)
{
	(void)sd_event_source_set_time_relative(d->timer, delay_ms * 1000);
	(void)sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
}

static void dev_arm_wall(struct gw_cloud_dev *d, int64_t at_ms)
{
	int64_t now = gw_now_wall_ms();

	gw_cloud_dev_arm(d, at_ms > now ? (uint64_t)(at_ms - now) : 0);
}

/* The next attempt after a refusal whose retry is at at_ms. */
static void dev_arm_retry(struct gw_cloud_dev *d, int64_t at_ms)
{
	if (d->cloud->ops->retry_whole_s)
		gw_cloud_dev_arm(d, (uint64_t)gw_cloud_secs_until(at_ms) * 1000);
	else
		dev_arm_wall(d, at_ms);
}

void gw_cloud_rate_wake(struct gw_cloud *c, uint64_t wait_us)
{
	uint64_t at = gw_now_mono_us() + wait_us;

	if (c->rate_wake_us && c->rate_wake_us <= at)
		return;
	c->rate_wake_us = at;
	(void)sd_event_source_set_time(c->rate_timer, at);
	(void)sd_event_source_set_enabled(c->rate_timer, SD_EVENT_ONESHOT);
}

/* ---- sessions ---- */

static void dev_teardown(struct gw_cloud_dev *d)
{
	if (d->ev)
		gw_strset(&d->last_error, gw_mosqev_last_error(d->ev));
	d->ev = gw_mosqev_free(d->ev);
	d->mosq = NULL;
	if (d->cloud->ops->session_end)
		d->cloud->ops->session_end(d);
	/* what was in flight waits in the spool and goes out again after the reconnect */
	gw_cloudfeed_requeue(d->cloud->feed, d);
	d->subacked = 0;
	d->state = GW_CLOUD_DEV_IDLE;
	/* the gateway's sub-devices lose their attachment with it */
	if (gw_cloud_dev_is_gateway(d))
		gw_cloud_topo_gateway_lost(d->cloud);
}

/*
 * The stored credential refused at login (the driver says how: CONNACK 4 or 5, or a TLS alert
 * about it): the device was reset, its secret replaced, its certificate revoked. Retrying at
 * once would be refused again, so the refusal is recorded in the store's marker and the device
 * waits for a newer credential, retries the old one slowly, or (reregister_on_refusal with a
 * dynamic auth) registers again when that is due. The credential file stays until a new one is
 * stored. True when the loss was such a refusal.
 */
static bool login_refused(struct gw_cloud_dev *d)
{
	struct gw_cloud *c = d->cloud;
	const struct gw_cloud_ops *ops = c->ops;
	const char *what = ops->cred_name(d);
	char why[GW_CREDSTORE_WHY_MAX + 1], how[GW_CREDSTORE_WHY_MAX - 48];
	struct gw_cred_state st;
	long long left;

	/* the gateway's secret is the configuration's: no marker, the reconnect backoff */
	if (d->state != GW_CLOUD_DEV_CONNECTING || gw_cloud_dev_is_gateway(d) ||
	    !ops->login_refused(d, how, sizeof(how)))
		return false;
	dev_teardown(d);
	ops->cred_forget(d);
	snprintf(why, sizeof(why), "login with the stored %s refused: %s", what, how);
	gw_cloud_mark_refused(c->store, c->cfg->name, d->name, why, &st);
	left = gw_cloud_secs_until(st.next_retry_ms);
	if (ops->refusal_is_error)
		gw_strset(&d->last_error, why);
	if (ops->reregister_on_refusal && ops->dynamic(c->cfg)) {
		clog(c, LOG_WARNING, "device %s: the platform refused its stored %s at login (%s): "
		     "the credential is stale (device reset or secret replaced in the console?); "
		     "registering again in %lld s, keeping the old one until then", d->name, what,
		     how, left);
		dev_arm_wall(d, st.next_retry_ms);
	} else {
		clog(c, LOG_WARNING, "device %s: the platform refused its stored %s at login (%s): "
		     "it needs provisioning (a new %s in %s/%s.json); trying the old one again in "
		     "%lld s", d->name, what, how, ops->new_cred_name, c->cred_dir, d->name, left);
		/* a credential provisioned meanwhile is picked up at the next look */
		gw_cloud_dev_arm(d, left * 1000 < ops->recheck_ms ? (uint64_t)left * 1000 :
								  ops->recheck_ms);
	}
	gw_cloudfeed_rescan(c->feed);
	notify(c, true);
	return true;
}

/* The time until the device may send its next CONNECT, in ms. */
static uint64_t connect_gap_left_ms(const struct gw_cloud_dev *d)
{
	uint64_t now = gw_now_mono_us();
	uint64_t at = d->last_connect_us + (uint64_t)d->cloud->ops->connect_gap_ms * 1000;

	if (!d->last_connect_us || now >= at)
		return 0;
	return (at - now + 999) / 1000;
}

/* Ends the session and schedules the next attempt with backoff, never sooner than the
 * device's CONNECT gap allows. */
static void dev_lost(struct gw_cloud_dev *d, int rc)
{
	struct gw_cloud *c = d->cloud;
	bool was_online = d->state == GW_CLOUD_DEV_ONLINE;
	char why[384];
	uint64_t delay, gap;

	if (login_refused(d))
		return;
	gw_cloud_describe_loss(gw_cloud_dev_connack(d), rc, gw_cloud_dev_error(d),
			       c->ops->tls_from_log, why, sizeof(why));
	c->n.connection_losses += was_online;
	delay = gw_cloud_loss_delay(c->cfg, &d->backoff_ms, was_online, d->connected_at_us,
				    c->ops->stable_s);
	dev_teardown(d);
	gap = connect_gap_left_ms(d);
	if (gap > delay)
		delay = gap;
	clog(c, LOG_WARNING, "device %s: %s: %s; reconnecting in %.1f s", d->name,
	     was_online ? "connection lost" : "connecting failed", why, delay / 1000.0);
	gw_cloud_dev_arm(d, delay);
	/* its records wait now; other devices' records behind them may go on */
	gw_cloudfeed_rescan(c->feed);
	notify(c, true);
}

void gw_cloud_core_dev_online(struct gw_cloud_dev *d)
{
	struct gw_cloud *c = d->cloud;

	d->state = GW_CLOUD_DEV_ONLINE;
	clog(c, LOG_INFO, "device %s: online%s", d->name,
	     d->sub                     ? " through the gateway" :
	     gw_cloud_dev_is_gateway(d) ? " (the gateway)" :
					  "");
	if (gw_cloud_dev_is_gateway(d)) {
		if (c->ops->gateway->online)
			c->ops->gateway->online(d);
		gw_cloud_topo_gateway_online(c);
	} else if (c->ops->online)
		c->ops->online(d);
	gw_cloudfeed_rescan(c->feed);
	notify(c, true);
}

/* The subscriptions of d's own session: the gateway's, or the cloud's. */
static const struct gw_cloud_subs *subs_of(const struct gw_cloud_dev *d)
{
	return gw_cloud_dev_is_gateway(d) ? &d->cloud->ops->gateway->subs : &d->cloud->ops->subs;
}

int gw_cloud_core_subscribe(struct gw_cloud_dev *d, const struct gw_cloud_subs *subs)
{
	char filter[GW_CLOUD_SUBS_MAX][GW_CLOUD_TOPIC_MAX];
	char *filters[GW_CLOUD_SUBS_MAX];
	int r = 0;

	d->subacked = 0;
	for (size_t i = 0; i < subs->n && r >= 0; i++) {
		r = subs->filter(d, i, filter[i], sizeof(filter[i]));
		filters[i] = filter[i];
		/* one SUBSCRIBE each, or one for all of them */
		if (r >= 0 && !subs->together)
			r = mosquitto_subscribe(d->mosq, &d->sub_mid[i], filter[i], subs->qos) ==
					    MOSQ_ERR_SUCCESS ?
				    0 :
				    -EIO;
	}
	if (r >= 0 && subs->together && subs->n)
		r = mosquitto_subscribe_multiple(d->mosq, &d->sub_mid[0], (int)subs->n, filters,
						 subs->qos, 0, NULL) == MOSQ_ERR_SUCCESS ?
			    0 :
			    -EIO;
	return r < 0 ? -EIO : 0;
}

static void on_connect(void *ud, int rc)
{
	struct gw_cloud_dev *d = ud;

	if (rc != 0) {
		/* libmosquitto closes the connection after a refusal */
		return;
	}
	d->connected_at_us = gw_now_mono_us();
	d->cloud->n.connects++;
	if (gw_cloud_core_subscribe(d, subs_of(d)) < 0) {
		gw_mosqev_end(d->ev, subs_of(d)->failed);
		return;
	}
	d->state = GW_CLOUD_DEV_SUBSCRIBING;
}

bool gw_cloud_core_subacked(struct gw_cloud_dev *d, const struct gw_cloud_subs *subs, int mid,
			    int qos_count, const int *granted_qos)
{
	for (size_t i = 0; i < subs->n; i++) {
		/* the i-th of one SUBACK, or the first of its own */
		size_t k = subs->together ? i : 0;

		if (mid != d->sub_mid[subs->together ? 0 : i])
			continue;
		if (k >= (size_t)qos_count || granted_qos[k] == 0x80)
			clog(d->cloud, LOG_WARNING,
			     "device %s: the platform refused the subscription "
			     "to its %s",
			     d->name, subs->what[i]);
		d->subacked |= 1u << i;
	}
	return d->subacked == (1u << subs->n) - 1;
}

static void on_subscribe(void *ud, int mid, int qos_count, const int *granted_qos)
{
	struct gw_cloud_dev *d = ud;

	if (d->state != GW_CLOUD_DEV_SUBSCRIBING) {
		/* the gateway's session carries its sub-devices' subscriptions */
		if (gw_cloud_dev_is_gateway(d) && d->state == GW_CLOUD_DEV_ONLINE)
			gw_cloud_topo_suback(d->cloud, mid, qos_count, granted_qos);
		return;
	}
	if (gw_cloud_core_subacked(d, subs_of(d), mid, qos_count, granted_qos))
		gw_cloud_core_dev_online(d);
}

static void on_publish(void *ud, int mid)
{
	struct gw_cloud_dev *d = ud;

	(void)gw_cloudfeed_puback(d->cloud->feed, d, mid);
}

static void on_message(void *ud, const struct mosquitto_message *msg)
{
	struct gw_cloud_dev *d = ud;

	if (gw_cloud_dev_is_gateway(d))
		d->cloud->ops->gateway->message(d, msg);
	else
		d->cloud->ops->message(d, msg);
}

static void on_log(void *ud, int level, const char *str)
{
	struct gw_cloud_dev *d = ud;

	clog(d->cloud, LOG_DEBUG, "device %s: libmosquitto: %s", d->name, str);
}

static void ev_lost(void *ud, int rc)
{
	struct gw_cloud_dev *d = ud;

	dev_lost(d, rc);
	pump(d->cloud);
}

/* after every socket round and every lost session: send what waits */
static void ev_after(void *ud)
{
	struct gw_cloud_dev *d = ud;

	pump(d->cloud);
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

static void dev_connect(struct gw_cloud_dev *d)
{
	struct gw_cloud *c = d->cloud;
	const struct gw_config_uplink *cfg = c->cfg;
	struct gw_cloud_login l = { 0 };
	char why[GW_MOSQEV_ERROR_MAX] = "";
	int rc = MOSQ_ERR_NOMEM;
	int r;

	if (d->sub) {
		/* its gateway's session carries it */
		gw_cloud_topo_ready(d);
		return;
	}
	gw_strset(&d->last_error, NULL);
	r = gw_cloud_dev_is_gateway(d) ? c->ops->gateway->login(d, &l, why, sizeof(why)) :
					 c->ops->login(d, &l, why, sizeof(why));
	if (r < 0) {
		clog(c, LOG_ERR, "device %s: cannot build its login: %s; retrying in %d s", d->name,
		     why, (int)(c->ops->recheck_ms / 1000));
		c->ops->login_end(d);
		gw_cloud_dev_arm(d, c->ops->recheck_ms);
		return;
	}
	if (gw_mosqev_new(c->event, l.client_id, true, GW_MOSQEV_SAY_CLOSED, &ev_hooks, d,
			  &d->ev) < 0)
		goto fail;
	d->mosq = gw_mosqev_client(d->ev);
	mosquitto_max_inflight_messages_set(d->mosq, cfg->max_inflight);
	rc = mosquitto_username_pw_set(d->mosq, l.username, l.password);
	if (rc != MOSQ_ERR_SUCCESS)
		goto fail;
	rc = c->ops->tls(d, d->mosq);
	if (rc != MOSQ_ERR_SUCCESS)
		goto fail;
	d->state = GW_CLOUD_DEV_CONNECTING;
	d->last_connect_us = gw_now_mono_us();
	rc = gw_mosqev_connect(d->ev, cfg->host ? cfg->host : l.host, l.port, cfg->keepalive);
	if (rc != MOSQ_ERR_SUCCESS)
		goto fail;
	c->ops->login_end(d);
	gw_cloud_dev_update(d);
	return;
fail:
	c->ops->login_end(d);
	dev_lost(d, rc);
}

/* ---- provisioning ---- */

static void dev_register(struct gw_cloud_dev *d);

void gw_cloud_dev_registered(struct gw_cloud_dev *d, const struct gw_cloud_reg_outcome *o)
{
	struct gw_cloud *c = d->cloud;
	const struct gw_cloud_ops *ops = c->ops;
	const char *over = o->via ? " over " : "", *via = o->via ? o->via : "";
	char marker[GW_CREDSTORE_WHY_MAX + 1];
	struct gw_cred_state st;
	uint32_t delay;

	d->reg = NULL;
	d->state = GW_CLOUD_DEV_IDLE;
	switch (o->result) {
	case GW_CLOUD_REG_STORED:
		break;
	case GW_CLOUD_REG_REFUSED:
		/* asking again soon would not change the platform's mind */
		c->n.registration_failures++;
		snprintf(marker, sizeof(marker), "registration%s%s refused: %s", over, via, o->why);
		gw_cloud_mark_refused(c->store, c->cfg->name, d->name, marker, &st);
		clog(c, LOG_WARNING, "device %s: registration refused by the platform (%s)%s%s; no "
		     "credential written; %snext attempt in %lld s%s", d->name, o->why, over, via,
		     ops->refused_needs, gw_cloud_secs_until(st.next_retry_ms), ops->refused_hint);
		dev_arm_retry(d, st.next_retry_ms);
		return;
	case GW_CLOUD_REG_FAILED:
		/* a transport failure or a malformed answer: nothing was issued that we know of */
		c->n.registration_failures++;
		if (o->untrusted)
			/* the registration host does not verify against the trust configured: asking
			 * again soon changes nothing, so back off like a refusal, from
			 * reconnect_max_ms doubling up to its hour; in memory only, so a restart
			 * with a corrected CA file tries at once */
			d->reg_backoff_ms = gw_backoff_next(d->reg_backoff_ms,
							    c->cfg->reconnect_max_ms,
							    (uint32_t)GW_CREDSTORE_RETRY_MAX_MS);
		else
			d->reg_backoff_ms = gw_backoff_next(d->reg_backoff_ms,
							    c->cfg->reconnect_min_ms,
							    c->cfg->reconnect_max_ms);
		delay = gw_backoff_jitter(d->reg_backoff_ms);
		clog(c, LOG_WARNING, "device %s: registration%s%s failed: %s; no credential written; "
		     "retrying in %.1f s", d->name, over, via, o->why, delay / 1000.0);
		gw_cloud_dev_arm(d, delay);
		return;
	}
	/* the register module stored it durably before handing it on */
	if (ops->cred_registered)
		ops->cred_registered(d, o->cred);
	else
		ops->cred_forget(d); /* loaded back: what is used is what survives a restart */
	d->reg_backoff_ms = 0;
	c->n.registrations++;
	clog(c, LOG_INFO, "device %s: registered%s%s; %s stored in %s/%s.json", d->name, over, via,
	     ops->cred_desc(o->cred), c->cred_dir, d->name);
	gw_cloud_dev_arm(d, 0);
}

/* Registers the device unless a refusal is recorded whose retry is not due yet. */
static void dev_register(struct gw_cloud_dev *d)
{
	struct gw_cloud *c = d->cloud;
	char reason[GW_CREDSTORE_REASON_MAX];
	struct gw_cred_state st;
	const char *via = NULL;
	int r;

	/* a sub-device's attempts are not paced as sessions are, its registrations are: the
	 * credential store is read at once, the platform asked one at a time */
	if (d->sub && gw_now_mono_us() < c->next_slot_us) {
		(void)sd_event_source_set_time(d->timer, c->next_slot_us);
		(void)sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
		return;
	}
	if (d->sub)
		c->next_slot_us = gw_now_mono_us() + (uint64_t)c->ops->pace_ms * 1000;
	r = gw_credstore_get_state(c->store, d->name, &st, reason, sizeof(reason));
	if (r == 0 && st.status == GW_CRED_STATUS_NEEDS_PROVISIONING &&
	    st.next_retry_ms > gw_now_wall_ms()) {
		clog(c, LOG_NOTICE, "device %s: registration was refused before (%s); next attempt "
		     "in %lld s", d->name, st.why, gw_cloud_secs_until(st.next_retry_ms));
		dev_arm_retry(d, st.next_retry_ms);
		return;
	}
	r = c->ops->register_start(d, &via);
	if (r < 0) {
		struct gw_cloud_reg_outcome o = {
			.result = GW_CLOUD_REG_FAILED,
			.via = via,
			.why = strerror(-r),
		};

		gw_cloud_dev_registered(d, &o);
		return;
	}
	d->state = GW_CLOUD_DEV_REGISTERING;
	/* a sub-device's registration may use the gateway's session, which has no timeout */
	if (d->sub)
		gw_cloud_dev_arm(d, c->ops->gateway->attach_timeout_ms);
}

/* A loaded credential refused at login after it was obtained: true when it is not used now
 * (its retry is not due, or the device registers again). */
static bool stored_refused(struct gw_cloud_dev *d, struct gw_cred *cred)
{
	struct gw_cloud *c = d->cloud;
	bool dyn = c->ops->reregister_on_refusal && c->ops->dynamic(c->cfg);
	struct gw_cred_state st;

	if (!gw_cloud_cred_refused(c->store, c->cfg->name, d->name, cred, &st) ||
	    (!dyn && st.next_retry_ms <= gw_now_wall_ms()))
		return false;
	gw_credstore_wipe(cred);
	if (st.next_retry_ms > gw_now_wall_ms()) {
		clog(c, dyn ? LOG_NOTICE : LOG_DEBUG, "device %s: its stored %s was refused (%s); "
		     "next attempt in %lld s", d->name, c->ops->stored_name(c->cfg), st.why,
		     gw_cloud_secs_until(st.next_retry_ms));
		if (dyn)
			dev_arm_wall(d, st.next_retry_ms);
		else
			gw_cloud_dev_arm(d, c->ops->recheck_ms);
		return true;
	}
	clog(c, LOG_INFO, "device %s: registering again: its stored credential was refused (%s)",
	     d->name, st.why);
	dev_register(d);
	return true;
}

/* Finds the device's credential: the store first, then registration when cfg registers. */
static void dev_provision(struct gw_cloud_dev *d);

void gw_cloud_core_provision(struct gw_cloud_dev *d)
{
	if (d->cloud->ops->has_cred(d))
		dev_connect(d);
	else
		dev_provision(d); /* a registration it starts is paced (dev_register) */
}

static void dev_provision(struct gw_cloud_dev *d)
{
	struct gw_cloud *c = d->cloud;
	const struct gw_cloud_ops *ops = c->ops;
	char reason[GW_CREDSTORE_REASON_MAX];
	struct gw_cred cred;
	int r;

	r = gw_credstore_load(c->store, d->name, &cred, reason, sizeof(reason));
	if (r == 0) {
		if (reason[0])
			clog(c, LOG_WARNING, "device %s: %s", d->name, reason);
		if (!ops->cred_fits(d, &cred)) {
			gw_credstore_wipe(&cred);
			gw_cloud_dev_arm(d, ops->recheck_ms);
			return;
		}
		if (stored_refused(d, &cred))
			return;
		ops->cred_take(d, &cred);
		gw_credstore_wipe(&cred);
		dev_connect(d);
		return;
	}
	if (r != -ENOENT && r != -EBADMSG) {
		clog(c, LOG_ERR, "device %s: cannot load its credential: %s; %s in %d s", d->name,
		     reason[0] ? reason : strerror(-r), ops->recheck_verb,
		     (int)(ops->recheck_ms / 1000));
		gw_cloud_dev_arm(d, ops->recheck_ms);
		return;
	}
	if (!ops->dynamic(c->cfg)) {
		ops->cred_missing(d, r, reason);
		gw_cloud_dev_arm(d, ops->recheck_ms);
		return;
	}
	if (r == -EBADMSG)
		clog(c, LOG_WARNING, "device %s: %s", d->name, reason);
	dev_register(d);
}

/* Each attempt of a device waits for its CONNECT gap and for the next free pacing slot, so
 * that a gateway with many nodes never opens its sessions (or registers) in one burst. */
static int dev_timer_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_cloud_dev *d = ud;
	struct gw_cloud *c = d->cloud;
	uint64_t now = gw_now_mono_us();
	uint64_t gap;

	if (d->sub) {
		gw_cloud_topo_timer(d);
		return 0;
	}
	gap = connect_gap_left_ms(d);
	if (gap) {
		gw_cloud_dev_arm(d, gap);
		return 0;
	}
	if (now < c->next_slot_us) {
		(void)sd_event_source_set_time(s, c->next_slot_us);
		(void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
		return 0;
	}
	c->next_slot_us = now + (uint64_t)c->ops->pace_ms * 1000;
	/* the gateway's secret is the configuration's */
	if (gw_cloud_dev_is_gateway(d) || c->ops->has_cred(d))
		dev_connect(d);
	else
		dev_provision(d);
	return 0;
}

static struct gw_cloud_dev *dev_find(struct gw_cloud *c, const char *name)
{
	for (size_t i = 0; i < c->n_devs; i++)
		if (strcmp(c->devs[i]->name, name) == 0)
			return c->devs[i];
	return NULL;
}

static bool name_valid(const struct gw_cloud_ops *ops, const char *name)
{
	return (!ops->name_valid || ops->name_valid(name)) && gw_credstore_name_valid(name);
}

#define NAME_RULE "(1..64 of A-Z a-z 0-9 _ . @ -)"

struct gw_cloud_dev *gw_cloud_core_dev_new(struct gw_cloud *c, const char *name, char *why,
					   size_t size)
{
	struct gw_cloud_dev *d;
	int r;

	d = gw_new0(struct gw_cloud_dev, 1);
	d->cloud = c;
	d->priv = c->ops->dev_size ? gw_malloc0(c->ops->dev_size) : NULL;
	snprintf(d->name, sizeof(d->name), "%s", name);
	c->ops->dev_init(d);
	r = sd_event_add_time_relative(c->event, &d->timer, CLOCK_MONOTONIC, 0, 0, dev_timer_cb,
				       d);
	if (r < 0) {
		snprintf(why, size, "cannot arm a timer for device %s: %s", name, strerror(-r));
		c->ops->dev_fini(d);
		free(d->priv);
		free(d);
		return NULL;
	}
	return d;
}

/* A device seen for the first time. NULL with why filled when it cannot have a session. */
static struct gw_cloud_dev *dev_add(struct gw_cloud *c, const char *name, char *why, size_t size)
{
	struct gw_cloud_dev *d;

	if (!name_valid(c->ops, name)) {
		snprintf(why, size, "device name '%s' is not valid for %s " NAME_RULE, name,
			 c->ops->title);
		return NULL;
	}
	if (c->n_devs == c->cfg->cloud.max_devices) {
		snprintf(why, size, "device %s would exceed max_devices (%" PRIu32 ")", name,
			 c->cfg->cloud.max_devices);
		return NULL;
	}
	d = gw_cloud_core_dev_new(c, name, why, size);
	if (!d)
		return NULL;
	c->devs[c->n_devs++] = d;
	if (c->gw) {
		clog(c, LOG_INFO, "device %s: new, a sub-device of gateway %s", name, c->gw->name);
		gw_cloud_topo_dev_added(d);
	} else
		clog(c, LOG_INFO, "device %s: new, starting its session", name);
	return d;
}

void gw_cloud_core_dev_free(struct gw_cloud_dev *d)
{
	if (d->reg)
		d->cloud->ops->register_cancel(d, d->reg);
	d->reg = NULL;
	if (d->ev && d->state == GW_CLOUD_DEV_ONLINE)
		gw_mosqev_hang_up(d->ev); /* a DISCONNECT tells the platform this was intended */
	dev_teardown(d);
	d->timer = sd_event_source_disable_unref(d->timer);
	d->cloud->ops->dev_fini(d);
	free(d->priv);
	free(d->last_error);
	free(d->held_why);
	free(d);
}

/* ---- sending ---- */

/* ---- the thing model ---- */

#define MODEL_LOGGED_MAX 64 /* identifiers whose refusal is logged; the rest only counted */

struct model_run {
	struct gw_cloud *c; /* NULL: a preview, nothing counted or logged */
	const char *device;
	unsigned refused;
	char *note; /* the values left out, "MQ2 (out of range), ..." */
	size_t note_size;
};

static void model_note(struct model_run *run, const char *id, enum gw_thingmodel_refusal reason)
{
	size_t n = strlen(run->note);

	if (n + 1 < run->note_size)
		snprintf(run->note + n, run->note_size - n, "%s%s (%s)", n ? ", " : "", id,
			 gw_thingmodel_refusal_to_string(reason));
}

static bool model_logged(struct gw_cloud *c, const char *id)
{
	for (size_t i = 0; i < c->n_model_logged; i++)
		if (strcmp(c->model_logged[i], id) == 0)
			return true;
	if (c->n_model_logged == MODEL_LOGGED_MAX)
		return true;
	c->model_logged = gw_realloc_array(c->model_logged, c->n_model_logged + 1,
					   sizeof(*c->model_logged));
	c->model_logged[c->n_model_logged++] = gw_strdup(id);
	return false;
}

static void model_refused(const char *id, json_t *value, enum gw_thingmodel_refusal reason,
			  void *user_data)
{
	struct model_run *run = user_data;
	struct gw_cloud *c = run->c;
	char *text;

	run->refused++;
	model_note(run, id, reason);
	if (!c)
		return;
	c->n.model_refused++;
	if (model_logged(c, id))
		return;
	text = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
	gw_cloud_log(c, LOG_WARNING, "thing model %s refuses %s = %s from %s: %s (%s); further "
		     "refusals of %s are counted (model_refused), not logged",
		     c->cfg->cloud.thing_model, id, text ? text : "?", run->device,
		     gw_thingmodel_refusal_to_string(reason),
		     c->cfg->cloud.model_refused == GW_MODEL_DEADLETTER ?
			     "its record goes to the dead-letter file" :
			     "left out",
		     id);
	free(text);
}

/*
 * The uplink's thing model applied to the record o (before the driver builds its message): 0
 * to send it, its refused values left out; -EDOM when it goes to the dead-letter file instead
 * (why always set): its event is not in the model, the model refused every value, any value
 * with thing_model_refused = deadletter, or no memory to convert it.
 */
static int model_apply(const struct gw_config_uplink *cfg, struct model_run *run, json_t *o,
		       char *why, size_t why_size)
{
	const char *event = json_string_value(json_object_get(o, "event"));
	int r;

	if (!cfg->cloud.model || !o)
		return 0;
	r = gw_cloud_model_apply(cfg->cloud.model, o, model_refused, run);
	if (r == -ENOENT) {
		if (run->c)
			run->c->n.model_refused++;
		snprintf(why, why_size, "event '%s' is not in the thing model %s", event ? event : "",
			 cfg->cloud.thing_model);
		return -EDOM;
	}
	if (r == -ENODATA) {
		snprintf(why, why_size, "the thing model %s refuses every value: %s",
			 cfg->cloud.thing_model, run->note);
		return -EDOM;
	}
	if (r > 0 && cfg->cloud.model_refused == GW_MODEL_DEADLETTER) {
		snprintf(why, why_size, "the thing model %s refuses %s (thing_model_refused = "
			 "deadletter)", cfg->cloud.thing_model, run->note);
		return -EDOM;
	}
	if (r == -ENOMEM) {
		snprintf(why, why_size, "out of memory converting it with the thing model %s",
			 cfg->cloud.thing_model);
		return -EDOM;
	}
	/* -EBADMSG (no params): the driver's build says so */
	return 0;
}

/* 1: handed to libmosquitto; 0: waits for its device or its rate, or was dead-lettered. */
static int send_record(void *ud, const struct gw_spool_record *rec)
{
	struct gw_cloud *c = ud;
	const struct gw_cloud_ops *ops = c->ops;
	struct gw_payload_view v;
	char topic[GW_CLOUD_TOPIC_MAX];
	char why[256];
	char *payload = NULL;
	size_t len = 0;
	struct gw_cloud_dev *d;
	json_error_t jerr;
	json_t *o;
	uint64_t wait;
	int mid = 0;
	int rc;

	if (gw_payload_unpack(rec->payload, rec->len, rec->type, &v) < 0) {
		gw_cloudfeed_deadletter(c->feed, rec->seq, "not a record this version can send");
		return 0;
	}
	d = dev_find(c, v.device);
	if (!d)
		d = dev_add(c, v.device, why, sizeof(why));
	if (!d) {
		gw_cloudfeed_deadletter(c->feed, rec->seq, why);
		return 0;
	}
	if (d->sub && gw_cloud_topo_record(d, why, sizeof(why)) < 0) {
		gw_cloudfeed_deadletter(c->feed, rec->seq, why);
		return 0;
	}
	/* the records of a device that cannot send wait unparsed: every device that comes
	 * online has the waiting records read again, and with hundreds of them parsing each
	 * every time was most of the daemon's allocations */
	if (d->state != GW_CLOUD_DEV_ONLINE || gw_cloud_dev_lost(d)) {
		gw_cloudfeed_wait(c->feed, rec->seq);
		return 0;
	}
	o = json_loadb(v.json, v.json_len, 0, &jerr);
	if (ops->record_seen && ops->record_seen(d, o, why, sizeof(why)) < 0) {
		json_decref(o);
		gw_cloudfeed_deadletter(c->feed, rec->seq, why);
		return 0;
	}
	wait = ops->rate_take(d);
	if (wait) {
		json_decref(o);
		gw_cloudfeed_wait(c->feed, rec->seq);
		if (wait != GW_CLOUD_WAIT_QUEUED)
			gw_cloud_rate_wake(c, wait);
		return 0;
	}
	{
		char note[256] = "";
		struct model_run run = { c, d->name, 0, note, sizeof(note) };

		rc = model_apply(c->cfg, &run, o, why, sizeof(why));
	}
	if (rc < 0) {
		json_decref(o);
		ops->rate_give_back(d);
		gw_cloudfeed_deadletter(c->feed, rec->seq, why);
		return 0;
	}
	rc = ops->build(c->cfg, rec, &v, o, d->name, topic, sizeof(topic), &payload, &len, why,
			sizeof(why));
	json_decref(o);
	if (rc < 0) {
		ops->rate_give_back(d);
		if (rc == -EMSGSIZE)
			c->n.too_large++;
		gw_cloudfeed_deadletter(c->feed, rec->seq, why);
		return 0;
	}
	rc = mosquitto_publish(d->mosq, &mid, topic, (int)len, payload, 1, false);
	free(payload);
	if (rc != MOSQ_ERR_SUCCESS && ops->give_back_unsent)
		ops->rate_give_back(d);
	if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST || rc == MOSQ_ERR_ERRNO) {
		/* the session is going away: its io or tick callback tears it down */
		gw_mosqev_end(sess(d)->ev, NULL);
		gw_cloudfeed_wait(c->feed, rec->seq);
		return 0;
	}
	if (rc != MOSQ_ERR_SUCCESS) {
		snprintf(why, sizeof(why), "libmosquitto refused it: %s", mosquitto_strerror(rc));
		gw_cloudfeed_deadletter(c->feed, rec->seq, why);
		return 0;
	}
	/* its PUBACK comes on the session that carried it */
	gw_cloudfeed_sent(c->feed, rec->seq, mid, sess(d));
	if (d->sub)
		gw_cloud_topo_sent(d);
	gw_cloud_dev_update(d);
	return 1;
}

static void pump(struct gw_cloud *c)
{
	if (gw_cloud_pump(c->feed, c->cfg->name, send_record, c))
		notify(c, false);
}

void gw_cloud_core_pump(struct gw_cloud *c)
{
	pump(c);
}

/* The first spent rate frees: the driver's queued messages go first (rate_tick), then the
 * records that waited are read again (with those of offline devices, which wait on). */
static int rate_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_cloud *c = ud;

	c->rate_wake_us = 0;
	for (size_t i = 0; c->ops->rate_tick && i < c->n_devs; i++) {
		struct gw_cloud_dev *d = c->devs[i];

		if (d->state == GW_CLOUD_DEV_ONLINE && !gw_cloud_dev_lost(d) && d->mosq)
			c->ops->rate_tick(d);
	}
	gw_cloudfeed_rescan(c->feed);
	pump(c);
	return 0;
}

/* ---- commands from the cloud ---- */

static int command_code(const struct gw_cloud_codes *codes, enum gw_command_status s)
{
	switch (s) {
	case GW_COMMAND_REPLIED:
		return codes->ok;
	case GW_COMMAND_ABSENT:
	case GW_COMMAND_PORT_CLOSED:
	case GW_COMMAND_NODE_GONE:
		return codes->not_found;
	case GW_COMMAND_NO_CHANNEL:
		return codes->no_channel;
	case GW_COMMAND_FAILED:
		return codes->failed;
	case GW_COMMAND_BUSY:
		return codes->throttled;
	case GW_COMMAND_INVALID:
		return codes->invalid;
	case GW_COMMAND_TIMEOUT:
	case GW_COMMAND_CANCELLED:
		break;
	}
	return codes->unknown;
}

static void cmd_done(const struct gw_command_result *res, void *ud)
{
	struct gw_cloud_cmd *c = ud;
	struct gw_cloud_dev *d = c->d;
	const struct gw_cloud_ops *ops = d->cloud->ops;
	char msg[GW_COMMAND_REASON_MAX + 64];

	if (res->status == GW_COMMAND_REPLIED) {
		/* the node's 200 is the cloud's success; any other code is passed on as is */
		int code = res->code == 200 ? ops->codes.ok : (int)res->code;

		clog(d->cloud, res->code == 200 ? LOG_INFO : LOG_NOTICE, "device %s: %s: node %s "
		     "answered with code %u in %llu ms", d->name, c->what, res->node, res->code,
		     (unsigned long long)res->elapsed_ms);
		snprintf(msg, sizeof(msg), "the node answered with code %u", res->code);
		ops->answer(c, code, code == ops->codes.ok ? NULL : msg, res->params);
	} else if (c->stays_pending) {
		/* not cleared: the next session brings it again */
		clog(d->cloud, LOG_WARNING, "device %s: %s did not reach the node (%s); it stays "
		     "pending on the platform", d->name, c->what, res->reason);
	} else {
		int code = command_code(&ops->codes, res->status);

		clog(d->cloud, LOG_WARNING, "device %s: %s answered with code %d: %s", d->name,
		     c->what, code, res->reason);
		ops->answer(c, code, res->reason, NULL);
	}
	free(c);
}

void gw_cloud_cmd_refuse(struct gw_cloud_cmd *c, int code, const char *reason)
{
	clog(c->d->cloud, LOG_WARNING, "device %s: %s answered with code %d: %s", c->d->name,
	     c->what, code, reason);
	c->d->cloud->ops->answer(c, code, reason, NULL);
	free(c);
}

/* The cloud (or whoever holds the broker) must not make the gateway flood a node's serial
 * line: every command that can be answered takes a token (gw_cloud_throttled()), and is
 * answered at once with the code for busy without one. */
bool gw_cloud_cmd_throttled(struct gw_cloud_cmd *c)
{
	struct gw_cloud *cl = c->d->cloud;

	if (!gw_cloud_throttled(&cl->throttle, cl->cfg, c->d->name, c->what,
				cl->ops->codes.throttled))
		return false;
	cl->n.commands++;
	cl->ops->answer(c, cl->ops->codes.throttled, GW_CLOUD_THROTTLED_TEXT, NULL);
	free(c);
	return true;
}

void gw_cloud_cmd_send(struct gw_cloud_cmd *c, enum gw_command_kind kind, const char *name,
		       json_t *params)
{
	struct gw_cloud *cl = c->d->cloud;

	if (!cl->commands.send) {
		if (c->stays_pending)
			free(c);
		else
			gw_cloud_cmd_refuse(c, cl->ops->codes.no_path,
					    "this gateway has no command path");
		return;
	}
	/* completes through cmd_done, possibly before it returns */
	cl->commands.send(cl->commands.user_data, c->d->name, kind, name, params,
			  cl->ops->command_timeout_ms, cmd_done, c);
}

/* ---- the uplink (gw/uplink.h) ---- */

void gw_cloud_uplink_free(void *impl)
{
	struct gw_cloud *c = impl;

	if (!c)
		return;
	c->self = NULL;
	for (size_t i = 0; i < c->n_devs; i++)
		gw_cloud_core_dev_free(c->devs[i]);
	c->n_devs = 0;
	/* the gateway last: its session's end detaches nothing any more */
	if (c->gw)
		gw_cloud_core_dev_free(c->gw);
	c->gw = NULL;
	gw_cloud_topo_free(c);
	c->rate_timer = sd_event_source_disable_unref(c->rate_timer);
	/* saves the cursor */
	gw_cloudfeed_free(c->feed);
	gw_http_free(c->http);
	free(c->priv);
	gw_credstore_close(c->store);
	free(c->cred_dir);
	free(c->devs);
	for (size_t i = 0; i < c->n_model_logged; i++)
		free(c->model_logged[i]);
	free(c->model_logged);
	sd_event_unref(c->event);
	free(c);
}

int gw_cloud_uplink_new(const struct gw_uplink_env *env, const struct gw_cloud_ops *ops,
			void **ret)
{
	const struct gw_config_uplink *cfg = env->cfg;
	struct gw_cloud *c = gw_new0(struct gw_cloud, 1);
	char reason[GW_CREDSTORE_REASON_MAX];
	int r;

	c->ops = ops;
	c->event = sd_event_ref(env->event);
	c->cfg = cfg;
	c->self = env->self;
	c->commands = env->commands;
	c->priv = ops->size ? gw_malloc0(ops->size) : NULL;
	gw_cloud_throttle_init(&c->throttle, cfg);
	c->devs = gw_new0(struct gw_cloud_dev *, cfg->cloud.max_devices);
	if (asprintf(&c->cred_dir, "%s/credentials/%s", env->state_dir, cfg->name) < 0) {
		c->cred_dir = NULL;
		r = -ENOMEM;
		goto fail;
	}
	r = gw_credstore_open(c->cred_dir, &c->store, reason, sizeof(reason));
	if (r < 0) {
		clog(c, LOG_ERR, "cannot open the credential store %s: %s", c->cred_dir,
		     reason[0] ? reason : strerror(-r));
		goto fail;
	}
	r = gw_cloudfeed_new(env->event, env->spool, cfg->name, cfg->max_inflight,
			     cfg->start_from == GW_START_FROM_OLDEST, &c->feed);
	if (r < 0)
		goto fail;
	r = sd_event_add_time_relative(env->event, &c->rate_timer, CLOCK_MONOTONIC, 1000000, 1000,
				       rate_cb, c);
	if (r < 0)
		goto fail;
	(void)sd_event_source_set_enabled(c->rate_timer, SD_EVENT_OFF);
	if (ops->dynamic(cfg)) {
		r = gw_http_new(env->event, &c->http);
		if (r < 0) {
			clog(c, LOG_ERR, "cannot set up HTTPS for registration: %s", strerror(-r));
			goto fail;
		}
	}
	r = ops->init ? ops->init(c) : 0;
	if (r < 0)
		goto fail;
	if (cfg->cloud.topology == GW_TOPOLOGY_GATEWAY) {
		r = ops->gateway ? gw_cloud_topo_new(c, env->state_dir) : -EOPNOTSUPP;
		if (r < 0)
			goto fail;
	}
	*ret = c;
	return 0;
fail:
	gw_cloud_uplink_free(c);
	return r;
}

int gw_cloud_uplink_start(void *impl)
{
	pump(impl);
	return 0;
}

void gw_cloud_uplink_kick(void *impl, uint64_t seq)
{
	pump(impl);
}

int gw_cloud_uplink_save(void *impl)
{
	struct gw_cloud *c = impl;

	return gw_cloudfeed_save(c->feed);
}

/* only online sessions carry records in flight */
size_t gw_cloud_uplink_draining(const void *impl)
{
	const struct gw_cloud *c = impl;

	return gw_cloudfeed_inflight(c->feed);
}

static void get_counters(const struct gw_cloud *c, struct gw_cloudfeed_stats *fs,
			 struct gw_cloud_counters *ret)
{
	gw_cloudfeed_get_stats(c->feed, fs);
	*ret = c->n;
	ret->commands_throttled = c->throttle.refused;
	ret->devices = c->n_devs;
	for (size_t i = 0; i < c->n_devs; i++)
		ret->online += c->devs[i]->state == GW_CLOUD_DEV_ONLINE;
}

void gw_cloud_uplink_summary(const void *impl, struct gw_uplink_summary *ret)
{
	const struct gw_cloud *c = impl;
	struct gw_cloudfeed_stats fs;
	struct gw_cloud_counters n;

	get_counters(impl, &fs, &n);
	gw_cloud_summary(&fs, &n, ret);
	if (c->gw) {
		/* one MQTT session, the gateway's; the sub-devices are in the status' devices */
		ret->sessions = 1;
		ret->online = c->gw->state == GW_CLOUD_DEV_ONLINE;
	}
}

void gw_cloud_uplink_log_counters(const void *impl)
{
	const struct gw_cloud *c = impl;
	struct gw_cloudfeed_stats fs;
	struct gw_cloud_counters n;

	get_counters(c, &fs, &n);
	gw_cloud_log_counters(c->cfg->name, c->ops->log_counters, &fs, &n);
}

static json_t *dev_status(struct gw_cloud_dev *d)
{
	static const char *const states[] = {
		[GW_CLOUD_DEV_IDLE] = "idle",
		[GW_CLOUD_DEV_REGISTERING] = "registering",
		[GW_CLOUD_DEV_CONNECTING] = "connecting",
		[GW_CLOUD_DEV_SUBSCRIBING] = "subscribing",
		[GW_CLOUD_DEV_ONLINE] = "online",
		[GW_CLOUD_DEV_ATTACHING] = "attaching",
	};
	json_t *o;

	if (!d->sub)
		return gw_cloudfeed_device_status(d->cloud->store, d->name, states[d->state],
						  d->cloud->ops->has_cred(d),
						  gw_cloud_dev_error(d));
	o = gw_cloudfeed_device_status(d->cloud->store, d->name, gw_cloud_topo_dev_state(d),
				       d->cloud->ops->has_cred(d), gw_cloud_dev_error(d));
	if (o)
		gw_cloud_topo_dev_status(d, o);
	return o;
}

void gw_cloud_uplink_status(void *impl, json_t *o)
{
	struct gw_cloud *c = impl;
	struct gw_cloudfeed_stats fs;
	struct gw_cloud_counters n;
	json_t *devs = json_array();

	get_counters(c, &fs, &n);
	for (size_t i = 0; i < c->n_devs; i++)
		(void)json_array_append_new(devs, dev_status(c->devs[i]));
	(void)json_object_set_new(o, "devices", devs);
	gw_cloud_status(c->feed, c->ops->status_counters, &n, o);
	if (c->gw)
		gw_cloud_topo_status(c, o);
	if (c->ops->status)
		c->ops->status(c, o);
}

/* What send_record() would publish for rec, for sensorgwctl decode. */
int gw_cloud_uplink_preview(const struct gw_cloud_ops *ops, const struct gw_config_uplink *cfg,
			    const struct gw_spool_record *rec, char *topic, size_t topic_size,
			    char **payload, size_t *len, char *why, size_t why_size)
{
	struct gw_payload_view v;
	char note[256] = "";
	struct model_run run = { NULL, NULL, 0, note, sizeof(note) };
	json_error_t jerr;
	json_t *o;
	int r;

	if (gw_payload_unpack(rec->payload, rec->len, rec->type, &v) < 0) {
		snprintf(why, why_size, "not a record this version can send");
		return -EBADMSG;
	}
	run.device = v.device;
	if (!name_valid(ops, v.device)) {
		snprintf(why, why_size, "device name '%s' is not valid for %s " NAME_RULE, v.device,
			 ops->title);
		return -EINVAL;
	}
	o = json_loadb(v.json, v.json_len, 0, &jerr);
	r = model_apply(cfg, &run, o, why, why_size);
	if (r >= 0)
		r = ops->build(cfg, rec, &v, o, v.device, topic, topic_size, payload, len, why,
			       why_size);
	json_decref(o);
	/* on success, why names what the thing model left out (empty: nothing) */
	if (r >= 0)
		snprintf(why, why_size, "%s", note);
	return r;
}

int gw_cloud_record_fields(json_t *o, const struct gw_payload_view *v, int64_t replay_ms,
			   json_t **params, int64_t *time_ms, const char **event, char *why,
			   size_t why_size)
{
	json_t *ts = json_object_get(o, "ts");

	*params = json_object_get(o, "params");
	*event = json_string_value(json_object_get(o, "event"));
	if (!json_is_object(*params) || !json_is_integer(ts)) {
		snprintf(why, why_size, "its payload has no params object or no ts");
		return -EBADMSG;
	}
	*time_ms = json_integer_value(ts);
	/* live data is stamped by the platform; a replayed reading keeps its time */
	if (v->type != GW_FRAME_EVENT && gw_now_wall_ms() - *time_ms <= replay_ms)
		*time_ms = -1;
	return 0;
}
