"""Handlers for benchmarks/wait.thrift's WaitService (benchmarks/handlers_that_wait.py).

WaitHandler is written as a thriftpy2 user writes a handler that waits on a database or another
service: plain methods, no decorator, `time.sleep` standing in for the call.
BlockingWaitHandler is the same service with `wait` marked `@dracula.blocking`: what a dracula
user can write today to have it run in dracula's thread pool instead of on the event loop.
(The md5 rows use the seed's own pair, examples/hash.py's HashHandler and BlockingHashHandler.)
"""

import time

import dracula


class WaitHandler:
    def ping(self):
        return "pong"

    def wait(self, ms):
        time.sleep(ms / 1000)
        return "waited %d ms" % ms


class BlockingWaitHandler(WaitHandler):
    @dracula.blocking
    def wait(self, ms):
        return super().wait(ms)
