"""Optional Prometheus metrics for a client (`make_client(..., metrics=PrometheusMetrics())`):

    dracula_client_calls_total{method, host, outcome}   calls, by the host of their last attempt
    dracula_client_call_seconds{method}                  how long calls took, attempts included
    dracula_client_attempts_total{method}                attempts (retries are the excess over calls)

`outcome` is the hooks' ("ok", "exception", "error"). Needs prometheus_client
(`pip install prometheus-client`); pass your own `registry` to keep the series out of the default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dracula.client.hooks import ClientCall


class PrometheusMetrics:
    def __init__(self, registry: Any = None, namespace: str = "dracula_client") -> None:
        from prometheus_client import REGISTRY, Counter, Histogram

        registry = REGISTRY if registry is None else registry
        self.calls = Counter(
            "%s_calls_total" % namespace,
            "Client calls by method, last host and outcome",
            ["method", "host", "outcome"],
            registry=registry,
        )
        self.seconds = Histogram(
            "%s_call_seconds" % namespace, "Client call duration, retries included", ["method"], registry=registry
        )
        self.attempts = Counter(
            "%s_attempts_total" % namespace, "Client attempts (calls and their retries)", ["method"], registry=registry
        )

    def after(self, call: ClientCall, outcome: str, seconds: float) -> None:
        name = call.name
        self.calls.labels(name, call.host or "", outcome).inc()
        self.seconds.labels(name).observe(seconds)
        self.attempts.labels(name).inc(call.attempts)
