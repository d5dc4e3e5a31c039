"""dracula.current_call() end to end, on both backends: plain, `async def` and @dracula.blocking
handlers each see their own call (service, method, peer, headers) under concurrency, the
deadline fbthrift's `client_timeout` header sets, and what happens to calls that outlive it.
THeader calls come from Apache Thrift's THeaderProtocol; plain ones from its binary protocol.
"""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from thrift.Thrift import TApplicationException

import dracula

from .callinfo_app import (
    POOL,
    TIMEOUT,
    CallInfoHandler,
    Client,
    context_thrift,
)
from .helpers import Background, running, wait_until


@pytest.fixture
def handler():
    return CallInfoHandler()


@pytest.fixture
def serve(backend, handler):
    """serve(**options) -> connect(header=True): a server for `handler`, and clients of it."""
    with contextlib.ExitStack() as stack:

        def start(**options):
            # A handler timeout sends @blocking calls to the pool on the thread backend too.
            options = {"blocking_threads": POOL, "handler_timeout": 30, **options}
            server = stack.enter_context(running(context_thrift.CallInfo, handler, backend=backend, **options))

            def connect(header=True):
                client = Client(server.port, header)
                stack.callback(client.close)
                return client

            return connect

        yield start


@pytest.fixture
def clients(serve):
    return serve()


# -- who is calling -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["plain", "coro", "pooled"])
def test_each_kind_of_handler_sees_its_call(clients, method):
    client = clients()
    seen = client.call(method, "t1", {"x-tag": "h1"})
    assert seen == {
        "service": "CallInfo",
        "method": method,
        "arg": "t1",
        "header": "h1",
        "peer_port": client.port,
        "deadline": None,
    }
    assert client.proto.get_headers().get(b"seen-tag") == b"h1"


def test_concurrent_calls_each_see_their_own(clients, handler):
    handler.meet = True  # every pooled call waits until POOL of them are in handlers at once
    rounds = 6

    def session(n, client):
        for r in range(rounds):
            for method in ("plain", "coro", "pooled"):
                tag = "c%d-r%d-%s" % (n, r, method)
                seen = client.call(method, tag, {"x-tag": tag})
                assert seen["arg"] == seen["header"] == tag, seen
                assert (seen["method"], seen["peer_port"]) == (method, client.port), seen
                assert client.proto.get_headers().get(b"seen-tag") == tag.encode()
        return n

    sessions = [Background(session, n, clients()) for n in range(POOL)]
    assert sorted(s.result(60) for s in sessions) == list(range(POOL))
    assert handler.pooled_runs == POOL * rounds


def test_current_call_outside_a_call_raises_lookup_error():
    with pytest.raises(LookupError):
        dracula.current_call()
    seen = []  # nor in a thread of its own
    thread = threading.Thread(target=lambda: seen.append(_lookup_error()))
    thread.start()
    thread.join(10)
    assert seen == [True]


def _lookup_error() -> bool:
    try:
        dracula.current_call()
    except LookupError:
        return True
    return False


def test_response_headers_on_a_plain_binary_call_are_ignored(clients):
    client = clients(header=False)
    for method in ("plain", "coro", "pooled"):
        seen = client.call(method, "p")
        assert seen["method"] == method and seen["header"] is None and seen["deadline"] is None
    assert client.call("plain", "again")["arg"] == "again"  # the connection serves on


# -- deadlines ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["plain", "coro", "pooled"])
def test_client_timeout_sets_the_deadline(clients, method):
    client = clients()
    assert client.call(method, "none")["deadline"] is None
    before = time.monotonic()  # the server runs in this process: the same monotonic clock
    seen = client.call(method, "five", {"client_timeout": "5000"})
    after = time.monotonic()
    assert before + 5.0 <= seen["deadline"] <= after + 5.0
    assert client.call(method, "next")["deadline"] is None  # headers hold for one call
    # Past a float, or past int()'s digit limit: no deadline, and the call is still answered.
    for malformed in ("0", "-5", "soon", "", "9" * 400, "9" * 5000):
        assert client.call(method, "bad", {"client_timeout": malformed})["deadline"] is None


def test_blocking_call_whose_deadline_passes_in_the_queue_never_runs(serve, handler):
    clients = serve(blocking_threads=1)
    holder = Background(clients().call, "hold")
    assert handler.entered.wait(15), "hold() did not start"
    try:
        # The one pool thread is busy: this call waits in the queue past its 100 ms deadline.
        with pytest.raises(TApplicationException) as caught:
            clients().call("pooled", "late", {"client_timeout": "100"})
        assert caught.value.type == TIMEOUT, (caught.value.type, caught.value.message)
        assert not holder.done()
    finally:
        handler.release.set()
    assert holder.result() == "released"
    # The pool runs its queue in order: once this call ran, the late one was dropped.
    assert clients().call("pooled", "after")["arg"] == "after"
    assert handler.pooled_runs == 1


def test_deadline_shorter_than_the_handler_timeout_ends_a_slow_coroutine(clients, handler):
    client = clients()
    with pytest.raises(TApplicationException) as caught:
        client.call("stall", headers={"client_timeout": "200"})  # the handler timeout is 30 s
    assert caught.value.type == TIMEOUT, (caught.value.type, caught.value.message)
    assert wait_until(lambda: handler.stalls_cancelled == 1)
    assert client.call("plain", "still here")["arg"] == "still here"
