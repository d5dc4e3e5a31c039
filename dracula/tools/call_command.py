"""`dracula call IDL_PATH:SERVICE METHOD [ARGS_JSON]`: one request to a running server, the
reply printed as JSON (mapping in dracula/tools/jsonmap.py and docs/cli-tools.md).

Exit status:
  0  the method returned (its value is printed; void and oneway print null)
  1  it raised: a declared exception ({"exception": ..., "fields": ...}) or a
     TApplicationException ({"application_exception": ..., "message": ...}), printed on stdout
  2  nothing was sent: bad IDL/service/method, or ARGS_JSON that does not fit the arguments
  3  no usable reply: connection refused, time-out, connection closed, undecodable reply
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from thriftpy2.protocol import TBinaryProtocolFactory, TCompactProtocolFactory, TMultiplexedProtocol
from thriftpy2.protocol.exc import TProtocolException
from thriftpy2.thrift import TApplicationException, TMessageType
from thriftpy2.transport import TBufferedTransportFactory, TFramedTransportFactory, TSocket, TTransportException

from dracula.config import Config
from dracula.loader import LoadError, load_service
from dracula.tools import jsonmap
from dracula.tools.jsonmap import JsonMapError
from dracula.tools.theader_transport import header_protocol
from dracula.typedefs import Json, ThriftProtocol, ThriftService, ThriftStruct, ThriftTransport
from dracula.wire.errors import AppError, app_error_name

EXIT_OK, EXIT_RAISED, EXIT_USAGE, EXIT_CONNECTION = 0, 1, 2, 3

TRANSPORTS: dict[str, type[TBufferedTransportFactory] | type[TFramedTransportFactory]] = {
    "buffered": TBufferedTransportFactory,
    "framed": TFramedTransportFactory,
}
HEADER = "header"  # THeader, with --protocol inside: dracula/tools/theader_transport.py
TRANSPORT_NAMES = (*TRANSPORTS, HEADER)
PROTOCOLS = {"binary": TBinaryProtocolFactory, "compact": TCompactProtocolFactory}


class CallFailed(Exception):
    """Stop with this exit status after printing `message` on stderr."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Target:
    host: str = Config.host  # the server's defaults
    port: int = Config.port
    transport: str = "buffered"
    protocol: str = "binary"
    timeout: float = 10.0  # seconds, for connecting and for each read; 0: none
    service_name: str | None = None  # wrap in TMultiplexedProtocol under this name
    headers: dict[str, str] = field(default_factory=dict)  # THeader request headers (transport "header")


def parse_args_json(text: str | None) -> Json:
    """ARGS_JSON text (None → {}) → the decoded JSON; CallFailed(2) if it is not JSON."""
    if text is None or not text.strip():
        return {}
    try:
        value: Json = json.loads(text)
        return value
    except ValueError as e:
        raise CallFailed(EXIT_USAGE, "ARGS_JSON is not valid JSON: %s" % e) from None


def prepare(service_spec: str, method: str, args_value: Json) -> tuple[ThriftService, ThriftStruct]:
    """Everything that can fail before connecting: → (service class, `_args` instance)."""
    try:
        name, service = load_service(service_spec)
    except LoadError as e:
        raise CallFailed(EXIT_USAGE, str(e)) from None
    if method not in service.thrift_services:
        raise CallFailed(
            EXIT_USAGE, "%s has no method %r (methods: %s)" % (name, method, ", ".join(service.thrift_services))
        )
    try:
        args = jsonmap.args_from_json(service, method, args_value)
    except JsonMapError as e:
        where = "argument %s" % e if e.path else "arguments: %s" % e.message
        raise CallFailed(EXIT_USAGE, "bad " + where) from None
    return service, args


def connect(target: Target) -> tuple[ThriftTransport, ThriftProtocol]:
    """An open protocol to the server; CallFailed(3) if it cannot be reached."""
    family = socket.AF_INET6 if ":" in target.host else socket.AF_INET
    timeout_ms = target.timeout * 1000 if target.timeout and target.timeout > 0 else None
    sock = TSocket(target.host, target.port, socket_family=family, socket_timeout=timeout_ms)
    protocol = None
    if target.transport == HEADER:
        protocol = header_protocol(sock, target.protocol, target.headers)
        transport = protocol.trans
    else:
        # thriftpy2's, unannotated: untyped_calls_exclude does not reach a call through a union type.
        transport = TRANSPORTS[target.transport]().get_transport(sock)  # type: ignore[no-untyped-call]
    try:
        transport.open()
    except (TTransportException, OSError) as e:
        raise CallFailed(
            EXIT_CONNECTION, "cannot connect to %s:%s: %s" % (target.host, target.port, _reason(e))
        ) from None
    if protocol is None:
        protocol = PROTOCOLS[target.protocol]().get_protocol(transport)
    if target.service_name:
        protocol = TMultiplexedProtocol(protocol, target.service_name)
    return transport, protocol


def invoke(protocol: ThriftProtocol, service: ThriftService, method: str, args: ThriftStruct) -> tuple[str, Any]:
    """Send one call and read its reply → (kind, payload), kind being "return" (payload: the
    value, None for void/oneway), "raised" (the declared exception instance) or "application"
    (a TApplicationException). Raises what the transport/protocol raise."""
    result_cls = getattr(service, method + "_result")
    oneway = bool(getattr(result_cls, "oneway", False))
    protocol.write_message_begin(method, TMessageType.ONEWAY if oneway else TMessageType.CALL, 0)
    args.write(protocol)
    protocol.write_message_end()
    protocol.trans.flush()
    if oneway:
        return "return", None

    _, mtype, _ = protocol.read_message_begin()
    if mtype == TMessageType.EXCEPTION:
        error = TApplicationException()
        error.read(protocol)
        protocol.read_message_end()
        return "application", error
    if mtype != TMessageType.REPLY:
        raise TProtocolException(message="reply has message type %d, not REPLY or EXCEPTION" % mtype)
    result = result_cls()
    result.read(protocol)
    protocol.read_message_end()

    success = getattr(result, "success", None)
    if success is not None:
        return "return", success
    for fid, spec in sorted(result.thrift_spec.items()):
        raised = getattr(result, spec[1], None) if fid != 0 else None
        if raised is not None:
            return "raised", raised
    if 0 not in result.thrift_spec:
        return "return", None  # void
    return "application", TApplicationException(AppError.MISSING_RESULT, "%s returned no result" % method)


def outcome_json(service: ThriftService, method: str, kind: str, payload: Any) -> tuple[int, Json]:
    """invoke()'s outcome → (exit status, JSON to print)."""
    if kind == "raised":
        return EXIT_RAISED, {"exception": type(payload).__name__, "fields": jsonmap.struct_to_json(payload)}
    if kind == "application":
        name = app_error_name(payload.type)
        return EXIT_RAISED, {"application_exception": name, "message": payload.message or ""}
    return EXIT_OK, jsonmap.result_to_json(service, method, payload)


def call(service_spec: str, method: str, args_value: Json, target: Target) -> tuple[int, Json, dict[str, str]]:
    """The whole call → (exit status, JSON to print, the reply's THeader headers);
    CallFailed for exits 2 and 3."""
    service, args = prepare(service_spec, method, args_value)
    transport, protocol = connect(target)
    try:
        kind, payload = invoke(protocol, service, method, args)
    except Exception as e:  # whatever thriftpy2's transport/protocol raise: no usable reply
        raise CallFailed(
            EXIT_CONNECTION, "%s:%s: no reply to %s: %s" % (target.host, target.port, method, _reason(e))
        ) from None
    finally:
        transport.close()
    return (*outcome_json(service, method, kind, payload), getattr(transport, "response_headers", {}))


def _reason(error: BaseException) -> str:
    cause = error.__cause__ or error.__context__
    if isinstance(error, TimeoutError) or isinstance(cause, TimeoutError):
        return "timed out"
    if isinstance(error, TTransportException):
        if error.type == TTransportException.END_OF_FILE:
            return "connection closed by the server"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        return error.message or "transport error %s" % error.type
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return "%s: %s" % (type(error).__name__, error)


def parse_headers(texts: Iterable[str], transport: str) -> dict[str, str]:
    """--header KEY=VALUE arguments → {KEY: VALUE}; CallFailed(2) for a malformed one, or for
    headers on a transport that cannot carry them."""
    headers: dict[str, str] = {}
    for text in texts:
        key, equals, value = text.partition("=")
        if not equals or not key:
            raise CallFailed(EXIT_USAGE, "--header expects KEY=VALUE, got %r" % text)
        headers[key] = value
    if headers and transport != HEADER:
        raise CallFailed(EXIT_USAGE, "--header needs --transport header (%s carries no headers)" % transport)
    return headers


def dumps(value: Json) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False)


def command(
    args: argparse.Namespace, stdin: TextIO | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """`dracula call` from parsed CLI arguments; prints and returns the exit status."""
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    target = Target(
        host=args.host,
        port=args.port,
        transport=args.transport,
        protocol=args.protocol,
        timeout=args.timeout,
        service_name=args.service_name,
    )
    try:
        target.headers = parse_headers(args.headers, target.transport)
        if not 0 < target.port < 65536:
            raise CallFailed(EXIT_USAGE, "--port must be 1..65535, got %d" % target.port)
        if target.timeout < 0:
            raise CallFailed(EXIT_USAGE, "--timeout must be >= 0 (0 waits for ever)")
        text = stdin.read() if args.args_json == "-" else args.args_json
        code, value, response_headers = call(args.service, args.method, parse_args_json(text), target)
    except CallFailed as e:
        print("dracula: error: %s" % e, file=stderr)
        return e.code
    if args.verbose:
        for key, header in response_headers.items():
            print("< %s: %s" % (key, header), file=stderr)
    stdout.write(dumps(value) + "\n")
    return code
