# Types of the client's compiled per-call code (_cclient.pyx) for type checkers, which cannot read
# an extension module.
from dracula.client.messages import Wire as PureWire

# An extension type, not a subclass at run time: declared as one because it has the same API
# (tests/test_client_compiled.py holds the two to the same bytes, replies and errors).
class Wire(PureWire): ...

class BodyReader:
    def clean(self) -> None: ...
    def read(self, sz: int) -> bytes: ...
