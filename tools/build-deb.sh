#!/bin/bash
# Builds the Debian package (dpkg-buildpackage -us -uc -b) in a temporary copy of the tree, so
# the checkout stays clean, checks that debian/changelog carries the project's version, that
# the .deb is for the architecture asked for and holds exactly the files in
# debian/expected-files.txt, and that its sensorgwd runs (under qemu-user for a foreign
# architecture), and copies the .deb to OUTDIR.
# Usage: tools/build-deb.sh [--arch arm64|armhf] [OUTDIR]     (default: this machine's, .)
# --arch cross-builds for a Raspberry Pi (dpkg-buildpackage -a, with the meson cross file of
# tools/cross/); it needs what `tools/install-deps.sh --cross` installs.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
host=$(dpkg-architecture -qDEB_BUILD_ARCH)
arch=$host
if [ "${1:-}" = --arch ]; then
	arch=${2:?usage: $0 [--arch arm64|armhf] [OUTDIR]}
	shift 2
fi
cross=()
run=()
machine=
if [ "$arch" != "$host" ]; then
	case "$arch" in
	arm64) triplet=aarch64-linux-gnu run=(qemu-aarch64-static) machine=AArch64 ;;
	armhf) triplet=arm-linux-gnueabihf run=(qemu-arm-static) machine=ARM ;;
	*)
		echo "build-deb: --arch $arch: only arm64 and armhf are cross-built here" >&2
		exit 2
		;;
	esac
	command -v "$triplet-gcc" >/dev/null && command -v "${run[0]}" >/dev/null ||
		{ echo "build-deb: no $triplet-gcc or ${run[0]}: run sudo tools/install-deps.sh --cross" >&2; exit 1; }
	# dh's meson build system takes the cross file from here instead of generating one.
	export DH_MESON_CROSS_FILE=$src/tools/cross/$triplet.ini
	cross=(-a "$arch")
fi
out=$(mkdir -p "${1:-.}" && cd "${1:-.}" && pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT

version=$(sed -n "s/^\tversion: '\(.*\)',$/\1/p" "$src/meson.build")
debversion=$(cd "$src" && dpkg-parsechangelog -S Version)
if [ "$version" != "$debversion" ]; then
	echo "build-deb: debian/changelog says $debversion, meson.build says $version" >&2
	exit 1
fi

# The working tree as it is (tracked and new files, not ignored ones such as build*/).
mkdir "$t/sensorgw-$version"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$src" && git ls-files -z --cached --others --exclude-standard |
		xargs -0 -r sh -c 'for f; do [ -e "$f" ] || [ -L "$f" ] && printf "%s\0" "$f"; done' sh) |
		tar -C "$src" --null -T - -cf - | tar -C "$t/sensorgw-$version" -xf -
else
	tar -C "$src" --exclude='./build*' --exclude='./obj-*' -cf - . | tar -C "$t/sensorgw-$version" -xf -
fi

# Two cores at most; the log is shown only when the build fails.
echo "build-deb: dpkg-buildpackage ${cross[*]:+${cross[*]} }-us -uc -b (log: on failure)"
if ! (cd "$t/sensorgw-$version" &&
	DEB_BUILD_OPTIONS="parallel=2 ${DEB_BUILD_OPTIONS:-}" dpkg-buildpackage "${cross[@]}" -us -uc -b) \
	>"$t/build.log" 2>&1; then
	tail -n 60 "$t/build.log"
	echo "build-deb: dpkg-buildpackage failed" >&2
	exit 1
fi
deb=$t/sensorgw_${version}_${arch}.deb
[ -f "$deb" ] || { ls "$t"; echo "build-deb: no $deb" >&2; exit 1; }
got=$(dpkg-deb -f "$deb" Architecture)
[ "$got" = "$arch" ] || { echo "build-deb: the package says Architecture: $got, not $arch" >&2; exit 1; }

# `dpkg-deb -c` as "MODE OWNER PATH" lines (directories end in /), compared with the expected list.
dpkg-deb -c "$deb" | awk '{ p = $6; for (i = 7; i <= NF; i++) p = p " " $i; sub(/^\.\//, "/", p);
	if (p != "/") print $1, $2, p }' | sort -k3 >"$t/actual"
sed -e '/^#/d' -e '/^$/d' "$src/debian/expected-files.txt" | sort -k3 >"$t/expected"
if ! diff -u "$t/expected" "$t/actual"; then
	echo "build-deb: the package's files differ from debian/expected-files.txt (- expected, + in the .deb)" >&2
	exit 1
fi
# libcurl is opened with dlopen (src/http.c), so only debian/control's explicit entry names it.
dpkg-deb -f "$deb" Depends | tr ',' '\n' | grep -qE '^ *libcurl4( |$)' ||
	{ echo "build-deb: Depends lacks libcurl4 (sensorgwd dlopens libcurl.so.4)" >&2; exit 1; }
# The configuration is a conffile; the unit is enabled and started in postinst.
dpkg-deb --ctrl-tarfile "$deb" | tar -C "$t" -xf - ./conffiles ./postinst
grep -qx /etc/sensorgw/sensorgw.conf "$t/conffiles" ||
	{ echo "build-deb: /etc/sensorgw/sensorgw.conf is not a conffile" >&2; exit 1; }
for s in 'systemd-sysusers' 'systemd-tmpfiles' 'deb-systemd-helper enable' 'deb-systemd-invoke'; do
	grep -q "$s" "$t/postinst" || { echo "build-deb: postinst does not run $s" >&2; exit 1; }
done
# What those snippets do, applied to the unpacked package: the sensorgw user, and the
# configuration readable by its group only (chown needs root; CI runs as root).
dpkg-deb -x "$deb" "$t/root"
# The packaged programs are built for that architecture, and sensorgwd runs (through qemu-user
# for a foreign one, with the foreign libraries --cross installed).
machine=${machine:-$(LC_ALL=C readelf -h /bin/sh | sed -n 's/^ *Machine: *//p')}
for b in usr/sbin/sensorgwd usr/bin/sensorgwctl usr/bin/sensorgw-sim; do
	m=$(LC_ALL=C readelf -h "$t/root/$b" | sed -n 's/^ *Machine: *//p')
	[ "$m" = "$machine" ] || { echo "build-deb: /$b is for $m, not $machine" >&2; exit 1; }
done
v=$("${run[@]}" "$t/root/usr/sbin/sensorgwd" --version) ||
	{ echo "build-deb: the packaged sensorgwd --version failed" >&2; exit 1; }
[ "$v" = "sensorgwd $version" ] || { echo "build-deb: the packaged sensorgwd says '$v'" >&2; exit 1; }
echo "build-deb: the packaged sensorgwd ($arch${run:+, under ${run[0]}}) says: $v"
# Its dependencies resolve for that architecture here (what `apt install ./the.deb` would do).
if ! apt-get install --simulate "$deb" >"$t/apt.log" 2>&1 ||
	! grep -qE "^Inst sensorgw(:$arch)? .*\[$arch\]" "$t/apt.log"; then
	tail -n 20 "$t/apt.log"
	echo "build-deb: apt-get install --simulate of the $arch package failed" >&2
	exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
	systemd-sysusers --root="$t/root" sensorgw.conf >/dev/null 2>&1
	systemd-tmpfiles --root="$t/root" --create sensorgw.conf
	gid=$(awk -F: '$1 == "sensorgw" { print $3 }' "$t/root/etc/group")
	for f in /etc/sensorgw:750 /etc/sensorgw/sensorgw.conf:640 /var/lib/sensorgw:700; do
		got=$(stat -c '%a %g' "$t/root${f%:*}")
		[ "$got" = "${f#*:} $gid" ] ||
			{ echo "build-deb: ${f%:*} is mode/gid $got after postinst, not ${f#*:} $gid" >&2; exit 1; }
	done
else
	echo "build-deb: not root: sysusers/tmpfiles of postinst not tried on the unpacked package"
fi
cp "$deb" "$out/"
echo "build-deb: $out/$(basename "$deb"): $(wc -l <"$t/expected") entries as expected"
