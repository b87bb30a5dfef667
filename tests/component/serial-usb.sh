#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs the USB-matching case of test-serial: libserialport enumerates a fake sysfs
# (test-fixtures.md §3) and gw_serial opens the pty behind the matching /dev/ttyUSB*/ttyACM*.
# The test unshares its own mount namespace before mounting tmpfs over /dev and /sys/class/tty;
# CK_FORK=yes keeps that namespace inside the forked test process. Needs root (CAP_SYS_ADMIN).
# Usage: tests/component/serial-usb.sh BUILDDIR      exit 77 (skipped) when not root
set -eu
build=${1:?usage: $0 BUILDDIR}
if [ "$(id -u)" -ne 0 ]; then
	# In CI a skip would hide a missing capability: fail there instead.
	if [ -n "${CI:-}" ]; then
		echo "serial-usb: needs root for mount namespaces (CI is expected to be root)" >&2
		exit 1
	fi
	echo "serial-usb: needs root for mount namespaces, skipping" >&2
	exit 77
fi
GW_TEST_FAKE_SYSFS=1 CK_RUN_CASE=usb-sysfs CK_FORK=yes exec "$build/tests/component/test-serial"
