# SPDX-License-Identifier: MIT
"""A minimal MQTT 3.1.1 client for the test clouds' self-tests (test_aliyun_cloud.py,
test_tencent_cloud.py): blocking, one socket, every read with a deadline. stdlib only."""

import json
import socket
import ssl
import time


def _enc_len(n):
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _s(x):
    b = x.encode() if isinstance(x, str) else x
    return len(b).to_bytes(2, "big") + b


class MQTT:
    def __init__(self, port, tls_ctx=None, timeout=5.0):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls_ctx is not None:
            s = tls_ctx.wrap_socket(s, server_hostname="localhost")
        self.sock = s
        self.buf = b""
        self.backlog = []   # PUBLISHes expect_topic passed over

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, first, body):
        self.sock.sendall(bytes([first]) + _enc_len(len(body)) + body)

    def _read(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("MQTT read timed out")
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("MQTT read timed out")
            except (ConnectionError, ssl.SSLError, OSError):
                d = b""
            if not d:
                raise EOFError("closed by server")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def packet(self, timeout=5.0):
        dl = time.monotonic() + timeout
        first = self._read(1, dl)[0]
        n, mult = 0, 1
        while True:
            b = self._read(1, dl)[0]
            n += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                break
        return first >> 4, first & 15, self._read(n, dl)

    def connect(self, client_id, username, password, keepalive=300, clean=True,
                proto=("MQTT", 4)):
        flags = 0x02 if clean else 0
        payload = _s(client_id)
        if username is not None:
            flags |= 0x80
            payload += _s(username)
        if password is not None:
            flags |= 0x40
            payload += _s(password)
        self.send(0x10, _s(proto[0]) + bytes([proto[1], flags]) + keepalive.to_bytes(2, "big")
                  + payload)
        t, _, body = self.packet()
        assert t == 2 and len(body) == 2, (t, body)
        return body[1]

    def subscribe(self, filters, pid=1):
        body = pid.to_bytes(2, "big") + b"".join(_s(f) + b"\x00" for f in filters)
        self.send(0x82, body)
        t, _, body = self.packet()
        assert t == 9 and body[:2] == pid.to_bytes(2, "big"), (t, body)
        return list(body[2:])

    def publish(self, topic, payload, qos=0, pid=1):
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        if isinstance(payload, str):
            payload = payload.encode()
        body = _s(topic) + (pid.to_bytes(2, "big") if qos else b"") + payload
        self.send(0x30 | (qos << 1), body)

    def expect_publish(self, timeout=5.0):
        """Next PUBLISH (PUBACKs in between are skipped); returns (topic, payload bytes)."""
        dl = time.monotonic() + timeout
        while True:
            t, flags, body = self.packet(max(0.01, dl - time.monotonic()))
            if t == 4:
                continue
            assert t == 3, "expected PUBLISH, got type %d" % t
            n = int.from_bytes(body[:2], "big")
            topic = body[2:2 + n].decode()
            rest = body[2 + n:]
            if (flags >> 1) & 3:
                self.send(0x40, rest[:2])
                rest = rest[2:]
            return topic, rest

    def expect_topic(self, topic, timeout=5.0):
        """The next PUBLISH on topic, as parsed JSON; others are kept for later calls."""
        for i, (t, p) in enumerate(self.backlog):
            if t == topic:
                del self.backlog[i]
                return json.loads(p)
        dl = time.monotonic() + timeout
        while True:
            t, p = self.expect_publish(max(0.01, dl - time.monotonic()))
            if t == topic:
                return json.loads(p)
            self.backlog.append((t, p))

    def closed_within(self, timeout):
        """True if the server closes the connection within timeout (other packets ignored)."""
        dl = time.monotonic() + timeout
        try:
            while True:
                self.packet(max(0.01, dl - time.monotonic()))
        except EOFError:
            return True
        except TimeoutError:
            return False
