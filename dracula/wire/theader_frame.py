"""A THeader frame's layout (Apache Thrift doc/specs/HeaderFormat.md) and what one frame said:
shared by theader.py (the pure-Python parser and encoder) and _ctheader.pyx (their compiled twins).
"""

from __future__ import annotations

from collections.abc import Mapping

from dracula.typedefs import Body
from dracula.wire.detect import BINARY, COMPACT
from dracula.wire.errors import AppError

MAGIC = 0x0FFF
FIXED_SIZE = 10  # magic, flags, sequence id, header size: the frame's bytes before its header
MAX_HEADER_SIZE = 0xFFFF * 4  # the header size field counts 4-byte words in 16 bits

PROTOCOL_IDS = {0: BINARY, 2: COMPACT}
ID_OF_PROTOCOL = {BINARY: 0, COMPACT: 2}

ZLIB = 0x01
TRANSFORM_NAMES = {1: "zlib", 2: "hmac", 3: "snappy", 4: "qlz", 5: "zstd"}

INFO_PADDING = 0x00
INFO_KEYVALUE = 0x01
INFO_PKEYVALUE = 0x02

# Headers a reply or request frame carries: str keys and values (a handler's response_headers), or bytes.
HeaderPairs = Mapping[str, str] | Mapping[bytes, bytes]

# A client can add persistent headers in every frame; this caps what one connection keeps.
MAX_PERSISTENT_BYTES = 64 * 1024

# fbthrift's header: the client's timeout for the call, in milliseconds as decimal digits; more
# digits than this (past 30,000 years) set no deadline rather than overflow a float.
CLIENT_TIMEOUT_HEADER = "client_timeout"
CLIENT_TIMEOUT_MAX_DIGITS = 15

# A reply header saying the connection is going: the client (Envoy's thrift_proxy, dracula's
# client) stops using it after this reply, so the server can close it with no request under way.
DRAIN_HEADER = ":drain"

# THeader's own refusals (errors.AppError holds every TApplicationException type).
INVALID_TRANSFORM = AppError.INVALID_TRANSFORM
INVALID_PROTOCOL = AppError.INVALID_PROTOCOL


class HeaderFrame:
    """What one THeader frame said besides its payload.

    protocol: BINARY or COMPACT (detect.py's names); seqid, flags: echoed in the reply;
    transforms: transform ids as listed on the wire (the reply applies the same ones);
    headers: the call's headers, str -> str: the connection's persistent headers overlaid by this
    frame's KEYVALUE headers (as fbthrift presents them); persistent: the PKEYVALUE headers this
    frame carried; payload_at: where the payload starts in the buffer parse_header read;
    timeout: the `client_timeout` header in seconds (None: absent, or not a usable number;
    theader.client_timeout); payload: the untransformed payload, set by parse_frame only.
    """

    __slots__ = (
        "protocol",
        "seqid",
        "flags",
        "transforms",
        "headers",
        "persistent",
        "payload_at",
        "timeout",
        "payload",
    )

    def __init__(
        self,
        protocol: str | None,
        seqid: int,
        flags: int,
        transforms: tuple[int, ...] = (),
        headers: dict[str, str] | None = None,
        persistent: dict[str, str] | None = None,
        payload_at: int = 0,
        timeout: float | None = None,
    ) -> None:
        self.protocol = protocol
        self.seqid = seqid
        self.flags = flags
        self.transforms = transforms
        self.headers = {} if headers is None else headers
        self.persistent = {} if persistent is None else persistent
        self.payload_at = payload_at
        self.timeout = timeout
        self.payload: Body | None = None

    def __repr__(self) -> str:
        return "HeaderFrame(%s, seqid=%d, flags=0x%x, transforms=%r, headers=%r)" % (
            self.protocol,
            self.seqid,
            self.flags,
            self.transforms,
            self.headers,
        )
