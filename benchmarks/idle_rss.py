"""Cost per connection: a server's RSS holding N idle connections, per connection.

    python benchmarks/idle_rss.py --servers dracula-uv,dracula-thread --connections 10000

Starts each server (benchmarks/servers.py), reads its RSS, opens N connections from this
process that send nothing, waits until the server has accepted them all (its RSS stops
changing and one ping on a fresh connection is answered), reads RSS again, and prints the
difference per connection. Idle means never sent a byte: the uv backend allocates a
connection's receive buffer on its first read, so this is the floor of a pooled client.
"""

from __future__ import annotations

import argparse
import resource
import socket
import sys
import time

import callwire
from servers import SERVERS, RunningServer


def rss_kib(pid: int) -> int:
    """Resident set of a process and its children (the supervisor's workers), KiB."""
    from servers import process_tree

    total = 0
    for p in process_tree(pid):
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def settle(pid: int, tries: int = 50) -> int:
    """RSS once two readings 0.2 s apart agree to within 1%."""
    last = rss_kib(pid)
    for _ in range(tries):
        time.sleep(0.2)
        now = rss_kib(pid)
        if abs(now - last) <= last * 0.01:
            return now
        last = now
    return last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="dracula-uv,dracula-thread")
    parser.add_argument("--connections", type=int, default=10_000)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.connections + 256)), hard))
    print("| server | connections | RSS before (MiB) | RSS after (MiB) | per connection (KiB) |")
    print("|---|---:|---:|---:|---:|")
    for name in args.servers.split(","):
        with RunningServer(SERVERS[name]) as server:
            before = settle(server.pid)
            socks = []
            for i in range(args.connections):
                socks.append(socket.create_connection(("127.0.0.1", server.port), timeout=30))
                if i % 1000 == 999:
                    print("  %s: %d connections" % (name, i + 1), file=sys.stderr)
            # One answered ping on a new connection: the server has caught up with its accepts.
            with socket.create_connection(("127.0.0.1", server.port), timeout=30) as probe:
                probe.sendall(callwire.encode_call())
                assert probe.recv(100)
            after = settle(server.pid)
            print(
                "| %s | %d | %.1f | %.1f | %.2f |"
                % (name, args.connections, before / 1024, after / 1024, (after - before) / args.connections)
            )
            for s in socks:
                s.close()


if __name__ == "__main__":
    main()
