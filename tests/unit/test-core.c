/* SPDX-License-Identifier: MIT */
/* Unit tests for the node table, the payload/topic builder and the util helpers. */

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../helpers/ckrun.h"
#include "gw/node.h"
#include "gw/payload.h"
#include "gw/util.h"

static const uint8_t uid[GW_UID_SIZE] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
					  0xcd, 0xef, 0x01, 0x23, 0x45, 0x67 };

START_TEST(test_node_identity)
{
	struct gw_nodes *n;
	struct gw_node *a, *b, *c;
	struct gw_frame hello = { .type = GW_FRAME_HELLO, .has_addr = true, .addr = 3 };
	bool created;

	ck_assert_int_eq(gw_nodes_new("stm32-{uid}", GW_NODES_MAX, &n), 0);
	ck_assert_int_eq(gw_nodes_get(n, "txt", false, 0, &a, &created), 0);
	ck_assert(created);
	ck_assert_str_eq(a->id, "txt");
	ck_assert_str_eq(a->device, "stm32-txt");
	ck_assert_int_eq(gw_nodes_get(n, "bin", true, 3, &b, &created), 0);
	ck_assert(created);
	ck_assert_str_eq(b->id, "bin-3");
	ck_assert_int_eq(gw_nodes_get(n, "bin", true, 3, &c, &created), 0);
	ck_assert(!created);
	ck_assert_ptr_eq(b, c);
	ck_assert_uint_eq(gw_nodes_count(n), 2);

	memcpy(hello.uid, uid, sizeof(uid));
	hello.boot_counter = 7;
	strcpy(hello.fw_version, "1.2.3");
	ck_assert_int_eq(gw_node_hello(n, b, &hello), 1);
	ck_assert_str_eq(b->id, "0123456789abcdef01234567");
	ck_assert_str_eq(b->device, "stm32-0123456789abcdef01234567");
	ck_assert(b->has_boot);
	ck_assert_uint_eq(b->boot_counter, 7);
	ck_assert_str_eq(b->fw_version, "1.2.3");
	/* the same UID again is a reboot, not a new identity */
	hello.boot_counter = 8;
	ck_assert_int_eq(gw_node_hello(n, b, &hello), 0);
	ck_assert_uint_eq(b->boot_counter, 8);
	gw_nodes_free(n);
}
END_TEST

START_TEST(test_node_template)
{
	struct gw_nodes *n;
	struct gw_node *a;

	ck_assert_int_eq(gw_nodes_new("{port}/{addr}/{uid}", GW_NODES_MAX, &n), 0);
	ck_assert_int_eq(gw_nodes_get(n, "p", true, 254, &a, NULL), 0);
	ck_assert_str_eq(a->device, "p/254/p-254");
	gw_nodes_free(n);

	ck_assert_int_eq(gw_nodes_new("x-{nope}", GW_NODES_MAX, &n), 0);
	ck_assert_int_eq(gw_nodes_get(n, "p", false, 0, &a, NULL), -EINVAL);
	ck_assert_uint_eq(gw_nodes_count(n), 0);
	gw_nodes_free(n);
}
END_TEST

START_TEST(test_node_table_bound)
{
	struct gw_nodes *n;
	struct gw_node *a;
	char port[16];

	ck_assert_int_eq(gw_nodes_new("d-{uid}", GW_NODES_MAX, &n), 0);
	for (int i = 0; i < GW_NODES_MAX; i++) {
		snprintf(port, sizeof(port), "p%d", i / 200);
		ck_assert_int_eq(gw_nodes_get(n, port, true, (uint8_t)(i % 200), &a, NULL), 0);
	}
	ck_assert_int_eq(gw_nodes_get(n, "other", false, 0, &a, NULL), -ENOSPC);
	gw_nodes_free(n);
}
END_TEST

/* max_nodes: the table stops at max; a refused (port, addr) is reported new once, its frames
 * all counted; nodes already in the table go on; out-of-range maxima are clamped. */
START_TEST(test_node_table_max)
{
	struct gw_nodes_stats st;
	struct gw_nodes *n;
	struct gw_node *a, *b;
	bool created;

	ck_assert_int_eq(gw_nodes_new("d-{port}-{addr}", 2, &n), 0);
	ck_assert_int_eq(gw_nodes_get(n, "p", true, 1, &a, &created), 0);
	ck_assert(created);
	ck_assert_int_eq(gw_nodes_get(n, "p", false, 0, &b, &created), 0);
	ck_assert(created);
	ck_assert_int_eq(gw_nodes_get(n, "p", true, 3, &a, &created), -ENOSPC);
	ck_assert(created); /* refused for the first time */
	ck_assert_int_eq(gw_nodes_get(n, "p", true, 3, &a, &created), -ENOSPC);
	ck_assert(!created);
	ck_assert_int_eq(gw_nodes_get(n, "q", true, 3, &a, &created), -ENOSPC);
	ck_assert(created); /* the same address on another port is another node */
	ck_assert_int_eq(gw_nodes_get(n, "q", false, 0, &a, &created), -ENOSPC);
	ck_assert(created); /* no address is its own key, apart from address 0 */
	ck_assert_int_eq(gw_nodes_get(n, "q", true, 0, &a, &created), -ENOSPC);
	ck_assert(created);
	ck_assert_int_eq(gw_nodes_get(n, "q", true, 255, &a, &created), -ENOSPC);
	ck_assert(created);
	ck_assert_int_eq(gw_nodes_get(n, "q", true, 255, &a, &created), -ENOSPC);
	ck_assert(!created);
	/* the known ones are still found */
	ck_assert_int_eq(gw_nodes_get(n, "p", true, 1, &a, &created), 0);
	ck_assert(!created);
	ck_assert_int_eq(gw_nodes_get(n, "p", false, 0, &a, &created), 0);
	ck_assert(a == b);
	gw_nodes_stats(n, &st);
	ck_assert_uint_eq(st.known, 2);
	ck_assert_uint_eq(st.max, 2);
	ck_assert_uint_eq(st.refused, 5);
	ck_assert_uint_eq(st.frames_refused, 7);
	ck_assert_uint_eq(gw_nodes_count(n), 2);
	gw_nodes_free(n);

	ck_assert_int_eq(gw_nodes_new("d", 0, &n), 0);
	gw_nodes_stats(n, &st);
	ck_assert_uint_eq(st.max, 1);
	gw_nodes_free(n);
	ck_assert_int_eq(gw_nodes_new("d", 100000, &n), 0);
	gw_nodes_stats(n, &st);
	ck_assert_uint_eq(st.max, GW_NODES_MAX);
	gw_nodes_free(n);
}
END_TEST

START_TEST(test_node_seq_gaps)
{
	struct gw_node node = { 0 };
	bool dup;

	ck_assert_uint_eq(gw_node_seq(&node, 10, &dup), 0); /* first */
	ck_assert(!dup);
	ck_assert_uint_eq(gw_node_seq(&node, 11, &dup), 0);
	ck_assert(!dup);
	ck_assert_uint_eq(gw_node_seq(&node, 14, &dup), 2); /* 12, 13 missing */
	ck_assert(!dup);
	ck_assert_uint_eq(gw_node_seq(&node, 14, &dup), 0); /* retransmission */
	ck_assert(dup);
	ck_assert_uint_eq(gw_node_seq(&node, 12, &dup), 0); /* late copy: a duplicate, no gap */
	ck_assert(dup);
	ck_assert_uint_eq(node.last_seq, 14);
	ck_assert_uint_eq(node.duplicates, 2);
	node.last_seq = 65535;
	ck_assert_uint_eq(gw_node_seq(&node, 0, &dup), 0); /* wrap */
	ck_assert(!dup);
	ck_assert_uint_eq(gw_node_seq(&node, 2, &dup), 1);
	ck_assert(!dup);
	ck_assert_uint_eq(gw_node_seq(&node, 65535 - 1000, &dup), 0); /* node started over */
	ck_assert(!dup);
	ck_assert_uint_eq(node.last_seq, 65535 - 1000);
	ck_assert_uint_eq(node.seq_gaps, 3);
}
END_TEST

START_TEST(test_payload)
{
	struct gw_nodes *n;
	struct gw_node *node;
	struct gw_frame hello = { .type = GW_FRAME_HELLO, .boot_counter = 5 };
	struct gw_record r = { 0 };
	json_t *params = json_pack("{s:i, s:f, s:b, s:s}", "MQ2", 30, "DHT11_T", 21.5, "ok", 1,
				   "state", "idle");
	json_t *got, *want;
	json_error_t err;
	char *s;
	size_t len;
	char topic[128];

	ck_assert_int_eq(gw_nodes_new("stm32-{uid}", GW_NODES_MAX, &n), 0);
	ck_assert_int_eq(gw_nodes_get(n, "bin", true, 2, &node, NULL), 0);
	memcpy(hello.uid, uid, sizeof(uid));
	strcpy(hello.fw_version, "1.2.3");
	ck_assert_int_eq(gw_node_hello(n, node, &hello), 1);

	r.seq = 42;
	r.ts_ms = 1763761800123;
	r.type = GW_FRAME_TELEMETRY;
	r.node = node;
	r.has_node_seq = true;
	r.node_seq = 41;
	r.params = params;
	ck_assert_int_eq(gw_payload_json(&r, &s, &len), 0);
	ck_assert_uint_eq(len, strlen(s));
	/* exact text: key order and number formatting are part of the contract */
	ck_assert_str_eq(s, "{\"device\":\"stm32-0123456789abcdef01234567\","
			    "\"node\":\"0123456789abcdef01234567\",\"port\":\"bin\",\"addr\":2,"
			    "\"seq\":42,\"node_seq\":41,\"boot\":5,\"fw\":\"1.2.3\","
			    "\"ts\":1763761800123,"
			    "\"params\":{\"MQ2\":30,\"DHT11_T\":21.5,\"ok\":true,\"state\":\"idle\"}}");
	free(s);

	/* what the spool stores: identity for the topic, then the JSON as published */
	{
		uint8_t *packed;
		size_t plen;
		struct gw_payload_view v;

		s = NULL;
		ck_assert_int_eq(gw_payload_json(&r, &s, &len), 0);
		ck_assert_int_eq(gw_payload_pack(&r, s, len, &packed, &plen), 0);
		ck_assert_int_eq(gw_payload_unpack(packed, plen, GW_FRAME_TELEMETRY, &v), 0);
		ck_assert_str_eq(v.device, "stm32-0123456789abcdef01234567");
		ck_assert_str_eq(v.node, "0123456789abcdef01234567");
		ck_assert_str_eq(v.port, "bin");
		ck_assert_str_eq(v.addr, "2");
		ck_assert_uint_eq(v.json_len, len);
		ck_assert(memcmp(v.json, s, len) == 0);
		ck_assert_int_eq(gw_payload_topic("sensorgw/{device}/{kind}", &v, "up", topic,
						  sizeof(topic)),
				 (int)strlen("sensorgw/stm32-0123456789abcdef01234567/telemetry"));
		ck_assert_str_eq(topic, "sensorgw/stm32-0123456789abcdef01234567/telemetry");
		ck_assert_int_eq(gw_payload_topic("{uplink}/{port}/{addr}/{uid}", &v, "up", topic,
						  sizeof(topic)), 33);
		ck_assert_str_eq(topic, "up/bin/2/0123456789abcdef01234567");
		ck_assert_int_eq(gw_payload_topic("{bogus}", &v, "up", topic, sizeof(topic)),
				 -EINVAL);
		ck_assert_int_eq(gw_payload_topic("sensorgw/{device}", &v, "up", topic, 10),
				 -ENOBUFS);
		v.type = GW_FRAME_EVENT;
		ck_assert_int_eq(gw_payload_topic("{kind}", &v, "up", topic, sizeof(topic)), 5);
		ck_assert_str_eq(topic, "event");
		/* damaged or foreign bytes are refused, never read past their end */
		ck_assert_int_eq(gw_payload_unpack(packed, 10, GW_FRAME_TELEMETRY, &v), -EBADMSG);
		ck_assert_int_eq(gw_payload_unpack(packed, plen, GW_FRAME_HELLO, &v), -EBADMSG);
		ck_assert_int_eq(gw_payload_unpack(packed, 0, GW_FRAME_TELEMETRY, &v), -EBADMSG);
		free(packed);
		free(s);
	}

	/* event, no params, a scaled value that is not exact in binary */
	r.type = GW_FRAME_EVENT;
	strcpy(r.event, "overheat");
	r.has_node_seq = false;
	json_decref(params);
	r.params = json_pack("{s:f}", "t", 215 * 0.1);
	ck_assert_int_eq(gw_payload_json(&r, &s, NULL), 0);
	got = json_loads(s, 0, &err);
	ck_assert_ptr_nonnull(got);
	want = json_pack("{s:s, s:s, s:s, s:i, s:I, s:i, s:s, s:I, s:s, s:{s:f}}", "device",
			 node->device, "node", node->id, "port", "bin", "addr", 2, "seq",
			 (json_int_t)42, "boot", 5, "fw", "1.2.3", "ts", (json_int_t)1763761800123,
			 "event", "overheat", "params", "t", 21.5);
	ck_assert(json_equal(got, want));
	ck_assert_ptr_null(strstr(s, "node_seq"));
	ck_assert_ptr_nonnull(strstr(s, "\"t\":21.5}"));
	free(s);
	json_decref(got);
	json_decref(want);
	json_decref(r.params);
	gw_nodes_free(n);
}
END_TEST

START_TEST(test_backoff)
{
	uint32_t d = 0;
	uint32_t seen[8];

	for (int i = 0; i < 8; i++)
		seen[i] = d = gw_backoff_next(d, 100, 2000);
	ck_assert_uint_eq(seen[0], 100);
	ck_assert_uint_eq(seen[1], 200);
	ck_assert_uint_eq(seen[4], 1600);
	ck_assert_uint_eq(seen[5], 2000);
	ck_assert_uint_eq(seen[7], 2000);
	ck_assert_uint_eq(gw_backoff_next(0, 0, 0), 1);
	ck_assert_uint_eq(gw_backoff_next(UINT32_MAX, 1, UINT32_MAX), UINT32_MAX);
	for (int i = 0; i < 1000; i++) {
		uint32_t j = gw_backoff_jitter(1000);

		ck_assert_uint_ge(j, 500);
		ck_assert_uint_le(j, 1000);
	}
	ck_assert_uint_eq(gw_backoff_jitter(0), 0);
	ck_assert_uint_le(gw_backoff_jitter(1), 1);
}
END_TEST

static const char *lookup(const char *name, size_t len, void *ud)
{
	if (len == 1 && name[0] == 'a')
		return "AAA";
	if (len == 0)
		return "empty";
	return NULL;
}

START_TEST(test_template)
{
	static const char *const allowed[] = { "a", "b", NULL };
	char buf[16];

	ck_assert_int_eq(gw_template_expand("x{a}y{a}", lookup, NULL, buf, sizeof(buf)), 8);
	ck_assert_str_eq(buf, "xAAAyAAA");
	ck_assert_int_eq(gw_template_expand("{}", lookup, NULL, buf, sizeof(buf)), 5);
	ck_assert_int_eq(gw_template_expand("{a", lookup, NULL, buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(gw_template_expand("{c}", lookup, NULL, buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(gw_template_expand("{a}{a}{a}{a}{a}{a}", lookup, NULL, buf, sizeof(buf)),
			 -ENOBUFS);
	ck_assert_int_eq(gw_template_expand("0123456789abcdef", lookup, NULL, buf, sizeof(buf)),
			 -ENOBUFS);
	ck_assert_int_eq(gw_template_check("t/{a}/{b}", allowed), 0);
	ck_assert_int_eq(gw_template_check("t/{c}", allowed), -EINVAL);
	ck_assert_int_eq(gw_template_check("t/{a", allowed), -EINVAL);
}
END_TEST

START_TEST(test_seqset)
{
	struct gw_seqset s = { 0 };

	ck_assert(!gw_seqset_has(&s, 1));
	gw_seqset_prune(&s, 100); /* empty and never allocated */
	for (uint64_t i = 200; i > 0; i -= 2)
		gw_seqset_add(&s, i); /* out of order */
	gw_seqset_add(&s, 50);    /* again */
	ck_assert_uint_eq(s.n, 100);
	for (size_t i = 1; i < s.n; i++)
		ck_assert_uint_lt(s.v[i - 1], s.v[i]);
	ck_assert(gw_seqset_has(&s, 2));
	ck_assert(!gw_seqset_has(&s, 3));
	gw_seqset_prune(&s, 101);
	ck_assert_uint_eq(s.n, 50);
	ck_assert_uint_eq(s.v[0], 102);
	ck_assert(!gw_seqset_has(&s, 100));
	gw_seqset_prune(&s, 1000);
	ck_assert_uint_eq(s.n, 0);
	gw_seqset_free(&s);
	ck_assert_ptr_null(s.v);
}
END_TEST

START_TEST(test_rate)
{
	struct gw_rate r;
	uint64_t t = 1000000;
	int taken = 0;

	gw_rate_init(&r, 10, t);
	while (gw_rate_take(&r, t) == 0)
		taken++;
	ck_assert_int_eq(taken, 10); /* one second's burst */
	ck_assert_uint_gt(gw_rate_take(&r, t), 0);
	ck_assert_uint_le(gw_rate_take(&r, t), 100001);
	t += 100000; /* a tenth of a second: one more token */
	ck_assert_uint_eq(gw_rate_take(&r, t), 0);
	ck_assert_uint_gt(gw_rate_take(&r, t), 0);
	gw_rate_give_back(&r);
	ck_assert_uint_eq(gw_rate_take(&r, t), 0);
	t += 60000000; /* a long pause saves up one second's worth only */
	taken = 0;
	while (gw_rate_take(&r, t) == 0)
		taken++;
	ck_assert_int_eq(taken, 10);
	gw_rate_init(&r, 0, t); /* no limit */
	for (int i = 0; i < 1000; i++)
		ck_assert_uint_eq(gw_rate_take(&r, t), 0);
}
END_TEST

/* The command rate: a burst larger than a second's worth, refilled at per_s, never more than
 * burst saved up; the time is passed in, so nothing here sleeps. */
START_TEST(test_rate_burst)
{
	struct gw_rate r;
	uint64_t t = 7000000;
	int taken = 0;

	gw_rate_init_burst(&r, 10, 20, t);
	while (gw_rate_take(&r, t) == 0)
		taken++;
	ck_assert_int_eq(taken, 20); /* the burst, at once */
	/* empty: the next token in a tenth of a second */
	ck_assert_uint_ge(gw_rate_take(&r, t), 99999);
	ck_assert_uint_le(gw_rate_take(&r, t), 100001);
	t += 99000;
	ck_assert_uint_gt(gw_rate_take(&r, t), 0);
	t += 1000;
	ck_assert_uint_eq(gw_rate_take(&r, t), 0);
	ck_assert_uint_gt(gw_rate_take(&r, t), 0);
	/* one second: per_s more, not the burst */
	t += 1000000;
	taken = 0;
	while (gw_rate_take(&r, t) == 0)
		taken++;
	ck_assert_int_eq(taken, 10);
	/* sustained at exactly per_s, every take succeeds */
	for (int i = 0; i < 100; i++) {
		t += 100000;
		ck_assert_uint_eq(gw_rate_take(&r, t), 0);
	}
	/* a long pause saves up the burst, no more */
	t += 3600000000ULL;
	taken = 0;
	while (gw_rate_take(&r, t) == 0)
		taken++;
	ck_assert_int_eq(taken, 20);
	/* a burst smaller than a second's worth caps the saving too */
	gw_rate_init_burst(&r, 100, 3, t);
	t += 10000000;
	taken = 0;
	while (gw_rate_take(&r, t) == 0)
		taken++;
	ck_assert_int_eq(taken, 3);
	/* burst 0 is taken as 1; per_s 0 is no limit whatever the burst */
	gw_rate_init_burst(&r, 1, 0, t);
	ck_assert_uint_eq(gw_rate_take(&r, t), 0);
	ck_assert_uint_gt(gw_rate_take(&r, t), 0);
	gw_rate_init_burst(&r, 0, 5, t);
	for (int i = 0; i < 1000; i++)
		ck_assert_uint_eq(gw_rate_take(&r, t), 0);
}
END_TEST

START_TEST(test_every)
{
	uint64_t last = 0;

	ck_assert(gw_every(&last, 5000000, 10000000));  /* the first, whenever it comes */
	ck_assert(!gw_every(&last, 5000001, 10000000));
	ck_assert(!gw_every(&last, 14999999, 10000000));
	ck_assert(gw_every(&last, 15000000, 10000000));
	ck_assert(!gw_every(&last, 15000000, 10000000));
	last = 0;
	ck_assert(gw_every(&last, 0, 10)); /* a clock at 0 still counts as "logged" */
	ck_assert(!gw_every(&last, 5, 10));
}
END_TEST

/* The sliding window never lets more than n through in any window, even after a pause. */
START_TEST(test_window)
{
	struct gw_window w;
	uint64_t t = 5000000, first;
	int taken = 0;

	gw_window_init(&w, 3, 1000000);
	ck_assert_uint_eq(gw_window_wait(&w, t), 0);
	first = t;
	while (gw_window_take(&w, t) == 0) {
		taken++;
		t += 100000;
	}
	ck_assert_int_eq(taken, 3);
	/* at 5.3 s: the first slot frees at 6.0 s */
	ck_assert_uint_eq(gw_window_take(&w, t), first + 1000000 - t);
	ck_assert_uint_eq(gw_window_wait(&w, t), first + 1000000 - t);
	t = first + 1000000;
	ck_assert_uint_eq(gw_window_wait(&w, t), 0);
	ck_assert_uint_eq(gw_window_take(&w, t), 0);
	/* the next frees 1 s after the second event, at 6.1 s */
	ck_assert_uint_eq(gw_window_take(&w, t), 100000);
	/* a slot given back is free again at once, and only the newest goes */
	gw_window_give_back(&w);
	ck_assert_uint_eq(gw_window_take(&w, t), 0);
	ck_assert_uint_eq(gw_window_take(&w, t), 100000);
	/* after a long pause: n at once, then nothing for a whole window (a bucket allows 2n) */
	t += 60000000;
	taken = 0;
	while (gw_window_take(&w, t) == 0)
		taken++;
	ck_assert_int_eq(taken, 3);
	ck_assert_uint_eq(gw_window_take(&w, t + 999999), 1);
	ck_assert_uint_eq(gw_window_take(&w, t + 1000000), 0);
	gw_window_free(&w);
	ck_assert_ptr_null(w.at);
	gw_window_free(&w);

	gw_window_init(&w, 0, 1000000); /* no limit, nothing allocated */
	for (int i = 0; i < 1000; i++)
		ck_assert_uint_eq(gw_window_take(&w, t), 0);
	ck_assert_ptr_null(w.at);
	gw_window_free(&w);
}
END_TEST

static Suite *core_suite(void)
{
	Suite *s = suite_create("core");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_node_identity);
	tcase_add_test(tc, test_node_template);
	tcase_add_test(tc, test_node_table_bound);
	tcase_add_test(tc, test_node_table_max);
	tcase_add_test(tc, test_node_seq_gaps);
	tcase_add_test(tc, test_payload);
	tcase_add_test(tc, test_backoff);
	tcase_add_test(tc, test_template);
	tcase_add_test(tc, test_seqset);
	tcase_add_test(tc, test_rate);
	tcase_add_test(tc, test_rate_burst);
	tcase_add_test(tc, test_every);
	tcase_add_test(tc, test_window);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ck_run_suite(core_suite());
}
