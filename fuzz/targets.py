"""What each fuzzer checks: one function per parser that meets untrusted bytes, each with an
oracle stronger than "did not crash" (docs/fuzzing.md says which).

The functions take the fuzzer's raw input and raise AssertionError (or let an unexpected
exception through) on a finding; atheris reports either as a crash and saves the input.
tests/test_fuzz_regressions.py replays saved findings through the same functions, so every
finding stays a test of the normal suite whether or not atheris is installed.

Inputs start with control bytes (limits, how the bytes are split), then the wire bytes:
  check_scan(protocol, data):  CTRL SPLIT message...
  check_theader(data):         CTRL frame-after-its-length...
  check_reader(data):          CTRL SPLIT stream...
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import thriftpy2
from thriftpy2.thrift import TMessageType

from dracula.server.dispatch import Dispatcher
from dracula.wire import binary_scan, compact_scan, reader as reader_module, theader
from dracula.wire.codec import make_codec
from dracula.wire.detect import BINARY, COMPACT
from dracula.wire.errors import WireError
from dracula.wire.reader import INITIAL_SIZE, Reader
from dracula.wire.theader_frame import MAX_PERSISTENT_BYTES

try:
    from dracula.wire import _cscan, _ctheader
except ImportError as e:  # the fuzzers exist to fuzz the compiled code: say so, do not fall back
    raise SystemExit(
        "fuzz: the compiled extensions are not built (%s): run fuzz/build_sanitized.sh "
        "or python setup.py build_ext --inplace" % e
    ) from None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IDL = os.path.join(ROOT, "idl")

# Every IDL type: idl/coverage (typedefs, enums, defaults, required/optional, nested containers of
# structs, binary, an extended service) served first, idl/showcase.thrift multiplexed beside it.
coverage_thrift = thriftpy2.load(os.path.join(IDL, "coverage", "coverage.thrift"), module_name="fuzz_coverage_thrift")
showcase_thrift = thriftpy2.load(os.path.join(IDL, "showcase.thrift"), module_name="fuzz_showcase_thrift")


class _AnyHandler:
    """A handler with every method: the Dispatcher only needs them to exist."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        def handler(*args: Any) -> None:
            return None

        return handler


DISPATCHER = Dispatcher(
    [
        ("CoverageService", coverage_thrift.CoverageService, _AnyHandler()),
        ("Showcase", showcase_thrift.Showcase, _AnyHandler()),
    ]
)
SPECS = DISPATCHER.arg_specs  # exactly what the server hands its scanners
ARGS = {name: method.args_cls for name, method in DISPATCHER.methods.items()}

PURE_SCANNERS = {BINARY: binary_scan.BinaryScanner, COMPACT: compact_scan.CompactScanner}
COMPILED_SCANNERS = {BINARY: _cscan.BinaryScanner, COMPACT: _cscan.CompactScanner}

# The limits a control byte picks from: the defaults, and small ones that real messages meet.
DEPTHS = (64, 8, 3, 1)
CONTAINERS = (10_000_000, 1000, 3, 0)
STRINGS = (2**31 - 1, 1000, 3, 0)
# Decoded values may be at most this much bigger, re-encoded, than the bytes they came from:
# IDL defaults fill in absent fields (a struct of Defaults is ~100 bytes from one STOP byte).
GROWTH, GROWTH_SLACK = 128, 4096
PIECES = (1, 1, 1, 2, 3, 4, 5, 7, 8, 13, 64, 700, 2100, 9000)  # irregular piece sizes


def limits_of(ctrl: int) -> tuple[int, int, int]:
    return DEPTHS[ctrl & 3], CONTAINERS[ctrl >> 2 & 3], STRINGS[ctrl >> 4 & 3]


def pieces_of(split: int, size: int) -> list[int]:
    """Where a message is cut into the pieces it arrives in: none for 0; every `split` bytes for
    1..127 (down to one byte at a time); for 128..255 pieces of irregular sizes, from 1 byte to
    more than a buffer's worth, drawn by a generator seeded with `split`."""
    if split < 128:
        return list(range(split, size, split)) if split else []
    draw = random.Random(split).choice
    cuts: list[int] = []
    at = draw(PIECES)
    while at < size:
        cuts.append(at)
        at += draw(PIECES)
    return cuts


# -- the scanners --------------------------------------------------------------------------------


def scan_outcome(scanner, buf, base: int, end: int, limit: int) -> tuple:
    try:
        n = scanner.scan(buf, base, end, limit)
    except WireError as e:
        return ("refused", e.reason)
    return ("scanned", n, scanner.header, scanner.pos, scanner.need)


def scan_calls(message: bytes, cuts: list[int], tail: bytes = b"") -> list[tuple]:
    """The Reader's calls for a message arriving in pieces (offsets move between calls; the
    next message's first bytes may follow the last piece: the limit lies past the bytes)."""
    calls = []
    for i, cut in enumerate([*cuts, len(message)]):
        base = i % 5
        buf = bytearray(base) + message[:cut] + (tail if cut == len(message) else b"")
        calls.append((buf, base, len(buf), base + len(message) + len(tail)))
    return calls


def run_scanner(cls, limits, specs, calls) -> list[tuple]:
    scanner = cls(*limits, specs)
    seen = []
    for call in calls:
        seen.append(scan_outcome(scanner, *call))
        if seen[-1][0] == "refused":
            break
    return seen


def check_scan(protocol: str, data: bytes) -> None:
    """The compact or binary scanner. Oracles:
    - the compiled scanner gives the pure one's verdict, header and resume state, after every
      call, whole and in pieces; the verdict in pieces is the verdict whole;
    - a message accepted against the IDL decodes with thriftpy2 (the server's codec) without
      error, within the limits (no container or string past them), and round-trips: re-encoded,
      it is accepted again and decodes to the same value (byte-identical re-encoding);
    - the decoded value costs memory in proportion to the bytes sent (GROWTH)."""
    if len(data) < 2:
        return
    ctrl, split, message = data[0], data[1], bytearray(data[2:])
    limits = limits_of(ctrl)
    specs = None if ctrl & 0x40 else SPECS
    # Unframed, the next message's first bytes may lie past this one's (the limit with them).
    tail = b"\x80\x01" if ctrl & 0x80 else b""
    whole = scan_calls(message, [], tail)
    pure = run_scanner(PURE_SCANNERS[protocol], limits, specs, whole)
    compiled = run_scanner(COMPILED_SCANNERS[protocol], limits, specs, whole)
    assert compiled == pure, ("whole", compiled, pure)
    cuts = pieces_of(split, len(message))
    if cuts:
        calls = scan_calls(message, cuts, tail)
        in_pieces = run_scanner(PURE_SCANNERS[protocol], limits, specs, calls)
        assert run_scanner(COMPILED_SCANNERS[protocol], limits, specs, calls) == in_pieces, "pieces"
        last, first = in_pieces[-1], pure[-1]
        if first[0] == "scanned" and first[1] >= 0:
            assert last[:3] == first[:3], ("split changes the verdict", last, first)
        else:  # whole, the message is refused or incomplete: so it must be in pieces
            assert last[0] == "refused" or last[1] < 0, ("split changes the verdict", last, first)
    verdict = pure[-1]
    if verdict[0] != "scanned" or verdict[1] < 0 or specs is None:
        return
    name, mtype, seqid, body_at = verdict[2]
    args_cls = ARGS.get(name)
    if args_cls is None or mtype not in (TMessageType.CALL, TMessageType.ONEWAY):
        return  # the server answers UNKNOWN_METHOD or drops it: nothing is decoded
    check_decode(protocol, limits, name, mtype, seqid, args_cls, bytes(whole[0][0][body_at : verdict[1]]), len(data))


def check_decode(protocol, limits, name, mtype, seqid, args_cls, body: bytes, sent: int) -> None:
    codec = make_codec(protocol, limits[0])
    args = args_cls()
    codec.decode(body, args)  # a WireError here is a finding: the scanner let it through
    within_limits(args, limits[1], limits[2])
    again = codec.encode(name, mtype, seqid, args, False)
    assert len(again) <= GROWTH * sent + GROWTH_SLACK, ("decoded value grew", len(again), sent)
    scanner = PURE_SCANNERS[protocol](64, 2**31 - 1, 2**31 - 1, SPECS)
    n = scanner.scan(bytearray(again), 0, len(again), len(again))
    assert n == len(again), ("the re-encoded message is not accepted", n, len(again))
    assert scanner.header is not None
    copy = args_cls()
    codec.decode(again[scanner.header[3] :], copy)
    assert codec.encode(name, mtype, seqid, copy, False) == again, "round trip changes the value"


def within_limits(value, max_container: int, max_string: int, depth: int = 0) -> None:
    """Every container and string the codec built from the wire is within the scanner's limits
    (a field equal to its IDL default may have come from the IDL, and is not checked)."""
    assert depth < 100
    if isinstance(value, (bytes, str)):
        size = len(wire_bytes(value) if isinstance(value, str) else value)
        assert size <= max_string, ("string past the limit", size, max_string)
    elif isinstance(value, (list, set, frozenset, tuple, dict)):
        assert len(value) <= max_container, ("container past the limit", len(value), max_container)
        items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        for item in items:
            within_limits(item, max_container, max_string, depth + 1)
    elif hasattr(value, "thrift_spec"):
        defaults = getattr(type(value), "default_spec", ())
        default_of = dict(defaults) if defaults else {}
        for _, spec in sorted(value.thrift_spec.items()):
            field = getattr(value, spec[1], None)
            if field is not None and field != default_of.get(spec[1]):
                within_limits(field, max_container, max_string, depth + 1)


def wire_bytes(text: str) -> bytes:
    """The bytes a decoded string came from (undecodable bytes kept as surrogate escapes)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def check_binary_scan(data: bytes) -> None:
    check_scan(BINARY, data)


def check_compact_scan(data: bytes) -> None:
    check_scan(COMPACT, data)


# -- THeader ---------------------------------------------------------------------------------------

PERSISTENTS = (None, {}, {"tenant": "z"}, {"k": "v" * (MAX_PERSISTENT_BYTES // 2)})
FRAME_FIELDS = ("protocol", "seqid", "flags", "transforms", "headers", "persistent", "payload_at", "timeout")
INFLATE_LIMIT = 4096


def frame_fields(frame) -> tuple | None:
    if frame is None:
        return None
    return tuple(
        list(value.items()) if isinstance(value, dict) else value
        for value in (getattr(frame, name) for name in FRAME_FIELDS)
    )


def parse_outcome(parse, buf, start: int, end: int, persistent: dict | None) -> tuple:
    kept = None if persistent is None else dict(persistent)
    try:
        frame = parse(buf, start, end, kept)
    except WireError as e:
        result: tuple = ("refused", e.reason, e.fatal, e.app_type, e.reply_to, frame_fields(e.theader))
        frame = None
    else:
        result = ("parsed", frame_fields(frame))
    return result, None if kept is None else list(kept.items()), frame


def encode_outcome(encode, payload, request, headers) -> tuple:
    try:
        return ("encoded", encode(payload, request, headers))
    except Exception as e:  # the same exception, whichever the pure code raises
        return ("raised", type(e), str(e))


def check_theader(data: bytes) -> None:
    """The THeader parser and encoder. Oracles:
    - the compiled parse_header gives the pure one's frame (every field, headers in order) or
      refusal (reason, fatal, app type, the frame it carries), and leaves the connection's
      persistent headers the same, for the frame alone in its buffer and among other bytes;
    - a zlib payload inflates to at most the size limit, or is refused;
    - round trip: the frame's payload and headers, encoded as a reply by both encoders, are
      byte-identical, parse back to the same protocol, sequence id, flags, transforms and
      headers, and the payload inflates back to itself."""
    if not data:
        return
    ctrl, frame = data[0], data[1:]
    persistent = PERSISTENTS[ctrl & 3]
    pure = parse_outcome(theader.pure_parse_header, frame, 0, len(frame), persistent)
    compiled = parse_outcome(_ctheader.parse_header, frame, 0, len(frame), persistent)
    assert compiled[:2] == pure[:2], (compiled[:2], pure[:2])
    if ctrl & 4:  # the same frame with other bytes around it, in a bytearray (the Reader's buffer)
        before, after = bytes(ctrl >> 3 & 7), b"\x0f\xff" * (ctrl >> 6)
        buf = bytearray(before + frame + after)
        args = (buf, len(before), len(before) + len(frame), persistent)
        assert parse_outcome(_ctheader.parse_header, *args)[:2] == parse_outcome(theader.pure_parse_header, *args)[:2]
    parsed = pure[2]
    if parsed is None:
        return
    try:
        payload = theader.untransform(parsed, frame[parsed.payload_at :], INFLATE_LIMIT)
        assert len(payload) <= INFLATE_LIMIT or not parsed.transforms
    except WireError as e:
        assert not e.fatal, e.reason
        # Not zlib (or past the limit): the encoder's round trip below runs on the raw bytes.
        payload = frame[parsed.payload_at :]
    headers = dict(parsed.headers)
    reply = encode_outcome(theader.pure_encode_frame, payload, parsed, headers)
    assert encode_outcome(_ctheader.encode_frame, payload, parsed, headers) == reply
    assert encode_outcome(_ctheader.encode_frame, payload, compiled[2], headers) == reply
    if reply[0] != "encoded":
        assert reply[1] is ValueError, reply  # only headers too big for THeader's header may fail
        return
    encoded = reply[1]
    back = parse_outcome(theader.pure_parse_header, encoded, 4, len(encoded), None)
    assert parse_outcome(_ctheader.parse_header, encoded, 4, len(encoded), None)[:2] == back[:2]
    again = back[2]
    assert again is not None, back
    assert (again.protocol, again.seqid, again.flags, again.transforms) == (
        parsed.protocol,
        parsed.seqid,
        parsed.flags,
        parsed.transforms,
    )
    assert list(again.headers.items()) == list(headers.items())
    assert theader.untransform(again, encoded[again.payload_at :], max(INFLATE_LIMIT, len(payload))) == payload


# -- the Reader ----------------------------------------------------------------------------------

MAX_SIZES = (64, 512, 4096, 1 << 20)


def stream_fields(frame) -> tuple | None:
    """A THeader frame's fields but where its payload lay in the receive buffer."""
    fields = frame_fields(frame)
    return None if fields is None else fields[:6] + fields[7:]


@contextmanager
def reader_implementation(kind: str):
    """The Reader with the pure or the compiled scanners and THeader parser (reader.py binds
    them at import, as compiled.py chose)."""
    names = ("BinaryScanner", "CompactScanner", "parse_header")
    chosen = {
        "pure": (binary_scan.BinaryScanner, compact_scan.CompactScanner, theader.pure_parse_header),
        "compiled": (_cscan.BinaryScanner, _cscan.CompactScanner, _ctheader.parse_header),
    }[kind]
    saved = [getattr(reader_module, name) for name in names]
    for name, value in zip(names, chosen, strict=True):
        setattr(reader_module, name, value)
    try:
        yield
    finally:
        for name, value in zip(names, saved, strict=True):
            setattr(reader_module, name, value)


def feed(stream: bytes, cuts: list[int], limits: tuple[int, int, int, int | None]) -> list[tuple]:
    """What a connection's Reader makes of `stream` arriving in pieces: each message (name, type,
    seqid, body, THeader fields) and each refusal, up to the first one that closes the
    connection. Checks the Reader's memory promises on the way."""
    reader = Reader(*limits, specs=SPECS)
    max_size = limits[0]
    seen: list[tuple] = []
    fed = 0
    for at, stop in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        while at < stop:
            room = reader.get_buffer()
            n = min(len(room), stop - at)
            room[:n] = stream[at : at + n]
            room.release()
            reader.received(n)
            at += n
            fed += n
            # Memory follows what the client sent, not what it declares.
            assert reader.buf is not None and len(reader.buf) <= max(INITIAL_SIZE, 4 * fed), (len(reader.buf), fed)
            while True:
                try:
                    message = reader.next_message()
                except WireError as e:
                    # Never silence: a refusal is answered (its header is known) or closes.
                    assert e.fatal or e.reply_to is not None, e.reason
                    seen.append(("refused", e.reason, e.fatal, e.reply_to, stream_fields(e.theader)))
                    if e.fatal:
                        return seen
                    continue
                if message is None:
                    break
                assert len(message.body) <= max_size, (len(message.body), max_size)
                seen.append(
                    (
                        "message",
                        message.name,
                        message.mtype,
                        message.seqid,
                        bytes(message.body),
                        stream_fields(message.header),
                    )
                )
    seen.append(("waiting", reader.buffered))
    return seen


def check_reader(data: bytes) -> None:
    """The Reader: transport detection, framing, unframed message ends, THeader frames. Oracles:
    - the same messages and refusals with the compiled and the pure-Python parsers;
    - the same whether the stream arrives whole or in pieces (down to a byte at a time), but
      for a refusal's wording;
    - no buffer past what the client sent (x4, doubling), no message body past max_frame_size
      (an inflated THeader payload included), and a refusal is never silent."""
    if len(data) < 2:
        return
    ctrl, split, stream = data[0], data[1], data[2:]
    limits = (MAX_SIZES[ctrl & 3], DEPTHS[ctrl >> 2 & 3], CONTAINERS[ctrl >> 4 & 3], None)
    with reader_implementation("pure"):
        pure = feed(stream, [], limits)
    with reader_implementation("compiled"):
        compiled = feed(stream, [], limits)
        assert compiled == pure, (compiled, pure)
        cuts = pieces_of(split, len(stream))
        if cuts:
            in_pieces = feed(stream, cuts, limits)
            assert without_reasons(in_pieces) == without_reasons(pure), (
                "split changes what the Reader reads",
                in_pieces,
                pure,
            )


def without_reasons(seen: list[tuple]) -> list[tuple]:
    """The Reader's outcomes less the refusals' wording, which may name what arrived so far: an
    unframed message past the limit is "longer than" the limit when all of it is there at once,
    a string that "runs past" it when it trickles in. Both close the connection alike."""
    return [outcome[:1] + outcome[2:] if outcome[0] == "refused" else outcome for outcome in seen]


TARGETS: dict[str, Callable[[bytes], None]] = {
    "binary_scan": check_binary_scan,
    "compact_scan": check_compact_scan,
    "theader": check_theader,
    "reader": check_reader,
}
