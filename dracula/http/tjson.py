"""TJSONProtocol over HTTP: Apache Thrift's JSON wire format (what its JavaScript library sends
from a web page, content type `application/vnd.apache.thrift.json`), read into and written from
thriftpy2's values by their specs (docs/http.md).

thriftpy2's own `thriftpy2.protocol.json` is another format (a length prefix, then
`{"metadata": ..., "payload": {field name: value}}`) that no other Thrift library speaks, so the
mapping is here; the JSON itself is parsed and written by the standard library's C codec. The
format (Apache Thrift's `TJSONProtocol`):

    message  [1, "name", type, seqid, struct]
    struct   {"<field id>": {"<tag>": value}, ...}     tags: tf i8 i16 i32 i64 dbl str rec lst set map
    list/set ["<element tag>", count, element, ...]
    map      ["<key tag>", "<value tag>", count, {"<key>": value, ...}]   keys are always strings
    bool 1/0, binary base64, double a number or "NaN" / "Infinity" / "-Infinity"

A hostile body costs no more than a fixed multiple of its size: the body is within
--max-frame-size before it is read (the HTTP layer's 413); `cost` bounds what parsing it can
allocate, in one pass over its bytes at C speed, so the caller charges the memory budget (or
refuses) before parsing; the standard library's parser is linear in time, and its nesting is
bounded by the interpreter's recursion limit (a RecursionError, caught); the walk from JSON to
values visits each parsed value once, at most --max-depth deep, and checks every type, count,
range and field on the way (a mismatch is a WireError: the call is answered PROTOCOL_ERROR).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

from thriftpy2.thrift import TType

from dracula.typedefs import ThriftStruct
from dracula.wire.errors import WireError

JSON = "json"  # the protocol's name, as detect.BINARY and COMPACT name theirs
VERSION = 1

TAGS = {
    TType.BOOL: "tf",
    TType.BYTE: "i8",
    TType.I16: "i16",
    TType.I32: "i32",
    TType.I64: "i64",
    TType.DOUBLE: "dbl",
    TType.STRING: "str",
    TType.BINARY: "str",
    TType.STRUCT: "rec",
    TType.LIST: "lst",
    TType.SET: "set",
    TType.MAP: "map",
}
INT_BITS = {TType.BYTE: 8, TType.I16: 16, TType.I32: 32, TType.I64: 64}
NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
# What one parsed JSON value can cost at most beyond its text: a list or dict object (with some
# slack for its growth), or a number or string object and the slot that holds it.
VALUE_COST = 128
_decoder = json.JSONDecoder(parse_constant=lambda name: _refuse("%s is not JSON" % name))
_encoder = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def _refuse(reason: str) -> Any:
    raise WireError(reason, fatal=False)


def cost(body: bytes | bytearray) -> int:
    """At most what parsing `body` allocates, in bytes: its text, plus VALUE_COST for every
    value it can hold (each needs a byte of its own, or a separator before it)."""
    values = body.count(b",") + body.count(b":") + body.count(b"[") + body.count(b"{") + 1
    return 2 * len(body) + VALUE_COST * values


def parse_message(body: bytes | bytearray, max_depth: int) -> tuple[bytes, int, int, Any]:
    """(name, message type, seqid, the arguments' JSON) of one TJSONProtocol message; a
    WireError when it is none. The JSON parser's own nesting is bounded by the interpreter's
    recursion limit (a RecursionError, caught); the arguments' by `max_depth`, as they are read."""
    try:
        message = _decoder.decode(bytes(body).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # ValueError: JSONDecodeError, big ints
        _refuse("not JSON: %s" % e)
    if (
        type(message) is not list
        or len(message) != 5
        or message[0] != VERSION
        or type(message[1]) is not str
        or type(message[2]) is not int
        or type(message[3]) is not int
    ):
        _refuse("not a TJSONProtocol message: [1, name, type, seqid, {arguments}]")
    _, name, mtype, seqid, args = message
    if not -(1 << 31) <= seqid < (1 << 31) or not 0 <= mtype < 256:
        _refuse("message type or seqid out of range")
    return name.encode("utf-8", "surrogatepass"), mtype, seqid, args


class JsonCodec:
    """A Codec (wire/codec.py) for one TJSONProtocol call: `decode` fills the arguments from
    the JSON parse_message found (the `body` it is handed is that message's text), `encode`
    writes a whole reply message. Never framed: HTTP delimits the body."""

    protocol = JSON

    def __init__(self, args: Any, max_depth: int) -> None:
        self.args = args
        self.max_depth = max_depth

    def decode(self, body: bytes | bytearray, args: ThriftStruct) -> None:
        tree, self.args = self.args, None
        _read_struct(tree, args, self.max_depth)

    def encode(self, name: bytes, mtype: int, seqid: int, payload: ThriftStruct, framed: bool) -> bytes:
        message = [VERSION, name.decode("utf-8", "surrogatepass"), mtype, seqid, _write_struct(payload)]
        return _encoder.encode(message).encode("ascii")


# -- JSON -> values -----------------------------------------------------------------------------


def _read_struct(obj: Any, struct: ThriftStruct, depth: int) -> ThriftStruct:
    if type(obj) is not dict:
        _refuse("a struct is a JSON object of fields")
    if depth <= 0:
        _refuse("structs nested too deep")
    spec = struct.thrift_spec
    for key, field in obj.items():
        if len(key) > 6 or not key.lstrip("-").isdigit() or not key.isascii():
            _refuse("field id %r is not a number" % key[:20])
        found = spec.get(int(key))
        if found is None:
            continue  # an unknown field is skipped, as every protocol does
        if type(field) is not dict or len(field) != 1:
            _refuse("field %s is not {tag: value}" % key)
        ((tag, value),) = field.items()
        ttype = found[0]
        if TAGS.get(ttype) != tag:
            _refuse("field %s: %r where the IDL has %s" % (key, tag[:10], TAGS.get(ttype)))
        sub = found[2] if len(found) > 3 else None
        setattr(struct, found[1], _read(ttype, sub, value, depth - 1))
    return struct


def _element(spec: Any) -> tuple[int, Any]:
    return (spec, None) if isinstance(spec, int) else spec


def _read(ttype: int, sub: Any, value: Any, depth: int) -> Any:
    kind = type(value)
    if ttype in INT_BITS:
        if kind is str and 0 < len(value) <= 20:  # an i64 some writers quote
            value = int(value) if value.lstrip("-").isdigit() and value.isascii() else None
        elif kind is not int:
            value = None
        bits = INT_BITS[ttype]
        if value is None or not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
            _refuse("not an integer of %d bits" % bits)
        return value
    if ttype == TType.STRING or ttype == TType.BINARY:
        if kind is not str:
            _refuse("not a string")
        if ttype == TType.BINARY or sub == "BINARY":
            try:
                return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
            except (binascii.Error, ValueError):
                _refuse("binary that is not base64")
        return value
    if ttype == TType.BOOL:
        if kind is bool or (kind is int and value in (0, 1)):
            return bool(value)
        _refuse("not a bool (1 or 0)")
    if ttype == TType.DOUBLE:
        if kind is float or kind is int:
            return float(value)
        if kind is str and value in NONFINITE:
            return NONFINITE[value]
        _refuse("not a double")
    if depth <= 0:
        _refuse("values nested too deep")
    if ttype == TType.STRUCT:
        return _read_struct(value, sub(), depth)
    if ttype == TType.LIST or ttype == TType.SET:
        etype, esub = _element(sub)
        if kind is not list or len(value) < 2 or value[0] != TAGS.get(etype) or value[1] != len(value) - 2:
            _refuse("not a [tag, count, elements...] of %s" % TAGS.get(etype))
        items = [_read(etype, esub, item, depth - 1) for item in value[2:]]
        if ttype == TType.SET:
            try:
                return set(items)
            except TypeError:  # unhashable elements (containers): thriftpy2 reads those as a list
                return items
        return items
    if ttype == TType.MAP:
        (ktype, ksub), (vtype, vsub) = _element(sub[0]), _element(sub[1])
        if (
            kind is not list
            or len(value) != 4
            or value[0] != TAGS.get(ktype)
            or value[1] != TAGS.get(vtype)
            or type(value[3]) is not dict
            or value[2] != len(value[3])
        ):
            _refuse("not a [key tag, value tag, count, {entries}]")
        return {_key(ktype, ksub, k): _read(vtype, vsub, v, depth - 1) for k, v in value[3].items()}
    _refuse("type %d is not served in JSON" % ttype)


def _key(ttype: int, sub: Any, key: str) -> Any:
    """A map key: JSON keys are strings, numbers and bools among them."""
    if ttype == TType.BOOL:
        return _read(ttype, sub, 1 if key in ("1", "true") else 0 if key in ("0", "false") else None, 0)
    if ttype == TType.DOUBLE:
        try:
            return float(key) if len(key) <= 32 else _refuse("not a double")
        except ValueError:
            _refuse("not a double")
    if ttype in INT_BITS:
        return _read(ttype, sub, key, 0)
    if ttype == TType.STRING or ttype == TType.BINARY:
        return _read(ttype, sub, key, 0)
    _refuse("a map key of type %d is not served in JSON" % ttype)


# -- values -> JSON -------------------------------------------------------------------------------


def _write_struct(struct: Any) -> dict[str, Any]:
    out = {}
    for fid, found in struct.thrift_spec.items():
        value = getattr(struct, found[1], None)
        if value is not None:
            ttype = found[0]
            out[str(fid)] = {TAGS[ttype]: _write(ttype, found[2] if len(found) > 3 else None, value)}
    return out


def _write(ttype: int, sub: Any, value: Any) -> Any:
    if ttype in INT_BITS:
        return int(value)
    if ttype == TType.STRING or ttype == TType.BINARY:
        if ttype == TType.BINARY or sub == "BINARY" or isinstance(value, bytes | bytearray):
            return base64.b64encode(value).decode("ascii")
        return value
    if ttype == TType.BOOL:
        return 1 if value else 0
    if ttype == TType.DOUBLE:
        value = float(value)
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if ttype == TType.STRUCT:
        return _write_struct(value)
    if ttype == TType.LIST or ttype == TType.SET:
        etype, esub = _element(sub)
        return [TAGS[etype], len(value), *(_write(etype, esub, item) for item in value)]
    if ttype == TType.MAP:
        (ktype, ksub), (vtype, vsub) = _element(sub[0]), _element(sub[1])
        entries = {}
        for k, v in value.items():
            key = _write(ktype, ksub, k)
            entries[key if isinstance(key, str) else json.dumps(key)] = _write(vtype, vsub, v)
        return [TAGS[ktype], TAGS[vtype], len(entries), entries]
    raise TypeError("type %d is not served in JSON" % ttype)
