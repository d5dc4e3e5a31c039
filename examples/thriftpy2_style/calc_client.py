"""calculator, the client: thriftpy2's client_context with the Cython factories, unchanged."""

import os

import thriftpy2
from thriftpy2.protocol import TCyBinaryProtocolFactory
from thriftpy2.rpc import client_context
from thriftpy2.transport import TCyBufferedTransportFactory

calc_thrift = thriftpy2.load(os.path.join(os.path.dirname(__file__), "calc.thrift"), module_name="calc_thrift")
HOST, PORT = "127.0.0.1", 6000


def main():
    with client_context(
        calc_thrift.Calculator,
        HOST,
        PORT,
        proto_factory=TCyBinaryProtocolFactory(),
        trans_factory=TCyBufferedTransportFactory(),
    ) as cal:
        a = cal.mult(6, 7)
        b = cal.sub(a, 2)
        c = cal.div(b, cal.add(3, 5))
        print("(6 * 7 - 2) / (3 + 5) = %d" % c)
        try:
            cal.div(1, 0)
        except calc_thrift.DivideByZero as e:
            print("div(1, 0) raised DivideByZero: %s" % e.message)


if __name__ == "__main__":
    main()
