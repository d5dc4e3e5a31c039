"""The seed's QPS table: HashService.md_five under 50...450 (or 1k...10k) thinking connections.

    python benchmarks/qps_table.py --connections 50,100,150,200,250,300,350,400,450 \\
        --seconds 30 --out benchmarks/results/ [--backends uv,thread,uv+pool]

The workload is the seed's (shared/seed/README.md): every connection is a thriftpy2 client
(binary protocol, buffered transport) calling `md_five('abcd' * 100000)` (400,000 characters),
then waiting a uniform 100-1000 ms after each reply before its next call. The client side is
benchmarks/hashload.py (several uvloop processes, pre-encoded requests; its docstring says why
not thriftpy2's aio client).

For each connection count and each backend in turn: start the server as its own process
(`python -m dracula serve idl/hash.thrift:HashService HANDLER --backend B --port 0`, the port
read from its "serving ... on HOST:PORT" log line), check one real call's digest, ramp the
connections up in batches, warm up, measure, read server and client CPU over the measured
window, stop the server. Backends:

    uv        examples.hash:HashHandler on the uvloop reactor: md5 runs on the loop
    thread    examples.hash:HashHandler, a thread per connection
    uv+pool   examples.hash:BlockingHashHandler on the uvloop reactor: md_five is
              @dracula.blocking, so md5 runs in dracula's thread pool, off the loop

Writes to --out: qps_table.json (a list of rows), qps_table.md (the seed's layout: rows =
backends, columns = connection counts, cells "QPS" or "QPS (E%)"), qps_table.png (QPS vs
connections, with the ideal ~1.82 QPS per connection). Progress goes to stderr, the markdown to
stdout. Compare the rows of one run with each other, never with another run's: the machines
are shared and noisy (DESIGN.md, "Benchmarks: how we measure").

Caveat (DESIGN.md): most of this workload's CPU is hashlib.md5 over 400 KB, which releases the
GIL, so a thread-per-connection server hashes on every core while one event loop hashes on one.
"uv" vs "thread" here compares one core against all of them; "uv+pool" runs the hashing off the
loop, which is how the reactor competes on this table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

import hashload
import loadgen
import qps_harness
import servers

BACKENDS = {
    # name: (dracula --backend, handler, what)
    "uv": ("uv", "examples.hash:HashHandler", "uvloop reactor, md5 on the loop"),
    "thread": ("thread", "examples.hash:HashHandler", "a thread per connection"),
    "uv+pool": (
        "uv",
        "examples.hash:BlockingHashHandler",
        "uvloop reactor, md_five @dracula.blocking: md5 in the thread pool",
    ),
}
DEFAULT_BACKENDS = ("uv", "thread")
SERVING = re.compile(r"serving .*? on (\S+):(\d+) ")


class HashServer(servers.RunningServer):
    """A dracula HashService server: `start()` returns once one real call got the right digest.

    Started with --port 0; the port comes from its "serving ... on HOST:PORT" log line.
    `.reply` holds that call's reply bytes; the load generator expects every reply to equal it."""

    def __init__(
        self,
        backend: str,
        host: str = "127.0.0.1",
        backlog: int = servers.DEFAULT_BACKLOG,
        start_timeout: float = 30.0,
        extra_args: tuple = (),
    ):
        dracula_backend, handler, about = BACKENDS[backend]
        argv = (
            "-m",
            "dracula",
            "serve",
            "idl/hash.thrift:HashService",
            handler,
            "--app-dir",
            servers.ROOT,
            "--host",
            "{host}",
            "--port",
            "0",
            "--backlog",
            "{backlog}",
            "--backend",
            dracula_backend,
            "--log-level",
            "info",
            *extra_args,
        )
        super().__init__(
            servers.ServerSpec(backend, False, about, argv), host=host, backlog=backlog, start_timeout=start_timeout
        )
        self.handler = handler
        self.request = hashload.encode_call()

    def start(self) -> HashServer:
        self._log = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 - outlives start(); stop() closes it
        self.proc = subprocess.Popen(
            self.spec.command(self.host, 0, self.backlog),
            cwd=servers.ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise servers.ServerFailed(
                    "%s exited with %s:\n%s" % (self.spec.name, self.proc.returncode, self.output())
                )
            found = SERVING.search(self.output())
            if found:
                self.port = int(found.group(2))
                break
            if time.monotonic() > deadline:
                self.stop()
                raise servers.ServerFailed(
                    "%s did not log its port within %.0f s:\n%s" % (self.spec.name, self.start_timeout, self.output())
                )
            time.sleep(0.05)
        try:
            self.reply = hashload.probe(self.host, self.port, self.request)
        except (OSError, hashload.ProbeError) as e:
            self.stop()
            raise servers.ServerFailed(
                "%s answered the probe call wrongly: %s\n%s" % (self.spec.name, e, self.output())
            ) from e
        return self


def ideal_qps(connections: int, think_min: float, think_max: float) -> float:
    """Every reply instant: one call per mean think time per connection (~1.82 for 0.1-1 s)."""
    return connections * 2.0 / (think_min + think_max)


def measure(backend: str, connections: int, args) -> dict:
    """One row: `backend` under `connections` thinking connections."""
    row = {
        "backend": backend,
        "connections": connections,
        "qps": None,
        "error_rate": None,
        "p50_ms": None,
        "p99_ms": None,
        "server_cpu_s": None,
        "client_cpu_s": None,
        "handler": BACKENDS[backend][1],
        "dracula_backend": BACKENDS[backend][0],
        "ideal_qps": round(ideal_qps(connections, args.think_min, args.think_max), 3),
    }
    label = "%s, %d conns" % (backend, connections)
    server = HashServer(backend, host=args.host, backlog=args.backlog)
    try:
        try:
            server.start()
        except servers.ServerFailed as e:
            row["failed"] = "did not start: %s" % e
            return row
        if not args.quiet:
            sys.stderr.write("[%s] server pid %d on port %d\n" % (label, server.pid, server.port))
        row["listen_backlog"] = server.listen_backlog()
        cpu = {}

        def on_phase(name, client_pids):
            cpu[name] = (server.cpu_seconds(), [servers.cpu_seconds(pid) for pid in client_pids])

        try:
            result = hashload.run(
                args.host,
                server.port,
                server.request,
                server.reply,
                connections,
                args.seconds,
                clients=args.clients,
                warmup=args.warmup,
                timeout=args.timeout,
                connect_timeout=args.connect_timeout,
                connect_batch=args.connect_batch,
                think_min=args.think_min,
                think_max=args.think_max,
                label=label,
                progress=not args.quiet,
                on_phase=on_phase,
            )
        except loadgen.LoadgenError as e:
            row["failed"] = "load generator: %s" % e
            return row
        row.update(result)
        if "measure" in cpu and "end" in cpu:
            (s0, c0), (s1, c1) = cpu["measure"], cpu["end"]
            per_client = [max(0.0, b - a) for a, b in zip(c0, c1, strict=True)]
            row["server_cpu_s"] = round(max(0.0, s1 - s0), 3)
            row["client_cpu_s"] = round(sum(per_client), 3)
            row["client_cpu_max_s"] = round(max(per_client), 3)  # the busiest client process
        if not server.alive():
            row["server_exit"] = server.proc.returncode
            row["server_output"] = server.output(2000)
        if not args.quiet:
            sys.stderr.write(
                "[%s] %.1f QPS, %.2f%% errors, p50 %s ms, p99 %s ms, CPU server %s s, "
                "clients %s s\n"
                % (
                    label,
                    row["qps"],
                    100 * row["error_rate"],
                    row["p50_ms"],
                    row["p99_ms"],
                    row["server_cpu_s"],
                    row["client_cpu_s"],
                )
            )
        return row
    finally:
        server.close()


# -- outputs --------------------------------------------------------------------------------


def _fmt(value, spec: str, missing: str = "—") -> str:
    return missing if value is None else format(value, spec)


def _pct(rate: float) -> str:
    pct = 100 * rate
    if pct >= 1:
        return "%.0f%%" % pct
    return "%.1f%%" % pct if pct >= 0.05 else "<0.1%"


def cell(row: dict) -> str:
    """The seed's cell: "QPS", or "QPS (E%)" when there were errors."""
    if "failed" in row:
        return "failed"
    text = "%.1f" % row["qps"]
    if row["errors"]:
        text += " (%s)" % _pct(row["error_rate"])
    return text


def seed_table(rows: list, backends: list, counts: list, meta: dict) -> str:
    by_key = {(r["backend"], r["connections"]): r for r in rows}
    lines = ["| connections | " + " | ".join(str(c) for c in counts) + " |", "|---|" + "---|" * len(counts)]
    for backend in backends:
        cells = [cell(by_key[(backend, c)]) if (backend, c) in by_key else "" for c in counts]
        lines.append("| %s | %s |" % (backend, " | ".join(cells)))
    lines.append(
        "| *ideal* | %s |" % " | ".join("*%.1f*" % ideal_qps(c, meta["think_min"], meta["think_max"]) for c in counts)
    )
    return "\n".join(lines)


def details_table(rows: list) -> str:
    head = (
        "backend",
        "connections",
        "QPS",
        "error rate",
        "p50 ms",
        "p99 ms",
        "server CPU s",
        "client CPU s",
        "busiest client s",
        "QPS / ideal",
    )
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for r in rows:
        if "failed" in r:
            cells = [r["backend"], str(r["connections"]), "failed"] + ["—"] * (len(head) - 3)
        else:
            cells = [
                r["backend"],
                str(r["connections"]),
                "%.1f" % r["qps"],
                "%.2f%%" % (100 * r["error_rate"]),
                _fmt(r["p50_ms"], ".1f"),
                _fmt(r["p99_ms"], ".1f"),
                _fmt(r["server_cpu_s"], ".2f"),
                _fmt(r["client_cpu_s"], ".2f"),
                _fmt(r.get("client_cpu_max_s"), ".2f"),
                "%.2f" % (r["qps"] / r["ideal_qps"]),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(rows: list, meta: dict) -> list:
    out = []
    budget = (meta["cpus"] or 1) * meta["seconds"]
    for r in rows:
        where = "%s at %d connections" % (r["backend"], r["connections"])
        if "failed" in r:
            lines = [line for line in r["failed"].strip().splitlines() if line.strip()]
            out.append("%s failed: %s" % (where, " ... ".join(lines[:1] + lines[-1:] if len(lines) > 1 else lines)))
            continue
        if r["errors"]:
            kinds = ", ".join("%s %d" % (k, n) for k, n in r["error_kinds"].items() if n)
            out.append("%s: %d errors in the measured window (%s)" % (where, r["errors"], kinds))
        if r["opened_in_ramp"] < r["connections"] or r["ramp_errors"]:
            kinds = ", ".join("%s %d" % (k, n) for k, n in r["ramp_error_kinds"].items() if n)
            out.append(
                "%s: %d/%d connections opened in the %.1f s ramp; %d errors before the window%s"
                % (
                    where,
                    r["opened_in_ramp"],
                    r["connections"],
                    r["ramp_s"],
                    r["ramp_errors"],
                    " (%s)" % kinds if kinds else "",
                )
            )
        if r["stalled_at_end"]:
            out.append(
                "%s: %d calls went unanswered for the whole measured window (the oldest for %.1f s)"
                % (where, r["stalled_at_end"], r["oldest_in_flight_ms"] / 1000)
            )
        used = (r["server_cpu_s"] or 0) + (r["client_cpu_s"] or 0)
        if used > 0.9 * budget:
            out.append(
                "%s: server + client CPU %.1f s of the machine's %.0f core-seconds: saturated, "
                "a lower bound" % (where, used, budget)
            )
        if r.get("client_cpu_max_s") is not None and r["client_cpu_max_s"] > 0.8 * meta["seconds"]:
            out.append(
                "%s: a client process used %.1f s of CPU in %.0f s: the load generator may be "
                "the limit; raise --clients" % (where, r["client_cpu_max_s"], meta["seconds"])
            )
        if "server_exit" in r:
            out.append("%s: the server exited (status %s) during the run" % (where, r["server_exit"]))
    return out


CAVEAT = (
    "Most of this workload's CPU is `hashlib.md5` over 400 KB, which releases the GIL: the "
    "`thread` backend hashes on every core, while `uv` hashes on its one event-loop thread, so "
    "`uv` vs `thread` compares one core with all of them. `uv+pool` (`BlockingHashHandler`, "
    "md_five marked `@dracula.blocking`) runs the hashing in dracula's thread pool, off the loop: "
    'that is how the reactor competes on this table (DESIGN.md, "Benchmarks: how we measure").'
)


def markdown(rows: list, backends: list, counts: list, meta: dict) -> str:
    versions = ", ".join("%s %s" % kv for kv in meta["versions"].items() if kv[1])
    parts = [
        "# Seed QPS table: HashService.md_five, 400,000-character string",
        "",
        "%s, %s: %s CPUs, Python %s, %s. Each connection: a call, the whole reply, then a uniform "
        "%g-%g s think. %g s measured per cell after the ramp and %g s of warm-up; %d client "
        "processes; request timeout %g s; backlog %d."
        % (
            meta["date"],
            meta["host"],
            meta["cpus"],
            meta["python"],
            versions,
            meta["think_min"],
            meta["think_max"],
            meta["seconds"],
            meta["warmup"],
            meta["clients"],
            meta["timeout"],
            meta["backlog"],
        ),
        "",
        seed_table(rows, backends, counts, meta),
        "",
        "Cells: replies per second in the measured window; in brackets the error rate (failed, "
        "reset or timed-out calls / all calls in the window) when there were errors. *ideal*: every "
        "reply instant, %.2f QPS per connection." % (2.0 / (meta["think_min"] + meta["think_max"])),
        "",
        "**Caveat.** " + CAVEAT,
        "",
        "## Details",
        "",
        details_table(rows),
        "",
        (
            "CPU: user + system seconds over the measured window (server process with its threads; all "
            "client processes together, and the busiest one). Compare rows of one run only."
        ),
    ]
    extra = notes(rows, meta)
    if extra:
        parts += [""] + ["- " + line for line in extra]
    return "\n".join(parts) + "\n"


def plot(rows: list, backends: list, counts: list, meta: dict, path: str):
    """qps_table.png; None when matplotlib is missing (pip install -e '.[bench]')."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]'): no qps_table.png"
    fig, ax = plt.subplots(figsize=(9, 5.5))
    xs = [0, *sorted(counts)]
    ax.plot(
        xs,
        [ideal_qps(c, meta["think_min"], meta["think_max"]) for c in xs],
        linestyle="--",
        color="grey",
        label="ideal (%.2f QPS/connection)" % (2.0 / (meta["think_min"] + meta["think_max"])),
    )
    errors_seen = False
    for backend in backends:
        mine = sorted(
            (r for r in rows if r["backend"] == backend and r.get("qps") is not None), key=lambda r: r["connections"]
        )
        if not mine:
            continue
        (line,) = ax.plot([r["connections"] for r in mine], [r["qps"] for r in mine], marker="o", label=backend)
        for r in mine:
            if r["errors"]:
                errors_seen = True
                ax.plot(r["connections"], r["qps"], marker="x", markersize=11, color="red", linestyle="none")
                ax.annotate(
                    _pct(r["error_rate"]) + " err",
                    (r["connections"], r["qps"]),
                    textcoords="offset points",
                    xytext=(5, 6),
                    fontsize=8,
                    color=line.get_color(),
                )
    if errors_seen:  # one legend entry for all the error marks, after the backends
        ax.plot([], [], marker="x", markersize=11, color="red", linestyle="none", label="errors (rate annotated)")
    ax.set_xlabel("connections")
    ax.set_ylabel("QPS (replies/s)")
    ax.set_title(
        "HashService.md_five(400,000 chars), think %g-%g s: %s, %d CPUs"
        % (meta["think_min"], meta["think_max"], meta["date"], meta["cpus"] or 0),
        fontsize=10,
    )
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


def write(out: str, rows: list, backends: list, counts: list, meta: dict, png: bool) -> tuple:
    """Write the outputs; (paths written, problems)."""
    os.makedirs(out, exist_ok=True)
    written = [os.path.join(out, "qps_table.json"), os.path.join(out, "qps_table.md")]
    with open(os.path.join(out, "qps_table.json"), "w") as f:
        json.dump(rows, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "qps_table.md"), "w") as f:
        f.write(markdown(rows, backends, counts, meta))
    if png:
        problem = plot(rows, backends, counts, meta, os.path.join(out, "qps_table.png"))
        if problem:
            return written, [problem]
        written.append(os.path.join(out, "qps_table.png"))
    return written, []


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--backends",
        default=",".join(DEFAULT_BACKENDS),
        help="comma-separated, from: %s (default: %s)" % (", ".join(BACKENDS), ",".join(DEFAULT_BACKENDS)),
    )
    parser.add_argument(
        "--connections",
        default="50,100,150,200,250,300,350,400,450",
        help="comma-separated connection counts (default: the seed's 50...450)",
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per cell (30)")
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="unmeasured seconds after the ramp, before measuring (5)"
    )
    parser.add_argument(
        "--out", default="benchmarks/results", help="folder for qps_table.{json,md,png} (benchmarks/results/)"
    )
    parser.add_argument("--clients", type=int, default=2, help="load generator processes (2)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds a call (or reconnect) may take before it counts as an error (10)",
    )
    parser.add_argument(
        "--connect-timeout", type=float, default=30.0, help="seconds for each connect during the ramp (30)"
    )
    parser.add_argument(
        "--connect-batch", type=int, default=100, help="connects in flight per client process during the ramp (100)"
    )
    parser.add_argument(
        "--think-min", type=float, default=hashload.THINK_MIN_S, help="shortest think time, s (the seed's 0.1)"
    )
    parser.add_argument(
        "--think-max", type=float, default=hashload.THINK_MAX_S, help="longest think time, s (the seed's 1.0)"
    )
    parser.add_argument(
        "--backlog",
        type=int,
        default=servers.DEFAULT_BACKLOG,
        help="listen backlog for every server (%d)" % servers.DEFAULT_BACKLOG,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between cells (1)")
    parser.add_argument("--no-png", action="store_true", help="skip qps_table.png")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        parser.error("unknown backend(s): %s (known: %s)" % (", ".join(unknown), ", ".join(BACKENDS)))
    try:
        counts = [int(c) for c in args.connections.split(",") if c.strip()]
    except ValueError:
        parser.error("--connections takes integers, e.g. 50,100,450")
    if not counts or min(counts) < 1 or args.seconds <= 0:
        parser.error("need connection counts >= 1 and --seconds > 0")
    if not 0 <= args.think_min <= args.think_max or args.think_max <= 0:
        parser.error("need 0 <= --think-min <= --think-max, --think-max > 0")

    meta = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "versions": qps_harness._versions(),
        "seconds": args.seconds,
        "warmup": args.warmup,
        "clients": args.clients,
        "timeout": args.timeout,
        "backlog": args.backlog,
        "think_min": args.think_min,
        "think_max": args.think_max,
    }
    rows = []
    total = len(counts) * len(backends)
    for count in counts:
        for backend in backends:
            if rows and args.pause:
                time.sleep(args.pause)
            if not args.quiet:
                sys.stderr.write("cell %d/%d: %s, %d connections\n" % (len(rows) + 1, total, backend, count))
            rows.append(measure(backend, count, args))
            write(args.out, rows, backends, counts, meta, png=False)  # keep what is done so far
    written, problems = write(args.out, rows, backends, counts, meta, png=not args.no_png)
    sys.stdout.write(markdown(rows, backends, counts, meta))
    for problem in problems:
        sys.stderr.write(problem + "\n")
    sys.stderr.write("wrote %s\n" % ", ".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
