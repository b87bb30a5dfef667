#!/bin/sh
# Installs everything sensorgw needs to build, run its demo and pass its tests on Debian 12 /
# Raspberry Pi OS (bookworm), and to build its Debian package (tools/build-deb.sh). Run as root
# (or through sudo).
set -eu
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps.sh: run as root, e.g. sudo $0" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
	build-essential meson ninja-build pkg-config \
	libmosquitto-dev mosquitto mosquitto-clients \
	libssl-dev openssl ca-certificates libcurl4-openssl-dev libjansson-dev \
	libserialport-dev libsystemd-dev systemd libinih-dev check \
	socat python3 iproute2 iptables nftables man-db \
	debhelper dpkg-dev \
	clang libclang-rt-14-dev clang-tidy cppcheck valgrind \
	qemu-system-arm gcc-arm-none-eabi binutils-arm-none-eabi
