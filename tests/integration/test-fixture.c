/* SPDX-License-Identifier: MIT */
/*
 * Self-test of the integration fixtures, independent of sensorgwd: the broker with TLS and
 * passwords (reached by our subscriber and by mosquitto_pub), the certificates, pty replug,
 * the watchdog's cleanup after a crashed test, the simulator's output in both framings, and
 * the secret canary's search (which starts sensorgwd).
 */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "sgw_node.h"

static const char *ca_path(const char *name)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf), "%s/broker/%s", fx_dir(), name);
	return buf;
}

static int pub(const char *ca, const char *user, const char *password, char **err)
{
	char port[16];
	const char *const argv[] = { "/usr/bin/mosquitto_pub", "-h", "localhost", "-p", port,
		"--cafile", ca, "-u", user, "-P", password, "-q", "1", "-t",
		"sensorgw/fixture/telemetry", "-m", "{\"hello\":\"tls\"}", NULL };

	snprintf(port, sizeof(port), "%d", fx_broker_port());
	return fx_run(argv, NULL, err, 10000);
}

START_TEST(broker_tls_password)
{
	char *err = NULL, *text = NULL;
	struct fx_msg *m;
	size_t n;
	int st;

	fx_broker_start();
	fx_subscriber_start("sensorgw/#");

	/* The server certificate carries both names the daemon may use. */
	{
		const char *const argv[] = { "/usr/bin/openssl", "x509", "-noout", "-ext",
			"subjectAltName", "-in", ca_path("server.crt"), NULL };

		st = fx_run(argv, &text, NULL, 10000);
		ck_assert_int_eq(st, 0);
		ck_assert_msg(strstr(text, "DNS:localhost") && strstr(text, "IP Address:127.0.0.1"),
			      "SAN: %s", text);
		free(text);
	}

	st = pub(ca_path("ca.crt"), FX_MQTT_USER, fx_mqtt_password(), &err);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "mosquitto_pub: 0x%x %s", st, err);
	free(err);
	ck_assert(fx_subscriber_wait_count(1, 5000));
	m = fx_subscriber_messages(&n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(m[0].topic, "sensorgw/fixture/telemetry");
	ck_assert_str_eq(m[0].payload, "{\"hello\":\"tls\"}");
	fx_msgs_free(m, n);

	/* The unrelated CA is refused during the handshake, a wrong password by CONNACK 5. */
	st = pub(ca_path("wrongca.crt"), FX_MQTT_USER, fx_mqtt_password(), &err);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 0, "wrong CA accepted: %s", err);
	free(err);
	st = pub(ca_path("ca.crt"), FX_MQTT_USER, "not-the-password", &err);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 5, "wrong password: 0x%x %s", st, err);
	free(err);

	fx_sleep_ms(200);
	ck_assert_uint_eq(fx_subscriber_count(), 1);
	/* The daemon's password file is private. */
	{
		struct stat s;

		ck_assert(stat(fx_path("mqtt.pass"), &s) == 0);
		ck_assert_uint_eq(s.st_mode & 0777, 0600);
	}
}
END_TEST

static ssize_t read_some(int fd, char *buf, size_t cap, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, timeout_ms) <= 0)
		return -ETIMEDOUT;
	return read(fd, buf, cap);
}

START_TEST(pty_replug)
{
	struct fx_pty p;
	char buf[64], target[256];
	char old_slave[64];
	ssize_t n;
	int fd;

	fx_pty_new(&p, "tty-test");
	n = readlink(p.link, target, sizeof(target) - 1);
	ck_assert_int_gt(n, 0);
	target[n] = '\0';
	ck_assert_str_eq(target, p.slave);

	fd = open(p.link, O_RDWR | O_NOCTTY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert(fx_pty_wait_opened(&p, getpid(), 1000));
	fx_pty_write(&p, "one\n", 4);
	n = read_some(fd, buf, sizeof(buf), 2000);
	ck_assert_int_eq(n, 4);
	ck_assert(!memcmp(buf, "one\n", 4));

	snprintf(old_slave, sizeof(old_slave), "%s", p.slave);
	fx_pty_replug(&p);
	/* The reader of the old slave sees the device go: EOF or EIO, as on a USB unplug. */
	n = read_some(fd, buf, sizeof(buf), 2000);
	ck_assert_msg(n == 0 || (n < 0 && errno == EIO), "read after unplug: %zd (%s)", n,
		      strerror(errno));
	close(fd);
	ck_assert_uint_eq(p.generation, 1);
	n = readlink(p.link, target, sizeof(target) - 1);
	ck_assert_int_gt(n, 0);
	target[n] = '\0';
	ck_assert_str_eq(target, p.slave);
	ck_assert_str_ne(p.slave, old_slave);

	fd = open(p.link, O_RDWR | O_NOCTTY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert(fx_pty_wait_opened(&p, getpid(), 1000));
	fx_pty_write(&p, "two\n", 4);
	n = read_some(fd, buf, sizeof(buf), 2000);
	ck_assert_int_eq(n, 4);
	ck_assert(!memcmp(buf, "two\n", 4));
	close(fd);
}
END_TEST

/*
 * A test process that dies without its teardown (as a failed assertion in fork mode does)
 * must leave neither its directory nor its children behind.
 */
START_TEST(watchdog_cleans_up)
{
	int pfd[2];
	char line[4200] = "";
	pid_t child, sim = 0;
	int status;
	FILE *f;

	ck_assert(pipe(pfd) == 0);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		static const char *const args[] = { "--rate", "1", NULL };
		FILE *w = fdopen(pfd[1], "w");
		pid_t s;

		close(pfd[0]);
		fx_setup();
		s = fx_sim_start(args);
		fprintf(w, "%ld %s\n", (long)s, fx_dir());
		fclose(w);
		_exit(1);
	}
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	ck_assert(fgets(line, sizeof(line), f));
	fclose(f);
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	{
		char *dir = strchr(line, ' ');
		int64_t end = fx_mono_ms() + 5000;
		struct stat st;

		ck_assert(dir);
		*dir++ = '\0';
		dir[strcspn(dir, "\n")] = '\0';
		sim = (pid_t)strtol(line, NULL, 10);
		ck_assert_int_gt(sim, 0);
		while (stat(dir, &st) == 0 && fx_mono_ms() < end)
			fx_sleep_ms(20);
		ck_assert_msg(stat(dir, &st) < 0 && errno == ENOENT, "%s was left behind", dir);
	}
	/* The orphaned simulator was killed (a zombie until PID 1 reaps it is fine). */
	{
		char path[64], buf[256];
		int64_t end = fx_mono_ms() + 3000;
		bool dead = false;

		snprintf(path, sizeof(path), "/proc/%ld/stat", (long)sim);
		while (!dead && fx_mono_ms() < end) {
			FILE *s = fopen(path, "re");
			char *p;

			if (!s) {
				dead = true;
				break;
			}
			p = fgets(buf, sizeof(buf), s);
			fclose(s);
			p = p ? strrchr(buf, ')') : NULL;
			dead = !p || p[2] == 'Z' || p[2] == 'X';
			if (!dead)
				fx_sleep_ms(20);
		}
		ck_assert_msg(dead, "simulator %ld survived its test", (long)sim);
	}
}
END_TEST

/* Opens the simulator's --link once it exists; returns the fd. */
static int open_sim_link(const char *link)
{
	int64_t end = fx_mono_ms() + 5000;
	int fd;

	while ((fd = open(link, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK)) < 0) {
		ck_assert_msg(fx_mono_ms() < end, "%s did not appear", link);
		fx_sleep_ms(10);
	}
	return fd;
}

static size_t read_until_eof(int fd, char *buf, size_t cap, int timeout_ms)
{
	int64_t end = fx_mono_ms() + timeout_ms;
	size_t len = 0;

	while (len < cap && fx_mono_ms() < end) {
		ssize_t n = read_some(fd, buf + len, cap - len, 100);

		if (n == -ETIMEDOUT || (n < 0 && errno == EAGAIN))
			continue;
		if (n <= 0)
			break; /* the simulator exited: hangup */
		len += (size_t)n;
	}
	return len;
}

static unsigned hexnib(char c)
{
	return (unsigned)(c <= '9' ? c - '0' : c - 'A' + 10);
}

START_TEST(sim_text)
{
	static const char *const args[] = { "--link", NULL, "--rate", "200", "--count", "20",
		"--uid", "00112233445566778899aabb", "--addr", "3", "--seed", "9", NULL };
	const char *argv[sizeof(args) / sizeof(args[0])];
	static char buf[65536];
	char *log, *save = NULL;
	unsigned frames = 0, hellos = 0;
	size_t len;
	int fd, st;

	memcpy(argv, args, sizeof(args));
	argv[1] = fx_path("tty-sim");
	fx_sim_start(argv);
	fd = open_sim_link(fx_path("tty-sim"));
	len = read_until_eof(fd, buf, sizeof(buf) - 1, 10000);
	close(fd);
	buf[len] = '\0';
	st = fx_sim_wait(5000);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sim status 0x%x", st);

	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *star = strrchr(l, '*');
		unsigned x = 0;

		ck_assert_msg(l[strlen(l) - 1] == '\r', "no CR: %s", l);
		ck_assert_msg(star && strlen(star) == 4, "no checksum: %s", l);
		for (char *p = l; p < star; p++)
			x ^= (unsigned char)*p;
		ck_assert_uint_eq(x, hexnib(star[1]) << 4 | hexnib(star[2]));
		ck_assert_msg(!strncmp(l, "@3 ", 3), "no address: %s", l);
		if (!strncmp(l + 3, "hello ", 6)) {
			ck_assert_msg(strstr(l, "uid=00112233445566778899aabb fw=sim-"), "%s", l);
			ck_assert_uint_eq(frames, 0);
			hellos++;
			continue;
		}
		ck_assert_msg(strstr(l, "MQ2=") && strstr(l, ",MQ135=") && strstr(l, ",MQ4=") &&
				      strstr(l, ",MQ7=") && strstr(l, ",DHT11_T=") &&
				      strstr(l, ",DHT11_H="),
			      "%s", l);
		frames++;
	}
	ck_assert_uint_eq(hellos, 1);
	ck_assert_uint_eq(frames, 20);

	log = fx_read_file(fx_path("sim.log"));
	ck_assert(log);
	ck_assert_msg(strstr(log, "frames sent 20, noise bursts 0, corrupted frames 0"), "%s", log);
	free(log);
	ck_assert_msg(access(fx_path("tty-sim"), F_OK) < 0, "the link was not removed");
	log = fx_read_file(fx_path("sim.out"));
	ck_assert_msg(log && !strncmp(log, "PTY /dev/pts/", 13), "stdout: %s", log);
	free(log);
}
END_TEST

static int send_command(int fd, uint8_t addr, uint16_t seq, uint16_t cmd_id, uint8_t kind,
			const char *name, bool led)
{
	struct sgw_builder b;
	uint8_t wire[SGW_MAX_WIRE];
	int n;

	sgw_begin(&b, SGW_TYPE_COMMAND, addr, seq);
	sgw_put_u16(&b, cmd_id);
	sgw_put_u8(&b, kind);
	sgw_put_str8(&b, name, SGW_MAX_NAME);
	if (kind == SGW_CMD_PROPERTY_SET) {
		sgw_put_bool(&b, "led", led);
		sgw_put_i32(&b, "report_interval_ms", 20);
	}
	n = sgw_finish(&b, wire, sizeof(wire));
	ck_assert_int_gt(n, 0);
	return (int)write(fd, wire, (size_t)n) == n ? 0 : -1;
}

START_TEST(sim_binary_commands)
{
	const char *const args[] = { "--link", fx_path("tty-sim"), "--framing", "binary", "--rate",
		"100", "--count", "40", "--nodes", "2", "--addr", "10", "--seed", "4", NULL };
	struct sgw_rx rx;
	unsigned hellos = 0, telemetry[2] = { 0, 0 }, replies = 0;
	uint16_t next_seq[2] = { 0, 0 };
	int64_t end;
	bool sent = false;
	int fd, st;

	fx_sim_start(args);
	fd = open_sim_link(fx_path("tty-sim"));
	sgw_rx_init(&rx);
	end = fx_mono_ms() + 10000;
	while (fx_mono_ms() < end) {
		uint8_t buf[512];
		ssize_t n = read_some(fd, (char *)buf, sizeof(buf), 100);

		if (n == -ETIMEDOUT || (n < 0 && errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			struct sgw_packet pkt;
			struct sgw_reader r;
			int k = sgw_rx_byte(&rx, buf[i], &pkt);
			unsigned node;

			ck_assert_msg(k >= 0, "bad frame from the simulator: %d", k);
			if (k == 0)
				continue;
			ck_assert_msg(pkt.addr == 10 || pkt.addr == 11, "addr %u", pkt.addr);
			node = pkt.addr - 10u;
			ck_assert_uint_eq(pkt.seq, next_seq[node]);
			next_seq[node]++;
			sgw_reader_init(&r, pkt.payload, pkt.payload_len);
			if (pkt.type == SGW_TYPE_HELLO) {
				const char *fw;
				size_t fw_len;

				r.off = SGW_UID_SIZE;
				(void)sgw_get_u32(&r);
				sgw_get_str8(&r, &fw, &fw_len, 31);
				ck_assert(fw_len > 4 && !memcmp(fw, "sim-", 4));
				ck_assert_uint_eq(telemetry[node], 0);
				hellos++;
			} else if (pkt.type == SGW_TYPE_TELEMETRY) {
				static const char *const keys[] = { "MQ2", "MQ135", "MQ4", "MQ7",
					"DHT11_T", "DHT11_H" };
				struct sgw_field f;
				size_t nf = 0;

				while (sgw_get_field(&r, &f) > 0) {
					ck_assert(nf < 6);
					ck_assert_uint_eq(f.key_len, strlen(keys[nf]));
					ck_assert(!memcmp(f.key, keys[nf], f.key_len));
					ck_assert_uint_eq(f.vtype,
							  nf == 4 ? SGW_VT_F32 : SGW_VT_I32);
					nf++;
				}
				ck_assert_uint_eq(nf, 6);
				telemetry[node]++;
			} else if (pkt.type == SGW_TYPE_COMMAND_REPLY) {
				uint16_t id = sgw_get_u16(&r), code = sgw_get_u16(&r);
				struct sgw_field f;
				unsigned nf = 0;

				while (sgw_get_field(&r, &f) > 0)
					nf++;
				if (id == 77) {
					ck_assert_uint_eq(pkt.addr, 11);
					ck_assert_uint_eq(code, 200);
					ck_assert_uint_eq(nf, 2);
				} else {
					ck_assert_uint_eq(id, 78);
					ck_assert_uint_eq(code, 404);
					ck_assert_uint_eq(nf, 0);
				}
				replies++;
			} else {
				ck_abort_msg("unexpected packet type %u", pkt.type);
			}
		}
		if (!sent && telemetry[0] + telemetry[1] >= 5) {
			ck_assert(send_command(fd, 11, 1, 77, SGW_CMD_PROPERTY_SET, "", true) == 0);
			ck_assert(send_command(fd, 10, 2, 78, SGW_CMD_SERVICE, "nosuch",
					       false) == 0);
			sent = true;
		}
	}
	close(fd);
	st = fx_sim_wait(5000);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sim status 0x%x", st);
	ck_assert_uint_eq(hellos, 2);
	ck_assert_uint_eq(telemetry[0] + telemetry[1], 40);
	ck_assert_uint_eq(replies, 2);
	{
		char *log = fx_read_file(fx_path("sim.log"));

		ck_assert(log);
		ck_assert_msg(strstr(log, "node=11 id=77 property-set") &&
				      strstr(log, "node=10 id=78 service 'nosuch' -> 404"),
			      "%s", log);
		free(log);
	}
}
END_TEST

/*
 * The secret canary's search can fail (fixture.h, "secret canary"): with a canary (GW_CANARY,
 * or one forced here), a daemon run with the canary-bearing MQTT password leaves nothing the
 * fixture finds; then the canary planted in the daemon's output, in a state file (as text and
 * hex-encoded), in a process's argv and environment, and a core file are each reported with
 * their place, and a credential-store file that is not 0600 is a problem.
 */
START_TEST(canary_scanner)
{
	char where[PATH_MAX + 256], hex[2 * 64 + 1];
	struct stat log_st;
	const char *c;
	char *conf, *text;
	size_t n;
	pid_t pid;
	int st, fd;

	fx_canary_force("CANARYfixtureSelfTest42");
	c = fx_canary();
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(strstr(fx_secret("aliyun-product"), c));
	ck_assert_ptr_nonnull(strstr(fx_secret("tencent-psk"), c));
	ck_assert_uint_eq(strlen(fx_secret("tencent-psk")) % 4, 0);
	ck_assert_str_ne(fx_secret("aliyun-product"), fx_secret("aliyun-product-wrong"));
	fx_broker_start();
	ck_assert_ptr_nonnull(strstr(fx_mqtt_password(), c));
	conf = fx_config(fx_path("broker/ca.crt"), NULL);
	fx_daemon_start(conf);
	free(conf);
	ck_assert_msg(fx_daemon_wait_connected(20000), "no login with the canary password");
	ck_assert(fx_daemon_wait_started(20000));
	st = fx_daemon_stop(NULL);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status 0x%x", st);
	n = fx_canary_forget_hits(where, sizeof(where));
	ck_assert_msg(n == 0, "a clean run: %zu hits, in %s", n, where);

	/* the daemon's output (the plant taken out again afterwards) */
	fd = open(fx_path("daemon.log"), O_WRONLY | O_APPEND | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &log_st), 0);
	ck_assert(dprintf(fd, "debug: planted password=%s\n", c) > 0);
	ck_assert_uint_eq(fx_canary_scan(), 1);
	ck_assert_uint_eq(fx_canary_forget_hits(where, sizeof(where)), 1);
	ck_assert_msg(strstr(where, "daemon.log"), "reported in %s", where);
	ck_assert_int_eq(ftruncate(fd, log_st.st_size), 0);
	close(fd);

	/* a state file, as text and as hex */
	text = NULL;
	ck_assert_int_gt(asprintf(&text, "{\"note\":\"x%sy\"}", c), 0);
	fx_write_file(fx_path("state/planted.json"), text, 0600);
	free(text);
	for (size_t i = 0; c[i]; i++)
		snprintf(hex + 2 * i, 3, "%02x", (unsigned char)c[i]);
	fx_write_file(fx_path("state/spool/planted.dump"), hex, 0600);
	ck_assert_uint_eq(fx_canary_scan(), 2);
	ck_assert_uint_eq(fx_canary_forget_hits(where, sizeof(where)), 2);
	ck_assert_msg(strstr(where, "/state/"), "reported in %s", where);
	ck_assert_int_eq(unlink(fx_path("state/planted.json")), 0);
	ck_assert_int_eq(unlink(fx_path("state/spool/planted.dump")), 0);

	/* a process's argv and environment */
	{
		const char *const argv[] = { "/bin/sh", "-c", "sleep 30; :", c, NULL };
		int64_t end = fx_mono_ms() + 10000;
		char path[64];
		bool execd = false;

		ck_assert_int_eq(setenv("PLANTED_SECRET", c, 1), 0);
		pid = fx_spawn(argv, "planted.log");
		ck_assert_int_eq(unsetenv("PLANTED_SECRET"), 0);
		snprintf(path, sizeof(path), "/proc/%ld/environ", (long)pid);
		while (!execd && fx_mono_ms() < end) {
			char *env = fx_read_file(path);

			/* after the exec: the environment block is the new one */
			for (size_t i = 0; env && !execd && env[i]; i += strlen(env + i) + 1)
				execd = strncmp(env + i, "PLANTED_SECRET=", 15) == 0;
			free(env);
			if (!execd)
				fx_sleep_ms(10);
		}
		ck_assert(execd);
		fx_canary_scan_proc(pid);
		fx_child_stop(pid);
		ck_assert_uint_eq(fx_canary_forget_hits(where, sizeof(where)), 2);
		ck_assert_msg(strstr(where, "/environ"), "reported in %s", where);
	}

	/* a core file */
	fx_write_file(fx_path("core"), "", 0600);
	ck_assert_uint_eq(fx_canary_scan(), 1);
	ck_assert_uint_eq(fx_canary_forget_hits(where, sizeof(where)), 1);
	ck_assert_msg(strstr(where, "/core"), "reported in %s", where);
	ck_assert_int_eq(unlink(fx_path("core")), 0);

	/* a credential-store file is not searched, but must be 0600 */
	ck_assert_int_eq(mkdir(fx_path("state/credentials"), 0700), 0);
	ck_assert_int_eq(mkdir(fx_path("state/credentials/ali"), 0700), 0);
	text = NULL;
	ck_assert_int_gt(asprintf(&text, "{\"deviceSecret\":\"%s\"}", c), 0);
	fx_write_file(fx_path("state/credentials/ali/dev.json"), text, 0600);
	ck_assert_uint_eq(fx_canary_scan(), 0);
	ck_assert_uint_eq(fx_canary_forget_hits(where, sizeof(where)), 0);
	ck_assert_str_eq(where, "");
	fx_write_file(fx_path("state/credentials/ali/dev.json"), text, 0644);
	free(text);
	ck_assert_uint_eq(fx_canary_scan(), 0);
	ck_assert_uint_eq(fx_canary_forget_hits(where, sizeof(where)), 0);
	ck_assert_msg(strstr(where, "dev.json") && strstr(where, "0644"), "problem: %s", where);
	ck_assert_int_eq(unlink(fx_path("state/credentials/ali/dev.json")), 0);
}
END_TEST

static Suite *fixture_suite(void)
{
	Suite *s = suite_create("fixture");
	TCase *tc = tcase_create("fixture");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, broker_tls_password);
	tcase_add_test(tc, pty_replug);
	tcase_add_test(tc, watchdog_cleans_up);
	tcase_add_test(tc, sim_text);
	tcase_add_test(tc, sim_binary_commands);
	tcase_add_test(tc, canary_scanner);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(fixture_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
