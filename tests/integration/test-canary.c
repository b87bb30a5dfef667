/* SPDX-License-Identifier: MIT */
/*
 * Secret canary (issue 8, design reliability.md §4.5): every secret the daemon handles is a
 * random string, the daemon runs at debug level through registration, traffic, a broker
 * restart (MQTT reconnect with the password) and a daemon restart (the stored DeviceSecret
 * read back, the cloud session opened again), and then no secret may appear in:
 *   - the daemon's stdout and stderr (every start),
 *   - any file below the state directory except the credential store's own files
 *     (credentials/<uplink>/<device>.json and .json.bak, 0600 by design),
 *   - /proc/PID/cmdline and /proc/PID/environ of the running daemon,
 *   - the answers of `sensorgwctl status` and `status --json`,
 * and no core file may appear. The secrets: the MQTT password (password_file; the fixture's
 * random password), the Aliyun ProductSecret (product_secret_file; a random string given to
 * the test cloud), and the DeviceSecret the test cloud issued at registration (random, read
 * from its control API). The grep is checked on files that must hold the secrets, so a
 * broken grep cannot pass.
 */

#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloud.h"
#include "fixture.h"

#define N_SECRETS 3

static const char *names[N_SECRETS] = { "MQTT password", "ProductSecret", "DeviceSecret" };
static char secrets[N_SECRETS][80];
static size_t hits, searched;
static bool quiet; /* while checking that the grep finds the known copies */

/* Counts occurrences of every secret in len bytes of buf (binary safe); reports each. */
static size_t scan(const char *where, const char *buf, size_t len)
{
	size_t n = 0;

	searched++;
	for (int s = 0; s < N_SECRETS; s++) {
		size_t sl = strlen(secrets[s]);

		if (!sl)
			continue;
		for (const char *p = buf; p && (size_t)(p - buf) + sl <= len;) {
			p = memmem(p, len - (size_t)(p - buf), secrets[s], sl);
			if (!p)
				break;
			if (!quiet)
				fprintf(stderr, "canary: the %s appears in %s at byte %zu\n",
					names[s], where, (size_t)(p - buf));
			n++;
			p += sl;
		}
	}
	return n;
}

static char *slurp(const char *path, size_t *len)
{
	char *buf = NULL;
	size_t size = 0, n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	*len = 0;
	if (fd < 0)
		return NULL;
	for (;;) {
		ssize_t r;

		if (n == size) {
			size = size ? size * 2 : 65536;
			buf = realloc(buf, size);
			ck_assert_ptr_nonnull(buf);
		}
		r = read(fd, buf + n, size - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*len = n;
	return buf;
}

static size_t scan_file(const char *path)
{
	size_t len, n;
	char *buf = slurp(path, &len);

	if (!buf)
		return 0;
	n = scan(path, buf, len);
	free(buf);
	return n;
}

static bool is_store_file(const char *path)
{
	size_t n = strlen(path);

	return strstr(path, "/credentials/") &&
	       ((n > 5 && strcmp(path + n - 5, ".json") == 0) ||
		(n > 9 && strcmp(path + n - 9, ".json.bak") == 0));
}

/* Scans every regular file below path except the credential store's; counts files. */
static void scan_tree(const char *path, size_t *files, size_t *skipped)
{
	DIR *d = opendir(path);
	struct dirent *e;

	ck_assert_msg(d, "opendir %s: %s", path, strerror(errno));
	while ((e = readdir(d))) {
		char p[PATH_MAX];
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		ck_assert_int_eq(lstat(p, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			scan_tree(p, files, skipped);
		} else if (S_ISREG(st.st_mode)) {
			if (is_store_file(p)) {
				ck_assert_msg((st.st_mode & 07777) == 0600, "%s has mode %04o", p,
					      (unsigned)(st.st_mode & 07777));
				(*skipped)++;
				continue;
			}
			hits += scan_file(p);
			(*files)++;
		}
	}
	closedir(d);
}

static void scan_proc(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	hits += scan_file(path);
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	hits += scan_file(path);
}

static void scan_status(void)
{
	const char *const plain[] = { fx_env("GW_CTL"), "status", "--socket", fx_path("control"),
				      NULL };
	const char *const json[] = { fx_env("GW_CTL"), "status", "--json", "--socket",
				     fx_path("control"), NULL };
	char *out = NULL, *err = NULL;
	int st;

	st = fx_run(plain, &out, &err, 20000);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sensorgwctl status: %s",
		      err ? err : "");
	hits += scan("sensorgwctl status", out, strlen(out));
	hits += scan("sensorgwctl status (stderr)", err, strlen(err));
	free(out);
	free(err);
	out = err = NULL;
	st = fx_run(json, &out, &err, 20000);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sensorgwctl status --json: %s",
		      err ? err : "");
	hits += scan("sensorgwctl status --json", out, strlen(out));
	free(out);
	free(err);
}

static void random_canary(char *buf, size_t size, const char *tag)
{
	uint64_t rng = (uint64_t)fx_now_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)buf;
	size_t n = (size_t)snprintf(buf, size, "CANARY%s", tag);

	for (int i = 0; i < 20 && n + 1 < size; i++)
		buf[n++] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			[fx_rand_below(&rng, 62)];
	buf[n] = '\0';
}

static bool has_core(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool found = false;

	if (!d)
		return false;
	while ((e = readdir(d)))
		if (strncmp(e->d_name, "core", 4) == 0)
			found = true;
	closedir(d);
	return found;
}

static void write_lines(struct fx_pty *n1, int from, int count)
{
	for (int i = from; i < from + count; i++) {
		char line[64];

		snprintf(line, sizeof(line), "MQ2=%d,MQ135=%d\r\n", 30 + i, 90 + i);
		cl_write_line(n1, line);
		fx_sleep_ms(20);
	}
}

START_TEST(test_secret_canary)
{
	char products[2048], *conf, *full, *log_all = NULL;
	size_t log_all_len = 0;
	struct fx_pty n1;
	const char *at;
	size_t files = 0, skipped = 0;
	json_t *dev;
	int st;

	/* the MQTT password: the fixture's random one (its passwd file has only the hash) */
	fx_broker_start();
	snprintf(secrets[0], sizeof(secrets[0]), "%s", fx_mqtt_password());
	ck_assert_uint_ge(strlen(secrets[0]), 16);
	random_canary(secrets[1], sizeof(secrets[1]), "PS");
	snprintf(products, sizeof(products),
		 "{\"products\": [{\"productKey\": \"" CL_PK "\", \"productSecret\": \"%s\", "
		 "\"dynamicRegistration\": true, \"registrationFree\": false, \"allowTcp\": false, "
		 "\"devices\": [\"" CL_DN "\"]}]}",
		 secrets[1]);
	json_decref(cl_launch("aliyun_cloud.py", products));

	conf = cl_register_config(); /* writes product.secret with CL_PS: replaced below */
	fx_write_file(fx_path("product.secret"), secrets[1], 0600);
	/* cl_aliyun_config() names the control socket fx_path("control") */
	ck_assert_ptr_nonnull(strstr(conf, "control_socket = "));
	ck_assert_int_gt(asprintf(&full,
				  "%s\n[uplink local]\n"
				  "type = mqtt\n"
				  "host = localhost\n"
				  "port = %d\n"
				  "ca_file = %s\n"
				  "username = " FX_MQTT_USER "\n"
				  "password_file = %s\n"
				  "topic = sensorgw/{device}/{kind}\n"
				  "reconnect_min_ms = 200\n"
				  "reconnect_max_ms = 1000\n",
				  conf, fx_broker_port(), fx_path("broker/ca.crt"),
				  fx_path("mqtt.pass")), 0);
	fx_subscriber_start("sensorgw/#");
	fx_pty_new(&n1, "tty-n1");

	/* run 1: registration over HTTPS, traffic, a broker restart */
	fx_daemon_start(full);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), 10000));
	write_lines(&n1, 0, 5);
	{
		const char *const online[] = { "uplink ali: ", "device " CL_DN ": online", NULL };

		ck_assert_msg(fx_daemon_wait_log_line(online, 20000), "no registration");
	}
	ck_assert(fx_subscriber_wait_count(5, 20000));
	dev = cl_ctl("device", cl_dev_args(CL_DN));
	at = json_string_value(json_object_get(dev, "deviceSecret"));
	snprintf(secrets[2], sizeof(secrets[2]), "%s", at ? at : "");
	json_decref(dev);
	ck_assert_msg(strlen(secrets[2]) >= 16, "the cloud issued no DeviceSecret");
	scan_proc(fx_daemon_pid());
	scan_status();

	fx_subscriber_stop();
	fx_broker_stop();
	{
		const char *const lost[] = { "uplink local: ", "reconnecting in", NULL };

		ck_assert(fx_daemon_wait_log_line(lost, 20000));
	}
	fx_broker_relaunch();
	fx_subscriber_start("sensorgw/#");
	write_lines(&n1, 5, 5);
	ck_assert_msg(fx_subscriber_wait_count(1, 20000), "nothing after the broker restart");
	scan_proc(fx_daemon_pid());
	st = fx_daemon_stop(NULL);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "run 1 exit status 0x%x", st);
	log_all = slurp(fx_path("daemon.log"), &log_all_len);
	hits += scan("daemon stdout/stderr (run 1)", log_all, log_all_len);
	free(log_all);

	/* run 2: the stored DeviceSecret read back, both sessions opened again */
	fx_daemon_start(full);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), 10000));
	write_lines(&n1, 10, 5);
	{
		const char *const online[] = { "uplink ali: ", "device " CL_DN ": online", NULL };

		ck_assert_msg(fx_daemon_wait_log_line(online, 20000), "not online after a restart");
	}
	ck_assert_int_eq(cl_device_field(CL_DN, "registerCount"), 1);
	scan_proc(fx_daemon_pid());
	scan_status();
	fx_daemon_signal(SIGUSR1); /* the counters, at debug level */
	fx_sleep_ms(300);
	st = fx_daemon_stop(NULL);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "run 2 exit status 0x%x", st);
	log_all = slurp(fx_path("daemon.log"), &log_all_len);
	ck_assert_ptr_nonnull(strstr(log_all, "debug"));
	hits += scan("daemon stdout/stderr (run 2)", log_all, log_all_len);
	free(log_all);

	scan_tree(fx_path("state"), &files, &skipped);
	ck_assert_msg(!has_core(fx_dir()) && !has_core(fx_path("state")) && !has_core("."),
		      "a core file appeared");

	/* the grep works: the files that must hold the secrets do */
	{
		size_t before = hits, got;

		quiet = true;
		got = scan_file(fx_path("state/credentials/ali/" CL_DN ".json"));
		got += scan_file(fx_path("product.secret"));
		got += scan_file(fx_path("mqtt.pass"));
		ck_assert_msg(got == 3, "the canary grep found %zu of 3 known copies", got);
		quiet = false;
		hits = before;
		searched -= 3;
	}
	fprintf(stderr,
		"Secret canary: %zu hits for %d secrets (MQTT password, ProductSecret, DeviceSecret) "
		"in %zu places searched (daemon output of 2 runs, %zu state files, /proc cmdline "
		"and environ, sensorgwctl status); %zu credential-store files not searched; no "
		"core file\n",
		hits, N_SECRETS, searched, files, skipped);
	ck_assert_uint_eq(hits, 0);
	ck_assert_uint_ge(files, 2);
	free(conf);
	free(full);
	fx_pty_close(&n1);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("canary");
	TCase *tc = tcase_create("canary");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 200);
	tcase_add_test(tc, test_secret_canary);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cl_run(suite());
}
