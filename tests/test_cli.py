"""`dracula serve` as users run it: a child process, real clients, real signals."""

from __future__ import annotations

import os
import signal
import socket
import textwrap

import pytest
import thriftpy2.rpc

from .cli_server import CliServer, assert_one_line_error, run_cli
from .helpers import ROOT, pingpong_thrift

PING_IDL = "idl/pingpong.thrift:PingService"
PING_HANDLER = "examples.pingpong:PingHandler"


def ping(port):
    client = thriftpy2.rpc.make_client(pingpong_thrift.PingService, "127.0.0.1", port, timeout=20_000)
    try:
        return client.ping()
    finally:
        client.close()


def assert_refused(port):
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_answers_then_stops_cleanly_on_signal(backend, signum):
    server = CliServer(PING_IDL, PING_HANDLER, "--port", "0", "--backend", backend)
    try:
        assert ping(server.port) == "pong"
        assert ping(server.port) == "pong"
        server.signal(signum)
        assert server.wait() == 0, server.output
    finally:
        server.close()
    out = server.output
    assert "received %s" % signal.Signals(signum).name in out, out
    assert "dracula stopped" in out, out
    assert "Traceback" not in out, out
    assert_refused(server.port)


def write_module(directory, name, source):
    path = directory / (name + ".py")
    path.write_text(textwrap.dedent(source))
    return path


def test_error_wrong_idl_path():
    result = run_cli("serve", "idl/no_such.thrift:PingService", PING_HANDLER, "--port", "0")
    assert_one_line_error(result, "idl/no_such.thrift")


def test_error_idl_that_does_not_parse(tmp_path):
    bad = tmp_path / "bad.thrift"
    bad.write_text("service Broken {\n    string ping(,\n}\n")
    result = run_cli("serve", "%s:Broken" % bad, PING_HANDLER, "--port", "0")
    assert_one_line_error(result, "bad.thrift")


def test_error_missing_service():
    result = run_cli("serve", "idl/pingpong.thrift:PongService", PING_HANDLER, "--port", "0")
    assert_one_line_error(result, "PongService", "PingService")


def test_error_service_spec_without_colon():
    result = run_cli("serve", "idl/pingpong.thrift", PING_HANDLER, "--port", "0")
    assert_one_line_error(result)


def test_error_unimportable_handler_module():
    result = run_cli("serve", PING_IDL, "examples.no_such_module:PingHandler", "--port", "0")
    assert_one_line_error(result, "examples.no_such_module")


def test_error_handler_module_that_fails_to_import(tmp_path):
    write_module(
        tmp_path,
        "broken_handler",
        """\
        import no_such_dependency_for_dracula_tests
        class Handler:
            pass
        """,
    )
    write_module(
        tmp_path,
        "raising_handler",
        """\
        raise RuntimeError("configuration missing")
        """,
    )
    result = run_cli("serve", PING_IDL, "broken_handler:Handler", "--port", "0", "--app-dir", str(tmp_path))
    assert_one_line_error(result, "broken_handler", "no_such_dependency_for_dracula_tests")
    result = run_cli("serve", PING_IDL, "raising_handler:Handler", "--port", "0", "--app-dir", str(tmp_path))
    assert_one_line_error(result, "raising_handler", "configuration missing")


def test_error_missing_attribute():
    result = run_cli("serve", PING_IDL, "examples.pingpong:NoSuchHandler", "--port", "0")
    assert_one_line_error(result, "NoSuchHandler")


def test_error_handler_factory_that_raises(tmp_path):
    write_module(
        tmp_path,
        "failing_factory",
        """\
        def make():
            raise ValueError("no database")
        """,
    )
    result = run_cli("serve", PING_IDL, "failing_factory:make", "--port", "0", "--app-dir", str(tmp_path))
    assert_one_line_error(result, "no database")


def test_error_port_in_use(backend):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_cli("serve", PING_IDL, PING_HANDLER, "--port", str(port), "--backend", backend)
    assert_one_line_error(result, str(port))


def test_error_invalid_option_value():
    result = run_cli("serve", PING_IDL, PING_HANDLER, "--port", "70000")
    assert_one_line_error(result, "port")


HANDLERS = """\
    import os

    class ClassHandler:
        def ping(self):
            return "pong from a class"

    class _Instance:
        def __init__(self, text):
            self.text = text

        def ping(self):
            return self.text

    instance = _Instance("pong from an instance")

    def factory():
        return _Instance("pong from a factory (pid %d)" % os.getpid())
    """


@pytest.mark.parametrize(
    "attr, expected",
    [
        ("ClassHandler", "pong from a class"),
        ("instance", "pong from an instance"),
        ("factory", "pong from a factory (pid "),
    ],
)
def test_handler_as_class_instance_or_factory(tmp_path, backend, attr, expected):
    write_module(tmp_path, "my_ping_handlers", HANDLERS)
    server = CliServer(
        PING_IDL, "my_ping_handlers:" + attr, "--port", "0", "--backend", backend, "--app-dir", str(tmp_path)
    )
    try:
        first = ping(server.port)
        assert first.startswith(expected)
        assert ping(server.port) == first  # one handler object serves every call
        assert "does not implement" not in server.output
        server.signal(signal.SIGTERM)
        assert server.wait() == 0, server.output
    finally:
        server.close()
    if attr == "factory":  # the factory ran in the serving process
        assert first == "pong from a factory (pid %d)" % server.proc.pid


def test_app_dir_goes_first_on_sys_path(tmp_path):
    # The same module name in a PYTHONPATH directory and in --app-dir: --app-dir wins.
    elsewhere = tmp_path / "elsewhere"
    app = tmp_path / "app"
    elsewhere.mkdir()
    app.mkdir()
    write_module(
        elsewhere,
        "shadowed_handler",
        """\
        class Handler:
            def ping(self):
                return "from PYTHONPATH"
        """,
    )
    write_module(
        app,
        "shadowed_handler",
        """\
        class Handler:
            def ping(self):
                return "from --app-dir"
        """,
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(elsewhere), ROOT]))
    server = CliServer(PING_IDL, "shadowed_handler:Handler", "--port", "0", "--app-dir", str(app), env=env)
    try:
        assert ping(server.port) == "from --app-dir"
    finally:
        server.signal(signal.SIGTERM)
        server.wait()
        server.close()
    # Without --app-dir, the PYTHONPATH copy is what imports.
    server = CliServer(PING_IDL, "shadowed_handler:Handler", "--port", "0", env=env)
    try:
        assert ping(server.port) == "from PYTHONPATH"
    finally:
        server.signal(signal.SIGTERM)
        server.wait()
        server.close()


def test_app_dir_defaults_to_the_working_directory(tmp_path):
    write_module(
        tmp_path,
        "cwd_handler",
        """\
        class Handler:
            def ping(self):
                return "from the working directory"
        """,
    )
    idl = os.path.join(ROOT, "idl", "pingpong.thrift")
    server = CliServer(idl + ":PingService", "cwd_handler:Handler", "--port", "0", cwd=str(tmp_path))
    try:
        assert ping(server.port) == "from the working directory"
    finally:
        server.signal(signal.SIGTERM)
        assert server.wait() == 0, server.output
        server.close()


def test_version_and_usage():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("dracula ")
    result = run_cli()
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
