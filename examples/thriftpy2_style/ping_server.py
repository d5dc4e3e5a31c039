"""pingpong, the server: the smallest thriftpy2 server, on dracula.

Run: python -m examples.thriftpy2_style.ping_server (then ping_client)
"""

import os

import thriftpy2

from dracula import make_server  # thriftpy2: from thriftpy2.rpc import make_server

pingpong_thrift = thriftpy2.load(
    os.path.join(os.path.dirname(__file__), "pingpong.thrift"), module_name="pingpong_thrift"
)
HOST, PORT = "127.0.0.1", 6000


class Dispatcher:
    def ping(self):
        print("ping received")
        return "pong"


def main():
    server = make_server(pingpong_thrift.PingService, Dispatcher(), HOST, PORT)
    print("serving on %s:%d..." % (HOST, server.port))
    server.serve()


if __name__ == "__main__":
    main()
