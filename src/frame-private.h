/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Between frame.c (the decoder) and text.c (text framing): the line splitter. The decoder
 * embeds one and text.c owns its logic, so line rules live next to the line parser.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw/frame.h"

struct gw_text_splitter {
	size_t len;
	bool discarding; /* the current line grew too long; drop bytes up to the terminator */
	bool after_cr;   /* the last byte was CR, so an LF now completes the same terminator */
	char line[GW_TEXT_LINE_MAX];
};

/*
 * Called once per non-empty line (without its terminator) with oversize false, or once with
 * line NULL, len 0 and oversize true when a line grows past GW_TEXT_LINE_MAX bytes; the rest
 * of that line is then dropped silently. line is valid only during the call.
 */
typedef void (*gw_text_line_fn)(const char *line, size_t len, bool oversize, void *user_data);

void gw_text_splitter_reset(struct gw_text_splitter *s);
/* Bytes of an unfinished line that would still be delivered (0 while discarding an oversize
 * one): what a close cuts off. */
size_t gw_text_splitter_pending(const struct gw_text_splitter *s);
void gw_text_splitter_feed(struct gw_text_splitter *s, const uint8_t *buf, size_t len,
			   gw_text_line_fn fn, void *user_data);
