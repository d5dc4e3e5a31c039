"""The service method table: built once per server, looked up per call (calls.py).

Every method name (and `Service:method` for multiplexed clients) maps to a Method holding its
args/result classes, the handler callable, how to call it (inline, awaited, in a thread) and
the exceptions its IDL declares.
"""

from __future__ import annotations

import enum
import inspect
import logging
import operator
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from dracula.config import ConfigError
from dracula.typedefs import FieldSpec, Handler, StructSpec, ThriftService

if TYPE_CHECKING:
    from dracula.server.placement import Placement

log = logging.getLogger("dracula.dispatch")


class CallKind(enum.Enum):
    """How a handler method is called."""

    SYNC = "sync"  # a plain method: on the reactor while cheap (placement.py), else in a thread
    ASYNC = "async"  # a coroutine function: awaited on the loop
    BLOCKING = "blocking"  # in the thread pool: @dracula.blocking, --blocking-methods, or learned


SYNC, ASYNC, BLOCKING = CallKind.SYNC, CallKind.ASYNC, CallKind.BLOCKING

HandlerFunction = TypeVar("HandlerFunction", bound=Callable[..., Any])


def blocking(fn: HandlerFunction) -> HandlerFunction:
    """Mark a handler method as blocking: it runs in the server's thread pool, not on the loop."""
    fn.__dracula_blocking__ = True  # type: ignore[attr-defined]  # a marker on the function itself
    return fn


def inline(fn: HandlerFunction) -> HandlerFunction:
    """Mark a plain handler method as cheap: it always runs on the reactor and is never moved
    to the thread pool, however long its calls take (the server does not time it)."""
    fn.__dracula_inline__ = True  # type: ignore[attr-defined]  # a marker on the function itself
    return fn


def _field_shape(cls: type) -> dict[int, FieldSpec]:
    return {fid: spec[:2] for fid, spec in getattr(cls, "thrift_spec", {}).items()}


class Method:
    __slots__ = (
        "service_name",
        "name",
        "reply_name",
        "args_cls",
        "result_cls",
        "fn",
        "kind",
        "route",
        "oneway",
        "get_args",
        "required",
        "exceptions",
        "_shapes",
        "placement",
        "strikes",
        "calm",
        "skip",
        "internal",
    )
    get_args: Callable[[Any], tuple[Any, ...]]  # the arguments struct -> the handler's positional arguments
    required: tuple[str, ...]  # the arguments declared `required`
    exceptions: tuple[tuple[str, type[BaseException]], ...]  # (result field, class) per declared exception

    def __init__(
        self,
        service_name: str,
        service: ThriftService,
        name: str,
        fn: Callable[..., Any],
        kind: CallKind | None = None,
        placement: Placement | None = None,
        all_async: bool = False,
    ) -> None:
        """`kind`: how to call it, when not what the handler says (--blocking-methods /
        --inline-methods). `placement`: times plain calls on the reactor and moves the ones that
        block (None: never timed). `all_async`: async middleware sends every call down the
        coroutine path."""
        self.service_name = service_name
        self.name = name
        self.reply_name = name.encode()
        self.args_cls = getattr(service, name + "_args")
        self.result_cls = getattr(service, name + "_result")
        self.fn = fn
        explicit = kind is not None or getattr(fn, "__dracula_inline__", False)
        if inspect.iscoroutinefunction(inspect.unwrap(fn)):
            kind = ASYNC
        elif kind is None:
            kind = BLOCKING if getattr(fn, "__dracula_blocking__", False) else SYNC
        self.kind = kind
        # Where a backend runs it now: a plain method that blocks moves to BLOCKING (placement.py).
        self.route = ASYNC if all_async else kind
        # Plain methods without an explicit choice are learned; coroutines are watched.
        self.placement = placement if placement is not None and (kind is ASYNC or not explicit) else None
        self.strikes = 0  # inline calls that held the reactor past the budget
        self.calm = 0  # timed calls within the budget since the last strike
        self.skip = 0  # calls to run untimed before the next timed one
        self.internal = False  # the server's own (health.py): no middleware, never shed
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
        self.exceptions = tuple(
            (spec[1], spec[2]) for fid, spec in sorted(self.result_cls.thrift_spec.items()) if spec[1] != "success"
        )
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
    def __init__(
        self,
        services: Iterable[tuple[str, ThriftService, Handler]],
        placement: Placement | None = None,
        all_async: bool = False,
        blocking_methods: Collection[str] = (),
        inline_methods: Collection[str] = (),
    ) -> None:
        """`services`: (name, thriftpy2 service class, handler) triples; the first one also
        answers plain method names, every one answers `name:method`. `blocking_methods` and
        `inline_methods`: names (`method` or `Service.method`) that always run in the thread
        pool, or always on the reactor, whatever the handler says."""
        by_name: dict[str, Method] = {}
        chosen = {**dict.fromkeys(inline_methods, SYNC), **dict.fromkeys(blocking_methods, BLOCKING)}
        unused = set(chosen)
        self.services: list[str] = []
        for index, (service_name, service, handler) in enumerate(services):
            self.services.append(service_name)
            for name in service.thrift_services:
                fn = getattr(handler, name, None)
                if fn is None:
                    log.warning(
                        "%s does not implement %s.%s; calls to it get UNKNOWN_METHOD",
                        type(handler).__name__,
                        service_name,
                        name,
                    )
                    continue
                qualname = "%s.%s" % (service_name, name)
                kind = chosen.get(qualname, chosen.get(name))
                unused -= {qualname, name}
                method = Method(service_name, service, name, fn, kind, placement, all_async)
                by_name["%s:%s" % (service_name, name)] = method
                if index == 0:
                    by_name[name] = method
        if unused:
            raise ConfigError(
                "--blocking-methods/--inline-methods name no method of the served services: %s"
                % ", ".join(sorted(unused))
            )
        self.methods = {key.encode(): method for key, method in by_name.items()}
        # What the scanners follow the IDL by (spec_guard.py).
        self.arg_specs: dict[bytes, StructSpec] = {
            key: method.args_cls.thrift_spec for key, method in self.methods.items()
        }

    def add_internal(self, method: Method) -> None:
        """Answer `method.name` with one of the server's own methods (health.py), beside the
        served services' methods."""
        key = method.name.encode()
        if key in self.methods:
            raise ConfigError("--health-method %s: a served service has a method of that name" % method.name)
        self.methods[key] = method
        self.arg_specs[key] = method.args_cls.thrift_spec
