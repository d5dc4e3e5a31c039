"""Every IDL type of idl/showcase.thrift, as arguments and as return values, through a real server.

The client is thriftpy2's own (buffered transport, binary protocol); the handler is
examples/showcase.py's ShowcaseHandler, which builds its structs from its own load of the IDL.
thriftpy2 decodes a `set<...>` as a Python list, so sets are compared as sets (and checked for
duplicates) rather than by type.
"""

import math
import struct

import pytest
import thriftpy2.rpc
from hypothesis import HealthCheck, given, settings, strategies as st
from thriftpy2.thrift import TApplicationException

from examples.showcase import ShowcaseHandler

from .helpers import running, showcase_thrift as t

I8 = (-(2**7), 2**7 - 1)
I16 = (-(2**15), 2**15 - 1)
I32 = (-(2**31), 2**31 - 1)
I64 = (-(2**63), 2**63 - 1)


@pytest.fixture
def client(showcase_server):
    c = thriftpy2.rpc.make_client(t.Showcase, "127.0.0.1", showcase_server.port, timeout=10000)
    try:
        yield c
    finally:
        c.close()


def as_set(values):
    """A decoded thrift set (thriftpy2 gives a list) as a Python set, refusing duplicates."""
    values = list(values)
    assert len(values) == len(set(values)), "a thrift set came back with duplicates: %r" % values
    return set(values)


def same_double(a, b):
    if math.isnan(a):
        return math.isnan(b)
    return struct.pack("!d", a) == struct.pack("!d", b)


# -- void and scalars ---------------------------------------------------------------------------


def test_void_returns_none(client):
    assert client.ping() is None
    assert client.ping() is None


@pytest.mark.parametrize("end", [0, 1], ids=["min", "max"])
def test_scalars_at_their_extremes(client, end):
    sent = t.Scalars(
        flag=bool(end),
        tiny=I8[end],
        small=I16[end],
        medium=I32[end],
        large=I64[end],
        real=(-1.7976931348623157e308, 1.7976931348623157e308)[end],
        text="x" * end,
        raw=b"\xff" * end,
        color=(t.Color.RED, t.Color.BLUE)[end],
    )
    got = client.echo_scalars(sent)
    assert got == sent
    assert got.flag is bool(end)
    assert (got.tiny, got.small, got.medium, got.large) == (I8[end], I16[end], I32[end], I64[end])


def test_scalars_zero_values_are_not_lost(client):
    # False, 0, 0.0, "" and b"" are values, not absent fields: none may come back as None.
    sent = t.Scalars(flag=False, tiny=0, small=0, medium=0, large=0, real=0.0, text="", raw=b"", color=t.Color.GREEN)
    got = client.echo_scalars(sent)
    assert got.flag is False
    assert (got.tiny, got.small, got.medium, got.large) == (0, 0, 0, 0)
    assert got.real == 0.0 and math.copysign(1.0, got.real) == 1.0
    assert got.text == "" and isinstance(got.text, str)
    assert got.raw == b"" and isinstance(got.raw, bytes)
    assert got.color == t.Color.GREEN


def test_unset_fields_stay_unset(client):
    got = client.echo_scalars(t.Scalars())
    assert got == t.Scalars()
    assert all(getattr(got, name) is None for _, name, *_ in t.Scalars.thrift_spec.values())


def test_i64_arithmetic_at_the_extremes(client):
    assert client.add(2**62, 2**62 - 1) == I64[1]
    assert client.add(I64[0], 0) == I64[0]
    assert client.add(I64[0], I64[1]) == -1
    assert client.add(-1, I64[0] + 1) == I64[0]
    assert client.add(0, 0) == 0


def test_return_value_out_of_range_is_internal_error_and_connection_survives(client):
    with pytest.raises(TApplicationException) as info:
        client.add(I64[1], 1)  # the handler returns 2**63: no i64 holds it
    assert info.value.type == TApplicationException.INTERNAL_ERROR
    assert client.add(I64[1], 0) == I64[1]


@pytest.mark.parametrize(
    "value",
    [
        math.inf,
        -math.inf,
        -0.0,
        0.0,
        5e-324,
        -5e-324,
        2.2250738585072014e-308,
        0.1,
        -1 / 3,
        1.7976931348623157e308,
        2.0**53 + 1,
    ],
    ids=repr,
)
def test_double_values_round_trip_bit_for_bit(client, value):
    got = client.echo_scalars(t.Scalars(real=value)).real
    assert same_double(got, value), (got, value)


def test_double_nan_round_trips_as_nan(client):
    got = client.echo_scalars(t.Scalars(real=math.nan)).real
    assert isinstance(got, float) and math.isnan(got)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain ascii",
        "héllo wörld",
        "日本語のテキスト",
        "emoji 🧛 and 𝄞 (4-byte UTF-8)",
        "nul \x00 inside",
        "\u202eright-to-left",
        "a" * 100_000,
        "ü" * 40_000,
    ],
    ids=lambda s: repr(s[:20]),
)
def test_strings_round_trip(client, text):
    got = client.echo_scalars(t.Scalars(text=text)).text
    assert isinstance(got, str)
    assert got == text


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes(range(256)),
        b"\x00" * 7,
        "valid utf-8 ü".encode(),
        b"\xff\xfe\x80 invalid utf-8",
    ],
    ids=lambda b: repr(b[:12]),
)
def test_binary_round_trips_as_bytes(client, data):
    got = client.echo_scalars(t.Scalars(raw=data)).raw
    assert isinstance(got, bytes)
    assert got == data
    rev = client.reverse(data)
    assert isinstance(rev, bytes)
    assert rev == data[::-1]


def test_large_binary_argument_and_return(client):
    data = bytes(range(256)) * 8192  # 2 MiB: past the codec's buffer-reuse size and the write marks
    assert client.reverse(data) == data[::-1]
    assert client.reverse(b"after") == b"retfa"  # the shrunk buffers still work


def test_enums(client):
    assert client.next_color(t.Color.RED) == t.Color.GREEN
    assert client.next_color(t.Color.GREEN) == t.Color.BLUE
    assert client.next_color(t.Color.BLUE) == t.Color.RED
    for color in (t.Color.RED, t.Color.GREEN, t.Color.BLUE):
        assert client.echo_scalars(t.Scalars(color=color)).color == color


# -- structs and containers ---------------------------------------------------------------------


def full_shape():
    return t.Shape(
        name="triangle △",
        points=[t.Point(x=0, y=0), t.Point(x=I32[1], y=I32[0]), t.Point(x=-1, y=1)],
        color=t.Color.BLUE,
        labels={"corners": [t.Point(x=1, y=2), t.Point(x=3, y=4)], "": [], "ü": [t.Point(x=5, y=6)]},
        tags={I64[0], I64[1], 0, -1},
        blob=b"\x00\x01\xff",
    )


def test_nested_struct_round_trip(client):
    sent = full_shape()
    got = client.echo_shape(sent)
    assert got.name == sent.name
    assert got.points == sent.points
    assert got.color == t.Color.BLUE
    assert got.labels == sent.labels
    assert as_set(got.tags) == sent.tags
    assert got.blob == sent.blob


def test_optional_field_absent_stays_absent(client):
    got = client.echo_shape(t.Shape(name="bare", points=[], tags=set()))
    assert got.labels is None
    assert got.points == [] and list(got.tags) == []


def test_default_value_when_field_not_sent(backend):
    # A Shape whose `color` is not on the wire must reach the handler with the IDL default (RED).
    seen = []

    class Handler(ShowcaseHandler):
        def echo_shape(self, shape):
            seen.append(shape.color)
            return shape

    with running(t.Showcase, Handler(), backend=backend) as server:
        c = thriftpy2.rpc.make_client(t.Showcase, "127.0.0.1", server.port, timeout=10000)
        try:
            got = c.echo_shape(t.Shape(name="no color", color=None))  # None: the field is not written
            assert seen == [t.Color.RED]
            assert got.color == t.Color.RED
            assert t.Shape().color == t.Color.RED
            assert c.echo_shape(t.Shape()).color == t.Color.RED
        finally:
            c.close()


@pytest.mark.parametrize("n", [0, 1, 7, 1500])
def test_list_of_structs_return(client, n):
    shapes = client.shapes(n)
    assert len(shapes) == n
    for i, shape in enumerate(shapes):
        assert shape.name == "shape-%d" % i
        assert shape.points == [t.Point(x=i, y=-i)]
        assert shape.color == t.Color.GREEN
        assert shape.labels is None
        assert as_set(shape.tags) == {i, -i}
        assert shape.blob == bytes([i % 256]) * i


def test_map_of_structs_return(client):
    points = [t.Point(x=x, y=y) for x, y in [(0, 0), (1, -1), (I32[0], I32[1]), (1, -1)]]
    got = client.index(points)
    assert got == {"0,0": points[0], "1,-1": points[1], "%d,%d" % I32: points[2]}
    assert client.index([]) == {}


def test_set_of_strings_return(client):
    words = ["b", "a", "b", "ü", "", "ü", "🧛"]
    assert as_set(client.unique(words)) == set(words)
    assert list(client.unique([])) == []


def normalise(value):
    """map<i32, map<string, list<set<i16>>>> with sets made comparable."""
    return {k: {s: [frozenset(as_set(x)) for x in lst] for s, lst in inner.items()} for k, inner in value.items()}


@pytest.mark.parametrize(
    "value",
    [
        {},
        {0: {}},
        {1: {"": []}},
        {
            I32[0]: {"min": [set(), {I16[0], I16[1]}, {0}]},
            I32[1]: {"max": [{1, 2, 3}], "ü": [set(), set()]},
            -1: {"a": [{-1}], "b": [], "c": [set(range(-50, 50))]},
        },
    ],
    ids=["empty", "empty-inner", "empty-list", "deep"],
)
def test_nested_containers_round_trip(client, value):
    got = client.nested(value)
    assert normalise(got) == {
        k: {s: [frozenset(x) for x in lst] for s, lst in inner.items()} for k, inner in value.items()
    }


def test_nested_containers_large(client):
    value = {k: {"k%d" % j: [set(range(j)), {k % 32768}] for j in range(10)} for k in range(200)}
    got = client.nested(value)
    assert normalise(got) == {
        k: {s: [frozenset(x) for x in lst] for s, lst in inner.items()} for k, inner in value.items()
    }


# -- property: any Scalars round-trips ----------------------------------------------------------

scalars = st.builds(
    t.Scalars,
    flag=st.none() | st.booleans(),
    tiny=st.none() | st.integers(*I8),
    small=st.none() | st.integers(*I16),
    medium=st.none() | st.integers(*I32),
    large=st.none() | st.integers(*I64),
    real=st.none() | st.floats(allow_nan=False),
    text=st.none() | st.text(max_size=50),
    raw=st.none() | st.binary(max_size=50),
    color=st.none() | st.sampled_from([t.Color.RED, t.Color.GREEN, t.Color.BLUE]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sent=scalars)
def test_any_scalars_round_trip(client, sent):
    got = client.echo_scalars(sent)
    for _, name, *_ in t.Scalars.thrift_spec.values():
        a, b = getattr(sent, name), getattr(got, name)
        if name == "real" and a is not None:
            assert same_double(a, b)
        else:
            assert a == b and type(a) is type(b), (name, a, b)
