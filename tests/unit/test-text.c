/* SPDX-License-Identifier: MIT */
/* Unit tests for the text framing: line splitting, the line grammar and value typing. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/frame.h"

#define CAPTURE_MAX 32

static struct gw_frame frame;

static enum gw_frame_error parse(const char *line)
{
	return gw_text_parse_line(line, strlen(line), &frame);
}

static const struct gw_field *field(const char *key)
{
	size_t i;

	for (i = 0; i < frame.n_fields; i++)
		if (strcmp(frame.fields[i].key, key) == 0)
			return &frame.fields[i];
	ck_abort_msg("no field %s", key);
	return NULL;
}

static void assert_int(const char *key, int64_t v)
{
	const struct gw_field *f = field(key);

	ck_assert_int_eq(f->value.type, GW_VALUE_INT);
	ck_assert(f->value.i == v);
}

static void assert_double(const char *key, double v)
{
	const struct gw_field *f = field(key);

	ck_assert_int_eq(f->value.type, GW_VALUE_DOUBLE);
	ck_assert_double_eq(f->value.d, v);
}

static void assert_string(const char *key, const char *v)
{
	const struct gw_field *f = field(key);

	ck_assert_int_eq(f->value.type, GW_VALUE_STRING);
	ck_assert_str_eq(f->value.s, v);
}

static void assert_bool(const char *key, bool v)
{
	const struct gw_field *f = field(key);

	ck_assert_int_eq(f->value.type, GW_VALUE_BOOL);
	ck_assert(f->value.b == v);
}

/* Builds "$body*HH" with the NMEA checksum of body. */
static void with_checksum(const char *body, bool upper, char *out, size_t size)
{
	unsigned int sum = 0;
	const char *p;

	for (p = body; *p; p++)
		sum ^= (unsigned char)*p;
	snprintf(out, size, upper ? "$%s*%02X" : "$%s*%02x", body, sum);
}

struct capture {
	size_t n;
	struct gw_frame frames[CAPTURE_MAX];
	enum gw_frame_error errs[CAPTURE_MAX];
};

static void on_frame(const struct gw_frame *f, enum gw_frame_error err, void *user_data)
{
	struct capture *c = user_data;

	ck_assert_uint_lt(c->n, CAPTURE_MAX);
	memcpy(&c->frames[c->n], f, sizeof(*f));
	c->errs[c->n] = err;
	c->n++;
}

static struct gw_decoder *text_decoder(void)
{
	struct gw_decoder *d = NULL;

	ck_assert_int_eq(gw_decoder_new(GW_FRAMING_TEXT, &d), 0);
	return d;
}

static void feed_str(struct gw_decoder *d, const char *s, struct capture *c)
{
	gw_decoder_feed(d, (const uint8_t *)s, strlen(s), on_frame, c);
}

/* ---- grammar ---- */

START_TEST(test_separators)
{
	ck_assert_int_eq(parse("MQ2=30,MQ135=95;MQ4=12 MQ7=8\tDHT11_T=14.5"), GW_FRAME_OK);
	ck_assert_int_eq(frame.type, GW_FRAME_TELEMETRY);
	ck_assert(!frame.has_addr);
	ck_assert(!frame.has_seq);
	ck_assert_uint_eq(frame.n_fields, 5);
	ck_assert_str_eq(frame.fields[0].key, "MQ2");
	ck_assert_str_eq(frame.fields[4].key, "DHT11_T");
	assert_int("MQ2", 30);
	assert_int("MQ135", 95);
	assert_int("MQ4", 12);
	assert_int("MQ7", 8);
	assert_double("DHT11_T", 14.5);

	/* runs of mixed separators, leading and trailing ones */
	ck_assert_int_eq(parse(" ,; a=1 ,\t; b=2;;  "), GW_FRAME_OK);
	ck_assert_uint_eq(frame.n_fields, 2);

	ck_assert_int_eq(parse("MQ2:30 MQ135:95"), GW_FRAME_OK);
	ck_assert_uint_eq(frame.n_fields, 2);
	assert_int("MQ135", 95);
	ck_assert_int_eq(parse("a:1,b=2"), GW_FRAME_OK);
	ck_assert_uint_eq(frame.n_fields, 2);
	/* only the first = or : splits: the rest belongs to the value */
	ck_assert_int_eq(parse("time=12:30 url:a=b"), GW_FRAME_OK);
	assert_string("time", "12:30");
	assert_string("url", "a=b");
}
END_TEST

START_TEST(test_keys_and_limits)
{
	char line[1024];
	size_t len, i;

	ck_assert_int_eq(parse("a.b-c_D9=1"), GW_FRAME_OK);
	assert_int("a.b-c_D9", 1);
	ck_assert_int_eq(parse("k123456789012345678901234567890=1"), GW_FRAME_OK); /* 31 */
	ck_assert_int_eq(parse("k1234567890123456789012345678901=1"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("a/b=1"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("=5"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("a="), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("a= b=1"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("a=1 foo"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("foo"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("a = 1"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("   "), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse(",;"), GW_FRAME_ERR_MALFORMED);

	/* a duplicate key replaces the earlier value, in place */
	ck_assert_int_eq(parse("a=1 b=2 a=x"), GW_FRAME_OK);
	ck_assert_uint_eq(frame.n_fields, 2);
	ck_assert_str_eq(frame.fields[0].key, "a");
	assert_string("a", "x");

	/* GW_FRAME_MAX_FIELDS fields, then one more */
	len = 0;
	for (i = 0; i < GW_FRAME_MAX_FIELDS; i++)
		len += (size_t)sprintf(line + len, "k%zu=%zu ", i, i);
	ck_assert_int_eq(parse(line), GW_FRAME_OK);
	ck_assert_uint_eq(frame.n_fields, GW_FRAME_MAX_FIELDS);
	sprintf(line + len, "k%zu=%zu", i, i);
	ck_assert_int_eq(parse(line), GW_FRAME_ERR_MALFORMED);
	/* ...but a duplicate does not count as one more */
	sprintf(line + len, "k0=9");
	ck_assert_int_eq(parse(line), GW_FRAME_OK);
	assert_int("k0", 9);
}
END_TEST

START_TEST(test_value_types)
{
	ck_assert_int_eq(parse("a=30 b=-40 c=+7 d=0 e=007"), GW_FRAME_OK);
	assert_int("a", 30);
	assert_int("b", -40);
	assert_int("c", 7);
	assert_int("d", 0);
	assert_int("e", 7);

	ck_assert_int_eq(parse("max=9223372036854775807 min=-9223372036854775808 "
			       "big=9223372036854775808"),
			 GW_FRAME_OK);
	assert_int("max", INT64_MAX);
	assert_int("min", INT64_MIN);
	assert_double("big", 9223372036854775808.0);

	ck_assert_int_eq(parse("a=14.5 b=1e3 c=.5 d=-1.5E-2 e=5. f=2e+2"), GW_FRAME_OK);
	assert_double("a", 14.5);
	assert_double("b", 1000.0);
	assert_double("c", 0.5);
	assert_double("d", -0.015);
	assert_double("e", 5.0);
	assert_double("f", 200.0);

	/* Not finite or not decimal: kept as text rather than guessed at. */
	ck_assert_int_eq(parse("a=inf b=nan c=1e999 d=0x10 e=-inf f=Infinity g=1e h=1.2.3 i=-"),
			 GW_FRAME_OK);
	assert_string("a", "inf");
	assert_string("b", "nan");
	assert_string("c", "1e999");
	assert_string("d", "0x10");
	assert_string("e", "-inf");
	assert_string("f", "Infinity");
	assert_string("g", "1e");
	assert_string("h", "1.2.3");
	assert_string("i", "-");

	ck_assert_int_eq(parse("on=true off=false T=True"), GW_FRAME_OK);
	assert_bool("on", true);
	assert_bool("off", false);
	assert_string("T", "True");

	ck_assert_int_eq(parse("s=ok s2=x\"y"), GW_FRAME_OK);
	assert_string("s", "ok");
	assert_string("s2", "x\"y");

	/* 63 bytes is the longest string */
	ck_assert_int_eq(
		parse("s=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"),
		GW_FRAME_OK);
	ck_assert_uint_eq(strlen(field("s")->value.s), 63);
	ck_assert_int_eq(
		parse("s=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
		GW_FRAME_ERR_MALFORMED);
}
END_TEST

START_TEST(test_quoted)
{
	ck_assert_int_eq(parse("msg=\"hello, world; ok\" n=1"), GW_FRAME_OK);
	assert_string("msg", "hello, world; ok");
	assert_int("n", 1);
	ck_assert_int_eq(parse("a=\"30\" b:\"true\""), GW_FRAME_OK);
	assert_string("a", "30");
	assert_string("b", "true");
	ck_assert_int_eq(parse("e=\"\""), GW_FRAME_OK);
	assert_string("e", "");
	ck_assert_int_eq(parse("a=\"open"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("a=\"x\"y"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("a=\"tab\there\""), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(
		parse("a=\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\""),
		GW_FRAME_ERR_MALFORMED);
}
END_TEST

START_TEST(test_checksum)
{
	char line[256];

	with_checksum("MQ2=30,MQ135=95", false, line, sizeof(line));
	ck_assert_int_eq(parse(line), GW_FRAME_OK);
	ck_assert_uint_eq(frame.n_fields, 2);
	assert_int("MQ135", 95);

	/* "a=1" XORs to 0x6d; both cases of hex digits */
	ck_assert_int_eq(parse("$a=1*6d"), GW_FRAME_OK);
	ck_assert_int_eq(parse("$a=1*6D"), GW_FRAME_OK);
	ck_assert_int_eq(parse("a=1*6D"), GW_FRAME_OK);
	assert_int("a", 1);
	ck_assert_int_eq(parse("$a=1*6E"), GW_FRAME_ERR_CRC);
	ck_assert_int_eq(parse("$a=2*6d"), GW_FRAME_ERR_CRC);

	with_checksum("@12 DHT11_T=14.5", true, line, sizeof(line));
	ck_assert_int_eq(parse(line), GW_FRAME_OK);
	ck_assert(frame.has_addr);
	ck_assert_uint_eq(frame.addr, 12);
	/* the address is known even when the checksum fails, for per-node counts */
	*strstr(line, "14.5") = '2';
	ck_assert_int_eq(parse(line), GW_FRAME_ERR_CRC);
	ck_assert(frame.has_addr);
	ck_assert_uint_eq(frame.addr, 12);

	/* a '*' not followed by exactly two hex digits at the end is data */
	ck_assert_int_eq(parse("note=a*b"), GW_FRAME_OK);
	assert_string("note", "a*b");
	ck_assert_int_eq(parse("x=1*zz"), GW_FRAME_OK);
	assert_string("x", "1*zz");
	ck_assert_int_eq(parse("x=1*0c0"), GW_FRAME_OK);
	assert_string("x", "1*0c0");
	/* trailing blanks after the checksum are ignored */
	ck_assert_int_eq(parse("$a=1*6d  "), GW_FRAME_OK);

	with_checksum("{\"MQ2\":30}", false, line, sizeof(line));
	ck_assert_int_eq(parse(line), GW_FRAME_OK);
	assert_int("MQ2", 30);

	ck_assert_int_eq(parse("$MQ2=30"), GW_FRAME_OK);
	assert_int("MQ2", 30);
	ck_assert_int_eq(parse("$"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("$*00"), GW_FRAME_ERR_MALFORMED);
}
END_TEST

START_TEST(test_address)
{
	ck_assert_int_eq(parse("@3 MQ2=30"), GW_FRAME_OK);
	ck_assert(frame.has_addr);
	ck_assert_uint_eq(frame.addr, 3);
	ck_assert_uint_eq(frame.n_fields, 1);
	ck_assert_int_eq(parse("@254:MQ2=30"), GW_FRAME_OK);
	ck_assert_uint_eq(frame.addr, 254);
	ck_assert_int_eq(parse("@0,a=1"), GW_FRAME_OK);
	ck_assert_uint_eq(frame.addr, 0);
	ck_assert(frame.has_addr);
	ck_assert_int_eq(parse("@7;a=1"), GW_FRAME_OK);
	ck_assert_int_eq(parse("@9\ta=1"), GW_FRAME_OK);
	ck_assert_uint_eq(frame.addr, 9);
	ck_assert_int_eq(parse("$@5 a=1"), GW_FRAME_OK);
	ck_assert_uint_eq(frame.addr, 5);

	ck_assert_int_eq(parse("@255 a=1"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("@1234 a=1"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("@ a=1"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("@3a=1"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("@3"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("@3 "), GW_FRAME_ERR_MALFORMED);
	/* a bad line after a good address still names its node */
	ck_assert_int_eq(parse("@8 a="), GW_FRAME_ERR_MALFORMED);
	ck_assert(frame.has_addr);
	ck_assert_uint_eq(frame.addr, 8);
}
END_TEST

START_TEST(test_json)
{
	ck_assert_int_eq(parse("{\"MQ2\":30,\"DHT11_T\":14.5,\"ok\":true,\"off\":false,"
			       "\"s\":\"x y\",\"big\":-9223372036854775808,\"e\":1e3}"),
			 GW_FRAME_OK);
	ck_assert_int_eq(frame.type, GW_FRAME_TELEMETRY);
	ck_assert_uint_eq(frame.n_fields, 7);
	ck_assert_str_eq(frame.fields[0].key, "MQ2");
	assert_int("MQ2", 30);
	assert_double("DHT11_T", 14.5);
	assert_bool("ok", true);
	assert_bool("off", false);
	assert_string("s", "x y");
	assert_int("big", INT64_MIN);
	assert_double("e", 1000.0);

	ck_assert_int_eq(parse("@4 { \"a\" : 1 } "), GW_FRAME_OK);
	ck_assert_uint_eq(frame.addr, 4);
	assert_int("a", 1);
	ck_assert_int_eq(parse("{\"event\":\"door_open\",\"n\":2}"), GW_FRAME_OK);
	ck_assert_int_eq(frame.type, GW_FRAME_EVENT);
	ck_assert_str_eq(frame.name, "door_open");
	ck_assert_uint_eq(frame.n_fields, 1);

	ck_assert_int_eq(parse("{\"a\":{\"b\":1}}"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("{\"a\":[1,2]}"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("{\"a\":null}"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("{\"a\":}"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("{\"a\":1"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("{\"a\":1} x=2"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("{}"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("{\"a b\":1}"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("{\"s\":\"\\u0007\"}"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("{\"s\":\"caf\\u00e9\"}"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("{\"a\":99999999999999999999}"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("[1]"), GW_FRAME_ERR_MALFORMED);
}
END_TEST

/* The frame's reason for a malformed line contains want. */
static void assert_why(const char *line, const char *want)
{
	ck_assert_msg(parse(line) == GW_FRAME_ERR_MALFORMED, "accepted %s", line);
	ck_assert_msg(strstr(frame.why, want), "%s: why '%s' lacks '%s'", line, frame.why, want);
}

/* docs/protocol.md 2.4.1: a line in a cloud's own message shape (firmware written for an AT
 * Wi-Fi module) gives its params as fields and its clientToken / id as the trace. */
START_TEST(test_cloud_shapes)
{
	/* Tencent data-template report (docs/protocols/tencent.md §3.1) */
	ck_assert_int_eq(parse("{\"method\":\"report\",\"clientToken\":\"CS0SLTKSYA-12\","
			       "\"params\":{\"MQ2\":30,\"DHT11_T\":24.5,\"alarm\":1,\"ok\":true}}"),
			 GW_FRAME_OK);
	ck_assert_int_eq(frame.type, GW_FRAME_TELEMETRY);
	ck_assert_uint_eq(frame.n_fields, 4);
	ck_assert_str_eq(frame.fields[0].key, "MQ2");
	assert_int("MQ2", 30);
	assert_double("DHT11_T", 24.5);
	assert_int("alarm", 1);
	assert_bool("ok", true);
	ck_assert_str_eq(frame.trace, "CS0SLTKSYA-12");
	ck_assert_str_eq(frame.why, "");
	/* timestamp taken and ignored; no clientToken: no trace; a prefix and checksum as ever */
	ck_assert_int_eq(parse("@3 {\"method\":\"report\",\"timestamp\":1700000000000,"
			       "\"params\":{\"MQ2\":30}}"),
			 GW_FRAME_OK);
	ck_assert_uint_eq(frame.addr, 3);
	ck_assert_str_eq(frame.trace, "");
	assert_int("MQ2", 30);
	/* a report's "event" member is a property: no promotion inside an envelope */
	ck_assert_int_eq(parse("{\"method\":\"report\",\"params\":{\"event\":\"x\"}}"),
			 GW_FRAME_OK);
	ck_assert_int_eq(frame.type, GW_FRAME_TELEMETRY);
	assert_string("event", "x");

	/* Tencent event post (docs/protocols/tencent.md §3.2) */
	ck_assert_int_eq(parse("{\"method\":\"event_post\",\"clientToken\":\"t-2\",\"version\":"
			       "\"1.0\",\"eventId\":\"smoke_alarm\",\"type\":\"alert\","
			       "\"timestamp\":1700000000000,\"params\":{\"MQ2\":900}}"),
			 GW_FRAME_OK);
	ck_assert_int_eq(frame.type, GW_FRAME_EVENT);
	ck_assert_str_eq(frame.name, "smoke_alarm");
	ck_assert_uint_eq(frame.n_fields, 1);
	assert_int("MQ2", 900);
	ck_assert_str_eq(frame.trace, "t-2");
	ck_assert_int_eq(parse("{\"method\":\"event_post\",\"eventId\":\"boot\",\"params\":{}}"),
			 GW_FRAME_OK);
	ck_assert_int_eq(frame.type, GW_FRAME_EVENT);
	ck_assert_uint_eq(frame.n_fields, 0);

	/* Alink property post (docs/protocols/aliyun.md §5), plain and {value,time} values */
	ck_assert_int_eq(parse("{\"id\":\"123\",\"version\":\"1.0\",\"params\":{\"MQ2\":30,"
			       "\"DHT11_T\":{\"value\":24.5,\"time\":1524448722000},"
			       "\"Power\":{\"value\":\"on\"}},\"method\":\"thing.event.property.post\"}"),
			 GW_FRAME_OK);
	ck_assert_int_eq(frame.type, GW_FRAME_TELEMETRY);
	ck_assert_uint_eq(frame.n_fields, 3);
	assert_int("MQ2", 30);
	assert_double("DHT11_T", 24.5);
	assert_string("Power", "on");
	ck_assert_str_eq(frame.trace, "123");
	ck_assert_int_eq(parse("{\"id\":42,\"version\":\"1.0\",\"sys\":{\"ack\":0},\"params\":"
			       "{\"MQ2\":30},\"method\":\"thing.event.property.post\"}"),
			 GW_FRAME_OK);
	ck_assert_str_eq(frame.trace, "42");

	/* Alink event post: the outputs in params (the SDKs' form) or in params.value */
	ck_assert_int_eq(parse("{\"id\":\"124\",\"version\":\"1.0\",\"params\":{\"level\":3},"
			       "\"method\":\"thing.event.smoke_alarm.post\"}"),
			 GW_FRAME_OK);
	ck_assert_int_eq(frame.type, GW_FRAME_EVENT);
	ck_assert_str_eq(frame.name, "smoke_alarm");
	ck_assert_uint_eq(frame.n_fields, 1);
	assert_int("level", 3);
	ck_assert_str_eq(frame.trace, "124");
	ck_assert_int_eq(parse("{\"id\":\"125\",\"version\":\"1.0\",\"params\":{\"value\":"
			       "{\"level\":3,\"src\":\"MQ2\"},\"time\":1524448722000},"
			       "\"method\":\"thing.event.alarm.post\"}"),
			 GW_FRAME_OK);
	ck_assert_int_eq(frame.type, GW_FRAME_EVENT);
	ck_assert_str_eq(frame.name, "alarm");
	ck_assert_uint_eq(frame.n_fields, 2);
	assert_string("src", "MQ2");

	/* a flat object with a field named method or params stays telemetry, as before */
	ck_assert_int_eq(parse("{\"method\":\"report\",\"params\":5}"), GW_FRAME_OK);
	ck_assert_int_eq(frame.type, GW_FRAME_TELEMETRY);
	assert_string("method", "report");
	assert_int("params", 5);
	ck_assert_str_eq(frame.trace, "");
}
END_TEST

/* Malformed JSON lines say what is wrong (frame.why). */
START_TEST(test_json_reasons)
{
	char line[256];

	assert_why("{\"a\":{\"b\":1}}", "nested object in field 'a' (only a Tencent report/event "
					"or an Alink post envelope may hold objects)");
	assert_why("{\"a\":[1,2]}", "array in field 'a'");
	assert_why("{\"a\":null}", "null in field 'a'");
	assert_why("{\"a\":1", "not JSON");
	assert_why("{\"a\":1} x=2", "not JSON");
	assert_why("{}", "empty object");
	assert_why("{\"a b\":1}", "key 'a b'");
	assert_why("{\"s\":\"caf\\u00e9\"}", "field 's'");
	/* envelopes */
	assert_why("{\"params\":{\"x\":1}}", "no \"method\"");
	assert_why("{\"method\":\"control\",\"params\":{\"x\":1}}", "method \"control\"");
	assert_why("{\"method\":\"thing.event..post\",\"params\":{\"x\":1}}",
		   "method \"thing.event..post\"");
	assert_why("{\"method\":\"report\",\"params\":{}}", "params is empty");
	assert_why("{\"method\":\"report\",\"params\":{\"x\":{\"y\":1}}}",
		   "nested object in field 'x' of params");
	assert_why("{\"method\":\"report\",\"params\":{\"x\":[1]}}", "array in field 'x'");
	assert_why("{\"method\":\"report\",\"foo\":1,\"params\":{\"x\":1}}",
		   "member \"foo\" is not part of a Tencent report");
	assert_why("{\"method\":\"report\",\"clientToken\":5,\"params\":{\"x\":1}}",
		   "clientToken is not a string");
	assert_why("{\"method\":\"event_post\",\"params\":{\"x\":1}}", "no eventId");
	assert_why("{\"method\":\"event_post\",\"eventId\":\"e\",\"type\":\"warning\","
		   "\"params\":{\"x\":1}}",
		   "type \"warning\"");
	assert_why("{\"method\":\"event_post\",\"eventId\":\"0123456789abcdef0123456789abcdef\","
		   "\"params\":{\"x\":1}}",
		   "eventId");
	assert_why("{\"id\":\"1\",\"params\":{\"x\":{\"value\":1,\"time\":\"now\"}},"
		   "\"method\":\"thing.event.property.post\"}",
		   "nested object in field 'x' of params");
	assert_why("{\"id\":true,\"params\":{\"x\":1},\"method\":\"thing.event.property.post\"}",
		   "id is not a string or an integer");
	assert_why("{\"id\":\"1\",\"clientToken\":\"t\",\"params\":{\"x\":1},"
		   "\"method\":\"thing.event.property.post\"}",
		   "member \"clientToken\" is not part of an Alink post");
	snprintf(line, sizeof(line), "{\"method\":\"report\",\"clientToken\":\"%064d\","
		 "\"params\":{\"x\":1}}", 7);
	assert_why(line, "clientToken is longer than 63 bytes");
	/* reasons are cleared by the next good line */
	ck_assert_int_eq(parse("{\"a\":1}"), GW_FRAME_OK);
	ck_assert_str_eq(frame.why, "");
}
END_TEST

START_TEST(test_hello)
{
	static const uint8_t uid[GW_UID_SIZE] = { 0x30, 0x00, 0x41, 0x00, 0x0d, 0x51,
						  0x33, 0x38, 0x37, 0x37, 0x39, 0x30 };

	ck_assert_int_eq(parse("hello uid=300041000D51333837373930 fw=1.10 boot=42"), GW_FRAME_OK);
	ck_assert_int_eq(frame.type, GW_FRAME_HELLO);
	ck_assert_mem_eq(frame.uid, uid, GW_UID_SIZE);
	ck_assert_str_eq(frame.fw_version, "1.10");
	ck_assert_uint_eq(frame.boot_counter, 42);
	ck_assert_uint_eq(frame.n_fields, 0);
	ck_assert(!frame.has_addr);

	ck_assert_int_eq(parse("@2 hello,uid:300041000d51333837373930"), GW_FRAME_OK);
	ck_assert_int_eq(frame.type, GW_FRAME_HELLO);
	ck_assert_uint_eq(frame.addr, 2);
	ck_assert_str_eq(frame.fw_version, "");
	ck_assert_uint_eq(frame.boot_counter, 0);
	ck_assert_int_eq(parse("hello uid=300041000d51333837373930 fw=\"v2 beta\" "
			       "boot=4294967295"),
			 GW_FRAME_OK);
	ck_assert_str_eq(frame.fw_version, "v2 beta");
	ck_assert_uint_eq(frame.boot_counter, 4294967295u);

	ck_assert_int_eq(parse("hello"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("hello fw=1"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("hello uid=300041000d5133383737393"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("hello uid=300041000d513338373739300"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("hello uid=300041000d5133383737393g"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("hello uid=300041000d51333837373930 boot=4294967296"),
			 GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("hello uid=300041000d51333837373930 boot=-1"),
			 GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("hello uid=300041000d51333837373930 colour=red"),
			 GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("hello uid=300041000d51333837373930 "
			       "fw=0123456789abcdef0123456789abcdef"),
			 GW_FRAME_ERR_MALFORMED);

	/* "hello" only counts as the bare first word */
	ck_assert_int_eq(parse("hello=1"), GW_FRAME_OK);
	ck_assert_int_eq(frame.type, GW_FRAME_TELEMETRY);
	assert_int("hello", 1);
	ck_assert_int_eq(parse("helloX uid=300041000d51333837373930"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("a=1 hello"), GW_FRAME_ERR_MALFORMED);
}
END_TEST

START_TEST(test_event)
{
	ck_assert_int_eq(parse("event=smoke_alarm MQ2=900"), GW_FRAME_OK);
	ck_assert_int_eq(frame.type, GW_FRAME_EVENT);
	ck_assert_str_eq(frame.name, "smoke_alarm");
	ck_assert_uint_eq(frame.n_fields, 1);
	assert_int("MQ2", 900);
	ck_assert_int_eq(parse("MQ2=900 event:\"gas leak\""), GW_FRAME_OK);
	ck_assert_int_eq(frame.type, GW_FRAME_EVENT);
	ck_assert_str_eq(frame.name, "gas leak");
	ck_assert_uint_eq(frame.n_fields, 1);
	ck_assert_str_eq(frame.fields[0].key, "MQ2");
	ck_assert_int_eq(parse("event=boot"), GW_FRAME_OK);
	ck_assert_int_eq(frame.type, GW_FRAME_EVENT);
	ck_assert_uint_eq(frame.n_fields, 0);

	/* not a string: an ordinary field */
	ck_assert_int_eq(parse("event=5"), GW_FRAME_OK);
	ck_assert_int_eq(frame.type, GW_FRAME_TELEMETRY);
	assert_int("event", 5);
	ck_assert_int_eq(parse("event=\"\""), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("event=0123456789abcdef0123456789abcdef"), GW_FRAME_ERR_MALFORMED);
}
END_TEST

START_TEST(test_control_bytes)
{
	static const char nul_line[] = "a=1\0b=2";

	ck_assert_int_eq(parse("a=1\x01"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("a=\x7f"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("a=\xc3\xa9"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("\x1b[0ma=1"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(gw_text_parse_line(nul_line, sizeof(nul_line) - 1, &frame),
			 GW_FRAME_ERR_MALFORMED);
	/* tab is a separator, not a control byte */
	ck_assert_int_eq(parse("\ta=1\t"), GW_FRAME_OK);
}
END_TEST

/* ---- the decoder in text mode ---- */

START_TEST(test_line_endings)
{
	struct capture *c = calloc(1, sizeof(*c));
	struct gw_decoder *d = text_decoder();
	const struct gw_frame_stats *st;
	size_t i;

	feed_str(d, "a=1\rb=2\nc=3\r\nd=4\n\r\ne=5\r\r\n\n\nf=6\n", c);
	ck_assert_uint_eq(c->n, 6);
	for (i = 0; i < 6; i++) {
		ck_assert_int_eq(c->errs[i], GW_FRAME_OK);
		ck_assert_uint_eq(c->frames[i].n_fields, 1);
		ck_assert_uint_eq((unsigned char)c->frames[i].fields[0].key[0], 'a' + i);
		ck_assert(c->frames[i].fields[0].value.i == (int64_t)i + 1);
	}
	/* a line is only complete at its terminator */
	feed_str(d, "g=7", c);
	ck_assert_uint_eq(c->n, 6);
	feed_str(d, "\r", c);
	ck_assert_uint_eq(c->n, 7);
	/* the LF of a CRLF split across feeds is still part of it */
	feed_str(d, "\n", c);
	ck_assert_uint_eq(c->n, 7);

	st = gw_decoder_stats(d);
	ck_assert_uint_eq(st->frames, 7);
	ck_assert_uint_eq(st->resyncs, 0);
	gw_decoder_free(d);
	free(c);
}
END_TEST

START_TEST(test_junk_lines)
{
	static const uint8_t junk[] = { 0x00, 0x8f, 0x01, 0xff, 0xfe, 0x12, 0x00, 0x33, '\n' };
	struct capture *c = calloc(1, sizeof(*c));
	struct gw_decoder *d = text_decoder();
	const struct gw_frame_stats *st;

	gw_decoder_feed(d, junk, sizeof(junk), on_frame, c);
	feed_str(d, "MQ2=30\n", c);
	feed_str(d, "garbage line with words\n", c);
	feed_str(d, "MQ7=8\n", c);
	feed_str(d, "$MQ4=1*00\n", c);
	feed_str(d, "@3 MQ135=95\n", c);
	ck_assert_uint_eq(c->n, 6);
	ck_assert_int_eq(c->errs[0], GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(c->errs[1], GW_FRAME_OK);
	ck_assert_str_eq(c->frames[1].fields[0].key, "MQ2");
	ck_assert_int_eq(c->errs[2], GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(c->errs[3], GW_FRAME_OK);
	ck_assert_int_eq(c->errs[4], GW_FRAME_ERR_CRC);
	ck_assert_int_eq(c->errs[5], GW_FRAME_OK);
	ck_assert_uint_eq(c->frames[5].addr, 3);

	st = gw_decoder_stats(d);
	ck_assert_uint_eq(st->frames, 3);
	ck_assert_uint_eq(st->errors[GW_FRAME_ERR_MALFORMED], 2);
	ck_assert_uint_eq(st->errors[GW_FRAME_ERR_CRC], 1);
	ck_assert_uint_eq(st->resyncs, 3);
	ck_assert_uint_eq(st->bytes, sizeof(junk) + 7 + 24 + 6 + 10 + 12);
	gw_decoder_free(d);
	free(c);
}
END_TEST

START_TEST(test_oversize_line)
{
	struct capture *c = calloc(1, sizeof(*c));
	struct gw_decoder *d = text_decoder();
	char line[2 * GW_TEXT_LINE_MAX];

	/* GW_TEXT_LINE_MAX bytes is still a line */
	memset(line, ' ', GW_TEXT_LINE_MAX);
	memcpy(line, "a=1", 3);
	line[GW_TEXT_LINE_MAX] = '\n';
	gw_decoder_feed(d, (const uint8_t *)line, GW_TEXT_LINE_MAX + 1, on_frame, c);
	ck_assert_uint_eq(c->n, 1);
	ck_assert_int_eq(c->errs[0], GW_FRAME_OK);

	/* one byte more is oversize, reported once however long it goes on */
	memset(line, 'x', sizeof(line));
	gw_decoder_feed(d, (const uint8_t *)line, GW_TEXT_LINE_MAX + 1, on_frame, c);
	ck_assert_uint_eq(c->n, 2);
	ck_assert_int_eq(c->errs[1], GW_FRAME_ERR_OVERSIZE);
	gw_decoder_feed(d, (const uint8_t *)line, sizeof(line), on_frame, c);
	ck_assert_uint_eq(c->n, 2);
	feed_str(d, "tail=1\nMQ2=30\r\n", c);
	ck_assert_uint_eq(c->n, 3);
	ck_assert_int_eq(c->errs[2], GW_FRAME_OK);
	ck_assert_str_eq(c->frames[2].fields[0].key, "MQ2");
	ck_assert_uint_eq(gw_decoder_stats(d)->errors[GW_FRAME_ERR_OVERSIZE], 1);
	ck_assert_uint_eq(gw_decoder_stats(d)->frames, 2);

	/* a reset drops a partial line */
	feed_str(d, "half=", c);
	gw_decoder_reset(d);
	feed_str(d, "b=2\n", c);
	ck_assert_uint_eq(c->n, 4);
	ck_assert_int_eq(c->errs[3], GW_FRAME_OK);
	ck_assert_str_eq(c->frames[3].fields[0].key, "b");
	gw_decoder_free(d);
	free(c);
}
END_TEST

START_TEST(test_text_split_points)
{
	static const char stream[] = "hello uid=300041000d51333837373930 fw=1.4.2 boot=7\r\n"
				     "@3 MQ2=30,MQ135=95,MQ4=12,MQ7=8,DHT11_T=14,DHT11_H=61\r\n"
				     "$event=smoke_alarm MQ2=900*08\r\n"
				     "{\"MQ2\":31}\n\n"
				     "bad line\r"
				     "msg=\"a, b\"\n";
	struct capture *ref = calloc(1, sizeof(*ref)), *c = calloc(1, sizeof(*c));
	size_t len = sizeof(stream) - 1, split, i;
	struct gw_decoder *d;

	d = text_decoder();
	gw_decoder_feed(d, (const uint8_t *)stream, len, on_frame, ref);
	gw_decoder_free(d);
	ck_assert_uint_eq(ref->n, 6);
	ck_assert_int_eq(ref->errs[0], GW_FRAME_OK);
	ck_assert_int_eq(ref->frames[0].type, GW_FRAME_HELLO);
	ck_assert_int_eq(ref->errs[1], GW_FRAME_OK);
	ck_assert_uint_eq(ref->frames[1].n_fields, 6);
	ck_assert_int_eq(ref->errs[2], GW_FRAME_OK);
	ck_assert_int_eq(ref->frames[2].type, GW_FRAME_EVENT);
	ck_assert_int_eq(ref->errs[3], GW_FRAME_OK);
	ck_assert_int_eq(ref->errs[4], GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(ref->errs[5], GW_FRAME_OK);

	for (split = 0; split <= len; split++) {
		c->n = 0;
		d = text_decoder();
		gw_decoder_feed(d, (const uint8_t *)stream, split, on_frame, c);
		gw_decoder_feed(d, (const uint8_t *)stream + split, len - split, on_frame, c);
		ck_assert_uint_eq(c->n, ref->n);
		for (i = 0; i < c->n; i++) {
			ck_assert_int_eq(c->errs[i], ref->errs[i]);
			ck_assert_mem_eq(&c->frames[i], &ref->frames[i], sizeof(c->frames[i]));
		}
		gw_decoder_free(d);
	}
	c->n = 0;
	d = text_decoder();
	for (i = 0; i < len; i++)
		gw_decoder_feed(d, (const uint8_t *)stream + i, 1, on_frame, c);
	ck_assert_uint_eq(c->n, ref->n);
	for (i = 0; i < c->n; i++)
		ck_assert_mem_eq(&c->frames[i], &ref->frames[i], sizeof(c->frames[i]));
	gw_decoder_free(d);
	free(ref);
	free(c);
}
END_TEST

/* The examples of docs/protocol.md section 2.8, exactly as printed there. */
START_TEST(test_doc_examples)
{
	static const char *const good[] = {
		"@3 hello uid=300041000d51333837373930 fw=1.4.2 boot=7",
		"@3 MQ2=30,MQ135=95,MQ4=12,MQ7=8,DHT11_T=14.5,DHT11_H=61",
		"$@3 MQ2=30,MQ135=95,MQ4=12,MQ7=8,DHT11_T=14.5,DHT11_H=61*48",
		"MQ2:30 MQ135:95; MQ4:12\tMQ7:8",
		"$@3 event=smoke_alarm MQ2=900*5B",
		"{\"MQ2\":30,\"MQ135\":95,\"DHT11_T\":14.5}",
		"$@3 hello uid=300041000d51333837373930 fw=1.4.2 boot=7*07",
		"msg=\"warming up, 2 min\" ready=false",
		"{\"method\":\"report\",\"clientToken\":\"CS0SLTKSYA-12\",\"params\":{\"MQ2\":30,"
		"\"DHT11_T\":24.5}}",
		"{\"id\":\"124\",\"version\":\"1.0\",\"params\":{\"level\":3},\"method\":"
		"\"thing.event.smoke_alarm.post\"}",
	};
	static const enum gw_frame_type types[] = {
		GW_FRAME_HELLO, GW_FRAME_TELEMETRY, GW_FRAME_TELEMETRY, GW_FRAME_TELEMETRY,
		GW_FRAME_EVENT, GW_FRAME_TELEMETRY, GW_FRAME_HELLO,	GW_FRAME_TELEMETRY,
		GW_FRAME_TELEMETRY, GW_FRAME_EVENT,
	};
	char big[601];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ck_assert_msg(parse(good[i]) == GW_FRAME_OK, "line %zu", i);
		ck_assert_int_eq(frame.type, types[i]);
	}
	ck_assert_int_eq(parse(good[2]), GW_FRAME_OK);
	ck_assert_uint_eq(frame.addr, 3);
	ck_assert_uint_eq(frame.n_fields, 6);
	assert_double("DHT11_T", 14.5);
	assert_int("DHT11_H", 61);
	ck_assert_int_eq(parse(good[3]), GW_FRAME_OK);
	ck_assert_uint_eq(frame.n_fields, 4);
	ck_assert_int_eq(parse(good[4]), GW_FRAME_OK);
	ck_assert_str_eq(frame.name, "smoke_alarm");
	ck_assert_int_eq(parse(good[6]), GW_FRAME_OK);
	ck_assert_uint_eq(frame.boot_counter, 7);
	ck_assert_str_eq(frame.fw_version, "1.4.2");
	ck_assert_int_eq(parse(good[7]), GW_FRAME_OK);
	assert_string("msg", "warming up, 2 min");
	assert_bool("ready", false);

	ck_assert_int_eq(parse("$@3 MQ2=31,MQ135=95,MQ4=12,MQ7=8,DHT11_T=14.5,DHT11_H=61*48"),
			 GW_FRAME_ERR_CRC);
	ck_assert(frame.has_addr);
	ck_assert_uint_eq(frame.addr, 3);
	ck_assert_int_eq(parse("MQ2=30 oops"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("MQ2="), GW_FRAME_ERR_MALFORMED);
	assert_why("{\"MQ2\":{\"raw\":30}}", "nested object in field 'MQ2'");
	assert_why("{\"method\":\"control\",\"params\":{\"power_switch\":1}}",
		   "method \"control\"");
	ck_assert_int_eq(parse("@255 MQ2=30"), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(parse("hello fw=1.0"), GW_FRAME_ERR_MALFORMED);

	memset(big, 'a', 600);
	big[600] = '\n';
	{
		struct capture *c = calloc(1, sizeof(*c));
		struct gw_decoder *d = text_decoder();

		gw_decoder_feed(d, (const uint8_t *)big, sizeof(big), on_frame, c);
		ck_assert_uint_eq(c->n, 1);
		ck_assert_int_eq(c->errs[0], GW_FRAME_ERR_OVERSIZE);
		gw_decoder_free(d);
		free(c);
	}
}
END_TEST

static Suite *text_suite(void)
{
	Suite *s = suite_create("text");
	TCase *tc;

	tc = tcase_create("line");
	tcase_add_test(tc, test_separators);
	tcase_add_test(tc, test_keys_and_limits);
	tcase_add_test(tc, test_value_types);
	tcase_add_test(tc, test_quoted);
	tcase_add_test(tc, test_checksum);
	tcase_add_test(tc, test_address);
	tcase_add_test(tc, test_json);
	tcase_add_test(tc, test_cloud_shapes);
	tcase_add_test(tc, test_json_reasons);
	tcase_add_test(tc, test_hello);
	tcase_add_test(tc, test_event);
	tcase_add_test(tc, test_control_bytes);
	tcase_add_test(tc, test_doc_examples);
	suite_add_tcase(s, tc);

	tc = tcase_create("stream");
	tcase_add_test(tc, test_line_endings);
	tcase_add_test(tc, test_junk_lines);
	tcase_add_test(tc, test_oversize_line);
	tcase_add_test(tc, test_text_split_points);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(text_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
