"""Observation: the access log and Prometheus metrics, both off by default.

Per call they are built-in middleware (server/middleware.py), placed before any of the user's: they
see every call that was read, with the Call's own outcome:
  ok         the handler returned (for oneway: it ran)
  exception  it raised an exception declared in the IDL
  error      the caller got a TApplicationException (undeclared exception, unknown method,
             bad arguments, timeout, wrong return type, shed)
Per connection and per process (connections, bytes, evictions, shedding, the memory budget)
the backends report to a ServerObserver, which exists only when metrics are on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dracula.ops.logs import format_peer

if TYPE_CHECKING:
    from dracula.ops.metrics import Metrics
    from dracula.server.context import CallContext

access = logging.getLogger("dracula.access")
UNKNOWN_METHOD_LABEL = "<unknown>"
_RUNNING = "dracula.ops.metrics.running"  # in CallContext.state: counted in flight by before()


def qualname(call: CallContext) -> str:
    """Service.method, or the name the client sent when no such method exists."""
    return call.method if call.service is None else "%s.%s" % (call.service, call.method)


class AccessLog:
    """--access-log: one line per call, `PEER Service.method OUTCOME NNNus`, and ` http` after a
    call that came over HTTP."""

    def after(self, call: CallContext, outcome: str, seconds: float) -> None:
        if call.transport == "thrift":
            access.info("%s %s %s %dus", format_peer(call.peer), qualname(call), outcome, seconds * 1e6)
        else:
            access.info(
                "%s %s %s %dus %s", format_peer(call.peer), qualname(call), outcome, seconds * 1e6, call.transport
            )


class CallMetrics:
    """--metrics-port: calls by method and outcome, latency, calls in flight."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def before(self, call: CallContext) -> None:
        self.metrics.in_flight.inc()
        call.state[_RUNNING] = True

    def after(self, call: CallContext, outcome: str, seconds: float) -> None:
        metrics = self.metrics
        if call.state.pop(_RUNNING, False):
            metrics.in_flight.dec()
        # Client-chosen names must not mint metric series: unknown methods share one label.
        label = qualname(call) if call.service is not None else UNKNOWN_METHOD_LABEL
        metrics.calls.labels(label, outcome).inc()
        metrics.latency.labels(label).observe(seconds)


def builtin_middleware(metrics: Metrics | None, access_log: bool) -> list[AccessLog | CallMetrics]:
    """The access log outermost (its `after` runs last, when the outcome is final), then the
    metrics."""
    return ([AccessLog()] if access_log else []) + ([CallMetrics(metrics)] if metrics is not None else [])


class ServerObserver:
    """What the backends, the connection table, the budget and shedding report to metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def connection_opened(self) -> None:
        self.metrics.connections.inc()

    def connection_closed(self) -> None:
        self.metrics.connections.dec()

    def connection_evicted(self) -> None:
        self.metrics.evicted.inc()

    def received(self, n: int) -> None:
        self.metrics.received.inc(n)

    def sent(self, n: int) -> None:
        self.metrics.sent.inc(n)

    def http_response(self, status: int) -> None:
        """A response to an HTTP request (a call's, or a refusal's)."""
        self.metrics.http_responses.labels(str(status)).inc()

    def call_shed(self, reason: str) -> None:
        self.metrics.shed.labels(reason).inc()

    def budget_changed(self, used: int, waiting: int) -> None:
        """The ingress budget moved (only on buffer resizes): bytes charged, connections waiting."""
        self.metrics.budget_bytes.set(used)
        self.metrics.budget_paused.set(waiting)

    def pool_changed(self, threads: int, busy: int, queued: int) -> None:
        """The blocking handlers' pool started or retired a thread, or took or queued a call."""
        metrics = self.metrics
        metrics.pool_threads.set(threads)
        metrics.pool_busy.set(busy)
        metrics.pool_queued.set(queued)

    def pool_limit(self, threads: int) -> None:
        self.metrics.pool_limit.set(threads)

    def loop_blocked(self, method: str, seconds: float) -> None:
        """A handler held the reactor past --inline-budget (placement.py)."""
        self.metrics.loop_blocked.labels(method).inc(seconds)

    def method_moved(self, method: str) -> None:
        self.metrics.moved.inc()
