#!/usr/bin/env python3
"""Fuzzes the compiled THeader parser and encoder (_ctheader) against theader.py, zlib included
(fuzz/targets.py: check_theader)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz.main import main

if __name__ == "__main__":
    main("theader")
