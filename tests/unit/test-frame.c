/* SPDX-License-Identifier: MIT */
/* Unit tests for the binary frame decoder: streaming, resync, error classes and counters. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../helpers/emulated.h"
#include "gw/frame.h"
#include "sgw_node.h"

#define CAPTURE_MAX 64

struct capture {
	size_t n;
	struct gw_frame frames[CAPTURE_MAX];
	enum gw_frame_error errs[CAPTURE_MAX];
};

static uint32_t rng_state = 0xC0FFEEu;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static void on_frame(const struct gw_frame *f, enum gw_frame_error err, void *user_data)
{
	struct capture *c = user_data;

	ck_assert_uint_lt(c->n, CAPTURE_MAX);
	/* memcpy, not assignment: the decoder zeroes frames, so padding compares equal too. */
	memcpy(&c->frames[c->n], f, sizeof(*f));
	c->errs[c->n] = err;
	c->n++;
}

static struct capture *capture_new(void)
{
	struct capture *c = calloc(1, sizeof(*c));

	ck_assert_ptr_nonnull(c);
	return c;
}

static struct gw_decoder *decoder_new(void)
{
	struct gw_decoder *d = NULL;

	ck_assert_int_eq(gw_decoder_new(GW_FRAMING_BINARY, &d), 0);
	ck_assert_ptr_nonnull(d);
	return d;
}

static void feed(struct gw_decoder *d, const uint8_t *buf, size_t len, struct capture *c)
{
	gw_decoder_feed(d, buf, len, on_frame, c);
}

static size_t finish(struct sgw_builder *b, uint8_t *out)
{
	int n = sgw_finish(b, out, SGW_MAX_WIRE);

	ck_assert_int_gt(n, 0);
	return (size_t)n;
}

/* Frames a raw packet body (header + payload): appends its CRC, COBS-encodes it and appends
 * the delimiter. Lets tests send packets the builder refuses to make. */
static size_t wire_from_raw(const uint8_t *raw, size_t len, uint8_t *out, size_t cap)
{
	uint8_t pkt[512];
	uint16_t crc;
	int n;

	ck_assert_uint_le(len + 2, sizeof(pkt));
	memcpy(pkt, raw, len);
	crc = sgw_crc16(pkt, len);
	pkt[len] = (uint8_t)(crc >> 8);
	pkt[len + 1] = (uint8_t)crc;
	n = sgw_cobs_encode(pkt, len + 2, out, cap - 1);
	ck_assert_int_gt(n, 0);
	out[n] = 0;
	return (size_t)n + 1;
}

static const uint8_t test_uid[GW_UID_SIZE] = { 0x30, 0x00, 0x41, 0x00, 0x0d, 0x51,
					       0x33, 0x38, 0x37, 0x37, 0x39, 0x30 };

/* Six frames, one of each type, back to back. */
static size_t build_stream(uint8_t *out)
{
	struct sgw_builder b;
	size_t len = 0;
	int n;

	n = sgw_encode_hello(3, 0, test_uid, 7, "1.4.2", out, SGW_MAX_WIRE);
	ck_assert_int_gt(n, 0);
	len += (size_t)n;

	sgw_begin(&b, SGW_TYPE_TELEMETRY, 3, 1);
	sgw_put_i32(&b, "MQ2", 30);
	sgw_put_i32(&b, "MQ135", 95);
	sgw_put_i32(&b, "MQ4", 12);
	sgw_put_i32(&b, "MQ7", 8);
	sgw_put_f32(&b, "DHT11_T", 14.0f);
	sgw_put_i32(&b, "DHT11_H", 61);
	sgw_put_i64(&b, "uptime", 5000000000LL);
	sgw_put_f64(&b, "vbat", 3.3);
	sgw_put_bool(&b, "heater", true);
	sgw_put_str(&b, "state", "warming up");
	len += finish(&b, out + len);

	sgw_begin(&b, SGW_TYPE_EVENT, 3, 2);
	sgw_put_str8(&b, "smoke_alarm", SGW_MAX_NAME);
	sgw_put_i32(&b, "MQ2", 900);
	len += finish(&b, out + len);

	sgw_begin(&b, SGW_TYPE_COMMAND, 3, 3);
	sgw_put_u16(&b, 0x0102);
	sgw_put_u8(&b, SGW_CMD_PROPERTY_SET);
	sgw_put_str8(&b, "", SGW_MAX_NAME);
	sgw_put_i32(&b, "period", 10);
	len += finish(&b, out + len);

	sgw_begin(&b, SGW_TYPE_COMMAND_REPLY, 3, 4);
	sgw_put_u16(&b, 0x0102);
	sgw_put_u16(&b, 200);
	sgw_put_i32(&b, "period", 10);
	len += finish(&b, out + len);

	sgw_begin(&b, SGW_TYPE_ACK, 3, 5);
	sgw_put_u16(&b, 4);
	len += finish(&b, out + len);
	return len;
}

static const struct gw_field *find_field(const struct gw_frame *f, const char *key)
{
	size_t i;

	for (i = 0; i < f->n_fields; i++)
		if (strcmp(f->fields[i].key, key) == 0)
			return &f->fields[i];
	return NULL;
}

/* Checks the six frames of build_stream in c, starting at index first. */
static void check_stream_frames(const struct capture *c, size_t first)
{
	const struct gw_frame *f = &c->frames[first];
	const struct gw_field *fl;
	size_t i;

	for (i = 0; i < 6; i++) {
		ck_assert_int_eq(c->errs[first + i], GW_FRAME_OK);
		ck_assert(f[i].has_addr);
		ck_assert_uint_eq(f[i].addr, 3);
		ck_assert(f[i].has_seq);
		ck_assert_uint_eq(f[i].seq, i);
		ck_assert_int_eq(f[i].type, (int)i + 1);
	}
	ck_assert_mem_eq(f[0].uid, test_uid, GW_UID_SIZE);
	ck_assert_uint_eq(f[0].boot_counter, 7);
	ck_assert_str_eq(f[0].fw_version, "1.4.2");
	ck_assert_uint_eq(f[0].n_fields, 0);

	ck_assert_uint_eq(f[1].n_fields, 10);
	ck_assert_str_eq(f[1].fields[0].key, "MQ2");
	ck_assert_int_eq(f[1].fields[0].value.type, GW_VALUE_INT);
	ck_assert_int_eq(f[1].fields[0].value.i, 30);
	fl = find_field(&f[1], "DHT11_T");
	ck_assert_ptr_nonnull(fl);
	ck_assert_int_eq(fl->value.type, GW_VALUE_DOUBLE);
	ck_assert_double_eq(fl->value.d, 14.0);
	fl = find_field(&f[1], "uptime");
	ck_assert_ptr_nonnull(fl);
	ck_assert_int_eq(fl->value.type, GW_VALUE_INT);
	ck_assert(fl->value.i == 5000000000LL);
	fl = find_field(&f[1], "vbat");
	ck_assert_ptr_nonnull(fl);
	ck_assert_double_eq(fl->value.d, 3.3);
	fl = find_field(&f[1], "heater");
	ck_assert_ptr_nonnull(fl);
	ck_assert_int_eq(fl->value.type, GW_VALUE_BOOL);
	ck_assert(fl->value.b);
	fl = find_field(&f[1], "state");
	ck_assert_ptr_nonnull(fl);
	ck_assert_int_eq(fl->value.type, GW_VALUE_STRING);
	ck_assert_str_eq(fl->value.s, "warming up");

	ck_assert_str_eq(f[2].name, "smoke_alarm");
	ck_assert_uint_eq(f[2].n_fields, 1);
	ck_assert_int_eq(f[2].fields[0].value.i, 900);

	ck_assert_uint_eq(f[3].cmd_id, 0x0102);
	ck_assert_uint_eq(f[3].cmd_kind, SGW_CMD_PROPERTY_SET);
	ck_assert_str_eq(f[3].name, "");
	ck_assert_uint_eq(f[3].n_fields, 1);

	ck_assert_uint_eq(f[4].cmd_id, 0x0102);
	ck_assert_uint_eq(f[4].code, 200);
	ck_assert_uint_eq(f[4].n_fields, 1);

	ck_assert_uint_eq(f[5].acked_seq, 4);
}

static void assert_same(const struct capture *a, const struct capture *b)
{
	size_t i;

	ck_assert_uint_eq(a->n, b->n);
	for (i = 0; i < a->n; i++) {
		ck_assert_int_eq(a->errs[i], b->errs[i]);
		ck_assert_mem_eq(&a->frames[i], &b->frames[i], sizeof(a->frames[i]));
	}
}

START_TEST(test_every_type)
{
	uint8_t stream[6 * SGW_MAX_WIRE];
	struct capture *c = capture_new();
	struct gw_decoder *d = decoder_new();
	const struct gw_frame_stats *st;
	size_t len;

	len = build_stream(stream);
	feed(d, stream, len, c);
	ck_assert_uint_eq(c->n, 6);
	check_stream_frames(c, 0);
	st = gw_decoder_stats(d);
	ck_assert_uint_eq(st->bytes, len);
	ck_assert_uint_eq(st->frames, 6);
	ck_assert_uint_eq(st->resyncs, 0);
	gw_decoder_free(d);
	free(c);
}
END_TEST

START_TEST(test_every_split_point)
{
	uint8_t stream[6 * SGW_MAX_WIRE];
	struct capture *ref = capture_new(), *c = capture_new();
	struct gw_decoder *d;
	size_t len, split, i;

	len = build_stream(stream);
	d = decoder_new();
	feed(d, stream, len, ref);
	gw_decoder_free(d);
	ck_assert_uint_eq(ref->n, 6);

	for (split = 0; split <= len; split++) {
		c->n = 0;
		d = decoder_new();
		feed(d, stream, split, c);
		feed(d, stream + split, len - split, c);
		assert_same(ref, c);
		gw_decoder_free(d);
	}

	c->n = 0;
	d = decoder_new();
	for (i = 0; i < len; i++)
		feed(d, stream + i, 1, c);
	assert_same(ref, c);
	ck_assert_uint_eq(gw_decoder_stats(d)->bytes, len);
	gw_decoder_free(d);
	free(ref);
	free(c);
}
END_TEST

START_TEST(test_garbage_between_frames)
{
	static uint8_t stream[8192];
	uint8_t frames[6 * SGW_MAX_WIRE];
	struct capture *c = capture_new();
	struct gw_decoder *d = decoder_new();
	const struct gw_frame_stats *st;
	size_t flen, len = 0, i, good = 0, bad = 0, round;
	size_t starts[6], off = 0;

	flen = build_stream(frames);
	/* Locate the frames inside the stream so that each can be preceded by junk. */
	for (i = 0; i < 6; i++) {
		starts[i] = off;
		while (frames[off] != 0)
			off++;
		off++;
	}
	ck_assert_uint_eq(off, flen);

	for (round = 0; round < 4; round++) {
		for (i = 0; i < 6; i++) {
			size_t end = i < 5 ? starts[i + 1] : flen, junk = 1 + rng() % 60, k;

			/* Junk without 0x00 in even rounds, with stray 0x00 in odd rounds. A sender
			 * that precedes each packet with 0x00 is immune to junk before it. */
			for (k = 0; k < junk; k++) {
				uint8_t x = (uint8_t)rng();

				if (round % 2 == 0 && x == 0)
					x = 0xA5;
				stream[len++] = x;
			}
			stream[len++] = 0;
			memcpy(stream + len, frames + starts[i], end - starts[i]);
			len += end - starts[i];
		}
	}
	/* A single feed and a byte-by-byte feed must agree. */
	feed(d, stream, len, c);
	for (i = 0; i < c->n; i++) {
		if (c->errs[i] == GW_FRAME_OK) {
			ck_assert_int_eq(c->frames[i].type, (int)(good % 6) + 1);
			good++;
		} else {
			bad++;
		}
	}
	ck_assert_uint_eq(good, 24);
	ck_assert_uint_ge(bad, 4);
	st = gw_decoder_stats(d);
	ck_assert_uint_eq(st->frames, 24);
	ck_assert_uint_eq(st->resyncs, bad);
	ck_assert_uint_eq(st->errors[GW_FRAME_ERR_CRC] + st->errors[GW_FRAME_ERR_OVERSIZE] +
				  st->errors[GW_FRAME_ERR_UNKNOWN] +
				  st->errors[GW_FRAME_ERR_MALFORMED],
			  bad);
	ck_assert_uint_eq(st->bytes, len);
	gw_decoder_free(d);

	/* Pure random bytes never crash the decoder and never yield a frame by accident here. */
	d = decoder_new();
	c->n = 0;
	for (i = 0; i < 4000; i++) {
		uint8_t x = (uint8_t)(rng() % 40 == 0 ? 0 : rng());

		gw_decoder_feed(d, &x, 1, on_frame, c);
		if (c->n == CAPTURE_MAX)
			c->n = 0;
	}
	ck_assert_uint_eq(gw_decoder_stats(d)->frames, 0);
	gw_decoder_free(d);
	free(c);
}
END_TEST

START_TEST(test_bad_crc)
{
	uint8_t wire[SGW_MAX_WIRE], pkt[SGW_MAX_PACKET], good[SGW_MAX_WIRE];
	struct capture *c = capture_new();
	struct gw_decoder *d = decoder_new();
	struct sgw_builder b;
	size_t wlen, glen;
	int n;

	sgw_begin(&b, SGW_TYPE_TELEMETRY, 42, 9);
	sgw_put_i32(&b, "MQ7", 8);
	glen = finish(&b, good);
	n = sgw_cobs_decode(good, glen - 1, pkt, sizeof(pkt));
	ck_assert_int_gt(n, 0);
	pkt[n - 3] ^= 0x01; /* last payload byte; the CRC no longer matches */
	wlen = (size_t)sgw_cobs_encode(pkt, (size_t)n, wire, sizeof(wire) - 1);
	wire[wlen++] = 0;

	feed(d, wire, wlen, c);
	feed(d, good, glen, c);
	ck_assert_uint_eq(c->n, 2);
	ck_assert_int_eq(c->errs[0], GW_FRAME_ERR_CRC);
	ck_assert(c->frames[0].has_addr);
	ck_assert_uint_eq(c->frames[0].addr, 42);
	ck_assert_int_eq(c->errs[1], GW_FRAME_OK);
	ck_assert_uint_eq(gw_decoder_stats(d)->errors[GW_FRAME_ERR_CRC], 1);
	ck_assert_uint_eq(gw_decoder_stats(d)->resyncs, 1);
	ck_assert_uint_eq(gw_decoder_stats(d)->frames, 1);
	gw_decoder_free(d);
	free(c);
}
END_TEST

START_TEST(test_oversize)
{
	uint8_t junk[600], good[SGW_MAX_WIRE], raw[SGW_MAX_PACKET + 1], wire[300];
	struct capture *c = capture_new();
	struct gw_decoder *d = decoder_new();
	const struct gw_frame_stats *st;
	struct sgw_builder b;
	size_t glen, wlen, i;

	sgw_begin(&b, SGW_TYPE_ACK, 1, 1);
	sgw_put_u16(&b, 0);
	glen = finish(&b, good);

	/* 600 bytes without a delimiter: one error, however long the run. */
	memset(junk, 0x11, sizeof(junk));
	feed(d, junk, sizeof(junk), c);
	ck_assert_uint_eq(c->n, 1);
	ck_assert_int_eq(c->errs[0], GW_FRAME_ERR_OVERSIZE);
	feed(d, junk, 100, c);
	ck_assert_uint_eq(c->n, 1);
	feed(d, (const uint8_t *)"", 1, c);
	feed(d, good, glen, c);
	ck_assert_uint_eq(c->n, 2);
	ck_assert_int_eq(c->errs[1], GW_FRAME_OK);
	ck_assert_int_eq(c->frames[1].type, GW_FRAME_ACK);

	/* Exactly SGW_MAX_ENCODED bytes is not oversize by itself (it fails as a packet). */
	c->n = 0;
	feed(d, junk, SGW_MAX_ENCODED, c);
	feed(d, (const uint8_t *)"", 1, c);
	ck_assert_uint_eq(c->n, 1);
	ck_assert_int_ne(c->errs[0], GW_FRAME_ERR_OVERSIZE);

	/* A well-formed packet one byte longer than SGW_MAX_PACKET. */
	c->n = 0;
	raw[0] = 1;
	raw[1] = SGW_TYPE_ACK;
	raw[2] = 1;
	for (i = 3; i < SGW_MAX_PACKET - 1; i++)
		raw[i] = 0x20;
	wlen = wire_from_raw(raw, SGW_MAX_PACKET - 1, wire, sizeof(wire));
	ck_assert_uint_le(wlen, SGW_MAX_WIRE);
	feed(d, wire, wlen, c);
	feed(d, good, glen, c);
	ck_assert_uint_eq(c->n, 2);
	ck_assert_int_eq(c->errs[0], GW_FRAME_ERR_OVERSIZE);
	ck_assert_int_eq(c->errs[1], GW_FRAME_OK);

	st = gw_decoder_stats(d);
	ck_assert_uint_eq(st->errors[GW_FRAME_ERR_OVERSIZE], 2);
	ck_assert_uint_eq(st->frames, 2);
	gw_decoder_free(d);
	free(c);
}
END_TEST

/* Feeds one raw packet (CRC added here) and returns the error it produced. */
static enum gw_frame_error feed_raw(struct gw_decoder *d, const uint8_t *raw, size_t len,
				    struct capture *c)
{
	uint8_t wire[600];
	size_t wlen;

	c->n = 0;
	wlen = wire_from_raw(raw, len, wire, sizeof(wire));
	feed(d, wire, wlen, c);
	ck_assert_uint_eq(c->n, 1);
	return c->errs[0];
}

START_TEST(test_malformed_and_unknown)
{
	static const uint8_t short_pkt[] = { 1, 2, 3 };
	static const uint8_t ver2[] = { 2, SGW_TYPE_TELEMETRY, 3, 0, 1 };
	static const uint8_t type9[] = { 1, 9, 3, 0, 1 };
	static const uint8_t type0[] = { 1, 0, 3, 0, 1 };
	static const uint8_t trunc_field[] = { 1, SGW_TYPE_TELEMETRY, 3, 0, 1, 3, 'M', 'Q', '2',
					       SGW_VT_I32, 0, 0 };
	static const uint8_t bad_key[] = { 1, SGW_TYPE_TELEMETRY, 3, 0, 1, 3, 'M', 'Q', '!',
					   SGW_VT_BOOL, 1 };
	static const uint8_t bad_vtype[] = { 1, SGW_TYPE_TELEMETRY, 3, 0, 1, 1, 'a', 0x09, 1 };
	static const uint8_t ctl_str[] = { 1, SGW_TYPE_TELEMETRY, 3, 0, 1, 1, 's', SGW_VT_STR,
					   2, 'o', 0x1b };
	static const uint8_t high_str[] = { 1, SGW_TYPE_TELEMETRY, 3, 0, 1, 1, 's', SGW_VT_STR,
					    2, 'o', 0xc3 };
	static const uint8_t nan_f32[] = { 1, SGW_TYPE_TELEMETRY, 3, 0, 1, 1, 't', SGW_VT_F32,
					   0x7f, 0xc0, 0, 0 };
	static const uint8_t ack_trailing[] = { 1, SGW_TYPE_ACK, 3, 0, 1, 0, 4, 0 };
	static const uint8_t ack_short[] = { 1, SGW_TYPE_ACK, 3, 0, 1, 0 };
	static const uint8_t event_empty[] = { 1, SGW_TYPE_EVENT, 3, 0, 1, 0 };
	static const uint8_t cmd_short[] = { 1, SGW_TYPE_COMMAND, 3, 0, 1, 0, 1 };
	static const uint8_t empty_telemetry[] = { 1, SGW_TYPE_TELEMETRY, 3, 0, 1 };
	uint8_t raw[SGW_MAX_PACKET], hello[64];
	struct capture *c = capture_new();
	struct gw_decoder *d = decoder_new();
	const struct gw_frame_stats *st;
	size_t len, i;
	int n;

	ck_assert_int_eq(feed_raw(d, short_pkt, sizeof(short_pkt), c), GW_FRAME_ERR_MALFORMED);
	ck_assert(!c->frames[0].has_addr);
	ck_assert_int_eq(feed_raw(d, ver2, sizeof(ver2), c), GW_FRAME_ERR_UNKNOWN);
	ck_assert_int_eq(feed_raw(d, type9, sizeof(type9), c), GW_FRAME_ERR_UNKNOWN);
	ck_assert(c->frames[0].has_addr);
	ck_assert_uint_eq(c->frames[0].addr, 3);
	ck_assert_int_eq(feed_raw(d, type0, sizeof(type0), c), GW_FRAME_ERR_UNKNOWN);
	ck_assert_int_eq(feed_raw(d, trunc_field, sizeof(trunc_field), c), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(feed_raw(d, bad_key, sizeof(bad_key), c), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(feed_raw(d, bad_vtype, sizeof(bad_vtype), c), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(feed_raw(d, ctl_str, sizeof(ctl_str), c), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(feed_raw(d, high_str, sizeof(high_str), c), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(feed_raw(d, nan_f32, sizeof(nan_f32), c), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(feed_raw(d, ack_trailing, sizeof(ack_trailing), c),
			 GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(feed_raw(d, ack_short, sizeof(ack_short), c), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(feed_raw(d, event_empty, sizeof(event_empty), c), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(feed_raw(d, cmd_short, sizeof(cmd_short), c), GW_FRAME_ERR_MALFORMED);
	/* A telemetry frame without fields is valid (a heartbeat). */
	ck_assert_int_eq(feed_raw(d, empty_telemetry, sizeof(empty_telemetry), c), GW_FRAME_OK);

	/* hello with one trailing byte */
	n = sgw_encode_hello(3, 0, test_uid, 1, "x", hello, sizeof(hello));
	ck_assert_int_gt(n, 0);
	n = sgw_cobs_decode(hello, (size_t)n - 1, raw, sizeof(raw));
	len = (size_t)n - 2;
	raw[len++] = 0x00;
	ck_assert_int_eq(feed_raw(d, raw, len, c), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(feed_raw(d, raw, len - 2, c), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(feed_raw(d, raw, len - 1, c), GW_FRAME_OK);

	/* a string value of 64 bytes (the length byte says so; the builder would refuse) */
	len = 0;
	raw[len++] = 1;
	raw[len++] = SGW_TYPE_TELEMETRY;
	raw[len++] = 3;
	raw[len++] = 0;
	raw[len++] = 1;
	raw[len++] = 1;
	raw[len++] = 's';
	raw[len++] = SGW_VT_STR;
	raw[len++] = 64;
	for (i = 0; i < 64; i++)
		raw[len++] = 'x';
	ck_assert_int_eq(feed_raw(d, raw, len, c), GW_FRAME_ERR_MALFORMED);
	ck_assert_int_eq(feed_raw(d, raw, len - 1, c), GW_FRAME_ERR_MALFORMED);
	raw[8] = 63;
	ck_assert_int_eq(feed_raw(d, raw, len - 1, c), GW_FRAME_OK);
	ck_assert_uint_eq(strlen(c->frames[0].fields[0].value.s), 63);

	/* bad COBS: a code byte that runs past the delimiter */
	c->n = 0;
	feed(d, (const uint8_t *)"\x05\x11\x22", 4, c);
	ck_assert_uint_eq(c->n, 1);
	ck_assert_int_eq(c->errs[0], GW_FRAME_ERR_MALFORMED);

	st = gw_decoder_stats(d);
	ck_assert_uint_eq(st->errors[GW_FRAME_ERR_UNKNOWN], 3);
	ck_assert_uint_eq(st->errors[GW_FRAME_ERR_MALFORMED], 16);
	ck_assert_uint_eq(st->errors[GW_FRAME_ERR_CRC], 0);
	ck_assert_uint_eq(st->errors[GW_FRAME_OK], 0);
	ck_assert_uint_eq(st->resyncs, 19);
	ck_assert_uint_eq(st->frames, 3);
	gw_decoder_free(d);
	free(c);
}
END_TEST

START_TEST(test_field_limits)
{
	uint8_t wire[SGW_MAX_WIRE];
	struct capture *c = capture_new();
	struct gw_decoder *d = decoder_new();
	struct sgw_builder b;
	char key[3] = { 0 };
	int i;

	/* GW_FRAME_MAX_FIELDS fields are fine, one more is malformed. */
	for (int extra = 0; extra <= 1; extra++) {
		sgw_begin(&b, SGW_TYPE_TELEMETRY, 1, 1);
		for (i = 0; i < GW_FRAME_MAX_FIELDS + extra; i++) {
			key[0] = (char)('a' + i / 10);
			key[1] = (char)('0' + i % 10);
			sgw_put_bool(&b, key, true);
		}
		c->n = 0;
		feed(d, wire, finish(&b, wire), c);
		ck_assert_uint_eq(c->n, 1);
		ck_assert_int_eq(c->errs[0], extra ? GW_FRAME_ERR_MALFORMED : GW_FRAME_OK);
		if (!extra)
			ck_assert_uint_eq(c->frames[0].n_fields, GW_FRAME_MAX_FIELDS);
	}

	/* A duplicate key replaces the earlier value in place. */
	sgw_begin(&b, SGW_TYPE_TELEMETRY, 1, 1);
	sgw_put_i32(&b, "a", 1);
	sgw_put_i32(&b, "b", 2);
	sgw_put_str(&b, "a", "three");
	c->n = 0;
	feed(d, wire, finish(&b, wire), c);
	ck_assert_int_eq(c->errs[0], GW_FRAME_OK);
	ck_assert_uint_eq(c->frames[0].n_fields, 2);
	ck_assert_str_eq(c->frames[0].fields[0].key, "a");
	ck_assert_int_eq(c->frames[0].fields[0].value.type, GW_VALUE_STRING);
	ck_assert_str_eq(c->frames[0].fields[0].value.s, "three");

	/* f32 becomes the shortest decimal that reads back as the same float (0.1f is 0.1, not
	 * 0.100000001490116); negative i32 stays negative */
	sgw_begin(&b, SGW_TYPE_TELEMETRY, 1, 1);
	sgw_put_f32(&b, "t", 0.1f);
	sgw_put_i32(&b, "n", -40);
	sgw_put_f32(&b, "u", 23.9f);
	sgw_put_f32(&b, "v", 16777217.0f);
	sgw_put_f32(&b, "w", 1.17549435e-38f);
	c->n = 0;
	feed(d, wire, finish(&b, wire), c);
	ck_assert_double_eq(c->frames[0].fields[0].value.d, 0.1);
	ck_assert_int_eq(c->frames[0].fields[1].value.i, -40);
	ck_assert_double_eq(c->frames[0].fields[2].value.d, 23.9);
	ck_assert_double_eq(c->frames[0].fields[3].value.d, 16777216.0);
	ck_assert((float)c->frames[0].fields[4].value.d == 1.17549435e-38f);
	gw_decoder_free(d);
	free(c);
}
END_TEST

START_TEST(test_empty_packets_and_reset)
{
	uint8_t good[SGW_MAX_WIRE], junk[300];
	struct capture *c = capture_new();
	struct gw_decoder *d = decoder_new();
	const struct gw_frame_stats *st;
	struct sgw_builder b;
	size_t glen;

	sgw_begin(&b, SGW_TYPE_ACK, 1, 1);
	sgw_put_u16(&b, 0);
	glen = finish(&b, good);

	/* Runs of delimiters are silent. */
	feed(d, (const uint8_t *)"\0\0\0\0", 4, c);
	ck_assert_uint_eq(c->n, 0);

	/* Half a packet, then a reset: the rest of the stream starts clean. */
	feed(d, good, glen / 2, c);
	gw_decoder_reset(d);
	feed(d, good, glen, c);
	ck_assert_uint_eq(c->n, 1);
	ck_assert_int_eq(c->errs[0], GW_FRAME_OK);

	/* Without the reset the half packet spoils the next one. */
	feed(d, good, glen / 2, c);
	feed(d, good, glen, c);
	ck_assert_uint_eq(c->n, 2);
	ck_assert_int_ne(c->errs[1], GW_FRAME_OK);

	/* A reset in the middle of an oversize run ends the discard. */
	c->n = 0;
	memset(junk, 0x11, sizeof(junk));
	feed(d, junk, sizeof(junk), c);
	ck_assert_uint_eq(c->n, 1);
	gw_decoder_reset(d);
	feed(d, good, glen, c);
	ck_assert_uint_eq(c->n, 2);
	ck_assert_int_eq(c->errs[1], GW_FRAME_OK);

	st = gw_decoder_stats(d);
	ck_assert_uint_eq(st->frames, 2);
	ck_assert_uint_eq(st->resyncs, 2);
	gw_decoder_free(d);
	free(c);
}
END_TEST

START_TEST(test_strings)
{
	char hex[2 * GW_UID_SIZE + 1];

	memset(hex, 'z', sizeof(hex));
	gw_uid_to_hex(test_uid, hex);
	ck_assert_str_eq(hex, "300041000d51333837373930");
	ck_assert_str_eq(gw_frame_error_to_string(GW_FRAME_OK), "ok");
	ck_assert_str_eq(gw_frame_error_to_string(GW_FRAME_ERR_CRC), "crc");
	ck_assert_str_eq(gw_frame_error_to_string(GW_FRAME_ERR_OVERSIZE), "oversize");
	ck_assert_str_eq(gw_frame_error_to_string(GW_FRAME_ERR_UNKNOWN), "unknown");
	ck_assert_str_eq(gw_frame_error_to_string(GW_FRAME_ERR_MALFORMED), "malformed");
	ck_assert_str_eq(gw_frame_error_to_string(_GW_FRAME_ERR_MAX), "invalid");
	ck_assert_str_eq(gw_frame_type_to_string(GW_FRAME_HELLO), "hello");
	ck_assert_str_eq(gw_frame_type_to_string(GW_FRAME_TELEMETRY), "telemetry");
	ck_assert_str_eq(gw_frame_type_to_string(GW_FRAME_EVENT), "event");
	ck_assert_str_eq(gw_frame_type_to_string(GW_FRAME_COMMAND), "command");
	ck_assert_str_eq(gw_frame_type_to_string(GW_FRAME_COMMAND_REPLY), "command-reply");
	ck_assert_str_eq(gw_frame_type_to_string(GW_FRAME_ACK), "ack");
	ck_assert_str_eq(gw_frame_type_to_string((enum gw_frame_type)0), "invalid");
}
END_TEST

/* The worked examples of docs/protocol.md, decoded. */
START_TEST(test_doc_examples)
{
	static const uint8_t doc_hello_telemetry[] = {
		0x04, 0x01, 0x01, 0x03, 0x01, 0x02, 0x30, 0x02, 0x41, 0x09, 0x0d, 0x51,
		0x33, 0x38, 0x37, 0x37, 0x39, 0x30, 0x01, 0x01, 0x0a, 0x07, 0x05, 0x31,
		0x2e, 0x34, 0x2e, 0x32, 0x89, 0xd8, 0x00,
		0x04, 0x01, 0x02, 0x03, 0x07, 0x01, 0x03, 0x4d, 0x51, 0x32, 0x02, 0x01,
		0x01, 0x09, 0x1e, 0x05, 0x4d, 0x51, 0x31, 0x33, 0x35, 0x02, 0x01, 0x01,
		0x07, 0x5f, 0x03, 0x4d, 0x51, 0x34, 0x02, 0x01, 0x01, 0x07, 0x0c, 0x03,
		0x4d, 0x51, 0x37, 0x02, 0x01, 0x01, 0x0d, 0x08, 0x07, 0x44, 0x48, 0x54,
		0x31, 0x31, 0x5f, 0x54, 0x04, 0x41, 0x68, 0x01, 0x0a, 0x07, 0x44, 0x48,
		0x54, 0x31, 0x31, 0x5f, 0x48, 0x02, 0x01, 0x01, 0x04, 0x3d, 0xde, 0x2c,
		0x00,
	};
	static const char *const keys[] = { "MQ2", "MQ135", "MQ4", "MQ7", "DHT11_T", "DHT11_H" };
	static const double values[] = { 30, 95, 12, 8, 14.5, 61 };
	struct capture *c = capture_new();
	struct gw_decoder *d = decoder_new();
	const struct gw_frame *f;
	char hex[2 * GW_UID_SIZE + 1];
	size_t i;

	feed(d, doc_hello_telemetry, sizeof(doc_hello_telemetry), c);
	ck_assert_uint_eq(c->n, 2);
	ck_assert_int_eq(c->errs[0], GW_FRAME_OK);
	f = &c->frames[0];
	ck_assert_int_eq(f->type, GW_FRAME_HELLO);
	ck_assert_uint_eq(f->addr, 3);
	ck_assert_uint_eq(f->seq, 0);
	gw_uid_to_hex(f->uid, hex);
	ck_assert_str_eq(hex, "300041000d51333837373930");
	ck_assert_uint_eq(f->boot_counter, 7);
	ck_assert_str_eq(f->fw_version, "1.4.2");

	ck_assert_int_eq(c->errs[1], GW_FRAME_OK);
	f = &c->frames[1];
	ck_assert_int_eq(f->type, GW_FRAME_TELEMETRY);
	ck_assert_uint_eq(f->seq, 1);
	ck_assert_uint_eq(f->n_fields, 6);
	for (i = 0; i < 6; i++) {
		ck_assert_str_eq(f->fields[i].key, keys[i]);
		if (i == 4) {
			ck_assert_int_eq(f->fields[i].value.type, GW_VALUE_DOUBLE);
			ck_assert_double_eq(f->fields[i].value.d, values[i]);
		} else {
			ck_assert_int_eq(f->fields[i].value.type, GW_VALUE_INT);
			ck_assert(f->fields[i].value.i == (int64_t)values[i]);
		}
	}
	gw_decoder_free(d);
	free(c);
}
END_TEST

/* The definition gw_binary_widen_f32() must meet: the first of "%.6g" .. "%.9g" that reads
 * back as the same float, then strtod() of it. */
static double widen_reference(float f)
{
	char buf[32];

	for (int digits = 6; digits <= 9; digits++) {
		snprintf(buf, sizeof(buf), "%.*g", digits, (double)f);
		if (strtof(buf, NULL) == f)
			return strtod(buf, NULL);
	}
	return f;
}

static void check_widen(float f)
{
	double got = gw_binary_widen_f32(f), want = widen_reference(f);

	/* bit for bit: -0.0 stays negative */
	if (memcmp(&got, &want, sizeof(got)) != 0)
		ck_abort_msg("%a (%.9g): got %.17g, want %.17g", (double)f, (double)f, got, want);
}

START_TEST(test_widen_f32)
{
	static const float listed[] = { 0.0f, 23.9f, 21.5f, 0.1f, 1e-4f, 9.9999e-5f, 1e-5f,
					1e-3f, 0.3f, 1.0f / 3, 1e6f, 1234567.5f, 8388607.5f,
					8388608.0f, 16777215.0f, 16777216.0f, 33554432.0f, 1e9f,
					3.4028235e38f, 1.17549435e-38f, 1e-45f, 65535.99f };
	uint32_t state = 12345;
	int scale = test_scale();

	for (size_t i = 0; i < sizeof(listed) / sizeof(listed[0]); i++) {
		check_widen(listed[i]);
		check_widen(-listed[i]);
		check_widen(nextafterf(listed[i], 0));
		check_widen(nextafterf(listed[i], INFINITY));
	}
	/* readings as firmware computes them */
	for (int i = -300000; i <= 300000; i += scale) {
		check_widen((float)i / 10.0f);
		check_widen((float)i / 100.0f);
		check_widen(20.0f + (float)(i % 50) / 10.0f);
		check_widen((float)i * 0.0173f);
	}
	/* every float between 0.5 and 2 (positive floats are ordered as their bit patterns), and
	 * around every power of two and ten */
	for (uint32_t u = 0x3f000000u; u < 0x40000000u; u += (uint32_t)scale) {
		float f;

		memcpy(&f, &u, sizeof(f));
		check_widen(f);
	}
	for (int e = -30; e <= 30; e++) {
		float p2 = ldexpf(1.0f, e), p10 = powf(10.0f, (float)e / 3.0f);
		float a = p2, b = p10;

		for (int i = 0; i < 2000; i++) {
			check_widen(a);
			check_widen(b);
			a = nextafterf(a, 0);
			b = nextafterf(b, INFINITY);
		}
	}
	/* any bit pattern */
	for (int i = 0; i < 2000000 / scale; i++) {
		union {
			uint32_t u;
			float f;
		} x;

		state ^= state << 13;
		state ^= state >> 17;
		state ^= state << 5;
		x.u = state;
		if (isfinite(x.f))
			check_widen(x.f);
	}
	ck_assert(isnan(gw_binary_widen_f32(NAN)));
	ck_assert(isinf(gw_binary_widen_f32(-INFINITY)));
}
END_TEST

static Suite *frame_suite(void)
{
	Suite *s = suite_create("frame");
	TCase *tc;

	tc = tcase_create("stream");
	tcase_add_test(tc, test_every_type);
	tcase_add_test(tc, test_doc_examples);
	tcase_add_test(tc, test_every_split_point);
	tcase_add_test(tc, test_garbage_between_frames);
	tcase_add_test(tc, test_empty_packets_and_reset);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, test_bad_crc);
	tcase_add_test(tc, test_oversize);
	tcase_add_test(tc, test_malformed_and_unknown);
	tcase_add_test(tc, test_field_limits);
	suite_add_tcase(s, tc);

	tc = tcase_create("strings");
	tcase_add_test(tc, test_strings);
	suite_add_tcase(s, tc);

	tc = tcase_create("widen");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_widen_f32);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(frame_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
