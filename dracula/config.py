"""One Config: every server option, its default and its validation.

The CLI, `make_server` and both backends read options from here only, so a default lives in
exactly one place.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import resource

BACKENDS = ("uv", "thread")
MIB = 1024 * 1024
# Seconds a draining server waits for the first request of a connection that has sent nothing:
# a client that connected a moment ago has not seen the drain yet.
FIRST_REQUEST_GRACE = 1.0
# File descriptors kept free for the listener, logs, metrics and handler code.
FD_RESERVE = 64


class ConfigError(ValueError):
    """An option has a value the server cannot run with; the message names it."""


@dataclasses.dataclass
class Config:
    host: str = "127.0.0.1"
    port: int = 9090
    backend: str = "uv"
    # The kernel caps this at net.core.somaxconn; asyncio's default of 100 drops SYNs in storms.
    backlog: int = 4096
    log_level: str = "info"
    # Largest frame (framed) or message (unframed) accepted; larger declared sizes close the
    # connection before a byte of the body is buffered.
    max_frame_size: int = 16 * MIB
    # Nesting of structs and containers, the arguments struct counted as 1 (thriftpy2's codec
    # refuses past 64 too).
    max_depth: int = 64
    # Bytes one string or binary value may declare (None: the frame size).
    max_string_size: int | None = None
    # Elements one container may declare.
    max_container_size: int = 10_000_000
    # Open connections; past it a new connection is accepted and closed at once, so its client
    # fails fast instead of waiting in the backlog. None: the fd limit less a reserve.
    max_connections: int | None = None
    # Seconds a connection may sit with no request in flight or arriving; 0: never closed
    # (Thrift clients keep pooled connections open between calls).
    idle_timeout: float = 0.0
    # Seconds from a request's first byte to its last (slowloris); 0: no limit.
    request_timeout: float = 30.0
    # Seconds a coroutine or @blocking handler may run before its caller gets an error; 0: no
    # limit. (The handler itself is not interrupted: Python cannot kill a thread.)
    handler_timeout: float = 0.0
    # Seconds SIGTERM/SIGINT waits for in-flight requests before closing what is left.
    graceful_timeout: float = 30.0
    # Threads for handlers marked @dracula.blocking (uv backend) and for coroutine handlers'
    # loop (thread backend). None: min(32, cpu + 4), as concurrent.futures does.
    blocking_threads: int | None = None
    # Per-connection write buffer marks (uv backend): past high, stop reading that client.
    write_high_water: int = 1 * MIB
    write_low_water: int = 256 * 1024
    # Listen on this Unix domain socket path instead of host:port; its file mode.
    uds: str | None = None
    uds_mode: int = 0o660
    # TLS: certificate chain and key; with ca_certs, clients must present a certificate.
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_ca_certs: str | None = None
    # One log line per call on the "dracula.access" logger: peer, service.method, outcome, µs.
    access_log: bool = False
    # Serve Prometheus /metrics and the /healthz readiness probe on this port (None: off).
    metrics_port: int | None = None
    metrics_host: str | None = None  # default: host
    # Set by the supervisor for its workers: the inherited listening socket and the pipe on
    # which a worker says it accepts.
    worker_fd: int | None = None
    ready_fd: int | None = None

    def validate(self) -> "Config":
        if self.backend not in BACKENDS:
            raise ConfigError("backend must be one of %s, not %r" % ("/".join(BACKENDS), self.backend))
        if not 0 <= self.port <= 65535:
            raise ConfigError("port must be 0..65535, not %r" % self.port)
        if self.backlog < 1:
            raise ConfigError("backlog must be at least 1")
        if not isinstance(logging.getLevelName(self.log_level.upper()), int):
            raise ConfigError("unknown log level %r" % self.log_level)
        if not 16 <= self.max_frame_size <= 2**31 - 1:
            raise ConfigError("max_frame_size must be 16..2147483647 bytes")
        if not 1 <= self.max_depth <= 64:
            raise ConfigError("max_depth must be 1..64 (thriftpy2's codec stops at 64)")
        if self.max_container_size < 0:
            raise ConfigError("max_container_size must not be negative")
        if self.max_string_size is not None and self.max_string_size < 0:
            raise ConfigError("max_string_size must not be negative")
        if self.max_connections is not None and self.max_connections < 1:
            raise ConfigError("max_connections must be at least 1")
        for name in ("idle_timeout", "request_timeout", "handler_timeout"):
            if getattr(self, name) < 0:
                raise ConfigError("%s must not be negative (0 turns it off)" % name)
        if self.graceful_timeout < 0:
            raise ConfigError("graceful_timeout must not be negative")
        if self.blocking_threads is not None and self.blocking_threads < 1:
            raise ConfigError("blocking_threads must be at least 1")
        if not 0 <= self.write_low_water <= self.write_high_water:
            raise ConfigError("write marks need 0 <= low <= high")
        return self

    @property
    def string_limit(self) -> int:
        return self.max_frame_size if self.max_string_size is None else self.max_string_size

    @property
    def connection_limit(self) -> int:
        if self.max_connections is not None:
            return self.max_connections
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return 1_000_000
        return max(1, soft - FD_RESERVE)

    @property
    def thread_count(self) -> int:
        return self.blocking_threads or min(32, (os.cpu_count() or 1) + 4)
