"""Unframed large messages: does finding where a message ends stay linear when it arrives in
many pieces?

An unframed message has no length prefix: the server learns where it ends only by walking its
structure. A server that re-parses from the start whenever a piece arrives does quadratic work:
a 10 MB argument in 4 KB pieces is ~2,560 pieces, ~1,280 full re-parses on average. dracula's
scanners resume where they stopped (and jump over long strings and fixed-width lists), so the
whole walk happens once however the bytes arrive.

This drives `dracula.wire.reader.Reader` directly, built and fed the way both backends do
(`Reader.for_config` with the dispatcher's argument specs; write into `get_buffer()`, call
`received(n)`, then `next_message()`), with no socket and no server:

  whole     each read fills all the free space the reader offers (the socket had everything)
  64 KiB    at most 64 KiB per read
  4 KiB     at most 4 KiB per read

for two 10 MB calls of idl/showcase.thrift, each in binary and in compact:

  reverse(binary)        one 10 MB binary argument
  unique(list<string>)   ~1M short strings (~10 MB)

and prints a table of best-of-N times and the ratio to `whole`. Linear: ratios near 1 (the
extra is per-read overhead). The list of strings is the telling case: a scanner that forgot
its progress and re-scanned from the message's first byte on every read (tried by patching
the Reader) measured 55x at 1 MiB in 4 KiB pieces, growing with the size; reverse(binary) stays
cheap either way, since a scanner steps over one long string in a single jump.

    python benchmarks/bench_unframed_large.py [--mb 10] [--repeat 3] [--max-ratio 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import thriftpy2  # noqa: E402
from thriftpy2.protocol.compact import TCompactProtocol  # noqa: E402
from thriftpy2.protocol.cybin import TCyBinaryProtocol  # noqa: E402
from thriftpy2.thrift import TMessageType  # noqa: E402
from thriftpy2.transport.memory import TCyMemoryBuffer, TMemoryBuffer  # noqa: E402

from dracula.config import Config  # noqa: E402
from dracula.server.dispatch import Dispatcher  # noqa: E402
from dracula.wire.reader import Reader  # noqa: E402
from examples.showcase import ShowcaseHandler  # noqa: E402

showcase = thriftpy2.load(os.path.join(ROOT, "idl", "showcase.thrift"), module_name="bench_showcase_thrift")

# The arguments specs a server hands its readers (the scanners follow the IDL with them).
ARG_SPECS = Dispatcher([("Showcase", showcase.Showcase, ShowcaseHandler())]).arg_specs

PIECES = (("whole", None), ("64 KiB", 64 * 1024), ("4 KiB", 4 * 1024))


def encode_call(protocol: str, name: str, args) -> bytes:
    if protocol == "binary":
        buf = TCyMemoryBuffer()
        proto = TCyBinaryProtocol(buf)
    else:
        buf = TMemoryBuffer()
        proto = TCompactProtocol(buf)
    proto.write_message_begin(name, TMessageType.CALL, 1)
    proto.write_struct(args)
    proto.write_message_end()
    if protocol == "binary":
        buf.flush()
    return buf.getvalue()


def payloads(mb: int):
    size = mb * 1024 * 1024
    blob = bytes(range(256)) * (size // 256)
    # "w0000000", "w0000001", ...: 8-byte strings, 12 bytes each in binary (4-byte length
    # prefix), 9 in compact (1-byte varint length).
    words = ["w%07d" % i for i in range(size // 10)]
    for protocol in ("binary", "compact"):
        yield (
            "reverse(binary)",
            protocol,
            b"reverse",
            encode_call(protocol, "reverse", showcase.Showcase.reverse_args(data=blob)),
        )
        yield (
            "unique(list<string>) %dk strings" % (len(words) // 1000),
            protocol,
            b"unique",
            encode_call(protocol, "unique", showcase.Showcase.unique_args(words=words)),
        )


def feed(data: bytes, piece: int | None):
    """Deliver `data` to a fresh Reader; (the one message, reads it took, seconds)."""
    reader = Reader.for_config(Config(), ARG_SPECS)  # as both backends build theirs
    view = memoryview(data)
    pos = 0
    reads = 0
    messages = []
    start = time.perf_counter()
    while pos < len(data):
        free = reader.get_buffer()
        n = min(len(free), len(data) - pos)
        if piece is not None:
            n = min(n, piece)
        free[:n] = view[pos : pos + n]
        free.release()  # as recv_into / libuv do: the reader may resize its buffer next time
        pos += n
        reader.received(n)
        reads += 1
        while True:
            msg = reader.next_message()
            if msg is None:
                break
            messages.append(msg)
    elapsed = time.perf_counter() - start
    assert len(messages) == 1 and reader.buffered == 0, (len(messages), reader.buffered)
    return messages[0], reads, elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=10, help="size of each argument, MiB (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs per cell (default 3)")
    parser.add_argument(
        "--max-ratio",
        type=float,
        default=10.0,
        help="exit 1 if any ratio exceeds this (default 10: linear is ~1, quadratic ~1000)",
    )
    args = parser.parse_args(argv)

    print("# Unframed %d MiB messages through dracula.wire.reader.Reader" % args.mb)
    print()
    print(
        "Python %s on %s, best of %d; ratio = time / time(whole), same message, same run."
        % (platform.python_version(), platform.machine(), args.repeat)
    )
    print()
    print("| message | protocol | bytes | delivery | reads | best s | ratio vs whole |")
    print("|---|---|---:|---|---:|---:|---:|")
    worst = 0.0
    for label, protocol, name, data in payloads(args.mb):
        whole_time = None
        for delivery, piece in PIECES:
            best = None
            for _ in range(args.repeat):
                msg, reads, elapsed = feed(data, piece)
                best = elapsed if best is None else min(best, elapsed)
            assert msg.name == name, msg.name
            assert len(msg.body) > len(data) - 64 and bytes(msg.body[-16:]) == data[-16:]
            if whole_time is None:
                whole_time = best
            ratio = best / whole_time
            worst = max(worst, ratio)
            print(
                "| %s | %s | %d | %s | %d | %.3f | %.2f |" % (label, protocol, len(data), delivery, reads, best, ratio)
            )
            sys.stdout.flush()
    print()
    print(
        "Worst ratio: %.2f (linear: ~1; re-scanning from the start on each of ~%d reads is "
        "quadratic: tens at 1 MiB, hundreds at 10)." % (worst, args.mb * 1024 * 1024 // (4 * 1024))
    )
    if worst > args.max_ratio:
        print("FAIL: worst ratio %.2f is above --max-ratio %.2f" % (worst, args.max_ratio))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
