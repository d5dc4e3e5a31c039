"""pingpong, the client: thriftpy2's make_client, unchanged."""

import os

import thriftpy2
from thriftpy2.rpc import make_client

pingpong_thrift = thriftpy2.load(
    os.path.join(os.path.dirname(__file__), "pingpong.thrift"), module_name="pingpong_thrift"
)
HOST, PORT = "127.0.0.1", 6000


def main():
    client = make_client(pingpong_thrift.PingService, HOST, PORT)
    print(client.ping())
    client.close()


if __name__ == "__main__":
    main()
