"""Apache Thrift's Python HTTP server: `thrift.server.THttpServer` (on the standard library's
`http.server.HTTPServer`), binary protocol with Apache's C accelerator (fastbinary) when it is
built, and the Processor of apache_nonblocking.py (what `thrift --gen py` generates).

What a client of it gets: one request at a time on one thread, HTTP/1.0 (the connection closes
after each response, which has a Content-Length). Two settings differ, both in its favour: the
listen backlog is the harness's (HTTPServer's is 5), and the per-request access line
`http.server` writes to stderr is off.
"""

from __future__ import annotations

import http.server
import logging

from thrift.protocol.TBinaryProtocol import TBinaryProtocolAcceleratedFactory
from thrift.server.THttpServer import THttpServer

import _common
from apache_generated import SERVICES
from apache_nonblocking import Processor


def main() -> None:
    args = _common.parse_args(__doc__)
    logging.basicConfig(level=logging.WARNING)
    http.server.BaseHTTPRequestHandler.log_message = lambda *_: None

    class Server(http.server.HTTPServer):
        request_queue_size = args.backlog  # read by server_activate(), inside __init__

    processor = Processor(_common.make_handler(args), SERVICES[_common.service_name(args)])
    server = THttpServer(processor, (args.host, args.port), TBinaryProtocolAcceleratedFactory(), server_class=Server)
    server.serve()


if __name__ == "__main__":
    main()
