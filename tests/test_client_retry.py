"""Retries that are safe by construction: a call is sent again (to another host where there is
one) only when it provably did not run, or when it was cut off before any reply byte and its
method is declared idempotent; and a budget caps how many retries a client adds."""

from __future__ import annotations

import asyncio
import threading

import pytest
from thriftpy2.thrift import TApplicationException

import dracula
from dracula.client import CallTimeout, CutOff
from dracula.client.errors import LOADSHEDDING
from dracula.client.retry import RetryBudget
from examples.showcase import ShowcaseHandler

from .client_fakes import EXCEPTION, FakeServer
from .helpers import Background, free_port, running, showcase_thrift
from .test_client_aio import _result

Showcase = showcase_thrift.Showcase


def _shed(request):
    return request.reply(TApplicationException(LOADSHEDDING, "overloaded"), mtype=EXCEPTION)


class Counting(ShowcaseHandler):
    """Counts the calls of `add` it ran: a call run twice would show."""

    def __init__(self):
        super().__init__()
        self.added = 0
        self.lock = threading.Lock()
        self.holding = threading.Event()
        self.release = threading.Event()

    @dracula.blocking
    def sleep_blocking(self, ms):
        """Hold the call (and the server's slot) until the test releases it."""
        self.holding.set()
        self.release.wait(ms / 1000)
        return "held"

    def add(self, a, b):
        with self.lock:
            self.added += 1
        return a + b


def test_a_shed_call_is_retried_on_the_other_host_and_runs_once():
    """A real dracula server at --max-requests 1, its one slot held by a slow call, sheds; the
    client sends those calls to the other server. Each call runs exactly once."""
    shedding, other = Counting(), Counting()
    with running(Showcase, shedding, max_requests=1) as a, running(Showcase, other) as b:
        hold = dracula.make_client(Showcase, ("127.0.0.1", a.port), transport="framed")
        held = Background(hold.sleep_blocking, 10_000)
        with dracula.make_client(Showcase, [("127.0.0.1", a.port), ("127.0.0.1", b.port)]) as client:
            assert shedding.holding.wait(5)
            assert [client.add(i, 1) for i in range(40)] == [i + 1 for i in range(40)]
            assert shedding.added == 0 and other.added == 40
            assert client._core.budget.retried >= 1  # it did go to the shedding host
        shedding.release.set()
        assert held.result() == "held"
        hold.close()


def test_a_refused_connection_is_retried_on_another_host_and_the_host_is_ejected():
    with (
        running(Showcase, ShowcaseHandler()) as live,
        dracula.make_client(Showcase, [("127.0.0.1", free_port()), ("127.0.0.1", live.port)]) as client,
    ):
        assert [client.add(i, i) for i in range(30)] == [2 * i for i in range(30)]
        assert client._core.budget.retried <= 2  # the dead host is ejected, not tried per call


def test_a_request_cut_off_is_retried_only_for_idempotent_methods():
    """The scripted server closes the connection on its first two requests without answering:
    the call may have run."""
    good = _result("add", success=3)

    def respond(request):
        return None if request.number < 2 else request.reply(good)

    with FakeServer(respond) as fake:
        with (
            dracula.make_client(Showcase, ("127.0.0.1", fake.port), transport="framed") as client,
            pytest.raises(CutOff),
        ):
            client.add(1, 2)
        assert fake.requests == 1  # not sent again
        with dracula.make_client(Showcase, ("127.0.0.1", fake.port), transport="framed", idempotent={"add"}) as client:
            assert client.add(1, 2) == 3
        assert fake.requests == 3


def test_a_connection_announced_closed_with_drain_is_not_used_again():
    """A THeader reply carrying `:drain` (Envoy's header, which dracula's drain sends): the next
    call takes a new connection; the announced one gets no request."""

    def respond(request):
        return request.reply(_result("add", success=5), headers={":drain": "1"})

    with FakeServer(respond) as fake, dracula.make_client(Showcase, ("127.0.0.1", fake.port)) as client:
        for _ in range(3):
            assert client.add(2, 3) == 5
        assert fake.connections == 3 and fake.requests == 3


def test_the_aio_client_retries_the_same_way():
    """Refused connection, cut-off idempotent call and `:drain`, on the asyncio client."""
    good = _result("add", success=5)

    def respond(request):
        if request.number == 0:
            return None  # cut off
        return request.reply(good, headers={":drain": "1"})

    async def main(port):
        async with dracula.make_aio_client(
            Showcase, [("127.0.0.1", free_port()), ("127.0.0.1", port)], idempotent={"add"}
        ) as client:
            assert [await client.add(2, 3) for _ in range(4)] == [5] * 4
            return client._core.budget.retried

    with FakeServer(respond) as fake:
        retried = asyncio.run(main(fake.port))
        assert fake.requests == 5 and fake.connections == 5  # one cut off, then one per drain
        assert 1 <= retried <= 3


def test_a_timed_out_call_is_not_retried():
    with (
        running(Showcase, ShowcaseHandler()) as a,
        running(Showcase, ShowcaseHandler()) as b,
        dracula.make_client(
            Showcase, [("127.0.0.1", a.port), ("127.0.0.1", b.port)], transport="framed", idempotent={"sleep_async"}
        ) as client,
    ):
        with pytest.raises(CallTimeout):
            client.call("sleep_async", 300, timeout=0.05)
        assert client._core.budget.retried == 0


def test_the_budget_caps_retries_when_every_host_sheds():
    """Both hosts shed everything: 50 calls fail with LOADSHEDDING, and the retries they add
    stay within 20% of the calls (no floor here), not 2 per call."""
    with (
        FakeServer(_shed) as a,
        FakeServer(_shed) as b,
        dracula.make_client(
            Showcase,
            [("127.0.0.1", a.port), ("127.0.0.1", b.port)],
            transport="framed",
            retry_floor=0,
            retry_percent=0.2,
            max_attempts=3,
        ) as client,
    ):
        for i in range(50):
            with pytest.raises(TApplicationException) as e:
                client.add(i, i)
            assert e.value.type == LOADSHEDDING
        assert a.requests + b.requests - 50 == client._core.budget.retried <= 10


def test_retry_budget_grants_a_percentage_of_calls_plus_a_floor():
    budget = RetryBudget(percent=0.2, floor=0.0)
    assert not budget.withdraw()
    for _ in range(10):
        budget.deposit()
    assert budget.withdraw() and budget.withdraw() and not budget.withdraw()
    floor = RetryBudget(percent=0.0, floor=1.0, ttl=10.0)
    assert sum(floor.withdraw() for _ in range(20)) == 10
