"""THeader end to end: Apache Thrift's Python THeaderProtocol client (binary, compact, zlib)
calling the showcase server on both backends; the client's headers reach the handler through
`dracula.current_call().headers`, and what the handler puts in
`dracula.current_call().response_headers` reaches the client; refusals come back wrapped in a
THeader frame the client can read.
"""

from __future__ import annotations

import pytest
from thrift.Thrift import TApplicationException

import dracula
from examples.showcase import ShowcaseHandler

from . import apache_client as apache
from .apache_client import HeaderClient
from .helpers import running, showcase_thrift
from .theader_frames import info, ping_frame, ping_payload, raw_frame

KINDS = {
    "binary": ("binary", False),
    "compact": ("compact", False),
    "binary-zlib": ("binary", True),
    "compact-zlib": ("compact", True),
}


class HeaderHandler(ShowcaseHandler):
    """lookup(key) answers with the call's header `key`, and sets response header `seen-<key>`."""

    def lookup(self, key):
        call = dracula.current_call()
        value = call.headers.get(key)
        if value is None:
            raise showcase_thrift.NotFound(key=key, code=404)
        call.response_headers["seen-" + key] = value
        return value


@pytest.fixture(params=list(KINDS))
def kind(request):
    return KINDS[request.param]


@pytest.fixture
def server(backend):
    with running(showcase_thrift.Showcase, HeaderHandler(), backend=backend) as server:
        yield server


@pytest.fixture
def client(server, kind):
    c = HeaderClient(server.port, *kind)
    yield c
    c.close()


def test_calls_and_outcomes(client):
    c = client.client
    assert c.ping() is None
    assert c.add(2**62, 2**62 - 1) == 2**63 - 1
    shape = apache.Shape(
        name="héxagon",
        points=[apache.Point(1, 2)],
        color=3,
        labels={"a": [apache.Point(3, 4)]},
        tags={-(2**63), 7},
        blob=b"\x00\xff",
    )
    assert c.echo_shape(shape) == shape
    big = bytes(range(256)) * 4096  # 1 MiB: zlib really works on it
    assert c.reverse(big) == big[::-1]
    with pytest.raises(apache.NotFound) as caught:
        c.lookup("missing")
    assert caught.value.code == 404
    with pytest.raises(TApplicationException) as caught:
        c.fail("theader boom")
    assert caught.value.type == TApplicationException.INTERNAL_ERROR
    assert "theader boom" in caught.value.message
    assert c.ping() is None  # the connection survived all of it


def test_request_headers_reach_the_handler_and_response_headers_the_client(client):
    for n in range(3):  # Apache sends the headers set since the last call: set them per call
        client.proto.set_header(b"x-request-id", b"req-%d" % n)
        client.proto.set_header(b"other", "ünï".encode())
        assert client.client.lookup("x-request-id") == "req-%d" % n
        assert client.read_headers().get(b"seen-x-request-id") == b"req-%d" % n
    client.proto.set_header(b"other", "ünï".encode())
    assert client.client.lookup("other") == "ünï"
    # Headers hold for one call only.
    with pytest.raises(apache.NotFound):
        client.client.lookup("x-request-id")


def test_persistent_headers_hold_for_the_connection(server):
    # Apache's Python client cannot send PKEYVALUE (fbthrift's persistent headers): by hand.
    c = HeaderClient(server.port)
    try:
        args = b"\x0b\x00\x01" + (6).to_bytes(4, "big") + b"tenant" + b"\x00"
        call = (
            (-0x7FFEFFFF).to_bytes(4, "big", signed=True)
            + (6).to_bytes(4, "big")
            + b"lookup"
            + (1).to_bytes(4, "big")
            + args
        )
        c.socket.handle.sendall(raw_frame(b"\x00\x00" + info(2, {b"tenant": b"acme"}), call, seqid=1))
        c.client._seqid = 1  # read the reply to seqid 1 with the client's own reader
        assert _read_lookup_reply(c) == "acme"
        assert c.client.lookup("tenant") == "acme"  # a later call, no headers sent
    finally:
        c.close()


def _read_lookup_reply(c):
    proto = c.proto
    name, mtype, seqid = proto.readMessageBegin()
    assert (name, mtype, seqid) == ("lookup", 2, 1)
    result = apache.lookup_result()
    result.read(proto)
    proto.readMessageEnd()
    return result.success


def test_unknown_transform_gets_invalid_transform_in_a_theader_frame(server):
    c = HeaderClient(server.port)
    try:
        c.socket.handle.sendall(ping_frame() + raw_frame(b"\x00\x01\x03", ping_payload(seqid=6), seqid=6))
        proto = c.proto
        assert proto.readMessageBegin()[1:] == (2, 5)  # the good ping's reply
        apache.ping_result().read(proto)
        proto.readMessageEnd()
        _, mtype, seqid = proto.readMessageBegin()
        assert (mtype, seqid) == (3, 6)  # EXCEPTION, to the frame's sequence id
        error = TApplicationException()
        error.read(proto)
        assert error.type == TApplicationException.INVALID_TRANSFORM
        assert c.client.ping() is None  # the frame was skipped; the connection serves on
    finally:
        c.close()
