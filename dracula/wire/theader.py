"""THeader frames (Apache Thrift doc/specs/HeaderFormat.md): one frame's header parsed from
hostile bytes, its payload inflated within the message size limit, and a reply frame encoded.

  LENGTH(4) | 0x0FFF(2) FLAGS(2) | SEQID(4) | HEADER SIZE / 4 (2) | header | payload

  header: protocol id (varint: 0 binary, 2 compact), transform count, transform ids (varints),
          info blocks (varint id; 1 KEYVALUE and 2 PKEYVALUE: a varint count of key/value
          pairs of varint-length strings), zero padding to a multiple of 4 bytes.

Every count and length is checked against the bytes of the header before it is used, so a
frame costs work in proportion to its size; the one transform served, zlib, stops inflating at
the message size limit. An unknown transform is refused (the spec says the server MUST answer
with an error); an unknown info id ends the info blocks (the spec says they are ignorable).
Persistent headers (PKEYVALUE, fbthrift's) hold for the rest of the connection.

parse_header and encode_frame, run once per call, have compiled twins (_ctheader.pyx) that compiled.py
chooses as it chooses the scanners; the pure-Python ones here stay the reference and the fallback
(pure_parse_header, pure_encode_frame; tests/test_theader_differential.py holds both to the same
results). The frame's layout constants and HeaderFrame live in theader_frame.py, shared by both.
"""

from __future__ import annotations

import struct
import zlib

from dracula.typedefs import Body, Buffer
from dracula.wire import compiled
from dracula.wire.errors import WireError
from dracula.wire.theader_frame import (
    CLIENT_TIMEOUT_HEADER,
    CLIENT_TIMEOUT_MAX_DIGITS,
    FIXED_SIZE,
    ID_OF_PROTOCOL,
    INFO_KEYVALUE,
    INFO_PKEYVALUE,
    INVALID_PROTOCOL,
    INVALID_TRANSFORM,
    MAGIC,
    MAX_HEADER_SIZE,
    MAX_PERSISTENT_BYTES,
    PROTOCOL_IDS,
    TRANSFORM_NAMES,
    ZLIB,
    HeaderFrame,
    HeaderPairs,
)

_fixed = struct.Struct("!HHiH")  # magic, flags, sequence id, header size / 4
_frame_head = struct.Struct("!IHHiH")  # the same, after the frame length


def parse_frame(frame: Body, max_size: int, persistent: dict[str, str] | None = None) -> HeaderFrame:
    """The whole frame after its 4-byte length, parsed, with `.payload` untransformed."""
    header = parse_header(frame, 0, len(frame), persistent)
    header.payload = untransform(header, frame[header.payload_at :], max_size)
    return header


def parse_header(buf: Buffer, start: int, end: int, persistent: dict[str, str] | None = None) -> HeaderFrame:
    """Parse the frame in buf[start:end] (after its length) up to its payload.

    `persistent` is the connection's persistent headers: this frame's are added to it. Raises
    WireError; when the fixed header was read, the error's `theader` is a HeaderFrame with
    no transforms and no headers, to wrap the refusal in (its protocol is None if unknown)."""
    if end - start < FIXED_SIZE:
        raise WireError(
            "THeader frame of %d bytes is shorter than its %d-byte fixed header" % (end - start, FIXED_SIZE),
            fatal=False,
        )
    magic, flags, seqid, words = _fixed.unpack_from(buf, start)
    if magic != MAGIC:
        raise WireError("frame starts with 0x%04x, not THeader's magic 0x0fff" % magic, fatal=False)
    pos = start + FIXED_SIZE
    header_end = pos + 4 * words
    if words == 1 and header_end <= end and buf[pos + 1] == 0 and buf[pos + 2] == 0:
        # The commonest frame: one protocol id byte, no transforms, no info headers.
        protocol = PROTOCOL_IDS.get(buf[pos])
        if protocol is not None:
            if not persistent:
                return HeaderFrame(protocol, seqid, flags, (), {}, {}, header_end)
            return HeaderFrame(protocol, seqid, flags, (), dict(persistent), {}, header_end, client_timeout(persistent))
    frame = HeaderFrame(None, seqid, flags)
    try:
        if header_end > end:
            raise WireError(
                "THeader header of %d bytes runs past its %d-byte frame" % (4 * words, end - start), fatal=False
            )
        if words == 0:
            raise WireError("THeader header is empty: it has no protocol id", fatal=False)
        protocol_id, pos = _varint(buf, pos, header_end, "protocol id")
        protocol = PROTOCOL_IDS.get(protocol_id)
        if protocol is None:
            # Nothing can be answered in a protocol not spoken here: the connection ends.
            raise WireError(
                "THeader protocol id %d: only binary (0) and compact (2) are served" % protocol_id,
                app_type=INVALID_PROTOCOL,
            )
        frame.protocol = protocol
        transforms, pos = _read_transforms(buf, pos, header_end)
        own, own_persistent = _read_info(buf, pos, header_end)
    except WireError as e:
        if e.fatal:
            raise
        raise e.at(None, theader=frame) from None
    if own_persistent and persistent is not None:
        _keep_persistent(persistent, own_persistent)
    if persistent:
        own = {**persistent, **own}  # the call's own header wins over a persistent one
    elif own_persistent:
        own = {**own_persistent, **own}
    frame.transforms = transforms
    frame.headers = own
    frame.persistent = own_persistent
    frame.payload_at = header_end
    frame.timeout = client_timeout(own) if own else None
    return frame


def untransform(header: HeaderFrame, payload: Body, max_size: int) -> Body:
    """The payload with the frame's transforms undone (last applied, first undone). Raises
    WireError when an inflated payload would pass max_size: inflating stops there."""
    for transform in reversed(header.transforms):
        if transform == ZLIB:
            payload = _inflate(payload, max_size)
    return payload


def encode_frame(payload: Buffer, request: HeaderFrame, headers: HeaderPairs | None = None) -> bytes:
    """The whole reply frame, its 4-byte length first, around `payload` (one unframed Thrift
    message in the request's protocol): the request's sequence id, flags and transforms, and
    `headers` (str or bytes keys and values) as one KEYVALUE block."""
    for transform in request.transforms:
        if transform == ZLIB:
            payload = zlib.compress(payload)
    head = bytearray()
    # A reply's frame has its protocol: reader._answer_in sets it where the frame's was unknown.
    _put_varint(head, ID_OF_PROTOCOL[request.protocol])  # type: ignore[index]
    _put_varint(head, len(request.transforms))
    for transform in request.transforms:
        _put_varint(head, transform)
    if headers:
        _put_varint(head, INFO_KEYVALUE)
        _put_varint(head, len(headers))
        for key, value in headers.items():
            _put_string(head, key)
            _put_string(head, value)
    head += bytes(-len(head) % 4)
    if len(head) > MAX_HEADER_SIZE:
        raise ValueError("reply headers of %d bytes do not fit THeader's %d-byte header" % (len(head), MAX_HEADER_SIZE))
    size = FIXED_SIZE + len(head) + len(payload)
    return b"".join((_frame_head.pack(size, MAGIC, request.flags, request.seqid, len(head) // 4), head, payload))


def request_frame(payload: Buffer, protocol: str, headers: HeaderPairs | None = None, seqid: int = 0) -> bytes:
    """A client's request frame, its 4-byte length first: `payload` (one unframed Thrift message
    in `protocol`, BINARY or COMPACT), no transforms, `headers` as one KEYVALUE block."""
    return encode_frame(payload, HeaderFrame(protocol, seqid, 0), headers)


def client_timeout(headers: dict[str, str]) -> float | None:
    """The call's `client_timeout` header in seconds; None when absent, malformed, not positive
    (fbthrift treats those as no timeout) or longer than CLIENT_TIMEOUT_MAX_DIGITS digits."""
    return milliseconds(headers.get(CLIENT_TIMEOUT_HEADER))


def milliseconds(value: str | None) -> float | None:
    """A timeout header's value (decimal milliseconds) in seconds, by client_timeout's rules
    (HTTP's X-Thrift-Client-Timeout follows them too)."""
    if value is None or len(value) > CLIENT_TIMEOUT_MAX_DIGITS or not value.isdigit() or not value.isascii():
        return None
    ms = int(value)
    return ms / 1000.0 if ms > 0 else None


def _read_transforms(buf: Buffer, pos: int, end: int) -> tuple[tuple[int, ...], int]:
    count, pos = _varint(buf, pos, end, "transform count")
    if count > end - pos:  # every transform id takes at least one byte
        raise WireError("THeader declares %d transforms in %d header bytes" % (count, end - pos), fatal=False)
    transforms = []
    for _ in range(count):
        transform, pos = _varint(buf, pos, end, "transform id")
        if transform != ZLIB:
            raise WireError(
                "THeader transform %d (%s) is not supported: only zlib (1) is"
                % (transform, TRANSFORM_NAMES.get(transform, "unknown")),
                fatal=False,
                app_type=INVALID_TRANSFORM,
            )
        if transform in transforms:  # no client repeats one; a repeated zlib multiplies work
            raise WireError("THeader transform %d listed twice" % transform, fatal=False, app_type=INVALID_TRANSFORM)
        transforms.append(transform)
    return tuple(transforms), pos


def _read_info(buf: Buffer, pos: int, end: int) -> tuple[dict[str, str], dict[str, str]]:
    """The KEYVALUE and PKEYVALUE headers; padding or an unknown info id ends the blocks."""
    headers: dict[str, str] = {}
    persistent: dict[str, str] = {}
    while pos < end:
        info, pos = _varint(buf, pos, end, "info id")
        if info == INFO_KEYVALUE:
            pos = _read_pairs(buf, pos, end, headers)
        elif info == INFO_PKEYVALUE:
            pos = _read_pairs(buf, pos, end, persistent)
        else:
            break
    return headers, persistent


def _read_pairs(buf: Buffer, pos: int, end: int, into: dict[str, str]) -> int:
    count, pos = _varint(buf, pos, end, "header count")
    if count > (end - pos) // 2:  # every pair takes at least two length bytes
        raise WireError("THeader declares %d headers in %d header bytes" % (count, end - pos), fatal=False)
    for _ in range(count):
        key, pos = _string(buf, pos, end)
        value, pos = _string(buf, pos, end)
        into[key] = value
    return pos


def _string(buf: Buffer, pos: int, end: int) -> tuple[str, int]:
    n = buf[pos] if pos < end else 0x80
    if n < 0x80:  # one-byte length: nearly every header
        pos += 1
    else:
        n, pos = _varint(buf, pos, end, "header string length")
    if n > end - pos:
        raise WireError(
            "THeader header string of %d bytes runs past the header (%d left)" % (n, end - pos), fatal=False
        )
    # surrogateescape: bytes that are not UTF-8 survive, unaltered, a round trip as str.
    return str(buf[pos : pos + n], "utf-8", "surrogateescape"), pos + n


def _varint(buf: Buffer, pos: int, end: int, what: str) -> tuple[int, int]:
    """An unsigned varint of at most 5 bytes (32 bits) that ends before `end`."""
    result = 0
    shift = 0
    stop = min(end, pos + 5)
    while pos < stop:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    if pos == end:
        raise WireError("THeader %s runs past the header" % what, fatal=False)
    raise WireError("THeader %s: varint longer than 5 bytes" % what, fatal=False)


def _keep_persistent(persistent: dict[str, str], new: dict[str, str]) -> None:
    persistent.update(new)
    size = sum(len(k) + len(v) for k, v in persistent.items())
    if size > MAX_PERSISTENT_BYTES:
        persistent.clear()
        raise WireError("persistent THeader headers of %d bytes (limit %d)" % (size, MAX_PERSISTENT_BYTES))


def _inflate(data: Body, max_size: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, max_size + 1)  # the bound caps memory and time alike
    except zlib.error as e:
        raise WireError("THeader zlib payload does not inflate: %s" % e, fatal=False) from None
    if len(out) > max_size:
        raise WireError("THeader zlib payload inflates past %d bytes (limit)" % max_size, fatal=False)
    if not inflater.eof:
        raise WireError("THeader zlib payload is truncated", fatal=False)
    if inflater.unused_data:
        raise WireError("%d bytes after the THeader zlib stream" % len(inflater.unused_data), fatal=False)
    return out


def _put_varint(out: bytearray, n: int) -> None:
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)


def _put_string(out: bytearray, s: str | Buffer) -> None:
    data = s.encode("utf-8", "surrogateescape") if isinstance(s, str) else bytes(s)
    _put_varint(out, len(data))
    out += data


# The compiled twins (dracula/wire/_ctheader.pyx) replace the two per-call functions unless
# compiled.py chose the pure-Python code; parse_frame and request_frame call whichever is chosen.
pure_parse_header, pure_encode_frame = parse_header, encode_frame
if compiled.THEADER_IMPLEMENTATION == "compiled" and compiled.compiled_parse_header and compiled.compiled_encode_frame:
    parse_header, encode_frame = compiled.compiled_parse_header, compiled.compiled_encode_frame
