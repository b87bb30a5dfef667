/* SPDX-License-Identifier: MIT */
/*
 * The cloud core (gw/cloud.h) without a broker: the counters' table as the log line and the
 * status show it, the reason of a lost session, the reconnect backoff, command_rate and the
 * refusal marker of the credential store; the feed reading a record again after records behind
 * it were acknowledged; and the engine against a fake gw_cloud_ops: the command path and its
 * answers, the outcome of a registration, the preview, the registration job (gw/cloudreg.h).
 */

#include <check.h>
#include <errno.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../helpers/ckrun.h"
#include "gw/cloud.h"
#include "gw/cloudreg.h"
#include "gw/log.h"

static const struct gw_cloudfeed_stats feed = {
	.produced = 10, .acked = 6, .queued = 2, .dropped_overflow = 1, .deadlettered = 1,
	.inflight = 2, .resent = 3,
};
static const struct gw_cloud_counters counters = {
	.rejected = 1, .connects = 4, .connection_losses = 3, .commands = 7,
	.commands_throttled = 5, .too_large = 9, .devices = 2, .online = 1,
};

/* Runs fn with stderr going to a file; returns what it wrote (malloc'd). */
static char *capture_stderr(void (*fn)(void))
{
	char path[] = "/tmp/test-cloud-core-XXXXXX";
	int fd = mkstemp(path);
	int saved = dup(2);
	char *buf = calloc(1, 4096);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	dup2(fd, 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, buf, 4095, 0);
	ck_assert_int_gt(n, 0);
	close(fd);
	unlink(path);
	return buf;
}

static void log_tencent_order(void)
{
	static const char *const names[] = { "produced", "rejected", "too_large", "online",
					     "commands_throttled", NULL };

	gw_cloud_log_counters("tc", names, &feed, &counters);
}

START_TEST(test_counters_log_line)
{
	char *out = capture_stderr(log_tencent_order);

	ck_assert_ptr_nonnull(strstr(out, "counters: produced=10 rejected=1 too_large=9 online=1 "
				     "commands_throttled=5"));
	free(out);
}
END_TEST

START_TEST(test_counters_json)
{
	static const char *const names[] = { "acked", "resent", "connects", "answers_dropped",
					     NULL };
	json_t *o = gw_cloud_counters_json(names, &feed, &counters);

	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(json_object_size(o), 4);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "acked")), 6);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "resent")), 3);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "connects")), 4);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "answers_dropped")), 0);
	json_decref(o);
}
END_TEST

START_TEST(test_summary)
{
	struct gw_uplink_summary s;

	gw_cloud_summary(&feed, &counters, &s);
	ck_assert_uint_eq(s.sessions, 2);
	ck_assert_uint_eq(s.online, 1);
	ck_assert_uint_eq(s.queued, 2);
	ck_assert_uint_eq(s.inflight, 2);
	ck_assert_uint_eq(s.acked, 6);
	ck_assert_uint_eq(s.rejected, 1);
}
END_TEST

START_TEST(test_describe_loss)
{
	char buf[256];

	ck_assert_str_eq(gw_cloud_describe_loss(5, MOSQ_ERR_SUCCESS, "", false, buf, sizeof(buf)),
			 "the platform refused the connection: Connection Refused: not "
			 "authorised.");
	ck_assert_str_eq(gw_cloud_describe_loss(0, MOSQ_ERR_TLS, "", false, buf, sizeof(buf)),
			 "TLS failure: handshake failed");
	/* Tencent: an OpenSSL line in the log is a TLS failure whatever the return code */
	ck_assert_str_eq(gw_cloud_describe_loss(0, MOSQ_ERR_CONN_LOST, "OpenSSL Error[0]: x", true,
						buf, sizeof(buf)),
			 "TLS failure: OpenSSL Error[0]: x");
	ck_assert_str_eq(gw_cloud_describe_loss(0, MOSQ_ERR_CONN_LOST, "OpenSSL Error[0]: x",
						false, buf, sizeof(buf)),
			 "OpenSSL Error[0]: x");
	ck_assert_str_eq(gw_cloud_describe_loss(0, MOSQ_ERR_KEEPALIVE, "x", false, buf,
						sizeof(buf)),
			 "no answer from the platform within the keepalive");
	ck_assert_str_eq(gw_cloud_describe_loss(0, MOSQ_ERR_NOMEM, "", false, buf, sizeof(buf)),
			 mosquitto_strerror(MOSQ_ERR_NOMEM));
}
END_TEST

START_TEST(test_loss_delay)
{
	struct gw_config_uplink cfg = { .reconnect_min_ms = 1000, .reconnect_max_ms = 8000 };
	uint32_t backoff = 0;
	uint32_t d;

	d = gw_cloud_loss_delay(&cfg, &backoff, false, 0, 30);
	ck_assert_uint_eq(backoff, 1000);
	ck_assert_uint_le(d, 1000);
	for (int i = 0; i < 10; i++)
		(void)gw_cloud_loss_delay(&cfg, &backoff, true, gw_now_mono_us(), 30);
	ck_assert_uint_eq(backoff, 8000);
	/* a session up for stable_s starts from the minimum again */
	(void)gw_cloud_loss_delay(&cfg, &backoff, true, gw_now_mono_us() - 31000000ULL, 30);
	ck_assert_uint_eq(backoff, 1000);
}
END_TEST

START_TEST(test_throttle)
{
	struct gw_config_uplink cfg = { .name = "t",
					.cloud.command_rate = 1,
					.cloud.command_burst = 3 };
	struct gw_cloud_throttle t;
	int refused = 0;

	gw_log_set_level(LOG_ERR);
	gw_cloud_throttle_init(&t, &cfg);
	for (int i = 0; i < 10; i++)
		refused += gw_cloud_throttled(&t, &cfg, "dev1", "control 1", 429);
	ck_assert_int_eq(refused, 7);
	ck_assert_uint_eq(t.refused, 7);
	/* command_rate = 0: no limit */
	cfg.cloud.command_rate = 0;
	gw_cloud_throttle_init(&t, &cfg);
	for (int i = 0; i < 100; i++)
		ck_assert(!gw_cloud_throttled(&t, &cfg, "dev1", "control 1", 429));
}
END_TEST

START_TEST(test_refusal_marker)
{
	char dir[] = "/tmp/test-cloud-core-XXXXXX";
	char reason[GW_CREDSTORE_REASON_MAX];
	struct gw_credstore *store = NULL;
	struct gw_cred_state st;
	struct gw_cred cred = { .obtained_at_ms = gw_now_wall_ms() - 1000 };
	char cmd[128];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(gw_credstore_open(dir, &store, reason, sizeof(reason)), 0);
	ck_assert(!gw_cloud_cred_refused(store, "t", "dev1", &cred, &st));
	gw_cloud_mark_refused(store, "t", "dev1", "login refused", &st);
	ck_assert_int_gt(gw_cloud_secs_until(st.next_retry_ms), 0);
	ck_assert(gw_cloud_cred_refused(store, "t", "dev1", &cred, &st));
	ck_assert_str_eq(st.why, "login refused");
	/* a credential obtained after the refusal wins */
	cred.obtained_at_ms = gw_now_wall_ms() + 1000;
	ck_assert(!gw_cloud_cred_refused(store, "t", "dev1", &cred, &st));
	ck_assert_int_eq(gw_cloud_secs_until(gw_now_wall_ms() - 5000), 0);
	gw_credstore_close(store);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* A record that waited for its device is read again and dead-lettered after the records
 * behind it were acknowledged (a sub-device refused while others went on): the cursor passes
 * them, and they are neither read nor counted a second time. */
START_TEST(test_feed_deadletter_after_acks)
{
	char dir[] = "/tmp/test-cloud-core-XXXXXX";
	char spool_dir[64], cmd[128];
	struct gw_spool_options o = { .dir = spool_dir };
	struct gw_spool *spool = NULL;
	struct gw_cloudfeed *f = NULL;
	struct gw_cloudfeed_stats st;
	struct gw_spool_record rec;
	sd_event *event = NULL;
	int owner = 0;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(spool_dir, sizeof(spool_dir), "%s/spool", dir);
	ck_assert_int_eq(gw_spool_open(&o, &spool), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(gw_spool_append(spool, 1, 1, "x", 1, NULL), 0);
	ck_assert_int_ge(sd_event_new(&event), 0);
	ck_assert_int_eq(gw_cloudfeed_new(event, spool, "t", 8, true, &f), 0);

	/* 1 waits for its device; 2 and 3 are sent and acknowledged */
	ck_assert_int_eq(gw_cloudfeed_next(f, &rec), 1);
	ck_assert_uint_eq(rec.seq, 1);
	gw_cloudfeed_wait(f, rec.seq);
	for (uint64_t seq = 2; seq <= 3; seq++) {
		ck_assert_int_eq(gw_cloudfeed_next(f, &rec), 1);
		ck_assert_uint_eq(rec.seq, seq);
		gw_cloudfeed_sent(f, rec.seq, (int)seq, &owner);
	}
	gw_cloudfeed_update_cursor(f);
	ck_assert(gw_cloudfeed_puback(f, &owner, 2));
	ck_assert(gw_cloudfeed_puback(f, &owner, 3));

	/* its device is refused: read again, dead-lettered; 4 comes next */
	gw_cloudfeed_rescan(f);
	ck_assert_int_eq(gw_cloudfeed_next(f, &rec), 1);
	ck_assert_uint_eq(rec.seq, 1);
	gw_cloudfeed_deadletter(f, rec.seq, "refused");
	ck_assert_int_eq(gw_cloudfeed_next(f, &rec), 1);
	ck_assert_uint_eq(rec.seq, 4);
	ck_assert_int_eq(gw_cloudfeed_next(f, &rec), 0);
	gw_cloudfeed_get_stats(f, &st);
	ck_assert_uint_eq(st.produced, 4);
	ck_assert_uint_eq(st.acked, 2);
	ck_assert_uint_eq(st.deadlettered, 1);
	ck_assert_uint_eq(st.queued, 1);

	gw_cloudfeed_free(f);
	sd_event_unref(event);
	gw_spool_close(spool);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- the engine against a fake cloud ---- */

static struct {
	int answers;
	int code;
	char message[256];
	bool data;
	int built;
	bool built_json;
	int registered;
	int forgot;
} fake;

static void fake_answer(struct gw_cloud_cmd *c, int code, const char *message, json_t *data)
{
	fake.answers++;
	fake.code = code;
	snprintf(fake.message, sizeof(fake.message), "%s", message ? message : "(none)");
	fake.data = data != NULL;
}

static int fake_build(const struct gw_config_uplink *cfg, const struct gw_spool_record *rec,
		      const struct gw_payload_view *v, json_t *o, const char *device, char *topic,
		      size_t size, char **payload, size_t *len, char *why, size_t why_size)
{
	fake.built++;
	fake.built_json = o != NULL;
	snprintf(topic, size, "fake/%s", device);
	*payload = strdup("x");
	*len = 1;
	return 0;
}

static bool fake_name_valid(const char *name)
{
	return strchr(name, 'x') == NULL;
}

static bool fake_dynamic(const struct gw_config_uplink *cfg)
{
	return true;
}

static void fake_cred_forget(struct gw_cloud_dev *d)
{
	fake.forgot++;
}

static void fake_cred_registered(struct gw_cloud_dev *d, const struct gw_cred *cred)
{
	fake.registered++;
}

static const char *fake_cred_desc(const struct gw_cred *cred)
{
	return "secret";
}

static const struct gw_cloud_ops fake_ops = {
	.title = "Fake",
	.recheck_ms = 60000,
	.name_valid = fake_name_valid,
	.build = fake_build,
	.dynamic = fake_dynamic,
	.cred_forget = fake_cred_forget,
	.cred_registered = fake_cred_registered,
	.cred_desc = fake_cred_desc,
	.refused_needs = "",
	.refused_hint = " (hint)",
	.answer = fake_answer,
	.codes = { .ok = 0, .not_found = 404, .no_channel = 501, .failed = 500, .throttled = 429,
		   .invalid = 400, .unknown = 504, .no_path = 503 },
};

static struct gw_command_result next_result;

/* The gateway's command path, answering at once with next_result. */
static int fake_send(void *ud, const char *device, enum gw_command_kind kind, const char *name,
		     json_t *params, uint32_t timeout_ms, gw_command_done_fn done, void *done_ud)
{
	done(&next_result, done_ud);
	return 0;
}

static struct gw_cloud_cmd *new_cmd(struct gw_cloud_dev *d, bool pending)
{
	struct gw_cloud_cmd *c = calloc(1, sizeof(*c));

	c->d = d;
	c->stays_pending = pending;
	snprintf(c->what, sizeof(c->what), "control 1");
	return c;
}

START_TEST(test_engine_commands)
{
	struct gw_config_uplink cfg = { .name = "fake", .cloud.command_rate = 0 };
	struct gw_cloud c = { .ops = &fake_ops, .cfg = &cfg };
	struct gw_cloud_dev d = { .cloud = &c, .name = "dev1" };

	gw_log_set_level(LOG_ERR);
	gw_cloud_throttle_init(&c.throttle, &cfg);
	memset(&fake, 0, sizeof(fake));
	/* no command path: answered at once with codes.no_path */
	gw_cloud_cmd_send(new_cmd(&d, false), GW_COMMAND_PROPERTY_SET, NULL, NULL);
	ck_assert_int_eq(fake.answers, 1);
	ck_assert_int_eq(fake.code, 503);
	ck_assert_str_eq(fake.message, "this gateway has no command path");
	/* one that stays pending on the platform is not answered */
	gw_cloud_cmd_send(new_cmd(&d, true), GW_COMMAND_PROPERTY_SET, NULL, NULL);
	ck_assert_int_eq(fake.answers, 1);

	c.commands.send = fake_send;
	/* the node's 200 is the cloud's ok, without a message */
	next_result = (struct gw_command_result){ .status = GW_COMMAND_REPLIED, .code = 200,
						  .node = "n1", .params = json_object() };
	gw_cloud_cmd_send(new_cmd(&d, false), GW_COMMAND_SERVICE, "ping", NULL);
	ck_assert_int_eq(fake.answers, 2);
	ck_assert_int_eq(fake.code, 0);
	ck_assert_str_eq(fake.message, "(none)");
	ck_assert(fake.data);
	/* any other code of the node's is passed on, with a message */
	next_result.code = 404;
	gw_cloud_cmd_send(new_cmd(&d, false), GW_COMMAND_SERVICE, "ping", NULL);
	ck_assert_int_eq(fake.code, 404);
	ck_assert_str_eq(fake.message, "the node answered with code 404");
	json_decref(next_result.params);
	/* the statuses of the command path map to the cloud's codes */
	next_result = (struct gw_command_result){ .status = GW_COMMAND_TIMEOUT, .reason = "t" };
	gw_cloud_cmd_send(new_cmd(&d, false), GW_COMMAND_SERVICE, "ping", NULL);
	ck_assert_int_eq(fake.code, 504);
	ck_assert_str_eq(fake.message, "t");
	next_result.status = GW_COMMAND_NODE_GONE;
	gw_cloud_cmd_send(new_cmd(&d, false), GW_COMMAND_SERVICE, "ping", NULL);
	ck_assert_int_eq(fake.code, 404);
	next_result.status = GW_COMMAND_BUSY;
	gw_cloud_cmd_send(new_cmd(&d, false), GW_COMMAND_SERVICE, "ping", NULL);
	ck_assert_int_eq(fake.code, 429);
	next_result.status = GW_COMMAND_INVALID;
	gw_cloud_cmd_send(new_cmd(&d, false), GW_COMMAND_SERVICE, "ping", NULL);
	ck_assert_int_eq(fake.code, 400);
	ck_assert_int_eq(fake.answers, 7);
	/* pending: a failure is not answered */
	gw_cloud_cmd_send(new_cmd(&d, true), GW_COMMAND_PROPERTY_SET, NULL, NULL);
	ck_assert_int_eq(fake.answers, 7);

	/* command_rate: a throttled command is counted and answered with codes.throttled */
	cfg.cloud.command_rate = 1;
	cfg.cloud.command_burst = 1;
	gw_cloud_throttle_init(&c.throttle, &cfg);
	{
		struct gw_cloud_cmd first = { .d = &d };

		ck_assert(!gw_cloud_cmd_throttled(&first)); /* the caller counts it and goes on */
		ck_assert(gw_cloud_cmd_throttled(new_cmd(&d, false))); /* answered and freed */
	}
	ck_assert_int_eq(fake.code, 429);
	ck_assert_str_eq(fake.message, GW_CLOUD_THROTTLED_TEXT);
	ck_assert_uint_eq(c.n.commands, 1);
	ck_assert_uint_eq(c.throttle.refused, 1);
}
END_TEST

static int never(sd_event_source *s, uint64_t usec, void *ud)
{
	return 0;
}

START_TEST(test_engine_registered)
{
	char dir[] = "/tmp/test-cloud-core-XXXXXX";
	char reason[GW_CREDSTORE_REASON_MAX];
	struct gw_config_uplink cfg = { .name = "fake", .reconnect_min_ms = 1000,
					.reconnect_max_ms = 8000 };
	struct gw_cloud c = { .ops = &fake_ops, .cfg = &cfg, .cred_dir = dir };
	struct gw_cloud_dev d = { .cloud = &c, .name = "dev1", .state = GW_CLOUD_DEV_REGISTERING };
	struct gw_cred cred = { .kind = GW_CRED_DEVICE_SECRET };
	struct gw_cred_state st;
	sd_event *event = NULL;
	char cmd[128];

	gw_log_set_level(LOG_ERR);
	memset(&fake, 0, sizeof(fake));
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(gw_credstore_open(dir, &c.store, reason, sizeof(reason)), 0);
	ck_assert_int_ge(sd_event_new(&event), 0);
	ck_assert_int_ge(sd_event_add_time_relative(event, &d.timer, CLOCK_MONOTONIC, 3600000000ULL,
						    0, never, NULL), 0);
	/* refused: the marker says why and when to try again; counted */
	gw_cloud_dev_registered(&d, &(struct gw_cloud_reg_outcome){ GW_CLOUD_REG_REFUSED, "HTTPS",
								     "code 6288: no", NULL, false });
	ck_assert_int_eq(d.state, GW_CLOUD_DEV_IDLE);
	ck_assert_uint_eq(c.n.registration_failures, 1);
	ck_assert_int_eq(gw_credstore_get_state(c.store, "dev1", &st, reason, sizeof(reason)), 0);
	ck_assert_int_eq(st.status, GW_CRED_STATUS_NEEDS_PROVISIONING);
	ck_assert_str_eq(st.why, "registration over HTTPS refused: code 6288: no");
	ck_assert_int_gt(gw_cloud_secs_until(st.next_retry_ms), 0);
	/* failed: backoff */
	gw_cloud_dev_registered(&d, &(struct gw_cloud_reg_outcome){ GW_CLOUD_REG_FAILED, NULL,
								     "timeout", NULL, false });
	ck_assert_uint_eq(c.n.registration_failures, 2);
	ck_assert_uint_eq(d.reg_backoff_ms, 1000);
	/* a registration host that does not verify: from reconnect_max_ms, doubling to the
	 * refusal's hour, not at the reconnect pace; no marker written for it */
	gw_cloud_dev_registered(&d, &(struct gw_cloud_reg_outcome){ GW_CLOUD_REG_FAILED, "HTTPS",
								     "TLS: ...", NULL, true });
	ck_assert_uint_eq(d.reg_backoff_ms, 8000);
	ck_assert_uint_eq(c.n.registration_failures, 3);
	for (int i = 0; i < 12; i++)
		gw_cloud_dev_registered(&d, &(struct gw_cloud_reg_outcome){
			GW_CLOUD_REG_FAILED, "HTTPS", "TLS: ...", NULL, true });
	ck_assert_uint_eq(d.reg_backoff_ms, 3600000);
	/* a transport failure after it: back to the reconnect pace */
	gw_cloud_dev_registered(&d, &(struct gw_cloud_reg_outcome){ GW_CLOUD_REG_FAILED, NULL,
								     "timeout", NULL, false });
	ck_assert_uint_eq(d.reg_backoff_ms, 8000);
	/* stored: the driver takes the credential; the backoff starts again */
	gw_cloud_dev_registered(&d, &(struct gw_cloud_reg_outcome){ GW_CLOUD_REG_STORED, "MQTT", "",
								     &cred, false });
	ck_assert_int_eq(fake.registered, 1);
	ck_assert_uint_eq(c.n.registrations, 1);
	ck_assert_uint_eq(d.reg_backoff_ms, 0);
	d.timer = sd_event_source_disable_unref(d.timer);
	sd_event_unref(event);
	gw_credstore_close(c.store);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_engine_preview)
{
	static const char telemetry[] = "dev1\0node1\0port1\0\0{\"ts\":1,\"params\":{}}";
	static const char bad_name[] = "devx\0node1\0port1\0\0{}";
	static const char not_json[] = "dev1\0node1\0port1\0\0not json";
	struct gw_config_uplink cfg = { .name = "fake" };
	struct gw_spool_record rec = { .seq = 1, .type = GW_FRAME_TELEMETRY };
	char topic[GW_CLOUD_TOPIC_MAX], why[256];
	char *payload = NULL;
	size_t len = 0;

	memset(&fake, 0, sizeof(fake));
	rec.payload = (const uint8_t *)"junk";
	rec.len = 4;
	ck_assert_int_eq(gw_cloud_uplink_preview(&fake_ops, &cfg, &rec, topic, sizeof(topic),
						 &payload, &len, why, sizeof(why)), -EBADMSG);
	ck_assert_str_eq(why, "not a record this version can send");
	rec.payload = (const uint8_t *)bad_name;
	rec.len = sizeof(bad_name) - 1;
	ck_assert_int_eq(gw_cloud_uplink_preview(&fake_ops, &cfg, &rec, topic, sizeof(topic),
						 &payload, &len, why, sizeof(why)), -EINVAL);
	ck_assert_str_eq(why, "device name 'devx' is not valid for Fake (1..64 of A-Z a-z 0-9 _ . "
			 "@ -)");
	rec.payload = (const uint8_t *)telemetry;
	rec.len = sizeof(telemetry) - 1;
	ck_assert_int_eq(gw_cloud_uplink_preview(&fake_ops, &cfg, &rec, topic, sizeof(topic),
						 &payload, &len, why, sizeof(why)), 0);
	ck_assert_str_eq(topic, "fake/dev1");
	ck_assert(fake.built_json);
	free(payload);
	/* the driver says what a payload that is not JSON means */
	rec.payload = (const uint8_t *)not_json;
	rec.len = sizeof(not_json) - 1;
	ck_assert_int_eq(gw_cloud_uplink_preview(&fake_ops, &cfg, &rec, topic, sizeof(topic),
						 &payload, &len, why, sizeof(why)), 0);
	ck_assert(!fake.built_json);
	free(payload);
	ck_assert_int_eq(fake.built, 2);
}
END_TEST

START_TEST(test_record_fields)
{
	struct gw_payload_view v = { .type = GW_FRAME_TELEMETRY };
	json_t *o = json_pack("{s:I,s:{s:i},s:s}", "ts", (json_int_t)1000, "params", "t", 1,
			      "event", "alarm");
	json_t *params;
	int64_t time_ms;
	const char *event;
	char why[128];

	/* an old reading keeps its time; a live one is stamped by the platform */
	ck_assert_int_eq(gw_cloud_record_fields(o, &v, 5000, &params, &time_ms, &event, why,
						sizeof(why)), 0);
	ck_assert_int_eq(time_ms, 1000);
	ck_assert_str_eq(event, "alarm");
	json_object_set_new(o, "ts", json_integer(gw_now_wall_ms()));
	ck_assert_int_eq(gw_cloud_record_fields(o, &v, 5000, &params, &time_ms, &event, why,
						sizeof(why)), 0);
	ck_assert_int_eq(time_ms, -1);
	/* an event always keeps it */
	v.type = GW_FRAME_EVENT;
	ck_assert_int_eq(gw_cloud_record_fields(o, &v, 5000, &params, &time_ms, &event, why,
						sizeof(why)), 0);
	ck_assert_int_gt(time_ms, 0);
	json_object_del(o, "params");
	ck_assert_int_eq(gw_cloud_record_fields(o, &v, 5000, &params, &time_ms, &event, why,
						sizeof(why)), -EBADMSG);
	ck_assert_str_eq(why, "its payload has no params object or no ts");
	ck_assert_int_eq(gw_cloud_record_fields(NULL, &v, 5000, &params, &time_ms, &event, why,
						sizeof(why)), -EBADMSG);
	json_decref(o);
}
END_TEST

/* ---- the registration job ---- */

struct job {
	struct gw_cloud_reg job;
	int steps;
};

/* what the job's outcome was, copied out before the job is freed */
static struct {
	int steps;
	int done;
	enum gw_cloud_reg_result result;
	char via[16];
	char why[256];
	bool cred;
} seen;

static void job_step(struct gw_cloud_reg *job)
{
	struct job *j = (struct job *)job;

	seen.steps = ++j->steps;
	if (j->steps == 1)
		gw_cloud_reg_arm(job, 1); /* a deadline */
	else
		gw_cloud_reg_finish(job, GW_CLOUD_REG_FAILED, "MQTT", "no push within %d s", 1);
}

static void job_done(struct gw_cloud_reg *job, const struct gw_cloud_reg_outcome *o)
{
	seen.done++;
	seen.result = o->result;
	snprintf(seen.via, sizeof(seen.via), "%s", o->via);
	snprintf(seen.why, sizeof(seen.why), "%s", o->why);
	seen.cred = o->cred != NULL;
	sd_event_exit(job->event, 0);
	gw_cloud_reg_free(job);
}

static const struct gw_cloud_reg_hooks job_hooks = { .step = job_step, .done = job_done };

START_TEST(test_reg_job)
{
	struct gw_config_uplink cfg = { .name = "fake" };
	struct job *j = NULL;
	sd_event *event = NULL;

	ck_assert_int_ge(sd_event_new(&event), 0);
	ck_assert_int_eq(gw_cloud_reg_new(sizeof(struct job), event, NULL, NULL, &cfg, "dev1",
					  &job_hooks, (void **)&j), 0);
	ck_assert_str_eq(j->job.device, "dev1");
	/* the first step from the loop, never from within the start; the outcome from it too */
	ck_assert_int_eq(j->steps, 0);
	ck_assert_int_ge(sd_event_loop(event), 0);
	/* the start, the deadline, then the outcome */
	ck_assert_int_eq(seen.steps, 2);
	ck_assert_int_eq(seen.done, 1);
	ck_assert_int_eq(seen.result, GW_CLOUD_REG_FAILED);
	ck_assert_str_eq(seen.via, "MQTT");
	ck_assert_str_eq(seen.why, "no push within 1 s");
	ck_assert(!seen.cred);
	sd_event_unref(event);
}
END_TEST

START_TEST(test_reg_http_status)
{
	struct gw_http_response resp = { .err = -ETIMEDOUT };
	struct gw_cloud_reg job = { .untrusted = true };
	char why[256];

	ck_assert_int_eq(gw_cloud_reg_http_status(&job, &resp, why, sizeof(why)), -EIO);
	ck_assert_str_eq(why, strerror(ETIMEDOUT));
	ck_assert(!job.untrusted);
	resp = (struct gw_http_response){ .err = -EPROTO, .untrusted = true,
					  .error = "TLS: the certificate of h does not verify" };
	ck_assert_int_eq(gw_cloud_reg_http_status(&job, &resp, why, sizeof(why)), -EIO);
	ck_assert_str_eq(why, "TLS: the certificate of h does not verify");
	ck_assert(job.untrusted);
	resp = (struct gw_http_response){ .status = 302, .location = "http://x/" };
	ck_assert_int_eq(gw_cloud_reg_http_status(&job, &resp, why, sizeof(why)), -EPROTO);
	ck_assert_str_eq(why, "HTTP status 302, a redirect to http://x/ (not followed)");
	ck_assert(!job.untrusted);
	resp = (struct gw_http_response){ .status = 500 };
	ck_assert_int_eq(gw_cloud_reg_http_status(&job, &resp, why, sizeof(why)), -EPROTO);
	ck_assert_str_eq(why, "HTTP status 500");
	resp.status = 200;
	ck_assert_int_eq(gw_cloud_reg_http_status(&job, &resp, why, sizeof(why)), 0);
}
END_TEST

/* The registration's trust: the registration host's roots in place of the bundled MQTT roots
 * (or none), the system's bundle when those cannot be read, an administrator's file as it is. */
START_TEST(test_reg_https_ca)
{
	char dir[] = "/tmp/test-cloud-core-XXXXXX";
	char mqtt[64], reg[64], mine[64], missing[64];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(mqtt, sizeof(mqtt), "%s/mqtt.pem", dir);
	snprintf(reg, sizeof(reg), "%s/reg.pem", dir);
	snprintf(mine, sizeof(mine), "%s/mine.pem", dir);
	snprintf(missing, sizeof(missing), "%s/missing.pem", dir);
	for (const char *const *f = (const char *const[]){ mqtt, reg, mine, NULL }; *f; f++) {
		FILE *fp = fopen(*f, "w");

		ck_assert_ptr_nonnull(fp);
		fclose(fp);
	}
	ck_assert_str_eq(gw_cloud_reg_https_ca(NULL, mqtt, mqtt, reg), reg);
	ck_assert_str_eq(gw_cloud_reg_https_ca(NULL, NULL, mqtt, reg), reg);
	ck_assert_str_eq(gw_cloud_reg_https_ca(NULL, mine, mqtt, reg), mine);
	ck_assert_ptr_null(gw_cloud_reg_https_ca(NULL, mqtt, mqtt, missing));
	ck_assert_ptr_null(gw_cloud_reg_https_ca(NULL, NULL, mqtt, NULL));
	/* the same file for both (Aliyun): unchanged */
	ck_assert_str_eq(gw_cloud_reg_https_ca(NULL, mqtt, mqtt, mqtt), mqtt);
	/* register_ca_file, when given, wins over every default */
	ck_assert_str_eq(gw_cloud_reg_https_ca(mine, mqtt, mqtt, reg), mine);
	ck_assert_str_eq(gw_cloud_reg_https_ca(mine, NULL, mqtt, missing), mine);
	unlink(mqtt);
	unlink(reg);
	unlink(mine);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cloud-core");
	TCase *tc = tcase_create("core");

	gw_log_init("test");
	tcase_add_test(tc, test_counters_log_line);
	tcase_add_test(tc, test_counters_json);
	tcase_add_test(tc, test_summary);
	tcase_add_test(tc, test_describe_loss);
	tcase_add_test(tc, test_loss_delay);
	tcase_add_test(tc, test_throttle);
	tcase_add_test(tc, test_refusal_marker);
	tcase_add_test(tc, test_feed_deadletter_after_acks);
	tcase_add_test(tc, test_engine_commands);
	tcase_add_test(tc, test_engine_registered);
	tcase_add_test(tc, test_engine_preview);
	tcase_add_test(tc, test_record_fields);
	tcase_add_test(tc, test_reg_job);
	tcase_add_test(tc, test_reg_http_status);
	tcase_add_test(tc, test_reg_https_ca);
	suite_add_tcase(s, tc);
	return ck_run_suite(s);
}
