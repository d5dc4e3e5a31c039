"""The servers under test: how each is started, told apart, probed, measured and stopped.

Every server runs as its own process (so its CPU time is its own), on a free loopback port,
with the same listen backlog, serving one workload's service and handler (benchmarks/
workloads.py; idl/pingpong.thrift's PingService by default). Binary protocol; buffered
(unframed) transport, thriftpy2's default, except where a server only speaks framed
(`ServerSpec.framed`): the load generator follows that.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import callwire
import workloads

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEERS = os.path.join(HERE, "peers")
DEFAULT_BACKLOG = 4096
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass(frozen=True)
class ServerSpec:
    name: str
    framed: bool
    about: str
    argv: tuple  # {host}, {port}, {backlog}, {service} (idl:Service), {handler} are filled in
    workers: int = 0  # a dracula supervisor with this many worker processes (0: none)

    def command(self, host: str, port: int, backlog: int, workload=workloads.PING) -> list:
        fill = {"host": host, "port": port, "backlog": backlog, "service": workload.target, "handler": workload.handler}
        return [sys.executable] + [arg.format(**fill) for arg in self.argv]


def _dracula(backend: str, workers: int = 0) -> tuple:
    # With workers, log at info: the harness waits for every "worker N accepting" line (the
    # supervisor logs nothing per call at info, so this costs nothing during the run).
    return (
        "-m",
        "dracula",
        "serve",
        "{service}",
        "{handler}",
        "--app-dir",
        ROOT,
        "--host",
        "{host}",
        "--port",
        "{port}",
        "--backlog",
        "{backlog}",
        "--backend",
        backend,
        "--log-level",
        "info" if workers else "warning",
    ) + (("--workers", str(workers)) if workers else ())


def _peer(script: str) -> tuple:
    return (
        os.path.join(PEERS, script),
        "{service}",
        "{handler}",
        "--host",
        "{host}",
        "--port",
        "{port}",
        "--backlog",
        "{backlog}",
    )


SERVERS = {
    spec.name: spec
    for spec in (
        ServerSpec("dracula-uv", False, "dracula, uvloop reactor (`dracula serve --backend uv`)", _dracula("uv")),
        ServerSpec("dracula-thread", False, "dracula, thread per connection (`--backend thread`)", _dracula("thread")),
        ServerSpec(
            "dracula-uv-observed",
            False,
            "dracula uv with the access log (a line per call, to the harness's log) and Prometheus metrics on",
            (*_dracula("uv"), "--access-log", "--metrics-port", "0", "--log-level", "info"),
        ),
        ServerSpec(
            "thriftpy2-threaded", False, "thriftpy2.rpc.make_server (TThreadedServer)", _peer("thriftpy2_threaded.py")
        ),
        ServerSpec("thriftpy2-aio", False, "thriftpy2.rpc.make_aio_server on uvloop", _peer("thriftpy2_aio.py")),
        ServerSpec(
            "apache-nonblocking", True, "Apache Thrift TNonblockingServer (framed only)", _peer("apache_nonblocking.py")
        ),
        ServerSpec(
            "floor", False, "bare uvloop Protocol + thriftpy2 Cython codec (reference floor)", _peer("floor.py")
        ),
        ServerSpec(
            "floor-buffered",
            False,
            "the floor on asyncio.BufferedProtocol (get_buffer/buffer_updated), "
            "as dracula's reactor reads: isolates what uvloop's buffered read path costs",
            _peer("floor_buffered.py"),
        ),
    )
}


WORKERS_NAME = re.compile(r"dracula-(uv|thread)-w([1-9][0-9]*)$")
OTHER_TREE_NAME = re.compile(r"dracula-(uv|thread)@(.+)$")
WORKER_READY = re.compile(r"worker \d+ accepting")


def lookup(name: str):
    """The ServerSpec for `name`: one of SERVERS, `dracula-uv-wN` / `dracula-thread-wN`
    (`dracula serve --workers N`: a supervisor and N worker processes sharing one socket), or
    `dracula-uv@PATH` / `dracula-thread@PATH` (the dracula of the checkout at PATH).
    None when the name is unknown."""
    if name in SERVERS:
        return SERVERS[name]
    other = OTHER_TREE_NAME.match(name)
    if other:  # before/after in one run: dracula from another checkout (e.g. a git worktree)
        backend, tree = other.group(1), os.path.abspath(other.group(2))
        run = "import runpy, sys; sys.path.insert(0, %r); runpy.run_module('dracula', run_name='__main__')" % tree
        return ServerSpec(
            name, False, "dracula --backend %s from %s" % (backend, tree), ("-c", run, *_dracula(backend)[2:])
        )
    found = WORKERS_NAME.match(name)
    if not found:
        return None
    backend, workers = found.group(1), int(found.group(2))
    return ServerSpec(
        name, False, "dracula --backend %s --workers %d" % (backend, workers), _dracula(backend, workers), workers
    )


def parse_cpus(text):
    """A taskset-style CPU list ("0", "1-15", "0-3,8,10-11") as a sorted list; None for ""/None."""
    if text is None or not str(text).strip():
        return None
    cpus = set()
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi) if hi else int(lo)
        except ValueError:
            raise ValueError("bad CPU list %r (want e.g. 0 or 1-15 or 0-3,8)" % text) from None
        if first < 0 or last < first:
            raise ValueError("bad CPU range %r in %r" % (part, text))
        cpus.update(range(first, last + 1))
    if not cpus:
        raise ValueError("empty CPU list %r" % text)
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if usable is not None and not cpus <= usable:
        raise ValueError(
            "CPU list %r names CPUs this process may not use (it may use %s)" % (text, format_cpus(usable))
        )
    return sorted(cpus)


def format_cpus(cpus) -> str:
    """The inverse of parse_cpus: [0, 1, 2, 3, 8] -> "0-3,8"."""
    out, run = [], []
    for c in sorted(cpus):
        if run and c == run[-1] + 1:
            run.append(c)
            continue
        if run:
            out.append(str(run[0]) if len(run) == 1 else "%d-%d" % (run[0], run[-1]))
        run = [c]
    if run:
        out.append(str(run[0]) if len(run) == 1 else "%d-%d" % (run[0], run[-1]))
    return ",".join(out)


class ServerFailed(Exception):
    """The server did not start, or did not answer the probe call correctly."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _stat_fields(pid: int):
    """/proc/PID/stat fields after the command name (which may hold spaces), or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2 :].split()


def process_tree(pid: int) -> list:
    """pid and all its live descendants (a server with worker processes counts them all)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, ()))
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by pid and its live descendants."""
    total = 0
    for p in process_tree(pid):
        fields = _stat_fields(p)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / CLOCK_TICKS


def listen_backlog(port: int):
    """The accept-queue limit the kernel reports for a listening port (ss's Send-Q), or None."""
    try:
        out = subprocess.run(["ss", "-ltnH", "sport = :%d" % port], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "LISTEN":
            return int(parts[2])
    return None


class RunningServer:
    """One server process serving `workload`: `start()` returns once it has answered a probe
    call with the workload's expected value.

    `.reply` holds that real reply's bytes; the load generator expects every reply to equal it.
    """

    def __init__(
        self,
        spec: ServerSpec,
        host: str = "127.0.0.1",
        backlog: int = DEFAULT_BACKLOG,
        start_timeout: float = 30.0,
        cpus=None,
        workload=workloads.PING,
        wire=callwire,
    ):
        self.spec = spec
        self.wire = wire  # encode_call() and probe(): callwire's, or another transport's
        self.workload = workload
        self.host = host
        self.backlog = backlog
        self.start_timeout = start_timeout
        self.cpus = sorted(cpus) if cpus else None  # CPU affinity (taskset -c), inherited by workers
        self.port = None
        self.proc = None
        self.reply = None
        self.request = wire.encode_call(workload, framed=spec.framed)
        self._log = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _popen(self, argv: list) -> subprocess.Popen:
        """Start the server process, pinned to self.cpus if set (as `taskset -c`: the affinity
        is set in the child before exec, so the pid is the server's own)."""
        cpus = self.cpus
        pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        return subprocess.Popen(
            argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=pin
        )

    def _wait_for_workers(self, deadline: float) -> None:
        """A supervisor listens at once and answers once one worker accepts: wait until every
        worker has said it accepts ("worker N accepting", logged at info) before probing."""
        while len(WORKER_READY.findall(self.output(1 << 20))) < self.spec.workers:
            if self.proc.poll() is not None:
                raise ServerFailed("%s exited with %s:\n%s" % (self.spec.name, self.proc.returncode, self.output()))
            if time.monotonic() > deadline:
                self.stop()
                raise ServerFailed(
                    "%s: not all %d workers accepted within %.0f s:\n%s"
                    % (self.spec.name, self.spec.workers, self.start_timeout, self.output())
                )
            time.sleep(0.05)

    def start(self) -> RunningServer:
        self.port = free_port(self.host)
        self._log = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 - outlives start(); stop() closes it
        self.proc = self._popen(self.spec.command(self.host, self.port, self.backlog, self.workload))
        deadline = time.monotonic() + self.start_timeout
        if self.spec.workers:
            self._wait_for_workers(deadline)
        while True:
            if self.proc.poll() is not None:
                raise ServerFailed("%s exited with %s:\n%s" % (self.spec.name, self.proc.returncode, self.output()))
            try:
                self.reply = self.wire.probe(self.host, self.port, self.spec.framed, self.request, self.workload)
                return self
            except callwire.ProbeError as e:
                self.stop()
                raise ServerFailed("%s answered the probe wrongly: %s\n%s" % (self.spec.name, e, self.output())) from e
            except OSError as e:
                if time.monotonic() > deadline:
                    self.stop()
                    raise ServerFailed(
                        "%s did not accept connections within %.0f s:\n%s"
                        % (self.spec.name, self.start_timeout, self.output())
                    ) from e
                time.sleep(0.05)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def listen_backlog(self):
        return listen_backlog(self.port)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self, limit: int = 4000) -> str:
        """The last `limit` characters the server wrote to stdout/stderr."""
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0, os.SEEK_END)
        size = self._log.tell()
        self._log.seek(max(0, size - limit))
        return self._log.read().decode("utf-8", "replace")

    def stop(self, timeout: float = 10.0):
        """SIGTERM, then SIGKILL after `timeout` s; the exit status (None if never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def close(self) -> None:
        self.stop()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
