"""Why a connection's bytes were refused."""
from __future__ import annotations


class WireError(Exception):
    """Bytes the server will not decode.

    `reply_to` is (name, seqid, protocol) when the message header was read, so the client can be
    told with a TApplicationException; `fatal` means the byte stream lost its sync (or broke a
    limit) and the connection must close; a bad framed body is not fatal: the next frame starts
    where its length says. `theader` is the request's THeader frame info (theader.HeaderFrame)
    when the refusal must go back wrapped in a THeader frame.
    """

    # TApplicationException types a refusal maps to.
    PROTOCOL_ERROR = 7
    INVALID_MESSAGE_TYPE = 2

    def __init__(self, reason: str, fatal: bool = True, app_type: int = PROTOCOL_ERROR):
        super().__init__(reason)
        self.reason = reason
        self.fatal = fatal
        self.app_type = app_type
        self.reply_to = None
        self.theader = None
