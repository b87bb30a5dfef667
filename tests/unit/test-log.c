/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the logging module: the journal fields of a line (built without journald),
 * the choice between journal and stderr (JOURNAL_STREAM), the stderr line format, levels and
 * the rate limiter.
 */

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../helpers/ckrun.h"
#include "gw/log.h"
#include "gw/util.h"

/* The value of field NAME in f, or NULL; fails the test when NAME occurs twice. */
static const char *field(const struct gw_log_fields *f, const char *name)
{
	size_t len = strlen(name);
	const char *v = NULL;

	for (size_t i = 0; i < f->n; i++) {
		if (strncmp(f->field[i], name, len) == 0 && f->field[i][len] == '=') {
			ck_assert_msg(v == NULL, "field %s twice", name);
			v = f->field[i] + len + 1;
		}
	}
	return v;
}

START_TEST(test_fields_no_context)
{
	struct gw_log_fields f;

	ck_assert_int_eq(gw_log_fields_build(&f, "sensorgwd", LOG_WARNING, NULL,
					     "port uart0: open failed: No such file"), 0);
	ck_assert_uint_eq(f.n, 3);
	ck_assert_str_eq(f.field[0], "MESSAGE=port uart0: open failed: No such file");
	ck_assert_str_eq(field(&f, "PRIORITY"), "4");
	ck_assert_str_eq(field(&f, "SYSLOG_IDENTIFIER"), "sensorgwd");
	ck_assert_ptr_null(field(&f, "PORT"));
	ck_assert_ptr_null(field(&f, "NODE_UID"));
	ck_assert_ptr_null(field(&f, "UPLINK"));
	gw_log_fields_free(&f);
	ck_assert_uint_eq(f.n, 0);
}
END_TEST

START_TEST(test_fields_context)
{
	struct gw_log_fields f;
	struct gw_log_ctx port = { .port = "uart1" };
	struct gw_log_ctx node = { .port = "usb0", .node_uid = "0123456789abcdef01234567" };
	struct gw_log_ctx up = { .uplink = "aliyun" };
	struct gw_log_ctx empty = { 0 };

	ck_assert_int_eq(gw_log_fields_build(&f, "sensorgwd", LOG_ERR, &port, "x"), 0);
	ck_assert_uint_eq(f.n, 4);
	ck_assert_str_eq(field(&f, "PORT"), "uart1");
	ck_assert_str_eq(field(&f, "PRIORITY"), "3");
	ck_assert_ptr_null(field(&f, "NODE_UID"));
	ck_assert_ptr_null(field(&f, "UPLINK"));
	gw_log_fields_free(&f);

	ck_assert_int_eq(gw_log_fields_build(&f, "sensorgwd", LOG_INFO, &node, "hello"), 0);
	ck_assert_uint_eq(f.n, 5);
	ck_assert_str_eq(field(&f, "PORT"), "usb0");
	ck_assert_str_eq(field(&f, "NODE_UID"), "0123456789abcdef01234567");
	ck_assert_ptr_null(field(&f, "UPLINK"));
	ck_assert_str_eq(field(&f, "PRIORITY"), "6");
	gw_log_fields_free(&f);

	ck_assert_int_eq(gw_log_fields_build(&f, "sensorgwd", LOG_DEBUG, &up, "online"), 0);
	ck_assert_uint_eq(f.n, 4);
	ck_assert_str_eq(field(&f, "UPLINK"), "aliyun");
	ck_assert_str_eq(field(&f, "MESSAGE"), "online");
	ck_assert_ptr_null(field(&f, "PORT"));
	gw_log_fields_free(&f);

	/* A context whose members are all NULL adds no field. */
	ck_assert_int_eq(gw_log_fields_build(&f, "sensorgwd", LOG_NOTICE, &empty, "m"), 0);
	ck_assert_uint_eq(f.n, 3);
	gw_log_fields_free(&f);
}
END_TEST

/* Message text is carried as it is: '=' and newlines are part of the value. */
START_TEST(test_fields_verbatim)
{
	struct gw_log_fields f;
	struct gw_log_ctx all = { .port = "p=1", .node_uid = "n", .uplink = "u" };

	ck_assert_int_eq(gw_log_fields_build(&f, "sensorgwctl", LOG_ERR, &all,
					     "frame 'MQ2=30,MQ135=95'\nsecond line"), 0);
	ck_assert_uint_eq(f.n, GW_LOG_FIELDS_MAX);
	ck_assert_str_eq(field(&f, "MESSAGE"), "frame 'MQ2=30,MQ135=95'\nsecond line");
	ck_assert_str_eq(field(&f, "PORT"), "p=1");
	ck_assert_str_eq(field(&f, "SYSLOG_IDENTIFIER"), "sensorgwctl");
	gw_log_fields_free(&f);
}
END_TEST

START_TEST(test_levels)
{
	ck_assert_int_eq(gw_log_level_from_string("error"), LOG_ERR);
	ck_assert_int_eq(gw_log_level_from_string("warning"), LOG_WARNING);
	ck_assert_int_eq(gw_log_level_from_string("notice"), LOG_NOTICE);
	ck_assert_int_eq(gw_log_level_from_string("info"), LOG_INFO);
	ck_assert_int_eq(gw_log_level_from_string("debug"), LOG_DEBUG);
	ck_assert_int_eq(gw_log_level_from_string("7"), LOG_DEBUG);
	ck_assert_int_eq(gw_log_level_from_string("8"), -EINVAL);
	ck_assert_int_eq(gw_log_level_from_string("verbose"), -EINVAL);
	ck_assert_int_eq(gw_log_level_from_string(NULL), -EINVAL);
}
END_TEST

/* Points stderr at a temporary file; returns the file. */
static FILE *capture_stderr(void)
{
	FILE *t = tmpfile();

	ck_assert_ptr_nonnull(t);
	ck_assert_int_ge(dup2(fileno(t), STDERR_FILENO), 0);
	return t;
}

static char *captured(FILE *t)
{
	static char buf[8192];
	size_t n;

	fflush(stderr);
	rewind(t);
	n = fread(buf, 1, sizeof(buf) - 1, t);
	buf[n] = '\0';
	return buf;
}

/* JOURNAL_STREAM names the journal's stream; only when it is our stderr do lines go there. */
START_TEST(test_journal_stream)
{
	FILE *t = capture_stderr();
	struct stat st;
	char v[64];

	unsetenv("JOURNAL_STREAM");
	gw_log_init("sensorgwd");
	ck_assert(!gw_log_to_journal());
	setenv("JOURNAL_STREAM", "1:2", 1);
	gw_log_init("sensorgwd");
	ck_assert(!gw_log_to_journal());
	ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
	snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", v, 1);
	gw_log_init("sensorgwd");
	ck_assert(gw_log_to_journal());
	unsetenv("JOURNAL_STREAM");
	gw_log_init("sensorgwd");
	ck_assert(!gw_log_to_journal());
	fclose(t);
}
END_TEST

START_TEST(test_stderr_lines)
{
	FILE *t = capture_stderr();
	const char *out;

	unsetenv("JOURNAL_STREAM");
	gw_log_init("sensorgwd");
	gw_log_set_level(LOG_INFO);
	gw_log(LOG_INFO, "started %d", 1);
	gw_log_node(LOG_WARNING, "uart1", "0123456789abcdef01234567", "seq gap %u", 3u);
	gw_log_uplink(LOG_ERR, "local", "connect failed");
	gw_log(LOG_DEBUG, "not shown");
	out = captured(t);
	ck_assert_str_eq(out, "sensorgwd: info: started 1\n"
			      "sensorgwd: warning: port uart1: node 0123456789abcdef01234567: seq gap 3\n"
			      "sensorgwd: error: uplink local: connect failed\n");
	fclose(t);
}
END_TEST

/* The same warning more than GW_LOG_BURST times within the window: the rest are counted. */
START_TEST(test_rate_limit)
{
	FILE *t = capture_stderr();
	const char *out, *p;
	int lines = 0;

	unsetenv("JOURNAL_STREAM");
	gw_log_init("sensorgwd");
	for (int i = 0; i < GW_LOG_BURST + 10; i++)
		gw_log_port(LOG_WARNING, "uart9", "bad frame");
	gw_log_port(LOG_WARNING, "uart8", "bad frame"); /* another port: its own slot */
	gw_log_port(LOG_INFO, "uart9", "info is never limited");
	out = captured(t);
	for (p = out; (p = strstr(p, "port uart9: bad frame\n")) != NULL; p++)
		lines++;
	ck_assert_int_eq(lines, GW_LOG_BURST);
	ck_assert_ptr_nonnull(strstr(out, "port uart8: bad frame\n"));
	ck_assert_ptr_nonnull(strstr(out, "port uart9: info is never limited\n"));
	fclose(t);
}
END_TEST

static uint64_t due_seen;
static unsigned due_calls;

static void on_pending(uint64_t due_us, void *ud)
{
	due_seen = due_us;
	due_calls++;
}

static size_t occurrences(const char *text, const char *needle)
{
	size_t n = 0;

	for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/*
 * A burst ends with its summary without the message coming back: the owner of the loop is
 * told when it is due and flushes it then (here by hand, with the clock it was given); at exit
 * everything pending is flushed; a slot taken by another message reports first.
 */
START_TEST(test_rate_limit_summary)
{
	FILE *t = capture_stderr();
	const char *out;
	uint64_t t0, next;

	unsetenv("JOURNAL_STREAM");
	gw_log_init("sensorgwd");
	gw_log_set_pending_fn(on_pending, NULL);
	t0 = gw_now_mono_us();
	for (int i = 0; i < GW_LOG_BURST + 10; i++)
		gw_log_node(LOG_WARNING, "uart7", "n1", "record dropped: %s", "reason");
	ck_assert_uint_eq(due_calls, 1);
	ck_assert_uint_ge(due_seen, t0 + (uint64_t)GW_LOG_INTERVAL_S * 1000000);
	ck_assert_uint_le(due_seen, gw_now_mono_us() + (uint64_t)GW_LOG_INTERVAL_S * 1000000 + 1);
	/* not yet due: nothing written, the due time given back */
	next = gw_log_flush_suppressed(gw_now_mono_us());
	ck_assert_uint_eq(next, due_seen);
	out = captured(t);
	ck_assert_ptr_null(strstr(out, "suppressed"));
	/* due: one summary with the message and its fields */
	ck_assert_uint_eq(gw_log_flush_suppressed(due_seen), 0);
	out = captured(t);
	ck_assert_msg(strstr(out, "sensorgwd: warning: port uart7: node n1: 10 similar messages "
			      "were suppressed (30 s window): \"record dropped: reason\"\n"), "%s",
		      out);
	ck_assert_uint_eq(occurrences(out, "suppressed"), 1);
	/* nothing more to say */
	ck_assert_uint_eq(gw_log_flush_suppressed(UINT64_MAX), 0);
	ck_assert_uint_eq(occurrences(captured(t), "suppressed"), 1);
	fclose(t);

	/* at exit: flushed at once */
	t = capture_stderr();
	for (int i = 0; i < GW_LOG_BURST + 3; i++)
		gw_log_uplink(LOG_ERR, "u1", "cannot save the cursor");
	ck_assert_uint_eq(due_calls, 2);
	gw_log_flush_suppressed(UINT64_MAX);
	out = captured(t);
	ck_assert_msg(strstr(out, "uplink u1: 3 similar messages were suppressed"), "%s", out);
	fclose(t);

	/* a slot taken over by another message reports what it held */
	t = capture_stderr();
	for (int i = 0; i < GW_LOG_BURST + 1; i++)
		gw_log_port(LOG_WARNING, "uart6", "first message");
	for (int m = 0; m < 40; m++)
		gw_log_port(LOG_WARNING, "uart6", "other message %d", m);
	out = captured(t);
	ck_assert_msg(strstr(out, "port uart6: 1 similar messages were suppressed (30 s window): "
			      "\"first message\""), "%s", out);
	gw_log_set_pending_fn(NULL, NULL);
	fclose(t);
}
END_TEST

static Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("log");

	tcase_add_test(tc, test_fields_no_context);
	tcase_add_test(tc, test_fields_context);
	tcase_add_test(tc, test_fields_verbatim);
	tcase_add_test(tc, test_levels);
	tcase_add_test(tc, test_journal_stream);
	tcase_add_test(tc, test_stderr_lines);
	tcase_add_test(tc, test_rate_limit);
	tcase_add_test(tc, test_rate_limit_summary);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ck_run_suite(log_suite());
}
