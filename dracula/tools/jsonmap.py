"""JSON ↔ thriftpy2 values, driven by thriftpy2's specs; used by `dracula call` both ways.

The mapping (docs/cli-tools.md, "JSON mapping", has the user-facing version):

  bool              true / false
  byte i16 i32 i64  JSON integers, range-checked for the width (Python's json keeps them exact)
  double            numbers; NaN and ±infinity as the strings "NaN", "Infinity", "-Infinity"
  string            strings
  binary            base64 strings (standard alphabet, padded)
  enum              the value's name; a number is accepted on input
  struct/exception  objects keyed by field name; null or absent means unset
  list / set        arrays (a set prints sorted when its elements sort)
  map               an object when the key type is string, else an array of [key, value] pairs

Input errors are JsonMapError, whose `path` names the offending value the way the JSON is
addressed: `shape.points[2].x`, `labels["a"][0]`, `value[1][0]` (a map pair's key).

A type in thriftpy2's specs is a ttype plus, for enums/structs/containers, a `sub`:
  enum: the enum class (ttype I32)      struct/exception: the class (ttype STRUCT)
  list/set: the element's spec           map: (key spec, value spec)
where an element/key/value spec is a bare ttype or a (ttype, sub) tuple. A struct's field spec
is (ttype, name, required) or (ttype, name, sub, required).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

from thriftpy2.thrift import TType

from dracula.typedefs import ElementSpec, FieldSpec, Json, ThriftService, ThriftStruct

INT_RANGES = {
    TType.BYTE: ("byte", -(1 << 7), (1 << 7) - 1),
    TType.I16: ("i16", -(1 << 15), (1 << 15) - 1),
    TType.I32: ("i32", -(1 << 31), (1 << 31) - 1),
    TType.I64: ("i64", -(1 << 63), (1 << 63) - 1),
}
NONFINITE_IN = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_JSON_KINDS = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


class JsonMapError(ValueError):
    """A JSON value that does not fit its Thrift type; `path` says where it is."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(path, message)
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return "%s: %s" % (self.path or "arguments", self.message)


# --- specs -----------------------------------------------------------------------------------


def split(spec: ElementSpec) -> tuple[int, Any]:
    """An element/key/value spec → (ttype, sub)."""
    if isinstance(spec, tuple):
        return spec[0], spec[1]
    return spec, None


def field_parts(spec: FieldSpec) -> tuple[int, str, Any, bool]:
    """A struct field spec → (ttype, name, sub, required)."""
    if len(spec) == 3:
        return spec[0], spec[1], None, spec[2]
    return spec[0], spec[1], spec[2], spec[3]


def is_enum(ttype: int, sub: Any) -> bool:
    return ttype == TType.I32 and sub is not None and hasattr(sub, "_VALUES_TO_NAMES")


def describe_type(ttype: int, sub: Any = None) -> str:
    """The IDL spelling of a type, for messages (describe.py qualifies included names)."""
    if is_enum(ttype, sub) or ttype == TType.STRUCT:
        return str(sub.__name__)
    if ttype in (TType.LIST, TType.SET):
        return "%s<%s>" % ("list" if ttype == TType.LIST else "set", describe_type(*split(sub)))
    if ttype == TType.MAP:
        return "map<%s, %s>" % (describe_type(*split(sub[0])), describe_type(*split(sub[1])))
    return BASE_NAMES.get(ttype, "ttype %s" % ttype)


BASE_NAMES = {
    TType.BOOL: "bool",
    TType.BYTE: "byte",
    TType.I16: "i16",
    TType.I32: "i32",
    TType.I64: "i64",
    TType.DOUBLE: "double",
    TType.STRING: "string",
    TType.BINARY: "binary",
    TType.VOID: "void",
}


def _kind(value: object) -> str:
    return _JSON_KINDS.get(type(value), type(value).__name__)


def _shown(value: object) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool)) else _kind(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _child(path: str, name: str) -> str:
    return "%s.%s" % (path, name) if path else name


def _freeze(value: Any) -> Any:
    """Hashable form of a set element or map key (lists → tuples, sets → frozensets)."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(value)
    return value


# --- JSON → thriftpy2 ------------------------------------------------------------------------


def from_json(value: Json, ttype: int, sub: Any, path: str) -> Any:
    """One JSON value → the thriftpy2 value of type (ttype, sub); JsonMapError if it does not fit."""
    if ttype == TType.BOOL:
        if isinstance(value, bool):
            return value
        raise JsonMapError(path, "expected true or false, got %s" % _shown(value))
    if is_enum(ttype, sub):
        return _enum_from_json(value, sub, path)
    if ttype in INT_RANGES:
        name, low, high = INT_RANGES[ttype]
        if type(value) is not int:
            raise JsonMapError(path, "expected an integer (%s), got %s" % (name, _shown(value)))
        if not low <= value <= high:
            raise JsonMapError(path, "%d is out of range for %s (%d..%d)" % (value, name, low, high))
        return value
    if ttype == TType.DOUBLE:
        if isinstance(value, str) and value in NONFINITE_IN:
            return NONFINITE_IN[value]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise JsonMapError(path, "expected a number (double), got %s" % _shown(value))
        try:
            return float(value)
        except OverflowError:
            raise JsonMapError(path, "%s is too large for a double" % _shown(value)) from None
    if ttype == TType.STRING:
        if not isinstance(value, str):
            raise JsonMapError(path, "expected a string, got %s" % _shown(value))
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise JsonMapError(path, "string is not valid Unicode (lone surrogate)") from None
        return value
    if ttype == TType.BINARY:
        if not isinstance(value, str):
            raise JsonMapError(path, "expected a base64 string (binary), got %s" % _shown(value))
        try:
            return base64.b64decode(value.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error) as e:
            raise JsonMapError(path, "not valid base64 (binary): %s" % e) from None
    if ttype == TType.STRUCT:
        return struct_from_json(sub, value, path)
    if ttype in (TType.LIST, TType.SET):
        return _sequence_from_json(value, ttype, sub, path)
    if ttype == TType.MAP:
        return _map_from_json(value, sub, path)
    raise JsonMapError(path, "unsupported Thrift type %s" % ttype)


def _enum_from_json(value: Json, enum: Any, path: str) -> int:
    names = enum._NAMES_TO_VALUES
    if isinstance(value, str):
        if value in names:
            return names[value]
        raise JsonMapError(
            path, "unknown %s name %s (names: %s)" % (enum.__name__, json.dumps(value), ", ".join(names))
        )
    if type(value) is int:
        _, low, high = INT_RANGES[TType.I32]
        if not low <= value <= high:
            raise JsonMapError(path, "%d is out of range for enum %s (i32)" % (value, enum.__name__))
        return value
    raise JsonMapError(path, "expected a %s name or number, got %s" % (enum.__name__, _shown(value)))


def _sequence_from_json(value: Json, ttype: int, sub: ElementSpec, path: str) -> list[Any] | set[Any]:
    kind = "list" if ttype == TType.LIST else "set"
    if not isinstance(value, list):
        raise JsonMapError(path, "expected an array (%s), got %s" % (kind, _shown(value)))
    etype, esub = split(sub)
    items = [from_json(item, etype, esub, "%s[%d]" % (path, i)) for i, item in enumerate(value)]
    if ttype == TType.LIST:
        return items
    return {_freeze(item) for item in items}


def _map_from_json(value: Json, sub: tuple[ElementSpec, ElementSpec], path: str) -> dict[Any, Any]:
    ktype, ksub = split(sub[0])
    vtype, vsub = split(sub[1])
    result: dict[Any, Any] = {}
    if ktype == TType.STRING:
        if not isinstance(value, dict):
            raise JsonMapError(path, "expected an object (map with string keys), got %s" % _shown(value))
        for key, item in value.items():
            child = "%s[%s]" % (path, json.dumps(key))
            from_json(key, ktype, ksub, child)
            result[key] = from_json(item, vtype, vsub, child)
        return result
    if not isinstance(value, list):
        raise JsonMapError(
            path,
            "expected an array of [key, value] pairs (%s), got %s" % (describe_type(TType.MAP, sub), _shown(value)),
        )
    for i, pair in enumerate(value):
        child = "%s[%d]" % (path, i)
        if not isinstance(pair, list) or len(pair) != 2:
            raise JsonMapError(child, "expected a [key, value] pair, got %s" % _shown(pair))
        key = _freeze(from_json(pair[0], ktype, ksub, child + "[0]"))
        if key in result:
            raise JsonMapError(child + "[0]", "duplicate map key %s" % _shown(pair[0]))
        result[key] = from_json(pair[1], vtype, vsub, child + "[1]")
    return result


def struct_from_json(cls: type[ThriftStruct], value: Json, path: str = "", what: str = "field") -> ThriftStruct:
    """A JSON object → an instance of the struct/exception class `cls`.

    Absent or null fields stay unset (or take their IDL default, as `cls()` gives them).
    `what` is "argument" when `cls` is a method's `_args` struct, for the messages."""
    if not isinstance(value, dict):
        expected = "a JSON object keyed by argument name" if what == "argument" else "an object (%s)" % cls.__name__
        raise JsonMapError(path, "expected %s, got %s" % (expected, _shown(value)))
    fields: dict[str, tuple[int, Any, bool]] = {}
    for spec in cls.thrift_spec.values():
        ttype, name, sub, required = field_parts(spec)
        fields[name] = (ttype, sub, required)
    owner = "takes" if what == "argument" else "has"
    for key in value:
        if key not in fields:
            raise JsonMapError(
                _child(path, key),
                "unknown %s (%s %s: %s)" % (what, _owner_name(cls), owner, ", ".join(fields) or "nothing"),
            )
    obj = cls()
    for name, (ttype, sub, required) in fields.items():
        item = value.get(name)
        if item is None:
            if required:
                raise JsonMapError(_child(path, name), "missing required %s" % what)
            continue
        setattr(obj, name, from_json(item, ttype, sub, _child(path, name)))
    return obj


def _owner_name(cls: type) -> str:
    name = cls.__name__
    return name[: -len("_args")] + "()" if name.endswith("_args") else name


def args_from_json(service: ThriftService, method: str, value: Json) -> ThriftStruct:
    """The JSON object of a call's arguments → the method's `_args` struct instance."""
    return struct_from_json(getattr(service, method + "_args"), value, "", "argument")


# --- thriftpy2 → JSON ------------------------------------------------------------------------


def to_json(value: Any, ttype: int, sub: Any = None) -> Json:
    """A thriftpy2 value (as decoded from a reply) → a JSON-serialisable value."""
    if value is None:
        return None
    if ttype == TType.BOOL:
        return bool(value)
    if is_enum(ttype, sub):
        return sub._VALUES_TO_NAMES.get(value, value)
    if ttype in INT_RANGES:
        return int(value)
    if ttype == TType.DOUBLE:
        value = float(value)
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if ttype == TType.STRING:
        if isinstance(value, (bytes, bytearray)):  # not valid UTF-8 on the wire
            return bytes(value).decode("utf-8", "replace")
        return value
    if ttype == TType.BINARY:
        if isinstance(value, str):
            value = value.encode("utf-8")
        return base64.b64encode(bytes(value)).decode("ascii")
    if ttype == TType.STRUCT:
        return struct_to_json(value)
    if ttype in (TType.LIST, TType.SET):
        etype, esub = split(sub)
        items = value
        if ttype == TType.SET:
            try:
                items = sorted(value)
            except TypeError:
                items = list(value)
        return [to_json(item, etype, esub) for item in items]
    if ttype == TType.MAP:
        ktype, ksub = split(sub[0])
        vtype, vsub = split(sub[1])
        if ktype == TType.STRING:
            return {
                to_json(k, ktype, ksub): to_json(v, vtype, vsub)  # type: ignore[misc]  # str keys: strings
                for k, v in value.items()
            }
        return [[to_json(k, ktype, ksub), to_json(v, vtype, vsub)] for k, v in value.items()]
    raise TypeError("unsupported Thrift type %s" % ttype)


def struct_to_json(obj: ThriftStruct) -> dict[str, Json]:
    """A struct/exception instance → an object of its set fields, in IDL order."""
    out: dict[str, Json] = {}
    for spec in obj.thrift_spec.values():
        ttype, name, sub, _ = field_parts(spec)
        value = getattr(obj, name, None)
        if value is not None:
            out[name] = to_json(value, ttype, sub)
    return out


def result_to_json(service: ThriftService, method: str, value: Any) -> Json:
    """A method's return value → JSON (None for void)."""
    spec = getattr(service, method + "_result").thrift_spec.get(0)
    if spec is None:
        return None
    ttype, _, sub, _ = field_parts(spec)
    return to_json(value, ttype, sub)
