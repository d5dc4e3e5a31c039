"""What every connection of a server shares, whichever backend runs it: the method table, the
per-call policy's settings, the refusal log, the open connections and the drain flag.

Connections see this object; what only one backend has (its loop, its handler pool, how far
its drain has got) stays with that backend, which hands it to its connections and calls."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic

from dracula.config import FIRST_REQUEST_GRACE, Config
from dracula.ops.budget import make_budget
from dracula.ops.logs import RefusalLog, format_peer
from dracula.ops.overload import make_overload
from dracula.server.seams import Conn
from dracula.typedefs import Peer, PeerCert
from dracula.wire.codec import Codec, make_codec
from dracula.wire.compiled import IMPLEMENTATION, PURE_ASKED
from dracula.wire.detect import BINARY
from dracula.wire.reader import Reader

if TYPE_CHECKING:
    import asyncio

    from dracula.ops.observe import ServerObserver
    from dracula.server._cfast import PlainCodec, PlainPath
    from dracula.server.dispatch import Dispatcher
    from dracula.server.middleware import Chain
    from dracula.server.on_connect import OnConnect


def _fast_path_built() -> bool:
    try:
        import dracula.server._cfast  # noqa: F401  # built by setup.py, with the scanners
    except ImportError:
        return False
    return True


# The compiled fast path goes with the compiled scanner: DRACULA_PURE_PYTHON=1 turns both off.
FAST_PATH = IMPLEMENTATION == "compiled" and not PURE_ASKED and _fast_path_built()


class ServerState(Generic[Conn]):
    """`Conn`: the kind of entry the backend keeps in the connection table (seams.ConnectionEntry)."""

    def __init__(
        self,
        config: Config,
        dispatcher: Dispatcher,
        observer: ServerObserver | None = None,
        middleware: Chain | None = None,
        on_connect: OnConnect | None = None,
    ) -> None:
        self.config = config
        self.methods = dispatcher.methods
        self.arg_specs = dispatcher.arg_specs
        self.observer = observer  # observe.ServerObserver, or None without metrics
        self.middleware = middleware  # a middleware.Chain, or None without any
        self.on_connect = on_connect  # asked about every new connection (on_connect.py), or None
        self.refusals = RefusalLog()
        self.overload = make_overload(config, observer)  # None unless calls may be shed
        # Calls are timed for middleware (the access log and metrics are middleware too) and
        # for the queue timeout's clock.
        self.observed = self.middleware is not None or self.overload is not None
        self.budget = make_budget(config, observer)  # None: --max-buffer-memory 0
        self.evictions = RefusalLog(logger="dracula.evicted", verb="evicted idle connection", noun="evictions")
        self.peer_counts: dict[str, int] = {}  # client address -> open connections (with a per-peer limit)
        self.connections: set[Conn] = set()
        self.connection_limit = config.connection_limit
        self.draining = False  # set once, by begin_drain()
        self._on_all_closed: Callable[[], None] | None = None  # the reactor's drain waits for this
        # Codecs reuse their buffers, so each thread has its own (the reactor: one for all).
        self._codecs = threading.local()
        # Plain calls take the compiled fast path (_cfast.pyx) where nothing else is to happen
        # around them: no middleware (the access log and metrics are middleware) and no overload
        # policy. Tests turn it off to compare it with the general path.
        self.fast_path = FAST_PATH and not self.observed

    def new_reader(self) -> Reader:
        return Reader.for_config(self.config, self.arg_specs, self.budget)

    def begin_drain(self, on_all_closed: Callable[[], None] | None = None) -> None:
        """The backend stopped accepting: connections close once idle from now on, and
        `on_all_closed()` is called when the last one has gone."""
        self.draining = True
        self._on_all_closed = on_all_closed

    def healthy_load(self) -> bool:
        """False while shedding hard, where /healthz should say so (--unhealthy-when-shedding)."""
        overload = self.overload
        return not (self.config.unhealthy_when_shedding and overload is not None and overload.shedding_hard())

    def codec_for(self, protocol: str) -> Codec:
        codecs: dict[str, Codec] = self._codecs.__dict__
        codec = codecs.get(protocol)
        if codec is None:
            codec = codecs[protocol] = make_codec(protocol, self.config.max_depth)
        return codec

    def plain_path(
        self,
        reader: Reader,
        codec: Codec,
        peer: Peer,
        peer_cert: PeerCert | None,
        loop: asyncio.AbstractEventLoop | None,
    ) -> PlainPath | None:
        """A connection's compiled fast path for plain calls, once its first message showed the
        wire (None: every call takes the general path: not binary, or the fast path is off)."""
        if not self.fast_path or codec.protocol != BINARY:
            return None
        from dracula.server._cfast import PlainCodec, PlainPath  # here: _cfast imports calls, which the backends import

        codecs: dict[str, PlainCodec] = self._codecs.__dict__
        plain = codecs.get("plain")
        if plain is None:
            plain = codecs["plain"] = PlainCodec(self.config.max_depth)
        return PlainPath(self, reader, codec, plain, peer, peer_cert, loop)

    def add_connection(self, conn: Conn, now: float) -> bool:
        """Enter a new connection in the table; False (logged) when it must be closed at once.

        When the table is full the longest-idle connection makes room, as nginx does with
        keep-alive connections: idle means no call in flight, no reply waiting, nothing partly
        received, and past FIRST_REQUEST_GRACE if it has not sent a byte yet. Its client sees
        what it sees after any idle close, and no call of its was read, so retrying on a new
        connection is safe. Only when every connection is busy is the newcomer refused."""
        peer = conn.peer
        per_peer = self.config.max_connections_per_peer
        if per_peer is not None:
            host = _host(peer)
            if self.peer_counts.get(host, 0) >= per_peer:
                self.refusals(peer, "%d connections from %s already open (per-peer limit)" % (per_peer, host))
                return False
        if len(self.connections) >= self.connection_limit and not self._evict_idle(peer, now):
            self.refusals(peer, "connection limit of %d reached and no connection is idle" % self.connection_limit)
            return False
        self.connections.add(conn)
        if per_peer is not None:
            self.peer_counts[host] = self.peer_counts.get(host, 0) + 1
        if self.observer is not None:
            self.observer.connection_opened()
        return True

    def _evict_idle(self, peer: Peer, now: float) -> bool:
        fresh_until = now - FIRST_REQUEST_GRACE
        victim = None
        for conn in self.connections:  # a full table is rare: a scan costs nothing otherwise
            if (
                conn.idle
                and (conn.used or conn.opened_at < fresh_until)
                and (victim is None or conn.active_at < victim.active_at)
            ):
                victim = conn
        if victim is None:
            return False
        self.evictions(victim.peer, "the table is full (%d): room for %s" % (self.connection_limit, format_peer(peer)))
        if self.observer is not None:
            self.observer.connection_evicted()
        self.connection_closed(victim)
        victim.evict()
        return True

    def replace_connection(self, old: Conn, new: Conn) -> None:
        """`new` serves `old`'s client from now on (a connection that turned out to speak HTTP)."""
        self.connections.discard(old)
        self.connections.add(new)

    def connection_closed(self, conn: Conn) -> None:
        """Take a connection out of the table (once, whoever notices first)."""
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        if self.config.max_connections_per_peer is not None:
            host = _host(conn.peer)
            left = self.peer_counts.pop(host) - 1
            if left:
                self.peer_counts[host] = left
        if self.observer is not None:
            self.observer.connection_closed()
        if not self.connections and self._on_all_closed is not None:
            self._on_all_closed()


def _host(peer: Peer) -> str:
    """The client's address without its port (a Unix socket's peers share one)."""
    return peer[0] if isinstance(peer, tuple) and peer else str(peer or "")
