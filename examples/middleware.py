"""Example middleware for `dracula serve --middleware examples.middleware:CallLog`.

CallLog writes one line per call (service, method, outcome, milliseconds, peer) on the
`examples.middleware` logger; ReadOnly refuses every method whose name does not start with a
read-only verb, before its handler runs. See dracula/server/middleware.py for the hooks.
"""

from __future__ import annotations

import logging

from thriftpy2.thrift import TApplicationException

log = logging.getLogger("examples.middleware")


class CallLog:
    def after(self, call, outcome, seconds):
        log.info("call %s.%s %s in %.3f ms from %s", call.service, call.method, outcome, seconds * 1000.0, call.peer)


class ReadOnly:
    VERBS = ("get", "list", "lookup", "ping", "echo")

    def before(self, call):
        if not call.method.startswith(self.VERBS):
            raise TApplicationException(
                TApplicationException.UNKNOWN_METHOD, "%s is refused: this server is read-only" % call.method
            )
