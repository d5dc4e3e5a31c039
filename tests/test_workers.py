"""`dracula serve --workers N`: the prefork supervisor as operators run it.

Real supervisor and worker processes, real sockets, real signals. The handler is a module
written to tmp_path (served with --app-dir) so that tests can change it on disk (SIGHUP reload)
and hold a worker busy: `hold(tag)` writes markers/entered-TAG (holding its pid) and waits for
markers/release-TAG (or release-all) to appear.

The plumbing at the top (OpsApp, Served, call, ...) is shared with test_tls, test_uds and
test_observability.
"""
from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import thriftpy2
import thriftpy2.rpc

from .helpers import ROOT, run_cli, wait_until

# -- shared plumbing ---------------------------------------------------------------------------

OPS_IDL = """
exception Oops {
    1: string why,
}

service Ops {
    string pid(),
    string version(),
    string hold(1: string tag),
    string hold_blocking(1: string tag),
    string echo(1: string text) throws (1: Oops oops),
}
"""

# A client-side view with one method the server does not have (UNKNOWN_METHOD).
OPS_PLUS_IDL = OPS_IDL.replace("service Ops {", "service Ops {\n    string missing(),")

ops_thrift = thriftpy2.load_fp(io.StringIO(OPS_IDL), module_name="ops_thrift")
ops_plus_thrift = thriftpy2.load_fp(io.StringIO(OPS_PLUS_IDL), module_name="ops_plus_thrift")

HOLD_LIMIT = 60  # seconds a hold() waits for its release marker before giving up

HANDLER_SOURCE = '''
import os
import time

import thriftpy2

import dracula

MARKERS = {markers!r}
VERSION = {version!r}
if os.path.exists(os.path.join(MARKERS, "break-import")):
    raise RuntimeError("handler broken on purpose (break-import marker)")

ops_thrift = thriftpy2.load({idl!r}, module_name="ops_thrift")


def _hold(tag):
    with open(os.path.join(MARKERS, "entered-" + tag + ".tmp"), "w") as f:
        f.write(str(os.getpid()))
    os.rename(os.path.join(MARKERS, "entered-" + tag + ".tmp"), os.path.join(MARKERS, "entered-" + tag))
    deadline = time.monotonic() + {hold_limit!r}
    while time.monotonic() < deadline:
        if os.path.exists(os.path.join(MARKERS, "release-" + tag)) or \\
                os.path.exists(os.path.join(MARKERS, "release-all")):
            break
        time.sleep(0.01)
    return "%s:%d" % (tag, os.getpid())


class Handler:
    def pid(self):
        return str(os.getpid())

    def version(self):
        return VERSION

    def hold(self, tag):
        return _hold(tag)

    @dracula.blocking
    def hold_blocking(self, tag):
        return _hold(tag)

    def echo(self, text):
        if text == "oops":
            raise ops_thrift.Oops(why="asked for it")
        if text == "boom":
            raise RuntimeError("undeclared failure")
        return text
'''


class LocalOps:
    """The Ops handler for in-process servers (no hold: nothing here may block the test)."""

    def pid(self):
        return str(os.getpid())

    def version(self):
        return "local"

    def hold(self, tag):
        return tag

    hold_blocking = hold

    def echo(self, text):
        if text == "oops":
            raise ops_thrift.Oops(why="asked for it")
        if text == "boom":
            raise RuntimeError("undeclared failure")
        return text


class OpsApp:
    """The Ops IDL and handler module in a directory of their own, plus the hold markers."""

    def __init__(self, directory):
        self.dir = str(directory)
        self.idl = os.path.join(self.dir, "ops.thrift")
        self.markers = os.path.join(self.dir, "markers")
        os.makedirs(self.markers, exist_ok=True)
        with open(self.idl, "w") as f:
            f.write(OPS_IDL)
        self.write()

    @property
    def args(self) -> list:
        return ["%s:Ops" % self.idl, "opshandler:Handler", "--app-dir", self.dir]

    def write(self, version="v1", source=None):
        if source is None:
            source = HANDLER_SOURCE.format(markers=self.markers, version=version, idl=self.idl,
                                           hold_limit=HOLD_LIMIT)
        path = os.path.join(self.dir, "opshandler.py")
        with open(path + ".tmp", "w") as f:
            f.write(textwrap.dedent(source))
        os.rename(path + ".tmp", path)

    def write_broken(self):
        self.write(source="raise RuntimeError('this version cannot start')\n")

    def marker(self, name):
        return os.path.join(self.markers, name)

    def touch(self, name):
        with open(self.marker(name), "w"):
            pass

    def release(self, tag):
        self.touch("release-" + tag)

    def release_all(self):
        self.touch("release-all")

    def entered(self, tag, timeout=20.0) -> int:
        """Wait for hold(tag) to be entered; returns the pid of the process running it."""
        path = self.marker("entered-" + tag)
        assert wait_until(lambda: os.path.exists(path), timeout), "hold(%r) was never entered" % tag
        with open(path) as f:
            return int(f.read())


def call(target, method="pid", *args, timeout=20.0, service=None, **client_options):
    """One call on a new connection: `target` is a TCP port or a Unix socket path."""
    if isinstance(target, str):
        client_options["unix_socket"] = target
    else:
        client_options.update(host="127.0.0.1", port=target)
    client = thriftpy2.rpc.make_client(service or ops_thrift.Ops, timeout=int(timeout * 1000),
                                       **client_options)
    try:
        return getattr(client, method)(*args)
    finally:
        client.close()


class Background:
    """Run fn(*args) in a thread; .result() re-raises what it raised."""

    def __init__(self, fn, *args, **kwargs):
        self.value = None
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(fn, args, kwargs), daemon=True)
        self.thread.start()

    def _run(self, fn, args, kwargs):
        try:
            self.value = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            self.error = e

    def done(self) -> bool:
        return not self.thread.is_alive()

    def join(self, timeout=30.0):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "background call still running after %gs" % timeout

    def result(self, timeout=30.0):
        self.join(timeout)
        if self.error is not None:
            raise self.error
        return self.value


SERVING_TCP = r"dracula serving \S+ on 127\.0\.0\.1:(\d+) "


class Served:
    """`python -m dracula serve ARGS` in a session of its own (its workers with it), output
    collected line by line. close() releases held calls, stops it, and kills the whole group."""

    def __init__(self, *args, env=None):
        env = dict(os.environ if env is None else env)
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # a handler rewritten within a second must not hit a stale .pyc
        self.args = args
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen([sys.executable, "-m", "dracula", "serve", *args], cwd=ROOT,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = None
        self.app = None

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    @property
    def output(self) -> str:
        with self.cond:
            return "".join(self.lines)

    def matches(self, pattern) -> list:
        regex = re.compile(pattern)
        with self.cond:
            return [m for m in map(regex.search, self.lines) if m]

    def wait_for(self, pattern, count=1, timeout=20.0) -> list:
        """Wait until `count` output lines match `pattern`; returns their matches."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [m for m in map(regex.search, self.lines) if m]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or (not self._reader.is_alive() and self.proc.poll() is not None):
                    raise AssertionError("no %d line(s) matching %r within %gs; output:\n%s"
                                         % (count, pattern, timeout, "".join(self.lines)))
                self.cond.wait(min(left, 0.5))

    def wait_serving(self, timeout=20.0) -> int:
        self.port = int(self.wait_for(SERVING_TCP, timeout=timeout)[0].group(1))
        return self.port

    def wait_workers(self, n, timeout=20.0) -> list:
        """Pids of the first n workers to report 'accepting'."""
        return [int(m.group(1)) for m in self.wait_for(r"worker (\d+) accepting", n, timeout)[:n]]

    def signal(self, signum):
        self.proc.send_signal(signum)

    def wait(self, timeout=30.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def close(self):
        if self.app is not None:
            self.app.release_all()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        try:  # the supervisor and any worker it left behind
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait(10)


def live_children(pid) -> set:
    """Pids of the live (not zombie) child processes of `pid`."""
    children = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            children.add(int(entry))
    return children


def alive(pid) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.fixture
def app(tmp_path):
    return OpsApp(tmp_path)


@pytest.fixture
def serve(app):
    """serve(*extra_args): start `dracula serve` on the Ops app; stopped at teardown."""
    started = []

    def start(*extra, wait=True):
        served = Served(*app.args, *extra)
        served.app = app
        started.append(served)
        if wait:
            served.wait_serving()
        return served

    yield start
    for served in started:
        served.close()


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
        assert wait_until(lambda: answered.add(int(call(port, "pid"))) or answered >= workers, 15), \
            (workers, answered)
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
    result = run_cli("serve", "%s:Ops" % (tmp_path / "ops.thrift"), "opshandler:Handler",
                     "--app-dir", str(tmp_path), "--port", "0", "--workers", "2")
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
        elapsed, served.output)
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
            except Exception as e:  # noqa: BLE001 - counted and reported
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
        len(hammer.errors), hammer.calls(), hammer.errors[:3], served.output)
    # Once the old workers are gone (a call or two may have been on its way back from one).
    assert len(hammer.replies) >= after + 20
    assert set(hammer.replies[after + 2:]) == {"v2"}, hammer.replies[after:]
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
