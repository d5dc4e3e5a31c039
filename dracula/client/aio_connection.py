"""One asyncio connection to one host, carrying one call at a time (the pool's checkout makes it
so): the request is written, the reply's bytes are fed to the connection's Wire as they arrive,
and the call's future gets the vetted Reply or the reason there is none.

Anything but a clean reply leaves the connection unusable (the pool closes it): a timeout or a
cancelled call (its reply may still come), a bad reply, bytes nobody asked for, an end.
"""

from __future__ import annotations

import asyncio
import select
import time
from typing import cast

from dracula.client.addresses import Endpoint
from dracula.client.errors import BadReply, CallTimeout, ClientError, ConnectFailed, CutOff, NotSent
from dracula.client.messages import Reply, Wire

# A connection idle this long is polled before it is handed out: the server may have closed it
# (a draining dracula closes a connection no reply has told to go once it has been idle for
# --drain-grace) before this loop has read the end, and a request written into it would be cut
# off. Polling is one system call; below this, the loop has surely seen an end that came.
POLL_AFTER_IDLE = 0.05


class AioConnection(asyncio.Protocol):
    def __init__(self, wire: Wire, endpoint: Endpoint) -> None:
        self.wire = wire
        self.endpoint = endpoint
        self.transport: asyncio.Transport | None = None
        self.opened_at = self.last_used = time.monotonic()
        self.broken = False  # ended, or not fit for another call
        self.seqid = 0
        self._waiter: asyncio.Future[Reply] | None = None

    @classmethod
    async def open(cls, endpoint: Endpoint, wire: Wire, timeout: float | None) -> AioConnection:
        """A connected connection; NotSent when it cannot be made within `timeout`."""
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: cls(wire, endpoint), endpoint[0], endpoint[1]), timeout
            )
        except asyncio.TimeoutError:
            raise ConnectFailed("connecting to %s:%d timed out" % endpoint) from None
        except OSError as e:
            raise ConnectFailed("cannot connect to %s:%d: %s" % (endpoint[0], endpoint[1], e.strerror or e)) from None
        return conn

    @property
    def usable(self) -> bool:
        if self.broken:
            return False
        if time.monotonic() - self.last_used >= POLL_AFTER_IDLE and self._ended_while_idle():
            self.broken = True
            return False
        return True

    def _ended_while_idle(self) -> bool:
        """The server closed it (or sent bytes nobody asked for) and this loop has not read it
        yet: its socket is readable, or the transport is already closing."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return True
        poller = select.poll()
        poller.register(transport.get_extra_info("socket").fileno(), select.POLLIN)
        return bool(poller.poll(0))

    def next_seqid(self) -> int:
        self.seqid = (self.seqid + 1) & 0x7FFFFFFF
        return self.seqid

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            self._fail(BadReply("%d bytes arrived on %s:%d with no call waiting" % (len(data), *self.endpoint)))
            return
        try:
            reply = self.wire.feed(data)
        except BadReply as e:
            self._fail(e)
            return
        if reply is not None:
            waiter.set_result(reply)

    def eof_received(self) -> bool:
        return False  # close

    def connection_lost(self, exc: Exception | None) -> None:
        self.broken = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if self.wire.received:
                waiter.set_exception(BadReply("%s:%d closed the connection in the middle of a reply" % self.endpoint))
            else:
                waiter.set_exception(
                    CutOff(
                        "%s:%d closed the connection after the request was written, before any reply" % self.endpoint
                    )
                )

    def _fail(self, error: ClientError) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.close()

    def send(self, data: bytes) -> None:
        """Write a request no reply is expected to (oneway)."""
        transport = self.transport
        if self.broken or transport is None or transport.is_closing():
            self.broken = True
            raise NotSent("the connection to %s:%d had ended" % self.endpoint)
        transport.write(data)

    async def call(self, data: bytes, timeout: float | None) -> Reply:
        """Write the request, wait for its reply. CallTimeout after `timeout` seconds."""
        self.send(data)
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, self._timed_out, timeout) if timeout is not None else None
        try:
            reply: Reply = await waiter
            return reply
        except BaseException:
            self.close()  # a late reply must reach no one
            raise
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _timed_out(self, timeout: float) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(CallTimeout("no reply from %s:%d within %.3fs" % (*self.endpoint, timeout)))

    def close(self) -> None:
        self.broken = True
        if self.transport is not None:
            self.transport.close()
