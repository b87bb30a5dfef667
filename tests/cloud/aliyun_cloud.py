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
  * gateways and their sub-devices over the gateway's one session (docs/protocols/gateway.md
    §G2-§G14): topology add/delete/get with the per-sub-device sign, sub-device registration,
    combine login/logout, sub-device traffic on the sub-device's own topics, topo/change,
    disable/enable/delete and /ext/error pushes
  * a JSON control API on plain HTTP (127.0.0.1) for tests; see README.md

Start: python3 aliyun_cloud.py --dir DIR --cert server.crt --key server.key [--products FILE]
Once every listener is up, DIR/ports.json is written (temporary name, then renamed):
  {"https": P, "http": P, "mqtt": P, "mqtts": P, "control": P, "pid": PID}
Every event is appended to DIR/events.jsonl as one JSON object per line (flushed per line).

Protocol facts come only from docs/protocols/aliyun.md and docs/protocols/gateway.md; decisions
where they are silent or contradictory are marked "DECISION" below and listed in README.md.
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


# gateway.md §G3: the fields a sub-device sign does not cover
SUBDEV_SIGN_SKIP = ("sign", "signMethod", "signmethod", "cleanSession")


def subdev_sign_content(params):
    """gateway.md §G3 (topo/add, combine/login, batch_login) and §G13 (product_register): every
    submitted parameter except sign, signMethod/signmethod and cleanSession, sorted by name, each
    name followed by its value, no separators. A number (a timestamp sent as a JSON number, §G3)
    is signed as its decimal text."""
    return "".join(k + (str(v) if isinstance(v, int) else v)
                   for k, v in sorted(params.items()) if k not in SUBDEV_SIGN_SKIP)
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
             6300: "method not found", 6813: "topic illegal",
             # gateway.md §G4-§G10
             401: "request auth error", 427: "device connect in elsewhere",
             428: "too many subdevices under gateway",
             520: "device session error", 521: "device deleted", 522: "device forbidden",
             6100: "device not found", 6250: "product not found", 6287: "invalid sign",
             6400: "too many topo relations", 6401: "topo relation not exist",
             6402: "topo relation cannot add by self", 9403: REG_ERRORS["dynreg_off"][1],
             9409: "device already activated"}


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
        # a sub-device (docs/protocols/gateway.md)
        self.topo = None              # (gwPK, gwDN) of the gateway it is attached to
        self.via = None               # the gateway Conn it is logged in on
        self.last_gw = None           # (gwPK, gwDN) of its last login
        self.disabled = self.deleted = False
        self.clean_session = None
        self.last_login_code = None
        self.iot_id = None
        self.login_times = collections.deque()   # for the subdev_logins_per_min setting
        self.gwc = collections.Counter()  # topoAdd, topoDelete, loginAttempt, login, logout
        # a gateway: its requests by op (topo_add, batch_login, ...)
        self.gw_requests = collections.Counter()

    def subdev_state(self):
        """A sub-device's topology, login state and counters (control commands topology,
        subdevices, device)."""
        return {
            "productKey": self.pk, "deviceName": self.dn,
            "gwProductKey": self.topo and self.topo[0], "gwDeviceName": self.topo and self.topo[1],
            "topology": self.topo is not None, "loggedIn": self.via is not None,
            "conn": self.via.id if self.via else None,
            "lastGateway": "%s/%s" % self.last_gw if self.last_gw else None,
            "disabled": self.disabled, "deleted": self.deleted,
            "registered": self.secret is not None, "secretSource": self.secret_source,
            "activated": self.activated, "cleanSession": self.clean_session,
            "registerCount": self.register_count, "topoAddCount": self.gwc["topoAdd"],
            "topoDeleteCount": self.gwc["topoDelete"], "loginAttempts": self.gwc["loginAttempt"],
            "loginCount": self.gwc["login"], "logoutCount": self.gwc["logout"],
            "lastLoginCode": self.last_login_code,
            "properties": len(self.properties), "events": len(self.events),
        }

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
            "subDevice": {k: v for k, v in self.subdev_state().items()
                          if k not in ("productKey", "deviceName", "registered", "secretSource",
                                       "activated", "registerCount", "properties", "events")},
            "gwRequests": dict(self.gw_requests),
        }


class Product:
    def __init__(self, pk, secret, dynreg=True, nwl=False, allow_tcp=True, schema=None,
                 gateway=False):
        self.pk, self.secret = pk, secret
        self.dynreg, self.nwl, self.allow_tcp = dynreg, nwl, allow_tcp
        self.gateway = gateway        # a gateway product (gateway.md §G1)
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
            # gateways (docs/protocols/gateway.md §G14 limits; 0 = off)
            "topo_add_max": 30,               # sub-devices per topo/add (§G4)
            "register_max": 30,               # per sub/register or product_register (§G13)
            "batch_login_max": 50,            # per batch_login/batch_logout (§G8; older: 5)
            "topo_max": 2000,                 # topology per gateway (§G14) -> 6400
            "subdev_online_max": 2000,        # sub-devices online per gateway (§G14) -> 428
            "gw_logins_per_s": 200,           # sub-device logins per second per gateway -> 429
            "subdev_logins_per_min": 0,       # logins of one sub-device a minute (older doc: 5) -> 429
            # DECISION: a sub-device sign's timestamp more than this many ms away from the
            # cloud's clock is refused with 460 (gateway.md §G3 infers the real server accepts
            # any; §G20 has sensorgw send epoch ms). 0 accepts any timestamp, as the SDKs expect
            "subdev_timestamp_skew_ms": 900000,
            # gateway.md §G2: combine/* is QoS 0 only; "refuse" answers a QoS 1 one with 460
            "combine_qos1": "refuse",         # or "accept"
            # DECISION: downlinks to a logged-in sub-device need the gateway's SUBSCRIBE to the
            # sub-device's topic (gateway.md §G11 "the safe choice"); true delivers them without
            # (the Link SDK 4.x behaviour the doc infers)
            "route_unsubscribed": False,
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
            p.gateway = bool(a.get("gateway", a.get("nodeType", "").upper() == "GATEWAY"
                                   if "nodeType" in a else p.gateway))
            if "schema" in a:
                p.schema = a["schema"] or None
            for d in a.get("devices", []):
                self.add_device(dict(d, productKey=pk) if isinstance(d, dict)
                                else {"productKey": pk, "deviceName": d})
        if a.get("thingModel"):
            self.load_thing_model("%s=%s" % (pk, a["thingModel"]))
        self.log("ctl_product", productKey=pk, dynamicRegistration=p.dynreg,
                 registrationFree=p.nwl, allowTcp=p.allow_tcp, gateway=p.gateway)
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
            if d.deleted:             # created again after delete_subdev: a new device
                d.deleted = d.disabled = d.activated = False
                d.topo = d.last_gw = None
                d.secret = d.secret_source = None
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

    # ---- gateways (docs/protocols/gateway.md)
    def is_gateway(self, d):
        p = self.products.get(d.pk) if d is not None else None
        return p is not None and p.gateway

    def topology(self, gw):
        """The sub-devices attached to gateway key gw = (PK, DN)."""
        return [d for p in self.products.values() for d in p.devices.values() if d.topo == gw]


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
        self.subdevs = set()       # a gateway session: the sub-devices logged in on it
        self.logins = collections.deque()   # its sub-device logins in the last second


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
        if d is None or d.secret is None or d.deleted:
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


    # ---- gateways: routes and the end of a gateway session (gateway.md §G1, §G11)
    def routes(self, d):
        """A sub-device's downlinks go to the gateway session it is logged in on (§G11)."""
        return list(d.sessions) + ([d.via] if d.via is not None and d.via.state != "closed"
                                   else [])

    def deliver(self, d, topic, payload, qos=0):
        sent = super().deliver(d, topic, payload, qos)
        via = d.via
        if via is not None and via.state != "closed" and via.id not in sent and \
                self.cloud.settings["route_unsubscribed"]:
            self.publish(via, topic, payload, qos)
            sent.append(via.id)
        return sent

    def close(self, c, why, log=True):
        was_open = c.state != "closed"
        super().close(c, why, log)
        if was_open and c.subdevs:   # §G1: the gateway's sub-devices go offline with it
            with self.cloud.lock:
                evs = [logout_sub(self.cloud, d, "gateway_closed") for d in list(c.subdevs)]
            for ev in evs:
                self.cloud.log("subdev_logout", **ev)

    # ---- ACL
    def allowed(self, c, topic, is_filter):
        pk, dn = c.pk, c.dn
        own = ["/sys/%s/%s/" % (pk, dn), "/ext/session/%s/%s/" % (pk, dn)]
        if any(topic.startswith(p) for p in own):
            return True
        if is_filter and topic == "/ext/error/%s/%s" % (pk, dn):   # gateway.md §G10
            return True
        if is_filter and self.cloud.is_gateway(c.device):
            # a gateway may subscribe to the topics of the sub-devices in its topology (§G11)
            sub = subdev_of_topic(topic)
            if sub is not None:
                with self.cloud.lock:
                    d = self.cloud.device(sub[0], sub[1])
                    return d is not None and d.topo == (pk, dn) and not d.deleted
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
        sub = subdev_of_topic(topic) if self.cloud.is_gateway(c.device) else None
        if sub is not None and sub[:2] != (c.pk, c.dn) and sub[2] != "error":
            return self.subdev_publish(c, sub, topic, qos, pid, payload, ev)
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
        if gateway_request(self.cloud, self, c, topic, payload, qos):
            return
        alink_uplink(self.cloud, self, c, d, topic, payload)

    def subdev_publish(self, c, sub, topic, qos, pid, payload, ev):
        """A gateway's PUBLISH on a sub-device's own topic (gateway.md §G11): handled as that
        device's uplink while it is logged in on this session; otherwise answered with 520 on
        /ext/error (§G10) and dropped. A reply to thing/disable, enable or delete (§G12) is
        taken from the gateway that last carried it, since the cloud logs it out."""
        pk, dn, _ = sub
        gw = (c.pk, c.dn)
        with self.cloud.lock:
            d = self.cloud.device(pk, dn)
            rest = topic.split("/", 4)[4] if topic.startswith("/sys/") else ""
            ok = d is not None and d.via is c
            late_reply = d is not None and not ok and rest in LIFECYCLE_REPLIES and \
                gw in (d.topo, d.last_gw)
        ev = dict(ev, subProductKey=pk, subDeviceName=dn)
        if not ok and not late_reply:
            self.cloud.log("mqtt_publish_in", refused="sub-device not logged in", **ev)
            if qos:
                self.puback(c, pid)
            if d is None:
                reason = "unknown device"
            elif d.topo != gw:
                reason = "no topology with this gateway"
            else:
                reason = "not logged in on this session"
            self.cloud.log("subdev_refused", productKey=pk, deviceName=dn, gwProductKey=c.pk,
                           gwDeviceName=c.dn, conn=c.id, topic=topic, code=520, reason=reason)
            push_ext_error(self.cloud, self, c.device, 520, ALINK_MSG[520], (pk, dn))
            return
        throttled = self.throttled(d)   # DECISION: the rate limit counts per sub-device
        self.cloud.log("mqtt_publish_in", throttled=throttled, **ev)
        if qos:
            self.puback(c, pid)
        if throttled:
            self.cloud.log("throttled", conn=c.id, productKey=pk, deviceName=dn, topic=topic,
                           gwProductKey=c.pk, gwDeviceName=c.dn)
            return
        alink_uplink(self.cloud, self, c, d, topic, payload)


# --------------------------------------------------------------------------------------------
# Gateways and sub-devices (docs/protocols/gateway.md §G2-§G14)

LIFECYCLE_REPLIES = ("thing/disable_reply", "thing/enable_reply", "thing/delete_reply")
FORCED_LOGOUT = (427, 520, 521, 522, 6401)   # gateway.md §G10
# request topic (after /sys/{gwPK}/{gwDN}/ or /ext/session/{gwPK}/{gwDN}/) -> (op, method)
GW_SYS_OPS = {
    "thing/topo/add": ("topo_add", "thing.topo.add"),
    "thing/topo/delete": ("topo_delete", "thing.topo.delete"),
    "thing/topo/get": ("topo_get", "thing.topo.get"),
    "thing/sub/register": ("sub_register", "thing.sub.register"),
    "thing/proxy/provisioning/product_register": ("product_register",
                                                  "thing.proxy.provisioning.product_register"),
}
GW_SESSION_OPS = {"combine/login": "login", "combine/batch_login": "batch_login",
                  "combine/logout": "logout", "combine/batch_logout": "batch_logout"}
GW_REPLIES = {"thing/topo/change_reply": "topo_change"}
TOPO_CHANGE = {"add": 0, "delete": 1, "enable": 2, "disable": 8}   # gateway.md §G6 (CN)


def entry_device(cloud, e):
    """An entry {productKey, deviceName} of a gateway request: (its device or None, None), or
    (None, (460, why)) when the entry is not of that shape."""
    if not isinstance(e, dict) or not isinstance(e.get("productKey"), str) or \
            not isinstance(e.get("deviceName"), str):
        return None, (460, "entries need productKey and deviceName")
    return cloud.device(e["productKey"], e["deviceName"]), None


def subdev_of_topic(topic):
    """(PK, DN, form) of a device-specific topic: /sys/{pk}/{dn}/... ("sys"),
    /ext/rrpc/{id}/sys/{pk}/{dn}/... ("rrpc") or /ext/error/{pk}/{dn} ("error"); else None."""
    parts = topic.split("/")
    if len(parts) >= 5 and parts[0] == "" and parts[1] == "sys":
        pk, dn, form = parts[2], parts[3], "sys"
    elif len(parts) >= 8 and parts[0] == "" and parts[1:3] == ["ext", "rrpc"] \
            and parts[4] == "sys" and parts[3] != "#":
        pk, dn, form = parts[5], parts[6], "rrpc"
    elif len(parts) == 5 and parts[0] == "" and parts[1:3] == ["ext", "error"]:
        pk, dn, form = parts[3], parts[4], "error"
    else:
        return None
    if not pk or not dn or any(x in ("+", "#") for x in (pk, dn)):
        return None
    return pk, dn, form


def gw_fields(gw):
    return {"gwProductKey": gw.pk, "gwDeviceName": gw.dn}


def logout_sub(cloud, d, why):
    """Under cloud.lock: d is no longer logged in; returns the subdev_logout event's fields."""
    c = d.via
    d.via = None
    if c is not None:
        c.subdevs.discard(d)
    d.gwc["logout"] += 1
    return {"productKey": d.pk, "deviceName": d.dn, "why": why,
            "gwProductKey": c and c.pk, "gwDeviceName": c and c.dn, "conn": c and c.id}


def push_ext_error(cloud, broker, gw, code, message, sub=None, on="error"):
    """gateway.md §G10: {"id","code","message"[,"data":{productKey,deviceName}]} to the gateway
    device gw on /ext/error/{gwPK}/{gwDN} (on="error") or on its combine/logout_reply (the
    older revision, on="logout_reply"). Runs in the broker thread."""
    topic = "/ext/error/%s/%s" % (gw.pk, gw.dn) if on == "error" else \
        "/ext/session/%s/%s/combine/logout_reply" % (gw.pk, gw.dn)
    body = {"id": cloud.new_id(), "code": code, "message": message}
    if sub is not None:
        body["data"] = {"productKey": sub[0], "deviceName": sub[1]}
    sent = broker.deliver(gw, topic, json.dumps(body, separators=(",", ":")).encode())
    cloud.log("gw_ext_error", topic=topic, code=code, message=message, id=body["id"],
              productKey=sub and sub[0], deviceName=sub and sub[1], deliveredTo=sent,
              **gw_fields(gw))
    return {"topic": topic, "payload": body, "deliveredTo": sent}


def push_topo_change(cloud, broker, gw, status, subs, i=None):
    """gateway.md §G6: thing.topo.change with status and subList to gateway device gw."""
    topic = "/sys/%s/%s/thing/topo/change" % (gw.pk, gw.dn)
    body = {"id": str(i or cloud.new_id()), "version": "1.0", "method": "thing.topo.change",
            "params": {"status": status,
                       "subList": [{"productKey": pk, "deviceName": dn} for pk, dn in subs]}}
    sent = broker.deliver(gw, topic, json.dumps(body, separators=(",", ":")).encode())
    cloud.log("gw_topo_change", topic=topic, id=body["id"], status=status,
              subList=body["params"]["subList"], deliveredTo=sent, **gw_fields(gw))
    return {"topic": topic, "payload": body, "deliveredTo": sent}


def parse_gw_request(payload, method):
    """A gateway request's envelope (gateway.md §G2, §G20: method and version present or
    absent, the id a string, "" included (the [LS41] topo/get quirk)). Returns (obj, code,
    reason)."""
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None, 460, "payload is not JSON"
    if not isinstance(obj, dict):
        return None, 460, "payload is not a JSON object"
    i = obj.get("id")
    if isinstance(i, bool) or not isinstance(i, (str, int)):
        return obj, 460, "id must be a string"
    if "version" in obj and obj["version"] != "1.0":
        return obj, 460, 'version must be "1.0"'
    if method and "method" in obj and obj["method"] != method:
        return obj, 6300, "method %r does not match topic (want %s)" % (obj["method"], method)
    if "params" not in obj:
        return obj, 460, "params missing"
    return obj, 200, None


def fresh_timestamp(cloud, ts):
    """None, or why a sub-device sign's timestamp is refused (460): it must be decimal digits
    (a string or a JSON number, §G3), within subdev_timestamp_skew_ms of the cloud's clock."""
    if isinstance(ts, bool) or not isinstance(ts, (str, int)) or not str(ts).isdigit() \
            or not str(ts).isascii():
        return "timestamp must be decimal digits (ms)"
    skew = int(cloud.settings["subdev_timestamp_skew_ms"])
    if skew and abs(now_ms() - int(ts)) > skew:
        return "timestamp %s is more than %d ms away from the cloud's clock (stale?)" % (ts, skew)
    return None


def check_subdev_sign(cloud, e, list_method, need):
    """The sign fields of topo/add and login entry e (gateway.md §G3, §G4, §G7). need: the
    fields besides sign. Returns (method, None) or (None, (460, reason))."""
    if not isinstance(e, dict):
        return None, (460, "an entry must be an object")
    for k in need + ("sign",):
        v = e.get(k)
        if k == "timestamp":
            if v is None:
                return None, (460, "timestamp missing")
        elif not isinstance(v, str) or not v:
            return None, (460, "%s missing or not a string" % k)
    method = e.get("signMethod", e.get("signmethod", list_method))
    if not isinstance(method, str) or method.lower() not in HMACS:
        return None, (460, "unsupported signMethod %r" % (method,))
    if any(not isinstance(v, (str, int)) or isinstance(v, bool)
           for k, v in e.items() if k not in SUBDEV_SIGN_SKIP):
        return None, (460, "the signed fields must be strings")
    why = fresh_timestamp(cloud, e.get("timestamp"))
    if why:
        return None, (460, why)
    return method, None


def sign_ok(method, secret, e):
    return secret is not None and isinstance(e.get("sign"), str) and \
        hex_equal(hmac_hex(method, secret, subdev_sign_content(e)), e["sign"])


def topo_add(cloud, broker, c, gw, params):
    """gateway.md §G4. DECISION: all or nothing, like batch_login (§G8): one faulty entry
    refuses the request with its code and data listing the faulty ones."""
    if not isinstance(params, list) or not params:
        return 460, "params must be a non-empty array", {}, []
    if len(params) > int(cloud.settings["topo_add_max"]) > 0:
        return 460, "more than %s sub-devices in one topo/add" % cloud.settings["topo_add_max"], \
            {}, []
    results = []
    for e in params:
        method, err = check_subdev_sign(cloud, e, None, ("productKey", "deviceName", "clientId",
                                                         "timestamp"))
        d = None
        if err is None:
            d = cloud.device(e["productKey"], e["deviceName"])
            if (e["productKey"], e["deviceName"]) == (gw.pk, gw.dn) or cloud.is_gateway(d):
                err = 6402, "a gateway cannot be its own or another gateway's sub-device"
            elif d is None or d.deleted:
                err = 6100, "device not found"
            elif not sign_ok(method, d.secret, e):
                err = 401, "sign check failed" + ("" if d.secret else " (the device has no secret)")
        results.append((e, d, err))
    new = {(d.pk, d.dn) for _, d, err in results if err is None and d.topo != (gw.pk, gw.dn)}
    limit = int(cloud.settings["topo_max"])
    if limit and all(err is None for _, _, err in results) and \
            len(cloud.topology((gw.pk, gw.dn))) + len(new) > limit:
        return 6400, "more than %d sub-devices in the topology" % limit, {}, []
    return commit_batch("subdev_topo_add", results, lambda d, e: add_topo(
        cloud, broker, gw, d))


def add_topo(cloud, broker, gw, d):
    moved = d.topo if d.topo not in (None, (gw.pk, gw.dn)) else None
    if moved and d.via is not None:   # moved away from the gateway it is logged in on
        cloud.log("subdev_logout", **logout_sub(cloud, d, "moved"))
    d.topo = (gw.pk, gw.dn)
    d.gwc["topoAdd"] += 1
    return {"movedFrom": "%s/%s" % moved if moved else None}


def commit_batch(ev, results, commit):
    """results: [(entry, device, None | (code, reason))]. All valid: commit(d, entry) each and
    reply 200 with data [{productKey, deviceName}]; else the first error's code,
    data the faulty entries, nothing committed. Returns (code, message, data, events)."""
    bad = [(e, err) for e, _, err in results if err is not None]
    events = []

    def ident(e):
        return {"productKey": e.get("productKey") if isinstance(e, dict) else None,
                "deviceName": e.get("deviceName") if isinstance(e, dict) else None}
    if bad:
        code, reason = bad[0][1]
        for e, d, err in results:
            events.append((ev, dict(ident(e), code=err[0] if err else code,
                                    reason=err[1] if err else "batch refused (all or nothing)")))
        return code, reason, [dict(ident(e), code=err[0], message=err[1]) for e, err in bad], \
            events
    data = []
    for e, d, _ in results:
        extra = commit(d, e) or {}
        events.append((ev, dict(ident(e), code=200, reason=None, **extra)))
        data.append(ident(e))
    return 200, None, data, events


def topo_delete(cloud, broker, c, gw, params):
    """gateway.md §G5: params [{productKey, deviceName}]; 6100 for a device not in this
    gateway's topology; a logged-in sub-device is logged out."""
    if not isinstance(params, list) or not params:
        return 460, "params must be a non-empty array", {}, []
    results = []
    for e in params:
        d, err = entry_device(cloud, e)
        if err is None and (d is None or d.topo != (gw.pk, gw.dn)):
            err = 6100, "device not found in this gateway's topology"
        results.append((e, d, err))

    def commit(d, e):
        d.topo = None
        d.gwc["topoDelete"] += 1
        if d.via is not None:
            cloud.log("subdev_logout", **logout_sub(cloud, d, "topo_deleted"))
    code, msg, data, events = commit_batch("subdev_topo_delete", results, commit)
    return code, msg, ({} if code == 200 else data), events


def topo_get(cloud, broker, c, gw, params):
    """gateway.md §G5: params {} or "{}" (the [LS41] quirk)."""
    if params not in ({}, "{}"):
        return 460, 'params must be {} (or the string "{}")', {}, []
    return 200, None, [{"productKey": d.pk, "deviceName": d.dn}
                       for d in cloud.topology((gw.pk, gw.dn))], []


def register_check(cloud, gw, pk, dn, create):
    """The checks both registrations share (gateway.md §G13, aliyun.md §1-§2); returns (device or
    None, None | (code, reason))."""
    p = cloud.products.get(pk)
    if (pk, dn) == (gw.pk, gw.dn) or (p is not None and p.gateway):
        return None, (6402, "a gateway cannot register itself or another gateway as a sub-device")
    if p is None:
        return None, REG_ERRORS["no_product"]
    if not p.dynreg:
        return None, REG_ERRORS["dynreg_off"]
    d = p.devices.get(dn)
    if not create and (d is None or not d.preregistered or d.deleted):
        return None, REG_ERRORS["no_device"]
    if d is not None and d.activated and not d.deleted:
        return None, REG_ERRORS["activated"]
    return d, None


def issue_sub_secret(cloud, pk, dn, how):
    d = cloud.device(pk, dn, create=True)
    if d.deleted:
        d.deleted = d.disabled = False
        d.topo = d.last_gw = None
    d.secret, d.secret_source = issued_secret(32), how   # the last secret wins (aliyun.md §1)
    d.register_count += 1
    d.iot_id = d.iot_id or rand_alnum(20)
    return d


def sub_data(d):
    return {"iotId": d.iot_id, "productKey": d.pk, "deviceName": d.dn, "deviceSecret": d.secret}


def sub_register(cloud, broker, c, gw, params):
    """gateway.md §G13: pre-registered names get their DeviceSecret; no sign. DECISION: all or
    nothing; the codes of HTTPS registration (README) for unknown product/device, dynamic
    registration off and an already activated device (it has logged in)."""
    if not isinstance(params, list) or not params:
        return 460, "params must be a non-empty array", {}, []
    if len(params) > int(cloud.settings["register_max"]) > 0:
        return 460, "more than %s sub-devices in one register" % cloud.settings["register_max"], \
            {}, []
    results = []
    for e in params:
        _, err = entry_device(cloud, e)
        if err:
            results.append((e, None, err))
            continue
        d, err = register_check(cloud, gw, e["productKey"], e["deviceName"], False)
        results.append((e, d, err))
    holder = {}

    def commit(d, e):
        holder[id(e)] = issue_sub_secret(cloud, e["productKey"], e["deviceName"], "sub_register")
        return {"how": "sub_register", "deviceSecret": holder[id(e)].secret}
    code, msg, data, events = commit_batch("subdev_register", results, commit)
    if code == 200:
        data = [sub_data(holder[id(e)]) for e, _, _ in results]
    return code, msg, data, events


DN_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_@.:")


def product_register(cloud, broker, c, gw, params):
    """gateway.md §G13: {"proxieds": [{productKey, deviceName, random, signMethod, sign}]},
    sign = HMAC(ProductSecret, deviceName..productKey..random..). DECISION: a deviceName need
    not be pre-registered (the device is created, as the brief asks; the doc leaves it
    [UNVERIFIED]); the reply's data (layout [UNVERIFIED]) is the array sub/register answers."""
    proxieds = params.get("proxieds") if isinstance(params, dict) else None
    if not isinstance(proxieds, list) or not proxieds:
        return 460, "params.proxieds must be a non-empty array", {}, []
    if len(proxieds) > int(cloud.settings["register_max"]) > 0:
        return 460, "more than %s sub-devices in one register" % cloud.settings["register_max"], \
            {}, []
    results = []
    for e in proxieds:
        if not isinstance(e, dict) or any(not isinstance(e.get(k), str) or not e.get(k) for k in
                                          ("productKey", "deviceName", "random", "sign")):
            results.append((e, None, (460, "entries need productKey, deviceName, random, sign")))
            continue
        method = e.get("signMethod", e.get("signmethod"))
        if not isinstance(method, str) or method.lower() not in HMACS:
            results.append((e, None, (460, "unsupported signMethod %r" % (method,))))
            continue
        if not 4 <= len(e["deviceName"]) <= 32 or not set(e["deviceName"]) <= DN_OK:
            results.append((e, None, (6280, "deviceName breaks the naming rules")))
            continue
        if any(not isinstance(v, str) for k, v in e.items() if k not in SUBDEV_SIGN_SKIP):
            results.append((e, None, (460, "the signed fields must be strings")))
            continue
        d, err = register_check(cloud, gw, e["productKey"], e["deviceName"], True)
        if err is None and not sign_ok(method, cloud.products[e["productKey"]].secret, e):
            err = 401, "sign check failed (HMAC of the ProductSecret)"
        results.append((e, d, err))
    holder = {}

    def commit(d, e):
        holder[id(e)] = issue_sub_secret(cloud, e["productKey"], e["deviceName"],
                                         "product_register")
        return {"how": "product_register", "deviceSecret": holder[id(e)].secret}
    code, msg, data, events = commit_batch("subdev_register", results, commit)
    if code == 200:
        data = [sub_data(holder[id(e)]) for e, _, _ in results]
    return code, msg, data, events


def check_login(cloud, c, gw, e, list_method):
    """One login entry (gateway.md §G7 table, in this order); returns (device, None | (code,
    reason))."""
    method, err = check_subdev_sign(cloud, e, list_method,
                                    ("productKey", "deviceName", "clientId", "timestamp"))
    if err:
        return None, err
    cs = e.get("cleanSession")
    if cs is not None and cs not in ("true", "false", True, False):
        return None, (460, 'cleanSession must be "true" or "false"')
    d = cloud.device(e["productKey"], e["deviceName"])
    if d is None:
        return None, (6100, "device not found")
    d.gwc["loginAttempt"] += 1
    if d.deleted:
        return d, (521, "device deleted")
    if d.topo != (gw.pk, gw.dn):
        return d, (6401, "topo relation not exist")
    if d.disabled:
        return d, (522, "device forbidden")
    if not sign_ok(method, d.secret, e):
        return d, (6287, "invalid sign" + ("" if d.secret else " (the device has no secret)"))
    limit = int(cloud.settings["subdev_logins_per_min"])
    if limit:
        now = time.monotonic()
        while d.login_times and now - d.login_times[0] >= 60:
            d.login_times.popleft()
        if len(d.login_times) >= limit:
            return d, (429, "rate limit, too many subDeviceOnline msg in one minute")
    return d, None


def login_limits(cloud, c, ds):
    """The per-gateway limits on logging ds in on c at once (§G14); None or (code, reason)."""
    limit = int(cloud.settings["subdev_online_max"])
    if limit and len(c.subdevs | set(ds)) > limit:
        return 428, "too many subdevices under gateway"
    limit = int(cloud.settings["gw_logins_per_s"])
    now = time.monotonic()
    while c.logins and now - c.logins[0] >= 1.0:
        c.logins.popleft()
    if limit and len(c.logins) + len(ds) > limit:
        return 429, "rate limit, too many subDeviceOnline msg in one second"
    return None


def login_sub(cloud, broker, c, gw, d, e):
    """Under cloud.lock: d is logged in on gateway session c; a login on another session
    forces it out there with 427 (§G10)."""
    old = d.via
    if old is not None and old is not c:
        cloud.log("subdev_logout", **logout_sub(cloud, d, "logged_in_elsewhere"))
        push_ext_error(cloud, broker, old.device, 427, ALINK_MSG[427], (d.pk, d.dn))
    d.via = c
    c.subdevs.add(d)
    now = time.monotonic()
    c.logins.append(now)
    d.login_times.append(now)
    d.last_gw = (gw.pk, gw.dn)
    d.activated = True
    d.gwc["login"] += 1
    d.last_login_code = 200
    d.clean_session = str(e.get("cleanSession", "true")).lower()
    return {"conn": c.id, "cleanSession": d.clean_session, "clientId": e.get("clientId")}


def do_logins(cloud, broker, c, gw, entries, list_method, batch):
    results = []
    for e in entries:
        d, err = check_login(cloud, c, gw, e, list_method)
        if d is not None and err is not None:
            d.last_login_code = err[0]
        results.append((e, d, err))
    if all(err is None for _, _, err in results):
        err = login_limits(cloud, c, [d for _, d, _ in results])
        if err is not None:
            for e, d, _ in results:
                d.last_login_code = err[0]
            results = [(e, d, err) for e, d, _ in results]
    code, msg, data, events = commit_batch("subdev_login", results,
                                           lambda d, e: login_sub(cloud, broker, c, gw, d, e))
    return code, msg, data, [(ev, dict(f, batch=batch)) for ev, f in events]


def combine_login(cloud, broker, c, gw, params):
    """gateway.md §G7: params one object; the reply's data is {productKey, deviceName}."""
    if not isinstance(params, dict):
        return 460, "params must be an object", {}, []
    code, msg, data, events = do_logins(cloud, broker, c, gw, [params], None, False)
    return code, msg, (data[0] if code == 200 else
                       {"productKey": params.get("productKey"),
                        "deviceName": params.get("deviceName")}), events


def batch_login(cloud, broker, c, gw, params):
    """gateway.md §G8: {"signMethod", "deviceList": [...]}, signMethod at the list level or in
    each entry; at most batch_login_max; all or nothing."""
    lst = params.get("deviceList") if isinstance(params, dict) else None
    if not isinstance(lst, list) or not lst:
        return 460, "params.deviceList must be a non-empty array", [], []
    if len(lst) > int(cloud.settings["batch_login_max"]) > 0:
        return 460, "more than %s sub-devices in one batch_login" % \
            cloud.settings["batch_login_max"], [], []
    return do_logins(cloud, broker, c, gw, lst, params.get("signMethod", params.get("signmethod")),
                     True)


def do_logouts(cloud, c, gw, entries):
    results = []
    for e in entries:
        d, err = entry_device(cloud, e)
        if err is None and (d is None or d.via is not c):
            err = 520, "device session error (not logged in on this session)"
        results.append((e, d, err))

    def commit(d, e):
        return {"conn": logout_sub(cloud, d, "request")["conn"]}
    code, msg, data, events = commit_batch("subdev_logout", results, commit)
    return code, msg, data, [(ev, dict(f, why="request")) for ev, f in events]


def combine_logout(cloud, broker, c, gw, params):
    """gateway.md §G9: params {productKey, deviceName}; 520 when it has no session here."""
    if not isinstance(params, dict):
        return 460, "params must be an object", {}, []
    code, msg, data, events = do_logouts(cloud, c, gw, [params])
    return code, msg, (data[0] if code == 200 else
                       {"productKey": params.get("productKey"),
                        "deviceName": params.get("deviceName")}), events


def batch_logout(cloud, broker, c, gw, params):
    """gateway.md §G8: params an array; DECISION: all or nothing, as batch_login."""
    if not isinstance(params, list) or not params:
        return 460, "params must be a non-empty array", [], []
    if len(params) > int(cloud.settings["batch_login_max"]) > 0:
        return 460, "more than %s sub-devices in one batch_logout" % \
            cloud.settings["batch_login_max"], [], []
    return do_logouts(cloud, c, gw, params)


GW_HANDLERS = {"topo_add": topo_add, "topo_delete": topo_delete, "topo_get": topo_get,
               "sub_register": sub_register, "product_register": product_register,
               "login": combine_login, "batch_login": batch_login, "logout": combine_logout,
               "batch_logout": batch_logout}


def gateway_request(cloud, broker, c, topic, payload, qos):
    """A request on the gateway's own topo, register or combine topic (or a reply to
    topo/change): handled, replied to on TOPIC_reply, logged; returns False for any other
    topic. A device whose product is not a gateway product gets 460."""
    gw = c.device
    sys_base = "/sys/%s/%s/" % (gw.pk, gw.dn)
    ses_base = "/ext/session/%s/%s/" % (gw.pk, gw.dn)
    rest = topic[len(sys_base):] if topic.startswith(sys_base) else None
    if rest in GW_REPLIES:
        try:
            obj = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            obj = None
        obj = obj if isinstance(obj, dict) else {}
        cloud.log("gw_reply", op=GW_REPLIES[rest], topic=topic, id=obj.get("id"),
                  code=obj.get("code"), payload=payload.decode("utf-8", "replace"), **gw_fields(gw))
        return True
    if rest in GW_SYS_OPS:
        op, method = GW_SYS_OPS[rest]
    elif topic.startswith(ses_base) and topic[len(ses_base):] in GW_SESSION_OPS:
        op, method = GW_SESSION_OPS[topic[len(ses_base):]], None
    else:
        return False
    obj, code, reason = parse_gw_request(payload, method)
    data, events = {}, []
    params = obj.get("params") if isinstance(obj, dict) else None
    with cloud.lock:
        gw.gw_requests[op] += 1
        if code == 200 and not cloud.is_gateway(gw):
            code, reason = 460, "not a gateway: the device's product is not a gateway product"
        if code == 200 and qos and method is None and cloud.settings["combine_qos1"] == "refuse":
            code, reason = 460, "combine/* messages are QoS 0 only (gateway.md §G2)"
        if code == 200:
            code, reason, data, events = GW_HANDLERS[op](cloud, broker, c, gw, params)
    i = obj.get("id", "") if isinstance(obj, dict) else ""
    reply = {"id": i, "code": code, "message": "success" if code == 200 else
             (reason or ALINK_MSG.get(code, "error")), "data": data}
    reply_topic = topic + "_reply"
    sent = broker.deliver(gw, reply_topic, json.dumps(reply, separators=(",", ":")).encode())
    for ev, fields in events:
        cloud.log(ev, id=i, **dict(fields, **gw_fields(gw)))
    cloud.log("gw_request", op=op, conn=c.id, id=i, qos=qos, code=code, message=reply["message"],
              size=len(events), data=data if code != 200 else None, replyTopic=reply_topic,
              replyDelivered=bool(sent), **gw_fields(gw))
    return True


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
    if rest in LIFECYCLE_REPLIES:   # gateway.md §G12
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
    via = {"gwProductKey": c.pk, "gwDeviceName": c.dn} if c.device is not d else {}
    cloud.log("alink_post", kind=kind, productKey=d.pk, deviceName=d.dn, id=mid, code=code,
              reason=reason, duplicateId=dup, replyTopic=reply_topic, ack=want_ack,
              replyDelivered=bool(delivered), **via)


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
            elif kind == "service" and rec["kind"] in ("property_set", "service", "disable",
                                                       "enable", "delete") \
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
    elif kind in ("disable", "enable", "delete"):   # gateway.md §G12
        topic = "/sys/%s/%s/thing/%s" % (pk, dn, kind)
        body = {"id": i, "version": "1.0", "params": {}, "method": "thing.%s" % kind}
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
            for c in broker.routes(d):
                try:
                    bits = int(c.ext.get("ext", "0"))
                except ValueError:
                    bits = 0
                if bits & 1:
                    broker.publish(c, topic, raw, 0)
                    sent_to.append(c.id)
        elif kind == "raw" and a.get("force"):
            for c in broker.routes(d):
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
            d.gwc.clear()
            d.gw_requests.clear()
            d.login_times.clear()
            d.last_login_code = None
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
            if "gateway" in a:
                p.gateway = bool(a["gateway"])
            if "schema" in a:
                p.schema = a["schema"] or None
            return {"productKey": p.pk, "dynamicRegistration": p.dynreg,
                    "registrationFree": p.nwl, "allowTcp": p.allow_tcp, "gateway": p.gateway,
                    "schema": p.schema}

    # ---- gateways (docs/protocols/gateway.md; README "Gateways and sub-devices")
    def cmd_add_gateway(a):
        """A gateway product (created when missing, made a gateway product when not) and its
        device: productKey, deviceName, optional deviceSecret, productSecret."""
        pk = a.get("productKey")
        with cloud.lock:
            p = cloud.products.get(pk)
        if p is None:
            cloud.add_product({"productKey": pk, "gateway": True,
                               "productSecret": a.get("productSecret") or rand_alnum(16)})
        else:
            with cloud.lock:
                p.gateway = True
        out = cloud.add_device({"productKey": pk, "deviceName": a.get("deviceName"),
                                "deviceSecret": a.get("deviceSecret")})
        cloud.log("ctl_gateway", productKey=pk, deviceName=a.get("deviceName"))
        return out

    def need_gateway(pk, dn):
        gw = cloud.device(pk, dn)
        if gw is None or not cloud.is_gateway(gw):
            raise CtlError("no gateway device %r/%r" % (pk, dn))
        return gw

    def gateway_state(gw):
        return {"productKey": gw.pk, "deviceName": gw.dn, "connected": len(gw.sessions),
                "requests": dict(gw.gw_requests),
                "loggedIn": sorted("%s/%s" % (d.pk, d.dn) for c in gw.sessions for d in c.subdevs),
                "subDevices": [d.subdev_state() for d in cloud.topology((gw.pk, gw.dn))]}

    def cmd_topology(a):
        """One gateway's (productKey, deviceName) topology, or every gateway's."""
        with cloud.lock:
            if a.get("productKey") or a.get("deviceName"):
                return gateway_state(need_gateway(a.get("productKey"), a.get("deviceName")))
            return {"gateways": [gateway_state(d) for p in cloud.products.values() if p.gateway
                                 for d in p.devices.values()]}

    def cmd_subdevices(a):
        """Sub-devices' state and counters, filtered by gwProductKey, gwDeviceName, productKey,
        deviceName, loggedIn; devices that never met a gateway only with all: true."""
        out = []
        with cloud.lock:
            for p in cloud.products.values():
                if p.gateway:
                    continue
                for d in p.devices.values():
                    st = d.subdev_state()
                    if not a.get("all") and not (d.topo or d.last_gw or +d.gwc or
                                                 d.secret_source in ("sub_register",
                                                                     "product_register")):
                        continue
                    if any(a.get(k) is not None and str(st[k]).lower() != str(a[k]).lower()
                           for k in ("gwProductKey", "gwDeviceName", "productKey", "deviceName",
                                     "loggedIn")):
                        continue
                    out.append(st)
        return {"subDevices": out}

    def lifecycle(op):
        """disable_subdev, enable_subdev, delete_subdev (gateway.md §G6, §G10, §G12): the state
        change, then thing/{op} on the sub-device's topic (downlink: false leaves it out),
        topo/change to its gateway (topoChange: false), and for disable/delete of a logged-in
        sub-device the forced logout with 522/521 on /ext/error (extError: false)."""
        def run(a):
            with cloud.lock:
                d = cloud.need_device(a)
                if cloud.is_gateway(d):
                    raise CtlError("%s/%s is a gateway, not a sub-device" % (d.pk, d.dn))
                gwkey = d.topo or d.last_gw
                gwd = cloud.device(*gwkey) if gwkey else None
                if op == "disable":
                    d.disabled = True
                elif op == "enable":
                    d.disabled = False
            out = {"productKey": d.pk, "deviceName": d.dn, "downlink": None, "topoChange": None,
                   "extError": None}
            if a.get("downlink", True):
                out["downlink"] = downlink(cloud, cloud.broker, {
                    "productKey": d.pk, "deviceName": d.dn, "id": a.get("id")}, op)
            with cloud.lock:
                via = d.via
                if op == "delete":
                    d.deleted, d.topo = True, None
                if op != "enable" and via is not None:
                    cloud.log("subdev_logout", **logout_sub(cloud, d, op + "d"))
            if gwd is not None and a.get("topoChange", True):
                out["topoChange"] = push_topo_change(cloud, cloud.broker, gwd, TOPO_CHANGE[op],
                                                     [(d.pk, d.dn)])
            if op != "enable" and via is not None and a.get("extError", True):
                code = 522 if op == "disable" else 521
                out["extError"] = push_ext_error(cloud, cloud.broker, via.device, code,
                                                 ALINK_MSG[code], (d.pk, d.dn))
            cloud.log("subdev_%sd" % op, productKey=d.pk, deviceName=d.dn,
                      gwProductKey=gwd and gwd.pk, gwDeviceName=gwd and gwd.dn,
                      wasLoggedIn=via is not None)
            return out

        def f(a):
            since = cloud.seq
            out = cloud.broker.call(lambda: run(a))
            wait = float(a.get("wait", 0) or 0)
            if wait and out["downlink"]:
                ev = cloud.wait_event({"ev": "downlink_reply", "productKey": out["productKey"],
                                       "deviceName": out["deviceName"],
                                       "id": out["downlink"]["id"], "matched": True},
                                      since, min(wait, 60))
                out["reply"] = ev and {k: v for k, v in ev.items() if k not in ("seq", "ev", "t")}
                out["timedOut"] = ev is None
            return out
        return f

    def gateway_of(a, sub):
        if a.get("gwProductKey") or a.get("gwDeviceName"):
            return need_gateway(a.get("gwProductKey"), a.get("gwDeviceName"))
        if sub is not None:
            key = (sub.via.pk, sub.via.dn) if sub.via else (sub.topo or sub.last_gw)
            if key:
                return need_gateway(*key)
        raise CtlError("name the gateway (gwProductKey, gwDeviceName)")

    def cmd_ext_error(a):
        """Pushes {id, code, message[, data]} to a gateway (gateway.md §G10): the sub-device
        productKey/deviceName (optional) goes into data; the gateway is gwProductKey/
        gwDeviceName or the sub-device's. on: "error" (/ext/error, default) or "logout_reply".
        logout (default: code is 427/520/521/522/6401) logs the sub-device out in the cloud
        too; dropTopology (default: code 6401) removes its topology."""
        def run():
            code = int(a.get("code", 520))
            on = a.get("on", "error")
            if on not in ("error", "logout_reply"):
                raise CtlError('on must be "error" or "logout_reply"')
            with cloud.lock:
                sub = cloud.need_device(a) if a.get("productKey") or a.get("deviceName") else None
                gw = gateway_of(a, sub)
                if sub is not None:
                    if a.get("logout", code in FORCED_LOGOUT) and sub.via is not None:
                        cloud.log("subdev_logout", **logout_sub(cloud, sub, "ext_error"))
                    if a.get("dropTopology", code == 6401) and sub.topo == (gw.pk, gw.dn):
                        sub.topo = None
            return push_ext_error(cloud, cloud.broker, gw, code,
                                  a.get("message") or ALINK_MSG.get(code, "error"),
                                  (sub.pk, sub.dn) if sub else None, on)
        return cloud.broker.call(run)

    def cmd_topo_change(a):
        """Sends thing/topo/change (gateway.md §G6) and changes nothing: status (0 added,
        1 deleted, 2 enabled, 8 disabled, or those names), subList [{productKey, deviceName}]
        or one productKey/deviceName; the gateway gwProductKey/gwDeviceName or the sub-device's."""
        def run():
            st = a.get("status", 0)
            st = TOPO_CHANGE[st] if st in TOPO_CHANGE else int(st)
            with cloud.lock:
                sub = cloud.device(a.get("productKey"), a.get("deviceName"))
                gw = gateway_of(a, sub)
            subs = [(x["productKey"], x["deviceName"]) for x in a["subList"]] \
                if a.get("subList") is not None else [(a.get("productKey"), a.get("deviceName"))]
            return push_topo_change(cloud, cloud.broker, gw, st, subs, a.get("id"))
        return cloud.broker.call(run)

    return cloudbase.make_control_handler(cloud, dict(
        cmd.common(), set_product=cmd_set_product, reset_device=cmd_reset_device,
        properties=cmd.listing("properties"), events=cmd.listing("events"),
        posts=cmd.listing("posts"), replies=cmd.listing("replies"),
        property_set=cmd.dl("property_set"), service_call=cmd.dl("service"),
        rrpc=cmd.dl("rrpc"), rrpc_ext=cmd.dl("rrpc_ext"),
        add_gateway=cmd_add_gateway, topology=cmd_topology, subdevices=cmd_subdevices,
        disable_subdev=lifecycle("disable"), enable_subdev=lifecycle("enable"),
        delete_subdev=lifecycle("delete"), ext_error=cmd_ext_error, topo_change=cmd_topo_change))


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
