"""Prefork supervisor: N worker processes serve one inherited listening socket.

Why one inherited socket rather than SO_REUSEPORT: with a single accept queue, a worker that
stops accepting (reload, scale-down, graceful stop) leaves queued connections to the others;
with SO_REUSEPORT each worker has its own queue and closing it resets the connections waiting
in it, so a reload would fail calls.

Workers are fresh interpreters (`python -m dracula serve ... --worker-fd N`), not forks, so a
reload (SIGHUP) imports the handler code anew. Signals:
  SIGTERM, SIGINT  every worker drains (stops accepting, answers what it read), then exit 0
  SIGHUP           start a new generation of workers; once they accept, drain the old ones
  SIGTTIN/SIGTTOU  one worker more / one fewer
A worker that dies is replaced at once; a worker that dies before it accepts, again and again,
means the code cannot start: the supervisor stops and exits 1.
"""

from __future__ import annotations

import functools
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from http.server import ThreadingHTTPServer
from types import FrameType
from typing import TYPE_CHECKING

from dracula.ops.metrics import call_totals, serve_status
from dracula.ops.overload import ShedShare
from dracula.server.listen import address_of, listen

if TYPE_CHECKING:
    from dracula.config import Config

log = logging.getLogger("dracula.supervisor")

MAX_START_FAILURES = 5  # consecutive workers that died before accepting
READY_TIMEOUT = 60.0  # seconds a reload waits for new workers to accept


class Worker:
    def __init__(self, proc: subprocess.Popen[bytes], ready_r: int, generation: int) -> None:
        self.proc = proc
        self.ready_r = ready_r
        self.generation = generation
        self.ready = False
        self.retiring = False

    @property
    def pid(self) -> int:
        return self.proc.pid


class Supervisor:
    def __init__(self, config: Config, worker_argv: list[str], workers: int) -> None:
        self.config = config
        self.worker_argv = worker_argv  # `dracula serve` arguments, without --workers
        self.target = workers
        self.sock = listen(config)
        self.host, self.port = address_of(self.sock)
        self.workers: list[Worker] = []
        self.generation = 0
        self.start_failures = 0
        self.signals: list[int] = []
        self.stopping = False
        self.reload_started: float | None = None
        self.env = dict(os.environ)
        self.status: ThreadingHTTPServer | None = None
        self.metrics_dir: str | None = None
        self.shedding: ShedShare | None = None  # the workers' shedding, for /healthz
        if config.metrics_port is not None:
            # Workers record into one multiprocess directory; this process serves the sum.
            self.metrics_dir = tempfile.mkdtemp(prefix="dracula-metrics-")
            self.env["PROMETHEUS_MULTIPROC_DIR"] = self.metrics_dir
            if config.unhealthy_when_shedding:
                self.shedding = ShedShare(functools.partial(call_totals, self.metrics_dir))
            self.status = serve_status(
                config.metrics_host or config.host, config.metrics_port, self.healthy, self.metrics_dir
            )

    # -- main loop -------------------------------------------------------------------------
    def run(self) -> int:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        previous = signal.set_wakeup_fd(wake_w)
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGCHLD)
        old = {s: signal.signal(s, self._on_signal) for s in handled}
        where = self.host if self.port is None else "%s:%d" % (self.host, self.port)
        log.info("supervisor %d: %d %s worker(s) on %s", os.getpid(), self.target, self.config.backend, where)
        try:
            for _ in range(self.target):
                self._spawn()
            return self._loop(wake_r)
        finally:
            signal.set_wakeup_fd(previous)
            for s, handler in old.items():
                signal.signal(s, handler)
            os.close(wake_r)
            os.close(wake_w)
            self.sock.close()
            if self.status is not None:
                self.status.shutdown()
                self.status.server_close()
            if self.metrics_dir is not None:
                shutil.rmtree(self.metrics_dir, ignore_errors=True)
            if self.config.uds:
                try:
                    os.unlink(self.config.uds)
                except OSError:
                    pass

    def _loop(self, wake_r: int) -> int:
        while True:
            fds = [wake_r] + [w.ready_r for w in self.workers if not w.ready]
            readable, _, _ = select.select(fds, [], [], 1.0)
            if wake_r in readable:
                os.read(wake_r, 512)
            for worker in self.workers:
                if not worker.ready and worker.ready_r in readable and os.read(worker.ready_r, 1):
                    worker.ready = True
                    self.start_failures = 0
                    log.info("worker %d accepting", worker.pid)
            self._reap()
            if self.shedding is not None:
                self.shedding.sample()  # at least once a second: select() wakes up that often
            if self.start_failures >= MAX_START_FAILURES:
                log.error(
                    "%d workers in a row died before accepting: giving up (see their log above)", self.start_failures
                )
                self._stop_all()
                return 1
            while self.signals:
                self._handle(self.signals.pop(0))
            if self.stopping:
                if not self.workers:
                    log.info("supervisor %d: all workers stopped", os.getpid())
                    return 0
                continue
            self._finish_reload()
            self._keep_count()

    def healthy(self) -> bool:
        """/healthz: some worker accepts, the supervisor is not stopping and (with
        --unhealthy-when-shedding) the workers together are not shedding over half their calls."""
        if self.stopping or not any(w.ready and not w.retiring for w in self.workers):
            return False
        return self.shedding is None or not self.shedding.hard()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append(signum)

    def _handle(self, signum: int) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            if not self.stopping:
                log.info("received %s: stopping %d worker(s)", signal.Signals(signum).name, len(self.workers))
                self._stop_all()
        elif signum == signal.SIGHUP and not self.stopping:
            log.info("received SIGHUP: starting %d new worker(s)", self.target)
            self.generation += 1
            self.reload_started = time.monotonic()
            for _ in range(self.target):
                self._spawn()
        elif signum == signal.SIGTTIN and not self.stopping:
            self.target += 1
            log.info("received SIGTTIN: %d worker(s)", self.target)
        elif signum == signal.SIGTTOU and not self.stopping and self.target > 1:
            self.target -= 1
            log.info("received SIGTTOU: %d worker(s)", self.target)

    # -- workers -----------------------------------------------------------------------------
    def _spawn(self) -> None:
        ready_r, ready_w = os.pipe()
        fd = self.sock.fileno()
        argv = [
            sys.executable,
            "-m",
            "dracula",
            "serve",
            *self.worker_argv,
            "--worker-fd",
            str(fd),
            "--ready-fd",
            str(ready_w),
        ]
        proc = subprocess.Popen(argv, pass_fds=(fd, ready_w), env=self.env)
        os.close(ready_w)
        self.workers.append(Worker(proc, ready_r, self.generation))
        log.info("started worker %d", proc.pid)

    def _reap(self) -> None:
        for worker in list(self.workers):
            code = worker.proc.poll()
            if code is None:
                continue
            self.workers.remove(worker)
            os.close(worker.ready_r)
            if self.metrics_dir is not None:
                from prometheus_client import multiprocess

                multiprocess.mark_process_dead(worker.pid, self.metrics_dir)
            if worker.retiring or self.stopping:
                log.info("worker %d exited (%s)", worker.pid, code)
                continue
            if not worker.ready and self._reloading():
                log.error(
                    "reload failed: new worker %d died before accepting (exit %s); keeping the old workers",
                    worker.pid,
                    _describe(code),
                )
                self._abort_reload()
                continue
            if not worker.ready:
                self.start_failures += 1
            log.warning("worker %d died (exit %s): replacing it", worker.pid, _describe(code))

    def _keep_count(self) -> None:
        """Replace dead workers and follow SIGTTIN/SIGTTOU, within the current generation."""
        current = [w for w in self.workers if w.generation == self.generation and not w.retiring]
        for _ in range(self.target - len(current)):
            self._spawn()
        if len(current) > self.target:
            for worker in current[: len(current) - self.target]:
                self._retire(worker)

    def _finish_reload(self) -> None:
        old = [w for w in self.workers if w.generation < self.generation and not w.retiring]
        if not old:
            return
        new = [w for w in self.workers if w.generation == self.generation]
        if new and all(w.ready for w in new):
            log.info("new workers accept: draining %d old worker(s)", len(old))
            for worker in old:
                self._retire(worker)
        elif self.reload_started is not None and time.monotonic() - self.reload_started > READY_TIMEOUT:
            log.error("new workers did not start within %gs: keeping the old ones", READY_TIMEOUT)
            self._abort_reload()

    def _reloading(self) -> bool:
        return any(w.generation < self.generation and not w.retiring for w in self.workers)

    def _abort_reload(self) -> None:
        for worker in self.workers:
            if worker.generation == self.generation:
                self._retire(worker)
        self.generation -= 1

    def _retire(self, worker: Worker) -> None:
        worker.retiring = True
        try:
            worker.proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass

    def _stop_all(self) -> None:
        self.stopping = True
        for worker in self.workers:
            self._retire(worker)
        deadline = time.monotonic() + self.config.drain_delay + self.config.graceful_timeout + 5
        for worker in list(self.workers):
            try:
                worker.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %d did not stop in time: killing it", worker.pid)
                worker.proc.kill()
                worker.proc.wait()
        self._reap()


def _describe(code: int) -> str:
    if code < 0:
        try:
            return "signal %s" % signal.Signals(-code).name
        except ValueError:
            return "signal %d" % -code
    return str(code)
