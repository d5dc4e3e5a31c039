"""One of two instances shedding: the client's retries move the shed calls to the other, so the
pair's goodput stays near its capacity, and the extra attempts stay within the retry budget."""

from __future__ import annotations

import asyncio
import contextlib
import time

import dracula
from examples.showcase import ShowcaseHandler

from .helpers import running, showcase_thrift

Showcase = showcase_thrift.Showcase
HOLD_MS = 20  # each call holds its server's slot this long
CALLERS = 16  # the pair's capacity in calls in flight: 4 + 12 below
SECONDS = 2.0


async def _load(endpoints):
    """Goodput (calls answered per second) of CALLERS closed-loop callers, and the client."""
    ok = failed = 0
    async with dracula.make_aio_client(Showcase, endpoints, timeout=5.0) as client:
        stop = time.monotonic() + SECONDS

        async def caller():
            nonlocal ok, failed
            while time.monotonic() < stop:
                try:
                    await client.sleep_async(HOLD_MS)
                    ok += 1
                except Exception:
                    failed += 1

        await asyncio.gather(*[caller() for _ in range(CALLERS)])
    return ok / SECONDS, failed, client


def test_one_of_two_shedding_keeps_goodput_near_the_pairs_capacity_within_the_budget():
    with contextlib.ExitStack() as stack:
        free = [stack.enter_context(running(Showcase, ShowcaseHandler())) for _ in range(2)]
        small = stack.enter_context(running(Showcase, ShowcaseHandler(), max_requests=4))
        large = stack.enter_context(running(Showcase, ShowcaseHandler(), max_requests=12))
        capacity, failed, _ = asyncio.run(_load([("127.0.0.1", s.port) for s in free]))
        assert failed == 0
        goodput, failed, client = asyncio.run(_load([("127.0.0.1", small.port), ("127.0.0.1", large.port)]))
    budget = client._core.budget
    calls = goodput * SECONDS + failed
    print(
        "capacity %.0f/s, goodput %.0f/s, %d failed, %d retries, %d refused by the budget"
        % (capacity, goodput, failed, budget.retried, budget.refused)
    )
    assert goodput >= 0.9 * capacity, (goodput, capacity, failed, budget.retried)
    assert budget.retried <= budget.floor * budget.ttl + budget.percent * calls
    assert failed <= 0.01 * calls, (failed, calls)
