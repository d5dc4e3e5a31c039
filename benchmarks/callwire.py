"""One call on the wire: a workload's pre-encoded request and a probe for a server's real reply.

The load generator never encodes or decodes: it sends these request bytes and compares each
reply, byte for byte, with the reply a probe got from the same server before the run. The probe
decodes that reply fully (message name, type REPLY, seqid, the result's value, nothing left
over), so every reply the load generator accepts is one that decodes to the right value. Both
are made and checked here with thriftpy2's own (pure-Python) binary protocol, independently of
dracula's wire code.
"""

from __future__ import annotations

import socket
import struct
import time

from thriftpy2.protocol.binary import TBinaryProtocol
from thriftpy2.thrift import TApplicationException, TMessageType
from thriftpy2.transport.memory import TMemoryBuffer

import workloads


class ProbeError(Exception):
    """The server did not answer the probe call with the workload's expected value."""


def frame(payload: bytes) -> bytes:
    return struct.pack("!I", len(payload)) + payload


def encode_call(workload=workloads.PING, framed: bool = False, seqid: int = 0) -> bytes:
    """The workload's CALL message, exactly as a thriftpy2 client writes it (strict binary)."""
    service = workload.thrift_service()
    buf = TMemoryBuffer()
    proto = TBinaryProtocol(buf)
    proto.write_message_begin(workload.method, TMessageType.CALL, seqid)
    proto.write_struct(getattr(service, workload.method + "_args")(**workload.args()))
    proto.write_message_end()
    data = buf.getvalue()
    return frame(data) if framed else data


class Incomplete(Exception):
    pass


def decode_reply(data: bytes, framed: bool, workload=workloads.PING, seqid: int = 0):
    """(value, bytes consumed) for a complete reply at the start of `data`.

    Raises Incomplete while more bytes may complete it, ProbeError for an answer that is not a
    successful reply to the workload's call."""
    if framed:
        if len(data) < 4:
            raise Incomplete
        size = struct.unpack_from("!I", data)[0]
        if len(data) < 4 + size:
            raise Incomplete
        value, used = decode_reply(data[4 : 4 + size], False, workload, seqid)
        if used != size:
            raise ProbeError("frame of %d bytes holds a %d-byte message" % (size, used))
        return value, 4 + size
    buf = TMemoryBuffer(data)
    proto = TBinaryProtocol(buf)
    try:
        name, mtype, got_seqid = proto.read_message_begin()
        if mtype == TMessageType.EXCEPTION:
            exc = TApplicationException()
            proto.read_struct(exc)  # a short buffer fails here (no STOP byte): Incomplete
            raise ProbeError("server answered with an exception: %s" % exc)
        result = getattr(workload.thrift_service(), workload.method + "_result")()
        proto.read_struct(result)
        proto.read_message_end()
    except ProbeError:
        raise
    except Exception:
        raise Incomplete from None
    # Short reads return fewer bytes and the next fixed-width read fails, so reaching here
    # means every byte of the message was present.
    used = buf._pos
    if name != workload.method or mtype != TMessageType.REPLY or got_seqid != seqid:
        raise ProbeError("unexpected reply header: %r, type %d, seqid %d" % (name, mtype, got_seqid))
    return result.success, used


def probe(host: str, port: int, framed: bool, request: bytes, workload=workloads.PING, timeout: float = 5.0) -> bytes:
    """Send one request on a fresh connection; the server's complete reply bytes.

    Raises OSError when the server cannot be reached, ProbeError for a wrong answer."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        got = b""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value, used = decode_reply(got, framed, workload)
                break
            except Incomplete:
                pass
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise ProbeError("no complete reply within %.0f s (got %r)" % (timeout, got[:200])) from None
            if not chunk:
                raise ProbeError("connection closed after %d reply bytes: %r" % (len(got), got[:200]))
            got += chunk
        if used != len(got):
            raise ProbeError("%d bytes after the reply" % (len(got) - used))
        if value != workload.expected:
            raise ProbeError("%s returned %r, expected %r" % (workload.method, value, workload.expected))
        return got


# What thriftpy2's and Apache's THttpClient send (http.client): the head before the body.
HTTP_HEAD = (
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: identity\r\nContent-Length: %d\r\n"
    b"Content-Type: application/x-thrift\r\nUser-Agent: Python/THttpClient\r\n\r\n"
)


def http_request(body: bytes) -> bytes:
    """One whole HTTP/1.1 POST carrying `body` (a Thrift message), as THttpClient sends it."""
    return HTTP_HEAD % len(body) + body


def probe_http(host: str, port: int, framed: bool, request: bytes, workload=workloads.PING, timeout: float = 5.0):
    """probe() over HTTP: send one POST (http_request's) on a fresh connection; the response's
    body, after checking the status (200) and that it decodes to the expected value. The body
    is read by Content-Length, or to the connection's end where the response has none."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        got = b""
        deadline = time.monotonic() + timeout
        length = None
        while True:
            end = got.find(b"\r\n\r\n")
            if end >= 0:
                head = got[:end].decode("latin-1").lower().split("\r\n")
                if head[0].split(" ")[1:2] != ["200"]:
                    raise ProbeError("answered %r" % got[:300])
                fields = dict(line.split(":", 1) for line in head[1:])
                if "content-length" in fields:
                    length = int(fields["content-length"])
                    if len(got) - end - 4 >= length:
                        break
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise ProbeError("no complete response within %.0f s (got %r)" % (timeout, got[:200])) from None
            if not chunk:
                if end >= 0 and length is None:
                    break  # the body ran to the connection's end
                raise ProbeError("connection closed after %d response bytes: %r" % (len(got), got[:200]))
            got += chunk
    body = got[end + 4 :]
    if length is not None and len(body) != length:
        raise ProbeError("%d bytes after the response" % (len(body) - length))
    value, used = decode_reply(body, framed, workload)
    if used != len(body):
        raise ProbeError("%d bytes after the reply" % (len(body) - used))
    if value != workload.expected:
        raise ProbeError("%s returned %r, expected %r" % (workload.method, value, workload.expected))
    return body
