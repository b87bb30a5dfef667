/* SPDX-License-Identifier: MIT */
/*
 * Config loader: the shipped example, a fixture with every key, the defaults, and one fixture
 * per kind of error in tests/data/config, each checked for the exact "FILE:LINE: message" text.
 * Fixtures named *.in mention files: they are written into a temporary directory first, with
 * @DIR@ replaced by that directory, so the results do not depend on the checkout location.
 */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "../helpers/ckrun.h"
#include "gw-build.h"
#include "gw/config.h"
#include "gw/tencent.h"

static char tmp[64];

static void write_file(const char *name, const char *content, mode_t mode)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	f = fopen(path, "we");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(content, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	/* chmod, not the umask, decides: git does not keep modes, and umasks differ */
	ck_assert_int_eq(chmod(path, mode), 0);
}

static void setup(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/test-config-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	write_file("ca.crt", "not really a certificate\n", 0644);
	write_file("client.crt", "not really a certificate\n", 0644);
	write_file("client.key", "not really a key\n", 0600);
	write_file("password", "hunter2\n", 0600);
	write_file("empty", "", 0600);
	unsetenv("CREDENTIALS_DIRECTORY");
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void teardown(void)
{
	nftw(tmp, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *replace_all(const char *s, const char *from, const char *to)
{
	size_t n = 0;
	char *out;
	char *o;

	for (const char *p = strstr(s, from); p; p = strstr(p + strlen(from), from))
		n++;
	out = malloc(strlen(s) + n * strlen(to) + 1);
	ck_assert_ptr_nonnull(out);
	o = out;
	for (const char *p; (p = strstr(s, from)); s = p + strlen(from)) {
		memcpy(o, s, (size_t)(p - s));
		o += p - s;
		memcpy(o, to, strlen(to));
		o += strlen(to);
	}
	strcpy(o, s);
	return out;
}

static char *data_path(const char *name)
{
	const char *data = getenv("GW_TEST_DATA");
	char *path;

	ck_assert_ptr_nonnull(data);
	ck_assert_int_ge(asprintf(&path, "%s/config/%s", data, name), 0);
	return path;
}

static char *read_all(const char *path)
{
	char *text = NULL;
	size_t size = 0;
	FILE *f = fopen(path, "re");
	FILE *out = open_memstream(&text, &size);
	int ch;

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(out);
	while ((ch = fgetc(f)) != EOF)
		fputc(ch, out);
	fclose(f);
	fclose(out);
	return text;
}

/* Copies fixture name into the temporary directory, with @DIR@ replaced, at the given mode. */
static char *install(const char *fixture, const char *name, mode_t mode)
{
	char *src = data_path(fixture);
	char *text = read_all(src);
	char *rendered = replace_all(text, "@DIR@", tmp);
	char *path;

	write_file(name, rendered, mode);
	ck_assert_int_ge(asprintf(&path, "%s/%s", tmp, name), 0);
	free(src);
	free(text);
	free(rendered);
	return path;
}

/* tests/data/config/NAME.in, rendered to a 0600 file NAME in the temporary directory. */
static char *render(const char *name)
{
	char in[128];

	snprintf(in, sizeof(in), "%s.in", name);
	return install(in, name, 0600);
}

static int load(const char *path, struct gw_config **ret, char **diag)
{
	size_t size;
	FILE *f = open_memstream(diag, &size);
	int r;

	ck_assert_ptr_nonnull(f);
	r = gw_config_load(path, f, ret);
	fclose(f);
	return r;
}

static struct gw_config *load_ok(const char *path)
{
	struct gw_config *c = NULL;
	char *diag = NULL;
	int r = load(path, &c, &diag);

	ck_assert_str_eq(diag, "");
	ck_assert_int_eq(r, 0);
	ck_assert_ptr_nonnull(c);
	free(diag);
	return c;
}

/*
 * expected holds "LINE: message" lines; each gets "PATH:" in front, and @DIR@ stands for the
 * temporary directory.
 */
static void assert_fails(const char *path, const char *expected)
{
	struct gw_config *c = NULL;
	char *want_raw = NULL;
	size_t want_size = 0;
	FILE *want_f = open_memstream(&want_raw, &want_size);
	char *want;
	char *diag = NULL;
	const char *line = expected;
	int r;

	ck_assert_ptr_nonnull(want_f);
	while (*line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);

		fprintf(want_f, "%s:%.*s\n", path, (int)len, line);
		line += len + (nl ? 1 : 0);
	}
	fclose(want_f);
	want = replace_all(want_raw, "@DIR@", tmp);

	r = load(path, &c, &diag);
	ck_assert_str_eq(diag, want);
	ck_assert_int_eq(r, -EINVAL);
	ck_assert_ptr_null(c);
	free(diag);
	free(want);
	free(want_raw);
}

static void assert_fixture_fails(const char *fixture, const char *expected)
{
	char *path = data_path(fixture);

	assert_fails(path, expected);
	free(path);
}

/*
 * The example with its commented-out [port] sections enabled: every line starting with ';' from
 * a ";[port " line up to the next section header, and the map's ";port = uart0".
 */
static char *enable_example_ports(const char *text)
{
	size_t len = strlen(text);
	char *out = malloc(len + 1), *o = out;
	bool in_port = false;

	ck_assert_ptr_nonnull(out);
	for (const char *l = text; *l;) {
		const char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) + 1 : strlen(l);

		if (strncmp(l, ";[port ", 7) == 0)
			in_port = true;
		else if (*l == '[')
			in_port = false;
		if (*l == ';' && (in_port || strncmp(l, ";port = uart0\n", 14) == 0)) {
			l++;
			n--;
		}
		memcpy(o, l, n);
		o += n;
		l += n;
	}
	*o = '\0';
	return out;
}

START_TEST(test_shipped_example)
{
	const char *data = getenv("GW_TEST_DATA");
	const struct gw_config_map *m;
	struct gw_config *c;
	char *path, *text, *enabled;

	ck_assert_ptr_nonnull(data);
	ck_assert_int_ge(asprintf(&path, "%s/../../conf/sensorgw.conf", data), 0);
	c = load_ok(path);

	/* installing the package must not open a serial line the user did not configure */
	ck_assert_uint_eq(c->n_ports, 0);
	ck_assert_int_eq(c->log_level, LOG_INFO);
	ck_assert_uint_eq(c->n_uplinks, 1);
	ck_assert_str_eq(c->uplinks[0].host, "127.0.0.1");
	ck_assert_uint_eq(c->uplinks[0].port, 1883);
	ck_assert(!c->uplinks[0].tls);
	ck_assert_ptr_null(c->uplinks[0].mqtt.password);
	ck_assert_uint_eq(c->n_maps, 6);
	m = gw_config_find_map(c, NULL, "DHT11_T");
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(m->identifier, "temperature");
	ck_assert_double_eq_tol(m->scale, 0.1, 1e-12);
	ck_assert_int_eq(m->type, GW_MAP_TYPE_FLOAT);
	gw_config_free(c);

	/* the commented-out port sections are valid as they stand once enabled */
	text = read_all(path);
	enabled = enable_example_ports(text);
	write_file("enabled.conf", enabled, 0600);
	free(path);
	ck_assert_int_ge(asprintf(&path, "%s/enabled.conf", tmp), 0);
	c = load_ok(path);
	ck_assert_uint_eq(c->n_ports, 2);
	ck_assert_str_eq(c->ports[0].name, "uart0");
	ck_assert_str_eq(c->ports[0].path, "/dev/ttyAMA0");
	ck_assert_int_eq(c->ports[0].framing, GW_FRAMING_TEXT);
	ck_assert_str_eq(c->ports[1].name, "usb0");
	ck_assert_ptr_null(c->ports[1].path);
	ck_assert_int_eq(c->ports[1].match_vid, 0x0483);
	ck_assert_int_eq(c->ports[1].match_pid, 0x5740);
	ck_assert_int_eq(c->ports[1].framing, GW_FRAMING_BINARY);
	ck_assert_uint_eq(c->ports[1].baud, 921600);
	ck_assert_uint_eq(c->n_maps, 6);
	ck_assert_ptr_nonnull(gw_config_find_map(c, "uart0", "DHT11_T"));
	ck_assert_ptr_nonnull(gw_config_find_map(c, "uart0", "DHT11_H"));
	ck_assert_ptr_null(gw_config_find_map(c, "usb0", "DHT11_H"));
	gw_config_free(c);
	free(enabled);
	free(text);
	free(path);
}
END_TEST

START_TEST(test_full)
{
	char *path = render("full.conf");
	struct gw_config *c = load_ok(path);
	const struct gw_config_port *p;
	const struct gw_config_uplink *u;
	const struct gw_config_map *m;
	char *file;

	ck_assert_str_eq(c->path, path);
	ck_assert_str_eq(c->state_dir, "/srv/sensorgw");
	ck_assert_str_eq(c->device_name, "node-{port}-{addr}");
	ck_assert_int_eq(c->log_level, LOG_DEBUG);

	ck_assert_uint_eq(c->n_ports, 2);
	p = &c->ports[0];
	ck_assert_str_eq(p->name, "uart1");
	ck_assert_uint_eq(p->line, 8);
	ck_assert_str_eq(p->path, "/dev/ttyS1");
	ck_assert_int_eq(p->match_vid, -1);
	ck_assert_int_eq(p->match_pid, -1);
	ck_assert_ptr_null(p->match_serial);
	ck_assert_ptr_null(p->match_description);
	ck_assert_uint_eq(p->baud, 9600);
	ck_assert_uint_eq(p->data_bits, 7);
	ck_assert_int_eq(p->parity, GW_PARITY_EVEN);
	ck_assert_uint_eq(p->stop_bits, 2);
	ck_assert_int_eq(p->flow, GW_FLOW_RTSCTS);
	ck_assert_int_eq(p->framing, GW_FRAMING_BINARY);
	ck_assert_uint_eq(p->reopen_min_ms, 50);
	ck_assert_uint_eq(p->reopen_max_ms, 5000);
	p = &c->ports[1];
	ck_assert_str_eq(p->name, "usb");
	ck_assert_uint_eq(p->line, 19);
	ck_assert_ptr_null(p->path);
	ck_assert_int_eq(p->match_vid, 0x0483);
	ck_assert_int_eq(p->match_pid, 0x5740);
	ck_assert_str_eq(p->match_serial, "206A36A84E4D");
	ck_assert_str_eq(p->match_description, "STM32 Virtual ComPort");
	ck_assert_int_eq(p->flow, GW_FLOW_XONXOFF);
	ck_assert_int_eq(p->parity, GW_PARITY_ODD);

	ck_assert_uint_eq(c->n_uplinks, 1);
	u = &c->uplinks[0];
	ck_assert_str_eq(u->name, "cloud");
	ck_assert_uint_eq(u->line, 27);
	ck_assert_int_eq(u->type, GW_UPLINK_MQTT);
	ck_assert_str_eq(u->host, "broker.example.net");
	ck_assert_uint_eq(u->port, 8884);
	ck_assert(u->tls);
	ck_assert_int_ge(asprintf(&file, "%s/ca.crt", tmp), 0);
	ck_assert_str_eq(u->ca_file, file);
	free(file);
	ck_assert_int_ge(asprintf(&file, "%s/client.crt", tmp), 0);
	ck_assert_str_eq(u->mqtt.cert_file, file);
	free(file);
	ck_assert_int_ge(asprintf(&file, "%s/client.key", tmp), 0);
	ck_assert_str_eq(u->mqtt.key_file, file);
	free(file);
	ck_assert_str_eq(u->mqtt.username, "gw17");
	ck_assert_str_eq(u->mqtt.password, "hunter2");
	ck_assert_str_eq(u->mqtt.client_id, "gw17-client");
	ck_assert_uint_eq(u->mqtt.qos, 0);
	ck_assert_uint_eq(u->keepalive, 120);
	ck_assert(!u->mqtt.clean_session);
	ck_assert_str_eq(u->mqtt.topic, "site/{uplink}/{device}/{uid}/{port}/{addr}/{kind}");
	ck_assert_uint_eq(u->reconnect_min_ms, 250);
	ck_assert_uint_eq(u->reconnect_max_ms, 4000);

	ck_assert_uint_eq(c->n_maps, 4);
	m = &c->maps[0];
	ck_assert_str_eq(m->field, "DHT11_T");
	ck_assert_uint_eq(m->line, 46);
	ck_assert_str_eq(m->identifier, "temperature");
	ck_assert_double_eq(m->scale, 0.1);
	ck_assert_double_eq(m->offset, -2.5);
	ck_assert_int_eq(m->type, GW_MAP_TYPE_FLOAT);
	ck_assert_str_eq(m->port, "uart1");
	m = &c->maps[1];
	ck_assert_str_eq(m->field, "MQ2");
	ck_assert_str_eq(m->identifier, "smoke");
	ck_assert_double_eq(m->scale, 0.2);
	ck_assert_double_eq(m->offset, 10);
	ck_assert_int_eq(m->type, GW_MAP_TYPE_INT);
	ck_assert_str_eq(m->port, "");
	ck_assert_int_eq(c->maps[2].type, GW_MAP_TYPE_BOOL);
	ck_assert_str_eq(c->maps[2].field, "door.open");
	ck_assert_str_eq(c->maps[2].identifier, "door_open");
	ck_assert_int_eq(c->maps[3].type, GW_MAP_TYPE_STRING);

	ck_assert_ptr_eq(gw_config_find_map(c, "uart1", "DHT11_T"), &c->maps[0]);
	ck_assert_ptr_null(gw_config_find_map(c, "usb", "DHT11_T"));
	ck_assert_ptr_null(gw_config_find_map(c, NULL, "DHT11_T"));
	ck_assert_ptr_eq(gw_config_find_map(c, "usb", "MQ2"), &c->maps[1]);
	ck_assert_ptr_eq(gw_config_find_map(c, NULL, "MQ2"), &c->maps[1]);
	ck_assert_ptr_null(gw_config_find_map(c, "uart1", "MQ9"));
	gw_config_free(c);
	free(path);
}
END_TEST

START_TEST(test_defaults)
{
	char *path = data_path("defaults.conf");
	struct gw_config *c = load_ok(path);
	const struct gw_config_port *p = &c->ports[0];
	const struct gw_config_uplink *u = &c->uplinks[0];
	const struct gw_config_map *m = &c->maps[0];
	char host[256] = "";
	char id[300];

	ck_assert_str_eq(c->state_dir, "/var/lib/sensorgw");
	ck_assert_str_eq(c->device_name, "stm32-{uid}");
	ck_assert_int_eq(c->log_level, LOG_INFO);

	ck_assert_uint_eq(c->n_ports, 1);
	ck_assert_str_eq(p->path, "/dev/ttyUSB0");
	ck_assert_int_eq(p->match_vid, -1);
	ck_assert_int_eq(p->match_pid, -1);
	ck_assert_uint_eq(p->baud, 115200);
	ck_assert_uint_eq(p->data_bits, 8);
	ck_assert_int_eq(p->parity, GW_PARITY_NONE);
	ck_assert_uint_eq(p->stop_bits, 1);
	ck_assert_int_eq(p->flow, GW_FLOW_NONE);
	ck_assert_int_eq(p->framing, GW_FRAMING_TEXT);
	ck_assert_uint_eq(p->reopen_min_ms, 500);
	ck_assert_uint_eq(p->reopen_max_ms, 30000);

	ck_assert_uint_eq(c->n_uplinks, 1);
	ck_assert_str_eq(u->host, "127.0.0.1");
	ck_assert_uint_eq(u->port, 1883);
	ck_assert(!u->tls);
	ck_assert_ptr_null(u->ca_file);
	ck_assert_ptr_null(u->mqtt.cert_file);
	ck_assert_ptr_null(u->mqtt.key_file);
	ck_assert_ptr_null(u->mqtt.username);
	ck_assert_ptr_null(u->mqtt.password);
	ck_assert_int_eq(gethostname(host, sizeof(host) - 1), 0);
	snprintf(id, sizeof(id), "sensorgw-%s-b", host);
	id[64] = '\0';
	ck_assert_str_eq(u->mqtt.client_id, id);
	ck_assert_uint_eq(u->mqtt.qos, 1);
	ck_assert_uint_eq(u->keepalive, 60);
	ck_assert(u->mqtt.clean_session);
	ck_assert_str_eq(u->mqtt.topic, "sensorgw/{device}/{kind}");
	ck_assert_uint_eq(u->reconnect_min_ms, 1000);
	ck_assert_uint_eq(u->reconnect_max_ms, 60000);

	ck_assert_uint_eq(c->n_maps, 1);
	ck_assert_str_eq(m->field, "MQ2");
	ck_assert_str_eq(m->identifier, "MQ2");
	ck_assert_double_eq(m->scale, 1);
	ck_assert_double_eq(m->offset, 0);
	ck_assert_int_eq(m->type, GW_MAP_TYPE_AUTO);
	ck_assert_str_eq(m->port, "");
	gw_config_free(c);
	free(path);
}
END_TEST

START_TEST(test_tls_default)
{
	char *path = render("tls-default.conf");
	struct gw_config *c = load_ok(path);

	ck_assert_str_eq(c->ports[0].path, "/dev/ttyUSB0");
	ck_assert(c->uplinks[0].tls);
	ck_assert_uint_eq(c->uplinks[0].port, 8883);
	gw_config_free(c);
	free(path);
}
END_TEST

START_TEST(test_acceptance)
{
	assert_fixture_fails("acceptance.conf",
			     "4: unknown key 'baudrate' in [port uart1] (did you mean 'baud'?)\n"
			     "5: baud: 115201 is not a supported rate (50..921600, e.g. 9600, "
			     "115200, 921600)\n");
}
END_TEST

START_TEST(test_cannot_open)
{
	struct gw_config *c = NULL;
	char *path;
	char *diag = NULL;
	char *want;

	ck_assert_int_ge(asprintf(&path, "%s/absent.conf", tmp), 0);
	ck_assert_int_eq(load(path, &c, &diag), -ENOENT);
	ck_assert_ptr_null(c);
	ck_assert_int_ge(asprintf(&want, "%s:0: cannot open: No such file or directory\n", path),
			 0);
	ck_assert_str_eq(diag, want);
	free(diag);
	free(want);
	free(path);

	ck_assert_int_eq(load(tmp, &c, &diag), -EISDIR);
	ck_assert_int_ge(asprintf(&want, "%s:0: cannot open: Is a directory\n", tmp), 0);
	ck_assert_str_eq(diag, want);
	free(diag);
	free(want);
}
END_TEST

START_TEST(test_null_diag)
{
	struct gw_config *c = NULL;
	char *path = data_path("acceptance.conf");

	ck_assert_int_eq(gw_config_load(path, NULL, &c), -EINVAL);
	ck_assert_ptr_null(c);
	free(path);
}
END_TEST

START_TEST(test_unknown_section)
{
	assert_fixture_fails("unknown-section.conf",
			     "4: unknown section [ports uart1]: expected [gateway], [port NAME], "
			     "[uplink NAME] or [map FIELD] (did you mean 'port'?)\n"
			     "7: unknown section [serial x]: expected [gateway], [port NAME], "
			     "[uplink NAME] or [map FIELD]\n");
}
END_TEST

START_TEST(test_unknown_key)
{
	assert_fixture_fails("unknown-key.conf",
			     "3: unknown key 'baudrate' in [port uart1] (did you mean 'baud'?)\n"
			     "4: unknown key 'pariti' in [port uart1] (did you mean 'parity'?)\n"
			     "5: unknown key 'colour' in [port uart1]\n"
			     "9: unknown key 'hostname' in [uplink up] (did you mean 'host'?)\n"
			     "12: unknown key 'loglevel' in [gateway] (did you mean "
			     "'log_level'?)\n");
}
END_TEST

START_TEST(test_duplicate_key)
{
	assert_fixture_fails("duplicate-key.conf",
			     "4: duplicate key 'baud' in [port uart1] (first at line 3)\n"
			     "9: duplicate key 'host' in [uplink up] (first at line 8)\n");
}
END_TEST

START_TEST(test_duplicate_section)
{
	assert_fixture_fails("duplicate-section.conf",
			     "10: duplicate section [port uart1] (first at line 4)\n"
			     "13: duplicate section [gateway] (first at line 1)\n"
			     "16: duplicate section [uplink up] (first at line 7)\n");
}
END_TEST

START_TEST(test_bad_baud)
{
	assert_fixture_fails("bad-baud.conf",
			     "3: baud: 115201 is not a supported rate (50..921600, e.g. 9600, "
			     "115200, 921600)\n"
			     "7: baud: 'fast' is not an integer (50..921600, e.g. 9600, 115200, "
			     "921600)\n"
			     "11: baud: 1000000 is not a supported rate (50..921600, e.g. 9600, "
			     "115200, 921600)\n");
}
END_TEST

START_TEST(test_out_of_range)
{
	assert_fixture_fails("out-of-range.conf",
			     "3: data_bits: 9 is out of range (5..8)\n"
			     "4: stop_bits: 0 is out of range (1..2)\n"
			     "5: reopen_min_ms: 5 is out of range (10..600000)\n"
			     "6: reopen_max_ms: 99999999999999999999999 is out of range "
			     "(10..3600000)\n"
			     "10: port: 0 is out of range (1..65535)\n"
			     "11: qos: 2 is out of range (0..1)\n"
			     "12: keepalive: 4 is out of range (5..65535)\n"
			     "13: reconnect_min_ms: -100 is out of range (100..600000)\n"
			     "14: reconnect_max_ms: 3600001 is out of range (100..3600000)\n"
			     "18: port: 65536 is out of range (1..65535)\n");
}
END_TEST

START_TEST(test_trailing_garbage)
{
	assert_fixture_fails("trailing-garbage.conf",
			     "3: reopen_min_ms: '500ms' is not an integer (expected 10..600000)\n"
			     "4: data_bits: '8 bits' is not an integer (expected 5..8)\n"
			     "5: baud: empty value (50..921600, e.g. 9600, 115200, 921600)\n"
			     "6: stop_bits: '+1' is not an integer (expected 1..2)\n"
			     "9: match_vid: '0x483' is not 4 hex digits (e.g. 0483)\n"
			     "10: match_pid: '57400' is not 4 hex digits (e.g. 0483)\n"
			     "14: keepalive: '0x3c' is not an integer (expected 5..65535)\n"
			     "15: port: '18 83' is not an integer (expected 1..65535)\n"
			     "18: scale: '1.5x' is not a number\n"
			     "19: offset: empty value\n"
			     "21: scale: 'inf' is not a finite number\n"
			     "22: offset: 'nan' is not a finite number\n"
			     "24: scale: must not be 0\n"
			     "25: offset: '1e999' is not a finite number\n");
}
END_TEST

START_TEST(test_bad_enum)
{
	assert_fixture_fails(
		"bad-enum.conf",
		"2: log_level: 'warn' is not one of error, warning, notice, info, debug (did you "
		"mean 'warning'?)\n"
		"6: parity: 'mark' is not one of none, odd, even\n"
		"7: flow_control: 'hardware' is not one of none, rtscts, xonxoff\n"
		"8: framing: 'txt' is not one of text, binary (did you mean 'text'?)\n"
		"9: stop_bits: '1.5' is not an integer (expected 1..2)\n"
		"12: type: 'amqp' is not one of mqtt, aliyun, tencent\n"
		"13: tls: 'maybe' is not a boolean (yes, no, true, false, on, off, 1, 0)\n"
		"14: clean_session: 'Yes' is not a boolean (yes, no, true, false, on, off, 1, 0)\n"
		"17: type: 'double' is not one of auto, int, float, bool, string\n");
}
END_TEST

START_TEST(test_bad_template)
{
	assert_fixture_fails(
		"bad-template.conf",
		"2: device_name: unknown placeholder '{device}' (allowed: {uid} {port} {addr})\n"
		"9: topic: unknown placeholder '{foo}' (allowed: {device} {uid} {port} {addr} "
		"{kind} {uplink})\n"
		"13: topic: '{' without a matching '}'\n"
		"17: topic: must not contain the MQTT wildcards '+' or '#'\n"
		"21: topic: must not contain the MQTT wildcards '+' or '#'\n");
}
END_TEST

START_TEST(test_duplicate_port_path)
{
	char *tty;
	char *link;

	assert_fixture_fails("duplicate-port-path.conf",
			     "8: duplicate port: path /dev/ttyUSB0 already used by [port a] at "
			     "line 1\n");

	/* different names, one device: compared through realpath() */
	write_file("tty", "", 0600);
	ck_assert_int_ge(asprintf(&tty, "%s/tty", tmp), 0);
	ck_assert_int_ge(asprintf(&link, "%s/link", tmp), 0);
	ck_assert_int_eq(symlink(tty, link), 0);
	free(tty);
	free(link);
	link = render("duplicate-port-realpath.conf");
	assert_fails(link, "6: duplicate port: path @DIR@/link already used by [port a] at line 2 "
			   "(both are @DIR@/tty)\n");
	free(link);
}
END_TEST

START_TEST(test_missing_ca_file)
{
	char *path = render("missing-ca-file.conf");

	assert_fails(path, "6: tls: yes requires ca_file\n"
			   "10: ca_file: cannot read @DIR@/missing.crt: No such file or directory\n"
			   "14: ca_file: @DIR@ is not a regular file\n");
	free(path);
}
END_TEST

START_TEST(test_cert_without_key)
{
	char *path = render("cert-without-key.conf");

	assert_fails(path, "7: cert_file: needs key_file\n"
			   "12: key_file: needs cert_file\n"
			   "17: cert_file: a client certificate needs tls = yes\n");
	free(path);
}
END_TEST

START_TEST(test_password_without_username)
{
	char *path = render("password-without-username.conf");

	assert_fails(path, "6: password_file: needs username\n");
	free(path);
}
END_TEST

START_TEST(test_two_password_sources)
{
	char *path = render("two-password-sources.conf");
	char *diag = NULL;
	struct gw_config *c = NULL;

	assert_fails(path,
		     "8: password_file: only one of password, password_file and "
		     "password_credential may be set (password at line 7)\n"
		     "9: password_credential: CREDENTIALS_DIRECTORY is not set (run under systemd "
		     "with LoadCredential=mqtt:PATH, or use password_file)\n"
		     "9: password_credential: only one of password, password_file and "
		     "password_credential may be set (password at line 7)\n");
	/* the secrets themselves never appear */
	load(path, &c, &diag);
	ck_assert_ptr_null(strstr(diag, "inline-secret-value"));
	ck_assert_ptr_null(strstr(diag, "hunter2"));
	free(diag);
	free(path);
}
END_TEST

START_TEST(test_password_file_mode)
{
	char *path = render("password-file-mode.conf");
	char *secret;

	ck_assert_int_ge(asprintf(&secret, "%s/password", tmp), 0);
	ck_assert_int_eq(chmod(secret, 0640), 0);
	assert_fails(path, "7: password_file: @DIR@/password is readable by group or others "
			   "(mode 0640); chmod 600 it\n"
			   "12: password_file: @DIR@/empty is empty\n"
			   "17: password_file: cannot read @DIR@/nothing-here: No such file or "
			   "directory\n");
	free(secret);
	free(path);
}
END_TEST

START_TEST(test_password_file_newline)
{
	char *path = render("full.conf");
	struct gw_config *c;

	/* only one trailing newline is stripped; a lone newline is an empty secret */
	write_file("password", "two\n\n", 0600);
	c = load_ok(path);
	ck_assert_str_eq(c->uplinks[0].mqtt.password, "two\n");
	gw_config_free(c);
	write_file("password", "\n", 0600);
	assert_fails(path, "37: password_file: @DIR@/password is empty\n");
	free(path);
}
END_TEST

START_TEST(test_inline_password)
{
	char *path = install("inline-password.conf", "inline-password.conf", 0644);
	struct gw_config *c = NULL;
	char *diag = NULL;

	assert_fails(path, "8: password: @DIR@/inline-password.conf holds an inline password but "
			   "is readable by group or others (mode 0644); use password_file or "
			   "password_credential, or chmod 600 @DIR@/inline-password.conf\n");
	load(path, &c, &diag);
	ck_assert_ptr_null(strstr(diag, "s3cret-inline"));
	free(diag);

	ck_assert_int_eq(chmod(path, 0600), 0);
	c = load_ok(path);
	ck_assert_str_eq(c->uplinks[0].mqtt.username, "gw");
	ck_assert_str_eq(c->uplinks[0].mqtt.password, "s3cret-inline");
	gw_config_free(c);
	free(path);
}
END_TEST

START_TEST(test_password_credential)
{
	char *path = data_path("password-credential.conf");
	struct gw_config *c;

	unsetenv("CREDENTIALS_DIRECTORY");
	assert_fails(path, "7: password_credential: CREDENTIALS_DIRECTORY is not set (run under "
			   "systemd with LoadCredential=mqtt-password:PATH, or use "
			   "password_file)\n");

	setenv("CREDENTIALS_DIRECTORY", tmp, 1);
	assert_fails(path, "7: password_credential: cannot read @DIR@/mqtt-password: No such "
			   "file or directory\n");

	write_file("mqtt-password", "from-systemd\n", 0400);
	c = load_ok(path);
	ck_assert_str_eq(c->uplinks[0].mqtt.password, "from-systemd");
	gw_config_free(c);
	free(path);
}
END_TEST

START_TEST(test_no_port_no_uplink)
{
	/* no port is fine (the packaged example has none), no uplink is not */
	assert_fixture_fails("no-port-no-uplink.conf",
			     "0: no [uplink NAME] section: at least one uplink is required\n");
}
END_TEST

START_TEST(test_map_unknown_port)
{
	assert_fixture_fails(
		"map-unknown-port.conf",
		"3: port: no [port uart9] section (in [map MQ2])\n"
		"15: duplicate map: [map MQ2] for port uart1 already defined at line 8\n"
		"19: duplicate map: [map MQ2] for every port already defined at line 12\n"
		"22: [map temp.1]: 'temp.1' is not a valid identifier, so identifier must be set "
		"(1..63 of A-Z a-z 0-9 _)\n"
		"25: identifier: 'bad-identifier' is not valid (1..63 of A-Z a-z 0-9 _)\n"
		"26: port: 'uart 1' is not a valid port name (1..31 of A-Z a-z 0-9 _ . -)\n");
}
END_TEST

START_TEST(test_syntax)
{
	assert_fixture_fails(
		"syntax.conf",
		"1: key 'orphan' outside of any section\n"
		"2: syntax error: '[' without ']'\n"
		"3: syntax error: expected 'key = value', '[section]' or a comment\n"
		"6: syntax error: expected 'key = value', '[section]' or a comment\n"
		"7: syntax error: missing key name before '='\n"
		"9: [port] needs a name: [port NAME]\n"
		"11: invalid name 'a b' in [port a b] (1..31 of A-Z a-z 0-9 _ . -)\n"
		"12: invalid name 'way-too-long-name-for-a-port-section' in [port "
		"way-too-long-name-for-a-port-section] (1..31 of A-Z a-z 0-9 _ . -)\n"
		"13: [gateway extra]: [gateway] takes no name\n");
}
END_TEST

START_TEST(test_long_and_nul_lines)
{
	static const char tail[] = "[port b]\npath = /dev/tty\0S0\n[uplink u]\ntype = mqtt\n";
	struct gw_config *c = NULL;
	char long_line[1024];
	char *diag = NULL;
	char *path;
	char *want;
	FILE *f;

	memset(long_line, 'x', sizeof(long_line));
	memcpy(long_line, "path = /", 8);
	long_line[sizeof(long_line) - 1] = '\n';
	ck_assert_int_ge(asprintf(&path, "%s/long.conf", tmp), 0);
	f = fopen(path, "we");
	ck_assert_ptr_nonnull(f);
	fputs("[port a]\n", f);
	fwrite(long_line, 1, sizeof(long_line), f);
	fwrite(tail, 1, sizeof(tail) - 1, f);
	fclose(f);

	ck_assert_int_eq(load(path, &c, &diag), -EINVAL);
	/* the limit is libinih's (ini_max_line), so only the start of the message is fixed */
	ck_assert_int_ge(asprintf(&want, "%s:2: line too long (max ", path), 0);
	ck_assert_ptr_nonnull(strstr(diag, want));
	free(want);
	ck_assert_int_ge(asprintf(&want, "%s:4: line contains a NUL byte\n", path), 0);
	ck_assert_ptr_nonnull(strstr(diag, want));
	free(want);
	ck_assert_int_ge(asprintf(&want, "%s:1: [port a] needs either path", path), 0);
	ck_assert_ptr_nonnull(strstr(diag, want));
	free(want);
	free(diag);
	free(path);
}
END_TEST

START_TEST(test_port_device)
{
	assert_fixture_fails("port-device.conf",
			     "1: [port none] needs either path or a USB match (match_vid, "
			     "match_pid, match_serial, match_description)\n"
			     "5: path: cannot be combined with match_vid (line 6); use either a "
			     "path or a USB match\n"
			     "11: reopen_max_ms: 500 is less than reopen_min_ms (1000)\n"
			     "15: reconnect_max_ms: 60000 is less than reconnect_min_ms (600000)\n"
			     "17: [uplink notype] needs type = mqtt, aliyun or tencent\n");
}
END_TEST

START_TEST(test_to_string)
{
	ck_assert_str_eq(gw_parity_to_string(GW_PARITY_NONE), "none");
	ck_assert_str_eq(gw_parity_to_string(GW_PARITY_ODD), "odd");
	ck_assert_str_eq(gw_parity_to_string(GW_PARITY_EVEN), "even");
	ck_assert_str_eq(gw_flow_to_string(GW_FLOW_NONE), "none");
	ck_assert_str_eq(gw_flow_to_string(GW_FLOW_RTSCTS), "rtscts");
	ck_assert_str_eq(gw_flow_to_string(GW_FLOW_XONXOFF), "xonxoff");
	ck_assert_str_eq(gw_framing_to_string(GW_FRAMING_TEXT), "text");
	ck_assert_str_eq(gw_framing_to_string(GW_FRAMING_BINARY), "binary");
	ck_assert_ptr_null(gw_config_free(NULL));
}
END_TEST

#define SPOOL_BASE "[port p]\npath = /dev/ttyS0\n[uplink u]\ntype = mqtt\n"

START_TEST(test_spool_keys)
{
	char path[128];
	struct gw_config *c;

	snprintf(path, sizeof(path), "%s/spool.conf", tmp);
	/* defaults */
	write_file("spool.conf", SPOOL_BASE, 0600);
	c = load_ok(path);
	ck_assert_uint_eq(c->spool_max_bytes, 64ULL << 20);
	ck_assert_uint_eq(c->min_free_bytes, 16ULL << 20);
	ck_assert_uint_eq(c->spool_segment_bytes, 1ULL << 20);
	ck_assert_uint_eq(c->sync_records, 100);
	ck_assert_uint_eq(c->sync_ms, 200);
	ck_assert_uint_eq(c->batch_ms, 4);
	ck_assert_uint_eq(c->uplinks[0].max_inflight, 64);
	ck_assert_uint_eq(c->uplinks[0].max_rate, 0);
	ck_assert_int_eq(c->uplinks[0].mqtt.order, GW_ORDER_FIFO);
	ck_assert_uint_eq(c->uplinks[0].mqtt.deadletter_after, 5);
	gw_config_free(c);

	/* every form of a size, and the uplink keys */
	write_file("spool.conf",
		   "[gateway]\nspool_max_bytes = 2G\nmin_free_bytes = 0\nspool_segment_bytes = 4k\n"
		   "sync_records = 1\nsync_ms = 60000\nbatch_ms = 0\n" SPOOL_BASE
		   "max_inflight = 1\nmax_rate = 30\norder = live-first\ndeadletter_after = 1\n",
		   0600);
	c = load_ok(path);
	ck_assert_uint_eq(c->spool_max_bytes, 2ULL << 30);
	ck_assert_uint_eq(c->min_free_bytes, 0);
	ck_assert_uint_eq(c->spool_segment_bytes, 4096);
	ck_assert_uint_eq(c->sync_records, 1);
	ck_assert_uint_eq(c->sync_ms, 60000);
	ck_assert_uint_eq(c->batch_ms, 0);
	ck_assert_uint_eq(c->uplinks[0].max_inflight, 1);
	ck_assert_uint_eq(c->uplinks[0].max_rate, 30);
	ck_assert_int_eq(c->uplinks[0].mqtt.order, GW_ORDER_LIVE_FIRST);
	ck_assert_uint_eq(c->uplinks[0].mqtt.deadletter_after, 1);
	gw_config_free(c);

	/* 0 = no limit for spool_max_bytes; 1 byte is not a usable spool */
	write_file("spool.conf",
		   "[gateway]\nspool_max_bytes = 0\nspool_segment_bytes = 64M\n" SPOOL_BASE, 0600);
	c = load_ok(path);
	ck_assert_uint_eq(c->spool_max_bytes, 0);
	ck_assert_uint_eq(c->spool_segment_bytes, 64ULL << 20);
	gw_config_free(c);

	write_file("spool.conf",
		   "[gateway]\nspool_max_bytes = 12X\nmin_free_bytes = -1M\n"
		   "spool_segment_bytes = 1K\nsync_records = 0\nbatch_ms = 51\n" SPOOL_BASE
		   "max_inflight = 1001\norder = lifo\n",
		   0600);
	assert_fails(path,
		     "2: spool_max_bytes: '12X' is not a size (a number of bytes, optionally with K, "
		     "M or G, e.g. 64M)\n"
		     "3: min_free_bytes: '-1M' is not a size (a number of bytes, optionally with K, "
		     "M or G, e.g. 64M)\n"
		     "4: spool_segment_bytes: 1K is out of range (4096..67108864 bytes)\n"
		     "5: sync_records: 0 is out of range (1..100000)\n"
		     "6: batch_ms: 51 is out of range (0..50)\n"
		     "11: max_inflight: 1001 is out of range (1..1000)\n"
		     "12: order: 'lifo' is not one of fifo, live-first (did you mean 'fifo'?)");
}
END_TEST

/* Byte counts above 4 GiB (a 32-bit unsigned long could not hold them), and the metrics keys. */
START_TEST(test_big_sizes_and_metrics)
{
	char path[128];
	struct gw_config *c;

	snprintf(path, sizeof(path), "%s/spool.conf", tmp);
	write_file("spool.conf", SPOOL_BASE, 0600);
	c = load_ok(path);
	ck_assert_ptr_null(c->metrics_file);
	ck_assert_uint_eq(c->metrics_interval_s, 15);
	gw_config_free(c);

	write_file("spool.conf",
		   "[gateway]\nspool_max_bytes = 8G\nmin_free_bytes = 1099511627776\n"
		   "metrics_file = /var/lib/prometheus/node-exporter/sensorgw.prom\n"
		   "metrics_interval_s = 3600\n" SPOOL_BASE,
		   0600);
	c = load_ok(path);
	ck_assert_uint_eq(c->spool_max_bytes, 8ULL << 30);
	ck_assert_uint_eq(c->min_free_bytes, 1ULL << 40);
	ck_assert_str_eq(c->metrics_file, "/var/lib/prometheus/node-exporter/sensorgw.prom");
	ck_assert_uint_eq(c->metrics_interval_s, 3600);
	gw_config_free(c);

	write_file("spool.conf",
		   "[gateway]\nspool_max_bytes = 1025G\nmin_free_bytes = 18446744073709551616\n"
		   "metrics_file = /run/sensorgw.txt\nmetrics_interval_s = 0\n" SPOOL_BASE,
		   0600);
	assert_fails(path,
		     "2: spool_max_bytes: 1025G is out of range (0..1099511627776 bytes, 0 = no "
		     "limit)\n"
		     "3: min_free_bytes: 18446744073709551616 is out of range (0..1099511627776 "
		     "bytes, 0 = no limit)\n"
		     "4: metrics_file: '/run/sensorgw.txt' must be a file name ending in .prom, not "
		     "starting with '.' (node_exporter's textfile collector reads only those)\n"
		     "5: metrics_interval_s: 0 is out of range (1..3600)");
	write_file("spool.conf", "[gateway]\nmetrics_file = sensorgw.prom\n" SPOOL_BASE, 0600);
	assert_fails(path, "2: metrics_file: 'sensorgw.prom' is not an absolute path");
	write_file("spool.conf", "[gateway]\nmetrics_file = /tmp/.x.prom\n" SPOOL_BASE, 0600);
	assert_fails(path,
		     "2: metrics_file: '/tmp/.x.prom' must be a file name ending in .prom, not "
		     "starting with '.' (node_exporter's textfile collector reads only those)");
}
END_TEST

/* discovery = homeassistant and the [map] keys it reads. */
START_TEST(test_discovery_keys)
{
	char path[128];
	struct gw_config *c;

	snprintf(path, sizeof(path), "%s/disc.conf", tmp);
	write_file("disc.conf", SPOOL_BASE, 0600);
	c = load_ok(path);
	ck_assert_int_eq(c->uplinks[0].mqtt.discovery, GW_DISCOVERY_NONE);
	ck_assert_str_eq(c->uplinks[0].mqtt.discovery_prefix, "homeassistant");
	ck_assert_uint_eq(c->uplinks[0].mqtt.node_timeout_s, 600);
	gw_config_free(c);

	write_file("disc.conf",
		   SPOOL_BASE "discovery = homeassistant\ndiscovery_prefix = ha/test\n"
			      "node_timeout_s = 0\n[map MQ7]\nidentifier = co\nunit = ppm\n"
			      "device_class = carbon_monoxide\n",
		   0600);
	c = load_ok(path);
	ck_assert_int_eq(c->uplinks[0].mqtt.discovery, GW_DISCOVERY_HOMEASSISTANT);
	ck_assert_str_eq(c->uplinks[0].mqtt.discovery_prefix, "ha/test");
	ck_assert_uint_eq(c->uplinks[0].mqtt.node_timeout_s, 0);
	ck_assert_str_eq(c->maps[0].unit, "ppm");
	ck_assert_str_eq(c->maps[0].device_class, "carbon_monoxide");
	gw_config_free(c);

	write_file("disc.conf",
		   SPOOL_BASE "discovery = homeasistant\ndiscovery_prefix = ha/#\n"
			      "node_timeout_s = 86401\n[map MQ7]\nunit = \"ppm\"\n"
			      "device_class = Carbon Monoxide\n",
		   0600);
	assert_fails(path,
		     "5: discovery: 'homeasistant' is not one of none, homeassistant (did you mean "
		     "'homeassistant'?)\n"
		     "6: discovery_prefix: must not contain the MQTT wildcards '+' or '#'\n"
		     "7: node_timeout_s: 86401 is out of range (0..86400)\n"
		     "9: unit: '\"ppm\"' holds a control character, quote or backslash\n"
		     "10: device_class: 'Carbon Monoxide' is not a device class (1..31 of a-z 0-9 "
		     "_, e.g. temperature, humidity, carbon_monoxide)");
}
END_TEST

START_TEST(test_max_nodes)
{
	char path[128];
	struct gw_config *c;

	snprintf(path, sizeof(path), "%s/nodes.conf", tmp);
	write_file("nodes.conf", SPOOL_BASE, 0600);
	c = load_ok(path);
	ck_assert_uint_eq(c->max_nodes, 256);
	gw_config_free(c);
	write_file("nodes.conf", "[gateway]\nmax_nodes = 1\n" SPOOL_BASE, 0600);
	c = load_ok(path);
	ck_assert_uint_eq(c->max_nodes, 1);
	gw_config_free(c);
	write_file("nodes.conf", "[gateway]\nmax_nodes = 256\n" SPOOL_BASE, 0600);
	c = load_ok(path);
	ck_assert_uint_eq(c->max_nodes, 256);
	gw_config_free(c);
	write_file("nodes.conf", "[gateway]\nmax_nodes = 0\n" SPOOL_BASE, 0600);
	assert_fails(path, "2: max_nodes: 0 is out of range (1..256)");
	write_file("nodes.conf", "[gateway]\n\nmax_nodes = 257\n" SPOOL_BASE, 0600);
	assert_fails(path, "3: max_nodes: 257 is out of range (1..256)");
	write_file("nodes.conf", "[gateway]\nmax_nodes = many\n" SPOOL_BASE, 0600);
	assert_fails(path, "2: max_nodes: 'many' is not an integer (expected 1..256)");
	write_file("nodes.conf", "[gateway]\nmax_nodes = -2\n" SPOOL_BASE, 0600);
	assert_fails(path, "2: max_nodes: -2 is out of range (1..256)");
	/* an [uplink] has no such key */
	write_file("nodes.conf", SPOOL_BASE "max_nodes = 2\n", 0600);
	c = NULL;
	{
		char *diag = NULL;
		int r = load(path, &c, &diag);

		ck_assert_int_eq(r, -EINVAL);
		ck_assert_ptr_nonnull(strstr(diag, ":5: "));
		ck_assert_ptr_nonnull(strstr(diag, "max_nodes"));
		free(diag);
	}
}
END_TEST

START_TEST(test_control_socket)
{
	char path[128], conf[512], want[256];
	struct gw_config *c;

	snprintf(path, sizeof(path), "%s/control.conf", tmp);
	write_file("control.conf", SPOOL_BASE, 0600);
	c = load_ok(path);
	ck_assert_str_eq(c->control_socket, "/run/sensorgw/control");
	gw_config_free(c);

	write_file("control.conf", "[gateway]\ncontrol_socket = /tmp/x/ctl\n" SPOOL_BASE, 0600);
	c = load_ok(path);
	ck_assert_str_eq(c->control_socket, "/tmp/x/ctl");
	gw_config_free(c);

	/* sun_path holds 107 bytes and the NUL */
	snprintf(conf, sizeof(conf), "[gateway]\ncontrol_socket = /%0107d\n" SPOOL_BASE, 0);
	write_file("control.conf", conf, 0600);
	snprintf(want, sizeof(want), "2: control_socket: '/%0107d' is longer than a Unix socket "
		 "path may be (107 bytes)", 0);
	assert_fails(path, want);
	write_file("control.conf", "[gateway]\ncontrol_socket = run/ctl\n" SPOOL_BASE, 0600);
	assert_fails(path, "2: control_socket: 'run/ctl' is not an absolute path");
}
END_TEST

/* ---- type = aliyun ---- */

#define ALIYUN_HEAD "[port a]\npath = /dev/null\n\n"

START_TEST(test_aliyun_defaults)
{
	char *path;
	char *text;
	struct gw_config *c;
	const struct gw_config_uplink *u;

	write_file("ps", "productSecret1\n", 0600);
	ck_assert_int_ge(asprintf(&path, "%s/aliyun.conf", tmp), 0);
	text = replace_all(ALIYUN_HEAD
		   "[uplink ali]\ntype = aliyun\nproduct_key = a1B2c3D4e5F\nca_file = @DIR@/ca.crt\n"
		   "\n"
		   "[uplink reg]\ntype = aliyun\nproduct_key = a1B2c3D4e5F\nca_file = @DIR@/ca.crt\n"
		   "instance_id = iot-06z00abc\nauth = register\nsign_method = hmacsha1\n"
		   "register_url = https://localhost:4443/auth/register/device\n"
		   "keepalive = 1200\nmax_rate = 0\nmax_devices = 4\nhost = localhost\nport = 8883\n",
		   "@DIR@", tmp);
	write_file("aliyun.conf", text, 0644);
	free(text);
	/* a product secret from a file (0600) in a world-readable config is fine */
	{
		char *p2 = replace_all("product_secret_file = @DIR@/ps\n", "@DIR@", tmp);
		FILE *f = fopen(path, "ae");

		ck_assert_ptr_nonnull(f);
		fputs(p2, f);
		fclose(f);
		free(p2);
	}
	c = load_ok(path);
	u = &c->uplinks[0];
	ck_assert_int_eq(u->type, GW_UPLINK_ALIYUN);
	ck_assert_str_eq(u->aliyun.product_key, "a1B2c3D4e5F");
	ck_assert_ptr_null(u->host);
	ck_assert_uint_eq(u->port, 0);
	ck_assert(u->tls);
	ck_assert_ptr_null(u->cloud.region);
	ck_assert_ptr_null(u->aliyun.instance_id);
	ck_assert_int_eq(u->cloud.auth, GW_CLOUD_AUTH_DEVICE_SECRET);
	ck_assert_int_eq(u->cloud.sign_method, GW_SIGN_HMAC_SHA256);
	ck_assert_uint_eq(u->keepalive, 300);
	ck_assert_uint_eq(u->max_rate, 30);
	ck_assert_uint_eq(u->cloud.max_devices, 32);
	ck_assert_ptr_null(u->cloud.product_secret);
	ck_assert_ptr_null(u->cloud.register_url);
	ck_assert_int_eq(u->aliyun.register_via, GW_REGISTER_VIA_AUTO);
	u = &c->uplinks[1];
	ck_assert_str_eq(u->aliyun.instance_id, "iot-06z00abc");
	ck_assert_int_eq(u->cloud.auth, GW_CLOUD_AUTH_REGISTER);
	ck_assert_int_eq(u->cloud.sign_method, GW_SIGN_HMAC_SHA1);
	ck_assert_str_eq(u->cloud.register_url, "https://localhost:4443/auth/register/device");
	ck_assert_str_eq(u->cloud.product_secret, "productSecret1");
	ck_assert_uint_eq(u->keepalive, 1200);
	ck_assert_uint_eq(u->max_rate, 0);
	ck_assert_uint_eq(u->cloud.max_devices, 4);
	ck_assert_str_eq(u->host, "localhost");
	ck_assert_uint_eq(u->port, 8883);
	gw_config_free(c);
	free(path);
}
END_TEST

/* The error of an aliyun uplink without ca_file when the installed roots cannot be read
 * (where they are installed, there is none: ""). Free the result. */
static char *no_ca_line(unsigned line, const char *name)
{
	char *s = NULL;

	if (access(GW_ALIYUN_CA_FILE, R_OK) == 0)
		return strdup("");
	ck_assert_int_ge(asprintf(&s, "%u: [uplink %s] needs ca_file: the default %s cannot "
				  "be read (%s)\n", line, name, GW_ALIYUN_CA_FILE,
				  strerror(errno)), 0);
	return s;
}

START_TEST(test_aliyun_errors)
{
	char *path;
	char *text;
	char *expected;

	ck_assert_int_ge(asprintf(&path, "%s/aliyun-bad.conf", tmp), 0);
	text = replace_all(ALIYUN_HEAD
		   "[uplink a]\n"             /* 4 */
		   "type = aliyun\n"
		   "topic = x/{device}\n"     /* 6 */
		   "keepalive = 20\n"         /* 7 */
		   "region = cn-shanghai\n"
		   "instance_id = iot-1\n"    /* 9 */
		   "auth = register\n"        /* 10 */
		   "\n"
		   "[uplink b]\n"             /* 12 */
		   "type = aliyun\n"
		   "product_key = a1/b\n"     /* 14 */
		   "ca_file = @DIR@/ca.crt\n"
		   "auth = device-secret\n"
		   "product_secret = inline\n" /* 17 */
		   "register_url = http://example.com/\n" /* 18 */
		   "sign_method = sha256\n"   /* 19 */
		   "max_rate = 1001\n"        /* 20 */
		   "\n"
		   "[uplink c]\n"
		   "type = mqtt\n"
		   "product_key = a1B2c3D4e5F\n" /* 24 */
		   "auth = foo\n",            /* 25 */
		   "@DIR@", tmp);
	write_file("aliyun-bad.conf", text, 0644);
	free(text);
	/* without ca_file, the installed roots are the default (test_aliyun_default_ca) */
	text = no_ca_line(4, "a");
	assert_fails(path, expected = replace_all(
		     "4: [uplink a] needs product_key\n"
		     "@NOCA@"
		     "6: topic: not used by type = aliyun\n"
		     "7: keepalive: 20 is out of range for type = aliyun (30..1200)\n"
		     "9: instance_id: cannot be combined with region (line 8)\n"
		     "10: auth: register needs product_secret_file or product_secret_credential\n"
		     "14: product_key: 'a1/b' is not valid (1..64 of A-Z a-z 0-9 -)\n"
		     "17: product_secret: @DIR@/aliyun-bad.conf holds an inline product_secret but "
		     "is readable by group or others (mode 0644); use product_secret_file or "
		     "product_secret_credential, or chmod 600 @DIR@/aliyun-bad.conf\n"
		     "18: register_url: 'http://example.com/' is not an https:// URL\n"
		     "19: sign_method: 'sha256' is not one of hmacsha256, hmacsha1, hmacmd5 (did you "
		     "mean 'hmacsha256'?)\n"
		     "20: max_rate: 1001 is out of range for type = aliyun (0..1000, per device)\n"
		     "24: product_key: not used by type = mqtt\n"
		     "25: auth: 'foo' is not one of device-secret, register, regnwl, psk, "
		     "certificate\n", "@NOCA@", text));
	free(expected);
	free(text);
	free(path);
}
END_TEST

/* topology = gateway: the gateway's identity and secret, both clouds; what does not go with it. */
START_TEST(test_gateway_topology)
{
	char *path, *text;
	struct gw_config *c;
	const struct gw_config_uplink *u;

	write_file("gw.secret", "gwSecret1\n", 0600);
	ck_assert_int_ge(asprintf(&path, "%s/gateway.conf", tmp), 0);
	text = replace_all(
		ALIYUN_HEAD
		"[uplink ali]\ntype = aliyun\nproduct_key = a1B2c3D4e5F\nca_file = @DIR@/ca.crt\n"
		"topology = gateway\ngateway_product_key = a1GwPK\ngateway_device_name = gw-1\n"
		"gateway_secret_file = @DIR@/gw.secret\nmax_devices = 2000\nidle_logout_s = 600\n"
		"auth = register\n"
		"\n"
		"[uplink tc]\ntype = tencent\nproduct_id = ABCDEF1234\nca_file = @DIR@/ca.crt\n"
		"topology = gateway\ngateway_product_id = GWPROD0001\ngateway_device_name = gw-1\n"
		"gateway_secret_file = @DIR@/gw.secret\nmax_devices = 1500\n",
		"@DIR@", tmp);
	write_file("gateway.conf", text, 0644);
	free(text);
	c = load_ok(path);
	u = &c->uplinks[0];
	ck_assert_int_eq(u->cloud.topology, GW_TOPOLOGY_GATEWAY);
	ck_assert_str_eq(u->aliyun.gateway_product_key, "a1GwPK");
	ck_assert_str_eq(u->cloud.gateway_device_name, "gw-1");
	ck_assert_str_eq(u->cloud.gateway_secret, "gwSecret1");
	ck_assert_uint_eq(u->cloud.max_devices, 2000);
	ck_assert_uint_eq(u->cloud.idle_logout_s, 600);
	u = &c->uplinks[1];
	ck_assert_int_eq(u->cloud.topology, GW_TOPOLOGY_GATEWAY);
	ck_assert_str_eq(u->tencent.gateway_product_id, "GWPROD0001");
	/* the session is the gateway's, on its product's host (docs/protocols/tencent.md §1.5) */
	ck_assert_ptr_nonnull(strstr(u->host, "GWPROD0001."));
	ck_assert_str_eq(u->cloud.gateway_secret, "gwSecret1");
	gw_config_free(c);

	text = replace_all(ALIYUN_HEAD "[uplink a]\n" /* 4 */
				       "type = aliyun\n"
				       "product_key = a1B2c3D4e5F\n"
				       "ca_file = @DIR@/ca.crt\n"
				       "topology = gateway\n"  /* 8 */
				       "max_devices = 2001\n"  /* 9 */
				       "idle_logout_s = 30\n"  /* 10 */
				       "register_via = mqtt\n" /* 11 */
				       "\n"
				       "[uplink b]\n" /* 13 */
				       "type = aliyun\n"
				       "product_key = a1B2c3D4e5F\n"
				       "ca_file = @DIR@/ca.crt\n"
				       "max_devices = 257\n"            /* 17 */
				       "gateway_device_name = gw-1\n"   /* 18 */
				       "gateway_product_key = a1GwPK\n" /* 19 */
				       "idle_logout_s = 600\n"          /* 20 */
				       "\n"
				       "[uplink c]\n" /* 22 */
				       "type = tencent\n"
				       "product_id = ABCDEF1234\n"
				       "ca_file = @DIR@/ca.crt\n"
				       "auth = certificate\n" /* 26 */
				       "topology = gateway\n" /* 27 */
				       "gateway_device_name = gw-1\n"
				       "gateway_product_id = GWPROD0001\n"
				       "gateway_secret_file = @DIR@/gw.secret\n" /* 30 */
				       "gateway_secret_credential = gw\n"        /* 31 */
				       "max_devices = 1501\n"                    /* 32 */
				       "\n"
				       "[uplink d]\n" /* 34 */
				       "type = mqtt\n"
				       "topology = gateway\n" /* 36 */
				       "\n"
				       "[uplink e]\n" /* 38 */
				       "type = aliyun\n"
				       "product_key = a1B2c3D4e5F\n"
				       "ca_file = @DIR@/ca.crt\n"
				       "topology = star\n", /* 42 */
			   "@DIR@", tmp);
	write_file("gateway.conf", text, 0644);
	free(text);
	assert_fails(path,
		     "8: topology: gateway needs gateway_device_name\n"
		     "8: topology: gateway needs gateway_product_key\n"
		     "8: topology: gateway needs gateway_secret_file or gateway_secret_credential "
		     "(the gateway device's DeviceSecret)\n"
		     "9: max_devices: 2001 is out of range (1..2000)\n"
		     "10: idle_logout_s: 30 is too short (0 = never, or 60..86400)\n"
		     "11: register_via: not used with topology = gateway (sub-devices register "
		     "through the gateway's session)\n"
		     "17: max_devices: 257 is out of range for topology = direct (1..256)\n"
		     "18: gateway_device_name: only used with topology = gateway\n"
		     "19: gateway_product_key: only used with topology = gateway\n"
		     "20: idle_logout_s: only used with topology = gateway\n"
		     "26: auth: certificate cannot be used with topology = gateway (line 27): bind "
		     "is signed with each sub-device's PSK (psk or register)\n"
		     "31: gateway_secret_credential: CREDENTIALS_DIRECTORY is not set (run under "
		     "systemd with LoadCredential=gw:PATH, or use gateway_secret_file)\n"
		     "31: gateway_secret_credential: only one of gateway_secret_file and "
		     "gateway_secret_credential may be set (gateway_secret_file at line 30)\n"
		     "32: max_devices: 1501 is out of range for topology = gateway (1..1500)\n"
		     "36: topology: not used by type = mqtt\n"
		     "42: topology: 'star' is not one of direct, gateway\n");
	free(path);
}
END_TEST

/* command_rate and command_burst: cloud uplinks only, defaults 10 and 20, 0 = no limit. */
/* thing_model: read when the configuration is, positions in the file for a broken one, the
 * format must be the cloud's; thing_model_refused; register_ca_file. */
START_TEST(test_thing_model)
{
	const char *data = getenv("GW_TEST_DATA");
	char *path, *text;
	struct gw_config *c;

	ck_assert_ptr_nonnull(data);
	ck_assert_int_ge(asprintf(&path, "%s/model.conf", tmp), 0);
	text = replace_all(ALIYUN_HEAD
		   "[uplink a]\ntype = aliyun\nproduct_key = a1TestProd01\nca_file = @DIR@/ca.crt\n"
		   "thing_model = @DATA@/models/aliyun-tsl.json\nthing_model_refused = deadletter\n"
		   "\n"
		   "[uplink t]\ntype = tencent\nproduct_id = CS0SLTKSYA\nauth = register\n"
		   "product_secret_file = @DIR@/tps\nca_file = @DIR@/ca.crt\n"
		   "register_ca_file = @DIR@/ca.crt\n"
		   "thing_model = @DATA@/models/tencent-template.json\n",
		   "@DIR@", tmp);
	free(path);
	path = replace_all(text, "@DATA@", data);
	free(text);
	write_file("tps", "testProductSecret123\n", 0600);
	write_file("model.conf", path, 0600);
	free(path);
	ck_assert_int_ge(asprintf(&path, "%s/model.conf", tmp), 0);
	c = load_ok(path);
	ck_assert_ptr_nonnull(c->uplinks[0].cloud.model);
	ck_assert_int_eq(c->uplinks[0].cloud.model_refused, GW_MODEL_DEADLETTER);
	ck_assert_ptr_nonnull(c->uplinks[1].cloud.model);
	ck_assert_int_eq(c->uplinks[1].cloud.model_refused, GW_MODEL_LEAVE_OUT);
	ck_assert_ptr_nonnull(strstr(c->uplinks[1].cloud.register_ca_file, "/ca.crt"));
	ck_assert_ptr_null(c->uplinks[0].cloud.register_ca_file);
	gw_config_free(c);
	free(path);

	/* a broken model: its file, line and column; the other cloud's format; the key for mqtt */
	write_file("broken.json", "{\n  \"properties\": [\n    {\"identifier\": \"MQ2\",,}\n  ]\n}\n",
		   0644);
	text = replace_all(ALIYUN_HEAD
		   "[uplink a]\ntype = aliyun\nproduct_key = a1TestProd01\nca_file = @DIR@/ca.crt\n"
		   "thing_model = @DIR@/broken.json\n"                    /* 8 */
		   "\n"
		   "[uplink b]\ntype = aliyun\nproduct_key = a1TestProd01\nca_file = @DIR@/ca.crt\n"
		   "thing_model = @DATA@/models/tencent-template.json\n"  /* 14 */
		   "register_ca_file = @DIR@/ca.crt\n"                    /* 15 */
		   "\n"
		   "[uplink c]\ntype = tencent\nproduct_id = CS0SLTKSYA\nca_file = @DIR@/ca.crt\n"
		   "thing_model_refused = drop\n"                         /* 21 */
		   "\n"
		   "[uplink m]\ntype = mqtt\n"
		   "thing_model = @DATA@/models/aliyun-tsl.json\n",       /* 25 */
		   "@DIR@", tmp);
	path = replace_all(text, "@DATA@", data);
	free(text);
	write_file("model.conf", path, 0600);
	free(path);
	ck_assert_int_ge(asprintf(&path, "%s/model.conf", tmp), 0);
	text = replace_all("8: thing_model: @DIR@/broken.json:3:26: string or '}' expected near ','\n"
			   "14: thing_model: @DATA@/models/tencent-template.json is a Tencent data "
			   "template; type = aliyun needs the TSL from the Aliyun console\n"
			   "15: register_ca_file: only used with auth = register\n"
			   "21: thing_model_refused: 'drop' is not one of leave-out, deadletter\n"
			   "25: thing_model: not used by type = mqtt",
			   "@DATA@", data);
	assert_fails(path, text);
	free(text);
	free(path);
}
END_TEST

START_TEST(test_command_rate)
{
	char *path, *text;
	struct gw_config *c;

	ck_assert_int_ge(asprintf(&path, "%s/cmdrate.conf", tmp), 0);
	text = replace_all(ALIYUN_HEAD
		   "[uplink a]\ntype = aliyun\nproduct_key = a1B2c3D4e5F\nca_file = @DIR@/ca.crt\n"
		   "\n"
		   "[uplink b]\ntype = aliyun\nproduct_key = a1B2c3D4e5F\nca_file = @DIR@/ca.crt\n"
		   "command_rate = 0\ncommand_burst = 1000\n"
		   "\n"
		   "[uplink t]\ntype = tencent\nproduct_id = ABCDEFGHIJ\nauth = psk\n"
		   "ca_file = @DIR@/ca.crt\ncommand_rate = 1000\ncommand_burst = 1\n",
		   "@DIR@", tmp);
	write_file("cmdrate.conf", text, 0600);
	free(text);
	c = load_ok(path);
	ck_assert_uint_eq(c->uplinks[0].cloud.command_rate, 10);
	ck_assert_uint_eq(c->uplinks[0].cloud.command_burst, 20);
	ck_assert_uint_eq(c->uplinks[1].cloud.command_rate, 0);
	ck_assert_uint_eq(c->uplinks[1].cloud.command_burst, 1000);
	ck_assert_uint_eq(c->uplinks[2].cloud.command_rate, 1000);
	ck_assert_uint_eq(c->uplinks[2].cloud.command_burst, 1);
	gw_config_free(c);

	text = replace_all(ALIYUN_HEAD
		   "[uplink a]\ntype = aliyun\nproduct_key = a1B2c3D4e5F\nca_file = @DIR@/ca.crt\n"
		   "command_rate = 1001\n"   /* 8 */
		   "command_burst = 0\n"     /* 9 */
		   "\n"
		   "[uplink m]\ntype = mqtt\n"
		   "command_rate = 5\n"      /* 13 */
		   "command_burst = 5\n",    /* 14 */
		   "@DIR@", tmp);
	write_file("cmdrate.conf", text, 0600);
	free(text);
	assert_fails(path,
		     "8: command_rate: 1001 is out of range (0..1000)\n"
		     "9: command_burst: 0 is out of range (1..1000)\n"
		     "13: command_rate: not used by type = mqtt\n"
		     "14: command_burst: not used by type = mqtt");
	free(path);
}
END_TEST

START_TEST(test_aliyun_default_ca)
{
	struct gw_config *c;
	char *path, *want;

	ck_assert_int_ge(asprintf(&path, "%s/aliyun-ca.conf", tmp), 0);
	write_file("aliyun-ca.conf", ALIYUN_HEAD "[uplink x]\ntype = aliyun\n"
		   "product_key = a1B2c3D4e5F\n", 0644);
	want = no_ca_line(4, "x");
	if (want[0]) {
		/* not installed here: the message names the path it looked at */
		assert_fails(path, want);
	} else {
		c = load_ok(path);
		ck_assert_str_eq(c->uplinks[0].ca_file, GW_ALIYUN_CA_FILE);
		gw_config_free(c);
	}
	free(want);
	free(path);
}
END_TEST

/* ---- type = tencent ---- */

START_TEST(test_tencent_defaults)
{
	struct gw_config *c;
	const struct gw_config_uplink *u;
	char *path, *text;

	ck_assert_int_ge(asprintf(&path, "%s/tencent.conf", tmp), 0);
	text = replace_all(ALIYUN_HEAD
		   "[uplink tc]\ntype = tencent\nproduct_id = CS0SLTKSYA\nca_file = @DIR@/ca.crt\n"
		   "\n"
		   "[uplink tc2]\ntype = tencent\nproduct_id = CS0SLTKSYA\nregion = europe\n"
		   "auth = certificate\nca_file = @DIR@/ca.crt\nsign_method = hmacsha1\n"
		   "sdkappid = 21010406\nexpiry = 4102444800\nkeepalive = 900\nmax_rate = 5\n"
		   "max_devices = 3\nhost = localhost\nport = 18883\n"
		   "\n"
		   "[uplink plain]\ntype = tencent\nproduct_id = CS0SLTKSYA\ntls = no\n",
		   "@DIR@", tmp);
	write_file("tencent.conf", text, 0644);
	free(text);
	c = load_ok(path);
	u = &c->uplinks[0];
	ck_assert_int_eq(u->type, GW_UPLINK_TENCENT);
	ck_assert_str_eq(u->tencent.product_id, "CS0SLTKSYA");
	ck_assert_str_eq(u->cloud.region, "ap-guangzhou");
	ck_assert_str_eq(u->host, "CS0SLTKSYA.iotcloud.tencentdevices.com");
	ck_assert_uint_eq(u->port, 8883);
	ck_assert(u->tls);
	ck_assert_int_eq(u->cloud.auth, GW_CLOUD_AUTH_PSK);
	ck_assert_int_eq(u->cloud.sign_method, GW_SIGN_HMAC_SHA256);
	ck_assert_uint_eq(u->tencent.sdkappid, GW_TENCENT_DEFAULT_SDKAPPID);
	ck_assert_uint_eq(u->tencent.expiry, 0);
	ck_assert_uint_eq(u->keepalive, 240);
	ck_assert_uint_eq(u->max_rate, 30);
	ck_assert_uint_eq(u->cloud.max_devices, 32);
	ck_assert_int_eq(u->tencent.register_api, GW_REGISTER_API_V2);
	ck_assert_ptr_null(u->cloud.product_secret);
	u = &c->uplinks[1];
	ck_assert_str_eq(u->cloud.region, "europe");
	ck_assert_str_eq(u->host, "localhost");
	ck_assert_uint_eq(u->port, 18883);
	ck_assert_int_eq(u->cloud.auth, GW_CLOUD_AUTH_CERTIFICATE);
	ck_assert_int_eq(u->cloud.sign_method, GW_SIGN_HMAC_SHA1);
	ck_assert_uint_eq(u->tencent.sdkappid, 21010406);
	ck_assert_uint_eq(u->tencent.expiry, 4102444800u);
	ck_assert_uint_eq(u->keepalive, 900);
	ck_assert_uint_eq(u->max_rate, 5);
	ck_assert_uint_eq(u->cloud.max_devices, 3);
	u = &c->uplinks[2];
	ck_assert(!u->tls);
	ck_assert_uint_eq(u->port, 1883);
	ck_assert_ptr_null(u->ca_file);
	gw_config_free(c);
	free(path);
}
END_TEST

/* tls = psk (docs/protocols/tencent.md §1.4): TLS-PSK, no certificates; FILE:LINE for what does not go with it. */
START_TEST(test_tencent_tls_psk)
{
	struct gw_config *c;
	const struct gw_config_uplink *u;
	char *path, *text;

	ck_assert_int_ge(asprintf(&path, "%s/tencent-psk.conf", tmp), 0);
	write_file("tencent-psk.conf", ALIYUN_HEAD
		   "[uplink tc]\ntype = tencent\nproduct_id = CS0SLTKSYA\ntls = psk\n"
		   "expiry = auto\n", 0644);
	c = load_ok(path);
	u = &c->uplinks[0];
	ck_assert(u->tls);
	ck_assert(u->tls_psk);
	ck_assert_uint_eq(u->port, 8883);
	ck_assert_ptr_null(u->ca_file); /* nothing to verify: no default CA */
	ck_assert_int_eq(u->cloud.auth, GW_CLOUD_AUTH_PSK);
	ck_assert(u->tencent.expiry_auto);
	ck_assert_uint_eq(u->tencent.expiry, 0);
	gw_config_free(c);
	free(path);

	ck_assert_int_ge(asprintf(&path, "%s/tencent-psk-bad.conf", tmp), 0);
	text = replace_all(ALIYUN_HEAD         /* 1-3 */
		   "[uplink a]\n"                 /* 4 */
		   "type = tencent\n"
		   "product_id = CS0SLTKSYA\n"
		   "tls = psk\n"                  /* 7 */
		   "ca_file = @DIR@/ca.crt\n"     /* 8 */
		   "auth = certificate\n"         /* 9 */
		   "port = 1883\n"                /* 10 */
		   "\n"
		   "[uplink b]\n"                 /* 12 */
		   "type = mqtt\n"
		   "tls = psk\n"                  /* 14 */
		   "\n"
		   "[uplink c]\n"                 /* 16 */
		   "type = tencent\n"
		   "product_id = CS0SLTKSYA\n"
		   "tls = pks\n",                 /* 19 */
		   "@DIR@", tmp);
	write_file("tencent-psk-bad.conf", text, 0644);
	free(text);
	assert_fails(path,
		     "8: ca_file: not used with tls = psk (line 7): TLS-PSK has no certificates\n"
		     "9: auth: certificate needs certificate TLS, not tls = psk (line 7), which "
		     "logs in with a PSK\n"
		     "10: port: 1883 is the platform's plain-TCP port; with TLS it is 8883 (plain "
		     "TCP needs tls = no, written down)\n"
		     "14: tls: psk (TLS-PSK) is for type = tencent\n"
		     "19: tls: 'pks' is not a boolean (yes, no, true, false, on, off, 1, 0)\n");
	free(path);
}
END_TEST

START_TEST(test_tencent_default_ca)
{
	struct gw_config *c;
	char *path, *want = NULL;

	ck_assert_int_ge(asprintf(&path, "%s/tencent-ca.conf", tmp), 0);
	write_file("tencent-ca.conf", ALIYUN_HEAD "[uplink x]\ntype = tencent\n"
		   "product_id = CS0SLTKSYA\n", 0644);
	if (access(GW_TENCENT_CA_FILE, R_OK) == 0) {
		c = load_ok(path);
		ck_assert_str_eq(c->uplinks[0].ca_file, GW_TENCENT_CA_FILE);
		gw_config_free(c);
	} else {
		/* not installed here: the message names the path it looked at */
		ck_assert_int_ge(asprintf(&want, "4: [uplink x] needs ca_file: the default %s "
					  "cannot be read (%s)\n", GW_TENCENT_CA_FILE,
					  strerror(errno)), 0);
		assert_fails(path, want);
	}
	free(want);
	free(path);
}
END_TEST

START_TEST(test_tencent_errors)
{
	char *path, *text;

	ck_assert_int_ge(asprintf(&path, "%s/tencent-bad.conf", tmp), 0);
	text = replace_all(ALIYUN_HEAD
		   "[uplink a]\n"                 /* 4 */
		   "type = tencent\n"
		   "ca_file = @DIR@/ca.crt\n"
		   "topic = x/{device}\n"         /* 7 */
		   "product_key = a1B2c3D4e5F\n"  /* 8 */
		   "keepalive = 901\n"            /* 9 */
		   "region = cn-shanghai\n"       /* 10 */
		   "port = 1883\n"                /* 11 */
		   "max_rate = 31\n"              /* 12 */
		   "sign_method = hmacmd5\n"      /* 13 */
		   "expiry = 1000\n"              /* 14 */
		   "\n"
		   "[uplink b]\n"                 /* 16 */
		   "type = tencent\n"
		   "product_id = CS0-SLTK\n"      /* 18 */
		   "ca_file = @DIR@/ca.crt\n"
		   "auth = regnwl\n"              /* 20 */
		   "\n"
		   "[uplink c]\n"                 /* 22 */
		   "type = tencent\n"
		   "product_id = CS0SLTKSYA\n"
		   "tls = no\n"                   /* 25 */
		   "ca_file = @DIR@/ca.crt\n"     /* 26 */
		   "auth = certificate\n"         /* 27 */
		   "register_api = legacy\n"      /* 28 */
		   "register_url = https://localhost/\n" /* 29 */
		   "sdkappid = 0\n"               /* 30 */
		   "\n"
		   "[uplink d]\n"                 /* 32 */
		   "type = mqtt\n"
		   "product_id = CS0SLTKSYA\n"    /* 34 */
		   "register_api = v3\n",         /* 35 */
		   "@DIR@", tmp);
	write_file("tencent-bad.conf", text, 0644);
	free(text);
	assert_fails(path,
		     "4: [uplink a] needs product_id\n"
		     "7: topic: not used by type = tencent\n"
		     "8: product_key: not used by type = tencent\n"
		     "9: keepalive: 901 is out of range for type = tencent (5..900)\n"
		     "10: region: 'cn-shanghai' is not a Tencent region (ap-guangzhou, us-east, "
		     "europe, ap-bangkok)\n"
		     "11: port: 1883 is the platform's plain-TCP port; with TLS it is 8883 (plain "
		     "TCP needs tls = no, written down)\n"
		     "12: max_rate: 31 is out of range for type = tencent (1..30 messages per "
		     "second per device)\n"
		     "13: sign_method: hmacmd5 is not one of hmacsha256, hmacsha1 (type = tencent)\n"
		     "14: expiry: 1000 is in the past (0 = the default, 2038-01-19)\n"
		     "18: product_id: 'CS0-SLTK' is not valid: the ProductId must be 1..32 letters "
		     "and digits\n"
		     "20: auth: regnwl is for type = aliyun (tencent: psk, certificate or register)\n"
		     "26: ca_file: not used with tls = no (line 25)\n"
		     "27: auth: certificate needs TLS (tls = no at line 25)\n"
		     "28: register_api: only used with auth = register\n"
		     "29: register_url: only used with auth = register\n"
		     "30: sdkappid: 0 is out of range (1..4294967295)\n"
		     "34: product_id: not used by type = mqtt\n"
		     "35: register_api: 'v3' is not one of v2, legacy (did you mean 'v2'?)\n");
	free(path);
}
END_TEST

START_TEST(test_tencent_register)
{
	char *path, *text;

	write_file("tps", "testProductSecret123\n", 0600);
	write_file("tps-short", "short\n", 0600);
	ck_assert_int_ge(asprintf(&path, "%s/tencent-reg.conf", tmp), 0);
	text = replace_all(ALIYUN_HEAD
		   "[uplink a]\ntype = tencent\nproduct_id = CS0SLTKSYA\nca_file = @DIR@/ca.crt\n"
		   "auth = register\n"                          /* 8 */
		   "\n"
		   "[uplink b]\ntype = tencent\nproduct_id = CS0SLTKSYA\nca_file = @DIR@/ca.crt\n"
		   "auth = register\n"                          /* 14 */
		   "product_secret_file = @DIR@/tps-short\n"    /* 15 */
		   "register_api = legacy\nsign_method = hmacsha256\n" /* 17 */
		   "\n"
		   "[uplink c]\ntype = tencent\nproduct_id = CS0SLTKSYA\nca_file = @DIR@/ca.crt\n"
		   "auth = psk\n"
		   "product_secret_file = @DIR@/tps\n"          /* 24 */
		   "\n"
		   "[uplink d]\ntype = tencent\nproduct_id = CS0SLTKSYA\nca_file = @DIR@/ca.crt\n"
		   "auth = register\n"                          /* 30 */
		   "product_secret_file = @DIR@/tps\n"
		   "register_url = https://localhost:4443/device/register\n",
		   "@DIR@", tmp);
	write_file("tencent-reg.conf", text, 0644);
	free(text);
	assert_fails(path,
		     "8: auth: register needs product_secret_file or product_secret_credential\n"
		     "15: product_secret_file: the ProductSecret must be 16..128 printable "
		     "characters without space\n"
		     "17: sign_method: the legacy registration API signs with hmacsha1 only\n"
		     "24: product_secret_file: only used with auth = register\n");

	/* the last one alone is a valid configuration */
	text = replace_all(ALIYUN_HEAD
		   "[uplink d]\ntype = tencent\nproduct_id = CS0SLTKSYA\nca_file = @DIR@/ca.crt\n"
		   "auth = register\nproduct_secret_file = @DIR@/tps\nregister_api = legacy\n"
		   "register_url = https://localhost:4443/device/register\n", "@DIR@", tmp);
	write_file("tencent-reg.conf", text, 0644);
	free(text);
	{
		struct gw_config *c = load_ok(path);
		const struct gw_config_uplink *u = &c->uplinks[0];

		ck_assert_int_eq(u->cloud.auth, GW_CLOUD_AUTH_REGISTER);
		ck_assert_str_eq(u->cloud.product_secret, "testProductSecret123");
		ck_assert_int_eq(u->tencent.register_api, GW_REGISTER_API_LEGACY);
		ck_assert_str_eq(u->cloud.register_url, "https://localhost:4443/device/register");
		gw_config_free(c);
	}
	free(path);
}
END_TEST

START_TEST(test_aliyun_secret_rules)
{
	char *path;
	char *text;

	ck_assert_int_ge(asprintf(&path, "%s/aliyun-secret.conf", tmp), 0);
	write_file("ps", "productSecret1\n", 0644);
	text = replace_all(ALIYUN_HEAD
			   "[uplink a]\n"
			   "type = aliyun\n"
			   "product_key = a1B2c3D4e5F\n"
			   "ca_file = @DIR@/ca.crt\n"
			   "product_secret_file = @DIR@/ps\n" /* 8 */
			   "product_secret_credential = ps\n" /* 9 */
			   "\n"
			   "[uplink b]\n"
			   "type = aliyun\n"
			   "product_key = a1B2c3D4e5F\n"
			   "ca_file = @DIR@/ca.crt\n"
			   "product_secret = s3cret\n" /* 15 */
			   "register_url = https://x/\n", /* 16 */
			   "@DIR@", tmp);
	write_file("aliyun-secret.conf", text, 0600);
	assert_fails(path,
		     "8: product_secret_file: @DIR@/ps is readable by group or others (mode 0644); "
		     "chmod 600 it\n"
		     "9: product_secret_credential: CREDENTIALS_DIRECTORY is not set (run under "
		     "systemd with LoadCredential=ps:PATH, or use product_secret_file)\n"
		     "9: product_secret_credential: only one of product_secret, product_secret_file "
		     "and product_secret_credential may be set (product_secret_file at line 8)\n"
		     "15: product_secret: only used with auth = register or regnwl\n"
		     "16: register_url: only used with auth = register\n");
	free(text);
	free(path);
}
END_TEST

/* event_params (issue 16 item 4): the form of an Alink event post's params, aliyun only. */
START_TEST(test_aliyun_event_params)
{
	struct gw_config *c, *c2;
	char *path;
	char *text;

	ck_assert_int_ge(asprintf(&path, "%s/aliyun-evp.conf", tmp), 0);
	text = replace_all(ALIYUN_HEAD
			   "[uplink dflt]\ntype = aliyun\nproduct_key = a1B2c3D4e5F\n"
			   "ca_file = @DIR@/ca.crt\n"
			   "\n"
			   "[uplink vt]\ntype = aliyun\nproduct_key = a1B2c3D4e5F\n"
			   "ca_file = @DIR@/ca.crt\nevent_params = value-time\n"
			   "\n"
			   "[uplink out]\ntype = aliyun\nproduct_key = a1B2c3D4e5F\n"
			   "ca_file = @DIR@/ca.crt\nevent_params = outputs\n",
			   "@DIR@", tmp);
	write_file("aliyun-evp.conf", text, 0644);
	free(text);
	c = load_ok(path);
	ck_assert_int_eq(c->uplinks[0].aliyun.event_params, GW_EVENT_PARAMS_VALUE_TIME);
	ck_assert_int_eq(c->uplinks[1].aliyun.event_params, GW_EVENT_PARAMS_VALUE_TIME);
	ck_assert_int_eq(c->uplinks[2].aliyun.event_params, GW_EVENT_PARAMS_OUTPUTS);
	/* under one name, a reload that changes only the form restarts the uplink; the default
	 * is the word value-time */
	c2 = load_ok(path);
	ck_assert(gw_config_uplink_equal(&c->uplinks[2], &c2->uplinks[2]));
	strcpy(c2->uplinks[1].name, "dflt");
	strcpy(c2->uplinks[2].name, "dflt");
	ck_assert(gw_config_uplink_equal(&c->uplinks[0], &c2->uplinks[1]));
	ck_assert(!gw_config_uplink_equal(&c->uplinks[0], &c2->uplinks[2]));
	gw_config_free(c2);
	gw_config_free(c);

	text = replace_all(ALIYUN_HEAD
			   "[uplink a]\ntype = aliyun\nproduct_key = a1B2c3D4e5F\n" /* 4 */
			   "ca_file = @DIR@/ca.crt\n"
			   "event_params = value_time\n"          /* 8 */
			   "\n"
			   "[uplink b]\ntype = aliyun\nproduct_key = a1B2c3D4e5F\n" /* 10 */
			   "ca_file = @DIR@/ca.crt\n"
			   "event_params = output\n"              /* 14 */
			   "\n"
			   "[uplink m]\ntype = mqtt\n"            /* 16 */
			   "event_params = outputs\n"             /* 18 */
			   "\n"
			   "[uplink t]\ntype = tencent\nproduct_id = ABCDEFGHIJ\nauth = psk\n" /* 20 */
			   "ca_file = @DIR@/ca.crt\n"
			   "event_params = value-time\n",         /* 25 */
			   "@DIR@", tmp);
	write_file("aliyun-evp.conf", text, 0644);
	free(text);
	assert_fails(path,
		     "8: event_params: 'value_time' is not one of value-time, outputs (did you "
		     "mean 'value-time'?)\n"
		     "14: event_params: 'output' is not one of value-time, outputs (did you mean "
		     "'outputs'?)\n"
		     "18: event_params: not used by type = mqtt\n"
		     "25: event_params: not used by type = tencent\n");
	free(path);
}
END_TEST

/* auth = regnwl and register_via: which keys go with which mode. */
START_TEST(test_aliyun_auth_modes)
{
	struct gw_config *c;
	char *path;
	char *text;

	write_file("ps", "productSecret1\n", 0600);
	ck_assert_int_ge(asprintf(&path, "%s/aliyun-auth.conf", tmp), 0);
	text = replace_all(ALIYUN_HEAD
			   "[uplink nwl]\ntype = aliyun\nproduct_key = a1B2c3D4e5F\n"
			   "ca_file = @DIR@/ca.crt\nauth = regnwl\nproduct_secret_file = @DIR@/ps\n"
			   "\n"
			   "[uplink mq]\ntype = aliyun\nproduct_key = a1B2c3D4e5F\n"
			   "ca_file = @DIR@/ca.crt\nauth = register\nregister_via = mqtt\n"
			   "product_secret_file = @DIR@/ps\n"
			   "\n"
			   "[uplink hs]\ntype = aliyun\nproduct_key = a1B2c3D4e5F\n"
			   "ca_file = @DIR@/ca.crt\nauth = register\nregister_via = https\n"
			   "register_url = https://localhost:4443/auth/register/device\n"
			   "product_secret_file = @DIR@/ps\n",
			   "@DIR@", tmp);
	write_file("aliyun-auth.conf", text, 0644);
	free(text);
	c = load_ok(path);
	ck_assert_int_eq(c->uplinks[0].cloud.auth, GW_CLOUD_AUTH_REGNWL);
	ck_assert_str_eq(c->uplinks[0].cloud.product_secret, "productSecret1");
	ck_assert_int_eq(c->uplinks[1].cloud.auth, GW_CLOUD_AUTH_REGISTER);
	ck_assert_int_eq(c->uplinks[1].aliyun.register_via, GW_REGISTER_VIA_MQTT);
	ck_assert_int_eq(c->uplinks[2].aliyun.register_via, GW_REGISTER_VIA_HTTPS);
	gw_config_free(c);

	text = replace_all(ALIYUN_HEAD
			   "[uplink a]\ntype = aliyun\nproduct_key = a1B2c3D4e5F\n" /* 4 */
			   "ca_file = @DIR@/ca.crt\n"
			   "auth = regnwl\n"                      /* 8 */
			   "register_via = https\n"               /* 9 */
			   "register_url = https://x/\n"          /* 10 */
			   "\n"
			   "[uplink b]\ntype = aliyun\nproduct_key = a1B2c3D4e5F\n" /* 12 */
			   "ca_file = @DIR@/ca.crt\n"
			   "auth = register\n"
			   "product_secret_file = @DIR@/ps\n"
			   "register_via = mqtt\n"                /* 18 */
			   "register_url = https://x/\n"          /* 21 */
			   "\n"
			   "[uplink c]\ntype = aliyun\nproduct_key = a1B2c3D4e5F\n" /* 19 */
			   "ca_file = @DIR@/ca.crt\n"
			   "register_via = mqtt\n"                /* 25 */
			   "\n"
			   "[uplink d]\ntype = aliyun\nproduct_key = a1B2c3D4e5F\n" /* 27 */
			   "ca_file = @DIR@/ca.crt\n"
			   "auth = register\n"
			   "product_secret_file = @DIR@/ps\n"
			   "register_via = http\n",               /* 33 */
			   "@DIR@", tmp);
	write_file("aliyun-auth.conf", text, 0644);
	free(text);
	assert_fails(path,
		     "8: auth: regnwl needs product_secret_file or product_secret_credential\n"
		     "9: register_via: only used with auth = register (regnwl registers over MQTT "
		     "only)\n"
		     "10: register_url: only used with auth = register (regnwl registers over MQTT "
		     "only)\n"
		     "19: register_url: not used with register_via = mqtt (line 18)\n"
		     "25: register_via: only used with auth = register\n"
		     "33: register_via: 'http' is not one of auto, https, mqtt (did you mean "
		     "'https'?)\n");
	free(path);
}
END_TEST

/*
 * Issue 8, the permission rule for the files the configuration names and for itself:
 * secrets (password_file, key_file) no group/other bit, the rest (the configuration, CA and
 * certificate) no group/other write bit; owned by root or the daemon's user; regular files
 * (a FIFO neither blocks nor passes); a symbolic link is judged by its target.
 */
static const char perm_conf[] =
	"[gateway]\n"                    /* 1 */
	"state_dir = @DIR@\n"            /* 2 */
	"[port a]\n"                     /* 3 */
	"path = /dev/ttyUSB0\n"          /* 4 */
	"[uplink u]\n"                   /* 5 */
	"type = mqtt\n"                  /* 6 */
	"tls = yes\n"                    /* 7 */
	"ca_file = @DIR@/ca.crt\n"       /* 8 */
	"cert_file = @DIR@/client.crt\n" /* 9 */
	"key_file = @DIR@/client.key\n"  /* 10 */
	"username = gw\n"                /* 11 */
	"password_file = @DIR@/pw\n";    /* 12 */

static char *perm_path(const char *name)
{
	char *p;

	ck_assert_int_ge(asprintf(&p, "%s/%s", tmp, name), 0);
	return p;
}

/* Loads the configuration at conf expecting r and exactly the diagnostic want ("" for none). */
static void perm_expect(const char *conf, int want_r, const char *want)
{
	struct gw_config *c = NULL;
	char *diag = NULL;
	char *w = replace_all(want, "@DIR@", tmp);
	int r;

	alarm(5); /* a FIFO must not block */
	r = load(conf, &c, &diag);
	alarm(0);
	ck_assert_str_eq(diag, w);
	ck_assert_int_eq(r, want_r);
	gw_config_free(c);
	free(diag);
	free(w);
}

START_TEST(test_file_permissions)
{
	char *text = replace_all(perm_conf, "@DIR@", tmp);
	char *conf = perm_path("perm.conf"), *pw = perm_path("pw"), *key = perm_path("client.key");
	char *ca = perm_path("ca.crt"), *target = perm_path("pw-target"), *link = perm_path("l.conf");
	static const mode_t ok_conf[] = { 0600, 0640, 0644, 0400 };
	static const mode_t bad_conf[] = { 0664, 0666, 0646, 0620 };
	char want[512];

	write_file("perm.conf", text, 0600);
	write_file("pw", "hunter2\n", 0600);
	perm_expect(conf, 0, "");

	/* the configuration itself (no inline secret in it) */
	for (size_t i = 0; i < sizeof(ok_conf) / sizeof(ok_conf[0]); i++) {
		ck_assert_int_eq(chmod(conf, ok_conf[i]), 0);
		perm_expect(conf, 0, "");
	}
	for (size_t i = 0; i < sizeof(bad_conf) / sizeof(bad_conf[0]); i++) {
		ck_assert_int_eq(chmod(conf, bad_conf[i]), 0);
		snprintf(want, sizeof(want), "%s:0: this file is writable by group or others "
			 "(mode %04o); chmod go-w it\n", conf, (unsigned)bad_conf[i]);
		perm_expect(conf, -EPERM, want);
	}
	ck_assert_int_eq(chmod(conf, 0644), 0);
	ck_assert_int_eq(symlink(conf, link), 0);
	perm_expect(link, 0, "");
	ck_assert_int_eq(chmod(conf, 0666), 0);
	snprintf(want, sizeof(want), "%s:0: this file is writable by group or others "
		 "(mode 0666); chmod go-w it\n", link);
	perm_expect(link, -EPERM, want);
	ck_assert_int_eq(chmod(conf, 0600), 0);
	snprintf(want, sizeof(want), "%s/fifo.conf:0: this file is not a regular file (a FIFO)\n",
		 tmp);
	{
		char *fifo = perm_path("fifo.conf");

		ck_assert_int_eq(mkfifo(fifo, 0600), 0);
		perm_expect(fifo, -EPERM, want);
		free(fifo);
	}

	/* secrets: password_file and key_file */
	ck_assert_int_eq(chmod(pw, 0640), 0);
	snprintf(want, sizeof(want), "%s:12: password_file: @DIR@/pw is readable by group or "
		 "others (mode 0640); chmod 600 it\n", conf);
	perm_expect(conf, -EINVAL, want);
	ck_assert_int_eq(chmod(pw, 0400), 0);
	perm_expect(conf, 0, "");
	ck_assert_int_eq(chmod(key, 0644), 0);
	snprintf(want, sizeof(want), "%s:10: key_file: @DIR@/client.key is readable by group or "
		 "others (mode 0644); chmod 600 it\n", conf);
	perm_expect(conf, -EINVAL, want);
	ck_assert_int_eq(chmod(key, 0600), 0);
	/* a symbolic link is judged by its target */
	ck_assert_int_eq(unlink(pw), 0);
	write_file("pw-target", "hunter2\n", 0600);
	ck_assert_int_eq(symlink(target, pw), 0);
	perm_expect(conf, 0, "");
	ck_assert_int_eq(chmod(target, 0644), 0);
	snprintf(want, sizeof(want), "%s:12: password_file: @DIR@/pw is readable by group or "
		 "others (mode 0644); chmod 600 it\n", conf);
	perm_expect(conf, -EINVAL, want);
	ck_assert_int_eq(unlink(pw), 0);
	ck_assert_int_eq(mkfifo(pw, 0600), 0);
	snprintf(want, sizeof(want), "%s:12: password_file: @DIR@/pw is not a regular file\n",
		 conf);
	perm_expect(conf, -EINVAL, want);
	ck_assert_int_eq(unlink(pw), 0);
	write_file("pw", "hunter2\n", 0600);

	/* public files: no group/other write */
	ck_assert_int_eq(chmod(ca, 0666), 0);
	snprintf(want, sizeof(want), "%s:8: ca_file: @DIR@/ca.crt is writable by group or "
		 "others (mode 0666); chmod go-w it\n", conf);
	perm_expect(conf, -EINVAL, want);
	ck_assert_int_eq(chmod(ca, 0644), 0);
	perm_expect(conf, 0, "");

	/* another owner (needs root to make; integration-perms requires it) */
	if (geteuid() == 0) {
		ck_assert_int_eq(chown(pw, 65534, 65534), 0);
		snprintf(want, sizeof(want), "%s:12: password_file: @DIR@/pw is owned by uid "
			 "65534, not by root or the daemon's user (uid 0); chown it\n", conf);
		perm_expect(conf, -EINVAL, want);
		ck_assert_int_eq(chown(pw, 0, 0), 0);
		ck_assert_int_eq(chown(conf, 65534, 65534), 0);
		snprintf(want, sizeof(want), "%s:0: this file is owned by uid 65534, not by root "
			 "or the daemon's user (uid 0); chown it\n", conf);
		perm_expect(conf, -EPERM, want);
		/* the service user (the state directory's owner) is trusted for a run as root */
		ck_assert_int_eq(chown(conf, 0, 0), 0);
		ck_assert_int_eq(chown(pw, 65534, 65534), 0);
		ck_assert_int_eq(chown(tmp, 65534, 65534), 0);
		perm_expect(conf, 0, "");
		ck_assert_int_eq(chown(tmp, 0, 0), 0);
	} else {
		fprintf(stderr, "test_file_permissions: not root, the other-owner cases were not "
			"run here (integration-perms fails without root)\n");
	}
	free(text);
	free(conf);
	free(pw);
	free(key);
	free(ca);
	free(target);
	free(link);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("load");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_shipped_example);
	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_tls_default);
	tcase_add_test(tc, test_acceptance);
	tcase_add_test(tc, test_cannot_open);
	tcase_add_test(tc, test_null_diag);
	tcase_add_test(tc, test_to_string);
	tcase_add_test(tc, test_spool_keys);
	tcase_add_test(tc, test_big_sizes_and_metrics);
	tcase_add_test(tc, test_discovery_keys);
	tcase_add_test(tc, test_max_nodes);
	tcase_add_test(tc, test_control_socket);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_unknown_section);
	tcase_add_test(tc, test_unknown_key);
	tcase_add_test(tc, test_duplicate_key);
	tcase_add_test(tc, test_duplicate_section);
	tcase_add_test(tc, test_bad_baud);
	tcase_add_test(tc, test_out_of_range);
	tcase_add_test(tc, test_trailing_garbage);
	tcase_add_test(tc, test_bad_enum);
	tcase_add_test(tc, test_bad_template);
	tcase_add_test(tc, test_duplicate_port_path);
	tcase_add_test(tc, test_missing_ca_file);
	tcase_add_test(tc, test_cert_without_key);
	tcase_add_test(tc, test_no_port_no_uplink);
	tcase_add_test(tc, test_map_unknown_port);
	tcase_add_test(tc, test_syntax);
	tcase_add_test(tc, test_long_and_nul_lines);
	tcase_add_test(tc, test_port_device);
	suite_add_tcase(s, tc);

	tc = tcase_create("secrets");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_password_without_username);
	tcase_add_test(tc, test_two_password_sources);
	tcase_add_test(tc, test_password_file_mode);
	tcase_add_test(tc, test_file_permissions);
	tcase_add_test(tc, test_password_file_newline);
	tcase_add_test(tc, test_inline_password);
	tcase_add_test(tc, test_password_credential);
	tcase_add_test(tc, test_aliyun_defaults);
	tcase_add_test(tc, test_aliyun_errors);
	tcase_add_test(tc, test_gateway_topology);
	tcase_add_test(tc, test_command_rate);
	tcase_add_test(tc, test_thing_model);
	tcase_add_test(tc, test_aliyun_default_ca);
	tcase_add_test(tc, test_aliyun_secret_rules);
	tcase_add_test(tc, test_aliyun_auth_modes);
	tcase_add_test(tc, test_aliyun_event_params);
	tcase_add_test(tc, test_tencent_defaults);
	tcase_add_test(tc, test_tencent_default_ca);
	tcase_add_test(tc, test_tencent_tls_psk);
	tcase_add_test(tc, test_tencent_errors);
	tcase_add_test(tc, test_tencent_register);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ck_run_suite(config_suite());
}
