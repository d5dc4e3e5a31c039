"""Shared test plumbing: run a real server (in-process or as the `dracula` CLI) on a free port."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import thriftpy2

import dracula

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IDL = os.path.join(ROOT, "idl")

pingpong_thrift = thriftpy2.load(os.path.join(IDL, "pingpong.thrift"))
showcase_thrift = thriftpy2.load(os.path.join(IDL, "showcase.thrift"))
hash_thrift = thriftpy2.load(os.path.join(IDL, "hash.thrift"))

BACKENDS = ("uv", "thread")


@contextlib.contextmanager
def running(service, handler, backend="uv", **options):
    """A dracula server in a thread of this process; yields the Server (its .port is bound)."""
    server = dracula.make_server(service, handler, host="127.0.0.1", port=0, backend=backend, **options)
    thread = threading.Thread(target=server.serve, name="test-server", daemon=True)
    thread.start()
    assert server.started.wait(10), "server did not start"
    try:
        yield server
    finally:
        server.close()
        thread.join(30)
        assert not thread.is_alive(), "server did not stop"


SERVING = re.compile(r"serving .* on (\S+):(\d+) ")


class CliServer:
    """`dracula serve ...` as a child process; .port is read from its 'serving' log line."""

    def __init__(self, *args, cwd=ROOT, env=None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dracula", "serve", *args],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.port = None
        for line in self.proc.stdout:
            self.lines.append(line)
            match = SERVING.search(line)
            if match:
                self.port = int(match.group(2))
                break
        if self.port is None:
            self.proc.wait(10)
            raise AssertionError("dracula serve did not start:\n" + "".join(self.lines))
        # Keep draining its output so it never blocks on a full pipe.
        self._drain = threading.Thread(target=self._read_rest, daemon=True)
        self._drain.start()

    def _read_rest(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def signal(self, signum=signal.SIGTERM):
        self.proc.send_signal(signum)

    def wait(self, timeout=30) -> int:
        code = self.proc.wait(timeout)
        self._drain.join(5)
        return code

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def run_cli(*args, timeout=30, cwd=ROOT):
    """Run `dracula ...` to completion; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "dracula", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def wait_until(condition, timeout=15.0, interval=0.01):
    """Poll `condition` until it is true (returns its value) or `timeout` passes (returns its
    last, falsy, value): a bounded wait on a condition, never a bare sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def vm(key: str) -> int:
    """A /proc/self/status memory figure (VmRSS, VmHWM...) in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(key)


def reset_peak() -> int:
    """Reset VmHWM (peak RSS) to the current RSS where the kernel allows; the baseline."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return vm("VmRSS")
    except OSError:
        return vm("VmHWM")


class SockTransport:
    """The `read(n)` thriftpy2's protocols need, over a raw socket, with a receive buffer;
    `received` counts every byte that came in."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.received = 0

    def read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise EOFError("closed with %d of %d bytes read" % (len(self.buf), n))
            self.received += len(chunk)
            self.buf += chunk
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def peek(self, n):
        """The next n bytes, left unread."""
        self.buf[:0] = self.read(n)
        return bytes(self.buf[:n])
