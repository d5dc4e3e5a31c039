"""pytest fixtures for testing your handlers over a real dracula server and real sockets.

Installed with dracula (the `pytest11` entry point `dracula.testing`), so any test may ask for:

- `dracula_server(service, handler, backend="uv", **options)`: a running Server on a free port
  of 127.0.0.1 (in a thread of the test process), stopped, drained, at the test's end;
- `dracula_client(server, protocol="binary", transport="buffered")`: a thriftpy2 client of
  that server's first service (or `service="Name"`: multiplexed), closed at the test's end.

The only module of dracula that imports pytest. Without the entry point (dracula not installed)
load it with `-p dracula.testing` or `pytest_plugins = ["dracula.testing"]`.

PYTEST_DONT_REWRITE: it has no asserts, and test helpers may import it before pytest loads it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import thriftpy2.rpc
from thriftpy2.protocol import TCompactProtocolFactory, TCyBinaryProtocolFactory, TMultiplexedProtocolFactory
from thriftpy2.thrift import TClient
from thriftpy2.transport import TCyBufferedTransportFactory, TCyFramedTransportFactory

from dracula import make_server
from dracula.server.lifecycle import Server
from dracula.typedefs import Handler, Services

PROTOCOLS = {"binary": TCyBinaryProtocolFactory, "compact": TCompactProtocolFactory}
TRANSPORTS = {"buffered": TCyBufferedTransportFactory, "framed": TCyFramedTransportFactory}
START_TIMEOUT = 10.0  # seconds for a server to start accepting
STOP_TIMEOUT = 30.0  # seconds for it to stop: past its default graceful_timeout


@contextlib.contextmanager
def serving_in_thread(server: Server) -> Iterator[Server]:
    """Run a built Server with serve() in a thread of this process; yields it once it accepts,
    closes it and waits for the drain on leaving."""
    thread = threading.Thread(target=server.serve, name="test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started.wait(0.05):
        if not thread.is_alive() or time.monotonic() > deadline:
            server.close()
            thread.join(STOP_TIMEOUT)
            raise RuntimeError("the dracula server did not start (its log says why)")
    try:
        yield server
    finally:
        server.close()
        thread.join(STOP_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError("the dracula server did not stop within %gs" % STOP_TIMEOUT)


def running(
    service: Services, handler: Handler = None, backend: str = "uv", **options: Any
) -> contextlib.AbstractContextManager[Server]:
    """A server for `service` and `handler` (or a {name: (service, handler)} mapping) on a free
    port of 127.0.0.1, in a thread of this process (see serving_in_thread)."""
    options = {"host": "127.0.0.1", "port": 0, **options}
    return serving_in_thread(make_server(service, handler, backend=backend, **options))


def client_of(
    server: Server,
    protocol: str = "binary",
    transport: str = "buffered",
    service: str | None = None,
    timeout: float = 10.0,
) -> TClient:
    """A thriftpy2 client of `server`: of its first service by plain names, or of `service` by
    `service:method` names (multiplexed). `timeout` is in seconds, per call."""
    if server.config.ssl_certfile:
        raise ValueError("a TLS server needs a client with its CA: thriftpy2.rpc.make_client(..., cafile=...)")
    proto_factory = PROTOCOLS[protocol]()
    idl_service = server.services[service or server.service_names[0]]
    if service is not None:
        proto_factory = TMultiplexedProtocolFactory(proto_factory, service)
    where: dict[str, Any]
    if server.port is None:
        where = {"unix_socket": server.host}
    else:
        host = "127.0.0.1" if server.host in ("0.0.0.0", "") else "::1" if server.host == "::" else server.host
        where = {"host": host, "port": server.port}
    return thriftpy2.rpc.make_client(
        idl_service,
        proto_factory=proto_factory,
        trans_factory=TRANSPORTS[transport](),
        timeout=int(timeout * 1000),
        **where,
    )


@pytest.fixture
def dracula_server() -> Iterator[Callable[..., Server]]:
    """dracula_server(service, handler, backend="uv", **options) -> a running Server (its
    `.port` is bound); every one started is stopped at teardown."""
    with contextlib.ExitStack() as stack:

        def start(service: Services, handler: Handler = None, backend: str = "uv", **options: Any) -> Server:
            return stack.enter_context(running(service, handler, backend=backend, **options))

        yield start


@pytest.fixture
def dracula_client() -> Iterator[Callable[..., TClient]]:
    """dracula_client(server, protocol="binary"|"compact", transport="buffered"|"framed",
    service=None, timeout=10.0) -> a thriftpy2 client; every one made is closed at teardown."""
    clients: list[TClient] = []

    def connect(
        server: Server,
        protocol: str = "binary",
        transport: str = "buffered",
        service: str | None = None,
        timeout: float = 10.0,
    ) -> TClient:
        client = client_of(server, protocol, transport, service, timeout)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()
