"""A full table of idle connections must not lock out a new client: its first call's latency.

    python benchmarks/idle_eviction.py --backends uv,thread --idle 1000 --newcomers 200

For each backend: `dracula serve --max-connections IDLE` (PingService), IDLE connections that each
make one call and then sit idle, then NEWCOMERS clients one after another, each on a new
connection: connect, ping, read the reply. Each newcomer stays open (the table stays full), so
every one of them needs an eviction. Reports p50/p99/max of connect-to-reply latency, the
newcomers refused (closed without a reply: must be 0) and dracula_evicted_connections_total
from /metrics (must equal NEWCOMERS). Issue #15's goal: p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import resource
import socket
import sys
import time
import urllib.request

from servers import SERVERS, RunningServer, ServerSpec, free_port

TIMEOUT = 10.0


def spec_for(backend: str, cap: int, metrics_port: int) -> ServerSpec:
    base = SERVERS["dracula-" + backend]
    return ServerSpec(
        base.name,
        base.framed,
        base.about,
        (*base.argv, "--max-connections", str(cap), "--metrics-port", str(metrics_port)),
    )


def first_call(port: int, request: bytes, expected: bytes):
    """(seconds from connect to the whole reply, the open socket); None as the time if the
    server closed or answered anything else."""
    started = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.sendall(request)
        got = b""
        while len(got) < len(expected):
            chunk = sock.recv(65536)
            if not chunk:
                return None, sock
            got += chunk
    except OSError:
        return None, sock
    return (time.perf_counter() - started if got == expected else None), sock


def evictions(metrics_port: int) -> float:
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port, timeout=TIMEOUT) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("dracula_evicted_connections_total "):
                return float(line.split()[1])
    return 0.0


def percentile(sorted_values, p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]


def run(backend: str, idle: int, newcomers: int) -> dict:
    metrics_port = free_port()
    with RunningServer(spec_for(backend, idle, metrics_port)) as server:
        request, expected = server.request, server.reply
        held = []
        for i in range(idle):
            seconds, sock = first_call(server.port, request, expected)
            assert seconds is not None, "idle connection %d was not served" % i
            held.append(sock)
        print("  %s: %d idle connections" % (backend, idle), file=sys.stderr)
        latencies, refused = [], 0
        for _ in range(newcomers):
            seconds, sock = first_call(server.port, request, expected)
            held.append(sock)  # stays open: the table stays full, the next newcomer needs an eviction
            if seconds is None:
                refused += 1
            else:
                latencies.append(seconds)
        evicted = evictions(metrics_port)
        for sock in held:
            sock.close()
    latencies.sort()
    ms = [1000 * percentile(latencies, p) for p in (50, 99)] + [1000 * latencies[-1]] if latencies else [0, 0, 0]
    return dict(
        backend=backend,
        idle=idle,
        newcomers=newcomers,
        p50=ms[0],
        p99=ms[1],
        max=ms[2],
        refused=refused,
        evicted=evicted,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="uv,thread")
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--newcomers", type=int, default=200)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # the server inherits it
    want = 2 * (args.idle + args.newcomers) + 256
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, want)), hard))
    rows = [run(backend, args.idle, args.newcomers) for backend in args.backends.split(",")]
    print("| backend | idle connections | newcomers | first call p50 (ms) | p99 (ms) | max (ms) | refused | evicted |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            "| dracula-%s | %d | %d | %.2f | %.2f | %.2f | %d | %d |"
            % (r["backend"], r["idle"], r["newcomers"], r["p50"], r["p99"], r["max"], r["refused"], r["evicted"])
        )
    if any(r["refused"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
