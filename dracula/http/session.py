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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dracula.http import tjson
from dracula.http.cors import Cors, sent_without_preflight
from dracula.http.parser import Refusal, RequestParser
from dracula.http.request import HttpRequest
from dracula.http.responses import RETRY_AFTER, error, response
from dracula.server.calls import refuse_wire
from dracula.wire.detect import UNFRAMED_BINARY, Wire, detect
from dracula.wire.errors import WireError
from dracula.wire.reader import Message, Reader

if TYPE_CHECKING:
    from dracula.http.cors import Headers
    from dracula.server.state import ServerState
    from dracula.typedefs import ArgSpecs, Peer
    from dracula.wire.codec import Codec

ALLOW_POST = ((b"Allow", b"POST"),)
JSON_ARGS = b"{}"


class HttpMessage(Message):
    """A Thrift message that came in an HTTP request: the request (its headers, deadline and
    response's content type), the codec of the body's protocol and whether the body was
    framed go with it. `meta`: the THeader frame when the body was one, else the request."""

    __slots__ = ("request", "codec", "framed")

    def __init__(
        self, msg: Message, request: HttpRequest, codec: Codec | tjson.JsonCodec, name: bytes, framed: bool
    ) -> None:
        # Message's fields set here, not by its __init__: one call less per request.
        self.name = name
        self.mtype = msg.mtype
        self.seqid = msg.seqid
        self.body = msg.body
        header = self.header = msg.header
        self.meta = header or request
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

        origins = state.config.cors_origin
        self.cors = Cors(origins) if origins else None


def _ignore(data: bytes | bytearray | memoryview) -> None:
    pass


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
        self.routes = routes = routes_for(state)
        self.cors = routes.cors
        self.parser = RequestParser(state.config.max_frame_size, state.budget)
        self.closing = False
        # Bytes received: straight to the parser (one call less per read), until closing.
        self.feed: Callable[[bytes | bytearray | memoryview], None] = self.parser.feed
        self._readers: dict[tuple[Wire, bytes], Reader] = {}

    @property
    def partial(self) -> bool:
        return self.parser.in_request

    @property
    def waiting(self) -> bool:
        """Requests received and not taken yet."""
        return bool(self.parser.done) and not self.closing

    def _close(self) -> None:
        """Nothing more is answered: what arrives from now on is not parsed."""
        self.closing = True
        self.feed = _ignore

    def close(self) -> None:
        """The connection closed: give back what the budget lent."""
        self.parser.give_back()

    def take(self) -> HttpMessage | bytes | None:
        """The next thing to answer, in request order: a call to run, or response bytes to send;
        None when nothing (more) is to be answered yet."""
        parser = self.parser
        done = parser.done
        if self.closing or not done:
            return None
        item = done.popleft()
        if item.__class__ is not HttpRequest:
            if isinstance(item, bytes):
                return item
            assert isinstance(item, Refusal)  # what else the parser leaves
            return self._refuse(item)
        if parser.charged:
            parser.give_back()
        if not item.keep_alive or self.state.draining:  # a drain says so before it closes
            item.keep_alive = False
            self._close()
        return self._message(item)

    def _refuse(self, refusal: Refusal, request: HttpRequest | None = None) -> bytes:
        """An HTTP error, with its one refusal line (and the request's CORS headers: a page may
        read why)."""
        keep_alive = not refusal.close and request is not None and request.keep_alive
        if not keep_alive:
            self._close()
        closing = "" if keep_alive else ", closing the connection"
        self.state.refusals(self.peer, "HTTP: %s (answered %d%s)" % (refusal.reason, refusal.status, closing))
        if self.state.observer is not None:
            self.state.observer.http_response(refusal.status)
        extra = refusal.extra if request is None else request.extra + refusal.extra
        return error(refusal.status, refusal.reason, keep_alive, extra)

    def _message(self, request: HttpRequest) -> HttpMessage | bytes:
        origin = request.origin
        if origin is not None:  # a browser's request
            cors = self.cors
            allowed = None if cors is None else cors.allowed(origin)
            if allowed is not None:
                request.extra = allowed
            if cors is not None and request.method == b"OPTIONS" and "access-control-request-method" in request.headers:
                return self._preflight(request, origin, allowed)
            if allowed is None and sent_without_preflight(request.method, request.headers.get("content-type")):
                why = "a page of origin %s may not call this server (--cors-origin)" % origin[:200]
                return self._refuse(Refusal(403, why, False), request)
        if request.method != b"POST":
            method = request.method.decode("latin-1")
            return self._refuse(Refusal(405, "%s: only POST is served" % method, False, ALLOW_POST), request)
        if request.target == b"/":  # the usual path: no parsing
            service = b""
        else:
            service = request.service
            if service not in self.routes.specs:
                service = b""
        body = request.body
        # TJSONProtocol: said by the content type, or seen in the body (Apache's THttpClients
        # send it as application/x-thrift): no binary or compact message starts with "[", a
        # frame or name length that did would be over 1.5 GB.
        if request.json or body[:1] == b"[":
            return self._json(request, service)
        request.body = b""  # the call holds its arguments: the body is not held twice
        if body[:1] == b"\x80":  # strict binary, as detect() says at once: without a call
            wire = UNFRAMED_BINARY
        else:
            try:
                detected = detect(body)  # looks at HEAD_BYTES at most
                if detected is None:
                    raise WireError("a body of %d bytes holds no Thrift message" % len(body))
            except WireError as e:
                return self._refuse(Refusal(400, "body: %s" % e.reason, False), request)
            wire = detected
        key = (wire, service)
        readers = self._readers
        reader = readers.get(key)
        if reader is None:
            reader = readers[key] = Reader.for_config(self.state.config, self.routes.specs[service])
        # Read, never received into: the body as httptools handed it (bytes) serves as it is.
        reader.buf, reader.start, reader.end = body, 0, len(body)  # type: ignore[assignment]  # only read
        try:
            msg = reader.next_message()
            if msg is None:  # the scanner wants more bytes: there are none, the body is all
                scanner = reader.scanner
                header = scanner.header if scanner is not None else None
                raise WireError("the body ends inside its Thrift message").at(header)
        except WireError as e:  # the scanner's state is left as the error found it: not reused
            del readers[key]
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
            del readers[key]
            return self._refuse(Refusal(400, "%d bytes follow the Thrift message" % left, False), request)
        name = msg.name
        if service and b":" not in name:
            name = service + b":" + name
        return HttpMessage(msg, request, self.state.codec_for(wire.protocol), name, wire.frames_replies)

    def _preflight(self, request: HttpRequest, origin: str, allowed: Headers | None) -> bytes:
        """A browser's CORS preflight (OPTIONS with Access-Control-Request-Method): allowed
        for the origins --cors-origin names and for POST, else 403; the connection goes on."""
        assert self.cors is not None  # only asked with --cors-origin
        wanted = request.headers["access-control-request-method"]
        if allowed is None or wanted != "POST":
            why = "origin %s is not allowed" % origin[:200] if allowed is None else "method %s" % wanted[:20]
            return self._refuse(Refusal(403, "CORS preflight refused: %s" % why, False), request)
        if self.state.observer is not None:
            self.state.observer.http_response(204)
        return response(204, b"", b"text/plain", request.keep_alive, self.cors.preflight(allowed, request.headers))

    def _json(self, request: HttpRequest, service: bytes) -> HttpMessage | bytes:
        """A TJSONProtocol body (http/tjson.py): parsed within the memory budget, its arguments
        read by the call's own JsonCodec."""
        body = request.body
        request.body = b""
        budget = self.state.budget
        charge = tjson.cost(body)
        if budget is not None and not budget.try_take(charge):
            refusal = Refusal(
                503, "JSON body of %d bytes and --max-buffer-memory spent" % len(body), False, RETRY_AFTER
            )
            return self._refuse(refusal, request)
        try:
            name, mtype, seqid, args = tjson.parse_message(body, self.state.config.max_depth)
        except WireError as e:
            return self._refuse(Refusal(400, "JSON body: %s" % e.reason, False), request)
        finally:
            if budget is not None:
                budget.give(charge)
        if service and b":" not in name:
            name = service + b":" + name
        codec = tjson.JsonCodec(args, self.state.config.max_depth)
        # The arguments are the codec's parsed JSON, not bytes: any body of more than one byte
        # has Call.admit decode them (one byte is binary's empty struct).
        return HttpMessage(Message(name, mtype, seqid, JSON_ARGS), request, codec, name, False)
