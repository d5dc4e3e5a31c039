"""thriftpy2's asyncio server: `thriftpy2.rpc.make_aio_server` on a uvloop loop, with its
defaults: (pure-Python async) binary protocol over buffered (unframed) transport.

Settings that differ from make_aio_server's defaults, for a fair comparison:
- `client_timeout=None`: the default wraps each *connection's whole life* in a 3 s
  `asyncio.wait_for` (contrib/aio/socket.py, client_connected_cb), so a busy connection is
  dropped after 3 s however many calls it makes;
- the listen backlog is the harness's, both on TAsyncServerSocket (its listen()) and on
  asyncio.start_server, which calls listen() again with asyncio's default of 100 otherwise.
Its processor awaits the handler, so the handler is wrapped in an `async def` twin of each of
its methods (AsyncTwin).
"""

from __future__ import annotations

import asyncio
import functools
import signal

import thriftpy2.rpc
import uvloop

import _common


class AsyncTwin:
    """The service's methods of a sync handler as coroutines (the processor awaits them)."""

    def __init__(self, handler, service):
        for name in service.thrift_services:
            setattr(self, name, self._twin(getattr(handler, name)))

    @staticmethod
    def _twin(method):
        async def call(*args, **kwargs):
            return method(*args, **kwargs)

        return call


def main() -> None:
    args = _common.parse_args(__doc__)
    service = _common.load_service(args)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    handler = AsyncTwin(_common.make_handler(args), service)
    server = thriftpy2.rpc.make_aio_server(
        service, handler, host=args.host, port=args.port, client_timeout=None, loop=loop
    )
    server.trans.backlog = args.backlog
    server.trans.sock_factory = functools.partial(asyncio.start_server, backlog=args.backlog)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, loop.stop)
    server.serve()


if __name__ == "__main__":
    main()
