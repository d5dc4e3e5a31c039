"""The partial-frame attack: C connections each send 15 MB of a frame that declares 16,000,000
bytes (legal under the default 16 MiB limit) and then hold, never sending the rest.

Without a global budget every such connection makes the server buffer its 15 MB (measured in
issue #12: +3.2 GB RSS with 200 connections). With --max-buffer-memory the server stops
reading a connection whose buffer would grow past the budget, so its RSS grows by at most the
budget plus per-connection overhead, and a good client's calls on another connection keep
being answered.

The attack runs in one child process (non-blocking sockets, one shared 15 MB payload sent by
memoryview slices, no copies); this process samples the server's RSS every 0.1 s and, on
another thread, pings it over one thriftpy2 connection for the whole run, recording each
call's latency.
"""

from __future__ import annotations

import multiprocessing
import selectors
import socket
import struct
import threading
import time

import thriftpy2.rpc

import workloads
from idle_rss import rss_kib

DECLARED = 16_000_000
SENT = 15_000_000


def _attack(host, port, connections, hold_s, ready):
    """Open `connections`, push SENT bytes of a DECLARED-byte frame on each as fast as the
    server takes them, hold them open until `hold_s` has passed; then close all."""
    payload = memoryview(struct.pack("!i", DECLARED) + b"\x80\x01\x00\x01" + bytes(SENT - 4))
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(connections):
        s = socket.create_connection((host, port))
        s.setblocking(False)
        socks.append(s)
        sel.register(s, selectors.EVENT_WRITE, [0])
    ready.set()
    end = time.monotonic() + hold_s
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.1):
            sent = key.data
            try:
                sent[0] += key.fileobj.send(payload[sent[0] :])
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:  # closed by the server (it waited too long for memory)
                sel.unregister(key.fileobj)
                continue
            if sent[0] >= len(payload):
                sel.unregister(key.fileobj)  # all 15 MB sent: hold
    for s in socks:
        s.close()


def _pinger(host, port, stop, latencies, errors):
    service = workloads.PING.thrift_service()
    c = thriftpy2.rpc.make_client(service, host, port, timeout=10_000)
    while not stop.is_set():
        t = time.perf_counter()
        try:
            c.ping()
            latencies.append(time.perf_counter() - t)
        except Exception:
            errors.append(time.monotonic())
            c.close()
            c = thriftpy2.rpc.make_client(service, host, port, timeout=10_000)
        stop.wait(0.01)  # ~100 pings/s
    c.close()


def run(server, connections, hold_s=20.0) -> dict:
    """Attack `server` (a started servers.RunningServer serving PING) with `connections`; its
    RSS growth (peak during the run, MiB) and the good client's ping percentiles."""
    before = rss_kib(server.pid)
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    attacker = ctx.Process(target=_attack, args=(server.host, server.port, connections, hold_s, ready), daemon=True)
    stop, latencies, errors = threading.Event(), [], []
    pinger = threading.Thread(target=_pinger, args=(server.host, server.port, stop, latencies, errors))
    pinger.start()
    attacker.start()
    ready.wait(120)
    peak = before
    while attacker.is_alive():
        peak = max(peak, rss_kib(server.pid))
        attacker.join(0.1)
    stop.set()
    pinger.join(30)
    latencies.sort()

    def pct(q):
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2) if latencies else None

    return {
        "connections": connections,
        "rss_before_mib": round(before / 1024, 1),
        "rss_peak_mib": round(peak / 1024, 1),
        "growth_mib": round((peak - before) / 1024, 1),
        "pings": len(latencies),
        "ping_errors": len(errors),
        "ping_p50_ms": pct(0.5),
        "ping_p99_ms": pct(0.99),
        "ping_max_ms": pct(1.0),
        "alive": server.alive(),
    }
