"""Backends: how connections are accepted, read and answered.

`uv` is the libuv reactor (uvloop); `thread` is one thread per connection, kept as the
comparison baseline. Both share the wire and dispatch code and expose run(on_ready) / stop():
seams.Backend says so, and mypy checks each class against it here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dracula.server.seams import BackendFactory


def backend_class(name: str) -> BackendFactory:
    if name == "uv":
        from dracula.server.backends.uv import UVBackend

        return UVBackend
    from dracula.server.backends.threaded import ThreadedBackend

    return ThreadedBackend
