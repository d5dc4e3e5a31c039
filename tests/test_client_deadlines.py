"""Deadlines: the client's and the call's `timeout`, and inside a dracula handler what is left of
`dracula.current_call().deadline`, sent on as THeader `client_timeout`."""

from __future__ import annotations

import asyncio
import time

import pytest

import dracula
from dracula.client import CallTimeout
from dracula.server.context import current
from examples.showcase import ShowcaseHandler

from .client_fakes import FakeServer
from .helpers import running, showcase_thrift, wait_until
from .test_client_aio import _result

Showcase = showcase_thrift.Showcase


class Hop(ShowcaseHandler):
    """Server A: its sleep methods call server B's sleep_async(1000) and note how that ended."""

    def __init__(self, b_port):
        super().__init__()
        self.aio = dracula.make_aio_client(Showcase, ("127.0.0.1", b_port))
        self.sync = dracula.make_client(Showcase, ("127.0.0.1", b_port))
        self.outcomes = []

    async def sleep_async(self, ms):
        started = time.monotonic()
        try:
            return await self.aio.sleep_async(1000)
        except BaseException as e:  # CallTimeout, or A cancels its handler at the same deadline
            self.outcomes.append(("aio", time.monotonic() - started, e))
            raise

    @dracula.blocking
    def sleep_blocking(self, ms):
        started = time.monotonic()
        try:
            return self.sync.sleep_async(1000)
        except CallTimeout as e:
            self.outcomes.append(("sync", time.monotonic() - started, e))
            raise


@pytest.mark.parametrize("method", ["sleep_async", "sleep_blocking"])
def test_two_hops_fail_at_the_first_with_timeout_when_the_first_deadline_passes(method):
    """A's handler calls B with what is left of 300 ms; B sleeps 1 s: A's call to B fails with
    TIMEOUT after about 300 ms, and so does the outer call, not after B's second."""
    with running(Showcase, ShowcaseHandler()) as b:
        hop = Hop(b.port)
        with running(Showcase, hop) as a, dracula.make_client(Showcase, ("127.0.0.1", a.port)) as client:
            started = time.monotonic()
            with pytest.raises(CallTimeout) as e:
                client.call(method, 0, timeout=0.3)
            elapsed = time.monotonic() - started
            assert e.value.type == 12
            assert 0.25 <= elapsed < 0.7, elapsed
            assert wait_until(lambda: hop.outcomes, timeout=2.0)
            [(_, inner, error)] = hop.outcomes
            assert 0.2 <= inner < 0.45, inner  # what was left of 300 ms, less the first hop
            assert isinstance(error, (CallTimeout, asyncio.CancelledError)), error
        hop.sync.close()


class FakeCall:
    """What `dracula.current_call()` reads while a handler runs: only the deadline matters."""

    def __init__(self, deadline):
        self.context = type("Context", (), {"deadline": deadline})()


def _served_with(deadline):
    return current.set(FakeCall(deadline))


def test_a_call_made_with_no_time_left_fails_at_once_without_connecting():
    with FakeServer(lambda r: r.reply(_result("add", success=1))) as fake:
        token = _served_with(time.monotonic() - 0.01)
        try:
            with (
                dracula.make_client(Showcase, ("127.0.0.1", fake.port)) as client,
                pytest.raises(CallTimeout, match="no time left"),
            ):
                client.add(1, 2)

            async def main():
                async with dracula.make_aio_client(Showcase, ("127.0.0.1", fake.port)) as aclient:
                    with pytest.raises(CallTimeout, match="no time left"):
                        await aclient.add(1, 2)

            asyncio.run(main())
        finally:
            current.reset(token)
        assert fake.connections == 0


def test_client_timeout_header_carries_the_smallest_deadline():
    seen = []

    def respond(request):
        seen.append(request.headers.get("client_timeout"))
        return request.reply(_result("add", success=3))

    with FakeServer(respond) as fake, dracula.make_client(Showcase, ("127.0.0.1", fake.port), timeout=5.0) as client:
        client.add(1, 2)  # the client's own timeout: 5 s
        client.call("add", 1, 2, timeout=0.25)  # the call's
        token = _served_with(time.monotonic() + 0.5)
        try:
            client.add(1, 2)  # the served call's 0.5 s beat the client's 5 s
            client.call("add", 1, 2, timeout=0.1)  # the call's 0.1 s beats the 0.5 s left
        finally:
            current.reset(token)
        client.call("add", 1, 2, timeout=None)  # none at all: no header
        assert fake.connections == 1  # one connection, reused with each call's timeout
    ms = [None if v is None else int(v) for v in seen]
    assert 4900 <= ms[0] <= 5000 and 200 <= ms[1] <= 250 and 400 <= ms[2] <= 500 and 50 <= ms[3] <= 100
    assert ms[4] is None
