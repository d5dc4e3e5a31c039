"""dracula inside the caller's own event loop: serve_async, shutdown, serving(), the example app
(examples/embedded.py: Thrift and HTTP on one loop), on uvloop and on plain asyncio, over real
sockets with real clients."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import threading
import time

import pytest
import thriftpy2.rpc
import uvloop

import dracula
from examples.embedded import EmbeddedApp

from .helpers import pingpong_thrift, showcase_thrift as t

SAFETY_TIMEOUT = 10  # seconds: only so that a broken server fails the test instead of hanging it


@pytest.fixture(params=["uvloop", "asyncio"])
def run(request):
    """run(coroutine): its result, on a new loop of the parametrized kind (closed after)."""

    def run_on_new_loop(coroutine):
        loop = uvloop.new_event_loop() if request.param == "uvloop" else asyncio.new_event_loop()
        try:
            return loop.run_until_complete(asyncio.wait_for(coroutine, 3 * SAFETY_TIMEOUT))
        finally:
            loop.close()

    run_on_new_loop.kind = request.param
    return run_on_new_loop


def in_thread(fn, *args):
    """A blocking client call, off the loop that serves it."""
    return asyncio.get_running_loop().run_in_executor(None, fn, *args)


def client(service, port):
    return thriftpy2.rpc.make_client(service, "127.0.0.1", port, timeout=SAFETY_TIMEOUT * 1000)


async def until(condition, timeout=SAFETY_TIMEOUT):
    """A bounded wait on `condition`, yielding to the loop between looks."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in %gs" % timeout
        await asyncio.sleep(0.01)


def refuses_connections(port) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=SAFETY_TIMEOUT).close()
    except ConnectionRefusedError:
        return True
    return False


def http_get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=SAFETY_TIMEOUT)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), json.loads(response.read())
    finally:
        conn.close()


# -- the example: Thrift and HTTP in one process, one loop ---------------------------------------


def test_example_serves_thrift_and_http_on_one_loop(run):
    async def scenario():
        app = EmbeddedApp(thrift_port=0, http_port=0)
        await app.start_http()
        serving = asyncio.ensure_future(app.thrift.serve_async())
        await app.thrift.wait_started()
        ping = client(pingpong_thrift.PingService, app.thrift.port)
        try:
            before = await in_thread(http_get, app.http_port, "/status")
            pongs = [await in_thread(ping.ping) for _ in range(3)]
            after = await in_thread(http_get, app.http_port, "/status")
            missing = await in_thread(http_get, app.http_port, "/nothing")
        finally:
            ping.close()
        await app.thrift.shutdown()
        await serving
        await app.close_http()
        return before, pongs, after, missing, app

    before, pongs, after, missing, app = run(scenario())
    assert before == (200, "application/json", {"serving": True, "thrift_port": app.thrift.port, "pings": 0})
    assert pongs == ["pong"] * 3
    assert after[2] == {"serving": True, "thrift_port": app.thrift.port, "pings": 3}
    assert missing[0] == 404
    assert app.thrift.stopped.is_set() and not app.thrift.drain_timed_out
    assert refuses_connections(app.thrift.port) and refuses_connections(app.http_port)


# -- serve_async and shutdown --------------------------------------------------------------------


class GatedPing:
    """ping() waits at a gate the test opens; records the loop it ran on."""

    def __init__(self):
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.ran_on = []

    async def ping(self):
        self.ran_on.append(asyncio.get_running_loop())
        self.entered.set()
        await until(self.gate.is_set)
        return "pong"


class BlockingGatedPing(GatedPing):
    """The same in the server's thread pool: records the thread it ran on."""

    @dracula.blocking
    def ping(self):
        self.ran_on.append(threading.current_thread().name)
        self.entered.set()
        assert self.gate.wait(SAFETY_TIMEOUT)
        return "pong"


@pytest.mark.parametrize("kind", ["async", "blocking"])
def test_shutdown_answers_the_call_in_flight_then_returns(run, kind):
    handler = BlockingGatedPing() if kind == "blocking" else GatedPing()
    server = dracula.make_server(pingpong_thrift.PingService, handler, host="127.0.0.1", port=0)

    async def scenario():
        serving = asyncio.ensure_future(server.serve_async())
        await server.wait_started()
        ping = client(pingpong_thrift.PingService, server.port)
        try:
            call = in_thread(ping.ping)
            await until(handler.entered.is_set)
            stopping = asyncio.ensure_future(server.shutdown())
            await until(lambda: server.state.draining)
            refused = await in_thread(refuses_connections, server.port)  # no longer accepting
            still_waiting = not stopping.done() and not serving.done()
            handler.gate.set()
            answer = await call
            await stopping
            await serving
        finally:
            ping.close()
        return refused, still_waiting, answer, asyncio.get_running_loop()

    refused, still_waiting, answer, loop = run(scenario())
    assert refused and still_waiting
    assert answer == "pong"
    assert server.stopped.is_set() and not server.drain_timed_out
    if kind == "async":
        assert handler.ran_on == [loop]  # the caller's loop, not one of dracula's own
    else:
        assert handler.ran_on[0].startswith("dracula-blocking")


def test_close_from_the_loop_makes_serve_async_return(run):
    server = dracula.make_server(t.Showcase, object(), host="127.0.0.1", port=0)

    async def scenario():
        serving = asyncio.ensure_future(server.serve_async())
        await server.wait_started()
        server.close()
        await serving

    run(scenario())
    assert server.stopped.is_set()
    assert refuses_connections(server.port)


def test_a_server_serves_once(run):
    server = dracula.make_server(t.Showcase, object(), host="127.0.0.1", port=0)

    async def scenario():
        async def serve_then_close():
            await server.wait_started()
            server.close()

        await asyncio.gather(server.serve_async(), serve_then_close())
        await server.serve_async()

    with pytest.raises(RuntimeError, match="serves once"):
        run(scenario())


def test_cancelling_serve_async_stops_at_once(run):
    server = dracula.make_server(pingpong_thrift.PingService, GatedPing(), host="127.0.0.1", port=0)

    async def scenario():
        serving = asyncio.ensure_future(server.serve_async())
        await server.wait_started()
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving

    run(scenario())
    assert server.stopped.is_set()
    assert refuses_connections(server.port)


def test_signals_are_left_alone_unless_asked(run):
    server = dracula.make_server(t.Showcase, object(), host="127.0.0.1", port=0)
    before = signal.getsignal(signal.SIGTERM)

    async def scenario():
        serving = asyncio.ensure_future(server.serve_async())
        await server.wait_started()
        during = signal.getsignal(signal.SIGTERM)
        await server.shutdown()
        await serving
        return during

    assert run(scenario()) is before


def test_install_signals_drains_on_sigterm_and_restores_the_handler(run):
    assert threading.current_thread() is threading.main_thread()
    server = dracula.make_server(pingpong_thrift.PingService, GatedPing(), host="127.0.0.1", port=0)
    before = signal.getsignal(signal.SIGTERM)

    async def scenario():
        serving = asyncio.ensure_future(server.serve_async(install_signals=True))
        await server.wait_started()
        # Only send SIGTERM once the server's handler holds it: otherwise it would end pytest.
        assert signal.getsignal(signal.SIGTERM) == server._on_signal
        os.kill(os.getpid(), signal.SIGTERM)
        await serving

    run(scenario())
    assert server.stopped.is_set() and server.closing
    assert signal.getsignal(signal.SIGTERM) is before


# -- dracula.serving() ---------------------------------------------------------------------------


def test_serving_context_serves_on_the_callers_loop_and_drains_on_exit(run):
    handler = GatedPing()

    async def open_gate_once_draining(server):
        await until(lambda: server.state.draining)
        handler.gate.set()

    async def scenario():
        async with dracula.serving(pingpong_thrift.PingService, handler) as server:
            assert server.port and server.started.is_set()
            ping = client(pingpong_thrift.PingService, server.port)
            call = in_thread(ping.ping)
            await until(handler.entered.is_set)
            opener = asyncio.ensure_future(open_gate_once_draining(server))
        # Leaving the block waited for the drain, which answered the call in flight.
        stopped_by_then = server.stopped.is_set()
        try:
            return server, stopped_by_then, await call, asyncio.get_running_loop()
        finally:
            await opener
            ping.close()

    server, stopped_by_then, answer, loop = run(scenario())
    assert stopped_by_then and answer == "pong"
    assert handler.ran_on == [loop]
    assert server.stopped.is_set() and not server.drain_timed_out
    assert refuses_connections(server.port)


def test_serving_several_services_from_a_mapping(run):
    from examples.pingpong import PingHandler
    from examples.showcase import ShowcaseHandler

    async def scenario():
        services = {"Showcase": (t.Showcase, ShowcaseHandler()), "Ping": (pingpong_thrift.PingService, PingHandler())}
        async with dracula.serving(services) as server:
            showcase = client(t.Showcase, server.port)
            ping = thriftpy2.rpc.make_client(
                pingpong_thrift.PingService,
                "127.0.0.1",
                server.port,
                timeout=SAFETY_TIMEOUT * 1000,
                proto_factory=thriftpy2.protocol.TMultiplexedProtocolFactory(
                    thriftpy2.protocol.TCyBinaryProtocolFactory(), "Ping"
                ),
            )
            try:
                return await in_thread(showcase.add, 40, 2), await in_thread(ping.ping)
            finally:
                showcase.close()
                ping.close()

    assert run(scenario()) == (42, "pong")


# -- what needs serve() ---------------------------------------------------------------------------


def test_thread_backend_needs_serve(run):
    server = dracula.make_server(t.Showcase, object(), host="127.0.0.1", port=0, backend="thread")
    try:
        with pytest.raises(RuntimeError, match=r"thread.*serve\(\)"):
            run(server.serve_async())
    finally:
        server.sock.close()

    async def via_serving():
        async with dracula.serving(t.Showcase, object(), backend="thread"):
            pass

    with pytest.raises(RuntimeError, match=r"thread.*serve\(\)"):
        run(via_serving())


def test_workers_need_the_command_line():
    with pytest.raises(TypeError, match="dracula serve --workers"):
        dracula.make_server(t.Showcase, object(), port=0, workers=2)
