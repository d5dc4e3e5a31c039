"""IPv6, the server: thriftpy2's socket_family=socket.AF_INET6, on the IPv6 loopback. The host
is looked up in that family, so "localhost" means ::1 there and "" every IPv6 address.

Run: python -m examples.thriftpy2_style.ipv6_server (then ipv6_client)
"""

import os
import socket

import thriftpy2

from dracula import make_server  # thriftpy2: from thriftpy2.rpc import make_server

pingpong_thrift = thriftpy2.load(
    os.path.join(os.path.dirname(__file__), "pingpong.thrift"), module_name="pingpong_thrift"
)
HOST, PORT = "::1", 6000


class Dispatcher:
    def ping(self):
        return "pong"


def main():
    server = make_server(pingpong_thrift.PingService, Dispatcher(), HOST, PORT, socket_family=socket.AF_INET6)
    print("serving on [%s]:%d..." % (HOST, server.port))
    server.serve()


if __name__ == "__main__":
    main()
