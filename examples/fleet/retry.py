"""Retry once on a connection the server closed while idle: the idiom for pooled clients.

dracula closes a client connection only between calls (a drain on SIGTERM, --max-connection-age,
--idle-timeout, an eviction from a full table): never with a call in flight or partly received.
So when a call on a connection fails because the server had closed it (the client sees end of
file, a reset or a broken pipe, and no byte of a reply), the server never read that call, and
sending it once more on a new connection is safe, even for calls that are not idempotent. A
time-out is different: the call may have run, so it is not retried here.

    client = RetryingThriftpy2(pingpong_thrift.PingService, "127.0.0.1", 9090)
    client.ping()       # reconnects and resends once if the pooled connection was closed

    client = RetryingApache(lambda: open_generated_client("127.0.0.1", 9090))
    client.call(lambda c: c.ping())
"""

from __future__ import annotations

from thriftpy2.rpc import make_client
from thriftpy2.transport import TTransportException as Thriftpy2TransportError

# What a connection closed by the server looks like from the client side.
CLOSED_ERRNO_ERRORS = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def thriftpy2_closed(error: BaseException) -> bool:
    """thriftpy2: END_OF_FILE ("TSocket read 0 bytes") on the reply, or the socket's own reset
    and broken-pipe errors, which thriftpy2 lets through unwrapped."""
    if isinstance(error, Thriftpy2TransportError):
        return error.type == Thriftpy2TransportError.END_OF_FILE
    return isinstance(error, CLOSED_ERRNO_ERRORS)


def apache_closed(error: BaseException) -> bool:
    """Apache Thrift: END_OF_FILE ("TSocket read 0 bytes") on the reply; a reset or broken pipe
    comes wrapped as TTransportException(UNKNOWN, "unexpected exception") with the socket's
    error in `inner`; a time-out is TIMED_OUT (not retried)."""
    from thrift.transport.TTransport import TTransportException

    if isinstance(error, TTransportException):
        return error.type == TTransportException.END_OF_FILE or isinstance(
            getattr(error, "inner", None), CLOSED_ERRNO_ERRORS
        )
    return isinstance(error, CLOSED_ERRNO_ERRORS)


class RetryingThriftpy2:
    """A thriftpy2 client (make_client's arguments) that keeps one connection and, when a call
    fails because the server closed it, reconnects and sends that call once more. thriftpy2's
    client does not reconnect on its own: without this, every later call fails too."""

    def __init__(self, service, host, port, **options):
        self._connect = lambda: make_client(service, host, port, **options)
        self._client = None
        self.retries = 0  # calls sent a second time

    def __getattr__(self, method):
        def call(*args, **kwargs):
            return self.call(lambda client: getattr(client, method)(*args, **kwargs))

        return call

    def call(self, invoke):
        if self._client is None:
            self._client = self._connect()
        try:
            return invoke(self._client)
        except Exception as error:
            if not thriftpy2_closed(error):
                raise
        self.close()
        self.retries += 1
        self._client = self._connect()
        return invoke(self._client)

    def close(self):
        if self._client is not None:
            self._client.close()
            self._client = None


class RetryingApache:
    """The same for Apache Thrift's Python clients: `connect()` returns (client, transport) with
    the transport open, e.g. a generated `Client(TBinaryProtocol(TBufferedTransport(TSocket)))`."""

    def __init__(self, connect):
        self._connect = connect
        self._client = self._transport = None
        self.retries = 0

    def call(self, invoke):
        if self._client is None:
            self._client, self._transport = self._connect()
        try:
            return invoke(self._client)
        except Exception as error:
            if not apache_closed(error):
                raise
        self.close()
        self.retries += 1
        self._client, self._transport = self._connect()
        return invoke(self._client)

    def close(self):
        if self._transport is not None:
            self._transport.close()
            self._client = self._transport = None
