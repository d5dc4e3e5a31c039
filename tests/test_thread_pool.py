"""The pool blocking handlers run in (server/thread_pool.py): threads on demand up to the cap,
reused while busy, retired when idle; results, errors and cancellation as concurrent.futures'."""

from __future__ import annotations

import threading

import pytest

from dracula.server.thread_pool import HandlerPool

from .helpers import wait_until


@pytest.fixture
def pool():
    pools = []

    def make(max_threads=4, idle_seconds=30.0):
        p = HandlerPool(max_threads, idle_seconds=idle_seconds)
        pools.append(p)
        return p

    yield make
    for p in pools:
        p.shutdown(wait=True, cancel_futures=True)


def held_calls(pool, n):
    """n calls that each wait for `release`; returns (futures, started, release)."""
    release = threading.Event()
    started = threading.Semaphore(0)

    def hold():
        started.release()
        release.wait(30)
        return threading.current_thread().name

    return [pool.submit(hold) for _ in range(n)], started, release


def test_threads_start_on_demand_up_to_the_cap_and_the_rest_queue(pool):
    p = pool(max_threads=3)
    assert len(p.threads) == 0  # nothing until a call needs one
    futures, started, release = held_calls(p, 5)
    for _ in range(3):
        assert started.acquire(timeout=30)
    assert len(p.threads) == 3 and p.queued == 2
    release.set()
    names = {f.result(30) for f in futures}
    assert names <= {t.name for t in p.threads} and len(names) <= 3


def test_an_idle_thread_is_reused(pool):
    p = pool()
    names = {p.submit(lambda: threading.current_thread().name).result(30) for _ in range(20)}
    assert len(names) == 1 and len(p.threads) == 1


def test_idle_threads_retire(pool):
    p = pool(max_threads=4, idle_seconds=0.05)
    futures, started, release = held_calls(p, 4)
    for _ in range(4):
        assert started.acquire(timeout=30)
    threads = list(p.threads)
    release.set()
    for f in futures:
        f.result(30)
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    assert wait_until(lambda: len(p.threads) == 0)
    assert p.submit(lambda: 42).result(30) == 42  # a new thread for the next call


def test_errors_reach_the_caller(pool):
    p = pool()

    def fails():
        raise KeyError("nope")

    with pytest.raises(KeyError):
        p.submit(fails).result(30)
    assert p.submit(lambda: "still serving").result(30) == "still serving"


def test_shutdown_cancels_what_waits_and_refuses_new_calls(pool):
    p = pool(max_threads=1)
    futures, started, release = held_calls(p, 3)
    assert started.acquire(timeout=30)
    p.shutdown(wait=False, cancel_futures=True)
    assert futures[1].cancelled() and futures[2].cancelled()
    with pytest.raises(RuntimeError):
        p.submit(lambda: None)
    release.set()
    assert futures[0].result(30).startswith("dracula-blocking")
    p.shutdown(wait=True)
    assert not p.threads
