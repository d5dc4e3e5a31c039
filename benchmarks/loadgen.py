"""A closed-loop load generator for one request/reply pair (any workload of workloads.py).

P client processes (multiprocessing, fork) each run a uvloop event loop holding C/P
connections. Every connection sends the same pre-encoded request, waits for the whole reply,
records the latency and sends again, until the deadline: one call in flight per connection, so
the offered load is whatever the server can answer ("closed loop").

Phases, on one clock shared by all processes (CLOCK_MONOTONIC):
  connect   connections open in batches (no SYN storm), each with a generous timeout; a
            failed connect is an error and that connection keeps retrying during the run;
  warm-up   calls run but are not measured (caches, allocator, branch predictors, thread pools);
  measure   completed calls are counted and their latencies recorded;
then every connection is closed.

A reply is correct when it equals, byte for byte, the reply a probe received from the same
server before the run, which callwire.probe decoded and checked (name, type REPLY, seqid, the
expected value): every call sends the same bytes (seqid 0), so the right reply is always the
same bytes. For framed transport the reply's
length is read from its frame header; unframed, it is that reference reply's length.

Errors: failed connects, connections closed or reset by the server, replies not received within
the request timeout, and wrong replies. Every error closes that connection, which reconnects
after a short back-off (so a struggling server keeps its C clients, as in life). The error rate
is errors / (errors + completed calls), both counted from the start of warm-up to the end, plus
the connect phase's failures.

Latencies go into a log-scale histogram (1% wide buckets), so memory does not grow with the run.

`run_mix` runs several such groups at once on one timeline, each with its own request and its
own client processes, and reports each group apart (a fast call's latency while other
connections keep a slow one busy).

Over HTTP/1.x (`http=True`, --http) the request is a whole POST, pre-encoded like the rest,
and a reply is right when its status is 200 and its body equals the probe's reply body (the
head carries a Date, so it is not compared); the body is read by its Content-Length, or to the
connection's end where there is none. Connections are kept alive where the server keeps them;
a server that closes after each response (HTTP/1.0's way) costs its clients a new connection
per call, and the load generator pays that as they would: no error, the latency includes the
connect, "reopened" counts them.

Run directly against a running server:
    python benchmarks/loadgen.py --port 9090 --connections 100 --seconds 10 [--framed] [--http]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import resource
import signal
import sys
import time
import traceback

import uvloop

# Latency histogram: bucket i holds latencies in [1us * e^(i/100), 1us * e^((i+1)/100)).
HIST_RESOLUTION = 100
HIST_MIN_S = 1e-6
HIST_SIZE = int(math.log(1000.0 / HIST_MIN_S) * HIST_RESOLUTION) + 1  # up to 1000 s

ERROR_KINDS = ("connect", "reset", "closed", "timeout", "bad_reply")
FD_RESERVE = 64  # fds a client process keeps for itself besides its connections


class LoadgenError(Exception):
    """A client process failed; the run has no result."""


# -- one client process ----------------------------------------------------------------------


class _Conn(asyncio.Protocol):
    """One closed-loop connection: send, wait for the whole reply, record, send again."""

    __slots__ = ("client", "transport", "sent", "partial", "counted")

    def __init__(self, client):
        self.client = client
        self.transport = None
        self.sent = 0.0  # when the call in flight was sent; 0.0 when none is
        self.partial = b""
        self.counted = False  # its closing was already counted as an error

    def connection_made(self, transport):
        self.transport = transport
        self.counted = False

    def connection_lost(self, exc):
        self.transport = None
        self.sent = 0.0
        self.partial = b""
        client = self.client
        if client.running:
            if not self.counted:
                client.errors["reset" if exc is not None else "closed"] += 1
            client.reconnect_later(self)

    def send(self, now):
        self.sent = now
        self.transport.write(self.client.request)

    def fail(self, kind):
        """Count an error and drop the connection (it reconnects)."""
        self.client.errors[kind] += 1
        self.counted = True
        self.sent = 0.0
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data):
        client = self.client
        if self.partial:
            data = self.partial + data
            self.partial = b""
        size = len(data)
        if client.framed:
            need = 4 + int.from_bytes(data[:4], "big") if size >= 4 else 4
        else:
            need = client.reply_len
        if size < need:
            self.partial = data
            return
        if size != need or data != client.reply or not self.sent:
            self.fail("bad_reply")
            return
        self.answered(_monotonic())

    def answered(self, now, again=True):
        """The call in flight got its right reply at `now`: count it, and send the next one
        (`again`: on this connection; else the caller sends it on a new one)."""
        client = self.client
        if now < client.t_measure:
            client.warm_ok += 1
        elif now < client.t_end:
            client.ok += 1
            latency = now - self.sent
            client.latency_sum += latency
            if latency > client.latency_max:
                client.latency_max = latency
            i = int(_log(latency * 1e6) * HIST_RESOLUTION) if latency > HIST_MIN_S else 0
            client.hist[i if i < HIST_SIZE else HIST_SIZE - 1] += 1
        if client.running and now < client.t_end:
            self.sent = now
            if again:
                self.transport.write(client.request)
        else:
            self.sent = 0.0


class _HttpConn(_Conn):
    """The same over HTTP/1.x: the request is a whole POST (head and body, pre-encoded), the
    reply a response whose status must be 200 and whose body must equal the reference reply.
    The body is read by its Content-Length, or to the connection's end where there is none
    (an HTTP/1.0 server's way). A response that ends the connection (HTTP/1.0 without
    keep-alive, `Connection: close`) is no error: the next call goes out on a new connection
    at once, and its latency includes the connect, as it does for that server's clients."""

    __slots__ = ("body_left", "last", "handoff")

    def __init__(self, client):
        super().__init__(client)
        self.body_left = -1  # body bytes still to come: -1 before the head, None: to the end
        self.last = False  # the response in hand ends the connection
        self.handoff = False  # closing after a whole response: connection_lost opens the next

    def connection_made(self, transport):
        super().connection_made(transport)
        self.body_left = -1
        self.last = self.handoff = False

    def data_received(self, data):
        if self.partial:
            data = self.partial + data
            self.partial = b""
        if self.body_left == -1:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.partial = data
                return
            head = data[:end].lower()
            if not head.startswith((b"http/1.1 200 ", b"http/1.0 200 ")) or not self.sent:
                self.fail("bad_reply")
                return
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 17)
                self.body_left = int(head[at + 17 : stop if stop >= 0 else len(head)])
            else:
                self.body_left = None
            if head.startswith(b"http/1.0"):
                self.last = b"\r\nconnection: keep-alive" not in head
            else:
                self.last = b"\r\nconnection: close" in head
            if self.body_left is None and not self.last:
                self.fail("bad_reply")  # a kept-alive response must say where it ends
                return
            data = data[end + 4 :]
        if self.body_left is None or len(data) < self.body_left:  # more to come
            self.partial = data
            return
        if len(data) != self.body_left or data != self.client.reply:
            self.fail("bad_reply")
            return
        self.body_left = -1
        if not self.last:
            self.answered(_monotonic())
            return
        self.handoff = True
        self.answered(_monotonic(), again=False)
        self.transport.close()

    def connection_lost(self, exc):
        client = self.client
        if self.body_left is None and self.sent and not self.handoff:  # a body read to the end
            if exc is None and self.partial == client.reply:
                self.handoff = True
                self.answered(_monotonic(), again=False)
            else:
                client.errors["bad_reply"] += 1
                self.counted = True
        if not self.handoff:
            super().connection_lost(exc)
            return
        self.transport = None
        self.partial = b""
        if client.running and self.sent:
            client.loop.create_task(client.reopen(self))


_monotonic = time.monotonic
_log = math.log


class _Client:
    def __init__(self, loop, pipe, spec):
        self.loop = loop
        self.pipe = pipe
        self.host = spec["host"]
        self.port = spec["port"]
        self.request = spec["request"]
        self.reply = spec["reply"]
        self.reply_len = len(self.reply)
        self.framed = spec["framed"]
        self.connect_timeout = spec["connect_timeout"]
        self.request_timeout = spec["request_timeout"]
        self.batch = spec["connect_batch"]
        conn_class = _HttpConn if spec.get("http") else _Conn
        self.conns = [conn_class(self) for _ in range(spec["connections"])]
        self.errors = dict.fromkeys(ERROR_KINDS, 0)
        self.connect_failures = 0  # in the connect phase (also counted in errors)
        self.running = False
        self.t_measure = self.t_end = float("inf")
        self.ok = 0
        self.warm_ok = 0
        self.latency_sum = 0.0
        self.latency_max = 0.0
        self.hist = [0] * HIST_SIZE
        self.reconnects = 0
        self.reopened = 0  # HTTP: new connections after a response that closed its own

    async def _open(self, conn) -> bool:
        try:
            await asyncio.wait_for(
                self.loop.create_connection(lambda: conn, self.host, self.port), self.connect_timeout
            )
            return True
        except (OSError, asyncio.TimeoutError):
            self.errors["connect"] += 1
            return False

    async def _connect_all(self) -> int:
        connected = 0
        for first in range(0, len(self.conns), self.batch):
            batch = self.conns[first : first + self.batch]
            connected += sum(await asyncio.gather(*(self._open(c) for c in batch)))
            self.pipe.send(("connecting", connected, self.errors["connect"]))
        return connected

    def reconnect_later(self, conn) -> None:
        self.loop.create_task(self._reconnect(conn))

    async def _reconnect(self, conn) -> None:
        delay = 0.05
        while self.running:
            await asyncio.sleep(delay)
            if not self.running or conn.transport is not None:
                return
            if await self._open(conn):
                self.reconnects += 1
                now = _monotonic()
                if self.running and now < self.t_end and conn.transport is not None:
                    conn.send(now)
                return
            delay = min(delay * 2, 1.0)

    async def reopen(self, conn) -> None:
        """HTTP: the next call, already timed from conn.sent, on a new connection."""
        if not await self._open(conn):
            conn.sent = 0.0
            self.reconnect_later(conn)
            return
        self.reopened += 1
        if self.running and conn.sent and conn.transport is not None:
            conn.transport.write(self.request)

    async def _sweep(self) -> None:
        """Fail calls that have waited longer than the request timeout."""
        while self.running:
            await asyncio.sleep(min(0.5, self.request_timeout / 4))
            limit = _monotonic() - self.request_timeout
            for conn in self.conns:
                if conn.sent and conn.sent < limit and conn.transport is not None:
                    conn.fail("timeout")

    async def _report_progress(self) -> None:
        while self.running:
            await asyncio.sleep(1.0)
            self.pipe.send(("progress", self.warm_ok + self.ok, sum(self.errors.values())))

    async def _sleep_until(self, t: float) -> None:
        delay = t - _monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def run(self) -> dict:
        connected = await self._connect_all()
        self.connect_failures = self.errors["connect"]
        self.pipe.send(("connected", connected, self.connect_failures))
        go = await self.loop.run_in_executor(None, self.pipe.recv)
        _, t_start, self.t_measure, self.t_end = go
        await self._sleep_until(t_start)
        self.running = True
        now = _monotonic()
        for conn in self.conns:
            if conn.transport is not None:
                conn.send(now)
            else:
                self.reconnect_later(conn)
        # Held so they are not collected: the event loop keeps only weak references to tasks.
        _tasks = [self.loop.create_task(self._sweep()), self.loop.create_task(self._report_progress())]
        await self._sleep_until(self.t_measure)
        cpu_start = time.process_time()
        await self._sleep_until(self.t_end)
        cpu = time.process_time() - cpu_start
        self.running = False
        now = _monotonic()
        waiting = [now - conn.sent for conn in self.conns if conn.sent]
        stalled = sum(1 for conn in self.conns if conn.sent and conn.sent < self.t_measure)
        for conn in self.conns:
            if conn.transport is not None:
                conn.transport.abort()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:  # reconnects still waiting or connecting
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await asyncio.sleep(0)
        return {
            "connected": connected,
            "connect_failures": self.connect_failures,
            "ok": self.ok,
            "warm_ok": self.warm_ok,
            "errors": self.errors,
            "reconnects": self.reconnects,
            "reopened": self.reopened,
            "latency_sum": self.latency_sum,
            "latency_max": self.latency_max,
            "hist": {i: n for i, n in enumerate(self.hist) if n},
            "cpu": cpu,
            "stalled": stalled,
            "oldest_in_flight": max(waiting, default=0.0),
        }


def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _client_main(pipe, spec, client_class=None) -> None:
    """One load-generator process: run `client_class(loop, pipe, spec)` (this module's _Client
    by default) on its own uvloop loop and send its result, or its traceback, up `pipe`."""
    # Ctrl-C / `timeout -s INT` reach the whole process group: the parent stops the clients
    # (join, then kill), so they need not print a KeyboardInterrupt traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if spec.get("cpus"):
            os.sched_setaffinity(0, spec["cpus"])  # as `taskset -c`: keep off the server's cores
        _raise_fd_limit(spec["connections"] + FD_RESERVE)
        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            result = loop.run_until_complete((client_class or _Client)(loop, pipe, spec).run())
        finally:
            loop.close()
        pipe.send(("result", result))
    except BaseException:
        try:
            pipe.send(("failed", traceback.format_exc()))
        except OSError:
            pass
    finally:
        pipe.close()


# -- the parent: split, synchronise, merge ----------------------------------------------------


def max_connections_per_process() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = hard if hard != resource.RLIM_INFINITY else 1 << 20
    return max(1, limit - FD_RESERVE)


def split(total: int, parts: int) -> list:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class _Progress:
    """One status line on stderr: rewritten in place on a terminal, else one line every 5 s."""

    def __init__(self, label: str, enabled: bool):
        self.label = label
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.every = 0.5 if self.tty else 5.0
        self.last = 0.0
        self.dirty = False

    def show(self, text: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return
        self.last = now
        line = "[%s] %s" % (self.label, text) if self.label else text
        if self.tty:
            sys.stderr.write("\r\x1b[K" + line)
            self.dirty = True
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.dirty:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.dirty = False


def percentile(hist: dict, total: int, q: float):
    """The q-quantile (0..1) of the histogram, in seconds (bucket's geometric middle)."""
    if not total:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for i in sorted(hist):
        seen += hist[i]
        if seen >= rank:
            return HIST_MIN_S * math.exp((i + 0.5) / HIST_RESOLUTION)
    return None


def run(
    host: str,
    port: int,
    request: bytes,
    reply: bytes,
    framed: bool,
    connections: int,
    seconds: float,
    clients: int = 2,
    **options,
) -> dict:
    """Run the load; the merged result (see the module docstring for what counts).

    `options`: those of run_mix (warmup, timeouts, connect_batch, label, progress, on_phase,
    cpus, http)."""
    return run_mix(host, port, framed, [Load(request, reply, connections, clients)], seconds, **options)[0]


@dataclasses.dataclass(frozen=True)
class Load:
    """One group of closed-loop connections: the request they all send, the reply each must
    get, how many connections, over how many client processes."""

    request: bytes
    reply: bytes
    connections: int
    clients: int = 2


def run_mix(
    host: str,
    port: int,
    framed: bool,
    loads: list,
    seconds: float,
    warmup: float = 2.0,
    connect_timeout: float = 30.0,
    request_timeout: float = 10.0,
    connect_batch: int = 100,
    label: str = "",
    progress: bool = True,
    on_phase=None,
    cpus=None,
    http: bool = False,
) -> list:
    """Run several Loads at once against one server, on one timeline (all connect, then warm up
    and measure together); one merged result per Load, in order (e.g. pings measured while
    other connections keep a slow method busy).

    `on_phase(name)` is called in this process as the measured window opens ("measure") and
    closes ("end"), e.g. to read the server's CPU time at both moments. `cpus`: CPU numbers
    every client process is pinned to (all of them share the set), or None for no pinning.
    `http`: each request is a whole HTTP/1.x POST and each reply the body of a 200 response
    (callwire.http_request, callwire.probe_http); connections are kept alive where the server
    keeps them.
    """
    if not loads or min(load.connections for load in loads) < 1 or seconds <= 0:
        raise ValueError("need connections >= 1 and seconds > 0")
    per_process = max_connections_per_process()
    shares = []  # (index of its Load, connections) per client process
    for i, load in enumerate(loads):
        clients = max(1, min(load.clients, load.connections))
        if load.connections > clients * per_process:
            clients = math.ceil(load.connections / per_process)  # stay under each process's fd limit
        shares += [(i, share) for share in split(load.connections, clients)]
    connections = sum(load.connections for load in loads)
    ctx = multiprocessing.get_context("fork")
    pipes, procs = [], []
    show = _Progress(label, progress)
    try:
        for i, share in shares:
            parent_end, child_end = ctx.Pipe()
            spec = {
                "host": host,
                "port": port,
                "request": loads[i].request,
                "reply": loads[i].reply,
                "framed": framed,
                "http": http,
                "connections": share,
                "connect_timeout": connect_timeout,
                "request_timeout": request_timeout,
                "connect_batch": max(1, connect_batch),
                "cpus": sorted(cpus) if cpus else None,
            }
            proc = ctx.Process(target=_client_main, args=(child_end, spec), daemon=True)
            proc.start()
            child_end.close()
            pipes.append(parent_end)
            procs.append(proc)

        state = [{"connected": 0, "failed": 0, "done": 0, "errors": 0, "ready": False, "result": None} for _ in shares]

        def pump(timeout: float) -> None:
            waiting = [p for p, s in zip(pipes, state, strict=True) if s["result"] is None]
            for pipe in multiprocessing.connection.wait(waiting, timeout):
                i = pipes.index(pipe)
                try:
                    msg = pipe.recv()
                except EOFError:
                    raise LoadgenError("client process %d exited (code %s)" % (i, procs[i].exitcode)) from None
                kind = msg[0]
                if kind == "connecting":
                    state[i]["connected"], state[i]["failed"] = msg[1], msg[2]
                elif kind == "connected":
                    state[i]["connected"], state[i]["failed"] = msg[1], msg[2]
                    state[i]["ready"] = True
                elif kind == "progress":
                    state[i]["done"], state[i]["errors"] = msg[1], msg[2]
                elif kind == "result":
                    state[i]["result"] = msg[1]
                elif kind == "failed":
                    raise LoadgenError("client process %d failed:\n%s" % (i, msg[1]))

        # Connect phase.
        while not all(s["ready"] for s in state):
            pump(0.5)
            show.show(
                "connecting: %d/%d open, %d failed"
                % (sum(s["connected"] for s in state), connections, sum(s["failed"] for s in state))
            )
        connected = sum(s["connected"] for s in state)
        show.show(
            "connected: %d/%d open, %d failed" % (connected, connections, sum(s["failed"] for s in state)), force=True
        )

        # Warm-up and measure.
        t_start = time.monotonic() + 0.2
        t_measure = t_start + warmup
        t_end = t_measure + seconds
        for pipe in pipes:
            pipe.send(("go", t_start, t_measure, t_end))
        measuring = False
        last_done, last_t = 0, time.monotonic()
        rate = 0.0
        while True:
            now = time.monotonic()
            if not measuring and now >= t_measure:
                measuring = True
                if on_phase:
                    on_phase("measure")
            if now >= t_end:
                break
            pump(min(0.5, max(0.0, (t_measure if not measuring else t_end) - now)))
            done = sum(s["done"] for s in state)
            now = time.monotonic()
            if now - last_t >= 1.0:
                rate = (done - last_done) / (now - last_t)
                last_done, last_t = done, now
            phase = "measuring" if measuring else "warming up"
            left = (t_end if measuring else t_measure) - now
            show.show(
                "%s, %.0f s left: ~%.0f calls/s, %d errors"
                % (phase, max(0.0, left), rate, sum(s["errors"] for s in state))
            )
        if on_phase:
            on_phase("end")

        # Results.
        deadline = time.monotonic() + 60 + connect_timeout
        while not all(s["result"] is not None for s in state):
            if time.monotonic() > deadline:
                raise LoadgenError("client processes did not report within %.0f s" % (deadline - t_end))
            pump(0.5)
        show.done()
    except BaseException:  # interrupted, or a client failed: stop the clients now, not at their deadline
        for proc in procs:
            if proc.is_alive():
                proc.kill()
        raise
    finally:
        show.done()
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for pipe in pipes:
            pipe.close()
    return [
        merge(
            [s["result"] for (i, _), s in zip(shares, state, strict=True) if i == n],
            connections=load.connections,
            clients=sum(1 for i, _ in shares if i == n),
            seconds=seconds,
            warmup=warmup,
        )
        for n, load in enumerate(loads)
    ]


def merge(results: list, connections: int, clients: int, seconds: float, warmup: float) -> dict:
    hist = {}
    for r in results:
        for i, n in r["hist"].items():
            hist[i] = hist.get(i, 0) + n
    errors = dict.fromkeys(ERROR_KINDS, 0)
    for r in results:
        for kind, n in r["errors"].items():
            errors[kind] += n
    ok = sum(r["ok"] for r in results)
    attempts = sum(r["ok"] + r["warm_ok"] for r in results) + sum(errors.values())
    total_errors = sum(errors.values())

    def ms(value):
        return None if value is None else round(value * 1000, 3)

    return {
        "connections": connections,
        "connected": sum(r["connected"] for r in results),
        "clients": clients,
        "seconds": seconds,
        "warmup": warmup,
        "requests": ok,
        "qps": ok / seconds,
        "p50_ms": ms(percentile(hist, ok, 0.50)),
        "p99_ms": ms(percentile(hist, ok, 0.99)),
        "p999_ms": ms(percentile(hist, ok, 0.999)),
        "mean_ms": ms(sum(r["latency_sum"] for r in results) / ok) if ok else None,
        "max_ms": ms(max(r["latency_max"] for r in results)) if ok else None,
        "errors": total_errors,
        "error_kinds": errors,
        "connect_failures": sum(r["connect_failures"] for r in results),
        "reconnects": sum(r["reconnects"] for r in results),
        "reopened": sum(r.get("reopened", 0) for r in results),
        "error_rate": total_errors / attempts if attempts else (1.0 if total_errors else 0.0),
        "client_cpu_s": sum(r["cpu"] for r in results),
        # Calls unanswered for the whole measured window (sent before it opened, still waiting
        # when it closed), and the longest wait of any call in flight at the end: a server that
        # stalls shows here even when the run is shorter than the request timeout.
        "stalled_at_end": sum(r["stalled"] for r in results),
        "oldest_in_flight_ms": ms(max(r["oldest_in_flight"] for r in results)),
    }


def main(argv=None) -> int:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import callwire
    import workloads

    parser = argparse.ArgumentParser(description="Closed-loop load against a running server.")
    parser.add_argument(
        "--workload",
        default="ping",
        choices=sorted(workloads.WORKLOADS),
        help="the call to send (benchmarks/workloads.py; default: ping)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--framed", action="store_true", help="the server speaks framed transport")
    parser.add_argument(
        "--http", action="store_true", help="Thrift over HTTP/1.1: each call a POST on a kept-alive connection"
    )
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--connect-timeout", type=float, default=30.0)
    parser.add_argument("--request-timeout", type=float, default=10.0)
    parser.add_argument("--connect-batch", type=int, default=100, help="connects in flight per process")
    parser.add_argument(
        "--client-cpus",
        metavar="LIST",
        default=None,
        help="pin the client processes to these CPUs, as taskset -c (e.g. 1-15)",
    )
    args = parser.parse_args(argv)
    import servers

    try:
        cpus = servers.parse_cpus(args.client_cpus)
    except ValueError as e:
        parser.error(str(e))
    workload = workloads.WORKLOADS[args.workload]
    if args.http:
        request = callwire.http_request(callwire.encode_call(workload, framed=args.framed))
        reply = callwire.probe_http(args.host, args.port, args.framed, request, workload)
    else:
        request = callwire.encode_call(workload, framed=args.framed)
        reply = callwire.probe(args.host, args.port, args.framed, request, workload)
    result = run(
        args.host,
        args.port,
        request,
        reply,
        args.framed,
        args.connections,
        args.seconds,
        clients=args.clients,
        warmup=args.warmup,
        connect_timeout=args.connect_timeout,
        request_timeout=args.request_timeout,
        connect_batch=args.connect_batch,
        cpus=cpus,
        http=args.http,
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
