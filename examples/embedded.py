"""A Thrift service and an HTTP status endpoint in one process, on one event loop.

    python -m examples.embedded            # Thrift on 127.0.0.1:9090, HTTP on 127.0.0.1:8080
    curl http://127.0.0.1:8080/status      # {"serving": true, "thrift_port": 9090, "pings": 0}

dracula serves on the application's own loop (`await server.serve_async()`), next to an HTTP
server from the standard library's asyncio; SIGINT/SIGTERM drain the Thrift calls in flight,
then the HTTP server closes.
"""

from __future__ import annotations

import asyncio
import json
import os

import thriftpy2
import uvloop

import dracula

pingpong_thrift = thriftpy2.load(
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "idl", "pingpong.thrift")
)


class CountingPing:
    """PingService's handler: a coroutine on the application's loop, sharing its state."""

    def __init__(self) -> None:
        self.pings = 0

    async def ping(self) -> str:
        self.pings += 1
        return "pong"


class EmbeddedApp:
    """The Thrift server (bound at construction: `.thrift.port`) and the HTTP one (`.http_port`
    once start_http() has run), sharing one handler object and one loop."""

    def __init__(self, host: str = "127.0.0.1", thrift_port: int = 9090, http_port: int = 8080) -> None:
        self.host = host
        self.http_port = http_port
        self.handler = CountingPing()
        self.thrift = dracula.make_server(pingpong_thrift.PingService, self.handler, host=host, port=thrift_port)
        self.http: asyncio.Server | None = None

    async def start_http(self) -> None:
        self.http = await asyncio.start_server(self._answer_http, self.host, self.http_port)
        self.http_port = self.http.sockets[0].getsockname()[1]

    async def close_http(self) -> None:
        if self.http is not None:
            self.http.close()
            await self.http.wait_closed()

    def status(self) -> dict:
        return {"serving": self.thrift.healthy(), "thrift_port": self.thrift.port, "pings": self.handler.pings}

    async def _answer_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = (await reader.readline()).split()
            while (await reader.readline()).strip():  # the headers: not needed here
                pass
            if request[:2] == [b"GET", b"/status"]:
                await _respond(writer, "200 OK", json.dumps(self.status()).encode())
            else:
                await _respond(writer, "404 Not Found", b'{"error": "not found"}')
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away
        finally:
            writer.close()


async def _respond(writer: asyncio.StreamWriter, status: str, body: bytes) -> None:
    head = "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (
        status,
        len(body),
    )
    writer.write(head.encode() + body)
    await writer.drain()


async def main() -> None:
    app = EmbeddedApp()
    await app.start_http()
    try:
        # Returns once SIGINT/SIGTERM (or app.thrift.close()) has drained the calls in flight.
        await app.thrift.serve_async(install_signals=True)
    finally:
        await app.close_http()


if __name__ == "__main__":
    uvloop.run(main())
