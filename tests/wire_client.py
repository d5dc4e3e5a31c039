"""A raw Thrift client for tests: calls encoded by hand (binary or compact, framed or not, strict
or not), sent over a plain socket, and replies read back off it in whatever protocol they come;
plus the check that a server still serves a well-behaved thriftpy2 client."""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import NamedTuple

import thriftpy2.rpc
from thriftpy2.protocol.binary import (
    TBinaryProtocol,  # pure Python: reads any read(n) object
)
from thriftpy2.protocol.compact import TCompactProtocol
from thriftpy2.thrift import TApplicationException, TMessageType
from thriftpy2.transport.memory import TMemoryBuffer

from .helpers import showcase_thrift

Showcase = showcase_thrift.Showcase
TIMEOUT = 20  # seconds: only so that a broken server fails a test instead of hanging it
COMPACT_ID = b"\x82"  # the first byte of every compact message


# -- encoding ------------------------------------------------------------------------------------


def frame(data: bytes) -> bytes:
    return struct.pack("!i", len(data)) + data


def encode_message(name, mtype, seqid, body, protocol="binary", strict=True, framed=False) -> bytes:
    """One message as thriftpy2's pure-Python protocols write it; `body` is the args (or
    result) struct."""
    buf = TMemoryBuffer()
    if protocol == "compact":
        proto = TCompactProtocol(buf)
    else:
        proto = TBinaryProtocol(buf, strict_write=strict)
    proto.write_message_begin(name, mtype, seqid)
    proto.write_struct(body)
    proto.write_message_end()
    data = buf.getvalue()
    return frame(data) if framed else data


def encode_call(
    method,
    seqid=1,
    framed=False,
    strict=True,
    protocol="binary",
    *,
    mtype=TMessageType.CALL,
    service=Showcase,
    **kwargs,
) -> bytes:
    """A call of `service`.`method` with the keyword arguments as its args struct."""
    args = getattr(service, method + "_args")(**kwargs)
    return encode_message(method, mtype, seqid, args, protocol, strict, framed)


# -- the socket ----------------------------------------------------------------------------------


def connect(port, timeout=TIMEOUT, nodelay=False) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if nodelay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class SockTransport:
    """The `read(n)` thriftpy2's protocols need, over a raw socket, with a receive buffer;
    `received` counts every byte that came in."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.received = 0

    def read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise EOFError("closed with %d of %d bytes read" % (len(self.buf), n))
            self.received += len(chunk)
            self.buf += chunk
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def peek(self, n):
        """The next n bytes, left unread."""
        self.buf[:0] = self.read(n)
        return bytes(self.buf[:n])


class BytesReader:
    """read(n) and peek(n) over bytes already received (a frame, a whole conversation); a read
    past the end is a reply cut short."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def read(self, n):
        chunk = self.peek(n)
        self.pos += n
        return chunk

    def peek(self, n):
        chunk = self.data[self.pos : self.pos + n]
        assert len(chunk) == n, "a reply was cut short"
        return chunk

    def left(self) -> int:
        return len(self.data) - self.pos


# -- decoding ------------------------------------------------------------------------------------


class Message(NamedTuple):
    name: str
    mtype: int
    seqid: int
    body: object  # the method's result struct, or the TApplicationException of an EXCEPTION


class Reply(NamedTuple):
    kind: str  # "reply" or "exception" (a TApplicationException)
    name: str
    seqid: int
    value: object  # the result: its success, or the declared exception it carries


def read_frame(trans) -> BytesReader:
    (size,) = struct.unpack("!i", trans.read(4))
    return BytesReader(trans.read(size))


def read_message(trans, framed=False, service=Showcase) -> Message:
    """One whole message off `trans` (anything with read(n) and peek(n)), binary or compact,
    whichever it is; a framed one must fill its frame."""
    if framed:
        body = read_frame(trans)
        message = read_message(body, service=service)
        assert not body.left(), "bytes left over in the reply frame"
        return message
    proto = (TCompactProtocol if trans.peek(1) == COMPACT_ID else TBinaryProtocol)(trans)
    name, mtype, seqid = proto.read_message_begin()
    if mtype == TMessageType.EXCEPTION:
        body = TApplicationException()
    else:  # a multiplexed reply may carry the "Service:" prefix of its call
        body = getattr(service, name.rpartition(":")[2] + "_result")()
    proto.read_struct(body)
    proto.read_message_end()
    return Message(name, mtype, seqid, body)


def result_value(result):
    """The declared exception a result struct carries, else its success."""
    for spec in result.thrift_spec.values():
        if spec[1] != "success" and getattr(result, spec[1]) is not None:
            return getattr(result, spec[1])
    return result.success


def read_reply(trans, framed=False, method=None, service=Showcase) -> Reply:
    """The next reply as (kind, name, seqid, value); a REPLY must name `method` when given."""
    name, mtype, seqid, body = read_message(trans, framed, service)
    if mtype == TMessageType.EXCEPTION:
        return Reply("exception", name, seqid, body)
    assert mtype == TMessageType.REPLY, mtype
    assert method in (None, name), (name, method)
    return Reply("reply", name, seqid, result_value(body))


class Connection:
    """A plain socket to a server: send bytes, read whole messages (framed or not) back."""

    def __init__(self, port, framed=False, timeout=TIMEOUT, nodelay=False):
        self.framed = framed
        self.sock = connect(port, timeout, nodelay)
        self.trans = SockTransport(self.sock)

    def send(self, data):
        self.sock.sendall(data)

    def read_message(self, service=Showcase) -> Message:
        return read_message(self.trans, self.framed, service)

    def read_reply(self, method=None, service=Showcase) -> Reply:
        return read_reply(self.trans, self.framed, method, service)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# -- a well-behaved client -----------------------------------------------------------------------


def make_client(port, timeout=TIMEOUT, service=Showcase, **options):
    """thriftpy2's own client, with its defaults (binary, buffered)."""
    return thriftpy2.rpc.make_client(service, "127.0.0.1", port, timeout=int(timeout * 1000), **options)


@contextlib.contextmanager
def client(port, timeout=TIMEOUT, service=Showcase, **options):
    c = make_client(port, timeout, service, **options)
    try:
        yield c
    finally:
        c.close()


def assert_served(port, a=20, b=22):
    """A good thriftpy2 client on a new connection gets its answers."""
    with client(port) as c:
        assert c.add(a, b) == a + b
        assert c.reverse(b"abc") == b"cba"


def closed_by_server(sock, timeout=20.0) -> bool:
    """True once the server has closed `sock` (EOF or reset) with nothing more to say; False
    if it stays open for `timeout` seconds. Bytes from the server here are a failure."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    assert data == b"", "the server sent %r where it should have closed" % data[:100]
    return True


def peer_of(sock) -> str:
    """How the server's log lines name this client socket."""
    host, port = sock.getsockname()[:2]
    return "%s:%d" % (host, port)


def feed_reader(reader, data: bytes, piece: int | None = None) -> list:
    """Hand `data` to a dracula Reader in pieces, as the backends do; the Messages it returns."""
    messages = []
    piece = piece or len(data) or 1
    for at in range(0, len(data), piece):
        chunk = memoryview(data)[at : at + piece]
        while len(chunk):
            space = reader.get_buffer()
            n = min(len(space), len(chunk))
            space[:n] = chunk[:n]
            space.release()  # as libuv and recv_into do: the reader may now grow its buffer
            reader.received(n)
            chunk = chunk[n:]
            while (msg := reader.next_message()) is not None:
                messages.append(msg)
    return messages
