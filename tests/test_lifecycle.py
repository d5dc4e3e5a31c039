"""Server lifecycle: graceful drain (in-process and `dracula serve` + SIGTERM), flow control for
clients that stop reading, and half-closed connections."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import textwrap
import threading
import time

import pytest

import dracula
from examples.showcase import ShowcaseHandler

from .cli_server import CliServer
from .helpers import reset_peak, running, showcase_thrift, vm, wait_until
from .wire_client import SockTransport, client, connect, encode_call, read_reply

Showcase = showcase_thrift.Showcase
MB = 1024 * 1024
TIMEOUT = 30


# -- plumbing ------------------------------------------------------------------------------------


def refuses_connections(port) -> bool:
    """True once a connection attempt is refused; an attempt that races the listener's close
    (accepted by the kernel, then reset) counts as not yet."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        pass
    return False


def server_closes(sock) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


class Calls:
    """Calls made from threads, one thriftpy2 client (connection) each."""

    def __init__(self, port):
        self.port = port
        self.results = {}
        self.errors = {}
        self.threads = []

    def start(self, key, method, *args):
        def call():
            try:
                with client(self.port, TIMEOUT) as c:
                    self.results[key] = getattr(c, method)(*args)
            except Exception as e:  # reported by the test
                self.errors[key] = e

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self):
        for thread in self.threads:
            thread.join(TIMEOUT)
            assert not thread.is_alive()


# -- graceful drain, in-process ------------------------------------------------------------------


class GatedHandler(ShowcaseHandler):
    """sleep_* calls report that they started, then wait for the test to open the gate."""

    def __init__(self):
        super().__init__()
        self.entered = 0
        self.cond = threading.Condition()
        self.gate = threading.Event()

    def _enter(self):
        with self.cond:
            self.entered += 1
            self.cond.notify_all()

    def wait_entered(self, n):
        with self.cond:
            return self.cond.wait_for(lambda: self.entered >= n, TIMEOUT)

    @dracula.blocking
    def sleep_blocking(self, ms):
        self._enter()
        assert self.gate.wait(TIMEOUT)
        return "blocking %d" % ms

    async def sleep_async(self, ms):
        self._enter()
        deadline = time.monotonic() + TIMEOUT
        while not self.gate.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
        return "async %d" % ms


@contextlib.contextmanager
def opens_gate(handler):
    """Whatever happens, release the handlers on the way out (a failed assertion must not
    leave the server draining calls that never end)."""
    try:
        yield
    finally:
        handler.gate.set()


def test_close_drains_in_flight_calls(backend):
    handler = GatedHandler()
    with running(Showcase, handler, backend=backend) as server, opens_gate(handler):
        port = server.port
        idle = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        calls = Calls(port)
        for i in range(3):
            calls.start(("blocking", i), "sleep_blocking", i)
            calls.start(("async", i), "sleep_async", i)
        assert handler.wait_entered(6)
        assert server_thread_running(server)

        server.close()
        # No new connections while the drain goes on; idle connections are closed at once.
        assert wait_until(lambda: refuses_connections(port)), "still accepting after close()"
        assert server_closes(idle)
        idle.close()
        assert not calls.results and not calls.errors  # all six still in flight
        assert not server.stopped.is_set()

        handler.gate.set()
        calls.join()
        assert calls.errors == {}
        assert calls.results == {
            **{("blocking", i): "blocking %d" % i for i in range(3)},
            **{("async", i): "async %d" % i for i in range(3)},
        }
        assert server.stopped.wait(TIMEOUT), "serve() did not return after the drain"
    assert refuses_connections(port)


def server_thread_running(server):
    return server.started.is_set() and not server.stopped.is_set()


def test_close_answers_pipelined_requests_already_read(backend):
    # Requests read before close() are answered even when they arrive together with others.
    handler = GatedHandler()
    with running(Showcase, handler, backend=backend) as server, opens_gate(handler):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        sock.sendall(
            encode_call("sleep_async", 1, ms=1)
            + encode_call("add", 2, a=1, b=1)
            + encode_call("sleep_blocking", 3, ms=3)
        )
        assert handler.wait_entered(1)
        server.close()
        handler.gate.set()
        trans = SockTransport(sock)
        assert read_reply(trans) == ("reply", "sleep_async", 1, "async 1")
        assert read_reply(trans) == ("reply", "add", 2, 2)
        assert read_reply(trans) == ("reply", "sleep_blocking", 3, "blocking 3")
        assert server_closes(sock)
        sock.close()
        assert server.stopped.wait(TIMEOUT)


def test_graceful_timeout_bounds_the_drain(backend):
    handler = GatedHandler()
    with opens_gate(handler), running(Showcase, handler, backend=backend, graceful_timeout=0.2) as server:
        calls = Calls(server.port)
        calls.start("stuck", "sleep_blocking", 1)
        assert handler.wait_entered(1)
        server.close()
        # Generous bound: the point is "the timeout, not the stuck call, ends serve()".
        assert server.stopped.wait(10), "serve() waited past its graceful timeout"
        calls.join()
        assert "stuck" in calls.errors  # the connection was closed on it


# -- graceful drain, `dracula serve` + SIGTERM ---------------------------------------------------

GATED_MODULE = """\
    import asyncio
    import os
    import time

    import dracula

    GATE = os.environ["DRACULA_TEST_GATE"]


    class Handler:
        def add(self, a, b):
            return a + b

        @dracula.blocking
        def sleep_blocking(self, ms):
            print("entered sleep_blocking", flush=True)
            deadline = time.monotonic() + 60
            while not os.path.exists(GATE) and time.monotonic() < deadline:
                time.sleep(0.005)
            return "blocking %d" % ms

        async def sleep_async(self, ms):
            print("entered sleep_async", flush=True)
            deadline = time.monotonic() + 60
            while not os.path.exists(GATE) and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            return "async %d" % ms
    """


def test_sigterm_drains_in_flight_calls_then_exits_zero(tmp_path, backend):
    (tmp_path / "gated_handler.py").write_text(textwrap.dedent(GATED_MODULE))
    gate = tmp_path / "gate"
    env = dict(os.environ, DRACULA_TEST_GATE=str(gate))
    server = CliServer(
        "idl/showcase.thrift:Showcase",
        "gated_handler:Handler",
        "--port",
        "0",
        "--backend",
        backend,
        "--app-dir",
        str(tmp_path),
        env=env,
    )
    try:
        calls = Calls(server.port)
        for i in range(2):
            calls.start(("blocking", i), "sleep_blocking", i)
            calls.start(("async", i), "sleep_async", i)
        assert wait_until(lambda: server.output.count("entered sleep_") == 4, TIMEOUT), server.output

        server.signal(signal.SIGTERM)
        assert wait_until(lambda: refuses_connections(server.port)), "still accepting after SIGTERM"
        assert server.proc.poll() is None  # still running: four calls in flight
        assert not calls.results and not calls.errors

        gate.touch()
        calls.join()
        assert calls.errors == {}
        assert calls.results == {
            ("blocking", 0): "blocking 0",
            ("blocking", 1): "blocking 1",
            ("async", 0): "async 0",
            ("async", 1): "async 1",
        }
        assert server.wait() == 0, server.output
    finally:
        gate.touch()
        server.close()
    assert "received SIGTERM" in server.output
    assert "dracula stopped" in server.output
    assert "Traceback" not in server.output
    assert refuses_connections(server.port)


# -- flow control -------------------------------------------------------------------------------


def test_client_that_never_reads_replies_is_not_buffered(showcase_server):
    port = showcase_server.port
    data = os.urandom(MB)
    request = encode_call("reverse", 1, framed=True, data=data)
    flood = socket.socket()
    # Small client buffers so the pipeline fills sooner; the server's own are left alone.
    flood.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    flood.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    flood.connect(("127.0.0.1", port))
    flood.settimeout(2.0)
    baseline = reset_peak()
    sent = 0
    try:
        for _ in range(300):  # 300 MB if the server never stopped reading
            flood.sendall(request)
            sent += 1
        blocked = False
    except TimeoutError:
        blocked = True  # expected: the server stopped reading from us
    assert blocked, "the server read %d MB of requests whose replies nobody read" % sent
    growth = vm("VmHWM") - baseline
    assert growth < 100 * MB, "peak RSS grew by %d MB" % (growth // MB)

    # Others are still served while that client is stuck.
    with client(port, TIMEOUT) as c:
        assert c.add(1, 1) == 2

    # Once the client reads, the server resumes: every complete request is answered.
    flood.settimeout(TIMEOUT)
    trans = SockTransport(flood)
    expected = data[::-1]
    for _ in range(sent):
        assert read_reply(trans, framed=True) == ("reply", "reverse", 1, expected)
    flood.close()


# -- half-close ---------------------------------------------------------------------------------

CALLS = {
    "sync": [("add", dict(a=2, b=3), 5)],
    "async": [("sleep_async", dict(ms=20), "slept 20 ms")],
    "blocking": [("sleep_blocking", dict(ms=20), "slept 20 ms")],
    "pipelined": [
        ("sleep_async", dict(ms=30), "slept 30 ms"),
        ("add", dict(a=1, b=1), 2),
        ("sleep_blocking", dict(ms=10), "slept 10 ms"),
        ("add", dict(a=2, b=2), 4),
    ],
}


@pytest.mark.parametrize("framed", [False, True], ids=["unframed", "framed"])
@pytest.mark.parametrize("kind", list(CALLS))
def test_reply_is_delivered_after_client_half_closes(showcase_server, kind, framed):
    calls = CALLS[kind]
    with connect(showcase_server.port, TIMEOUT) as sock:
        sock.sendall(
            b"".join(encode_call(method, seqid, framed, **kwargs) for seqid, (method, kwargs, _) in enumerate(calls, 1))
        )
        sock.shutdown(socket.SHUT_WR)
        trans = SockTransport(sock)
        for seqid, (method, _, expected) in enumerate(calls, 1):
            assert read_reply(trans, framed) == ("reply", method, seqid, expected)
        assert server_closes(sock)  # and then the server closes its side too
