"""--access-log (one line per call on the "dracula.access" logger) and --metrics-port
(Prometheus /metrics, /healthz), in-process, as `dracula serve`, and summed over --workers."""

from __future__ import annotations

import itertools
import logging
import os
import re
import signal

import pytest
import thriftpy2.rpc
from thriftpy2.thrift import TApplicationException, TMessageType

from .helpers import Background, free_port, running, wait_until
from .ops_app import LocalOps, call, ops_plus_thrift, ops_thrift
from .status_client import http_get, scrape, value
from .wire_client import encode_call, encode_message

ACCESS_LINE = re.compile(r"^(?P<peer>\S+) (?P<method>\S+) (?P<outcome>ok|exception|error) (?P<us>\d+)us$")


def mixed_calls(target, client_options=None):
    """Every outcome once or more: 2 ok, 1 declared exception, 1 undeclared, 1 unknown method."""
    options = client_options or {}
    assert call(target, "echo", "a", **options) == "a"
    assert call(target, "version", **options)
    with pytest.raises(ops_thrift.Oops):
        call(target, "echo", "oops", **options)
    with pytest.raises(TApplicationException) as info:
        call(target, "echo", "boom", **options)
    assert info.value.type == TApplicationException.INTERNAL_ERROR
    with pytest.raises(TApplicationException) as info:
        call(target, "missing", service=ops_plus_thrift.Ops, **options)
    assert info.value.type == TApplicationException.UNKNOWN_METHOD


EXPECTED_ACCESS = [
    ("Ops.echo", "ok"),
    ("Ops.version", "ok"),
    ("Ops.echo", "exception"),
    ("Ops.echo", "error"),
    ("missing", "error"),
]


def check_access_lines(lines, peer_pattern=r"127\.0\.0\.1:\d+"):
    parsed = []
    for line in lines:
        match = ACCESS_LINE.match(line)
        assert match, "access log line not 'PEER Service.method OUTCOME NNNus': %r" % line
        assert re.fullmatch(peer_pattern, match["peer"]), line
        assert int(match["us"]) < 30_000_000, line
        parsed.append((match["method"], match["outcome"]))
    # An unknown method has no service: accept its bare name or a qualified one.
    parsed = [("missing", o) if m.endswith("missing") else (m, o) for m, o in parsed]
    assert parsed == EXPECTED_ACCESS, parsed


# -- access log ----------------------------------------------------------------------------------


def access_messages(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "dracula.access"]


def test_access_log_one_line_per_call(backend, caplog):
    caplog.set_level(logging.INFO, logger="dracula.access")
    with running(ops_thrift.Ops, LocalOps(), backend=backend, access_log=True) as server:
        mixed_calls(server.port)
        # Each line is written before its reply leaves: all five are there now.
        check_access_lines(access_messages(caplog))
        assert all(r.levelno == logging.INFO for r in caplog.records if r.name == "dracula.access")


def test_access_log_peer_is_the_client_address(backend, caplog):
    caplog.set_level(logging.INFO, logger="dracula.access")
    with running(ops_thrift.Ops, LocalOps(), backend=backend, access_log=True) as server:
        client = thriftpy2.rpc.make_client(ops_thrift.Ops, "127.0.0.1", server.port, timeout=10_000)
        try:
            local = client._iprot.trans.sock.getsockname()  # the buffered transport's TSocket
            client.echo("x")
            client.echo("y")
        finally:
            client.close()
    lines = access_messages(caplog)
    assert [line.split()[0] for line in lines] == ["127.0.0.1:%d" % local[1]] * 2, lines


def test_no_access_log_without_the_flag(backend, caplog):
    caplog.set_level(logging.DEBUG, logger="dracula")
    with running(ops_thrift.Ops, LocalOps(), backend=backend) as server:
        mixed_calls(server.port)
    assert access_messages(caplog) == []


def test_access_log_from_the_command_line(serve):
    served = serve("--port", "0", "--access-log")
    mixed_calls(served.port)
    found = served.wait_for(r"INFO dracula\.access: (.*)$", count=5)
    check_access_lines([m.group(1).strip() for m in found])
    served.signal(signal.SIGTERM)
    assert served.wait(20) == 0

    quiet = serve("--port", "0")
    mixed_calls(quiet.port)
    quiet.signal(signal.SIGTERM)
    assert quiet.wait(20) == 0
    assert "dracula.access" not in quiet.output, quiet.output


# -- metrics -------------------------------------------------------------------------------------


def calls_total(samples, method, outcome):
    return value(samples, "dracula_calls_total", method=method, outcome=outcome)


def unknown_method_errors(samples):
    # Unknown method names share one label, so a client cannot mint series.
    return sum(
        v
        for (name, labels), v in samples.items()
        if name == "dracula_calls_total"
        and dict(labels).get("outcome") == "error"
        and dict(labels).get("method", "") == "<unknown>"
    )


def check_histogram(samples, method, count):
    buckets = sorted(
        (
            (float(dict(labels)["le"]), v)
            for (name, labels), v in samples.items()
            if name == "dracula_call_seconds_bucket" and dict(labels).get("method") == method
        ),
        key=lambda b: b[0],
    )
    assert buckets, "no dracula_call_seconds buckets for %s" % method
    assert buckets[-1][0] == float("inf") and buckets[-1][1] == count, buckets
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(buckets)), buckets
    assert value(samples, "dracula_call_seconds_count", method=method) == count
    assert 0 < value(samples, "dracula_call_seconds_sum", method=method) < 60 * count


def test_metrics_count_the_calls_made(serve, app, backend):
    metrics_port = free_port()
    served = serve("--port", "0", "--backend", backend, "--metrics-port", str(metrics_port))
    port = served.port
    before = scrape(metrics_port)
    assert calls_total(before, "Ops.echo", "ok") == 0
    mixed_calls(port)
    for i in range(3):
        assert call(port, "echo", "more %d" % i) == "more %d" % i
    s = scrape(metrics_port)
    assert calls_total(s, "Ops.echo", "ok") == 4
    assert calls_total(s, "Ops.version", "ok") == 1
    assert calls_total(s, "Ops.echo", "exception") == 1
    assert calls_total(s, "Ops.echo", "error") == 1
    assert unknown_method_errors(s) == 1
    check_histogram(s, "Ops.echo", 6)
    check_histogram(s, "Ops.version", 1)
    assert value(s, "dracula_calls_in_flight") == 0
    assert ("dracula_connections", ()) in s
    assert s[("dracula_received_bytes_total", ())] > 0
    assert s[("dracula_sent_bytes_total", ())] > 0

    # Connections and calls in flight, seen while one client holds a call open.
    idle = thriftpy2.rpc.make_client(ops_thrift.Ops, "127.0.0.1", port, timeout=20_000)
    try:
        assert idle.version() == "v1"
        assert wait_until(lambda: value(scrape(metrics_port), "dracula_connections") == 1, 10)
        held = Background(call, port, "hold", "m")
        app.entered("m")
        s = scrape(metrics_port)
        assert value(s, "dracula_calls_in_flight") == 1
        assert value(s, "dracula_connections") == 2
        app.release("m")
        assert held.result() == "m:%d" % served.pid
    finally:
        idle.close()
    assert wait_until(lambda: value(scrape(metrics_port), "dracula_connections") == 0, 10)
    assert value(scrape(metrics_port), "dracula_calls_in_flight") == 0


def test_metrics_count_bytes_exactly(serve, backend):
    metrics_port = free_port()
    served = serve("--port", "0", "--backend", backend, "--metrics-port", str(metrics_port))
    call(served.port, "echo", "warm up")
    before = scrape(metrics_port)
    assert call(served.port, "echo", "hello bytes") == "hello bytes"
    after = scrape(metrics_port)
    request = len(encode_call("echo", 0, service=ops_thrift.Ops, text="hello bytes"))
    reply = len(encode_message("echo", TMessageType.REPLY, 0, ops_thrift.Ops.echo_result(success="hello bytes")))
    received = after[("dracula_received_bytes_total", ())] - before[("dracula_received_bytes_total", ())]
    sent = after[("dracula_sent_bytes_total", ())] - before[("dracula_sent_bytes_total", ())]
    assert (received, sent) == (request, reply)


def test_metrics_are_summed_over_workers(serve, app, backend):
    metrics_port = free_port()
    served = serve("--port", "0", "--backend", backend, "--workers", "2", "--metrics-port", str(metrics_port))
    workers = {int(m.group(1)) for m in served.wait_for(r"worker (\d+) accepting", count=2)}
    n = 0
    pids = set()
    # New connections until both workers have answered (at least 20 calls).
    while n < 20 or (pids != workers and n < 400):
        pids.add(int(call(served.port, "pid")))
        n += 1
    assert pids == workers, "only %s of %s answered %d calls" % (pids, workers, n)
    s = scrape(metrics_port)
    assert calls_total(s, "Ops.pid", "ok") == n
    check_histogram(s, "Ops.pid", n)
    assert value(s, "dracula_calls_in_flight") == 0
    assert s.get(("dracula_received_bytes_total", ()), 0) > 0
    assert s.get(("dracula_sent_bytes_total", ()), 0) > 0
    assert ("dracula_connections", ()) in s

    # What a dead worker counted stays counted.
    victim = int(call(served.port, "pid"))
    n += 1
    os.kill(victim, signal.SIGKILL)
    served.wait_for(r"worker %d died" % victim)
    served.wait_for(r"worker (\d+) accepting", count=3)
    assert calls_total(scrape(metrics_port), "Ops.pid", "ok") == n


# -- /healthz ------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [None, 2], ids=["single", "workers"])
def test_healthz_is_503_while_draining(serve, app, backend, workers):
    metrics_port = free_port()
    extra = ["--workers", str(workers)] if workers else []
    served = serve(
        "--port", "0", "--backend", backend, "--metrics-port", str(metrics_port), "--graceful-timeout", "30", *extra
    )
    if workers:
        served.wait_for(r"worker (\d+) accepting", count=workers)
    # Ready shortly after the 'serving' line (which is logged just before readiness is set).
    assert wait_until(lambda: http_get(metrics_port, "/healthz")[0] == 200, 10)
    assert http_get(metrics_port, "/nowhere")[0] == 404
    held = Background(call, served.port, "hold", "h")
    app.entered("h")
    assert http_get(metrics_port, "/healthz")[0] == 200
    served.signal(signal.SIGTERM)
    assert wait_until(lambda: http_get(metrics_port, "/healthz")[0] == 503, 10), (
        "never reported draining:\n" + served.output
    )
    assert not held.done(), "the call finished before the drain was seen"
    assert served.proc.poll() is None
    status, body = http_get(metrics_port, "/metrics")  # still scraped while draining
    assert status == 200 and "dracula_calls_in_flight" in body
    app.release("h")
    assert held.result().startswith("h:")
    assert served.wait(20) == 0, served.output


# -- in-process servers --------------------------------------------------------------------------


def test_in_process_servers_with_metrics_one_after_another(backend):
    """make_server(..., metrics_port=...) twice in one process (a test suite, a restart in
    place): each server starts, and its /metrics counts its own calls."""
    for round_ in range(2):
        metrics_port = free_port()
        with running(ops_thrift.Ops, LocalOps(), backend=backend, metrics_port=metrics_port) as server:
            for i in range(round_ + 1):
                assert call(server.port, "echo", str(i)) == str(i)
            assert calls_total(scrape(metrics_port), "Ops.echo", "ok") == round_ + 1
