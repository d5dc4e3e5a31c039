"""One call, from a decoded message header to its reply bytes: the request path both backends share.

    admit()  look the method up, decode the arguments, apply the server's per-call policy: the
             Method to run (None: refused, and finished)
    run_inline() / awaited() / finish()   call the handler (the backend chooses where it runs)
    reply    the encoded answer (None: nothing is sent back, as for oneway)
    outcome  "ok", "exception" (declared in the IDL) or "error" (a TApplicationException)

Every cross-cutting concern (refusals, limits, timeouts, observation) is written here once;
the backends only move bytes and decide whether a handler runs inline, as a task or in a
thread. A Call is used by one thread at a time.
"""

from __future__ import annotations

import asyncio
import logging
import time
import types
from collections.abc import Awaitable, Coroutine
from typing import TYPE_CHECKING, Any

from thriftpy2.thrift import TApplicationException, TMessageType

from dracula.ops.overload import overloaded_message, pool_job
from dracula.server.context import CallContext, current as _current
from dracula.server.dispatch import ASYNC, BLOCKING
from dracula.wire.errors import AppError, WireError, app_error_name
from dracula.wire.reader import Message
from dracula.wire.theader import encode_frame
from dracula.wire.theader_frame import DRAIN_HEADER

if TYPE_CHECKING:
    from dracula.ops.overload import Overload
    from dracula.server.dispatch import Method
    from dracula.server.state import ServerState
    from dracula.server.thread_pool import HandlerPool
    from dracula.typedefs import Peer, PeerCert
    from dracula.wire.codec import Codec
    from dracula.wire.detect import Wire
    from dracula.wire.theader_frame import HeaderFrame

log = logging.getLogger("dracula.dispatch")

CALL, REPLY, EXCEPTION, ONEWAY = (TMessageType.CALL, TMessageType.REPLY, TMessageType.EXCEPTION, TMessageType.ONEWAY)
OK, DECLARED, ERROR = "ok", "exception", "error"
_CoroutineType = types.CoroutineType
_perf_counter = time.perf_counter
_monotonic = time.monotonic


def refuse_wire(state: ServerState[Any], error: WireError, wire: Wire | None, peer: Peer) -> bytes | None:
    """Log bytes the wire layer refused, saying what follows; the reply that tells the client
    why, where the message header was read (None otherwise, or for oneway): a Call refused
    before it was admitted encodes it, as every other refusal is."""
    reply = None
    if error.reply_to is not None:
        name, mtype, seqid, _ = error.reply_to
        assert wire is not None  # a message header was read: the wire was detected
        call = Call(
            state,
            Message(name, mtype, seqid, b"", error.theader),
            state.codec_for(wire.protocol),
            wire.frames_replies,
            peer,
            None,
        )  # never admitted: no hook runs after it
        call.refuse(error.app_type, error.reason)
        reply = call.reply
    answered = "answered %s" % app_error_name(error.app_type) if reply is not None else None
    closing = "closing the connection" if error.fatal else None
    state.refusals(peer, "%s (%s)" % (error.reason, ", ".join(filter(None, (answered, closing)))))
    return reply


def promoted(
    state: ServerState[Any],
    msg: Message,
    codec: Codec,
    framed: bool,
    peer: Peer,
    loop: asyncio.AbstractEventLoop | None,
    peer_cert: PeerCert | None,
    method: Method,
    args: tuple[Any, ...],
    deadline: float | None,
    context: CallContext | None,
) -> Call:
    """The Call that admit() would have left for `msg`, for the compiled fast path (_cfast.pyx)
    to hand a call it cannot finish itself (a handler that raised, returned a coroutine, ...):
    from here the general path's code answers it."""
    call = Call(state, msg, codec, framed, peer, loop, peer_cert)
    call.method = method
    call.args = args
    call.deadline = deadline
    call._context = context
    return call


class Call:
    __slots__ = (
        "state",
        "msg",
        "codec",
        "framed",
        "peer",
        "peer_cert",
        "loop",
        "method",
        "args",
        "reply",
        "outcome",
        "started",
        "deadline",
        "_context",
        "counted",
    )
    method: Method | None  # set by admit(); None for an unknown method. Past admit() it is set.
    reply: bytes | None
    _context: CallContext | None
    args: tuple[Any, ...]  # the handler's positional arguments, set by admit()
    deadline: float | None  # time.monotonic() from THeader's client_timeout, set by admit()
    outcome: str  # OK, DECLARED or ERROR, once finished
    started: float  # perf_counter() when observed (0.0: not timed, or observed already)
    counted: Overload | None  # what counts it in flight (--max-requests/--queue-timeout), until observed

    def __init__(
        self,
        state: ServerState[Any],
        msg: Message,
        codec: Codec,
        framed: bool,
        peer: Peer,
        loop: asyncio.AbstractEventLoop | None,
        peer_cert: PeerCert | None = None,
    ) -> None:
        self.state = state
        self.msg = msg
        self.codec = codec
        self.framed = framed
        self.peer = peer
        self.peer_cert = peer_cert  # the connection's TLS client certificate, for the context
        self.loop = loop  # the backend's: where an async `after` hook runs when it ends off any loop
        self.method = None
        self.reply = None
        self.started = 0.0
        self._context = None
        self.counted = None

    # -- decode and policy -----------------------------------------------------------------
    def admit(self, arrived: float = 0.0) -> Method | None:
        """The method to call when the handler may run (`method` and `args` are set); None
        when the call was refused and is finished (`reply` holds the TApplicationException,
        if any). `arrived`: perf_counter() at the read that completed the request, where the
        backend took it (with shedding on: the queue timeout's clock starts there)."""
        state = self.state
        if state.observed:
            self.started = arrived or _perf_counter()
        msg = self.msg
        self.method = method = state.methods.get(msg.name)
        if method is None:
            return self._refused(AppError.UNKNOWN_METHOD, "unknown method %s" % msg.name.decode("utf-8", "replace"))
        if msg.mtype != CALL and msg.mtype != ONEWAY:
            return self._refused(AppError.INVALID_MESSAGE_TYPE, "message type %d is not a call" % msg.mtype)
        args = method.args_cls()
        if len(msg.body) > 1:  # a lone STOP byte leaves every argument unset: nothing to decode
            try:
                self.codec.decode(msg.body, args)
            except WireError as e:
                return self._refused(AppError.PROTOCOL_ERROR, e.reason)
            for name in method.required:
                if getattr(args, name) is None:
                    return self._refused(
                        AppError.PROTOCOL_ERROR, "required argument %s of %s is missing" % (name, method.qualname)
                    )
        elif method.required:
            return self._refused(
                AppError.PROTOCOL_ERROR, "required argument %s of %s is missing" % (method.required[0], method.qualname)
            )
        self.args = method.get_args(args)
        meta = msg.meta  # a THeader client_timeout (or HTTP's) counts from the call's arrival
        self.deadline = None if meta is None or meta.timeout is None else _monotonic() + meta.timeout
        if state.overload is not None or state.middleware is not None:
            if method.internal:  # a health check (health.py): not counted, logged or shed
                self.started = 0.0
                return method
            if state.overload is not None and not self._enter(state.overload):
                return None
            if state.middleware is not None and not state.middleware.before(self):
                return None
        return method

    def _enter(self, overload: Overload) -> bool:
        """Count the call in flight, or shed it (--max-requests)."""
        reason = overload.enter()
        if reason is not None:
            return self.refuse(AppError.LOADSHEDDING, overloaded_message(reason))
        self.counted = overload
        return True

    def shed_if_late(self) -> bool:
        """True when the call waited past --queue-timeout before its handler could start: it
        is then answered as overloaded (`reply`) instead of run."""
        overload = self.counted
        if overload is None or not overload.queue_timeout:
            return False
        error = overload.waited_too_long(self.started)
        if error is None:
            return False
        self.finish(error=error)
        return True

    @property
    def qualname(self) -> str:
        """Service.method, or (refused before its method was known) the name the client sent."""
        method = self.method
        return method.qualname if method is not None else self.msg.name.decode("utf-8", "replace")

    @property
    def context(self) -> CallContext:
        """What `dracula.current_call()` returns (made on first use)."""
        if self._context is None:
            method, msg = self.method, self.msg
            headers = msg.meta.headers if msg.meta is not None else {}
            if method is None:  # refused before its method was known
                service, name = None, msg.name.decode("utf-8", "replace")
            else:
                service, name = method.service_name, method.name
            self._context = CallContext(
                service, name, self.peer, headers, getattr(self, "deadline", None), self.peer_cert
            )
        return self._context

    def say_drain(self) -> None:
        """The reply (THeader) tells the client that this connection is going (`:drain`)."""
        self.context.response_headers[DRAIN_HEADER] = "true"

    def time_limit(self, handler_timeout: float) -> float:
        """Seconds a call off the loop may run before its caller gets an error: the handler
        timeout or what is left until the client's deadline, whichever comes first (0: none)."""
        if self.deadline is None:
            return handler_timeout
        left = max(0.001, self.deadline - _monotonic())
        return min(left, handler_timeout) if handler_timeout else left

    def _expired(self) -> TApplicationException | None:
        """A TIMEOUT error when the client's deadline passed before the handler started."""
        if self.deadline is not None and _monotonic() >= self.deadline:
            assert self.method is not None  # only admitted calls expire
            return TApplicationException(
                AppError.TIMEOUT, "%s: the client's deadline passed before the call started" % self.method.qualname
            )
        return None

    def _refused(self, app_type: int, message: str) -> Method | None:
        """Refuse a call the client sent, with its one refusal line saying what followed; what
        admit() returns for it (None)."""
        self.refuse(app_type, message)
        what = "answered %s" % app_error_name(app_type) if self.reply is not None else "oneway: not answered"
        self.state.refusals(self.peer, "%s (%s)" % (message, what))
        return None

    def refuse(self, app_type: int, message: str) -> bool:
        """Answer with a TApplicationException instead of running the handler (False)."""
        if self.msg.mtype != ONEWAY:
            reply = self._failure(app_type, message)
            header = self.msg.header
            self.reply = reply if header is None else self._in_header_frame(reply, header)
        self.outcome = ERROR
        self._observe()
        return False

    # -- calling the handler ---------------------------------------------------------------
    def run_inline(self) -> Coroutine[Any, Any, Any] | None:
        """Call a plain handler here and now; the reply is then in `reply`. Returns the
        coroutine instead when the handler turned out to be async (an `async def` behind a
        plain decorator): the backend awaits it with `awaited()`."""
        method = self.method
        assert method is not None  # admitted
        token = _current.set(self)
        try:
            placement = method.placement
            if placement is None:
                value = method.fn(*self.args)
            elif method.skip:  # cheap so far: only one call in placement.SAMPLE is timed
                method.skip -= 1
                value = method.fn(*self.args)
            else:
                value = placement.timed(method, self.args)
        except (Exception, SystemExit) as e:
            self.finish(error=e)
            return None
        finally:
            _current.reset(token)
        if value.__class__ is _CoroutineType:
            return value
        if self.msg.mtype == CALL and not method.oneway:  # the common case, without finish()
            reply = self._value_reply(value)
            header = self.msg.header
            if header is None:
                self.reply = reply
            elif self._context is None:  # no response headers: a frame that cannot be too large
                self.reply = encode_frame(reply, header)
            else:
                self.reply = self._in_header_frame(reply, header)
            if self.started:
                self._observe()
            return None
        self.finish(value)
        return None

    async def awaited(
        self, coroutine: Coroutine[Any, Any, Any] | None = None, pool: HandlerPool | None = None
    ) -> bytes | None:
        """Call a coroutine handler (or await the `coroutine` run_inline returned); its reply
        bytes (also left in `reply`). `pool`: the backend's, for a @blocking handler sent down
        this path by async middleware (None: the loop's default executor)."""
        _current.set(self)  # the task runs in its own copy of the context
        expired = self._expired()
        if expired is not None:
            if coroutine is not None:
                coroutine.close()
            return self.finish(error=expired)
        if self.counted is not None and self.shed_if_late():  # the loop was too busy to start it in time
            if coroutine is not None:
                coroutine.close()
            return self.reply
        middleware = self.state.middleware
        if middleware is not None and middleware.is_async and not await middleware.before_async(self):
            return self.reply
        try:
            value = None
            awaitable: Awaitable[Any] | None = coroutine
            if awaitable is None:
                awaitable, value = self._start(pool)  # a coroutine, or the pool's future
            if awaitable is not None:
                method = self.method
                assert method is not None  # admitted
                if method.placement is not None and awaitable.__class__ is _CoroutineType:  # not a pool's future
                    awaitable = method.placement.stepped(method, awaitable)
                value = await awaitable
        except SystemExit as e:  # the handler's error, not the server's: asyncio would re-raise it
            return self.finish(error=RuntimeError("handler raised SystemExit(%s)" % (e.code,)))
        except Exception as e:
            return self.finish(error=e)
        return self.finish(value)

    def _start(self, pool: HandlerPool | None) -> tuple[Awaitable[Any] | None, Any]:
        """(what to await, None) or (None, the value): async middleware sends every call down
        the coroutine path, so a plain handler may run here and a @blocking one in the pool."""
        method = self.method
        assert method is not None  # admitted
        if method.kind is BLOCKING:
            job = pool_job(self, self.state.overload)  # raises Overloaded past the queue timeout
            return asyncio.get_running_loop().run_in_executor(pool, job), None
        placement = None if method.kind is ASYNC else method.placement
        value = method.fn(*self.args) if placement is None else placement.timed(method, self.args)
        if method.kind is ASYNC or value.__class__ is _CoroutineType:
            return value, None
        return None, value

    def run_blocking(self) -> Any:
        """A @blocking handler's body, in a pool thread: its value (encoded on the caller's
        thread by finish())."""
        expired = self._expired()
        if expired is not None:
            raise expired
        assert self.method is not None  # admitted
        token = _current.set(self)
        try:
            return self.method.fn(*self.args)
        finally:
            _current.reset(token)

    def finish(self, value: Any = None, error: BaseException | None = None) -> bytes | None:
        """Encode the handler's outcome; the reply bytes (None when none is expected)."""
        method = self.method
        assert method is not None  # admitted
        if self.msg.mtype != CALL or method.oneway:
            if error is not None and not isinstance(error, TApplicationException):
                log.error("oneway %s raised", method.qualname, exc_info=error)
            self.outcome = OK if error is None else ERROR
            self.reply = None
        elif error is not None:
            self.reply = self._error_reply(error)
        else:
            self.reply = self._value_reply(value)
        header = self.msg.header
        if header is not None and self.reply is not None:
            self.reply = self._in_header_frame(self.reply, header)
        self._observe()
        return self.reply

    def timed_out(self, seconds: float) -> bytes | None:
        """The reply for a handler still running (or still queued) after `seconds`; it is not
        interrupted. TIMEOUT when the client's deadline set the limit, as fbthrift answers."""
        assert self.method is not None  # admitted
        qualname = self.method.qualname
        handler_timeout = self.state.config.handler_timeout
        if self.deadline is not None and (not handler_timeout or seconds < handler_timeout):
            log.warning("%s passed its client's deadline (%gs); its caller gets TIMEOUT", qualname, seconds)
            return self.finish(
                error=TApplicationException(
                    AppError.TIMEOUT, "%s: the client's deadline passed after %gs" % (qualname, seconds)
                )
            )
        log.error("%s did not finish within %gs; its caller gets an error", qualname, seconds)
        return self.finish(
            error=TApplicationException(AppError.INTERNAL_ERROR, "%s did not finish within %gs" % (qualname, seconds))
        )

    # -- outcome -> bytes ------------------------------------------------------------------
    def _value_reply(self, value: Any) -> bytes:
        method = self.method
        assert method is not None  # admitted
        result = method.result_cls()
        result.success = value
        try:
            reply = self.codec.encode(method.reply_name, REPLY, self.msg.seqid, result, self.framed)
        except Exception as e:
            return self.value_failed(value, e)
        self.outcome = OK
        return reply

    def value_failed(self, value: Any, error: Exception) -> bytes:
        """The reply for a handler's value that its IDL type cannot encode (`error`: why)."""
        method = self.method
        assert method is not None  # admitted
        log.error("%s returned a value that does not fit its IDL type: %r (%s)", method.qualname, value, error)
        return self._failure(AppError.INTERNAL_ERROR, "%s returned a value of the wrong type" % method.qualname)

    def _error_reply(self, exc: BaseException) -> bytes:
        method = self.method
        assert method is not None  # admitted
        if isinstance(exc, TApplicationException):
            self.outcome = ERROR
            return self._encode_exception(exc)
        field = method.declared_field(exc)
        if field is None:
            log.error("%s raised an undeclared exception", method.qualname, exc_info=exc)
            return self._failure(AppError.INTERNAL_ERROR, "%s: %s" % (type(exc).__name__, exc))
        result = method.result_cls()
        setattr(result, field, exc)
        try:
            reply = self.codec.encode(method.reply_name, REPLY, self.msg.seqid, result, self.framed)
        except Exception as e:
            log.error("%s raised %r, which does not fit its IDL type (%s)", method.qualname, exc, e)
            return self._failure(
                AppError.INTERNAL_ERROR, "%s raised a %s that cannot be encoded" % (method.qualname, type(exc).__name__)
            )
        self.outcome = DECLARED
        return reply

    def _failure(self, app_type: int, message: str) -> bytes:
        """A TApplicationException reply. Messages quote handler text: lone surrogates must not
        make the error unencodable."""
        self.outcome = ERROR
        message = str(message).encode("utf-8", "backslashreplace").decode("utf-8")
        return self._encode_exception(TApplicationException(app_type, message))

    def _encode_exception(self, exc: TApplicationException) -> bytes:
        # A multiplexed name is answered with its method part, as replies are.
        name = self.method.reply_name if self.method is not None else self.msg.name.rpartition(b":")[2]
        try:
            return self.codec.encode(name, EXCEPTION, self.msg.seqid, exc, self.framed)
        except Exception as e:  # a handler's own TApplicationException with a bad message
            log.error("cannot encode %r: %s", exc, e)
            return self.codec.encode(
                name,
                EXCEPTION,
                self.msg.seqid,
                TApplicationException(AppError.INTERNAL_ERROR, "the error could not be encoded"),
                self.framed,
            )

    def _in_header_frame(self, reply: bytes, header: HeaderFrame) -> bytes:
        """A THeader request's reply goes back in a THeader frame (the request's `header`),
        with the handler's headers."""
        headers = self._context.response_headers if self._context is not None else None
        try:
            return encode_frame(reply, header, headers)
        except ValueError as e:  # response headers too large for a THeader header
            log.error("%s: %s", self.method.qualname if self.method else "reply", e)
            return encode_frame(self._failure(AppError.INTERNAL_ERROR, str(e)), header)

    def _observe(self) -> None:
        if self.started:
            seconds = _perf_counter() - self.started
            self.started = 0.0  # observed once, even if a late outcome follows a timeout
            state = self.state
            overload = self.counted
            if overload is not None:
                self.counted = None
                overload.leave()
            if state.middleware is not None:
                state.middleware.finished(self, seconds, self.loop)
