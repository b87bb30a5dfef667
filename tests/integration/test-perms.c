/* SPDX-License-Identifier: MIT */
/*
 * The permission matrix (issue 8, design reliability.md §4.5), with the real sensorgwd.
 *
 * Files the configuration names and the configuration itself, through `--check-config` and a
 * plain start (both must refuse an unsafe file with "FILE:LINE: key: PATH ..." and exit 78,
 * and accept a safe one): password_file, product_secret_file, key_file (secrets: regular,
 * owned by root or the daemon's user, no group/other bit), ca_file and the configuration
 * (regular, same owners, not group/other-writable). A symbolic link is judged by its target.
 *
 * The credential store, through a running daemon with one aliyun uplink per case: the
 * DeviceSecret file at 0640, 0644, owned by another user, a symbolic link, a FIFO must be
 * refused with a log line naming the file while the 0600 one logs in to the test cloud;
 * a store directory that is 0755, another user's, or a symbolic link stops the start.
 *
 * Other-owner cases need root (chown). They are never skipped silently: without root the test
 * fails after the rest of the matrix has run, saying what was not exercised (CI runs as root).
 *
 * Second test: everything the daemon creates (state directory, spool segments, cursors,
 * credential files, the control socket) is 0600 in 0700 directories, even under umask 000.
 */

#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
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
#include "gw/credstore.h"

#define NOBODY 65534

enum change {
	MODE,        /* chmod to mode */
	OWNER,       /* chown to nobody (root only) */
	LINK,        /* a symbolic link to a copy at mode */
	FIFO,        /* a FIFO instead of the file */
};

struct pcase {
	enum change change;
	unsigned mode;
	bool unsafe;
};

static struct {
	int unsafe, refused, safe, accepted, not_exercised;
} tally;

/* ---- files the configuration names ---- */

struct target {
	const char *key;  /* NULL: the configuration itself */
	const char *name; /* file name in the test directory */
	unsigned line;    /* of its key in the configuration */
	bool secret;
};

static const struct target targets[] = {
	{ NULL, "perm.conf", 0, false },
	{ "password_file", "mqtt.pw", 13, true },
	{ "product_secret_file", "product.secret", 18, true },
	{ "key_file", "client.key", 11, true },
	{ "ca_file", "ca.crt", 9, false },
};

static const struct pcase secret_cases[] = {
	{ MODE, 0600, false }, { MODE, 0400, false }, { MODE, 0640, true },
	{ MODE, 0644, true },  { MODE, 0604, true },  { OWNER, 0, true },
	{ LINK, 0600, false }, { LINK, 0644, true },  { FIFO, 0, true },
};

static const struct pcase public_cases[] = {
	{ MODE, 0600, false }, { MODE, 0640, false }, { MODE, 0644, false },
	{ MODE, 0664, true },  { MODE, 0666, true },  { MODE, 0646, true },
	{ OWNER, 0, true },    { LINK, 0644, false }, { LINK, 0666, true },
	{ FIFO, 0, true },
};

static void write_conf(void)
{
	char *c = NULL;

	ck_assert_int_gt(asprintf(&c,
				  "[gateway]\n"                          /* 1 */
				  "state_dir = %s/state\n"               /* 2 */
				  "[port n1]\n"                          /* 3 */
				  "path = %s/tty-n1\n"                   /* 4 */
				  "[uplink m]\n"                         /* 5 */
				  "type = mqtt\n"                        /* 6 */
				  "host = localhost\n"                   /* 7 */
				  "tls = yes\n"                          /* 8 */
				  "ca_file = %s/ca.crt\n"                /* 9 */
				  "cert_file = %s/client.crt\n"          /* 10 */
				  "key_file = %s/client.key\n"           /* 11 */
				  "username = gw\n"                      /* 12 */
				  "password_file = %s/mqtt.pw\n"         /* 13 */
				  "[uplink a]\n"                         /* 14 */
				  "type = aliyun\n"                      /* 15 */
				  "product_key = " CL_PK "\n"            /* 16 */
				  "auth = register\n"                    /* 17 */
				  "product_secret_file = %s/product.secret\n" /* 18 */
				  "region = cn-shanghai\n"               /* 19 */
				  "ca_file = %s/ca.crt\n",               /* 20 */
				  fx_dir(), fx_dir(), fx_dir(), fx_dir(), fx_dir(), fx_dir(),
				  fx_dir(), fx_dir()), 0);
	fx_write_file(fx_path("perm.conf"), c, 0600);
	free(c);
}

/* Every file of the matrix, fresh and safe. */
static void reset_files(void)
{
	const char *names[] = { "perm.conf", "mqtt.pw", "product.secret", "client.key", "ca.crt",
				"client.crt", "perm.conf.target", "mqtt.pw.target",
				"product.secret.target", "client.key.target", "ca.crt.target" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		(void)unlink(fx_path(names[i]));
	write_conf();
	fx_write_secret(fx_path("mqtt.pw"), fx_secret("mqtt-other"));
	fx_write_secret(fx_path("product.secret"), CL_PS);
	fx_write_file(fx_path("client.key"), "not really a key\n", 0600);
	fx_write_file(fx_path("ca.crt"), "not really a certificate\n", 0644);
	fx_write_file(fx_path("client.crt"), "not really a certificate\n", 0644);
}

/* Applies c to path; false when it cannot be made here (another owner without root). */
static bool apply(const char *path, const struct pcase *c)
{
	char target[PATH_MAX];

	switch (c->change) {
	case MODE:
		ck_assert_int_eq(chmod(path, c->mode), 0);
		return true;
	case OWNER:
		if (geteuid() != 0)
			return false;
		ck_assert_int_eq(chown(path, NOBODY, NOBODY), 0);
		return true;
	case LINK:
		snprintf(target, sizeof(target), "%s.target", path);
		ck_assert_int_eq(rename(path, target), 0);
		ck_assert_int_eq(chmod(target, c->mode), 0);
		ck_assert_int_eq(symlink(target, path), 0);
		return true;
	case FIFO:
		ck_assert_int_eq(unlink(path), 0);
		ck_assert_int_eq(mkfifo(path, 0600), 0);
		return true;
	}
	return false;
}

static const char *describe(const struct pcase *c, char *buf, size_t size)
{
	switch (c->change) {
	case MODE:
		snprintf(buf, size, "mode %04o", c->mode);
		break;
	case OWNER:
		snprintf(buf, size, "owned by uid %d", NOBODY);
		break;
	case LINK:
		snprintf(buf, size, "symlink to a %04o file", c->mode);
		break;
	case FIFO:
		snprintf(buf, size, "FIFO");
		break;
	}
	return buf;
}

/* Runs sensorgwd with the extra arguments; returns its exit code, *err its stderr. */
static int run_daemon(const char *mode_arg, const char *conf, char **err)
{
	const char *const check[] = { fx_env("GW_SENSORGWD"), "--check-config", "-c", conf, NULL };
	const char *const start[] = { fx_env("GW_SENSORGWD"), "-c", conf, NULL };
	char *out = NULL;
	int st = fx_run(mode_arg ? check : start, &out, err, 20000);

	free(out);

	ck_assert_msg(WIFEXITED(st), "sensorgwd ended by signal (status 0x%x)", st);
	return WEXITSTATUS(st);
}

static void config_case(const struct target *t, const struct pcase *c)
{
	char path[1024], conf[1024], expect[PATH_MAX], what[64];
	bool refused_both = true;

	reset_files();
	snprintf(path, sizeof(path), "%s", fx_path(t->name));
	snprintf(conf, sizeof(conf), "%s", fx_path("perm.conf"));
	describe(c, what, sizeof(what));
	if (c->unsafe)
		tally.unsafe++;
	else
		tally.safe++;
	if (!apply(path, c)) {
		fprintf(stderr, "perms: %-20s %-24s NOT EXERCISED (needs root)\n",
			t->key ? t->key : "configuration", what);
		tally.not_exercised++;
		return;
	}
	if (t->key)
		snprintf(expect, sizeof(expect), "%s:%u: %s: %s ", conf, t->line, t->key, path);
	else
		snprintf(expect, sizeof(expect), "%s:0: this file ", conf);

	for (int pass = 0; pass < (c->unsafe ? 2 : 1); pass++) {
		char *err = NULL;
		int rc = run_daemon(pass == 0 ? "check" : NULL, conf, &err);
		bool said = err && strstr(err, expect);

		if (c->unsafe) {
			if (rc != 78 || !said) {
				refused_both = false;
				fprintf(stderr, "perms: %s %s %s: exit %d, expected 78 and '%s'; "
					"stderr:\n%s\n", t->key ? t->key : "configuration", what,
					pass == 0 ? "--check-config" : "start", rc, expect,
					err ? err : "");
			}
		} else if (rc != 0) {
			fprintf(stderr, "perms: %s %s: --check-config exit %d; stderr:\n%s\n",
				t->key ? t->key : "configuration", what, rc, err ? err : "");
			free(err);
			fprintf(stderr, "perms: %-20s %-24s REFUSED (safe)\n",
				t->key ? t->key : "configuration", what);
			return;
		}
		free(err);
	}
	if (c->unsafe && refused_both)
		tally.refused++;
	if (!c->unsafe)
		tally.accepted++;
	fprintf(stderr, "perms: %-20s %-24s %s\n", t->key ? t->key : "configuration", what,
		c->unsafe ? (refused_both ? "refused (check-config and start)" : "ACCEPTED")
			  : "accepted");
}

/* ---- the credential store ---- */

static const struct pcase store_cases[] = {
	{ MODE, 0600, false }, { MODE, 0640, true }, { MODE, 0644, true },
	{ OWNER, 0, true },    { LINK, 0600, true }, { FIFO, 0, true },
};
#define N_STORE (sizeof(store_cases) / sizeof(store_cases[0]))

static void provision(const char *dir)
{
	struct gw_cred cred = {
		.cloud = GW_CRED_CLOUD_ALIYUN,
		.kind = GW_CRED_DEVICE_SECRET,
		.product = (char *)CL_PK,
		.device = (char *)CL_DN,
		.secret = (char *)CL_DS,
	};
	char reason[GW_CREDSTORE_REASON_MAX];
	struct gw_credstore *store;

	ck_assert_msg(gw_credstore_open(dir, &store, reason, sizeof(reason)) == 0, "%s", reason);
	ck_assert_msg(gw_credstore_save(store, &cred, reason, sizeof(reason)) == 0, "%s", reason);
	gw_credstore_close(store);
}

static char *store_uplinks(size_t first, size_t n)
{
	char *out = NULL;

	for (size_t i = first; i < first + n; i++) {
		char *next = NULL;

		ck_assert_int_gt(asprintf(&next,
					  "%s\n[uplink c%zu]\n"
					  "type = aliyun\n"
					  "product_key = " CL_PK "\n"
					  "host = localhost\n"
					  "port = %d\n"
					  "ca_file = %s\n"
					  "keepalive = 30\n"
					  "reconnect_min_ms = 1000\n"
					  "reconnect_max_ms = 8000\n",
					  out ? out : "", i, cl_mqtts_port,
					  fx_path("broker/ca.crt")), 0);
		free(out);
		out = next;
	}
	return out;
}

static char *store_config(const char *state, const char *uplinks)
{
	char *c = NULL;

	ck_assert_int_gt(asprintf(&c,
				  "[gateway]\n"
				  "state_dir = %s\n"
				  "device_name = dev-{port}\n"
				  "\n"
				  "[port n1]\n"
				  "path = %s\n"
				  "framing = text\n"
				  "%s",
				  state, fx_path("tty-n1"), uplinks), 0);
	return c;
}

static size_t log_lines(const char *const needles[])
{
	char *text = fx_read_file(fx_path("daemon.log"));
	char *save = NULL;
	size_t n = 0;

	if (!text)
		return 0;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		bool all = true;

		for (size_t i = 0; needles[i] && all; i++)
			all = strstr(line, needles[i]) != NULL;
		n += all;
	}
	free(text);
	return n;
}

static void store_files(void)
{
	char *uplinks, *conf, what[64];
	bool applied[N_STORE];
	struct fx_pty n1;

	ck_assert_int_eq(mkdir(fx_path("state"), 0700), 0);
	ck_assert_int_eq(mkdir(fx_path("state/credentials"), 0700), 0);
	for (size_t i = 0; i < N_STORE; i++) {
		char dir[1024], file[PATH_MAX], name[64];

		snprintf(name, sizeof(name), "state/credentials/c%zu", i);
		snprintf(dir, sizeof(dir), "%s", fx_path(name));
		provision(dir);
		snprintf(file, sizeof(file), "%s/" CL_DN ".json", dir);
		applied[i] = apply(file, &store_cases[i]);
		/* the secret canary's search: the unsafe copies are the test's, not the daemon's */
		if (i > 0)
			fx_canary_exempt(dir);
	}
	uplinks = store_uplinks(0, N_STORE);
	conf = store_config(fx_path("state"), uplinks);
	free(uplinks);
	fx_pty_new(&n1, "tty-n1");
	fx_daemon_start(conf);
	free(conf);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), 10000));
	cl_write_line(&n1, "MQ2=30\r\n");
	{
		const char *const online[] = { "uplink c0: ", "device " CL_DN ": online", NULL };

		ck_assert_msg(fx_daemon_wait_log_line(online, 20000),
			      "the 0600 credential was not used");
	}
	for (size_t i = 1; i < N_STORE; i++) {
		char up[32], file[PATH_MAX];
		const char *const refused[] = { up, "cannot load its credential", file, NULL };
		const char *const online[] = { up, ": online", NULL };
		int64_t end = fx_mono_ms() + 10000 * fx_timeout_scale();

		describe(&store_cases[i], what, sizeof(what));
		tally.unsafe++;
		if (!applied[i]) {
			fprintf(stderr, "perms: %-20s %-24s NOT EXERCISED (needs root)\n",
				"credential file", what);
			tally.not_exercised++;
			continue;
		}
		snprintf(up, sizeof(up), "uplink c%zu: ", i);
		snprintf(file, sizeof(file), "credentials/c%zu/" CL_DN ".json", i);
		while (log_lines(refused) == 0 && fx_mono_ms() < end)
			fx_sleep_ms(50);
		if (log_lines(refused) > 0 && log_lines(online) == 0)
			tally.refused++;
		fprintf(stderr, "perms: %-20s %-24s %s\n", "credential file", what,
			log_lines(refused) > 0 && log_lines(online) == 0 ? "refused" : "ACCEPTED");
	}
	tally.safe++;
	tally.accepted++;
	fprintf(stderr, "perms: %-20s %-24s accepted (online)\n", "credential file", "mode 0600");
	ck_assert_msg(fx_daemon_running(), "the daemon died");
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);
	fx_pty_close(&n1);
}

/* A store directory that is unsafe stops the start with a line naming it. */
static void store_dir_case(int i, const char *what)
{
	char state[1024], dir[PATH_MAX], name[64], conf_path[PATH_MAX];
	char *uplinks, *conf, *err = NULL;
	bool applied = true;
	int rc;

	snprintf(name, sizeof(name), "dstate%d", i);
	snprintf(state, sizeof(state), "%s", fx_path(name));
	ck_assert_int_eq(mkdir(state, 0700), 0);
	snprintf(dir, sizeof(dir), "%s/credentials", state);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	snprintf(dir, sizeof(dir), "%s/credentials/c0", state);
	provision(dir);
	tally.unsafe++;
	if (i == 0) {
		ck_assert_int_eq(chmod(dir, 0755), 0);
	} else if (i == 1) {
		if (geteuid() == 0)
			ck_assert_int_eq(chown(dir, NOBODY, NOBODY), 0);
		else
			applied = false;
	} else {
		char moved[PATH_MAX];

		snprintf(moved, sizeof(moved), "%s/credentials/elsewhere", state);
		ck_assert_int_eq(rename(dir, moved), 0);
		ck_assert_int_eq(symlink(moved, dir), 0);
	}
	if (!applied) {
		fprintf(stderr, "perms: %-20s %-24s NOT EXERCISED (needs root)\n",
			"credential dir", what);
		tally.not_exercised++;
		return;
	}
	uplinks = store_uplinks(0, 1);
	conf = store_config(state, uplinks);
	free(uplinks);
	snprintf(conf_path, sizeof(conf_path), "%s.conf", state);
	fx_write_file(conf_path, conf, 0600);
	free(conf);
	rc = run_daemon(NULL, conf_path, &err);
	if (rc != 0 && err && strstr(err, "cannot open the credential store") && strstr(err, dir))
		tally.refused++;
	else
		fprintf(stderr, "perms: store dir %s: exit %d; stderr:\n%s\n", what, rc,
			err ? err : "");
	fprintf(stderr, "perms: %-20s %-24s %s\n", "credential dir", what,
		rc != 0 ? "refused at start" : "ACCEPTED");
	free(err);
}

START_TEST(test_permission_matrix)
{
	cl_start(fx_strf("{\"deviceName\": \"" CL_DN "\", \"deviceSecret\": \"%s\"}", CL_DS));
	for (size_t t = 0; t < sizeof(targets) / sizeof(targets[0]); t++) {
		const struct pcase *cases = targets[t].secret ? secret_cases : public_cases;
		size_t n = targets[t].secret ? sizeof(secret_cases) / sizeof(secret_cases[0])
					     : sizeof(public_cases) / sizeof(public_cases[0]);

		for (size_t i = 0; i < n; i++)
			config_case(&targets[t], &cases[i]);
	}
	store_files();
	store_dir_case(0, "mode 0755");
	store_dir_case(1, "owned by uid 65534");
	store_dir_case(2, "symlink");

	fprintf(stderr,
		"Permission matrix: %d of %d unsafe cases refused, %d of %d safe cases accepted"
		"%s\n",
		tally.refused, tally.unsafe - tally.not_exercised, tally.accepted, tally.safe,
		tally.not_exercised ? " (other-owner cases NOT exercised: not root)" : "");
	ck_assert_int_eq(tally.refused, tally.unsafe - tally.not_exercised);
	ck_assert_int_eq(tally.accepted, tally.safe);
	ck_assert_msg(tally.not_exercised == 0,
		      "%d other-owner cases need root (chown) and were not exercised; run as root "
		      "(CI does)", tally.not_exercised);
}
END_TEST

/* ---- what the daemon creates ---- */

struct walk {
	int files, dirs, bad;
};

static void walk(const char *path, struct walk *w)
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
			w->dirs++;
			if ((st.st_mode & 07777) != 0700) {
				fprintf(stderr, "created: %s is a directory of mode %04o\n", p,
					(unsigned)(st.st_mode & 07777));
				w->bad++;
			}
			walk(p, w);
		} else {
			w->files++;
			if (!S_ISREG(st.st_mode) || (st.st_mode & 07777) != 0600) {
				fprintf(stderr, "created: %s has mode %06o\n", p,
					(unsigned)st.st_mode);
				w->bad++;
			}
		}
	}
	closedir(d);
}

START_TEST(test_created_modes)
{
	char *conf, *with_socket, *full;
	struct fx_pty n1;
	struct walk w = { 0 };
	struct stat st;
	mode_t old;

	fx_broker_start();
	cl_start("\"" CL_DN "\"");
	conf = cl_register_config_via("https");
	ck_assert_ptr_nonnull(strstr(conf, "device_name = dev-{port}\n"));
	{
		/* the socket in a directory the daemon creates: replaces cl_aliyun_config()'s */
		char line[512];
		const char *at;

		snprintf(line, sizeof(line), "control_socket = %s\n", fx_path("control"));
		at = strstr(conf, line);
		ck_assert_ptr_nonnull(at);
		ck_assert_int_gt(asprintf(&with_socket, "%.*scontrol_socket = %s\n%s",
					  (int)(at - conf), conf, fx_path("run/control"),
					  at + strlen(line)), 0);
	}
	ck_assert_int_gt(asprintf(&full,
				  "%s\n[uplink local]\n"
				  "type = mqtt\n"
				  "host = localhost\n"
				  "port = %d\n"
				  "ca_file = %s\n"
				  "username = " FX_MQTT_USER "\n"
				  "password_file = %s\n"
				  "topic = sensorgw/{device}/{kind}\n",
				  with_socket, fx_broker_port(), fx_path("broker/ca.crt"),
				  fx_path("mqtt.pass")), 0);
	/* the daemon makes its state directory itself: cl_aliyun_config() may not have */
	(void)rmdir(fx_path("state"));
	fx_subscriber_start("sensorgw/#");
	fx_pty_new(&n1, "tty-n1");
	old = umask(0);
	fx_daemon_start(full);
	umask(old);
	ck_assert(fx_pty_wait_opened(&n1, fx_daemon_pid(), 10000));
	for (int i = 0; i < 5; i++) {
		char line[64];

		snprintf(line, sizeof(line), "MQ2=%d\r\n", 30 + i);
		cl_write_line(&n1, line);
	}
	ck_assert_msg(fx_subscriber_wait_count(5, 20000), "the MQTT uplink delivered %zu of 5",
		      fx_subscriber_count());
	{
		const char *const online[] = { "uplink ali: ", "device " CL_DN ": online", NULL };

		ck_assert_msg(fx_daemon_wait_log_line(online, 20000), "no registration");
	}
	ck_assert_int_eq(lstat(fx_path("run/control"), &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_msg((st.st_mode & 07777) == 0600, "control socket mode %04o",
		      (unsigned)(st.st_mode & 07777));
	ck_assert_int_eq(lstat(fx_path("run"), &st), 0);
	ck_assert_msg((st.st_mode & 07777) == 0700, "control socket directory mode %04o",
		      (unsigned)(st.st_mode & 07777));
	ck_assert_int_eq(WEXITSTATUS(fx_daemon_stop(NULL)), 0);

	ck_assert_int_eq(lstat(fx_path("state"), &st), 0);
	ck_assert_msg((st.st_mode & 07777) == 0700, "state directory mode %04o",
		      (unsigned)(st.st_mode & 07777));
	walk(fx_path("state"), &w);
	ck_assert(cl_file_exists(fx_path("state/credentials/ali/" CL_DN ".json")));
	fprintf(stderr, "Created under umask 000: %d files and %d directories below the state "
		"directory, control socket 0600: %d with another mode\n", w.files, w.dirs, w.bad);
	ck_assert_int_eq(w.bad, 0);
	ck_assert_int_ge(w.files, 3); /* a segment, the cursors, the credential */
	free(conf);
	free(with_socket);
	free(full);
	fx_pty_close(&n1);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("perms");
	TCase *tc = tcase_create("perms");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_permission_matrix);
	tcase_add_test(tc, test_created_modes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cl_run(suite());
}
