# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled twins of theader.parse_header and theader.encode_frame.

Same results, same WireError reasons, fatal flags, app types and `theader` attributes
(tests/test_theader_differential.py holds them to it); theader.py's pure-Python functions stay
the reference and the fallback. What makes these fast: the header is read through a raw pointer
with C varints; the frame is an extension type (HeaderFrame) whose fields are C members and
whose headers are checked while parsing but decoded only if asked for (client_timeout is read
from the bytes); the reply header is written into a C buffer copied once into the frame. Error messages are formatted as
the pure module formats them, from Python ints.
"""
cimport cython
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.long cimport PyLong_AsLongAndOverflow
from cpython.mem cimport PyMem_Malloc, PyMem_Realloc, PyMem_Free
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcmp, memcpy

import zlib

from dracula.wire import detect
from dracula.wire.errors import WireError
from dracula.wire import theader_frame as _layout
from dracula.wire.theader_frame import (CLIENT_TIMEOUT_HEADER, ID_OF_PROTOCOL, INVALID_PROTOCOL,
                                        INVALID_TRANSFORM, TRANSFORM_NAMES)

# The layout's numbers as C values: a Python int in C arithmetic costs a conversion each time.
cdef Py_ssize_t FIXED_SIZE = _layout.FIXED_SIZE
cdef int MAGIC = _layout.MAGIC
cdef Py_ssize_t MAX_HEADER_SIZE = _layout.MAX_HEADER_SIZE
cdef Py_ssize_t MAX_PERSISTENT_BYTES = _layout.MAX_PERSISTENT_BYTES
cdef Py_ssize_t CLIENT_TIMEOUT_MAX_DIGITS = _layout.CLIENT_TIMEOUT_MAX_DIGITS
cdef uint64_t ZLIB = _layout.ZLIB
cdef uint64_t INFO_PADDING = _layout.INFO_PADDING
cdef uint64_t INFO_KEYVALUE = _layout.INFO_KEYVALUE
cdef uint64_t INFO_PKEYVALUE = _layout.INFO_PKEYVALUE
cdef object BINARY = detect.BINARY  # C globals: no module dict lookup per frame
cdef object COMPACT = detect.COMPACT

cdef tuple _NO_TRANSFORMS = ()
cdef tuple _ZLIB_ONLY = (ZLIB,)


@cython.freelist(64)
cdef class HeaderFrame:
    """theader_frame.HeaderFrame as an extension type: the same fields, __init__ and repr. The
    parser fills and the encoder reads its fields as C struct members, not through Python
    attribute lookups, which cost more than the header's own bytes on every THeader call.
    `headers` and `persistent` are made when first asked for: from the checked, undecoded
    KEYVALUE blocks the parser kept (most handlers never look), or empty."""

    cdef public object protocol, seqid, flags, transforms, payload_at, timeout, payload
    cdef object _headers, _persistent  # None until asked for
    cdef bytes _raw  # the info blocks, to the header's end, while `headers` is not decoded
    cdef dict _base  # with _raw: a copy of the connection's persistent headers, or None

    def __init__(self, protocol, seqid, flags, transforms=(), headers=None, persistent=None, payload_at=0,
                 timeout=None):
        self.protocol = protocol
        self.seqid = seqid
        self.flags = flags
        self.transforms = transforms
        self._headers = headers
        self._persistent = persistent
        self.payload_at = payload_at
        self.timeout = timeout
        self.payload = None

    @property
    def headers(self):
        if self._headers is None:
            self._headers = {} if self._raw is None else _decode_info(self._raw, self._base)
            self._raw = self._base = None
        return self._headers

    @headers.setter
    def headers(self, value):
        self._headers = value
        self._raw = self._base = None

    @property
    def persistent(self):
        if self._persistent is None:
            self._persistent = {}
        return self._persistent

    @persistent.setter
    def persistent(self, value):
        self._persistent = value

    def __repr__(self):
        return "HeaderFrame(%s, seqid=%d, flags=0x%x, transforms=%r, headers=%r)" % (
            self.protocol, self.seqid, self.flags, self.transforms, self.headers)


# -- parse_header --------------------------------------------------------------------------------

cdef struct _Header:
    # The header bytes being read: pointer, position and end.
    const uint8_t *p
    Py_ssize_t pos
    Py_ssize_t end


cdef uint64_t _varint(_Header *h, str what) except? 0xFFFFFFFFFFFFFFFF:
    """theader._varint: an unsigned varint of at most 5 bytes that ends before h.end."""
    cdef uint64_t result = 0
    cdef int shift = 0
    cdef Py_ssize_t pos = h.pos
    cdef Py_ssize_t stop = h.end if h.end < pos + 5 else pos + 5
    cdef uint8_t byte
    while pos < stop:
        byte = h.p[pos]
        pos += 1
        result |= (<uint64_t>(byte & 0x7F)) << shift
        if not byte & 0x80:
            h.pos = pos
            return result
        shift += 7
    h.pos = pos
    if pos == h.end:
        raise WireError("THeader %s runs past the header" % what, fatal=False)
    raise WireError("THeader %s: varint longer than 5 bytes" % what, fatal=False)


cdef tuple _read_transforms(_Header *h):
    cdef uint64_t count = _varint(h, "transform count")
    cdef uint64_t transform
    cdef uint64_t i
    cdef bint seen_zlib = False
    if count > <uint64_t>(h.end - h.pos):  # every transform id takes at least one byte
        raise WireError("THeader declares %d transforms in %d header bytes" % (count, h.end - h.pos),
                        fatal=False)
    for i in range(count):
        transform = _varint(h, "transform id")
        if transform != ZLIB:
            raise WireError("THeader transform %d (%s) is not supported: only zlib (1) is"
                            % (transform, TRANSFORM_NAMES.get(transform, "unknown")),
                            fatal=False, app_type=INVALID_TRANSFORM)
        if seen_zlib:
            raise WireError("THeader transform %d listed twice" % transform, fatal=False,
                            app_type=INVALID_TRANSFORM)
        seen_zlib = True
    return _ZLIB_ONLY if seen_zlib else _NO_TRANSFORMS


cdef Py_ssize_t _string_span(_Header *h, Py_ssize_t *size) except -1:
    """Check the next header string and step over it: where its bytes start (`size` of them)."""
    cdef uint64_t n
    if h.pos < h.end and h.p[h.pos] < 0x80:  # one-byte length: nearly every header
        n = h.p[h.pos]
        h.pos += 1
    else:
        n = _varint(h, "header string length")
    if n > <uint64_t>(h.end - h.pos):
        raise WireError("THeader header string of %d bytes runs past the header (%d left)"
                        % (n, h.end - h.pos), fatal=False)
    cdef Py_ssize_t at = h.pos
    size[0] = <Py_ssize_t>n
    h.pos += <Py_ssize_t>n
    return at


cdef str _string(_Header *h):
    cdef Py_ssize_t n
    cdef Py_ssize_t at = _string_span(h, &n)
    # surrogateescape: bytes that are not UTF-8 survive, unaltered, a round trip as str.
    return PyUnicode_DecodeUTF8(<const char *>h.p + at, n, "surrogateescape")


cdef uint64_t _pair_count(_Header *h) except? 0xFFFFFFFFFFFFFFFF:
    cdef uint64_t count = _varint(h, "header count")
    if count > <uint64_t>((h.end - h.pos) // 2):  # every pair takes at least two length bytes
        raise WireError("THeader declares %d headers in %d header bytes" % (count, h.end - h.pos),
                        fatal=False)
    return count


cdef void _read_pairs(_Header *h, dict into) except *:
    cdef uint64_t i
    for i in range(_pair_count(h)):
        key = _string(h)
        into[key] = _string(h)


cdef void _read_info(_Header *h, dict headers, dict persistent) except *:
    """The KEYVALUE and PKEYVALUE headers; padding or an unknown info id ends the blocks."""
    cdef uint64_t info
    while h.pos < h.end:
        info = _varint(h, "info id")
        if info == INFO_KEYVALUE:
            _read_pairs(h, headers)
        elif info == INFO_PKEYVALUE:
            _read_pairs(h, persistent)
        else:
            break


cdef struct _Walk:
    # What _walk_info saw of the info blocks without decoding them.
    bint persistent  # a PKEYVALUE block
    Py_ssize_t timeout_at  # the last KEYVALUE client_timeout value's bytes (-1: none)
    Py_ssize_t timeout_size


cdef bytes _TIMEOUT_KEY = CLIENT_TIMEOUT_HEADER.encode("ascii")  # the header's name as sent
cdef Py_ssize_t _TIMEOUT_KEY_SIZE = len(_TIMEOUT_KEY)


cdef void _walk_info(_Header *h, _Walk *walk) except *:
    """_read_info's walk with the same checks and refusals, decoding nothing: most frames'
    headers are never looked at by the handler, so they are decoded only if asked for."""
    cdef uint64_t info
    cdef uint64_t i
    cdef Py_ssize_t key_size, value_size, key_at, value_at
    walk.persistent = False
    walk.timeout_at = -1
    walk.timeout_size = 0
    while h.pos < h.end:
        info = _varint(h, "info id")
        if info != INFO_KEYVALUE and info != INFO_PKEYVALUE:
            break
        walk.persistent = walk.persistent or info == INFO_PKEYVALUE
        for i in range(_pair_count(h)):
            key_at = _string_span(h, &key_size)
            value_at = _string_span(h, &value_size)
            if info == INFO_KEYVALUE and key_size == _TIMEOUT_KEY_SIZE \
                    and memcmp(h.p + key_at, PyBytes_AS_STRING(_TIMEOUT_KEY), _TIMEOUT_KEY_SIZE) == 0:
                walk.timeout_at = value_at
                walk.timeout_size = value_size


cdef _keep_persistent(dict persistent, dict new):
    persistent.update(new)
    cdef Py_ssize_t size = 0
    for k, v in persistent.items():
        size += len(k) + len(v)
    if size > MAX_PERSISTENT_BYTES:
        persistent.clear()
        raise WireError("persistent THeader headers of %d bytes (limit %d)" % (size, MAX_PERSISTENT_BYTES))


cdef HeaderFrame _frame(protocol, int32_t seqid, int flags, tuple transforms, dict headers, dict persistent,
                       Py_ssize_t payload_at):
    """A HeaderFrame without running its __init__ (the fields are set directly); None for
    `headers` or `persistent` stands for an empty dict, made if asked for."""
    cdef HeaderFrame frame = HeaderFrame.__new__(HeaderFrame)
    frame.protocol = protocol
    frame.seqid = seqid
    frame.flags = flags
    frame.transforms = transforms
    frame._headers = headers
    frame._persistent = persistent
    frame.payload_at = payload_at
    frame.timeout = None if headers is None else _timeout_of(headers)
    frame.payload = None
    return frame


cdef object _timeout_of(dict headers):
    """theader.client_timeout, compiled: the client_timeout header in seconds, or None."""
    value = headers.get(CLIENT_TIMEOUT_HEADER)
    if type(value) is not str or not (<str>value).isascii():
        return None  # a non-ASCII character is never an ASCII digit
    cdef bytes text = (<str>value).encode("ascii")
    return _timeout_digits(<const uint8_t *>PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text))


cdef object _timeout_digits(const uint8_t *text, Py_ssize_t n):
    """The client_timeout value in `text` (milliseconds as ASCII digits) in seconds, or None."""
    if n == 0 or n > CLIENT_TIMEOUT_MAX_DIGITS:
        return None
    cdef uint64_t ms = 0
    cdef uint64_t digit
    cdef Py_ssize_t i
    for i in range(n):
        digit = <uint64_t>text[i] - 48
        if digit > 9:  # not an ASCII digit (below '0' wraps around)
            return None
        ms = ms * 10 + digit
    return ms / 1000.0 if ms else None


cdef dict _decode_info(bytes raw, dict base):
    """The headers of info blocks _walk_info checked (`raw`, to the header's end), over a copy
    of the connection's persistent headers (`base`) if it had any."""
    cdef _Header h
    h.p = <const uint8_t *>PyBytes_AS_STRING(raw)
    h.pos = 0
    h.end = PyBytes_GET_SIZE(raw)
    cdef dict own = {}
    _read_info(&h, own, None)  # no PKEYVALUE block: those are decoded while parsing
    if base:
        base.update(own)  # the call's own header wins over a persistent one
        return base
    return own


def parse_header(buf, Py_ssize_t start, Py_ssize_t end, dict persistent=None):
    """theader.parse_header, compiled: the frame in buf[start:end] (after its length) parsed up
    to its payload. Requires 0 <= start and end <= len(buf)."""
    cdef Py_ssize_t size
    if type(buf) is bytearray:  # a receive buffer: read in place (nothing here can resize it)
        size = PyByteArray_GET_SIZE(buf)
        if start < 0 or end > size:
            raise ValueError("frame [%d:%d] outside a buffer of %d bytes" % (start, end, size))
        return _parse(<const uint8_t *>PyByteArray_AS_STRING(buf), start, end, persistent)
    cdef Py_buffer view
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        if start < 0 or end > view.len:
            raise ValueError("frame [%d:%d] outside a buffer of %d bytes" % (start, end, view.len))
        return _parse(<const uint8_t *>view.buf, start, end, persistent)
    finally:
        PyBuffer_Release(&view)


cdef _parse(const uint8_t *p, Py_ssize_t start, Py_ssize_t end, dict persistent):
    if end - start < FIXED_SIZE:
        raise WireError("THeader frame of %d bytes is shorter than its %d-byte fixed header"
                        % (end - start, FIXED_SIZE), fatal=False)
    cdef int magic = p[start] << 8 | p[start + 1]
    if magic != MAGIC:
        raise WireError("frame starts with 0x%04x, not THeader's magic 0x0fff" % magic, fatal=False)
    cdef int flags = p[start + 2] << 8 | p[start + 3]
    cdef int32_t seqid = <int32_t>(<uint64_t>p[start + 4] << 24 | p[start + 5] << 16
                                   | p[start + 6] << 8 | p[start + 7])
    cdef Py_ssize_t words = p[start + 8] << 8 | p[start + 9]
    cdef _Header header
    cdef _Header *h = &header
    h.p = p
    h.pos = start + FIXED_SIZE
    h.end = h.pos + 4 * words
    protocol = None
    cdef dict own = None  # None: no headers (the frame makes an empty dict if asked)
    cdef dict own_persistent = None
    cdef uint64_t protocol_id
    cdef Py_ssize_t info_at = -1  # where the info blocks start, if there are any
    cdef _Walk walk
    try:
        if h.end > end:
            raise WireError("THeader header of %d bytes runs past its %d-byte frame"
                            % (4 * words, end - start), fatal=False)
        if words == 0:
            raise WireError("THeader header is empty: it has no protocol id", fatal=False)
        protocol_id = _varint(h, "protocol id")
        if protocol_id == 0:
            protocol = BINARY
        elif protocol_id == 2:
            protocol = COMPACT
        else:
            # Nothing can be answered in a protocol not spoken here: the connection ends.
            raise WireError("THeader protocol id %d: only binary (0) and compact (2) are served"
                            % protocol_id, app_type=INVALID_PROTOCOL)
        transforms = _read_transforms(h)
        if h.pos < h.end and h.p[h.pos] != INFO_PADDING:  # else no info blocks: padding ends them
            info_at = h.pos
            _walk_info(h, &walk)
            if walk.persistent:  # decoded now: they change the connection's persistent headers
                h.pos = info_at
                own = {}
                own_persistent = {}
                _read_info(h, own, own_persistent)
    except WireError as e:
        if e.fatal:
            raise
        raise e.at(None, theader=_frame(protocol, seqid, flags, _NO_TRANSFORMS, None, None, 0)) from None
    if info_at >= 0 and not walk.persistent:
        return _undecoded_frame(protocol, seqid, flags, transforms, p, info_at, h.end, &walk, persistent)
    if own_persistent and persistent is not None:
        _keep_persistent(persistent, own_persistent)
    if persistent:
        merged = persistent.copy()  # the call's own header wins over a persistent one
        if own:
            merged.update(own)
        own = merged
    elif own_persistent:
        merged = own_persistent.copy()
        merged.update(own)
        own = merged
    return _frame(protocol, seqid, flags, transforms, own, own_persistent, start + FIXED_SIZE + 4 * words)


cdef HeaderFrame _undecoded_frame(protocol, int32_t seqid, int flags, tuple transforms, const uint8_t *p,
                                 Py_ssize_t info_at, Py_ssize_t header_end, _Walk *walk, dict persistent):
    """A frame whose KEYVALUE blocks (checked by _walk_info) are decoded if `headers` is asked for;
    its timeout is read from the bytes."""
    cdef HeaderFrame frame = _frame(protocol, seqid, flags, transforms, None, None, header_end)
    frame._raw = PyBytes_FromStringAndSize(<const char *>p + info_at, header_end - info_at)
    if persistent:
        frame._base = persistent.copy()
    if walk.timeout_at >= 0:  # the call's own client_timeout wins over a persistent one
        frame.timeout = _timeout_digits(p + walk.timeout_at, walk.timeout_size)
    elif persistent:
        frame.timeout = _timeout_of(persistent)
    return frame


# -- encode_frame --------------------------------------------------------------------------------

cdef struct _Out:
    char *data
    Py_ssize_t size
    Py_ssize_t capacity
    char *stack  # the initial storage; data points elsewhere once it grew


cdef int _reserve(_Out *out, Py_ssize_t more) except -1:
    cdef Py_ssize_t need = out.size + more
    cdef Py_ssize_t capacity
    cdef char *grown
    if need <= out.capacity:
        return 0
    capacity = max(need, 2 * out.capacity)
    if out.data == out.stack:
        grown = <char *>PyMem_Malloc(capacity)
        if grown != NULL:
            memcpy(grown, out.data, out.size)
    else:
        grown = <char *>PyMem_Realloc(out.data, capacity)
    if grown == NULL:
        raise MemoryError()
    out.data = grown
    out.capacity = capacity
    return 0


cdef int _put_varint(_Out *out, uint64_t n) except -1:
    _reserve(out, 10)
    while n > 0x7F:
        out.data[out.size] = <char>(n & 0x7F | 0x80)
        out.size += 1
        n >>= 7
    out.data[out.size] = <char>n
    out.size += 1
    return 0


cdef int _put_string(_Out *out, s) except -1:
    cdef bytes data
    if type(s) is bytes:
        data = <bytes>s
    elif isinstance(s, str):
        data = (<str>s).encode("utf-8", "surrogateescape")
    else:
        data = bytes(s)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    _put_varint(out, <uint64_t>n)
    _reserve(out, n)
    memcpy(out.data + out.size, PyBytes_AS_STRING(data), n)
    out.size += n
    return 0


cdef bint _plain(payload, transforms, flags, seqid):
    """Whether the request's fields and the payload are what the compiled path writes the way
    the pure one does (a reply to a parsed frame always is); else the pure one runs."""
    if type(payload) is not bytes and type(payload) is not bytearray:
        return False
    if transforms is not _NO_TRANSFORMS and transforms is not _ZLIB_ONLY \
            and transforms != _NO_TRANSFORMS and transforms != _ZLIB_ONLY:
        return False
    return _int_within(flags, 0, 0xFFFF) and _int_within(seqid, -0x80000000, 0x7FFFFFFF)


cdef inline bint _int_within(value, long low, long high):
    """An int (not a bool or other subclass) from low to high, compared in C."""
    if type(value) is not int:
        return False
    cdef int overflow
    cdef long n = PyLong_AsLongAndOverflow(value, &overflow)
    return not overflow and low <= n <= high


def encode_frame(payload, request, headers=None):
    """theader.encode_frame, compiled: the whole reply frame, its 4-byte length first."""
    cdef HeaderFrame frame
    if type(request) is HeaderFrame:  # what parse_header made: its fields without lookups
        frame = <HeaderFrame>request
        transforms, flags, seqid, protocol = frame.transforms, frame.flags, frame.seqid, frame.protocol
    else:
        transforms, flags, seqid, protocol = request.transforms, request.flags, request.seqid, request.protocol
    if not _plain(payload, transforms, flags, seqid):
        from dracula.wire.theader import pure_encode_frame
        return pure_encode_frame(payload, request, headers)
    if transforms:
        payload = zlib.compress(payload)
    cdef uint64_t protocol_id
    if protocol is BINARY:
        protocol_id = 0
    elif protocol is COMPACT:
        protocol_id = 2
    else:
        protocol_id = ID_OF_PROTOCOL[protocol]  # a KeyError, as the pure encoder raises
    cdef char stack[256]
    cdef _Out out
    out.data = out.stack = stack
    out.size = 0
    out.capacity = sizeof(stack)
    try:
        _put_varint(&out, protocol_id)
        _put_varint(&out, len(transforms))
        if transforms:
            _put_varint(&out, ZLIB)
        if headers:
            _put_varint(&out, INFO_KEYVALUE)
            _put_varint(&out, len(headers))
            for key, value in headers.items():
                _put_string(&out, key)
                _put_string(&out, value)
        return _assemble(&out, payload, flags, seqid)
    finally:
        if out.data != out.stack:
            PyMem_Free(out.data)


cdef bytes _assemble(_Out *out, payload, int flags, int32_t seqid):
    """Length, fixed header, padded header and payload in one bytes object."""
    cdef Py_ssize_t padding = -out.size % 4
    if padding < 0:
        padding += 4
    cdef Py_ssize_t head = out.size + padding
    if head > MAX_HEADER_SIZE:
        raise ValueError("reply headers of %d bytes do not fit THeader's %d-byte header"
                         % (head, MAX_HEADER_SIZE))
    cdef const char *body
    cdef Py_ssize_t n
    if type(payload) is bytes:
        body, n = PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload)
    else:
        body, n = PyByteArray_AS_STRING(payload), PyByteArray_GET_SIZE(payload)
    cdef uint64_t size = FIXED_SIZE + head + n
    cdef bytes frame = PyBytes_FromStringAndSize(NULL, 4 + size)
    cdef unsigned char *w = <unsigned char *>PyBytes_AS_STRING(frame)
    cdef uint64_t words = head // 4
    cdef uint64_t sq = <uint64_t>(<int64_t>seqid) & 0xFFFFFFFFu
    w[0] = (size >> 24) & 0xFF; w[1] = (size >> 16) & 0xFF; w[2] = (size >> 8) & 0xFF; w[3] = size & 0xFF
    w[4] = MAGIC >> 8; w[5] = MAGIC & 0xFF
    w[6] = (flags >> 8) & 0xFF; w[7] = flags & 0xFF
    w[8] = (sq >> 24) & 0xFF; w[9] = (sq >> 16) & 0xFF; w[10] = (sq >> 8) & 0xFF; w[11] = sq & 0xFF
    w[12] = (words >> 8) & 0xFF; w[13] = words & 0xFF
    memcpy(w + 14, out.data, out.size)
    cdef Py_ssize_t i
    for i in range(padding):
        w[14 + out.size + i] = 0
    if n:
        memcpy(w + 14 + head, body, n)
    return frame
