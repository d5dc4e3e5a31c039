"""Dispatch outcomes: return, oneway, declared and undeclared exceptions, unknown methods, bad
return values, coroutine and blocking handlers, and the handler-loads-its-own-IDL idiom.

Ordering is proven with replies, events and joins, never with sleeps or read time-outs: the
socket time-outs below only turn a hang into a failure.
"""

import asyncio
import functools
import os
import struct
import threading

import pytest
import thriftpy2
import thriftpy2.rpc
from thriftpy2.thrift import TApplicationException, TMessageType

import dracula
from examples.showcase import ShowcaseHandler

from .helpers import IDL, showcase_thrift as t
from .wire_client import Connection, encode_call, encode_message

SHOWCASE_IDL = os.path.join(IDL, "showcase.thrift")
SAFETY_TIMEOUT = 10  # seconds: only so that a broken server fails the test instead of hanging it


@pytest.fixture
def client(showcase_server, dracula_client):
    return dracula_client(showcase_server, timeout=SAFETY_TIMEOUT)


# -- raw wire helpers ---------------------------------------------------------------------------


def raw_unknown(name, seqid, mtype=TMessageType.CALL, framed=False):
    """A call to a method no IDL here declares, by hand: strict header, a one-field struct."""
    raw_name = name.encode("utf-8")
    data = struct.pack("!iI", -0x7FFF0000 | mtype, len(raw_name)) + raw_name + struct.pack("!i", seqid)
    data += b"\x08\x00\x01\x00\x00\x00\x2a"  # field 1: i32 42, which no one expects
    data += b"\x00"  # STOP
    return struct.pack("!i", len(data)) + data if framed else data


# -- plain returns ------------------------------------------------------------------------------


def test_return_value(client):
    assert client.ping() is None
    assert client.add(40, 2) == 42
    assert client.lookup("key") == "KEY"


@pytest.mark.parametrize("framed", [False, True], ids=["unframed", "framed"])
def test_seqids_are_echoed_verbatim(showcase_server, framed):
    # Any i32 is a valid seqid, repeated or out of order; replies carry the request's own.
    seqids = [0, -1, 2**31 - 1, -(2**31), 7, 7, 3]
    with Connection(showcase_server.port, framed, timeout=SAFETY_TIMEOUT) as conn:
        conn.send(b"".join(encode_call("add", seqid, framed, a=i, b=0) for i, seqid in enumerate(seqids)))
        replies = [conn.read_message() for _ in seqids]
        assert [r[2] for r in replies] == seqids
        assert [r[3].success for r in replies] == list(range(len(seqids)))
        conn.send(raw_unknown("ünknown", -5, framed=framed))
        name, mtype, seqid, exc = conn.read_message()
        assert (name, mtype, seqid) == ("ünknown", TMessageType.EXCEPTION, -5)
        assert exc.type == TApplicationException.UNKNOWN_METHOD


def test_missing_result_for_non_void_method(backend, dracula_server, dracula_client):
    # A handler returning None from a non-void method: a REPLY without `success`; the client
    # reports MISSING_RESULT and the connection carries on.
    class Handler(ShowcaseHandler):
        def add(self, a, b):
            return None

    server = dracula_server(t.Showcase, Handler(), backend=backend)
    c = dracula_client(server)
    with pytest.raises(TApplicationException) as info:
        c.add(1, 2)
    assert info.value.type == TApplicationException.MISSING_RESULT
    assert c.lookup("ok") == "OK"


# -- oneway -------------------------------------------------------------------------------------


def test_oneway_then_call_on_same_client(client):
    assert client.record("first") is None
    assert client.record("second ü") is None
    assert client.recorded() == ["first", "second ü"]
    assert client.add(1, 1) == 2


@pytest.mark.parametrize("framed", [False, True], ids=["unframed", "framed"])
@pytest.mark.parametrize("mtype", [TMessageType.ONEWAY, TMessageType.CALL], ids=["ONEWAY", "CALL"])
def test_oneway_writes_nothing_back(showcase_server, framed, mtype):
    # thriftpy2 clients send oneway calls as CALL, Apache ones as ONEWAY: neither gets a reply.
    # The first reply bytes on the socket must belong to the call sent after the oneway ones.
    with Connection(showcase_server.port, framed, timeout=SAFETY_TIMEOUT) as conn:
        conn.send(
            encode_call("record", 1, framed, mtype=mtype, event="one")
            + encode_call("record", 2, framed, mtype=mtype, event="two")
            + encode_call("recorded", 3, framed)
        )
        name, rtype, seqid, result = conn.read_message()
        assert (name, rtype, seqid) == ("recorded", TMessageType.REPLY, 3)
        assert result.success == ["one", "two"]
        conn.send(encode_call("add", 4, framed, a=2, b=3))
        assert conn.read_message()[2:] == (4, t.Showcase.add_result(success=5))


def test_oneway_message_type_for_a_two_way_method_gets_no_reply(showcase_server):
    # A ONEWAY message is never answered, whatever method it names.
    with Connection(showcase_server.port, timeout=SAFETY_TIMEOUT) as conn:
        conn.send(encode_call("add", 1, mtype=TMessageType.ONEWAY, a=1, b=1) + encode_call("add", 2, a=2, b=2))
        name, mtype, seqid, result = conn.read_message()
        assert (name, mtype, seqid, result.success) == ("add", TMessageType.REPLY, 2, 4)


@pytest.mark.parametrize("framed", [False, True], ids=["unframed", "framed"])
def test_oneway_handler_that_raises_writes_nothing_and_keeps_connection(backend, framed, dracula_server):
    class Handler(ShowcaseHandler):
        def record(self, event):
            super().record(event)
            raise RuntimeError("oneway handler failed")

    handler = Handler()
    server = dracula_server(t.Showcase, handler, backend=backend)
    with Connection(server.port, framed, timeout=SAFETY_TIMEOUT) as conn:
        conn.send(
            encode_call("record", 1, framed, mtype=TMessageType.ONEWAY, event="x")
            + encode_call("record", 2, framed, mtype=TMessageType.CALL, event="y")
            + encode_call("recorded", 3, framed)
        )
        name, mtype, seqid, result = conn.read_message()
        assert (name, mtype, seqid, result.success) == ("recorded", TMessageType.REPLY, 3, ["x", "y"])


def test_oneway_to_unknown_method_gets_no_reply(showcase_server):
    with Connection(showcase_server.port, timeout=SAFETY_TIMEOUT) as conn:
        conn.send(raw_unknown("no_such_method", 1, TMessageType.ONEWAY) + encode_call("ping", 2))
        assert conn.read_message()[:3] == ("ping", TMessageType.REPLY, 2)


# -- declared exceptions ------------------------------------------------------------------------


def test_declared_exceptions_arrive_as_their_classes(client):
    with pytest.raises(t.NotFound) as info:
        client.lookup("missing")
    assert info.value.key == "missing"
    assert info.value.code == 404
    with pytest.raises(t.Invalid) as info:
        client.lookup("")
    assert info.value.reason == "empty key"
    assert client.lookup("found") == "FOUND"


def test_declared_exception_reply_on_the_wire(showcase_server):
    # A REPLY (not an EXCEPTION) whose result struct has exactly the exception's field set.
    with Connection(showcase_server.port, timeout=SAFETY_TIMEOUT) as conn:
        conn.send(encode_call("lookup", 7, key="missing") + encode_call("lookup", 8, key=""))
        name, mtype, seqid, result = conn.read_message()
        assert (name, mtype, seqid) == ("lookup", TMessageType.REPLY, 7)
        assert result.success is None and result.invalid is None
        assert (result.not_found.key, result.not_found.code) == ("missing", 404)
        name, mtype, seqid, result = conn.read_message()
        assert (name, mtype, seqid) == ("lookup", TMessageType.REPLY, 8)
        assert result.success is None and result.not_found is None
        assert result.invalid.reason == "empty key"


def _other_name_handler():
    """A handler module that loads the IDL under a module name of its own (the common idiom)."""
    other = thriftpy2.load(SHOWCASE_IDL, module_name="other_name_thrift")
    assert other.NotFound is not t.NotFound

    class OtherHandler:
        def ping(self):
            return None

        def lookup(self, key):
            if key == "missing":
                raise other.NotFound(key=key, code=410)
            if not key:
                raise other.Invalid(reason="blank")
            return key

        def shapes(self, n):
            return [
                other.Shape(name=str(i), points=[other.Point(x=i, y=i)], color=other.Color.BLUE, tags={i}, blob=b"b")
                for i in range(n)
            ]

        def echo_scalars(self, s):
            return other.Scalars(flag=s.flag, text=s.text, color=other.Color.GREEN)

    return OtherHandler()


def test_exceptions_from_a_handler_that_loaded_the_idl_under_another_name(backend, dracula_server, dracula_client):
    server = dracula_server(t.Showcase, _other_name_handler(), backend=backend)
    c = dracula_client(server)
    with pytest.raises(t.NotFound) as info:
        c.lookup("missing")
    assert (info.value.key, info.value.code) == ("missing", 410)
    with pytest.raises(t.Invalid) as info:
        c.lookup("")
    assert info.value.reason == "blank"
    shapes = c.shapes(2)
    assert [s.name for s in shapes] == ["0", "1"]
    assert shapes[1].points == [t.Point(x=1, y=1)] and shapes[1].color == t.Color.BLUE
    got = c.echo_scalars(t.Scalars(flag=True, text="z"))
    assert (got.flag, got.text, got.color) == (True, "z", t.Color.GREEN)
    assert c.ping() is None


def test_showcase_example_handler_uses_its_own_idl_module():
    # The premise of the idiom tests: examples/showcase.py raises classes from its own load.
    from examples import showcase

    assert showcase.showcase_thrift.NotFound is not t.NotFound


def test_look_alike_exception_without_thrift_spec_is_undeclared(backend, dracula_server, dracula_client):
    # Same class name as a declared exception, but a plain Python exception: not declared.
    class NotFound(Exception):
        pass

    class Handler(ShowcaseHandler):
        def lookup(self, key):
            raise NotFound("plain python")

    server = dracula_server(t.Showcase, Handler(), backend=backend)
    c = dracula_client(server)
    with pytest.raises(TApplicationException) as info:
        c.lookup("x")
    assert info.value.type == TApplicationException.INTERNAL_ERROR
    assert "plain python" in info.value.message
    assert c.ping() is None


def test_exception_declared_by_another_method_is_undeclared_here(backend, dracula_server, dracula_client):
    # NotFound is declared by lookup, not by add: raised from add it is an undeclared error.
    class Handler(ShowcaseHandler):
        def add(self, a, b):
            raise t.NotFound(key="k", code=1)

    server = dracula_server(t.Showcase, Handler(), backend=backend)
    c = dracula_client(server)
    with pytest.raises(TApplicationException) as info:
        c.add(1, 2)
    assert info.value.type == TApplicationException.INTERNAL_ERROR
    assert c.lookup("a") == "A"


def test_handler_raising_tapplicationexception_passes_it_through(backend, dracula_server, dracula_client):
    class Handler(ShowcaseHandler):
        def add(self, a, b):
            raise TApplicationException(TApplicationException.BAD_SEQUENCE_ID, "custom refusal")

    server = dracula_server(t.Showcase, Handler(), backend=backend)
    c = dracula_client(server)
    with pytest.raises(TApplicationException) as info:
        c.add(1, 2)
    assert info.value.type == TApplicationException.BAD_SEQUENCE_ID
    assert info.value.message == "custom refusal"
    assert c.ping() is None


# -- undeclared exceptions, unknown methods, wrong return types ---------------------------------


def test_undeclared_exception_is_internal_error_and_connection_stays_open(client):
    with pytest.raises(TApplicationException) as info:
        client.fail("the handler's own message")
    assert info.value.type == TApplicationException.INTERNAL_ERROR
    assert "the handler's own message" in info.value.message
    assert client.add(2, 2) == 4
    with pytest.raises(TApplicationException) as info:
        client.fail("again")
    assert info.value.type == TApplicationException.INTERNAL_ERROR
    assert client.ping() is None


@pytest.mark.parametrize("framed", [False, True], ids=["unframed", "framed"])
def test_undeclared_exception_on_the_wire(showcase_server, framed):
    with Connection(showcase_server.port, framed, timeout=SAFETY_TIMEOUT) as conn:
        conn.send(encode_call("fail", 11, framed, message="kaboom") + encode_call("add", 12, framed, a=1, b=2))
        name, mtype, seqid, exc = conn.read_message()
        assert (name, mtype, seqid) == ("fail", TMessageType.EXCEPTION, 11)
        assert exc.type == TApplicationException.INTERNAL_ERROR and "kaboom" in exc.message
        name, mtype, seqid, result = conn.read_message()
        assert (name, mtype, seqid, result.success) == ("add", TMessageType.REPLY, 12, 3)


def test_unknown_method_from_a_second_idl(showcase_server, tmp_path):
    # A client built from an IDL with one more method than the server serves.
    with open(SHOWCASE_IDL) as f:
        text = f.read()
    assert text.rstrip().endswith("}")
    extended = text.rstrip()[:-1] + "    i32 not_served(1: i32 x),\n}\n"
    path = tmp_path / "showcase_plus.thrift"
    path.write_text(extended)
    plus = thriftpy2.load(str(path), module_name="showcase_plus_thrift")
    c = thriftpy2.rpc.make_client(plus.Showcase, "127.0.0.1", showcase_server.port, timeout=SAFETY_TIMEOUT * 1000)
    try:
        with pytest.raises(TApplicationException) as info:
            c.not_served(1)
        assert info.value.type == TApplicationException.UNKNOWN_METHOD
        assert "not_served" in info.value.message
        assert c.add(3, 4) == 7
        with pytest.raises(plus.NotFound):
            c.lookup("missing")
    finally:
        c.close()


@pytest.mark.parametrize("framed", [False, True], ids=["unframed", "framed"])
def test_unknown_method_by_hand_keeps_connection(showcase_server, framed):
    with Connection(showcase_server.port, framed, timeout=SAFETY_TIMEOUT) as conn:
        conn.send(raw_unknown("no_such_method", 21, framed=framed) + encode_call("add", 22, framed, a=5, b=6))
        name, mtype, seqid, exc = conn.read_message()
        assert (name, mtype, seqid) == ("no_such_method", TMessageType.EXCEPTION, 21)
        assert exc.type == TApplicationException.UNKNOWN_METHOD
        name, mtype, seqid, result = conn.read_message()
        assert (name, mtype, seqid, result.success) == ("add", TMessageType.REPLY, 22, 11)


def test_method_the_handler_does_not_implement_is_unknown(backend, dracula_server, dracula_client):
    class Partial:
        def ping(self):
            return None

    server = dracula_server(t.Showcase, Partial(), backend=backend)
    c = dracula_client(server)
    with pytest.raises(TApplicationException) as info:
        c.add(1, 2)
    assert info.value.type == TApplicationException.UNKNOWN_METHOD
    assert c.ping() is None


def test_wrong_return_type_is_internal_error_and_next_call_is_fine(client):
    with pytest.raises(TApplicationException) as info:
        client.wrong_type()
    assert info.value.type == TApplicationException.INTERNAL_ERROR
    assert client.echo_scalars(t.Scalars(medium=5, text="ok")) == t.Scalars(medium=5, text="ok")
    assert client.add(1, 2) == 3


def test_wrong_type_deep_inside_a_container(backend, dracula_server):
    # The encoder fails half-way through a reply: nothing half-written may reach the client.
    class Handler(ShowcaseHandler):
        def shapes(self, n):
            good = super().shapes(n)
            return [*good, t.Shape(name="bad", points=[t.Point(x="not an int", y=0)])]

    server = dracula_server(t.Showcase, Handler(), backend=backend)
    with Connection(server.port, timeout=SAFETY_TIMEOUT) as conn:
        conn.send(encode_call("shapes", 1, n=50) + encode_call("echo_shape", 2, shape=t.Shape(name="next")))
        name, mtype, seqid, exc = conn.read_message()
        assert (name, mtype, seqid) == ("shapes", TMessageType.EXCEPTION, 1)
        assert exc.type == TApplicationException.INTERNAL_ERROR
        name, mtype, seqid, result = conn.read_message()
        assert (name, mtype, seqid) == ("echo_shape", TMessageType.REPLY, 2)
        assert result.success.name == "next" and result.success.points is None


def _raise_unencodable(problem):
    if problem == "declared-bad-field":
        raise t.NotFound(key="k", code="not an i32")  # declared, but its field cannot be encoded
    # Undeclared, with a message that cannot be encoded as UTF-8: os.fsdecode() of a file name
    # that is not UTF-8 gives such a string (a lone surrogate), and handlers format names into
    # their error messages all the time.
    raise ValueError("cannot open %s" % os.fsdecode(b"/srv/caf\xe9.txt"))


def _outcome(fn, *args):
    try:
        return ("returned", fn(*args))
    except Exception as e:  # the test compares outcomes after the server is gone
        return ("raised", e)


def _join_dead_connection_threads():
    """Let server connection threads that died of an uncaught exception finish printing it.

    On CPython 3.11 a thread formatting a traceback while pytest formats one in the main thread
    can crash the whole session ("SystemError: AST constructor recursion depth mismatch"), so
    tests that may make the server's threads die settle them before asserting."""
    for thread in threading.enumerate():
        if thread.name == "dracula-conn":
            thread.join(SAFETY_TIMEOUT)


@pytest.mark.parametrize("problem", ["declared-bad-field", "undeclared-unencodable-message"])
@pytest.mark.parametrize("kind", ["sync", "async", "blocking"])
def test_exception_that_cannot_be_encoded_is_internal_error_and_connection_survives(
    backend, kind, problem, dracula_server, dracula_client
):
    # Like a return value of the wrong type, an exception the codec cannot write must become an
    # INTERNAL_ERROR reply on a connection that stays usable: not a dropped connection, and not
    # a call that never gets any reply.
    class Handler(ShowcaseHandler):
        if kind == "sync":

            def lookup(self, key):
                _raise_unencodable(problem)
        elif kind == "async":

            async def lookup(self, key):
                _raise_unencodable(problem)
        else:

            @dracula.blocking
            def lookup(self, key):
                _raise_unencodable(problem)

    server = dracula_server(t.Showcase, Handler(), backend=backend, graceful_timeout=1)
    c = dracula_client(server, timeout=3)  # a call that hangs fails in 3 s, not 10
    failed = _outcome(c.lookup, "k")
    if failed[0] == "raised" and not isinstance(failed[1], TApplicationException):
        then_ping = then_add = ("not tried: the connection is broken", failed[1])
    else:
        then_ping = _outcome(c.ping)
        then_add = _outcome(c.add, 1, 2)
    c.close()  # its server connection thread ends: settle it before asserting
    _join_dead_connection_threads()
    assert failed[0] == "raised" and isinstance(failed[1], TApplicationException), failed
    assert failed[1].type == TApplicationException.INTERNAL_ERROR, failed
    assert then_ping == ("returned", None)
    assert then_add == ("returned", 3)


def test_invalid_message_type_is_refused_and_connection_kept(showcase_server):
    # A REPLY sent to the server is not a call.
    with Connection(showcase_server.port, timeout=SAFETY_TIMEOUT) as conn:
        conn.send(encode_call("add", 31, mtype=TMessageType.REPLY, a=1, b=1) + encode_call("add", 32, a=2, b=2))
        _name, mtype, seqid, exc = conn.read_message()
        assert (mtype, seqid) == (TMessageType.EXCEPTION, 31)
        assert exc.type == TApplicationException.INVALID_MESSAGE_TYPE
        assert conn.read_message()[2:] == (32, t.Showcase.add_result(success=4))


# -- coroutine and blocking handlers ------------------------------------------------------------


def test_async_and_blocking_handlers_return(client):
    assert client.sleep_async(1) == "slept 1 ms"
    assert client.sleep_blocking(1) == "slept 1 ms"
    assert client.sleep_async(0) == "slept 0 ms"
    assert client.ping() is None


def test_async_and_blocking_handler_exceptions(backend, dracula_server, dracula_client):
    class Handler(ShowcaseHandler):
        async def lookup(self, key):
            await asyncio.sleep(0)
            if key == "missing":
                raise t.NotFound(key=key, code=1)
            raise ValueError("async says no")

        @dracula.blocking
        def fail(self, message):
            raise RuntimeError("blocking: " + message)

        @dracula.blocking
        def add(self, a, b):
            return a + b

    server = dracula_server(t.Showcase, Handler(), backend=backend)
    c = dracula_client(server)
    with pytest.raises(t.NotFound):
        c.lookup("missing")
    with pytest.raises(TApplicationException) as info:
        c.lookup("x")
    assert info.value.type == TApplicationException.INTERNAL_ERROR
    assert "async says no" in info.value.message
    with pytest.raises(TApplicationException) as info:
        c.fail("m")
    assert info.value.type == TApplicationException.INTERNAL_ERROR
    assert "blocking: m" in info.value.message
    assert c.add(2, 5) == 7


def test_async_and_blocking_wrong_return_types(backend, dracula_server, dracula_client):
    class Handler(ShowcaseHandler):
        async def wrong_type(self):
            await asyncio.sleep(0)
            return 5

        @dracula.blocking
        def echo_scalars(self, s):
            return ["not", "a", "struct"]

    server = dracula_server(t.Showcase, Handler(), backend=backend)
    c = dracula_client(server)
    for call_it in (c.wrong_type, lambda: c.echo_scalars(t.Scalars())):
        with pytest.raises(TApplicationException) as info:
            call_it()
        assert info.value.type == TApplicationException.INTERNAL_ERROR
        assert c.add(1, 1) == 2


def plain_decorator(fn):
    """The everyday logging/metrics decorator: a plain function that returns what fn returns."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


def test_coroutine_handler_behind_a_plain_decorator_is_awaited(backend, dracula_server, dracula_client):
    # thriftpy2's own asyncio server awaits whatever a handler method returns, so aio handlers
    # wrapped in ordinary (non-async) decorators work there: moving the same handler object to
    # dracula must not turn them into INTERNAL_ERRORs or, for void methods, into calls that
    # silently never run.
    ran = []

    class Handler(ShowcaseHandler):
        @plain_decorator
        async def lookup(self, key):
            await asyncio.sleep(0)
            if key == "missing":
                raise t.NotFound(key=key, code=7)
            return key + "!"

        @plain_decorator
        async def ping(self):
            await asyncio.sleep(0)
            ran.append("ping")

    server = dracula_server(t.Showcase, Handler(), backend=backend)
    c = dracula_client(server)
    assert c.lookup("k") == "k!"
    with pytest.raises(t.NotFound):
        c.lookup("missing")
    assert c.ping() is None
    assert ran == ["ping"]


class GatedHandler(ShowcaseHandler):
    """sleep_blocking / sleep_async that say when they have started and then wait for the test."""

    def __init__(self):
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.loop = None
        self.async_release = None
        self.pinged = threading.Event()

    def ping(self):
        self.pinged.set()

    @dracula.blocking
    def sleep_blocking(self, ms):
        self.entered.set()
        assert self.release.wait(SAFETY_TIMEOUT), "never released"
        return "released %d" % ms

    async def sleep_async(self, ms):
        self.loop = asyncio.get_running_loop()
        self.async_release = asyncio.Event()
        self.entered.set()
        await asyncio.wait_for(self.async_release.wait(), SAFETY_TIMEOUT)
        return "released %d" % ms

    def open_gate(self):
        self.release.set()
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.async_release.set)


@pytest.mark.parametrize("method", ["sleep_blocking", "sleep_async"])
def test_slow_call_does_not_stall_other_connections(backend, method, dracula_server, dracula_client):
    handler = GatedHandler()
    server = dracula_server(t.Showcase, handler, backend=backend)
    a, b = dracula_client(server), dracula_client(server)
    outcome = []
    caller = threading.Thread(target=lambda: outcome.append(getattr(a, method)(2000)))
    try:
        caller.start()
        assert handler.entered.wait(SAFETY_TIMEOUT), "the slow call never reached its handler"
        # A's call is in its handler and cannot finish until the gate opens: B must be served.
        assert b.ping() is None
        assert b.add(1, 2) == 3
        assert b.lookup("b") == "B"
        assert caller.is_alive() and outcome == []
        handler.open_gate()
        caller.join(SAFETY_TIMEOUT)
        assert not caller.is_alive()
        assert outcome == ["released 2000"]
        assert a.ping() is None
    finally:
        handler.open_gate()
        caller.join(SAFETY_TIMEOUT)


def test_showcase_sleep_blocking_does_not_stall_another_connection(showcase_server, dracula_client):
    # The brief's form, with the stock handler: B's ping returns while A's 2 s call is in flight.
    a, b = dracula_client(showcase_server), dracula_client(showcase_server)
    result = []
    started = threading.Event()

    def slow():
        started.set()
        result.append(a.sleep_blocking(2000))

    caller = threading.Thread(target=slow)
    try:
        caller.start()
        assert started.wait(SAFETY_TIMEOUT)
        assert b.ping() is None
        assert caller.is_alive() and result == []
        caller.join(SAFETY_TIMEOUT)
        assert result == ["slept 2000 ms"]
    finally:
        caller.join(SAFETY_TIMEOUT)


@pytest.mark.parametrize("method", ["sleep_blocking", "sleep_async"])
@pytest.mark.parametrize("framed", [False, True], ids=["unframed", "framed"])
def test_replies_keep_request_order_behind_a_slow_call(backend, method, framed, dracula_server):
    # On one connection: a slow call, then quick ones. The quick ones may run first (the uv
    # backend runs them while the slow one is parked), but their replies must wait their turn.
    handler = GatedHandler()
    server = dracula_server(t.Showcase, handler, backend=backend)
    with Connection(server.port, framed, timeout=SAFETY_TIMEOUT) as conn:
        conn.send(
            encode_call(method, 1, framed, ms=5)
            + encode_call("ping", 2, framed)
            + encode_call("add", 3, framed, a=1, b=2)
            + encode_call("fail", 4, framed, message="f")
        )
        assert handler.entered.wait(SAFETY_TIMEOUT)
        if backend == "uv":
            assert handler.pinged.wait(SAFETY_TIMEOUT), "uv did not run the next call meanwhile"
        handler.open_gate()
        replies = [conn.read_message() for _ in range(4)]
        assert [r[2] for r in replies] == [1, 2, 3, 4]
        assert [r[0] for r in replies] == [method, "ping", "add", "fail"]
        assert replies[0][3].success == "released 5"
        assert replies[2][3].success == 3
        assert replies[3][1] == TMessageType.EXCEPTION


def test_many_concurrent_async_calls_on_one_connection_keep_order(showcase_server):
    # Later calls sleep less, so they finish first; replies must still leave in request order.
    n = 20
    with Connection(showcase_server.port, timeout=SAFETY_TIMEOUT) as conn:
        conn.send(b"".join(encode_call("sleep_async", i, ms=(n - i) % 4) for i in range(n)))
        replies = [conn.read_message() for _ in range(n)]
        assert [r[2] for r in replies] == list(range(n))
        assert [r[3].success for r in replies] == ["slept %d ms" % ((n - i) % 4) for i in range(n)]


# -- multiplexed names --------------------------------------------------------------------------


def test_multiplexed_method_names_route_to_the_service(showcase_server):
    with Connection(showcase_server.port, timeout=SAFETY_TIMEOUT) as conn:
        conn.send(
            encode_message("Showcase:add", TMessageType.CALL, 1, t.Showcase.add_args(a=20, b=22))
            + encode_message("Nope:add", TMessageType.CALL, 2, t.Showcase.add_args(a=1, b=1))
        )
        _name, mtype, seqid, result = conn.read_message()
        assert (mtype, seqid) == (TMessageType.REPLY, 1)
        assert result.success == 42
        _name, mtype, seqid, exc = conn.read_message()
        assert (mtype, seqid) == (TMessageType.EXCEPTION, 2)
        assert exc.type == TApplicationException.UNKNOWN_METHOD
