#!/bin/sh
# SPDX-License-Identifier: MIT
# The Tencent root installed with sensorgw (conf/ca/tencent-iot-roots.pem): exactly the one root
# of docs/protocols/tencent.md §1.6 ("Tencent Iothub"), by its SHA-256 fingerprint and subject, installed
# where the default ca_file of type = tencent (GW_TENCENT_CA_FILE in gw-build.h) points.
# Usage: check-tencent-root.sh SOURCE_ROOT BUILD_ROOT
set -eu

src=$1
build=$2
bundle=$src/conf/ca/tencent-iot-roots.pem
openssl=/usr/bin/openssl
python=/usr/bin/python3
want_fp='3B:1F:A1:E1:14:9E:3F:3B:D3:72:27:30:DB:EF:9E:B7:2E:C4:B9:FD:95:55:30:63:A9:C6:0B:A6:27:78:E7:40'
want_subject='CN=www.tencent.com,OU=Tencent Iothub,O=Tencent,L=ShenZhen,ST=GuangDong,C=CN'

fail() {
	echo "check-tencent-root: $*" >&2
	exit 1
}

[ -x "$openssl" ] || fail "$openssl is missing: install the openssl package"
[ -x "$python" ] || fail "$python is missing"
[ -r "$bundle" ] || fail "cannot read $bundle"
n=$(grep -c '^-----BEGIN CERTIFICATE-----$' "$bundle")
[ "$n" -eq 1 ] || fail "$bundle holds $n certificates, expected 1"
fp=$("$openssl" x509 -in "$bundle" -noout -fingerprint -sha256 | sed 's/^[^=]*=//')
[ "$fp" = "$want_fp" ] || fail "SHA-256 $fp, expected $want_fp (docs/protocols/tencent.md §1.6)"
subject=$("$openssl" x509 -in "$bundle" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
[ "$subject" = "$want_subject" ] || fail "subject '$subject', expected '$want_subject'"
"$openssl" verify -no_check_time -CAfile "$bundle" "$bundle" >/dev/null ||
	fail "the root does not verify against itself"
echo "ok: Tencent Iothub root $fp"

default=$(sed -n 's/^#define GW_TENCENT_CA_FILE "\(.*\)"$/\1/p' "$build/gw-build.h")
[ -n "$default" ] || fail "no GW_TENCENT_CA_FILE in $build/gw-build.h"
installed=$("$python" -c 'import json, sys
print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' \
	"$build/meson-info/intro-installed.json" "$bundle")
[ -n "$installed" ] || fail "meson does not install $bundle"
[ "$installed" = "$default" ] ||
	fail "meson installs the root as $installed, but the default ca_file is $default"
echo "ok: installed as $installed, the default ca_file"
