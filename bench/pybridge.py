#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The bridge users write by hand, for bench/perf.sh to compare with: read text frames from a
serial line with pyserial, turn each key=value line into JSON and publish it at QoS 1 with
paho-mqtt, one message per line. No spool: what the broker does not take is lost.

    bench/pybridge.py TTY PORT
"""
import json
import sys
import time

import paho.mqtt.client as mqtt
import serial


def parse(line):
    out = {}
    for pair in line.replace(";", ",").split(","):
        k, sep, v = pair.partition("=")
        if not sep:
            continue
        try:
            out[k.strip()] = int(v) if v.strip().lstrip("-").isdigit() else float(v)
        except ValueError:
            out[k.strip()] = v.strip()
    return out


def main():
    tty, port = sys.argv[1], int(sys.argv[2])
    client = mqtt.Client()
    client.connect("127.0.0.1", port, 60)
    client.loop_start()
    ser = serial.Serial(tty, 115200, timeout=1)
    while True:
        raw = ser.readline()
        if not raw:
            continue
        params = parse(raw.decode(errors="replace").strip())
        if not params:
            continue
        payload = json.dumps({"device": "py", "ts": int(time.time() * 1000), "params": params})
        client.publish("pybench/py/telemetry", payload, qos=1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
