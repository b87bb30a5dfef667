# SPDX-License-Identifier: MIT
"""Thing models for the two test clouds (stdlib only).

Reads the model file each console exports: the Aliyun TSL (docs/protocols/aliyun.md §9) and the
Tencent data template (docs/protocols/tencent.md §7), and checks property and event params
against it as the platforms do. The file's shape says which platform it is for. Both clouds use
this module; what differs between the platforms is in RULES.

    m = thingmodel.load(path)                 # or thingmodel.parse(obj, where)
    m.check_properties({"MQ2": 30.5})         # -> [violation, ...]; [] when accepted
    m.check_event("GasAlarm", "alert", {...}) # event_type None: not checked (Aliyun posts none)

A violation is {"identifier", "check", "reason", "value"}: check is one of unknown, type,
range, length, event_type; reason is a sentence in the words of Tencent's 406 status
("MQ2 value 20000 out of range:[0,10000]", docs/protocols/tencent.md §3.1).
"""

import json
import math

# What the platforms differ in.
#   float_point: a float/double value must be written with a decimal point, i.e. be a JSON real
#                (docs/protocols/aliyun.md §5, §9); Tencent takes any number (§7: C float)
#   time_type:   the model's time type and what its value is: Aliyun `date` is a string of ms
#                ("1635839462000") or, DECISION, an integer of ms; Tencent `timestamp` an integer
RULES = {
    "aliyun": {"float_point": True},
    "tencent": {"float_point": False},
}

# The model types, with the names each console uses, on one vocabulary.
TYPE_NAMES = {
    "aliyun": {"int": "int", "float": "float", "double": "float", "bool": "bool", "enum": "enum",
               "text": "string", "date": "date", "struct": "struct", "array": "array"},
    "tencent": {"int": "int", "float": "float", "bool": "bool", "enum": "enum", "string": "string",
                "timestamp": "timestamp", "struct": "struct", "stringenum": "stringenum",
                "array": "array"},
}

EVENT_TYPES = {"aliyun": ("info", "alert", "error"), "tencent": ("info", "alert", "fault")}
INT32 = (-2 ** 31, 2 ** 31 - 1)   # docs/protocols/aliyun.md §9 and tencent.md §7: int is int32


class ModelError(Exception):
    pass


def _num(v, where):
    """A spec number: exports write them as strings ("0", "0.1"); "" or None is absent."""
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        raise ModelError("%s: not a number: %r" % (where, v))
    if isinstance(v, (int, float)):
        return v
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ModelError("%s: not a number: %r" % (where, v))
    if not math.isfinite(f):
        raise ModelError("%s: not a finite number: %r" % (where, v))
    return int(f) if f.is_integer() and "." not in str(v) and "e" not in str(v).lower() else f


def _keys(mapping, where, as_int=True):
    if not isinstance(mapping, dict):
        raise ModelError("%s: the mapping must be an object" % where)
    if not as_int:
        return set(mapping)
    try:
        return {int(k) for k in mapping}
    except ValueError:
        raise ModelError("%s: mapping keys must be integers" % where)


class ThingModel:
    def __init__(self, platform, product, properties, events, source=None):
        self.platform = platform
        self.product = product          # profile.productKey / ProductId, or None
        self.properties = properties    # identifier -> spec
        self.events = events            # identifier -> {"type", "params": {identifier: spec}}
        self.source = source

    def summary(self):
        return {"platform": self.platform, "product": self.product, "source": self.source,
                "properties": sorted(self.properties), "events": {k: v["type"] for k, v in
                                                                  sorted(self.events.items())}}

    # ---- checks
    def check_properties(self, params):
        """params {identifier: value} of a property post -> violations."""
        return self._check_params(self.properties, params, "property")

    def check_event(self, event_id, event_type, params):
        """An event post: event_id, the type it was posted with (None: not checked) and its
        output params {identifier: value} -> violations."""
        ev = self.events.get(event_id)
        if ev is None:
            return [_violation(event_id, "unknown", "event %s is not defined in the thing model"
                               % event_id, event_id)]
        out = []
        if event_type is not None and event_type != ev["type"]:
            out.append(_violation(event_id, "event_type", "event %s type %s is not the model's %s"
                                  % (event_id, json.dumps(event_type), ev["type"]), event_type))
        return out + self._check_params(ev["params"], params, "event %s param" % event_id)

    def _check_params(self, specs, params, what):
        out = []
        if not isinstance(params, dict):
            return [_violation(None, "type", "params must be an object", params)]
        for k, v in params.items():
            spec = specs.get(k)
            if spec is None:
                out.append(_violation(k, "unknown", "%s %s is not defined in the thing model"
                                      % (what, k), v))
                continue
            out += check_value(spec, k, v, RULES[self.platform])
        return out


def _violation(identifier, check, reason, value):
    return {"identifier": identifier, "check": check, "reason": reason, "value": value}


def _show(v):
    return json.dumps(v, ensure_ascii=False)


def check_value(spec, name, v, rules):
    """The violations of value v of identifier name (a list, empty when it is accepted)."""
    t = spec["type"]
    isint = isinstance(v, int) and not isinstance(v, bool)
    isnum = isint or isinstance(v, float)

    def bad(check, text):
        return [_violation(name, check, "%s value %s %s" % (name, _show(v), text), v)]

    if t == "bool":
        # docs/protocols/aliyun.md §5, tencent.md §3.1: the integers 0 and 1, not true/false
        if not isint:
            return bad("type", "is not bool 0 or 1")
        if v not in (0, 1):
            return bad("range", "out of range:[0,1]")
        return []
    if t in ("int", "enum"):
        if not isint:
            return bad("type", "is not an integer")
        if not INT32[0] <= v <= INT32[1]:
            return bad("range", "is not a 32-bit integer")
        if t == "enum":
            if v not in spec["keys"]:
                return bad("range", "is not one of the enum values %s"
                           % ",".join(str(k) for k in sorted(spec["keys"])))
            return []
    elif t == "float":
        if not isnum:
            return bad("type", "is not a number")
        if rules["float_point"] and isint:
            return bad("type", "needs a decimal point (the model says %s)" % spec["name"])
    elif t in ("string", "stringenum"):
        if not isinstance(v, str):
            return bad("type", "is not a string")
        if t == "stringenum":
            return [] if v in spec["keys"] else bad("range", "is not one of the enum values")
        # DECISION: lengths are UTF-8 bytes (docs/protocols/aliyun.md §9 gives text's limit in bytes)
        n = len(v.encode("utf-8"))
        if spec.get("max") is not None and n > spec["max"]:
            return bad("length", "is longer than %s" % spec["max"])
        if spec.get("min") is not None and n < spec["min"]:
            return bad("length", "is shorter than %s" % spec["min"])
        return []
    elif t == "date":
        # docs/protocols/aliyun.md §9: a string of UTC ms; DECISION: an integer of ms is taken too
        if isint and v >= 0:
            return []
        if isinstance(v, str) and v.isascii() and v.isdigit():
            return []
        return bad("type", "is not a date (UTC ms as a string of digits)")
    elif t == "timestamp":
        # docs/protocols/tencent.md §7: an integer (the SDK holds it in a uint32_t)
        if not isint or v < 0:
            return bad("type", "is not a timestamp (a non-negative integer)")
        return []
    elif t == "struct":
        if not isinstance(v, dict):
            return bad("type", "is not an object")
        out = []
        for k, mv in v.items():
            ms = spec["members"].get(k)
            if ms is None:
                out.append(_violation("%s.%s" % (name, k), "unknown", "%s.%s is not a member of %s"
                                      % (name, k, name), mv))
            else:
                out += check_value(ms, "%s.%s" % (name, k), mv, rules)
        return out
    elif t == "array":
        if not isinstance(v, list):
            return bad("type", "is not an array")
        if spec.get("size") is not None and len(v) > spec["size"]:
            return bad("length", "has more than %s elements" % spec["size"])
        out = []
        if spec.get("item"):
            for i, iv in enumerate(v):
                out += check_value(spec["item"], "%s[%d]" % (name, i), iv, rules)
        return out
    else:
        return []   # a type this module does not know: not checked
    lo, hi = spec.get("min"), spec.get("max")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        return bad("range", "out of range:[%s,%s]" % (spec.get("min_text", lo),
                                                      spec.get("max_text", hi)))
    return []


# --------------------------------------------------------------------------------------------
# Parsing the exported files

def _text(v):
    return v if isinstance(v, str) else json.dumps(v)


def _spec(platform, type_name, limits, members, where):
    """limits: the dict holding min/max/step/length/mapping/size/item (Aliyun specs, Tencent
    define); members: the struct member list or None."""
    t = TYPE_NAMES[platform].get(type_name)
    if t is None:
        raise ModelError("%s: unknown type %r" % (where, type_name))
    s = {"type": t, "name": type_name}
    if t in ("int", "float"):
        if not isinstance(limits, dict):
            raise ModelError("%s: specs must be an object" % where)
        for k in ("min", "max", "step"):
            n = _num(limits.get(k), "%s.%s" % (where, k))
            if n is not None:
                s[k] = n
                s[k + "_text"] = _text(limits[k])
        s["unit"] = limits.get("unit")
        if s.get("min") is not None and s.get("max") is not None and s["min"] > s["max"]:
            raise ModelError("%s: min is above max" % where)
    elif t in ("bool", "enum"):
        s["keys"] = _keys(limits, where)
    elif t == "stringenum":
        s["keys"] = _keys(limits, where, as_int=False)
    elif t == "string":
        if platform == "aliyun":
            n = _num((limits or {}).get("length"), where + ".length")
            s["max"] = 10240 if n is None else n   # docs/protocols/aliyun.md §9: at most 10240 bytes
        else:
            s["min"] = _num((limits or {}).get("min"), where + ".min")
            s["max"] = _num((limits or {}).get("max"), where + ".max")
    elif t == "struct":
        if not isinstance(members, list):
            raise ModelError("%s: a struct needs its members (specs) as an array" % where)
        s["members"] = {}
        for i, m in enumerate(members):
            mid, ms = _member(platform, m, "%s.specs[%d]" % (where, i))
            s["members"][mid] = ms
    elif t == "array":
        limits = limits or {}
        s["size"] = _num(limits.get("size"), where + ".size")
        item = limits.get("item")
        if isinstance(item, dict) and item.get("type"):
            s["item"] = _spec(platform, item["type"], item.get("specs", item),
                              item.get("specs"), where + ".item")
    return s


def _member(platform, m, where):
    """A struct member: {"identifier"|"id", "name", "dataType": {"type", "specs"...}}."""
    if not isinstance(m, dict):
        raise ModelError("%s: must be an object" % where)
    mid = m.get("identifier" if platform == "aliyun" else "id")
    dt = m.get("dataType")
    if not isinstance(mid, str) or not mid or not isinstance(dt, dict):
        raise ModelError("%s: needs an identifier and a dataType" % where)
    # Aliyun: {"type", "specs": {...}}; Tencent members (docs/protocols/tencent.md §7) use
    # dataType with the limits beside type, as in define, or in a specs object
    limits = dt.get("specs") if isinstance(dt.get("specs"), dict) or platform == "aliyun" else dt
    if isinstance(limits, dict) and "mapping" in limits:
        limits = limits["mapping"]
    return mid, _spec(platform, dt.get("type"), limits, dt.get("specs"), where + "." + mid)


def _aliyun_param(p, where):
    if not isinstance(p, dict):
        raise ModelError("%s: must be an object" % where)
    pid, dt = p.get("identifier"), p.get("dataType")
    if not isinstance(pid, str) or not pid:
        raise ModelError("%s: identifier missing" % where)
    if not isinstance(dt, dict) or not isinstance(dt.get("type"), str):
        raise ModelError("%s (%s): dataType.type missing" % (where, pid))
    return pid, _spec("aliyun", dt["type"], dt.get("specs"), dt.get("specs"), "%s (%s)" % (where, pid))


def _tencent_param(p, where):
    if not isinstance(p, dict):
        raise ModelError("%s: must be an object" % where)
    pid, d = p.get("id"), p.get("define")
    if not isinstance(pid, str) or not pid:
        raise ModelError("%s: id missing" % where)
    if not isinstance(d, dict) or not isinstance(d.get("type"), str):
        raise ModelError("%s (%s): define.type missing" % (where, pid))
    limits = d.get("mapping") if d["type"] in ("bool", "enum", "stringenum") else d
    return pid, _spec("tencent", d["type"], limits, d.get("specs"), "%s (%s)" % (where, pid))


def _params(parse, items, where):
    if items is None:
        return {}
    if not isinstance(items, list):
        raise ModelError("%s must be an array" % where)
    out = {}
    for i, p in enumerate(items):
        k, s = parse(p, "%s[%d]" % (where, i))
        if k in out:
            raise ModelError("%s[%d]: %s is defined twice" % (where, i, k))
        out[k] = s
    return out


def platform_of(obj):
    """"aliyun" (TSL: identifier/dataType, profile.productKey) or "tencent" (data template:
    id/define, profile.ProductId)."""
    prof = obj.get("profile") if isinstance(obj.get("profile"), dict) else {}
    if "productKey" in prof or "schema" in obj or "services" in obj:
        return "aliyun"
    if "ProductId" in prof or "actions" in obj:
        return "tencent"
    for p in obj.get("properties") or []:
        if isinstance(p, dict) and "identifier" in p:
            return "aliyun"
        if isinstance(p, dict) and "define" in p:
            return "tencent"
    raise ModelError("neither an Aliyun TSL nor a Tencent data template")


def parse(obj, source=None):
    """A ThingModel from the exported JSON (already decoded)."""
    if not isinstance(obj, dict):
        raise ModelError("the model must be a JSON object")
    platform = platform_of(obj)
    prof = obj.get("profile") if isinstance(obj.get("profile"), dict) else {}
    events = {}
    if platform == "aliyun":
        props = _params(_aliyun_param, obj.get("properties"), "properties")
        raw_events = obj.get("events") or []
        if not isinstance(raw_events, list):
            raise ModelError("events must be an array")
        for i, e in enumerate(raw_events):
            where = "events[%d]" % i
            if not isinstance(e, dict) or not isinstance(e.get("identifier"), str):
                raise ModelError("%s: identifier missing" % where)
            # docs/protocols/aliyun.md §9: "post" (thing.event.property.post) is not an event
            if e["identifier"] == "post" or e.get("method") == "thing.event.property.post":
                continue
            events[e["identifier"]] = {"type": e.get("type"), "params": _params(
                _aliyun_param, e.get("outputData"), where + ".outputData")}
        product = prof.get("productKey")
    else:
        props = _params(_tencent_param, obj.get("properties"), "properties")
        raw_events = obj.get("events") or []
        if not isinstance(raw_events, list):
            raise ModelError("events must be an array")
        for i, e in enumerate(raw_events):
            where = "events[%d]" % i
            if not isinstance(e, dict) or not isinstance(e.get("id"), str):
                raise ModelError("%s: id missing" % where)
            events[e["id"]] = {"type": e.get("type"), "params": _params(
                _tencent_param, e.get("params"), where + ".params")}
        product = prof.get("ProductId")
    for k, e in events.items():
        if e["type"] not in EVENT_TYPES[platform]:
            raise ModelError("event %s: type %r is not one of %s"
                             % (k, e["type"], ", ".join(EVENT_TYPES[platform])))
    return ThingModel(platform, product if isinstance(product, str) and product else None,
                      props, events, source)


def load(path):
    """A ThingModel from an exported file; ModelError says what is wrong (FILE:LINE:COL for
    JSON syntax)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ModelError("%s: %s" % (path, e.strerror or e))
    try:
        obj = json.loads(text)
    except ValueError as e:
        where = "%s:%d:%d" % (path, e.lineno, e.colno) if hasattr(e, "lineno") else path
        raise ModelError("%s: %s" % (where, getattr(e, "msg", e)))
    try:
        return parse(obj, path)
    except ModelError as e:
        raise ModelError("%s: %s" % (path, e))
