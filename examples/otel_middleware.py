"""OpenTelemetry tracing for dracula: one server span per call, continuing the caller's trace.

    pip install 'dracula[otel]'
    dracula serve idl/pingpong.thrift:PingService examples.pingpong:PingHandler \\
        --middleware examples.otel_middleware:console          # spans printed on stdout

Embedded, with your own SDK setup: `make_server(..., middleware=[OTelMiddleware(provider)])`.

A THeader request's W3C `traceparent` (and `tracestate`) header makes the span a child of the
client's span; without one the span starts a new trace. The span is named `Service/method`
and carries rpc.system, rpc.service, rpc.method, net.peer.ip, net.peer.port and
dracula.outcome ("ok", "exception" or "error"; an error sets the span's status to ERROR).
It is started in `before` and ended in `after`; a handler reaches it as
`dracula.current_call().state[SPAN]` (e.g. `with trace.use_span(span, end_on_exit=False):`
to nest its own spans).
"""

from __future__ import annotations

import time

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

SPAN = "otel.span"  # the key of the call's span in CallContext.state
_propagator = TraceContextTextMapPropagator()


class OTelMiddleware:
    def __init__(self, tracer_provider=None):
        self.tracer = trace.get_tracer("dracula.examples.otel", tracer_provider=tracer_provider)

    def before(self, call):
        call.state[SPAN] = self._start(call)

    def after(self, call, outcome, seconds):
        span = call.state.pop(SPAN, None)
        if span is None:  # refused before `before` (an unknown method): a span of its own
            span = self._start(call, start_time=time.time_ns() - int(seconds * 1e9))
        span.set_attribute("dracula.outcome", outcome)
        if outcome == "error":
            span.set_status(Status(StatusCode.ERROR, "answered with a TApplicationException"))
        span.end()

    def _start(self, call, start_time=None):
        attributes = {"rpc.system": "thrift", "rpc.method": call.method}
        if call.service is not None:
            attributes["rpc.service"] = call.service
        if isinstance(call.peer, tuple):  # TCP; a Unix socket's peer has no address
            attributes["net.peer.ip"], attributes["net.peer.port"] = call.peer[0], call.peer[1]
        parent = _propagator.extract(call.headers)  # THeader header names are lower case already
        name = "%s/%s" % (call.service, call.method) if call.service is not None else call.method
        return self.tracer.start_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=attributes, start_time=start_time
        )


def console() -> OTelMiddleware:
    """`--middleware examples.otel_middleware:console`: the SDK, printing every span on stdout."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    return OTelMiddleware(provider)
