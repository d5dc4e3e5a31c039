"""Which per-call client code this process uses: the compiled one (dracula/client/_cclient.pyx)
unless DRACULA_PURE_PYTHON=1 asks for the pure-Python reference or it was not built (or was built
against another thriftpy2 than the one installed), as dracula/wire/compiled.py chooses the
scanners.

Both give the same request bytes, values and errors (tests/test_client_compiled.py); the
compiled one runs a call on the blocking client's short way (one host, no hooks) with no Python
frame between its steps, and decodes replies without copying their bodies into a buffer first.
"""

from __future__ import annotations

import os
from typing import Any

from dracula.client.messages import Wire as PureWire

PURE_ASKED = os.environ.get("DRACULA_PURE_PYTHON") == "1"

UNAVAILABLE: str | None
compiled_module: Any
try:
    from dracula.client import _cclient as compiled_module

    UNAVAILABLE = None
except Exception as e:  # not built, or built against another thriftpy2 (its types' sizes differ)
    compiled_module = None
    UNAVAILABLE = str(e)

IMPLEMENTATION = "pure" if PURE_ASKED or compiled_module is None else "compiled"

Wire: type[PureWire] = compiled_module.Wire if IMPLEMENTATION == "compiled" else PureWire
