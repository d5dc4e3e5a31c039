"""thriftpy2's server API, served by dracula: `make_server` and `make_aio_server` take the
arguments of `thriftpy2.rpc.make_server` and `make_aio_server`, in their order and by their
names, and a thriftpy2 `TProcessor` or `TMultiplexedProcessor` is accepted wherever a service
and its handler are. Switching a thriftpy2 server is one import.

This module only translates: each thriftpy2 argument becomes a dracula option (a Config field,
docs/options.md) or is explained in one log line. docs/migrating-from-thriftpy2.md lists every
argument beside what dracula does with it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import uvloop
from thriftpy2.contrib.aio.processor import TAsyncProcessor
from thriftpy2.thrift import TMultiplexedProcessor, TProcessor

from dracula.config import Config, ConfigError
from dracula.server.lifecycle import Server
from dracula.server.listen import BindError
from dracula.server.on_connect import OnConnect
from dracula.typedefs import Handler, Services, ThriftService

log = logging.getLogger("dracula")

# thriftpy2's factories by class name (the pure, Cython and asyncio twins alike): what each one
# makes its server speak. dracula detects each connection's wire from its first bytes instead.
PROTOCOL_FACTORIES = {
    "TBinaryProtocolFactory": "binary",
    "TCyBinaryProtocolFactory": "binary",
    "TAsyncBinaryProtocolFactory": "binary",
    "TCompactProtocolFactory": "compact",
    "TAsyncCompactProtocolFactory": "compact",
    "TJSONProtocolFactory": "JSON",
    "TApacheJSONProtocolFactory": "JSON",
}
TRANSPORT_FACTORIES = {
    "TBufferedTransportFactory": "buffered",
    "TCyBufferedTransportFactory": "buffered",
    "TAsyncBufferedTransportFactory": "buffered",
    "TFramedTransportFactory": "framed",
    "TCyFramedTransportFactory": "framed",
    "TAsyncFramedTransportFactory": "framed",
}
THRIFTPY2_MAX_DEPTH = 64  # its factories' default max_depth, and dracula's
# A thriftpy2 processor's methods that dracula does not call: it decodes, calls the handler and
# encodes itself (docs/handlers.md), so a subclass's overrides of these do not run.
PROCESSOR_METHODS = ("process", "process_in", "handle_exception", "send_result", "send_exception")


def make_server(
    service: Services,
    handler: Handler = None,
    host: str | None = Config.host,
    port: int | None = Config.port,
    unix_socket: str | None = None,
    proto_factory: Any = None,
    trans_factory: Any = None,
    client_timeout: float | None = None,
    certfile: str | None = None,
    socket_family: socket.AddressFamily | None = None,
    *,
    backend: str = Config.backend,
    middleware: Sequence[object] = (),
    ssl_context: ssl.SSLContext | None = None,
    on_connect: OnConnect | None = None,
    **options: Any,
) -> Server:
    """A bound Server for one thriftpy2 service and its handler, or for several services.

    The positional arguments are `thriftpy2.rpc.make_server`'s, with its meanings:
    `unix_socket` is `uds` (a path); `client_timeout` (milliseconds) closes a connection idle that
    long (`idle_timeout`; None or 0: never, and left out: dracula's `idle_timeout`, by default
    never, where thriftpy2 closes after 3,000 ms); `certfile` (certificate and key in one PEM
    file) serves TLS; `socket_family` (socket.AF_INET or AF_INET6) picks the address family
    `host` is looked up in. `proto_factory` and `trans_factory` are not needed: every connection
    is answered in the protocol and transport it speaks; one log line says where a factory asked
    for something else. `service` may be a thriftpy2 `TProcessor` or `TMultiplexedProcessor`
    (then no handler), or `{name: (service, handler) or processor, ...}` for several services,
    multiplexed as `dracula serve --service` does, the first one also answering plain method names.

    Keyword-only: `backend` ("uv" or "thread"), `middleware` (hooks around every call, in order:
    dracula/server/middleware.py), `ssl_context` (serve TLS with it), `on_connect` (a function of
    (peer, peer_cert) that may refuse each new connection: dracula/server/on_connect.py), and any option of Config
    (max_frame_size=..., graceful_timeout=...). Port 0 binds a free port; the server's `.port`
    reports it. Call `.serve()` (blocking) or `await .serve_async()` (on your loop) to run,
    `.close()` to stop.
    """
    return _build_server(
        service,
        handler,
        host,
        port,
        unix_socket,
        proto_factory,
        trans_factory,
        client_timeout,
        certfile,
        None,
        ssl_context,
        socket_family,
        backend,
        middleware,
        on_connect,
        options,
    )


def make_aio_server(
    service: Services,
    handler: Handler = None,
    host: str | None = Config.host,
    port: int | None = Config.port,
    unix_socket: str | None = None,
    proto_factory: Any = None,
    trans_factory: Any = None,
    client_timeout: float | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
    socket_family: socket.AddressFamily | None = None,
    *,
    middleware: Sequence[object] = (),
    on_connect: OnConnect | None = None,
    **options: Any,
) -> AsyncServer:
    """`thriftpy2.rpc.make_aio_server`'s arguments, with make_server's meanings (`keyfile`: the
    certificate's key, if not in `certfile`; `ssl_context`: serve TLS with it); an AsyncServer
    whose `serve()` runs `loop` (given: that loop; else a new uvloop loop) until it is stopped.
    `middleware` and `on_connect` as make_server's. Handlers may be coroutines (awaited on the
    loop) or plain methods. The uv backend only.
    """
    backend = options.pop("backend", "uv")
    if backend != "uv":
        raise TypeError(
            "make_aio_server serves on an event loop (the uv backend), not %r: "
            "use make_server(..., backend=%r)" % (backend, backend)
        )
    server = _build_server(
        service,
        handler,
        host,
        port,
        unix_socket,
        proto_factory,
        trans_factory,
        client_timeout,
        certfile,
        keyfile,
        ssl_context,
        socket_family,
        "uv",
        middleware,
        on_connect,
        options,
    )
    return AsyncServer(server, loop)


class AsyncServer:
    """What make_aio_server returns: thriftpy2's TAsyncServer verbs over a dracula Server.

    `serve()` blocks running the loop until the loop is stopped (`loop.stop()`), the server is
    closed (`await close()`, or `server.close()` from any thread) or, in the main thread,
    SIGINT/SIGTERM; it returns once the calls in flight are answered. `init_server()` starts
    serving without running the loop (run it yourself). `server` is the dracula Server: its
    `.port`, `.host`, thread-safe `.close()`.
    """

    def __init__(self, server: Server, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.server = server
        self.loop = loop
        self.closed = False
        self._task: asyncio.Task[None] | None = None
        self._own_loop = False

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int | None:
        return self.server.port

    def serve(self) -> None:
        """Serve, running the loop, until it is stopped or the server closed; then drain."""
        try:
            task = self._start(install_signals=True)
        except BaseException:
            self._close_own_loop()
            raise
        loop = task.get_loop()

        def stop_loop(_: object) -> None:  # closed or signalled: run_forever returns
            loop.stop()

        task.add_done_callback(stop_loop)
        try:
            loop.run_forever()
        finally:
            task.remove_done_callback(stop_loop)  # it must not stop the drain below
            try:
                loop.run_until_complete(self.close())
            finally:
                self._close_own_loop()

    def init_server(self) -> None:
        """Start accepting on the loop, then return: `loop.run_forever()` serves. No signal
        handlers (a KeyboardInterrupt ends run_forever, as with thriftpy2); `await close()` stops."""
        self._start(install_signals=False)

    async def close(self) -> None:
        """Stop accepting, answer the calls in flight (up to graceful_timeout), then return."""
        if self.closed:
            return
        self.closed = True
        task = self._task
        if task is None:  # never served: only the socket to release
            self.server.close()
            self.server.sock.close()
            return
        await self.server.shutdown()
        if task.get_loop() is asyncio.get_running_loop():
            await task  # its error, if serving failed

    def _close_own_loop(self) -> None:
        if self._own_loop and self.loop is not None:
            asyncio.set_event_loop(None)
            self.loop.close()

    def _start(self, install_signals: bool) -> asyncio.Task[None]:
        if self._task is not None:
            raise RuntimeError("this server is serving already; a server serves once")
        if self.loop is None:
            self.loop = uvloop.new_event_loop()
            self._own_loop = True
            asyncio.set_event_loop(self.loop)
        task = self._task = self.loop.create_task(self.server.serve_async(install_signals=install_signals))
        self.loop.run_until_complete(self._until_started(task))
        return task

    async def _until_started(self, task: asyncio.Task[None]) -> None:
        try:
            await self.server.wait_started()
        except RuntimeError:
            await task  # stopped before it started: its own error says why
            raise


def services_of(service: Services, handler: Handler = None) -> list[tuple[str, ThriftService, Handler]]:
    """(name, service, handler) triples for a service and its handler, a thriftpy2 processor,
    or a mapping {name: (service, handler) or processor}."""
    if isinstance(service, (TProcessor, TAsyncProcessor)):
        if handler is not None:
            raise TypeError("a thriftpy2 processor holds its service and handler: pass the processor alone")
        return processor_services(service)
    if not isinstance(service, Mapping):
        if handler is None:
            raise TypeError("make_server(service, handler): the handler is missing")
        return [(service.__name__, service, handler)]
    if handler is not None:
        raise TypeError("with a mapping of services, each handler goes in the mapping")
    if not service:
        raise TypeError("the mapping of services is empty")
    triples = []
    for name, value in service.items():
        if isinstance(value, (TProcessor, TAsyncProcessor)):
            triples.append((name, *_service_and_handler(value)))
        else:
            triples.append((name, value[0], value[1]))
    return triples


def processor_services(processor: object) -> list[tuple[str, ThriftService, Handler]]:
    """A TProcessor's service under its own name; a TMultiplexedProcessor's services under the
    names they were registered with (the first also answers plain method names)."""
    if not isinstance(processor, (TProcessor, TAsyncProcessor)):
        raise TypeError("a %s is not a thriftpy2 TProcessor" % type(processor).__name__)
    if isinstance(processor, TMultiplexedProcessor):
        _warn_overrides(processor, TMultiplexedProcessor)
        if not processor.processors:
            raise TypeError("the TMultiplexedProcessor has no processors: register_processor() first")
        return [(name, *_service_and_handler(inner)) for name, inner in processor.processors.items()]
    service, handler = _service_and_handler(processor)
    return [(service.__name__, service, handler)]


def _service_and_handler(processor: TProcessor | TAsyncProcessor) -> tuple[ThriftService, Handler]:
    if isinstance(processor, TMultiplexedProcessor):
        raise TypeError("a TMultiplexedProcessor inside a TMultiplexedProcessor: register its processors directly")
    _warn_overrides(processor, TAsyncProcessor if isinstance(processor, TAsyncProcessor) else TProcessor)
    # thriftpy2 keeps them private; both processors set them in __init__.
    return processor._service, processor._handler


def _warn_overrides(processor: Any, base: type) -> None:
    overridden = [
        name for name in PROCESSOR_METHODS if getattr(type(processor), name, None) is not getattr(base, name, None)
    ]
    if overridden:
        log.warning(
            "%s overrides %s: dracula calls the handler itself and does not run them (middleware= hooks every call)",
            type(processor).__name__,
            ", ".join(overridden),
        )


def _build_server(
    service: Services,
    handler: Handler,
    host: str | None,
    port: int | None,
    unix_socket: str | None,
    proto_factory: Any,
    trans_factory: Any,
    client_timeout: float | None,
    certfile: str | None,
    keyfile: str | None,
    ssl_context: ssl.SSLContext | None,
    socket_family: socket.AddressFamily | None,
    backend: str,
    middleware: Sequence[object],
    on_connect: OnConnect | None,
    options: dict[str, Any],
) -> Server:
    if "workers" in options:
        raise TypeError(
            "workers are a `dracula serve --workers N` option: the supervisor starts "
            "each worker from the command line and runs it with serve()"
        )
    unknown = set(options) - set(Config.__dataclass_fields__)
    if unknown:
        raise TypeError("unknown option(s): %s" % ", ".join(sorted(unknown)))
    settings = dict(options)
    if unix_socket:
        if certfile or keyfile or ssl_context:
            # thriftpy2's servers serve a Unix socket in the clear, and say so.
            warnings.warn("SSL only works with host:port, not unix_socket.", stacklevel=3)
            certfile = keyfile = ssl_context = None
        _translate(settings, "uds", unix_socket, "unix_socket")
        # thriftpy2 ignores host and port beside a Unix socket (None is fine there): so does Config.
        host = Config.host if host is None else host
        port = Config.port if port is None else port
    elif host is None or port is None:
        raise ValueError("Either host/port or unix_socket must be provided.")
    else:
        host = host_in_family(host, port, socket_family)
    if client_timeout is not None:
        if client_timeout < 0:
            raise ConfigError("client_timeout must not be negative (milliseconds; None or 0: never)")
        _translate(settings, "idle_timeout", client_timeout / 1000, "client_timeout")
    _translate(settings, "ssl_certfile", certfile, "certfile")
    _translate(settings, "ssl_keyfile", keyfile, "keyfile")
    if ssl_context is not None and settings.get("ssl_certfile"):
        raise TypeError("ssl_context= and a certificate file say the same thing: give one")
    depth = getattr(proto_factory, "max_depth", THRIFTPY2_MAX_DEPTH)
    if depth != THRIFTPY2_MAX_DEPTH and _kind(proto_factory, PROTOCOL_FACTORIES):
        settings.setdefault("max_depth", depth)
    config = Config(host=host, port=port, backend=backend, **settings)
    server = Server(services_of(service, handler), config, middleware, ssl_context=ssl_context, on_connect=on_connect)
    note = factory_note(proto_factory, trans_factory)
    if note is not None:
        log.log(*note)
    return server


def _translate(settings: dict[str, Any], option: str, value: Any, argument: str) -> None:
    if value is None:
        return
    if option in settings:
        raise TypeError("%s= and %s= say the same thing: give one" % (argument, option))
    settings[option] = value


def host_in_family(host: str, port: int, family: socket.AddressFamily | None) -> str:
    """`host` as an address of `family` (thriftpy2's socket_family: the family a name is looked
    up in; "" is every address of it); unchanged without one (dracula picks the family from the
    address)."""
    if family is None:
        return host
    if family not in (socket.AF_INET, socket.AF_INET6):
        raise ValueError("socket_family must be socket.AF_INET or socket.AF_INET6 (a Unix socket: unix_socket=PATH)")
    try:
        found = socket.getaddrinfo(host or None, port, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise BindError(
            errno.EADDRNOTAVAIL,
            "cannot listen on %s:%s: no %s address: %s" % (host, port, socket.AddressFamily(family).name, e.strerror),
        ) from None
    return str(found[0][4][0])


def _kind(factory: Any, table: Mapping[str, str]) -> str | None:
    """What a thriftpy2 factory (or a subclass of one) makes its server speak; None for others."""
    for cls in type(factory).__mro__:
        if cls.__module__.startswith("thriftpy2.") and cls.__name__ in table:
            return table[cls.__name__]
    return None


def factory_note(proto_factory: Any, trans_factory: Any) -> tuple[int, str] | None:
    """(level, line) saying where dracula answers otherwise than a thriftpy2 server built with
    these factories would; None where it answers the same (binary, buffered: the defaults)."""
    notes: list[tuple[int, str]] = []
    if proto_factory is not None:
        notes.extend(_protocol_notes(proto_factory))
    if trans_factory is not None:
        notes.extend(_transport_notes(trans_factory))
    if not notes:
        return None
    return (
        max(level for level, _ in notes),
        "dracula answers each connection in the protocol and transport it speaks, whatever "
        "the factories: " + "; ".join(text for _, text in notes),
    )


def _protocol_notes(factory: Any) -> list[tuple[int, str]]:
    name = "proto_factory=%s" % type(factory).__name__
    kind = _kind(factory, PROTOCOL_FACTORIES)
    if kind is None:
        return [
            (
                logging.WARNING,
                "%s is not one of thriftpy2's protocols: dracula does not use it (it serves binary and compact)" % name,
            )
        ]
    if kind == "JSON":
        return [
            (
                logging.WARNING,
                "%s: dracula does not speak JSON, so its clients are refused "
                "(binary and compact ones are served)" % name,
            )
        ]
    notes = []
    if kind == "compact":
        notes.append(
            (
                logging.INFO,
                "%s: compact clients are answered in compact, binary ones in "
                "binary too (thriftpy2 answered compact only)" % name,
            )
        )
    if not getattr(factory, "decode_response", True):
        notes.append(
            (
                logging.WARNING,
                "%s(decode_response=False): handlers get string fields as str, "
                "not bytes (declare a field `binary` to get bytes)" % name,
            )
        )
    if getattr(factory, "strict_decode", False):
        notes.append(
            (
                logging.WARNING,
                "%s(strict_decode=True): a string field that is not UTF-8 "
                "reaches the handler as bytes instead of failing the call" % name,
            )
        )
    if kind == "binary" and not getattr(factory, "strict_write", True):
        notes.append(
            (logging.INFO, "%s(strict_write=False): replies are strict binary, which every client reads" % name)
        )
    return notes


def _transport_notes(factory: Any) -> list[tuple[int, str]]:
    name = "trans_factory=%s" % type(factory).__name__
    kind = _kind(factory, TRANSPORT_FACTORIES)
    if kind is None:
        return [
            (
                logging.WARNING,
                "%s is not one of thriftpy2's buffered or framed transports: dracula "
                "does not use it (it serves framed, unframed and THeader connections)" % name,
            )
        ]
    if kind == "framed":
        return [
            (
                logging.INFO,
                "%s: framed clients are answered framed, unframed ones unframed too "
                "(thriftpy2 answered framed only)" % name,
            )
        ]
    return []
