"""Real-payload throughput: a struct-heavy call at several sizes, every server in one run.

    python benchmarks/payload_qps.py --sizes small,medium,large --connections 50 --seconds 10 \\
        [--servers ...] [--clients 2] [--json out.json]

The call is idl/payload.thrift's `i32 count(1: Shape shape)` (examples.payload:PayloadHandler
returns len(shape.points)): a Shape holds a list of Point structs, a map of strings to lists of
Points, a set of i64, a string and bytes (benchmarks/workloads.py; about 0.4 KB, 26 KB and
1 MB encoded). Unlike ping, the server must walk, decode and allocate in proportion to the
message. Each request is encoded once (binary protocol; buffered/unframed transport, framed for
apache-nonblocking); every reply must decode to the number of points (the probe decodes it, the
load generator compares every reply with the probe's, byte for byte).

For each size, each connection count and each server: the harness of ping_qps.py
(qps_harness.py). The table's last columns compare each row with the floor and with
thriftpy2-threaded in the same cell. Compare rows of one run, never with another run's.
"""

from __future__ import annotations

import argparse
import sys

import qps_harness
import workloads

DEFAULT_SERVERS = (
    "dracula-uv",
    "dracula-uv-observed",
    "dracula-thread",
    "floor",
    "thriftpy2-threaded",
    "thriftpy2-aio",
    "apache-nonblocking",
)
SIZES = ("small", "medium", "large")
BASELINES = ("floor", "thriftpy2-threaded")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    qps_harness.add_options(parser, DEFAULT_SERVERS)
    parser.add_argument(
        "--sizes", default=",".join(SIZES), help="comma-separated, from: %s (default: all)" % ", ".join(SIZES)
    )
    parser.add_argument(
        "--baselines",
        default=",".join(BASELINES),
        help="servers the last columns compare with (default: %s)" % ",".join(BASELINES),
    )
    parser.add_argument(
        "--connections", default="50", help="connection count, or a comma-separated list of them (default: 50)"
    )
    args = parser.parse_args(argv)
    names, counts = qps_harness.check_options(parser, args)
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    if not sizes or any(s not in SIZES for s in sizes):
        parser.error("--sizes takes a comma-separated list from: %s" % ", ".join(SIZES))
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    chosen = [workloads.WORKLOADS[s] for s in sizes]
    cells = [(w, count, name) for w in chosen for count in counts for name in names]
    meta = qps_harness.metadata(args, baselines, len(cells))
    meta["workloads"] = {w.name: w.about for w in chosen}
    rows = qps_harness.run_cells(cells, args, meta)
    preamble = ["", "Call: `PayloadService.count(Shape)` -> len(points) (idl/payload.thrift); payloads:"]
    preamble += ["- %s: %s" % (w.name, w.about.split(": ", 1)[1]) for w in chosen]
    return qps_harness.report("Payload QPS", rows, meta, args, show_workload=True, preamble=preamble)


if __name__ == "__main__":
    sys.exit(main())
