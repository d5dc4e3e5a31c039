"""THeader frames built by hand, byte by byte, for the wire and end-to-end THeader tests."""

from __future__ import annotations

import struct
import zlib

from dracula.wire.theader import INVALID_TRANSFORM, MAX_PERSISTENT_BYTES

PROTOCOL_IDS = {"binary": 0, "compact": 2}


def varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def vstr(s: bytes) -> bytes:
    return varint(len(s)) + s


def info(block_id: int, pairs: dict) -> bytes:
    return varint(block_id) + varint(len(pairs)) + b"".join(vstr(k) + vstr(v) for k, v in pairs.items())


def raw_frame(header: bytes, payload: bytes, seqid=5, flags=0, pad=True, words=None) -> bytes:
    """A THeader frame around `header` (the bytes after the header-size field) and `payload`."""
    if pad:
        header += bytes(-len(header) % 4)
    words = len(header) // 4 if words is None else words
    body = struct.pack("!HHiH", 0x0FFF, flags, seqid, words) + header + payload
    return struct.pack("!I", len(body)) + body


def ping_payload(protocol="binary", seqid=5) -> bytes:
    if protocol == "binary":
        return struct.pack("!iI", -0x7FFEFFFF, 4) + b"ping" + struct.pack("!i", seqid) + b"\x00"
    return b"\x82\x21" + varint(seqid) + vstr(b"ping") + b"\x00"


def ping_frame(protocol="binary", transforms=(), extra=b"", seqid=5) -> bytes:
    payload = ping_payload(protocol, seqid)
    for transform in transforms:
        if transform == 1:
            payload = zlib.compress(payload)
    header = varint(PROTOCOL_IDS[protocol]) + varint(len(transforms)) + b"".join(varint(x) for x in transforms) + extra
    return raw_frame(header, payload, seqid=seqid)


# -- hostile frames: (bytes, a piece of the refusal's reason) --------------------------------

MB = 1024 * 1024
PROTOCOL_ERROR = 7
BIG = varint(2**31)


def reverse_without_stop(claimed: int, data: bytes) -> bytes:
    """reverse(data) as a binary message whose string claims `claimed` bytes and whose
    arguments struct has no STOP."""
    return struct.pack("!iI", -0x7FFEFFFF, 7) + b"reverse" + struct.pack("!ibhi", 5, 11, 1, claimed) + data


# (frame, words in the reason); each refused on the connection's first frame.
FIRST_FRAME_REFUSALS = {
    "theader magic half": (b"\x00\x00\x00\x10\x0f\x00" + bytes(14), "magic"),
    "frame shorter than its header": (b"\x00\x00\x00\x0a\x0f\xff" + bytes(8), "cannot hold"),
    "empty header": (raw_frame(b"", ping_payload(), words=0), "empty"),
    "json protocol id": (raw_frame(b"\x01\x00", ping_payload()), "protocol id 1"),
    "varint protocol id": (raw_frame(b"\x80\x01\x00", ping_payload()), "protocol id 128"),
}


# (frame, words in the reason, TApplicationException type): refused, frame skipped, the client
# told with its sequence id.
FRAME_REFUSALS = {
    "header size past the frame": (raw_frame(b"\x00\x00", b"", words=200), "runs past", PROTOCOL_ERROR),
    "snappy transform": (raw_frame(b"\x00\x01\x03", ping_payload()), "transform 3 (snappy)", INVALID_TRANSFORM),
    "zstd transform": (raw_frame(b"\x00\x01\x05", ping_payload()), "transform 5 (zstd)", INVALID_TRANSFORM),
    "unknown transform": (raw_frame(b"\x00\x01\xff\x7f", ping_payload()), "unknown", INVALID_TRANSFORM),
    "zlib twice": (
        raw_frame(b"\x00\x02\x01\x01", zlib.compress(zlib.compress(ping_payload()))),
        "twice",
        INVALID_TRANSFORM,
    ),
    "lying transform count": (raw_frame(b"\x00" + BIG, ping_payload()), "transforms in", PROTOCOL_ERROR),
    "lying header count": (raw_frame(b"\x00\x00\x01" + BIG, ping_payload()), "headers in", PROTOCOL_ERROR),
    "lying key length": (
        raw_frame(b"\x00\x00\x01\x01" + BIG + b"k", ping_payload()),
        "runs past the header",
        PROTOCOL_ERROR,
    ),
    "lying value length": (
        raw_frame(b"\x00\x00\x01\x01\x01k\x7f", ping_payload()),
        "runs past the header",
        PROTOCOL_ERROR,
    ),
    "varint past the header": (
        raw_frame(b"\x00\x00\x01\x81\x82\x83", ping_payload(), pad=False),
        "runs past the header",
        PROTOCOL_ERROR,
    ),
    "varint too long": (
        raw_frame(b"\x00\x00\x01" + b"\xff" * 7 + b"\x01", ping_payload()),
        "longer than 5",
        PROTOCOL_ERROR,
    ),
    "zlib garbage": (raw_frame(b"\x00\x01\x01", b"not zlib at all"), "does not inflate", PROTOCOL_ERROR),
    "zlib truncated": (
        raw_frame(b"\x00\x01\x01", zlib.compress(ping_payload() * 50)[:-9]),
        "truncated",
        PROTOCOL_ERROR,
    ),
    "bytes after zlib": (
        raw_frame(b"\x00\x01\x01", zlib.compress(ping_payload()) + b"junk"),
        "after the",
        PROTOCOL_ERROR,
    ),
    "empty payload": (raw_frame(b"\x00\x00", b""), "overruns", PROTOCOL_ERROR),
    "truncated message": (raw_frame(b"\x00\x00", reverse_without_stop(3, b"abc")), "overruns", PROTOCOL_ERROR),
    "string past the payload": (
        raw_frame(b"\x00\x00", reverse_without_stop(10, b"abc")),
        "3 left in the message",
        PROTOCOL_ERROR,
    ),
    "zlib hides a lying list": (
        raw_frame(
            b"\x00\x01\x01",
            zlib.compress(
                struct.pack("!iI", -0x7FFEFFFF, 5)
                + b"index"
                + struct.pack("!i", 5)
                + b"\x0f\x00\x01\x0c"
                + struct.pack("!i", 30_000_000)
                + b"\x00"
            ),
        ),
        "elements",
        PROTOCOL_ERROR,
    ),
}


LATER_FRAME_REFUSALS = {
    "unknown protocol id": (raw_frame(b"\x01\x00", ping_payload()), "protocol id 1"),
    "protocol switch": (ping_frame("compact"), "compact on a THeader binary"),
    "a plain frame": (struct.pack("!I", len(ping_payload())) + ping_payload(), "magic"),
    "frame over the limit": (struct.pack("!I", 2 * MB) + b"\x0f\xff", "limit"),
    "persistent headers pile up": (ping_frame(extra=info(2, {b"k": b"v" * (MAX_PERSISTENT_BYTES // 2)})), "persistent"),
}
