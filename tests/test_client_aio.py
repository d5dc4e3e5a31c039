"""dracula.make_aio_client against real dracula servers over every transport and protocol, and
against a scripted server sending replies that are not the call's."""

from __future__ import annotations

import asyncio
import struct
import time

import pytest
import uvloop
from thriftpy2.thrift import TApplicationException

import dracula
from dracula.client import BadReply, CallTimeout, NotSent
from examples.showcase import ShowcaseHandler

from .client_fakes import EXCEPTION, FakeServer
from .helpers import free_port, running, showcase_thrift

Showcase = showcase_thrift.Showcase
WIRES = [(t, p) for t in ("header", "framed", "buffered") for p in ("binary", "compact")]


@pytest.fixture(scope="module")
def server():
    with running(Showcase, ShowcaseHandler()) as s:
        yield s


def run(coro, loop="asyncio"):
    """Run `coro` on asyncio's own loop or on uvloop's (the loop dracula serves on)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop if loop == "uvloop" else None) as runner:
        return runner.run(coro)


@pytest.fixture(params=["asyncio", "uvloop"])
def loop(request):
    return request.param


@pytest.mark.parametrize("transport,protocol", WIRES)
def test_every_outcome_over_every_wire(server, transport, protocol, loop):
    async def main():
        async with dracula.make_aio_client(
            Showcase, "127.0.0.1:%d" % server.port, transport=transport, protocol=protocol
        ) as client:
            assert await client.add(2, 40) == 42
            assert await client.add(a=1, b=2) == 3
            shapes = await client.shapes(3)
            assert [s.name for s in shapes] == ["shape-0", "shape-1", "shape-2"]
            assert sorted(shapes[2].tags) == [-2, 2] and shapes[2].blob == b"\x02\x02"
            assert await client.ping() is None
            assert await client.reverse(b"abc") == b"cba"
            with pytest.raises(showcase_thrift.NotFound) as e:
                await client.lookup("missing")
            assert e.value.code == 404
            with pytest.raises(TApplicationException) as e:
                await client.fail("boom")
            assert e.value.type == TApplicationException.INTERNAL_ERROR
            await client.record("event-" + transport + protocol)  # oneway: nothing to wait for
            assert "event-" + transport + protocol in await client.recorded()

    run(main(), loop)


def test_a_thousand_concurrent_calls_each_get_their_own_reply(server, loop):
    """thriftpy2 #245: concurrent calls on one aio client. Twenty connections carry 1,000 calls
    whose replies come back in scrambled order (each sleeps a different time)."""

    async def main():
        async with dracula.make_aio_client(Showcase, ("127.0.0.1", server.port), max_connections=20) as client:
            sums = asyncio.gather(*[client.add(i, 1000 * i) for i in range(1000)])
            sleeps = asyncio.gather(*[client.sleep_async(ms) for ms in (30, 1, 20, 5, 10) * 4])
            assert await sums == [1001 * i for i in range(1000)]
            assert await sleeps == ["slept %d ms" % ms for ms in (30, 1, 20, 5, 10) * 4]
            host = client._core.balancer.hosts[0]
            assert host.pool.stack.size <= 20 and host.outstanding == 0

    run(main(), loop)


@pytest.mark.parametrize("transport", ["framed", "header"])
def test_after_a_timed_out_call_the_next_call_gets_its_own_reply(server, transport):
    """thriftpy2 #31: the timed-out call's connection is discarded, so its late reply is never
    read as the next call's (one connection at most: the next call must open a new one)."""

    async def main():
        async with dracula.make_aio_client(
            Showcase, ("127.0.0.1", server.port), transport=transport, max_connections=1
        ) as client:
            assert await client.add(1, 1) == 2
            started = time.monotonic()
            with pytest.raises(CallTimeout) as e:
                await client.call("sleep_async", 400, timeout=0.1)
            assert e.value.type == 12
            assert time.monotonic() - started < 0.35
            assert await client.add(2, 3) == 5
            assert await client.reverse(b"xy") == b"yx"

    run(main())


def test_per_client_timeout_and_none_for_one_call(server):
    async def main():
        async with dracula.make_aio_client(Showcase, ("127.0.0.1", server.port), timeout=0.05) as client:
            with pytest.raises(CallTimeout):
                await client.sleep_async(300)
            assert await client.call("sleep_async", 60, timeout=None) == "slept 60 ms"

    run(main())


def test_a_refused_connection_fails_as_not_sent():
    async def main():
        async with dracula.make_aio_client(Showcase, ("127.0.0.1", free_port())) as client:
            with pytest.raises(NotSent, match="cannot connect"):
                await client.add(1, 2)

    run(main())


def test_a_reply_past_max_frame_size_fails_the_call_and_the_connection(server):
    async def main():
        async with dracula.make_aio_client(
            Showcase, ("127.0.0.1", server.port), transport="framed", max_frame_size=4096
        ) as client:
            with pytest.raises(BadReply, match="limit 4096"):
                await client.shapes(200)
            assert await client.add(1, 2) == 3

    run(main())


def _result(spec, **fields):
    return getattr(Showcase, spec + "_result")(**fields)


def _lying_list(request):
    """A shapes reply whose list claims 100 million structs in 20 bytes."""
    body = b"\x0f\x00\x00" + b"\x0c" + struct.pack("!i", 100_000_000) + b"\x00" * 8
    message = (
        struct.pack("!ii", -0x7FFF0000 | 2, len(request.name)) + request.name + struct.pack("!i", request.seqid) + body
    )
    return struct.pack("!I", len(message)) + message


HOSTILE = {
    "wrong sequence id": (lambda r: r.reply(_result("shapes", success=[]), seqid=r.seqid + 1), "sequence id"),
    "wrong method": (lambda r: r.reply(_result("shapes", success=[]), name=b"recorded"), "method"),
    "a call, not a reply": (lambda r: r.reply(_result("shapes", success=[]), mtype=1), "message type"),
    "garbage": (lambda r: b"\x00\x00\x00\x10" + b"\xde\xad\xbe\xef" * 4, "scan"),
    "a lying frame length": (lambda r: b"\x7f\xff\xff\xff" + b"\x80\x01", "limit"),
    "a lying list length": (_lying_list, "scan|truncated"),
    "two replies": (lambda r: r.reply(_result("shapes", success=[])) * 2, "more than one reply"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_reply_that_is_not_the_calls_fails_it_and_discards_the_connection(case):
    make, error = HOSTILE[case]
    good = _result("shapes", success=[showcase_thrift.Shape(name="ok")])

    def respond(request):
        return make(request) if request.number == 0 else request.reply(good)

    with FakeServer(respond) as fake:

        async def main():
            async with dracula.make_aio_client(
                Showcase, ("127.0.0.1", fake.port), transport="framed", max_frame_size=1 << 20
            ) as client:
                started = time.monotonic()
                with pytest.raises(BadReply, match=error):
                    await client.shapes(1)
                assert time.monotonic() - started < 1.0
                assert [s.name for s in await client.shapes(1)] == ["ok"]

        run(main())
        assert fake.connections == 2


def test_an_exception_message_is_raised_as_the_servers_application_exception():
    def respond(request):
        return request.reply(TApplicationException(TApplicationException.UNKNOWN_METHOD, "no such"), mtype=EXCEPTION)

    with FakeServer(respond) as fake:

        async def main():
            async with dracula.make_aio_client(Showcase, ("127.0.0.1", fake.port), transport="framed") as client:
                with pytest.raises(TApplicationException, match="no such") as e:
                    await client.add(1, 2)
                assert e.value.type == TApplicationException.UNKNOWN_METHOD

        run(main())
        assert fake.connections == 1  # an answer the server meant: the connection is kept


def test_make_aio_client_returns_at_once_and_refuses_unknown_methods_and_options():
    client = dracula.make_aio_client(Showcase, ["127.0.0.1:1", ("127.0.0.2", 2)])
    with pytest.raises(AttributeError):
        getattr(client, "no_such_method")  # noqa: B009 - the attribute lookup is the test
    with pytest.raises(TypeError):
        dracula.make_aio_client(Showcase, "127.0.0.1:1", no_such_option=1)
    with pytest.raises(ValueError):
        dracula.make_aio_client(Showcase, "127.0.0.1:1", transport="http")


def test_multiplexed_services_are_called_by_their_names():
    from examples.pingpong import PingHandler

    from .helpers import pingpong_thrift, running_services

    services = [("PingService", pingpong_thrift.PingService, PingHandler()), ("Showcase", Showcase, ShowcaseHandler())]
    with running_services(services) as server:

        async def main():
            async with dracula.make_aio_client(
                Showcase, ("127.0.0.1", server.port), service_name="Showcase", transport="framed"
            ) as client:
                assert await client.add(1, 2) == 3
            async with dracula.make_aio_client(
                pingpong_thrift.PingService, ("127.0.0.1", server.port), service_name="PingService"
            ) as ping:
                assert await ping.ping() == "pong"

        run(main())
