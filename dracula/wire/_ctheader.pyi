# Types of the compiled THeader code (_ctheader.pyx) for type checkers, which cannot read an
# extension module: the signatures of theader.py's pure-Python parse_header and encode_frame.
from dracula.typedefs import Buffer
from dracula.wire.theader_frame import HeaderFrame as PureHeaderFrame, HeaderPairs

# An extension type, not a subclass at run time: declared as one because it has the same fields
# and __init__ (tests/test_theader_differential.py holds the two to the same values).
class HeaderFrame(PureHeaderFrame): ...

def parse_header(buf: Buffer, start: int, end: int, persistent: dict[str, str] | None = None) -> HeaderFrame: ...
def encode_frame(payload: Buffer, request: PureHeaderFrame, headers: HeaderPairs | None = None) -> bytes: ...
