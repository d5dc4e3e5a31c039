"""The `dracula` command as users run it: `dracula serve` as a child process (its output, its
signals, its workers) and one-shot commands run to completion."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

from .helpers import ROOT

SERVING_TCP = r"dracula serving .* on (\S+):(\d+) "


class CliServer:
    """`python -m dracula serve ARGS` in a session of its own (its workers with it), its output
    collected line by line. Unless wait=False, returns once the 'serving' line is out (.port
    read from it). close() stops it and kills the whole group."""

    def __init__(self, *args, cwd=ROOT, env=None, wait=True):
        env = dict(os.environ if env is None else env)
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # a handler rewritten within a second must not hit a stale .pyc
        self.args = args
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dracula", "serve", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self.port = None
        # Read its output all along, so that it never blocks on a full pipe.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if wait:
            try:
                self.wait_serving()
            except BaseException:
                self.close()
                raise

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
                    raise AssertionError(
                        "no %d line(s) matching %r within %gs; output:\n%s"
                        % (count, pattern, timeout, "".join(self.lines))
                    )
                self.cond.wait(min(left, 0.5))

    def wait_serving(self, timeout=30.0) -> int:
        self.port = int(self.wait_for(SERVING_TCP, timeout=timeout)[0].group(2))
        return self.port

    def wait_workers(self, n, timeout=20.0) -> list:
        """Pids of the first n workers to report 'accepting'."""
        return [int(m.group(1)) for m in self.wait_for(r"worker (\d+) accepting", n, timeout)[:n]]

    def signal(self, signum=signal.SIGTERM):
        self.proc.send_signal(signum)

    def wait(self, timeout=30.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        try:  # the server and any worker it left behind
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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
        fields = stat[stat.rindex(")") + 2 :].split()
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


def run_cli(*args, timeout=30, cwd=ROOT):
    """Run `dracula ...` to completion; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "dracula", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def assert_one_line_error(result, *fragments) -> str:
    """The command exited 2 with one 'dracula: error: ...' line (containing every fragment) and
    no traceback; returns that line."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dracula: error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]
