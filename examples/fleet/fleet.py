"""A fleet of dracula instances behind HAProxy on one machine, one loopback "host" each.

Instance i (1, 2, ...) listens on 127.0.0.(i+1) (every 127.x.y.z address is loopback on Linux),
all on the same Thrift and metrics ports, as if each were its own host; HAProxy listens on
127.0.0.1 and health-checks each instance's /healthz.

    python -m examples.fleet.fleet demo            # the whole example, then stops everything
    python -m examples.fleet.fleet start -n 3      # start a fleet and HAProxy, return
    python -m examples.fleet.fleet stop            # stop them (instances drain first)
    python -m examples.fleet.fleet config -n 3     # print the HAProxy configuration

`Fleet` is what tests/test_fleet.py and benchmarks/fleet_qps.py run too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SERVICE = ("idl/pingpong.thrift:PingService", "examples.pingpong:PingHandler")
DEFAULT_DIR = os.path.join("/tmp", "dracula-fleet")


def instance_host(slot: int) -> str:
    return "127.0.0.%d" % (slot + 1)


def haproxy_config(
    slots: int, port: int, metrics_port: int, proxy_port: int, stats_socket: str, check_interval_ms: int = 200
) -> str:
    """HAProxy's configuration for `slots` instances (instances not started are marked down)."""
    with open(os.path.join(HERE, "haproxy.cfg.in")) as f:
        template = f.read()
    servers = "\n".join(
        "    server d%d %s:%d check port %d" % (slot, instance_host(slot), port, metrics_port)
        for slot in range(1, slots + 1)
    )
    return template.format(
        stats_socket=stats_socket,
        proxy_address="127.0.0.1:%d" % proxy_port,
        check_interval_ms=check_interval_ms,
        servers=servers,
    )


class Fleet:
    """Instances (`start_instance(slot)`) and HAProxy (`start_proxy()`), their logs and pids in
    `directory`. Every wait is on a condition (a /healthz answer, HAProxy's view, an exit)."""

    proxy_name = "haproxy"  # in pids.json and messages (examples/envoy's subclass: "envoy")

    def __init__(
        self,
        directory=DEFAULT_DIR,
        slots=3,
        port=9090,
        metrics_port=9100,
        proxy_port=9000,
        drain_delay=1.0,
        graceful_timeout=10.0,
        service=SERVICE,
        check_interval_ms=200,
        launcher=(),
    ):
        self.directory = directory
        self.slots = slots
        self.port, self.metrics_port, self.proxy_port = port, metrics_port, proxy_port
        self.drain_delay, self.graceful_timeout = drain_delay, graceful_timeout
        self.service = service
        self.check_interval_ms = check_interval_ms
        self.launcher = list(launcher)  # a prefix for every command, e.g. ["taskset", "-c", "0-3"]
        self.instances: dict[int, subprocess.Popen] = {}
        self.proxy: subprocess.Popen | None = None
        os.makedirs(directory, exist_ok=True)

    @property
    def stats_socket(self) -> str:
        return os.path.join(self.directory, "haproxy.sock")

    # -- instances --------------------------------------------------------------------------
    def instance_argv(self, slot: int, extra=()) -> list:
        return [
            *self.launcher,
            sys.executable,
            "-m",
            "dracula",
            "serve",
            *self.service,
            "--host",
            instance_host(slot),
            "--port",
            str(self.port),
            "--metrics-port",
            str(self.metrics_port),
            "--drain-delay",
            str(self.drain_delay),
            "--graceful-timeout",
            str(self.graceful_timeout),
            *extra,
        ]

    def start_instance(self, slot: int, extra=(), timeout=30.0) -> subprocess.Popen:
        """Start instance `slot` and wait until its /healthz answers 200."""
        with open(os.path.join(self.directory, "d%d.log" % slot), "a") as log:  # the child keeps its copy
            proc = subprocess.Popen(
                self.instance_argv(slot, extra), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.instances[slot] = proc
        self._save_pids()
        if (
            not wait_for(lambda: proc.poll() is not None or self.healthz(slot) == 200, timeout)
            or proc.poll() is not None
        ):
            raise RuntimeError("instance d%d did not start; see %s/d%d.log" % (slot, self.directory, slot))
        return proc

    def stop_instance(self, slot: int, timeout=None) -> int:
        """SIGTERM: /healthz 503 for the drain delay, then the drain; wait for the exit."""
        proc = self.instances.pop(slot)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout or self.drain_delay + self.graceful_timeout + 10)
        self._save_pids()
        return code

    def healthz(self, slot: int):
        """The HTTP status of instance `slot`'s /healthz, or None when nothing answers."""
        url = "http://%s:%d/healthz" % (instance_host(slot), self.metrics_port)
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return reply.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return None

    def calls(self, slot: int) -> float:
        """Calls instance `slot` has answered (its /metrics dracula_calls_total, summed)."""
        return self.metric(slot, "dracula_calls_total")

    def metric(self, slot: int, name: str) -> float:
        """A metric of instance `slot`'s /metrics, summed over its labels."""
        url = "http://%s:%d/metrics" % (instance_host(slot), self.metrics_port)
        with urllib.request.urlopen(url, timeout=5) as reply:
            text = reply.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.split("{")[0].split(" ")[0] == name
        )

    # -- HAProxy ------------------------------------------------------------------------------
    def start_proxy(self, timeout=30.0) -> subprocess.Popen:
        """Start HAProxy (foreground, its own session) and wait until it reports every running
        instance UP."""
        path = os.path.join(self.directory, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(
                haproxy_config(
                    self.slots, self.port, self.metrics_port, self.proxy_port, self.stats_socket, self.check_interval_ms
                )
            )
        with open(os.path.join(self.directory, "haproxy.log"), "a") as log:
            self.proxy = subprocess.Popen(
                [*self.launcher, haproxy_binary(), "-db", "-f", path],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._save_pids()
        # Slots with no instance yet must be DOWN before traffic comes: HAProxy starts every
        # server UP until its checks fail.
        self.wait_states(
            {slot: "UP" if slot in self.instances else "DOWN" for slot in range(1, self.slots + 1)}, timeout
        )
        return self.proxy

    def server_states(self) -> dict:
        """HAProxy's view: slot -> status ("UP", "DOWN", "UP 1/2", ...), from its stats socket."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(self.stats_socket)
                s.sendall(b"show stat\n")
                data = b"".join(iter(lambda: s.recv(65536), b""))
        except OSError:
            return {}
        lines = data.decode().splitlines()
        if not lines or not lines[0].startswith("# "):
            return {}
        header = lines[0][2:].split(",")
        states = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("pxname") == "dracula" and row.get("svname", "").startswith("d"):
                states[int(row["svname"][1:])] = row["status"]
        return states

    def wait_states(self, expected: dict, timeout=30.0) -> None:
        """Wait until HAProxy reports each slot in `expected` in that status."""
        if not wait_for(lambda: _matches(self.server_states(), expected), timeout):
            raise RuntimeError(
                "%s did not reach %s within %gs: %s" % (self.proxy_name, expected, timeout, self.server_states())
            )

    # -- the whole fleet ----------------------------------------------------------------------
    def start(self, instances: int, extra=()) -> None:
        for slot in range(1, instances + 1):
            self.start_instance(slot, extra)
        self.start_proxy()

    def stop(self) -> None:
        """SIGTERM every instance (they drain at once: HAProxy stops too) and HAProxy."""
        for proc in self.instances.values():
            proc.send_signal(signal.SIGTERM)
            proc.send_signal(signal.SIGTERM)  # a second signal skips the drain delay
        for proc in self.instances.values():
            _wait_or_kill(proc, self.graceful_timeout + 10)
        self.instances.clear()
        if self.proxy is not None:
            self.proxy.terminate()
            _wait_or_kill(self.proxy, 10)
            self.proxy = None
        self._save_pids()

    def _save_pids(self) -> None:
        pids = {"d%d" % slot: proc.pid for slot, proc in self.instances.items()}
        if self.proxy is not None:
            pids[self.proxy_name] = self.proxy.pid
        with open(os.path.join(self.directory, "pids.json"), "w") as f:
            json.dump(pids, f)


def haproxy_binary() -> str:
    path = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if path is None:
        raise RuntimeError("haproxy is not installed (Debian: apt-get install haproxy)")
    return path


def wait_for(condition, timeout: float, interval=0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def _matches(states: dict, expected: dict) -> bool:
    return all(states.get(slot) == status for slot, status in expected.items())


def _wait_or_kill(proc, timeout: float) -> None:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def stop_recorded(directory: str) -> None:
    """`stop`: SIGTERM the processes `start` recorded, wait until they have exited."""
    path = os.path.join(directory, "pids.json")
    try:
        with open(path) as f:
            pids = json.load(f)
    except FileNotFoundError:
        print("no fleet recorded in %s" % directory)
        return
    for name, pid in sorted(pids.items(), key=lambda item: not item[0].startswith("d")):  # the proxy last
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        wait_for(lambda pid=pid: not _alive(pid), 40)
        print("stopped %s (pid %d)" % (name, pid))
    os.unlink(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def fleet_parser(module: str, doc: str, proxy: str, default_dir: str) -> argparse.ArgumentParser:
    """The command line of a fleet runner (this one, examples/envoy's): demo | start | stop | config."""
    parser = argparse.ArgumentParser(prog="python -m " + module, description=doc.split("\n\n")[0])
    parser.add_argument("command", choices=("demo", "start", "stop", "config"))
    parser.add_argument("-n", "--instances", type=int, default=3)
    parser.add_argument("--dir", default=default_dir, help="logs, pids, %s's files (default: %%(default)s)" % proxy)
    parser.add_argument("--port", type=int, default=9090, help="every instance's Thrift port")
    parser.add_argument("--metrics-port", type=int, default=9100, help="every instance's /metrics and /healthz port")
    parser.add_argument("--proxy-port", type=int, default=9000, help="%s's port on 127.0.0.1" % proxy)
    return parser


def main(argv=None) -> int:
    args = fleet_parser("examples.fleet.fleet", __doc__, "HAProxy", DEFAULT_DIR).parse_args(argv)
    fleet = Fleet(args.dir, args.instances, args.port, args.metrics_port, args.proxy_port)
    if args.command == "config":
        sys.stdout.write(
            haproxy_config(args.instances, args.port, args.metrics_port, args.proxy_port, fleet.stats_socket)
        )
    elif args.command == "stop":
        stop_recorded(args.dir)
    elif args.command == "start":
        fleet.start(args.instances)
        print(
            "%d instance(s) on %s, HAProxy on 127.0.0.1:%d; logs in %s; stop: python -m "
            "examples.fleet.fleet stop"
            % (
                args.instances,
                ", ".join(instance_host(s) for s in range(1, args.instances + 1)),
                args.proxy_port,
                args.dir,
            )
        )
    else:
        from examples.fleet.demo import demo

        return demo(fleet, args.instances)
    return 0


if __name__ == "__main__":
    sys.exit(main())
