"""The calls the throughput benchmarks send: which service, which handler, which arguments.

A Workload names everything a server under test needs to serve it (`idl:Service` and a
`module:Class` handler, as `dracula serve` takes them) and everything the load side needs to
send it and check the answer (the method, its arguments, the value the reply must carry).

- `ping`: idl/pingpong.thrift's `string ping()` -> "pong" (benchmarks/ping_qps.py);
- `small`, `medium`, `large`: idl/payload.thrift's `i32 count(1: Shape shape)` -> the number of
  points, with a Shape of ~0.4 KB, ~26 KB and ~1 MB on the wire (benchmarks/payload_qps.py):
  lists of structs, a map of lists of structs, a set of i64, a string and bytes, so the server
  walks, decodes and allocates in proportion to the size.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable

import thriftpy2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@functools.cache
def load_idl(idl: str):
    """The IDL (a path relative to the repo root) as a thriftpy2 module, loaded once."""
    stem = os.path.splitext(os.path.basename(idl))[0]
    return thriftpy2.load(os.path.join(ROOT, idl), module_name="%s_bench_thrift" % stem)


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    idl: str  # relative to the repo root
    service: str
    handler: str  # module:Class, importable from the repo root
    method: str
    make_args: Callable  # thriftpy2 module -> the call's keyword arguments
    expected: object  # what the reply's `success` must be
    about: str

    @property
    def target(self) -> str:
        """`idl:Service`, as `dracula serve` and the peers take it."""
        return "%s:%s" % (self.idl, self.service)

    def thrift_service(self):
        return getattr(load_idl(self.idl), self.service)

    def args(self) -> dict:
        return self.make_args(load_idl(self.idl))


def _shape(module, points: int, labels: int, label_points: int, tags: int, blob: int) -> dict:
    Point = module.Point
    return {
        "shape": module.Shape(
            name="shape with %d points" % points,
            points=[Point(x=i, y=-i) for i in range(points)],
            labels={"label-%d" % k: [Point(x=k, y=j) for j in range(label_points)] for k in range(labels)},
            tags={i * 7919 - (1 << 40) for i in range(tags)},
            blob=bytes(range(256)) * (blob // 256) + bytes(blob % 256),
        )
    }


PING = Workload(
    "ping",
    "idl/pingpong.thrift",
    "PingService",
    "examples.pingpong:PingHandler",
    "ping",
    lambda module: {},
    "pong",
    'PingService.ping() -> "pong"',
)

# points, labels x points each, tags, blob bytes: ~0.4 KB, ~26 KB, ~1 MB encoded.
PAYLOAD_SIZES = {
    "small": (10, 1, 3, 10, 60),
    "medium": (1000, 10, 50, 100, 2500),
    "large": (40000, 400, 50, 4000, 80000),
}


def _payload(size: str) -> Workload:
    points, labels, label_points, tags, blob = PAYLOAD_SIZES[size]
    return Workload(
        size,
        "idl/payload.thrift",
        "PayloadService",
        "examples.payload:PayloadHandler",
        "count",
        functools.partial(_shape, points=points, labels=labels, label_points=label_points, tags=tags, blob=blob),
        points,
        "PayloadService.count(Shape): %d points, %d labels x %d points, %d tags, %d-byte blob"
        % (points, labels, label_points, tags, blob),
    )


WORKLOADS = {w.name: w for w in (PING, *(_payload(size) for size in PAYLOAD_SIZES))}
