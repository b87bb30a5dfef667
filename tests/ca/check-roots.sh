#!/bin/sh
# SPDX-License-Identifier: MIT
# The Aliyun root bundle installed with sensorgw (conf/ca/aliyun-iot-roots.pem): exactly the
# three roots of docs/protocols/aliyun.md §4.4 ("Root bundle"), each by its SHA-256 fingerprint, and installed
# where the default ca_file of type = aliyun (GW_ALIYUN_CA_FILE in gw-build.h) points.
# Usage: check-roots.sh SOURCE_ROOT BUILD_ROOT
set -eu

src=$1
build=$2
bundle=$src/conf/ca/aliyun-iot-roots.pem
openssl=/usr/bin/openssl
python=/usr/bin/python3

fail() {
	echo "check-roots: $*" >&2
	exit 1
}

[ -x "$openssl" ] || fail "$openssl is missing: install the openssl package"
[ -x "$python" ] || fail "$python is missing"
[ -r "$bundle" ] || fail "cannot read $bundle"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One file per certificate; the comment lines between them are not part of any.
awk -v d="$tmp" '
	/^-----BEGIN CERTIFICATE-----$/ { n++; f = sprintf("%s/cert-%d.pem", d, n) }
	f { print > f }
	/^-----END CERTIFICATE-----$/ { close(f); f = "" }
' "$bundle"
n=$(find "$tmp" -name 'cert-*.pem' | wc -l)
[ "$n" -eq 3 ] || fail "$bundle holds $n certificates, expected 3"

# name|SHA-256|subject (RFC 2253). docs/protocols/aliyun.md §4.4 gives the fingerprints' first and last 8
# bytes: GlobalSign R1 EB:D4:10:40:E4:BB:3E:C7…D4:33:1C:99, R6 2C:AB:EA:FE:37:D0:6C:A2…AD:6C:CF:69,
# Aliyun IoT Root CA 7C:A4:38:A3:97:6B:52:42…15:66:16:76.
expected='GlobalSign Root CA (R1)|EB:D4:10:40:E4:BB:3E:C7:42:C9:E3:81:D3:1E:F2:A4:1A:48:B6:68:5C:96:E7:CE:F3:C1:DF:6C:D4:33:1C:99|CN=GlobalSign Root CA,OU=Root CA,O=GlobalSign nv-sa,C=BE
GlobalSign Root CA - R6|2C:AB:EA:FE:37:D0:6C:A2:2A:BA:73:91:C0:03:3D:25:98:29:52:C4:53:64:73:49:76:3A:3A:B5:AD:6C:CF:69|CN=GlobalSign,O=GlobalSign,OU=GlobalSign Root CA - R6
Aliyun IoT Root CA|7C:A4:38:A3:97:6B:52:42:D2:31:F8:61:49:98:22:DA:85:58:31:38:27:35:83:6B:36:1E:7E:97:15:66:16:76|CN=Aliyun IoT Root CA,OU=Root CA,O=Aliyun IoT,L=Hangzhou,ST=Zhejiang,C=CN'

found=''
for cert in "$tmp"/cert-*.pem; do
	fp=$("$openssl" x509 -in "$cert" -noout -fingerprint -sha256 | sed 's/^[^=]*=//')
	subject=$("$openssl" x509 -in "$cert" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
	line=$(printf '%s\n' "$expected" | grep -F "|$fp|") ||
		fail "$(basename "$cert") ($subject) has SHA-256 $fp, which is none of the expected roots"
	name=${line%%|*}
	want_subject=${line##*|}
	[ "$subject" = "$want_subject" ] || fail "$name: subject '$subject', expected '$want_subject'"
	case "$found" in
	*"|$name|"*) fail "$name is in the bundle twice" ;;
	esac
	found="$found|$name|"
	# self-signed roots: each verifies against the bundle as OpenSSL loads it (comments and
	# all); expiry is not the question here (R1 expires in 2028)
	"$openssl" verify -no_check_time -CAfile "$bundle" "$cert" >/dev/null ||
		fail "$name does not verify against $bundle"
	echo "ok: $name $fp"
done

# The default ca_file is where meson installs the bundle.
default=$(sed -n 's/^#define GW_ALIYUN_CA_FILE "\(.*\)"$/\1/p' "$build/gw-build.h")
[ -n "$default" ] || fail "no GW_ALIYUN_CA_FILE in $build/gw-build.h"
installed=$("$python" -c 'import json, sys
print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' \
	"$build/meson-info/intro-installed.json" "$bundle")
[ -n "$installed" ] || fail "meson does not install $bundle"
[ "$installed" = "$default" ] ||
	fail "meson installs the bundle as $installed, but the default ca_file is $default"
echo "ok: installed as $installed, the default ca_file"
