"""The reference floor read through asyncio.BufferedProtocol instead of Protocol.

Everything else is floor.py's. uvloop asks a BufferedProtocol for a buffer before every read
attempt (twice per readable event) inside a context switch each time; this peer measures that
cost apart from anything dracula does.
"""

from __future__ import annotations

import asyncio

import floor


class BufferedCallProtocol(asyncio.BufferedProtocol, floor.CallProtocol):
    def __init__(self, methods, codec):
        super().__init__(methods, codec)
        self.rbuf = bytearray(65536)

    def get_buffer(self, sizehint):
        return memoryview(self.rbuf)

    def buffer_updated(self, nbytes):
        self.data_received(bytes(self.rbuf[:nbytes]))


if __name__ == "__main__":
    floor.main(BufferedCallProtocol, __doc__)
