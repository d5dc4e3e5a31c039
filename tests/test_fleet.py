"""A fleet (docs/fleet.md): --drain-delay (503 on /healthz while still serving),
--max-connection-age (closed between calls only), what thriftpy2's and Apache's clients see
then and the retry-once idiom of examples/fleet/retry.py; then three instances behind a real
HAProxy: a rolling restart under load with zero failed calls, and a fourth instance that
pooled connections move to."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

import dracula
from examples.fleet.fleet import Fleet, haproxy_config
from examples.fleet.load import Load
from examples.fleet.retry import RetryingApache, RetryingThriftpy2, apache_closed, thriftpy2_closed
from examples.showcase import ShowcaseHandler

from . import apache_client
from .cli_server import CliServer
from .client_programs import missing_toolchain
from .helpers import BACKENDS, free_port, pingpong_thrift, serving, showcase_thrift, wait_until
from .status_client import http_get
from .wire_client import Connection, encode_call, make_client

AGE = 0.5  # seconds: --max-connection-age in the single-server tests


def showcase_server(backend, **options):
    config = dracula.Config(host="127.0.0.1", port=0, backend=backend, **options)
    return serving(dracula.Server([("Showcase", showcase_thrift.Showcase, ShowcaseHandler())], config))


def closed_error(call):
    """The exception `call()` raises (it must raise)."""
    with pytest.raises(Exception) as caught:
        call()
    return caught.value


# -- --drain-delay ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_drain_delay_reports_503_while_still_serving_and_accepting(backend):
    metrics_port = free_port()
    with showcase_server(backend, drain_delay=60.0, metrics_port=metrics_port) as server:
        pooled = make_client(server.port)
        assert pooled.add(1, 2) == 3
        assert http_get(metrics_port, "/healthz")[0] == 200
        server.close()
        assert wait_until(lambda: http_get(metrics_port, "/healthz")[0] == 503)
        assert pooled.add(2, 3) == 5  # still serving its connections
        fresh = make_client(server.port)
        assert fresh.add(3, 4) == 7  # and still accepting
        assert not server.stopped.is_set()
        server.close()  # a second close skips the rest of the delay: the drain begins
        assert wait_until(server.stopped.is_set, 20)
        # Both were idle: closed between calls, so their next call meets a closed connection.
        assert thriftpy2_closed(closed_error(lambda: pooled.add(1, 1)))
        assert thriftpy2_closed(closed_error(lambda: fresh.add(1, 1)))


def test_sigterm_with_drain_delay_keeps_serving_then_drains():
    metrics_port = free_port()
    with CliServer(
        "idl/pingpong.thrift:PingService",
        "examples.pingpong:PingHandler",
        "--port",
        "0",
        "--metrics-port",
        str(metrics_port),
        "--drain-delay",
        "60",
    ) as server:
        client = RetryingThriftpy2(pingpong_thrift.PingService, "127.0.0.1", server.port)
        assert client.ping() == "pong"
        server.signal(signal.SIGTERM)
        server.wait_for(r"draining: /healthz answers 503 for 60s while still serving")
        assert http_get(metrics_port, "/healthz")[0] == 503
        assert client.ping() == "pong" and client.retries == 0  # same connection, still served
        server.signal(signal.SIGTERM)  # the second signal: drain now
        assert server.wait(20) == 0


# -- --max-connection-age ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_old_idle_connections_are_closed_and_clients_see_a_closed_connection(backend):
    """What thriftpy2's and Apache's clients see (docs/fleet.md): their next call fails with
    END_OF_FILE, every call after it on that client fails too (neither reconnects); with the
    retry-once idiom the call is answered on a new connection."""
    with showcase_server(backend, max_connection_age=AGE) as server:
        thriftpy2_client = make_client(server.port)
        apache = apache_client.Connection(server.port)
        apache_showcase = apache.showcase()
        retrying = RetryingThriftpy2(showcase_thrift.Showcase, "127.0.0.1", server.port)
        retrying_apache = RetryingApache(lambda: _apache_pair(server.port))
        assert thriftpy2_client.add(1, 2) == apache_showcase.add(1, 2) == 3
        assert retrying.add(2, 2) == retrying_apache.call(lambda c: c.add(2, 2)) == 4
        assert wait_until(lambda: not server.state.connections, 10), "not closed for age"

        first = closed_error(lambda: thriftpy2_client.add(1, 1))
        assert first.type == first.END_OF_FILE  # TTransportException("TSocket read 0 bytes")
        assert isinstance(closed_error(lambda: thriftpy2_client.add(1, 1)), BrokenPipeError)
        first = closed_error(lambda: apache_showcase.add(1, 1))
        assert first.type == first.END_OF_FILE
        later = closed_error(lambda: apache_showcase.add(1, 1))
        assert isinstance(later.inner, BrokenPipeError) and apache_closed(later)
        apache.close()

        assert retrying.add(3, 3) == 6 and retrying.retries == 1
        assert retrying_apache.call(lambda c: c.add(3, 3)) == 6 and retrying_apache.retries == 1
        retrying.close()
        retrying_apache.close()


def _apache_pair(port):
    conn = apache_client.Connection(port)
    return conn.showcase(), conn.trans


@pytest.mark.parametrize("backend", BACKENDS)
def test_age_never_closes_a_connection_with_a_request_partly_received(backend):
    with showcase_server(backend, max_connection_age=AGE) as server:
        call = encode_call("add", seqid=7, framed=True, a=20, b=22)
        partial = Connection(server.port, framed=True)
        partial.send(call[:9])
        opened = time.monotonic()
        # Opened later than the partial connection's latest possible deadline minus the
        # earliest of its own (jitter 10%): once it is closed, the partial one is past its age.
        assert wait_until(lambda: time.monotonic() > opened + 0.25 * AGE)
        idle = Connection(server.port, framed=True)
        idle.send(encode_call("add", seqid=1, framed=True, a=1, b=1))
        assert idle.read_reply("add").value == 2
        assert wait_until(lambda: len(server.state.connections) == 1, 10), "idle one not closed"
        partial.send(call[9:])
        reply = partial.read_reply("add")
        assert (reply.seqid, reply.value) == (7, 42)
        assert wait_until(lambda: not server.state.connections, 10)  # then closed, between calls
        partial.close()
        idle.close()


def test_thread_drain_waits_for_a_request_partly_received():
    with showcase_server("thread") as server:
        call = encode_call("add", seqid=3, framed=True, a=1, b=2)
        partial = Connection(server.port, framed=True)
        partial.send(encode_call("add", seqid=1, framed=True, a=1, b=1))
        assert partial.read_reply("add").value == 2
        partial.send(call[:9])
        assert wait_until(lambda: any(c.partial for c in server.state.connections))
        server.close()
        partial.send(call[9:])
        reply = partial.read_reply("add")
        assert (reply.seqid, reply.value) == (3, 3)
        assert wait_until(server.stopped.is_set, 20)
        partial.close()


# -- a fleet behind HAProxy -------------------------------------------------------------------


def test_committed_haproxy_config_is_what_the_fleet_script_writes():
    with open(os.path.join(os.path.dirname(__file__), "..", "examples", "fleet", "haproxy.cfg")) as f:
        committed = f.read()
    assert committed == haproxy_config(3, 9090, 9100, 9000, "/tmp/dracula-fleet/haproxy.sock")


FLEET_AGE = 2.0  # the replacements' and the fourth instance's --max-connection-age


@pytest.fixture
def fleet(tmp_path):
    if shutil.which("haproxy") is None and not os.path.exists("/usr/sbin/haproxy"):
        missing_toolchain("haproxy is not installed (Debian: apt-get install haproxy)")
    fleet = Fleet(
        str(tmp_path),
        slots=4,
        port=free_port(),
        metrics_port=free_port(),
        proxy_port=free_port(),
        drain_delay=1.0,
        graceful_timeout=10.0,
    )
    try:
        yield fleet
    finally:
        fleet.stop()


def test_rolling_restart_loses_no_call_and_a_new_instance_gets_its_share(fleet):
    fleet.start(3)
    # Paced: on two shared cores a closed loop would measure each instance's CPU share, not
    # the connections the balancer gave it.
    load = Load(pingpong_thrift.PingService, "127.0.0.1", fleet.proxy_port, connections=50, interval=0.02)
    try:
        assert wait_until(lambda: load.ok >= 500 or load.failed, 20) and not load.failed, load.failed
        age = ("--max-connection-age", str(FLEET_AGE))
        for slot in (1, 2, 3):
            served = load.ok
            assert fleet.stop_instance(slot) == 0  # SIGTERM: 503 for 1s, drain, exit
            fleet.start_instance(slot, age)
            fleet.wait_states({slot: "UP"})
            assert wait_until(lambda served=served: load.ok >= served + 200 or load.failed, 20)
            assert not load.failed, load.failed
        # The drains closed pooled connections between calls: clients retried them.
        assert load.retried >= 1

        fleet.start_instance(4, age)
        fleet.wait_states({4: "UP"})
        settled = time.monotonic() + 2 * FLEET_AGE
        assert wait_until(lambda: time.monotonic() >= settled, 3 * FLEET_AGE)  # the bound tested
        before = {slot: fleet.calls(slot) for slot in range(1, 5)}
        total = sum(before.values())
        assert wait_until(lambda: sum(fleet.calls(s) for s in range(1, 5)) >= total + 10000, 60)
        served = {slot: fleet.calls(slot) - before[slot] for slot in range(1, 5)}
        mean = sum(served.values()) / 4
        connections = {slot: fleet.metric(slot, "dracula_connections") for slot in range(1, 5)}
        assert all(abs(n - mean) <= 0.25 * mean for n in served.values()), (served, connections)
    finally:
        load.stop()
    assert not load.failed, load.failed
