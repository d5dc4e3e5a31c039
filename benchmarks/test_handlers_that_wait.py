"""handlers_that_wait.py's pieces, and one short end-to-end run of its mixed load.

The plain handlers must stay plain (what a thriftpy2 user writes: no decorator, not a
coroutine) and their twins marked blocking; server names with `+blocking[N]` must pick the twin
(and the pool size); the mixed load must measure both groups on one live server. ~5 s. Run:
`python -m pytest benchmarks/test_handlers_that_wait.py -x -q -p no:cacheprovider`.
"""

from __future__ import annotations

import inspect
import json

import callwire
import handlers_that_wait as hw
from benchmarks.wait_handlers import BlockingWaitHandler, WaitHandler
from examples.hash import BlockingHashHandler, HashHandler


def test_plain_handlers_are_plain_and_twins_are_blocking():
    pairs = ((WaitHandler, BlockingWaitHandler, "wait"), (HashHandler, BlockingHashHandler, "md_five"))
    for plain, twin, method in pairs:
        fn = getattr(plain, method)
        assert not hasattr(fn, "__dracula_blocking__") and not inspect.iscoroutinefunction(fn)
        assert getattr(getattr(twin, method), "__dracula_blocking__", False)
    assert WaitHandler().wait(1) == BlockingWaitHandler().wait(1) == "waited 1 ms"
    assert WaitHandler().ping() == "pong"
    assert HashHandler().md_five(hw.hashload.SEED_INPUT) == hw.MD5.expected


def test_server_names():
    wait = hw.wait_workload(20)
    spec, served = hw.variant("dracula-uv", wait)
    assert served.handler == "benchmarks.wait_handlers:WaitHandler" and "--blocking-threads" not in spec.argv
    spec, served = hw.variant("dracula-uv+blocking", wait)
    assert served.handler == "benchmarks.wait_handlers:BlockingWaitHandler" and "--blocking-threads" not in spec.argv
    assert served.name == wait.name  # so the ratio column finds its baseline's row
    spec, served = hw.variant("dracula-uv+blocking64", hw.MD5)
    assert served.handler == "examples.hash:BlockingHashHandler"
    assert spec.name == "dracula-uv+blocking64" and spec.argv[-2:] == ("--blocking-threads", "64")
    assert hw.variant("nonesuch+blocking", wait) is None
    for workload in (wait, hw.PING, hw.MD5):
        assert callwire.encode_call(workload)  # the IDL loads and the arguments encode


def test_mixed_load_end_to_end(tmp_path):
    status = hw.main(
        [
            "--rows",
            "C",
            "--servers",
            "dracula-uv+blocking",
            "--seconds",
            "0.5",
            "--warmup",
            "0.2",
            "--mixed-connections",
            "2",
            "--ping-connections",
            "1",
            "--pause",
            "0",
            "--quiet",
            "--out",
            str(tmp_path),
        ]
    )
    assert status == 0
    (row,) = json.loads((tmp_path / "handlers_that_wait.json").read_text())["results"]
    assert "failed" not in row, row.get("failed")
    assert row["part"] == "C" and row["connections"] == 2 and row["ping"]["connections"] == 1
    assert row["requests"] > 0 and row["ping"]["requests"] > 0
    assert row["errors"] == row["ping"]["errors"] == 0
    assert "## C. Mixed" in (tmp_path / "handlers_that_wait.md").read_text()
