"""Overload: goodput and latency past capacity, and the partial-frame memory attack (issue #12).

    python benchmarks/overload.py goodput [--loads 0.5,1,2,3,4] [--seconds 10] [--png benchmarks/results/overload.png]
    python benchmarks/overload.py memory [--connections 100,300,1000] [--hold 20]

goodput: the workload of issue #12. Showcase.sleep_blocking(20), a @dracula.blocking handler
that sleeps 20 ms, with --blocking-threads 4: capacity ~200 calls/s. Connections are closed
loops paced at one call per second whose calls give up after 1 s (benchmarks/
overload_load.py), so N connections offer N calls/s and a load of k x capacity is 200k
connections. Servers: dracula (uv) with shedding (--queue-timeout 0.25), dracula without, and
thriftpy2's threaded server (one thread per connection: no pool, so no 200 calls/s ceiling;
shown as the classic alternative). Per cell: goodput (calls answered correctly within 1 s, per
second), shed (overloaded replies per second), client timeouts, p50/p99 of ok and of shed
replies. A markdown table on stdout, every number to --json, a PNG with --png (matplotlib, the
`bench` extra).

memory: dracula (uv, default settings: --max-buffer-memory 256 MiB) under C connections each
sending 15 MB of a 16,000,000-byte frame and holding (benchmarks/partial_frames.py): server RSS
growth against the budget, and a good client's ping p50/p99 throughout.
"""

from __future__ import annotations

import argparse
import json
import sys

import overload_load
import partial_frames
import servers
import workloads
from servers import RunningServer, ServerSpec

CAPACITY = 200  # calls/s: 4 threads / 20 ms
SLEEP = workloads.Workload(
    "sleep20",
    "idl/showcase.thrift",
    "Showcase",
    "examples.showcase:ShowcaseHandler",
    "sleep_blocking",
    lambda module: {"ms": 20},
    "slept 20 ms",
    "Showcase.sleep_blocking(20): a @blocking 20 ms sleep",
)
POOL = ("--blocking-threads", "4")
GOODPUT_SERVERS = (
    ServerSpec(
        "dracula-shed",
        False,
        "dracula uv, --blocking-threads 4 --queue-timeout 0.25",
        servers._dracula("uv") + POOL + ("--queue-timeout", "0.25"),
    ),
    ServerSpec("dracula", False, "dracula uv, --blocking-threads 4, no shedding", servers._dracula("uv") + POOL),
    servers.SERVERS["thriftpy2-threaded"],
)


def goodput(args) -> list:
    rows = []
    for spec in GOODPUT_SERVERS:
        if args.servers and spec.name not in args.servers:
            continue
        for load in args.loads:
            connections = round(load * CAPACITY)
            with RunningServer(spec, workload=SLEEP) as server:
                print("%s at %gx (%d connections)..." % (spec.name, load, connections), file=sys.stderr)
                row = overload_load.run(
                    server.host,
                    server.port,
                    server.request,
                    server.reply,
                    connections,
                    seconds=args.seconds,
                    warmup=args.warmup,
                    clients=args.clients,
                )
                row.update(server=spec.name, load=load, alive=server.alive())
            rows.append(row)
            print(goodput_row(row), file=sys.stderr)
    return rows


GOODPUT_HEADER = (
    "| server | load | connections | goodput/s (x capacity) | shed/s | timeouts | ok p50 / p99 ms "
    "| shed p50 / p99 ms |\n|---|---:|---:|---:|---:|---:|---:|---:|"
)


def goodput_row(r) -> str:
    def ms(kind):
        return "%s / %s" % (r["%s_p50_ms" % kind] or "—", r["%s_p99_ms" % kind] or "—")

    return "| %s | %gx | %d | %.0f (%.2f) | %.0f | %d | %s | %s |" % (
        r["server"],
        r["load"],
        r["connections"],
        r["goodput"],
        r["goodput"] / CAPACITY,
        r["shed_rate"],
        r["timeout"],
        ms("ok"),
        ms("shed"),
    )


def plot(rows, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in dict.fromkeys(r["server"] for r in rows):
        mine = [r for r in rows if r["server"] == name]
        loads = [r["load"] for r in mine]
        left.plot(loads, [r["goodput"] / CAPACITY for r in mine], marker="o", label=name)
        right.plot(loads, [r["ok_p99_ms"] or float("nan") for r in mine], marker="o", label=name)
    left.set(xlabel="offered load (x capacity)", ylabel="goodput (x capacity)", title="goodput: answered within 1 s")
    right.set(
        xlabel="offered load (x capacity)",
        ylabel="p99 of answered calls (ms)",
        yscale="log",
        title="latency of successful calls",
    )
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("@blocking 20 ms handler, 4 threads (capacity ~200 calls/s), clients give up after 1 s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def memory(args) -> list:
    rows = []
    for connections in args.connections:
        spec = servers.SERVERS["dracula-uv"]
        with RunningServer(spec) as server:
            print("partial frames: %d connections..." % connections, file=sys.stderr)
            row = partial_frames.run(server, connections, args.hold)
        rows.append(row)
        print(memory_row(row), file=sys.stderr)
    return rows


MEMORY_HEADER = (
    "| connections x 15 MB | server RSS before (MiB) | peak (MiB) | growth (MiB) | budget (MiB) "
    "| good pings | ping p50 / p99 / max ms | ping errors | server alive |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


def memory_row(r) -> str:
    return "| %d | %.0f | %.0f | %.0f | 256 | %d | %s / %s / %s | %d | %s |" % (
        r["connections"],
        r["rss_before_mib"],
        r["rss_peak_mib"],
        r["growth_mib"],
        r["pings"],
        r["ping_p50_ms"],
        r["ping_p99_ms"],
        r["ping_max_ms"],
        r["ping_errors"],
        "yes" if r["alive"] else "NO",
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    g = sub.add_parser("goodput")
    g.add_argument("--loads", type=lambda s: [float(x) for x in s.split(",")], default=[0.5, 1, 2, 3, 4])
    g.add_argument("--servers", type=lambda s: s.split(","), default=None)
    g.add_argument("--seconds", type=float, default=10.0)
    g.add_argument("--warmup", type=float, default=3.0)
    g.add_argument("--clients", type=int, default=2)
    g.add_argument("--png", default=None)
    g.add_argument("--json", default=None)
    m = sub.add_parser("memory")
    m.add_argument("--connections", type=lambda s: [int(x) for x in s.split(",")], default=[100, 300, 1000])
    m.add_argument("--hold", type=float, default=20.0, help="seconds the attack holds its connections")
    m.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.what == "goodput":
        rows = goodput(args)
        print(GOODPUT_HEADER + "\n" + "\n".join(goodput_row(r) for r in rows))
        if args.png:
            plot(rows, args.png)
    else:
        rows = memory(args)
        print(MEMORY_HEADER + "\n" + "\n".join(memory_row(r) for r in rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
