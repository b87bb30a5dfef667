/* SPDX-License-Identifier: MIT */
/*
 * sgw_node: the node side of the sensorgw frame protocol v1.
 *
 * Portable C99, freestanding: no malloc, no stdio, no OS calls. Every function works on
 * caller-supplied buffers, so STM32 firmware (and sensorgw itself) can compile it as is.
 * docs/protocol.md is the normative description; this header restates the layout so a
 * firmware author can work from it alone.
 *
 * Binary framing. On the wire each packet is COBS-encoded and followed by one 0x00 byte:
 *
 *     COBS( ver | type | addr | seq_hi | seq_lo | payload[0..240] | crc_hi | crc_lo ) 0x00
 *
 *   ver     1 byte   SGW_PROTO_VERSION (1)
 *   type    1 byte   enum sgw_type
 *   addr    1 byte   node address on the bus, 0..254; 255 = broadcast (downlink only)
 *   seq     2 bytes  big-endian, per sender, increments by one per packet, wraps at 65535
 *   payload 0..240   layout depends on type (below)
 *   crc     2 bytes  CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xorout)
 *                    over ver..payload, big-endian
 *
 * A sender may emit a lone 0x00 at any time (for example at boot) to make the receiver
 * drop a half-received packet. The largest packet is SGW_MAX_PACKET (247) bytes, its COBS
 * form SGW_MAX_ENCODED (249) bytes, plus the delimiter SGW_MAX_WIRE (250) bytes.
 *
 * Payloads (all integers big-endian; "str8" = 1 length byte then that many bytes, no NUL):
 *   hello          uid[12] | boot_counter u32 | fw_version str8 (0..31)
 *   telemetry      field*
 *   event          event_id str8 (1..31) | field*
 *   command        cmd_id u16 | kind u8 (enum sgw_cmd_kind) | name str8 (0..31) | field*
 *   command-reply  cmd_id u16 | code u16 (200 = success, as the clouds use) | field*
 *   ack            acked_seq u16
 *
 *   field          key str8 (1..31, [A-Za-z0-9_.-]) | vtype u8 (enum sgw_vtype) | value
 *   value          bool: 1 byte 0/1; i32: 4 bytes; i64: 8 bytes; f32: IEEE-754 binary32, 4 bytes;
 *                  f64: IEEE-754 binary64, 8 bytes; str: str8 (0..63)
 *
 * Every str8 (keys, string values, fw_version, event_id, name) holds printable ASCII only
 * (0x20..0x7e); the builder refuses anything else with SGW_E_ARG and so does the reader.
 * Signed integers are two's complement. A bool byte other than 0 or 1 is malformed.
 */
#ifndef SGW_NODE_H
#define SGW_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SGW_PROTO_VERSION 1
#define SGW_HEADER_SIZE 5
#define SGW_CRC_SIZE 2
#define SGW_MAX_PAYLOAD 240
#define SGW_MAX_PACKET (SGW_HEADER_SIZE + SGW_MAX_PAYLOAD + SGW_CRC_SIZE)
#define SGW_MAX_ENCODED (SGW_MAX_PACKET + 2) /* COBS overhead: 1 + ceil(n/254) */
#define SGW_MAX_WIRE (SGW_MAX_ENCODED + 1)   /* plus the 0x00 delimiter */
#define SGW_UID_SIZE 12
#define SGW_MAX_KEY 31
#define SGW_MAX_STR 63
#define SGW_MAX_NAME 31
#define SGW_ADDR_BROADCAST 255

enum sgw_type {
	SGW_TYPE_HELLO = 0x01,
	SGW_TYPE_TELEMETRY = 0x02,
	SGW_TYPE_EVENT = 0x03,
	SGW_TYPE_COMMAND = 0x04,
	SGW_TYPE_COMMAND_REPLY = 0x05,
	SGW_TYPE_ACK = 0x06,
};

enum sgw_vtype {
	SGW_VT_BOOL = 0x01,
	SGW_VT_I32 = 0x02,
	SGW_VT_I64 = 0x03,
	SGW_VT_F32 = 0x04,
	SGW_VT_F64 = 0x05,
	SGW_VT_STR = 0x06,
};

enum sgw_cmd_kind {
	SGW_CMD_PROPERTY_SET = 0x01, /* set one or more properties (fields) */
	SGW_CMD_SERVICE = 0x02,      /* call service `name` with input fields */
	SGW_CMD_CONTROL = 0x03,      /* gateway control: name "reboot", "identify", ... */
};

/* Error codes (negative returns). */
enum sgw_err {
	SGW_OK = 0,
	SGW_E_SPACE = -1,   /* the output buffer or packet payload is full */
	SGW_E_ARG = -2,     /* an argument is out of range (key too long, bad char, ...) */
	SGW_E_COBS = -3,    /* invalid COBS encoding */
	SGW_E_SHORT = -4,   /* packet or payload truncated */
	SGW_E_CRC = -5,     /* CRC mismatch */
	SGW_E_VERSION = -6, /* unknown protocol version */
	SGW_E_TYPE = -7,    /* unknown packet or value type */
};

/* ---- primitives ---- */

uint16_t sgw_crc16(const uint8_t *data, size_t len);
uint16_t sgw_crc16_update(uint16_t crc, const uint8_t *data, size_t len);

/* COBS-encode len bytes into out (capacity cap). Returns the encoded length (no delimiter) or
 * SGW_E_SPACE. The output never contains 0x00. */
int sgw_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);
/* COBS-decode len bytes (no delimiter) into out. Returns the decoded length, SGW_E_COBS for a
 * zero byte or a code that runs past the end, or SGW_E_SPACE. */
int sgw_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/* ---- building a packet ---- */

/* A packet under construction; lives on the caller's stack. */
struct sgw_builder {
	uint8_t buf[SGW_MAX_PACKET];
	size_t len;
	int err; /* first error seen; sticky, so callers may check once at the end */
};

/* Starts a packet. Every sgw_put_* below either appends one whole item or records the first
 * error in b->err (SGW_E_SPACE when the payload would exceed SGW_MAX_PAYLOAD, SGW_E_ARG for a
 * bad key or string, SGW_E_TYPE for an unknown packet type) and then ignores later calls. */
void sgw_begin(struct sgw_builder *b, enum sgw_type type, uint8_t addr, uint16_t seq);
void sgw_put_u8(struct sgw_builder *b, uint8_t v);
void sgw_put_u16(struct sgw_builder *b, uint16_t v);
void sgw_put_u32(struct sgw_builder *b, uint32_t v);
void sgw_put_str8(struct sgw_builder *b, const char *s, size_t maxlen);
void sgw_put_bool(struct sgw_builder *b, const char *key, bool v);
void sgw_put_i32(struct sgw_builder *b, const char *key, int32_t v);
void sgw_put_i64(struct sgw_builder *b, const char *key, int64_t v);
void sgw_put_f32(struct sgw_builder *b, const char *key, float v);
void sgw_put_f64(struct sgw_builder *b, const char *key, double v);
void sgw_put_str(struct sgw_builder *b, const char *key, const char *v);
/* Append the CRC, COBS-encode and append the 0x00 delimiter into out. Returns the number of
 * bytes to send (<= SGW_MAX_WIRE) or a negative sgw_err (including b->err). b is left as it
 * was, so finishing again gives the same bytes. */
int sgw_finish(struct sgw_builder *b, uint8_t *out, size_t cap);

/* Convenience: a complete hello. */
int sgw_encode_hello(uint8_t addr, uint16_t seq, const uint8_t uid[SGW_UID_SIZE], uint32_t boot,
		     const char *fw_version, uint8_t *out, size_t cap);

/* ---- reading a packet ---- */

/* A decoded, CRC-checked packet; points into the caller's buffer. */
struct sgw_packet {
	uint8_t version;
	uint8_t type;
	uint8_t addr;
	uint16_t seq;
	const uint8_t *payload;
	size_t payload_len;
};

/* Verify a packet already COBS-decoded (without delimiter): length, CRC, then version, in that
 * order. Returns SGW_OK, SGW_E_SHORT (shorter than header + CRC), SGW_E_SPACE (longer than
 * SGW_MAX_PACKET), SGW_E_CRC or SGW_E_VERSION. The type is not checked. */
int sgw_packet_parse(const uint8_t *pkt, size_t len, struct sgw_packet *ret);

/* One field value, as read from a payload. Strings point into the payload (not NUL-terminated). */
struct sgw_field {
	const char *key;
	size_t key_len;
	uint8_t vtype;
	union {
		bool b;
		int32_t i32;
		int64_t i64;
		float f32;
		double f64;
		struct {
			const char *s;
			size_t len;
		} str;
	} v;
};

/* A read cursor over a payload. */
struct sgw_reader {
	const uint8_t *p;
	size_t len;
	size_t off;
	int err; /* sticky */
};

void sgw_reader_init(struct sgw_reader *r, const uint8_t *payload, size_t len);
uint8_t sgw_get_u8(struct sgw_reader *r);
uint16_t sgw_get_u16(struct sgw_reader *r);
uint32_t sgw_get_u32(struct sgw_reader *r);
/* The getters return 0 and set r->err to SGW_E_SHORT when the payload ends early; once
 * r->err is set every getter returns 0 without moving. */
/* Reads a str8 into (ret_s, ret_len) pointing into the payload; maxlen bounds it (SGW_E_ARG),
 * as does a byte outside 0x20..0x7e. On error *ret_s is "" and *ret_len 0. */
void sgw_get_str8(struct sgw_reader *r, const char **ret_s, size_t *ret_len, size_t maxlen);
/* Returns 1 and fills f when a field was read, 0 at the end of the payload, or a negative
 * sgw_err for a malformed field (r->err is set too). */
int sgw_get_field(struct sgw_reader *r, struct sgw_field *f);

/* Node side of commands: parse a command payload header. Fields follow; read them with
 * sgw_get_field on the same reader. Returns SGW_OK or r->err. The kind is not checked, so a
 * node can answer a kind it does not know with an error code. */
int sgw_read_command(struct sgw_reader *r, uint16_t *ret_cmd_id, uint8_t *ret_kind,
		     const char **ret_name, size_t *ret_name_len);

/* ---- streaming receive (node side, for commands) ---- */

/* Collects bytes up to each 0x00 delimiter; holds one encoded packet. */
struct sgw_rx {
	uint8_t enc[SGW_MAX_ENCODED];
	size_t len;
	bool overflow;
	uint8_t pkt[SGW_MAX_PACKET];
};

void sgw_rx_init(struct sgw_rx *rx);
/* Feed one byte. Returns 1 when a valid packet is ready (filled into *ret, pointing into
 * rx->pkt and valid until the next call), 0 when more bytes are needed, or a negative
 * sgw_err when a delimiter ended a bad packet (the receiver is already resynchronised):
 * SGW_E_SPACE when more than SGW_MAX_ENCODED bytes came before it, otherwise as
 * sgw_cobs_decode and sgw_packet_parse. Empty packets (two 0x00 in a row) are skipped. The
 * packet type and address are not checked: filtering is the caller's job. */
int sgw_rx_byte(struct sgw_rx *rx, uint8_t byte, struct sgw_packet *ret);

#endif
