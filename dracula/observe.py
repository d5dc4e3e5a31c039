"""Per-call observation: the access log and Prometheus metrics.

Both are off by default, and then nothing here runs: the server uses the plain Dispatcher. With
either on, it uses ObservedDispatcher, which times each call from its decode to its reply and
labels its outcome:
  ok         the handler returned (for oneway: it ran)
  exception  it raised an exception declared in the IDL
  error      the caller got a TApplicationException (undeclared exception, unknown method,
             bad arguments, timeout, wrong return type)
"""
from __future__ import annotations

import logging
import time

from .dispatch import EXCEPTION, Dispatcher
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

    def call_finished(self, peer, qualname: str, outcome: str, seconds: float, known: bool = True) -> None:
        if self.metrics:
            # Client-chosen names must not mint metric series: unknown methods share one label.
            label = qualname if known else UNKNOWN_METHOD_LABEL
            self.metrics.in_flight.dec()
            self.metrics.calls.labels(label, outcome).inc()
            self.metrics.latency.labels(label).observe(seconds)
        if self.access_log:
            access.info("%s %s %s %dus", format_peer(peer), qualname, outcome, seconds * 1e6)

    def connection_opened(self) -> None:
        if self.metrics:
            self.metrics.connections.inc()

    def connection_closed(self) -> None:
        if self.metrics:
            self.metrics.connections.dec()

    def received(self, n: int) -> None:
        if self.metrics:
            self.metrics.received.inc(n)

    def sent(self, n: int) -> None:
        if self.metrics:
            self.metrics.sent.inc(n)


class ObservedDispatcher(Dispatcher):
    """A Dispatcher that reports every call to a CallObserver."""

    def __init__(self, services, observer: CallObserver):
        super().__init__(services)
        self.observer = observer

    def prepare(self, msg, codec, peer=None):
        msg.started = time.perf_counter()
        msg.peer = peer
        msg.label = "ok"
        self.observer.call_started()
        return super().prepare(msg, codec, peer)

    def refuse(self, msg, exc, codec, framed):
        reply = super().refuse(msg, exc, codec, framed)
        if getattr(msg, "started", None) is not None:  # refused after prepare() began
            method = self.methods.get(msg.name)
            if method is not None:
                self._finish(msg, method.qualname, reply)
            else:
                self._finish(msg, msg.name.decode("utf-8", "replace"), reply, known=False)
        return reply

    def call_sync(self, method, args, msg, codec, framed):
        reply = super().call_sync(method, args, msg, codec, framed)
        if msg.started is not None:  # not finished by outcome() on an error path
            self._finish(msg, method.qualname, reply)
        return reply

    def outcome(self, method, msg, codec, framed, value=None, error=None):
        if error is not None and method.declared_field(error) is not None:
            msg.label = "exception"
        reply = super().outcome(method, msg, codec, framed, value, error)
        self._finish(msg, method.qualname, reply)
        return reply

    def _finish(self, msg, qualname: str, reply, known: bool = True) -> None:
        label = msg.label
        if reply is not None and _message_type(reply) == EXCEPTION:
            label = "error"
        self.observer.call_finished(msg.peer, qualname, label, time.perf_counter() - msg.started, known)
        msg.started = None


def _message_type(reply: bytes) -> int:
    """The message type of an encoded reply, framed or not, binary or compact."""
    if reply[0] not in (0x80, 0x82):
        reply = reply[4:]
    return reply[3] if reply[0] == 0x80 else reply[1] >> 5
