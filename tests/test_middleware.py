"""Middleware end to end, on both backends: `before` hooks in order and `after` hooks in reverse,
what they see (context, outcome, seconds), refusals, hooks that break, `async def` hooks with
every kind of handler, and `dracula serve --middleware`. Plain calls come from thriftpy2;
calls with headers from Apache Thrift's THeaderProtocol (tests/test_context.py's client).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
import thriftpy2
import thriftpy2.rpc
from thrift.Thrift import TApplicationException as ApacheApplicationException
from thriftpy2.thrift import TApplicationException

import dracula
from dracula.testing import client_of

from .callinfo_app import Client as HeaderClient
from .helpers import running, showcase_thrift, wait_until
from .hooked_app import Handler, hooked_thrift

KINDS = ("plain", "coro", "pooled")
LOADSHEDDING = 11  # fbthrift's TApplicationException type: a refusal a client can tell apart


class Recorder:
    """Appends ("before"|"after", name, method[, outcome]) to a shared log; sync hooks."""

    def __init__(self, name, log):
        self.name, self.log = name, log

    def before(self, call):
        self.log.append(("before", self.name, call.method))

    def after(self, call, outcome, seconds):
        self.log.append(("after", self.name, call.method, outcome))


class AsyncRecorder(Recorder):
    """The same, with `async def` hooks that yield to the loop before they record."""

    async def before(self, call):
        await asyncio.sleep(0)
        assert dracula.current_call() is call  # the call's task runs its async hooks
        self.log.append(("before", self.name, call.method))

    async def after(self, call, outcome, seconds):
        await asyncio.sleep(0)
        self.log.append(("after", self.name, call.method, outcome))


class AsyncAfterRecorder(Recorder):
    after = AsyncRecorder.after


class AsyncBeforeRecorder(Recorder):
    before = AsyncRecorder.before


class Inspector:
    """Keeps what `after` was shown: (context fields, outcome, seconds) per call."""

    def __init__(self):
        self.seen = []

    def after(self, call, outcome, seconds):
        self.seen.append(
            {
                "service": call.service,
                "method": call.method,
                "peer": call.peer,
                "headers": dict(call.headers),
                "outcome": outcome,
                "seconds": seconds,
            }
        )


class Refuser:
    def before(self, call):
        if call.method != "fails" and call.headers.get("x-deny") == "yes":
            raise TApplicationException(LOADSHEDDING, "go away")


class BrokenBefore:
    def before(self, call):
        raise ValueError("hook bug")


class BrokenAfter:
    def after(self, call, outcome, seconds):
        raise ValueError("hook bug after")


@pytest.fixture
def handler():
    return Handler()


@pytest.fixture
def serve(backend, handler):
    """serve(*middleware) -> server, with clients closed at the test's end."""
    with contextlib.ExitStack() as stack:

        def start(*middleware):
            # A handler timeout sends @blocking calls to the pool on the thread backend too.
            server = stack.enter_context(
                running(hooked_thrift.Hooked, handler, backend=backend, middleware=list(middleware), handler_timeout=30)
            )
            server.client = lambda: _closing(stack, client_of(server))
            server.header_client = lambda: _closing(stack, HeaderClient(server.port))
            return server

        yield start


def _closing(stack, client):
    stack.callback(client.close)
    return client


def _entries(log, count):
    assert wait_until(lambda: len(log) >= count), log
    return list(log)


# -- order ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", KINDS)
def test_befores_run_in_order_and_afters_in_reverse(serve, method):
    log = []
    client = serve(Recorder("a", log), Recorder("b", log)).client()
    assert getattr(client, method)("t") == "t"
    assert _entries(log, 4) == [
        ("before", "a", method),
        ("before", "b", method),
        ("after", "b", method, "ok"),
        ("after", "a", method, "ok"),
    ]


# -- what after sees ------------------------------------------------------------------------------


def test_after_sees_the_call_its_outcome_and_duration(serve):
    inspector = Inspector()
    server = serve(inspector)
    header_client = server.header_client()
    assert header_client.call("plain", "t", {"x-tag": "h"}) == "t"
    client = server.client()
    with pytest.raises(hooked_thrift.Refused):
        client.fails("declared")
    with pytest.raises(TApplicationException) as undeclared:
        client.fails("boom")
    assert undeclared.value.type == TApplicationException.INTERNAL_ERROR
    with pytest.raises(ApacheApplicationException) as unknown:
        header_client.call("nope", "x")
    assert unknown.value.type == TApplicationException.UNKNOWN_METHOD
    seen = _entries(inspector.seen, 4)
    assert [(s["service"], s["method"], s["outcome"]) for s in seen] == [
        ("Hooked", "plain", "ok"),
        ("Hooked", "fails", "exception"),
        ("Hooked", "fails", "error"),
        (None, "nope", "error"),
    ]
    assert all(s["seconds"] >= 0 for s in seen)
    assert seen[0]["peer"][1] == header_client.port and seen[-1]["peer"][1] == header_client.port
    assert seen[0]["headers"] == {"x-tag": "h"} and seen[1]["headers"] == {}


# -- refusals and broken hooks --------------------------------------------------------------------


@pytest.mark.parametrize("method", KINDS)
def test_before_refuses_with_its_application_exception(serve, handler, method):
    inspector = Inspector()
    client = serve(Refuser(), inspector).header_client()
    with pytest.raises(ApacheApplicationException) as refused:
        client.call(method, "t", {"x-deny": "yes"})
    assert (refused.value.type, refused.value.message) == (LOADSHEDDING, "go away")
    assert handler.runs[method] == 0
    assert client.call(method, "t") == "t"  # the connection serves on; this one is let through
    assert handler.runs[method] == 1
    assert [s["outcome"] for s in _entries(inspector.seen, 2)] == ["error", "ok"]


def test_before_raising_anything_else_is_an_internal_error_and_logged(serve, handler, caplog):
    client = serve(BrokenBefore()).client()
    with caplog.at_level(logging.ERROR, logger="dracula.middleware"), pytest.raises(TApplicationException) as caught:
        client.plain("t")
    assert caught.value.type == TApplicationException.INTERNAL_ERROR
    assert "ValueError: hook bug" in caught.value.message
    assert handler.runs["plain"] == 0
    assert any("BrokenBefore raised before" in r.getMessage() for r in caplog.records), caplog.text


def test_after_raising_is_logged_and_the_reply_still_arrives(serve, caplog):
    log = []
    client = serve(Recorder("a", log), BrokenAfter()).client()
    with caplog.at_level(logging.ERROR, logger="dracula.middleware"):
        assert client.plain("t") == "t"
        assert client.pooled("u") == "u"
    # The hook after the broken one (in reverse order: "a") still ran.
    assert _entries(log, 4)[-1] == ("after", "a", "pooled", "ok")
    assert sum("BrokenAfter raised after" in r.getMessage() for r in caplog.records) == 2, caplog.text


# -- async hooks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("recorder", [AsyncRecorder, AsyncBeforeRecorder, AsyncAfterRecorder])
@pytest.mark.parametrize("method", KINDS)
def test_async_hooks_with_every_kind_of_handler(serve, handler, recorder, method):
    log = []
    client = serve(recorder("a", log)).client()
    for n, tag in enumerate(("t1", "t2"), 1):
        assert getattr(client, method)(tag) == tag
        # An async `after` is scheduled: wait for it before the next call's `before`.
        assert _entries(log, 2 * n) == [("before", "a", method), ("after", "a", method, "ok")] * n
    assert handler.runs[method] == 2


def test_async_after_runs_on_a_server_without_async_handlers(backend):
    """Nothing else starts a loop for coroutines on the thread backend: the async hook must."""
    from examples.pingpong import PingHandler

    from .helpers import pingpong_thrift

    log = []
    with (
        running(
            pingpong_thrift.PingService, PingHandler(), backend=backend, middleware=[AsyncAfterRecorder("a", log)]
        ) as server,
        contextlib.closing(client_of(server)) as client,
    ):
        assert client.ping() == "pong"
        assert _entries(log, 2) == [("before", "a", "ping"), ("after", "a", "ping", "ok")]


def test_sync_and_async_befores_keep_their_order(serve):
    log = []
    client = serve(Recorder("a", log), AsyncBeforeRecorder("b", log), Recorder("c", log)).client()
    for method in KINDS:
        del log[:]
        assert getattr(client, method)("t") == "t"
        assert _entries(log, 6) == [("before", name, method) for name in "abc"] + [
            ("after", name, method, "ok") for name in "cba"
        ]


def test_async_afters_run_after_the_sync_ones(serve):
    """An async `after` is scheduled, not awaited: it runs once the sync ones have."""
    log = []
    client = serve(Recorder("a", log), AsyncAfterRecorder("b", log), Recorder("c", log)).client()
    assert client.coro("t") == "t"
    assert _entries(log, 6) == [("before", name, "coro") for name in "abc"] + [
        ("after", name, "coro", "ok") for name in "cab"
    ]


# -- the command line -----------------------------------------------------------------------------


def test_serve_loads_middleware_in_order(cli_server):
    server = cli_server(
        "idl/showcase.thrift:Showcase",
        "examples.showcase:ShowcaseHandler",
        "--port",
        "0",
        "--middleware",
        "examples.middleware:CallLog",
        "--middleware",
        "examples.middleware:ReadOnly",
    )
    with contextlib.closing(
        thriftpy2.rpc.make_client(showcase_thrift.Showcase, "127.0.0.1", server.port, timeout=10_000)
    ) as client:
        with pytest.raises(TApplicationException) as refused:
            client.fail("x")
        assert refused.value.message == "fail is refused: this server is read-only"
        assert client.ping() is None
    server.wait_for(r"call Showcase.fail error in [0-9.]+ ms from \('127.0.0.1', \d+\)")
    server.wait_for(r"call Showcase.ping ok in")


def test_current_call_inside_plain_hooks_is_the_hooks_argument(backend):
    seen = []

    class Same:
        def before(self, call):
            seen.append(("before", dracula.current_call() is call))

        def after(self, call, outcome, seconds):
            seen.append(("after", dracula.current_call() is call))

    with running(hooked_thrift.Hooked, Handler(), backend=backend, middleware=[Same()]) as server:
        c = client_of(server)
        try:
            assert c.plain("x") == "x"
        finally:
            c.close()
        assert wait_until(lambda: len(seen) == 2, 5), seen
    assert seen == [("before", True), ("after", True)]
