"""IDL coverage: idl/coverage/coverage.thrift (which includes idl/coverage/base.thrift) served by
examples/coverage.py, round-tripped over real sockets on both backends with thriftpy2 clients
(binary and compact, buffered and framed).

What "defaults" and "optional" mean here is what thriftpy2 defines:
- a struct built without a field gets the IDL default (optional fields too), else None;
- a field whose value is None is not written; any other value is, optional or not;
- a field absent on the wire is left at the reader's default, so a field the client set to
  None comes back from an echo as its IDL default;
- `required` is not checked inside structs by thriftpy2's codec; dracula checks required
  *arguments* and answers PROTOCOL_ERROR when one is missing.
"""

from __future__ import annotations

import contextlib
import math
import os

import pytest
import thriftpy2
import thriftpy2.rpc
from thriftpy2.protocol import TCompactProtocolFactory, TCyBinaryProtocolFactory
from thriftpy2.thrift import TApplicationException, TType
from thriftpy2.transport import TCyBufferedTransportFactory, TCyFramedTransportFactory

from examples.coverage import VERSION, CoverageHandler

from .cli_server import CliServer
from .helpers import BACKENDS, IDL, running

# The test's own copy of the IDL, as a client would load it (the handler loads its own).
cov = thriftpy2.load(os.path.join(IDL, "coverage", "coverage.thrift"), module_name="cov_client_thrift")
base = cov.base
Item, Level, Mode = base.Item, base.Level, cov.Mode

SAFETY_TIMEOUT_MS = 10_000

WIRES = {
    "binary-buffered": (TCyBinaryProtocolFactory, TCyBufferedTransportFactory),
    "binary-framed": (TCyBinaryProtocolFactory, TCyFramedTransportFactory),
    "compact-buffered": (TCompactProtocolFactory, TCyBufferedTransportFactory),
    "compact-framed": (TCompactProtocolFactory, TCyFramedTransportFactory),
}


@pytest.fixture(scope="module")
def servers():
    with contextlib.ExitStack() as stack:
        yield {
            backend: stack.enter_context(running(cov.CoverageService, CoverageHandler(), backend=backend))
            for backend in BACKENDS
        }


@pytest.fixture(params=[(b, w) for b in BACKENDS for w in WIRES], ids=lambda p: "%s-%s" % p)
def client(request, servers):
    backend, wire = request.param
    proto, trans = WIRES[wire]
    c = thriftpy2.rpc.make_client(
        cov.CoverageService,
        "127.0.0.1",
        servers[backend].port,
        proto_factory=proto(),
        trans_factory=trans(),
        timeout=SAFETY_TIMEOUT_MS,
    )
    yield c
    c.close()


def item(name, **kw):
    return Item(name=name, **kw)


def canon(value, ttype=TType.STRUCT, spec=None):
    """`value` as plain comparable data, following its thrift_spec: thriftpy2 decodes a set<T>
    as a list (its own semantics), so sets become frozensets on both sides of a comparison."""
    if value is None:
        return None
    if ttype == TType.STRUCT:
        fields = []
        for _, field in sorted(type(value).thrift_spec.items()):
            ftype, name = field[0], field[1]
            fields.append((name, canon(getattr(value, name), ftype, field[2] if len(field) > 3 else None)))
        return (type(value).__name__, tuple(fields))
    if ttype in (TType.LIST, TType.SET):
        etype, espec = (spec, None) if isinstance(spec, int) else spec
        items = [canon(v, etype, espec) for v in value]
        return frozenset(items) if ttype == TType.SET else items
    if ttype == TType.MAP:
        (ktype, kspec), (vtype, vspec) = [(x, None) if isinstance(x, int) else x for x in spec]
        return {canon(k, ktype, kspec): canon(v, vtype, vspec) for k, v in value.items()}
    return value


def same(got, sent):
    return canon(got) == canon(sent)


# -- the included base service, through the extending service ----------------------------------


def test_extended_service_methods(client):
    assert client.version() == VERSION
    # make_item's `count` argument has an IDL default of 3: thriftpy2 sends it when left out.
    assert client.make_item("widget") == Item(name="widget", count=3, level=Level.MID, created=0)
    assert client.make_item("gadget", 0) == Item(name="gadget", count=0)
    assert client.raise_level(Level.LOW) == Level.MID
    assert client.raise_level(Level.MID) == Level.HIGH
    with pytest.raises(base.ItemError) as info:
        client.raise_level(Level.HIGH)
    # The handler set only `message`; `level` arrives as written from its IDL default.
    assert (info.value.message, info.value.level) == ("already HIGH", Level.HIGH)


# -- defaults and optional fields ---------------------------------------------------------------


def test_defaults_round_trip(client):
    sent = cov.Defaults(must=7)
    got = client.echo_defaults(sent)
    assert same(got, sent)
    assert (
        got.number,
        got.text,
        got.level,
        got.numbers,
        got.weights,
        set(got.tags),
        got.flag,
        got.ratio,
        got.item,
        got.maybe,
        got.maybe_text,
        got.must,
        got.mode,
        got.stamp,
        got.tiny,
        got.small,
    ) == (
        42,
        "dflt",
        Level.HIGH,
        [1, 2, 3],
        {"x": 1, "y": 2},
        {"t"},
        True,
        0.25,
        Item(name="nested-default", level=Level.MID, created=0),
        None,
        "opt-default",
        7,
        Mode.AUTO,
        1234,
        -1,
        300,
    )


def test_fields_set_to_none_come_back_as_their_defaults(client):
    # None is not written; the server's struct starts from the IDL defaults, and echoes them.
    sent = cov.Defaults(must=1, number=None, text=None, numbers=None, item=None, maybe_text=None, mode=None, flag=None)
    got = client.echo_defaults(sent)
    assert (got.number, got.text, got.numbers, got.item.name, got.maybe_text, got.mode, got.flag) == (
        42,
        "dflt",
        [1, 2, 3],
        "nested-default",
        "opt-default",
        Mode.AUTO,
        True,
    )


def test_non_default_values_and_optional_fields(client):
    sent = cov.Defaults(
        number=-(2**31),
        text="",
        level=Level.LOW,
        numbers=[],
        weights={},
        tags=set(),
        flag=False,
        ratio=-math.inf,
        item=item("x", count=0),
        maybe=0,
        maybe_text="",
        must=2**63 - 1,
        mode=Mode.OFF,
        stamp=-(2**63),
        tiny=-128,
        small=-(2**15),
    )
    got = client.echo_defaults(sent)
    assert same(got, sent)
    # Zero, empty and False are values, not "unset": each one survives the round trip.
    assert (got.maybe, got.maybe_text, got.flag, got.mode, got.numbers, got.tags) == (
        0,
        "",
        False,
        Mode.OFF,
        [],
        [],
    )  # thriftpy2 decodes a set<T> as a list
    nan = client.echo_defaults(cov.Defaults(must=0, ratio=math.nan))
    assert math.isnan(nan.ratio)


def test_server_side_defaults(client):
    # The handler builds Defaults(must=-1): every default is applied and written by the server.
    assert same(client.fresh_defaults(), cov.Defaults(must=-1))
    assert client.fresh_defaults().maybe is None


def test_required_struct_field_is_not_enforced_by_thriftpy2(client):
    # thriftpy2 writes and reads a struct whose required field is unset; so does dracula.
    got = client.echo_defaults(cov.Defaults())
    assert got.must is None and got.number == 42


def test_default_and_optional_arguments(client):
    assert client.with_default_arg() == 5 * 100 - 1  # a: IDL default 5; b: optional, unset
    assert client.with_default_arg(1, 2) == 102
    assert client.with_default_arg(b=3) == 503
    # a=None is not written; the server's arguments struct starts from the IDL default, 5.
    assert client.with_default_arg(a=None) == 499
    assert client.needs("k") == "k"
    assert client.needs("k", "x") == "k+x"


def test_missing_required_argument_is_a_protocol_error(client):
    # thriftpy2's client refuses to send it at all...
    with pytest.raises(TApplicationException) as info:
        client.needs(None)
    assert "key is required argument" in info.value.message
    # ...so send it the way TClient would without that check: dracula refuses it.
    client._send("needs", key=None, extra="x")
    with pytest.raises(TApplicationException) as info:
        client._recv("needs")
    assert info.value.type == TApplicationException.PROTOCOL_ERROR
    assert "required argument key" in info.value.message
    assert client.needs("still served") == "still served"


# -- containers, nesting, binary ----------------------------------------------------------------


def full_bag():
    a, b = item("a", count=1, level=Level.LOW, payload=b"\x00\x01"), item("b", created=-5)
    return cov.Bag(
        catalog={"one": [a], "two": [a, b], "none": [], "ünïcode ✓": [item("u")]},
        layers=[{}, {1: set()}, {-1: {"x"}, 2**31 - 1: {"a", "b", "c"}}],
        by_level={Level.LOW: a, Level.HIGH: b},
        blob=bytes(range(256)) * 4,
        grid=[[a, b], [], [item("c", payload=b"")]],
        deep={"outer": {"inner": a, "other": b}, "empty": {}},
        items=[b, a],
        levels={Level.LOW, Level.MID},
        blobs=[b"", b"\xff" * 3, b"\x80\x00"],
        measures={-(2**63): -1.5, 0: 0.0, 2**63 - 1: 1e300},
        bits=[True, False, True, True],
        by_mode={Mode.OFF: set(), Mode.AUTO: {"auto", "pilot"}},
        defaults=cov.Defaults(must=3, maybe=4),
    )


def test_nested_containers_round_trip(client):
    sent = full_bag()
    assert same(client.echo_bag(sent), sent)
    # Every field unset: nothing but the STOP byte on the wire, all None on return.
    assert client.echo_bag(cov.Bag()) == cov.Bag()


def test_map_of_lists_of_included_structs(client):
    items = [item("l1", level=Level.LOW), item("h1", level=Level.HIGH), item("l2", level=Level.LOW), item("m1")]
    assert client.group(items) == {"LOW": [items[0], items[2]], "HIGH": [items[1]], "MID": [items[3]]}
    assert client.group([]) == {}


def test_list_of_maps_of_sets(client):
    got = client.layers(4)
    assert len(got) == 4
    spec = cov.CoverageService.layers_result.thrift_spec[0][2]
    assert canon(got, TType.LIST, spec) == canon(
        [{j: {"%d.%d" % (i, k) for k in range(j + 1)} for j in range(i + 1)} for i in range(4)], TType.LIST, spec
    )
    assert [sorted(s) for s in got[2].values()] == [["2.0"], ["2.0", "2.1"], ["2.0", "2.1", "2.2"]]
    assert client.layers(0) == []


def test_binary(client):
    parts = [b"", bytes(range(256)), b"\xff\xfe not utf-8 \x80", b"\x00" * 70_000]
    assert client.concat(parts) == b"".join(parts)
    assert client.concat([]) == b""


# -- exceptions, constants, enums, oneway -------------------------------------------------------


def test_declared_exceptions_from_both_files(client):
    items = [item("zero"), item("one")]
    assert client.pick(items, 1) == items[1]
    with pytest.raises(base.ItemError) as info:  # declared in the included file
        client.pick(items, 5)
    assert (info.value.message, info.value.level) == ("index 5 of 2", Level.LOW)
    with pytest.raises(cov.Rejected) as info:  # declared here, carrying a nested Bag
        client.pick([], 0)
    assert info.value.why == "no items"
    assert info.value.evidence == cov.Bag(items=[], blob=b"")


def test_constants(client):
    assert client.default_item() == cov.DEFAULT_ITEM
    assert Item(name="default", count=1, level=Level.LOW) == cov.DEFAULT_ITEM
    bag = client.constants()
    starter = [Item(**fields) for fields in cov.STARTER]
    assert bag.catalog == {"starter": starter, "default": [cov.DEFAULT_ITEM]}
    assert bag.items == starter == [Item(name="first"), Item(name="second", count=2)]
    assert [{k: set(v) for k, v in layer.items()} for layer in bag.layers] == [
        {10: {"red", "green", "blue"}},
        {1000: {"red", "green", "blue"}},
    ]
    assert bag.by_level == {Level.LOW: cov.DEFAULT_ITEM}
    assert bag.blob == b"anonymous"
    assert set(bag.levels) == {1, 5, 10} and len(bag.levels) == 3
    assert bag.measures == {2: 1.0, 3: 1.5, 5: 2.5, 7: 3.5}
    assert {k: set(v) for k, v in bag.by_mode.items()} == {Mode.AUTO: {"one", "uno", "two"}}
    assert bag.blobs == [b"hello, thrift"]
    assert bag.bits == [True, True]
    assert bag.defaults is None


def test_enums_and_oneway(client):
    assert [client.toggle(m) for m in (Mode.OFF, Mode.ON, Mode.AUTO)] == [Mode.ON, Mode.AUTO, Mode.OFF]
    before = client.notes()
    client.note("n1")  # oneway: no reply; the next call on this connection is answered after it
    assert client.notes()[len(before) :] == ["n1"]


def test_served_by_the_cli():
    # The command in examples/coverage.py's docstring: the loader follows the include.
    server = CliServer(
        "idl/coverage/coverage.thrift:CoverageService", "examples.coverage:CoverageHandler", "--port", "0"
    )
    try:
        c = thriftpy2.rpc.make_client(
            cov.CoverageService,
            "127.0.0.1",
            server.port,
            proto_factory=TCompactProtocolFactory(),
            trans_factory=TCyFramedTransportFactory(),
            timeout=SAFETY_TIMEOUT_MS,
        )
        try:
            assert c.version() == VERSION
            assert c.make_item("cli") == Item(name="cli", count=3)
            sent = full_bag()
            assert same(c.echo_bag(sent), sent)
            with pytest.raises(base.ItemError):
                c.raise_level(Level.HIGH)
        finally:
            c.close()
    finally:
        server.close()
