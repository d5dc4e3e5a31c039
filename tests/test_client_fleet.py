"""FLEET TEST (about 20 s, real `dracula serve` processes): three instances, no proxy, each
closing connections past --max-connection-age 2; under load two are restarted in turn and the
third, running --workers 2, reloads on SIGHUP. 50 concurrent callers on one asyncio client and
8 threads on one blocking client see no failed call, and the ledgers the servers keep show that
no call ran twice. The test holds no retry code: whatever is retried, the client decides.

Over framed with `add` declared idempotent, a call cut off by a closing server is sent again.
Over THeader with `add` not idempotent, it may not be: there the server's replies say `:drain`
before it closes a connection (--max-connection-age, the drain), so the client never writes a
request into a connection as it closes. Any failure is reported as CallsFailed after the
ledgers have shown that no failed call ran and none ran twice."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import threading
import time

import pytest

import dracula

from .cli_server import CliServer
from .client_fleet_app import LEDGER_DIR
from .helpers import free_port, showcase_thrift, wait_until

Showcase = showcase_thrift.Showcase
HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
AGE = "2"
# A client max_age below the server's --max-connection-age (2 s, jittered 10%) means the client
# retires each connection before the server closes it for its age. Over framed that is what
# keeps requests out of connections as they close; over THeader the server's `:drain` does, and
# the client's max_age keeps connections that sat idle through a drain's grace out of the pool.
CLIENT_MAX_AGE = 1.5


class Load:
    """The two clients' callers, each call's token unique; failures and replies recorded."""

    def __init__(self, port, transport, idempotent):
        self.endpoints = [(host, port) for host in HOSTS]
        self.options = {"transport": transport, "idempotent": idempotent, "max_age": CLIENT_MAX_AGE, "timeout": 10.0}
        self.next = iter(range(1, 10**9)).__next__
        self.lock = threading.Lock()
        self.ok = collections.Counter()
        self.errors = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._aio, daemon=True)]
        self.sync = dracula.make_client(Showcase, self.endpoints, **self.options)
        self.threads += [threading.Thread(target=self._sync, daemon=True) for _ in range(8)]
        for t in self.threads:
            t.start()

    def token(self):
        with self.lock:
            return self.next()

    def _record(self, kind, token, value):
        with self.lock:
            if value == token:
                self.ok[kind] += 1
            else:
                self.errors.append((kind, token, value))

    def _sync(self):
        while not self.stopping.is_set():
            token = self.token()
            try:
                self._record("sync", token, self.sync.add(token, 0))
            except Exception as e:
                self._record("sync", token, e)

    def _aio(self):
        async def caller(client):
            while not self.stopping.is_set():
                token = self.token()
                try:
                    self._record("aio", token, await client.add(token, 0))
                except Exception as e:
                    self._record("aio", token, e)

        async def main():
            async with dracula.make_aio_client(Showcase, self.endpoints, **self.options) as client:
                await asyncio.gather(*[caller(client) for _ in range(50)])

        asyncio.run(main())

    def calls(self):
        with self.lock:
            return sum(self.ok.values()) + len(self.errors)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(30)
        self.sync.close()


def instance(host, port, *extra):
    return CliServer(
        "idl/showcase.thrift:Showcase",
        "tests.client_fleet_app:LedgerHandler",
        "--host",
        host,
        "--port",
        str(port),
        "--max-connection-age",
        AGE,
        "--drain-delay",
        "0",
        "--graceful-timeout",
        "5",
        *extra,
    )


class CallsFailed(AssertionError):
    """Calls failed (and nothing worse: no call ran twice, no failed call ran)."""


@pytest.mark.parametrize(
    "transport,idempotent",
    [
        pytest.param("framed", {"add"}, id="idempotent-framed"),
        pytest.param("header", set(), id="not-idempotent-header"),
    ],
)
def test_rolling_restart_and_reload_under_load_fail_no_call_and_run_none_twice(
    tmp_path, monkeypatch, transport, idempotent
):
    monkeypatch.setenv(LEDGER_DIR, str(tmp_path))
    port = free_port()
    servers = [instance(HOSTS[0], port), instance(HOSTS[1], port), instance(HOSTS[2], port, "--workers", "2")]
    load = None
    try:
        load = Load(port, transport, idempotent)
        assert wait_until(lambda: load.calls() >= 500, 15)
        for slot in (0, 1):  # rolling restart: stop, wait for the exit, start again
            before = load.calls()
            servers[slot].signal(signal.SIGTERM)
            assert servers[slot].wait(20) == 0
            assert wait_until(lambda b=before: load.calls() >= b + 300, 10)  # served by the others
            servers[slot] = instance(HOSTS[slot], port)
        servers[2].signal(signal.SIGHUP)
        servers[2].wait_for(r"received SIGHUP: starting 2 new worker\(s\)")
        servers[2].wait_for(r"worker \d+ exited", 2, timeout=20)  # the two old ones
        before = load.calls()
        assert wait_until(lambda: load.calls() >= before + 500, 10)
        started = time.monotonic()  # load on for one more connection age at least
        assert wait_until(lambda: time.monotonic() - started > float(AGE) and load.calls() >= before + 1000, 15)
    finally:
        if load is not None:
            load.stop()
        for server in servers:
            server.close()
    assert load.ok["aio"] > 500 and load.ok["sync"] > 500, load.ok
    ran = collections.Counter()
    for name in os.listdir(tmp_path):
        with open(tmp_path / name) as f:
            ran.update(int(line) for line in f)
    twice = [token for token, n in ran.items() if n > 1]
    assert not twice, "%d calls ran twice, e.g. %s" % (len(twice), twice[:5])
    failed = {token for _, token, _ in load.errors}
    assert not failed & set(ran), "calls that failed ran: %s" % sorted(failed & set(ran))[:5]
    assert len(ran) == load.calls() - len(failed)  # every answered call ran, exactly once
    if load.errors:
        raise CallsFailed("%d of %d calls failed, e.g. %s" % (len(load.errors), load.calls(), load.errors[:3]))
