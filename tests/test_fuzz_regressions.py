"""Every finding of the fuzzers (fuzz/, docs/fuzzing.md), kept as a test of the normal suite.

Each case is a finding's input, minimized by hand, replayed through the same oracle the fuzzer runs
(fuzz/targets.py), on both scanner implementations; and the committed corpus replays clean.
The oracles need the compiled extensions (python setup.py build_ext --inplace).
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("dracula.wire._cscan", reason="the compiled scanner is not built")
pytest.importorskip("dracula.wire._ctheader", reason="the compiled THeader code is not built")

from dracula.wire import compact_scan
from dracula.wire._cscan import CompactScanner as CompiledCompactScanner
from dracula.wire.errors import WireError
from fuzz import targets

CORPUS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fuzz", "corpus")
WHOLE = b"\x00\x00"  # the fuzzers' control bytes: default limits, the message whole


def compact_call(name: bytes, body: bytes, seqid: bytes = b"\x07") -> bytes:
    return b"\x82\x21" + seqid + bytes([len(name)]) + name + body


def refusals(message: bytes) -> list[str | None]:
    """Both compact scanners' verdicts on a whole message: the refusal reason, or None."""
    reasons = []
    for cls in (compact_scan.CompactScanner, CompiledCompactScanner):
        scanner = cls(64, 10_000_000, 2**31 - 1, targets.SPECS)
        try:
            scanner.scan(bytearray(message), 0, len(message), len(message))
            reasons.append(None)
        except WireError as e:
            reasons.append(e.reason)
    return reasons


# -- compact_scan: a varint wider than its integer type (found by fuzz_compact_scan) -----------
# The scanner bounded each integer varint's length (3, 5, 10 bytes) but not its value: 3 bytes
# carry 21 bits, 5 carry 35, 10 carry 70. thriftpy2's compact codec decodes such a varint into a
# Python int past the type's range (an i16 of a million, an i64 of 2**66): the handler got a
# value the IDL cannot hold, and no encoder could write it back (the fuzzer's round trip failed
# on Defaults.stamp, an i64 of 106068778423829921791).

WIDE_VARINTS = {
    # layers(1: i32 n): n's zigzag varint is 2**32 (5 bytes), n would be 2**31
    "i32 of 33 bits": compact_call(b"layers", b"\x15\x80\x80\x80\x80\x10\x00"),
    # Showcase:add(1: i64 a, 2: i64 b): a's 10-byte varint carries bit 64
    "i64 of 65 bits": compact_call(b"Showcase:add", b"\x16" + b"\xff" * 9 + b"\x03\x16\x02\x00"),
    # Showcase:echo_scalars(1: Scalars s), s.small (3: i16) is 2**17 (3 bytes)
    "i16 of 18 bits": compact_call(b"Showcase:echo_scalars", b"\x1c\x34\x80\x80\x08\x00\x00"),
    # the fuzzer's own input, minimized: Bag.defaults.stamp (14: i64), 70 bits
    "nested i64 of 70 bits": compact_call(b"echo_bag", b"\x1c\xdc\xe6" + b"\x80" * 9 + b"\x40\x00\x00\x00"),
}


@pytest.mark.parametrize("case", sorted(WIDE_VARINTS))
def test_varint_wider_than_its_integer_is_refused(case):
    message = WIDE_VARINTS[case]
    pure, compiled = refusals(message)
    assert pure == compiled and pure is not None and pure.startswith("varint wider than the")
    targets.check_compact_scan(WHOLE + message)  # the oracle: refused alike, nothing decoded


@pytest.mark.parametrize(
    "body, value",
    [
        (b"\x15\xfe\xff\xff\xff\x0f\x00", 2**31 - 1),
        (b"\x15\xff\xff\xff\xff\x0f\x00", -(2**31)),
    ],
)
def test_varints_at_their_integer_limits_still_pass(body, value):
    message = compact_call(b"layers", body)
    assert refusals(message) == [None, None]
    targets.check_compact_scan(WHOLE + message)  # decodes, round-trips


def test_i64_extremes_still_pass():
    for ten in (b"\xfe" + b"\xff" * 8 + b"\x01", b"\xff" * 9 + b"\x01"):  # 2**63 - 1, -2**63
        message = compact_call(b"Showcase:add", b"\x16" + ten + b"\x16\x02\x00")
        assert refusals(message) == [None, None]
        targets.check_compact_scan(WHOLE + message)


def test_sequence_id_wider_than_32_bits_is_refused():
    # A 5-byte varint carries 35 bits; the reply would echo a sequence id no i32 holds.
    message = compact_call(b"Showcase:ping", b"\x00", seqid=b"\x80\x80\x80\x80\x10")
    assert refusals(message) == ["sequence id varint wider than 32 bits"] * 2
    assert refusals(compact_call(b"Showcase:ping", b"\x00", seqid=b"\xff\xff\xff\xff\x0f")) == [None, None]


# -- the committed corpus ----------------------------------------------------------------------


@pytest.mark.parametrize("fuzzer", sorted(targets.TARGETS))
def test_committed_corpus_passes_its_oracle(fuzzer):
    folder = os.path.join(CORPUS, fuzzer)
    files = sorted(os.listdir(folder))
    assert files, "fuzz/corpus/%s is empty" % fuzzer
    for name in files:
        with open(os.path.join(folder, name), "rb") as f:
            targets.TARGETS[fuzzer](f.read())
