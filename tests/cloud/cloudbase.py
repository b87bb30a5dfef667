# SPDX-License-Identifier: MIT
"""What the two test clouds share (stdlib only).

aliyun_cloud.py and tencent_cloud.py are one process model with two protocols. This module is
the model: the event log (DIR/events.jsonl) and waiting on it, the HTTPS server that does the
TLS handshake in each request's thread, the registration handler's transport faults, the
plain-HTTP target of a redirect, an MQTT 3.1.1 broker on one selectors thread (framing,
keepalive, PUBACK, UNSUBSCRIBE, PINGREQ, DISCONNECT, the rate limit, outbound PUBLISH), the
JSON control API (its transport and the commands that mean the same in both clouds), and the
start-up (command line, listeners, DIR/ports.json).

A cloud subclasses Cloud and Broker and supplies its protocol: the CONNECT rules, the topic
ACL, what a device's PUBLISH means, downlinks, registration, and its own control commands.
A cloud with gateways overrides Broker.routes, so that a sub-device's downlinks reach the
gateway session that carries it.
"""

import argparse
import json
import os
import queue
import secrets
import selectors
import signal
import socket
import ssl
import string
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import thingmodel


def now_ms():
    return int(time.time() * 1000)


def rand_alnum(n):
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


class CtlError(Exception):
    pass


# --------------------------------------------------------------------------------------------
# Cloud state: products, settings, the event log

class Cloud:
    ID_KEY = None              # how the control API names a product: "productKey", "productId"
    ID_ATTR = None             # the Device attribute that holds it
    PLATFORM = None            # thingmodel's name of the platform: "aliyun", "tencent"
    REPLY_KEY = None           # what matches a downlink to its reply: "id", "clientToken"
    HTTPS_FAULT_MODES = ()     # the https_fail modes
    INJECT_KINDS = ()          # inject_reply kinds (the last is "any")
    INJECT_CODE = 500          # inject_reply's default code
    LIST_FILTERS = ()          # the fields the listing commands filter on

    def __init__(self, directory, settings):
        self.dir = directory
        self.lock = threading.RLock()
        self.products = {}
        self.settings = settings
        self.https_fault = None               # {"mode", "count" (None = forever), ...}
        self.seq = 0
        self.events = []
        self.cond = threading.Condition()
        self.logf = open(os.path.join(directory, "events.jsonl"), "a", encoding="utf-8")
        self.broker = None
        self.ports = {}
        self.stop = threading.Event()
        self.models = {}                      # product (None: every product) -> ThingModel

    # ---- event log
    def log(self, ev, **fields):
        with self.cond:
            self.seq += 1
            rec = {"seq": self.seq, "t": now_ms(), "ev": ev}
            rec.update(fields)
            self.events.append(rec)
            self.logf.write(json.dumps(rec, default=str) + "\n")
            self.logf.flush()
            self.cond.notify_all()
            return rec

    # ---- thing models (thingmodel.py)
    def set_thing_model(self, model, product=None):
        """Checks the posts of product (default: the model's profile product; None: every
        product without a model of its own) against model (a ThingModel, or None to drop it)."""
        if model is None:
            with self.lock:
                old = self.models.pop(product, None)
            self.log("thing_model", product=product, cleared=old is not None)
            return None
        with self.lock:
            if model.platform != self.PLATFORM:
                raise CtlError("%s: a %s model, not %s" % (model.source or "model", model.platform,
                                                          self.PLATFORM))
            self.models[product] = model
        self.log("thing_model", product=product, **{k: v for k, v in model.summary().items()
                                                    if k != "product"})
        return model

    def load_thing_model(self, arg):
        """--thing-model [PRODUCT=]FILE: FILE for PRODUCT, or for the product its profile
        names (every product when it names none)."""
        product, sep, path = arg.partition("=")
        if not sep or not product or os.sep in product:
            product, path = None, arg
        try:
            m = thingmodel.load(path)
        except thingmodel.ModelError as e:
            raise CtlError(str(e))
        return self.set_thing_model(m, product or m.product)

    def model_for(self, product):
        """The ThingModel the posts of product are checked against, or None."""
        with self.lock:
            return self.models.get(product) or self.models.get(None)

    def violations(self, d, msg, kind, found, event=None):
        """Records the thing-model violations found in one message of device d (refused as a
        whole): one thing_model_violation event each, and in d.violations. msg: the fields
        that name the message (id or clientToken, method, code)."""
        recs = [dict(msg, kind=kind, event=event, identifier=v["identifier"], check=v["check"],
                     reason=v["reason"], value=v["value"], rx=now_ms()) for v in found]
        with self.lock:
            d.violations += recs
        for rec in recs:
            self.log("thing_model_violation", **{self.ID_KEY: getattr(d, self.ID_ATTR)},
                     deviceName=d.dn, **rec)

    def take_https_fault(self):
        with self.lock:
            f = self.https_fault
            if not f:
                return None
            if f.get("count") is not None:
                f["count"] -= 1
                if f["count"] <= 0:
                    self.https_fault = None
            return dict(f)

    # ---- waiting on the event log
    def wait_event(self, match, since, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            i = 0
            while True:
                while i < len(self.events):
                    rec = self.events[i]
                    i += 1
                    if rec["seq"] > since and all(rec.get(k) == v for k, v in match.items()):
                        return rec
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    # ---- what a cloud supplies
    def health(self):
        return {"ports": self.ports, "seq": self.seq}

    def setting_value(self, name, value):
        """The value of a setting given to the control command settings (or CtlError)."""
        return type(self.settings[name])(value)

    def settings_changed(self):
        pass

    def downlink(self, a, kind):
        """Runs in the broker thread: sends a downlink, returns its record."""
        raise NotImplementedError


# --------------------------------------------------------------------------------------------
# HTTPS (registration) and the plain-HTTP redirect target

class TLSThreadingHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, ctx, cloud):
        super().__init__(addr, handler)
        self.ctx, self.cloud = ctx, cloud

    def finish_request(self, request, client_address):
        request.settimeout(10)   # the TLS handshake runs in this request's thread
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.cloud.log("tls_error", listener="https", peer=client_address[1], error=str(e))
            return
        try:
            tls.settimeout(30)
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        self.cloud.log("https_handler_error", error=repr(sys.exc_info()[1]))


class RegistrationHandler(BaseHTTPRequestHandler):
    """The registration API's handler (served by TLSThreadingHTTPServer): JSON replies and the
    https_fail modes that break the transport rather than the reply."""
    protocol_version = "HTTP/1.1"
    timeout = 30
    sys_version = ""

    def log_message(self, *args):
        pass

    def send_json(self, status, obj, extra=()):
        body = obj if isinstance(obj, bytes) else json.dumps(obj, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def transport_fault(self, mode, f, ok_raw, redirect_path, huge_head, huge_tail):
        """Answers with fault mode (f: the https_fail arguments) when it is one of truncated,
        short_body, not_json, huge, drip, redirect_http, reset or hang, and returns True.
        ok_raw is the success reply the fault spoils."""
        cloud = self.server.cloud
        if mode == "truncated":
            self.send_json(200, ok_raw[:len(ok_raw) // 2])
        elif mode == "short_body":
            self.send_response(200)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(ok_raw)))
            self.end_headers()
            self.wfile.write(ok_raw[:len(ok_raw) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif mode == "not_json":
            self.send_json(200, b"<html><body>gateway error</body></html>")
        elif mode == "huge":
            self.send_huge(int(f.get("size", 10 * 1024 * 1024)), huge_head, huge_tail)
        elif mode == "drip":
            self.send_drip(ok_raw, float(f.get("interval", 1.0)))
        elif mode == "redirect_http":
            loc = "http://127.0.0.1:%d%s" % (cloud.ports["http"], redirect_path)
            self.send_response(int(f.get("status", 302)))
            self.send_header("Location", loc)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif mode == "reset":
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           b"\x01\x00\x00\x00\x00\x00\x00\x00")
            except OSError:
                pass
        elif mode == "hang":
            cloud.stop.wait(float(f.get("seconds", 30)))
            self.close_connection = True
        else:
            return False
        return True

    def send_huge(self, size, head, tail):
        """A chunked reply of head, size bytes of "A" and tail."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        chunk = b"A" * 65536
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(head), head))
            while sent < size:
                c = chunk[:min(len(chunk), size - sent)]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
                sent += len(c)
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail))
            self.wfile.flush()
        except OSError as e:
            self.server.cloud.log("https_fault_aborted", mode="huge", sent=sent, error=str(e))
        self.close_connection = True

    def send_drip(self, body, interval):
        """body one byte per interval (seconds)."""
        cloud = self.server.cloud
        self.send_response(200)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.flush()
        sent = 0
        try:
            for b in body:
                if cloud.stop.wait(interval):
                    break
                self.wfile.write(bytes([b]))
                self.wfile.flush()
                sent += 1
        except OSError as e:
            cloud.log("https_fault_aborted", mode="drip", sent=sent, error=str(e))
        self.close_connection = True


def make_plain_handler(cloud, answer):
    """The plain-HTTP listener, where the redirect_http fault points: every request is logged
    as insecure_request and answered 200 with answer(self.path, raw body) (bytes, JSON)."""
    class Plain(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 10

        def log_message(self, *args):
            pass

        def any(self):
            n = int(self.headers.get("Content-Length", 0) or 0)
            raw = self.rfile.read(min(n, 8192))
            cloud.log("insecure_request", method=self.command, path=self.path,
                      body=raw.decode("utf-8", "replace"))
            out = answer(self.path, raw)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = any

    return Plain


# --------------------------------------------------------------------------------------------
# MQTT 3.1.1 broker (selectors, one thread; other threads hand work over with Broker.call)

def enc_len(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def enc_str(s):
    b = s.encode() if isinstance(s, str) else s
    return len(b).to_bytes(2, "big") + b


def packet(ptype_flags, body):
    return bytes([ptype_flags]) + enc_len(len(body)) + body


def topic_matches(filt, topic):
    f, t = filt.split("/"), topic.split("/")
    for i, part in enumerate(f):
        if part == "#":
            return True
        if i >= len(t):
            return False
        if part != "+" and part != t[i]:
            return False
    return len(f) == len(t)


def valid_filter(filt):
    if not filt or "\x00" in filt:
        return False
    parts = filt.split("/")
    for i, p in enumerate(parts):
        if "#" in p and (p != "#" or i != len(parts) - 1):
            return False
        if "+" in p and p != "+":
            return False
    return True


class ProtocolError(Exception):
    pass


class Reader:
    def __init__(self, data):
        self.d, self.i = data, 0

    def u8(self):
        if self.i + 1 > len(self.d):
            raise ProtocolError("short packet")
        self.i += 1
        return self.d[self.i - 1]

    def u16(self):
        if self.i + 2 > len(self.d):
            raise ProtocolError("short packet")
        self.i += 2
        return int.from_bytes(self.d[self.i - 2:self.i], "big")

    def raw(self):
        n = self.u16()
        if self.i + n > len(self.d):
            raise ProtocolError("short string")
        self.i += n
        return bytes(self.d[self.i - n:self.i])

    def s(self):
        try:
            return self.raw().decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("bad UTF-8")

    def rest(self):
        return bytes(self.d[self.i:])

    def left(self):
        return len(self.d) - self.i


class Conn:
    """One client connection; a cloud's subclass adds who logged in and how."""
    counter = 0

    def __init__(self, sock, peer, tls, listener):
        Conn.counter += 1
        self.id = Conn.counter
        self.sock, self.peer, self.tls, self.listener = sock, peer, tls, listener
        self.handshaking = tls
        self.want_write_hs = False
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.state = "new"         # new | session | closed (and what a cloud adds)
        self.dn = None
        self.keepalive = 0
        self.subs = {}
        self.next_pid = 1
        self.inflight = {}
        self.deadline = None
        self.close_after_flush = None
        self.device = None


class Broker:
    MAX_PACKET = 1024 * 1024
    CONN = Conn
    PARSE_BEFORE_EOF = True    # what came with the end (a DISCONNECT, then the close) counts
    READ_WHILE_CLOSING = True  # keeps reading past MAX_PACKET once a close is pending
    QOS2_NOTE = ""             # appended to the QoS 2 flow packet's protocol error

    def __init__(self, cloud, ctx):
        self.cloud, self.ctx = cloud, ctx
        self.sel = selectors.DefaultSelector()
        self.conns = {}
        self.calls = queue.Queue()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.listeners = {}

    # ---- what a cloud supplies
    def who(self, c):
        """The fields that name the device of c in events."""
        raise NotImplementedError

    def close_fields(self, c):
        return self.who(c)

    def disconnect_fields(self, c):
        return self.who(c)

    def deadline_reason(self, c):
        return "keepalive timeout" if c.state == "session" else "no CONNECT in time"

    def tls_ok(self, c):
        self.cloud.log("tls_ok", conn=c.id, version=c.sock.version())

    def before_packets(self, c):
        """False while c.inbuf holds something other than MQTT packets yet."""
        return True

    def on_connect(self, c, body):
        raise NotImplementedError

    def on_subscribe(self, c, body):
        raise NotImplementedError

    def on_publish(self, c, flags, body):
        raise NotImplementedError

    # ---- sockets
    def listen(self, name, port, tls):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(64)
        s.setblocking(False)
        self.listeners[name] = (s, tls)
        self.sel.register(s, selectors.EVENT_READ, ("listen", name))
        return s.getsockname()[1]

    # ---- cross-thread calls
    def call(self, fn, timeout=10.0):
        box = {"done": threading.Event()}
        self.calls.put((fn, box))
        try:
            self.wake_w.send(b"x")
        except OSError:
            pass
        if not box["done"].wait(timeout):
            raise CtlError("broker did not answer")
        if "err" in box:
            raise box["err"]
        return box.get("ret")

    def run(self):
        while not self.cloud.stop.is_set():
            for key, mask in self.sel.select(0.2):
                d = key.data
                if d == "wake":
                    try:
                        self.wake_r.recv(4096)
                    except OSError:
                        pass
                    while True:
                        try:
                            fn, box = self.calls.get_nowait()
                        except queue.Empty:
                            break
                        try:
                            box["ret"] = fn()
                        except Exception as e:   # handed back to the caller
                            box["err"] = e
                        box["done"].set()
                elif isinstance(d, tuple):
                    self.accept(d[1])
                else:
                    try:
                        self.service(d, mask)
                    except Exception as e:   # a fixture bug: keep serving everybody else
                        self.cloud.log("broker_error", conn=d.id, error=repr(e))
                        self.close(d, "internal error: %r" % e)
            now = time.monotonic()
            for c in list(self.conns.values()):
                if c.deadline is not None and now > c.deadline:
                    self.close(c, self.deadline_reason(c))
        for c in list(self.conns.values()):
            self.close(c, "shutdown")

    def accept(self, name):
        s, tls = self.listeners[name]
        try:
            sock, peer = s.accept()
        except OSError:
            return
        sock.setblocking(False)
        if tls:
            try:
                sock = self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            except (ssl.SSLError, OSError) as e:
                self.cloud.log("tls_error", listener=name, error=str(e))
                sock.close()
                return
        c = self.CONN(sock, peer, tls, name)
        c.deadline = time.monotonic() + self.cloud.settings["connect_timeout"]
        self.conns[c.id] = c
        self.sel.register(sock, selectors.EVENT_READ, c)
        self.cloud.log("mqtt_accept", conn=c.id, listener=name, peer=peer[1])

    def update_mask(self, c):
        if c.state == "closed":
            return
        m = selectors.EVENT_READ
        if c.outbuf or c.want_write_hs:
            m |= selectors.EVENT_WRITE
        try:
            self.sel.modify(c.sock, m, c)
        except (KeyError, ValueError, OSError):
            pass

    def service(self, c, mask):
        if c.state == "closed":
            return
        if c.handshaking:
            try:
                c.sock.do_handshake()
                c.handshaking = False
                c.want_write_hs = False
                self.tls_ok(c)
            except ssl.SSLWantReadError:
                c.want_write_hs = False
                self.update_mask(c)
                return
            except ssl.SSLWantWriteError:
                c.want_write_hs = True
                self.update_mask(c)
                return
            except (ssl.SSLError, OSError) as e:
                self.cloud.log("tls_error", conn=c.id, listener=c.listener, error=str(e))
                self.close(c, "tls handshake failed", log=False)
                return
        if mask & selectors.EVENT_WRITE:
            self.flush(c)
            if c.state == "closed":
                return
        if mask & selectors.EVENT_READ or (c.tls and c.sock.pending()):
            while True:
                try:
                    data = c.sock.recv(65536)
                except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    break
                except (ssl.SSLError, OSError) as e:
                    self.close(c, "read error: %s" % e)
                    return
                if not data:
                    if self.PARSE_BEFORE_EOF:
                        self.parse(c)
                    if c.state != "closed":
                        self.close(c, "peer closed")
                    return
                c.inbuf += data
                if len(c.inbuf) > self.MAX_PACKET + 8 and \
                        (c.close_after_flush is None or not self.READ_WHILE_CLOSING):
                    break
            self.parse(c)
        self.update_mask(c)

    def flush(self, c):
        while c.outbuf and c.state != "closed":
            try:
                n = c.sock.send(c.outbuf[:16384])
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                break
            except (ssl.SSLError, OSError) as e:
                self.close(c, "write error: %s" % e)
                return
            del c.outbuf[:n]
        if not c.outbuf and c.close_after_flush is not None and c.state != "closed":
            self.close(c, c.close_after_flush)
            return
        self.update_mask(c)

    def send(self, c, data):
        if c.state == "closed":
            return
        c.outbuf += data
        self.flush(c)

    def close(self, c, why, log=True):
        if c.state == "closed":
            return
        prev = c.state
        c.state = "closed"
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        try:
            c.sock.close()
        except OSError:
            pass
        self.conns.pop(c.id, None)
        with self.cloud.lock:
            if c.device is not None and c in c.device.sessions:
                c.device.sessions.remove(c)
        if log:
            self.cloud.log("mqtt_close", conn=c.id, why=why, state=prev, **self.close_fields(c))

    def fatal(self, c, why):
        """Close now (protocol violation, limit or ACL) without flushing unsent data first."""
        self.cloud.log("mqtt_violation", conn=c.id, why=why, **self.who(c))
        self.close(c, why)

    # ---- parsing
    def parse(self, c):
        if not self.before_packets(c):
            return
        while c.state != "closed" and c.close_after_flush is None:
            buf = c.inbuf
            if len(buf) < 2:
                return
            mult, n, i = 1, 0, 1
            while True:
                if i >= len(buf):
                    if i > 4:
                        return self.fatal(c, "bad remaining length")
                    return
                b = buf[i]
                n += (b & 0x7F) * mult
                mult *= 128
                i += 1
                if not b & 0x80:
                    break
                if i > 4:
                    return self.fatal(c, "bad remaining length")
            if n > self.MAX_PACKET:
                return self.fatal(c, "packet too large (%d bytes)" % n)
            if len(buf) < i + n:
                return
            first, body = buf[0], bytes(buf[i:i + n])
            del buf[:i + n]
            if c.state == "session" and c.keepalive:
                c.deadline = time.monotonic() + c.keepalive * 1.5
            try:
                self.handle(c, first >> 4, first & 0x0F, body)
            except ProtocolError as e:
                return self.fatal(c, "protocol error: %s" % e)

    def handle(self, c, ptype, flags, body):
        if c.state == "new":
            if ptype != 1:
                raise ProtocolError("first packet is not CONNECT (type %d)" % ptype)
            return self.on_connect(c, body)
        if ptype == 1:
            raise ProtocolError("second CONNECT")
        if ptype == 3:
            return self.on_publish(c, flags, body)
        if ptype == 4:          # PUBACK for our QoS 1 downlink
            if flags != 0 or len(body) != 2:
                raise ProtocolError("bad PUBACK")
            pid = int.from_bytes(body, "big")
            rec = c.inflight.pop(pid, None)
            self.cloud.log("mqtt_puback_in", conn=c.id, pid=pid, topic=rec and rec["topic"],
                           known=rec is not None)
            return
        if ptype == 8:
            if flags != 2:
                raise ProtocolError("SUBSCRIBE flags must be 0010")
            return self.on_subscribe(c, body)
        if ptype == 10:
            if flags != 2:
                raise ProtocolError("UNSUBSCRIBE flags must be 0010")
            r = Reader(body)
            pid = r.u16()
            filters = []
            while r.left():
                filters.append(r.s())
            if not filters:
                raise ProtocolError("UNSUBSCRIBE without filters")
            for f in filters:
                c.subs.pop(f, None)
            self.cloud.log("mqtt_unsubscribe", conn=c.id, **self.who(c), filters=filters)
            return self.send(c, packet(0xB0, pid.to_bytes(2, "big")))
        if ptype == 12:
            if body:
                raise ProtocolError("PINGREQ with body")
            self.cloud.log("mqtt_pingreq", conn=c.id, **self.who(c))
            return self.send(c, b"\xd0\x00")
        if ptype == 14:
            self.cloud.log("mqtt_disconnect", conn=c.id, **self.disconnect_fields(c))
            return self.close(c, "client DISCONNECT")
        if ptype in (5, 6, 7):
            raise ProtocolError("QoS 2 flow packet (type %d): QoS 2 is not supported%s"
                                % (ptype, self.QOS2_NOTE))
        raise ProtocolError("unexpected packet type %d" % ptype)

    # ---- CONNECT
    @staticmethod
    def read_connect(body):
        """CONNECT's fields: (info for the mqtt_connect event, username, password)."""
        r = Reader(body)
        proto = r.s()
        level = r.u8()
        flags = r.u8()
        keepalive = r.u16()
        if flags & 1:
            raise ProtocolError("CONNECT reserved flag set")
        cid = r.s()
        will = bool(flags & 0x04)
        if will:
            r.s()
            r.raw()
        username = r.s() if flags & 0x80 else None
        password = r.raw() if flags & 0x40 else None
        info = {"clientId": cid, "username": username, "keepalive": keepalive,
                "cleanSession": bool(flags & 0x02), "will": will, "protocol": proto,
                "level": level}
        return info, username, password

    def refuse_protocol(self, c, info):
        """MQTT 3.1.1, or 3.1 ("MQIsdp"/3, which some SDKs send); else CONNACK 1 and True."""
        proto, level = info["protocol"], info["level"]
        if (proto == "MQTT" and level == 4) or (proto == "MQIsdp" and level == 3):
            return False
        info["reason"] = "unsupported protocol %s/%d" % (proto, level)
        self.connack(c, 1, info)
        return True

    def connack(self, c, rc, info):
        info.update(conn=c.id, rc=rc, listener=c.listener)
        self.cloud.log("mqtt_connect", **info)
        self.send(c, bytes([0x20, 2, 0, rc]))
        if rc != 0:
            c.close_after_flush = "CONNACK %d" % rc
            self.flush(c)

    # ---- SUBSCRIBE and PUBLISH from the device
    @staticmethod
    def read_subscribe(body):
        """(packet id, [(filter, requested QoS)])"""
        r = Reader(body)
        pid = r.u16()
        reqs = []
        while r.left():
            f = r.s()
            q = r.u8()
            if q > 2:
                raise ProtocolError("bad requested QoS")
            reqs.append((f, q))
        if not reqs:
            raise ProtocolError("SUBSCRIBE without filters")
        return pid, reqs

    def suback(self, c, pid, reqs, codes):
        self.cloud.log("mqtt_subscribe", conn=c.id, **self.who(c),
                       filters=[f for f, _ in reqs], granted=codes)
        self.send(c, packet(0x90, pid.to_bytes(2, "big") + bytes(codes)))

    def deny_subscribe(self, c, f, codes):
        codes.append(0x80)
        self.cloud.log("acl_denied", conn=c.id, op="subscribe", topic=f, **self.who(c))

    @staticmethod
    def read_publish(flags, body):
        """(topic, qos, packet id or None, payload, retain, dup)"""
        qos = (flags >> 1) & 3
        retain, dup = bool(flags & 1), bool(flags & 8)
        if qos == 3:
            raise ProtocolError("PUBLISH QoS 3")
        r = Reader(body)
        topic = r.s()
        pid = r.u16() if qos else None
        payload = r.rest()
        if not topic or "+" in topic or "#" in topic:
            raise ProtocolError("bad PUBLISH topic %r" % topic)
        return topic, qos, pid, payload, retain, dup

    def puback(self, c, pid):
        self.send(c, packet(0x40, pid.to_bytes(2, "big")))

    def refuse_acl(self, c, topic, qos, pid, ev):
        """A PUBLISH outside the device's ACL: logged, then the acl_action setting."""
        self.cloud.log("mqtt_publish_in", refused="acl", **ev)
        self.cloud.log("acl_denied", conn=c.id, op="publish", topic=topic, **self.who(c))
        if self.cloud.settings["acl_action"] == "disconnect":
            return self.fatal(c, "PUBLISH to a topic outside the device's ACL")
        if qos:
            self.puback(c, pid)

    def throttled(self, d):
        """The qps_limit setting: whether this message is one more than d may send in 1 s."""
        limit = int(self.cloud.settings["qps_limit"])
        now = time.monotonic()
        with self.cloud.lock:
            if limit:
                while d.rate and now - d.rate[0] >= 1.0:
                    d.rate.popleft()
                if len(d.rate) >= limit:
                    return True
                d.rate.append(now)
        return False

    # ---- outbound
    def publish(self, c, topic, payload, qos=0):
        if c.state == "closed":
            return None
        t = enc_str(topic)
        pid = None
        if qos:
            pid = c.next_pid
            c.next_pid = c.next_pid % 65535 + 1
            t += pid.to_bytes(2, "big")
            c.inflight[pid] = {"topic": topic}
        self.cloud.log("mqtt_publish_out", conn=c.id, topic=topic, qos=qos, pid=pid,
                       payload=payload.decode("utf-8", "replace"))
        self.send(c, packet(0x30 | (qos << 1), t + payload))
        return pid

    def routes(self, d):
        """The live sessions that carry d's downlinks: its own, and for a sub-device behind a
        gateway the gateway's session it is logged in on (a cloud with gateways overrides
        this)."""
        return list(d.sessions)

    def deliver(self, d, topic, payload, qos=0):
        """Send to every session of d (routes) subscribed to topic. Returns the conn ids."""
        sent = []
        for c in self.routes(d):
            if any(topic_matches(f, topic) for f in c.subs):
                self.publish(c, topic, payload, qos)
                sent.append(c.id)
        return sent


# --------------------------------------------------------------------------------------------
# Control API

class Commands:
    """The control commands that mean the same in both clouds; a cloud adds its own and makes
    the handler with make_control_handler(cloud, commands)."""

    def __init__(self, cloud, servers):
        self.cloud, self.servers = cloud, servers

    def ident(self, a):
        return {self.cloud.ID_KEY: a.get(self.cloud.ID_KEY), "deviceName": a.get("deviceName")}

    def common(self):
        cloud = self.cloud
        return {
            "health": lambda a: cloud.health(), "add_product": cloud.add_product,
            "add_device": cloud.add_device, "settings": self.settings,
            "https_fail": self.https_fail, "inject_reply": self.inject_reply,
            "devices": self.devices, "device": self.device, "publish": self.dl("raw"),
            "kick": self.kick, "log": self.log, "wait": self.wait, "shutdown": self.shutdown,
            "thing_model": self.thing_model, "violations": self.listing("violations"),
        }

    def thing_model(self, a):
        """{"file": PATH} or {"model": {exported JSON}} for the product ID_KEY (default: the
        model's profile product); {"clear": true} drops the model of ID_KEY (without ID_KEY:
        every model); {} lists the models."""
        cloud = self.cloud
        product = a.get(cloud.ID_KEY)
        if a.get("clear"):
            with cloud.lock:
                products = [product] if product else list(cloud.models)
            for p in products:
                cloud.set_thing_model(None, p)
        elif a.get("file") is not None or a.get("model") is not None:
            try:
                m = thingmodel.load(a["file"]) if a.get("file") is not None \
                    else thingmodel.parse(a["model"], "control")
            except thingmodel.ModelError as e:
                raise CtlError(str(e))
            cloud.set_thing_model(m, product or m.product)
        with cloud.lock:
            return {"models": [dict(m.summary(), product=k) for k, m in cloud.models.items()]}

    def settings(self, a):
        cloud = self.cloud
        with cloud.lock:
            for k, v in a.items():
                if k not in cloud.settings:
                    raise CtlError("unknown setting %r" % k)
                cloud.settings[k] = cloud.setting_value(k, v)
            cloud.settings_changed()
            return dict(cloud.settings)

    def https_fail(self, a):
        cloud = self.cloud
        mode = a.get("mode", "none")
        if mode not in cloud.HTTPS_FAULT_MODES:
            raise CtlError("mode must be one of %s" % sorted(cloud.HTTPS_FAULT_MODES))
        with cloud.lock:
            if mode == "none":
                cloud.https_fault = None
            else:
                f = dict(a)
                f["count"] = int(a["count"]) if a.get("count") is not None else None
                cloud.https_fault = f
        cloud.log("ctl_https_fail", **a)
        return {"fault": cloud.https_fault}

    def inject_reply(self, a):
        cloud = self.cloud
        with cloud.lock:
            d = cloud.need_device(a)
            kind = a.get("kind", "any")
            if kind not in cloud.INJECT_KINDS:
                raise CtlError("kind must be %s or %s" % (", ".join(cloud.INJECT_KINDS[:-1]),
                                                          cloud.INJECT_KINDS[-1]))
            if a.get("clear"):
                d.inject = []
            else:
                d.inject.append({"code": int(a.get("code", cloud.INJECT_CODE)),
                                 "count": int(a.get("count", 1)), "kind": kind})
            return {"inject": list(d.inject)}

    def devices(self, a):
        cloud = self.cloud
        with cloud.lock:
            out = []
            for key, p in cloud.products.items():
                if a.get(cloud.ID_KEY) and key != a[cloud.ID_KEY]:
                    continue
                for d in p.devices.values():
                    if a.get("deviceName") and d.dn != a["deviceName"]:
                        continue
                    out.append(d.summary())
            return {"devices": out}

    def device(self, a):
        with self.cloud.lock:
            return self.cloud.need_device(a).summary()

    def listing(self, attr):
        cloud = self.cloud

        def f(a):
            with cloud.lock:
                d = cloud.need_device(a)
                items = list(getattr(d, attr))
            for k in cloud.LIST_FILTERS:
                if a.get(k) is not None:
                    items = [x for x in items if str(x.get(k)) == str(a[k])]
            return {attr: items}
        return f

    def dl(self, kind):
        cloud = self.cloud

        def f(a):
            since = cloud.seq
            rec = dict(cloud.broker.call(lambda: cloud.downlink(a, kind)))
            wait = float(a.get("wait", 0) or 0)
            if wait and kind != "raw":
                ev = cloud.wait_event({"ev": "downlink_reply", cloud.ID_KEY: a.get(cloud.ID_KEY),
                                       "deviceName": a.get("deviceName"),
                                       cloud.REPLY_KEY: rec[cloud.REPLY_KEY], "matched": True},
                                      since, min(wait, 60))
                rec["reply"] = ev and {k: v for k, v in ev.items() if k not in ("seq", "ev", "t")}
                rec["timedOut"] = ev is None
            return rec
        return f

    def kick(self, a):
        cloud = self.cloud

        def k():
            with cloud.lock:
                d = cloud.need_device(a)
                ss = list(d.sessions)
            for c in ss:
                cloud.broker.close(c, "closed by control command kick")
            return {"closed": [c.id for c in ss]}
        return cloud.broker.call(k)

    def log(self, a):
        cloud = self.cloud
        since = int(a.get("since", 0))
        with cloud.cond:
            evs = [e for e in cloud.events if e["seq"] > since]
        if a.get("ev"):
            evs = [e for e in evs if e["ev"] == a["ev"]]
        return {"events": evs[-int(a.get("limit", 1000)):], "seq": cloud.seq}

    def wait(self, a):
        match = a.get("match") or {}
        if not isinstance(match, dict):
            raise CtlError("match must be an object")
        ev = self.cloud.wait_event(match, int(a.get("since", 0)),
                                   min(float(a.get("timeout", 10)), 120))
        if ev is None:
            raise CtlError("timeout waiting for %s" % json.dumps(match))
        return {"event": ev}

    def shutdown(self, a):
        self.cloud.log("ctl_shutdown")
        threading.Thread(target=shutdown_all, args=(self.cloud, self.servers), daemon=True).start()
        return {"bye": True}


def make_control_handler(cloud, commands):
    class Control(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 130

        def log_message(self, *args):
            pass

        def reply(self, status, obj):
            body = json.dumps(obj, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def run(self, args):
            name = urllib.parse.urlsplit(self.path).path.strip("/")
            fn = commands.get(name)
            if fn is None:
                return self.reply(404, {"ok": False, "error": "unknown command %r" % name,
                                        "commands": sorted(commands)})
            try:
                res = fn(args)
            except CtlError as e:
                return self.reply(400, {"ok": False, "error": str(e)})
            except (ValueError, TypeError, KeyError) as e:
                return self.reply(400, {"ok": False, "error": "bad argument: %r" % e})
            except Exception as e:   # a fixture bug: report it instead of hanging the test
                cloud.log("ctl_error", command=name, error=repr(e))
                return self.reply(500, {"ok": False, "error": "internal: %r" % e})
            res = dict(res)
            res["ok"] = True
            self.reply(200, res)

        def do_GET(self):
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            self.run({k: v[0] for k, v in q.items()})

        def do_POST(self):
            n = int(self.headers.get("Content-Length", 0) or 0)
            raw = self.rfile.read(n) if n else b""
            try:
                args = json.loads(raw) if raw.strip() else {}
                if not isinstance(args, dict):
                    raise ValueError("body must be a JSON object")
            except ValueError as e:
                return self.reply(400, {"ok": False, "error": "bad JSON: %s" % e})
            self.run(args)

    return Control


def shutdown_all(cloud, servers):
    cloud.stop.set()
    for s in servers:
        try:
            s.shutdown()
        except Exception:
            pass


# --------------------------------------------------------------------------------------------
# Start-up

def parse_args(doc, argv, mqtt_listeners, canary_help, canary_max=None):
    """The command line both clouds take; mqtt_listeners names the broker's --NAME-port
    options. Returns the arguments and the canary (or None)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--dir", required=True, help="writes ports.json and events.jsonl here")
    ap.add_argument("--products", help="JSON file: {\"products\": [...], \"settings\": {...}}")
    ap.add_argument("--cert", help="server certificate (PEM); default DIR/server.crt")
    ap.add_argument("--key", help="server key (PEM); default DIR/server.key")
    ap.add_argument("--https-cert", help="certificate (PEM) of the HTTPS registration listener "
                    "alone, e.g. under another CA than the MQTT listeners (the platforms serve "
                    "registration under another root); default --cert")
    ap.add_argument("--https-key", help="its key (PEM); needed with --https-cert")
    for name in ("https", "http") + tuple(mqtt_listeners) + ("control",):
        ap.add_argument("--%s-port" % name, type=int, default=0)
    ap.add_argument("--canary", help=canary_help)
    ap.add_argument("--thing-model", action="append", default=[], metavar="[PRODUCT=]FILE",
                    help="check property and event posts against this exported thing model "
                         "(for PRODUCT, default the product its profile names); repeatable")
    a = ap.parse_args(argv)
    if a.canary is not None:
        if canary_max is None:
            if not a.canary.isalnum() or not a.canary.isascii():
                raise SystemExit("--canary: want letters and digits")
        elif not a.canary.isalnum() or not a.canary.isascii() or len(a.canary) > canary_max:
            raise SystemExit("--canary: want at most %d letters and digits" % canary_max)
    os.makedirs(a.dir, exist_ok=True)
    a.cert = a.cert or os.path.join(a.dir, "server.crt")
    a.key = a.key or os.path.join(a.dir, "server.key")
    if bool(a.https_cert) != bool(a.https_key):
        raise SystemExit("--https-cert and --https-key go together")
    return a, a.canary


def server_context(a, cert=None, key=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert or a.cert, key or a.key)
    return ctx


def serve(cloud, a, ctx, https_handler, plain_handler, control_handler, broker, listeners):
    """Loads the --thing-model files, opens the listeners (HTTPS with ctx, or with
    --https-cert/--https-key when given, plain HTTP, the broker's listeners: [(name, tls)],
    control), writes DIR/ports.json and serves until shutdown. control_handler(servers) makes the
    control API's handler. Returns the exit status."""
    for arg in a.thing_model:
        try:
            cloud.load_thing_model(arg)
        except CtlError as e:
            raise SystemExit("--thing-model: %s" % e)
    servers = []
    if a.https_cert:
        ctx = server_context(a, a.https_cert, a.https_key)
    https = TLSThreadingHTTPServer(("127.0.0.1", a.https_port), https_handler, ctx, cloud)
    plain = ThreadingHTTPServer(("127.0.0.1", a.http_port), plain_handler)
    plain.daemon_threads = True
    control = ThreadingHTTPServer(("127.0.0.1", a.control_port), control_handler(servers))
    control.daemon_threads = True
    servers += [https, plain, control]
    cloud.broker = broker
    cloud.ports = {"https": https.server_address[1], "http": plain.server_address[1]}
    for name, tls in listeners:
        cloud.ports[name] = broker.listen(name, getattr(a, name + "_port"), tls)
    cloud.ports.update(control=control.server_address[1], pid=os.getpid())

    def on_signal(signum, frame):
        threading.Thread(target=shutdown_all, args=(cloud, servers), daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
               for s in (https, plain)]
    threads.append(threading.Thread(target=broker.run, daemon=True))
    for t in threads:
        t.start()
    tmp = os.path.join(a.dir, ".ports.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(cloud.ports, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(a.dir, "ports.json"))
    cloud.log("ready", ports=cloud.ports)
    control.serve_forever(poll_interval=0.2)   # returns after shutdown()
    cloud.stop.set()
    for t in threads:
        t.join(timeout=3)
    for s in servers:
        s.server_close()
    cloud.log("stopped")
    return 0
