"""Thrift over HTTP on the libuv reactor: the connection a uv_connection.Connection becomes when
its first bytes are an HTTP request (docs/http.md).

It is a Connection still (flow control, the memory budget, calls off the loop answered in
request order, the sweeper's time limits, the drain); only what arrives differs: requests are
parsed by httptools (http/session.py) instead of split into messages, and each call is an
HttpCall, whose reply is the whole HTTP response. The receive buffer is the Reader's, handed to
httptools after every read and reused at once (bodies are kept by the parser).
"""

from __future__ import annotations

import time

from dracula.http.call import HttpCall
from dracula.http.session import HttpMessage, HttpSession
from dracula.server.backends.uv_connection import Connection
from dracula.server.calls import Call


class HttpConnection(Connection):
    call_type: type[Call] = HttpCall

    def __init__(self, conn: Connection) -> None:
        """Take over `conn` (its transport, its place in the table, the bytes it received)."""
        super().__init__(conn.state, conn.reactor)
        self.transport = conn.transport
        self.peer = conn.peer
        self.opened_at = conn.opened_at
        self.reader = conn.reader
        self.session = HttpSession(self.state, self.peer)

    def take_over(self, old: Connection) -> None:
        reader = self.reader
        assert reader.buf is not None  # the request line arrived
        received = bytes(reader.buf[reader.start : reader.end])
        reader.start = reader.end = 0
        self.state.replace_connection(old, self)
        self.transport.set_protocol(self)
        self.session.feed(received)
        self._answer()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.session.close()

    def buffer_updated(self, nbytes: int) -> None:
        """`nbytes` more arrived (0: resuming a backlog): parse them, answer what is complete."""
        if nbytes:
            if self.observer is not None:
                self.observer.received(nbytes)
            reader = self.reader
            assert reader.buf is not None and reader.end == 0  # get_buffer() handed the whole buffer
            self.session.feed(memoryview(reader.buf)[:nbytes])
        self._answer()

    def _answer(self) -> None:
        """Answer every request taken so far, responses in one write, in request order; stop
        (and stop reading) once the responses pass the write high-water mark."""
        session = self.session
        if self.state.overload is not None:  # a busy reactor's delay counts as queueing
            self.read_at = time.perf_counter()
        out: list[bytes] = []
        room = self.config.write_high_water - self.transport.get_write_buffer_size()
        while not self.closed:
            item = session.take()
            if item is None:
                break
            queued = len(out)
            if isinstance(item, HttpMessage):
                self._handle(item, out, item.codec)
            else:
                self._emit(item, out)
            if len(out) != queued:
                room -= len(out[-1])
                if room <= 0 and session.waiting:
                    self.backlogged = True
                    self.transport.pause_reading()
                    break
        if out:
            self._write(out[0] if len(out) == 1 else b"".join(out))
        if self.backlogged and not self.writing_paused:
            self.loop.call_soon(self._resume_backlog)
        self.active_at = now = self.time()
        if not session.partial:
            self.partial_since = None
        elif self.partial_since is None:
            self.partial_since = now
        if session.closing:  # a last response (Connection: close) or a refusal: close once sent
            self.eof = True
            self.transport.pause_reading()
            if not (self.slots or self.later):
                self.transport.close()
        elif self.state.draining:
            self.close_if_idle()

    @property
    def idle(self) -> bool:
        session = self.session
        return not (self.slots or self.later or session.partial or session.waiting)


def serve_http(conn: Connection) -> None:
    """`conn`'s first bytes are an HTTP request: an HttpConnection serves it from now on."""
    HttpConnection(conn).take_over(conn)
