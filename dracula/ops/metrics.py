"""Prometheus metrics and the /metrics + /healthz endpoint (--metrics-port).

With workers, every process records into prometheus_client's multiprocess directory (the
supervisor sets PROMETHEUS_MULTIPROC_DIR for them) and the supervisor serves the aggregate.
"""

from __future__ import annotations

import http.server
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: without --metrics-port prometheus_client is not loaded
    from prometheus_client import CollectorRegistry

log = logging.getLogger("dracula.metrics")

LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.calls = Counter(
            "dracula_calls",
            "Calls by method and outcome (ok, exception, error)",
            ["method", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "dracula_call_seconds",
            "Time from a call's decode to its reply",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "dracula_calls_in_flight",
            "Calls decoded and not yet answered",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.connections = Gauge(
            "dracula_connections", "Open client connections", registry=registry, multiprocess_mode="livesum"
        )
        self.evicted = Counter(
            "dracula_evicted_connections",
            "Idle connections closed to make room for a new one (the connection table was full)",
            registry=registry,
        )
        self.received = Counter("dracula_received_bytes", "Bytes received from clients", registry=registry)
        self.sent = Counter("dracula_sent_bytes", "Bytes of replies written", registry=registry)
        self.http_responses = Counter(
            "dracula_http_responses",
            "Responses to Thrift over HTTP requests, by status (200, 503 shed, 4xx refused)",
            ["status"],
            registry=registry,
        )
        self.shed = Counter(
            "dracula_shed_calls",
            "Calls answered overloaded instead of run, by reason (max_requests, queue_timeout)",
            ["reason"],
            registry=registry,
        )
        self.budget_bytes = Gauge(
            "dracula_buffer_budget_bytes",
            "Receive-buffer bytes charged to --max-buffer-memory",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.budget_paused = Gauge(
            "dracula_budget_paused_connections",
            "Connections whose reading waits for --max-buffer-memory",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self._add_handler_metrics(registry)

    def _add_handler_metrics(self, registry: CollectorRegistry | None) -> None:
        """The blocking handlers' pool and where plain methods run (server/placement.py)."""
        from prometheus_client import Counter, Gauge

        self.pool_threads = Gauge(
            "dracula_handler_threads",
            "Threads in the pool that blocking handlers run in",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.pool_busy = Gauge(
            "dracula_handler_threads_busy",
            "Pool threads running a handler",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.pool_queued = Gauge(
            "dracula_handler_queue", "Calls waiting for a pool thread", registry=registry, multiprocess_mode="livesum"
        )
        self.pool_limit = Gauge(
            "dracula_handler_threads_limit",
            "Most threads the pool may start (--blocking-threads)",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.loop_blocked = Counter(
            "dracula_loop_blocked_seconds",
            "Time handlers held the reactor past --inline-budget, by method",
            ["method"],
            registry=registry,
        )
        self.moved = Counter(
            "dracula_methods_moved",
            "Plain methods moved to the thread pool because their calls blocked the reactor",
            registry=registry,
        )


def new_registry() -> CollectorRegistry:
    from prometheus_client import CollectorRegistry

    return CollectorRegistry()


def exposition(registry: CollectorRegistry | None = None, multiprocess_dir: str | None = None) -> bytes:
    from prometheus_client import generate_latest

    if multiprocess_dir is not None:
        from prometheus_client import multiprocess

        registry = new_registry()
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
    if registry is None:
        raise ValueError("exposition() needs a registry or a multiprocess directory")
    return generate_latest(registry)


def call_totals(multiprocess_dir: str) -> tuple[float, float]:
    """(calls answered, calls shed) summed over every process recording into `multiprocess_dir`:
    what the supervisor knows of its workers' shedding (shed calls are among the answered)."""
    from prometheus_client import multiprocess

    registry = new_registry()
    multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
    totals = {"dracula_calls_total": 0.0, "dracula_shed_calls_total": 0.0}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return totals["dracula_calls_total"], totals["dracula_shed_calls_total"]


def serve_status(
    host: str,
    port: int,
    healthy: Callable[[], bool],
    multiprocess_dir: str | None = None,
    registry: CollectorRegistry | None = None,
) -> http.server.ThreadingHTTPServer:
    """Serve /metrics (from `registry`, or summed over `multiprocess_dir`) and /healthz (200
    while `healthy()`, else 503) from a daemon thread. Returns the HTTP server."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, status = exposition(registry, multiprocess_dir), 200
                content_type = "text/plain; version=0.0.4; charset=utf-8"
            elif self.path == "/healthz":
                ok = healthy()
                body, status = (b"ok\n" if ok else b"draining\n"), (200 if ok else 503)
                content_type = "text/plain"
            else:
                body, status, content_type = b"not found\n", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args: Any) -> None:  # probes every few seconds must not fill the log
            log.debug("%s %s", self.address_string(), fmt % args)

    server = http.server.ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="dracula-status", daemon=True).start()
    return server
