"""The handler the client's fleet test serves with `dracula serve`: Showcase, whose `add` notes
each call's first argument (a token unique per call) in a ledger file of its own process, so the
test can show that no call ran twice and none was lost, across processes and restarts."""

from __future__ import annotations

import os

from examples.showcase import ShowcaseHandler

LEDGER_DIR = "DRACULA_CLIENT_LEDGER"


class LedgerHandler(ShowcaseHandler):
    def __init__(self):
        super().__init__()
        self._ledger = None
        self._pid = None

    def add(self, a, b):
        if self._pid != os.getpid():  # a forked worker: a file of its own
            self._pid = os.getpid()
            path = os.path.join(os.environ[LEDGER_DIR], "%d.ledger" % self._pid)
            self._ledger = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(self._ledger, b"%d\n" % a)  # one write per line: whole lines, never interleaved
        return a + b
