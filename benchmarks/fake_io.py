"""The fakes of the network that the in-process instruction counts (call_cost.py,
http_instructions.py) run a server's per-connection code against: no system calls, so a count
is the Python and C the server runs per call. Each keeps the first and the last reply (the
harness checks they are alike) and counts writes and bytes."""

from __future__ import annotations

import asyncio


class Replies:
    """Each write is kept inline (no method call): the harness's own instructions count too."""

    def __init__(self) -> None:
        self.replies: list[bytes] = []
        self.writes = 0


class FakeTransport(asyncio.Transport, Replies):
    """What a uv Connection (and the floor's protocol) asks of an asyncio transport."""

    def __init__(self) -> None:
        asyncio.Transport.__init__(self)
        Replies.__init__(self)
        self.protocol = None

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 40000) if name == "peername" else default

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def set_protocol(self, protocol) -> None:
        self.protocol = protocol

    def write(self, data) -> None:
        self.writes += 1
        replies = self.replies
        replies.append(data)
        if len(replies) > 2:
            del replies[1:-1]

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class FakeSocket(Replies):
    """What the thread backend's loop uses of a socket: each recv_into gets one request."""

    def __init__(self, request: bytes = b"", calls: int = 0) -> None:
        super().__init__()
        self.request = request
        self.left = calls

    def settimeout(self, seconds) -> None:
        pass

    def recv_into(self, view) -> int:
        if not self.left:
            return 0
        self.left -= 1
        n = len(self.request)
        view[:n] = self.request
        return n

    def sendall(self, data) -> None:
        self.writes += 1
        replies = self.replies
        replies.append(data)
        if len(replies) > 2:
            del replies[1:-1]

    def close(self) -> None:
        pass


class ChunkedSocket(FakeSocket):
    """A request larger than the read buffer, handed over in as many reads as it takes."""

    def __init__(self, request: bytes, calls: int) -> None:
        super().__init__(request, calls)
        self.pos = 0

    def recv_into(self, view) -> int:
        if self.pos == 0:
            if not self.left:
                return 0
            self.left -= 1
        step = min(len(view), len(self.request) - self.pos)
        view[:step] = self.request[self.pos : self.pos + step]
        self.pos = (self.pos + step) % len(self.request)
        return step


class RecvSocket(Replies):
    """What thriftpy2's TSocket uses of a socket: each recv() gets one request."""

    def __init__(self, request: bytes, calls: int) -> None:
        super().__init__()
        self.request = request
        self.left = calls

    def recv(self, size: int) -> bytes:
        if not self.left:
            return b""
        self.left -= 1
        return self.request

    def sendall(self, data) -> None:
        self.writes += 1
        replies = self.replies
        replies.append(data)
        if len(replies) > 2:
            del replies[1:-1]

    def shutdown(self, how) -> None:
        pass

    def close(self) -> None:
        pass


class ChunkedRecvSocket(RecvSocket):
    """thriftpy2's buffered transport reads 4 KB at a time: a large request in pieces."""

    def __init__(self, request: bytes, calls: int) -> None:
        super().__init__(request, calls)
        self.pos = 0

    def recv(self, size: int) -> bytes:
        if self.pos == 0:
            if not self.left:
                return b""
            self.left -= 1
        step = min(size, len(self.request) - self.pos)
        data = self.request[self.pos : self.pos + step]
        self.pos = (self.pos + step) % len(self.request)
        return data
