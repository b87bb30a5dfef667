#!/bin/bash
# SPDX-License-Identifier: MIT
# The other bridge users write by hand, for bench/perf.sh to compare with: a shell loop that
# reads text frames from the tty and runs mosquitto_pub once per line (QoS 1).
#   bench/shbridge.sh TTY PORT
tty=$1
port=$2
# bench-loadgen makes the pty once it is started, which may be after us: up to 10 s
for _ in $(seq 100); do [ -e "$tty" ] && break; sleep 0.1; done
stty -F "$tty" raw -echo 115200 2>/dev/null
while IFS= read -r line; do
	line=${line%$'\r'}
	params="\"${line//=/\":}"
	params=${params//,/,\"}
	json="{\"device\":\"sh\",\"params\":{$params}}"
	mosquitto_pub -h 127.0.0.1 -p "$port" -q 1 -t shbench/sh/telemetry -m "$json"
done <"$tty"
