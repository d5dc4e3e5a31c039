"""thriftpy2's server API on dracula (#27): the examples of examples/thriftpy2_style/ (servers
written as thriftpy2's documentation writes them, importing from dracula, and their unchanged
thriftpy2 clients) run on both backends over real sockets; then each argument of thriftpy2's
make_server and make_aio_server, and processors, where the examples do not reach.

The harness runs an example server's own main() in a thread; it wraps the module's make_server
only to add the backend under test and to learn which server it built (to find its port and to
stop it), and sets the module's HOST/PORT-style constants (free ports, temporary paths)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest
import thriftpy2.contrib.aio.rpc
import thriftpy2.rpc
from thriftpy2.protocol import (
    TBinaryProtocolFactory,
    TCompactProtocolFactory,
    TCyBinaryProtocolFactory,
    TJSONProtocolFactory,
)
from thriftpy2.thrift import TMultiplexedProcessor, TProcessor
from thriftpy2.transport import TBufferedTransportFactory, TCyBufferedTransportFactory, TTransportException

import dracula
from examples.thriftpy2_style import (
    calc_client,
    calc_server,
    compact_client,
    compact_server,
    echo_client,
    echo_server,
    idle_server,
    ipv6_client,
    ipv6_server,
    mux_client,
    mux_server,
    ping_client,
    ping_server,
    sleep_client,
    sleep_server,
    tls_client,
    tls_server,
    uds_client,
    uds_server,
)

from .helpers import Background, serving, wait_until

pingpong_thrift = ping_server.pingpong_thrift
SAFETY_TIMEOUT = 10.0  # seconds: only so that a broken server fails the test instead of hanging it
FACTORY_LINE = "whatever the factories"  # in the one line that make_server logs about factories


class Pong:
    def ping(self):
        return "pong"


def dracula_server_of(built):
    """The dracula Server behind what an example's make_server or make_aio_server returned."""
    return built.server if isinstance(built, dracula.AsyncServer) else built


def stop(built):
    if isinstance(built, dracula.AsyncServer):
        built.loop.call_soon_threadsafe(built.loop.stop)  # how a thriftpy2 TAsyncServer is stopped
    else:
        built.close()


@contextlib.contextmanager
def serving_example(monkeypatch, module, backend="uv", **constants):
    """The example server `module`'s main() in a thread, on `backend`, its constants (PORT=0...)
    set; yields the server its make_server (or make_aio_server) built, once it accepts; stops it
    and checks that main() returned on leaving."""
    name = "make_aio_server" if hasattr(module, "make_aio_server") else "make_server"
    real = getattr(module, name)
    built = []

    def recording(*args, **kwargs):
        if name == "make_server":
            kwargs["backend"] = backend
        server = real(*args, **kwargs)
        built.append(server)
        return server

    monkeypatch.setattr(module, name, recording)
    for constant, value in constants.items():
        monkeypatch.setattr(module, constant, value)  # raises if the example has no such constant
    main = Background(module.main)
    wait_until(lambda: main.done() or (built and dracula_server_of(built[0]).started.is_set()))
    if main.done():
        main.result()
        raise AssertionError("%s.main() returned without serving" % module.__name__)
    assert built and dracula_server_of(built[0]).started.is_set(), "%s did not start" % module.__name__
    try:
        yield built[0]
    finally:
        stop(built[0])
        main.result()


def run_client(monkeypatch, module, capsys, **constants):
    """The example client `module`'s main(), its constants set; what it printed."""
    for constant, value in constants.items():
        monkeypatch.setattr(module, constant, value)
    result = module.main()
    if inspect.iscoroutine(result):
        asyncio.run(result)
    return capsys.readouterr().out


def refuses(port) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=SAFETY_TIMEOUT).close()
    except ConnectionRefusedError:
        return True
    return False


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def factory_lines(caplog):
    return [r for r in caplog.records if r.name == "dracula" and FACTORY_LINE in r.getMessage()]


# -- thriftpy2's examples, one import changed ----------------------------------------------------


def test_pingpong_example(backend, monkeypatch, capsys):
    with serving_example(monkeypatch, ping_server, backend, PORT=0) as server:
        out = run_client(monkeypatch, ping_client, capsys, PORT=server.port)
    assert out.splitlines()[-1] == "pong"
    assert "ping received" in out  # the handler's own print, from the server's thread


def test_calculator_example_with_thriftpy2s_cython_factories(backend, monkeypatch, capsys, caplog):
    caplog.set_level(logging.INFO, logger="dracula")
    with serving_example(monkeypatch, calc_server, backend, PORT=0) as server:
        out = run_client(monkeypatch, calc_client, capsys, PORT=server.port)
    assert "(6 * 7 - 2) / (3 + 5) = 5" in out
    assert "div(1, 0) raised DivideByZero: cannot divide 1 by zero" in out
    # Binary and buffered are what dracula answers binary, buffered clients with: nothing to say.
    assert factory_lines(caplog) == []


def test_oneway_example(backend, monkeypatch, capsys):
    printed = []

    def handler_woke():
        printed.append(capsys.readouterr().out)
        return "awake after 1 s" in "".join(printed)

    with serving_example(monkeypatch, sleep_server, backend, PORT=0) as server:
        printed.append(run_client(monkeypatch, sleep_client, capsys, PORT=server.port))
        assert "sent sleep(1); not waiting for it" in printed[0]
        assert wait_until(handler_woke), "".join(printed)


def test_asyncio_echo_example_runs_on_the_callers_loop(monkeypatch, capsys):
    with serving_example(monkeypatch, echo_server, PORT=0) as server:
        # It serves on the example's own loop, an asyncio one (made without loop=: a uvloop one).
        assert type(server.loop).__module__.startswith("asyncio"), type(server.loop)
        out = run_client(monkeypatch, echo_client, capsys, PORT=server.port)
        port = server.port
    assert out.splitlines()[-1] == "hello, dracula"
    assert "echo('hello, dracula')" in out
    # loop.stop() ended serve(): it drained, closed its socket, and main() closed the loop.
    assert server.closed and server.loop.is_closed()
    assert refuses(port)


def test_multiplexed_processors_example(backend, monkeypatch, capsys):
    with serving_example(monkeypatch, mux_server, backend, PORT=0) as server:
        assert server.service_names == ["ping", "calc"]  # as registered
        out = run_client(monkeypatch, mux_client, capsys, PORT=server.port)
    assert "ping: pong" in out
    assert "calc: 2 + 3 = 5" in out


def test_compact_framed_example_logs_its_one_line_and_serves_binary_too(backend, monkeypatch, capsys, caplog):
    caplog.set_level(logging.INFO, logger="dracula")
    with serving_example(monkeypatch, compact_server, backend, PORT=0) as server:
        assert run_client(monkeypatch, compact_client, capsys, PORT=server.port).splitlines()[-1] == "pong"
        # thriftpy2's server would refuse a binary, unframed client; dracula answers it.
        assert run_client(monkeypatch, ping_client, capsys, PORT=server.port).splitlines()[-1] == "pong"
    [line] = factory_lines(caplog)
    assert line.levelno == logging.INFO
    assert "proto_factory=TCompactProtocolFactory" in line.getMessage()
    assert "trans_factory=TCyFramedTransportFactory" in line.getMessage()


def test_unix_socket_example(backend, monkeypatch, capsys, tmp_path):
    path = str(tmp_path / "ping.sock")
    with serving_example(monkeypatch, uds_server, backend, UNIX_SOCKET=path) as server:
        assert server.port is None and server.config.uds == path
        out = run_client(monkeypatch, uds_client, capsys, UNIX_SOCKET=path)
    assert out.splitlines()[-1] == "pong"
    assert not os.path.exists(path)  # removed on exit


@pytest.fixture(scope="module")
def pem(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (the client's CA file) and server.pem: that
    certificate and its key in one file, as thriftpy2's certfile takes them."""
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command is needed to make the test certificate"
    d = tmp_path_factory.mktemp("pem")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        cwd=d,
        check=True,
        capture_output=True,
        timeout=60,
    )
    (d / "server.pem").write_bytes((d / "cert.pem").read_bytes() + (d / "key.pem").read_bytes())
    return {
        "certfile": str(d / "server.pem"),
        "keyfile": str(d / "key.pem"),
        "cafile": str(d / "cert.pem"),
        "cert_only": str(d / "cert.pem"),
    }


def test_certfile_example(backend, monkeypatch, capsys, pem):
    with serving_example(monkeypatch, tls_server, backend, PORT=0, CERTFILE=pem["certfile"]) as server:
        assert server.config.ssl_certfile == pem["certfile"]
        out = run_client(monkeypatch, tls_client, capsys, PORT=server.port, CAFILE=pem["cafile"])
        assert out.splitlines()[-1] == "pong"
        # In the clear, the client gets no answer: the server speaks TLS only.
        plain = thriftpy2.rpc.make_client(pingpong_thrift.PingService, "127.0.0.1", server.port, timeout=5000)
        try:
            with pytest.raises((TTransportException, OSError)):  # closed, or reset
                plain.ping()
        finally:
            plain.close()


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_ipv6_example(backend, monkeypatch, capsys):
    with serving_example(monkeypatch, ipv6_server, backend, PORT=0) as server:
        assert server.sock.family == socket.AF_INET6
        out = run_client(monkeypatch, ipv6_client, capsys, PORT=server.port)
    assert out.splitlines()[-1] == "pong"


def test_client_timeout_example_closes_an_idle_connection(backend, monkeypatch, capsys):
    with serving_example(monkeypatch, idle_server, backend, PORT=0, CLIENT_TIMEOUT=300) as server:
        assert server.config.idle_timeout == 0.3  # milliseconds, as thriftpy2 counts
        assert run_client(monkeypatch, ping_client, capsys, PORT=server.port).splitlines()[-1] == "pong"
        with socket.create_connection(("127.0.0.1", server.port), timeout=SAFETY_TIMEOUT) as idle:
            opened = time.monotonic()
            assert idle.recv(1) == b"", "the server wrote to an idle connection instead of closing it"
            waited = time.monotonic() - opened
    assert waited >= 0.25, "closed after %.3fs, before the client_timeout of 300 ms" % waited


# -- the asyncio server: serve() and close() as thriftpy2's --------------------------------------


def test_aio_serve_drains_and_returns_on_sigint():
    """In the main thread serve() handles SIGINT: it stops accepting, answers, and returns (a
    thriftpy2 TAsyncServer dies of KeyboardInterrupt there)."""
    server = dracula.make_aio_server(pingpong_thrift.PingService, Pong(), "127.0.0.1", 0)
    before = signal.getsignal(signal.SIGINT)

    def call_then_interrupt():
        assert server.server.started.wait(SAFETY_TIMEOUT)
        client = thriftpy2.rpc.make_client(
            pingpong_thrift.PingService, "127.0.0.1", server.port, timeout=int(SAFETY_TIMEOUT * 1000)
        )
        try:
            assert client.ping() == "pong"
        finally:
            client.close()
        os.kill(os.getpid(), signal.SIGINT)

    caller = Background(call_then_interrupt)
    try:
        server.serve()  # a new uvloop loop of its own: no loop= given
    except KeyboardInterrupt:
        pytest.fail("SIGINT reached the test: serve() installed no handler for it")
    caller.result()
    assert server.closed and server.server.stopped.is_set()
    assert refuses(server.port)
    assert signal.getsignal(signal.SIGINT) is before  # restored


def ping_from_a_thread(loop, port, **client_options):
    """A thriftpy2 client's ping, made in a thread while `loop` (which serves `port`) runs."""

    def ping():
        client = thriftpy2.rpc.make_client(
            pingpong_thrift.PingService, "127.0.0.1", port, timeout=int(SAFETY_TIMEOUT * 1000), **client_options
        )
        try:
            return client.ping()
        finally:
            client.close()

    return loop.run_until_complete(asyncio.wait_for(loop.run_in_executor(None, ping), 3 * SAFETY_TIMEOUT))


def test_aio_init_server_then_close_on_the_callers_loop():
    """thriftpy2's other way: init_server(), run the loop yourself, `await server.close()`."""
    loop = asyncio.new_event_loop()
    try:
        server = dracula.make_aio_server(pingpong_thrift.PingService, Pong(), "127.0.0.1", 0, loop=loop)
        server.init_server()
        try:
            assert ping_from_a_thread(loop, server.port) == "pong"
        finally:
            loop.run_until_complete(asyncio.wait_for(server.close(), SAFETY_TIMEOUT))
        assert server.closed and refuses(server.port)
        loop.run_until_complete(server.close())  # a second close is a no-op, as thriftpy2's
    finally:
        loop.close()


def test_aio_server_closed_before_it_served_releases_its_port():
    server = dracula.make_aio_server(pingpong_thrift.PingService, Pong(), "127.0.0.1", 0)
    assert not refuses(server.port)  # bound and listening from make_aio_server on
    asyncio.run(server.close())
    assert server.closed and refuses(server.port)


def test_aio_server_with_keyfile_and_ssl_context(pem):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pem["cert_only"], pem["keyfile"])
    for tls in ({"certfile": pem["cert_only"], "keyfile": pem["keyfile"]}, {"ssl_context": context}):
        loop = asyncio.new_event_loop()
        try:
            server = dracula.make_aio_server(pingpong_thrift.PingService, Pong(), "127.0.0.1", 0, loop=loop, **tls)
            server.init_server()
            try:
                assert ping_from_a_thread(loop, server.port, cafile=pem["cafile"]) == "pong", tls
            finally:
                loop.run_until_complete(server.close())
        finally:
            loop.close()


def test_aio_server_that_cannot_start_says_why():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(dracula.BindError):
            dracula.make_aio_server(pingpong_thrift.PingService, Pong(), "127.0.0.1", taken.getsockname()[1])


def test_make_aio_server_is_the_uv_backend():
    with pytest.raises(TypeError, match="uv backend"):
        dracula.make_aio_server(pingpong_thrift.PingService, Pong(), port=0, backend="thread")


# -- the signatures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (dracula.make_server, thriftpy2.rpc.make_server),
        (dracula.make_aio_server, thriftpy2.contrib.aio.rpc.make_server),
    ],
    ids=["make_server", "make_aio_server"],
)
def test_thriftpy2s_arguments_in_thriftpy2s_order(ours, theirs):
    positional = [
        p.name for p in inspect.signature(ours).parameters.values() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]
    assert positional == list(inspect.signature(theirs).parameters)


def test_every_argument_by_name(tmp_path):
    server = dracula.make_server(
        service=pingpong_thrift.PingService,
        handler=Pong(),
        host="127.0.0.1",
        port=0,
        unix_socket=None,
        proto_factory=TBinaryProtocolFactory(),
        trans_factory=TBufferedTransportFactory(),
        client_timeout=1500,
        certfile=None,
        socket_family=socket.AF_INET,
        backend="thread",
        graceful_timeout=5,
    )
    with server:
        assert (server.config.idle_timeout, server.config.backend, server.config.graceful_timeout) == (1.5, "thread", 5)
        assert server.sock.family == socket.AF_INET


def test_client_timeout_none_zero_or_left_out_never_closes():
    for given in ({}, {"client_timeout": None}, {"client_timeout": 0}):
        with dracula.make_server(pingpong_thrift.PingService, Pong(), port=0, **given) as server:
            assert server.config.idle_timeout == 0, given  # 0: never
    with dracula.make_server(pingpong_thrift.PingService, Pong(), port=0, idle_timeout=2.0) as server:
        assert server.config.idle_timeout == 2.0  # dracula's own option, in seconds, still works
    with pytest.raises(dracula.ConfigError, match="client_timeout"):
        dracula.make_server(pingpong_thrift.PingService, Pong(), port=0, client_timeout=-1)


@pytest.mark.parametrize(
    "arguments",
    [
        {"unix_socket": "/tmp/a.sock", "uds": "/tmp/b.sock"},
        {"client_timeout": 1000, "idle_timeout": 1.0},
        {"certfile": "a.pem", "ssl_certfile": "b.pem"},
    ],
    ids=["unix_socket+uds", "client_timeout+idle_timeout", "certfile+ssl_certfile"],
)
def test_a_thriftpy2_argument_and_its_dracula_option_together_are_refused(arguments):
    with pytest.raises(TypeError, match="give one"):
        dracula.make_server(pingpong_thrift.PingService, Pong(), port=0, **arguments)


def test_certfile_with_unix_socket_warns_and_serves_in_the_clear(tmp_path, pem):
    path = str(tmp_path / "clear.sock")
    with pytest.warns(UserWarning, match="SSL only works with host:port, not unix_socket"):
        server = dracula.make_server(pingpong_thrift.PingService, Pong(), unix_socket=path, certfile=pem["certfile"])
    with serving(server):
        assert server.config.ssl_certfile is None
        client = thriftpy2.rpc.make_client(pingpong_thrift.PingService, unix_socket=path, timeout=5000)
        try:
            assert client.ping() == "pong"  # thriftpy2's own client, in the clear, as thriftpy2 serves it
        finally:
            client.close()


def test_socket_family_picks_the_family_host_is_looked_up_in():
    with pytest.raises(dracula.BindError, match="AF_INET address"):
        dracula.make_server(pingpong_thrift.PingService, Pong(), "::1", 0, socket_family=socket.AF_INET)
    with pytest.raises(ValueError, match="unix_socket"):
        dracula.make_server(pingpong_thrift.PingService, Pong(), "127.0.0.1", 0, socket_family=socket.AF_UNIX)
    with dracula.make_server(pingpong_thrift.PingService, Pong(), "localhost", 0, socket_family=socket.AF_INET) as s:
        assert (s.sock.family, s.host) == (socket.AF_INET, "127.0.0.1")


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_socket_family_inet6_with_every_address():
    with dracula.make_server(pingpong_thrift.PingService, Pong(), "", 0, socket_family=socket.AF_INET6) as server:
        assert (server.sock.family, server.host) == (socket.AF_INET6, "::")


def test_unix_socket_with_host_and_port_none_as_thriftpy2_allows(tmp_path):
    path = str(tmp_path / "none.sock")
    with dracula.make_server(pingpong_thrift.PingService, Pong(), None, None, path) as server:
        assert (server.config.uds, server.port) == (path, None)


def test_no_host_and_no_unix_socket_is_thriftpy2s_error():
    with pytest.raises(ValueError, match="Either host/port or unix_socket must be provided"):
        dracula.make_server(pingpong_thrift.PingService, Pong(), None, 9090)


# -- factories: one line where dracula answers otherwise ------------------------------------------


@pytest.mark.parametrize(
    ("factories", "level", "says"),
    [
        ({"proto_factory": TJSONProtocolFactory()}, logging.WARNING, "does not speak JSON"),
        ({"proto_factory": TCyBinaryProtocolFactory(decode_response=False)}, logging.WARNING, "as str, not bytes"),
        ({"proto_factory": TCompactProtocolFactory(strict_decode=True)}, logging.WARNING, "not UTF-8"),
        ({"proto_factory": TBinaryProtocolFactory(strict_write=False)}, logging.INFO, "strict binary"),
        ({"trans_factory": object()}, logging.WARNING, "trans_factory=object is not one of thriftpy2's"),
    ],
    ids=["json", "decode_response", "strict_decode", "strict_write", "unknown"],
)
def test_a_factory_dracula_answers_otherwise_gets_one_line(caplog, factories, level, says):
    caplog.set_level(logging.INFO, logger="dracula")
    with dracula.make_server(pingpong_thrift.PingService, Pong(), port=0, **factories):
        pass
    [line] = factory_lines(caplog)
    assert line.levelno == level and says in line.getMessage()


def test_thriftpy2s_default_factories_say_nothing(caplog):
    caplog.set_level(logging.INFO, logger="dracula")
    with dracula.make_server(
        pingpong_thrift.PingService,
        Pong(),
        port=0,
        proto_factory=TBinaryProtocolFactory(),
        trans_factory=TCyBufferedTransportFactory(),
    ):
        pass
    assert factory_lines(caplog) == []


def test_a_factorys_max_depth_becomes_the_max_depth_option():
    factory = TCyBinaryProtocolFactory(max_depth=8)
    with dracula.make_server(pingpong_thrift.PingService, Pong(), port=0, proto_factory=factory) as server:
        assert server.config.max_depth == 8
    with dracula.make_server(pingpong_thrift.PingService, Pong(), port=0, proto_factory=factory, max_depth=20) as s:
        assert s.config.max_depth == 20  # the option, given, wins


# -- processors ----------------------------------------------------------------------------------


def test_a_processor_serves_in_place_of_service_and_handler(backend, dracula_server, dracula_client):
    server = dracula_server(TProcessor(pingpong_thrift.PingService, Pong()), backend=backend)
    assert server.service_names == ["PingService"]
    assert dracula_client(server).ping() == "pong"


def test_processors_in_a_mapping_and_a_multiplexed_processors_plain_names(dracula_server, dracula_client):
    server = dracula_server(
        {"first": TProcessor(pingpong_thrift.PingService, Pong()), "second": (pingpong_thrift.PingService, Pong())}
    )
    assert dracula_client(server, service="second").ping() == "pong"
    mux = TMultiplexedProcessor()
    mux.register_processor("only", TProcessor(pingpong_thrift.PingService, Pong()))
    server = dracula_server(mux)
    # thriftpy2's TMultiplexedProcessor refuses plain names; dracula answers them with its first service.
    assert dracula_client(server).ping() == "pong"
    assert dracula_client(server, service="only").ping() == "pong"


def test_processor_mistakes_are_refused():
    processor = TProcessor(pingpong_thrift.PingService, Pong())
    with pytest.raises(TypeError, match="pass the processor alone"):
        dracula.make_server(processor, Pong(), port=0)
    with pytest.raises(TypeError, match="no processors"):
        dracula.make_server(TMultiplexedProcessor(), port=0)
    nested = TMultiplexedProcessor()
    nested.register_processor("inner", TMultiplexedProcessor())
    with pytest.raises(TypeError, match="inside a TMultiplexedProcessor"):
        dracula.make_server(nested, port=0)


def test_a_processor_subclass_whose_overrides_dracula_skips_is_named(caplog, dracula_server, dracula_client):
    class Logged(TProcessor):
        def process_in(self, iprot):
            raise AssertionError("dracula never calls it")

    with caplog.at_level(logging.WARNING, logger="dracula"):
        server = dracula_server(Logged(pingpong_thrift.PingService, Pong()))
    assert any("Logged overrides process_in" in r.getMessage() for r in caplog.records)
    assert dracula_client(server).ping() == "pong"


# -- gunicorn_thrift's app, from the command line ------------------------------------------------


def test_gunicorn_thrift_app_served_by_dracula_serve(cli_server):
    served = cli_server("examples.thriftpy2_style.ping_app:app", "--port", "0")
    client = thriftpy2.rpc.make_client(pingpong_thrift.PingService, "127.0.0.1", served.port, timeout=10_000)
    try:
        assert client.ping() == "pong"
    finally:
        client.close()


def test_dracula_serve_names_what_is_not_a_processor(cli_server):
    served = cli_server("examples.thriftpy2_style.ping_app:Dispatcher", "--port", "0", wait=False)
    assert served.wait(20) == 2
    assert "is not a thriftpy2 TProcessor" in served.output
