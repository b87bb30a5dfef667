/* SPDX-License-Identifier: MIT */
/* Integration test fixtures; see fixture.h. */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <mosquitto.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "sgw_node.h"

#define MOSQUITTO_BIN "/usr/sbin/mosquitto"
#define MOSQUITTO_PASSWD_BIN "/usr/bin/mosquitto_passwd"
#define OPENSSL_BIN "/usr/bin/openssl"
/* mosquitto's stdout is block-buffered into a file; the tests read its log while it runs. */
#define STDBUF_BIN "/usr/bin/stdbuf"
#define FX_MAX_PTYS 8
#define FX_MAX_EXTRA 8

#define N_WRAPPER_WORDS 32 /* GW_DAEMON_WRAPPER words; argv of fx_daemon_start() has room */

static struct {
	char dir[64]; /* /tmp/sensorgw-it-XXXXXX */
	int wd_fd; /* write end of the watchdog pipe */
	pid_t wd_pid;

	bool certs;
	pid_t broker;
	int port;
	int obs_port; /* second listener for the observer, 0 when none */
	char broker_conf[PATH_MAX];
	char password[128];
	char observer_password[33];

	pid_t daemon;
	pid_t sim;
	pid_t extra[FX_MAX_EXTRA];

	struct fx_pty *ptys[FX_MAX_PTYS];

	struct mosquitto *mosq;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool connected;
	int connack;
	bool subscribed;
	struct fx_msg *msgs;
	size_t n_msgs, cap_msgs;
} fx = { .wd_fd = -1 };

/* the secret canary's hooks (at the end of this file) */
static void canary_reset(void);
static void canary_daemon_started(const char *config);
static void canary_before_stop(pid_t pid, bool ask_status);
static bool canary_verdict(char *msg, size_t size);

/* ---- small helpers ---- */

int64_t fx_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t fx_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t fx_wait_count(size_t (*fn)(void), size_t n, int timeout_ms)
{
	int64_t end = fx_mono_ms() + (int64_t)timeout_ms * fx_timeout_scale();
	size_t v;

	while ((v = fn()) < n && fx_mono_ms() < end)
		fx_sleep_ms(200);
	return v;
}

void fx_sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

uint64_t fx_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint32_t fx_rand_below(uint64_t *s, uint32_t n)
{
	return n ? (uint32_t)(fx_rand(s) % n) : 0;
}

const char *fx_dir(void)
{
	return fx.dir;
}

const char *fx_path(const char *name)
{
	static char bufs[8][PATH_MAX];
	static unsigned next;
	char *b = bufs[next++ % 8];

	snprintf(b, PATH_MAX, "%s/%s", fx.dir, name);
	return b;
}

int fx_timeout_scale(void)
{
	const char *v = getenv("GW_TIMEOUT_SCALE");
	char *end;
	long n;

	if (!v || !*v)
		return 1;
	errno = 0;
	n = strtol(v, &end, 10);
	ck_assert_msg(!errno && !*end && n >= 1 && n <= 100,
		      "GW_TIMEOUT_SCALE=%s: want an integer from 1 to 100", v);
	return (int)n;
}

/* A deadline for a wait on the daemon, stretched by GW_TIMEOUT_SCALE. */
static int daemon_ms(int timeout_ms)
{
	return timeout_ms * fx_timeout_scale();
}

const char *fx_env(const char *name)
{
	const char *v = getenv(name);

	ck_assert_msg(v && *v, "environment variable %s is not set (run the tests through meson)",
		      name);
	return v;
}

void fx_write_file(const char *path, const char *text, unsigned mode)
{
	size_t len = strlen(text);
	int fd;

	(void)unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
	ck_assert_msg(fd >= 0, "cannot create %s: %s", path, strerror(errno));
	ck_assert_msg(fchmod(fd, (mode_t)mode) == 0, "chmod %s: %s", path, strerror(errno));
	while (len > 0) {
		ssize_t n = write(fd, text, len);

		ck_assert_msg(n > 0, "write %s: %s", path, strerror(errno));
		text += n;
		len -= (size_t)n;
	}
	close(fd);
}

void fx_write_secret(const char *path, const char *secret)
{
	char *text = NULL;

	ck_assert_int_gt(asprintf(&text, "%s\n", secret), 0);
	fx_write_file(path, text, 0600);
	free(text);
}

const char *fx_strf(const char *fmt, ...)
{
	static char bufs[8][8192];
	static unsigned next;
	char *b = bufs[next++ % 8];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b, sizeof(bufs[0]), fmt, ap);
	va_end(ap);
	ck_assert_msg(n >= 0 && (size_t)n < sizeof(bufs[0]), "fx_strf: %d bytes", n);
	return b;
}

char *fx_read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (!f)
		return NULL;
	for (;;) {
		size_t n;

		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap + 1);
			ck_assert(buf);
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

static void random_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t raw[64];

	ck_assert(nbytes <= sizeof(raw));
	ck_assert(getrandom(raw, nbytes, 0) == (ssize_t)nbytes);
	for (size_t i = 0; i < nbytes; i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 0xf];
	}
	out[2 * nbytes] = '\0';
}

/* ---- watchdog ---- */

static int rm_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	(void)remove(path);
	return 0;
}

static void rm_rf(const char *dir)
{
	(void)nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A killed child of the dead test process is a zombie until PID 1 reaps it (slowly); it holds
 * no files open any more, which is all the cleanup needs. */
static bool pid_gone_or_zombie(pid_t pid)
{
	char path[64], buf[256];
	FILE *f;
	char *p;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return true;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!p)
		return true;
	p = strrchr(buf, ')');
	return !p || p[1] == '\0' || p[2] == 'Z' || p[2] == 'X';
}

/* The last max_lines lines of path on stderr, leaving out libmosquitto's debug lines (one or
 * more per MQTT packet at --log-level debug, they would hide everything else). */
static void dump_tail(const char *path, size_t max_lines)
{
	char *text = fx_read_file(path);
	size_t lines = 0, skipped = 0;
	char *start, *end;

	if (!text)
		return;
	end = text + strlen(text);
	start = end;
	while (start > text && lines < max_lines) {
		char *line = start - 1;

		while (line > text && line[-1] != '\n')
			line--;
		if (memmem(line, (size_t)(start - line), ": libmosquitto: ", 16)) {
			memmove(line, start, (size_t)(end - start) + 1);
			end -= start - line;
			skipped++;
		} else {
			lines++;
		}
		start = line;
	}
	fprintf(stderr, "----- %s (last %zu lines, %zu libmosquitto lines left out) -----\n%s\n"
		"----- end -----\n", path, lines, skipped, start);
	free(text);
}

/*
 * The watchdog lives in its own session, so Check's kill of the test's process group spares
 * it. It learns the children's pids over a pipe; when the pipe reaches EOF without the "D"
 * (done) line, the test process died early: it kills the children, shows their logs and
 * removes the directory.
 */
static void __attribute__((noreturn)) watchdog_main(int rfd)
{
	pid_t pids[64];
	size_t n = 0;
	bool done = false;
	char line[64];
	FILE *f;

	setsid();
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	f = fdopen(rfd, "r");
	if (!f)
		_exit(1);
	while (fgets(line, sizeof(line), f)) {
		long pid = strtol(line + 1, NULL, 10);

		if (line[0] == 'P' && n < sizeof(pids) / sizeof(pids[0])) {
			pids[n++] = (pid_t)pid;
		} else if (line[0] == 'U') {
			for (size_t i = 0; i < n; i++)
				if (pids[i] == (pid_t)pid)
					pids[i--] = pids[--n];
		} else if (line[0] == 'D') {
			done = true;
		}
	}
	if (!done) {
		int64_t end = fx_mono_ms() + 3000;

		for (size_t i = 0; i < n; i++)
			kill(pids[i], SIGKILL);
		for (size_t i = 0; i < n; i++)
			while (!pid_gone_or_zombie(pids[i]) && fx_mono_ms() < end)
				fx_sleep_ms(10);
		fprintf(stderr, "fixture watchdog: the test process ended early; logs follow\n");
		dump_tail(fx_path("daemon.log"), 80);
		dump_tail(fx_path("sim.log"), 20);
		dump_tail(fx_path("broker.log"), 40);
		if (!getenv("GW_KEEP_TMP"))
			rm_rf(fx.dir);
		else
			fprintf(stderr, "fixture watchdog: kept %s\n", fx.dir);
	}
	_exit(0);
}

static void wd_send(char kind, pid_t pid)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%c%ld\n", kind, (long)pid);

	if (fx.wd_fd >= 0)
		ck_assert(write(fx.wd_fd, buf, (size_t)n) == n);
}

/* ---- processes ---- */

/* fork + exec with stdin from /dev/null and the given stdout/stderr (-1: inherit). Only
 * async-signal-safe calls run between fork and exec: the subscriber thread may be running. */
static pid_t spawn(const char *const argv[], int out_fd, int err_fd)
{
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pid_t pid;

	ck_assert(devnull >= 0);
	ck_assert_msg(access(argv[0], X_OK) == 0, "%s is not executable: %s", argv[0],
		      strerror(errno));
	pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		static const char msg[] = "fixture: exec failed\n";

		dup2(devnull, STDIN_FILENO);
		if (out_fd >= 0)
			dup2(out_fd, STDOUT_FILENO);
		if (err_fd >= 0)
			dup2(err_fd, STDERR_FILENO);
		/* Nothing of the test's (Check's temp file, the subscriber's sockets) reaches the
		 * daemon: a real service starts with 0..2 only, and valgrind's fd check then sees
		 * the daemon's own descriptors alone. */
		close_range(3, ~0U, 0);
		execv(argv[0], (char *const *)argv);
		(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
		_exit(127);
	}
	close(devnull);
	wd_send('P', pid);
	return pid;
}

static int open_log(const char *name)
{
	int fd = open(fx_path(name), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	ck_assert_msg(fd >= 0, "cannot open %s: %s", fx_path(name), strerror(errno));
	return fd;
}

/* Waits for pid until the deadline; returns true and the status when it exited. */
static bool wait_exit(pid_t pid, int timeout_ms, int *status)
{
	int64_t end = fx_mono_ms() + timeout_ms;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid) {
			wd_send('U', pid);
			return true;
		}
		ck_assert_msg(r == 0 || errno == EINTR, "waitpid %ld: %s", (long)pid,
			      strerror(errno));
		if (fx_mono_ms() >= end)
			return false;
		fx_sleep_ms(5);
	}
}

/* SIGTERM, then SIGKILL after timeout_ms. */
static int stop_child(pid_t *pid, int timeout_ms)
{
	int status = 0;

	if (*pid <= 0)
		return 0;
	kill(*pid, SIGTERM);
	if (!wait_exit(*pid, timeout_ms, &status)) {
		kill(*pid, SIGKILL);
		ck_assert(wait_exit(*pid, 5000, &status));
	}
	*pid = 0;
	return status;
}

static void drain_fd(int fd, char **buf, size_t *len)
{
	char chunk[4096];
	ssize_t n = read(fd, chunk, sizeof(chunk));

	if (n <= 0)
		return;
	*buf = realloc(*buf, *len + (size_t)n + 1);
	ck_assert(*buf);
	memcpy(*buf + *len, chunk, (size_t)n);
	*len += (size_t)n;
	(*buf)[*len] = '\0';
}

int fx_run(const char *const argv[], char **out, char **err, int timeout_ms)
{
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 };
	char *ob = NULL, *eb = NULL;
	size_t ol = 0, el = 0;
	int64_t end = fx_mono_ms() + timeout_ms;
	int status = 0;
	pid_t pid;

	if (out)
		ck_assert(pipe2(po, O_CLOEXEC) == 0);
	if (err)
		ck_assert(pipe2(pe, O_CLOEXEC) == 0);
	pid = spawn(argv, po[1], pe[1]);
	if (out)
		close(po[1]);
	if (err)
		close(pe[1]);
	while (po[0] >= 0 || pe[0] >= 0) {
		struct pollfd p[2] = { { .fd = po[0], .events = POLLIN },
				       { .fd = pe[0], .events = POLLIN } };
		int64_t left = end - fx_mono_ms();

		if (left <= 0) {
			kill(pid, SIGKILL);
			ck_abort_msg("%s did not finish within %d ms", argv[0], timeout_ms);
		}
		if (poll(p, 2, (int)left) < 0)
			continue;
		for (int i = 0; i < 2; i++) {
			int *fd = i ? &pe[0] : &po[0];

			if (p[i].revents & POLLIN)
				drain_fd(*fd, i ? &eb : &ob, i ? &el : &ol);
			else if (p[i].revents & (POLLHUP | POLLERR)) {
				close(*fd);
				*fd = -1;
			}
		}
	}
	if (!wait_exit(pid, (int)(end - fx_mono_ms() > 0 ? end - fx_mono_ms() : 1), &status)) {
		kill(pid, SIGKILL);
		ck_abort_msg("%s did not exit within %d ms", argv[0], timeout_ms);
	}
	if (fx_canary() && getenv("GW_SENSORGWD") && strcmp(argv[0], getenv("GW_SENSORGWD")) == 0) {
		/* a daemon run to completion (--check-config, a refused start) */
		if (ob)
			fx_canary_scan_buf("sensorgwd's stdout (run by fx_run)", ob, ol);
		if (eb)
			fx_canary_scan_buf("sensorgwd's stderr (run by fx_run)", eb, el);
	}
	if (out)
		*out = ob ? ob : strdup("");
	if (err)
		*err = eb ? eb : strdup("");
	return status;
}

static void run_ok(const char *const argv[])
{
	char *out = NULL, *err = NULL;
	int st = fx_run(argv, &out, &err, 20000);

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s %s failed (status 0x%x): %s%s",
		      argv[0], argv[1] ? argv[1] : "", st, out, err);
	free(out);
	free(err);
}

/* ---- setup / teardown ---- */

void fx_setup(void)
{
	int p[2];

	ck_assert_msg(access(MOSQUITTO_BIN, X_OK) == 0,
		      MOSQUITTO_BIN " is missing: install the mosquitto package");
	ck_assert_msg(access(MOSQUITTO_PASSWD_BIN, X_OK) == 0,
		      MOSQUITTO_PASSWD_BIN " is missing: install the mosquitto package");
	ck_assert_msg(access(OPENSSL_BIN, X_OK) == 0,
		      OPENSSL_BIN " is missing: install the openssl package");
	ck_assert_msg(access(STDBUF_BIN, X_OK) == 0,
		      STDBUF_BIN " is missing: install the coreutils package");

	memset(&fx, 0, sizeof(fx));
	fx.wd_fd = -1;
	canary_reset();
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/sensorgw-it-XXXXXX");
	ck_assert_msg(mkdtemp(fx.dir), "mkdtemp: %s", strerror(errno));
	/* The broker drops root privileges to user mosquitto: it must be able to reach its
	 * files in broker/, while the daemon's secrets stay 0600 at the top level. */
	ck_assert(chmod(fx.dir, 0711) == 0);
	pthread_mutex_init(&fx.lock, NULL);
	pthread_cond_init(&fx.cond, NULL);

	ck_assert(pipe2(p, O_CLOEXEC) == 0);
	fx.wd_pid = fork();
	ck_assert_msg(fx.wd_pid >= 0, "fork: %s", strerror(errno));
	if (fx.wd_pid == 0) {
		close(p[1]);
		watchdog_main(p[0]);
	}
	close(p[0]);
	fx.wd_fd = p[1];
}

void fx_teardown(void)
{
	char canary_msg[PATH_MAX + 256] = "";
	bool canary_ok;
	int status;

	if (fx.daemon > 0)
		canary_before_stop(fx.daemon, false);
	fx_subscriber_stop();
	fx_sim_stop();
	for (size_t i = 0; i < FX_MAX_EXTRA; i++)
		if (fx.extra[i] > 0)
			stop_child(&fx.extra[i], 5000);
	if (fx.daemon > 0)
		stop_child(&fx.daemon, 10000);
	for (size_t i = 0; i < FX_MAX_PTYS; i++)
		if (fx.ptys[i])
			fx_pty_close(fx.ptys[i]);
	fx_broker_stop();
	canary_ok = canary_verdict(canary_msg, sizeof(canary_msg));
	if (getenv("GW_KEEP_TMP") || !canary_ok)
		fprintf(stderr, "fixture: kept %s\n", fx.dir);
	else
		rm_rf(fx.dir);
	if (fx.wd_fd >= 0) {
		wd_send('D', 0);
		close(fx.wd_fd);
		fx.wd_fd = -1;
		(void)waitpid(fx.wd_pid, &status, 0);
	}
	ck_assert_msg(canary_ok, "%s", canary_msg);
}

/* ---- certificates ---- */

void fx_make_certs(void)
{
	const char *bdir = fx_path("broker");
	char ca_key[PATH_MAX], ca_crt[PATH_MAX], wkey[PATH_MAX], wcrt[PATH_MAX];
	char skey[PATH_MAX], scsr[PATH_MAX], scrt[PATH_MAX], sext[PATH_MAX], serial[PATH_MAX];

	if (fx.certs)
		return;
	if (mkdir(bdir, 0755) < 0)
		ck_assert_msg(errno == EEXIST, "mkdir %s: %s", bdir, strerror(errno));
	ck_assert(chmod(bdir, 0755) == 0);
	snprintf(ca_key, sizeof(ca_key), "%s/broker/ca.key", fx.dir);
	snprintf(ca_crt, sizeof(ca_crt), "%s/broker/ca.crt", fx.dir);
	snprintf(wkey, sizeof(wkey), "%s/broker/wrongca.key", fx.dir);
	snprintf(wcrt, sizeof(wcrt), "%s/broker/wrongca.crt", fx.dir);
	snprintf(skey, sizeof(skey), "%s/broker/server.key", fx.dir);
	snprintf(scsr, sizeof(scsr), "%s/broker/server.csr", fx.dir);
	snprintf(scrt, sizeof(scrt), "%s/broker/server.crt", fx.dir);
	snprintf(sext, sizeof(sext), "%s/broker/server.ext", fx.dir);
	snprintf(serial, sizeof(serial), "%s/broker/ca.srl", fx.dir);

	{
		const char *const ca[] = { OPENSSL_BIN, "req", "-x509", "-newkey", "ec", "-pkeyopt",
			"ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-keyout", ca_key,
			"-out", ca_crt, "-subj", "/CN=sensorgw test CA", "-addext",
			"basicConstraints=critical,CA:TRUE", "-addext",
			"keyUsage=critical,keyCertSign,cRLSign", NULL };
		const char *const wrong[] = { OPENSSL_BIN, "req", "-x509", "-newkey", "ec",
			"-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-keyout",
			wkey, "-out", wcrt, "-subj", "/CN=unrelated test CA", "-addext",
			"basicConstraints=critical,CA:TRUE", "-addext",
			"keyUsage=critical,keyCertSign,cRLSign", NULL };
		const char *const csr[] = { OPENSSL_BIN, "req", "-newkey", "ec", "-pkeyopt",
			"ec_paramgen_curve:P-256", "-nodes", "-keyout", skey, "-out", scsr, "-subj",
			"/CN=localhost", NULL };
		const char *const sign[] = { OPENSSL_BIN, "x509", "-req", "-in", scsr, "-CA",
			ca_crt, "-CAkey", ca_key, "-CAserial", serial, "-CAcreateserial", "-days",
			"2", "-sha256", "-extfile", sext, "-out", scrt, NULL };

		run_ok(ca);
		run_ok(wrong);
		run_ok(csr);
		fx_write_file(sext,
			      "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
			      "basicConstraints=CA:FALSE\n"
			      "keyUsage=critical,digitalSignature,keyEncipherment\n"
			      "extendedKeyUsage=serverAuth\n",
			      0644);
		run_ok(sign);
	}
	/* Test keys only: the broker reads them after dropping privileges. */
	ck_assert(chmod(skey, 0644) == 0);
	fx.certs = true;
}

/* ---- broker ---- */

int fx_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int port;

	ck_assert(fd >= 0);
	ck_assert_msg(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind: %s",
		      strerror(errno));
	ck_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

int fx_broker_port(void)
{
	return fx.port;
}

const char *fx_mqtt_password(void)
{
	return fx.password;
}

int fx_broker_log_count(const char *needle)
{
	char *text = fx_read_file(fx_path("broker.log"));
	int n = 0;

	if (!text)
		return 0;
	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	free(text);
	return n;
}

bool fx_broker_wait_log(const char *needle, int timeout_ms)
{
	int64_t end = fx_mono_ms() + timeout_ms;

	while (fx_broker_log_count(needle) == 0) {
		if (fx_mono_ms() >= end)
			return false;
		fx_sleep_ms(10);
	}
	return true;
}

/* Starts mosquitto on the configuration written by fx_broker_start_opts() and waits for
 * the new process's "running" line (the log is appended across restarts). */
static void broker_launch(void)
{
	const char *ready = "running";
	int before = fx_broker_log_count(ready);
	int64_t end = fx_mono_ms() + FX_WAIT_MS;
	int log_fd, status;

	ck_assert_msg(fx.broker <= 0, "the broker is already running");
	log_fd = open_log("broker.log");
	{
		const char *const argv[] = { STDBUF_BIN, "-oL", MOSQUITTO_BIN, "-c",
			fx.broker_conf, NULL };

		fx.broker = spawn(argv, log_fd, log_fd);
	}
	close(log_fd);
	/* mosquitto logs "mosquitto version X running" once every listener is open. */
	while (fx_broker_log_count(ready) <= before) {
		if (waitpid(fx.broker, &status, WNOHANG) == fx.broker) {
			wd_send('U', fx.broker);
			fx.broker = 0;
			fx_dump_logs();
			ck_abort_msg("mosquitto exited during start-up (status 0x%x)", status);
		}
		ck_assert_msg(fx_mono_ms() < end, "mosquitto not ready after %d ms", FX_WAIT_MS);
		fx_sleep_ms(5);
	}
}

void fx_broker_start(void)
{
	fx_broker_start_opts(NULL);
}

void fx_broker_prepare(const struct fx_broker_opts *o)
{
	static const struct fx_broker_opts defaults;
	char conf[8192], passwd[PATH_MAX], secret[sizeof(fx.password) + 2], persist[PATH_MAX + 64];
	size_t len;

	if (!o)
		o = &defaults;
	fx_make_certs();
	random_hex(fx.password, 16);
	if (fx_canary()) {
		/* gw's password is the daemon's: it carries the canary, then random digits */
		char tail[17];

		random_hex(tail, 8);
		snprintf(fx.password, sizeof(fx.password), "mq%s%s", fx_canary(), tail);
	}
	random_hex(fx.observer_password, 16);
	snprintf(passwd, sizeof(passwd), "%s/broker/passwd", fx.dir);
	{
		const char *const a1[] = { MOSQUITTO_PASSWD_BIN, "-c", "-b", passwd, FX_MQTT_USER,
			fx.password, NULL };
		const char *const a2[] = { MOSQUITTO_PASSWD_BIN, "-b", passwd, FX_OBSERVER_USER,
			fx.observer_password, NULL };

		run_ok(a1);
		run_ok(a2);
	}
	ck_assert(chmod(passwd, 0644) == 0);
	/* The daemon reads its password from a file, as in production; the trailing newline
	 * is what `echo secret > file` leaves. */
	snprintf(secret, sizeof(secret), "%s\n", fx.password);
	fx_write_file(fx_path("mqtt.pass"), secret, 0600);

	if (o->persistence) {
		char db[PATH_MAX];
		struct passwd *pw = getpwnam("mosquitto");

		/* mosquitto drops root privileges to its own user before it writes the database,
		 * so that user must own the directory. */
		snprintf(db, sizeof(db), "%s/broker/db", fx.dir);
		if (mkdir(db, 0700) < 0)
			ck_assert_msg(errno == EEXIST, "mkdir %s: %s", db, strerror(errno));
		ck_assert_msg(pw, "no user mosquitto: install the mosquitto package");
		ck_assert(chown(db, pw->pw_uid, pw->pw_gid) == 0);
		snprintf(persist, sizeof(persist),
			 "persistence true\npersistence_location %s/\nautosave_interval 1\n", db);
	} else {
		snprintf(persist, sizeof(persist), "persistence false\n");
	}

	fx.port = o->port > 0 ? o->port : fx_free_port();
	fx.obs_port = 0;
	if (o->observer_listener)
		do
			fx.obs_port = fx_free_port();
		while (fx.obs_port == fx.port);
	len = (size_t)snprintf(conf, sizeof(conf),
		 "per_listener_settings false\n"
		 "allow_anonymous false\n"
		 "password_file %s\n"
		 "%s"
		 "max_queued_messages 0\n"
		 "log_dest stdout\n"
		 "log_type all\n"
		 "connection_messages true\n",
		 passwd, persist);
	/* The certificate settings belong to the listener line above them. */
	for (int l = 0; l < (fx.obs_port ? 2 : 1); l++) {
		ck_assert(len < sizeof(conf));
		len += (size_t)snprintf(conf + len, sizeof(conf) - len,
			"listener %d 127.0.0.1\n"
			"cafile %s/broker/ca.crt\n"
			"certfile %s/broker/server.crt\n"
			"keyfile %s/broker/server.key\n",
			l ? fx.obs_port : fx.port, fx.dir, fx.dir, fx.dir);
	}
	ck_assert(len < sizeof(conf));
	snprintf(fx.broker_conf, sizeof(fx.broker_conf), "%s/broker/mosquitto.conf", fx.dir);
	fx_write_file(fx.broker_conf, conf, 0644);
}
void fx_broker_start_opts(const struct fx_broker_opts *o)
{
	fx_broker_prepare(o);
	broker_launch();
}

void fx_broker_relaunch(void)
{
	ck_assert_msg(fx.broker_conf[0], "fx_broker_prepare() first");
	broker_launch();
}

bool fx_broker_running(void)
{
	return fx.broker > 0;
}

int fx_broker_observer_port(void)
{
	return fx.obs_port ? fx.obs_port : fx.port;
}

void fx_broker_stop(void)
{
	if (fx.broker > 0)
		stop_child(&fx.broker, 5000);
}

/* ---- ptys ---- */

/* The size of daemon.log when the daemon was last started (see fx_pty_wait_opened()). */
static off_t daemon_log_mark;

static off_t daemon_log_size(void)
{
	struct stat st;

	return stat(fx_path("daemon.log"), &st) == 0 ? st.st_size : 0;
}

static void pty_open(struct fx_pty *p)
{
	struct termios t;
	int slave;
	char tmp[PATH_MAX + 16];

	ck_assert_msg(openpty(&p->master, &slave, p->slave, NULL, NULL) == 0, "openpty: %s",
		      strerror(errno));
	/* Close-on-exec matters: a daemon that inherited the master would keep the "device"
	 * plugged in after the test closes its end. */
	ck_assert(fcntl(p->master, F_SETFD, FD_CLOEXEC) == 0);
	ck_assert(fcntl(p->master, F_SETFL, fcntl(p->master, F_GETFL) | O_NONBLOCK) == 0);
	ck_assert(tcgetattr(slave, &t) == 0);
	cfmakeraw(&t);
	ck_assert(tcsetattr(slave, TCSANOW, &t) == 0);
	close(slave);

	snprintf(tmp, sizeof(tmp), "%s.new", p->link);
	(void)unlink(tmp);
	ck_assert_msg(symlink(p->slave, tmp) == 0, "symlink %s: %s", tmp, strerror(errno));
	ck_assert_msg(rename(tmp, p->link) == 0, "rename %s: %s", tmp, strerror(errno));
	p->log_mark = daemon_log_size();
}

void fx_pty_new(struct fx_pty *p, const char *linkname)
{
	size_t i;

	memset(p, 0, sizeof(*p));
	snprintf(p->link, sizeof(p->link), "%s", fx_path(linkname));
	pty_open(p);
	for (i = 0; i < FX_MAX_PTYS; i++) {
		if (!fx.ptys[i]) {
			fx.ptys[i] = p;
			break;
		}
	}
	ck_assert_msg(i < FX_MAX_PTYS, "too many ptys");
}

void fx_pty_replug(struct fx_pty *p)
{
	ck_assert(p->master >= 0);
	close(p->master);
	p->master = -1;
	pty_open(p);
	p->generation++;
}

void fx_pty_close(struct fx_pty *p)
{
	if (p->master >= 0)
		close(p->master);
	p->master = -1;
	for (size_t i = 0; i < FX_MAX_PTYS; i++)
		if (fx.ptys[i] == p)
			fx.ptys[i] = NULL;
}

static bool pid_has_open(pid_t pid, const char *target)
{
	char dirpath[64], fdpath[PATH_MAX], buf[PATH_MAX];
	struct dirent *de;
	bool found = false;
	DIR *d;

	snprintf(dirpath, sizeof(dirpath), "/proc/%ld/fd", (long)pid);
	d = opendir(dirpath);
	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(fdpath, sizeof(fdpath), "%s/%s", dirpath, de->d_name);
		n = readlink(fdpath, buf, sizeof(buf) - 1);
		if (n < 0)
			continue;
		buf[n] = '\0';
		found = !strcmp(buf, target);
	}
	closedir(d);
	return found;
}

/* Whether daemon.log, from offset from on, holds needle. */
static bool daemon_log_has_from(off_t from, const char *needle)
{
	char *text = fx_read_file(fx_path("daemon.log"));
	bool r = text && (off_t)strlen(text) >= from && strstr(text + from, needle);

	free(text);
	return r;
}

bool fx_pty_wait_opened(const struct fx_pty *p, pid_t pid, int timeout_ms)
{
	int64_t end = fx_mono_ms() + daemon_ms(timeout_ms);
	off_t from = p->log_mark > daemon_log_mark ? p->log_mark : daemon_log_mark;
	char opened[128];

	while (!pid_has_open(pid, p->slave)) {
		if (fx_mono_ms() >= end)
			return false;
		fx_sleep_ms(10);
	}
	if (pid != fx.daemon)
		return true;
	/* The daemon has the device open but may not have configured it yet: its tcflush() would
	 * drop what the test writes now (a daemon under valgrind takes long enough for that).
	 * It logs "opened /dev/pts/N at ..." once the line is set up; look for it in what was
	 * logged since this pty was made or the daemon started, whichever came last. */
	snprintf(opened, sizeof(opened), "opened %s at ", p->slave);
	while (!daemon_log_has_from(from, opened)) {
		if (fx_mono_ms() >= end)
			return false;
		fx_sleep_ms(10);
	}
	return true;
}

void fx_pty_write(const struct fx_pty *p, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	int64_t end = fx_mono_ms() + 5000;

	while (len > 0) {
		ssize_t n = write(p->master, b, len);

		if (n > 0) {
			b += n;
			len -= (size_t)n;
			end = fx_mono_ms() + 5000;
			continue;
		}
		ck_assert_msg(n < 0 && (errno == EAGAIN || errno == EINTR), "write %s: %s",
			      p->slave, strerror(errno));
		ck_assert_msg(fx_mono_ms() < end, "%s: the reader took nothing for 5 s", p->slave);
		{
			struct pollfd pf = { .fd = p->master, .events = POLLOUT };

			if (poll(&pf, 1, 50) > 0 && !(pf.revents & POLLOUT))
				fx_sleep_ms(1); /* POLLHUP alone: nobody has the slave open */
		}
	}
}

void fx_pty_write_chunked(const struct fx_pty *p, const void *buf, size_t len, uint64_t *rng)
{
	const uint8_t *b = buf;

	while (len > 0) {
		size_t n = 1 + fx_rand_below(rng, 97);

		if (n > len)
			n = len;
		fx_pty_write(p, b, n);
		b += n;
		len -= n;
		/* A USB-serial bridge hands over data in bursts a millisecond or so apart. */
		if (fx_rand_below(rng, 8) == 0)
			fx_sleep_ms(1);
	}
}

/* ---- sensorgwd ---- */

char *fx_config(const char *ca_file, const char *extra)
{
	char *c = NULL;
	int n;

	if (mkdir(fx_path("state"), 0700) < 0)
		ck_assert_msg(errno == EEXIST, "mkdir state: %s", strerror(errno));
	n = asprintf(&c,
		     "[gateway]\n"
		     "state_dir = %s/state\n"
		     "control_socket = %s/control\n"
		     "device_name = stm32-{uid}\n"
		     "\n"
		     "[port txt]\n"
		     "path = %s/tty-txt\n"
		     "baud = 115200\n"
		     "framing = text\n"
		     "\n"
		     "[port bin]\n"
		     "path = %s/tty-bin\n"
		     "framing = binary\n"
		     "\n"
		     "[uplink local]\n"
		     "type = mqtt\n"
		     "host = localhost\n"
		     "port = %d\n"
		     "ca_file = %s\n"
		     "username = " FX_MQTT_USER "\n"
		     "password_file = %s/mqtt.pass\n"
		     "qos = 1\n"
		     "keepalive = 10\n"
		     "topic = sensorgw/{device}/{kind}\n"
		     "reconnect_min_ms = 200\n"
		     "reconnect_max_ms = 2000\n"
		     "%s",
		     fx.dir, fx.dir, fx.dir, fx.dir, fx.port, ca_file, fx.dir, extra ? extra : "");
	ck_assert(n > 0);
	return c;
}

/* The first word of GW_DAEMON_WRAPPER as a path: spawn() execs with execv(), no PATH search. */
static void wrapper_path(const char *word, char *buf, size_t size)
{
	const char *path = getenv("PATH");
	char *copy, *save = NULL;

	if (strchr(word, '/')) {
		snprintf(buf, size, "%s", word);
		return;
	}
	ck_assert_msg(path, "GW_DAEMON_WRAPPER: no PATH to find %s in", word);
	copy = strdup(path);
	ck_assert(copy);
	for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		snprintf(buf, size, "%s/%s", *dir ? dir : ".", word);
		if (access(buf, X_OK) == 0) {
			free(copy);
			return;
		}
	}
	free(copy);
	ck_abort_msg("GW_DAEMON_WRAPPER: %s is not in PATH", word);
}

pid_t fx_daemon_start(const char *config)
{
	const char *conf = fx_path("sensorgw.conf");
	const char *wrapper = getenv("GW_DAEMON_WRAPPER");
	char conf_copy[PATH_MAX];
	char wrapper0[PATH_MAX];
	const char *argv[40];
	char *words = NULL, *save = NULL;
	size_t n = 0;
	int log_fd;

	ck_assert_msg(fx.daemon <= 0, "the daemon is already running");
	snprintf(conf_copy, sizeof(conf_copy), "%s", conf);
	fx_write_file(conf_copy, config, 0600);
	log_fd = open_log("daemon.log");
	daemon_log_mark = daemon_log_size();
	/* GW_DAEMON_WRAPPER="valgrind --leak-check=full ...": words split on spaces, run in
	 * front of sensorgwd. The pid stays the daemon's: the wrapper must exec it in place. */
	if (wrapper && *wrapper) {
		words = strdup(wrapper);
		ck_assert(words);
		for (char *w = strtok_r(words, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
			ck_assert_msg(n < N_WRAPPER_WORDS, "GW_DAEMON_WRAPPER has too many words");
			if (n == 0) {
				wrapper_path(w, wrapper0, sizeof(wrapper0));
				w = wrapper0;
			}
			argv[n++] = w;
		}
	}
	argv[n++] = fx_env("GW_SENSORGWD");
	argv[n++] = "-c";
	argv[n++] = conf_copy;
	argv[n++] = "--log-level";
	argv[n++] = "debug";
	argv[n] = NULL;
	canary_daemon_started(config);
	fx.daemon = spawn(argv, log_fd, log_fd);
	free(words);
	close(log_fd);
	return fx.daemon;
}

pid_t fx_daemon_pid(void)
{
	return fx.daemon;
}

bool fx_daemon_running(void)
{
	int status;

	if (fx.daemon <= 0)
		return false;
	if (waitpid(fx.daemon, &status, WNOHANG) == fx.daemon) {
		wd_send('U', fx.daemon);
		fx.daemon = 0;
		fprintf(stderr, "fixture: sensorgwd exited with status 0x%x\n", status);
		return false;
	}
	return true;
}

int fx_daemon_stop(int64_t *ret_ms)
{
	int64_t t0;
	int status;

	ck_assert_msg(fx.daemon > 0, "the daemon is not running");
	canary_before_stop(fx.daemon, true);
	t0 = fx_mono_ms();
	status = stop_child(&fx.daemon, daemon_ms(10000));
	if (ret_ms)
		*ret_ms = fx_mono_ms() - t0;
	fx_canary_scan();
	return status;
}

int fx_daemon_kill(void)
{
	int status = 0;

	ck_assert_msg(fx.daemon > 0, "the daemon is not running");
	canary_before_stop(fx.daemon, false);
	ck_assert(kill(fx.daemon, SIGKILL) == 0);
	ck_assert_msg(wait_exit(fx.daemon, daemon_ms(5000), &status), "sensorgwd survived SIGKILL");
	fx.daemon = 0;
	fx_canary_scan();
	return status;
}

void fx_daemon_signal(int sig)
{
	ck_assert_msg(fx.daemon > 0, "the daemon is not running");
	ck_assert(kill(fx.daemon, sig) == 0);
}

bool fx_daemon_log_contains(const char *needle)
{
	char *text = fx_read_file(fx_path("daemon.log"));
	bool r = text && strstr(text, needle);

	free(text);
	return r;
}

bool fx_daemon_log_line_has(const char *const needles[])
{
	char *text = fx_read_file(fx_path("daemon.log"));
	bool found = false;
	char *save = NULL;

	if (!text)
		return false;
	for (char *line = strtok_r(text, "\n", &save); line && !found;
	     line = strtok_r(NULL, "\n", &save)) {
		found = true;
		for (size_t i = 0; needles[i] && found; i++)
			found = strcasestr(line, needles[i]) != NULL;
	}
	free(text);
	return found;
}

bool fx_daemon_wait_log_line(const char *const needles[], int timeout_ms)
{
	int64_t end = fx_mono_ms() + daemon_ms(timeout_ms);

	while (!fx_daemon_log_line_has(needles)) {
		if (fx_mono_ms() >= end)
			return false;
		fx_sleep_ms(20);
	}
	return true;
}

bool fx_daemon_wait_started(int timeout_ms)
{
	/* "sensorgwd 0.1.0 started: 2 port(s), 1 uplink(s)", logged after the control socket
	 * is bound (src/main.c) */
	static const char *const needles[] = { "sensorgwd ", " started: ", NULL };

	return fx_daemon_wait_log_line(needles, timeout_ms);
}

bool fx_daemon_wait_connected(int timeout_ms)
{
	/* mosquitto: "New client connected from 127.0.0.1:P as ID (p2, c1, k10, u'gw')." */
	return fx_broker_wait_log("u'" FX_MQTT_USER "')", daemon_ms(timeout_ms));
}

void fx_dump_logs(void)
{
	dump_tail(fx_path("daemon.log"), 80);
	dump_tail(fx_path("sim.log"), 20);
	dump_tail(fx_path("broker.log"), 40);
}

/* ---- other children ---- */

pid_t fx_spawn(const char *const argv[], const char *logname)
{
	size_t i;
	int fd;

	for (i = 0; i < FX_MAX_EXTRA && fx.extra[i] > 0; i++)
		;
	ck_assert_msg(i < FX_MAX_EXTRA, "too many extra children");
	fd = open_log(logname);
	fx.extra[i] = spawn(argv, fd, fd);
	close(fd);
	return fx.extra[i];
}

bool fx_child_running(pid_t pid)
{
	int status;

	for (size_t i = 0; i < FX_MAX_EXTRA; i++) {
		if (fx.extra[i] != pid || pid <= 0)
			continue;
		if (waitpid(pid, &status, WNOHANG) != pid)
			return true;
		wd_send('U', pid);
		fx.extra[i] = 0;
		return false;
	}
	return false;
}

int fx_child_stop(pid_t pid)
{
	for (size_t i = 0; i < FX_MAX_EXTRA; i++)
		if (fx.extra[i] == pid && pid > 0)
			return stop_child(&fx.extra[i], 5000);
	return 0;
}

/* ---- simulator ---- */

pid_t fx_sim_start(const char *const args[])
{
	const char *argv[32];
	size_t n = 0;
	int out_fd, err_fd;

	ck_assert_msg(fx.sim <= 0, "a simulator is already running");
	argv[n++] = fx_env("GW_SIM");
	for (size_t i = 0; args && args[i]; i++) {
		ck_assert(n < sizeof(argv) / sizeof(argv[0]) - 1);
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	out_fd = open_log("sim.out");
	err_fd = open_log("sim.log");
	fx.sim = spawn(argv, out_fd, err_fd);
	close(out_fd);
	close(err_fd);
	return fx.sim;
}

int fx_sim_wait(int timeout_ms)
{
	int status = 0;

	ck_assert(fx.sim > 0);
	if (!wait_exit(fx.sim, timeout_ms, &status))
		return stop_child(&fx.sim, 5000);
	fx.sim = 0;
	return status;
}

pid_t fx_sim_pid(void)
{
	return fx.sim > 0 ? fx.sim : 0;
}

void fx_sim_stop(void)
{
	if (fx.sim > 0)
		stop_child(&fx.sim, 5000);
}

/* ---- subscriber ---- */

static void on_connect(struct mosquitto *m, void *ud, int rc)
{
	(void)ud;
	pthread_mutex_lock(&fx.lock);
	fx.connack = rc;
	fx.connected = true;
	pthread_cond_broadcast(&fx.cond);
	pthread_mutex_unlock(&fx.lock);
	(void)m;
}

static void on_subscribe(struct mosquitto *m, void *ud, int mid, int qos_count,
			 const int *granted)
{
	(void)m;
	(void)ud;
	(void)mid;
	pthread_mutex_lock(&fx.lock);
	fx.subscribed = qos_count == 1 && granted[0] == 1;
	if (!fx.subscribed)
		fx.connack = -1; /* refused or downgraded: the waiter reports it */
	pthread_cond_broadcast(&fx.cond);
	pthread_mutex_unlock(&fx.lock);
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
	struct fx_msg rec = { 0 };

	(void)m;
	(void)ud;
	rec.topic = strdup(msg->topic);
	rec.payload = malloc((size_t)msg->payloadlen + 1);
	if (!rec.topic || !rec.payload)
		abort();
	if (msg->payloadlen > 0)
		memcpy(rec.payload, msg->payload, (size_t)msg->payloadlen);
	rec.payload[msg->payloadlen] = '\0';
	rec.len = (size_t)msg->payloadlen;
	rec.rx_ms = fx_now_ms();
	rec.retained = msg->retain;

	pthread_mutex_lock(&fx.lock);
	if (fx.n_msgs == fx.cap_msgs) {
		fx.cap_msgs = fx.cap_msgs ? fx.cap_msgs * 2 : 256;
		fx.msgs = realloc(fx.msgs, fx.cap_msgs * sizeof(*fx.msgs));
		if (!fx.msgs)
			abort();
	}
	fx.msgs[fx.n_msgs++] = rec;
	pthread_cond_broadcast(&fx.cond);
	pthread_mutex_unlock(&fx.lock);
}

static void abs_deadline(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static void subscriber_start(const char *topic, bool persistent)
{
	char id[64], ca[PATH_MAX];
	struct timespec dl;
	int rc, mid;

	ck_assert_msg(fx.broker > 0, "start the broker first");
	mosquitto_lib_init();
	snprintf(id, sizeof(id), "it-observer-%ld", (long)getpid());
	/* A persistent session keeps the subscription and the messages queued for the
	 * observer while it is away: across its reconnects and, with broker persistence,
	 * across broker restarts. */
	fx.mosq = mosquitto_new(id, !persistent, NULL);
	ck_assert(fx.mosq);
	/* libmosquitto's own thread reconnects after a broker restart; keep that short. */
	ck_assert(mosquitto_reconnect_delay_set(fx.mosq, 1, 1, false) == MOSQ_ERR_SUCCESS);
	snprintf(ca, sizeof(ca), "%s/broker/ca.crt", fx.dir);
	ck_assert(mosquitto_tls_set(fx.mosq, ca, NULL, NULL, NULL, NULL) == MOSQ_ERR_SUCCESS);
	ck_assert(mosquitto_username_pw_set(fx.mosq, FX_OBSERVER_USER, fx.observer_password) ==
		  MOSQ_ERR_SUCCESS);
	mosquitto_connect_callback_set(fx.mosq, on_connect);
	mosquitto_subscribe_callback_set(fx.mosq, on_subscribe);
	mosquitto_message_callback_set(fx.mosq, on_message);
	rc = mosquitto_connect(fx.mosq, "localhost", fx_broker_observer_port(), 10);
	ck_assert_msg(rc == MOSQ_ERR_SUCCESS, "subscriber: connect: %s", mosquitto_strerror(rc));
	ck_assert(mosquitto_loop_start(fx.mosq) == MOSQ_ERR_SUCCESS);

	abs_deadline(&dl, FX_WAIT_MS);
	pthread_mutex_lock(&fx.lock);
	while (!fx.connected && pthread_cond_timedwait(&fx.cond, &fx.lock, &dl) == 0)
		;
	rc = fx.connected ? fx.connack : -2;
	pthread_mutex_unlock(&fx.lock);
	ck_assert_msg(rc == 0, "subscriber: no CONNACK 0 (got %d: %s)", rc,
		      rc > 0 ? mosquitto_connack_string(rc) : "timeout");

	rc = mosquitto_subscribe(fx.mosq, &mid, topic, 1);
	ck_assert_msg(rc == MOSQ_ERR_SUCCESS, "subscribe: %s", mosquitto_strerror(rc));
	abs_deadline(&dl, FX_WAIT_MS);
	pthread_mutex_lock(&fx.lock);
	while (!fx.subscribed && fx.connack == 0 &&
	       pthread_cond_timedwait(&fx.cond, &fx.lock, &dl) == 0)
		;
	rc = fx.subscribed;
	pthread_mutex_unlock(&fx.lock);
	ck_assert_msg(rc, "subscriber: no SUBACK granting QoS 1 for %s", topic);
}

void fx_subscriber_start(const char *topic)
{
	subscriber_start(topic, false);
}

void fx_subscriber_start_persistent(const char *topic)
{
	subscriber_start(topic, true);
}

size_t fx_subscriber_count(void)
{
	size_t n;

	pthread_mutex_lock(&fx.lock);
	n = fx.n_msgs;
	pthread_mutex_unlock(&fx.lock);
	return n;
}

bool fx_subscriber_wait_count(size_t n, int timeout_ms)
{
	struct timespec dl;
	bool ok;

	/* the messages come from the daemon */
	abs_deadline(&dl, daemon_ms(timeout_ms));
	pthread_mutex_lock(&fx.lock);
	while (fx.n_msgs < n && pthread_cond_timedwait(&fx.cond, &fx.lock, &dl) == 0)
		;
	ok = fx.n_msgs >= n;
	pthread_mutex_unlock(&fx.lock);
	return ok;
}

struct fx_msg *fx_subscriber_messages(size_t *ret_n)
{
	struct fx_msg *copy;

	pthread_mutex_lock(&fx.lock);
	copy = calloc(fx.n_msgs ? fx.n_msgs : 1, sizeof(*copy));
	ck_assert(copy);
	for (size_t i = 0; i < fx.n_msgs; i++) {
		copy[i] = fx.msgs[i];
		copy[i].topic = strdup(fx.msgs[i].topic);
		copy[i].payload = malloc(fx.msgs[i].len + 1);
		ck_assert(copy[i].topic && copy[i].payload);
		memcpy(copy[i].payload, fx.msgs[i].payload, fx.msgs[i].len + 1);
	}
	*ret_n = fx.n_msgs;
	pthread_mutex_unlock(&fx.lock);
	return copy;
}

void fx_msgs_free(struct fx_msg *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].topic);
		free(m[i].payload);
	}
	free(m);
}

void fx_subscriber_publish(const char *topic, const char *payload)
{
	int rc;

	ck_assert_msg(fx.mosq, "start the subscriber first");
	rc = mosquitto_publish(fx.mosq, NULL, topic, (int)strlen(payload), payload, 1, false);
	ck_assert_msg(rc == MOSQ_ERR_SUCCESS, "publish: %s", mosquitto_strerror(rc));
}

void fx_subscriber_stop(void)
{
	if (!fx.mosq)
		return;
	mosquitto_disconnect(fx.mosq);
	mosquitto_loop_stop(fx.mosq, false);
	mosquitto_destroy(fx.mosq);
	fx.mosq = NULL;
	mosquitto_lib_cleanup();
	fx_msgs_free(fx.msgs, fx.n_msgs);
	fx.msgs = NULL;
	fx.n_msgs = fx.cap_msgs = 0;
	fx.connected = fx.subscribed = false;
}

/* ---- binary frames ---- */

size_t fx_bin_hello(uint8_t *out, uint8_t addr, uint16_t seq, const uint8_t uid[12],
		    uint32_t boot, const char *fw)
{
	int n = sgw_encode_hello(addr, seq, uid, boot, fw, out, SGW_MAX_WIRE);

	ck_assert_msg(n > 0, "sgw_encode_hello: %d", n);
	return (size_t)n;
}

/* ---- secret canary (see fixture.h) ---- */

#define CANARY_MIN 8
#define CANARY_MAX 48
#define CANARY_DIRS 8

static struct {
	bool init;
	char token[CANARY_MAX + 1];
	char hex[2 * CANARY_MAX + 1]; /* the token's bytes in hex: a hex dump of a secret */
	size_t places, hits, store_files, store_canary;
	size_t daemons; /* started by fx_daemon_start() in this test process */
	bool daemon_started;
	char problem[PATH_MAX + 128]; /* the first failed precondition, for the teardown */
	char last_hit[PATH_MAX + 64];
	char state_dirs[CANARY_DIRS][PATH_MAX];
	size_t n_state_dirs;
	char exempt[CANARY_DIRS][PATH_MAX]; /* planted by the test itself: fx_canary_exempt() */
	size_t n_exempt, exempted;
	char control[PATH_MAX];
	struct {
		char purpose[32];
		char value[128];
	} secrets[32];
	size_t n_secrets;
} cy;

static void canary_set(const char *v)
{
	static const char digits[] = "0123456789abcdef";
	size_t len = strlen(v);

	ck_assert_msg(len >= CANARY_MIN && len <= CANARY_MAX &&
			      strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					"0123456789") == len,
		      "GW_CANARY: want %d to %d letters and digits", CANARY_MIN, CANARY_MAX);
	snprintf(cy.token, sizeof(cy.token), "%s", v);
	for (size_t i = 0; i < len; i++) {
		cy.hex[2 * i] = digits[(unsigned char)v[i] >> 4];
		cy.hex[2 * i + 1] = digits[(unsigned char)v[i] & 15];
	}
	cy.hex[2 * len] = '\0';
	cy.n_secrets = 0;
}

static void canary_init(void)
{
	const char *v;

	if (cy.init)
		return;
	cy.init = true;
	v = getenv("GW_CANARY");
	if (!v || !*v)
		return;
	canary_set(v);
	/* Every child inherits the test's environment: the daemon's /proc/PID/environ must not
	 * hold the canary because the test put it there. The clouds get it as an option. */
	ck_assert(unsetenv("GW_CANARY") == 0);
}

const char *fx_canary(void)
{
	canary_init();
	return cy.token[0] ? cy.token : NULL;
}

void fx_canary_force(const char *token)
{
	canary_init();
	if (!cy.token[0])
		canary_set(token);
}

/*
 * The fixed value of each secret a test hands the daemon or a cloud, and its format. In canary
 * mode the value is the first 8 (base64: 4) characters of the fixed one, so that two secrets
 * still differ where it counts (a Tencent ProductSecret's first 16 bytes are an AES key), then
 * the canary; a base64 one is padded to a multiple of 4 characters without '=', so that every
 * character is data and the canary text is what the daemon reads from its config.
 */
static const struct {
	const char *purpose;
	const char *fixed;
	bool base64;
} secret_table[] = {
	{ "aliyun-product", "testProductSecret123", false },
	{ "aliyun-product-wrong", "wrongProductSecret", false },
	{ "aliyun-device", "testDeviceSecret456", false },
	{ "aliyun-device2", "testDeviceSecret789", false },
	{ "tencent-product", "testProductSecret123", false },
	{ "tencent-product-cert", "certProductSecret456", false },
	{ "tencent-product-wrong", "notTheProductSecret9", false },
	{ "tencent-product-other", "otherProductSecret77", false },
	{ "tencent-psk", "IyXmUW5sU/q1vnb5yzTkeQ==", true },
	{ "tencent-psk-wrong", "AAAAAAAAAAAAAAAAAAAAAA==", true },
	{ "mqtt-other", "not-a-real-password", false },
};

const char *fx_secret(const char *purpose)
{
	size_t i, n;

	for (i = 0; i < sizeof(secret_table) / sizeof(secret_table[0]); i++)
		if (strcmp(secret_table[i].purpose, purpose) == 0)
			break;
	ck_assert_msg(i < sizeof(secret_table) / sizeof(secret_table[0]),
		      "fx_secret: no secret for %s", purpose);
	if (!fx_canary())
		return secret_table[i].fixed;
	for (size_t k = 0; k < cy.n_secrets; k++)
		if (strcmp(cy.secrets[k].purpose, purpose) == 0)
			return cy.secrets[k].value;
	ck_assert(cy.n_secrets < sizeof(cy.secrets) / sizeof(cy.secrets[0]));
	snprintf(cy.secrets[cy.n_secrets].purpose, sizeof(cy.secrets[0].purpose), "%s", purpose);
	{
		char *v = cy.secrets[cy.n_secrets].value;

		n = (size_t)snprintf(v, sizeof(cy.secrets[0].value), "%.*s%s",
				     secret_table[i].base64 ? 4 : 8, secret_table[i].fixed,
				     cy.token);
		while (secret_table[i].base64 && n % 4)
			v[n++] = 'A';
		v[n] = '\0';
		return cy.secrets[cy.n_secrets++].value;
	}
}

static void canary_problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void canary_problem(const char *fmt, ...)
{
	va_list ap;
	char msg[sizeof(cy.problem)];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "Secret canary: %s\n", msg);
	if (!cy.problem[0])
		snprintf(cy.problem, sizeof(cy.problem), "%s", msg);
}

static size_t count_in(const char *where, const char *buf, size_t len, const char *needle,
		       const char *form)
{
	size_t n = 0, nl = strlen(needle);
	const char *p = buf;

	while (nl && buf && (size_t)(p - buf) + nl <= len) {
		p = memmem(p, len - (size_t)(p - buf), needle, nl);
		if (!p)
			break;
		if (n == 0)
			fprintf(stderr, "Secret canary: the canary %s (%s) appears in %s at byte "
				"%zu\n", cy.token, form, where, (size_t)(p - buf));
		n++;
		p += nl;
	}
	return n;
}

size_t fx_canary_scan_buf(const char *where, const void *buf, size_t len)
{
	size_t n;

	if (!fx_canary())
		return 0;
	cy.places++;
	n = count_in(where, buf, len, cy.token, "as text");
	n += count_in(where, buf, len, cy.hex, "hex-encoded");
	if (n)
		snprintf(cy.last_hit, sizeof(cy.last_hit), "%s", where);
	cy.hits += n;
	return n;
}

/* Reads at most 64 MiB of a file (never blocks on a FIFO); NULL when it cannot be opened. */
static char *canary_slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	size_t size = 0, n = 0;
	char *buf = NULL;

	*len = 0;
	if (fd < 0)
		return NULL;
	for (;;) {
		ssize_t r;

		if (n == size) {
			if (size >= (64u << 20))
				break;
			size = size ? size * 2 : 65536;
			buf = realloc(buf, size);
			ck_assert(buf);
		}
		r = read(fd, buf + n, size - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (!buf)
		buf = malloc(1);
	ck_assert(buf);
	*len = n;
	return buf;
}

/* Searches a file; false when it could not be read. */
static bool canary_scan_file(const char *path, const char *where)
{
	size_t len;
	char *buf = canary_slurp(path, &len);

	if (!buf)
		return false;
	fx_canary_scan_buf(where ? where : path, buf, len);
	free(buf);
	return true;
}

void fx_canary_scan_proc(pid_t pid)
{
	char path[64], where[160];

	if (!fx_canary() || pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
	snprintf(where, sizeof(where), "%s (a running process's argv)", path);
	if (!canary_scan_file(path, where))
		canary_problem("cannot read %s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "/proc/%ld/environ", (long)pid);
	snprintf(where, sizeof(where), "%s (a running process's environment)", path);
	if (!canary_scan_file(path, where))
		canary_problem("cannot read %s: %s", path, strerror(errno));
}

/* The credential store's own files (credentials/<uplink>/<device>.json, .json.bak, a damaged
 * copy moved aside, a temporary file of an interrupted write): they must hold the secret. */
static bool is_store_file(const char *path)
{
	const char *base = strrchr(path, '/');
	size_t n;

	if (!strstr(path, "/credentials/") || !base)
		return false;
	base++;
	n = strlen(base);
	return (n > 5 && strcmp(base + n - 5, ".json") == 0) ||
	       (n > 9 && strcmp(base + n - 9, ".json.bak") == 0) || strstr(base, ".corrupt-") ||
	       (base[0] == '.' && n > 4 && strcmp(base + n - 4, ".tmp") == 0);
}

void fx_canary_exempt(const char *path)
{
	ck_assert(cy.n_exempt < CANARY_DIRS);
	snprintf(cy.exempt[cy.n_exempt++], PATH_MAX, "%s", path);
}

static bool is_exempt(const char *path)
{
	for (size_t i = 0; i < cy.n_exempt; i++) {
		size_t n = strlen(cy.exempt[i]);

		if (strncmp(path, cy.exempt[i], n) == 0 && (path[n] == '\0' || path[n] == '/'))
			return true;
	}
	return false;
}

static void canary_scan_tree(const char *path, int depth)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (!d)
		return; /* a state directory the daemon never made */
	while ((e = readdir(d))) {
		char p[PATH_MAX];
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		if (lstat(p, &st) < 0)
			continue;
		if (is_exempt(p)) {
			cy.exempted++;
			continue;
		}
		if (S_ISDIR(st.st_mode) && depth < 16) {
			canary_scan_tree(p, depth + 1);
		} else if (S_ISREG(st.st_mode) && is_store_file(p)) {
			size_t len;
			char *buf = canary_slurp(p, &len);

			if ((st.st_mode & 07777) != 0600)
				canary_problem("%s (credential store) has mode %04o, not 0600", p,
					       (unsigned)(st.st_mode & 07777));
			cy.store_files++;
			/* the positive control: the secrets the daemon keeps do carry the canary */
			if (buf && memmem(buf, len, cy.token, strlen(cy.token)))
				cy.store_canary++;
			free(buf);
		} else if (S_ISREG(st.st_mode)) {
			canary_scan_file(p, NULL);
		}
	}
	closedir(d);
}

static bool is_core_name(const char *name)
{
	return strcmp(name, "core") == 0 || strncmp(name, "core.", 5) == 0 ||
	       strncmp(name, "vgcore.", 7) == 0;
}

static void canary_find_cores(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	cy.places++;
	while ((e = readdir(d)))
		if (is_core_name(e->d_name)) {
			char p[PATH_MAX];

			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			cy.hits++;
			snprintf(cy.last_hit, sizeof(cy.last_hit), "%s", p);
			fprintf(stderr, "Secret canary: a core file: %s\n", p);
		}
	closedir(d);
}

/* Remembers the state directories and the control socket of a daemon's configuration. */
static void canary_daemon_started(const char *config)
{
	char *copy, *save = NULL;

	if (!fx_canary())
		return;
	cy.daemon_started = true;
	cy.daemons++;
	copy = strdup(config);
	ck_assert(copy);
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char key[32], value[PATH_MAX];
		bool known = false;

		if (sscanf(line, " %31[a-z_] = %4095s", key, value) != 2)
			continue;
		if (strcmp(key, "control_socket") == 0)
			snprintf(cy.control, sizeof(cy.control), "%s", value);
		if (strcmp(key, "state_dir") != 0)
			continue;
		for (size_t i = 0; i < cy.n_state_dirs; i++)
			known = known || strcmp(cy.state_dirs[i], value) == 0;
		if (!known && cy.n_state_dirs < CANARY_DIRS)
			snprintf(cy.state_dirs[cy.n_state_dirs++], PATH_MAX, "%s", value);
	}
	free(copy);
}

/* While the daemon runs: its argv and environment, and its status over the control socket. */
static void canary_before_stop(pid_t pid, bool ask_status)
{
	struct stat st;
	const char *ctl = getenv("GW_CTL");

	if (!fx_canary() || pid <= 0)
		return;
	fx_canary_scan_proc(pid);
	if (ask_status && ctl && *ctl && cy.control[0] && stat(cy.control, &st) == 0 &&
	    S_ISSOCK(st.st_mode)) {
		const char *const argv[] = { ctl, "status", "--json", "--socket", cy.control, NULL };
		char *out = NULL, *err = NULL;
		int status = fx_run(argv, &out, &err, daemon_ms(20000));

		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			fx_canary_scan_buf("sensorgwctl status --json", out, strlen(out));
			fx_canary_scan_buf("sensorgwctl status --json (stderr)", err, strlen(err));
		}
		free(out);
		free(err);
	}
}

size_t fx_canary_scan(void)
{
	size_t before = cy.hits;
	char cwd[PATH_MAX];

	if (!fx_canary())
		return 0;
	if (cy.daemon_started &&
	    !canary_scan_file(fx_path("daemon.log"), "daemon.log (the daemon's stdout and stderr)"))
		canary_problem("the daemon's output %s is missing", fx_path("daemon.log"));
	for (size_t i = 0; i < cy.n_state_dirs; i++) {
		/* the dead-letter files (spool/deadletter-NAME.log) are in here */
		canary_scan_tree(cy.state_dirs[i], 0);
		canary_find_cores(cy.state_dirs[i]);
	}
	canary_find_cores(fx.dir);
	if (getcwd(cwd, sizeof(cwd)))
		canary_find_cores(cwd);
	return cy.hits - before;
}

size_t fx_canary_forget_hits(char *where, size_t size)
{
	size_t n = cy.hits;

	if (where && size)
		snprintf(where, size, "%s", cy.hits ? cy.last_hit : cy.problem);
	cy.hits = 0;
	cy.last_hit[0] = cy.problem[0] = '\0';
	return n;
}

/* In fx_setup(): a new test process starts from zero. */
static void canary_reset(void)
{
	canary_init();
	cy.places = cy.hits = cy.store_files = cy.store_canary = cy.daemons = 0;
	cy.daemon_started = false;
	cy.problem[0] = cy.last_hit[0] = cy.control[0] = '\0';
	cy.n_state_dirs = cy.n_exempt = cy.exempted = 0;
}

/* The teardown's search and verdict; fx_teardown() fails the test with the message. */
static bool canary_verdict(char *msg, size_t size)
{
	if (!fx_canary())
		return true;
	fx_canary_scan();
	fprintf(stderr,
		"Secret canary: %zu places searched, %zu hits (%zu daemon run(s), %zu state "
		"dir(s); credential-store files skipped %zu times, %zu of them holding the "
		"canary; %zu paths the test planted skipped)%s\n",
		cy.places, cy.hits, cy.daemons, cy.n_state_dirs, cy.store_files, cy.store_canary,
		cy.exempted,
		cy.daemon_started ? "" : "; this test started no daemon");
	if (cy.hits) {
		snprintf(msg, size, "secret canary: %zu hit(s), the last in %s", cy.hits,
			 cy.last_hit);
		return false;
	}
	if (cy.problem[0]) {
		snprintf(msg, size, "secret canary: %s", cy.problem);
		return false;
	}
	if (cy.daemon_started && cy.places < 3) {
		snprintf(msg, size, "secret canary: only %zu places searched", cy.places);
		return false;
	}
	return true;
}
