/* SPDX-License-Identifier: MIT */
/*
 * The frame decoder: turns the byte stream of one serial port into gw_frame values, for both
 * framings, and parses binary packets with the node library's primitives. It owns no I/O.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decimal-private.h"
#include "frame-private.h"
#include "gw/frame.h"
#include "sgw_node.h"

/*
 * A binary32 reading such as 23.9f is 23.8999996185302734375 exactly; widened as is it would
 * be published as 23.8999996185303. Take instead the shortest decimal that reads back as the
 * same float (at most 9 digits), which is what the firmware author wrote.
 *
 * That is: the first of printf "%.6g" .. "%.9g" that strtof() reads back as f, then strtod()
 * of that text. gw_binary_widen_f32() computes the same without printf and strtod (they were a
 * tenth of the instructions per binary frame; decimal.c does the exact integer arithmetic);
 * widen_printf() is the definition, used where that arithmetic does not reach. test-frame
 * compares the two.
 */
static double widen_printf(float f)
{
	char buf[32];

	for (int digits = 6; digits <= 9; digits++) {
		snprintf(buf, sizeof(buf), "%.*g", digits, (double)f);
		if (strtof(buf, NULL) == f)
			return strtod(buf, NULL);
	}
	return f;
}

double gw_binary_widen_f32(float f)
{
	float a = fabsf(f);
	uint32_t mant;
	int e, s, x;

	if (!isfinite(f))
		return f;
	/* an integer below 2^24: every digit is needed and each is exact */
	if (a < 0x1p24f && a == (float)(uint32_t)a)
		return f;
	if (a < 1e-4f)
		return widen_printf(f);
	mant = (uint32_t)ldexpf(frexpf(a, &e), 24);
	s = 24 - e;
	if (s < 1 || s > 60)
		return widen_printf(f);
	x = (int)floorf((float)(e - 1) * 0.30103f);
	for (int digits = 6; digits <= 9; digits++) {
		uint64_t q;
		int k;

		if (!gw_decimal_digits(mant, s, digits, x, &q, &k))
			return widen_printf(f);
		if (gw_decimal_reads_back_f32(mant, s, q, k)) {
			/* q < 2^53 and 10^k exact: one correctly rounded division, as strtod */
			double d = (double)q / (double)gw_pow10_u64[k];

			return f < 0 ? -d : d;
		}
	}
	return widen_printf(f);
}

struct gw_decoder {
	enum gw_framing framing;
	struct gw_frame_stats stats;
	gw_frame_fn fn; /* set for the duration of one feed call */
	void *user_data;

	/* Binary: the COBS bytes since the last delimiter. */
	size_t enc_len;
	bool discarding; /* reported oversize; drop bytes up to the next delimiter */
	uint8_t enc[SGW_MAX_ENCODED];
	uint8_t pkt[SGW_MAX_PACKET];

	struct gw_text_splitter text;

	/* One frame is several KiB; keeping it here spares the stack of every caller. */
	struct gw_frame frame;
};

int gw_decoder_new(enum gw_framing framing, struct gw_decoder **ret)
{
	struct gw_decoder *d;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->framing = framing;
	gw_decoder_reset(d);
	*ret = d;
	return 0;
}

struct gw_decoder *gw_decoder_free(struct gw_decoder *d)
{
	free(d);
	return NULL;
}

void gw_decoder_reset(struct gw_decoder *d)
{
	d->enc_len = 0;
	d->discarding = false;
	gw_text_splitter_reset(&d->text);
}

void gw_decoder_set_framing(struct gw_decoder *d, enum gw_framing framing)
{
	gw_decoder_reset(d);
	d->framing = framing;
}

const struct gw_frame_stats *gw_decoder_stats(const struct gw_decoder *d)
{
	return &d->stats;
}

static void deliver(struct gw_decoder *d, enum gw_frame_error err)
{
	if (err == GW_FRAME_OK) {
		d->stats.frames++;
	} else {
		d->stats.errors[err]++;
		d->stats.resyncs++;
	}
	d->fn(&d->frame, err, d->user_data);
}

size_t gw_decoder_close(struct gw_decoder *d, gw_frame_fn fn, void *user_data)
{
	size_t pending = 0;

	switch (d->framing) {
	case GW_FRAMING_BINARY:
		pending = d->discarding ? 0 : d->enc_len;
		break;
	case GW_FRAMING_TEXT:
		pending = gw_text_splitter_pending(&d->text);
		break;
	}
	gw_decoder_reset(d);
	if (pending) {
		memset(&d->frame, 0, sizeof(d->frame));
		d->stats.errors[GW_FRAME_ERR_TRUNCATED]++;
		fn(&d->frame, GW_FRAME_ERR_TRUNCATED, user_data);
	}
	return pending;
}

static void deliver_oversize(struct gw_decoder *d)
{
	memset(&d->frame, 0, sizeof(d->frame));
	deliver(d, GW_FRAME_ERR_OVERSIZE);
}

static void binary_packet_end(struct gw_decoder *d)
{
	int n;

	n = sgw_cobs_decode(d->enc, d->enc_len, d->pkt, sizeof(d->pkt));
	if (n < 0) {
		memset(&d->frame, 0, sizeof(d->frame));
		deliver(d, n == SGW_E_SPACE ? GW_FRAME_ERR_OVERSIZE : GW_FRAME_ERR_MALFORMED);
		return;
	}
	deliver(d, gw_binary_parse_packet(d->pkt, (size_t)n, &d->frame));
}

static void binary_feed(struct gw_decoder *d, const uint8_t *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (buf[i] == 0) {
			/* An empty packet is a sender's resync marker, not an error. */
			if (!d->discarding && d->enc_len > 0)
				binary_packet_end(d);
			d->enc_len = 0;
			d->discarding = false;
			continue;
		}
		if (d->discarding)
			continue;
		if (d->enc_len == sizeof(d->enc)) {
			d->discarding = true;
			d->enc_len = 0;
			deliver_oversize(d);
			continue;
		}
		d->enc[d->enc_len++] = buf[i];
	}
}

static void on_text_line(const char *line, size_t len, bool oversize, void *user_data)
{
	struct gw_decoder *d = user_data;

	if (oversize) {
		deliver_oversize(d);
		return;
	}
	deliver(d, gw_text_parse_line(line, len, &d->frame));
}

void gw_decoder_feed(struct gw_decoder *d, const uint8_t *buf, size_t len, gw_frame_fn fn,
		     void *user_data)
{
	d->stats.bytes += len;
	d->fn = fn;
	d->user_data = user_data;
	switch (d->framing) {
	case GW_FRAMING_BINARY:
		binary_feed(d, buf, len);
		break;
	case GW_FRAMING_TEXT:
		gw_text_splitter_feed(&d->text, buf, len, on_text_line, d);
		break;
	}
	d->fn = NULL;
	d->user_data = NULL;
}

/* ---- binary packets ---- */

static bool copy_str(char *dst, size_t size, const char *s, size_t len)
{
	if (len >= size)
		return false;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return true;
}

/* Reads fields up to the end of the payload. A duplicate key replaces the earlier value, as
 * in text frames, so consumers never see one key twice. */
static enum gw_frame_error read_fields(struct sgw_reader *r, struct gw_frame *f)
{
	struct gw_field *field;
	struct sgw_field sf;
	size_t i;
	int n;

	while ((n = sgw_get_field(r, &sf)) > 0) {
		for (i = 0; i < f->n_fields; i++)
			if (strlen(f->fields[i].key) == sf.key_len &&
			    memcmp(f->fields[i].key, sf.key, sf.key_len) == 0)
				break;
		if (i == GW_FRAME_MAX_FIELDS)
			return GW_FRAME_ERR_MALFORMED;
		field = &f->fields[i];
		if (i == f->n_fields) {
			f->n_fields++;
			copy_str(field->key, sizeof(field->key), sf.key, sf.key_len);
		}
		memset(&field->value, 0, sizeof(field->value));
		switch (sf.vtype) {
		case SGW_VT_BOOL:
			field->value.type = GW_VALUE_BOOL;
			field->value.b = sf.v.b;
			break;
		case SGW_VT_I32:
			field->value.type = GW_VALUE_INT;
			field->value.i = sf.v.i32;
			break;
		case SGW_VT_I64:
			field->value.type = GW_VALUE_INT;
			field->value.i = sf.v.i64;
			break;
		case SGW_VT_F32:
			field->value.type = GW_VALUE_DOUBLE;
			field->value.d = gw_binary_widen_f32(sf.v.f32);
			break;
		case SGW_VT_F64:
			field->value.type = GW_VALUE_DOUBLE;
			field->value.d = sf.v.f64;
			break;
		case SGW_VT_STR:
			field->value.type = GW_VALUE_STRING;
			copy_str(field->value.s, sizeof(field->value.s), sf.v.str.s, sf.v.str.len);
			break;
		default:
			return GW_FRAME_ERR_MALFORMED;
		}
		/* JSON has no NaN or infinity: a node without a reading leaves the field out. */
		if (field->value.type == GW_VALUE_DOUBLE && !isfinite(field->value.d))
			return GW_FRAME_ERR_MALFORMED;
	}
	return n < 0 ? GW_FRAME_ERR_MALFORMED : GW_FRAME_OK;
}

static enum gw_frame_error parse_payload(struct sgw_reader *r, struct gw_frame *f)
{
	const char *s;
	size_t len, i;

	switch (f->type) {
	case GW_FRAME_HELLO:
		for (i = 0; i < GW_UID_SIZE; i++)
			f->uid[i] = sgw_get_u8(r);
		f->boot_counter = sgw_get_u32(r);
		sgw_get_str8(r, &s, &len, SGW_MAX_NAME);
		if (r->err || r->off != r->len)
			return GW_FRAME_ERR_MALFORMED;
		copy_str(f->fw_version, sizeof(f->fw_version), s, len);
		return GW_FRAME_OK;
	case GW_FRAME_TELEMETRY:
		return read_fields(r, f);
	case GW_FRAME_EVENT:
		sgw_get_str8(r, &s, &len, SGW_MAX_NAME);
		if (r->err || len == 0)
			return GW_FRAME_ERR_MALFORMED;
		copy_str(f->name, sizeof(f->name), s, len);
		return read_fields(r, f);
	case GW_FRAME_COMMAND:
		if (sgw_read_command(r, &f->cmd_id, &f->cmd_kind, &s, &len) != SGW_OK)
			return GW_FRAME_ERR_MALFORMED;
		copy_str(f->name, sizeof(f->name), s, len);
		return read_fields(r, f);
	case GW_FRAME_COMMAND_REPLY:
		f->cmd_id = sgw_get_u16(r);
		f->code = sgw_get_u16(r);
		if (r->err)
			return GW_FRAME_ERR_MALFORMED;
		return read_fields(r, f);
	case GW_FRAME_ACK:
		f->acked_seq = sgw_get_u16(r);
		if (r->err || r->off != r->len)
			return GW_FRAME_ERR_MALFORMED;
		return GW_FRAME_OK;
	}
	return GW_FRAME_ERR_UNKNOWN;
}

enum gw_frame_error gw_binary_parse_packet(const uint8_t *pkt, size_t len, struct gw_frame *ret)
{
	struct sgw_packet p;
	struct sgw_reader r;

	memset(ret, 0, sizeof(*ret));
	switch (sgw_packet_parse(pkt, len, &p)) {
	case SGW_OK:
		break;
	case SGW_E_CRC:
		/* Unverified, but right far more often than not: good enough for per-node
		 * counts. */
		ret->has_addr = true;
		ret->addr = pkt[2];
		return GW_FRAME_ERR_CRC;
	case SGW_E_VERSION:
		return GW_FRAME_ERR_UNKNOWN;
	case SGW_E_SPACE:
		return GW_FRAME_ERR_OVERSIZE;
	default:
		return GW_FRAME_ERR_MALFORMED;
	}

	ret->has_addr = true;
	ret->addr = p.addr;
	ret->has_seq = true;
	ret->seq = p.seq;
	if (p.type < GW_FRAME_HELLO || p.type > GW_FRAME_ACK)
		return GW_FRAME_ERR_UNKNOWN;
	ret->type = (enum gw_frame_type)p.type;
	sgw_reader_init(&r, p.payload, p.payload_len);
	return parse_payload(&r, ret);
}

const char *gw_frame_error_to_string(enum gw_frame_error err)
{
	switch (err) {
	case GW_FRAME_OK:
		return "ok";
	case GW_FRAME_ERR_CRC:
		return "crc";
	case GW_FRAME_ERR_OVERSIZE:
		return "oversize";
	case GW_FRAME_ERR_UNKNOWN:
		return "unknown";
	case GW_FRAME_ERR_MALFORMED:
		return "malformed";
	case GW_FRAME_ERR_TRUNCATED:
		return "truncated";
	case _GW_FRAME_ERR_MAX:
		break;
	}
	return "invalid";
}

const char *gw_frame_type_to_string(enum gw_frame_type type)
{
	switch (type) {
	case GW_FRAME_HELLO:
		return "hello";
	case GW_FRAME_TELEMETRY:
		return "telemetry";
	case GW_FRAME_EVENT:
		return "event";
	case GW_FRAME_COMMAND:
		return "command";
	case GW_FRAME_COMMAND_REPLY:
		return "command-reply";
	case GW_FRAME_ACK:
		return "ack";
	}
	return "invalid";
}

void gw_uid_to_hex(const uint8_t uid[GW_UID_SIZE], char *buf)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < GW_UID_SIZE; i++) {
		buf[2 * i] = digits[uid[i] >> 4];
		buf[2 * i + 1] = digits[uid[i] & 0xf];
	}
	buf[2 * GW_UID_SIZE] = '\0';
}
