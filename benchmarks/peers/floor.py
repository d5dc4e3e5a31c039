"""The reference floor: a bare uvloop server that answers calls with nothing around it.

No framework: one `asyncio.Protocol` per connection; `data_received` hands the bytes straight to
thriftpy2's Cython codec (TCyBufferedTransport over the received bytes + TCyBinaryProtocol),
which decodes the header (`read_message_begin`) and the arguments (`args.read`); the handler is
called, and the reply is encoded with the same codec and written. Replies to messages that
arrived in one read go out in one write.

Unframed transport has no length prefix, so the floor decodes optimistically, as thriftpy2's own
servers effectively do (they decode straight off the socket): a message is decoded from whatever
bytes are buffered, and if they run out (NeedMore) the bytes are kept and the decode starts over
from the message's first byte once more have come. Retries wait until the buffer has doubled
since the last attempt, so the decode work for a message arriving in many reads stays linear;
when the stream then stalls short of doubling (the client sent the whole message and waits) a
retry runs after STALL_S of silence. It is the least any reactor-based Thrift server must do per
call on unframed transport, so it is the speed a framework should match.

What it leaves out, on purpose: every safety check (it trusts every length and type code: see
DESIGN.md "Known hazards"), error replies (a message it cannot decode closes the connection),
oneway calls and framed transport. Unframed strict binary, as thriftpy2 clients send by default.
"""

from __future__ import annotations

import asyncio
import signal
import socket

import uvloop
from thriftpy2.protocol.cybin import TCyBinaryProtocol
from thriftpy2.thrift import TMessageType
from thriftpy2.transport.buffered import TCyBufferedTransport
from thriftpy2.transport.memory import TCyMemoryBuffer

import _common

STALL_S = 0.001  # silence after which an incomplete message is retried before its buffer doubles
MIN_READ_BUFFER = 4096


class NeedMore(Exception):
    """The buffered bytes ended inside a message."""


class BufferedBytes:
    """What TCyBufferedTransport reads from: all the buffered bytes in its first read, then
    NeedMore (noting the size asked, which tells the transport's unread byte count)."""

    __slots__ = ("data", "handed", "asked")

    def __init__(self):
        self.data, self.handed, self.asked = b"", False, 0

    def read(self, n):
        if self.handed:
            self.asked = n
            raise NeedMore
        if n < len(self.data):  # the transport's buffer would overflow: Decoder sizes it first
            raise AssertionError("read buffer smaller than the data")
        self.handed = True
        return self.data


class Decoder:
    """Decodes the messages of one run of buffered bytes, one after another, with the Cython
    codec; one for the whole (single-threaded) server."""

    def __init__(self):
        self.source = BufferedBytes()
        self.size = 0  # the transport's read buffer size: always larger than the data
        self.trans = self.iprot = None

    def start(self, data) -> None:
        if self.trans is None or len(data) >= self.size:
            self.size = max(MIN_READ_BUFFER, 2 * len(data))
            self.trans = TCyBufferedTransport(self.source, self.size)
            self.iprot = TCyBinaryProtocol(self.trans)
        else:
            self.trans.clean()
        self.source.data, self.source.handed = data, False

    def unread(self) -> int:
        """Bytes of the data past the messages decoded so far. The probe reads one byte more
        than the data holds, so the transport asks the source for (buffer size - unread)."""
        try:
            self.trans.read(len(self.source.data) + 1)
        except NeedMore:
            return self.size - self.source.asked
        raise AssertionError("the transport had more bytes than it was given")

    def discard(self) -> None:
        """After NeedMore the transport may have grown its buffer: build a fresh one next time."""
        self.trans = None


class Codec:
    """The decoder and a Cython output buffer for the whole (single-threaded) server."""

    def __init__(self):
        self.decoder = Decoder()
        self.outbuf = TCyMemoryBuffer()  # written to only: its reads are the unchecked ones
        self.oprot = TCyBinaryProtocol(self.outbuf)

    def call(self, methods) -> bytes:
        """Decode the next CALL message, call the handler, the encoded REPLY (b"": unknown
        method). Raises NeedMore when the buffered bytes end inside the message."""
        iprot = self.decoder.iprot
        name, _mtype, seqid = iprot.read_message_begin()
        method = methods.get(name)
        if method is None:
            return b""
        args_cls, result_cls, fn, arg_names = method
        args = args_cls()
        args.read(iprot)
        iprot.read_message_end()
        result = result_cls()
        result.success = fn(*[getattr(args, arg) for arg in arg_names])
        oprot = self.oprot
        oprot.write_message_begin(name, TMessageType.REPLY, seqid)
        result.write(oprot)
        oprot.write_message_end()
        reply = self.outbuf.getvalue()
        self.outbuf.clean()
        return reply

    def calls(self, methods, data):
        """Answer every whole message in `data`: (the replies, the bytes of an incomplete last
        message or None when none is left, whether to close: a message it cannot answer)."""
        decoder = self.decoder
        decoder.start(data)
        replies = []
        unread = len(data)  # from the start of the message being decoded
        while True:
            try:
                reply = self.call(methods)
            except NeedMore:
                decoder.discard()
                return replies, data[len(data) - unread :], False
            except Exception:  # not a call it can decode: no error replies in the floor
                decoder.discard()
                return replies, None, True
            if not reply:
                return replies, None, True
            replies.append(reply)
            unread = decoder.unread()
            if not unread:
                return replies, None, False


class CallProtocol(asyncio.Protocol):
    def __init__(self, methods, codec):
        self.methods = methods
        self.codec = codec
        self.pending = None  # the bytes of an incomplete message, once one has come
        self.retry_at = 0  # retry the decode once pending holds this many bytes
        self.stall = None  # the timer that retries a stalled incomplete message
        self.fresh = False  # bytes came since the stall timer was armed
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        if self.stall is not None:
            self.stall.cancel()

    def data_received(self, data):
        if self.pending is None:
            self.answer(data)
            return
        self.pending += data
        if len(self.pending) >= self.retry_at:
            self.answer(self.pending)
        else:
            self.fresh = True
            if self.stall is None:
                self.stall = asyncio.get_running_loop().call_later(STALL_S, self.stalled)

    def stalled(self):
        self.stall = None
        if self.fresh:  # still arriving: wait for silence or for the buffer to double
            self.fresh = False
            self.stall = asyncio.get_running_loop().call_later(STALL_S, self.stalled)
        elif self.pending is not None:
            self.answer(self.pending)

    def answer(self, data):
        replies, rest, close = self.codec.calls(self.methods, data)
        if replies:
            self.transport.write(replies[0] if len(replies) == 1 else b"".join(replies))
        if close:
            self.transport.close()
            return
        if rest is None:
            self.pending = None
        else:
            self.pending = bytearray(rest)
            self.retry_at = 2 * len(rest)
        if self.stall is not None:
            self.stall.cancel()
            self.stall = None


def method_table(service, handler):
    """name -> (args class, result class, handler method, argument names in field-id order)."""
    methods = {}
    for name in service.thrift_services:
        args_cls = getattr(service, name + "_args")
        arg_names = [args_cls.thrift_spec[fid][1] for fid in sorted(args_cls.thrift_spec)]
        methods[name] = (args_cls, getattr(service, name + "_result"), getattr(handler, name), arg_names)
    return methods


async def serve(args, protocol=None) -> None:
    protocol = protocol or CallProtocol
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    methods = method_table(_common.load_service(args), _common.make_handler(args))
    codec = Codec()
    server = await loop.create_server(lambda: protocol(methods, codec), sock=sock, backlog=args.backlog)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()


def main(protocol=None, doc=__doc__) -> None:
    args = _common.parse_args(doc)
    uvloop.run(serve(args, protocol))


if __name__ == "__main__":
    main()
