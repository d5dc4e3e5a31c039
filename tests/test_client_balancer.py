"""Balancing: power of two choices on outstanding calls across the hosts not ejected; a host that
refuses connections is ejected with a growing backoff and probed back; a host that appears in a
new DNS answer takes its share at once."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

import pytest

import dracula
from dracula.client.balancer import Balancer
from examples.showcase import ShowcaseHandler

from .helpers import running, showcase_thrift, wait_until

Showcase = showcase_thrift.Showcase
HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")


class Tally(ShowcaseHandler):
    def __init__(self, delay_ms=0):
        super().__init__()
        self.calls = 0
        self.delay_ms = delay_ms
        self.lock = threading.Lock()

    async def sleep_async(self, ms):
        with self.lock:
            self.calls += 1
        await asyncio.sleep((ms + self.delay_ms) / 1000)
        return "slept"


@contextlib.contextmanager
def fleet(*handlers, hosts=HOSTS):
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(running(Showcase, h, host=host)) for h, host in zip(handlers, hosts, strict=False)]


def test_p2c_spreads_concurrent_calls_over_three_addresses():
    handlers = [Tally() for _ in HOSTS]
    with fleet(*handlers) as servers:

        async def main():
            async with dracula.make_aio_client(Showcase, ["%s:%d" % (s.host, s.port) for s in servers]) as client:
                for _ in range(5):
                    await asyncio.gather(*[client.sleep_async(5) for _ in range(60)])

        asyncio.run(main())
    counts = [h.calls for h in handlers]
    assert sum(counts) == 300 and min(counts) >= 60, counts  # each near its third (100)


def test_p2c_sends_fewer_calls_to_a_slow_host():
    """Outstanding calls pile up on the slow host, so P2C picks it less."""
    handlers = [Tally(), Tally(), Tally(delay_ms=60)]
    with fleet(*handlers) as servers:

        async def main():
            async with dracula.make_aio_client(Showcase, [(s.host, s.port) for s in servers]) as client:

                async def worker():
                    for _ in range(10):
                        await client.sleep_async(5)

                await asyncio.gather(*[worker() for _ in range(30)])  # 30 callers, closed loop

        asyncio.run(main())
    fast, slow = handlers[0].calls + handlers[1].calls, handlers[2].calls
    assert slow < fast / 3, (fast, slow)


def test_a_refusing_host_is_ejected_then_probed_back_once_it_serves():
    with socket.socket() as s:  # a port nobody listens on, for now
        s.bind(("127.0.0.2", 0))
        port = s.getsockname()[1]
    live, late = Tally(), Tally()
    with (
        running(Showcase, live) as a,
        dracula.make_client(
            Showcase, [("127.0.0.1", a.port), ("127.0.0.2", port)], eject_base=0.05, eject_max=0.2
        ) as client,
    ):
        for _ in range(20):
            client.sleep_async(0)
        assert live.calls == 20
        dead = client._core.balancer.hosts[1]
        assert dead.failures >= 1
        with running(Showcase, late, host="127.0.0.2", port=port):
            assert wait_until(lambda: client.sleep_async(0) and late.calls >= 5, timeout=5.0)
        assert dead.failures == 0  # the probe succeeded: the backoff is forgotten


def test_a_fourth_instance_started_under_load_takes_its_share_within_5_seconds(monkeypatch):
    """A name resolving to three addresses (re-resolved every 0.5 s) under a steady load of 30
    callers; a fourth instance starts and joins the answer: within 5 s, in a one-second window,
    it serves within 10% of the mean, with no connection age anywhere."""
    answer = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "fleet.test":
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answer]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    hosts = (*HOSTS, "127.0.0.4")
    handlers = [Tally() for _ in hosts]
    stopping = threading.Event()
    errors = []

    def load(port):
        async def main():
            async with dracula.make_aio_client(Showcase, "fleet.test:%d" % port, resolve_interval=0.5) as client:

                async def caller():
                    while not stopping.is_set():
                        try:
                            await client.sleep_async(2)
                        except Exception as e:
                            errors.append(e)

                await asyncio.gather(*[caller() for _ in range(30)])

        asyncio.run(main())

    # A DNS name carries one port: the instances share it, on four addresses.
    with running(Showcase, handlers[0], host=hosts[0]) as first:
        port = first.port
        if not all(_bindable(host, port) for host in hosts[1:]):
            pytest.skip("port %d is taken on one of %s" % (port, hosts[1:]))
        with contextlib.ExitStack() as stack:
            for handler, host in zip(handlers[1:3], hosts[1:3], strict=True):
                stack.enter_context(running(Showcase, handler, host=host, port=port))
            answer[:] = hosts[:3]
            loader = threading.Thread(target=load, args=(port,))
            loader.start()
            try:
                assert wait_until(lambda: sum(h.calls for h in handlers) >= 300, 10)
                stack.enter_context(running(Showcase, handlers[3], host=hosts[3], port=port))
                answer.append(hosts[3])
                started = time.monotonic()
                windows = []
                while time.monotonic() - started < 5.0:
                    before = [h.calls for h in handlers]
                    stopping.wait(1.0)  # a one-second measuring window, not a synchronisation
                    windows.append([h.calls - b for h, b in zip(handlers, before, strict=True)])
            finally:
                stopping.set()
                loader.join(30)
    assert not errors, errors[:3]
    shares = [w[3] / (sum(w) / 4) for w in windows if sum(w)]
    print("the fourth instance's share of the mean, per second:", ["%.2f" % s for s in shares])
    assert any(abs(share - 1) <= 0.1 for share in shares), (shares, windows)


def _bindable(host, port):
    try:
        with socket.socket() as s:
            s.bind((host, port))
        return True
    except OSError:
        return False


def test_balancer_prefers_fewer_outstanding_and_backs_off_ejections():
    balancer = Balancer([("127.0.0.1", 1), ("127.0.0.2", 2)], lambda e: None, eject_base=1.0, eject_max=4.0)
    a, b = balancer.hosts
    a.outstanding = 3
    assert all(balancer.pick() is b for _ in range(20))
    balancer.eject(b)
    assert all(balancer.pick() is a for _ in range(20))
    first = b.ejected_until - time.monotonic()
    balancer.eject(b)
    balancer.eject(b)
    assert 0.5 <= first <= 1.0 and b.ejected_until - time.monotonic() > first
    balancer.eject(a)  # both out: the one due back first is probed
    assert balancer.pick() is min((a, b), key=lambda h: h.ejected_until)
    balancer.succeeded(b)
    assert balancer.pick() is b
    removed = balancer.update([("127.0.0.2", 2), ("127.0.0.3", 3)])
    assert removed == [a] and balancer.hosts[0] is b
