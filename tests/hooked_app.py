"""The Hooked service (tests/middleware.thrift) the middleware tests serve: one method of each
kind of handler, counting its runs."""

from __future__ import annotations

import asyncio
import collections
import os
import threading

import thriftpy2

import dracula

hooked_thrift = thriftpy2.load(
    os.path.join(os.path.dirname(__file__), "middleware.thrift"), module_name="middleware_thrift"
)


class Handler:
    def __init__(self):
        self.runs = collections.Counter()
        self.lock = threading.Lock()

    def _ran(self, name):
        with self.lock:
            self.runs[name] += 1

    def plain(self, tag):
        self._ran("plain")
        return tag

    async def coro(self, tag):
        self._ran("coro")
        await asyncio.sleep(0)
        return tag

    @dracula.blocking
    def pooled(self, tag):
        self._ran("pooled")
        return tag

    def fails(self, tag):
        self._ran("fails")
        if tag == "declared":
            raise hooked_thrift.Refused(why="declared")
        raise RuntimeError("undeclared")
