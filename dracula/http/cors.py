"""CORS for Thrift over HTTP: which web pages' origins may call the server from a browser
(`--cors-origin ORIGIN`, repeatable, or `*`), and the headers that tell the browser so.

A page's POST with `Content-Type: application/vnd.apache.thrift.json` is not a "simple" request:
the browser first sends a preflight (OPTIONS with Origin and Access-Control-Request-Method),
which is answered 204 with Access-Control-Allow-Origin/Methods/Headers/Max-Age for an allowed
origin and POST, else 403. Each response to an allowed origin's request carries
Access-Control-Allow-Origin (and `Vary: Origin` unless every origin is allowed), so the page
may read it; a response to any other origin carries none, and the browser hides it from the page.

Hiding the response is not enough: a page may POST a "simple" request (no Content-Type, or
text/plain, a form's types) to any origin without a preflight, and the handler would run
(cross-site request forgery on a service reachable from the browser). Such a request from an
origin not allowed, or from any origin without --cors-origin, is refused with 403 before its
body is read as a call. Thrift clients outside browsers send no Origin and are not affected.
"""

from __future__ import annotations

from collections.abc import Mapping

Headers = tuple[tuple[bytes, bytes], ...]

# How long a browser may cache a preflight's answer (Chromium caps it at 2 hours).
MAX_AGE = b"600"
_VARY = (b"Vary", b"Origin")


# The content types a browser sends cross-origin without a preflight (the Fetch standard's
# CORS-safelisted Content-Type values).
_SIMPLE_TYPES = frozenset(("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"))


def sent_without_preflight(method: bytes, content_type: str | None) -> bool:
    """Whether a browser sends a request with this method and Content-Type to another origin
    without asking first: a POST with none, or with a safelisted type."""
    if method != b"POST":
        return False
    return content_type is None or content_type.partition(";")[0].strip().lower() in _SIMPLE_TYPES


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
