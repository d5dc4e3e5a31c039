"""One thread per connection over blocking sockets: the classic model, kept as the baseline
for the event-loop-vs-threads comparison. It shares the Reader, codec and Dispatcher with the
reactor, so both answer every request the same way.

Coroutine handlers run on one background event loop; @blocking handlers need nothing special
(every handler already runs on its connection's own thread).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import selectors
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from dracula.config import FIRST_REQUEST_GRACE
from dracula.ops.connection_age import retire_at as age_limit
from dracula.server.calls import Call, refuse_wire
from dracula.server.connection_rules import (
    charge_unsent,
    drain_grace,
    drain_timed_out,
    draining,
    expired,
    pool_for_timeouts,
    pool_job_or_shed,
)
from dracula.server.dispatch import ASYNC, BLOCKING
from dracula.server.on_connect import connection_admitted
from dracula.wire.errors import HttpDetected, WireError
from dracula.wire.reader import MIN_FREE

if TYPE_CHECKING:
    from dracula.ops.budget import Budget
    from dracula.server._cfast import Answer, PlainPath
    from dracula.server.seams import OnReady
    from dracula.server.state import ServerState
    from dracula.server.thread_pool import HandlerPool
    from dracula.typedefs import Peer, PeerCert
    from dracula.wire.codec import Codec
    from dracula.wire.reader import Reader

log = logging.getLogger("dracula.thread")


class _Conn:
    """A connection's entry in the table; its flags change under the backend's lock."""

    __slots__ = (
        "sock",
        "peer",
        "peer_cert",
        "busy",
        "used",
        "partial",
        "evicted",
        "opened_at",
        "active_at",
        "thread",
        "codec",
        "framed",
        "theader",
        "retiring",
        "leave_at",
        "fast",
    )

    def __init__(self, sock: socket.socket, peer: Peer) -> None:
        self.sock = sock  # an ssl.SSLSocket once its TLS handshake is done
        self.peer = peer
        self.peer_cert: PeerCert | None = None  # the TLS client's certificate, after the handshake
        self.busy = False  # answering what it sent
        self.used = False  # has sent a byte
        self.partial = False  # part of a request is buffered
        self.evicted = False
        self.opened_at = self.active_at = time.monotonic()
        self.thread: threading.Thread | None = None
        self.codec: Codec | None = None  # and `framed`: set once the first message shows the wire
        self.framed = False
        self.theader = False  # THeader frames: a reply can tell the client the connection is going
        self.retiring = False  # THeader: replies say `:drain` from now on (_retire)
        self.leave_at: float | None = None  # retiring: closed once idle after this (set once told)
        self.fast: PlainPath | None = None  # plain calls' compiled fast path, from the first message on

    @property
    def idle(self) -> bool:
        return not (self.busy or self.partial)

    def evict(self) -> None:
        """Close while idle to make room; its thread drops whatever it receives next."""
        self.evicted = True
        _shutdown_read(self.sock, socket.SHUT_RDWR)


class ThreadedBackend:
    def __init__(
        self, state: ServerState[_Conn], sock: socket.socket, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.state = state
        self.config = state.config
        self.sock = sock
        self.ssl_context = ssl_context
        self.lock = threading.Lock()  # guards state.connections and each _Conn's flags
        self.stopping = threading.Event()
        self.coro_loop: asyncio.AbstractEventLoop | None = None  # for coroutine handlers, started when needed
        self.pool: HandlerPool | None = None  # for @blocking handlers with a --handler-timeout
        self.timed_out = False  # the drain hit the graceful timeout

    def run(self, on_ready: OnReady) -> None:
        methods = self.state.methods.values()
        middleware = self.state.middleware
        if any(m.route == ASYNC for m in methods) or (middleware is not None and middleware.needs_loop):
            self._start_coroutine_loop()
        # Only a timeout needs the pool: without one a @blocking handler just runs on its
        # connection's own thread.
        self.pool = pool_for_timeouts(self.state)
        # The listening socket may be shared with other workers: never shut it down or change
        # its blocking flag (both are shared); wait for it or for stop()'s wake-up byte.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        poller = selectors.DefaultSelector()
        poller.register(self.sock, selectors.EVENT_READ)
        poller.register(self._wake_r, selectors.EVENT_READ)
        # A signal the kernel delivers to a connection's thread only sets a flag: the main thread
        # runs the handler (stop()) when it next runs bytecode, and it sits in select(). The
        # wakeup fd makes every signal a byte on the pipe that select() waits on.
        in_main = threading.current_thread() is threading.main_thread()
        previous_wakeup = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False) if in_main else -1
        on_ready()
        try:
            while not self.stopping.is_set():
                ready = poller.select()
                if any(key.fd == self._wake_r for key, _ in ready):
                    _drain_pipe(self._wake_r)  # a signal or stop(): the handler has run by now
                if self.stopping.is_set():
                    break
                if any(key.fileobj is self.sock for key, _ in ready):
                    self._accept()
            # Stop accepting: close this process's handle on the listening socket (a shared one
            # stays open in the other workers, so their queue keeps its connections). Take what
            # is queued first: closing the last handle resets the connections in the queue, whose
            # clients may have written a request already, and could not tell it never ran.
            while any(key.fileobj is self.sock for key, _ in poller.select(0)):
                self._accept()
            poller.unregister(self.sock)
            self.sock.close()
            self._drain()
        finally:
            poller.close()
            if in_main:
                signal.set_wakeup_fd(previous_wakeup)
            os.close(self._wake_r)
            os.close(self._wake_w)
            if self.coro_loop is not None:
                self.coro_loop.call_soon_threadsafe(self.coro_loop.stop)
            if self.pool is not None:
                self.pool.shutdown(wait=False, cancel_futures=True)

    def _accept(self) -> None:
        """Accept one connection and start its thread (or close it at once, logged)."""
        try:
            client, peer = self.sock.accept()
        except BlockingIOError:
            return  # another worker took it
        except OSError as e:
            log.warning("accept failed: %s", e)
            self.stopping.wait(0.05)  # e.g. out of file descriptors: back off briefly
            return
        client.setblocking(True)
        conn = _Conn(client, peer)
        with self.lock:  # even while stopping: its first request gets the grace
            admitted = self.state.add_connection(conn, conn.opened_at)
        if not admitted:
            client.close()
            return
        conn.thread = threading.Thread(target=self._serve_connection, args=(conn,), name="dracula-conn", daemon=True)
        conn.thread.start()

    def stop(self) -> None:
        """Begin a graceful stop; safe from any thread and from signal handlers."""
        self.stopping.set()
        try:
            os.write(self._wake_w, b"x")  # wakes the accept loop's select()
        except (AttributeError, OSError):
            pass  # not running yet (run() checks the flag) or already stopped

    def _drain(self) -> None:
        deadline = _Deadline(self.config.graceful_timeout)
        all_closed = threading.Event()
        self.state.begin_drain(all_closed.set)  # each connection's thread sees `stopping` itself
        grace = drain_grace(self.config)
        start = time.monotonic()
        leave_at = start + grace
        with self.lock:
            conns = list(self.state.connections)
            for conn in conns:
                if conn.theader:  # retires: its replies say `:drain` until leave_at (_retire)
                    conn.retiring = True
                    conn.leave_at = min(conn.leave_at or leave_at, leave_at)
                elif conn.idle and conn.used:  # never with a request partly received
                    _shutdown_read(conn.sock)
        if any(conn.busy for conn in conns):
            draining(log, sum(c.busy for c in conns))
        # A connection accepted moments ago may be about to send its first request: give it
        # FIRST_REQUEST_GRACE before closing it as idle; a THeader one, its grace.
        steps: list[tuple[float, Callable[[_Conn], bool]]] = []
        if any(not conn.used for conn in conns):
            steps.append((FIRST_REQUEST_GRACE, lambda conn: not conn.used))
        if any(conn.theader for conn in conns):
            steps.append((grace, lambda conn: conn.theader))
        for seconds, which in sorted(steps, key=lambda step: step[0]):
            if all_closed.wait(max(0.0, min(start + seconds - time.monotonic(), deadline.left()))):
                break
            with self.lock:
                for conn in conns:
                    if conn.idle and which(conn):
                        _shutdown_read(conn.sock)
        while deadline.left() > 0:  # connections registered during the drain count too
            with self.lock:
                threads = [conn.thread for conn in self.state.connections if conn.thread is not None]
            if not threads:
                break
            for thread in threads:
                thread.join(deadline.left())
        with self.lock:
            left = list(self.state.connections)
        if left:
            self.timed_out = True
            drain_timed_out(log, len(left))
            for conn in left:
                _shutdown_read(conn.sock, socket.SHUT_RDWR)

    def _serve_connection(self, conn: _Conn) -> None:
        try:
            if (self.ssl_context is None or self._handshake(conn, self.ssl_context)) and self._admitted(conn):
                self._read_loop(conn)
        except OSError:
            pass  # reset by the peer, or shut down at the end of a drain or by an eviction
        finally:
            with self.lock:
                self.state.connection_closed(conn)
            conn.sock.close()

    def _handshake(self, conn: _Conn, ssl_context: ssl.SSLContext) -> bool:
        """Wrap the socket in TLS; False (logged) when the handshake fails."""
        try:
            conn.sock.settimeout(self.config.request_timeout or None)
            tls = ssl_context.wrap_socket(conn.sock, server_side=True)
        except (OSError, ValueError) as e:
            self.state.refusals(conn.peer, "TLS handshake failed: %s" % e)
            return False
        conn.sock = tls
        conn.peer_cert = tls.getpeercert()
        return True

    def _admitted(self, conn: _Conn) -> bool:
        """The on_connect hook's verdict, before anything is read (False: refused, logged)."""
        hook = self.state.on_connect
        return hook is None or connection_admitted(hook, self.state.refusals, conn.peer, conn.peer_cert)

    def _read_loop(self, conn: _Conn) -> None:
        """Receive, answer every complete request, repeat until the client or a limit ends it."""
        reader = self.state.new_reader()
        try:
            self._receive(conn, reader)
        finally:
            reader.release()

    def _receive(self, conn: _Conn, reader: Reader) -> None:
        sock = conn.sock
        peer = conn.peer
        observer = self.state.observer
        partial_since: float | None = None
        max_age = self.config.max_connection_age
        aged_at = age_limit(conn.opened_at, max_age) if max_age else None
        timeout: float | None = -1.0  # none set yet
        budget = reader.budget
        idle_timeout = self.config.idle_timeout or None
        stopping = self.stopping
        lock = self.lock
        monotonic = time.monotonic
        while True:
            retire_at = conn.leave_at if conn.retiring else aged_at  # when it is next due to go
            buf = reader.buf
            if (
                budget is not None
                and buf is not None
                and len(buf) - reader.end < MIN_FREE  # _room_in_budget()'s common case, without the call
                and not self._room_in_budget(reader, budget, peer)
            ):
                return
            if partial_since is None and retire_at is None and conn.used:
                wanted = idle_timeout  # between calls: what _recv_timeout() says, without the call
            else:
                wanted = self._recv_timeout(partial_since, conn, retire_at)
            if wanted != timeout:  # settimeout is a system call (FIONBIO): only on a change
                sock.settimeout(wanted)
                timeout = wanted
            try:
                # Into the buffer itself while it is empty: no memoryview for the common read.
                n = sock.recv_into(buf if reader.end == 0 and buf is not None else reader.get_buffer())
            except TimeoutError:  # the limit _recv_timeout chose has passed: which one?
                due = retire_at is not None and time.monotonic() >= retire_at
                if due and partial_since is None and self._retire(conn):
                    continue  # THeader: its replies say `:drain` first
                expired(self.state, log, peer, incomplete=partial_since is not None, aged=due, idle=True)
                return
            if n == 0:
                return
            with lock:
                if conn.evicted:  # closed for room while these bytes were on their way: unread
                    return
                conn.busy = conn.used = True
                # Stamped on arrival, not after the reply: the client may send on another
                # connection the moment it has the reply, before this thread is back here.
                conn.active_at = monotonic()
            reader.end += n  # reader.received(n)
            if observer is not None:
                observer.received(n)
            if not self._answer(conn, reader, peer):
                return
            buffered = reader.end - reader.start
            if not buffered:
                partial_since = None
            elif partial_since is None:
                partial_since = monotonic()
            # No lock: `partial` is set before `busy` clears, so an eviction never sees a
            # connection with half a request as idle (only `busy` going up needs the lock).
            conn.partial = buffered != 0
            conn.busy = False
            if (
                not buffered
                and (stopping.is_set() or (retire_at is not None and monotonic() >= retire_at))
                and not self._retire(conn)
            ):
                return  # between calls: a client may retry on a new connection

    def _retire(self, conn: _Conn) -> bool:
        """A connection due to go (its age, the drain) between calls: True while it stays open
        yet. A THeader one first asks its client to let it go: its replies say `:drain`, and
        from the first of them it has --drain-grace before it closes once idle, unless the
        client closes it first; one no reply has told stays open (for its age: a request may be
        on its way into it), or for a draining server's grace (connection_rules.drain_grace).
        Framed and unframed ones go now."""
        if not conn.theader:
            return False
        stopping = self.stopping.is_set()
        if not conn.retiring:
            conn.retiring = True
            if not stopping:
                expired(self.state, log, conn.peer, aged=True)
        if conn.leave_at is None and stopping:
            conn.leave_at = time.monotonic() + drain_grace(self.config)
        return conn.leave_at is None or time.monotonic() < conn.leave_at

    def _room_in_budget(self, reader: Reader, budget: Budget, peer: Peer) -> bool:
        """Wait (this connection only) until the budget lets the buffer grow for the message
        arriving; False (logged) when it cannot progress within BUDGET_WAIT."""
        if reader.buf is None or len(reader.buf) - reader.end >= MIN_FREE:
            return True  # room without growing: the common case costs no Event
        granted = threading.Event()
        if reader.make_room(granted.set):
            return True
        if granted.wait(budget.wait_limit) and reader.make_room(granted.set):
            return True
        expired(self.state, log, peer, starved=True)
        return False

    def _answer(self, conn: _Conn, reader: Reader, peer: Peer) -> bool:
        """Answer every complete request buffered; False when the connection must close."""
        out: list[bytes] = []
        queued = 0
        keep_open = True
        fast = conn.fast
        msg: Answer
        while reader.start != reader.end:  # else next_message() has nothing to look at
            try:
                if fast is None or (conn.theader and (conn.retiring or self.stopping.is_set())):
                    msg = reader.next_message()
                else:  # a plain call is answered in there: its reply, else what it could not answer
                    msg = fast.answer()
            except WireError as e:
                if e.__class__ is HttpDetected:  # Thrift over HTTP: threaded_http serves it from here
                    from dracula.server.backends.threaded_http import serve_http  # here: it imports this module

                    serve_http(self, conn, reader)
                    return False
                reply = refuse_wire(self.state, e, reader.wire, peer)
                keep_open = not e.fatal
            else:
                if msg is None:
                    break
                if isinstance(msg, bytes):  # answered on the fast path
                    reply = msg
                elif isinstance(msg, tuple):  # the fast path's plain handler returned a coroutine
                    reply = self._awaited(msg[0], msg[1], self.pool)
                else:
                    codec = conn.codec
                    if codec is None:
                        wire = reader.wire
                        assert wire is not None  # a message was read
                        codec = conn.codec = self.state.codec_for(wire.protocol)
                        conn.framed = wire.frames_replies
                        conn.theader = wire.theader
                        fast = conn.fast = self.state.plain_path(reader, codec, peer, conn.peer_cert, self.coro_loop)
                    drain = conn.theader and (conn.retiring or self.stopping.is_set())
                    call = Call(self.state, msg, codec, conn.framed, peer, self.coro_loop, conn.peer_cert)
                    reply = self._handle(call, drain)
                    if drain and conn.leave_at is None:  # told: the client has its grace from now
                        grace = drain_grace(self.config) if self.stopping.is_set() else self.config.drain_grace
                        conn.leave_at = time.monotonic() + grace
            if reply is not None:
                out.append(reply)
                queued += len(reply)
                if queued >= self.config.write_high_water:
                    # Send before taking more: a read full of small calls with large replies
                    # must not pile up memory.
                    if not self._send(conn.sock, out, peer):
                        return False
                    out, queued = [], 0
            if not keep_open:
                break
        if out and not self._send(conn.sock, out, peer):
            return False
        return keep_open

    def _send(self, sock: socket.socket, out: list[bytes], peer: Peer) -> bool:
        """Send replies; False (logged) when they may not be held: the memory budget."""
        data = out[0] if len(out) == 1 else b"".join(out)
        if self.state.observer is not None:  # counted first: the client may look once it has the reply
            self.state.observer.sent(len(data))
        budget = self.state.budget
        if budget is None or len(data) < self.config.write_high_water:
            sock.sendall(data)
            return True
        # A batch this large may wait in sendall for a client that does not read: it counts
        # against the process's memory budget while it waits.
        if not charge_unsent(self.state, peer, len(data), "to send"):
            return False
        try:
            sock.sendall(data)
        finally:
            budget.give(len(data))
        return True

    def _recv_timeout(self, partial_since: float | None, conn: _Conn, retire_at: float | None) -> float | None:
        """Seconds the next recv may wait: what is left of the request timeout while a
        request is arriving, else the idle timeout or what is left of the connection's age
        limit, whichever is first (None: for ever); while stopping, a connection that has sent
        nothing waits FIRST_REQUEST_GRACE for its first request."""
        config = self.config
        if partial_since is not None and config.request_timeout:
            return max(0.001, config.request_timeout - (time.monotonic() - partial_since))
        if not conn.used and self.stopping.is_set():
            return FIRST_REQUEST_GRACE
        if retire_at is not None:
            left = max(0.001, retire_at - time.monotonic())
            return min(left, config.idle_timeout) if config.idle_timeout else left
        return config.idle_timeout or None

    def _handle(self, call: Call, drain: bool = False) -> bytes | None:
        """Run one call on this connection's thread; its reply bytes (saying `:drain` if
        `drain`: the connection is going)."""
        method = call.admit()
        if method is None:
            return call.reply
        if drain:
            call.say_drain()
        route = method.route
        pool = self.pool
        if route is BLOCKING and pool is not None:
            timeout = call.time_limit(self.config.handler_timeout)  # 0: none
            if timeout:
                job = pool_job_or_shed(call, self.state)
                if job is None:
                    return call.reply
                try:
                    value = pool.submit(job).result(timeout)
                except concurrent.futures.TimeoutError:
                    return call.timed_out(timeout)
                except (Exception, SystemExit) as e:
                    return call.finish(error=e)
                return call.finish(value)
        elif route is ASYNC:
            return self._awaited(call, None, pool)
        # A plain handler (the common case) runs here, before any time limit is worked out.
        coroutine = call.run_inline()
        if coroutine is None:
            return call.reply
        return self._awaited(call, coroutine, pool)

    def _awaited(
        self, call: Call, coroutine: Coroutine[Any, Any, Any] | None, pool: HandlerPool | None
    ) -> bytes | None:
        """Await a coroutine handler (or the coroutine a plain one returned) on the coroutine
        loop, within the call's time limit; its reply bytes."""
        timeout = call.time_limit(self.config.handler_timeout)  # 0: none
        future = self._await(call.awaited(coroutine, pool))
        try:
            return future.result(timeout or None)  # the reply: awaited() encodes it
        except concurrent.futures.TimeoutError:
            future.cancel()
            return call.timed_out(timeout)

    def _await(self, coroutine: Coroutine[Any, Any, bytes | None]) -> concurrent.futures.Future[bytes | None]:
        loop = self.coro_loop
        if loop is None:  # the first coroutine from a handler that did not look async
            with self.lock:
                if self.coro_loop is None:
                    self._start_coroutine_loop()
            loop = self.coro_loop
            assert loop is not None  # _start_coroutine_loop() set it
        return asyncio.run_coroutine_threadsafe(coroutine, loop)

    def _start_coroutine_loop(self) -> None:
        self.coro_loop = asyncio.new_event_loop()
        threading.Thread(target=self.coro_loop.run_forever, name="dracula-coroutines", daemon=True).start()


def _drain_pipe(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _shutdown_read(sock: socket.socket, how: int = socket.SHUT_RD) -> None:
    try:
        sock.shutdown(how)
    except OSError:
        pass


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self._end - time.monotonic())
