"""dracula.make_client: the blocking client, shared by threads, against real dracula servers
and the scripted one."""

from __future__ import annotations

import threading
import time

import pytest
from thriftpy2.thrift import TApplicationException

import dracula
from dracula.client import BadReply, CallTimeout, ConnectFailed
from examples.showcase import ShowcaseHandler

from .client_fakes import FakeServer
from .helpers import free_port, running, showcase_thrift, wait_until
from .test_client_aio import HOSTILE, WIRES, _result

Showcase = showcase_thrift.Showcase


@pytest.fixture(scope="module")
def server():
    with running(Showcase, ShowcaseHandler()) as s:
        yield s


@pytest.mark.parametrize("transport,protocol", WIRES)
def test_every_outcome_over_every_wire(server, transport, protocol):
    with dracula.make_client(Showcase, "127.0.0.1:%d" % server.port, transport=transport, protocol=protocol) as client:
        assert client.add(2, 40) == 42
        assert [s.name for s in client.shapes(2)] == ["shape-0", "shape-1"]
        assert client.ping() is None
        with pytest.raises(showcase_thrift.NotFound):
            client.lookup("missing")
        with pytest.raises(TApplicationException) as e:
            client.fail("boom")
        assert e.value.type == TApplicationException.INTERNAL_ERROR
        client.record("sync-" + transport + protocol)
        assert "sync-" + transport + protocol in client.recorded()


def test_threads_share_one_client_and_each_gets_its_own_replies(server):
    """8 threads, 4 connections at most: connections pass between threads, replies never do."""
    errors = []
    client = dracula.make_client(Showcase, ("127.0.0.1", server.port), max_connections=4)

    def work(n):
        try:
            for i in range(150):
                assert client.add(n, i * 10) == n + i * 10
                if i % 50 == 0:
                    assert client.sleep_async(n) == "slept %d ms" % n
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    client.close()
    assert not errors
    assert client._core.balancer.hosts[0].pool.stack.size <= 4


@pytest.mark.parametrize("transport", ["framed", "buffered"])
def test_after_a_timed_out_call_the_next_call_gets_its_own_reply(server, transport):
    """thriftpy2 #31 on the blocking client."""
    with dracula.make_client(Showcase, ("127.0.0.1", server.port), transport=transport, max_connections=1) as client:
        started = time.monotonic()
        with pytest.raises(CallTimeout):
            client.call("sleep_async", 400, timeout=0.1)
        assert time.monotonic() - started < 0.35
        assert client.add(2, 3) == 5


def test_a_connection_the_server_closed_while_idle_is_not_written_to():
    """The server answers and closes: each next call finds its pooled connection dead before
    writing, and takes a new one (no failure, no retry, no ejection)."""
    good = _result("add", success=7)
    with (
        FakeServer(lambda r: r.reply(good), close_after_reply=True) as fake,
        dracula.make_client(Showcase, ("127.0.0.1", fake.port), transport="framed", max_attempts=1) as client,
    ):
        for n in range(1, 4):
            assert client.add(3, 4) == 7
            assert wait_until(lambda n=n: fake.closed == n)  # the server closed it after replying
        assert fake.connections == 3
        assert client._core.budget.retried == 0


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_reply_that_is_not_the_calls_fails_it_and_discards_the_connection(case):
    make, error = HOSTILE[case]
    good = _result("shapes", success=[showcase_thrift.Shape(name="ok")])
    with FakeServer(lambda r: make(r) if r.number == 0 else r.reply(good)) as fake:
        with dracula.make_client(
            Showcase, ("127.0.0.1", fake.port), transport="framed", max_frame_size=1 << 20
        ) as client:
            with pytest.raises(BadReply, match=error):
                client.shapes(1)
            assert [s.name for s in client.shapes(1)] == ["ok"]
        assert fake.connections == 2


def test_a_refused_connection_fails_as_connect_failed():
    with dracula.make_client(Showcase, ("127.0.0.1", free_port())) as client, pytest.raises(ConnectFailed):
        client.add(1, 2)
