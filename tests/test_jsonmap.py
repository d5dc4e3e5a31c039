"""dracula.tools.jsonmap: JSON ↔ thriftpy2 values for every IDL type, and the path-naming errors."""

import json
import math

import pytest
from thriftpy2.protocol import TBinaryProtocol, TCompactProtocol
from thriftpy2.thrift import TType
from thriftpy2.transport import TMemoryBuffer

from dracula.tools.jsonmap import (
    JsonMapError,
    args_from_json,
    describe_type,
    from_json,
    result_to_json,
    struct_from_json,
    struct_to_json,
    to_json,
)

from .helpers import showcase_thrift as st

Showcase = st.Showcase
I64_MAX, I64_MIN = 2**63 - 1, -(2**63)

SCALARS_JSON = {
    "flag": True,
    "tiny": -128,
    "small": 32767,
    "medium": -2147483648,
    "large": I64_MAX,
    "real": 1.5,
    "text": "héllo ☃",
    "raw": "AAEC/w==",
    "color": "BLUE",
}
SHAPE_JSON = {
    "name": "tri",
    "points": [{"x": 1, "y": -2}, {"x": 3, "y": 4}],
    "color": "GREEN",
    "labels": {"a": [{"x": 5, "y": 6}], "": []},
    "tags": [3, I64_MIN, I64_MAX],
    "blob": "AP8=",
}
NESTED_JSON = [[1, {"k": [[3, 1], []], "": [[-32768, 32767]]}], [-7, {}]]


def roundtrip_wire(obj, protocol):
    """Encode with a real thriftpy2 protocol and decode into a fresh instance."""
    buf = TMemoryBuffer()
    protocol(buf).write_struct(obj)
    out = type(obj)()
    protocol(TMemoryBuffer(buf.getvalue())).read_struct(out)
    return out


# --- JSON → thriftpy2 → JSON --------------------------------------------------------------------


def test_scalars_from_json():
    s = struct_from_json(st.Scalars, SCALARS_JSON)
    assert s == st.Scalars(
        flag=True,
        tiny=-128,
        small=32767,
        medium=-2147483648,
        large=I64_MAX,
        real=1.5,
        text="héllo ☃",
        raw=b"\x00\x01\x02\xff",
        color=st.Color.BLUE,
    )
    assert type(s.large) is int and type(s.raw) is bytes


def test_shape_from_json():
    shape = struct_from_json(st.Shape, SHAPE_JSON)
    assert shape.points == [st.Point(x=1, y=-2), st.Point(x=3, y=4)]
    assert shape.color == st.Color.GREEN
    assert shape.labels == {"a": [st.Point(x=5, y=6)], "": []}
    assert shape.tags == {3, I64_MIN, I64_MAX}
    assert shape.blob == b"\x00\xff"


@pytest.mark.parametrize("protocol", [TBinaryProtocol, TCompactProtocol], ids=["binary", "compact"])
@pytest.mark.parametrize("cls, value", [(st.Scalars, SCALARS_JSON), (st.Shape, SHAPE_JSON)], ids=["Scalars", "Shape"])
def test_struct_roundtrip_through_the_wire(cls, value, protocol):
    obj = struct_from_json(cls, value)
    back = struct_to_json(roundtrip_wire(obj, protocol))
    expected = dict(value)
    if cls is st.Shape:
        expected["tags"] = sorted(value["tags"])  # sets print sorted
    assert back == expected


@pytest.mark.parametrize("protocol", [TBinaryProtocol, TCompactProtocol], ids=["binary", "compact"])
def test_nested_maps_roundtrip_through_the_wire(protocol):
    args = args_from_json(Showcase, "nested", {"value": NESTED_JSON})
    assert args.value == {1: {"k": [{1, 3}, set()], "": [{-32768, 32767}]}, -7: {}}
    decoded = roundtrip_wire(args, protocol)
    spec = Showcase.nested_result.thrift_spec[0]
    assert to_json(decoded.value, spec[0], spec[2]) == [[1, {"k": [[1, 3], []], "": [[-32768, 32767]]}], [-7, {}]]


def test_result_to_json():
    assert result_to_json(Showcase, "ping", None) is None
    assert result_to_json(Showcase, "add", I64_MIN) == I64_MIN
    assert result_to_json(Showcase, "next_color", 3) == "BLUE"
    assert result_to_json(Showcase, "reverse", b"\x03\x02\x01") == "AwIB"
    assert result_to_json(Showcase, "unique", {"b", "a", "c"}) == ["a", "b", "c"]
    assert result_to_json(Showcase, "index", {"1,2": st.Point(x=1, y=2)}) == {"1,2": {"x": 1, "y": 2}}


def test_i64_extremes_stay_exact_in_json_text():
    text = json.dumps(result_to_json(Showcase, "add", I64_MAX))
    assert text == "9223372036854775807"
    args = args_from_json(Showcase, "add", json.loads('{"a": 9223372036854775807, "b": -9223372036854775808}'))
    assert (args.a, args.b) == (I64_MAX, I64_MIN)


def test_doubles_nonfinite_as_strings_both_ways():
    for text, check in (
        ("NaN", math.isnan),
        ("Infinity", lambda v: v == math.inf),
        ("-Infinity", lambda v: v == -math.inf),
    ):
        value = from_json(text, TType.DOUBLE, None, "real")
        assert check(value)
        assert to_json(value, TType.DOUBLE) == text
    assert from_json(2, TType.DOUBLE, None, "real") == 2.0
    assert type(from_json(2, TType.DOUBLE, None, "real")) is float
    assert to_json(-0.25, TType.DOUBLE) == -0.25


def test_enum_by_name_or_number():
    spec = Showcase.next_color_args.thrift_spec[1]
    assert from_json("GREEN", spec[0], spec[2], "color") == 2
    assert from_json(3, spec[0], spec[2], "color") == 3
    assert from_json(99, spec[0], spec[2], "color") == 99  # sent as-is
    assert to_json(99, spec[0], spec[2]) == 99  # no name for it: the number
    assert to_json(1, spec[0], spec[2]) == "RED"


def test_absent_and_null_fields_are_unset_or_default():
    shape = struct_from_json(st.Shape, {"name": None})
    assert shape.name is None and shape.points is None
    assert shape.color == st.Color.RED  # the IDL default
    assert struct_to_json(st.Shape(name="x", color=None)) == {"name": "x"}


def test_args_default_to_empty_and_methods_without_args():
    assert struct_to_json(args_from_json(Showcase, "ping", {})) == {}
    assert struct_to_json(args_from_json(Showcase, "add", {"a": 1})) == {"a": 1}


def test_non_utf8_string_in_a_reply_is_replaced():
    assert to_json(b"ok\xff", TType.STRING) == "ok\ufffd"


def test_set_of_structs_and_unsortable_sets():
    spec = (TType.SET, (TType.STRUCT, st.Point))
    value = from_json([{"x": 1, "y": 2}, {"x": 1, "y": 2}], spec[0], spec[1], "p")
    assert value == {st.Point(x=1, y=2)}
    assert to_json(value, *spec) == [{"x": 1, "y": 2}]


def test_map_with_struct_and_list_keys():
    spec = (TType.MAP, ((TType.LIST, TType.I32), TType.STRING))
    value = from_json([[[1, 2], "a"], [[], "b"]], spec[0], spec[1], "m")
    assert value == {(1, 2): "a", (): "b"}
    assert to_json(value, *spec) == [[[1, 2], "a"], [[], "b"]]
    enum_keys = (TType.MAP, ((TType.I32, st.Color), TType.BOOL))
    assert from_json([["RED", True]], enum_keys[0], enum_keys[1], "m") == {1: True}
    assert to_json({2: False}, *enum_keys) == [["GREEN", False]]


def test_describe_type_spells_idl_types():
    assert describe_type(TType.MAP, Showcase.nested_args.thrift_spec[1][2]) == "map<i32, map<string, list<set<i16>>>>"
    assert describe_type(TType.BINARY) == "binary"
    assert describe_type(TType.STRING) == "string"


# --- errors name the path ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, value, path, message",
    [
        (
            "echo_shape",
            {"shape": {"points": [{"x": 1, "y": 2}, {"x": 1, "y": 2}, {"x": "3", "y": 2}]}},
            "shape.points[2].x",
            'expected an integer (i32), got "3"',
        ),
        (
            "echo_shape",
            {"shape": {"points": [{"x": 1, "y": 2}, {"x": 1}]}},
            "shape.points[1].y",
            "missing required field",
        ),
        ("echo_shape", {"shape": {"points": [{"x": 1, "y": None}]}}, "shape.points[0].y", "missing required field"),
        (
            "echo_shape",
            {"shape": {"colour": "RED"}},
            "shape.colour",
            "unknown field (Shape has: name, points, color, labels, tags, blob)",
        ),
        ("echo_shape", {"shap": {}}, "shap", "unknown argument (echo_shape() takes: shape)"),
        (
            "echo_shape",
            {"shape": {"color": "PURPLE"}},
            "shape.color",
            'unknown Color name "PURPLE" (names: RED, GREEN, BLUE)',
        ),
        ("echo_shape", {"shape": {"color": 1.0}}, "shape.color", "expected a Color name or number, got 1.0"),
        (
            "echo_shape",
            {"shape": {"labels": {"a": [{"x": 1, "y": True}]}}},
            'shape.labels["a"][0].y',
            "expected an integer (i32), got true",
        ),
        (
            "echo_shape",
            {"shape": {"labels": [["a", []]]}},
            "shape.labels",
            "expected an object (map with string keys), got array",
        ),
        (
            "echo_shape",
            {"shape": {"tags": [1, 2**63]}},
            "shape.tags[1]",
            "9223372036854775808 is out of range for i64 (-9223372036854775808..9223372036854775807)",
        ),
        ("echo_shape", {"shape": {"tags": {"1": 1}}}, "shape.tags", "expected an array (set), got object"),
        ("echo_shape", {"shape": {"blob": "not base64!"}}, "shape.blob", "not valid base64 (binary)"),
        ("echo_shape", {"shape": {"blob": [1, 2]}}, "shape.blob", "expected a base64 string (binary), got array"),
        ("echo_shape", {"shape": {"name": 5}}, "shape.name", "expected a string, got 5"),
        ("echo_shape", {"shape": {"name": "\ud800"}}, "shape.name", "string is not valid Unicode"),
        ("echo_shape", {"shape": []}, "shape", "expected an object (Shape), got array"),
        ("echo_scalars", {"s": {"tiny": 128}}, "s.tiny", "128 is out of range for byte (-128..127)"),
        ("echo_scalars", {"s": {"small": -32769}}, "s.small", "-32769 is out of range for i16"),
        ("echo_scalars", {"s": {"medium": 2**31}}, "s.medium", "2147483648 is out of range for i32"),
        ("echo_scalars", {"s": {"medium": 1.0}}, "s.medium", "expected an integer (i32), got 1.0"),
        ("echo_scalars", {"s": {"flag": 1}}, "s.flag", "expected true or false, got 1"),
        ("echo_scalars", {"s": {"real": "1.5"}}, "s.real", 'expected a number (double), got "1.5"'),
        ("echo_scalars", {"s": {"real": True}}, "s.real", "expected a number (double), got true"),
        ("echo_scalars", {"s": {"real": 10**400}}, "s.real", "too large for a double"),
        ("next_color", {"color": 2**31}, "color", "out of range for enum Color (i32)"),
        ("nested", {"value": [[1, {"k": [[1, "x"]]}]]}, 'value[0][1]["k"][0][1]', 'expected an integer (i16), got "x"'),
        ("nested", {"value": [[1, {}], [1, {}]]}, "value[1][0]", "duplicate map key 1"),
        ("nested", {"value": [[1]]}, "value[0]", "expected a [key, value] pair, got array"),
        ("nested", {"value": [["1", {}]]}, "value[0][0]", 'expected an integer (i32), got "1"'),
        (
            "nested",
            {"value": {"1": {}}},
            "value",
            "expected an array of [key, value] pairs (map<i32, map<string, list<set<i16>>>>), got object",
        ),
        ("index", {"points": [None]}, "points[0]", "expected an object (Point), got null"),
        ("add", [1, 2], "", "expected a JSON object keyed by argument name, got array"),
        ("ping", {"x": 1}, "x", "unknown argument (ping() takes: nothing)"),
    ],
)
def test_errors_name_the_path(method, value, path, message):
    with pytest.raises(JsonMapError) as info:
        args_from_json(Showcase, method, value)
    assert info.value.path == path
    assert message in info.value.message
    assert str(info.value).startswith((path or "arguments") + ": ")
