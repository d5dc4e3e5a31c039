"""`python -m examples.fleet.fleet demo`: three instances behind HAProxy, 50 client connections
calling through it, a rolling restart of every instance under that load, then a fourth instance
that pooled connections move to (--max-connection-age); prints what the clients saw."""

from __future__ import annotations

import os
import time

import thriftpy2

from examples.fleet.fleet import ROOT
from examples.fleet.load import Load

MAX_AGE = 2.0  # seconds: the replacements' and the new instance's --max-connection-age


def demo(fleet, instances: int = 3, proxy: str = "HAProxy") -> int:
    pingpong = thriftpy2.load(os.path.join(ROOT, "idl", "pingpong.thrift"), module_name="pingpong_thrift")
    fleet.slots = instances + 1  # room for the instance added at the end
    load = None
    try:
        fleet.start(instances)
        print("fleet up: %s on 127.0.0.1:%d sees %s" % (proxy, fleet.proxy_port, fleet.server_states()))
        load = Load(pingpong.PingService, "127.0.0.1", fleet.proxy_port, connections=50)
        age = ("--max-connection-age", str(MAX_AGE))
        for slot in range(1, instances + 1):
            code = fleet.stop_instance(slot)
            fleet.start_instance(slot, age)
            fleet.wait_states({slot: "UP"})
            print("restarted d%d (old one exited %d): %s" % (slot, code, load.summary()))
        added = instances + 1
        fleet.start_instance(added, age)
        fleet.wait_states({added: "UP"})
        before = {slot: fleet.calls(slot) for slot in fleet.instances}
        time.sleep(2 * MAX_AGE)  # a demo: let the pooled connections move, then look
        after = {slot: fleet.calls(slot) for slot in fleet.instances}
        served = {"d%d" % slot: int(after[slot] - before[slot]) for slot in after}
        print("added d%d; calls per instance over the next %gs: %s" % (added, 2 * MAX_AGE, served))
    finally:
        if load is not None:
            load.stop()
        fleet.stop()
    print(load.summary())
    for error in load.failed[:5]:
        print("  failed:", error)
    return 1 if load.failed else 0
