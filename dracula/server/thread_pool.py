"""The thread pool that blocking handlers run in: sized for waiting, not for cores.

Handlers that block mostly wait (a database, another service), so the pool's cap is about
concurrency, as thriftpy2's thread per connection is: a thread is started when a call finds none
idle, up to --blocking-threads, and retires after IDLE_SECONDS without work, so a burst leaves
no thousand threads behind. concurrent.futures.ThreadPoolExecutor never retires a thread.
--max-requests and --queue-timeout bound what waits for a thread (ops/overload.py).
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dracula.ops.observe import ServerObserver

log = logging.getLogger("dracula.pool")

IDLE_SECONDS = 30.0


class HandlerPool(concurrent.futures.Executor):
    def __init__(
        self,
        max_threads: int,
        observer: ServerObserver | None = None,
        idle_seconds: float = IDLE_SECONDS,
        name: str = "dracula-blocking",
    ) -> None:
        self.max_threads = max_threads
        self.idle_seconds = idle_seconds
        self.observer = observer
        self.name = name
        self._work: collections.deque[tuple[concurrent.futures.Future[Any] | None, Callable[..., Any], tuple[Any, ...]]]
        self._work = collections.deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self.threads: set[threading.Thread] = set()  # alive
        self.idle = 0  # threads waiting for work
        self._started = 0  # names threads
        self._closed = False
        if observer is not None:
            observer.pool_limit(max_threads)

    @property
    def queued(self) -> int:
        """Calls waiting for a thread."""
        return len(self._work)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        if kwargs:
            raise TypeError("HandlerPool.submit takes positional arguments only")
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._put(future, fn, args)
        return future

    def _put(
        self, future: concurrent.futures.Future[Any] | None, fn: Callable[..., Any], args: tuple[Any, ...]
    ) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the handler pool is shut down")
            self._work.append((future, fn, args))
            if len(self._work) > self.idle and len(self.threads) < self.max_threads:
                self._start_thread()  # every idle thread has a call to take already
            self._wake.notify()
            self._observe()

    def run(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run fn(*args) in a pool thread, with no Future: what it returns is dropped and what it
        raises is logged, so `fn` hands its outcome on itself (the reactor's blocking calls
        do, to the loop: a Future on each side cost more than the call's own bookkeeping)."""
        self._put(None, fn, args)

    def _start_thread(self) -> None:
        self._started += 1
        thread = threading.Thread(target=self._worker, name="%s-%d" % (self.name, self._started), daemon=True)
        self.threads.add(thread)
        thread.start()

    def _worker(self) -> None:
        while True:
            with self._lock:
                while not self._work:
                    if self._closed or not self._wait():
                        self.threads.discard(threading.current_thread())
                        self._observe()
                        return
                future, fn, args = self._work.popleft()
                self._observe()
            if future is None:
                try:
                    fn(*args)
                except BaseException:
                    log.exception("a job of the handler pool raised")
            elif future.set_running_or_notify_cancel():
                try:
                    result = fn(*args)
                except BaseException as e:
                    future.set_exception(e)
                else:
                    future.set_result(result)
            del future, fn, args  # not kept alive while the thread waits for more

    def _wait(self) -> bool:
        """Wait (lock held) for work; False when idle for idle_seconds: the thread retires."""
        self.idle += 1
        self._observe()
        try:
            return self._wake.wait(self.idle_seconds) or bool(self._work)
        finally:
            self.idle -= 1

    def _observe(self) -> None:
        if self.observer is not None:  # gauges only: cheap enough under the lock
            self.observer.pool_changed(len(self.threads), len(self.threads) - self.idle, len(self._work))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new calls; threads finish what is queued (unless `cancel_futures`) and exit."""
        with self._lock:
            self._closed = True
            if cancel_futures:
                while self._work:
                    future = self._work.popleft()[0]
                    if future is not None:  # a run() job is dropped: the server has stopped
                        future.cancel()
            self._wake.notify_all()
            threads = list(self.threads)
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()
