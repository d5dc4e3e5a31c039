"""The seed benchmark's client side: HashService.md_five calls with think time between them.

The seed (shared/seed/README.md) drove its servers with locust users, each holding a thriftpy
client (binary protocol, buffered transport) that calls `md_five('abcd' * 100000)`, waits for
the reply, then waits a uniform 100-1000 ms before its next call. This module plays those users:
P client processes (multiprocessing, fork) each run a uvloop event loop holding C/P connections,
and each connection repeats: call, wait for the whole reply, think, call again. Unlike
benchmarks/loadgen.py (closed loop, no think time), the offered load is bounded: at most about
1 / (0.55 s + latency) calls per second per connection, ~1.82 when the server answers at once.

Why raw pre-encoded requests and not thriftpy2's aio client (`thriftpy2.rpc.make_aio_client`):
measured here, one aio-client call of this workload costs ~500 us of client CPU (its async
binary protocol and buffered transport are pure Python and copy the 400 KB argument through
Python-level buffers several times), against ~100 us for writing pre-encoded bytes from an
`asyncio.Protocol` (mostly the kernel copying 400 KB into the socket). The server's own work
per call is about the same ~500-700 us (md5 over 400 KB), so on a 2-core machine the aio client
would take as much CPU as the server it measures, and the load generator would be the limit.
The bytes are what the seed's client sends: the request is encoded once by thriftpy2's binary
protocol (buffered transport = no framing; seqid 0, as thriftpy2's clients always send), and
every reply must equal, byte for byte, the reply a probe call got from the same server (and the
probe checks with thriftpy2 that it decodes to the right md5 hex digest).

Phases, on one clock shared by all processes (CLOCK_MONOTONIC):
  ramp      each process opens its connections in batches (`connect_batch` connects in flight),
            each connection starting its think/call cycle as soon as it is open (like locust
            spawning users), first call after one think time;
  warm-up   once every process has finished its ramp: `warmup` more seconds, not measured;
  measure   `seconds`: replies received and errors seen in this window are counted;
then every connection is closed. Nothing from the ramp or warm-up enters the statistics (it is
reported apart: `ramp_ok`, `ramp_errors`).

Errors (like a locust user's failed request): a connect that fails or times out, a connection
closed or reset by the server, no whole reply within `timeout` seconds of sending, a wrong reply.
An error closes the connection; it thinks, reconnects and calls again (a failed reconnect is
another error, and it thinks and tries again). Error rate = errors / (errors + replies), both in
the measured window.

Latencies (send to the whole reply) go into loadgen's log-scale histogram (1% wide buckets).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import multiprocessing
import multiprocessing.connection
import os
import random
import socket
import sys
import time

import thriftpy2
from thriftpy2.protocol.binary import TBinaryProtocol
from thriftpy2.thrift import TApplicationException, TMessageType
from thriftpy2.transport.memory import TMemoryBuffer

import loadgen
from loadgen import HIST_MIN_S, HIST_RESOLUTION, HIST_SIZE, LoadgenError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HASH_IDL = os.path.join(ROOT, "idl", "hash.thrift")
hash_thrift = thriftpy2.load(HASH_IDL, module_name="hash_bench_thrift")
HashService = hash_thrift.HashService

SEED_INPUT = "abcd" * 100000  # 400,000 characters, the seed's argument
THINK_MIN_S, THINK_MAX_S = 0.1, 1.0  # the seed's locust wait_time = between(0.1, 1)
ERROR_KINDS = ("connect", "reset", "closed", "timeout", "bad_reply")


# -- the call on the wire -------------------------------------------------------------------


class ProbeError(Exception):
    """The server did not answer the probe call with the right digest."""


def encode_call(input_str: str = SEED_INPUT) -> bytes:
    """md_five(input_str) as thriftpy2's client writes it: strict binary, unframed, seqid 0."""
    buf = TMemoryBuffer()
    proto = TBinaryProtocol(buf)
    proto.write_message_begin("md_five", TMessageType.CALL, 0)
    proto.write_struct(HashService.md_five_args(input_str=input_str))
    proto.write_message_end()
    return buf.getvalue()


def _decode_reply(data: bytes):
    """(digest, bytes used) for a whole reply at the start of data; None while incomplete."""
    buf = TMemoryBuffer(data)
    proto = TBinaryProtocol(buf)
    try:
        name, mtype, _seqid = proto.read_message_begin()
        if mtype == TMessageType.EXCEPTION:
            exc = TApplicationException()
            proto.read_struct(exc)
            raise ProbeError("server answered with an exception: %s" % exc)
        result = HashService.md_five_result()
        proto.read_struct(result)
        proto.read_message_end()
    except ProbeError:
        raise
    except Exception:
        return None  # short read: more bytes to come
    if name != "md_five" or mtype != TMessageType.REPLY:
        raise ProbeError("unexpected reply header: %r, type %d" % (name, mtype))
    return result.success, buf._pos


def probe(host: str, port: int, request: bytes, input_str: str = SEED_INPUT, timeout: float = 10.0) -> bytes:
    """One call on a fresh connection; the server's whole reply bytes, checked with thriftpy2.

    Raises OSError when the server cannot be reached, ProbeError for a wrong answer."""
    expected = hashlib.md5(input_str.encode()).hexdigest()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        got = b""
        deadline = time.monotonic() + timeout
        while True:
            decoded = _decode_reply(got) if got else None
            if decoded is not None:
                break
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise ProbeError("no whole reply within %.0f s (got %r)" % (timeout, got[:200])) from None
            if not chunk:
                raise ProbeError("connection closed after %d reply bytes: %r" % (len(got), got[:200]))
            got += chunk
        value, used = decoded
        if used != len(got):
            raise ProbeError("%d bytes after the reply" % (len(got) - used))
        if value != expected:
            raise ProbeError("md_five returned %r, expected %r" % (value, expected))
        return got


# -- one client process ---------------------------------------------------------------------

_monotonic = time.monotonic
_log = math.log


class _Conn(asyncio.Protocol):
    """One seed user: call, wait for the whole reply, think, call again.

    It holds at most one pending timer (its next call or reconnect), never more than one call
    in flight, and at most one connect attempt at a time."""

    __slots__ = ("client", "transport", "sent", "got", "counted", "connecting", "timer")

    def __init__(self, client):
        self.client = client
        self.transport = None
        self.sent = 0.0  # when the call in flight was sent; 0.0 when none is
        self.got = 0  # reply bytes received so far
        self.counted = False  # its closing was already counted as an error
        self.connecting = False
        self.timer = None

    def schedule(self, fn) -> None:
        """Run fn after one think time (replacing whatever was scheduled)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        client = self.client
        if client.running:
            self.timer = client.loop.call_later(client.rng.uniform(client.think_min, client.think_max), fn)

    def connection_made(self, transport):
        self.transport = transport
        self.counted = False
        self.got = 0

    def connection_lost(self, exc):
        self.transport = None
        self.sent = 0.0
        client = self.client
        if client.running and not self.counted:
            client.error("reset" if exc is not None else "closed")
            self.schedule(self.reconnect)

    def call(self) -> None:
        self.timer = None
        if not self.client.running or self.sent:
            return
        if self.transport is None:
            self.reconnect()
            return
        self.sent = _monotonic()
        self.got = 0
        self.transport.write(self.client.request)

    def fail(self, kind: str) -> None:
        """Count an error, drop the connection; it thinks, reconnects and calls again."""
        self.client.error(kind)
        self.counted = True
        self.sent = 0.0
        if self.transport is not None:
            self.transport.abort()
        self.schedule(self.reconnect)

    def reconnect(self) -> None:
        self.timer = None
        if self.client.running and self.transport is None and not self.connecting:
            self.connecting = True
            self.client.loop.create_task(self.client.reconnect(self))

    def data_received(self, data):
        client = self.client
        if not self.sent:
            self.fail("bad_reply")  # bytes nobody asked for
            return
        got = self.got
        size = len(data)
        if got + size > client.reply_len or data != client.reply[got : got + size]:
            self.fail("bad_reply")
            return
        self.got = got + size
        if self.got < client.reply_len:
            return
        now = _monotonic()
        latency = now - self.sent
        self.sent = 0.0
        self.got = 0
        client.replied(now, latency)
        self.schedule(self.call)


class _Client:
    def __init__(self, loop, pipe, spec):
        self.loop = loop
        self.pipe = pipe
        self.host = spec["host"]
        self.port = spec["port"]
        self.request = spec["request"]
        self.reply = spec["reply"]
        self.reply_len = len(self.reply)
        self.timeout = spec["timeout"]
        self.connect_timeout = spec["connect_timeout"]
        self.batch = spec["connect_batch"]
        self.think_min = spec["think_min"]
        self.think_max = spec["think_max"]
        self.rng = random.Random()  # seeded from os.urandom here, not the parent's forked state
        self.conns = [_Conn(self) for _ in range(spec["connections"])]
        self.running = False
        self.t_measure = self.t_end = float("inf")
        # Counters: measured window, and everything before it (ramp + warm-up).
        self.ok = 0
        self.errors = dict.fromkeys(ERROR_KINDS, 0)
        self.ramp_ok = 0
        self.ramp_errors = dict.fromkeys(ERROR_KINDS, 0)
        self.latency_sum = 0.0
        self.latency_max = 0.0
        self.hist = [0] * HIST_SIZE
        self.reconnects = 0
        self.window_set = None

    # counting

    def replied(self, now: float, latency: float) -> None:
        if now < self.t_measure:
            self.ramp_ok += 1
        elif now < self.t_end:
            self.ok += 1
            self.latency_sum += latency
            if latency > self.latency_max:
                self.latency_max = latency
            i = int(_log(latency * 1e6) * HIST_RESOLUTION) if latency > HIST_MIN_S else 0
            self.hist[i if i < HIST_SIZE else HIST_SIZE - 1] += 1

    def error(self, kind: str) -> None:
        now = _monotonic()
        if now < self.t_measure:
            self.ramp_errors[kind] += 1
        elif now < self.t_end:
            self.errors[kind] += 1

    # connections

    async def _open(self, conn, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self.loop.create_connection(lambda: conn, self.host, self.port), timeout)
            return True
        except (OSError, asyncio.TimeoutError):
            self.error("connect")
            return False

    async def reconnect(self, conn) -> None:
        try:
            ok = await self._open(conn, self.timeout)
        finally:
            conn.connecting = False
        if ok:
            self.reconnects += 1
            conn.call()
        else:
            conn.schedule(conn.reconnect)

    async def _ramp(self) -> int:
        opened = 0
        for first in range(0, len(self.conns), self.batch):
            batch = self.conns[first : first + self.batch]
            results = await asyncio.gather(*(self._open(c, self.connect_timeout) for c in batch))
            for conn, ok in zip(batch, results, strict=True):
                conn.schedule(conn.call if ok else conn.reconnect)
                opened += ok
            self.pipe.send(("ramp", opened, first + len(batch)))
        return opened

    async def _sweep(self) -> None:
        """Fail calls that have waited longer than the timeout."""
        every = max(0.01, min(0.25, self.timeout / 4))
        while self.running:
            await asyncio.sleep(every)
            limit = _monotonic() - self.timeout
            for conn in self.conns:
                if conn.sent and conn.sent < limit:
                    conn.fail("timeout")

    async def _report(self) -> None:
        while self.running:
            await asyncio.sleep(1.0)
            errors = sum(self.errors.values()) + sum(self.ramp_errors.values())
            self.pipe.send(
                ("progress", self.ok + self.ramp_ok, errors, sum(1 for c in self.conns if c.transport is not None))
            )

    def _on_pipe(self) -> None:
        msg = self.pipe.recv()
        if msg[0] == "window" and not self.window_set.done():
            self.window_set.set_result(msg[1:])

    async def run(self) -> dict:
        self.running = True
        self.window_set = self.loop.create_future()
        self.loop.add_reader(self.pipe.fileno(), self._on_pipe)
        # Held so they are not collected: the event loop keeps only weak references to tasks.
        _tasks = [self.loop.create_task(self._sweep()), self.loop.create_task(self._report())]
        opened = await self._ramp()
        self.pipe.send(("ramped", opened, len(self.conns)))
        self.t_measure, self.t_end = await self.window_set
        self.loop.remove_reader(self.pipe.fileno())
        delay = self.t_end - _monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self.running = False
        now = _monotonic()
        in_flight = [now - c.sent for c in self.conns if c.sent]
        stalled = sum(1 for c in self.conns if c.sent and c.sent < self.t_measure)
        for conn in self.conns:
            if conn.transport is not None:
                conn.transport.abort()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await asyncio.sleep(0)
        return {
            "opened_in_ramp": opened,
            "ok": self.ok,
            "errors": self.errors,
            "ramp_ok": self.ramp_ok,
            "ramp_errors": self.ramp_errors,
            "reconnects": self.reconnects,
            "latency_sum": self.latency_sum,
            "latency_max": self.latency_max,
            "hist": {i: n for i, n in enumerate(self.hist) if n},
            "stalled": stalled,
            "in_flight_at_end": len(in_flight),
            "oldest_in_flight": max(in_flight, default=0.0),
        }


def _client_main(pipe, spec) -> None:
    loadgen._client_main(pipe, spec, _Client)


# -- the parent: split, synchronise, merge --------------------------------------------------


def run(
    host: str,
    port: int,
    request: bytes,
    reply: bytes,
    connections: int,
    seconds: float,
    clients: int = 2,
    warmup: float = 5.0,
    timeout: float = 10.0,
    connect_timeout: float = 30.0,
    connect_batch: int = 100,
    think_min: float = THINK_MIN_S,
    think_max: float = THINK_MAX_S,
    label: str = "",
    progress: bool = True,
    on_phase=None,
) -> dict:
    """Run the load; the merged result (see the module docstring for what counts).

    `on_phase(name, client_pids)` is called in this process as the measured window opens
    ("measure") and closes ("end"), e.g. to read CPU times at both moments.
    """
    if connections < 1 or seconds <= 0:
        raise ValueError("need connections >= 1 and seconds > 0")
    clients = max(1, min(clients, connections))
    per_process = loadgen.max_connections_per_process()
    if connections > clients * per_process:
        clients = math.ceil(connections / per_process)  # stay under each process's fd limit
    shares = loadgen.split(connections, clients)
    ctx = multiprocessing.get_context("fork")
    pipes, procs = [], []
    show = loadgen._Progress(label, progress)
    try:
        for share in shares:
            parent_end, child_end = ctx.Pipe()
            spec = {
                "host": host,
                "port": port,
                "request": request,
                "reply": reply,
                "connections": share,
                "timeout": timeout,
                "connect_timeout": connect_timeout,
                "connect_batch": max(1, connect_batch),
                "think_min": think_min,
                "think_max": think_max,
            }
            proc = ctx.Process(target=_client_main, args=(child_end, spec), daemon=True)
            proc.start()
            child_end.close()
            pipes.append(parent_end)
            procs.append(proc)
        pids = [p.pid for p in procs]
        state = [
            {"opened": 0, "tried": 0, "ramped": False, "done": 0, "errors": 0, "open": 0, "result": None}
            for _ in shares
        ]

        def pump(wait: float) -> None:
            waiting = [p for p, s in zip(pipes, state, strict=True) if s["result"] is None]
            for pipe in multiprocessing.connection.wait(waiting, wait):
                i = pipes.index(pipe)
                try:
                    msg = pipe.recv()
                except EOFError:
                    raise LoadgenError("client process %d exited (code %s)" % (i, procs[i].exitcode)) from None
                kind = msg[0]
                if kind == "ramp":
                    state[i]["opened"], state[i]["tried"] = msg[1], msg[2]
                elif kind == "ramped":
                    state[i]["opened"], state[i]["ramped"] = msg[1], True
                elif kind == "progress":
                    state[i]["done"], state[i]["errors"], state[i]["open"] = msg[1], msg[2], msg[3]
                elif kind == "result":
                    state[i]["result"] = msg[1]
                elif kind == "failed":
                    raise LoadgenError("client process %d failed:\n%s" % (i, msg[1]))

        rate = _Rate()
        t_ramp = time.monotonic()
        while not all(s["ramped"] for s in state):
            pump(0.5)
            rate.update(sum(s["done"] for s in state))
            show.show(
                "ramping: %d/%d connections open, %d tried, %.0f s so far, ~%.0f calls/s, %d errors"
                % (
                    sum(s["opened"] for s in state),
                    connections,
                    sum(s["tried"] for s in state),
                    time.monotonic() - t_ramp,
                    rate.value,
                    sum(s["errors"] for s in state),
                )
            )
        ramp_s = time.monotonic() - t_ramp
        opened = sum(s["opened"] for s in state)
        show.show("ramped: %d/%d connections open in %.1f s" % (opened, connections, ramp_s), force=True)

        t_measure = time.monotonic() + warmup
        t_end = t_measure + seconds
        for pipe in pipes:
            pipe.send(("window", t_measure, t_end))
        measuring = False
        while True:
            now = time.monotonic()
            if not measuring and now >= t_measure:
                measuring = True
                if on_phase:
                    on_phase("measure", pids)
            if now >= t_end:
                break
            pump(min(0.5, max(0.0, (t_end if measuring else t_measure) - now)))
            rate.update(sum(s["done"] for s in state))
            left = (t_end if measuring else t_measure) - time.monotonic()
            show.show(
                "%s, %.0f s left: ~%.0f calls/s, %d/%d open, %d errors"
                % (
                    "measuring" if measuring else "warming up",
                    max(0.0, left),
                    rate.value,
                    sum(s["open"] for s in state),
                    connections,
                    sum(s["errors"] for s in state),
                )
            )
        if on_phase:
            on_phase("end", pids)

        deadline = time.monotonic() + 60
        while not all(s["result"] is not None for s in state):
            if time.monotonic() > deadline:
                raise LoadgenError("client processes did not report within 60 s of the end")
            pump(0.5)
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
    merged = merge([s["result"] for s in state], seconds)
    merged.update(
        connections=connections,
        clients=clients,
        seconds=seconds,
        warmup=warmup,
        ramp_s=round(ramp_s, 3),
        timeout=timeout,
        think_min=think_min,
        think_max=think_max,
    )
    return merged


class _Rate:
    """Calls per second over the last second or so, from a growing total."""

    def __init__(self):
        self.last_n, self.last_t, self.value = 0, time.monotonic(), 0.0

    def update(self, n: int) -> None:
        now = time.monotonic()
        if now - self.last_t >= 1.0:
            self.value = max(0.0, (n - self.last_n) / (now - self.last_t))
            self.last_n, self.last_t = n, now


def merge(results: list, seconds: float) -> dict:
    hist = {}
    for r in results:
        for i, n in r["hist"].items():
            hist[i] = hist.get(i, 0) + n
    errors = dict.fromkeys(ERROR_KINDS, 0)
    ramp_errors = dict.fromkeys(ERROR_KINDS, 0)
    for r in results:
        for kind in ERROR_KINDS:
            errors[kind] += r["errors"][kind]
            ramp_errors[kind] += r["ramp_errors"][kind]
    ok = sum(r["ok"] for r in results)
    total_errors = sum(errors.values())
    attempts = ok + total_errors

    def ms(value):
        return None if value is None else round(value * 1000, 3)

    return {
        "requests": ok,
        "qps": ok / seconds,
        "errors": total_errors,
        "error_rate": total_errors / attempts if attempts else 0.0,
        "error_kinds": errors,
        "p50_ms": ms(loadgen.percentile(hist, ok, 0.50)),
        "p99_ms": ms(loadgen.percentile(hist, ok, 0.99)),
        "p999_ms": ms(loadgen.percentile(hist, ok, 0.999)),
        "mean_ms": ms(sum(r["latency_sum"] for r in results) / ok) if ok else None,
        "max_ms": ms(max(r["latency_max"] for r in results)) if ok else None,
        "opened_in_ramp": sum(r["opened_in_ramp"] for r in results),
        "ramp_ok": sum(r["ramp_ok"] for r in results),
        "ramp_errors": sum(ramp_errors.values()),
        "ramp_error_kinds": ramp_errors,
        "reconnects": sum(r["reconnects"] for r in results),
        # Calls sent before the measured window opened and still unanswered when it closed.
        "stalled_at_end": sum(r["stalled"] for r in results),
        "in_flight_at_end": sum(r["in_flight_at_end"] for r in results),
        "oldest_in_flight_ms": ms(max(r["oldest_in_flight"] for r in results)),
    }


if __name__ == "__main__":
    sys.exit("run benchmarks/qps_table.py; this module is its client side")
