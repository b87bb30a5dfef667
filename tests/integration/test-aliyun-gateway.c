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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloud.h"
#include "fixture.h"

#define GW_PK "a1GwProd0001"
#define GW_DN "gw-01"
#define GW_DS "gwDeviceSecret789"
#define NODES 10 /* per bus */
#define CRED_DIR "state/credentials/ali"

static char conf_text[4096];
static const char *conf_extra = ""; /* more [uplink ali] keys */

/* "n1-3": bus 1, address 3 */
static const char *node(int bus, int addr)
{
	return fx_strf("n%d-%d", bus, addr);
}

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
					      which == WITH_SECRETS ? json_pack("{s:s,s:s}", "deviceName",
								  node(bus, a), "deviceSecret",
								  fx_strf("secret-%d-%d", bus, a)) :
							json_string(node(bus, a)));
	text = json_dumps(products, JSON_COMPACT);
	json_decref(cl_launch("aliyun_cloud.py", text));
	free(text);
	json_decref(products);
}

static const char *config(const char *auth)
{
	fx_write_secret(fx_path("gateway.secret"), GW_DS);
	bool regnwl = strcmp(auth, "regnwl") == 0;

	fx_write_secret(fx_path("product.secret"), CL_PS);
	snprintf(conf_text, sizeof(conf_text),
		 "[gateway]\n"
		 "state_dir = %s\n"
		 "control_socket = %s\n"
		 "device_name = {port}-{addr}\n"
		 "\n"
		 "[port n1]\n"
		 "path = %s\n"
		 "framing = binary\n"
		 "\n"
		 "[port n2]\n"
		 "path = %s\n"
		 "framing = binary\n"
		 "\n"
		 "[uplink ali]\n"
		 "type = aliyun\n"
		 "product_key = " CL_PK "\n"
		 "host = localhost\n"
		 "port = %d\n"
		 "ca_file = %s\n"
		 "keepalive = 30\n"
		 "reconnect_min_ms = 500\n"
		 "reconnect_max_ms = 4000\n"
		 "topology = gateway\n"
		 "gateway_product_key = " GW_PK "\n"
		 "gateway_device_name = " GW_DN "\n"
		 "gateway_secret_file = %s\n"
		 "auth = %s\n"
		 "%s%s%s"
		 "max_devices = 64\n"
		 "%s",
		 fx_path("state"), fx_path("control"), fx_path("tty-n1"), fx_path("tty-n2"),
		 cl_mqtts_port, fx_path("broker/ca.crt"), fx_path("gateway.secret"), auth,
		 regnwl ? "product_secret_file = " : "", regnwl ? fx_path("product.secret") : "",
		 regnwl ? "\n" : "", conf_extra);
	return conf_text;
}

/* Two buses of NODES nodes, one reading a second each. */
static pid_t sim2;

static void start_sims(void)
{
	char link1[4096], link2[4096];
	const char *const args1[] = { "--pty",
				      "--link",
				      link1,
				      "--framing",
				      "binary",
				      "--nodes",
				      "10",
				      "--addr",
				      "1",
				      "--rate",
				      "10",
				      "--uid",
				      "0123456789abcdef01230001",
				      NULL };
	const char *const args2[] = { fx_env("GW_SIM"),
				      "--pty",
				      "--link",
				      link2,
				      "--framing",
				      "binary",
				      "--nodes",
				      "10",
				      "--addr",
				      "1",
				      "--rate",
				      "10",
				      "--seed",
				      "7",
				      "--uid",
				      "0123456789abcdef01230101",
				      NULL };

	snprintf(link1, sizeof(link1), "%s", fx_path("tty-n1"));
	snprintf(link2, sizeof(link2), "%s", fx_path("tty-n2"));
	(void)fx_sim_start(args1);
	sim2 = fx_spawn(args2, "sim2.log");
}

/* Events since seq named ev of sub-device dn (NULL: any device of CL_PK). */
static size_t count_since(json_int_t since, const char *ev, const char *dn)
{
	json_t *r = cl_ctl("log",
			   json_pack("{s:I,s:s,s:i}", "since", since, "ev", ev, "limit", 1000000));
	size_t i, n = 0;
	json_t *e;

	json_array_foreach(json_object_get(r, "events"), i, e) {
		const char *d = json_string_value(json_object_get(e, "deviceName"));
		const char *op = json_string_value(json_object_get(e, "op"));

		if (strcmp(ev, "gw_request") == 0 && dn && (!op || strcmp(op, dn) != 0))
			continue;
		if (strcmp(ev, "gw_request") != 0 && dn && (!d || strcmp(d, dn) != 0))
			continue;
		n++;
	}
	json_decref(r);
	return n;
}

/* Every node's readings (but skip's) arrive on its own topics after seq since. */
static void wait_posting_but(json_int_t since, int timeout_s, const char *skip)
{
	for (int bus = 1; bus <= 2; bus++)
		for (int a = 1; a <= NODES; a++)
			ck_assert_msg((skip && strcmp(node(bus, a), skip) == 0) ||cl_wait_since(json_pack("{s:s,s:s,s:s,s:i}", "ev",
							      "alink_post", "productKey", CL_PK,
							      "deviceName", node(bus, a), "code",
							      200),
						    since, timeout_s),
				      "no accepted post of %s", node(bus, a));
}

static void wait_all_posting(json_int_t since, int timeout_s)
{
	wait_posting_but(since, timeout_s, NULL);
}

/* The status of the uplink "ali" from sensorgwctl. */
static json_t *uplink_status(void)
{
	const char *const argv[] = { fx_env("GW_CTL"), "status",           "--json",
				     "--socket",       fx_path("control"), NULL };
	char *out = NULL, *err = NULL;
	json_t *o, *u = NULL, *v;
	size_t i;

	ck_assert_int_eq(fx_run(argv, &out, &err, 10000), 0);
	o = json_loads(out, 0, NULL);
	ck_assert_msg(o, "status is not JSON: %s", out);
	fx_check_status_schema(o);
	json_array_foreach(json_object_get(o, "uplinks"), i, v)
		if (strcmp(json_string_value(json_object_get(v, "name")), "ali") == 0)
			u = json_incref(v);
	json_decref(o);
	free(out);
	free(err);
	ck_assert_ptr_nonnull(u);
	return u;
}

static const char *dev_state(json_t *u, const char *dn, const char *field)
{
	size_t i;
	json_t *v;

	json_array_foreach(json_object_get(u, "devices"), i, v)
		if (strcmp(json_string_value(json_object_get(v, "device")), dn) == 0)
			return json_string_value(json_object_get(v, field));
	return NULL;
}

static bool wait_dev_state(const char *dn, const char *state, int timeout_ms)
{
	int64_t end = fx_mono_ms() + (int64_t)timeout_ms * fx_timeout_scale();

	do {
		json_t *u = uplink_status();
		const char *s = dev_state(u, dn, "session");
		bool ok = s && strcmp(s, state) == 0;

		json_decref(u);
		if (ok)
			return true;
		fx_sleep_ms(200);
	} while (fx_mono_ms() < end);
	return false;
}

static json_int_t counter(json_t *u, const char *name)
{
	return json_integer_value(json_object_get(json_object_get(u, "counters"), name));
}

/* Nothing queued or in flight. */
static bool wait_drained(int timeout_ms)
{
	int64_t end = fx_mono_ms() + (int64_t)timeout_ms * fx_timeout_scale();

	do {
		json_t *u = uplink_status();
		bool ok = counter(u, "queued") == 0 && counter(u, "inflight") == 0;

		json_decref(u);
		if (ok)
			return true;
		fx_sleep_ms(200);
	} while (fx_mono_ms() < end);
	return false;
}

/* Accepted posts with the same id of the same device: a record sent twice. */
static size_t duplicates(void)
{
	json_t *r = cl_ctl("log", json_pack("{s:s,s:i}", "ev", "alink_post", "limit", 1000000));
	json_t *seen = json_object();
	size_t i, n = 0;
	json_t *e;

	json_array_foreach(json_object_get(r, "events"), i, e) {
		const char *key = fx_strf("%s/%s",
					  json_string_value(json_object_get(e, "deviceName")),
					  json_string_value(json_object_get(e, "id")));

		if (json_object_get(seen, key))
			n++;
		json_object_set_new(seen, key, json_true());
	}
	json_decref(seen);
	json_decref(r);
	return n;
}

static void assert_mode(const char *path, mode_t mode)
{
	struct stat st;

	ck_assert_msg(stat(fx_path(path), &st) == 0, "%s is missing", path);
	ck_assert_msg((st.st_mode & 07777) == mode, "%s has mode %04o, not %04o", path,
		      (unsigned)(st.st_mode & 07777), (unsigned)mode);
}

START_TEST(test_gateway)
{
	json_int_t mark;
	json_t *r, *u;
	int status;

	start_cloud(PREREGISTERED);
	r = cl_ctl("set_product", json_pack("{s:s,s:n}", "productKey", CL_PK, "schema"));
	json_decref(r);
	start_sims();
	fx_daemon_start(config("register"));

	/* from an empty state: registered, topology added, logged in, posting */
	wait_all_posting(0, 60);
	ck_assert_uint_eq(count_since(0, "mqtt_connect", NULL), 1);
	ck_assert_uint_eq(count_since(0, "mqtt_connect", GW_DN), 1);
	ck_assert_uint_ge(count_since(0, "gw_request", "topo_add"), 1);
	ck_assert_uint_eq(count_since(0, "gw_request", "sub_register"), 2 * NODES);
	assert_mode(CRED_DIR "/n1-1.json", 0600);
	assert_mode(CRED_DIR "/n2-10.json", 0600);
	ck_assert(cl_file_exists(fx_path("state/topology/ali.json")));
	u = uplink_status();
	ck_assert_str_eq(json_string_value(json_object_get(u, "topology")), "gateway");
	ck_assert_str_eq(json_string_value(
				 json_object_get(json_object_get(u, "gateway"), "session")),
			 "online");
	ck_assert_str_eq(dev_state(u, "n2-5", "session"), "online");
	ck_assert(json_is_true(
		json_object_get(json_array_get(json_object_get(u, "devices"), 0), "attached")));
	json_decref(u);

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
	ck_assert_uint_eq(count_since(mark, "gw_request", "topo_add"), 0);
	ck_assert_uint_eq(count_since(mark, "gw_request", "sub_register"), 0);
	/* no sub-device published before its login (§G10: 520) */
	ck_assert_uint_eq(count_since(0, "subdev_refused", NULL), 0);

	u = uplink_status();
	ck_assert_int_eq(counter(u, "deadlettered"), 0);
	ck_assert_int_eq(counter(u, "rejected"), 0);
	ck_assert_int_eq(counter(u, "dropped_overflow"), 0);
	json_decref(u);

	/* a restart with a full store: no registration, no topology add */
	ck_assert(WIFEXITED(status = fx_daemon_stop(NULL)));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	mark = cl_seq();
	fx_daemon_start(config("register"));
	wait_all_posting(mark, 60);
	ck_assert_uint_eq(count_since(mark, "gw_request", "topo_add"), 0);
	ck_assert_uint_eq(count_since(mark, "gw_request", "sub_register"), 0);
	ck_assert_uint_ge(count_since(mark, "gw_request", "batch_login") +
				  count_since(mark, "gw_request", "login"),
			  1);

	/* nothing lost, nothing twice: once the buses stop, every record is acknowledged */
	fx_sim_stop();
	fx_child_stop(sim2);
	ck_assert(wait_drained(30000));
	u = uplink_status();
	ck_assert_int_eq(counter(u, "produced"), counter(u, "acked"));
	ck_assert_int_eq(counter(u, "deadlettered"), 0);
	ck_assert_int_eq(counter(u, "rejected"), 0);
	json_decref(u);
	ck_assert_uint_eq(duplicates(), 0);
	ck_assert_uint_eq(count_since(0, "subdev_refused", NULL), 0);
}
END_TEST

/* Disabled, enabled and deleted in the console (§G6, §G10, §G12), with DeviceSecrets
 * provisioned beforehand (auth = device-secret). */
START_TEST(test_lifecycle)
{
	json_int_t mark, deadlettered;
	json_t *u;

	start_cloud(WITH_SECRETS);
	json_decref(cl_ctl("set_product", json_pack("{s:s,s:n}", "productKey", CL_PK, "schema")));
	/* n2-9's DeviceSecret is wrong: its topology add is refused (401, §G4) alone, the others
	 * are not held back */
	for (int bus = 1; bus <= 2; bus++)
		for (int a = 1; a <= NODES; a++)
			cl_provision(node(bus, a), bus == 2 && a == 9 ? "wrongSecret" :
				     fx_strf("secret-%d-%d", bus, a));
	start_sims();
	fx_daemon_start(config("device-secret"));
	wait_posting_but(0, 60, "n2-9");
	ck_assert_uint_eq(count_since(0, "gw_request", "sub_register"), 0);
	ck_assert(wait_dev_state("n2-9", "refused", 20000));
	u = uplink_status();
	ck_assert_msg(strstr(dev_state(u, "n2-9", "refused"), "401"), "refused: %s",
		      dev_state(u, "n2-9", "refused"));
	ck_assert_str_eq(dev_state(u, "n2-9", "provisioning"), "needs-provisioning");
	ck_assert_int_gt(counter(u, "deadlettered"), 0);
	json_decref(u);
	ck_assert_uint_eq(count_since(0, "alink_post", "n2-9"), 0);

	/* disabled: logged out, its records wait; the others go on */
	json_decref(cl_ctl("disable_subdev", cl_dev_args("n1-2")));
	ck_assert(wait_dev_state("n1-2", "disabled", 10000));
	mark = cl_seq();
	ck_assert(cl_wait_since(json_pack("{s:s,s:s,s:i}", "ev", "alink_post", "deviceName", "n1-3",
					  "code", 200),
				mark, 10));
	ck_assert_uint_eq(count_since(mark, "alink_post", "n1-2"), 0);
	u = uplink_status();
	deadlettered = counter(u, "deadlettered");
	json_decref(u);

	/* enabled: logged in again, what waited arrives */
	mark = cl_seq();
	json_decref(cl_ctl("enable_subdev", cl_dev_args("n1-2")));
	ck_assert(cl_wait_since(json_pack("{s:s,s:s,s:i}", "ev", "alink_post", "deviceName", "n1-2",
					  "code", 200),
				mark, 30));
	ck_assert(wait_dev_state("n1-2", "online", 10000));

	/* deleted: refused, its records dead-lettered with the reason; the others go on */
	json_decref(cl_ctl("delete_subdev", cl_dev_args("n2-4")));
	ck_assert(wait_dev_state("n2-4", "refused", 10000));
	u = uplink_status();
	ck_assert_ptr_nonnull(strstr(dev_state(u, "n2-4", "refused"), "deleted"));
	json_decref(u);
	mark = cl_seq();
	ck_assert(cl_wait_since(json_pack("{s:s,s:s,s:i}", "ev", "alink_post", "deviceName", "n2-5",
					  "code", 200),
				mark, 10));
	fx_sleep_ms(1500);
	u = uplink_status();
	ck_assert_int_gt(counter(u, "deadlettered"), deadlettered);
	json_decref(u);
	ck_assert_uint_eq(count_since(mark, "alink_post", "n2-4"), 0);
	ck_assert(fx_daemon_log_contains("device n2-4: refused by the platform: deleted in the "
					 "console"));
}
END_TEST

/* auth = regnwl: sub-devices nobody created, registered through the gateway with
 * product_register signed with the ProductSecret (§G13). */
START_TEST(test_regnwl)
{
	start_cloud(NONE);
	json_decref(cl_ctl("set_product", json_pack("{s:s,s:n}", "productKey", CL_PK, "schema")));
	start_sims();
	fx_daemon_start(config("regnwl"));
	wait_all_posting(0, 60);
	ck_assert_uint_eq(count_since(0, "gw_request", "product_register"), 2 * NODES);
	ck_assert_uint_eq(count_since(0, "gw_request", "sub_register"), 0);
	ck_assert(cl_file_exists(fx_path(CRED_DIR "/n2-3.json")));
}
END_TEST

/* idle_logout_s: a bus that falls silent has its sub-devices logged out (combine/logout, §G9);
 * they log in again when their nodes speak. */
START_TEST(test_idle_logout)
{
	char link2[4096];
	const char *const args2[] = { fx_env("GW_SIM"), "--pty", "--link", link2, "--framing",
				      "binary", "--nodes", "10", "--addr", "1", "--rate", "10",
				      "--seed", "9", "--uid", "0123456789abcdef01230101", NULL };
	const char *const out[] = { "device n2-1: no records for 60 s (idle_logout_s): logging it "
				    "out", NULL };
	json_int_t mark;

	start_cloud(WITH_SECRETS);
	json_decref(cl_ctl("set_product", json_pack("{s:s,s:n}", "productKey", CL_PK, "schema")));
	for (int bus = 1; bus <= 2; bus++)
		for (int a = 1; a <= NODES; a++)
			cl_provision(node(bus, a), fx_strf("secret-%d-%d", bus, a));
	start_sims();
	conf_extra = "idle_logout_s = 60\n";
	fx_daemon_start(config("device-secret"));
	conf_extra = "";
	wait_all_posting(0, 60);
	fx_child_stop(sim2);
	ck_assert(fx_daemon_wait_log_line(out, 90000));
	ck_assert(wait_dev_state("n2-1", "logged-out", 10000));
	ck_assert(wait_dev_state("n1-1", "online", 1000));
	ck_assert_uint_ge(count_since(0, "gw_request", "logout"), NODES);
	mark = cl_seq();
	/* fx_path() rotates its buffers: keep the link's name */
	snprintf(link2, sizeof(link2), "%s", fx_path("tty-n2"));
	sim2 = fx_spawn(args2, "sim2.log");
	ck_assert(cl_wait_since(json_pack("{s:s,s:s,s:i}", "ev", "alink_post", "deviceName",
					  "n2-1", "code", 200), mark, 30));
	ck_assert(wait_dev_state("n2-1", "online", 10000));
	ck_assert_uint_eq(count_since(0, "subdev_refused", NULL), 0);
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
