"""Which failed attempts may be sent again, and the budget that caps how many are.

Safe by construction: an attempt is retried only when the call provably did not run (the
connect failed, the connection had ended or been announced closed before the request was
written, or the server shed the call with LOADSHEDDING), or when the method is declared
idempotent and the request was cut off before any reply byte. A timed-out call is not retried:
its deadline is spent.

The budget is Finagle's RetryBudget: over a sliding window of `ttl` seconds, retries may add
`percent` of the calls made plus `floor` per second (so a quiet client can still retry), and no
more: in an outage every call fails once instead of `max_attempts` times.
"""

from __future__ import annotations

import threading
import time

from dracula.client.errors import CutOff, NotSent, is_shed


def retryable(error: BaseException, idempotent: bool) -> bool:
    """May the call that failed with `error` be sent again (to another host where possible)?"""
    if isinstance(error, NotSent) or is_shed(error):
        return True
    return idempotent and isinstance(error, CutOff)


class RetryBudget:
    """Thread-safe: `deposit()` once per call, `withdraw()` (True: retry allowed) per retry."""

    BUCKETS = 10

    def __init__(self, percent: float = 0.2, floor: float = 10.0, ttl: float = 10.0) -> None:
        if not 0.0 <= percent <= 1000.0:
            raise ValueError("retry percent must be between 0 and 1000")
        self.percent = percent
        self.floor = floor
        self.ttl = ttl
        self._width = ttl / self.BUCKETS
        self._calls = [0] * self.BUCKETS
        self._retries = [0] * self.BUCKETS
        self._epoch = self._now()
        self._lock = threading.Lock()
        self.retried = 0  # retries granted, ever
        self.refused = 0  # retries the budget refused, ever

    def _now(self) -> int:
        return int(time.monotonic() / self._width)

    def _advance(self) -> int:
        now = self._now()
        gap = now - self._epoch
        if gap > 0:
            for i in range(1, min(gap, self.BUCKETS) + 1):
                slot = (self._epoch + i) % self.BUCKETS
                self._calls[slot] = self._retries[slot] = 0
            self._epoch = now
        return now % self.BUCKETS

    def deposit(self) -> None:
        now = int(time.monotonic() / self._width)
        if now != self._epoch:
            with self._lock:
                self._advance()
        # Without the lock: two threads may count one call between them, and the budget is
        # then one call smaller; it is a bound, not a ledger, and this is every call's path.
        self._calls[now % self.BUCKETS] += 1

    def withdraw(self) -> bool:
        with self._lock:
            slot = self._advance()
            allowed = self.floor * self.ttl + self.percent * sum(self._calls)
            if sum(self._retries) + 1 > allowed:
                self.refused += 1
                return False
            self._retries[slot] += 1
            self.retried += 1
            return True

    def balance(self) -> float:
        """Retries the budget would grant now."""
        with self._lock:
            self._advance()
            return self.floor * self.ttl + self.percent * sum(self._calls) - sum(self._retries)
