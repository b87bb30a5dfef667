#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The same bridge as bench/pybridge.py, written the way its faster variant usually is: it
reads whatever the serial line holds at once (ser.read(ser.in_waiting or 1)) instead of a byte
at a time through readline(), keeps the bytes in a buffer and splits the lines itself on b"\\n".
Each key=value line becomes JSON, published at QoS 1 with paho-mqtt, one message per line, on
pychunk/py/telemetry. No spool: what the broker does not take is lost.

    bench/pybridge_chunked.py TTY PORT
"""
import json
import sys
import time

import paho.mqtt.client as mqtt
import serial

# the same line parser as the naive bridge, so only the reading differs
from pybridge import parse


def main():
    tty, port = sys.argv[1], int(sys.argv[2])
    client = mqtt.Client()
    client.connect("127.0.0.1", port, 60)
    client.loop_start()
    ser = serial.Serial(tty, 115200, timeout=1)
    buf = b""
    while True:
        chunk = ser.read(ser.in_waiting or 1)
        if not chunk:
            continue
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for raw in lines:
            params = parse(raw.decode(errors="replace").strip())
            if not params:
                continue
            payload = json.dumps({"device": "py", "ts": int(time.time() * 1000),
                                  "params": params})
            client.publish("pychunk/py/telemetry", payload, qos=1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
