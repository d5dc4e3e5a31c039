"""Unix socket, the client: thriftpy2's make_client(unix_socket=...)."""

import os

import thriftpy2
from thriftpy2.rpc import make_client

pingpong_thrift = thriftpy2.load(
    os.path.join(os.path.dirname(__file__), "pingpong.thrift"), module_name="pingpong_thrift"
)
UNIX_SOCKET = "/tmp/thriftpy2_style_ping.sock"


def main():
    client = make_client(pingpong_thrift.PingService, unix_socket=UNIX_SOCKET)
    print(client.ping())
    client.close()


if __name__ == "__main__":
    main()
