"""A Node.js client (tests/node/showcase_client.js on code from `thrift --gen js:node`, npm's
`thrift` package pinned by tests/node/package-lock.json) against dracula on both backends:
binary/compact × buffered/framed, plain and multiplexed; then THeader with binary and compact
inside.

The code is generated once per session into a temporary directory. The test skips, saying why,
where node, the thrift compiler or the npm package is missing (Debian: `apt-get install nodejs
npm thrift-compiler`, then `npm ci --prefix tests/node`); with CI=true it fails instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from .client_programs import expected_lines, missing_toolchain, run_client
from .helpers import BACKENDS, IDL, ROOT

NODE_DIR = os.path.join(ROOT, "tests", "node")
SOURCE = os.path.join(NODE_DIR, "showcase_client.js")
NODE_MODULES = os.path.join(NODE_DIR, "node_modules")
INSTALL_HINT = "apt-get install nodejs npm thrift-compiler; npm ci --prefix tests/node"
EXPECTED = expected_lines("node")
# The npm library's THeader has no transforms (no zlib), so these are its THeader cells.


def _tool(name):
    path = shutil.which(name)
    if path is None:
        missing_toolchain("%s is not installed (%s)" % (name, INSTALL_HINT))
    return path


@pytest.fixture(scope="session")
def node_client(tmp_path_factory):
    """(command prefix, environment) that run the client on freshly generated code."""
    node, thrift = _tool("node"), _tool("thrift")
    if not os.path.isdir(os.path.join(NODE_MODULES, "thrift")):
        missing_toolchain("npm's thrift package is not installed in tests/node (%s)" % INSTALL_HINT)
    generated = str(tmp_path_factory.mktemp("node"))
    for idl in ("showcase.thrift", "pingpong.thrift"):
        done = subprocess.run(
            [thrift, "--gen", "js:node", "-out", generated, os.path.join(IDL, idl)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, "thrift --gen js:node %s failed:\n%s" % (idl, done.stderr)
    # The generated modules require `thrift` and `node-int64` from outside tests/node.
    env = dict(os.environ, NODE_PATH=NODE_MODULES)
    return [node, SOURCE, generated], env


def run_node(node_client, server, protocol, transport, *names):
    command, env = node_client
    return run_client([*command, "127.0.0.1", str(server.port), protocol, transport, *names], env=env)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("transport", ["buffered", "framed"])
@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_node_client(node_client, showcase_servers, protocol, transport, backend):
    assert run_node(node_client, showcase_servers[backend], protocol, transport) == EXPECTED


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("transport", ["buffered", "framed"])
@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_node_client_multiplexed(node_client, multiplexed_servers, protocol, transport, backend):
    # The Node.js connection hands each reply to `recv_<name>` of the service it sent the seqid
    # to: a reply named "Showcase:add" instead of "add" is an error there.
    lines = run_node(node_client, multiplexed_servers[backend], protocol, transport, "Showcase", "PingService")
    assert lines == [*EXPECTED, "ping pong"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_node_client_theader(node_client, showcase_servers, protocol, backend):
    assert run_node(node_client, showcase_servers[backend], protocol, "header") == EXPECTED


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_node_client_theader_multiplexed(node_client, multiplexed_servers, protocol, backend):
    lines = run_node(node_client, multiplexed_servers[backend], protocol, "header", "Showcase", "PingService")
    assert lines == [*EXPECTED, "ping pong"]
