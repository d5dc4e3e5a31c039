"""client_timeout, the server: every argument of thriftpy2's make_server, positionally, in its
order. client_timeout is in milliseconds, as thriftpy2 counts: a connection with no call for that
long is closed (dracula's --idle-timeout, in seconds). thriftpy2 closes after 3,000 ms when it is
not given; dracula, unless told, keeps idle connections open (pooled clients reuse them).

Run: python -m examples.thriftpy2_style.idle_server (then ping_client, or any client that idles)
"""

import os
import socket

import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory
from thriftpy2.transport import TBufferedTransportFactory

from dracula import make_server  # thriftpy2: from thriftpy2.rpc import make_server

pingpong_thrift = thriftpy2.load(
    os.path.join(os.path.dirname(__file__), "pingpong.thrift"), module_name="pingpong_thrift"
)
HOST, PORT = "127.0.0.1", 6000
CLIENT_TIMEOUT = 3000  # milliseconds


class Dispatcher:
    def ping(self):
        return "pong"


def main():
    #                    service, handler, host, port, unix_socket, proto_factory,
    #                    trans_factory, client_timeout, certfile, socket_family
    server = make_server(
        pingpong_thrift.PingService,
        Dispatcher(),
        HOST,
        PORT,
        None,
        TBinaryProtocolFactory(),
        TBufferedTransportFactory(),
        CLIENT_TIMEOUT,
        None,
        socket.AF_INET,
    )
    print("serving on %s:%d, closing connections idle for %d ms..." % (HOST, server.port, CLIENT_TIMEOUT))
    server.serve()


if __name__ == "__main__":
    main()
