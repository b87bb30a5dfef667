#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpora under fuzz/corpus/ (run from anywhere; rerun after a format change).

Seeds are small valid inputs of each kind plus a few classic near-misses; libFuzzer mutates
from there. Frames are the worked examples of docs/protocol.md; registration replies follow
docs/protocols/ (the Tencent one is the vector of docs/protocols/tencent.md §2.1); config files are the ones
in conf/ and tests/data/config/; thing models are the console exports in tests/data/models/.
"""
import glob
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def hexbytes(s):
    return bytes.fromhex(" ".join(s.split()))


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


HELLO = hexbytes("04 01 01 03 01 02 30 02 41 09 0d 51 33 38 37 37 39 30 01 01 0a 07 05 31 2e"
                 "34 2e 32 89 d8 00")
TELEMETRY = hexbytes("04 01 02 03 07 01 03 4d 51 32 02 01 01 09 1e 05 4d 51 31 33 35 02 01 01"
                     "07 5f 03 4d 51 34 02 01 01 07 0c 03 4d 51 37 02 01 01 0d 08 07 44 48 54"
                     "31 31 5f 54 04 41 68 01 0a 07 44 48 54 31 31 5f 48 02 01 01 04 3d de 2c 00")
COMMAND = hexbytes("05 01 04 03 01 01 03 11 01 09 06 70 65 72 69 6f 64 02 01 01 04 0a 28 80 00")
REPLY = hexbytes("04 01 05 03 02 02 02 11 0a c8 06 70 65 72 69 6f 64 02 01 01 0d 0a 06 68 65"
                 "61 74 65 72 01 01 77 06 00")


def frames():
    # first byte: how the rest is cut into reads (value % 64 + 1 bytes)
    put("frame-binary", "hello", b"\x3f" + HELLO)
    put("frame-binary", "hello-split-1", b"\x00" + HELLO)
    put("frame-binary", "telemetry", b"\x07" + TELEMETRY)
    put("frame-binary", "command", b"\x3f" + COMMAND)
    put("frame-binary", "reply", b"\x05" + REPLY)
    put("frame-binary", "hello-bad-crc", b"\x3f" + HELLO[:-3] + b"\x00\x01\x00")
    put("frame-binary", "two-frames-noise", b"\x10" + b"\xff\xfe" + HELLO + REPLY)
    put("frame-binary", "empty-frames", b"\x3f" + b"\x00\x00\x00")
    text = ["MQ2=30,MQ135=95,MQ4=12,MQ7=8,DHT11_T=14.5,DHT11_H=61\n",
            "MQ2:30 MQ135:95\r\n",
            '{"MQ2":30,"MQ135":95,"DHT11_T":14.5}\n',
            "MQ2=,=5,;;\n",
            "DHT11_T=1e309 MQ2=-9223372036854775809\n",
            '{"a":{"b":1}}\n{"x":"\\u00e9"}\n',
            # the clouds' own shapes (docs/protocol.md 2.4.1)
            '{"method":"report","clientToken":"CS0SLTKSYA-1","params":{"MQ2":30,"ok":true}}\n',
            '{"method":"event_post","clientToken":"t-2","version":"1.0","eventId":"smoke",'
            '"type":"alert","timestamp":1700000000000,"params":{"MQ2":900}}\n',
            '{"id":"123","version":"1.0","sys":{"ack":0},"params":{"MQ2":30,'
            '"T":{"value":24.5,"time":1524448722000}},"method":"thing.event.property.post"}\n',
            '{"id":124,"version":"1.0","params":{"value":{"level":3},"time":5},'
            '"method":"thing.event.alarm.post"}\n']
    for i, t in enumerate(text):
        put("frame-text", "line-%d" % i, "\x3f" + t)
    put("frame-text", "split", "\x02" + "".join(text))


def configs():
    os.makedirs(os.path.join(CORPUS, "config"), exist_ok=True)
    for p in [os.path.join(ROOT, "conf", "sensorgw.conf")] + \
            sorted(glob.glob(os.path.join(ROOT, "tests", "data", "config", "*.conf"))):
        shutil.copyfile(p, os.path.join(CORPUS, "config", os.path.basename(p)))
    put("config", "bom-long-line", "\ufeff[gateway]\nstate_dir = /tmp/x" + "y" * 300 + "\n")
    put("config", "uplinks",
        "[gateway]\nstate_dir = /tmp/fuzz-state\n[port uart1]\ndevice = /dev/null\nbaud = 115200\n"
        "[uplink a]\ntype = aliyun\nproduct_key = a1B2c3D4e5F\nregion = cn-shanghai\n"
        "auth = register\nproduct_secret = x\n"
        "[uplink t]\ntype = tencent\nproduct_id = CS0SLTKSYA\nauth = psk\n"
        "[map MQ2]\nport = uart1\nfield = MQ2\nscale = 0.1\n")


def downlinks():
    pre = "/sys/a1B2c3D4e5F/stm32-0001/"
    put("aliyun-downlink", "property-set",
        pre + 'thing/service/property/set\0{"id":"123","version":"1.0","params":{"period":10},'
        '"method":"thing.service.property.set"}')
    put("aliyun-downlink", "service",
        pre + 'thing/service/ping\0{"id":"7","version":"1.0","params":{"n":1,"s":"x"}}')
    put("aliyun-downlink", "rrpc",
        pre + 'rrpc/request/1234567890\0{"id":"9","method":"thing.service.property.set",'
        '"params":{"heater":true}}')
    put("aliyun-downlink", "post-reply",
        pre + 'thing/event/property/post_reply\0{"code":200,"data":{},"id":"45","message":"success"}')
    put("aliyun-downlink", "event-reply",
        pre + 'thing/event/alarm/post_reply\0{"code":6106,"id":"46","message":"x"}')
    pre = "$thing/down/"
    put("tencent-downlink", "control",
        pre + 'property/CS0SLTKSYA/dev1\0{"method":"control","clientToken":"CS0SLTKSYA-1",'
        '"params":{"period":10}}')
    put("tencent-downlink", "report-reply",
        pre + 'property/CS0SLTKSYA/dev1\0{"method":"report_reply","clientToken":"CS0SLTKSYA-2",'
        '"code":406,"status":"template mismatch"}')
    put("tencent-downlink", "get-status-reply",
        pre + 'property/CS0SLTKSYA/dev1\0{"method":"get_status_reply","clientToken":"t",'
        '"code":0,"status":"","data":{"control":{"period":5}}}')
    put("tencent-downlink", "action",
        pre + 'action/CS0SLTKSYA/dev1\0{"method":"action","clientToken":"a1","actionId":"ping",'
        '"timestamp":1700000000,"params":{"n":1}}')
    put("tencent-downlink", "event-reply",
        pre + 'event/CS0SLTKSYA/dev1\0{"method":"event_reply","clientToken":"e1","code":0,'
        '"status":"","data":{}}')


def registers():
    put("aliyun-register", "https-ok",
        '\0{"code":200,"data":{"productKey":"a1B2c3D4e5F","deviceName":"stm32-0001",'
        '"deviceSecret":"0123456789abcdef0123456789abcdef"},"message":"success"}')
    put("aliyun-register", "https-refused", '\0{"code":6288,"message":"device exists"}')
    put("aliyun-register", "push-register",
        '\1{"productKey":"a1B2c3D4e5F","deviceName":"stm32-0001","deviceSecret":"abc123"}')
    put("aliyun-register", "push-regnwl",
        '\2{"productKey":"a1B2c3D4e5F","deviceName":"stm32-0001","clientId":"cid",'
        '"deviceToken":"tok"}')
    vec = ("s6FB3a1BA/YYbcmSE12XpeDVmQNDcf1QgVD141RRbmmAnFwQfp1ECAu5O016mCOvYlJJ6V59yM4OqQSiWph"
           "fTg==")
    put("tencent-register", "v2-ok",
        '\0{"Response":{"Len":53,"Payload":"%s","RequestId":"r1"}}' % vec)
    put("tencent-register", "v2-error",
        '\0{"Response":{"Error":{"Code":"InvalidParameterValue","Message":"x"},"RequestId":"r"}}')
    put("tencent-register", "legacy-ok", '\1{"code":0,"message":"","payload":"%s"}' % vec)
    put("tencent-register", "decrypt", "\2" + vec)
    put("tencent-register", "plain-psk", '\3{"encryptionType":2,"psk":"IyXmUW5sU/q1vnb5yzTkeQ=="}')
    put("tencent-register", "plain-cert",
        '\4{"encryptionType":1,"clientCert":"-----BEGIN CERTIFICATE-----\\nMIIB\\n'
        '-----END CERTIFICATE-----\\n","clientKey":"-----BEGIN PRIVATE KEY-----\\nMIIE\\n'
        '-----END PRIVATE KEY-----\\n"}')


def gateways():
    # first byte: the kind (fuzz-aliyun-gateway.c order) or the direction (0 down, 1 up)
    pk, dn = "a13FN5TplKq", "subdev_basic_demo_01"
    ident = '{"productKey":"%s","deviceName":"%s"}' % (pk, dn)
    put("aliyun-gateway", "topo-add-reply", '\0{"id":"1","code":200,"data":[%s]}' % ident)
    put("aliyun-gateway", "topo-get-reply",
        '\2{"id":"2","code":"200","message":"success","data":[%s,%s]}' % (ident, ident))
    put("aliyun-gateway", "topo-change",
        '\4{"id":"3","version":"1.0","method":"thing.topo.change",'
        '"params":{"status":8,"subList":[%s]}}' % ident)
    put("aliyun-gateway", "sub-register-reply",
        '\5{"id":"4","code":200,"data":[{"iotId":"x1","productKey":"%s","deviceName":"%s",'
        '"deviceSecret":"768XBgQwgOakz3K4uhOiLeeh9xjJQx6h"}]}' % (pk, dn))
    put("aliyun-gateway", "product-register-reply",
        '\6{"id":"5","code":200,"data":{"proxieds":[%s]}}' % ident)
    put("aliyun-gateway", "login-reply", '\7{"id":"6","code":6287,"message":"invalid sign",'
        '"data":%s}' % ident)
    put("aliyun-gateway", "batch-login-reply", '\x08{"id":"7","code":200,"data":[%s]}' % ident)
    put("aliyun-gateway", "ext-error", '\x0b{"id":"8","code":520,"message":"device session '
        'error","data":%s}' % ident)
    put("aliyun-gateway", "disable", '\x0c{"id":"9","version":"1.0","params":{},'
        '"method":"thing.disable"}')
    dev = '{"product_id":"CS0SLTKSYA","device_name":"dev1"'
    put("tencent-gateway", "bind-result",
        '\0{"type":"bind","payload":{"devices":[%s,"result":-805}]}}' % dev)
    put("tencent-gateway", "online-result",
        '\0{"type":"online","payload":{"devices":[%s,"result":0}]}}' % dev)
    put("tencent-gateway", "describe", '\0{"type":"describe_sub_devices","payload":'
        '{"devices":[%s},%s}]}}' % (dev, dev))
    put("tencent-gateway", "change", '\0{"type":"change","payload":{"status":1,'
        '"devices":[%s}]}}' % dev)
    put("tencent-gateway", "search-devices", '\0{"type":"search_devices","payload":'
        '{"status":1}}')
    put("tencent-gateway", "unbind-all", '\0{"type":"unbind_all"}')
    put("tencent-gateway", "bind-request",
        '\1{"type":"bind","payload":{"devices":[%s,"signature":"wXZ7zHGlZkgGuQ6v1CWz3W/HP70=",'
        '"random":1804289383,"timestamp":1735689600,"signmethod":"hmacsha1",'
        '"authtype":"psk"}]}}' % dev)
    put("tencent-gateway", "change-ack", '\1{"type":"change","payload":{"status":1,'
        '"devices":[%s,"result":0}]}}' % dev)


def spool():
    hdr = b"GWQ1" + struct.pack("<IQQ", 1, 1, 0)
    hdr += struct.pack("<II", crc32c(hdr), 0)
    recs = b""
    for seq in range(1, 4):
        payload = b'stm32-0001\0node\0uart1\0\0{"device":"stm32-0001","seq":%d}' % seq
        body = struct.pack("<QqB", seq, 1700000000000 + seq, 1) + payload
        recs += struct.pack("<II", len(body), crc32c(body)) + body
    # first byte even: the input is the whole file; odd: a valid header is put in front
    put("spool", "three-records", b"\0" + hdr + recs)
    put("spool", "records-only", b"\1" + recs)
    put("spool", "torn-tail", b"\0" + hdr + recs[:-7])
    put("spool", "bad-crc", b"\1" + recs[:20] + b"\xff" + recs[21:])
    put("spool", "header-only", b"\0" + hdr)


def control():
    for i, t in enumerate(["status\n", "version\r\n", "reload\n", "debug-stall 10\n",
                           "status extra\n", "\n", "stat\0us\n"]):
        put("control", "req-%d" % i, t)


def thingmodels():
    for name in ["aliyun-tsl", "tencent-template"]:
        shutil.copyfile(os.path.join(ROOT, "tests", "data", "models", name + ".json"),
                        os.path.join(CORPUS, "thingmodel", name))
    put("thingmodel", "aliyun-struct-array",
        '{"schema":"s","properties":[{"identifier":"P","dataType":{"type":"struct","specs":['
        '{"identifier":"a","dataType":{"type":"int","specs":{"min":"0","max":"10","step":"2"}}},'
        '{"identifier":"d","dataType":{"type":"date","specs":{}}}]}},'
        '{"identifier":"L","dataType":{"type":"array","specs":{"size":"3","item":'
        '{"type":"text","specs":{"length":"4"}}}}}],'
        '"events":[{"identifier":"E","type":"error","outputData":[{"identifier":"x",'
        '"dataType":{"type":"double","specs":{"step":"0.01"}}}]}]}')
    put("thingmodel", "tencent-stringenum-struct",
        '{"version":"1.0","properties":[{"id":"E","define":{"type":"stringenum","mapping":'
        '{"low":"低","high":"高"}}},{"id":"T","define":{"type":"timestamp"}},'
        '{"id":"S","define":{"type":"struct","specs":[{"id":"v","dataType":{"type":"float",'
        '"min":"-1","max":"1"}}]}}],'
        '"events":[{"id":"f","type":"fault","params":[{"id":"c","define":{"type":"int",'
        '"min":"0","max":"9"}}]}]}')
    put("thingmodel", "error-type",
        '{"schema":"s","properties":[{"identifier":"A","dataType":{"type":"long"}}]}')
    put("thingmodel", "error-truncated", '{"schema":"s","properties":[{"identifier":"A","dat')


if __name__ == "__main__":
    frames()
    configs()
    downlinks()
    registers()
    gateways()
    spool()
    control()
    thingmodels()
