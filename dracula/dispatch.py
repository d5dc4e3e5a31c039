"""The service method table, handler calling conventions, and outcome → reply mapping.

Built once per server: every method name (and `Service:method` for multiplexed clients) maps to
a Method holding its args/result classes, the handler callable and how to call it. Per request
the backends only look up, call the way Method.kind says, and turn the outcome into reply
bytes here, so both backends answer identically.
"""
from __future__ import annotations

import inspect
import logging
import operator
import types

from thriftpy2.thrift import TApplicationException, TMessageType


log = logging.getLogger("dracula.dispatch")

SYNC, ASYNC, BLOCKING = "sync", "async", "blocking"
_CoroutineType = types.CoroutineType
CALL, REPLY, EXCEPTION, ONEWAY = (TMessageType.CALL, TMessageType.REPLY,
                                  TMessageType.EXCEPTION, TMessageType.ONEWAY)


def blocking(fn):
    """Mark a handler method as blocking: it runs in the server's thread pool, not on the loop."""
    fn.__dracula_blocking__ = True
    return fn


class NeedsAwait(Exception):
    """call_sync found a coroutine where it expected a value; the backend must await it."""

    def __init__(self, coroutine):
        super().__init__("handler returned a coroutine")
        self.coroutine = coroutine


class CallError(Exception):
    """A request that gets a TApplicationException instead of reaching its handler."""

    def __init__(self, app_type: int, message: str):
        super().__init__(message)
        self.app_type = app_type


def _field_shape(cls) -> dict:
    return {fid: spec[:2] for fid, spec in getattr(cls, "thrift_spec", {}).items()}


class _Header:
    __slots__ = ("name", "mtype", "seqid", "started", "peer", "label")

    def __init__(self, name: bytes, mtype: int, seqid: int):
        self.name = name
        self.mtype = mtype
        self.seqid = seqid


class Method:
    __slots__ = ("service_name", "name", "reply_name", "args_cls", "result_cls", "fn", "kind",
                 "oneway", "get_args", "required", "exceptions", "_shapes")

    def __init__(self, service_name: str, service, name: str, fn):
        self.service_name = service_name
        self.name = name
        self.reply_name = name.encode()
        self.args_cls = getattr(service, name + "_args")
        self.result_cls = getattr(service, name + "_result")
        self.fn = fn
        if inspect.iscoroutinefunction(inspect.unwrap(fn)):
            self.kind = ASYNC
        elif getattr(fn, "__dracula_blocking__", False):
            self.kind = BLOCKING
        else:
            self.kind = SYNC
        self.oneway = bool(getattr(self.result_cls, "oneway", False))
        specs = list(self.args_cls.thrift_spec.values())
        names = [spec[1] for spec in specs]  # IDL order: handlers take positional arguments
        if not names:
            self.get_args = lambda args: ()
        elif len(names) == 1:
            only = operator.attrgetter(names[0])
            self.get_args = lambda args: (only(args),)
        else:
            self.get_args = operator.attrgetter(*names)
        self.required = tuple(spec[1] for spec in specs if spec[-1] is True)
        self.exceptions = tuple((spec[1], spec[2]) for fid, spec in sorted(self.result_cls.thrift_spec.items())
                                if spec[1] != "success")
        self._shapes = {}

    @property
    def qualname(self) -> str:
        return "%s.%s" % (self.service_name, self.name)

    def declared_field(self, exc: BaseException):
        """The result field a raised exception belongs in, or None if it is undeclared.

        A handler that loaded the IDL itself raises its own copy of the exception class; it is
        recognised by name and field layout, whatever module name either side chose."""
        for field, cls in self.exceptions:
            if isinstance(exc, cls):
                return field
        kind = type(exc)
        for field, cls in self.exceptions:
            if kind.__name__ == cls.__name__ and hasattr(kind, "thrift_spec"):
                shape = self._shapes.get(cls)
                if shape is None:
                    shape = self._shapes[cls] = _field_shape(cls)
                if _field_shape(kind) == shape:
                    return field
        return None


class Dispatcher:
    def __init__(self, services):
        """`services`: (name, thriftpy2 service class, handler) triples; the first one also
        answers plain method names, every one answers `name:method`."""
        self.methods = {}
        self.services = []
        for index, (service_name, service, handler) in enumerate(services):
            self.services.append(service_name)
            for name in service.thrift_services:
                fn = getattr(handler, name, None)
                if fn is None:
                    log.warning("%s does not implement %s.%s; calls to it get UNKNOWN_METHOD",
                                type(handler).__name__, service_name, name)
                    continue
                method = Method(service_name, service, name, fn)
                self.methods["%s:%s" % (service_name, name)] = method
                if index == 0:
                    self.methods[name] = method
        self.methods = {key.encode(): method for key, method in self.methods.items()}
        # What the scanners follow the IDL by (spec_guard.py).
        self.arg_specs = {key: method.args_cls.thrift_spec for key, method in self.methods.items()}

    observer = None  # a CallObserver in ObservedDispatcher (observe.py)

    def prepare(self, msg, codec, peer=None):
        """The Method a message calls and the handler's positional arguments.

        Raises CallError for an unknown method or message type, WireError (from the codec) for
        arguments that do not decode."""
        method = self.methods.get(msg.name)
        if method is None:
            raise CallError(TApplicationException.UNKNOWN_METHOD,
                            "unknown method %s" % msg.name.decode("utf-8", "replace"))
        if msg.mtype != CALL and msg.mtype != ONEWAY:
            raise CallError(TApplicationException.INVALID_MESSAGE_TYPE,
                            "message type %d is not a call" % msg.mtype)
        args = method.args_cls()
        if len(msg.body) > 1:  # a lone STOP byte leaves every argument unset: nothing to decode
            codec.decode(msg.body, args)
        for name in method.required:
            if getattr(args, name) is None:
                raise CallError(TApplicationException.PROTOCOL_ERROR,
                                "required argument %s of %s is missing" % (name, method.qualname))
        return method, method.get_args(args)

    def refuse(self, msg, exc, codec, framed):
        """Reply bytes for a request prepare() refused (CallError or a bad arguments struct)."""
        app_type = getattr(exc, "app_type", TApplicationException.PROTOCOL_ERROR)
        if msg.mtype == ONEWAY:
            return None
        return self.reply_failure(msg, app_type, str(exc), codec, framed)

    def refuse_bytes(self, error, codec, framed):
        """Reply bytes for a WireError whose message header was read, else None: the client
        hears why before the connection closes (or, framed, before its next frame)."""
        if error.reply_to is None:
            return None
        name, mtype, seqid, _ = error.reply_to
        return self.refuse(_Header(name, mtype, seqid), error, codec, framed)

    def call_sync(self, method, args, msg, codec, framed):
        """Call a plain handler method here and now; its reply bytes, or None for oneway.

        Raises NeedsAwait when the handler turned out to return a coroutine (an `async def`
        behind a plain decorator): the method is switched to the coroutine path for good and
        the backend awaits this call."""
        try:
            value = method.fn(*args)
        except (Exception, SystemExit) as e:
            return self.outcome(method, msg, codec, framed, error=e)
        if value.__class__ is _CoroutineType:
            method.kind = ASYNC
            raise NeedsAwait(value)
        if msg.mtype != CALL or method.oneway:
            return None
        result = method.result_cls()
        result.success = value
        try:
            return codec.encode(method.reply_name, REPLY, msg.seqid, result, framed)
        except Exception:
            return self.reply_value(method, msg, value, codec, framed)  # logs, answers the error

    def outcome(self, method, msg, codec, framed, value=None, error=None):
        """Reply bytes for a finished call (None when the caller expects no reply)."""
        if msg.mtype != CALL or method.oneway:
            if error is not None and not isinstance(error, TApplicationException):
                log.error("oneway %s raised", method.qualname, exc_info=error)
            return None
        if error is not None:
            return self.reply_error(method, msg, error, codec, framed)
        return self.reply_value(method, msg, value, codec, framed)

    async def await_outcome(self, method, msg, codec, framed, awaitable):
        """Await a coroutine handler's call; its reply bytes (for the thread backend's loop)."""
        try:
            value = await awaitable
        except (Exception, SystemExit) as e:
            return self.outcome(method, msg, codec, framed, error=e)
        return self.outcome(method, msg, codec, framed, value)

    def reply_value(self, method, msg, value, codec, framed):
        """Reply bytes for a handler's return value."""
        result = method.result_cls()
        result.success = value
        try:
            return codec.encode(method.reply_name, REPLY, msg.seqid, result, framed)
        except Exception as e:
            log.error("%s returned a value that does not fit its IDL type: %r (%s)",
                      method.qualname, value, e)
            return self.reply_failure(msg, TApplicationException.INTERNAL_ERROR,
                                      "%s returned a value of the wrong type" % method.qualname,
                                      codec, framed, method.reply_name)

    def reply_error(self, method, msg, exc, codec, framed):
        """Reply bytes for an exception the handler raised."""
        if isinstance(exc, TApplicationException):
            return self._encode_exception(msg, exc, codec, framed, method.reply_name)
        field = method.declared_field(exc)
        if field is not None:
            result = method.result_cls()
            setattr(result, field, exc)
            try:
                return codec.encode(method.reply_name, REPLY, msg.seqid, result, framed)
            except Exception as e:
                log.error("%s raised %r, which does not fit its IDL type (%s)", method.qualname, exc, e)
                return self.reply_failure(msg, TApplicationException.INTERNAL_ERROR,
                                          "%s raised a %s that cannot be encoded"
                                          % (method.qualname, type(exc).__name__),
                                          codec, framed, method.reply_name)
        log.error("%s raised an undeclared exception", method.qualname, exc_info=exc)
        return self.reply_failure(msg, TApplicationException.INTERNAL_ERROR,
                                  "%s: %s" % (type(exc).__name__, exc), codec, framed,
                                  method.reply_name)

    def reply_failure(self, msg, app_type, message, codec, framed, name=None):
        """Reply bytes carrying a TApplicationException of `app_type`. A multiplexed name is
        answered with its method part, as replies are."""
        # Messages quote handler text: lone surrogates must not make the error unencodable.
        message = str(message).encode("utf-8", "backslashreplace").decode("utf-8")
        return self._encode_exception(msg, TApplicationException(app_type, message), codec,
                                      framed, name or msg.name.rpartition(b":")[2])

    def _encode_exception(self, msg, exc, codec, framed, name):
        try:
            return codec.encode(name, EXCEPTION, msg.seqid, exc, framed)
        except Exception as e:  # a handler's own TApplicationException with a bad message
            log.error("cannot encode %r: %s", exc, e)
            return self.reply_failure(msg, TApplicationException.INTERNAL_ERROR,
                                      "the error could not be encoded", codec, framed, name)


