"""Shared test plumbing: the IDLs, a real dracula server in a thread of this process, bounded
waits, and this process's memory and file descriptors."""

from __future__ import annotations

import os
import socket
import threading
import time

import thriftpy2

import dracula

# One wrapper for a server in a thread of this process: the pytest plugin's.
from dracula.testing import running, serving_in_thread as serving  # noqa: F401 - re-exported

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IDL = os.path.join(ROOT, "idl")

pingpong_thrift = thriftpy2.load(os.path.join(IDL, "pingpong.thrift"))
showcase_thrift = thriftpy2.load(os.path.join(IDL, "showcase.thrift"))
hash_thrift = thriftpy2.load(os.path.join(IDL, "hash.thrift"))

BACKENDS = ("uv", "thread")


def running_services(services, backend="uv"):
    """A multi-service dracula server ([(name, service, handler)...]), in a thread of this process."""
    return serving(dracula.Server(services, dracula.Config(host="127.0.0.1", port=0, backend=backend)))


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


class Background:
    """Run fn(*args) in a thread; .result() re-raises what it raised."""

    def __init__(self, fn, *args, **kwargs):
        self.value = None
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(fn, args, kwargs), daemon=True)
        self.thread.start()

    def _run(self, fn, args, kwargs):
        try:
            self.value = fn(*args, **kwargs)
        except BaseException as e:  # handed to the test
            self.error = e

    def done(self) -> bool:
        return not self.thread.is_alive()

    def join(self, timeout=30.0):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "background call still running after %gs" % timeout

    def result(self, timeout=30.0):
        self.join(timeout)
        if self.error is not None:
            raise self.error
        return self.value
