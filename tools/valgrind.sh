#!/bin/bash
# Runs integration tests with the real sensorgwd under valgrind (memcheck): every daemon the
# test fixture starts runs as `valgrind ... sensorgwd ...` (GW_DAEMON_WRAPPER, see
# tests/lib/fixture.h). Fails when a test fails or when any valgrind log shows an
# error, a definitely or indirectly lost block, or a file descriptor other than
# stdin/stdout/stderr still open at exit.
#
# usage: tools/valgrind.sh [BUILD_DIR [TEST...]]
#   BUILD_DIR: an existing plain (not ASan) build, default build/
#   TEST: meson test names, default every test of the integration suite (meson test --suite
#   integration), one at a time.
# A daemon under valgrind runs 10 to 50 times slower: every wait on it, in the fixture, in the
# test clouds' helpers (cloud.h, tcloud.h) and in the tests, is stretched by GW_TIMEOUT_SCALE
# (default 10 here), Check's per-test timeouts by CK_TIMEOUT_MULTIPLIER (4) and meson's by
# --timeout-multiplier 4. Tests that measure a rate or an interval keep their assertion and
# widen only the bound a slow daemon could break, by GW_TIMEOUT_SCALE.
# Not under valgrind: what a test runs with fx_run() rather than the fixture's daemon start
# (sensorgwd --check-config in integration-spine and -perms, and the daemon refusing to start
# on unsafe permissions in -perms), and the registration code that integration-tencent-register
# runs in the test process itself. integration-fixture and -decode start no daemon.
# Ends with one line: "valgrind: N runs (C checked at exit), E errors, L definitely lost, F leaked
# fds" (L in bytes); a daemon a test SIGKILLs on purpose is a run not checked at exit.
# VALGRIND_KEEP=1 keeps the logs (vg.PID) even when all is well.
set -u
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(--suite integration)

command -v valgrind >/dev/null || { echo "valgrind: not installed"; exit 1; }
[ -f "$dir/build.ninja" ] || { echo "valgrind: $dir is not a meson build directory"; exit 1; }
# ASan and valgrind do not mix: the sanitizer runtime refuses to start under valgrind.
if grep -q 'fsanitize=address' "$dir/build.ninja"; then
	echo "valgrind: $dir is an ASan build; use a plain one"
	exit 1
fi
meson compile -C "$dir" >/dev/null || { echo "valgrind: build $dir failed"; exit 1; }

logs=$(mktemp -d /tmp/sensorgw-vg.XXXXXX)
# --errors-for-leak-kinds: a leak counts as an error, so the exit code 99 fails the test
# that stops the daemon (they all check for exit status 0) besides the log check below.
# --trace-children: integration-notify starts the daemon through a shell script that execs
# it (to learn its pid); without it the daemon would run after the exec outside valgrind.
# sensorgwd itself never execs anything.
export GW_DAEMON_WRAPPER="valgrind --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --track-fds=yes --trace-children=yes --error-exitcode=99 --log-file=$logs/vg.%p"
export GW_TIMEOUT_SCALE=${GW_TIMEOUT_SCALE:-10}
export CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-4}
rc=0
meson test -C "$dir" --print-errorlogs --num-processes 1 --timeout-multiplier 4 "${tests[@]}" || rc=1

runs=0 checked=0 errors=0 lost=0 fds=0
for f in "$logs"/vg.*; do
	[ -e "$f" ] || continue
	runs=$((runs + 1))
	# a daemon that a test SIGKILLs on purpose never gets to valgrind's exit checks
	grep -q 'HEAP SUMMARY' "$f" && checked=$((checked + 1))
	e=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$f" | tr -d , | tail -1)
	l=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$f" | tr -d , | tail -1)
	# --track-fds=yes lists every fd but 0-2 open at exit, each with where it was opened or
	# "<inherited from parent>": those the test process passed on (Check's temp file, the
	# test's own sockets) and valgrind's log file are not the daemon's to close.
	fd=$(awk '/== Open .* [0-9]+:/ { n++; getline; if ($0 ~ /inherited from parent/) n-- }
		END { print n + 0 }' "$f")
	errors=$((errors + ${e:-0}))
	lost=$((lost + ${l:-0}))
	fds=$((fds + fd))
	if [ "${e:-0}" != 0 ] || [ "${l:-0}" != 0 ] || [ "$fd" != 0 ] ||
		grep -q 'Invalid \|uninitialised\|Mismatched\|are definitely lost\|are indirectly lost' "$f"; then
		echo "---- $f"
		cat "$f"
		rc=1
	fi
done
# Some tests never start the daemon (integration-fixture, -decode, -tencent-register): alone
# they leave no log. A whole run without one means the wrapper was not used.
if [ $runs = 0 ]; then
	echo "valgrind: no daemon ran under valgrind (no logs in $logs)"
	[ $# -gt 0 ] || rc=1
fi
echo "valgrind: $runs runs ($checked checked at exit), $errors errors, $lost definitely lost, $fds leaked fds"
if [ $rc = 0 ] && [ -z "${VALGRIND_KEEP:-}" ]; then
	rm -rf "$logs"
else
	echo "valgrind: logs kept in $logs"
fi
exit $rc
