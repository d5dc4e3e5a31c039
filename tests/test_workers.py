"""`dracula serve --workers N`: the prefork supervisor as operators run it.

Real supervisor and worker processes, real sockets, real signals. The handler is the Ops app
(tests/ops_app.py), served with --app-dir so that tests can change it on disk (SIGHUP reload)
and hold a worker busy.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time

import pytest
import thriftpy2.rpc
from thriftpy2.thrift import TApplicationException

from .cli_server import alive, live_children, run_cli
from .helpers import Background, free_port, wait_until
from .ops_app import OPS_IDL, call, ops_thrift
from .status_client import http_get


def supervised(serve, backend, workers=2, *extra):
    served = serve("--port", "0", "--backend", backend, "--workers", str(workers), *extra)
    served.workers = served.wait_workers(workers)
    return served


# -- every worker serves; the load spreads ------------------------------------------------------


def test_every_worker_serves_and_a_busy_one_leaves_calls_to_the_other(serve, app, backend):
    served = supervised(serve, backend)
    port = served.port
    workers = set(served.workers)
    assert workers <= live_children(served.pid), "workers are not the supervisor's children"

    held = Background(call, port, "hold", "a")
    busy = app.entered("a")
    assert busy in workers
    answered = set()
    if backend == "uv":
        # A sync handler occupies worker A's loop: it cannot accept, so the other one must.
        for _ in range(6):
            answered.add(int(call(port, "pid")))
        assert answered and busy not in answered, (busy, answered)
    else:
        # Threads: A still accepts while one of its threads is held; calls go to both.
        assert wait_until(lambda: answered.add(int(call(port, "pid"))) or answered >= workers, 15), (workers, answered)
    assert not held.done(), "the held call returned before its release"
    app.release("a")
    assert held.result() == "a:%d" % busy
    assert answered | {busy} == workers, (answered, busy, workers)


# -- a dead worker is replaced ------------------------------------------------------------------


def test_killed_worker_is_replaced_and_the_new_one_serves(serve, backend):
    served = supervised(serve, backend)
    port = served.port
    victim = int(call(port, "pid"))
    assert victim in served.workers
    os.kill(victim, signal.SIGKILL)
    served.wait_for(r"worker %d died \(exit signal SIGKILL\): replacing it" % victim)
    seen = set()

    def new_worker_answers():
        pid = int(call(port, "pid"))  # any failure here fails the test: the others keep serving
        seen.add(pid)
        return pid not in served.workers

    assert wait_until(new_worker_answers, 15), "no new worker answered; pids seen: %s" % seen
    assert victim not in seen
    new = seen - set(served.workers)
    assert new <= live_children(served.pid)
    assert len(live_children(served.pid)) == 2


def test_workers_that_keep_dying_at_start_up_stop_the_supervisor_with_exit_1(serve, app):
    served = supervised(serve, "uv")
    app.touch("break-import")  # every worker started from now on fails to import the handler
    os.kill(served.workers[0], signal.SIGKILL)
    code = served.wait(30)
    out = served.output
    assert code == 1, out
    assert re.search(r"ERROR dracula\.supervisor: \d+ workers in a row died before accepting: giving up", out), out
    assert "broken on purpose" in out, out  # the workers' own error says why
    assert not any(alive(pid) for pid in served.workers), "a worker outlived its supervisor"


def test_handler_that_cannot_import_fails_before_forking(tmp_path):
    (tmp_path / "ops.thrift").write_text(OPS_IDL)
    (tmp_path / "opshandler.py").write_text("raise RuntimeError('broken at import')\n")
    result = run_cli(
        "serve",
        "%s:Ops" % (tmp_path / "ops.thrift"),
        "opshandler:Handler",
        "--app-dir",
        str(tmp_path),
        "--port",
        "0",
        "--workers",
        "2",
    )
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dracula: error: "), result.stderr
    assert "broken at import" in lines[0], lines[0]
    assert "started worker" not in result.stdout + result.stderr


# -- graceful stop ------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_drains_in_flight_calls_then_exits_0(serve, app, backend, signum):
    served = supervised(serve, backend, 2, "--graceful-timeout", "30")
    port = served.port
    idle = thriftpy2.rpc.make_client(ops_thrift.Ops, "127.0.0.1", port, timeout=20_000)
    try:
        assert idle.version() == "v1"  # an idle keep-alive connection must not hold up the stop
        held_a = Background(call, port, "hold", "a")
        pid_a = app.entered("a")
        held_b = Background(call, port, "hold", "b")
        pid_b = app.entered("b")
        if backend == "uv":
            assert pid_a != pid_b  # worker A's loop is busy: B took the second call
        started = time.monotonic()
        served.signal(signum)
        name = signal.Signals(signum).name
        served.wait_for(r"received %s: stopping 2 worker\(s\)" % name)
        # Both workers got the stop (a worker's handler runs between the held call's sleeps).
        served.wait_for(r"INFO dracula: received SIGTERM: stopping", count=2)
        assert not held_a.done() and not held_b.done()
        assert served.proc.poll() is None
        app.release("a")
        app.release("b")
        assert held_a.result() == "a:%d" % pid_a
        assert held_b.result() == "b:%d" % pid_b
        assert served.wait(25) == 0, served.output
        assert time.monotonic() - started < 25
    finally:
        idle.close()
    out = served.output
    assert "all workers stopped" in out, out
    assert "Traceback" not in out, out
    for pid in served.workers:
        assert re.search(r"worker %d exited \(0\)" % pid, out), out


def test_graceful_timeout_bounds_the_stop_of_a_stuck_call(serve, app, backend):
    served = supervised(serve, backend, 2, "--graceful-timeout", "1")
    held = Background(call, served.port, "hold", "stuck", timeout=40)
    app.entered("stuck")
    started = time.monotonic()
    served.signal(signal.SIGTERM)
    served.wait(25)  # never released: the stop must not wait for the handler (it holds 60 s)
    assert time.monotonic() - started < 25
    held.join(15)
    assert held.error is not None, "a call stuck past the graceful timeout got a reply: %r" % held.value
    assert not any(alive(pid) for pid in served.workers), served.output


def test_graceful_timeout_bounds_the_stop_of_a_single_process_server(serve, app):
    """Without --workers: a stuck @blocking handler must not keep the process alive past the
    graceful timeout (the reply is abandoned, the process exits)."""
    served = serve("--port", "0", "--graceful-timeout", "1")
    held = Background(call, served.port, "hold_blocking", "stuck", timeout=40)
    app.entered("stuck")
    started = time.monotonic()
    served.signal(signal.SIGTERM)
    served.wait_for(r"graceful timeout: closing 1 connection")
    try:
        code = served.proc.wait(8)
    except subprocess.TimeoutExpired:
        code = None
    elapsed = time.monotonic() - started
    assert code is not None, "still running %.0fs after SIGTERM with --graceful-timeout 1:\n%s" % (
        elapsed,
        served.output,
    )
    held.join(15)
    assert held.error is not None


# -- SIGHUP reload ------------------------------------------------------------------------------


class Hammer:
    """Calls version() continuously from `threads` threads, a new connection per call."""

    def __init__(self, target, threads=2):
        self.target = target
        self.replies = []
        self.errors = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for thread in self.threads:
            thread.start()

    def _run(self):
        while not self.stopping.is_set():
            try:
                reply = call(self.target, "version", timeout=20)
            except Exception as e:  # counted and reported
                with self.lock:
                    self.errors.append(repr(e))
            else:
                with self.lock:
                    self.replies.append(reply)

    def calls(self) -> int:
        with self.lock:
            return len(self.replies) + len(self.errors)

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)
            assert not thread.is_alive()


def test_sighup_reloads_changed_code_without_failing_a_call(serve, app, backend):
    served = supervised(serve, backend)
    old = served.workers
    hammer = Hammer(served.port)
    try:
        assert wait_until(lambda: hammer.calls() >= 20, 15), hammer.errors[:3]
        app.write(version="v2")
        served.signal(signal.SIGHUP)
        served.wait_for(r"received SIGHUP: starting 2 new worker\(s\)")
        assert wait_until(lambda: "v2" in hammer.replies or len(hammer.errors) > 20, 20), served.output
        for pid in old:
            served.wait_for(r"worker %d exited" % pid)
        assert wait_until(lambda: not any(alive(pid) for pid in old), 10)
        with hammer.lock:
            after = len(hammer.replies)
        wait_until(lambda: len(hammer.replies) >= after + 20 or len(hammer.errors) > 20, 15)
    finally:
        hammer.stop()
    assert hammer.errors == [], "%d of %d calls failed during the reload, e.g. %s\n%s" % (
        len(hammer.errors),
        hammer.calls(),
        hammer.errors[:3],
        served.output,
    )
    # Once the old workers are gone (a call or two may have been on its way back from one).
    assert len(hammer.replies) >= after + 20
    assert set(hammer.replies[after + 2 :]) == {"v2"}, hammer.replies[after:]
    # Workers share one listening socket: one worker must not disturb another's accept().
    assert "accept failed" not in served.output, served.output
    answered = {int(call(served.port, "pid")) for _ in range(6)}
    assert not answered & set(old), "an old worker still answers"
    assert answered <= live_children(served.pid)
    assert len(live_children(served.pid)) == 2


def test_reload_whose_code_cannot_start_keeps_the_old_workers(serve, app, backend):
    served = supervised(serve, backend)
    old = set(served.workers)
    app.write_broken()
    served.signal(signal.SIGHUP)
    served.wait_for(r"ERROR dracula\.supervisor: reload failed: new worker \d+ died before accepting")
    assert "this version cannot start" in served.output
    assert all(alive(pid) for pid in old)
    for _ in range(6):
        assert call(served.port, "version") == "v1"
    assert wait_until(lambda: live_children(served.pid) == old, 10), (live_children(served.pid), old)
    assert served.proc.poll() is None
    # Fixed code reloads as usual afterwards.
    app.write(version="v2")
    served.signal(signal.SIGHUP)
    served.wait_for(r"new workers accept: draining 2 old worker\(s\)")
    assert wait_until(lambda: not any(alive(pid) for pid in old), 15)
    assert call(served.port, "version") == "v2"


# -- SIGTTIN / SIGTTOU --------------------------------------------------------------------------


def test_sigttin_adds_a_worker_and_sigttou_removes_one(serve, backend):
    served = supervised(serve, backend)
    port = served.port
    assert live_children(served.pid) == set(served.workers)

    served.signal(signal.SIGTTIN)
    served.wait_for(r"received SIGTTIN: 3 worker\(s\)")
    third = served.wait_workers(3)[2]
    assert wait_until(lambda: len(live_children(served.pid)) == 3, 10)
    assert third in live_children(served.pid)
    assert call(port, "version") == "v1"

    served.signal(signal.SIGTTOU)
    served.wait_for(r"received SIGTTOU: 2 worker\(s\)")
    gone = int(served.wait_for(r"worker (\d+) exited")[0].group(1))
    assert wait_until(lambda: len(live_children(served.pid)) == 2, 10)
    assert gone not in live_children(served.pid)
    for _ in range(6):  # the workers left serve on
        assert int(call(port, "pid")) in live_children(served.pid)

    served.signal(signal.SIGTTOU)
    served.wait_for(r"received SIGTTOU: 1 worker\(s\)")
    served.wait_for(r"worker (\d+) exited", count=2)
    assert wait_until(lambda: len(live_children(served.pid)) == 1, 10)
    (last,) = live_children(served.pid)
    for _ in range(4):
        assert int(call(port, "pid")) == last
    served.signal(signal.SIGTERM)
    assert served.wait(20) == 0, served.output


# -- /healthz sees the workers' shedding (--unhealthy-when-shedding) -------------------------------


def hold_in_every_worker(app, port, workers) -> list:
    """A @blocking hold() in flight in each worker (their --max-requests 1 is then reached):
    holds land where the accept queue sends them, so keep starting one until every worker holds
    one; those sent to a worker that already holds one are shed. The calls, to release later."""
    holders, calls = set(), []
    for n in range(50):
        if holders == set(workers):
            return calls
        tag = "hold%d" % n
        holding = Background(call, port, "hold_blocking", tag)
        calls.append(holding)
        entered = app.marker("entered-" + tag)
        assert wait_until(lambda e=entered, h=holding: os.path.exists(e) or h.done(), 20)
        if not holding.done():
            holders.add(app.entered(tag))
    raise AssertionError("50 holds did not reach every worker: %s of %s" % (holders, workers))


def test_healthz_fails_while_the_workers_shed_most_calls(serve, app, backend):
    metrics_port = free_port()
    served = supervised(
        serve, backend, 2, "--max-requests", "1", "--metrics-port", str(metrics_port), "--unhealthy-when-shedding"
    )
    assert wait_until(lambda: http_get(metrics_port, "/healthz")[0] == 200, 10)
    held = hold_in_every_worker(app, served.port, served.workers)
    try:
        for _ in range(5):  # every worker is full: each of these is shed
            with pytest.raises(TApplicationException, match="overloaded"):
                call(served.port, "pid")
        assert wait_until(lambda: http_get(metrics_port, "/healthz")[0] == 503, 10), (
            "the supervisor's /healthz did not see its workers shed"
        )
    finally:
        app.release_all()
    for holding in held:
        holding.join()
    # A quiet window: healthy again.
    assert wait_until(lambda: http_get(metrics_port, "/healthz")[0] == 200, 10)
