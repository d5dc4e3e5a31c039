"""The compiled THeader parser and encoder (dracula/wire/_ctheader.pyx) do what the pure-Python
ones in dracula/wire/theader.py do.

parse_header: the same HeaderFrame fields (headers in the same order), or the same WireError
(reason, fatal, app_type, and the `theader` frame it carries), and the connection's persistent
headers left the same, for random THeader frames (any protocol id, transforms, KEYVALUE and
PKEYVALUE blocks, unknown info ids, lying header sizes), mutated ones (flipped and overwritten
bytes, truncation, insertion), every hostile frame of tests/test_theader_wire.py whole, cut at
every byte and with each byte overwritten, placed anywhere in a buffer among other bytes.
encode_frame: byte-identical frames (or the same exception) for random payloads, requests and
reply headers (str with unpaired surrogates, bytes, non-ASCII).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dracula.wire import theader
from dracula.wire.detect import BINARY, COMPACT
from dracula.wire.errors import WireError
from dracula.wire.theader_frame import MAX_PERSISTENT_BYTES, HeaderFrame

from .theader_frames import (
    FIRST_FRAME_REFUSALS,
    FRAME_REFUSALS,
    LATER_FRAME_REFUSALS,
    info,
    ping_frame,
    raw_frame,
    varint,
)

compiled = pytest.importorskip(
    "dracula.wire._ctheader",
    reason="the compiled THeader code is not built (pip install . or python setup.py build_ext --inplace)",
)

PURE = (theader.pure_parse_header, theader.pure_encode_frame)
COMPILED = (compiled.parse_header, compiled.encode_frame)
SETTINGS = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIELDS = ("protocol", "seqid", "flags", "transforms", "headers", "persistent", "payload_at", "timeout", "payload")


# -- running both implementations ----------------------------------------------------------------


def frame_fields(frame):
    if frame is None:
        return None
    assert type(frame) in (HeaderFrame, compiled.HeaderFrame)
    return tuple(
        list(value.items()) if isinstance(value, dict) else value for value in (getattr(frame, name) for name in FIELDS)
    )


def parse_outcome(parse, buf, start, end, persistent):
    """What one parse_header call did, comparably; `persistent` is copied first, and what the
    call left in it is part of the outcome."""
    kept = None if persistent is None else dict(persistent)
    try:
        frame = parse(buf, start, end, kept)
    except WireError as e:
        result = ("refused", e.reason, e.fatal, e.app_type, e.reply_to, frame_fields(e.theader))
    else:
        result = ("parsed", frame_fields(frame))
    return result, None if kept is None else list(kept.items())


def assert_same_parse(frame: bytes, persistent=None, before=b"", after=b"", kind=bytes):
    """Both parsers on `frame` (after its length) lying in a buffer between other bytes."""
    buf = kind(before + frame + after)
    start, end = len(before), len(before) + len(frame)
    pure = parse_outcome(PURE[0], buf, start, end, persistent)
    assert parse_outcome(COMPILED[0], buf, start, end, persistent) == pure
    return pure


def encode_outcome(encode, payload, request, headers):
    try:
        return ("encoded", encode(payload, request, headers))
    except Exception as e:  # the same exception, whichever the pure code raises
        return ("raised", type(e), str(e))


def assert_same_encode(payload, request, headers):
    pure = encode_outcome(PURE[1], payload, request, headers)
    assert encode_outcome(COMPILED[1], payload, request, headers) == pure
    return pure


# -- frames --------------------------------------------------------------------------------------

keys = st.binary(max_size=12) | st.sampled_from([b"traceparent", b"client_timeout", b"k", b"\xff\xfe", b"\xc3\xa9"])
pairs = st.dictionaries(keys, keys, max_size=4)
varints = st.sampled_from([0, 1, 2, 3, 5, 0x7F, 0x80, 2**31]) | st.integers(0, 2**35 - 1)


@st.composite
def info_block(draw) -> bytes:
    block_id = draw(mostly(st.sampled_from([1, 2]), st.sampled_from([0, 3]) | varints))
    if block_id not in (1, 2):
        return varint(block_id) + draw(st.binary(max_size=6))
    entries = draw(pairs)
    block = info(block_id, entries)
    if draw(st.integers(0, 9)) == 7:  # a lying pair count
        block = varint(block_id) + varint(draw(varints)) + block[1 + len(varint(len(entries))) :]
    return block


def mostly(good, odd):
    """`good` nine times in ten: most frames get far enough to reach the headers."""
    return st.integers(0, 9).flatmap(lambda n: odd if n == 7 else good)  # not 0: hypothesis favours it


@st.composite
def header_frames(draw) -> bytes:
    """A frame after its length: the fixed header, header, payload."""
    protocol_id = draw(mostly(st.sampled_from([0, 2]), varints))
    transforms = draw(mostly(st.sampled_from([[], [1]]), st.lists(st.sampled_from([1, 2, 3, 5]) | varints, max_size=3)))
    header = varint(protocol_id) + varint(len(transforms)) + b"".join(varint(t) for t in transforms)
    header += b"".join(draw(st.lists(info_block(), max_size=3)))
    if draw(st.integers(0, 3)) == 0:
        header += draw(st.binary(max_size=5))
    payload = draw(st.binary(max_size=30))
    words = draw(mostly(st.none(), st.integers(0, 0xFFFF) | st.integers(0, 8)))
    frame = raw_frame(
        header,
        payload,
        seqid=draw(st.integers(-(2**31), 2**31 - 1)),
        flags=draw(st.integers(0, 0xFFFF)),
        pad=draw(mostly(st.just(True), st.just(False))),
        words=words,
    )
    return frame[4:]


@st.composite
def mutated(draw, source) -> bytes:
    data = bytearray(draw(source))
    for _ in range(draw(st.integers(0, 3))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "byte", "cut", "insert"]))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte":
            data[at] = draw(st.sampled_from([0, 1, 2, 0x0F, 0x7F, 0x80, 0xFF]))
        elif op == "cut":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


persistents = (
    st.none()
    | st.just({})
    | st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3)
    | st.just({"big": "v" * (MAX_PERSISTENT_BYTES - 10)})
)
buffer_kinds = st.sampled_from([bytes, bytearray])
surroundings = st.binary(max_size=5)


# -- parse_header --------------------------------------------------------------------------------


@SETTINGS
@given(header_frames() | mutated(header_frames()), persistents, surroundings, surroundings, buffer_kinds)
def test_random_frames_parse_the_same(frame, persistent, before, after, kind):
    assert_same_parse(frame, persistent, before, after, kind)


@SETTINGS
@given(st.lists(header_frames(), min_size=2, max_size=4))
def test_persistent_headers_accumulate_the_same(frames):
    """One connection's frames in turn, on one persistent dict per implementation."""
    kept = {PURE: {}, COMPILED: {}}
    for frame in frames:
        outcomes = [parse_outcome(impl[0], frame, 0, len(frame), None) for impl in (PURE, COMPILED)]
        assert outcomes[0] == outcomes[1]
        for impl in kept:
            try:
                impl[0](frame, 0, len(frame), kept[impl])
            except WireError:
                pass
        assert list(kept[PURE].items()) == list(kept[COMPILED].items())


@SETTINGS
@given(st.lists(header_frames(), min_size=2, max_size=4))
def test_headers_read_after_later_frames_are_the_same(frames):
    """A handler may read a call's headers after the connection's next frames were parsed (an
    async call, pipelining): the compiled frame decodes its headers only then, and must still
    show the persistent headers as they were when its own frame arrived."""
    parsed = {PURE: [], COMPILED: []}
    for impl, frames_seen in parsed.items():
        persistent: dict = {}
        for frame in frames:
            try:
                frames_seen.append(impl[0](frame, 0, len(frame), persistent))
            except WireError:
                frames_seen.append(None)
    assert [frame_fields(f) for f in parsed[PURE]] == [frame_fields(f) for f in parsed[COMPILED]]


def refusal_corpus():
    """Every hostile frame of tests/test_theader_wire.py (after its length), and good ones."""
    frames = {
        case: data
        for case, (data, *_) in [*FIRST_FRAME_REFUSALS.items(), *FRAME_REFUSALS.items(), *LATER_FRAME_REFUSALS.items()]
    }
    frames["plain ping"] = ping_frame()
    frames["compact zlib ping"] = ping_frame("compact", transforms=(1,))
    frames["headers"] = ping_frame(extra=info(2, {b"tenant": b"a", b"k": b"p"}) + info(1, {b"k": b"own"}))
    return {case: data[4:] for case, data in frames.items()}


@pytest.mark.parametrize("case", sorted(refusal_corpus()))
def test_refusal_corpus_parses_the_same(case):
    frame = refusal_corpus()[case]
    for persistent in (None, {}, {"tenant": "z"}, {"k": "v" * (MAX_PERSISTENT_BYTES // 2)}):
        assert_same_parse(frame, persistent)
    for cut in range(len(frame)):
        assert_same_parse(frame[:cut], after=frame[cut:])
    for at in range(min(len(frame), 40)):
        for byte in (0x00, 0x01, 0x02, 0x7F, 0x80, 0xFF):
            assert_same_parse(frame[:at] + bytes([byte]) + frame[at + 1 :], {"p": "1"})


REASONS = [
    "shorter than its 10-byte fixed header",
    "not THeader's magic",
    "header is empty",
    "only binary (0) and compact (2)",
    "runs past its",
    "(snappy) is not supported",
    "(unknown) is not supported",
    "listed twice",
    "transforms in",
    "headers in",
    "header string of",
    "runs past the header",
    "varint longer than 5 bytes",
]


def test_refusal_corpus_reaches_every_refusal():
    """The corpus and its cuts meet each refusal parse_header has: the cases above compare them."""
    seen = []
    for frame in refusal_corpus().values():
        for cut in range(len(frame) + 1):
            (result, _) = assert_same_parse(frame[:cut])
            if result[0] == "refused":
                seen.append(result[1])
    assert [r for r in REASONS if not any(r in reason for reason in seen)] == []


# Besides these, hypothesis rarely names the header: both read the same deadline from it.
@pytest.mark.parametrize(
    "value", [b"1500", b"0", b"0001", b"-5", b"1.5", b"", b"\xd9\xa3", b"9" * 15, b"9" * 16, b"9" * 400, b"\xff"]
)
@pytest.mark.parametrize("block", [1, 2])  # the frame's own header, or a persistent one
def test_client_timeout_reads_the_same(value, block):
    frame = ping_frame(extra=info(block, {b"client_timeout": value}))[4:]
    for persistent in (None, {}, {"client_timeout": "250"}):
        (result, _) = assert_same_parse(frame, persistent)
        assert result[0] == "parsed"
    expected = {b"1500": 1.5, b"0001": 0.001, b"9" * 15: 999999999999.999}.get(value)
    assert result[1][FIELDS.index("timeout")] == expected


def test_persistent_limit_clears_the_same():
    frame = ping_frame(extra=info(2, {b"k2": b"v" * (MAX_PERSISTENT_BYTES // 2)}))[4:]
    (result, left) = assert_same_parse(frame, {"k": "v" * (MAX_PERSISTENT_BYTES // 2)})
    assert result[0] == "refused" and result[1].startswith("persistent THeader headers of") and result[2]
    assert left == []  # the connection's persistent headers are dropped


def test_error_frames_carry_the_sequence_id_the_same():
    frame = raw_frame(b"\x02\x01\x03", b"payload", seqid=-9, flags=0x0102)[4:]
    (result, _) = assert_same_parse(frame)
    assert result[0] == "refused" and result[5][:4] == (COMPACT, -9, 0x0102, ())


# -- encode_frame --------------------------------------------------------------------------------

header_texts = (
    st.text(max_size=10)
    | st.binary(max_size=10)
    | st.binary(max_size=10).map(lambda b: b.decode("utf-8", "surrogateescape"))
)
# Both frame classes: the compiled encoder reads its own frames' fields directly, others' by name.
frame_classes = st.sampled_from([HeaderFrame, compiled.HeaderFrame])
requests = st.builds(
    lambda cls, *fields: cls(*fields),
    frame_classes,
    st.sampled_from([BINARY, COMPACT]),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(0, 0xFFFF),
    st.sampled_from([(), (1,)]),
)
odd_requests = st.builds(
    lambda cls, *fields: cls(*fields),
    frame_classes,
    st.sampled_from([BINARY, COMPACT, "json"]),
    st.integers(-(2**32), 2**32),
    st.integers(-1, 0x10000),
    st.sampled_from([(), (1,), (1, 1), (2,), [1], (0x80,), (2**40,)]),
)
payloads = st.binary(max_size=200) | st.binary(max_size=50).map(bytearray)


@SETTINGS
@given(payloads, requests | odd_requests, st.none() | st.dictionaries(header_texts, header_texts, max_size=5))
def test_random_replies_encode_byte_identical(payload, request, headers):
    assert_same_encode(payload, request, headers)


# The header holds protocol id, transform count, info id, pair count, "k" and the value's 3-byte
# length (9 bytes) besides the value: a value of MAX_HEADER_SIZE - 9 bytes fills it exactly.
@pytest.mark.parametrize(
    "value_size, outcome", [(60, "encoded"), (300, "encoded"), (0xFFFF * 4 - 9, "encoded"), (0xFFFF * 4 - 8, "raised")]
)
def test_large_reply_headers_encode_or_fail_the_same(value_size, outcome):
    assert assert_same_encode(b"p" * 10, HeaderFrame(BINARY, 1, 0), {"k": "v" * value_size})[0] == outcome


def test_encoded_replies_parse_back_the_same():
    request = HeaderFrame(COMPACT, 7, 1, (1,))
    reply = compiled.encode_frame(b"reply" * 20, request, {"a": "1", "ü": "\udcff"})
    (result, _) = assert_same_parse(reply[4:])
    assert result[1][:5] == (COMPACT, 7, 1, (1,), [("a", "1"), ("ü", "\udcff")])
