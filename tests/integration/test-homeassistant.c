/* SPDX-License-Identifier: MIT */
/*
 * Home Assistant MQTT discovery (docs/homeassistant.md) against the real daemon and a real
 * mosquitto: the retained config of every field a node sends (the keys Home Assistant needs,
 * unit and device class from [map] or the DHT11 defaults, binary_sensor for a boolean), each
 * value_template rendered by Jinja2 (python3-jinja2, as Home Assistant renders it) against
 * the real telemetry message, the gateway's and the node's availability (birth, silence, the
 * will after a SIGKILL), the same unique ids after a restart, a config again when Home
 * Assistant says it is online, and an entity removed when its [map] is.
 */

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cloud.h"
#include "fixture.h"

#define TELEMETRY "sensorgw/stm32-txt/telemetry"
#define CONFIG(kind, field) "homeassistant/" kind "/stm32-txt/" field "/config"
#define MAP_SMOKE "\n[map MQ2]\nidentifier = smoke\nunit = ppm\n"
#define UPLINK_KEYS "discovery = homeassistant\nnode_timeout_s = 2\n"

/* The newest message on topic (NULL when none); *count gets how many came. */
static const struct fx_msg *last_on(const struct fx_msg *m, size_t n, const char *topic,
				    size_t *count)
{
	const struct fx_msg *last = NULL;

	*count = 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(m[i].topic, topic) == 0) {
			last = &m[i];
			(*count)++;
		}
	return last;
}

/* Waits for a message on topic with this payload (NULL: any); bounded. */
static bool wait_for(const char *topic, const char *payload, int timeout_ms)
{
	int64_t end = fx_mono_ms() + timeout_ms * fx_timeout_scale();

	do {
		size_t n, count;
		struct fx_msg *m = fx_subscriber_messages(&n);
		const struct fx_msg *last = last_on(m, n, topic, &count);
		bool ok = last && (!payload || strcmp(last->payload, payload) == 0);

		fx_msgs_free(m, n);
		if (ok)
			return true;
		fx_sleep_ms(50);
	} while (fx_mono_ms() < end);
	return false;
}

static json_t *config_of(const char *topic)
{
	size_t n, count;
	struct fx_msg *m = fx_subscriber_messages(&n);
	const struct fx_msg *last = last_on(m, n, topic, &count);
	json_error_t err;
	json_t *o;

	ck_assert_msg(last, "no config on %s", topic);
	o = json_loads(last->payload, 0, &err);
	ck_assert_msg(json_is_object(o), "%s: not a JSON object: %s", topic, last->payload);
	fx_msgs_free(m, n);
	return o;
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	ck_assert_msg(s, "no string %s", key);
	return s;
}

/* Jinja2, as Home Assistant renders a value_template: value_json is the message's JSON. */
static char *render(const char *tmpl, const char *message)
{
	const char *const argv[] = {
		"/usr/bin/python3",
		"-c",
		"import sys, json, jinja2\n"
		"t = jinja2.Environment().from_string(sys.argv[1])\n"
		"sys.stdout.write(t.render(value_json=json.loads(sys.argv[2]), value=sys.argv[2]))\n",
		tmpl,
		message,
		NULL
	};
	char *out = NULL, *err = NULL;
	int rc = fx_run(argv, &out, &err, 20000);

	ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "jinja2: %s", err);
	free(err);
	return out;
}

/* The config of field: what Home Assistant requires, and the value it would show. */
static void check_entity(const char *topic, const char *field, const char *message,
			 const char *want_value, const char *unit, const char *dclass)
{
	json_t *c = config_of(topic), *dev = json_object_get(c, "device");
	json_t *avail = json_object_get(c, "availability");
	char uid[128];
	char *value;

	snprintf(uid, sizeof(uid), "sensorgw_stm32-txt_%s", field);
	ck_assert_str_eq(str(c, "unique_id"), uid);
	ck_assert_str_eq(str(c, "name"), field);
	ck_assert_str_eq(str(c, "state_topic"), TELEMETRY);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(dev, "identifiers"), 0)),
			 "sensorgw_stm32-txt");
	ck_assert_str_eq(str(dev, "name"), "stm32-txt");
	ck_assert_msg(strncmp(str(dev, "via_device"), "sensorgw_sensorgw-", 18) == 0, "%s",
		      str(dev, "via_device"));
	ck_assert_int_eq(json_array_size(avail), 2);
	ck_assert_str_eq(str(c, "availability_mode"), "all");
	ck_assert_msg(strstr(json_string_value(json_object_get(json_array_get(avail, 1), "topic")),
			     "/stm32-txt/status"),
		      "node availability topic");
	value = render(str(c, "value_template"), message);
	ck_assert_msg(strcmp(value, want_value) == 0, "%s renders '%s', not '%s'", field, value,
		      want_value);
	free(value);
	if (unit)
		ck_assert_str_eq(str(c, "unit_of_measurement"), unit);
	else
		ck_assert_ptr_null(json_object_get(c, "unit_of_measurement"));
	if (dclass)
		ck_assert_str_eq(str(c, "device_class"), dclass);
	else
		ck_assert_ptr_null(json_object_get(c, "device_class"));
	json_decref(c);
}

static char *gateway_topic(void)
{
	size_t n;
	struct fx_msg *m = fx_subscriber_messages(&n);
	char *t = NULL;

	for (size_t i = 0; i < n && !t; i++)
		if (strncmp(m[i].topic, "sensorgw/sensorgw-", 18) == 0 &&
		    strcmp(m[i].topic + strlen(m[i].topic) - 7, "/status") == 0 &&
		    strchr(m[i].topic + 9, '/') == strrchr(m[i].topic, '/'))
			t = strdup(m[i].topic);
	fx_msgs_free(m, n);
	ck_assert_msg(t, "no gateway availability topic");
	return t;
}

START_TEST(test_discovery)
{
	struct fx_pty txt, bin;
	char *conf, *gw, *message, *node_status;
	const char *line = "MQ2=30,DHT11_T=21.5,DHT11_H=40,ok=true\r\n";
	size_t n, count, before;
	struct fx_msg *m;
	const struct fx_msg *last;
	json_t *c;

	fx_broker_start();
	fx_subscriber_start("#");
	fx_pty_new(&txt, "tty-txt");
	fx_pty_new(&bin, "tty-bin");
	conf = fx_config(fx_path("broker/ca.crt"), UPLINK_KEYS MAP_SMOKE);
	fx_daemon_start(conf);
	ck_assert(fx_pty_wait_opened(&txt, fx_daemon_pid(), FX_WAIT_MS));
	ck_assert(fx_daemon_wait_connected(FX_WAIT_MS));
	fx_pty_write(&txt, line, strlen(line));
	ck_assert(wait_for(TELEMETRY, NULL, FX_WAIT_MS));

	/* the entities, each rendered against the real message */
	m = fx_subscriber_messages(&n);
	last = last_on(m, n, TELEMETRY, &count);
	ck_assert_ptr_nonnull(last);
	message = strdup(last->payload);
	fx_msgs_free(m, n);
	check_entity(CONFIG("sensor", "smoke"), "smoke", message, "30", "ppm", NULL);
	check_entity(CONFIG("sensor", "DHT11_T"), "DHT11_T", message, "21.5", "°C", "temperature");
	check_entity(CONFIG("sensor", "DHT11_H"), "DHT11_H", message, "40", "%", "humidity");
	check_entity(CONFIG("binary_sensor", "ok"), "ok", message, "ON", NULL, NULL);
	c = config_of(CONFIG("sensor", "DHT11_T"));
	ck_assert_str_eq(str(c, "state_class"), "measurement");
	json_decref(c);
	c = config_of(CONFIG("binary_sensor", "ok"));
	ck_assert_ptr_null(json_object_get(c, "state_class"));
	json_decref(c);

	/* the gateway: a connectivity entity on its availability topic, online */
	gw = gateway_topic();
	ck_assert(wait_for(gw, "online", FX_WAIT_MS));
	node_status = strdup(fx_strf("%s", gw));
	node_status[strlen(node_status) - strlen("/status")] = '\0';
	{
		char *t = strdup(fx_strf("%s/stm32-txt/status", node_status));

		free(node_status);
		node_status = t;
	}
	ck_assert(wait_for(node_status, "online", FX_WAIT_MS));
	/* silent for node_timeout_s: the node goes offline, the gateway stays */
	ck_assert(wait_for(node_status, "offline", 6000));
	ck_assert(wait_for(gw, "online", 0));
	/* a reading brings it back */
	fx_pty_write(&txt, line, strlen(line));
	ck_assert(wait_for(node_status, "online", FX_WAIT_MS));

	/* Home Assistant restarted: it is told everything again */
	m = fx_subscriber_messages(&n);
	(void)last_on(m, n, CONFIG("sensor", "DHT11_T"), &before);
	fx_msgs_free(m, n);
	fx_subscriber_publish("homeassistant/status", "online");
	for (int i = 0; i < 100; i++) {
		m = fx_subscriber_messages(&n);
		(void)last_on(m, n, CONFIG("sensor", "DHT11_T"), &count);
		fx_msgs_free(m, n);
		if (count > before)
			break;
		fx_sleep_ms(50);
	}
	ck_assert_uint_gt(count, before);

	/* a SIGKILL: the broker publishes the will */
	fx_daemon_kill();
	ck_assert(wait_for(gw, "offline", FX_WAIT_MS));

	/* a restart: the same retained configs, unique ids unchanged, the gateway online */
	fx_subscriber_stop();
	fx_daemon_start(conf);
	ck_assert(fx_daemon_wait_connected(FX_WAIT_MS));
	fx_subscriber_start("#");
	ck_assert(wait_for(gw, "online", FX_WAIT_MS));
	ck_assert(wait_for(CONFIG("sensor", "DHT11_T"), NULL, FX_WAIT_MS));
	/* what the broker kept: delivered at the subscription, flagged retained (a config the
	 * daemon announced after that comes unflagged) */
	m = fx_subscriber_messages(&n);
	count = 0;
	for (size_t i = 0; i < n; i++)
		count += m[i].retained && strcmp(m[i].topic, CONFIG("sensor", "smoke")) == 0 &&
			 m[i].len > 0;
	ck_assert_msg(count == 1, "%zu retained smoke configs", count);
	fx_msgs_free(m, n);
	check_entity(CONFIG("sensor", "smoke"), "smoke", message, "30", "ppm", NULL);
	check_entity(CONFIG("sensor", "DHT11_T"), "DHT11_T", message, "21.5", "°C", "temperature");
	ck_assert_int_eq(fx_daemon_stop(NULL), 0);
	/* a clean stop says offline itself */
	ck_assert(wait_for(gw, "offline", FX_WAIT_MS));

	/* [map MQ2] removed: the smoke entity is removed (an empty retained config) */
	free(conf);
	conf = fx_config(fx_path("broker/ca.crt"), UPLINK_KEYS);
	fx_daemon_start(conf);
	ck_assert(fx_daemon_wait_connected(FX_WAIT_MS));
	ck_assert(wait_for(CONFIG("sensor", "smoke"), "", FX_WAIT_MS));
	ck_assert(fx_daemon_log_contains("smoke of stm32-txt no longer comes out of the [map]s"));
	/* and stays removed: a new subscriber gets no retained config for it */
	fx_subscriber_stop();
	fx_subscriber_start("#");
	ck_assert(wait_for(CONFIG("sensor", "DHT11_T"), NULL, FX_WAIT_MS));
	m = fx_subscriber_messages(&n);
	last = last_on(m, n, CONFIG("sensor", "smoke"), &count);
	ck_assert_msg(!last, "the removed entity is still retained: '%s'", last->payload);
	fx_msgs_free(m, n);
	/* the raw field is announced as itself when it comes */
	fx_pty_write(&txt, line, strlen(line));
	ck_assert(wait_for(CONFIG("sensor", "MQ2"), NULL, FX_WAIT_MS));

	ck_assert_int_eq(fx_daemon_stop(NULL), 0);
	free(message);
	free(gw);
	free(node_status);
	free(conf);
	fx_pty_close(&txt);
	fx_pty_close(&bin);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("homeassistant");
	TCase *tc = tcase_create("homeassistant");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_discovery);
	suite_add_tcase(s, tc);
	return cl_run(s);
}
