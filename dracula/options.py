"""Every server option, declared once: its default, help, check and CLI shape.

Config's fields, `dracula serve`'s flags and their --help come from OPTIONS; the manual's tables
(docs/options.md, docs/limits.md) are tested against it (tests/test_options.py). A new option is
one Option here and one row there.
"""
from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable
from typing import Any

BACKENDS = ("uv", "thread")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
MIB = 1024 * 1024


def octal(text: str) -> int:
    return int(text, 8)


def at_least(low):
    return lambda value: None if value >= low else "must be at least %s" % low


def names(text: str) -> tuple[str, ...]:
    """A comma-separated list of method names."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def not_negative(value):
    return None if value >= 0 else "must not be negative"


def off_or_positive(value):
    return None if value >= 0 else "must not be negative (0 turns it off)"


@dataclasses.dataclass(frozen=True)
class Option:
    name: str                  # the Config field; the CLI flag is --name-with-dashes
    default: Any
    help: str
    group: str                 # the --help section
    type: type | None = None   # of the value; None: the default's type
    check: Callable[[Any], str | None] | None = None  # value → what is wrong, or None
    choices: tuple | None = None
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None  # CLI text → value; None: `type`
    shown: str | None = None   # the default as --help and the docs write it

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def value_type(self) -> builtins.type:  # `type` here is the field above
        return self.type or type(self.default)

    @property
    def annotation(self):
        return self.value_type if self.default is not None else "%s | None" % self.value_type.__name__

    @property
    def shown_default(self) -> str:
        if self.shown is not None:
            return self.shown
        if self.default is None:
            return "none"
        if isinstance(self.default, bool):
            return "on" if self.default else "off"
        if isinstance(self.default, float):
            return "%g s" % self.default
        return str(self.default)

    def problem(self, value) -> str | None:
        """What is wrong with `value` for this option, or None. None is always allowed where
        it is the default (it means "derive it")."""
        if value is None and self.default is None:
            return None
        if self.choices is not None and value not in self.choices:
            return "must be one of %s, not %r" % ("/".join(self.choices), value)
        return self.check(value) if self.check else None


OPTIONS = [
    # -- listener
    Option("host", "127.0.0.1", "address to listen on", "listener"),
    Option("port", 9090, "TCP port; 0 binds a free one (the log line names it)", "listener",
           check=lambda v: None if 0 <= v <= 65535 else "must be 0..65535, not %r" % v),
    Option("backend", "uv", "uv (reactor) or thread (one thread per connection)", "listener",
           choices=BACKENDS),
    # The kernel caps this at net.core.somaxconn; asyncio's default of 100 drops SYNs in storms.
    Option("backlog", 4096, "listen queue length", "listener", check=at_least(1), metavar="N"),
    Option("uds", None, "listen on this Unix domain socket instead of host:port", "listener",
           type=str, metavar="PATH"),
    Option("uds_mode", 0o660, "file mode of the --uds socket", "listener", parse=octal,
           metavar="OCTAL", shown="660"),
    # -- TLS
    Option("ssl_certfile", None, "serve TLS with this certificate chain (PEM)", "TLS", type=str,
           metavar="PATH"),
    Option("ssl_keyfile", None, "its private key (PEM), if not in the certfile", "TLS", type=str,
           metavar="PATH"),
    Option("ssl_ca_certs", None, "require client certificates signed by these CAs (PEM)", "TLS",
           type=str, metavar="PATH"),
    # -- limits: what one client may make the server hold
    # Larger declared sizes close the connection before a byte of the body is buffered.
    Option("max_frame_size", 16 * MIB, "largest frame (framed) or message (unframed), bytes",
           "limits", metavar="BYTES", shown="16 MiB",
           check=lambda v: None if 16 <= v <= 2**31 - 1 else "must be 16..2147483647 bytes"),
    Option("max_string_size", None, "largest string/binary value, bytes", "limits", type=int,
           check=not_negative, metavar="BYTES", shown="the frame size"),
    Option("max_container_size", 10_000_000, "most elements one container may declare", "limits",
           check=not_negative, metavar="N", shown="10,000,000"),
    # The arguments struct counts as 1; thriftpy2's codec refuses past 64 too.
    Option("max_depth", 64, "deepest nesting of structs and containers", "limits", metavar="N",
           check=lambda v: None if 1 <= v <= 64 else "must be 1..64 (thriftpy2's codec stops at 64)"),
    # Past it a new connection is accepted and closed at once: its client fails fast instead of
    # waiting in the backlog.
    Option("max_connections", None, "open connections; past it new ones are closed at once",
           "limits", type=int, check=at_least(1), metavar="N", shown="the fd limit less 64"),
    Option("max_connections_per_peer", None, "open connections from one client address; past it "
           "its new ones are closed at once", "limits", type=int, check=at_least(1), metavar="N",
           shown="none"),
    Option("write_high_water", 1 * MIB, "unsent reply bytes of one connection past which its "
           "reading pauses", "limits", metavar="BYTES", shown="1 MiB"),
    Option("write_low_water", 256 * 1024, "unsent reply bytes below which reading resumes",
           "limits", metavar="BYTES", shown="256 KiB"),
    # -- overload: what all clients together may make one process hold (docs/overload.md)
    # 256 MiB: 16 messages of the default largest frame in flight at once; small requests fit
    # a connection's first 8 KiB buffer and never draw on it.
    Option("max_buffer_memory", 256 * MIB, "bytes all connections of a process may hold in "
           "partly received messages and unread replies; past it large uploads wait and "
           "non-reading clients are closed (0: no limit)", "limits",
           check=not_negative, metavar="BYTES", shown="256 MiB"),
    Option("max_requests", None, "calls in flight per process (running or queued); past it a "
           "new call is answered overloaded at once", "limits", type=int, check=at_least(1),
           metavar="N", shown="none"),
    Option("queue_timeout", 0.0, "a call that waited longer than this before its handler "
           "started is answered overloaded instead of run", "timeouts", check=off_or_positive,
           metavar="SECONDS", shown="0 = none"),
    # -- timeouts (seconds)
    # Thrift clients keep pooled connections open between calls: off by default.
    Option("idle_timeout", 0.0, "close a connection with no request in flight or arriving for "
           "this long", "timeouts", check=off_or_positive, metavar="SECONDS", shown="0 = never"),
    Option("request_timeout", 30.0, "close a connection whose request is still incomplete after "
           "this long (slowloris); 0: never", "timeouts", check=off_or_positive, metavar="SECONDS"),
    # The handler itself is not interrupted: Python cannot kill a thread.
    Option("handler_timeout", 0.0, "time a coroutine or @blocking handler may run before its "
           "caller gets an error", "timeouts", check=off_or_positive, metavar="SECONDS", shown="0 = none"),
    Option("graceful_timeout", 30.0, "on SIGTERM/SIGINT, time to finish in-flight requests",
           "timeouts", check=not_negative, metavar="SECONDS"),
    # A load balancer probing /healthz needs a few probe periods to stop sending new connections.
    Option("drain_delay", 0.0, "on SIGTERM/SIGINT, answer 503 on /healthz for this long while still "
           "serving and accepting, then drain", "timeouts", check=not_negative, metavar="SECONDS"),
    # Pooled clients never reconnect on their own: closing old connections between calls moves
    # them to instances added since. Jittered so that one pool's connections do not all go at once.
    Option("max_connection_age", 0.0, "close a connection older than this (jittered 10 percent each way) at a "
           "moment it has no call in flight or arriving", "timeouts", check=off_or_positive,
           metavar="SECONDS", shown="0 = never"),
    # -- threads
    # Blocking handlers mostly wait (a database, another service): the cap is about concurrency,
    # as thriftpy2's thread per connection is. Threads start on demand and retire when idle.
    Option("blocking_threads", 1024, "most threads for blocking handlers (@dracula.blocking, and plain "
           "methods that block); started on demand, retired after 30 s idle", "threads",
           check=at_least(1), metavar="N"),
    # A plain method that holds the reactor longer than this, twice, moves to the thread pool.
    Option("inline_budget", 0.0005, "a plain method whose calls hold the reactor longer than this runs "
           "in the thread pool from then on (0: plain methods always run on the reactor)", "threads",
           check=off_or_positive, metavar="SECONDS", shown="0.0005 s"),
    Option("blocking_methods", (), "methods (name or Service.name, comma-separated) that always run in the "
           "thread pool, as if marked @dracula.blocking", "threads", parse=names, metavar="NAMES",
           shown="none"),
    Option("inline_methods", (), "methods that always run on the reactor and are never moved, as if "
           "marked @dracula.inline", "threads", parse=names, metavar="NAMES", shown="none"),
    # -- observability
    Option("log_level", "info", "log level", "observability", choices=LOG_LEVELS),
    Option("access_log", False, "log one line per call: peer, service.method, outcome, latency (us)",
           "observability"),
    Option("metrics_port", None, "serve Prometheus /metrics and /healthz on this port",
           "observability", type=int, metavar="PORT", shown="off"),
    Option("unhealthy_when_shedding", False, "/healthz answers 503 while over half the calls "
           "of the last second were shed", "observability"),
    Option("metrics_host", None, "address for --metrics-port", "observability", type=str,
           metavar="HOST", shown="--host"),
]
