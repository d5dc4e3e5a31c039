"""Which scanner and THeader implementation this process uses: the compiled ones
(dracula/wire/_cscan.pyx, dracula/wire/_ctheader.pyx) unless DRACULA_PURE_PYTHON=1 asks for the
pure-Python reference or the extensions were not built.

Both give the same verdicts (tests/test_scan_differential.py, tests/test_theader_differential.py);
the compiled scanner walks a message many times faster than the pure one, which costs more than
the decode it protects; the compiled THeader parser and encoder keep the header's cost per call
small beside framed binary. theader.py picks its functions from THEADER_IMPLEMENTATION.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Protocol

from dracula.typedefs import ArgSpecs, Buffer
from dracula.wire.binary_scan import BinaryScanner as PureBinaryScanner
from dracula.wire.compact_scan import CompactScanner as PureCompactScanner
from dracula.wire.theader_frame import HeaderFrame


class Scanner(Protocol):
    """What the reader uses of a scanner, compiled or pure."""

    header: tuple[bytes, int, int, int] | None  # (name, message type, seqid, body offset) once read
    pos: int
    need: int

    def __init__(
        self, max_depth: int, max_container: int, max_string: int = 2**31 - 1, specs: ArgSpecs | None = None
    ) -> None: ...
    def reset(self) -> None: ...
    def scan(self, buf: Buffer, base: int, end: int, limit: int) -> int: ...


CompiledBinaryScanner: type[Scanner] | None
CompiledCompactScanner: type[Scanner] | None
UNAVAILABLE: str | None
try:
    from dracula.wire._cscan import BinaryScanner as CompiledBinaryScanner, CompactScanner as CompiledCompactScanner

    UNAVAILABLE = None
except ImportError as e:  # installed without a C compiler: the pure scanners stand in
    CompiledBinaryScanner = CompiledCompactScanner = None
    UNAVAILABLE = str(e)

compiled_parse_header: Callable[..., HeaderFrame] | None
compiled_encode_frame: Callable[..., bytes] | None
try:
    from dracula.wire._ctheader import encode_frame as compiled_encode_frame, parse_header as compiled_parse_header
except ImportError as e:  # the same: theader.py's pure functions stand in
    compiled_encode_frame = compiled_parse_header = None
    UNAVAILABLE = UNAVAILABLE or str(e)

PURE_ASKED = os.environ.get("DRACULA_PURE_PYTHON") == "1"
THEADER_IMPLEMENTATION = "pure" if PURE_ASKED or compiled_parse_header is None else "compiled"

BinaryScanner: type[Scanner]
CompactScanner: type[Scanner]
if PURE_ASKED or CompiledBinaryScanner is None or CompiledCompactScanner is None:
    IMPLEMENTATION = "pure"
    BinaryScanner, CompactScanner = PureBinaryScanner, PureCompactScanner
else:
    IMPLEMENTATION = "compiled"
    BinaryScanner, CompactScanner = CompiledBinaryScanner, CompiledCompactScanner


def warn_if_degraded(log: logging.Logger) -> None:
    """One warning line when the compiled code was wanted but could not be imported."""
    if UNAVAILABLE is not None and not PURE_ASKED:
        log.warning(
            "compiled scanner or THeader code unavailable (%s); using the pure-Python code "
            "(scanner: %s, THeader: %s), which costs more than the decode it guards",
            UNAVAILABLE,
            IMPLEMENTATION,
            THEADER_IMPLEMENTATION,
        )
