"""Logging set-up and the rate-limited refusal log.

Every refused connection or message gets one line naming the peer and the reason, but an
attacker must not be able to flood the log: past `burst` lines in a second, lines are counted
and one summary line reports how many were suppressed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from dracula.typedefs import Peer

log = logging.getLogger("dracula")


def configure(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("dracula").setLevel(level.upper())


class RefusalLog:
    """`refusals(peer, reason)` logs "refused PEER: REASON" on `dracula.refused`, at most
    `burst` lines a second (another logger and verb for other events, e.g. evictions)."""

    def __init__(
        self,
        burst: int = 20,
        clock: Callable[[], float] = time.monotonic,
        logger: str = "dracula.refused",
        verb: str = "refused",
        noun: str = "refusals",
    ) -> None:
        self.burst = burst
        self.clock = clock
        self.window = 0.0
        self.count = 0
        self.suppressed = 0
        self.lock = threading.Lock()
        self.log = logging.getLogger(logger)
        self.template = verb + " %s: %s"
        self.noun = noun

    def __call__(self, peer: Peer, reason: str) -> None:
        with self.lock:
            now = self.clock()
            if now - self.window >= 1.0:
                if self.suppressed:
                    self.log.warning("%d more %s in the last second were not logged", self.suppressed, self.noun)
                self.window = now
                self.count = 0
                self.suppressed = 0
            self.count += 1
            if self.count > self.burst:
                self.suppressed += 1
                return
        self.log.warning(self.template, format_peer(peer), reason)


def format_peer(peer: Peer) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return "%s:%s" % peer[:2]
    return str(peer or "unknown peer")
