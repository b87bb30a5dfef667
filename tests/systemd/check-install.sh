#!/bin/sh
# `meson install --destdir` of the build under test into a temporary directory: the exact list of
# installed files with their modes, the paths the installed unit names, and that a second install
# keeps an edited configuration. Nothing is rebuilt (the test runs inside `meson test`).
# Usage: check-install.sh BUILDDIR PREFIX BINDIR SBINDIR CONFDIR DATADIR MANDIR UNITDIR
set -eu
build=$1 prefix=$2 bindir=$3 sbindir=$4 confdir=$5 datadir=$6 mandir=$7 unitdir=$8
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT

install_into() {
	meson install -C "$build" --destdir "$d/root" --no-rebuild >"$d/install.log" 2>&1 || {
		cat "$d/install.log"
		echo "meson install failed" >&2
		exit 1
	}
}

# "MODE PATH" of every file and symlink, and of our own directories, sorted by path.
listing() {
	(cd "$d/root" && find . ! -type d -printf '%m %P\n'
	 cd "$d/root" && find . -type d -name sensorgw -printf '%m %P/\n') |
		sort -k2
}

install_into
sort -k2 >"$d/expected" <<EXP
755 ${bindir#/}/sensorgw-sim
755 ${bindir#/}/sensorgwctl
755 ${sbindir#/}/sensorgwd
750 ${confdir#/}/
640 ${confdir#/}/sensorgw.conf
644 ${unitdir#/}/sensorgw.service
644 ${prefix#/}/lib/sysusers.d/sensorgw.conf
644 ${prefix#/}/lib/tmpfiles.d/sensorgw.conf
755 ${datadir#/}/doc/sensorgw/
644 ${datadir#/}/doc/sensorgw/examples/sensorgw.conf
755 ${datadir#/}/sensorgw/
644 ${datadir#/}/sensorgw/ca/aliyun-iot-roots.pem
644 ${datadir#/}/sensorgw/ca/tencent-iot-roots.pem
644 ${datadir#/}/sensorgw/ca/tencent-register-roots.pem
644 ${mandir#/}/man1/sensorgw-sim.1
644 ${mandir#/}/man1/sensorgwctl.1
644 ${mandir#/}/man5/sensorgw.conf.5
644 ${mandir#/}/man8/sensorgwd.8
EXP
listing >"$d/actual"
if ! diff -u "$d/expected" "$d/actual"; then
	echo "installed files differ from the expected list (- expected, + installed)" >&2
	exit 1
fi

# The installed unit and tmpfiles snippet name this build's paths.
unit=$d/root$unitdir/sensorgw.service
grep -qx "ExecStart=$sbindir/sensorgwd -c $confdir/sensorgw.conf" "$unit" ||
	{ echo "ExecStart of the installed unit is not $sbindir/sensorgwd -c $confdir/sensorgw.conf" >&2; exit 1; }
grep -qx "ExecReload=$bindir/sensorgwctl reload" "$unit" ||
	{ echo "ExecReload of the installed unit is not $bindir/sensorgwctl reload" >&2; exit 1; }
grep -q "^z $confdir/sensorgw.conf 0640 root sensorgw" "$d/root$prefix/lib/tmpfiles.d/sensorgw.conf" ||
	{ echo "the installed tmpfiles snippet does not name $confdir/sensorgw.conf" >&2; exit 1; }
cmp "$d/root$confdir/sensorgw.conf" "$d/root$datadir/doc/sensorgw/examples/sensorgw.conf" ||
	{ echo "the installed configuration is not the example" >&2; exit 1; }

# An administrator's edit survives the next install; the example under share/doc is renewed.
conf=$d/root$confdir/sensorgw.conf
printf '\n# edited by check-install\n' >>"$conf"
chmod 0600 "$conf"
cp "$conf" "$d/edited"
echo 'changed' >>"$d/root$datadir/doc/sensorgw/examples/sensorgw.conf"
install_into
cmp "$conf" "$d/edited" || { echo "a second meson install changed the edited configuration" >&2; exit 1; }
[ "$(stat -c %a "$conf")" = 600 ] || { echo "a second meson install changed the configuration's mode" >&2; exit 1; }
if grep -q '^changed$' "$d/root$datadir/doc/sensorgw/examples/sensorgw.conf"; then
	echo "the example under share/doc was not reinstalled" >&2
	exit 1
fi
echo "install tree: $(wc -l <"$d/expected") entries as expected; an edited configuration survives reinstalling"
