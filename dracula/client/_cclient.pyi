# Types of the client's compiled per-call code (_cclient.pyx) for type checkers, which cannot read
# an extension module.
from typing import Any

from dracula.client.messages import Reply, Wire as PureWire

# An extension type, not a subclass at run time: declared as one because it has the same API
# (tests/test_client_compiled.py holds the two to the same bytes, replies and errors).
class Wire(PureWire): ...

class BodyReader:
    """A thriftpy2 CyTransportBase over one vetted body: reads past its end raise."""

    def clean(self) -> None: ...
    def read(self, sz: int) -> bytes: ...

class SyncMethod:
    """`client.method` on the compiled path: SyncClient._invoke for one method."""

    __name__: str
    def __init__(self, client: Any, spec: Any, name: str) -> None: ...
    def __call__(self, *args: Any, timeout: Any = ..., **kwargs: Any) -> Any: ...

def invoke(client: Any, spec: Any, args: tuple[Any, ...], kwargs: dict[str, Any], timeout: Any) -> Any: ...
def connection_call(conn: Any, data: bytes, timeout: float | None) -> Reply: ...
