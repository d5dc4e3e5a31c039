"""A C++ client (tests/cpp/showcase_client.cpp, Apache Thrift's C++ library) against dracula on
both backends: binary/compact × buffered/framed, plain and multiplexed; then THeader
(THeaderProtocol, binary and compact inside) with a request header and the reply's headers read
back, plain and multiplexed. Not zlib: libthrift 0.17's THeaderTransport overflows its receive
buffer inflating a zlib reply (see tests/cpp/showcase_client.cpp).

The client is compiled once per session into a temporary directory (the `cpp_client` fixture in
tests/conftest.py, built by client_programs.build_cpp_client). The test skips, saying
why, only where g++ or Apache Thrift's C++ headers/library are missing (Debian: `apt-get
install g++ libthrift-dev libboost-dev`; libthrift-dev's headers include boost headers but the
package does not depend on libboost-dev; THeader lives in its libthriftz); with CI=true it fails
instead.
"""

from __future__ import annotations

import contextlib

import pytest

import dracula
from examples.pingpong import PingHandler
from examples.showcase import ShowcaseHandler

from .client_programs import expected_lines, run_client
from .helpers import BACKENDS, pingpong_thrift, running, running_services, showcase_thrift as t

EXPECTED = expected_lines("cpp")
# The client sends x-tag=cpp with every THeader call; HeaderEchoShowcase answers add with it.
EXPECTED_HEADER = [*EXPECTED, "reply_headers seen-x-tag=cpp"]


class HeaderEchoShowcase(ShowcaseHandler):
    """Showcase whose add puts each request header back on its reply as seen-<key>."""

    def add(self, a, b):
        call = dracula.current_call()
        for key, value in call.headers.items():
            call.response_headers["seen-" + key] = value
        return super().add(a, b)


def run_cpp(binary, port, protocol, transport, *services):
    """The client's stdout lines; `services` are the multiplexed names, none for a plain server."""
    return run_client([binary, "127.0.0.1", str(port), protocol, transport, *services])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("transport", ["buffered", "framed"])
@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_cpp_client(cpp_client, showcase_servers, protocol, transport, backend):
    assert run_cpp(cpp_client, showcase_servers[backend].port, protocol, transport) == EXPECTED


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("protocol,transport", [("binary", "framed"), ("compact", "buffered")])
def test_cpp_client_multiplexed(cpp_client, protocol, transport, backend):
    # Generated C++ clients check that a reply carries the bare method name (Apache's
    # TMultiplexedProcessor answers that way): the client here checks it on every reply.
    services = [("PingService", pingpong_thrift.PingService, PingHandler()), ("sc", t.Showcase, ShowcaseHandler())]
    with running_services(services, backend) as server:
        lines = run_cpp(cpp_client, server.port, protocol, transport, "sc", "PingService")
    assert lines == [*EXPECTED, "ping pong"]


@pytest.fixture(scope="module")
def header_echo_servers():
    """Per backend: HeaderEchoShowcase alone, and with PingService, both multiplexed as "sc"."""
    with contextlib.ExitStack() as stack:
        yield {
            backend: (
                stack.enter_context(running(t.Showcase, HeaderEchoShowcase(), backend=backend)),
                stack.enter_context(
                    running_services(
                        [
                            ("PingService", pingpong_thrift.PingService, PingHandler()),
                            ("sc", t.Showcase, HeaderEchoShowcase()),
                        ],
                        backend,
                    )
                ),
            )
            for backend in BACKENDS
        }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_cpp_client_theader(cpp_client, header_echo_servers, protocol, backend):
    plain, _ = header_echo_servers[backend]
    assert run_cpp(cpp_client, plain.port, protocol, "header") == EXPECTED_HEADER


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_cpp_client_theader_multiplexed(cpp_client, header_echo_servers, protocol, backend):
    _, multiplexed = header_echo_servers[backend]
    lines = run_cpp(cpp_client, multiplexed.port, protocol, "header", "sc", "PingService")
    assert lines == [*EXPECTED_HEADER, "ping pong"]
