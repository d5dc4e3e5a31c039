"""Decode arguments and encode replies with thriftpy2's codec, never a hand-written one.

Only bytes the scanner has vetted reach `decode`, and the codec reads them through a transport
that fails at their end. A codec is used by one thread at a time (the reactor shares one across its
connections; the thread backend has one per connection), so its buffers are reused per call.
"""

from __future__ import annotations

import struct
from typing import Protocol

from thriftpy2.protocol.compact import TCompactProtocol
from thriftpy2.protocol.cybin import TCyBinaryProtocol  # type: ignore[attr-defined]  # Cython, no stub
from thriftpy2.transport.buffered import TCyBufferedTransport
from thriftpy2.transport.memory import TCyMemoryBuffer, TMemoryBuffer  # pure Python, unlike transport's

from dracula.typedefs import Body, ThriftStruct
from dracula.wire.detect import BINARY, COMPACT
from dracula.wire.errors import WireError


class Codec(Protocol):
    """What a call uses of its connection's codec (binary or compact)."""

    protocol: str  # detect.BINARY or detect.COMPACT

    def decode(self, body: Body, args: ThriftStruct) -> None: ...
    def encode(self, name: bytes, mtype: int, seqid: int, payload: ThriftStruct, framed: bool) -> bytes: ...


_head = struct.Struct("!iI")
_i32 = struct.Struct("!i")
_frame = struct.Struct("!I")
VERSION_1 = -0x7FFF0000  # 0x80010000 as a signed i32

MAX_CACHED_HEADS = 4096
# A codec buffer that grew past this for one large message is replaced, not kept for ever.
KEEP_BUFFER_BELOW = 1024 * 1024


class _BodySource:
    """The file-like object the decode transport reads one message body from."""

    __slots__ = ("data", "pos")

    def __init__(self) -> None:
        self.reset(b"")

    def reset(self, data: Body) -> None:
        self.data = data
        self.pos = 0

    def read(self, n: int) -> Body:
        pos = self.pos
        self.pos = pos + n
        return self.data[pos : pos + n]


class BinaryCodec:
    protocol = BINARY

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        # message type -> method name -> encoded header up to the seqid (no tuple key per call)
        self._heads: dict[int, dict[bytes, bytes]] = {}
        self._new_buffers()

    def _new_buffers(self) -> None:
        self._source = _BodySource()
        self._in = TCyBufferedTransport(self._source)
        self._iprot = TCyBinaryProtocol(self._in, max_depth=self.max_depth)
        self._out = TCyMemoryBuffer()
        self._oprot = TCyBinaryProtocol(self._out, max_depth=self.max_depth)

    def decode(self, body: Body, args: ThriftStruct) -> None:
        """Fill the arguments struct `args` from the scanned `body`.

        The scanner vetted the body against the wire types, but the codec reads by the IDL's
        types and reinterprets some wire types (a map entry sent as a string is read as the
        declared type), so the bytes it reads are not always the ones vetted. It therefore reads
        through the buffered transport, which fails at the end of the body, not the unchecked
        memory buffer, which hands out heap memory past it."""
        self._source.reset(body)
        self._in.clean()
        try:
            self._iprot.read_struct(args)
        except Exception as e:
            raise WireError("arguments do not decode: %s" % (e,), fatal=False) from e
        finally:
            if len(body) > KEEP_BUFFER_BELOW:
                self._new_buffers()

    def encode_body(self, payload: ThriftStruct) -> bytes:
        """The struct `payload` alone, encoded: what follows a message's header (the client
        lays out the rest itself, its heads computed once per method)."""
        out = self._out
        self._oprot.write_struct(payload)
        body: bytes = out.getvalue()
        out.clean()
        if len(body) > KEEP_BUFFER_BELOW:
            self._new_buffers()
        return body

    def encode(self, name: bytes, mtype: int, seqid: int, payload: ThriftStruct, framed: bool) -> bytes:
        """The whole reply message, framed if the request was. Raises what the codec raises
        for a payload that does not match its spec."""
        out = self._out  # clean: emptied after every encode (write_struct empties it on failure)
        self._oprot.write_struct(payload)
        body: bytes = out.getvalue()
        out.clean()
        heads = self._heads.get(mtype)
        if heads is None:
            heads = self._heads[mtype] = {}
        head = heads.get(name)
        if head is None:
            head = _head.pack(VERSION_1 | mtype, len(name)) + name
            if len(heads) < MAX_CACHED_HEADS:  # names from clients must not grow it
                heads[name] = head
        if len(body) > KEEP_BUFFER_BELOW:
            self._new_buffers()
        if framed:
            return b"".join((_frame.pack(len(head) + 4 + len(body)), head, _i32.pack(seqid), body))
        return b"".join((head, _i32.pack(seqid), body))


class CompactCodec:
    """thriftpy2's compact protocol is pure Python: a fresh protocol per message (it keeps
    field-id state) over the pure-Python memory buffer, whose reads are bounded by the bytes
    present (the Cython buffer would malloc a declared size first)."""

    protocol = COMPACT

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth  # enforced by the scanner; the Python codec recurses freely

    def decode(self, body: Body, args: ThriftStruct) -> None:
        try:
            TCompactProtocol(TMemoryBuffer(bytes(body))).read_struct(args)
        except Exception as e:
            raise WireError("arguments do not decode: %s" % (e,), fatal=False) from e

    def encode(self, name: bytes, mtype: int, seqid: int, payload: ThriftStruct, framed: bool) -> bytes:
        out = TMemoryBuffer()
        proto = TCompactProtocol(out)
        proto.write_message_begin(name, mtype, seqid)
        proto.write_struct(payload)
        data: bytes = out.getvalue()
        if framed:
            return _frame.pack(len(data)) + data
        return data


def make_codec(protocol: str, max_depth: int) -> Codec:
    if protocol == BINARY:
        return BinaryCodec(max_depth)
    if protocol == COMPACT:
        return CompactCodec(max_depth)
    raise WireError("no codec for %s" % protocol)
