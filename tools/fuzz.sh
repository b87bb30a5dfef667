#!/bin/bash
# SPDX-License-Identifier: MIT
# Runs every libFuzzer target (fuzz/) for SECONDS each, two at a time, and prints one line per
# target: executions, exec/s, edges covered, corpus size, crashes. Exits 1 when a target found
# a crash, a leak or a sanitizer report (its reproducer is kept under OUT/), or covered fewer
# edges than its floor in fuzz/min-edges.txt (its inputs stopped reaching the code).
#
#   tools/fuzz.sh [SECONDS] [OUT]          (default 60 s, OUT = build-fuzz/fuzz-out)
#   tools/fuzz.sh --merge                  minimise new finds into fuzz/corpus/ (after a long run)
#
# CI runs it with the default budget; for hours, e.g. `tools/fuzz.sh 3600`. The build is
# build-fuzz (clang, -Dfuzz=true, ASan + UBSan); set up here when missing. New inputs go to
# OUT/corpus-NAME, never into the checkout; the committed seeds are read only.
set -u
cd "$(dirname "$0")/.."
root=$PWD
merge=0
if [ "${1:-}" = --merge ]; then
	merge=1
	shift
fi
secs=${1:-60}
out=${2:-$root/build-fuzz/fuzz-out}
targets=(frame-binary frame-text config aliyun-downlink tencent-downlink aliyun-register
	tencent-register spool control thingmodel aliyun-gateway tencent-gateway)

if [ ! -d build-fuzz ]; then
	CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dtests=disabled --buildtype=debugoptimized >/dev/null ||
		{ echo "fuzz.sh: meson setup build-fuzz failed (clang needed)" >&2; exit 1; }
fi
meson compile -C build-fuzz >/dev/null || { echo "fuzz.sh: build failed" >&2; exit 1; }
mkdir -p "$out"

dict_of() {
	case $1 in
	config) echo "-dict=$root/fuzz/dict/config.dict" ;;
	frame-text) echo "-dict=$root/fuzz/dict/frame-text.dict" ;;
	aliyun-*|tencent-*|control|thingmodel) echo "-dict=$root/fuzz/dict/json.dict" ;;
	esac
}

if [ $merge = 1 ]; then
	for t in "${targets[@]}"; do
		[ -d "$out/corpus-$t" ] || continue
		mkdir -p "$out/merged-$t"
		build-fuzz/fuzz/fuzz-$t -merge=1 "$out/merged-$t" "$root/fuzz/corpus/$t" \
			"$out/corpus-$t" >/dev/null 2>&1
		echo "$t: $(ls "$out/merged-$t" | wc -l) inputs after merge (in $out/merged-$t;" \
			"copy them into fuzz/corpus/$t to keep them)"
	done
	exit 0
fi

run_one() {
	local t=$1 log=$out/$1.log
	mkdir -p "$out/corpus-$t" "$out/crashes-$t"
	# -rss_limit: a leak or runaway allocation is a finding too; -timeout: a hang is one
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
		build-fuzz/fuzz/fuzz-$t -max_total_time="$secs" -timeout=10 -rss_limit_mb=512 \
		-print_final_stats=1 -artifact_prefix="$out/crashes-$t/" $(dict_of "$t") \
		"$out/corpus-$t" "$root/fuzz/corpus/$t" >"$log" 2>&1
	echo $? >"$out/$t.rc"
}
export -f run_one dict_of
export out secs root
printf '%s\n' "${targets[@]}" | xargs -P 2 -I{} bash -c 'run_one {}'

rc=0
printf '%-18s %12s %8s %6s %7s %8s\n' target executions exec/s edges corpus crashes
for t in "${targets[@]}"; do
	log=$out/$t.log
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
	corp=$(grep -oE 'corp: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
	crashes=$(find "$out/crashes-$t" -type f | wc -l)
	if [ "$(cat "$out/$t.rc")" != 0 ] || [ "$crashes" != 0 ]; then
		rc=1
		echo "fuzz.sh: $t failed (exit $(cat "$out/$t.rc")); log $log" >&2
		grep -m5 -E 'ERROR|SUMMARY|runtime error' "$log" >&2
	fi
	floor=$(awk -v t="$t" '$1 == t { print $2 }' "$root/fuzz/min-edges.txt")
	if [ -z "$floor" ] || [ "${cov:-0}" -lt "$floor" ]; then
		rc=1
		echo "fuzz.sh: $t covered ${cov:-no} edges, fewer than its floor ${floor:-(none)}" \
			"in fuzz/min-edges.txt: do its inputs stop at an early check?" >&2
	fi
	printf '%-18s %12s %8s %6s %7s %8s\n' "$t" "${execs:-?}" "${eps:-?}" "${cov:-?}" \
		"${corp:-?}" "$crashes"
done
exit $rc
