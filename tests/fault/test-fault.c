/* SPDX-License-Identifier: MIT */
/*
 * Fault injection against the real sensorgwd: "nothing lost" under broker restarts, a broker
 * that drops the connection between PUBLISH and PUBACK, a silent link cut, SIGKILL of the
 * daemon, a full disk and a spool bound below the backlog, a second uplink that is down, a
 * crash at first boot before any acknowledgement (F8), random damage in the spool (F9), power
 * cuts that take the unsynced tail (F10), reloads during traffic (F11) and a file system
 * smaller than the min_free_bytes reserve (F12). Every case runs under steady traffic and checks, per uplink, the counters law
 *
 *   produced = acked + queued + dropped_overflow + dropped_enospc + rejected + lost_corrupt
 *
 * from the daemon's exit counters, and what an independent observer received against what
 * was produced. One TCase per case (F1..F5, F7..F12; F6 is a unit test of the spool).
 *
 * CI runs the short form. The environment sets the long form and the figures file:
 *   GW_FAULT_LONG=1            long defaults (bench/faults.sh)
 *   GW_FAULT_F1_RESTARTS, GW_FAULT_F2_FAULTS, GW_FAULT_F3_CUT_S, GW_FAULT_KEEPALIVE,
 *   GW_FAULT_F4_KILLS, GW_FAULT_F7_SECONDS, GW_FAULT_F8_FRAMES, GW_FAULT_F9_ROUNDS,
 *   GW_FAULT_F9_FRAMES, GW_FAULT_F9_FLIPS, GW_FAULT_F10_CUTS, GW_FAULT_RATE, GW_FAULT_SEED
 *                              single knobs
 *   GW_FAULT_FIGURES=FILE      one JSON line of figures per case is appended there
 *   GW_FAULT_F1_EXTRA=N        expect N more records than produced (shows that F1 can fail)
 * Needs root (network and mount namespaces, iptables), mosquitto, openssl and python3.
 */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "sgw_node.h"

#define PYTHON_BIN "/usr/bin/python3"
#define IPTABLES_BIN "/usr/sbin/iptables"
#define SIM_UID "5e5e00112233445566778899"
/* The daemon reads a serial port in chunks of this size and stores what it decoded before
 * it reads again: a SIGKILL can only take frames of the last chunk with it. */
#define READ_CHUNK 4096

/* ---- knobs and figures ---- */

static bool long_form(void)
{
	const char *v = getenv("GW_FAULT_LONG");

	return v && *v && strcmp(v, "0") != 0;
}

static unsigned knob(const char *name, unsigned ci, unsigned lng, unsigned min, unsigned max)
{
	const char *v = getenv(name);
	unsigned long n;
	char *end;

	if (!v || !*v)
		return long_form() ? lng : ci;
	errno = 0;
	n = strtoul(v, &end, 10);
	ck_assert_msg(!errno && !*end && n >= min && n <= max, "%s must be %u..%u, not '%s'", name,
		      min, max, v);
	return (unsigned)n;
}

static uint64_t seed_for(const char *id)
{
	const char *v = getenv("GW_FAULT_SEED");
	uint64_t s = v && *v ? strtoull(v, NULL, 0) : (uint64_t)fx_now_ms() ^ (uint64_t)getpid();

	fprintf(stderr, "%s: seed %llu (GW_FAULT_SEED=%llu repeats this run)\n", id,
		(unsigned long long)s, (unsigned long long)s);
	return s;
}

/* Prints one case's figures and appends them to $GW_FAULT_FIGURES as one JSON line. */
static void figure(const char *id, json_t *fig)
{
	const char *path = getenv("GW_FAULT_FIGURES");
	char *text;

	json_object_set_new(fig, "case", json_string(id));
	json_object_set_new(fig, "form", json_string(long_form() ? "long" : "ci"));
	text = json_dumps(fig, JSON_COMPACT | JSON_PRESERVE_ORDER);
	ck_assert(text);
	fprintf(stderr, "FIGURES %s\n", text);
	if (path && *path) {
		FILE *f = fopen(path, "ae");

		ck_assert_msg(f, "cannot open %s: %s", path, strerror(errno));
		fprintf(f, "%s\n", text);
		fclose(f);
	}
	free(text);
	json_decref(fig);
}

/* ---- the daemon's log ---- */

static size_t count_in(const char *text, const char *needle)
{
	size_t n = 0;

	for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static size_t daemon_log_count(const char *needle)
{
	char *text = fx_read_file(fx_path("daemon.log"));
	size_t n = count_in(text, needle);

	free(text);
	return n;
}

enum {
	C_PRODUCED,
	C_ACKED,
	C_QUEUED,
	C_DROPPED_OVERFLOW,
	C_DROPPED_ENOSPC,
	C_REJECTED,
	C_LOST_CORRUPT,
	C_INFLIGHT,
	C_RESENT,
	C_CONNECTS,
	C_CONNECTION_LOSSES,
	C_N,
};

static const char *const counter_names[C_N] = {
	"produced", "acked", "queued", "dropped_overflow", "dropped_enospc", "rejected",
	"lost_corrupt", "inflight", "resent", "connects", "connection_losses",
};

struct counters {
	uint64_t v[C_N];
};

/* The value of " key=" (or ": key=") in one line; false when the key is missing. */
static bool line_value(const char *line, const char *key, uint64_t *ret)
{
	size_t klen = strlen(key);

	for (const char *p = strstr(line, key); p; p = strstr(p + 1, key)) {
		char *end;

		if (p == line || (p[-1] != ' ' && p[-1] != ':') || p[klen] != '=')
			continue;
		errno = 0;
		*ret = strtoull(p + klen + 1, &end, 10);
		return !errno && end != p + klen + 1;
	}
	return false;
}

/* A copy of the last line of the daemon log containing needle, or NULL. Free it. */
static char *last_line_with(const char *needle)
{
	char *text = fx_read_file(fx_path("daemon.log"));
	char *found = NULL, *save = NULL;

	for (char *l = text ? strtok_r(text, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save))
		if (strstr(l, needle))
			found = l;
	found = found ? strdup(found) : NULL;
	free(text);
	return found;
}

static void counters_needle(const char *uplink, char *buf, size_t size)
{
	snprintf(buf, size, "uplink %s: counters: ", uplink);
}

/* Parses the last counters line of an uplink (the exit line after the daemon stopped). */
static void last_counters(const char *uplink, struct counters *c)
{
	char needle[96];
	char *line;

	counters_needle(uplink, needle, sizeof(needle));
	line = last_line_with(needle);
	if (!line)
		fx_dump_logs();
	ck_assert_msg(line, "no '%s' line in the daemon log", needle);
	for (int i = 0; i < C_N; i++)
		ck_assert_msg(line_value(line, counter_names[i], &c->v[i]),
			      "no %s= in '%s'", counter_names[i], line);
	free(line);
}

/* Asks the running daemon for its counters (SIGUSR1) and parses the answer. */
static void counters_now(const char *uplink, struct counters *c)
{
	char needle[96];
	size_t before;
	int64_t end = fx_mono_ms() + 5000;

	counters_needle(uplink, needle, sizeof(needle));
	before = daemon_log_count(needle);
	fx_daemon_signal(SIGUSR1);
	while (daemon_log_count(needle) <= before) {
		ck_assert_msg(fx_mono_ms() < end, "no counters after SIGUSR1 within 5 s");
		fx_sleep_ms(20);
	}
	last_counters(uplink, c);
}

static void law_check(const char *uplink, const struct counters *c)
{
	uint64_t rhs = c->v[C_ACKED] + c->v[C_QUEUED] + c->v[C_DROPPED_OVERFLOW] +
		       c->v[C_DROPPED_ENOSPC] + c->v[C_REJECTED] + c->v[C_LOST_CORRUPT];

	ck_assert_msg(c->v[C_PRODUCED] == rhs,
		      "uplink %s: law broken: produced %llu != acked %llu + queued %llu + "
		      "dropped_overflow %llu + dropped_enospc %llu + rejected %llu + "
		      "lost_corrupt %llu = %llu",
		      uplink, (unsigned long long)c->v[C_PRODUCED],
		      (unsigned long long)c->v[C_ACKED], (unsigned long long)c->v[C_QUEUED],
		      (unsigned long long)c->v[C_DROPPED_OVERFLOW],
		      (unsigned long long)c->v[C_DROPPED_ENOSPC],
		      (unsigned long long)c->v[C_REJECTED],
		      (unsigned long long)c->v[C_LOST_CORRUPT], (unsigned long long)rhs);
}

static void counters_to(json_t *fig, const char *prefix, const struct counters *c)
{
	json_t *o = json_object();

	for (int i = 0; i < C_N; i++)
		json_object_set_new(o, counter_names[i], json_integer((json_int_t)c->v[i]));
	json_object_set_new(fig, prefix, o);
}

/* ---- configuration and processes ---- */

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	ck_assert(n >= 0);
	return s;
}

/* Appends to a configuration being built. */
static void conf_add(char **conf, const char *text)
{
	char *n = xasprintf("%s%s", *conf ? *conf : "", text);

	free(*conf);
	*conf = n;
}

/*
 * [gateway] with the spool in fx_path("state") and one binary port on fx_path("tty-bin").
 * min_free_bytes is 0 unless extra says otherwise: the reserve is for real SD cards, and a
 * test must not depend on how full the build machine's /tmp is.
 */
static char *conf_new(const char *gateway_extra)
{
	if (mkdir(fx_path("state"), 0700) < 0)
		ck_assert_msg(errno == EEXIST, "mkdir state: %s", strerror(errno));
	return xasprintf("[gateway]\n"
			 "state_dir = %s\n"
			 "device_name = stm32-{uid}\n"
			 "min_free_bytes = 0\n"
			 "%s"
			 "\n"
			 "[port bin]\n"
			 "path = %s\n"
			 "framing = binary\n"
			 "reopen_min_ms = 100\n"
			 "reopen_max_ms = 500\n",
			 fx_path("state"), gateway_extra ? gateway_extra : "", fx_path("tty-bin"));
}

/* An uplink to the fixture's broker (TLS, password) or, with tls false, to a plain port.
 * Reconnects back off from 0.2 s to 2 s unless extra sets reconnect_* itself. */
static void conf_uplink(char **conf, const char *name, int port, bool tls, unsigned keepalive,
			const char *extra)
{
	const char *backoff = "reconnect_min_ms = 200\nreconnect_max_ms = 2000\n";
	char *u;

	if (extra && strstr(extra, "reconnect_"))
		backoff = "";
	if (tls)
		u = xasprintf("\n[uplink %s]\ntype = mqtt\nhost = localhost\nport = %d\n"
			      "ca_file = %s/broker/ca.crt\nusername = " FX_MQTT_USER "\n"
			      "password_file = %s\nqos = 1\nkeepalive = %u\n%s%s",
			      name, port, fx_dir(), fx_path("mqtt.pass"), keepalive, backoff,
			      extra ? extra : "");
	else
		u = xasprintf("\n[uplink %s]\ntype = mqtt\nhost = 127.0.0.1\nport = %d\nqos = 1\n"
			      "keepalive = %u\n%s%s",
			      name, port, keepalive, backoff, extra ? extra : "");
	conf_add(conf, u);
	free(u);
}

/* Starts the daemon and waits until its port is open (after the open flushed the line). */
static void daemon_start(const char *conf)
{
	const char *needle = "port bin: opened";
	size_t before = daemon_log_count(needle);
	int64_t end = fx_mono_ms() + FX_WAIT_MS;

	fx_daemon_start(conf);
	while (daemon_log_count(needle) <= before) {
		if (!fx_daemon_running() || fx_mono_ms() >= end) {
			fx_dump_logs();
			ck_abort_msg("sensorgwd did not open its port");
		}
		fx_sleep_ms(5);
	}
}

static void daemon_alive(const char *when)
{
	if (!fx_daemon_running()) {
		fx_dump_logs();
		ck_abort_msg("sensorgwd is not running %s", when);
	}
}

/* SIGTERM; the daemon must exit 0. */
static void daemon_stop_ok(void)
{
	int st = fx_daemon_stop(NULL);

	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fx_dump_logs();
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sensorgwd exit status 0x%x", st);
}

/* sensorgw-sim: one binary node, `count` telemetry frames at `rate` per second, on a pty
 * linked at fx_path("tty-bin"). Returns when the link exists. */
static void sim_start(unsigned rate, unsigned count, uint64_t seed)
{
	char r[32], c[32], s[32], link[PATH_MAX];
	const char *args[] = { "--link", link, "--framing", "binary", "--uid", SIM_UID, "--rate",
			       r, "--count", c, "--seed", s, NULL };
	int64_t end = fx_mono_ms() + FX_WAIT_MS;
	struct stat st;

	snprintf(link, sizeof(link), "%s", fx_path("tty-bin"));
	snprintf(r, sizeof(r), "%u", rate);
	snprintf(c, sizeof(c), "%u", count);
	snprintf(s, sizeof(s), "%llu", (unsigned long long)(seed & 0xffffffffu));
	(void)unlink(fx_path("tty-bin"));
	fx_sim_start(args);
	while (lstat(fx_path("tty-bin"), &st) < 0) {
		ck_assert_msg(fx_mono_ms() < end, "sensorgw-sim made no pty");
		fx_sleep_ms(5);
	}
}

struct sim_summary {
	uint64_t sent, dropped, corrupted;
};

/* Waits for the simulator to finish its count and reads its summary line. */
static void sim_finish(struct sim_summary *s, int timeout_ms)
{
	int st = fx_sim_wait(timeout_ms);
	char *text = fx_read_file(fx_path("sim.log"));
	const char *line = text ? strstr(text, "frames sent") : NULL;

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sensorgw-sim status 0x%x: %s", st,
		      text ? text : "");
	ck_assert_msg(line, "no summary from sensorgw-sim: %s", text ? text : "");
	ck_assert(sscanf(line, "frames sent %llu", (unsigned long long *)&s->sent) == 1);
	line = strstr(line, "corrupted frames");
	ck_assert(line && sscanf(line, "corrupted frames %llu",
				 (unsigned long long *)&s->corrupted) == 1);
	line = strstr(line, "dropped");
	ck_assert(line && sscanf(line, "dropped %llu", (unsigned long long *)&s->dropped) == 1);
	free(text);
}

/* ---- what the observer received ---- */

struct seen {
	size_t msgs;        /* messages received */
	size_t n_keys;      /* keys are 1..n_keys (node_seq, or params.i + 1) */
	unsigned *got;      /* arrivals per key */
	size_t keys_unique; /* keys with at least one arrival */
	size_t seq_unique;  /* distinct spool seq values */
	uint64_t seq_min, seq_max;
	int64_t *lat;       /* rx - ts of each key's first arrival, ms */
	size_t n_lat;
	size_t bad;         /* messages without the key or out of range */
};

static void seen_free(struct seen *s)
{
	free(s->got);
	free(s->lat);
	memset(s, 0, sizeof(*s));
}

/*
 * Collects the observer's messages. by_i: the key is params.i + 1 (frames the test wrote
 * itself); otherwise node_seq (the simulator's frames, numbered from 1 after its hello).
 */
static void seen_collect(struct seen *s, size_t n_keys, bool by_i)
{
	struct fx_msg *m;
	size_t n, seq_cap = 0;
	uint8_t *seqs = NULL;

	seen_free(s);
	s->n_keys = n_keys;
	s->got = calloc(n_keys + 1, sizeof(*s->got));
	s->lat = calloc(n_keys + 1, sizeof(*s->lat));
	ck_assert(s->got && s->lat);
	s->seq_min = UINT64_MAX;
	m = fx_subscriber_messages(&n);
	s->msgs = n;
	for (size_t k = 0; k < n; k++) {
		json_t *j = json_loads(m[k].payload, 0, NULL);
		json_t *key = NULL;
		json_int_t kv, seq;

		if (j)
			key = by_i ? json_object_get(json_object_get(j, "params"), "i")
				   : json_object_get(j, "node_seq");
		if (!j || !json_is_integer(key) ||
		    !json_is_integer(json_object_get(j, "seq"))) {
			s->bad++;
			json_decref(j);
			continue;
		}
		kv = json_integer_value(key) + (by_i ? 1 : 0);
		seq = json_integer_value(json_object_get(j, "seq"));
		if (kv < 1 || (size_t)kv > n_keys || seq < 0) {
			s->bad++;
			json_decref(j);
			continue;
		}
		if ((uint64_t)seq >= seq_cap) {
			size_t cap = ((size_t)seq + 1) * 2;

			seqs = realloc(seqs, cap);
			ck_assert(seqs);
			memset(seqs + seq_cap, 0, cap - seq_cap);
			seq_cap = cap;
		}
		if (!seqs[seq]++)
			s->seq_unique++;
		if ((uint64_t)seq < s->seq_min)
			s->seq_min = (uint64_t)seq;
		if ((uint64_t)seq > s->seq_max)
			s->seq_max = (uint64_t)seq;
		if (!s->got[kv]++) {
			s->keys_unique++;
			s->lat[s->n_lat++] =
				m[k].rx_ms - json_integer_value(json_object_get(j, "ts"));
		}
		json_decref(j);
	}
	free(seqs);
	fx_msgs_free(m, n);
}

/* Waits until keys 1..n_keys all arrived; the last collection stays in s. */
static bool seen_wait_all(struct seen *s, size_t n_keys, bool by_i, int timeout_ms)
{
	int64_t end = fx_mono_ms() + timeout_ms;

	for (;;) {
		seen_collect(s, n_keys, by_i);
		if (s->keys_unique == n_keys || fx_mono_ms() >= end)
			break;
		fx_sleep_ms(250);
	}
	/* Late duplicates still in the pipe belong in the figure. */
	fx_sleep_ms(300);
	seen_collect(s, n_keys, by_i);
	return s->keys_unique == n_keys;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int64_t pct(int64_t *v, size_t n, unsigned p)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_i64);
	return v[(n - 1) * p / 100];
}

/* Figures common to every case: produced, delivered unique, duplicates, lost. */
static json_t *delivery_figures(uint64_t produced, const struct seen *s)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:f}", "produced", (json_int_t)produced,
			 "delivered_unique", (json_int_t)s->keys_unique, "messages",
			 (json_int_t)s->msgs, "duplicates", (json_int_t)(s->msgs - s->keys_unique),
			 "lost", (json_int_t)(produced - s->keys_unique), "ratio",
			 produced ? (double)s->keys_unique / (double)produced : 0.0);
}

/* The first key that never arrived, for messages. */
static size_t first_missing(const struct seen *s)
{
	for (size_t k = 1; k <= s->n_keys; k++)
		if (!s->got[k])
			return k;
	return 0;
}

/* ---- F1: broker restarted under traffic ---- */

START_TEST(f1_broker_restarts)
{
	const struct fx_broker_opts bo = { .persistence = true, .observer_listener = true };
	unsigned restarts = knob("GW_FAULT_F1_RESTARTS", 5, 20, 1, 1000);
	unsigned rate = knob("GW_FAULT_RATE", 200, 200, 1, 5000);
	unsigned extra = knob("GW_FAULT_F1_EXTRA", 0, 0, 0, 1000000);
	uint64_t rng = seed_for("F1");
	int64_t *reconnect = calloc(restarts, sizeof(int64_t));
	struct sim_summary sim;
	struct counters c;
	struct seen s = { 0 };
	unsigned done = 0;
	size_t before;
	char *conf;
	json_t *fig;

	ck_assert(reconnect);
	fx_broker_start_opts(&bo);
	fx_subscriber_start_persistent("sensorgw/#");
	conf = conf_new(NULL);
	conf_uplink(&conf, "local", fx_broker_port(), true, 10, NULL);
	/* Each cycle is about 2.2 s on average; the traffic covers all of them and more. */
	sim_start(rate, rate * (restarts * 22 / 10 + 3), rng);
	daemon_start(conf);
	free(conf);
	ck_assert_msg(fx_daemon_wait_connected(FX_WAIT_MS), "no connection to the broker");

	for (; done < restarts; done++) {
		fx_sleep_ms(800 + (int)fx_rand_below(&rng, 800));
		before = (size_t)fx_broker_log_count("u'" FX_MQTT_USER "')");
		fx_broker_stop();
		fx_sleep_ms(100 + (int)fx_rand_below(&rng, 1100));
		fx_broker_relaunch();
		{
			int64_t t0 = fx_mono_ms();

			while ((size_t)fx_broker_log_count("u'" FX_MQTT_USER "')") <= before) {
				ck_assert_msg(fx_mono_ms() - t0 < 15000,
					      "restart %u: no reconnection within 15 s", done + 1);
				fx_sleep_ms(5);
			}
			reconnect[done] = fx_mono_ms() - t0;
		}
		daemon_alive("after a broker restart");
	}
	sim_finish(&sim, 120000);
	ck_assert_msg(sim.dropped == 0 && sim.corrupted == 0,
		      "the simulator could not deliver every frame (dropped %llu)",
		      (unsigned long long)sim.dropped);
	if (!seen_wait_all(&s, sim.sent + extra, false, 60000))
		fx_dump_logs();
	daemon_stop_ok();
	last_counters("local", &c);

	fig = delivery_figures(sim.sent + extra, &s);
	json_object_set_new(fig, "restarts", json_integer(restarts));
	json_object_set_new(fig, "reconnect_ms_p50",
			    json_integer(pct(reconnect, restarts, 50)));
	json_object_set_new(fig, "reconnect_ms_max",
			    json_integer(pct(reconnect, restarts, 100)));
	counters_to(fig, "counters", &c);
	figure("F1", fig);

	ck_assert_msg(s.bad == 0, "%zu messages without a node_seq", s.bad);
	ck_assert_msg(s.keys_unique == sim.sent + extra,
		      "delivered_unique %zu of %llu produced; first missing node_seq %zu",
		      s.keys_unique, (unsigned long long)(sim.sent + extra), first_missing(&s));
	ck_assert_uint_eq(c.v[C_PRODUCED], sim.sent);
	ck_assert_uint_eq(c.v[C_ACKED], sim.sent);
	ck_assert_uint_eq(c.v[C_QUEUED], 0);
	law_check("local", &c);
	ck_assert_uint_ge(c.v[C_CONNECTION_LOSSES], restarts);
	/* Back within the backoff ceiling (2 s) plus one second, on every restart. */
	ck_assert_int_le(pct(reconnect, restarts, 100), 3000);
	seen_free(&s);
	free(reconnect);
}
END_TEST

/* ---- F2: the broker drops the connection after PUBLISH, before PUBACK ---- */

struct fb_stats {
	size_t faults, faults_resent, resent_dup, acks, acked_unique, connects;
	uint64_t lost;
};

/* Reads the fake broker's JSONL log: every faulted seq must be acknowledged later. */
static void fb_analyse(const char *log, uint64_t first_seq, uint64_t last_seq,
		       struct fb_stats *st)
{
	size_t n = (size_t)(last_seq - first_seq + 1);
	uint8_t *acked = calloc(n, 1), *faulted = calloc(n, 1);
	char *text = fx_read_file(log), *save = NULL;

	ck_assert(acked && faulted && text);
	memset(st, 0, sizeof(*st));
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		json_t *j = json_loads(l, 0, NULL), *p;
		const char *ev = json_string_value(json_object_get(j, "ev"));
		const char *action = json_string_value(json_object_get(j, "action"));
		json_int_t seq;

		ck_assert_msg(j && ev, "fake broker log: %s", l);
		if (!strcmp(ev, "connect"))
			st->connects++;
		if (strcmp(ev, "publish") != 0) {
			json_decref(j);
			continue;
		}
		p = json_loads(json_string_value(json_object_get(j, "payload")), 0, NULL);
		ck_assert_msg(p && json_is_integer(json_object_get(p, "seq")), "payload: %s", l);
		seq = json_integer_value(json_object_get(p, "seq"));
		ck_assert_msg(seq >= (json_int_t)first_seq && seq <= (json_int_t)last_seq,
			      "seq %lld outside %llu..%llu", (long long)seq,
			      (unsigned long long)first_seq, (unsigned long long)last_seq);
		seq -= (json_int_t)first_seq;
		if (!strcmp(action, "fault")) {
			st->faults++;
			faulted[seq] = 1;
		} else {
			st->acks++;
			if (!acked[seq])
				st->acked_unique++;
			acked[seq] = 1;
			/* A fault that is acknowledged later: the record was sent again. */
			if (faulted[seq] == 1) {
				faulted[seq] = 2;
				st->faults_resent++;
				st->resent_dup += json_integer_value(json_object_get(j, "dup")) == 1;
			}
		}
		json_decref(p);
		json_decref(j);
	}
	for (size_t k = 0; k < n; k++)
		st->lost += !acked[k];
	free(text);
	free(acked);
	free(faulted);
}

START_TEST(f2_publish_without_puback)
{
	unsigned faults = knob("GW_FAULT_F2_FAULTS", 100, 100, 1, 10000);
	unsigned rate = knob("GW_FAULT_RATE", 200, 200, 1, 5000);
	uint64_t rng = seed_for("F2");
	char script[PATH_MAX], nf[16], log[PATH_MAX], portfile[PATH_MAX];
	int64_t end;
	struct counters c;
	struct fb_stats st;
	struct sim_summary sim;
	uint64_t first_seq, last_seq;
	char *conf, *text, *line;
	int port = 0;
	pid_t fb;
	json_t *fig;

	/* fx_path() buffers rotate: keep copies. */
	snprintf(log, sizeof(log), "%s", fx_path("fakebroker.jsonl"));
	snprintf(portfile, sizeof(portfile), "%s", fx_path("fakebroker.port"));
	snprintf(script, sizeof(script), "%s/tests/fault/fakebroker.py", fx_env("GW_SOURCE_ROOT"));
	snprintf(nf, sizeof(nf), "%u", faults);
	{
		const char *const argv[] = { PYTHON_BIN, script, "--portfile", portfile, "--log",
					     log, "--faults", nf, "--ack-between", "5", NULL };

		fb = fx_spawn(argv, "fakebroker.log");
	}
	end = fx_mono_ms() + FX_WAIT_MS;
	while (!(text = fx_read_file(portfile))) {
		ck_assert_msg(fx_child_running(fb) && fx_mono_ms() < end,
			      "the fake broker did not start");
		fx_sleep_ms(10);
	}
	port = atoi(text);
	free(text);
	ck_assert(port > 0);

	conf = conf_new(NULL);
	/* The daemon backs off more after each connection that fails soon: a short ceiling
	 * keeps a hundred faults within CI time. */
	conf_uplink(&conf, "fake", port, false, 10,
		    "reconnect_min_ms = 100\nreconnect_max_ms = 300\n");
	/* A fault costs about 0.25 s (backoff, five PUBACKs); the traffic outlasts them. */
	sim_start(rate, rate * (faults * 3 / 10 + 5), rng);
	daemon_start(conf);
	free(conf);

	end = fx_mono_ms() + 30000 + (int64_t)faults * 1000;
	for (;;) {
		text = fx_read_file(log);
		if (count_in(text, "\"action\":\"fault\"") >= faults) {
			free(text);
			break;
		}
		free(text);
		daemon_alive("while the broker drops connections");
		if (fx_mono_ms() >= end)
			fx_dump_logs();
		ck_assert_msg(fx_mono_ms() < end, "fewer than %u faults injected in time", faults);
		fx_sleep_ms(50);
	}
	sim_finish(&sim, 120000);
	ck_assert_msg(sim.dropped == 0, "the simulator dropped %llu frames",
		      (unsigned long long)sim.dropped);
	/* Everything stored must be acknowledged: queued reaches 0. */
	end = fx_mono_ms() + 30000;
	do {
		fx_sleep_ms(200);
		counters_now("fake", &c);
	} while ((c.v[C_QUEUED] > 0 || c.v[C_PRODUCED] < sim.sent) && fx_mono_ms() < end);
	daemon_stop_ok();
	last_counters("fake", &c);
	line = last_line_with("spool: next_seq=");
	ck_assert(line && line_value(line, "next_seq", &last_seq));
	free(line);
	last_seq--;
	first_seq = last_seq + 1 - c.v[C_PRODUCED];
	fb_analyse(log, first_seq, last_seq, &st);

	fig = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "produced",
			(json_int_t)c.v[C_PRODUCED], "faults", (json_int_t)st.faults,
			"faults_resent", (json_int_t)st.faults_resent, "resent_with_dup",
			(json_int_t)st.resent_dup, "acked_unique", (json_int_t)st.acked_unique,
			"duplicates", (json_int_t)(st.acks - st.acked_unique), "lost",
			(json_int_t)st.lost, "broker_connects", (json_int_t)st.connects);
	/* the scripted broker is the observer here: what it acknowledged is what was delivered */
	json_object_set_new(fig, "delivered_unique", json_integer((json_int_t)st.acked_unique));
	counters_to(fig, "counters", &c);
	figure("F2", fig);

	ck_assert_uint_eq(c.v[C_PRODUCED], sim.sent);
	ck_assert_uint_eq(st.faults, faults);
	ck_assert_msg(st.faults_resent == st.faults, "only %zu of %zu faulted records re-sent",
		      st.faults_resent, st.faults);
	ck_assert_msg(st.lost == 0, "%llu records never acknowledged",
		      (unsigned long long)st.lost);
	ck_assert_uint_eq(c.v[C_ACKED], c.v[C_PRODUCED]);
	law_check("fake", &c);
	fx_child_stop(fb);
}
END_TEST

/* ---- F3: the link cut silently (DROP on lo) for longer than the keepalive ---- */

static void lo_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ck_assert(fd >= 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	ck_assert(ioctl(fd, SIOCGIFFLAGS, &ifr) == 0);
	ifr.ifr_flags |= IFF_UP;
	ck_assert_msg(ioctl(fd, SIOCSIFFLAGS, &ifr) == 0, "lo up: %s", strerror(errno));
	close(fd);
}

/* Inserts (op "-I") or deletes ("-D") the two DROP rules for a port on lo. */
static void cut_rules(const char *op, int port)
{
	char p[16];

	snprintf(p, sizeof(p), "%d", port);
	ck_assert_msg(access(IPTABLES_BIN, X_OK) == 0,
		      IPTABLES_BIN " is missing: install the iptables package");
	for (int dir = 0; dir < 2; dir++) {
		const char *const argv[] = { IPTABLES_BIN, "-w", op, "INPUT", "-i", "lo", "-p",
					     "tcp", dir ? "--sport" : "--dport", p, "-j", "DROP",
					     NULL };
		char *out = NULL, *err = NULL;
		int st = fx_run(argv, &out, &err, 10000);

		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "iptables %s: %s%s", op, out,
			      err);
		free(out);
		free(err);
	}
}

START_TEST(f3_silent_cut)
{
	const struct fx_broker_opts bo = { .observer_listener = true };
	unsigned keepalive = knob("GW_FAULT_KEEPALIVE", 5, 5, 5, 600);
	unsigned cut_s = knob("GW_FAULT_F3_CUT_S", 2 * keepalive, 60, 1, 3600);
	unsigned rate = knob("GW_FAULT_RATE", 200, 200, 1, 5000);
	uint64_t rng = seed_for("F3");
	const char *warn = "warning: uplink local: ";
	int64_t t_cut, t_detect = -1, t_uncut, t_back = -1;
	size_t warns, conns;
	struct sim_summary sim;
	struct counters c;
	struct seen s = { 0 };
	char *conf, *detect_line = NULL;
	json_t *fig;

	/* A private network namespace with only its own loopback: the rules and every socket
	 * vanish with it. Before any thread starts, so they all live in it. */
	ck_assert_msg(unshare(CLONE_NEWNET) == 0, "unshare(CLONE_NEWNET): %s (needs root)",
		      strerror(errno));
	lo_up();
	fx_broker_start_opts(&bo);
	fx_subscriber_start("sensorgw/#");
	conf = conf_new(NULL);
	conf_uplink(&conf, "local", fx_broker_port(), true, keepalive, NULL);
	/* Warm-up 3 s, the cut, up to 3 keepalives to come back, then 3 s of normal traffic. */
	sim_start(rate, rate * (3 + cut_s + 3 * keepalive + 3), rng);
	daemon_start(conf);
	free(conf);
	ck_assert_msg(fx_daemon_wait_connected(FX_WAIT_MS), "no connection to the broker");
	fx_sleep_ms(3000);

	warns = daemon_log_count(warn);
	conns = (size_t)fx_broker_log_count("u'" FX_MQTT_USER "')");
	cut_rules("-I", fx_broker_port());
	t_cut = fx_mono_ms();
	while (fx_mono_ms() - t_cut < (int64_t)cut_s * 1000) {
		if (t_detect < 0 && daemon_log_count(warn) > warns) {
			t_detect = fx_mono_ms() - t_cut;
			detect_line = last_line_with(warn);
		}
		daemon_alive("during the cut");
		fx_sleep_ms(10);
	}
	cut_rules("-D", fx_broker_port());
	t_uncut = fx_mono_ms();
	while (t_back < 0 && fx_mono_ms() - t_uncut < 60000) {
		if ((size_t)fx_broker_log_count("u'" FX_MQTT_USER "')") > conns)
			t_back = fx_mono_ms() - t_uncut;
		fx_sleep_ms(10);
	}
	sim_finish(&sim, 120000);
	ck_assert_msg(sim.dropped == 0, "the simulator dropped %llu frames",
		      (unsigned long long)sim.dropped);
	if (!seen_wait_all(&s, sim.sent, false, 60000))
		fx_dump_logs();
	daemon_stop_ok();
	last_counters("local", &c);

	fig = delivery_figures(sim.sent, &s);
	json_object_set_new(fig, "keepalive_s", json_integer(keepalive));
	json_object_set_new(fig, "cut_s", json_integer(cut_s));
	json_object_set_new(fig, "detect_ms", json_integer(t_detect));
	json_object_set_new(fig, "detect_over_keepalive",
			    json_real(t_detect >= 0 ? t_detect / (keepalive * 1000.0) : -1));
	json_object_set_new(fig, "reconnect_after_uncut_ms", json_integer(t_back));
	json_object_set_new(fig, "detect_line", json_string(detect_line ? detect_line : ""));
	counters_to(fig, "counters", &c);
	figure("F3", fig);

	ck_assert_msg(t_detect >= 0, "the cut was not detected within %u s", cut_s);
	ck_assert_msg(t_detect <= (int64_t)keepalive * 1500,
		      "detected after %lld ms, more than 1.5 x keepalive (%u s)",
		      (long long)t_detect, keepalive);
	ck_assert_msg(t_back >= 0, "no reconnection within 60 s after the link came back");
	ck_assert_msg(s.keys_unique == sim.sent, "delivered %zu of %llu; first missing %zu",
		      s.keys_unique, (unsigned long long)sim.sent, first_missing(&s));
	ck_assert_uint_eq(c.v[C_PRODUCED], sim.sent);
	ck_assert_uint_eq(c.v[C_ACKED], sim.sent);
	law_check("local", &c);
	free(detect_line);
	seen_free(&s);
}
END_TEST

/* ---- F4: sensorgwd SIGKILLed at random moments ---- */

#define F4_ADDR 7

enum f4_state { F4_UNSENT, F4_RECEIVED, F4_NOT_RECEIVED };

struct f4_frame {
	uint8_t state;
	bool in_last_chunk; /* among the last READ_CHUNK bytes the daemon took */
	uint32_t run;
};

static size_t f4_encode(uint32_t i, uint8_t *out)
{
	struct sgw_builder b;
	int n;

	sgw_begin(&b, SGW_TYPE_TELEMETRY, F4_ADDR, (uint16_t)(i + 1));
	sgw_put_i32(&b, "i", (int32_t)i);
	sgw_put_i32(&b, "MQ2", (int32_t)(20 + i % 41));
	sgw_put_f32(&b, "DHT11_T", 20.5f);
	n = sgw_finish(&b, out, SGW_MAX_WIRE);
	ck_assert_int_gt(n, 0);
	return (size_t)n;
}

/* Reads what is left unread in the pty after the daemon died: keeps reading until nothing
 * new arrives for 100 ms (the pty hands written bytes to the line discipline from a work
 * queue, so a byte may land a moment after the writer returned). */
static size_t drain_unread(const struct fx_pty *p)
{
	int fd = open(p->slave, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	int64_t quiet_since = fx_mono_ms();
	size_t total = 0;
	uint8_t buf[4096];

	ck_assert_msg(fd >= 0, "open %s: %s", p->slave, strerror(errno));
	while (fx_mono_ms() - quiet_since < 100) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n > 0) {
			total += (size_t)n;
			quiet_since = fx_mono_ms();
			continue;
		}
		ck_assert_msg(n < 0 && (errno == EAGAIN || errno == EINTR), "read %s: %s",
			      p->slave, n == 0 ? "EOF" : strerror(errno));
		fx_sleep_ms(5);
	}
	close(fd);
	return total;
}

START_TEST(f4_sigkill)
{
	unsigned kills = knob("GW_FAULT_F4_KILLS", 20, 100, 1, 100000);
	uint64_t rng = seed_for("F4");
	size_t cap = (size_t)kills * 1200 + 1000, n_frames = 0;
	struct f4_frame *fr = calloc(cap, sizeof(*fr));
	size_t *start = calloc(cap, sizeof(size_t)), *end = calloc(cap, sizeof(size_t));
	uint64_t torn = 0, recovered = 0, expected = 0, not_received = 0, lost = 0;
	uint64_t lost_in_chunk = 0, lost_elsewhere = 0, unexpected = 0;
	struct fx_pty pty;
	struct counters c;
	struct seen s = { 0 };
	char *conf;
	json_t *fig;

	ck_assert(fr && start && end);
	fx_broker_start();
	fx_subscriber_start("sensorgw/#");
	fx_pty_new(&pty, "tty-bin");
	conf = conf_new(NULL);
	conf_uplink(&conf, "local", fx_broker_port(), true, 10, NULL);

	for (uint32_t run = 0; run < kills; run++) {
		int64_t kill_at;
		size_t written = 0, consumed, first = n_frames, spool_lines;
		uint8_t wire[SGW_MAX_WIRE];
		int st;

		spool_lines = daemon_log_count("spool opened at ");
		daemon_start(conf);
		ck_assert_msg(daemon_log_count("spool opened at ") > spool_lines,
			      "run %u: the daemon did not report its spool", run);
		kill_at = fx_mono_ms() + 50 + fx_rand_below(&rng, 650);
		/* Frames at about 1,000 per second, each split as a UART bridge splits them. */
		while (fx_mono_ms() < kill_at && n_frames < cap) {
			size_t len = f4_encode((uint32_t)n_frames, wire);

			start[n_frames] = written;
			fx_pty_write_chunked(&pty, wire, len, &rng);
			written += len;
			end[n_frames] = written;
			fr[n_frames].run = run;
			n_frames++;
			if (fx_rand_below(&rng, 2))
				fx_sleep_ms(1);
		}
		st = fx_daemon_kill();
		ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
			      "run %u: sensorgwd ended by itself (status 0x%x)", run, st);
		consumed = written - drain_unread(&pty);
		for (size_t k = first; k < n_frames; k++) {
			if (end[k] <= consumed) {
				fr[k].state = F4_RECEIVED;
				fr[k].in_last_chunk = end[k] + READ_CHUNK > consumed;
				expected++;
			} else {
				fr[k].state = F4_NOT_RECEIVED;
				not_received++;
			}
		}
	}
	/* The last start recovers once more and delivers everything left. */
	daemon_start(conf);
	free(conf);
	{
		int64_t deadline = fx_mono_ms() + 60000;
		size_t missing;

		do {
			fx_sleep_ms(250);
			seen_collect(&s, n_frames, true);
			missing = 0;
			for (size_t k = 0; k < n_frames; k++)
				missing += fr[k].state == F4_RECEIVED && !s.got[k + 1];
		} while (missing > 0 && fx_mono_ms() < deadline);
		fx_sleep_ms(300);
		seen_collect(&s, n_frames, true);
	}
	daemon_stop_ok();
	last_counters("local", &c);
	{
		char *text = fx_read_file(fx_path("daemon.log")), *save = NULL;

		for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			char *p = strstr(l, "spool recovered: ");

			if (p)
				torn += strtoull(p + strlen("spool recovered: "), NULL, 10);
		}
		free(text);
		recovered = daemon_log_count("spool opened at ");
	}

	/*
	 * A frame counts as received when the daemon had read all its bytes before the kill.
	 * The daemon decodes and stores what one read() returned before it reads again, so
	 * a kill can take with it only frames of that last chunk, and only a tail of them:
	 * a frame lost while a later one of the same run arrived is lost by the spool.
	 */
	for (size_t k = 0; k < n_frames; k++) {
		bool later_delivered = false;

		if (fr[k].state == F4_NOT_RECEIVED) {
			unexpected += s.got[k + 1] > 0;
			continue;
		}
		if (s.got[k + 1])
			continue;
		lost++;
		for (size_t j = k + 1; j < n_frames && fr[j].run == fr[k].run; j++)
			later_delivered |= fr[j].state == F4_RECEIVED && s.got[j + 1];
		if (fr[k].in_last_chunk && !later_delivered)
			lost_in_chunk++;
		else
			lost_elsewhere++;
	}

	fig = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "kills",
			(json_int_t)kills, "frames_written", (json_int_t)n_frames,
			"fully_received", (json_int_t)expected, "not_received",
			(json_int_t)not_received, "delivered_unique", (json_int_t)s.keys_unique,
			"duplicates", (json_int_t)(s.msgs - s.keys_unique), "lost",
			(json_int_t)lost, "lost_in_last_read", (json_int_t)lost_in_chunk,
			"lost_elsewhere", (json_int_t)lost_elsewhere, "spool_opens",
			(json_int_t)recovered, "torn_tails", (json_int_t)torn);
	json_object_set_new(fig, "unreceived_but_delivered", json_integer((json_int_t)unexpected));
	/* what the daemon was given: the frames it had read whole before each kill */
	json_object_set_new(fig, "produced", json_integer((json_int_t)expected));
	counters_to(fig, "counters_last_run", &c);
	figure("F4", fig);

	ck_assert_msg(recovered == kills + 1, "the spool opened %llu times for %u starts",
		      (unsigned long long)recovered, kills + 1);
	ck_assert_msg(lost_elsewhere == 0,
		      "%llu fully received records lost outside the last read before a kill",
		      (unsigned long long)lost_elsewhere);
	ck_assert_msg(unexpected == 0,
		      "%llu frames counted as unread were delivered: the accounting is off",
		      (unsigned long long)unexpected);
	law_check("local", &c);
	ck_assert_uint_eq(c.v[C_QUEUED], 0);
	seen_free(&s);
	free(fr);
	free(start);
	free(end);
}
END_TEST

/* ---- F5: disk full, and a spool bound below the backlog ---- */

static const char cred_text[] =
	"{\"v\":1,\"pk\":\"a1B2c3D4e5\",\"dn\":\"stm32-test\","
	"\"secret\":\"0123456789abcdef0123456789abcdef\",\"obtained_at\":1700000000,"
	"\"crc32\":\"deadbeef\"}\n";

/* The state directory holds cred.json and spool/ and nothing else. */
static void state_dir_intact(void)
{
	char *cred = fx_read_file(fx_path("state/cred.json"));
	struct stat st;

	ck_assert_msg(cred && !strcmp(cred, cred_text), "cred.json changed: %s",
		      cred ? cred : "(missing)");
	ck_assert(stat(fx_path("state/cred.json"), &st) == 0);
	ck_assert_msg((st.st_mode & 07777) == 0600, "cred.json mode %o", st.st_mode & 07777);
	free(cred);
	{
		char *out = NULL;
		const char *const argv[] = { "/bin/ls", "-A", fx_path("state"), NULL };
		int rc = fx_run(argv, &out, NULL, 5000);

		ck_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
		ck_assert_msg(!strcmp(out, "cred.json\nspool\n"),
			      "unexpected files in the state directory: %s", out);
		free(out);
	}
}

/*
 * Common run: the broker is down while the simulator fills the spool, then comes up; the
 * daemon must stay up, drain, and close the law exactly. Returns the exit counters.
 */
static void f5_run(const char *id, const char *gateway_extra, unsigned rate, unsigned down_s,
		   unsigned up_s, uint64_t rng, struct counters *c, struct seen *s,
		   struct sim_summary *sim)
{
	struct counters mid;
	int64_t end;
	char *conf;

	fx_write_file(fx_path("state/cred.json"), cred_text, 0600);
	fx_broker_prepare(NULL);
	conf = conf_new(gateway_extra);
	conf_uplink(&conf, "local", fx_broker_port(), true, 10, NULL);
	sim_start(rate, rate * (down_s + up_s), rng);
	daemon_start(conf);
	free(conf);
	for (unsigned k = 0; k < down_s * 10; k++) {
		fx_sleep_ms(100);
		daemon_alive("while the spool overflows");
	}
	counters_now("local", &mid);
	fprintf(stderr, "%s: before the broker came up: produced %llu queued %llu "
		"dropped_overflow %llu dropped_enospc %llu\n", id,
		(unsigned long long)mid.v[C_PRODUCED], (unsigned long long)mid.v[C_QUEUED],
		(unsigned long long)mid.v[C_DROPPED_OVERFLOW],
		(unsigned long long)mid.v[C_DROPPED_ENOSPC]);
	law_check("local", &mid);
	fx_broker_relaunch();
	fx_subscriber_start("sensorgw/#");
	sim_finish(sim, 120000);
	daemon_alive("after the simulator finished");
	end = fx_mono_ms() + 60000;
	do {
		fx_sleep_ms(200);
		counters_now("local", c);
		daemon_alive("while draining");
	} while ((c->v[C_QUEUED] > 0 || c->v[C_PRODUCED] < sim->sent) && fx_mono_ms() < end);
	fx_sleep_ms(500);
	seen_collect(s, sim->sent, false);
	daemon_stop_ok();
	last_counters("local", c);
}

START_TEST(f5_disk_full)
{
	uint64_t rng = seed_for("F5a");
	unsigned rate = knob("GW_FAULT_RATE", 200, 200, 1, 5000);
	struct sim_summary sim;
	struct counters c;
	struct seen s = { 0 };
	json_t *fig;

	/* A private mount namespace: the tiny tmpfs exists only for this test process and its
	 * children, and disappears with them. */
	ck_assert_msg(unshare(CLONE_NEWNS) == 0, "unshare(CLONE_NEWNS): %s (needs root)",
		      strerror(errno));
	ck_assert(mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
	ck_assert(mkdir(fx_path("state"), 0700) == 0);
	ck_assert_msg(mount("sgw-f5", fx_path("state"), "tmpfs", MS_NOSUID | MS_NODEV,
			    "size=256k,mode=0700") == 0, "mount tmpfs: %s", strerror(errno));
	f5_run("F5a", "spool_max_bytes = 0\nspool_segment_bytes = 16K\n", rate, 6, 6, rng, &c, &s,
	       &sim);
	state_dir_intact();

	fig = delivery_figures(c.v[C_PRODUCED], &s);
	json_object_set_new(fig, "tmpfs_bytes", json_integer(256 * 1024));
	json_object_set_new(fig, "frames_sent", json_integer((json_int_t)sim.sent));
	json_object_set_new(fig, "cred_json_intact", json_true());
	counters_to(fig, "counters", &c);
	figure("F5a", fig);

	ck_assert_uint_eq(c.v[C_PRODUCED], sim.sent - sim.dropped);
	law_check("local", &c);
	ck_assert_msg(c.v[C_DROPPED_ENOSPC] > 0, "the disk never filled up");
	ck_assert_uint_eq(c.v[C_QUEUED], 0);
	/* Every acknowledged record reached the observer, and the space freed by the drain was
	 * used again: the last frame was stored and delivered. */
	ck_assert_uint_eq(s.keys_unique, c.v[C_ACKED]);
	ck_assert_msg(s.got[sim.sent] > 0, "the last frame was not delivered after the drain");
	ck_assert(umount2(fx_path("state"), MNT_DETACH) == 0);
	seen_free(&s);
}
END_TEST

START_TEST(f5_spool_bound)
{
	uint64_t rng = seed_for("F5b");
	unsigned rate = knob("GW_FAULT_RATE", 200, 200, 1, 5000);
	struct sim_summary sim;
	struct counters c;
	struct seen s = { 0 };
	size_t first_kept = 0, holes = 0;
	json_t *fig;

	ck_assert(mkdir(fx_path("state"), 0700) == 0);
	f5_run("F5b", "spool_max_bytes = 64K\nspool_segment_bytes = 8K\n", rate, 5, 3, rng, &c,
	       &s, &sim);
	state_dir_intact();
	/* The oldest segments go first: what arrived is every frame from some point on. */
	for (size_t k = 1; k <= sim.sent; k++) {
		if (s.got[k] && !first_kept)
			first_kept = k;
		holes += first_kept && !s.got[k];
	}

	fig = delivery_figures(c.v[C_PRODUCED], &s);
	json_object_set_new(fig, "spool_max_bytes", json_integer(64 * 1024));
	json_object_set_new(fig, "first_delivered_node_seq", json_integer((json_int_t)first_kept));
	json_object_set_new(fig, "holes_after_it", json_integer((json_int_t)holes));
	counters_to(fig, "counters", &c);
	figure("F5b", fig);

	ck_assert_uint_eq(c.v[C_PRODUCED], sim.sent - sim.dropped);
	law_check("local", &c);
	ck_assert_msg(c.v[C_DROPPED_OVERFLOW] > 0, "the backlog never exceeded the bound");
	ck_assert_uint_eq(c.v[C_QUEUED], 0);
	ck_assert_uint_eq(s.keys_unique, c.v[C_ACKED]);
	ck_assert_msg(holes == 0, "%zu frames missing after the first one delivered", holes);
	seen_free(&s);
}
END_TEST

/* ---- F7: two uplinks, one down for the whole run ---- */

/* CPU time (user + system) a process used so far, in ms. */
static int64_t proc_cpu_ms(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long long ut = 0, st = 0;
	const char *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "re");
	ck_assert_msg(f, "%s: %s", path, strerror(errno));
	ck_assert(fgets(buf, sizeof(buf), f));
	fclose(f);
	/* Fields after the command name, which may contain spaces: state is field 3,
	 * utime and stime are fields 14 and 15. */
	p = strrchr(buf, ')');
	ck_assert(p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			      &ut, &st) == 2);
	return (int64_t)((ut + st) * 1000 / (unsigned long long)sysconf(_SC_CLK_TCK));
}

START_TEST(f7_one_uplink_down)
{
	unsigned seconds = knob("GW_FAULT_F7_SECONDS", 10, 60, 1, 36000);
	unsigned rate = knob("GW_FAULT_RATE", 200, 200, 1, 5000);
	uint64_t rng = seed_for("F7");
	struct sim_summary sim;
	struct counters live, down;
	struct seen s = { 0 };
	int64_t p50, p99, pmax, t0, cpu_ms, wall_ms;
	char *conf;
	int dead_port;
	json_t *fig;

	fx_broker_start();
	fx_subscriber_start("sensorgw/#");
	do
		dead_port = fx_free_port();
	while (dead_port == fx_broker_port());
	conf = conf_new(NULL);
	conf_uplink(&conf, "live", fx_broker_port(), true, 10, NULL);
	conf_uplink(&conf, "down", dead_port, true, 10, NULL);
	sim_start(rate, rate * seconds, rng);
	daemon_start(conf);
	free(conf);
	t0 = fx_mono_ms();
	sim_finish(&sim, (int)seconds * 1000 + 30000);
	daemon_alive("after the run");
	/* An uplink that cannot connect must wait for its next attempt, not spin. */
	cpu_ms = proc_cpu_ms(fx_daemon_pid());
	wall_ms = fx_mono_ms() - t0;
	seen_wait_all(&s, sim.sent, false, 10000);
	daemon_stop_ok();
	last_counters("live", &live);
	last_counters("down", &down);
	p50 = pct(s.lat, s.n_lat, 50);
	p99 = pct(s.lat, s.n_lat, 99);
	pmax = pct(s.lat, s.n_lat, 100);

	fig = delivery_figures(sim.sent, &s);
	json_object_set_new(fig, "latency_ms_p50", json_integer(p50));
	json_object_set_new(fig, "latency_ms_p99", json_integer(p99));
	json_object_set_new(fig, "latency_ms_max", json_integer(pmax));
	json_object_set_new(fig, "daemon_cpu_pct", json_integer(cpu_ms * 100 / wall_ms));
	counters_to(fig, "counters_live", &live);
	counters_to(fig, "counters_down", &down);
	figure("F7", fig);

	ck_assert_msg(s.keys_unique == sim.sent, "live uplink delivered %zu of %llu",
		      s.keys_unique, (unsigned long long)sim.sent);
	ck_assert_msg(pmax <= 1000, "a record took %lld ms to arrive (p99 %lld ms)",
		      (long long)pmax, (long long)p99);
	ck_assert_msg(cpu_ms * 100 / wall_ms < 50,
		      "sensorgwd used %lld%% of a core at %u records/s with one uplink down",
		      (long long)(cpu_ms * 100 / wall_ms), rate);
	ck_assert_uint_eq(live.v[C_PRODUCED], sim.sent);
	ck_assert_uint_eq(live.v[C_ACKED], sim.sent);
	law_check("live", &live);
	ck_assert_uint_eq(down.v[C_PRODUCED], sim.sent);
	ck_assert_uint_eq(down.v[C_ACKED], 0);
	ck_assert_uint_eq(down.v[C_QUEUED], sim.sent);
	law_check("down", &down);
	seen_free(&s);
}
END_TEST

/* ---- F8..F10: what the spool keeps through a crash at first boot, damage and power cuts ---- */

/* Frames [from, from + n) written into the pty, split as a UART bridge splits them. */
static void write_frames(const struct fx_pty *pty, uint32_t from, uint32_t n, uint64_t *rng)
{
	uint8_t wire[SGW_MAX_WIRE];

	for (uint32_t i = from; i < from + n; i++) {
		size_t len = f4_encode(i, wire);

		fx_pty_write_chunked(pty, wire, len, rng);
		/* about 1,000 frames a second: a serial line's pace, not a burst */
		if (i % 4 == 3)
			fx_sleep_ms(1);
	}
}

/* Waits until the uplink's counters say that n records were produced for it this run. */
static void wait_produced(const char *uplink, uint64_t n, struct counters *c)
{
	int64_t end = fx_mono_ms() + 30000;

	for (;;) {
		counters_now(uplink, c);
		if (c->v[C_PRODUCED] >= n)
			return;
		if (fx_mono_ms() >= end) {
			fx_dump_logs();
			ck_abort_msg("uplink %s: %llu of %llu records stored", uplink,
				     (unsigned long long)c->v[C_PRODUCED], (unsigned long long)n);
		}
		fx_sleep_ms(100);
	}
}

/* Waits until the uplink has nothing queued (or 60 s passed); the counters stay in c. */
static void wait_drained(const char *uplink, struct counters *c)
{
	int64_t end = fx_mono_ms() + 60000;

	do {
		fx_sleep_ms(200);
		counters_now(uplink, c);
		daemon_alive("while draining");
	} while (c->v[C_QUEUED] > 0 && fx_mono_ms() < end);
}

/*
 * F8: a fresh state directory, the broker unreachable, frames stored, then SIGKILL before the
 * uplink ever had an acknowledgement (a new installation that boots before the network and
 * loses power, or is restarted by the watchdog). After the restart with the broker up, every
 * frame stored before the kill must arrive.
 */
START_TEST(f8_first_boot_crash)
{
	unsigned frames = knob("GW_FAULT_F8_FRAMES", 1000, 4000, 1, 100000);
	uint64_t rng = seed_for("F8");
	struct counters before, c;
	struct seen s = { 0 };
	struct fx_pty pty;
	char *conf;
	json_t *fig;
	int st;

	fx_broker_prepare(NULL);
	fx_pty_new(&pty, "tty-bin");
	conf = conf_new(NULL);
	conf_uplink(&conf, "local", fx_broker_port(), true, 10, NULL);
	daemon_start(conf);
	write_frames(&pty, 0, frames, &rng);
	wait_produced("local", frames, &before);
	st = fx_daemon_kill();
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status 0x%x", st);
	fx_broker_relaunch();
	fx_subscriber_start("sensorgw/#");
	daemon_start(conf);
	free(conf);
	seen_wait_all(&s, frames, true, 60000);
	daemon_stop_ok();
	last_counters("local", &c);

	fig = delivery_figures(frames, &s);
	json_object_set_new(fig, "law_left", json_integer((json_int_t)c.v[C_PRODUCED]));
	json_object_set_new(fig, "law_right",
			    json_integer((json_int_t)(c.v[C_ACKED] + c.v[C_QUEUED] +
						      c.v[C_DROPPED_OVERFLOW] +
						      c.v[C_DROPPED_ENOSPC] + c.v[C_REJECTED] +
						      c.v[C_LOST_CORRUPT])));
	counters_to(fig, "counters_before_kill", &before);
	counters_to(fig, "counters", &c);
	figure("F8", fig);

	ck_assert_msg(s.keys_unique == frames,
		      "delivered %zu of %u frames stored before the kill; first missing %zu",
		      s.keys_unique, frames, first_missing(&s));
	ck_assert_uint_eq(c.v[C_PRODUCED], frames);
	ck_assert_uint_eq(c.v[C_ACKED], frames);
	law_check("local", &c);
	fx_pty_close(&pty);
	seen_free(&s);
}
END_TEST

/* One record of a segment file: where it starts and its seq. */
struct segrec {
	uint64_t off, end, seq;
};

/* The records of a spool segment file (format: docs/spool-format.md); *ret_size its size. */
static size_t seg_records(const char *path, struct segrec **ret, uint64_t *ret_size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct segrec *v = NULL;
	size_t n = 0;
	struct stat st;
	uint8_t *buf;
	uint64_t off = 32;

	ck_assert_msg(fd >= 0 && fstat(fd, &st) == 0, "%s: %s", path, strerror(errno));
	buf = malloc((size_t)st.st_size + 1);
	ck_assert(buf);
	ck_assert(read(fd, buf, (size_t)st.st_size) == st.st_size);
	close(fd);
	while (off + 25 <= (uint64_t)st.st_size) {
		uint32_t len = (uint32_t)buf[off] | (uint32_t)buf[off + 1] << 8 |
			       (uint32_t)buf[off + 2] << 16 | (uint32_t)buf[off + 3] << 24;
		uint64_t seq = 0;

		if (len < 17 || off + 8 + len > (uint64_t)st.st_size)
			break;
		for (int k = 7; k >= 0; k--)
			seq = seq << 8 | buf[off + 8 + (uint64_t)k];
		v = realloc(v, (n + 1) * sizeof(*v));
		ck_assert(v);
		v[n++] = (struct segrec){ .off = off, .end = off + 8 + len, .seq = seq };
		off += 8 + len;
	}
	free(buf);
	*ret = v;
	*ret_size = (uint64_t)st.st_size;
	return n;
}

/* The segment files of the test's spool, oldest first; at most max. */
static size_t seg_files(char (*out)[PATH_MAX], size_t max)
{
	char *list = NULL, *save = NULL;
	const char *const argv[] = { "/bin/ls", fx_path("state/spool"), NULL };
	size_t n = 0;

	ck_assert(fx_run(argv, &list, NULL, 5000) == 0);
	for (char *l = strtok_r(list, "\n", &save); l && n < max; l = strtok_r(NULL, "\n", &save))
		if (!strncmp(l, "seg-", 4) && strlen(l) == 24)
			snprintf(out[n++], PATH_MAX, "%s/%s", fx_path("state/spool"), l);
	free(list);
	return n;
}

static void flip_bit(const char *path, uint64_t off, unsigned bit)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	uint8_t b;

	ck_assert(fd >= 0);
	ck_assert(pread(fd, &b, 1, (off_t)off) == 1);
	b ^= (uint8_t)(1u << bit);
	ck_assert(pwrite(fd, &b, 1, (off_t)off) == 1);
	close(fd);
}

/* The records the daemon logged as lost at its last start ("records A..B (N) lost"). */
static uint64_t logged_lost_since(size_t from_line)
{
	char *text = fx_read_file(fx_path("daemon.log")), *save = NULL;
	uint64_t n = 0;
	size_t line = 0;

	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save), line++) {
		unsigned long long lo, hi, k;
		const char *p = strstr(l, "spool: records ");

		if (line >= from_line && p && strstr(p, ") lost") &&
		    sscanf(p, "spool: records %llu..%llu (%llu)", &lo, &hi, &k) == 3) {
			ck_assert_uint_eq(hi - lo + 1, k);
			n += k;
		}
	}
	free(text);
	return n;
}

static size_t daemon_log_lines(void)
{
	return daemon_log_count("\n");
}

/*
 * F9: random damage in the spool while sensorgwd is stopped: bits flipped anywhere in any
 * segment (header or records, newest or older), and the newest segment cut at a random
 * offset. Per round, on a fresh spool: frames stored with the uplink pointed at a dead port,
 * a clean stop, the damage, a start with the uplink on the broker. Every record must be
 * delivered or counted as lost: lost_corrupt equals the records the test damaged, the log
 * names their seq ranges, and every other frame arrives.
 */
START_TEST(f9_spool_damage)
{
	unsigned rounds = knob("GW_FAULT_F9_ROUNDS", 3, 12, 1, 1000);
	unsigned frames = knob("GW_FAULT_F9_FRAMES", 1500, 1500, 10, 100000);
	unsigned flips = knob("GW_FAULT_F9_FLIPS", 4, 4, 0, 1000);
	uint64_t rng = seed_for("F9");
	uint64_t damaged_total = 0, counted_total = 0, logged_total = 0;
	char *conf_dead, *conf_live;
	struct seen s = { 0 };
	struct fx_pty pty;
	struct counters c;
	json_t *fig;
	int dead_port;

	fx_broker_start();
	fx_subscriber_start("sensorgw/#");
	fx_pty_new(&pty, "tty-bin");
	do
		dead_port = fx_free_port();
	while (dead_port == fx_broker_port());
	conf_dead = conf_new("spool_segment_bytes = 16K\n");
	conf_uplink(&conf_dead, "local", dead_port, true, 10, NULL);
	conf_live = conf_new("spool_segment_bytes = 16K\n");
	conf_uplink(&conf_live, "local", fx_broker_port(), true, 10, NULL);

	for (unsigned round = 0; round < rounds; round++) {
		char files[64][PATH_MAX];
		struct segrec *rec[64];
		size_t nrec[64];
		uint64_t fsize[64];
		uint64_t *damaged = calloc(frames + 1, sizeof(uint64_t)), n_damaged = 0;
		size_t nf, log_mark;
		const char *const rm[] = { "/bin/rm", "-rf", fx_path("state/spool"), NULL };

		ck_assert(damaged);
		ck_assert(fx_run(rm, NULL, NULL, 5000) == 0);
		daemon_start(conf_dead);
		write_frames(&pty, round * frames, frames, &rng);
		wait_produced("local", frames, &c);
		daemon_stop_ok();

		nf = seg_files(files, 64);
		ck_assert_uint_gt(nf, 1);
		/* the records of every file as written, before any damage changes a length */
		for (size_t f = 0; f < nf; f++)
			nrec[f] = seg_records(files[f], &rec[f], &fsize[f]);
		/* bit flips anywhere, then a cut of the newest segment */
		for (unsigned k = 0; k <= flips; k++) {
			bool cut = k == flips;
			size_t f = cut ? nf - 1 : fx_rand_below(&rng, (uint32_t)nf);
			uint64_t off;

			if (fsize[f] <= 33)
				continue;
			off = cut ? 33 + fx_rand_below(&rng, (uint32_t)(fsize[f] - 33))
				  : fx_rand_below(&rng, (uint32_t)fsize[f]);
			for (size_t j = 0; j < nrec[f]; j++) {
				const struct segrec *r = &rec[f][j];
				bool hit = cut ? r->end > off : off >= r->off && off < r->end;
				bool seen_before = false;

				for (uint64_t d = 0; d < n_damaged; d++)
					seen_before |= damaged[d] == r->seq;
				if (hit && !seen_before)
					damaged[n_damaged++] = r->seq;
			}
			if (cut)
				ck_assert(truncate(files[f], (off_t)off) == 0);
			else
				flip_bit(files[f], off, fx_rand_below(&rng, 8));
		}
		for (size_t f = 0; f < nf; f++)
			free(rec[f]);

		log_mark = daemon_log_lines();
		daemon_start(conf_live);
		wait_drained("local", &c);
		daemon_stop_ok();
		last_counters("local", &c);
		law_check("local", &c);
		fprintf(stderr, "F9 round %u: %llu records damaged, lost_corrupt %llu, logged %llu, "
			"acked %llu\n", round, (unsigned long long)n_damaged,
			(unsigned long long)c.v[C_LOST_CORRUPT],
			(unsigned long long)logged_lost_since(log_mark),
			(unsigned long long)c.v[C_ACKED]);
		ck_assert_uint_eq(c.v[C_PRODUCED], frames);
		ck_assert_msg(c.v[C_LOST_CORRUPT] == n_damaged,
			      "round %u: %llu records damaged, %llu counted as lost", round,
			      (unsigned long long)n_damaged,
			      (unsigned long long)c.v[C_LOST_CORRUPT]);
		ck_assert_uint_eq(logged_lost_since(log_mark), n_damaged);
		ck_assert_uint_eq(c.v[C_ACKED], frames - n_damaged);
		damaged_total += n_damaged;
		counted_total += c.v[C_LOST_CORRUPT];
		logged_total += logged_lost_since(log_mark);
		free(damaged);
	}
	free(conf_dead);
	free(conf_live);
	seen_wait_all(&s, (size_t)rounds * frames, true, 2000);

	fig = delivery_figures((uint64_t)rounds * frames, &s);
	json_object_set_new(fig, "rounds", json_integer(rounds));
	json_object_set_new(fig, "damages", json_integer((json_int_t)rounds * (flips + 1)));
	json_object_set_new(fig, "records_damaged", json_integer((json_int_t)damaged_total));
	json_object_set_new(fig, "lost_corrupt_counted", json_integer((json_int_t)counted_total));
	json_object_set_new(fig, "lost_logged", json_integer((json_int_t)logged_total));
	json_object_set_new(fig, "law_left", json_integer((json_int_t)rounds * frames));
	json_object_set_new(fig, "law_right",
			    json_integer((json_int_t)(s.keys_unique + counted_total)));
	figure("F9", fig);
	ck_assert_msg(s.keys_unique + counted_total == (uint64_t)rounds * frames,
		      "delivered %zu + counted lost %llu != produced %llu", s.keys_unique,
		      (unsigned long long)counted_total, (unsigned long long)rounds * frames);
	fx_pty_close(&pty);
	seen_free(&s);
}
END_TEST

/*
 * F10: power cuts. sensorgwd runs under traffic with the broker up and is SIGKILLed at random
 * moments; before each restart the newest segment loses its last 1..40 records, as unsynced
 * writes do when the power fails (the cursor and reservation files are written with fsync,
 * so they stay). No spool seq may ever name two different frames, and what is lost is only
 * what the cuts took (and frames of the daemon's last read, as in F4).
 */
START_TEST(f10_power_cuts)
{
	unsigned cuts = knob("GW_FAULT_F10_CUTS", 10, 40, 1, 10000);
	uint64_t rng = seed_for("F10");
	size_t cap = (size_t)cuts * 1200 + 1000, n_frames = 0, *end = calloc(cap, sizeof(size_t));
	uint8_t *received = calloc(cap, 1);
	uint64_t records_cut = 0, reuses = 0, lost = 0, lost_in_chunk = 0, seq_max = 0;
	uint64_t *seq_i;
	struct fx_msg *m;
	size_t nm;
	struct fx_pty pty;
	struct counters c;
	struct seen s = { 0 };
	char *conf;
	json_t *fig;

	ck_assert(end && received);
	fx_broker_start();
	fx_subscriber_start("sensorgw/#");
	fx_pty_new(&pty, "tty-bin");
	conf = conf_new(NULL);
	conf_uplink(&conf, "local", fx_broker_port(), true, 10, NULL);
	for (unsigned run = 0; run < cuts; run++) {
		int64_t kill_at;
		size_t written = 0, consumed, first = n_frames, nf, nr;
		uint8_t wire[SGW_MAX_WIRE];
		char files[256][PATH_MAX];
		struct segrec *r;
		uint64_t size, k;
		int st;

		daemon_start(conf);
		kill_at = fx_mono_ms() + 200 + fx_rand_below(&rng, 600);
		while (fx_mono_ms() < kill_at && n_frames < cap) {
			size_t len = f4_encode((uint32_t)n_frames, wire);

			fx_pty_write_chunked(&pty, wire, len, &rng);
			written += len;
			end[n_frames++] = written;
			if (fx_rand_below(&rng, 2))
				fx_sleep_ms(1);
		}
		st = fx_daemon_kill();
		ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status 0x%x", st);
		consumed = written - drain_unread(&pty);
		for (size_t j = first; j < n_frames; j++)
			received[j] = end[j] <= consumed ? (end[j] + READ_CHUNK > consumed ? 2 : 1)
							 : 0;
		/* the power cut: the newest segment keeps all but its last k records */
		nf = seg_files(files, 256);
		ck_assert_uint_gt(nf, 0);
		nr = seg_records(files[nf - 1], &r, &size);
		if (nr > 0) {
			k = 1 + fx_rand_below(&rng, nr < 40 ? (uint32_t)nr : 40);
			ck_assert(truncate(files[nf - 1], (off_t)r[nr - k].off) == 0);
			records_cut += k;
		}
		free(r);
	}
	daemon_start(conf);
	free(conf);
	{
		int64_t deadline = fx_mono_ms() + 30000;
		size_t missing;

		do {
			fx_sleep_ms(250);
			seen_collect(&s, n_frames, true);
			missing = 0;
			for (size_t j = 0; j < n_frames; j++)
				missing += received[j] && !s.got[j + 1];
		} while (missing > records_cut && fx_mono_ms() < deadline);
		fx_sleep_ms(500);
		seen_collect(&s, n_frames, true);
	}
	daemon_stop_ok();
	last_counters("local", &c);

	/* which frame each spool seq carried */
	m = fx_subscriber_messages(&nm);
	for (size_t j = 0; j < nm; j++) {
		json_t *o = json_loads(m[j].payload, 0, NULL);
		json_int_t q = json_integer_value(json_object_get(o, "seq"));

		if ((uint64_t)q > seq_max)
			seq_max = (uint64_t)q;
		json_decref(o);
	}
	seq_i = calloc(seq_max + 1, sizeof(uint64_t));
	ck_assert(seq_i);
	for (size_t j = 0; j < nm; j++) {
		json_t *o = json_loads(m[j].payload, 0, NULL);
		json_int_t q = json_integer_value(json_object_get(o, "seq"));
		json_int_t i = json_integer_value(json_object_get(json_object_get(o, "params"), "i"));

		if (q > 0) {
			if (!seq_i[q])
				seq_i[q] = (uint64_t)i + 1;
			else if (seq_i[q] != (uint64_t)i + 1)
				reuses++;
		}
		json_decref(o);
	}
	fx_msgs_free(m, nm);
	free(seq_i);
	for (size_t j = 0; j < n_frames; j++) {
		if (!received[j] || s.got[j + 1])
			continue;
		lost++;
		lost_in_chunk += received[j] == 2;
	}

	{
		/* over the frames the daemon was given (read whole before each kill) */
		uint64_t given = 0, got = 0;

		for (size_t j = 0; j < n_frames; j++) {
			given += received[j] != 0;
			got += received[j] && s.got[j + 1];
		}
		fig = json_pack("{s:I, s:I, s:I, s:I, s:I}", "produced", (json_int_t)given,
				"delivered_unique", (json_int_t)got, "messages", (json_int_t)s.msgs,
				"duplicates", (json_int_t)(s.msgs - s.keys_unique), "lost",
				(json_int_t)(given - got));
	}
	json_object_set_new(fig, "frames_written", json_integer((json_int_t)n_frames));
	json_object_set_new(fig, "power_cuts", json_integer(cuts));
	json_object_set_new(fig, "records_cut", json_integer((json_int_t)records_cut));
	json_object_set_new(fig, "seq_reuses", json_integer((json_int_t)reuses));
	json_object_set_new(fig, "received_lost", json_integer((json_int_t)lost));
	json_object_set_new(fig, "received_lost_in_last_read", json_integer((json_int_t)lost_in_chunk));
	json_object_set_new(fig, "law_left", json_integer((json_int_t)c.v[C_PRODUCED]));
	json_object_set_new(fig, "law_right",
			    json_integer((json_int_t)(c.v[C_ACKED] + c.v[C_QUEUED] +
						      c.v[C_DROPPED_OVERFLOW] +
						      c.v[C_DROPPED_ENOSPC] + c.v[C_REJECTED] +
						      c.v[C_LOST_CORRUPT])));
	counters_to(fig, "counters_last_run", &c);
	figure("F10", fig);

	ck_assert_msg(reuses == 0, "%llu spool seqs were issued twice (to different frames)",
		      (unsigned long long)reuses);
	ck_assert_msg(lost <= records_cut + lost_in_chunk,
		      "%llu received frames lost, more than the %llu records the cuts took",
		      (unsigned long long)lost, (unsigned long long)records_cut);
	law_check("local", &c);
	ck_assert_uint_eq(c.v[C_QUEUED], 0);
	fx_pty_close(&pty);
	seen_free(&s);
	free(end);
	free(received);
}
END_TEST


/* ==== Issue 14, cases 4-6: reloads during traffic, a tiny file system ==== */

/* A counter of [port name] from a status (0 when missing). */
static uint64_t port_counter(const json_t *st, const char *name, const char *key)
{
	size_t i;
	json_t *v;

	json_array_foreach(json_object_get(st, "ports"), i, v)
		if (!strcmp(json_string_value(json_object_get(v, "name")), name))
			return (uint64_t)json_integer_value(json_object_get(v, key));
	return 0;
}

/* Writes conf and sends SIGHUP; waits for the reload's "reloaded" line. */
static void reload_to(const char *conf)
{
	const char *needle = "reloaded: ";
	size_t before = daemon_log_count(needle);
	int64_t end = fx_mono_ms() + FX_WAIT_MS;

	fx_write_file(fx_path("sensorgw.conf"), conf, 0600);
	fx_daemon_signal(SIGHUP);
	while (daemon_log_count(needle) <= before) {
		if (!fx_daemon_running() || fx_mono_ms() >= end) {
			fx_dump_logs();
			ck_abort_msg("the reload was not applied");
		}
		fx_sleep_ms(10);
	}
}

/* A copy of text with the first from replaced by to (from must be there). */
static char *replaced(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);

	ck_assert_msg(at, "'%s' is not in the configuration", from);
	return xasprintf("%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
}

/*
 * Reloads under steady traffic: six SIGHUPs while the simulator sends, four with the same
 * file, one that changes the port's line settings (baud) and one that changes them back.
 * Every frame the simulator wrote must arrive (lost 0), the law must be exact from the exit
 * counters, the counters must not restart at any reload (produced = every frame written, the
 * port's frames never go down), the port must stay open throughout (opens 1) and the uplink's
 * session must stay up (connects 1).
 */
START_TEST(reload_during_traffic)
{
	uint64_t rng = seed_for("F11");
	unsigned rate = knob("GW_FAULT_RATE", 200, 200, 1, 5000);
	unsigned seconds = 8;
	struct sim_summary sim;
	struct counters c;
	struct seen s = { 0 };
	uint64_t frames_before = 0, opens, bad, rhs;
	char *conf, *changed;
	json_t *st, *fig;
	unsigned reloads = 0, resets = 0;

	fx_broker_start();
	fx_subscriber_start("sensorgw/#");
	conf = conf_new("control_socket = CONTROL\n");
	changed = replaced(conf, "CONTROL", fx_path("control"));
	free(conf);
	conf = changed;
	conf_uplink(&conf, "local", fx_broker_port(), true, 10, NULL);
	changed = replaced(conf, "framing = binary\n", "framing = binary\nbaud = 57600\n");
	sim_start(rate, rate * seconds, rng);
	daemon_start(conf);
	ck_assert(fx_daemon_wait_connected(FX_WAIT_MS));
	for (unsigned k = 0; k < 6; k++) {
		uint64_t frames;

		fx_sleep_ms(800);
		reload_to(k == 2 ? changed : conf);
		reloads++;
		st = fx_status_json();
		frames = port_counter(st, "bin", "frames");
		json_decref(st);
		/* checked after the figures, so a failing run still shows what it lost */
		if (frames < frames_before || frames == 0) {
			fprintf(stderr, "reload: reload %u: the port's frames went from %llu to "
				"%llu\n", k + 1, (unsigned long long)frames_before,
				(unsigned long long)frames);
			resets++;
		}
		frames_before = frames;
	}
	sim_finish(&sim, (int)seconds * 1000 + 30000);
	daemon_alive("after the run");
	seen_wait_all(&s, sim.sent, false, 20000);
	st = fx_status_json();
	opens = port_counter(st, "bin", "opens");
	bad = port_counter(st, "bin", "bad_frames");
	frames_before = port_counter(st, "bin", "frames");
	json_decref(st);
	daemon_stop_ok();
	last_counters("local", &c);
	rhs = c.v[C_ACKED] + c.v[C_QUEUED] + c.v[C_DROPPED_OVERFLOW] + c.v[C_DROPPED_ENOSPC] +
	      c.v[C_REJECTED] + c.v[C_LOST_CORRUPT];

	fig = delivery_figures(sim.sent, &s);
	json_object_set_new(fig, "reloads", json_integer(reloads));
	json_object_set_new(fig, "law_produced", json_integer((json_int_t)c.v[C_PRODUCED]));
	json_object_set_new(fig, "law_rhs", json_integer((json_int_t)rhs));
	json_object_set_new(fig, "port_frames", json_integer((json_int_t)frames_before));
	json_object_set_new(fig, "port_bad_frames", json_integer((json_int_t)bad));
	json_object_set_new(fig, "port_opens", json_integer((json_int_t)opens));
	json_object_set_new(fig, "sim_dropped", json_integer((json_int_t)sim.dropped));
	json_object_set_new(fig, "port_counter_resets", json_integer(resets));
	counters_to(fig, "counters", &c);
	figure("F11", fig);

	ck_assert_msg(resets == 0, "the port's counters restarted at %u of %u reloads", resets,
		      reloads);
	ck_assert_msg(sim.dropped == 0, "the simulator could not write %llu frames",
		      (unsigned long long)sim.dropped);
	ck_assert_msg(s.keys_unique == sim.sent, "delivered %zu of %llu frames (first missing: "
		      "node_seq %zu)", s.keys_unique, (unsigned long long)sim.sent,
		      first_missing(&s));
	ck_assert_msg(c.v[C_PRODUCED] == sim.sent, "produced %llu at exit, %llu frames written: "
		      "the uplink's counters restarted at a reload",
		      (unsigned long long)c.v[C_PRODUCED], (unsigned long long)sim.sent);
	law_check("local", &c);
	ck_assert_uint_eq(c.v[C_ACKED], sim.sent);
	ck_assert_msg(c.v[C_CONNECTS] == 1, "the uplink connected %llu times: a reload with its "
		      "settings unchanged restarted it", (unsigned long long)c.v[C_CONNECTS]);
	/* + the simulator's hello */
	ck_assert_msg(frames_before == sim.sent + 1, "the port counted %llu frames of %llu: its "
		      "counters restarted at a reload", (unsigned long long)frames_before,
		      (unsigned long long)sim.sent + 1);
	ck_assert_msg(opens == 1, "the port was opened %llu times: a reload closed it",
		      (unsigned long long)opens);
	ck_assert_uint_eq(bad, 0);
	free(conf);
	free(changed);
	seen_free(&s);
}
END_TEST

/*
 * A file system smaller than the default min_free_bytes (16 MiB): a 2 MiB tmpfs on the state
 * directory, the broker up. Every record is dropped (by design: the reserve cannot be kept),
 * but the start-up warns with the numbers and the key, the status says so, the drop messages
 * name the reserve instead of "No space left on device", and the burst of drop warnings ends
 * with a summary of what was suppressed (at the latest at exit).
 */
START_TEST(tiny_file_system)
{
	uint64_t rng = seed_for("F12");
	unsigned rate = knob("GW_FAULT_RATE", 200, 200, 1, 5000);
	struct sim_summary sim;
	struct counters c;
	struct seen s = { 0 };
	const json_t *warning;
	bool startup_warned, status_warned;
	char *conf, *tmp, *log, *line;
	json_t *st, *fig;
	uint64_t rhs;
	int64_t end;

	ck_assert_msg(unshare(CLONE_NEWNS) == 0, "unshare(CLONE_NEWNS): %s (needs root)",
		      strerror(errno));
	ck_assert(mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
	ck_assert(mkdir(fx_path("state"), 0700) == 0);
	ck_assert_msg(mount("sgw-tiny", fx_path("state"), "tmpfs", MS_NOSUID | MS_NODEV,
			    "size=2m,mode=0700") == 0, "mount tmpfs: %s", strerror(errno));
	fx_broker_start();
	fx_subscriber_start("sensorgw/#");
	/* the default reserve: no min_free_bytes line at all */
	tmp = conf_new("control_socket = CONTROL\n");
	conf = replaced(tmp, "min_free_bytes = 0\n", "");
	free(tmp);
	tmp = replaced(conf, "CONTROL", fx_path("control"));
	free(conf);
	conf = tmp;
	conf_uplink(&conf, "local", fx_broker_port(), true, 10, NULL);
	sim_start(rate, rate * 3, rng);
	daemon_start(conf);
	free(conf);
	ck_assert(fx_daemon_wait_connected(FX_WAIT_MS));

	/* the start-up warning, with the key to change (checked after the figures) */
	line = last_line_with("min_free_bytes");
	startup_warned = line && strstr(line, "warning") &&
			 strstr(line, "[gateway] min_free_bytes");
	fprintf(stderr, "tinyfs: start-up: %s\n", line ? line : "(no line names min_free_bytes)");
	free(line);
	/* the status says so */
	st = fx_status_json();
	warning = json_object_get(json_object_get(json_object_get(st, "spool"), "reserve"),
				  "warning");
	status_warned = json_is_string(warning) &&
			strstr(json_string_value(warning), "min_free_bytes");
	tmp = json_dumps(json_object_get(st, "spool"), JSON_COMPACT);
	fprintf(stderr, "tinyfs: status spool: %s\n", tmp);
	free(tmp);
	json_decref(st);

	sim_finish(&sim, 60000);
	end = fx_mono_ms() + 20000;
	do {
		fx_sleep_ms(200);
		counters_now("local", &c);
	} while (c.v[C_PRODUCED] < sim.sent && fx_mono_ms() < end);
	seen_collect(&s, sim.sent, false);
	daemon_stop_ok();
	last_counters("local", &c);
	rhs = c.v[C_ACKED] + c.v[C_QUEUED] + c.v[C_DROPPED_OVERFLOW] + c.v[C_DROPPED_ENOSPC] +
	      c.v[C_REJECTED] + c.v[C_LOST_CORRUPT];

	fig = delivery_figures(sim.sent, &s);
	json_object_set_new(fig, "tmpfs_bytes", json_integer(2 * 1024 * 1024));
	json_object_set_new(fig, "law_produced", json_integer((json_int_t)c.v[C_PRODUCED]));
	json_object_set_new(fig, "law_rhs", json_integer((json_int_t)rhs));
	json_object_set_new(fig, "drop_lines", json_integer((json_int_t)
		daemon_log_count("record dropped")));
	counters_to(fig, "counters", &c);
	figure("F12", fig);

	ck_assert_msg(startup_warned, "no start-up warning about min_free_bytes");
	ck_assert_msg(status_warned, "spool.reserve.warning missing from the status");
	ck_assert_uint_eq(c.v[C_PRODUCED], sim.sent - sim.dropped);
	law_check("local", &c);
	ck_assert_uint_eq(c.v[C_DROPPED_ENOSPC], c.v[C_PRODUCED]);
	/* the drop messages name the reserve, not ENOSPC's strerror */
	line = last_line_with("record dropped");
	ck_assert_msg(line, "no drop message");
	fprintf(stderr, "tinyfs: drop message: %s\n", line);
	ck_assert_msg(strstr(line, "min_free_bytes") && !strstr(line, "No space left"),
		      "the drop message does not name the reserve: %s", line);
	free(line);
	/* the burst ended with a summary of the suppressed warnings */
	log = fx_read_file(fx_path("daemon.log"));
	line = log ? strstr(log, "similar messages were suppressed") : NULL;
	ck_assert_msg(line, "%zu drop warnings and no summary of the suppressed ones",
		      count_in(log, "record dropped"));
	free(log);
	ck_assert(umount2(fx_path("state"), MNT_DETACH) == 0);
	seen_free(&s);
}
END_TEST

/* ==== end of issue 14, cases 4-6 ==== */

static Suite *fault_suite(void)
{
	Suite *su = suite_create("fault");
	struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{ "F1", f1_broker_restarts },	  { "F2", f2_publish_without_puback },
		{ "F3", f3_silent_cut },	  { "F4", f4_sigkill },
		{ "F5", f5_disk_full },		  { "F5", f5_spool_bound },
		{ "F7", f7_one_uplink_down },
		{ "F8", f8_first_boot_crash },	  { "F9", f9_spool_damage },
		{ "F10", f10_power_cuts },
		/* issue 14, cases 4-6 */
		{ "F11", reload_during_traffic }, { "F12", tiny_file_system },
	};
	const char *prev = "";
	TCase *tc = NULL;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (strcmp(prev, cases[i].name) != 0) {
			prev = cases[i].name;
			tc = tcase_create(cases[i].name);
			tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
			/* The long forms run for many minutes; Check's default is 4 s. */
			tcase_set_timeout(tc, long_form() ? 3600 : 300);
			suite_add_tcase(su, tc);
		}
		tcase_add_test(tc, cases[i].test);
	}
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(fault_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
