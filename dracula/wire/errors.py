"""Why a connection's bytes were refused, and the one table of TApplicationException types the
server answers with."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dracula.wire.theader_frame import HeaderFrame


class AppError(enum.IntEnum):
    """TApplicationException types, numbered and named as Apache Thrift's
    `TApplicationExceptionType` (0..10) and fbthrift's (11, 12) are. thriftpy2's
    TApplicationException stops at 7; every module of dracula takes the numbers from here."""

    UNKNOWN = 0
    UNKNOWN_METHOD = 1
    INVALID_MESSAGE_TYPE = 2
    WRONG_METHOD_NAME = 3
    BAD_SEQUENCE_ID = 4
    MISSING_RESULT = 5
    INTERNAL_ERROR = 6
    PROTOCOL_ERROR = 7
    INVALID_TRANSFORM = 8  # THeader: a transform the server does not serve
    INVALID_PROTOCOL = 9  # THeader: a protocol id the server does not speak
    UNSUPPORTED_CLIENT_TYPE = 10
    LOADSHEDDING = 11  # fbthrift: shed instead of run (--max-requests, --queue-timeout)
    TIMEOUT = 12  # fbthrift: past the client's deadline (THeader client_timeout)


def app_error_name(app_type: int) -> str:
    """The name of a TApplicationException type, or UNKNOWN(n) for a number not in the table."""
    try:
        return AppError(app_type).name
    except ValueError:
        return "UNKNOWN(%s)" % app_type


PROTOCOL_ERROR = AppError.PROTOCOL_ERROR  # what a refusal maps to unless it says otherwise


class WireError(Exception):
    """Bytes the server will not decode; the client gets a TApplicationException of `app_type`
    where it can.

    `reply_to` is the message header (name, message type, seqid, body offset) when it was read,
    so the client can be told; `fatal` means the byte stream lost its sync (or broke a limit)
    and the connection must close; a bad framed body is not fatal: the next frame starts where
    its length says. `theader` is the request's THeader frame info (theader.HeaderFrame) when
    the refusal must go back wrapped in a THeader frame.
    """

    def __init__(
        self,
        reason: str,
        fatal: bool = True,
        app_type: AppError = PROTOCOL_ERROR,
        reply_to: tuple[bytes, int, int, int] | None = None,
        theader: HeaderFrame | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fatal = fatal
        self.app_type = app_type
        self.reply_to = reply_to
        self.theader = theader

    def at(
        self,
        reply_to: tuple[bytes, int, int, int] | None,
        fatal: bool | None = None,
        theader: HeaderFrame | None = None,
    ) -> WireError:
        """The same refusal, complete with where it happened (the reader knows the message
        header and the frame; the scanner that raised does not): a new error, raised
        `from None` in this one's place. `fatal` and `theader` stay as they were unless given."""
        return WireError(
            self.reason,
            self.fatal if fatal is None else fatal,
            self.app_type,
            reply_to,
            self.theader if theader is None else theader,
        )


class HttpDetected(WireError):
    """The connection's first bytes are an HTTP request line (detect.py): a backend serving
    Thrift over HTTP hands the connection to dracula/http/; otherwise it is refused like any
    other foreign protocol (a close and one log line)."""

    def __init__(self) -> None:
        super().__init__("an HTTP request")
