import contextlib
import logging

import pytest

from examples.pingpong import PingHandler
from examples.showcase import ShowcaseHandler

from .cli_server import CliServer
from .client_programs import build_cpp_client
from .helpers import (
    BACKENDS,
    pingpong_thrift,
    running,
    running_services,
    showcase_thrift,
)
from .ops_app import OpsApp

# dracula's own pytest plugin (dracula/testing.py): a no-op where the installed entry point
# (named like the module) has registered it already.
pytest_plugins = ["dracula.testing"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def showcase_handler():
    return ShowcaseHandler()


@pytest.fixture
def showcase_server(backend, showcase_handler, dracula_server):
    return dracula_server(showcase_thrift.Showcase, showcase_handler, backend=backend)


@pytest.fixture(scope="module")
def showcase_servers():
    """One Showcase server per backend, shared by a module's tests."""
    with contextlib.ExitStack() as stack:
        yield {
            backend: stack.enter_context(running(showcase_thrift.Showcase, ShowcaseHandler(), backend=backend))
            for backend in BACKENDS
        }


@pytest.fixture(scope="module")
def multiplexed_servers():
    """Per backend, one server for PingService and Showcase under those names (multiplexed)."""
    with contextlib.ExitStack() as stack:
        yield {
            backend: stack.enter_context(
                running_services(
                    [
                        ("PingService", pingpong_thrift.PingService, PingHandler()),
                        ("Showcase", showcase_thrift.Showcase, ShowcaseHandler()),
                    ],
                    backend,
                )
            )
            for backend in BACKENDS
        }


@pytest.fixture(scope="session")
def cpp_client(tmp_path_factory):
    """Path of the C++ client (tests/cpp/showcase_client.cpp), compiled once per session;
    skips (fails on CI) where the toolchain or library is missing."""
    return build_cpp_client(tmp_path_factory.mktemp("cpp"))


@pytest.fixture
def cli_server():
    """cli_server(*args, **options): a `dracula serve` CliServer, closed at teardown."""
    started = []

    def start(*args, **options):
        server = CliServer(*args, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def app(tmp_path):
    """The Ops app (tests/ops_app.py) in a directory of its own."""
    return OpsApp(tmp_path)


@pytest.fixture
def serve(app, cli_server):
    """serve(*extra_args, wait=True): `dracula serve` on the Ops app; its held calls are
    released, then it is stopped, at teardown."""

    def start(*extra, wait=True):
        return cli_server(*app.args, *extra, wait=wait)

    yield start
    app.release_all()


@pytest.fixture
def refused_log(caplog):
    """caplog, capturing the server's "dracula.refused" lines."""
    caplog.set_level(logging.WARNING, logger="dracula.refused")
    return caplog
