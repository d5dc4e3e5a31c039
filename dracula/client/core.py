"""What the asyncio and blocking clients share: the service's methods, the hosts and their
balancer, the retry budget, deadlines and hooks. Neither does I/O here; each client's call loop
is the same steps (client_call.md in the docs): pick a host, take a connection, write, read,
decode, then either return, retry (when retry.py says it is safe and the budget allows), or raise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from dracula.client import compiled
from dracula.client.addresses import Address, Endpoint, needs_lookup, parse_all
from dracula.client.balancer import Balancer, Host
from dracula.client.deadline import _UNSET, call_deadline, request_headers
from dracula.client.errors import ConnectFailed, NotSent, is_shed
from dracula.client.hooks import ClientCall, Hooks
from dracula.client.messages import DRAIN_HEADER, HEADER, Method, Reply, Wire, methods_of
from dracula.client.options import ClientOptions
from dracula.client.retry import RetryBudget, retryable

P = TypeVar("P")


class ClientCore(Generic[P]):
    def __init__(
        self,
        service: Any,
        addresses: Address | Sequence[Address],
        options: ClientOptions,
        new_pool: Callable[[Endpoint], P],
    ) -> None:
        self.service = service
        self.options = options
        self.methods: dict[str, Method] = methods_of(service, options.service_name)
        self.configured = parse_all(addresses)
        self.lookup = needs_lookup(self.configured)
        self.next_lookup = 0.0 if self.lookup else float("inf")
        # Names are resolved on first use (make_client returns at once); literals now.
        first = [] if self.lookup else self.configured
        self.balancer: Balancer[P] = Balancer(first, new_pool, options.eject_base, options.eject_max)
        self.budget = RetryBudget(options.retry_percent, options.retry_floor)
        self.hooks = Hooks(options.middleware, options.metrics)
        self.closed = False

    def new_wire(self) -> Wire:
        o = self.options
        return compiled.Wire(o.transport, o.protocol, o.max_frame_size, o.max_container_size)

    def method(self, name: str) -> Method:
        try:
            return self.methods[name]
        except KeyError:
            raise AttributeError("%s has no method %r" % (self.service.__name__, name)) from None

    def begin(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float | None) -> ClientCall:
        """The call's record, its deadline fixed now; CallTimeout if the served call it is made
        from has no time left."""
        if self.closed:
            raise NotSent("the client is closed")
        method = self.method(name)
        call = ClientCall(
            method,
            method.make_args(args, kwargs),
            call_deadline(self.options.timeout if timeout is _UNSET else timeout),
        )
        self.budget.deposit()
        return call

    def request_headers(self, call: ClientCall, remaining: float | None) -> dict[str, str] | None:
        if self.options.transport != HEADER:
            return None
        return request_headers(call.headers, remaining)

    def retry(self, call: ClientCall, host: Host[P], error: BaseException) -> bool:
        """After a failed attempt: True to try again (another host where there is one)."""
        if isinstance(error, ConnectFailed) or is_shed(error):
            self.balancer.eject(host)
        call.tried.append(host)
        if call.attempts >= self.options.max_attempts:
            return False
        if not retryable(error, call.method.name in self.options.idempotent):
            return False
        if call.deadline is not None and call.deadline <= time.monotonic():
            return False
        return self.budget.withdraw()

    def succeeded(self, host: Host[P]) -> None:
        self.balancer.succeeded(host)

    def answer(self, host: Host[P], conn: Any, reply: Reply) -> Any:
        """The value a reply carries (or the exception it raises), with the host's health noted:
        both clients end a call here. A reply announcing the connection's end (`:drain`)
        retires the connection."""
        if DRAIN_HEADER in reply.headers:  # reply.drain
            conn.broken = True  # announced closed: used for nothing more
        try:
            value = conn.wire.decode(reply)
        except Exception as e:
            if not is_shed(e):
                self.succeeded(host)  # it answered: a declared exception is a healthy host
            raise
        if host.failures:  # succeeded(host), for the usual healthy host without the call
            self.balancer.succeeded(host)
        return value

    def lookup_due(self) -> bool:
        return time.monotonic() >= self.next_lookup

    def looked_up(self, endpoints: list[Endpoint] | None) -> list[Host[P]]:
        """Apply a DNS answer (None: the look-up failed; keep the hosts, try again soon)."""
        now = time.monotonic()
        if endpoints is None:
            self.next_lookup = now + min(1.0, self.options.resolve_interval)
            if not self.balancer.hosts:
                raise NotSent("no address of %s resolves" % ", ".join("%s:%d" % e for e in self.configured))
            return []
        self.next_lookup = now + self.options.resolve_interval
        return self.balancer.update(endpoints)
