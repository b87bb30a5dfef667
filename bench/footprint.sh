#!/bin/bash
# SPDX-License-Identifier: MIT
# Flash and RAM of the node library (node/src/sgw_node.c) on Cortex-M, and of the STM32F205
# firmware of node/examples/stm32f2 (issue 19): arm-none-eabi-size of the library compiled
# alone (-Os, as firmware builds it; the bitwise CRC-16, no table) for a Cortex-M3 and a
# Cortex-M4F, and of the two firmware images node/meson.build links (binary and text
# framing). text is flash, data is flash and RAM, bss is RAM; the stack is not counted.
#
#   bench/footprint.sh [BUILD_DIR]
#
# BUILD_DIR (default build) holds the firmware images. Needs gcc-arm-none-eabi.
set -u
cd "$(dirname "$0")/.." || exit 1
build=${1:-build}
command -v arm-none-eabi-gcc >/dev/null || { echo "footprint.sh: arm-none-eabi-gcc is missing" >&2; exit 1; }
ninja -C "$build" node/fw-stm32f2-binary.elf node/fw-stm32f2-text.elf >/dev/null ||
	{ echo "footprint.sh: firmware build failed" >&2; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
echo "| what | core | text (flash) | data | bss (RAM) |"
echo "|---|---|---|---|---|"
for core in "cortex-m3:-mcpu=cortex-m3 -mthumb" "cortex-m4f:-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16"; do
	name=${core%%:*}
	# shellcheck disable=SC2086 # the flags are words
	arm-none-eabi-gcc ${core#*:} -Os -std=c99 -ffreestanding -ffunction-sections -fdata-sections \
		-Inode/include -c node/src/sgw_node.c -o "$T/sgw_node.o" || exit 1
	arm-none-eabi-size "$T/sgw_node.o" | awk -v c="$name" 'NR == 2 {
		printf "| node library, every function (sgw_node.o) | %s | %d | %d | %d |\n", c, $1, $2, $3 }'
done
for fw in binary text; do
	arm-none-eabi-size "$build/node/fw-stm32f2-$fw.elf" | awk -v f="$fw" 'NR == 2 {
		printf "| firmware, %s framing (fw-stm32f2-%s.elf, unused functions dropped) | cortex-m3 | %d | %d | %d |\n", f, f, $1, $2, $3 }'
done
