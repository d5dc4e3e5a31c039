"""dracula: serve thriftpy2 services on a libuv reactor (or threads), safely and fast."""
from __future__ import annotations

from .config import Config, ConfigError
from .context import CallContext, current_call
from .dispatch import blocking
from .listen import BindError
from .server import Server

__version__ = "0.1.0"


def make_server(service, handler, host: str = Config.host, port: int = Config.port,
                backend: str = Config.backend, **options) -> Server:
    """A bound Server for one thriftpy2 service and its handler.

    The leading arguments mirror `thriftpy2.rpc.make_server`, so switching is one import.
    `options` are Config fields (max_frame_size=..., graceful_timeout=..., ...). Port 0 binds a
    free port; the server's `.port` reports it. Call `.serve()` to run, `.close()` to stop.
    """
    unknown = set(options) - set(Config.__dataclass_fields__)
    if unknown:
        raise TypeError("unknown option(s): %s" % ", ".join(sorted(unknown)))
    config = Config(host=host, port=port, backend=backend, **options)
    return Server([(service.__name__, service, handler)], config)


__all__ = ["make_server", "blocking", "current_call", "CallContext", "Server", "Config", "ConfigError", "BindError"]
