import thriftpy2.rpc

from .helpers import showcase_thrift


def test_ping_and_add(showcase_server):
    client = thriftpy2.rpc.make_client(showcase_thrift.Showcase, "127.0.0.1", showcase_server.port)
    try:
        assert client.ping() is None
        assert client.add(2**62, 2**62 - 1) == 2**63 - 1
    finally:
        client.close()
