"""One call, from a decoded message header to its reply bytes: the request path both backends share.

    admit()  look the method up, decode the arguments, apply the server's per-call policy
    run_inline() / awaited() / finish()   call the handler (the backend chooses where it runs)
    reply    the encoded answer (None: nothing is sent back, as for oneway)
    outcome  "ok", "exception" (declared in the IDL) or "error" (a TApplicationException)

Every cross-cutting concern (refusals, limits, timeouts, observation) is written here once;
the backends only move bytes and decide whether a handler runs inline, as a task or in a
thread. A Call is used by one thread at a time.
"""
from __future__ import annotations

import logging
import time
import types

from thriftpy2.thrift import TApplicationException, TMessageType

from .overload import LOADSHEDDING, Overloaded
from .wire.errors import WireError

log = logging.getLogger("dracula.dispatch")

CALL, REPLY, EXCEPTION, ONEWAY = (TMessageType.CALL, TMessageType.REPLY,
                                  TMessageType.EXCEPTION, TMessageType.ONEWAY)
OK, DECLARED, ERROR = "ok", "exception", "error"
_CoroutineType = types.CoroutineType
_perf_counter = time.perf_counter


class Call:
    __slots__ = ("state", "msg", "codec", "framed", "peer", "method", "args", "reply", "outcome",
                 "started", "counted")

    def __init__(self, state, msg, codec, framed: bool, peer):
        self.state = state
        self.msg = msg
        self.codec = codec
        self.framed = framed
        self.peer = peer
        self.method = None
        self.reply = None
        self.started = 0.0
        self.counted = False  # in the process's in-flight count (--max-requests/--queue-timeout)

    # -- decode and policy -----------------------------------------------------------------
    def admit(self) -> bool:
        """True when the handler may run (`method` and `args` are set); False when the call
        was refused and is finished (`reply` holds the TApplicationException, if any)."""
        state = self.state
        if state.observer is not None:
            # A backend may have started the clock at the read that completed the request.
            self.started = self.started or _perf_counter()
            state.observer.call_started()
        elif state.overload is not None:
            self.started = self.started or _perf_counter()  # the queue timeout's clock
        msg = self.msg
        self.method = method = state.methods.get(msg.name)
        if method is None:
            return self.refuse(TApplicationException.UNKNOWN_METHOD,
                                "unknown method %s" % msg.name.decode("utf-8", "replace"))
        if msg.mtype != CALL and msg.mtype != ONEWAY:
            return self.refuse(TApplicationException.INVALID_MESSAGE_TYPE,
                                "message type %d is not a call" % msg.mtype)
        args = method.args_cls()
        if len(msg.body) > 1:  # a lone STOP byte leaves every argument unset: nothing to decode
            try:
                self.codec.decode(msg.body, args)
            except WireError as e:
                state.refusals(self.peer, e.reason)
                return self.refuse(TApplicationException.PROTOCOL_ERROR, e.reason)
            for name in method.required:
                if getattr(args, name) is None:
                    return self.refuse(TApplicationException.PROTOCOL_ERROR,
                                       "required argument %s of %s is missing" % (name, method.qualname))
        elif method.required:
            return self.refuse(TApplicationException.PROTOCOL_ERROR, "required argument %s of %s is missing"
                               % (method.required[0], method.qualname))
        self.args = method.get_args(args)
        if state.overload is not None:
            return self._enter(state.overload)
        return True

    def _enter(self, overload) -> bool:
        """Count the call in flight, or shed it (--max-requests)."""
        reason = overload.enter()
        if reason is not None:
            return self.refuse(LOADSHEDDING, Overloaded(reason).message)
        self.counted = True
        return True

    def shed_if_late(self) -> bool:
        """True when the call waited past --queue-timeout before its handler could start: it
        is then answered as overloaded (`reply`) instead of run."""
        overload = self.state.overload
        if not self.counted or not overload.queue_timeout:
            return False
        error = overload.waited_too_long(self.started)
        if error is None:
            return False
        self.finish(error=error)
        return True

    def refuse(self, app_type: int, message: str) -> bool:
        """Answer with a TApplicationException instead of running the handler (False)."""
        if self.msg.mtype != ONEWAY:
            self.reply = self._failure(app_type, message)
        self.outcome = ERROR
        self._observe()
        return False

    # -- calling the handler ---------------------------------------------------------------
    def run_inline(self):
        """Call a plain handler here and now; the reply is then in `reply`. Returns the
        coroutine instead when the handler turned out to be async (an `async def` behind a
        plain decorator): the backend awaits it with `awaited()`."""
        try:
            value = self.method.fn(*self.args)
        except (Exception, SystemExit) as e:
            self.finish(error=e)
            return None
        if value.__class__ is _CoroutineType:
            return value
        method = self.method
        if self.msg.mtype == CALL and not method.oneway:  # the common case, inlined
            result = method.result_cls()
            result.success = value
            try:
                self.reply = self.codec.encode(method.reply_name, REPLY, self.msg.seqid, result, self.framed)
                self.outcome = OK
            except Exception:
                self.reply = self._value_reply(value)  # logs it, answers INTERNAL_ERROR
            if self.started:
                self._observe()
            return None
        self.finish(value)
        return None

    async def awaited(self, coroutine=None):
        """Call a coroutine handler (or await the `coroutine` run_inline returned); its reply
        bytes (also left in `reply`)."""
        if self.counted and self.shed_if_late():  # the loop was too busy to start it in time
            if coroutine is not None:
                coroutine.close()
            return self.reply
        try:
            value = await (coroutine if coroutine is not None else self.method.fn(*self.args))
        except SystemExit as e:  # the handler's error, not the server's: asyncio would re-raise it
            return self.finish(error=RuntimeError("handler raised SystemExit(%s)" % (e.code,)))
        except Exception as e:
            return self.finish(error=e)
        return self.finish(value)

    def finish(self, value=None, error: BaseException | None = None):
        """Encode the handler's outcome; the reply bytes (None when none is expected)."""
        method = self.method
        if self.msg.mtype != CALL or method.oneway:
            if error is not None and not isinstance(error, TApplicationException):
                log.error("oneway %s raised", method.qualname, exc_info=error)
            self.outcome = OK if error is None else ERROR
            self.reply = None
        elif error is not None:
            self.reply = self._error_reply(error)
        else:
            self.reply = self._value_reply(value)
        self._observe()
        return self.reply

    def timed_out(self, seconds: float):
        """The reply for a handler still running after `seconds` (it is not interrupted)."""
        qualname = self.method.qualname
        log.error("%s did not finish within %gs; its caller gets an error", qualname, seconds)
        return self.finish(error=TApplicationException(
            TApplicationException.INTERNAL_ERROR, "%s did not finish within %gs" % (qualname, seconds)))

    # -- outcome -> bytes ------------------------------------------------------------------
    def _value_reply(self, value):
        method = self.method
        result = method.result_cls()
        result.success = value
        try:
            reply = self.codec.encode(method.reply_name, REPLY, self.msg.seqid, result, self.framed)
        except Exception as e:
            log.error("%s returned a value that does not fit its IDL type: %r (%s)",
                      method.qualname, value, e)
            return self._failure(TApplicationException.INTERNAL_ERROR,
                                 "%s returned a value of the wrong type" % method.qualname)
        self.outcome = OK
        return reply

    def _error_reply(self, exc: BaseException):
        method = self.method
        if isinstance(exc, TApplicationException):
            self.outcome = ERROR
            return self._encode_exception(exc)
        field = method.declared_field(exc)
        if field is None:
            log.error("%s raised an undeclared exception", method.qualname, exc_info=exc)
            return self._failure(TApplicationException.INTERNAL_ERROR, "%s: %s" % (type(exc).__name__, exc))
        result = method.result_cls()
        setattr(result, field, exc)
        try:
            reply = self.codec.encode(method.reply_name, REPLY, self.msg.seqid, result, self.framed)
        except Exception as e:
            log.error("%s raised %r, which does not fit its IDL type (%s)", method.qualname, exc, e)
            return self._failure(TApplicationException.INTERNAL_ERROR, "%s raised a %s that cannot be encoded"
                                 % (method.qualname, type(exc).__name__))
        self.outcome = DECLARED
        return reply

    def _failure(self, app_type: int, message: str):
        """A TApplicationException reply. Messages quote handler text: lone surrogates must not
        make the error unencodable."""
        self.outcome = ERROR
        message = str(message).encode("utf-8", "backslashreplace").decode("utf-8")
        return self._encode_exception(TApplicationException(app_type, message))

    def _encode_exception(self, exc: TApplicationException):
        # A multiplexed name is answered with its method part, as replies are.
        name = self.method.reply_name if self.method is not None else self.msg.name.rpartition(b":")[2]
        try:
            return self.codec.encode(name, EXCEPTION, self.msg.seqid, exc, self.framed)
        except Exception as e:  # a handler's own TApplicationException with a bad message
            log.error("cannot encode %r: %s", exc, e)
            return self.codec.encode(name, EXCEPTION, self.msg.seqid, TApplicationException(
                TApplicationException.INTERNAL_ERROR, "the error could not be encoded"), self.framed)

    def _observe(self) -> None:
        if not self.started:
            return  # observed once, even if a late outcome follows a timeout
        state = self.state
        if self.counted:
            self.counted = False
            state.overload.leave()
        if state.observer is not None:
            state.observer.call_finished(self, _perf_counter() - self.started)
        self.started = 0.0
