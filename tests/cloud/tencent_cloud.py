#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A test double of Tencent Cloud IoT Explorer on 127.0.0.1 (stdlib only).

One process serves:
  * HTTPS dynamic registration: POST /device/register (current API, X-TC-* signed headers) and
    POST /register/dev (legacy API); replies carry an AES-128-CBC encrypted payload
    (docs/protocols/tencent.md §2.1, §2.2)
  * plain HTTP, the target of the "redirect to http://" failure (logged as "insecure_request")
  * MQTT 3.1.1 on plain TCP and on TLS, enforcing the CONNECT username/password rule
    (docs/protocols/tencent.md §1.2), certificate logins (docs/protocols/tencent.md §1.3), the
    platform limits (docs/protocols/tencent.md §1.7), a topic ACL, the $sys time service
    (docs/protocols/tencent.md §1.8) and the data-template protocol on $thing/...
    (docs/protocols/tencent.md §3)
  * gateways and their sub-devices ($gateway/operation, bind, online, the sub-devices'
    $thing traffic over the gateway's connection; docs/protocols/gateway.md §G15-§G18),
    in tcgateway.py
  * a JSON control API on plain HTTP (127.0.0.1) for tests; see TENCENT.md

Start: python3 tencent_cloud.py --dir DIR --cert server.crt --key server.key [--products FILE]
Once every listener is up, DIR/ports.json is written (temporary name, then renamed):
  {"https": P, "http": P, "mqtt": P, "mqtts": P, "control": P, "pid": PID}
Every event is appended to DIR/events.jsonl as one JSON object per line (flushed per line).

Protocol facts come only from docs/protocols/tencent.md; decisions where it is silent or
contradictory are marked "DECISION" below and listed in TENCENT.md.
"""
import base64
import binascii
import collections
import hashlib
import hmac
import json
import os
import re
import secrets
import ssl
import subprocess
import sys
import time
import urllib.parse

import cloudbase
import tcgateway
from cloudbase import CtlError, now_ms, rand_alnum, topic_matches, valid_filter


# --------------------------------------------------------------------------------------------
# AES-128 encryption (FIPS-197), table based. The stdlib has no AES; the dynamic registration
# reply needs AES-128-CBC (docs/protocols/tencent.md §2.1). Only the forward cipher is needed: the cloud never decrypts.


def _xtime(a):
    a <<= 1
    return (a ^ 0x11B) if a & 0x100 else a


def _make_tables():
    # exp/log tables of GF(2^8) with generator 3, then S(x) = affine(x^-1) (FIPS-197 §5.1.1)
    exp, log = [0] * 255, [0] * 256
    e = 1
    for i in range(255):
        exp[i], log[e] = e, i
        e ^= _xtime(e)
    sbox = []
    for x in range(256):
        b = 0 if x == 0 else exp[(255 - log[x]) % 255]
        r = b
        for k in range(1, 5):
            r ^= ((b << k) | (b >> (8 - k))) & 0xFF
        sbox.append(r ^ 0x63)
    # Te0[x] is the MixColumns column (2s, s, s, 3s) of s = S(x); Te1..Te3 are its byte rotations
    te = [[], [], [], []]
    for x in range(256):
        s = sbox[x]
        s2 = _xtime(s)
        w = (s2 << 24) | (s << 16) | (s << 8) | (s2 ^ s)
        for i in range(4):
            te[i].append(((w >> (8 * i)) | (w << (32 - 8 * i))) & 0xFFFFFFFF)
    return sbox, te


SBOX, (TE0, TE1, TE2, TE3) = _make_tables()


def aes128_expand_key(key):
    if len(key) != 16:
        raise ValueError("AES-128 needs a 16-byte key")
    w = [int.from_bytes(key[i:i + 4], "big") for i in range(0, 16, 4)]
    rcon = 1
    for i in range(4, 44):
        t = w[i - 1]
        if i % 4 == 0:
            t = ((t << 8) | (t >> 24)) & 0xFFFFFFFF
            t = (SBOX[t >> 24] << 24) | (SBOX[(t >> 16) & 255] << 16) | \
                (SBOX[(t >> 8) & 255] << 8) | SBOX[t & 255]
            t ^= rcon << 24
            rcon = _xtime(rcon)
        w.append(w[i - 4] ^ t)
    return w


def aes128_encrypt_block(rk, block):
    s = [int.from_bytes(block[i:i + 4], "big") ^ rk[i // 4] for i in range(0, 16, 4)]
    for r in range(1, 10):
        s = [TE0[s[j] >> 24] ^ TE1[(s[(j + 1) % 4] >> 16) & 255] ^
             TE2[(s[(j + 2) % 4] >> 8) & 255] ^ TE3[s[(j + 3) % 4] & 255] ^ rk[4 * r + j]
             for j in range(4)]
    out = b""
    for j in range(4):
        w = (SBOX[s[j] >> 24] << 24) | (SBOX[(s[(j + 1) % 4] >> 16) & 255] << 16) | \
            (SBOX[(s[(j + 2) % 4] >> 8) & 255] << 8) | SBOX[s[(j + 3) % 4] & 255]
        out += (w ^ rk[40 + j]).to_bytes(4, "big")
    return out


def aes128_cbc_encrypt(key, iv, data):
    """data must be a multiple of 16 bytes (the caller pads)."""
    if len(data) % 16 or len(iv) != 16:
        raise ValueError("CBC needs whole blocks and a 16-byte IV")
    rk = aes128_expand_key(key)
    prev, out = iv, bytearray()
    for i in range(0, len(data), 16):
        prev = aes128_encrypt_block(rk, bytes(a ^ b for a, b in zip(data[i:i + 16], prev)))
        out += prev
    return bytes(out)


def zero_pad(data):
    # DECISION: zero padding (docs/protocols/tencent.md §2.1) up to the next multiple of 16; nothing is added when the
    # length already is one (the examples of docs/protocols/tencent.md §2.1, §2.3 are 53 bytes + 11 NULs).
    return data + b"\0" * (-len(data) % 16)


DYNREG_IV = b"0" * 16   # docs/protocols/tencent.md §2.1: IV = 16 x ASCII '0'


def dynreg_encrypt(product_secret, plaintext):
    """docs/protocols/tencent.md §2.1: key = first 16 bytes of ProductSecret (ASCII), IV '0'x16, zero padding. Base64."""
    ct = aes128_cbc_encrypt(product_secret.encode()[:16], DYNREG_IV, zero_pad(plaintext))
    return base64.b64encode(ct).decode()


# --------------------------------------------------------------------------------------------
# Signing (docs/protocols/tencent.md §1.2, §2.1, §2.2)

HASHES = {"hmacsha256": hashlib.sha256, "hmacsha1": hashlib.sha1}
CANONICAL_HOST = "ap-guangzhou.gateway.tencentdevices.com"


def mqtt_username(pid, dn, sdkappid, connid, expiry):
    """docs/protocols/tencent.md §1.2: ${ProductId}${DeviceName};${sdkappid};${connid};${expiry}"""
    return "%s%s;%s;%s;%s" % (pid, dn, sdkappid, connid, expiry)


def mqtt_password(psk, username, alg="hmacsha256"):
    """docs/protocols/tencent.md §1.2: hex_lower(HMAC_alg(base64_decode(psk), username)) + ';' + alg"""
    key = base64.b64decode(psk)
    return hmac.new(key, username.encode(), HASHES[alg]).hexdigest() + ";" + alg


def dynreg_string_to_sign(host, uri, alg, timestamp, nonce, body):
    """docs/protocols/tencent.md §2.1: 8 fields joined by \\n, the 4th (query) empty; the body hash uses the algorithm's
    own hash (SHA-256 for hmacsha256, SHA-1 for hmacsha1)."""
    h = HASHES[alg.lower()](body).hexdigest()
    return "\n".join(["POST", host, uri, "", alg, str(timestamp), str(nonce), h])


def dynreg_signature(product_secret, string_to_sign, alg):
    """docs/protocols/tencent.md §2.1: Base64(raw HMAC), key = ProductSecret as ASCII bytes."""
    return base64.b64encode(hmac.new(product_secret.encode(), string_to_sign.encode(),
                                     HASHES[alg.lower()]).digest()).decode()


def legacy_sign_source(dn, nonce, pid, timestamp):
    """docs/protocols/tencent.md §2.2: keys in ASCII order."""
    return "deviceName=%s&nonce=%s&productId=%s&timestamp=%s" % (dn, nonce, pid, timestamp)


def legacy_signature(product_secret, source):
    """docs/protocols/tencent.md §2.2: Base64 of the lower-case hex string of HMAC-SHA1 (not of the raw digest)."""
    hx = hmac.new(product_secret.encode(), source.encode(), hashlib.sha1).hexdigest()
    return base64.b64encode(hx.encode()).decode()


# --canary TOKEN (the integration tests' canary mode, tests/lib/fixture.h): every PSK
# the cloud issues contains the token, so that a test can search the daemon's output and files
# for it.
CANARY = None


def new_psk():
    # docs/protocols/tencent.md §1.2: a 24-character PSK is base64 of 16 bytes
    if CANARY:
        # "ps", the canary, random letters and digits to a multiple of 4 characters and at
        # least 24: base64 without padding, so every character is data (at most 48 bytes)
        s = "ps" + CANARY
        s += rand_alnum(max(24 - len(s), -len(s) % 4))
        s += rand_alnum(-len(s) % 4)
        return s
    return base64.b64encode(secrets.token_bytes(16)).decode()


# --------------------------------------------------------------------------------------------
# Cloud state

# DECISION: docs/protocols/tencent.md §2.1 documents no error codes for the current API, only Response.Error.Message.
# The Codes below are fixture-made (the "Fixture." prefix says so); clients must read Message.
REG2_ERRORS = {
    "bad_params": "Fixture.InvalidParameter",
    "bad_sign": "Fixture.SignatureFailure",
    "expired": "Fixture.TimestampExpired",
    "no_product": "Fixture.ProductNotExist",
    "dynreg_off": "Fixture.DynamicRegistrationDisabled",
    "no_device": "Fixture.DeviceNotExist",
    "activated": "Fixture.DeviceAlreadyActivated",
    "not_found": "Fixture.NotFound",
}
# docs/protocols/tencent.md §2.2: 1010 "Check signature failed" is documented (#7422); the 94xx codes are fixture-made.
# docs/protocols/tencent.md §2.2: the legacy request's Accept header as the C SDK sends it
LEGACY_ACCEPT = "text/xml,application/json;*/*"

REG1_ERRORS = {
    "bad_params": 9400, "bad_sign": 1010, "expired": 9401, "no_product": 9404,
    "dynreg_off": 9403, "no_device": 9405, "activated": 9409, "not_found": 9406,
}

# docs/protocols/tencent.md §3.1: 406 for reports that do not match the data template; 0 = success.
# DECISION: 400 (malformed envelope) and 404 (clear_control with an unknown token) are fixture-made.
PROP_TYPES = ("int", "float", "bool", "enum", "string", "timestamp")
EVENT_TYPES = ("info", "alert", "fault", "fatal")   # docs/protocols/tencent.md §3.2


SETTING_CHOICES = {"connect_rate_action": ("close", "refuse"),
                   "keepalive_over_max": ("refuse", "clamp"),
                   "oversize_action": ("disconnect", "drop"), "acl_action": ("disconnect", "drop"),
                   "client_cert": ("optional", "required"),
                   "subdev_offline_subs": ("drop", "keep")}


class Device:
    def __init__(self, pid, dn, precreated=True, psk=None):
        self.pid, self.dn = pid, dn
        self.precreated = precreated
        self.psk = psk
        self.psk_source = "preset" if psk else None
        self.cert = None              # {"clientCert", "clientKey"} for certificate products
        self.activated = False
        self.register_count = 0
        self.connect_attempts = 0
        self.connect_count = 0
        self.last_connack = None
        self.last_connect = None
        self.last_connect_mono = None  # monotonic time of the last answered CONNECT (docs/protocols/tencent.md §1.7)
        self.connids = []
        self.sessions = []
        self.reported = {}             # property -> last accepted value (get_status "report")
        self.properties = []
        self.reports = []
        self.events = []
        self.infos = []
        self.replies = []
        self.violations = []           # what the thing model refused (cloudbase.Cloud.violations)
        self.downlinks = {}            # clientToken -> record
        self.pending_controls = []     # controls issued while offline (docs/protocols/tencent.md §3.1 get_status)
        self.status_tokens = {}        # get_status clientToken -> control tokens it returned
        self.inject = []
        self.rate = collections.deque()
        self.enabled = True            # set_device enabled:false (tcgateway)
        # as a sub-device (tcgateway.py, docs/protocols/gateway.md §G16)
        self.gateway = None            # the gateway Device it is bound to
        self.bound_at = None
        self.sub_conn = None           # the gateway connection it is online through
        self.bind_attempts = 0         # bind requests naming it (that passed the envelope checks)
        self.bind_count = 0            # bindings made (bind result 0, console binds)
        self.unbind_count = 0
        self.online_count = 0          # online with result 0
        self.offline_count = 0
        self.gw_results = {}           # op -> the last result
        self.gw_inject = []            # inject_gateway
        # as a gateway
        self.subdevs = {}              # (pid, dn) -> sub-device Device, in bind order
        self.pushes = []               # change / search_devices / unbind_all the cloud sent
        self.acks = []                 # the gateway's acks of them

    def summary(self):
        return {
            "productId": self.pid, "deviceName": self.dn, "precreated": self.precreated,
            "registered": self.psk is not None or self.cert is not None, "psk": self.psk,
            "pskSource": self.psk_source, "hasCert": self.cert is not None,
            "activated": self.activated, "registerCount": self.register_count,
            "connected": len(self.sessions), "connectAttempts": self.connect_attempts,
            "connectCount": self.connect_count, "lastConnack": self.last_connack,
            "lastConnect": self.last_connect, "reported": dict(self.reported),
            "pendingControls": [dict(c) for c in self.pending_controls],
            "properties": len(self.properties), "events": len(self.events),
            "replies": len(self.replies), "violations": len(self.violations),
            "subscriptions": sorted({f for c in self.sessions for f in c.subs} |
                                    {f for f in (self.sub_conn.subs if self.sub_conn else ())
                                     if f.split("/")[3:] == [self.pid, self.dn]}),
            "enabled": self.enabled,
            "boundTo": {"productId": self.gateway.pid, "deviceName": self.gateway.dn}
            if self.gateway else None,
            "subOnline": self.sub_conn is not None, "bindAttempts": self.bind_attempts,
            "bindCount": self.bind_count, "unbindCount": self.unbind_count,
            "onlineCount": self.online_count, "offlineCount": self.offline_count,
            "gatewayResults": dict(self.gw_results),
            "subDevices": [[d.pid, d.dn] for d in self.subdevs.values()],
        }


class Product:
    def __init__(self, pid, secret):
        self.pid, self.secret = pid, secret
        self.dynreg = True
        self.register_type = 1       # docs/protocols/tencent.md §2.1: 1 = pre-created devices only, 2 = auto-create
        self.auth = "psk"            # "psk" (encryptionType 2) or "cert" (encryptionType 1)
        self.template = None         # {"properties": {id: spec}, "events": {id: spec}}
        self.devices = {}
        self.gateway = False         # a gateway-type product (docs/protocols/gateway.md §G1)
        self.sub_products = set()    # the sub-device products associated with it (§G1)

    def summary(self):
        return {"productId": self.pid, "dynamicRegistration": self.dynreg,
                "registerType": self.register_type, "authType": self.auth,
                "template": self.template, "devices": sorted(self.devices),
                "gateway": self.gateway, "subProducts": sorted(self.sub_products)}


def norm_spec(spec, where):
    """A property spec is "float" or {"type": "float", "min": 0, "max": 100, "enum": [...]}."""
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict) or spec.get("type") not in PROP_TYPES:
        raise CtlError("%s: type must be one of %s" % (where, ", ".join(PROP_TYPES)))
    return dict(spec)


def norm_template(t):
    if t is None:
        return None
    if not isinstance(t, dict):
        raise CtlError("template must be an object")
    props = {k: norm_spec(v, "property %s" % k) for k, v in (t.get("properties") or {}).items()}
    events = {}
    for k, v in (t.get("events") or {}).items():
        v = v or {}
        if v.get("type") is not None and v["type"] not in EVENT_TYPES:
            raise CtlError("event %s: type must be one of %s" % (k, ", ".join(EVENT_TYPES)))
        events[k] = {"type": v.get("type"),
                     "params": {p: norm_spec(s, "event %s param %s" % (k, p))
                                for p, s in (v.get("params") or {}).items()}}
    return {"properties": props, "events": events}


class Cloud(cloudbase.Cloud):
    ID_KEY, ID_ATTR, REPLY_KEY, PLATFORM = "productId", "pid", "clientToken", "tencent"
    HTTPS_FAULT_MODES = {"none", "http500", "http503", "code_error", "truncated", "short_body",
                         "wrong_types", "no_payload", "bad_payload", "not_json", "huge", "drip",
                         "redirect_http", "reset", "hang"}
    INJECT_KINDS = ("report", "event", "any")
    INJECT_CODE = 500
    LIST_FILTERS = ("name", "method", "clientToken", "eventId", "kind", "code", "identifier",
                    "check")

    def __init__(self, directory):
        super().__init__(directory, {
            "clock_offset": 0.0,          # seconds added to this host's clock (expiry, $sys time)
            "connect_interval": 5.0,      # docs/protocols/tencent.md §1.7: one CONNECT per 5 s per device; 0 = off
            "connect_rate_action": "close",   # or "refuse" (CONNACK 3)
            "keepalive_over_max": "refuse",   # or "clamp" (to 900)
            "qps_limit": 30,              # docs/protocols/tencent.md §1.7: upstream messages per device per second; 0 = off
            "max_payload": 16384,         # docs/protocols/tencent.md §1.7: 16 KB
            "oversize_action": "disconnect",  # or "drop"
            "acl_action": "disconnect",   # or "drop"
            "dynreg_max_skew": 0,         # seconds; 0 = X-TC-Timestamp not checked (docs/protocols/tencent.md §2.1)
            "connect_timeout": 10.0,
            # docs/protocols/tencent.md §1.3: the TLS listener asks for a client certificate ("optional": a key device
            # logs in without one) or insists on one ("required": no certificate, no handshake)
            "client_cert": "optional",
            # gateways (tcgateway.py, docs/protocols/gateway.md §G16-§G18)
            "bind_max_skew": 300.0,       # s between a bind's timestamp and the cloud's clock (-805)
            "max_subdevices": 1500,       # docs/protocols/gateway.md §G18: per gateway
            "subdev_offline_subs": "drop",   # or "keep": a sub-device's subscriptions on offline
        })
        self.mqtts_ctx = None
        self.devca = None
        self.next_token = 0
        self.push_seq = 0

    def now(self):
        """The cloud's clock: this host's time plus settings.clock_offset (seconds)."""
        return time.time() + float(self.settings["clock_offset"])

    def health(self):
        return dict(super().health(), now=self.now())

    def setting_value(self, name, value):
        v = type(self.settings[name])(value)
        if name in SETTING_CHOICES and v not in SETTING_CHOICES[name]:
            raise CtlError("%s must be one of %s" % (name, ", ".join(SETTING_CHOICES[name])))
        return v

    def settings_changed(self):
        self.apply_tls_settings()

    def downlink(self, a, kind):
        return downlink(self, self.broker, a, kind)

    def new_token(self, prefix):
        with self.lock:
            self.next_token += 1
            return "%s-%d" % (prefix, self.next_token)

    # ---- products / devices
    def add_product(self, a):
        pid, sec = a.get("productId"), a.get("productSecret")
        if not pid or not isinstance(pid, str) or not isinstance(sec, str):
            raise CtlError("productId and productSecret required")
        if len(sec) < 16:   # docs/protocols/tencent.md §2.1: the AES key is the first 16 bytes of ProductSecret
            raise CtlError("productSecret must have at least 16 characters")
        with self.lock:
            p = self.products.get(pid)
            if p is None:
                p = self.products[pid] = Product(pid, sec)
            p.secret = sec
            self.set_product_flags(p, a)
            for d in a.get("devices", []):
                self.add_device(dict(d, productId=pid) if isinstance(d, dict)
                                else {"productId": pid, "deviceName": d})
        if a.get("thingModel"):
            self.load_thing_model("%s=%s" % (pid, a["thingModel"]))
        self.log("ctl_product", **{k: v for k, v in p.summary().items() if k != "template"})
        return p.summary()

    @staticmethod
    def set_product_flags(p, a):
        if "dynamicRegistration" in a:
            p.dynreg = bool(a["dynamicRegistration"])
        if "registerType" in a:
            if int(a["registerType"]) not in (1, 2):
                raise CtlError("registerType must be 1 or 2")
            p.register_type = int(a["registerType"])
        if "authType" in a:
            if a["authType"] not in ("psk", "cert"):
                raise CtlError("authType must be psk or cert")
            p.auth = a["authType"]
        if "template" in a:
            p.template = norm_template(a["template"])
        if "gateway" in a:
            p.gateway = bool(a["gateway"])
        if "subProducts" in a:
            if not isinstance(a["subProducts"], list) or \
                    not all(isinstance(x, str) and x for x in a["subProducts"]):
                raise CtlError("subProducts must be an array of ProductIds")
            p.sub_products = set(a["subProducts"])

    def add_device(self, a):
        pid, dn = a.get("productId"), a.get("deviceName")
        with self.lock:
            p = self.products.get(pid)
            if p is None:
                raise CtlError("unknown product %r" % pid)
            if not dn or not isinstance(dn, str):
                raise CtlError("deviceName required")
            d = p.devices.get(dn)
            if d is None:
                d = p.devices[dn] = Device(pid, dn)
            d.precreated = True
            if a.get("psk"):
                try:
                    base64.b64decode(a["psk"], validate=True)
                except binascii.Error:
                    raise CtlError("psk must be base64")
                d.psk, d.psk_source = a["psk"], "preset"
            if a.get("cert"):
                # a certificate the test made (PEM text): bind with authtype certificate
                # keys on its MD5 (docs/protocols/gateway.md §G17)
                if not isinstance(a["cert"], str) or "-----BEGIN CERTIFICATE-----" not in a["cert"]:
                    raise CtlError("cert must be PEM text")
                d.cert = {"clientCert": a["cert"], "clientKey": None}
        if a.get("issueCert"):
            self.issue_cert(d)
        return d.summary()

    def device(self, pid, dn, create=False):
        p = self.products.get(pid)
        if p is None:
            return None
        d = p.devices.get(dn)
        if d is None and create:
            d = p.devices[dn] = Device(pid, dn, precreated=False)
        return d

    def need_device(self, a):
        d = self.device(a.get("productId"), a.get("deviceName"))
        if d is None:
            raise CtlError("unknown device %r/%r" % (a.get("productId"), a.get("deviceName")))
        return d

    def resolve(self, ident):
        """docs/protocols/tencent.md §1.2: the clientId is ProductId+DeviceName with no separator. DECISION: the cloud
        splits it by trying every known ProductId as a prefix (longest first)."""
        with self.lock:
            for pid in sorted(self.products, key=len, reverse=True):
                if ident.startswith(pid) and len(ident) > len(pid):
                    d = self.products[pid].devices.get(ident[len(pid):])
                    if d is not None:
                        return self.products[pid], d
        return None, None

    # ---- certificates (docs/protocols/tencent.md §1.3, §2.1 encryptionType 1), made with the openssl CLI
    def ensure_devca(self):
        with self.lock:
            if self.devca:
                return self.devca
            crt, key = os.path.join(self.dir, "devca.crt"), os.path.join(self.dir, "devca.key")
            self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                         "-nodes", "-days", "3650", "-keyout", key, "-out", crt,
                         "-subj", "/CN=tencent test cloud device CA",
                         "-addext", "basicConstraints=critical,CA:TRUE",
                         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
            if self.mqtts_ctx is not None:
                self.mqtts_ctx.load_verify_locations(crt)
            self.devca = (crt, key)
            return self.devca

    def apply_tls_settings(self):
        """Takes effect for the next TLS connections of the MQTT listener."""
        if self.mqtts_ctx is not None:
            self.mqtts_ctx.verify_mode = ssl.CERT_REQUIRED \
                if self.settings["client_cert"] == "required" else ssl.CERT_OPTIONAL

    def trust_ca(self, pem):
        """A client CA the test made: certificates it issues log in like the cloud's own
        (the CN names the device, DECISION 8)."""
        if not isinstance(pem, str) or "-----BEGIN CERTIFICATE-----" not in pem:
            raise CtlError("pem must be a PEM certificate")
        try:
            self.mqtts_ctx.load_verify_locations(cadata=pem)
        except (ssl.SSLError, ValueError) as e:
            raise CtlError("not a usable CA certificate: %s" % e)

    def openssl(self, *args):
        r = subprocess.run(("openssl",) + args, cwd=self.dir, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        if r.returncode:
            raise CtlError("openssl %s failed: %s" % (args[0], r.stderr.decode(errors="replace")))
        return r.stdout

    def issue_cert(self, d):
        """DECISION: the certificate's CN is ${ProductId}${DeviceName}; MQTT logins with a client
        certificate match that CN against the username's first field."""
        crt, key = self.ensure_devca()
        base = os.path.join(self.dir, ".issue-%s" % secrets.token_hex(4))
        try:
            self.openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                         "-keyout", base + ".key", "-out", base + ".csr",
                         "-subj", "/CN=%s%s" % (d.pid, d.dn))
            with open(base + ".ext", "w") as f:
                f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
            self.openssl("x509", "-req", "-in", base + ".csr", "-CA", crt, "-CAkey", key,
                         "-set_serial", str(secrets.randbelow(2 ** 63)), "-days", "825",
                         "-sha256", "-extfile", base + ".ext", "-out", base + ".crt")
            with open(base + ".crt") as f:
                cert_pem = f.read()
            with open(base + ".key") as f:
                key_pem = f.read()
        finally:
            for ext in (".key", ".csr", ".ext", ".crt"):
                try:
                    os.unlink(base + ext)
                except OSError:
                    pass
        with self.lock:
            d.cert = {"clientCert": cert_pem, "clientKey": key_pem}
        return d.cert

    # ---- dynamic registration (docs/protocols/tencent.md §2)
    def register(self, api, pid, dn):
        """Common semantics of docs/protocols/tencent.md §2.1 (both APIs). Returns (error key, None) or (None, plaintext)."""
        with self.lock:
            p = self.products.get(pid)
            if p is None:
                return "no_product", None
            if not p.dynreg:
                return "dynreg_off", None
            d = p.devices.get(dn)
            if d is None and p.register_type == 2:
                d = self.device(pid, dn, create=True)
            if d is None or (not d.precreated and p.register_type != 2):
                return "no_device", None
            if d.activated:          # docs/protocols/tencent.md §2.1: refused once the device has connected over MQTT
                return "activated", None
            d.register_count += 1
            if p.auth == "psk":
                d.psk, d.psk_source = new_psk(), api   # docs/protocols/tencent.md §2.1: re-registering issues a NEW secret
                obj = {"encryptionType": 2, "psk": d.psk}
        if p.auth == "cert":
            c = self.issue_cert(d)
            obj = {"encryptionType": 1, "clientCert": c["clientCert"], "clientKey": c["clientKey"]}
        return None, json.dumps(obj, separators=(",", ":")).encode()

# --------------------------------------------------------------------------------------------
# HTTPS dynamic registration server and the plain-HTTP redirect target

def split_host(host):
    """'localhost:8443' -> 'localhost'; '[::1]:8443' -> '::1'."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    h, colon, port = host.rpartition(":")
    return h if colon and port.isdigit() else host


def make_https_handler(cloud):
    class Handler(cloudbase.RegistrationHandler):
        server_version = "tencent-test-cloud"

        def error(self, api, key, message, request_id):
            if api == "v2":
                self.send_json(200, {"Response": {"Error": {"Code": REG2_ERRORS[key],
                                                            "Message": message},
                                                  "RequestId": request_id}})
            else:
                self.send_json(200, {"code": REG1_ERRORS[key], "message": message,
                                     "requestId": request_id})

        def do_GET(self):
            cloud.log("https_request", method="GET", path=self.path, status=405)
            self.send_json(405, {"Response": {"Error": {"Code": "Fixture.MethodNotAllowed",
                                                        "Message": "use POST"}}})

        def do_POST(self):
            path = urllib.parse.urlsplit(self.path).path
            n = self.headers.get("Content-Length")
            if n is None or not n.isdigit() or int(n) > 8192:
                cloud.log("https_request", method="POST", path=self.path, status=411,
                          error="missing or oversized Content-Length")
                self.send_json(411, {"Response": {"Error": {"Code": "Fixture.LengthRequired",
                                                            "Message": "length required"}}})
                self.close_connection = True
                return
            raw = self.rfile.read(int(n))
            rid = secrets.token_hex(16)
            rec = {"method": "POST", "path": self.path, "body": raw.decode("utf-8", "replace"),
                   "contentType": self.headers.get("Content-Type"), "requestId": rid,
                   "headers": dict(self.headers)}
            api = {"/device/register": "v2", "/register/dev": "v1"}.get(path)
            if api is None:
                cloud.log("https_request", status=404, **rec)
                self.send_json(404, {"Response": {"Error": {"Code": REG2_ERRORS["not_found"],
                                                            "Message": "no such path"},
                                                  "RequestId": rid}})
                return
            fault = cloud.take_https_fault()
            if fault:
                cloud.log("https_request", api=api, injected=fault["mode"], **rec)
                return self.inject(api, fault, raw, rid)
            if api == "v2":
                err, msg, pid, dn, plain, info = self.check_v2(raw)
            else:
                err, msg, pid, dn, plain, info = self.check_v1(raw)
            cloud.log("https_register", api=api, ok=err is None, error=err, message=msg,
                      productId=pid, deviceName=dn, **info, **rec)
            if err is not None:
                return self.error(api, err, msg, rid)
            p = cloud.products[pid]
            payload = dynreg_encrypt(p.secret, plain)
            if api == "v2":
                self.send_json(200, {"Response": {"Len": len(plain), "Payload": payload,
                                                  "RequestId": rid}})
            else:
                # DECISION: docs/protocols/tencent.md §2.2 shows {"code":0,…,"payload"}; the elided fields are
                # message/len/requestId here, len as in docs/protocols/tencent.md §2.1.
                self.send_json(200, {"code": 0, "message": "success", "len": len(plain),
                                     "payload": payload, "requestId": rid})

        def check_v2(self, raw):
            """docs/protocols/tencent.md §2.1. Returns (error key, message, pid, dn, plaintext, info)."""
            info = {}
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/json":   # doc: "只支持 application/json"
                return "bad_params", "Content-Type must be application/json", None, None, None, info
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                body = None
            if not isinstance(body, dict) or not isinstance(body.get("ProductId"), str) \
                    or not isinstance(body.get("DeviceName"), str) \
                    or not body["ProductId"] or not body["DeviceName"]:
                return "bad_params", "body must be {\"ProductId\":…,\"DeviceName\":…}", \
                    None, None, None, info
            pid, dn = body["ProductId"], body["DeviceName"]
            if "clientCert" in body:
                info["clientCertIgnored"] = True   # DECISION: private-cert dynreg not supported
            alg = self.headers.get("X-TC-Algorithm")
            ts = self.headers.get("X-TC-Timestamp")
            nonce = self.headers.get("X-TC-Nonce")
            sig = self.headers.get("X-TC-Signature")
            info.update(algorithm=alg, timestamp=ts, nonce=nonce)
            missing = [h for h, v in (("X-TC-Algorithm", alg), ("X-TC-Timestamp", ts),
                                      ("X-TC-Nonce", nonce), ("X-TC-Signature", sig)) if not v]
            if missing:
                return "bad_params", "missing header " + ",".join(missing), pid, dn, None, info
            # DECISION: the algorithm is matched case-insensitively but signed as sent (docs/protocols/tencent.md §2.1:
            # "keep header and StringToSign identical").
            if alg.lower() not in HASHES:
                return "bad_params", "X-TC-Algorithm must be hmacsha256 or hmacsha1", \
                    pid, dn, None, info
            if not ts.isdigit() or not nonce.isdigit():
                return "bad_params", "X-TC-Timestamp and X-TC-Nonce must be integers", \
                    pid, dn, None, info
            with cloud.lock:
                p = cloud.products.get(pid)
                skew = float(cloud.settings["dynreg_max_skew"])
            if p is None:
                return "no_product", "product %s does not exist" % pid, pid, dn, None, info
            try:
                got = base64.b64decode(sig, validate=True)
            except binascii.Error:
                got = None
            if re.fullmatch(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}", sig):
                info["signatureLooksHex"] = True
            # docs/protocols/tencent.md §2.1 "Sign the Host you actually send"; JAVA signs the canonical host.
            # DECISION: the Host header without port, the Host header as sent, or the
            # canonical name all verify; signedHost tells which one did.
            host = self.headers.get("Host") or ""
            for form, h in (("hostname", split_host(host)), ("host_header", host),
                            ("canonical", CANONICAL_HOST)):
                sts = dynreg_string_to_sign(h, "/device/register", alg, ts, nonce, raw)
                want = base64.b64decode(dynreg_signature(p.secret, sts, alg))
                if got is not None and hmac.compare_digest(want, got):
                    info["signedHost"] = form
                    break
            else:
                return "bad_sign", "signature check failed", pid, dn, None, info
            if skew and abs(cloud.now() - int(ts)) > skew:
                return "expired", "X-TC-Timestamp is more than %gs off" % skew, pid, dn, None, info
            err, plain = cloud.register("https", pid, dn)
            return err, err and "registration refused: %s" % err, pid, dn, plain, info

        def check_v1(self, raw):
            """docs/protocols/tencent.md §2.2. The Content-Type is not checked (the C SDK sends a form type with JSON)."""
            info = {}
            # DECISION: the Accept header must be the C SDK's (docs/protocols/tencent.md §2.2), so that a client
            # that drifts from the SDK's request is noticed; what the platform does without it is unverified.
            accept = self.headers.get("Accept")
            info["accept"] = accept
            if accept != LEGACY_ACCEPT:
                return "bad_params", "Accept must be %s as the C SDK sends it, not %r" % (
                    LEGACY_ACCEPT, accept), None, None, None, info
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                body = None
            ok = isinstance(body, dict)
            if ok:
                pid, dn = body.get("productId"), body.get("deviceName")
                nonce, ts, sig = body.get("nonce"), body.get("timestamp"), body.get("signature")
                ints = all(isinstance(x, int) and not isinstance(x, bool) for x in (nonce, ts))
                ok = ints and all(isinstance(x, str) and x for x in (pid, dn, sig))
            if not ok:
                return "bad_params", "body must be JSON with deviceName, nonce (int), " \
                    "productId, timestamp (int), signature", None, None, None, info
            info.update(nonce=nonce, timestamp=ts)
            with cloud.lock:
                p = cloud.products.get(pid)
                skew = float(cloud.settings["dynreg_max_skew"])
            if p is None:
                return "no_product", "product %s does not exist" % pid, pid, dn, None, info
            want = legacy_signature(p.secret, legacy_sign_source(dn, nonce, pid, ts))
            if not hmac.compare_digest(want.encode(), sig.encode()):
                # the mistake of #7422: Base64 of the raw digest instead of the hex string
                info["rawDigestForm"] = sig == base64.b64encode(
                    binascii.unhexlify(base64.b64decode(want))).decode()
                return "bad_sign", "Check signature failed", pid, dn, None, info
            if skew and abs(cloud.now() - ts) > skew:
                return "expired", "timestamp is more than %gs off" % skew, pid, dn, None, info
            err, plain = cloud.register("https-legacy", pid, dn)
            return err, err and "registration refused: %s" % err, pid, dn, plain, info

        def inject(self, api, f, raw, rid):
            mode = f["mode"]
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                body = {}
            if not isinstance(body, dict):
                body = {}
            pid = body.get("ProductId") or body.get("productId") or ""
            with cloud.lock:
                p = cloud.products.get(pid)
                secret = p.secret if p else "0" * 16
            plain = json.dumps({"encryptionType": 2, "psk": base64.b64encode(
                b"INJECTED-NOT-USE").decode()}, separators=(",", ":")).encode()
            if api == "v2":
                ok_body = {"Response": {"Len": len(plain), "Payload": dynreg_encrypt(secret, plain),
                                        "RequestId": rid}}
            else:
                ok_body = {"code": 0, "message": "success", "len": len(plain),
                           "payload": dynreg_encrypt(secret, plain), "requestId": rid}
            ok_raw = json.dumps(ok_body, separators=(",", ":")).encode()
            if mode == "http500":
                self.send_json(500, {"Response": {"Error": {"Code": "Fixture.Injected",
                                                            "Message": "internal error (injected)"}}})
            elif mode == "http503":
                self.send_json(503, {"Response": {"Error": {"Code": "Fixture.Injected",
                                                            "Message": "unavailable (injected)"}}},
                               [("Retry-After", str(f.get("retry_after", 5)))])
            elif mode == "code_error":
                if api == "v2":
                    self.send_json(200, {"Response": {"Error": {
                        "Code": str(f.get("code", "Fixture.Injected")),
                        "Message": "injected error"}, "RequestId": rid}})
                else:
                    self.send_json(200, {"code": int(f.get("code", 1010)),
                                         "message": "injected error", "requestId": rid})
            elif mode == "wrong_types":
                if api == "v2":
                    self.send_json(200, {"Response": {"Len": str(len(plain)), "Payload": 12345,
                                                      "RequestId": rid}})
                else:
                    self.send_json(200, {"code": "0", "len": str(len(plain)), "payload": 12345})
            elif mode == "no_payload":
                self.send_json(200, {"Response": {"RequestId": rid}} if api == "v2"
                               else {"code": 0, "message": "success"})
            elif mode == "bad_payload":
                # decrypts (with the right key) to bytes that are not JSON
                junk = base64.b64encode(secrets.token_bytes(64)).decode()
                self.send_json(200, {"Response": {"Len": 53, "Payload": junk, "RequestId": rid}}
                               if api == "v2" else {"code": 0, "len": 53, "payload": junk})
            elif not self.transport_fault(mode, f, ok_raw, self.path, b'{"Response":{"RequestId":"',
                                          b'"}}'):
                self.send_json(500, {"Response": {"Error": {"Code": "Fixture.Injected",
                                                            "Message": "unknown injected mode"}}})

    return Handler


INSECURE_PSK = base64.b64encode(b"INSECURE-HTTP!!!").decode()


def plain_answer(cloud):
    def answer(path, raw):
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            body = {}
        pid = (body.get("ProductId") or body.get("productId") or "") \
            if isinstance(body, dict) else ""
        with cloud.lock:
            p = cloud.products.get(pid)
            secret = p.secret if p else "0" * 16
        # a success a client could really use, so a test sees whether it was followed
        plain = json.dumps({"encryptionType": 2, "psk": INSECURE_PSK},
                           separators=(",", ":")).encode()
        enc = dynreg_encrypt(secret, plain)
        obj = {"Response": {"Len": len(plain), "Payload": enc, "RequestId": "insecure"}} \
            if "/device/register" in path else \
            {"code": 0, "message": "success", "len": len(plain), "payload": enc}
        return json.dumps(obj).encode()
    return answer



# --------------------------------------------------------------------------------------------
# MQTT broker: Tencent's CONNECT rules and limits, the TLS-PSK front, the topic ACL
# (cloudbase.Broker does the rest)

class Conn(cloudbase.Conn):
    def __init__(self, sock, peer, tls, listener):
        super().__init__(sock, peer, tls, listener)
        self.pid = None
        self.auth = None           # "psk" | "cert" | "tls-psk"
        # the mqttpsk listener: the TLS-PSK front's header line, then MQTT
        self.psk_header = listener == "mqttpsk"
        self.psk_identity = None
        self.subdevs = {}          # a gateway's sub-devices online through it (tcgateway)


TOPIC_KINDS = ("property", "event", "action", "service", "raw")


class Broker(cloudbase.Broker):
    # DECISION: packets larger than this close the connection; docs/protocols/tencent.md §1.7 limits PUBLISH payloads
    # to 16 KB, which is checked separately (max_payload).
    MAX_PACKET = 256 * 1024
    CONN = Conn
    PARSE_BEFORE_EOF = False
    READ_WHILE_CLOSING = False
    QOS2_NOTE = " (docs/protocols/tencent.md §1.1)"

    def who(self, c):
        return {"productId": c.pid, "deviceName": c.dn}

    def tls_ok(self, c):
        peer = c.sock.getpeercert()
        cn = None
        for rdn in (peer or {}).get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    cn = v
        self.cloud.log("tls_ok", conn=c.id, version=c.sock.version(),
                       cipher=c.sock.cipher()[0], clientCert=peer is not None,
                       clientCN=cn)

    def before_packets(self, c):
        return not c.psk_header or self.psk_front_header(c)


    def psk_front_header(self, c):
        """docs/protocols/tencent.md §1.4 TLS-PSK: the cloud cannot serve it (Python 3.11's ssl has no PSK callbacks),
        so a test runs a TLS-PSK front (tests/integration/tcloud_pskfront.c) that terminates
        the TLS session with the device's PSK and relays to this loopback-only listener, after
        one line: "TLS-PSK identity=<identity> cipher=<name> version=<name>\n". The identity
        is what the PSK handshake proved; CONNECT checks it against the username."""
        nl = c.inbuf.find(b"\n")
        if nl < 0:
            if len(c.inbuf) > 512:
                self.fatal(c, "no TLS-PSK header line")
            return False
        line = bytes(c.inbuf[:nl]).decode("ascii", "replace")
        del c.inbuf[:nl + 1]
        parts = line.split(" ")
        fields = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        if parts[0] != "TLS-PSK" or not fields.get("identity"):
            self.fatal(c, "bad TLS-PSK header line %r" % line)
            return False
        c.psk_header = False
        c.psk_identity = fields["identity"]
        self.cloud.log("tls_psk", conn=c.id, identity=c.psk_identity,
                       cipher=fields.get("cipher"), version=fields.get("version"))
        return True

    def on_connect(self, c, body):
        info, username, password = self.read_connect(body)
        cid, keepalive = info["clientId"], info["keepalive"]
        info["hasPassword"] = password is not None
        # docs/protocols/tencent.md §1.1: MQTT 3.1.1; "MQIsdp"/3 (3.1) is sent by the Python SDK, so it is accepted too
        if self.refuse_protocol(c, info):
            return

        # docs/protocols/tencent.md §1.2 username: ${ProductId}${DeviceName};${sdkappid};${connid};${expiry}
        fields = username.split(";") if username is not None else []
        if len(fields) != 4:
            info["reason"] = "username is not <ProductId><DeviceName>;sdkappid;connid;expiry"
            return self.connack(c, 4, info)
        ident, sdkappid, connid, expiry = fields
        info.update(sdkappid=sdkappid, connid=connid, expiry=expiry)
        # DECISION: sdkappid is any decimal number (docs/protocols/tencent.md §1.2: 12010126 and 21010406 both work);
        # connid is exactly 5 of [A-Za-z0-9] as every SDK sends it; expiry is decimal seconds.
        if not sdkappid.isdigit() or not sdkappid.isascii():
            info["reason"] = "sdkappid is not a number"
            return self.connack(c, 4, info)
        if not re.fullmatch(r"[A-Za-z0-9]{5}", connid):
            info["reason"] = "connid is not 5 alphanumeric characters"
            return self.connack(c, 4, info)
        if not expiry.isdigit() or not expiry.isascii():
            info["reason"] = "expiry is not a decimal number of seconds"
            return self.connack(c, 4, info)
        # docs/protocols/tencent.md §1.2: ClientId = ${ProductId}${DeviceName}, the username's first field
        if cid != ident or not cid:
            info["reason"] = "clientId %r is not the username's <ProductId><DeviceName> %r" \
                % (cid, ident)
            return self.connack(c, 2, info)
        p, d = self.cloud.resolve(ident)
        if d is None:
            info["reason"] = "unknown product or device"
            return self.connack(c, 5, info)
        pid, dn = p.pid, d.dn
        info["productId"], info["deviceName"] = pid, dn
        if not d.enabled:
            # DECISION: a device disabled with set_device gets CONNACK 5
            info["reason"] = "device disabled"
            return self.connack(c, 5, info)
        with self.cloud.lock:
            d.connect_attempts += 1
            info["connidReused"] = connid in d.connids
            d.connids = (d.connids + [connid])[-20:]
            # docs/protocols/tencent.md §1.7: 1 CONNECT per 5 s per device. The window starts at the last CONNECT that was
            # answered (DECISION), so attempts inside the window do not extend it.
            gap = float(self.cloud.settings["connect_interval"])
            now = time.monotonic()
            limited = gap > 0 and d.last_connect_mono is not None and now - d.last_connect_mono < gap
            if not limited:
                d.last_connect_mono = now
        if limited:
            info["reason"] = "more than one CONNECT within %gs (docs/protocols/tencent.md §1.7)" % gap
            if self.cloud.settings["connect_rate_action"] == "refuse":
                return self.finish_connect(c, d, 3, info)
            # DECISION: "connection requests are answered at most once per 5 s": no CONNACK,
            # the cloud closes the connection.
            info["rc"] = None
            info["conn"] = c.id
            self.cloud.log("mqtt_connect_limited", **info)
            return self.close(c, "CONNECT rate limit (no CONNACK)")
        # docs/protocols/tencent.md §1.1/§1.7: keepalive 0..900 s
        if keepalive > 900:
            if self.cloud.settings["keepalive_over_max"] != "clamp":
                info["reason"] = "keepalive %d > 900 (docs/protocols/tencent.md §1.1)" % keepalive
                return self.finish_connect(c, d, 2, info)
            keepalive = 900
            info["keepaliveClamped"] = 900
        c.keepalive = keepalive
        # expiry is compared with the cloud's clock (host time + settings.clock_offset)
        cnow = int(self.cloud.now())
        if int(expiry) <= cnow:
            info["reason"] = "signature expired: expiry %s <= cloud time %d" % (expiry, cnow)
            return self.finish_connect(c, d, 4, info)
        rc = self.check_auth(c, p, d, username, password, info)
        if rc:
            return self.finish_connect(c, d, rc, info)
        self.start_session(c, d, info)
        return self.finish_connect(c, d, 0, info)

    def check_auth(self, c, p, d, username, password, info):
        if p.auth == "cert":
            # docs/protocols/tencent.md §1.3: TLS mutual auth with the issued certificate; the password is not checked
            info["auth"] = "cert"
            if not c.tls:
                info["reason"] = "certificate device on the plain listener (docs/protocols/tencent.md §1.4: 8883/TLS)"
                return 5
            peer = c.sock.getpeercert()
            cn = None
            for rdn in (peer or {}).get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        cn = v
            if cn != d.pid + d.dn:
                info["reason"] = "client certificate CN %r is not %s%s" % (cn, d.pid, d.dn)
                return 5
            c.auth = "cert"
            return 0
        info["auth"] = "psk"
        if d.psk is None:
            info["reason"] = "device has no PSK (not registered)"
            return 5
        if c.psk_identity is not None:
            # docs/protocols/tencent.md §1.4: TLS-PSK on 8883, identity ${ProductId}${DeviceName}; the handshake with
            # the device's PSK (done by the front) is the proof, no password is needed
            info["auth"] = "tls-psk"
            if c.psk_identity != d.pid + d.dn:
                info["reason"] = "TLS-PSK identity %r is not %s%s" % (c.psk_identity, d.pid,
                                                                     d.dn)
                return 5
            if password is None:
                c.auth = "tls-psk"
                return 0
        if password is None:
            # docs/protocols/tencent.md §1.4 TLS-PSK (no password) only through the TLS-PSK front (mqttpsk listener)
            info["reason"] = "no password (not a TLS-PSK connection)"
            return 4
        try:
            pw = password.decode("ascii")
        except UnicodeDecodeError:
            pw = ""
        hexpart, semi, alg = pw.rpartition(";")
        info["alg"] = alg if semi else None
        if not semi or alg not in HASHES:
            info["reason"] = "password is not <hex>;hmacsha256|hmacsha1"
            return 4
        want = mqtt_password(d.psk, username, alg).rpartition(";")[0]
        # DECISION: the hex is compared case-insensitively (docs/protocols/tencent.md §1.2 says SDKs send lower case)
        if not hmac.compare_digest(want.encode(), hexpart.lower().encode()):
            info["reason"] = "password is not HMAC(base64-decoded PSK, username)"
            return 4
        c.auth = "psk"
        return 0

    def finish_connect(self, c, d, rc, info):
        with self.cloud.lock:
            d.last_connack = rc
            d.last_connect = {k: info.get(k) for k in ("clientId", "username", "keepalive",
                                                       "sdkappid", "connid", "expiry", "alg",
                                                       "auth", "cleanSession", "reason")}
            d.last_connect.update(rc=rc, listener=c.listener, t=now_ms())
        self.connack(c, rc, info)

    def start_session(self, c, d, info):
        # docs/protocols/tencent.md §1.7: one concurrent connection per device identity.
        # DECISION: the newer session wins, the older one is closed.
        for other in list(d.sessions):
            self.cloud.log("mqtt_kicked", conn=other.id, by=c.id, productId=d.pid,
                           deviceName=d.dn)
            self.close(other, "kicked by a newer session of the same device")
        c.state, c.device, c.pid, c.dn = "session", d, d.pid, d.dn
        with self.cloud.lock:
            d.sessions.append(c)
            d.activated = True       # docs/protocols/tencent.md §2.1: after an MQTT connection, dynreg is refused
            d.connect_count += 1
        c.deadline = time.monotonic() + c.keepalive * 1.5 if c.keepalive else None


    # ---- ACL
    def allowed(self, c, topic, is_filter):
        """DECISION: a device publishes on $thing/up/<kind>/<pid>/<dn>, $sys/operation/<pid>/<dn>
        and $gateway/operation/<pid>/<dn>; it subscribes to $thing/down/<kind or +>/<pid>/<dn>,
        $sys/operation/result/<pid>/<dn> and $gateway/operation/result/<pid>/<dn>
        (docs/protocols/tencent.md §3, §1.8; gateway.md §G15). A gateway product's device also
        uses the $thing topics of a sub-device bound to it and online through this connection
        (gateway.md §G18). Nothing else."""
        parts = topic.split("/")
        own = [c.pid, c.dn]
        if is_filter:
            if len(parts) == 5 and parts[:2] == ["$thing", "down"] and \
                    (parts[2] in TOPIC_KINDS or parts[2] == "+"):
                return parts[3:] == own or self.sub_allowed(c, parts, topic, "subscribe")
            return parts in (["$sys", "operation", "result"] + own,
                             ["$gateway", "operation", "result"] + own)
        if len(parts) == 5 and parts[:2] == ["$thing", "up"] and parts[2] in TOPIC_KINDS:
            return parts[3:] == own or self.sub_allowed(c, parts, topic, "publish")
        return parts in (["$sys", "operation"] + own, ["$gateway", "operation"] + own)

    def sub_allowed(self, c, parts, topic, op):
        """A sub-device's $thing topic on a gateway's connection (tcgateway.sub_topic_check);
        a refusal is logged as subdev_refused, then handled as any ACL refusal."""
        with self.cloud.lock:
            if not self.cloud.products[c.pid].gateway:
                return False
            d, why = tcgateway.sub_topic_check(self.cloud, c, parts[3], parts[4])
        if why:
            self.cloud.log("subdev_refused", conn=c.id, op=op, topic=topic, productId=parts[3],
                           deviceName=parts[4], why=why, **tcgateway.who(c.device))
            return False
        return True

    def close(self, c, why, log=True):
        """A gateway's connection closing takes every sub-device online through it offline."""
        was = c.state
        super().close(c, why, log)
        if was != "closed" and c.subdevs:
            with self.cloud.lock:
                for d in list(c.subdevs.values()):
                    tcgateway.put_offline(self.cloud, self, d, "gateway connection closed: " + why)

    def deliver(self, d, topic, payload, qos=0):
        """Also to the gateway connection a sub-device is online through, when it subscribed."""
        sent = super().deliver(d, topic, payload, qos)
        c = d.sub_conn
        if c is not None and c.state != "closed" and any(topic_matches(f, topic) for f in c.subs):
            self.publish(c, topic, payload, qos)
            sent.append(c.id)
        return sent

    def on_subscribe(self, c, body):
        pid, reqs = self.read_subscribe(body)
        codes = []
        if len(reqs) > 1:
            # docs/protocols/tencent.md §1.7: 1 topic filter per SUBSCRIBE request. DECISION: every filter is refused.
            codes = [0x80] * len(reqs)
            self.cloud.log("subscribe_refused", conn=c.id, productId=c.pid, deviceName=c.dn,
                           filters=[f for f, _ in reqs], why="more than one filter (docs/protocols/tencent.md §1.7)")
        else:
            for f, q in reqs:
                if not valid_filter(f) or len(f.encode()) > 255 or f.count("/") >= 10 \
                        or not self.allowed(c, f, True):
                    self.deny_subscribe(c, f, codes)
                else:
                    # docs/protocols/tencent.md §1.1: QoS 2 is not supported; DECISION: granted as QoS 1
                    c.subs[f] = min(q, 1)
                    codes.append(min(q, 1))
        self.suback(c, pid, reqs, codes)

    def on_publish(self, c, flags, body):
        topic, qos, pid, payload, retain, dup = self.read_publish(flags, body)
        ev = {"conn": c.id, "productId": c.pid, "deviceName": c.dn, "topic": topic, "qos": qos,
              "pid": pid, "retain": retain, "dup": dup, "size": len(payload),
              "payload": payload[:4096].decode("utf-8", "replace")}
        if qos == 2:
            self.cloud.log("mqtt_publish_in", refused="QoS 2 not supported", **ev)
            return self.fatal(c, "QoS 2 PUBLISH (not supported, docs/protocols/tencent.md §1.1)")
        # docs/protocols/tencent.md §1.7: topic <= 255 bytes and <= 10 levels
        if len(topic.encode()) > 255 or topic.count("/") >= 10:
            self.cloud.log("mqtt_publish_in", refused="topic too long", **ev)
            return self.fatal(c, "topic longer than 255 bytes or 10 levels (docs/protocols/tencent.md §1.7)")
        if not self.allowed(c, topic, False):
            return self.refuse_acl(c, topic, qos, pid, ev)
        if len(payload) > int(self.cloud.settings["max_payload"]):
            # docs/protocols/tencent.md §1.7: "max MQTT PUBLISH payload 16 KB (larger is rejected)"
            self.cloud.log("mqtt_publish_in", refused="payload too large", **ev)
            self.cloud.log("payload_too_large", conn=c.id, productId=c.pid, deviceName=c.dn,
                           topic=topic, size=len(payload))
            if self.cloud.settings["oversize_action"] == "disconnect":
                return self.fatal(c, "PUBLISH payload of %d bytes > %d (docs/protocols/tencent.md §1.7)"
                                  % (len(payload), self.cloud.settings["max_payload"]))
            if qos:
                self.puback(c, pid)
            return
        d = c.device
        parts = topic.split("/")
        if parts[0] == "$thing" and parts[3:] != [c.pid, c.dn]:
            d = self.cloud.device(parts[3], parts[4])   # a sub-device the ACL let through
        throttled = self.throttled(d)
        self.cloud.log("mqtt_publish_in", throttled=throttled, **ev)
        if qos:
            self.puback(c, pid)
        if retain:   # docs/protocols/tencent.md §1.1: retained messages are not supported; DECISION: logged, not kept
            self.cloud.log("retain_ignored", conn=c.id, topic=topic)
        if throttled:
            # docs/protocols/tencent.md §1.7: 30 upstream msgs/s. DECISION: the excess is dropped (QoS 1 still PUBACKed)
            self.cloud.log("throttled", conn=c.id, productId=d.pid, deviceName=d.dn, topic=topic)
            return
        if parts[0] == "$gateway":
            return tcgateway.operation(self.cloud, self, c, payload)
        thing_uplink(self.cloud, self, c, d, topic, payload)


# --------------------------------------------------------------------------------------------
# Data template (docs/protocols/tencent.md §3) and $sys (§1.8)

def check_value(spec, name, v):
    """406 text follows docs/protocols/tencent.md §3.1 ("check report data err: <prop> value 3 out of range:[0,1]")."""
    t = spec["type"]
    isnum = isinstance(v, (int, float)) and not isinstance(v, bool)
    if t == "bool":
        if isnum and v in (0, 1) and int(v) == v:
            return None
        return "%s value %s out of range:[0,1]" % (name, json.dumps(v))
    if t in ("int", "enum", "timestamp"):
        if not isnum or int(v) != v:
            return "%s value %s is not an integer" % (name, json.dumps(v))
    elif t == "float":
        if not isnum:
            return "%s value %s is not a number" % (name, json.dumps(v))
    elif t == "string":
        if not isinstance(v, str):
            return "%s value %s is not a string" % (name, json.dumps(v))
        if "max" in spec and len(v) > spec["max"]:
            return "%s value is longer than %s" % (name, spec["max"])
        return None
    if t == "enum" and "enum" in spec and v not in spec["enum"]:
        return "%s value %s not in enum %s" % (name, json.dumps(v), json.dumps(spec["enum"]))
    lo, hi = spec.get("min"), spec.get("max")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        return "%s value %s out of range:[%s,%s]" % (name, json.dumps(v), lo, hi)
    return None


def check_params(specs, params):
    """None if params match the template's specs (None specs = no template), else a reason."""
    if specs is None:
        return None
    for k, v in params.items():
        spec = specs.get(k)
        if spec is None:
            return "%s is not defined in the data template" % k
        e = check_value(spec, k, v)
        if e:
            return e
    return None


def take_injected(d, kind):
    for inj in d.inject:
        if inj["kind"] in (kind, "any") and inj["count"] > 0:
            inj["count"] -= 1
            d.inject = [x for x in d.inject if x["count"] > 0]
            return inj["code"]
    return None


def envelope_error(obj, need_params=True):
    if not isinstance(obj.get("clientToken"), str) or not obj["clientToken"]:
        return "clientToken must be a non-empty string"
    if "timestamp" in obj and (isinstance(obj["timestamp"], bool)
                               or not isinstance(obj["timestamp"], int)):
        return "timestamp must be an integer"
    if need_params and (not isinstance(obj.get("params"), dict) or not obj["params"]):
        return "params must be a non-empty object"
    return None


def thing_uplink(cloud, broker, c, d, topic, payload):
    parts = topic.split("/")
    rx = now_ms()
    if parts[0] == "$sys":
        return sys_operation(cloud, broker, d, payload, rx)
    kind = parts[2]
    down = "$thing/down/%s/%s/%s" % (kind, d.pid, d.dn)
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        obj = None
    if kind in ("raw", "service") or not isinstance(obj, dict) or \
            not isinstance(obj.get("method"), str):
        # DECISION: no reply to what is not a JSON object with a method; it is logged
        cloud.log("thing_unhandled", productId=d.pid, deviceName=d.dn, topic=topic,
                  why="raw/service topic" if kind in ("raw", "service")
                  else "not a JSON object with a method")
        return
    method = obj["method"]
    model = cloud.model_for(d.pid)
    with cloud.lock:
        # a thing model takes the place of the product's template
        tmpl = cloud.products[d.pid].template if model is None else None
    reply = None
    if kind == "property" and method in ("report", "report_info"):
        err = envelope_error(obj)
        code, status = (400, err) if err else (0, "success")
        if not err and method == "report_info" and "fw_ver" not in obj["params"]:
            code, status = 400, "report_info needs params.fw_ver"   # docs/protocols/tencent.md §3.1 base info
        if code == 0 and method == "report" and model is not None:
            found = model.check_properties(obj["params"])
            if found:
                code, status = 406, "check report data err: " + "; ".join(v["reason"] for v in found)
                cloud.violations(d, {"clientToken": obj.get("clientToken"), "method": method,
                                     "code": code}, "property", found)
        elif code == 0 and method == "report":
            e = check_params(tmpl and tmpl["properties"], obj["params"])
            if e:
                code, status = 406, "check report data err: " + e   # docs/protocols/tencent.md §3.1 [DOC-406]
        with cloud.lock:
            if code == 0:
                inj = take_injected(d, "report")
                if inj is not None:
                    code, status = inj, "injected"
            rec = {"method": method, "clientToken": obj.get("clientToken"), "code": code,
                   "status": status, "rx": rx, "timestamp": obj.get("timestamp"),
                   "params": obj.get("params")}
            d.reports.append(rec)
            if code == 0 and method == "report":
                for k, v in obj["params"].items():
                    d.reported[k] = v
                    d.properties.append({"name": k, "value": v, "clientToken": obj["clientToken"],
                                         "timestamp": obj.get("timestamp"), "rx": rx})
            elif code == 0:
                d.infos.append({"clientToken": obj["clientToken"], "params": obj["params"],
                                "rx": rx})
        reply = {"method": method + "_reply", "clientToken": obj.get("clientToken"),
                 "code": code, "status": status}
    elif kind == "property" and method == "get_status":
        err = envelope_error(obj, need_params=False)
        typ = obj.get("type", "report")
        with cloud.lock:
            reply = {"method": "get_status_reply", "clientToken": obj.get("clientToken"),
                     "code": 400 if err else 0, "status": err or "success", "type": typ}
            if not err:
                data = {"report": dict(d.reported)}
                if d.pending_controls:
                    merged = {}
                    for pc in d.pending_controls:
                        merged.update(pc["params"])
                    data["control"] = merged
                    d.status_tokens[obj["clientToken"]] = [pc["clientToken"]
                                                           for pc in d.pending_controls]
                reply["data"] = data
        cloud.log("get_status", productId=d.pid, deviceName=d.dn, clientToken=obj.get("clientToken"),
                  control=reply.get("data", {}).get("control"), code=reply["code"])
    elif kind == "property" and method == "clear_control":
        tok = obj.get("clientToken")
        with cloud.lock:
            toks = d.status_tokens.pop(tok, None) if isinstance(tok, str) else None
            if toks is None:
                code, status, cleared = 404, "no get_status_reply with this clientToken", []
            else:
                cleared = [pc for pc in d.pending_controls if pc["clientToken"] in toks]
                d.pending_controls = [pc for pc in d.pending_controls
                                      if pc["clientToken"] not in toks]
                code, status = 0, "success"
        cloud.log("clear_control", productId=d.pid, deviceName=d.dn, clientToken=tok, code=code,
                  cleared=[pc["clientToken"] for pc in cleared])
        # DECISION: docs/protocols/tencent.md §3.1 names no reply method; the cloud answers clear_control_reply
        reply = {"method": "clear_control_reply", "clientToken": tok, "code": code,
                 "status": status}
    elif (kind, method) in (("property", "control_reply"), ("action", "action_reply")):
        return record_reply(cloud, d, kind, obj, topic, payload, rx)
    elif kind == "event" and method in ("event_post", "events_post"):
        reply = event_post(cloud, d, obj, method, tmpl, model, rx)
    else:
        cloud.log("thing_unhandled", productId=d.pid, deviceName=d.dn, topic=topic,
                  method=method, why="unknown method for this topic")
        return
    raw = json.dumps(reply, separators=(",", ":")).encode()
    delivered = broker.deliver(d, down, raw)
    cloud.log("thing_uplink", productId=d.pid, deviceName=d.dn, kind=kind, method=method,
              clientToken=obj.get("clientToken"), code=reply.get("code"),
              status=reply.get("status"), replyTopic=down, replyDelivered=bool(delivered))


def event_post(cloud, d, obj, method, tmpl, model, rx):
    """docs/protocols/tencent.md §3.2: event_post (one) and events_post (an array in "events").
    With a thing model (thingmodel.py) each event is checked against it, its type included."""
    err = envelope_error(obj, need_params=False)
    items = []
    if not err:
        if method == "event_post":
            items = [obj]
        elif not isinstance(obj.get("events"), list) or not obj["events"]:
            err = "events must be a non-empty array"
        else:
            items = obj["events"]
    code = 400 if err else 0
    status = err or "success"
    if not err:
        for it in items:
            if not isinstance(it, dict) or not isinstance(it.get("eventId"), str) \
                    or not isinstance(it.get("params", {}), dict):
                code, status = 400, "an event needs eventId (string) and params (object)"
                break
            if model is not None:
                found = model.check_event(it["eventId"], it.get("type"), it.get("params", {}))
                if found:
                    code = 406
                    status = "check event data err: " + "; ".join(v["reason"] for v in found)
                    cloud.violations(d, {"clientToken": obj.get("clientToken"), "method": method,
                                         "code": code}, "event", found, event=it["eventId"])
                    break
                continue
            if it.get("type") not in EVENT_TYPES:
                code, status = 406, "event %s: type %r is not one of %s" % (
                    it["eventId"], it.get("type"), ",".join(EVENT_TYPES))
                break
            if tmpl is not None and tmpl["events"]:
                spec = tmpl["events"].get(it["eventId"])
                e = "%s is not defined in the data template" % it["eventId"] if spec is None \
                    else check_params(spec["params"] or None, it.get("params", {}))
                if e:
                    code, status = 406, "check event data err: " + e
                    break
    with cloud.lock:
        if code == 0:
            inj = take_injected(d, "event")
            if inj is not None:
                code, status = inj, "injected"
        d.reports.append({"method": method, "clientToken": obj.get("clientToken"), "code": code,
                          "status": status, "rx": rx, "timestamp": obj.get("timestamp"),
                          "params": obj.get("params") if method == "event_post"
                          else obj.get("events")})
        if code == 0:
            for it in items:
                d.events.append({"eventId": it["eventId"], "type": it["type"],
                                 "params": it.get("params", {}), "timestamp": it.get("timestamp"),
                                 "clientToken": obj["clientToken"], "rx": rx})
    # docs/protocols/tencent.md §3.2 gives event_reply for event_post; DECISION: events_post is answered with events_reply
    return {"method": "event_reply" if method == "event_post" else "events_reply",
            "clientToken": obj.get("clientToken"), "version": obj.get("version", "1.0"),
            "code": code, "status": status, "data": {}}


def sys_operation(cloud, broker, d, payload, rx):
    """docs/protocols/tencent.md §1.8: {"type":"get","resource":["time"]} -> time (s) and ntptime1/ntptime2 (ms)."""
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        obj = None
    if not isinstance(obj, dict) or obj.get("type") != "get" or \
            "time" not in (obj.get("resource") or []):
        cloud.log("thing_unhandled", productId=d.pid, deviceName=d.dn,
                  topic="$sys/operation/%s/%s" % (d.pid, d.dn), why="not a time request")
        return
    off = float(cloud.settings["clock_offset"])
    t1 = rx + int(off * 1000)
    now = cloud.now()
    # DECISION: ntptime1 = when the request arrived, ntptime2 = when the reply leaves (cloud ms)
    reply = {"type": "get", "time": int(now), "ntptime1": t1, "ntptime2": int(now * 1000)}
    topic = "$sys/operation/result/%s/%s" % (d.pid, d.dn)
    delivered = broker.deliver(d, topic, json.dumps(reply, separators=(",", ":")).encode())
    cloud.log("sys_time", productId=d.pid, deviceName=d.dn, time=reply["time"],
              replyDelivered=bool(delivered))


def record_reply(cloud, d, kind, obj, topic, payload, rx):
    """control_reply / action_reply (docs/protocols/tencent.md §3.1, §3.3), matched to the downlink by clientToken."""
    problems = []
    tok = obj.get("clientToken")
    if not isinstance(tok, str):
        problems.append("clientToken must be a string")
    if isinstance(obj.get("code"), bool) or not isinstance(obj.get("code"), int):
        problems.append("code must be an integer")
    if kind == "action" and "response" in obj and not isinstance(obj["response"], dict):
        problems.append("response must be an object")
    with cloud.lock:
        dl = d.downlinks.get(tok) if isinstance(tok, str) else None
        want = "control" if kind == "property" else "action"
        if dl is not None and dl["kind"] != want:
            dl = None
        rep = {"kind": obj["method"], "clientToken": tok, "topic": topic,
               "payload": payload.decode("utf-8", "replace"), "code": obj.get("code"),
               "status": obj.get("status"), "response": obj.get("response"), "rx": rx,
               "latencyMs": rx - dl["sent"] if dl else None, "matched": dl is not None,
               "problems": problems}
        if dl is not None:
            dl["reply"] = rep
        d.replies.append(rep)
    cloud.log("downlink_reply", productId=d.pid, deviceName=d.dn, **rep)


def downlink(cloud, broker, a, kind):
    """Runs in the broker thread: control (docs/protocols/tencent.md §3.1), action (§3.3) or a raw publish."""
    d = cloud.need_device(a)
    pid, dn = d.pid, d.dn
    qos = int(a.get("qos", 0))
    tok = str(a.get("clientToken") or cloud.new_token(kind))
    with cloud.lock:
        tmpl = cloud.products[pid].template
    if kind == "control":
        params = a.get("params")
        if not isinstance(params, dict) or not params:
            raise CtlError("params must be a non-empty object")
        if not a.get("force"):
            e = check_params(tmpl and tmpl["properties"], params)
            if e:
                raise CtlError("params do not match the data template: %s (force: true sends "
                               "them anyway)" % e)
        topic = "$thing/down/property/%s/%s" % (pid, dn)
        body = {"method": "control", "clientToken": tok, "params": params}
    elif kind == "action":
        aid = a.get("actionId")
        if not aid:
            raise CtlError("actionId required")
        topic = "$thing/down/action/%s/%s" % (pid, dn)
        body = {"method": "action", "clientToken": tok, "actionId": aid,
                "timestamp": int(cloud.now()), "params": a.get("params", {})}
    else:
        topic = a.get("topic")
        if not topic:
            raise CtlError("topic required")
        p = a.get("payload", "")
        body = p if isinstance(p, str) else json.dumps(p, separators=(",", ":"))
    raw = (body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))).encode()
    sent_to, queued = [], False
    with cloud.lock:
        if kind == "raw" and a.get("force"):
            for c in list(d.sessions):
                broker.publish(c, topic, raw, qos)
                sent_to.append(c.id)
        elif not (kind == "control" and a.get("queue")):
            sent_to = broker.deliver(d, topic, raw, qos)
        # docs/protocols/tencent.md §3.1: a control issued while the device is offline is returned by get_status.
        # DECISION: "offline" = not delivered to any session; offline:"drop" disables queueing.
        if kind == "control" and not sent_to and a.get("offline", "queue") == "queue":
            d.pending_controls.append({"clientToken": tok, "params": body["params"],
                                       "t": now_ms()})
            queued = True
        rec = {"kind": kind, "clientToken": tok, "topic": topic, "payload": raw.decode(),
               "sent": now_ms(), "deliveredTo": sent_to, "queued": queued, "reply": None}
        if kind != "raw":
            d.downlinks[tok] = rec
    cloud.log("downlink", productId=pid, deviceName=dn, kind=kind, clientToken=tok, topic=topic,
              deliveredTo=sent_to, queued=queued, payload=raw.decode())
    return rec


# --------------------------------------------------------------------------------------------
# Control API

def make_control_handler(cloud, servers):
    cmd = cloudbase.Commands(cloud, servers)

    def cmd_set_product(a):
        with cloud.lock:
            p = cloud.products.get(a.get("productId"))
            if p is None:
                raise CtlError("unknown product")
            if "productSecret" in a:
                if not isinstance(a["productSecret"], str) or len(a["productSecret"]) < 16:
                    raise CtlError("productSecret must have at least 16 characters")
                p.secret = a["productSecret"]
            cloud.set_product_flags(p, a)
            return p.summary()

    def cmd_reset_device(a):
        with cloud.lock:
            d = cloud.need_device(a)
            d.activated = False
            d.register_count = 0
            if a.get("forgetSecret"):
                d.psk, d.psk_source, d.cert = None, None, None
            if a.get("clearData"):
                d.properties, d.events, d.reports, d.replies, d.infos = [], [], [], [], []
                d.violations = []
                d.downlinks, d.inject, d.reported = {}, [], {}
                d.pending_controls, d.status_tokens = [], {}
                d.bind_attempts = d.bind_count = d.unbind_count = 0
                d.online_count = d.offline_count = 0
                d.gw_results, d.gw_inject, d.pushes, d.acks = {}, [], [], []
            d.connect_attempts = d.connect_count = 0
            d.last_connack = d.last_connect = d.last_connect_mono = None
        cloud.log("ctl_reset", **cmd.ident(a))
        return d.summary()

    def cmd_trust_ca(a):
        cloud.trust_ca(a.get("pem"))
        cloud.log("ctl_trust_ca")
        return {}

    def cmd_device(a):
        out = cmd.device(a)
        if a.get("withCert"):
            out["cert"] = cloud.need_device(a).cert
        return out

    return cloudbase.make_control_handler(cloud, dict(
        cmd.common(), **tcgateway.make_commands(cloud, cmd), set_product=cmd_set_product, reset_device=cmd_reset_device,
        device=cmd_device, trust_ca=cmd_trust_ca,
        properties=cmd.listing("properties"), reports=cmd.listing("reports"),
        events=cmd.listing("events"), infos=cmd.listing("infos"),
        replies=cmd.listing("replies"), control=cmd.dl("control"), action=cmd.dl("action")))


# --------------------------------------------------------------------------------------------

def main(argv=None):
    global CANARY
    a, CANARY = cloudbase.parse_args(__doc__, argv, ("mqtt", "mqtts", "mqttpsk"),
                                     "letters and digits (at most 48) put into every issued PSK",
                                     48)
    ctx = cloudbase.server_context(a)
    # the MQTT TLS listener asks for an optional client certificate (docs/protocols/tencent.md §1.3 certificate devices),
    # verified against the device CA the cloud makes when it first issues one
    mctx = cloudbase.server_context(a)
    mctx.verify_mode = ssl.CERT_OPTIONAL

    cloud = Cloud(a.dir)
    cloud.mqtts_ctx = mctx
    if a.products:
        with open(a.products, encoding="utf-8") as f:
            spec = json.load(f)
        for k, v in spec.get("settings", {}).items():
            if k not in cloud.settings:
                raise SystemExit("unknown setting %r in %s" % (k, a.products))
            v = type(cloud.settings[k])(v)
            if k in SETTING_CHOICES and v not in SETTING_CHOICES[k]:
                raise SystemExit("%s: %s must be one of %s" % (a.products, k, SETTING_CHOICES[k]))
            cloud.settings[k] = v
        cloud.apply_tls_settings()
        for p in spec.get("products", []):
            try:
                cloud.add_product(p)
            except CtlError as e:
                raise SystemExit("%s: %s" % (a.products, e))
    return cloudbase.serve(cloud, a, ctx, make_https_handler(cloud),
                           cloudbase.make_plain_handler(cloud, plain_answer(cloud)),
                           lambda servers: make_control_handler(cloud, servers),
                           Broker(cloud, mctx),
                           (("mqtt", False), ("mqtts", True), ("mqttpsk", False)))


if __name__ == "__main__":
    sys.exit(main())
