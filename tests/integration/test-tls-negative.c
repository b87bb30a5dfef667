/* SPDX-License-Identifier: MIT */
/*
 * TLS negatives (issue 8, design reliability.md §4.4): the daemon must refuse every server
 * certificate that does not chain to its ca_file or does not name the host it dialled, over
 * MQTT (libmosquitto) and over HTTPS (libcurl, Aliyun dynamic registration).
 *
 * The test makes its own PKI with the openssl CLI on top of the fixture's CA (broker/ca.crt,
 * which every uplink trusts): the fixture's server certificate (positive control), one issued
 * by an unrelated CA, one by a look-alike CA (the same subject CN as the real CA, another
 * key), an expired one, a not-yet-valid one, one for another host name only, and a
 * self-signed one.
 *
 * MQTT: one mosquitto with one TLS listener per case (anonymous, so only TLS decides), one
 * daemon with one mqtt uplink per listener (short backoffs). The observer is the broker's own
 * log: a client that got through the handshake shows up as "New client connected ... as ID".
 * Then the same listeners are dialled by the cloud drivers' own MQTT sessions: one daemon with
 * an aliyun uplink per bad case, one with a tencent uplink per bad case.
 * HTTPS: one aliyun uplink per case with register_via = https; the bad cases point their
 * register_url at tests/helpers/https_server.py serving the bad certificate (it logs every
 * request that gets through the handshake), the positive control at the loopback Aliyun test
 * cloud. A bad case is "accepted" when a request reached its server or a credential was
 * written. Every bad case must also leave a log line per failed attempt and be retried with
 * backoff, and the daemon must live through it all and exit 0.
 */

#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloud.h"
#include "fixture.h"
#include "gw/credstore.h"

#define N_CASES 7
/* the cloud uplinks of the MQTT phase: a product of each platform, one device */
#define NEG_TC_PID "CS0SLTKSYA"
#define NEG_TC_PSK fx_secret("tencent-psk")
#define STDBUF_BIN "/usr/bin/stdbuf"
#define MOSQUITTO_BIN "/usr/sbin/mosquitto"

static const struct tls_case {
	const char *what;
	const char *crt; /* in broker/ */
	const char *cause;       /* what the daemon's MQTT failure line says (ignoring case) */
	const char *https_cause; /* the same for HTTPS (libcurl names the check that failed) */
} cases[N_CASES] = {
	{ "right CA (positive control)", "server.crt", NULL, NULL },
	{ "wrong CA", "wrongca-server.crt", "verify failed (unable to get local issuer certificate)",
	  "unable to get local issuer certificate" },
	{ "look-alike CA (same CN, other key)", "lookalike-server.crt",
	  "verify failed (unable to get local issuer certificate)",
	  "unable to get local issuer certificate" },
	{ "expired", "expired.crt", "verify failed (certificate has expired)",
	  "certificate has expired" },
	{ "not yet valid", "notyet.crt", "verify failed (certificate is not yet valid)",
	  "certificate is not yet valid" },
	{ "hostname mismatch", "mismatch.crt",
	  "verify failed (the certificate does not name the host localhost)",
	  "no alternative certificate subject name matches target host name 'localhost'" },
	{ "self-signed", "selfsigned.crt", "verify failed (self-signed certificate)",
	  "signed certificate" },
};

/*
 * The bad certificates, next to the fixture's CA and server key. openssl ca (not x509 -req)
 * because only it sets arbitrary validity dates in OpenSSL 3.0.
 */
static const char pki_script[] =
	"set -e\n"
	"cd \"$1\"\n"
	"O=/usr/bin/openssl\n"
	"ec='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes'\n"
	"caext='-addext basicConstraints=critical,CA:TRUE -addext "
	"keyUsage=critical,keyCertSign,cRLSign'\n"
	"$O req -x509 $ec -days 2 -keyout lookalike.key -out lookalike.crt "
	"-subj '/CN=sensorgw test CA' $caext 2>/dev/null\n"
	"$O req -new -key server.key -out neg.csr -subj /CN=localhost\n"
	"printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n"
	"keyUsage=critical,digitalSignature,keyEncipherment\\nextendedKeyUsage=serverAuth\\n' "
	"> good.ext\n"
	"printf 'subjectAltName=DNS:other.example\\nbasicConstraints=CA:FALSE\\n"
	"keyUsage=critical,digitalSignature,keyEncipherment\\nextendedKeyUsage=serverAuth\\n' "
	"> other.ext\n"
	"mkdir -p newcerts; : > index.txt; echo 1000 > serial\n"
	"printf '[ca]\\ndefault_ca = d\\n[d]\\ndatabase = index.txt\\nnew_certs_dir = newcerts\\n"
	"serial = serial\\ndefault_md = sha256\\npolicy = p\\nunique_subject = no\\n"
	"[p]\\ncommonName = supplied\\n' > neg-ca.cnf\n"
	"sign() {\n"
	"  $O ca -batch -notext -config neg-ca.cnf -cert $1.crt -keyfile $1.key -in neg.csr "
	"-out $2 -extfile $3 -startdate $4 -enddate $5 2>/dev/null\n"
	"}\n"
	"now=$(date -u +%Y%m%d%H%M%SZ -d '-1 hour'); later=$(date -u +%Y%m%d%H%M%SZ -d '+2 days')\n"
	"sign wrongca wrongca-server.crt good.ext $now $later\n"
	"sign lookalike lookalike-server.crt good.ext $now $later\n"
	"sign ca expired.crt good.ext 20200101000000Z 20200201000000Z\n"
	"sign ca notyet.crt good.ext 20450101000000Z 20460101000000Z\n"
	"sign ca mismatch.crt other.ext $now $later\n"
	"$O req -x509 -key server.key -days 2 -out selfsigned.crt -subj /CN=localhost "
	"-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -addext extendedKeyUsage=serverAuth\n"
	/* the look-alike really has the real CA's subject, and the bad ones really fail */
	"[ \"$($O x509 -in lookalike.crt -noout -subject)\" = \"$($O x509 -in ca.crt -noout "
	"-subject)\" ]\n"
	"for c in wrongca-server lookalike-server expired notyet selfsigned; do\n"
	"  ! $O verify -CAfile ca.crt $c.crt >/dev/null 2>&1\n"
	"done\n"
	"$O verify -CAfile ca.crt -verify_hostname localhost server.crt >/dev/null\n"
	"! $O verify -CAfile ca.crt -verify_hostname localhost mismatch.crt >/dev/null 2>&1\n"
	/* test keys only: mosquitto reads them after dropping root privileges */
	"chmod 0644 *.key\n";

static void make_pki(void)
{
	const char *const argv[] = { "/bin/sh", "-c", pki_script, "mkpki", fx_path("broker"), NULL };
	char *err = NULL;
	int st;

	fx_make_certs();
	st = fx_run(argv, NULL, &err, 30000);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "making the test PKI failed: %s",
		      err ? err : "");
	free(err);
}

static size_t count_in_file(const char *path, const char *needle)
{
	char *text = fx_read_file(path);
	size_t n = 0;

	if (!text)
		return 0;
	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	free(text);
	return n;
}

static bool wait_in_file(const char *path, const char *needle, size_t n, int timeout_ms)
{
	int64_t end = fx_mono_ms() + timeout_ms;

	while (count_in_file(path, needle) < n) {
		if (fx_mono_ms() >= end)
			return false;
		fx_sleep_ms(50);
	}
	return true;
}

/* Daemon log lines that contain every needle (ignoring case). */
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
			all = strcasestr(line, needles[i]) != NULL;
		n += all;
	}
	free(text);
	return n;
}

/* Waits until every bad case i (1..N_CASES-1) has at least n log lines with needles plus
 * "uplink <prefix><i>:"; false at the deadline. */
static bool wait_bad_lines(const char *prefix, const char *what, size_t n, int timeout_ms)
{
	int64_t end = fx_mono_ms() + (int64_t)timeout_ms * fx_timeout_scale();

	for (;;) {
		bool all = true;

		for (int i = 1; i < N_CASES && all; i++) {
			char up[32];
			const char *const needles[] = { up, what, NULL };

			snprintf(up, sizeof(up), "uplink %s%d:", prefix, i);
			all = log_lines(needles) >= n;
		}
		if (all)
			return true;
		if (fx_mono_ms() >= end)
			return false;
		fx_sleep_ms(100);
	}
}

/* ---- MQTT: libmosquitto against one broker listener per case ---- */

struct mqtt_result {
	int accepted; /* bad cases that got through the handshake: mqtt uplinks */
	int cloud_accepted[2]; /* the same for the aliyun [0] and tencent [1] uplinks */
	bool positive;
};

/* A device credential for uplink NAME of a daemon with state_dir STATE (below fx_dir()). */
static void provision(const char *state, const char *name, bool tencent)
{
	struct gw_cred cred = {
		.cloud = tencent ? GW_CRED_CLOUD_TENCENT : GW_CRED_CLOUD_ALIYUN,
		.kind = tencent ? GW_CRED_PSK : GW_CRED_DEVICE_SECRET,
		.product = tencent ? (char *)NEG_TC_PID : (char *)CL_PK,
		.device = (char *)CL_DN,
		.secret = tencent ? NULL : (char *)CL_DS,
		.psk = tencent ? (char *)NEG_TC_PSK : NULL,
	};
	char reason[GW_CREDSTORE_REASON_MAX], dir[128];
	struct gw_credstore *store;

	snprintf(dir, sizeof(dir), "%s/credentials", state);
	(void)mkdir(fx_path(dir), 0700);
	snprintf(dir, sizeof(dir), "%s/credentials/%s", state, name);
	ck_assert_int_eq(gw_credstore_open(fx_path(dir), &store, reason, sizeof(reason)), 0);
	ck_assert_msg(gw_credstore_save(store, &cred, reason, sizeof(reason)) == 0, "%s", reason);
	gw_credstore_close(store);
}

/*
 * The cloud uplinks' own MQTT sessions (aliyun_uplink.c, tencent_uplink.c) against the same
 * bad listeners: a daemon with one Aliyun or Tencent uplink per bad case (at most 8 uplinks a
 * daemon, so one daemon per platform), each with a stored device credential. None may get a
 * session, and each failure must name the cause as the mqtt uplink's do.
 */
static void cloud_phase(struct fx_pty *n1, const int ports[], bool tencent,
			struct mqtt_result *res)
{
	const char *state = tencent ? "state-tencent" : "state-aliyun";
	const char *kind = tencent ? "tencent" : "aliyun";
	const char *prefix = tencent ? "t" : "a";
	char *dconf = NULL, *uplinks = NULL;

	ck_assert_int_eq(mkdir(fx_path(state), 0700), 0);
	for (int i = 1; i < N_CASES; i++) {
		char *next = NULL, name[16];

		snprintf(name, sizeof(name), "%s%d", prefix, i);
		provision(state, name, tencent);
		ck_assert_int_gt(asprintf(&next,
					  "%s\n[uplink %s]\n"
					  "type = %s\n"
					  "%s\n"
					  "host = localhost\n"
					  "port = %d\n"
					  "ca_file = %s\n"
					  "keepalive = 30\n"
					  "reconnect_min_ms = 200\n"
					  "reconnect_max_ms = 1000\n",
					  uplinks ? uplinks : "", name, kind,
					  tencent ? "product_id = " NEG_TC_PID : "product_key = " CL_PK,
					  ports[i], fx_path("broker/ca.crt")), 0);
		free(uplinks);
		uplinks = next;
	}
	ck_assert_int_gt(asprintf(&dconf,
				  "[gateway]\n"
				  "state_dir = %s\n"
				  "device_name = dev-{port}\n"
				  "\n"
				  "[port n1]\n"
				  "path = %s\n"
				  "framing = text\n"
				  "%s",
				  fx_path(state), fx_path("tty-n1"), uplinks), 0);
	free(uplinks);
	fx_daemon_start(dconf);
	free(dconf);
	ck_assert(fx_pty_wait_opened(n1, fx_daemon_pid(), 10000));
	cl_write_line(n1, "MQ2=30,MQ135=95\r\n");
	/* Tencent spaces a device's CONNECTs 5 s apart: two attempts are asked for */
	if (!wait_bad_lines(prefix, "TLS failure", 2, 30000)) {
		fx_dump_logs();
		ck_abort_msg("not every bad case of the %s uplinks logged 2 TLS failures", kind);
	}
	for (int i = 1; i < N_CASES; i++) {
		char up[32];
		const char *const needles[] = { up, "TLS failure", cases[i].cause, NULL };
		size_t got = count_in_file(fx_path("tlsneg-broker.log"),
					   tencent ? " as " NEG_TC_PID : " as " CL_PK);

		snprintf(up, sizeof(up), "uplink %s%d:", prefix, i);
		if (got) {
			fprintf(stderr, "MQTT %s (%s uplink): ACCEPTED (%zu sessions)\n",
				cases[i].what, kind, got);
			res->cloud_accepted[tencent]++;
		}
		ck_assert_msg(log_lines(needles) >= 2,
			      "MQTT %s: the %s uplink logged no line naming the cause '%s'",
			      cases[i].what, kind, cases[i].cause);
		fprintf(stderr, "MQTT %-36s refused by the %s uplink, %zu failed attempts logged\n",
			cases[i].what, kind, log_lines(needles));
	}
	ck_assert_msg(fx_daemon_running(), "the daemon died during the %s cases", kind);
	{
		int st = fx_daemon_stop(NULL);

		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "daemon exit status 0x%x", st);
	}
}

static void mqtt_phase(struct fx_pty *n1, struct mqtt_result *res)
{
	char conf[8192], *dconf = NULL, *uplinks = NULL;
	int ports[N_CASES];
	size_t len;
	pid_t broker;

	len = (size_t)snprintf(conf, sizeof(conf),
			       "per_listener_settings false\n"
			       "allow_anonymous true\n"
			       "persistence false\n"
			       "log_dest stdout\n"
			       "log_type all\n"
			       "connection_messages true\n");
	for (int i = 0; i < N_CASES; i++) {
		bool dup;

		do {
			ports[i] = fx_free_port();
			dup = false;
			for (int j = 0; j < i; j++)
				dup |= ports[j] == ports[i];
		} while (dup);
		len += (size_t)snprintf(conf + len, sizeof(conf) - len,
					"listener %d 127.0.0.1\n"
					"cafile %s/broker/ca.crt\n"
					"certfile %s/broker/%s\n"
					"keyfile %s/broker/server.key\n",
					ports[i], fx_dir(), fx_dir(), cases[i].crt, fx_dir());
		ck_assert(len < sizeof(conf));
	}
	fx_write_file(fx_path("broker/tlsneg.conf"), conf, 0644);
	{
		const char *const argv[] = { STDBUF_BIN, "-oL", MOSQUITTO_BIN, "-c",
					     fx_path("broker/tlsneg.conf"), NULL };

		broker = fx_spawn(argv, "tlsneg-broker.log");
	}
	ck_assert_msg(wait_in_file(fx_path("tlsneg-broker.log"), " running", 1, 10000),
		      "mosquitto with %d TLS listeners did not start", N_CASES);

	for (int i = 0; i < N_CASES; i++) {
		char *next = NULL;

		ck_assert_int_gt(asprintf(&next,
					  "%s\n[uplink m%d]\n"
					  "type = mqtt\n"
					  "host = localhost\n"
					  "port = %d\n"
					  "tls = yes\n"
					  "ca_file = %s\n"
					  "client_id = tlsneg-m%d\n"
					  "topic = tlsneg/m%d/{kind}\n"
					  "keepalive = 10\n"
					  "reconnect_min_ms = 200\n"
					  "reconnect_max_ms = 1000\n",
					  uplinks ? uplinks : "", i, ports[i],
					  fx_path("broker/ca.crt"), i, i), 0);
		free(uplinks);
		uplinks = next;
	}
	ck_assert_int_eq(mkdir(fx_path("state-mqtt"), 0700), 0);
	ck_assert_int_gt(asprintf(&dconf,
				  "[gateway]\n"
				  "state_dir = %s\n"
				  "device_name = dev-{port}\n"
				  "\n"
				  "[port n1]\n"
				  "path = %s\n"
				  "framing = text\n"
				  "%s",
				  fx_path("state-mqtt"), fx_path("tty-n1"), uplinks), 0);
	free(uplinks);
	fx_daemon_start(dconf);
	free(dconf);
	ck_assert(fx_pty_wait_opened(n1, fx_daemon_pid(), 10000));
	cl_write_line(n1, "MQ2=30,MQ135=95\r\n");

	res->positive = wait_in_file(fx_path("tlsneg-broker.log"),
				     "Received PUBLISH from tlsneg-m0 ", 1, 20000);
	/* each bad uplink failed, said why, and tried again (backoff 0.2 .. 1 s) */
	if (!wait_bad_lines("m", "TLS failure", 3, 20000)) {
		fx_dump_logs();
		ck_abort_msg("not every bad MQTT case logged 3 TLS failures");
	}
	for (int i = 1; i < N_CASES; i++) {
		char id[64], up[32];
		const char *const needles[] = { up, "TLS failure", cases[i].cause, "reconnecting in",
						NULL };
		size_t got;

		snprintf(id, sizeof(id), " as tlsneg-m%d ", i);
		snprintf(up, sizeof(up), "uplink m%d:", i);
		got = count_in_file(fx_path("tlsneg-broker.log"), id);
		if (got) {
			fprintf(stderr, "MQTT %s: ACCEPTED (%zu sessions)\n", cases[i].what, got);
			res->accepted++;
		}
		ck_assert_msg(log_lines(needles) >= 3, "MQTT %s: no line naming the cause '%s'",
			      cases[i].what, cases[i].cause);
		fprintf(stderr, "MQTT %-36s refused, %zu failed attempts logged\n", cases[i].what,
			log_lines(needles));
	}
	fprintf(stderr, "MQTT %-36s %s\n", cases[0].what,
		res->positive ? "connected and delivered" : "FAILED");
	ck_assert_msg(fx_daemon_running(), "the daemon died during the MQTT cases");
	{
		int st = fx_daemon_stop(NULL);

		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "daemon exit status 0x%x", st);
	}
	cloud_phase(n1, ports, false, res);
	cloud_phase(n1, ports, true, res);
	fx_child_stop(broker);
}

/* ---- HTTPS: libcurl (Aliyun registration) against one server per case ---- */

struct https_result {
	int accepted;
	bool positive;
};

static bool dir_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	bool empty = true;

	if (!d)
		return errno == ENOENT;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = false;
	closedir(d);
	return empty;
}

static int read_port(const char *portfile)
{
	int64_t end = fx_mono_ms() + 10000;

	for (;;) {
		char *t = fx_read_file(portfile);
		int port = t ? atoi(t) : 0;

		free(t);
		if (port > 0)
			return port;
		ck_assert_msg(fx_mono_ms() < end, "https_server.py wrote no port to %s", portfile);
		fx_sleep_ms(20);
	}
}

static void https_phase(struct fx_pty *n1, struct https_result *res)
{
	char *dconf = NULL, *uplinks = NULL, helper[4096];
	int ports[N_CASES];

	snprintf(helper, sizeof(helper), "%s/tests/helpers/https_server.py",
		 fx_env("GW_SOURCE_ROOT"));
	cl_start("\"" CL_DN "\"");
	ports[0] = cl_https_port;
	for (int i = 1; i < N_CASES; i++) {
		char crt[4096], key[4096], portfile[4096], logf[4096], name[32];

		snprintf(crt, sizeof(crt), "%s/broker/%s", fx_dir(), cases[i].crt);
		snprintf(key, sizeof(key), "%s/broker/server.key", fx_dir());
		snprintf(name, sizeof(name), "https-%d.port", i);
		snprintf(portfile, sizeof(portfile), "%s", fx_path(name));
		snprintf(name, sizeof(name), "https-%d.requests", i);
		snprintf(logf, sizeof(logf), "%s", fx_path(name));
		snprintf(name, sizeof(name), "https-%d.log", i);
		{
			const char *const argv[] = { "/usr/bin/python3", helper, "--cert", crt,
						     "--key", key, "--portfile", portfile, "--log",
						     logf, NULL };

			fx_spawn(argv, name);
		}
	}
	for (int i = 1; i < N_CASES; i++) {
		char name[32];

		snprintf(name, sizeof(name), "https-%d.port", i);
		ports[i] = read_port(fx_path(name));
	}
	fx_write_secret(fx_path("product.secret"), CL_PS);
	for (int i = 0; i < N_CASES; i++) {
		char *next = NULL;

		ck_assert_int_gt(asprintf(&next,
					  "%s\n[uplink h%d]\n"
					  "type = aliyun\n"
					  "product_key = " CL_PK "\n"
					  "host = localhost\n"
					  "port = %d\n"
					  "ca_file = %s\n"
					  "auth = register\n"
					  "product_secret_file = %s\n"
					  "register_via = https\n"
					  "register_url = https://localhost:%d/auth/register/device\n"
					  "keepalive = 30\n"
					  "reconnect_min_ms = 200\n"
					  "reconnect_max_ms = 1000\n",
					  uplinks ? uplinks : "", i, cl_mqtts_port,
					  fx_path("broker/ca.crt"), fx_path("product.secret"),
					  ports[i]), 0);
		free(uplinks);
		uplinks = next;
	}
	ck_assert_int_eq(mkdir(fx_path("state-https"), 0700), 0);
	ck_assert_int_gt(asprintf(&dconf,
				  "[gateway]\n"
				  "state_dir = %s\n"
				  "device_name = dev-{port}\n"
				  "\n"
				  "[port n1]\n"
				  "path = %s\n"
				  "framing = text\n"
				  "%s",
				  fx_path("state-https"), fx_path("tty-n1"), uplinks), 0);
	free(uplinks);
	fx_daemon_start(dconf);
	free(dconf);
	ck_assert(fx_pty_wait_opened(n1, fx_daemon_pid(), 10000));
	cl_write_line(n1, "MQ2=31,MQ135=96\r\n");

	{
		char cred[4096];
		int64_t end = fx_mono_ms() + 20000 * fx_timeout_scale();

		snprintf(cred, sizeof(cred), "%s", fx_path("state-https/credentials/h0/" CL_DN ".json"));
		while (!cl_file_exists(cred) && fx_mono_ms() < end)
			fx_sleep_ms(50);
		res->positive = cl_file_exists(cred) &&
				cl_count("https_register", NULL, NULL) >= 1;
	}
	if (!wait_bad_lines("h", "registration over HTTPS failed", 3, 20000)) {
		fx_dump_logs();
		ck_abort_msg("not every bad HTTPS case logged 3 failed attempts");
	}
	for (int i = 1; i < N_CASES; i++) {
		char name[64], cred[64], up[32];
		const char *const needles[] = { up, "registration over HTTPS failed",
						cases[i].https_cause, "no credential written", NULL };
		size_t requests;
		bool written;
		char dir[64];

		snprintf(name, sizeof(name), "https-%d.requests", i);
		requests = count_in_file(fx_path(name), "\"path\"");
		snprintf(cred, sizeof(cred), "state-https/credentials/h%d/" CL_DN ".json", i);
		snprintf(dir, sizeof(dir), "state-https/credentials/h%d", i);
		/* not even a needs-provisioning marker: a TLS failure is not a refusal */
		written = cl_file_exists(fx_path(cred)) || !dir_empty(fx_path(dir));
		snprintf(up, sizeof(up), "uplink h%d:", i);
		if (requests || written) {
			fprintf(stderr, "HTTPS %s: ACCEPTED (%zu requests, credential %s)\n",
				cases[i].what, requests, written ? "written" : "not written");
			res->accepted++;
		}
		ck_assert_msg(log_lines(needles) >= 3, "HTTPS %s: no line naming the cause '%s'",
			      cases[i].what, cases[i].https_cause);
		fprintf(stderr, "HTTPS %-36s refused, %zu failed attempts logged\n", cases[i].what,
			log_lines(needles));
	}
	fprintf(stderr, "HTTPS %-36s %s\n", cases[0].what,
		res->positive ? "registered, credential stored" : "FAILED");
	ck_assert_msg(fx_daemon_running(), "the daemon died during the HTTPS cases");
	{
		int st = fx_daemon_stop(NULL);

		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "daemon exit status 0x%x", st);
	}
}

START_TEST(test_tls_negatives)
{
	struct mqtt_result m = { 0 };
	struct https_result h = { 0 };
	struct fx_pty n1;
	int64_t t0 = fx_mono_ms();

	make_pki();
	fx_pty_new(&n1, "tty-n1");
	mqtt_phase(&n1, &m);
	https_phase(&n1, &h);
	fprintf(stderr,
		"TLS negatives: %d of %d accepted (MQTT: mqtt uplink %d, aliyun uplink %d, "
		"tencent uplink %d of %d each; HTTPS %d of %d), positive controls %d of 2 (%.1f s)\n",
		m.accepted + m.cloud_accepted[0] + m.cloud_accepted[1] + h.accepted,
		4 * (N_CASES - 1), m.accepted, m.cloud_accepted[0], m.cloud_accepted[1], N_CASES - 1,
		h.accepted, N_CASES - 1, (int)m.positive + (int)h.positive,
		(double)(fx_mono_ms() - t0) / 1000);
	ck_assert_int_eq(m.accepted, 0);
	ck_assert_int_eq(m.cloud_accepted[0], 0);
	ck_assert_int_eq(m.cloud_accepted[1], 0);
	ck_assert_int_eq(h.accepted, 0);
	ck_assert_msg(m.positive, "the MQTT positive control did not deliver");
	ck_assert_msg(h.positive, "the HTTPS positive control did not register");
	fx_pty_close(&n1);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("tls-negative");
	TCase *tc = tcase_create("tls-negative");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 150);
	tcase_add_test(tc, test_tls_negatives);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cl_run(suite());
}
