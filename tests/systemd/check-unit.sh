#!/bin/sh
# Checks systemd/sensorgw.service offline: `systemd-analyze verify`, an exposure score of at
# most 1.5 from `systemd-analyze security --offline=yes`, and the unit's own rules (policy):
#
#   - no ExecStartPre= runs --check-config: RestartPreventExitStatus= applies to the main
#     process only, so with Restart=always a failing ExecStartPre restarts every RestartSec
#     until the start limit; sensorgwd checks its configuration itself and exits 78 before
#     READY=1, and RestartPreventExitStatus= must list 78;
#   - ExecReload= waits for the outcome (`sensorgwctl reload`), never a bare kill -HUP, which
#     returns 0 when the daemon refuses the file.
#
# The policy is also run on copies of the unit with each of those mistakes put back (the
# ExecStartPre and the kill -HUP the unit once had) and must refuse each: a check that cannot
# fail proves nothing. ExecStart and ExecReload must exist for verify, so a copy of the unit
# points at the built programs. Usage: check-unit.sh SRCDIR BUILDDIR [UNIT]
# (UNIT, default SRCDIR/systemd/sensorgw.service: check another unit file, e.g. an old one).
set -eu
src=$1 build=$2 unit=${3:-$1/systemd/sensorgw.service}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT

# The unit's rules for file $1 (named $2 in messages); prints each broken one and returns 1
# when any is.
policy() {
	f=$1 name=$2 bad=0
	if grep -Eq '^ExecStartPre=.*--check-config' "$f"; then
		echo "$name: ExecStartPre= runs --check-config: its exit 78 is restarted in a loop" \
			"(RestartPreventExitStatus= applies to the main process only)"
		bad=1
	fi
	if ! grep -Eq '^RestartPreventExitStatus=(.* )?78( |$)' "$f"; then
		echo "$name: RestartPreventExitStatus= does not list 78 (an invalid configuration)"
		bad=1
	fi
	if ! grep -q '^ExecReload=' "$f"; then
		echo "$name: no ExecReload="
		bad=1
	elif grep -Eq '^ExecReload=[-@:+!]*[^ ]*kill( |$)' "$f"; then
		echo "$name: ExecReload= is a bare kill: systemctl reload returns 0 when the daemon" \
			"refuses the file"
		bad=1
	elif ! grep -Eq '^ExecReload=[^ ]*/sensorgwctl reload( |$)' "$f"; then
		echo "$name: ExecReload= is not sensorgwctl reload (which waits for the outcome)"
		bad=1
	fi
	return $bad
}

sed -e "s|/usr/sbin/sensorgwd|$build/src/sensorgwd|g" \
	-e "s|/usr/bin/sensorgwctl|$build/tools/sensorgwctl|g" "$unit" > "$t/sensorgw.service"

# The policy refuses each old mistake (on the unit under test with that mistake put back).
sed -e 's|^ExecStart=\(.*\) -c \(.*\)$|ExecStartPre=\1 --check-config -c \2\n&|' \
	"$t/sensorgw.service" > "$t/startpre.service"
sed -e 's|^ExecReload=.*$|ExecReload=/bin/kill -HUP $MAINPID|' \
	"$t/sensorgw.service" > "$t/kill.service"
for m in startpre kill; do
	if policy "$t/$m.service" "$m" >/dev/null; then
		echo "the policy check accepts a unit with the old $m mistake" >&2
		exit 1
	fi
done

out=$(policy "$t/sensorgw.service" "$unit") || {
	echo "$out" >&2
	echo "$unit breaks the unit's rules" >&2
	exit 1
}
systemd-analyze verify --man=no "$t/sensorgw.service"
out=$(systemd-analyze security --offline=yes --threshold=15 "$t/sensorgw.service" 2>&1) || {
	echo "$out" | tail -n 25
	echo "exposure above 1.5" >&2
	exit 1
}
echo "$out" | tail -n 1
echo "policy: no ExecStartPre --check-config, RestartPreventExitStatus=78, ExecReload waits"
