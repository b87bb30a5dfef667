#!/bin/sh
# Checks systemd/sensorgw.service offline: `systemd-analyze verify` and an exposure score of
# at most 1.5 from `systemd-analyze security --offline=yes`. ExecStart must exist for verify,
# so a copy of the unit points at the built daemon. Usage: check-unit.sh SRCDIR BUILDDIR
set -eu
src=$1 build=$2
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
sed -e "s|/usr/sbin/sensorgwd|$build/src/sensorgwd|g" "$src/systemd/sensorgw.service" > "$t/sensorgw.service"
systemd-analyze verify --man=no "$t/sensorgw.service"
out=$(systemd-analyze security --offline=yes --threshold=15 "$t/sensorgw.service" 2>&1) || {
	echo "$out" | tail -n 25
	echo "exposure above 1.5" >&2
	exit 1
}
echo "$out" | tail -n 1
