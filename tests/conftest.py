import pytest

from examples.showcase import ShowcaseHandler

from .helpers import BACKENDS, running, showcase_thrift


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def showcase_handler():
    return ShowcaseHandler()


@pytest.fixture
def showcase_server(backend, showcase_handler):
    with running(showcase_thrift.Showcase, showcase_handler, backend=backend) as server:
        yield server
