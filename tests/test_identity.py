"""Knowing who is calling: `dracula.current_call().peer_cert`, the `on_connect(peer, peer_cert)`
hook and examples/identity.py (AllowList, MethodsByIdentity), with certificates made for this
run by the openssl command, on both backends, from thriftpy2's and Apache Thrift's TLS clients.

The identities: billing (by its subject CN) may call Showcase.ping; ops (by its SAN URI only)
may call anything; intruder is signed by the same CA but listed nowhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import threading
import time

import pytest
import thrift.Thrift
import thrift.transport.TTransport
import thriftpy2.rpc
import thriftpy2.thrift
from thriftpy2.transport import TTransportException

import dracula
from examples.identity import AllowList, MethodsByIdentity, Policy, identities_of
from examples.showcase import ShowcaseHandler

from . import apache_client
from .cli_server import assert_one_line_error, run_cli
from .helpers import running, showcase_thrift, wait_until
from .ops_app import call
from .test_tls import OPENSSL, Certs, make_ca, make_leaf

CLIENTS = ("thriftpy2", "apache")
APP_ERRORS = (thriftpy2.thrift.TApplicationException, thrift.Thrift.TApplicationException)
REFUSALS = (TTransportException, thrift.transport.TTransport.TTransportException, ssl.SSLError, OSError, EOFError)
BILLING_CN = "billing.example.internal"
OPS_URI = "spiffe://example.internal/ops"
POLICY = {"identities": {BILLING_CN: ["Showcase.ping"], OPS_URI: ["*"]}}


@pytest.fixture(scope="session")
def ids(tmp_path_factory):
    """A CA; a server certificate for 127.0.0.1; client certificates billing, ops and intruder,
    all signed by it."""
    assert OPENSSL, "the openssl command is needed to make the test certificates"
    d = str(tmp_path_factory.mktemp("identity-certs"))
    make_ca(d, "ca", "identity test CA")
    make_leaf(d, "server", "127.0.0.1", "ca", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth")
    make_leaf(d, "billing", BILLING_CN, "ca", "extendedKeyUsage=clientAuth")
    make_leaf(d, "ops", "ops client", "ca", "subjectAltName=URI:%s\nextendedKeyUsage=clientAuth" % OPS_URI)
    make_leaf(d, "intruder", "intruder", "ca", "extendedKeyUsage=clientAuth")
    c = Certs()
    c.dir = d
    c.ca = os.path.join(d, "ca.pem")
    c.server_cert, c.server_key = os.path.join(d, "server.pem"), os.path.join(d, "server.key")
    return c


def context(ids, who=None):
    """A client TLS context trusting the test CA, presenting `who`'s certificate (None: none)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ids.ca)
    if who is not None:
        ctx.load_cert_chain(os.path.join(ids.dir, who + ".pem"), os.path.join(ids.dir, who + ".key"))
    return ctx


@contextlib.contextmanager
def showcase(kind, port, ctx):
    """A Showcase client over TLS: thriftpy2's make_client(ssl_context=) or Apache's TSSLSocket."""
    if kind == "thriftpy2":
        client = thriftpy2.rpc.make_client(showcase_thrift.Showcase, "127.0.0.1", port, ssl_context=ctx, timeout=10_000)
        try:
            yield client
        finally:
            client.close()
    else:
        with apache_client.Connection(port, ssl_context=ctx) as connection:
            yield connection.showcase()


class Recorder(ShowcaseHandler):
    """Records every call that reached a handler, with the certificate it saw."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def ping(self):
        self.seen.append(("ping", dracula.current_call().peer_cert))

    def add(self, a, b):
        self.seen.append(("add", dracula.current_call().peer_cert))
        return a + b


class Witness:
    """Middleware that records what `before` and `after` saw of each call."""

    def __init__(self):
        self.before_certs = []
        self.outcomes = []

    def before(self, call):
        self.before_certs.append(call.peer_cert)

    def after(self, call, outcome, seconds):
        self.outcomes.append((call.method, outcome))


class CountingHook:
    """An on_connect hook around another verdict: counts and records what it was asked."""

    def __init__(self, verdict):
        self.verdict = verdict
        self.asked = []
        self.lock = threading.Lock()

    def __call__(self, peer, peer_cert):
        with self.lock:
            self.asked.append((peer, peer_cert))
        return self.verdict(peer, peer_cert)


def identity_server(ids, backend, handler, middleware=(), **options):
    """Showcase over TLS, client certificates required (signed by the test CA)."""
    return running(
        showcase_thrift.Showcase,
        handler,
        backend=backend,
        ssl_certfile=ids.server_cert,
        ssl_keyfile=ids.server_key,
        ssl_ca_certs=ids.ca,
        middleware=list(middleware),
        **options,
    )


def refused(fn, timeout=8.0):
    """fn() fails as a refused connection does (alert, reset or close), promptly."""
    started = time.monotonic()
    with pytest.raises(REFUSALS) as info:
        fn()
    assert time.monotonic() - started < timeout, "the refusal took as long as the client's time-out"
    return info.value


def call_ping(kind, port, ctx):
    with showcase(kind, port, ctx) as client:
        return client.ping()


def subject_cn(peer_cert):
    return [value for rdn in peer_cert["subject"] for key, value in rdn if key == "commonName"]


def refusal_lines(caplog):
    return [r.getMessage() for r in list(caplog.records) if r.name == "dracula.refused"]


# -- peer_cert --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CLIENTS)
def test_an_allowed_identity_is_served_and_its_handler_sees_the_certificate(ids, backend, kind):
    handler, witness = Recorder(), Witness()
    middleware = [witness, MethodsByIdentity(Policy(**POLICY))]
    with identity_server(ids, backend, handler, middleware) as server:
        with showcase(kind, server.port, context(ids, "billing")) as client:
            assert client.ping() is None
            assert client.ping() is None
        with showcase(kind, server.port, context(ids, "ops")) as client:  # allowed by its SAN URI
            assert client.add(2, 3) == 5
    (_, first), (_, second), (_, by_san) = handler.seen
    assert subject_cn(first) == [BILLING_CN] and first["issuer"] == ((("commonName", "identity test CA"),),)
    assert second is first, "read once per connection, not per call"
    assert ("URI", OPS_URI) in by_san["subjectAltName"] and subject_cn(by_san) == ["ops client"]
    assert witness.before_certs == [first, first, by_san]  # middleware sees it too
    assert witness.outcomes == [("ping", "ok"), ("ping", "ok"), ("add", "ok")]


@pytest.mark.parametrize("kind", CLIENTS)
def test_an_unknown_identity_gets_an_application_exception_and_no_handler_runs(ids, backend, kind):
    handler, witness = Recorder(), Witness()
    with identity_server(ids, backend, handler, [witness, MethodsByIdentity(Policy(**POLICY))]) as server:
        with showcase(kind, server.port, context(ids, "intruder")) as client:
            with pytest.raises(APP_ERRORS) as info:
                client.ping()
            assert "intruder may not call Showcase.ping" in info.value.message
            # The connection stays open: a known identity's method not listed is refused too.
            with pytest.raises(APP_ERRORS):
                client.add(1, 2)
        with showcase(kind, server.port, context(ids, "billing")) as client:
            with pytest.raises(APP_ERRORS) as info:
                client.add(1, 2)  # billing may call ping only
            assert "%s may not call Showcase.add" % BILLING_CN in info.value.message
            assert client.ping() is None
    assert [method for method, _ in handler.seen] == ["ping"], "a refused call reached its handler"
    assert witness.outcomes == [("ping", "error"), ("add", "error"), ("add", "error"), ("ping", "ok")]


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_client_without_a_certificate_is_refused_at_the_handshake(ids, backend, kind):
    handler, hook = Recorder(), CountingHook(lambda peer, cert: True)
    with identity_server(ids, backend, handler, on_connect=hook) as server:
        refused(lambda: call_ping(kind, server.port, context(ids)))
        assert call_ping(kind, server.port, context(ids, "billing")) is None
    assert len(handler.seen) == 1
    assert [subject_cn(cert) for _, cert in hook.asked] == [[BILLING_CN]], "on_connect runs after the handshake"


def test_peer_cert_is_none_without_tls_and_without_a_client_certificate(ids, backend):
    handler = Recorder()
    hook = CountingHook(lambda peer, cert: True)
    with running(showcase_thrift.Showcase, handler, backend=backend, on_connect=hook) as server:
        client = thriftpy2.rpc.make_client(showcase_thrift.Showcase, "127.0.0.1", server.port, timeout=10_000)
        try:
            client.ping()
        finally:
            client.close()
    with running(
        showcase_thrift.Showcase,
        handler,
        backend=backend,
        ssl_certfile=ids.server_cert,
        ssl_keyfile=ids.server_key,
        on_connect=hook,
    ) as server:  # TLS, but no client certificate asked for
        assert call_ping("thriftpy2", server.port, context(ids)) is None
    assert handler.seen == [("ping", None), ("ping", None)]
    assert [cert for _, cert in hook.asked] == [None, None]
    assert all(peer[0] == "127.0.0.1" for peer, _ in hook.asked)


# -- on_connect -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CLIENTS)
def test_on_connect_refusing_closes_the_connection_before_any_call(ids, backend, kind, refused_log):
    handler, witness = Recorder(), Witness()
    hook = CountingHook(AllowList(Policy(**POLICY)))
    with identity_server(ids, backend, handler, [witness], on_connect=hook) as server:
        refused(lambda: call_ping(kind, server.port, context(ids, "intruder")))
        # Closed without reading: a client that sends nothing sees the close all the same.
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
            context(ids, "intruder").wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            contextlib.suppress(OSError),  # a reset says it as well as an end of file
        ):
            assert tls.recv(1) == b""
        assert call_ping(kind, server.port, context(ids, "billing")) is None
        assert call_ping(kind, server.port, context(ids, "ops")) is None
        expected = "refused by on_connect for CN=intruder (closing the connection)"
        assert wait_until(lambda: sum(expected in line for line in refusal_lines(refused_log)) == 2, 5), refusal_lines(
            refused_log
        )
    assert [subject_cn(cert) for _, cert in hook.asked] == [["intruder"], ["intruder"], [BILLING_CN], ["ops client"]]
    assert witness.outcomes == [("ping", "ok"), ("ping", "ok")], "a call of a refused connection was read"
    assert len(handler.seen) == 2


def test_on_connect_is_asked_once_per_connection(ids, backend):
    hook = CountingHook(lambda peer, cert: None)  # None admits, as True does
    with (
        identity_server(ids, backend, Recorder(), on_connect=hook) as server,
        showcase("thriftpy2", server.port, context(ids, "billing")) as client,
    ):
        for _ in range(5):
            client.ping()
    assert len(hook.asked) == 1


def test_on_connect_that_raises_refuses_with_one_line(ids, backend, refused_log):
    def broken(peer, peer_cert):
        raise LookupError("no such tenant")

    handler = Recorder()
    with identity_server(ids, backend, handler, on_connect=broken) as server:
        refused(lambda: call_ping("thriftpy2", server.port, context(ids, "billing")))
        expected = "on_connect raised LookupError: no such tenant (closing the connection)"
        assert wait_until(lambda: any(expected in line for line in refusal_lines(refused_log)), 5), refusal_lines(
            refused_log
        )
    assert handler.seen == []


def test_on_connect_allow_list_by_address_without_tls(backend, refused_log):
    handler = Recorder()
    elsewhere = AllowList(Policy({}, ["10.0.0.0/8", "::1/128"]))
    with running(showcase_thrift.Showcase, handler, backend=backend, on_connect=elsewhere) as server:
        refused(lambda: call(server.port, "ping", service=showcase_thrift.Showcase, timeout=10))
        assert wait_until(lambda: any("refused by on_connect" in line for line in refusal_lines(refused_log)), 5)
    here = AllowList(Policy({}, ["127.0.0.0/8"]))
    with running(showcase_thrift.Showcase, handler, backend=backend, on_connect=here) as server:
        assert call(server.port, "ping", service=showcase_thrift.Showcase) is None
    assert len(handler.seen) == 1


async def coroutine_hook(peer, peer_cert):
    return True


class CoroutineHook:
    async def __call__(self, peer, peer_cert):
        return True


@pytest.mark.parametrize(
    "hook, message",
    [
        ("not callable", "must be callable"),
        (object(), "must be callable"),
        # A coroutine cannot decide before the connection is read.
        (coroutine_hook, "must be a plain function"),
        (CoroutineHook(), "must be a plain function"),
    ],
)
def test_a_hook_that_cannot_be_one_is_refused_at_start(hook, message):
    with pytest.raises(TypeError, match=message):
        dracula.make_server(showcase_thrift.Showcase, Recorder(), port=0, on_connect=hook)


# -- from the command line --------------------------------------------------------------------------


def test_on_connect_and_identity_middleware_from_the_command_line(ids, app, cli_server, tmp_path):
    policy = tmp_path / "identities.json"
    policy.write_text(json.dumps({"identities": {BILLING_CN: ["echo"], OPS_URI: ["*"]}}))
    served = cli_server(
        *app.args,
        "--port",
        "0",
        "--ssl-certfile",
        ids.server_cert,
        "--ssl-keyfile",
        ids.server_key,
        "--ssl-ca-certs",
        ids.ca,
        "--on-connect",
        "examples.identity:AllowList",
        "--middleware",
        "examples.identity:MethodsByIdentity",
        env=dict(os.environ, IDENTITY_POLICY=str(policy)),
    )
    assert call(served.port, "echo", "hello", ssl_context=context(ids, "billing"), timeout=10) == "hello"
    with pytest.raises(thriftpy2.thrift.TApplicationException, match=r"may not call Ops\.version"):
        call(served.port, "version", ssl_context=context(ids, "billing"), timeout=10)
    assert call(served.port, "version", ssl_context=context(ids, "ops"), timeout=10) == "v1"
    refused(lambda: call(served.port, "echo", "hi", ssl_context=context(ids, "intruder"), timeout=10))
    served.wait_for(r"refused 127\.0\.0\.1:\d+: refused by on_connect for CN=intruder")


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("examples.identity:ANY_METHOD", "is not callable"),
        ("examples.identity:nothing_here", "has no attribute"),
        ("no_such_module_here:hook", "cannot import on_connect module"),
    ],
)
def test_a_bad_on_connect_is_one_line_and_exit_2(spec, fragment):
    result = run_cli(
        "serve", "idl/pingpong.thrift:PingService", "examples.pingpong:PingHandler", "--port", "0", "--on-connect", spec
    )
    assert_one_line_error(result, fragment)


def test_identities_of_a_certificate():
    cert = {
        "subject": ((("organizationName", "Example"),), (("commonName", "svc"),)),
        "subjectAltName": (("DNS", "svc.internal"), ("URI", "spiffe://x/svc"), ("IP Address", "10.1.2.3")),
    }
    assert identities_of(cert) == ["svc", "svc.internal", "spiffe://x/svc", "10.1.2.3"]
    assert identities_of(None) == [] and identities_of({}) == []
