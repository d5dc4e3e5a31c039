"""Reading the server's "dracula.refused" lines from pytest's caplog."""

from __future__ import annotations

import re

from .helpers import wait_until


def refusal_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "dracula.refused"]


def refusals_of(caplog, peer):
    prefix = "refused %s: " % peer
    return [line for line in refusal_lines(caplog) if line.startswith(prefix)]


def assert_one_refusal(caplog, peer, reason_pattern):
    """Exactly one "dracula.refused" line for this peer, giving the reason. (The server logs
    before it closes or answers, so the line is there once the client has seen the outcome;
    the poll only absorbs a slow log handler.)"""
    wait_until(lambda: refusals_of(caplog, peer), 5)
    lines = refusals_of(caplog, peer)
    assert len(lines) == 1, "refusal lines for %s: %r (all: %r)" % (peer, lines, refusal_lines(caplog)[:30])
    assert re.search(reason_pattern, lines[0]), lines[0]
    return lines[0]
