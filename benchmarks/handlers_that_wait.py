"""Handlers that wait (issue #26): every server against thriftpy2's threaded server, in one run.

    python benchmarks/handlers_that_wait.py                       # rows A, B, C; 10 s each
    python benchmarks/handlers_that_wait.py --rows A --connections 50 --seconds 3 --out /tmp/w

Most real handlers wait on a database or another service. A thriftpy2 user writes such a
handler as a plain method; on a one-thread event loop a plain method that blocks stalls every
connection. Rows (the handlers: benchmarks/wait.thrift, benchmarks/wait_handlers.py, and the
seed's examples/hash.py):

  A  `WaitService.wait(20)`: a plain method that `time.sleep`s 20 ms, closed loop, at each
     `--connections` count (50 and 1,000);
  B  the seed's `HashService.md_five` over 400,000 characters (hashlib.md5 releases the GIL),
     closed loop, `--md5-connections` (50);
  C  mixed: `--mixed-connections` (50) keep `wait(20)` saturated (closed loop) while
     `--ping-connections` (10) other connections call `WaitService.ping` in a closed loop, all
     on one server: ping's calls/s and p50/p99, and wait's calls/s.

Servers (`--servers`, default thriftpy2-threaded, dracula-uv, dracula-uv+blocking,
dracula-thread): any name benchmarks/servers.py knows (dracula-uv@PATH included, to run another
checkout's dracula in the same run), serving the plain handler; with `+blocking` appended, the
handler with the waiting method marked `@dracula.blocking` (BlockingWaitHandler,
BlockingHashHandler); `+blockingN` also passes `--blocking-threads N`. The ratio column
compares each row with thriftpy2-threaded's in the same part and connection count.

Each row is a run of the ping harness (qps_harness.py: its own server process on a free port,
backlog 4096, a probe call whose reply must decode to the expected value, every connection open
before the warm-up, server and load-generator CPU over the measured window, SIGTERM then
SIGKILL). Part C drives two groups of connections on one timeline (loadgen.run_mix). A
markdown report (the command line, the machine, the tables, notes, the issue's targets as
met/not met in this run) goes to stdout and to `--out`/handlers_that_wait.md, every number to
`--out`/handlers_that_wait.json. Ctrl-C or SIGTERM stop the run early: the servers are stopped
and the rows measured so far are reported.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys

import callwire
import hashload
import loadgen
import qps_harness
import servers
import workloads

HERE = os.path.dirname(os.path.abspath(__file__))
PARTS = ("A", "B", "C")
BASELINE = "thriftpy2-threaded"
DEFAULT_SERVERS = (BASELINE, "dracula-uv", "dracula-uv+blocking", "dracula-thread")
BLOCKING_TWIN = {  # each plain handler and its twin with the waiting method marked @dracula.blocking
    "benchmarks.wait_handlers:WaitHandler": "benchmarks.wait_handlers:BlockingWaitHandler",
    "examples.hash:HashHandler": "examples.hash:BlockingHashHandler",
}
VARIANT = re.compile(r"(.+)\+blocking([1-9][0-9]*)?$")


def wait_workload(ms: int) -> workloads.Workload:
    return workloads.Workload(
        "wait%d" % ms,
        "benchmarks/wait.thrift",
        "WaitService",
        "benchmarks.wait_handlers:WaitHandler",
        "wait",
        lambda module: {"ms": ms},
        "waited %d ms" % ms,
        "WaitService.wait(%d): time.sleep(%d ms) in a plain method" % (ms, ms),
    )


PING = workloads.Workload(
    "ping",
    "benchmarks/wait.thrift",
    "WaitService",
    "benchmarks.wait_handlers:WaitHandler",
    "ping",
    lambda module: {},
    "pong",
    'WaitService.ping() -> "pong"',
)
MD5 = workloads.Workload(
    "md5",
    "idl/hash.thrift",
    "HashService",
    "examples.hash:HashHandler",
    "md_five",
    lambda module: {"input_str": hashload.SEED_INPUT},
    hashlib.md5(hashload.SEED_INPUT.encode()).hexdigest(),
    "HashService.md_five(400,000 characters): hashlib.md5 (releases the GIL) in a plain method",
)


def variant(name: str, workload: workloads.Workload):
    """(ServerSpec, workload) for a server name, `+blocking[N]` included; None if unknown."""
    found = VARIANT.match(name)
    spec = servers.lookup(found.group(1) if found else name)
    if spec is None:
        return None
    if found:
        workload = dataclasses.replace(workload, handler=BLOCKING_TWIN[workload.handler])
        extra = ("--blocking-threads", found.group(2)) if found.group(2) else ()
        spec = dataclasses.replace(spec, name=name, argv=spec.argv + extra)
    return spec, workload


def mixed(ping_connections: int):
    """Part C's load (a qps_harness drive): the row's connections call the server's workload
    (wait) while `ping_connections` others call ping, on one timeline; wait's result, with
    ping's under "ping"."""

    def drive(server, connections, args, on_phase, label):
        request = callwire.encode_call(PING, framed=server.spec.framed)
        try:
            reply = callwire.probe(server.host, server.port, server.spec.framed, request, PING)
        except (OSError, callwire.ProbeError) as e:
            raise loadgen.LoadgenError("ping probe: %s" % e) from e
        loads = [
            loadgen.Load(server.request, server.reply, connections, args.clients),
            loadgen.Load(request, reply, ping_connections, 1),
        ]
        slow, ping = loadgen.run_mix(
            args.host,
            server.port,
            server.spec.framed,
            loads,
            args.seconds,
            warmup=args.warmup,
            connect_timeout=args.connect_timeout,
            request_timeout=args.request_timeout,
            connect_batch=args.connect_batch,
            label=label,
            progress=not args.quiet,
            on_phase=on_phase,
            cpus=args.client_cpu_set,
        )
        slow["ping"] = ping
        slow["client_cpu_s"] += ping["client_cpu_s"]
        return slow

    return drive


def plan(args, names: list) -> list:
    """(part, cell) in order; a cell as qps_harness.run_cells takes it."""
    wait = wait_workload(args.sleep_ms)
    cells = []

    def add(part, workload, count, drive=qps_harness.closed_loop):
        for name in names:
            spec, served = variant(name, workload)
            cells.append((part, (served, count, spec, callwire, name, servers.RunningServer, drive)))

    for part in args.parts:
        if part == "A":
            for count in args.counts:
                add("A", wait, count)
        elif part == "B":
            add("B", MD5, args.md5_connections)
        else:
            add("C", wait, args.mixed_connections, mixed(args.ping_connections))
    return cells


# -- the report ---------------------------------------------------------------------------------


def _fmt(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _find(rows, part, server, connections=None):
    for r in rows:
        if r["part"] == part and r["server"] == server and connections in (None, r["connections"]):
            return r
    return None


def _ratio(a, b):
    return a / b if a is not None and b else None


def mixed_table(rows: list, ms: int) -> str:
    head = [
        "server",
        "wait conns",
        "ping conns",
        "wait calls/s",
        "wait p99 ms",
        "ping calls/s",
        "ping p50 ms",
        "ping p99 ms",
        "ping p99 vs %s" % BASELINE,
        "errors wait / ping",
        "server CPU s",
        "client CPU s",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for r in rows:
        if "failed" in r:
            cells = [r["server"], str(r["connections"]), "failed"] + ["—"] * (len(head) - 3)
            lines.append("| " + " | ".join(cells) + " |")
            continue
        ping = r["ping"]
        base = _find(rows, "C", BASELINE)
        vs = _ratio(ping["p99_ms"], base["ping"]["p99_ms"] if base and "ping" in base else None)
        lines.append(
            "| "
            + " | ".join(
                [
                    r["server"],
                    str(r["connections"]),
                    str(ping["connections"]),
                    "%s (%s of %d)"
                    % (
                        _fmt(r["qps"], ",.0f"),
                        _fmt(_ratio(r["qps"], r["connections"] * 1000 / ms), ".0%"),
                        r["connections"] * 1000 // ms,
                    ),
                    _fmt(r["p99_ms"], ".1f"),
                    _fmt(ping["qps"], ",.0f"),
                    _fmt(ping["p50_ms"], ".2f"),
                    _fmt(ping["p99_ms"], ".2f"),
                    _fmt(vs, ".2f") + ("x" if vs is not None else ""),
                    "%d / %d" % (r["errors"], ping["errors"]),
                    _fmt(r.get("server_cpu_s"), ".2f"),
                    _fmt(r["client_cpu_s"], ".2f"),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def targets(rows: list, counts: list) -> list:
    """Issue #26's targets for dracula-uv (the default server, plain handlers), as measured in
    this run: (text, met) pairs; only those whose rows ran."""
    out = []

    def row_ok(r):
        return r is not None and "failed" not in r and r.get("qps")

    for count, (min_ratio, p99_factor, no_errors) in ((50, (0.9, 1.2, False)), (1000, (1.0, None, True))):
        mine, base = _find(rows, "A", "dracula-uv", count), _find(rows, "A", BASELINE, count)
        if count not in counts or not (row_ok(base) and mine and "failed" not in mine):
            continue
        ratio = mine["qps"] / base["qps"]
        met = ratio >= min_ratio
        text = "A, %d connections: dracula-uv %.2fx thriftpy2-threaded's calls/s (target >= %.1fx)" % (
            count,
            ratio,
            min_ratio,
        )
        if p99_factor:
            p99 = _ratio(mine["p99_ms"], base["p99_ms"])
            met = met and p99 is not None and p99 <= p99_factor
            text += "; p99 %s ms = %sx its %.1f ms (target <= %.1fx)" % (
                _fmt(mine["p99_ms"], ".1f"),
                _fmt(p99, ".2f"),
                base["p99_ms"],
                p99_factor,
            )
        if no_errors:
            met = met and mine["errors"] == 0
            text += "; %d errors (target 0)" % mine["errors"]
            if mine["stalled_at_end"]:  # a window shorter than the request timeout hides a stall's errors
                text += ", %d calls unanswered for the whole window" % mine["stalled_at_end"]
        out.append((text, met))
    plain, pool = _find(rows, "B", "dracula-uv"), _find(rows, "B", "dracula-uv+blocking")
    if row_ok(plain) and row_ok(pool):
        ratio = plain["qps"] / pool["qps"]
        out.append(
            (
                "B: dracula-uv, md5 as written, %.2fx the calls/s of @blocking in this run "
                "(target: reaches it; read as >= 0.95x)" % ratio,
                ratio >= 0.95,
            )
        )
    mine = _find(rows, "C", "dracula-uv")
    if mine and "failed" not in mine:
        p99 = mine["ping"]["p99_ms"]
        out.append(
            (
                "C: dracula-uv, ping p99 %s ms while wait is saturated (target < 5 ms)" % _fmt(p99, ".2f"),
                p99 is not None and p99 < 5,
            )
        )
    return out


def _commit() -> str | None:
    try:
        head = subprocess.run(
            ["git", "-C", servers.ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", servers.ROOT, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + (" (uncommitted changes)" if dirty else "")) if head else None


def report(rows: list, meta: dict, args) -> str:
    ms = args.sleep_ms
    out = [
        "# Handlers that wait (issue #26)",
        "",
        "`%s`" % meta["command"],
        "",
        "%s, %s: %d CPUs, Python %s, %s; dracula from %s at %s; %.0f s measured after %.0f s warm-up, "
        "%d client processes, backlog %d, request timeout %.0f s. Compare rows of this run only."
        % (
            meta["host"],
            meta["date"],
            meta["cpus"],
            meta["python"],
            ", ".join("%s %s" % kv for kv in meta["versions"].items() if kv[1]),
            servers.ROOT,
            meta["commit"],
            args.seconds,
            args.warmup,
            args.clients,
            args.backlog,
            args.request_timeout,
        ),
    ]
    by_part = {p: [r for r in rows if r["part"] == p] for p in PARTS}
    if by_part["A"]:
        out += [
            "",
            "## A. A %d ms `time.sleep` in a plain method, closed loop" % ms,
            "",
            "%s. One call takes >= %d ms, so N connections can reach at most N x %d calls/s "
            "(%s)."
            % (
                wait_workload(ms).about,
                ms,
                1000 // ms,
                ", ".join("%s at %d" % (format(c * 1000 // ms, ","), c) for c in args.counts),
            ),
            "",
            qps_harness.table(by_part["A"], [BASELINE], show_workload=True),
        ]
    if by_part["B"]:
        out += [
            "",
            "## B. The seed's md5 of 400,000 characters, closed loop",
            "",
            "%s. So threads hash on every core, and one event loop on one unless the hashing "
            "runs in a thread pool (DESIGN.md)." % MD5.about,
            "",
            qps_harness.table(by_part["B"], [BASELINE], show_workload=True),
        ]
    if by_part["C"]:
        out += [
            "",
            "## C. Mixed: ping on some connections while wait(%d) saturates the others" % ms,
            "",
            "Every connection is a closed loop; wait's calls/s is shown against its ceiling "
            "(connections x %d/s)." % (1000 // ms),
            "",
            mixed_table(by_part["C"], ms),
        ]
    extra = qps_harness.notes(rows, meta)
    if extra:
        out += ["", "Notes:", ""] + ["- " + line for line in extra]
    goals = targets(rows, args.counts)
    if goals:
        out += ["", "## Issue #26's targets, in this run", ""]
        out += ["- %s: %s" % ("met" if met else "NOT met", text) for text, met in goals]
        out.append(
            "- not measured here: ping and the small struct call no slower than before the change "
            "(`ping_qps.py` / `payload_qps.py` with `--servers dracula-uv,dracula-uv@OLD_CHECKOUT`)"
        )
    return "\n".join(out) + "\n"


# -- the command line ---------------------------------------------------------------------------


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # the harness's Ctrl-C path: stop the servers, report what ran


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    qps_harness.add_options(parser, DEFAULT_SERVERS)
    parser.add_argument("--rows", default=",".join(PARTS), help="parts to run, from A, B, C (default: all)")
    parser.add_argument(
        "--connections", default="50,1000", help="part A's connection counts, comma-separated (default: 50,1000)"
    )
    parser.add_argument("--md5-connections", type=int, default=50, help="part B's connections (default: 50)")
    parser.add_argument(
        "--mixed-connections", type=int, default=50, help="part C's connections calling wait (default: 50)"
    )
    parser.add_argument(
        "--ping-connections", type=int, default=10, help="part C's connections calling ping (default: 10)"
    )
    parser.add_argument("--sleep-ms", type=int, default=20, help="what wait sleeps, in ms (default: 20)")
    parser.add_argument(
        "--out",
        default=os.path.join(HERE, "results"),
        help="folder for handlers_that_wait.md and .json (default: benchmarks/results)",
    )
    args = parser.parse_args(argv)
    args.parts = [p.strip().upper() for p in args.rows.split(",") if p.strip()]
    if not args.parts or any(p not in PARTS for p in args.parts):
        parser.error("--rows takes a comma-separated list from: A, B, C")
    names = list(dict.fromkeys(n.strip() for n in args.servers.split(",") if n.strip()))
    for name in names:
        found = VARIANT.match(name)
        if found and found.group(2) and not name.startswith("dracula-"):
            parser.error("%s: --blocking-threads is dracula's option" % name)
    # check_options validates the server names (without +blocking), the CPU lists and --connections.
    args.servers = ",".join(dict.fromkeys(VARIANT.sub(r"\1", n) for n in names))
    _, args.counts = qps_harness.check_options(parser, args)
    if min(args.md5_connections, args.mixed_connections, args.ping_connections, args.sleep_ms) < 1:
        parser.error("connection counts and --sleep-ms must be >= 1")
    cells = plan(args, names)
    meta = qps_harness.metadata(args, [BASELINE], len(cells))
    meta.update(
        command=shlex.join(["python", *sys.argv]),
        commit=_commit(),
        servers=names,
        parts=args.parts,
        sleep_ms=args.sleep_ms,
        md5_connections=args.md5_connections,
        mixed_connections=args.mixed_connections,
        ping_connections=args.ping_connections,
        workloads={w.name: w.about for w in (wait_workload(args.sleep_ms), MD5, PING)},
    )
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        rows = qps_harness.run_cells([cell for _, cell in cells], args, meta)
    finally:
        signal.signal(signal.SIGTERM, previous)
    for (part, _), row in zip(cells, rows, strict=False):
        row["part"] = part
    text = report(rows, meta, args)
    print(text, end="")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "handlers_that_wait.md"), "w") as f:
        f.write(text)
    for path in filter(None, (os.path.join(args.out, "handlers_that_wait.json"), args.json)):
        with open(path, "w") as f:
            json.dump({"meta": meta, "results": rows}, f, indent=2)
            f.write("\n")
    return 130 if meta.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
