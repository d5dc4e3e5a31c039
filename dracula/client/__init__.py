"""dracula's Thrift client: `dracula.make_client` (blocking, thread-safe) and
`dracula.make_aio_client` (asyncio), pooled, balanced, deadline-aware, retrying only what is safe.

One concern per module: messages (request bytes, replies split, vetted and decoded), the two
connections (aio_connection, sync_connection), pool, balancer, retry (what is safe, the budget),
deadline, addresses (parsing, DNS), hooks (middleware), metrics, options, core (what both clients
share), and the clients (aio_client, sync_client). docs/client.md is the manual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dracula.client.addresses import Address
from dracula.client.aio_client import AioClient
from dracula.client.errors import BadReply, CallTimeout, ClientError, ConnectFailed, CutOff, NotSent
from dracula.client.hooks import ClientCall
from dracula.client.metrics import PrometheusMetrics
from dracula.client.options import ClientOptions
from dracula.client.sync_client import SyncClient


def make_client(service: Any, addresses: Address | Sequence[Address], **options: Any) -> SyncClient:
    """A blocking, thread-safe client of `service` (a thriftpy2 service object) calling
    `addresses`: one "host:port" or (host, port), or a list of them; names are looked up again
    periodically. Returns at once: connections are made on first use. `options`: ClientOptions'
    fields (protocol, transport, timeout, max_connections, idempotent...)."""
    return SyncClient(service, addresses, ClientOptions(**options))


def make_aio_client(service: Any, addresses: Address | Sequence[Address], **options: Any) -> AioClient:
    """An asyncio client of `service` (a thriftpy2 service object) calling `addresses`: one
    "host:port" or (host, port), or a list of them; names are looked up again periodically.
    Returns at once: connections are made on first use. `options`: ClientOptions' fields."""
    return AioClient(service, addresses, ClientOptions(**options))


__all__ = [
    "make_client",
    "make_aio_client",
    "SyncClient",
    "AioClient",
    "ClientOptions",
    "ClientCall",
    "PrometheusMetrics",
    "ClientError",
    "NotSent",
    "ConnectFailed",
    "CutOff",
    "BadReply",
    "CallTimeout",
]
