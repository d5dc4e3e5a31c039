# cython: language_level=3, boundscheck=False, wraparound=False
"""The client's per-call code, compiled: a twin of messages.Wire (request bytes, the reply split,
vetted by the compiled scanner and decoded), of SyncConnection.call, and of the blocking client's
short way through a call (SyncClient._invoke and _attempt with SyncPool's acquire and release
inline), for one host and no hooks. dracula/client/compiled.py chooses it unless
DRACULA_PURE_PYTHON=1 or it was not built; the pure-Python code stays the reference and the
fallback, and tests/test_client_compiled.py holds the two to the same bytes, values and errors.

Every step the pure code takes is taken here, in the same order, with the same messages; what
changes is that no Python frame runs between them. Anything off the usual way (a second host,
hooks, DNS, a connection to open, a reply in several reads, a timeout, an error) is handed to the
same Python code the pure path runs.

Replies decode with thriftpy2's Cython binary protocol, as everywhere in dracula, but through
BodyReader: a transport over the vetted body that refuses to read past its end (the codec reads by
the IDL's types, so not always the bytes the scanner vetted) and copies each value once, where
thriftpy2's buffered transport copies the body into a buffer of its own first.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from libc.string cimport memcpy
from libc.stdint cimport uint32_t, int32_t
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

from thriftpy2.transport.cybase cimport CyTransportBase

import struct

from thriftpy2.protocol.cybin import TCyBinaryProtocol
from thriftpy2.thrift import TApplicationException
from thriftpy2.transport import TTransportException
from thriftpy2.transport.memory import TCyMemoryBuffer

from dracula.client.deadline import _UNSET, call_deadline, left, request_headers
from dracula.client.errors import TIMEOUT, BadReply, CallTimeout, CutOff, NotSent
from dracula.client.hooks import ClientCall
from dracula.client.messages import (
    BUFFERED,
    DRAIN_HEADER,
    FRAMED,
    HEADER,
    MAX_DEPTH,
    PROTOCOLS,
    TRANSPORTS,
    Method,
    Reply,
)
from dracula.wire.codec import KEEP_BUFFER_BELOW, BinaryCodec, CompactCodec
from dracula.wire.compiled import BinaryScanner, CompactScanner
from dracula.wire.detect import BINARY
from dracula.wire.errors import WireError
from dracula.wire.theader import parse_header, request_frame, untransform
from dracula.wire.theader_frame import ID_OF_PROTOCOL, PROTOCOL_IDS
from dracula.server.context import current

cdef int CALL = 1, REPLY = 2, EXCEPTION = 3
cdef int MAGIC = 0x0FFF
cdef Py_ssize_t FIXED_SIZE = 10  # a THeader frame after its length: magic, flags, seqid, header words
cdef Py_ssize_t PLAIN_SIZE = FIXED_SIZE + 4
_length = struct.Struct("!I")


cdef inline double monotonic():
    """time.monotonic(): the same clock (CLOCK_MONOTONIC), without a call into Python."""
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef inline void put_u32(char *p, uint32_t v):
    p[0] = <char>((v >> 24) & 0xFF)
    p[1] = <char>((v >> 16) & 0xFF)
    p[2] = <char>((v >> 8) & 0xFF)
    p[3] = <char>(v & 0xFF)


cdef class BodyReader(CyTransportBase):
    """A read-only transport over bytes already vetted: reads past their end raise, as
    thriftpy2's buffered transport over codec.py's _BodySource does, without its copy."""

    cdef const char *data
    cdef Py_ssize_t pos, end
    cdef object owner  # keeps data alive

    def __init__(self):
        self.trans = None
        self.owner = b""
        self.data = PyBytes_AS_STRING(self.owner)
        self.pos = self.end = 0

    cdef void set(self, bytes body):
        self.owner = body
        self.data = PyBytes_AS_STRING(body)
        self.pos = 0
        self.end = len(body)

    cdef c_read(self, int sz, char *out):
        # cybin reads 1, 2, 4 or 8 bytes at a time but for strings, and uses no c_read's result
        # (get_string, the one caller that does, is overridden below): None, no int made per read.
        cdef const char *p
        if sz <= 0:
            return None
        if sz > self.end - self.pos:
            return self._past_end()  # apart: this function stays small (no registers to save)
        p = self.data + self.pos
        self.pos += sz
        if sz == 1:
            out[0] = p[0]
        elif sz == 4:
            memcpy(out, p, 4)
        elif sz == 8:
            memcpy(out, p, 8)
        elif sz == 2:
            memcpy(out, p, 2)
        else:
            memcpy(out, p, sz)
        return None

    cdef object _past_end(self):
        self.pos = self.end
        raise TTransportException(TTransportException.END_OF_FILE, "End of file reading from transport")

    cdef get_string(self, int sz):
        if sz <= 0:
            return b""
        if sz > self.end - self.pos:
            return self._past_end()
        self.pos += sz
        return PyBytes_FromStringAndSize(self.data + self.pos - sz, sz)

    cdef c_write(self, const char *data, int sz):
        raise TTransportException(TTransportException.UNKNOWN, "a reply body is read, not written")

    cdef c_flush(self):
        pass

    cdef void reset(self):
        self.owner = b""
        self.data = PyBytes_AS_STRING(self.owner)
        self.pos = self.end = 0

    def clean(self):
        self.reset()

    def read(self, int sz):
        return self.get_string(sz)


cdef inline object new_reply(int mtype, bytes body, dict headers):
    reply = Reply.__new__(Reply)
    reply.mtype = mtype
    reply.body = body
    reply.headers = headers
    return reply


cdef class Wire:
    """messages.Wire, compiled: the same API (request, expect, whole, feed, decode, received),
    the same bytes out, the same replies and the same errors."""

    cdef readonly str transport
    cdef readonly str protocol
    cdef readonly Py_ssize_t max_size
    cdef readonly Py_ssize_t max_container
    cdef readonly object codec
    cdef bytearray _buf
    cdef object _method
    cdef object _seqid
    cdef object _scanner
    cdef dict _scanners
    cdef Py_ssize_t _frame_size
    cdef bint _is_binary
    cdef bint _header, _framed, _buffered
    cdef bytes _plain_header
    # binary: the request's encoder and the reply's decoder
    cdef object _out, _oprot
    cdef BodyReader _reader
    cdef object _iprot

    def __init__(self, transport, protocol, Py_ssize_t max_size, Py_ssize_t max_container):
        if transport not in TRANSPORTS:
            raise ValueError("transport %r: one of %s" % (transport, ", ".join(TRANSPORTS)))
        if protocol not in PROTOCOLS:
            raise ValueError("protocol %r: binary or compact" % (protocol,))
        self.transport = transport
        self._header = transport == HEADER
        self._framed = transport == FRAMED
        self._buffered = transport == BUFFERED
        self.protocol = PROTOCOLS[protocol]
        self.max_size = max_size
        self.max_container = max_container
        self._is_binary = self.protocol == BINARY
        self.codec = BinaryCodec(MAX_DEPTH) if self._is_binary else CompactCodec(MAX_DEPTH)
        self._buf = bytearray()
        self._method = None
        self._seqid = 0
        self._scanner = None
        self._scanners = {}
        self._frame_size = -1
        self._plain_header = bytes((ID_OF_PROTOCOL[self.protocol], 0, 0, 0))
        self._reader = BodyReader()
        self._iprot = TCyBinaryProtocol(self._reader, max_depth=MAX_DEPTH)
        self._new_out()

    cdef _new_out(self):
        self._out = TCyMemoryBuffer()
        self._oprot = TCyBinaryProtocol(self._out, max_depth=MAX_DEPTH)

    cdef bytes _body(self, args):
        """BinaryCodec.encode_body: the arguments struct alone."""
        out = self._out
        self._oprot.write_struct(args)
        cdef bytes body = out.getvalue()
        out.clean()
        if len(body) > KEEP_BUFFER_BELOW:
            self._new_out()
        return body

    cpdef request(self, method, seqid, args, headers):
        """The request's bytes, and the reader set to expect its reply."""
        cdef bytes head, body, data
        cdef Py_ssize_t hl, bl, size, at
        cdef char *p
        cdef int32_t sid
        if self._is_binary:  # BinaryCodec.encode's bytes, the head computed once per method
            head = method.binary_head
            body = self._body(args)
            hl = len(head)
            bl = len(body)
            sid = seqid
            if self._header and headers:
                data = request_frame(b"".join((head, struct.pack("!i", seqid), body)), self.protocol, headers, seqid)
            else:
                # one allocation: [frame length | THeader's fixed part and plain header] head seqid body
                if self._header:
                    at = 4 + PLAIN_SIZE
                elif self._framed:
                    at = 4
                else:
                    at = 0
                data = PyBytes_FromStringAndSize(NULL, at + hl + 4 + bl)
                p = PyBytes_AS_STRING(data)
                if self._header:
                    size = PLAIN_SIZE + hl + 4 + bl
                    put_u32(p, <uint32_t>size)
                    put_u32(p + 4, <uint32_t>(MAGIC << 16))  # magic, flags 0
                    put_u32(p + 8, <uint32_t>sid)
                    p[12] = 0
                    p[13] = 1  # one word of header
                    memcpy(p + 14, PyBytes_AS_STRING(self._plain_header), 4)
                elif self._framed:
                    put_u32(p, <uint32_t>(hl + 4 + bl))
                memcpy(p + at, PyBytes_AS_STRING(head), hl)
                put_u32(p + at + hl, <uint32_t>sid)
                memcpy(p + at + hl + 4, PyBytes_AS_STRING(body), bl)
        elif self._header:
            message = self.codec.encode(method.wire_name, method.mtype, seqid, args, False)
            if headers:
                data = request_frame(message, self.protocol, headers, seqid)
            else:
                data = b"".join(
                    (struct.pack("!IHHiH", len(message) + PLAIN_SIZE, MAGIC, 0, seqid, 1), self._plain_header, message)
                )
        else:
            data = self.codec.encode(method.wire_name, method.mtype, seqid, args, self._framed)
        self._expect(method, seqid)
        return data

    cdef _expect(self, method, seqid):
        self._method = method
        self._seqid = seqid
        if self._buf:
            self._buf.clear()
        self._frame_size = -1
        scanner = self._scanners.get(method)
        if scanner is None:
            scanner_cls = BinaryScanner if self._is_binary else CompactScanner
            scanner = self._scanners[method] = scanner_cls(
                MAX_DEPTH, self.max_container, self.max_size, {method.wire_name: method.reply_spec}
            )
        else:
            scanner.reset()
        self._scanner = scanner

    def expect(self, method, seqid):
        self._expect(method, seqid)

    @property
    def received(self):
        return len(self._buf)

    def whole(self, buf, Py_ssize_t end):
        """messages.Wire.whole: the reply when buf[:end] is exactly one whole frame, else None."""
        return self._whole(buf, end)

    cdef _whole(self, buf, Py_ssize_t end):
        if self._buf or self._buffered or end < 4:
            return None
        cdef Py_ssize_t size = _length.unpack_from(buf)[0]
        if size + 4 != end or size == 0 or size > self.max_size:
            return None
        return self._frame(buf, end)

    def feed(self, data):
        cdef bytearray buf = self._buf
        cdef Py_ssize_t size, n
        if not buf and not self._buffered and len(data) >= 4:
            size = _length.unpack_from(data)[0]
            if size + 4 == len(data) and 0 < size <= self.max_size:
                return self._frame(data, len(data))
        buf += data
        if self._buffered:
            return self._scan(buf, 0, len(buf), {})
        if self._frame_size < 0:
            if len(buf) < 4:
                return None
            size = _length.unpack_from(buf)[0]
            if size == 0 or size > self.max_size:
                raise BadReply("reply frame of %d bytes (limit %d): not this call's reply" % (size, self.max_size))
            self._frame_size = size
        size = self._frame_size
        n = len(buf)
        if n < size + 4:
            return None
        if n > size + 4:
            raise BadReply("%d bytes after the reply frame: the server sent more than one reply" % (n - size - 4))
        return self._frame(buf, size + 4)

    cdef _frame(self, buf, Py_ssize_t end):
        cdef const unsigned char *p
        cdef int32_t seqid
        if self._framed:
            return self._scan(buf, 4, end, {})
        if type(buf) is bytearray and end >= 4 + PLAIN_SIZE:
            # parse_header's own shortcut, for the commonest frame in the connection's buffer:
            # magic, one word of header (a known protocol id, no transforms, no info headers).
            p = <const unsigned char *>PyByteArray_AS_STRING(buf)
            if p[4] == 0x0F and p[5] == 0xFF and p[12] == 0 and p[13] == 1 and p[15] == 0 and p[16] == 0:
                protocol = PROTOCOL_IDS.get(p[14])
                if protocol is not None:
                    if protocol != self.protocol:
                        raise BadReply("THeader reply in %s, the call was %s" % (protocol, self.protocol))
                    seqid = <int32_t>((<uint32_t>p[8] << 24) | (<uint32_t>p[9] << 16) | (<uint32_t>p[10] << 8) | p[11])
                    if seqid != self._seqid:
                        raise BadReply("THeader reply has sequence id %d, the call had %d" % (seqid, self._seqid))
                    return self._scan(buf, 4 + PLAIN_SIZE, end, {})
        try:
            frame = parse_header(buf, 4, end, None)
            if frame.transforms:
                payload = untransform(frame, bytes(buf[frame.payload_at : end]), self.max_size)
                base, stop = 0, len(payload)
            else:
                payload, base, stop = buf, frame.payload_at, end
        except WireError as e:
            raise BadReply("reply is not a THeader frame: %s" % e) from None
        if frame.protocol != self.protocol:
            raise BadReply("THeader reply in %s, the call was %s" % (frame.protocol, self.protocol))
        if frame.seqid != self._seqid:
            raise BadReply("THeader reply has sequence id %d, the call had %d" % (frame.seqid, self._seqid))
        return self._scan(payload, base, stop, frame.headers)

    cdef _scan(self, buf, Py_ssize_t base, Py_ssize_t end, dict headers):
        scanner = self._scanner
        method = self._method
        assert scanner is not None and method is not None  # expect() was called
        cdef Py_ssize_t n
        try:
            n = scanner.scan(buf, base, end, base + self.max_size)
        except WireError as e:
            raise BadReply("reply to %s does not scan: %s" % (method.name, e.reason)) from None
        if n < 0:
            if not self._buffered:
                raise BadReply("reply frame to %s holds a truncated message (a lying length)" % method.name)
            if end >= self.max_size:
                raise BadReply("reply to %s passes %d bytes (limit)" % (method.name, self.max_size))
            return None
        if base + n != end:
            raise BadReply("%d bytes after the reply to %s" % (end - base - n, method.name))
        header = scanner.header
        assert header is not None
        name, mtype, seqid, body_at = header
        if seqid != self._seqid:
            raise BadReply("reply has sequence id %d, the call had %d" % (seqid, self._seqid))
        if name != method.wire_name and name != method.plain_name:
            raise BadReply("reply is for method %r, the call was %r" % (name.decode("utf-8", "replace"), method.name))
        if mtype != REPLY and mtype != EXCEPTION:
            raise BadReply("reply has message type %d, not REPLY or EXCEPTION" % mtype)
        return new_reply(mtype, body_of(buf, base + body_at, base + n), headers)

    cdef _read(self, bytes body, into):
        """codec.decode(body, into), its WireError a BadReply, as messages.Wire._decode."""
        if not self._is_binary:
            try:
                self.codec.decode(body, into)
            except WireError as e:
                raise BadReply("reply does not decode: %s" % e.reason) from None
            return
        self._reader.set(body)
        try:
            self._iprot.read_struct(into)
        except Exception as e:
            raise BadReply("reply does not decode: arguments do not decode: %s" % (e,)) from None
        finally:
            self._reader.reset()

    cpdef decode(self, reply):
        """The call's value (or its raised exception) from a vetted reply."""
        method = self._method
        assert method is not None
        if reply.mtype == EXCEPTION:
            error = TApplicationException()
            self._read(reply.body, error)
            if error.type == TIMEOUT:  # the server's deadline check: one exception for both
                raise CallTimeout(error.message or "the server says the deadline passed")
            raise error
        assert method.result_cls is not None  # oneway calls read no reply
        result = method.result_cls()
        self._read(reply.body, result)
        if method.has_success:
            success = result.success
            if success is not None:
                return success
        return method.result(result)


cdef bytes body_of(buf, Py_ssize_t start, Py_ssize_t stop):
    """bytes(buf[start:stop]) with one copy, not two."""
    cdef Py_buffer view
    if type(buf) is bytes:
        return PyBytes_FromStringAndSize(PyBytes_AS_STRING(buf) + start, stop - start)
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        return PyBytes_FromStringAndSize(<char *>view.buf + start, stop - start)
    finally:
        PyBuffer_Release(&view)


# -- the blocking client's short way through a call ------------------------------------------------


cdef class SyncMethod:
    """`client.method`, compiled: SyncClient._invoke's partial, with what stays the same from call
    to call looked up once: the method's spec, and for a client whose calls may take the short way
    (one host, no hooks: its `_only`) that host's pool, its idle stack and its lock."""

    cdef object client, core, budget, spec, args_cls, host, pool, stack, lock
    cdef Py_ssize_t nargs
    cdef bint oneway, header
    cdef readonly str __name__

    def __init__(self, client, spec, str name):
        self.client = client
        self.core = client._core
        self.budget = self.core.budget
        self.spec = spec
        self.args_cls = spec.args_cls
        self.nargs = spec.nargs
        self.oneway = spec.oneway
        self.header = client._header
        self.host = client._only
        if self.host is not None:
            self.pool = self.host.pool
            self.stack = self.pool.stack
            self.lock = self.pool._lock
        self.__name__ = name

    def __call__(self, *args, timeout=_UNSET, **kwargs):
        return _invoke(self, args, kwargs, timeout)

    def __repr__(self):
        return "<dracula client method %s>" % self.__name__


def invoke(client, spec, tuple args, dict kwargs, timeout):
    """SyncClient._invoke(spec, *args, timeout=timeout, **kwargs), compiled."""
    return _invoke(SyncMethod(client, spec, spec.name), args, kwargs, timeout)


cdef object _invoke(SyncMethod m, tuple args, dict kwargs, timeout):
    core = m.core
    if core.closed:
        raise NotSent("the client is closed")
    spec = m.spec
    if not kwargs and len(args) == m.nargs:
        call_args = m.args_cls(*args)
    else:
        call_args = spec.make_args(args, kwargs)
    if timeout is _UNSET:
        timeout = core.options.timeout
    deadline = None if timeout is None and current.get(None) is None else call_deadline(timeout)
    _deposit(m.budget)
    host = m.host
    if host is None:  # hooks, names to look up or several hosts: every step in full
        return m.client._call(ClientCall(spec, call_args, deadline))
    # The usual client: one host, no hooks. A ClientCall is made only when the first attempt
    # fails, for the retry decision and any further attempt (the pure path's _call).
    host.calls += 1
    try:
        return _attempt(m, call_args, deadline)
    except Exception as e:
        call = ClientCall(spec, call_args, deadline)
        call.attempts = 1
        call.host = host.label
        if not core.retry(call, host, e):
            raise
    return m.client._call(call)


cdef inline _deposit(budget):
    """RetryBudget.deposit."""
    cdef long now = <long>(monotonic() / budget._width)
    if now != budget._epoch:
        with budget._lock:
            budget._advance()
    calls = budget._calls
    i = now % budget.BUCKETS
    calls[i] += 1


cdef object _attempt(SyncMethod m, args, deadline):
    """SyncClient._attempt for a call's first attempt on the short way (no hook headers)."""
    host = m.host
    host.outstanding += 1
    conn = None
    try:
        conn = _acquire(m, deadline)
        remaining = None if deadline is None else left(deadline)
        headers = None
        if remaining is not None and m.header:
            headers = request_headers(None, remaining)
        seqid = (conn.seqid + 1) & 0x7FFFFFFF
        conn.seqid = seqid
        wire = conn.wire
        if type(wire) is Wire:
            data = (<Wire>wire).request(m.spec, seqid, args, headers)
        else:
            data = wire.request(m.spec, seqid, args, headers)
        if m.oneway:
            conn.send(data, remaining)
            return None
        reply = connection_call(conn, data, remaining)
        if DRAIN_HEADER in reply.headers or host.failures:
            return m.core.answer(host, conn, reply)  # retires the connection, resets the host
        if type(wire) is Wire:
            return (<Wire>wire).decode(reply)
        return wire.decode(reply)
    finally:
        host.outstanding -= 1
        if conn is not None:
            _release(m, conn)


cdef object _acquire(SyncMethod m, deadline):
    """SyncPool.acquire's usual way: the newest idle connection, fresh and still open. Anything
    else (none idle, a stale or closed one) goes on through SyncPool.acquire, which takes the
    same steps from there."""
    stack = m.stack
    lock = m.lock
    conn = None
    lock.acquire()
    try:
        if stack.closed:
            raise NotSent("the client is closed")
        idle = stack.idle
        if idle:
            conn = idle.pop()  # IdleStack.take's first step
            max_age = stack.max_age
            idle_timeout = stack.idle_timeout
            now = monotonic()
            if (
                conn.broken
                or (max_age is not None and now - conn.opened_at > max_age)
                or (idle_timeout is not None and now - conn.last_used > idle_timeout)
            ):
                stack.discard(conn)
                conn = None
    finally:
        lock.release()
    if conn is None:
        return m.pool.acquire(deadline)
    # conn.usable, outside the lock, as SyncPool.acquire probes it
    if not conn.broken and not conn._poll.poll(0):
        return conn
    if conn.usable:
        return conn
    with lock:
        stack.discard(conn)
    return m.pool.acquire(deadline)


cdef object _release(SyncMethod m, conn):
    """SyncPool.release."""
    stack = m.stack
    pool = m.pool
    cdef double now = monotonic()
    with m.lock:
        max_age = stack.max_age
        idle_timeout = stack.idle_timeout
        if (
            stack.closed
            or conn.broken
            or (max_age is not None and now - conn.opened_at > max_age)
            or (idle_timeout is not None and now - conn.last_used > idle_timeout)
        ):
            stack.discard(conn)
        else:
            conn.last_used = now
            stack.idle.append(conn)
        if pool._waiting:
            pool._freed.notify()


def connection_call(conn, data, timeout):
    """SyncConnection.call(data, timeout), compiled: write the request, read its reply."""
    sock = conn.sock
    buf = conn._buf
    wire = conn.wire
    cdef bint fast = type(wire) is Wire
    if timeout is None:
        deadline = None
        if conn.broken or conn._timeout is not None:
            conn.send(data, timeout)
        else:  # send() for the usual case: a socket already blocking, no deadline
            try:
                sock.sendall(data)
            except OSError as e:
                conn.close()
                raise CutOff("writing the request to %s:%d failed: %s" % (*conn.endpoint, e)) from None
    else:
        deadline = monotonic() + timeout
        conn.send(data, timeout)
    view = None
    try:
        n = sock.recv_into(buf)  # the first read waits the timeout send() set
        if n:
            # The usual case: the whole reply in this one read, vetted where it lies.
            reply = (<Wire>wire)._whole(buf, n) if fast else wire.whole(buf, n)
            if reply is not None:
                return reply
        view = memoryview(buf)
        while True:
            if not n:
                if wire.received:
                    raise BadReply("%s:%d closed the connection in the middle of a reply" % conn.endpoint)
                raise CutOff(
                    "%s:%d closed the connection after the request was written, before any reply" % conn.endpoint
                )
            reply = wire.feed(view[:n])
            if reply is not None:
                return reply
            if deadline is not None:
                remaining = deadline - monotonic()
                if remaining <= 0:
                    raise TimeoutError
                conn._set_timeout(remaining)
            n = sock.recv_into(buf)
    except TimeoutError:
        conn.close()
        raise CallTimeout("no reply from %s:%d within %.3fs" % (*conn.endpoint, timeout or 0)) from None
    except OSError as e:
        conn.close()
        if wire.received:
            raise BadReply("reading the reply from %s:%d failed: %s" % (*conn.endpoint, e)) from None
        raise CutOff("reading the reply from %s:%d failed: %s" % (*conn.endpoint, e)) from None
    except BaseException:
        conn.close()
        raise
    finally:
        if view is not None:
            view.release()
