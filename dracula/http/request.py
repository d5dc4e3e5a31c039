"""One HTTP request as dracula serves it: what its handler sees (`current_call().headers`, the
deadline) and what its response needs (content type, keep-alive)."""

from __future__ import annotations

from httptools import HttpParserInvalidURLError, parse_url

from dracula.wire.theader import milliseconds

# The client's timeout for the call in milliseconds (as THeader's `client_timeout`): its deadline.
CLIENT_TIMEOUT_HEADER = "x-thrift-client-timeout"

# The content types Thrift's HTTP clients send; the response repeats the request's. Any other
# (curl's form type, none at all) is answered as application/x-thrift: the body decides the protocol.
DEFAULT_CONTENT_TYPE = b"application/x-thrift"
THRIFT_CONTENT_TYPES = frozenset(
    (DEFAULT_CONTENT_TYPE, b"application/vnd.apache.thrift.binary", b"application/vnd.apache.thrift.compact")
)
JSON_CONTENT_TYPE = b"application/vnd.apache.thrift.json"


class HttpRequest:
    """method and target as sent (bytes); headers: lower-cased names -> values (repeated ones
    joined with ", ", as RFC 9110 allows); body; keep_alive: the connection may carry another
    request after this one's response; timeout: X-Thrift-Client-Timeout in seconds (None:
    absent or not a positive number of milliseconds); content_type: what the response says
    it is. `headers` and `timeout` make it a reader.RequestMeta."""

    __slots__ = ("method", "target", "headers", "body", "keep_alive", "timeout", "content_type")

    def __init__(
        self, method: bytes, target: bytes, headers: dict[str, str], body: bytearray, keep_alive: bool
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.timeout = milliseconds(headers.get(CLIENT_TIMEOUT_HEADER))
        content_type = headers.get("content-type", "").partition(";")[0].strip().lower().encode("latin-1")
        self.content_type = content_type if content_type in THRIFT_CONTENT_TYPES else DEFAULT_CONTENT_TYPE

    @property
    def json(self) -> bool:
        """It says its body is TJSONProtocol, which is not served."""
        return self.headers.get("content-type", "").partition(";")[0].strip().lower() == JSON_CONTENT_TYPE.decode()

    @property
    def service(self) -> bytes:
        """The path's first segment (b"" for "/"): the service it names, if one is served."""
        try:
            path = parse_url(self.target).path or b"/"
        except HttpParserInvalidURLError:  # "*" (OPTIONS) or a target httptools cannot split
            return b""
        return path.strip(b"/").partition(b"/")[0]
