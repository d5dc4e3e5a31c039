"""What the binary and compact scanners share: their limits and the resumable state of the
message being scanned."""

from __future__ import annotations

from typing import Any

from dracula.typedefs import ArgSpecs


class ScanState:
    """Offsets are relative to the message's first byte, so the reader may move the buffer's
    contents between calls to `scan`."""

    __slots__ = ("max_depth", "max_container", "max_string", "specs", "pos", "need", "stack", "header")
    stack: list[list[Any]] | None  # the open struct and container frames, innermost last
    header: tuple[bytes, int, int, int] | None

    def __init__(
        self, max_depth: int, max_container: int, max_string: int = 2**31 - 1, specs: ArgSpecs | None = None
    ) -> None:
        self.specs: ArgSpecs = specs or {}  # method name (bytes) -> its arguments' thrift_spec
        self.max_depth = max_depth
        self.max_container = max_container
        self.max_string = max_string
        self.reset()

    def reset(self) -> None:
        self.pos = 0
        self.need = 0  # no point scanning again before the message has this many bytes
        self.stack = None
        self.header = None  # (name bytes, message type, seqid, body offset)
