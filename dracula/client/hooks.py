"""Client middleware, like the server's: objects with `before(call)` and/or
`after(call, outcome, seconds)`, run once per call (not per attempt): `before` in order before
the first attempt, `after` in reverse with the outcome, "ok", "exception" (a declared exception
or a TApplicationException the server answered) or "error" (no usable reply), and the seconds the
whole call took. `call.headers` (str -> str) set in `before` travel as THeader headers;
`call.state` keeps what a hook needs until `after`. A hook that raises in `before` fails the call
(nothing is sent; every `after` still runs, with that error); an `after` that raises is logged,
never lost to the caller.

`metrics` (optional) is an object with the same `after`, called with the last host in
`call.host`: metrics.py's PrometheusMetrics counts calls and attempts per method and host.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from thriftpy2.thrift import TException

from dracula.client.errors import CallTimeout, ClientError

if TYPE_CHECKING:
    from dracula.client.messages import Method

log = logging.getLogger("dracula.client")


class ClientCall:
    """One call through the client: `.method` (its name), `.args` (the arguments struct),
    `.deadline` (monotonic, or None), `.headers` (sent over THeader), `.host` ("ip:port" of the
    last attempt), `.attempts`, `.state` (free for hooks)."""

    __slots__ = ("spec", "args", "deadline", "headers", "host", "attempts", "tried", "state")

    def __init__(self, spec: Method, args: Any, deadline: float | None) -> None:
        self.spec = spec
        self.args = args
        self.deadline = deadline
        self.headers: dict[str, str] = {}
        self.host: str | None = None
        self.attempts = 0
        self.tried: list[Any] = []
        self.state: dict[str, Any] = {}

    @property
    def method(self) -> Method:
        return self.spec

    @property
    def name(self) -> str:
        return self.spec.name

    def __repr__(self) -> str:
        return "<ClientCall %s on %s, %d attempt(s)>" % (self.spec.name, self.host, self.attempts)


def outcome_of(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    if isinstance(error, (ClientError, CallTimeout)) or not isinstance(error, TException):
        return "error"
    return "exception"


class Hooks:
    def __init__(self, middleware: Sequence[Any], metrics: Any) -> None:
        self.before_hooks = [m.before for m in middleware if hasattr(m, "before")]
        after = [m.after for m in reversed(list(middleware)) if hasattr(m, "after")]
        if metrics is not None:
            after.append(metrics.after)
        self.after_hooks = after
        self.active = bool(self.before_hooks or self.after_hooks)

    def before(self, call: ClientCall) -> None:
        for hook in self.before_hooks:
            hook(call)

    def after(self, call: ClientCall, error: BaseException | None, seconds: float) -> None:
        outcome = outcome_of(error)
        for hook in self.after_hooks:
            try:
                hook(call, outcome, seconds)
            except Exception:
                log.exception("client middleware %r failed in after()", hook)
