"""Every server option, declared once: its name, type and default as a field of `Options`, and
its help, check and CLI shape as the `Option` in that field's annotation.

Config (config.py) is Options plus two internal fields; `dracula serve`'s flags and their --help
come from OPTIONS, the declarations read back as one Option each; the manual's tables
(docs/options.md, docs/limits.md) are tested against it (tests/test_options.py). A new option is
one field here and one row there.

Why a dataclass field with its Option in `Annotated` metadata (as typer declares its CLI
options): a type checker reads Options as the ordinary dataclass it is, so Config's fields, their
types and defaults are checked from the very line that declares them, with no stub kept beside
it by hand and no checker plugin; the Option metadata is read at import by `declared_options`.
The annotations are evaluated here (no `from __future__ import annotations`), so each Option is
built once, at import, like any other expression.
"""

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any

BACKENDS = ("uv", "thread")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
MIB = 1024 * 1024

Check = Callable[[Any], str | None]  # value -> what is wrong with it, or None


def octal(text: str) -> int:
    return int(text, 8)


def at_least(low: float) -> Check:
    return lambda value: None if value >= low else "must be at least %s" % low


def names(text: str) -> tuple[str, ...]:
    """A comma-separated list of method names."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _origin(text: str) -> bool:
    """`*`, or an origin as a browser sends it: scheme://host[:port], no path."""
    scheme, sep, rest = text.partition("://")
    return text == "*" or (bool(sep) and scheme in ("http", "https") and bool(rest) and "/" not in rest.rstrip("/"))


def not_negative(value: float) -> str | None:
    return None if value >= 0 else "must not be negative"


def off_or_positive(value: float) -> str | None:
    return None if value >= 0 else "must not be negative (0 turns it off)"


@dataclasses.dataclass(frozen=True)
class Option:
    """An option's help, check and CLI shape, written in its field's annotation; the last three
    fields are filled in from the field itself (declared_options)."""

    help: str
    group: str  # the --help section
    check: Check | None = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None  # CLI text -> value; None: `value_type`
    shown: str | None = None  # the default as --help and the docs write it
    repeat: bool = False  # the flag may be given several times; the value is a tuple of them all
    name: str = ""  # the Config field; the CLI flag is --name-with-dashes
    default: Any = None
    value_type: type = object  # of the value, None aside: int for `int | None`, tuple for `tuple[str, ...]`

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

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

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value` for this option, or None. None is always allowed where
        it is the default (it means "derive it")."""
        if value is None and self.default is None:
            return None
        if self.choices is not None and value not in self.choices:
            return "must be one of %s, not %r" % ("/".join(self.choices), value)
        return self.check(value) if self.check else None


def declared_options(cls: type) -> list[Option]:
    """The Option of every field of the dataclass `cls`, in declaration order, completed with
    the field's name, default and type."""
    hints = typing.get_type_hints(cls, include_extras=True)
    options = []
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        found = [item for item in typing.get_args(hint)[1:] if isinstance(item, Option)]
        if typing.get_origin(hint) is not Annotated or len(found) != 1:
            raise TypeError("option %s: annotate it Annotated[type, Option(...)]" % field.name)
        value_type = typing.get_args(hint)[0]
        if typing.get_origin(value_type) in (types.UnionType, typing.Union):  # `X | None`: X
            value_type = next(t for t in typing.get_args(value_type) if t is not type(None))
        value_type = typing.get_origin(value_type) or value_type  # tuple[str, ...]: tuple
        options.append(dataclasses.replace(found[0], name=field.name, default=field.default, value_type=value_type))
    return options


@dataclasses.dataclass
class Options:
    # -- listener
    host: Annotated[str, Option("address to listen on", "listener")] = "127.0.0.1"
    port: Annotated[
        int,
        Option(
            "TCP port; 0 binds a free one (the log line names it)",
            "listener",
            check=lambda v: None if 0 <= v <= 65535 else "must be 0..65535, not %r" % v,
        ),
    ] = 9090
    backend: Annotated[
        str, Option("uv (reactor) or thread (one thread per connection)", "listener", choices=BACKENDS)
    ] = "uv"
    # The kernel caps this at net.core.somaxconn; asyncio's default of 100 drops SYNs in storms.
    backlog: Annotated[int, Option("listen queue length", "listener", check=at_least(1), metavar="N")] = 4096
    uds: Annotated[
        str | None, Option("listen on this Unix domain socket instead of host:port", "listener", metavar="PATH")
    ] = None
    uds_mode: Annotated[
        int, Option("file mode of the --uds socket", "listener", parse=octal, metavar="OCTAL", shown="660")
    ] = 0o660
    # -- TLS
    ssl_certfile: Annotated[
        str | None, Option("serve TLS with this certificate chain (PEM)", "TLS", metavar="PATH")
    ] = None
    ssl_keyfile: Annotated[
        str | None, Option("its private key (PEM), if not in the certfile", "TLS", metavar="PATH")
    ] = None
    ssl_ca_certs: Annotated[
        str | None, Option("require client certificates signed by these CAs (PEM)", "TLS", metavar="PATH")
    ] = None
    # -- limits: what one client may make the server hold
    # Larger declared sizes close the connection before a byte of the body is buffered.
    max_frame_size: Annotated[
        int,
        Option(
            "largest frame (framed) or message (unframed), bytes",
            "limits",
            metavar="BYTES",
            shown="16 MiB",
            check=lambda v: None if 16 <= v <= 2**31 - 1 else "must be 16..2147483647 bytes",
        ),
    ] = 16 * MIB
    max_string_size: Annotated[
        int | None,
        Option(
            "largest string/binary value, bytes", "limits", check=not_negative, metavar="BYTES", shown="the frame size"
        ),
    ] = None
    max_container_size: Annotated[
        int,
        Option(
            "most elements one container may declare", "limits", check=not_negative, metavar="N", shown="10,000,000"
        ),
    ] = 10_000_000
    # The arguments struct counts as 1; thriftpy2's codec refuses past 64 too.
    max_depth: Annotated[
        int,
        Option(
            "deepest nesting of structs and containers",
            "limits",
            metavar="N",
            check=lambda v: None if 1 <= v <= 64 else "must be 1..64 (thriftpy2's codec stops at 64)",
        ),
    ] = 64
    # Past it a new connection is accepted and closed at once: its client fails fast instead of
    # waiting in the backlog.
    max_connections: Annotated[
        int | None,
        Option(
            "open connections; past it new ones are closed at once",
            "limits",
            check=at_least(1),
            metavar="N",
            shown="the fd limit less 64",
        ),
    ] = None
    max_connections_per_peer: Annotated[
        int | None,
        Option(
            "open connections from one client address; past it its new ones are closed at once",
            "limits",
            check=at_least(1),
            metavar="N",
            shown="none",
        ),
    ] = None
    write_high_water: Annotated[
        int,
        Option(
            "unsent reply bytes of one connection past which its reading pauses",
            "limits",
            metavar="BYTES",
            shown="1 MiB",
        ),
    ] = 1 * MIB
    write_low_water: Annotated[
        int, Option("unsent reply bytes below which reading resumes", "limits", metavar="BYTES", shown="256 KiB")
    ] = 256 * 1024
    # -- overload: what all clients together may make one process hold (docs/overload.md)
    # 256 MiB: 16 messages of the default largest frame in flight at once; small requests fit
    # a connection's first 8 KiB buffer and never draw on it.
    max_buffer_memory: Annotated[
        int,
        Option(
            "bytes all connections of a process may hold in partly received messages and unread replies; "
            "past it large uploads wait and non-reading clients are closed (0: no limit)",
            "limits",
            check=not_negative,
            metavar="BYTES",
            shown="256 MiB",
        ),
    ] = 256 * MIB
    max_requests: Annotated[
        int | None,
        Option(
            "calls in flight per process (running or queued); past it a new call is answered overloaded at once",
            "limits",
            check=at_least(1),
            metavar="N",
            shown="none",
        ),
    ] = None
    queue_timeout: Annotated[
        float,
        Option(
            "a call that waited longer than this before its handler started is answered overloaded instead of run",
            "timeouts",
            check=off_or_positive,
            metavar="SECONDS",
            shown="0 = none",
        ),
    ] = 0.0
    # -- timeouts (seconds)
    # Thrift clients keep pooled connections open between calls: off by default.
    idle_timeout: Annotated[
        float,
        Option(
            "close a connection with no request in flight or arriving for this long",
            "timeouts",
            check=off_or_positive,
            metavar="SECONDS",
            shown="0 = never",
        ),
    ] = 0.0
    request_timeout: Annotated[
        float,
        Option(
            "close a connection whose request is still incomplete after this long (slowloris); 0: never",
            "timeouts",
            check=off_or_positive,
            metavar="SECONDS",
        ),
    ] = 30.0
    # The handler itself is not interrupted: Python cannot kill a thread.
    handler_timeout: Annotated[
        float,
        Option(
            "time a coroutine or @blocking handler may run before its caller gets an error",
            "timeouts",
            check=off_or_positive,
            metavar="SECONDS",
            shown="0 = none",
        ),
    ] = 0.0
    graceful_timeout: Annotated[
        float,
        Option(
            "on SIGTERM/SIGINT, time to finish in-flight requests", "timeouts", check=not_negative, metavar="SECONDS"
        ),
    ] = 30.0
    # A load balancer probing /healthz needs a few probe periods to stop sending new connections.
    drain_delay: Annotated[
        float,
        Option(
            "on SIGTERM/SIGINT, answer 503 on /healthz for this long while still serving and accepting, then drain",
            "timeouts",
            check=not_negative,
            metavar="SECONDS",
        ),
    ] = 0.0
    # Pooled clients never reconnect on their own: closing old connections between calls moves
    # them to instances added since. Jittered so that one pool's connections do not all go at once.
    max_connection_age: Annotated[
        float,
        Option(
            "close a connection older than this (jittered 10 percent each way) at a moment it has no call in "
            "flight or arriving",
            "timeouts",
            check=off_or_positive,
            metavar="SECONDS",
            shown="0 = never",
        ),
    ] = 0.0
    # A THeader reply carrying `:drain` tells the client (Envoy, dracula's client) to stop using
    # the connection; closing only after it had time to do so closes no connection under a request.
    drain_grace: Annotated[
        float,
        Option(
            "when a THeader connection is to go (--max-connection-age, the drain), its replies say `:drain` "
            "and it is closed once idle after this long, if the client has not closed it first",
            "timeouts",
            check=not_negative,
            metavar="SECONDS",
        ),
    ] = 1.0
    # -- threads
    # Blocking handlers mostly wait (a database, another service): the cap is about concurrency,
    # as thriftpy2's thread per connection is. Threads start on demand and retire when idle.
    blocking_threads: Annotated[
        int,
        Option(
            "most threads for blocking handlers (@dracula.blocking, and plain methods that block); started on "
            "demand, retired after 30 s idle",
            "threads",
            check=at_least(1),
            metavar="N",
        ),
    ] = 1024
    # A plain method that holds the reactor longer than this, twice, moves to the thread pool.
    inline_budget: Annotated[
        float,
        Option(
            "a plain method whose calls hold the reactor longer than this runs in the thread pool from then on "
            "(0: plain methods always run on the reactor)",
            "threads",
            check=off_or_positive,
            metavar="SECONDS",
            shown="0.0005 s",
        ),
    ] = 0.0005
    blocking_methods: Annotated[
        tuple[str, ...],
        Option(
            "methods (name or Service.name, comma-separated) that always run in the thread pool, as if marked "
            "@dracula.blocking",
            "threads",
            parse=names,
            metavar="NAMES",
            shown="none",
        ),
    ] = ()
    inline_methods: Annotated[
        tuple[str, ...],
        Option(
            "methods that always run on the reactor and are never moved, as if marked @dracula.inline",
            "threads",
            parse=names,
            metavar="NAMES",
            shown="none",
        ),
    ] = ()
    # -- observability
    log_level: Annotated[str, Option("log level", "observability", choices=LOG_LEVELS)] = "info"
    access_log: Annotated[
        bool, Option("log one line per call: peer, service.method, outcome, latency (us)", "observability")
    ] = False
    metrics_port: Annotated[
        int | None,
        Option("serve Prometheus /metrics and /healthz on this port", "observability", metavar="PORT", shown="off"),
    ] = None
    health_method: Annotated[
        str | None,
        Option(
            "answer calls of this method name on the serving port (for Envoy's Thrift health checker, "
            "or fb303's getStatus) with ALIVE (2) while healthy, LOADSHEDDING while draining or shedding",
            "observability",
            check=lambda v: None if v is None or v.isidentifier() else "must be a Thrift method name",
            metavar="NAME",
            shown="off",
        ),
    ] = None
    unhealthy_when_shedding: Annotated[
        bool, Option("/healthz answers 503 while over half the calls of the last second were shed", "observability")
    ] = False
    # -- HTTP
    cors_origin: Annotated[
        tuple[str, ...],
        Option(
            "web page origin (scheme://host[:port]) allowed to call over HTTP from a browser (CORS); repeatable, "
            "or * for any",
            "HTTP",
            check=lambda v: next(
                ("%r is not an origin (scheme://host[:port]) or *" % o for o in v if not _origin(o)), None
            ),
            metavar="ORIGIN",
            shown="none",
            repeat=True,
        ),
    ] = ()
    metrics_host: Annotated[
        str | None, Option("address for --metrics-port", "observability", metavar="HOST", shown="--host")
    ] = None


OPTIONS = declared_options(Options)
