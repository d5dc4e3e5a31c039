# Types of the compiled THeader functions (_ctheader.pyx) for type checkers, which cannot read an
# extension module: the signatures of theader.py's pure-Python parse_header and encode_frame.
from typing import Any

from .theader_frame import HeaderFrame

def parse_header(buf: Any, start: int, end: int, persistent: dict[str, str] | None = None) -> HeaderFrame: ...
def encode_frame(payload: Any, request: HeaderFrame, headers: dict[Any, Any] | None = None) -> bytes: ...
