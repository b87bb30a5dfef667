/* SPDX-License-Identifier: MIT */
/*
 * The control socket's request parser (gw_control_parse_request): what it accepts, and a
 * clear refusal for everything else.
 */

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../helpers/ckrun.h"
#include "gw/control.h"

static int parse(const char *s, size_t len, struct gw_control_request *req, char *why)
{
	return gw_control_parse_request(s, len, req, why, 128);
}

START_TEST(test_accepts)
{
	static const struct {
		const char *text;
		enum gw_control_command command;
	} cases[] = {
		{ "status", GW_CONTROL_STATUS },       { "status\n", GW_CONTROL_STATUS },
		{ "status\r\n", GW_CONTROL_STATUS },   { "  status \t\n", GW_CONTROL_STATUS },
		{ "version\n", GW_CONTROL_VERSION },   { "reload\n", GW_CONTROL_RELOAD },
		{ "debug-stall 1\n", GW_CONTROL_DEBUG_STALL },
		{ " debug-stall\t60000 \r\n", GW_CONTROL_DEBUG_STALL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gw_control_request req = { .command = (enum gw_control_command)99 };
		char why[128] = "";

		ck_assert_msg(parse(cases[i].text, strlen(cases[i].text), &req, why) == 0,
			      "'%s': %s", cases[i].text, why);
		ck_assert_int_eq(req.command, cases[i].command);
	}
	{
		struct gw_control_request req;
		char why[128] = "";

		ck_assert_int_eq(parse("debug-stall 1500\n", 17, &req, why), 0);
		ck_assert_uint_eq(req.ms, 1500);
	}
}
END_TEST

START_TEST(test_tail)
{
	static const struct {
		const char *text;
		const char *port, *node;
		bool raw;
	} cases[] = {
		{ "tail\n", "", "", false },
		{ "tail raw\n", "", "", true },
		{ "tail port=uart0\n", "uart0", "", false },
		{ " tail\tnode=0123456789abcdef01234567  raw port=rs485-1 \r\n", "rs485-1",
		  "0123456789abcdef01234567", true },
		{ "tail node=txt-3\n", "", "txt-3", false },
		/* the longest value allowed */
		{ "tail port=012345678901234567890123456789012345678901234567890123456789012\n",
		  "012345678901234567890123456789012345678901234567890123456789012", "", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gw_control_request req;
		char why[128] = "";

		memset(&req, 0x55, sizeof(req));
		ck_assert_msg(parse(cases[i].text, strlen(cases[i].text), &req, why) == 0,
			      "'%s': %s", cases[i].text, why);
		ck_assert_int_eq(req.command, GW_CONTROL_TAIL);
		ck_assert_str_eq(req.port, cases[i].port);
		ck_assert_str_eq(req.node, cases[i].node);
		ck_assert(req.raw == cases[i].raw);
	}
}
END_TEST

START_TEST(test_refuses)
{
	static const struct {
		const char *text;
		size_t len; /* 0: strlen */
		const char *why;
	} cases[] = {
		{ "", 0, "empty request" },
		{ "\n", 0, "empty request" },
		{ "   \r\n", 0, "empty request" },
		{ "reboot\n", 0, "unknown request 'reboot' (status, version, reload, tail)" },
		{ "tail port\n", 0,
		  "'tail' takes port=NAME, node=ID and raw, each once; not 'port'" },
		{ "tail port=\n", 0, "not 'port='" },
		{ "tail raw raw\n", 0, "not 'raw'" },
		{ "tail port=a port=b\n", 0, "not 'port=b'" },
		{ "tail node=a node=a\n", 0, "not 'node=a'" },
		{ "tail Raw\n", 0, "not 'Raw'" },
		{ "tail raw port=a node=b x\n", 0, "each once" },
		{ "tail port=0123456789012345678901234567890123456789012345678901234567890123\n", 0,
		  "port longer than 63 bytes" },
		{ "reload now\n", 0, "'reload' takes no argument" },
		{ "status a b\n", 0, "'status' takes no argument" },
		{ "debug-stall\n", 0, "needs milliseconds" },
		{ "debug-stall 0\n", 0, "needs milliseconds" },
		{ "debug-stall 60001\n", 0, "needs milliseconds" },
		{ "debug-stall 100000\n", 0, "needs milliseconds" },
		{ "debug-stall 5x\n", 0, "needs milliseconds" },
		{ "debug-stall 5 5\n", 0, "needs milliseconds" },
		{ "Status\n", 0, "unknown request 'Status'" },
		{ "statu\n", 0, "unknown request 'statu'" },
		{ "statuss\n", 0, "unknown request 'statuss'" },
		{ "status json\n", 0, "'status' takes no argument" },
		{ "status\nstatus\n", 0, "not one line" },
		{ "status\n\n", 0, "not one line" },
		{ "sta\0tus\n", 8, "not one line" },
		{ "st\xc3\xa4tus\n", 0, "not one line" },
		{ "status\r", 0, "" }, /* a lone CR at the end is stripped like CRLF */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gw_control_request req;
		char why[128] = "";
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
		int r = parse(cases[i].text, len, &req, why);

		if (!cases[i].why[0]) {
			ck_assert_int_eq(r, 0);
			continue;
		}
		ck_assert_msg(r == -EINVAL, "case %zu: %d", i, r);
		ck_assert_msg(strstr(why, cases[i].why), "case %zu: '%s'", i, why);
	}
}
END_TEST

START_TEST(test_limits)
{
	char buf[GW_CONTROL_REQUEST_MAX + 2];
	struct gw_control_request req;
	char why[128];

	/* the longest allowed request parses (as an unknown word), one byte more does not */
	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(parse(buf, GW_CONTROL_REQUEST_MAX, &req, why), -EINVAL);
	ck_assert_ptr_nonnull(strstr(why, "unknown request"));
	/* the echoed word is cut short: a long request does not make a long reply */
	ck_assert_uint_lt(strlen(why), 100);
	ck_assert_int_eq(parse(buf, GW_CONTROL_REQUEST_MAX + 1, &req, why), -EMSGSIZE);
	ck_assert_ptr_nonnull(strstr(why, "longer than"));
	/* a small why buffer is never overrun */
	{
		char tiny[8];

		ck_assert_int_eq(gw_control_parse_request("reboot", 6, &req, tiny, sizeof(tiny)),
				 -EINVAL);
		ck_assert_uint_eq(strlen(tiny), sizeof(tiny) - 1);
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_accepts);
	tcase_add_test(tc, test_tail);
	tcase_add_test(tc, test_refuses);
	tcase_add_test(tc, test_limits);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ck_run_suite(suite());
}
