"""One HTTP connection's requests, turned into what its backend does next: run a call (an
HttpMessage, the Thrift message its body held) or send a response as it is (an HTTP error,
100 Continue). Sans-IO: both backends feed it the bytes they receive and take what it has.

A body is one whole Thrift message, read by the wire layer as a message on a socket is (detected
per request: binary, compact or a THeader frame; every limit of the scanners applies). The
path's first segment selects a service registered under that name (as a multiplexed client's
`NAME:method` does on a socket); any other path is the default service.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from dracula.http.parser import Refusal, RequestParser
from dracula.http.request import HttpRequest
from dracula.http.responses import error, response
from dracula.server.calls import refuse_wire
from dracula.wire.detect import HEAD_BYTES, Wire, detect
from dracula.wire.errors import WireError
from dracula.wire.reader import Message, Reader

if TYPE_CHECKING:
    from dracula.server.state import ServerState
    from dracula.typedefs import ArgSpecs, Peer
    from dracula.wire.codec import Codec

ALLOW_POST = ((b"Allow", b"POST"),)


class HttpMessage(Message):
    """A Thrift message that came in an HTTP request: the request (its headers, deadline and
    response's content type), the codec of the body's protocol and whether the body was
    framed go with it. `meta`: the THeader frame when the body was one, else the request."""

    __slots__ = ("request", "codec", "framed")

    def __init__(self, msg: Message, request: HttpRequest, codec: Codec, name: bytes, framed: bool) -> None:
        super().__init__(name, msg.mtype, msg.seqid, msg.body, msg.header, msg.header or request)
        self.request = request
        self.codec = codec
        self.framed = framed  # a framed body gets a framed reply, as on a socket


class Routes:
    """A server's services by the name an HTTP path gives them, built once per server: the
    scanners' argument specs as that service's method names resolve."""

    def __init__(self, state: ServerState[Any]) -> None:
        specs = state.arg_specs
        self.specs: dict[bytes, ArgSpecs] = {b"": specs}
        for key in specs:
            service, colon, _ = key.partition(b":")
            if colon and service not in self.specs:
                prefix = service + b":"
                own = {name[len(prefix) :]: spec for name, spec in specs.items() if name.startswith(prefix)}
                self.specs[service] = {**specs, **own}


_routes: weakref.WeakKeyDictionary[ServerState[Any], Routes] = weakref.WeakKeyDictionary()


def routes_for(state: ServerState[Any]) -> Routes:
    routes = _routes.get(state)
    if routes is None:
        routes = _routes[state] = Routes(state)
    return routes


class HttpSession:
    """`partial`: a request is partly received; `closing`: nothing after what was taken will
    be answered: close once the responses are sent."""

    def __init__(self, state: ServerState[Any], peer: Peer) -> None:
        self.state = state
        self.peer = peer
        self.routes = routes_for(state)
        self.parser = RequestParser(state.config.max_frame_size, state.budget)
        self.closing = False
        self._readers: dict[tuple[Wire, bytes], Reader] = {}

    @property
    def partial(self) -> bool:
        return self.parser.in_request

    @property
    def waiting(self) -> bool:
        """Requests received and not taken yet."""
        return bool(self.parser.done) and not self.closing

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if not self.closing:
            self.parser.feed(data)

    def close(self) -> None:
        """The connection closed: give back what the budget lent."""
        self.parser.give_back()

    def take(self) -> HttpMessage | bytes | None:
        """The next thing to answer, in request order: a call to run, or response bytes to send;
        None when nothing (more) is to be answered yet."""
        done = self.parser.done
        if self.closing or not done:
            return None
        item = done.popleft()
        if isinstance(item, bytes):
            return item
        if isinstance(item, Refusal):
            return self._refuse(item)
        self.parser.give_back()
        if not item.keep_alive or self.state.draining:  # a drain says so before it closes
            item.keep_alive = False
            self.closing = True
        return self._message(item)

    def _refuse(self, refusal: Refusal, request: HttpRequest | None = None) -> bytes:
        """An HTTP error, with its one refusal line."""
        keep_alive = not refusal.close and request is not None and request.keep_alive
        if not keep_alive:
            self.closing = True
        closing = "" if keep_alive else ", closing the connection"
        self.state.refusals(self.peer, "HTTP: %s (answered %d%s)" % (refusal.reason, refusal.status, closing))
        if self.state.observer is not None:
            self.state.observer.http_response(refusal.status)
        return error(refusal.status, refusal.reason, keep_alive, refusal.extra)

    def _message(self, request: HttpRequest) -> HttpMessage | bytes:
        if request.method != b"POST":
            method = request.method.decode("latin-1")
            return self._refuse(Refusal(405, "%s: only POST is served" % method, False, ALLOW_POST), request)
        if request.json:
            return self._refuse(Refusal(415, "TJSONProtocol is not served", False), request)
        body = request.body
        service = request.service
        if service not in self.routes.specs:
            service = b""
        try:
            wire = detect(body[:HEAD_BYTES])
            if wire is None:
                raise WireError("a body of %d bytes holds no Thrift message" % len(body))
        except WireError as e:
            return self._refuse(Refusal(400, "body: %s" % e.reason, False), request)
        key = (wire, service)
        reader = self._readers.pop(key, None)
        if reader is None:
            reader = Reader.for_config(self.state.config, self.routes.specs[service])
        reader.buf, reader.start, reader.end = body, 0, len(body)
        try:
            msg = reader.next_message()
            if msg is None:  # the scanner wants more bytes: there are none, the body is all
                scanner = reader.scanner
                header = scanner.header if scanner is not None else None
                raise WireError("the body ends inside its Thrift message").at(header)
        except WireError as e:  # the scanner's state is left as the error found it: not reused
            if e.reply_to is None:
                return self._refuse(Refusal(400, "body: %s" % e.reason, False), request)
            # Refused with a Thrift answer, as on a socket; the HTTP framing holds: not fatal.
            reply = refuse_wire(self.state, e.at(e.reply_to, fatal=False), wire, self.peer)
            return response(200, reply or b"", request.content_type, request.keep_alive)
        finally:
            reader.buf = None  # the message holds its own copy of its arguments
        left = reader.end - reader.start
        reader.start = reader.end = 0
        if left:
            return self._refuse(Refusal(400, "%d bytes follow the Thrift message" % left, False), request)
        self._readers[key] = reader
        name = msg.name
        if service and b":" not in name:
            name = service + b":" + name
        return HttpMessage(msg, request, self.state.codec_for(wire.protocol), name, wire.frames_replies)
