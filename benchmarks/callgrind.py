"""Counting a Python program's instructions with valgrind's callgrind: the measure the *_cost.py
and *_instructions.py benchmarks use, because it holds on a loaded machine where wall-clock
numbers do not. User-space instructions only (no kernel work)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def instructions(argv: list[str], out_file: str | None = None) -> int:
    """The instructions `python ARGV...` runs, start to exit, with this checkout first on its
    path and PYTHONHASHSEED=0 (two runs hash alike); out_file keeps callgrind's output."""
    with tempfile.TemporaryDirectory() as tmp:
        out = out_file or os.path.join(tmp, "callgrind.out")
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, sys.executable, *argv]
        env = dict(os.environ, PYTHONPATH=ROOT, PYTHONHASHSEED="0")
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit("%s failed:\n%s" % (" ".join(cmd), done.stderr[-3000:]))
        match = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
        if match is None:
            raise SystemExit("no instruction count in valgrind's output:\n%s" % done.stderr[-3000:])
        return int(match.group(1))
