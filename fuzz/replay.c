/* SPDX-License-Identifier: MIT */
/*
 * Runs a fuzz target once per file named on the command line (directories are walked one
 * level deep), for builds without libFuzzer: the seed corpora become regression tests.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define REPLAY_MAX_INPUT (1u << 20)

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	size_t n;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	buf = malloc(REPLAY_MAX_INPUT);
	if (!buf) {
		fprintf(stderr, "%s: out of memory\n", path);
		fclose(f);
		return -1;
	}
	n = fread(buf, 1, REPLAY_MAX_INPUT, f);
	fclose(f);
	/* an exact-size copy, so ASan sees reads past the input */
	{
		uint8_t *in = malloc(n ? n : 1);

		if (!in) {
			fprintf(stderr, "%s: out of memory\n", path);
			free(buf);
			return -1;
		}
		memcpy(in, buf, n);
		free(buf);
		(void)LLVMFuzzerTestOneInput(in, n);
		free(in);
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned int files = 0;
	int bad = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		DIR *d;
		struct dirent *e;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			bad |= run_file(argv[i]) < 0;
			files++;
			continue;
		}
		d = opendir(argv[i]);
		if (!d) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		while ((e = readdir(d))) {
			char path[4096];

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			bad |= run_file(path) < 0;
			files++;
		}
		closedir(d);
	}
	if (files == 0) {
		/* an empty corpus would make this test pass without testing anything */
		fprintf(stderr, "no input files\n");
		return 1;
	}
	printf("%u input(s) replayed\n", files);
	return bad ? 1 : 0;
}
