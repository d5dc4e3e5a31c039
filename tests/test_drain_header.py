"""THeader's `:drain` (#21): when dracula wants a THeader connection gone (--max-connection-age,
the graceful drain) its replies carry the header `:drain`, which tells the client (Envoy's
thrift_proxy, dracula's own client) to stop using the connection, and the server closes it only
if the client has not after --drain-grace. (Framed connections are closed between calls, as
before: tests/test_fleet.py.) Apache Thrift's THeaderProtocol client reads the reply headers; both backends."""

from __future__ import annotations

import threading

import pytest

import dracula
from examples.showcase import ShowcaseHandler

from .apache_client import HeaderClient
from .helpers import Background, running, showcase_thrift, wait_until
from .wire_client import closed_by_server

DRAIN = b":drain"


class HeldLookup(ShowcaseHandler):
    """lookup(key) waits (in the thread pool) until the test releases it, then returns key."""

    def __init__(self):
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    @dracula.blocking
    def lookup(self, key):
        self.entered.set()
        assert self.release.wait(15)
        return key


def says_drain(client) -> bool:
    return DRAIN in client.read_headers()


def test_an_old_connection_says_drain_then_closes_after_the_grace(backend):
    with running(
        showcase_thrift.Showcase, ShowcaseHandler(), backend=backend, max_connection_age=0.2, drain_grace=1.0
    ) as server:
        client = HeaderClient(server.port)
        try:
            # Served as usual until the connection is past its age: then a reply says `:drain`.
            assert client.client.add(1, 2) == 3
            assert not says_drain(client)
            wait_until(lambda: client.client.add(2, 3) == 5 and says_drain(client))
            # Within the grace the connection still serves a client that ignores the header ...
            assert client.client.add(3, 4) == 7
            assert says_drain(client)
            # ... and the server closes it once the grace is over.
            assert closed_by_server(client.socket.handle)
        finally:
            client.close()


def test_a_client_that_honours_drain_closes_first_and_no_call_fails(backend):
    """A client that reconnects when told (what Envoy and dracula's client do) never has a
    call cut off, however many times its connection ages out."""
    with running(
        showcase_thrift.Showcase, ShowcaseHandler(), backend=backend, max_connection_age=0.1, drain_grace=5.0
    ) as server:
        clients = [HeaderClient(server.port)]
        calls = iter(range(10**9))

        def call_and_follow_drain() -> int:
            i = next(calls)
            assert clients[-1].client.add(i, 1) == i + 1  # no call fails
            if says_drain(clients[-1]):
                clients[-1].close()
                clients.append(HeaderClient(server.port))
            return len(clients)

        try:
            wait_until(lambda: call_and_follow_drain() > 3, interval=0)
        finally:
            clients[-1].close()


def test_the_drain_tells_busy_and_idle_theader_connections(backend):
    """On close(): a call in flight gets `:drain` on its reply (the reactor; the thread
    backend, on the connection's next reply); an idle THeader connection
    stays open for the grace, and a call on it is answered with `:drain`; the server stops as
    soon as both clients have closed, well before the grace (30 s) is over."""
    handler = HeldLookup()
    with running(showcase_thrift.Showcase, handler, backend=backend, drain_grace=30.0, graceful_timeout=30.0) as server:
        busy, idle = HeaderClient(server.port), HeaderClient(server.port)
        try:
            assert idle.client.add(1, 1) == 2
            held = Background(busy.client.lookup, "k")
            assert handler.entered.wait(10)
            server.close()
            wait_until(lambda: server.state.draining)
            assert idle.client.add(2, 2) == 4
            assert says_drain(idle)
            handler.release.set()
            assert held.result(10) == "k"
            # The reactor marks replies of calls in flight too; a connection's thread decides
            # when it reads the call, so there the connection's next reply says it.
            assert says_drain(busy) or (backend == "thread" and busy.client.add(3, 3) == 6 and says_drain(busy))
        finally:
            handler.release.set()
            busy.close()
            idle.close()
        assert server.stopped.wait(10)


@pytest.mark.parametrize("age", [0.0, 0.1])
def test_a_connection_that_is_not_due_says_nothing(backend, age):
    """No `:drain` on a young connection, nor without --max-connection-age."""
    with running(showcase_thrift.Showcase, ShowcaseHandler(), backend=backend, max_connection_age=age or 0.0) as server:
        client = HeaderClient(server.port)
        try:
            assert client.client.add(1, 2) == 3
            assert not says_drain(client)
        finally:
            client.close()


def test_a_connection_that_had_sent_nothing_when_the_drain_began_is_told_too(backend):
    """Its first message shows THeader only during the drain: that reply says `:drain` too (the
    server closes after it; unmarked, the client would write its next request into the close)."""
    with running(showcase_thrift.Showcase, ShowcaseHandler(), backend=backend, drain_grace=30.0) as server:
        client = HeaderClient(server.port)
        try:
            wait_until(lambda: len(server.state.connections) == 1)
            server.close()
            wait_until(lambda: server.state.draining)
            assert client.client.add(1, 2) == 3
            assert says_drain(client)
        finally:
            client.close()
        assert server.stopped.wait(10)
