"""Where thriftpy2's codecs stop reading what the wire declares, and read the IDL's type instead.

The scanners walk the wire's declared types; the codecs read by the IDL's types where the two
agree and skip by the wire's where they do not, so mostly both walk the same bytes. Two codec
quirks break that, and a message that would trigger them is refused:
  - a map whose key or value is declared string/binary is read as the IDL's key or value type
    (Cython binary and compact codecs), so bytes vetted as an opaque string get parsed;
  - thriftpy2's compact codec reads list and set elements as the IDL's element type whatever
    the list declares.
A desynchronised codec reads lengths and counts out of arbitrary bytes: an unchecked allocation,
a heap read, or billions of no-op skips (a CPU bomb from a 70-byte message).

Specs are thriftpy2's: a container's spec is its element's TType, or (TType, sub-spec); a map's
is (key spec, value spec); a struct's is its class.
"""

from __future__ import annotations

from typing import Any

from dracula.typedefs import ElementSpec
from dracula.wire.errors import WireError

BIN_TYPES = (11, 18)  # STRING, BINARY: one wire layout


def _split(spec: ElementSpec) -> tuple[int, Any]:
    return (spec, None) if spec.__class__ is int else spec


def _same(wire_type: int, idl_type: int) -> bool:
    return wire_type == idl_type or (wire_type in BIN_TYPES and idl_type in BIN_TYPES)


def element_spec(spec: ElementSpec, wire_type: int, strict: bool = False) -> ElementSpec:
    """The spec a list/set element is read with, or None if the codec skips the elements.

    `strict`: the codec reads by the IDL regardless (compact), so a mismatch is refused."""
    if spec is None:
        return None
    idl_type, sub = _split(spec)
    if _same(wire_type, idl_type):
        return sub
    if strict:
        raise WireError("list declares element type %d where the IDL has %d" % (wire_type, idl_type))
    return None


def entry_specs(spec: ElementSpec, key_type: int, value_type: int) -> tuple[ElementSpec, ElementSpec]:
    """(key spec, value spec) a map's entries are read with; (None, None) when skipped."""
    if spec is None:
        return None, None
    (idl_key, key_sub), (idl_value, value_sub) = _split(spec[0]), _split(spec[1])
    if (key_type in BIN_TYPES and idl_key not in BIN_TYPES) or (value_type in BIN_TYPES and idl_value not in BIN_TYPES):
        raise WireError("map declares string entries where the IDL has types %d/%d" % (idl_key, idl_value))
    if _same(key_type, idl_key) and _same(value_type, idl_value):
        return key_sub, value_sub
    return None, None
