"""The compiled scanners (dracula/wire/_cscan.pyx) give the pure-Python ones' verdicts.

Same bytes, same calls, both implementations: the same length (or -1), header, resume offsets
(`pos`, `need`) after every call, and the same WireError reason when refused. Messages come from
thriftpy2's own encoders (every IDL type of idl/showcase.thrift, binary and compact), from a
"liar" IDL whose methods share showcase's names but not its types (the codec quirks spec_guard.py
refuses: string map entries where the IDL has another type, compact lists of another element
type), and from a generator of arbitrary wire trees (wrong type codes, lying counts and lengths,
deep nesting); then mutated (flipped bytes, overwritten lengths, truncation) and fed whole, in
pieces that move in the buffer between calls, split at every byte, and with limits.
"""

from __future__ import annotations

import io
import struct

import pytest
import thriftpy2
from hypothesis import HealthCheck, given, settings, strategies as st
from thriftpy2.protocol.compact import TCompactProtocol
from thriftpy2.protocol.cybin import TCyBinaryProtocol
from thriftpy2.thrift import TMessageType
from thriftpy2.transport.memory import TCyMemoryBuffer, TMemoryBuffer

from dracula.wire import binary_scan, compact_scan
from dracula.wire.errors import WireError

from .helpers import showcase_thrift

compiled = pytest.importorskip(
    "dracula.wire._cscan",
    reason="the compiled scanner is not built (pip install . or python setup.py build_ext --inplace)",
)

PURE = {"binary": binary_scan.BinaryScanner, "compact": compact_scan.CompactScanner}
COMPILED = {"binary": compiled.BinaryScanner, "compact": compiled.CompactScanner}
SPECS = {
    name.encode(): getattr(showcase_thrift.Showcase, name + "_args").thrift_spec
    for name in showcase_thrift.Showcase.thrift_services
}
DEFAULT_LIMITS = (64, 10_000_000, 2**31 - 1)

# Showcase's method names with other argument types: what a client built from a different IDL
# (or an attacker) sends.
LIAR_IDL = """
struct Point { 1: i64 x, 2: string y }
struct Shape {
    1: list<i32> name, 2: list<i64> points, 3: string color,
    4: map<i32, list<Point>> labels, 5: set<string> tags, 6: list<Point> blob,
}
struct Scalars { 1: string flag, 2: i64 tiny, 3: Point small, 4: list<i32> medium, 5: double large }
service Showcase {
    void echo_shape(1: Shape shape),
    void index(1: list<i64> points),
    void unique(1: list<i32> words),
    void nested(1: map<string, map<i32, list<list<i16>>>> value),
    void echo_scalars(1: Scalars s),
    void reverse(1: list<string> data),
}
"""
liar_thrift = thriftpy2.load_fp(io.StringIO(LIAR_IDL), module_name="liar_thrift")


# -- running both implementations ----------------------------------------------------------------


def outcome(scanner, buf, base, end, limit):
    """What one scan call did, comparably: its result and the state it left, or its error."""
    try:
        n = scanner.scan(buf, base, end, limit)
    except WireError as e:
        return ("refused", e.reason)
    return ("scanned", n, scanner.header, scanner.pos, scanner.need)


def run(kind, limits, specs, calls):
    """Replay `calls` [(buf, base, end, limit)] on a fresh scanner; outcomes up to a refusal."""
    scanner = {"pure": PURE, "compiled": COMPILED}[kind[0]][kind[1]](*limits, specs)
    seen = []
    for call in calls:
        seen.append(outcome(scanner, *call))
        if seen[-1][0] == "refused":
            break
    return seen


def assert_same(protocol, calls, limits=DEFAULT_LIMITS, specs=SPECS):
    pure = run(("pure", protocol), limits, specs, calls)
    assert run(("compiled", protocol), limits, specs, calls) == pure
    return pure


def whole(message: bytes):
    buf = bytearray(message)
    return [(buf, 0, len(buf), len(buf))]


def in_pieces(message: bytes, cuts, shift: int, tail: int):
    """Deliver message[:cut] for each cut, then all of it, the way the Reader does: the message
    may move in its buffer between calls (offsets are relative) and the next message's first
    bytes may follow it (unframed: the limit lies beyond the bytes)."""
    calls = []
    for i, cut in enumerate([*sorted(set(cuts)), len(message)]):
        base = (shift * i) % 7
        buf = bytearray(base) + bytearray(message[:cut]) + (b"\x80" * tail if cut == len(message) else b"")
        calls.append((buf, base, len(buf), base + len(message) + tail))
    return calls


# -- messages ------------------------------------------------------------------------------------


def encode(protocol: str, name: str, args, seqid=7, mtype=TMessageType.CALL) -> bytes:
    if protocol == "binary":
        buf = TCyMemoryBuffer()
        proto = TCyBinaryProtocol(buf)
    else:
        buf = TMemoryBuffer()
        proto = TCompactProtocol(buf)
    proto.write_message_begin(name, mtype, seqid)
    proto.write_struct(args)
    proto.write_message_end()
    if protocol == "binary":
        buf.flush()
    return buf.getvalue()


PROTOCOLS = st.sampled_from(["binary", "compact"])
i16s = st.integers(-(2**15), 2**15 - 1)
i32s = st.integers(-(2**31), 2**31 - 1)
i64s = st.integers(-(2**63), 2**63 - 1)
texts = st.text(max_size=12)
small = dict(max_size=4)


def idl_calls(t):
    """(method name, args) strategies for the real showcase IDL (t = showcase_thrift)."""
    points = st.builds(t.Point, x=i32s, y=i32s)
    shapes = st.builds(
        t.Shape,
        name=texts,
        points=st.lists(points, **small),
        color=st.sampled_from([1, 2, 3]),
        labels=st.none() | st.dictionaries(texts, st.lists(points, **small), **small),
        tags=st.sets(i64s, **small),
        blob=st.binary(max_size=12),
    )
    scalars = st.builds(
        t.Scalars,
        flag=st.booleans(),
        tiny=st.integers(-128, 127),
        small=i16s,
        medium=i32s,
        large=i64s,
        real=st.floats(allow_nan=False),
        text=texts,
        raw=st.binary(max_size=8),
        color=st.sampled_from([1, 2, 3]),
    )
    nested = st.dictionaries(i32s, st.dictionaries(texts, st.lists(st.sets(i16s, **small), **small), **small), **small)
    S = t.Showcase
    return st.one_of(
        st.builds(lambda s: ("echo_shape", S.echo_shape_args(shape=s)), shapes),
        st.builds(lambda s: ("echo_scalars", S.echo_scalars_args(s=s)), scalars),
        st.builds(lambda v: ("nested", S.nested_args(value=v)), nested),
        st.builds(lambda p: ("index", S.index_args(points=p)), st.lists(points, **small)),
        st.builds(lambda w: ("unique", S.unique_args(words=w)), st.lists(texts, **small)),
        st.builds(lambda a, b: ("add", S.add_args(a=a, b=b)), i64s, i64s),
        st.builds(lambda d: ("reverse", S.reverse_args(data=d)), st.binary(max_size=40)),
        st.just(("ping", S.ping_args())),
    )


def liar_calls():
    L = liar_thrift
    points = st.builds(L.Point, x=i64s, y=texts)
    shapes = st.builds(
        L.Shape,
        name=st.lists(i32s, **small),
        points=st.lists(i64s, **small),
        color=texts,
        labels=st.dictionaries(i32s, st.lists(points, **small), **small),
        tags=st.sets(texts, **small),
        blob=st.lists(points, **small),
    )
    scalars = st.builds(
        L.Scalars, flag=texts, tiny=i64s, small=points, medium=st.lists(i32s, **small), large=st.floats(allow_nan=False)
    )
    nested = st.dictionaries(texts, st.dictionaries(i32s, st.lists(st.lists(i16s, **small), **small), **small), **small)
    S = L.Showcase
    return st.one_of(
        st.builds(lambda s: ("echo_shape", S.echo_shape_args(shape=s)), shapes),
        st.builds(lambda s: ("echo_scalars", S.echo_scalars_args(s=s)), scalars),
        st.builds(lambda v: ("nested", S.nested_args(value=v)), nested),
        st.builds(lambda p: ("index", S.index_args(points=p)), st.lists(i64s, **small)),
        st.builds(lambda w: ("unique", S.unique_args(words=w)), st.lists(i32s, **small)),
        st.builds(lambda d: ("reverse", S.reverse_args(data=d)), st.lists(texts, **small)),
    )


@st.composite
def encoded(draw, protocol=PROTOCOLS):
    protocol = draw(protocol)
    name, args = draw(idl_calls(showcase_thrift) | liar_calls())
    mtype = draw(st.sampled_from([TMessageType.CALL, TMessageType.ONEWAY, TMessageType.REPLY]))
    # (thriftpy2's pure compact writer loops for ever on a negative seqid)
    seqid = draw(i32s if protocol == "binary" else st.integers(0, 2**31 - 1))
    return protocol, encode(protocol, name, args, seqid=seqid, mtype=mtype)


# Arbitrary wire trees, written by hand in either protocol: any type code (valid or not) at any
# place, counts and lengths that may lie, nesting as deep as drawn.
B_TYPES = [2, 3, 4, 6, 8, 10, 11, 12, 13, 14, 15, 18]
COMPACT_OF = {2: 1, 3: 3, 4: 7, 6: 4, 8: 5, 10: 6, 11: 8, 18: 8, 12: 12, 13: 11, 14: 10, 15: 9}
lies = st.sampled_from([0] * 8 + [1, -1, 2, 1000, 2**31 - 1, -(2**31)])


def varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 70) - 1
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


class Wire:
    """Writes values in one protocol; `bad` type codes pass through unmapped."""

    def __init__(self, protocol):
        self.compact = protocol == "compact"

    def code(self, ttype):
        return COMPACT_OF.get(ttype, ttype & 0x0F) if self.compact else ttype

    def count(self, n: int) -> bytes:
        return varint(n) if self.compact else struct.pack("!i", max(-(2**31), min(2**31 - 1, n)))

    def scalar(self, ttype, value: int) -> bytes:
        if not self.compact:
            size = {2: 1, 3: 1, 4: 8, 6: 2, 8: 4, 10: 8}[ttype]
            return (value & ((1 << 8 * size) - 1)).to_bytes(size, "big")
        if ttype in (2, 3):
            return bytes([value & 0xFF])
        if ttype == 4:
            return (value & (2**64 - 1)).to_bytes(8, "little")
        return varint(zigzag(value))

    def field(self, ttype, fid, last) -> bytes:
        if not self.compact:
            return struct.pack("!Bh", ttype & 0xFF, fid)
        code = self.code(ttype)
        if 0 < fid - last <= 15:
            return bytes([(fid - last) << 4 | code])
        return bytes([code]) + varint(zigzag(fid))


@st.composite
def wire_value(draw, w: Wire, ttype: int, depth: int) -> bytes:
    if ttype in (2, 3, 4, 6, 8, 10):
        return w.scalar(ttype, draw(st.integers(-(2**63), 2**63 - 1)))
    if ttype in (11, 18):
        data = draw(st.binary(max_size=8))
        return w.count(len(data) + draw(lies)) + data
    if ttype == 12 or depth <= 0:
        return draw(wire_struct(w, depth - 1))
    if ttype in (14, 15):
        declared = draw(st.sampled_from(B_TYPES) | st.integers(0, 255))
        actual = draw(st.just(declared) | st.sampled_from(B_TYPES)) if declared in B_TYPES else 8
        items = draw(st.lists(wire_value(w, actual, depth - 1), max_size=3))
        n = len(items) + draw(lies)
        if w.compact:
            code = w.code(declared)
            head = bytes([max(0, n) << 4 | code]) if 0 <= n < 15 else bytes([0xF0 | code]) + varint(n)
        else:
            head = bytes([declared & 0xFF]) + w.count(n)
        return head + b"".join(items)
    kt, vt = draw(st.sampled_from(B_TYPES)), draw(st.sampled_from(B_TYPES))
    entries = draw(st.lists(st.tuples(wire_value(w, kt, depth - 1), wire_value(w, vt, depth - 1)), max_size=3))
    n = len(entries) + draw(lies)
    body = b"".join(k + v for k, v in entries)
    if w.compact:
        return varint(n) + (bytes([w.code(kt) << 4 | w.code(vt)]) if n else b"") + body
    return bytes([kt, vt]) + w.count(n) + body


@st.composite
def wire_struct(draw, w: Wire, depth: int) -> bytes:
    out, last = [], 0
    for _ in range(draw(st.integers(0, 4 if depth > 0 else 1))):
        ttype = draw(st.sampled_from(B_TYPES) if depth > 0 else st.sampled_from([8, 11]))
        fid = draw(st.integers(1, 6) | st.integers(-(2**15), 2**15 - 1))
        if w.compact and ttype == 2:  # a bool field carries its value in the field header
            out.append(bytes([0x10 | draw(st.sampled_from([1, 2]))]))
            last += 1
            continue
        out.append(w.field(ttype, fid, last) + draw(wire_value(w, ttype, depth)))
        last = fid
    return b"".join(out) + b"\x00"


@st.composite
def hand_written(draw):
    protocol = draw(PROTOCOLS)
    w = Wire(protocol)
    name = draw(st.sampled_from(sorted(SPECS)) | st.binary(max_size=6))
    seqid = draw(i32s)
    if protocol == "compact":
        head = bytes([0x82, draw(st.integers(1, 4)) << 5 | 1]) + varint(seqid & 0xFFFFFFFF) + varint(len(name)) + name
    elif draw(st.booleans()):
        head = struct.pack("!iI", -0x7FFF0000 | 1, len(name)) + name + struct.pack("!i", seqid)
    else:  # non-strict binary
        head = struct.pack("!i", len(name)) + name + b"\x01" + struct.pack("!i", seqid)
    return protocol, head + draw(wire_struct(w, draw(st.integers(0, 5))))


@st.composite
def mutated(draw, source):
    protocol, message = draw(source)
    data = bytearray(message)
    for _ in range(draw(st.integers(0, 3))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "byte", "i32", "cut", "insert"]))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte":
            data[at] = draw(st.sampled_from([0, 1, 0x0F, 0x7F, 0x80, 0xFF, *B_TYPES]))
        elif op == "i32":
            data[at : at + 4] = struct.pack("!i", draw(i32s | st.sampled_from([-1, 0, 1, 2**31 - 1])))
        elif op == "cut":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
    return protocol, bytes(data)


messages = encoded() | hand_written()
any_message = messages | mutated(messages)
limits = st.tuples(
    st.sampled_from([1, 2, 3, 8, 64]), st.sampled_from([0, 1, 3, 10_000_000]), st.sampled_from([0, 3, 2**31 - 1])
)
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- the tests -----------------------------------------------------------------------------------


@SETTINGS
@given(encoded())
def test_valid_messages_are_accepted_alike(case):
    protocol, message = case
    seen = assert_same(protocol, whole(message))
    if seen[0][0] == "scanned":  # (the liar IDL's may be refused)
        assert seen[0][1] == len(message)


@SETTINGS
@given(any_message)
def test_whole_messages(case):
    assert_same(case[0], whole(case[1]))


@SETTINGS
@given(any_message, st.data())
def test_messages_in_pieces(case, data):
    protocol, message = case
    cuts = data.draw(st.lists(st.integers(0, max(0, len(message) - 1)), max_size=6))
    shift = data.draw(st.integers(0, 6))
    tail = data.draw(st.sampled_from([0, 3]))
    assert_same(protocol, in_pieces(message, cuts, shift, tail))


@SETTINGS
@given(any_message, limits)
def test_limits(case, limit_values):
    assert_same(case[0], whole(case[1]), limits=limit_values)


@SETTINGS
@given(any_message, st.integers(0, 64))
def test_truncated_to_a_frame_and_without_specs(case, cut):
    protocol, message = case
    short = bytearray(message[: max(0, len(message) - cut)])
    assert_same(protocol, [(short, 0, len(short), len(short))])
    assert_same(protocol, whole(message), specs=None)


@SETTINGS
@given(PROTOCOLS, st.integers(1, 80), st.sampled_from([1, 8, 63, 64, 65]))
def test_deep_nesting(protocol, depth, max_depth):
    w = Wire(protocol)
    struct_field = w.field(12, 1, 0)
    list_of_lists = bytes([0x19]) if w.compact else bytes([15]) + w.count(1)
    body = struct_field * depth + b"\x00" * (depth + 1)
    lists = w.field(15, 1, 0) + list_of_lists * depth + b"\x00"
    for tail in (body, lists):
        message = encode(protocol, "echo_shape", showcase_thrift.Showcase.ping_args())[:-1] + tail
        assert_same(protocol, whole(message), limits=(max_depth, 10, 100))


def split_everywhere_cases():
    t = showcase_thrift
    shape = t.Shape(
        name="tri",
        points=[t.Point(x=i, y=-i) for i in range(3)],
        labels={"corner": [t.Point(x=0, y=0)]},
        tags={1, 2, 3},
        blob=b"\x00" * 5,
    )
    S = t.Showcase
    for protocol in ("binary", "compact"):
        yield protocol, encode(protocol, "echo_shape", S.echo_shape_args(shape=shape))
        yield protocol, encode(protocol, "nested", S.nested_args(value={1: {"a": [{1, 2}, set()]}}))
        yield (
            protocol,
            encode(
                protocol,
                "echo_scalars",
                S.echo_scalars_args(
                    s=t.Scalars(
                        flag=True, tiny=-1, small=300, medium=-70000, large=2**40, real=1.5, text="x", raw=b"y", color=2
                    )
                ),
            ),
        )
        yield protocol, encode(protocol, "ping", S.ping_args())
        L = liar_thrift.Showcase
        yield protocol, encode(protocol, "nested", L.nested_args(value={"a": {1: [[1]]}}))
        yield protocol, encode(protocol, "index", L.index_args(points=[1, 2]))


@pytest.mark.parametrize("protocol, message", list(split_everywhere_cases()))
def test_split_at_every_byte(protocol, message):
    for cut in range(len(message)):
        assert_same(protocol, in_pieces(message, [cut], 1, 3))
    assert_same(protocol, in_pieces(message, range(len(message)), 3, 0))


@pytest.mark.parametrize(
    "protocol, name, args, reason",
    [
        ("binary", "nested", liar_thrift.Showcase.nested_args(value={"a": {}}), "map declares string entries"),
        ("compact", "nested", liar_thrift.Showcase.nested_args(value={"a": {}}), "map declares string entries"),
        ("compact", "index", liar_thrift.Showcase.index_args(points=[1]), "list declares element type 10"),
        ("compact", "unique", liar_thrift.Showcase.unique_args(words=[]), "list declares element type 8"),
    ],
)
def test_codec_quirks_are_refused_alike(protocol, name, args, reason):
    seen = assert_same(protocol, whole(encode(protocol, name, args)))
    assert seen[-1][0] == "refused" and seen[-1][1].startswith(reason)
