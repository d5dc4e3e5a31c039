"""dracula: serve thriftpy2 services on a libuv reactor (or threads), safely and fast."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from dracula.client import make_aio_client, make_client
from dracula.config import Config, ConfigError
from dracula.server.context import CallContext, current_call
from dracula.server.dispatch import blocking, inline
from dracula.server.lifecycle import Server
from dracula.server.listen import BindError

__version__ = "0.1.0"

Services = Mapping[str, "tuple[Any, Any]"]


def make_server(service: Any, handler: Any = None, host: str = Config.host, port: int = Config.port,
                backend: str = Config.backend, middleware: Sequence[Any] = (), **options: Any) -> Server:
    """A bound Server for one thriftpy2 service and its handler, or for several services.

    The leading arguments mirror `thriftpy2.rpc.make_server`, so switching is one import.
    Several services: pass `{name: (service, handler), ...}` as `service` (and no handler); they
    are multiplexed exactly as `dracula serve --service` does, the first one also answering
    plain method names. `middleware`: hooks around every call, in order (dracula/server/middleware.py).
    `options` are Config fields (max_frame_size=..., graceful_timeout=...).
    Port 0 binds a free port; the server's `.port` reports it. Call `.serve()` (blocking) or
    `await .serve_async()` (on your loop) to run, `.close()` to stop.
    """
    if "workers" in options:
        raise TypeError("workers are a `dracula serve --workers N` option: the supervisor starts "
                        "each worker from the command line and runs it with serve()")
    unknown = set(options) - set(Config.__dataclass_fields__)
    if unknown:
        raise TypeError("unknown option(s): %s" % ", ".join(sorted(unknown)))
    config = Config(host=host, port=port, backend=backend, **options)
    return Server(_service_triples(service, handler), config, middleware)


def _service_triples(service: Any, handler: Any) -> list[tuple[str, Any, Any]]:
    if not isinstance(service, Mapping):
        if handler is None:
            raise TypeError("make_server(service, handler): the handler is missing")
        return [(service.__name__, service, handler)]
    if handler is not None:
        raise TypeError("with a mapping of services, each handler goes in the mapping")
    if not service:
        raise TypeError("the mapping of services is empty")
    return [(name, pair[0], pair[1]) for name, pair in service.items()]


@contextlib.asynccontextmanager
async def serving(service: Any, handler: Any = None, host: str = "127.0.0.1", port: int = 0,
                  **options: Any) -> AsyncIterator[Server]:
    """`async with dracula.serving(service, handler) as server:` serves on the running loop
    (a free port on 127.0.0.1 by default: `server.port`) and drains on leaving the block.
    Arguments as make_server's; the uv backend only."""
    server = make_server(service, handler, host=host, port=port, **options)
    with server:  # closes the socket even if it never served
        task = asyncio.ensure_future(server.serve_async())
        started = asyncio.ensure_future(server.wait_started())
        await asyncio.wait([task, started], return_when=asyncio.FIRST_COMPLETED)
        if task.done():  # it failed to start: say why
            started.cancel()
            task.result()
            raise RuntimeError("the server stopped before it started")
        try:
            yield server
        finally:
            await server.shutdown()
            await task


__all__ = ["make_server", "serving", "make_client", "make_aio_client", "blocking", "inline", "current_call", "CallContext", "Server", "Config",
           "ConfigError", "BindError"]
