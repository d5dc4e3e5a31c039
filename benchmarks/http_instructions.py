"""The server's own work per Thrift-over-HTTP request, in-process and without sockets: N kept-alive
POSTs (what benchmarks/http_qps.py's load generator sends) fed one read at a time through a
backend's HTTP path, against a fake transport (uv) or socket (thread); framed calls through the
same server for comparison. Run it under callgrind twice and subtract to get instructions per
request, free of the noise a shared machine puts in wall-clock QPS:

    for n in 2000 12000; do
        valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$n python benchmarks/http_instructions.py \\
            --backend uv --workload ping --wire http -n $n
    done   # then (total(12000) - total(2000)) / 10000: callgrind_annotate prints each total

Run with PYTHONHASHSEED=0 so that both runs hash alike. Without valgrind it prints µs per request
(wall clock: noisy on a shared machine).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import callwire  # noqa: E402
import workloads  # noqa: E402
from dracula.config import Config  # noqa: E402
from dracula.loader import load_handler  # noqa: E402
from dracula.server.lifecycle import Server  # noqa: E402
from fake_io import FakeSocket, FakeTransport  # noqa: E402


def build(backend: str, workload):
    service = workload.thrift_service()
    handler = load_handler(workload.handler)
    # inline_budget=0: under valgrind a call runs ~50x slower, and the reactor would move the
    # method to its thread pool (which this harness never runs) after two "slow" calls.
    config = Config(backend=backend, host="127.0.0.1", port=0, log_level="warning", inline_budget=0)
    return Server([(workload.service, service, handler)], config)


def run_uv(server, request: bytes, n: int) -> FakeTransport:
    import asyncio

    from dracula.server.backends.uv_connection import Connection, Reactor
    from dracula.server.thread_pool import HandlerPool

    loop = asyncio.new_event_loop()
    reactor = Reactor(loop, HandlerPool(1))
    conn = Connection(server.state, reactor)
    transport = FakeTransport()
    transport.protocol = conn
    conn.connection_made(transport)
    size = len(request)
    for _ in range(n):
        protocol = transport.protocol
        buf = protocol.get_buffer(size)
        buf[:size] = request
        protocol.buffer_updated(size)
    return transport


def run_thread(server, request: bytes, n: int, http: bool) -> FakeSocket:
    from dracula.http.session import HttpSession
    from dracula.server.backends import threaded_http
    from dracula.server.backends.threaded import _Conn

    backend = server._backend
    sock = FakeSocket()
    conn = _Conn(sock, ("127.0.0.1", 40000))  # type: ignore[arg-type]
    if http:
        session = HttpSession(backend.state, conn.peer)
        for _ in range(n):
            session.feed(request)
            threaded_http._answer(backend, conn, session)
        return sock
    # framed: what threaded.py's loop does per read
    reader = server.state.new_reader()
    size = len(request)
    for _ in range(n):
        view = reader.get_buffer()
        view[:size] = request
        reader.received(size)
        backend._answer(conn, reader, conn.peer)
    return sock


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("uv", "thread"), default="uv")
    parser.add_argument("--workload", choices=("ping", "small"), default="ping")
    parser.add_argument("--wire", choices=("http", "framed"), default="http")
    parser.add_argument("-n", type=int, default=20000)
    args = parser.parse_args()
    workload = workloads.WORKLOADS[args.workload]
    body = callwire.encode_call(workload)
    request = callwire.http_request(body) if args.wire == "http" else callwire.encode_call(workload, framed=True)
    server = build(args.backend, workload)
    # The startup heap (modules, IDLs) out of the collector's way: a full collection over it
    # lands in one run's request range and not another's, which swamps differences per request.
    gc.freeze()
    try:
        started = time.perf_counter()
        if args.backend == "uv":
            out = run_uv(server, request, args.n)
        else:
            out = run_thread(server, request, args.n, args.wire == "http")
        elapsed = time.perf_counter() - started
    finally:
        server.sock.close()
    assert out.writes == args.n, (out.writes, args.n)
    print(
        "%s %s %s: %d requests, %.2f us each, last: %r"
        % (args.backend, args.workload, args.wire, args.n, elapsed / args.n * 1e6, out.replies[-1][:120])
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
