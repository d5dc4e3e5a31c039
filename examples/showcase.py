"""Handler for idl/showcase.thrift: every IDL type and every dispatch outcome.

It loads the IDL itself, under a module name of its own, to build its structs and raise its
exceptions: the common thriftpy2 idiom, which dracula must honour even though `dracula serve`
loads the same file separately.
"""

import asyncio
import os
import time

import thriftpy2

import dracula

showcase_thrift = thriftpy2.load(
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "idl", "showcase.thrift"),
    module_name="showcase_thrift",
)


class ShowcaseHandler:
    def __init__(self):
        self.events = []

    def ping(self):
        return None

    def echo_scalars(self, s):
        return s

    def echo_shape(self, shape):
        return shape

    def shapes(self, n):
        return [
            showcase_thrift.Shape(
                name="shape-%d" % i,
                points=[showcase_thrift.Point(x=i, y=-i)],
                color=showcase_thrift.Color.GREEN,
                tags={i, -i},
                blob=bytes([i % 256]) * i,
            )
            for i in range(n)
        ]

    def index(self, points):
        return {"%d,%d" % (p.x, p.y): p for p in points}

    def unique(self, words):
        return set(words)

    def nested(self, value):
        return value

    def next_color(self, color):
        return {1: 2, 2: 3, 3: 1}[color]

    def reverse(self, data):
        return data[::-1]

    def lookup(self, key):
        if key == "missing":
            raise showcase_thrift.NotFound(key=key, code=404)
        if not key:
            raise showcase_thrift.Invalid(reason="empty key")
        return key.upper()

    def fail(self, message):
        raise RuntimeError(message)

    def record(self, event):
        self.events.append(event)

    def recorded(self):
        return list(self.events)

    async def sleep_async(self, ms):
        await asyncio.sleep(ms / 1000)
        return "slept %d ms" % ms

    @dracula.blocking
    def sleep_blocking(self, ms):
        time.sleep(ms / 1000)
        return "slept %d ms" % ms

    def wrong_type(self):
        return "not a Scalars struct"

    def add(self, a, b):
        return a + b
