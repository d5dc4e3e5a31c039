"""oneway, the server: a oneway method whose handler blocks (time.sleep), written as thriftpy2
users write it. The client does not wait for it.

On dracula's thread backend each connection has its thread, as under thriftpy2; the uv backend
moves a plain method that blocks to its thread pool after two such calls (docs/handlers.md).

Run: python -m examples.thriftpy2_style.sleep_server (then sleep_client)
"""

import os
import time

import thriftpy2

from dracula import make_server  # thriftpy2: from thriftpy2.rpc import make_server

sleep_thrift = thriftpy2.load(os.path.join(os.path.dirname(__file__), "sleep.thrift"), module_name="sleep_thrift")
HOST, PORT = "127.0.0.1", 6000


class Dispatcher:
    def sleep(self, seconds):
        print("sleeping for %d s" % seconds)
        time.sleep(seconds)
        print("awake after %d s" % seconds)


def main():
    server = make_server(sleep_thrift.Sleep, Dispatcher(), HOST, PORT)
    print("serving on %s:%d..." % (HOST, server.port))
    server.serve()


if __name__ == "__main__":
    main()
