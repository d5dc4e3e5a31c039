"""CORS for Thrift over HTTP: which web pages' origins may call the server from a browser
(`--cors-origin ORIGIN`, repeatable, or `*`), and the headers that tell the browser so.

A page's POST with `Content-Type: application/vnd.apache.thrift.json` is not a "simple" request:
the browser first sends a preflight (OPTIONS with Origin and Access-Control-Request-Method),
which is answered 204 with Access-Control-Allow-Origin/Methods/Headers/Max-Age for an allowed
origin and POST, else 403. Each response to an allowed origin's request carries
Access-Control-Allow-Origin (and `Vary: Origin` unless every origin is allowed), so the page
may read it; a response to any other origin carries none, and the browser hides it from the page.
"""

from __future__ import annotations

from collections.abc import Mapping

Headers = tuple[tuple[bytes, bytes], ...]

# How long a browser may cache a preflight's answer (Chromium caps it at 2 hours).
MAX_AGE = b"600"
_VARY = (b"Vary", b"Origin")


class Cors:
    """The origins allowed, and each one's response headers, made once."""

    def __init__(self, origins: tuple[str, ...]) -> None:
        self.any = "*" in origins
        self.origins = frozenset(origin.rstrip("/") for origin in origins if origin != "*")
        self._headers: dict[str, Headers] = {}

    def allowed(self, origin: str) -> Headers | None:
        """The headers a response to `origin`'s request adds, or None: not allowed."""
        found = self._headers.get(origin)
        if found is None:
            if self.any:
                found = ((b"Access-Control-Allow-Origin", b"*"),)
            elif origin in self.origins:
                found = ((b"Access-Control-Allow-Origin", origin.encode("latin-1")), _VARY)
            else:
                return None
            if len(self._headers) < 1024:  # only allowed origins are kept: at most the listed ones, or 1024
                self._headers[origin] = found
        return found

    def preflight(self, allowed: Headers, request: Mapping[str, str]) -> Headers:
        """The headers of an allowed preflight's 204: the origin's, POST, the request headers
        it asked for (a page's Content-Type, X-Thrift-Client-Timeout, ...), how long to keep it."""
        asked = request.get("access-control-request-headers", "").encode("latin-1")
        methods = (b"Access-Control-Allow-Methods", b"POST")
        max_age = (b"Access-Control-Max-Age", MAX_AGE)
        if asked:
            return (*allowed, methods, (b"Access-Control-Allow-Headers", asked), max_age)
        return (*allowed, methods, max_age)
