"""HTTP/1.1 responses: the status line and the headers dracula sends, and the body.

Every response has a Content-Length (never chunked: a reply is whole before it is sent) and a
Date; `Connection: close` when the server closes after it. Error statuses carry a one-line
text/plain reason.
"""

from __future__ import annotations

import email.utils
import http
import time

# A client that may resend a shed call is told when: soon (shedding lasts as long as the burst).
RETRY_AFTER = ((b"Retry-After", b"1"),)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

_REASONS = {status.value: status.phrase.encode() for status in http.HTTPStatus}
MAX_HEADS = 256  # distinct heads kept (extra headers vary only with CORS origins)
Head = tuple[int, bytes, bool, tuple[tuple[bytes, bytes], ...]]
# Each head up to the Content-Length value, with this second's Date: (the second, the bytes).
_heads: dict[Head, tuple[int, bytes]] = {}
_time = time.time


def _head(key: Head, now: int) -> bytes:
    status, content_type, keep_alive, extra = key
    head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\n" % (status, _REASONS.get(status, b""), content_type)
    for name, value in extra:
        head += b"%s: %s\r\n" % (name, value)
    if not keep_alive:
        head += b"Connection: close\r\n"
    head += b"Date: %s\r\nContent-Length: " % email.utils.formatdate(now, usegmt=True).encode()
    if len(_heads) >= MAX_HEADS:
        _heads.clear()
    _heads[key] = (now, head)
    return head


def response(
    status: int, body: bytes, content_type: bytes, keep_alive: bool, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> bytes:
    """One whole response, made in one bytes operation: its head up to the Content-Length
    value (Date included) is made once per second per (status, content type, keep-alive,
    extra headers) and kept."""
    key = (status, content_type, keep_alive, extra)
    now = int(_time())
    found = _heads.get(key)
    head = found[1] if found is not None and found[0] == now else _head(key, now)
    return b"%s%d\r\n\r\n%s" % (head, len(body), body)


def error(status: int, reason: str, keep_alive: bool, extra: tuple[tuple[bytes, bytes], ...] = ()) -> bytes:
    """An error response saying why in a line of text."""
    body = reason.encode("utf-8", "backslashreplace") + b"\n"
    return response(status, body, b"text/plain; charset=utf-8", keep_alive, extra)
