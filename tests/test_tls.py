"""TLS: --ssl-certfile/--ssl-keyfile (server certificate) and --ssl-ca-certs (client certificates
required), served to thriftpy2's SSL client on both backends, in-process and as `dracula serve`.

Certificates (a CA, a server certificate for 127.0.0.1/localhost and a client certificate, both
signed by the CA) are made once per session with the openssl command.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import ssl
import subprocess
import time

import pytest
import thriftpy2.rpc
from thriftpy2.transport import TTransportException

from .cli_server import assert_one_line_error, run_cli
from .helpers import running, wait_until
from .ops_app import LocalOps, call, ops_thrift

OPENSSL = shutil.which("openssl")


class Certs:
    """Paths of the PEM files made by the `certs` fixture."""


def openssl(*args, cwd):
    result = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, "openssl %s failed:\n%s" % (" ".join(args), result.stderr)


def make_ca(d, name, cn):
    openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        name + ".key",
        "-out",
        name + ".pem",
        "-days",
        "2",
        "-subj",
        "/CN=" + cn,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )


def make_leaf(d, name, cn, ca, extensions):
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write(
            "basicConstraints=CA:FALSE\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n" + extensions + "\n"
        )
    openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        name + ".key",
        "-out",
        name + ".csr",
        "-subj",
        "/CN=" + cn,
        cwd=d,
    )
    openssl(
        "x509",
        "-req",
        "-in",
        name + ".csr",
        "-CA",
        ca + ".pem",
        "-CAkey",
        ca + ".key",
        "-set_serial",
        str(int.from_bytes(os.urandom(8), "big")),
        "-days",
        "2",
        "-extfile",
        name + ".ext",
        "-out",
        name + ".pem",
        cwd=d,
    )


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """A CA; a server certificate for 127.0.0.1/localhost and a client certificate signed by it;
    a client certificate signed by another CA; a key that belongs to no certificate."""
    assert OPENSSL, "the openssl command is needed to make the test certificates"
    d = str(tmp_path_factory.mktemp("certs"))
    make_ca(d, "ca", "dracula test CA")
    make_leaf(d, "server", "127.0.0.1", "ca", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth")
    make_leaf(d, "client", "dracula test client", "ca", "extendedKeyUsage=clientAuth")
    make_ca(d, "other_ca", "another CA")
    make_leaf(d, "stranger", "stranger", "other_ca", "extendedKeyUsage=clientAuth")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", "other.key", cwd=d)
    c = Certs()
    c.ca = os.path.join(d, "ca.pem")
    c.server_cert, c.server_key = os.path.join(d, "server.pem"), os.path.join(d, "server.key")
    c.client_cert, c.client_key = os.path.join(d, "client.pem"), os.path.join(d, "client.key")
    c.stranger_cert, c.stranger_key = os.path.join(d, "stranger.pem"), os.path.join(d, "stranger.key")
    c.other_key = os.path.join(d, "other.key")
    return c


def client_context(certs, with_cert=False):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=certs.ca)
    if with_cert:
        ctx.load_cert_chain(certs.client_cert, certs.client_key)
    return ctx


def tls_call(port, certs, method="echo", *args, with_cert=False, timeout=10.0):
    return call(port, method, *args, ssl_context=client_context(certs, with_cert), timeout=timeout)


def tls_server(backend, certs, **options):
    return running(
        ops_thrift.Ops,
        LocalOps(),
        backend=backend,
        ssl_certfile=certs.server_cert,
        ssl_keyfile=certs.server_key,
        **options,
    )


# -- serving TLS ---------------------------------------------------------------------------------


def test_tls_served_to_thriftpy2_ssl_client(backend, certs):
    with tls_server(backend, certs) as server:
        assert tls_call(server.port, certs, "echo", "over tls") == "over tls"
        # cafile= (thriftpy2 builds the context) works as well, on a kept-open connection.
        client = thriftpy2.rpc.make_client(ops_thrift.Ops, "127.0.0.1", server.port, cafile=certs.ca, timeout=10_000)
        try:
            for i in range(3):
                assert client.echo("call %d" % i) == "call %d" % i
            with pytest.raises(ops_thrift.Oops):
                client.echo("oops")
            assert client.version() == "local"
        finally:
            client.close()


def test_tls_by_hostname_localhost(certs):
    with tls_server("uv", certs) as server:
        client = thriftpy2.rpc.make_client(
            ops_thrift.Ops, "localhost", server.port, ssl_context=client_context(certs), timeout=10_000
        )
        try:
            assert client.echo("by name") == "by name"
        finally:
            client.close()


def test_tls_from_the_command_line(serve, certs):
    served = serve("--port", "0", "--ssl-certfile", certs.server_cert, "--ssl-keyfile", certs.server_key)
    assert tls_call(served.port, certs, "echo", "cli") == "cli"
    assert tls_call(served.port, certs, "echo", "again") == "again"
    served.signal(signal.SIGTERM)
    assert served.wait(20) == 0, served.output
    assert "Traceback" not in served.output, served.output


def test_tls_with_workers(serve, certs):
    served = serve(
        "--port", "0", "--workers", "2", "--ssl-certfile", certs.server_cert, "--ssl-keyfile", certs.server_key
    )
    served.wait_workers(2)
    for i in range(4):
        assert tls_call(served.port, certs, "echo", "w%d" % i) == "w%d" % i


# -- client certificates -------------------------------------------------------------------------


def refused(fn):
    """The call fails (handshake alert, reset or close), promptly: not by the client's time-out."""
    started = time.monotonic()
    with pytest.raises((TTransportException, ssl.SSLError, OSError)) as info:
        fn()
    error = info.value
    assert not (isinstance(error, TTransportException) and error.type == TTransportException.TIMED_OUT), error
    assert time.monotonic() - started < 8, "refusal took as long as the client's time-out"
    return error


def test_ca_certs_refuse_a_client_without_certificate(backend, certs):
    with tls_server(backend, certs, ssl_ca_certs=certs.ca) as server:
        refused(lambda: tls_call(server.port, certs, "echo", "anonymous", timeout=10))
        assert tls_call(server.port, certs, "echo", "known", with_cert=True) == "known"
        refused(lambda: tls_call(server.port, certs, "echo", "anonymous again", timeout=10))
        assert tls_call(server.port, certs, "echo", "still known", with_cert=True) == "still known"


def test_ca_certs_refuse_a_certificate_from_another_ca(backend, certs):
    with tls_server(backend, certs, ssl_ca_certs=certs.ca) as server:
        ctx = client_context(certs)
        ctx.load_cert_chain(certs.stranger_cert, certs.stranger_key)
        refused(lambda: call(server.port, "echo", "stranger", ssl_context=ctx, timeout=10))
        assert tls_call(server.port, certs, "echo", "known", with_cert=True) == "known"


# -- the wrong client ----------------------------------------------------------------------------


def test_plaintext_client_on_tls_port_fails_cleanly_and_server_keeps_serving(backend, certs):
    with tls_server(backend, certs) as server:
        for _ in range(2):
            refused(lambda: call(server.port, "echo", "plaintext", timeout=10))
        assert tls_call(server.port, certs, "echo", "tls still works") == "tls still works"
        assert server.started.is_set() and not server.stopped.is_set()


def test_tls_client_on_plaintext_port_fails_cleanly(backend, certs):
    with running(ops_thrift.Ops, LocalOps(), backend=backend) as server:
        refused(lambda: tls_call(server.port, certs, "echo", "tls", timeout=10))
        assert call(server.port, "echo", "plain") == "plain"


# -- configuration errors -------------------------------------------------------------------------


def _bad_tls_args(certs, tmp_path):
    return {
        "missing certfile": ["--ssl-certfile", str(tmp_path / "no-such-cert.pem"), "--ssl-keyfile", certs.server_key],
        "missing keyfile": ["--ssl-certfile", certs.server_cert, "--ssl-keyfile", str(tmp_path / "no-such-key.pem")],
        "key does not match": ["--ssl-certfile", certs.server_cert, "--ssl-keyfile", certs.other_key],
        "missing ca file": [
            "--ssl-certfile",
            certs.server_cert,
            "--ssl-keyfile",
            certs.server_key,
            "--ssl-ca-certs",
            str(tmp_path / "no-such-ca.pem"),
        ],
        "keyfile without certfile": ["--ssl-keyfile", certs.server_key],
    }


@pytest.mark.parametrize(
    "case", ["missing certfile", "missing keyfile", "key does not match", "missing ca file", "keyfile without certfile"]
)
def test_bad_tls_files_exit_2_with_one_line(certs, tmp_path, case):
    args = _bad_tls_args(certs, tmp_path)[case]
    result = run_cli("serve", "idl/pingpong.thrift:PingService", "examples.pingpong:PingHandler", "--port", "0", *args)
    line = assert_one_line_error(result)
    assert "ssl" in line.lower() or "tls" in line.lower(), line
    for path in args[1::2]:
        if "no-such" in path:
            assert "no-such" in line or "No such file" in line, line


def test_failed_handshake_is_logged_as_a_refusal(backend, certs, caplog):
    """Like every refused connection, a failed TLS handshake gets a 'refused PEER: reason' line."""
    if backend == "uv":
        pytest.skip(
            "uvloop's TLS layer closes a failed handshake without telling the protocol or "
            "the exception handler (it logs only in asyncio debug mode): docs/production.md, TLS"
        )
    caplog.set_level(logging.INFO, logger="dracula")

    def refusal_logged():
        return any(
            r.name == "dracula.refused" and r.getMessage().startswith("refused 127.0.0.1:") and "TLS" in r.getMessage()
            for r in list(caplog.records)
        )

    with tls_server(backend, certs) as server:
        refused(lambda: call(server.port, "echo", "plaintext", timeout=10))
        assert tls_call(server.port, certs, "echo", "after") == "after"
        assert wait_until(refusal_logged, 3), [(r.name, r.getMessage()) for r in caplog.records]
