"""asyncio echo, the server: thriftpy2's make_aio_server on a loop of the caller's, with a
coroutine handler. `server.serve()` runs the loop until it is stopped (or, in the main thread,
SIGINT/SIGTERM), then drains.

Run: python -m examples.thriftpy2_style.echo_server (then echo_client)
"""

import asyncio
import contextlib
import os

import thriftpy2

from dracula import make_aio_server  # thriftpy2: from thriftpy2.rpc import make_aio_server

echo_thrift = thriftpy2.load(os.path.join(os.path.dirname(__file__), "echo.thrift"), module_name="echo_thrift")
HOST, PORT = "127.0.0.1", 6000


class Dispatcher:
    async def echo(self, param):
        print("echo(%r)" % param)
        await asyncio.sleep(0.1)  # waiting on something else, without holding up other calls
        return param


def main():
    with contextlib.closing(asyncio.new_event_loop()) as loop:
        asyncio.set_event_loop(loop)
        server = make_aio_server(echo_thrift.EchoService, Dispatcher(), HOST, PORT, loop=loop)
        print("serving on %s:%d..." % (HOST, server.port))
        server.serve()


if __name__ == "__main__":
    main()
