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
from thriftpy2.thrift import TMessageType
from thriftpy2.transport.memory import TMemoryBuffer

from dracula.calls import REPLY, Call
from dracula.config import Config
from dracula.dispatch import Dispatcher
from dracula.state import ServerState
from dracula.wire.binary_scan import BinaryScanner
from dracula.wire.codec import BinaryCodec
from dracula.wire.detect import FRAMED_BINARY, UNFRAMED_BINARY, detect
from dracula.wire.reader import Reader
from examples.pingpong import PingHandler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pingpong_thrift = thriftpy2.load(os.path.join(ROOT, "idl", "pingpong.thrift"),
                                 module_name="pingpong_micro_thrift")
showcase_thrift = thriftpy2.load(os.path.join(ROOT, "idl", "showcase.thrift"),
                                 module_name="showcase_micro_thrift")
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
    view[:len(data)] = data
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


@pytest.mark.parametrize("head, wire", [(PING_FRAMED[:5], FRAMED_BINARY), (PING[:5], UNFRAMED_BINARY)],
                         ids=["framed", "unframed"])
def test_detect(benchmark, head, wire):
    assert benchmark(detect, head) == wire


def test_binary_scanner_small_call(benchmark):
    """Scan a small unframed call: Showcase.add(i64, i64)."""
    call = bytearray(encode_call(showcase_thrift.Showcase, "add", a=2**40, b=-7))
    scanner = BinaryScanner(CONFIG.max_depth, CONFIG.max_container_size)
    end = len(call)

    def scan():
        scanner.reset()
        return scanner.scan(call, 0, end, end)

    assert benchmark(scan) == len(call)


def test_binary_scanner_struct_call(benchmark):
    """Scan a call carrying a struct with a list of structs, a map and a set."""
    Shape, Point = showcase_thrift.Shape, showcase_thrift.Point
    shape = Shape(name="triangle", points=[Point(x=i, y=-i) for i in range(3)], color=2,
                  labels={"corner": [Point(x=0, y=0)]}, tags={1, 2, 3}, blob=b"\x00" * 16)
    call = bytearray(encode_call(showcase_thrift.Showcase, "echo_shape", shape=shape))
    scanner = BinaryScanner(CONFIG.max_depth, CONFIG.max_container_size)
    end = len(call)

    def scan():
        scanner.reset()
        return scanner.scan(call, 0, end, end)

    assert benchmark(scan) == len(call)


def one_call(state, msg, codec, framed):
    """What a backend does per request: admit (look up, decode arguments), call, encode."""
    call = Call(state, msg, codec, framed, None)
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
