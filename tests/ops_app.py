"""The Ops service that the `dracula serve` process tests run: its IDL, a handler module written
to a directory of its own (so that a test can change it on disk and hold a worker busy:
`hold(tag)` writes markers/entered-TAG, holding its pid, and waits for markers/release-TAG or
release-all), an in-process handler, and a one-call client for TCP ports and Unix sockets."""

from __future__ import annotations

import io
import os
import textwrap

import thriftpy2
import thriftpy2.rpc

from .helpers import wait_until

OPS_IDL = """
exception Oops {
    1: string why,
}

service Ops {
    string pid(),
    string version(),
    string hold(1: string tag),
    string hold_blocking(1: string tag),
    string echo(1: string text) throws (1: Oops oops),
}
"""

# A client-side view with one method the server does not have (UNKNOWN_METHOD).
OPS_PLUS_IDL = OPS_IDL.replace("service Ops {", "service Ops {\n    string missing(),")

ops_thrift = thriftpy2.load_fp(io.StringIO(OPS_IDL), module_name="ops_thrift")
ops_plus_thrift = thriftpy2.load_fp(io.StringIO(OPS_PLUS_IDL), module_name="ops_plus_thrift")

HOLD_LIMIT = 60  # seconds a hold() waits for its release marker before giving up

HANDLER_SOURCE = """
import os
import time

import thriftpy2

import dracula

MARKERS = {markers!r}
VERSION = {version!r}
if os.path.exists(os.path.join(MARKERS, "break-import")):
    raise RuntimeError("handler broken on purpose (break-import marker)")

ops_thrift = thriftpy2.load({idl!r}, module_name="ops_thrift")


def _hold(tag):
    with open(os.path.join(MARKERS, "entered-" + tag + ".tmp"), "w") as f:
        f.write(str(os.getpid()))
    os.rename(os.path.join(MARKERS, "entered-" + tag + ".tmp"), os.path.join(MARKERS, "entered-" + tag))
    deadline = time.monotonic() + {hold_limit!r}
    while time.monotonic() < deadline:
        if os.path.exists(os.path.join(MARKERS, "release-" + tag)) or \\
                os.path.exists(os.path.join(MARKERS, "release-all")):
            break
        time.sleep(0.01)
    return "%s:%d" % (tag, os.getpid())


class Handler:
    def pid(self):
        return str(os.getpid())

    def version(self):
        return VERSION

    def hold(self, tag):
        return _hold(tag)

    @dracula.blocking
    def hold_blocking(self, tag):
        return _hold(tag)

    def echo(self, text):
        if text == "oops":
            raise ops_thrift.Oops(why="asked for it")
        if text == "boom":
            raise RuntimeError("undeclared failure")
        return text
"""


class LocalOps:
    """The Ops handler for in-process servers (no hold: nothing here may block the test)."""

    def pid(self):
        return str(os.getpid())

    def version(self):
        return "local"

    def hold(self, tag):
        return tag

    hold_blocking = hold

    def echo(self, text):
        if text == "oops":
            raise ops_thrift.Oops(why="asked for it")
        if text == "boom":
            raise RuntimeError("undeclared failure")
        return text


class OpsApp:
    """The Ops IDL and handler module in a directory of their own, plus the hold markers."""

    def __init__(self, directory):
        self.dir = str(directory)
        self.idl = os.path.join(self.dir, "ops.thrift")
        self.markers = os.path.join(self.dir, "markers")
        os.makedirs(self.markers, exist_ok=True)
        with open(self.idl, "w") as f:
            f.write(OPS_IDL)
        self.write()

    @property
    def args(self) -> list:
        return ["%s:Ops" % self.idl, "opshandler:Handler", "--app-dir", self.dir]

    def write(self, version="v1", source=None):
        if source is None:
            source = HANDLER_SOURCE.format(markers=self.markers, version=version, idl=self.idl, hold_limit=HOLD_LIMIT)
        path = os.path.join(self.dir, "opshandler.py")
        with open(path + ".tmp", "w") as f:
            f.write(textwrap.dedent(source))
        os.rename(path + ".tmp", path)

    def write_broken(self):
        self.write(source="raise RuntimeError('this version cannot start')\n")

    def marker(self, name):
        return os.path.join(self.markers, name)

    def touch(self, name):
        with open(self.marker(name), "w"):
            pass

    def release(self, tag):
        self.touch("release-" + tag)

    def release_all(self):
        self.touch("release-all")

    def entered(self, tag, timeout=20.0) -> int:
        """Wait for hold(tag) to be entered; returns the pid of the process running it."""
        path = self.marker("entered-" + tag)
        assert wait_until(lambda: os.path.exists(path), timeout), "hold(%r) was never entered" % tag
        with open(path) as f:
            return int(f.read())


def call(target, method="pid", *args, timeout=20.0, service=None, **client_options):
    """One call on a new connection: `target` is a TCP port or a Unix socket path."""
    if isinstance(target, str):
        client_options["unix_socket"] = target
    else:
        client_options.update(host="127.0.0.1", port=target)
    client = thriftpy2.rpc.make_client(service or ops_thrift.Ops, timeout=int(timeout * 1000), **client_options)
    try:
        return getattr(client, method)(*args)
    finally:
        client.close()
