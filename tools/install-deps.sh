#!/bin/sh
# Installs everything sensorgw needs to build, run its demo and pass its tests on Debian 12 /
# Raspberry Pi OS (bookworm), and to build its Debian package (tools/build-deb.sh). Run as root
# (or through sudo).
#   --cross  also what the Raspberry Pi builds need (tools/cross-test.sh, tools/build-deb.sh
#            --arch): the arm64 and armhf architectures with the cross compilers and the
#            foreign -dev packages, and qemu-user-static registered with binfmt_misc. The
#            README's full test command uses it; the demo does not need it.
set -eu
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps.sh: run as root, e.g. sudo $0" >&2
	exit 1
fi
cross=false
case "${1:-}" in
"") ;;
--cross) cross=true ;;
*)
	echo "usage: $0 [--cross]" >&2
	exit 2
	;;
esac
if $cross; then
	dpkg --add-architecture arm64
	dpkg --add-architecture armhf
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
	build-essential meson ninja-build pkg-config \
	libmosquitto-dev mosquitto mosquitto-clients \
	libssl-dev openssl ca-certificates libcurl4-openssl-dev libjansson-dev \
	libserialport-dev libsystemd-dev systemd libinih-dev check \
	socat python3 python3-jinja2 tmux iproute2 iptables nftables man-db \
	debhelper dpkg-dev \
	clang libclang-rt-14-dev clang-tidy cppcheck valgrind \
	qemu-system-arm gcc-arm-none-eabi binutils-arm-none-eabi \
	mmdebstrap qemu-system-x86 e2fsprogs
# promtool and prometheus-node-exporter for the metrics test (tests/integration/test-metrics.c),
# from Debian's packages but unpacked, not installed: installing them would start Prometheus and
# node_exporter as services listening on every interface.
prom=/opt/sensorgw-test/bin
if [ ! -x "$prom/promtool" ] || [ ! -x "$prom/prometheus-node-exporter" ]; then
	dl=$(mktemp -d)
	(cd "$dl" && apt-get download prometheus prometheus-node-exporter)
	mkdir -p "$prom"
	dpkg-deb --fsys-tarfile "$dl"/prometheus_*.deb | tar -xO ./usr/bin/promtool >"$prom/promtool"
	dpkg-deb --fsys-tarfile "$dl"/prometheus-node-exporter_*.deb |
		tar -xO ./usr/bin/prometheus-node-exporter >"$prom/prometheus-node-exporter"
	chmod 0755 "$prom/promtool" "$prom/prometheus-node-exporter"
	rm -rf "$dl"
fi
if $cross; then
	foreign=""
	for a in arm64 armhf; do
		for p in pkg-config libc6-dev libmosquitto-dev libssl-dev libcurl4-openssl-dev libjansson-dev \
			libserialport-dev libsystemd-dev libinih-dev check; do
			foreign="$foreign $p:$a"
		done
	done
	# arch-test: mmdebstrap needs it for the arm64 image of tools/vm-test.sh --arch arm64
	# shellcheck disable=SC2086 # the list is words
	apt-get install -y --no-install-recommends \
		gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf qemu-user-static arch-test $foreign
	# The tests start foreign programs themselves: register qemu-user now (systemd-binfmt does
	# it at every boot where systemd runs; a container or a fresh VM may not have it yet).
	binfmt=/proc/sys/fs/binfmt_misc
	[ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt" || true
	for q in aarch64 arm; do
		[ -e "$binfmt/qemu-$q" ] || grep -v '^#' "/usr/lib/binfmt.d/qemu-$q.conf" >"$binfmt/register" ||
			echo "install-deps.sh: could not register qemu-$q with binfmt_misc; tools/cross-test.sh will try again" >&2
	done
fi
