"""The CallInfo service (tests/context.thrift) whose handlers report what dracula.current_call()
tells them, and an Apache Thrift client for it (THeader or plain binary)."""

from __future__ import annotations

import asyncio
import json
import os
import threading

import thriftpy2
from thrift.protocol.THeaderProtocol import THeaderProtocol
from thrift.Thrift import TType
from thrift.transport import TSocket, TTransport
from thrift.transport.THeaderTransport import THeaderClientType

import dracula

from . import apache_client as apache

context_thrift = thriftpy2.load(os.path.join(os.path.dirname(__file__), "context.thrift"), module_name="context_thrift")

TIMEOUT = 12  # fbthrift's TApplicationException type for a call past its client's deadline
POOL = 4  # @blocking threads, and how many pooled calls meet at once in the concurrency test


def report(tag) -> str:
    """What the current call says about itself, as JSON for the client to check."""
    call = dracula.current_call()
    call.response_headers["seen-tag"] = call.headers.get("x-tag", "")
    return json.dumps(
        {
            "service": call.service,
            "method": call.method,
            "arg": tag,
            "header": call.headers.get("x-tag"),
            "peer_port": call.peer[1],
            "deadline": call.deadline,
        }
    )


class CallInfoHandler:
    def __init__(self):
        self.meeting = threading.Barrier(POOL, timeout=20)  # pooled calls run at the same time
        self.meet = False
        self.pooled_runs = 0
        self.entered = threading.Event()  # hold() is running
        self.release = threading.Event()
        self.stalls_cancelled = 0

    def plain(self, tag):
        return report(tag)

    async def coro(self, tag):
        before = dracula.current_call()
        for _ in range(3):  # let the loop run other calls' coroutines in between
            await asyncio.sleep(0.001)
        assert dracula.current_call() is before
        return report(tag)

    @dracula.blocking
    def pooled(self, tag):
        self.pooled_runs += 1
        if self.meet:
            self.meeting.wait()
        return report(tag)

    @dracula.blocking
    def hold(self):
        self.entered.set()
        assert self.release.wait(30), "the test never released hold()"
        return "released"

    async def stall(self):
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.stalls_cancelled += 1
            raise
        return "slept"


# -- an Apache client for tests/context.thrift ----------------------------------------------------


class tag_args(apache._Args):
    fields = ((1, "tag", TType.STRING, "writeString"),)
    thrift_spec = apache._spec((1, TType.STRING, "tag", "UTF8"))


class no_args(apache._Args):
    thrift_spec = ()


class string_result(apache._Result):
    success_type = TType.STRING
    reader = "readString"
    thrift_spec = apache._spec((0, TType.STRING, "success", "UTF8"))


class CallInfoClient(apache._Client):
    def call(self, method, tag=None):
        args = no_args() if tag is None else tag_args(tag=tag)
        return self._call(method, args, string_result())


class Client:
    """One socket: THeader (Apache's THeaderProtocol, binary) when header=True, else plain
    buffered binary."""

    def __init__(self, port, header=True):
        self.socket = TSocket.TSocket("127.0.0.1", port)
        self.socket.setTimeout(15_000)
        self.socket.open()
        if header:
            self.proto = THeaderProtocol(self.socket, (THeaderClientType.HEADERS,), 0)
        else:
            self.proto = apache.make_protocol(TTransport.TBufferedTransport(self.socket), "binary")
        self.client = CallInfoClient(self.proto)

    @property
    def port(self) -> int:
        return self.socket.handle.getsockname()[1]

    def call(self, method, tag=None, headers=()):
        """The handler's report (a dict) or its string reply; `headers` go with this call."""
        for key, value in dict(headers).items():
            self.proto.set_header(key.encode(), value.encode())
        reply = self.client.call(method, tag)
        return json.loads(reply) if reply.startswith("{") else reply

    def close(self):
        self.socket.close()
