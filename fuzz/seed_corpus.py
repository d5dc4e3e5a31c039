"""Writes the fuzzers' seed inputs from the wire test vectors: every IDL type of idl/coverage and
idl/showcase.thrift in both protocols (thriftpy2's own encoders), the hostile messages of
tests/test_wire_safety.py's kind, every THeader frame of tests/theader_frames.py (with the zlib
transform), and the Reader's streams: each transport, pipelined, trickled.

    python -m fuzz.seed_corpus OUT_DIR     # OUT_DIR/<fuzzer>/<sha1>

The committed corpus (fuzz/corpus/) is these seeds after a fuzzing campaign, minimized with
libFuzzer's -merge=1 (fuzz/run.sh --merge).
"""

from __future__ import annotations

import hashlib
import os
import struct
import sys
import zlib

from thriftpy2.protocol.compact import TCompactProtocol
from thriftpy2.protocol.cybin import TCyBinaryProtocol  # type: ignore[attr-defined]
from thriftpy2.thrift import TMessageType
from thriftpy2.transport.memory import TCyMemoryBuffer, TMemoryBuffer

from fuzz.targets import coverage_thrift as cov, showcase_thrift as sc
from tests import theader_frames as tf  # run from the repository root (python -m fuzz.seed_corpus)


def encode(protocol: str, name: str, args, seqid: int = 7, mtype: int = TMessageType.CALL) -> bytes:
    if protocol == "binary":
        buf = TCyMemoryBuffer()
        proto = TCyBinaryProtocol(buf)
    else:
        buf = TMemoryBuffer()
        proto = TCompactProtocol(buf)
    proto.write_message_begin(name, mtype, seqid)
    proto.write_struct(args)
    proto.write_message_end()
    if protocol == "binary":
        buf.flush()
    return buf.getvalue()


def calls():
    """(method name, args) covering every IDL type: scalars at their extremes, strings, binary,
    enums, defaults, nested lists/sets/maps of structs."""
    b = cov.base
    C = cov.CoverageService
    item = b.Item(name="pen", count=3, level=b.Level.HIGH, created=-1, payload=b"\x00\xff")
    defaults = cov.Defaults(
        number=-(2**31),
        text="\u00e9t\u00e9",
        numbers=[2**31 - 1, 0],
        weights={"w": -1},
        tags={"a", "b"},
        flag=False,
        ratio=-1.5e300,
        item=item,
        maybe=0,
        must=-(2**63),
        mode=cov.Mode.ON,
        stamp=2**63 - 1,
        tiny=-128,
        small=-(2**15),
    )
    bag = cov.Bag(
        catalog={"c": [item, b.Item(name="")]},
        layers=[{1: {"x"}}, {}],
        by_level={b.Level.LOW: item},
        blob=b"\x80\x82\x0f\xff",
        grid=[[item], []],
        deep={"d": {"e": item}},
        items=[item],
        levels={b.Level.MID},
        blobs=[b"", b"\x00"],
        measures={2**40: 0.5, -1: -0.0},
        bits=[True, False, True],
        by_mode={cov.Mode.AUTO: {"t"}},
        defaults=defaults,
    )
    yield "echo_defaults", C.echo_defaults_args(d=defaults)
    yield "echo_defaults", C.echo_defaults_args(d=cov.Defaults(must=1))
    yield "echo_bag", C.echo_bag_args(bag=bag)
    yield "echo_bag", C.echo_bag_args(bag=cov.Bag())
    yield "group", C.group_args(items=[item, item])
    yield "layers", C.layers_args(n=-1)
    yield "concat", C.concat_args(parts=[b"a", b"", b"\xff" * 20])
    yield "with_default_arg", C.with_default_arg_args(a=1, b=2)
    yield "needs", C.needs_args(key="k", extra="")
    yield "pick", C.pick_args(items=[item], index=0)
    yield "toggle", C.toggle_args(mode=cov.Mode.AUTO)
    yield "note", C.note_args(text="hello")
    yield "make_item", C.make_item_args(name="n", count=1)
    yield "raise_level", C.raise_level_args(level=b.Level.MID)
    yield "fresh_defaults", C.fresh_defaults_args()
    S = sc.Showcase
    shape = sc.Shape(
        name="tri",
        points=[sc.Point(x=i, y=-i) for i in range(3)],
        color=sc.Color.RED,
        labels={"corner": [sc.Point(x=0, y=0)]},
        tags={1, 2, 3},
        blob=b"\x00" * 5,
    )
    yield "Showcase:echo_shape", S.echo_shape_args(shape=shape)
    yield "Showcase:nested", S.nested_args(value={1: {"a": [{1, 2}, set()]}})
    yield (
        "Showcase:echo_scalars",
        S.echo_scalars_args(
            s=sc.Scalars(
                flag=True, tiny=-1, small=300, medium=-70000, large=2**40, real=1.5, text="x", raw=b"y", color=2
            )
        ),
    )
    yield "Showcase:index", S.index_args(points=[sc.Point(x=1, y=2)])
    yield "Showcase:unique", S.unique_args(words=["a", "b", "a"])
    yield "Showcase:reverse", S.reverse_args(data=b"abc")
    yield "Showcase:ping", S.ping_args()


def messages():
    """(protocol, message): every call in both protocols, and hostile ones."""
    for protocol in ("binary", "compact"):
        for name, args in calls():
            yield protocol, encode(protocol, name, args)
        yield protocol, encode(protocol, "note", cov.CoverageService.note_args(text="x"), mtype=TMessageType.ONEWAY)
    lying_list = (
        struct.pack("!iI", -0x7FFEFFFF, 14)
        + b"Showcase:index"
        + struct.pack("!i", 5)
        + b"\x0f\x00\x01\x0c"
        + struct.pack("!i", 30_000_000)
        + b"\x00"
    )
    yield "binary", lying_list
    yield "binary", tf.reverse_without_stop(100_000, b"abcde")
    yield "binary", struct.pack("!i", 4) + b"ping" + b"\x01" + struct.pack("!i", 1) + b"\x00"  # non-strict
    yield "compact", b"\x82\x21\x05\x04ping\x19\xfc\x7f\xff\xff\xff\x07\x00"  # a lying compact list


def theader_frames():
    frames = {**tf.FIRST_FRAME_REFUSALS, **tf.FRAME_REFUSALS, **tf.LATER_FRAME_REFUSALS}
    for data, *_ in frames.values():
        yield data
    yield tf.ping_frame()
    yield tf.ping_frame("compact", transforms=(1,))
    yield tf.ping_frame(extra=tf.info(2, {b"tenant": b"a", b"k": b"p"}) + tf.info(1, {b"k": b"own"}))
    yield tf.ping_frame(extra=tf.info(1, {b"client_timeout": b"1500"}))
    for protocol, message in messages():
        payload = zlib.compress(message)
        yield tf.raw_frame(tf.varint(tf.PROTOCOL_IDS[protocol]) + b"\x01\x01", payload)


def seeds():
    """(fuzzer, input): each input starts with the fuzzer's control bytes (fuzz/targets.py)."""
    for protocol, message in messages():
        fuzzer = protocol + "_scan"
        yield fuzzer, b"\x00\x00" + message  # default limits, whole
        yield fuzzer, b"\x3e\x03" + message  # small limits, in 3-byte pieces
    for frame in theader_frames():
        yield "theader", b"\x00" + frame[4:]
        yield "theader", b"\x05" + frame[4:]
    for _, message in messages():
        framed = struct.pack("!I", len(message)) + message
        yield "reader", b"\x02\x00" + message + message  # unframed, two pipelined
        yield "reader", b"\x02\x07" + framed + framed  # framed, in 7-byte pieces
    for frame in theader_frames():
        yield "reader", b"\x02\x05" + frame + tf.ping_frame()


def write(out: str) -> int:
    count = 0
    for fuzzer, data in seeds():
        folder = os.path.join(out, fuzzer)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, hashlib.sha1(data).hexdigest()), "wb") as f:
            f.write(data)
        count += 1
    return count


if __name__ == "__main__":
    print("wrote %d seeds" % write(sys.argv[1]))
