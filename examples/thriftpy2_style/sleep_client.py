"""oneway, the client: the call returns as soon as it is sent."""

import os

import thriftpy2
from thriftpy2.rpc import make_client

sleep_thrift = thriftpy2.load(os.path.join(os.path.dirname(__file__), "sleep.thrift"), module_name="sleep_thrift")
HOST, PORT = "127.0.0.1", 6000


def main():
    client = make_client(sleep_thrift.Sleep, HOST, PORT)
    client.sleep(1)
    print("sent sleep(1); not waiting for it")
    client.close()


if __name__ == "__main__":
    main()
