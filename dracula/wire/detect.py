"""Which transport and protocol a connection speaks, decided from its first bytes.

  0x80 ...                      unframed strict binary
  0x82 ...                      unframed compact
  LEN(4) 0x80|0x82|0x00 ...     framed: binary strict, compact, or non-strict binary (its
                                4-byte name length starts with 0x00 for names under 16 MiB)
  LEN(4) [A-Za-z_]              unframed non-strict binary: LEN was the method name's length
  anything else                 refused
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import WireError

BINARY = "binary"
COMPACT = "compact"
STRICT_BINARY_BYTE = 0x80
COMPACT_BYTE = 0x82


@dataclass(frozen=True)
class Wire:
    framed: bool
    protocol: str  # BINARY or COMPACT

    def __str__(self) -> str:
        return "%s %s" % ("framed" if self.framed else "unframed", self.protocol)


UNFRAMED_BINARY = Wire(False, BINARY)
UNFRAMED_COMPACT = Wire(False, COMPACT)
FRAMED_BINARY = Wire(True, BINARY)
FRAMED_COMPACT = Wire(True, COMPACT)


def detect(head: bytes | bytearray | memoryview) -> Wire | None:
    """The connection's Wire, or None until enough bytes have arrived (at most 5)."""
    if not head:
        return None
    first = head[0]
    if first == STRICT_BINARY_BYTE:
        return UNFRAMED_BINARY
    if first == COMPACT_BYTE:
        return UNFRAMED_COMPACT
    if first & 0x80:
        raise WireError("first byte 0x%02x is neither a Thrift message nor a frame length" % first)
    if len(head) < 5:
        return None
    if int.from_bytes(head[:4], "big") == 0:
        raise WireError("zero-length frame")
    fifth = head[4]
    if fifth == STRICT_BINARY_BYTE or fifth == 0:
        return FRAMED_BINARY
    if fifth == COMPACT_BYTE:
        return FRAMED_COMPACT
    if fifth == 0x5F or 0x41 <= fifth <= 0x5A or 0x61 <= fifth <= 0x7A:
        # Non-strict binary without framing: a name length, then the name, which starts like
        # an identifier ('{' or '[' here is framed JSON, not ours).
        return UNFRAMED_BINARY
    raise WireError("frame payload starts with 0x%02x: not binary or compact" % fifth)
