"""Thrift over HTTP on the thread-per-connection backend: what a connection's thread does once
its first bytes are an HTTP request (docs/http.md).

The same rules as for Thrift bytes on that thread (threaded.py): the request timeout while a
request is partly received, the idle timeout and connection age between requests, eviction,
the drain; requests come from httptools (http/session.py), each call is an HttpCall run by the
backend's own `_handle`, whose reply is the whole HTTP response, sent in request order.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from dracula.http.call import HttpCall
from dracula.http.session import HttpMessage, HttpSession
from dracula.ops.connection_age import retire_at as age_limit
from dracula.server.connection_rules import expired

if TYPE_CHECKING:
    from dracula.server.backends.threaded import ThreadedBackend, _Conn
    from dracula.wire.reader import Reader

log = logging.getLogger("dracula.thread")  # threaded.py's

RECEIVE_SIZE = 64 * 1024


def serve_http(backend: ThreadedBackend, conn: _Conn, reader: Reader) -> None:
    """Serve `conn` as HTTP until its client or a limit ends it; `reader` holds the bytes
    received so far (the first request's start)."""
    session = HttpSession(backend.state, conn.peer)
    try:
        assert reader.buf is not None  # the request line arrived
        session.feed(bytes(reader.buf[reader.start : reader.end]))
        reader.start = reader.end = 0
        _serve(backend, conn, session)
    finally:
        session.close()


def _serve(backend: ThreadedBackend, conn: _Conn, session: HttpSession) -> None:
    state, sock, peer = backend.state, conn.sock, conn.peer
    observer = state.observer
    max_age = backend.config.max_connection_age
    retire_at = age_limit(conn.opened_at, max_age) if max_age else None
    partial_since: float | None = None
    timeout: float | None = -1.0  # none set yet
    buffer = bytearray(RECEIVE_SIZE)
    view = memoryview(buffer)
    while True:
        if not _answer(backend, conn, session):
            return
        if not session.partial:
            partial_since = None
        elif partial_since is None:
            partial_since = time.monotonic()
        conn.partial = session.partial
        conn.busy = False
        if session.closing or (
            not session.partial
            and (backend.stopping.is_set() or (retire_at is not None and time.monotonic() >= retire_at))
        ):
            return  # between requests: the last response said Connection: close, or a client may retry
        wanted = backend._recv_timeout(partial_since, conn, retire_at)
        if wanted != timeout:  # settimeout is a system call: only on a change
            sock.settimeout(wanted)
            timeout = wanted
        try:
            n = sock.recv_into(view)
        except TimeoutError:
            expired(
                state,
                log,
                peer,
                incomplete=partial_since is not None,
                aged=retire_at is not None and time.monotonic() >= retire_at,
                idle=True,
            )
            return
        if n == 0:
            return
        with backend.lock:
            if conn.evicted:
                return
            conn.busy = conn.used = True
            conn.active_at = time.monotonic()
        if observer is not None:
            observer.received(n)
        session.feed(view[:n])


def _answer(backend: ThreadedBackend, conn: _Conn, session: HttpSession) -> bool:
    """Answer every request taken so far, in order; False when the connection must close."""
    out: list[bytes] = []
    queued = 0
    high_water = backend.config.write_high_water
    while True:
        item = session.take()
        if item is None:
            break
        if isinstance(item, HttpMessage):
            reply = backend._handle(
                HttpCall(backend.state, item, None, False, conn.peer, backend.coro_loop, conn.peer_cert)
            )
            item = reply or b""
        if not item:
            continue
        out.append(item)
        queued += len(item)
        if queued >= high_water:  # send before taking more, as threaded.py does
            if not backend._send(conn.sock, out, conn.peer):
                return False
            out, queued = [], 0
    return not out or backend._send(conn.sock, out, conn.peer)
