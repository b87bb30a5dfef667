/* SPDX-License-Identifier: MIT */
/* The test clouds' common control API; see cloudctl.h. */

#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cloudctl.h"
#include "fixture.h"

struct body {
	char *p;
	size_t n;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct body *b = ud;
	size_t n = size * nmemb;

	b->p = realloc(b->p, b->n + n + 1);
	ck_assert_ptr_nonnull(b->p);
	memcpy(b->p + b->n, ptr, n);
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

json_t *cc_ctl(int port, const char *cmd, json_t *args)
{
	char url[128];
	char *text = json_dumps(args, JSON_COMPACT);
	struct body b = { 0 };
	CURL *c = curl_easy_init();
	json_error_t err;
	json_t *reply;
	CURLcode rc;

	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_nonnull(c);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/%s", port, cmd);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 130L);
	rc = curl_easy_perform(c);
	ck_assert_msg(rc == CURLE_OK, "control %s: %s", cmd, curl_easy_strerror(rc));
	curl_easy_cleanup(c);
	free(text);
	json_decref(args);
	reply = json_loads(b.p ? b.p : "", 0, &err);
	ck_assert_msg(reply, "control %s: not JSON: %s", cmd, b.p ? b.p : "");
	free(b.p);
	return reply;
}

/* The test clouds answer a wait after at most this many seconds (and cc_ctl() gives up on a
 * reply after 130): a longer wait is asked for in pieces. */
#define CC_WAIT_PIECE_S 120

bool cc_wait_since(int port, json_t *match, json_int_t since, int timeout_s)
{
	int64_t end = fx_mono_ms() + (int64_t)timeout_s * fx_timeout_scale() * 1000;
	bool ok = false;

	/* A piece that times out is asked again with the same since: an event that came in
	 * between is still found. */
	for (;;) {
		int64_t left = end - fx_mono_ms();
		int piece = left > (int64_t)CC_WAIT_PIECE_S * 1000 ? CC_WAIT_PIECE_S :
			    (int)((left + 999) / 1000);
		const char *err;
		bool again;
		json_t *r;

		if (piece < 1)
			piece = 1;
		r = cc_ctl(port, "wait", json_pack("{s:O,s:I,s:i}", "match", match, "since", since,
						    "timeout", piece));
		ok = json_is_true(json_object_get(r, "ok")) && json_object_get(r, "event");
		err = json_string_value(json_object_get(r, "error"));
		/* only a piece that ran out is asked again, not a refused request */
		again = !ok && err && strncmp(err, "timeout", 7) == 0;
		json_decref(r);
		if (!again || fx_mono_ms() >= end)
			break;
	}
	json_decref(match);
	return ok;
}

int cc_wait_s(int s)
{
	return s * fx_timeout_scale() > 60 ? 60 : s * fx_timeout_scale();
}

bool cc_wait(int port, json_t *match, int timeout_s)
{
	return cc_wait_since(port, match, 0, timeout_s);
}

size_t cc_count(int port, const char *ev, const char *field, const char *value)
{
	json_t *r = cc_ctl(port, "log", json_pack("{s:s}", "ev", ev));
	json_t *events = json_object_get(r, "events");
	size_t i, n = 0;
	json_t *e;

	json_array_foreach(events, i, e) {
		if (!field || (json_is_string(json_object_get(e, field)) &&
			       strcmp(json_string_value(json_object_get(e, field)), value) == 0))
			n++;
	}
	json_decref(r);
	return n;
}

json_t *cc_start(const char *script, const char *dir, const char *products, const char *log)
{
	return cc_start_https(script, dir, products, log, NULL, NULL);
}

static void openssl_ok(const char *const argv[])
{
	char *out = NULL, *err = NULL;
	int st = fx_run(argv, &out, &err, 30000);

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "openssl %s: %s", argv[1], err);
	free(out);
	free(err);
}

void cc_make_https_ca(const char *name)
{
	char d[4096], ca_key[4200], ca_crt[4200], key[4200], csr[4200], crt[4200], ext[4200];
	char subj[256];

	snprintf(d, sizeof(d), "%s", fx_path(name));
	ck_assert_int_eq(mkdir(d, 0755), 0);
	snprintf(ca_key, sizeof(ca_key), "%s/ca.key", d);
	snprintf(ca_crt, sizeof(ca_crt), "%s/ca.crt", d);
	snprintf(key, sizeof(key), "%s/server.key", d);
	snprintf(csr, sizeof(csr), "%s/server.csr", d);
	snprintf(crt, sizeof(crt), "%s/server.crt", d);
	snprintf(ext, sizeof(ext), "%s/server.ext", d);
	snprintf(subj, sizeof(subj), "/CN=sensorgw test %s CA", name);
	openssl_ok((const char *const[]){ "/usr/bin/openssl", "req", "-x509", "-newkey", "ec",
		"-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-keyout", ca_key,
		"-out", ca_crt, "-subj", subj, "-addext", "basicConstraints=critical,CA:TRUE",
		"-addext", "keyUsage=critical,keyCertSign,cRLSign", NULL });
	openssl_ok((const char *const[]){ "/usr/bin/openssl", "req", "-newkey", "ec", "-pkeyopt",
		"ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr, "-subj",
		"/CN=localhost", NULL });
	fx_write_file(ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
		      "basicConstraints=CA:FALSE\n"
		      "keyUsage=critical,digitalSignature,keyEncipherment\n"
		      "extendedKeyUsage=serverAuth\n", 0644);
	openssl_ok((const char *const[]){ "/usr/bin/openssl", "x509", "-req", "-in", csr, "-CA",
		ca_crt, "-CAkey", ca_key, "-CAcreateserial", "-days", "2", "-sha256", "-extfile",
		ext, "-out", crt, NULL });
}

json_t *cc_start_https(const char *script, const char *dir, const char *products, const char *log,
		       const char *https_crt, const char *https_key)
{
	const char *root = fx_env("GW_SOURCE_ROOT");
	char script_path[4096], dir_path[4096], products_path[4096], ports_path[4096 + 16];
	const char *argv[17];
	size_t n;
	int64_t end;
	json_error_t err;
	json_t *ports;
	char *text;

	fx_make_certs();
	snprintf(dir_path, sizeof(dir_path), "%s", fx_path(dir));
	snprintf(products_path, sizeof(products_path), "%s", fx_path(products));
	snprintf(ports_path, sizeof(ports_path), "%s/ports.json", dir_path);
	snprintf(script_path, sizeof(script_path), "%s/tests/cloud/%s", root, script);
	argv[0] = "/usr/bin/python3";
	argv[1] = script_path;
	argv[2] = "--dir";
	argv[3] = dir_path;
	argv[4] = "--cert";
	argv[5] = fx_path("broker/server.crt");
	argv[6] = "--key";
	argv[7] = fx_path("broker/server.key");
	argv[8] = "--products";
	argv[9] = products_path;
	n = 10;
	if (https_crt && https_key) {
		argv[n++] = "--https-cert";
		argv[n++] = https_crt;
		argv[n++] = "--https-key";
		argv[n++] = https_key;
	}
	if (fx_canary()) {
		/* canary mode: every secret the cloud issues contains it (fixture.h) */
		argv[n++] = "--canary";
		argv[n++] = fx_canary();
	}
	argv[n] = NULL;
	fx_spawn(argv, log);
	end = fx_mono_ms() + FX_WAIT_MS;
	while (!(text = fx_read_file(ports_path))) {
		ck_assert_msg(fx_mono_ms() < end, "the test cloud did not start (see %s)", log);
		fx_sleep_ms(20);
	}
	ports = json_loads(text, 0, &err);
	ck_assert_ptr_nonnull(ports);
	free(text);
	return ports;
}

int cc_port(json_t *ports, const char *name)
{
	int port = (int)json_integer_value(json_object_get(ports, name));

	ck_assert_msg(port > 0, "no %s port in ports.json", name);
	return port;
}

int cc_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

void cc_store_cred(const char *uplink, const struct gw_cred *cred)
{
	char reason[GW_CREDSTORE_REASON_MAX];
	struct gw_credstore *store;

	(void)mkdir(fx_path("state"), 0700);
	ck_assert_int_eq(gw_credstore_open(fx_path(fx_strf("state/credentials/%s", uplink)),
					   &store, reason, sizeof(reason)),
			 0);
	ck_assert_msg(gw_credstore_save(store, cred, reason, sizeof(reason)) == 0, "%s", reason);
	gw_credstore_close(store);
}
