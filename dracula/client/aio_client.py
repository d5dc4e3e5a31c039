"""`dracula.make_aio_client`: a thriftpy2 service's client for asyncio, any number of concurrent
calls on one client (each on a connection of its own from the host's pool)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from dracula.client.addresses import Address, Endpoint, resolve
from dracula.client.aio_connection import AioConnection
from dracula.client.balancer import Host
from dracula.client.core import ClientCore
from dracula.client.deadline import _UNSET, left
from dracula.client.hooks import ClientCall
from dracula.client.options import ClientOptions
from dracula.client.pool import AioPool


class AioClient:
    """`await client.method(*args)`, as thriftpy2's aio client; `await client.call("method",
    *args, timeout=seconds)` for a timeout of the call's own. `await client.close()`, or
    `async with`."""

    def __init__(self, service: Any, addresses: Address | Sequence[Address], options: ClientOptions) -> None:
        self._options = options  # before the core: it makes the pools of literal addresses
        self._core: ClientCore[AioPool[AioConnection]] = ClientCore(service, addresses, options, self._new_pool)

    def _new_pool(self, endpoint: Endpoint) -> AioPool[AioConnection]:
        o = self._options
        return AioPool(endpoint, self._connect, o.max_connections, o.idle_timeout, o.max_age)

    async def _connect(self, endpoint: Endpoint, timeout: float | None) -> AioConnection:
        connect_timeout = self._options.connect_timeout
        if timeout is not None:
            connect_timeout = min(timeout, connect_timeout)
        return await AioConnection.open(endpoint, self._core.new_wire(), connect_timeout)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        self._core.method(name)  # AttributeError for a method the service lacks

        async def method(*args: Any, **kwargs: Any) -> Any:
            return await self.call(name, *args, **kwargs)

        method.__name__ = name
        self.__dict__[name] = method
        return method

    async def call(self, name: str, *args: Any, timeout: Any = _UNSET, **kwargs: Any) -> Any:
        core = self._core
        call = core.begin(name, args, kwargs, timeout)
        hooks = core.hooks
        started = time.monotonic() if hooks.active else 0.0
        error: BaseException | None = None
        try:
            if hooks.active:
                hooks.before(call)  # one that raises fails the call: nothing is sent
            if core.lookup and core.lookup_due():
                await self._lookup()
            while True:
                host = core.balancer.pick(call.tried)
                try:
                    return await self._attempt(call, host)
                except BaseException as e:
                    if not isinstance(e, Exception) or not core.retry(call, host, e):
                        raise
        except BaseException as e:
            error = e
            raise
        finally:
            if hooks.active:
                hooks.after(call, error, time.monotonic() - started)

    async def _attempt(self, call: ClientCall, host: Host[AioPool[AioConnection]]) -> Any:
        core = self._core
        call.attempts += 1
        call.host = host.label
        host.outstanding += 1
        host.calls += 1
        conn: AioConnection | None = None
        try:
            conn = await host.pool.acquire(call.deadline)
            remaining = left(call.deadline)
            spec = call.spec
            data = conn.wire.request(spec, conn.next_seqid(), call.args, core.request_headers(call, remaining))
            if spec.oneway:
                conn.send(data)
                return None
            return core.answer(host, conn, await conn.call(data, remaining))
        finally:
            host.outstanding -= 1
            if conn is not None:
                host.pool.release(conn)

    async def _lookup(self) -> None:
        core = self._core
        try:
            found = await asyncio.get_running_loop().run_in_executor(None, resolve, core.configured)
        except OSError:
            found = None
        for gone in core.looked_up(found):
            gone.pool.close()

    async def close(self) -> None:
        """Close every pooled connection; calls still running finish on theirs."""
        self._core.closed = True
        for host in self._core.balancer.hosts:
            host.pool.close()

    async def __aenter__(self) -> AioClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
