/* SPDX-License-Identifier: MIT */
/*
 * The spine of sensorgw end to end: the real sensorgwd reads real ptys and publishes through a
 * real mosquitto (TLS with a test CA, password file) to an independent subscriber. Payloads
 * are compared exactly, after parsing, against what each written frame must become.
 */

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "sgw_node.h"

#define N_SPINE 1000
#define BIN_ADDR 5
#define BIN_BOOT 42
#define BIN_FW "it-1.0"

static const uint8_t bin_uid[12] = { 0x20, 0x00, 0x3a, 0x00, 0x11, 0x47, 0x38, 0x31,
				     0x34, 0x35, 0x36, 0xbe };

static const char *uid_hex(void)
{
	static char buf[25];
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < 12; i++) {
		buf[2 * i] = hex[bin_uid[i] >> 4];
		buf[2 * i + 1] = hex[bin_uid[i] & 0xf];
	}
	buf[24] = '\0';
	return buf;
}

/* ---- frames: every value is derived from the frame index, so each frame is identifiable ---- */

/* x.25 or x.75: exact in binary32 and binary64 and never integral, so its JSON form is a real. */
static double temp_of(unsigned i)
{
	return 10.25 + (double)(i % 40) * 0.5;
}

static json_t *text_params(unsigned i)
{
	return json_pack("{s:I, s:I, s:I, s:f, s:I}", "i", (json_int_t)i, "MQ2",
			 (json_int_t)(20 + i % 41), "MQ7", (json_int_t)i - 500, "DHT11_T",
			 temp_of(i), "DHT11_H", (json_int_t)(20 + i % 70));
}

/* One text record; the separators, checksum and line end vary with i, as real firmware varies. */
static size_t text_frame(unsigned i, char *buf, size_t cap, bool corrupt)
{
	static const char *const seps[] = { ",", " ", ";", ", " };
	const char *sep = seps[i % 4];
	int n;

	n = snprintf(buf, cap, "i=%u%sMQ2=%u%sMQ7=%d%sDHT11_T=%.2f%sDHT11_H=%u", i, sep,
		     20 + i % 41, sep, (int)i - 500, sep, temp_of(i), sep, 20 + i % 70);
	ck_assert(n > 0 && (size_t)n < cap - 8);
	if (i % 2 || corrupt) {
		uint8_t x = 0;

		for (int k = 0; k < n; k++)
			x ^= (uint8_t)buf[k];
		n += snprintf(buf + n, cap - (size_t)n, "*%02X", corrupt ? x ^ 0x21 : x);
	}
	n += snprintf(buf + n, cap - (size_t)n, "%s", i % 3 == 0 ? "\n" : "\r\n");
	return (size_t)n;
}

static json_t *bin_params(unsigned i)
{
	return json_pack("{s:I, s:I, s:I, s:f, s:I}", "i", (json_int_t)i, "MQ2",
			 (json_int_t)i * 3, "MQ7", -(json_int_t)i, "DHT11_T", temp_of(i), "DHT11_H",
			 (json_int_t)(20 + i % 70));
}

/* Telemetry frame i from the binary node: node seq i + 1 (the hello was seq 0). */
static size_t bin_frame(unsigned i, uint8_t *out)
{
	struct sgw_builder b;
	int n;

	sgw_begin(&b, SGW_TYPE_TELEMETRY, BIN_ADDR, (uint16_t)(i + 1));
	sgw_put_i32(&b, "i", (int32_t)i);
	sgw_put_i32(&b, "MQ2", (int32_t)i * 3);
	sgw_put_i32(&b, "MQ7", -(int32_t)i);
	sgw_put_f32(&b, "DHT11_T", (float)temp_of(i));
	sgw_put_i32(&b, "DHT11_H", (int32_t)(20 + i % 70));
	n = sgw_finish(&b, out, SGW_MAX_WIRE);
	ck_assert_int_gt(n, 0);
	return (size_t)n;
}

static size_t bin_hello(uint8_t *out)
{
	return fx_bin_hello(out, BIN_ADDR, 0, bin_uid, BIN_BOOT, BIN_FW);
}

/* ---- checking payloads ---- */

enum port_id { P_TXT, P_BIN, P_SIM, P_MAX };

struct seen {
	unsigned n;
	bool *got;        /* per frame index */
	json_int_t *seq;  /* gateway seq per frame index */
	size_t cap;
};

struct check {
	int64_t t0, t1; /* the test's time window, wall clock ms */
	struct seen port[P_MAX];
	json_int_t last_seq;
};

static void check_init(struct check *c, size_t frames)
{
	memset(c, 0, sizeof(*c));
	for (int p = 0; p < P_MAX; p++) {
		c->port[p].got = calloc(frames, sizeof(bool));
		c->port[p].seq = calloc(frames, sizeof(json_int_t));
		c->port[p].cap = frames;
		ck_assert(c->port[p].got && c->port[p].seq);
	}
	c->t0 = fx_now_ms();
}

static void check_free(struct check *c)
{
	for (int p = 0; p < P_MAX; p++) {
		free(c->port[p].got);
		free(c->port[p].seq);
	}
}

/*
 * Parses one message and compares it with the frame it names: every key and value, seq an
 * integer >= 1 and increasing in arrival order, ts within the test's window. Returns the
 * frame index and records it in c.
 */
static unsigned check_msg(struct check *c, const struct fx_msg *m)
{
	json_error_t err;
	json_t *got = json_loads(m->payload, 0, &err), *params, *want, *copy;
	const char *port;
	json_int_t seq, ts, idx;
	enum port_id pid;
	char *a, *b;

	ck_assert_msg(got, "payload is not JSON (%s): %s", err.text, m->payload);
	ck_assert_msg(json_is_object(got), "payload is not an object: %s", m->payload);
	port = json_string_value(json_object_get(got, "port"));
	ck_assert_msg(port, "no port: %s", m->payload);
	params = json_object_get(got, "params");
	ck_assert_msg(json_is_object(params), "no params: %s", m->payload);

	ck_assert_msg(json_is_integer(json_object_get(got, "seq")), "seq: %s", m->payload);
	seq = json_integer_value(json_object_get(got, "seq"));
	ck_assert_msg(seq >= 1 && seq > c->last_seq, "seq %lld after %lld: %s", (long long)seq,
		      (long long)c->last_seq, m->payload);
	c->last_seq = seq;
	ck_assert_msg(json_is_integer(json_object_get(got, "ts")), "ts: %s", m->payload);
	ts = json_integer_value(json_object_get(got, "ts"));
	ck_assert_msg(ts >= c->t0 && ts <= m->rx_ms, "ts %lld outside [%lld, %lld]: %s",
		      (long long)ts, (long long)c->t0, (long long)m->rx_ms, m->payload);

	if (!strcmp(port, "txt") || !strcmp(port, "bin")) {
		ck_assert_msg(json_is_integer(json_object_get(params, "i")), "no i: %s",
			      m->payload);
		idx = json_integer_value(json_object_get(params, "i"));
	} else {
		idx = (json_int_t)c->port[P_SIM].n;
	}

	if (!strcmp(port, "txt")) {
		pid = P_TXT;
		want = json_pack("{s:s, s:s, s:s, s:o}", "device", "stm32-txt", "node", "txt",
				 "port", "txt", "params", text_params((unsigned)idx));
	} else if (!strcmp(port, "bin")) {
		char device[40];

		pid = P_BIN;
		snprintf(device, sizeof(device), "stm32-%s", uid_hex());
		want = json_pack("{s:s, s:s, s:s, s:i, s:I, s:i, s:s, s:o}", "device", device,
				 "node", uid_hex(), "port", "bin", "addr", BIN_ADDR, "node_seq",
				 idx + 1, "boot", BIN_BOOT, "fw", BIN_FW, "params",
				 bin_params((unsigned)idx));
	} else {
		ck_assert_msg(!strcmp(port, "sim"), "unexpected port: %s", m->payload);
		pid = P_SIM;
		want = NULL;
	}
	ck_assert_msg(idx >= 0 && (size_t)idx < c->port[pid].cap, "index: %s", m->payload);
	ck_assert_msg(!c->port[pid].got[idx], "frame %s/%lld delivered twice: %s", port,
		      (long long)idx, m->payload);
	c->port[pid].got[idx] = true;
	c->port[pid].seq[idx] = seq;
	c->port[pid].n++;

	if (want) {
		char topic[80];

		snprintf(topic, sizeof(topic), "sensorgw/%s/telemetry",
			 json_string_value(json_object_get(want, "device")));
		ck_assert_str_eq(m->topic, topic);
		copy = json_deep_copy(got);
		json_object_del(copy, "seq");
		json_object_del(copy, "ts");
		a = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
		b = json_dumps(copy, JSON_SORT_KEYS | JSON_COMPACT);
		ck_assert_msg(json_equal(want, copy), "frame %s/%lld:\n want %s\n  got %s", port,
			      (long long)idx, a, b);
		free(a);
		free(b);
		json_decref(copy);
		json_decref(want);
	}
	json_decref(got);
	return (unsigned)idx;
}

static void check_all(struct check *c)
{
	struct fx_msg *m;
	size_t n;

	m = fx_subscriber_messages(&n);
	c->t1 = fx_now_ms();
	for (size_t i = 0; i < n; i++)
		check_msg(c, &m[i]);
	fx_msgs_free(m, n);
}

/* Frames of one port were published in the order they were written. */
static void check_port_order(const struct check *c, enum port_id p, unsigned from, unsigned to)
{
	json_int_t prev = 0;

	for (unsigned i = from; i < to; i++) {
		if (!c->port[p].got[i])
			continue;
		ck_assert_msg(c->port[p].seq[i] > prev, "port %d frame %u: seq %lld after %lld", p,
			      i, (long long)c->port[p].seq[i], (long long)prev);
		prev = c->port[p].seq[i];
	}
}

/* Waits for exactly n messages: n arrive in time, and no more follow within a grace period. */
static void expect_count(size_t n, int timeout_ms)
{
	bool ok = fx_subscriber_wait_count(n, timeout_ms);

	if (!ok)
		fx_dump_logs();
	ck_assert_msg(ok, "only %zu of %zu messages arrived within %d ms", fx_subscriber_count(),
		      n, timeout_ms);
	fx_sleep_ms(500);
	ck_assert_msg(fx_subscriber_count() == n, "%zu messages instead of %zu",
		      fx_subscriber_count(), n);
}

/* ---- the common start ---- */

static struct fx_pty txt, bin;

static void start_all(const char *ca_name, const char *extra, bool wait_connected)
{
	char ca[128];
	char *conf;

	fx_broker_start();
	fx_subscriber_start("sensorgw/#");
	fx_pty_new(&txt, "tty-txt");
	fx_pty_new(&bin, "tty-bin");
	snprintf(ca, sizeof(ca), "%s/broker/%s", fx_dir(), ca_name);
	conf = fx_config(ca, extra);
	fx_daemon_start(conf);
	free(conf);
	if (!fx_pty_wait_opened(&txt, fx_daemon_pid(), FX_WAIT_MS) ||
	    !fx_pty_wait_opened(&bin, fx_daemon_pid(), FX_WAIT_MS)) {
		fx_dump_logs();
		ck_abort_msg("sensorgwd did not open both ports");
	}
	if (wait_connected && !fx_daemon_wait_connected(FX_WAIT_MS)) {
		fx_dump_logs();
		ck_abort_msg("sensorgwd did not connect to the broker");
	}
}

/* ---- 1. 1,000 text + 1,000 binary frames, exactly as written ---- */

START_TEST(spine_2000_frames)
{
	static char tbuf[1 << 16];
	static uint8_t bbuf[1 << 16];
	uint64_t rng = 0x5eed0001;
	unsigned ti = 0, bi = 0;
	struct check c;

	check_init(&c, N_SPINE);
	start_all("ca.crt", NULL, true);
	{
		size_t n = bin_hello(bbuf);

		fx_pty_write_chunked(&bin, bbuf, n, &rng);
	}
	/* Bursts of a few dozen frames per port, alternating, each burst split at odd places. */
	while (ti < N_SPINE || bi < N_SPINE) {
		unsigned burst = 1 + fx_rand_below(&rng, 40);
		size_t len = 0;

		for (unsigned k = 0; k < burst && ti < N_SPINE; k++, ti++)
			len += text_frame(ti, tbuf + len, sizeof(tbuf) - len, false);
		fx_pty_write_chunked(&txt, tbuf, len, &rng);
		len = 0;
		burst = 1 + fx_rand_below(&rng, 40);
		for (unsigned k = 0; k < burst && bi < N_SPINE; k++, bi++)
			len += bin_frame(bi, bbuf + len);
		fx_pty_write_chunked(&bin, bbuf, len, &rng);
		fx_sleep_ms((int)fx_rand_below(&rng, 4));
	}
	expect_count(2 * N_SPINE, 30000);
	check_all(&c);
	ck_assert_uint_eq(c.port[P_TXT].n, N_SPINE);
	ck_assert_uint_eq(c.port[P_BIN].n, N_SPINE);
	check_port_order(&c, P_TXT, 0, N_SPINE);
	check_port_order(&c, P_BIN, 0, N_SPINE);
	check_free(&c);
}
END_TEST

/* ---- 2. garbage between frames costs no valid frame ---- */

#define N_GARBAGE 200

/* Text junk that can never be a record: no '=', ':' or '{', always ended by a newline. */
static size_t text_garbage(unsigned i, uint64_t *rng, char *buf, size_t cap)
{
	size_t len = 0;

	switch (i % 4) {
	case 0: /* random bytes */
		for (unsigned k = 1 + fx_rand_below(rng, 60); k > 0; k--) {
			char ch;

			do {
				ch = (char)(1 + fx_rand_below(rng, 255));
			} while (ch == '\n' || ch == '\r' || ch == '=' || ch == ':' || ch == '{');
			buf[len++] = ch;
		}
		buf[len++] = '\n';
		break;
	case 1: { /* a partial frame: bytes lost in the middle, so its checksum fails */
		char line[256];
		size_t n = text_frame(1001 + 2 * i, line, sizeof(line), false);
		char *star = strchr(line, '*');
		size_t cut = 3 + fx_rand_below(rng, (uint32_t)(star - line) - 6);
		uint8_t gone = (uint8_t)line[cut] ^ (uint8_t)line[cut + 1];

		/* Dropping two bytes whose XOR is 0 would keep the checksum right. */
		if (gone == 0)
			cut++;
		memcpy(buf, line, cut);
		memcpy(buf + cut, line + cut + 2, n - cut - 2);
		len = n - 2;
		break;
	}
	case 2: /* a bad checksum */
		len = text_frame(1001 + 2 * i, buf, cap, true);
		break;
	default: /* an overlong line of valid-looking pairs */
		while (len < 1500)
			len += (size_t)snprintf(buf + len, cap - len, "X%u=1,", (unsigned)len);
		buf[len++] = '\r';
		buf[len++] = '\n';
		break;
	}
	ck_assert(len < cap);
	return len;
}

/* Binary junk, always ended by a delimiter (a node resynchronises the same way). */
static size_t bin_garbage(unsigned i, uint64_t *rng, uint8_t *buf)
{
	size_t len = 0;

	switch (i % 4) {
	case 0: /* random non-zero bytes with stray delimiters */
		for (unsigned k = 1 + fx_rand_below(rng, 80); k > 0; k--)
			buf[len++] = fx_rand_below(rng, 16) ? (uint8_t)(1 + fx_rand_below(rng, 255))
							    : 0;
		break;
	case 1: { /* the first part of a frame, then the line lost the rest */
		uint8_t f[SGW_MAX_WIRE];
		size_t n = bin_frame(5000 + i, f);

		len = 1 + fx_rand_below(rng, (uint32_t)n - 3);
		memcpy(buf, f, len);
		break;
	}
	case 2: { /* a whole frame with one payload byte changed after the CRC */
		uint8_t f[SGW_MAX_WIRE], pkt[SGW_MAX_PACKET];
		size_t n = bin_frame(5000 + i, f);
		int k = sgw_cobs_decode(f, n - 1, pkt, sizeof(pkt));

		ck_assert_int_gt(k, 8);
		pkt[SGW_HEADER_SIZE + 1 + fx_rand_below(rng, (uint32_t)k - SGW_HEADER_SIZE - 3)] ^=
			0x40;
		k = sgw_cobs_encode(pkt, (size_t)k, buf, SGW_MAX_ENCODED);
		ck_assert_int_gt(k, 0);
		len = (size_t)k;
		break;
	}
	default: /* an overlong run of non-zero bytes */
		for (unsigned k = 0; k < 600; k++)
			buf[len++] = (uint8_t)(1 + fx_rand_below(rng, 255));
		break;
	}
	buf[len++] = 0x00;
	return len;
}

START_TEST(spine_garbage)
{
	static char tbuf[1 << 16];
	static uint8_t bbuf[1 << 16];
	uint64_t rng = 0x5eed0002;
	struct check c;
	size_t tl = 0, bl = 0;

	check_init(&c, N_GARBAGE);
	start_all("ca.crt", NULL, true);
	bl = bin_hello(bbuf);
	for (unsigned i = 0; i < N_GARBAGE; i++) {
		tl += text_garbage(i, &rng, tbuf + tl, sizeof(tbuf) - tl);
		tl += text_frame(i, tbuf + tl, sizeof(tbuf) - tl, false);
		bl += bin_garbage(i, &rng, bbuf + bl);
		bl += bin_frame(i, bbuf + bl);
		if (i % 20 == 19) {
			fx_pty_write_chunked(&txt, tbuf, tl, &rng);
			fx_pty_write_chunked(&bin, bbuf, bl, &rng);
			tl = bl = 0;
		}
	}
	expect_count(2 * N_GARBAGE, 20000);
	check_all(&c);
	ck_assert_uint_eq(c.port[P_TXT].n, N_GARBAGE);
	ck_assert_uint_eq(c.port[P_BIN].n, N_GARBAGE);
	check_port_order(&c, P_TXT, 0, N_GARBAGE);
	check_port_order(&c, P_BIN, 0, N_GARBAGE);
	check_free(&c);
}
END_TEST

/* ---- 3. replug: delivery resumes without a restart ---- */

#define N_REPLUG 100

static void write_text_range(unsigned from, unsigned to, uint64_t *rng)
{
	char buf[256];

	for (unsigned i = from; i < to; i++) {
		size_t n = text_frame(i, buf, sizeof(buf), false);

		fx_pty_write_chunked(&txt, buf, n, rng);
		if (i % 10 == 9)
			fx_sleep_ms(5);
	}
}

START_TEST(spine_replug)
{
	static const char *const gone_words[] = { "went away", "absent", "unplugged", "hung up",
						  "gone", "lost", "closed" };
	uint64_t rng = 0x5eed0003;
	struct check c;
	bool gone = false;
	pid_t pid;

	check_init(&c, 2 * N_REPLUG);
	start_all("ca.crt", NULL, true);
	pid = fx_daemon_pid();
	write_text_range(0, N_REPLUG, &rng);
	/* Mid-stream: some of the frames above may still be unread when the device goes. */
	fx_pty_replug(&txt);
	if (!fx_pty_wait_opened(&txt, pid, 15000)) {
		fx_dump_logs();
		ck_abort_msg("sensorgwd did not reopen the replugged port");
	}
	write_text_range(N_REPLUG, 2 * N_REPLUG, &rng);

	/* Every frame written after the replug arrives; none twice. */
	{
		int64_t end = fx_mono_ms() + 15000 * fx_timeout_scale();
		unsigned after = 0;

		while (fx_mono_ms() < end) {
			size_t n = fx_subscriber_count();

			if (n >= N_REPLUG) {
				struct check tmp;

				check_init(&tmp, 2 * N_REPLUG);
				tmp.t0 = c.t0;
				check_all(&tmp);
				after = 0;
				for (unsigned i = N_REPLUG; i < 2 * N_REPLUG; i++)
					after += tmp.port[P_TXT].got[i];
				check_free(&tmp);
				if (after == N_REPLUG)
					break;
			}
			fx_sleep_ms(100);
		}
		if (after != N_REPLUG)
			fx_dump_logs();
		ck_assert_uint_eq(after, N_REPLUG);
	}
	fx_sleep_ms(300);
	check_all(&c);
	check_port_order(&c, P_TXT, 0, 2 * N_REPLUG);
	ck_assert_msg(c.port[P_TXT].n > N_REPLUG, "no frame from before the replug arrived");
	ck_assert_uint_eq(c.port[P_BIN].n, 0);
	ck_assert(fx_daemon_running());
	ck_assert_int_eq(fx_daemon_pid(), pid);

	for (size_t i = 0; i < sizeof(gone_words) / sizeof(gone_words[0]) && !gone; i++) {
		const char *const needles[] = { "txt", gone_words[i], NULL };

		gone = fx_daemon_log_line_has(needles);
	}
	ck_assert_msg(gone, "the daemon log does not say that port txt went away");
	{
		/* One "opened" line for the first open and one after the replug. */
		char *log = fx_read_file(fx_path("daemon.log"));
		unsigned opened = 0;
		char *save = NULL;

		ck_assert(log);
		for (char *l = strtok_r(log, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
			if (strstr(l, "txt") && strcasestr(l, "open") && !strcasestr(l, "cannot"))
				opened++;
		free(log);
		ck_assert_msg(opened >= 2, "the daemon log does not show port txt reopening");
	}
	check_free(&c);
}
END_TEST

/* ---- 4. the wrong CA: nothing delivered, a clear log line, still running ---- */

START_TEST(spine_wrong_ca)
{
	const char *const needles[] = { "TLS", "local", NULL };
	uint64_t rng = 0x5eed0004;
	char buf[256];
	int before;

	start_all("wrongca.crt", NULL, false);
	before = fx_broker_log_count("New connection from 127.0.0.1");
	for (unsigned i = 0; i < 20; i++) {
		size_t n = text_frame(i, buf, sizeof(buf), false);

		fx_pty_write_chunked(&txt, buf, n, &rng);
	}
	ck_assert_msg(fx_daemon_wait_log_line(needles, 5000),
		      "no log line names TLS and the uplink 'local'");
	/* reconnect_min_ms = 200, max 2000: three seconds are enough for several attempts. */
	for (int64_t end = fx_mono_ms() + 3000 * fx_timeout_scale();
	     fx_broker_log_count("New connection from 127.0.0.1") - before < 3 && fx_mono_ms() < end;)
		fx_sleep_ms(50);
	ck_assert_msg(fx_daemon_running(), "sensorgwd exited on a TLS failure");
	ck_assert_uint_eq(fx_subscriber_count(), 0);
	ck_assert_int_eq(fx_broker_log_count("u'" FX_MQTT_USER "'"), 0);
	ck_assert_msg(fx_broker_log_count("New connection from 127.0.0.1") - before >= 2,
		      "the daemon did not retry (%d connections)",
		      fx_broker_log_count("New connection from 127.0.0.1") - before);
}
END_TEST

/* ---- 5. SIGTERM while frames flow: exit 0 within 2 s ---- */

START_TEST(spine_sigterm)
{
	char extra[512];
	int64_t ms = 0;
	int st;

	snprintf(extra, sizeof(extra), "\n[port sim]\npath = %s\nframing = text\n",
		 fx_path("tty-sim"));
	start_all("ca.crt", extra, true);
	{
		const char *const args[] = { "--link", fx_path("tty-sim"), "--rate", "200",
					     "--seed", "5", NULL };

		fx_sim_start(args);
	}
	ck_assert_msg(fx_subscriber_wait_count(50, 10000), "frames are not flowing (%zu)",
		      fx_subscriber_count());
	st = fx_daemon_stop(&ms);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status 0x%x", st);
	ck_assert_msg(ms < 2000, "sensorgwd took %lld ms to exit", (long long)ms);
}
END_TEST

/* ---- 6. --check-config ---- */

static int check_config(const char *path, char **err)
{
	const char *const argv[] = { fx_env("GW_SENSORGWD"), "--check-config", "-c", path, NULL };

	return fx_run(argv, NULL, err, 10000);
}

static unsigned line_of(const char *text, const char *needle)
{
	const char *p = strstr(text, needle);
	unsigned line = 1;

	ck_assert(p);
	for (const char *q = text; q < p; q++)
		line += *q == '\n';
	return line;
}

START_TEST(spine_check_config)
{
	char repo[4096], path[128], *err = NULL, *conf, *bad, *save = NULL;
	unsigned want[2], got[2], n = 0;
	size_t plen;
	int st;

	/* fx_path() rotates through a few buffers: keep a copy for the whole test. */
	snprintf(path, sizeof(path), "%s", fx_path("check.conf"));
	plen = strlen(path);
	snprintf(repo, sizeof(repo), "%s/conf/sensorgw.conf", fx_env("GW_SOURCE_ROOT"));
	st = check_config(repo, &err);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status 0x%x\n%s", repo, st, err);
	free(err);

	/* The test's own configuration is valid as written... */
	fx_make_certs();
	fx_broker_start();
	{
		char ca[128];

		snprintf(ca, sizeof(ca), "%s/broker/ca.crt", fx_dir());
		conf = fx_config(ca, NULL);
	}
	fx_write_file(path, conf, 0600);
	st = check_config(path, &err);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "valid config: 0x%x\n%s", st, err);
	free(err);

	/* ...and with an unknown key and a bad baud rate in [port bin] it is not. */
	{
		const char *anchor = "framing = binary\n";
		char *at = strstr(conf, anchor);

		ck_assert(at);
		at += strlen(anchor);
		ck_assert(asprintf(&bad, "%.*sbaudrate = 9600\nbaud = 12345\n%s", (int)(at - conf),
				   conf, at) > 0);
	}
	want[0] = line_of(bad, "baudrate = 9600");
	want[1] = line_of(bad, "baud = 12345");
	fx_write_file(path, bad, 0600);
	st = check_config(path, &err);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 78, "bad config: status 0x%x\n%s", st,
		      err);
	for (char *l = strtok_r(err, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (strncmp(l, path, plen) || l[plen] != ':')
			continue;
		ck_assert_msg(n < 2, "more than two problems reported:\n%s", l);
		got[n++] = (unsigned)strtoul(l + plen + 1, NULL, 10);
		ck_assert_msg(strchr(l + plen + 1, ':'), "no FILE:LINE: message form: %s", l);
	}
	ck_assert_uint_eq(n, 2);
	ck_assert_msg((got[0] == want[0] && got[1] == want[1]) ||
			      (got[0] == want[1] && got[1] == want[0]),
		      "lines %u and %u reported, %u and %u expected", got[0], got[1], want[0],
		      want[1]);
	free(err);
	free(bad);
	free(conf);
}
END_TEST

/* ---- 7. the README demo: sensorgw-sim feeding the daemon ---- */

START_TEST(spine_sim_demo)
{
	static const char *const keys[] = { "MQ2", "MQ135", "MQ4", "MQ7", "DHT11_T", "DHT11_H" };
	char extra[512];
	struct fx_msg *m;
	size_t n;
	int64_t t0 = fx_now_ms();
	int st;

	snprintf(extra, sizeof(extra), "\n[port sim]\npath = %s\nframing = text\n",
		 fx_path("tty-sim"));
	start_all("ca.crt", extra, true);
	{
		const char *const args[] = { "--pty", "--link", fx_path("tty-sim"), "--rate", "50",
					     "--count", "100", NULL };

		fx_sim_start(args);
	}
	expect_count(100, 20000);
	st = fx_sim_wait(5000);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sensorgw-sim status 0x%x", st);

	m = fx_subscriber_messages(&n);
	ck_assert_uint_eq(n, 100);
	for (size_t i = 0; i < n; i++) {
		json_error_t err;
		json_t *o = json_loads(m[i].payload, 0, &err), *p;

		ck_assert_msg(o, "not JSON: %s", m[i].payload);
		ck_assert_str_eq(m[i].topic, "sensorgw/stm32-sim/telemetry");
		ck_assert_str_eq(json_string_value(json_object_get(o, "device")), "stm32-sim");
		ck_assert_str_eq(json_string_value(json_object_get(o, "node")), "sim");
		ck_assert_str_eq(json_string_value(json_object_get(o, "port")), "sim");
		ck_assert_msg(!json_object_get(o, "addr") && !json_object_get(o, "node_seq") &&
				      !json_object_get(o, "boot") && !json_object_get(o, "fw"),
			      "%s", m[i].payload);
		/* Nothing else was published in this run, so seq counts 1, 2, 3, ... */
		ck_assert_int_eq(json_integer_value(json_object_get(o, "seq")), (json_int_t)i + 1);
		ck_assert(json_integer_value(json_object_get(o, "ts")) >= t0);
		ck_assert(json_integer_value(json_object_get(o, "ts")) <= m[i].rx_ms);
		p = json_object_get(o, "params");
		ck_assert_msg(json_is_object(p) && json_object_size(p) == 6, "%s", m[i].payload);
		for (size_t k = 0; k < 6; k++) {
			json_t *v = json_object_get(p, keys[k]);

			ck_assert_msg(k == 4 ? json_is_real(v) : json_is_integer(v), "%s in %s",
				      keys[k], m[i].payload);
		}
		json_decref(o);
	}
	fx_msgs_free(m, n);
}
END_TEST

static void add(Suite *s, const char *name, const TTest *test)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test);
	suite_add_tcase(s, tc);
}

static Suite *spine_suite(void)
{
	Suite *s = suite_create("spine");

	add(s, "frames", spine_2000_frames);
	add(s, "garbage", spine_garbage);
	add(s, "replug", spine_replug);
	add(s, "wrong_ca", spine_wrong_ca);
	add(s, "sigterm", spine_sigterm);
	add(s, "check_config", spine_check_config);
	add(s, "sim_demo", spine_sim_demo);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(spine_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
