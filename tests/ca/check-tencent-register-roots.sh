#!/bin/sh
# SPDX-License-Identifier: MIT
# The Tencent registration roots installed with sensorgw (conf/ca/tencent-register-roots.pem):
# exactly DigiCert Global Root CA (the v2 registration host) and the "Tencent Iothub" root (the
# legacy one), in that order, by SHA-256 fingerprint and subject (docs/protocols/tencent.md §1.6),
# installed where the registration's default trust (GW_TENCENT_REGISTER_CA_FILE in gw-build.h)
# points. Usage: check-tencent-register-roots.sh SOURCE_ROOT BUILD_ROOT
set -eu

src=$1
build=$2
bundle=$src/conf/ca/tencent-register-roots.pem
openssl=/usr/bin/openssl
python=/usr/bin/python3
want_fp1='43:48:A0:E9:44:4C:78:CB:26:5E:05:8D:5E:89:44:B4:D8:4F:96:62:BD:26:DB:25:7F:89:34:A4:43:C7:01:61'
want_subject1='CN=DigiCert Global Root CA,OU=www.digicert.com,O=DigiCert Inc,C=US'
want_fp2='3B:1F:A1:E1:14:9E:3F:3B:D3:72:27:30:DB:EF:9E:B7:2E:C4:B9:FD:95:55:30:63:A9:C6:0B:A6:27:78:E7:40'
want_subject2='CN=www.tencent.com,OU=Tencent Iothub,O=Tencent,L=ShenZhen,ST=GuangDong,C=CN'

fail() {
	echo "check-tencent-register-roots: $*" >&2
	exit 1
}

[ -x "$openssl" ] || fail "$openssl is missing: install the openssl package"
[ -x "$python" ] || fail "$python is missing"
[ -r "$bundle" ] || fail "cannot read $bundle"
n=$(grep -c '^-----BEGIN CERTIFICATE-----$' "$bundle")
[ "$n" -eq 2 ] || fail "$bundle holds $n certificates, expected 2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# one file per certificate, in the bundle's order
awk -v dir="$tmp" '/^-----BEGIN CERTIFICATE-----$/ { n++; in_cert = 1 }
	in_cert { print > (dir "/" n ".pem") }
	/^-----END CERTIFICATE-----$/ { in_cert = 0 }' "$bundle"
for i in 1 2; do
	eval want_fp=\$want_fp$i
	eval want_subject=\$want_subject$i
	fp=$("$openssl" x509 -in "$tmp/$i.pem" -noout -fingerprint -sha256 | sed 's/^[^=]*=//')
	[ "$fp" = "$want_fp" ] || fail "certificate $i: SHA-256 $fp, expected $want_fp"
	subject=$("$openssl" x509 -in "$tmp/$i.pem" -noout -subject -nameopt RFC2253 |
		sed 's/^subject=//')
	[ "$subject" = "$want_subject" ] ||
		fail "certificate $i: subject '$subject', expected '$want_subject'"
	"$openssl" verify -no_check_time -CAfile "$tmp/$i.pem" "$tmp/$i.pem" >/dev/null ||
		fail "certificate $i does not verify against itself"
	echo "ok: $want_subject $fp"
done
# the Iothub root is the very certificate of the MQTT file
[ "$("$openssl" x509 -in "$tmp/2.pem" -outform DER | od -An -tx1)" = \
  "$("$openssl" x509 -in "$src/conf/ca/tencent-iot-roots.pem" -outform DER | od -An -tx1)" ] ||
	fail "the Iothub root differs from conf/ca/tencent-iot-roots.pem"

default=$(sed -n 's/^#define GW_TENCENT_REGISTER_CA_FILE "\(.*\)"$/\1/p' "$build/gw-build.h")
[ -n "$default" ] || fail "no GW_TENCENT_REGISTER_CA_FILE in $build/gw-build.h"
installed=$("$python" -c 'import json, sys
print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' \
	"$build/meson-info/intro-installed.json" "$bundle")
[ -n "$installed" ] || fail "meson does not install $bundle"
[ "$installed" = "$default" ] ||
	fail "meson installs the roots as $installed, but the registration's default is $default"
echo "ok: installed as $installed, the registration's default"
