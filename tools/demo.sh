#!/bin/bash
# The sensorgw demo: a local mosquitto on 127.0.0.1, a simulated STM32 node on a pty
# (sensorgw-sim), sensorgwd between them, and a subscriber printing the JSON that arrives.
# Ctrl-C stops all of it. Usage: tools/demo.sh [BUILD_DIR] [text|binary]
set -u
build=${1:-build}
framing=${2:-binary}
for b in "$build/src/sensorgwd" "$build/tools/sensorgw-sim"; do
	[ -x "$b" ] || { echo "demo: $b not found; build first: meson setup $build && meson compile -C $build" >&2; exit 1; }
done
command -v mosquitto >/dev/null || PATH=$PATH:/usr/sbin
command -v mosquitto >/dev/null || { echo "demo: mosquitto not installed (tools/install-deps.sh)" >&2; exit 1; }

T=$(mktemp -d /tmp/sensorgw-demo.XXXXXX)
pids=()
cleanup() {
	trap - INT TERM EXIT
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$T"
	echo "demo: stopped"
	exit 0
}
trap cleanup INT TERM EXIT

# A free port on 127.0.0.1: the first that nothing answers on.
port=18830
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done

cat > "$T/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
CONF
mosquitto -c "$T/mosquitto.conf" 2>"$T/mosquitto.log" &
pids+=($!)
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

"$build/tools/sensorgw-sim" --pty --link "$T/tty-sim" --framing "$framing" --rate 2 \
	--uid 0123456789abcdef01234567 >"$T/sim.out" 2>"$T/sim.log" &
pids+=($!)
for _ in $(seq 50); do [ -e "$T/tty-sim" ] && break; sleep 0.1; done

umask 077
cat > "$T/sensorgw.conf" <<CONF
[gateway]
state_dir = $T/state
device_name = stm32-{uid}

[port sim]
path = $T/tty-sim
baud = 115200
framing = $framing

[uplink local]
type = mqtt
host = 127.0.0.1
port = $port
qos = 1
topic = sensorgw/{device}/{kind}
CONF

echo "demo: mosquitto on 127.0.0.1:$port, simulated node on $(cat "$T/sim.out"), config $T/sensorgw.conf"
echo "demo: sensorgwd log lines go to $T/sensorgwd.log; JSON from the broker follows (Ctrl-C stops)"
"$build/src/sensorgwd" -c "$T/sensorgw.conf" 2>"$T/sensorgwd.log" &
pids+=($!)
mosquitto_sub -h 127.0.0.1 -p "$port" -t 'sensorgw/#' -v -q 1 &
pids+=($!)
wait -n "${pids[@]}"
echo "demo: a component exited; its log:" >&2
tail -n 5 "$T"/*.log >&2
