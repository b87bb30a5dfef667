#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes Aliyun DeviceSecrets into sensorgwd's credential store for the benchmarks
(bench/perf.sh, bench/gateway.sh), in the store's format (docs/credentials.md: one JSON line
per device, a CRC-32C over the bytes before ,"crc32c"), as docs/aliyun.md "Provisioning a
DeviceSecret" does by hand.

    bench/provision_aliyun.py STORE_DIR PRODUCT_KEY PAIRS_FILE

PAIRS_FILE holds one "DeviceName DeviceSecret" per line. The directory is made 0700; each
file is created 0600 and must not exist yet.
"""
import json
import os
import sys
import time

TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    TABLE.append(c)


def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = TABLE[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def main():
    d, pk, pairs = sys.argv[1:4]
    os.makedirs(d, 0o700, exist_ok=True)
    os.chmod(d, 0o700)
    for line in open(pairs):
        dn, secret = line.split()
        body = ('{"v":1,"cloud":"aliyun","product":%s,"device":%s,"kind":"device_secret",'
                '"secret":%s,"obtained_at":%d' % (json.dumps(pk), json.dumps(dn),
                                                  json.dumps(secret), int(time.time() * 1000)))
        fd = os.open(os.path.join(d, dn + ".json"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, (body + ',"crc32c":"%08x"}\n' % crc32c(body.encode())).encode())
        os.close(fd)


if __name__ == "__main__":
    main()
