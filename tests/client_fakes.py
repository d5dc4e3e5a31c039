"""A tiny scripted Thrift server for the client's tests: it reads each request (framed or
THeader, binary protocol) and answers whatever bytes the test's `respond(request)` returns, so
a test can send a reply with a wrong sequence id, garbage, a lying length, or a `:drain` header,
which no real server sends on purpose."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable

from dracula.wire.codec import BinaryCodec
from dracula.wire.detect import BINARY
from dracula.wire.theader import parse_frame, request_frame

REPLY, EXCEPTION = 2, 3


class Request:
    def __init__(self, name: bytes, seqid: int, header: bool, headers: dict, number: int):
        self.name = name
        self.seqid = seqid
        self.header = header
        self.headers = headers
        self.number = number  # requests answered before this one, on all connections

    def reply(
        self,
        result,
        name: bytes | None = None,
        seqid: int | None = None,
        mtype: int = REPLY,
        headers: dict | None = None,
    ) -> bytes:
        """A well-formed reply carrying `result` (a result or TApplicationException struct)."""
        name = self.name if name is None else name
        seqid = self.seqid if seqid is None else seqid
        message = BinaryCodec(64).encode(name, mtype, seqid, result, False)
        if self.header:
            return request_frame(message, BINARY, headers, self.seqid)
        return struct.pack("!I", len(message)) + message


class FakeServer:
    """Serves on 127.0.0.1 in a thread; `respond(request)` returns the bytes to send back (None:
    close the connection without answering). `.connections` counts accepted connections."""

    def __init__(self, respond: Callable[[Request], bytes | None], close_after_reply: bool = False):
        self.respond = respond
        self.close_after_reply = close_after_reply
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.closed = 0  # connections this server has closed
        self.requests = 0
        self.lock = threading.Lock()
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket):
        try:
            self._answer(conn)
        finally:
            conn.close()
            with self.lock:
                self.closed += 1

    def _answer(self, conn: socket.socket):
        while True:
            head = _read(conn, 4)
            if head is None:
                return
            frame = _read(conn, struct.unpack("!I", head)[0])
            if frame is None:
                return
            headers: dict = {}
            header = frame[:2] == b"\x0f\xff"
            if header:
                parsed = parse_frame(frame, 1 << 24)
                headers, message = parsed.headers, bytes(parsed.payload)
            else:
                message = frame
            name_len = struct.unpack_from("!i", message, 4)[0]
            name = message[8 : 8 + name_len]
            seqid = struct.unpack_from("!i", message, 8 + name_len)[0]
            with self.lock:
                number = self.requests
                self.requests += 1
            answer = self.respond(Request(name, seqid, header, headers, number))
            if answer is None:
                return
            conn.sendall(answer)
            if self.close_after_reply:
                return

    def close(self):
        self.sock.close()
        with self.lock:
            for conn in self.open:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _read(conn: socket.socket, n: int) -> bytes | None:
    data = bytearray()
    while len(data) < n:
        try:
            chunk = conn.recv(n - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return bytes(data)
