#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A scripted MQTT 3.1.1 broker for fault tests, in the style of mosquitto's test/lib fake
brokers: it speaks just enough of the protocol to take QoS 1 PUBLISHes from one client.

CONNECT is answered with CONNACK 0 and PINGREQ with PINGRESP. Every PUBLISH is logged, with
its payload, as one JSON line. The fault: in each connection the broker acknowledges
--ack-between PUBLISHes and then closes the socket on the next one without a PUBACK, until
--faults faults have been injected; after that it acknowledges everything. Acknowledging at
least one PUBLISH per connection before the fault means the record cut off last time is the
first one acknowledged next time, so no record is faulted twice (the gateway would dead-letter
a record that fails deadletter_after times in a row).

Log lines (--log, appended, flushed per line):
  {"ev": "connect", "conn": N, "t": ms, "client_id": "..."}
  {"ev": "publish", "conn": N, "t": ms, "mid": M, "qos": Q, "dup": D, "topic": "...",
   "payload": "...", "action": "ack" | "fault"}
  {"ev": "close", "conn": N, "t": ms, "why": "..."}
The chosen port is written to --portfile (written to a temporary name, then renamed) once
the socket listens.
"""

import argparse
import json
import os
import socket
import sys
import threading
import time


class State:
    def __init__(self, faults, ack_between, log_path):
        self.lock = threading.Lock()
        self.faults_left = faults
        self.ack_between = ack_between
        self.conns = 0
        self.log = open(log_path, "a", encoding="utf-8")

    def write(self, rec):
        rec["t"] = int(time.time() * 1000)
        with self.lock:
            self.log.write(json.dumps(rec, separators=(",", ":")) + "\n")
            self.log.flush()

    def next_conn(self):
        with self.lock:
            self.conns += 1
            return self.conns

    def take_fault(self):
        with self.lock:
            if self.faults_left <= 0:
                return False
            self.faults_left -= 1
            return True


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("peer closed")
        buf += chunk
    return buf


def read_packet(sock):
    first = read_exact(sock, 1)[0]
    mult, length = 1, 0
    for _ in range(4):
        b = read_exact(sock, 1)[0]
        length += (b & 0x7F) * mult
        if not b & 0x80:
            break
        mult *= 128
    else:
        raise ValueError("malformed remaining length")
    return first, read_exact(sock, length) if length else b""


def serve(conn, st):
    n = st.next_conn()
    acked = 0
    why = "peer closed"
    try:
        first, body = read_packet(conn)
        if first >> 4 != 1:
            raise ValueError("first packet is not CONNECT")
        # Variable header: protocol name, level, flags, keepalive; then the client id.
        plen = int.from_bytes(body[0:2], "big")
        pos = 2 + plen + 4
        cid_len = int.from_bytes(body[pos:pos + 2], "big")
        client_id = body[pos + 2:pos + 2 + cid_len].decode("utf-8", "replace")
        st.write({"ev": "connect", "conn": n, "client_id": client_id})
        conn.sendall(bytes([0x20, 0x02, 0x00, 0x00]))
        while True:
            first, body = read_packet(conn)
            kind = first >> 4
            if kind == 3:
                qos = (first >> 1) & 3
                tlen = int.from_bytes(body[0:2], "big")
                topic = body[2:2 + tlen].decode("utf-8", "replace")
                pos = 2 + tlen
                mid = None
                if qos:
                    mid = int.from_bytes(body[pos:pos + 2], "big")
                    pos += 2
                rec = {"ev": "publish", "conn": n, "mid": mid, "qos": qos,
                       "dup": (first >> 3) & 1, "topic": topic,
                       "payload": body[pos:].decode("utf-8", "replace")}
                if qos == 1 and acked >= st.ack_between and st.take_fault():
                    rec["action"] = "fault"
                    st.write(rec)
                    why = "fault injected"
                    return
                rec["action"] = "ack"
                st.write(rec)
                if qos == 1:
                    conn.sendall(bytes([0x40, 0x02]) + mid.to_bytes(2, "big"))
                    acked += 1
            elif kind == 12:
                conn.sendall(bytes([0xD0, 0x00]))
            elif kind == 14:
                why = "DISCONNECT"
                return
            else:
                why = "unexpected packet type %d" % kind
                return
    except (EOFError, ConnectionError, ValueError, OSError) as e:
        why = str(e) or type(e).__name__
    finally:
        # SO_LINGER 0 is not used: the fault is an ordinary close, as a broker process
        # that dies or drops a client produces.
        conn.close()
        st.write({"ev": "close", "conn": n, "why": why})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--portfile", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--faults", type=int, default=100)
    ap.add_argument("--ack-between", type=int, default=5)
    a = ap.parse_args()
    if a.ack_between < 1:
        ap.error("--ack-between must be at least 1")

    st = State(a.faults, a.ack_between, a.log)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", a.port))
    srv.listen(8)
    tmp = a.portfile + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write("%d\n" % srv.getsockname()[1])
    os.rename(tmp, a.portfile)
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(conn, st), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
