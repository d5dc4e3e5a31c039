"""--max-connection-age: when each connection is due to be closed, so that pooled clients
reconnect and spread over instances added since they connected.

Each connection's age limit is jittered (up to 10% either way), so that a pool opened all at
once does not reconnect all at once. A backend closes a connection past its limit only at a
moment when it has no call in flight and none partly received: no call of it was read, so the
client may retry it once on a new connection (docs/fleet.md, "The guarantee").
"""

from __future__ import annotations

import random
from collections.abc import Collection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dracula.server.seams import ConnectionEntry

JITTER = 0.1


def retire_at(opened_at: float, max_age: float) -> float:
    """The monotonic time after which a connection opened at `opened_at` is closed when idle."""
    return opened_at + max_age * random.uniform(1 - JITTER, 1 + JITTER)


class Retirements:
    """The deadlines of a reactor's connections, drawn when a connection is first seen."""

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self._due: dict[ConnectionEntry, float] = {}

    def due(self, conn: ConnectionEntry, now: float) -> bool:
        at = self._due.get(conn)
        if at is None:
            at = self._due[conn] = retire_at(conn.opened_at, self.max_age)
        return now >= at

    def keep_only(self, connections: Collection[ConnectionEntry]) -> None:
        """Forget the connections that have closed."""
        if len(self._due) > len(connections):
            self._due = {conn: at for conn, at in self._due.items() if conn in connections}
