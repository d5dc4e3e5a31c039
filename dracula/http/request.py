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


class HttpRequest:
    """method and target as sent (bytes); headers: lower-cased names -> values (repeated ones
    joined with ", ", as RFC 9110 allows), made from the fields as received the first time
    something asks (a handler's `current_call().headers`, CORS): a call nobody asks about
    never decodes them; body (emptied once the session has read it: a call holds its
    arguments, not the body too); keep_alive: the connection may carry another request after
    this one's response; timeout: X-Thrift-Client-Timeout in seconds (None: absent or not a
    positive number of milliseconds); content_type: what the response says it is; json: the
    body is TJSONProtocol; origin: the Origin header (None: none); extra: headers its response
    adds (CORS's, for an allowed origin). `headers` and `timeout` make it a reader.RequestMeta.
    `found`: the fields the parser picked out (parser.WANTED), lower-cased names -> raw values."""

    __slots__ = (
        "method",
        "target",
        "_fields",
        "_headers",
        "body",
        "keep_alive",
        "timeout",
        "content_type",
        "json",
        "origin",
        "extra",
    )
    extra: tuple[tuple[bytes, bytes], ...]
    _headers: dict[str, str] | None

    def __init__(
        self,
        method: bytes,
        target: bytes,
        fields: list[bytes],
        found: dict[str, bytes],
        body: bytes | bytearray,
        keep_alive: bool,
    ) -> None:
        self.method = method
        self.target = target
        self._fields = fields
        self._headers = None
        self.body = body
        self.keep_alive = keep_alive
        self.extra = ()
        if not found:
            self.timeout = self.origin = None
            self.content_type = DEFAULT_CONTENT_TYPE
            self.json = False
            return
        timeout = found.get(CLIENT_TIMEOUT_HEADER)
        self.timeout = None if timeout is None else milliseconds(timeout.decode("latin-1"))
        origin = found.get("origin")
        self.origin = None if origin is None else origin.decode("latin-1")
        sent = found.get("content-type")
        content_type = DEFAULT_CONTENT_TYPE
        if sent is not None and sent not in THRIFT_CONTENT_TYPES:
            found_type = sent.partition(b";")[0].strip().lower()
            if found_type in THRIFT_CONTENT_TYPES:
                content_type = found_type
        elif sent is not None:
            content_type = sent
        self.content_type = content_type
        self.json = content_type == JSON_CONTENT_TYPE

    @property
    def headers(self) -> dict[str, str]:
        headers = self._headers
        if headers is None:
            headers = self._headers = {}
            fields = self._fields
            for i in range(0, len(fields), 2):
                key = fields[i].lower().decode("latin-1")
                text = fields[i + 1].decode("latin-1")
                if key in headers:
                    headers[key] = headers[key] + ", " + text
                else:
                    headers[key] = text
            self._fields = []
        return headers

    @headers.setter
    def headers(self, headers: dict[str, str]) -> None:
        self._headers = headers

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
