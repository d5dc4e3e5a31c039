"""Where a plain handler method runs on the reactor backend, learned from its calls.

thriftpy2 users write plain methods that wait on a database or another service. On the reactor
such a call stalls every connection, so plain methods are timed: one that holds the reactor past
--inline-budget on STRIKES calls runs in the thread pool from then on, with one log line that
says what it cost and how to make the choice explicit. Cheap methods (ping, most struct calls)
stay inline, where they are fastest. `@dracula.blocking` / `@dracula.inline` (or
--blocking-methods / --inline-methods) skip the learning.

A coroutine cannot be moved off its loop: one that holds the loop past the budget between two
awaits is logged once per method, and every such stretch counts in a metric.
"""

from __future__ import annotations

import gc
import logging
import time
import types
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any

from dracula.server.dispatch import BLOCKING, SYNC

if TYPE_CHECKING:
    from dracula.ops.observe import ServerObserver
    from dracula.server.dispatch import Method

log = logging.getLogger("dracula.dispatch")

# Calls past the budget before a method moves: one slow call may be a first call's warm-up
# (a connection opened, a module imported); the second says it is how the method is.
STRIKES = 2
# A method timed within the budget CALM times in a row is timed on one call in SAMPLE from then on.
CALM = 64
SAMPLE = 16

_perf_counter = time.perf_counter
_thread_time = time.thread_time

# When the last garbage collection ended: a call during which one ran is not held against its
# method (the pause was the collector's, not the handler's). Kept by a gc callback, so that a
# call reads no clock of its own for it.
last_collection = [0.0]


def _collection_ended(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop":
        last_collection[0] = _perf_counter()


class Placement:
    """The learning policy of one server: its budget, and what it reports."""

    def __init__(self, budget: float, observer: ServerObserver | None = None) -> None:
        self.budget = budget
        self.observer = observer
        self.warned: set[str] = set()  # coroutine methods already logged
        if _collection_ended not in gc.callbacks:
            gc.callbacks.append(_collection_ended)

    def timed(self, method: Method, args: tuple[Any, ...]) -> Any:
        """Call a plain method inline, timing it (and, for a suspect, its CPU time: that tells
        waiting from computing). Once it has been calm for CALM calls, only one call in SAMPLE
        comes here (Call.run_inline counts `skip` down): timing is not free, and a method that
        starts to block is caught within SAMPLE calls, then timed on every call again."""
        suspect = method.strikes and method.calm < CALM
        cpu = _thread_time() if suspect else 0.0
        started = _perf_counter()
        try:
            return method.fn(*args)
        finally:
            held = _perf_counter() - started
            if held > self.budget:
                self.struck(method, started, held, _thread_time() - cpu if suspect else None)
            else:
                method.calm += 1
                if method.calm >= CALM:
                    method.skip = SAMPLE - 1

    def struck(self, method: Method, started: float, held: float, cpu: float | None) -> None:
        """A call of `method` that began at `started` held the reactor for `held` seconds, past
        the budget; `cpu`: how much of it on this thread's CPU, where it was measured."""
        if last_collection[0] > started:
            return  # the collector ran during the call
        if self.observer is not None:
            self.observer.loop_blocked(method.qualname, held)
        method.strikes += 1
        method.calm = method.skip = 0
        if method.strikes < STRIKES or method.kind is not SYNC:
            return
        method.kind = BLOCKING  # also what Call._start reads under async middleware
        if method.route is SYNC:
            method.route = BLOCKING
        if self.observer is not None:
            self.observer.method_moved(method.qualname)
        doing = (
            ""
            if cpu is None
            else " (%s: %.1f ms on the CPU)" % ("waiting" if cpu < held / 2 else "computing", cpu * 1e3)
        )
        log.warning(
            "%s held the reactor for %.1f ms%s, past --inline-budget %g ms on %d calls: it runs in the "
            "thread pool from now on. Mark it @dracula.blocking (or --blocking-methods %s) to start it "
            "there, or @dracula.inline (--inline-methods) to keep it on the reactor",
            method.qualname,
            held * 1e3,
            doing,
            self.budget * 1e3,
            method.strikes,
            method.qualname,
        )

    def stepped(self, method: Method, coroutine: Coroutine[Any, Any, Any]) -> Coroutine[Any, Any, Any]:
        """`coroutine`, timed between its awaits: a step that holds the loop past the budget
        is counted, and logged once per method."""
        return _stepped(self, method, coroutine)

    def _held_loop(self, method: Method, held: float) -> None:
        if self.observer is not None:
            self.observer.loop_blocked(method.qualname, held)
        if method.qualname not in self.warned:
            self.warned.add(method.qualname)
            log.warning(
                "coroutine %s held the loop for %.1f ms between two awaits (past --inline-budget %g ms); "
                "a coroutine cannot be moved off the loop: await its slow work (or run it with "
                "asyncio.to_thread), or make the method a plain one",
                method.qualname,
                held * 1e3,
                self.budget * 1e3,
            )


@types.coroutine
def _stepped(placement: Placement, method: Method, coroutine: Coroutine[Any, Any, Any]) -> Generator[Any, Any, Any]:
    # What asyncio's debug mode does for slow callbacks, for one coroutine: drive it a step at a
    # time (each yield passes a future to the task running us, each send/throw passes back).
    budget = placement.budget
    send, throw = coroutine.send, coroutine.throw
    value: Any = None
    error: BaseException | None = None
    while True:
        started = _perf_counter()
        try:
            yielded = send(value) if error is None else throw(error)
        except StopIteration as stop:
            return stop.value
        finally:  # also when it returned or raised
            value = error = None
            held = _perf_counter() - started
            if held > budget:
                placement._held_loop(method, held)
        try:
            value = yield yielded
        except GeneratorExit:
            coroutine.close()
            raise
        except BaseException as e:  # a cancellation, or an error the task delivers
            error = e
