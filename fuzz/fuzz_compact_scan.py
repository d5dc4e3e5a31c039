#!/usr/bin/env python3
"""Fuzzes the compiled compact scanner (_cscan.CompactScanner) against compact_scan.py
(fuzz/targets.py: check_compact_scan)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz.main import main

if __name__ == "__main__":
    main("compact_scan")
