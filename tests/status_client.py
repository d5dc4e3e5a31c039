"""What a client of the status endpoint (--metrics-port: Prometheus /metrics and /healthz) needs:
a GET that returns error statuses instead of raising, and /metrics parsed into samples."""

from __future__ import annotations

import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def http_get(port, path):
    """(status, body) of GET http://127.0.0.1:port/path."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(port) -> dict:
    """{(sample name, sorted labels): value} of every sample on /metrics."""
    status, body = http_get(port, "/metrics")
    assert status == 200, (status, body)
    samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    """The sample with exactly these labels; 0.0 if absent (a counter not yet incremented)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
