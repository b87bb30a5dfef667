/* SPDX-License-Identifier: MIT */
/*
 * The serial decoders: bytes as a node (or anyone with a wire) sends them. The first byte picks
 * the framing and how the rest is cut into reads, since frames split across reads are where
 * decoders go wrong. FUZZ_FRAMING is set by the build: one target per framing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "gw/frame.h"

static void on_frame(const struct gw_frame *f, enum gw_frame_error err, void *ud)
{
	size_t *n = ud;

	/* touch what a consumer touches, so ASan checks it */
	if (err == GW_FRAME_OK) {
		for (size_t i = 0; i < f->n_fields; i++)
			*n += strlen(f->fields[i].key);
		*n += strlen(f->trace);
	}
	*n += strlen(f->why);
	(*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_decoder *d;
	struct gw_frame f;
	size_t n = 0, chunk, off;
	int r;

	if (size < 1)
		return 0;
	chunk = (size_t)(data[0] % 64) + 1;
	data++;
	size--;
	/* out of memory (tools/failmalloc.sh) skips the input; nothing else may fail here */
	r = gw_decoder_new(FUZZ_FRAMING, &d);
	if (r == -ENOMEM)
		return 0;
	if (r < 0)
		abort();
	for (off = 0; off < size; off += chunk)
		gw_decoder_feed(d, data + off, size - off < chunk ? size - off : chunk, on_frame, &n);
	gw_decoder_free(d);
	/* the one-shot parsers on the whole input */
	if (FUZZ_FRAMING == GW_FRAMING_BINARY)
		(void)gw_binary_parse_packet(data, size, &f);
	else
		(void)gw_text_parse_line((const char *)data, size, &f);
	return 0;
}
