"""`dracula.make_client`: a thriftpy2 service's blocking client, safe to share between threads
(each call takes a connection of its own from the host's pool)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from dracula.client.addresses import Address, Endpoint, resolve
from dracula.client.balancer import Host
from dracula.client.core import _UNSET, ClientCore
from dracula.client.deadline import left
from dracula.client.hooks import ClientCall
from dracula.client.options import ClientOptions
from dracula.client.pool import SyncPool
from dracula.client.sync_connection import SyncConnection


class SyncClient:
    """`client.method(*args)`, as thriftpy2's client; `client.call("method", *args,
    timeout=seconds)` for a timeout of the call's own. `client.close()`, or `with`."""

    def __init__(self, service: Any, addresses: Address | Sequence[Address], options: ClientOptions) -> None:
        self._options = options  # before the core: it makes the pools of literal addresses
        self._core: ClientCore[SyncPool[SyncConnection]] = ClientCore(service, addresses, options, self._new_pool)
        self._lookup_lock = threading.Lock()

    def _new_pool(self, endpoint: Endpoint) -> SyncPool[SyncConnection]:
        o = self._options
        return SyncPool(endpoint, self._connect, o.max_connections, o.idle_timeout, o.max_age)

    def _connect(self, endpoint: Endpoint, timeout: float | None) -> SyncConnection:
        connect_timeout = self._options.connect_timeout
        if timeout is not None:
            connect_timeout = min(timeout, connect_timeout)
        return SyncConnection.open(endpoint, self._core.new_wire(), connect_timeout)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        self._core.method(name)  # AttributeError for a method the service lacks

        def method(*args: Any, **kwargs: Any) -> Any:
            return self.call(name, *args, **kwargs)

        method.__name__ = name
        self.__dict__[name] = method
        return method

    def call(self, name: str, *args: Any, timeout: Any = _UNSET, **kwargs: Any) -> Any:
        core = self._core
        call = core.begin(name, args, kwargs, timeout)
        hooks = core.hooks
        started = time.monotonic() if hooks.active else 0.0
        error: BaseException | None = None
        try:
            if hooks.active:
                hooks.before(call)  # one that raises fails the call: nothing is sent
            if core.lookup and core.lookup_due():
                self._lookup()
            while True:
                host = core.balancer.pick(call.tried)
                try:
                    return self._attempt(call, host)
                except Exception as e:
                    if not core.retry(call, host, e):
                        raise
        except BaseException as e:
            error = e
            raise
        finally:
            if hooks.active:
                hooks.after(call, error, time.monotonic() - started)

    def _attempt(self, call: ClientCall, host: Host[SyncPool[SyncConnection]]) -> Any:
        core = self._core
        call.attempts += 1
        call.host = host.label
        host.outstanding += 1  # racy under threads by a count or two: P2C only compares
        host.calls += 1
        conn: SyncConnection | None = None
        try:
            conn = host.pool.acquire(call.deadline)
            remaining = left(call.deadline)
            spec = call.spec
            data = conn.wire.request(spec, conn.next_seqid(), call.args, core.request_headers(call, remaining))
            if spec.oneway:
                conn.send(data, remaining)
                return None
            return core.answer(host, conn, conn.call(data, remaining))
        finally:
            host.outstanding -= 1
            if conn is not None:
                host.pool.release(conn)

    def _lookup(self) -> None:
        core = self._core
        with self._lookup_lock:
            if not core.lookup_due():
                return  # another thread just did
            try:
                found: list[Endpoint] | None = resolve(core.configured)
            except OSError:
                found = None
            for gone in core.looked_up(found):
                gone.pool.close()

    def close(self) -> None:
        """Close every pooled connection; calls still running finish on theirs."""
        self._core.closed = True
        for host in self._core.balancer.hosts:
            host.pool.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
