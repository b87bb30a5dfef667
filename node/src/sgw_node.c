/* SPDX-License-Identifier: MIT */
/*
 * sgw_node: encoder, decoder and stream receiver for the sensorgw frame protocol v1.
 *
 * Freestanding C99: this file calls no library function at all, so it links into firmware
 * built with -nostdlib. The few byte loops below are written out by hand for that reason.
 */
#include "sgw_node.h"

#include <limits.h>

/* The largest value b->len may reach before the CRC is appended. */
#define BUILDER_LIMIT (SGW_HEADER_SIZE + SGW_MAX_PAYLOAD)

static const char empty_str[1] = { 0 };

/* ---- small helpers ---- */

static bool is_printable(uint8_t c)
{
	return c >= 0x20 && c <= 0x7e;
}

static bool is_key_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

/* Length of s, but stops counting at max + 1 so that an unterminated buffer is never overrun
 * further than needed to know it is too long. NULL counts as the empty string. */
static size_t bounded_len(const char *s, size_t max)
{
	size_t n = 0;

	if (!s)
		return 0;
	while (n <= max && s[n] != '\0')
		n++;
	return n;
}

static bool key_ok(const char *key, size_t len)
{
	size_t i;

	if (len < 1 || len > SGW_MAX_KEY)
		return false;
	for (i = 0; i < len; i++)
		if (!is_key_char((uint8_t)key[i]))
			return false;
	return true;
}

static bool str_ok(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!is_printable((uint8_t)s[i]))
			return false;
	return true;
}

static uint32_t f32_bits(float v)
{
	union {
		float f;
		uint32_t u;
	} x;

	x.f = v;
	return x.u;
}

static float f32_from_bits(uint32_t u)
{
	union {
		float f;
		uint32_t u;
	} x;

	x.u = u;
	return x.f;
}

static uint64_t f64_bits(double v)
{
	union {
		double d;
		uint64_t u;
	} x;

	x.d = v;
	return x.u;
}

static double f64_from_bits(uint64_t u)
{
	union {
		double d;
		uint64_t u;
	} x;

	x.u = u;
	return x.d;
}

/* ---- CRC-16/CCITT-FALSE ---- */

#ifdef SGW_CRC16_TABLE
/*
 * The gateway builds the library with SGW_CRC16_TABLE: there 512 bytes of table cost nothing,
 * and the bitwise loop was an eighth of the instructions per binary frame. Same CRC.
 */
static const uint16_t crc16_table[256] = {
	0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7,
	0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef,
	0x1231, 0x0210, 0x3273, 0x2252, 0x52b5, 0x4294, 0x72f7, 0x62d6,
	0x9339, 0x8318, 0xb37b, 0xa35a, 0xd3bd, 0xc39c, 0xf3ff, 0xe3de,
	0x2462, 0x3443, 0x0420, 0x1401, 0x64e6, 0x74c7, 0x44a4, 0x5485,
	0xa56a, 0xb54b, 0x8528, 0x9509, 0xe5ee, 0xf5cf, 0xc5ac, 0xd58d,
	0x3653, 0x2672, 0x1611, 0x0630, 0x76d7, 0x66f6, 0x5695, 0x46b4,
	0xb75b, 0xa77a, 0x9719, 0x8738, 0xf7df, 0xe7fe, 0xd79d, 0xc7bc,
	0x48c4, 0x58e5, 0x6886, 0x78a7, 0x0840, 0x1861, 0x2802, 0x3823,
	0xc9cc, 0xd9ed, 0xe98e, 0xf9af, 0x8948, 0x9969, 0xa90a, 0xb92b,
	0x5af5, 0x4ad4, 0x7ab7, 0x6a96, 0x1a71, 0x0a50, 0x3a33, 0x2a12,
	0xdbfd, 0xcbdc, 0xfbbf, 0xeb9e, 0x9b79, 0x8b58, 0xbb3b, 0xab1a,
	0x6ca6, 0x7c87, 0x4ce4, 0x5cc5, 0x2c22, 0x3c03, 0x0c60, 0x1c41,
	0xedae, 0xfd8f, 0xcdec, 0xddcd, 0xad2a, 0xbd0b, 0x8d68, 0x9d49,
	0x7e97, 0x6eb6, 0x5ed5, 0x4ef4, 0x3e13, 0x2e32, 0x1e51, 0x0e70,
	0xff9f, 0xefbe, 0xdfdd, 0xcffc, 0xbf1b, 0xaf3a, 0x9f59, 0x8f78,
	0x9188, 0x81a9, 0xb1ca, 0xa1eb, 0xd10c, 0xc12d, 0xf14e, 0xe16f,
	0x1080, 0x00a1, 0x30c2, 0x20e3, 0x5004, 0x4025, 0x7046, 0x6067,
	0x83b9, 0x9398, 0xa3fb, 0xb3da, 0xc33d, 0xd31c, 0xe37f, 0xf35e,
	0x02b1, 0x1290, 0x22f3, 0x32d2, 0x4235, 0x5214, 0x6277, 0x7256,
	0xb5ea, 0xa5cb, 0x95a8, 0x8589, 0xf56e, 0xe54f, 0xd52c, 0xc50d,
	0x34e2, 0x24c3, 0x14a0, 0x0481, 0x7466, 0x6447, 0x5424, 0x4405,
	0xa7db, 0xb7fa, 0x8799, 0x97b8, 0xe75f, 0xf77e, 0xc71d, 0xd73c,
	0x26d3, 0x36f2, 0x0691, 0x16b0, 0x6657, 0x7676, 0x4615, 0x5634,
	0xd94c, 0xc96d, 0xf90e, 0xe92f, 0x99c8, 0x89e9, 0xb98a, 0xa9ab,
	0x5844, 0x4865, 0x7806, 0x6827, 0x18c0, 0x08e1, 0x3882, 0x28a3,
	0xcb7d, 0xdb5c, 0xeb3f, 0xfb1e, 0x8bf9, 0x9bd8, 0xabbb, 0xbb9a,
	0x4a75, 0x5a54, 0x6a37, 0x7a16, 0x0af1, 0x1ad0, 0x2ab3, 0x3a92,
	0xfd2e, 0xed0f, 0xdd6c, 0xcd4d, 0xbdaa, 0xad8b, 0x9de8, 0x8dc9,
	0x7c26, 0x6c07, 0x5c64, 0x4c45, 0x3ca2, 0x2c83, 0x1ce0, 0x0cc1,
	0xef1f, 0xff3e, 0xcf5d, 0xdf7c, 0xaf9b, 0xbfba, 0x8fd9, 0x9ff8,
	0x6e17, 0x7e36, 0x4e55, 0x5e74, 0x2e93, 0x3eb2, 0x0ed1, 0x1ef0,
};

uint16_t sgw_crc16_update(uint16_t crc, const uint8_t *data, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		crc = (uint16_t)((crc << 8) ^ crc16_table[((crc >> 8) ^ data[i]) & 0xffu]);
	return crc;
}
#else
uint16_t sgw_crc16_update(uint16_t crc, const uint8_t *data, size_t len)
{
	size_t i;
	int bit;

	/* Bitwise rather than table driven: 512 bytes of flash matter more than a few cycles. */
	for (i = 0; i < len; i++) {
		crc ^= (uint16_t)((uint16_t)data[i] << 8);
		for (bit = 0; bit < 8; bit++) {
			if (crc & 0x8000u)
				crc = (uint16_t)((crc << 1) ^ 0x1021u);
			else
				crc = (uint16_t)(crc << 1);
		}
	}
	return crc;
}
#endif

uint16_t sgw_crc16(const uint8_t *data, size_t len)
{
	return sgw_crc16_update(0xFFFFu, data, len);
}

/* ---- COBS ---- */

int sgw_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t code_pos = 0, o = 1, i;
	uint8_t code = 1;

	if (cap < 1)
		return SGW_E_SPACE;
	for (i = 0; i < len; i++) {
		if (in[i] == 0) {
			out[code_pos] = code;
			if (o >= cap)
				return SGW_E_SPACE;
			code_pos = o++;
			code = 1;
			continue;
		}
		if (o >= cap)
			return SGW_E_SPACE;
		out[o++] = in[i];
		code++;
		/* A full block carries no implied zero. Open the next block only when more input
		 * follows, so 254 non-zero bytes encode as FF + data with no trailing 01. */
		if (code == 0xFF && i + 1 < len) {
			out[code_pos] = code;
			if (o >= cap)
				return SGW_E_SPACE;
			code_pos = o++;
			code = 1;
		}
	}
	out[code_pos] = code;
	if (o > (size_t)INT_MAX)
		return SGW_E_SPACE;
	return (int)o;
}

int sgw_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t i = 0, o = 0, n;
	uint8_t code;

	while (i < len) {
		code = in[i++];
		if (code == 0)
			return SGW_E_COBS;
		n = (size_t)code - 1;
		if (n > len - i)
			return SGW_E_COBS;
		for (; n > 0; n--) {
			if (in[i] == 0)
				return SGW_E_COBS;
			if (o >= cap)
				return SGW_E_SPACE;
			out[o++] = in[i++];
		}
		/* Every block except a full one and the last implies a zero after its data. */
		if (code != 0xFF && i < len) {
			if (o >= cap)
				return SGW_E_SPACE;
			out[o++] = 0;
		}
	}
	if (o > (size_t)INT_MAX)
		return SGW_E_SPACE;
	return (int)o;
}

/* ---- building ---- */

/* Makes room for n more bytes or records SGW_E_SPACE; a field is either written whole or not
 * at all, so a packet that overflowed still holds only complete fields. */
static bool reserve(struct sgw_builder *b, size_t n)
{
	if (b->err)
		return false;
	if (n > BUILDER_LIMIT - b->len) {
		b->err = SGW_E_SPACE;
		return false;
	}
	return true;
}

static void raw_u8(struct sgw_builder *b, uint8_t v)
{
	b->buf[b->len++] = v;
}

static void raw_be(struct sgw_builder *b, uint64_t v, unsigned int nbytes)
{
	while (nbytes > 0) {
		nbytes--;
		raw_u8(b, (uint8_t)(v >> (8 * nbytes)));
	}
}

static void raw_bytes(struct sgw_builder *b, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		raw_u8(b, (uint8_t)s[i]);
}

void sgw_begin(struct sgw_builder *b, enum sgw_type type, uint8_t addr, uint16_t seq)
{
	b->len = 0;
	b->err = SGW_OK;
	if (type < SGW_TYPE_HELLO || type > SGW_TYPE_ACK)
		b->err = SGW_E_TYPE;
	raw_u8(b, SGW_PROTO_VERSION);
	raw_u8(b, (uint8_t)type);
	raw_u8(b, addr);
	raw_be(b, seq, 2);
}

void sgw_put_u8(struct sgw_builder *b, uint8_t v)
{
	if (reserve(b, 1))
		raw_u8(b, v);
}

void sgw_put_u16(struct sgw_builder *b, uint16_t v)
{
	if (reserve(b, 2))
		raw_be(b, v, 2);
}

void sgw_put_u32(struct sgw_builder *b, uint32_t v)
{
	if (reserve(b, 4))
		raw_be(b, v, 4);
}

void sgw_put_str8(struct sgw_builder *b, const char *s, size_t maxlen)
{
	size_t len;

	if (b->err)
		return;
	if (maxlen > 255)
		maxlen = 255;
	len = bounded_len(s, maxlen);
	if (len > maxlen || !str_ok(s, len)) {
		b->err = SGW_E_ARG;
		return;
	}
	if (reserve(b, 1 + len)) {
		raw_u8(b, (uint8_t)len);
		raw_bytes(b, s, len);
	}
}

/* Validates key, reserves the whole field (key, vtype and value_size value bytes) and writes
 * the key and vtype. Returns false, with b->err set, when nothing was written. */
static bool put_field_head(struct sgw_builder *b, const char *key, enum sgw_vtype vt,
			   size_t value_size)
{
	size_t klen;

	if (b->err)
		return false;
	klen = bounded_len(key, SGW_MAX_KEY);
	if (!key_ok(key, klen)) {
		b->err = SGW_E_ARG;
		return false;
	}
	if (!reserve(b, 1 + klen + 1 + value_size))
		return false;
	raw_u8(b, (uint8_t)klen);
	raw_bytes(b, key, klen);
	raw_u8(b, (uint8_t)vt);
	return true;
}

void sgw_put_bool(struct sgw_builder *b, const char *key, bool v)
{
	if (put_field_head(b, key, SGW_VT_BOOL, 1))
		raw_u8(b, v ? 1 : 0);
}

void sgw_put_i32(struct sgw_builder *b, const char *key, int32_t v)
{
	if (put_field_head(b, key, SGW_VT_I32, 4))
		raw_be(b, (uint32_t)v, 4);
}

void sgw_put_i64(struct sgw_builder *b, const char *key, int64_t v)
{
	if (put_field_head(b, key, SGW_VT_I64, 8))
		raw_be(b, (uint64_t)v, 8);
}

void sgw_put_f32(struct sgw_builder *b, const char *key, float v)
{
	if (put_field_head(b, key, SGW_VT_F32, 4))
		raw_be(b, f32_bits(v), 4);
}

void sgw_put_f64(struct sgw_builder *b, const char *key, double v)
{
	if (put_field_head(b, key, SGW_VT_F64, 8))
		raw_be(b, f64_bits(v), 8);
}

void sgw_put_str(struct sgw_builder *b, const char *key, const char *v)
{
	size_t len;

	if (b->err)
		return;
	len = bounded_len(v, SGW_MAX_STR);
	if (len > SGW_MAX_STR || !str_ok(v, len)) {
		b->err = SGW_E_ARG;
		return;
	}
	if (put_field_head(b, key, SGW_VT_STR, 1 + len)) {
		raw_u8(b, (uint8_t)len);
		raw_bytes(b, v, len);
	}
}

int sgw_finish(struct sgw_builder *b, uint8_t *out, size_t cap)
{
	uint16_t crc;
	int n;

	if (b->err)
		return b->err;
	if (b->len < SGW_HEADER_SIZE || b->len > BUILDER_LIMIT)
		return SGW_E_ARG;
	if (cap < 1)
		return SGW_E_SPACE;
	/* The CRC goes behind the payload without growing b->len, so finishing twice is
	 * harmless. */
	crc = sgw_crc16(b->buf, b->len);
	b->buf[b->len] = (uint8_t)(crc >> 8);
	b->buf[b->len + 1] = (uint8_t)crc;
	n = sgw_cobs_encode(b->buf, b->len + SGW_CRC_SIZE, out, cap - 1);
	if (n < 0)
		return n;
	out[n] = 0;
	return n + 1;
}

int sgw_encode_hello(uint8_t addr, uint16_t seq, const uint8_t uid[SGW_UID_SIZE], uint32_t boot,
		     const char *fw_version, uint8_t *out, size_t cap)
{
	struct sgw_builder b;
	size_t i;

	sgw_begin(&b, SGW_TYPE_HELLO, addr, seq);
	for (i = 0; i < SGW_UID_SIZE; i++)
		sgw_put_u8(&b, uid[i]);
	sgw_put_u32(&b, boot);
	sgw_put_str8(&b, fw_version, SGW_MAX_NAME);
	return sgw_finish(&b, out, cap);
}

/* ---- reading ---- */

int sgw_packet_parse(const uint8_t *pkt, size_t len, struct sgw_packet *ret)
{
	uint16_t crc;

	if (len < SGW_HEADER_SIZE + SGW_CRC_SIZE)
		return SGW_E_SHORT;
	if (len > SGW_MAX_PACKET)
		return SGW_E_SPACE;
	crc = (uint16_t)(((uint16_t)pkt[len - 2] << 8) | pkt[len - 1]);
	if (sgw_crc16(pkt, len - SGW_CRC_SIZE) != crc)
		return SGW_E_CRC;
	if (pkt[0] != SGW_PROTO_VERSION)
		return SGW_E_VERSION;
	ret->version = pkt[0];
	ret->type = pkt[1];
	ret->addr = pkt[2];
	ret->seq = (uint16_t)(((uint16_t)pkt[3] << 8) | pkt[4]);
	ret->payload = pkt + SGW_HEADER_SIZE;
	ret->payload_len = len - SGW_HEADER_SIZE - SGW_CRC_SIZE;
	return SGW_OK;
}

void sgw_reader_init(struct sgw_reader *r, const uint8_t *payload, size_t len)
{
	r->p = payload;
	r->len = len;
	r->off = 0;
	r->err = SGW_OK;
}

static bool take(struct sgw_reader *r, size_t n)
{
	if (r->err)
		return false;
	if (n > r->len - r->off) {
		r->err = SGW_E_SHORT;
		return false;
	}
	return true;
}

static uint64_t get_be(struct sgw_reader *r, unsigned int nbytes)
{
	uint64_t v = 0;

	if (!take(r, nbytes))
		return 0;
	while (nbytes-- > 0)
		v = (v << 8) | r->p[r->off++];
	return v;
}

uint8_t sgw_get_u8(struct sgw_reader *r)
{
	return (uint8_t)get_be(r, 1);
}

uint16_t sgw_get_u16(struct sgw_reader *r)
{
	return (uint16_t)get_be(r, 2);
}

uint32_t sgw_get_u32(struct sgw_reader *r)
{
	return (uint32_t)get_be(r, 4);
}

void sgw_get_str8(struct sgw_reader *r, const char **ret_s, size_t *ret_len, size_t maxlen)
{
	const char *s;
	size_t n;

	*ret_s = empty_str;
	*ret_len = 0;
	n = sgw_get_u8(r);
	if (r->err)
		return;
	if (n > maxlen) {
		r->err = SGW_E_ARG;
		return;
	}
	if (!take(r, n))
		return;
	s = (const char *)(r->p + r->off);
	if (!str_ok(s, n)) {
		r->err = SGW_E_ARG;
		return;
	}
	r->off += n;
	*ret_s = s;
	*ret_len = n;
}

int sgw_get_field(struct sgw_reader *r, struct sgw_field *f)
{
	if (r->err)
		return r->err;
	if (r->off >= r->len)
		return 0;

	sgw_get_str8(r, &f->key, &f->key_len, SGW_MAX_KEY);
	if (!r->err && !key_ok(f->key, f->key_len))
		r->err = SGW_E_ARG;
	f->vtype = sgw_get_u8(r);
	if (r->err)
		return r->err;

	switch (f->vtype) {
	case SGW_VT_BOOL: {
		uint8_t v = sgw_get_u8(r);

		/* Only 0 and 1 are valid, so that one value has one encoding. */
		if (!r->err && v > 1)
			r->err = SGW_E_ARG;
		f->v.b = v != 0;
		break;
	}
	case SGW_VT_I32:
		f->v.i32 = (int32_t)sgw_get_u32(r);
		break;
	case SGW_VT_I64:
		f->v.i64 = (int64_t)get_be(r, 8);
		break;
	case SGW_VT_F32:
		f->v.f32 = f32_from_bits(sgw_get_u32(r));
		break;
	case SGW_VT_F64:
		f->v.f64 = f64_from_bits(get_be(r, 8));
		break;
	case SGW_VT_STR:
		sgw_get_str8(r, &f->v.str.s, &f->v.str.len, SGW_MAX_STR);
		break;
	default:
		r->err = SGW_E_TYPE;
		break;
	}
	return r->err ? r->err : 1;
}

int sgw_read_command(struct sgw_reader *r, uint16_t *ret_cmd_id, uint8_t *ret_kind,
		     const char **ret_name, size_t *ret_name_len)
{
	*ret_cmd_id = sgw_get_u16(r);
	*ret_kind = sgw_get_u8(r);
	sgw_get_str8(r, ret_name, ret_name_len, SGW_MAX_NAME);
	return r->err;
}

/* ---- streaming receive ---- */

void sgw_rx_init(struct sgw_rx *rx)
{
	rx->len = 0;
	rx->overflow = false;
}

int sgw_rx_byte(struct sgw_rx *rx, uint8_t byte, struct sgw_packet *ret)
{
	size_t len;
	int n;

	if (byte != 0) {
		if (rx->len < SGW_MAX_ENCODED)
			rx->enc[rx->len++] = byte;
		else
			rx->overflow = true;
		return 0;
	}

	/* A delimiter: whatever happens below, the next byte starts a new packet. */
	len = rx->len;
	rx->len = 0;
	if (rx->overflow) {
		rx->overflow = false;
		return SGW_E_SPACE;
	}
	if (len == 0)
		return 0;
	n = sgw_cobs_decode(rx->enc, len, rx->pkt, sizeof(rx->pkt));
	if (n < 0)
		return n;
	n = sgw_packet_parse(rx->pkt, (size_t)n, ret);
	return n < 0 ? n : 1;
}
