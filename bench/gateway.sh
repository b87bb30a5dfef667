#!/bin/bash
# SPDX-License-Identifier: MIT
# Gateway topology figures (issue 17), each from a real run on this machine: the Aliyun test
# cloud (tests/cloud/aliyun_cloud.py) on 127.0.0.1 over TLS with a CA made here, 200 simulated
# binary nodes at 1 frame/s each (4 sensorgw-sim buses of 50 on ptys), and the real sensorgwd
# with one aliyun uplink, once with topology = direct (a session per node) and once with
# topology = gateway (one gateway session carrying every node as a sub-device). The nodes'
# DeviceSecrets are provisioned into the credential store beforehand (auth = device-secret), so
# registration is not measured; one extra start with nothing provisioned (auth = register,
# thing/sub/register over the gateway's session) is timed on its own line.
#
# For each case: time from the daemon's start to every node's device "online" in
# `sensorgwctl status --json` (polled every 100 ms) and the daemon's CPU time by then, MQTT
# sessions at the cloud (live sessions and CONNACK 0s from its control API), the gateway's
# requests (the cloud's gw_request events), and once the start-up backlog has drained, over a
# steady window: CPU (utime + stime from /proc/PID/stat) per record acknowledged (the uplink's
# acked counter), VmRSS, RssAnon and VmHWM at its end. The 1-node gateway run is the RSS
# baseline. The 200-node gateway run then has its session cut by the cloud (kick) and the
# daemon restarted, each timed to all online again.
#
#   bench/gateway.sh [--write-docs] [--steady S] [BUILD_DIR [CASE...]]
#
# BUILD_DIR defaults to build-release (set up with --buildtype=release when missing). CASE is
# gw1 (gateway, 1 node), gw200 (gateway, 4 x 50 nodes), direct200 (direct, 4 x 50 nodes) and
# register (gateway, 4 x 50 nodes, auth = register, start-up only): all four by default; gw200x1
# (gateway, 200 nodes on one bus) and gw4x1 (gateway, 4 buses of 1 node) separate the ports'
# memory from the nodes'. --steady sets the window (default 30 s; the four cases then take
# about 5 minutes, most of it the start-ups). --write-docs (all four cases only) puts the
# tables into docs/benchmarks.md between the gateway:begin/end markers (appended when they are
# missing). GW_BENCH_KEEP=1 keeps the temporary directory (logs, the cloud's events.jsonl).
# Needs openssl, curl and /usr/bin/python3 (the test cloud uses only its standard library).
set -u
cd "$(dirname "$0")/.." || exit 1
root=$PWD
cmdline="bench/gateway.sh $*"
write_docs=0
steady=30
while [ $# -gt 0 ]; do
	case $1 in
	--write-docs) write_docs=1 ;;
	--steady)
		steady=${2:-}
		shift
		;;
	-*)
		echo "usage: bench/gateway.sh [--write-docs] [--steady S] [BUILD_DIR [CASE...]]" >&2
		exit 2
		;;
	*) break ;;
	esac
	shift
done
case $steady in '' | *[!0-9]*)
	echo "gateway.sh: --steady takes whole seconds" >&2
	exit 2
	;;
esac
build=${1:-build-release}
shift || true
cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=(gw1 gw200 direct200 register)
[ -d "$build" ] || meson setup "$build" --buildtype=release >/dev/null ||
	{ echo "gateway.sh: meson setup $build failed" >&2; exit 1; }
ninja -C "$build" src/sensorgwd tools/sensorgw-sim tools/sensorgwctl >/dev/null ||
	{ echo "gateway.sh: build in $build failed" >&2; exit 1; }
gwd=$root/$build/src/sensorgwd
sim=$root/$build/tools/sensorgw-sim
ctl=$root/$build/tools/sensorgwctl
py=/usr/bin/python3

PK=a1BenchSub01  # the nodes' (sub-devices') product
GW_PK=a1BenchGw001 # the gateway product
GW_DN=bench-gw
GW_DS=benchGatewaySecret0001
BUSES=4
PER_BUS=50
NODES=$((BUSES * PER_BUS))

T=$(mktemp -d /tmp/sensorgw-gwbench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "${GW_BENCH_KEEP:-0}" = 1 ]; then echo "gateway.sh: kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# --- a CA and a server certificate for localhost / 127.0.0.1, as the tests make them ---
bash "$root/bench/mkpki.sh" "$T/pki" || exit 1
umask 077
printf '%s\n' "$GW_DS" >"$T/gateway.secret"

# The device names the daemon gives the nodes: device_name = {port}-{addr}, ports b1..b4,
# addresses 1..50.
node_names() { # nbuses pernode
	local b a
	for b in $(seq "$1"); do for a in $(seq "$2"); do echo "b$b-$a"; done; done
}
secret_of() { echo "benchDS${1//-/x}00000000"; }

# Products file: the gateway product with its device, the nodes' product with every node of
# the case pre-registered, with its DeviceSecret (with_secrets=1) or without (auth = register).
products() { # with_secrets nbuses pernode
	local with=$1 first=1 dn
	printf '{"products": [{"productKey": "%s", "productSecret": "benchGwProductSecret1", "gateway": true, "devices": [{"deviceName": "%s", "deviceSecret": "%s"}]},\n' \
		"$GW_PK" "$GW_DN" "$GW_DS"
	printf ' {"productKey": "%s", "productSecret": "benchProductSecret01", "dynamicRegistration": true, "devices": [' "$PK"
	for dn in $(node_names "$2" "$3"); do
		[ $first = 1 ] || printf ','
		first=0
		if [ "$with" = 1 ]; then
			printf '{"deviceName": "%s", "deviceSecret": "%s"}' "$dn" "$(secret_of "$dn")"
		else
			printf '"%s"' "$dn"
		fi
	done
	printf ']}]}\n'
}

start_cloud() { # case with_secrets nbuses pernode
	local d=$T/$1/cloud
	mkdir -p "$d"
	products "$2" "$3" "$4" >"$d/products.json"
	"$py" "$root/tests/cloud/aliyun_cloud.py" --dir "$d" --cert "$T/pki/server.crt" \
		--key "$T/pki/server.key" --products "$d/products.json" >"$T/$1/cloud.log" 2>&1 &
	cloud_pid=$!
	pids+=("$cloud_pid")
	for _ in $(seq 100); do [ -s "$d/ports.json" ] && break; sleep 0.05; done
	[ -s "$d/ports.json" ] || { echo "gateway.sh: the test cloud did not start ($T/$1/cloud.log)" >&2; cat "$T/$1/cloud.log" >&2; exit 1; }
	mqtts=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["mqtts"])' "$d/ports.json")
	control=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["control"])' "$d/ports.json")
}

stop_cloud() {
	curl -s -m 5 -d '{}' "http://127.0.0.1:$control/shutdown" >/dev/null
	wait "$cloud_pid" 2>/dev/null
}

cloud_ctl() { # command json
	curl -s -m 30 -d "$2" "http://127.0.0.1:$control/$1"
}

# Writes each node's DeviceSecret into the daemon's credential store in its format
# (docs/credentials.md: one JSON line, CRC-32C over the bytes before ,"crc32c"), as
# docs/aliyun.md "Provisioning a DeviceSecret" does.
provision() { # store_dir names...
	local dir=$1 dn
	shift
	for dn in "$@"; do printf '%s %s\n' "$dn" "$(secret_of "$dn")"; done >"$T/secrets.list"
	"$py" "$root/bench/provision_aliyun.py" "$dir" "$PK" "$T/secrets.list"
}

gw_config() { # case nbuses topology auth
	local c=$T/$1 b
	printf '[gateway]\nstate_dir = %s/state\ncontrol_socket = %s/control\n' "$c" "$c"
	printf 'device_name = {port}-{addr}\nmax_nodes = 256\n\n'
	for b in $(seq "$2"); do printf '[port b%s]\npath = %s/tty-b%s\nframing = binary\n\n' "$b" "$c" "$b"; done
	printf '[uplink ali]\ntype = aliyun\nproduct_key = %s\nhost = localhost\nport = %s\n' "$PK" "$mqtts"
	printf 'ca_file = %s/pki/ca.crt\nkeepalive = 60\nmax_devices = 256\nauth = %s\n' "$T" "$4"
	if [ "$3" = gateway ]; then
		printf 'topology = gateway\ngateway_product_key = %s\ngateway_device_name = %s\n' "$GW_PK" "$GW_DN"
		printf 'gateway_secret_file = %s/gateway.secret\n' "$T"
	fi
}

start_sims() { # case nbuses pernode
	local c=$T/$1 b
	for b in $(seq "$2"); do
		"$sim" --pty --link "$c/tty-b$b" --framing binary --nodes "$3" --addr 1 --rate "$3" \
			--seed "$b" --uid "$(printf '0123456789abcdef0123%02x01' "$b")" \
			>/dev/null 2>>"$c/sim.log" &
		pids+=($!)
		sim_pids+=($!)
	done
	for b in $(seq "$2"); do
		for _ in $(seq 100); do [ -e "$c/tty-b$b" ] && break; sleep 0.05; done
		[ -e "$c/tty-b$b" ] || { echo "gateway.sh: sim $b did not start" >&2; exit 1; }
	done
}

# Other processes holding a simulator's pty open read frames meant for the daemon: another
# program's stale symlink can point at a pty number that was freed and given to a simulator
# here. Prints them (empty when none).
pty_intruders() { # case
	local c=$T/$1 b pts p fd
	for b in "$c"/tty-b*; do
		pts=$(readlink "$b") || continue
		for fd in /proc/[0-9]*/fd/*; do
			[ "$(readlink "$fd" 2>/dev/null)" = "$pts" ] || continue
			p=${fd#/proc/}
			p=${p%%/*}
			[ "$p" = "$gw_pid" ] && continue
			[[ " ${sim_pids[*]} " == *" $p "* ]] && continue
			echo "$pts held by pid $p ($(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null))"
		done
	done | sort -u
}

stop_sims() {
	local p
	for p in "${sim_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${sim_pids[@]}"; do wait "$p" 2>/dev/null; done
	sim_pids=()
}

start_gw() { # case -> gw_pid, t0
	t0=$(now_ms)
	"$gwd" -c "$T/$1/gw.conf" 2>>"$T/$1/sensorgwd.log" &
	gw_pid=$!
	pids+=("$gw_pid")
}

stop_gw() {
	kill -TERM "$gw_pid" 2>/dev/null
	wait "$gw_pid" 2>/dev/null
}

status_json() { "$ctl" status --json --socket "$T/$1/control" 2>/dev/null; }

# Polls the daemon's status every 100 ms until n devices of the uplink are "online" (or, with
# "drained", until nothing is queued or in flight); prints the ms since t0, or "timeout" with
# the sessions' states on stderr. The daemon must stay alive.
wait_status() { # case what n t0 timeout_s
	"$py" - "$ctl" "$T/$1/control" "$2" "$3" "$4" "$5" "$gw_pid" <<'EOF'
import collections, json, os, subprocess, sys, time
ctl, sock, what, n, t0, timeout, pid = sys.argv[1:8]
n, t0, end = int(n), int(t0), time.monotonic() + float(timeout)
last = None
while time.monotonic() < end:
    if not os.path.exists("/proc/%s" % pid):
        print("gateway.sh: sensorgwd exited", file=sys.stderr)
        break
    r = subprocess.run([ctl, "status", "--json", "--socket", sock], capture_output=True, text=True)
    if r.returncode == 0:
        try:
            u = json.loads(r.stdout)["uplinks"][0]
        except (ValueError, KeyError, IndexError):
            u = None
        if u is not None:
            last = u
            devs = u.get("devices", [])
            if what == "online":
                if sum(1 for d in devs if d.get("session") == "online") >= n:
                    print(int(time.time() * 1000) - t0)
                    sys.exit(0)
            elif u.get("queued", 0) + u.get("inflight", 0) <= max(2, n // 10):
                print(int(time.time() * 1000) - t0)
                sys.exit(0)
    time.sleep(0.1)
print("timeout")
if last:
    c = collections.Counter(d.get("session") for d in last.get("devices", []))
    print("gateway.sh: %s not reached: %d devices known, sessions %s, queued %s, gateway %s"
          % (what, len(last.get("devices", [])), dict(c), last.get("queued"),
             last.get("gateway")), file=sys.stderr)
EOF
}

# Reads fields of the uplink's status: "acked queued sessions online".
uplink_fields() { # case
	status_json "$1" | "$py" -c '
import json, sys
u = json.load(sys.stdin)["uplinks"][0]
print(u.get("acked"), u.get("queued"), u.get("sessions"), u.get("online"),
      u.get("counters", {}).get("deadlettered", 0), u.get("rejected", 0))'
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$gw_pid/stat"; }
vm_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$gw_pid/status"; }

# Sessions at the cloud: live now, CONNACK 0s since it started (over every device, the gateway
# included), and sub-devices logged in over a gateway.
cloud_sessions() {
	cloud_ctl devices '{}' | "$py" -c '
import json, sys
d = json.load(sys.stdin)["devices"]
live = sum(x.get("connected", 0) for x in d)
connacks = sum(x.get("connectCount", 0) for x in d)
logged = sum(1 for x in d if (x.get("subDevice") or {}).get("loggedIn"))
print(live, connacks, logged)'
}

cloud_seq() { cloud_ctl health '{}' | "$py" -c 'import json, sys; print(json.load(sys.stdin)["seq"])'; }

# The gateway's requests at the cloud since seq, by op: "topo/add R (E entries), ...".
gw_requests() { # since
	cloud_ctl log "{\"since\": $1, \"ev\": \"gw_request\", \"limit\": 1000000}" | "$py" -c '
import collections, json, sys
n, e, bad = collections.Counter(), collections.Counter(), collections.Counter()
for ev in json.load(sys.stdin)["events"]:
    op = {"batch_login": "login"}.get(ev["op"], ev["op"])
    n[op] += 1
    e[op] += ev.get("size") or 0
    if ev.get("code") != 200:
        bad[op] += 1
names = {"topo_add": "topo/add", "sub_register": "sub/register", "login": "login"}
print(", ".join("%s %d (%d entries%s)" % (names.get(op, op), n[op], e[op],
                                         ", %d refused" % bad[op] if bad[op] else "")
                for op in ("sub_register", "topo_add", "login") + tuple(sorted(set(n) - set(names)))
                if n[op]) or "none")'
}

declare -A fig
disturbed=
hz=$(getconf CLK_TCK)

# Cuts the gateway's session at the cloud (control API kick): the time to its next CONNACK 0
# and to every node online again, and the requests that took.
kick_gateway() { # case n
	local name=$1 s0 t ev_t ms
	s0=$(cloud_seq)
	t=$(now_ms)
	cloud_ctl kick "{\"productKey\": \"$GW_PK\", \"deviceName\": \"$GW_DN\"}" >/dev/null
	ev_t=$(cloud_ctl wait "{\"match\": {\"ev\": \"mqtt_connect\", \"deviceName\": \"$GW_DN\", \"rc\": 0}, \"since\": $s0, \"timeout\": 60}" |
		"$py" -c 'import json, sys; print(json.load(sys.stdin).get("event", {}).get("t", ""))')
	ms=$(wait_status "$name" online "$2" "$t" 120)
	fig[${name}_kick_connack]=$([ -n "$ev_t" ] && echo $((ev_t - t)) || echo "none")
	fig[${name}_kick]=$ms
	fig[${name}_kick_req]=$(gw_requests "$s0")
	echo "$name: gateway session cut: CONNACK 0 again after ${fig[${name}_kick_connack]} ms," \
		"$2 nodes online after $ms ms; ${fig[${name}_kick_req]}" >&2
}

check_ptys() { # case
	local intruders
	intruders=$(pty_intruders "$1")
	[ -z "$intruders" ] && return
	disturbed="${disturbed}$1: $intruders; "
	echo "gateway.sh: $1: another process reads a simulator's pty, the figures are void:" \
		"$intruders" >&2
}

# One measured case: cloud, credentials, sims, daemon; start-up, sessions, steady window, and
# for a gateway optionally a cut session and a restart.
run_case() { # name topology nbuses pernode auth steady(0/1) [kick] [restart]
	local name=$1 topo=$2 nb=$3 per=$4 auth=$5 measure=$6 n=$(($3 * $4))
	local c=$T/$1 ms drained a0 a1 c0 c1 q1 sess onl dl rej live connacks logged s0 extra
	local names
	shift 6
	mkdir -p "$c"
	sim_pids=()
	if [ "$auth" = device-secret ]; then
		start_cloud "$name" 1 "$nb" "$per"
	else
		start_cloud "$name" 0 "$nb" "$per"
	fi
	gw_config "$name" "$nb" "$topo" "$auth" >"$c/gw.conf"
	mapfile -t names < <(node_names "$nb" "$per")
	[ "$auth" = device-secret ] && provision "$c/state/credentials/ali" "${names[@]}"
	start_sims "$name" "$nb" "$per"
	start_gw "$name"
	ms=$(wait_status "$name" online "$n" "$t0" 180)
	fig[${name}_start]=$ms
	fig[${name}_startcpu]=$(awk -v t="$(cpu_ticks)" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')
	echo "$name: $n nodes online after $ms ms, sensorgwd's CPU time until then" \
		"${fig[${name}_startcpu]} s" >&2
	[ "$ms" = timeout ] && tail -20 "$c/sensorgwd.log" >&2
	check_ptys "$name"
	read -r live connacks logged < <(cloud_sessions)
	fig[${name}_live]=$live
	fig[${name}_connacks]=$connacks
	fig[${name}_logged]=$logged
	if [ "$topo" = gateway ]; then
		fig[${name}_req]=$(gw_requests 0)
		echo "$name: gateway requests: ${fig[${name}_req]}" >&2
	fi
	if [ "$measure" = 1 ] && [ "$steady" -gt 0 ] && [ "$ms" != timeout ]; then
		# the backlog of the start-up drains first (at most 30 messages/s per device)
		drained=$(wait_status "$name" drained "$n" "$t0" 120)
		echo "$name: start-up backlog drained at $drained ms" >&2
		read -r a0 _ < <(uplink_fields "$name")
		c0=$(cpu_ticks)
		sleep "$steady"
		c1=$(cpu_ticks)
		fig[${name}_rss]=$(vm_kb VmRSS)
		fig[${name}_hwm]=$(vm_kb VmHWM)
		fig[${name}_anon]=$(vm_kb RssAnon)
		read -r a1 q1 sess onl dl rej < <(uplink_fields "$name")
		fig[${name}_acked]=$((a1 - a0))
		fig[${name}_fps]=$(awk -v a=$((a1 - a0)) -v s="$steady" 'BEGIN { printf "%.1f", a / s }')
		fig[${name}_cpu_us]=$(awk -v t=$((c1 - c0)) -v hz="$hz" -v a=$((a1 - a0)) \
			'BEGIN { if (a > 0) printf "%.0f", t / hz / a * 1e6; else print "n/a" }')
		fig[${name}_cpu_pct]=$(awk -v t=$((c1 - c0)) -v hz="$hz" -v s="$steady" \
			'BEGIN { printf "%.2f", 100 * t / hz / s }')
		fig[${name}_dl]="$dl / $rej / $q1"
		read -r live connacks logged < <(cloud_sessions)
		fig[${name}_live]=$live
		fig[${name}_connacks]=$connacks
		fig[${name}_logged]=$logged
		echo "$name: ${fig[${name}_acked]} acked in $steady s, CPU ${fig[${name}_cpu_pct]} %," \
			"${fig[${name}_cpu_us]} µs/record, VmRSS ${fig[${name}_rss]} KiB (RssAnon" \
			"${fig[${name}_anon]}, VmHWM ${fig[${name}_hwm]}), at the cloud $live live" \
			"sessions / $connacks CONNACK 0 / $logged sub-devices logged in; daemon sessions" \
			"$onl/$sess; deadlettered/rejected/queued ${fig[${name}_dl]}" >&2
	fi
	for extra in "$@"; do
		case $extra in
		kick) kick_gateway "$name" "$n" ;;
		restart)
			stop_gw
			s0=$(cloud_seq)
			start_gw "$name"
			ms=$(wait_status "$name" online "$n" "$t0" 180)
			fig[${name}_restart]=$ms
			fig[${name}_restart_req]=$(gw_requests "$s0")
			echo "$name: restart with the topology known: $n nodes online after $ms ms;" \
				"${fig[${name}_restart_req]}" >&2
			;;
		esac
	done
	check_ptys "$name"
	stop_gw
	stop_sims
	stop_cloud
	fig[${name}_logwarn]=$(grep -ciE 'warn|error|crit' "$c/sensorgwd.log")
	if [ "${fig[${name}_logwarn]}" != 0 ]; then
		echo "$name: daemon log lines with warn/error/crit (most frequent first):" >&2
		grep -iE 'warn|error|crit' "$c/sensorgwd.log" | sed 's/[0-9][0-9.]*/N/g' | sort |
			uniq -c | sort -rn | head -10 >&2
	fi
	return 0
}

begin=$(now_ms)
echo "gateway.sh: daemon $gwd, $NODES nodes on $BUSES buses, steady window $steady s," \
	"cases ${cases[*]}" >&2
for k in "${cases[@]}"; do
	case $k in
	gw1) run_case gw1 gateway 1 1 device-secret 1 ;;
	gw200) run_case gw200 gateway "$BUSES" "$PER_BUS" device-secret 1 kick restart ;;
	direct200) run_case direct200 direct "$BUSES" "$PER_BUS" device-secret 1 ;;
	register) run_case register gateway "$BUSES" "$PER_BUS" register 0 ;;
	gw200x1) run_case gw200x1 gateway 1 "$NODES" device-secret 1 ;;
	gw4x1) run_case gw4x1 gateway "$BUSES" 1 device-secret 1 ;;
	*)
		echo "gateway.sh: unknown case $k (gw1 gw200 direct200 register gw200x1 gw4x1)" >&2
		exit 2
		;;
	esac
done
total_s=$((($(now_ms) - begin) / 1000))

mib() { awk -v k="$1" 'BEGIN { printf "%.2f", k / 1024 }'; }
f() { echo "${fig[$1]:-–}"; }
delta=$(($(f gw200_rss | tr -dc 0-9) + 0 - $(f gw1_rss | tr -dc 0-9) - 0))
if [ "$(f gw200_live)" = 1 ] && [ "$(f gw200_connacks)" = 1 ] &&
	[ "$(f gw200_logged)" = "$NODES" ] && [ "$(f gw200_start)" != timeout ]; then
	one=1
	verdict="One session: yes, gateway mode held all $NODES nodes in one MQTT session (1 live session and 1 CONNACK 0 at the cloud, $NODES sub-devices logged in; direct mode: $(f direct200_live))."
else
	one=0
	verdict="One session: no, gateway mode with $NODES nodes: $(f gw200_live) live MQTT session(s) and $(f gw200_connacks) CONNACK 0s at the cloud, $(f gw200_logged) of $NODES sub-devices logged in, all online: $(f gw200_start) ms."
fi
if [ -z "${fig[gw1_rss]:-}" ] || [ -z "${fig[gw200_rss]:-}" ]; then
	rss=0
	verdict="$verdict RSS within 1 MiB of the 1-node figure: not measured (cases gw1 and gw200)."
elif [ "$delta" -le 1024 ]; then
	rss=1
	verdict="$verdict RSS within 1 MiB of the 1-node figure: yes, VmRSS $(f gw200_rss) KiB against $(f gw1_rss) KiB (+$delta KiB)."
else
	rss=0
	verdict="$verdict RSS within 1 MiB of the 1-node figure: no, VmRSS $(f gw200_rss) KiB against $(f gw1_rss) KiB (+$delta KiB; the bound is +1024 KiB)."
fi
if [ $one = 1 ] && [ $rss = 1 ]; then
	verdict="Issue 17's acceptance: met. $verdict"
else
	verdict="Issue 17's acceptance: not met. $verdict"
fi

row() { # name label
	local n=$1
	printf '| %s | %s ms (CPU %s s) | %s / %s | %s | %s | %s µs (%s %% of a core) | %s KiB (%s MiB) / %s KiB / %s KiB | %s |\n' \
		"$2" "$(f "${n}_start")" "$(f "${n}_startcpu")" "$(f "${n}_live")" "$(f "${n}_connacks")" "$(f "${n}_logged")" \
		"$(f "${n}_fps")" "$(f "${n}_cpu_us")" "$(f "${n}_cpu_pct")" "$(f "${n}_rss")" \
		"$(mib "${fig[${n}_rss]:-0}")" "$(f "${n}_anon")" "$(f "${n}_hwm")" "$(f "${n}_dl")"
}
table=$(
	echo "| case | start → all online (sensorgwd's CPU time by then) | MQTT sessions at the cloud: live / CONNACK 0s | sub-devices logged in | records acked/s | CPU per record (of sensorgwd) | VmRSS / RssAnon / VmHWM | dead-lettered / rejected / queued |"
	echo "|---|---|---|---|---|---|---|---|"
	row gw1 "gateway, 1 node (the RSS baseline)"
	row gw200 "gateway, $NODES nodes"
	row direct200 "direct, $NODES nodes"
)
table2=$(
	echo "| gateway, $NODES nodes | all online after | gateway requests at the cloud (entries) |"
	echo "|---|---|---|"
	printf '| first start, DeviceSecrets provisioned (auth = device-secret) | %s ms (CPU %s s) | %s |\n' \
		"$(f gw200_start)" "$(f gw200_startcpu)" "$(f gw200_req)"
	printf '| gateway session cut by the cloud (kick) | %s ms (its CONNACK 0 after %s ms) | %s |\n' \
		"$(f gw200_kick)" "$(f gw200_kick_connack)" "$(f gw200_kick_req)"
	printf '| restart, topology and credentials known | %s ms | %s |\n' \
		"$(f gw200_restart)" "$(f gw200_restart_req)"
	printf '| first start, nothing provisioned (auth = register) | %s ms (CPU %s s) | %s |\n' \
		"$(f register_start)" "$(f register_startcpu)" "$(f register_req)"
)
[ -n "$disturbed" ] && verdict="$verdict VOID: another process read frames from a simulator's pty ($disturbed)."
echo "$table"
echo
echo "$table2"
echo
echo "$verdict"
echo "gateway.sh: the run took $total_s s" >&2

if [ $write_docs = 1 ]; then
	if [ "${cases[*]}" != "gw1 gw200 direct200 register" ]; then
		echo "gateway.sh: --write-docs needs every case; nothing written" >&2
		exit 1
	fi
	commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
	git diff --quiet HEAD -- src include 2>/dev/null || commit="$commit (with local changes)"
	machine="$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(uname -m), $(date -u +%Y-%m-%d)"
	"$py" - "$root/docs/benchmarks.md" "$table" "$table2" "$machine" "$commit" "$cmdline" \
		"$verdict" "$steady" "$total_s" "$build" <<'EOF'
import re, sys
path, table, table2, machine, commit, cmdline, verdict, steady, total, build = sys.argv[1:11]
text = open(path).read()
block = """<!-- gateway:begin -->
## Gateway topology: 200 nodes, direct vs gateway

Measured on %s by `%s` (the whole run: %s s), release build (`%s`) of commit %s.

The Aliyun test cloud (`tests/cloud/aliyun_cloud.py`) on 127.0.0.1, MQTT over TLS with a CA the
script makes; 200 simulated nodes at 1 frame/s each (4 `sensorgw-sim --framing binary --nodes 50
--rate 50` buses on ptys); one `type = aliyun` uplink (QoS 1, the spool as in production) with
`topology = direct` (a session per node) or `topology = gateway` (one gateway session, every node
a sub-device). Every node's DeviceSecret is provisioned into the credential store beforehand
(`auth = device-secret`), so no registration is measured except on the last line of the second
table.

- Start → all online: from the daemon's exec to every node's device `online` in `sensorgwctl
  status --json`, polled every 100 ms; beside it the daemon's CPU time (utime + stime) by then.
  The 200-node gateway then has its session closed by the cloud (control API `kick`), timed from
  the kick to all online again, and is restarted (SIGTERM, a new daemon on the same state
  directory: credentials and topology known).
- Sessions: the cloud's control API (`devices`): live MQTT sessions and CONNACK 0s over every
  device, the gateway's included, and the sub-devices logged in over a gateway.
- After the start-up backlog has drained, a %s s window: CPU is utime + stime of sensorgwd
  (`/proc/PID/stat`) over the window divided by the records the uplink acknowledged in it (its
  `acked` counter; clock ticks of 10 ms, so the 1-node figure is coarse); VmRSS, RssAnon and
  VmHWM from `/proc/PID/status` at the window's end. The cloud (Python), the simulators and
  the daemon share the machine's cores.
- Gateway requests: the cloud's `gw_request` events (`size` = entries), by operation.

%s

%s

%s
<!-- gateway:end -->""" % (machine, cmdline, total, build, commit, steady, table, table2, verdict)
if "<!-- gateway:begin -->" in text:
    text = re.sub(r"<!-- gateway:begin -->.*?<!-- gateway:end -->", lambda m: block, text,
                  flags=re.S)
else:
    text = text.rstrip("\n") + "\n\n" + block + "\n"
open(path, "w").write(text)
EOF
	echo "gateway.sh: wrote docs/benchmarks.md" >&2
fi
