/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Frame decoding: bytes from one serial port become struct gw_frame values.
 *
 * Pure: no I/O, no globals, no allocation after _new. Streaming: bytes may arrive split at
 * any point; each feed call reports every complete frame (or error) through a callback.
 * Two framings: binary (COBS + CRC, see node/include/sgw_node.h and docs/protocol.md) and
 * text (one record per line, key=value pairs or a JSON object, optional *HH checksum,
 * optional @ADDR prefix).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_KEY_MAX 32      /* including the NUL: keys are 1..31 bytes */
#define GW_STR_MAX 64      /* including the NUL: string values are 0..63 bytes */
#define GW_NAME_MAX 32     /* event ids, service names, firmware versions */
#define GW_FRAME_MAX_FIELDS 32
#define GW_TEXT_LINE_MAX 512 /* a longer text line is counted as oversize and skipped */
#define GW_UID_SIZE 12
#define GW_FRAME_WHY_MAX 160 /* including the NUL: why a line is malformed */

enum gw_framing {
	GW_FRAMING_TEXT,
	GW_FRAMING_BINARY,
};

enum gw_frame_type {
	GW_FRAME_HELLO = 1,
	GW_FRAME_TELEMETRY = 2,
	GW_FRAME_EVENT = 3,
	GW_FRAME_COMMAND = 4,
	GW_FRAME_COMMAND_REPLY = 5,
	GW_FRAME_ACK = 6,
};

enum gw_value_type {
	GW_VALUE_BOOL,
	GW_VALUE_INT,    /* int64 */
	GW_VALUE_DOUBLE, /* binary32 values are widened on decode */
	GW_VALUE_STRING,
};

struct gw_value {
	enum gw_value_type type;
	union {
		bool b;
		int64_t i;
		double d;
	};
	char s[GW_STR_MAX]; /* GW_VALUE_STRING only; NUL-terminated */
};

struct gw_field {
	char key[GW_KEY_MAX]; /* NUL-terminated */
	struct gw_value value;
};

/* One decoded frame. Plain data: copy it freely. */
struct gw_frame {
	enum gw_frame_type type;
	bool has_addr; /* binary frames always; text frames only with an @ADDR prefix */
	uint8_t addr;
	bool has_seq; /* binary frames always; text frames never */
	uint16_t seq;

	/* GW_FRAME_HELLO */
	uint8_t uid[GW_UID_SIZE];
	uint32_t boot_counter;
	char fw_version[GW_NAME_MAX];

	/* GW_FRAME_EVENT: event id; GW_FRAME_COMMAND: service/control name */
	char name[GW_NAME_MAX];
	/* GW_FRAME_COMMAND / GW_FRAME_COMMAND_REPLY */
	uint16_t cmd_id;
	uint8_t cmd_kind; /* enum sgw_cmd_kind */
	uint16_t code;
	/* GW_FRAME_ACK */
	uint16_t acked_seq;

	/* GW_FRAME_TELEMETRY, _EVENT, _COMMAND, _COMMAND_REPLY */
	size_t n_fields;
	struct gw_field fields[GW_FRAME_MAX_FIELDS];

	/* A text line in a cloud's message shape (docs/protocol.md 2.4.1): the envelope's Tencent
	 * clientToken or Alink id, 0..63 printable bytes, kept for tracing; empty otherwise. */
	char trace[GW_STR_MAX];
	/* A bad text line: what was wrong, when the parser can tell; empty otherwise. */
	char why[GW_FRAME_WHY_MAX];
};

/* Why a frame was skipped. Each is counted, and the decoder resynchronises by itself. */
enum gw_frame_error {
	GW_FRAME_OK = 0,
	GW_FRAME_ERR_CRC,       /* binary CRC or text *HH checksum mismatch */
	GW_FRAME_ERR_OVERSIZE,  /* longer than SGW_MAX_ENCODED bytes / GW_TEXT_LINE_MAX */
	GW_FRAME_ERR_UNKNOWN,   /* unknown version or type */
	GW_FRAME_ERR_MALFORMED, /* bad COBS, truncated header/payload, bad field, unparsable text */
	GW_FRAME_ERR_TRUNCATED, /* cut off: the port closed (unplug, reload, stop) before its end */
	/* systemd's spelling of the count; a reserved name in theory, defined by no libc */
	_GW_FRAME_ERR_MAX, /* NOLINT(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp) */
};

struct gw_frame_stats {
	uint64_t bytes;
	uint64_t frames; /* good frames delivered */
	uint64_t errors[_GW_FRAME_ERR_MAX]; /* index 0 unused */
	uint64_t resyncs; /* times the decoder discarded bytes to find the next frame start */
};

/*
 * Called once per complete frame. err == GW_FRAME_OK: f is a good frame. Otherwise f is the
 * best-effort header of the bad frame (f->has_addr set only when the address byte could be
 * read, for per-node error counts), valid only during the call.
 */
typedef void (*gw_frame_fn)(const struct gw_frame *f, enum gw_frame_error err, void *user_data);

struct gw_decoder;

/* Returns 0 and a new decoder in *ret, or -ENOMEM. */
int gw_decoder_new(enum gw_framing framing, struct gw_decoder **ret);
/* Accepts NULL; returns NULL. */
struct gw_decoder *gw_decoder_free(struct gw_decoder *d);
/* Feeds len bytes; calls fn for each frame or error completed by these bytes. fn may not
 * free the decoder. */
void gw_decoder_feed(struct gw_decoder *d, const uint8_t *buf, size_t len, gw_frame_fn fn,
		     void *user_data);
/* Drops any partial frame (e.g. after the port was reopened). */
void gw_decoder_reset(struct gw_decoder *d);
/*
 * The port is closing (unplugged, reopened with other settings, stopped): a partial frame
 * (bytes since the last terminator that were not already reported as oversize) can never be
 * completed, so it is counted as GW_FRAME_ERR_TRUNCATED and reported through fn with a zeroed
 * frame; then the decoder is reset. Returns the number of bytes dropped (0: nothing was
 * pending, fn not called).
 */
size_t gw_decoder_close(struct gw_decoder *d, gw_frame_fn fn, void *user_data);
/* Decodes framing from now on; the counters go on (a port's framing changed at a reload).
 * Any partial frame is dropped without a word: gw_decoder_close() it first. */
void gw_decoder_set_framing(struct gw_decoder *d, enum gw_framing framing);
const struct gw_frame_stats *gw_decoder_stats(const struct gw_decoder *d);

/* Pure one-shot parsers, used by the decoders and directly by tests and tools. */
/* Parses one text line (without CR/LF). Returns GW_FRAME_OK and fills *ret, or an error. An
 * empty or whitespace-only line returns GW_FRAME_ERR_MALFORMED only if it is not empty; callers
 * skip empty lines before calling. */
enum gw_frame_error gw_text_parse_line(const char *line, size_t len, struct gw_frame *ret);
/* Parses one COBS-decoded binary packet. */
enum gw_frame_error gw_binary_parse_packet(const uint8_t *pkt, size_t len, struct gw_frame *ret);

/* A binary32 reading as the double the payload shows: the shortest decimal (6 to 9 significant
 * digits, as printf "%.Ng") that reads back as the same float, e.g. 23.9f gives 23.9. */
double gw_binary_widen_f32(float f);

const char *gw_frame_error_to_string(enum gw_frame_error err);
const char *gw_frame_type_to_string(enum gw_frame_type type);
/* Formats the UID as 24 lower-case hex digits into buf (>= 25 bytes). */
void gw_uid_to_hex(const uint8_t uid[GW_UID_SIZE], char *buf);
