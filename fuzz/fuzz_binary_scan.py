#!/usr/bin/env python3
"""Fuzzes the compiled binary scanner (_cscan.BinaryScanner) against binary_scan.py
(fuzz/targets.py: check_binary_scan)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz.main import main

if __name__ == "__main__":
    main("binary_scan")
