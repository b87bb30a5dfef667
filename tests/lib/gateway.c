/* SPDX-License-Identifier: MIT */
/* The topology = gateway integration tests' common parts; see gateway.h. */

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cloudctl.h"
#include "fixture.h"
#include "gateway.h"
#include "tcloud.h"

static int ctl_port;
static const char *uplink;
static bool check_schema;
static int bus_nodes; /* per bus, from gt_sims_start() */

void gt_init(int port, const char *name, bool schema)
{
	ctl_port = port;
	uplink = name;
	check_schema = schema;
}

const char *gt_node(int bus, int addr)
{
	return fx_strf("n%d-%d", bus, addr);
}

const char *gt_config(const char *type, const char *gw_secret, const char *keys)
{
	static char text[8192];
	int n;

	ck_assert_ptr_nonnull(uplink);
	fx_write_secret(fx_path("gateway.secret"), gw_secret);
	n = snprintf(text, sizeof(text),
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
		     "[uplink %s]\n"
		     "type = %s\n"
		     "host = localhost\n"
		     "keepalive = 30\n"
		     "reconnect_min_ms = 500\n"
		     "reconnect_max_ms = 4000\n"
		     "topology = gateway\n"
		     "max_devices = 64\n"
		     "gateway_secret_file = %s\n"
		     "%s",
		     fx_path("state"), fx_path("control"), fx_path("tty-n1"), fx_path("tty-n2"),
		     uplink, type, fx_path("gateway.secret"), keys);
	ck_assert_msg(n > 0 && (size_t)n < sizeof(text), "gt_config: %d bytes", n);
	return text;
}

/* Starts sensorgw-sim for bus 1 (fx_sim_start()) or 2 (fx_spawn(), sim2.log; with seed unless
 * it is 0) with bus_nodes nodes. */
static pid_t start_bus(int bus, int seed)
{
	char link[4096], nodes[16], seedw[16];
	const char *args[17] = { fx_env("GW_SIM"), "--pty", "--link", link, "--framing", "binary",
				 "--nodes",        nodes,   "--addr", "1",  "--rate",    "10" };
	size_t n = 12;

	if (seed) {
		args[n++] = "--seed";
		args[n++] = seedw;
	}
	args[n++] = "--uid";
	args[n++] = bus == 1 ? "0123456789abcdef01230001" : "0123456789abcdef01230101";
	args[n] = NULL;
	/* fx_path() rotates its buffers: keep the link's name */
	snprintf(link, sizeof(link), "%s", fx_path(bus == 1 ? "tty-n1" : "tty-n2"));
	snprintf(nodes, sizeof(nodes), "%d", bus_nodes);
	snprintf(seedw, sizeof(seedw), "%d", seed);
	return bus == 1 ? fx_sim_start(args + 1) : fx_spawn(args, "sim2.log");
}

pid_t gt_sims_start(int nodes)
{
	bus_nodes = nodes;
	(void)start_bus(1, 0);
	return start_bus(2, 7);
}

pid_t gt_sim2_start(int seed)
{
	return start_bus(2, seed);
}

void gt_wait_nodes(const char *skip,
		   bool (*accepted)(const char *dn, json_int_t since, int timeout_s),
		   const char *what, json_int_t since, int timeout_s)
{
	char dn[32];

	for (int bus = 1; bus <= 2; bus++)
		for (int a = 1; a <= bus_nodes; a++) {
			snprintf(dn, sizeof(dn), "%s", gt_node(bus, a));
			if (skip && strcmp(dn, skip) == 0)
				continue;
			ck_assert_msg(accepted(dn, since, timeout_s), "no accepted %s of %s", what,
				      dn);
		}
}

json_t *gt_uplink_status(void)
{
	json_t *o = tc_status_json();
	json_t *u;

	if (check_schema)
		fx_check_status_schema(o);
	u = json_incref(tc_status_uplink(o, uplink));
	json_decref(o);
	return u;
}

const char *gt_dev_field(json_t *u, const char *dn, const char *field)
{
	size_t i;
	json_t *v;

	json_array_foreach(json_object_get(u, "devices"), i, v)
		if (strcmp(json_string_value(json_object_get(v, "device")), dn) == 0)
			return json_string_value(json_object_get(v, field));
	return NULL;
}

/* What gt_wait_dev_state() waits for (fx_wait_count() asks a function without arguments). */
static const char *want_dn, *want_state;

static size_t in_state(void)
{
	json_t *u = gt_uplink_status();
	const char *s = gt_dev_field(u, want_dn, "session");
	bool ok = s && strcmp(s, want_state) == 0;

	json_decref(u);
	return ok;
}

bool gt_wait_dev_state(const char *dn, const char *state, int timeout_ms)
{
	want_dn = dn;
	want_state = state;
	return fx_wait_count(in_state, 1, timeout_ms) == 1;
}

json_int_t gt_counter(json_t *u, const char *name)
{
	return json_integer_value(json_object_get(json_object_get(u, "counters"), name));
}

/* What gt_wait_counter_above() waits for. */
static const char *want_counter;
static json_int_t want_above;

static size_t counter_above(void)
{
	json_t *u = gt_uplink_status();
	bool ok = gt_counter(u, want_counter) > want_above;

	json_decref(u);
	return ok;
}

bool gt_wait_counter_above(const char *name, json_int_t than, int timeout_ms)
{
	want_counter = name;
	want_above = than;
	return fx_wait_count(counter_above, 1, timeout_ms) == 1;
}

/* Nothing queued or in flight. */
static size_t drained(void)
{
	json_t *u = gt_uplink_status();
	bool ok = gt_counter(u, "queued") == 0 && gt_counter(u, "inflight") == 0;

	json_decref(u);
	return ok;
}

void gt_assert_online(const char *dn)
{
	json_t *u = gt_uplink_status();

	ck_assert_str_eq(json_string_value(json_object_get(u, "topology")), "gateway");
	ck_assert_str_eq(json_string_value(
				 json_object_get(json_object_get(u, "gateway"), "session")),
			 "online");
	ck_assert_str_eq(gt_dev_field(u, dn, "session"), "online");
	ck_assert(json_is_true(
		json_object_get(json_array_get(json_object_get(u, "devices"), 0), "attached")));
	json_decref(u);
}

void gt_assert_no_losses(void)
{
	json_t *u = gt_uplink_status();

	ck_assert_int_eq(gt_counter(u, "deadlettered"), 0);
	ck_assert_int_eq(gt_counter(u, "rejected"), 0);
	ck_assert_int_eq(gt_counter(u, "dropped_overflow"), 0);
	json_decref(u);
}

json_t *gt_stop_sims_all_acked(pid_t sim2)
{
	json_t *u;

	fx_sim_stop();
	fx_child_stop(sim2);
	ck_assert(fx_wait_count(drained, 1, 30000) == 1);
	u = gt_uplink_status();
	ck_assert_int_eq(gt_counter(u, "produced"), gt_counter(u, "acked"));
	ck_assert_int_eq(gt_counter(u, "deadlettered"), 0);
	ck_assert_int_eq(gt_counter(u, "rejected"), 0);
	return u;
}

size_t gt_count_since(json_int_t since, const char *ev, const char *field, const char *value)
{
	json_t *r = cc_ctl(ctl_port, "log",
			   json_pack("{s:I,s:s,s:i}", "since", since, "ev", ev, "limit", 1000000));
	size_t i, n = 0;
	json_t *e;

	json_array_foreach(json_object_get(r, "events"), i, e) {
		const char *v = field ? json_string_value(json_object_get(e, field)) : NULL;

		if (!field || (v && strcmp(v, value) == 0))
			n++;
	}
	json_decref(r);
	return n;
}

size_t gt_duplicates(const char *ev, const char *method, const char *id_field)
{
	json_t *r = cc_ctl(ctl_port, "log", json_pack("{s:s,s:i}", "ev", ev, "limit", 1000000));
	json_t *seen = json_object();
	size_t i, n = 0;
	json_t *e;

	json_array_foreach(json_object_get(r, "events"), i, e) {
		const char *key;

		if (method && strcmp(json_string_value(json_object_get(e, "method")), method) != 0)
			continue;
		key = fx_strf("%s/%s", json_string_value(json_object_get(e, "deviceName")),
			      json_string_value(json_object_get(e, id_field)));
		if (json_object_get(seen, key))
			n++;
		json_object_set_new(seen, key, json_true());
	}
	json_decref(seen);
	json_decref(r);
	return n;
}

void gt_assert_mode(const char *path, mode_t mode)
{
	struct stat st;

	ck_assert_msg(stat(fx_path(path), &st) == 0, "%s is missing", path);
	ck_assert_msg((st.st_mode & 07777) == mode, "%s has mode %04o, not %04o", path,
		      (unsigned)(st.st_mode & 07777), (unsigned)mode);
}
