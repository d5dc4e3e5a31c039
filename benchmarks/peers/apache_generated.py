"""The code `thrift --gen py:dynamic` would generate for the benchmarks' services (there is no
thrift compiler here): structs with their `thrift_spec` (which Apache's C accelerator,
fastbinary, reads; without it TBase falls back to the pure-Python protocol), wired up with
`fix_spec` as the generated `ttypes.py` does, and each service's methods.

SERVICES: service name -> {method: (args class, result class)}.
"""

from __future__ import annotations

from thrift.protocol.TBase import TBase
from thrift.Thrift import TType
from thrift.TRecursive import fix_spec


class Struct(TBase):
    """A generated struct: fields from thrift_spec, set from keyword arguments (fastbinary
    builds nested structs as Class(**fields))."""

    thrift_spec = ()

    def __init__(self, **fields):
        for spec in self.thrift_spec:
            if spec is not None:
                setattr(self, spec[2], fields.get(spec[2], spec[4]))


# idl/pingpong.thrift
class ping_args(Struct):
    thrift_spec = ()


class ping_result(Struct):
    thrift_spec = ((0, TType.STRING, "success", "UTF8", None),)


# idl/payload.thrift
class Point(Struct):
    pass


class Shape(Struct):
    pass


class count_args(Struct):
    pass


class count_result(Struct):
    thrift_spec = ((0, TType.I32, "success", None, None),)


Point.thrift_spec = (None, (1, TType.I32, "x", None, None), (2, TType.I32, "y", None, None))
Shape.thrift_spec = (
    None,
    (1, TType.STRING, "name", "UTF8", None),
    (2, TType.LIST, "points", (TType.STRUCT, [Point, None], False), None),
    (3, TType.MAP, "labels", (TType.STRING, "UTF8", TType.LIST, (TType.STRUCT, [Point, None], False), False), None),
    (4, TType.SET, "tags", (TType.I64, None, False), None),
    (5, TType.STRING, "blob", "BINARY", None),
)
count_args.thrift_spec = (None, (1, TType.STRUCT, "shape", [Shape, None], None))
fix_spec([ping_args, ping_result, Point, Shape, count_args, count_result])

SERVICES = {
    "PingService": {"ping": (ping_args, ping_result)},
    "PayloadService": {"count": (count_args, count_result)},
}
