"""compact and framed, the server: factories that make a thriftpy2 server answer compact, framed
clients only. dracula answers them, and binary and unframed clients too, and says so in one log
line when the server is made.

Run: python -m examples.thriftpy2_style.compact_server (then compact_client)
"""

import os

import thriftpy2
from thriftpy2.protocol import TCompactProtocolFactory
from thriftpy2.transport import TFramedTransportFactory

from dracula import make_server  # thriftpy2: from thriftpy2.rpc import make_server

pingpong_thrift = thriftpy2.load(
    os.path.join(os.path.dirname(__file__), "pingpong.thrift"), module_name="pingpong_thrift"
)
HOST, PORT = "127.0.0.1", 6000


class Dispatcher:
    def ping(self):
        return "pong"


def main():
    server = make_server(
        pingpong_thrift.PingService,
        Dispatcher(),
        HOST,
        PORT,
        proto_factory=TCompactProtocolFactory(),
        trans_factory=TFramedTransportFactory(),
    )
    print("serving on %s:%d..." % (HOST, server.port))
    server.serve()


if __name__ == "__main__":
    main()
