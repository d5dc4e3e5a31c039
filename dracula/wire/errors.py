"""Why a connection's bytes were refused."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dracula.wire.theader import HeaderFrame

PROTOCOL_ERROR = 7  # TApplicationException types a refusal maps to; theader.py adds its own


class WireError(Exception):
    """Bytes the server will not decode; the client gets a TApplicationException of `app_type`
    where it can.

    `reply_to` is the message header (name, message type, seqid, body offset) when it was read,
    so the client can be told; `fatal` means the byte stream lost its sync (or broke a limit)
    and the connection must close; a bad framed body is not fatal: the next frame starts where
    its length says. `theader` is the request's THeader frame info (theader.HeaderFrame) when
    the refusal must go back wrapped in a THeader frame.
    """

    def __init__(self, reason: str, fatal: bool = True, app_type: int = PROTOCOL_ERROR):
        super().__init__(reason)
        self.reason = reason
        self.fatal = fatal
        self.app_type = app_type
        self.reply_to: tuple[bytes, int, int, int] | None = None
        self.theader: HeaderFrame | None = None
