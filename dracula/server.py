"""Server lifecycle: bind, serve on the chosen backend, stop on signals, drain gracefully."""
from __future__ import annotations

import logging
import signal
import socket
import threading

from .backends import backend_class
from .config import Config
from .dispatch import Dispatcher

log = logging.getLogger("dracula")


class BindError(OSError):
    """The address cannot be bound (in use, not permitted, not an address of this host)."""


def bind_socket(config: Config) -> socket.socket:
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((config.host, config.port))
        sock.listen(config.backlog)
    except OSError as e:
        sock.close()
        raise BindError(e.errno, "cannot listen on %s:%s: %s" % (config.host, config.port, e.strerror)) from e
    return sock


class Server:
    """A bound server. `serve()` blocks until `close()` (or SIGINT/SIGTERM in the main thread)
    and returns once in-flight requests are answered or the graceful timeout has passed."""

    def __init__(self, services, config: Config):
        self.config = config.validate()
        self.dispatcher = Dispatcher(services)
        self.service_names = [name for name, _, _ in services]
        self.sock = bind_socket(config)
        self.host, self.port = self.sock.getsockname()[:2]
        self.started = threading.Event()
        self.stopped = threading.Event()
        self._backend = backend_class(config.backend)(config, self.dispatcher, self.sock)

    @property
    def address(self):
        return (self.host, self.port)

    def serve(self) -> None:
        restore = self._install_signal_handlers()
        try:
            self._backend.run(self._on_ready)
        finally:
            for signum, previous in restore:
                signal.signal(signum, previous)
            self.sock.close()
            self.stopped.set()
            log.info("dracula stopped")

    def close(self) -> None:
        """Stop accepting, answer what was read, then make serve() return. Thread-safe."""
        self._backend.stop()

    def _on_ready(self) -> None:
        log.info("dracula serving %s on %s:%d (%s backend)", ", ".join(self.service_names),
                 self.host, self.port, self.config.backend)
        self.started.set()

    def _install_signal_handlers(self):
        if threading.current_thread() is not threading.main_thread():
            return []
        restore = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            restore.append((signum, signal.signal(signum, self._on_signal)))
        return restore

    def _on_signal(self, signum, frame) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        self.sock.close()
