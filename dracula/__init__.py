"""dracula: serve thriftpy2 services on a libuv reactor (or threads), safely and fast."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from dracula.client import make_aio_client, make_client
from dracula.config import Config, ConfigError
from dracula.server.context import CallContext, current_call
from dracula.server.dispatch import blocking, inline
from dracula.server.lifecycle import Server
from dracula.server.listen import BindError
from dracula.thriftpy2_api import AsyncServer, make_aio_server, make_server
from dracula.typedefs import Handler, Services

__version__ = "0.1.0"


@contextlib.asynccontextmanager
async def serving(
    service: Services, handler: Handler = None, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> AsyncIterator[Server]:
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


__all__ = [
    "make_server",
    "make_aio_server",
    "AsyncServer",
    "serving",
    "make_client",
    "make_aio_client",
    "blocking",
    "inline",
    "current_call",
    "CallContext",
    "Server",
    "Config",
    "ConfigError",
    "BindError",
]
