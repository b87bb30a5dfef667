/* SPDX-License-Identifier: MIT */
/*
 * The configuration loader: an ini file (libinih) through every key's validation. The input is
 * the file, handed over as /proc/self/fd/N of a memfd, since the loader takes a path.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "gw/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct gw_config *cfg = NULL;
	char path[64];
	int fd;

	/* fopen() allocates: out of memory (tools/failmalloc.sh) skips the input */
	if (!devnull && !(devnull = fopen("/dev/null", "we"))) {
		if (errno == ENOMEM)
			return 0;
		abort();
	}
	fd = memfd_create("fuzz-config", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	/* a memfd is created 0777, which the loader refuses as group/other-writable */
	if (fchmod(fd, 0600) < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (gw_config_load(path, devnull, &cfg) >= 0)
		gw_config_free(cfg);
	close(fd);
	return 0;
}
