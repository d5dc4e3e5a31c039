"""How long a call may take: the smallest of its own timeout, the client's, and what is left of
the dracula call being served (`dracula.current_call().deadline`), so deadlines pass down a
chain of services; over THeader the time left travels as `client_timeout` (milliseconds)."""

from __future__ import annotations

import math
import time
from typing import Any

from dracula.client.errors import CallTimeout
from dracula.server.context import current

_UNSET: Any = object()  # a call's `timeout` not given: the client's applies


def call_deadline(timeout: float | None) -> float | None:
    """The monotonic deadline of a call starting now. Raises CallTimeout when the served call
    it is made from has no time left: the call is not even attempted."""
    now = time.monotonic()
    deadline = None if timeout is None else now + timeout
    served = current.get(None)
    if served is not None:
        inherited = served.context.deadline
        if inherited is not None:
            if inherited <= now:
                raise CallTimeout("no time left of the calling request's deadline")
            if deadline is None or inherited < deadline:
                deadline = inherited
    return deadline


def left(deadline: float | None, what: str = "call") -> float | None:
    """Seconds left before `deadline` (None: no deadline); CallTimeout when none are."""
    if deadline is None:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise CallTimeout("%s deadline passed" % what)
    return remaining


def timeout_header(remaining: float | None) -> dict[str, str] | None:
    """The THeader `client_timeout` for a call with `remaining` seconds (at least 1 ms)."""
    if remaining is None:
        return None
    return {"client_timeout": str(max(1, math.ceil(remaining * 1000)))}


def request_headers(headers: dict[str, str] | None, remaining: float | None) -> dict[str, str] | None:
    """A THeader request's headers: the call's (set by hooks), and the time it has left."""
    timeout = timeout_header(remaining)
    if not headers:
        return timeout
    return {**headers, **timeout} if timeout else dict(headers)
