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

import collections
import hashlib
import hmac
import json
import secrets
import sys
import time
import urllib.parse

import cloudbase
from cloudbase import CtlError, now_ms, rand_alnum, valid_filter

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
# --canary TOKEN (the integration tests' canary mode, tests/lib/fixture.h): every
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
        self.violations = []          # what the thing model refused (cloudbase.Cloud.violations)
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
            "violations": len(self.violations),
            "subscriptions": sorted({f for c in self.sessions for f in c.subs}),
        }


class Product:
    def __init__(self, pk, secret, dynreg=True, nwl=False, allow_tcp=True, schema=None):
        self.pk, self.secret = pk, secret
        self.dynreg, self.nwl, self.allow_tcp = dynreg, nwl, allow_tcp
        self.schema = schema or None
        self.devices = {}


class Cloud(cloudbase.Cloud):
    ID_KEY, ID_ATTR, REPLY_KEY, PLATFORM = "productKey", "pk", "id", "aliyun"
    HTTPS_FAULT_MODES = {"none", "http500", "http503", "code_error", "truncated", "short_body",
                         "wrong_types", "no_secret", "not_json", "huge", "drip", "redirect_http",
                         "reset", "hang"}
    INJECT_KINDS = ("property", "event", "any")
    INJECT_CODE = 429
    LIST_FILTERS = ("name", "id", "kind", "event", "code", "identifier", "check")

    def __init__(self, directory):
        super().__init__(directory, {
            "keepalive_over_max": "refuse",   # or "clamp" (Link SDK 4.2 says >1200 is overridden)
            "acl_action": "disconnect",       # or "drop"
            "qps_limit": 30,                  # uplink messages per device per second; 0 = off
            "max_tokens": 5,                  # regnwl activations per (pk, dn) (D74006)
            "sign_without_clientid": False,   # also accept passwords signed without clientId
            "connect_timeout": 10.0,
            "register_session_max": 60.0,
            # DECISION: the code of a post the thing model refuses. docs/protocols/aliyun.md §5 has
            # 460 ("bad, empty or too many params", D120329) but no code per TSL check; D120329's TSL
            # table could not be read here, so 460 by default, and a test may set another
            "tsl_error_code": 460,
        })
        self.next_id = 1000

    def setting_value(self, name, value):
        if isinstance(self.settings[name], bool) and isinstance(value, str):
            value = value.lower() in ("1", "true", "yes", "on")
        return type(self.settings[name])(value)

    def downlink(self, a, kind):
        return downlink(self, self.broker, a, kind)

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
        if a.get("thingModel"):
            self.load_thing_model("%s=%s" % (pk, a["thingModel"]))
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

    def new_id(self):
        with self.lock:
            self.next_id += 1
            return str(self.next_id)


# --------------------------------------------------------------------------------------------
# HTTPS registration server and the plain-HTTP redirect target

def make_https_handler(cloud):
    class Handler(cloudbase.RegistrationHandler):
        server_version = "aliyun-test-cloud"

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
            elif mode == "wrong_types":
                self.send_json(200, {"code": 200, "data": {"productKey": pk, "deviceName": dn,
                                                           "deviceSecret": 1234567890},
                                     "message": "success"})
            elif mode == "no_secret":
                self.send_json(200, {"code": 200, "data": {"productKey": pk, "deviceName": dn},
                                     "message": "success"})
            elif not self.transport_fault(mode, f, json.dumps(ok_body, separators=(",", ":")).encode(),
                                          "/auth/register/device", b'{"code":200,"message":"',
                                          b'","data":{}}'):
                self.send_json(500, {"code": 500, "message": "unknown injected mode"})

    return Handler


def plain_answer(path, raw):
    return json.dumps({"code": 200, "data": {"deviceSecret": "INSECURE-HTTP-FOLLOWED"},
                       "message": "success"}).encode()


# --------------------------------------------------------------------------------------------
# MQTT broker: Aliyun's CONNECT rules, registration sessions, the topic ACL (cloudbase.Broker
# does the rest)

class Conn(cloudbase.Conn):
    def __init__(self, sock, peer, tls, listener):
        super().__init__(sock, peer, tls, listener)
        self.state = "new"         # new | session | register | closed
        self.kind = None           # device | connwl | register | regnwl
        self.pk = self.client_id = None
        self.token = None
        self.ext = {}


class Broker(cloudbase.Broker):
    MAX_PACKET = 1024 * 1024   # DECISION: the real limit is [UNVERIFIED] (D30527 not retrievable)
    CONN = Conn

    def who(self, c):
        return {"productKey": c.pk, "deviceName": c.dn}

    def close_fields(self, c):
        return {"kind": c.kind, "productKey": c.pk, "deviceName": c.dn}

    def disconnect_fields(self, c):
        return {"productKey": c.pk, "deviceName": c.dn, "kind": c.kind}

    def deadline_reason(self, c):
        if c.state == "register":
            return "register session time limit"
        return super().deadline_reason(c)

    def on_connect(self, c, body):
        info, username, password = self.read_connect(body)
        cid_full, keepalive = info["clientId"], info["keepalive"]
        if self.refuse_protocol(c, info):
            return

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
        pid, reqs = self.read_subscribe(body)
        if c.state == "register":
            return self.fatal(c, "SUBSCRIBE on a dynamic-registration connection")
        codes = []
        for f, q in reqs:
            if not valid_filter(f) or not self.allowed(c, f, True):
                self.deny_subscribe(c, f, codes)
            else:
                c.subs[f] = min(q, 1)
                codes.append(min(q, 1))
        self.suback(c, pid, reqs, codes)

    def on_publish(self, c, flags, body):
        topic, qos, pid, payload, retain, dup = self.read_publish(flags, body)
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
            return self.refuse_acl(c, topic, qos, pid, ev)
        d = c.device
        throttled = self.throttled(d)
        self.cloud.log("mqtt_publish_in", throttled=throttled, **ev)
        if qos:
            self.puback(c, pid)
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


def event_outputs(params):
    """An event post's params (an object) as (form, outputs, time or None).

    Two forms are accepted (docs/protocols/aliyun.md §5, event post): the documented
    {"value": {outputs}, "time": ms}, and the official SDKs' form, the outputs themselves.
    DECISION: params is the documented form when it has a "value" that is an object and no
    member but "value" and "time"; any other object is the outputs (so an event whose only
    outputs are an object "value" and a "time" cannot be told apart, and is read as the
    documented form)."""
    if isinstance(params.get("value"), dict) and set(params) <= {"value", "time"}:
        return "value-time", params["value"], params.get("time")
    return "outputs", params, None


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


def tsl_check(model, kind, event_id, params, items):
    """The thing-model violations of a post (thingmodel.py): property and batch posts by their
    (name, value, time) items, an event by its outputs, which are params.value (the {value,time}
    form, docs/protocols/aliyun.md §5) or params itself (the SDKs' form)."""
    if kind == "event":
        ev = model.events.get(event_id)
        wrapped = isinstance(params.get("value"), dict) and (ev is None or "value" not in ev["params"])
        return model.check_event(event_id, None, params["value"] if wrapped else params)
    found = []
    for name, v, _ in items:
        found += model.check_properties({name: v})
    return found


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
    code, reason, items, found = 200, None, None, []
    if err:
        code, reason = err
    elif "method" in obj and obj["method"] != method:
        code, reason = 6300, "method %r does not match topic (want %s)" % (obj["method"], method)
    else:
        model = cloud.model_for(d.pk)
        with cloud.lock:
            # a thing model takes the place of the product's schema
            schema = cloud.products[d.pk].schema if model is None else None
        params = obj.get("params")
        if kind == "property":
            items, e = check_properties(params, schema, limit_ms)
        elif kind == "event":
            items, e = None, None
            if not isinstance(params, dict):
                e = "params must be an object"
            else:
                items = event_outputs(params)
                if items[2] is not None:
                    e = check_time(items[2], "params", limit_ms)
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
        elif model is not None:
            found = tsl_check(model, kind, rest.split("/")[2], params, items)
            if found:
                code = int(cloud.settings["tsl_error_code"])
                reason = "tsl check: " + "; ".join(v["reason"] for v in found)
    mid = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else ""
    if found:
        cloud.violations(d, {"id": mid, "method": method, "code": code}, kind, found,
                         event=rest.split("/")[2] if kind == "event" else None)
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
                form, outputs, t = items
                d.events.append({"event": rest.split("/")[2], "id": mid, "rx": rx,
                                 "form": form, "outputs": outputs, "time": t,
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

def make_control_handler(cloud, servers):
    cmd = cloudbase.Commands(cloud, servers)

    def cmd_reset_device(a):
        with cloud.lock:
            d = cloud.need_device(a)
            d.activated = False
            d.register_count = 0
            d.tokens = []
            if a.get("forgetSecret"):
                d.secret, d.secret_source = None, None
            if a.get("clearData"):
                d.properties, d.events, d.posts, d.replies, d.violations = [], [], [], [], []
                d.downlinks, d.ids_seen, d.inject = {}, set(), []
            d.connect_attempts = d.connect_count = 0
            d.last_connack = d.last_connect = None
        cloud.log("ctl_reset", **cmd.ident(a))
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

    return cloudbase.make_control_handler(cloud, dict(
        cmd.common(), set_product=cmd_set_product, reset_device=cmd_reset_device,
        properties=cmd.listing("properties"), events=cmd.listing("events"),
        posts=cmd.listing("posts"), replies=cmd.listing("replies"),
        property_set=cmd.dl("property_set"), service_call=cmd.dl("service"),
        rrpc=cmd.dl("rrpc"), rrpc_ext=cmd.dl("rrpc_ext")))


# --------------------------------------------------------------------------------------------

def main(argv=None):
    global CANARY
    a, CANARY = cloudbase.parse_args(__doc__, argv, ("mqtt", "mqtts"),
                                     "letters and digits put into every issued secret")
    ctx = cloudbase.server_context(a)
    cloud = Cloud(a.dir)
    if a.products:
        with open(a.products, encoding="utf-8") as f:
            spec = json.load(f)
        for p in spec.get("products", []):
            try:
                cloud.add_product(p)
            except CtlError as e:
                raise SystemExit("%s: %s" % (a.products, e))
        for k, v in spec.get("settings", {}).items():
            if k not in cloud.settings:
                raise SystemExit("unknown setting %r in %s" % (k, a.products))
            cloud.settings[k] = v
    return cloudbase.serve(cloud, a, ctx, make_https_handler(cloud),
                           cloudbase.make_plain_handler(cloud, plain_answer),
                           lambda servers: make_control_handler(cloud, servers),
                           Broker(cloud, ctx), (("mqtt", False), ("mqtts", True)))


if __name__ == "__main__":
    sys.exit(main())
