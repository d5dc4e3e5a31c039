"""HTTP/1.x requests out of a connection's bytes, by httptools (llhttp, uvicorn's parser), within
the server's limits. Never parsed by hand: httptools validates the request line, the headers,
Content-Length and chunked framing.

Fed bytes as they arrive, a RequestParser leaves in `done`, in order: an HttpRequest for each
complete request, CONTINUE for a request that asked for it (Expect: 100-continue), or a Refusal
(an HTTP error status). A refusal that breaks the connection's framing stops the parser: nothing
after it is read.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING

import httptools

from dracula.http.request import CLIENT_TIMEOUT_HEADER, HttpRequest
from dracula.http.responses import CONTINUE, RETRY_AFTER

if TYPE_CHECKING:
    from dracula.ops.budget import Budget

# Request line and headers together, as bytes received (nginx's default buffers hold 32 KiB).
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 100
MAX_FIELDS = 2 * MAX_HEADERS  # names and values, in RequestParser._fields
# A body's first bytes are not charged to --max-buffer-memory (as a Reader's first buffer is not).
FREE_BODY_BYTES = 8 * 1024


class Refusal(Exception):
    """A request answered with an HTTP error `status` instead of a call; `close`: the
    connection closes after the response (its framing cannot be trusted, or the body was not
    read); `extra`: more response headers."""

    def __init__(self, status: int, reason: str, close: bool = True, extra: tuple[tuple[bytes, bytes], ...] = ()):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.close = close
        self.extra = extra


class RequestParser:
    """One connection's requests. `in_request`: part of a request has arrived (the request
    timeout's clock runs); `broken`: a refusal ended the parsing."""

    def __init__(self, max_body: int, budget: Budget | None = None) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self.max_body = max_body
        self.budget = budget
        self.done: collections.deque[HttpRequest | Refusal | bytes] = collections.deque()
        self.in_request = False
        self.broken = False
        self.charged = 0  # body bytes charged to the budget (given back when the request is taken)
        self._refusal: Refusal | None = None
        self._head_fed = -1  # bytes fed while a request's head is incomplete (-1: none is)
        self._start()

    def _start(self) -> None:
        self._target = b""
        # The header fields as httptools hands them, names and values in turn (bytes, undecoded):
        # the request's `headers` dict is made from them only when something asks for it.
        self._fields: list[bytes] = []
        self._found: dict[str, bytes] = {}  # the fields the server itself reads (WANTED), by lower-cased name
        # The body as httptools handed it: its one bytes object when it came in one piece (a
        # Content-Length body within one read, the usual case: kept, not copied), else joined.
        self._body: bytes | bytearray = b""

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if self.broken:
            return
        try:
            self._parser.feed_data(data)
            if self._head_fed >= 0:  # a head still arriving: httptools holds its bytes, bounded here
                self._head_fed += len(data)
                if self._head_fed > 2 * MAX_HEADER_BYTES:
                    self._stop(_too_large())
        except httptools.HttpParserUpgrade:
            # Upgrade (WebSocket, h2c) or CONNECT: not served. A request already complete is
            # answered, then the connection closes; one cut short is refused.
            self._stop(Refusal(400, "HTTP upgrade or CONNECT is not served") if self.in_request else None)
        except httptools.HttpParserError as e:
            refusal = self._refusal
            if refusal is None:
                refusal = Refusal(400, "malformed HTTP request: %s" % (e.args[0] if e.args else type(e).__name__))
            self._stop(refusal)

    def _stop(self, refusal: Refusal | None) -> None:
        self.broken = True
        self.in_request = False
        self.give_back()
        if refusal is not None:
            self.done.append(refusal)
        elif self.done and isinstance(self.done[-1], HttpRequest):
            self.done[-1].keep_alive = False

    def _refuse(self, refusal: Refusal) -> None:
        """Stop inside a callback: httptools raises HttpParserCallbackError from feed_data."""
        self._refusal = refusal
        raise refusal

    def give_back(self) -> None:
        """Return the body bytes charged to the memory budget."""
        if self.charged:
            assert self.budget is not None  # only a budget is charged
            self.budget.give(self.charged)
            self.charged = 0

    # -- httptools' callbacks ------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.in_request = True
        self._head_fed = 0
        # _start(), inlined: once per request
        self._target = b""
        self._fields = []
        self._found = {}
        self._body = b""

    def on_url(self, url: bytes) -> None:
        target = self._target = self._target + url
        if len(target) > MAX_HEADER_BYTES:
            self._refuse(Refusal(414, "request target longer than %d bytes" % MAX_HEADER_BYTES))

    def on_header(self, name: bytes, value: bytes) -> None:
        """Kept as it came (the request's `headers` are made from these only when asked for);
        the few the server reads are picked out by their name's spelling, learned once."""
        fields = self._fields
        fields.append(name)
        fields.append(value)
        if len(fields) > MAX_FIELDS:
            self._refuse(_too_large())
        try:
            key = _KEYS[name]
        except KeyError:
            key = _learn(name)
        if key:
            found = self._found
            if key in found:  # repeated: joined, as the request's `headers` join it
                value = found[key] = found[key] + b", " + value
            else:
                found[key] = value
            # Checked as the field arrives (httptools hands it over before the next field or
            # the end of the head, so before any of the body): no on_headers_complete callback.
            if key == "content-length":
                if value.isdigit() and int(value) > self.max_body:
                    # Refused on the headers, before any of the body is read (llhttp checked the value).
                    self._refuse(Refusal(413, "body of %s bytes (limit %d)" % (value.decode(), self.max_body)))
            elif key == "expect" and value.lower() == b"100-continue" and self._parser.get_method() == b"POST":
                self.done.append(CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._head_fed = -1  # the head is complete
        held = len(self._body)
        size = held + len(body)
        if size > self.max_body:
            self._refuse(Refusal(413, "chunked body past %d bytes" % self.max_body))
        budget = self.budget
        if budget is not None and size > FREE_BODY_BYTES:
            more = size - max(held, FREE_BODY_BYTES)
            if not budget.try_take(more):
                self._refuse(
                    Refusal(
                        503,
                        "body of %d bytes and --max-buffer-memory spent" % size,
                        extra=RETRY_AFTER,
                    )
                )
            self.charged += more
        if not held:
            self._body = body
        elif isinstance(self._body, bytearray):
            self._body += body
        else:  # a second piece: joined from now on
            joined = bytearray(self._body)
            joined += body
            self._body = joined

    def on_message_complete(self) -> None:
        # Request line and headers within MAX_HEADER_BYTES, summed once at C speed (a head
        # still arriving is bounded by `feed`, a field count in on_header).
        if len(self._target) + sum(map(len, self._fields)) > MAX_HEADER_BYTES:
            self._refuse(_too_large())
        self._head_fed = -1
        self.in_request = False
        parser = self._parser
        self.done.append(
            HttpRequest(
                parser.get_method(),
                self._target,
                self._fields,
                self._found,
                self._body,
                parser.should_keep_alive(),
            )
        )
        self._body = b""


# The header names the server reads itself; every other field is only kept for `headers`.
WANTED = frozenset(("content-length", "content-type", "expect", "origin", CLIENT_TIMEOUT_HEADER))
# Each spelling of a header name seen (b"Content-Length") -> its lower-cased name if WANTED, else
# "": a client sends the same spellings every request, so a field costs one dict lookup.
_KEYS: dict[bytes, str] = {}
MAX_KEYS = 4096


def _too_large() -> Refusal:
    return Refusal(431, "request headers past %d bytes or %d fields" % (MAX_HEADER_BYTES, MAX_HEADERS))


def _learn(name: bytes) -> str:
    key = name.lower().decode("latin-1")
    if key not in WANTED:
        key = ""
    if len(_KEYS) < MAX_KEYS:  # hostile spellings are not all kept: past it they are lower-cased each time
        _KEYS[name] = key
    return key
