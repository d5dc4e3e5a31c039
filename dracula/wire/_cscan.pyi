# Types of the compiled scanners (_cscan.pyx) for type checkers, which cannot read an extension
# module: the interface reader.py uses, as the pure-Python scanners (binary_scan.py) have it.
from typing import final

from dracula.typedefs import ArgSpecs, Buffer

class _Scanner:
    header: tuple[bytes, int, int, int] | None
    pos: int
    need: int
    specs: ArgSpecs
    @property
    def max_depth(self) -> int: ...
    @property
    def max_container(self) -> int: ...
    @property
    def max_string(self) -> int: ...
    def __init__(
        self, max_depth: int, max_container: int, max_string: int = ..., specs: ArgSpecs | None = None
    ) -> None: ...
    def reset(self) -> None: ...
    @property
    def stack(self) -> list[tuple[int, int, int, int]] | None: ...

@final
class BinaryScanner(_Scanner):
    def scan(self, buf: Buffer, base: int, end: int, limit: int) -> int: ...

@final
class CompactScanner(_Scanner):
    def scan(self, buf: Buffer, base: int, end: int, limit: int) -> int: ...
