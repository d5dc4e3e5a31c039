"""multiplexed, the server: two services as thriftpy2 builds them by hand (a TProcessor each, in
a TMultiplexedProcessor), served by dracula. thriftpy2 serves the processor with

    TThreadedServer(mux_proc, TServerSocket(HOST, PORT), iprot_factory=TBinaryProtocolFactory(),
                    itrans_factory=TBufferedTransportFactory()).serve()

and dracula with the one line in main(): make_server takes a processor in place of a service
and its handler. The services keep the names they were registered with; the first one also
answers plain (not multiplexed) method names.

Run: python -m examples.thriftpy2_style.mux_server (then mux_client)
"""

import os

import thriftpy2
from thriftpy2.thrift import TMultiplexedProcessor, TProcessor

from dracula import make_server  # thriftpy2: from thriftpy2.server import TThreadedServer

HERE = os.path.dirname(__file__)
pingpong_thrift = thriftpy2.load(os.path.join(HERE, "pingpong.thrift"), module_name="pingpong_thrift")
calc_thrift = thriftpy2.load(os.path.join(HERE, "calc.thrift"), module_name="calc_thrift")
HOST, PORT = "127.0.0.1", 6000
PING_SERVICE_NAME = "ping"
CALC_SERVICE_NAME = "calc"


class PingDispatcher:
    def ping(self):
        return "pong"


class CalcDispatcher:
    def add(self, a, b):
        return a + b


def main():
    ping_proc = TProcessor(pingpong_thrift.PingService, PingDispatcher())
    calc_proc = TProcessor(calc_thrift.Calculator, CalcDispatcher())

    mux_proc = TMultiplexedProcessor()
    mux_proc.register_processor(PING_SERVICE_NAME, ping_proc)
    mux_proc.register_processor(CALC_SERVICE_NAME, calc_proc)

    server = make_server(mux_proc, host=HOST, port=PORT)
    print("serving on %s:%d..." % (HOST, server.port))
    server.serve()


if __name__ == "__main__":
    main()
