#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Self-test of the Tencent test cloud (tencent_cloud.py), stdlib unittest and the openssl CLI only.

1. The vectors of docs/protocols/tencent.md (§1.2, §2.1, §2.3) are recomputed with an
   HMAC written here from RFC 2104 and with the cloud's own functions. The cloud's pure-Python
   AES-128 is checked against the FIPS-197 known answer, against the payloads of docs/protocols/tencent.md §2.1, §2.3 and
   against `openssl enc -aes-128-cbc`.
2. The cloud is started as a separate process in a temporary directory (CA and server
   certificate made with the openssl CLI) and driven over loopback: HTTPS registration (the
   reply is decrypted here with `openssl enc -d`, not with the cloud's code), MQTT (a minimal
   MQTT 3.1.1 client below) and the control API.
Every socket operation has a timeout; the whole run takes about 10 s.
"""

import base64
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
sys.dont_write_bytecode = True   # keep tests/cloud free of __pycache__
sys.path.insert(0, HERE)
import tencent_cloud  # noqa: E402  (only its pure functions are used directly)
import tcgateway  # noqa: E402

PID = "CS0SLTKSYA"
PS = "testProductSecret123"
PSK1 = "IyXmUW5sU/q1vnb5yzTkeQ=="
PID_AUTO = "AUTOCREATE"
PID_OFF = "NODYNREG00"
PID_CERT = "CERTPROD00"
# the data template of docs/protocols/tencent.md §7, loaded for MPID with --thing-model MPID=FILE
# (its profile names PID, whose simple template the other tests use) and for MPID2 with the
# products file's thingModel
MODEL = os.path.join(HERE, "..", "data", "models", "tencent-template.json")
MPID = "TMODEL0001"
MPID2 = "TMODEL0002"
# gateways (docs/protocols/gateway.md §G15-§G19): a gateway product, a sub-device product, the
# products of the §G19 vectors (T2, T3) and a product not associated with the gateway product
GWPID = "GWPROD0001"
SUBPID = "SUBPROD001"
T2PID, T2DN, T2PSK = "CFCSQ5EAG7", "onlinedev00", "bG9jYWxUZXN0UFNLMDAwMA=="
T3PID, T3DN = "ABCDEFGHIJ", "stm32-0001"
NAPID = "NOTASSOC01"
SUBPSK = "c3ViZGV2aWNlUFNLMDAwMA=="
T4CERT = "-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n"
FAR = "2623045740"   # docs/protocols/tencent.md §1.2 seed expiry (2053)
HOST = "ap-guangzhou.gateway.tencentdevices.com"

TEMPLATE = {
    "properties": {
        "MQ2": {"type": "int", "min": 0, "max": 10000},
        "MQ135": {"type": "int", "min": 0, "max": 10000},
        "MQ4": {"type": "int", "min": 0, "max": 10000},
        "MQ7": {"type": "int", "min": 0, "max": 10000},
        "DHT11_T": {"type": "float", "min": -40, "max": 80},
        "DHT11_H": {"type": "float", "min": 0, "max": 100},
        "power_switch": "bool",
    },
    "events": {"PowerAlarm": {"type": "alert", "params": {"Voltage": "float"}}},
}

# ---------------------------------------------------------------------------------------------
# Independent signing: RFC 2104 HMAC over hashlib's plain digests


def my_hmac(alg, key, msg):
    h = {"hmacsha256": hashlib.sha256, "hmacsha1": hashlib.sha1}[alg]
    key = key.encode() if isinstance(key, str) else key
    msg = msg.encode() if isinstance(msg, str) else msg
    if len(key) > 64:
        key = h(key).digest()
    key = key.ljust(64, b"\0")
    inner = h(bytes(k ^ 0x36 for k in key) + msg).digest()
    return h(bytes(k ^ 0x5C for k in key) + inner).digest()


def password(psk, username, alg="hmacsha256"):
    return my_hmac(alg, base64.b64decode(psk), username).hex() + ";" + alg


def v2_headers(secret, body, host=HOST, alg="hmacsha256", ts=1700000000, nonce=123456):
    hb = (hashlib.sha256 if alg.lower() == "hmacsha256" else hashlib.sha1)(body).hexdigest()
    sts = "POST\n%s\n/device/register\n\n%s\n%d\n%d\n%s" % (host, alg, ts, nonce, hb)
    sig = base64.b64encode(my_hmac(alg.lower(), secret, sts)).decode()
    return {"Content-Type": "application/json; charset=utf-8", "X-TC-Algorithm": alg,
            "X-TC-Timestamp": str(ts), "X-TC-Nonce": str(nonce), "X-TC-Signature": sig}


V1_HEADERS = {"Content-Type": "application/x-www-form-urlencoded",
              "Accept": tencent_cloud.LEGACY_ACCEPT}


def v1_body(secret, pid, dn, nonce=123456, ts=1700000000):
    src = "deviceName=%s&nonce=%d&productId=%s&timestamp=%d" % (dn, nonce, pid, ts)
    sig = base64.b64encode(my_hmac("hmacsha1", secret, src).hex().encode()).decode()
    return json.dumps({"deviceName": dn, "nonce": nonce, "productId": pid, "timestamp": ts,
                       "signature": sig})


def openssl_decrypt(secret, payload_b64):
    """docs/protocols/tencent.md §2.1 with the openssl CLI: AES-128-CBC, key = first 16 bytes of ProductSecret, IV '0'x16,
    no padding removal (zero padding)."""
    r = subprocess.run(["openssl", "enc", "-d", "-aes-128-cbc", "-nopad", "-a", "-A",
                        "-K", secret.encode()[:16].hex(), "-iv", (b"0" * 16).hex()],
                       input=payload_b64.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10, check=True)
    return r.stdout


def openssl_encrypt(key, iv, data):
    r = subprocess.run(["openssl", "enc", "-e", "-aes-128-cbc", "-nopad", "-K", key.hex(),
                        "-iv", iv.hex()], input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10, check=True)
    return r.stdout


# ---------------------------------------------------------------------------------------------
# Minimal MQTT 3.1.1 client (mqttclient.py): Tencent's sessions default to keepalive 240, and a
# PUBLISH comes back as parsed JSON when it is JSON

import mqttclient  # noqa: E402
from mqttclient import _s  # noqa: E402,F401


class MQTT(mqttclient.MQTT):
    def connect(self, client_id, username, password, keepalive=240, proto=("MQTT", 4)):
        return super().connect(client_id, username, password, keepalive, True, proto)

    def expect_publish(self, timeout=5.0):
        """Next PUBLISH (PUBACKs in between are skipped); returns (topic, decoded JSON or bytes)."""
        topic, rest = super().expect_publish(timeout)
        try:
            return topic, json.loads(rest)
        except ValueError:
            return topic, rest


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


# ---------------------------------------------------------------------------------------------


class VectorTests(unittest.TestCase):
    """The vectors of docs/protocols/tencent.md, with the HMAC above and with the cloud's code."""

    BODY = b'{"ProductId":"CS0SLTKSYA","DeviceName":"dev2"}'

    def test_mqtt_password_vector(self):   # docs/protocols/tencent.md §1.2
        u = "CS0SLTKSYAdev1;12010126;ZR5GT;2623045740"
        self.assertEqual(tencent_cloud.mqtt_username(PID, "dev1", "12010126", "ZR5GT", FAR), u)
        self.assertEqual(base64.b64decode(PSK1).hex(), "2325e6516e6c53fab5be76f9cb34e479")
        want = "2debdc61b009ef8d09597f106f6f8ca36f101415459b0623780a81e711e7257c;hmacsha256"
        self.assertEqual(password(PSK1, u), want)
        self.assertEqual(tencent_cloud.mqtt_password(PSK1, u), want)
        want1 = "5dc2e1c6c71edcf7f2eff546c81e72579583b583;hmacsha1"
        self.assertEqual(password(PSK1, u, "hmacsha1"), want1)
        self.assertEqual(tencent_cloud.mqtt_password(PSK1, u, "hmacsha1"), want1)

    def test_dynreg_v2_vectors(self):   # docs/protocols/tencent.md §2.3
        self.assertEqual(hashlib.sha256(self.BODY).hexdigest(),
                         "69be50f5ce1f3c16667aad40a634a1a3eb70a31443d50a4eb8e0d8acfcf01267")
        sts = tencent_cloud.dynreg_string_to_sign(HOST, "/device/register", "hmacsha256",
                                                  1700000000, 123456, self.BODY)
        self.assertEqual(sts, "POST\nap-guangzhou.gateway.tencentdevices.com\n/device/register\n\n"
                         "hmacsha256\n1700000000\n123456\n"
                         "69be50f5ce1f3c16667aad40a634a1a3eb70a31443d50a4eb8e0d8acfcf01267")
        self.assertEqual(my_hmac("hmacsha256", PS, sts).hex(),
                         "74c3909c0f20f7cbe22a53b7226abe45ad0bd930fe1cd761d6f3fc9c11341474")
        want = "dMOQnA8g98viKlO3Imq+Ra0L2TD+HNdh1vP8nBE0FHQ="
        self.assertEqual(tencent_cloud.dynreg_signature(PS, sts, "hmacsha256"), want)
        self.assertEqual(v2_headers(PS, self.BODY)["X-TC-Signature"], want)
        # hmacsha1 hashes the body with SHA-1 (docs/protocols/tencent.md §2.1)
        self.assertEqual(hashlib.sha1(self.BODY).hexdigest(), "661d72faa2dc34984de6d595c1b57544bc564f73")
        sts1 = tencent_cloud.dynreg_string_to_sign(HOST, "/device/register", "hmacsha1",
                                                   1700000000, 123456, self.BODY)
        self.assertEqual(tencent_cloud.dynreg_signature(PS, sts1, "hmacsha1"), "X7nynitQLR6Y/GW0ZBQxrtpBJlY=")
        self.assertEqual(v2_headers(PS, self.BODY, alg="hmacsha1")["X-TC-Signature"],
                         "X7nynitQLR6Y/GW0ZBQxrtpBJlY=")
        # [SIGNTOOL] vector
        body = b'{"ProductId":"PRODUCT_ID1","DeviceName":"DEVICENAME1"}'
        self.assertEqual(v2_headers("PRODUCT_SECRETKEY", body, alg="hmacsha1", ts=1629362589,
                                    nonce=333464802)["X-TC-Signature"], "7u3+tAPlt8O4mPpBm3lambv23sw=")

    def test_dynreg_v1_vectors(self):   # docs/protocols/tencent.md §2.3 legacy
        src = tencent_cloud.legacy_sign_source("dev2", 123456, PID, 1700000000)
        self.assertEqual(src, "deviceName=dev2&nonce=123456&productId=CS0SLTKSYA&timestamp=1700000000")
        self.assertEqual(my_hmac("hmacsha1", PS, src).hex(), "770e4604e9d1e458e699302a701eb57b79789a05")
        want = "NzcwZTQ2MDRlOWQxZTQ1OGU2OTkzMDJhNzAxZWI1N2I3OTc4OWEwNQ=="
        self.assertEqual(tencent_cloud.legacy_signature(PS, src), want)
        self.assertEqual(json.loads(v1_body(PS, PID, "dev2"))["signature"], want)
        self.assertEqual(base64.b64encode(my_hmac("hmacsha1", PS, src)).decode(),
                         "dw5GBOnR5FjmmTAqcB61e3l4mgU=")

    def test_aes_fips197(self):
        rk = tencent_cloud.aes128_expand_key(bytes(range(16)))
        self.assertEqual(rk[40:44], [0x13111d7f, 0xe3944a17, 0xf307a78b, 0x4d2b30c5])
        self.assertEqual(tencent_cloud.aes128_encrypt_block(
            rk, bytes.fromhex("00112233445566778899aabbccddeeff")).hex(),
            "69c4e0d86a7b0430d8cdb78070b4c55a")
        # FIPS-197 Appendix B
        rk = tencent_cloud.aes128_expand_key(bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c"))
        self.assertEqual(tencent_cloud.aes128_encrypt_block(
            rk, bytes.fromhex("3243f6a8885a308d313198a2e0370734")).hex(),
            "3925841d02dc09fbdc118597196a0b32")

    def test_aes_fact_sheet_payloads(self):   # docs/protocols/tencent.md §2.1 doc vector and §2.3 round trip
        for secret, plain, want in (
                ("hzvf5LF9S0isvBhDSauWMaIk", b'{"encryptionType":2,"psk":"lDZ6Uqt+I9E0wW7rvDUs7Q=="}',
                 "s6FB3a1BA/YYbcmSE12XpeDVmQNDcf1QgVD141RRbmmAnFwQfp1ECAu5O016mCOvYlJJ6V59yM4OqQSiWphfTg=="),
                (PS, b'{"encryptionType":2,"psk":"IyXmUW5sU/q1vnb5yzTkeQ=="}',
                 "TuN0W0K3sdvLLHn+RLSu2CjmksX8CC2dGPt2xpr0M9JIStdkSI2Cza6B+eJ6YSW6TNRKZ4U6Fq7vcxaN4PbeRw==")):
            self.assertEqual(len(plain), 53)
            self.assertEqual(tencent_cloud.dynreg_encrypt(secret, plain), want)
            self.assertEqual(openssl_decrypt(secret, want), plain + b"\0" * 11)

    def test_aes_against_openssl(self):
        for n in (16, 32, 48, 160, 1024):
            key, iv, data = os.urandom(16), os.urandom(16), os.urandom(n)
            self.assertEqual(tencent_cloud.aes128_cbc_encrypt(key, iv, data),
                             openssl_encrypt(key, iv, data), n)
        self.assertEqual(tencent_cloud.zero_pad(b"x" * 32), b"x" * 32)
        self.assertEqual(len(tencent_cloud.zero_pad(b"x" * 33)), 48)

    def test_bind_vectors(self):   # docs/protocols/gateway.md §G17, §G19 (Tencent bind)
        vectors = (
            (PSK1, PID, "dev1", 121213, 1700000000, "r7PEZPQ2IZ5y9546GYwg5Mc6fyI=",
             "dOMDt9wp5HOAToYoCgy9R3y3pbTih6w/3H8A7k6tOCs="),
            (T2PSK, T2PID, T2DN, 121213, 1589786839, "PocIcraj/zlsCltB1NVSoYhE4nY=",
             "v9GEzCj1EUXszfEAt2LgN94cFLDgg4KmDj4zxQBsAXA="),
            (PSK1, T3PID, T3DN, 1804289383, 1735689600, "wXZ7zHGlZkgGuQ6v1CWz3W/HP70=",
             "Hu/7+tcjpJMLAN0ikiC9cOgBtvBYNKSUXMdSP0SGW1k="))
        for key, pid, dn, rnd, ts, s1, s256 in vectors:
            text = tcgateway.bind_sign_text(pid, dn, rnd, ts)
            self.assertEqual(text, "%s%s;%d;%d" % (pid, dn, rnd, ts))
            self.assertEqual(base64.b64encode(my_hmac("hmacsha1", key, text)).decode(), s1)
            self.assertEqual(base64.b64encode(my_hmac("hmacsha256", key, text)).decode(), s256)
            self.assertEqual(tcgateway.bind_signature(key, text, "hmacsha1"), s1)
            self.assertEqual(tcgateway.bind_signature(key, text, "hmacsha256"), s256)
            self.assertEqual(len(s1), 28)
            self.assertEqual(len(s256), 44)
        self.assertEqual(tcgateway.bind_sign_text(PID, "dev1", 121213, 1700000000),
                         "CS0SLTKSYAdev1;121213;1700000000")
        # T4: authtype certificate, the key is the MD5 hex of the certificate file ([EXPC])
        self.assertEqual(hashlib.md5(T4CERT.encode()).hexdigest(), "36d6442210fa63d5ef851f48834f4cc5")
        self.assertEqual(tcgateway.cert_key(T4CERT), "36d6442210fa63d5ef851f48834f4cc5")
        self.assertEqual(tcgateway.bind_signature(tcgateway.cert_key(T4CERT),
                                                  "CS0SLTKSYAdev1;121213;1700000000"),
                         "PIKcihr4xwdKJnkFyIUQszhFKPA=")
        # the negative vectors of T1: what common mistakes produce
        text = "CS0SLTKSYAdev1;121213;1700000000"
        hexsig = base64.b64encode(my_hmac("hmacsha1", PSK1, text).hex().encode()).decode()
        self.assertEqual(hexsig, "YWZiM2M0NjRmNDM2MjE5ZTcyZjc5ZTNhMTk4YzIwZTRjNzNhN2YyMg==")
        decsig = base64.b64encode(my_hmac("hmacsha1", base64.b64decode(PSK1), text)).decode()
        self.assertEqual(decsig, "WHfciWyA2EZ+MfwAPoAVZ/l8VeA=")
        for bad, why in ((hexsig, "base64 of the hex digest"),
                         (decsig, "key is the base64-decoded PSK, not the PSK text")):
            self.assertNotEqual(bad, "r7PEZPQ2IZ5y9546GYwg5Mc6fyI=")
            self.assertEqual(tcgateway.signature_mistake(PSK1, PID, "dev1", 121213, 1700000000,
                                                         "hmacsha1", bad), why)

    def test_hmac_matches_stdlib(self):
        import hmac as std
        for alg, h in (("hmacsha256", hashlib.sha256), ("hmacsha1", hashlib.sha1)):
            for key in (b"k", b"x" * 64, b"y" * 100):
                self.assertEqual(my_hmac(alg, key, "msg"), std.new(key, b"msg", h).digest())


class CloudTests(unittest.TestCase):
    proc = None

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tencent-cloud-")
        make_certs(cls.dir)
        products = {
            "products": [
                {"productId": PID, "productSecret": PS, "dynamicRegistration": True,
                 "registerType": 1, "template": TEMPLATE,
                 "devices": ["dev2", "dev-sha1", "twice", "inj", "legacy1",
                             {"deviceName": "dev1", "psk": PSK1}]},
                {"productId": PID_AUTO, "productSecret": "autoProductSecret0", "registerType": 2},
                {"productId": PID_OFF, "productSecret": "offProductSecret00",
                 "dynamicRegistration": False, "devices": ["d1"]},
                {"productId": PID_CERT, "productSecret": "certProductSecret0", "authType": "cert",
                 "devices": ["c1"]},
                {"productId": MPID, "productSecret": "modelProductSecret", "devices": [
                    {"deviceName": "tm1", "psk": PSK1}]},
                {"productId": MPID2, "productSecret": "modelProductSecret", "thingModel": MODEL},
                {"productId": GWPID, "productSecret": "gatewayProductSecret", "gateway": True,
                 "subProducts": [SUBPID, PID, T2PID, T3PID],
                 "devices": [{"deviceName": "gw1", "psk": PSK1},
                             {"deviceName": "gw2", "psk": PSK1}]},
                {"productId": SUBPID, "productSecret": "subProductSecret00", "template": TEMPLATE,
                 "devices": [{"deviceName": "n%d" % i, "psk": SUBPSK} for i in range(1, 9)]
                 + ["nopsk"]},
                {"productId": T2PID, "productSecret": "t2ProductSecret000",
                 "devices": [{"deviceName": T2DN, "psk": T2PSK}]},
                {"productId": T3PID, "productSecret": "t3ProductSecret000",
                 "devices": [{"deviceName": T3DN, "psk": PSK1}]},
                {"productId": NAPID, "productSecret": "naProductSecret000",
                 "devices": [{"deviceName": "x1", "psk": PSK1}]}],
            # most tests reconnect quickly; test_connect_rate_limit turns docs/protocols/tencent.md §1.7's 5 s back on
            "settings": {"connect_interval": 0}}
        with open(os.path.join(cls.dir, "products.json"), "w") as f:
            json.dump(products, f)
        cls.proc, cls.stderr, cls.ports = cls.start(cls.dir)
        cls.ctx = ssl.create_default_context(cafile=os.path.join(cls.dir, "ca.crt"))

    @classmethod
    def start(cls, d):
        err = open(os.path.join(d, "cloud.stderr"), "w")
        proc = subprocess.Popen(
            [PYTHON, os.path.join(HERE, "tencent_cloud.py"), "--dir", d,
             "--products", os.path.join(cls.dir, "products.json"),
             "--cert", os.path.join(cls.dir, "server.crt"),
             "--key", os.path.join(cls.dir, "server.key"),
             "--thing-model", MPID + "=" + MODEL],
            stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        pf = os.path.join(d, "ports.json")
        dl = time.monotonic() + 15
        while not os.path.exists(pf):
            if proc.poll() is not None or time.monotonic() > dl:
                proc.kill()
                proc.wait(5)
                err.close()
                with open(os.path.join(d, "cloud.stderr")) as f:
                    raise RuntimeError("cloud did not start:\n" + f.read())
            time.sleep(0.02)
        with open(pf) as f:
            return proc, err, json.load(f)

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
    def ctl(cls, name, expect_ok=True, timeout=15, port=None, **args):
        c = http.client.HTTPConnection("127.0.0.1", port or cls.ports["control"], timeout=timeout)
        try:
            c.request("POST", "/" + name, json.dumps(args), {"Content-Type": "application/json"})
            out = json.loads(c.getresponse().read())
        finally:
            c.close()
        if expect_ok and not out.get("ok"):
            raise AssertionError("control %s failed: %s" % (name, out))
        return out

    def https(self, path, body, headers, method="POST", timeout=10):
        c = http.client.HTTPSConnection("localhost", self.ports["https"], context=self.ctx,
                                        timeout=timeout)
        try:
            c.request(method, path, body, headers)
            r = c.getresponse()
            return r.status, r, r.read()
        finally:
            c.close()

    def reg2(self, dn, pid=PID, secret=PS, alg="hmacsha256", host="localhost", body=None,
             hdr=None, timeout=10, **kw):
        body = body if body is not None else json.dumps(
            {"ProductId": pid, "DeviceName": dn}, separators=(",", ":")).encode()
        h = v2_headers(secret, body, host=host, alg=alg, **kw)
        h.update(hdr or {})
        return self.https("/device/register", body, {k: v for k, v in h.items() if v is not None},
                          timeout=timeout)

    def reg2_json(self, dn, **kw):
        st, _, raw = self.reg2(dn, **kw)
        self.assertEqual(st, 200, raw)
        return json.loads(raw)["Response"]

    def decrypt(self, secret, resp, n_key="Len", p_key="Payload"):
        plain = openssl_decrypt(secret, resp[p_key])
        self.assertEqual(len(plain) % 16, 0)
        self.assertEqual(plain[resp[n_key]:].strip(b"\0"), b"", "zero padding after Len")
        return json.loads(plain[:resp[n_key]])

    def mqtt(self, tls=True, ctx=None):
        return MQTT(self.ports["mqtts" if tls else "mqtt"], (ctx or self.ctx) if tls else None)

    def dev_connect(self, dn, psk, pid=PID, tls=True, alg="hmacsha256", connid="ZR5GT",
                    expiry=FAR, sdkappid="12010126", keepalive=240, cid=None, username=None,
                    pw=None, proto=("MQTT", 4)):
        u = username or "%s%s;%s;%s;%s" % (pid, dn, sdkappid, connid, expiry)
        m = self.mqtt(tls)
        rc = m.connect(cid if cid is not None else pid + dn, u,
                       pw if pw is not None else password(psk, u, alg), keepalive, proto)
        return m, rc

    def device(self, dn, pid=PID):
        return self.ctl("device", productId=pid, deviceName=dn)

    def topic(self, direction, kind, dn, pid=PID):
        return "$thing/%s/%s/%s/%s" % (direction, kind, pid, dn)

    # ---- dynamic registration, current API (docs/protocols/tencent.md §2.1)
    def test_register_v2_psk_and_connect(self):
        for dn, alg in (("dev2", "hmacsha256"), ("dev-sha1", "hmacsha1")):
            resp = self.reg2_json(dn, alg=alg)
            self.assertNotIn("Error", resp)
            self.assertIsInstance(resp["RequestId"], str)
            obj = self.decrypt(PS, resp)
            self.assertEqual(obj["encryptionType"], 2)
            self.assertEqual(len(base64.b64decode(obj["psk"])), 16)
            self.assertEqual(self.device(dn)["psk"], obj["psk"])
            ev = self.ctl("log", ev="https_register")["events"][-1]
            self.assertEqual((ev["deviceName"], ev["signedHost"], ev["ok"]), (dn, "hostname", True))
            m, rc = self.dev_connect(dn, obj["psk"], alg=alg)
            m.close()
            self.assertEqual(rc, 0)
            self.assertTrue(self.device(dn)["activated"])
            # docs/protocols/tencent.md §2.1: once connected over MQTT, registration is refused
            err = self.reg2_json(dn)["Error"]
            self.assertEqual(err["Code"], "Fixture.DeviceAlreadyActivated")
            self.assertIsInstance(err["Message"], str)

    def test_register_v2_new_secret_each_time(self):
        p1 = self.decrypt(PS, self.reg2_json("twice"))["psk"]
        p2 = self.decrypt(PS, self.reg2_json("twice", host=HOST, nonce=99))["psk"]
        self.assertNotEqual(p1, p2)
        self.assertEqual(self.ctl("log", ev="https_register")["events"][-1]["signedHost"], "canonical")
        m, rc = self.dev_connect("twice", p1)
        m.close()
        self.assertEqual(rc, 4, "the first PSK is invalid after re-registration")
        m, rc = self.dev_connect("twice", p2)
        m.close()
        self.assertEqual(rc, 0)
        self.ctl("reset_device", productId=PID, deviceName="twice")
        self.assertIn("Payload", self.reg2_json("twice"))

    def test_register_v2_errors(self):
        def code(**kw):
            resp = self.reg2_json(kw.pop("dn", "dev-err"), **kw)
            self.assertNotIn("Payload", resp)
            return resp["Error"]["Code"]
        self.ctl("add_device", productId=PID, deviceName="dev-err")
        self.assertEqual(code(secret="wrongProductSecret"), "Fixture.SignatureFailure")
        self.assertEqual(code(host="example.com"), "Fixture.SignatureFailure")
        self.assertEqual(code(hdr={"X-TC-Nonce": "1"}), "Fixture.SignatureFailure")
        hexsig = my_hmac("hmacsha256", PS, "x").hex()
        self.assertEqual(code(hdr={"X-TC-Signature": hexsig}), "Fixture.SignatureFailure")
        self.assertTrue(self.ctl("log", ev="https_register")["events"][-1]["signatureLooksHex"])
        self.assertEqual(code(pid="NOSUCHPROD"), "Fixture.ProductNotExist")
        self.assertEqual(code(pid=PID_OFF, dn="d1", secret="offProductSecret00"),
                         "Fixture.DynamicRegistrationDisabled")
        self.assertEqual(code(dn="never-created"), "Fixture.DeviceNotExist")
        self.assertEqual(code(hdr={"X-TC-Signature": None}), "Fixture.InvalidParameter")
        self.assertEqual(code(hdr={"X-TC-Algorithm": "hmacmd5"}), "Fixture.InvalidParameter")
        self.assertEqual(code(hdr={"Content-Type": "application/x-www-form-urlencoded"}),
                         "Fixture.InvalidParameter")
        self.assertEqual(code(body=b'{"ProductId":"CS0SLTKSYA"}'), "Fixture.InvalidParameter")
        # the algorithm name is signed as sent, in any case
        self.assertIn("Payload", self.reg2_json("dev-err", alg="HmacSha256"))
        # X-TC-Timestamp is not checked unless dynreg_max_skew is set
        self.ctl("reset_device", productId=PID, deviceName="dev-err")
        self.ctl("settings", dynreg_max_skew=300)
        try:
            self.assertEqual(code(), "Fixture.TimestampExpired")
            self.assertIn("Payload", self.reg2_json("dev-err", ts=int(time.time())))
        finally:
            self.ctl("settings", dynreg_max_skew=0)
        self.assertEqual(self.https("/device/register", None, {}, method="GET")[0], 405)
        self.assertEqual(self.https("/device/registerx", b"{}", {"Content-Type": "application/json"})[0], 404)

    def test_register_auto_create(self):   # RegisterType 2 (docs/protocols/tencent.md §2.1)
        resp = self.reg2_json("brand-new", pid=PID_AUTO, secret="autoProductSecret0")
        psk = self.decrypt("autoProductSecret0", resp)["psk"]
        d = self.device("brand-new", pid=PID_AUTO)
        self.assertEqual((d["psk"], d["precreated"]), (psk, False))
        m, rc = self.dev_connect("brand-new", psk, pid=PID_AUTO)
        m.close()
        self.assertEqual(rc, 0)

    def test_register_legacy(self):   # docs/protocols/tencent.md §2.2
        # the C SDK's Accept is required (docs/protocols/tencent.md §2.2)
        for accept in (None, "application/json;*/*"):
            h = {"Content-Type": "application/x-www-form-urlencoded"}
            if accept:
                h["Accept"] = accept
            out = json.loads(self.https("/register/dev", v1_body(PS, PID, "legacy1").encode(), h)[2])
            self.assertEqual(out["code"], 9400)
            self.assertIn("Accept must be text/xml,application/json;*/*", out["message"])
        self.assertEqual(self.device("legacy1")["registerCount"], 0)
        st, _, raw = self.https("/register/dev", v1_body(PS, PID, "legacy1").encode(), V1_HEADERS)
        out = json.loads(raw)
        self.assertEqual((st, out["code"]), (200, 0))
        obj = self.decrypt(PS, out, "len", "payload")
        self.assertEqual(self.device("legacy1")["psk"], obj["psk"])
        # Base64 of the raw digest is the mistake of qcloud-documents#7422: code 1010
        body = json.loads(v1_body(PS, PID, "legacy1"))
        src = "deviceName=legacy1&nonce=123456&productId=%s&timestamp=1700000000" % PID
        body["signature"] = base64.b64encode(my_hmac("hmacsha1", PS, src)).decode()
        out = json.loads(self.https("/register/dev", json.dumps(body).encode(), V1_HEADERS)[2])
        self.assertEqual((out["code"], out["message"]), (1010, "Check signature failed"))
        self.assertTrue(self.ctl("log", ev="https_register")["events"][-1]["rawDigestForm"])
        body["nonce"] = "123456"
        self.assertNotIn(json.loads(self.https("/register/dev", json.dumps(body).encode(), V1_HEADERS)[2])["code"],
                         (0, 1010))
        out = json.loads(self.https("/register/dev", v1_body(PS, "NOSUCHPROD", "x").encode(), V1_HEADERS)[2])
        self.assertNotIn(out["code"], (0, 1010))

    def test_register_cert_product(self):   # encryptionType 1 (docs/protocols/tencent.md §2.1), cert login (§1.3)
        resp = self.reg2_json("c1", pid=PID_CERT, secret="certProductSecret0")
        obj = self.decrypt("certProductSecret0", resp)
        self.assertEqual(obj["encryptionType"], 1)
        self.assertIn("BEGIN CERTIFICATE", obj["clientCert"])
        self.assertIn("PRIVATE KEY", obj["clientKey"])
        for name, pem in (("c1.crt", obj["clientCert"]), ("c1.key", obj["clientKey"])):
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(pem)
        cctx = ssl.create_default_context(cafile=os.path.join(self.dir, "ca.crt"))
        cctx.load_cert_chain(os.path.join(self.dir, "c1.crt"), os.path.join(self.dir, "c1.key"))
        u = "%sc1;12010126;ab12C;%s" % (PID_CERT, FAR)
        m = self.mqtt(ctx=cctx)
        self.assertEqual(m.connect(PID_CERT + "c1", u, None), 0, "password not needed (docs/protocols/tencent.md §1.3)")
        m.close()
        m = self.mqtt()   # no client certificate
        self.assertEqual(m.connect(PID_CERT + "c1", u, "x;hmacsha256"), 5)
        m.close()
        m = self.mqtt(tls=False)
        self.assertEqual(m.connect(PID_CERT + "c1", u, "x;hmacsha256"), 5)
        m.close()

    def test_https_injected_failures(self):
        dn = "inj"

        def fail(mode, **kw):
            self.ctl("https_fail", mode=mode, **kw)

        try:
            fail("http500")
            self.assertEqual(self.reg2(dn)[0], 500)
            fail("http503", retry_after=7)
            st, r, _ = self.reg2(dn)
            self.assertEqual((st, r.getheader("Retry-After")), (503, "7"))
            fail("code_error", code="Fixture.Busy")
            self.assertEqual(self.reg2_json(dn)["Error"]["Code"], "Fixture.Busy")
            fail("code_error")
            out = json.loads(self.https("/register/dev", v1_body(PS, PID, dn).encode(), V1_HEADERS)[2])
            self.assertEqual(out["code"], 1010)
            fail("truncated")
            st, _, raw = self.reg2(dn)
            self.assertEqual(st, 200)
            self.assertRaises(ValueError, json.loads, raw)
            fail("short_body")
            self.assertRaises(http.client.IncompleteRead, self.reg2, dn)
            fail("wrong_types")
            resp = self.reg2_json(dn)
            self.assertIsInstance(resp["Payload"], int)
            self.assertIsInstance(resp["Len"], str)
            fail("no_payload")
            self.assertEqual(sorted(self.reg2_json(dn)), ["RequestId"])
            fail("bad_payload")
            resp = self.reg2_json(dn)
            self.assertRaises(ValueError, json.loads, openssl_decrypt(PS, resp["Payload"])[:53])
            fail("not_json")
            self.assertRaises(ValueError, json.loads, self.reg2(dn)[2])
            fail("redirect_http")
            st, r, _ = self.reg2(dn)
            self.assertEqual((st, r.getheader("Location")),
                             (302, "http://127.0.0.1:%d/device/register" % self.ports["http"]))
            fail("huge", size=4 * 1024 * 1024)
            st, r, raw = self.reg2(dn)
            self.assertEqual(r.getheader("Transfer-Encoding"), "chunked")
            self.assertGreaterEqual(len(raw), 4 * 1024 * 1024)
            fail("reset")
            self.assertRaises((ConnectionError, http.client.RemoteDisconnected, ssl.SSLError,
                               OSError), self.reg2, dn)
            fail("hang", seconds=1.5)
            self.assertRaises((socket.timeout, TimeoutError), self.reg2, dn, timeout=0.5)
            fail("drip", interval=1.0)
            self.assertLessEqual(self.drip_bytes(dn, 2.2), 3)
            self.assertFalse(self.device(dn)["registered"], "injected replies must not register")
            fail("http500", count=1)
            self.assertEqual(self.reg2(dn)[0], 500)
            self.assertIn("Payload", self.reg2_json(dn))
            self.assertTrue(self.device(dn)["registered"])
        finally:
            fail("none")

    def drip_bytes(self, dn, seconds):
        body = json.dumps({"ProductId": PID, "DeviceName": dn}).encode()
        hdr = v2_headers(PS, body, host="localhost")
        s = self.ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.ports["https"]),
                                                          timeout=5), server_hostname="localhost")
        try:
            s.sendall(("POST /device/register HTTP/1.1\r\nHost: localhost\r\n%sContent-Length: %d\r\n\r\n"
                       % ("".join("%s: %s\r\n" % kv for kv in hdr.items()), len(body))).encode() + body)
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

    # ---- MQTT CONNECT (docs/protocols/tencent.md §1.2, §1.7)
    def test_mqtt_connect_rules(self):
        self.ctl("add_device", productId=PID, deviceName="rules", psk=PSK1)
        for kw in (dict(), dict(tls=False), dict(alg="hmacsha1"), dict(sdkappid="21010406"),
                   dict(expiry=str(int(time.time()) + 60)), dict(keepalive=0),
                   dict(keepalive=900), dict(proto=("MQIsdp", 3)), dict(connid="a1B2c")):
            m, rc = self.dev_connect("rules", PSK1, **kw)
            m.close()
            self.assertEqual(rc, 0, kw)
        u = "%srules;12010126;ZR5GT;%s" % (PID, FAR)
        refused = (
            (dict(pw=password("AAAAAAAAAAAAAAAAAAAAAA==", u)), 4),
            (dict(pw=password(PSK1, u).split(";")[0]), 4),                  # no ;alg
            (dict(pw=password(PSK1, u).replace("hmacsha256", "hmacsha1")), 4),
            (dict(expiry=str(int(time.time()) - 1)), 4),
            (dict(connid="ZR5G"), 4),
            (dict(sdkappid="abc"), 4),
            (dict(username="%srules;12010126;ZR5GT" % PID), 4),
            (dict(cid=PID + "other"), 2),
            (dict(cid=PID + "/rules"), 2),
            (dict(keepalive=901), 2),
            (dict(proto=("MQTT", 5)), 1),
        )
        for kw, want in refused:
            m, rc = self.dev_connect("rules", PSK1, **kw)
            self.assertEqual(rc, want, kw)
            self.assertTrue(m.closed_within(3), "refused session must be closed: %s" % kw)
            m.close()
        m = self.mqtt()
        self.assertEqual(m.connect(PID + "rules", u, None), 4, "PSK device without password")
        m.close()
        m, rc = self.dev_connect("nobody", PSK1)
        m.close()
        self.assertEqual(rc, 5, "unknown device")
        self.ctl("add_device", productId=PID, deviceName="nopsk")
        m, rc = self.dev_connect("nopsk", PSK1)
        m.close()
        self.assertEqual(rc, 5, "device that has no PSK yet")
        # expiry is checked against the cloud's clock (host time + clock_offset)
        exp = str(int(time.time()) + 3600)
        self.ctl("settings", clock_offset=7200)
        try:
            m, rc = self.dev_connect("rules", PSK1, expiry=exp)
            m.close()
            self.assertEqual(rc, 4)
        finally:
            self.ctl("settings", clock_offset=0)
        m, rc = self.dev_connect("rules", PSK1, expiry=exp)
        m.close()
        self.assertEqual(rc, 0)
        ev = self.ctl("log", ev="mqtt_connect")["events"][-1]
        self.assertEqual((ev["connid"], ev["sdkappid"], ev["connidReused"]), ("ZR5GT", "12010126", True))

    def test_tls_psk_listener(self):   # docs/protocols/tencent.md §1.4 TLS-PSK behind the front (DECISION 20)
        self.ctl("add_device", productId=PID, deviceName="tlspsk", psk=PSK1)
        u = "%stlspsk;12010126;ZR5GT;%s" % (PID, FAR)

        def via_front(identity, pw=None):
            m = MQTT(self.ports["mqttpsk"])
            m.sock.sendall(("TLS-PSK identity=%s cipher=PSK-AES128-CBC-SHA version=TLSv1.2\n"
                            % identity).encode())
            rc = m.connect(PID + "tlspsk", u, pw)
            m.close()
            return rc

        # (the class's cloud runs with connect_interval 0: CONNECTs in a row are answered)
        try:
            # the handshake proved the identity: no password needed
            self.assertEqual(via_front(PID + "tlspsk"), 0)
            ev = self.ctl("wait", match={"ev": "mqtt_connect", "deviceName": "tlspsk",
                                         "auth": "tls-psk", "rc": 0})["event"]
            self.assertFalse(ev["hasPassword"])
            self.ctl("wait", match={"ev": "tls_psk", "identity": PID + "tlspsk",
                                    "cipher": "PSK-AES128-CBC-SHA", "version": "TLSv1.2"})
            # an identity that is not the username's device
            self.assertEqual(via_front(PID + "other"), 5)
            # a password sent anyway is still checked
            self.assertEqual(via_front(PID + "tlspsk",
                                       password("AAAAAAAAAAAAAAAAAAAAAA==", u)), 4)
            # without the front's line, the same CONNECT without a password is refused
            m = MQTT(self.ports["mqtt"])
            rc = m.connect(PID + "tlspsk", u, None)
            m.close()
            self.assertEqual(rc, 4)
        finally:
            self.ctl("settings", connect_interval=0)

    def test_connect_rate_limit(self):   # docs/protocols/tencent.md §1.7: 1 CONNECT per 5 s per device
        self.ctl("add_device", productId=PID, deviceName="rate", psk=PSK1)
        self.ctl("settings", connect_interval=5.0)
        try:
            a, rc = self.dev_connect("rate", PSK1)
            self.assertEqual(rc, 0)
            b, c = self.mqtt(), None
            u = "%srate;12010126;Bbbbb;%s" % (PID, FAR)
            b.send(0x10, _s("MQTT") + bytes([4, 0xC2]) + (240).to_bytes(2, "big")
                   + _s(PID + "rate") + _s(u) + _s(password(PSK1, u)))
            self.assertTrue(b.closed_within(3), "the second CONNECT gets no CONNACK and is closed")
            a.send(0xC0, b"")
            self.assertEqual(a.packet()[0], 13, "the first session lives on")
            self.ctl("settings", connect_rate_action="refuse")
            c, rc = self.dev_connect("rate", PSK1, connid="Ccccc")
            self.assertEqual(rc, 3)
            self.assertEqual(self.device("rate")["connectCount"], 1)
        finally:
            self.ctl("settings", connect_interval=0, connect_rate_action="close")
            for m in (a, b, c):
                if m:
                    m.close()

    def test_one_connection_per_device(self):
        self.ctl("add_device", productId=PID, deviceName="kick", psk=PSK1)
        a, rc = self.dev_connect("kick", PSK1)
        self.assertEqual(rc, 0)
        b, rc = self.dev_connect("kick", PSK1, connid="Other")
        try:
            self.assertEqual(rc, 0)
            self.assertTrue(a.closed_within(3), "the older session must be closed")
            b.send(0xC0, b"")
            self.assertEqual(b.packet()[0], 13)
            self.assertEqual(self.device("kick")["connected"], 1)
        finally:
            a.close()
            b.close()

    def test_limits_and_acl(self):
        self.ctl("add_device", productId=PID, deviceName="lim", psk=PSK1)
        m, rc = self.dev_connect("lim", PSK1)
        self.assertEqual(rc, 0)
        try:
            down = self.topic("down", "property", "lim")
            self.assertEqual(m.subscribe([down, self.topic("down", "event", "lim")]), [0x80, 0x80],
                             "one filter per SUBSCRIBE (docs/protocols/tencent.md §1.7)")
            self.assertEqual(m.subscribe([down]), [0])
            self.assertEqual(m.subscribe(["$thing/down/+/%s/lim" % PID]), [0])
            self.assertEqual(m.subscribe(["$sys/operation/result/%s/lim" % PID]), [0])
            for f in (self.topic("down", "property", "dev1"), "$thing/down/property/+/lim",
                      self.topic("up", "property", "lim"), "#", "$thing/#"):
                self.assertEqual(m.subscribe([f]), [0x80], f)
            # $sys time (docs/protocols/tencent.md §1.8)
            m.publish("$sys/operation/%s/lim" % PID, {"type": "get", "resource": ["time"]})
            while True:
                t, body = m.expect_publish()
                if t.startswith("$sys"):
                    break
            self.assertEqual(t, "$sys/operation/result/%s/lim" % PID)
            self.assertLess(abs(body["time"] - time.time()), 30)
            # 30 messages/s up: the excess is dropped and logged (docs/protocols/tencent.md §1.7)
            since = self.ctl("health")["seq"]
            up = self.topic("up", "property", "lim")
            for i in range(40):
                m.publish(up, {"method": "report", "clientToken": "r%d" % i, "params": {"MQ2": i}})
            m.send(0xC0, b"")
            while m.packet()[0] != 13:
                pass
            n = len([e for e in self.ctl("log", since=since, ev="throttled")["events"]])
            self.assertGreaterEqual(n, 1)
            self.assertLessEqual(n, 11)   # 41 messages (with the $sys one) inside 1 s at most
            # payload > 16 KB (docs/protocols/tencent.md §1.7)
            m.publish(up, "x" * 16385, qos=1, pid=9)
            self.assertTrue(m.closed_within(3))
        finally:
            m.close()
        self.assertEqual(self.ctl("log", ev="payload_too_large")["events"][-1]["size"], 16385)
        m, rc = self.dev_connect("lim", PSK1)
        try:
            m.publish(self.topic("up", "property", "dev1"), "{}")
            self.assertTrue(m.closed_within(3), "publishing as another device closes (ACL)")
        finally:
            m.close()

    # ---- data template (docs/protocols/tencent.md §3)
    def session(self, dn, subscribe=("property", "event", "action")):
        self.ctl("add_device", productId=PID, deviceName=dn, psk=PSK1)
        m, rc = self.dev_connect(dn, PSK1)
        self.assertEqual(rc, 0)
        for k in subscribe:
            self.assertEqual(m.subscribe([self.topic("down", k, dn)]), [0])
        return m

    def rpc(self, m, dn, kind, obj, qos=0):
        m.publish(self.topic("up", kind, dn), obj, qos=qos, pid=3)
        t, body = m.expect_publish()
        self.assertEqual(t, self.topic("down", kind, dn))
        return body

    def test_report_and_events(self):
        dn = "tmpl"
        m = self.session(dn)
        try:
            r = self.rpc(m, dn, "property", {"method": "report", "clientToken": "t1",
                                             "timestamp": int(time.time()),
                                             "params": {"MQ2": 30, "MQ135": 12, "MQ4": 0, "MQ7": 9,
                                                        "DHT11_T": 21.5, "DHT11_H": 40}})
            self.assertEqual(r, {"method": "report_reply", "clientToken": "t1", "code": 0,
                                 "status": "success"})
            r = self.rpc(m, dn, "property", {"method": "report", "clientToken": "t2",
                                             "params": {"power_switch": 3}}, qos=1)
            self.assertEqual((r["code"], r["status"]),
                             (406, "check report data err: power_switch value 3 out of range:[0,1]"))
            for params in ({"MQ2": 20000}, {"MQ2": "high"}, {"MQ2": 1.5}, {"CO2": 1}):
                r = self.rpc(m, dn, "property", {"method": "report", "clientToken": "t3",
                                                 "params": params})
                self.assertEqual(r["code"], 406, params)
                self.assertTrue(r["status"].startswith("check report data err: "), r)
            for bad in ({"method": "report", "params": {"MQ2": 1}},
                        {"method": "report", "clientToken": "t4", "params": {}},
                        {"method": "report", "clientToken": "t4", "params": {"MQ2": 1},
                         "timestamp": "now"}):
                self.assertEqual(self.rpc(m, dn, "property", bad)["code"], 400, bad)
            r = self.rpc(m, dn, "property", {"method": "report_info", "clientToken": "i1",
                                             "params": {"fw_ver": "1.0.0", "mac": "00:11"}})
            self.assertEqual((r["method"], r["code"]), ("report_info_reply", 0))
            self.ctl("inject_reply", productId=PID, deviceName=dn, code=500, kind="report")
            r = self.rpc(m, dn, "property", {"method": "report", "clientToken": "t5",
                                             "params": {"MQ7": 10}})
            self.assertEqual(r["code"], 500)
            props = self.ctl("properties", productId=PID, deviceName=dn)["properties"]
            self.assertEqual([(p["name"], p["value"]) for p in props],
                             [("MQ2", 30), ("MQ135", 12), ("MQ4", 0), ("MQ7", 9), ("DHT11_T", 21.5),
                              ("DHT11_H", 40)])
            self.assertEqual(len(self.ctl("reports", productId=PID, deviceName=dn, code=406)["reports"]), 5)
            self.assertEqual(self.ctl("infos", productId=PID, deviceName=dn)["infos"][0]["params"]["fw_ver"],
                             "1.0.0")
            # events (docs/protocols/tencent.md §3.2)
            r = self.rpc(m, dn, "event", {"method": "event_post", "clientToken": "e1", "version": "1.0",
                                          "eventId": "PowerAlarm", "type": "alert",
                                          "timestamp": 1700000000000, "params": {"Voltage": 2.8}}, qos=1)
            self.assertEqual(r, {"method": "event_reply", "clientToken": "e1", "version": "1.0",
                                 "code": 0, "status": "success", "data": {}})
            r = self.rpc(m, dn, "event", {"method": "events_post", "clientToken": "e2", "events": [
                {"eventId": "PowerAlarm", "type": "alert", "timestamp": 0, "params": {"Voltage": 1}},
                {"eventId": "PowerAlarm", "type": "alert", "params": {"Voltage": 2}}]})
            self.assertEqual((r["method"], r["code"]), ("events_reply", 0))
            for ev in ({"eventId": "Nope", "type": "info", "params": {}},
                       {"eventId": "PowerAlarm", "type": "warning", "params": {"Voltage": 1}},
                       {"eventId": "PowerAlarm", "type": "alert", "params": {"Voltage": "x"}}):
                r = self.rpc(m, dn, "event", dict(ev, method="event_post", clientToken="e3"))
                self.assertEqual(r["code"], 406, ev)
            evs = self.ctl("events", productId=PID, deviceName=dn)["events"]
            self.assertEqual([(e["eventId"], e["params"]["Voltage"], e["clientToken"]) for e in evs],
                             [("PowerAlarm", 2.8, "e1"), ("PowerAlarm", 1, "e2"), ("PowerAlarm", 2, "e2")])
        finally:
            m.close()

    def test_thing_model(self):   # --thing-model with the data template of docs/protocols/tencent.md §7
        dn = "tm1"
        m, rc = self.dev_connect(dn, PSK1, pid=MPID)
        self.assertEqual(rc, 0)
        n = [0]
        try:
            for k in ("property", "event"):
                self.assertEqual(m.subscribe([self.topic("down", k, dn, MPID)]), [0])

            def send(kind, obj):
                n[0] += 1
                obj = dict(obj, clientToken="tm-%d" % n[0])
                m.publish(self.topic("up", kind, dn, MPID), obj, pid=3)
                t, body = m.expect_publish()
                self.assertEqual(t, self.topic("down", kind, dn, MPID))
                return body

            def report(params):
                return send("property", {"method": "report", "params": params})

            def event(eid, typ, params):
                return send("event", {"method": "event_post", "version": "1.0", "eventId": eid,
                                      "type": typ, "timestamp": 1700000000000, "params": params})

            def violation(since, identifier):
                return self.ctl("wait", since=since, timeout=5, match={
                    "ev": "thing_model_violation", "deviceName": dn, "identifier": identifier})["event"]

            models = {x["product"]: x for x in self.ctl("thing_model")["models"]}
            self.assertEqual(sorted(models), [MPID, MPID2])
            self.assertEqual(models[MPID]["events"], {"GasAlarm": "alert"})
            # a valid report: numbers within [min,max], bool 0/1, enum key
            r = report({"MQ2": 30, "MQ135": 12, "DHT11_T": 21.5, "DHT11_H": 40, "Buzzer": 1,
                        "WorkMode": 0})
            self.assertEqual(r, {"method": "report_reply", "clientToken": "tm-1", "code": 0,
                                 "status": "success"})
            self.assertEqual(report({"Buzzer": 0})["code"], 0)
            # bool is 0 or 1 (docs/protocols/tencent.md §3.1), never true/false
            for bad in (True, False):
                seq = self.ctl("health")["seq"]
                r = report({"Buzzer": bad})
                self.assertEqual((r["code"], r["status"]), (406, "check report data err: Buzzer value %s "
                                                                  "is not bool 0 or 1" % json.dumps(bad)))
                v = violation(seq, "Buzzer")
                self.assertEqual((v["check"], v["kind"], v["value"], v["clientToken"], v["code"]),
                                 ("type", "property", bad, r["clientToken"], 406))
            seq = self.ctl("health")["seq"]
            r = report({"DHT11_H": 101})
            self.assertEqual((r["code"], r["status"]),
                             (406, "check report data err: DHT11_H value 101 out of range:[0,100]"))
            self.assertEqual(violation(seq, "DHT11_H")["check"], "range")
            for params, ident, check in (({"CO2": 1}, "CO2", "unknown"),
                                         ({"MQ135": 1.5}, "MQ135", "type"),
                                         ({"MQ2": "30"}, "MQ2", "type"),
                                         ({"WorkMode": 5}, "WorkMode", "range")):
                seq = self.ctl("health")["seq"]
                self.assertEqual(report(params)["code"], 406, params)
                self.assertEqual(violation(seq, ident)["check"], check, params)
            # events: the type must be the template's
            r = event("GasAlarm", "alert", {"GasType": "CO", "Concentration": 12})
            self.assertEqual((r["method"], r["code"]), ("event_reply", 0))
            seq = self.ctl("health")["seq"]
            r = event("GasAlarm", "info", {"GasType": "CO", "Concentration": 12})
            self.assertEqual(r["code"], 406)
            self.assertIn('type "info" is not the model\'s alert', r["status"])
            v = violation(seq, "GasAlarm")
            self.assertEqual((v["check"], v["kind"], v["event"], v["value"]),
                             ("event_type", "event", "GasAlarm", "info"))
            seq = self.ctl("health")["seq"]
            self.assertEqual(event("PowerAlarm", "alert", {"Voltage": 1.0})["code"], 406)
            self.assertEqual(violation(seq, "PowerAlarm")["check"], "unknown")
            seq = self.ctl("health")["seq"]
            self.assertEqual(event("GasAlarm", "alert", {"GasType": "x" * 17})["code"], 406)
            self.assertEqual(violation(seq, "GasType")["check"], "length")
            # nothing refused was stored
            props = self.ctl("properties", productId=MPID, deviceName=dn)["properties"]
            self.assertEqual([(p["name"], p["value"]) for p in props],
                             [("MQ2", 30), ("MQ135", 12), ("DHT11_T", 21.5), ("DHT11_H", 40),
                              ("Buzzer", 1), ("WorkMode", 0), ("Buzzer", 0)])
            evs = self.ctl("events", productId=MPID, deviceName=dn)["events"]
            self.assertEqual([(e["eventId"], e["type"]) for e in evs], [("GasAlarm", "alert")])
            self.assertEqual(len(self.ctl("violations", productId=MPID, deviceName=dn,
                                          check="type")["violations"]), 4)
            self.assertEqual(self.device(dn, pid=MPID)["violations"], 10)
            # the control API: drop the model, load it again for this product
            self.ctl("thing_model", productId=MPID, clear=True)
            self.assertEqual(report({"Buzzer": True})["code"], 0)
            self.ctl("thing_model", productId=MPID, file=MODEL)
            self.assertEqual(report({"Buzzer": True})["code"], 406)
            self.assertFalse(self.ctl("thing_model", expect_ok=False, productId=MPID, file=os.path.join(
                HERE, "..", "data", "models", "aliyun-tsl.json"))["ok"])
        finally:
            m.close()

    def test_control_and_action_round_trip(self):
        dn = "ctl1"
        m = self.session(dn)
        try:
            res = {}
            th = threading.Thread(target=lambda: res.update(self.ctl(
                "control", productId=PID, deviceName=dn, params={"power_switch": 1}, wait=8)))
            th.start()
            t, req = m.expect_publish()
            self.assertEqual(t, self.topic("down", "property", dn))
            self.assertEqual(sorted(req), ["clientToken", "method", "params"])
            self.assertEqual((req["method"], req["params"]), ("control", {"power_switch": 1}))
            m.publish(self.topic("up", "property", dn), {"method": "control_reply", "code": 0,
                                                         "clientToken": req["clientToken"],
                                                         "status": "ok"})
            th.join(10)
            self.assertFalse(res["timedOut"])
            self.assertEqual((res["reply"]["code"], res["reply"]["matched"]), (0, True))
            self.assertLess(res["reply"]["latencyMs"], 8000)
            self.assertFalse(res["queued"])
            # action (docs/protocols/tencent.md §3.3)
            res = {}
            th = threading.Thread(target=lambda: res.update(self.ctl(
                "action", productId=PID, deviceName=dn, actionId="openDoor",
                params={"userid": "323343"}, wait=8)))
            th.start()
            t, req = m.expect_publish()
            self.assertEqual(t, self.topic("down", "action", dn))
            self.assertEqual((req["method"], req["actionId"], req["params"]),
                             ("action", "openDoor", {"userid": "323343"}))
            self.assertIsInstance(req["timestamp"], int)
            m.publish(self.topic("up", "action", dn), {"method": "action_reply", "code": 0,
                                                       "clientToken": req["clientToken"],
                                                       "status": "ok", "response": {"Code": 0}})
            th.join(10)
            self.assertEqual(res["reply"]["response"], {"Code": 0})
            reps = self.ctl("replies", productId=PID, deviceName=dn)["replies"]
            self.assertEqual([r["kind"] for r in reps], ["control_reply", "action_reply"])
            # a control that does not match the template is refused by the control API
            out = self.ctl("control", expect_ok=False, productId=PID, deviceName=dn,
                           params={"power_switch": 7})
            self.assertFalse(out["ok"])
        finally:
            m.close()

    def test_get_status_offline_control(self):
        dn = "offl"
        self.ctl("add_device", productId=PID, deviceName=dn, psk=PSK1)
        out = self.ctl("control", productId=PID, deviceName=dn, params={"power_switch": 1})
        self.assertEqual((out["deliveredTo"], out["queued"]), ([], True))
        self.ctl("control", productId=PID, deviceName=dn, params={"MQ2": 5}, force=True)
        m = self.session(dn, subscribe=("property",))
        try:
            r = self.rpc(m, dn, "property", {"method": "get_status", "clientToken": "g1",
                                             "type": "report", "showmeta": 0})
            self.assertEqual((r["method"], r["code"], r["clientToken"], r["type"]),
                             ("get_status_reply", 0, "g1", "report"))
            self.assertEqual(r["data"]["control"], {"power_switch": 1, "MQ2": 5})
            self.assertEqual(r["data"]["report"], {})
            # a control issued after this get_status is not cleared by its clear_control
            self.ctl("control", productId=PID, deviceName=dn, params={"MQ4": 1}, queue=True)
            r = self.rpc(m, dn, "property", {"method": "clear_control", "clientToken": "g1"})
            self.assertEqual((r["method"], r["code"]), ("clear_control_reply", 0))
            self.assertEqual(self.rpc(m, dn, "property", {"method": "clear_control",
                                                          "clientToken": "zz"})["code"], 404)
            self.rpc(m, dn, "property", {"method": "report", "clientToken": "t", "params": {"MQ4": 2}})
            r = self.rpc(m, dn, "property", {"method": "get_status", "clientToken": "g2"})
            self.assertEqual(r["data"], {"report": {"MQ4": 2}, "control": {"MQ4": 1}})
            self.rpc(m, dn, "property", {"method": "clear_control", "clientToken": "g2"})
            r = self.rpc(m, dn, "property", {"method": "get_status", "clientToken": "g3"})
            self.assertNotIn("control", r["data"])
            self.assertEqual(self.device(dn)["pendingControls"], [])
        finally:
            m.close()

    # ---- gateways and sub-devices (docs/protocols/gateway.md §G15-§G18, tcgateway.py)
    def gw_session(self, dn="gw1", pid=GWPID, psk=PSK1, connid="GWAY1"):
        # these tests send more than 30 operations a second from one gateway
        # (docs/protocols/tencent.md §1.7); the limit is back on after each test
        self.ctl("settings", qps_limit=0)
        self.addCleanup(self.ctl, "settings", qps_limit=30)
        m, rc = self.dev_connect(dn, psk, pid=pid, connid=connid)
        self.assertEqual(rc, 0)
        self.assertEqual(m.subscribe(["$gateway/operation/result/%s/%s" % (pid, dn)]), [0])
        return m

    def gw_op(self, m, typ, devices=None, gw="gw1", pid=GWPID):
        """One operation on the gateway's topic; returns its result message's payload."""
        obj = {"type": typ}
        if devices is not None:
            obj["payload"] = {"devices": devices}
        m.publish("$gateway/operation/%s/%s" % (pid, gw), obj)
        t, body = m.expect_publish()
        self.assertEqual(t, "$gateway/operation/result/%s/%s" % (pid, gw))
        self.assertEqual(body["type"], typ)
        return body["payload"]

    def bind_entry(self, pid, dn, key, rnd=None, ts=None, method="hmacsha1", **over):
        rnd = 4242 if rnd is None else rnd
        ts = int(time.time()) if ts is None else ts
        text = "%s%s;%d;%d" % (pid, dn, rnd, ts)
        e = {"product_id": pid, "device_name": dn, "random": rnd, "timestamp": ts,
             "signmethod": method, "authtype": "psk",
             "signature": base64.b64encode(my_hmac(method.lower(), key, text)).decode()}
        e.update(over)
        return {k: v for k, v in e.items() if v is not None}

    def bind(self, m, pid, dn, key, gw="gw1", **kw):
        res = self.gw_op(m, "bind", [self.bind_entry(pid, dn, key, **kw)], gw=gw)["devices"]
        self.assertEqual(len(res), 1)
        self.assertEqual((res[0]["product_id"], res[0]["device_name"]), (pid, dn))
        return res[0]["result"]

    def one(self, m, typ, pid, dn, gw="gw1"):
        return self.gw_op(m, typ, [{"product_id": pid, "device_name": dn}], gw=gw)["devices"][0]["result"]

    def last(self, ev, since=0, **match):
        evs = [e for e in self.ctl("log", ev=ev, since=since)["events"]
               if all(e.get(k) == v for k, v in match.items())]
        self.assertTrue(evs, "no %s event matching %s" % (ev, match))
        return evs[-1]

    def test_gateway_bind_vectors_live(self):
        """The §G19 vectors and their negative vectors against the cloud's bind verification,
        with the cloud's clock set to each vector's timestamp."""
        self.ctl("add_device", productId=PID, deviceName="dev1", cert=T4CERT)
        m = self.gw_session()
        vectors = ((PID, "dev1", PSK1, 121213, 1700000000, "r7PEZPQ2IZ5y9546GYwg5Mc6fyI=",
                    "dOMDt9wp5HOAToYoCgy9R3y3pbTih6w/3H8A7k6tOCs="),
                   (T2PID, T2DN, T2PSK, 121213, 1589786839, "PocIcraj/zlsCltB1NVSoYhE4nY=",
                    "v9GEzCj1EUXszfEAt2LgN94cFLDgg4KmDj4zxQBsAXA="),
                   (T3PID, T3DN, PSK1, 1804289383, 1735689600, "wXZ7zHGlZkgGuQ6v1CWz3W/HP70=",
                    "Hu/7+tcjpJMLAN0ikiC9cOgBtvBYNKSUXMdSP0SGW1k="))
        try:
            for pid, dn, key, rnd, ts, s1, s256 in vectors:
                self.ctl("settings", clock_offset=ts - time.time())
                for method, sig in (("hmacsha1", s1), ("hmacsha256", s256)):
                    self.assertEqual(self.bind(m, pid, dn, key, rnd=rnd, ts=ts, method=method,
                                               signature=sig), 0, (dn, method))
                    self.assertEqual(self.bind(m, pid, dn, key, rnd=rnd, ts=ts, method=method,
                                               signature=sig), -809, "repeated bind")
                    self.assertEqual(self.one(m, "unbind", pid, dn), 0)
            # T1 negative vectors (§G19): refused with -803, the mistake named in the event
            self.ctl("settings", clock_offset=1700000000 - time.time())
            for sig, why in (("YWZiM2M0NjRmNDM2MjE5ZTcyZjc5ZTNhMTk4YzIwZTRjNzNhN2YyMg==",
                              "base64 of the hex digest"),
                             ("WHfciWyA2EZ+MfwAPoAVZ/l8VeA=",
                              "key is the base64-decoded PSK, not the PSK text")):
                self.assertEqual(self.bind(m, PID, "dev1", PSK1, rnd=121213, ts=1700000000,
                                           signature=sig), -803)
                self.assertEqual(self.last("gateway_bind", deviceName="dev1")["mistake"], why)
            # T4: authtype certificate, keyed with the MD5 hex of the certificate file
            self.assertEqual(self.bind(m, PID, "dev1", PSK1, rnd=121213, ts=1700000000,
                                       authtype="certificate",
                                       signature="PIKcihr4xwdKJnkFyIUQszhFKPA="), 0)
            self.assertEqual(self.one(m, "unbind", PID, "dev1"), 0)
            # the same vector one second outside bind_max_skew is stale
            self.ctl("settings", clock_offset=1700000000 - time.time() + 302)
            self.assertEqual(self.bind(m, PID, "dev1", PSK1, rnd=121213, ts=1700000000,
                                       signature="r7PEZPQ2IZ5y9546GYwg5Mc6fyI="), -805)
        finally:
            self.ctl("settings", clock_offset=0)
            m.close()
        self.assertEqual(self.ctl("bindings", productId=GWPID, deviceName="gw1")["bindings"], [])
        b = self.device("dev1")
        self.assertEqual((b["bindCount"], b["unbindCount"], b["boundTo"]), (3, 3, None))

    def test_gateway_bind_refusals(self):
        m = self.gw_session()
        try:
            self.assertEqual(self.bind(m, SUBPID, "n1", SUBPSK, signature="AAAA"), -803)
            self.assertEqual(self.bind(m, SUBPID, "n1", PSK1), -803, "another PSK")
            self.assertEqual(self.bind(m, SUBPID, "n1", SUBPSK, ts=int(time.time()) - 1000), -805)
            self.assertEqual(self.bind(m, SUBPID, "n1", SUBPSK, ts=int(time.time()) + 1000), -805)
            self.assertEqual(self.bind(m, SUBPID, "ghost", SUBPSK), -802)
            self.assertEqual(self.bind(m, SUBPID, "nopsk", SUBPSK), -802)
            self.assertEqual(self.bind(m, NAPID, "x1", PSK1), -807, "product not associated")
            self.assertEqual(self.bind(m, GWPID, "gw2", PSK1), -807, "a gateway as a sub-device")
            self.assertEqual(self.bind(m, SUBPID, "n1", SUBPSK, method="hmacsha1", signmethod="hmacmd5"),
                             -804)
            self.assertEqual(self.bind(m, SUBPID, "n1", SUBPSK, random="x"), -801)
            self.assertEqual(self.bind(m, SUBPID, "n1", SUBPSK, authtype="token"), -801)
            self.assertEqual(self.gw_op(m, "bind", [{"device_name": "n1"}])["devices"][0]["result"],
                             -801)
            self.assertEqual(self.bind(m, SUBPID, "n1", SUBPSK), 0)
            self.assertEqual(self.bind(m, SUBPID, "n1", SUBPSK), -809)
            ev = self.last("gateway_bind", deviceName="n1")
            self.assertEqual((ev["result"], ev["gatewayDeviceName"], ev["batch"]), (-809, "gw1", 1))
            # bound to another gateway
            m2 = self.gw_session("gw2", connid="GWAY2")
            try:
                self.assertEqual(self.bind(m2, SUBPID, "n1", SUBPSK, gw="gw2"), -806)
                self.assertEqual(self.one(m2, "online", SUBPID, "n1", gw="gw2"), -1)
                self.assertEqual(self.one(m2, "unbind", SUBPID, "n1", gw="gw2"), -808)
            finally:
                m2.close()
            # the SDKs' variants: upper-case signmethod, timestamp and random as strings (§G20)
            self.assertEqual(self.bind(m, SUBPID, "n2", SUBPSK, method="HMACSHA256"), 0)
            now = int(time.time())
            e = self.bind_entry(SUBPID, "n3", SUBPSK, ts=now)
            e.update(timestamp=str(now), random=str(e["random"]))
            self.assertEqual(self.gw_op(m, "bind", [e])["devices"][0]["result"], 0)
            devs = self.gw_op(m, "describe_sub_devices")["devices"]
            self.assertEqual(devs, [{"product_id": SUBPID, "device_name": "n%d" % i} for i in (1, 2, 3)])
            self.assertEqual(self.one(m, "online", SUBPID, "n4"), -1, "online before bind")
            self.assertEqual(self.one(m, "offline", SUBPID, "n4"), -1)
            self.assertEqual(self.one(m, "unbind", SUBPID, "ghost"), -802)
            # not JSON, an unknown type: logged, not answered
            m.publish("$gateway/operation/%s/gw1" % GWPID, "nope")
            m.publish("$gateway/operation/%s/gw1" % GWPID, {"type": "reboot"})
            self.ctl("wait", match={"ev": "gateway_unhandled", "type": "reboot"}, timeout=5)
            for dn in ("n1", "n2", "n3"):
                self.assertEqual(self.one(m, "unbind", SUBPID, dn), 0)
            self.assertEqual(self.gw_op(m, "describe_sub_devices")["devices"], [])
        finally:
            m.close()
        # a device of a product that is not a gateway product: -808
        d, rc = self.dev_connect("n5", SUBPSK, pid=SUBPID)
        try:
            self.assertEqual(rc, 0)
            self.assertEqual(d.subscribe(["$gateway/operation/result/%s/n5" % SUBPID]), [0])
            res = self.gw_op(d, "bind", [self.bind_entry(SUBPID, "n6", SUBPSK)], gw="n5",
                             pid=SUBPID)["devices"]
            self.assertEqual(res[0]["result"], -808)
        finally:
            d.close()

    def test_gateway_subdevice_traffic(self):
        n, up = "n7", self.topic("up", "property", "n7", pid=SUBPID)
        down = self.topic("down", "property", "n7", pid=SUBPID)
        report = {"method": "report", "clientToken": "s1", "params": {"MQ2": 5}}
        # before bind: a sub-device SUBSCRIBE is refused, a PUBLISH closes the connection (ACL)
        m = self.gw_session()
        since = self.ctl("health")["seq"]
        self.assertEqual(m.subscribe([down]), [0x80])
        m.publish(up, report)
        self.assertTrue(m.closed_within(3))
        m.close()
        self.assertEqual(self.last("subdev_refused", since, op="publish")["why"], "not bound to a gateway")
        # bound but not online: refused too
        m = self.gw_session()
        try:
            self.assertEqual(self.bind(m, SUBPID, n, SUBPSK), 0)
            self.assertEqual(m.subscribe([down]), [0x80])
            self.assertTrue(self.last("subdev_refused", since, op="subscribe")["why"].startswith(
                "bound but not online"))
            self.assertEqual(self.one(m, "online", SUBPID, n), 0)
            self.assertEqual(self.one(m, "online", SUBPID, n), 0, "online twice")
            # one filter per SUBSCRIBE (§G18)
            self.assertEqual(m.subscribe([down, self.topic("down", "action", n, pid=SUBPID)]),
                             [0x80, 0x80])
            for k in ("property", "event", "action"):
                self.assertEqual(m.subscribe([self.topic("down", k, n, pid=SUBPID)]), [0])
            # report, event_post, get_status on the sub-device's own topics
            self.assertEqual(self.rpc_sub(m, n, "property", report)["code"], 0)
            r = self.rpc_sub(m, n, "property", {"method": "report", "clientToken": "s2",
                                                "params": {"MQ2": 99999}})
            self.assertEqual(r["code"], 406, "the sub-device product's template applies")
            r = self.rpc_sub(m, n, "event", {"method": "event_post", "clientToken": "e1",
                                             "eventId": "PowerAlarm", "type": "alert",
                                             "params": {"Voltage": 3.1}})
            self.assertEqual((r["method"], r["code"]), ("event_reply", 0))
            r = self.rpc_sub(m, n, "property", {"method": "get_status", "clientToken": "g1"})
            self.assertEqual(r["data"]["report"], {"MQ2": 5})
            props = self.ctl("properties", productId=SUBPID, deviceName=n)["properties"]
            self.assertEqual([(p["name"], p["value"]) for p in props], [("MQ2", 5)])
            self.assertEqual(len(self.ctl("events", productId=SUBPID, deviceName=n)["events"]), 1)
            # control and action to the sub-device, answered through the gateway
            for kind, args, reply in (
                    ("control", {"params": {"power_switch": 1}},
                     {"method": "control_reply", "code": 0, "status": "ok"}),
                    ("action", {"actionId": "blink", "params": {"n": 2}},
                     {"method": "action_reply", "code": 0, "status": "ok", "response": {"ok": 1}})):
                res = {}
                th = threading.Thread(target=lambda: res.update(self.ctl(
                    kind, productId=SUBPID, deviceName=n, wait=8, **args)))
                th.start()
                t, req = m.expect_publish()
                k = "property" if kind == "control" else "action"
                self.assertEqual(t, self.topic("down", k, n, pid=SUBPID))
                self.assertEqual(req["method"], kind)
                m.publish(self.topic("up", k, n, pid=SUBPID), dict(reply, clientToken=req["clientToken"]))
                th.join(10)
                self.assertFalse(res["timedOut"], kind)
                self.assertEqual(res["reply"]["code"], 0)
            # offline: its subscriptions go (subdev_offline_subs "drop"), its traffic is refused
            self.assertEqual(self.one(m, "offline", SUBPID, n), 0)
            ev = self.last("gateway_subdev_offline", deviceName=n)
            self.assertEqual(len(ev["droppedSubscriptions"]), 3)
            out = self.ctl("control", productId=SUBPID, deviceName=n, params={"power_switch": 0})
            self.assertEqual((out["deliveredTo"], out["queued"]), ([], True))
            self.ctl("settings", acl_action="drop")
            try:
                m.publish(up, report, qos=1, pid=4)
                self.assertEqual(m.packet()[0], 4)
                self.assertTrue(self.last("subdev_refused", since, op="publish")["why"].startswith(
                    "bound but not online"))
            finally:
                self.ctl("settings", acl_action="disconnect")
            self.assertEqual(self.one(m, "online", SUBPID, n), 0)
            self.assertEqual(m.subscribe([down]), [0])
            dev = self.ctl("device", productId=SUBPID, deviceName=n)
            self.assertEqual((dev["subOnline"], dev["subscriptions"], dev["onlineCount"]),
                             (True, [down], 3))
            since = self.ctl("health")["seq"]
        finally:
            m.close()
        # the gateway's connection closing takes its sub-devices offline; bindings stay
        ev = self.ctl("wait", match={"ev": "gateway_subdev_offline", "deviceName": n},
                      since=since, timeout=5)["event"]
        self.assertEqual(ev["why"], "gateway connection closed: peer closed")
        dev = self.ctl("device", productId=SUBPID, deviceName=n)
        self.assertEqual((dev["subOnline"], dev["boundTo"], dev["bindCount"]),
                         (False, {"productId": GWPID, "deviceName": "gw1"}, 1))
        m = self.gw_session()
        try:
            self.assertEqual(m.subscribe([down]), [0x80], "online again after a reconnect")
            self.assertEqual(self.one(m, "online", SUBPID, n), 0)
            self.assertEqual(m.subscribe([down]), [0])
            self.assertEqual(self.rpc_sub(m, n, "property", report)["code"], 0)
            # a newer session of the gateway takes the sub-devices offline too
            m2 = self.gw_session(connid="GWAY3")
            self.assertTrue(m.closed_within(3))
            self.assertFalse(self.device(n, pid=SUBPID)["subOnline"])
            self.assertEqual(self.one(m2, "unbind", SUBPID, n), 0)
            m2.close()
        finally:
            m.close()
        b = self.ctl("bindings", all=True, subProductId=SUBPID, subDeviceName=n)["bindings"]
        self.assertEqual([(x["bindCount"], x["unbindCount"], x["onlineCount"], x["online"],
                           x["gatewayDeviceName"]) for x in b], [(1, 1, 4, False, None)])

    def rpc_sub(self, m, dn, kind, obj):
        m.publish(self.topic("up", kind, dn, pid=SUBPID), obj)
        t, body = m.expect_publish()
        self.assertEqual(t, self.topic("down", kind, dn, pid=SUBPID))
        return body

    def test_gateway_cloud_initiated(self):
        m = self.gw_session("gw2", connid="GWAY4")
        res_topic = "$gateway/operation/result/%s/gw2" % GWPID
        op_topic = "$gateway/operation/%s/gw2" % GWPID
        try:
            # the console binds: change status 1, acknowledged by the gateway (§G18)
            res = {}
            th = threading.Thread(target=lambda: res.update(self.ctl(
                "gateway_bind", productId=GWPID, deviceName="gw2", subProductId=SUBPID,
                subDeviceName="n8", wait=8)))
            th.start()
            t, body = m.expect_publish()
            self.assertEqual((t, body), (res_topic, {"type": "change", "payload": {
                "status": 1, "devices": [{"product_id": SUBPID, "device_name": "n8"}]}}))
            m.publish(op_topic, {"type": "change", "payload": {"status": 1, "devices": [
                {"product_id": SUBPID, "device_name": "n8", "result": 0}]}})
            th.join(10)
            self.assertFalse(res["timedOut"])
            self.assertEqual((res["ack"]["matched"], res["ack"]["problems"]), (True, []))
            self.assertEqual(self.one(m, "online", SUBPID, "n8", gw="gw2"), 0)
            g = self.ctl("gateway", productId=GWPID, deviceName="gw2")
            self.assertEqual((g["online"], [x["deviceName"] for x in g["subDevices"]]), (["n8"], ["n8"]))
            # the console unbinds: change status 0, the sub-device is offline and unbound
            out = self.ctl("gateway_unbind", productId=GWPID, deviceName="gw2",
                           devices=[{"productId": SUBPID, "deviceName": "n8"}])
            t, body = m.expect_publish()
            self.assertEqual(body["payload"]["status"], 0)
            m.publish(op_topic, {"type": "change", "payload": {"status": 0, "devices": [
                {"product_id": SUBPID, "device_name": "n8"}]}})   # result missing
            ack = self.ctl("wait", match={"ev": "gateway_ack", "push": out["id"]}, timeout=5)["event"]
            self.assertEqual(ack["problems"],
                             ["each device needs product_id, device_name and result (integer)"])
            self.assertEqual(self.one(m, "online", SUBPID, "n8", gw="gw2"), -1)
            # search_devices and unbind_all
            res = {}
            th = threading.Thread(target=lambda: res.update(self.ctl(
                "search_devices", productId=GWPID, deviceName="gw2", status=1, wait=8)))
            th.start()
            t, body = m.expect_publish()
            self.assertEqual(body, {"type": "search_devices", "payload": {"status": 1}})
            m.publish(op_topic, {"type": "search_devices", "payload": {"status": 1, "result": 0}})
            th.join(10)
            self.assertTrue(res["ack"]["matched"])
            self.ctl("gateway_bind", productId=GWPID, deviceName="gw2", subProductId=SUBPID,
                     subDeviceName="n8", notify=False)
            self.assertEqual(self.one(m, "online", SUBPID, "n8", gw="gw2"), 0)
            res = {}
            th = threading.Thread(target=lambda: res.update(self.ctl(
                "unbind_all", productId=GWPID, deviceName="gw2", wait=8)))
            th.start()
            t, body = m.expect_publish()
            self.assertEqual(body, {"type": "unbind_all"})
            m.publish(op_topic, {"type": "unbind_all", "payload": {"result": 0}})
            th.join(10)
            self.assertEqual((res["ack"]["matched"], res["unbound"]), (True, [[SUBPID, "n8"]]))
            self.assertEqual(self.ctl("bindings", productId=GWPID, deviceName="gw2")["bindings"], [])
            self.assertFalse(self.device("n8", pid=SUBPID)["subOnline"])
            # injected results, a disabled sub-device, a deleted one
            self.assertEqual(self.bind(m, SUBPID, "n8", SUBPSK, gw="gw2"), 0)
            self.ctl("inject_gateway", productId=SUBPID, deviceName="n8", op="online", result=-2)
            self.assertEqual(self.one(m, "online", SUBPID, "n8", gw="gw2"), -2)
            self.assertEqual(self.one(m, "online", SUBPID, "n8", gw="gw2"), 0)
            self.ctl("set_device", productId=SUBPID, deviceName="n8", enabled=False)
            self.assertFalse(self.device("n8", pid=SUBPID)["subOnline"])
            self.assertEqual(self.one(m, "online", SUBPID, "n8", gw="gw2"), -2)
            self.ctl("set_device", productId=SUBPID, deviceName="n8", enabled=True)
            self.assertEqual(self.one(m, "online", SUBPID, "n8", gw="gw2"), 0)
            self.ctl("add_device", productId=SUBPID, deviceName="n9", psk=SUBPSK)
            self.assertEqual(self.bind(m, SUBPID, "n9", SUBPSK, gw="gw2"), 0)
            out = self.ctl("delete_device", productId=SUBPID, deviceName="n9")
            t, body = m.expect_publish()
            self.assertEqual(body["payload"], {"status": 0, "devices": [
                {"product_id": SUBPID, "device_name": "n9"}]})
            self.assertEqual(self.one(m, "online", SUBPID, "n9", gw="gw2"), -1)
            self.assertEqual(self.bind(m, SUBPID, "n9", SUBPSK, gw="gw2"), -802)
            # another gateway (add_gateway); the console moves n8 there only with force
            self.ctl("add_gateway", productId="GWPROD0002", deviceName="gwx", psk=PSK1,
                     subProducts=[SUBPID])
            self.assertEqual(self.ctl("gateway", productId="GWPROD0002", deviceName="gwx")
                             ["subProducts"], [SUBPID])
            self.assertFalse(self.ctl("gateway_bind", expect_ok=False, productId="GWPROD0002",
                                      deviceName="gwx", subProductId=SUBPID,
                                      subDeviceName="n8")["ok"], "bound to gw2")
            self.ctl("gateway_bind", productId="GWPROD0002", deviceName="gwx", subProductId=SUBPID,
                     subDeviceName="n8", force=True)
            t, body = m.expect_publish()
            self.assertEqual((t, body["payload"]["status"]), (res_topic, 0), "gw2 is told")
            self.assertEqual([(b["gatewayDeviceName"], b["online"]) for b in self.ctl(
                "bindings", subProductId=SUBPID, subDeviceName="n8")["bindings"]], [("gwx", False)])
            self.ctl("gateway_unbind", productId="GWPROD0002", deviceName="gwx",
                     subProductId=SUBPID, subDeviceName="n8", notify=False)
        finally:
            m.close()
        self.assertFalse(self.ctl("gateway", expect_ok=False, productId=SUBPID,
                                  deviceName="n1")["ok"], "not a gateway product")
        self.assertFalse(self.ctl("gateway_bind", expect_ok=False, productId=GWPID,
                                  deviceName="gw2", subProductId=NAPID,
                                  subDeviceName="x1")["ok"], "not associated")

    # ---- control API and process model
    def test_control_api_and_log(self):
        self.assertFalse(self.ctl("nonexistent", expect_ok=False)["ok"])
        self.assertFalse(self.ctl("https_fail", expect_ok=False, mode="bogus")["ok"])
        self.assertFalse(self.ctl("settings", expect_ok=False, acl_action="ignore")["ok"])
        self.assertFalse(self.ctl("settings", expect_ok=False, nosuch=1)["ok"])
        self.assertFalse(self.ctl("device", expect_ok=False, productId=PID, deviceName="nope")["ok"])
        self.assertFalse(self.ctl("add_product", expect_ok=False, productId="X",
                                  productSecret="short")["ok"])
        with open(os.path.join(self.dir, "events.jsonl")) as f:
            first = json.loads(f.readline())
        self.assertIn("seq", first)
        log = self.ctl("log", ev="ready")["events"]
        self.assertEqual(log[0]["ports"]["mqtts"], self.ports["mqtts"])

    def test_sigterm(self):
        d = tempfile.mkdtemp(prefix="tencent-cloud-2-", dir=self.dir)
        proc, err, ports = self.start(d)
        try:
            self.assertEqual(self.ctl("health", port=ports["control"])["ports"]["pid"], proc.pid)
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(5), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            err.close()


class SplitCaTests(unittest.TestCase):
    """--https-cert/--https-key: the HTTPS registration listener under another CA than MQTT, as
    the platform serves them (docs/protocols/tencent.md §1.6)."""

    def test_https_and_mqtts_under_two_cas(self):
        d = tempfile.mkdtemp(prefix="tencent-cloud-split-")
        reg = os.path.join(d, "reg")
        os.mkdir(reg)
        make_certs(d)
        make_certs(reg)
        with open(os.path.join(d, "products.json"), "w") as f:
            json.dump({"products": [{"productId": PID, "productSecret": PS,
                                     "devices": ["dev1"]}]}, f)
        err = open(os.path.join(d, "cloud.stderr"), "w")
        proc = subprocess.Popen(
            [PYTHON, os.path.join(HERE, "tencent_cloud.py"), "--dir", d,
             "--products", os.path.join(d, "products.json"),
             "--cert", os.path.join(d, "server.crt"), "--key", os.path.join(d, "server.key"),
             "--https-cert", os.path.join(reg, "server.crt"),
             "--https-key", os.path.join(reg, "server.key")],
            stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        try:
            pf = os.path.join(d, "ports.json")
            dl = time.monotonic() + 15
            while not os.path.exists(pf):
                self.assertIsNone(proc.poll(), "the cloud exited")
                self.assertLess(time.monotonic(), dl, "the cloud did not start")
                time.sleep(0.02)
            with open(pf) as f:
                ports = json.load(f)
            mqtt_ca = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
            reg_ca = ssl.create_default_context(cafile=os.path.join(reg, "ca.crt"))

            def handshake(port, ctx):
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    try:
                        with ctx.wrap_socket(s, server_hostname="localhost"):
                            return True
                    except ssl.SSLCertVerificationError:
                        return False

            self.assertTrue(handshake(ports["https"], reg_ca))
            self.assertFalse(handshake(ports["https"], mqtt_ca))
            self.assertTrue(handshake(ports["mqtts"], mqtt_ca))
            self.assertFalse(handshake(ports["mqtts"], reg_ca))
        finally:
            proc.terminate()
            proc.wait(timeout=5)
            err.close()
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
