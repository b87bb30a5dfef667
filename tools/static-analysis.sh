#!/bin/bash
# Static analysis of src/ (with src/cloud/), tools/ and node/src/ with three tools:
#   cppcheck (warning, portability), gcc -fanalyzer (a separate build in build-analyzer/) and
#   clang-tidy (bugprone-*, cert-*, clang-analyzer-*; the checks left out are named with a
#   reason in .clang-tidy), the last with build/compile_commands.json of a plain build.
# Every finding is fixed or justified where it stands: cppcheck-suppress, NOLINT or a GCC
# diagnostic pragma, each with a comment saying why. Prints the findings and one line per
# tool ("cppcheck: 0 findings"); exits 1 when any tool has a finding or could not run.
# About 2-3 minutes on two cores, most of it clang-tidy. JOBS (default 2) runs in parallel.
set -u
cd "$(dirname "$0")/.."
jobs=${JOBS:-2}
sources=(src/*.c src/cloud/*.c tools/*.c node/src/*.c)
out=$(mktemp -d /tmp/sensorgw-sa.XXXXXX)
trap 'rm -rf "$out"' EXIT
rc=0

for tool in cppcheck gcc clang-tidy meson ninja; do
	command -v $tool >/dev/null || { echo "static-analysis: $tool is not installed"; exit 1; }
done

# a plain build: its gw-build.h for cppcheck, its compile_commands.json for clang-tidy
if [ ! -f build/build.ninja ]; then
	meson setup build >/dev/null || { echo "static-analysis: meson setup build failed"; exit 1; }
fi
meson compile -C build >/dev/null || { echo "static-analysis: build/ does not build"; exit 1; }

report() { # TOOL FILE: prints the findings and the count line; a finding fails the run
	local n
	n=$(grep -cE '(warning|error|portability|style):' "$2")
	[ "$n" -gt 0 ] && { cat "$2"; rc=1; }
	echo "$1: $n findings"
}

# ---- cppcheck
# cppcheck does not read the system headers, so jansson's iteration macros would be an
# unknownMacro error; these are their definitions from jansson.h (2.14).
cat >"$out/jansson-macros.h" <<'EOF'
#define json_array_foreach(a, i, v) for (i = 0; i < json_array_size(a) && (v = json_array_get(a, i)); i++)
#define json_object_foreach(o, k, v) for (k = json_object_iter_key(json_object_iter(o)); k && (v = json_object_iter_value(json_object_key_to_iter(k))); k = json_object_iter_key(json_object_iter_next(o, json_object_key_to_iter(k))))
EOF
cppcheck --enable=warning,portability --error-exitcode=1 --inline-suppr --quiet -j "$jobs" \
	-D_GNU_SOURCE -Iinclude -Inode/include -Ibuild --include="$out/jansson-macros.h" \
	--template='{file}:{line}:{column}: {severity}: {message} [{id}]' \
	"${sources[@]}" 2>"$out/cppcheck.txt"
cppcheck_rc=$?
report cppcheck "$out/cppcheck.txt"
if [ $cppcheck_rc != 0 ] && [ ! -s "$out/cppcheck.txt" ]; then
	echo "cppcheck: failed (exit $cppcheck_rc) without a finding"
	rc=1
fi

# ---- gcc -fanalyzer: its own build directory, rebuilt from scratch so that every file is
# analysed; -Werror off so that one finding does not stop the others from being found
if [ ! -f build-analyzer/build.ninja ]; then
	meson setup build-analyzer -Dc_args=-fanalyzer -Dtests=disabled -Dwerror=false \
		>/dev/null || { echo "static-analysis: meson setup build-analyzer failed"; exit 1; }
fi
ninja -C build-analyzer -t clean >/dev/null
ninja -C build-analyzer -k 0 -j "$jobs" >"$out/gcc-build.txt" 2>&1
gcc_rc=$?
# only diagnostics with a source position: a meson regeneration prints "werror: false"
grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning: .*\[-Wanalyzer-|(fatal )?error:)' "$out/gcc-build.txt" |
	sed 's|^\.\./||' | sort -u \
	>"$out/gcc.txt"
report "gcc -fanalyzer" "$out/gcc.txt"
if [ $gcc_rc != 0 ]; then
	echo "gcc -fanalyzer: the build failed:"
	tail -20 "$out/gcc-build.txt"
	rc=1
fi

# ---- clang-tidy, one process per file
printf '%s\n' "${sources[@]}" |
	xargs -P "$jobs" -I{} sh -c \
		'clang-tidy -p build --quiet "$1" >"$2/tidy.$(echo "$1" | tr / _)" 2>&1' _ {} "$out"
cat "$out"/tidy.* | grep -E '(warning|error): .*\[[a-z]' | sed "s|^$PWD/build/\.\./||; s|^\.\./||" |
	sort -u >"$out/clang-tidy.txt"
report clang-tidy "$out/clang-tidy.txt"

exit $rc
