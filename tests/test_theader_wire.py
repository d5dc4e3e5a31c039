"""THeader frames in process: Apache Thrift's Python THeaderProtocol writes calls that dracula's
Reader parses, and reads the reply frames dracula's encode_frame writes (binary, compact, zlib,
info headers both ways); hand-built hostile frames are refused with WireError, in time and memory
that follow the bytes sent (a zlib bomb stops at the message size limit)."""

from __future__ import annotations

import re
import struct
import tracemalloc
import zlib

import pytest
from thrift.protocol.THeaderProtocol import THeaderProtocol
from thrift.transport.THeaderTransport import THeaderClientType, THeaderTransformID
from thrift.transport.TTransport import TMemoryBuffer

from dracula.wire.codec import make_codec
from dracula.wire.detect import THEADER_BINARY, THEADER_COMPACT, detect
from dracula.wire.errors import WireError
from dracula.wire.reader import Reader
from dracula.wire.theader import (
    INVALID_PROTOCOL,
    MAX_PERSISTENT_BYTES,
    HeaderFrame,
    client_timeout,
    encode_frame,
    parse_frame,
)

from . import apache_client as apache
from .helpers import showcase_thrift as t
from .theader_frames import (
    FIRST_FRAME_REFUSALS,
    FRAME_REFUSALS,
    LATER_FRAME_REFUSALS,
    PROTOCOL_IDS,
    info,
    ping_frame,
    ping_payload,
    raw_frame,
    varint,
)
from .wire_client import feed_reader

MB = 1024 * 1024
WIRES = {"binary": THEADER_BINARY, "compact": THEADER_COMPACT}
REPLY = 2
PROTOCOL_ERROR = 7


# -- Apache's side ------------------------------------------------------------------------------


def apache_protocol(trans, protocol):
    return THeaderProtocol(trans, (THeaderClientType.HEADERS,), PROTOCOL_IDS[protocol])


def apache_call(protocol, name, args, seqid=1, compress=False, headers=None) -> bytes:
    """The bytes Apache's THeaderProtocol client sends for one call."""
    out = TMemoryBuffer()
    proto = apache_protocol(out, protocol)
    if compress:
        proto.add_transform(THeaderTransformID.ZLIB)
    for key, value in (headers or {}).items():
        proto.set_header(key, value)
    proto.writeMessageBegin(name, 1, seqid)
    args.write(proto)
    proto.writeMessageEnd()
    proto.trans.flush()
    return out.getvalue()


def apache_reply(protocol, data: bytes, result):
    """Apache's client reading one reply frame: (name, type, seqid), the result, headers."""
    proto = apache_protocol(TMemoryBuffer(data), protocol)
    begin = proto.readMessageBegin()
    result.read(proto)
    proto.readMessageEnd()
    return begin, result, proto.get_headers()


def apache_shape():
    return apache.Shape(
        name="héxagon",
        points=[apache.Point(1, 2), apache.Point(-(2**31), 2**31 - 1)],
        color=2,
        labels={"a": [apache.Point(3, 4)], "": []},
        tags={7, -(2**63)},
        blob=b"\x00\xff\x80",
    )


def shape():
    return t.Shape(
        name="héxagon",
        points=[t.Point(x=1, y=2), t.Point(x=-(2**31), y=2**31 - 1)],
        color=2,
        labels={"a": [t.Point(x=3, y=4)], "": []},
        tags={7, -(2**63)},
        blob=b"\x00\xff\x80",
    )


def same_shape(a, b) -> bool:
    return (a.name, [(p.x, p.y) for p in a.points], a.color, set(a.tags), a.blob) == (
        b.name,
        [(p.x, p.y) for p in b.points],
        b.color,
        set(b.tags),
        b.blob,
    )


# -- dracula's side -----------------------------------------------------------------------------


def new_reader(max_size=16 * MB, max_container=10_000_000):
    return Reader(max_size, 64, max_container)


def feed(reader, data: bytes, piece=None) -> list:
    return feed_reader(reader, data, piece)


def drain(reader) -> list:
    messages = []
    while (msg := reader.next_message()) is not None:
        messages.append(msg)
    return messages


def refusal(reader, data: bytes) -> WireError:
    with pytest.raises(WireError) as caught:
        feed(reader, data)
    return caught.value


# -- round trips with Apache --------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "zlib"])
@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_apache_call_parses_and_decodes(protocol, compress):
    headers = {b"request-id": b"r-1", b"client_timeout": b"250", b"": b"", b"bin": b"\xff\x00"}
    data = apache_call(
        protocol,
        "echo_shape",
        apache.echo_shape_args(shape=apache_shape()),
        seqid=41,
        compress=compress,
        headers=headers,
    )
    reader = new_reader()
    [msg] = feed(reader, data)
    assert reader.wire == WIRES[protocol]
    assert (msg.name, msg.mtype, msg.seqid) == (b"echo_shape", 1, 41)
    frame = msg.header
    assert (frame.protocol, frame.seqid, frame.transforms) == (protocol, 41, (1,) if compress else ())
    assert frame.headers == {
        "request-id": "r-1",
        "client_timeout": "250",
        "": "",
        "bin": b"\xff\x00".decode("utf-8", "surrogateescape"),
    }
    assert client_timeout(frame.headers) == 0.25
    args = t.Showcase.echo_shape_args()
    make_codec(protocol, 64).decode(msg.body, args)
    assert same_shape(args.shape, shape())
    # The standalone parser agrees and hands back the inflated payload.
    parsed = parse_frame(data[4:], 16 * MB)
    assert parsed.headers == frame.headers and parsed.payload.endswith(bytes(msg.body))


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "zlib"])
@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_reply_frame_decodes_in_apache(protocol, compress):
    request = HeaderFrame(protocol, seqid=-7, flags=0x0001, transforms=(1,) if compress else ())
    # (thriftpy2's compact codec cannot write a negative seqid: the inner message's is positive.)
    reply = make_codec(protocol, 64).encode(
        b"echo_shape", REPLY, 77, t.Showcase.echo_shape_result(success=shape()), False
    )
    sent = {
        "server": "dracula",
        "ünïcode": "välue",
        "bin": b"\xff\x00".decode("utf-8", "surrogateescape"),
        "long": "x" * 300,
        "raw": b"\x01\x02",
    }
    data = encode_frame(reply, request, sent)
    (name, mtype, seqid), result, got = apache_reply(protocol, data, apache.echo_shape_result())
    assert (name, mtype, seqid) == ("echo_shape", REPLY, 77)
    assert same_shape(result.success, shape())
    assert got == {
        b"server": b"dracula",
        "ünïcode".encode(): "välue".encode(),
        b"bin": b"\xff\x00",
        b"long": b"x" * 300,
        b"raw": b"\x01\x02",
    }
    echoed = parse_frame(data[4:], 16 * MB)  # same seqid, flags and transforms as the request
    assert (echoed.seqid, echoed.flags, echoed.transforms, echoed.protocol) == (
        -7,
        0x0001,
        request.transforms,
        protocol,
    )
    assert len(data) == 4 + struct.unpack("!I", data[:4])[0]


def test_reply_without_headers_has_no_info_block():
    data = encode_frame(ping_payload(), HeaderFrame("binary", 3, 0), {})
    assert data[14:18] == b"\x00\x00\x00\x00"  # protocol 0, no transforms, padding
    (name, _, seqid), _, got = apache_reply("binary", data, apache.ping_result())
    assert (name, seqid, got) == ("ping", 5, {})


def test_reply_headers_too_large_for_the_header_are_refused():
    with pytest.raises(ValueError, match="do not fit"):
        encode_frame(ping_payload(), HeaderFrame("binary", 1, 0), {"k": "v" * 300_000})


@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_frames_split_at_every_byte_and_many_per_read(protocol):
    frames = [
        apache_call(
            protocol,
            "reverse",
            apache.reverse_args(data=b"abc" * n),
            seqid=n,
            compress=n % 2 == 1,
            headers={b"n": str(n).encode()},
        )
        for n in range(1, 4)
    ]
    data = b"".join(frames)
    for piece in (1, 7, len(data)):
        messages = feed(new_reader(), data, piece)
        assert [(m.name, m.seqid, m.header.headers) for m in messages] == [
            (b"reverse", n, {"n": str(n)}) for n in range(1, 4)
        ]


def test_persistent_headers_last_for_the_connection():
    reader = new_reader()
    first = ping_frame(extra=info(2, {b"tenant": b"a", b"k": b"p"}) + info(1, {b"k": b"own"}))
    [msg] = feed(reader, first)
    assert msg.header.headers == {"tenant": "a", "k": "own"}  # the call's own header wins
    assert msg.header.persistent == {"tenant": "a", "k": "p"}
    [msg] = feed(reader, ping_frame(extra=info(1, {b"x": b"1"})))
    assert msg.header.headers == {"tenant": "a", "k": "p", "x": "1"}
    assert msg.header.persistent == {}
    [msg] = feed(reader, ping_frame(extra=info(2, {b"tenant": b"b"})))
    assert msg.header.headers["tenant"] == "b"


def test_unknown_info_id_ends_the_info_blocks():
    extra = info(1, {b"a": b"1"}) + varint(9) + b"\xff\xff\xff" + info(1, {b"b": b"2"})
    [msg] = feed(new_reader(), ping_frame(extra=extra))
    assert msg.header.headers == {"a": "1"}


def test_plain_messages_carry_no_header():
    data = struct.pack("!I", len(ping_payload())) + ping_payload()
    [msg] = feed(new_reader(), data)
    assert msg.header is None


def test_detection_waits_for_the_protocol_id():
    frame = ping_frame("compact")
    for n in range(15):
        assert detect(frame[:n]) is None
    assert detect(frame[:15]) == THEADER_COMPACT
    assert str(THEADER_COMPACT) == "THeader compact"


@pytest.mark.parametrize(
    "value, seconds",
    [
        ("1500", 1.5),
        ("0", None),
        ("-5", None),
        ("1.5", None),
        ("", None),
        ("٣", None),
        (None, None),
        ("86400000", 86400.0),
        ("9" * 400, None),
        ("9" * 5000, None),
    ],
)
def test_client_timeout_header(value, seconds):
    headers = {} if value is None else {"client_timeout": value}
    assert client_timeout(headers) == seconds


# -- hostile frames -----------------------------------------------------------------------------


INNER_MESSAGE_REFUSALS = {"empty payload", "truncated message", "string past the payload", "zlib hides a lying list"}


@pytest.mark.parametrize("case", FIRST_FRAME_REFUSALS)
def test_first_frame_refused(case):
    data, reason = FIRST_FRAME_REFUSALS[case]
    error = refusal(new_reader(), data)
    assert reason in error.reason and error.fatal


def good_then(data: bytes) -> Reader:
    reader = new_reader()
    assert len(feed(reader, ping_frame())) == 1
    return reader


@pytest.mark.parametrize("case", FRAME_REFUSALS)
def test_bad_frame_refused_and_skipped(case):
    data, reason, app_type = FRAME_REFUSALS[case]
    reader = good_then(data)
    error = refusal(reader, data + ping_frame(seqid=9))
    assert reason in error.reason, error.reason
    assert not error.fatal and error.app_type == app_type
    _, _, seqid, _ = error.reply_to
    assert seqid == 5 and error.theader.seqid == 5 and error.theader.protocol == "binary"
    assert error.theader.transforms in ((), (1,))
    [msg] = drain(reader)  # the frame boundary held: the next frame is served
    assert msg.seqid == 9


def test_parse_frame_refuses_what_the_reader_refuses():
    for case, (data, reason, _) in FRAME_REFUSALS.items():
        if case in INNER_MESSAGE_REFUSALS:
            continue  # the scanner's business, not the frame's
        with pytest.raises(WireError, match=re.escape(reason)):
            parse_frame(data[4:], MB)


@pytest.mark.parametrize("case", LATER_FRAME_REFUSALS)
def test_later_frame_refusals(case):
    data, reason = LATER_FRAME_REFUSALS[case]
    reader = new_reader(max_size=MB)
    feed(reader, ping_frame())
    if case == "persistent headers pile up":
        feed(reader, data)
        data = ping_frame(extra=info(2, {b"k2": b"v" * (MAX_PERSISTENT_BYTES // 2)}))
    error = refusal(reader, data)
    assert reason in error.reason, error.reason
    # A plain frame has no sequence id to answer: it closes like the other header refusals.
    assert error.fatal
    if case == "unknown protocol id":
        assert error.app_type == INVALID_PROTOCOL


def bomb(prefix: bytes, inflated: int) -> bytes:
    """A zlib stream of `prefix` and `inflated` zero bytes (about 1/1000 of that on the wire)."""
    deflater = zlib.compressobj(9)
    chunk = bytes(MB)
    parts = [deflater.compress(prefix)] + [deflater.compress(chunk) for _ in range(inflated // MB)]
    return b"".join(parts) + deflater.flush()


def test_zlib_bomb_stops_at_the_size_limit():
    limit = MB
    reader = new_reader(max_size=limit)
    feed(reader, ping_frame())
    zlib_bomb = raw_frame(b"\x00\x01\x01", bomb(ping_payload()[:-1], 64 * MB))
    tracemalloc.start()
    try:
        error = refusal(reader, zlib_bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "inflates past %d bytes" % limit in error.reason and not error.fatal
    assert peak < 4 * limit + len(zlib_bomb)  # 64 MiB declared; a few times the limit used


def test_zlib_payload_at_the_limit_is_served():
    # A legitimate compressed message as large as the limit allows inflates and is served.
    data = b"z" * (MB - 100)
    frame = apache_call("binary", "reverse", apache.reverse_args(data=data), compress=True)
    assert len(frame) < 10_000
    [msg] = feed(new_reader(max_size=MB), frame)
    assert len(msg.body) > MB - 100
    with pytest.raises(WireError, match="inflates past"):
        feed(new_reader(max_size=MB - 100), frame)


def test_scanner_limits_apply_to_the_inflated_payload():
    words = apache.reverse_args(data=b"")
    frame = apache_call("binary", "reverse", words, compress=True)
    assert len(feed(new_reader(), frame)) == 1
    many = raw_frame(
        b"\x00\x01\x01",
        zlib.compress(
            struct.pack("!iI", -0x7FFEFFFF, 6)
            + b"unique"
            + struct.pack("!i", 5)
            + b"\x0f\x00\x01\x0b"
            + struct.pack("!i", 1000)
            + b"\x00\x00\x00\x00" * 1000
            + b"\x00"
        ),
    )
    reader = new_reader(max_container=100)
    feed(reader, ping_frame())
    error = refusal(reader, many)
    assert "container of 1000 elements (limit 100)" in error.reason and not error.fatal
