"""Instructions per call, per server path, counted by callgrind: repeatable on a loaded machine.

    python benchmarks/call_cost.py                      # every path, a markdown table
    python benchmarks/call_cost.py --paths uv-small,thread-small [--calls 2000]
    python benchmarks/call_cost.py --run uv-small --calls 500   # one path, no valgrind

Each path serves `--calls` requests in-process through the real per-connection code, one
request per read as a client that waits for each reply sends them, with the socket replaced by
a fake (no system calls, so the count is the Python and C the server runs per call):

- `uv-*`: dracula.server.backends.uv_connection.Connection, its buffer filled as libuv fills it
  (get_buffer(), then buffer_updated(n)) and its replies written to a transport that keeps them;
  a request that fits the connection's first buffer is copied in with one slice assignment (the
  read libuv does in C), a larger one in as many reads as the buffer takes;
- `thread-*`: the thread backend's per-connection loop (ThreadedBackend._read_loop) over a
  socket whose recv_into hands over the next request and whose sendall keeps the reply;
- `floor-*`: the reference floor's protocol (benchmarks/peers/floor.py's CallProtocol), each
  request handed to data_received() in one piece as uvloop would, replies to the same fake
  transport;
- `thriftpy2-threaded-*`: thriftpy2's threaded server's per-connection loop
  (TThreadedServer.handle: TProcessor over TCyBinaryProtocol and TCyBufferedTransport, as
  `thriftpy2.rpc.make_server` builds it) over a TSocket whose socket's recv() hands over the
  next request and whose sendall() keeps the reply.

The server is built as `dracula serve` builds it (dracula.server.lifecycle.Server, default
options: no access log, no metrics; but --inline-budget 0, so that the counts do not depend on
the clock), and every reply is checked against the first one, so a
broken path fails instead of counting nonsense. Per call = (instructions for 2N calls -
instructions for N calls) / N: start-up, imports and the first call's caches cancel out.
Kernel work (the send and receive system calls) and the GIL's hand-offs between threads are
not in these numbers; the QPS benchmarks have them. Ping and small counts repeat to within a
few hundred instructions; medium ones move by up to a third between runs of the same code
(where glibc's malloc places the 26 KB buffers and the decoded objects): compare medium only
within one run of both trees, e.g. `valgrind` on `--run uv-medium` for each, side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import callgrind  # noqa: E402
from fake_io import ChunkedRecvSocket, ChunkedSocket, FakeSocket, FakeTransport, RecvSocket  # noqa: E402

# path -> (backend, workload, transport)
PATHS = {
    "uv-ping": ("uv", "ping", "buffered"),
    "uv-small": ("uv", "small", "buffered"),
    "uv-framed-small": ("uv", "small", "framed"),
    "uv-theader-small": ("uv", "small", "theader"),
    "uv-medium": ("uv", "medium", "buffered"),
    "thread-ping": ("thread", "ping", "buffered"),
    "thread-small": ("thread", "small", "buffered"),
    "thread-medium": ("thread", "medium", "buffered"),
    # The peers the targets name, over the same kind of fake socket:
    "floor-ping": ("floor", "ping", "buffered"),
    "floor-small": ("floor", "small", "buffered"),
    "floor-medium": ("floor", "medium", "buffered"),
    "thriftpy2-threaded-ping": ("thriftpy2-threaded", "ping", "buffered"),
    "thriftpy2-threaded-small": ("thriftpy2-threaded", "small", "buffered"),
    "thriftpy2-threaded-medium": ("thriftpy2-threaded", "medium", "buffered"),
}


def request_bytes(workload, transport: str) -> bytes:
    import struct

    from thriftpy2.protocol.binary import TBinaryProtocol
    from thriftpy2.thrift import TMessageType
    from thriftpy2.transport.memory import TMemoryBuffer

    from dracula.wire.theader import request_frame

    service = workload.thrift_service()
    buf = TMemoryBuffer()
    proto = TBinaryProtocol(buf)
    proto.write_message_begin(workload.method, TMessageType.CALL, 1)
    proto.write_struct(getattr(service, workload.method + "_args")(**workload.args()))
    proto.write_message_end()
    data: bytes = buf.getvalue()
    if transport == "framed":
        return struct.pack("!I", len(data)) + data
    if transport == "theader":
        return request_frame(data, "binary", seqid=1)
    return data


def build_server(backend: str, workload):
    from dracula.config import Config
    from dracula.loader import load_handler
    from dracula.server.lifecycle import Server

    handler = load_handler(workload.handler, ROOT)
    # No --inline-budget: the reactor's placement times some calls and moves a handler that runs
    # past the budget, which under valgrind's slowdown it may do or not by the machine's load.
    config = Config(host="127.0.0.1", port=0, backend=backend, log_level="warning", inline_budget=0)
    return Server([(workload.service, workload.thrift_service(), handler)], config)


def run_uv(server, request: bytes, calls: int) -> list[bytes]:
    from dracula.server.backends.uv_connection import Connection, Reactor
    from dracula.server.thread_pool import HandlerPool

    loop = asyncio.new_event_loop()
    reactor = Reactor(loop, HandlerPool(1))
    conn = Connection(server.state, reactor)
    transport = FakeTransport()
    conn.connection_made(transport)
    n = len(request)
    if n <= 4096:  # fits the connection's first buffer: one read per request, as libuv reads it
        for _ in range(calls):
            conn.get_buffer(65536)[:n] = request
            conn.buffer_updated(n)
        calls = 0
    for _ in range(calls):
        left = n
        while left:  # a large request arrives in as many reads as the buffer takes
            view = conn.get_buffer(65536)
            step = min(left, len(view))
            view[:step] = request[n - left : n - left + step]
            conn.buffer_updated(step)
            left -= step
    conn.connection_lost(None)
    loop.close()
    return transport.replies


def run_thread(server, request: bytes, calls: int) -> list[bytes]:
    from dracula.server.backends.threaded import _Conn

    backend = server._backend
    sock = FakeSocket(request, calls)
    if len(request) > 4096:  # a large request arrives in as many reads as the buffer takes
        sock = ChunkedSocket(request, calls)
    conn = _Conn(sock, ("127.0.0.1", 40000))  # type: ignore[arg-type]
    backend._read_loop(conn)
    return sock.replies


def run_floor(workload, request: bytes, calls: int) -> list[bytes]:
    sys.path.insert(0, os.path.join(ROOT, "benchmarks", "peers"))
    import floor

    handler = import_handler(workload.handler)
    methods = floor.method_table(workload.thrift_service(), handler)
    protocol = floor.CallProtocol(methods, floor.Codec())
    transport = FakeTransport()
    protocol.connection_made(transport)
    for _ in range(calls):
        protocol.data_received(request)
    protocol.connection_lost(None)
    return transport.replies


def run_thriftpy2_threaded(workload, request: bytes, calls: int) -> list[bytes]:
    import thriftpy2.rpc
    from thriftpy2.transport.socket import TSocket

    handler = import_handler(workload.handler)
    server = thriftpy2.rpc.make_server(
        workload.thrift_service(), handler, host="127.0.0.1", port=1, client_timeout=None
    )
    sock = RecvSocket(request, calls)
    if len(request) > 4096:  # thriftpy2's buffered transport reads 4 KB at a time: hand it pieces
        sock = ChunkedRecvSocket(request, calls)
    server.handle(TSocket(sock=sock))
    return sock.replies


def import_handler(spec: str):
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)()


def run_path(path: str, calls: int) -> None:
    import gc

    import workloads

    backend, name, transport = PATHS[path]
    workload = workloads.WORKLOADS[name]
    request = request_bytes(workload, transport)
    if backend in ("floor", "thriftpy2-threaded"):
        gc.freeze()
        run_peer = run_floor if backend == "floor" else run_thriftpy2_threaded
        replies = run_peer(workload, request, calls)
        server = None
    else:
        server = build_server(backend, workload)
        gc.freeze()  # as `dracula serve` does once started
        run = run_uv if backend == "uv" else run_thread
        replies = run(server, request, calls)
    if not replies or any(reply != replies[0] for reply in replies):
        raise SystemExit("%s: the replies differ" % path)
    check_reply(workload, transport, replies[0])
    if server is not None:
        server.sock.close()


def check_reply(workload, transport: str, reply: bytes) -> None:
    from thriftpy2.protocol.binary import TBinaryProtocol
    from thriftpy2.transport.memory import TMemoryBuffer

    from dracula.wire.theader import parse_frame

    if transport == "framed":
        reply = reply[4:]
    elif transport == "theader":
        frame = parse_frame(reply[4:], len(reply))
        reply = bytes(reply[4 + frame.payload_at :])
    proto = TBinaryProtocol(TMemoryBuffer(reply))
    proto.read_message_begin()
    result = getattr(workload.thrift_service(), workload.method + "_result")()
    proto.read_struct(result)
    if result.success != workload.expected:
        raise SystemExit("wrong reply: %r" % (result,))


def instructions(path: str, calls: int) -> int:
    return callgrind.instructions([os.path.abspath(__file__), "--run", path, "--calls", str(calls)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated, from: %s" % ", ".join(PATHS))
    parser.add_argument("--calls", type=int, default=0, help="N (default: 2000; 200 for medium)")
    parser.add_argument("--run", metavar="PATH", help="serve --calls requests on PATH in-process and exit")
    args = parser.parse_args(argv)
    if args.run:
        run_path(args.run, args.calls or 2000)
        return 0
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if any(p not in PATHS for p in paths):
        parser.error("--paths takes names from: %s" % ", ".join(PATHS))
    print("| path | instructions per call |")
    print("|---|---:|")
    for path in paths:
        n = args.calls or (200 if PATHS[path][1] == "medium" else 2000)
        one, two = instructions(path, n), instructions(path, 2 * n)
        print("| %s | %s |" % (path, format((two - one) // n, ",")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
