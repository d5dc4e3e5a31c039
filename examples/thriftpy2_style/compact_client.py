"""compact and framed, the client: thriftpy2's client_context with the same factories."""

import os

import thriftpy2
from thriftpy2.protocol import TCompactProtocolFactory
from thriftpy2.rpc import client_context
from thriftpy2.transport import TFramedTransportFactory

pingpong_thrift = thriftpy2.load(
    os.path.join(os.path.dirname(__file__), "pingpong.thrift"), module_name="pingpong_thrift"
)
HOST, PORT = "127.0.0.1", 6000


def main():
    with client_context(
        pingpong_thrift.PingService,
        HOST,
        PORT,
        proto_factory=TCompactProtocolFactory(),
        trans_factory=TFramedTransportFactory(),
    ) as c:
        print(c.ping())


if __name__ == "__main__":
    main()
