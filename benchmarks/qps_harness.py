"""The closed-loop throughput harness behind ping_qps.py and payload_qps.py.

For each cell (a workload from workloads.py, a connection count, a server from servers.py):
start the server (its own process, a free port, the same backlog) serving that workload, probe
it with one real call (the reply must decode to the expected value), run the closed-loop load
generator against it (loadgen.py), read the server's CPU time over the measured window, stop
it. The scripts choose the cells, the baselines the ratio columns compare with, and the title;
this module runs the cells and prints the markdown table, its notes and the --json file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

import loadgen
import servers


def add_options(parser: argparse.ArgumentParser, default_servers: tuple) -> None:
    """The options every throughput script shares (not --connections or the baselines)."""
    parser.add_argument(
        "--servers",
        default=",".join(default_servers),
        help="comma-separated, from: %s, or dracula-uv-wN / dracula-thread-wN "
        "(--workers N), or dracula-uv@PATH / dracula-thread@PATH (the "
        "checkout at PATH: before/after in one run) (default: %s)"
        % (", ".join(servers.SERVERS), ",".join(default_servers)),
    )
    parser.add_argument(
        "--server-cpus",
        metavar="LIST",
        default=None,
        help="pin each server (and its workers) to these CPUs, as taskset -c: e.g. 0 or 0-7 (default: no pinning)",
    )
    parser.add_argument(
        "--client-cpus",
        metavar="LIST",
        default=None,
        help="pin the load-generator processes (and this harness) to these CPUs, e.g. 1-15 (default: no pinning)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per row")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each row")
    parser.add_argument("--clients", type=int, default=2, help="load generator processes")
    parser.add_argument(
        "--backlog",
        type=int,
        default=servers.DEFAULT_BACKLOG,
        help="listen backlog for every server (default: %d)" % servers.DEFAULT_BACKLOG,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--connect-timeout", type=float, default=30.0)
    parser.add_argument("--request-timeout", type=float, default=10.0)
    parser.add_argument(
        "--connect-batch", type=int, default=100, help="connects in flight per client process (default: 100)"
    )
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between rows (default: 1)")
    parser.add_argument("--json", metavar="PATH", help="also write every number to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def check_options(parser: argparse.ArgumentParser, args) -> tuple:
    """Validate the shared options, apply --client-cpus to this process; (server names,
    connection counts)."""
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    unknown = [n for n in names if servers.lookup(n) is None]
    if unknown:
        parser.error(
            "unknown server(s): %s (known: %s, dracula-uv-wN, dracula-thread-wN, dracula-uv@PATH)"
            % (", ".join(unknown), ", ".join(servers.SERVERS))
        )
    try:
        args.server_cpu_set = servers.parse_cpus(args.server_cpus)
        args.client_cpu_set = servers.parse_cpus(args.client_cpus)
    except ValueError as e:
        parser.error(str(e))
    if args.client_cpu_set:
        # The harness itself (progress, /proc reads) stays off the server's cores too; a server
        # not pinned keeps the CPUs this process had before.
        if args.server_cpu_set is None:
            args.server_cpu_set = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, args.client_cpu_set)
    try:
        counts = [int(c) for c in str(args.connections).split(",") if c.strip()]
    except ValueError:
        parser.error("--connections takes integers, e.g. 50 or 50,500,10000")
    if not counts or min(counts) < 1 or args.seconds <= 0:
        parser.error("need at least one connection count >= 1 and --seconds > 0")
    return names, counts


def _fastbinary() -> bool:
    """Whether Apache thrift's C accelerator imports (without it, apache-nonblocking is pure Python)."""
    try:
        from thrift.protocol import fastbinary  # noqa: F401

        return True
    except ImportError:
        return False


def _versions() -> dict:
    from importlib import metadata

    out = {}
    for dist in ("dracula", "thriftpy2", "thrift", "uvloop"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _somaxconn():
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def metadata(args, baselines: list, planned_rows: int) -> dict:
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "versions": _versions(),
        "seconds": args.seconds,
        "warmup": args.warmup,
        "clients": args.clients,
        "backlog": args.backlog,
        "somaxconn": _somaxconn(),
        "request_timeout": args.request_timeout,
        "connect_timeout": args.connect_timeout,
        "server_cpus": args.server_cpus,
        "client_cpus": args.client_cpus,
        "server_affinity": servers.format_cpus(args.server_cpu_set) if args.server_cpus else None,
        "client_affinity": servers.format_cpus(args.client_cpu_set) if args.client_cpus else None,
        "baselines": baselines,
        "fastbinary": _fastbinary(),
        "planned_rows": planned_rows,
    }


def closed_loop(server, connections: int, args, on_phase, label: str) -> dict:
    """A row's default load: `connections` connections each calling the server's workload in a
    closed loop (loadgen.run); the result to merge into the row."""
    return loadgen.run(
        args.host,
        server.port,
        server.request,
        server.reply,
        server.spec.framed,
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
    )


def measure(
    spec: servers.ServerSpec,
    workload,
    connections: int,
    args,
    wire=servers.callwire,
    label: str | None = None,
    make_server=servers.RunningServer,
    drive=closed_loop,
) -> dict:
    """One table row: `spec` serving `workload` under `connections` connections; `wire` encodes
    the request and probes the reply (callwire: binary), `label` names the row (spec.name).
    `make_server`: RunningServer or anything that starts, probes, measures and stops like it
    (fleet_qps.py's HAProxy fleet). `drive`: the load, as closed_loop (which it defaults to)
    takes and returns it; it raises loadgen.LoadgenError when it cannot measure."""
    row = {"server": label or spec.name, "framed": spec.framed, "workload": workload.name, "connections": connections}
    server = make_server(
        spec, host=args.host, backlog=args.backlog, cpus=args.server_cpu_set, workload=workload, wire=wire
    )
    row["request_bytes"] = len(server.request)
    try:
        try:
            server.start()
        except servers.ServerFailed as e:
            row["failed"] = "did not start: %s" % e
            return row
        row["listen_backlog"] = server.listen_backlog()
        cpu = {}

        def on_phase(name):
            cpu[name] = server.cpu_seconds()

        label = "%s, %s, %d conns" % (row["server"], workload.name, connections)
        try:
            result = drive(server, connections, args, on_phase, label)
        except loadgen.LoadgenError as e:
            row["failed"] = "load generator: %s" % e
            return row
        row.update(result)
        if "measure" in cpu and "end" in cpu:
            row["server_cpu_s"] = max(0.0, cpu["end"] - cpu["measure"])
        if not server.alive():
            row["server_exit"] = server.proc.returncode
            row["server_output"] = server.output(2000)
        return row
    finally:
        server.close()


def run_cells(cells: list, args, meta: dict) -> list:
    """Measure each (workload, connections, server name or ServerSpec[, wire, label, make_server,
    drive]) in turn; the rows. Ctrl-C (or `timeout -s INT`) stops early: the rows measured so
    far, and meta["interrupted"]."""
    rows = []
    try:
        for workload, count, server, *variant in cells:
            if rows and args.pause:
                time.sleep(args.pause)
            spec = servers.lookup(server) if isinstance(server, str) else server
            rows.append(measure(spec, workload, count, args, *variant))
    except KeyboardInterrupt:
        meta["interrupted"] = True
        sys.stderr.write("\ninterrupted: %d of %d rows measured\n" % (len(rows), meta["planned_rows"]))
    return rows


def _fmt(value, spec: str, missing: str = "—") -> str:
    return missing if value is None else format(value, spec)


def _size(n: int) -> str:
    return "%.0f B" % n if n < 1000 else "%.1f KB" % (n / 1000) if n < 1e6 else "%.2f MB" % (n / 1e6)


def _cpu_per_call(r: dict):
    """Server CPU µs per call answered: unlike QPS, not skewed by how a shared machine's
    scheduler splits its cores between a one-thread server and a many-thread one."""
    cpu = r.get("server_cpu_s")
    return 1e6 * cpu / r["requests"] if cpu is not None and r.get("requests") else None


def table(rows: list, baselines: list, show_workload: bool = False) -> str:
    """The markdown table; a "vs B" column per baseline server (QPS ratio, same cell). With
    show_workload, a payload column and a server CPU µs per call column too."""
    head = (
        ["server"]
        + (["payload"] if show_workload else [])
        + ["connections", "QPS", "p50 ms", "p99 ms", "error rate", "server CPU s"]
        + (["server CPU µs/call"] if show_workload else [])
        + ["client CPU s"]
        + ["vs %s" % b for b in baselines]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    # A row is compared with its baseline's row of the same round (rows of --rounds runs).
    base = {(r["server"], r.get("workload"), r["connections"], r.get("round")): r["qps"] for r in rows if r.get("qps")}
    for r in rows:
        cells = [r["server"] + (" (framed)" if r["framed"] else "") + (" #%d" % r["round"] if r.get("round") else "")]
        if show_workload:
            cells.append("%s (%s)" % (r["workload"], _size(r["request_bytes"])))
        cells.append(str(r["connections"]))
        if "failed" in r:
            cells += ["failed"] + ["—"] * (len(head) - len(cells) - 1)
        else:
            cells += [
                _fmt(r["qps"], ",.0f"),
                _fmt(r["p50_ms"], ".2f"),
                _fmt(r["p99_ms"], ".2f"),
                "%.2f%%" % (100 * r["error_rate"]),
                _fmt(r.get("server_cpu_s"), ".2f"),
            ]
            if show_workload:
                cells.append(_fmt(_cpu_per_call(r), ",.0f"))
            cells.append(_fmt(r["client_cpu_s"], ".2f"))
            for b in baselines:
                qps = base.get((b, r.get("workload"), r["connections"], r.get("round")))
                ratio = r["qps"] / qps if qps else None
                cells.append(_fmt(ratio, ".2f") + ("x" if ratio is not None else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(rows: list, meta: dict) -> list:
    out = []
    expected = min(meta["backlog"], meta["somaxconn"] or meta["backlog"])
    for r in rows:
        where = "%s at %d connections" % (r["server"], r["connections"])
        if r.get("workload") not in (None, "ping"):
            where = "%s, %s payload at %d connections" % (r["server"], r["workload"], r["connections"])
        if "failed" in r:
            out.append("%s failed: %s" % (where, r["failed"].strip().splitlines()[0]))
            continue
        if r.get("listen_backlog") not in (None, expected):
            out.append("%s listened with backlog %s, not %d" % (where, r["listen_backlog"], expected))
        if r["errors"]:
            kinds = ", ".join("%s %d" % (k, n) for k, n in r["error_kinds"].items() if n)
            out.append(
                "%s: %d errors (%s); %d/%d connected at start"
                % (where, r["errors"], kinds, r["connected"], r["connections"])
            )
        if r["stalled_at_end"]:
            out.append(
                "%s: %d calls went unanswered for the whole measured window (the oldest "
                "for %.1f s; server CPU %s s)%s"
                % (
                    where,
                    r["stalled_at_end"],
                    r["oldest_in_flight_ms"] / 1000,
                    _fmt(r.get("server_cpu_s"), ".2f"),
                    ": stalled?" if not r["requests"] else "",
                )
            )
        if "server_exit" in r:
            out.append("%s: the server exited (status %s) during the run" % (where, r["server_exit"]))
    if meta.get("fastbinary") is False and any(r["server"] == "apache-nonblocking" for r in rows):
        out.append(
            "apache-nonblocking ran without Apache's C accelerator (thrift.protocol.fastbinary "
            "did not import): pure-Python protocol"
        )
    if meta.get("interrupted"):
        out.append("the run was interrupted: %d of %d rows measured" % (len(rows), meta["planned_rows"]))
    return out


def report(title: str, rows: list, meta: dict, args, show_workload: bool = False, preamble: tuple = ()) -> int:
    """Print the title line, `preamble` lines, the table and its notes; write --json; the exit
    status (130 when interrupted)."""
    pinning = ""
    if args.server_cpus or args.client_cpus:
        pinning = "; server on CPUs %s, load generator on CPUs %s" % (
            args.server_cpus or "(any)",
            args.client_cpus or "(any)",
        )
    print(
        "%s, %s: %d CPUs, Python %s, %s; %.0f s measured after %.0f s warm-up, "
        "%d client processes, backlog %d%s"
        % (
            title,
            meta["date"],
            meta["cpus"],
            meta["python"],
            ", ".join("%s %s" % kv for kv in meta["versions"].items() if kv[1]),
            args.seconds,
            args.warmup,
            args.clients,
            args.backlog,
            pinning,
        )
    )
    for line in preamble:
        print(line)
    print()
    print(table(rows, meta["baselines"], show_workload))
    extra = notes(rows, meta)
    if extra:
        print()
        for line in extra:
            print("- " + line)
    if args.json:
        folder = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(folder, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": rows}, f, indent=2)
            f.write("\n")
    return 130 if meta.get("interrupted") else 0


def median_ratios(rows: list, labels: list, baseline: str) -> str:
    """Per workload, connection count and row (`labels`, the rows' server names): the median
    over --rounds of its QPS over the `baseline` row's of the same workload, count and round."""
    lines = [
        "| row | payload | connections | rounds | median vs %s | min | max |" % baseline,
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    qps = {(r["server"], r["workload"], r["connections"], r["round"]): r.get("qps") for r in rows}
    for workload, count in dict.fromkeys((r["workload"], r["connections"]) for r in rows):
        for label in labels:
            ratios = [
                q / base
                for (name, w, c, rnd), q in qps.items()
                if (name, w, c) == (label, workload, count)
                and q
                and (base := qps.get((baseline, workload, count, rnd)))
            ]
            if ratios:
                lines.append(
                    "| %s | %s | %d | %d | %.2fx | %.2fx | %.2fx |"
                    % (label, workload, count, len(ratios), statistics.median(ratios), min(ratios), max(ratios))
                )
    return "\n".join(lines)
