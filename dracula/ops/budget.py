"""The process-wide memory budget (--max-buffer-memory): bytes that all connections together
may hold in receive buffers grown past their first 8 KiB for partly received messages, and in
replies their clients are not reading (past a connection's write high-water mark).

Only buffer growth is charged (wire/reader.py asks before it doubles a buffer, and gives the
bytes back when the buffer shrinks or the connection closes), so the lock here is taken on
resizes, never per read, and a request that fits the first buffer never waits. Growth that
does not fit waits in FIFO order: when memory is given back, the oldest waiters are granted
their bytes first and woken.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dracula.config import Config
    from dracula.ops.observe import ServerObserver

# Seconds a connection may wait for the budget before it is closed (one refusal line): past
# the budget, a large message that cannot progress must not hold its connection for ever.
BUDGET_WAIT = 10.0

Wake = Callable[[], None]  # called, from the thread that gave memory back, once a ticket is granted


class Ticket:
    """A request for `size` bytes; `granted` once they are charged to the requester."""

    __slots__ = ("size", "wake", "granted")

    def __init__(self, size: int, wake: Wake, granted: bool) -> None:
        self.size = size
        self.wake = wake
        self.granted = granted


class Budget:
    def __init__(self, limit: int, observer: ServerObserver | None = None) -> None:
        self.limit = limit
        self.used = 0
        self.waiters: collections.deque[Ticket] = collections.deque()  # not yet granted, oldest first
        self.lock = threading.Lock()
        self.observer = observer
        self.wait_limit = BUDGET_WAIT

    def request(self, size: int, wake: Wake) -> Ticket:
        """Charge `size` bytes now if they fit and nobody waits before us (ticket.granted);
        otherwise queue: wake() is called, from the thread that gives memory back, once the
        ticket has been granted."""
        with self.lock:
            fits = not self.waiters and self.used + size <= self.limit
            ticket = Ticket(size, wake, fits)
            if fits:
                self.used += size
            else:
                self.waiters.append(ticket)
            used, waiting = self.used, len(self.waiters)
        self._observe(used, waiting)
        return ticket

    def try_take(self, size: int) -> bool:
        """Charge `size` bytes if they fit now (replies waiting to be sent: they cannot wait
        in line, so they ask without queueing)."""
        with self.lock:
            if self.used + size > self.limit:
                return False
            self.used += size
            used, waiting = self.used, len(self.waiters)
        self._observe(used, waiting)
        return True

    def force(self, size: int) -> None:
        """Charge growth that could not be asked for first (it is counted, never refused)."""
        with self.lock:
            self.used += size
            used, waiting = self.used, len(self.waiters)
        self._observe(used, waiting)

    def give(self, size: int) -> None:
        """Give `size` charged bytes back and wake the waiters that now fit, oldest first."""
        with self.lock:
            self.used -= size
            woken = []
            waiters = self.waiters
            while waiters and self.used + waiters[0].size <= self.limit:
                ticket = waiters.popleft()
                ticket.granted = True
                self.used += ticket.size
                woken.append(ticket.wake)
            used, waiting = self.used, len(waiters)
        self._observe(used, waiting)
        for wake in woken:
            wake()

    def cancel(self, ticket: Ticket) -> None:
        """The requester closed: withdraw its ticket, or give back what it was granted."""
        with self.lock:
            if not ticket.granted:
                try:
                    self.waiters.remove(ticket)
                except ValueError:
                    pass
                ticket.granted = True  # nothing is owed either way
                return
        self.give(ticket.size)

    def _observe(self, used: int, waiting: int) -> None:
        if self.observer is not None:
            self.observer.budget_changed(used, waiting)


def make_budget(config: Config, observer: ServerObserver | None = None) -> Budget | None:
    return Budget(config.max_buffer_memory, observer) if config.max_buffer_memory else None
