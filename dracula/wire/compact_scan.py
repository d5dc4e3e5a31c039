"""Find where a compact-protocol message ends, checking every declared size on the way.

The compact twin of binary_scan: same guarantees (every size backed by bytes that arrived, every
type code one the codec reads, nesting within the limit, resumable so a trickling message is
scanned once), over the compact encoding: varints, field-id deltas, bools folded into field
headers, short list headers.
"""

from __future__ import annotations

from typing import Any

from dracula.typedefs import Buffer
from dracula.wire.errors import WireError
from dracula.wire.scan_state import ScanState
from dracula.wire.spec_guard import BIN_TYPES as _BIN, element_spec, entry_specs

PROTOCOL_ID = 0x82
VERSION = 1

STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE = 0, 1, 2, 3, 4, 5, 6, 7
BINARY, LIST, SET, MAP, STRUCT = 8, 9, 10, 11, 12

# Longest varint each integer type may use; 0 for types that are not varints.
_VARINT = [0] * 16
_VARINT[I16], _VARINT[I32], _VARINT[I64] = 3, 5, 10
# Bits each integer type's (zigzag) varint may carry: a longer varint may carry more (3 bytes
# carry 21 bits), which thriftpy2's codec decodes into an int past the type's range (an i16 of
# a million) that no encoder can write back.
_BITS = [0] * 16
_BITS[I16], _BITS[I32], _BITS[I64] = 16, 32, 64
# Fixed sizes as container elements (bools take a byte there); 0 for variable sizes.
_FIXED = [0] * 16
_FIXED[TRUE] = _FIXED[FALSE] = _FIXED[BYTE] = 1
_FIXED[DOUBLE] = 8
_VALID = frozenset(range(1, 13))

# Stack frames: [_IN_STRUCT, its fields' specs or None, last field id] and
# [_IN_LIST or _IN_MAP, type, value type, items left, type's spec, value type's spec].
_IN_STRUCT = 0
_IN_LIST = 1
_IN_MAP = 2
# Compact type code -> thriftpy2 TType, to compare with the IDL.
_TTYPE = [0] * 16
for _c, _t in (
    (TRUE, 2),
    (FALSE, 2),
    (BYTE, 3),
    (I16, 6),
    (I32, 8),
    (I64, 10),
    (DOUBLE, 4),
    (BINARY, 11),
    (LIST, 15),
    (SET, 14),
    (MAP, 13),
    (STRUCT, 12),
):
    _TTYPE[_c] = _t


def _varint(buf: Buffer, p: int, end: int, longest: int) -> tuple[int, int]:
    """(value, next offset), or (-1, p) if the varint has not fully arrived."""
    value = shift = 0
    i = p
    while i < end:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7
        if i - p >= longest:
            raise WireError("varint longer than %d bytes" % longest)
    if i - p >= longest:
        raise WireError("varint longer than %d bytes" % longest)
    return -1, p


class CompactScanner(ScanState):
    __slots__ = ()

    # One loop over every element, kept in one function on purpose: a call per element would
    # double the reference implementation's cost (the compiled one in _cscan.pyx mirrors it).
    def scan(self, buf: Buffer, base: int, end: int, limit: int) -> int:
        """Length of the message starting at buf[base], or -1 while bytes are missing."""
        if self.header is None:
            if not self._scan_header(buf, base, end, limit):
                return -1
            # _scan_header() set the header (mypy keeps the narrowing to None across the call).
            self.stack = [[_IN_STRUCT, self.specs.get(self.header[0]), 0]]  # type: ignore[index]
        pos = base + self.pos
        stack = self.stack
        need = 0
        while stack:
            frame = stack[-1]
            if frame[0] == _IN_STRUCT:
                if pos >= end:
                    break
                head = buf[pos]
                t = head & 0x0F
                if t == STOP:
                    pos += 1
                    stack.pop()
                    continue
                p = pos + 1
                if head >> 4:
                    fid = frame[2] + (head >> 4)
                else:  # no delta: a zigzag varint field id follows
                    fid, p = _varint(buf, p, end, 3)
                    if fid < 0:
                        break
                    fid = (fid >> 1) ^ -(fid & 1)
                if t == TRUE or t == FALSE:  # the value lives in the field header
                    frame[2] = fid
                    pos = p
                    continue
                sub = None
                if frame[1] is not None and t in _VALID:
                    spec = frame[1].get(fid)
                    if spec is not None and (spec[0] == _TTYPE[t] or (spec[0] in _BIN and t == BINARY)):
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
            if t not in _VALID:
                raise WireError("unknown compact type code %d" % t)
            size = _FIXED[t]
            if size:
                if p + size > end:
                    break
                pos = p + size
            elif _VARINT[t]:
                value, q = _varint(buf, p, end, _VARINT[t])
                if value < 0:
                    break
                if value >> _BITS[t]:
                    raise WireError("varint wider than the %d bits of its integer" % _BITS[t])
                pos = q
            elif t == BINARY:
                n, q = _varint(buf, p, end, 5)
                if n < 0:
                    break
                if q + n > limit or n > self.max_string:
                    raise WireError(
                        "string of %d bytes (limit %d, %d left in the message)" % (n, self.max_string, limit - q)
                    )
                if q + n > end:
                    need = q + n
                    break
                pos = q + n
            elif t == STRUCT:
                if len(stack) >= self.max_depth:
                    raise WireError("nesting deeper than %d" % self.max_depth)
                pos = p
                stack.append([_IN_STRUCT, None if sub is None else sub.thrift_spec, 0])
            elif t == MAP:
                n, q = _varint(buf, p, end, 5)
                if n < 0:
                    break
                if n == 0:
                    self._check_container(stack, (), 0, q, limit)
                    pos = q
                else:
                    if q >= end:
                        break
                    kt = buf[q] >> 4
                    vt = buf[q] & 0x0F
                    self._check_container(stack, (kt, vt), n, q + 1, limit)
                    ksub, vsub = entry_specs(sub, _TTYPE[kt], _TTYPE[vt])
                    pos = q + 1
                    stack.append([_IN_MAP, kt, vt, 2 * n, ksub, vsub])
            else:  # LIST or SET
                if p >= end:
                    break
                et = buf[p] & 0x0F
                n = buf[p] >> 4
                q = p + 1
                if n == 15:
                    n, q = _varint(buf, q, end, 5)
                    if n < 0:
                        break
                self._check_container(stack, (et,), n, q, limit)
                esub = element_spec(sub, _TTYPE[et], strict=True)
                if _FIXED[et] or not n:
                    r = q + n * _FIXED[et]
                    if r > end:
                        need = r
                        break
                    pos = r
                else:
                    pos = q
                    stack.append([_IN_LIST, et, et, n, esub, esub])
            if frame[0] == _IN_STRUCT:
                frame[2] = fid
            else:
                frame[3] -= 1
        self.pos = pos - base
        if stack:
            if end > limit:
                raise WireError("message longer than %d bytes" % (limit - base))
            self.need = need - base if need else 0
            return -1
        return self.pos

    def _check_container(self, stack: list[list[Any]], types: tuple[int, ...], n: int, body: int, limit: int) -> None:
        if n > self.max_container:
            raise WireError("container of %d elements (limit %d)" % (n, self.max_container))
        for t in types:
            if t not in _VALID:
                raise WireError("unknown compact element type code %d" % t)
        # Every compact element takes at least one byte.
        if body + n * (len(types) or 1) > limit:
            raise WireError("%d elements do not fit the message" % n)
        if len(stack) >= self.max_depth:
            raise WireError("nesting deeper than %d" % self.max_depth)

    def _scan_header(self, buf: Buffer, base: int, end: int, limit: int) -> bool:
        if end - base < 3:
            return False
        if buf[base] != PROTOCOL_ID:
            raise WireError("bad compact protocol id 0x%02x" % buf[base])
        version = buf[base + 1] & 0x1F
        if version != VERSION:
            raise WireError("bad compact protocol version %d" % version)
        mtype = buf[base + 1] >> 5
        seqid, p = _varint(buf, base + 2, end, 5)
        if seqid < 0:
            return False
        if seqid >> 32:
            raise WireError("sequence id varint wider than 32 bits")
        name_len, p = _varint(buf, p, end, 5)
        if name_len < 0:
            return False
        if p + name_len + 1 > limit:
            raise WireError("method name of %d bytes" % name_len)
        if p + name_len > end:
            self.need = p + name_len + 1 - base
            return False
        self.header = (bytes(buf[p : p + name_len]), mtype, seqid, p + name_len - base)
        self.pos = p + name_len - base
        return True
