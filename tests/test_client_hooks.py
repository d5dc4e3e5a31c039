"""Client middleware (`before(call)` / `after(call, outcome, seconds)`), the OpenTelemetry
example continuing its trace into a traced dracula server, and the Prometheus metrics."""

from __future__ import annotations

import asyncio

import pytest
from thriftpy2.thrift import TApplicationException

import dracula
from dracula.client import NotSent, PrometheusMetrics
from examples.showcase import ShowcaseHandler

from .client_fakes import FakeServer
from .helpers import free_port, running, showcase_thrift, wait_until
from .test_client_aio import _result

Showcase = showcase_thrift.Showcase


class Recorder:
    def __init__(self, name, log, header=None):
        self.name, self.log, self.header = name, log, header

    def before(self, call):
        self.log.append(("before", self.name, call.name))
        if self.header:
            call.headers[self.header] = self.name

    def after(self, call, outcome, seconds):
        self.log.append(("after", self.name, call.name, outcome, call.attempts, seconds >= 0))


def test_hooks_run_in_order_once_per_call_and_their_headers_travel():
    log, seen = [], []

    def respond(request):
        seen.append(dict(request.headers))
        return request.reply(_result("add", success=3))

    hooks = [Recorder("outer", log, "x-outer"), Recorder("inner", log, "x-inner")]
    with (
        FakeServer(respond) as fake,
        dracula.make_client(Showcase, ("127.0.0.1", fake.port), middleware=hooks) as client,
    ):
        assert client.add(1, 2) == 3
    assert log == [
        ("before", "outer", "add"),
        ("before", "inner", "add"),
        ("after", "inner", "add", "ok", 1, True),
        ("after", "outer", "add", "ok", 1, True),
    ]
    assert seen[0]["x-outer"] == "outer" and seen[0]["x-inner"] == "inner"


def test_outcomes_exception_and_error_and_a_refusing_before_hook():
    log = []

    class Refuse:
        def before(self, call):
            if call.name == "ping":
                raise TApplicationException(TApplicationException.UNKNOWN, "refused by a hook")

    with (
        running(Showcase, ShowcaseHandler()) as server,
        dracula.make_client(Showcase, ("127.0.0.1", server.port), middleware=[Recorder("r", log), Refuse()]) as client,
    ):
        with pytest.raises(showcase_thrift.NotFound):
            client.lookup("missing")
        with pytest.raises(TApplicationException, match="refused by a hook"):
            client.ping()
    with (
        dracula.make_client(Showcase, ("127.0.0.1", free_port()), middleware=[Recorder("r", log)]) as dead,
        pytest.raises(NotSent),
    ):
        dead.add(1, 2)
    outcomes = [(entry[2], entry[3]) for entry in log if entry[0] == "after"]
    assert outcomes == [("lookup", "exception"), ("ping", "exception"), ("add", "error")]


def test_otel_client_spans_are_the_parents_of_the_servers_spans():
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from examples.otel_client_middleware import OTelClientMiddleware
    from examples.otel_middleware import OTelMiddleware

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with running(Showcase, ShowcaseHandler(), middleware=[OTelMiddleware(provider)]) as server:

        async def main():
            async with dracula.make_aio_client(
                Showcase, ("127.0.0.1", server.port), middleware=[OTelClientMiddleware("Showcase", provider)]
            ) as client:
                assert await client.add(1, 2) == 3

        asyncio.run(main())
        assert wait_until(lambda: len(exporter.get_finished_spans()) == 2)
    spans = {span.kind: span for span in exporter.get_finished_spans()}
    client_span, server_span = spans[SpanKind.CLIENT], spans[SpanKind.SERVER]
    assert client_span.name == "Showcase/add" and client_span.attributes["dracula.outcome"] == "ok"
    assert server_span.context.trace_id == client_span.context.trace_id
    assert server_span.parent.span_id == client_span.context.span_id


def test_prometheus_metrics_count_calls_per_method_and_host():
    prometheus_client = pytest.importorskip("prometheus_client")
    registry = prometheus_client.CollectorRegistry()
    with (
        running(Showcase, ShowcaseHandler()) as server,
        dracula.make_client(Showcase, ("127.0.0.1", server.port), metrics=PrometheusMetrics(registry)) as client,
    ):
        for i in range(3):
            client.add(i, i)
        with pytest.raises(showcase_thrift.NotFound):
            client.lookup("missing")
    host = "127.0.0.1:%d" % server.port
    value = registry.get_sample_value
    assert value("dracula_client_calls_total", {"method": "add", "host": host, "outcome": "ok"}) == 3
    assert value("dracula_client_calls_total", {"method": "lookup", "host": host, "outcome": "exception"}) == 1
    assert value("dracula_client_attempts_total", {"method": "add"}) == 3
    assert value("dracula_client_call_seconds_count", {"method": "add"}) == 3
