"""TLS, the client: thriftpy2's make_client(cafile=...), which checks the server's certificate."""

import os

import thriftpy2
from thriftpy2.rpc import make_client

pingpong_thrift = thriftpy2.load(
    os.path.join(os.path.dirname(__file__), "pingpong.thrift"), module_name="pingpong_thrift"
)
HOST, PORT = "127.0.0.1", 6000
CAFILE = "ca.pem"


def main():
    client = make_client(pingpong_thrift.PingService, HOST, PORT, cafile=CAFILE)
    print(client.ping())
    client.close()


if __name__ == "__main__":
    main()
