# SPDX-License-Identifier: MIT
"""The gateway side of the Tencent test cloud (tencent_cloud.py), stdlib only.

A gateway-type product's device connects as a normal device and carries its sub-devices over its
one MQTT connection (docs/protocols/gateway.md §G15-§G18):
  * the operations bind / unbind / online / offline / describe_sub_devices on
    $gateway/operation/{pid}/{dn}, answered on $gateway/operation/result/{pid}/{dn} (§G16),
    bind checked with the signature of §G17;
  * the cloud-initiated change / search_devices / unbind_all (§G18) and the gateway's acks;
  * which sub-device topics ($thing/up|down/.../{subPID}/{subDN}) the gateway's connection may
    use: only those of a sub-device bound to it and online through that connection (§G18).

Decisions where gateway.md is silent are marked "DECISION" and listed in TENCENT.md ("Gateway").
"""
import base64
import binascii
import hashlib
import hmac
import json

from cloudbase import CtlError, now_ms

# §G16 bind/unbind result codes, as mirrored in [EXPC] qcloud_iot_export_error.h
BIND_OK = 0
PARAM_ERROR = -801         # parameter error
NO_SUBDEV = -802           # sub-device does not exist or is illegal
BAD_SIGN = -803            # signature check failed
BAD_SIGNMETHOD = -804      # signmethod not supported
SIGN_EXPIRED = -805        # timestamp too old or too new
OTHER_GATEWAY = -806       # bound to another gateway
NOT_ALLOWED = -807         # sub-device not allowed to bind
NOT_PERMITTED = -808       # operation not permitted
ALREADY_BOUND = -809       # repeated bind: already bound to this gateway
# §G16 online/offline result codes ([TD-ONL])
NOT_BOUND = -1
SYSTEM_ERROR = -2

SIGN_HASHES = {"hmacsha1": hashlib.sha1, "hmacsha256": hashlib.sha256}
OPS = ("bind", "unbind", "online", "offline")


# --------------------------------------------------------------------------------------------
# §G17 bind signature

def bind_sign_text(pid, dn, random, timestamp):
    """§G17: ${product_id}${device_name};${random};${timestamp}, decimal integers."""
    return "%s%s;%d;%d" % (pid, dn, random, timestamp)


def bind_signature(key, text, method="hmacsha1"):
    """§G17: Base64 of the raw HMAC digest. key: the sub-device's PSK *text* (as ASCII bytes,
    not base64-decoded), or for authtype certificate the lower-case hex MD5 of the certificate
    file ([EXPC])."""
    key = key.encode() if isinstance(key, str) else key
    return base64.b64encode(hmac.new(key, text.encode(), SIGN_HASHES[method]).digest()).decode()


def cert_key(pem):
    """§G17 authtype certificate, as [EXPC] does it: the hex MD5 of the whole certificate file."""
    return hashlib.md5(pem.encode() if isinstance(pem, str) else pem).hexdigest()


def signature_mistake(key, pid, dn, random, timestamp, method, sig):
    """What a refused signature is, when it is one of the mistakes §G19 lists (the negative
    vectors) or the IoT Hub doc variant without the second ';' (§G17). None otherwise."""
    text = bind_sign_text(pid, dn, random, timestamp)
    h = SIGN_HASHES[method]
    kb = key.encode()
    if sig == base64.b64encode(hmac.new(kb, text.encode(), h).hexdigest().encode()).decode():
        return "base64 of the hex digest"
    try:
        dk = base64.b64decode(key, validate=True)
    except binascii.Error:
        dk = None
    if dk is not None and sig == base64.b64encode(hmac.new(dk, text.encode(), h).digest()).decode():
        return "key is the base64-decoded PSK, not the PSK text"
    if sig == bind_signature(kb, "%s%s;%d%d" % (pid, dn, random, timestamp), method):
        return "text without the second ';'"
    other = "hmacsha256" if method == "hmacsha1" else "hmacsha1"
    if sig == bind_signature(kb, text, other):
        return "signed with %s, signmethod says %s" % (other, method)
    return None


# --------------------------------------------------------------------------------------------
# Sub-device state (the fields live on tencent_cloud.Device)

def who(gw):
    return {"gatewayProductId": gw.pid, "gatewayDeviceName": gw.dn}


def binding_summary(d):
    gw = d.gateway
    return {"productId": d.pid, "deviceName": d.dn,
            "gatewayProductId": gw.pid if gw else None, "gatewayDeviceName": gw.dn if gw else None,
            "online": d.sub_conn is not None, "boundAt": d.bound_at,
            "bindAttempts": d.bind_attempts, "bindCount": d.bind_count,
            "unbindCount": d.unbind_count, "onlineCount": d.online_count,
            "offlineCount": d.offline_count, "lastResults": dict(d.gw_results)}


def put_offline(cloud, broker, d, why):
    """The sub-device's session through its gateway ends (an offline, an unbind, the gateway's
    connection closing, ...). Its subscriptions on that connection are dropped unless the
    setting subdev_offline_subs is "keep" (DECISION)."""
    c = d.sub_conn
    if c is None:
        return
    d.sub_conn = None
    c.subdevs.pop((d.pid, d.dn), None)
    dropped = []
    if cloud.settings["subdev_offline_subs"] == "drop":
        for f in list(c.subs):
            parts = f.split("/")
            if len(parts) == 5 and parts[0] == "$thing" and parts[3:] == [d.pid, d.dn]:
                del c.subs[f]
                dropped.append(f)
    cloud.log("gateway_subdev_offline", productId=d.pid, deviceName=d.dn, conn=c.id, why=why,
              droppedSubscriptions=dropped, **who(c.device))


def unbind(cloud, broker, gw, d, why):
    put_offline(cloud, broker, d, why)
    gw.subdevs.pop((d.pid, d.dn), None)
    d.gateway, d.bound_at = None, None
    d.unbind_count += 1


def do_bind(gw, d):
    d.gateway, d.bound_at = gw, now_ms()
    gw.subdevs[(d.pid, d.dn)] = d
    d.bind_count += 1


def sub_topic_check(cloud, c, pid, dn):
    """Whether the gateway connection c may use the $thing topics of sub-device pid/dn
    (§G18: after bind and an online with result 0). Returns (device or None, why or None)."""
    d = cloud.device(pid, dn)
    if d is None:
        return None, "unknown sub-device"
    if d.gateway is None:
        return d, "not bound to a gateway"
    if d.gateway is not c.device:
        return d, "bound to another gateway (%s/%s)" % (d.gateway.pid, d.gateway.dn)
    if d.sub_conn is not c:
        return d, "bound but not online (no online with result 0 on this connection)"
    return d, None


# --------------------------------------------------------------------------------------------
# $gateway/operation/{pid}/{dn}: what the gateway sends (§G16, §G18 acks)

def _int(v):
    """An integer, or a string of decimal digits (§G20: timestamps as strings or numbers)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.lstrip("-").isdigit() and v.isascii():
        return int(v)
    return None


def operation(cloud, broker, c, payload):
    """Runs in the broker thread: one message the gateway c published on its operation topic."""
    gw = c.device
    rx = now_ms()
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        obj = None
    typ = obj.get("type") if isinstance(obj, dict) else None
    if typ in ("change", "search_devices", "unbind_all"):
        return ack(cloud, gw, typ, obj, rx)
    if typ == "describe_sub_devices":
        with cloud.lock:
            devs = [{"product_id": d.pid, "device_name": d.dn} for d in gw.subdevs.values()] \
                if cloud.products[gw.pid].gateway else []
        # §G16: the [HUBC]/[TPY] reply form (the [EXPC] reading is an SDK bug)
        reply = {"type": "describe_sub_devices", "payload": {"devices": devs}}
        delivered = send_result(cloud, broker, gw, reply)
        cloud.log("gateway_describe", conn=c.id, count=len(devs), replyDelivered=bool(delivered),
                  **who(gw))
        return
    devices = obj.get("payload", {}).get("devices") \
        if isinstance(obj, dict) and isinstance(obj.get("payload"), dict) else None
    if typ not in OPS or not isinstance(devices, list) or not devices:
        # DECISION: not JSON, an unknown type or no payload.devices: logged, not answered
        cloud.log("gateway_unhandled", conn=c.id, type=typ,
                  payload=payload[:2048].decode("utf-8", "replace"),
                  why="unknown type" if typ not in OPS else "payload.devices is not a non-empty array",
                  **who(gw))
        return
    results = []
    for ent in devices:
        with cloud.lock:
            res, reason, d, extra = OP_FUNCS[typ](cloud, broker, c, gw, ent)
        pid = ent.get("product_id") if isinstance(ent, dict) else None
        dn = ent.get("device_name") if isinstance(ent, dict) else None
        out = {"product_id": pid, "device_name": dn, "result": res}
        results.append(out)
        cloud.log("gateway_" + typ, conn=c.id, productId=pid, deviceName=dn, result=res,
                  reason=reason, batch=len(devices), **extra, **who(gw))
    reply = {"type": typ, "payload": {"devices": results}}
    delivered = send_result(cloud, broker, gw, reply)
    cloud.log("gateway_operation", conn=c.id, type=typ, count=len(devices),
              results=[r["result"] for r in results], replyDelivered=bool(delivered), **who(gw))


def send_result(cloud, broker, gw, obj):
    topic = "$gateway/operation/result/%s/%s" % (gw.pid, gw.dn)
    return broker.deliver(gw, topic, json.dumps(obj, separators=(",", ":")).encode())


def _entry(cloud, gw, ent):
    """Common checks of one payload.devices entry: (result, reason, sub-device) with result
    None when they pass."""
    if not isinstance(ent, dict) or not isinstance(ent.get("product_id"), str) or \
            not isinstance(ent.get("device_name"), str) or not ent["product_id"] or \
            not ent["device_name"]:
        return PARAM_ERROR, "product_id and device_name must be non-empty strings", None
    if not cloud.products[gw.pid].gateway:
        # DECISION: a device of a product that is not a gateway product gets -808 for every
        # device of every operation
        return NOT_PERMITTED, "%s is not a gateway product" % gw.pid, None
    return None, None, cloud.device(ent["product_id"], ent["device_name"])


def _injected(d, op):
    for inj in d.gw_inject:
        if inj["op"] == op and inj["count"] > 0:
            inj["count"] -= 1
            d.gw_inject = [x for x in d.gw_inject if x["count"] > 0]
            return inj["result"]
    return None


def op_bind(cloud, broker, c, gw, ent):
    res, why, d = _entry(cloud, gw, ent)
    extra = {}
    if res is None and d is not None:
        d.bind_attempts += 1
    res2 = res is None and _bind_checks(cloud, gw, ent, d, extra)
    if res2:
        res, why = res2
    elif res is None:
        do_bind(gw, d)
        res, why = BIND_OK, None
    if d is not None:
        d.gw_results["bind"] = res
    return res, why, d, extra


def _bind_checks(cloud, gw, ent, d, extra):
    """§G16/§G17 bind checks in order; (code, reason) or None when the bind may go ahead.
    DECISION: parameters, signmethod, sub-device, association, signature, timestamp, then
    the binding's state; so -805 means "signed right, clock wrong"."""
    sig, method = ent.get("signature"), ent.get("signmethod")
    rnd, ts = _int(ent.get("random")), _int(ent.get("timestamp"))
    auth = ent.get("authtype", "psk")
    extra.update(signmethod=method, authtype=ent.get("authtype"), random=ent.get("random"),
                 timestamp=ent.get("timestamp"))
    if not isinstance(sig, str) or not sig or rnd is None or ts is None:
        return PARAM_ERROR, "signature (string), random and timestamp (integers) are required"
    if auth not in ("psk", "certificate"):
        return PARAM_ERROR, "authtype must be psk or certificate"
    if not isinstance(method, str) or not method:
        return PARAM_ERROR, "signmethod is required"
    # DECISION: the method name in any case (§G20)
    method = method.lower()
    if method not in SIGN_HASHES:
        return BAD_SIGNMETHOD, "signmethod %r is not hmacsha1 or hmacsha256" % ent["signmethod"]
    if d is None:
        return NO_SUBDEV, "no sub-device %s/%s" % (ent["product_id"], ent["device_name"])
    if auth == "psk":
        if d.psk is None:
            return NO_SUBDEV, "the sub-device has no PSK (not registered)"
        key = d.psk
    else:
        if d.cert is None:
            return NO_SUBDEV, "the sub-device has no certificate"
        key = cert_key(d.cert["clientCert"])
    gp = cloud.products[gw.pid]
    if d is gw:
        return NOT_ALLOWED, "a gateway cannot bind itself"
    if d.pid not in gp.sub_products:
        # §G1: the gateway product and the sub-device product must be associated
        return NOT_ALLOWED, "product %s is not a sub-device product of gateway product %s" % (
            d.pid, gw.pid)
    inj = _injected(d, "bind")
    if inj is not None:
        extra["injected"] = True
        return inj, "injected"
    want = bind_signature(key, bind_sign_text(d.pid, d.dn, rnd, ts), method)
    if not hmac.compare_digest(want.encode(), sig.encode()):
        extra["mistake"] = signature_mistake(key, d.pid, d.dn, rnd, ts, method, sig)
        return BAD_SIGN, "signature check failed"
    skew = float(cloud.settings["bind_max_skew"])
    now = cloud.now()
    extra["skew"] = round(ts - now, 3)
    if skew and abs(ts - now) > skew:
        # §G16 -805: timestamp too old or too new ([TISSUE5]: real UTC is needed)
        return SIGN_EXPIRED, "timestamp %d is more than %gs from the cloud's time %d" % (
            ts, skew, int(now))
    if d.gateway is not None and d.gateway is not gw:
        return OTHER_GATEWAY, "bound to gateway %s/%s" % (d.gateway.pid, d.gateway.dn)
    if d.gateway is gw:
        return ALREADY_BOUND, "already bound to this gateway"
    if len(gw.subdevs) >= int(cloud.settings["max_subdevices"]):
        # §G18: at most 1,500 sub-devices per gateway. DECISION: -808 beyond
        return NOT_PERMITTED, "the gateway has %d sub-devices (max_subdevices)" % len(gw.subdevs)
    return None


def op_unbind(cloud, broker, c, gw, ent):
    res, why, d = _entry(cloud, gw, ent)
    if res is None:
        inj = d and _injected(d, "unbind")
        if d is None:
            res, why = NO_SUBDEV, "no such sub-device"
        elif inj is not None:
            res, why = inj, "injected"
        elif d.gateway is not gw:
            # DECISION: unbinding what this gateway has not bound is "not permitted"
            res, why = NOT_PERMITTED, "not bound to this gateway"
        else:
            unbind(cloud, broker, gw, d, "unbind")
            res = 0
    if d is not None:
        d.gw_results["unbind"] = res
    return res, why, d, {}


def op_online(cloud, broker, c, gw, ent):
    res, why, d = _entry(cloud, gw, ent)
    extra = {}
    if res is None:
        inj = d and _injected(d, "online")
        if inj is not None:
            res, why = inj, "injected"
        elif d is None or d.gateway is not gw:
            # §G16 [TD-ONL]: -1 the gateway is not bound to that sub-device
            res, why = NOT_BOUND, "no such sub-device" if d is None else "not bound to this gateway"
        elif not d.enabled:
            # DECISION: a disabled sub-device cannot go online: -2 (system error)
            res, why = SYSTEM_ERROR, "the sub-device is disabled"
        else:
            extra["alreadyOnline"] = d.sub_conn is c
            if d.sub_conn is not None and d.sub_conn is not c:
                put_offline(cloud, broker, d, "online through another connection")
            d.sub_conn = c
            c.subdevs[(d.pid, d.dn)] = d
            d.online_count += 1
            res = 0
    if d is not None:
        d.gw_results["online"] = res
    return res, why, d, extra


def op_offline(cloud, broker, c, gw, ent):
    res, why, d = _entry(cloud, gw, ent)
    extra = {}
    if res is None:
        inj = d and _injected(d, "offline")
        if inj is not None:
            res, why = inj, "injected"
        elif d is None or d.gateway is not gw:
            res, why = NOT_BOUND, "no such sub-device" if d is None else "not bound to this gateway"
        else:
            extra["wasOnline"] = d.sub_conn is not None
            put_offline(cloud, broker, d, "offline")
            d.offline_count += 1
            res = 0
    if d is not None:
        d.gw_results["offline"] = res
    return res, why, d, extra


OP_FUNCS = {"bind": op_bind, "unbind": op_unbind, "online": op_online, "offline": op_offline}


def ack(cloud, gw, typ, obj, rx):
    """§G18: the gateway's acknowledgement of a change / search_devices / unbind_all the cloud
    sent. Matched to the oldest unacknowledged one of that type (and status)."""
    p = obj.get("payload")
    problems = []
    status = p.get("status") if isinstance(p, dict) else None
    if not isinstance(p, dict):
        problems.append("payload must be an object")
        p = {}
    if typ in ("change", "search_devices") and status not in (0, 1):
        problems.append("payload.status must be 0 or 1")
    if typ == "change":
        devs = p.get("devices")
        if not isinstance(devs, list) or not devs:
            problems.append("payload.devices must be a non-empty array")
            devs = []
        for x in devs:
            if not isinstance(x, dict) or not isinstance(x.get("product_id"), str) or \
                    not isinstance(x.get("device_name"), str) or \
                    isinstance(x.get("result"), bool) or not isinstance(x.get("result"), int):
                problems.append("each device needs product_id, device_name and result (integer)")
                break
    elif typ in ("search_devices", "unbind_all"):
        if isinstance(p.get("result"), bool) or not isinstance(p.get("result"), int):
            problems.append("payload.result must be an integer")
    with cloud.lock:
        push = None
        for x in gw.pushes:
            if x["type"] == typ and x["ack"] is None and \
                    (typ == "unbind_all" or x["status"] == status):
                push = x
                break
        if push is not None and typ == "change":
            want = sorted((d["product_id"], d["device_name"]) for d in push["devices"])
            got = sorted((d.get("product_id"), d.get("device_name"))
                         for d in p.get("devices") or [] if isinstance(d, dict))
            if want != got:
                problems.append("the devices are not those of the change (%s)" % push["id"])
        rec = {"type": typ, "status": status, "result": p.get("result"),
               "devices": p.get("devices"), "push": push and push["id"], "matched": push is not None,
               "latencyMs": rx - push["sent"] if push else None, "problems": problems, "rx": rx}
        if push is not None:
            push["ack"] = rec
        gw.acks.append(rec)
    cloud.log("gateway_ack", **who(gw), **{k: v for k, v in rec.items() if k != "rx"})


# --------------------------------------------------------------------------------------------
# Cloud-initiated messages (control API; each runs in the broker thread)

def push(cloud, broker, gw, typ, status=None, devices=None):
    """Sends change / search_devices / unbind_all (§G18) to the gateway's result topic."""
    body = {"type": typ}
    if typ == "change":
        body["payload"] = {"status": status, "devices": devices}
    elif typ == "search_devices":
        body["payload"] = {"status": status}
    raw = json.dumps(body, separators=(",", ":"))
    # Recorded before it is sent: the gateway's acknowledgement can come back, on the thread
    # of the listener its session is on, before send_result() returns here; recorded after,
    # it matched no push and the acknowledgement was lost (a test waiting for it failed).
    with cloud.lock:
        cloud.push_seq += 1
        rec = {"id": "push-%d" % cloud.push_seq, "type": typ, "status": status,
               "devices": devices, "payload": raw, "sent": now_ms(), "deliveredTo": [],
               "ack": None}
        gw.pushes.append(rec)
    sent = send_result(cloud, broker, gw, body)
    with cloud.lock:
        rec["deliveredTo"] = sent
    cloud.log("gateway_push", type=typ, status=status, devices=devices, deliveredTo=sent,
              push=rec["id"], payload=raw, **who(gw))
    return rec


def need_gateway(cloud, a):
    gw = cloud.need_device(a)
    if not cloud.products[gw.pid].gateway:
        raise CtlError("%s is not a gateway product" % gw.pid)
    return gw


def sub_list(cloud, a):
    """The sub-devices a console command names: subProductId/subDeviceName, or devices:
    [{productId, deviceName}]."""
    if a.get("devices") is not None:
        items = a["devices"]
        if not isinstance(items, list) or not items:
            raise CtlError("devices must be a non-empty array")
    else:
        items = [{"productId": a.get("subProductId"), "deviceName": a.get("subDeviceName")}]
    out = []
    for x in items:
        if not isinstance(x, dict):
            raise CtlError("devices: want objects with productId and deviceName")
        out.append(cloud.need_device(x))
    return out


def make_commands(cloud, cmd):
    """The gateway's control commands (see TENCENT.md, "Gateway")."""
    broker = lambda: cloud.broker   # noqa: E731  (set once serving)

    def with_wait(a, rec):
        """rec: a push (its ack is waited for when a has wait: S) or a plain result."""
        if "id" not in rec:
            return rec
        rec = {k: v for k, v in rec.items() if k != "ack"}
        wait = float(a.get("wait", 0) or 0)
        if wait:
            ev = cloud.wait_event({"ev": "gateway_ack", "push": rec["id"]}, 0, min(wait, 60))
            rec["ack"] = ev and {k: v for k, v in ev.items() if k not in ("seq", "t", "ev")}
            rec["timedOut"] = ev is None
        return rec

    def add_gateway(a):
        pid = a.get("productId")
        with cloud.lock:
            p = cloud.products.get(pid)
        if p is None:
            cloud.add_product({"productId": pid, "productSecret": a.get("productSecret")
                               or "gatewayProductSecret", "gateway": True,
                               "subProducts": a.get("subProducts", [])})
        else:
            flags = {"gateway": True}
            if "subProducts" in a:
                flags["subProducts"] = a["subProducts"]
            with cloud.lock:
                cloud.set_product_flags(p, flags)
        d = cloud.add_device({k: v for k, v in a.items() if k in (
            "productId", "deviceName", "psk", "issueCert")})
        cloud.log("ctl_add_gateway", productId=pid, deviceName=a.get("deviceName"),
                  subProducts=sorted(cloud.products[pid].sub_products))
        return d

    def bindings(a):
        """Every binding; productId/deviceName: of that gateway; subProductId/subDeviceName:
        of that sub-device; all: true adds the unbound devices that ever got a bind request."""
        with cloud.lock:
            out = []
            for p in cloud.products.values():
                for d in p.devices.values():
                    gw = d.gateway
                    if gw is None and not (a.get("all") and (d.bind_attempts or d.unbind_count)):
                        continue
                    if a.get("productId") and (gw is None or gw.pid != a["productId"]):
                        continue
                    if a.get("deviceName") and (gw is None or gw.dn != a["deviceName"]):
                        continue
                    if a.get("subProductId") and d.pid != a["subProductId"]:
                        continue
                    if a.get("subDeviceName") and d.dn != a["subDeviceName"]:
                        continue
                    out.append(binding_summary(d))
            return {"bindings": out}

    def gateway(a):
        with cloud.lock:
            gw = need_gateway(cloud, a)
            return {"productId": gw.pid, "deviceName": gw.dn, "connected": len(gw.sessions),
                    "subProducts": sorted(cloud.products[gw.pid].sub_products),
                    "subDevices": [binding_summary(d) for d in gw.subdevs.values()],
                    "online": [d.dn for d in gw.subdevs.values() if d.sub_conn is not None],
                    "pushes": [{k: v for k, v in x.items()} for x in gw.pushes],
                    "acks": list(gw.acks)}

    def console_bind(a):
        """gateway_bind: the console binds sub-devices (no signature) and the cloud sends
        change status 1 (§G18) unless notify is false."""
        def run():
            with cloud.lock:
                gw = need_gateway(cloud, a)
                subs = sub_list(cloud, a)
                gp = cloud.products[gw.pid]
                for d in subs:
                    if d.pid not in gp.sub_products or d is gw:
                        raise CtlError("%s/%s: product not associated with gateway product %s"
                                       % (d.pid, d.dn, gw.pid))
                    if d.gateway is not None and d.gateway is not gw and not a.get("force"):
                        raise CtlError("%s/%s is bound to gateway %s/%s (force: true moves it)"
                                       % (d.pid, d.dn, d.gateway.pid, d.gateway.dn))
                for d in subs:
                    if d.gateway is gw:
                        continue
                    old = d.gateway
                    if old is not None:
                        # the gateway it leaves is told as for a console unbind
                        unbind(cloud, broker(), old, d, "console moved it to another gateway")
                        push(cloud, broker(), old, "change", 0,
                             [{"product_id": d.pid, "device_name": d.dn}])
                    do_bind(gw, d)
                    cloud.log("gateway_console_bind", productId=d.pid, deviceName=d.dn, **who(gw))
            if a.get("notify", True) is False:
                return {"bound": [[d.pid, d.dn] for d in subs]}
            return push(cloud, broker(), gw, "change", 1,
                        [{"product_id": d.pid, "device_name": d.dn} for d in subs])
        return with_wait(a, broker().call(run))

    def console_unbind(a):
        """gateway_unbind: the console unbinds sub-devices; the cloud sends change status 0."""
        def run():
            with cloud.lock:
                gw = need_gateway(cloud, a)
                subs = sub_list(cloud, a)
                for d in subs:
                    if d.gateway is not gw:
                        raise CtlError("%s/%s is not bound to %s/%s" % (d.pid, d.dn, gw.pid, gw.dn))
                for d in subs:
                    unbind(cloud, broker(), gw, d, "console unbind")
                    cloud.log("gateway_console_unbind", productId=d.pid, deviceName=d.dn,
                              **who(gw))
            if a.get("notify", True) is False:
                return {"unbound": [[d.pid, d.dn] for d in subs]}
            return push(cloud, broker(), gw, "change", 0,
                        [{"product_id": d.pid, "device_name": d.dn} for d in subs])
        return with_wait(a, broker().call(run))

    def search_devices(a):
        status = int(a.get("status", 1))
        if status not in (0, 1):
            raise CtlError("status must be 0 or 1")

        def run():
            with cloud.lock:
                gw = need_gateway(cloud, a)
            return push(cloud, broker(), gw, "search_devices", status)
        return with_wait(a, broker().call(run))

    def unbind_all(a):
        def run():
            with cloud.lock:
                gw = need_gateway(cloud, a)
                subs = list(gw.subdevs.values())
                for d in subs:
                    unbind(cloud, broker(), gw, d, "unbind_all")
            rec = push(cloud, broker(), gw, "unbind_all")
            return dict(rec, unbound=[[d.pid, d.dn] for d in subs])
        return with_wait(a, broker().call(run))

    def inject_gateway(a):
        with cloud.lock:
            d = cloud.need_device(a)
            if a.get("clear"):
                d.gw_inject = []
            else:
                op = a.get("op")
                if op not in OPS:
                    raise CtlError("op must be one of %s" % ", ".join(OPS))
                d.gw_inject.append({"op": op, "result": int(a["result"]),
                                    "count": int(a.get("count", 1))})
            return {"inject": list(d.gw_inject)}

    def set_device(a):
        """enabled: false disables a device (DECISION: a disabled sub-device is put offline
        without a message, its online gets -2; a disabled device's CONNECT gets CONNACK 5)."""
        def run():
            with cloud.lock:
                d = cloud.need_device(a)
                if "enabled" in a:
                    d.enabled = bool(a["enabled"])
                    if not d.enabled:
                        put_offline(cloud, broker(), d, "disabled")
                cloud.log("ctl_set_device", productId=d.pid, deviceName=d.dn, enabled=d.enabled)
                return d.summary()
        return broker().call(run)

    def delete_device(a):
        """The console deletes a device. DECISION: a bound sub-device is unbound first and the
        gateway gets change status 0 (notify: false skips it); its sessions are closed."""
        def run():
            with cloud.lock:
                d = cloud.need_device(a)
                gw = d.gateway
                if gw is not None:
                    unbind(cloud, broker(), gw, d, "deleted")
                for s in list(d.sessions):
                    broker().close(s, "device deleted")
                for sub in list(d.subdevs.values()):
                    unbind(cloud, broker(), d, sub, "its gateway was deleted")
                del cloud.products[d.pid].devices[d.dn]
                cloud.log("ctl_delete_device", productId=d.pid, deviceName=d.dn)
            out = {"deleted": [d.pid, d.dn]}
            if gw is not None and a.get("notify", True) is not False:
                out["change"] = {k: v for k, v in push(cloud, broker(), gw, "change", 0, [
                    {"product_id": d.pid, "device_name": d.dn}]).items() if k != "ack"}
            return out
        return broker().call(run)

    return {"add_gateway": add_gateway, "bindings": bindings, "gateway": gateway,
            "gateway_bind": console_bind, "gateway_unbind": console_unbind,
            "search_devices": search_devices, "unbind_all": unbind_all,
            "inject_gateway": inject_gateway, "set_device": set_device,
            "delete_device": delete_device}
