"""--uds PATH: serving on a Unix domain socket, its file's life (stale files, live servers, file
mode, removal on exit) and the supervisor over a Unix socket."""

from __future__ import annotations

import os
import signal
import socket
import stat

import pytest

from .cli_server import alive, assert_one_line_error, live_children, run_cli
from .helpers import Background, running, wait_until
from .ops_app import LocalOps, call, ops_thrift

SERVING_UDS = r"dracula serving \S+ on (\S+) \((\w+) backend"


@pytest.fixture
def sock_path(tmp_path):
    path = str(tmp_path / "ops.sock")
    assert len(path) < 100, "Unix socket paths are limited to 107 bytes: %s" % path
    return path


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def is_socket(path) -> bool:
    return stat.S_ISSOCK(os.stat(path).st_mode)


def serve_uds(serve, path, *extra):
    served = serve("--uds", path, *extra, wait=False)
    served.wait_for(SERVING_UDS)
    return served


# -- serving -------------------------------------------------------------------------------------


def test_uds_served_in_process(backend, sock_path):
    with running(ops_thrift.Ops, LocalOps(), backend=backend, uds=sock_path) as server:
        assert server.port is None
        assert is_socket(sock_path)
        assert mode_of(sock_path) == 0o660  # the default --uds-mode
        assert call(sock_path, "echo", "over uds") == "over uds"
        with pytest.raises(ops_thrift.Oops):
            call(sock_path, "echo", "oops")
        assert call(sock_path, "pid") == str(os.getpid())
    assert not os.path.exists(sock_path), "the socket file outlived the server"


def test_uds_from_the_command_line_mode_and_removal_on_exit(serve, sock_path, backend):
    served = serve_uds(serve, sock_path, "--uds-mode", "600", "--backend", backend)
    assert served.matches(SERVING_UDS)[0].group(1) == sock_path
    assert is_socket(sock_path)
    assert mode_of(sock_path) == 0o600
    for i in range(3):
        assert call(sock_path, "echo", "cli %d" % i) == "cli %d" % i
    served.signal(signal.SIGTERM)
    assert served.wait(20) == 0, served.output
    assert not os.path.exists(sock_path), "the socket file outlived a clean exit"


# -- what may already be at the path -------------------------------------------------------------


def test_stale_socket_file_is_replaced(sock_path):
    # A socket bound and closed without unlink: the file stays, nobody listens.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(sock_path)
    s.close()
    assert is_socket(sock_path)
    with running(ops_thrift.Ops, LocalOps(), uds=sock_path):
        assert call(sock_path, "echo", "fresh") == "fresh"


def test_socket_left_by_a_killed_server_is_replaced(serve, sock_path):
    first = serve_uds(serve, sock_path)
    assert call(sock_path, "echo", "first") == "first"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    assert is_socket(sock_path), "a killed server cannot remove its socket file"
    second = serve_uds(serve, sock_path)
    assert call(sock_path, "pid") == str(second.pid)


def test_path_where_a_server_listens_exits_2_and_leaves_that_server_alone(sock_path):
    with running(ops_thrift.Ops, LocalOps(), uds=sock_path):
        result = run_cli(
            "serve", "idl/pingpong.thrift:PingService", "examples.pingpong:PingHandler", "--uds", sock_path
        )
        assert_one_line_error(result, "already listening", sock_path)
        assert is_socket(sock_path)
        assert call(sock_path, "echo", "still mine") == "still mine"


def test_regular_file_at_the_path_exits_2_and_is_kept(sock_path):
    with open(sock_path, "w") as f:
        f.write("precious data\n")
    result = run_cli("serve", "idl/pingpong.thrift:PingService", "examples.pingpong:PingHandler", "--uds", sock_path)
    assert_one_line_error(result, sock_path, "not a socket")
    with open(sock_path) as f:
        assert f.read() == "precious data\n"


def test_directory_that_does_not_exist_exits_2(tmp_path):
    path = str(tmp_path / "no-such-dir" / "ops.sock")
    result = run_cli("serve", "idl/pingpong.thrift:PingService", "examples.pingpong:PingHandler", "--uds", path)
    assert_one_line_error(result, path)


# -- with workers --------------------------------------------------------------------------------


def test_uds_with_workers(serve, app, sock_path, backend):
    served = serve_uds(serve, sock_path, "--workers", "2", "--backend", backend, "--uds-mode", "600")
    workers = {int(m.group(1)) for m in served.wait_for(r"worker (\d+) accepting", count=2)}
    assert mode_of(sock_path) == 0o600
    held = Background(call, sock_path, "hold", "a")
    busy = app.entered("a")
    answered = set()
    if backend == "uv":  # worker A's loop is held: the other one must answer
        answered = {int(call(sock_path, "pid")) for _ in range(4)}
        assert busy not in answered
    else:
        assert wait_until(lambda: answered.add(int(call(sock_path, "pid"))) or answered == workers, 15)
    app.release("a")
    assert held.result() == "a:%d" % busy
    assert answered | {busy} == workers
    served.signal(signal.SIGTERM)
    assert served.wait(20) == 0, served.output
    assert not os.path.exists(sock_path), "the supervisor left its socket file behind"
    assert not any(alive(pid) for pid in workers)


def test_uds_worker_reload_keeps_the_socket_file(serve, app, sock_path):
    served = serve_uds(serve, sock_path, "--workers", "2")
    old = [int(m.group(1)) for m in served.wait_for(r"worker (\d+) accepting", count=2)]
    app.write(version="v2")
    served.signal(signal.SIGHUP)
    for pid in old:
        served.wait_for(r"worker %d exited" % pid)
    assert is_socket(sock_path), "a retired worker removed the supervisor's socket file"
    assert call(sock_path, "version") == "v2"
    assert len(live_children(served.pid)) == 2
