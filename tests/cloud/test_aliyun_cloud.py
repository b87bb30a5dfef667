#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Self-test of the Aliyun test cloud (aliyun_cloud.py), stdlib unittest only.

1. The signing rules are checked against the test vectors of docs/protocols/aliyun.md §8 with an
   HMAC written here from RFC 2104 (not hmac.new), and the cloud's own functions must produce
   the same hex, so the gateway and the test cloud cannot share one mistake.
2. The cloud is started as a separate process in a temporary directory with a CA and server
   certificate made by the openssl CLI, and driven through its HTTPS endpoint, its MQTT
   listeners (a minimal MQTT 3.1.1 client written below) and its control API.
Every socket operation has a timeout; the whole run takes well under a minute.
"""

import hashlib
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
sys.dont_write_bytecode = True   # keep tests/cloud free of __pycache__
sys.path.insert(0, HERE)
import aliyun_cloud  # noqa: E402  (only its pure signing functions are used directly)

PK = "a1m7er1nJbQ"
PS = "testProductSecret123"
PK_OFF = "a1noDynReg0"
# the product of tests/data/models/aliyun-tsl.json (profile.productKey), loaded with --thing-model
MPK = "a1TestProd01"
TSL = os.path.join(HERE, "..", "data", "models", "aliyun-tsl.json")

# ---------------------------------------------------------------------------------------------
# Independent HMAC (RFC 2104) over hashlib's plain digests


def my_hmac(method, key, msg):
    h = {"hmacsha256": hashlib.sha256, "hmacsha1": hashlib.sha1, "hmacmd5": hashlib.md5}[method]
    key, msg = key.encode(), msg.encode()
    block = 64   # SHA-256, SHA-1 and MD5 all use 64-byte blocks
    if len(key) > block:
        key = h(key).digest()
    key = key.ljust(block, b"\0")
    inner = h(bytes(k ^ 0x36 for k in key) + msg).digest()
    return h(bytes(k ^ 0x5C for k in key) + inner).hexdigest()


def reg_sign(method, secret, pk, dn, rnd):
    return my_hmac(method, secret, "deviceName" + dn + "productKey" + pk + "random" + rnd)


def dev_password(method, secret, cid, dn, pk, ts=None):
    s = "clientId" + cid + "deviceName" + dn + "productKey" + pk
    if ts is not None:
        s += "timestamp" + ts
    return my_hmac(method, secret, s)


# ---------------------------------------------------------------------------------------------
# Minimal MQTT 3.1.1 client: mqttclient.py

from mqttclient import MQTT, _s  # noqa: E402,F401


# ---------------------------------------------------------------------------------------------


def make_certs(d):
    def run(*args):
        subprocess.run(args, cwd=d, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-days", "3650", "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=Test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "825", "-sha256", "-extfile", "server.ext", "-out", "server.crt")


class VectorTests(unittest.TestCase):
    """Fact sheet 'Test vectors', with the HMAC above and with the cloud's code."""

    DYN = "deviceName222222productKeya1m7er1nJbQrandom8Ygb7ULYh53B6OA"
    DYN_HEX = {"hmacsha256": "8e365e5891cb1ac119260f21d3f43738488ec6000ae25871b03580a57b668a9e",
               "hmacmd5": "015ced26e6f38a9e3758edcb3ac77bbc",
               "hmacsha1": "6ec99e340ea044f1a8c1165b7fff5bff8bd50d0f"}
    DEV = "clientId222222deviceName222222productKeya1m7er1nJbQtimestamp1700000000000"
    DEV_HEX = {"hmacsha256": "b9f9e4a922737331b05946fec3c8d3469f76c4a9a2952992113a6898f496b009",
               "hmacsha1": "e0c46ec3d05bd7d247b4c8375f6e2b3a0581eff3",
               "hmacmd5": "b003c8a8affc26e9d8beb0ab7f2d86a6"}
    LINK_SDK_HEX = "2395a18e950ee17f8c376647a44f7d92216f821a316bc9f89ee71e51bb57b6b9"

    def test_registration_sign(self):
        self.assertEqual(aliyun_cloud.register_sign_content(PK, "222222", "8Ygb7ULYh53B6OA"), self.DYN)
        for m, want in self.DYN_HEX.items():
            self.assertEqual(my_hmac(m, PS, self.DYN), want, m)
            self.assertEqual(reg_sign(m, PS, PK, "222222", "8Ygb7ULYh53B6OA"), want, m)
            self.assertEqual(aliyun_cloud.hmac_hex(m, PS, self.DYN), want, m)
        self.assertEqual(my_hmac("hmacsha256", PS, self.DYN).upper(),
                         "8E365E5891CB1AC119260F21D3F43738488EC6000AE25871B03580A57B668A9E")
        self.assertTrue(aliyun_cloud.hex_equal(self.DYN_HEX["hmacsha256"].upper(),
                                               self.DYN_HEX["hmacsha256"]))
        body = "productKey=%s&deviceName=222222&random=8Ygb7ULYh53B6OA&sign=%s&signMethod=hmacsha256" \
            % (PK, self.DYN_HEX["hmacsha256"].upper())
        self.assertTrue(body.startswith("productKey=a1m7er1nJbQ&deviceName=222222&random=8Ygb7ULYh53B6OA&sign=8E36"))
        self.assertTrue(body.endswith("8A9E&signMethod=hmacsha256"))

    def test_device_password(self):
        self.assertEqual(aliyun_cloud.mqtt_sign_content("222222", "222222", PK, "1700000000000"), self.DEV)
        for m, want in self.DEV_HEX.items():
            self.assertEqual(my_hmac(m, "testDeviceSecret456", self.DEV), want, m)
            self.assertEqual(dev_password(m, "testDeviceSecret456", "222222", "222222", PK,
                                          "1700000000000"), want, m)
            self.assertEqual(aliyun_cloud.hmac_hex(m, "testDeviceSecret456", self.DEV), want, m)
        link = "clientIda1m7er1nJbQ.222222deviceName222222productKeya1m7er1nJbQtimestamp1700000000000"
        self.assertEqual(aliyun_cloud.mqtt_sign_content(PK + ".222222", "222222", PK, "1700000000000"), link)
        self.assertEqual(my_hmac("hmacsha256", "testDeviceSecret456", link), self.LINK_SDK_HEX)
        self.assertEqual(aliyun_cloud.hmac_hex("hmacsha256", "testDeviceSecret456", link), self.LINK_SDK_HEX)

    def test_hmac_matches_stdlib(self):
        import hmac as std   # guards my_hmac itself (long keys included)
        for m, h in (("hmacsha256", hashlib.sha256), ("hmacsha1", hashlib.sha1), ("hmacmd5", hashlib.md5)):
            for key in ("k", "x" * 64, "y" * 100):
                self.assertEqual(my_hmac(m, key, "msg"), std.new(key.encode(), b"msg", h).hexdigest())


class CloudProcess:
    """Starts aliyun_cloud.py with PRODUCTS (and ARGS) for a TestCase class; the helpers."""
    proc = None
    ARGS = ()
    PRODUCTS = None

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="aliyun-cloud-")
        make_certs(cls.dir)
        with open(os.path.join(cls.dir, "products.json"), "w") as f:
            json.dump(cls.PRODUCTS, f)
        cls.stderr = open(os.path.join(cls.dir, "cloud.stderr"), "w")
        cls.proc = subprocess.Popen(
            [PYTHON, os.path.join(HERE, "aliyun_cloud.py"), "--dir", cls.dir,
             "--products", os.path.join(cls.dir, "products.json"),
             "--cert", os.path.join(cls.dir, "server.crt"), "--key", os.path.join(cls.dir, "server.key")]
            + list(cls.ARGS),
            stdin=subprocess.DEVNULL, stdout=cls.stderr, stderr=cls.stderr)
        pf = os.path.join(cls.dir, "ports.json")
        dl = time.monotonic() + 15
        while not os.path.exists(pf):
            if cls.proc.poll() is not None or time.monotonic() > dl:
                cls.tearDownClass()
                raise RuntimeError("cloud did not start")
            time.sleep(0.02)
        with open(pf) as f:
            cls.ports = json.load(f)
        cls.ctx = ssl.create_default_context(cafile=os.path.join(cls.dir, "ca.crt"))

    @classmethod
    def tearDownClass(cls):
        if cls.proc is not None:
            try:
                cls.ctl("shutdown")
            except Exception:
                pass
            try:
                cls.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                cls.proc.kill()
                cls.proc.wait(timeout=5)
            cls.stderr.close()
            with open(os.path.join(cls.dir, "cloud.stderr")) as f:
                err = f.read()
            if err.strip():
                print("cloud stderr:\n" + err, file=sys.stderr)
        if os.environ.get("KEEP_CLOUD_DIR"):
            print("cloud dir kept: " + cls.dir, file=sys.stderr)
        else:
            shutil.rmtree(cls.dir, ignore_errors=True)

    # ---- helpers
    @classmethod
    def ctl(cls, name, expect_ok=True, timeout=15, **args):
        c = http.client.HTTPConnection("127.0.0.1", cls.ports["control"], timeout=timeout)
        try:
            c.request("POST", "/" + name, json.dumps(args), {"Content-Type": "application/json"})
            r = c.getresponse()
            out = json.loads(r.read())
        finally:
            c.close()
        if expect_ok and not out.get("ok"):
            raise AssertionError("control %s failed: %s" % (name, out))
        return out

    def https(self, body, ctype="application/x-www-form-urlencoded", method="POST",
              path="/auth/register/device", timeout=10):
        c = http.client.HTTPSConnection("localhost", self.ports["https"], context=self.ctx,
                                        timeout=timeout)
        try:
            headers = {"Accept": "text/xml,text/javascript,text/html,application/json"}
            if ctype:
                headers["Content-Type"] = ctype
            c.request(method, path, body, headers)
            r = c.getresponse()
            return r.status, r, r.read()
        finally:
            c.close()

    def register(self, dn, method="hmacsha256", pk=PK, secret=PS, rnd="8Ygb7ULYh53B6OA", upper=False,
                 sign=None):
        s = sign if sign is not None else reg_sign(method, secret, pk, dn, rnd)
        if upper:
            s = s.upper()
        body = urllib.parse.urlencode({"productKey": pk, "deviceName": dn, "random": rnd,
                                       "sign": s, "signMethod": method})
        st, r, raw = self.https(body)
        return st, r, raw

    def register_json(self, dn, **kw):
        st, r, raw = self.register(dn, **kw)
        self.assertEqual(st, 200, raw)
        return json.loads(raw)

    def mqtt(self, tls=True):
        return MQTT(self.ports["mqtts" if tls else "mqtt"], self.ctx if tls else None)

    def dev_connect(self, dn, secret, tls=True, method="hmacsha256", ts="2524608000000",
                    cid=None, keepalive=300, username=None, extra="", pk=PK):
        cid = cid or dn
        ext = "securemode=%s,signmethod=%s" % ("2" if tls else "3", method)
        if ts is not None:
            ext += ",timestamp=" + ts
        ext += extra
        m = self.mqtt(tls)
        rc = m.connect("%s|%s|" % (cid, ext), username or "%s&%s" % (dn, pk),
                       dev_password(method, secret, cid, dn, pk, ts), keepalive)
        return m, rc

    def device(self, dn, pk=PK):
        return self.ctl("device", productKey=pk, deviceName=dn)



class CloudTests(CloudProcess, unittest.TestCase):
    ARGS = ("--thing-model", TSL)
    PRODUCTS = {"products": [
        {"productKey": PK, "productSecret": PS, "dynamicRegistration": True,
         "registrationFree": True,
         "devices": ["222222", "reg-sha1", "reg-md5", "reg-twice", "inj", "mqreg1",
                     {"deviceName": "fixed", "deviceSecret": "testDeviceSecret456"}]},
        {"productKey": PK_OFF, "productSecret": "offSecret", "dynamicRegistration": False,
         "devices": ["d1"]},
        {"productKey": MPK, "productSecret": "modelSecret",
         "devices": [{"deviceName": "tsl1", "deviceSecret": "tslSecret"}]}]}

    # ---- HTTPS registration
    def test_https_register_success_all_methods(self):
        for dn, method, upper in (("222222", "hmacsha256", True), ("reg-sha1", "hmacsha1", False),
                                  ("reg-md5", "hmacmd5", False)):
            out = self.register_json(dn, method=method, upper=upper)
            self.assertEqual(out["code"], 200)
            self.assertEqual(out["message"], "success")
            self.assertEqual(out["data"]["productKey"], PK)
            self.assertEqual(out["data"]["deviceName"], dn)
            self.assertIsInstance(out["data"]["deviceSecret"], str)
            self.assertEqual(self.device(dn)["deviceSecret"], out["data"]["deviceSecret"])

    def test_https_last_secret_wins_then_activated_then_reset(self):
        s1 = self.register_json("reg-twice")["data"]["deviceSecret"]
        s2 = self.register_json("reg-twice", rnd="12345")["data"]["deviceSecret"]
        self.assertNotEqual(s1, s2)
        m, rc = self.dev_connect("reg-twice", s1)
        m.close()
        self.assertEqual(rc, 5, "an overwritten secret must be refused")
        m, rc = self.dev_connect("reg-twice", s2)
        self.assertEqual(rc, 0)
        m.close()
        self.assertTrue(self.device("reg-twice")["activated"])
        out = self.register_json("reg-twice")
        self.assertNotEqual(out["code"], 200)
        self.assertIsInstance(out["message"], str)
        self.assertNotIn("data", out)
        self.ctl("reset_device", productKey=PK, deviceName="reg-twice")
        self.assertEqual(self.register_json("reg-twice")["code"], 200)

    def test_https_register_errors(self):
        self.ctl("add_device", productKey=PK, deviceName="err-dev")
        cases = {
            "unknown product": dict(dn="err-dev", pk="a1nosuchPK0", secret=PS),
            "bad sign": dict(dn="err-dev", secret="wrongSecret"),
            "not pre-registered": dict(dn="never-added"),
            "dynamic registration off": dict(dn="d1", pk=PK_OFF, secret="offSecret"),
            "unsupported signMethod": dict(dn="err-dev", method="hmacsha256", sign="x"),
        }
        codes = {}
        for what, kw in cases.items():
            out = self.register_json(**kw)
            self.assertNotEqual(out["code"], 200, what)
            self.assertIsInstance(out["code"], int, what)
            self.assertIsInstance(out["message"], str, what)
            codes[what] = out["code"]
        self.assertEqual(len(set(codes.values()) - {460}), 4, codes)
        # bad signMethod value, missing field, wrong Content-Type, wrong verb, wrong path
        body = urllib.parse.urlencode({"productKey": PK, "deviceName": "err-dev", "random": "1",
                                       "sign": "00", "signMethod": "sha256"})
        self.assertEqual(json.loads(self.https(body)[2])["code"], 460)
        body = urllib.parse.urlencode({"productKey": PK, "deviceName": "err-dev", "random": "1"})
        self.assertEqual(json.loads(self.https(body)[2])["code"], 460)
        good = urllib.parse.urlencode({"productKey": PK, "deviceName": "err-dev", "random": "1",
                                       "sign": reg_sign("hmacsha256", PS, PK, "err-dev", "1"),
                                       "signMethod": "hmacsha256"})
        self.assertEqual(json.loads(self.https(good, ctype="application/json")[2])["code"], 460)
        self.assertEqual(self.https(None, method="GET")[0], 405)
        self.assertEqual(self.https(good, path="/auth/register")[0], 404)
        self.assertFalse(self.device("err-dev")["registered"])
        self.assertEqual(json.loads(self.https(good)[2])["code"], 200)

    def test_https_injected_failures(self):
        dn = "inj"

        def fail(mode, **kw):
            self.ctl("https_fail", mode=mode, **kw)

        try:
            fail("http500")
            self.assertEqual(self.register(dn)[0], 500)
            fail("http503", retry_after=7)
            st, r, _ = self.register(dn)
            self.assertEqual((st, r.getheader("Retry-After")), (503, "7"))
            fail("code_error", code=6100)
            out = self.register_json(dn)
            self.assertEqual(out["code"], 6100)
            fail("truncated")
            st, _, raw = self.register(dn)
            self.assertEqual(st, 200)
            self.assertRaises(ValueError, json.loads, raw)
            fail("short_body")
            self.assertRaises(http.client.IncompleteRead, self.register, dn)
            fail("wrong_types")
            out = self.register_json(dn)
            self.assertEqual(out["code"], 200)
            self.assertIsInstance(out["data"]["deviceSecret"], int)
            fail("no_secret")
            self.assertNotIn("deviceSecret", self.register_json(dn)["data"])
            fail("redirect_http")
            st, r, _ = self.register(dn)
            self.assertEqual(st, 302)
            self.assertEqual(r.getheader("Location"),
                             "http://127.0.0.1:%d/auth/register/device" % self.ports["http"])
            fail("huge", size=10 * 1024 * 1024)
            t0 = time.monotonic()
            st, r, raw = self.register(dn, )
            self.assertEqual(r.getheader("Transfer-Encoding"), "chunked")
            self.assertGreaterEqual(len(raw), 10 * 1024 * 1024)
            self.assertLess(time.monotonic() - t0, 20)
            self.assertFalse(self.device(dn)["registered"], "injected replies must not register")
            # slow drip: 1 byte/s after the headers
            fail("drip", interval=1.0)
            self.assertLessEqual(self.drip_bytes(dn, 2.5), 3)
            # next N fail, then succeed
            fail("http500", count=2)
            self.assertEqual(self.register(dn)[0], 500)
            self.assertEqual(self.register(dn)[0], 500)
            self.assertEqual(self.register_json(dn)["code"], 200)
            self.assertTrue(self.device(dn)["registered"])
        finally:
            fail("none")

    def drip_bytes(self, dn, seconds):
        body = urllib.parse.urlencode({"productKey": PK, "deviceName": dn, "random": "1",
                                       "sign": reg_sign("hmacsha256", PS, PK, dn, "1"),
                                       "signMethod": "hmacsha256"})
        s = self.ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.ports["https"]), timeout=5),
                                 server_hostname="localhost")
        try:
            s.sendall(("POST /auth/register/device HTTP/1.1\r\nHost: localhost\r\n"
                       "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
                       % (len(body), body)).encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(4096)
            got = len(buf.split(b"\r\n\r\n", 1)[1])
            dl = time.monotonic() + seconds
            while time.monotonic() < dl:
                s.settimeout(max(0.01, dl - time.monotonic()))
                try:
                    d = s.recv(4096)
                except socket.timeout:
                    break
                if not d:
                    break
                got += len(d)
            return got
        finally:
            s.close()

    # ---- MQTT CONNECT rules
    def test_mqtt_connect_rules(self):
        sec = "testDeviceSecret456"
        before = self.device("fixed")["connectCount"]
        for kw in (dict(tls=True), dict(tls=False), dict(method="hmacsha1"), dict(method="hmacmd5"),
                   dict(ts=None), dict(cid=PK + ".fixed", extra=",_v=sdk-c-4.2.0,_ss=1,ext=3"),
                   dict(keepalive=30), dict(keepalive=1200)):
            m, rc = self.dev_connect("fixed", sec, **kw)
            m.close()
            self.assertEqual(rc, 0, kw)
        self.assertEqual(self.device("fixed")["connectCount"], before + 8)
        refused = (
            (dict(secret="wrongSecret"), 5),
            (dict(keepalive=29), 3),
            (dict(keepalive=1201), 3),
            (dict(keepalive=0), 3),
            (dict(username="fixed"), 4),                    # not <DN>&<PK>
            (dict(username="%s&fixed" % PK), 5),            # PK and DN swapped
            (dict(tls=False, extra=",securemode=2"), 3),    # duplicate key: securemode now 2 on TCP
            (dict(method="hmacsha512"), 3),
            (dict(cid="x" * 65), 3),
        )
        for kw, want in refused:
            secret = kw.pop("secret", sec)
            if kw.get("method") == "hmacsha512":
                m = self.mqtt()
                rc = m.connect("fixed|securemode=2,signmethod=hmacsha512|", "fixed&" + PK, "00")
            else:
                m, rc = self.dev_connect("fixed", secret, **kw)
            self.assertEqual(rc, want, kw)
            self.assertTrue(m.closed_within(3), "refused session must be closed: %s" % kw)
            m.close()
        self.assertEqual(self.device("fixed")["lastConnack"], 3)
        m = self.mqtt()   # clientId without the |...| part
        self.assertEqual(m.connect("fixed", "fixed&" + PK, "00"), 3)
        m.close()
        m = self.mqtt()   # no password
        self.assertEqual(m.connect("fixed|securemode=2,signmethod=hmacsha256|", "fixed&" + PK, None), 4)
        m.close()

    def test_mqtt_kick_same_credentials(self):
        self.ctl("add_device", productKey=PK, deviceName="kick", deviceSecret="kickSecret")
        a, rc = self.dev_connect("kick", "kickSecret")
        self.assertEqual(rc, 0)
        b, rc = self.dev_connect("kick", "kickSecret")
        self.assertEqual(rc, 0)
        try:
            self.assertTrue(a.closed_within(3), "earlier session must be kicked")
            b.send(0xC0, b"")
            self.assertEqual(b.packet()[0], 13)   # PINGRESP: the newer one lives on
            d = self.device("kick")
            self.assertEqual((d["connected"], d["connectCount"]), (1, 2))
        finally:
            a.close()
            b.close()

    def test_mqtt_register_push(self):
        dn = "mqreg1"

        def reg(tls=True, auth="register", sm="2", secret=PS):
            m = self.mqtt(tls)
            rc = m.connect("%s.%s|random=4242,authType=%s,securemode=%s,signmethod=hmacsha256|"
                           % (dn, PK, auth, sm), "%s&%s" % (dn, PK),
                           reg_sign("hmacsha256", secret, PK, dn, "4242"), keepalive=0)
            return m, rc

        m, rc = reg(tls=False)
        m.close()
        self.assertEqual(rc, 3, "registration over plain TCP must be refused")
        m, rc = reg(secret="wrong")
        m.close()
        self.assertEqual(rc, 5)
        m, rc = reg()
        try:
            self.assertEqual(rc, 0)
            topic, payload = m.expect_publish()
            self.assertEqual(topic, "/ext/register")
            secret = json.loads(payload)["deviceSecret"]
            self.assertEqual(self.device(dn)["deviceSecret"], secret)
            m.publish("/sys/%s/%s/thing/event/property/post" % (PK, dn), "{}")
            self.assertTrue(m.closed_within(3), "registration connection must refuse traffic")
        finally:
            m.close()
        n, rc = self.dev_connect(dn, secret)
        n.close()
        self.assertEqual(rc, 0)
        m, rc = reg(sm="-2")
        m.close()
        self.assertEqual(rc, 5, "an activated device cannot register again")

    def test_mqtt_regnwl_and_connwl(self):
        dn = "nwl-dev-1"
        m = self.mqtt()
        rc = m.connect("%s.%s|random=99,authType=regnwl,securemode=-2,signmethod=hmacsha256|" % (dn, PK),
                       "%s&%s" % (dn, PK), reg_sign("hmacsha256", PS, PK, dn, "99"), keepalive=0)
        try:
            self.assertEqual(rc, 0)
            topic, payload = m.expect_publish()
            self.assertEqual(topic, "/ext/regnwl")
            info = json.loads(payload)
            self.assertEqual(sorted(info), ["clientId", "deviceName", "deviceToken", "productKey"])
            self.assertEqual((info["productKey"], info["deviceName"]), (PK, dn))
            m.send(0xE0, b"")
        finally:
            m.close()
        for token, want in (("wrong-token", 5), (info["deviceToken"], 0)):
            c = self.mqtt()
            rc = c.connect("%s|securemode=-2,authType=connwl|" % info["clientId"], "%s&%s" % (dn, PK),
                           token, keepalive=300)
            c.close()
            self.assertEqual(rc, want)
        c = self.mqtt(tls=False)
        rc = c.connect("%s|securemode=-2,authType=connwl|" % info["clientId"], "%s&%s" % (dn, PK),
                       info["deviceToken"], keepalive=300)
        c.close()
        self.assertEqual(rc, 3, "connwl over plain TCP must be refused")
        self.assertTrue(self.device(dn)["tokens"][0]["activated"])

    # ---- Alink
    def test_property_post_and_replies(self):
        dn = "prop1"
        self.ctl("add_device", productKey=PK, deviceName=dn, deviceSecret="propSecret")
        m, rc = self.dev_connect(dn, "propSecret")
        self.assertEqual(rc, 0)
        base = "/sys/%s/%s/" % (PK, dn)
        post = base + "thing/event/property/post"
        try:
            self.assertEqual(m.subscribe([base + "thing/event/+/post_reply",
                                          base + "thing/event/property/post_reply",
                                          "/sys/%s/other/#" % PK, "/sys/+/%s/#" % dn]), [0, 0, 0x80, 0x80])

            def post_and_reply(payload, topic=post):
                m.publish(topic, payload, qos=1, pid=7)
                t, body = m.expect_publish()
                self.assertEqual(t, topic + "_reply")
                return body

            now = int(time.time() * 1000)
            body = post_and_reply({"id": "1", "version": "1.0", "sys": {"ack": 1},
                                   "params": {"temp": 23.5, "Power": {"value": "on", "time": now}},
                                   "method": "thing.event.property.post"})
            self.assertEqual(body, b'{"code":200,"data":{},"id":"1","message":"success","version":"1.0"}')
            self.assertEqual(json.loads(post_and_reply(b"not json"))["code"], 6207)
            far = now + 25 * 3600 * 1000
            self.assertEqual(json.loads(post_and_reply(
                {"id": "2", "version": "1.0", "params": {"temp": {"value": 1.0, "time": far}}}))["code"], 460)
            self.assertEqual(json.loads(post_and_reply(
                {"id": 3, "version": "1.0", "params": {"temp": 1.0}}))["code"], 460)
            self.assertEqual(json.loads(post_and_reply(
                {"id": "4", "version": "1.1", "params": {"temp": 1.0}}))["code"], 460)
            self.assertEqual(json.loads(post_and_reply(
                {"id": "5", "version": "1.0", "params": {}}))["code"], 460)
            self.ctl("inject_reply", productKey=PK, deviceName=dn, code=429, count=2, kind="property")
            codes = [json.loads(post_and_reply({"id": str(10 + i), "version": "1.0",
                                                "params": {"hum": 40 + i}}))["code"] for i in range(3)]
            self.assertEqual(codes, [429, 429, 200])
            ev = post_and_reply({"id": "20", "version": "1.0", "params": {"value": {"level": 2}, "time": now},
                                 "method": "thing.event.alarm.post"}, topic=base + "thing/event/alarm/post")
            self.assertEqual(json.loads(ev)["code"], 200)
            m.publish(post, {"id": "21", "version": "1.0", "sys": {"ack": 0}, "params": {"temp": 1.5}})
            m.send(0xC0, b"")
            self.assertEqual(m.packet()[0], 13, "ack=0 must get no reply")
            props = self.ctl("properties", productKey=PK, deviceName=dn)["properties"]
            self.assertEqual([(p["name"], p["value"], p["id"]) for p in props],
                             [("temp", 23.5, "1"), ("Power", "on", "1"), ("hum", 42, "12"),
                              ("temp", 1.5, "21")])
            self.assertEqual(props[1]["time"], now)
            events = self.ctl("events", productKey=PK, deviceName=dn)["events"]
            self.assertEqual([(e["event"], e["id"]) for e in events], [("alarm", "20")])
            # a thing model: float needs a decimal point
            self.ctl("set_product", productKey=PK, schema={"temp": "float", "hum": "int", "Power": "text"})
            try:
                self.assertEqual(json.loads(post_and_reply(
                    {"id": "30", "version": "1.0", "params": {"temp": 10}}))["code"], 460)
                self.assertEqual(json.loads(post_and_reply(
                    {"id": "31", "version": "1.0", "params": {"temp": 10.0, "hum": 3}}))["code"], 200)
            finally:
                self.ctl("set_product", productKey=PK, schema=None)
            # ACL: publishing as another device closes the connection
            m.publish("/sys/%s/other/thing/event/property/post" % PK, "{}")
            self.assertTrue(m.closed_within(3))
        finally:
            m.close()

    def test_event_post_forms(self):
        """Both forms of an event post's params are accepted and recorded alike."""
        dn = "evt1"
        self.ctl("add_device", productKey=PK, deviceName=dn, deviceSecret="evtSecret")
        m, rc = self.dev_connect(dn, "evtSecret")
        self.assertEqual(rc, 0)
        base = "/sys/%s/%s/" % (PK, dn)
        topic = base + "thing/event/alarm/post"
        try:
            self.assertEqual(m.subscribe([base + "thing/event/+/post_reply"]), [0])

            def post(params, mid):
                m.publish(topic, {"id": mid, "version": "1.0", "params": params,
                                  "method": "thing.event.alarm.post"}, qos=1, pid=9)
                t, body = m.expect_publish()
                self.assertEqual(t, topic + "_reply")
                return json.loads(body)["code"]

            now = int(time.time() * 1000)
            # the documented form, the SDKs' form, an event without outputs, outputs named
            # value (not an object) and time
            self.assertEqual(post({"value": {"level": 2, "src": "MQ2"}, "time": now}, "1"), 200)
            self.assertEqual(post({"level": 2, "src": "MQ2"}, "2"), 200)
            self.assertEqual(post({}, "3"), 200)
            self.assertEqual(post({"value": 3, "time": "noon"}, "4"), 200)
            # the documented form with a bad time is refused
            self.assertEqual(post({"value": {"level": 2}, "time": "noon"}, "5"), 460)
            self.assertEqual(post({"value": {"level": 2}, "time": now + 25 * 3600 * 1000}, "6"),
                             460)
            self.assertEqual(post([1, 2], "7"), 460)
            events = self.ctl("events", productKey=PK, deviceName=dn)["events"]
            self.assertEqual([(e["id"], e["form"], e["outputs"], e["time"]) for e in events],
                             [("1", "value-time", {"level": 2, "src": "MQ2"}, now),
                              ("2", "outputs", {"level": 2, "src": "MQ2"}, None),
                              ("3", "outputs", {}, None),
                              ("4", "outputs", {"value": 3, "time": "noon"}, None)])
            self.assertEqual(events[1]["params"], {"level": 2, "src": "MQ2"})
        finally:
            m.close()

    def test_thing_model(self):   # --thing-model with the TSL of docs/protocols/aliyun.md §9
        dn = "tsl1"
        m, rc = self.dev_connect(dn, "tslSecret", pk=MPK)
        self.assertEqual(rc, 0)
        base = "/sys/%s/%s/" % (MPK, dn)
        post = base + "thing/event/property/post"
        n = [100]
        try:
            self.assertEqual(m.subscribe([base + "thing/event/+/post_reply"]), [0])

            def send(params, topic=post):
                n[0] += 1
                m.publish(topic, {"id": str(n[0]), "version": "1.0", "params": params}, qos=1, pid=9)
                t, body = m.expect_publish()
                self.assertEqual(t, topic + "_reply")
                return json.loads(body)

            def violation(since, identifier):
                return self.ctl("wait", since=since, timeout=5, match={
                    "ev": "thing_model_violation", "deviceName": dn, "identifier": identifier})["event"]

            models = self.ctl("thing_model")["models"]
            self.assertEqual([(x["product"], x["platform"]) for x in models], [(MPK, "aliyun")])
            now = int(time.time() * 1000)
            # a valid post: float with a decimal point, int, bool 0/1, enum key, {value,time}
            r = send({"MQ2": 30.5, "MQ135": 12, "Buzzer": 1, "WorkMode": 2,
                      "DHT11_T": {"value": -5.5, "time": now}})
            self.assertEqual((r["code"], r["message"]), (200, "success"))
            self.assertEqual(send({"Buzzer": 0})["code"], 200)
            # bool is the integer 0 or 1 (docs/protocols/aliyun.md §5), never true/false
            for bad in (True, False):
                seq = self.ctl("health")["seq"]
                r = send({"Buzzer": bad, "MQ135": 13})
                self.assertEqual(r["code"], 460, r)
                self.assertIn("tsl check: Buzzer value %s" % json.dumps(bad), r["message"])
                v = violation(seq, "Buzzer")
                self.assertEqual((v["check"], v["kind"], v["value"], v["id"], v["code"]),
                                 ("type", "property", bad, str(n[0]), 460))
            # out of [min,max]; unknown identifier; wrong JSON type; a float without the point
            for params, ident, check in (({"DHT11_H": 101}, "DHT11_H", "range"),
                                         ({"MQ2": 10000.5}, "MQ2", "range"),
                                         ({"WorkMode": 3}, "WorkMode", "range"),
                                         ({"CO2": 1}, "CO2", "unknown"),
                                         ({"MQ135": "12"}, "MQ135", "type"),
                                         ({"MQ135": 12.5}, "MQ135", "type"),
                                         ({"MQ2": 30}, "MQ2", "type")):
                seq = self.ctl("health")["seq"]
                self.assertEqual(send(params)["code"], 460, params)
                self.assertEqual(violation(seq, ident)["check"], check, params)
            self.assertIn("out of range:[0,100]", self.ctl(
                "violations", productKey=MPK, deviceName=dn, identifier="DHT11_H")["violations"][0]["reason"])
            # events: the {value,time} form and the outputs directly in params
            gas = base + "thing/event/GasAlarm/post"
            self.assertEqual(send({"value": {"GasType": "CO", "Concentration": 12.5}, "time": now},
                                  gas)["code"], 200)
            self.assertEqual(send({"GasType": "CH4", "Concentration": 3.0}, gas)["code"], 200)
            seq = self.ctl("health")["seq"]
            self.assertEqual(send({"GasType": "x" * 17, "Concentration": 1.0}, gas)["code"], 460)
            v = violation(seq, "GasType")
            self.assertEqual((v["check"], v["kind"], v["event"]), ("length", "event", "GasAlarm"))
            seq = self.ctl("health")["seq"]
            self.assertEqual(send({"value": {}}, base + "thing/event/Nope/post")["code"], 460)
            self.assertEqual(violation(seq, "Nope")["check"], "unknown")
            # nothing refused was stored
            props = self.ctl("properties", productKey=MPK, deviceName=dn)["properties"]
            self.assertEqual([(p["name"], p["value"]) for p in props],
                             [("MQ2", 30.5), ("MQ135", 12), ("Buzzer", 1), ("WorkMode", 2),
                              ("DHT11_T", -5.5), ("Buzzer", 0)])
            self.assertEqual(len(self.ctl("events", productKey=MPK, deviceName=dn)["events"]), 2)
            self.assertEqual(self.device(dn, pk=MPK)["violations"], 11)
            # the control API: drop the model (true is then taken), load it again from the file
            self.ctl("thing_model", productKey=MPK, clear=True)
            self.assertEqual(send({"Buzzer": True})["code"], 200)
            out = self.ctl("thing_model", file=TSL)
            self.assertEqual(out["models"][0]["events"], {"GasAlarm": "alert"})
            self.assertEqual(send({"Buzzer": True})["code"], 460)
            bad = os.path.join(self.dir, "bad-tsl.json")
            with open(bad, "w") as f:
                f.write('{"profile": {"productKey": "x"},\n "properties": [,]}')
            err = self.ctl("thing_model", expect_ok=False, file=bad)
            self.assertFalse(err["ok"])
            self.assertIn(bad + ":2:", err["error"])
            self.assertFalse(self.ctl("thing_model", expect_ok=False, file=os.path.join(
                HERE, "..", "data", "models", "tencent-template.json"))["ok"])
        finally:
            m.close()

    def test_downlinks(self):
        dn = "dl1"
        self.ctl("add_device", productKey=PK, deviceName=dn, deviceSecret="dlSecret")
        m, rc = self.dev_connect(dn, "dlSecret")
        self.assertEqual(rc, 0)
        base = "/sys/%s/%s/" % (PK, dn)
        try:
            self.assertEqual(m.subscribe([base + "thing/service/#", base + "rrpc/request/+"]), [0, 0])
            out = self.ctl("property_set", productKey=PK, deviceName=dn, params={"LightSwitch": 1})
            self.assertEqual(len(out["deliveredTo"]), 1)
            topic, payload = m.expect_publish()
            self.assertEqual(topic, base + "thing/service/property/set")
            req = json.loads(payload)
            self.assertEqual(req, {"id": out["id"], "version": "1.0", "params": {"LightSwitch": 1},
                                   "method": "thing.service.property.set"})
            m.publish(topic + "_reply", {"id": req["id"], "code": 200, "data": {}})
            ev = self.ctl("wait", match={"ev": "downlink_reply", "deviceName": dn, "id": req["id"]},
                          timeout=5)["event"]
            self.assertEqual((ev["code"], ev["matched"], ev["problems"]), (200, True, []))
            self.assertLess(ev["latencyMs"], 8000)
            reps = self.ctl("replies", productKey=PK, deviceName=dn)["replies"]
            self.assertEqual(reps[-1]["kind"], "property_set")
            # async service
            out = self.ctl("service_call", productKey=PK, deviceName=dn, service="reboot", params={"delay": 1})
            topic, payload = m.expect_publish()
            self.assertEqual(topic, base + "thing/service/reboot")
            self.assertEqual(json.loads(payload)["method"], "thing.service.reboot")
            m.publish(topic + "_reply", {"id": out["id"], "code": 200, "data": {"ok": 1}})
            ev = self.ctl("wait", match={"ev": "downlink_reply", "deviceName": dn, "id": out["id"]},
                          timeout=5)["event"]
            self.assertEqual((ev["kind"], ev["data"]), ("service", {"ok": 1}))
            # RRPC: the control call blocks (wait) until the device answers
            res = {}
            th = threading.Thread(target=lambda: res.update(self.ctl(
                "rrpc", productKey=PK, deviceName=dn, payload={"q": "ping"}, wait=8)))
            th.start()
            topic, payload = m.expect_publish()
            self.assertTrue(topic.startswith(base + "rrpc/request/"), topic)
            m.publish(topic.replace("/rrpc/request/", "/rrpc/response/"), b"pong")
            th.join(10)
            self.assertFalse(res["timedOut"])
            self.assertEqual(res["reply"]["payload"], "pong")
            self.assertLess(res["reply"]["latencyMs"], 8000)
            # not subscribed -> not delivered
            m.send(0xA2, (5).to_bytes(2, "big") + _s(base + "thing/service/#"))
            self.assertEqual(m.packet()[0], 11)
            self.assertEqual(self.ctl("property_set", productKey=PK, deviceName=dn,
                                      params={"x": 1})["deliveredTo"], [])
        finally:
            m.close()

    def test_control_and_log(self):
        out = self.ctl("nonexistent", expect_ok=False)
        self.assertFalse(out["ok"])
        self.assertFalse(self.ctl("https_fail", expect_ok=False, mode="bogus")["ok"])
        self.assertFalse(self.ctl("device", expect_ok=False, productKey=PK, deviceName="nope")["ok"])
        with open(os.path.join(self.dir, "events.jsonl")) as f:
            first = json.loads(f.readline())
        self.assertIn("seq", first)
        log = self.ctl("log", ev="ready")["events"]
        self.assertEqual(log[0]["ports"]["mqtts"], self.ports["mqtts"])


# ---------------------------------------------------------------------------------------------
# Gateways and sub-devices (docs/protocols/gateway.md)

# §G19: sub-device 01 of Link SDK 4.1.0 demos/subdev_basic_demo.c
VPK, VDN = "a13FN5TplKq", "subdev_basic_demo_01"
VDS, VPS = "768XBgQwgOakz3K4uhOiLeeh9xjJQx6h", "y7GSILD480lBSsP8"
CID_LS = VPK + "." + VDN
CID_LS4X = CID_LS + "|_ss=1,_v=sdk-c-4.1.0|"
CID_IKE3 = CID_LS + "|_v=sdk-c-3.0.1|"
CID_DOC = VPK + "&" + VDN
# (row, clientId, timestamp, method, output) of the §G19 table, key VDS
G19_SUBDEV = [
    ("A1", CID_LS, "1700000000000", "hmacsha256",
     "EB57255A6E35BDF5016F5BCEFD66B6E9227BA5C85C1F08C0CEF17B48F8292412"),
    ("A2", CID_LS4X, "1700000000000", "hmacsha256",
     "C4299240566A59408578A0A3CE5EEA65A390A9EF140232989C2A59F2CF902866"),
    ("A3", CID_DOC, "1700000000000", "hmacsha256",
     "807C0AFFAA5E4E8AFCDA0DFCEEAB00015CD7C032A85C2837040346E32C4FD278"),
    ("A3-sha1", CID_DOC, "1700000000000", "hmacsha1", "2fbf68c9e45ad2e13a2b52075f41b144adddadfb"),
    ("A3-md5", CID_DOC, "1700000000000", "hmacmd5", "875624717c179c272ea8f04e97a8de06"),
    ("B1", CID_LS, "123456", "hmacsha1", "65fe24dc74d34d277b1e1384b09032e01124f21a"),
    ("B2", CID_IKE3, "123456", "hmacsha1", "6c53aec40ab7a554d0c96025b34c7fbf3c40c2d7"),
    ("B3", CID_LS, "1700000000000", "hmacsha1", "e48173cc5aa355cc5fd20d5e2e2e8eec5c73e3da"),
]
# (row, deviceName, random, output) of §G19 C1/C2, key VPS
G19_PRODUCT_REGISTER = [
    ("C1", VDN, "0123456789ABCDEF0123",
     "8A30BB84A7EE1DD7B6DABBFEE2875A49A47D5D9F5356CFEFFAC308A60EBD46B3"),
    ("C2", "stm32-0001", "00000000000000000000",
     "4D70E9FF2EB5708278159C22BFBF781ACC18AEB454881F91EE362BD937A4D78E"),
]


def subdev_content(cid, dn, pk, ts):
    return "clientId" + cid + "deviceName" + dn + "productKey" + pk + "timestamp" + str(ts)


def subdev_entry(pk, dn, secret, ts=None, method="hmacSha256", cid=None, upper=True,
                 field="signmethod"):
    """A topo/add or login entry signed here (gateway.md §G3) with the independent HMAC."""
    ts = ts if ts is not None else str(int(time.time() * 1000))
    cid = cid or pk + "." + dn
    sign = my_hmac(method.lower(), secret, subdev_content(cid, dn, pk, ts))
    return {"productKey": pk, "deviceName": dn, "clientId": cid, "timestamp": ts,
            field: method, "sign": sign.upper() if upper else sign}


class GatewayVectorTests(unittest.TestCase):
    """docs/protocols/gateway.md §G19 with the independent HMAC and with the cloud's code."""

    def vec_params(self, cid, ts, method, sign):
        return {"productKey": VPK, "deviceName": VDN, "clientId": cid, "timestamp": ts,
                "signMethod": method, "sign": sign, "cleanSession": "true"}

    def test_subdev_sign_vectors(self):
        for row, cid, ts, m, out in G19_SUBDEV:
            content = subdev_content(cid, VDN, VPK, ts)
            p = self.vec_params(cid, ts, m, out)
            self.assertEqual(aliyun_cloud.subdev_sign_content(p), content, row)
            self.assertEqual(my_hmac(m, VDS, content), out.lower(), row)
            self.assertEqual(aliyun_cloud.hmac_hex(m, VDS, content), out.lower(), row)
            for sign in (out.upper(), out.lower()):          # hex in either case (§G3)
                self.assertTrue(aliyun_cloud.sign_ok(m.upper(), VDS, dict(p, sign=sign)), row)
            # a timestamp sent as a JSON number signs as its digits (§G3, [NODE])
            self.assertTrue(aliyun_cloud.sign_ok(m, VDS, dict(p, timestamp=int(ts))), row)

    def test_doc_example_d1(self):
        p = {"productKey": "a1PB5fp1234", "deviceName": "868575026974305",
             "clientId": "868575026974305", "timestamp": 1646277090411, "signmethod": "hmacmd5",
             "sign": "3BA0DFA4C477B40C007D84D30D6466CC"}
        content = "clientId868575026974305deviceName868575026974305productKeya1PB5fp1234" \
                  "timestamp1646277090411"
        self.assertEqual(aliyun_cloud.subdev_sign_content(p), content)
        self.assertEqual(my_hmac("hmacmd5", "1234", content), "3ba0dfa4c477b40c007d84d30d6466cc")
        self.assertTrue(aliyun_cloud.sign_ok("hmacMd5", "1234", p))

    def test_product_register_vectors(self):
        for row, dn, rnd, out in G19_PRODUCT_REGISTER:
            p = {"productKey": VPK, "deviceName": dn, "random": rnd, "signMethod": "hmacSha256",
                 "sign": out}
            content = "deviceName" + dn + "productKey" + VPK + "random" + rnd
            self.assertEqual(aliyun_cloud.subdev_sign_content(p), content, row)
            self.assertEqual(my_hmac("hmacsha256", VPS, content), out.lower(), row)
            self.assertTrue(aliyun_cloud.sign_ok("hmacsha256", VPS, p), row)
            # negative: keyed with the DeviceSecret instead of the ProductSecret
            self.assertFalse(aliyun_cloud.sign_ok("hmacsha256", VDS, p), row)

    def test_negative_vectors(self):
        a1, a2 = G19_SUBDEV[0], G19_SUBDEV[1]
        ok = self.vec_params(a1[1], a1[2], "hmacSha256", a1[4])
        bad = {
            # the clientId sent with its |...| suffix, the sign over the bare one
            "suffix not signed": dict(ok, clientId=a2[1]),
            "ProductSecret as the key": dict(ok, sign=my_hmac("hmacsha256", VPS, subdev_content(
                a1[1], VDN, VPK, a1[2]))),
            "another timestamp": dict(ok, timestamp="1700000000001"),
            "separators in the content": dict(ok, sign=my_hmac(
                "hmacsha256", VDS, "clientId=%s&deviceName=%s&productKey=%s&timestamp=%s"
                % (a1[1], VDN, VPK, a1[2]))),
            "another method than the sign's": dict(ok, signMethod="hmacSha1"),
            "the hex of the hex": dict(ok, sign=hashlib.sha256(a1[4].encode()).hexdigest()),
        }
        self.assertTrue(aliyun_cloud.sign_ok("hmacsha256", VDS, ok))
        for why, p in bad.items():
            m = p["signMethod"]
            self.assertFalse(aliyun_cloud.sign_ok(m, VDS, p), why)


GPK, GDN, GDS = "a1GateWay01", "pi-gw", "gwSecret0001"
SPK, SPS = "a1SubProd001", "subProductSecret"


class GatewayTests(CloudProcess, unittest.TestCase):
    PRODUCTS = {"products": [
        {"productKey": GPK, "productSecret": "gwProductSecret", "gateway": True,
         "devices": [{"deviceName": GDN, "deviceSecret": GDS},
                     {"deviceName": "gw2", "deviceSecret": "gw2Secret"}]},
        {"productKey": SPK, "productSecret": SPS, "dynamicRegistration": True,
         "devices": [{"deviceName": "n1", "deviceSecret": "n1Secret"},
                     {"deviceName": "n2", "deviceSecret": "n2Secret"}, "n3", "n4",
                     {"deviceName": "lim1", "deviceSecret": "lim1Secret"},
                     {"deviceName": "lim2", "deviceSecret": "lim2Secret"},
                     {"deviceName": "direct1", "deviceSecret": "d1Secret"}]},
        {"productKey": VPK, "productSecret": VPS, "dynamicRegistration": True,
         "devices": [{"deviceName": VDN, "deviceSecret": VDS}]}],
        "settings": {"qps_limit": 0}}   # these tests send more than 30 requests a second
    next_id = 100

    def gw_connect(self, dn=GDN, secret=GDS):
        m, rc = self.dev_connect(dn, secret, pk=GPK)
        self.assertEqual(rc, 0)
        self.assertEqual(m.subscribe(["/sys/%s/%s/thing/#" % (GPK, dn),
                                      "/ext/session/%s/%s/combine/#" % (GPK, dn),
                                      "/ext/error/%s/%s" % (GPK, dn)]), [0, 0, 0])
        return m

    def req(self, m, path, params, qos=0, dn=GDN, i=None, **extra):
        """A gateway request on /sys/... or (path "combine/...") /ext/session/...; its reply."""
        base = ("/ext/session/%s/%s/" if path.startswith("combine/") else "/sys/%s/%s/") % (GPK, dn)
        if i is None:
            GatewayTests.next_id += 1
            i = str(GatewayTests.next_id)
        body = {"id": i, "version": "1.0", "params": params}
        body.update(extra)
        m.publish(base + path, body, qos=qos, pid=7)
        r = m.expect_topic(base + path + "_reply")
        self.assertEqual(r["id"], i)
        return r

    def login(self, m, sub_dn, secret, pk=SPK, gw=GDN):
        e = subdev_entry(pk, sub_dn, secret, field="signMethod")
        e["cleanSession"] = "true"
        return self.req(m, "combine/login", e, dn=gw)

    def sub(self, dn, pk=SPK):
        return self.ctl("subdevices", productKey=pk, deviceName=dn, all=True)["subDevices"][0]

    def post(self, m, dn, value=1, pk=SPK):
        m.publish("/sys/%s/%s/thing/event/property/post" % (pk, dn),
                  {"id": "5", "version": "1.0", "params": {"temp": value}})

    def test_vectors_live(self):
        """§G19 rows through the cloud (timestamps of 2023 and uptimes: freshness off), the
        negative ones refused, then the default freshness window refusing them."""
        self.ctl("settings", subdev_timestamp_skew_ms=0)
        m = self.gw_connect("gw2", "gw2Secret")
        try:
            def entry(cid, ts, method, sign, field="signmethod"):
                return {"productKey": VPK, "deviceName": VDN, "clientId": cid, "timestamp": ts,
                        field: method, "sign": sign}
            for row, cid, ts, meth, out in G19_SUBDEV:
                r = self.req(m, "thing/topo/add", [entry(cid, ts, meth, out)], dn="gw2")
                self.assertEqual((r["code"], r["data"]), (200, [{"productKey": VPK,
                                                                 "deviceName": VDN}]), row)
                r = self.req(m, "combine/login", dict(entry(cid, ts, meth, out, "signMethod"),
                                                      cleanSession="true"), dn="gw2")
                self.assertEqual((r["code"], r["data"]),
                                 (200, {"productKey": VPK, "deviceName": VDN}), row)
            # [LS41] batch_login: signMethod once at the list level (A1, A2)
            r = self.req(m, "combine/batch_login", {"signMethod": "hmacSha256", "deviceList": [
                {k: v for k, v in entry(CID_LS4X, "1700000000000", None, G19_SUBDEV[1][4]).items()
                 if v is not None}]}, dn="gw2")
            self.assertEqual(r["code"], 200, r)
            # timestamp as a JSON number
            r = self.req(m, "thing/topo/add", [entry(CID_LS, 1700000000000, "hmacSha256",
                                                     G19_SUBDEV[0][4])], dn="gw2")
            self.assertEqual(r["code"], 200, r)
            # negative: A1's sign sent with A2's clientId
            r = self.req(m, "thing/topo/add", [entry(CID_LS4X, "1700000000000", "hmacSha256",
                                                     G19_SUBDEV[0][4])], dn="gw2")
            self.assertEqual(r["code"], 401, r)
            r = self.req(m, "combine/login", entry(CID_LS4X, "1700000000000", "hmacSha256",
                                                   G19_SUBDEV[0][4], "signMethod"), dn="gw2")
            self.assertEqual(r["code"], 6287, r)
            # §G19 C2 through product_register (stm32-0001 is not pre-registered)
            row, dn, rnd, out = G19_PRODUCT_REGISTER[1]
            pr = {"productKey": VPK, "deviceName": dn, "random": rnd, "signMethod": "hmacSha256",
                  "sign": out}
            r = self.req(m, "thing/proxy/provisioning/product_register",
                         {"proxieds": [dict(pr, random=rnd[:-1] + "1")]}, dn="gw2")
            self.assertEqual(r["code"], 401, r)
            r = self.req(m, "thing/proxy/provisioning/product_register", {"proxieds": [pr]},
                         dn="gw2")
            self.assertEqual(r["code"], 200, r)
            self.assertEqual(r["data"][0]["deviceName"], dn)
            self.assertEqual(len(r["data"][0]["deviceSecret"]), 32)
            self.assertEqual(self.sub(dn, VPK)["secretSource"], "product_register")
            # the default window refuses a stale timestamp with 460
            self.ctl("settings", subdev_timestamp_skew_ms=900000)
            r = self.req(m, "thing/topo/add", [entry(CID_LS, "1700000000000", "hmacSha256",
                                                     G19_SUBDEV[0][4])], dn="gw2")
            self.assertEqual(r["code"], 460, r)
            self.assertIn("stale", r["message"])
            r = self.req(m, "combine/login", entry(CID_IKE3, "123456", "hmacSha1",
                                                   G19_SUBDEV[6][4], "signMethod"), dn="gw2")
            self.assertEqual(r["code"], 460, r)
        finally:
            self.ctl("settings", subdev_timestamp_skew_ms=900000)
            m.close()

    def test_gateway_flow(self):
        m = self.gw_connect()
        ext = "/ext/error/%s/%s" % (GPK, GDN)
        change = "/sys/%s/%s/thing/topo/change" % (GPK, GDN)
        try:
            # data before anything: 520 on /ext/error (§G10, §G11)
            self.post(m, "n1")
            e = m.expect_topic(ext)
            self.assertEqual((e["code"], e["data"]), (520, {"productKey": SPK, "deviceName": "n1"}))
            ev = self.ctl("wait", match={"ev": "subdev_refused", "deviceName": "n1"})["event"]
            self.assertEqual((ev["code"], ev["reason"]), (520, "no topology with this gateway"))
            # sub/register: pre-registered names get a DeviceSecret (§G13)
            r = self.req(m, "thing/sub/register", [{"productKey": SPK, "deviceName": "n3"},
                                                   {"productKey": SPK, "deviceName": "n4"}])
            self.assertEqual(r["code"], 200, r)
            secrets_ = {x["deviceName"]: x["deviceSecret"] for x in r["data"]}
            self.assertEqual(sorted(secrets_), ["n3", "n4"])
            self.assertTrue(all(x["iotId"] for x in r["data"]))
            self.assertEqual(self.sub("n3")["secretSource"], "sub_register")
            self.assertEqual(self.req(m, "thing/sub/register", [
                {"productKey": SPK, "deviceName": "zz"}])["code"], 6100)
            self.assertEqual(self.req(m, "thing/sub/register", [
                {"productKey": GPK, "deviceName": GDN}])["code"], 6402)
            self.assertEqual(self.req(m, "thing/sub/register", {"productKey": SPK})["code"], 460)
            # topo/add (§G4): limits, unknown, bad sign, stale, itself; all or nothing
            n1 = subdev_entry(SPK, "n1", "n1Secret")
            r = self.req(m, "thing/topo/add", [n1] * 31)
            self.assertEqual(r["code"], 460)
            r = self.req(m, "thing/topo/add", [n1, subdev_entry(SPK, "nope", "x")])
            self.assertEqual(r["code"], 6100)
            self.assertEqual([x["deviceName"] for x in r["data"]], ["nope"])
            self.assertFalse(self.sub("n1")["topology"])
            self.assertEqual(self.req(m, "thing/topo/add", [subdev_entry(SPK, "n1", "wrong")])["code"],
                             401)
            self.assertEqual(self.req(m, "thing/topo/add", [
                subdev_entry(SPK, "n1", "n1Secret", ts="1700000000000")])["code"], 460)
            self.assertEqual(self.req(m, "thing/topo/add", [
                subdev_entry(GPK, GDN, GDS)])["code"], 6402)
            self.assertEqual(self.req(m, "thing/topo/add", [dict(n1, sign=None)])["code"], 460)
            self.assertEqual(self.req(m, "thing/topo/add", [n1], method="thing.topo.get")["code"],
                             6300)
            r = self.req(m, "thing/topo/add", [n1, subdev_entry(SPK, "n2", "n2Secret", upper=False),
                                               subdev_entry(SPK, "n3", secrets_["n3"],
                                                            method="hmacMd5")], qos=1)
            self.assertEqual((r["code"], len(r["data"])), (200, 3), r)
            self.assertEqual(self.sub("n1")["gwDeviceName"], GDN)
            # subscriptions: the topology's sub-devices only
            self.assertEqual(m.subscribe(["/sys/%s/n%d/thing/#" % (SPK, k) for k in (1, 2, 3)],
                                         pid=2), [0, 0, 0])
            self.assertEqual(m.subscribe(["/sys/%s/n4/thing/#" % SPK], pid=3), [0x80])
            # still not logged in: 520
            self.post(m, "n1")
            self.assertEqual(m.expect_topic(ext)["code"], 520)
            # batch_login (§G8): QoS 1 refused, > 50 refused, all or nothing
            ls = [subdev_entry(SPK, dn, sec, field="signMethod") for dn, sec in
                  (("n1", "n1Secret"), ("n2", "n2Secret"), ("n3", secrets_["n3"]))]
            self.assertEqual(self.req(m, "combine/batch_login", {"deviceList": ls}, qos=1)["code"],
                             460)
            self.assertEqual(self.req(m, "combine/batch_login", {"deviceList": ls * 17})["code"],
                             460)
            r = self.req(m, "combine/batch_login",
                         {"deviceList": [ls[0], dict(ls[1], sign="00" * 32)]})
            self.assertEqual(r["code"], 6287)
            self.assertEqual([x["deviceName"] for x in r["data"]], ["n2"])
            self.assertFalse(self.sub("n1")["loggedIn"])
            listed = [{k: v for k, v in x.items() if k != "signMethod"} for x in ls]
            r = self.req(m, "combine/batch_login", {"signMethod": "hmacSha256",
                                                    "deviceList": listed})
            self.assertEqual((r["code"], [x["deviceName"] for x in r["data"]]),
                             (200, ["n1", "n2", "n3"]), r)
            self.assertTrue(self.sub("n1")["loggedIn"])
            self.ctl("wait", match={"ev": "subdev_login", "deviceName": "n3", "code": 200,
                                    "batch": True})
            # data on the sub-device's own topics (§G11)
            self.post(m, "n1", 21.5)
            r = m.expect_topic("/sys/%s/n1/thing/event/property/post_reply" % SPK)
            self.assertEqual(r["code"], 200)
            ev = self.ctl("wait", match={"ev": "alink_post", "deviceName": "n1", "code": 200})["event"]
            self.assertEqual(ev["gwDeviceName"], GDN)
            self.assertEqual(self.ctl("properties", productKey=SPK, deviceName="n1")
                             ["properties"][-1]["value"], 21.5)
            # property set, service call and RRPC to sub-devices over the gateway session
            out = self.ctl("property_set", productKey=SPK, deviceName="n2", params={"Power": 1})
            req = m.expect_topic("/sys/%s/n2/thing/service/property/set" % SPK)
            self.assertEqual(req["params"], {"Power": 1})
            m.publish("/sys/%s/n2/thing/service/property/set_reply" % SPK,
                      {"id": req["id"], "code": 200, "data": {}})
            ev = self.ctl("wait", match={"ev": "downlink_reply", "deviceName": "n2",
                                         "id": out["id"]})["event"]
            self.assertTrue(ev["matched"])
            out = self.ctl("service_call", productKey=SPK, deviceName="n3", service="reboot")
            req = m.expect_topic("/sys/%s/n3/thing/service/reboot" % SPK)
            m.publish("/sys/%s/n3/thing/service/reboot_reply" % SPK,
                      {"id": req["id"], "code": 200, "data": {}})
            self.ctl("wait", match={"ev": "downlink_reply", "deviceName": "n3", "id": out["id"],
                                    "matched": True})
            self.assertEqual(m.subscribe(["/sys/%s/n1/rrpc/request/+" % SPK], pid=4), [0])
            res = {}
            th = threading.Thread(target=lambda: res.update(self.ctl(
                "rrpc", productKey=SPK, deviceName="n1", payload="ping", wait=8)))
            th.start()
            t, p = m.expect_publish()
            while not t.startswith("/sys/%s/n1/rrpc/request/" % SPK):
                m.backlog.append((t, p))
                t, p = m.expect_publish()
            m.publish(t.replace("/rrpc/request/", "/rrpc/response/"), b"pong")
            th.join(10)
            self.assertEqual((res["timedOut"], res["reply"]["payload"]), (False, "pong"))
            # topo/get with the [LS41] quirks: params "{}" and id ""
            r = self.req(m, "thing/topo/get", "{}", i="")
            self.assertEqual(sorted(x["deviceName"] for x in r["data"]), ["n1", "n2", "n3"])
            # logout, then data refused, then login again (§G9, §G7)
            r = self.req(m, "combine/logout", {"productKey": SPK, "deviceName": "n2"})
            self.assertEqual((r["code"], r["data"]), (200, {"productKey": SPK, "deviceName": "n2"}))
            self.assertEqual(self.req(m, "combine/logout",
                                      {"productKey": SPK, "deviceName": "n2"})["code"], 520)
            self.post(m, "n2")
            self.assertEqual(m.expect_topic(ext)["data"]["deviceName"], "n2")
            self.assertEqual(self.login(m, "n2", "n2Secret")["code"], 200)
            # disable: thing/disable, topo/change 8, /ext/error 522; login refused (§G12, §G6)
            out = self.ctl("disable_subdev", productKey=SPK, deviceName="n2")
            self.assertEqual(out["downlink"]["deliveredTo"], out["extError"]["deliveredTo"])
            req = m.expect_topic("/sys/%s/n2/thing/disable" % SPK)
            self.assertEqual(req["method"], "thing.disable")
            self.assertEqual(m.expect_topic(change)["params"],
                             {"status": 8, "subList": [{"productKey": SPK, "deviceName": "n2"}]})
            self.assertEqual(m.expect_topic(ext)["code"], 522)
            m.publish("/sys/%s/n2/thing/disable_reply" % SPK, {"id": req["id"], "code": 200,
                                                                "data": {}})
            self.ctl("wait", match={"ev": "downlink_reply", "deviceName": "n2", "id": req["id"],
                                    "matched": True})
            self.assertEqual(self.login(m, "n2", "n2Secret")["code"], 522)
            self.ctl("enable_subdev", productKey=SPK, deviceName="n2")
            self.assertEqual(m.expect_topic(change)["params"]["status"], 2)
            self.assertEqual(self.login(m, "n2", "n2Secret")["code"], 200)
            # delete: topo/change 1, /ext/error 521; login refused with 521
            self.ctl("delete_subdev", productKey=SPK, deviceName="n3")
            self.assertEqual(m.expect_topic("/sys/%s/n3/thing/delete" % SPK)["method"], "thing.delete")
            self.assertEqual(m.expect_topic(change)["params"]["status"], 1)
            self.assertEqual(m.expect_topic(ext)["code"], 521)
            self.assertEqual(self.login(m, "n3", secrets_["n3"])["code"], 521)
            top = self.ctl("topology", productKey=GPK, deviceName=GDN)
            self.assertEqual(sorted(x["deviceName"] for x in top["subDevices"]), ["n1", "n2"])
            self.assertEqual(top["loggedIn"], ["%s/n1" % SPK, "%s/n2" % SPK])
            # /ext/error 6401 pushed: logged out, topology dropped; add again, log in again
            self.ctl("ext_error", productKey=SPK, deviceName="n1", code=6401)
            self.assertEqual(m.expect_topic(ext)["code"], 6401)
            self.assertEqual(self.login(m, "n1", "n1Secret")["code"], 6401)
            self.assertEqual(self.req(m, "thing/topo/add", [subdev_entry(SPK, "n1", "n1Secret")])
                             ["code"], 200)
            self.assertEqual(self.login(m, "n1", "n1Secret")["code"], 200)
            st = self.sub("n1")
            self.assertEqual((st["topoAddCount"], st["loginCount"], st["loggedIn"]), (2, 2, True))
            # topo/delete (§G5): logs the sub-device out; login then gets 6401
            r = self.req(m, "thing/topo/delete", [{"productKey": SPK, "deviceName": "n2"}])
            self.assertEqual((r["code"], r["data"]), (200, {}))
            self.ctl("wait", match={"ev": "subdev_logout", "deviceName": "n2", "why": "topo_deleted"})
            self.assertEqual(self.req(m, "thing/topo/delete", [{"productKey": SPK,
                                                               "deviceName": "n2"}])["code"], 6100)
            self.assertEqual(self.login(m, "n2", "n2Secret")["code"], 6401)
        finally:
            m.close()
        # the gateway's session ends: its sub-devices go offline (§G1)
        ev = self.ctl("wait", match={"ev": "subdev_logout", "deviceName": "n1",
                                     "why": "gateway_closed"})["event"]
        self.assertEqual(ev["gwDeviceName"], GDN)
        self.assertFalse(self.sub("n1")["loggedIn"])
        # a new session logs in again without a topology add (what a restart must do)
        before = self.ctl("topology", productKey=GPK, deviceName=GDN)["requests"]
        m = self.gw_connect()
        try:
            self.assertEqual(self.login(m, "n1", "n1Secret")["code"], 200)
            after = self.ctl("topology", productKey=GPK, deviceName=GDN)["requests"]
            self.assertEqual(after.get("topo_add"), before.get("topo_add"))
            self.assertEqual(self.sub("n1")["topoAddCount"], 2)
            dev = self.ctl("device", productKey=SPK, deviceName="n1")
            self.assertTrue(dev["subDevice"]["loggedIn"])
        finally:
            m.close()

    def test_limits_and_refusals(self):
        m = self.gw_connect("gw2", "gw2Secret")
        try:
            lim = [subdev_entry(SPK, dn, dn + "Secret", field="signMethod")
                   for dn in ("lim1", "lim2")]
            r = self.req(m, "thing/topo/add", [subdev_entry(SPK, dn, dn + "Secret")
                                               for dn in ("lim1", "lim2")], dn="gw2")
            self.assertEqual(r["code"], 200)
            self.ctl("settings", batch_login_max=1)
            self.assertEqual(self.req(m, "combine/batch_login", {"deviceList": lim},
                                      dn="gw2")["code"], 460)
            self.ctl("settings", batch_login_max=50, subdev_online_max=1)
            self.assertEqual(self.req(m, "combine/batch_login", {"deviceList": lim},
                                      dn="gw2")["code"], 428)
            self.assertEqual(self.req(m, "combine/login", lim[0], dn="gw2")["code"], 200)
            self.assertEqual(self.req(m, "combine/login", lim[1], dn="gw2")["code"], 428)
            self.ctl("settings", subdev_online_max=2000, subdev_logins_per_min=1)
            self.assertEqual(self.req(m, "combine/login", subdev_entry(
                SPK, "lim1", "lim1Secret", field="signMethod"), dn="gw2")["code"], 429)
            self.ctl("settings", subdev_logins_per_min=0)
            # the older revision's forced logout on combine/logout_reply
            self.ctl("ext_error", productKey=SPK, deviceName="lim1", code=522, on="logout_reply")
            r = m.expect_topic("/ext/session/%s/gw2/combine/logout_reply" % GPK)
            self.assertEqual((r["code"], r["data"]["deviceName"]), (522, "lim1"))
            self.assertFalse(self.sub("lim1")["loggedIn"])
            # product_register without pre-registration; registration works once
            dn = "stm32-0099"
            rnd = "ABCDEF0123456789ABCD"
            pr = {"productKey": SPK, "deviceName": dn, "random": rnd, "signMethod": "hmacsha256",
                  "sign": my_hmac("hmacsha256", SPS, "deviceName%sproductKey%srandom%s"
                                  % (dn, SPK, rnd))}
            r = self.req(m, "thing/proxy/provisioning/product_register", {"proxieds": [pr]},
                         dn="gw2")
            self.assertEqual(r["code"], 200, r)
            sec = r["data"][0]["deviceSecret"]
            self.assertEqual(self.req(m, "thing/topo/add", [subdev_entry(SPK, dn, sec)],
                                      dn="gw2")["code"], 200)
            self.assertEqual(self.login(m, dn, sec, gw="gw2")["code"], 200)
            r = self.req(m, "thing/proxy/provisioning/product_register", {"proxieds": [pr]},
                         dn="gw2")
            self.assertEqual(r["code"], 9409)
            self.assertEqual(self.req(m, "thing/proxy/provisioning/product_register",
                                      {"proxieds": [dict(pr, deviceName="x")]}, dn="gw2")["code"],
                             6280)
            # the gateway may not publish on another device's /ext/session topics (ACL)
        finally:
            self.ctl("settings", batch_login_max=50, subdev_online_max=2000,
                     subdev_logins_per_min=0)
            m.close()
        # a device of a product that is not a gateway product: 460, and no sub-device topics
        d, rc = self.dev_connect("direct1", "d1Secret", pk=SPK)
        self.assertEqual(rc, 0)
        try:
            self.assertEqual(d.subscribe(["/sys/%s/direct1/thing/#" % SPK]), [0])
            d.publish("/sys/%s/direct1/thing/topo/add" % SPK,
                      {"id": "1", "version": "1.0", "params": [subdev_entry(SPK, "n1", "n1Secret")]})
            r = d.expect_topic("/sys/%s/direct1/thing/topo/add_reply" % SPK)
            self.assertEqual(r["code"], 460)
            self.assertEqual(d.subscribe(["/sys/%s/n1/thing/#" % SPK], pid=2), [0x80])
            d.publish("/sys/%s/n1/thing/event/property/post" % SPK, {"id": "1", "version": "1.0",
                                                                     "params": {"t": 1}})
            self.assertTrue(d.closed_within(3))
        finally:
            d.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
