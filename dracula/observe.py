"""Per-call observation: the access log and Prometheus metrics.

Both are off by default, and then nothing here runs (the server has no observer). With either
on, every Call reports its start and its finish; the outcome is the Call's own:
  ok         the handler returned (for oneway: it ran)
  exception  it raised an exception declared in the IDL
  error      the caller got a TApplicationException (undeclared exception, unknown method,
             bad arguments, timeout, wrong return type)
"""
from __future__ import annotations

import logging

from .logs import format_peer

access = logging.getLogger("dracula.access")
UNKNOWN_METHOD_LABEL = "<unknown>"


class CallObserver:
    def __init__(self, metrics=None, access_log: bool = False):
        self.metrics = metrics
        self.access_log = access_log

    def call_started(self) -> None:
        if self.metrics:
            self.metrics.in_flight.inc()

    def call_finished(self, call, seconds: float) -> None:
        method = call.method
        if method is not None:
            qualname = method.qualname
        else:
            qualname = call.msg.name.decode("utf-8", "replace")
        if self.metrics:
            # Client-chosen names must not mint metric series: unknown methods share one label.
            label = qualname if method is not None else UNKNOWN_METHOD_LABEL
            self.metrics.in_flight.dec()
            self.metrics.calls.labels(label, call.outcome).inc()
            self.metrics.latency.labels(label).observe(seconds)
        if self.access_log:
            access.info("%s %s %s %dus", format_peer(call.peer), qualname, call.outcome, seconds * 1e6)

    def connection_opened(self) -> None:
        if self.metrics:
            self.metrics.connections.inc()

    def connection_closed(self) -> None:
        if self.metrics:
            self.metrics.connections.dec()

    def connection_evicted(self) -> None:
        if self.metrics:
            self.metrics.evicted.inc()

    def received(self, n: int) -> None:
        if self.metrics:
            self.metrics.received.inc(n)

    def sent(self, n: int) -> None:
        if self.metrics:
            self.metrics.sent.inc(n)

    def call_shed(self, reason: str) -> None:
        if self.metrics:
            self.metrics.shed.labels(reason).inc()

    def budget_changed(self, used: int, waiting: int) -> None:
        """The ingress budget moved (only on buffer resizes): bytes charged, connections waiting."""
        if self.metrics:
            self.metrics.budget_bytes.set(used)
            self.metrics.budget_paused.set(waiting)
