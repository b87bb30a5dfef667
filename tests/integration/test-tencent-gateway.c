/* SPDX-License-Identifier: MIT */
/*
 * topology = gateway against the loopback Tencent test cloud (tests/cloud/tencent_cloud.py and
 * tcgateway.py, docs/protocols/gateway.md §G15-§G18) with the real daemon and two sensorgw-sim
 * buses of ten binary nodes each: from an empty state directory, every node's sub-device
 * registers over HTTPS, is bound with a bind signed with its PSK and goes online through the
 * one gateway session, and its reports arrive on its own $thing/up/property topic; a gateway
 * reconnect brings every node online again and loses and repeats nothing; a restart with a
 * full credential store and remembered bindings binds nothing; controls and actions to two
 * sub-devices are answered by their nodes. With PSKs provisioned (auth = psk): a node unbound
 * in the console is refused with its records dead-lettered while the others go on, and bound
 * again comes back at once; search_devices and unbind_all are acknowledged. The gateway logs in
 * with TLS-PSK (tls = psk) and over plain TCP (tls = no) as well.
 */

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloudctl.h"
#include "fixture.h"
#include "gateway.h"
#include "gw/tencent.h"
#include "tcloud.h"

#define GW_PID "GWPROD0001"
#define GW_DN "gw-01"
#define GW_PSK fx_secret("tencent-psk")
#define NODES 10 /* per bus */
#define CRED_DIR "state/credentials/tc"

static int n_nodes = NODES; /* per bus, in this test */
static pid_t sim2;          /* bus 2 (gt_sims_start()) */

/* A PSK of its own for each node (canonical base64 of 16 bytes). */
static const char *node_psk(int bus, int addr)
{
	return fx_strf("UFNLbm9kZTAw%d%02dAAAAAAA==", bus, addr);
}

static void ctl_ok(const char *cmd, json_t *args)
{
	json_t *r = tc_ctl(cmd, args);

	ck_assert_msg(json_is_true(json_object_get(r, "ok")), "%s: %s", cmd,
		      json_string_value(json_object_get(r, "error")));
	json_decref(r);
}

/* The cloud: the sub-device product TC_PID with the twenty nodes' devices (with their PSKs,
 * or pre-created without one for auth = register), and the gateway product associated with
 * it. */
static void start_cloud(bool psks)
{
	char devs[4096];
	size_t n = 0;

	for (int bus = 1; bus <= 2; bus++)
		for (int a = 1; a <= NODES; a++)
			n += (size_t)snprintf(devs + n, sizeof(devs) - n,
					      psks ? "%s{\"deviceName\": \"%s\", \"psk\": \"%s\"}" :
						     "%s\"%s\"",
					      n ? ", " : "", gt_node(bus, a), node_psk(bus, a));
	ck_assert_uint_lt(n, sizeof(devs));
	tc_start(devs, NULL);
	gt_init(tc_ctl_port, "tc", false);
	ctl_ok("add_gateway", json_pack("{s:s,s:s,s:s,s:[s]}", "productId", GW_PID, "deviceName",
					GW_DN, "psk", GW_PSK, "subProducts", TC_PID));
}

/* The daemon's configuration: auth and its keys, and how it reaches the cloud (port, tls). */
static const char *config(const char *auth, const char *endpoint)
{
	const char *reg = "";

	fx_write_secret(fx_path("product.secret"), TC_PS);
	if (strcmp(auth, "register") == 0)
		reg = fx_strf("product_secret_file = %s\n"
			      "register_url = https://localhost:%d/device/register\n"
			      "register_ca_file = %s\n",
			      fx_path("product.secret"), tc_https_port, fx_path("broker/ca.crt"));
	return gt_config("tencent", GW_PSK,
			 fx_strf("product_id = " TC_PID "\n"
				 "%s"
				 "gateway_product_id = " GW_PID "\n"
				 "gateway_device_name = " GW_DN "\n"
				 "auth = %s\n"
				 "%s",
				 endpoint, auth, reg));
}

/* The TLS port with the fixture's CA. */
static const char *tls_endpoint(void)
{
	return fx_strf("port = %d\nca_file = %s\n", tc_mqtts_port, fx_path("broker/ca.crt"));
}

/* The gateway operations of type ev ("gateway_bind", ...) after since with result 0. */
static size_t ops_ok_since(json_int_t since, const char *ev)
{
	json_t *r = tc_ctl("log",
			   json_pack("{s:I,s:s,s:i}", "since", since, "ev", ev, "limit", 1000000));
	size_t i, n = 0;
	json_t *e;

	json_array_foreach(json_object_get(r, "events"), i, e)
		n += json_integer_value(json_object_get(e, "result")) == 0 &&
		     json_is_integer(json_object_get(e, "result"));
	json_decref(r);
	return n;
}

/* A report of dn accepted after since. */
static bool wait_report(const char *dn, json_int_t since, int timeout_s)
{
	return tc_wait_since(json_pack("{s:s,s:s,s:s,s:s,s:i}", "ev", "thing_uplink", "productId",
				       TC_PID, "deviceName", dn, "method", "report", "code", 0),
			     since, timeout_s);
}

/* Every node's reports arrive on its own topics after seq since. */
static void wait_all_reporting(json_int_t since, int timeout_s)
{
	gt_wait_nodes(NULL, wait_report, "report", since, timeout_s);
}

/* Every record produced is counted once: acknowledged, queued or dead-lettered (nothing else
 * happens to one here). */
static void assert_counted_once(json_t *u)
{
	ck_assert_msg(gt_counter(u, "produced") == gt_counter(u, "acked") +
							   gt_counter(u, "queued") +
							   gt_counter(u, "deadlettered"),
		      "produced %lld, acked %lld, queued %lld, dead-lettered %lld",
		      (long long)gt_counter(u, "produced"), (long long)gt_counter(u, "acked"),
		      (long long)gt_counter(u, "queued"), (long long)gt_counter(u, "deadlettered"));
}

/* control or action to sub-device dn through the control API; the reply (a new reference),
 * checking that it went through the gateway's session and was answered. */
static json_t *downlink(const char *cmd, const char *dn, json_t *args)
{
	json_t *r, *reply;

	json_object_set_new(args, "productId", json_string(TC_PID));
	json_object_set_new(args, "deviceName", json_string(dn));
	json_object_set_new(args, "wait", json_integer(cc_wait_s(10)));
	r = tc_ctl(cmd, args);
	ck_assert_msg(json_is_true(json_object_get(r, "ok")), "%s refused: %s", cmd,
		      json_string_value(json_object_get(r, "error")));
	ck_assert_msg(json_array_size(json_object_get(r, "deliveredTo")) == 1,
		      "%s to %s was not delivered: not subscribed", cmd, dn);
	ck_assert_msg(!json_is_true(json_object_get(r, "timedOut")), "%s to %s: no reply", cmd, dn);
	reply = json_incref(json_object_get(r, "reply"));
	json_decref(r);
	ck_assert(json_is_object(reply));
	return reply;
}

static json_int_t reply_code(json_t *reply)
{
	ck_assert(json_is_integer(json_object_get(reply, "code")));
	return json_integer_value(json_object_get(reply, "code"));
}

static bool wait_file_has(const char *file, const char *needle, int timeout_ms)
{
	int64_t end = fx_mono_ms() + (int64_t)timeout_ms * fx_timeout_scale();

	do {
		char *log = fx_read_file(fx_path(file));
		bool has = log && strstr(log, needle);

		free(log);
		if (has)
			return true;
		fx_sleep_ms(100);
	} while (fx_mono_ms() < end);
	return false;
}

/*
 * Pauses both buses (SIGSTOP) and waits until the uplink has nothing queued or in flight, or
 * lets them go on. A push that unbinds sub-devices is sent while they are held: a report of an
 * unbound sub-device already on its way when the push is (the daemon cannot know yet) reaches
 * the platform after the unbinding, which closes the gateway's session for the ACL violation,
 * as the platform does, and the push's acknowledgement is lost with the session. The daemon
 * gets over that (it logs in again and asks for its bindings, below); this test checks the
 * acknowledgement, so it does not let a report cross the push. A slow daemon (valgrind)
 * widens that window from a round trip to seconds.
 */
static void buses_hold(bool hold)
{
	int64_t end = fx_mono_ms() + 30000LL * fx_timeout_scale();

	ck_assert_int_eq(kill(fx_sim_pid(), hold ? SIGSTOP : SIGCONT), 0);
	ck_assert_int_eq(kill(sim2, hold ? SIGSTOP : SIGCONT), 0);
	while (hold) {
		json_t *u = gt_uplink_status();
		bool idle = gt_counter(u, "queued") == 0 && gt_counter(u, "inflight") == 0;

		json_decref(u);
		if (idle)
			break;
		ck_assert_msg(fx_mono_ms() < end, "the uplink does not drain");
		fx_sleep_ms(100);
	}
}

/* A console command on the gateway (and sub-device dn unless NULL) whose push the daemon
 * acknowledges; returns the ack (a new reference), checked to match the push. */
static json_t *push_acked(const char *cmd, const char *dn, json_t *args)
{
	json_t *r, *ack;

	json_object_set_new(args, "productId", json_string(GW_PID));
	json_object_set_new(args, "deviceName", json_string(GW_DN));
	if (dn) {
		json_object_set_new(args, "subProductId", json_string(TC_PID));
		json_object_set_new(args, "subDeviceName", json_string(dn));
	}
	json_object_set_new(args, "wait", json_integer(cc_wait_s(10)));
	r = tc_ctl(cmd, args);
	ck_assert_msg(json_is_true(json_object_get(r, "ok")), "%s: %s", cmd,
		      json_string_value(json_object_get(r, "error")));
	ck_assert_msg(!json_is_true(json_object_get(r, "timedOut")), "%s: no acknowledgement", cmd);
	ack = json_incref(json_object_get(r, "ack"));
	json_decref(r);
	ck_assert(json_is_true(json_object_get(ack, "matched")));
	ck_assert_uint_eq(json_array_size(json_object_get(ack, "problems")), 0);
	return ack;
}

START_TEST(test_gateway)
{
	json_int_t mark;
	char *text;
	json_t *r, *u;
	int status;

	start_cloud(false);
	sim2 = gt_sims_start(n_nodes);
	fx_daemon_start(config("register", tls_endpoint()));

	/* from an empty state: registered, bound, online, reporting */
	wait_all_reporting(0, 90);
	/* one session, the gateway's (sub-devices never CONNECT) */
	ck_assert_uint_eq(gt_count_since(0, "mqtt_connect", NULL, NULL), 1);
	ck_assert_uint_eq(gt_count_since(0, "mqtt_connect", "deviceName", GW_DN), 1);
	ck_assert_uint_eq(gt_count_since(0, "https_register", NULL, NULL), 2 * NODES);
	ck_assert_uint_eq(ops_ok_since(0, "gateway_bind"), 2 * NODES);
	ck_assert_uint_eq(gt_count_since(0, "gateway_bind", NULL, NULL), 2 * NODES);
	ck_assert_uint_ge(ops_ok_since(0, "gateway_online"), 2 * NODES);
	gt_assert_mode(CRED_DIR "/n1-1.json", 0600);
	gt_assert_mode(CRED_DIR "/n2-10.json", 0600);
	text = fx_read_file(fx_path("state/topology/tc.json"));
	ck_assert_ptr_nonnull(strstr(text, "\"gateway\":\"" GW_PID "/" GW_DN "\""));
	free(text);
	r = tc_ctl("gateway", json_pack("{s:s,s:s}", "productId", GW_PID, "deviceName", GW_DN));
	ck_assert_uint_eq(json_array_size(json_object_get(r, "subDevices")), 2 * NODES);
	json_decref(r);
	gt_assert_online("n2-5");

	/* commands to two sub-devices reach their nodes over the gateway's session */
	r = downlink("control", "n1-3",
		     json_pack("{s:{s:i}}", "params", "report_interval_ms", 700));
	ck_assert_int_eq(reply_code(r), 0);
	json_decref(r);
	ck_assert(wait_file_has("sim.log", "property-set '' -> 200 report_interval_ms=700", 5000));
	r = downlink("action", "n2-7", json_pack("{s:s,s:{}}", "actionId", "ping", "params"));
	ck_assert_int_eq(reply_code(r), 0);
	ck_assert(json_integer_value(json_object_get(json_object_get(r, "response"), "uptime_ms")) >
		  0);
	json_decref(r);

	/* the gateway's session ends: every node goes online again before its backlog flows,
	 * without a bind */
	mark = tc_last_seq();
	ctl_ok("kick", json_pack("{s:s,s:s}", "productId", GW_PID, "deviceName", GW_DN));
	ck_assert(tc_wait_since(json_pack("{s:s,s:s,s:i}", "ev", "mqtt_connect", "deviceName",
					  GW_DN, "rc", 0),
				mark, 30));
	wait_all_reporting(mark, 60);
	ck_assert_uint_eq(gt_count_since(mark, "gateway_bind", NULL, NULL), 0);
	ck_assert_uint_ge(ops_ok_since(mark, "gateway_online"), 2 * NODES);
	/* no sub-device published or subscribed before its online */
	ck_assert_uint_eq(gt_count_since(0, "subdev_refused", NULL, NULL), 0);
	gt_assert_no_losses();

	/* a restart with a full store and remembered bindings: no registration, no bind */
	ck_assert(WIFEXITED(status = fx_daemon_stop(NULL)));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	mark = tc_last_seq();
	tc_wait_device_connect_window(GW_PID, GW_DN);
	fx_daemon_start(config("register", tls_endpoint()));
	wait_all_reporting(mark, 60);
	ck_assert_uint_eq(gt_count_since(mark, "https_register", NULL, NULL), 0);
	ck_assert_uint_eq(gt_count_since(mark, "gateway_bind", NULL, NULL), 0);
	ck_assert_uint_ge(ops_ok_since(mark, "gateway_online"), 2 * NODES);

	/* nothing lost, nothing twice: once the buses stop, every record is acknowledged */
	u = gt_stop_sims_all_acked(sim2);
	assert_counted_once(u);
	json_decref(u);
	ck_assert_uint_eq(gt_duplicates("thing_uplink", "report", "clientToken"), 0);
	ck_assert_uint_eq(gt_count_since(0, "subdev_refused", NULL, NULL), 0);
	ck_assert_uint_eq(gt_count_since(0, "subscribe_refused", NULL, NULL), 0);
	/* the gateway's operations within its 30 messages a second */
	ck_assert_uint_eq(gt_count_since(0, "throttled", NULL, NULL), 0);
	ck_assert_uint_eq(gt_count_since(0, "mqtt_connect_limited", NULL, NULL), 0);
}
END_TEST

/* The platform's binding changes (§G18) with PSKs provisioned beforehand (auth = psk). */
START_TEST(test_bindings)
{
	json_int_t mark, deadlettered;
	json_t *ack, *u;

	start_cloud(true);
	for (int bus = 1; bus <= 2; bus++)
		for (int a = 1; a <= NODES; a++)
			tc_provision_psk(gt_node(bus, a), node_psk(bus, a));
	sim2 = gt_sims_start(n_nodes);
	fx_daemon_start(config("psk", tls_endpoint()));
	wait_all_reporting(0, 60);
	ck_assert_uint_eq(ops_ok_since(0, "gateway_bind"), 2 * NODES);
	ck_assert_uint_eq(gt_count_since(0, "https_register", NULL, NULL), 0);

	/* unbound in the console: refused, its records dead-lettered; the others go on */
	buses_hold(true);
	ack = push_acked("gateway_unbind", "n2-4", json_object());
	buses_hold(false);
	ck_assert_int_eq(json_integer_value(json_object_get(ack, "status")), 0);
	json_decref(ack);
	ck_assert(gt_wait_dev_state("n2-4", "refused", 10000));
	u = gt_uplink_status();
	ck_assert_ptr_nonnull(strstr(gt_dev_field(u, "n2-4", "refused"), "unbound in the console"));
	ck_assert_str_eq(gt_dev_field(u, "n2-5", "session"), "online");
	json_decref(u);
	mark = tc_last_seq();
	ck_assert(wait_report("n2-5", mark, 10));
	/* a record of n2-4 dead-lettered, so one it produced after the refusal was not posted */
	ck_assert(gt_wait_counter_above("deadlettered", 0, 10000));
	ck_assert_uint_eq(gt_count_since(mark, "thing_uplink", "deviceName", "n2-4"), 0);
	ck_assert(fx_daemon_log_contains("device n2-4: refused by the platform: unbound in the "
					 "console (change)"));

	/* bound again in the console: it goes online at once, without a bind of its own */
	mark = tc_last_seq();
	json_decref(push_acked("gateway_bind", "n2-4", json_object()));
	ck_assert_msg(wait_report("n2-4", mark, 20), "n2-4 did not come back");
	ck_assert(gt_wait_dev_state("n2-4", "online", 10000));
	ck_assert_uint_eq(gt_count_since(mark, "gateway_bind", NULL, NULL), 0);

	/* unbound without a word (no change) and the session lost: the gateway's next login asks
	 * for its bindings (describe_sub_devices), so the node is bound again before its online,
	 * which is never refused */
	mark = tc_last_seq();
	ctl_ok("gateway_unbind",
	       json_pack("{s:s,s:s,s:s,s:s,s:b}", "productId", GW_PID, "deviceName", GW_DN,
			 "subProductId", TC_PID, "subDeviceName", "n1-2", "notify", 0));
	ctl_ok("kick", json_pack("{s:s,s:s}", "productId", GW_PID, "deviceName", GW_DN));
	ck_assert(tc_wait_since(json_pack("{s:s}", "ev", "gateway_describe"), mark, 30));
	ck_assert(tc_wait_since(json_pack("{s:s,s:s,s:i}", "ev", "gateway_bind", "deviceName",
					  "n1-2", "result", 0),
				mark, 30));
	ck_assert_msg(wait_report("n1-2", mark, 30), "n1-2 did not come back");
	ck_assert_uint_eq(ops_ok_since(mark, "gateway_bind"), 1);
	ck_assert(fx_daemon_log_contains("remembered binding(s) corrected"));
	ck_assert(!tc_wait_since(json_pack("{s:s,s:i}", "ev", "gateway_online", "result", -1), mark,
				 0));

	/* search_devices is acknowledged; unbind_all refuses every node */
	ack = push_acked("search_devices", NULL, json_pack("{s:i}", "status", 1));
	ck_assert_int_eq(json_integer_value(json_object_get(ack, "result")), 0);
	json_decref(ack);
	buses_hold(true);
	ack = push_acked("unbind_all", NULL, json_object());
	buses_hold(false);
	ck_assert_int_eq(json_integer_value(json_object_get(ack, "result")), 0);
	json_decref(ack);
	ck_assert(gt_wait_dev_state("n1-1", "refused", 10000));
	ck_assert(gt_wait_dev_state("n2-10", "refused", 10000));
	deadlettered = gt_counter(u = gt_uplink_status(), "deadlettered");
	json_decref(u);
	ck_assert(gt_wait_counter_above("deadlettered", deadlettered, 10000));
	u = gt_uplink_status();
	assert_counted_once(u);
	json_decref(u);
	ck_assert(fx_daemon_running());
}
END_TEST

/* The gateway's other TLS modes: TLS-PSK through the test's front, and plain TCP. */
START_TEST(test_tls_modes)
{
	char hex[GW_TENCENT_PSK_HEX_MAX], reason[GW_TENCENT_REASON_MAX];
	json_int_t mark;
	int port;

	n_nodes = 3;
	start_cloud(true);
	for (int bus = 1; bus <= 2; bus++)
		for (int a = 1; a <= n_nodes; a++)
			tc_provision_psk(gt_node(bus, a), node_psk(bus, a));
	sim2 = gt_sims_start(n_nodes);

	/* tls = psk: the gateway's PSK keys the handshake, its client id is the identity */
	ck_assert_msg(gw_tencent_psk_hex(GW_PSK, hex, sizeof(hex), reason) == 0, "%s", reason);
	port = tc_pskfront_start_id(GW_PID GW_DN, hex, false);
	fx_daemon_start(config("psk", fx_strf("port = %d\ntls = psk\n", port)));
	wait_all_reporting(0, 60);
	ck_assert(
		tc_wait_since(json_pack("{s:s,s:s,s:s,s:i,s:b}", "ev", "mqtt_connect", "deviceName",
					GW_DN, "auth", "tls-psk", "rc", 0, "hasPassword", 0),
			      0, 10));
	ck_assert(!fx_daemon_log_contains(hex));
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);

	/* tls = no: the signed password over plain TCP */
	mark = tc_last_seq();
	tc_wait_device_connect_window(GW_PID, GW_DN);
	fx_daemon_start(config("psk", fx_strf("port = %d\ntls = no\n", tc_mqtt_port)));
	wait_all_reporting(mark, 60);
	ck_assert(
		tc_wait_since(json_pack("{s:s,s:s,s:s,s:s,s:i}", "ev", "mqtt_connect", "deviceName",
					GW_DN, "auth", "psk", "listener", "mqtt", "rc", 0),
			      mark, 10));
	ck_assert_uint_eq(gt_count_since(mark, "gateway_bind", NULL, NULL), 0);
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("tencent-gateway");
	TCase *tc = tcase_create("gateway");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_gateway);
	tcase_add_test(tc, test_bindings);
	tcase_add_test(tc, test_tls_modes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cc_run(suite());
}
