"""Fake networks for driving both backends' connection logic without a socket.

uvicorn tests its protocols through a MockTransport; dracula's two backends meet the network
in different shapes, so each gets its own fake, and a *rig* around each that gives the contract
tests (test_connection_contract.py) one interface:

    rig = UVRig(handler, **config) / ThreadRig(handler, **config)
    peer = rig.connect()        one client connection, as the backend sees it
    peer.send(data, piece=N)    bytes arrive (N at a time)
    peer.send_eof()             the client half-closes
    peer.wait_replies(n)        the decoded replies written so far, once there are n
    peer.time_passes(seconds)   the connection's clock moves on (timeouts)
    peer.closed, peer.sends     closed by the server; how many writes it made
    rig.drain()                 begin a graceful stop

- uv: the real uv_connection.Connection (an asyncio.BufferedProtocol) on a real uvloop loop,
  attached to a MockTransport; the rig calls connection_made / get_buffer + buffer_updated (it
  copies the bytes in, as libuv does) / eof_received / connection_lost as the loop would, and
  runs the loop only while a test waits for something. The connection's clock (Connection.time)
  is the rig's: check_timeouts(now) is called with times the test chose.
- thread: the real ThreadedBackend serving one connection (_serve_connection) on its own
  thread over a FakeSocket: recv_into returns scripted chunks, then blocks until more come, EOF,
  a shutdown or a timeout; sendall records. The thread backend has no clock to inject: a recv
  "times out" when the test says more time has passed, during that recv, than the timeout the
  backend set with settimeout() before it.

Neither rig starts a listener; each does the few set-up steps its backend's run() does before
accepting (the @blocking pool, the coroutine loop).
"""

from __future__ import annotations

import asyncio
import collections
import errno
import itertools
import socket
import struct
import threading

import uvloop

import dracula
from dracula.server.backends.threaded import ThreadedBackend, _Conn
from dracula.server.backends.uv_connection import Connection, Reactor
from dracula.server.dispatch import ASYNC, BLOCKING, Dispatcher
from dracula.server.placement import Placement
from dracula.server.state import ServerState
from dracula.server.thread_pool import HandlerPool

from .helpers import showcase_thrift
from .wire_client import BytesReader, read_reply

WAIT = 5.0  # seconds: only so that a broken backend fails a test instead of hanging it
_ports = itertools.count(40000)


def decode_replies(data: bytes) -> list:
    """The framed replies in `data` (wire_client.Reply each); a trailing partial frame is left."""
    replies = []
    at = 0
    while at + 4 <= len(data):
        (size,) = struct.unpack_from("!i", data, at)
        if at + 4 + size > len(data):
            break
        frame = BytesReader(data[at + 4 : at + 4 + size])
        replies.append(read_reply(frame))
        assert not frame.left(), "bytes left over in a reply frame"
        at += 4 + size
    return replies


def make_state(backend: str, handler, **options) -> ServerState:
    """The ServerState a Server(Showcase, Config(backend=..., **options)) builds (no metrics,
    no middleware), without binding its socket: as Server.__init__ wires it."""
    config = dracula.Config(host="127.0.0.1", port=0, backend=backend, **options).validate()
    placement = Placement(config.inline_budget) if config.backend == "uv" and config.inline_budget > 0 else None
    dispatcher = Dispatcher(
        [("Showcase", showcase_thrift.Showcase, handler)],
        placement,
        False,
        config.blocking_methods,
        config.inline_methods,
    )
    return ServerState(config, dispatcher)


# -- the uv backend: a MockTransport ------------------------------------------------------------


class MockTransport(asyncio.Transport):
    """What uvloop's TCP transport shows a protocol, recorded.

    Writes go out at once (get_write_buffer_size() stays 0) unless `hold` is set: then they
    pile up as a client that does not read makes them, and passing the high-water mark calls
    the protocol's pause_writing(), as asyncio's transports do; `drain_to(n)` is the client
    reading until n bytes are left (resume_writing() at or below the low-water mark)."""

    def __init__(self, rig, peername):
        super().__init__()
        self.rig = rig
        self.protocol = None
        self.peername = peername
        self.writes: list[bytes] = []
        self.reading = True
        self.reading_calls: list[str] = []  # "pause" / "resume", in order
        self.limits = None  # (high, low) from set_write_buffer_limits
        self.hold = False
        self.unsent = 0
        self.writing_paused = False
        self.closing = False
        self.aborted = False
        self.lost = False

    # -- what the protocol calls
    def get_extra_info(self, name, default=None):
        return self.peername if name == "peername" else default

    def set_write_buffer_limits(self, high=None, low=None):
        self.limits = (high, low)

    def get_write_buffer_size(self):
        return self.unsent

    def write(self, data):
        assert not self.closing, "written after close/abort"
        self.writes.append(bytes(data))
        if self.hold:
            self.unsent += len(data)
            high, _ = self.limits
            if self.unsent > high and not self.writing_paused:
                self.writing_paused = True
                self.protocol.pause_writing()
        self.rig.notify()

    def pause_reading(self):
        self.reading = False
        self.reading_calls.append("pause")

    def resume_reading(self):
        self.reading = True
        self.reading_calls.append("resume")

    def is_reading(self):
        return self.reading

    def is_closing(self):
        return self.closing

    def close(self):
        self._close(aborted=False)

    def abort(self):
        self._close(aborted=True)

    def _close(self, aborted):
        if self.closing:
            return
        self.closing = True
        self.aborted = aborted
        self.rig.loop.call_soon(self._lost)  # as asyncio does: connection_lost on a later turn
        self.rig.notify()

    def _lost(self):
        self.lost = True
        self.protocol.connection_lost(None)
        self.rig.notify()

    # -- what the test does as the client
    def drain_to(self, unsent: int) -> None:
        self.unsent = unsent
        _, low = self.limits
        if self.writing_paused and unsent <= low:
            self.writing_paused = False
            self.protocol.resume_writing()
        self.rig.notify()


class UVPeer:
    def __init__(self, rig, conn, transport):
        self.rig = rig
        self.conn = conn
        self.transport = transport

    def send(self, data: bytes, piece: int | None = None) -> None:
        """Deliver `data` as libuv would: get_buffer(), copy in, buffer_updated(n); `piece`
        bytes per read at most (all of it, as far as the buffer takes, by default)."""
        piece = piece or len(data)
        for at in range(0, len(data), piece):
            chunk = memoryview(data)[at : at + piece]
            while len(chunk):
                assert self.transport.reading, "libuv does not read a transport whose reading is paused"
                assert not self.transport.closing, "libuv does not read a closed transport"
                buf = self.conn.get_buffer(len(chunk))
                with memoryview(buf) as view:
                    n = min(len(view), len(chunk))
                    view[:n] = chunk[:n]
                if isinstance(buf, memoryview):
                    buf.release()  # libuv releases the buffer before buffer_updated
                self.conn.buffer_updated(n)
                chunk = chunk[n:]
        self.rig.turn()

    def send_eof(self) -> None:
        if not self.conn.eof_received():  # falsy: the transport closes itself
            self.transport.close()
        self.rig.turn()

    @property
    def written(self) -> bytes:
        return b"".join(self.transport.writes)

    @property
    def sends(self) -> int:
        return len(self.transport.writes)

    @property
    def replies(self) -> list:
        return decode_replies(self.written)

    def wait_replies(self, n: int) -> list:
        self.rig.run_until(lambda: len(self.replies) >= n or self.transport.closing, "%d replies" % n)
        replies = self.replies
        assert len(replies) >= n, "closed with %d of %d replies" % (len(replies), n)
        return replies

    @property
    def closed(self) -> bool:
        return self.transport.closing

    def wait_closed(self) -> None:
        self.rig.run_until(lambda: self.transport.lost, "connection_lost")
        assert self.conn not in self.rig.state.connections, "still in the connection table"

    def reset(self) -> None:
        """The client resets the connection: the loop reports it lost."""
        self.transport.closing = self.transport.lost = True
        self.conn.connection_lost(ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"))
        self.rig.turn()

    def wait_settled(self) -> None:
        """Until no call of this connection is in flight or waiting to be written."""
        self.rig.run_until(lambda: not (self.conn.slots or self.conn.later), "calls settled")
        self.rig.turn()

    def time_passes(self, seconds: float) -> None:
        """The rig's clock moves on, and the sweeper checks this connection."""
        self.rig.now += seconds
        self.conn.check_timeouts(self.rig.now)
        self.rig.turn()

    def settle(self) -> None:
        self.rig.turn()


class UVRig:
    backend = "uv"

    def __init__(self, handler, **options):
        self.handler = handler
        self.state = make_state(self.backend, handler, **options)
        self.loop = uvloop.new_event_loop()
        self.errors: list[dict] = []  # what reached the loop's exception handler
        self.loop.set_exception_handler(lambda loop, context: self.errors.append(context))
        # As UVBackend._serve does before accepting.
        self.reactor = Reactor(self.loop, HandlerPool(self.state.config.blocking_threads, name="contract-blocking"))
        self.now = 1000.0  # the connections' clock
        self.waiters: list[asyncio.Future] = []
        self.peers: list[UVPeer] = []

    def connect(self) -> UVPeer:
        conn = Connection(self.state, self.reactor)
        conn.time = lambda: self.now  # the clock idle and partial-request times are read from
        transport = MockTransport(self, ("127.0.0.1", next(_ports)))
        transport.protocol = conn
        conn.connection_made(transport)
        peer = UVPeer(self, conn, transport)
        self.peers.append(peer)
        return peer

    def drain(self) -> None:
        """What UVBackend._drain does first: mark the drain, close what is idle."""
        self.state.begin_drain()
        for conn in list(self.state.connections):
            conn.close_if_idle()
        self.turn()

    def drained(self) -> None:
        self.run_until(lambda: not self.state.connections, "every connection closed")

    # -- running the loop
    def notify(self) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def turn(self, turns: int = 3) -> None:
        """Run the callbacks that are due (a few loop iterations, no waiting)."""
        for _ in range(turns):
            self.loop.run_until_complete(asyncio.sleep(0))
        self.check_errors()

    def check_errors(self) -> None:
        """An exception in a loop callback (a write after close, a slot never settled...) fails
        the test instead of being logged by the loop."""
        if self.errors:
            context = self.errors[0]
            raise AssertionError("uv: error in a loop callback: %s" % context.get("message")) from context.get(
                "exception"
            )

    def run_until(self, predicate, what: str, timeout: float = WAIT) -> None:
        """Run the loop until `predicate()` holds: checked after every transport event, and
        every few milliseconds for what shows on no transport (a reply dropped after a reset)."""

        async def waiting():
            while not predicate():
                waiter = self.loop.create_future()
                self.waiters.append(waiter)
                await asyncio.wait([waiter], timeout=0.005)

        try:
            self.loop.run_until_complete(asyncio.wait_for(waiting(), timeout))
        except asyncio.TimeoutError:
            self.check_errors()
            raise AssertionError("uv: no %s within %gs" % (what, timeout)) from None
        self.check_errors()

    def close(self) -> None:
        gate = getattr(self.handler, "gate", None)
        if gate is not None:
            gate.set()
        for peer in self.peers:
            if not peer.transport.closing:
                peer.transport.abort()
        self.turn()
        self.reactor.pool.shutdown(wait=True)
        self.turn()
        self.loop.close()
        self.check_errors()


# -- the thread backend: a FakeSocket -----------------------------------------------------------

_EOF = object()


class FakeSocket:
    """The blocking socket a ThreadedBackend connection thread reads and writes.

    recv_into() hands out the chunks fed to it (as much of the first as the buffer takes), then
    blocks until more come. It returns 0 after EOF or shutdown(SHUT_RD / SHUT_RDWR), and raises
    TimeoutError once time_passes() has added up, during this one recv, to the timeout last set
    with settimeout() (never without one: a blocking socket waits for ever)."""

    def __init__(self):
        self.cond = threading.Condition()
        self.chunks: collections.deque = collections.deque()
        self.sent: list[bytes] = []
        self.timeouts: list = []  # every settimeout() value, in order
        self.timeout = None
        self.in_recv = False
        self.waited = 0.0  # time passed during the pending recv
        self.eof = False
        self.shut = None  # the `how` of shutdown()
        self.reset = False  # the peer reset the connection
        self.closed = False

    # -- what the backend calls
    def settimeout(self, value) -> None:
        self.timeouts.append(value)
        self.timeout = value

    def recv_into(self, buf, nbytes: int = 0) -> int:
        with self.cond:
            self.in_recv = True
            self.waited = 0.0
            self.cond.notify_all()
            try:
                while True:
                    if self.closed:
                        raise OSError(errno.EBADF, "Bad file descriptor")
                    if self.reset:
                        raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
                    if self.eof or self.shut is not None:
                        return 0
                    if self.chunks:
                        chunk = self.chunks[0]
                        if chunk is _EOF:
                            self.eof = True
                            return 0
                        n = min(len(buf), len(chunk), nbytes or len(buf))
                        buf[:n] = chunk[:n]
                        if n < len(chunk):
                            self.chunks[0] = chunk[n:]
                        else:
                            self.chunks.popleft()
                        return n
                    if self.timeout is not None and self.waited >= self.timeout:
                        raise TimeoutError("timed out")
                    if not self.cond.wait(WAIT * 4):
                        raise AssertionError("recv: the test fed nothing for %gs" % (WAIT * 4))
            finally:
                self.in_recv = False
                self.cond.notify_all()

    def recv(self, n: int) -> bytes:
        buf = bytearray(n)
        got = self.recv_into(buf)
        return bytes(buf[:got])

    def sendall(self, data) -> None:
        with self.cond:
            if self.closed or self.shut == socket.SHUT_RDWR:
                raise BrokenPipeError(errno.EPIPE, "Broken pipe")
            if self.reset:
                raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
            self.sent.append(bytes(data))
            self.cond.notify_all()

    def shutdown(self, how) -> None:
        with self.cond:
            self.shut = how if self.shut is None else max(self.shut, how)
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    # -- what the test does as the client
    def feed(self, *chunks) -> None:
        with self.cond:
            self.chunks.extend(chunks)
            self.cond.notify_all()

    def feed_eof(self) -> None:
        self.feed(_EOF)

    def peer_reset(self) -> None:
        with self.cond:
            self.reset = True
            self.cond.notify_all()


class ThreadPeer:
    def __init__(self, rig, conn, sock):
        self.rig = rig
        self.conn = conn
        self.sock = sock

    def send(self, data: bytes, piece: int | None = None) -> None:
        piece = piece or len(data)
        self.sock.feed(*(data[at : at + piece] for at in range(0, len(data), piece)))

    def send_eof(self) -> None:
        self.sock.feed_eof()

    def reset(self) -> None:
        self.sock.peer_reset()

    def wait_settled(self) -> None:
        """Until its thread has ended (a thread has nothing in flight once it is back in recv)."""
        self.wait_closed()

    @property
    def written(self) -> bytes:
        with self.sock.cond:
            return b"".join(self.sock.sent)

    @property
    def sends(self) -> int:
        return len(self.sock.sent)

    @property
    def replies(self) -> list:
        return decode_replies(self.written)

    def _wait(self, predicate, what: str) -> None:
        with self.sock.cond:
            done = self.sock.cond.wait_for(lambda: predicate() or self.rig.errors, WAIT)
        self.rig.check_errors()
        if not done:
            raise AssertionError("thread: no %s within %gs" % (what, WAIT))

    def wait_replies(self, n: int) -> list:
        self._wait(lambda: len(decode_replies(b"".join(self.sock.sent))) >= n or self.sock.closed, "%d replies" % n)
        replies = self.replies
        assert len(replies) >= n, "closed with %d of %d replies" % (len(replies), n)
        return replies

    @property
    def closed(self) -> bool:
        return self.sock.closed

    def wait_closed(self) -> None:
        self._wait(lambda: self.sock.closed, "close")
        self.conn.thread.join(WAIT)
        assert not self.conn.thread.is_alive()
        assert self.conn not in self.rig.state.connections, "still in the connection table"

    def settle(self) -> None:
        """Wait until the connection thread has taken everything fed and waits for more (or
        has ended)."""
        self._wait(lambda: (self.sock.in_recv and not self.sock.chunks) or self.sock.closed, "idle receive")

    def time_passes(self, seconds: float) -> None:
        """Time passes during the receive the thread is waiting in (it must be in one)."""
        self.settle()
        sock = self.sock
        with sock.cond:
            sock.waited += seconds
            expired = sock.in_recv and sock.timeout is not None and sock.waited >= sock.timeout
            sock.cond.notify_all()
        if expired:  # the recv raises TimeoutError: wait until the thread has taken it
            self._wait(lambda: not sock.in_recv or sock.closed, "timed-out receive")


class ThreadRig:
    backend = "thread"

    def __init__(self, handler, **options):
        self.handler = handler
        self.state = make_state(self.backend, handler, **options)
        self.backend_obj = ThreadedBackend(self.state, sock=None)
        # As ThreadedBackend.run does before accepting.
        self.coro_thread = None
        if any(m.route == ASYNC for m in self.state.methods.values()):
            before = set(threading.enumerate())
            self.backend_obj._start_coroutine_loop()
            # run() stops this loop but never closes it: the rig joins its thread and closes it.
            self.coro_thread = next(t for t in set(threading.enumerate()) - before if t.name == "dracula-coroutines")
        if self.state.config.handler_timeout and any(m.kind == BLOCKING for m in self.state.methods.values()):
            self.backend_obj.pool = HandlerPool(self.state.config.blocking_threads, name="contract-blocking")
        self.peers: list[ThreadPeer] = []
        self.drainer = None
        self.errors: list[BaseException] = []  # what escaped a connection thread

    def _serve(self, conn) -> None:
        try:
            self.backend_obj._serve_connection(conn)
        except BaseException as e:  # the thread would die with a warning: the test fails instead
            self.errors.append(e)
            with conn.sock.cond:
                conn.sock.cond.notify_all()

    def check_errors(self) -> None:
        if self.errors:
            raise AssertionError("thread: a connection thread raised %r" % self.errors[0]) from self.errors[0]

    def connect(self) -> ThreadPeer:
        """What the accept loop does for a new client: table entry, then its own thread."""
        sock = FakeSocket()
        conn = _Conn(sock, ("127.0.0.1", next(_ports)))
        backend = self.backend_obj
        with backend.lock:
            assert self.state.add_connection(conn, conn.opened_at)
        conn.thread = threading.Thread(target=self._serve, args=(conn,), name="contract-conn", daemon=True)
        conn.thread.start()
        peer = ThreadPeer(self, conn, sock)
        self.peers.append(peer)
        return peer

    def drain(self) -> None:
        """What stop() sets off once the accept loop has ended: the drain, on its own thread."""
        self.backend_obj.stopping.set()
        self.drainer = threading.Thread(target=self.backend_obj._drain, name="contract-drain", daemon=True)
        self.drainer.start()

    def drained(self) -> None:
        self.drainer.join(WAIT)
        assert not self.drainer.is_alive(), "the drain did not finish"
        assert not self.backend_obj.timed_out
        assert not self.state.connections

    def close(self) -> None:
        gate = getattr(self.handler, "gate", None)
        if gate is not None:
            gate.set()
        for peer in self.peers:
            peer.sock.feed_eof()
        for peer in self.peers:
            peer.conn.thread.join(WAIT)
        loop = self.backend_obj.coro_loop
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            if self.coro_thread is not None:
                self.coro_thread.join(WAIT)
                loop.close()
        if self.backend_obj.pool is not None:
            self.backend_obj.pool.shutdown(wait=True)
        self.check_errors()


RIGS = {"uv": UVRig, "thread": ThreadRig}
