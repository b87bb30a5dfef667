/* SPDX-License-Identifier: MIT */
/*
 * Limits on what a peer controls, with the real daemon:
 *   - [gateway] max_nodes: three text nodes on one pty, a table of two; the third node's frames
 *     are dropped (not spooled), counted and logged once, the first two keep delivering.
 *   - command_rate / command_burst: a burst of property sets from the Aliyun test cloud; the
 *     first command_burst reach the simulated node, the rest are answered 429 at once.
 *   - the Aliyun answer queue (GW_ALIYUN_UPLINK_REPLIES_MAX): answers waiting for max_rate
 *     beyond 64 are dropped, counted and logged; every other one reaches the cloud.
 *   - command_rate on the Tencent uplink, against the Tencent test cloud: controls over the
 *     rate are answered 429 at once, the others reach the node.
 */

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloud.h"
#include "fixture.h"
#include "tcloud.h"

#define PK CL_PK
#define DN CL_DN /* dev-n1 */
#define DS CL_DS

/* ---- helpers of this file ---- */

/* text with line inserted after the first "[gateway]\n" (freed). Returns a new text. */
static char *gateway_key(char *text, const char *line)
{
	const char *at = strstr(text, "[gateway]\n");
	char *out = NULL;
	size_t head;

	ck_assert_ptr_nonnull(at);
	head = (size_t)(at - text) + strlen("[gateway]\n");
	ck_assert_int_gt(asprintf(&out, "%.*s%s%s", (int)head, text, line, text + head), 0);
	free(text);
	return out;
}

/* How many lines of the file hold every one of the NULL-terminated needles. */
static int count_lines(const char *file, const char *const needles[])
{
	char *text = fx_read_file(file);
	char *line, *save = NULL;
	int n = 0;

	ck_assert_ptr_nonnull(text);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		bool all = true;

		for (size_t i = 0; needles[i] && all; i++)
			all = strstr(line, needles[i]) != NULL;
		n += all;
	}
	free(text);
	return n;
}

/* `sensorgwctl status` (--json when json) against fx_path("control"); the output (freed by
 * the caller). */
static char *ctl_status(bool json)
{
	const char *const argv_json[] = { fx_env("GW_CTL"), "status", "--json", "--socket",
		fx_path("control"), NULL };
	const char *const argv_plain[] = { fx_env("GW_CTL"), "status", "--socket",
		fx_path("control"), NULL };
	char *out = NULL, *err = NULL;
	int st = fx_run(json ? argv_json : argv_plain, &out, &err, 10000);

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status failed: %s", err);
	free(err);
	return out;
}

static json_t *status_json(void)
{
	char *out = ctl_status(true);
	json_error_t jerr;
	json_t *o = json_loads(out, 0, &jerr);

	ck_assert_msg(json_is_object(o), "not JSON: %s (%s)", jerr.text, out);
	free(out);
	fx_check_status_schema(o);
	return o;
}

static json_int_t num_at(const json_t *o, const char *a, const char *b)
{
	return json_integer_value(json_object_get(json_object_get(o, a), b));
}

/* A counter of the first uplink. */
static json_int_t uplink_counter(const json_t *st, const char *name)
{
	const json_t *u = json_array_get(json_object_get(st, "uplinks"), 0);

	return num_at(u, "counters", name);
}

/* ---- max_nodes ---- */

START_TEST(test_max_nodes)
{
	const char *const warned[] = { "warning: port txt: node table full (max_nodes = 2)",
		"address 3", NULL };
	const char *const any_refusal[] = { "node table full", NULL };
	struct fx_pty txt, bin;
	struct fx_msg *m;
	json_t *st;
	char line[128], *conf, *plain;
	size_t n;
	int per_node[4] = { 0 };
	int64_t wait_stop_ms;

	fx_broker_start();
	fx_subscriber_start("sensorgw/#");
	fx_pty_new(&txt, "tty-txt");
	fx_pty_new(&bin, "tty-bin");
	conf = gateway_key(fx_config(fx_path("broker/ca.crt"), NULL), "max_nodes = 2\n");
	fx_daemon_start(conf);
	free(conf);
	ck_assert(fx_daemon_wait_connected(FX_WAIT_MS));
	ck_assert(fx_pty_wait_opened(&txt, fx_daemon_pid(), FX_WAIT_MS));

	/* five rounds of nodes 1, 2 and 3 on one line; node 3 comes after the table is full */
	for (int r = 0; r < 5; r++)
		for (int a = 1; a <= 3; a++) {
			int len = snprintf(line, sizeof(line), "@%d i=%d,MQ2=%d\r\n", a, r, 30 + a);

			fx_pty_write(&txt, line, (size_t)len);
		}
	/* the frames are handled in order: once node 2's last is delivered, node 3's were seen */
	ck_assert_msg(fx_subscriber_wait_count(10, 20000), "only %zu of 10 messages arrived",
		      fx_subscriber_count());
	/* a little longer: nothing of node 3 may follow */
	fx_sleep_ms(500);
	m = fx_subscriber_messages(&n);
	ck_assert_uint_eq(n, 10);
	for (size_t i = 0; i < n; i++) {
		const char *dev = strstr(m[i].topic, "txt-");

		ck_assert_msg(dev, "unexpected topic %s", m[i].topic);
		ck_assert_msg(dev[4] >= '1' && dev[4] <= '2' && dev[5] == '/',
			      "a message of a refused node: %s", m[i].topic);
		per_node[dev[4] - '0']++;
	}
	fx_msgs_free(m, n);
	ck_assert_int_eq(per_node[1], 5);
	ck_assert_int_eq(per_node[2], 5);

	/* counted: one node, its five frames; not spooled */
	st = status_json();
	ck_assert_int_eq(num_at(st, "node_table", "known"), 2);
	ck_assert_int_eq(num_at(st, "node_table", "max"), 2);
	ck_assert_int_eq(num_at(st, "node_table", "refused"), 1);
	ck_assert_int_eq(num_at(st, "node_table", "frames_refused"), 5);
	ck_assert_uint_eq(json_array_size(json_object_get(st, "nodes")), 2);
	ck_assert_int_eq(num_at(st, "spool", "appended"), 10);
	json_decref(st);
	plain = ctl_status(false);
	ck_assert_msg(strstr(plain, "2 node(s) of at most 2 (max_nodes); refused: 1 node(s), 5 "
			     "frame(s) dropped"), "plain status: %s", plain);
	free(plain);

	/* logged once above debug, however many of its frames came */
	ck_assert_int_eq(count_lines(fx_path("daemon.log"), warned), 1);
	ck_assert_int_eq(count_lines(fx_path("daemon.log"), any_refusal), 5);

	/* the known nodes go on; a second refused node is logged once more */
	cl_write_line(&txt, "@1 i=5,MQ2=31\r\n@4 i=5,MQ2=34\r\n@2 i=5,MQ2=32\r\n");
	ck_assert(fx_subscriber_wait_count(12, FX_WAIT_MS));
	st = status_json();
	ck_assert_int_eq(num_at(st, "node_table", "refused"), 2);
	ck_assert_int_eq(num_at(st, "node_table", "frames_refused"), 6);
	json_decref(st);
	{
		const char *const warned4[] = { "warning: port txt: node table full", "address 4",
			NULL };

		ck_assert_int_eq(count_lines(fx_path("daemon.log"), warned4), 1);
	}

	ck_assert(fx_daemon_running());
	ck_assert_int_eq(fx_daemon_stop(&wait_stop_ms), 0);
	fx_pty_close(&txt);
	fx_pty_close(&bin);
}
END_TEST

/* ---- the Aliyun cloud ---- */

/*
 * The cloud with DN, its secret in the store, and the daemon with extra in [uplink ali] and
 * a control socket. With sim, DN is the binary node simulated on tty-n1 (it answers commands);
 * otherwise a text pty *txt, whose one record gives DN its session. Returns when DN is online.
 */
static void start_cloud(const char *extra, bool sim, struct fx_pty *txt)
{
	const char *const online[] = { "device " DN ": online", NULL };
	char *conf;
	json_t *r;

	cl_start(fx_strf("{\"deviceName\": \"" DN "\", \"deviceSecret\": \"%s\"}", DS));
	/* the simulator's gas readings are not in the test product's schema */
	r = cl_ctl("set_product", json_pack("{s:s,s:n}", "productKey", PK, "schema"));
	ck_assert(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	cl_provision(DN, DS);
	conf = cl_aliyun_config(extra);
	if (sim) {
		(void)cl_sim_start("0123456789abcdef01234567");
		conf = cl_binary_config(conf, NULL);
	} else {
		fx_pty_new(txt, "tty-n1");
	}
	/* cl_aliyun_config() names the control socket fx_path("control") */
	fx_daemon_start(conf);
	free(conf);
	if (!sim) {
		ck_assert(fx_pty_wait_opened(txt, fx_daemon_pid(), FX_WAIT_MS));
		cl_write_line(txt, "temp=5.5,hum=5\r\n");
	}
	ck_assert_msg(fx_daemon_wait_log_line(online, 30000), DN " never came online");
	ck_assert(cl_wait(json_pack("{s:s,s:s}", "ev", "mqtt_subscribe", "deviceName", DN), 10));
}

/* Sends a property set without waiting for its answer; checks it reached the session. */
static void send_property_set(int i)
{
	char id[16];
	json_t *r;

	snprintf(id, sizeof(id), "%d", 500 + i);
	r = cl_ctl("property_set", json_pack("{s:s,s:s,s:s,s:{s:i}}", "productKey", PK,
					     "deviceName", DN, "id", id, "params",
					     "report_interval_ms", 1000 + i));
	ck_assert_msg(json_is_true(json_object_get(r, "ok")), "property_set refused: %s",
		      json_string_value(json_object_get(r, "error")));
	ck_assert_msg(json_array_size(json_object_get(r, "deliveredTo")) == 1,
		      "property_set %d was not delivered", i);
	json_decref(r);
}

/* The cloud's replies from DN so far; counts by code into *n200, *n429, *other. */
static size_t count_replies(json_int_t want_ok, size_t *n_ok, size_t *n429, size_t *other)
{
	json_t *r = cl_ctl("replies", cl_dev_args(DN));
	json_t *v, *list = json_object_get(r, "replies");
	size_t i;

	*n_ok = *n429 = *other = 0;
	json_array_foreach(list, i, v) {
		json_int_t code = json_integer_value(json_object_get(v, "code"));

		ck_assert_msg(json_is_true(json_object_get(v, "matched")), "an unmatched reply");
		if (code == want_ok)
			(*n_ok)++;
		else if (code == 429)
			(*n429)++;
		else
			(*other)++;
	}
	i = json_array_size(list);
	json_decref(r);
	return i;
}

#define BURST 4
#define N_CMDS 14

START_TEST(test_command_rate)
{
	const char *const warned[] = { "warning:", "more than command_rate = 1 commands a second",
		NULL };
	size_t n_ok = 0, n429 = 0, other = 0, total = 0, sim_got;
	int64_t t0, elapsed_ms, end;
	json_t *st, *reply;
	char *simlog, *p;

	start_cloud("auth = device-secret\ncommand_rate = 1\ncommand_burst = 4\n", true, NULL);
	/* let the bucket fill up from start-up */
	fx_sleep_ms(BURST * 1000);

	t0 = fx_mono_ms();
	for (int i = 0; i < N_CMDS; i++)
		send_property_set(i);
	elapsed_ms = fx_mono_ms() - t0;
	end = fx_mono_ms() + 30000;
	while (fx_mono_ms() < end) {
		total = count_replies(200, &n_ok, &n429, &other);
		if (total >= N_CMDS)
			break;
		fx_sleep_ms(200);
	}
	/* none lost: every command was answered, by the node or at once with 429 */
	ck_assert_msg(total == N_CMDS, "%zu of %d commands answered", total, N_CMDS);
	ck_assert_uint_eq(other, 0);
	/* the burst went through, and no more than one a second while the test sent */
	ck_assert_uint_ge(n_ok, BURST);
	ck_assert_msg(n_ok <= BURST + 2 + (size_t)(elapsed_ms / 1000),
		      "%zu passed in %lld ms", n_ok, (long long)elapsed_ms);
	ck_assert_uint_ge(n429, 1);
	ck_assert_uint_eq(n_ok + n429, N_CMDS);
	fprintf(stderr, "command_rate: %d commands sent in %lld ms: %zu reached the node, %zu "
		"answered 429\n", N_CMDS, (long long)elapsed_ms, n_ok, n429);

	/* what passed reached the node, what was refused did not */
	simlog = fx_read_file(fx_path("sim.log"));
	ck_assert_ptr_nonnull(simlog);
	sim_got = 0;
	for (p = simlog; (p = strstr(p, "property-set '' -> 200 report_interval_ms=1")); p++)
		sim_got++;
	free(simlog);
	ck_assert_uint_eq(sim_got, n_ok);

	st = status_json();
	ck_assert_int_eq(uplink_counter(st, "commands"), N_CMDS);
	ck_assert_int_eq(uplink_counter(st, "commands_throttled"), (json_int_t)n429);
	json_decref(st);
	/* one warning (the burst took far less than 10 s), the rest at debug */
	ck_assert_int_eq(count_lines(fx_path("daemon.log"), warned), 1);

	/* the bucket refills: after a pause the next command reaches the node again */
	fx_sleep_ms(2500);
	reply = cl_downlink("property_set", json_pack("{s:s,s:{s:i}}", "deviceName", DN, "params",
						   "report_interval_ms", 700), 10);
	ck_assert_int_eq(cl_reply_code(reply), 200);
	json_decref(reply);
	ck_assert(fx_daemon_running());
	fx_sim_stop();
}
END_TEST

#define N_FLOOD 100
#define REPLIES_MAX 64 /* GW_ALIYUN_UPLINK_REPLIES_MAX */

START_TEST(test_answer_queue)
{
	const char *const warned[] = { "warning:", "answers already wait for room within max_rate",
		NULL };
	const char *const any_drop[] = { "answers already wait for room within max_rate", NULL };
	size_t n_ok = 0, n429 = 0, other = 0, total = 0;
	json_int_t dropped = 0;
	int64_t end;
	struct fx_pty txt;
	json_t *st;

	/* 5 messages a second for the device: answers pile up; commands are not limited here,
	 * and a text node has no command channel, so each is answered at once with 400 */
	start_cloud("auth = device-secret\nmax_rate = 5\ncommand_rate = 0\n", false, &txt);
	for (int i = 0; i < N_FLOOD; i++)
		send_property_set(i);
	/* every answer either reaches the cloud or is counted as dropped; the queue drains at
	 * 5 a second */
	end = fx_mono_ms() + 60000;
	while (fx_mono_ms() < end) {
		total = count_replies(400, &n_ok, &n429, &other);
		st = status_json();
		dropped = uplink_counter(st, "answers_dropped");
		json_decref(st);
		if (total + (size_t)dropped >= N_FLOOD && total > REPLIES_MAX)
			break;
		fx_sleep_ms(500);
	}
	ck_assert_msg(total + (size_t)dropped == N_FLOOD, "%zu answered + %lld dropped of %d",
		      total, (long long)dropped, N_FLOOD);
	ck_assert_uint_eq(n_ok, total);
	fprintf(stderr, "answer queue: %d commands, %zu answers reached the cloud, %lld dropped\n",
		N_FLOOD, total, (long long)dropped);
	/* the queue held 64, a few went out while the test sent: the rest were dropped */
	ck_assert_msg(dropped >= 1, "nothing dropped (%zu answered)", total);
	ck_assert_uint_ge(total, REPLIES_MAX);
	/* the drops are logged, one warning per 10 s, each further one at debug */
	ck_assert_int_ge(count_lines(fx_path("daemon.log"), warned), 1);
	ck_assert_int_le(count_lines(fx_path("daemon.log"), warned), 3);
	ck_assert_int_eq(count_lines(fx_path("daemon.log"), any_drop), (int)dropped);
	ck_assert(fx_daemon_running());
	fx_pty_close(&txt);
}
END_TEST

/* ---- command_rate on the Tencent uplink ---- */

#define TC_BURST 3
#define TC_N_CMDS 10

START_TEST(test_tencent_command_rate)
{
	char link[4096];
	const char *const args[] = { "--pty", "--link", link, "--framing", "binary", "--rate", "2",
				     "--uid", "0123456789abcdef01234567", NULL };
	const char *const online[] = { "device " TC_DN ": online", NULL };
	const char *const warned[] = { "warning:", "more than command_rate = 1 commands a second",
		NULL };
	size_t n_ok = 0, n429 = 0, total = 0, sim_got = 0;
	int64_t t0, elapsed_ms, end;
	char *conf, *simlog, *p;
	json_t *st, *r, *v;
	size_t i;

	tc_start(fx_strf("{\"deviceName\": \"" TC_DN "\", \"psk\": \"%s\"}", TC_PSK), NULL);
	tc_provision_psk(TC_DN, TC_PSK);
	snprintf(link, sizeof(link), "%s", fx_path("tty-n1"));
	(void)fx_sim_start(args);
	conf = tc_config("command_rate = 1\ncommand_burst = 3\n");
	fx_daemon_start(conf);
	free(conf);
	ck_assert_msg(fx_daemon_wait_log_line(online, 30000), TC_DN " never came online");

	t0 = fx_mono_ms();
	for (int k = 0; k < TC_N_CMDS; k++) {
		char tok[32];

		snprintf(tok, sizeof(tok), "rate-%d", k);
		r = tc_ctl("control", json_pack("{s:s,s:s,s:s,s:{s:i}}", "productId", TC_PID,
						"deviceName", TC_DN, "clientToken", tok, "params",
						"report_interval_ms", 1000 + k));
		ck_assert_msg(json_is_true(json_object_get(r, "ok")), "control refused: %s",
			      json_string_value(json_object_get(r, "error")));
		ck_assert_msg(json_array_size(json_object_get(r, "deliveredTo")) == 1,
			      "control %d was not delivered", k);
		json_decref(r);
	}
	elapsed_ms = fx_mono_ms() - t0;
	end = fx_mono_ms() + 30000;
	while (fx_mono_ms() < end) {
		r = tc_ctl("replies", tc_dev_args(TC_DN));
		n_ok = n429 = total = 0;
		json_array_foreach(json_object_get(r, "replies"), i, v) {
			json_int_t code = json_integer_value(json_object_get(v, "code"));

			if (!json_is_true(json_object_get(v, "matched")))
				continue;
			total++;
			n_ok += code == 0;
			n429 += code == 429;
		}
		json_decref(r);
		if (total >= TC_N_CMDS)
			break;
		fx_sleep_ms(200);
	}
	fprintf(stderr, "tencent command_rate: %d controls sent in %lld ms: %zu reached the node, "
		"%zu answered 429\n", TC_N_CMDS, (long long)elapsed_ms, n_ok, n429);
	ck_assert_msg(total == TC_N_CMDS, "%zu of %d controls answered", total, TC_N_CMDS);
	ck_assert_uint_eq(n_ok + n429, TC_N_CMDS);
	ck_assert_uint_ge(n_ok, TC_BURST);
	ck_assert_msg(n_ok <= TC_BURST + 2 + (size_t)(elapsed_ms / 1000),
		      "%zu passed in %lld ms", n_ok, (long long)elapsed_ms);
	ck_assert_uint_ge(n429, 1);

	simlog = fx_read_file(fx_path("sim.log"));
	ck_assert_ptr_nonnull(simlog);
	for (p = simlog; (p = strstr(p, "-> 200 report_interval_ms=1")); p++)
		sim_got++;
	free(simlog);
	ck_assert_uint_eq(sim_got, n_ok);

	st = tc_status_json();
	fx_check_status_schema(st);
	v = tc_status_uplink(st, "tc");
	ck_assert_int_eq(num_at(v, "counters", "commands_throttled"), (json_int_t)n429);
	ck_assert_int_eq(num_at(v, "counters", "commands"), TC_N_CMDS);
	json_decref(st);
	ck_assert_int_eq(count_lines(fx_path("daemon.log"), warned), 1);
	ck_assert(fx_daemon_running());
	fx_sim_stop();
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("limits");
	TCase *tc = tcase_create("limits");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 150);
	tcase_add_test(tc, test_max_nodes);
	tcase_add_test(tc, test_command_rate);
	tcase_add_test(tc, test_answer_queue);
	tcase_add_test(tc, test_tencent_command_rate);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cl_run(suite());
}
