"""Everything a client can be told, in one frozen object built once by make_client."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from dracula.client.messages import HEADER, PROTOCOLS, TRANSPORTS


@dataclasses.dataclass(frozen=True)
class ClientOptions:
    """protocol: "binary" or "compact"; transport: "header" (THeader, the default: deadlines
    and `:drain` travel in it), "framed" or "buffered" (any Thrift server).
    timeout: seconds per call (None: none but an inherited deadline); connect_timeout: seconds.
    max_connections: per host; idle_timeout / max_age: seconds before a pooled connection is
    closed instead of reused. max_frame_size: the largest reply accepted (bytes).
    idempotent: methods safe to send twice (retried when cut off after the request was written).
    retry_percent / retry_floor: the retry budget (retries may add this fraction of calls, plus
    `retry_floor` per second); max_attempts: attempts per call at most.
    resolve_interval: seconds between DNS look-ups of the addresses given as names.
    eject_base / eject_max: a host that refuses connections or sheds is left out for eject_base
    seconds, doubling per failure up to eject_max, then probed with one call."""

    protocol: str = "binary"
    transport: str = HEADER
    timeout: float | None = None
    connect_timeout: float = 5.0
    max_connections: int = 128
    idle_timeout: float = 60.0
    max_age: float | None = None
    max_frame_size: int = 16 * 1024 * 1024
    max_container_size: int = 16 * 1024 * 1024
    idempotent: frozenset[str] = frozenset()
    retry_percent: float = 0.2
    retry_floor: float = 10.0
    max_attempts: int = 3
    resolve_interval: float = 30.0
    eject_base: float = 0.1
    eject_max: float = 10.0
    service_name: str | None = None  # multiplexed: calls go to "service_name:method"
    middleware: Sequence[Any] = ()
    metrics: Any = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError("protocol %r: binary or compact" % (self.protocol,))
        if self.transport not in TRANSPORTS:
            raise ValueError("transport %r: one of %s" % (self.transport, ", ".join(TRANSPORTS)))
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError("timeout must be positive (or None)")
        object.__setattr__(self, "idempotent", frozenset(self.idempotent))
