"""Which host takes a call: power of two choices on outstanding calls (Finagle's P2C) across the
hosts not ejected. A host that refuses connections or sheds is ejected for a backoff that doubles
with each failure in a row; when it ends the host is eligible again and its next call is the
probe (a success resets the backoff). A host added by a new DNS answer starts with no
outstanding calls, so P2C hands it its share at once: no connection age is needed to rebalance.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Sequence
from typing import Generic, TypeVar

from dracula.client.addresses import Endpoint

P = TypeVar("P")  # the per-host pool


class Host(Generic[P]):
    __slots__ = ("endpoint", "label", "pool", "outstanding", "ejected_until", "failures", "calls")

    def __init__(self, endpoint: Endpoint, pool: P) -> None:
        self.endpoint = endpoint
        self.label = "%s:%d" % endpoint  # "ip:port", as hooks and metrics see it
        self.pool = pool
        self.outstanding = 0  # calls in flight on this host
        self.ejected_until = 0.0
        self.failures = 0  # ejecting failures in a row
        self.calls = 0  # attempts sent here, ever

    def __repr__(self) -> str:
        return "<Host %s outstanding=%d>" % (self.label, self.outstanding)


class Balancer(Generic[P]):
    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        new_pool: Callable[[Endpoint], P],
        eject_base: float = 0.1,
        eject_max: float = 10.0,
    ) -> None:
        self.new_pool = new_pool
        self.eject_base = eject_base
        self.eject_max = eject_max
        self.hosts: list[Host[P]] = []
        self._random = random.Random()
        self.update(endpoints)

    def update(self, endpoints: Sequence[Endpoint]) -> list[Host[P]]:
        """Hosts become exactly `endpoints` (kept ones keep their pools and state); returns the
        hosts removed, for their pools to be closed."""
        if not endpoints:
            return []  # an empty answer keeps the hosts we had rather than fail every call
        by_endpoint = {host.endpoint: host for host in self.hosts}
        kept: list[Host[P]] = []
        for endpoint in dict.fromkeys(endpoints):
            host = by_endpoint.pop(endpoint, None)
            kept.append(host if host is not None else Host(endpoint, self.new_pool(endpoint)))
        self.hosts = kept
        return list(by_endpoint.values())

    def pick(self, avoid: Collection[Host[P]] = ()) -> Host[P]:
        """A host for the next attempt: P2C among the healthy hosts not in `avoid` (those already
        tried by this call), else among all healthy ones, else the ejected host due back first."""
        hosts = self.hosts
        if len(hosts) == 1:
            return hosts[0]  # what the rest would choose, healthy or ejected
        now = time.monotonic()
        healthy = [h for h in hosts if h.ejected_until <= now]
        fresh = [h for h in healthy if h not in avoid] if avoid else healthy
        candidates = fresh or healthy
        if not candidates:
            return min(hosts, key=lambda h: h.ejected_until)
        if len(candidates) == 1:
            return candidates[0]
        a, b = self._random.sample(candidates, 2)
        if a.outstanding == b.outstanding:
            return a if a.calls <= b.calls else b
        return a if a.outstanding < b.outstanding else b

    def eject(self, host: Host[P]) -> None:
        """The host refused a connection or shed a call: leave it out for a growing backoff."""
        host.failures += 1
        backoff = min(self.eject_max, self.eject_base * 2 ** (host.failures - 1))
        host.ejected_until = time.monotonic() + backoff * (0.5 + self._random.random() / 2)

    def succeeded(self, host: Host[P]) -> None:
        if host.failures:
            host.failures = 0
            host.ejected_until = 0.0
