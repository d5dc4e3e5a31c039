"""Load shedding: --max-requests (calls in flight per process) and --queue-timeout (time a call
may wait before its handler starts). Past either, a call is answered at once with an
"overloaded" TApplicationException instead of running: answering early and cheaply keeps
goodput up where running calls whose clients have already given up would collapse it.

The type is 11, which fbthrift names LOADSHEDDING; Apache Thrift stops at 10, and its
clients (and thriftpy2's) raise a TApplicationException carrying type 11 and the message.

Nothing here runs when both options are off: ServerState.overload is then None. ShedShare is
the supervisor's view of its workers' shedding, for /healthz (--unhealthy-when-shedding).
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from thriftpy2.thrift import TApplicationException

from dracula.wire.errors import AppError

if TYPE_CHECKING:
    from dracula.config import Config
    from dracula.ops.observe import ServerObserver
    from dracula.server.calls import Call

log = logging.getLogger("dracula.overload")

MAX_REQUESTS, QUEUE_TIMEOUT = "max_requests", "queue_timeout"
# /healthz (with --unhealthy-when-shedding) fails while more than this share of the calls of
# the last second (this one-second window and the one before) were shed.
HARD_SHEDDING = 0.5
# A @blocking call whose predicted wait for a pool thread is past this share of the queue
# timeout is refused at the door: the prediction is rough (run times vary), and a margin keeps
# admitted calls from waiting past the timeout and being refused late, after the wait.
DOOR_SHARE = 0.5


class ShedShare:
    """Whether calls are shed hard, seen from outside the processes that shed them: the
    supervisor, from its workers' summed counters (`totals()`: calls answered, calls shed).
    Sampled about once a second; the last three samples span the last two seconds, as
    Overload.shedding_hard counts in a worker."""

    def __init__(self, totals: Callable[[], tuple[float, float]]) -> None:
        self.totals = totals
        self.samples: collections.deque[tuple[float, float, float]] = collections.deque(maxlen=3)
        self.lock = threading.Lock()  # sample() in the supervisor's loop, hard() in /healthz's thread

    def sample(self) -> None:
        now = time.monotonic()
        if self.samples and now - self.samples[-1][0] < 1.0:
            return
        try:
            calls, shed = self.totals()
        except Exception:  # e.g. a worker's metrics file half-created: the next second will do
            log.debug("cannot read the workers' call counts", exc_info=True)
            return
        with self.lock:
            self.samples.append((now, calls, shed))

    def hard(self) -> bool:
        with self.lock:
            if len(self.samples) < 2:
                return False
            (_, calls_before, shed_before), (_, calls, shed) = self.samples[0], self.samples[-1]
        calls -= calls_before
        shed -= shed_before
        return calls > 0 and shed > HARD_SHEDDING * calls


class Overloaded(TApplicationException):
    """Raised where a call is shed; answered like any TApplicationException."""

    def __init__(self, reason: str) -> None:
        super().__init__(AppError.LOADSHEDDING, overloaded_message(reason))
        self.reason = reason


def overloaded_message(reason: str) -> str:
    return "server overloaded (%s): try again later" % reason


class Overload:
    """The in-flight count and the shedding record shared by every connection of a process."""

    def __init__(
        self, max_requests: int | None, queue_timeout: float, threads: int = 1, observer: ServerObserver | None = None
    ) -> None:
        self.max_requests = max_requests
        self.queue_timeout = queue_timeout
        self.observer = observer
        self.in_flight = 0
        # The @blocking pool's queue: calls waiting for a thread, the threads, and a moving
        # average of a handler's run time; together they predict a newcomer's wait.
        self.pool_queued = 0
        self.pool_threads = threads
        self.run_time = 0.0
        self.lock = threading.Lock()  # pool threads and the threaded backend's connections
        # Calls admitted and shed in this one-second window and the last one (for /healthz).
        self.window = 0.0
        self.admitted = self.shed_now = 0
        self.last_admitted = self.last_shed = 0

    def enter(self) -> str | None:
        """Count a call in; the reason it is shed instead (it is then not counted)."""
        with self.lock:
            self._tick()
            if self.max_requests is not None and self.in_flight >= self.max_requests:
                self.shed_now += 1
                reason = MAX_REQUESTS
            else:
                self.in_flight += 1
                self.admitted += 1
                return None
        self._shed_observed(reason)
        return reason

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def waited_too_long(self, started: float) -> Overloaded | None:
        """The exception for a call that has waited past --queue-timeout since `started`
        (perf_counter), or None when it may run."""
        if not self.queue_timeout or time.perf_counter() - started <= self.queue_timeout:
            return None
        with self.lock:
            self._tick()
            self.shed_now += 1
        self._shed_observed(QUEUE_TIMEOUT)
        return Overloaded("waited over %gs to start" % self.queue_timeout)

    def shedding_hard(self) -> bool:
        """More than HARD_SHEDDING of the recent calls were shed."""
        with self.lock:
            self._tick()
            shed = self.last_shed + self.shed_now
            total = self.last_admitted + self.admitted + shed
            return total > 0 and shed > HARD_SHEDDING * total

    def _tick(self) -> None:
        now = time.monotonic()
        if now - self.window >= 1.0:
            if now - self.window >= 2.0:  # a quiet second in between: nothing was shed in it
                self.last_admitted = self.last_shed = 0
            else:
                self.last_admitted, self.last_shed = self.admitted, self.shed_now
            self.window = now
            self.admitted = self.shed_now = 0

    def _shed_observed(self, reason: str) -> None:
        if self.observer is not None:
            self.observer.call_shed(reason)

    def predicted_wait(self) -> float:
        """Seconds a @blocking call queued now would wait for a pool thread (an estimate)."""
        return self.pool_queued * self.run_time / self.pool_threads

    def check_door(self) -> None:
        """Raise Overloaded for a @blocking call whose predicted queue wait is past DOOR_SHARE
        of the queue timeout: its client learns in microseconds, not after the wait it would
        be refused for."""
        wait = self.predicted_wait()
        if wait <= DOOR_SHARE * self.queue_timeout:
            return
        with self.lock:
            self._tick()
            self.shed_now += 1
        self._shed_observed(QUEUE_TIMEOUT)
        raise Overloaded("a wait of about %.2gs for a thread" % wait)


def make_overload(config: Config, observer: ServerObserver | None = None) -> Overload | None:
    if config.max_requests is None and not config.queue_timeout:
        return None
    return Overload(config.max_requests, config.queue_timeout, config.blocking_threads, observer)


def pool_job(call: Call, overload: Overload | None) -> Callable[[], Any]:
    """What a pool thread runs for a @blocking call: call.run_blocking, or (with a queue
    timeout) that behind a check of how long the call waited for a thread. Raises Overloaded
    when the call is shed at the door instead."""
    if overload is None or not overload.queue_timeout:
        return call.run_blocking
    overload.check_door()
    with overload.lock:
        overload.pool_queued += 1
    return functools.partial(_queued, overload, call)


def _queued(overload: Overload, call: Call) -> Any:
    with overload.lock:
        overload.pool_queued -= 1
    late = overload.waited_too_long(call.started)
    if late is not None:
        raise late
    began = time.perf_counter()
    try:
        return call.run_blocking()
    finally:  # a float store: a lost update between threads only skews the average slightly
        overload.run_time = 0.8 * overload.run_time + 0.2 * (time.perf_counter() - began)
