"""Plumbing shared by the tests that run a Thrift client written in another language (C++, Java,
Node.js) against dracula: what a missing toolchain means, running the client, and the lines the
Java and Node.js clients print (the same calls and the same text as tests/cpp/showcase_client.cpp).
"""
from __future__ import annotations

import os
import subprocess

import pytest

RUN_TIMEOUT = 60  # seconds: turns a hung client into a failure; never used to synchronise


def missing_toolchain(reason: str):
    """Skip, saying what to install; on CI (CI=true) a missing toolchain fails instead, so the
    interop tests cannot silently stop running there."""
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but " + reason, pytrace=False)
    pytest.skip(reason)


def run_client(argv, env=None):
    """Run a client program to the end; its stdout lines (asserts it exited 0)."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env)
    assert done.returncode == 0, "exit %d\nstdout:\n%s\nstderr:\n%s" % (
        done.returncode, done.stdout, done.stderr)
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
