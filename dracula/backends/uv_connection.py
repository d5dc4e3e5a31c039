"""One client connection on the libuv reactor: an asyncio.BufferedProtocol.

libuv reads straight into the connection's own Reader buffer. Every complete message in a read
is dispatched before anything is written, so pipelined requests get their replies in one
write. Plain handlers run inline; coroutine handlers become tasks and @blocking ones go to a
thread pool, while later replies on the same connection wait in `slots` so that replies always
leave in request order.
"""
from __future__ import annotations

import asyncio
import collections
import functools
import logging

from thriftpy2.thrift import TApplicationException

from ..dispatch import ASYNC, SYNC, CallError, NeedsAwait
from ..logs import format_peer
from ..wire.errors import WireError
from ..wire.reader import Message, Reader

log = logging.getLogger("dracula.uv")


class Connection(asyncio.BufferedProtocol):
    def __init__(self, backend):
        config = backend.config
        self.backend = backend
        self.dispatcher = backend.dispatcher
        self.observer = backend.dispatcher.observer
        self.reader = Reader.for_config(config, backend.dispatcher.arg_specs)
        self.transport = None
        self.peer = None
        self.codec = None
        self.framed = False
        self.slots = collections.deque()  # [reply, done] for calls off the loop, in request order
        self.later = []  # replies released by slots, written on the next loop turn
        self.closed = False
        self.eof = False
        self.writing_paused = False  # the transport's buffer is past the high-water mark
        self.backlogged = False  # requests wait in the buffer until the replies drain
        self.active_at = backend.tick  # last time bytes arrived or a reply left
        self.partial_since = None  # when the request now arriving began (slowloris clock)

    # -- transport callbacks ---------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        config = self.backend.config
        transport.set_write_buffer_limits(high=config.write_high_water, low=config.write_low_water)
        if len(self.backend.connections) >= self.backend.connection_limit:
            self.backend.refusals(self.peer, "connection limit of %d reached" % self.backend.connection_limit)
            transport.abort()
            return
        self.backend.connections.add(self)
        if self.observer is not None:
            self.observer.connection_opened()

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.observer is not None and self in self.backend.connections:
            self.observer.connection_closed()
        self.backend.connection_closed(self)

    def pause_writing(self) -> None:
        # The client is not reading its replies: stop reading its requests.
        self.writing_paused = True
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if not self.closed:
            self.transport.resume_reading()
            if self.backlogged:
                self._resume_backlog()

    def _resume_backlog(self) -> None:
        """Dispatch the requests left in the buffer when replies passed the high-water mark."""
        if self.closed or self.writing_paused or not self.backlogged:
            return
        self.backlogged = False
        self.transport.resume_reading()
        self.buffer_updated(0)

    def eof_received(self):
        # A client that half-closes after its requests still gets their replies: keep the
        # write side open while calls are in flight (returning False closes the transport
        # once what is already written has been sent).
        self.eof = True
        return bool(self.slots or self.later)

    def get_buffer(self, sizehint: int):
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
        reader.end += nbytes  # Reader.received(), inlined: this runs once per read
        if self.observer is not None:
            self.observer.received(nbytes)
        out = []
        keep_open = True
        room = self.backend.config.write_high_water - self.transport.get_write_buffer_size()
        while reader.start != reader.end:
            try:
                msg = reader.next_message()
            except WireError as e:
                keep_open = self._refused(e, out)
                if keep_open:
                    continue
                break
            if msg is None:
                break
            if self.codec is None:
                self.codec = self.backend.codec_for(reader.wire.protocol)
                self.framed = reader.wire.framed
            queued = len(out)
            self._handle(msg, out)
            if len(out) != queued:  # at most one reply per request
                room -= len(out[-1])
                if room <= 0 and reader.start != reader.end:
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
            self.backend.loop.call_soon(self._resume_backlog)
        self.active_at = self.backend.tick
        if reader.start == reader.end:
            self.partial_since = None
        elif self.partial_since is None:
            self.partial_since = self.backend.tick
        if not keep_open:
            self.transport.close()
        elif self.backend.draining:
            self.close_if_idle()

    # -- requests --------------------------------------------------------------------------
    def _handle(self, msg: Message, out: list) -> None:
        dispatcher = self.dispatcher
        try:
            method, args = dispatcher.prepare(msg, self.codec, self.peer)
        except (CallError, WireError) as e:
            if isinstance(e, WireError):
                self.backend.refusals(self.peer, e.reason)
            self._emit(dispatcher.refuse(msg, e, self.codec, self.framed), out)
            return
        kind = method.kind
        coroutine = None
        if kind is SYNC:
            try:
                reply = dispatcher.call_sync(method, args, msg, self.codec, self.framed)
            except NeedsAwait as e:
                kind, coroutine = ASYNC, e.coroutine
            else:
                if reply is not None:
                    if self.slots or self.later:
                        self._emit(reply, out)
                    else:  # the common case, without a call
                        out.append(reply)
                return
        slot = [None, False]
        self.slots.append(slot)
        if kind is ASYNC:
            future = asyncio.ensure_future(_contained(coroutine or method.fn(*args)), loop=self.backend.loop)
        else:
            future = self.backend.loop.run_in_executor(self.backend.pool, method.fn, *args)
        future.add_done_callback(functools.partial(self._finished, method, msg, slot))
        timeout = self.backend.config.handler_timeout
        if timeout:
            slot.append(self.backend.loop.call_later(timeout, self._timed_out, method, msg, slot, future))

    def _emit(self, reply, out: list) -> None:
        if reply is None:
            return
        if self.slots:
            self.slots.append([reply, True])
        elif self.later:  # released replies wait for _flush: queue behind them
            self.later.append(reply)
        else:
            out.append(reply)

    def _finished(self, method, msg, slot, future) -> None:
        if slot[1]:
            return  # already answered: it timed out
        if len(slot) > 2:
            slot[2].cancel()
        if future.cancelled():
            error, value = asyncio.CancelledError("the call was cancelled"), None
        else:
            error = future.exception()
            value = None if error is not None else future.result()
        try:
            reply = self.dispatcher.outcome(method, msg, self.codec, self.framed, value, error)
        except Exception:  # never leave a slot unsettled: later replies would wait for ever
            log.exception("cannot answer %s", method.qualname)
            reply = None
        self._settle(slot, reply)

    def _timed_out(self, method, msg, slot, future) -> None:
        timeout = self.backend.config.handler_timeout
        log.error("%s did not finish within %gs; its caller gets an error", method.qualname, timeout)
        error = TApplicationException(TApplicationException.INTERNAL_ERROR,
                                      "%s did not finish within %gs" % (method.qualname, timeout))
        self._settle(slot, self.dispatcher.outcome(method, msg, self.codec, self.framed, error=error))
        future.cancel()  # stops a coroutine; a thread cannot be stopped and runs on unheard

    def _settle(self, slot, reply) -> None:
        """Record a call's reply and release every reply now ready, in request order."""
        slot[0] = reply
        slot[1] = True
        slots = self.slots
        released = not self.later
        while slots and slots[0][1]:
            reply = slots.popleft()[0]
            if reply is not None:
                self.later.append(reply)
        if self.later and released:
            self.backend.loop.call_soon(self._flush)
        elif not slots:
            self._after_reply()

    def _flush(self) -> None:
        later, self.later = self.later, []
        if not self.closed:
            data = b"".join(later)
            if self.observer is not None:
                self.observer.sent(len(data))
            self.transport.write(data)
        self.active_at = self.backend.tick
        self._after_reply()

    def check_timeouts(self, now: float) -> None:
        config = self.backend.config
        if self.partial_since is not None and config.request_timeout and \
                now - self.partial_since > config.request_timeout:
            self.backend.refusals(self.peer, "request still incomplete after %gs" % config.request_timeout)
            self.transport.abort()
        elif config.idle_timeout and not self.slots and not self.later and self.partial_since is None \
                and now - self.active_at > config.idle_timeout:
            log.debug("closing %s: idle for %gs", format_peer(self.peer), config.idle_timeout)
            self.transport.close()

    def _after_reply(self) -> None:
        if self.closed:
            return
        if self.backend.draining:
            self.close_if_idle()
        elif self.eof and not self.slots and not self.later:
            self.transport.close()

    def _refused(self, error: WireError, out: list) -> bool:
        """Log a refusal, tell the client where the wire allows; False when it must close."""
        self.backend.refusals(self.peer, error.reason)
        wire = self.reader.wire
        if error.reply_to is not None:
            codec = self.backend.codec_for(wire.protocol)
            self._emit(self.dispatcher.refuse_bytes(error, codec, wire.framed), out)
        return not error.fatal

    def close_if_idle(self) -> bool:
        """Close now if nothing is in flight or half-read (and, early in a drain, the client has
        sent something already); True if it closed."""
        if self.slots or self.later or self.reader.buffered:
            return False
        if self.reader.buf is None and not self.backend.fresh_grace_over:
            return False  # never sent a byte: its first request may be on the way
        self.transport.close()
        return True


async def _contained(coroutine):
    """Await a handler's coroutine; a SystemExit it raises is its caller's error, not the
    server's (asyncio would re-raise it out of the event loop)."""
    try:
        return await coroutine
    except SystemExit as e:
        raise RuntimeError("handler raised SystemExit(%s)" % (e.code,)) from e
