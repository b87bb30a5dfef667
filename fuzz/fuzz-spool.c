/* SPDX-License-Identifier: MIT */
/*
 * The spool's recovery and segment reader: a damaged or forged segment file, as a power cut
 * or a bad disk leaves it. The input is the segment's content; with the first byte odd, a
 * valid header for first_seq 1 is put in front, so the fuzzer spends its time on records.
 * Every record recovery keeps is then read back through a reader.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "gw/spool.h"

static char dir[64];

static void clear_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' || (e->d_name[1] && strcmp(e->d_name, "..") != 0))
			(void)unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_spool_options o = { 0 };
	struct gw_spool *s = NULL;
	struct gw_spool_reader *r = NULL;
	struct gw_spool_record rec;
	uint8_t hdr[32] = { 'G', 'W', 'Q', '1' };
	char path[128];
	int fd, n, ret;

	if (size < 1)
		return 0;
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/fuzz-spool-%d", (int)getpid());
		(void)mkdir(dir, 0700);
	}
	clear_dir();
	snprintf(path, sizeof(path), "%s/seg-0000000000000001.log", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
	if (data[0] & 1) {
		put_le32(hdr + 4, 1);
		hdr[8] = 1; /* first_seq = 1, little-endian */
		put_le32(hdr + 24, gw_crc32c(0, hdr, 24));
		if (write(fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr))
			abort();
	}
	if (size > 1 && write(fd, data + 1, size - 1) != (ssize_t)(size - 1))
		abort();
	close(fd);
	o.dir = dir;
	o.segment_bytes = 1 << 20;
	/* damage is never an error; out of memory (tools/failmalloc.sh) is */
	ret = gw_spool_open(&o, &s);
	if (ret == -ENOMEM)
		return 0;
	if (ret < 0)
		abort();
	if (gw_spool_reader_new(s, "fuzz", true, &r) == 0) {
		/* bounded: a record is at least 17 bytes */
		for (size_t i = 0; i <= size / 17 + 1; i++) {
			n = gw_spool_reader_next(r, &rec);
			if (n <= 0)
				break;
			if (rec.len)
				(void)gw_crc32c(0, rec.payload, rec.len);
		}
		gw_spool_reader_free(r);
	}
	gw_spool_close(s);
	return 0;
}
