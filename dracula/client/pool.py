"""Per-host connection pools: bounded, idle connections reused last-in first-out (the warmest
first; the coldest age out), closed past `idle_timeout` idle or `max_age` old, and a connection
that ended or was told to (`reusable` False) never handed out again.

A connection is checked out for exactly one call at a time, so a reply can only ever be read by
the call that wrote its request; a call that fails mid-way marks its connection not reusable and
the pool closes it. AioPool serves coroutines on one loop; SyncPool any number of threads.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from dracula.client.addresses import Endpoint
from dracula.client.deadline import left
from dracula.client.errors import CallTimeout, NotSent


class Connection(Protocol):
    opened_at: float
    last_used: float
    broken: bool

    @property
    def usable(self) -> bool: ...

    def close(self) -> None: ...


C = TypeVar("C", bound=Connection)


class IdleStack(Generic[C]):
    """The idle connections of one host and the count of all it has open (or opening)."""

    def __init__(self, max_size: int, idle_timeout: float | None, max_age: float | None) -> None:
        self.max_size = max_size
        self.idle_timeout = idle_timeout
        self.max_age = max_age
        self.idle: collections.deque[C] = collections.deque()
        self.size = 0
        self.closed = False

    def fresh(self, conn: C, now: float, probe: bool = True) -> bool:
        """Fit for a call: not broken (`probe`: nor closed by the peer, which may cost a system
        call: done as a connection is handed out, not as it is put back), not too old or idle."""
        if not (conn.usable if probe else not conn.broken):
            return False
        if self.max_age is not None and now - conn.opened_at > self.max_age:
            return False
        return self.idle_timeout is None or now - conn.last_used <= self.idle_timeout

    def pop(self) -> C | None:
        """The most recently used idle connection still fit for a call; stale ones are closed."""
        idle = self.idle
        if not idle:
            return None
        now = time.monotonic()
        max_age, idle_timeout = self.max_age, self.idle_timeout
        while idle:
            conn = idle.pop()
            # fresh(conn, now), its cheap checks first: a stale connection costs no probe
            if (
                (max_age is None or now - conn.opened_at <= max_age)
                and (idle_timeout is None or now - conn.last_used <= idle_timeout)
                and conn.usable
            ):
                return conn
            self.discard(conn)
        return None

    def take(self) -> C | None:
        """pop() without the probe: the newest idle connection not too old nor idle too long
        (stale ones are closed), for the caller to probe after letting go of its lock."""
        idle = self.idle
        if not idle:
            return None
        now = time.monotonic()
        max_age, idle_timeout = self.max_age, self.idle_timeout
        while idle:
            conn = idle.pop()
            if (
                not conn.broken
                and (max_age is None or now - conn.opened_at <= max_age)
                and (idle_timeout is None or now - conn.last_used <= idle_timeout)
            ):
                return conn
            self.discard(conn)
        return None

    def push(self, conn: C) -> bool:
        """Keep `conn` for reuse; False (and closed) when it is not fit to be."""
        now = time.monotonic()
        if (
            self.closed
            or conn.broken
            or (self.max_age is not None and now - conn.opened_at > self.max_age)
            or (self.idle_timeout is not None and now - conn.last_used > self.idle_timeout)
        ):  # not fresh(conn, now, probe=False)
            self.discard(conn)
            return False
        conn.last_used = now
        self.idle.append(conn)
        return True

    def discard(self, conn: C) -> None:
        conn.close()
        self.size -= 1

    def close_idle(self) -> None:
        self.closed = True
        while self.idle:
            self.discard(self.idle.pop())


class AioPool(Generic[C]):
    def __init__(
        self,
        endpoint: Endpoint,
        connect: Callable[[Endpoint, float | None], Awaitable[C]],
        max_size: int,
        idle_timeout: float | None,
        max_age: float | None,
    ) -> None:
        self.endpoint = endpoint
        self._connect = connect
        self.stack: IdleStack[C] = IdleStack(max_size, idle_timeout, max_age)
        self._waiters: collections.deque[asyncio.Future[C | None]] = collections.deque()

    async def acquire(self, deadline: float | None) -> C:
        stack = self.stack
        while True:
            if stack.closed:
                raise NotSent("the client is closed")
            conn = stack.pop()
            if conn is not None:
                return conn
            if stack.size < stack.max_size:
                stack.size += 1
                try:
                    return await self._connect(self.endpoint, left(deadline))
                except BaseException:
                    stack.size -= 1
                    self._wake(None)
                    raise
            waiter: asyncio.Future[C | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                got = await asyncio.wait_for(waiter, left(deadline, "waiting for a connection: the call's"))
            except asyncio.TimeoutError:
                raise CallTimeout(
                    "call deadline passed waiting for one of %d connections to %s:%d" % (stack.max_size, *self.endpoint)
                ) from None
            except BaseException:
                handed = waiter.result() if waiter.done() and not waiter.cancelled() else None
                if handed is not None:
                    self.release(handed)  # handed over as we were cancelled: pass it on
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if got is not None:
                return got  # handed over directly by release()

    def release(self, conn: C) -> None:
        if not self.stack.closed and self.stack.fresh(conn, time.monotonic(), probe=False):
            conn.last_used = time.monotonic()
            if self._wake(conn):
                return
            self.stack.push(conn)
        else:
            self.stack.discard(conn)
            self._wake(None)

    def _wake(self, conn: C | None) -> bool:
        """Hand `conn` (or, with None, a free slot) to the first waiter still waiting."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    def close(self) -> None:
        self.stack.close_idle()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(NotSent("the client is closed"))


class SyncPool(Generic[C]):
    def __init__(
        self,
        endpoint: Endpoint,
        connect: Callable[[Endpoint, float | None], C],
        max_size: int,
        idle_timeout: float | None,
        max_age: float | None,
    ) -> None:
        self.endpoint = endpoint
        self._connect = connect
        self.stack: IdleStack[C] = IdleStack(max_size, idle_timeout, max_age)
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)
        self._waiting = 0  # threads waiting in acquire()

    def acquire(self, deadline: float | None) -> C:
        stack = self.stack
        while True:
            with self._lock:
                if stack.closed:
                    raise NotSent("the client is closed")
                conn = stack.take()
            if conn is None:
                break
            # The probe (a system call, the GIL let go) outside the lock: other threads take
            # and return connections meanwhile instead of queueing on the lock behind it.
            if conn.usable:
                return conn
            with self._lock:
                stack.discard(conn)  # its slot is this thread's to reuse below
        with self._lock:
            while True:
                if stack.closed:
                    raise NotSent("the client is closed")
                conn = stack.pop()
                if conn is not None:
                    return conn
                if stack.size < stack.max_size:
                    stack.size += 1
                    break
                self._waiting += 1
                try:
                    woken = self._freed.wait(left(deadline, "waiting for a connection: the call's"))
                finally:
                    self._waiting -= 1
                if not woken:
                    left(deadline, "waiting for a connection: the call's")  # raises once it passed
        try:
            return self._connect(self.endpoint, left(deadline))  # outside the lock: it blocks
        except BaseException:
            with self._lock:
                stack.size -= 1
                self._freed.notify()
            raise

    def release(self, conn: C) -> None:
        stack = self.stack
        now = time.monotonic()
        with self._lock:
            # stack.push(conn), inline: every call's path
            if (
                stack.closed
                or conn.broken
                or (stack.max_age is not None and now - conn.opened_at > stack.max_age)
                or (stack.idle_timeout is not None and now - conn.last_used > stack.idle_timeout)
            ):
                stack.discard(conn)
            else:
                conn.last_used = now
                stack.idle.append(conn)
            if self._waiting:
                self._freed.notify()

    def close(self) -> None:
        with self._lock:
            self.stack.close_idle()
            self._freed.notify_all()
