"""Every configured limit, hit on purpose with a small value: what the offending client sees, the
one "dracula.refused" line naming its peer and reason, and that a good client on another
connection keeps being served. Also: the refusal log cannot be flooded, and what the two classic
decode bombs cost the server (printed for the record, not asserted).

Real sockets throughout. Waiting is done by bounded polls on a condition (or by a socket
time-out that turns a hang into a failure); the time bounds are generous on purpose: they
separate "enforced" from "not enforced", not fast from slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import re
import socket
import struct
import threading
import time

import pytest
import uvloop
from thriftpy2.thrift import TApplicationException, TMessageType, TType

import dracula
from examples.showcase import ShowcaseHandler

from .helpers import open_fds, reset_peak, running, showcase_thrift, vm, wait_until
from .refusal_log import assert_one_refusal, refusal_lines, refusals_of
from .wire_client import (
    SockTransport,
    assert_served,
    client,
    closed_by_server,
    connect,
    encode_call,
    make_client,
    peer_of,
    read_reply,
)

Showcase = showcase_thrift.Showcase
Shape, Point = showcase_thrift.Shape, showcase_thrift.Point
MB = 1024 * 1024
TIMEOUT = 20  # seconds: only so that a broken server fails a test instead of hanging it
PROTOCOL_ERROR = TApplicationException.PROTOCOL_ERROR
INTERNAL_ERROR = TApplicationException.INTERNAL_ERROR


# -- plumbing -------------------------------------------------------------------------------------


def still_open(sock, seconds) -> bool:
    """True if the server neither closed nor wrote to `sock` within `seconds` (a poll)."""
    sock.settimeout(seconds)
    try:
        data = sock.recv(1)
    except TimeoutError:
        return True
    except ConnectionResetError:
        return False
    assert data == b"", "unexpected bytes %r" % data
    return False


# -- connection cap -------------------------------------------------------------------------------


def ping_raw(sock, seqid):
    sock.sendall(encode_call("add", seqid, a=seqid, b=1))
    assert read_reply(SockTransport(sock)) == ("reply", "add", seqid, seqid + 1)


def evicted_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "dracula.evicted"]


def test_connection_cap_evicts_the_longest_idle(backend, refused_log):
    """A full table makes room for a newcomer by closing the connection idle the longest (no
    call in flight, nothing partly received); everyone else keeps being served."""
    refused_log.set_level(logging.WARNING, logger="dracula.evicted")
    cap = 4
    with running(Showcase, ShowcaseHandler(), backend=backend, max_connections=cap) as server:
        port = server.port
        idle = []
        good = None
        try:
            for i in range(cap - 1):
                sock = connect(port)
                ping_raw(sock, i + 1)  # the server has counted it; from now on it sits idle
                idle.append(sock)
            good = make_client(port)  # the most recently active: it must keep being served
            assert good.add(1, 1) == 2

            extra = connect(port)  # the table is full: the longest-idle connection makes room
            ping_raw(extra, 50)
            assert closed_by_server(idle[0], 5), "the longest-idle connection was not closed"
            assert wait_until(lambda: evicted_lines(refused_log), 5)
            lines = evicted_lines(refused_log)
            assert len(lines) == 1 and lines[0].startswith("evicted idle connection %s: " % peer_of(idle[0])), lines
            assert "room for %s" % peer_of(extra) in lines[0], lines[0]
            assert refusal_lines(refused_log) == []
            idle.pop(0).close()

            assert good.add(2, 3) == 5
            for i, sock in enumerate(idle):
                ping_raw(sock, 10 + i)  # the other idle ones were left alone
            ping_raw(extra, 51)
            extra.close()
        finally:
            if good is not None:
                good.close()
            for sock in idle:
                sock.close()


def test_connection_cap_refuses_when_no_connection_is_idle(backend, refused_log):
    """Connections with a request partly received are not idle: with every one of them busy
    the newcomer is closed at once (one refusal line) and the busy ones finish their calls."""
    cap = 3
    with running(Showcase, ShowcaseHandler(), backend=backend, max_connections=cap) as server:
        port = server.port
        busy = [connect(port) for _ in range(cap)]
        try:
            calls = [encode_call("add", i, a=i, b=1) for i in range(cap)]
            for sock, call in zip(busy, calls, strict=True):
                sock.sendall(call[:10])  # the header only: a request partly received
            # The server has read those first bytes once a probe connection stops being
            # evicted-or-refused ambiguity: wait until a newcomer is refused.
            extra = connect(port)
            t0 = time.monotonic()
            assert closed_by_server(extra, 5), "connection past the cap was not closed"
            assert time.monotonic() - t0 < 2.0, "the refused client was not closed at once"
            assert_one_refusal(
                refused_log,
                peer_of(extra),
                r"connection limit of %d reached and no connection "
                r"is idle" % cap,
            )
            extra.close()
            for i, (sock, call) in enumerate(zip(busy, calls, strict=True)):
                sock.sendall(call[10:])
                assert read_reply(SockTransport(sock)) == ("reply", "add", i, i + 1)
        finally:
            for sock in busy:
                sock.close()


def test_connection_cap_keeps_serving_after_a_close(backend):
    cap = 2
    with running(Showcase, ShowcaseHandler(), backend=backend, max_connections=cap) as server:
        port = server.port
        first, second = connect(port), connect(port)
        try:
            ping_raw(first, 1)
            ping_raw(second, 2)
            first.close()
            served = []

            def new_connection_served():
                try:
                    with client(port) as c:
                        served.append(c.add(5, 5))
                        return True
                except Exception:  # refused until the server sees the close
                    return False

            assert wait_until(new_connection_served, 10, 0.05), "no connection served after one closed"
            assert served == [10]
            ping_raw(second, 3)
        finally:
            second.close()


def test_connection_cap_holds_for_a_burst(backend, refused_log):
    # Connections opened back to back, before any of them sends a byte, are counted as the
    # server accepts them: exactly `cap` are served, the rest refused (none is evicted: they
    # are new, and their first request may be on its way).
    cap = 5
    extra = 5
    with running(Showcase, ShowcaseHandler(), backend=backend, max_connections=cap) as server:
        socks = [connect(server.port) for _ in range(cap + extra)]
        try:
            # Fresh connections (no byte sent, under a second old) are not idle enough to be
            # evicted: once the server has accepted all of them, exactly `extra` are refused.
            assert wait_until(lambda: len(refusal_lines(refused_log)) >= extra, 10), refusal_lines(refused_log)
            served, refused = [], []
            for i, sock in enumerate(socks):
                try:
                    sock.sendall(encode_call("add", i, a=i, b=1))
                    kind, _, seqid, value = read_reply(SockTransport(sock))
                    assert (kind, seqid, value) == ("reply", i, i + 1)
                    served.append(i)
                except (EOFError, ConnectionResetError, BrokenPipeError):
                    refused.append(i)
            assert len(served) == cap, "served %d connections with max_connections=%d (refused %d)" % (
                len(served),
                cap,
                len(refused),
            )
            assert len(refusal_lines(refused_log)) == extra, refusal_lines(refused_log)
        finally:
            for sock in socks:
                sock.close()
        assert_served(server.port)


# -- idle timeout ---------------------------------------------------------------------------------


def test_idle_timeout(backend, caplog):
    caplog.set_level(logging.DEBUG, logger="dracula")
    idle_timeout = 1.0
    with running(Showcase, ShowcaseHandler(), backend=backend, idle_timeout=idle_timeout) as server:
        port = server.port
        busy = make_client(port)
        try:
            assert busy.add(0, 1) == 1
            silent = connect(port)  # never sends a byte
            after_call = connect(port)  # makes one call, then goes quiet
            ping_raw(after_call, 1)
            opened = time.monotonic()
            closed_at = {}
            calls = 0
            # The busy client calls about every 0.2 s (each poll below waits 0.1 s per idle
            # socket) until both quiet ones are closed and at least 3 idle periods have passed.
            while len(closed_at) < 2 or time.monotonic() - opened < 3 * idle_timeout:
                assert time.monotonic() - opened < 15, "idle connections still open: %r" % closed_at
                calls += 1
                assert busy.add(calls, 1) == calls + 1  # same connection: a close would raise
                for name, sock in (("silent", silent), ("after_call", after_call)):
                    if name not in closed_at and not still_open(sock, 0.1):
                        closed_at[name] = time.monotonic() - opened
            for name, seconds in closed_at.items():
                # Roughly idle_timeout: the uv sweeper checks every idle_timeout/4.
                assert 0.5 * idle_timeout <= seconds <= 8 * idle_timeout, (name, seconds)
            assert busy.add(100, 1) == 101
            # Closing an idle connection is routine, not a refusal: a debug line, no warning.
            for sock in (silent, after_call):
                peer = peer_of(sock)
                assert any(peer + ":" in r.getMessage() and "idle" in r.getMessage() for r in caplog.records), peer
                assert not refusals_of(caplog, peer)
                sock.close()
        finally:
            busy.close()
        assert_served(port)


# -- request timeout (slowloris) ------------------------------------------------------------------


@pytest.mark.parametrize("framed", [False, True], ids=["unframed", "framed"])
def test_request_timeout_closes_an_incomplete_request(backend, framed, refused_log):
    request_timeout = 1.0
    with running(Showcase, ShowcaseHandler(), backend=backend, request_timeout=request_timeout) as server:
        port = server.port
        with client(port) as good:
            assert good.add(1, 2) == 3
            started = time.monotonic()
            message = encode_call("lookup", 7, framed, key="k" * 50)
            slow = connect(port)
            slow.sendall(message[:20])  # and never the rest
            assert good.add(2, 2) == 4  # served while the incomplete request waits
            assert closed_by_server(slow, 10), "incomplete request still open after 10 s"
            took = time.monotonic() - started
            assert 0.5 * request_timeout <= took <= 8 * request_timeout, took
            assert_one_refusal(refused_log, peer_of(slow), r"request still incomplete after 1s")
            slow.close()
            # The good connection sat idle longer than request_timeout between its calls:
            # only a request in progress is timed, so it is still open and served.
            assert good.add(3, 3) == 6
        assert_served(port)


SLOW_CLIENTS = 1000


async def _slowloris(port, count, request, results):
    """`count` connections, each writing one byte of `request` about every 0.5 s. Each result:
    ('closed', seconds after its first byte) or a failure: ('replied', bytes), ('still open',
    seconds) after 20 s, ('finished', seconds) when it sent all of it, ('connect', error)."""
    loop = asyncio.get_running_loop()

    async def one(i):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError as e:
            results[i] = ("connect", repr(e))
            return
        first = loop.time()
        try:
            # Start staggered so the 1,000 writes do not all land in the same tick.
            await asyncio.sleep((i % 50) / 100)
            first = loop.time()
            for k in range(len(request)):
                if loop.time() - first > 20:
                    results[i] = ("still open", loop.time() - first)
                    return
                writer.write(request[k : k + 1])
                try:
                    data = await asyncio.wait_for(reader.read(65536), 0.5)
                except asyncio.TimeoutError:
                    continue  # still open: next byte
                results[i] = ("replied", data) if data else ("closed", loop.time() - first)
                return
            results[i] = ("finished", loop.time() - first)
        except (ConnectionResetError, BrokenPipeError):
            results[i] = ("closed", loop.time() - first)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    await asyncio.gather(*(one(i) for i in range(count)))


def test_slowloris_thousand_connections(backend, refused_log):
    request_timeout = 2.0
    with running(
        Showcase, ShowcaseHandler(), backend=backend, request_timeout=request_timeout, graceful_timeout=2
    ) as server:
        port = server.port
        assert_served(port)
        gc.collect()  # sockets earlier tests left to the collector are not ours to count
        # libuv opens a process-wide pipe pair with its first loop and never closes it: the
        # attacker's loop below must not be the first (it is when this test runs alone).
        uvloop.new_event_loop().close()
        baseline = open_fds()
        # Long enough that trickling it at 2 bytes/s would take minutes.
        request = encode_call("lookup", 1, key="k" * 200)
        results = {}

        def drive():
            loop = uvloop.new_event_loop()
            try:
                loop.run_until_complete(_slowloris(port, SLOW_CLIENTS, request, results))
            finally:
                loop.close()

        started = time.monotonic()
        attacker = threading.Thread(target=drive, name="slowloris", daemon=True)
        attacker.start()
        latencies = []
        good = make_client(port)
        try:
            # A good client keeps calling, on its own connection and on new ones, until every
            # slow connection has been dealt with.
            i = 0
            while attacker.is_alive():
                assert time.monotonic() - started < 40, "the slow clients did not finish in 40 s"
                i += 1
                t0 = time.monotonic()
                assert good.add(i, i) == 2 * i
                if i % 10 == 0:
                    assert_served(port, i, 1)
                latencies.append(time.monotonic() - t0)
                attacker.join(0.05)
        finally:
            good.close()
        elapsed = time.monotonic() - started
        assert len(results) == SLOW_CLIENTS
        outcomes = {}
        for kind, _ in results.values():
            outcomes[kind] = outcomes.get(kind, 0) + 1
        assert outcomes == {"closed": SLOW_CLIENTS}, outcomes
        durations = sorted(seconds for _, seconds in results.values())
        print(
            "\nslowloris %s: %d connections closed %.2f..%.2f s after their first byte "
            "(median %.2f); all done in %.1f s; good client: %d calls, slowest %.3f s"
            % (
                backend,
                SLOW_CLIENTS,
                durations[0],
                durations[-1],
                durations[len(durations) // 2],
                elapsed,
                len(latencies),
                max(latencies),
            )
        )
        assert durations[0] >= 0.5 * request_timeout, "closed before its request timeout"
        assert durations[-1] <= 8 * request_timeout, "closed long after its request timeout"
        assert len(latencies) >= 10
        assert max(latencies) < 5.0, "the good client waited %.1f s for a call" % max(latencies)
        assert wait_until(lambda: open_fds() <= baseline, 15), "%d fds still open after the slow connections closed" % (
            open_fds() - baseline
        )
        # The refusals were logged (rate-limited: test_refusal_log_cannot_be_flooded).
        assert any("request still incomplete" in line for line in refusal_lines(refused_log))
        assert_served(port)


# -- handler timeout ------------------------------------------------------------------------------


class HangingHandler(ShowcaseHandler):
    """sleep_* hang until the test opens the gate; they report whether they finished or were
    cancelled."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()
        self.started = threading.Event()
        self.finished = threading.Event()
        self.cancelled = threading.Event()

    @dracula.blocking
    def sleep_blocking(self, ms):
        self.started.set()
        self.gate.wait(TIMEOUT)
        self.finished.set()
        return "late %d" % ms

    async def sleep_async(self, ms):
        self.started.set()
        try:
            deadline = time.monotonic() + TIMEOUT
            while not self.gate.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        self.finished.set()
        return "late %d" % ms


@pytest.mark.parametrize("framed", [False, True], ids=["unframed", "framed"])
@pytest.mark.parametrize("kind", ["async", "blocking"])
def test_handler_timeout(backend, kind, framed, caplog):
    caplog.set_level(logging.ERROR, logger="dracula")
    handler = HangingHandler()
    method = "sleep_" + kind
    handler_timeout = 0.5
    try:
        with running(Showcase, handler, backend=backend, handler_timeout=handler_timeout) as server:
            port = server.port
            with connect(port) as sock:
                trans = SockTransport(sock)
                started = time.monotonic()
                # The hanging call and, pipelined behind it, a quick one.
                sock.sendall(encode_call(method, 1, framed, ms=1) + encode_call("add", 2, framed, a=2, b=2))
                assert handler.started.wait(TIMEOUT)
                assert_served(port)  # others are served while it hangs
                kind_, name, seqid, exc = read_reply(trans, framed)
                took = time.monotonic() - started
                assert (kind_, name, seqid) == ("exception", method, 1), (kind_, name, seqid, exc)
                assert exc.type == INTERNAL_ERROR, exc
                assert "did not finish within 0.5s" in exc.message, exc.message
                assert 0.5 * handler_timeout <= took <= 10, took
                assert read_reply(trans, framed) == ("reply", "add", 2, 4)

                # Let the handler finish (a thread cannot be stopped) or see it cancelled (a
                # coroutine is); either way its late result must never be sent.
                handler.gate.set()
                if kind == "async":
                    assert handler.cancelled.wait(TIMEOUT), "the timed-out coroutine was not cancelled"
                else:
                    assert handler.finished.wait(TIMEOUT)
                # Keep calling for a while: a late reply, sent whenever the handler's completion
                # reaches the server's loop, would show up as a reply with the wrong seqid.
                seqid, until = 2, time.monotonic() + 0.3
                while seqid < 5 or time.monotonic() < until:
                    seqid += 1
                    sock.sendall(encode_call("add", seqid, framed, a=seqid, b=10))
                    assert read_reply(trans, framed) == ("reply", "add", seqid, seqid + 10)
            assert any(
                "did not finish within 0.5s" in r.getMessage() and method in r.getMessage() for r in caplog.records
            ), [r.getMessage() for r in caplog.records]
            assert_served(port)
    finally:
        handler.gate.set()


# -- message limits: string, container, depth, frame ----------------------------------------------


def _exact_reverse(size):
    """reverse() arguments making its message (framed: the frame's payload) `size` bytes."""
    overhead = len(encode_call("reverse", 1, False, data=b""))
    return dict(data=b"x" * (size - overhead))


MESSAGE_LIMITS = {
    # name: (config, call over the limit, call exactly at it, its expected result, reason)
    "string": (
        dict(max_string_size=100),
        ("lookup", dict(key="k" * 101)),
        ("lookup", dict(key="k" * 100)),
        "K" * 100,
        r"string of 101 bytes \(limit 100",
    ),
    "container": (
        dict(max_container_size=10),
        ("unique", dict(words=[str(i) for i in range(11)])),
        ("unique", dict(words=[str(i) for i in range(10)])),
        {str(i) for i in range(10)},
        r"container of 11 elements \(limit 10\)",
    ),
    # The arguments struct counts as 1: args > Shape > map > list > Point is 5 deep, args > Shape
    # > list > Point is 4.
    "depth": (
        dict(max_depth=4),
        ("echo_shape", dict(shape=Shape(labels={"a": [Point(x=1, y=2)]}))),
        ("echo_shape", dict(shape=Shape(points=[Point(x=1, y=2)]))),
        Shape(points=[Point(x=1, y=2)]),
        r"nesting deeper than 4",
    ),
    "frame": (
        dict(max_frame_size=256),
        ("reverse", _exact_reverse(257)),
        ("reverse", _exact_reverse(256)),
        b"x" * (256 - len(encode_call("reverse", 1, data=b""))),
        r"limit 256|longer than 256",
    ),
}


def normal(reply):
    """thriftpy2 decodes a set<> as a list: compare it as a set."""
    kind, name, seqid, value = reply
    return kind, name, seqid, set(value) if isinstance(value, list) else value


@pytest.mark.parametrize("framed", [False, True], ids=["unframed", "framed"])
@pytest.mark.parametrize("limit", list(MESSAGE_LIMITS))
def test_message_limit(backend, limit, framed, refused_log):
    config, (method, over), (ok_method, ok), expected, reason = MESSAGE_LIMITS[limit]
    if limit == "frame" and framed:
        # Framed, the limit is the frame's payload (the message), its length word not counted.
        reason = r"frame of 257 bytes \(limit 256\)"
    with running(Showcase, ShowcaseHandler(), backend=backend, **config) as server:
        port = server.port
        with client(port) as good:
            assert good.add(1, 1) == 2
            with connect(port) as sock:
                trans = SockTransport(sock)
                if limit == "frame":
                    size = len(encode_call(ok_method, 2, False, **ok))
                    assert size == 256
                bad = encode_call(method, 9, framed, **over)
                # Framed, a good call follows in the same write; unframed, the server must close,
                # and unread bytes would turn its close into a reset that may hide the reply.
                sock.sendall(bad + encode_call(ok_method, 10, framed, **ok) if framed else bad)
                if limit == "frame" and framed:
                    # Refused on the frame length alone, before the message header is read:
                    # there is no seqid to answer, so a clean close.
                    assert closed_by_server(sock), "oversized frame: connection not closed"
                    assert trans.received == 0
                else:
                    try:
                        kind, name, seqid, exc = read_reply(trans, framed)
                    except (EOFError, ConnectionResetError) as e:
                        pytest.fail(
                            "the server closed without a TApplicationException, though it had "
                            "read the message header (seqid 9): %r" % e
                        )
                    assert (kind, name, seqid) == ("exception", method, 9), (kind, name, seqid, exc)
                    assert exc.type == PROTOCOL_ERROR, exc
                    if framed:
                        # The frame boundary holds: the next call on this connection is served.
                        assert normal(read_reply(trans, framed)) == ("reply", ok_method, 10, expected)
                    else:
                        # Unframed, the stream has lost its place: the server closes.
                        assert closed_by_server(sock), "connection left open after a fatal refusal"
                assert_one_refusal(refused_log, peer_of(sock), reason)
            # Exactly at the limit is fine, on a new connection, framed or not.
            with connect(port) as sock:
                sock.sendall(encode_call(ok_method, 11, framed, **ok))
                assert normal(read_reply(SockTransport(sock), framed)) == ("reply", ok_method, 11, expected)
            assert good.add(2, 2) == 4  # the good connection never noticed
        assert_served(port)
        assert len(refusal_lines(refused_log)) == 1, refusal_lines(refused_log)


# -- write high-water (uv; the thread backend's blocking send must bound it too) ------------------

REPLY = "r" * MB


class BigReplyHandler(ShowcaseHandler):
    def lookup(self, key):
        return REPLY  # a ~1 MB reply to a 25-byte call


@pytest.mark.parametrize("backend", ["uv", "thread"])
def test_client_that_never_reads_stops_being_read(backend):
    # A client pipelining tiny calls whose replies are ~1 MB, and never reading them. The server
    # must stop reading its requests once the unsent replies pass the high-water mark (uv), or
    # once its blocking send stalls (thread), so memory stays bounded however many such calls
    # the client has queued in the kernel.
    high, low = 256 * 1024, 64 * 1024
    with running(
        Showcase, BigReplyHandler(), backend=backend, write_high_water=high, write_low_water=low, graceful_timeout=2
    ) as server:
        port = server.port
        assert_served(port)
        request = encode_call("lookup", 1, key="")
        assert len(request) < 32
        per_batch = 4096  # ~100 kB per write, as a flooding client would: every read is full
        batch = request * per_batch
        bad = socket.socket()
        bad.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        bad.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        bad.connect(("127.0.0.1", port))
        bad.settimeout(3.0)
        try:
            baseline = reset_peak()
            sent = 0
            blocked = False
            try:
                # Up to 2M calls (2 TB of replies, were they all answered); the kernel's buffers
                # hold a few hundred kB of them, so the sender blocks once the server stops
                # reading.
                for _ in range(2_000_000 // per_batch):
                    bad.sendall(batch)
                    sent += per_batch
            except TimeoutError:
                blocked = True  # expected: the server stopped reading from us
            peak = vm("VmHWM") - baseline
            print(
                "\nnever-reading client, %s: %d calls (%.0f kB) sent before the sender blocked; "
                "peak RSS growth %.1f MB" % (backend, sent, sent * len(request) / 1024, peak / MB)
            )
            assert blocked, "the server kept reading: %d calls whose ~1 MB replies nobody reads" % sent
            assert peak < 150 * MB, "peak RSS grew by %.0f MB with one client not reading" % (peak / MB)

            assert_served(port)  # others are served meanwhile
        finally:
            # The bad client goes away with its replies unread (a reset): the server's buffers
            # for it must go with it.
            bad.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            bad.close()
        released = wait_until(lambda: vm("VmRSS") < baseline + 50 * MB, 10, 0.05)
        print(
            "never-reading client, %s: RSS %.1f MB over the baseline after it left"
            % (backend, (vm("VmRSS") - baseline) / MB)
        )
        assert released, "RSS still %.0f MB over the baseline" % ((vm("VmRSS") - baseline) / MB)
        assert_served(port)


# -- the refusal log cannot be flooded ------------------------------------------------------------

SUMMARY = re.compile(r"^(\d+) more refusals in the last second were not logged$")


def test_refusal_log_cannot_be_flooded(backend, refused_log):
    garbage = 500
    burst = 20  # RefusalLog's default
    with running(Showcase, ShowcaseHandler(), backend=backend) as server:
        port = server.port
        assert_served(port)
        socks = []
        started = time.monotonic()
        try:
            for _ in range(garbage):
                sock = connect(port)
                socks.append(sock)
                sock.sendall(b"\xff\xfe garbage")
            for sock in socks:
                assert closed_by_server(sock, TIMEOUT), "garbage connection not closed"
        finally:
            for sock in socks:
                sock.close()
        burst_end = time.monotonic()
        span = burst_end - started  # covers every refusal's time at the server
        lines = refusal_lines(refused_log)
        refused = [line for line in lines if line.startswith("refused ")]
        summaries = [int(SUMMARY.match(line).group(1)) for line in lines if SUMMARY.match(line)]
        # Refusals within one second share a window of `burst` lines; a burst that took
        # longer (a loaded machine) may touch one more window per second it took.
        windows = 1 if span < 1.0 else math.ceil(span) + 1
        assert len(refused) <= burst * windows, (len(refused), span)
        assert len(refused) >= min(burst, garbage)
        assert all("first byte 0xff" in line for line in refused), refused[:3]

        # One more refusal once the (last) window has passed brings out the summary.
        assert wait_until(lambda: time.monotonic() - burst_end > 1.05, 5)
        with connect(port) as sock:
            sock.sendall(b"\xff")
            assert closed_by_server(sock)
        assert wait_until(lambda: any(SUMMARY.match(line) for line in refusal_lines(refused_log)[len(lines) :]), 5), (
            refusal_lines(refused_log)[len(lines) :]
        )
        lines = refusal_lines(refused_log)
        refused = [line for line in lines if line.startswith("refused ")]
        summaries = [int(SUMMARY.match(line).group(1)) for line in lines if SUMMARY.match(line)]
        print(
            "\nrefusal log %s: %d garbage connections in %.2f s -> %d lines + summaries %r"
            % (backend, garbage, span, len(refused) - 1, summaries)
        )
        # Nothing lost: every refusal is either a line or counted in a summary.
        assert len(refused) + sum(summaries) == garbage + 1
        assert len(lines) == len(refused) + len(summaries)
        assert_served(port)


# -- what the decode bombs cost (measured, printed; wire_safety asserts the outcome) --------------


def _bombs():
    def header(name, seqid):
        return struct.pack("!iI", -0x7FFF0000 | TMessageType.CALL, len(name)) + name + struct.pack("!i", seqid)

    def field(ttype, fid):
        return struct.pack("!bh", ttype, fid)

    # unique(list<string>) declaring 2**31-1 elements: 30 bytes in all.
    huge_list = (
        header(b"unique", 666)
        + field(TType.LIST, 1)
        + bytes([TType.STRING])
        + struct.pack("!i", 2**31 - 1)
        + b"\x00" * 4
    )
    assert len(huge_list) == 30
    depth = 100_000
    deep = header(b"echo_shape", 666) + field(TType.STRUCT, 1) * depth + b"\x00" * (depth + 1)
    return {"30-byte frame, list of 2^31-1": huge_list, "100,000 levels deep": deep}


@pytest.mark.parametrize("bomb", list(_bombs()))
def test_bomb_cost(backend, bomb):
    message = _bombs()[bomb]
    data = struct.pack("!i", len(message)) + message
    with running(Showcase, ShowcaseHandler(), backend=backend) as server:
        port = server.port
        assert_served(port)
        baseline = reset_peak()
        started = time.monotonic()
        for _ in range(100):
            with connect(port) as sock:
                sock.sendall(data)
                kind, _, seqid, exc = read_reply(SockTransport(sock), True)
                assert (kind, seqid, exc.type) == ("exception", 666, PROTOCOL_ERROR), exc
        elapsed = time.monotonic() - started
        growth = vm("VmHWM") - baseline
        print(
            "\nbomb %s, %s backend, framed (%d bytes) x100: %.3f s in all (%.2f ms each), "
            "peak RSS growth %.2f MB" % (bomb, backend, len(data), elapsed, elapsed * 10, growth / MB)
        )
        assert_served(port)
