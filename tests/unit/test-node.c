/* SPDX-License-Identifier: MIT */
/* Unit tests for the node library: CRC, COBS, builder, reader and the stream receiver. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sgw_node.h"

/* Deterministic xorshift32, so a failure reproduces. */
static uint32_t rng_state = 0x12345678u;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

/* Finishes b, then undoes the framing the way a receiver does; returns the sgw_packet_parse
 * result and leaves the wire bytes in wire (length *ret_wire_len). */
static int roundtrip(struct sgw_builder *b, uint8_t *wire, int *ret_wire_len, uint8_t *pkt,
		     struct sgw_packet *p)
{
	int n, m;

	n = sgw_finish(b, wire, SGW_MAX_WIRE);
	ck_assert_int_gt(n, 0);
	ck_assert_int_le(n, SGW_MAX_WIRE);
	ck_assert_uint_eq(wire[n - 1], 0);
	ck_assert_ptr_null(memchr(wire, 0, (size_t)n - 1));
	*ret_wire_len = n;
	m = sgw_cobs_decode(wire, (size_t)n - 1, pkt, SGW_MAX_PACKET);
	ck_assert_int_ge(m, 0);
	return sgw_packet_parse(pkt, (size_t)m, p);
}

/* ---- CRC ---- */

START_TEST(test_crc_vectors)
{
	const uint8_t *check = (const uint8_t *)"123456789";
	uint8_t all[256];
	int i;

	for (i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	ck_assert_uint_eq(sgw_crc16(check, 9), 0x29B1);
	ck_assert_uint_eq(sgw_crc16((const uint8_t *)"A", 1), 0xB915);
	ck_assert_uint_eq(sgw_crc16(check, 0), 0xFFFF);
	ck_assert_uint_eq(sgw_crc16(all, sizeof(all)), 0x3FBD);
	/* Incremental use gives the same result as one call. */
	ck_assert_uint_eq(sgw_crc16_update(sgw_crc16(check, 4), check + 4, 5), 0x29B1);
	/* The gateway's table-driven CRC against the bitwise definition firmware uses. */
	for (i = 0; i < 2000; i++) {
		uint8_t buf[64];
		uint16_t want = 0xFFFFu;
		size_t n = (size_t)(i % 64), k;
		int bit;

		for (k = 0; k < n; k++)
			buf[k] = (uint8_t)(i * 131 + k * 29 + (k * k) % 7);
		for (k = 0; k < n; k++) {
			want ^= (uint16_t)(buf[k] << 8);
			for (bit = 0; bit < 8; bit++)
				want = (uint16_t)(want & 0x8000u ? (unsigned)(want << 1) ^ 0x1021u :
						  (unsigned)(want << 1));
		}
		ck_assert_uint_eq(sgw_crc16(buf, n), want);
	}
}
END_TEST

/* ---- COBS ---- */

static void check_cobs(const uint8_t *in, size_t len, const uint8_t *exp, size_t exp_len)
{
	uint8_t enc[600], dec[600];
	int n;

	n = sgw_cobs_encode(in, len, enc, sizeof(enc));
	ck_assert_int_eq(n, (int)exp_len);
	ck_assert_mem_eq(enc, exp, exp_len);
	n = sgw_cobs_decode(enc, exp_len, dec, sizeof(dec));
	ck_assert_int_eq(n, (int)len);
	if (len > 0)
		ck_assert_mem_eq(dec, in, len);
}

START_TEST(test_cobs_vectors)
{
	static const uint8_t z1[] = { 0x00 }, z1e[] = { 0x01, 0x01 };
	static const uint8_t z2[] = { 0x00, 0x00 }, z2e[] = { 0x01, 0x01, 0x01 };
	static const uint8_t a[] = { 0x11, 0x22, 0x00, 0x33 };
	static const uint8_t ae[] = { 0x03, 0x11, 0x22, 0x02, 0x33 };
	static const uint8_t b[] = { 0x11, 0x22, 0x33, 0x44 };
	static const uint8_t be[] = { 0x05, 0x11, 0x22, 0x33, 0x44 };
	static const uint8_t c[] = { 0x11, 0x00, 0x00, 0x00 };
	static const uint8_t ce[] = { 0x02, 0x11, 0x01, 0x01, 0x01 };
	static const uint8_t empty_e[] = { 0x01 };
	uint8_t in[300], exp[300];
	int i;

	check_cobs(z1, 1, z1e, 2);
	check_cobs(z2, 2, z2e, 3);
	check_cobs(a, 4, ae, 5);
	check_cobs(b, 4, be, 5);
	check_cobs(c, 4, ce, 5);
	check_cobs(NULL, 0, empty_e, 1);

	/* 254 non-zero bytes: one full block, no trailing code byte. */
	for (i = 0; i < 254; i++)
		in[i] = (uint8_t)(i + 1);
	exp[0] = 0xFF;
	memcpy(exp + 1, in, 254);
	check_cobs(in, 254, exp, 255);

	/* 255 non-zero bytes: a full block, then a block of one. */
	in[254] = 0xFF;
	exp[255] = 0x02;
	exp[256] = 0xFF;
	check_cobs(in, 255, exp, 257);

	/* A zero then 254 non-zero bytes. */
	in[0] = 0x00;
	for (i = 1; i < 255; i++)
		in[i] = (uint8_t)i;
	exp[0] = 0x01;
	exp[1] = 0xFF;
	memcpy(exp + 2, in + 1, 254);
	check_cobs(in, 255, exp, 256);
}
END_TEST

START_TEST(test_cobs_roundtrip_random)
{
	uint8_t in[SGW_MAX_PACKET], enc[SGW_MAX_ENCODED], dec[SGW_MAX_PACKET];
	size_t len, i;
	int density, n;

	/* Every length, with no, few, many and only zero bytes. */
	for (density = 0; density < 4; density++) {
		for (len = 0; len <= SGW_MAX_PACKET; len++) {
			for (i = 0; i < len; i++) {
				uint32_t x = rng();

				switch (density) {
				case 0:
					in[i] = (uint8_t)(x % 255 + 1);
					break;
				case 1:
					in[i] = x % 50 == 0 ? 0 : (uint8_t)x;
					break;
				case 2:
					in[i] = x % 2 ? 0 : (uint8_t)(x >> 8);
					break;
				default:
					in[i] = 0;
					break;
				}
			}
			n = sgw_cobs_encode(in, len, enc, sizeof(enc));
			ck_assert_int_ge(n, (int)len + 1);
			ck_assert_int_le(n, SGW_MAX_ENCODED);
			ck_assert_ptr_null(memchr(enc, 0, (size_t)n));
			n = sgw_cobs_decode(enc, (size_t)n, dec, sizeof(dec));
			ck_assert_int_eq(n, (int)len);
			if (len > 0)
				ck_assert_mem_eq(dec, in, len);
		}
	}
}
END_TEST

START_TEST(test_cobs_invalid)
{
	static const uint8_t has_zero[] = { 0x03, 0x11, 0x00 };
	static const uint8_t zero_code[] = { 0x02, 0x11, 0x00, 0x01 };
	static const uint8_t past_end[] = { 0x03, 0x11 };
	static const uint8_t past_end2[] = { 0x02, 0x11, 0x05, 0x22 };
	static const uint8_t ok[] = { 0x03, 0x11, 0x22, 0x02, 0x33 };
	uint8_t out[16];

	ck_assert_int_eq(sgw_cobs_decode(has_zero, 3, out, sizeof(out)), SGW_E_COBS);
	ck_assert_int_eq(sgw_cobs_decode(zero_code, 4, out, sizeof(out)), SGW_E_COBS);
	ck_assert_int_eq(sgw_cobs_decode(past_end, 2, out, sizeof(out)), SGW_E_COBS);
	ck_assert_int_eq(sgw_cobs_decode(past_end2, 4, out, sizeof(out)), SGW_E_COBS);
	/* Capacity: 4 decoded bytes do not fit in 3, and encoding 4 bytes needs 5. */
	ck_assert_int_eq(sgw_cobs_decode(ok, 5, out, 3), SGW_E_SPACE);
	ck_assert_int_eq(sgw_cobs_decode(ok, 5, out, 4), 4);
	ck_assert_int_eq(sgw_cobs_encode(out, 4, out + 4, 4), SGW_E_SPACE);
	ck_assert_int_eq(sgw_cobs_encode(out, 4, out + 4, 5), 5);
	ck_assert_int_eq(sgw_cobs_encode(out, 0, out + 4, 0), SGW_E_SPACE);
}
END_TEST

/* ---- builder and reader ---- */

START_TEST(test_telemetry_all_types)
{
	static const char long_str[] =
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde";
	uint8_t wire[SGW_MAX_WIRE], pkt[SGW_MAX_PACKET];
	struct sgw_builder b;
	struct sgw_packet p;
	struct sgw_reader r;
	struct sgw_field f;
	int wire_len;

	ck_assert_uint_eq(strlen(long_str), SGW_MAX_STR);
	sgw_begin(&b, SGW_TYPE_TELEMETRY, 7, 0xBEEF);
	sgw_put_bool(&b, "on", true);
	sgw_put_bool(&b, "off", false);
	sgw_put_i32(&b, "i32min", INT32_MIN);
	sgw_put_i32(&b, "i32", 30);
	sgw_put_i64(&b, "i64max", INT64_MAX);
	sgw_put_i64(&b, "i64neg", -5);
	sgw_put_f32(&b, "f32", 21.5f);
	sgw_put_f64(&b, "f64", -3.141592653589793);
	sgw_put_str(&b, "empty", "");
	sgw_put_str(&b, "long.key_name-0123456789abcdefg", long_str);
	ck_assert_int_eq(b.err, SGW_OK);
	ck_assert_int_eq(roundtrip(&b, wire, &wire_len, pkt, &p), SGW_OK);
	ck_assert_uint_eq(p.version, 1);
	ck_assert_uint_eq(p.type, SGW_TYPE_TELEMETRY);
	ck_assert_uint_eq(p.addr, 7);
	ck_assert_uint_eq(p.seq, 0xBEEF);

	sgw_reader_init(&r, p.payload, p.payload_len);
	ck_assert_int_eq(sgw_get_field(&r, &f), 1);
	ck_assert_uint_eq(f.key_len, 2);
	ck_assert_mem_eq(f.key, "on", 2);
	ck_assert_uint_eq(f.vtype, SGW_VT_BOOL);
	ck_assert(f.v.b);
	ck_assert_int_eq(sgw_get_field(&r, &f), 1);
	ck_assert(!f.v.b);
	ck_assert_int_eq(sgw_get_field(&r, &f), 1);
	ck_assert_uint_eq(f.vtype, SGW_VT_I32);
	ck_assert_int_eq(f.v.i32, INT32_MIN);
	ck_assert_int_eq(sgw_get_field(&r, &f), 1);
	ck_assert_int_eq(f.v.i32, 30);
	ck_assert_int_eq(sgw_get_field(&r, &f), 1);
	ck_assert_uint_eq(f.vtype, SGW_VT_I64);
	ck_assert(f.v.i64 == INT64_MAX);
	ck_assert_int_eq(sgw_get_field(&r, &f), 1);
	ck_assert(f.v.i64 == -5);
	ck_assert_int_eq(sgw_get_field(&r, &f), 1);
	ck_assert_uint_eq(f.vtype, SGW_VT_F32);
	ck_assert(f.v.f32 == 21.5f);
	ck_assert_int_eq(sgw_get_field(&r, &f), 1);
	ck_assert_uint_eq(f.vtype, SGW_VT_F64);
	ck_assert(f.v.f64 == -3.141592653589793);
	ck_assert_int_eq(sgw_get_field(&r, &f), 1);
	ck_assert_uint_eq(f.vtype, SGW_VT_STR);
	ck_assert_uint_eq(f.v.str.len, 0);
	ck_assert_int_eq(sgw_get_field(&r, &f), 1);
	ck_assert_uint_eq(f.key_len, SGW_MAX_KEY);
	ck_assert_uint_eq(f.v.str.len, SGW_MAX_STR);
	ck_assert_mem_eq(f.v.str.s, long_str, SGW_MAX_STR);
	ck_assert_int_eq(sgw_get_field(&r, &f), 0);
	ck_assert_int_eq(r.err, SGW_OK);
}
END_TEST

START_TEST(test_float_big_endian)
{
	/* 1.0f is 0x3F800000 and 1.0 is 0x3FF0000000000000, sent big-endian. */
	static const uint8_t exp[] = { 1, 'a', SGW_VT_F32, 0x3F, 0x80, 0, 0,
				       1, 'b', SGW_VT_F64, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0 };
	struct sgw_builder b;

	sgw_begin(&b, SGW_TYPE_TELEMETRY, 1, 2);
	sgw_put_f32(&b, "a", 1.0f);
	sgw_put_f64(&b, "b", 1.0);
	ck_assert_uint_eq(b.len, SGW_HEADER_SIZE + sizeof(exp));
	ck_assert_mem_eq(b.buf + SGW_HEADER_SIZE, exp, sizeof(exp));
	ck_assert_uint_eq(b.buf[0], 1);
	ck_assert_uint_eq(b.buf[1], 2);
	ck_assert_uint_eq(b.buf[2], 1);
	ck_assert_uint_eq(b.buf[3], 0);
	ck_assert_uint_eq(b.buf[4], 2);
}
END_TEST

START_TEST(test_every_packet_type)
{
	static const uint8_t uid[SGW_UID_SIZE] = { 0x30, 0x00, 0x41, 0x00, 0x0d, 0x51,
						   0x33, 0x38, 0x37, 0x37, 0x39, 0x30 };
	uint8_t wire[SGW_MAX_WIRE], wire2[SGW_MAX_WIRE], pkt[SGW_MAX_PACKET];
	struct sgw_builder b;
	struct sgw_packet p;
	struct sgw_reader r;
	struct sgw_field f;
	const char *s;
	size_t len;
	uint16_t id;
	uint8_t kind;
	int n, i;

	/* hello */
	n = sgw_encode_hello(3, 0, uid, 42, "1.4.2", wire, sizeof(wire));
	ck_assert_int_gt(n, 0);
	n = sgw_cobs_decode(wire, (size_t)n - 1, pkt, sizeof(pkt));
	ck_assert_int_eq(n, 5 + 12 + 4 + 6 + 2);
	ck_assert_int_eq(sgw_packet_parse(pkt, 29, &p), SGW_OK);
	ck_assert_uint_eq(p.type, SGW_TYPE_HELLO);
	sgw_reader_init(&r, p.payload, p.payload_len);
	for (i = 0; i < SGW_UID_SIZE; i++)
		ck_assert_uint_eq(sgw_get_u8(&r), uid[i]);
	ck_assert_uint_eq(sgw_get_u32(&r), 42);
	sgw_get_str8(&r, &s, &len, SGW_MAX_NAME);
	ck_assert_uint_eq(len, 5);
	ck_assert_mem_eq(s, "1.4.2", 5);
	ck_assert_uint_eq(r.off, r.len);
	ck_assert_int_eq(r.err, SGW_OK);

	/* event */
	sgw_begin(&b, SGW_TYPE_EVENT, 3, 1);
	sgw_put_str8(&b, "smoke_alarm", SGW_MAX_NAME);
	sgw_put_i32(&b, "MQ2", 900);
	ck_assert_int_eq(roundtrip(&b, wire, &n, pkt, &p), SGW_OK);
	ck_assert_uint_eq(p.type, SGW_TYPE_EVENT);
	sgw_reader_init(&r, p.payload, p.payload_len);
	sgw_get_str8(&r, &s, &len, SGW_MAX_NAME);
	ck_assert_mem_eq(s, "smoke_alarm", 11);
	ck_assert_int_eq(sgw_get_field(&r, &f), 1);
	ck_assert_int_eq(f.v.i32, 900);
	ck_assert_int_eq(sgw_get_field(&r, &f), 0);

	/* command, read with sgw_read_command as a node does */
	sgw_begin(&b, SGW_TYPE_COMMAND, 3, 65535);
	sgw_put_u16(&b, 0x1234);
	sgw_put_u8(&b, SGW_CMD_SERVICE);
	sgw_put_str8(&b, "read_now", SGW_MAX_NAME);
	sgw_put_bool(&b, "fast", true);
	ck_assert_int_eq(roundtrip(&b, wire, &n, pkt, &p), SGW_OK);
	ck_assert_uint_eq(p.type, SGW_TYPE_COMMAND);
	ck_assert_uint_eq(p.seq, 65535);
	sgw_reader_init(&r, p.payload, p.payload_len);
	ck_assert_int_eq(sgw_read_command(&r, &id, &kind, &s, &len), SGW_OK);
	ck_assert_uint_eq(id, 0x1234);
	ck_assert_uint_eq(kind, SGW_CMD_SERVICE);
	ck_assert_uint_eq(len, 8);
	ck_assert_mem_eq(s, "read_now", 8);
	ck_assert_int_eq(sgw_get_field(&r, &f), 1);
	ck_assert(f.v.b);
	ck_assert_int_eq(sgw_get_field(&r, &f), 0);

	/* command-reply */
	sgw_begin(&b, SGW_TYPE_COMMAND_REPLY, 3, 2);
	sgw_put_u16(&b, 0x1234);
	sgw_put_u16(&b, 200);
	sgw_put_i32(&b, "period", 10);
	ck_assert_int_eq(roundtrip(&b, wire, &n, pkt, &p), SGW_OK);
	sgw_reader_init(&r, p.payload, p.payload_len);
	ck_assert_uint_eq(sgw_get_u16(&r), 0x1234);
	ck_assert_uint_eq(sgw_get_u16(&r), 200);
	ck_assert_int_eq(sgw_get_field(&r, &f), 1);
	ck_assert_int_eq(f.v.i32, 10);

	/* ack; finishing twice gives the same bytes */
	sgw_begin(&b, SGW_TYPE_ACK, 0, 9);
	sgw_put_u16(&b, 8);
	ck_assert_int_eq(roundtrip(&b, wire, &n, pkt, &p), SGW_OK);
	ck_assert_int_eq(sgw_finish(&b, wire2, sizeof(wire2)), n);
	ck_assert_mem_eq(wire, wire2, (size_t)n);
	ck_assert_uint_eq(p.payload_len, 2);
	ck_assert_uint_eq(p.payload[0], 0);
	ck_assert_uint_eq(p.payload[1], 8);

	/* an unknown packet type is refused when building */
	sgw_begin(&b, (enum sgw_type)9, 0, 0);
	ck_assert_int_eq(sgw_finish(&b, wire, sizeof(wire)), SGW_E_TYPE);
}
END_TEST

START_TEST(test_builder_limits)
{
	uint8_t wire[SGW_MAX_WIRE], pkt[SGW_MAX_PACKET];
	struct sgw_builder b;
	struct sgw_packet p;
	size_t len_before;
	int n;

	sgw_begin(&b, SGW_TYPE_TELEMETRY, 1, 1);
	sgw_put_i32(&b, "k0123456789abcdef0123456789abcde", 1); /* 32 bytes */
	ck_assert_int_eq(b.err, SGW_E_ARG);
	ck_assert_int_eq(sgw_finish(&b, wire, sizeof(wire)), SGW_E_ARG);

	sgw_begin(&b, SGW_TYPE_TELEMETRY, 1, 1);
	sgw_put_i32(&b, "", 1);
	ck_assert_int_eq(b.err, SGW_E_ARG);
	sgw_begin(&b, SGW_TYPE_TELEMETRY, 1, 1);
	sgw_put_i32(&b, "a b", 1);
	ck_assert_int_eq(b.err, SGW_E_ARG);
	sgw_begin(&b, SGW_TYPE_TELEMETRY, 1, 1);
	sgw_put_i32(&b, NULL, 1);
	ck_assert_int_eq(b.err, SGW_E_ARG);
	sgw_begin(&b, SGW_TYPE_TELEMETRY, 1, 1);
	sgw_put_str(&b, "s", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	ck_assert_int_eq(b.err, SGW_E_ARG);
	sgw_begin(&b, SGW_TYPE_TELEMETRY, 1, 1);
	sgw_put_str(&b, "s", "tab\there");
	ck_assert_int_eq(b.err, SGW_E_ARG);
	sgw_begin(&b, SGW_TYPE_EVENT, 1, 1);
	sgw_put_str8(&b, "this-event-name-is-longer-than-31", SGW_MAX_NAME);
	ck_assert_int_eq(b.err, SGW_E_ARG);

	/* Fill the payload exactly: 40 items of 6 bytes (a bool field of 4, two raw bytes). */
	sgw_begin(&b, SGW_TYPE_TELEMETRY, 254, 1);
	for (n = 0; n < 40; n++) {
		char key[2] = { (char)('A' + n % 26), 0 };

		sgw_put_bool(&b, key, n & 1);
		sgw_put_u8(&b, 0xAA); /* raw padding keeps each item at 6 bytes */
		sgw_put_u8(&b, 0x00);
	}
	ck_assert_int_eq(b.err, SGW_OK);
	ck_assert_uint_eq(b.len, SGW_HEADER_SIZE + SGW_MAX_PAYLOAD);
	n = sgw_finish(&b, wire, sizeof(wire));
	ck_assert_int_gt(n, 0);
	ck_assert_int_le(n, SGW_MAX_WIRE);
	ck_assert_int_eq(sgw_finish(&b, wire, (size_t)n - 1), SGW_E_SPACE);
	ck_assert_int_eq(sgw_cobs_decode(wire, (size_t)n - 1, pkt, sizeof(pkt)), SGW_MAX_PACKET);
	ck_assert_int_eq(sgw_packet_parse(pkt, SGW_MAX_PACKET, &p), SGW_OK);
	ck_assert_uint_eq(p.payload_len, SGW_MAX_PAYLOAD);

	/* One more byte overflows; the error is sticky and nothing partial is written. */
	sgw_put_u8(&b, 1);
	ck_assert_int_eq(b.err, SGW_E_SPACE);
	ck_assert_uint_eq(b.len, SGW_HEADER_SIZE + SGW_MAX_PAYLOAD);
	sgw_begin(&b, SGW_TYPE_TELEMETRY, 1, 1);
	for (n = 0; n < 40; n++)
		sgw_put_f64(&b, "value", 1.0);
	ck_assert_int_eq(b.err, SGW_E_SPACE);
	len_before = b.len;
	ck_assert_uint_eq((len_before - SGW_HEADER_SIZE) % 15, 0);
	sgw_put_u8(&b, 1);
	sgw_put_bool(&b, "x", true);
	ck_assert_uint_eq(b.len, len_before);
	ck_assert_int_eq(b.err, SGW_E_SPACE);
	ck_assert_int_eq(sgw_finish(&b, wire, sizeof(wire)), SGW_E_SPACE);
}
END_TEST

START_TEST(test_reader_errors)
{
	static const uint8_t trunc_i32[] = { 1, 'a', SGW_VT_I32, 0, 0, 1 };
	static const uint8_t bad_vtype[] = { 1, 'a', 0x07, 0 };
	static const uint8_t bad_bool[] = { 1, 'a', SGW_VT_BOOL, 2 };
	static const uint8_t bad_key[] = { 2, 'a', '/', SGW_VT_BOOL, 1 };
	static const uint8_t empty_key[] = { 0, SGW_VT_BOOL, 1 };
	static const uint8_t long_key[] = { 32, 'a' };
	static const uint8_t ctl_str[] = { 1, 's', SGW_VT_STR, 2, 'a', 0x07 };
	static const uint8_t trunc_str[] = { 1, 's', SGW_VT_STR, 5, 'a' };
	struct sgw_reader r;
	struct sgw_field f;

	sgw_reader_init(&r, trunc_i32, sizeof(trunc_i32));
	ck_assert_int_eq(sgw_get_field(&r, &f), SGW_E_SHORT);
	/* sticky: later reads fail too and return 0 */
	ck_assert_int_eq(sgw_get_field(&r, &f), SGW_E_SHORT);
	ck_assert_uint_eq(sgw_get_u8(&r), 0);

	sgw_reader_init(&r, bad_vtype, sizeof(bad_vtype));
	ck_assert_int_eq(sgw_get_field(&r, &f), SGW_E_TYPE);
	sgw_reader_init(&r, bad_bool, sizeof(bad_bool));
	ck_assert_int_eq(sgw_get_field(&r, &f), SGW_E_ARG);
	sgw_reader_init(&r, bad_key, sizeof(bad_key));
	ck_assert_int_eq(sgw_get_field(&r, &f), SGW_E_ARG);
	sgw_reader_init(&r, empty_key, sizeof(empty_key));
	ck_assert_int_eq(sgw_get_field(&r, &f), SGW_E_ARG);
	sgw_reader_init(&r, long_key, sizeof(long_key));
	ck_assert_int_eq(sgw_get_field(&r, &f), SGW_E_ARG);
	sgw_reader_init(&r, ctl_str, sizeof(ctl_str));
	ck_assert_int_eq(sgw_get_field(&r, &f), SGW_E_ARG);
	sgw_reader_init(&r, trunc_str, sizeof(trunc_str));
	ck_assert_int_eq(sgw_get_field(&r, &f), SGW_E_SHORT);
	sgw_reader_init(&r, NULL, 0);
	ck_assert_int_eq(sgw_get_field(&r, &f), 0);
	ck_assert_uint_eq(sgw_get_u16(&r), 0);
	ck_assert_int_eq(r.err, SGW_E_SHORT);
}
END_TEST

START_TEST(test_packet_parse_errors)
{
	uint8_t wire[SGW_MAX_WIRE], pkt[SGW_MAX_PACKET + 1];
	struct sgw_builder b;
	struct sgw_packet p;
	uint16_t crc;
	int n;

	sgw_begin(&b, SGW_TYPE_ACK, 5, 5);
	sgw_put_u16(&b, 4);
	ck_assert_int_eq(roundtrip(&b, wire, &n, pkt, &p), SGW_OK);
	ck_assert_int_eq(sgw_packet_parse(pkt, 6, &p), SGW_E_SHORT);
	pkt[6] ^= 0x01;
	ck_assert_int_eq(sgw_packet_parse(pkt, 9, &p), SGW_E_CRC);
	pkt[6] ^= 0x01;
	/* version 2 with a correct CRC */
	pkt[0] = 2;
	crc = sgw_crc16(pkt, 7);
	pkt[7] = (uint8_t)(crc >> 8);
	pkt[8] = (uint8_t)crc;
	ck_assert_int_eq(sgw_packet_parse(pkt, 9, &p), SGW_E_VERSION);
	ck_assert_int_eq(sgw_packet_parse(pkt, SGW_MAX_PACKET + 1, &p), SGW_E_SPACE);
}
END_TEST

/* ---- stream receiver ---- */

static int feed(struct sgw_rx *rx, const uint8_t *buf, size_t len, struct sgw_packet *p,
		int *ret_last_err)
{
	int packets = 0, r;
	size_t i;

	for (i = 0; i < len; i++) {
		r = sgw_rx_byte(rx, buf[i], p);
		if (r == 1)
			packets++;
		else if (r < 0)
			*ret_last_err = r;
	}
	return packets;
}

START_TEST(test_rx_stream)
{
	uint8_t wire[SGW_MAX_WIRE], junk[400];
	struct sgw_builder b;
	struct sgw_packet p;
	struct sgw_rx rx;
	int n, err = 0, i;
	uint8_t saved;

	sgw_rx_init(&rx);
	sgw_begin(&b, SGW_TYPE_COMMAND, 3, 77);
	sgw_put_u16(&b, 1);
	sgw_put_u8(&b, SGW_CMD_CONTROL);
	sgw_put_str8(&b, "identify", SGW_MAX_NAME);
	n = sgw_finish(&b, wire, sizeof(wire));
	ck_assert_int_gt(n, 0);

	/* a clean packet, then an empty one (ignored) */
	ck_assert_int_eq(feed(&rx, wire, (size_t)n, &p, &err), 1);
	ck_assert_uint_eq(p.seq, 77);
	ck_assert_uint_eq(p.type, SGW_TYPE_COMMAND);
	ck_assert_int_eq(sgw_rx_byte(&rx, 0, &p), 0);

	/* garbage with a delimiter: one error, then the packet again */
	for (i = 0; i < 20; i++)
		junk[i] = (uint8_t)(rng() % 255 + 1);
	junk[20] = 0;
	err = 0;
	ck_assert_int_eq(feed(&rx, junk, 21, &p, &err), 0);
	ck_assert_int_lt(err, 0);
	ck_assert_int_eq(feed(&rx, wire, (size_t)n, &p, &err), 1);

	/* a packet with one corrupted byte: CRC (or COBS) error, then resync */
	saved = wire[3];
	wire[3] = saved == 0x01 ? 0x02 : 0x01;
	err = 0;
	ck_assert_int_eq(feed(&rx, wire, (size_t)n, &p, &err), 0);
	ck_assert_int_lt(err, 0);
	wire[3] = saved;

	/* more than SGW_MAX_ENCODED bytes without a delimiter */
	for (i = 0; i < 400; i++)
		junk[i] = 0x55;
	ck_assert_int_eq(feed(&rx, junk, 400, &p, &err), 0);
	ck_assert_int_eq(sgw_rx_byte(&rx, 0, &p), SGW_E_SPACE);
	n = sgw_finish(&b, wire, sizeof(wire));
	ck_assert_int_eq(feed(&rx, wire, (size_t)n, &p, &err), 1);
	ck_assert_uint_eq(p.addr, 3);

	/* garbage without a delimiter glued to a packet costs that packet, not the next */
	err = 0;
	ck_assert_int_eq(feed(&rx, junk, 10, &p, &err), 0);
	ck_assert_int_eq(feed(&rx, wire, (size_t)n, &p, &err), 0);
	ck_assert_int_lt(err, 0);
	ck_assert_int_eq(feed(&rx, wire, (size_t)n, &p, &err), 1);
}
END_TEST

/* ---- the worked examples in docs/protocol.md, byte for byte ---- */

static const uint8_t doc_uid[SGW_UID_SIZE] = { 0x30, 0x00, 0x41, 0x00, 0x0d, 0x51,
					       0x33, 0x38, 0x37, 0x37, 0x39, 0x30 };

static const uint8_t doc_hello[] = {
	0x04, 0x01, 0x01, 0x03, 0x01, 0x02, 0x30, 0x02, 0x41, 0x09, 0x0d, 0x51,
	0x33, 0x38, 0x37, 0x37, 0x39, 0x30, 0x01, 0x01, 0x0a, 0x07, 0x05, 0x31,
	0x2e, 0x34, 0x2e, 0x32, 0x89, 0xd8, 0x00,
};

static const uint8_t doc_telemetry[] = {
	0x04, 0x01, 0x02, 0x03, 0x07, 0x01, 0x03, 0x4d, 0x51, 0x32, 0x02, 0x01,
	0x01, 0x09, 0x1e, 0x05, 0x4d, 0x51, 0x31, 0x33, 0x35, 0x02, 0x01, 0x01,
	0x07, 0x5f, 0x03, 0x4d, 0x51, 0x34, 0x02, 0x01, 0x01, 0x07, 0x0c, 0x03,
	0x4d, 0x51, 0x37, 0x02, 0x01, 0x01, 0x0d, 0x08, 0x07, 0x44, 0x48, 0x54,
	0x31, 0x31, 0x5f, 0x54, 0x04, 0x41, 0x68, 0x01, 0x0a, 0x07, 0x44, 0x48,
	0x54, 0x31, 0x31, 0x5f, 0x48, 0x02, 0x01, 0x01, 0x04, 0x3d, 0xde, 0x2c,
	0x00,
};

static const uint8_t doc_command[] = {
	0x05, 0x01, 0x04, 0x03, 0x01, 0x01, 0x03, 0x11, 0x01, 0x09, 0x06, 0x70,
	0x65, 0x72, 0x69, 0x6f, 0x64, 0x02, 0x01, 0x01, 0x04, 0x0a, 0x28, 0x80,
	0x00,
};

static const uint8_t doc_reply[] = {
	0x04, 0x01, 0x05, 0x03, 0x02, 0x02, 0x02, 0x11, 0x0a, 0xc8, 0x06, 0x70,
	0x65, 0x72, 0x69, 0x6f, 0x64, 0x02, 0x01, 0x01, 0x0d, 0x0a, 0x06, 0x68,
	0x65, 0x61, 0x74, 0x65, 0x72, 0x01, 0x01, 0x77, 0x06, 0x00,
};

START_TEST(test_doc_examples)
{
	uint8_t wire[SGW_MAX_WIRE];
	struct sgw_builder b;
	int n;

	n = sgw_encode_hello(3, 0, doc_uid, 7, "1.4.2", wire, sizeof(wire));
	ck_assert_int_eq(n, (int)sizeof(doc_hello));
	ck_assert_mem_eq(wire, doc_hello, sizeof(doc_hello));

	sgw_begin(&b, SGW_TYPE_TELEMETRY, 3, 1);
	sgw_put_i32(&b, "MQ2", 30);
	sgw_put_i32(&b, "MQ135", 95);
	sgw_put_i32(&b, "MQ4", 12);
	sgw_put_i32(&b, "MQ7", 8);
	sgw_put_f32(&b, "DHT11_T", 14.5f);
	sgw_put_i32(&b, "DHT11_H", 61);
	n = sgw_finish(&b, wire, sizeof(wire));
	ck_assert_int_eq(n, (int)sizeof(doc_telemetry));
	ck_assert_mem_eq(wire, doc_telemetry, sizeof(doc_telemetry));
	/* the CRC printed in the document, over the 69 raw bytes */
	ck_assert_uint_eq(b.len, 69);
	ck_assert_uint_eq(sgw_crc16(b.buf, b.len), 0xDE2C);

	sgw_begin(&b, SGW_TYPE_COMMAND, 3, 0x0100);
	sgw_put_u16(&b, 17);
	sgw_put_u8(&b, SGW_CMD_PROPERTY_SET);
	sgw_put_str8(&b, "", SGW_MAX_NAME);
	sgw_put_i32(&b, "period", 10);
	n = sgw_finish(&b, wire, sizeof(wire));
	ck_assert_int_eq(n, (int)sizeof(doc_command));
	ck_assert_mem_eq(wire, doc_command, sizeof(doc_command));

	sgw_begin(&b, SGW_TYPE_COMMAND_REPLY, 3, 2);
	sgw_put_u16(&b, 17);
	sgw_put_u16(&b, 200);
	sgw_put_i32(&b, "period", 10);
	sgw_put_bool(&b, "heater", true);
	n = sgw_finish(&b, wire, sizeof(wire));
	ck_assert_int_eq(n, (int)sizeof(doc_reply));
	ck_assert_mem_eq(wire, doc_reply, sizeof(doc_reply));
}
END_TEST

static Suite *node_suite(void)
{
	Suite *s = suite_create("node");
	TCase *tc;

	tc = tcase_create("crc");
	tcase_add_test(tc, test_crc_vectors);
	suite_add_tcase(s, tc);

	tc = tcase_create("cobs");
	tcase_add_test(tc, test_cobs_vectors);
	tcase_add_test(tc, test_cobs_roundtrip_random);
	tcase_add_test(tc, test_cobs_invalid);
	suite_add_tcase(s, tc);

	tc = tcase_create("packet");
	tcase_add_test(tc, test_telemetry_all_types);
	tcase_add_test(tc, test_float_big_endian);
	tcase_add_test(tc, test_every_packet_type);
	tcase_add_test(tc, test_builder_limits);
	tcase_add_test(tc, test_reader_errors);
	tcase_add_test(tc, test_packet_parse_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("docs");
	tcase_add_test(tc, test_doc_examples);
	suite_add_tcase(s, tc);

	tc = tcase_create("rx");
	tcase_add_test(tc, test_rx_stream);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(node_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
