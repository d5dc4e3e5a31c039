"""A hand-written Apache Thrift Python client for part of idl/showcase.thrift and
idl/pingpong.thrift: what `thrift --gen py` would generate (there is no thrift compiler here).

Every struct has an Apache-format `thrift_spec` (so TBinaryProtocolAccelerated and
TCompactProtocolAccelerated encode and decode it with the `fastbinary` C extension, as they do
for generated code) and a `read`/`write` written out field by field with the protocol's
primitives (used by the plain TBinaryProtocol/TCompactProtocol). `stats` counts which of the
two paths ran, so a test can check that an "accelerated" client really was.

Covered: Showcase.ping, add(i64, i64), echo_shape(Shape) (struct with list<struct>, map<string,
list<struct>>, set<i64>, binary), reverse(binary), lookup (declared NotFound/Invalid),
fail (TApplicationException INTERNAL_ERROR); PingService.ping.
"""

from __future__ import annotations

import collections

from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.protocol.THeaderProtocol import THeaderProtocol
from thrift.protocol.TMultiplexedProtocol import TMultiplexedProtocol
from thrift.Thrift import TApplicationException, TException, TMessageType, TType
from thrift.transport import TSocket, TSSLSocket, TTransport
from thrift.transport.THeaderTransport import THeaderClientType, THeaderTransformID
from thrift.TRecursive import fix_spec

from .theader_frames import PROTOCOL_IDS

stats = collections.Counter()  # "fast_encode", "fast_decode", "slow_encode", "slow_decode"


def _fast_write(self, oprot) -> bool:
    if oprot._fast_encode is not None and self.thrift_spec is not None:
        oprot.trans.write(oprot._fast_encode(self, [self.__class__, self.thrift_spec]))
        stats["fast_encode"] += 1
        return True
    stats["slow_encode"] += 1
    return False


def _fast_read(self, iprot) -> bool:
    if (
        iprot._fast_decode is not None
        and isinstance(iprot.trans, TTransport.CReadableTransport)
        and self.thrift_spec is not None
    ):
        iprot._fast_decode(self, iprot, [self.__class__, self.thrift_spec])
        stats["fast_decode"] += 1
        return True
    stats["slow_decode"] += 1
    return False


class _Struct:
    def __eq__(self, other):
        return isinstance(other, self.__class__) and self.__dict__ == other.__dict__

    def __ne__(self, other):
        return not self == other

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join("%s=%r" % kv for kv in self.__dict__.items()))


# -- showcase structs ---------------------------------------------------------------------------


class Point(_Struct):
    def __init__(self, x=None, y=None):
        self.x = x
        self.y = y

    def read(self, iprot):
        if _fast_read(self, iprot):
            return
        iprot.readStructBegin()
        while True:
            _, ftype, fid = iprot.readFieldBegin()
            if ftype == TType.STOP:
                break
            if fid == 1 and ftype == TType.I32:
                self.x = iprot.readI32()
            elif fid == 2 and ftype == TType.I32:
                self.y = iprot.readI32()
            else:
                iprot.skip(ftype)
            iprot.readFieldEnd()
        iprot.readStructEnd()

    def write(self, oprot):
        if _fast_write(self, oprot):
            return
        oprot.writeStructBegin("Point")
        if self.x is not None:
            oprot.writeFieldBegin("x", TType.I32, 1)
            oprot.writeI32(self.x)
            oprot.writeFieldEnd()
        if self.y is not None:
            oprot.writeFieldBegin("y", TType.I32, 2)
            oprot.writeI32(self.y)
            oprot.writeFieldEnd()
        oprot.writeFieldStop()
        oprot.writeStructEnd()


def _read_points(iprot):
    etype, size = iprot.readListBegin()
    assert etype == TType.STRUCT, etype
    points = []
    for _ in range(size):
        p = Point()
        p.read(iprot)
        points.append(p)
    iprot.readListEnd()
    return points


def _write_points(oprot, points):
    oprot.writeListBegin(TType.STRUCT, len(points))
    for p in points:
        p.write(oprot)
    oprot.writeListEnd()


class Shape(_Struct):
    def __init__(self, name=None, points=None, color=1, labels=None, tags=None, blob=None):
        self.name = name
        self.points = points
        self.color = color  # the IDL default: Color.RED
        self.labels = labels
        self.tags = tags
        self.blob = blob

    def read(self, iprot):
        if _fast_read(self, iprot):
            return
        iprot.readStructBegin()
        while True:
            _, ftype, fid = iprot.readFieldBegin()
            if ftype == TType.STOP:
                break
            if fid == 1 and ftype == TType.STRING:
                self.name = iprot.readString()
            elif fid == 2 and ftype == TType.LIST:
                self.points = _read_points(iprot)
            elif fid == 3 and ftype == TType.I32:
                self.color = iprot.readI32()
            elif fid == 4 and ftype == TType.MAP:
                ktype, vtype, size = iprot.readMapBegin()
                assert (ktype, vtype) == (TType.STRING, TType.LIST), (ktype, vtype)
                self.labels = {}
                for _ in range(size):
                    key = iprot.readString()
                    self.labels[key] = _read_points(iprot)
                iprot.readMapEnd()
            elif fid == 5 and ftype == TType.SET:
                etype, size = iprot.readSetBegin()
                assert etype == TType.I64, etype
                self.tags = {iprot.readI64() for _ in range(size)}
                iprot.readSetEnd()
            elif fid == 6 and ftype == TType.STRING:
                self.blob = iprot.readBinary()
            else:
                iprot.skip(ftype)
            iprot.readFieldEnd()
        iprot.readStructEnd()

    def write(self, oprot):
        if _fast_write(self, oprot):
            return
        oprot.writeStructBegin("Shape")
        if self.name is not None:
            oprot.writeFieldBegin("name", TType.STRING, 1)
            oprot.writeString(self.name)
            oprot.writeFieldEnd()
        if self.points is not None:
            oprot.writeFieldBegin("points", TType.LIST, 2)
            _write_points(oprot, self.points)
            oprot.writeFieldEnd()
        if self.color is not None:
            oprot.writeFieldBegin("color", TType.I32, 3)
            oprot.writeI32(self.color)
            oprot.writeFieldEnd()
        if self.labels is not None:
            oprot.writeFieldBegin("labels", TType.MAP, 4)
            oprot.writeMapBegin(TType.STRING, TType.LIST, len(self.labels))
            for key, points in self.labels.items():
                oprot.writeString(key)
                _write_points(oprot, points)
            oprot.writeMapEnd()
            oprot.writeFieldEnd()
        if self.tags is not None:
            oprot.writeFieldBegin("tags", TType.SET, 5)
            oprot.writeSetBegin(TType.I64, len(self.tags))
            for tag in self.tags:
                oprot.writeI64(tag)
            oprot.writeSetEnd()
            oprot.writeFieldEnd()
        if self.blob is not None:
            oprot.writeFieldBegin("blob", TType.STRING, 6)
            oprot.writeBinary(self.blob)
            oprot.writeFieldEnd()
        oprot.writeFieldStop()
        oprot.writeStructEnd()


class NotFound(TException):
    def __init__(self, key=None, code=None):
        super().__init__("NotFound(key=%r, code=%r)" % (key, code))
        self.key = key
        self.code = code

    def __eq__(self, other):
        return isinstance(other, NotFound) and (self.key, self.code) == (other.key, other.code)

    __hash__ = None

    def read(self, iprot):
        if _fast_read(self, iprot):
            return
        iprot.readStructBegin()
        while True:
            _, ftype, fid = iprot.readFieldBegin()
            if ftype == TType.STOP:
                break
            if fid == 1 and ftype == TType.STRING:
                self.key = iprot.readString()
            elif fid == 2 and ftype == TType.I32:
                self.code = iprot.readI32()
            else:
                iprot.skip(ftype)
            iprot.readFieldEnd()
        iprot.readStructEnd()


class Invalid(TException):
    def __init__(self, reason=None):
        super().__init__(reason)
        self.reason = reason

    def read(self, iprot):
        if _fast_read(self, iprot):
            return
        iprot.readStructBegin()
        while True:
            _, ftype, fid = iprot.readFieldBegin()
            if ftype == TType.STOP:
                break
            if fid == 1 and ftype == TType.STRING:
                self.reason = iprot.readString()
            else:
                iprot.skip(ftype)
            iprot.readFieldEnd()
        iprot.readStructEnd()


# -- argument and result structs ----------------------------------------------------------------


class _Args(_Struct):
    """Arguments struct: `fields` is [(fid, name, ttype, write primitive)] for scalar args, or
    a struct argument (ttype STRUCT, written with its own write())."""

    fields = ()
    struct_name = "args"

    def __init__(self, **values):
        for _, fname, _, _ in self.fields:
            setattr(self, fname, values.pop(fname, None))
        assert not values, values

    def write(self, oprot):
        if _fast_write(self, oprot):
            return
        oprot.writeStructBegin(self.struct_name)
        for fid, fname, ttype, writer in self.fields:
            value = getattr(self, fname)
            if value is None:
                continue
            oprot.writeFieldBegin(fname, ttype, fid)
            if ttype == TType.STRUCT:
                value.write(oprot)
            else:
                getattr(oprot, writer)(value)
            oprot.writeFieldEnd()
        oprot.writeFieldStop()
        oprot.writeStructEnd()


class _Result(_Struct):
    """Result struct: field 0 `success`, then declared exceptions. `success` is read with
    `reader` (a protocol primitive name, or a struct class)."""

    success_type = None  # TType of field 0, None for void
    reader = None
    exceptions = ()  # [(fid, name, class)]

    def __init__(self, success=None, **exceptions):
        self.success = success
        for _, fname, _ in self.exceptions:
            setattr(self, fname, exceptions.pop(fname, None))

    def read(self, iprot):
        if _fast_read(self, iprot):
            return
        declared = {fid: (fname, cls) for fid, fname, cls in self.exceptions}
        iprot.readStructBegin()
        while True:
            _, ftype, fid = iprot.readFieldBegin()
            if ftype == TType.STOP:
                break
            if fid == 0 and ftype == self.success_type:
                if isinstance(self.reader, str):
                    self.success = getattr(iprot, self.reader)()
                else:
                    self.success = self.reader()
                    self.success.read(iprot)
            elif fid in declared and ftype == TType.STRUCT:
                fname, cls = declared[fid]
                exc = cls()
                exc.read(iprot)
                setattr(self, fname, exc)
            else:
                iprot.skip(ftype)
            iprot.readFieldEnd()
        iprot.readStructEnd()


def _spec(*fields):
    """An Apache `thrift_spec` tuple (indexed by field id) from (fid, ttype, name, args[, default])."""
    top = max(f[0] for f in fields) if fields else 0
    spec = [None] * (top + 1)
    for f in fields:
        fid, ttype, name, args = f[:4]
        spec[fid] = (fid, ttype, name, args, f[4] if len(f) > 4 else None)
    return tuple(spec)


class ping_args(_Args):
    struct_name = "ping_args"


class ping_result(_Result):
    pass


class add_args(_Args):
    struct_name = "add_args"
    fields = ((1, "a", TType.I64, "writeI64"), (2, "b", TType.I64, "writeI64"))


class add_result(_Result):
    success_type, reader = TType.I64, "readI64"


class echo_shape_args(_Args):
    struct_name = "echo_shape_args"
    fields = ((1, "shape", TType.STRUCT, None),)


class echo_shape_result(_Result):
    success_type, reader = TType.STRUCT, Shape


class reverse_args(_Args):
    struct_name = "reverse_args"
    fields = ((1, "data", TType.STRING, "writeBinary"),)


class reverse_result(_Result):
    success_type, reader = TType.STRING, "readBinary"


class lookup_args(_Args):
    struct_name = "lookup_args"
    fields = ((1, "key", TType.STRING, "writeString"),)


class lookup_result(_Result):
    success_type, reader = TType.STRING, "readString"
    exceptions = ((1, "not_found", NotFound), (2, "invalid", Invalid))


class fail_args(_Args):
    struct_name = "fail_args"
    fields = ((1, "message", TType.STRING, "writeString"),)


class fail_result(_Result):
    success_type, reader = TType.I32, "readI32"


class pingpong_ping_result(_Result):
    """PingService.ping: string ping()."""

    success_type, reader = TType.STRING, "readString"


_POINT = (TType.STRUCT, [Point, None], False)
Point.thrift_spec = _spec((1, TType.I32, "x", None), (2, TType.I32, "y", None))
Shape.thrift_spec = _spec(
    (1, TType.STRING, "name", "UTF8"),
    (2, TType.LIST, "points", _POINT),
    (3, TType.I32, "color", None, 1),
    (4, TType.MAP, "labels", (TType.STRING, "UTF8", TType.LIST, _POINT, False)),
    (5, TType.SET, "tags", (TType.I64, None, False)),
    (6, TType.STRING, "blob", "BINARY"),
)
NotFound.thrift_spec = _spec((1, TType.STRING, "key", "UTF8"), (2, TType.I32, "code", None))
Invalid.thrift_spec = _spec((1, TType.STRING, "reason", "UTF8"))
ping_args.thrift_spec = ()
ping_result.thrift_spec = ()
add_args.thrift_spec = _spec((1, TType.I64, "a", None), (2, TType.I64, "b", None))
add_result.thrift_spec = _spec((0, TType.I64, "success", None))
echo_shape_args.thrift_spec = _spec((1, TType.STRUCT, "shape", [Shape, None]))
echo_shape_result.thrift_spec = _spec((0, TType.STRUCT, "success", [Shape, None]))
reverse_args.thrift_spec = _spec((1, TType.STRING, "data", "BINARY"))
reverse_result.thrift_spec = _spec((0, TType.STRING, "success", "BINARY"))
lookup_args.thrift_spec = _spec((1, TType.STRING, "key", "UTF8"))
lookup_result.thrift_spec = _spec(
    (0, TType.STRING, "success", "UTF8"),
    (1, TType.STRUCT, "not_found", [NotFound, None]),
    (2, TType.STRUCT, "invalid", [Invalid, None]),
)
fail_args.thrift_spec = _spec((1, TType.STRING, "message", "UTF8"))
fail_result.thrift_spec = _spec((0, TType.I32, "success", None))
pingpong_ping_result.thrift_spec = _spec((0, TType.STRING, "success", "UTF8"))
# As generated code does: replace each [Class, None] with [Class, Class.thrift_spec].
fix_spec([Point, Shape, NotFound, Invalid, echo_shape_args, echo_shape_result, lookup_result])


# -- clients ------------------------------------------------------------------------------------


class _Client:
    """Send: writeMessageBegin, the args struct, writeMessageEnd, flush. Receive:
    readMessageBegin; on EXCEPTION TApplicationException.read; else the result struct.
    Stricter than generated Python clients: the reply's name and seqid must match the call."""

    def __init__(self, iprot, oprot=None):
        self._iprot = iprot
        self._oprot = oprot or iprot
        self._seqid = 0

    def _call(self, name, args, result):
        self._seqid += 1
        oprot = self._oprot
        oprot.writeMessageBegin(name, TMessageType.CALL, self._seqid)
        args.write(oprot)
        oprot.writeMessageEnd()
        oprot.trans.flush()

        iprot = self._iprot
        fname, mtype, rseqid = iprot.readMessageBegin()
        if mtype == TMessageType.EXCEPTION:
            x = TApplicationException()
            x.read(iprot)
            iprot.readMessageEnd()
            raise x
        if mtype != TMessageType.REPLY:
            raise TApplicationException(
                TApplicationException.INVALID_MESSAGE_TYPE, "%s: message type %d" % (name, mtype)
            )
        if fname != name:
            raise TApplicationException(
                TApplicationException.WRONG_METHOD_NAME, "reply named %r to a call of %r" % (fname, name)
            )
        if rseqid != self._seqid:
            raise TApplicationException(
                TApplicationException.BAD_SEQUENCE_ID, "reply seqid %d to call %d" % (rseqid, self._seqid)
            )
        result.read(iprot)
        iprot.readMessageEnd()
        for _, fname, _ in result.exceptions:
            if getattr(result, fname) is not None:
                raise getattr(result, fname)
        if result.success_type is None:
            return None
        if result.success is not None:
            return result.success
        raise TApplicationException(TApplicationException.MISSING_RESULT, "%s failed: unknown result" % name)


class ShowcaseClient(_Client):
    def ping(self):
        return self._call("ping", ping_args(), ping_result())

    def add(self, a, b):
        return self._call("add", add_args(a=a, b=b), add_result())

    def echo_shape(self, shape):
        return self._call("echo_shape", echo_shape_args(shape=shape), echo_shape_result())

    def reverse(self, data):
        return self._call("reverse", reverse_args(data=data), reverse_result())

    def lookup(self, key):
        return self._call("lookup", lookup_args(key=key), lookup_result())

    def fail(self, message):
        return self._call("fail", fail_args(message=message), fail_result())


class PingClient(_Client):
    def ping(self):
        return self._call("ping", ping_args(), pingpong_ping_result())


# -- connecting ---------------------------------------------------------------------------------

PROTOCOLS = ("binary", "binary-nonstrict", "compact")
TRANSPORTS = ("buffered", "framed")


def accelerated_available() -> bool:
    try:
        from thrift.protocol import fastbinary  # noqa: F401
    except ImportError:
        return False
    return True


def make_protocol(trans, protocol: str, accelerated: bool = False):
    # fallback=False: an "accelerated" client must not quietly run the pure-Python code.
    if protocol == "compact":
        if accelerated:
            return TCompactProtocol.TCompactProtocolAccelerated(trans, fallback=False)
        return TCompactProtocol.TCompactProtocol(trans)
    strict = protocol == "binary"
    if accelerated:
        return TBinaryProtocol.TBinaryProtocolAccelerated(trans, strictRead=False, strictWrite=strict, fallback=False)
    return TBinaryProtocol.TBinaryProtocol(trans, strictRead=False, strictWrite=strict)


class Connection:
    """One socket, its transport and protocol; `.showcase(service)` / `.pingpong(service)` make
    clients on it, multiplexed when a service name is given (several may share the socket).
    `ssl_context`: over TLS (Apache's TSSLSocket), with that client context."""

    def __init__(
        self,
        port,
        protocol="binary",
        transport="buffered",
        accelerated=False,
        host="127.0.0.1",
        timeout_ms=10000,
        ssl_context=None,
    ):
        if ssl_context is None:
            self.socket = TSocket.TSocket(host, port)
        else:
            self.socket = TSSLSocket.TSSLSocket(host, port, ssl_context=ssl_context, server_hostname=host)
        self.socket.setTimeout(timeout_ms)
        wrap = TTransport.TFramedTransport if transport == "framed" else TTransport.TBufferedTransport
        self.trans = wrap(self.socket)
        self.protocol = make_protocol(self.trans, protocol, accelerated)
        self.trans.open()

    def _proto(self, service):
        return TMultiplexedProtocol(self.protocol, service) if service else self.protocol

    def showcase(self, service=None) -> ShowcaseClient:
        return ShowcaseClient(self._proto(service))

    def pingpong(self, service=None) -> PingClient:
        return PingClient(self._proto(service))

    def close(self):
        self.trans.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class HeaderClient:
    """An Apache THeaderProtocol client on one socket."""

    def __init__(self, port, protocol="binary", compress=False):
        self.socket = TSocket.TSocket("127.0.0.1", port)
        self.socket.setTimeout(10_000)
        self.proto = THeaderProtocol(self.socket, (THeaderClientType.HEADERS,), PROTOCOL_IDS[protocol])
        if compress:
            self.proto.add_transform(THeaderTransformID.ZLIB)
        self.socket.open()
        self.client = ShowcaseClient(self.proto)

    def read_headers(self):
        return self.proto.get_headers()

    def close(self):
        self.socket.close()
