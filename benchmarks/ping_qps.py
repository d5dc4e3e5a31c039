"""Ping throughput: every server under test, one after another, in one run, as a markdown table.

    python benchmarks/ping_qps.py --servers dracula-uv,dracula-thread,thriftpy2-threaded \\
        --connections 50 --seconds 10 --clients 2 [--json out.json]
    python benchmarks/ping_qps.py --servers dracula-uv-w1,dracula-uv-w4 --baseline dracula-uv-w1 \\
        --server-cpus 0-7 --client-cpus 8-15 --clients 8 --connections 1000

Server names: those of servers.SERVERS, or dracula-uv-wN / dracula-thread-wN (`dracula serve
--workers N`; its CPU time counts the supervisor and every worker). --server-cpus and
--client-cpus pin the server (and its workers) and the load-generator processes to CPU lists,
as `taskset -c` would (default: no pinning).

For each connection count and each server: start the server (its own process, a free port,
the same backlog), probe it with one ping, run the closed-loop load generator against it
(benchmarks/loadgen.py), read the server's CPU time over the measured window, stop it
(benchmarks/qps_harness.py; benchmarks/payload_qps.py runs the same harness on a real payload).
Compare rows of one run with each other (the "vs dracula-uv" column), never with another run's.
"""

from __future__ import annotations

import argparse
import sys

import qps_harness
import workloads

DEFAULT_SERVERS = (
    "dracula-uv",
    "dracula-thread",
    "thriftpy2-threaded",
    "thriftpy2-aio",
    "apache-nonblocking",
    "floor",
    "floor-buffered",
)
BASELINE = "dracula-uv"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    qps_harness.add_options(parser, DEFAULT_SERVERS)
    parser.add_argument(
        "--baseline", default=BASELINE, help="the server the last column compares with (default: %s)" % BASELINE
    )
    parser.add_argument(
        "--connections", default="50", help="connection count, or a comma-separated list of them (default: 50)"
    )
    args = parser.parse_args(argv)
    names, counts = qps_harness.check_options(parser, args)
    cells = [(workloads.PING, count, name) for count in counts for name in names]
    meta = qps_harness.metadata(args, [args.baseline], len(cells))
    meta["baseline"] = args.baseline
    rows = qps_harness.run_cells(cells, args, meta)
    return qps_harness.report("Ping QPS", rows, meta, args)


if __name__ == "__main__":
    sys.exit(main())
