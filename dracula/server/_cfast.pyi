# Types of the compiled fast path (_cfast.pyx) for type checkers, which cannot read an extension
# module: what the backends and ServerState use of it.
from asyncio import AbstractEventLoop
from collections.abc import Coroutine
from typing import Any, TypeAlias, final

from dracula.server.calls import Call
from dracula.server.context import CallContext
from dracula.server.dispatch import Method
from dracula.server.state import ServerState
from dracula.typedefs import Peer, PeerCert
from dracula.wire.codec import Codec
from dracula.wire.reader import Message, Reader
from dracula.wire.theader_frame import HeaderFrame

# What PlainPath.answer() returns: the reply; the Message for the general path; (call,
# coroutine) for a plain handler that returned one; None until more bytes arrive.
Answer: TypeAlias = bytes | Message | tuple[Call, Coroutine[Any, Any, Any]] | None

@final
class FastCall:
    method: Method
    peer: Peer
    peer_cert: PeerCert | None
    meta: HeaderFrame | None
    deadline: float | None
    _context: CallContext | None
    @property
    def context(self) -> CallContext: ...

@final
class PlainCodec:
    def __init__(self, max_depth: int) -> None: ...

@final
class PlainPath:
    def __init__(
        self,
        state: ServerState[Any],
        reader: Reader,
        codec: Codec,
        plain: PlainCodec,
        peer: Peer,
        peer_cert: PeerCert | None,
        loop: AbstractEventLoop | None,
    ) -> None: ...
    def answer(self) -> Answer: ...
