"""The contracts between the server and its backends, as Protocols: what lifecycle.Server asks
of a backend, and what ServerState's connection table asks of each connection's entry.

Both backends (backends/uv.py, backends/threaded.py) and both kinds of entry (uv_connection's
Connection, threaded's _Conn) satisfy them structurally, without inheriting: mypy checks each
where it is passed (backends.backend_class, ServerState's type parameter).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from dracula.typedefs import Peer

if TYPE_CHECKING:
    from dracula.server.state import ServerState


class ConnectionEntry(Protocol):
    """A connection as ServerState's table sees it (add_connection, the full table's eviction,
    connection_closed) and as --max-connection-age does (ops/connection_age.py). Hashable."""

    @property
    def peer(self) -> Peer: ...
    @property
    def opened_at(self) -> float:
        """time.monotonic() when it was accepted."""

    @property
    def active_at(self) -> float:
        """time.monotonic() when bytes last arrived (or, on the reactor, a reply left)."""

    @property
    def used(self) -> bool:
        """It has sent a byte."""

    @property
    def idle(self) -> bool:
        """No call in flight, no reply waiting, nothing partly received: closing it loses no call."""

    def evict(self) -> None:
        """Close it, idle, to make room for a new connection (the table is full)."""


Conn = TypeVar("Conn", bound=ConnectionEntry)  # the kind of entry one backend keeps

OnReady = Callable[[], None]  # called once the backend accepts connections


class Backend(Protocol):
    """What lifecycle.Server runs: built from (state, listening socket, TLS context or None) by a
    BackendFactory, then `run()` in one thread while `stop()` may come from any other."""

    @property
    def timed_out(self) -> bool:
        """The last drain hit --graceful-timeout (calls may still run in threads)."""

    def run(self, on_ready: OnReady) -> None:
        """Serve until stop() has drained, calling on_ready() once accepting."""

    def stop(self) -> None:
        """Begin a graceful stop: safe from any thread and from signal handlers."""


@runtime_checkable
class LoopBackend(Backend, Protocol):
    """A backend that can also serve on the caller's running event loop (Server.serve_async)."""

    async def serve(self, on_ready: OnReady) -> None: ...


# A backend's class: how Server builds one. The state's entries are whatever that backend keeps.
BackendFactory = Callable[["ServerState[Any]", socket.socket, "ssl.SSLContext | None"], Backend]
