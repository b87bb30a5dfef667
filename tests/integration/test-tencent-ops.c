/* SPDX-License-Identifier: MIT */
/*
 * What the tencent uplink shows and what it refuses to send, with the real daemon against the
 * loopback Tencent test cloud (tests/cloud/tencent_cloud.py):
 *
 * - `sensorgwctl status --json`: the uplink's devices (session, provisioning, last error), its
 *
 * backlog and every counter, checked against docs/status.schema.json; and
 *
 * `sensorgwctl decode`: the exact topic and data-template payload the uplink would send;
 *
 * - the docs/protocols/tencent.md §1.7 payload limit: a record whose report would be over 16 KB is
 * dead-lettered with
 *
 * its size in the log, counted as too_large, never sent (the cloud would close the session),
 *
 * and the records behind it flow. A node frame cannot carry that much (32 fields of at most
 *
 * 63 printable bytes: under 7 KB), so the record is written into the daemon's spool by the
 *
 * test itself, with the spool module, while the daemon is stopped.
 */

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloudctl.h"
#include "fixture.h"
#include "gw/frame.h"
#include "gw/spool.h"
#include "gw/util.h"
#include "sgw_node.h"
#include "tcloud.h"

#define DN TC_DN

static const uint8_t uid[12] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
				 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67 };

static void start_sim(void)
{
	char link[4096];
	const char *const args[] = { "--pty", "--link", link, "--framing", "binary", "--rate", "2",
				     "--uid", "0123456789abcdef01234567", NULL };

	snprintf(link, sizeof(link), "%s", fx_path("tty-n1"));
	(void)fx_sim_start(args);
}

static void start_daemon(bool with_sim)
{
	char *conf;

	if (with_sim)
		start_sim();
	conf = tc_config(NULL);
	fx_daemon_start(conf);
	free(conf);
}

/* The status once counter of uplink tc reached at least min (PUBACKs may trail the cloud's
 * events by a moment); a new reference. */
static json_t *status_when(const char *counter, json_int_t min)
{
	int64_t end = fx_mono_ms() + 20000 * fx_timeout_scale();

	for (;;) {
		json_t *st = tc_status_json();
		json_t *c = json_object_get(tc_status_uplink(st, "tc"), "counters");

		if (json_integer_value(json_object_get(c, counter)) >= min ||
		    fx_mono_ms() > end)
			return st;
		json_decref(st);
		fx_sleep_ms(200);
	}
}

static char *hex(const uint8_t *b, size_t n)
{
	char *s = malloc(3 * n + 1);

	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i < n; i++)
		sprintf(s + 3 * i, "%02x ", b[i]);
	s[3 * n] = '\0';
	return s;
}

START_TEST(test_status_and_decode)
{
	const char *const online[] = { "device " DN ": online", NULL };
	uint8_t wire[SGW_MAX_WIRE];
	struct sgw_builder b;
	json_t *st, *u, *dev, *counters, *res, *rec, *up, *payload;
	json_error_t jerr;
	char *out = NULL, *err = NULL, *h1, *h2, token[64];
	size_t n;
	int rc;

	tc_start(fx_strf("{\"deviceName\": \"" DN "\", \"psk\": \"%s\"}", TC_PSK), NULL);
	tc_provision_psk(DN, TC_PSK);
	start_daemon(true);
	ck_assert_msg(fx_daemon_wait_log_line(online, 30000), "dev-n1 never came online");
	ck_assert(tc_wait(json_pack("{s:s,s:s,s:i}", "ev", "thing_uplink", "method", "report",
				    "code", 0), 20));

	/* status: the documented fields only, and the device as it is */
	st = status_when("acked", 1);
	fx_check_status_schema(st);
	u = tc_status_uplink(st, "tc");
	ck_assert_str_eq(json_string_value(json_object_get(u, "type")), "tencent");
	ck_assert_str_eq(json_string_value(json_object_get(u, "state")), "online");
	ck_assert_int_eq(json_integer_value(json_object_get(u, "sessions")), 1);
	ck_assert(json_is_integer(json_object_get(u, "backlog_bytes")));
	ck_assert(json_is_integer(json_object_get(u, "oldest_age_ms")));
	ck_assert_int_eq(json_array_size(json_object_get(u, "devices")), 1);
	dev = json_array_get(json_object_get(u, "devices"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(dev, "device")), DN);
	ck_assert_str_eq(json_string_value(json_object_get(dev, "session")), "online");
	ck_assert_str_eq(json_string_value(json_object_get(dev, "provisioning")), "provisioned");
	ck_assert(json_is_null(json_object_get(dev, "last_error")));
	counters = json_object_get(u, "counters");
	ck_assert_int_ge(json_integer_value(json_object_get(counters, "acked")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(counters, "connects")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(counters, "too_large")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(counters, "devices")), 1);
	ck_assert(json_is_integer(json_object_get(counters, "registrations")));
	/* the credential never shows */
	{
		char *text = json_dumps(st, 0);

		ck_assert_ptr_null(strstr(text, TC_PSK));
		free(text);
	}
	json_decref(st);

	/* decode: the topic and payload the uplink would send for a frame of this node */
	n = fx_bin_hello(wire, 1, 1, uid, 3, "fw-7");
	h1 = hex(wire, n);
	sgw_begin(&b, SGW_TYPE_TELEMETRY, 1, 2);
	sgw_put_i32(&b, "MQ2", 40);
	sgw_put_i32(&b, "MQ135", 96);
	n = sgw_finish(&b, wire, sizeof(wire));
	h2 = hex(wire, n);
	{
		const char *const argv[] = { fx_env("GW_CTL"), "decode", "-c",
			fx_path("sensorgw.conf"), "--port", "n1", "--json", h1, h2, NULL };

		rc = fx_run(argv, &out, &err, 20000);
	}
	ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "decode failed: %s", err);
	res = json_loads(out, 0, &jerr);
	ck_assert_msg(json_is_array(res) && json_array_size(res) == 2, "%s", out);
	rec = json_array_get(res, 1);
	ck_assert_str_eq(json_string_value(json_object_get(rec, "device")), DN);
	up = json_array_get(json_object_get(rec, "uplinks"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(up, "name")), "tc");
	ck_assert_str_eq(json_string_value(json_object_get(up, "type")), "tencent");
	ck_assert_msg(json_is_string(json_object_get(up, "topic")), "no topic: %s", out);
	ck_assert_str_eq(json_string_value(json_object_get(up, "topic")),
			 "$thing/up/property/" TC_PID "/" DN);
	payload = json_loads(json_string_value(json_object_get(up, "payload")), 0, &jerr);
	ck_assert_msg(payload, "payload: %s", jerr.text);
	ck_assert_str_eq(json_string_value(json_object_get(payload, "method")), "report");
	/* the record's gateway seq (the stored JSON's), not the node's frame number */
	{
		json_t *stored = json_loads(json_string_value(json_object_get(rec, "record")), 0,
					    &jerr);

		ck_assert_msg(stored, "record: %s", jerr.text);
		snprintf(token, sizeof(token), TC_PID "-%lld",
			 (long long)json_integer_value(json_object_get(stored, "seq")));
		json_decref(stored);
	}
	ck_assert_str_eq(json_string_value(json_object_get(payload, "clientToken")), token);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(payload, "params"),
							    "MQ2")), 40);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(payload, "params"),
							    "MQ135")), 96);
	/* live data: the platform stamps it (no timestamp) */
	ck_assert_ptr_null(json_object_get(payload, "timestamp"));
	json_decref(payload);
	json_decref(res);
	free(out);
	free(err);
	free(h1);
	free(h2);
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);
}
END_TEST

/* Appends a telemetry record of DN with params to the stopped daemon's spool; returns its
 * seq. The bytes are what gateway.c stores (gw/payload.h: device, node, port, addr, json). */
static uint64_t spool_record(struct gw_spool *sp, const char *params)
{
	int64_t now = gw_now_wall_ms();
	char *json = NULL, *buf;
	size_t head, len;
	uint64_t seq = gw_spool_next_seq(sp);

	ck_assert_int_gt(asprintf(&json, "{\"device\":\"" DN "\",\"node\":\"n1\",\"port\":\"n1\","
				  "\"seq\":%llu,\"ts\":%lld,\"params\":%s}",
				  (unsigned long long)seq, (long long)now, params), 0);
	head = sizeof(DN) + sizeof("n1") + sizeof("n1") + 1;
	len = head + strlen(json);
	buf = malloc(len);
	ck_assert_ptr_nonnull(buf);
	memcpy(buf, DN "\0n1\0n1\0", head - 1);
	buf[head - 1] = '\0';
	memcpy(buf + head, json, strlen(json));
	ck_assert_int_eq(gw_spool_append(sp, now, GW_FRAME_TELEMETRY, buf, len, &seq), 0);
	free(buf);
	free(json);
	return seq;
}

static bool reported(uint64_t seq, int timeout_s)
{
	char token[64];

	snprintf(token, sizeof(token), TC_PID "-%llu", (unsigned long long)seq);
	return tc_wait(json_pack("{s:s,s:s,s:s,s:i}", "ev", "thing_uplink", "method", "report",
				 "clientToken", token, "code", 0), timeout_s);
}

START_TEST(test_too_large)
{
	const char *const cursor[] = { "device " DN ": new", NULL };
	struct gw_spool_options so = { .dir = NULL, .segment_bytes = 1 << 20 };
	struct gw_spool *sp;
	uint64_t a, big, c;
	char *blob, *params, needle[128], *log;
	json_t *st, *counters;
	struct stat sb;
	size_t lines = 0;

	tc_start(fx_strf("{\"deviceName\": \"" DN "\", \"psk\": \"%s\"}", TC_PSK), NULL);
	tc_provision_psk(DN, TC_PSK);
	/* a first run without a node makes the uplink's cursor at the spool's end */
	start_daemon(false);
	for (int64_t end = fx_mono_ms() + FX_WAIT_MS * fx_timeout_scale();
	     stat(fx_path("state/spool/cursor-tc"), &sb) != 0 && fx_mono_ms() < end;)
		fx_sleep_ms(20);
	ck_assert(fx_daemon_running());
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);
	ck_assert_int_eq(stat(fx_path("state/spool/cursor-tc"), &sb), 0);

	/* three records behind the cursor: small, 20 000 bytes of params, small */
	so.dir = fx_path("state/spool");
	ck_assert_int_eq(gw_spool_open(&so, &sp), 0);
	a = spool_record(sp, "{\"MQ2\":1}");
	blob = malloc(20001);
	ck_assert_ptr_nonnull(blob);
	memset(blob, 'x', 20000);
	blob[20000] = '\0';
	ck_assert_int_gt(asprintf(&params, "{\"MQ2\":2,\"blob\":\"%s\"}", blob), 0);
	big = spool_record(sp, params);
	free(params);
	free(blob);
	c = spool_record(sp, "{\"MQ2\":3}");
	ck_assert_int_eq(gw_spool_sync(sp), 0);
	gw_spool_close(sp);

	start_daemon(false);
	ck_assert_msg(fx_daemon_wait_log_line(cursor, 30000), "the uplink read nothing");
	ck_assert_msg(reported(a, 30), "the record before the big one was not reported");
	ck_assert_msg(reported(c, 30), "the record after the big one was not reported");
	snprintf(needle, sizeof(needle), "record %llu moved to the dead-letter file: its report "
		 "would be ", (unsigned long long)big);
	ck_assert_msg(fx_daemon_log_contains(needle), "no dead-letter line for %llu",
		      (unsigned long long)big);
	ck_assert(fx_daemon_log_contains("bytes, over the platform's 16384-byte payload limit"));
	/* never sent: the cloud saw nothing over its limit and no token of it */
	snprintf(needle, sizeof(needle), TC_PID "-%llu", (unsigned long long)big);
	ck_assert_int_eq(tc_count("thing_uplink", "clientToken", needle), 0);
	ck_assert_int_eq(tc_count("payload_too_large", NULL, NULL), 0);
	ck_assert_int_eq(tc_count("mqtt_connect", "deviceName", DN), 1);
	ck_assert_int_eq(stat(fx_path("state/spool/deadletter-tc.log"), &sb), 0);
	ck_assert_int_gt(sb.st_size, 20000);

	st = status_when("acked", 2);
	fx_check_status_schema(st);
	counters = json_object_get(tc_status_uplink(st, "tc"), "counters");
	ck_assert_int_eq(json_integer_value(json_object_get(counters, "too_large")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(counters, "deadlettered")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(counters, "acked")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(tc_status_uplink(st, "tc"),
							    "queued")), 0);
	json_decref(st);

	/* once: the cursor moved past it, a restart does not read it again */
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);
	start_daemon(false);
	fx_sleep_ms(3000);
	ck_assert(fx_daemon_running());
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);
	log = fx_read_file(fx_path("daemon.log"));
	ck_assert_ptr_nonnull(log);
	for (const char *p = log; (p = strstr(p, "moved to the dead-letter file")); p++)
		lines++;
	free(log);
	ck_assert_int_eq(lines, 1);
}
END_TEST

/* expiry = auto: the login's expiry is now + 600 s when the system clock is synchronised,
 * else the far-future default; the daemon says once which it is, and the cloud accepts it. */
START_TEST(test_expiry_auto)
{
	const char *const online[] = { "device " DN ": online", NULL };
	bool synced;
	json_t *r, *ev;
	const char *expiry;
	char *conf;
	int64_t now_s;

	tc_start(fx_strf("{\"deviceName\": \"" DN "\", \"psk\": \"%s\"}", TC_PSK), NULL);
	tc_provision_psk(DN, TC_PSK);
	start_sim();
	conf = tc_config("expiry = auto\n");
	fx_daemon_start(conf);
	free(conf);
	ck_assert_msg(fx_daemon_wait_log_line(online, 30000), "dev-n1 never came online");
	synced = fx_daemon_log_contains("expiry = auto: the system clock is synchronised");
	ck_assert(synced != fx_daemon_log_contains("expiry = auto: the system clock is not "
						   "synchronised"));
	r = tc_ctl("log", json_pack("{s:s}", "ev", "mqtt_connect"));
	ev = json_array_get(json_object_get(r, "events"), json_array_size(json_object_get(r,
									       "events")) - 1);
	ck_assert_int_eq(json_integer_value(json_object_get(ev, "rc")), 0);
	expiry = json_string_value(json_object_get(ev, "expiry"));
	ck_assert_ptr_nonnull(expiry);
	now_s = fx_now_ms() / 1000;
	if (synced) {
		ck_assert_int_gt(atoll(expiry), now_s + 500);
		ck_assert_int_le(atoll(expiry), now_s + 600);
	} else {
		ck_assert_str_eq(expiry, "2147483647");
	}
	json_decref(r);
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("tencent-ops");
	TCase *tc = tcase_create("tencent-ops");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_status_and_decode);
	tcase_add_test(tc, test_too_large);
	tcase_add_test(tc, test_expiry_auto);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cc_run(suite());
}
