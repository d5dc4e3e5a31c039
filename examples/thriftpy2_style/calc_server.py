"""calculator, the server: thriftpy2's Cython protocol and transport factories, passed as
thriftpy2's own calculator example passes them. dracula answers every connection in the protocol
and transport it speaks, so the factories change nothing here (binary, buffered).

Run: python -m examples.thriftpy2_style.calc_server (then calc_client)
"""

import os

import thriftpy2
from thriftpy2.protocol import TCyBinaryProtocolFactory
from thriftpy2.transport import TCyBufferedTransportFactory

from dracula import make_server  # thriftpy2: from thriftpy2.rpc import make_server

calc_thrift = thriftpy2.load(os.path.join(os.path.dirname(__file__), "calc.thrift"), module_name="calc_thrift")
HOST, PORT = "127.0.0.1", 6000


class Dispatcher:
    def add(self, a, b):
        print("add(%d, %d)" % (a, b))
        return a + b

    def sub(self, a, b):
        print("sub(%d, %d)" % (a, b))
        return a - b

    def mult(self, a, b):
        print("mult(%d, %d)" % (a, b))
        return a * b

    def div(self, a, b):
        print("div(%d, %d)" % (a, b))
        if b == 0:
            raise calc_thrift.DivideByZero("cannot divide %d by zero" % a)
        return a // b


def main():
    server = make_server(
        calc_thrift.Calculator,
        Dispatcher(),
        HOST,
        PORT,
        proto_factory=TCyBinaryProtocolFactory(),
        trans_factory=TCyBufferedTransportFactory(),
    )
    print("serving on %s:%d..." % (HOST, server.port))
    server.serve()


if __name__ == "__main__":
    main()
