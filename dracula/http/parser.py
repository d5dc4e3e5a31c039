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

from dracula.http.request import HttpRequest
from dracula.http.responses import CONTINUE, RETRY_AFTER

if TYPE_CHECKING:
    from dracula.ops.budget import Budget

# Request line and headers together, as bytes received (nginx's default buffers hold 32 KiB).
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 100
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
        self._start()

    def _start(self) -> None:
        self._target = b""
        self._headers: dict[str, str] = {}
        self._count = 0
        self._header_bytes = 0
        # The body as httptools handed it: its one bytes object when it came in one piece (a
        # Content-Length body within one read, the usual case: kept, not copied), else joined.
        self._body: bytes | bytearray = b""

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if self.broken:
            return
        try:
            self._parser.feed_data(data)
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
        self._start()

    def on_url(self, url: bytes) -> None:
        self._target += url
        self._header_bytes += len(url)
        if self._header_bytes > MAX_HEADER_BYTES:
            self._refuse(Refusal(414, "request target longer than %d bytes" % MAX_HEADER_BYTES))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count += 1
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES or self._count > MAX_HEADERS:
            self._refuse(Refusal(431, "request headers past %d bytes or %d fields" % (MAX_HEADER_BYTES, MAX_HEADERS)))
        key = name.lower().decode("latin-1")
        text = value.decode("latin-1")
        headers = self._headers
        if key in headers:
            headers[key] = headers[key] + ", " + text
        else:
            headers[key] = text

    def on_headers_complete(self) -> None:
        length = self._headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            # Refused on the headers, before any of the body is read (llhttp checked the value).
            self._refuse(Refusal(413, "body of %s bytes (limit %d)" % (length, self.max_body)))
        if self._headers.get("expect", "").lower() == "100-continue" and self._parser.get_method() == b"POST":
            self.done.append(CONTINUE)

    def on_body(self, body: bytes) -> None:
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
        self.in_request = False
        parser = self._parser
        self.done.append(
            HttpRequest(parser.get_method(), self._target, self._headers, self._body, parser.should_keep_alive())
        )
        self._body = b""
