/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Every fuzz target defines LLVMFuzzerTestOneInput(). Built with clang and -Dfuzz=true, it is
 * driven by libFuzzer (tools/fuzz.sh); in every other build it is linked with replay.c, which
 * runs the files of its seed corpus once, so the normal test suite (and ASan/UBSan) replays
 * the corpora as regression tests.
 */
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
