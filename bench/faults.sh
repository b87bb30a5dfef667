#!/bin/bash
# SPDX-License-Identifier: MIT
# Runs the fault-injection cases (tests/fault/test-fault.c) in their long form, prints a table
# of figures and writes it into docs/reliability.md (between the faults:begin/end markers).
#
#   bench/faults.sh [--short] [BUILD_DIR [CASE...]]
#
# BUILD_DIR defaults to ./build (set up with `meson setup build`); CASE is F1 F2 F3 F4 F5 F7
# F8 F9 F10 F11 F12 (all by default). --short runs the CI form instead (the counts `meson test --suite fault`
# uses) and fills the CI table. Knobs such as GW_FAULT_F4_KILLS=500 or GW_FAULT_SEED=N pass
# through the environment. Needs root, like the tests. Exit status 1 when a case failed.
set -u
cd "$(dirname "$0")/.."
root=$PWD
form=long
if [ "${1:-}" = --short ]; then
	form=ci
	shift
fi
build=${1:-build}
shift || true
cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=(F1 F2 F3 F4 F5 F7 F8 F9 F10 F11 F12)

ninja -C "$build" tests/fault/test-fault src/sensorgwd tools/sensorgw-sim tools/sensorgwctl \
	>/dev/null ||
	{ echo "faults.sh: build in $build failed (is tests/fault registered?)" >&2; exit 1; }
out=$(mktemp -d /tmp/sensorgw-faults-XXXXXX)
trap 'rm -rf "$out"' EXIT
figures=$out/figures.jsonl
: >"$figures"
declare -A result
rc=0
for c in "${cases[@]}"; do
	start=$(date +%s)
	if [ $form = long ]; then long=1; else long=0; fi
	if CK_FORK=yes CK_RUN_CASE=$c GW_FAULT_LONG=$long GW_FAULT_FIGURES=$figures \
		GW_SENSORGWD=$build/src/sensorgwd GW_SIM=$build/tools/sensorgw-sim \
		GW_CTL=$build/tools/sensorgwctl \
		GW_SOURCE_ROOT="$root" "$build/tests/fault/test-fault" >"$out/$c.log" 2>&1; then
		result[$c]=pass
	else
		result[$c]=FAIL
		rc=1
		grep -E ':[FE]:' "$out/$c.log" >&2
	fi
	echo "$c: ${result[$c]} in $(( $(date +%s) - start )) s" >&2
done
results=$(for c in "${cases[@]}"; do printf '%s=%s ' "$c" "${result[$c]}"; done)

/usr/bin/python3 - "$figures" "$form" "$root/docs/reliability.md" "$results" <<'EOF'
import json, re, sys

figures, form, doc, results = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
status = dict(r.split("=") for r in results.split())
rows = [json.loads(l) for l in open(figures) if l.strip()]

def c(f, key="counters"):
    # the conservation law's two sides from the exit counters
    k = f.get(key) or {}
    if not k:
        return ""
    right = sum(k[n] for n in ("acked", "queued", "dropped_overflow", "dropped_enospc",
                               "rejected", "lost_corrupt"))
    return ("%d = %d: acked %d + queued %d + overflow %d + enospc %d + rejected %d + "
            "lost_corrupt %d (resent %d, connects %d)" % (k["produced"], right, k["acked"],
            k["queued"], k["dropped_overflow"], k["dropped_enospc"], k["rejected"],
            k["lost_corrupt"], k["resent"], k["connects"]))
def delivery(f):
    if "delivered_unique" not in f or "produced" not in f:
        return ""
    return "%d / %d / %d / %d" % (f["produced"], f["delivered_unique"], f["duplicates"],
                                  f["lost"])

def line(f):
    case = f["case"]
    if case == "F1":
        fig = ("%d restarts: delivered_unique/produced = %d/%d = %.3f, duplicates %d, "
               "reconnect p50 %d ms, max %d ms" % (f["restarts"], f["delivered_unique"],
               f["produced"], f["ratio"], f["duplicates"], f["reconnect_ms_p50"],
               f["reconnect_ms_max"]))
    elif case == "F2":
        fig = ("%d faults: %d/%d re-sent (%d with DUP), lost %d, duplicates at the broker "
               "%d, %d records" % (f["faults"], f["faults_resent"], f["faults"],
               f["resent_with_dup"], f["lost"], f["duplicates"], f["produced"]))
    elif case == "F3":
        fig = ("keepalive %d s, cut %d s: detected after %.1f s (%.2f x keepalive), back "
               "%.1f s after the cut ended; lost %d of %d, duplicates %d" % (
               f["keepalive_s"], f["cut_s"], f["detect_ms"] / 1000.0,
               f["detect_over_keepalive"], f["reconnect_after_uncut_ms"] / 1000.0,
               f["lost"], f["produced"], f["duplicates"]))
    elif case == "F4":
        fig = ("%d SIGKILLs: %d frames fully received, %d delivered, lost %d (in the last "
               "read %d, elsewhere %d), duplicates %d; spool opened %d/%d, torn tails %d"
               % (f["kills"], f["fully_received"], f["fully_received"] - f["lost"],
                  f["lost"], f["lost_in_last_read"], f["lost_elsewhere"], f["duplicates"],
                  f["spool_opens"], f["kills"] + 1, f["torn_tails"]))
        return case, fig, c(f, "counters_last_run")
    elif case == "F5a":
        fig = ("tmpfs %d KiB: delivered %d = acked; dropped_enospc %d; law exact; "
               "cred.json intact" % (f["tmpfs_bytes"] // 1024, f["delivered_unique"],
               f["counters"]["dropped_enospc"]))
    elif case == "F5b":
        fig = ("spool_max_bytes %d KiB: delivered %d = acked (node_seq %d.. with no hole); "
               "dropped_overflow %d; law exact" % (f["spool_max_bytes"] // 1024,
               f["delivered_unique"], f["first_delivered_node_seq"],
               f["counters"]["dropped_overflow"]))
    elif case == "F7":
        fig = ("delivered %d/%d live, latency p50 %d ms, p99 %d ms, max %d ms; daemon CPU "
               "%d%%; down uplink queued %d" % (f["delivered_unique"], f["produced"],
               f["latency_ms_p50"], f["latency_ms_p99"], f["latency_ms_max"],
               f.get("daemon_cpu_pct", -1), f["counters_down"]["queued"]))
        return case, fig, "live: " + c(f, "counters_live")
    elif case == "F8":
        fig = ("first boot, broker unreachable, %d frames stored, SIGKILL: %d of %d "
               "delivered after the restart" % (f["produced"], f["delivered_unique"],
               f["produced"]))
    elif case == "F9":
        fig = ("%d rounds, %d damages (bit flips anywhere, a cut of the newest segment): "
               "%d records damaged, %d counted lost_corrupt, %d in logged ranges; delivered "
               "+ counted = %d = produced" % (f["rounds"], f["damages"], f["records_damaged"],
               f["lost_corrupt_counted"], f["lost_logged"], f["law_right"]))
        return case, fig, "%d = %d: delivered %d + lost_corrupt %d" % (
            f["law_left"], f["law_right"], f["delivered_unique"], f["lost_corrupt_counted"])
    elif case == "F10":
        fig = ("%d power cuts (SIGKILL, newest segment's last 1..40 records cut): %d records "
               "cut, seqs issued twice %d, received frames lost %d (in the last read %d)" % (
               f["power_cuts"], f["records_cut"], f["seq_reuses"], f["received_lost"],
               f["received_lost_in_last_read"]))
        return case, fig, c(f, "counters_last_run")
    elif case == "F11":
        fig = ("%d reloads under traffic (one changing the port's baud, one back): port "
               "frames %d, bad frames %d, opens %d, counter resets %d" % (f["reloads"],
               f["port_frames"], f["port_bad_frames"], f["port_opens"],
               f["port_counter_resets"]))
    elif case == "F12":
        fig = ("tmpfs %d MiB under the default min_free_bytes: start-up warning, "
               "spool.reserve.warning, every record counted dropped_enospc, %d drop lines "
               "(5 warnings and the summary)" % (f["tmpfs_bytes"] // (1024 * 1024),
               f["drop_lines"]))
    else:
        fig = json.dumps(f)
    return case, fig, c(f)

prefix = "bench/faults.sh build" if form == "long" else "bench/faults.sh --short build"
table = ["| case | result | produced / delivered unique / duplicates / lost | figure | "
         "law: produced = accounted (exit counters) | command |",
         "|---|---|---|---|---|---|"]
for f in rows:
    case, fig, cnt = line(f)
    cmd = re.sub(r"[a-z]$", "", case)
    table.append("| %s | %s | %s | %s | %s | `%s %s` |" % (case, status.get(cmd, "?"),
                 delivery(f), fig, cnt, prefix, cmd))
begin, end = "<!-- faults:%s:begin -->" % form, "<!-- faults:%s:end -->" % form
src = open(doc).read()
# rows of cases not run this time stay as they were (when the table has the same columns)
m = re.search(re.escape(begin) + "\n(.*?)\n" + re.escape(end), src, flags=re.S)
if m and m.group(1).split("\n")[0] == table[0]:
    ran = {re.sub(r"[a-z]$", "", f["case"]) for f in rows}
    kept = [r for r in m.group(1).split("\n")[2:]
            if r.startswith("| ") and re.sub(r"[a-z]$", "", r.split(" | ")[0][2:]) not in ran]
    def key(r):
        case = r.split(" | ")[0][2:]
        return (int(re.sub(r"\D", "", case) or 0), case)
    table = table[:2] + sorted(table[2:] + kept, key=key)
text = "\n".join(table)
print(text)

if begin in src and end in src:
    src = re.sub(re.escape(begin) + ".*?" + re.escape(end),
                 lambda m: begin + "\n" + text + "\n" + end, src, flags=re.S)
    open(doc, "w").write(src)
    print("(written to %s)" % doc, file=sys.stderr)
EOF
exit $rc
