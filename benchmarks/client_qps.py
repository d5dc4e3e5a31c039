"""Client throughput: calls/s of dracula's clients beside thriftpy2's sync and aio clients and
Apache Thrift's, against the same `dracula serve` (a child process), in the same run.

    python benchmarks/client_qps.py                       # 3 s per row
    python benchmarks/client_qps.py --seconds 5 --json benchmarks/results/client_qps.json

Two workloads: `add(i64, i64)` (a small call) and `shapes(20)` (a reply of 20 structs, each with
a list of structs, a set and a binary: ~1 KB, where decoding and vetting cost). Two shapes of
load: one connection (one caller, calls back to back), and 50 concurrent calls (dracula: one
client shared by 50 coroutines or threads; thriftpy2's and Apache's clients are one connection
each and not safe to share, so 50 of them, one per caller). The client's process CPU is shown
beside each row (over 100% at 50 threads: the GIL is released in socket calls). The server is one
process: at 50 concurrent calls it may be the bottleneck, which caps every client alike; the
ratios are of this run only (the machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import thriftpy2  # noqa: E402
import thriftpy2.rpc  # noqa: E402
from thriftpy2.contrib.aio.protocol.binary import TAsyncBinaryProtocolFactory  # noqa: E402
from thriftpy2.contrib.aio.rpc import make_client as tp_make_aio_client  # noqa: E402
from thriftpy2.contrib.aio.transport.framed import TAsyncFramedTransportFactory  # noqa: E402
from thriftpy2.protocol import TCyBinaryProtocolFactory  # noqa: E402
from thriftpy2.transport import TCyFramedTransportFactory  # noqa: E402

import dracula  # noqa: E402

showcase = thriftpy2.load(os.path.join(ROOT, "idl", "showcase.thrift"), module_name="bench_showcase_thrift")
Showcase = showcase.Showcase
CONCURRENCY = 50
WORKLOADS = {"add": ("add", (3, 4)), "shapes20": ("shapes", (20,))}


def start_server() -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dracula",
            "serve",
            "idl/showcase.thrift:Showcase",
            "examples.showcase:ShowcaseHandler",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the server did not start")


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# -- blocking clients ----------------------------------------------------------------------------


def sync_factories(port: int, method: str) -> dict:
    """The blocking clients (Apache's hand-written client here has `add`, not `shapes`)."""

    def apache():
        from tests.apache_client import Connection

        return Connection(port, "binary", "framed", accelerated=True).showcase()

    factories = {
        "dracula sync (THeader)": lambda: dracula.make_client(Showcase, ("127.0.0.1", port)),
        "dracula sync (framed)": lambda: dracula.make_client(Showcase, ("127.0.0.1", port), transport="framed"),
        "thriftpy2 sync (framed, cybin)": lambda: thriftpy2.rpc.make_client(
            Showcase,
            "127.0.0.1",
            port,
            proto_factory=TCyBinaryProtocolFactory(),
            trans_factory=TCyFramedTransportFactory(),
            timeout=10000,
        ),
    }
    if method == "add":
        factories["Apache sync (framed, accelerated)"] = apache
    return factories


def run_sync(make, shared: bool, callers: int, method: str, args: tuple, seconds: float) -> int:
    """Calls made in `seconds` by `callers` threads (one client shared, or one each)."""
    clients = [make()] if shared else [make() for _ in range(callers)]
    for c in clients:
        getattr(c, method)(*args)  # connect and warm up
    stop = threading.Event()
    counts = [0] * callers

    def caller(i: int) -> None:
        call = getattr(clients[0 if shared else i], method)
        n = 0
        while not stop.is_set():
            call(*args)
            n += 1
        counts[i] = n

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    for c in clients:
        close = getattr(c, "close", None)
        if close is not None:
            close()
    return sum(counts)


# -- asyncio clients -----------------------------------------------------------------------------


async def run_aio(kind: str, port: int, callers: int, method: str, args: tuple, seconds: float) -> int:
    if kind.startswith("dracula"):
        transport = "framed" if "framed" in kind else "header"
        shared = dracula.make_aio_client(Showcase, ("127.0.0.1", port), transport=transport)
        clients = [shared]
    else:
        clients = [
            await tp_make_aio_client(
                Showcase,
                "127.0.0.1",
                port,
                timeout=10000,
                trans_factory=TAsyncFramedTransportFactory(),
                proto_factory=TAsyncBinaryProtocolFactory(),
            )
            for _ in range(callers)
        ]
    for c in clients:
        await getattr(c, method)(*args)
    stop = False
    counts = [0] * callers

    async def caller(i: int) -> None:
        call = getattr(clients[i % len(clients)], method)
        n = 0
        while not stop:
            await call(*args)
            n += 1
        counts[i] = n

    tasks = [asyncio.ensure_future(caller(i)) for i in range(callers)]
    await asyncio.sleep(seconds)
    stop = True
    await asyncio.gather(*tasks)
    for c in clients:
        result = c.close()
        if asyncio.iscoroutine(result):
            await result
    return sum(counts)


AIO_KINDS = ["dracula aio (THeader)", "dracula aio (framed)", "thriftpy2 aio (framed)"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--json", help="write every row here")
    parser.add_argument("--uvloop", action="store_true", help="run the asyncio clients on uvloop")
    options = parser.parse_args()
    proc, port = start_server()
    rows = []
    try:
        for workload, (method, args) in WORKLOADS.items():
            for callers in (1, CONCURRENCY):
                block = []
                for name, make in sync_factories(port, method).items():
                    before = cpu()
                    calls = run_sync(make, name.startswith("dracula"), callers, method, args, options.seconds)
                    block.append((name, calls / options.seconds, (cpu() - before) / options.seconds))
                for kind in AIO_KINDS:
                    before = cpu()
                    runner = asyncio.Runner(loop_factory=_uvloop() if options.uvloop else None)
                    with runner:
                        calls = runner.run(run_aio(kind, port, callers, method, args, options.seconds))
                    block.append((kind, calls / options.seconds, (cpu() - before) / options.seconds))
                qps_of = {n: q for n, q, _ in block}
                base_sync, base_aio = qps_of["thriftpy2 sync (framed, cybin)"], qps_of["thriftpy2 aio (framed)"]
                print(
                    "\n### %s, %s\n" % (workload, "one connection" if callers == 1 else "%d concurrent calls" % callers)
                )
                print("| client | calls/s | vs thriftpy2 sync | vs thriftpy2 aio | client CPU |")
                print("|---|---:|---:|---:|---:|")
                for name, qps, load in block:
                    print(
                        "| %s | %.0f | %.2fx | %.2fx | %.0f%% |"
                        % (name, qps, qps / base_sync, qps / base_aio, 100 * load)
                    )
                    rows.append({"workload": workload, "callers": callers, "client": name, "qps": qps, "cpu": load})
                sys.stdout.flush()
    finally:
        proc.terminate()
        proc.wait(10)
    if options.json:
        with open(options.json, "w") as f:
            json.dump({"seconds": options.seconds, "rows": rows}, f, indent=1)


def _uvloop():
    import uvloop

    return uvloop.new_event_loop


if __name__ == "__main__":
    main()
