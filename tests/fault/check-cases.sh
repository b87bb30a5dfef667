#!/bin/sh
# SPDX-License-Identifier: MIT
# The fault cases meson runs one by one (tests/fault/meson.build, CK_RUN_CASE) must be every
# case fault_suite() in test-fault.c registers: a case added there and not in meson.build
# would not run at all.
# Usage: check-cases.sh test-fault.c CASE...
set -eu
src=$1
shift
in_source=$(sed -n '/^static Suite \*fault_suite/,/^}/p' "$src" | grep -o '{ "F[0-9]*"' |
	sed 's/{ "//; s/"//' | sort -u)
in_meson=$(printf '%s\n' "$@" | sort -u)
if [ -z "$in_source" ]; then
	echo "no cases found in $src" >&2
	exit 1
fi
if [ "$in_source" != "$in_meson" ]; then
	echo "test-fault.c has: $(echo $in_source)" >&2
	echo "meson.build runs: $(echo $in_meson)" >&2
	exit 1
fi
echo "ok: $(echo $in_meson)"
