"""Plumbing shared by the tests that run a Thrift client written in another language (C++, Java,
Node.js) against dracula: what a missing toolchain means, building the C++ client, running a
client, and the lines every client prints (the same calls and the same text in each language).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from .helpers import ROOT

RUN_TIMEOUT = 60  # seconds: turns a hung client into a failure; never used to synchronise

CPP_SOURCE = os.path.join(ROOT, "tests", "cpp", "showcase_client.cpp")
CXXFLAGS = ["-std=c++17", "-O0", "-Wall"]
CPP_APT_HINT = "apt-get install g++ libthrift-dev libboost-dev"


def missing_toolchain(reason: str):
    """Skip, saying what to install; on CI (CI=true) a missing toolchain fails instead, so the
    interop tests cannot silently stop running there."""
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but " + reason, pytrace=False)
    pytest.skip(reason)


def _first_error(output: str) -> str:
    for line in output.splitlines():
        if "error" in line:
            return line.strip()
    return output.strip().splitlines()[-1] if output.strip() else "no output"


def _check_cpp_toolchain(gxx: str):
    """Skip (fail on CI) unless Apache Thrift's C++ headers and libraries are usable by `gxx`."""
    probe = subprocess.run(
        [gxx, *CXXFLAGS, "-E", "-x", "c++", "-o", os.devnull, "-"],
        input="#include <thrift/protocol/TBinaryProtocol.h>\n"
        "#include <thrift/protocol/THeaderProtocol.h>\n"
        "#include <thrift/transport/TSocket.h>\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    if probe.returncode != 0:
        missing_toolchain(
            "Apache Thrift C++ headers are not usable: %s (%s)" % (_first_error(probe.stderr), CPP_APT_HINT)
        )
    for lib in ("libthrift.so", "libthriftz.so"):
        found = subprocess.run(
            [gxx, "-print-file-name=" + lib], capture_output=True, text=True, timeout=60
        ).stdout.strip()
        if not os.path.isabs(found):
            missing_toolchain("Apache Thrift C++ library (%s) is not installed (%s)" % (lib, CPP_APT_HINT))


def build_cpp_client(directory) -> str:
    """Compile tests/cpp/showcase_client.cpp into `directory`; the binary's path. Skips (fails
    on CI) where g++ or Apache Thrift's C++ headers/library are missing."""
    gxx = shutil.which("g++")
    if gxx is None:
        missing_toolchain("g++ is not installed (%s)" % CPP_APT_HINT)
    _check_cpp_toolchain(gxx)
    binary = os.path.join(str(directory), "showcase_client")
    # libthriftz holds THeaderTransport/THeaderProtocol (and brings in zlib itself).
    built = subprocess.run(
        [gxx, *CXXFLAGS, "-o", binary, CPP_SOURCE, "-lthriftz", "-lthrift"], capture_output=True, text=True, timeout=300
    )
    # The toolchain is there: a failure to build is a real failure, not a skip.
    assert built.returncode == 0, "showcase_client.cpp does not build:\n" + built.stderr
    return binary


def run_client(argv, env=None):
    """Run a client program to the end; its stdout lines (asserts it exited 0)."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env)
    assert done.returncode == 0, "exit %d\nstdout:\n%s\nstderr:\n%s" % (done.returncode, done.stdout, done.stderr)
    return done.stdout.splitlines()


def expected_lines(language: str):
    """What a client prints for the Showcase calls; `language` is in the data it sends."""
    return [
        "add 1099511627774",
        "add_max 9223372036854775807",
        "echo_shape name=%s shape|points=(1,2)(-3,2147483647)|color=3|labels=a:(5,6);b:"
        "|tags=-9223372036854775808,-8,7|blob=0001ff80" % language,
        "echo_bare name=bare|points=-|color=1|labels=-|tags=-|blob=-",
        "reverse 100000 ok",
        "lookup value OK",
        "lookup_missing not_found key=missing code=404",
        "lookup_empty invalid reason=empty key",
        "fail TApplicationException type=6 message=RuntimeError: %s boom" % language,
        "add_after 42",
    ]
