"""examples/otel_middleware.py on both backends, exported with the OpenTelemetry SDK's in-memory
exporter: a THeader `traceparent` is continued (same trace, the client's span as parent), a call
without one starts a new trace, and an error outcome sets the span's status. The calls come from
Apache Thrift's THeaderProtocol (tests/test_context.py's client).
"""

from __future__ import annotations

import contextlib

import pytest
from thrift.Thrift import TApplicationException

from .callinfo_app import Client as HeaderClient
from .client_programs import missing_toolchain
from .helpers import running, wait_until
from .hooked_app import Handler, hooked_thrift

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = "00-%s-%s-01" % (TRACE_ID, PARENT_ID)


@pytest.fixture
def otel():
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )
        from opentelemetry.trace import SpanKind, StatusCode
    except ImportError:
        missing_toolchain("opentelemetry-sdk is not installed: pip install '.[otel]'")
    from examples.otel_middleware import OTelMiddleware

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OTelMiddleware(provider), exporter, SpanKind, StatusCode


@pytest.fixture
def traced(backend, otel):
    """(client, finished spans) of a server traced by the example middleware."""
    middleware, exporter, *_ = otel
    with running(hooked_thrift.Hooked, Handler(), backend=backend, middleware=[middleware]) as server:
        client = HeaderClient(server.port)
        with contextlib.closing(client):
            yield client, exporter.get_finished_spans


def _spans(finished, count):
    assert wait_until(lambda: len(finished()) >= count), finished()
    return finished()


@pytest.mark.parametrize("method", ["plain", "coro", "pooled"])
def test_a_traceparent_header_is_continued(traced, otel, method):
    client, finished = traced
    SpanKind = otel[2]
    assert client.call(method, "t", {"traceparent": TRACEPARENT}) == "t"
    (span,) = _spans(finished, 1)
    assert span.name == "Hooked/%s" % method and span.kind == SpanKind.SERVER
    assert span.context.trace_id == int(TRACE_ID, 16)
    assert span.parent is not None and span.parent.span_id == int(PARENT_ID, 16)
    assert span.parent.is_remote and span.context.span_id != int(PARENT_ID, 16)
    assert dict(span.attributes) == {
        "rpc.system": "thrift",
        "rpc.service": "Hooked",
        "rpc.method": method,
        "net.peer.ip": "127.0.0.1",
        "net.peer.port": client.port,
        "dracula.outcome": "ok",
    }
    assert span.end_time >= span.start_time


def test_a_call_without_traceparent_starts_a_new_trace(traced):
    client, finished = traced
    assert client.call("plain", "a") == "a"
    assert client.call("plain", "b", {"traceparent": "not-a-traceparent"}) == "b"
    spans = _spans(finished, 2)
    assert [span.parent for span in spans] == [None, None]
    assert spans[0].context.trace_id != spans[1].context.trace_id
    assert int(TRACE_ID, 16) not in {span.context.trace_id for span in spans}


def test_an_error_outcome_sets_the_status(traced, otel):
    client, finished = traced
    StatusCode = otel[3]
    with pytest.raises(TApplicationException) as unknown:
        client.call("nope", "x", {"traceparent": TRACEPARENT})
    # Refused before `before` ran: still traced, in the client's trace.
    assert unknown.value.type == TApplicationException.UNKNOWN_METHOD
    with pytest.raises(TApplicationException) as failed:
        client.call("fails", "boom")  # an undeclared exception
    assert failed.value.type == TApplicationException.INTERNAL_ERROR
    assert client.call("plain", "fine") == "fine"
    unknown_span, failed, fine = _spans(finished, 3)
    assert unknown_span.name == "nope" and unknown_span.context.trace_id == int(TRACE_ID, 16)
    assert unknown_span.attributes["dracula.outcome"] == "error"
    assert unknown_span.end_time >= unknown_span.start_time
    assert failed.name == "Hooked/fails" and failed.attributes["dracula.outcome"] == "error"
    assert [s.status.status_code for s in (unknown_span, failed, fine)] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
