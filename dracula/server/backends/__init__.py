"""Backends: how connections are accepted, read and answered.

`uv` is the libuv reactor (uvloop); `thread` is one thread per connection, kept as the
comparison baseline. Both share the wire and dispatch code and expose run(on_ready) / stop().
"""


def backend_class(name: str):
    if name == "uv":
        from dracula.server.backends.uv import UVBackend
        return UVBackend
    from dracula.server.backends.threaded import ThreadedBackend
    return ThreadedBackend
