"""What every peer script shares: its command line and the service it serves.

Each peer is started by benchmarks/servers.py as `python benchmarks/peers/<name>.py IDL:Service
module:Class --host H --port P --backlog B` (the service and handler as `dracula serve` takes
them, from benchmarks/workloads.py; PingService and examples.pingpong's handler when left out),
serves that service with that handler (or an async twin where the server needs one), and runs
until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

import thriftpy2

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "service",
        nargs="?",
        default="idl/pingpong.thrift:PingService",
        help="IDL:Service, the IDL's path relative to the repo root",
    )
    parser.add_argument(
        "handler",
        nargs="?",
        default="examples.pingpong:PingHandler",
        help="module:Class, importable from the repo root",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backlog", type=int, default=4096)
    return parser.parse_args()


def load_service(args):
    """The service class of `args.service` (IDL:Service), loaded with thriftpy2."""
    idl, _, name = args.service.rpartition(":")
    stem = os.path.splitext(os.path.basename(idl))[0]
    module = thriftpy2.load(os.path.join(ROOT, idl), module_name="%s_thrift" % stem)
    return getattr(module, name)


def make_handler(args):
    """An instance of `args.handler` (module:Class), the one `dracula serve` would use."""
    module, _, name = args.handler.partition(":")
    return getattr(importlib.import_module(module), name)()


def service_name(args) -> str:
    return args.service.rpartition(":")[2]
