"""Server lifecycle: bind, serve on the chosen backend, stop on signals, drain gracefully."""
from __future__ import annotations

import logging
import os
import signal
import threading

from .backends import backend_class
from .config import Config
from .dispatch import Dispatcher
from .metrics import Metrics, new_registry, serve_status
from .observe import CallObserver
from .state import ServerState
from .tls import server_context
from .listen import address_of, listen

log = logging.getLogger("dracula")


class Server:
    """A bound server. `serve()` blocks until `close()` (or SIGINT/SIGTERM in the main thread)
    and returns once in-flight requests are answered or the graceful timeout has passed."""

    def __init__(self, services, config: Config):
        self.config = config.validate()
        # Each server has its own metrics registry (workers: summed through the multiprocess
        # directory by the supervisor).
        self.registry = new_registry() if config.metrics_port is not None else None
        self.state = ServerState(config, Dispatcher(services), make_observer(config, self.registry))
        self.service_names = [name for name, _, _ in services]
        self.sock = listen(config)
        self.host, self.port = address_of(self.sock)
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.closing = False
        self.status = None
        if config.metrics_port is not None and config.worker_fd is None:  # a supervisor serves its workers'
            self.status = serve_status(config.metrics_host or config.host, config.metrics_port,
                                       self.healthy, registry=self.registry)
        self._backend = backend_class(config.backend)(self.state, self.sock, server_context(config))

    def serve(self) -> None:
        restore = self._install_signal_handlers()
        try:
            self._backend.run(self._on_ready)
        finally:
            for signum, previous in restore:
                signal.signal(signum, previous)
            self.sock.close()
            if self.status is not None:
                self.status.shutdown()
                self.status.server_close()
            if config_uds_owned(self.config):
                _unlink(self.config.uds)
            self.stopped.set()
            log.info("dracula stopped")

    def close(self) -> None:
        """Stop accepting, answer what was read, then make serve() return. Thread-safe."""
        self.closing = True
        self._backend.stop()

    def healthy(self) -> bool:
        """Ready for traffic: accepting, not draining and (--unhealthy-when-shedding) not
        shedding hard (the /healthz answer)."""
        return self.started.is_set() and not self.closing and self.state.healthy_load()

    @property
    def drain_timed_out(self) -> bool:
        """The last stop hit the graceful timeout (calls may still run in threads)."""
        return self._backend.timed_out

    def _on_ready(self) -> None:
        self.started.set()  # before the log line: whoever reads it may probe /healthz at once
        where = self.host if self.port is None else "%s:%d" % (self.host, self.port)
        log.info("dracula serving %s on %s (%s backend, pid %d)", ", ".join(self.service_names),
                 where, self.config.backend, os.getpid())
        if self.config.ready_fd is not None:  # tell the supervisor this worker accepts
            os.write(self.config.ready_fd, b"R")
            os.close(self.config.ready_fd)

    def _install_signal_handlers(self):
        if threading.current_thread() is not threading.main_thread():
            return []
        restore = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            restore.append((signum, signal.signal(signum, self._on_signal)))
        if self.config.worker_fd is not None:
            # The supervisor owns reloads and scaling: a terminal's hang-up must not kill workers.
            for signum in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
                restore.append((signum, signal.signal(signum, signal.SIG_IGN)))
        return restore

    def _on_signal(self, signum, frame) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        self.sock.close()


def config_uds_owned(config) -> bool:
    """The Unix socket file is this process's to remove (a worker leaves it to the supervisor)."""
    return bool(config.uds) and config.worker_fd is None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def make_observer(config, registry=None):
    """A CallObserver only when calls are logged or measured: nothing is paid when both are off."""
    if not config.access_log and config.metrics_port is None:
        return None
    metrics = Metrics(registry) if config.metrics_port is not None else None
    return CallObserver(metrics, config.access_log)
