"""Find where a binary-protocol message ends, checking every declared size on the way.

With the method's arguments spec it also follows the IDL where the codec will, refusing the
wire types that thriftpy2's codec would reinterpret (spec_guard.py says which).

thriftpy2's Cython codec trusts sizes: a 27-byte call may claim a 30-million-element list and
it allocates for it; a string may claim more bytes than exist and it returns heap memory. So no
bytes reach the codec until this scanner has walked the message's structure and shown that
every size is backed by bytes that arrived, every type code is one the codec reads exactly as
written here, and nesting stays within the codec's depth. The walk is resumable: an unframed
message that trickles in is scanned once in total, never re-parsed from its start, and a long
string or fixed-width list is stepped over in one jump.
"""

from __future__ import annotations

import struct
from typing import Any

from dracula.typedefs import Buffer
from dracula.wire.errors import WireError
from dracula.wire.scan_state import ScanState
from dracula.wire.spec_guard import BIN_TYPES as _BIN, element_spec, entry_specs

_i32 = struct.Struct("!i").unpack_from
_i16 = struct.Struct("!h").unpack_from
_two_i32 = struct.Struct("!ii").unpack_from

VERSION_MASK = 0xFFFF0000
VERSION_1 = 0x80010000

STOP, BOOL, BYTE, DOUBLE, I16, I32, I64 = 0, 2, 3, 4, 6, 8, 10
STRING, STRUCT, MAP, SET, LIST, BINARY = 11, 12, 13, 14, 15, 18

# Bytes a value of each type occupies when that is fixed; 0 for variable-size types.
_FIXED = [0] * 256
for _t, _n in ((BOOL, 1), (BYTE, 1), (DOUBLE, 8), (I16, 2), (I32, 4), (I64, 8)):
    _FIXED[_t] = _n
# The fewest bytes a value can occupy; 0 marks a type code the codec does not read as written.
_MIN = list(_FIXED)
for _t, _n in ((STRING, 4), (BINARY, 4), (STRUCT, 1), (MAP, 6), (SET, 5), (LIST, 5)):
    _MIN[_t] = _n

# Stack frames: [_IN_STRUCT, its fields' specs or None] and
# [_IN_LIST or _IN_MAP, type, value type, items left, type's spec, value type's spec].
_IN_STRUCT = 0
_IN_LIST = 1
_IN_MAP = 2


class BinaryScanner(ScanState):
    """Scans one binary-protocol message at a time."""

    __slots__ = ()

    # One loop over every element, kept in one function on purpose: a call per element would
    # double the reference implementation's cost (the compiled one in _cscan.pyx mirrors it).
    def scan(self, buf: Buffer, base: int, end: int, limit: int) -> int:
        """Length of the message starting at buf[base], or -1 while bytes up to it are missing.

        The message may not extend past buf[limit]. Raises WireError for sizes, types or
        nesting the codec must not see.
        """
        if self.header is None:
            if not self._scan_header(buf, base, end, limit):
                return -1
            pos = base + self.pos
            if pos < end and buf[pos] == STOP:  # no arguments (ping): nothing to walk
                self.stack = None
                self.pos = pos + 1 - base
                return self.pos
            # _scan_header() set the header (mypy keeps the narrowing to None across the call).
            self.stack = [[_IN_STRUCT, self.specs.get(self.header[0])]]  # type: ignore[index]
        pos = base + self.pos
        stack = self.stack
        need = 0
        while stack:
            frame = stack[-1]
            if frame[0] == _IN_STRUCT:
                if pos >= end:
                    break
                t = buf[pos]
                if t == STOP:
                    pos += 1
                    stack.pop()
                    continue
                p = pos + 3  # type byte and field id
                if p > end:
                    break
                sub = None
                if frame[1] is not None:
                    spec = frame[1].get(_i16(buf, pos + 1)[0])
                    if spec is not None and (spec[0] == t or (spec[0] in _BIN and t in _BIN)):
                        sub = spec[2] if len(spec) > 3 else None
            else:
                left = frame[3]
                if not left:
                    stack.pop()
                    continue
                if frame[0] == _IN_LIST or not left & 1:
                    t, sub = frame[1], frame[4]
                else:
                    t, sub = frame[2], frame[5]
                p = pos
            size = _FIXED[t]
            if size:
                if p + size > end:
                    break
                pos = p + size
            elif t == STRING or t == BINARY:
                if p + 4 > end:
                    break
                n = _i32(buf, p)[0]
                q = p + 4 + n
                if n < 0 or q > limit or n > self.max_string:
                    raise WireError(
                        "string of %d bytes (limit %d, %d left in the message)" % (n, self.max_string, limit - p - 4)
                    )
                if q > end:
                    need = q
                    break
                pos = q
            elif t == STRUCT:
                if len(stack) >= self.max_depth:
                    raise WireError("nesting deeper than %d" % self.max_depth)
                pos = p
                stack.append([_IN_STRUCT, None if sub is None else sub.thrift_spec])
            elif t == LIST or t == SET:
                if p + 5 > end:
                    break
                et = buf[p]
                n = _i32(buf, p + 1)[0]
                self._check_container(stack, (et,), n, p + 5, limit)
                q = p + 5 + n * _FIXED[et]
                if _FIXED[et] or not n:
                    if q > end:
                        need = q
                        break
                    pos = q
                else:
                    # The codec reads elements by the IDL's type when it matches the declared
                    # one, else skips them by the declared type: follow the IDL only then.
                    esub = element_spec(sub, et)
                    pos = p + 5
                    stack.append([_IN_LIST, et, et, n, esub, esub])
            elif t == MAP:
                if p + 6 > end:
                    break
                kt = buf[p]
                vt = buf[p + 1]
                n = _i32(buf, p + 2)[0]
                self._check_container(stack, (kt, vt), n, p + 6, limit)
                ksub, vsub = entry_specs(sub, kt, vt)
                if not n:
                    pos = p + 6
                elif _FIXED[kt] and _FIXED[vt]:
                    q = p + 6 + n * (_FIXED[kt] + _FIXED[vt])
                    if q > end:
                        need = q
                        break
                    pos = q
                else:
                    pos = p + 6
                    stack.append([_IN_MAP, kt, vt, 2 * n, ksub, vsub])
            else:
                raise WireError("unknown type code %d" % t)
            if frame[0] != _IN_STRUCT:
                frame[3] -= 1
        self.pos = pos - base
        if stack:
            if end > limit:
                raise WireError("message longer than %d bytes" % (limit - base))
            self.need = need - base if need else 0
            return -1
        return self.pos

    def _check_container(self, stack: list[list[Any]], types: tuple[int, ...], n: int, body: int, limit: int) -> None:
        if n < 0 or n > self.max_container:
            raise WireError("container of %d elements (limit %d)" % (n, self.max_container))
        least = 0
        for t in types:
            if not _MIN[t]:
                raise WireError("unknown element type code %d" % t)
            least += _MIN[t]
        if body + n * least > limit:
            raise WireError("%d elements do not fit the message" % n)
        if len(stack) >= self.max_depth:
            raise WireError("nesting deeper than %d" % self.max_depth)

    def _scan_header(self, buf: Buffer, base: int, end: int, limit: int) -> bool:
        if end - base < 8:
            return False
        first, name_len = _two_i32(buf, base)
        if first < 0:
            if first & VERSION_MASK != VERSION_1:
                raise WireError("bad binary protocol version 0x%08x" % (first & 0xFFFFFFFF))
            mtype = first & 0xFF
            name_at = base + 8
        else:  # non-strict: the name's length comes first, the type byte after the name
            mtype = None
            name_len = first
            name_at = base + 4
        if name_len < 0 or name_at + name_len + 5 > limit:
            raise WireError("method name of %d bytes" % name_len)
        after = name_at + name_len
        if mtype is None:
            if after + 5 > end:
                self.need = after + 5 - base
                return False
            mtype = buf[after]
            after += 1
        elif after + 4 > end:
            self.need = after + 4 - base
            return False
        seqid = _i32(buf, after)[0]
        self.header = (bytes(buf[name_at : name_at + name_len]), mtype, seqid, after + 4 - base)
        self.pos = after + 4 - base
        return True
