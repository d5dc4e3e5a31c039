"""Closed-loop client load through the fleet: each thread one pooled connection, calls that
retry once on a connection closed while idle (retry.py), and an account of every call."""

from __future__ import annotations

import threading

from examples.fleet.retry import RetryingThriftpy2


class Load:
    """`connections` threads calling `method` through host:port until stop(): `ok` answered
    calls, `retried` calls sent twice, `failed` (after that one retry) with their errors.
    `interval`: seconds each connection waits between calls (0: closed loop); paced, the calls
    an instance serves follow the connections it holds, not how much CPU it gets."""

    def __init__(
        self,
        service,
        host: str,
        port: int,
        connections: int,
        method="ping",
        expect="pong",
        timeout_ms=10000,
        interval: float = 0.0,
    ):
        self.ok = self.retried = 0
        self.failed: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._args = (service, host, port, method, expect, timeout_ms)
        self._interval = interval
        self.threads = [
            threading.Thread(target=self._run, daemon=True, name="fleet-load-%d" % i) for i in range(connections)
        ]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        service, host, port, method, expect, timeout_ms = self._args
        client = RetryingThriftpy2(service, host, port, timeout=timeout_ms)
        try:
            while not self._stopping.is_set():
                try:
                    value = getattr(client, method)()
                    error = None if value == expect else "wrong reply %r" % (value,)
                except Exception as e:
                    error = "%s: %s" % (type(e).__name__, e)
                    client.close()
                with self._lock:
                    if error is None:
                        self.ok += 1
                    else:
                        self.failed.append(error)
                    self.retried, client.retries = self.retried + client.retries, 0
                if self._interval:
                    self._stopping.wait(self._interval)
        finally:
            client.close()

    def stop(self, timeout=30.0) -> None:
        self._stopping.set()
        for thread in self.threads:
            thread.join(timeout)

    def summary(self) -> str:
        return "%d calls answered, %d sent twice (connection closed while idle), %d failed" % (
            self.ok,
            self.retried,
            len(self.failed),
        )
