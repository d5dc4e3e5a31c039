"""What every peer script shares: its command line and the service it serves.

Each peer is started by benchmarks/servers.py as `python benchmarks/peers/<name>.py --host H
--port P --backlog B`, serves idl/pingpong.thrift's PingService with examples.pingpong's
handler (or an async twin where the server needs one), and runs until SIGTERM/SIGINT.
"""
from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PINGPONG_IDL = os.path.join(ROOT, "idl", "pingpong.thrift")

if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backlog", type=int, default=4096)
    return parser.parse_args()


def load_pingpong():
    """idl/pingpong.thrift as a thriftpy2 module."""
    import thriftpy2
    return thriftpy2.load(PINGPONG_IDL, module_name="pingpong_thrift")


def ping_handler():
    """The handler `dracula serve ... examples.pingpong:PingHandler` uses."""
    from examples.pingpong import PingHandler
    return PingHandler()
