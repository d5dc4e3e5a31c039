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
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from thriftpy2.thrift import TApplicationException

from ..config import FIRST_REQUEST_GRACE
from ..dispatch import ASYNC, BLOCKING, CallError, NeedsAwait
from ..logs import RefusalLog, format_peer
from ..wire.codec import make_codec
from ..wire.errors import WireError
from ..wire.reader import Reader

log = logging.getLogger("dracula.thread")


class _Conn:
    __slots__ = ("sock", "busy", "used", "thread")

    def __init__(self, sock):
        self.sock = sock
        self.busy = False
        self.used = False  # has sent a byte
        self.thread = threading.current_thread()


class ThreadedBackend:
    def __init__(self, config, dispatcher, sock, ssl_context=None):
        self.config = config
        self.dispatcher = dispatcher
        self.sock = sock
        self.ssl_context = ssl_context
        self.refusals = RefusalLog()
        self.lock = threading.Lock()
        self.connections = set()
        self.stopping = threading.Event()
        self.coro_loop = None
        self.pool = None  # runs @blocking handlers when they have a timeout
        self.connection_limit = config.connection_limit
        self.timed_out = False  # the drain hit the graceful timeout

    def run(self, on_ready) -> None:
        if any(m.kind == ASYNC for m in self.dispatcher.methods.values()):
            self._start_coroutine_loop()
        if self.config.handler_timeout and any(m.kind == BLOCKING for m in self.dispatcher.methods.values()):
            self.pool = ThreadPoolExecutor(self.config.thread_count, thread_name_prefix="dracula-blocking")
        # The listening socket may be shared with other workers: never shut it down or change
        # its blocking flag (both are shared); wait for it or for stop()'s wake-up byte.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        poller = selectors.DefaultSelector()
        poller.register(self.sock, selectors.EVENT_READ)
        poller.register(self._wake_r, selectors.EVENT_READ)
        on_ready()
        try:
            while not self.stopping.is_set():
                if not poller.select():
                    continue
                if self.stopping.is_set():
                    break
                try:
                    client, peer = self.sock.accept()
                except BlockingIOError:
                    continue  # another worker took it
                except OSError as e:
                    log.warning("accept failed: %s", e)
                    self.stopping.wait(0.05)  # e.g. out of file descriptors: back off briefly
                    continue
                client.setblocking(True)
                if len(self.connections) >= self.connection_limit:
                    self.refusals(peer, "connection limit of %d reached" % self.connection_limit)
                    client.close()
                    continue
                threading.Thread(target=self._serve_connection, args=(client, peer),
                                 name="dracula-conn", daemon=True).start()
            # Stop accepting: close this process's handle on the listening socket (a shared one
            # stays open in the other workers, so their queue keeps its connections).
            poller.unregister(self.sock)
            self.sock.close()
            self._drain()
        finally:
            poller.close()
            os.close(self._wake_r)
            os.close(self._wake_w)
            if self.coro_loop is not None:
                self.coro_loop.call_soon_threadsafe(self.coro_loop.stop)
            if self.pool is not None:
                self.pool.shutdown(wait=False, cancel_futures=True)

    def stop(self) -> None:
        """Begin a graceful stop; safe from any thread and from signal handlers."""
        self.stopping.set()
        try:
            os.write(self._wake_w, b"x")  # wakes the accept loop's select()
        except (AttributeError, OSError):
            pass  # not running yet (run() checks the flag) or already stopped

    def _drain(self) -> None:
        deadline = _Deadline(self.config.graceful_timeout)
        with self.lock:
            conns = list(self.connections)
            for conn in conns:
                if not conn.busy and conn.used:
                    _shutdown_read(conn.sock)
        if any(conn.busy for conn in conns):
            log.info("draining %d connection(s) with requests in flight", sum(c.busy for c in conns))
        # A connection accepted moments ago may be about to send its first request: give it
        # FIRST_REQUEST_GRACE before closing it as idle.
        if any(not conn.used for conn in conns):
            time.sleep(min(FIRST_REQUEST_GRACE, deadline.left()))
            with self.lock:
                for conn in conns:
                    if not conn.busy and not conn.used:
                        _shutdown_read(conn.sock)
        while deadline.left() > 0:  # connections registered during the drain count too
            with self.lock:
                threads = [conn.thread for conn in self.connections]
            if not threads:
                break
            for thread in threads:
                thread.join(deadline.left())
        with self.lock:
            left = list(self.connections)
        if left:
            self.timed_out = True
            log.warning("graceful timeout: closing %d connection(s) with requests in flight", len(left))
            for conn in left:
                _shutdown_read(conn.sock, socket.SHUT_RDWR)

    def _serve_connection(self, sock, peer) -> None:
        conn = _Conn(sock)
        with self.lock:
            self.connections.add(conn)  # even while stopping: its first request gets the grace
        config = self.config
        if self.ssl_context is not None:
            try:
                sock.settimeout(config.request_timeout or None)
                sock = conn.sock = self.ssl_context.wrap_socket(sock, server_side=True)
            except (OSError, ValueError) as e:
                self.refusals(peer, "TLS handshake failed: %s" % e)
                with self.lock:
                    self.connections.discard(conn)
                sock.close()
                return
        reader = Reader.for_config(config, self.dispatcher.arg_specs)
        observer = self.dispatcher.observer
        if observer is not None:
            observer.connection_opened()
        codec = None
        partial_since = None
        try:
            while True:
                sock.settimeout(self._recv_timeout(partial_since, conn))
                try:
                    n = sock.recv_into(reader.get_buffer())
                except socket.timeout:
                    if partial_since is not None:
                        self.refusals(peer, "request still incomplete after %gs" % config.request_timeout)
                    else:
                        log.debug("closing %s: idle for %gs", format_peer(peer), config.idle_timeout)
                    break
                if n == 0:
                    break
                with self.lock:
                    conn.busy = conn.used = True
                reader.received(n)
                if observer is not None:
                    observer.received(n)
                out = []
                queued = 0
                keep_open = True
                while True:
                    try:
                        msg = reader.next_message()
                    except WireError as e:
                        self.refusals(peer, e.reason)
                        wire = reader.wire
                        if e.reply_to is not None:
                            reply = self.dispatcher.refuse_bytes(e, self._codec(wire.protocol), wire.framed)
                            if reply is not None:
                                out.append(reply)
                        keep_open = not e.fatal
                        if keep_open:
                            continue
                        break
                    if msg is None:
                        break
                    if codec is None:
                        codec = self._codec(reader.wire.protocol)
                    reply = self._handle(msg, codec, reader.wire.framed, peer)
                    if reply is not None:
                        out.append(reply)
                        queued += len(reply)
                        if queued >= config.write_high_water:
                            # Send before taking more: a read full of small calls with large
                            # replies must not pile up memory.
                            self._send(sock, out, observer)
                            out, queued = [], 0
                if out:
                    self._send(sock, out, observer)
                if not keep_open:
                    break
                if not reader.buffered:
                    partial_since = None
                elif partial_since is None:
                    partial_since = time.monotonic()
                with self.lock:
                    conn.busy = False
                    if self.stopping.is_set() and not reader.buffered:
                        break
        except OSError:
            pass  # reset by the peer, or shut down at the end of a drain
        finally:
            if observer is not None:
                observer.connection_closed()
            with self.lock:
                self.connections.discard(conn)
            sock.close()

    @staticmethod
    def _send(sock, out, observer) -> None:
        data = b"".join(out)
        if observer is not None:  # counted first: the client may look at the metrics once it has the reply
            observer.sent(len(data))
        sock.sendall(data)

    def _recv_timeout(self, partial_since, conn):
        """Seconds the next recv may wait: what is left of the request timeout while a
        request is arriving, else the idle timeout (None: for ever); while stopping, a
        connection that has sent nothing waits FIRST_REQUEST_GRACE for its first request."""
        config = self.config
        if partial_since is not None and config.request_timeout:
            return max(0.001, config.request_timeout - (time.monotonic() - partial_since))
        if not conn.used and self.stopping.is_set():
            return FIRST_REQUEST_GRACE
        return config.idle_timeout or None

    def _codec(self, protocol):
        # Codecs reuse buffers, so each connection thread has its own.
        local = _thread_codecs.__dict__
        codec = local.get(protocol)
        if codec is None:
            codec = local[protocol] = make_codec(protocol, self.config.max_depth)
        return codec

    def _handle(self, msg, codec, framed, peer):
        dispatcher = self.dispatcher
        try:
            method, args = dispatcher.prepare(msg, codec, peer)
        except (CallError, WireError) as e:
            if isinstance(e, WireError):
                self.refusals(peer, e.reason)
            return dispatcher.refuse(msg, e, codec, framed)
        timeout = self.config.handler_timeout or None
        if method.kind is ASYNC:
            future = self._await(dispatcher.await_outcome(method, msg, codec, framed, method.fn(*args)))
        elif method.kind is BLOCKING and timeout:
            future = self.pool.submit(dispatcher.call_sync, method, args, msg, codec, framed)
        else:
            try:
                return dispatcher.call_sync(method, args, msg, codec, framed)
            except NeedsAwait as e:
                future = self._await(dispatcher.await_outcome(method, msg, codec, framed, e.coroutine))
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            log.error("%s did not finish within %gs; its caller gets an error", method.qualname, timeout)
            return dispatcher.outcome(method, msg, codec, framed, error=TApplicationException(
                TApplicationException.INTERNAL_ERROR, "%s did not finish within %gs" % (method.qualname, timeout)))

    def _await(self, coroutine):
        if self.coro_loop is None:  # the first coroutine from a handler that did not look async
            with self.lock:
                if self.coro_loop is None:
                    self._start_coroutine_loop()
        return asyncio.run_coroutine_threadsafe(coroutine, self.coro_loop)

    def _start_coroutine_loop(self) -> None:
        self.coro_loop = asyncio.new_event_loop()
        threading.Thread(target=self.coro_loop.run_forever, name="dracula-coroutines", daemon=True).start()


_thread_codecs = threading.local()


def _shutdown_read(sock, how=socket.SHUT_RD) -> None:
    try:
        sock.shutdown(how)
    except OSError:
        pass


class _Deadline:
    def __init__(self, seconds: float):
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self._end - time.monotonic())
