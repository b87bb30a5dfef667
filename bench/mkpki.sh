#!/bin/bash
# SPDX-License-Identifier: MIT
# A CA and a server certificate for localhost / 127.0.0.1 (P-256, 2 days), as the tests make
# them, for the benchmarks' loopback clouds (bench/perf.sh, bench/gateway.sh):
#   bench/mkpki.sh DIR
# writes DIR/ca.crt, DIR/ca.key, DIR/server.crt and DIR/server.key; openssl's output goes to
# DIR/openssl.log, which is printed to stderr when a step fails (exit 1).
set -u
d=$1
mkdir -p "$d"
{
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-keyout "$d/ca.key" -out "$d/ca.crt" -subj "/CN=sensorgw bench CA" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$d/server.key" -out "$d/server.csr" -subj /CN=localhost &&
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
			>"$d/server.ext" &&
		openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
			-CAcreateserial -days 2 -sha256 -extfile "$d/server.ext" -out "$d/server.crt"
} >/dev/null 2>"$d/openssl.log" || { cat "$d/openssl.log" >&2; exit 1; }
