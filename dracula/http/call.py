"""A call that came over HTTP: a calls.Call whose `reply` is the whole HTTP response.

The backends send `call.reply` wherever a Call leaves it (answered inline, by a task, from a
pool thread, at a timeout, refused); here it is the Thrift reply wrapped in its response: 200
with the request's content type, or 503 with Retry-After when the call was shed (LOADSHEDDING:
a proxy can retry elsewhere). The Thrift reply stays the body either way, so a client that
ignores the status still reads why. A oneway call gets an empty 200: HTTP answers every request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from thriftpy2.thrift import TApplicationException

from dracula.http.responses import RETRY_AFTER, response
from dracula.server.calls import Call
from dracula.wire.errors import AppError

if TYPE_CHECKING:
    import asyncio

    from dracula.http.session import HttpMessage
    from dracula.server.context import CallContext
    from dracula.server.state import ServerState
    from dracula.typedefs import Peer, PeerCert
    from dracula.wire.codec import Codec

LOADSHEDDING = AppError.LOADSHEDDING


class HttpCall(Call):
    __slots__ = ("_thrift", "_response", "_shed")
    _thrift: bytes | None  # the Thrift reply (what Call calls `reply`)
    _response: bytes | None  # made from it when first asked for

    def __init__(
        self,
        state: ServerState[Any],
        msg: HttpMessage,
        codec: Codec | None,
        framed: bool,
        peer: Peer,
        loop: asyncio.AbstractEventLoop | None,
        peer_cert: PeerCert | None = None,
    ) -> None:
        """Called as a Call is: the codec and framing are the request body's (the message's),
        whatever the connection passes."""
        self._shed = False
        # Call's own, named: super() would make a proxy object on every call.
        Call.__init__(self, state, msg, msg.codec, msg.framed, peer, loop, peer_cert)

    @property
    def reply(self) -> bytes | None:
        found: bytes | None = self._response
        if found is None:
            request = self.msg.request  # type: ignore[attr-defined]  # an HttpMessage
            body = self._thrift or b""
            status = 503 if self._shed else 200
            extra = request.extra + RETRY_AFTER if self._shed else request.extra
            found = response(status, body, request.content_type, request.keep_alive, extra)
            self._response = found
            observer = self.state.observer
            if observer is not None:
                observer.http_response(status)
        return found

    @reply.setter
    def reply(self, thrift: bytes | None) -> None:
        self._thrift = thrift
        self._response = None

    @property
    def context(self) -> CallContext:
        """Call's, saying that the call came over HTTP."""
        made = self._context is None
        context = super().context
        if made:
            context.transport = "http"
        return context

    def refuse(self, app_type: int, message: str) -> bool:
        if app_type == LOADSHEDDING:
            self._shed = True
        return super().refuse(app_type, message)

    def finish(self, value: Any = None, error: BaseException | None = None) -> bytes | None:
        if isinstance(error, TApplicationException) and error.type == LOADSHEDDING:
            self._shed = True
        return super().finish(value, error)
