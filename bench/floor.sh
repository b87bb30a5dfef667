#!/bin/bash
# SPDX-License-Identifier: MIT
# The floor under any bridge's CPU per frame on this machine (issue 18): bench-floor
# (bench/floor.c) waits on a pty, reads and sends each read over loopback TCP to a sink that
# reads and drops, nothing else, while a writer puts 360 lines a second (62 bytes, like
# bench-loadgen's) into the pty for 12 s. perf stat counts its task-clock, context switches and
# system calls over 8 s; printed per frame, once reading at every wake-up (--window 0) and once
# sleeping 4 ms after each (sensorgwd's default batch window).
#
#   bench/floor.sh [BUILD_DIR]
#
# BUILD_DIR defaults to build-release. Needs perf (linux-perf) and /usr/bin/python3.
set -u
cd "$(dirname "$0")/.." || exit 1
build=${1:-build-release}
ninja -C "$build" bench/bench-floor >/dev/null || { echo "floor.sh: build failed" >&2; exit 1; }
floor=$PWD/$build/bench/bench-floor
T=$(mktemp -d /tmp/sensorgw-floor.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
port=19900
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
cat >"$T/sink.py" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
while True:  # the first client is floor.sh's readiness probe
    c, _ = s.accept()
    while c.recv(65536):
        pass
EOF
cat >"$T/writer.py" <<'EOF'
import os, sys, time
m, s = os.openpty()
os.symlink(os.ttyname(s), sys.argv[1])
t0 = time.monotonic() + 1.0
for i in range(360 * 12):
    d = t0 + i / 360.0 - time.monotonic()
    if d > 0:
        time.sleep(d)
    os.write(m, b"i=%06d,MQ2=123,MQ135=456,MQ4=789,MQ7=321,temp=23.5,hum=45\r\n" % i)
EOF

for window in 0 4; do
	/usr/bin/python3 "$T/sink.py" "$port" &
	pids+=($!)
	/usr/bin/python3 "$T/writer.py" "$T/tty$window" &
	pids+=($!)
	for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
	"$floor" --window "$window" "$T/tty$window" "$port" &
	fp=$!
	pids+=($fp)
	sleep 2
	perf stat -x, -e task-clock,context-switches,raw_syscalls:sys_enter -p "$fp" -- sleep 8 \
		2>"$T/stat$window"
	awk -F, -v w="$window" '
		$3 == "task-clock" { ms = $1 } $3 == "context-switches" { cs = $1 }
		$3 == "raw_syscalls:sys_enter" { sc = $1 }
		END { n = 360 * 8; printf "bench-floor --window %s: %.1f µs CPU, %.2f context switches, %.2f system calls per frame\n", w, ms * 1000 / n, cs / n, sc / n }' "$T/stat$window"
	kill "$fp" 2>/dev/null
	port=$((port + 1))
done
