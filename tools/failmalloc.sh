#!/bin/bash
# SPDX-License-Identifier: MIT
# Malloc-failure pass (docs/reliability.md, "Hardening"): runs programs of a plain build once
# per allocation they make, each time with exactly that one allocation failing
# (tests/helpers/failmalloc.c, preloaded), and judges every run against a run where nothing
# fails. A run passes when
#   - it ends exactly as the reference run (same exit status, stdout and stderr): the failure
#     was absorbed (e.g. stdio works unbuffered), or
#   - it fails with a status other than 0 and says so on stderr with "memory" ("Cannot
#     allocate memory", or "out of memory", after which an allocation helper aborts on
#     purpose: the daemon is then restarted by systemd, and nothing spooled is lost), or
#     "libcrypto cannot" (HMAC() fails without saying why; the error names the step).
# Anything else is a finding: a crash, a success with other output, or an error that blames
# something else (a failed allocation once read as the end of the config file, and the rest of
# the file was silently dropped).
#
# usage: tools/failmalloc.sh [BUILD_DIR]   (a plain build, default build/)
# Programs: sensorgwd --check-config (the example config, a config with every uplink type and
# secret files, a bad config), sensorgwctl sign aliyun|tencent, and every fuzz target's replay
# binary over its committed corpus (frame decoders, config loader, downlink and registration
# parsers, spool reader, control requests).
# Ends with "malloc failures: R runs over P programs, A absorbed, E refused with an error, F
# findings".
set -u
cd "$(dirname "$0")/.."
root=$PWD
dir=${1:-build}
[ -f "$dir/build.ninja" ] || { echo "failmalloc: $dir is not a meson build directory"; exit 1; }
if grep -q 'fsanitize=address' "$dir/build.ninja"; then
	echo "failmalloc: $dir is an ASan build (it has its own allocator); use a plain one"
	exit 1
fi
meson compile -C "$dir" >/dev/null || { echo "failmalloc: build $dir failed"; exit 1; }
lib=$root/$dir/tests/failmalloc.so
[ -f "$lib" ] || { echo "failmalloc: $lib missing (tests disabled?)"; exit 1; }

work=$(mktemp -d /tmp/sensorgw-failmalloc.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 700 "$work"
printf 'testDeviceSecret456\n' >"$work/ds"
printf 'testProductSecret123\n' >"$work/ps"
printf 'IyXmUW5sU/q1vnb5yzTkeQ==\n' >"$work/psk"
printf 'mqtt-password\n' >"$work/pw"
chmod 600 "$work"/ds "$work"/ps "$work"/psk "$work"/pw
cat >"$work/all.conf" <<EOF
[gateway]
state_dir = $work/state
device_name = dev-{port}-{addr}

[port n1]
path = /dev/ttyS1
framing = text

[port n2]
path = /dev/ttyS2
framing = binary

[uplink local]
type = mqtt
host = localhost
port = 8883
username = gw
password_file = $work/pw
topic = sensors/{device}/{kind}

[uplink ali]
type = aliyun
product_key = a1TestProd01
auth = register
product_secret_file = $work/ps
ca_file = $root/conf/ca/aliyun-iot-roots.pem

[uplink tc]
type = tencent
product_id = CS0SLTKSYA
auth = register
product_secret_file = $work/ps
ca_file = $root/conf/ca/tencent-iot-roots.pem

[map MQ2]
identifier = smoke
EOF
chmod 600 "$work/all.conf"
cat >"$work/bad.conf" <<EOF
[gateway]
state_dir = $work/state
colour = blue

[port n1]
path = /dev/ttyS1
baud = 12345
EOF
chmod 600 "$work/bad.conf"

runs=0 programs=0 absorbed=0 refused=0 findings=0

# sweep NAME CMD...: every allocation of CMD fails once
sweep() {
	local name=$1 total rc ref_rc n out err
	shift
	programs=$((programs + 1))
	"$@" >"$work/ref.out" 2>"$work/ref.err"
	ref_rc=$?
	if [ "${expect_rc:-0}" != $ref_rc ]; then
		echo "failmalloc: $name: exit $ref_rc without any failure, expected ${expect_rc:-0}:"
		sed 's/^/    /' "$work/ref.err"
		findings=$((findings + 1))
		return
	fi
	total=$(FAILMALLOC_COUNT=1 LD_PRELOAD=$lib "$@" 2>&1 >/dev/null |
		sed -n 's/^failmalloc: calls //p' | tail -1)
	if [ -z "$total" ]; then
		echo "failmalloc: $name: the preload did not report (not dynamically linked?)"
		findings=$((findings + 1))
		return
	fi
	local a=0 e=0 f=0
	# the shell's "Aborted" notes for the aborts on purpose go to /dev/null with the loop's stderr
	for n in $(seq 1 "$total"); do
		# in a subshell, so that bash does not report the aborts on purpose
		FAILMALLOC_NTH=$n LD_PRELOAD=$lib "$@" >"$work/out" 2>"$work/err"
		rc=$?
		runs=$((runs + 1))
		if [ $rc = $ref_rc ] && cmp -s "$work/out" "$work/ref.out" &&
			cmp -s "$work/err" "$work/ref.err"; then
			a=$((a + 1))
		elif [ $rc != 0 ] && { [ $rc -lt 128 ] || [ $rc = 134 ]; } &&
			grep -qiE 'memory|libcrypto cannot' "$work/err"; then
			e=$((e + 1))
		else
			f=$((f + 1))
			[ $f -le 5 ] || continue
			echo "failmalloc: $name: allocation $n of $total failed -> exit $rc" \
				"(reference $ref_rc); stderr:"
			head -5 "$work/err" | sed 's/^/    /'
			echo "    (FAILMALLOC_NTH=$n FAILMALLOC_BACKTRACE=1 LD_PRELOAD=$lib $* shows where)"
		fi
	done 2>/dev/null
	printf '%-28s %6s allocations: %6s absorbed, %6s refused, %3s findings\n' \
		"$name" "$total" "$a" "$e" "$f"
	absorbed=$((absorbed + a))
	refused=$((refused + e))
	findings=$((findings + f))
}

sweep check-config-example "$dir/src/sensorgwd" --check-config -c conf/sensorgw.conf
sweep check-config-all "$dir/src/sensorgwd" --check-config -c "$work/all.conf"
expect_rc=78 sweep check-config-bad "$dir/src/sensorgwd" --check-config -c "$work/bad.conf"
sweep sign-aliyun "$dir/tools/sensorgwctl" sign aliyun --product-key a1TestProd01 \
	--device-name dev1 --device-secret-file "$work/ds" --timestamp 1700000000000
sweep sign-tencent "$dir/tools/sensorgwctl" sign tencent --product-id CS0SLTKSYA \
	--device-name dev1 --psk-file "$work/psk" --connid abcde --expiry 2147483647
for t in frame-binary frame-text config aliyun-downlink tencent-downlink aliyun-register \
	tencent-register spool control thingmodel; do
	sweep "replay $t" "$dir/fuzz/fuzz-replay-$t" "fuzz/corpus/$t"
done
echo "malloc failures: $runs runs over $programs programs, $absorbed absorbed," \
	"$refused refused with an error, $findings findings"
[ $findings = 0 ]
