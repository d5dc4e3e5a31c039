"""Overload (docs/overload.md), on both backends over real sockets with real clients:
--max-requests and --queue-timeout answer TApplicationException type 11 (LOADSHEDDING) at once
and the server goes on serving; --max-buffer-memory stops reading a connection whose buffer
would grow past the process's budget while small calls on other connections are served, wakes
waiters in order when memory is given back, and closes one that cannot progress; the shed calls
show in /metrics and, with --unhealthy-when-shedding, in /healthz.

Calls are held in flight by handlers waiting on a threading.Event; every wait is a bounded poll
on a condition (wait_until)."""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import threading
import time

import pytest
from thrift.Thrift import TApplicationException as ApacheApplicationException
from thriftpy2.thrift import TApplicationException

import dracula
from examples.showcase import ShowcaseHandler

from . import apache_client
from .client_programs import RUN_TIMEOUT
from .helpers import BACKENDS, Background, free_port, running, showcase_thrift, wait_until
from .status_client import http_get, scrape, value
from .wire_client import Connection, client, encode_call

Showcase = showcase_thrift.Showcase
LOADSHEDDING = 11
TIMEOUT = 20  # seconds: only so that a broken server fails a test instead of hanging it


class HeldHandler(ShowcaseHandler):
    """sleep_blocking/sleep_async return only once `release` is set; `entered` counts calls
    that started."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()
        self.started = 0
        self.lock = threading.Lock()

    def _enter(self):
        with self.lock:
            self.started += 1

    @dracula.blocking
    def sleep_blocking(self, ms):
        self._enter()
        self.release.wait(TIMEOUT)
        return "held"

    async def sleep_async(self, ms):
        self._enter()
        await asyncio.get_running_loop().run_in_executor(None, self.release.wait, TIMEOUT)
        return "held"


def held_call(port, method="sleep_blocking"):
    """Start a call that the handler holds; returns its Background."""

    def call():
        with client(port) as c:
            return getattr(c, method)(1)

    return Background(call)


def assert_overloaded(error, reason):
    assert error.type == LOADSHEDDING, error
    assert "server overloaded (%s" % reason in error.message, error.message


# -- --max-requests ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["sleep_blocking", "sleep_async"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_max_requests_sheds_at_once_then_serves_again(backend, method):
    handler = HeldHandler()
    with running(Showcase, handler, backend, max_requests=2) as server:
        try:
            held = [held_call(server.port, method) for _ in range(2)]
            assert wait_until(lambda: handler.started == 2)
            with client(server.port) as c:  # thriftpy2
                with pytest.raises(TApplicationException) as shed:
                    c.add(1, 2)
                assert_overloaded(shed.value, "max_requests")
                with pytest.raises(TApplicationException):
                    c.sleep_blocking(1)
            with apache_client.Connection(server.port) as conn:  # Apache Thrift's Python client
                with pytest.raises(ApacheApplicationException) as shed:
                    conn.showcase().add(1, 2)
                assert shed.value.type == LOADSHEDDING
                assert "server overloaded" in shed.value.message
            assert handler.started == 2  # the shed call never ran
        finally:
            handler.release.set()
        assert [b.result() for b in held] == ["held", "held"]
        with client(server.port) as c:  # the count went back down
            assert c.add(1, 2) == 3
            assert c.sleep_blocking(1) == "held"


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_requests_counts_oneway_and_unknown_methods_do_not_leak(backend):
    handler = HeldHandler()
    handler.release.set()
    with running(Showcase, handler, backend, max_requests=1) as server:
        with client(server.port) as c:
            for _ in range(50):  # a leak in the count would shed one of these
                c.record("e")
                assert c.add(2, 3) == 5
                assert c.sleep_blocking(1) == "held"
                with pytest.raises(TApplicationException):
                    c.fail("boom")
        assert wait_until(lambda: server.state.overload.in_flight == 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cpp_client_raises_the_overloaded_exception(cpp_client, backend):
    handler = HeldHandler()
    with running(Showcase, handler, backend, max_requests=1) as server:
        try:
            held = held_call(server.port)
            assert wait_until(lambda: handler.started == 1)
            done = subprocess.run(
                [cpp_client, "127.0.0.1", str(server.port), "binary", "buffered"],
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT,
            )
        finally:
            handler.release.set()
        assert held.result() == "held"
    # Its first call threw apache::thrift::TApplicationException; main() prints what().
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "error: server overloaded (max_requests)" in done.stderr


# -- --queue-timeout --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_queue_timeout_sheds_a_call_that_waited_for_the_pool(backend):
    handler = HeldHandler()
    # The thread backend runs @blocking handlers on their connection's thread unless a handler
    # timeout puts them in the pool: only then is there a queue to wait in.
    options = dict(blocking_threads=1, queue_timeout=0.2)
    if backend == "thread":
        options["handler_timeout"] = TIMEOUT
    with running(Showcase, handler, backend, **options) as server:
        try:
            first = held_call(server.port)  # takes the pool's only thread
            assert wait_until(lambda: handler.started == 1)
            queued = held_call(server.port)  # waits in the pool's queue
            sent = time.monotonic()
            # The mechanism under test is time spent queued: let more than 0.2 s pass.
            assert wait_until(lambda: time.monotonic() - sent > 0.4)
            assert_served_quickly(server.port)
        finally:
            handler.release.set()
        assert first.result() == "held"
        with pytest.raises(TApplicationException) as shed:
            queued.result()
        assert_overloaded(shed.value, "waited over 0.2s")
        assert handler.started == 1  # the late call never ran
        with client(server.port) as c:
            assert c.sleep_blocking(1) == "held"  # an unqueued call runs


def assert_served_quickly(port):
    with client(port) as c:
        assert c.add(20, 22) == 42


# -- --max-buffer-memory ----------------------------------------------------------------------

BIG = 600_000  # a reverse() argument: its frame needs the buffer doubled up to 1 MiB
GROWN_TO_1MIB = 8192 * 127  # 8 KiB + 16 KiB + ... + 512 KiB of growth charged


def big_call(seqid):
    data = encode_call("reverse", seqid, framed=True, data=b"x" * BIG)
    return data[: BIG - 10_000], data[BIG - 10_000 :]


@pytest.mark.parametrize("backend", BACKENDS)
def test_budget_pauses_large_uploads_and_serves_small_calls(backend):
    # Room for one connection's 1 MiB buffer, not two.
    with running(Showcase, ShowcaseHandler(), backend, max_buffer_memory=GROWN_TO_1MIB + 600_000) as server:
        budget = server.state.budget
        first_head, first_tail = big_call(1)
        second_head, second_tail = big_call(2)
        with Connection(server.port, framed=True) as first, Connection(server.port, framed=True) as second:
            first.send(first_head)
            assert wait_until(lambda: budget.used == GROWN_TO_1MIB)
            second.send(second_head)  # its buffer must wait for the first one's memory
            assert wait_until(lambda: len(budget.waiters) == 1)
            assert_served_quickly(server.port)  # small calls never wait for the budget
            assert budget.used <= budget.limit
            first.send(first_tail)
            assert first.read_reply("reverse").value == b"x" * BIG
            # The first buffer shrank: its memory went to the waiting connection, which goes on.
            second.send(second_tail)
            assert second.read_reply("reverse").value == b"x" * BIG
        assert wait_until(lambda: budget.used == 0 and not budget.waiters)


@pytest.mark.parametrize("backend", BACKENDS)
def test_budget_closes_a_connection_that_cannot_progress(backend, caplog):
    caplog.set_level(logging.WARNING, logger="dracula.refused")
    with running(Showcase, ShowcaseHandler(), backend, max_buffer_memory=GROWN_TO_1MIB) as server:
        budget = server.state.budget
        budget.wait_limit = 0.5
        head, _ = big_call(1)
        with Connection(server.port, framed=True) as holder, Connection(server.port, framed=True) as starved:
            holder.send(head)  # holds the whole budget, never finishes
            assert wait_until(lambda: budget.used == GROWN_TO_1MIB)
            starved.send(head)
            assert wait_until(lambda: budget.waiters)
            assert wait_until(lambda: closed(starved.sock))
            assert wait_until(lambda: not budget.waiters)
            assert any("waited 0.5s for memory" in r.getMessage() for r in caplog.records)
            assert_served_quickly(server.port)
        assert wait_until(lambda: budget.used == 0)


def closed(sock) -> bool:
    sock.settimeout(0.05)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def test_budget_zero_turns_it_off():
    with running(Showcase, ShowcaseHandler(), max_buffer_memory=0) as server:
        assert server.state.budget is None
        assert server.state.new_reader().budget is None
        with client(server.port) as c:
            assert c.reverse(b"y" * 100_000) == b"y" * 100_000


# -- visible: metrics and /healthz ------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_shed_calls_are_counted_and_fail_healthz_when_asked(backend):
    handler = HeldHandler()
    metrics_port = free_port()
    with running(
        Showcase, handler, backend, max_requests=1, metrics_port=metrics_port, unhealthy_when_shedding=True
    ) as server:
        try:
            assert http_get(metrics_port, "/healthz")[0] == 200
            held = held_call(server.port)
            assert wait_until(lambda: handler.started == 1)
            with client(server.port) as c:
                for _ in range(3):
                    with pytest.raises(TApplicationException):
                        c.add(1, 1)
            samples = scrape(metrics_port)
            assert value(samples, "dracula_shed_calls_total", reason="max_requests") == 3
            assert http_get(metrics_port, "/healthz")[0] == 503  # 3 of 4 calls were shed
        finally:
            handler.release.set()
        assert held.result() == "held"
        # The window passes with nothing shed: healthy again.
        assert wait_until(lambda: http_get(metrics_port, "/healthz")[0] == 200, 10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_budget_in_use_and_paused_connections_are_metrics(backend):
    metrics_port = free_port()
    with running(
        Showcase, ShowcaseHandler(), backend, max_buffer_memory=GROWN_TO_1MIB, metrics_port=metrics_port
    ) as server:
        head, _ = big_call(1)
        with Connection(server.port, framed=True) as holder, Connection(server.port, framed=True) as paused:
            holder.send(head)
            assert wait_until(lambda: value(scrape(metrics_port), "dracula_buffer_budget_bytes") == GROWN_TO_1MIB)
            paused.send(head)
            assert wait_until(lambda: value(scrape(metrics_port), "dracula_budget_paused_connections") == 1)
        assert wait_until(lambda: value(scrape(metrics_port), "dracula_buffer_budget_bytes") == 0)
        assert value(scrape(metrics_port), "dracula_budget_paused_connections") == 0


class SlowSyncHandler(HeldHandler):
    """lookup() blocks the reactor (a plain handler) until released."""

    def __init__(self):
        super().__init__()
        self.blocking_loop = threading.Event()

    def lookup(self, key):
        self.blocking_loop.set()
        self.release.wait(TIMEOUT)
        return "slow"


def test_queue_timeout_counts_a_busy_reactor():
    handler = SlowSyncHandler()
    with running(Showcase, handler, "uv", queue_timeout=0.2) as server:
        with Connection(server.port) as conn:
            # One read: a call that blocks the loop, then an async and a plain call behind it.
            conn.send(
                encode_call("lookup", 1, key="k")
                + encode_call("sleep_async", 2, ms=1)
                + encode_call("add", 3, a=1, b=2)
            )
            assert wait_until(handler.blocking_loop.is_set)
            blocked = time.monotonic()
            try:  # the mechanism under test is time spent waiting: let more than 0.2 s pass
                assert wait_until(lambda: time.monotonic() - blocked > 0.4)
            finally:
                handler.release.set()
            assert conn.read_reply("lookup").value == "slow"
            for method in ("sleep_async", "add"):
                reply = conn.read_reply(method)
                assert reply.kind == "exception", reply
                assert reply.value.type == LOADSHEDDING
        assert handler.started == 0  # neither late call ran
        assert_served_quickly(server.port)


class AsyncBefore:
    """An async `before` hook: every call then takes the coroutine path (Call._start)."""

    async def before(self, call):
        pass


@pytest.mark.parametrize("middleware", [(), (AsyncBefore(),)], ids=["plain", "async-middleware"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_queue_timeout_sheds_at_the_door_when_the_queue_is_predicted_too_long(backend, middleware):
    handler = HeldHandler()
    options = dict(blocking_threads=1, queue_timeout=0.2, middleware=middleware)
    if backend == "thread":
        options["handler_timeout"] = TIMEOUT
    with running(Showcase, handler, backend, **options) as server:
        overload = server.state.overload
        try:
            running_call = held_call(server.port)
            assert wait_until(lambda: handler.started == 1)
            queued = held_call(server.port)  # nothing measured yet: predicted wait 0, queued
            assert wait_until(lambda: overload.pool_queued == 1)
            overload.run_time = 1.0  # as if handlers took 1 s: one queued call means ~1 s more
            with client(server.port) as c:
                with pytest.raises(TApplicationException) as shed:
                    c.sleep_blocking(1)
                assert_overloaded(shed.value, "a wait of about 1s for a thread")
            overload.run_time = 0.0
        finally:
            handler.release.set()
        assert running_call.result() == "held"
        queued.join()  # answered (held, or shed if it waited past 0.2 s): either way not lost
        assert handler.started <= 2
        assert wait_until(lambda: overload.pool_queued == 0 and overload.in_flight == 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unread_replies_count_against_the_budget(backend, caplog):
    # Two clients pipeline 200 calls with ~100 KB replies each and read nothing: one's unsent
    # replies past the write high-water mark fit the budget, both do not, so one of them is
    # closed (whichever stalls second) and the other still gets every reply once it reads.
    caplog.set_level(logging.WARNING, logger="dracula.refused")
    high = 512 * 1024
    with running(
        Showcase,
        ShowcaseHandler(),
        backend,
        max_buffer_memory=2 * high,
        write_high_water=high,
        write_low_water=high // 4,
        # shapes(400) takes about the inline budget: kept inline, where reading pauses at the
        # high-water mark (a method moved to the pool would be learned mid-test).
        inline_methods=("shapes",),
    ) as server:
        budget = server.state.budget
        calls = b"".join(encode_call("shapes", seqid, n=400) for seqid in range(200))
        with Connection(server.port) as a, Connection(server.port) as b:
            a.send(calls)
            b.send(calls)

            def refused():
                return [r.getMessage() for r in caplog.records if "reply bytes" in r.getMessage()]

            assert wait_until(refused)
            assert len(refused()) == 1
            assert budget.used <= budget.limit
            assert_served_quickly(server.port)
            closed_port = int(re.search(r"refused [\d.]+:(\d+):", refused()[0]).group(1))
            survivor = a if closed_port == b.sock.getsockname()[1] else b
            assert closed_port in (a.sock.getsockname()[1], b.sock.getsockname()[1])
            for _ in range(200):
                assert len(survivor.read_reply("shapes").value) == 400
        assert wait_until(lambda: budget.used == 0)
