"""Which scanner implementation this process uses: the compiled one (dracula/wire/_cscan.pyx)
unless DRACULA_PURE_PYTHON=1 asks for the pure-Python reference or the extension was not built.

Both give the same verdicts (tests/test_scan_differential.py); the compiled one walks a message
many times faster than the pure one, which costs more than the decode it protects.
"""
from __future__ import annotations

import logging
import os

from .binary_scan import BinaryScanner as PureBinaryScanner
from .compact_scan import CompactScanner as PureCompactScanner

try:
    from ._cscan import BinaryScanner as CompiledBinaryScanner, CompactScanner as CompiledCompactScanner
    UNAVAILABLE = None
except ImportError as e:  # installed without a C compiler: the pure scanners stand in
    CompiledBinaryScanner = CompiledCompactScanner = None
    UNAVAILABLE = str(e)

if os.environ.get("DRACULA_PURE_PYTHON") == "1" or CompiledBinaryScanner is None:
    IMPLEMENTATION = "pure"
    BinaryScanner, CompactScanner = PureBinaryScanner, PureCompactScanner
else:
    IMPLEMENTATION = "compiled"
    BinaryScanner, CompactScanner = CompiledBinaryScanner, CompiledCompactScanner


def warn_if_degraded(log: logging.Logger) -> None:
    """One warning line when the compiled scanner was wanted but could not be imported."""
    if UNAVAILABLE is not None and IMPLEMENTATION == "pure" and os.environ.get("DRACULA_PURE_PYTHON") != "1":
        log.warning("compiled scanner unavailable (%s); using the pure-Python scanner, "
                    "which costs more than the decode it guards", UNAVAILABLE)
