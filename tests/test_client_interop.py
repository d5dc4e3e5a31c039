"""The same clients against servers that are not dracula: thriftpy2's threaded server and
Apache Thrift's Python TThreadedServer, framed and buffered, binary and compact; each serves
calls from the blocking client and 100 concurrent calls from the asyncio one."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import sys
import threading

import pytest
import thriftpy2.rpc
from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.protocol.TBase import TBase
from thrift.server.TServer import TThreadedServer as ApacheThreadedServer
from thrift.Thrift import TType
from thrift.transport import TSocket, TTransport
from thriftpy2.protocol import TCompactProtocolFactory, TCyBinaryProtocolFactory
from thriftpy2.transport import TCyBufferedTransportFactory, TCyFramedTransportFactory

import dracula
from examples.showcase import ShowcaseHandler

from .helpers import ROOT, free_port, showcase_thrift

Showcase = showcase_thrift.Showcase
TP_PROTOCOLS = {"binary": TCyBinaryProtocolFactory, "compact": TCompactProtocolFactory}
TP_TRANSPORTS = {"buffered": TCyBufferedTransportFactory, "framed": TCyFramedTransportFactory}
WIRES = [(t, p) for t in ("framed", "buffered") for p in ("binary", "compact")]


def _apache_processor():
    """benchmarks/peers/apache_nonblocking.py's Processor: what `thrift --gen py` generates."""
    path = os.path.join(ROOT, "benchmarks", "peers")
    spec = importlib.util.spec_from_file_location("apache_peer", os.path.join(path, "apache_nonblocking.py"))
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(path)
    return module.Processor


class Thriftpy2Handler(ShowcaseHandler):
    def lookup(self, key):
        """thriftpy2's processor knows a declared exception only by the class of the IDL module
        it serves (examples/showcase.py loads its own)."""
        if key == "missing":
            raise showcase_thrift.NotFound(key=key, code=404)
        return key.upper()


@contextlib.contextmanager
def thriftpy2_server(transport, protocol):
    port = free_port()
    server = thriftpy2.rpc.make_server(
        Showcase,
        Thriftpy2Handler(),
        "127.0.0.1",
        port,
        proto_factory=TP_PROTOCOLS[protocol](),
        trans_factory=TP_TRANSPORTS[transport](),
    )
    server.trans.listen()
    server.trans.listen = lambda: None  # serve() would listen again: done, so calls can connect now
    threading.Thread(target=server.serve, daemon=True).start()
    try:
        yield port
    finally:
        server.close()


class _Struct(TBase):
    """What `thrift --gen py` generates for a struct (there is no thrift compiler here)."""

    thrift_spec: tuple = ()

    def __init__(self, **fields):
        for spec in self.thrift_spec:
            if spec is not None:
                setattr(self, spec[2], fields.get(spec[2], spec[4]))


def _generated(name, args, result):
    return (
        type(name + "_args", (_Struct,), {"thrift_spec": args}),
        type(name + "_result", (_Struct,), {"thrift_spec": result}),
    )


APACHE_METHODS = {
    "add": _generated(
        "add",
        (None, (1, TType.I64, "a", None, None), (2, TType.I64, "b", None, None)),
        ((0, TType.I64, "success", None, None),),
    ),
    "reverse": _generated(
        "reverse", (None, (1, TType.STRING, "data", "BINARY", None)), ((0, TType.STRING, "success", "BINARY", None),)
    ),
    "ping": _generated("ping", (), ()),
}


class ApacheHandler:
    def add(self, a, b):
        return a + b

    def ping(self):
        return None

    def reverse(self, data):
        return data[::-1]


@contextlib.contextmanager
def apache_server(transport, protocol):
    processor = _apache_processor()(ApacheHandler(), APACHE_METHODS)
    sock = TSocket.TServerSocket(host="127.0.0.1", port=0)
    sock.listen()
    sock.listen = lambda: None
    port = sock.handle.getsockname()[1]
    transports = {"buffered": TTransport.TBufferedTransportFactory, "framed": TTransport.TFramedTransportFactory}
    protocols = {"binary": TBinaryProtocol.TBinaryProtocolFactory, "compact": TCompactProtocol.TCompactProtocolFactory}
    server = ApacheThreadedServer(processor, sock, transports[transport](), protocols[protocol](), daemon=True)
    threading.Thread(target=server.serve, daemon=True).start()
    try:
        yield port
    finally:
        sock.close()


def _exercise_sync(client, full=True):
    assert client.add(20, 22) == 42
    assert client.reverse(b"abc") == b"cba"
    assert client.ping() is None
    if full:
        with pytest.raises(showcase_thrift.NotFound) as e:
            client.lookup("missing")
        assert e.value.code == 404
        assert [s.name for s in client.shapes(2)] == ["shape-0", "shape-1"]


@pytest.mark.parametrize("transport,protocol", WIRES)
def test_against_thriftpy2s_threaded_server(transport, protocol):
    with thriftpy2_server(transport, protocol) as port:
        with dracula.make_client(Showcase, ("127.0.0.1", port), transport=transport, protocol=protocol) as client:
            _exercise_sync(client)

        async def main():
            async with dracula.make_aio_client(
                Showcase, ("127.0.0.1", port), transport=transport, protocol=protocol
            ) as aclient:
                assert await asyncio.gather(*[aclient.add(i, i) for i in range(100)]) == [2 * i for i in range(100)]

        asyncio.run(main())


@pytest.mark.parametrize("transport,protocol", WIRES)
def test_against_apache_thrifts_threaded_server(transport, protocol):
    with apache_server(transport, protocol) as port:
        with dracula.make_client(Showcase, ("127.0.0.1", port), transport=transport, protocol=protocol) as client:
            _exercise_sync(client, full=False)

        async def main():
            async with dracula.make_aio_client(
                Showcase, ("127.0.0.1", port), transport=transport, protocol=protocol
            ) as aclient:
                assert await asyncio.gather(*[aclient.add(i, i) for i in range(100)]) == [2 * i for i in range(100)]

        asyncio.run(main())
