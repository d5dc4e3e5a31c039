"""What a client call can fail with, and whether the call may have run.

Every failure that says something about the connection is a TTransportException (thriftpy2's
clients raise those too, so existing `except` clauses keep working); a failure the server
answered is a TApplicationException. The retry policy reads two facts off each: did the request
leave this process (`written`), and did any byte of a reply come back (`answered`).
"""

from __future__ import annotations

from thriftpy2.thrift import TApplicationException
from thriftpy2.transport import TTransportException

LOADSHEDDING = 11  # fbthrift's TApplicationException types, which dracula's server sends
TIMEOUT = 12


class ClientError(TTransportException):
    """A call failed on its connection. `written`: the request may have reached the server."""

    written = True

    def __init__(self, message: str, kind: int = TTransportException.UNKNOWN) -> None:
        super().__init__(kind, message)
        self.message = message

    def __str__(self) -> str:
        return str(self.message)


class NotSent(ClientError):
    """The call provably did not run: the connection could not be made, or had ended (closed
    by the server, or announced closed with `:drain`) before the request was written."""

    written = False

    def __init__(self, message: str) -> None:
        super().__init__(message, TTransportException.NOT_OPEN)


class ConnectFailed(NotSent):
    """The connection could not be made (refused, unreachable, timed out): the host is ejected."""


class CutOff(ClientError):
    """The request was written and the connection ended before any byte of its reply: the call
    may or may not have run. Retried only for methods declared idempotent."""

    def __init__(self, message: str) -> None:
        super().__init__(message, TTransportException.END_OF_FILE)


class BadReply(ClientError):
    """The reply was not this call's (sequence id, method name or message type), was not Thrift,
    or broke a size limit. The connection is discarded; the call may have run."""


class CallTimeout(TApplicationException):
    """The call's deadline passed (type TIMEOUT, 12, as the server's own). Its connection, if a
    request was written on it, is discarded, so a late reply never reaches another call."""

    def __init__(self, message: str) -> None:
        super().__init__(TIMEOUT, message)


def is_shed(error: BaseException) -> bool:
    """A LOADSHEDDING reply: the server refused the call before running it."""
    return isinstance(error, TApplicationException) and error.type == LOADSHEDDING
