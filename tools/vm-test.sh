#!/bin/bash
# The package under a real systemd (docs/vm-test.md): builds (or takes from the cache) a minimal
# Debian 12 image with systemd and mosquitto, boots it under QEMU with no network device, and
# has tests/vm/vmtest.py install the package built from this tree and check, one by one, what
# the README and sensorgwd(8) promise about the service. Nothing leaves the machine but the
# image build's downloads from the Debian mirror apt uses.
#
# usage: tools/vm-test.sh [--arch amd64|arm64] [--deb DIR] [--build DIR] [--soak SECONDS]
#                         [--dropin FILE] [--unit FILE] [--kvm]
#   --arch    the guest (default amd64; arm64 runs under TCG and needs the cross-built package,
#             tools/build-deb.sh --arch arm64, and an image built under qemu-user: --full in
#             tools/run-tests.sh)
#   --deb     a directory holding sensorgw_VERSION_ARCH.deb (default: tools/build-deb.sh now)
#   --build   a build directory whose tools/sensorgw-sim writes the sensor frames (default build)
#   --soak    seconds of traffic during which the watchdog must not fire (default 180)
#   --dropin  a drop-in for sensorgw.service installed before the checks (to show a check fail)
#   --unit    a unit file put in place of the packaged one (the same)
#   --kvm     use KVM instead of TCG (where KVM guests run; here they hang)
# The image is cached in $SENSORGW_VM_CACHE (default /var/cache/sensorgw-vm), keyed by a hash of
# its recipe (this script's image part and tests/vm/agent*): a change rebuilds it. Needs root
# (mmdebstrap, mkfs.ext4 -d), and what tools/install-deps.sh installs. Ends with one line per
# check, "vm-check NAME: ok|FAIL (...)", and exits 1 when one failed.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
arch=amd64 debdir= build=build soak=180 dropin= unit= kvm=()
while [ $# -gt 0 ]; do
	case "$1" in
	--arch) arch=$2; shift 2 ;;
	--deb) debdir=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	--soak) soak=$2; shift 2 ;;
	--dropin) dropin=$(realpath "$2"); shift 2 ;;
	--unit) unit=$(realpath "$2"); shift 2 ;;
	--kvm) kvm=(--kvm); shift ;;
	*) echo "usage: $0 [--arch amd64|arm64] [--deb DIR] [--build DIR] [--soak S] [--dropin F] [--unit F] [--kvm]" >&2; exit 2 ;;
	esac
done
case "$arch" in
amd64) kernel_pkg=linux-image-amd64 qemu=qemu-system-x86_64 ;;
arm64) kernel_pkg=linux-image-arm64 qemu=qemu-system-aarch64 ;;
*) echo "vm-test: --arch $arch: amd64 or arm64" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "vm-test: run as root (mmdebstrap, mkfs.ext4 -d)" >&2; exit 1; }
for t in mmdebstrap mkfs.ext4 "$qemu" python3 dpkg-deb; do
	command -v "$t" >/dev/null || { echo "vm-test: $t missing (tools/install-deps.sh)" >&2; exit 1; }
done
sim="$src/$build/tools/sensorgw-sim"
[ -x "$sim" ] || { echo "vm-test: $sim missing: build first (meson compile -C $build)" >&2; exit 1; }

work=$(mktemp -d /tmp/sensorgw-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT
t0=$(date +%s)

# ---- the package, and an upgrade of it ----
if [ -z "$debdir" ]; then
	debdir=$work/deb
	if [ "$arch" = "$(dpkg --print-architecture)" ]; then
		"$src/tools/build-deb.sh" "$debdir" >"$work/build-deb.log" 2>&1
	else
		"$src/tools/build-deb.sh" --arch "$arch" "$debdir" >"$work/build-deb.log" 2>&1
	fi || { tail -20 "$work/build-deb.log"; exit 1; }
fi
deb=$(ls "$debdir"/sensorgw_*_"$arch".deb 2>/dev/null | head -1)
[ -n "$deb" ] || { echo "vm-test: no sensorgw_*_$arch.deb in $debdir" >&2; exit 1; }
mkdir -p "$work/payload" "$work/repack"
cp "$deb" "$work/payload/"
# The upgrade: the same files as version VERSION+vmtest1; what it tests is dpkg's handling of
# the edited conffile and the maintainer scripts of an upgrade.
dpkg-deb -R "$deb" "$work/repack"
version=$(dpkg-deb -f "$deb" Version)
sed -i "s/^Version: .*/Version: $version+vmtest1/" "$work/repack/DEBIAN/control"
dpkg-deb -b "$work/repack" "$work/payload/sensorgw_${version}+vmtest1_$arch.deb" >/dev/null
[ -z "$dropin" ] || cp "$dropin" "$work/payload/"
[ -z "$unit" ] || cp "$unit" "$work/payload/"
truncate -s 64M "$work/payload.img"
mkfs.ext4 -q -F -d "$work/payload" "$work/payload.img"

# ---- the image, cached by its recipe ----
packages=systemd,systemd-sysv,udev,dbus,$kernel_pkg,initramfs-tools,mosquitto,mosquitto-clients
# what the package depends on (debian/control, dpkg-shlibdeps): installed offline in the guest
packages=$packages,libc6,libinih1,libjansson4,libmosquitto1,libserialport0,libssl3,libsystemd0
packages=$packages,libcurl4,procps,ca-certificates
recipe_hash=$( (echo "$arch $packages v1"; sed -n '/^# ---- the image/,/^# ---- end of the image/p' "$0";
	cat "$src/tests/vm/agent.sh" "$src/tests/vm/vmtest-agent.service") | sha256sum | cut -c1-16)
cache=${SENSORGW_VM_CACHE:-/var/cache/sensorgw-vm}/$arch-$recipe_hash
if [ ! -f "$cache/done" ]; then
	echo "vm-test: building the $arch image (cache $cache)"
	t=$(date +%s)
	rm -rf "$cache"
	mkdir -p "$cache"
	root=$work/root
	mmdebstrap --variant=apt --architectures="$arch" --include="$packages" \
		--customize-hook='echo sensorgw-vm > "$1/etc/hostname"' \
		--customize-hook='printf "127.0.0.1 localhost\\n::1 localhost ip6-localhost ip6-loopback\\n127.0.1.1 sensorgw-vm\\n" > "$1/etc/hosts"' \
		--customize-hook='echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" > "$1/etc/fstab"' \
		--customize-hook='chroot "$1" passwd -d root >/dev/null' \
		--customize-hook='chroot "$1" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer >/dev/null 2>&1 || true' \
		--customize-hook="install -m 0755 $src/tests/vm/agent.sh \"\$1/usr/local/sbin/vmtest-agent\"" \
		--customize-hook="install -m 0644 $src/tests/vm/vmtest-agent.service \"\$1/etc/systemd/system/\"" \
		--customize-hook='chroot "$1" systemctl enable vmtest-agent.service >/dev/null 2>&1' \
		bookworm "$root" >"$work/mmdebstrap.log" 2>&1 || { tail -30 "$work/mmdebstrap.log"; exit 1; }
	cp "$root"/boot/vmlinuz-* "$cache/vmlinuz"
	cp "$root"/boot/initrd.img-* "$cache/initrd.img"
	truncate -s 2G "$cache/root.img"
	mkfs.ext4 -q -F -L root -d "$root" "$cache/root.img"
	rm -rf "$root"
	echo "$(($(date +%s) - t))" >"$cache/done"
	echo "vm-test: image built in $(cat "$cache/done") s"
else
	echo "vm-test: the $arch image from the cache ($cache, built in $(cat "$cache/done") s)"
fi
# ---- end of the image ----

python3 "$src/tests/vm/vmtest.py" --arch "$arch" "${kvm[@]}" --kernel "$cache/vmlinuz" \
	--initrd "$cache/initrd.img" --image "$cache/root.img" --payload "$work/payload.img" \
	--deb "$(basename "$deb")" --deb-new "sensorgw_${version}+vmtest1_$arch.deb" --sim "$sim" \
	--soak "$soak" ${dropin:+--dropin "$dropin"} ${unit:+--unit "$unit"} --workdir "$work" &&
	rc=0 || rc=$?
echo "vm-test: $arch done in $(($(date +%s) - t0)) s"
[ $rc = 0 ] || { echo "---- guest console (last 40 lines)"; tail -40 "$work/console.log" 2>/dev/null || true; }
exit $rc
