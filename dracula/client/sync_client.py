"""`dracula.make_client`: a thriftpy2 service's blocking client, safe to share between threads
(each call takes a connection of its own from the host's pool)."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Sequence
from typing import Any

from dracula.client import compiled
from dracula.client.addresses import Address, Endpoint, resolve
from dracula.client.balancer import Host
from dracula.client.core import ClientCore
from dracula.client.deadline import _UNSET, call_deadline, left, request_headers
from dracula.client.errors import NotSent
from dracula.client.hooks import ClientCall
from dracula.client.messages import DRAIN_HEADER, HEADER, Method
from dracula.client.options import ClientOptions
from dracula.client.pool import SyncPool
from dracula.client.sync_connection import SyncConnection
from dracula.server.context import current

# The compiled _invoke (client/_cclient.pyx), unless compiled.py chose the pure-Python code.
_compiled: Any = compiled.compiled_module if compiled.IMPLEMENTATION == "compiled" else None


class SyncClient:
    """`client.method(*args)`, as thriftpy2's client; `client.call("method", *args,
    timeout=seconds)` for a timeout of the call's own. `client.close()`, or `with`."""

    def __init__(self, service: Any, addresses: Address | Sequence[Address], options: ClientOptions) -> None:
        self._options = options  # before the core: it makes the pools of literal addresses
        self._core: ClientCore[SyncPool[SyncConnection]] = ClientCore(service, addresses, options, self._new_pool)
        self._lookup_lock = threading.Lock()
        self._header = options.transport == HEADER
        core = self._core
        # The one host every call goes to, when it never changes (a literal address: no DNS)
        # and no hooks run: calls then take the short way through _invoke.
        hosts = core.balancer.hosts
        self._only = hosts[0] if len(hosts) == 1 and not core.lookup and not core.hooks.active else None

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
        spec = self._core.method(name)  # AttributeError for a method the service lacks
        method: Any
        if _compiled is not None:  # _invoke, compiled (client/_cclient.pyx)
            method = _compiled.SyncMethod(self, spec, name)
        else:
            # A partial, not a closure: no Python frame of its own between the caller and _invoke.
            method = functools.partial(self._invoke, spec)
            method.__name__ = name
        self.__dict__[name] = method
        return method

    def call(self, name: str, *args: Any, timeout: Any = _UNSET, **kwargs: Any) -> Any:
        core = self._core
        if core.closed:
            raise NotSent("the client is closed")
        if _compiled is not None:
            return _compiled.invoke(self, core.method(name), args, kwargs, timeout)
        return self._invoke(core.method(name), *args, timeout=timeout, **kwargs)

    def _invoke(self, spec: Method, /, *args: Any, timeout: Any = _UNSET, **kwargs: Any) -> Any:
        core = self._core
        if core.closed:
            raise NotSent("the client is closed")
        if not kwargs and len(args) == spec.nargs:
            call_args = spec.args_cls(*args)
        else:
            call_args = spec.make_args(args, kwargs)
        if timeout is _UNSET:
            timeout = core.options.timeout
        deadline = None if timeout is None and current.get(None) is None else call_deadline(timeout)
        core.budget.deposit()
        host = self._only
        if host is None:  # hooks, names to look up or several hosts: every step in full
            return self._call(ClientCall(spec, call_args, deadline))
        # The usual client: one host, no hooks. The first attempt needs no ClientCall; one is
        # made only when it fails, for the retry decision and any further attempt.
        host.calls += 1
        try:
            return self._attempt(host, spec, call_args, deadline, None)
        except Exception as e:
            call = ClientCall(spec, call_args, deadline)
            call.attempts = 1
            call.host = host.label
            if not core.retry(call, host, e):
                raise
        return self._call(call)

    def _call(self, call: ClientCall) -> Any:
        """A call through every step: hooks, DNS, the balancer, retries."""
        core = self._core
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
                call.attempts += 1
                call.host = host.label
                host.calls += 1
                try:
                    return self._attempt(host, call.spec, call.args, call.deadline, call.headers)
                except Exception as e:
                    if not core.retry(call, host, e):
                        raise
        except BaseException as e:
            error = e
            raise
        finally:
            if hooks.active:
                hooks.after(call, error, time.monotonic() - started)

    def _attempt(
        self,
        host: Host[SyncPool[SyncConnection]],
        spec: Method,
        args: Any,
        deadline: float | None,
        headers: dict[str, str] | None,
    ) -> Any:
        """One attempt on `host`: take a connection, write, read, decode."""
        host.outstanding += 1  # racy under threads by a count or two: P2C only compares
        pool = host.pool
        conn: SyncConnection | None = None
        try:
            conn = pool.acquire(deadline)
            remaining = None if deadline is None else left(deadline)
            if self._header and (headers or remaining is not None):
                headers = request_headers(headers, remaining)
            conn.seqid = seqid = (conn.seqid + 1) & 0x7FFFFFFF
            data = conn.wire.request(spec, seqid, args, headers)
            if spec.oneway:
                conn.send(data, remaining)
                return None
            reply = conn.call(data, remaining)
            if DRAIN_HEADER in reply.headers or host.failures:
                return self._core.answer(host, conn, reply)  # retires the connection, resets the host
            # core.answer's whole work for a healthy host and a connection kept: the decode
            return conn.wire.decode(reply)
        finally:
            host.outstanding -= 1
            if conn is not None:
                pool.release(conn)

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
