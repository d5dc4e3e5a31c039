"""Unix socket, the server: thriftpy2's unix_socket (dracula's --uds). A socket file left by a
server that died is replaced; the server removes its own on exit.

Run: python -m examples.thriftpy2_style.uds_server (then uds_client)
"""

import os

import thriftpy2

from dracula import make_server  # thriftpy2: from thriftpy2.rpc import make_server

pingpong_thrift = thriftpy2.load(
    os.path.join(os.path.dirname(__file__), "pingpong.thrift"), module_name="pingpong_thrift"
)
UNIX_SOCKET = "/tmp/thriftpy2_style_ping.sock"


class Dispatcher:
    def ping(self):
        return "pong"


def main():
    server = make_server(pingpong_thrift.PingService, Dispatcher(), unix_socket=UNIX_SOCKET)
    print("serving on %s..." % UNIX_SOCKET)
    server.serve()


if __name__ == "__main__":
    main()
