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
from dracula.wire.codec import BinaryCodec, CompactCodec
from dracula.wire.compiled import BinaryScanner, CompactScanner, Scanner
from dracula.wire.detect import BINARY, COMPACT
from dracula.wire.errors import WireError
from dracula.wire.theader import parse_frame, request_frame

CALL, REPLY, EXCEPTION, ONEWAY = 1, 2, 3, 4
HEADER, FRAMED, BUFFERED = "header", "framed", "buffered"
TRANSPORTS = (HEADER, FRAMED, BUFFERED)
PROTOCOLS = {"binary": BINARY, "compact": COMPACT}
DRAIN_HEADER = ":drain"
MAX_DEPTH = 64
_length = struct.Struct("!I")
_APP_SPEC = TApplicationException.thrift_spec


class Method:
    """What one service method needs on the client: its name, argument and result classes."""

    __slots__ = ("name", "wire_name", "args_cls", "result_cls", "oneway", "arg_names")

    def __init__(self, service: Any, name: str, service_name: str | None) -> None:
        self.name = name
        self.wire_name = ("%s:%s" % (service_name, name) if service_name else name).encode()
        self.args_cls = getattr(service, name + "_args")
        self.result_cls = getattr(service, name + "_result", None)
        self.oneway = self.result_cls is None or bool(getattr(self.result_cls, "oneway", False))
        self.arg_names = [spec[1] for spec in self.args_cls.thrift_spec.values()]

    def make_args(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not kwargs and len(args) == len(self.arg_names):
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
        assert self.result_cls is not None  # not oneway: it has a result
        if "success" in (spec[1] for spec in self.result_cls.thrift_spec.values()):
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

    def request(self, method: Method, seqid: int, args: Any, headers: dict[str, str] | None) -> bytes:
        """The request's bytes, and the reader set to expect its reply."""
        mtype = ONEWAY if method.oneway else CALL
        if self.transport == HEADER:
            message = self.codec.encode(method.wire_name, mtype, seqid, args, False)
            data = request_frame(message, self.protocol, headers, seqid)
        else:
            data = self.codec.encode(method.wire_name, mtype, seqid, args, self.transport == FRAMED)
        self.expect(method, seqid)
        return data

    def expect(self, method: Method, seqid: int) -> None:
        self._method = method
        self._seqid = seqid
        self._buf.clear()
        self._frame_size = -1
        scanner = self._scanners.get(method)
        if scanner is None:
            scanner_cls = BinaryScanner if self.protocol == BINARY else CompactScanner
            # The result's spec guards the codec where it reads by the IDL; an EXCEPTION message
            # carries TApplicationException's fields, which the same walk checks by wire type.
            spec = method.result_cls.thrift_spec if method.result_cls is not None else _APP_SPEC
            scanner = self._scanners[method] = scanner_cls(
                MAX_DEPTH, self.max_container, self.max_size, {method.wire_name: spec}
            )
        else:
            scanner.reset()
        self._scanner = scanner

    @property
    def received(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> Reply | None:
        buf = self._buf
        if (
            not buf
            and self.transport == FRAMED
            and len(data) >= 4
            and _length.unpack_from(data)[0] + 4 == len(data) <= self.max_size + 4
        ):
            # The usual case: the whole frame in one read, scanned where it lies. Not recorded
            # as received: the call ends here, with its reply or an exception.
            size = len(data) - 4
            if size:
                frame = memoryview(data)[4:]
                try:
                    return self._scan(frame, size, {})
                finally:
                    frame.release()
        buf += data
        if self.transport == BUFFERED:
            return self._scan(buf, len(buf), {})
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
        frame = memoryview(buf)[4:]
        try:
            if self.transport == FRAMED:
                return self._scan(frame, size, {})
            parsed = parse_frame(frame, self.max_size)  # type: ignore[arg-type]  # both parsers read any buffer
            if parsed.protocol != self.protocol:
                raise BadReply("THeader reply in %s, the call was %s" % (parsed.protocol, self.protocol))
            if parsed.seqid != self._seqid:
                raise BadReply("THeader reply has sequence id %d, the call had %d" % (parsed.seqid, self._seqid))
            payload = parsed.payload
            assert payload is not None  # parse_frame sets it
            reply = self._scan(payload, len(payload), parsed.headers)
            if reply is None:
                raise BadReply("THeader reply payload is a truncated Thrift message")
            return reply
        except WireError as e:
            raise BadReply("reply is not a THeader frame: %s" % e) from None
        finally:
            frame.release()

    def _scan(self, buf: Any, end: int, headers: dict[str, str]) -> Reply | None:
        scanner = self._scanner
        method = self._method
        assert scanner is not None and method is not None  # expect() was called
        try:
            n = scanner.scan(buf, 0, end, self.max_size)
        except WireError as e:
            raise BadReply("reply to %s does not scan: %s" % (method.name, e.reason)) from None
        if n < 0:
            if self.transport != BUFFERED:
                raise BadReply("reply frame to %s holds a truncated message (a lying length)" % method.name)
            if end >= self.max_size:
                raise BadReply("reply to %s passes %d bytes (limit)" % (method.name, self.max_size))
            return None
        if n != end:
            raise BadReply("%d bytes after the reply to %s" % (end - n, method.name))
        header = scanner.header
        assert header is not None
        name, mtype, seqid, body_at = header
        if seqid != self._seqid:
            raise BadReply("reply has sequence id %d, the call had %d" % (seqid, self._seqid))
        if name != method.wire_name and name != method.name.encode():
            raise BadReply("reply is for method %r, the call was %r" % (name.decode("utf-8", "replace"), method.name))
        if mtype not in (REPLY, EXCEPTION):
            raise BadReply("reply has message type %d, not REPLY or EXCEPTION" % mtype)
        return Reply(mtype, bytes(buf[body_at:n]), headers)

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
        self._decode(reply.body, result)
        return method.result(result)

    def _decode(self, body: bytes, into: Any) -> None:
        try:
            self.codec.decode(body, into)
        except WireError as e:
            raise BadReply("reply does not decode: %s" % e.reason) from None
