"""A Java client (tests/java/ShowcaseClient.java on code from `thrift --gen java`, Apache
Thrift's Java library) against dracula on both backends: binary/compact × buffered/framed,
plain and multiplexed.

The code is generated and compiled once per session into a temporary directory. The test skips,
saying why, where the JDK, the thrift compiler or the library is missing (Debian: `apt-get
install default-jdk-headless thrift-compiler libthrift-java`); with CI=true it fails instead.
Debian's libthrift-java is 0.16, which has no THeader classes, so there are no THeader cells.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import pytest

from .client_programs import expected_lines, missing_toolchain, run_client
from .helpers import BACKENDS, IDL, ROOT

SOURCE = os.path.join(ROOT, "tests", "java", "ShowcaseClient.java")
APT_HINT = "apt-get install default-jdk-headless thrift-compiler libthrift-java"
THRIFT_JAR = "/usr/share/java/thrift.jar"  # libthrift-java; its manifest names its dependencies
# slf4j's no-op binding (libslf4j-java, a dependency of libthrift-java): without a binding
# slf4j-api prints a warning on stderr.
SLF4J_NOP_JAR = "/usr/share/java/slf4j-nop.jar"
# `record` is a method of Showcase and a restricted type name since Java 14: the generated
# class `Showcase.Processor.record` only compiles as Java 11.
JAVAC_FLAGS = ["--release", "11", "-nowarn", "-encoding", "UTF-8"]
EXPECTED = expected_lines("java")


def _tool(name):
    path = shutil.which(name)
    if path is None:
        missing_toolchain("%s is not installed (%s)" % (name, APT_HINT))
    return path


def _generate(thrift, out_dir):
    for idl in ("showcase.thrift", "pingpong.thrift"):
        done = subprocess.run(
            [thrift, "--gen", "java:generated_annotations=suppress", "-out", out_dir, os.path.join(IDL, idl)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, "thrift --gen java %s failed:\n%s" % (idl, done.stderr)


@pytest.fixture(scope="session")
def java_client(tmp_path_factory):
    """The command line (java, classpath, main class) that runs the compiled client."""
    javac, java, thrift = _tool("javac"), _tool("java"), _tool("thrift")
    if not os.path.exists(THRIFT_JAR):
        missing_toolchain("Apache Thrift's Java library (%s) is not installed (%s)" % (THRIFT_JAR, APT_HINT))
    work = tmp_path_factory.mktemp("java")
    generated, classes = work / "gen", work / "classes"
    generated.mkdir()
    _generate(thrift, str(generated))
    classpath = os.pathsep.join([str(classes), THRIFT_JAR] + ([SLF4J_NOP_JAR] if os.path.exists(SLF4J_NOP_JAR) else []))
    built = subprocess.run(
        [
            javac,
            *JAVAC_FLAGS,
            "-cp",
            THRIFT_JAR,
            "-d",
            str(classes),
            *sorted(glob.glob(str(generated / "*.java"))),
            SOURCE,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    # The toolchain is there: a failure to build is a real failure, not a skip.
    assert built.returncode == 0, "ShowcaseClient.java does not build:\n" + built.stderr
    return [java, "-cp", classpath, "ShowcaseClient"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("transport", ["buffered", "framed"])
@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_java_client(java_client, showcase_servers, protocol, transport, backend):
    port = str(showcase_servers[backend].port)
    assert run_client([*java_client, "127.0.0.1", port, protocol, transport]) == EXPECTED


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("transport", ["buffered", "framed"])
@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_java_client_multiplexed(java_client, multiplexed_servers, protocol, transport, backend):
    # TMultiplexedProtocol sends "Showcase:add"; Java's client checks only the reply's seqid.
    port = str(multiplexed_servers[backend].port)
    lines = run_client([*java_client, "127.0.0.1", port, protocol, transport, "Showcase", "PingService"])
    assert lines == [*EXPECTED, "ping pong"]
