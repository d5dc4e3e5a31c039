"""Framing over real sockets: however the bytes of a request arrive, the server finds where each
message ends, on both backends, framed and unframed, in strict and non-strict binary (and, where
cheap, compact)."""

from __future__ import annotations

import os
import socket
import struct

import pytest
import thriftpy2.rpc
from thriftpy2.protocol.binary import TBinaryProtocolFactory
from thriftpy2.protocol.cybin import TCyBinaryProtocolFactory
from thriftpy2.thrift import TApplicationException
from thriftpy2.transport import (
    TBufferedTransportFactory as TCyBufferedTransportFactory,
    TFramedTransportFactory as TCyFramedTransportFactory,
)
from thriftpy2.transport.buffered import TBufferedTransportFactory
from thriftpy2.transport.framed import TFramedTransportFactory

from examples.showcase import ShowcaseHandler

from .helpers import running, showcase_thrift
from .wire_client import SockTransport, client, connect, encode_call, read_reply

Showcase = showcase_thrift.Showcase
TIMEOUT = 20


def closed_by_peer(sock) -> bool:
    """True once the server has closed the connection (EOF or reset), reading what is left."""
    try:
        while True:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True


def good_client_works(port):
    with client(port) as c:
        assert c.add(40, 2) == 42
        assert c.lookup("key") == "KEY"


def comparable(value):
    """thriftpy2 decodes a set as a list (in the sender's order), and its exceptions do not
    compare by value."""
    if isinstance(value, (set, frozenset, list)):
        return sorted(value)
    if isinstance(value, Exception):
        return type(value).__name__, vars(value)
    return value


def scalars():
    return showcase_thrift.Scalars(
        flag=True,
        tiny=-7,
        small=-300,
        medium=2**31 - 1,
        large=-(2**63),
        real=0.25,
        text="héllo",
        raw=b"\x00\x80\xff",
        color=3,
    )


# -- one byte at a time -------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["binary", "compact"])
@pytest.mark.parametrize("framed", [False, True], ids=["unframed", "framed"])
def test_requests_sent_one_byte_at_a_time(showcase_server, framed, protocol):
    calls = [
        ("add", {"a": 2**40, "b": -1}, 2**40 - 1),
        ("echo_scalars", {"s": scalars()}, scalars()),
        ("lookup", {"key": "missing"}, showcase_thrift.NotFound(key="missing", code=404)),
        ("unique", {"words": ["a", "b", "a", ""]}, ["", "a", "b"]),
        ("reverse", {"data": bytes(range(256))}, bytes(range(256))[::-1]),
    ]
    with connect(showcase_server.port, nodelay=True) as sock:
        trans = SockTransport(sock)
        for seqid, (method, kwargs, expected) in enumerate(calls, 1):
            data = encode_call(method, seqid, framed=framed, protocol=protocol, **kwargs)
            for i in range(len(data)):
                sock.sendall(data[i : i + 1])
            _, _, got_seqid, value = read_reply(trans, framed, method)
            assert got_seqid == seqid
            assert comparable(value) == comparable(expected), method


# -- many requests in one write ----------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["binary", "compact"])
@pytest.mark.parametrize("framed", [True, False], ids=["framed", "unframed"])
def test_hundred_pipelined_requests_in_one_write_answered_in_order(showcase_server, framed, protocol):
    # Mostly inline handlers, with coroutine and thread-pool ones among them: whichever finishes
    # first, replies leave in request order.
    requests, expected = [], []
    for seqid in range(1, 101):
        if seqid % 17 == 0:
            requests.append(encode_call("sleep_async", seqid, framed, protocol=protocol, ms=3))
            expected.append(("sleep_async", "slept 3 ms"))
        elif seqid % 23 == 0:
            requests.append(encode_call("sleep_blocking", seqid, framed, protocol=protocol, ms=2))
            expected.append(("sleep_blocking", "slept 2 ms"))
        else:
            requests.append(encode_call("add", seqid, framed, protocol=protocol, a=seqid, b=1000))
            expected.append(("add", seqid + 1000))
    with connect(showcase_server.port) as sock:
        sock.sendall(b"".join(requests))
        trans = SockTransport(sock)
        for seqid, (method, value) in enumerate(expected, 1):
            assert read_reply(trans, framed) == ("reply", method, seqid, value)
        # Nothing more than the 100 replies.
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1) == b""
        assert not trans.buf


# -- large messages in many pieces -------------------------------------------------------------


def send_in_pieces(sock, data, piece=4096):
    view = memoryview(data)
    for i in range(0, len(view), piece):
        sock.sendall(view[i : i + piece])


@pytest.mark.parametrize("protocol", ["binary", "compact"])
@pytest.mark.parametrize("framed", [False, True], ids=["unframed", "framed"])
def test_large_binary_argument_in_4k_pieces(showcase_server, framed, protocol):
    data = os.urandom(5 * 1024 * 1024)
    with connect(showcase_server.port) as sock:
        send_in_pieces(sock, encode_call("reverse", 7, framed, protocol=protocol, data=data))
        assert read_reply(SockTransport(sock), framed) == ("reply", "reverse", 7, data[::-1])


def test_large_string_list_unframed_in_4k_pieces(showcase_server):
    words = ["w%d" % (i // 2) for i in range(200_000)]  # every word twice
    with connect(showcase_server.port) as sock:
        request = encode_call("unique", 9, framed=False, words=words)
        assert len(request) > 1_000_000
        send_in_pieces(sock, request)
        _, _, seqid, value = read_reply(SockTransport(sock), method="unique")
        assert seqid == 9
        assert len(value) == 100_000
        assert set(value) == set(words)


# -- the frame size limit -----------------------------------------------------------------------


@pytest.fixture
def small_frames_server(backend):
    with running(Showcase, ShowcaseHandler(), backend=backend, max_frame_size=4096) as server:
        yield server


def test_frame_declared_over_limit_closes_before_its_body(small_frames_server):
    port = small_frames_server.port
    with connect(port) as sock:
        # A frame header claiming 4097 bytes, and the start of a strict binary message: the
        # server must close without waiting for (or buffering) the body.
        sock.sendall(struct.pack("!i", 4097) + b"\x80\x01\x00\x01")
        assert closed_by_peer(sock)
    good_client_works(port)
    with connect(port) as sock:  # a huge declared frame: same
        sock.sendall(struct.pack("!i", 2**31 - 1) + b"\x80\x01\x00\x01")
        assert closed_by_peer(sock)
    good_client_works(port)


def test_frame_at_the_limit_is_served_and_one_over_is_refused(small_frames_server):
    port = small_frames_server.port
    overhead = len(encode_call("reverse", 1, framed=True, data=b""))
    fits = os.urandom(4096 + 4 - overhead)
    request = encode_call("reverse", 1, framed=True, data=fits)
    assert struct.unpack("!i", request[:4])[0] == 4096
    with connect(port) as sock:
        sock.sendall(request)
        assert read_reply(SockTransport(sock), True) == ("reply", "reverse", 1, fits[::-1])
    with connect(port) as sock:
        try:
            sock.sendall(encode_call("reverse", 2, framed=True, data=fits + b"x"))
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while the body was still arriving: also a clean refusal
        assert closed_by_peer(sock)
    good_client_works(port)


def test_unframed_message_over_limit_is_refused(small_frames_server):
    port = small_frames_server.port
    with connect(port) as sock:
        try:
            sock.sendall(encode_call("reverse", 3, framed=False, data=os.urandom(8192)))
        except (BrokenPipeError, ConnectionResetError):
            pass
        trans = SockTransport(sock)
        try:
            _, _, seqid, exc = read_reply(trans, method="reverse")
        except (EOFError, ConnectionResetError):
            pass  # closed without a word: acceptable
        else:  # told why, then closed
            assert seqid == 3
            assert isinstance(exc, TApplicationException)
            assert exc.type == TApplicationException.PROTOCOL_ERROR
            assert closed_by_peer(sock)
    good_client_works(port)


# -- non-strict binary (no version word: the name's length comes first) -------------------------

# thriftpy2's pure-Python protocol cannot write binary fields into its Cython transports, so
# each protocol goes with the transports of its own kind.
PURE = (TBinaryProtocolFactory, TBufferedTransportFactory, TFramedTransportFactory)
CYTHON = (TCyBinaryProtocolFactory, TCyBufferedTransportFactory, TCyFramedTransportFactory)


@pytest.mark.parametrize("kind", [PURE, CYTHON], ids=["pure", "cython"])
@pytest.mark.parametrize("framed", [False, True], ids=["unframed", "framed"])
def test_non_strict_binary_client(showcase_server, kind, framed):
    factory, buffered, framed_transport = kind
    transport = framed_transport if framed else buffered
    client = thriftpy2.rpc.make_client(
        Showcase,
        "127.0.0.1",
        showcase_server.port,
        timeout=TIMEOUT * 1000,
        proto_factory=factory(strict_read=False, strict_write=False),
        trans_factory=transport(),
    )
    try:
        assert client.add(1, 2) == 3
        assert client.echo_scalars(scalars()) == scalars()
        assert sorted(client.unique(["x", "y", "x"])) == ["x", "y"]
        with pytest.raises(showcase_thrift.NotFound):
            client.lookup("missing")
        with pytest.raises(TApplicationException) as info:
            client.fail("boom")
        assert info.value.type == TApplicationException.INTERNAL_ERROR
        assert client.add(3, 4) == 7  # the connection survived the failure
    finally:
        client.close()


@pytest.mark.parametrize("framed", [False, True], ids=["unframed", "framed"])
def test_non_strict_binary_by_hand(showcase_server, framed):
    request = encode_call("add", 77, framed=framed, strict=False, a=5, b=6)
    head = request[4:] if framed else request
    assert head[:7] == b"\x00\x00\x00\x03add"  # no version word
    with connect(showcase_server.port, nodelay=True) as sock:
        for i in range(len(request)):  # and one byte at a time
            sock.sendall(request[i : i + 1])
        assert read_reply(SockTransport(sock), framed) == ("reply", "add", 77, 11)
