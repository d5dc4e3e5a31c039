"""Every refusal the server has, one table row each, walked over protocol x transport x backend.

Issue #15: a refusal always finishes. Where the message header was read the client gets a
TApplicationException with its seqid (an unframed stream that lost its sync then closes; a
framed one goes on with the next frame; a THeader frame's refusal is answered inside a THeader
frame with its sequence id, and goes on where the frame boundary holds); where it was not, the
connection closes. Within a second, never in silence. The one "dracula.refused" line for that
peer says which of the two happened, and the server goes on serving everyone else.

Every row is a hand-built message or THeader frame; `test_every_wire_refusal_has_a_row` keeps
the table in step with the WireError reasons in dracula/wire/*.py.
"""

from __future__ import annotations

import io
import logging
import os
import re
import socket
import struct
import time
import zlib
from collections.abc import Callable
from typing import NamedTuple

import pytest
import thriftpy2
from thriftpy2.thrift import TApplicationException, TMessageType, TType

from dracula.wire.theader import INVALID_TRANSFORM, MAX_PERSISTENT_BYTES, parse_frame
from examples.showcase import ShowcaseHandler

from .helpers import ROOT, free_port, running, showcase_thrift, wait_until
from .refusal_log import refusal_lines, refusals_of
from .status_client import scrape, value
from .theader_frames import info, raw_frame
from .wire_client import (
    BytesReader,
    Reply,
    SockTransport,
    assert_served,
    client,
    closed_by_server,
    connect,
    frame,
    make_client,
    peer_of,
    read_reply,
)

SEQID = 666  # the refused message's
NEXT = 667  # a good call sent after it on the same connection, where the connection goes on
WITHIN = 1.0  # seconds the outcome (reply or close) may take
LOG_WAIT = 5.0  # the server logs before it answers or closes: this only absorbs a slow handler

PROTOCOL_ERROR = TApplicationException.PROTOCOL_ERROR
UNKNOWN_METHOD = TApplicationException.UNKNOWN_METHOD
INVALID_MESSAGE_TYPE = TApplicationException.INVALID_MESSAGE_TYPE
# As the refusal line names them. dracula takes the names from thriftpy2's TApplicationException,
# which stops at 7; dracula.wire.errors.AppError adds Apache's and fbthrift's later ones.
APP_ERROR_NAMES = {
    PROTOCOL_ERROR: "PROTOCOL_ERROR",
    UNKNOWN_METHOD: "UNKNOWN_METHOD",
    INVALID_MESSAGE_TYPE: "INVALID_MESSAGE_TYPE",
    INVALID_TRANSFORM: "INVALID_TRANSFORM",
}

Strict = thriftpy2.load_fp(
    io.StringIO(
        "service Strict {\n    i32 twice(1: required i32 x, 2: optional i32 y),\n    i64 add(1: i64 a, 2: i64 b),\n}\n"
    ),
    module_name="refusals_strict_thrift",
).Strict


class StrictHandler:
    def twice(self, x, y):
        return 2 * x

    def add(self, a, b):
        return a + b


# -- outcomes -------------------------------------------------------------------------------------

CLOSE = "close"  # no header read: closed, no byte written; "(closing the connection)"
ANSWER = "answer"  # refused by dispatch: a TApplicationException, the connection goes on
SCAN = "scan"  # refused after the header: PROTOCOL_ERROR; framed (THeader too) goes on, unframed then closes


def expected_suffix(outcome, framed, app_error):
    if outcome == CLOSE:
        return "(closing the connection)"
    if outcome == SCAN and not framed:
        return "(answered PROTOCOL_ERROR, closing the connection)"
    return "(answered %s)" % APP_ERROR_NAMES[app_error]


# -- building messages by hand --------------------------------------------------------------------

BINARY, COMPACT = "binary", "compact"
STOP = b"\x00"
LIST, MAP, STRUCT, STRING, I32 = TType.LIST, TType.MAP, TType.STRUCT, TType.STRING, TType.I32
VERSION_1 = -0x7FFF0000  # 0x80010000 as a signed i32


def i32(v):
    return struct.pack("!i", v)


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(ttype, fid):
    return struct.pack("!bh", ttype, fid)


def header(protocol, name, mtype=TMessageType.CALL, seqid=SEQID):
    name = name.encode()
    if protocol == BINARY:
        return struct.pack("!iI", VERSION_1 | mtype, len(name)) + name + i32(seqid)
    return bytes([0x82, mtype << 5 | 1]) + varint(seqid) + varint(len(name)) + name


def call(name, binary=None, compact=None, mtype=TMessageType.CALL):
    """A builder: the message `name` with the body given for each protocol."""
    return lambda protocol: header(protocol, name, mtype) + (binary if protocol == BINARY else compact)


def raw(data):
    """A builder of bytes that are no message at all (the same for either protocol)."""
    return lambda protocol: data


def good_call(protocol, seqid=NEXT):
    """add(1, 2), well formed."""
    if protocol == BINARY:
        return (
            header(BINARY, "add", seqid=seqid)
            + field(TType.I64, 1)
            + struct.pack("!q", 1)
            + field(TType.I64, 2)
            + struct.pack("!q", 2)
            + STOP
        )
    return header(COMPACT, "add", seqid=seqid) + b"\x16\x02\x16\x04" + STOP  # zigzag 1, 2


def other(protocol):
    return COMPACT if protocol == BINARY else BINARY


# THeader (transport "theader"): a row's bytes are whole frames; the good calls around it and the
# replies travel in THeader frames too, in the row's protocol (the frame's protocol id).
THEADER = ("theader",)
PROTOCOL_ID = {BINARY: b"\x00", COMPACT: b"\x02"}
BIG = varint(2**31)  # a 5-byte varint: a count or a length no header can hold


def theader_frame(protocol, message, seqid=SEQID):
    """`message` in a THeader frame: no transforms, no headers."""
    return raw_frame(PROTOCOL_ID[protocol] + b"\x00", message, seqid=seqid)


def refused_add(protocol):
    """add(1, 2) with the refused message's seqid: what a THeader row's frame carries when its
    header is what gets refused."""
    return good_call(protocol, SEQID)


def th(after_id=b"\x00", payload=refused_add, **options):
    """A builder: a THeader frame (sequence id SEQID) whose header is the protocol id, then
    `after_id` (transforms, info blocks), around `payload(protocol)`; `options` go to raw_frame."""
    return lambda protocol: raw_frame(PROTOCOL_ID[protocol] + after_id, payload(protocol), seqid=SEQID, **options)


def zipped(data):
    """A payload builder: `data(protocol)` through zlib."""
    return lambda protocol: zlib.compress(data(protocol))


def THRow(name, reason, build, outcome, later=True, **options):
    """A THeader row: `build` gives whole frames; `later`: refused as the connection's second frame."""
    return Row(name, reason, build, outcome, transports=THEADER, message=False, after_good_call=later, **options)


def on_the_wire(transport, protocol, seqid):
    """The good add() call with `seqid` as `transport` carries it."""
    message = good_call(protocol, seqid)
    if transport == "theader":
        return theader_frame(protocol, message, seqid)
    return frame(message) if transport == "framed" else message


# Message bodies over small limits (each row's `config`).
I32_FIELDS = {BINARY: (field(I32, 100) + i32(0)) * 50, COMPACT: b"\x15\x00" * 150}  # ~300 bytes, no STOP


# -- the table ------------------------------------------------------------------------------------


class Row(NamedTuple):
    name: str
    reason: object  # the server's format string, or {protocol: format}; matched with %-specs as wildcards
    build: Callable  # protocol -> the refused bytes (a message is framed by the test where framed)
    outcome: str
    protocols: tuple = (BINARY, COMPACT)
    transports: tuple = ("unframed", "framed")
    config: dict = {}  # noqa: RUF012 - a NamedTuple field's default, only read
    app_error: int = PROTOCOL_ERROR
    message: bool = True  # False: `build` gives the wire bytes as they are, framing included
    after_good_call: bool = False  # refused as the connection's second message
    service: str = "Showcase"
    bug: str = ""  # the server gets this row wrong today: the test is an xfail saying how


ROWS = [
    # -- detection (dracula/wire/detect.py): what the connection speaks, from its first 5 bytes
    Row(
        "first-byte-not-thrift",
        "first byte 0x%02x is neither a Thrift message nor a frame length",
        raw(b"\x90\x00\x00\x00\x05hello"),
        CLOSE,
        protocols=("-",),
        transports=("unframed",),
        message=False,
    ),
    Row(
        "zero-length-frame",
        "zero-length frame",
        raw(b"\x00\x00\x00\x00\x80\x01"),
        CLOSE,
        protocols=("-",),
        transports=("framed",),
        message=False,
    ),
    Row(
        "frame-payload-not-thrift",
        "frame payload starts with 0x%02x: not binary or compact",
        raw(frame(b'{"method": "add"}')),
        CLOSE,
        protocols=("-",),
        transports=("framed",),
        message=False,
    ),
    # -- headers that cannot be read: no seqid to answer (issue #15's three, and their kin)
    Row(
        "compact-version-31",
        "bad compact protocol version %d",
        lambda p: bytes([0x82, 1 << 5 | 31]) + varint(SEQID) + varint(3) + b"add" + STOP,
        CLOSE,
        protocols=(COMPACT,),
    ),
    Row(
        "compact-seqid-varint-of-100-bytes",
        "varint longer than %d bytes",
        lambda p: b"\x82\x21" + b"\xff" * 99 + b"\x01" + varint(3) + b"add" + STOP,
        CLOSE,
        protocols=(COMPACT,),
    ),
    Row(
        "compact-seqid-varint-of-33-bits",
        "sequence id varint wider than 32 bits",
        lambda p: b"\x82\x21" + b"\xff\xff\xff\xff\x1f" + varint(3) + b"add" + STOP,
        CLOSE,
        protocols=(COMPACT,),
    ),
    Row(
        "binary-version-word-0x8002",
        "bad binary protocol version 0x%08x",
        lambda p: struct.pack("!iI", -0x7FFE0000 | 1, 3) + b"add" + i32(SEQID) + STOP,
        CLOSE,
        protocols=(BINARY,),
    ),
    Row(
        "method-name-length-impossible",
        "method name of %d bytes",
        lambda p: (
            struct.pack("!ii", VERSION_1 | 1, -1) + i32(SEQID) + STOP
            if p == BINARY
            else b"\x82\x21" + varint(SEQID) + varint(2**31) + b"add" + STOP
        ),
        CLOSE,
    ),
    Row(
        "protocol-switched-mid-connection",
        {BINARY: "bad binary protocol version 0x%08x", COMPACT: "bad compact protocol id 0x%02x"},
        lambda p: good_call(other(p), SEQID),
        CLOSE,
        after_good_call=True,
    ),
    # -- frames and message size (dracula/wire/reader.py)
    Row(
        "frame-over-limit",
        "frame of %d bytes (limit %d)",
        call("add", I32_FIELDS[BINARY] + STOP, I32_FIELDS[COMPACT] + STOP),
        CLOSE,
        transports=("framed",),
        config=dict(max_frame_size=256),
    ),
    Row(
        "later-frame-of-negative-length",
        "frame of %d bytes (limit %d)",
        raw(i32(-5) + b"\x80\x01"),
        CLOSE,
        transports=("framed",),
        message=False,
        after_good_call=True,
    ),
    Row(
        "message-over-limit",
        "message of %d bytes (limit %d)",
        call("add", I32_FIELDS[BINARY] + STOP, I32_FIELDS[COMPACT] + STOP),
        SCAN,
        transports=("unframed",),
        config=dict(max_frame_size=256),
    ),
    Row(
        "message-still-growing-past-limit",
        "message longer than %d bytes",
        call("add", I32_FIELDS[BINARY], I32_FIELDS[COMPACT]),
        SCAN,
        transports=("unframed",),
        config=dict(max_frame_size=256),
    ),
    Row(
        "message-overruns-its-frame",
        "message overruns its %d-byte frame",
        call("add", field(I32, 1) + i32(1), b"\x15\x02"),
        SCAN,
        transports=("framed",),
    ),
    # -- declared sizes, types and nesting (binary_scan.py, compact_scan.py)
    Row(
        "string-over-limit",
        "string of %d bytes (limit %d, %d left in the message)",
        call("lookup", field(STRING, 1) + i32(101) + b"k" * 101 + STOP, b"\x18" + varint(101) + b"k" * 101 + STOP),
        SCAN,
        config=dict(max_string_size=100),
    ),
    Row(
        "string-past-the-message",
        "string of %d bytes (limit %d, %d left in the message)",
        call("lookup", field(STRING, 1) + i32(100_000) + b"hello" + STOP, b"\x18" + varint(100_000) + b"hello" + STOP),
        SCAN,
        config=dict(max_frame_size=4096),
    ),
    Row(
        "string-negative-length",
        "string of %d bytes (limit %d, %d left in the message)",
        call("lookup", field(STRING, 1) + i32(-1) + b"hello" + STOP),
        SCAN,
        protocols=(BINARY,),
    ),
    Row(
        "container-over-limit",
        "container of %d elements (limit %d)",
        call("unique", field(LIST, 1) + bytes([STRING]) + i32(11) + STOP * 3, b"\x19\xf8" + varint(11) + STOP * 3),
        SCAN,
        config=dict(max_container_size=10),
    ),
    Row(
        "container-negative-size",
        "container of %d elements (limit %d)",
        call("unique", field(LIST, 1) + bytes([STRING]) + i32(-1) + STOP),
        SCAN,
        protocols=(BINARY,),
    ),
    Row(
        "elements-past-the-message",
        "%d elements do not fit the message",
        call("unique", field(LIST, 1) + bytes([STRING]) + i32(1000) + STOP * 3, b"\x19\xf8" + varint(2000) + STOP * 3),
        SCAN,
        config=dict(max_frame_size=1024),
    ),
    Row(
        "unknown-field-type",
        {BINARY: "unknown type code %d", COMPACT: "unknown compact type code %d"},
        call("lookup", field(7, 1) + STOP * 9, b"\x1d" + STOP * 9),
        SCAN,
    ),
    Row(
        "unknown-element-type",
        {BINARY: "unknown element type code %d", COMPACT: "unknown compact element type code %d"},
        call("unique", field(LIST, 1) + bytes([9]) + i32(3) + STOP * 12, b"\x19\x3e" + STOP * 9),
        SCAN,
    ),
    Row(
        "structs-nested-past-limit",
        "nesting deeper than %d",
        call("echo_shape", field(STRUCT, 1) * 8 + STOP * 9, b"\x1c" * 8 + STOP * 9),
        SCAN,
        config=dict(max_depth=4),
    ),
    Row(
        "containers-nested-past-limit",
        "nesting deeper than %d",
        call(
            "nested",
            field(LIST, 1) + (bytes([LIST]) + i32(1)) * 8 + bytes([I32]) + i32(0) + STOP,
            b"\x19" + b"\x19" * 8 + b"\x05" + STOP,
        ),
        SCAN,
        config=dict(max_depth=4),
    ),
    Row(
        "varint-of-12-bytes-in-the-body",
        "varint longer than %d bytes",
        call("lookup", compact=b"\x18" + b"\xff" * 12 + b"\x01" + STOP),
        SCAN,
        protocols=(COMPACT,),
    ),
    Row(
        "i64-varint-of-70-bits",
        "varint wider than the %d bits of its integer",
        call("add", compact=b"\x16" + b"\xff" * 9 + b"\x7f" + STOP),
        SCAN,
        protocols=(COMPACT,),
    ),
    # -- wire types the codec would reinterpret (spec_guard.py)
    Row(
        "list-element-type-not-the-idls",
        "list declares element type %d where the IDL has %d",
        call("index", compact=b"\x19\x18" + varint(1) + b"a" + STOP),
        SCAN,
        protocols=(COMPACT,),
    ),
    Row(
        "map-of-strings-where-the-idl-has-none",
        "map declares string entries where the IDL has types %d/%d",
        call(
            "nested",
            field(MAP, 1) + bytes([STRING, MAP]) + i32(1) + i32(1) + b"k" + bytes([I32, I32]) + i32(0) + STOP,
            b"\x1b" + varint(1) + b"\x8b" + varint(1) + b"k" + b"\x00" + STOP,
        ),
        SCAN,
    ),
    # -- dispatch (dracula/server/calls.py): well-formed messages it will not run
    Row("unknown-method", "unknown method %s", call("no_such_method", STOP, STOP), ANSWER, app_error=UNKNOWN_METHOD),
    Row(
        "not-a-call",
        "message type %d is not a call",
        call("add", STOP, STOP, mtype=TMessageType.REPLY),
        ANSWER,
        app_error=INVALID_MESSAGE_TYPE,
    ),
    Row(
        "required-argument-missing",
        "required argument %s of %s is missing",
        call("twice", field(I32, 2) + i32(9) + STOP, b"\x25\x12" + STOP),
        ANSWER,
        service="Strict",
    ),
    # -- THeader: the first frame, as detect.py sees it (protocol "-", none read: the good calls are binary)
    THRow(
        "theader-magic-half",
        "frame payload starts with 0x0f%02x: not THeader's magic 0x0fff",
        raw(b"\x00\x00\x00\x10\x0f\x00" + bytes(14)),
        CLOSE,
        protocols=("-",),
        later=False,
    ),
    THRow(
        "theader-frame-cannot-hold-its-header",
        "THeader frame of %d bytes cannot hold its header",
        raw(b"\x00\x00\x00\x0a\x0f\xff" + bytes(8)),
        CLOSE,
        protocols=("-",),
        later=False,
    ),
    THRow(
        "theader-first-header-empty",
        "THeader header is empty: it has no protocol id",
        raw(raw_frame(b"", refused_add(BINARY), words=0)),
        CLOSE,
        protocols=("-",),
        later=False,
    ),
    THRow(
        "theader-first-protocol-id-json",
        "THeader protocol id %d: only binary (0) and compact (2) are served",
        raw(raw_frame(b"\x01\x00", refused_add(BINARY))),
        CLOSE,
        protocols=("-",),
        later=False,
    ),
    THRow(
        "theader-first-frame-snappy",
        "THeader transform %d (%s) is not supported: only zlib (1) is",
        th(b"\x01\x03"),
        SCAN,
        app_error=INVALID_TRANSFORM,
        later=False,
    ),
    # -- THeader: later frames (theader.py's header parser; reader.py's _next_theader and _unwrap).
    # A frame whose sequence id was read is answered in a THeader frame and the next one served.
    THRow(
        "theader-frame-over-limit",
        "frame of %d bytes (limit %d)",
        raw(i32(2048) + b"\x0f\xff"),
        CLOSE,
        config=dict(max_frame_size=1024),
    ),
    THRow(
        "theader-frame-shorter-than-fixed-header",
        "THeader frame of %d bytes is shorter than its %d-byte fixed header",
        raw(i32(5) + b"\x0f\xff\x00\x00\x00"),
        CLOSE,
    ),
    THRow(
        "theader-plain-frame",
        "frame starts with 0x%04x, not THeader's magic 0x0fff",
        lambda p: frame(refused_add(p)),
        CLOSE,
    ),
    THRow(
        "theader-header-past-its-frame",
        "THeader header of %d bytes runs past its %d-byte frame",
        th(payload=lambda p: b"", words=200),
        SCAN,
    ),
    THRow(
        "theader-header-empty",
        "THeader header is empty: it has no protocol id",
        lambda p: raw_frame(b"", refused_add(p), seqid=SEQID, words=0),
        SCAN,
    ),
    THRow(
        "theader-protocol-id-json",
        "THeader protocol id %d: only binary (0) and compact (2) are served",
        lambda p: raw_frame(b"\x01\x00", refused_add(p), seqid=SEQID),
        CLOSE,
    ),  # no protocol to answer in
    THRow(
        "theader-protocol-switched",
        "THeader frame in %s on a %s connection",
        lambda p: theader_frame(other(p), refused_add(other(p))),
        CLOSE,
    ),
    THRow("theader-transform-count-lying", "THeader declares %d transforms in %d header bytes", th(BIG), SCAN),
    THRow(
        "theader-zlib-twice",
        "THeader transform %d listed twice",
        th(b"\x02\x01\x01", zipped(zipped(refused_add))),
        SCAN,
        app_error=INVALID_TRANSFORM,
    ),
    THRow("theader-header-count-lying", "THeader declares %d headers in %d header bytes", th(b"\x00\x01" + BIG), SCAN),
    THRow(
        "theader-header-string-past-the-header",
        "THeader header string of %d bytes runs past the header (%d left)",
        th(b"\x00\x01\x01" + BIG + b"k"),
        SCAN,
    ),
    THRow(
        "theader-varint-past-the-header",
        "THeader %s runs past the header",  # 1 word: id, 0, KEYVALUE, 0x81
        th(b"\x00\x01\x81\x82\x83", pad=False),
        SCAN,
    ),
    THRow(
        "theader-varint-of-8-bytes",
        "THeader %s: varint longer than 5 bytes",
        th(b"\x00\x01" + b"\xff" * 7 + b"\x01"),
        SCAN,
    ),
    THRow(
        "theader-persistent-headers-over-limit",
        "persistent THeader headers of %d bytes (limit %d)",
        th(b"\x00" + info(2, {b"k": b"v" * MAX_PERSISTENT_BYTES})),
        CLOSE,
    ),
    THRow(
        "theader-zlib-garbage",
        "THeader zlib payload does not inflate: %s",
        th(b"\x01\x01", lambda p: b"not zlib at all"),
        SCAN,
    ),
    THRow(
        "theader-zlib-inflates-past-limit",
        "THeader zlib payload inflates past %d bytes (limit)",
        th(b"\x01\x01", zipped(lambda p: refused_add(p) + bytes(4096))),
        SCAN,
        config=dict(max_frame_size=1024),
    ),
    THRow(
        "theader-zlib-truncated",
        "THeader zlib payload is truncated",
        th(b"\x01\x01", lambda p: zlib.compress(refused_add(p) * 50)[:-9]),
        SCAN,
    ),
    THRow(
        "theader-bytes-after-zlib",
        "%d bytes after the THeader zlib stream",
        th(b"\x01\x01", lambda p: zlib.compress(refused_add(p)) + b"junk"),
        SCAN,
    ),
    THRow(
        "theader-message-overruns-its-payload",
        "message overruns its %d-byte THeader payload",
        th(payload=call("add", field(I32, 1) + i32(1), b"\x15\x02")),
        SCAN,
    ),
    THRow(
        "theader-string-past-the-payload",
        "string of %d bytes (limit %d, %d left in the message)",
        th(
            payload=call(
                "lookup", field(STRING, 1) + i32(100) + b"hello" + STOP, b"\x18" + varint(100) + b"hello" + STOP
            )
        ),
        SCAN,
    ),
]

# WireError reasons no bytes can reach, and why (a fuzz of 670,000 mutated calls found none).
UNREACHABLE = {
    "arguments do not decode: %s": "the scanners vet every size and type the codecs read (spec_guard.py "
    "covers where they read differently); kept as a guard",
    "no codec for %s": "detection only ever yields binary or compact",
}

SERVICES = {"Showcase": (showcase_thrift.Showcase, ShowcaseHandler), "Strict": (Strict, StrictHandler)}


def cases():
    for row in ROWS:
        for protocol in row.protocols:
            for transport in row.transports:
                marks = pytest.mark.xfail(strict=True, reason=row.bug) if row.bug else ()
                yield pytest.param(
                    row, protocol, transport, id="%s-%s-%s" % (row.name, protocol, transport), marks=marks
                )


# -- plumbing -------------------------------------------------------------------------------------


def reason_of(row, protocol):
    return row.reason[protocol] if isinstance(row.reason, dict) else row.reason


def format_regex(fmt: str) -> str:
    """A server message format as a regex: every %-spec matches any value."""
    return re.sub(r"%0?\d*[dsx]", ".+?", re.escape(fmt))


def send(sock, data):
    """Send what the server lets us: it may close while the refused bytes are still arriving."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def read_theader_reply(trans) -> Reply:
    """The next reply off `trans` in a THeader frame, whose sequence id must be the reply's."""
    (size,) = struct.unpack("!i", trans.read(4))
    header = parse_frame(trans.read(size), 1 << 24)
    payload = BytesReader(header.payload)
    reply = read_reply(payload)
    assert not payload.left(), "bytes left over in the THeader reply frame"
    assert header.seqid == reply.seqid, "THeader frame %d around a reply with seqid %d" % (header.seqid, reply.seqid)
    return reply


def read_within(trans, transport, what):
    """The next reply off `trans`, which must arrive within WITHIN seconds."""
    try:
        if transport == "theader":
            return read_theader_reply(trans)
        return read_reply(trans, transport == "framed")
    except TimeoutError:
        pytest.fail("no %s within %gs: the refusal ended in silence" % (what, WITHIN))
    except (EOFError, ConnectionResetError) as e:
        pytest.fail("the server closed instead of sending the %s: %r" % (what, e))


# -- the walk -------------------------------------------------------------------------------------


def see_outcome(sock, row, protocol, transport):
    """Send the row's bytes on `sock` and check what the server does with them, in time."""
    trans = SockTransport(sock)
    sock.settimeout(WITHIN)
    framed = transport != "unframed"
    if row.after_good_call:
        sock.sendall(on_the_wire(transport, protocol, 1))
        assert read_within(trans, transport, "reply to the first, good, call") == ("reply", "add", 1, 3)
    data = row.build(protocol)
    if row.message and framed:
        data = frame(data)
    goes_on = row.outcome == ANSWER or (row.outcome == SCAN and framed)
    if goes_on:  # the next call rides in the same write: it must be answered after the refusal
        data += on_the_wire(transport, protocol, NEXT)
    received = trans.received
    started = time.monotonic()
    send(sock, data)
    if row.outcome == CLOSE:
        assert closed_by_server(sock, WITHIN), "neither a reply nor a close within %gs" % WITHIN
        assert trans.received == received, "bytes written back before the close"
    else:
        kind, _, seqid, exc = read_within(trans, transport, "TApplicationException")
        assert (kind, seqid) == ("exception", SEQID), (kind, seqid, exc)
        assert exc.type == row.app_error, exc
        if goes_on:
            assert read_within(trans, transport, "reply to the next call") == ("reply", "add", NEXT, 3)
        else:
            assert closed_by_server(sock, WITHIN), "connection left open after an unframed refusal"
    assert time.monotonic() - started < WITHIN + 0.5, "the outcome took %.2fs" % (time.monotonic() - started)


@pytest.mark.parametrize("row, protocol, transport", list(cases()))
def test_refusal_finishes(row, protocol, transport, backend, refused_log):
    service, handler = SERVICES[row.service]
    if protocol == "-":  # no protocol is known yet: the follow-up calls use binary
        protocol = BINARY
    with running(service, handler(), backend=backend, **row.config) as server:
        port = server.port
        bystander = make_client(port, service=service)  # connected and served before, during, after
        try:
            assert bystander.add(1, 2) == 3
            with connect(port, timeout=WITHIN, nodelay=True) as sock:
                peer = peer_of(sock)
                see_outcome(sock, row, protocol, transport)
            # Exactly one line for that peer: the reason, then what followed.
            wait_until(lambda: refusals_of(refused_log, peer), LOG_WAIT)
            lines = refusals_of(refused_log, peer)
            assert len(lines) == 1, "refusal lines for %s: %r" % (peer, refusal_lines(refused_log))
            suffix = expected_suffix(row.outcome, transport != "unframed", row.app_error)
            pattern = "refused %s: %s %s" % (re.escape(peer), format_regex(reason_of(row, protocol)), re.escape(suffix))
            assert re.fullmatch(pattern, lines[0]), "%r does not say %r" % (
                lines[0],
                reason_of(row, protocol) + " " + suffix,
            )
            assert bystander.add(2, 3) == 5
        finally:
            bystander.close()
        if row.service == "Showcase":
            assert_served(port)
        else:
            with client(port, service=service) as fresh:
                assert fresh.twice(21) == 42
        assert len(refusal_lines(refused_log)) == 1, refusal_lines(refused_log)


def test_every_wire_refusal_has_a_row():
    """Each distinct WireError reason in dracula/wire/*.py is a row of the table (or listed as
    unreachable with the reason why): a new refusal cannot slip in untested."""
    wire = os.path.join(ROOT, "dracula", "wire")
    reasons = set()
    for name in os.listdir(wire):
        if name.endswith(".py"):
            with open(os.path.join(wire, name)) as f:
                reasons.update(re.findall(r'WireError\(\s*"([^"]+)"', f.read()))
    in_table = set()
    for row in ROWS:
        in_table.update(row.reason.values() if isinstance(row.reason, dict) else [row.reason])
    assert len(reasons) >= 40, reasons  # the pattern still finds them (45 today, 21 of them THeader's)
    missing = reasons - in_table - set(UNREACHABLE)
    assert not missing, "WireError reasons without a row: %s" % sorted(missing)
    assert not set(UNREACHABLE) - reasons, "listed as unreachable but gone: %s" % sorted(set(UNREACHABLE) - reasons)


# -- connection table: per-peer limit, eviction ---------------------------------------------------


def connect_from(port, source_host):
    """A connection to the server from `source_host` (any 127.x address is this machine)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.bind((source_host, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def served_once(sock, seqid):
    """One add() answered on `sock`."""
    sock.sendall(good_call(BINARY, seqid))
    assert read_reply(SockTransport(sock)) == ("reply", "add", seqid, 3)


def test_per_peer_limit_caps_one_address(backend, refused_log):
    with running(showcase_thrift.Showcase, ShowcaseHandler(), backend=backend, max_connections_per_peer=2) as server:
        port = server.port
        first, second = connect_from(port, "127.0.0.1"), connect_from(port, "127.0.0.1")
        try:
            served_once(first, 1)
            served_once(second, 2)
            with connect_from(port, "127.0.0.1") as third:
                assert closed_by_server(third, 5), "a third connection from 127.0.0.1 was not closed"
                peer = peer_of(third)
            wait_until(lambda: refusals_of(refused_log, peer), LOG_WAIT)
            lines = refusals_of(refused_log, peer)
            assert len(lines) == 1 and "2 connections from 127.0.0.1 already open (per-peer limit)" in lines[0], (
                refusal_lines(refused_log)
            )
            with connect_from(port, "127.0.0.2") as elsewhere:  # another address has room of its own
                served_once(elsewhere, 3)
            served_once(second, 4)

            first.close()  # room again for 127.0.0.1, once the server has seen the close

            def one_more_served():
                with connect_from(port, "127.0.0.1") as sock:
                    try:
                        served_once(sock, 5)
                        return True
                    except (EOFError, ConnectionResetError, BrokenPipeError):
                        return False  # refused: the close had not arrived yet

            assert wait_until(one_more_served, 10, 0.05), "127.0.0.1 not let in after one of its connections closed"
        finally:
            first.close()
            second.close()


def test_full_table_evicts_an_idle_connection_and_counts_it(backend, refused_log):
    refused_log.set_level(logging.WARNING, logger="dracula.evicted")
    cap = 3
    metrics_port = free_port()
    with running(
        showcase_thrift.Showcase, ShowcaseHandler(), backend=backend, max_connections=cap, metrics_port=metrics_port
    ) as server:
        port = server.port
        idle = [connect(port) for _ in range(cap)]
        try:
            for i, sock in enumerate(idle):
                served_once(sock, i + 1)  # counted by the server; idle from now on, the first the longest
            assert value(scrape(metrics_port), "dracula_evicted_connections_total") == 0
            with connect(port) as newcomer:
                served_once(newcomer, 10)
                assert closed_by_server(idle[0], 5), "the longest-idle connection was not closed"
                assert wait_until(lambda: value(scrape(metrics_port), "dracula_evicted_connections_total") == 1, 5), (
                    value(scrape(metrics_port), "dracula_evicted_connections_total")
                )
                assert value(scrape(metrics_port), "dracula_connections") == cap
                for i, sock in enumerate(idle[1:]):
                    served_once(sock, 20 + i)  # the others were left alone
            assert refusal_lines(refused_log) == []
            assert len([r for r in refused_log.records if r.name == "dracula.evicted"]) == 1
        finally:
            for sock in idle:
                sock.close()
