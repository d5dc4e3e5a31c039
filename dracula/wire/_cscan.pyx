# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled twins of binary_scan.BinaryScanner and compact_scan.CompactScanner.

Same walk, same verdicts, same WireError reasons (tests/test_scan_differential.py holds them to
it); the pure-Python modules stay the reference and the fallback. What makes this fast: the
bytes are read through a raw pointer, the stack is a C array, and the IDL (Python dicts and
tuples) is consulted only where it changes what comes next: for struct, list, set and map
values, never for scalars or strings, whose walk does not depend on it.
"""
cimport cython
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Realloc, PyMem_Free
from cpython.ref cimport PyObject, Py_XINCREF, Py_XDECREF
from libc.stdint cimport int16_t, int32_t, int64_t, uint16_t, uint32_t, uint64_t

from dracula.wire.errors import WireError

cdef enum:
    IN_STRUCT = 0
    IN_LIST = 1
    IN_MAP = 2

# Binary (thriftpy2 TType) codes.
cdef enum:
    B_STOP = 0
    B_BOOL = 2
    B_BYTE = 3
    B_DOUBLE = 4
    B_I16 = 6
    B_I32 = 8
    B_I64 = 10
    B_STRING = 11
    B_STRUCT = 12
    B_MAP = 13
    B_SET = 14
    B_LIST = 15
    B_BINARY = 18

# Compact codes.
cdef enum:
    C_STOP = 0
    C_TRUE = 1
    C_FALSE = 2
    C_BYTE = 3
    C_I16 = 4
    C_I32 = 5
    C_I64 = 6
    C_DOUBLE = 7
    C_BINARY = 8
    C_LIST = 9
    C_SET = 10
    C_MAP = 11
    C_STRUCT = 12

cdef uint32_t VERSION_MASK = 0xFFFF0000u
cdef uint32_t VERSION_1 = 0x80010000u
cdef int64_t CLAMP = 1LL << 62  # limits beyond this behave as "no limit"

# Binary: bytes a value of each type occupies when fixed; the fewest bytes a value can occupy
# (0: a code the codec does not read as written).
cdef int B_FIXED[256]
cdef int B_MIN[256]
# Compact: longest varint per integer type; fixed size as a container element; TType.
cdef int C_VARINT[16]
cdef int C_BITS[16]  # bits the integer type's varint may carry
cdef int C_FIXED[16]
cdef int C_TTYPE[16]


cdef void _init_tables():
    cdef int i
    for i in range(256):
        B_FIXED[i] = 0
    B_FIXED[B_BOOL] = 1
    B_FIXED[B_BYTE] = 1
    B_FIXED[B_DOUBLE] = 8
    B_FIXED[B_I16] = 2
    B_FIXED[B_I32] = 4
    B_FIXED[B_I64] = 8
    for i in range(256):
        B_MIN[i] = B_FIXED[i]
    B_MIN[B_STRING] = 4
    B_MIN[B_BINARY] = 4
    B_MIN[B_STRUCT] = 1
    B_MIN[B_MAP] = 6
    B_MIN[B_SET] = 5
    B_MIN[B_LIST] = 5
    for i in range(16):
        C_VARINT[i] = 0
        C_FIXED[i] = 0
        C_TTYPE[i] = 0
    C_VARINT[C_I16] = 3
    C_VARINT[C_I32] = 5
    C_VARINT[C_I64] = 10
    C_BITS[C_I16] = 16
    C_BITS[C_I32] = 32
    C_BITS[C_I64] = 64
    C_FIXED[C_TRUE] = 1
    C_FIXED[C_FALSE] = 1
    C_FIXED[C_BYTE] = 1
    C_FIXED[C_DOUBLE] = 8
    C_TTYPE[C_TRUE] = 2
    C_TTYPE[C_FALSE] = 2
    C_TTYPE[C_BYTE] = 3
    C_TTYPE[C_I16] = 6
    C_TTYPE[C_I32] = 8
    C_TTYPE[C_I64] = 10
    C_TTYPE[C_DOUBLE] = 4
    C_TTYPE[C_BINARY] = 11
    C_TTYPE[C_LIST] = 15
    C_TTYPE[C_SET] = 14
    C_TTYPE[C_MAP] = 13
    C_TTYPE[C_STRUCT] = 12


_init_tables()

cdef inline int32_t _i32(const unsigned char* p) noexcept:
    return <int32_t>((<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3])


cdef inline int16_t _i16(const unsigned char* p) noexcept:
    return <int16_t>((<uint16_t>p[0] << 8) | p[1])


cdef inline bint _valid_compact(int t) noexcept:
    return 1 <= t <= 12


# --- spec_guard, over Python spec objects (called once per container, not per element) ---

cdef inline bint _is_bin(idl_type) except -1:
    """`idl_type in spec_guard.BIN_TYPES` (STRING or BINARY: one wire layout)."""
    return idl_type == 11 or idl_type == 18


cdef inline bint _same(int wire_type, idl_type) except -1:
    return idl_type == wire_type or ((wire_type == 11 or wire_type == 18) and _is_bin(idl_type))


cdef inline object _get(mapping, key):
    """mapping.get(key), without the method lookup for a dict (specs are thriftpy2's dicts)."""
    if type(mapping) is dict:
        return (<dict>mapping).get(key)
    return mapping.get(key)


cdef object _element_spec(spec, int wire_type, bint strict):
    """spec_guard.element_spec."""
    if spec is None:
        return None
    if type(spec) is int:
        idl_type, sub = spec, None
    else:
        idl_type, sub = spec
    if _same(wire_type, idl_type):
        return sub
    if strict:
        raise WireError("list declares element type %d where the IDL has %d" % (wire_type, idl_type))
    return None


cdef tuple _entry_specs(spec, int key_type, int value_type):
    """spec_guard.entry_specs."""
    if spec is None:
        return (None, None)
    key_spec, value_spec = spec[0], spec[1]
    if type(key_spec) is int:
        idl_key, key_sub = key_spec, None
    else:
        idl_key, key_sub = key_spec
    if type(value_spec) is int:
        idl_value, value_sub = value_spec, None
    else:
        idl_value, value_sub = value_spec
    if ((key_type == 11 or key_type == 18) and not _is_bin(idl_key)) or \
            ((value_type == 11 or value_type == 18) and not _is_bin(idl_value)):
        raise WireError("map declares string entries where the IDL has types %d/%d" % (idl_key, idl_value))
    if _same(key_type, idl_key) and _same(value_type, idl_value):
        return (key_sub, value_sub)
    return (None, None)


cdef object _field_sub(fields, int64_t fid, int wire_ttype):
    """The sub-spec a struct/container field is read with: its IDL entry's when the wire type
    matches (the wire types asked about here are never STRING/BINARY)."""
    spec = _get(fields, fid)
    if spec is not None and spec[0] == wire_ttype:
        return spec[2] if len(spec) > 3 else None
    return None


cdef struct Frame:
    int kind
    int t1          # list: element type; map: key type
    int t2          # map: value type
    int64_t left    # container items left (a map counts keys and values)
    int64_t fid     # struct (compact): the last field id
    PyObject* s1    # struct: its fields' specs; container: the element's (key's) spec
    PyObject* s2    # map: the value's spec
    PyObject* f1    # container of structs: s1.thrift_spec, looked up once
    PyObject* f2    # the same for s2


cdef class _Scanner:
    """State and stack shared by both protocols; offsets are relative to the message's start."""

    cdef public object header  # (name bytes, message type, seqid, body offset) or None
    cdef public Py_ssize_t pos
    cdef public Py_ssize_t need
    cdef public object specs
    cdef readonly int64_t max_depth
    cdef readonly int64_t max_container
    cdef readonly int64_t max_string
    cdef Frame* frames
    cdef Py_ssize_t depth
    cdef Py_ssize_t capacity

    def __init__(self, max_depth, max_container, max_string=2**31 - 1, specs=None):
        self.specs = specs or {}
        self.max_depth = max(-CLAMP, min(CLAMP, max_depth))
        self.max_container = max(-CLAMP, min(CLAMP, max_container))
        self.max_string = max(-CLAMP, min(CLAMP, max_string))
        self.reset()

    def __dealloc__(self):
        self._clear()
        PyMem_Free(self.frames)

    def reset(self):
        self.pos = 0
        self.need = 0
        self.header = None
        self._clear()

    @property
    def stack(self):
        """The open frames, outermost first (for inspection; the walk keeps them in C)."""
        if self.header is None:
            return None
        return [(self.frames[i].kind, self.frames[i].t1, self.frames[i].t2, self.frames[i].left)
                for i in range(self.depth)]

    @cython.final
    cdef void _clear(self) noexcept:
        while self.depth:
            self._pop()

    @cython.final
    cdef inline void _pop(self) noexcept:
        self.depth -= 1
        cdef Frame* fr = &self.frames[self.depth]
        Py_XDECREF(fr.s1)
        Py_XDECREF(fr.s2)
        Py_XDECREF(fr.f1)
        Py_XDECREF(fr.f2)

    @cython.final
    cdef int _push(self, int kind, int t1, int t2, int64_t left, object s1, object s2) except -1:
        cdef Frame* grown
        if self.depth == self.capacity:
            grown = <Frame*>PyMem_Realloc(self.frames, (self.capacity * 2 + 16) * sizeof(Frame))
            if grown is NULL:
                raise MemoryError()
            self.frames = grown
            self.capacity = self.capacity * 2 + 16
        cdef Frame* fr = &self.frames[self.depth]
        fr.kind = kind
        fr.t1 = t1
        fr.t2 = t2
        fr.left = left
        fr.fid = 0
        fr.s1 = NULL if s1 is None else <PyObject*>s1
        fr.s2 = NULL if s2 is None else <PyObject*>s2
        Py_XINCREF(fr.s1)
        Py_XINCREF(fr.s2)
        fr.f1 = NULL
        fr.f2 = NULL
        self.depth += 1
        return 0

    @cython.final
    cdef int _push_struct(self, Py_ssize_t parent, bint second, object sub) except -1:
        """Open a struct read with `sub` (a struct class or None); `parent` is the container
        frame it is an element of (its thrift_spec is cached there), or -1."""
        if sub is None:
            return self._push(IN_STRUCT, 0, 0, 0, None, None)
        if parent < 0:
            return self._push(IN_STRUCT, 0, 0, 0, sub.thrift_spec, None)
        cdef Frame* fr = &self.frames[parent]
        cdef PyObject* cached = fr.f2 if second else fr.f1
        if cached is NULL:
            fields = sub.thrift_spec
            fr = &self.frames[parent]
            cached = <PyObject*>fields
            Py_XINCREF(cached)
            if second:
                fr.f2 = cached
            else:
                fr.f1 = cached
        return self._push(IN_STRUCT, 0, 0, 0, <object>cached, None)

    @cython.final
    cdef object _element(self, Frame* fr, int* t, bint* second):
        """A container frame's next element: its type in t, its spec returned."""
        if fr.kind == IN_LIST or not (fr.left & 1):
            t[0] = fr.t1
            second[0] = False
            return None if fr.s1 is NULL else <object>fr.s1
        t[0] = fr.t2
        second[0] = True
        return None if fr.s2 is NULL else <object>fr.s2

    @cython.final
    cdef int _nesting(self) except -1:
        if self.depth >= self.max_depth:
            raise WireError("nesting deeper than %d" % self.max_depth)
        return 0

    @cython.final
    cdef Py_ssize_t _finish(self, Py_ssize_t pos, Py_ssize_t base, Py_ssize_t end, Py_ssize_t limit,
                            Py_ssize_t need) except -2:
        self.pos = pos - base
        if self.depth:
            if end > limit:
                raise WireError("message longer than %d bytes" % (limit - base))
            self.need = need - base if need else 0
            return -1
        return self.pos


cdef int _open(object buf, Py_buffer* view, Py_ssize_t base, Py_ssize_t end, Py_ssize_t pos) except -1:
    PyObject_GetBuffer(buf, view, PyBUF_SIMPLE)
    if base < 0 or pos < 0 or end > view.len:  # memory safety: reads stay inside the buffer
        PyBuffer_Release(view)
        raise IndexError("scan of %d..%d (at +%d) outside a %d-byte buffer" % (base, end, pos, view.len))
    return 0


@cython.final
cdef class BinaryScanner(_Scanner):
    """Scans one binary-protocol message at a time (binary_scan.BinaryScanner, compiled)."""

    def scan(self, buf, Py_ssize_t base, Py_ssize_t end, Py_ssize_t limit):
        """Length of the message starting at buf[base], or -1 while bytes up to it are missing."""
        cdef Py_buffer view
        _open(buf, &view, base, end, self.pos)
        try:
            return self._scan(<const unsigned char*>view.buf, base, end, limit)
        finally:
            PyBuffer_Release(&view)

    cdef Py_ssize_t _scan(self, const unsigned char* b, Py_ssize_t base, Py_ssize_t end,
                          Py_ssize_t limit) except -2:
        cdef Py_ssize_t pos
        if self.header is None:
            if not self._header(b, base, end, limit):
                return -1
            pos = base + self.pos
            if pos < end and b[pos] == B_STOP:  # no arguments (ping): nothing to walk
                self._clear()
                self.pos = pos + 1 - base
                return self.pos
            self._clear()
            self._push(IN_STRUCT, 0, 0, 0, _get(self.specs, self.header[0]), None)
        return self._walk(b, base, end, limit)

    cdef Py_ssize_t _walk(self, const unsigned char* b, Py_ssize_t base, Py_ssize_t end,
                          Py_ssize_t limit) except -2:
        cdef Py_ssize_t pos = base + self.pos, need = 0, p, q, top, parent
        cdef int t, size, et, kt, vt
        cdef int64_t n
        cdef Frame* fr
        cdef bint second = False
        while self.depth:
            top = self.depth - 1
            fr = &self.frames[top]
            if fr.kind == IN_STRUCT:
                if pos >= end:
                    break
                t = b[pos]
                if t == B_STOP:
                    pos += 1
                    self._pop()
                    continue
                p = pos + 3  # type byte and field id
                if p > end:
                    break
                parent = -1
                sub = None
                if fr.s1 is not NULL and (t == B_STRUCT or t == B_LIST or t == B_SET or t == B_MAP):
                    sub = _field_sub(<object>fr.s1, _i16(b + pos + 1), t)
            else:
                if not fr.left:
                    self._pop()
                    continue
                sub = self._element(fr, &t, &second)
                parent = top
                p = pos
            size = B_FIXED[t]
            if size:
                if p + size > end:
                    break
                pos = p + size
            elif t == B_STRING or t == B_BINARY:
                if p + 4 > end:
                    break
                n = _i32(b + p)
                q = p + 4 + n
                if n < 0 or q > limit or n > self.max_string:
                    raise WireError("string of %d bytes (limit %d, %d left in the message)"
                                    % (n, self.max_string, limit - p - 4))
                if q > end:
                    need = q
                    break
                pos = q
            elif t == B_STRUCT:
                self._nesting()
                # A struct of fixed-size fields only (a point, a pair of ids) whose bytes have all
                # arrived is walked here, without a frame: the walk below would read the same
                # bytes the same way. Anything else (a string, a container, a nested struct, an
                # unknown code, the end of the bytes) is left to it.
                q = p
                while q < end:
                    size = b[q]
                    if size == B_STOP:
                        break
                    size = B_FIXED[size]
                    if not size:
                        break
                    q += 3 + size
                if q < end and b[q] == B_STOP:
                    pos = q + 1
                else:
                    pos = p
                    self._push_struct(parent, second, sub)
            elif t == B_LIST or t == B_SET:
                if p + 5 > end:
                    break
                et = b[p]
                n = _i32(b + p + 1)
                self._check(n, et, -1, p + 5, limit)
                q = p + 5 + n * B_FIXED[et]
                if B_FIXED[et] or not n:
                    if q > end:
                        need = q
                        break
                    pos = q
                else:
                    # The codec follows the IDL only where its element type matches the wire's.
                    esub = _element_spec(sub, et, False)
                    pos = p + 5
                    self._push(IN_LIST, et, et, n, esub, esub)
            elif t == B_MAP:
                if p + 6 > end:
                    break
                kt = b[p]
                vt = b[p + 1]
                n = _i32(b + p + 2)
                self._check(n, kt, vt, p + 6, limit)
                ksub, vsub = _entry_specs(sub, kt, vt)
                if not n:
                    pos = p + 6
                elif B_FIXED[kt] and B_FIXED[vt]:
                    q = p + 6 + n * (B_FIXED[kt] + B_FIXED[vt])
                    if q > end:
                        need = q
                        break
                    pos = q
                else:
                    pos = p + 6
                    self._push(IN_MAP, kt, vt, 2 * n, ksub, vsub)
            else:
                raise WireError("unknown type code %d" % t)
            if parent >= 0:
                self.frames[parent].left -= 1
        return self._finish(pos, base, end, limit, need)

    cdef int _check(self, int64_t n, int t1, int t2, Py_ssize_t body, Py_ssize_t limit) except -1:
        """A container header's checks (binary_scan._check_container); t2 < 0 for lists."""
        if n < 0 or n > self.max_container:
            raise WireError("container of %d elements (limit %d)" % (n, self.max_container))
        if not B_MIN[t1]:
            raise WireError("unknown element type code %d" % t1)
        cdef int64_t least = B_MIN[t1]
        if t2 >= 0:
            if not B_MIN[t2]:
                raise WireError("unknown element type code %d" % t2)
            least += B_MIN[t2]
        if body + n * least > limit:
            raise WireError("%d elements do not fit the message" % n)
        return self._nesting()

    cdef bint _header(self, const unsigned char* b, Py_ssize_t base, Py_ssize_t end,
                      Py_ssize_t limit) except -1:
        if end - base < 8:
            return False
        cdef int32_t first = _i32(b + base)
        cdef int64_t name_len = _i32(b + base + 4)
        cdef int mtype
        cdef bint strict = first < 0
        cdef Py_ssize_t name_at, after
        if strict:
            if ((<uint32_t>first) & VERSION_MASK) != VERSION_1:
                raise WireError("bad binary protocol version 0x%08x" % (<uint32_t>first))
            mtype = (<uint32_t>first) & 0xFF
            name_at = base + 8
        else:  # non-strict: the name's length comes first, the type byte after the name
            name_len = first
            name_at = base + 4
        if name_len < 0 or name_at + name_len + 5 > limit:
            raise WireError("method name of %d bytes" % name_len)
        after = name_at + name_len
        if not strict:
            if after + 5 > end:
                self.need = after + 5 - base
                return False
            mtype = b[after]
            after += 1
        elif after + 4 > end:
            self.need = after + 4 - base
            return False
        self.header = (PyBytes_FromStringAndSize(<const char*>b + name_at, name_len), mtype,
                       _i32(b + after), after + 4 - base)
        self.pos = after + 4 - base
        return True


cdef inline Py_ssize_t _varint(const unsigned char* b, Py_ssize_t p, Py_ssize_t end, int longest,
                               uint64_t* value) except -2:
    """Offset after the varint at p (its value in *value), or -1 while it has not fully arrived."""
    cdef uint64_t v = 0
    cdef int shift = 0
    cdef Py_ssize_t i = p
    cdef unsigned char c
    while i < end:
        c = b[i]
        i += 1
        if shift < 64:
            v |= (<uint64_t>(c & 0x7F)) << shift
        if c < 0x80:
            value[0] = v
            return i
        shift += 7
        if i - p >= longest:
            raise WireError("varint longer than %d bytes" % longest)
    return -1


@cython.final
cdef class CompactScanner(_Scanner):
    """Scans one compact-protocol message at a time (compact_scan.CompactScanner, compiled)."""

    def scan(self, buf, Py_ssize_t base, Py_ssize_t end, Py_ssize_t limit):
        """Length of the message starting at buf[base], or -1 while bytes are missing."""
        cdef Py_buffer view
        _open(buf, &view, base, end, self.pos)
        try:
            if self.header is None:
                if not self._header(<const unsigned char*>view.buf, base, end, limit):
                    return -1
                self._clear()
                self._push(IN_STRUCT, 0, 0, 0, _get(self.specs, self.header[0]), None)
            return self._walk(<const unsigned char*>view.buf, base, end, limit)
        finally:
            PyBuffer_Release(&view)

    cdef Py_ssize_t _walk(self, const unsigned char* b, Py_ssize_t base, Py_ssize_t end,
                          Py_ssize_t limit) except -2:
        cdef Py_ssize_t pos = base + self.pos, need = 0, p, q, r, top, parent
        cdef int t, head, size, et, kt, vt
        cdef int64_t fid = 0, n
        cdef uint64_t v
        cdef Frame* fr
        cdef bint second = False
        while self.depth:
            top = self.depth - 1
            fr = &self.frames[top]
            if fr.kind == IN_STRUCT:
                if pos >= end:
                    break
                head = b[pos]
                t = head & 0x0F
                if t == C_STOP:
                    pos += 1
                    self._pop()
                    continue
                p = pos + 1
                if head >> 4:
                    fid = fr.fid + (head >> 4)
                else:  # no delta: a zigzag varint field id follows
                    p = _varint(b, p, end, 3, &v)
                    if p < 0:
                        break
                    fid = <int64_t>(v >> 1) ^ -(<int64_t>(v & 1))
                if t == C_TRUE or t == C_FALSE:  # the value lives in the field header
                    fr.fid = fid
                    pos = p
                    continue
                parent = -1
                sub = None
                if fr.s1 is not NULL and (t == C_STRUCT or t == C_LIST or t == C_SET or t == C_MAP):
                    sub = _field_sub(<object>fr.s1, fid, C_TTYPE[t])
            else:
                if not fr.left:
                    self._pop()
                    continue
                sub = self._element(fr, &t, &second)
                parent = top
                p = pos
            if not _valid_compact(t):
                raise WireError("unknown compact type code %d" % t)
            size = C_FIXED[t]
            if size:
                if p + size > end:
                    break
                pos = p + size
            elif C_VARINT[t]:
                q = _varint(b, p, end, C_VARINT[t], &v)
                if q < 0:
                    break
                # _varint keeps 64 bits: a 10-byte varint fits an i64 only if its last byte
                # adds no more than bit 63 (compact_scan._BITS says why this is refused).
                if (v >> C_BITS[t]) if C_BITS[t] < 64 else (q - p == 10 and b[q - 1] > 1):
                    raise WireError("varint wider than the %d bits of its integer" % C_BITS[t])
                pos = q
            elif t == C_BINARY:
                q = _varint(b, p, end, 5, &v)
                if q < 0:
                    break
                n = <int64_t>v
                if q + n > limit or n > self.max_string:
                    raise WireError("string of %d bytes (limit %d, %d left in the message)"
                                    % (n, self.max_string, limit - q))
                if q + n > end:
                    need = q + n
                    break
                pos = q + n
            elif t == C_STRUCT:
                self._nesting()
                pos = p
                self._push_struct(parent, second, sub)
            elif t == C_MAP:
                q = _varint(b, p, end, 5, &v)
                if q < 0:
                    break
                n = <int64_t>v
                if n == 0:
                    self._check(0, -1, -1, q, limit)
                    pos = q
                else:
                    if q >= end:
                        break
                    kt = b[q] >> 4
                    vt = b[q] & 0x0F
                    self._check(n, kt, vt, q + 1, limit)
                    ksub, vsub = _entry_specs(sub, C_TTYPE[kt], C_TTYPE[vt])
                    pos = q + 1
                    self._push(IN_MAP, kt, vt, 2 * n, ksub, vsub)
            else:  # LIST or SET
                if p >= end:
                    break
                et = b[p] & 0x0F
                n = b[p] >> 4
                q = p + 1
                if n == 15:
                    q = _varint(b, q, end, 5, &v)
                    if q < 0:
                        break
                    n = <int64_t>v
                self._check(n, et, -1, q, limit)
                esub = _element_spec(sub, C_TTYPE[et], True)
                if C_FIXED[et] or not n:
                    r = q + n * C_FIXED[et]
                    if r > end:
                        need = r
                        break
                    pos = r
                else:
                    pos = q
                    self._push(IN_LIST, et, et, n, esub, esub)
            if parent >= 0:
                self.frames[parent].left -= 1
            else:
                self.frames[top].fid = fid
        return self._finish(pos, base, end, limit, need)

    cdef int _check(self, int64_t n, int t1, int t2, Py_ssize_t body, Py_ssize_t limit) except -1:
        """A container header's checks (compact_scan._check_container); t1/t2 < 0: absent."""
        if n > self.max_container:
            raise WireError("container of %d elements (limit %d)" % (n, self.max_container))
        cdef int count = 0
        if t1 >= 0:
            count += 1
            if not _valid_compact(t1):
                raise WireError("unknown compact element type code %d" % t1)
        if t2 >= 0:
            count += 1
            if not _valid_compact(t2):
                raise WireError("unknown compact element type code %d" % t2)
        # Every compact element takes at least one byte.
        if body + n * (count or 1) > limit:
            raise WireError("%d elements do not fit the message" % n)
        return self._nesting()

    cdef bint _header(self, const unsigned char* b, Py_ssize_t base, Py_ssize_t end,
                      Py_ssize_t limit) except -1:
        if end - base < 3:
            return False
        if b[base] != 0x82:
            raise WireError("bad compact protocol id 0x%02x" % b[base])
        cdef int version = b[base + 1] & 0x1F
        if version != 1:
            raise WireError("bad compact protocol version %d" % version)
        cdef int mtype = b[base + 1] >> 5
        cdef uint64_t seqid, name_len
        cdef Py_ssize_t p = _varint(b, base + 2, end, 5, &seqid)
        if p < 0:
            return False
        if seqid >> 32:
            raise WireError("sequence id varint wider than 32 bits")
        p = _varint(b, p, end, 5, &name_len)
        if p < 0:
            return False
        cdef int64_t n = <int64_t>name_len
        if p + n + 1 > limit:
            raise WireError("method name of %d bytes" % n)
        if p + n > end:
            self.need = p + n + 1 - base
            return False
        self.header = (PyBytes_FromStringAndSize(<const char*>b + p, n), mtype, seqid, p + n - base)
        self.pos = p + n - base
        return True
