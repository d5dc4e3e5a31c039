"""The reference floor: a bare uvloop server that answers calls with nothing around it.

No framework: one `asyncio.Protocol` per connection; `data_received` appends the bytes to a
buffer and walks them (`message_end`) to find where each message ends, thriftpy2's Cython codec
(TCyMemoryBuffer + TCyBinaryProtocol) decodes the header (`read_message_begin`) and the
arguments (`args.read`), the handler is called, and the reply is encoded with the same codec and
written. Replies to messages that arrived in one read go out in one write. It is what any
reactor-based Thrift server must at least do per call on unframed transport (it has to find a
message's end before it may decode it), so it is the speed a framework should match.

What it leaves out, on purpose: every safety check (it trusts every length and type code; the
Cython buffer does not check them either: see DESIGN.md "Known hazards"), error replies,
oneway calls, and the IDL: the walk skips values by their wire types alone. Unframed strict
binary, as thriftpy2 clients send by default.
"""
from __future__ import annotations

import asyncio
import signal
import socket

import uvloop
from thriftpy2.protocol.cybin import TCyBinaryProtocol
from thriftpy2.thrift import TMessageType
from thriftpy2.transport.memory import TCyMemoryBuffer

import _common

VERSION_1 = 0x80010000
STOP, STRING, STRUCT, MAP, SET, LIST = 0, 11, 12, 13, 14, 15
FIXED = [0] * 256  # bytes a value of a fixed-width wire type takes
for _t, _n in ((2, 1), (3, 1), (4, 8), (6, 2), (8, 4), (10, 8)):
    FIXED[_t] = _n
HEAD = [0] * 256  # bytes before a variable-size value's contents: length, element types
HEAD[STRING], HEAD[LIST], HEAD[SET], HEAD[MAP] = 4, 5, 5, 6


def message_end(buf: bytearray):
    """A generator walking the message at the start of `buf` as bytes are appended to it:
    it yields while the message is incomplete (call next() again after appending) and
    returns the message's length, or -1 when it is not strict binary.

    Unchecked: a resumable walk of the wire types, with fixed-width values, strings and
    fixed-width containers stepped over in one jump and never read."""
    while len(buf) < 8:
        yield
    if int.from_bytes(buf[0:4], "big") & 0xFFFF0000 != VERSION_1:
        return -1
    have = len(buf)  # bytes present; refreshed after every yield
    pos = 12 + int.from_bytes(buf[4:8], "big")  # version, name length, name, seqid
    stack = [None]  # None: inside a struct; [element types, values left]: inside a container
    while stack:
        frame = stack[-1]
        if frame is None:
            while True:  # step over fixed-width fields here, without a trip round the stack
                while have <= pos:
                    yield
                    have = len(buf)
                t = buf[pos]
                if t == STOP or not FIXED[t]:
                    break
                pos += 3 + FIXED[t]
            if t == STOP:
                pos += 1
                stack.pop()
                continue
            pos += 3  # type byte, field id
        else:
            types, left = frame
            if not left:
                stack.pop()
                continue
            t = types[left % len(types)]  # a map's 2n values alternate key, value
            frame[1] = left - 1
            if FIXED[t]:
                pos += FIXED[t]
                continue
        while have < pos + HEAD[t]:
            yield
            have = len(buf)
        if t == STRING:
            pos += 4 + int.from_bytes(buf[pos:pos + 4], "big")
        elif t == STRUCT:
            stack.append(None)
        elif t == LIST or t == SET:
            et, n = buf[pos], int.from_bytes(buf[pos + 1:pos + 5], "big")
            pos += 5
            if FIXED[et]:
                pos += n * FIXED[et]
            elif n:
                stack.append([(et,), n])
        elif t == MAP:
            kt, vt, n = buf[pos], buf[pos + 1], int.from_bytes(buf[pos + 2:pos + 6], "big")
            pos += 6
            if FIXED[kt] and FIXED[vt]:
                pos += n * (FIXED[kt] + FIXED[vt])
            elif n:
                stack.append([(kt, vt), 2 * n])
        else:  # binary protocol type 18 (binary) is written as STRING (11); nothing else is valid
            return -1
    while len(buf) < pos:
        yield
    return pos


class Codec:
    """One pair of Cython buffers for the whole (single-threaded) server."""

    def __init__(self):
        self.inbuf = TCyMemoryBuffer()
        self.iprot = TCyBinaryProtocol(self.inbuf)
        self.outbuf = TCyMemoryBuffer()
        self.oprot = TCyBinaryProtocol(self.outbuf)

    def call(self, methods, message) -> bytes:
        """Decode one whole CALL message, call the handler, the encoded REPLY (b"": unknown)."""
        self.inbuf.setvalue(message)
        name, _mtype, seqid = self.iprot.read_message_begin()
        method = methods.get(name)
        if method is None:
            return b""
        args_cls, result_cls, fn, arg_names = method
        args = args_cls()
        args.read(self.iprot)
        self.iprot.read_message_end()
        result = result_cls()
        result.success = fn(*[getattr(args, arg) for arg in arg_names])
        oprot = self.oprot
        oprot.write_message_begin(name, TMessageType.REPLY, seqid)
        result.write(oprot)
        oprot.write_message_end()
        reply = self.outbuf.getvalue()
        self.outbuf.clean()
        return reply


class CallProtocol(asyncio.Protocol):
    def __init__(self, methods, codec):
        self.methods = methods
        self.codec = codec
        self.buf = bytearray()
        self.walk = None  # the walk of the message at the start of buf, once one has begun
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        buf = self.buf
        buf += data
        out = []
        while buf:
            if self.walk is None:
                self.walk = message_end(buf)
            try:
                next(self.walk)
                break  # incomplete: wait for more bytes
            except StopIteration as done:
                end = done.value
            self.walk = None
            reply = self.codec.call(self.methods, buf[:end]) if end > 0 else b""
            if not reply:
                self.transport.close()
                return
            out.append(reply)
            del buf[:end]
        if out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))


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
