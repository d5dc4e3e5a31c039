"""One HTTP request as dracula serves it: what its handler sees (`current_call().headers`, the
deadline) and what its response needs (content type, keep-alive)."""

from __future__ import annotations

from httptools import HttpParserInvalidURLError, parse_url

from dracula.wire.theader import milliseconds

# The client's timeout for the call in milliseconds (as THeader's `client_timeout`): its deadline.
CLIENT_TIMEOUT_HEADER = "x-thrift-client-timeout"

# The content types Thrift's HTTP clients send; the response repeats the request's. Any other
# (curl's form type, none at all) is answered as application/x-thrift: the body decides the
# protocol. TJSONProtocol's (Apache Thrift's JavaScript library) says the body is JSON.
DEFAULT_CONTENT_TYPE = b"application/x-thrift"
JSON_CONTENT_TYPE = b"application/vnd.apache.thrift.json"
THRIFT_CONTENT_TYPES = frozenset(
    (
        DEFAULT_CONTENT_TYPE,
        b"application/vnd.apache.thrift.binary",
        b"application/vnd.apache.thrift.compact",
        JSON_CONTENT_TYPE,
    )
)
_CONTENT_TYPES = {t.decode(): t for t in THRIFT_CONTENT_TYPES}  # as sent, most often: no lookup work


class HttpRequest:
    """method and target as sent (bytes); headers: lower-cased names -> values (repeated ones
    joined with ", ", as RFC 9110 allows); body (emptied once the session has read it: a call
    holds its arguments, not the body too); keep_alive: the connection may carry another
    request after this one's response; timeout: X-Thrift-Client-Timeout in seconds (None:
    absent or not a positive number of milliseconds); content_type: what the response says it
    is; json: the body is TJSONProtocol; extra: headers its response adds (CORS's, for an
    allowed origin). `headers` and `timeout` make it a reader.RequestMeta."""

    __slots__ = ("method", "target", "headers", "body", "keep_alive", "timeout", "content_type", "json", "extra")
    extra: tuple[tuple[bytes, bytes], ...]

    def __init__(
        self, method: bytes, target: bytes, headers: dict[str, str], body: bytes | bytearray, keep_alive: bool
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        timeout = headers.get(CLIENT_TIMEOUT_HEADER)
        self.timeout = None if timeout is None else milliseconds(timeout)
        sent = headers.get("content-type", "")
        content_type = _CONTENT_TYPES.get(sent)
        if content_type is None:
            found = sent.partition(";")[0].strip().lower().encode("latin-1")
            content_type = found if found in THRIFT_CONTENT_TYPES else DEFAULT_CONTENT_TYPE
        self.content_type = content_type
        self.json = content_type == JSON_CONTENT_TYPE
        self.extra = ()

    @property
    def service(self) -> bytes:
        """The path's first segment (b"" for "/"): the service it names, if one is served."""
        target = self.target
        if target == b"/":
            return b""
        try:
            path = parse_url(target).path or b"/"
        except HttpParserInvalidURLError:  # "*" (OPTIONS) or a target httptools cannot split
            return b""
        return path.strip(b"/").partition(b"/")[0]
