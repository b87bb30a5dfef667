/* SPDX-License-Identifier: MIT */
/*
 * The cloud core: the engine pieces the per-device cloud drivers share. See
 * include/gw/cloud.h.
 */

#include <errno.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <stdio.h>
#include <string.h>

#include "gw/cloud.h"
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
	C(too_large), C(devices), C(online),
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
	gw_rate_init_burst(&t->rate, cfg->command_rate, cfg->command_burst, gw_now_mono_us());
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
	gw_log_uplink(gw_every(&t->logged_us, now, GW_CLOUD_LIMIT_LOG_US) ? LOG_WARNING :
		      LOG_DEBUG, cfg->name, "device %s: %s answered with code %d: more than "
		      "command_rate = %" PRIu32 " commands a second (command_burst = %" PRIu32
		      ") came from the cloud (%" PRIu64 " refused so far)", device, what, code,
		      cfg->command_rate, cfg->command_burst, t->refused);
	return true;
}
