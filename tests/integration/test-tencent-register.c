/* SPDX-License-Identifier: MIT */
/*
 * Tencent dynamic registration (src/tencent_register.c) in the test process: an sd-event loop
 * with the real gw_http and gw_credstore against the loopback Tencent test cloud
 * (tests/cloud/tencent_cloud.py) over HTTPS with the fixture's test CA.
 *
 * Shown: a PSK over the v2 API (hmacsha256 and hmacsha1, signed for the register_url's host
 * name) and over the legacy API, a certificate and key, each stored 0600 in a 0700 directory
 * and equal to what the cloud issued; the caller's reuse of a stored credential without a new
 * request; the platform's refusals (REFUSED, nothing stored); and every bad reply the cloud can
 * inject, a payload encrypted with another ProductSecret and a wrong CA (FAILED, or REFUSED
 * for an injected refusal; nothing stored); a credential the store cannot save (FAILED).
 * Every `why` and the module's log (stderr, captured per test at debug level) are checked for
 * the ProductSecrets and every PSK and key in play.
 */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "cloudctl.h"
#include "gw-build.h"
#include "fixture.h"
#include "gw/credstore.h"
#include "gw/http.h"
#include "gw/log.h"
#include "gw/tencent_register.h"
#include "gw/util.h"
#include "tcloud.h"

/* Generous: the slowest case (a drip) is cut off by libcurl's low-speed limit after ~5 s. */
#define RUN_LIMIT_S 60

static sd_event *loop;
static struct gw_http *http;
static struct gw_credstore *store;
static struct gw_config_uplink cfg;
static char cred_dir[4096], ca_file[4096], url[256], log_file[4096];
static int saved_stderr = -1;

/* Every secret a why or a log line must never hold; issued PSKs are added as they appear. */
static char *secrets[32];
static size_t n_secrets;

static bool file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static void add_secret(const char *s)
{
	ck_assert(n_secrets < sizeof(secrets) / sizeof(secrets[0]));
	secrets[n_secrets++] = strdup(s);
}

static void assert_clean(const char *what, const char *text)
{
	for (size_t i = 0; i < n_secrets; i++)
		ck_assert_msg(!strstr(text, secrets[i]), "%s holds a secret: %s", what, text);
	ck_assert_msg(!strstr(text, "PRIVATE KEY") && !strstr(text, "encryptionType"),
		      "%s holds a key or the decrypted payload: %s", what, text);
}

static void setup_with(const char *psk_devices, const char *cert_devices)
{
	int fd;

	fx_setup();
	tc_start(psk_devices, cert_devices);
	snprintf(cred_dir, sizeof(cred_dir), "%s", fx_path("state/credentials/tc"));
	snprintf(ca_file, sizeof(ca_file), "%s", fx_path("broker/ca.crt"));
	snprintf(url, sizeof(url), "%s", tc_register_url(false));
	snprintf(log_file, sizeof(log_file), "%s", fx_path("module.log"));
	/* the module's log lines go to stderr: capture them to look for secrets */
	saved_stderr = dup(STDERR_FILENO);
	fd = open(log_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
	close(fd);
	gw_log_set_level(LOG_DEBUG);

	ck_assert_int_ge(sd_event_new(&loop), 0);
	gw_http_lib_init();
	ck_assert_int_eq(gw_http_new(loop, &http), 0);
	ck_assert_int_eq(gw_credstore_open(cred_dir, &store, NULL, 0), 0);
	cfg = (struct gw_config_uplink){ .name = "tc" };
	cfg.tencent.product_id = (char *)TC_PID;
	cfg.cloud.product_secret = (char *)TC_PS;
	cfg.cloud.register_url = url;
	cfg.ca_file = ca_file;
	/* the test cloud serves registration under the broker's CA */
	cfg.cloud.register_ca_file = ca_file;
	n_secrets = 0;
	add_secret(TC_PS);
	add_secret(TC_CERT_PS);
	add_secret(TC_INJECTED_PSK);
	add_secret(TC_INSECURE_PSK);
}

static void setup(void)
{
	setup_with("\"dev1\", \"dev2\", \"dev3\", \"dev4\"", "\"cdev1\"");
}

static void teardown(void)
{
	char *text;

	store = gw_credstore_close(store);
	http = gw_http_free(http);
	loop = sd_event_unref(loop);
	gw_http_lib_cleanup();
	if (saved_stderr >= 0) {
		/* the captured log, for the reader of a failing run */
		dup2(saved_stderr, STDERR_FILENO);
		close(saved_stderr);
		saved_stderr = -1;
		text = fx_read_file(log_file);
		if (text)
			fprintf(stderr, "--- module log ---\n%s", text);
		free(text);
	}
	for (size_t i = 0; i < n_secrets; i++)
		free(secrets[i]);
	n_secrets = 0;
	fx_teardown();
}

/* ---- one registration on the loop ---- */

struct outcome {
	int calls;
	enum gw_tencent_register_result result;
	char why[1024];
	struct gw_cred cred; /* a copy of o->cred when STORED */
	bool untrusted;
	bool timed_out;
};

static void on_done(struct gw_tencent_register *reg, const struct gw_tencent_register_outcome *o,
		    void *ud)
{
	struct outcome *out = ud;

	(void)reg;
	out->calls++;
	out->result = o->result;
	out->untrusted = o->untrusted;
	snprintf(out->why, sizeof(out->why), "%s", o->why);
	if (o->result == GW_TENCENT_REGISTER_STORED) {
		ck_assert_ptr_nonnull(o->cred);
		out->cred = (struct gw_cred){
			.cloud = o->cred->cloud,
			.kind = o->cred->kind,
			.product = gw_strdup(o->cred->product),
			.device = gw_strdup(o->cred->device),
			.psk = gw_strdup(o->cred->psk),
			.cert = gw_strdup(o->cred->cert),
			.key = gw_strdup(o->cred->key),
		};
	} else {
		ck_assert_ptr_null(o->cred);
	}
}

static int on_limit(sd_event_source *s, uint64_t usec, void *ud)
{
	struct outcome *out = ud;

	(void)s;
	(void)usec;
	out->timed_out = true;
	return 0;
}

/* Registers dn with cfg and returns when done was called (fails the test after RUN_LIMIT_S). */
static void run(const char *dn, struct outcome *out)
{
	struct gw_tencent_register *reg = NULL;
	sd_event_source *limit = NULL;

	memset(out, 0, sizeof(*out));
	ck_assert_int_eq(gw_tencent_register_start(loop, http, store, &cfg, dn, on_done, out, &reg),
			 0);
	ck_assert_ptr_nonnull(reg);
	ck_assert_int_eq(out->calls, 0); /* never from within start */
	ck_assert_int_ge(sd_event_add_time_relative(loop, &limit, CLOCK_MONOTONIC,
						    (uint64_t)RUN_LIMIT_S * 1000000, 0, on_limit,
						    out), 0);
	/* one iteration at a time: the loop serves the next registration too */
	while (!out->calls && !out->timed_out)
		ck_assert_int_ge(sd_event_run(loop, UINT64_MAX), 0);
	sd_event_source_disable_unref(limit);
	if (out->timed_out)
		gw_tencent_register_cancel(reg);
	ck_assert_msg(!out->timed_out, "%s: no outcome within %d s", dn, RUN_LIMIT_S);
	ck_assert_int_eq(out->calls, 1);
	/* to the test's own stderr, for the reader of the test log */
	dprintf(saved_stderr, "outcome %s: %s%s%s\n", dn,
		out->result == GW_TENCENT_REGISTER_STORED ? "STORED" :
		out->result == GW_TENCENT_REGISTER_REFUSED ? "REFUSED" : "FAILED",
		out->why[0] ? ": " : "", out->why);
	ck_assert_int_eq(gw_http_running(http), 0);
	ck_assert_msg(out->result == GW_TENCENT_REGISTER_STORED ? out->why[0] == '\0' :
							       out->why[0] != '\0',
		      "why: '%s'", out->why);
	ck_assert_msg(!strchr(out->why, '\n'), "why is not one line: %s", out->why);
	assert_clean("why", out->why);
}

static void assert_log_clean(void)
{
	char *text = fx_read_file(log_file);

	ck_assert_ptr_nonnull(text);
	assert_clean("the module log", text);
	free(text);
}

static void assert_mode(const char *path, mode_t want)
{
	struct stat st;

	ck_assert_msg(stat(path, &st) == 0, "%s: %s", path, strerror(errno));
	ck_assert_msg((st.st_mode & 07777) == want, "%s: mode %o, want %o", path,
		      (unsigned)(st.st_mode & 07777), (unsigned)want);
}

static const char *cred_path(const char *dn, const char *suffix)
{
	static char path[4200];

	snprintf(path, sizeof(path), "%s/%s%s", cred_dir, dn, suffix);
	return path;
}

static void assert_nothing_stored(const char *dn)
{
	struct gw_cred c;

	ck_assert_int_eq(gw_credstore_load(store, dn, &c, NULL, 0), -ENOENT);
	ck_assert_msg(!file_exists(cred_path(dn, ".json")), "a credential file for %s", dn);
	ck_assert_msg(!file_exists(cred_path(dn, ".json.bak")), "a backup file for %s", dn);
	/* the refusal marker is the caller's to write */
	ck_assert_msg(!file_exists(cred_path(dn, ".state")), "a marker file for %s", dn);
}

/* STORED with a PSK equal to the cloud's, on disk 0600 in the 0700 directory. */
static void assert_psk_stored(const char *dn, const struct outcome *o)
{
	char *issued = tc_device_psk(dn);
	struct gw_cred c;

	ck_assert_msg(o->result == GW_TENCENT_REGISTER_STORED, "%s: %d %s", dn, o->result, o->why);
	ck_assert_ptr_nonnull(issued);
	add_secret(issued);
	ck_assert_int_eq(o->cred.cloud, GW_CRED_CLOUD_TENCENT);
	ck_assert_int_eq(o->cred.kind, GW_CRED_PSK);
	ck_assert_str_eq(o->cred.product, TC_PID);
	ck_assert_str_eq(o->cred.device, dn);
	ck_assert_str_eq(o->cred.psk, issued);
	ck_assert_ptr_null(o->cred.cert);
	ck_assert_ptr_null(o->cred.key);
	assert_mode(cred_dir, 0700);
	assert_mode(cred_path(dn, ".json"), 0600);
	/* what is on disk, read back as a restarted gateway would */
	ck_assert_int_eq(gw_credstore_load(store, dn, &c, NULL, 0), 0);
	ck_assert_int_eq(c.cloud, GW_CRED_CLOUD_TENCENT);
	ck_assert_int_eq(c.kind, GW_CRED_PSK);
	ck_assert_str_eq(c.product, TC_PID);
	ck_assert_str_eq(c.psk, issued);
	gw_credstore_wipe(&c);
	free(issued);
}

/* The cloud's log of the one registration of dn: api, algorithm and the host it verified. */
static void assert_registered_as(const char *dn, const char *api, const char *alg,
				 const char *signed_host)
{
	json_t *m = json_pack("{s:s,s:s,s:s,s:b}", "ev", "https_register", "deviceName", dn,
			      "api", api, "ok", 1);

	if (alg)
		json_object_set_new(m, "algorithm", json_string(alg));
	if (signed_host)
		json_object_set_new(m, "signedHost", json_string(signed_host));
	ck_assert_msg(tc_wait(m, 5), "no https_register of %s (%s %s %s)", dn, api,
		      alg ? alg : "-", signed_host ? signed_host : "-");
	ck_assert_int_eq(tc_count("https_register", "deviceName", dn), 1);
}

static json_int_t register_count(const char *pid, const char *dn)
{
	json_t *d = tc_device(pid, dn, false);
	json_int_t n = json_integer_value(json_object_get(d, "registerCount"));

	json_decref(d);
	return n;
}

/* ---- successes ---- */

START_TEST(test_psk_v2)
{
	struct outcome o;
	char *log;

	run("dev1", &o);
	assert_psk_stored("dev1", &o);
	/* the signature covers the URL's host name (the cloud accepts three forms: insist) */
	assert_registered_as("dev1", "v2", "hmacsha256", "hostname");
	gw_credstore_wipe(&o.cred);

	cfg.cloud.sign_method = GW_SIGN_HMAC_SHA1;
	run("dev2", &o);
	assert_psk_stored("dev2", &o);
	assert_registered_as("dev2", "v2", "hmacsha1", "hostname");
	gw_credstore_wipe(&o.cred);

	/* the cloud issued two PSKs, each once */
	ck_assert_int_eq(tc_count("https_register", NULL, NULL), 2);
	assert_log_clean();
	log = fx_read_file(log_file);
	ck_assert_msg(log && strstr(log, "uplink tc: device dev1: registering with product " TC_PID
				     " (v2 API, hmacsha256) at https://localhost:"),
		      "no start line in the module log");
	free(log);
}
END_TEST

START_TEST(test_psk_legacy)
{
	struct outcome o;
	json_t *d;

	cfg.tencent.register_api = GW_REGISTER_API_LEGACY;
	cfg.cloud.register_url = (char *)tc_register_url(true);
	/* ignored: the legacy API signs with HMAC-SHA1 only (docs/protocols/tencent.md §2.2) */
	cfg.cloud.sign_method = GW_SIGN_HMAC_SHA256;
	run("dev1", &o);
	assert_psk_stored("dev1", &o);
	assert_registered_as("dev1", "v1", NULL, NULL);
	d = tc_device(TC_PID, "dev1", false);
	ck_assert_str_eq(json_string_value(json_object_get(d, "pskSource")), "https-legacy");
	json_decref(d);
	gw_credstore_wipe(&o.cred);
	assert_log_clean();
}
END_TEST

START_TEST(test_certificate)
{
	struct outcome o;
	struct gw_cred c;
	json_t *d, *cert;

	cfg.tencent.product_id = (char *)TC_CERT_PID;
	cfg.cloud.product_secret = (char *)TC_CERT_PS;
	run("cdev1", &o);
	ck_assert_msg(o.result == GW_TENCENT_REGISTER_STORED, "%d %s", o.result, o.why);
	ck_assert_int_eq(o.cred.kind, GW_CRED_CERTIFICATE);
	ck_assert_str_eq(o.cred.product, TC_CERT_PID);
	ck_assert_ptr_null(o.cred.psk);
	d = tc_device(TC_CERT_PID, "cdev1", true);
	cert = json_object_get(d, "cert");
	ck_assert_str_eq(o.cred.cert, json_string_value(json_object_get(cert, "clientCert")));
	ck_assert_str_eq(o.cred.key, json_string_value(json_object_get(cert, "clientKey")));
	ck_assert_ptr_nonnull(strstr(o.cred.cert, "-----BEGIN CERTIFICATE-----"));
	ck_assert_ptr_nonnull(strstr(o.cred.key, "PRIVATE KEY-----"));
	json_decref(d);
	assert_registered_as("cdev1", "v2", "hmacsha256", "hostname");
	assert_mode(cred_dir, 0700);
	assert_mode(cred_path("cdev1", ".json"), 0600);
	ck_assert_int_eq(gw_credstore_load(store, "cdev1", &c, NULL, 0), 0);
	ck_assert_int_eq(c.kind, GW_CRED_CERTIFICATE);
	ck_assert_str_eq(c.cert, o.cred.cert);
	ck_assert_str_eq(c.key, o.cred.key);
	gw_credstore_wipe(&c);
	gw_credstore_wipe(&o.cred);
	assert_log_clean(); /* assert_clean() also looks for "PRIVATE KEY" */
}
END_TEST

/*
 * What the uplink driver does for a device (tencent_register.h): load the store; register
 * only without a credential. Returns true when a request was made.
 */
static bool obtain(const char *dn, struct gw_cred *ret)
{
	struct outcome o;
	int r = gw_credstore_load(store, dn, ret, NULL, 0);

	if (r == 0)
		return false;
	ck_assert_int_eq(r, -ENOENT);
	run(dn, &o);
	ck_assert_msg(o.result == GW_TENCENT_REGISTER_STORED, "%d %s", o.result, o.why);
	*ret = o.cred;
	return true;
}

START_TEST(test_reuse)
{
	struct gw_cred first, again;
	char *issued;

	ck_assert(obtain("dev1", &first));
	issued = tc_device_psk("dev1");
	add_secret(issued);
	ck_assert_str_eq(first.psk, issued);
	/* a restart: a new store handle over the same directory, a second start for dev1 */
	store = gw_credstore_close(store);
	ck_assert_int_eq(gw_credstore_open(cred_dir, &store, NULL, 0), 0);
	ck_assert(!obtain("dev1", &again));
	ck_assert_str_eq(again.psk, issued);
	/* no second request: re-registering would have issued a new PSK (docs/protocols/tencent.md
	 * §2.1) */
	ck_assert_int_eq(tc_count("https_request", NULL, NULL) +
			 tc_count("https_register", NULL, NULL), 1);
	ck_assert_int_eq(register_count(TC_PID, "dev1"), 1);
	free(issued);
	gw_credstore_wipe(&first);
	gw_credstore_wipe(&again);
	assert_log_clean();
}
END_TEST

/* ---- refusals ---- */

static void assert_refused(const char *dn, const char *needle)
{
	struct outcome o;
	struct gw_cred_state st;

	run(dn, &o);
	ck_assert_msg(o.result == GW_TENCENT_REGISTER_REFUSED, "%s: %d %s", dn, o.result, o.why);
	ck_assert_msg(strstr(o.why, needle), "%s: why '%s' lacks '%s'", dn, o.why, needle);
	assert_nothing_stored(dn);
	/* the caller marks the device; the why is fit for the marker file */
	ck_assert_int_eq(gw_credstore_mark_refused(store, dn, o.why, 0, &st), 0);
	ck_assert_int_eq(st.status, GW_CRED_STATUS_NEEDS_PROVISIONING);
	ck_assert_ptr_nonnull(strstr(st.why, needle));
}

START_TEST(test_refused)
{
	/* registerType 1 and not pre-created */
	assert_refused("ghost", "Fixture.DeviceNotExist");
	cfg.tencent.register_api = GW_REGISTER_API_LEGACY;
	cfg.cloud.register_url = (char *)tc_register_url(true);
	assert_refused("ghost2", "code 9405");
	cfg.tencent.register_api = GW_REGISTER_API_V2;
	cfg.cloud.register_url = url;

	/* another ProductSecret: the platform cannot verify the signature */
	cfg.cloud.product_secret = (char *)fx_secret("tencent-product-wrong");
	add_secret(fx_secret("tencent-product-wrong"));
	assert_refused("dev1", "Fixture.SignatureFailure");
	cfg.cloud.product_secret = (char *)TC_PS;

	/* dynamic registration switched off for the product */
	tc_set_product(TC_PID, json_pack("{s:b}", "dynamicRegistration", 0));
	assert_refused("dev2", "Fixture.DynamicRegistrationDisabled");
	cfg.tencent.register_api = GW_REGISTER_API_LEGACY;
	cfg.cloud.register_url = (char *)tc_register_url(true);
	assert_refused("dev3", "code 9403");

	ck_assert_int_eq(register_count(TC_PID, "dev1"), 0);
	ck_assert_int_eq(register_count(TC_PID, "dev2"), 0);
	ck_assert_int_eq(register_count(TC_PID, "dev3"), 0);
	assert_log_clean();
}
END_TEST

/* ---- bad replies ---- */

#define MALFORMED_V2 "malformed reply (v2 API)"
#define MALFORMED_LEGACY "malformed reply (legacy API)"

static const struct fault {
	const char *mode;
	const char *opts; /* JSON object, or NULL */
	bool legacy;
	enum gw_tencent_register_result result;
	const char *why; /* a part of the why */
	int count;       /* requests the fault is injected for */
} faults[] = {
	{ "http500", NULL, false, GW_TENCENT_REGISTER_FAILED, "HTTP status 500", 1 },
	{ "http503", NULL, false, GW_TENCENT_REGISTER_FAILED, "HTTP status 503", 1 },
	{ "http500", NULL, true, GW_TENCENT_REGISTER_FAILED, "HTTP status 500", 1 },
	{ "code_error", NULL, false, GW_TENCENT_REGISTER_REFUSED,
	  "registration refused: Fixture.Injected: injected error (RequestId ", 1 },
	{ "code_error", NULL, true, GW_TENCENT_REGISTER_REFUSED,
	  "registration refused: code 1010: injected error", 1 },
	{ "truncated", NULL, false, GW_TENCENT_REGISTER_FAILED, MALFORMED_V2, 1 },
	{ "truncated", NULL, true, GW_TENCENT_REGISTER_FAILED, MALFORMED_LEGACY, 1 },
	{ "short_body", NULL, false, GW_TENCENT_REGISTER_FAILED,
	  "registration request failed: transfer closed", 1 },
	{ "wrong_types", NULL, false, GW_TENCENT_REGISTER_FAILED, MALFORMED_V2, 1 },
	{ "wrong_types", NULL, true, GW_TENCENT_REGISTER_FAILED, MALFORMED_LEGACY, 1 },
	{ "no_payload", NULL, false, GW_TENCENT_REGISTER_FAILED, MALFORMED_V2, 1 },
	{ "no_payload", NULL, true, GW_TENCENT_REGISTER_FAILED, MALFORMED_LEGACY, 1 },
	{ "bad_payload", NULL, false, GW_TENCENT_REGISTER_FAILED, MALFORMED_V2, 1 },
	{ "bad_payload", NULL, true, GW_TENCENT_REGISTER_FAILED, MALFORMED_LEGACY, 1 },
	{ "not_json", NULL, false, GW_TENCENT_REGISTER_FAILED, MALFORMED_V2, 1 },
	{ "huge", NULL, false, GW_TENCENT_REGISTER_FAILED,
	  "registration request failed: response body over 32768 bytes, cut off", 1 },
	{ "drip", NULL, false, GW_TENCENT_REGISTER_FAILED,
	  "registration request failed: timed out during the reply", 1 },
	{ "redirect_http", NULL, false, GW_TENCENT_REGISTER_FAILED,
	  "HTTP status 302, a redirect to http://127.0.0.1:", 1 },
	{ "redirect_http", "{\"status\": 307}", true, GW_TENCENT_REGISTER_FAILED,
	  "HTTP status 307, a redirect to http://127.0.0.1:", 1 },
	/* libcurl retries a request once when a reused connection dies before any reply, so the
	 * reset is injected for two requests */
	{ "reset", NULL, false, GW_TENCENT_REGISTER_FAILED, "registration request failed: ", 2 },
	{ "hang", "{\"seconds\": 20}", false, GW_TENCENT_REGISTER_FAILED,
	  "registration request failed: timed out before any reply", 1 },
};

START_TEST(test_bad_replies)
{
	char v2_url[256], legacy_url[256];

	snprintf(v2_url, sizeof(v2_url), "%s", tc_register_url(false));
	snprintf(legacy_url, sizeof(legacy_url), "%s", tc_register_url(true));
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		const struct fault *f = &faults[i];
		json_t *opts = NULL;
		struct outcome o;

		if (f->opts) {
			opts = json_loads(f->opts, 0, NULL);
			ck_assert_ptr_nonnull(opts);
		}
		cfg.tencent.register_api = f->legacy ? GW_REGISTER_API_LEGACY : GW_REGISTER_API_V2;
		cfg.cloud.register_url = f->legacy ? legacy_url : v2_url;
		tc_https_fail(f->mode, f->count, opts);
		run("dev1", &o);
		tc_https_fail("none", 0, NULL);
		ck_assert_msg(o.result == f->result, "%s%s: result %d (%s)", f->mode,
			      f->legacy ? " (legacy)" : "", o.result, o.why);
		ck_assert_msg(strstr(o.why, f->why), "%s%s: why '%s' lacks '%s'", f->mode,
			      f->legacy ? " (legacy)" : "", o.why, f->why);
		assert_nothing_stored("dev1");
	}
	/* the redirect was never followed to plain http */
	ck_assert_int_eq(tc_count("insecure_request", NULL, NULL), 0);
	/* every request met its fault, none of them registered anything */
	ck_assert_int_ge(tc_count("https_request", NULL, NULL), sizeof(faults) / sizeof(faults[0]));
	ck_assert_int_eq(tc_count("https_register", NULL, NULL), 0);
	ck_assert_int_eq(register_count(TC_PID, "dev1"), 0);

	/* the fault gone, the same device registers */
	cfg.tencent.register_api = GW_REGISTER_API_V2;
	cfg.cloud.register_url = v2_url;
	{
		struct outcome o;

		run("dev1", &o);
		assert_psk_stored("dev1", &o);
		gw_credstore_wipe(&o.cred);
	}
	assert_log_clean();
}
END_TEST

/*
 * A well-formed success whose payload was encrypted with another ProductSecret. The cloud
 * checks no signature on an injected reply and encrypts with the product's secret, so the
 * module is given another secret; the drip fault with a short interval delivers the whole
 * success body.
 */
START_TEST(test_payload_of_another_secret)
{
	struct outcome o;

	cfg.cloud.product_secret = (char *)fx_secret("tencent-product-other");
	add_secret(fx_secret("tencent-product-other"));
	tc_https_fail("drip", 1, json_pack("{s:f}", "interval", 0.001));
	run("dev1", &o);
	ck_assert_msg(o.result == GW_TENCENT_REGISTER_FAILED, "%d %s", o.result, o.why);
	ck_assert_msg(strstr(o.why, "malformed reply (v2 API)"), "why: %s", o.why);
	assert_nothing_stored("dev1");
	/* the same reply with the right secret would have carried this PSK */
	cfg.cloud.product_secret = (char *)TC_PS;
	tc_https_fail("drip", 1, json_pack("{s:f}", "interval", 0.001));
	run("dev2", &o);
	ck_assert_msg(o.result == GW_TENCENT_REGISTER_STORED, "%d %s", o.result, o.why);
	ck_assert_str_eq(o.cred.psk, TC_INJECTED_PSK);
	gw_credstore_wipe(&o.cred);
	/* (TC_INJECTED_PSK is in the secret list, so this also checks it never reached the log) */
	assert_log_clean();
}
END_TEST

/* The uplink's ca_file (the MQTT endpoint's) is never the registration's trust: without
 * register_ca_file the registration host is verified against the roots installed for it. */
START_TEST(test_ca_file_not_used)
{
	char wrong[4096], want[4200];
	struct outcome o;

	snprintf(wrong, sizeof(wrong), "%s", fx_path("broker/wrongca.crt"));
	cfg.ca_file = wrong;
	cfg.cloud.register_ca_file = NULL;
	run("dev1", &o);
	ck_assert_msg(o.result == GW_TENCENT_REGISTER_FAILED && o.untrusted, "%d %s", o.result,
		      o.why);
	snprintf(want, sizeof(want), "does not verify against %s:",
		 access(GW_TENCENT_REGISTER_CA_FILE, R_OK) == 0 ? GW_TENCENT_REGISTER_CA_FILE :
								   "the system's CA bundle");
	ck_assert_msg(strstr(o.why, want) && !strstr(o.why, wrong), "why: %s", o.why);
	assert_nothing_stored("dev1");
	assert_log_clean();
}
END_TEST

START_TEST(test_wrong_ca)
{
	char wrong[4096];
	struct outcome o;

	snprintf(wrong, sizeof(wrong), "%s", fx_path("broker/wrongca.crt"));
	cfg.cloud.register_ca_file = wrong;
	run("dev1", &o);
	ck_assert_msg(o.result == GW_TENCENT_REGISTER_FAILED, "%d %s", o.result, o.why);
	ck_assert_msg(strstr(o.why, "registration request failed: ") &&
		      strcasestr(o.why, "certificate"), "why: %s", o.why);
	/* untrusted, and the line names the host, the trust and OpenSSL's cause with its code */
	ck_assert(o.untrusted);
	ck_assert_msg(strstr(o.why, "TLS: the certificate of localhost does not verify against ") &&
		      strstr(o.why, wrong) &&
		      strstr(o.why, "unable to get local issuer certificate (verify error 20)"),
		      "why: %s", o.why);
	assert_nothing_stored("dev1");
	/* the handshake failed before anything was sent */
	ck_assert_int_eq(tc_count("https_register", NULL, NULL), 0);
	ck_assert_int_eq(tc_count("https_request", NULL, NULL), 0);
	assert_log_clean();
}
END_TEST

/* The store refuses the save (an unsafe file where the credential goes): FAILED, and the
 * issued PSK is not handed out. */
START_TEST(test_save_fails)
{
	struct outcome o;
	char *issued;

	fx_write_file(fx_path("elsewhere.json"), "{}", 0600);
	ck_assert_int_eq(symlink(fx_path("elsewhere.json"), cred_path("dev1", ".json")), 0);
	run("dev1", &o);
	issued = tc_device_psk("dev1");
	ck_assert_ptr_nonnull(issued); /* the cloud did issue one */
	add_secret(issued);
	ck_assert_msg(o.result == GW_TENCENT_REGISTER_FAILED, "%d %s", o.result, o.why);
	ck_assert_msg(strstr(o.why, "the issued PSK cannot be stored (") &&
		      strstr(o.why, "so it is not used"), "why: %s", o.why);
	assert_clean("why", o.why);
	ck_assert_ptr_null(o.cred.psk);
	free(issued);
	assert_log_clean();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tencent_register");
	TCase *tc = tcase_create("register");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 150);
	tcase_add_test(tc, test_psk_v2);
	tcase_add_test(tc, test_psk_legacy);
	tcase_add_test(tc, test_certificate);
	tcase_add_test(tc, test_reuse);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_bad_replies);
	tcase_add_test(tc, test_payload_of_another_secret);
	tcase_add_test(tc, test_wrong_ca);
	tcase_add_test(tc, test_ca_file_not_used);
	tcase_add_test(tc, test_save_fails);
	suite_add_tcase(s, tc);
	return cc_run(s);
}
