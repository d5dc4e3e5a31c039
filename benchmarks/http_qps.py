"""What HTTP costs: Thrift over HTTP/1.1 (keep-alive) against framed binary on the same dracula
server, and against thriftpy2's and Apache Thrift's HTTP servers, in one run (issue #25).

    python benchmarks/http_qps.py --connections 50 --seconds 10 --clients 2 --rounds 3 [--json out.json]

Rows per workload (ping, the small struct call):
- `dracula-uv` (framed): `dracula serve --backend uv`, sent framed binary: the baseline;
- `dracula-uv HTTP`: the same server, each call a POST on a kept-alive connection, the body the
  same binary message unframed (what thriftpy2's and Apache's THttpClient send);
- `dracula-thread` (framed) and `dracula-thread HTTP`: the same on `--backend thread`;
- `thriftpy2 THttpServer`: `thriftpy2.http.make_server` (peers/thriftpy2_http.py);
- `Apache THttpServer`: `thrift.server.THttpServer` (peers/apache_http.py).
Both peers run on the standard library's single-threaded `http.server.HTTPServer` and answer
HTTP/1.0: the connection closes after every response, so each of their calls costs a new
connection, as it does for their real clients (the load generator's latency includes it).

Every request is encoded once (callwire.http_request: the head THttpClient sends, a
Content-Length, the body); each reply must be a 200 whose body equals, byte for byte, the
probe's, which callwire decodes (thriftpy2) to the workload's expected value. With --rounds N
every row is measured N times, a round at a time, and the summaries give each ratio's median
over the rounds: HTTP vs framed on the same server, and every HTTP server vs thriftpy2's.
Compare rows of one run, never with another run's.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import callwire
import loadgen
import qps_harness
import servers
import workloads

BASELINE = "dracula-uv"
THRIFTPY2_HTTP = "thriftpy2 THttpServer"
APACHE_HTTP = "Apache THttpServer"
PEERS = {
    THRIFTPY2_HTTP: servers.ServerSpec(
        THRIFTPY2_HTTP, False, "thriftpy2.http.make_server (http.server, HTTP/1.0)", servers._peer("thriftpy2_http.py")
    ),
    APACHE_HTTP: servers.ServerSpec(
        APACHE_HTTP, False, "thrift.server.THttpServer (http.server, HTTP/1.0)", servers._peer("apache_http.py")
    ),
}


class HttpWire:
    """encode_call() and probe() as callwire has them, for Thrift over HTTP (binary body)."""

    http = True

    def encode_call(self, workload, framed: bool = False) -> bytes:
        return callwire.http_request(callwire.encode_call(workload))

    def probe(self, host, port, framed, request, workload, timeout: float = 5.0) -> bytes:
        return callwire.probe_http(host, port, False, request, workload, timeout)


def http_loop(server, connections: int, args, on_phase, label: str) -> dict:
    """qps_harness.closed_loop, each call a POST (loadgen's HTTP mode)."""
    return loadgen.run(
        args.host,
        server.port,
        server.request,
        server.reply,
        False,
        connections,
        args.seconds,
        clients=args.clients,
        warmup=args.warmup,
        connect_timeout=args.connect_timeout,
        request_timeout=args.request_timeout,
        connect_batch=args.connect_batch,
        label=label,
        progress=not args.quiet,
        on_phase=on_phase,
        cpus=args.client_cpu_set,
        http=True,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    qps_harness.add_options(parser, ("dracula-uv", "dracula-thread"))
    parser.add_argument(
        "--connections", default="50", help="connection count, or a comma-separated list of them (default: 50)"
    )
    parser.add_argument(
        "--workloads", default="ping,small", help="from: %s (default: ping,small)" % ", ".join(workloads.WORKLOADS)
    )
    parser.add_argument("--no-peers", action="store_true", help="dracula's rows only (no THttpServer rows)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="measure every row this many times, a round at a time (default: 1)"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    names, counts = qps_harness.check_options(parser, args)
    if not set(names) <= {"dracula-uv", "dracula-thread"} or BASELINE not in names:
        parser.error("--servers: dracula-uv, and dracula-thread if wanted (the peers are --no-peers' to leave out)")
    http = HttpWire()
    variants = []  # (spec, wire, label, drive)
    for name in names:
        spec = servers.SERVERS[name]
        # dracula detects the transport per connection: one server, sent frames or POSTs.
        variants.append((dataclasses.replace(spec, framed=True), callwire, name, qps_harness.closed_loop))
        variants.append((spec, http, name + " HTTP", http_loop))
    if not args.no_peers:
        variants += [(spec, http, label, http_loop) for label, spec in PEERS.items()]
    chosen = [workloads.WORKLOADS[w.strip()] for w in args.workloads.split(",") if w.strip()]
    cells = [
        (w, count, spec, wire, label, servers.RunningServer, drive)
        for w in chosen
        for count in counts
        for spec, wire, label, drive in variants
    ]
    baselines = [BASELINE] + ([] if args.no_peers else [THRIFTPY2_HTTP])
    meta = qps_harness.metadata(args, baselines, len(cells) * args.rounds)
    meta["workloads"] = {w.name: w.about for w in chosen}
    meta["rounds"] = args.rounds
    rows = []
    for number in range(1, args.rounds + 1):
        measured = qps_harness.run_cells(cells, args, meta)
        for row in measured:
            row["round"] = number
        rows += measured
        if meta.get("interrupted"):
            break
    preamble = [
        "",
        (
            "Servers: `dracula serve --backend uv|thread`, sent framed binary (the (framed) rows) or one "
            "POST per call on kept-alive connections (the HTTP rows); the THttpServer peers close the "
            "connection after every response (HTTP/1.0), so each of their calls opens one. Calls:"
        ),
    ]
    preamble += ["- %s: %s" % (w.name, w.about) for w in chosen]
    status = qps_harness.report(
        "Thrift over HTTP vs framed QPS", rows, meta, args, show_workload=True, preamble=preamble
    )
    labels = [label for _, _, label, _ in variants]
    print()
    print(qps_harness.median_ratios(rows, labels, BASELINE))
    if "dracula-thread" in names:
        print()
        print(qps_harness.median_ratios(rows, ["dracula-thread HTTP"], "dracula-thread"))
    if not args.no_peers:
        print()
        print(
            qps_harness.median_ratios(
                rows, [label for label in labels if label != THRIFTPY2_HTTP and "HTTP" in label], THRIFTPY2_HTTP
            )
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
