/* SPDX-License-Identifier: MIT */
/*
 * Zero-touch provisioning end to end, once per dynamic auth mode (register over HTTPS,
 * register over MQTT, regnwl), with the real daemon, the loopback Aliyun test cloud
 * (tests/cloud/aliyun_cloud.py) and a binary node simulated by sensorgw-sim, whose device
 * name comes from the UID in its hello (device_name = stm32-{uid}): the node appears, its
 * device registers, the credential is stored 0600 in a 0700 directory, the session comes up,
 * Alink property posts arrive; after a restart nothing registers again and data flows; a
 * property set and a service call from the cloud reach the node and its codes come back.
 */

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloud.h"
#include "fixture.h"

#define PK CL_PK
#define UID "0123456789abcdef01234567"
#define DN "stm32-" UID
#define CRED_DIR "state/credentials/ali"
#define CRED_FILE CRED_DIR "/" DN ".json"
#define POST_TOPIC "/sys/" PK "/" DN "/thing/event/property/post"

static const struct {
	const char *auth;
	const char *via;       /* register_via, NULL for regnwl */
	const char *cred_kind; /* "kind" in the credential file */
	const char *push_kind; /* register_push of the MQTT registration, NULL: over HTTPS */
	const char *logged;    /* the daemon's line when it registered */
} modes[] = {
	{ "register", "https", "device_secret", NULL,
	  "device " DN ": registered over HTTPS; DeviceSecret stored" },
	{ "register", "mqtt", "device_secret", "register",
	  "device " DN ": registered over MQTT; DeviceSecret stored" },
	{ "regnwl", NULL, "device_token", "regnwl",
	  "device " DN ": registered over MQTT; ClientID and DeviceToken stored" },
};

static char *mode_config(int i)
{
	char extra[512];

	if (modes[i].via)
		return cl_binary_config(cl_register_config_via(modes[i].via), "stm32-{uid}");
	fx_write_secret(fx_path("product.secret"), CL_PS);
	snprintf(extra, sizeof(extra), "auth = %s\nproduct_secret_file = %s\n", modes[i].auth,
		 fx_path("product.secret"));
	return cl_binary_config(cl_aliyun_config(extra), "stm32-{uid}");
}

/* Registrations the cloud counts for DN: registerCount, or the tokens regnwl issued. */
static size_t registrations(void)
{
	json_t *r = cl_ctl("device", cl_dev_args(DN));
	size_t n = (size_t)json_integer_value(json_object_get(r, "registerCount")) +
		   json_array_size(json_object_get(r, "tokens"));

	json_decref(r);
	return n;
}

/* Events since seq of DN named ev (field == value when field is not NULL). */
static size_t count_since(json_int_t since, const char *ev, const char *field, const char *value)
{
	json_t *r = cl_ctl("log", json_pack("{s:I,s:s,s:i}", "since", since, "ev", ev, "limit",
					    100000));
	size_t i, n = 0;
	json_t *e;

	json_array_foreach(json_object_get(r, "events"), i, e) {
		const char *dn = json_string_value(json_object_get(e, "deviceName"));
		const char *v = field ? json_string_value(json_object_get(e, field)) : NULL;

		if (dn && strcmp(dn, DN) == 0 && (!field || (v && strcmp(v, value) == 0)))
			n++;
	}
	json_decref(r);
	return n;
}

static void assert_mode(const char *path, mode_t mode)
{
	struct stat st;

	ck_assert_msg(stat(fx_path(path), &st) == 0, "%s is missing", path);
	ck_assert_msg((st.st_mode & 07777) == mode, "%s has mode %04o, not %04o", path,
		      (unsigned)(st.st_mode & 07777), (unsigned)mode);
}

/* Every property post of DN the cloud received is an Alink request (docs/protocols/aliyun.md §5):
 * id a decimal string, version 1.0, the topic's method, params a non-empty object. */
static void assert_alink_posts(void)
{
	json_t *r = cl_ctl("log", json_pack("{s:s,s:i}", "ev", "mqtt_publish_in", "limit",
					    100000));
	size_t i, n = 0;
	json_t *e;

	json_array_foreach(json_object_get(r, "events"), i, e) {
		const char *topic = json_string_value(json_object_get(e, "topic"));
		const char *text = json_string_value(json_object_get(e, "payload"));
		json_t *o, *params;
		const char *id;

		if (!topic || strcmp(topic, POST_TOPIC) != 0)
			continue;
		o = json_loads(text ? text : "", 0, NULL);
		ck_assert_msg(json_is_object(o), "a property post is not a JSON object: %s", text);
		id = json_string_value(json_object_get(o, "id"));
		ck_assert_msg(id && id[0] && strspn(id, "0123456789") == strlen(id) &&
			      strlen(id) <= 10, "bad id in %s", text);
		ck_assert_str_eq(json_string_value(json_object_get(o, "version")), "1.0");
		ck_assert_str_eq(json_string_value(json_object_get(o, "method")),
				 "thing.event.property.post");
		params = json_object_get(o, "params");
		ck_assert_msg(json_is_object(params) && json_object_size(params) > 0,
			      "no params in %s", text);
		json_decref(o);
		n++;
	}
	json_decref(r);
	ck_assert_msg(n > 0, "no property post of " DN " reached the cloud");
}

static void assert_commands(void)
{
	json_t *reply;

	/* the node applies a property and answers with the value now in force */
	reply = cl_downlink("property_set", json_pack("{s:s,s:{s:i}}", "deviceName", DN,
						      "params", "report_interval_ms", 700), 10);
	ck_assert_int_eq(cl_reply_code(reply), 200);
	ck_assert_str_eq(json_string_value(json_object_get(reply, "topic")),
			 "/sys/" PK "/" DN "/thing/service/property/set_reply");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(reply, "data"),
							    "report_interval_ms")), 700);
	ck_assert_msg(cl_sim_log_has("property-set '' -> 200 report_interval_ms=700"),
		      "the simulator did not get the value");
	json_decref(reply);

	/* the node's own refusal reaches the cloud with its code */
	reply = cl_downlink("property_set", json_pack("{s:s,s:{s:i}}", "deviceName", DN,
						      "params", "no_such_property", 1), 10);
	ck_assert_int_eq(cl_reply_code(reply), 422);
	ck_assert(cl_sim_log_has("-> 422 rejected=no_such_property"));
	json_decref(reply);

	/* an asynchronous service call, answered on thing/service/ping_reply */
	reply = cl_downlink("service_call", json_pack("{s:s,s:s,s:{}}", "deviceName", DN,
						      "service", "ping", "params"), 10);
	ck_assert_int_eq(cl_reply_code(reply), 200);
	ck_assert_str_eq(json_string_value(json_object_get(reply, "topic")),
			 "/sys/" PK "/" DN "/thing/service/ping_reply");
	ck_assert(json_integer_value(json_object_get(json_object_get(reply, "data"),
						     "uptime_ms")) > 0);
	json_decref(reply);
}

START_TEST(test_e2e)
{
	char want[64];
	size_t regs, pushes, https;
	json_int_t mark;
	char *conf, *text;
	json_t *r;
	int status;

	cl_start_opts(modes[_i].via ? "\"" DN "\"" : "", !modes[_i].via);
	/* the simulator's gas readings are not in the test product's schema */
	r = cl_ctl("set_product", json_pack("{s:s,s:n}", "productKey", PK, "schema"));
	ck_assert(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	(void)cl_sim_start(UID);
	conf = mode_config(_i);
	fx_daemon_start(conf);

	/* the node appears: registered, stored, connected, its readings arrive */
	ck_assert_msg(cl_wait(json_pack("{s:s,s:s,s:i}", "ev", "alink_post", "deviceName", DN,
					   "code", 200), 30), "no accepted property post");
	ck_assert(fx_daemon_log_contains(modes[_i].logged));
	ck_assert_uint_eq(registrations(), 1);
	if (modes[_i].push_kind) {
		ck_assert_uint_eq(cl_count("register_push", "kind", modes[_i].push_kind), 1);
		ck_assert_uint_eq(cl_count("https_request", NULL, NULL), 0);
	} else {
		ck_assert_uint_eq(cl_count("https_register", NULL, NULL), 1);
		ck_assert_uint_eq(cl_count("register_push", NULL, NULL), 0);
	}
	assert_mode(CRED_DIR, 0700);
	assert_mode(CRED_FILE, 0600);
	text = fx_read_file(fx_path(CRED_FILE));
	ck_assert_ptr_nonnull(text);
	snprintf(want, sizeof(want), "\"kind\":\"%s\"", modes[_i].cred_kind);
	ck_assert_msg(strstr(text, want), "%s is not a %s", CRED_FILE, modes[_i].cred_kind);
	free(text);
	ck_assert_int_ge(cl_device_field(DN, "connectCount"), 1);
	if (!modes[_i].via) /* a DeviceToken logs in with authType=connwl */
		ck_assert_uint_ge(count_since(0, "mqtt_connect", "authType", "connwl"), 1);
	assert_alink_posts();

	/* restart: the stored credential logs in, nothing registers again, data flows */
	regs = registrations();
	pushes = cl_count("register_push", NULL, NULL);
	https = cl_count("https_register", NULL, NULL);
	ck_assert(WIFEXITED(status = fx_daemon_stop(NULL)));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	mark = cl_seq();
	fx_daemon_start(conf);
	ck_assert_msg(cl_wait_since(json_pack("{s:s,s:s,s:i}", "ev", "alink_post", "deviceName",
					      DN, "code", 200), mark, 30),
		      "no data after the restart");
	ck_assert_uint_eq(registrations(), regs);
	ck_assert_uint_eq(cl_count("register_push", NULL, NULL), pushes);
	ck_assert_uint_eq(cl_count("https_register", NULL, NULL), https);
	ck_assert_uint_eq(count_since(mark, "mqtt_connect", "authType", modes[_i].auth), 0);
	assert_alink_posts();

	/* commands from the cloud reach the node; the answers carry its codes */
	assert_commands();
	fx_sim_stop();
	free(conf);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("aliyun-e2e");
	TCase *tc = tcase_create("e2e");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_e2e, 0, (int)(sizeof(modes) / sizeof(modes[0])));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cl_run(suite());
}
