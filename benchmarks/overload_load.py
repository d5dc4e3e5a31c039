"""The overload benchmark's clients: closed-loop connections paced at one call per second,
each call given up after a deadline.

Every connection starts a call, waits for its reply, and starts the next one a second after
the previous started (at once if the reply took longer), so N connections offer N calls/s
while the server keeps up. A call not answered within `give_up` seconds is abandoned as a
real client abandons it: the connection is closed (its reply stream is out of step) and a new
one opened. So the offered load is set by the number of connections, and a server that
falls behind sees its clients leave rather than wait.

Each reply is classified from its message header: a REPLY that equals the probe's reply
byte for byte is `ok` (goodput), an EXCEPTION carrying TApplicationException type 11 is `shed`
(the server said it was overloaded); anything else is `bad`. Latencies of ok and shed replies
go into loadgen's log-scale histograms. P processes (fork) share the connections; each runs a
uvloop loop.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import struct
import time

import uvloop

import loadgen

LOADSHEDDING = 11
_monotonic = time.monotonic


def message_length(data: bytes):
    """Length of the complete strict-binary message at the start of `data` whose struct holds
    only i32, string and struct fields (a result or a TApplicationException), with its type
    and, for an exception, its type field; None while incomplete."""
    if len(data) < 8:
        return None
    mtype = data[3]
    name_len = struct.unpack_from("!i", data, 4)[0]
    pos = 8 + name_len + 4
    app_type = None
    depth = 1
    while depth:
        if pos >= len(data):
            return None
        ftype = data[pos]
        if ftype == 0:
            depth -= 1
            pos += 1
            continue
        if pos + 3 > len(data):
            return None
        fid = struct.unpack_from("!h", data, pos + 1)[0]
        pos += 3
        if ftype == 8:
            if pos + 4 > len(data):
                return None
            if depth == 1 and fid == 2:
                app_type = struct.unpack_from("!i", data, pos)[0]
            pos += 4
        elif ftype == 11:
            if pos + 4 > len(data):
                return None
            pos += 4 + struct.unpack_from("!i", data, pos)[0]
        elif ftype == 12:
            depth += 1
        else:
            raise ValueError("unexpected field type %d" % ftype)
    return (pos, mtype, app_type) if pos <= len(data) else None


class _Conn(asyncio.Protocol):
    def __init__(self, client):
        self.client = client
        self.transport = None
        self.sent = 0.0  # when the call in flight was sent; 0.0 when none is
        self.next_at = 0.0
        self.data = b""

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self.transport = None
        self.sent = 0.0
        self.data = b""
        if self.client.running:
            self.client.reconnect_later(self)

    def send(self):
        self.sent = now = _monotonic()
        self.next_at = now + 1.0
        self.transport.write(self.client.request)

    def data_received(self, data):
        self.data += data
        parsed = message_length(self.data)
        if parsed is None:
            return
        length, mtype, app_type = parsed
        reply, self.data = self.data[:length], self.data[length:]
        now = _monotonic()
        self.client.record(reply, mtype, app_type, now - self.sent, now)
        self.sent = 0.0
        self.client.schedule(self, max(0.0, self.next_at - now))

    def give_up(self):
        self.client.count("timeout")
        self.sent = 0.0
        self.transport.abort()  # reconnects in connection_lost


class _Client:
    def __init__(self, loop, spec):
        self.loop = loop
        self.spec = spec
        self.request = spec["request"]
        self.reply = spec["reply"]
        self.give_up_s = spec["give_up"]
        self.conns = [_Conn(self) for _ in range(spec["connections"])]
        self.running = False
        self.t_measure = self.t_end = float("inf")
        self.counts = dict.fromkeys(("ok", "shed", "timeout", "bad", "reconnect_failed"), 0)
        self.hists = {"ok": {}, "shed": {}}

    def count(self, kind):
        if self.t_measure <= _monotonic() < self.t_end:
            self.counts[kind] += 1

    def record(self, reply, mtype, app_type, latency, now):
        if mtype == 2 and reply == self.reply:
            kind = "ok"
        elif mtype == 3 and app_type == LOADSHEDDING:
            kind = "shed"
        else:
            kind = "bad"
        if not self.t_measure <= now < self.t_end:
            return
        self.counts[kind] += 1
        if kind in self.hists:
            i = int(loadgen._log(latency * 1e6) * loadgen.HIST_RESOLUTION) if latency > loadgen.HIST_MIN_S else 0
            hist = self.hists[kind]
            hist[i] = hist.get(i, 0) + 1

    def schedule(self, conn, delay):
        if self.running:
            self.loop.call_later(delay, self._send, conn)

    def _send(self, conn):
        if self.running and conn.transport is not None and not conn.sent:
            conn.send()

    def reconnect_later(self, conn):
        self.loop.create_task(self._reconnect(conn))

    async def _reconnect(self, conn):
        await asyncio.sleep(0.05)
        while self.running and conn.transport is None:
            try:
                await self.loop.create_connection(lambda: conn, self.spec["host"], self.spec["port"])
            except OSError:
                self.count("reconnect_failed")
                await asyncio.sleep(0.2)
        self.schedule(conn, max(0.0, conn.next_at - _monotonic()))

    async def _sweep(self):
        while self.running:
            await asyncio.sleep(0.02)
            limit = _monotonic() - self.give_up_s
            for conn in self.conns:
                if conn.sent and conn.sent < limit and conn.transport is not None:
                    conn.give_up()

    async def run(self, t_start):
        host, port = self.spec["host"], self.spec["port"]
        for conn in self.conns:
            await self.loop.create_connection(lambda c=conn: c, host, port)
        self.t_measure = t_start + self.spec["warmup"]
        self.t_end = self.t_measure + self.spec["seconds"]
        await asyncio.sleep(max(0.0, t_start - _monotonic()))
        self.running = True
        for conn in self.conns:  # spread the first calls over the first second
            self.schedule(conn, random.random())
        sweep = self.loop.create_task(self._sweep())
        await asyncio.sleep(max(0.0, self.t_end - _monotonic()))
        self.running = False
        sweep.cancel()
        for conn in self.conns:
            if conn.transport is not None:
                conn.transport.abort()
        await asyncio.sleep(0.1)
        return {"counts": self.counts, "hists": self.hists}


def _client_main(queue, spec, t_start):
    loadgen._raise_fd_limit(spec["connections"] + loadgen.FD_RESERVE)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        queue.put(loop.run_until_complete(_Client(loop, spec).run(t_start)))
    finally:
        loop.close()


def run(host, port, request, reply, connections, seconds=10.0, warmup=3.0, give_up=1.0, clients=2) -> dict:
    """Offer `connections` calls/s for warmup + seconds; the measured window's counts (per
    second: `goodput`, `shed_rate`) and the ok and shed latency percentiles."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    t_start = _monotonic() + 2.0 + connections / 500  # time for every connection to open
    procs = []
    for share in loadgen.split(connections, clients):
        spec = {
            "host": host,
            "port": port,
            "request": request,
            "reply": reply,
            "connections": share,
            "seconds": seconds,
            "warmup": warmup,
            "give_up": give_up,
        }
        proc = ctx.Process(target=_client_main, args=(queue, spec, t_start), daemon=True)
        proc.start()
        procs.append(proc)
    results = [queue.get(timeout=t_start - _monotonic() + warmup + seconds + 60) for _ in procs]
    for proc in procs:
        proc.join(10)
    return summarize(results, connections, seconds)


def summarize(results, connections, seconds) -> dict:
    counts = {k: sum(r["counts"][k] for r in results) for k in results[0]["counts"]}
    out = {
        "connections": connections,
        "seconds": seconds,
        **counts,
        "goodput": counts["ok"] / seconds,
        "shed_rate": counts["shed"] / seconds,
    }
    for kind in ("ok", "shed"):
        hist = {}
        for r in results:
            for i, n in r["hists"][kind].items():
                hist[i] = hist.get(i, 0) + n
        total = sum(hist.values())
        for q in (0.5, 0.99):
            value = loadgen.percentile(hist, total, q)
            out["%s_p%d_ms" % (kind, q * 100)] = None if value is None else round(value * 1000, 1)
    return out
