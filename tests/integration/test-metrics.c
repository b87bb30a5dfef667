/* SPDX-License-Identifier: MIT */
/*
 * Prometheus metrics against the real daemon (docs/metrics.md): `sensorgwctl metrics` after
 * known traffic (good lines, a corrupted one, acknowledgements), its series checked against
 * the status and accepted by `promtool check metrics`; and [gateway] metrics_file read by a
 * real prometheus-node-exporter's textfile collector on 127.0.0.1, its /metrics carrying the
 * same values. The file's directory is missing at first: one warning, the daemon goes on, and
 * the file appears once the directory does.
 *
 * promtool and prometheus-node-exporter come from Debian's prometheus and
 * prometheus-node-exporter packages, unpacked by tools/install-deps.sh (installing them would
 * start both as services); meson passes their paths as GW_PROMTOOL and GW_NODE_EXPORTER.
 * Without them the test is skipped (exit 77) with the reason, except with CI set.
 */

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloud.h"
#include "fixture.h"

#define N_TEXT 20

/* ---- reading exposition text ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "a=\"1\",b=\"2\"" with its labels in name order (the values here hold no comma) */
static void sort_labels(const char *in, char *out, size_t size)
{
	char buf[512], *parts[16], *save = NULL;
	size_t n = 0, len = 0;

	snprintf(buf, sizeof(buf), "%s", in);
	for (char *t = strtok_r(buf, ",", &save); t && n < 16; t = strtok_r(NULL, ",", &save))
		parts[n++] = t;
	qsort(parts, n, sizeof(parts[0]), cmp_str);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(out + len, len < size ? size - len : 0, "%s%s",
					i ? "," : "", parts[i]);
}

/* The value of the sample name{labels} in text (labels in any order; "" for none), or NAN
 * when text has no such sample. */
static double sample(const char *text, const char *name, const char *labels)
{
	char want[512];
	size_t nlen = strlen(name);

	sort_labels(labels, want, sizeof(want));
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		char got[512], lab[512] = "";
		const char *v;

		if (*l == '#' || strncmp(l, name, nlen) != 0 || (l[nlen] != '{' && l[nlen] != ' '))
			continue;
		if (l[nlen] == '{') {
			const char *end = strstr(l, "} ");

			if (!end)
				continue;
			snprintf(lab, sizeof(lab), "%.*s", (int)(end - l - nlen - 1), l + nlen + 1);
			v = end + 2;
		} else {
			v = l + nlen + 1;
		}
		sort_labels(lab, got, sizeof(got));
		if (strcmp(got, want) == 0)
			return strtod(v, NULL);
	}
	return NAN;
}

#define ck_sample(text, name, labels, want)                                                     \
	do {                                                                                    \
		double got_ = sample(text, name, labels);                                       \
		ck_assert_msg(got_ == (double)(want), "%s{%s}: %g, not %g", name, labels, got_, \
			      (double)(want));                                                  \
	} while (0)

/* ---- helpers ---- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	FILE *f = ud;

	return fwrite(ptr, size, nmemb, f);
}

/* GET url: the body, or NULL when nothing answers (free it). */
static char *http_get(const char *url)
{
	char *body = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&body, &len);
	CURL *c = curl_easy_init();
	CURLcode rc;

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	rc = curl_easy_perform(c);
	curl_easy_cleanup(c);
	fclose(f);
	if (rc != CURLE_OK) {
		free(body);
		return NULL;
	}
	return body;
}

static char *ctl_metrics(void)
{
	const char *const argv[] = { fx_env("GW_CTL"), "metrics", "--socket", fx_path("control"),
				     NULL };
	char *out = NULL, *err = NULL;
	int rc = fx_run(argv, &out, &err, 10000);

	ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "sensorgwctl metrics: %s", err);
	free(err);
	return out;
}

/* The config of fx_config() with the metrics keys in its [gateway]. */
static char *config_with_metrics(void)
{
	char *base = fx_config(fx_path("broker/ca.crt"), NULL), *conf = NULL;
	const char *rest = strstr(base, "[gateway]\n");

	ck_assert_ptr_nonnull(rest);
	rest += strlen("[gateway]\n");
	ck_assert_int_gt(asprintf(&conf,
				  "[gateway]\nmetrics_file = %s/prom/sensorgw.prom\n"
				  "metrics_interval_s = 1\n%s",
				  fx_dir(), rest),
			 0);
	free(base);
	return conf;
}

START_TEST(test_metrics)
{
	char prom[512];
	struct fx_pty txt, bin;
	char *conf, *text, *file = NULL, *scraped = NULL;
	json_t *st = NULL;
	struct stat sb;
	const char *version;
	char url[64];
	pid_t exporter;
	int port;

	/* (fx_path() returns one of a few rotating buffers) */
	snprintf(prom, sizeof(prom), "%s", fx_path("prom/sensorgw.prom"));
	fx_broker_start();
	fx_subscriber_start("sensorgw/#");
	fx_pty_new(&txt, "tty-txt");
	fx_pty_new(&bin, "tty-bin");
	conf = config_with_metrics();
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&txt, fx_daemon_pid(), FX_WAIT_MS));
	ck_assert(fx_daemon_wait_connected(FX_WAIT_MS));
	ck_assert(fx_daemon_wait_started(FX_WAIT_MS));

	/* no directory yet: said once, and the daemon goes on */
	ck_assert(fx_daemon_wait_log_line((const char *const[]){ "metrics_file", "cannot write it",
								 "No such file", NULL },
					  FX_WAIT_MS));
	ck_assert_int_eq(mkdir(fx_path("prom"), 0755), 0);
	ck_assert(fx_daemon_wait_log_line((const char *const[]){ "metrics_file", "written again",
								 NULL },
					  FX_WAIT_MS));
	ck_assert(fx_daemon_running());

	for (int i = 0; i < N_TEXT; i++) {
		char line[64];
		int len = snprintf(line, sizeof(line), "temp=%d.5,hum=%d\r\n", 20 + i, 40 + i);

		fx_pty_write(&txt, line, (size_t)len);
	}
	fx_pty_write(&txt, "temp=1.5*00\r\n", 13); /* a checksum error */
	ck_assert(fx_subscriber_wait_count(N_TEXT, FX_WAIT_MS));
	for (int i = 0; i < 100; i++) {
		const json_t *up;

		json_decref(st);
		st = fx_status_json();
		up = json_array_get(json_object_get(st, "uplinks"), 0);
		if (json_integer_value(json_object_get(up, "acked")) == N_TEXT &&
		    json_integer_value(json_object_get(up, "queued")) == 0)
			break;
		fx_sleep_ms(100);
	}

	/* sensorgwctl metrics: the traffic, and the status's own figures */
	text = ctl_metrics();
	version = fx_strf("version=\"%s\"", json_string_value(json_object_get(st, "version")));
	ck_sample(text, "sensorgw_info", version, 1);
	ck_sample(text, "sensorgw_records_stored_total", "", N_TEXT);
	ck_sample(text, "sensorgw_spool_appended_total", "",
		  json_integer_value(json_object_get(json_object_get(st, "spool"), "appended")));
	ck_sample(text, "sensorgw_port_open", "port=\"txt\"", 1);
	ck_sample(text, "sensorgw_port_frames_total", "port=\"txt\"", N_TEXT);
	ck_sample(text, "sensorgw_port_bad_frames_total", "port=\"txt\",reason=\"crc\"", 1);
	ck_sample(text, "sensorgw_port_bad_frames_total", "port=\"txt\",reason=\"oversize\"", 0);
	ck_sample(text, "sensorgw_port_frames_total", "port=\"bin\"", 0);
	ck_sample(text, "sensorgw_nodes", "", 1);
	ck_sample(text, "sensorgw_uplink_online", "uplink=\"local\",type=\"mqtt\"", 1);
	ck_sample(text, "sensorgw_uplink_acked_records_total", "uplink=\"local\",type=\"mqtt\"",
		  N_TEXT);
	ck_sample(text, "sensorgw_uplink_queued_records", "uplink=\"local\",type=\"mqtt\"", 0);
	ck_sample(text, "sensorgw_uplink_events_total",
		  "uplink=\"local\",type=\"mqtt\",event=\"connects\"", 1);
	ck_sample(text, "sensorgw_uplink_law_exact", "uplink=\"local\",type=\"mqtt\"", 1);
	ck_assert_msg(strstr(text, "# TYPE sensorgw_port_frames_total counter\n"), "%s", text);
	ck_assert_msg(strstr(text, "# TYPE sensorgw_uplink_queued_records gauge\n"), "%s", text);
	/* a family with no sample yet keeps its HELP and TYPE */
	ck_assert_msg(strstr(text, "# TYPE sensorgw_device_session gauge\n"), "%s", text);

	/* promtool's parser and lint accept it */
	fx_write_file(fx_path("metrics.txt"), text, 0644);
	{
		const char *const argv[] = { "/bin/sh",
					     "-c",
					     "exec \"$0\" check metrics <\"$1\"",
					     fx_env("GW_PROMTOOL"),
					     fx_path("metrics.txt"),
					     NULL };
		char *out = NULL, *err = NULL;
		int rc = fx_run(argv, &out, &err, 30000);

		ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0 && !*out && !*err,
			      "promtool check metrics: %s%s", out, err);
		free(out);
		free(err);
	}

	/* the file: the same series, readable by node_exporter's user, fresh within a second */
	for (int i = 0; i < 50; i++) {
		free(file);
		file = fx_read_file(prom);
		if (file && sample(file, "sensorgw_uplink_acked_records_total",
				   "uplink=\"local\",type=\"mqtt\"") == N_TEXT)
			break;
		fx_sleep_ms(100);
	}
	ck_assert_ptr_nonnull(file);
	ck_sample(file, "sensorgw_port_frames_total", "port=\"txt\"", N_TEXT);
	ck_sample(file, "sensorgw_uplink_acked_records_total", "uplink=\"local\",type=\"mqtt\"",
		  N_TEXT);
	ck_sample(file, "sensorgw_info", version, 1);
	ck_assert_int_eq(stat(prom, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0644);
	ck_assert_int_ne(access(fx_path("prom/.sensorgw.prom.tmp"), F_OK), 0);

	/* a real node_exporter's textfile collector serves it on 127.0.0.1 */
	port = fx_free_port();
	{
		const char *const argv[] = {
			fx_env("GW_NODE_EXPORTER"),
			fx_strf("--web.listen-address=127.0.0.1:%d", port),
			"--collector.disable-defaults",
			"--collector.textfile",
			fx_strf("--collector.textfile.directory=%s", fx_path("prom")),
			NULL,
		};

		exporter = fx_spawn(argv, "node-exporter.log");
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
	for (int i = 0; i < 100 && !scraped; i++) {
		scraped = http_get(url);
		if (!scraped)
			fx_sleep_ms(100);
	}
	ck_assert_msg(scraped, "node_exporter did not answer on %s", url);
	ck_sample(scraped, "node_textfile_scrape_error", "", 0);
	ck_sample(scraped, "sensorgw_port_frames_total", "port=\"txt\"", N_TEXT);
	ck_sample(scraped, "sensorgw_port_bad_frames_total", "port=\"txt\",reason=\"crc\"", 1);
	ck_sample(scraped, "sensorgw_uplink_acked_records_total", "uplink=\"local\",type=\"mqtt\"",
		  N_TEXT);
	ck_sample(scraped, "sensorgw_uplink_law_exact", "uplink=\"local\",type=\"mqtt\"", 1);
	(void)fx_child_stop(exporter);

	ck_assert_int_eq(fx_daemon_stop(NULL), 0);
	json_decref(st);
	free(scraped);
	free(file);
	free(text);
	free(conf);
	fx_pty_close(&txt);
	fx_pty_close(&bin);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");
	const char *missing = NULL;

	if (access(getenv("GW_PROMTOOL") ? getenv("GW_PROMTOOL") : "", X_OK) != 0)
		missing = "promtool";
	else if (access(getenv("GW_NODE_EXPORTER") ? getenv("GW_NODE_EXPORTER") : "", X_OK) != 0)
		missing = "prometheus-node-exporter";
	if (missing && !getenv("CI")) {
		printf("metrics test skipped: no %s (tools/install-deps.sh unpacks it)\n", missing);
		return 77;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_metrics);
	suite_add_tcase(s, tc);
	return cl_run(s);
}
