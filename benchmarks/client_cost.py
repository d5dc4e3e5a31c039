"""Client instructions per call, counted by callgrind: repeatable on a loaded machine.

    python benchmarks/client_cost.py                       # every client x workload, a table
    python benchmarks/client_cost.py --clients dracula-header,thriftpy2-framed --workloads add
    python benchmarks/client_cost.py --keep /tmp/cg       # keep the callgrind files, for
        # callgrind_annotate --inclusive=yes /tmp/cg/<client>-<workload>-<calls>.out
    python benchmarks/client_cost.py --run dracula-header --workload add --calls 500 --port P

The server is one `dracula serve` child process (idl/showcase.thrift, examples.showcase),
started once and shared by every row; valgrind runs only the client process, a tight loop of
one call at a time on one connection (the client made and warmed up with one call first). Per
call = (instructions for N + D calls - instructions for N calls) / D, with PYTHONHASHSEED=0:
imports, start-up and the first call's caches cancel out. User-space instructions only: the
system calls (dracula's sync client: poll, sendto, recvfrom; thriftpy2's framed client: two
polls, sendto, recvfrom) are not counted, nor the server's work.

Clients: dracula's blocking client over THeader (the default), framed and buffered, its asyncio
client over THeader, and thriftpy2's blocking client (the Cython binary protocol) framed and
buffered. Workloads: `add(1, 2)` and `shapes(20)` (a ~1 KB reply of 20 structs), as
benchmarks/client_qps.py calls them.
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import callgrind  # noqa: E402

CLIENTS = [
    "dracula-header",
    "dracula-framed",
    "dracula-buffered",
    "thriftpy2-framed",
    "thriftpy2-buffered",
    "dracula-aio-header",
]
WORKLOADS = {"add": ("add", (1, 2), 3), "shapes20": ("shapes", (20,), None)}


def make_sync(client: str, port: int):
    import thriftpy2
    import thriftpy2.rpc
    from thriftpy2.protocol import TCyBinaryProtocolFactory
    from thriftpy2.transport import TCyBufferedTransportFactory, TCyFramedTransportFactory

    import dracula

    service = thriftpy2.load(os.path.join(ROOT, "idl", "showcase.thrift"), module_name="cost_showcase_thrift")
    if client.startswith("dracula-"):
        return dracula.make_client(service.Showcase, ("127.0.0.1", port), transport=client.split("-")[1])
    framing = TCyFramedTransportFactory() if client.endswith("framed") else TCyBufferedTransportFactory()
    return thriftpy2.rpc.make_client(
        service.Showcase,
        "127.0.0.1",
        port,
        proto_factory=TCyBinaryProtocolFactory(),
        trans_factory=framing,
        timeout=10000,
    )


def run(client: str, workload: str, calls: int, port: int) -> None:
    """The measured loop: `calls` calls after one to connect and warm up."""
    import gc

    method, args, expected = WORKLOADS[workload]
    if client.startswith("dracula-aio-"):
        import asyncio

        import thriftpy2

        import dracula

        service = thriftpy2.load(os.path.join(ROOT, "idl", "showcase.thrift"), module_name="cost_showcase_thrift")

        async def loop() -> None:
            c = dracula.make_aio_client(service.Showcase, ("127.0.0.1", port), transport=client.split("-")[2])
            call = getattr(c, method)
            first = await call(*args)
            gc.freeze()
            for _ in range(calls):
                await call(*args)
            check(workload, first, expected)
            await c.close()

        asyncio.run(loop())
        return
    c = make_sync(client, port)
    call = getattr(c, method)
    first = call(*args)
    gc.freeze()
    for _ in range(calls):
        call(*args)
    check(workload, first, expected)
    c.close()


def check(workload: str, value, expected) -> None:
    if workload == "add":
        ok = value == expected
    else:
        ok = len(value) == 20 and value[19].name == "shape-19" and value[19].blob == bytes([19]) * 19
    if not ok:
        raise SystemExit("%s: wrong reply %r" % (workload, value))


def instructions(client: str, workload: str, calls: int, port: int, keep: str | None) -> int:
    argv = [os.path.abspath(__file__), "--run", client, "--workload", workload, "--calls", str(calls)]
    out = None if keep is None else os.path.join(keep, "%s-%s-%d.out" % (client, workload, calls))
    return callgrind.instructions([*argv, "--port", str(port)], out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", default=",".join(CLIENTS[:5]), help="from: %s" % ", ".join(CLIENTS))
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="from: %s" % ", ".join(WORKLOADS))
    parser.add_argument("--calls", type=int, default=200, help="N, the shorter run's calls (default 200)")
    parser.add_argument("--delta", type=int, default=5000, help="D, the longer run's extra calls (default 5000)")
    parser.add_argument("--keep", metavar="DIR", help="keep the callgrind output files in DIR")
    parser.add_argument("--run", metavar="CLIENT", help="make --calls calls with CLIENT in-process and exit")
    parser.add_argument("--workload", default="add")
    parser.add_argument("--port", type=int, default=0, help="a running server's port (default: start one)")
    args = parser.parse_args(argv)
    if args.run:
        run(args.run, args.workload, args.calls, args.port)
        return 0
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if any(c not in CLIENTS for c in clients) or any(w not in WORKLOADS for w in workloads):
        parser.error("--clients from %s; --workloads from %s" % (", ".join(CLIENTS), ", ".join(WORKLOADS)))
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    from client_qps import start_server

    proc, port = (None, args.port) if args.port else start_server()
    try:
        print("| workload | client | instructions per call | vs thriftpy2-framed |")
        print("|---|---|---:|---:|")
        for workload in workloads:
            counts = {}
            for client in clients:
                one = instructions(client, workload, args.calls, port, args.keep)
                two = instructions(client, workload, args.calls + args.delta, port, args.keep)
                counts[client] = (two - one) // args.delta
            base = counts.get("thriftpy2-framed")
            for client, per_call in counts.items():
                ratio = "%.2fx" % (per_call / base) if base else ""
                print("| %s | %s | %s | %s |" % (workload, client, format(per_call, ","), ratio), flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
