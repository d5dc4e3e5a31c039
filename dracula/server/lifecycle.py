"""Server lifecycle: bind, serve on the chosen backend, stop on signals, drain gracefully."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import threading
from collections.abc import Callable, Sequence
from http.server import ThreadingHTTPServer
from types import FrameType
from typing import Any

from dracula.config import Config
from dracula.ops.metrics import Metrics, new_registry, serve_status
from dracula.ops.observe import ServerObserver, builtin_middleware
from dracula.server.backends import backend_class
from dracula.server.dispatch import Dispatcher
from dracula.server.health import health_method
from dracula.server.listen import address_of, listen
from dracula.server.middleware import Chain
from dracula.server.on_connect import OnConnect, checked_hook
from dracula.server.placement import Placement
from dracula.server.seams import Backend, LoopBackend
from dracula.server.state import ServerState
from dracula.server.tls import server_context
from dracula.typedefs import Handler, ThriftService
from dracula.wire import compiled as scanner_impl

log = logging.getLogger("dracula")

# What signal.signal() returns: the previous handler, to put back.
SignalHandler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class Server:
    """A bound server for `services`, (name, thriftpy2 service, handler) triples: the first one
    also answers plain method names, every one answers `name:method` (multiplexed clients).

    `serve()` blocks on a loop (or threads) of its own until `close()` (or SIGINT/SIGTERM in the
    main thread); `await serve_async()` serves on the caller's running loop instead. Both return
    once in-flight requests are answered or the graceful timeout has passed. `port` (and `host`)
    are known from construction on: the socket is bound and listening already.

    `ssl_context`: serve TLS with this context instead of one built from `config.ssl_*`.
    `on_connect(peer, peer_cert)`: asked about every new connection before it is read; False
    (or raising) refuses it (dracula/server/on_connect.py)."""

    def __init__(
        self,
        services: Sequence[tuple[str, ThriftService, Handler]],
        config: Config,
        middleware: Sequence[object] = (),
        ssl_context: ssl.SSLContext | None = None,
        on_connect: OnConnect | None = None,
    ) -> None:
        self.config = config.validate()
        # Each server has its own metrics registry (workers: summed through the multiprocess
        # directory by the supervisor).
        self.registry = new_registry() if config.metrics_port is not None else None
        metrics = Metrics(self.registry) if self.registry is not None else None
        observer = ServerObserver(metrics) if metrics else None
        hooks = [*builtin_middleware(metrics, config.access_log), *middleware]
        chain = Chain(hooks) if hooks else None
        # The reactor times plain methods and moves those that block (placement.py); the thread
        # backend runs every handler on its connection's thread.
        placement = (
            Placement(config.inline_budget, observer) if config.backend == "uv" and config.inline_budget > 0 else None
        )
        dispatcher = Dispatcher(
            services, placement, chain is not None and chain.is_async, config.blocking_methods, config.inline_methods
        )
        if config.health_method:
            dispatcher.add_internal(health_method(config.health_method, self._health_problem))
        # The backend decides what its connection entries are (seams.ConnectionEntry).
        self.state: ServerState[Any] = ServerState(config, dispatcher, observer, chain, checked_hook(on_connect))
        self.services: dict[str, ThriftService] = {name: service for name, service, _ in services}
        self.service_names = list(self.services)
        self.sock = listen(config)
        self.host: str
        self.port: int | None
        self.host, self.port = address_of(self.sock)
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.closing = False
        self.status: ThreadingHTTPServer | None = None
        if config.metrics_port is not None and config.worker_fd is None:  # a supervisor serves its workers'
            self.status = serve_status(
                config.metrics_host or config.host, config.metrics_port, self.healthy, registry=self.registry
            )
        self._backend: Backend = backend_class(config.backend)(
            self.state, self.sock, ssl_context or server_context(config)
        )
        self._served = False  # a Server serves once: its socket closes when it stops
        self._delayed_stop: threading.Timer | None = None  # close() during --drain-delay
        # Coroutines waiting for `started` or `stopped`, each on its own loop (any thread).
        self._waiters: list[tuple[threading.Event, asyncio.Future[None]]] = []
        self._waiters_lock = threading.Lock()

    def serve(self) -> None:
        """Serve until close() (or SIGINT/SIGTERM, when called in the main thread) has drained."""
        self._begin()
        restore = self._install_signal_handlers()
        try:
            self._backend.run(self._on_ready)
        finally:
            self._finish(restore)

    async def serve_async(self, install_signals: bool = False) -> None:
        """Serve on the running event loop (uvloop or plain asyncio) until `close()` or
        `await shutdown()` has drained. Signal handlers (SIGINT/SIGTERM: drain and return) are
        installed only if asked, and only in the main thread. Cancelling it stops at once,
        without the drain. Needs the uv backend: the thread backend serves with `serve()`."""
        if self.config.backend != "uv":
            raise RuntimeError(
                "serve_async() runs the uv backend on your loop; the %r backend "
                "runs threads of its own: call serve() (in a thread) instead" % self.config.backend
            )
        if self.config.worker_fd is not None:
            raise RuntimeError("a prefork worker is run by its supervisor with serve()")
        assert isinstance(self._backend, LoopBackend)  # the uv backend (checked above)
        self._begin()
        restore = self._install_signal_handlers() if install_signals else []
        try:
            await self._backend.serve(self._on_ready)
        finally:
            self._finish(restore)

    def close(self) -> None:
        """Report 503 on /healthz (for --drain-delay while still serving, so a load balancer
        stops sending new connections), then stop accepting, answer what was read, and make
        serve() return. Thread-safe. A second close() skips what is left of the delay."""
        first = not self.closing
        self.closing = True
        delay = self.config.drain_delay
        if first and delay > 0 and self._served and not self.stopped.is_set():
            log.info("draining: /healthz answers 503 for %gs while still serving", delay)
            self._delayed_stop = threading.Timer(delay, self._backend.stop)
            self._delayed_stop.daemon = True
            self._delayed_stop.start()
            return
        if self._delayed_stop is not None:
            self._delayed_stop.cancel()
        self._backend.stop()

    async def shutdown(self) -> None:
        """close(), then wait until serving has stopped (the drain is over), from any loop."""
        self.close()
        if self._served:
            await self._until(self.stopped)

    async def wait_started(self) -> None:
        """Wait until the server accepts, from any loop; RuntimeError if it stopped first."""
        await self._until(self.started)

    async def _until(self, event: threading.Event) -> None:
        waiter = asyncio.get_running_loop().create_future()
        with self._waiters_lock:
            self._waiters.append((event, waiter))
        self._wake_waiters()  # the event may have been set already
        await waiter

    def healthy(self) -> bool:
        """Ready for traffic: accepting, not draining and (--unhealthy-when-shedding) not
        shedding hard (the /healthz answer)."""
        return self.started.is_set() and not self.closing and self.state.healthy_load()

    def _health_problem(self) -> str | None:
        """Why the --health-method check fails now (None: it passes); what /healthz says."""
        if self.closing:
            return "draining: this server is stopping"
        if not self.state.healthy_load():
            return "shedding load"
        return None

    @property
    def drain_timed_out(self) -> bool:
        """The last stop hit the graceful timeout (calls may still run in threads)."""
        return bool(self._backend.timed_out)

    def _begin(self) -> None:
        if self._served:
            raise RuntimeError("a Server serves once; make a new one to serve again")
        self._served = True

    def _finish(self, restore: list[tuple[int, SignalHandler]]) -> None:
        if self._delayed_stop is not None:
            self._delayed_stop.cancel()
        for signum, previous in restore:
            signal.signal(signum, previous)
        self.sock.close()
        if self.status is not None:
            self.status.shutdown()
            self.status.server_close()
        if self.config.uds and config_uds_owned(self.config):
            _unlink(self.config.uds)
        self.stopped.set()
        self._wake_waiters()
        log.info("dracula stopped")

    def _on_ready(self) -> None:
        self.started.set()  # before the log line: whoever reads it may probe /healthz at once
        self._wake_waiters()
        where = self.host if self.port is None else "%s:%d" % (self.host, self.port)
        log.info(
            "dracula serving %s on %s (%s backend, %s scanner, pid %d)",
            ", ".join(self.service_names),
            where,
            self.config.backend,
            scanner_impl.IMPLEMENTATION,
            os.getpid(),
        )
        scanner_impl.warn_if_degraded(log)
        if self.config.ready_fd is not None:  # tell the supervisor this worker accepts
            os.write(self.config.ready_fd, b"R")
            os.close(self.config.ready_fd)

    def _wake_waiters(self) -> None:
        """Resolve the waiters whose event is set (or that can no longer be: stopped first)."""
        with self._waiters_lock:
            ready: list[tuple[threading.Event, asyncio.Future[None]]] = []
            waiting: list[tuple[threading.Event, asyncio.Future[None]]] = []
            for item in self._waiters:
                (ready if item[0].is_set() or self.stopped.is_set() else waiting).append(item)
            self._waiters = waiting
        for event, waiter in ready:
            error = None if event.is_set() else RuntimeError("the server stopped before it started")
            try:
                waiter.get_loop().call_soon_threadsafe(_resolve, waiter, error)
            except RuntimeError:  # that loop has closed: nobody is waiting any more
                pass

    def _install_signal_handlers(self) -> list[tuple[int, SignalHandler]]:
        if threading.current_thread() is not threading.main_thread():
            return []
        restore: list[tuple[int, SignalHandler]] = [
            (signum, signal.signal(signum, self._on_signal)) for signum in (signal.SIGINT, signal.SIGTERM)
        ]
        if self.config.worker_fd is not None:
            # The supervisor owns reloads and scaling: a terminal's hang-up must not kill workers.
            restore.extend(
                (signum, signal.signal(signum, signal.SIG_IGN))
                for signum in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU)
            )
        return restore

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        self.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        self.sock.close()


def _resolve(waiter: asyncio.Future[None], error: BaseException | None) -> None:
    if waiter.done():
        return
    if error is None:
        waiter.set_result(None)
    else:
        waiter.set_exception(error)


def config_uds_owned(config: Config) -> bool:
    """The Unix socket file is this process's to remove (a worker leaves it to the supervisor)."""
    return bool(config.uds) and config.worker_fd is None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
