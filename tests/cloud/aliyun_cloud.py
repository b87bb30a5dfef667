#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A test double of Alibaba Cloud IoT Platform on 127.0.0.1 (stdlib only).

One process serves:
  * HTTPS  POST /auth/register/device   (一型一密 pre-registration, docs/protocols/aliyun.md §2)
  * plain HTTP, the target of the "redirect to http://" failure (any request there is logged
    as "insecure_request")
  * MQTT 3.1.1 on plain TCP and on TLS, enforcing Aliyun's CONNECT rules
    (docs/protocols/aliyun.md §3, §4), the topic ACL, dynamic registration pushes (/ext/register,
    /ext/regnwl), connwl logins, Alink replies (docs/protocols/aliyun.md §5) and cloud-initiated
    downlinks (property set, async service, RRPC)
  * a JSON control API on plain HTTP (127.0.0.1) for tests; see README.md

Start: python3 aliyun_cloud.py --dir DIR --cert server.crt --key server.key [--products FILE]
Once every listener is up, DIR/ports.json is written (temporary name, then renamed):
  {"https": P, "http": P, "mqtt": P, "mqtts": P, "control": P, "pid": PID}
Every event is appended to DIR/events.jsonl as one JSON object per line (flushed per line).

Protocol facts come only from docs/protocols/aliyun.md; decisions where it is silent or
contradictory are marked "DECISION" below and listed in README.md.
"""

import argparse
import collections
import hashlib
import hmac
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

# --------------------------------------------------------------------------------------------
# Signing (docs/protocols/aliyun.md §2, §3, §4)

HMACS = {"hmacsha256": hashlib.sha256, "hmacsha1": hashlib.sha1, "hmacmd5": hashlib.md5}


def hmac_hex(method, key, text):
    """Lower-case hex HMAC; method is one of HMACS (case-insensitive)."""
    return hmac.new(key.encode(), text.encode(), HMACS[method.lower()]).hexdigest()


def register_sign_content(pk, dn, random):
    """docs/protocols/aliyun.md §2: keys alphabetical, key+value, no separators."""
    return "deviceName%sproductKey%srandom%s" % (dn, pk, random)


def mqtt_sign_content(cid, dn, pk, timestamp=None):
    """docs/protocols/aliyun.md §4: the submitted params among clientId, deviceName, productKey, timestamp, sorted."""
    p = {"clientId": cid, "deviceName": dn, "productKey": pk}
    if timestamp is not None:
        p["timestamp"] = timestamp
    return "".join(k + p[k] for k in sorted(p))


def hex_equal(a, b):
    """Hex MACs are compared case-insensitively (docs/protocols/aliyun.md §2: SDKs send both cases)."""
    return hmac.compare_digest(a.lower().encode(), b.lower().encode())


def now_ms():
    return int(time.time() * 1000)


def rand_alnum(n):
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


# --canary TOKEN (the integration tests' canary mode, tests/integration/fixture.h): every
# DeviceSecret and DeviceToken the cloud issues contains the token, so that a test can search
# the daemon's output and files for it.
CANARY = None


def issued_secret(n):
    """A new DeviceSecret or DeviceToken: n random letters and digits, or the canary and
    random ones (at least 8) in canary mode."""
    if CANARY:
        return CANARY + rand_alnum(max(8, n - len(CANARY)))
    return rand_alnum(n)


# --------------------------------------------------------------------------------------------
# Cloud state

# DECISION: docs/protocols/aliyun.md §2 found no numeric codes for HTTPS registration errors ([UNVERIFIED]).
# Codes that D120329 lists for the same meaning are reused; the rest are fixture-made (9xxx)
# so nobody mistakes them for real ones. A client must treat every non-200 alike.
REG_ERRORS = {
    "bad_params": (460, "request parameter error"),
    "no_product": (6250, "product not found"),
    "dynreg_off": (9403, "dynamic registration is disabled for this product"),
    "bad_sign": (9401, "sign check failed"),
    "no_device": (6100, "device not found (not pre-registered)"),
    "activated": (9409, "device already activated; reset it first"),
}

ALINK_MSG = {200: "success", 400: "request error", 429: "rate limit, too many requests",
             460: "request parameter error", 500: "unknown error", 6207: "data format is not json",
             6300: "method not found", 6813: "topic illegal"}


class CtlError(Exception):
    pass


class Device:
    def __init__(self, pk, dn, preregistered=True, secret=None):
        self.pk, self.dn = pk, dn
        self.preregistered = preregistered
        self.secret = secret
        self.secret_source = "preset" if secret else None
        self.activated = False
        self.register_count = 0
        self.tokens = []              # {"clientId","deviceToken","activated"}
        self.connect_attempts = 0
        self.connect_count = 0
        self.last_connack = None
        self.last_connect = None
        self.sessions = []            # live normal/connwl Conn objects
        self.properties = []          # accepted properties
        self.events = []              # accepted events
        self.posts = []               # every uplink post with its reply code
        self.replies = []             # device replies to downlinks
        self.downlinks = {}           # id -> record
        self.inject = []              # [{"code","count","kind"}]
        self.ids_seen = set()
        self.rate = collections.deque()

    def summary(self):
        return {
            "productKey": self.pk, "deviceName": self.dn, "preregistered": self.preregistered,
            "registered": self.secret is not None, "deviceSecret": self.secret,
            "secretSource": self.secret_source, "activated": self.activated,
            "registerCount": self.register_count, "tokens": list(self.tokens),
            "connected": len(self.sessions), "connectAttempts": self.connect_attempts,
            "connectCount": self.connect_count, "lastConnack": self.last_connack,
            "lastConnect": self.last_connect, "properties": len(self.properties),
            "events": len(self.events), "replies": len(self.replies),
            "subscriptions": sorted({f for c in self.sessions for f in c.subs}),
        }


class Product:
    def __init__(self, pk, secret, dynreg=True, nwl=False, allow_tcp=True, schema=None):
        self.pk, self.secret = pk, secret
        self.dynreg, self.nwl, self.allow_tcp = dynreg, nwl, allow_tcp
        self.schema = schema or None
        self.devices = {}


class Cloud:
    def __init__(self, directory):
        self.dir = directory
        self.lock = threading.RLock()
        self.products = {}
        self.settings = {
            "keepalive_over_max": "refuse",   # or "clamp" (Link SDK 4.2 says >1200 is overridden)
            "acl_action": "disconnect",       # or "drop"
            "qps_limit": 30,                  # uplink messages per device per second; 0 = off
            "max_tokens": 5,                  # regnwl activations per (pk, dn) (D74006)
            "sign_without_clientid": False,   # also accept passwords signed without clientId
            "connect_timeout": 10.0,
            "register_session_max": 60.0,
        }
        self.https_fault = None               # {"mode", "count" (None = forever), ...}
        self.seq = 0
        self.events = []
        self.cond = threading.Condition()
        self.logf = open(os.path.join(directory, "events.jsonl"), "a", encoding="utf-8")
        self.broker = None
        self.ports = {}
        self.next_id = 1000
        self.stop = threading.Event()

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

    # ---- products / devices
    def add_product(self, a):
        pk = a.get("productKey")
        sec = a.get("productSecret")
        if not pk or not isinstance(pk, str) or not isinstance(sec, str) or not sec:
            raise CtlError("productKey and productSecret required")
        with self.lock:
            p = self.products.get(pk)
            if p is None:
                p = self.products[pk] = Product(pk, sec)
            p.secret = sec
            p.dynreg = bool(a.get("dynamicRegistration", p.dynreg))
            p.nwl = bool(a.get("registrationFree", p.nwl))
            p.allow_tcp = bool(a.get("allowTcp", p.allow_tcp))
            if "schema" in a:
                p.schema = a["schema"] or None
            for d in a.get("devices", []):
                self.add_device(dict(d, productKey=pk) if isinstance(d, dict)
                                else {"productKey": pk, "deviceName": d})
        self.log("ctl_product", productKey=pk, dynamicRegistration=p.dynreg,
                 registrationFree=p.nwl, allowTcp=p.allow_tcp)
        return {"productKey": pk, "devices": sorted(p.devices)}

    def add_device(self, a):
        pk, dn = a.get("productKey"), a.get("deviceName")
        with self.lock:
            p = self.products.get(pk)
            if p is None:
                raise CtlError("unknown product %r" % pk)
            if not dn or not isinstance(dn, str):
                raise CtlError("deviceName required")
            d = p.devices.get(dn)
            if d is None:
                d = p.devices[dn] = Device(pk, dn)
            d.preregistered = True
            if a.get("deviceSecret"):
                d.secret, d.secret_source = a["deviceSecret"], "preset"
            return d.summary()

    def device(self, pk, dn, create=False):
        p = self.products.get(pk)
        if p is None:
            return None
        d = p.devices.get(dn)
        if d is None and create:
            d = p.devices[dn] = Device(pk, dn, preregistered=False)
        return d

    def need_device(self, a):
        d = self.device(a.get("productKey"), a.get("deviceName"))
        if d is None:
            raise CtlError("unknown device %r/%r" % (a.get("productKey"), a.get("deviceName")))
        return d

    # ---- HTTPS registration (docs/protocols/aliyun.md §2)
    def https_register(self, form):
        """form: dict of str -> str. Returns (code, message, data|None)."""
        need = ("productKey", "deviceName", "random", "sign", "signMethod")
        missing = [k for k in need if not form.get(k)]
        if missing:
            c, m = REG_ERRORS["bad_params"]
            return c, "%s: missing %s" % (m, ",".join(missing)), None
        pk, dn = form["productKey"], form["deviceName"]
        method = form["signMethod"].lower()
        if method not in HMACS:
            c, m = REG_ERRORS["bad_params"]
            return c, "%s: unsupported signMethod %s" % (m, form["signMethod"]), None
        with self.lock:
            p = self.products.get(pk)
            if p is None:
                return REG_ERRORS["no_product"] + (None,)
            if not p.dynreg:
                return REG_ERRORS["dynreg_off"] + (None,)
            want = hmac_hex(method, p.secret, register_sign_content(pk, dn, form["random"]))
            if not hex_equal(want, form["sign"]):
                return REG_ERRORS["bad_sign"] + (None,)
            d = p.devices.get(dn)
            if d is None or not d.preregistered:
                return REG_ERRORS["no_device"] + (None,)
            if d.activated:
                return REG_ERRORS["activated"] + (None,)
            d.secret, d.secret_source = issued_secret(32), "https"   # last secret wins (docs/protocols/aliyun.md §1)
            d.register_count += 1
            return 200, "success", {"productKey": pk, "deviceName": dn, "deviceSecret": d.secret}

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

    # ---- control: waiting on the event log
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

    def new_id(self):
        with self.lock:
            self.next_id += 1
            return str(self.next_id)


# --------------------------------------------------------------------------------------------
# HTTPS registration server and the plain-HTTP redirect target

def make_https_handler(cloud):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30
        server_version = "aliyun-test-cloud"
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

        def do_GET(self):
            cloud.log("https_request", method="GET", path=self.path, status=405)
            self.send_json(405, {"code": 405, "message": "method not allowed"})

        def do_POST(self):
            path = urllib.parse.urlsplit(self.path).path
            n = self.headers.get("Content-Length")
            if n is None or not n.isdigit() or int(n) > 8192:
                cloud.log("https_request", method="POST", path=self.path, status=411,
                          error="missing or oversized Content-Length")
                self.send_json(411, {"code": 411, "message": "length required"})
                self.close_connection = True
                return
            raw = self.rfile.read(int(n)).decode("utf-8", "replace")
            ctype = self.headers.get("Content-Type", "")
            parsed = urllib.parse.parse_qs(raw, keep_blank_values=True)
            form = {k: v[0] for k, v in parsed.items()}
            rec = {"method": "POST", "path": self.path, "body": raw, "form": form,
                   "contentType": ctype, "accept": self.headers.get("Accept"),
                   "headers": dict(self.headers)}
            if path != "/auth/register/device":
                cloud.log("https_request", status=404, **rec)
                self.send_json(404, {"code": 404, "message": "not found"})
                return
            fault = cloud.take_https_fault()
            if fault:
                cloud.log("https_request", injected=fault["mode"], **rec)
                return self.inject(fault, form)
            if not ctype.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
                code, msg, data = 460, "request parameter error: Content-Type must be " \
                                       "application/x-www-form-urlencoded", None
            elif any(len(v) != 1 for v in parsed.values()):
                code, msg, data = 460, "request parameter error: repeated field", None
            else:
                code, msg, data = cloud.https_register(form)
            cloud.log("https_register", code=code, message=msg,
                      productKey=form.get("productKey"), deviceName=form.get("deviceName"),
                      signMethod=form.get("signMethod"),
                      deviceSecret=data["deviceSecret"] if data else None, **rec)
            if code == 200:
                self.send_json(200, {"code": 200, "data": data, "message": "success"})
            else:
                # DECISION: errors use HTTP 200 with a non-200 JSON code (docs/protocols/aliyun.md §2 error shape).
                self.send_json(200, {"code": code, "message": msg})

        def inject(self, f, form):
            mode = f["mode"]
            pk, dn = form.get("productKey", ""), form.get("deviceName", "")
            ok_body = {"code": 200, "data": {"productKey": pk, "deviceName": dn,
                                             "deviceSecret": "INJECTED" + issued_secret(24)},
                       "message": "success"}
            if mode == "http500":
                self.send_json(500, {"code": 500, "message": "internal error (injected)"})
            elif mode == "http503":
                self.send_json(503, {"code": 503, "message": "service unavailable (injected)"},
                               [("Retry-After", str(f.get("retry_after", 5)))])
            elif mode == "code_error":
                self.send_json(200, {"code": int(f.get("code", 500)), "message": "injected error"})
            elif mode == "truncated":
                body = json.dumps(ok_body, separators=(",", ":")).encode()
                self.send_json(200, body[:len(body) // 2])
            elif mode == "short_body":
                body = json.dumps(ok_body, separators=(",", ":")).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
            elif mode == "wrong_types":
                self.send_json(200, {"code": 200, "data": {"productKey": pk, "deviceName": dn,
                                                           "deviceSecret": 1234567890},
                                     "message": "success"})
            elif mode == "no_secret":
                self.send_json(200, {"code": 200, "data": {"productKey": pk, "deviceName": dn},
                                     "message": "success"})
            elif mode == "not_json":
                self.send_json(200, b"<html><body>gateway error</body></html>")
            elif mode == "huge":
                size = int(f.get("size", 10 * 1024 * 1024))
                self.send_response(200)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                head = b'{"code":200,"message":"'
                sent = 0
                chunk = b"A" * 65536
                try:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(head), head))
                    while sent < size:
                        c = chunk[:min(len(chunk), size - sent)]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
                        sent += len(c)
                    tail = b'","data":{}}'
                    self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail))
                    self.wfile.flush()
                except OSError as e:
                    cloud.log("https_fault_aborted", mode=mode, sent=sent, error=str(e))
                self.close_connection = True
            elif mode == "drip":
                body = json.dumps(ok_body, separators=(",", ":")).encode()
                interval = float(f.get("interval", 1.0))
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
                    cloud.log("https_fault_aborted", mode=mode, sent=sent, error=str(e))
                self.close_connection = True
            elif mode == "redirect_http":
                loc = "http://127.0.0.1:%d/auth/register/device" % cloud.ports["http"]
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
                self.send_json(500, {"code": 500, "message": "unknown injected mode"})

    return Handler


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


def make_plain_handler(cloud):
    class Plain(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 10

        def log_message(self, *args):
            pass

        def any(self):
            n = int(self.headers.get("Content-Length", 0) or 0)
            raw = self.rfile.read(min(n, 8192)).decode("utf-8", "replace")
            cloud.log("insecure_request", method=self.command, path=self.path, body=raw)
            body = json.dumps({"code": 200, "data": {"deviceSecret": "INSECURE-HTTP-FOLLOWED"},
                               "message": "success"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

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
    counter = 0

    def __init__(self, sock, peer, tls, listener):
        Conn.counter += 1
        self.id = Conn.counter
        self.sock, self.peer, self.tls, self.listener = sock, peer, tls, listener
        self.handshaking = tls
        self.want_write_hs = False
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.state = "new"         # new | session | register | closed
        self.kind = None           # device | connwl | register | regnwl
        self.pk = self.dn = self.client_id = None
        self.keepalive = 0
        self.subs = {}
        self.next_pid = 1
        self.inflight = {}
        self.deadline = None
        self.close_after_flush = None
        self.device = None
        self.token = None
        self.ext = {}


class Broker:
    MAX_PACKET = 1024 * 1024   # DECISION: the real limit is [UNVERIFIED] (D30527 not retrievable)

    def __init__(self, cloud, ctx):
        self.cloud, self.ctx = cloud, ctx
        self.sel = selectors.DefaultSelector()
        self.conns = {}
        self.calls = queue.Queue()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.listeners = {}

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
                    self.close(c, "keepalive timeout" if c.state == "session" else
                               "register session time limit" if c.state == "register" else
                               "no CONNECT in time")
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
        c = Conn(sock, peer, tls, name)
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
                self.cloud.log("tls_ok", conn=c.id, version=c.sock.version())
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
                    # what came before the end (a DISCONNECT, then the close) still counts
                    self.parse(c)
                    if c.state != "closed":
                        self.close(c, "peer closed")
                    return
                c.inbuf += data
                if len(c.inbuf) > self.MAX_PACKET + 8 and c.close_after_flush is None:
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
            self.cloud.log("mqtt_close", conn=c.id, why=why, state=prev, kind=c.kind,
                           productKey=c.pk, deviceName=c.dn)

    def fatal(self, c, why):
        """Close now (protocol violation or ACL) without flushing unsent data first."""
        self.cloud.log("mqtt_violation", conn=c.id, why=why, productKey=c.pk, deviceName=c.dn)
        self.close(c, why)

    # ---- parsing
    def parse(self, c):
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
            self.cloud.log("mqtt_unsubscribe", conn=c.id, productKey=c.pk, deviceName=c.dn,
                           filters=filters)
            return self.send(c, packet(0xB0, pid.to_bytes(2, "big")))
        if ptype == 12:
            if body:
                raise ProtocolError("PINGREQ with body")
            self.cloud.log("mqtt_pingreq", conn=c.id, productKey=c.pk, deviceName=c.dn)
            return self.send(c, b"\xd0\x00")
        if ptype == 14:
            self.cloud.log("mqtt_disconnect", conn=c.id, productKey=c.pk, deviceName=c.dn,
                           kind=c.kind)
            return self.close(c, "client DISCONNECT")
        if ptype == 6 or ptype == 7 or ptype == 5:
            raise ProtocolError("QoS 2 flow packet (type %d): QoS 2 is not supported" % ptype)
        raise ProtocolError("unexpected packet type %d" % ptype)

    def connack(self, c, rc, info):
        info.update(conn=c.id, rc=rc, listener=c.listener)
        self.cloud.log("mqtt_connect", **info)
        self.send(c, bytes([0x20, 2, 0, rc]))
        if rc != 0:
            c.close_after_flush = "CONNACK %d" % rc
            self.flush(c)

    def on_connect(self, c, body):
        r = Reader(body)
        proto = r.s()
        level = r.u8()
        flags = r.u8()
        keepalive = r.u16()
        if flags & 1:
            raise ProtocolError("CONNECT reserved flag set")
        cid_full = r.s()
        will = bool(flags & 0x04)
        if will:
            r.s()
            r.raw()
        username = r.s() if flags & 0x80 else None
        password = r.raw() if flags & 0x40 else None
        info = {"clientId": cid_full, "username": username, "keepalive": keepalive,
                "cleanSession": bool(flags & 0x02), "will": will, "protocol": proto,
                "level": level}
        if not ((proto == "MQTT" and level == 4) or (proto == "MQIsdp" and level == 3)):
            info["reason"] = "unsupported protocol %s/%d" % (proto, level)
            return self.connack(c, 1, info)
        c.keepalive = keepalive
        # clientId: <cid>|k=v,k=v|
        parts = cid_full.split("|")
        if len(parts) != 3 or parts[2] != "":
            info["reason"] = "clientId is not of the form <id>|<params>|"
            return self.connack(c, 3, info)
        cid, ext_s = parts[0], parts[1]
        ext = {}
        for kv in ext_s.split(","):
            if not kv:
                continue
            k, eq, v = kv.partition("=")
            if not eq:
                info["reason"] = "clientId parameter %r has no '='" % kv
                return self.connack(c, 3, info)
            ext[k] = v
        info["cid"], info["ext"] = cid, ext
        c.ext = ext
        auth = ext.get("authType")
        info["authType"] = auth
        if username is None or password is None:
            info["reason"] = "username and password are required"
            return self.connack(c, 4, info)
        dn, amp, pk = username.partition("&")
        if not amp or not dn or not pk or "&" in pk:
            info["reason"] = "username is not <deviceName>&<productKey>"
            return self.connack(c, 4, info)
        info["productKey"], info["deviceName"] = pk, dn
        try:
            pw = password.decode("utf-8")
        except UnicodeDecodeError:
            info["reason"] = "password not UTF-8"
            return self.connack(c, 4, info)
        with self.cloud.lock:
            d = self.cloud.device(pk, dn)
            if d is not None:
                d.connect_attempts += 1
            if auth in ("register", "regnwl"):
                rc = self.connect_register(c, info, auth, cid, ext, pk, dn, pw)
            elif auth == "connwl":
                rc = self.connect_connwl(c, info, cid, ext, pk, dn, pw)
            elif auth is None:
                rc = self.connect_device(c, info, cid, ext, pk, dn, pw, keepalive)
            else:
                info["reason"] = "unknown authType %r" % auth
                rc = 3
            d = self.cloud.device(pk, dn)
            if d is not None:
                d.last_connack = rc
                d.last_connect = {"clientId": cid_full, "keepalive": keepalive, "rc": rc,
                                  "listener": c.listener, "authType": auth,
                                  "cleanSession": info["cleanSession"], "t": now_ms()}
        if rc != 0:
            return self.connack(c, rc, info)
        c.pk, c.dn, c.client_id = pk, dn, cid
        self.connack(c, 0, info)
        if c.state == "register":
            self.push_registration(c)

    def check_keepalive(self, info, keepalive):
        if keepalive < 30 or (keepalive > 1200 and
                              self.cloud.settings["keepalive_over_max"] == "refuse"):
            info["reason"] = "keepalive %d outside 30..1200" % keepalive
            return False
        return True

    def connect_device(self, c, info, cid, ext, pk, dn, pw, keepalive):
        if not self.check_keepalive(info, keepalive):
            return 3
        if keepalive > 1200:
            c.keepalive = 1200
            info["keepaliveClamped"] = 1200
        sm = ext.get("securemode")
        want = "2" if c.tls else "3"
        if sm != want:
            info["reason"] = "securemode=%s on the %s listener (want %s)" % (sm, c.listener, want)
            return 3
        method = ext.get("signmethod", "")
        if method.lower() not in HMACS:
            info["reason"] = "unsupported signmethod %r" % method
            return 3
        if not cid or len(cid) > 64:
            info["reason"] = "client id empty or longer than 64 characters"
            return 3
        p = self.cloud.products.get(pk)
        if p is None:
            info["reason"] = "unknown product"
            return 5
        if not c.tls and not p.allow_tcp:
            info["reason"] = "plain TCP is disabled for this product"
            return 3
        d = p.devices.get(dn)
        if d is None or d.secret is None:
            info["reason"] = "unknown device or device has no secret"
            return 5
        ts = ext.get("timestamp")
        want_pw = hmac_hex(method, d.secret, mqtt_sign_content(cid, dn, pk, ts))
        ok = hex_equal(want_pw, pw)
        if not ok and self.cloud.settings["sign_without_clientid"]:
            content = "deviceName%sproductKey%s%s" % (dn, pk, "" if ts is None else "timestamp" + ts)
            ok = hex_equal(hmac_hex(method, d.secret, content), pw)
        if not ok:
            info["reason"] = "password (HMAC of DeviceSecret) mismatch"
            return 5
        self.start_session(c, d, "device", (pk, dn), info)
        return 0

    def connect_connwl(self, c, info, cid, ext, pk, dn, pw):
        if not c.tls:
            info["reason"] = "connwl requires TLS"
            return 3
        if not self.check_keepalive(info, c.keepalive):
            return 3
        if ext.get("securemode") != "-2":
            info["reason"] = "connwl needs securemode=-2"
            return 3
        d = self.cloud.device(pk, dn)
        tok = None
        if d is not None:
            tok = next((t for t in d.tokens if t["clientId"] == cid), None)
        if tok is None or not hmac.compare_digest(tok["deviceToken"].encode(), pw.encode()):
            info["reason"] = "unknown ClientID or DeviceToken mismatch"
            return 5
        tok["activated"] = True
        c.token = tok
        self.start_session(c, d, "connwl", (pk, dn, cid), info)
        return 0

    def start_session(self, c, d, kind, key, info):
        for other in list(d.sessions):
            okey = (other.pk, other.dn) if other.kind == "device" else \
                (other.pk, other.dn, other.client_id)
            if other.kind == kind and okey == key:
                self.cloud.log("mqtt_kicked", conn=other.id, by=c.id, productKey=d.pk,
                               deviceName=d.dn)
                self.close(other, "kicked by a newer session with the same credentials")
        c.state, c.kind, c.device = "session", kind, d
        d.sessions.append(c)
        d.activated = True
        d.connect_count += 1
        c.deadline = time.monotonic() + c.keepalive * 1.5 if c.keepalive else None

    def connect_register(self, c, info, auth, cid, ext, pk, dn, pw):
        if not c.tls:
            info["reason"] = "dynamic registration requires TLS"
            return 3
        # [CONFLICT] securemode for register/regnwl: official SDKs send 2, D132111-EN says -2
        # on new instances. Both are accepted.
        if ext.get("securemode") not in ("2", "-2"):
            info["reason"] = "securemode must be 2 or -2 for dynamic registration"
            return 3
        method = ext.get("signmethod", "")
        if method.lower() not in HMACS:
            info["reason"] = "unsupported signmethod %r" % method
            return 3
        rnd = ext.get("random")
        if not rnd:
            info["reason"] = "random missing from clientId parameters"
            return 3
        p = self.cloud.products.get(pk)
        if p is None:
            info["reason"] = "unknown product"
            return 5
        if not p.dynreg:
            info["reason"] = "dynamic registration is disabled"
            return 5
        if not hex_equal(hmac_hex(method, p.secret, register_sign_content(pk, dn, rnd)), pw):
            info["reason"] = "password (HMAC of ProductSecret) mismatch"
            return 5
        if auth == "register":
            d = p.devices.get(dn)
            if d is None or not d.preregistered:
                info["reason"] = "device not pre-registered"
                return 5
            if d.activated:
                info["reason"] = "device already activated"
                return 5
        else:
            if not p.nwl:
                info["reason"] = "registration-free (regnwl) is disabled for this product"
                return 5
            d = self.cloud.device(pk, dn, create=True)
            if len(d.tokens) >= self.cloud.settings["max_tokens"]:
                info["reason"] = "already %d activations for this deviceName" % len(d.tokens)
                return 5
        c.state, c.kind, c.device = "register", auth, None
        c.deadline = time.monotonic() + self.cloud.settings["register_session_max"]
        return 0

    def push_registration(self, c):
        with self.cloud.lock:
            p = self.cloud.products[c.pk]
            d = self.cloud.device(c.pk, c.dn, create=True)
            if c.kind == "register":
                d.secret, d.secret_source = issued_secret(32), "mqtt"
                d.register_count += 1
                topic = "/ext/register"
                body = {"productKey": p.pk, "deviceName": d.dn, "deviceSecret": d.secret}
            else:
                tok = {"clientId": "%s.%s|%s" % (p.pk, d.dn, rand_alnum(8)),
                       "deviceToken": issued_secret(32), "activated": False}
                tok["clientId"] = tok["clientId"].replace("|", "_")
                d.tokens.append(tok)
                topic = "/ext/regnwl"
                body = {"productKey": p.pk, "deviceName": d.dn, "clientId": tok["clientId"],
                        "deviceToken": tok["deviceToken"]}
        self.cloud.log("register_push", conn=c.id, kind=c.kind, productKey=c.pk,
                       deviceName=c.dn, topic=topic, payload=body)
        self.publish(c, topic, json.dumps(body, separators=(",", ":")).encode(), 0)

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

    def deliver(self, d, topic, payload, qos=0):
        """Send to every live session of d subscribed to topic. Returns the conn ids."""
        sent = []
        for c in list(d.sessions):
            if any(topic_matches(f, topic) for f in c.subs):
                self.publish(c, topic, payload, qos)
                sent.append(c.id)
        return sent

    # ---- ACL
    @staticmethod
    def allowed(c, topic, is_filter):
        pk, dn = c.pk, c.dn
        own = ["/sys/%s/%s/" % (pk, dn), "/ext/session/%s/%s/" % (pk, dn)]
        if any(topic.startswith(p) for p in own):
            return True
        parts = topic.split("/")
        # /ext/rrpc/<id>/sys/<pk>/<dn>/...  (sync service reply, docs/protocols/aliyun.md §5)
        if len(parts) >= 8 and parts[1:3] == ["ext", "rrpc"] and parts[4:7] == ["sys", pk, dn]:
            return not (parts[3] == "#") and (is_filter or "+" not in parts[3])
        return False

    def on_subscribe(self, c, body):
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
        if c.state == "register":
            return self.fatal(c, "SUBSCRIBE on a dynamic-registration connection")
        codes = []
        for f, q in reqs:
            if not valid_filter(f) or not self.allowed(c, f, True):
                codes.append(0x80)
                self.cloud.log("acl_denied", conn=c.id, op="subscribe", topic=f,
                               productKey=c.pk, deviceName=c.dn)
            else:
                c.subs[f] = min(q, 1)
                codes.append(min(q, 1))
        self.cloud.log("mqtt_subscribe", conn=c.id, productKey=c.pk, deviceName=c.dn,
                       filters=[f for f, _ in reqs], granted=codes)
        self.send(c, packet(0x90, pid.to_bytes(2, "big") + bytes(codes)))

    def on_publish(self, c, flags, body):
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
        ev = {"conn": c.id, "productKey": c.pk, "deviceName": c.dn, "topic": topic, "qos": qos,
              "pid": pid, "retain": retain, "dup": dup,
              "payload": payload.decode("utf-8", "replace")}
        if c.state == "register":
            self.cloud.log("mqtt_publish_in", refused="registration connection", **ev)
            return self.fatal(c, "PUBLISH on a dynamic-registration connection")
        if qos == 2:
            self.cloud.log("mqtt_publish_in", refused="QoS 2 not supported", **ev)
            return self.fatal(c, "QoS 2 PUBLISH (not supported, D30540)")
        if not self.allowed(c, topic, False):
            self.cloud.log("mqtt_publish_in", refused="acl", **ev)
            self.cloud.log("acl_denied", conn=c.id, op="publish", topic=topic,
                           productKey=c.pk, deviceName=c.dn)
            if self.cloud.settings["acl_action"] == "disconnect":
                return self.fatal(c, "PUBLISH to a topic outside the device's ACL")
            if qos:
                self.send(c, packet(0x40, pid.to_bytes(2, "big")))
            return
        d = c.device
        limit = self.cloud.settings["qps_limit"]
        now = time.monotonic()
        throttled = False
        with self.cloud.lock:
            if limit:
                while d.rate and now - d.rate[0] >= 1.0:
                    d.rate.popleft()
                if len(d.rate) >= limit:
                    throttled = True
                else:
                    d.rate.append(now)
        self.cloud.log("mqtt_publish_in", throttled=throttled, **ev)
        if qos:
            self.send(c, packet(0x40, pid.to_bytes(2, "big")))
        if throttled:   # DMULTI: excess messages are dropped
            self.cloud.log("throttled", conn=c.id, productKey=c.pk, deviceName=c.dn, topic=topic)
            return
        alink_uplink(self.cloud, self, c, d, topic, payload)


# --------------------------------------------------------------------------------------------
# Alink (docs/protocols/aliyun.md §5)

def parse_alink(payload):
    """Returns (obj, None) or (partial obj or None, (code, reason))."""
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None, (6207, "payload is not JSON")
    if not isinstance(obj, dict):
        return None, (6207, "payload is not a JSON object")
    i = obj.get("id")
    if not isinstance(i, str) or not i.isdigit() or not i.isascii() or len(i) > 10 \
            or int(i) > 4294967295:
        return obj, (460, "id must be a numeric string 0..4294967295")
    if obj.get("version") != "1.0":
        return obj, (460, 'version must be "1.0"')
    s = obj.get("sys")
    if s is not None and (not isinstance(s, dict) or s.get("ack", 1) not in (0, 1)):
        return obj, (460, "sys must be an object with ack 0 or 1")
    return obj, None


def check_time(v, where, limit_ms):
    if isinstance(v, bool) or not isinstance(v, int):
        return "%s: time must be an integer in ms" % where
    if v > limit_ms:
        return "%s: time is more than 24 h in the future" % where
    return None


def check_type(schema, name, value):
    if schema is None:
        return None
    t = schema.get(name)
    if t is None:
        return "property %r is not in the thing model" % name
    if t in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, float):
            return "property %r is %s: the value needs a decimal point (e.g. 10.0)" % (name, t)
    elif t in ("int", "enum"):
        if isinstance(value, bool) or not isinstance(value, int):
            return "property %r must be an integer" % name
    elif t == "bool":
        if isinstance(value, bool) or value not in (0, 1):
            return "property %r is bool: 0 or 1" % name
    elif t == "text":
        if not isinstance(value, str):
            return "property %r must be a string" % name
    return None


def check_properties(params, schema, limit_ms):
    """params {"name": value | {"value", "time"}} -> (list of (name, value, time), error)."""
    out = []
    if not isinstance(params, dict) or not params:
        return None, "params must be a non-empty object"
    for k, v in params.items():
        t = None
        if isinstance(v, dict) and "time" in v:
            if "value" not in v:
                return None, "%s: has time but no value" % k
            err = check_time(v["time"], k, limit_ms)
            if err:
                return None, err
            t, v = v["time"], v["value"]
        err = check_type(schema, k, v)
        if err:
            return None, err
        out.append((k, v, t))
    return out, None


def take_injected(d, kind):
    for inj in d.inject:
        if inj["kind"] in (kind, "any") and inj["count"] > 0:
            inj["count"] -= 1
            code = inj["code"]
            d.inject = [x for x in d.inject if x["count"] > 0]
            return code
    return None


def alink_uplink(cloud, broker, c, d, topic, payload):
    base = "/sys/%s/%s/" % (d.pk, d.dn)
    rest = topic[len(base):] if topic.startswith(base) else None
    parts = topic.split("/")
    rx = now_ms()
    # replies to downlinks
    if rest is not None and rest.startswith("rrpc/response/"):
        return record_reply(cloud, d, "rrpc", rest[len("rrpc/response/"):], topic, payload, rx)
    if topic.startswith("/ext/rrpc/"):
        return record_reply(cloud, d, "rrpc_ext", parts[3], topic, payload, rx)
    if rest is not None and rest.startswith("thing/service/") and rest.endswith("_reply"):
        return record_reply(cloud, d, "service", None, topic, payload, rx)
    if rest is None:
        cloud.log("uplink_unhandled", productKey=d.pk, deviceName=d.dn, topic=topic)
        return
    kind = method = None
    if rest == "thing/event/property/post":
        kind, method = "property", "thing.event.property.post"
    elif rest == "thing/event/property/batch/post":
        kind, method = "batch", "thing.event.property.batch.post"
    elif rest.startswith("thing/event/") and rest.endswith("/post") and rest.count("/") == 3:
        kind = "event"
        method = "thing.event.%s.post" % rest.split("/")[2]
    if kind is None:
        cloud.log("uplink_unhandled", productKey=d.pk, deviceName=d.dn, topic=topic)
        return
    limit_ms = rx + 24 * 3600 * 1000
    obj, err = parse_alink(payload)
    code, reason, items = 200, None, None
    if err:
        code, reason = err
    elif "method" in obj and obj["method"] != method:
        code, reason = 6300, "method %r does not match topic (want %s)" % (obj["method"], method)
    else:
        with cloud.lock:
            schema = cloud.products[d.pk].schema
        params = obj.get("params")
        if kind == "property":
            items, e = check_properties(params, schema, limit_ms)
        elif kind == "event":
            items, e = None, None
            if not isinstance(params, dict):
                e = "params must be an object"
            elif "value" in params and not isinstance(params["value"], dict):
                e = "params.value must be an object"
            elif "time" in params:
                e = check_time(params["time"], "params", limit_ms)
        else:
            items, e = [], None
            if not isinstance(params, dict) or not (params.get("properties") or params.get("events")):
                e = "params needs properties and/or events"
            else:
                for name, arr in (params.get("properties") or {}).items():
                    if not isinstance(arr, list) or not arr:
                        e = "%s: must be a non-empty array" % name
                        break
                    for it in arr:
                        if not isinstance(it, dict) or "value" not in it or "time" not in it:
                            e = "%s: items need value and time" % name
                            break
                        e = check_time(it["time"], name, limit_ms) or \
                            check_type(schema, name, it["value"])
                        if e:
                            break
                        items.append((name, it["value"], it["time"]))
                    if e:
                        break
        if e:
            code, reason = 460, e
    mid = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else ""
    with cloud.lock:
        if code == 200:
            inj = take_injected(d, "event" if kind == "event" else "property")
            if inj is not None:
                code, reason = inj, "injected"
        dup = mid in d.ids_seen if mid else False
        if mid:
            d.ids_seen.add(mid)
        post = {"kind": kind, "id": mid, "topic": topic, "code": code, "reason": reason,
                "rx": rx, "duplicateId": dup,
                "params": obj.get("params") if isinstance(obj, dict) else None}
        d.posts.append(post)
        if code == 200:
            if kind in ("property", "batch"):
                for name, v, t in items:
                    d.properties.append({"name": name, "value": v, "time": t, "id": mid,
                                         "rx": rx, "duplicateId": dup})
            else:
                d.events.append({"event": rest.split("/")[2], "id": mid, "rx": rx,
                                 "params": obj.get("params"), "duplicateId": dup})
    want_ack = not (isinstance(obj, dict) and isinstance(obj.get("sys"), dict)
                    and obj["sys"].get("ack") == 0)
    reply_topic = topic + "_reply"
    delivered = []
    if want_ack:
        reply = {"code": code, "data": {}, "id": mid,
                 "message": "success" if code == 200 else (reason if reason and reason != "injected"
                                                            else ALINK_MSG.get(code, "error")),
                 "version": "1.0"}
        delivered = broker.deliver(d, reply_topic, json.dumps(reply, separators=(",", ":")).encode())
    cloud.log("alink_post", kind=kind, productKey=d.pk, deviceName=d.dn, id=mid, code=code,
              reason=reason, duplicateId=dup, replyTopic=reply_topic, ack=want_ack,
              replyDelivered=bool(delivered))


def record_reply(cloud, d, kind, key, topic, payload, rx):
    text = payload.decode("utf-8", "replace")
    problems = []
    obj = None
    if kind != "rrpc":
        try:
            obj = json.loads(text)
        except ValueError:
            problems.append("reply is not JSON")
        if obj is not None:
            if not isinstance(obj, dict):
                problems.append("reply is not an object")
                obj = None
    if obj is not None:
        key = obj.get("id") if kind != "rrpc_ext" else key
        if not isinstance(obj.get("id"), str):
            problems.append("id must be a string")
        if isinstance(obj.get("code"), bool) or not isinstance(obj.get("code"), int):
            problems.append("code must be an integer")
        if "data" in obj and not isinstance(obj.get("data"), (dict, list)):
            problems.append("data must be an object")
    with cloud.lock:
        dl = None
        for rec in d.downlinks.values():
            if kind in ("rrpc", "rrpc_ext") and rec["kind"] == kind and rec["key"] == key:
                dl = rec
            elif kind == "service" and rec["kind"] in ("property_set", "service") \
                    and rec["id"] == key and topic == rec["topic"] + "_reply":
                dl = rec
        if dl is not None and kind == "rrpc_ext" and obj is not None and obj.get("id") != dl["id"]:
            problems.append("id %r does not match the request's %r" % (obj.get("id"), dl["id"]))
        rep = {"kind": dl["kind"] if dl else kind, "id": dl["id"] if dl else key, "topic": topic,
               "payload": text, "code": obj.get("code") if obj else None,
               "data": obj.get("data") if obj else None, "rx": rx,
               "latencyMs": rx - dl["sent"] if dl else None, "matched": dl is not None,
               "problems": problems}
        if dl is not None:
            dl["reply"] = rep
        d.replies.append(rep)
    cloud.log("downlink_reply", productKey=d.pk, deviceName=d.dn, **rep)


def downlink(cloud, broker, a, kind):
    """Runs in the broker thread. Publishes a cloud-initiated request."""
    d = cloud.need_device(a)
    pk, dn = d.pk, d.dn
    qos = int(a.get("qos", 0))
    i = str(a.get("id") or cloud.new_id())
    key = None
    if kind == "property_set":
        topic = "/sys/%s/%s/thing/service/property/set" % (pk, dn)
        body = {"id": i, "version": "1.0", "params": a.get("params", {}),
                "method": "thing.service.property.set"}
    elif kind == "service":
        sid = a.get("service")
        if not sid:
            raise CtlError("service required")
        topic = "/sys/%s/%s/thing/service/%s" % (pk, dn, sid)
        body = {"id": i, "version": "1.0", "params": a.get("params", {}),
                "method": "thing.service.%s" % sid}
    elif kind == "rrpc":
        key = str(a.get("msgId") or (1000000000000000000 + secrets.randbelow(10 ** 18)))
        topic = "/sys/%s/%s/rrpc/request/%s" % (pk, dn, key)
        p = a.get("payload", "")
        body = p if isinstance(p, str) else json.dumps(p, separators=(",", ":"))
    elif kind == "rrpc_ext":
        sid = a.get("service")
        if not sid:
            raise CtlError("service required")
        key = str(a.get("rrpcId") or (1000000000000000000 + secrets.randbelow(10 ** 18)))
        topic = "/ext/rrpc/%s/sys/%s/%s/thing/service/%s" % (key, pk, dn, sid)
        body = {"id": i, "version": "1.0", "params": a.get("params", {}),
                "method": "thing.service.%s" % sid}
    else:
        topic = a.get("topic")
        if not topic:
            raise CtlError("topic required")
        body = a.get("payload", "")
    raw = (body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))).encode()
    sent_to = []
    with cloud.lock:
        if kind == "rrpc_ext":
            # docs/protocols/aliyun.md §4: /ext/rrpc needs ext bit0 in the clientId; no SUBSCRIBE is needed.
            for c in list(d.sessions):
                try:
                    bits = int(c.ext.get("ext", "0"))
                except ValueError:
                    bits = 0
                if bits & 1:
                    broker.publish(c, topic, raw, 0)
                    sent_to.append(c.id)
        elif kind == "raw" and a.get("force"):
            for c in list(d.sessions):
                broker.publish(c, topic, raw, qos)
                sent_to.append(c.id)
        else:
            sent_to = broker.deliver(d, topic, raw, qos)
        rec = {"kind": kind, "id": i, "key": key, "topic": topic, "payload": raw.decode(),
               "sent": now_ms(), "deliveredTo": sent_to, "reply": None}
        if kind != "raw":
            d.downlinks[key or i] = rec
    cloud.log("downlink", productKey=pk, deviceName=dn, kind=kind, id=i, key=key, topic=topic,
              deliveredTo=sent_to, payload=raw.decode())
    return rec


# --------------------------------------------------------------------------------------------
# Control API

def make_control_handler(cloud, server_holder):
    def ident(a):
        return {"productKey": a.get("productKey"), "deviceName": a.get("deviceName")}

    def cmd_health(a):
        return {"ports": cloud.ports, "seq": cloud.seq}

    def cmd_add_product(a):
        return cloud.add_product(a)

    def cmd_add_device(a):
        return cloud.add_device(a)

    def cmd_reset_device(a):
        with cloud.lock:
            d = cloud.need_device(a)
            d.activated = False
            d.register_count = 0
            d.tokens = []
            if a.get("forgetSecret"):
                d.secret, d.secret_source = None, None
            if a.get("clearData"):
                d.properties, d.events, d.posts, d.replies = [], [], [], []
                d.downlinks, d.ids_seen, d.inject = {}, set(), []
            d.connect_attempts = d.connect_count = 0
            d.last_connack = d.last_connect = None
        cloud.log("ctl_reset", **ident(a))
        return d.summary()

    def cmd_set_product(a):
        with cloud.lock:
            p = cloud.products.get(a.get("productKey"))
            if p is None:
                raise CtlError("unknown product")
            if "dynamicRegistration" in a:
                p.dynreg = bool(a["dynamicRegistration"])
            if "registrationFree" in a:
                p.nwl = bool(a["registrationFree"])
            if "allowTcp" in a:
                p.allow_tcp = bool(a["allowTcp"])
            if "schema" in a:
                p.schema = a["schema"] or None
            return {"productKey": p.pk, "dynamicRegistration": p.dynreg,
                    "registrationFree": p.nwl, "allowTcp": p.allow_tcp, "schema": p.schema}

    def cmd_settings(a):
        with cloud.lock:
            for k, v in a.items():
                if k not in cloud.settings:
                    raise CtlError("unknown setting %r" % k)
                cur = cloud.settings[k]
                if isinstance(cur, bool) and isinstance(v, str):
                    v = v.lower() in ("1", "true", "yes", "on")
                cloud.settings[k] = type(cur)(v)
            return dict(cloud.settings)

    modes = {"none", "http500", "http503", "code_error", "truncated", "short_body", "wrong_types",
             "no_secret", "not_json", "huge", "drip", "redirect_http", "reset", "hang"}

    def cmd_https_fail(a):
        mode = a.get("mode", "none")
        if mode not in modes:
            raise CtlError("mode must be one of %s" % sorted(modes))
        with cloud.lock:
            if mode == "none":
                cloud.https_fault = None
            else:
                f = dict(a)
                f["count"] = int(a["count"]) if a.get("count") is not None else None
                cloud.https_fault = f
        cloud.log("ctl_https_fail", **a)
        return {"fault": cloud.https_fault}

    def cmd_inject_reply(a):
        with cloud.lock:
            d = cloud.need_device(a)
            kind = a.get("kind", "any")
            if kind not in ("property", "event", "any"):
                raise CtlError("kind must be property, event or any")
            if a.get("clear"):
                d.inject = []
            else:
                d.inject.append({"code": int(a.get("code", 429)), "count": int(a.get("count", 1)),
                                 "kind": kind})
            return {"inject": list(d.inject)}

    def cmd_devices(a):
        with cloud.lock:
            out = []
            for p in cloud.products.values():
                if a.get("productKey") and p.pk != a["productKey"]:
                    continue
                for d in p.devices.values():
                    if a.get("deviceName") and d.dn != a["deviceName"]:
                        continue
                    out.append(d.summary())
            return {"devices": out}

    def cmd_device(a):
        with cloud.lock:
            return cloud.need_device(a).summary()

    def listing(attr):
        def f(a):
            with cloud.lock:
                d = cloud.need_device(a)
                items = list(getattr(d, attr))
            for k in ("name", "id", "kind", "event", "code"):
                if a.get(k) is not None:
                    items = [x for x in items if str(x.get(k)) == str(a[k])]
            return {attr: items}
        return f

    def dl(kind):
        def f(a):
            since = cloud.seq
            rec = dict(cloud.broker.call(lambda: downlink(cloud, cloud.broker, a, kind)))
            wait = float(a.get("wait", 0) or 0)
            if wait and kind != "raw":
                ev = cloud.wait_event({"ev": "downlink_reply", "productKey": a.get("productKey"),
                                       "deviceName": a.get("deviceName"), "id": rec["id"],
                                       "matched": True}, since, min(wait, 60))
                rec["reply"] = ev and {k: v for k, v in ev.items() if k not in ("seq", "ev", "t")}
                rec["timedOut"] = ev is None
            return rec
        return f

    def cmd_kick(a):
        def k():
            with cloud.lock:
                d = cloud.need_device(a)
                ss = list(d.sessions)
            for c in ss:
                cloud.broker.close(c, "closed by control command kick")
            return {"closed": [c.id for c in ss]}
        return cloud.broker.call(k)

    def cmd_log(a):
        since = int(a.get("since", 0))
        with cloud.cond:
            evs = [e for e in cloud.events if e["seq"] > since]
        if a.get("ev"):
            evs = [e for e in evs if e["ev"] == a["ev"]]
        return {"events": evs[-int(a.get("limit", 1000)):], "seq": cloud.seq}

    def cmd_wait(a):
        match = a.get("match") or {}
        if not isinstance(match, dict):
            raise CtlError("match must be an object")
        ev = cloud.wait_event(match, int(a.get("since", 0)), min(float(a.get("timeout", 10)), 120))
        if ev is None:
            raise CtlError("timeout waiting for %s" % json.dumps(match))
        return {"event": ev}

    def cmd_shutdown(a):
        cloud.log("ctl_shutdown")
        threading.Thread(target=shutdown_all, args=(cloud, server_holder), daemon=True).start()
        return {"bye": True}

    commands = {
        "health": cmd_health, "add_product": cmd_add_product, "add_device": cmd_add_device,
        "set_product": cmd_set_product, "reset_device": cmd_reset_device, "settings": cmd_settings,
        "https_fail": cmd_https_fail, "inject_reply": cmd_inject_reply,
        "devices": cmd_devices, "device": cmd_device,
        "properties": listing("properties"), "events": listing("events"),
        "posts": listing("posts"), "replies": listing("replies"),
        "property_set": dl("property_set"), "service_call": dl("service"), "rrpc": dl("rrpc"),
        "rrpc_ext": dl("rrpc_ext"), "publish": dl("raw"), "kick": cmd_kick,
        "log": cmd_log, "wait": cmd_wait, "shutdown": cmd_shutdown,
    }

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
            u = urllib.parse.urlsplit(self.path)
            name = u.path.strip("/")
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

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="writes ports.json and events.jsonl here")
    ap.add_argument("--products", help="JSON file: {\"products\": [...], \"settings\": {...}}")
    ap.add_argument("--cert", help="server certificate (PEM); default DIR/server.crt")
    ap.add_argument("--key", help="server key (PEM); default DIR/server.key")
    for name in ("https", "http", "mqtt", "mqtts", "control"):
        ap.add_argument("--%s-port" % name, type=int, default=0)
    ap.add_argument("--canary", help="letters and digits put into every issued secret")
    a = ap.parse_args(argv)
    if a.canary is not None:
        if not a.canary.isalnum() or not a.canary.isascii():
            raise SystemExit("--canary: want letters and digits")
        global CANARY
        CANARY = a.canary
    os.makedirs(a.dir, exist_ok=True)
    cert = a.cert or os.path.join(a.dir, "server.crt")
    key = a.key or os.path.join(a.dir, "server.key")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)

    cloud = Cloud(a.dir)
    if a.products:
        with open(a.products, encoding="utf-8") as f:
            spec = json.load(f)
        for p in spec.get("products", []):
            cloud.add_product(p)
        for k, v in spec.get("settings", {}).items():
            if k not in cloud.settings:
                raise SystemExit("unknown setting %r in %s" % (k, a.products))
            cloud.settings[k] = v

    servers = []
    https = TLSThreadingHTTPServer(("127.0.0.1", a.https_port), make_https_handler(cloud), ctx, cloud)
    plain = ThreadingHTTPServer(("127.0.0.1", a.http_port), make_plain_handler(cloud))
    plain.daemon_threads = True
    control = ThreadingHTTPServer(("127.0.0.1", a.control_port), make_control_handler(cloud, servers))
    control.daemon_threads = True
    servers += [https, plain, control]
    broker = Broker(cloud, ctx)
    cloud.broker = broker
    cloud.ports = {"https": https.server_address[1], "http": plain.server_address[1],
                   "mqtt": broker.listen("mqtt", a.mqtt_port, False),
                   "mqtts": broker.listen("mqtts", a.mqtts_port, True),
                   "control": control.server_address[1], "pid": os.getpid()}

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


if __name__ == "__main__":
    sys.exit(main())
