"""What a layer-4 proxy costs: ping and the small struct call through HAProxy in front of N
dracula instances, against direct connections to one instance and against `--workers N` on the
same cores.

    python benchmarks/fleet_qps.py --instances 2 --workloads ping,small --connections 50 \\
        --seconds 10 [--server-cpus 0-3 --client-cpus 4-15] [--json out.json]

Rows per workload and connection count:
- `dracula-uv`: one instance, clients connect to it directly (the baseline column);
- `dracula-uv-wN`: `dracula serve --workers N`, one socket shared by N processes;
- `haproxy-xN`: N instances on 127.0.0.2, 127.0.0.3, ... (examples/fleet/fleet.py) behind
  HAProxy (TCP mode, leastconn) on 127.0.0.1; its server CPU is the instances' and HAProxy's.
With --server-cpus, every server process (HAProxy included) is pinned to those CPUs, so the
workers row and the HAProxy row get the same cores: the difference is what the proxy costs.
Needs Debian's haproxy. Compare rows of one run, never with another run's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import callwire
import qps_harness
import servers
import workloads

sys.path.insert(0, servers.ROOT)
from examples.fleet.fleet import Fleet, haproxy_binary

WORKLOADS = ("ping", "small")


class FleetServer:
    """N dracula instances behind HAProxy, started, probed, measured and stopped as
    servers.RunningServer is (qps_harness.measure runs it the same way)."""

    def __init__(
        self, spec, host="127.0.0.1", backlog=servers.DEFAULT_BACKLOG, cpus=None, workload=workloads.PING, wire=callwire
    ):
        self.spec = spec
        self.wire = wire
        self.host = host
        self.workload = workload
        launcher = ("taskset", "-c", servers.format_cpus(cpus)) if cpus else ()
        self.directory = tempfile.TemporaryDirectory(prefix="dracula-fleet-bench-")
        self.fleet = Fleet(
            self.directory.name,
            slots=spec.workers,
            port=servers.free_port(),
            metrics_port=servers.free_port(),
            proxy_port=servers.free_port(),
            drain_delay=0.0,
            service=(workload.target, workload.handler),
            launcher=launcher,
        )
        self.port = self.fleet.proxy_port
        self.request = wire.encode_call(workload, framed=False)
        self.reply = None
        self.proc = None

    def start(self) -> FleetServer:
        try:
            self.fleet.start(self.spec.workers, ("--backlog", "4096", "--log-level", "warning"))
            self.reply = self.wire.probe(self.host, self.port, False, self.request, self.workload)
        except (RuntimeError, OSError, callwire.ProbeError) as e:
            raise servers.ServerFailed("%s: %s" % (self.spec.name, e)) from e
        self.proc = self.fleet.proxy
        return self

    def _pids(self) -> list:
        procs = list(self.fleet.instances.values()) + ([self.fleet.proxy] if self.fleet.proxy else [])
        return [proc.pid for proc in procs]

    def cpu_seconds(self) -> float:
        return sum(servers.cpu_seconds(pid) for pid in self._pids())

    def listen_backlog(self):
        return None  # HAProxy's listener: not the backlog option's to check

    def alive(self) -> bool:
        procs = [*list(self.fleet.instances.values()), self.fleet.proxy]
        return all(proc is not None and proc.poll() is None for proc in procs)

    def output(self, limit: int = 4000) -> str:
        with open(os.path.join(self.directory.name, "haproxy.log"), errors="replace") as f:
            return f.read()[-limit:]

    def close(self) -> None:
        self.fleet.stop()
        self.directory.cleanup()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    qps_harness.add_options(parser, ("dracula-uv",))
    parser.add_argument(
        "--instances",
        type=int,
        default=2,
        help="instances behind HAProxy, and --workers of the workers row (default: 2)",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help="comma-separated, from: %s (default: %s)" % (", ".join(workloads.WORKLOADS), ",".join(WORKLOADS)),
    )
    parser.add_argument("--connections", default="50", help="connection count(s), comma-separated (default: 50)")
    args = parser.parse_args(argv)
    n = args.instances
    args.servers = "dracula-uv,dracula-uv-w%d" % n
    names, counts = qps_harness.check_options(parser, args)
    chosen = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if not chosen or any(w not in workloads.WORKLOADS for w in chosen) or n < 1:
        parser.error("--workloads from: %s; --instances >= 1" % ", ".join(workloads.WORKLOADS))
    try:
        haproxy_binary()
    except RuntimeError as e:
        parser.error(str(e))
    proxied = servers.ServerSpec(
        "haproxy-x%d" % n, False, "HAProxy (TCP, leastconn) in front of %d dracula-uv instances" % n, (), workers=n
    )
    cells = [
        (workloads.WORKLOADS[w], count, spec)
        for w in chosen
        for count in counts
        for spec in [servers.lookup(name) for name in names] + [proxied]
    ]
    meta = qps_harness.metadata(args, ["dracula-uv"], len(cells))
    rows = []
    try:
        for workload, count, spec in cells:
            make = FleetServer if spec is proxied else servers.RunningServer
            rows.append(qps_harness.measure(spec, workload, count, args, make_server=make))
    except KeyboardInterrupt:
        meta["interrupted"] = True
    preamble = ["", "Workloads: " + "; ".join("%s: %s" % (w, workloads.WORKLOADS[w].about) for w in chosen)]
    return qps_harness.report("Fleet QPS (the proxy's cost)", rows, meta, args, show_workload=True, preamble=preamble)


if __name__ == "__main__":
    sys.exit(main())
