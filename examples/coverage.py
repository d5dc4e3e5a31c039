"""Handler for idl/coverage/coverage.thrift (which includes idl/coverage/base.thrift):
`dracula serve idl/coverage/coverage.thrift:CoverageService examples.coverage:CoverageHandler`.

Like examples/showcase.py it loads the IDL itself, under a module name of its own, to build
its structs and raise its exceptions. The methods of the extended BaseService (version,
make_item, raise_level) are served by the same handler.
"""

import os

import thriftpy2

coverage_thrift = thriftpy2.load(
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "idl", "coverage", "coverage.thrift"),
    module_name="coverage_thrift",
)
base = coverage_thrift.base

VERSION = "coverage/1"


class CoverageHandler:
    def __init__(self):
        self.noted = []

    # -- base.BaseService ------------------------------------------------------------------
    def version(self):
        return VERSION

    def make_item(self, name, count):
        # `count` has an IDL default (3): a thriftpy2 client that leaves it out sends 3.
        return base.Item(name=name, count=count)

    def raise_level(self, level):
        if level == base.Level.HIGH:
            raise base.ItemError(message="already HIGH")  # `level` keeps its IDL default, HIGH
        return {base.Level.LOW: base.Level.MID, base.Level.MID: base.Level.HIGH}[level]

    # -- CoverageService -------------------------------------------------------------------
    def echo_defaults(self, d):
        return d

    def fresh_defaults(self):
        # Only the required field is set: every other field leaves with its IDL default (or
        # unset, for `maybe`).
        return coverage_thrift.Defaults(must=-1)

    def echo_bag(self, bag):
        return bag

    def group(self, items):
        """Items grouped by the name of their level: map<string, list<Item>>."""
        names = {value: name for name, value in base.Level._NAMES_TO_VALUES.items()}
        catalog = {}
        for item in items:
            catalog.setdefault(names[item.level], []).append(item)
        return catalog

    def layers(self, n):
        """n maps, layer i: {j: {"i.j", ...}} — list<map<i32, set<string>>>."""
        return [{j: {"%d.%d" % (i, k) for k in range(j + 1)} for j in range(i + 1)} for i in range(n)]

    def concat(self, parts):
        return b"".join(parts)

    def with_default_arg(self, a, b):
        return a * 100 + (b if b is not None else -1)

    def needs(self, key, extra):
        return key if extra is None else "%s+%s" % (key, extra)

    def pick(self, items, index):
        if not items:
            raise coverage_thrift.Rejected(why="no items", evidence=coverage_thrift.Bag(items=[], blob=b""))
        if not 0 <= index < len(items):
            raise base.ItemError(message="index %d of %d" % (index, len(items)), level=base.Level.LOW)
        return items[index]

    def default_item(self):
        return coverage_thrift.DEFAULT_ITEM

    def constants(self):
        """The IDL's constants, carried back in a Bag."""
        c = coverage_thrift
        # thriftpy2 leaves the structs inside a const list<Item> as dicts: build them here.
        starter = [base.Item(**fields) for fields in c.STARTER]
        return c.Bag(
            catalog={"starter": starter, "default": [c.DEFAULT_ITEM]},
            layers=[{size: set(c.COLORS)} for size in sorted(c.LIMITS.values())],
            by_level={base.Level.LOW: c.DEFAULT_ITEM},
            blob=c.ANONYMOUS.encode(),
            items=starter,
            levels={base.Level.LOW, base.Level.MID, base.Level.HIGH},
            measures={int(p): p / 2 for p in c.PRIMES},
            by_mode={c.Mode.AUTO: {s for names in c.ALIASES.values() for s in names}},
            blobs=[base.GREETING.encode()],
            bits=[base.MAX_ITEMS == 100, base.RATIO == 0.25],
        )

    def toggle(self, mode):
        return {
            coverage_thrift.Mode.OFF: coverage_thrift.Mode.ON,
            coverage_thrift.Mode.ON: coverage_thrift.Mode.AUTO,
            coverage_thrift.Mode.AUTO: coverage_thrift.Mode.OFF,
        }[mode]

    def note(self, text):
        self.noted.append(text)

    def notes(self):
        return list(self.noted)
