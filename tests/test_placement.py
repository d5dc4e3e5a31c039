"""How dracula runs a plain handler (server/placement.py): inline on the reactor while cheap,
in the thread pool once its calls block, whatever the handler says when marked; each method
reports the thread it ran on. Real servers, real thriftpy2 clients, both backends."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import time

import pytest
import thriftpy2
from thriftpy2.rpc import make_client

import dracula
from dracula.config import ConfigError
from dracula.server.placement import CALM, SAMPLE, STRIKES, Placement

from .helpers import Background, free_port, running
from .status_client import scrape, value

placement_thrift = thriftpy2.load(os.path.join(os.path.dirname(__file__), "placement.thrift"))
POOL_PREFIX = "dracula-blocking"
SLOW_MS = 5  # past the tests' budget of 1 ms, whatever the machine


class PlacedHandler:
    def __init__(self):
        self.entered = threading.Event()
        self.release = threading.Event()

    def ping(self):
        return threading.current_thread().name

    def wait(self, ms):
        if ms < 0:
            self.entered.set()
            self.release.wait(30)
        else:
            time.sleep(ms / 1000)  # the handler as thriftpy2 users write it: a blocking call
        return threading.current_thread().name

    @dracula.inline
    def cheap(self, ms):
        time.sleep(ms / 1000)
        return threading.current_thread().name

    async def coro(self, ms):
        time.sleep(ms / 1000)  # noqa: ASYNC251 - blocks the loop: the mistake the server reports
        return threading.current_thread().name


@pytest.fixture
def handler():
    h = PlacedHandler()
    yield h
    h.release.set()


@pytest.fixture
def serve(handler):
    """serve(backend="uv", **options) -> connect(): a server and its clients, closed at the end."""
    with contextlib.ExitStack() as stack:

        def start(backend="uv", **options):
            server = stack.enter_context(
                running(placement_thrift.Placed, handler, backend=backend, **{"inline_budget": 0.001, **options})
            )

            def connect():
                client = make_client(placement_thrift.Placed, "127.0.0.1", server.port, timeout=30_000)
                stack.callback(client.close)
                return client

            return connect

        yield start


@pytest.fixture
def moved_log(caplog):
    caplog.set_level(logging.WARNING, logger="dracula.dispatch")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "dracula.dispatch"]


def test_a_plain_method_that_blocks_moves_to_the_pool_and_stops_stalling_the_reactor(serve, handler, moved_log):
    connect = serve()
    client, other = connect(), connect()
    reactor = client.ping()
    assert not reactor.startswith(POOL_PREFIX)
    # Its first calls run inline (and stall the reactor) until they have shown how it is.
    assert [client.wait(SLOW_MS) for _ in range(STRIKES)] == [reactor] * STRIKES
    lines = moved_log()
    assert len(lines) == 1, lines
    assert "Placed.wait held the reactor" in lines[0] and "(waiting:" in lines[0], lines[0]
    assert "@dracula.blocking" in lines[0] and "--blocking-methods Placed.wait" in lines[0]
    assert client.wait(SLOW_MS).startswith(POOL_PREFIX)
    # A call that never returns on its own no longer holds anyone else up.
    held = Background(client.wait, -1)
    assert handler.entered.wait(30)
    assert other.ping() == reactor
    assert not held.done()
    handler.release.set()
    assert held.result().startswith(POOL_PREFIX)
    assert len(moved_log()) == 1  # said once


def test_a_method_that_starts_to_block_after_a_calm_start_is_still_moved(serve, moved_log):
    client = serve()()
    reactor = client.ping()
    assert {client.wait(0) for _ in range(CALM + SAMPLE)} == {reactor}  # now timed one call in SAMPLE
    names = [client.wait(SLOW_MS) for _ in range(SAMPLE + STRIKES + 1)]
    assert names[-1].startswith(POOL_PREFIX)
    assert all(name == reactor for name in names[: names.index(names[-1])])
    assert len(moved_log()) == 1


def test_cheap_plain_methods_stay_on_the_reactor(serve, moved_log):
    client = serve()()
    names = {client.ping() for _ in range(200)}
    assert len(names) == 1 and not names.pop().startswith(POOL_PREFIX)
    assert moved_log() == []


def test_a_method_marked_inline_is_never_moved(serve, moved_log):
    client = serve()()
    reactor = client.ping()
    assert [client.cheap(SLOW_MS) for _ in range(STRIKES + 2)] == [reactor] * (STRIKES + 2)
    assert moved_log() == []


def test_the_command_line_chooses_without_learning(serve, moved_log):
    client = serve(blocking_methods=("Placed.ping",), inline_methods=("wait",))()
    assert client.ping().startswith(POOL_PREFIX)  # from its first call
    names = {client.wait(SLOW_MS) for _ in range(STRIKES + 2)}
    assert len(names) == 1 and not names.pop().startswith(POOL_PREFIX)
    assert moved_log() == []


def test_a_zero_budget_keeps_plain_methods_on_the_reactor(serve, moved_log):
    client = serve(inline_budget=0)()
    reactor = client.ping()
    assert [client.wait(SLOW_MS) for _ in range(STRIKES + 2)] == [reactor] * (STRIKES + 2)
    assert moved_log() == []


def test_the_thread_backend_runs_every_handler_on_its_connections_thread(serve, moved_log):
    client = serve(backend="thread")()
    own = client.ping()
    assert [client.wait(SLOW_MS) for _ in range(STRIKES + 2)] == [own] * (STRIKES + 2)
    assert moved_log() == []


def test_names_that_match_no_method_are_refused():
    with pytest.raises(ConfigError, match=r"Placed\.nope"):
        dracula.make_server(placement_thrift.Placed, PlacedHandler(), port=0, blocking_methods=("Placed.nope",))


def test_a_coroutine_that_blocks_the_loop_is_reported_once_and_counted(serve, moved_log):
    port = free_port()
    client = serve(metrics_port=port)()
    for _ in range(3):
        assert not client.coro(SLOW_MS).startswith(POOL_PREFIX)  # it cannot be moved
    lines = moved_log()
    assert len(lines) == 1 and "coroutine Placed.coro held the loop" in lines[0], lines
    blocked = value(scrape(port), "dracula_loop_blocked_seconds_total", method="Placed.coro")
    assert blocked >= 3 * SLOW_MS / 1000


def test_the_pool_and_the_methods_moved_are_in_the_metrics(serve):
    port = free_port()
    client = serve(metrics_port=port, blocking_threads=7)()
    for _ in range(STRIKES + 1):
        client.wait(SLOW_MS)
    samples = scrape(port)
    assert value(samples, "dracula_methods_moved_total") == 1
    assert value(samples, "dracula_handler_threads_limit") == 7
    assert value(samples, "dracula_handler_threads") >= 1
    assert value(samples, "dracula_loop_blocked_seconds_total", method="Placed.wait") >= STRIKES * SLOW_MS / 1000


# -- the policy, without a server ------------------------------------------------------------------


class FakeMethod:
    """What Placement reads and writes of a dispatch.Method."""

    def __init__(self, fn):
        from dracula.server.dispatch import SYNC

        self.fn = fn
        self.kind = self.route = SYNC
        self.strikes = self.calm = self.skip = 0
        self.qualname = "S.m"


def test_a_call_during_which_the_collector_ran_is_not_held_against_its_method():
    placement = Placement(0.0)  # every call is past a zero budget...
    method = FakeMethod(gc.collect)
    placement.timed(method, ())
    assert method.strikes == 0  # ...but the pause was the collector's
    method.fn = lambda: None
    placement.timed(method, ())
    assert method.strikes == 1


def test_a_method_moves_on_its_second_strike_only():
    from dracula.server.dispatch import BLOCKING, SYNC

    placement = Placement(0.0)
    method = FakeMethod(lambda: time.sleep(0))
    placement.timed(method, ())
    assert (method.kind, method.route) == (SYNC, SYNC)
    placement.timed(method, ())
    assert (method.kind, method.route) == (BLOCKING, BLOCKING)
