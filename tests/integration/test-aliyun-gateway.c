/* SPDX-License-Identifier: MIT */
/*
 * topology = gateway against the loopback Aliyun test cloud (tests/cloud/aliyun_cloud.py,
 * docs/protocols/gateway.md §G2-§G14) with the real daemon and two sensorgw-sim buses of ten
 * binary nodes each: from an empty state directory, one gateway session registers every node's
 * sub-device through it (thing/sub/register), adds their topology and logs them in, and their
 * readings arrive on their own /sys topics; a gateway reconnect logs every node in again and
 * loses and repeats nothing; a restart with a full credential store registers nothing and adds
 * no topology; commands to two sub-devices are answered by their nodes; a node disabled then
 * enabled in the console waits and comes back; a node deleted in the console has its records
 * dead-lettered with the reason while the others go on.
 */

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloud.h"
#include "fixture.h"
#include "gateway.h"

#define GW_PK "a1GwProd0001"
#define GW_DN "gw-01"
#define GW_DS "gwDeviceSecret789"
#define NODES 10 /* per bus */
#define CRED_DIR "state/credentials/ali"

static const char *conf_extra = ""; /* more [uplink ali] keys */
static pid_t sim2;                  /* bus 2 (gt_sims_start()) */

enum devices { PREREGISTERED, WITH_SECRETS, NONE };

static void start_cloud(enum devices which)
{
	json_t *products = json_pack("{s:[{s:s,s:s,s:b,s:[{s:s,s:s}]},{s:s,s:s,s:b,s:[]}]}",
				     "products", "productKey", GW_PK, "productSecret",
				     "gwProductSecret1", "gateway", 1, "devices", "deviceName",
				     GW_DN, "deviceSecret", GW_DS, "productKey", CL_PK,
				     "productSecret", CL_PS, "dynamicRegistration", 1, "devices");
	json_t *devs = json_object_get(json_array_get(json_object_get(products, "products"), 1),
				       "devices");
	char *text;

	/* pre-registered names without secrets: thing/sub/register issues them (§G13) */
	for (int bus = 1; which != NONE && bus <= 2; bus++)
		for (int a = 1; a <= NODES; a++)
			json_array_append_new(devs,
					      which == WITH_SECRETS ?
						      json_pack("{s:s,s:s}", "deviceName",
								gt_node(bus, a), "deviceSecret",
								fx_strf("secret-%d-%d", bus, a)) :
						      json_string(gt_node(bus, a)));
	text = json_dumps(products, JSON_COMPACT);
	json_decref(cl_launch("aliyun_cloud.py", text));
	free(text);
	json_decref(products);
	gt_init(cl_ctl_port, "ali", true);
	json_decref(cl_ctl("set_product", json_pack("{s:s,s:n}", "productKey", CL_PK, "schema")));
}

static const char *config(const char *auth)
{
	bool regnwl = strcmp(auth, "regnwl") == 0;

	fx_write_secret(fx_path("product.secret"), CL_PS);
	return gt_config("aliyun", GW_DS,
			 fx_strf("product_key = " CL_PK "\n"
				 "port = %d\n"
				 "ca_file = %s\n"
				 "gateway_product_key = " GW_PK "\n"
				 "gateway_device_name = " GW_DN "\n"
				 "auth = %s\n"
				 "%s%s%s"
				 "%s",
				 cl_mqtts_port, fx_path("broker/ca.crt"), auth,
				 regnwl ? "product_secret_file = " : "",
				 regnwl ? fx_path("product.secret") : "", regnwl ? "\n" : "",
				 conf_extra));
}

/* Stores every node's DeviceSecret (secret-<bus>-<addr>), a wrong one for node wrong (NULL:
 * none), as an operator provisions them. */
static void provision_all(const char *wrong)
{
	for (int bus = 1; bus <= 2; bus++)
		for (int a = 1; a <= NODES; a++)
			cl_provision(gt_node(bus, a), wrong && strcmp(gt_node(bus, a), wrong) == 0 ?
							      "wrongSecret" :
							      fx_strf("secret-%d-%d", bus, a));
}

/* An accepted post of dn after seq since. */
static bool posted(const char *dn, json_int_t since, int timeout_s)
{
	return cl_wait_since(json_pack("{s:s,s:s,s:s,s:i}", "ev", "alink_post", "productKey", CL_PK,
				       "deviceName", dn, "code", 200),
			     since, timeout_s);
}

/* Every node's readings arrive on its own topics after seq since. */
static void wait_all_posting(json_int_t since, int timeout_s)
{
	gt_wait_nodes(NULL, posted, "post", since, timeout_s);
}

/* Gateway requests named op (thing/sub/register is "sub_register", ...) after seq since. */
static size_t gw_requests(json_int_t since, const char *op)
{
	return gt_count_since(since, "gw_request", "op", op);
}

START_TEST(test_gateway)
{
	json_int_t mark;
	json_t *r;
	int status;

	start_cloud(PREREGISTERED);
	sim2 = gt_sims_start(NODES);
	fx_daemon_start(config("register"));

	/* from an empty state: registered, topology added, logged in, posting */
	wait_all_posting(0, 60);
	ck_assert_uint_eq(gt_count_since(0, "mqtt_connect", NULL, NULL), 1);
	ck_assert_uint_eq(gt_count_since(0, "mqtt_connect", "deviceName", GW_DN), 1);
	ck_assert_uint_ge(gw_requests(0, "topo_add"), 1);
	ck_assert_uint_eq(gw_requests(0, "sub_register"), 2 * NODES);
	gt_assert_mode(CRED_DIR "/n1-1.json", 0600);
	gt_assert_mode(CRED_DIR "/n2-10.json", 0600);
	ck_assert(cl_file_exists(fx_path("state/topology/ali.json")));
	gt_assert_online("n2-5");
	{
		/* the plain status names the gateway's session and how many sub-devices are up */
		const char *const argv[] = { fx_env("GW_CTL"), "status", "--socket",
					     fx_path("control"), NULL };
		char *out = NULL, *err = NULL;

		ck_assert_int_eq(fx_run(argv, &out, &err, 10000), 0);
		if (!strstr(out, "gateway " GW_PK "/" GW_DN ": online; 20 of 20 sub-device(s) "
				 "online") ||
		    !strstr(out, "device n1-1: online, provisioned, attached"))
			fprintf(stderr, "sensorgwctl status:\n%s", out);
		ck_assert(strstr(out, "gateway " GW_PK "/" GW_DN ": online; 20 of 20 sub-device(s) "
				      "online"));
		ck_assert(strstr(out, "device n1-1: online, provisioned, attached"));
		free(out);
		free(err);
	}

	/* commands to two sub-devices reach their nodes over the gateway's session */
	r = cl_downlink("property_set",
			json_pack("{s:s,s:{s:i}}", "deviceName", "n1-3", "params",
				  "report_interval_ms", 700),
			10);
	ck_assert_int_eq(cl_reply_code(r), 200);
	ck_assert_str_eq(json_string_value(json_object_get(r, "topic")),
			 "/sys/" CL_PK "/n1-3/thing/service/property/set_reply");
	ck_assert(cl_sim_log_has("property-set '' -> 200 report_interval_ms=700"));
	json_decref(r);
	r = cl_downlink("service_call",
			json_pack("{s:s,s:s,s:{}}", "deviceName", "n2-7", "service", "ping",
				  "params"),
			10);
	ck_assert_int_eq(cl_reply_code(r), 200);
	ck_assert_str_eq(json_string_value(json_object_get(r, "topic")),
			 "/sys/" CL_PK "/n2-7/thing/service/ping_reply");
	json_decref(r);

	/* the gateway's session ends: every node logs in again before its backlog flows */
	mark = cl_seq();
	json_decref(
		cl_ctl("kick", json_pack("{s:s,s:s}", "productKey", GW_PK, "deviceName", GW_DN)));
	ck_assert(cl_wait_since(json_pack("{s:s,s:s}", "ev", "mqtt_connect", "deviceName", GW_DN),
				mark, 30));
	wait_all_posting(mark, 60);
	ck_assert_uint_eq(gw_requests(mark, "topo_add"), 0);
	ck_assert_uint_eq(gw_requests(mark, "sub_register"), 0);
	/* no sub-device published before its login (§G10: 520) */
	ck_assert_uint_eq(gt_count_since(0, "subdev_refused", NULL, NULL), 0);
	gt_assert_no_losses();

	/* a restart with a full store: no registration, no topology add */
	ck_assert(WIFEXITED(status = fx_daemon_stop(NULL)));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	mark = cl_seq();
	fx_daemon_start(config("register"));
	wait_all_posting(mark, 60);
	ck_assert_uint_eq(gw_requests(mark, "topo_add"), 0);
	ck_assert_uint_eq(gw_requests(mark, "sub_register"), 0);
	ck_assert_uint_ge(gw_requests(mark, "batch_login") + gw_requests(mark, "login"), 1);

	/* nothing lost, nothing twice: once the buses stop, every record is acknowledged */
	json_decref(gt_stop_sims_all_acked(sim2));
	ck_assert_uint_eq(gt_duplicates("alink_post", NULL, "id"), 0);
	ck_assert_uint_eq(gt_count_since(0, "subdev_refused", NULL, NULL), 0);
}
END_TEST

/* Disabled, enabled and deleted in the console (§G6, §G10, §G12), with DeviceSecrets
 * provisioned beforehand (auth = device-secret). */
START_TEST(test_lifecycle)
{
	json_int_t mark, deadlettered;
	json_t *u;

	start_cloud(WITH_SECRETS);
	/* n2-9's DeviceSecret is wrong: its topology add is refused (401, §G4) alone, the others
	 * are not held back */
	provision_all("n2-9");
	sim2 = gt_sims_start(NODES);
	fx_daemon_start(config("device-secret"));
	gt_wait_nodes("n2-9", posted, "post", 0, 60);
	ck_assert_uint_eq(gw_requests(0, "sub_register"), 0);
	ck_assert(gt_wait_dev_state("n2-9", "refused", 20000));
	u = gt_uplink_status();
	ck_assert_msg(strstr(gt_dev_field(u, "n2-9", "refused"), "401"), "refused: %s",
		      gt_dev_field(u, "n2-9", "refused"));
	ck_assert_str_eq(gt_dev_field(u, "n2-9", "provisioning"), "needs-provisioning");
	ck_assert_int_gt(gt_counter(u, "deadlettered"), 0);
	json_decref(u);
	ck_assert_uint_eq(gt_count_since(0, "alink_post", "deviceName", "n2-9"), 0);

	/* disabled: logged out, its records wait; the others go on */
	json_decref(cl_ctl("disable_subdev", cl_dev_args("n1-2")));
	ck_assert(gt_wait_dev_state("n1-2", "disabled", 10000));
	mark = cl_seq();
	ck_assert(cl_wait_since(json_pack("{s:s,s:s,s:i}", "ev", "alink_post", "deviceName", "n1-3",
					  "code", 200),
				mark, 10));
	ck_assert_uint_eq(gt_count_since(mark, "alink_post", "deviceName", "n1-2"), 0);
	u = gt_uplink_status();
	deadlettered = gt_counter(u, "deadlettered");
	json_decref(u);

	/* enabled: logged in again, what waited arrives */
	mark = cl_seq();
	json_decref(cl_ctl("enable_subdev", cl_dev_args("n1-2")));
	ck_assert(cl_wait_since(json_pack("{s:s,s:s,s:i}", "ev", "alink_post", "deviceName", "n1-2",
					  "code", 200),
				mark, 30));
	ck_assert(gt_wait_dev_state("n1-2", "online", 10000));

	/* deleted: refused, its records dead-lettered with the reason; the others go on */
	json_decref(cl_ctl("delete_subdev", cl_dev_args("n2-4")));
	ck_assert(gt_wait_dev_state("n2-4", "refused", 10000));
	u = gt_uplink_status();
	ck_assert_ptr_nonnull(strstr(gt_dev_field(u, "n2-4", "refused"), "deleted"));
	json_decref(u);
	mark = cl_seq();
	ck_assert(cl_wait_since(json_pack("{s:s,s:s,s:i}", "ev", "alink_post", "deviceName", "n2-5",
					  "code", 200),
				mark, 10));
	/* a record of n2-4 dead-lettered, so one it produced after the refusal was not posted */
	ck_assert(gt_wait_counter_above("deadlettered", deadlettered, 10000));
	ck_assert_uint_eq(gt_count_since(mark, "alink_post", "deviceName", "n2-4"), 0);
	ck_assert(fx_daemon_log_contains("device n2-4: refused by the platform: deleted in the "
					 "console"));
}
END_TEST

/* auth = regnwl: sub-devices nobody created, registered through the gateway with
 * product_register signed with the ProductSecret (§G13). */
START_TEST(test_regnwl)
{
	start_cloud(NONE);
	sim2 = gt_sims_start(NODES);
	fx_daemon_start(config("regnwl"));
	wait_all_posting(0, 60);
	ck_assert_uint_eq(gw_requests(0, "product_register"), 2 * NODES);
	ck_assert_uint_eq(gw_requests(0, "sub_register"), 0);
	ck_assert(cl_file_exists(fx_path(CRED_DIR "/n2-3.json")));

	/* a damaged topology file: said so, the topology added again, nothing registered */
	{
		const char *const damaged[] = { "the topology file topology/ali.json is damaged; "
						"adding the topology of every sub-device again",
						NULL };
		json_int_t mark;
		int status;

		ck_assert(WIFEXITED(status = fx_daemon_stop(NULL)));
		ck_assert_int_eq(WEXITSTATUS(status), 0);
		fx_write_file(fx_path("state/topology/ali.json"), "{\"gateway\":", 0600);
		mark = cl_seq();
		fx_daemon_start(config("regnwl"));
		ck_assert(fx_daemon_wait_log_line(damaged, 10000));
		wait_all_posting(mark, 60);
		ck_assert_uint_ge(gw_requests(mark, "topo_add"), 1);
		ck_assert_uint_eq(gw_requests(mark, "product_register"), 0);
	}
}
END_TEST

/* idle_logout_s: a bus that falls silent has its sub-devices logged out (combine/logout, §G9);
 * they log in again when their nodes speak. */
START_TEST(test_idle_logout)
{
	const char *const out[] = { "device n2-1: no records for 60 s (idle_logout_s): logging it "
				    "out", NULL };
	json_int_t mark;

	start_cloud(WITH_SECRETS);
	provision_all(NULL);
	sim2 = gt_sims_start(NODES);
	conf_extra = "idle_logout_s = 60\n";
	fx_daemon_start(config("device-secret"));
	conf_extra = "";
	wait_all_posting(0, 60);
	fx_child_stop(sim2);
	ck_assert(fx_daemon_wait_log_line(out, 90000));
	/* idle_logout_s is checked every 5 s: the bus's last readings may fall either side */
	for (int a = 1; a <= NODES; a++)
		ck_assert(gt_wait_dev_state(gt_node(2, a), "logged-out", 10000));
	ck_assert(gt_wait_dev_state("n1-1", "online", 1000));
	ck_assert_uint_ge(gw_requests(0, "logout"), NODES);
	mark = cl_seq();
	sim2 = gt_sim2_start(9);
	ck_assert(cl_wait_since(json_pack("{s:s,s:s,s:i}", "ev", "alink_post", "deviceName",
					  "n2-1", "code", 200), mark, 30));
	ck_assert(gt_wait_dev_state("n2-1", "online", 10000));
	ck_assert_uint_eq(gt_count_since(0, "subdev_refused", NULL, NULL), 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("aliyun-gateway");
	TCase *tc = tcase_create("gateway");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_gateway);
	tcase_add_test(tc, test_lifecycle);
	tcase_add_test(tc, test_regnwl);
	suite_add_tcase(s, tc);
	tc = tcase_create("idle");
	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_idle_logout);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cl_run(suite());
}
