"""The sync client's short ways (#22) give what the full ones give: request bytes laid out
per method equal the codec's and request_frame's, a reply vetted where it was read equals the
one fed in pieces, and a call on the short path (one host, no hooks) returns and raises as one
through hooks, the balancer and retries."""

from __future__ import annotations

import pytest
from thriftpy2.thrift import TApplicationException

import dracula
from dracula.client import BadReply, CutOff, NotSent
from dracula.client.messages import FRAMED, HEADER, REPLY, Wire, methods_of
from dracula.wire.codec import make_codec
from dracula.wire.detect import BINARY, COMPACT
from dracula.wire.theader import encode_frame, parse_header, request_frame
from dracula.wire.theader_frame import HeaderFrame
from examples.showcase import ShowcaseHandler

from .helpers import running, showcase_thrift

Showcase = showcase_thrift.Showcase
METHODS = methods_of(Showcase)
TRANSPORTS = ["header", "framed", "buffered"]


def _reference_request(transport, protocol, method, seqid, args, headers):
    """The request as the codec and request_frame lay it out (the code before #22's)."""
    codec = make_codec(BINARY if protocol == "binary" else COMPACT, 64)
    if transport == HEADER:
        message = codec.encode(method.wire_name, method.mtype, seqid, args, False)
        return request_frame(message, codec.protocol, headers, seqid)
    return codec.encode(method.wire_name, method.mtype, seqid, args, transport == FRAMED)


def _args(name):
    return {
        "add": (1, -2),
        "shapes": (20,),
        "ping": (),
        "record": ("event",),
        "echo_shape": (showcase_thrift.Shape(name="s", points=[showcase_thrift.Point(1, 2)], tags={3}, blob=b"x"),),
        "lookup": ("k",),
    }[name]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("protocol", ["binary", "compact"])
@pytest.mark.parametrize("name", ["add", "shapes", "ping", "record", "echo_shape", "lookup"])
@pytest.mark.parametrize("headers", [None, {}, {"client_timeout": "250", "trace": "abc"}])
def test_request_bytes_equal_the_codecs(transport, protocol, name, headers):
    method = METHODS[name]
    for seqid in (1, 0x7FFFFFFF):
        args = method.make_args(_args(name), {})
        wire = Wire(transport, protocol, 1 << 20, 1 << 20)
        got = wire.request(method, seqid, args, headers)
        want = _reference_request(transport, protocol, method, seqid, args, headers if transport == HEADER else None)
        assert got == want


def _reply_bytes(transport, protocol, method, seqid, value, headers=None):
    codec = make_codec(BINARY if protocol == "binary" else COMPACT, 64)
    result = method.result_cls(success=value)
    message = codec.encode(method.wire_name, REPLY, seqid, result, False)
    if transport == HEADER:
        return encode_frame(message, HeaderFrame(codec.protocol, seqid, 0), headers)
    if transport == FRAMED:
        return len(message).to_bytes(4, "big") + message
    return message


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_reply_read_whole_equals_reply_fed_in_pieces(transport, protocol):
    method = METHODS["shapes"]
    value = ShowcaseHandler().shapes(5)
    data = _reply_bytes(transport, protocol, method, 7, value, {":drain": "1"} if transport == HEADER else None)
    decoded = []
    for pieces in ([data], [data[:5], data[5:]], [bytes([b]) for b in data]):
        wire = Wire(transport, protocol, 1 << 20, 1 << 20)
        wire.request(method, 7, method.make_args((5,), {}), None)
        reply = None
        if len(pieces) == 1:
            buf = bytearray(64 * 1024)
            buf[: len(data)] = data
            reply = wire.whole(buf, len(data))
            assert (reply is None) == (transport == "buffered")  # buffered: always fed
        if reply is None:
            for piece in pieces:
                assert reply is None
                reply = wire.feed(piece)
        assert reply is not None
        decoded.append((reply.mtype, reply.body, reply.headers, wire.decode(reply)))
    assert decoded[0] == decoded[1] == decoded[2]
    assert [(s.name, s.blob) for s in decoded[0][3]] == [(s.name, s.blob) for s in value]
    if transport == HEADER:
        assert decoded[0][2] == {":drain": "1"}


@pytest.mark.parametrize("transport", ["header", "framed"])
def test_whole_refuses_what_feed_refuses(transport):
    method = METHODS["add"]
    good = _reply_bytes(transport, "binary", method, 3, 5)
    for bad, error in (
        (_reply_bytes(transport, "binary", method, 4, 5), "sequence id"),
        (good[:-1] + b"\xff", "truncated"),
        (good[:-3] + b"\x0f\xff\xff", "scan|truncated"),
    ):
        messages = []
        for whole in (True, False):
            wire = Wire(transport, "binary", 1 << 20, 1 << 20)
            wire.request(method, 3, method.make_args((2, 3), {}), None)
            with pytest.raises(BadReply, match=error) as e:
                if whole:
                    buf = bytearray(bad) + bytes(100)
                    wire.whole(buf, len(bad))
                else:
                    wire.feed(bad)
            messages.append(str(e.value))
        assert messages[0] == messages[1]
    # a frame longer than the read: whole leaves it to feed, which waits for the rest
    wire = Wire(transport, "binary", 1 << 20, 1 << 20)
    wire.request(method, 3, method.make_args((2, 3), {}), None)
    assert wire.whole(bytearray(good), len(good) - 1) is None
    assert wire.feed(good[:-1]) is None
    reply = wire.feed(good[-1:])
    assert reply is not None and wire.decode(reply) == 5


def test_plain_header_frame_parses_as_request_frame_did():
    method = METHODS["add"]
    wire = Wire("header", "binary", 1 << 20, 1 << 20)
    data = wire.request(method, 9, method.make_args((1, 2), {}), None)
    frame = parse_header(data, 4, len(data), None)
    assert (frame.protocol, frame.seqid, frame.flags, frame.transforms, frame.headers) == (BINARY, 9, 0, (), {})


class _Counting:
    def __init__(self):
        self.seen = []

    def after(self, call, outcome, seconds):
        self.seen.append((call.name, outcome, call.attempts))


@pytest.fixture(scope="module")
def server():
    with running(Showcase, ShowcaseHandler()) as s:
        yield s


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_short_path_and_full_path_agree(server, transport, protocol):
    """One host and no hooks (the short path) against the same client with a hook (the full)."""
    address = ("127.0.0.1", server.port)
    hook = _Counting()
    short = dracula.make_client(Showcase, address, transport=transport, protocol=protocol)
    full = dracula.make_client(Showcase, address, transport=transport, protocol=protocol, middleware=[hook])
    assert short._only is not None and full._only is None
    with short, full:
        for client in (short, full):
            assert client.add(2, 40) == 42
            assert client.add(a=1, b=2) == 3 and client.call("add", 5, b=6) == 11
            assert client.add(1, 1, timeout=5.0) == 2
            assert [s.name for s in client.shapes(3)] == ["shape-0", "shape-1", "shape-2"]
            sent = _args("echo_shape")[0]
            got = client.echo_shape(sent)
            assert (got.name, got.points, got.blob, set(got.tags)) == (sent.name, sent.points, sent.blob, sent.tags)
            assert client.ping() is None
            with pytest.raises(showcase_thrift.NotFound):
                client.lookup("missing")
            with pytest.raises(TApplicationException):
                client.fail("boom")
            with pytest.raises(TypeError):
                client.add(1, 2, 3)
            with pytest.raises(AttributeError):
                client.nope  # noqa: B018
            client.record("x")
    # the TypeError comes before any hook, as it did before #22
    assert [s[1] for s in hook.seen] == ["ok"] * 7 + ["exception", "exception", "ok"]


class _FailingSend:
    """A connection's socket whose next sendall raises `error` (then it is the real one again)."""

    def __init__(self, conn, error):
        self.conn, self.real, self.error = conn, conn.sock, error

    def sendall(self, data):
        self.conn.sock = self.real
        raise self.error

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_short_path_failure_goes_on_through_the_retry_loop(server):
    """The first attempt's failure leads into the full loop: a request that could not be
    written (NotSent) is sent again, as before, within the budget."""
    client = dracula.make_client(Showcase, ("127.0.0.1", server.port), transport="framed")
    with client:
        assert client.add(1, 2) == 3
        conn = client._only.pool.stack.idle[-1]
        conn.sock = _FailingSend(conn, NotSent("the connection had ended"))
        assert client.add(3, 4) == 7
        assert client._core.budget.retried == 1
        assert client._only.calls == 3  # the warm-up, the failed attempt, the retry
        conn = client._only.pool.stack.idle[-1]
        conn.sock = _FailingSend(conn, CutOff("cut"))
        with pytest.raises(CutOff):  # add is not declared idempotent: not retried
            client.add(5, 6)
        assert client._core.budget.retried == 1
