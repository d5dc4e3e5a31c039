"""thriftpy2's classic server: `thriftpy2.rpc.make_server` (TThreadedServer, one thread per
connection), with its defaults: Cython binary protocol over buffered (unframed) transport.

Two settings differ from make_server's defaults, both for a fair comparison:
- `client_timeout=None`: the default (3 s) closes connections idle for 3 s, e.g. while
  thousands of others are still connecting;
- the listen backlog is the harness's (make_server leaves TServerSocket's 128).
"""

from __future__ import annotations

import thriftpy2.rpc

import _common


def main() -> None:
    args = _common.parse_args(__doc__)
    server = thriftpy2.rpc.make_server(
        _common.load_service(args), _common.make_handler(args), host=args.host, port=args.port, client_timeout=None
    )
    server.trans.backlog = args.backlog  # read by TServerSocket.listen() inside serve()
    server.serve()


if __name__ == "__main__":
    main()
