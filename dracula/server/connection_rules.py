"""The per-connection rules both backends follow, written once: when a connection is closed
for a limit and what its one log line says, what a drain says, when unsent replies count
against the memory budget, which thread pool @blocking handlers get and when a call is shed at
its door.

Each verdict logs its line and returns what to do; a backend only finds out which limit was
hit, by its own means (the reactor's sweeper compares clocks; a connection's thread hears it
from a receive that timed out), and acts on the answer. Lines a client caused go to the
refusal log (`dracula.refused`); the ordinary closes are debug lines on the backend's logger.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dracula.ops.logs import format_peer
from dracula.ops.overload import Overloaded, pool_job
from dracula.server.dispatch import BLOCKING
from dracula.server.thread_pool import HandlerPool

if TYPE_CHECKING:
    from dracula.config import Config
    from dracula.server.calls import Call
    from dracula.server.state import ServerState
    from dracula.typedefs import Peer


class Verdict(enum.Enum):
    ABORT = "abort"  # drop it now: a client broke a limit (its refusal line is logged)
    CLOSE = "close"  # close it between calls: the client may retry on a new connection


ABORT, CLOSE = Verdict.ABORT, Verdict.CLOSE


def expired(
    state: ServerState[Any],
    log: logging.Logger,
    peer: Peer,
    *,
    starved: bool = False,
    incomplete: bool = False,
    aged: bool = False,
    idle: bool = False,
) -> Verdict | None:
    """The verdict on a connection past a time limit, the first that applies: its message
    waited past BUDGET_WAIT for memory, its request is still incomplete after
    --request-timeout, it is older than --max-connection-age, it was idle for --idle-timeout
    (None: none was passed)."""
    if starved:
        budget = state.budget
        assert budget is not None  # only a budget makes a message wait for memory
        state.refusals(
            peer,
            "waited %gs for memory (--max-buffer-memory spent): its message cannot "
            "progress, closing the connection" % budget.wait_limit,
        )
        return ABORT
    if incomplete:
        state.refusals(peer, "request still incomplete after %gs" % state.config.request_timeout)
        return ABORT
    if aged:
        log.debug("closing %s: older than --max-connection-age", format_peer(peer))
        return CLOSE
    if idle:
        log.debug("closing %s: idle for %gs", format_peer(peer), state.config.idle_timeout)
        return CLOSE
    return None


def charge_unsent(state: ServerState[Any], peer: Peer, size: int, waiting: str) -> bool:
    """Reply bytes that may wait for a client that does not read count against the process's
    memory budget while they wait: True when charged (the caller gives them back once sent),
    False (logged) when the budget is spent and the connection must close rather than let the
    sum of all write buffers grow. `waiting` says where they wait ("unread", "to send")."""
    budget = state.budget
    assert budget is not None  # the caller checked that there is one
    if budget.try_take(size):
        return True
    state.refusals(peer, "%d reply bytes %s and --max-buffer-memory spent: closing the connection" % (size, waiting))
    return False


def drain_grace(config: Config) -> float:
    """How long a draining server keeps a THeader connection whose replies say `:drain` open
    for its client to close it: --drain-grace, within --graceful-timeout."""
    return min(config.drain_grace, config.graceful_timeout)


def draining(log: logging.Logger, busy: int) -> None:
    """A drain began with `busy` connections answering calls (the idle ones are closing)."""
    log.info("draining %d connection(s) with requests in flight", busy)


def drain_timed_out(log: logging.Logger, left: int) -> None:
    """--graceful-timeout passed with `left` connections still open: they are closed now."""
    log.warning("graceful timeout: closing %d connection(s) with requests in flight", left)


def handler_pool(state: ServerState[Any]) -> HandlerPool:
    """The pool @blocking handlers (and plain methods that placement moves off the reactor) run
    in. It starts no thread until a call needs one."""
    return HandlerPool(state.config.blocking_threads, state.observer)


def pool_for_timeouts(state: ServerState[Any]) -> HandlerPool | None:
    """With a thread per connection every handler is already off any loop: a pool is needed
    only to stop waiting for a @blocking handler at --handler-timeout."""
    config = state.config
    if config.handler_timeout and any(m.kind == BLOCKING for m in state.methods.values()):
        return handler_pool(state)
    return None


def pool_job_or_shed(call: Call, state: ServerState[Any]) -> Callable[[], Any] | None:
    """What a pool thread runs for this call (overload.pool_job), or None when the call is shed
    at the pool's door because its queue is too long: the call is then finished, its
    LOADSHEDDING reply in `call.reply`."""
    try:
        return pool_job(call, state.overload)
    except Overloaded as e:
        call.finish(error=e)
        return None
