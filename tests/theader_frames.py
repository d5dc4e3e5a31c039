"""THeader frames built by hand, byte by byte, for the wire and end-to-end THeader tests."""
from __future__ import annotations

import struct
import zlib

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
    header = varint(PROTOCOL_IDS[protocol]) + varint(len(transforms)) + \
        b"".join(varint(x) for x in transforms) + extra
    return raw_frame(header, payload, seqid=seqid)
