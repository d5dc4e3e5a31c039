"""The compiled fast path of plain calls (dracula/server/_cfast.pyx) against the general path.

The same byte streams go to two servers that differ only in `state.fast_path`, through each
backend's real per-connection code over fake sockets (as benchmarks/call_cost.py drives them);
what comes back (every reply byte, and whether the connection was closed) must be identical.
The streams mix every outcome the fast path hands on: declared and undeclared exceptions,
SystemExit, oneway, unknown methods, async and @blocking methods, a plain method that returns a
coroutine, a value of the wrong type, arguments that do not decode, handlers that read their
context or set THeader response headers; in unframed, framed and THeader transports, arriving
in random pieces.
"""

from __future__ import annotations

import asyncio
import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from thriftpy2.protocol.binary import TBinaryProtocol
from thriftpy2.thrift import TMessageType
from thriftpy2.transport.memory import TMemoryBuffer

import dracula
from dracula.server.backends.threaded import _Conn
from dracula.server.backends.uv_connection import Connection, Reactor
from dracula.server.state import FAST_PATH
from dracula.server.thread_pool import HandlerPool
from dracula.wire.theader import request_frame
from dracula.wire.theader_frame import INFO_PKEYVALUE
from examples.showcase import ShowcaseHandler
from tests import theader_frames
from tests.helpers import showcase_thrift

pytestmark = pytest.mark.skipif(not FAST_PATH, reason="the compiled fast path is not built (or DRACULA_PURE_PYTHON=1)")

Showcase = showcase_thrift.Showcase


async def _later(data):
    return data[::-1]


class Handler(ShowcaseHandler):
    """Showcase's handler, with context reads, response headers and a plain method returning a
    coroutine where the fast path must hand the call on."""

    def reverse(self, data):
        if data == b"coro":
            return _later(data)  # a plain method that turns out to be async
        if data == b"ctx":
            dracula.current_call().response_headers["seen"] = "yes"
        return data[::-1]

    def lookup(self, key):
        if key == "ctx":
            call = dracula.current_call()
            return "%s.%s %s %s %s" % (
                call.service,
                call.method,
                sorted(call.headers.items()),
                call.deadline is not None,
                call.peer,
            )
        return super().lookup(key)

    def fail(self, message):
        if message == "exit":
            raise SystemExit(3)
        raise RuntimeError(message)


def _call(name, seqid=1, mtype=TMessageType.CALL, service=Showcase, **kwargs):
    buf = TMemoryBuffer()
    proto = TBinaryProtocol(buf)
    proto.write_message_begin(name, mtype, seqid)
    args_cls = getattr(service, name + "_args", None)
    if args_cls is None:  # an unknown method: a struct with no fields
        proto.write_struct(Showcase.ping_args())
    else:
        proto.write_struct(args_cls(**kwargs))
    proto.write_message_end()
    return buf.getvalue()


P = showcase_thrift.Point
CALLS = [
    _call("ping"),
    _call("add", a=2, b=40),
    _call("echo_shape", shape=showcase_thrift.Shape(name="s", points=[P(x=1, y=2)], tags={1, 2}, blob=b"\0\1")),
    _call("echo_scalars", s=showcase_thrift.Scalars(flag=True, tiny=-1, small=300, real=1.5, text="é", raw=b"r")),
    _call("lookup", key="found"),
    _call("lookup", key="missing"),  # a declared exception
    _call("lookup", key=""),  # the other declared exception
    _call("lookup", key="ctx"),  # reads its context
    _call("fail", message="boom"),  # undeclared: INTERNAL_ERROR
    _call("fail", message="exit"),  # SystemExit
    _call("record", event="e"),  # oneway
    _call("recorded"),
    _call("record", mtype=TMessageType.ONEWAY, event="o"),
    _call("wrong_type"),  # a value its IDL type cannot encode
    _call("reverse", data=b"abc"),
    _call("reverse", data=b"ctx"),  # sets a response header
    _call("reverse", data=b"coro"),  # returns a coroutine
    _call("sleep_async", ms=0),
    _call("sleep_blocking", ms=0),
    _call("nope"),  # unknown method
    _call("ping", mtype=TMessageType.REPLY),  # not a call
    _call("ping", seqid=-5),
    _call("shapes", n=3),
    _call("nested", value={1: {"a": [{1, 2}]}}),
]
# Arguments that do not decode: a string field sent where the i64 goes, and a truncated struct.
BAD_ARGS = [
    _call("add", a=1, b=2).replace(b"\x0a\x00\x01", b"\x0b\x00\x01", 1),
    _call("lookup", key="k")[:-3] + b"\x00",
]


def _frame(message, transport, seqid, headers):
    if transport == "framed":
        return struct.pack("!I", len(message)) + message
    if transport == "theader":
        return request_frame(message, "binary", headers, seqid=seqid)
    return message


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()
        self.closed = False

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 40000) if name == "peername" else default

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data) -> None:
        self.data += data

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


class FakeSocket:
    def __init__(self, pieces) -> None:
        self.pieces = list(pieces)
        self.data = bytearray()

    def settimeout(self, seconds) -> None:
        pass

    def recv_into(self, view) -> int:
        if not self.pieces:
            return 0
        piece = self.pieces[0]
        n = min(len(piece), len(view))
        view[:n] = piece[:n]
        if n < len(piece):
            self.pieces[0] = piece[n:]
        else:
            self.pieces.pop(0)
        return n

    def sendall(self, data) -> None:
        self.data += data

    def close(self) -> None:
        pass


SERVERS = {}


def _server(backend, fast):
    """One server per backend and path for the module (their handlers see the same calls in the
    same order, so their state stays the same)."""
    key = (backend, fast)
    if key not in SERVERS:
        config = dracula.Config(host="127.0.0.1", port=0, backend=backend, log_level="critical", inline_budget=0)
        server = dracula.Server([("Showcase", Showcase, Handler())], config)
        server.sock.close()
        server.state.fast_path = fast and server.state.fast_path
        SERVERS[key] = server
    return SERVERS[key]


def _serve_uv(server, pieces):
    loop = asyncio.new_event_loop()
    try:
        conn = Connection(server.state, Reactor(loop, HandlerPool(1)))
        transport = FakeTransport()
        conn.connection_made(transport)

        async def feed():
            for piece in pieces:
                if transport.closed:
                    break
                view = conn.get_buffer(65536)
                while len(view) < len(piece):  # the buffer grows as libuv's reads fill it
                    view[:] = piece[: len(view)]
                    conn.buffer_updated(len(view))
                    piece = piece[len(view) :]
                    view = conn.get_buffer(65536)
                view[: len(piece)] = piece
                conn.buffer_updated(len(piece))
                await asyncio.sleep(0)
            for _ in range(200):  # replies of tasks and pool threads
                if not (conn.slots or conn.later):
                    break
                await asyncio.sleep(0.005)

        loop.run_until_complete(feed())
        fast = conn.fast is not None
        conn.connection_lost(None)
        return bytes(transport.data), transport.closed, fast
    finally:
        loop.close()


def _serve_thread(server, pieces):
    sock = FakeSocket(pieces)
    conn = _Conn(sock, ("127.0.0.1", 40000))
    server._backend._read_loop(conn)
    return bytes(sock.data), None, conn.fast is not None


def _stream(draw_calls, transport):
    return b"".join(
        _frame(message, transport, seqid, {"client_timeout": "60000", "k": "v"} if seqid % 2 else None)
        for seqid, message in enumerate(draw_calls)
    )


@st.composite
def streams(draw):
    transport = draw(st.sampled_from(["unframed", "framed", "theader"]))
    choices = CALLS + (BAD_ARGS if transport != "unframed" else [])  # unframed: a bad body may end it anywhere
    messages = draw(st.lists(st.sampled_from(choices), min_size=1, max_size=12))
    data = _stream(messages, transport)
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=6))))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True) if b > a]
    return transport, pieces


@pytest.mark.parametrize("backend", ["uv", "thread"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=streams())
def test_same_replies(backend, case):
    _transport, pieces = case
    serve = _serve_uv if backend == "uv" else _serve_thread
    general = serve(_server(backend, False), pieces)
    compiled = serve(_server(backend, True), pieces)
    assert compiled[:2] == general[:2]
    assert not general[2]


@pytest.mark.parametrize("backend", ["uv", "thread"])
@pytest.mark.parametrize("transport", ["unframed", "framed", "theader"])
def test_every_call_alike(backend, transport):
    """Each listed call, one connection each, then all of them pipelined in one read."""
    serve = _serve_uv if backend == "uv" else _serve_thread
    messages = CALLS + (BAD_ARGS if transport != "unframed" else [])
    for message in messages:
        data = _stream([_call("ping"), message, _call("ping", seqid=9)], transport)
        general = serve(_server(backend, False), [data])
        compiled = serve(_server(backend, True), [data])
        assert compiled[:2] == general[:2], message
        assert compiled[2]  # the fast path was there to take it
    data = _stream(messages, transport)
    assert serve(_server(backend, True), [data])[:2] == serve(_server(backend, False), [data])[:2]


@pytest.mark.parametrize("backend", ["uv", "thread"])
def test_refusals_alike(backend):
    """Wire refusals after the first message (where the fast path reads): an oversized frame,
    a frame whose message overruns it, garbage in place of a message."""
    serve = _serve_uv if backend == "uv" else _serve_thread
    ping = _call("ping")
    framed = struct.pack("!I", len(ping)) + ping
    cases = [
        framed + struct.pack("!I", 1 << 30),
        framed + struct.pack("!I", 6) + ping[:6],
        framed + struct.pack("!I", len(ping) - 2) + ping[:-2] + framed,
        ping + b"\x80\x01\x00\x01\xff\xff\xff\xff",
        ping + b"\x00\x00\x00\x04ping\x01" + b"\x00" * 8,
        ping + ping[:-1] + b"\x0c",
    ]
    for data in cases:
        for cut in (len(data), len(ping) + 3):
            pieces = [data[:cut], data[cut:]] if cut < len(data) else [data]
            general = serve(_server(backend, False), pieces)
            compiled = serve(_server(backend, True), pieces)
            assert compiled[:2] == general[:2], data


@pytest.mark.parametrize("backend", ["uv", "thread"])
def test_theader_refusals_alike(backend):
    """THeader frames after the first: a zlib payload (inflated by the Reader), a compact
    payload on a binary connection, a header that cannot be read, an unknown transform,
    persistent headers, a frame whose message overruns its payload, and garbage."""
    serve = _serve_uv if backend == "uv" else _serve_thread
    first = theader_frames.ping_frame(seqid=1)
    persistent = theader_frames.info(INFO_PKEYVALUE, {b"p": b"1"})
    cases = [
        theader_frames.ping_frame(transforms=(1,), seqid=2),
        theader_frames.ping_frame("compact", seqid=3),
        theader_frames.ping_frame(transforms=(3,), seqid=4),
        theader_frames.ping_frame(extra=persistent, seqid=5) + _frame(_call("lookup", key="ctx"), "theader", 6, None),
        theader_frames.raw_frame(b"\x00\x00", theader_frames.ping_payload()[:-3], seqid=7),
        theader_frames.raw_frame(b"\x00\x00", b"\x80\x01\x00\x01\xff\xff", seqid=8),
        b"\x00\x00\x00\x10\x0f\x00" + bytes(14),
        theader_frames.raw_frame(b"\x00\x00", theader_frames.ping_payload(), words=200),
    ]
    for case in cases:
        data = first + case + first
        general = serve(_server(backend, False), [data])
        compiled = serve(_server(backend, True), [data])
        assert compiled[:2] == general[:2], case


def test_off_where_it_must_be():
    """No fast path with middleware or an overload policy (they hook every call), nor with
    DRACULA_PURE_PYTHON=1 (tested by running the suite so)."""
    observed = dracula.Server(
        [("Showcase", Showcase, Handler())],
        dracula.Config(host="127.0.0.1", port=0, backend="uv", max_requests=10),
    )
    observed.sock.close()
    assert observed.state.fast_path is False
    assert os.environ.get("DRACULA_PURE_PYTHON") != "1"
