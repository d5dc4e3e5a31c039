"""Micro-benchmarks of dracula's per-call hot path, in-process, no sockets.

    pytest benchmarks/test_micro.py --benchmark-only

Each benchmark first checks that the code under test does what it should, so a broken hot path
fails instead of timing nonsense. Compare numbers within one run (or with pytest-benchmark's
--benchmark-compare against a run saved on the same machine), never across machines.
"""

from __future__ import annotations

import os
import struct

import pytest
import thriftpy2
from thriftpy2.protocol.binary import TBinaryProtocol
from thriftpy2.protocol.cybin import TCyBinaryProtocol
from thriftpy2.thrift import TMessageType
from thriftpy2.transport.memory import TCyMemoryBuffer, TMemoryBuffer

from dracula.config import Config
from dracula.server.calls import REPLY, Call
from dracula.server.dispatch import Dispatcher
from dracula.server.state import ServerState
from dracula.wire import compiled as impl
from dracula.wire.codec import BinaryCodec
from dracula.wire.detect import FRAMED_BINARY, UNFRAMED_BINARY, detect
from dracula.wire.reader import Reader
from examples.pingpong import PingHandler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pingpong_thrift = thriftpy2.load(os.path.join(ROOT, "idl", "pingpong.thrift"), module_name="pingpong_micro_thrift")
showcase_thrift = thriftpy2.load(os.path.join(ROOT, "idl", "showcase.thrift"), module_name="showcase_micro_thrift")
PingService = pingpong_thrift.PingService
CONFIG = Config()


def encode_call(service, method, framed=False, seqid=0, **kwargs) -> bytes:
    buf = TMemoryBuffer()
    proto = TBinaryProtocol(buf)
    proto.write_message_begin(method, TMessageType.CALL, seqid)
    proto.write_struct(getattr(service, method + "_args")(**kwargs))
    proto.write_message_end()
    data = buf.getvalue()
    return struct.pack("!I", len(data)) + data if framed else data


PING = encode_call(PingService, "ping")
PING_FRAMED = encode_call(PingService, "ping", framed=True)


def new_reader() -> Reader:
    return Reader(CONFIG.max_frame_size, CONFIG.max_depth, CONFIG.max_container_size)


def feed(reader: Reader, data: bytes) -> None:
    view = reader.get_buffer()
    assert len(view) >= len(data)
    view[: len(data)] = data
    reader.received(len(data))


def one_message(data: bytes):
    reader = new_reader()
    feed(reader, data)
    msg = reader.next_message()
    assert msg is not None
    return msg, reader.wire.framed


@pytest.fixture
def state():
    return ServerState(CONFIG, Dispatcher([("PingService", PingService, PingHandler())]))


@pytest.fixture
def codec():
    return BinaryCodec(CONFIG.max_depth)


def test_reader_splits_100_framed_pings(benchmark):
    """One read that holds 100 framed pings, split into 100 messages (one connection's Reader,
    reused as a connection would)."""
    data = PING_FRAMED * 100
    reader = new_reader()

    def split_all():
        feed(reader, data)
        n = 0
        while reader.next_message() is not None:
            n += 1
        return n

    assert benchmark(split_all) == 100
    assert reader.buffered == 0


def test_reader_splits_100_unframed_pings(benchmark):
    data = PING * 100
    reader = new_reader()

    def split_all():
        feed(reader, data)
        n = 0
        while reader.next_message() is not None:
            n += 1
        return n

    assert benchmark(split_all) == 100


@pytest.mark.parametrize(
    "head, wire", [(PING_FRAMED[:5], FRAMED_BINARY), (PING[:5], UNFRAMED_BINARY)], ids=["framed", "unframed"]
)
def test_detect(benchmark, head, wire):
    assert benchmark(detect, head) == wire


SCANNERS = {"compiled": impl.CompiledBinaryScanner, "pure": impl.PureBinaryScanner}
ARG_SPECS = {
    name.encode(): getattr(showcase_thrift.Showcase, name + "_args").thrift_spec
    for name in showcase_thrift.Showcase.thrift_services
}


def binary_scanner(kind: str):
    if SCANNERS[kind] is None:
        pytest.skip("the compiled scanner is not built: " + str(impl.UNAVAILABLE))
    return SCANNERS[kind](CONFIG.max_depth, CONFIG.max_container_size, CONFIG.string_limit, ARG_SPECS)


def scan_benchmark(benchmark, kind: str, call: bytearray):
    scanner = binary_scanner(kind)
    end = len(call)

    def scan():
        scanner.reset()
        return scanner.scan(call, 0, end, end)

    assert benchmark(scan) == len(call)


@pytest.mark.parametrize("kind", SCANNERS)
def test_binary_scanner_small_call(benchmark, kind):
    """Scan a small unframed call: Showcase.add(i64, i64)."""
    scan_benchmark(benchmark, kind, bytearray(encode_call(showcase_thrift.Showcase, "add", a=2**40, b=-7)))


# Shapes of 10, 1,000 and 10,000 points, with a label (3 points) per 100 points and a tag per 10:
# the scanner's cost beside the decode it guards (the compiled scanner's goal: <= 0.15x).
SHAPE_POINTS = {"small": 10, "medium": 1000, "large": 10_000}


def shape_call(points: int) -> bytearray:
    Shape, Point = showcase_thrift.Shape, showcase_thrift.Point
    shape = Shape(
        name="shape",
        points=[Point(x=i, y=-i) for i in range(points)],
        color=2,
        labels={"label%d" % i: [Point(x=i, y=i)] * 3 for i in range(max(1, points // 100))},
        tags=set(range(max(1, points // 10))),
        blob=b"\x00" * 64,
    )
    return bytearray(encode_call(showcase_thrift.Showcase, "echo_shape", shape=shape))


@pytest.mark.parametrize("size", SHAPE_POINTS)
@pytest.mark.parametrize("kind", SCANNERS)
def test_scan_shape(benchmark, kind, size):
    benchmark.group = "shape %s: scan vs decode" % size
    scan_benchmark(benchmark, kind, shape_call(SHAPE_POINTS[size]))


@pytest.mark.parametrize("size", SHAPE_POINTS)
def test_decode_shape(benchmark, size):
    """thriftpy2's Cython codec decoding the arguments the scanners walk (the body only)."""
    benchmark.group = "shape %s: scan vs decode" % size
    call = shape_call(SHAPE_POINTS[size])
    scanner = binary_scanner("pure")
    scanner.scan(call, 0, len(call), len(call))
    body = bytes(call[scanner.header[3] :])

    def decode():
        args = showcase_thrift.Showcase.echo_shape_args()
        TCyBinaryProtocol(TCyMemoryBuffer(body)).read_struct(args)
        return args

    assert len(benchmark(decode).shape.points) == SHAPE_POINTS[size]


def one_call(state, msg, codec, framed):
    """What a backend does per request: admit (look up, decode arguments), call, encode."""
    call = Call(state, msg, codec, framed, None, None)  # no peer, no loop for after-hooks
    if call.admit():
        call.run_inline()
    return call.reply


def test_dispatch_ping(benchmark, state, codec):
    """One Call for a ping: look up, decode arguments, call, encode the reply."""
    msg, framed = one_message(PING)

    def dispatch():
        return one_call(state, msg, codec, framed)

    reply = benchmark(dispatch)
    assert reply.endswith(b"\x0b\x00\x00\x00\x00\x00\x04pong\x00")


def test_encode_reply(benchmark, codec):
    """Encode ping's reply (unframed): the result struct through the Cython codec + header."""
    result = PingService.ping_result(success="pong")
    reply = benchmark(codec.encode, b"ping", REPLY, 0, result, False)
    assert reply == b"\x80\x01\x00\x02\x00\x00\x00\x04ping\x00\x00\x00\x00\x0b\x00\x00\x00\x00\x00\x04pong\x00"


def test_whole_call_in_process(benchmark, state, codec):
    """One unframed ping through everything but the socket: read, split, dispatch, reply."""
    reader = new_reader()

    def read_and_call():
        feed(reader, PING)
        return one_call(state, reader.next_message(), codec, False)

    assert benchmark(read_and_call).endswith(b"pong\x00")
