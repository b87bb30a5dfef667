#!/bin/bash
# Builds sensorgw for a Raspberry Pi architecture with the cross file in tools/cross/ and runs
# its tests there under qemu-user: every unit and component test, and the integration tests
# named below, with the emulated sensorgwd, sensorgwctl and sensorgw-sim against the build
# machine's own mosquitto and test clouds. Needs what `tools/install-deps.sh --cross` installs,
# and root the first time, to register qemu-user with binfmt_misc (the tests start foreign
# programs themselves; meson's exe_wrapper only covers the test programs it starts).
# Usage: tools/cross-test.sh arm64|armhf [BUILDDIR]      (default: build-test-ARCH)
# Ends with "cross ARCH: N tests, N failed, S s" and exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
case "${1:-}" in
arm64) triplet=aarch64-linux-gnu q=aarch64 ;;
armhf) triplet=arm-linux-gnueabihf q=arm ;;
*)
	echo "usage: $0 arm64|armhf [BUILDDIR]" >&2
	exit 2
	;;
esac
arch=$1
dir=${2:-build-test-$arch}
# The integration tests that run emulated: the spine (serial -> spool -> MQTT), the spool's
# durability under restarts and a full disk (uplink), and both clouds' uplinks end to end.
integration=(integration-spine integration-uplink integration-aliyun integration-tencent)

for c in "$triplet-gcc" "$triplet-pkg-config" "qemu-$q-static"; do
	command -v "$c" >/dev/null ||
		{ echo "cross-test: no $c: run sudo tools/install-deps.sh --cross" >&2; exit 1; }
done
binfmt=/proc/sys/fs/binfmt_misc
if ! grep -qx enabled "$binfmt/qemu-$q" 2>/dev/null; then
	[ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt" ||
		{ echo "cross-test: cannot mount binfmt_misc (needs root)" >&2; exit 1; }
	# qemu-user-static's own registration line (flag F: the interpreter is opened now, so it
	# also works inside the tests' mount namespaces)
	grep -v '^#' "/usr/lib/binfmt.d/qemu-$q.conf" >"$binfmt/register" ||
		{ echo "cross-test: cannot register qemu-$q with binfmt_misc (needs root)" >&2; exit 1; }
fi

start=$(date +%s)
if [ ! -f "$dir/build.ninja" ]; then
	meson setup "$dir" --cross-file "tools/cross/$triplet.ini" -Dwerror=true >/dev/null ||
		{ echo "cross-test: meson setup $dir failed" >&2; exit 1; }
fi
meson compile -C "$dir" >/dev/null || { meson compile -C "$dir" 2>&1 | tail -30; exit 1; }
# The test programs themselves through the exe wrapper; what they start, through binfmt_misc.
"$dir/src/sensorgwd" --version || { echo "cross-test: $dir/src/sensorgwd does not run" >&2; exit 1; }
# What differs under emulation: tests/helpers/emulated.h.
export GW_TEST_EMULATED=1
rc=0
n=0
failed=0
# meson test takes either suites or names in one run, not both.
for sel in "--suite unit --suite component" "${integration[*]}"; do
	# shellcheck disable=SC2086 # the selection is words
	meson test -C "$dir" --print-errorlogs --num-processes 2 --timeout-multiplier 4 $sel \
		>"$dir/cross-test.out" 2>&1 || rc=1
	cat "$dir/cross-test.out"
	read -r a b < <(awk '$1 == "Ok:" { ok = $2 } $1 == "Fail:" || $1 == "Timeout:" { f += $2 }
		END { print ok + f, f + 0 }' "$dir/cross-test.out")
	n=$((n + a))
	failed=$((failed + b))
done
echo "cross $arch: $n tests, $failed failed, $(($(date +%s) - start)) s"
exit $rc
