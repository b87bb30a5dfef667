#!/bin/bash
# Builds sensorgw twice (plain, and with ASan+UBSan) and runs every test in both builds, then
# builds the Debian package (tools/build-deb.sh, into build-test-deb/) and boots it in a Debian
# 12 VM under a real systemd (tools/vm-test.sh; --full: also an arm64 VM), runs the tests of the
# arm64 and armhf builds under qemu-user and builds their packages (needs
# `tools/install-deps.sh --cross`), then static analysis, valgrind, failmalloc and fuzzing.
# Ends with Check's summary lines and one "N passed, N failed" line; the package build counts
# as one check there.
set -u
cd "$(dirname "$0")/.."
rc=0
summary=()
for variant in plain asan; do
	dir=build-test-$variant
	# Warnings are errors here (and so in CI), not in the project's defaults: see meson.build.
	opts=(-Dwerror=true)
	[ "$variant" = asan ] && opts+=(-Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fno-sanitize-recover=all)
	if [ ! -d "$dir" ]; then
		meson setup "$dir" "${opts[@]}" >/dev/null || { echo "meson setup $dir failed"; exit 1; }
	else
		# a directory set up by hand may lack it
		meson configure "$dir" -Dwerror=true >/dev/null ||
			{ echo "meson configure $dir failed"; exit 1; }
	fi
	meson compile -C "$dir" || { echo "build $dir failed"; exit 1; }
	# The ASan+UBSan run is also the secret canary run (tests/lib/fixture.h): every
	# secret the integration tests hand the daemon or a test cloud issues contains a fresh
	# random token, which must then appear nowhere in the daemon's output, argv, environment,
	# state files or core files. The plain run keeps the fixed test secrets.
	canary=()
	[ "$variant" = asan ] && canary=(GW_CANARY="CANARY$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')")
	# Sanitizer reports must fail the test that triggers them.
	env "${canary[@]}" UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
		meson test -C "$dir" --print-errorlogs --num-processes 2 || rc=1
	# The canary's figure over every test process; no place searched at all fails as a hit.
	if [ "$variant" = asan ]; then
		read -r places hits procs < <(
			grep -hoE '^Secret canary: [0-9]+ places searched, [0-9]+ hits' \
				"$dir/meson-logs/testlog.txt" |
				awk '{ p += $3; h += $6; n++ } END { print p + 0, h + 0, n + 0 }')
		echo "Secret canary: $places places searched, $hits hits in $procs test processes"
		if [ "$places" -gt 0 ] && [ "$hits" = 0 ]; then
			summary+=("canary: 100%: Checks: 1, Failures: 0, Errors: 0")
		else
			summary+=("canary: 0%: Checks: 1, Failures: 1, Errors: 0")
			rc=1
		fi
	fi
	while IFS= read -r l; do summary+=("$variant: $l"); done < <(
		grep -hE '^[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' \
			"$dir/meson-logs/testlog.txt")
done
# An optimised build must be warning-free too (-O3 finds uninitialised paths -O0 does not).
if [ ! -d build-test-release ]; then
	meson setup build-test-release --buildtype=release -Dwerror=true >/dev/null ||
		{ echo "meson setup build-test-release failed"; exit 1; }
else
	meson configure build-test-release -Dwerror=true >/dev/null ||
		{ echo "meson configure build-test-release failed"; exit 1; }
fi
meson compile -C build-test-release >/dev/null || { echo "release build failed"; rc=1; }
# The package: one check, in Check's summary format so that it is counted with the rest.
if tools/build-deb.sh build-test-deb; then
	summary+=("deb: 100%: Checks: 1, Failures: 0, Errors: 0")
else
	summary+=("deb: 0%: Checks: 1, Failures: 1, Errors: 0")
	rc=1
fi
# The Raspberry Pi architectures (tools/install-deps.sh --cross): the unit, component and
# spine/uplink/cloud integration tests of an arm64 and an armhf build under qemu-user
# (tools/cross-test.sh, one check per test there), and each one's package, one check each.
for a in arm64 armhf; do
	mkdir -p "build-test-$a"
	log=build-test-$a/cross-test.log
	tools/cross-test.sh "$a" >"$log" 2>&1
	cross_rc=$?
	grep -E '^ *[0-9]+/[0-9]+ .* (FAIL|TIMEOUT|ERROR)|^cross ' "$log"
	[ $cross_rc = 0 ] || tail -n 60 "$log"
	read -r n f < <(sed -n 's/^cross [a-z0-9]*: \([0-9]*\) tests, \([0-9]*\) failed.*/\1 \2/p' \
		"$log")
	if [ $cross_rc != 0 ] || [ -z "${n:-}" ] || [ "$n" = 0 ]; then
		[ "${f:-0}" -gt 0 ] || f=1
		summary+=("cross $a: 0%: Checks: $((${n:-0} > f ? ${n:-0} : f)), Failures: $f, Errors: 0")
		rc=1
	else
		summary+=("cross $a: 100%: Checks: $n, Failures: $f, Errors: 0")
	fi
	if tools/build-deb.sh --arch "$a" build-test-deb; then
		summary+=("deb $a: 100%: Checks: 1, Failures: 0, Errors: 0")
	else
		summary+=("deb $a: 0%: Checks: 1, Failures: 1, Errors: 0")
		rc=1
	fi
done
# The package under a real systemd (tools/vm-test.sh, docs/vm-test.md): a Debian 12 amd64 guest
# under QEMU installs that package and checks the service; one check per "vm-check" line, and
# one failed check when the guest could not be driven at all. --full adds the arm64 guest
# (under TCG on this machine, about four times slower: outside CI's time).
vm_arches=(amd64)
[ "${1:-}" = --full ] && vm_arches+=(arm64)
for a in "${vm_arches[@]}"; do
	log=build-test-deb/vm-test-$a.log
	tools/vm-test.sh --arch "$a" --deb build-test-deb --build build-test-plain >"$log" 2>&1
	vm_rc=$?
	grep -E '^(vm|vm-test): |^vm-check ' "$log"
	[ $vm_rc = 0 ] || tail -n 40 "$log"
	n=$(grep -c '^vm-check ' "$log")
	f=$(grep -c '^vm-check .*: FAIL' "$log")
	if [ "$n" = 0 ] || { [ $vm_rc != 0 ] && [ "$f" = 0 ]; }; then
		n=$((n + 1)) f=$((f + 1))
	fi
	summary+=("vm $a: $(((n - f) * 100 / n))%: Checks: $n, Failures: $f, Errors: 0")
	[ "$f" = 0 ] || rc=1
done
# Static analysis (cppcheck, gcc -fanalyzer, clang-tidy), the daemon under valgrind memcheck
# in every integration test (about 8 min on 2 cores), and the malloc-failure pass: one check
# each.
for step in "static-analysis:tools/static-analysis.sh" "valgrind:tools/valgrind.sh build-test-plain" \
	"failmalloc:tools/failmalloc.sh build-test-plain"; do
	if ${step#*:}; then
		summary+=("${step%%:*}: 100%: Checks: 1, Failures: 0, Errors: 0")
	else
		summary+=("${step%%:*}: 0%: Checks: 1, Failures: 1, Errors: 0")
		rc=1
	fi
done
# The fuzz targets (clang + libFuzzer), each for FUZZ_SECONDS (default 60); one check each.
# Their seed corpora are already replayed by both builds above (tests fuzz-*).
fuzz_out=build-fuzz/fuzz-out
rm -rf "$fuzz_out"
tools/fuzz.sh "${FUZZ_SECONDS:-60}" "$fuzz_out"
fuzz_rc=$?
for rcf in "$fuzz_out"/*.rc; do
	[ -e "$rcf" ] || continue
	t=$(basename "$rcf" .rc)
	if [ "$(cat "$rcf")" = 0 ] && [ -z "$(ls -A "$fuzz_out/crashes-$t" 2>/dev/null)" ]; then
		summary+=("fuzz $t: 100%: Checks: 1, Failures: 0, Errors: 0")
	else
		summary+=("fuzz $t: 0%: Checks: 1, Failures: 1, Errors: 0")
	fi
done
if [ $fuzz_rc != 0 ] || ! ls "$fuzz_out"/*.rc >/dev/null 2>&1; then
	summary+=("fuzz: 0%: Checks: 1, Failures: 1, Errors: 0")
	rc=1
fi
printf '%s\n' "${summary[@]}"
printf '%s\n' "${summary[@]}" | awk -F'[ ,]+' '
	{ for (i = 1; i <= NF; i++) { if ($i == "Checks:") c += $(i+1); if ($i == "Failures:") f += $(i+1); if ($i == "Errors:") e += $(i+1) } }
	END { printf "%d passed, %d failed\n", c - f - e, f + e }'
exit $rc
