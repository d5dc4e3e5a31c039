#!/usr/bin/env python3
"""Fuzzes the Reader (detection, framing, unframed ends, THeader) fed in pieces, compiled and pure
(fuzz/targets.py: check_reader)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz.main import main

if __name__ == "__main__":
    main("reader")
