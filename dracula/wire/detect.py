"""Which transport and protocol a connection speaks, decided from its first bytes.

0x80 ...                      unframed strict binary
0x82 ...                      unframed compact
LEN(4) 0x80|0x82|0x00 ...     framed: binary strict, compact, or non-strict binary (its
                              4-byte name length starts with 0x00 for names under 16 MiB)
LEN(4) [A-Za-z_]              unframed non-strict binary: LEN was the method name's length
LEN(4) 0x0FFF ...             THeader (theader.py): its protocol id, the frame's 15th byte,
                              says binary (0) or compact (2)
METHOD SP ...                 an HTTP/1.x request line (GET, POST...): raised as HttpDetected,
                              which the backends hand to dracula/http/ (Thrift over HTTP)
anything else                 refused

An HTTP method read as a frame length is over 1 GiB, and its fifth byte (a space, '/' or a
letter) starts no frame: no Thrift client sends those bytes, so HTTP is told apart exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from dracula.typedefs import Buffer
from dracula.wire.errors import HttpDetected, WireError

BINARY = "binary"
COMPACT = "compact"
STRICT_BINARY_BYTE = 0x80
COMPACT_BYTE = 0x82


# The request methods of HTTP/1.1 (RFC 9110 section 9 and PATCH), each with the space after it.
HTTP_METHODS = (b"POST ", b"GET ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"TRACE ", b"CONNECT ")

# The most bytes detect() looks at: a THeader frame's protocol id is its 15th byte.
HEAD_BYTES = 15
THEADER_MIN_FRAME = 14  # magic, flags, sequence id, header size, and one word of header


@dataclass(frozen=True)
class Wire:
    framed: bool
    protocol: str  # BINARY or COMPACT
    theader: bool = False  # THeader frames (framed too): replies go back in a THeader frame

    @property
    def frames_replies(self) -> bool:
        """Replies get a plain frame length (a THeader reply is wrapped by theader.py instead)."""
        return self.framed and not self.theader

    def __str__(self) -> str:
        if self.theader:
            return "THeader %s" % self.protocol
        return "%s %s" % ("framed" if self.framed else "unframed", self.protocol)


UNFRAMED_BINARY = Wire(False, BINARY)
UNFRAMED_COMPACT = Wire(False, COMPACT)
FRAMED_BINARY = Wire(True, BINARY)
FRAMED_COMPACT = Wire(True, COMPACT)
THEADER_BINARY = Wire(True, BINARY, True)
THEADER_COMPACT = Wire(True, COMPACT, True)


def detect(head: Buffer) -> Wire | None:
    """The connection's Wire, or None until enough bytes have arrived (at most HEAD_BYTES)."""
    if not head:
        return None
    first = head[0]
    if first == STRICT_BINARY_BYTE:
        return UNFRAMED_BINARY
    if first == COMPACT_BYTE:
        return UNFRAMED_COMPACT
    if 0x41 <= first <= 0x5A:  # an upper-case letter: an HTTP method?
        http = _http_request(head)
        if http is None:
            return None
        if http:
            raise HttpDetected()
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
    if fifth == 0x0F:
        return _detect_theader(head)
    raise WireError("frame payload starts with 0x%02x: not binary or compact" % fifth)


def _http_request(head: Buffer) -> bool | None:
    """True when `head` starts with an HTTP method and a space; None while it is still a
    prefix of one (b"POS": wait for more bytes); False otherwise."""
    data = bytes(head[:8])
    if data.startswith(HTTP_METHODS):
        return True
    if any(method.startswith(data) for method in HTTP_METHODS):
        return None
    return False


def _detect_theader(head: Buffer) -> Wire | None:
    if len(head) < 6:
        return None
    if head[5] != 0xFF:
        raise WireError("frame payload starts with 0x0f%02x: not THeader's magic 0x0fff" % head[5])
    size = int.from_bytes(head[:4], "big")
    if size < THEADER_MIN_FRAME:
        # Refused now: waiting for a 15th byte that is not part of the frame could wait for ever.
        raise WireError("THeader frame of %d bytes cannot hold its header" % size)
    if len(head) < HEAD_BYTES:
        return None
    if head[12] == 0 and head[13] == 0:
        raise WireError("THeader header is empty: it has no protocol id")
    protocol_id = head[14]
    if protocol_id == 0:
        return THEADER_BINARY
    if protocol_id == 2:
        return THEADER_COMPACT
    raise WireError("THeader protocol id %d: only binary (0) and compact (2) are served" % protocol_id)
