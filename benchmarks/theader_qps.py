"""What THeader costs: ping and the small struct call, framed binary against THeader (binary
inside), to the same server (`dracula serve --backend uv`), in one run, as a markdown table.

    python benchmarks/theader_qps.py --connections 50 --seconds 10 --clients 2 --rounds 3 [--json out.json]

Rows per workload: framed binary (the baseline), THeader with no headers, and THeader carrying
a W3C `traceparent` and fbthrift's `client_timeout` (what a traced fleet sends). Every request
is encoded once (THeader frames by dracula.wire.theader.request_frame around the binary
message callwire.py encodes); each reply must equal, byte for byte, the probe's, which is
decoded here independently of dracula: the THeader frame's fixed fields and header checked,
its payload decoded by callwire (thriftpy2) to the workload's expected value. The "vs
dracula-uv" column is each row's QPS over the framed-binary row of the same workload and round:
the header's cost is 1 minus it. Compare rows of one run, never with another run's.

With --rounds N every row is measured N times, the rows of a round one after another, so that
a shared machine's drift between rows falls on both sides of a ratio alike; the summary gives
each row's median ratio over the rounds.
"""

from __future__ import annotations

import argparse
import dataclasses
import socket
import struct
import sys
import time

import callwire
import qps_harness
import servers
import workloads
from dracula.wire.detect import BINARY
from dracula.wire.theader import request_frame

BASELINE = "dracula-uv"
TRACED_HEADERS = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "client_timeout": "30000"}
_head = struct.Struct("!IHHiH")  # length, magic, flags, sequence id, header size / 4


class THeaderWire:
    """encode_call() and probe() as callwire has them, for THeader frames (binary inside)."""

    def __init__(self, headers: dict | None = None):
        self.headers = headers

    def encode_call(self, workload, framed: bool = True) -> bytes:
        return request_frame(callwire.encode_call(workload), BINARY, self.headers, seqid=0)

    def probe(self, host, port, framed, request, workload, timeout: float = 5.0) -> bytes:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(request)
            got = b""
            deadline = time.monotonic() + timeout
            while len(got) < 4 or len(got) < 4 + struct.unpack_from("!I", got)[0]:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    raise callwire.ProbeError("connection closed after %d reply bytes: %r" % (len(got), got[:200]))
                got += chunk
        value = decode_reply(got, workload)
        if value != workload.expected:
            raise callwire.ProbeError("%s returned %r, expected %r" % (workload.method, value, workload.expected))
        return got


def decode_reply(frame: bytes, workload):
    """The value in one whole THeader reply frame: binary protocol, no transforms, seqid 0."""
    size, magic, _flags, seqid, words = _head.unpack_from(frame)
    header_at = _head.size
    if size != len(frame) - 4 or magic != 0x0FFF or seqid != 0:
        raise callwire.ProbeError("not a THeader reply to seqid 0: %r" % frame[:16])
    protocol, transforms = frame[header_at], frame[header_at + 1]  # two one-byte varints
    if protocol != 0 or transforms != 0:
        raise callwire.ProbeError("reply in protocol %d with %d transforms" % (protocol, transforms))
    payload = frame[header_at + 4 * words :]
    value, used = callwire.decode_reply(payload, False, workload)
    if used != len(payload):
        raise callwire.ProbeError("%d bytes after the reply" % (len(payload) - used))
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    qps_harness.add_options(parser, (BASELINE,))
    parser.add_argument(
        "--connections", default="50", help="connection count, or a comma-separated list of them (default: 50)"
    )
    parser.add_argument(
        "--workloads", default="ping,small", help="from: %s (default: ping,small)" % ", ".join(workloads.WORKLOADS)
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="measure every row this many times, a round at a time (default: 1)"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    names, counts = qps_harness.check_options(parser, args)
    if names != [BASELINE]:
        parser.error("this benchmark compares transports on one server: --servers %s" % BASELINE)
    # dracula detects the framing per connection: the same server, sent length-prefixed frames.
    framed = dataclasses.replace(servers.SERVERS[BASELINE], framed=True)
    variants = [
        (callwire, BASELINE),
        (THeaderWire(), "THeader"),
        (THeaderWire(TRACED_HEADERS), "THeader + traceparent, client_timeout"),
    ]
    chosen = [workloads.WORKLOADS[w.strip()] for w in args.workloads.split(",") if w.strip()]
    cells = [(w, count, framed, wire, label) for w in chosen for count in counts for wire, label in variants]
    meta = qps_harness.metadata(args, [BASELINE], len(cells) * args.rounds)
    meta["workloads"] = {w.name: w.about for w in chosen}
    meta["rounds"] = args.rounds
    rows = []
    for number in range(1, args.rounds + 1):
        measured = qps_harness.run_cells(cells, args, meta)
        if args.rounds > 1:
            for row in measured:
                row["round"] = number
        rows += measured
        if meta.get("interrupted"):
            break
    preamble = ["", "Server: `dracula serve --backend uv`; the %s rows are framed binary; calls:" % BASELINE]
    preamble += ["- %s: %s" % (w.name, w.about) for w in chosen]
    status = qps_harness.report("THeader vs framed binary QPS", rows, meta, args, show_workload=True, preamble=preamble)
    if args.rounds > 1:
        print()
        print(qps_harness.median_ratios(rows, [label for _, label in variants], BASELINE))
    return status


if __name__ == "__main__":
    sys.exit(main())
