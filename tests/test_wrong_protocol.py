"""Bytes that are not Thrift binary or compact: JSON protocol calls, an HTTP/2 preface, a TLS
ClientHello, an SSH banner. On both backends each must get a clean close (EOF or a reset, no
bytes back, well before the safety timeout), exactly one line on the "dracula.refused" logger
naming that connection's peer, and must not disturb a client already being served or the next
one to connect. HTTP/1.x requests are served (Thrift over HTTP): tests/test_http.py.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct

import pytest
import thriftpy2.rpc
from thrift.protocol.TJSONProtocol import TJSONProtocol as ApacheJSONProtocol
from thrift.transport.TTransport import TMemoryBuffer as ApacheMemoryBuffer
from thriftpy2.protocol.json import TJSONProtocol
from thriftpy2.thrift import TMessageType
from thriftpy2.transport.memory import TMemoryBuffer

from examples.showcase import ShowcaseHandler

from .helpers import BACKENDS, running, showcase_thrift as t

# Seconds a refused connection may take to close. The refusal itself takes milliseconds; this
# only turns a server that waits for more bytes into a failure instead of a hang.
CLOSE_TIMEOUT = 3


def thriftpy2_json_call() -> bytes:
    """Showcase.add(1, 2) as thriftpy2's TJSONProtocol writes it: a 4-byte big-endian length,
    then a JSON object ({"metadata": ..., "payload": ...})."""
    buf = TMemoryBuffer()
    proto = TJSONProtocol(buf)
    proto.write_message_begin("add", TMessageType.CALL, 1)
    proto.write_struct(t.Showcase.add_args(a=1, b=2))
    proto.write_message_end()
    return buf.getvalue()


def apache_json_call() -> bytes:
    """Showcase.add(1, 2) as Apache Thrift's TJSONProtocol writes it: [1,"add",1,1,{...}]."""
    buf = ApacheMemoryBuffer()
    proto = ApacheJSONProtocol(buf)
    proto.writeMessageBegin("add", TMessageType.CALL, 1)
    proto.writeStructBegin("add_args")
    proto.writeFieldBegin("a", 10, 1)
    proto.writeI64(1)
    proto.writeFieldEnd()
    proto.writeFieldBegin("b", 10, 2)
    proto.writeI64(2)
    proto.writeFieldEnd()
    proto.writeFieldStop()
    proto.writeStructEnd()
    proto.writeMessageEnd()
    return buf.getvalue()


def tls_client_hello() -> bytes:
    """The first flight of a real TLS handshake (Python's ssl module, no network)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16" and hello[5:6] == b"\x01"  # handshake record, ClientHello
    return hello


def framed(payload: bytes) -> bytes:
    return struct.pack("!I", len(payload)) + payload


PAYLOADS = {
    "thriftpy2-json": thriftpy2_json_call,
    "apache-json": apache_json_call,
    "apache-json-framed": lambda: framed(apache_json_call()),
    "http2-preface": lambda: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "tls-client-hello": tls_client_hello,
    "ssh-banner": lambda: b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
}


def read_until_closed(sock):
    """(bytes received, "eof" | "reset") once the server has closed the connection."""
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received, "reset"
        except TimeoutError:
            pytest.fail(
                "the server neither refused nor closed the connection within %d s "
                "(received %r): it is waiting for more bytes" % (CLOSE_TIMEOUT, received)
            )
        if not chunk:
            return received, "eof"
        received += chunk


def send_all(sock, data: bytes, piecewise: bool) -> None:
    """Send `data` (one byte per send if piecewise); stop quietly if the server has already
    refused and closed."""
    try:
        if piecewise:
            for i in range(len(data)):
                sock.send(data[i : i + 1])
        else:
            sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def refusal_lines(caplog, peer: str):
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "dracula.refused" and r.getMessage().startswith("refused %s:" % peer)
    ]


def thriftpy2_client(port):
    return thriftpy2.rpc.make_client(t.Showcase, "127.0.0.1", port, timeout=10_000)


# Every payload in one send; one text and one binary payload also a byte per send (the
# server then sees it over several reads, and must still log one line).
CASES = [(name, "whole") for name in PAYLOADS] + [("ssh-banner", "byte-by-byte"), ("tls-client-hello", "byte-by-byte")]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("payload,how", CASES)
def test_wrong_protocol_is_refused_and_closed(caplog, payload, how, backend):
    data = PAYLOADS[payload]()
    caplog.set_level(logging.WARNING, logger="dracula.refused")
    with running(t.Showcase, ShowcaseHandler(), backend=backend) as server:
        bystander = thriftpy2_client(server.port)  # connected and served before, during, after
        try:
            assert bystander.add(1, 2) == 3
            with socket.create_connection(("127.0.0.1", server.port), timeout=CLOSE_TIMEOUT) as sock:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                peer = "127.0.0.1:%d" % sock.getsockname()[1]
                send_all(sock, data, piecewise=how == "byte-by-byte")
                received, closed = read_until_closed(sock)
            assert closed in ("eof", "reset")
            # Nothing is written back to a peer that does not speak Thrift.
            assert received == b""
            # The server logs before it closes, so the line is there once we have seen the close.
            lines = refusal_lines(caplog, peer)
            assert len(lines) == 1, lines
            assert bystander.add(2, 3) == 5
            fresh = thriftpy2_client(server.port)
            try:
                assert fresh.add(3, 4) == 7
            finally:
                fresh.close()
        finally:
            bystander.close()
