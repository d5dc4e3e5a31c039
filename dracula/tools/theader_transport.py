"""`dracula call --transport header`: thriftpy2's transport interface over a socket, speaking
THeader (dracula/wire/theader.py's frames). thriftpy2 has no THeader transport, and its Cython
binary protocol only writes to its own transports: the pure-Python protocols run on this one.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from thriftpy2.protocol.binary import TBinaryProtocolFactory
from thriftpy2.protocol.compact import TCompactProtocolFactory
from thriftpy2.transport import TSocket, TTransportException

from dracula.typedefs import Buffer, ThriftProtocol
from dracula.wire.detect import BINARY, COMPACT
from dracula.wire.theader import parse_frame, request_frame

PROTOCOLS = {"binary": (TBinaryProtocolFactory, BINARY), "compact": (TCompactProtocolFactory, COMPACT)}
MAX_REPLY_SIZE = 256 * 1024 * 1024  # a reply frame larger than this is not read


class THeaderClientTransport:
    """What a protocol writes goes out, on flush(), as one THeader frame with `headers`; what it
    reads comes from the payload of the next reply frame, whose headers are then in
    `response_headers` (str -> str). A read past that payload is an end of file."""

    def __init__(self, sock: TSocket, protocol: str, headers: Mapping[str, str] | None = None) -> None:
        self.sock = sock
        self.protocol = PROTOCOLS[protocol][1]
        self.headers = headers or {}
        self.response_headers: dict[str, str] = {}
        self._out = bytearray()
        self._in: bytes | None = None  # the reply payload, once read
        self._pos = 0

    def is_open(self) -> bool:
        return bool(self.sock.is_open())

    def open(self) -> None:
        self.sock.open()

    def close(self) -> None:
        self.sock.close()

    def write(self, data: Buffer) -> None:
        self._out += data

    def flush(self) -> None:
        frame = request_frame(bytes(self._out), self.protocol, self.headers)
        self._out.clear()
        self._in = None
        self.sock.write(frame)
        self.sock.flush()

    def read(self, n: int) -> bytes:
        if self._in is None:
            self._read_reply()
        assert self._in is not None  # _read_reply() set it
        chunk = self._in[self._pos : self._pos + n]
        self._pos += len(chunk)
        return chunk

    def _read_reply(self) -> None:
        (size,) = struct.unpack("!I", self._read_exactly(4))
        if size > MAX_REPLY_SIZE:
            raise TTransportException(
                TTransportException.UNKNOWN, "reply frame of %d bytes (limit %d)" % (size, MAX_REPLY_SIZE)
            )
        frame = parse_frame(self._read_exactly(size), MAX_REPLY_SIZE)  # WireError: not THeader
        assert frame.payload is not None  # parse_frame() sets it
        self._in, self._pos = bytes(frame.payload), 0
        self.response_headers = frame.headers

    def _read_exactly(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            data += self.sock.read(n - len(data))  # raises END_OF_FILE when the server closes
        return bytes(data)


def header_protocol(sock: TSocket, protocol: str, headers: Mapping[str, str]) -> ThriftProtocol:
    """A thriftpy2 protocol over a THeader transport on `sock` (not yet opened)."""
    factory = PROTOCOLS[protocol][0]
    return factory().get_protocol(THeaderClientTransport(sock, protocol, headers))
