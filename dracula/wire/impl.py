"""Which scanner implementation this process uses: the compiled one (dracula/wire/_cscan.pyx)
unless DRACULA_PURE_PYTHON=1 asks for the pure-Python reference or the extension was not built.

Both give the same verdicts (tests/test_scan_differential.py); the compiled one walks a message
many times faster than the pure one, which costs more than the decode it protects.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Protocol

from .binary_scan import BinaryScanner as PureBinaryScanner
from .compact_scan import CompactScanner as PureCompactScanner


class Scanner(Protocol):
    """What the reader uses of a scanner, compiled or pure."""

    header: tuple[bytes, int, int, int] | None  # (name, message type, seqid, body offset) once read
    pos: int
    need: int

    def __init__(self, max_depth: int, max_container: int, max_string: int = 2**31 - 1,
                 specs: Any = None) -> None: ...
    def reset(self) -> None: ...
    def scan(self, buf: Any, base: int, end: int, limit: int) -> int: ...


CompiledBinaryScanner: type[Scanner] | None
CompiledCompactScanner: type[Scanner] | None
UNAVAILABLE: str | None
try:
    from ._cscan import BinaryScanner as CompiledBinaryScanner, CompactScanner as CompiledCompactScanner
    UNAVAILABLE = None
except ImportError as e:  # installed without a C compiler: the pure scanners stand in
    CompiledBinaryScanner = CompiledCompactScanner = None
    UNAVAILABLE = str(e)

BinaryScanner: type[Scanner]
CompactScanner: type[Scanner]
if os.environ.get("DRACULA_PURE_PYTHON") == "1" or CompiledBinaryScanner is None or CompiledCompactScanner is None:
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
