"""--health-method: a health check on the serving port, without touching the user's IDL.

Envoy's Thrift health checker (`envoy.health_checkers.thrift`) calls a method on the port it
balances, and fb303 clients call `getStatus`. The method named here takes no arguments and
returns an i32, fb303's fb_status ALIVE (2), while the server is healthy; while it drains (for
--drain-delay) or sheds hard (--unhealthy-when-shedding), the call gets a LOADSHEDDING
TApplicationException instead, which fails the check: what /healthz says, on the Thrift port.
The check is answered on the reactor, before middleware and load shedding: it is neither
logged, counted nor shed.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from thriftpy2.parser.parser import parse_fp
from thriftpy2.thrift import TApplicationException

from dracula.server.dispatch import SYNC, Method
from dracula.wire.errors import AppError

ALIVE = 2  # fb303's fb_status.ALIVE
SERVICE = "DraculaHealth"


def health_method(name: str, problem: Callable[[], str | None]) -> Method:
    """The Method answering `name`; `problem()` says why the server is unhealthy (None: it
    is healthy)."""
    idl = "service %s { i32 %s() }" % (SERVICE, name)
    # Not cached by module name (load_fp would be): each server may name its own method.
    service = parse_fp(io.StringIO(idl), "dracula_health_thrift", enable_cache=False).DraculaHealth

    def check() -> int:
        why = problem()
        if why is not None:
            raise TApplicationException(AppError.LOADSHEDDING, why)
        return ALIVE

    method = Method(SERVICE, service, name, check, kind=SYNC)
    method.internal = True
    return method
