"""OpenTelemetry tracing for dracula's client: one CLIENT span per call, its W3C `traceparent`
(and `tracestate`) sent in THeader headers, so a traced server (examples/otel_middleware.py)
continues the trace.

    client = dracula.make_client(Service, "host:port", middleware=[OTelClientMiddleware()])

Inside a traced handler the call's span is a child of the current span (the server's, when the
handler made it current). The span is named `Service/method` after the thriftpy2 service and
carries rpc.system, rpc.service, rpc.method, net.peer.name (the last host tried),
dracula.attempts and dracula.outcome ("ok", "exception", "error"; an error sets its status).
Headers travel over THeader only (the client's default transport); over framed or buffered the
span is still recorded, and nothing is sent.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

SPAN = "otel.span"  # the key of the call's span in ClientCall.state
_propagator = TraceContextTextMapPropagator()


class OTelClientMiddleware:
    def __init__(self, service_name: str, tracer_provider=None):
        self.service_name = service_name
        self.tracer = trace.get_tracer("dracula.examples.otel_client", tracer_provider=tracer_provider)

    def before(self, call):
        span = self.tracer.start_span(
            "%s/%s" % (self.service_name, call.name),
            kind=SpanKind.CLIENT,
            attributes={"rpc.system": "thrift", "rpc.service": self.service_name, "rpc.method": call.name},
        )
        call.state[SPAN] = span
        _propagator.inject(call.headers, context=trace.set_span_in_context(span))

    def after(self, call, outcome, seconds):
        span = call.state.pop(SPAN)
        span.set_attribute("dracula.outcome", outcome)
        span.set_attribute("dracula.attempts", call.attempts)
        if call.host is not None:
            span.set_attribute("net.peer.name", call.host)
        if outcome == "error":
            span.set_status(Status(StatusCode.ERROR, "the call got no usable reply"))
        span.end()
