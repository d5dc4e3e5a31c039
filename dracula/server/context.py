"""What a handler can learn about the call it is serving: `dracula.current_call()`.

The Call being served is kept in a context variable, so plain, `async` and `@dracula.blocking`
handlers each see their own call under any concurrency (a coroutine's task and a pool thread
get the variable set for them). The CallContext view is made only when a handler asks for it.
"""

from __future__ import annotations

import contextvars
from typing import Any, Protocol

from dracula.typedefs import Peer, PeerCert


class Served(Protocol):
    """What the context variable holds while a handler runs: the calls.Call being served, or
    for a plain call on the compiled fast path its _cfast.FastCall."""

    @property
    def context(self) -> CallContext: ...


current: contextvars.ContextVar[Served] = contextvars.ContextVar("dracula_call")


class CallContext:
    """The current call: `.service` (None when refused before its method was known), `.method`,
    `.peer`, `.peer_cert` (the client's TLS certificate as ssl's getpeercert() returns it: None
    without TLS or without a client certificate; the connection's, read once),
    `.headers` (the request's THeader headers, or its HTTP headers with lower-cased
    names, str -> str; empty for other transports), `.transport` ("thrift", or "http"),
    `.response_headers` (a dict the handler fills; sent on THeader replies, ignored elsewhere)
    and `.deadline` (a time.monotonic() value from the client's `client_timeout` header, or
    None). `.state` is a free-form dict
    for middleware to keep what it needs from `before` to `after` (a span, a timer)."""

    __slots__ = (
        "service",
        "method",
        "peer",
        "peer_cert",
        "headers",
        "response_headers",
        "deadline",
        "state",
        "transport",
    )

    def __init__(
        self,
        service: str | None,
        method: str,
        peer: Peer,
        headers: dict[str, str],
        deadline: float | None,
        peer_cert: PeerCert | None = None,
    ) -> None:
        self.service = service
        self.method = method
        self.peer = peer
        self.peer_cert = peer_cert
        self.headers = headers
        self.response_headers: dict[str, str] = {}
        self.deadline = deadline
        self.state: dict[str, Any] = {}
        self.transport = "thrift"  # "http": the call came in an HTTP request (docs/http.md)

    def __repr__(self) -> str:
        return "<CallContext %s.%s from %s>" % (self.service, self.method, self.peer)


def current_call() -> CallContext:
    """The context of the call this handler is serving. Raises LookupError outside a call."""
    call = current.get(None)
    if call is None:
        raise LookupError("dracula.current_call() is only available while a handler runs")
    return call.context
