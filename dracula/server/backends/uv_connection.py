"""One client connection on the libuv reactor: an asyncio.BufferedProtocol.

libuv reads straight into the connection's own Reader buffer. Every complete message in a read
is dispatched before anything is written, so pipelined requests get their replies in one
write. Plain handlers run inline; coroutine handlers become tasks and @blocking ones go to a
thread pool, while later replies on the same connection wait in `slots` so that replies always
leave in request order. What a call does is calls.Call's business; this file only moves bytes.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import select
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from dracula.server.calls import Call, refuse_wire
from dracula.server.connection_rules import ABORT, CLOSE, charge_unsent, drain_grace, expired, pool_job_or_shed
from dracula.server.dispatch import ASYNC, SYNC, CallKind
from dracula.server.on_connect import connection_admitted
from dracula.wire.errors import HttpDetected, WireError

if TYPE_CHECKING:
    from dracula.server._cfast import Answer, PlainPath
    from dracula.server.state import ServerState
    from dracula.server.thread_pool import HandlerPool
    from dracula.typedefs import Peer, PeerCert
    from dracula.wire.codec import Codec
    from dracula.wire.reader import Message, Reader

log = logging.getLogger("dracula.uv")


class Pending:
    """A call answered off the loop (a task or a pool thread), in the connection's request
    order: replies behind it wait until it is settled."""

    __slots__ = ("reply", "settled", "timer", "call")

    def __init__(self, reply: bytes | None = None, call: Call | None = None) -> None:
        self.reply = reply
        self.settled = reply is not None  # a reply queued behind a pending call is settled
        self.timer: asyncio.TimerHandle | None = None  # --handler-timeout / the client's deadline
        self.call = call  # until settled: its reply may yet be told to say `:drain` (retire)


class Reactor:
    """What the connections of one UVBackend share beyond the ServerState, owned by the backend
    and built complete before the first connection: the loop they run on, the pool @blocking
    handlers go to, and whether a drain's FIRST_REQUEST_GRACE is over (a connection that has
    sent nothing yet is closed as idle only after it)."""

    __slots__ = ("loop", "pool", "fresh_grace_over")

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: HandlerPool) -> None:
        self.loop = loop
        self.pool = pool
        self.fresh_grace_over = False


class Connection(asyncio.BufferedProtocol):
    transport: asyncio.Transport  # from connection_made(), which asyncio calls before any other callback
    call_type: type[Call] = Call  # uv_http.HttpConnection's calls answer in HTTP responses

    def __init__(self, state: ServerState[Connection], reactor: Reactor) -> None:
        self.state = state
        self.reactor = reactor
        self.loop = reactor.loop
        self.config = state.config
        self.observer = state.observer
        self.reader = state.new_reader()
        self.peer: Peer = None
        self.peer_cert: PeerCert | None = None  # the TLS client's certificate, read once
        self.codec: Codec | None = None  # set once the first message shows the protocol
        self.fast: PlainPath | None = None  # plain calls' compiled fast path, from the first message on
        self.framed = False
        self.theader = False  # THeader frames: a reply can tell the client the connection is going
        self.retiring = False  # THeader: replies say `:drain` from now on (retire())
        self.grace: asyncio.TimerHandle | None = None  # from the first reply saying `:drain`
        self.leaving = False  # closes as soon as it is idle
        self.slots: collections.deque[Pending] = collections.deque()  # calls off the loop, in request order
        self.later: list[bytes] = []  # replies released by slots, written on the next loop turn
        self.closed = False
        self.eof = False
        self.writing_paused = False  # the transport's buffer is past the high-water mark
        self.backlogged = False  # requests wait in the buffer until the replies drain
        self.time = time.monotonic  # the idle order needs finer steps than libuv's millisecond clock
        self.active_at = self.time()  # last time bytes arrived or a reply left
        self.partial_since: float | None = None  # when the request now arriving began (slowloris clock)
        self.budget_since: float | None = None  # when reading paused to wait for the memory budget
        self.write_charged = 0  # unsent reply bytes charged to the budget while writing is paused
        self.read_at = 0.0  # with shedding on: when the read being dispatched completed
        self.opened_at = 0.0

    # -- transport callbacks ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # a stream: a Transport
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        self.peer_cert = transport.get_extra_info("peercert")  # TLS: after the handshake (None: none)
        transport.set_write_buffer_limits(high=self.config.write_high_water, low=self.config.write_low_water)
        self.opened_at = self.time()
        hook = self.state.on_connect
        if (
            hook is not None and not connection_admitted(hook, self.state.refusals, self.peer, self.peer_cert)
        ) or not self.state.add_connection(self, self.opened_at):
            transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.grace is not None:
            self.grace.cancel()
        self.reader.release()
        self._uncharge_unsent()
        self.state.connection_closed(self)

    def evict(self) -> None:
        """Close while idle to make room (ServerState.add_connection)."""
        self.transport.close()

    def pause_writing(self) -> None:
        # The client is not reading its replies: stop reading its requests.
        self.writing_paused = True
        self.transport.pause_reading()
        if self.state.budget is not None:
            self._charge_unsent()

    def _charge_unsent(self) -> None:
        """Replies past the high-water mark count against the process's memory budget
        (connection_rules.charge_unsent): a client that does not read them is closed once it
        is spent."""
        size = self.transport.get_write_buffer_size()
        if charge_unsent(self.state, self.peer, size, "unread"):
            self.write_charged = size
            return
        self.loop.call_soon(self.transport.abort)  # not inside the write that paused

    def _uncharge_unsent(self) -> None:
        if self.write_charged:
            budget = self.state.budget
            assert budget is not None  # only a budget is charged
            budget.give(self.write_charged)
            self.write_charged = 0

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._uncharge_unsent()
        if not self.closed and self.budget_since is None:
            self.transport.resume_reading()
            if self.backlogged:
                self._resume_backlog()

    def _resume_backlog(self) -> None:
        """Dispatch the requests left in the buffer when replies passed the high-water mark."""
        if self.closed or self.writing_paused or not self.backlogged:
            return
        self.backlogged = False
        if self.budget_since is None:
            self.transport.resume_reading()
        self.buffer_updated(0)

    def eof_received(self) -> bool:
        # A client that half-closes after its requests still gets their replies: keep the
        # write side open while calls are in flight (returning False closes the transport
        # once what is already written has been sent).
        self.eof = True
        return bool(self.slots or self.later)

    def get_buffer(self, sizehint: int) -> bytearray | memoryview:
        # libuv asks for a buffer before every read attempt, twice per readable event (the
        # second read finds EAGAIN): when everything received has been consumed, hand it the
        # bytearray itself, which costs no new object.
        reader = self.reader
        if reader.end == 0 and reader.buf is not None:
            return reader.buf
        return reader.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        """`nbytes` more arrived (0: resuming a backlog). Dispatch every complete request
        buffered, replies in one write; stop early (and stop reading) once the replies would
        pass the write high-water mark, so one read full of small calls with large replies
        cannot pile up memory before the first write."""
        reader = self.reader
        reader.end += nbytes  # reader.received(nbytes)
        if self.observer is not None:
            self.observer.received(nbytes)
        if self.state.overload is not None:  # a busy reactor's delay counts as queueing
            self.read_at = time.perf_counter()
        out: list[bytes] = []
        keep_open = True
        room = None  # what the write buffer can take before the high-water mark: asked when a second request waits
        replied = 0  # bytes of the replies in `out`
        codec = self.codec
        fast = self.fast
        while reader.start != reader.end:
            queued = len(out)
            msg: Answer
            try:
                if fast is None or self.slots or self.later or self.retiring:
                    msg = reader.next_message()
                else:  # a plain call is answered in there: its reply, else what it could not answer
                    msg = fast.answer()
            except WireError as e:
                if e.__class__ is HttpDetected:  # Thrift over HTTP: uv_http serves it from here
                    from dracula.server.backends.uv_http import serve_http  # here: uv_http imports this module

                    return serve_http(self)
                self._emit(refuse_wire(self.state, e, reader.wire, self.peer), out)
                keep_open = not e.fatal
                if keep_open:
                    continue
                break
            if msg is None:
                break
            if isinstance(msg, bytes):  # answered on the fast path
                out.append(msg)
            elif isinstance(msg, tuple):  # the fast path's plain handler returned a coroutine
                self._off_loop(msg[0], ASYNC, msg[1], out)
            else:
                if codec is None:
                    codec = self._detected(reader)
                    fast = self.fast
                self._handle(msg, out, codec)
            if len(out) != queued:  # at most one reply per request
                replied += len(out[-1])
                if reader.start != reader.end:
                    if room is None:
                        room = self.config.write_high_water - self.transport.get_write_buffer_size()
                    if replied >= room:
                        self.backlogged = True
                        self.transport.pause_reading()
                        break
        if out:
            data = out[0] if len(out) == 1 else b"".join(out)
            if self.observer is not None:  # counted first: the client may look once it has the reply
                self.observer.sent(len(data))
            self.transport.write(data)
        if self.backlogged and not self.writing_paused:
            # The write went out at once: carry on (on the next turn, so others are served).
            self.loop.call_soon(self._resume_backlog)
        self.active_at = now = self.time()
        if reader.start == reader.end:
            self.partial_since = None
        else:
            if self.partial_since is None:
                self.partial_since = now
            if not reader.make_room(self._budget_wake):
                self._wait_for_budget(now)
        if not keep_open:
            self.transport.close()
        elif self.leaving or self.state.draining:  # _between_calls(), only when it has work
            self._between_calls()

    def _detected(self, reader: Reader) -> Codec:
        """The first message showed the connection's protocol: the codec for all of them."""
        wire = reader.wire
        assert wire is not None  # a message was read
        self.framed = wire.frames_replies
        self.theader = wire.theader
        if self.theader and self.leaving and self.state.draining:
            # It sent nothing before the drain began, so it was to close after its first reply;
            # THeader can say so: that reply carries `:drain` (closing after an unmarked one
            # would cut off the request the client writes next on it).
            self.leaving = False
            self.drain()
        codec = self.codec = self.state.codec_for(wire.protocol)
        if self.call_type is Call:  # uv_http's connections answer in HTTP responses
            self.fast = self.state.plain_path(reader, codec, self.peer, self.peer_cert, self.loop)
        return codec

    # -- the memory budget (--max-buffer-memory) ------------------------------------------
    def _wait_for_budget(self, now: float) -> None:
        """The buffer must grow for the message arriving and the process's budget is spent:
        stop reading this connection (others go on) until memory is given back."""
        if self.budget_since is None:
            self.budget_since = now
            self.transport.pause_reading()

    def _budget_wake(self) -> None:
        # Called by whoever gave memory back, inside their own callback: continue later.
        self.loop.call_soon(self._budget_granted)

    def _budget_granted(self) -> None:
        if self.closed or not self.reader.make_room(self._budget_wake):
            return
        self.budget_since = None
        if not (self.writing_paused or self.backlogged):
            self.transport.resume_reading()

    def _write(self, data: bytes) -> None:
        if self.observer is not None:  # counted first: the client may look once it has the reply
            self.observer.sent(len(data))
        self.transport.write(data)

    # -- requests --------------------------------------------------------------------------
    def _handle(self, msg: Message, out: list[bytes], codec: Codec) -> None:
        call = self.call_type(self.state, msg, codec, self.framed, self.peer, self.loop, self.peer_cert)
        method = call.admit(self.read_at)
        if method is None:
            self._emit(call.reply, out)
            return
        if self.retiring and msg.header is not None:
            call.say_drain()
            self._start_grace(self.config.drain_grace)
        kind = method.route
        coroutine = None
        if kind is SYNC:
            if self.read_at and call.shed_if_late():  # queued behind slow calls of this read
                self._emit(call.reply, out)
                return
            coroutine = call.run_inline()
            if coroutine is None:
                reply = call.reply
                if reply is not None:
                    if self.slots or self.later:
                        self._emit(reply, out)
                    else:  # the common case, without a call
                        out.append(reply)
                return
            kind = ASYNC
        self._off_loop(call, kind, coroutine, out)

    def _off_loop(
        self, call: Call, kind: CallKind, coroutine: Coroutine[Any, Any, Any] | None, out: list[bytes]
    ) -> None:
        """Answer `call` off the loop: awaited as a task (ASYNC: `coroutine`, when a plain
        handler returned one) or run in the pool; its reply waits in `slots`."""
        job = None
        if kind is not ASYNC:
            job = pool_job_or_shed(call, self.state)
            if job is None:  # the pool's queue is too long
                self._emit(call.reply, out)
                return
        loop = self.loop
        slot = Pending(call=call)
        self.slots.append(slot)
        timeout = call.time_limit(self.config.handler_timeout)
        if kind is ASYNC:
            future = asyncio.ensure_future(call.awaited(coroutine, self.reactor.pool), loop=loop)
            future.add_done_callback(functools.partial(self._finished, call, slot))
            if timeout:
                slot.timer = loop.call_later(timeout, self._timed_out, call, slot, future, timeout)
        else:  # straight to a pool thread and back: no futures on either side
            self.reactor.pool.run(self._run_in_thread, call, slot, job)
            if timeout:
                slot.timer = loop.call_later(timeout, self._timed_out, call, slot, None, timeout)

    def _emit(self, reply: bytes | None, out: list[bytes]) -> None:
        if reply is None:
            return
        if self.slots:
            self.slots.append(Pending(reply))
        elif self.later:  # released replies wait for _flush: queue behind them
            self.later.append(reply)
        else:
            out.append(reply)

    def _finished(self, call: Call, slot: Pending, future: asyncio.Future[bytes | None]) -> None:
        """A coroutine handler's task finished: it returns the encoded reply."""
        if slot.settled:
            return  # already answered: it timed out
        if slot.timer is not None:
            slot.timer.cancel()
        try:
            if future.cancelled():
                reply = call.finish(error=asyncio.CancelledError("the call was cancelled"))
            elif future.exception() is not None:
                reply = call.finish(error=future.exception())
            else:
                reply = future.result()
        except Exception:  # never leave a slot unsettled: later replies would wait for ever
            log.exception("cannot answer %s", call.qualname)
            reply = None
        self._settle(slot, reply)

    def _run_in_thread(self, call: Call, slot: Pending, job: Callable[[], Any]) -> None:
        """In a pool thread: run a blocking handler, hand its value back to the loop."""
        if slot.settled:
            return  # timed out while queued: its caller has its answer, it must not run
        try:
            value, error = job(), None
        except BaseException as e:
            value, error = None, e
        try:
            self.loop.call_soon_threadsafe(self._ran_in_thread, call, slot, value, error)
        except RuntimeError:  # the loop closed: the server stopped without waiting for it
            pass

    def _ran_in_thread(self, call: Call, slot: Pending, value: Any, error: BaseException | None) -> None:
        if slot.settled:
            return  # already answered: it timed out
        if slot.timer is not None:
            slot.timer.cancel()
        try:
            reply = call.finish(value) if error is None else call.finish(error=error)
        except Exception:  # never leave a slot unsettled: later replies would wait for ever
            log.exception("cannot answer %s", call.qualname)
            reply = None
        self._settle(slot, reply)

    def _timed_out(
        self, call: Call, slot: Pending, future: asyncio.Future[bytes | None] | None, timeout: float
    ) -> None:
        self._settle(slot, call.timed_out(timeout))
        if future is not None:
            future.cancel()  # stops a coroutine; a thread cannot be stopped and runs on unheard

    def _settle(self, slot: Pending, reply: bytes | None) -> None:
        """Record a call's reply and release every reply now ready, in request order."""
        slot.reply = reply
        slot.settled = True
        slots = self.slots
        released = not self.later
        while slots and slots[0].settled:
            reply = slots.popleft().reply
            if reply is not None:
                self.later.append(reply)
        if self.later and released:
            self.loop.call_soon(self._flush)
        elif not slots:
            self._after_reply()

    def _flush(self) -> None:
        later, self.later = self.later, []
        if not self.closed:
            self._write(b"".join(later))
        self.active_at = self.time()
        self._after_reply()

    def check_timeouts(self, now: float) -> None:
        """The sweeper's look at this connection's time limits (connection_rules.expired)."""
        config, budget = self.config, self.state.budget
        budget_since, partial_since = self.budget_since, self.partial_since
        verdict = expired(
            self.state,
            log,
            self.peer,
            starved=budget_since is not None and budget is not None and now - budget_since > budget.wait_limit,
            incomplete=partial_since is not None
            and bool(config.request_timeout)
            and now - partial_since > config.request_timeout,
            idle=bool(config.idle_timeout) and self.idle and now - self.active_at > config.idle_timeout,
        )
        if verdict is ABORT:
            self.transport.abort()
        elif verdict is CLOSE:
            self.transport.close()

    def _after_reply(self) -> None:
        if self.closed:
            return
        if self.eof and not self.slots and not self.later:
            self.transport.close()
        else:
            self._between_calls()

    def _between_calls(self) -> None:
        """After a read or a reply: a connection on its way out closes once idle."""
        if self.leaving:
            self.close_if_idle()
        elif self.state.draining:
            self.drain()

    # -- going away ------------------------------------------------------------------------
    def drain(self) -> None:
        """The server is draining. Framed and unframed connections close once idle; a THeader
        one retires, and closes once idle after a draining server's grace
        (connection_rules.drain_grace) whether it was told or not: the server is going."""
        if self.theader:
            self.retire()
            self._start_grace(drain_grace(self.config))
        else:
            self.leaving = True
            self.close_if_idle()

    def retire(self) -> None:
        """Ask a THeader client to stop using this connection (--max-connection-age): every
        reply from now on carries `:drain` (those of calls in flight too), and once one has,
        the connection is closed when idle after --drain-grace unless the client (Envoy,
        dracula's client) has closed it by then. A connection no reply has told stays open: a
        request may be on its way into it, which is what closing between calls cuts off."""
        if self.retiring or self.closed:
            return
        self.retiring = True
        for slot in self.slots:
            if not slot.settled and slot.call is not None:
                slot.call.say_drain()
                self._start_grace(self.config.drain_grace)

    def _start_grace(self, seconds: float) -> None:
        if self.grace is None:
            self.grace = self.loop.call_later(seconds, self._grace_over)

    def _grace_over(self) -> None:
        if not self.closed:
            self.leaving = True
            self.close_if_idle()

    @property
    def used(self) -> bool:
        """It has sent a byte (the reader allocates its buffer on the first read)."""
        return self.reader.buf is not None

    @property
    def idle(self) -> bool:
        """No call in flight, no reply waiting, nothing partly received."""
        return not (self.slots or self.later or self.reader.buffered)

    def close_if_idle(self) -> bool:
        """Close now if idle (and, early in a drain, the client has sent something already);
        True if it closed."""
        if not self.idle:
            return False
        if not self.used and not self.reactor.fresh_grace_over:
            return False  # never sent a byte: its first request may be on the way
        if self._unread():
            return False  # a request arrived that the loop has not read yet: answer it first
        self.transport.close()
        return True

    def _unread(self) -> bool:
        """Bytes wait in the socket (a request on its way in): closing now would cut it off,
        and the client could not tell that it never ran. One system call, at closes only."""
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return False
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return bool(poller.poll(0))
