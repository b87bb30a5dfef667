/* SPDX-License-Identifier: MIT */
/*
 * sensorgwctl decode: the real binary with a configuration of a text and a binary port, an
 * mqtt and two aliyun uplinks (event_params value-time and outputs) and a [map]; its JSON is
 * checked against what the daemon's drivers publish (docs/payload.md, the Alink property and
 * event posts), and its refusals.
 */

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "fixture.h"
#include "sgw_node.h"

static const uint8_t uid[12] = { 0x10, 0x20, 0x30, 0x40, 0x50, 0x60,
				 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0 };

static void write_config(void)
{
	char *c = NULL;

	ck_assert(asprintf(&c,
			   "[gateway]\nstate_dir = %s/state\ndevice_name = node-{uid}\n\n"
			   "[port txt]\npath = %s/tty-txt\nframing = text\n\n"
			   "[port bin]\npath = %s/tty-bin\nframing = binary\n\n"
			   "[uplink local]\ntype = mqtt\ntopic = gw/{device}/{kind}\n\n"
			   "[uplink ali]\ntype = aliyun\nproduct_key = a1B2c3D4e5F\n"
			   "auth = device-secret\nca_file = %s/conf/ca/aliyun-iot-roots.pem\n\n"
"[uplink ali_sdk]\ntype = aliyun\nproduct_key = a1B2c3D4e5F\n"
			   "ca_file = %s/conf/ca/aliyun-iot-roots.pem\nevent_params = outputs\n\n"
			   "[map DHT11_T]\nidentifier = temperature\nscale = 0.1\ntype = float\n",
			   fx_dir(), fx_dir(), fx_dir(), fx_env("GW_SOURCE_ROOT"),
			   fx_env("GW_SOURCE_ROOT")) > 0);
	fx_write_file(fx_path("gw.conf"), c, 0600);
	free(c);
}

/* Runs sensorgwctl with args; returns its exit code, output in *out and *err. */
static int ctl(const char *const *args, char **out, char **err)
{
	const char *argv[16] = { fx_env("GW_CTL") };
	int n = 1, st;

	for (; *args && n < 15; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	st = fx_run(argv, out, err, 20000);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static char *hex(const uint8_t *b, size_t n)
{
	char *s = malloc(3 * n + 1);

	for (size_t i = 0; i < n; i++)
		sprintf(s + 3 * i, "%02x ", b[i]);
	s[3 * n] = '\0';
	return s;
}

START_TEST(test_binary)
{
	uint8_t wire[SGW_MAX_WIRE];
	struct sgw_builder b;
	char *out, *err, *h1, *h2;
	json_t *res, *rec, *up, *payload;
	json_error_t jerr;
	size_t n;

	write_config();
	n = fx_bin_hello(wire, 3, 1, uid, 7, "fw-9");
	h1 = hex(wire, n);
	sgw_begin(&b, SGW_TYPE_TELEMETRY, 3, 2);
	sgw_put_i32(&b, "DHT11_T", 215);
	sgw_put_i32(&b, "MQ2", 40);
	n = sgw_finish(&b, wire, sizeof(wire));
	h2 = hex(wire, n);
	{
		const char *const args[] = { "decode", "-c", fx_path("gw.conf"), "--port", "bin",
			"--json", h1, h2, NULL };

		ck_assert_int_eq(ctl(args, &out, &err), 0);
	}
	res = json_loads(out, 0, &jerr);
	ck_assert_msg(json_is_array(res) && json_array_size(res) == 2, "%s", out);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(res, 0), "type")),
			 "hello");
	rec = json_array_get(res, 1);
	ck_assert_str_eq(json_string_value(json_object_get(rec, "device")),
			 "node-102030405060708090a0b0c0");
	ck_assert_int_eq(json_integer_value(json_object_get(rec, "seq")), 2);
	payload = json_loads(json_string_value(json_object_get(rec, "record")), 0, &jerr);
	ck_assert_msg(payload, "record: %s", jerr.text);
	/* the [map]: tenths of a degree become a float named temperature */
	ck_assert(json_real_value(json_object_get(json_object_get(payload, "params"),
						  "temperature")) == 21.5);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(payload, "params"),
							    "MQ2")), 40);
	json_decref(payload);

	up = json_array_get(json_object_get(rec, "uplinks"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(up, "topic")),
			 "gw/node-102030405060708090a0b0c0/telemetry");
	/* the mqtt uplink publishes the record as stored */
	ck_assert_str_eq(json_string_value(json_object_get(up, "payload")),
			 json_string_value(json_object_get(rec, "record")));
	up = json_array_get(json_object_get(rec, "uplinks"), 1);
	ck_assert_str_eq(json_string_value(json_object_get(up, "topic")),
			 "/sys/a1B2c3D4e5F/node-102030405060708090a0b0c0/thing/event/property/"
			 "post");
	payload = json_loads(json_string_value(json_object_get(up, "payload")), 0, &jerr);
	ck_assert_msg(payload, "alink: %s", jerr.text);
	ck_assert_str_eq(json_string_value(json_object_get(payload, "method")),
			 "thing.event.property.post");
	ck_assert(json_real_value(json_object_get(json_object_get(payload, "params"),
						  "temperature")) == 21.5);
	json_decref(payload);
	json_decref(res);
	free(out);
	free(err);

	/* the table form */
	{
		const char *const args[] = { "decode", "-c", fx_path("gw.conf"), "--port", "bin",
			h1, h2, NULL };

		ck_assert_int_eq(ctl(args, &out, &err), 0);
		ck_assert_msg(strstr(out, "uplink ali (aliyun): /sys/a1B2c3D4e5F/") &&
			      strstr(out, "hello frame, address 3"), "%s", out);
		free(out);
		free(err);
	}
	free(h1);
	free(h2);
}
END_TEST

START_TEST(test_text_and_errors)
{
	char *out, *err;
	json_t *res;
	json_error_t jerr;

	write_config();
	{
		const char *const args[] = { "decode", "-c", fx_path("gw.conf"), "-p", "txt", "-j",
			"DHT11_T=215,hum=40", "temp=1.5*00", NULL };

		ck_assert_int_eq(ctl(args, &out, &err), 0);
	}
	res = json_loads(out, 0, &jerr);
	ck_assert_msg(json_array_size(res) == 2, "%s", out);
	ck_assert(json_is_true(json_object_get(json_array_get(res, 0), "ok")));
	/* a bad checksum: what the daemon does with it */
	ck_assert(json_is_false(json_object_get(json_array_get(res, 1), "ok")));
	ck_assert_msg(strstr(json_string_value(json_object_get(json_array_get(res, 1), "effect")),
			     "skipped"), "%s", out);
	json_decref(res);
	free(out);
	free(err);

	/* lines in the clouds' own shapes (docs/protocol.md 2.4.1), and a refusal with its reason */
	{
		const char *const args[] = { "decode", "-c", fx_path("gw.conf"), "-p", "txt", "-j",
			"{\"method\":\"report\",\"clientToken\":\"CS0SLTKSYA-12\",\"params\":"
			"{\"MQ2\":30,\"ok\":true}}",
			"{\"id\":\"77\",\"version\":\"1.0\",\"params\":{\"level\":3},"
			"\"method\":\"thing.event.smoke_alarm.post\"}",
			"{\"a\":{\"b\":1}}", NULL };

		ck_assert_int_eq(ctl(args, &out, &err), 0);
	}
	res = json_loads(out, 0, &jerr);
	ck_assert_msg(json_array_size(res) == 3, "%s", out);
	{
		json_t *r0 = json_array_get(res, 0), *r1 = json_array_get(res, 1);
		json_t *r2 = json_array_get(res, 2);
		json_t *u0 = json_object_get(r0, "uplinks"), *u1 = json_object_get(r1, "uplinks");
		const char *rec0 = json_string_value(json_object_get(r0, "record"));
		const char *rec1 = json_string_value(json_object_get(r1, "record"));
		const char *mqtt0 = json_string_value(json_object_get(json_array_get(u0, 0),
								      "payload"));
		const char *ali0 = json_string_value(json_object_get(json_array_get(u0, 1),
								     "payload"));
		const char *ali1 = json_string_value(json_object_get(json_array_get(u1, 1),
								     "topic"));
		const char *ali1_post = json_string_value(json_object_get(json_array_get(u1, 1),
									  "payload"));
		const char *sdk1_post = json_string_value(json_object_get(json_array_get(u1, 2),
									  "payload"));

		ck_assert_msg(json_is_true(json_object_get(r0, "ok")), "%s", out);
		ck_assert_str_eq(json_string_value(json_object_get(r0, "type")), "telemetry");
		ck_assert_msg(rec0 && strstr(rec0, "\"trace\":\"CS0SLTKSYA-12\",\"params\":"
				       "{\"MQ2\":30,\"ok\":true}}"), "%s", out);
		/* the mqtt uplink publishes the record as stored; the Alink post has the params
		 * only, the bool as 1 */
		ck_assert_msg(mqtt0 && strstr(mqtt0, "\"trace\":\"CS0SLTKSYA-12\""), "%s", out);
		ck_assert_msg(ali0 && strstr(ali0, "\"params\":{\"MQ2\":30,\"ok\":1}") &&
			      !strstr(ali0, "trace"), "%s", out);
		ck_assert_str_eq(json_string_value(json_object_get(r1, "type")), "event");
		ck_assert_msg(rec1 && strstr(rec1, "\"event\":\"smoke_alarm\",\"trace\":\"77\","
				       "\"params\":{\"level\":3}"), "%s", out);
		ck_assert_msg(ali1 && strstr(ali1, "/thing/event/smoke_alarm/post"), "%s", out);
		/* event_params: value-time (the default) and outputs, the SDKs' form */
		ck_assert_msg(ali1_post && strstr(ali1_post, "\"params\":{\"value\":{\"level\":3},"
							     "\"time\":"), "%s", out);
		ck_assert_msg(sdk1_post && strstr(sdk1_post, "\"params\":{\"level\":3},\"method\":"
							     "\"thing.event.smoke_alarm.post\"}"),
			      "%s", out);
		ck_assert(json_is_false(json_object_get(r2, "ok")));
		ck_assert_str_eq(json_string_value(json_object_get(r2, "error")), "malformed");
		ck_assert_msg(json_string_value(json_object_get(r2, "reason")) &&
			      strstr(json_string_value(json_object_get(r2, "reason")),
				     "nested object in field 'a'"), "%s", out);
	}
	json_decref(res);
	free(out);
	free(err);

	{
		const char *const args[] = { "decode", "-c", fx_path("gw.conf"), "-p", "nope",
			"x", NULL };

		ck_assert_int_eq(ctl(args, &out, &err), 1);
		ck_assert_msg(strstr(err, "no [port nope]"), "%s", err);
		free(out);
		free(err);
	}
	{
		const char *const args[] = { "decode", "-c", fx_path("gw.conf"), "-p", "bin",
			"zz 01", NULL };

		ck_assert_int_eq(ctl(args, &out, &err), 1);
		ck_assert_msg(strstr(err, "not hex bytes"), "%s", err);
		free(out);
		free(err);
	}
	{
		const char *const args[] = { "decode", "-c", fx_path("gw.conf"), "x", NULL };

		ck_assert_int_eq(ctl(args, &out, &err), 2);
		ck_assert_msg(strstr(err, "--port is missing"), "%s", err);
		free(out);
		free(err);
	}
	/* a bad configuration: the loader's FILE:LINE messages */
	fx_write_file(fx_path("bad.conf"), "[gateway]\nbogus = 1\n", 0600);
	{
		const char *const args[] = { "decode", "-c", fx_path("bad.conf"), "-p", "txt", "x",
			NULL };

		ck_assert_int_eq(ctl(args, &out, &err), 1);
		ck_assert_msg(strstr(err, "bad.conf:2: unknown key 'bogus'"), "%s", err);
		free(out);
		free(err);
	}
}
END_TEST

/* An uplink with a thing model: decode shows the message as converted and what was left out. */
START_TEST(test_thing_model)
{
	char *c = NULL, *out, *err;
	json_t *res, *up, *payload, *params;
	json_error_t jerr;

	ck_assert(asprintf(&c,
			   "[gateway]\nstate_dir = %s/state\ndevice_name = node-{port}\n\n"
			   "[port txt]\npath = %s/tty-txt\nframing = text\n\n"
			   "[uplink ali]\ntype = aliyun\nproduct_key = a1TestProd01\n"
			   "ca_file = %s/conf/ca/aliyun-iot-roots.pem\n"
			   "thing_model = %s/tests/data/models/aliyun-tsl.json\n",
			   fx_dir(), fx_dir(), fx_env("GW_SOURCE_ROOT"),
			   fx_env("GW_SOURCE_ROOT")) > 0);
	fx_write_file(fx_path("gw.conf"), c, 0600);
	free(c);
	{
		const char *const args[] = { "decode", "-c", fx_path("gw.conf"), "--port", "txt",
			"--json", "MQ2=30.27,Buzzer=true,DHT11_H=150", NULL };

		ck_assert_int_eq(ctl(args, &out, &err), 0);
	}
	res = json_loads(out, 0, &jerr);
	ck_assert_msg(json_is_array(res), "%s", out);
	up = json_array_get(json_object_get(json_array_get(res, 0), "uplinks"), 0);
	payload = json_loads(json_string_value(json_object_get(up, "payload")), 0, &jerr);
	ck_assert_msg(payload, "%s", out);
	params = json_object_get(payload, "params");
	ck_assert(json_real_value(json_object_get(params, "MQ2")) == 30.3);
	ck_assert_int_eq(json_integer_value(json_object_get(params, "Buzzer")), 1);
	ck_assert_ptr_null(json_object_get(params, "DHT11_H"));
	ck_assert_str_eq(json_string_value(json_object_get(up, "left_out")), "DHT11_H (out of range)");
	json_decref(payload);
	json_decref(res);
	free(out);
	free(err);
	{
		const char *const args[] = { "decode", "-c", fx_path("gw.conf"), "--port", "txt",
			"MQ2=30.27,Buzzer=true,DHT11_H=150", NULL };

		ck_assert_int_eq(ctl(args, &out, &err), 0);
		ck_assert_msg(strstr(out, "left out by the thing model: DHT11_H (out of range)"), "%s",
			      out);
		free(out);
		free(err);
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("decode");
	TCase *tc = tcase_create("decode");

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_add_test(tc, test_binary);
	tcase_add_test(tc, test_thing_model);
	tcase_add_test(tc, test_text_and_errors);
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
