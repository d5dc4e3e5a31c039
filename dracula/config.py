"""One Config: every server option with its default (the fields of options.Options, where each
is declared once), and its validation.

The CLI, `make_server` and both backends read options from here only, so a default lives in
exactly one place. Config is an ordinary dataclass to a type checker too: no stub declares its
fields a second time.
"""

from __future__ import annotations

import dataclasses
import resource

from dracula.options import OPTIONS, Options

# Seconds a draining server waits for the first request of a connection that has sent nothing:
# a client that connected a moment ago has not seen the drain yet.
FIRST_REQUEST_GRACE = 1.0
# File descriptors kept free for the listener, logs, metrics and handler code.
FD_RESERVE = 64


class ConfigError(ValueError):
    """An option has a value the server cannot run with; the message names it."""


@dataclasses.dataclass
class Config(Options):
    # Internal, not options: set by the supervisor for its workers (the inherited listening
    # socket and the pipe on which a worker says it accepts).
    worker_fd: int | None = None
    ready_fd: int | None = None

    def validate(self) -> Config:
        for option in OPTIONS:
            problem = option.problem(getattr(self, option.name))
            if problem:
                raise ConfigError("%s %s" % (option.name, problem))
        # Checks that relate two options.
        if not 0 <= self.write_low_water <= self.write_high_water:
            raise ConfigError("write marks need 0 <= low <= high")
        if (self.ssl_keyfile or self.ssl_ca_certs) and not self.ssl_certfile:
            raise ConfigError("--ssl-keyfile and --ssl-ca-certs need --ssl-certfile")
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
