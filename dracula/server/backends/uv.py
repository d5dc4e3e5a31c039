"""The libuv reactor's lifecycle: uvloop owns the listening socket; start, sweep, drain.

Each accepted connection is a uv_connection.Connection (one BufferedProtocol per client).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from typing import TYPE_CHECKING

import uvloop

from dracula.config import FIRST_REQUEST_GRACE
from dracula.ops.budget import BUDGET_WAIT
from dracula.ops.connection_age import Retirements
from dracula.server.backends.uv_connection import Connection, Reactor
from dracula.server.connection_rules import drain_timed_out, draining, expired, handler_pool

if TYPE_CHECKING:
    from dracula.server.seams import OnReady
    from dracula.server.state import ServerState

log = logging.getLogger("dracula.uv")


class UVBackend:
    def __init__(
        self, state: ServerState[Connection], sock: socket.socket, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.state = state
        self.config = state.config
        self.sock = sock
        self.ssl_context = ssl_context
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._server: asyncio.Server | None = None  # the asyncio server, once listening
        self._sweeper: asyncio.Task[None] | None = None
        self._stop_requested = False
        self.reactor: Reactor | None = None  # the loop, pool and drain progress its connections share
        self.timed_out = False  # the drain hit the graceful timeout

    def run(self, on_ready: OnReady) -> None:
        """Serve on a new uvloop loop of this thread's own, until stop() has drained."""
        loop = uvloop.new_event_loop()
        try:
            loop.run_until_complete(self.serve(on_ready))
        finally:
            loop.close()

    async def serve(self, on_ready: OnReady) -> None:
        """Serve on the running loop (uvloop or plain asyncio) until stop() has drained."""
        self.loop = asyncio.get_running_loop()
        try:
            await self._serve(on_ready)
        except asyncio.CancelledError:
            self._abort()  # a cancelled serve stops at once: stop() is the graceful way
            raise
        finally:
            if self.reactor is not None:
                self.reactor.pool.shutdown(wait=False, cancel_futures=True)

    def stop(self) -> None:
        """Begin a graceful stop; safe from any thread and from signal handlers."""
        self._stop_requested = True
        loop = self.loop
        if loop is not None and not loop.is_closed() and self._stop is not None:
            try:
                loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # the loop closed in between
                pass

    def _abort(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self.state.connections):
            conn.transport.abort()

    async def _serve(self, on_ready: OnReady) -> None:
        state = self.state
        self._stop = asyncio.Event()
        # The pool is always there: a plain method that blocks moves to it (placement.py).
        loop = asyncio.get_running_loop()
        reactor = self.reactor = Reactor(loop, handler_pool(state))
        server = self._server = await loop.create_server(
            lambda: Connection(state, reactor),
            sock=self.sock,
            backlog=self.config.backlog,
            ssl=self.ssl_context,
            ssl_handshake_timeout=(self.config.request_timeout or None) if self.ssl_context else None,
        )
        sweeper = self._sweeper = self._start_sweeper()
        on_ready()
        if not self._stop_requested:
            await self._stop.wait()
        # Take what the listening socket has queued, then stop listening at once: closing it
        # resets the connections in its queue, whose clients may have written a request already
        # and could not tell that it never ran.
        queued = self._take_queued()
        server.close()
        for client in queued:
            await loop.connect_accepted_socket(
                lambda: Connection(state, reactor),
                client,
                ssl=self.ssl_context,
                ssl_handshake_timeout=(self.config.request_timeout or None) if self.ssl_context else None,
            )
        await self._drain()
        if sweeper is not None:
            sweeper.cancel()

    def _take_queued(self) -> list[socket.socket]:
        """Accept every connection the listening socket has queued."""
        taken: list[socket.socket] = []
        self.sock.setblocking(False)  # as libuv has made it (and listen.py a worker's) already
        while True:
            try:
                client, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return taken
            except OSError as e:  # out of descriptors: what is left is lost, as before
                log.warning("accept failed while draining: %s", e)
                return taken
            client.setblocking(False)
            taken.append(client)

    def _start_sweeper(self) -> asyncio.Task[None] | None:
        """A periodic check for idle, slowloris, budget-starved and (--max-connection-age) old
        connections, if any of those limits is on."""
        config = self.config
        limits = [
            t
            for t in (
                config.idle_timeout,
                config.request_timeout,
                config.max_connection_age,
                BUDGET_WAIT if self.state.budget else 0,
            )
            if t > 0
        ]
        if not limits:
            return None
        interval = min(1.0, min(limits) / 4)
        state = self.state
        aged = Retirements(config.max_connection_age) if config.max_connection_age > 0 else None

        async def sweep() -> None:
            while True:
                await asyncio.sleep(interval)
                now = time.monotonic()
                for conn in list(state.connections):
                    conn.check_timeouts(now)
                    if aged is not None and not conn.retiring and aged.due(conn, now):
                        if conn.theader:  # its replies say `:drain`: the client lets it go
                            conn.retire()
                            expired(state, log, conn.peer, aged=True)
                        # Between calls only (close_if_idle): a client may retry on a new connection.
                        elif conn.close_if_idle():
                            expired(state, log, conn.peer, aged=True)
                if aged is not None:
                    aged.keep_only(state.connections)

        return asyncio.get_running_loop().create_task(sweep())

    async def _drain(self) -> None:
        state = self.state
        loop = asyncio.get_running_loop()
        all_closed = loop.create_future()

        def on_all_closed() -> None:
            if not all_closed.done():
                all_closed.set_result(None)

        state.begin_drain(on_all_closed)
        conns = list(state.connections)
        busy = sum(not conn.idle for conn in conns)
        for conn in conns:
            conn.drain()
        # A connection accepted moments ago may be about to send its first request: give it
        # FIRST_REQUEST_GRACE before closing it as idle.
        grace = loop.call_later(min(FIRST_REQUEST_GRACE, self.config.graceful_timeout), self._close_fresh)
        if state.connections:
            draining(log, busy)
            try:
                await asyncio.wait_for(all_closed, self.config.graceful_timeout)
            except asyncio.TimeoutError:
                self.timed_out = True
                drain_timed_out(log, len(state.connections))
        grace.cancel()
        for conn in list(state.connections):
            conn.transport.abort()
        # Let connection_lost callbacks run before the loop closes.
        await asyncio.sleep(0)

    def _close_fresh(self) -> None:
        assert self.reactor is not None  # draining: it was serving
        self.reactor.fresh_grace_over = True
        for conn in list(self.state.connections):
            if not conn.theader:  # a THeader one closes at the end of its own grace (retire)
                conn.close_if_idle()
