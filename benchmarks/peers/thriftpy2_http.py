"""thriftpy2's HTTP server: `thriftpy2.http.make_server` (THttpServer on the standard library's
`http.server.HTTPServer`), with its defaults: Cython binary protocol, buffered transport.

What a client of it gets, as it comes: one request at a time on one thread, HTTP/1.0 (the
connection closes after each response) and no Content-Length (the body runs to the close), so
every call costs a new connection. Two settings differ, both in its favour: the listen backlog
is the harness's (HTTPServer's is 5), and the per-request access line `http.server` writes to
stderr is off (dracula logs no line per call unless asked).
"""

from __future__ import annotations

import http.server

import thriftpy2.http
from thriftpy2.protocol import TBinaryProtocolFactory
from thriftpy2.thrift import TProcessor
from thriftpy2.transport import TBufferedTransportFactory

import _common


def main() -> None:
    args = _common.parse_args(__doc__)
    http.server.BaseHTTPRequestHandler.log_message = lambda *_: None

    class Server(http.server.HTTPServer):
        request_queue_size = args.backlog  # read by server_activate(), inside __init__

    # make_server's body, with server_class added (make_server does not take one).
    server = thriftpy2.http.THttpServer(
        TProcessor(_common.load_service(args), _common.make_handler(args)),
        (args.host, args.port),
        itrans_factory=TBufferedTransportFactory(),
        iprot_factory=TBinaryProtocolFactory(),
        server_class=Server,
    )
    server.serve()


if __name__ == "__main__":
    main()
