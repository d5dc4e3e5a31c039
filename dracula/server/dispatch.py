"""The service method table: built once per server, looked up per call (calls.py).

Every method name (and `Service:method` for multiplexed clients) maps to a Method holding its
args/result classes, the handler callable, how to call it (inline, awaited, in a thread) and
the exceptions its IDL declares.
"""
from __future__ import annotations

import inspect
import logging
import operator
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from dracula.typedefs import FieldSpec, Handler, StructSpec, ThriftService

log = logging.getLogger("dracula.dispatch")

SYNC, ASYNC, BLOCKING = "sync", "async", "blocking"

HandlerFunction = TypeVar("HandlerFunction", bound=Callable[..., Any])


def blocking(fn: HandlerFunction) -> HandlerFunction:
    """Mark a handler method as blocking: it runs in the server's thread pool, not on the loop."""
    fn.__dracula_blocking__ = True  # type: ignore[attr-defined]  # a marker on the function itself
    return fn


def _field_shape(cls: type) -> dict[int, FieldSpec]:
    return {fid: spec[:2] for fid, spec in getattr(cls, "thrift_spec", {}).items()}


class Method:
    __slots__ = ("service_name", "name", "reply_name", "args_cls", "result_cls", "fn", "kind", "route",
                 "oneway", "get_args", "required", "exceptions", "_shapes")
    get_args: Callable[[Any], tuple[Any, ...]]  # the arguments struct -> the handler's positional arguments
    required: tuple[str, ...]  # the arguments declared `required`
    exceptions: tuple[tuple[str, type[BaseException]], ...]  # (result field, class) per declared exception

    def __init__(self, service_name: str, service: ThriftService, name: str, fn: Callable[..., Any]) -> None:
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
        # Where a backend runs it: as `kind` says, unless async middleware sends every call
        # down the coroutine path (ServerState sets that once).
        self.route = self.kind
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
        self._shapes: dict[type, dict[int, FieldSpec]] = {}

    @property
    def qualname(self) -> str:
        return "%s.%s" % (self.service_name, self.name)

    def declared_field(self, exc: BaseException) -> str | None:
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
    def __init__(self, services: Iterable[tuple[str, ThriftService, Handler]]) -> None:
        """`services`: (name, thriftpy2 service class, handler) triples; the first one also
        answers plain method names, every one answers `name:method`."""
        by_name: dict[str, Method] = {}
        self.services: list[str] = []
        for index, (service_name, service, handler) in enumerate(services):
            self.services.append(service_name)
            for name in service.thrift_services:
                fn = getattr(handler, name, None)
                if fn is None:
                    log.warning("%s does not implement %s.%s; calls to it get UNKNOWN_METHOD",
                                type(handler).__name__, service_name, name)
                    continue
                method = Method(service_name, service, name, fn)
                by_name["%s:%s" % (service_name, name)] = method
                if index == 0:
                    by_name[name] = method
        self.methods = {key.encode(): method for key, method in by_name.items()}
        # What the scanners follow the IDL by (spec_guard.py).
        self.arg_specs: dict[bytes, StructSpec] = {
            key: method.args_cls.thrift_spec for key, method in self.methods.items()}
