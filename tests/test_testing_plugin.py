"""The manual's example test for a user's handler (docs/embedding.md), run by a pytest of its own
with dracula's plugin (dracula/testing.py), as a user's project would run it."""

import os
import re
import subprocess
import sys

from .helpers import ROOT


def _docs_example_test() -> str:
    with open(os.path.join(ROOT, "docs", "embedding.md"), encoding="utf-8") as f:
        section = f.read().split("\n## Testing your handlers", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    return next(block for block in blocks if "def test_" in block)


def test_docs_example_test_passes_with_the_plugin(tmp_path):
    (tmp_path / "test_ping.py").write_text(_docs_example_test())
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "dracula.testing",
            "-p",
            "no:cacheprovider",
            "-c",
            str(tmp_path / "pytest.ini"),
            "-q",
            str(tmp_path / "test_ping.py"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
