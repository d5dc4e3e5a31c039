"""Middleware: hooks around every call, applied in order.

A middleware is any object with one or both of these methods, plain or `async def`:

    before(call)                    the call's CallContext, after its arguments decoded and
                                    before its handler runs; raise a TApplicationException to
                                    refuse the call (the client gets it; the handler never runs)
    after(call, outcome, seconds)   every call that was read, refused ones included (an
                                    unknown method's too, which never reached `before`:
                                    its call.service is None): outcome "ok", "exception"
                                    or "error", seconds since the call was read

`before` hooks run in the order given, `after` hooks in reverse. An `async` `before` makes every
call of the server take the coroutine path (plain handlers then run inside a task); an `async`
`after` is scheduled and not waited for. Anything else a hook raises is logged and answered
as INTERNAL_ERROR (`before`) or only logged (`after`): a broken hook never loses a reply.
Hooks get the call's context as their argument; `dracula.current_call()` returns it too
(a scheduled async `after` excepted: it runs later, in a copy of the context it was made in).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from thriftpy2.thrift import TApplicationException

from dracula.server.context import current
from dracula.wire.errors import AppError

if TYPE_CHECKING:
    from dracula.server.calls import Call
    from dracula.server.context import CallContext

log = logging.getLogger("dracula.middleware")
_scheduled: set[asyncio.Future[Any]] = set()  # fire-and-forget hooks still running on this loop

# A middleware is any object with `before` and/or `after` (no one type has both optional).
BeforeHook = Callable[["CallContext"], object]  # returns None or, async, an awaitable
AfterHook = Callable[["CallContext", str, float], object]


class Chain:
    """The server's middleware, sorted once by kind of hook."""

    def __init__(self, middleware: Iterable[object]) -> None:
        self.middleware = tuple(middleware)
        befores: list[BeforeHook] = [m.before for m in self.middleware if hasattr(m, "before")]
        self.sync_before: list[BeforeHook] = [hook for hook in befores if not inspect.iscoroutinefunction(hook)]
        self.async_before: list[BeforeHook] = [hook for hook in befores if inspect.iscoroutinefunction(hook)]
        if self.sync_before and self.async_before:
            # Order matters and a sync hook cannot wait for an async one: run all on the task.
            self.async_before, self.sync_before = befores, []
        self.after: list[AfterHook] = [m.after for m in reversed(self.middleware) if hasattr(m, "after")]
        self.is_async = bool(self.async_before)
        # A loop to run coroutine hooks on: the thread backend starts one only when asked.
        self.needs_loop = self.is_async or any(inspect.iscoroutinefunction(hook) for hook in self.after)

    def before(self, call: Call) -> bool:
        """Run the plain `before` hooks; False when one refused the call (its reply is set)."""
        token = current.set(call)  # hooks may use dracula.current_call() like handlers
        try:
            for hook in self.sync_before:
                try:
                    hook(call.context)
                except Exception as e:
                    return self._refused(call, hook, e)
            return True
        finally:
            current.reset(token)

    async def before_async(self, call: Call) -> bool:
        for hook in self.async_before:
            try:
                result = hook(call.context)
                if inspect.isawaitable(result):
                    await result
            except Exception as e:
                return self._refused(call, hook, e)
        return True

    def finished(self, call: Call, seconds: float, loop: asyncio.AbstractEventLoop | None) -> None:
        token = current.set(call)
        try:
            for hook in self.after:
                try:
                    result = hook(call.context, call.outcome, seconds)
                    if inspect.isawaitable(result):
                        _schedule(result, loop)
                except Exception:
                    log.exception("middleware %s raised after %s", _name(hook), call.context.method)
        finally:
            current.reset(token)

    @staticmethod
    def _refused(call: Call, hook: BeforeHook, error: Exception) -> bool:
        if isinstance(error, TApplicationException):
            call.refuse(error.type, error.message or "refused by middleware")
        else:
            assert call.method is not None  # `before` hooks see admitted calls only
            log.error("middleware %s raised before %s", _name(hook), call.method.qualname, exc_info=error)
            call.refuse(AppError.INTERNAL_ERROR, "%s: %s" % (type(error).__name__, error))
        return False


def _schedule(awaitable: Awaitable[object], loop: asyncio.AbstractEventLoop | None) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # a thread of the thread backend or the blocking pool
        if loop is not None:
            asyncio.run_coroutine_threadsafe(_awaited(awaitable), loop)
        return
    task = asyncio.ensure_future(awaitable)
    _scheduled.add(task)  # held until done: the event loop keeps only weak references to tasks
    task.add_done_callback(_scheduled.discard)


async def _awaited(awaitable: Awaitable[object]) -> object:
    """Any awaitable as a coroutine: run_coroutine_threadsafe takes nothing else (an `after`
    hook may return a Future or any object with __await__)."""
    return await awaitable


def _name(hook: BeforeHook | AfterHook) -> str:
    owner = getattr(hook, "__self__", None)
    return type(owner).__name__ if owner is not None else str(getattr(hook, "__qualname__", repr(hook)))
