/* SPDX-License-Identifier: MIT */
/*
 * The cloud core (gw/cloud.h) without a broker: the counters' table as the log line and the
 * status show it, the reason of a lost session, the reconnect backoff, command_rate and the
 * refusal marker of the credential store.
 */

#include <check.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw/cloud.h"
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
	struct gw_config_uplink cfg = { .name = "t", .command_rate = 1, .command_burst = 3 };
	struct gw_cloud_throttle t;
	int refused = 0;

	gw_log_set_level(LOG_ERR);
	gw_cloud_throttle_init(&t, &cfg);
	for (int i = 0; i < 10; i++)
		refused += gw_cloud_throttled(&t, &cfg, "dev1", "control 1", 429);
	ck_assert_int_eq(refused, 7);
	ck_assert_uint_eq(t.refused, 7);
	/* command_rate = 0: no limit */
	cfg.command_rate = 0;
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

int main(void)
{
	Suite *s = suite_create("cloud-core");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	gw_log_init("test");
	tcase_add_test(tc, test_counters_log_line);
	tcase_add_test(tc, test_counters_json);
	tcase_add_test(tc, test_summary);
	tcase_add_test(tc, test_describe_loss);
	tcase_add_test(tc, test_loss_delay);
	tcase_add_test(tc, test_throttle);
	tcase_add_test(tc, test_refusal_marker);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
