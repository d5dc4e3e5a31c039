"""One contract for both backends' connection logic, without a network (issue #20).

Each test builds a real ServerState, Dispatcher and Config for the Showcase service and drives
one backend's per-connection code through a fake network (tests/fake_network.py): the uv
backend's Connection through a MockTransport on a real uvloop loop, the thread backend's
per-connection thread through a FakeSocket. The same assertions hold for both, as uvicorn tests
its protocols against both HTTP implementations; where a backend shows a case differently (the
uv backend's clock is injectable, the thread backend's socket timeouts are not), the test says so.

Replies are decoded with thriftpy2 and checked by value; every wait is on an event with a time
limit, never a sleep.
"""

from __future__ import annotations

import logging
import threading

import pytest
from thriftpy2.thrift import TApplicationException, TMessageType

import dracula
from dracula.wire.errors import AppError
from examples.showcase import ShowcaseHandler

from .fake_network import RIGS, WAIT, UVRig
from .helpers import BACKENDS, showcase_thrift
from .wire_client import encode_call, encode_message


class GatedHandler(ShowcaseHandler):
    """The Showcase handler, with sleep_blocking held until the test opens `gate`."""

    def __init__(self):
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    @dracula.blocking
    def sleep_blocking(self, ms):
        self.entered.set()
        if not self.gate.wait(WAIT * 2):
            raise RuntimeError("the test never opened the gate")
        return "released"


def call(method, seqid, **kwargs) -> bytes:
    """A framed strict-binary call of Showcase.`method`."""
    return encode_call(method, seqid, framed=True, **kwargs)


def held(handler) -> None:
    """Wait until the held @blocking call is running."""
    assert handler.entered.wait(WAIT), "sleep_blocking never started"


def reply(kind, name, seqid, value):
    return (kind, name, seqid, value)


def app_error(r, app_type, seqid):
    """`r` is a TApplicationException reply of `app_type` to call `seqid`."""
    assert r.kind == "exception", r
    assert r.seqid == seqid
    assert isinstance(r.value, TApplicationException)
    assert r.value.type == app_type, (r.value.type, r.value.message)
    return r.value.message


@pytest.fixture
def handler():
    return GatedHandler()


@pytest.fixture(params=BACKENDS)
def make_rig(request, handler):
    """make_rig(**config): the parametrized backend's rig serving `handler`, closed at teardown."""
    rigs = []

    def make(**options):
        rig = RIGS[request.param](handler, **options)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.close()


@pytest.fixture
def refused(caplog):
    caplog.set_level(logging.WARNING, logger="dracula.refused")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "dracula.refused"]


# -- 1. framing: one call, one byte at a time, pipelined ------------------------------------------


def test_one_call_gets_one_reply_with_its_seqid(make_rig):
    peer = make_rig().connect()
    peer.send(call("add", 7, a=40, b=2))
    assert peer.wait_replies(1) == [reply("reply", "add", 7, 42)]
    peer.settle()
    assert len(peer.replies) == 1
    assert not peer.closed


def test_a_call_sent_one_byte_at_a_time(make_rig):
    peer = make_rig().connect()
    peer.send(call("add", 1, a=2**40, b=-1), piece=1)
    peer.send(call("lookup", 2, key="missing"), piece=1)
    first, second = peer.wait_replies(2)
    assert first == reply("reply", "add", 1, 2**40 - 1)
    assert second.seqid == 2
    assert isinstance(second.value, showcase_thrift.NotFound)
    assert (second.value.key, second.value.code) == ("missing", 404)
    assert not peer.closed


def test_100_pipelined_calls_in_one_read_get_100_replies_in_order_in_one_write(make_rig):
    peer = make_rig().connect()
    peer.send(b"".join(call("add", seqid, a=seqid, b=1000) for seqid in range(1, 101)))
    replies = peer.wait_replies(100)
    assert [r.seqid for r in replies] == list(range(1, 101))
    assert [r.value for r in replies] == [seqid + 1000 for seqid in range(1, 101)]
    assert peer.sends == 1  # the thread backend batches a read's replies too
    assert not peer.closed


# -- 2. unknown method ------------------------------------------------------------------------------


def test_unknown_method_is_answered_and_the_connection_kept(make_rig):
    peer = make_rig().connect()
    peer.send(encode_message("no_such_method", TMessageType.CALL, 3, showcase_thrift.Showcase.ping_args(), framed=True))
    [r] = peer.wait_replies(1)
    assert "no_such_method" in app_error(r, TApplicationException.UNKNOWN_METHOD, 3)
    assert not peer.closed
    peer.send(call("add", 4, a=1, b=2))
    assert peer.wait_replies(2)[1] == reply("reply", "add", 4, 3)


# -- 3. a frame over --max-frame-size -------------------------------------------------------------


def test_frame_over_max_frame_size_is_logged_and_closed_with_nothing_written(make_rig, refused):
    peer = make_rig(max_frame_size=1024).connect()
    peer.send(call("add", 1, a=1, b=1))
    peer.wait_replies(1)
    answered = peer.written
    peer.send(call("reverse", 2, data=b"x" * 2000))
    peer.wait_closed()
    assert peer.written == answered  # nothing more than the first reply
    host, port = peer.conn.peer
    lines = refused()
    assert len(lines) == 1, lines
    assert "%s:%d" % (host, port) in lines[0] and "1024" in lines[0], lines[0]


# -- 4. an undeclared exception ----------------------------------------------------------------------


def test_undeclared_exception_is_internal_error_and_the_connection_kept(make_rig, caplog):
    peer = make_rig().connect()
    peer.send(call("fail", 1, message="boom"))
    [r] = peer.wait_replies(1)
    assert "boom" in app_error(r, TApplicationException.INTERNAL_ERROR, 1)
    assert any(rec.exc_info and "undeclared" in rec.getMessage() for rec in caplog.records)
    assert not peer.closed
    peer.send(call("add", 2, a=2, b=2))
    assert peer.wait_replies(2)[1] == reply("reply", "add", 2, 4)


# -- 5. oneway ----------------------------------------------------------------------------------------


def test_oneway_writes_nothing_and_the_next_call_is_answered(make_rig, handler):
    peer = make_rig().connect()
    peer.send(call("record", 1, mtype=TMessageType.ONEWAY, event="hello"))
    peer.settle()
    assert handler.events == ["hello"]
    assert peer.written == b""
    peer.send(call("add", 2, a=20, b=22))
    assert peer.wait_replies(1) == [reply("reply", "add", 2, 42)]
    assert not peer.closed


# -- 6. EOF after a complete request ---------------------------------------------------------------


def test_eof_after_a_request_still_gets_the_reply_then_closes(make_rig):
    peer = make_rig().connect()
    peer.send(call("add", 1, a=1, b=2))
    peer.send_eof()
    assert peer.wait_replies(1) == [reply("reply", "add", 1, 3)]
    peer.wait_closed()


def test_eof_with_a_call_in_flight_waits_for_its_reply(make_rig, handler):
    peer = make_rig().connect()
    peer.send(call("sleep_blocking", 1, ms=0))
    held(handler)
    peer.send_eof()
    assert not peer.closed
    handler.gate.set()
    assert peer.wait_replies(1) == [reply("reply", "sleep_blocking", 1, "released")]
    peer.wait_closed()


def test_a_client_gone_mid_call_leaves_no_trace(make_rig, handler):
    rig = make_rig()
    peer = rig.connect()
    peer.send(call("sleep_blocking", 1, ms=0))
    held(handler)
    peer.reset()
    handler.gate.set()
    peer.wait_settled()  # the reply had nowhere to go: dropped, not written after the close
    assert peer.written == b""
    assert peer.conn not in rig.state.connections
    other = rig.connect()  # and the server serves on
    other.send(call("add", 2, a=1, b=1))
    assert other.wait_replies(1) == [reply("reply", "add", 2, 2)]


# -- 7. idle and partial-request timeouts ----------------------------------------------------------
# uv: the sweeper's Connection.check_timeouts(now), on the rig's clock. thread: no clock to
# inject; the receive times out after the time the backend gave settimeout().


def test_partial_request_times_out_with_a_refusal(make_rig, refused):
    rig = make_rig(request_timeout=10.0, idle_timeout=30.0)
    peer = rig.connect()
    peer.send(call("add", 1, a=1, b=1)[:5])
    peer.time_passes(8.0)
    assert not peer.closed
    peer.time_passes(3.0)
    peer.wait_closed()
    assert peer.written == b""
    lines = refused()
    assert len(lines) == 1 and "request still incomplete after 10s" in lines[0], lines
    if rig.backend == "uv":
        assert peer.transport.aborted  # a slowloris gets a reset
    else:  # the receive waited what is left of the request timeout, not the idle timeout
        assert 8.0 < peer.sock.timeouts[-1] <= 10.0, peer.sock.timeouts


def test_idle_connection_times_out_quietly(make_rig, refused):
    rig = make_rig(request_timeout=2.0, idle_timeout=5.0)
    peer = rig.connect()
    peer.send(call("add", 1, a=1, b=1))
    peer.wait_replies(1)
    peer.time_passes(4.0)
    assert not peer.closed
    peer.time_passes(2.0)
    peer.wait_closed()
    assert len(peer.replies) == 1
    assert refused() == []  # an idle close is not a refusal
    if rig.backend == "uv":
        assert not peer.transport.aborted  # closed gracefully
    else:
        assert peer.sock.timeouts[-1] == 5.0


def test_idle_timeout_spares_a_connection_with_a_call_in_flight(make_rig, handler):
    rig = make_rig(request_timeout=2.0, idle_timeout=5.0)
    peer = rig.connect()
    peer.send(call("sleep_blocking", 1, ms=0))
    held(handler)
    if rig.backend == "uv":
        peer.time_passes(60.0)
    else:  # its thread is in the handler: no receive, so no socket timeout, can be pending
        assert not peer.sock.in_recv
    assert not peer.closed
    handler.gate.set()
    assert peer.wait_replies(1) == [reply("reply", "sleep_blocking", 1, "released")]
    peer.time_passes(4.0)  # idle from the reply on, not from the request
    assert not peer.closed
    peer.time_passes(2.0)
    peer.wait_closed()


# -- 8. drain ----------------------------------------------------------------------------------------


def test_drain_closes_idle_connections_and_lets_busy_ones_finish(make_rig, handler):
    rig = make_rig()
    idle, busy = rig.connect(), rig.connect()
    idle.send(call("add", 1, a=1, b=1))
    idle.wait_replies(1)
    busy.send(call("sleep_blocking", 2, ms=0))
    held(handler)
    rig.drain()
    idle.wait_closed()
    assert not busy.closed
    if rig.backend == "thread":  # not even half-closed: a shut-down read would lose pipelined calls
        assert busy.sock.shut is None
    handler.gate.set()
    assert busy.wait_replies(1) == [reply("reply", "sleep_blocking", 2, "released")]
    busy.wait_closed()
    rig.drained()


# -- 9. flow control (uv only: the thread backend blocks in sendall instead) -----------------------


def test_uv_pauses_reading_past_the_write_high_water_mark_and_resumes_the_backlog(handler):
    rig = UVRig(handler, write_high_water=2048, write_low_water=512)
    try:
        peer = rig.connect()
        transport = peer.transport
        assert transport.limits == (2048, 512)
        transport.hold = True  # the client stops reading its replies

        # One reply past the high-water mark: pause_writing() stops reading.
        peer.send(call("reverse", 1, data=b"a" * 3000))
        assert peer.sends == 1 and transport.writing_paused
        assert not transport.reading
        transport.drain_to(0)  # the client reads: resume_writing() reads again
        assert transport.reading

        # Four calls in one read, each reply ~1.5 KiB: two replies fill the buffer, the rest wait.
        datas = [bytes([65 + i]) * 1500 for i in range(4)]
        peer.send(b"".join(call("reverse", 2 + i, data=d) for i, d in enumerate(datas)))
        assert len(peer.replies) == 3
        assert transport.writing_paused and not transport.reading
        rig.turn()
        assert len(peer.replies) == 3  # nothing more while the client does not read
        transport.drain_to(0)  # resume_writing(): the backlog is dispatched
        replies = peer.wait_replies(5)
        assert [r.seqid for r in replies] == [1, 2, 3, 4, 5]
        assert [r.value for r in replies[1:]] == [d[::-1] for d in datas]
        transport.drain_to(0)
        assert transport.reading and not peer.closed
    finally:
        rig.close()


# -- 10. shedding ------------------------------------------------------------------------------------


def test_max_requests_sheds_a_second_call_while_one_is_held(make_rig, handler):
    rig = make_rig(max_requests=1)
    first, second = rig.connect(), rig.connect()
    first.send(call("sleep_blocking", 1, ms=0))
    held(handler)
    second.send(call("add", 2, a=1, b=1))
    [r] = second.wait_replies(1)
    assert "overloaded" in app_error(r, AppError.LOADSHEDDING, 2)
    assert not second.closed
    handler.gate.set()
    assert first.wait_replies(1) == [reply("reply", "sleep_blocking", 1, "released")]
    second.send(call("add", 3, a=1, b=1))  # the held call has left: room again
    assert second.wait_replies(2)[1] == reply("reply", "add", 3, 2)
