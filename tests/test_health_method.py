"""--health-method (#21): a health check on the serving port, for Envoy's Thrift health checker
and fb303's getStatus callers, without touching the served IDL. A thriftpy2 client of a
one-method IDL calls it: ALIVE (2) while healthy; LOADSHEDDING while the server drains
(--drain-delay) or sheds hard (--unhealthy-when-shedding), as /healthz says; both backends."""

from __future__ import annotations

import io
import logging

import pytest
import thriftpy2
from thriftpy2.rpc import make_client
from thriftpy2.thrift import TApplicationException

import dracula
from dracula.config import ConfigError
from dracula.wire.errors import AppError
from examples.showcase import ShowcaseHandler

from .helpers import Background, running, showcase_thrift, wait_until
from .test_drain_header import HeldLookup

health_thrift = thriftpy2.load_fp(io.StringIO("service Health { i32 health() }"), "health_thrift")
ALIVE = 2


def health_client(server):
    return make_client(health_thrift.Health, "127.0.0.1", server.port, timeout=10_000)


def failure(call) -> TApplicationException:
    with pytest.raises(TApplicationException) as raised:
        call()
    return raised.value


def test_healthy_then_draining_while_still_serving(backend, caplog):
    with running(
        showcase_thrift.Showcase,
        ShowcaseHandler(),
        backend=backend,
        health_method="health",
        drain_delay=30.0,
        access_log=True,
    ) as server:
        check, client = health_client(server), dracula.testing.client_of(server)
        try:
            with caplog.at_level(logging.INFO, logger="dracula.access"):
                assert check.health() == ALIVE
            assert not [r for r in caplog.records if "health" in r.getMessage()]  # checks are not logged
            server.close()  # the drain delay: still serving, no longer healthy
            error = failure(check.health)
            assert error.type == AppError.LOADSHEDDING and "draining" in error.message
            assert client.add(1, 2) == 3
        finally:
            check.close()
            client.close()


def test_unhealthy_while_shedding_hard(backend):
    handler = HeldLookup()
    with running(
        showcase_thrift.Showcase,
        handler,
        backend=backend,
        health_method="health",
        max_requests=1,
        unhealthy_when_shedding=True,
    ) as server:
        check, busy, client = (
            health_client(server),
            dracula.testing.client_of(server),
            dracula.testing.client_of(server),
        )
        try:
            assert check.health() == ALIVE  # a check is never counted in flight, nor shed
            held = Background(busy.lookup, "k")
            assert handler.entered.wait(10)
            for _ in range(3):
                assert failure(lambda: client.add(1, 1)).type == AppError.LOADSHEDDING
            error = failure(check.health)
            assert error.type == AppError.LOADSHEDDING and "shedding" in error.message
            handler.release.set()
            assert held.result(10) == "k"
            # Healthy again once the calls of the last two one-second windows are mostly served.
            wait_until(lambda: client.add(1, 1) == 2 and _healthy(check), timeout=10, interval=0.05)
        finally:
            handler.release.set()
            for c in (check, busy, client):
                c.close()


def _healthy(check) -> bool:
    try:
        return check.health() == ALIVE
    except TApplicationException:
        return False


def test_a_name_the_service_already_has_is_refused():
    with pytest.raises(ConfigError, match="--health-method add"):
        dracula.testing.make_server(showcase_thrift.Showcase, ShowcaseHandler(), health_method="add", port=0)


def test_not_a_method_name_is_refused():
    with pytest.raises(ConfigError, match="health_method"):
        dracula.Config(health_method="no such").validate()


def test_off_by_default_the_name_is_an_unknown_method():
    with running(showcase_thrift.Showcase, ShowcaseHandler()) as server:
        check = health_client(server)
        try:
            assert failure(check.health).type == AppError.UNKNOWN_METHOD
        finally:
            check.close()
