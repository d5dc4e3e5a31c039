"""The reference floor: a bare uvloop server that answers ping with nothing around it.

No framework: one `asyncio.Protocol` per connection, `data_received` splits messages out of
the bytes, thriftpy2's Cython codec (TCyMemoryBuffer + TCyBinaryProtocol) decodes the header
(`read_message_begin`) and the arguments (`args.read`), the handler is called, and the reply is
encoded with the same codec and written. Replies to messages that arrived in one read go out in
one write. It is what any reactor-based Thrift server must at least do per call, so it is the
speed a framework should match.

What it leaves out, on purpose: the safety checks (it trusts every length, which the Cython
buffer does not check), error replies, and general message splitting: it serves only methods
whose arguments struct is empty, like ping, so a message ends one byte (the STOP) after its
header. Unframed strict binary, as thriftpy2 clients send by default.
"""
from __future__ import annotations

import asyncio
import signal
import socket

import _common
import uvloop
from thriftpy2.protocol.cybin import TCyBinaryProtocol
from thriftpy2.thrift import TMessageType
from thriftpy2.transport.memory import TCyMemoryBuffer

VERSION_1 = 0x80010000


class Codec:
    """One pair of Cython buffers for the whole (single-threaded) server."""

    def __init__(self):
        self.inbuf = TCyMemoryBuffer()
        self.iprot = TCyBinaryProtocol(self.inbuf)
        self.outbuf = TCyMemoryBuffer()
        self.oprot = TCyBinaryProtocol(self.outbuf)


class PingProtocol(asyncio.Protocol):
    def __init__(self, methods, codec):
        self.methods = methods
        self.codec = codec
        self.pending = b""
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        if self.pending:
            data = self.pending + data
        size = len(data)
        pos = 0
        out = []
        codec = self.codec
        while size - pos >= 8:
            if int.from_bytes(data[pos:pos + 4], "big") & 0xFFFF0000 != VERSION_1:
                self.transport.close()
                return
            end = pos + 12 + int.from_bytes(data[pos + 4:pos + 8], "big") + 1  # header + STOP
            if end > size:
                break
            codec.inbuf.setvalue(data[pos:end])
            name, _mtype, seqid = codec.iprot.read_message_begin()
            method = self.methods.get(name)
            if method is None:
                self.transport.close()
                return
            args_cls, result_cls, fn = method
            args = args_cls()
            args.read(codec.iprot)
            codec.iprot.read_message_end()
            result = result_cls()
            result.success = fn()
            oprot = codec.oprot
            oprot.write_message_begin(name, TMessageType.REPLY, seqid)
            result.write(oprot)
            oprot.write_message_end()
            out.append(codec.outbuf.getvalue())
            codec.outbuf.clean()
            pos = end
        self.pending = data[pos:]
        if out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))


def method_table(service, handler):
    methods = {}
    for name in service.thrift_services:
        args_cls = getattr(service, name + "_args")
        if args_cls.thrift_spec:
            continue  # the floor only splits messages whose arguments struct is empty
        methods[name] = (args_cls, getattr(service, name + "_result"), getattr(handler, name))
    return methods


async def serve(args, protocol=None) -> None:
    protocol = protocol or PingProtocol
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    methods = method_table(_common.load_pingpong().PingService, _common.ping_handler())
    codec = Codec()
    server = await loop.create_server(lambda: protocol(methods, codec), sock=sock,
                                      backlog=args.backlog)
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
