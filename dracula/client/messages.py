"""A call's request bytes, and its reply split out of a connection's bytes, vetted, decoded.

Encoding and decoding are thriftpy2's codecs through dracula/wire/codec.py; framing is
dracula/wire/theader.py's for THeader. No reply byte reaches a codec before the compiled scanner
(dracula/wire/compiled.py) has walked it against the method's result spec, exactly as the server
vets requests: a lying length or garbage fails the call in time and memory proportional to the
bytes that arrived, never a heap read or a huge allocation. A reply must also be the call's:
same sequence id, method name, and a REPLY or EXCEPTION message.
"""

from __future__ import annotations

import struct
from typing import Any

from thriftpy2.thrift import TApplicationException

from dracula.client.errors import TIMEOUT, BadReply, CallTimeout
from dracula.wire.codec import VERSION_1, BinaryCodec, CompactCodec
from dracula.wire.compiled import BinaryScanner, CompactScanner, Scanner
from dracula.wire.detect import BINARY, COMPACT
from dracula.wire.errors import WireError
from dracula.wire.theader import parse_header, request_frame, untransform
from dracula.wire.theader_frame import FIXED_SIZE, ID_OF_PROTOCOL, MAGIC

CALL, REPLY, EXCEPTION, ONEWAY = 1, 2, 3, 4
HEADER, FRAMED, BUFFERED = "header", "framed", "buffered"
TRANSPORTS = (HEADER, FRAMED, BUFFERED)
PROTOCOLS = {"binary": BINARY, "compact": COMPACT}
DRAIN_HEADER = ":drain"
MAX_DEPTH = 64
_length = struct.Struct("!I")
_binary_head = struct.Struct("!iI")
_i32 = struct.Struct("!i")
_plain_head = struct.Struct("!IHHiH")  # a THeader frame's length, magic, flags, seqid, header words
_PLAIN_SIZE = FIXED_SIZE + 4  # and its one word of header, in the frame's length
_APP_SPEC = TApplicationException.thrift_spec


class Method:
    """What one service method needs on the client, worked out once per client rather than per
    call: its names (as sent, and as a reply may carry them), argument and result classes, the
    message type of its requests, the result's spec (what the reply scanner vets against) and
    which of the result's fields are declared exceptions."""

    __slots__ = (
        "name",
        "wire_name",
        "plain_name",
        "args_cls",
        "result_cls",
        "oneway",
        "mtype",
        "arg_names",
        "nargs",
        "reply_spec",
        "has_success",
        "binary_head",
    )

    def __init__(self, service: Any, name: str, service_name: str | None) -> None:
        self.name = name
        self.wire_name = ("%s:%s" % (service_name, name) if service_name else name).encode()
        self.plain_name = name.encode()  # a multiplexed server may answer with the bare name
        self.args_cls = getattr(service, name + "_args")
        self.result_cls = getattr(service, name + "_result", None)
        self.oneway = self.result_cls is None or bool(getattr(self.result_cls, "oneway", False))
        self.mtype = ONEWAY if self.oneway else CALL
        # A binary request's bytes before its seqid, as BinaryCodec.encode lays them out.
        self.binary_head = _binary_head.pack(VERSION_1 | self.mtype, len(self.wire_name)) + self.wire_name
        self.arg_names = [spec[1] for spec in self.args_cls.thrift_spec.values()]
        self.nargs = len(self.arg_names)
        # The result's spec guards the codec where it reads by the IDL; an EXCEPTION message
        # carries TApplicationException's fields, which the same walk checks by wire type.
        self.reply_spec = self.result_cls.thrift_spec if self.result_cls is not None else _APP_SPEC
        self.has_success = self.result_cls is not None and "success" in (s[1] for s in self.reply_spec.values())

    def make_args(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not kwargs and len(args) == self.nargs:
            return self.args_cls(*args)  # the generated __init__ takes them in the IDL's order
        if len(args) > len(self.arg_names):
            raise TypeError("%s() takes %d arguments, %d given" % (self.name, len(self.arg_names), len(args)))
        values = dict(zip(self.arg_names, args, strict=False))
        for key, value in kwargs.items():
            if key not in self.arg_names:
                raise TypeError("%s() has no argument %r" % (self.name, key))
            if key in values:
                raise TypeError("%s() got %r twice" % (self.name, key))
            values[key] = value
        return self.args_cls(**values)

    def result(self, result: Any) -> Any:
        """The value a decoded result struct stands for, as thriftpy2's TClient: the return
        value, or a declared exception raised, or MISSING_RESULT."""
        success = getattr(result, "success", None)
        if success is not None:
            return success
        for key, value in result.__dict__.items():
            if key != "success" and value is not None:
                raise value
        if self.has_success:
            raise TApplicationException(TApplicationException.MISSING_RESULT, "%s returned no result" % self.name)
        return None


def methods_of(service: Any, service_name: str | None = None) -> dict[str, Method]:
    return {name: Method(service, name, service_name) for name in service.thrift_services}


class Reply:
    """A complete, vetted reply: the message body still undecoded, and the frame's headers."""

    __slots__ = ("mtype", "body", "headers")

    def __init__(self, mtype: int, body: bytes, headers: dict[str, str]) -> None:
        self.mtype = mtype
        self.body = body
        self.headers = headers

    @property
    def drain(self) -> bool:
        """The server said it will close this connection: use it for nothing more."""
        return DRAIN_HEADER in self.headers


class Wire:
    """One connection's encoder and reply reader (one call at a time per connection).

    `feed(data)` returns the Reply once the expected one is complete, None while bytes are
    missing, and raises BadReply (the connection must be discarded) for anything else."""

    __slots__ = (
        "transport",
        "protocol",
        "max_size",
        "max_container",
        "codec",
        "_buf",
        "_method",
        "_seqid",
        "_scanner",
        "_scanners",
        "_frame_size",
        "_plain_header",
        "_binary",
    )

    def __init__(self, transport: str, protocol: str, max_size: int, max_container: int) -> None:
        if transport not in TRANSPORTS:
            raise ValueError("transport %r: one of %s" % (transport, ", ".join(TRANSPORTS)))
        if protocol not in PROTOCOLS:
            raise ValueError("protocol %r: binary or compact" % (protocol,))
        self.transport = transport
        self.protocol = PROTOCOLS[protocol]
        self.max_size = max_size
        self.max_container = max_container
        self.codec: BinaryCodec | CompactCodec = (
            BinaryCodec(MAX_DEPTH) if self.protocol == BINARY else CompactCodec(MAX_DEPTH)
        )
        self._buf = bytearray()
        self._method: Method | None = None
        self._seqid = 0
        self._scanner: Scanner | None = None
        self._scanners: dict[Method, Scanner] = {}  # one per method called on this connection
        self._frame_size = -1
        self._binary = self.codec if isinstance(self.codec, BinaryCodec) else None
        self._plain_header = bytes((ID_OF_PROTOCOL[self.protocol], 0, 0, 0))  # protocol id, no transforms

    def request(self, method: Method, seqid: int, args: Any, headers: dict[str, str] | None) -> bytes:
        """The request's bytes, and the reader set to expect its reply."""
        transport = self.transport
        binary = self._binary
        if binary is not None:  # BinaryCodec.encode's bytes, the head computed once per method
            head, body = method.binary_head, binary.encode_body(args)
            if transport == HEADER and not headers:
                # request_frame's bytes for a frame with no headers, laid out here: its header
                # is the protocol id and a transform count of 0, padded to one word.
                size = _PLAIN_SIZE + len(head) + 4 + len(body)
                data = b"".join(
                    (_plain_head.pack(size, MAGIC, 0, seqid, 1), self._plain_header, head, _i32.pack(seqid), body)
                )
            elif transport == HEADER:
                data = request_frame(b"".join((head, _i32.pack(seqid), body)), self.protocol, headers, seqid)
            elif transport == FRAMED:
                data = b"".join((_length.pack(len(head) + 4 + len(body)), head, _i32.pack(seqid), body))
            else:
                data = b"".join((head, _i32.pack(seqid), body))
        elif transport == HEADER:
            message = self.codec.encode(method.wire_name, method.mtype, seqid, args, False)
            if headers:
                data = request_frame(message, self.protocol, headers, seqid)
            else:
                data = b"".join(
                    (_plain_head.pack(len(message) + _PLAIN_SIZE, MAGIC, 0, seqid, 1), self._plain_header, message)
                )
        else:
            data = self.codec.encode(method.wire_name, method.mtype, seqid, args, transport == FRAMED)
        # expect(method, seqid), inline: every call's path
        self._method = method
        self._seqid = seqid
        if self._buf:
            self._buf.clear()
        self._frame_size = -1
        scanner = self._scanners.get(method)
        if scanner is None:
            self.expect(method, seqid)
        else:
            scanner.reset()
            self._scanner = scanner
        return data

    def expect(self, method: Method, seqid: int) -> None:
        self._method = method
        self._seqid = seqid
        if self._buf:
            self._buf.clear()
        self._frame_size = -1
        scanner = self._scanners.get(method)
        if scanner is None:
            scanner_cls = BinaryScanner if self.protocol == BINARY else CompactScanner
            scanner = self._scanners[method] = scanner_cls(
                MAX_DEPTH, self.max_container, self.max_size, {method.wire_name: method.reply_spec}
            )
        else:
            scanner.reset()
        self._scanner = scanner

    @property
    def received(self) -> int:
        return len(self._buf)

    def whole(self, buf: bytes | bytearray, end: int) -> Reply | None:
        """The reply, when buf[:end] (the first bytes read for it) is exactly one whole frame:
        vetted and split where it lies, no copy of the frame made; the usual case. None when it
        is not, and nothing recorded: the caller then feeds the same bytes to `feed`, which
        buffers, waits for the rest or raises."""
        if self._buf or self.transport == BUFFERED or end < 4:
            return None
        size = _length.unpack_from(buf)[0]
        if size + 4 != end or size == 0 or size > self.max_size:
            return None
        return self._frame(buf, end)

    def feed(self, data: bytes | bytearray | memoryview) -> Reply | None:
        buf = self._buf
        if not buf and self.transport != BUFFERED and len(data) >= 4:
            size = _length.unpack_from(data)[0]
            if size + 4 == len(data) and 0 < size <= self.max_size:
                # The whole frame in one read, scanned where it lies. Not recorded as received:
                # the call ends here, with its reply or an exception.
                return self._frame(data, len(data))
        buf += data
        if self.transport == BUFFERED:
            return self._scan(buf, 0, len(buf), {})
        if self._frame_size < 0:
            if len(buf) < 4:
                return None
            size = _length.unpack_from(buf)[0]
            if size == 0 or size > self.max_size:
                raise BadReply("reply frame of %d bytes (limit %d): not this call's reply" % (size, self.max_size))
            self._frame_size = size
        size = self._frame_size
        if len(buf) < size + 4:
            return None
        if len(buf) > size + 4:
            raise BadReply(
                "%d bytes after the reply frame: the server sent more than one reply" % (len(buf) - size - 4)
            )
        return self._frame(buf, size + 4)

    def _frame(self, buf: Any, end: int) -> Reply | None:
        """The reply in buf[4:end], one whole frame (its length checked) after its length."""
        if self.transport == FRAMED:
            return self._scan(buf, 4, end, {})
        try:
            frame = parse_header(buf, 4, end, None)
            if frame.transforms:  # a copy, inflated: the frame's bytes are the connection's buffer
                payload: Any = untransform(frame, bytes(buf[frame.payload_at : end]), self.max_size)
                base, stop = 0, len(payload)
            else:
                payload, base, stop = buf, frame.payload_at, end
        except WireError as e:
            raise BadReply("reply is not a THeader frame: %s" % e) from None
        if frame.protocol != self.protocol:
            raise BadReply("THeader reply in %s, the call was %s" % (frame.protocol, self.protocol))
        if frame.seqid != self._seqid:
            raise BadReply("THeader reply has sequence id %d, the call had %d" % (frame.seqid, self._seqid))
        return self._scan(payload, base, stop, frame.headers)

    def _scan(self, buf: Any, base: int, end: int, headers: dict[str, str]) -> Reply | None:
        """The reply message in buf[base:end], vetted; None while a BUFFERED one is incomplete."""
        scanner = self._scanner
        method = self._method
        assert scanner is not None and method is not None  # expect() was called
        try:
            n = scanner.scan(buf, base, end, base + self.max_size)
        except WireError as e:
            raise BadReply("reply to %s does not scan: %s" % (method.name, e.reason)) from None
        if n < 0:
            if self.transport != BUFFERED:
                raise BadReply("reply frame to %s holds a truncated message (a lying length)" % method.name)
            if end >= self.max_size:
                raise BadReply("reply to %s passes %d bytes (limit)" % (method.name, self.max_size))
            return None
        if base + n != end:
            raise BadReply("%d bytes after the reply to %s" % (end - base - n, method.name))
        header = scanner.header
        assert header is not None
        name, mtype, seqid, body_at = header
        if seqid != self._seqid:
            raise BadReply("reply has sequence id %d, the call had %d" % (seqid, self._seqid))
        if name != method.wire_name and name != method.plain_name:
            raise BadReply("reply is for method %r, the call was %r" % (name.decode("utf-8", "replace"), method.name))
        if mtype != REPLY and mtype != EXCEPTION:
            raise BadReply("reply has message type %d, not REPLY or EXCEPTION" % mtype)
        return Reply(mtype, bytes(buf[base + body_at : base + n]), headers)

    def decode(self, reply: Reply) -> Any:
        """The call's value (or its raised exception) from a vetted reply."""
        method = self._method
        assert method is not None
        if reply.mtype == EXCEPTION:
            error = TApplicationException()
            self._decode(reply.body, error)
            if error.type == TIMEOUT:  # the server's deadline check: one exception for both
                raise CallTimeout(error.message or "the server says the deadline passed")
            raise error
        assert method.result_cls is not None  # oneway calls read no reply
        result = method.result_cls()
        try:
            self.codec.decode(reply.body, result)  # _decode, inline: every call's path
        except WireError as e:
            raise BadReply("reply does not decode: %s" % e.reason) from None
        if method.has_success:
            success = result.success
            if success is not None:
                return success
        return method.result(result)

    def _decode(self, body: bytes, into: Any) -> None:
        try:
            self.codec.decode(body, into)
        except WireError as e:
            raise BadReply("reply does not decode: %s" % e.reason) from None
