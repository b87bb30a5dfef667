/* SPDX-License-Identifier: MIT */
/*
 * sensorgwctl status against the real daemon: a text and a binary node on ptys, a real
 * mosquitto, then the control socket's answer checked against docs/status.schema.json and
 * against what the test did (frames, a corrupted frame, the node's UID and firmware, records
 * acknowledged). Also the socket's refusals: unknown and oversized requests, a silent client,
 * another user, no daemon.
 */

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "sgw_node.h"

#define N_TEXT 20
#define BIN_ADDR 7

static const uint8_t bin_uid[12] = { 0x41, 0x00, 0x22, 0x00, 0x0a, 0x47, 0x38, 0x31,
				     0x34, 0x35, 0x36, 0x99 };

/* ---- talking to the daemon ---- */

static int connect_control(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx_path("control"));
	ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s",
		      strerror(errno));
	return fd;
}

/* Reads until the daemon closes (bounded); returns what came. */
static char *read_all(int fd, int timeout_ms)
{
	static char buf[65536];
	size_t len = 0;
	int64_t end = fx_mono_ms() + timeout_ms;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int left = (int)(end - fx_mono_ms());

		ck_assert_msg(left > 0, "the daemon did not close the connection in time");
		if (poll(&p, 1, left) <= 0)
			continue;
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

static const char *raw_request(const char *req, size_t len)
{
	int fd = connect_control();
	const char *out;

	ck_assert_int_eq(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
	out = read_all(fd, 5000);
	close(fd);
	return out;
}

static void write_frames(struct fx_pty *txt, struct fx_pty *bin)
{
	uint8_t out[SGW_MAX_WIRE];
	struct sgw_builder b;
	size_t n;

	for (int i = 0; i < N_TEXT; i++) {
		char line[64];
		int len = snprintf(line, sizeof(line), "temp=%d.5,hum=%d\r\n", 20 + i, 40 + i);

		fx_pty_write(txt, line, (size_t)len);
	}
	/* one corrupted line: counted as a checksum error, nothing published */
	fx_pty_write(txt, "temp=1.5*00\r\n", 13);
	n = fx_bin_hello(out, BIN_ADDR, 1, bin_uid, 3, "st-2.4.1");
	fx_pty_write(bin, out, n);
	sgw_begin(&b, SGW_TYPE_TELEMETRY, BIN_ADDR, 2);
	sgw_put_i32(&b, "MQ2", 321);
	n = sgw_finish(&b, out, sizeof(out));
	ck_assert(n > 0);
	fx_pty_write(bin, out, n);
}

static const json_t *find(const json_t *arr, const char *key, const char *value)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
		if (json_string_value(json_object_get(v, key)) &&
		    !strcmp(json_string_value(json_object_get(v, key)), value))
			return v;
	ck_abort_msg("no entry with %s = %s", key, value);
	return NULL;
}

static json_int_t num(const json_t *o, const char *key)
{
	ck_assert_msg(json_is_integer(json_object_get(o, key)), "%s is not an integer", key);
	return json_integer_value(json_object_get(o, key));
}

START_TEST(test_status)
{
	struct fx_pty txt, bin;
	json_t *st = NULL;
	const json_t *port, *node, *up;
	char *conf, uid[25];
	struct stat sb;

	fx_broker_start();
	fx_subscriber_start("sensorgw/#");
	fx_pty_new(&txt, "tty-txt");
	fx_pty_new(&bin, "tty-bin");
	conf = fx_config(fx_path("broker/ca.crt"), NULL);
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&txt, fx_daemon_pid(), FX_WAIT_MS));
	ck_assert(fx_pty_wait_opened(&bin, fx_daemon_pid(), FX_WAIT_MS));
	ck_assert(fx_daemon_wait_connected(FX_WAIT_MS));
	/* the control socket is bound just before "started", after the ports opened */
	ck_assert(fx_daemon_wait_started(FX_WAIT_MS));

	/* a fresh spool (one segment, its 32-byte header, no record) says it is empty, at
	 * start-up and in the table, rather than "records 1..1" or "records 1..0" */
	ck_assert(fx_daemon_log_contains(": empty; the next record is 1"));
	ck_assert(!fx_daemon_log_contains("records 1..1"));
	{
		const char *const argv[] = { fx_env("GW_CTL"), "status", "--socket",
			fx_path("control"), NULL };
		char *out = NULL, *err = NULL;
		int rc = fx_run(argv, &out, &err, 10000);

		ck_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
		ck_assert_msg(strstr(out, "spool: empty, the next record is 1; 32 bytes in 1 "
				      "segment(s)"), "%s", out);
		ck_assert_msg(!strstr(out, "records 1.."), "%s", out);
		free(out);
		free(err);
	}

	/* the socket: owner-only */
	ck_assert_int_eq(lstat(fx_path("control"), &sb), 0);
	ck_assert(S_ISSOCK(sb.st_mode));
	ck_assert_int_eq(sb.st_mode & 0777, 0600);

	write_frames(&txt, &bin);
	ck_assert(fx_subscriber_wait_count(N_TEXT + 1, FX_WAIT_MS));

	/* the counters catch up with the acknowledgements within a few tries */
	for (int i = 0; i < 50; i++) {
		json_decref(st);
		st = fx_status_json();
		up = find(json_object_get(st, "uplinks"), "name", "local");
		if (num(up, "acked") == N_TEXT + 1 && num(up, "queued") == 0)
			break;
		fx_sleep_ms(100);
	}
	fx_check_status_schema(st);
	ck_assert(json_is_true(json_object_get(st, "ok")));
	ck_assert_int_eq(num(st, "pid"), fx_daemon_pid());
	ck_assert_str_eq(json_string_value(json_object_get(st, "state")), "running");
	ck_assert_int_eq(num(st, "records"), N_TEXT + 1);

	port = find(json_object_get(st, "ports"), "name", "txt");
	ck_assert_str_eq(json_string_value(json_object_get(port, "state")), "open");
	ck_assert_int_eq(num(port, "frames"), N_TEXT);
	ck_assert_int_eq(num(port, "crc_errors"), 1);
	ck_assert_int_eq(num(port, "bad_frames"), 1);
	port = find(json_object_get(st, "ports"), "name", "bin");
	ck_assert_int_eq(num(port, "frames"), 2);

	for (int i = 0; i < 12; i++)
		snprintf(uid + 2 * i, 3, "%02x", bin_uid[i]);
	node = find(json_object_get(st, "nodes"), "uid", uid);
	ck_assert_str_eq(json_string_value(json_object_get(node, "firmware")), "st-2.4.1");
	ck_assert_int_eq(num(node, "addr"), BIN_ADDR);
	ck_assert_int_eq(num(node, "boot"), 3);
	ck_assert_int_eq(num(node, "frames"), 1);
	ck_assert_int_le(num(st, "time_ms") - num(node, "last_seen_ms"), 60000);
	ck_assert_int_eq(json_array_size(json_object_get(st, "nodes")), 2);

	up = find(json_object_get(st, "uplinks"), "name", "local");
	ck_assert_str_eq(json_string_value(json_object_get(up, "state")), "online");
	ck_assert_int_eq(num(up, "acked"), N_TEXT + 1);
	ck_assert_int_eq(num(up, "queued"), 0);
	ck_assert_int_eq(num(up, "backlog_bytes"), 0);
	ck_assert_int_eq(num(json_object_get(st, "spool"), "appended"), N_TEXT + 1);
	/* the conservation law, both sides */
	ck_assert_int_eq(num(json_object_get(up, "law"), "produced"), N_TEXT + 1);
	ck_assert_int_eq(num(json_object_get(up, "law"), "accounted"), N_TEXT + 1);
	ck_assert(json_is_true(json_object_get(json_object_get(up, "law"), "exact")));

	/* the broker goes away: the uplink says so, with the reason, and the backlog grows */
	fx_broker_stop();
	fx_pty_write(&txt, "temp=99.5\r\n", 11);
	for (int i = 0; i < 100; i++) {
		json_decref(st);
		st = fx_status_json();
		up = find(json_object_get(st, "uplinks"), "name", "local");
		if (num(up, "queued") == 1 && json_is_string(json_object_get(up, "last_error")))
			break;
		fx_sleep_ms(100);
	}
	fx_check_status_schema(st);
	ck_assert_str_eq(json_string_value(json_object_get(up, "state")), "offline");
	ck_assert_int_eq(num(up, "queued"), 1);
	ck_assert_int_gt(num(up, "backlog_bytes"), 0);
	ck_assert_int_eq(num(json_object_get(up, "law"), "produced"), N_TEXT + 2);
	ck_assert(json_is_true(json_object_get(json_object_get(up, "law"), "exact")));
	ck_assert(json_is_string(json_object_get(up, "last_error")));

	/* the table form says the same */
	{
		const char *const argv[] = { fx_env("GW_CTL"), "status", "--socket",
			fx_path("control"), NULL };
		char *out = NULL, *err = NULL;
		int rc = fx_run(argv, &out, &err, 10000);

		ck_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
		ck_assert_msg(strstr(out, "local") && strstr(out, "offline") &&
			      strstr(out, "st-2.4.1") && strstr(out, "UPLINK"), "%s", out);
		ck_assert_msg(strstr(out, "spool: records 1..22, "), "%s", out);
		free(out);
		free(err);
	}
	json_decref(st);
	ck_assert_int_eq(fx_daemon_stop(NULL), 0);
	/* the socket goes with the daemon */
	ck_assert_int_ne(lstat(fx_path("control"), &sb), 0);
	free(conf);
	fx_pty_close(&txt);
	fx_pty_close(&bin);
}
END_TEST

START_TEST(test_refusals)
{
	struct fx_pty txt, bin;
	char big[400];
	char *conf;
	const char *out;
	int fd;

	fx_broker_start();
	fx_pty_new(&txt, "tty-txt");
	fx_pty_new(&bin, "tty-bin");
	conf = fx_config(fx_path("broker/ca.crt"), NULL);
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&txt, fx_daemon_pid(), FX_WAIT_MS));
	/* the control socket is bound just before "started", after the ports opened */
	ck_assert(fx_daemon_wait_started(FX_WAIT_MS));

	out = raw_request("reboot\n", 7);
	ck_assert_msg(strstr(out, "\"ok\":false") && strstr(out, "unknown request 'reboot'"),
		      "%s", out);
	out = raw_request("status now\n", 11);
	ck_assert_msg(strstr(out, "takes no argument"), "%s", out);
	out = raw_request("version\n", 8);
	ck_assert_msg(strstr(out, "\"version\":") && strstr(out, "\"ok\":true"), "%s", out);
	memset(big, 's', sizeof(big));
	out = raw_request(big, sizeof(big));
	ck_assert_msg(strstr(out, "longer than"), "%s", out);

	/* a client that says nothing is dropped; the daemon goes on answering others */
	fd = connect_control();
	out = read_all(fd, 10000);
	ck_assert_str_eq(out, "");
	close(fd);
	out = raw_request("status\n", 7);
	ck_assert_msg(strstr(out, "\"ok\":true"), "%s", out);

	/* another user cannot even connect: the socket is 0600 */
	if (getuid() == 0) {
		pid_t pid = fork();
		int status;

		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			struct sockaddr_un sa = { .sun_family = AF_UNIX };
			int s;

			if (setgid(65534) < 0 || setuid(65534) < 0)
				_exit(3);
			s = socket(AF_UNIX, SOCK_STREAM, 0);
			snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx_path("control"));
			_exit(connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 1 :
			      errno == EACCES ? 0 : 2);
		}
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "another user could connect (or the check failed: %d)",
			      WEXITSTATUS(status));
	} else {
		fprintf(stderr, "test-status: not root, so the other-user check ran as a "
				"connect of our own user only\n");
	}
	ck_assert_int_eq(fx_daemon_stop(NULL), 0);

	/* no daemon: a clear error and exit 1 */
	{
		const char *const argv[] = { fx_env("GW_CTL"), "status", "--socket",
			fx_path("control"), NULL };
		char *o = NULL, *err = NULL;
		int rc = fx_run(argv, &o, &err, 10000);

		ck_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 1);
		ck_assert_msg(strstr(err, "is it running?"), "%s", err);
		free(o);
		free(err);
	}
	free(conf);
	fx_pty_close(&txt);
	fx_pty_close(&bin);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("status");
	TCase *tc = tcase_create("status");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_status);
	tcase_add_test(tc, test_refusals);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
