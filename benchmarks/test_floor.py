"""The reference floor (peers/floor.py) answers every workload however its bytes are split.

In-process: the floor's CallProtocol is fed a workload's CALL messages in pieces of 1, 7,
4,096 and 262,144 bytes on a running uvloop loop, and must write exactly one correct reply per
call (decoded with benchmarks/callwire.py). Also: a truncated message raises NeedMore rather
than decoding garbage, and a message arriving byte by byte is decoded a logarithmic number of
times. Run: `python -m pytest benchmarks/test_floor.py -x -q -p no:cacheprovider`.
"""

from __future__ import annotations

import asyncio
import os
import sys

import pytest
import uvloop

import callwire
import workloads

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))
import floor

PIECES = (1, 7, 4096, 262144)
NAMES = sorted(workloads.WORKLOADS)


class Written:
    """The transport a CallProtocol writes to: keeps the bytes and whether it was closed."""

    def __init__(self):
        self.data, self.closed = bytearray(), False

    def write(self, data):
        self.data += data

    def close(self):
        self.closed = True


def connect(workload):
    methods = floor.method_table(workload.thrift_service(), _handler(workload))
    protocol = floor.CallProtocol(methods, floor.Codec())
    protocol.connection_made(Written())
    return protocol


def _handler(workload):
    module, _, name = workload.handler.partition(":")
    return getattr(__import__(module, fromlist=[name]), name)()


def replies(data: bytes, workload, seqids) -> None:
    """Assert `data` is exactly one correct reply per seqid, in order."""
    used = 0
    for seqid in seqids:
        value, n = callwire.decode_reply(data[used:], False, workload, seqid)
        assert value == workload.expected
        used += n
    assert used == len(data)


async def feed(workload, piece: int, seqids) -> Written:
    calls = b"".join(callwire.encode_call(workload, seqid=s) for s in seqids)
    protocol = connect(workload)
    for start in range(0, len(calls), piece):
        protocol.data_received(calls[start : start + piece])
    for _ in range(1000):  # the stall timer answers a message that stopped short of doubling
        if protocol.pending is None:
            break
        await asyncio.sleep(0.002)
    assert protocol.pending is None
    assert not protocol.transport.closed
    return protocol.transport


@pytest.mark.parametrize("piece", PIECES)
@pytest.mark.parametrize("name", NAMES)
def test_every_workload_in_pieces(name, piece):
    workload = workloads.WORKLOADS[name]
    if name == "large" and piece == 1:
        seqids = [1]  # a million data_received calls already
    else:
        seqids = [1, 2, 3]  # pipelined: several messages per piece where pieces are large
    written = uvloop.run(feed(workload, piece, seqids))
    replies(bytes(written.data), workload, seqids)


@pytest.mark.parametrize("name", ["ping", "small", "medium"])
def test_a_truncated_message_raises_need_more(name):
    workload = workloads.WORKLOADS[name]
    call = callwire.encode_call(workload)
    protocol = connect(workload)
    decoder = protocol.codec.decoder
    step = 1 if len(call) < 1000 else 97
    for end in [*range(1, len(call), step), len(call) - 1]:
        decoder.start(call[:end])
        with pytest.raises(floor.NeedMore):
            protocol.codec.call(protocol.methods)
        decoder.discard()
        got, rest, close = protocol.codec.calls(protocol.methods, call[:end])
        assert (got, rest, close) == ([], call[:end], False)


def test_byte_by_byte_decodes_a_logarithmic_number_of_times():
    workload = workloads.WORKLOADS["medium"]
    call = callwire.encode_call(workload, seqid=7)
    protocol = connect(workload)
    starts = []
    start = protocol.codec.decoder.start
    protocol.codec.decoder.start = lambda data: (starts.append(len(data)), start(data))

    async def run():
        for i in range(len(call)):
            protocol.data_received(call[i : i + 1])
        for _ in range(1000):
            if protocol.pending is None:
                return
            await asyncio.sleep(0.002)

    uvloop.run(run())
    replies(bytes(protocol.transport.data), workload, [7])
    assert len(starts) <= len(call).bit_length() + 2
    assert sum(starts) <= 4 * len(call)
