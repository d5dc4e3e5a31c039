"""The same calls from every client a thriftpy2 user might point at dracula.

- thriftpy2's sync client: buffered and framed transports, Cython and pure-Python binary
  protocols, strict and non-strict binary, multiplexed;
- thriftpy2's asyncio client (`make_aio_client`), buffered and framed;
- Apache Thrift's Python library (`thrift`), buffered and framed, strict and non-strict, plain
  and multiplexed; there is no thrift compiler here, so ApacheClient below writes and reads the
  messages with TBinaryProtocol's primitives from a small type description of the IDL;
- pipelining: many requests written before any reply is read, framed and unframed.
"""

import asyncio

import pytest
import thriftpy2.rpc
from thrift.protocol import TBinaryProtocol as ApacheBinary
from thrift.protocol.TMultiplexedProtocol import TMultiplexedProtocol
from thrift.Thrift import TApplicationException as ApacheAppException, TMessageType as ApacheMessageType, TType
from thrift.transport import TSocket, TTransport
from thriftpy2.contrib.aio.protocol import TAsyncBinaryProtocolFactory
from thriftpy2.contrib.aio.transport import TAsyncBufferedTransportFactory, TAsyncFramedTransportFactory
from thriftpy2.protocol import TCyBinaryProtocolFactory, TMultiplexedProtocolFactory
from thriftpy2.protocol.binary import TBinaryProtocolFactory
from thriftpy2.thrift import TApplicationException, TMessageType

# thriftpy2.transport's own names are the Cython classes; the pure-Python ones live in submodules.
from thriftpy2.transport import TCyBufferedTransportFactory, TCyFramedTransportFactory
from thriftpy2.transport.buffered import TBufferedTransportFactory
from thriftpy2.transport.framed import TFramedTransportFactory

from examples.pingpong import PingHandler
from examples.showcase import ShowcaseHandler

from .helpers import pingpong_thrift, showcase_thrift as t
from .wire_client import Connection, encode_call, encode_message

SAFETY_TIMEOUT = 10  # seconds: turns a hang into a failure; never used to synchronise

INTERNAL_ERROR = TApplicationException.INTERNAL_ERROR
UNKNOWN_METHOD = TApplicationException.UNKNOWN_METHOD


def sample_shape():
    return t.Shape(
        name="héxagon",
        points=[t.Point(x=1, y=2), t.Point(x=-(2**31), y=2**31 - 1)],
        color=t.Color.GREEN,
        labels={"a": [t.Point(x=3, y=4)], "": []},
        tags={-(2**63), 2**63 - 1, 7},
        blob=b"\x00\xff\x80",
    )


def check_shape(got, sent):
    assert (got.name, got.points, got.color, got.labels, got.blob) == (
        sent.name,
        sent.points,
        sent.color,
        sent.labels,
        sent.blob,
    )
    assert sorted(got.tags) == sorted(sent.tags)


# -- thriftpy2 sync client ----------------------------------------------------------------------

# The pure-Python binary protocol only works over the pure-Python transports (thriftpy2's
# Cython transports refuse the memoryviews it writes), so each pairs with its own kind.
SYNC_CLIENTS = {
    "buffered-cy": {},  # make_client's defaults: Cython buffered transport and protocol
    "framed-cy": dict(trans_factory=TCyFramedTransportFactory(), proto_factory=TCyBinaryProtocolFactory()),
    "buffered-py": dict(trans_factory=TBufferedTransportFactory(), proto_factory=TBinaryProtocolFactory()),
    "framed-py": dict(trans_factory=TFramedTransportFactory(), proto_factory=TBinaryProtocolFactory()),
    "buffered-cy-nonstrict": dict(
        trans_factory=TCyBufferedTransportFactory(), proto_factory=TCyBinaryProtocolFactory(strict_write=False)
    ),
    "framed-cy-nonstrict": dict(
        trans_factory=TCyFramedTransportFactory(), proto_factory=TCyBinaryProtocolFactory(strict_write=False)
    ),
    "buffered-py-nonstrict": dict(
        trans_factory=TBufferedTransportFactory(), proto_factory=TBinaryProtocolFactory(strict_write=False)
    ),
    "framed-py-nonstrict": dict(
        trans_factory=TFramedTransportFactory(), proto_factory=TBinaryProtocolFactory(strict_write=False)
    ),
    "buffered-multiplexed": dict(proto_factory=TMultiplexedProtocolFactory(TCyBinaryProtocolFactory(), "Showcase")),
    "framed-multiplexed": dict(
        trans_factory=TCyFramedTransportFactory(),
        proto_factory=TMultiplexedProtocolFactory(TCyBinaryProtocolFactory(), "Showcase"),
    ),
}


def exercise_showcase(c):
    """Every kind of outcome through one client: values, declared and undeclared exceptions,
    oneway, coroutine and blocking handlers."""
    assert c.ping() is None
    assert c.add(2**62, 2**62 - 1) == 2**63 - 1
    assert c.add(-5, 3) == -2
    sent = sample_shape()
    check_shape(c.echo_shape(sent), sent)
    with pytest.raises(t.NotFound) as info:
        c.lookup("missing")
    assert (info.value.key, info.value.code) == ("missing", 404)
    with pytest.raises(t.Invalid) as info:
        c.lookup("")
    assert info.value.reason == "empty key"
    assert c.lookup("ok") == "OK"
    with pytest.raises(TApplicationException) as info:
        c.fail("sync client boom")
    assert info.value.type == INTERNAL_ERROR and "sync client boom" in info.value.message
    c.record("event")
    assert c.recorded() == ["event"]
    assert c.sleep_async(1) == "slept 1 ms"
    assert c.sleep_blocking(1) == "slept 1 ms"
    assert c.ping() is None


@pytest.mark.parametrize("kind", list(SYNC_CLIENTS))
def test_thriftpy2_sync_client(showcase_server, kind):
    c = thriftpy2.rpc.make_client(
        t.Showcase, "127.0.0.1", showcase_server.port, timeout=SAFETY_TIMEOUT * 1000, **SYNC_CLIENTS[kind]
    )
    try:
        exercise_showcase(c)
    finally:
        c.close()


@pytest.mark.parametrize("protocol", ["binary", "compact"])
@pytest.mark.parametrize("transport", ["buffered", "framed"])
def test_plugin_client_of_each_protocol_and_transport(showcase_server, dracula_client, protocol, transport):
    # dracula's pytest plugin (dracula/testing.py): the client it makes speaks what it is asked to.
    exercise_showcase(dracula_client(showcase_server, protocol=protocol, transport=transport))


def test_plugin_clients_of_several_services_from_a_mapping(backend, dracula_server, dracula_client):
    # make_server({name: (service, handler)}) multiplexes as `dracula serve --service` does: the
    # first service also answers plain names; each answers `name:method`.
    server = dracula_server(
        {"Showcase": (t.Showcase, ShowcaseHandler()), "Ping": (pingpong_thrift.PingService, PingHandler())},
        backend=backend,
    )
    assert server.service_names == ["Showcase", "Ping"]
    exercise_showcase(dracula_client(server))
    multiplexed = dracula_client(server, service="Showcase", transport="framed")
    assert multiplexed.add(40, 2) == 42
    assert multiplexed.recorded() == ["event"]  # the same handler as the plain names'
    ping = dracula_client(server, service="Ping", protocol="compact")
    assert [ping.ping() for _ in range(3)] == ["pong"] * 3
    # A plain `ping` is the first service's (void): a PingService client finds no result in it.
    plain = thriftpy2.rpc.make_client(
        pingpong_thrift.PingService, "127.0.0.1", server.port, timeout=SAFETY_TIMEOUT * 1000
    )
    try:
        with pytest.raises(TApplicationException) as info:
            plain.ping()
        assert info.value.type == TApplicationException.MISSING_RESULT
    finally:
        plain.close()


def test_thriftpy2_sync_clients_of_every_kind_at_once(showcase_server):
    # One connection of each kind open together: detection is per connection.
    clients = [
        thriftpy2.rpc.make_client(t.Showcase, "127.0.0.1", showcase_server.port, timeout=SAFETY_TIMEOUT * 1000, **kw)
        for kw in SYNC_CLIENTS.values()
    ]
    try:
        for round_ in range(3):
            for i, c in enumerate(clients):
                assert c.add(i, round_) == i + round_
    finally:
        for c in clients:
            c.close()


# -- thriftpy2 asyncio client -------------------------------------------------------------------

AIO_TRANSPORTS = {"buffered": TAsyncBufferedTransportFactory, "framed": TAsyncFramedTransportFactory}


async def _aio_client(port, transport):
    return await thriftpy2.rpc.make_aio_client(
        t.Showcase,
        "127.0.0.1",
        port,
        proto_factory=TAsyncBinaryProtocolFactory(),
        trans_factory=AIO_TRANSPORTS[transport](),
        timeout=SAFETY_TIMEOUT * 1000,
    )


@pytest.mark.parametrize("transport", list(AIO_TRANSPORTS))
def test_thriftpy2_aio_client(showcase_server, transport):
    async def main():
        c = await _aio_client(showcase_server.port, transport)
        try:
            assert await c.ping() is None
            assert await c.add(2**62, 2**62 - 1) == 2**63 - 1
            sent = sample_shape()
            check_shape(await c.echo_shape(sent), sent)
            with pytest.raises(t.NotFound) as info:
                await c.lookup("missing")
            assert (info.value.key, info.value.code) == ("missing", 404)
            with pytest.raises(t.Invalid):
                await c.lookup("")
            with pytest.raises(TApplicationException) as info:
                await c.fail("aio boom")
            assert info.value.type == INTERNAL_ERROR and "aio boom" in info.value.message
            await c.record("aio event")  # the aio client sends oneway as ONEWAY
            assert await c.recorded() == ["aio event"]
            assert await c.sleep_async(1) == "slept 1 ms"
            assert await c.ping() is None
        finally:
            c.close()

    asyncio.run(main())


@pytest.mark.parametrize("transport", list(AIO_TRANSPORTS))
def test_thriftpy2_aio_clients_concurrently(showcase_server, transport):
    async def one(i):
        c = await _aio_client(showcase_server.port, transport)
        try:
            for j in range(5):
                assert await c.add(i, j) == i + j
                assert await c.sleep_async(j % 2) == "slept %d ms" % (j % 2)
        finally:
            c.close()

    async def main():
        await asyncio.gather(*(one(i) for i in range(20)))

    asyncio.run(main())


# -- Apache Thrift's Python client, written by hand ---------------------------------------------
# Types: ("bool",) ("byte",) ("i16",) ("i32",) ("i64",) ("double",) ("string",) ("binary",)
# ("list", T) ("set", T) ("map", K, V) ("struct", [(fid, name, T), ...]).
# Values: structs are dicts of the fields present, sets are Python sets.

BOOL, I32, I64, STRING, BINARY = ("bool",), ("i32",), ("i64",), ("string",), ("binary",)
POINT = ("struct", [(1, "x", I32), (2, "y", I32)])
SHAPE = (
    "struct",
    [
        (1, "name", STRING),
        (2, "points", ("list", POINT)),
        (3, "color", I32),
        (4, "labels", ("map", STRING, ("list", POINT))),
        (5, "tags", ("set", I64)),
        (6, "blob", BINARY),
    ],
)
NOT_FOUND = ("struct", [(1, "key", STRING), (2, "code", I32)])
INVALID = ("struct", [(1, "reason", STRING)])

# method: (argument fields, success type or None for void, {fid: (name, exception type)}, oneway)
SHOWCASE = {
    "ping": ([], None, {}, False),
    "add": ([(1, "a", I64), (2, "b", I64)], I64, {}, False),
    "echo_shape": ([(1, "shape", SHAPE)], SHAPE, {}, False),
    "lookup": ([(1, "key", STRING)], STRING, {1: ("not_found", NOT_FOUND), 2: ("invalid", INVALID)}, False),
    "fail": ([(1, "message", STRING)], I32, {}, False),
    "record": ([(1, "event", STRING)], None, {}, True),
    "recorded": ([], ("list", STRING), {}, False),
    "sleep_blocking": ([(1, "ms", I32)], STRING, {}, False),
    "not_in_the_idl": ([(1, "x", I32)], I32, {}, False),
}
PING_SERVICE = {"ping": ([], STRING, {}, False)}

TTYPE = {
    "bool": TType.BOOL,
    "byte": TType.BYTE,
    "i16": TType.I16,
    "i32": TType.I32,
    "i64": TType.I64,
    "double": TType.DOUBLE,
    "string": TType.STRING,
    "binary": TType.STRING,
    "list": TType.LIST,
    "set": TType.SET,
    "map": TType.MAP,
    "struct": TType.STRUCT,
}


def apache_write(p, kind, value):
    tag = kind[0]
    if tag == "struct":
        p.writeStructBegin("s")
        for fid, name, ftype in kind[1]:
            if value.get(name) is not None:
                p.writeFieldBegin(name, TTYPE[ftype[0]], fid)
                apache_write(p, ftype, value[name])
                p.writeFieldEnd()
        p.writeFieldStop()
        p.writeStructEnd()
    elif tag in ("list", "set"):
        begin, end = (p.writeListBegin, p.writeListEnd) if tag == "list" else (p.writeSetBegin, p.writeSetEnd)
        begin(TTYPE[kind[1][0]], len(value))
        for item in value:
            apache_write(p, kind[1], item)
        end()
    elif tag == "map":
        p.writeMapBegin(TTYPE[kind[1][0]], TTYPE[kind[2][0]], len(value))
        for k, v in value.items():
            apache_write(p, kind[1], k)
            apache_write(p, kind[2], v)
        p.writeMapEnd()
    else:
        getattr(
            p,
            {
                "bool": "writeBool",
                "byte": "writeByte",
                "i16": "writeI16",
                "i32": "writeI32",
                "i64": "writeI64",
                "double": "writeDouble",
                "string": "writeString",
                "binary": "writeBinary",
            }[tag],
        )(value)


def apache_read(p, kind):
    tag = kind[0]
    if tag == "struct":
        fields = {fid: (name, ftype) for fid, name, ftype in kind[1]}
        value = {}
        p.readStructBegin()
        while True:
            _, ftype, fid = p.readFieldBegin()
            if ftype == TType.STOP:
                break
            if fid in fields and TTYPE[fields[fid][1][0]] == ftype:
                value[fields[fid][0]] = apache_read(p, fields[fid][1])
            else:
                p.skip(ftype)
            p.readFieldEnd()
        p.readStructEnd()
        return value
    if tag in ("list", "set"):
        etype, size = p.readListBegin() if tag == "list" else p.readSetBegin()
        assert etype == TTYPE[kind[1][0]]
        items = [apache_read(p, kind[1]) for _ in range(size)]
        p.readListEnd() if tag == "list" else p.readSetEnd()
        return items if tag == "list" else set(items)
    if tag == "map":
        ktype, vtype, size = p.readMapBegin()
        assert (ktype, vtype) == (TTYPE[kind[1][0]], TTYPE[kind[2][0]])
        value = {}
        for _ in range(size):
            k = apache_read(p, kind[1])
            value[k] = apache_read(p, kind[2])
        p.readMapEnd()
        return value
    return getattr(
        p,
        {
            "bool": "readBool",
            "byte": "readByte",
            "i16": "readI16",
            "i32": "readI32",
            "i64": "readI64",
            "double": "readDouble",
            "string": "readString",
            "binary": "readBinary",
        }[tag],
    )()


class ApacheUserException(Exception):
    """A declared exception as the hand-written Apache client sees it."""

    def __init__(self, field, value):
        super().__init__(field, value)
        self.field = field
        self.value = value


class ApacheClient:
    """What a generated Apache Thrift Python client does, with TBinaryProtocol's primitives."""

    def __init__(self, port, framed=False, strict=True, methods=SHOWCASE, multiplexed=None):
        self.methods = methods
        self.multiplexed = multiplexed
        self.socket = TSocket.TSocket("127.0.0.1", port)
        self.socket.setTimeout(SAFETY_TIMEOUT * 1000)
        self.trans = (TTransport.TFramedTransport if framed else TTransport.TBufferedTransport)(self.socket)
        # strictRead is the server's business; the client reads what the server writes.
        self.iprot = ApacheBinary.TBinaryProtocol(self.trans, strictRead=False, strictWrite=strict)
        self.oprot = TMultiplexedProtocol(self.iprot, multiplexed) if multiplexed else self.iprot
        self.trans.open()
        self.seqid = 0

    def call(self, method, **kwargs):
        arg_fields, success, exceptions, oneway = self.methods[method]
        self.seqid += 1
        p = self.oprot
        p.writeMessageBegin(method, ApacheMessageType.ONEWAY if oneway else ApacheMessageType.CALL, self.seqid)
        apache_write(p, ("struct", arg_fields), kwargs)
        p.writeMessageEnd()
        self.trans.flush()
        if oneway:
            return None
        p = self.iprot
        name, mtype, seqid = p.readMessageBegin()
        assert seqid == self.seqid, "reply seqid %d to call %d" % (seqid, self.seqid)
        # A REPLY carries the bare method name, as Apache's TMultiplexedProcessor answers (C++
        # clients check it); an EXCEPTION's name is not checked by Apache's clients.
        names = {method}
        if mtype == ApacheMessageType.EXCEPTION and self.multiplexed:
            names.add("%s:%s" % (self.multiplexed, method))
        assert name in names, "reply named %r to a call of %r" % (name, method)
        if mtype == ApacheMessageType.EXCEPTION:
            x = ApacheAppException()
            x.read(p)
            p.readMessageEnd()
            raise x
        assert mtype == ApacheMessageType.REPLY
        result_fields = [(fid, fname, ftype) for fid, (fname, ftype) in exceptions.items()]
        if success is not None:
            result_fields.append((0, "success", success))
        result = apache_read(p, ("struct", result_fields))
        p.readMessageEnd()
        for fname, _ in exceptions.values():
            if fname in result:
                raise ApacheUserException(fname, result[fname])
        if success is None:
            assert result == {}
            return None
        if "success" not in result:
            raise ApacheAppException(ApacheAppException.MISSING_RESULT, method)
        return result["success"]

    def close(self):
        self.trans.close()


APACHE_KINDS = {
    "buffered": dict(framed=False),
    "framed": dict(framed=True),
    "buffered-nonstrict": dict(framed=False, strict=False),
    "framed-nonstrict": dict(framed=True, strict=False),
    "buffered-multiplexed": dict(framed=False, multiplexed="Showcase"),
    "framed-multiplexed": dict(framed=True, multiplexed="Showcase"),
}


@pytest.mark.parametrize("kind", list(APACHE_KINDS))
def test_apache_thrift_client(showcase_server, kind):
    c = ApacheClient(showcase_server.port, **APACHE_KINDS[kind])
    try:
        assert c.call("ping") is None
        assert c.call("add", a=2**62, b=2**62 - 1) == 2**63 - 1
        assert c.call("add", a=-(2**63), b=0) == -(2**63)
        shape = {
            "name": "héxagon",
            "points": [{"x": 1, "y": 2}, {"x": -(2**31), "y": 2**31 - 1}],
            "color": 3,
            "labels": {"a": [{"x": 3, "y": 4}], "ü": []},
            "tags": {-(2**63), 2**63 - 1, 0},
            "blob": b"\x00\xff\x80",
        }
        assert c.call("echo_shape", shape=shape) == shape
        # Unset `color` comes back as the IDL default, RED (1): the server's struct applies it.
        assert c.call("echo_shape", shape={"name": "plain"}) == {"name": "plain", "color": 1}
        with pytest.raises(ApacheUserException) as info:
            c.call("lookup", key="missing")
        assert (info.value.field, info.value.value) == ("not_found", {"key": "missing", "code": 404})
        with pytest.raises(ApacheUserException) as info:
            c.call("lookup", key="")
        assert (info.value.field, info.value.value) == ("invalid", {"reason": "empty key"})
        assert c.call("lookup", key="ok") == "OK"
        with pytest.raises(ApacheAppException) as info:
            c.call("fail", message="apache boom")
        assert info.value.type == ApacheAppException.INTERNAL_ERROR
        assert "apache boom" in info.value.message
        with pytest.raises(ApacheAppException) as info:
            c.call("not_in_the_idl", x=1)
        assert info.value.type == ApacheAppException.UNKNOWN_METHOD
        assert c.call("record", event="from apache") is None  # sent as ONEWAY
        assert c.call("recorded") == ["from apache"]
        assert c.call("sleep_blocking", ms=1) == "slept 1 ms"
        assert c.call("ping") is None
    finally:
        c.close()


@pytest.mark.parametrize("kind", ["buffered", "framed"])
def test_apache_thrift_client_pingservice(backend, kind, dracula_server):
    server = dracula_server(pingpong_thrift.PingService, PingHandler(), backend=backend)
    c = ApacheClient(server.port, methods=PING_SERVICE, **APACHE_KINDS[kind])
    try:
        assert [c.call("ping") for _ in range(3)] == ["pong"] * 3
    finally:
        c.close()


# -- pipelining ---------------------------------------------------------------------------------


def _pipeline(n):
    """n requests of mixed outcomes: (method, args, expectation) with seqids 1..n."""
    plan = []
    for i in range(n):
        seqid = i + 1
        kind = i % 8
        if kind == 0:
            plan.append(("add", t.Showcase.add_args(a=i, b=seqid), ("success", 2 * i + 1)))
        elif kind == 1:
            plan.append(("lookup", t.Showcase.lookup_args(key="missing"), ("not_found", 404)))
        elif kind == 2:
            plan.append(("fail", t.Showcase.fail_args(message="f%d" % seqid), ("error", "f%d" % seqid)))
        elif kind == 3:
            plan.append(
                ("sleep_async", t.Showcase.sleep_async_args(ms=(n - i) % 3), ("success", "slept %d ms" % ((n - i) % 3)))
            )
        elif kind == 4:
            plan.append(("sleep_blocking", t.Showcase.sleep_blocking_args(ms=0), ("success", "slept 0 ms")))
        elif kind == 5:
            plan.append(("record", t.Showcase.record_args(event="e%d" % seqid), None))
        elif kind == 6:
            plan.append(
                ("echo_shape", t.Showcase.echo_shape_args(shape=t.Shape(name="s%d" % seqid)), ("shape", "s%d" % seqid))
            )
        else:
            plan.append(("lookup", t.Showcase.lookup_args(key="k%d" % seqid), ("success", "K%d" % seqid)))
    return plan


@pytest.mark.parametrize("chunk", [None, 1], ids=["one-write", "byte-by-byte"])
@pytest.mark.parametrize("framed", [False, True], ids=["unframed", "framed"])
def test_pipelined_requests_reply_in_order(showcase_server, framed, chunk):
    n = 50
    plan = _pipeline(n)
    data = b"".join(
        encode_message(name, TMessageType.ONEWAY if expect is None else TMessageType.CALL, seqid, args, framed=framed)
        for seqid, (name, args, expect) in enumerate(plan, 1)
    )
    with Connection(showcase_server.port, framed, SAFETY_TIMEOUT, nodelay=True) as conn:
        if chunk is None:
            conn.send(data)
        else:
            for i in range(0, len(data), chunk):
                conn.send(data[i : i + chunk])
        expected = [(seqid, name, expect) for seqid, (name, _, expect) in enumerate(plan, 1) if expect is not None]
        got = [conn.read_message() for _ in expected]
        assert [(g[2], g[0]) for g in got] == [(seqid, name) for seqid, name, _ in expected]
        for (seqid, name, (what, value)), (_, mtype, _, body) in zip(expected, got, strict=True):
            if what == "error":
                assert mtype == TMessageType.EXCEPTION
                assert body.type == INTERNAL_ERROR and value in body.message
                continue
            assert mtype == TMessageType.REPLY, (seqid, name, body)
            if what == "success":
                assert body.success == value
            elif what == "not_found":
                assert body.success is None and body.not_found.code == value
            elif what == "shape":
                assert body.success.name == value
        # The oneway records all ran, in order, before the connection is used again.
        conn.send(encode_call("recorded", n + 1, framed))
        name, mtype, seqid, body = conn.read_message()
        assert (name, seqid) == ("recorded", n + 1)
        assert body.success == ["e%d" % (i + 1) for i in range(n) if plan[i][2] is None]


@pytest.mark.parametrize("framed", [False, True], ids=["unframed", "framed"])
def test_pipelined_many_small_calls_in_one_write(showcase_server, framed):
    n = 500
    data = b"".join(encode_call("add", i, framed, a=i, b=-1) for i in range(n))
    with Connection(showcase_server.port, framed, SAFETY_TIMEOUT) as conn:
        conn.send(data)
        got = [conn.read_message() for _ in range(n)]
        assert [g[2] for g in got] == list(range(n))
        assert [g[3].success for g in got] == [i - 1 for i in range(n)]
