"""pytest set-up for benchmarks/test_micro.py (not collected by a plain `pytest`: the
project's testpaths name tests/ only). Run: `pytest benchmarks/test_micro.py --benchmark-only`."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # for examples.*, as `dracula serve --app-dir .` would
