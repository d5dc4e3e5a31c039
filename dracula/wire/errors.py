"""Why a connection's bytes were refused."""
from __future__ import annotations


class WireError(Exception):
    """Bytes the server will not decode; the client gets a PROTOCOL_ERROR where it can.

    `reply_to` is the message header (name, message type, seqid, body offset) when it was read,
    so the client can be told with a TApplicationException; `fatal` means the byte stream lost
    its sync (or broke a limit) and the connection must close; a bad framed body is not fatal:
    the next frame starts where its length says.
    """

    def __init__(self, reason: str, fatal: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.fatal = fatal
        self.reply_to = None
