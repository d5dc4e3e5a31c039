"""multiplexed, the client: thriftpy2's TMultiplexedProtocolFactory, one client per service."""

import os

import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory, TMultiplexedProtocolFactory
from thriftpy2.rpc import client_context

HERE = os.path.dirname(__file__)
pingpong_thrift = thriftpy2.load(os.path.join(HERE, "pingpong.thrift"), module_name="pingpong_thrift")
calc_thrift = thriftpy2.load(os.path.join(HERE, "calc.thrift"), module_name="calc_thrift")
HOST, PORT = "127.0.0.1", 6000
PING_SERVICE_NAME = "ping"
CALC_SERVICE_NAME = "calc"


def main():
    binary_factory = TBinaryProtocolFactory()
    ping_factory = TMultiplexedProtocolFactory(binary_factory, PING_SERVICE_NAME)
    with client_context(pingpong_thrift.PingService, HOST, PORT, proto_factory=ping_factory) as c:
        print("ping: %s" % c.ping())

    calc_factory = TMultiplexedProtocolFactory(binary_factory, CALC_SERVICE_NAME)
    with client_context(calc_thrift.Calculator, HOST, PORT, proto_factory=calc_factory) as c:
        print("calc: 2 + 3 = %d" % c.add(2, 3))


if __name__ == "__main__":
    main()
