# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled fast path of a plain call: from a whole binary message in a connection's buffer
to its reply bytes, without the Message and Call objects of the general path.

It is a twin of three pieces of Python, for the common case only: Reader.next_message (framed
and unframed binary; THeader frames are split by the Reader itself), Call.admit with no
middleware and no overload policy, and Call.run_inline for a plain (SYNC) method called with
CALL. Whatever else a message is or does goes back to the general path, where it is answered
as before (tests/test_fast_path_differential.py holds the two to the same replies):

- a message that is not a CALL, for a method that is unknown, oneway, async, @blocking or moved
  to the pool: answer() returns its Message, and the backend handles it as any other;
- arguments that do not decode or lack a required one: the Message too (the general path
  decodes them again, deterministically, and refuses the call);
- a handler that raised, returned a coroutine or a value that does not encode, or touched the
  response headers of a THeader call: the Call the general path would have had is built then
  (calls.promoted) and finishes the call, so errors are answered and logged by the same code.

Safety is not traded: every byte is vetted by the same compiled scanner before thriftpy2's
codec decodes it, through a transport that fails at the body's end, as codec.BinaryCodec does.
"""
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from libc.stdint cimport int32_t, uint32_t, uint8_t
from libc.string cimport memcpy

import time
import types

from thriftpy2.protocol.cybin import TCyBinaryProtocol
from thriftpy2.thrift import init_func_generator
from thriftpy2.transport.buffered import TCyBufferedTransport
from thriftpy2.transport.memory import TCyMemoryBuffer

from dracula.server.calls import promoted
from dracula.server.context import CallContext, current
from dracula.server.dispatch import SYNC
from dracula.wire.codec import KEEP_BUFFER_BELOW
from dracula.wire.errors import WireError
from dracula.wire.reader import SHRINK_ABOVE, Message
from dracula.wire.theader import encode_frame, parse_header as _parse_header

cdef object _monotonic = time.monotonic
cdef object _CoroutineType = types.CoroutineType
cdef object _SYNC = SYNC
cdef object _current_set = current.set
cdef object _current_reset = current.reset
cdef Py_ssize_t _SHRINK_ABOVE = SHRINK_ABOVE
cdef Py_ssize_t _KEEP_BUFFER_BELOW = KEEP_BUFFER_BELOW

cdef int CALL = 1
cdef int REPLY = 2
cdef uint32_t VERSION_1 = 0x80010000u


@cython.boundscheck(True)
cdef inline Py_ssize_t _frame_size(const uint8_t[:] view, Py_ssize_t at) except? -1:
    """The signed 4-byte frame length at view[at] (bounds-checked: a frame read never leaves
    the receive buffer, whatever the Reader's offsets say)."""
    return <int32_t>((<uint32_t>view[at] << 24) | (<uint32_t>view[at + 1] << 16)
                     | (<uint32_t>view[at + 2] << 8) | <uint32_t>view[at + 3])


cdef inline void _put_i32(char *p, uint32_t v):
    p[0] = <char>((v >> 24) & 0xFF)
    p[1] = <char>((v >> 16) & 0xFF)
    p[2] = <char>((v >> 8) & 0xFF)
    p[3] = <char>(v & 0xFF)


cdef class FastCall:
    """What `dracula.current_call()` finds while a handler of the fast path runs: the context
    it asks for, made on first use exactly as Call.context makes it."""

    cdef public object method
    cdef public object peer
    cdef public object peer_cert
    cdef public object meta
    cdef public object deadline
    cdef public object _context

    @property
    def context(self):
        if self._context is None:
            meta = self.meta
            headers = meta.headers if meta is not None else {}
            method = self.method
            self._context = CallContext(
                method.service_name, method.name, self.peer, headers, self.deadline, self.peer_cert
            )
        return self._context


cdef class BodySource:
    """The file-like object the decode transport reads one body from: a range of the receive
    buffer, read in place (codec._BodySource's twin, without the body's own copy)."""

    cdef object data
    cdef Py_ssize_t pos
    cdef Py_ssize_t stop

    def read(self, Py_ssize_t n):
        cdef Py_ssize_t pos = self.pos
        cdef Py_ssize_t end = pos + n
        if end > self.stop:
            end = self.stop
        self.pos = end
        return self.data[pos:end]


cdef object _EMPTY_INIT = init_func_generator(object, []).__code__


cdef tuple _fields_of(cls):
    """(names, defaults) that thriftpy2's generated __init__ of `cls` sets, and nothing else;
    None when `cls` has an __init__ of its own (then a fresh object is made per call)."""
    init = getattr(cls, "__init__", None)
    code = getattr(init, "__code__", None)
    if code is None:
        return None
    if code is _EMPTY_INIT:
        return ((), ())
    if not code.co_filename.startswith("<generated "):
        return None
    names = code.co_varnames[1 : code.co_argcount]
    defaults = init.__defaults__ or ()
    if len(defaults) != len(names):
        return None
    return (tuple(names), tuple(defaults))


cdef class Shapes:
    """One method's thriftpy2 structs for the fast path of one thread, made once and reset to
    what their __init__ sets after every call (they never leave the fast path: a handler gets
    the argument values, the reply the encoded result); None where the class's __init__ is not
    thriftpy2's generated one."""

    cdef object args, result
    cdef tuple arg_names, arg_defaults, result_names, result_defaults

    def __init__(self, method):
        args_cls, result_cls = method.args_cls, method.result_cls
        # The handler's positional arguments, in IDL order (dispatch.Method.get_args).
        self.arg_names = tuple(spec[1] for spec in args_cls.thrift_spec.values())
        self.arg_defaults = ()
        fields = _fields_of(args_cls)
        if fields is not None and sorted(fields[0]) == sorted(self.arg_names):
            defaults = dict(zip(fields[0], fields[1]))
            self.arg_defaults = tuple(defaults[name] for name in self.arg_names)
            self.args = args_cls()
        fields = _fields_of(result_cls)
        if fields is not None:
            self.result_names, self.result_defaults = fields
            self.result = result_cls()

    cdef object new_args(self, method):
        if self.args is None:
            return method.args_cls()
        return self.args

    cdef void reset_args(self, args):
        cdef Py_ssize_t i
        if args is self.args:
            for i in range(len(self.arg_names)):
                setattr(args, self.arg_names[i], self.arg_defaults[i])

    cdef object new_result(self, method):
        if self.result is None:
            return method.result_cls()
        return self.result

    cdef void reset_result(self, result):
        cdef Py_ssize_t i
        if result is self.result:
            result.success = None  # a void method's result has no such field: it is set all the same
            for i in range(len(self.result_names)):
                setattr(result, self.result_names[i], self.result_defaults[i])

    cdef tuple values(self, args):
        """The handler's positional arguments."""
        cdef Py_ssize_t i, n = len(self.arg_names)
        cdef tuple out = PyTuple_New(n)
        for i in range(n):
            value = getattr(args, self.arg_names[i])
            Py_INCREF(value)
            PyTuple_SET_ITEM(out, i, value)
        return out


cdef class PlainCodec:
    """The binary codec's buffers for the fast path of one thread (the reactor: one for all its
    connections; the thread backend: one per connection thread)."""

    cdef int max_depth
    cdef BodySource source
    cdef dict shapes
    cdef object trans, iprot, out, oprot
    cdef object trans_clean, read_struct, write_struct, getvalue, out_clean

    def __init__(self, int max_depth):
        self.max_depth = max_depth
        self.source = BodySource()
        self.shapes = {}
        self._new_buffers()

    cdef _new_buffers(self):
        self.trans = TCyBufferedTransport(self.source)
        self.iprot = TCyBinaryProtocol(self.trans, max_depth=self.max_depth)
        self.out = TCyMemoryBuffer()
        self.oprot = TCyBinaryProtocol(self.out, max_depth=self.max_depth)
        self.trans_clean = self.trans.clean
        self.read_struct = self.iprot.read_struct
        self.write_struct = self.oprot.write_struct
        self.getvalue = self.out.getvalue
        self.out_clean = self.out.clean

    cdef Shapes shapes_of(self, method):
        cdef Shapes shapes = self.shapes.get(method)
        if shapes is None:
            shapes = self.shapes[method] = Shapes(method)
        return shapes

    cdef bint decode(self, data, Py_ssize_t start, Py_ssize_t stop, args) except -1:
        """Fill `args` from data[start:stop]; False when the bytes do not decode (the general
        path decodes them again and refuses the call)."""
        cdef BodySource source = self.source
        source.data = data
        source.pos = start
        source.stop = stop
        self.trans_clean()
        try:
            self.read_struct(args)
        except Exception:
            return False
        finally:
            source.data = None
            if stop - start > _KEEP_BUFFER_BELOW:
                self._new_buffers()
        return True

    cdef bytes encode(self, result):
        """The struct `result` alone, encoded (raises what the codec raises)."""
        self.write_struct(result)
        cdef bytes body = self.getvalue()
        self.out_clean()
        if PyBytes_GET_SIZE(body) > _KEEP_BUFFER_BELOW:
            self._new_buffers()
        return body


cdef bytes _reply(bytes name, int32_t seqid, bytes body, bint framed):
    """codec.BinaryCodec.encode's REPLY message, laid out in one allocation."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(name)
    cdef Py_ssize_t b = PyBytes_GET_SIZE(body)
    cdef Py_ssize_t size = 12 + n + b
    cdef Py_ssize_t total = size + 4 if framed else size
    cdef bytes reply = PyBytes_FromStringAndSize(NULL, total)
    cdef char *p = PyBytes_AS_STRING(reply)
    if framed:
        _put_i32(p, <uint32_t>size)
        p += 4
    _put_i32(p, VERSION_1 | <uint32_t>REPLY)
    _put_i32(p + 4, <uint32_t>n)
    memcpy(p + 8, PyBytes_AS_STRING(name), n)
    _put_i32(p + 8 + n, <uint32_t>seqid)
    memcpy(p + 12 + n, PyBytes_AS_STRING(body), b)
    return reply


cdef inline tuple _taken(reader, scanner, buf, Py_ssize_t stop, Py_ssize_t end):
    """The scanned message's header, its bytes (up to `stop`) consumed from the reader: Reader's
    own bookkeeping after a message, without its method calls."""
    header = scanner.header
    scanner.header = None
    scanner.pos = 0
    scanner.need = 0
    if stop != end:
        reader.start = stop
    elif len(buf) > _SHRINK_ABOVE:
        reader._rewind()  # the bytes stay readable here: `buf` holds the old buffer
    else:
        reader.start = 0
        reader.end = 0
    return header


cdef class PlainPath:
    """One connection's fast path, built once its first message showed a binary wire (framed,
    unframed or THeader) on a server with no middleware and no overload policy."""

    cdef object state, reader, scanner, methods, codec, peer, peer_cert, loop
    cdef PlainCodec plain
    cdef bint framed, theader, frames
    cdef Py_ssize_t max_size

    def __init__(self, state, reader, codec, PlainCodec plain, peer, peer_cert, loop):
        wire = reader.wire
        self.state = state
        self.reader = reader
        self.scanner = reader.scanner
        self.methods = state.methods
        self.codec = codec
        self.plain = plain
        self.peer = peer
        self.peer_cert = peer_cert
        self.loop = loop
        self.frames = wire.framed  # the request is split by its frame length
        self.theader = wire.theader
        self.framed = wire.frames_replies  # the reply is framed (THeader: encode_frame frames it)
        self.max_size = reader.max_size

    def answer(self):
        """The next whole message, answered if it is a plain call: its reply (bytes); None
        until more bytes arrive; the Message for the general path to handle; or (call,
        coroutine) for a plain handler that returned a coroutine, for the backend to await.
        Raises WireError where Reader.next_message() does."""
        reader = self.reader
        cdef Py_ssize_t start = reader.start
        cdef Py_ssize_t end = reader.end
        if start == end:
            return None
        buf = reader.buf
        scanner = self.scanner
        cdef Py_ssize_t n, size, stop, at
        if self.frames:  # Reader._next_frame's twin (and _next_theader's)
            if end - start < 4:
                return None
            size = _frame_size(buf, start)
            if size <= 0 or size > self.max_size:
                raise WireError("frame of %d bytes (limit %d)" % (size, self.max_size))
            stop = start + 4 + size
            if end < stop:
                return None
            if self.theader:
                return self._theader(reader, buf, scanner, start, end, size, stop)
            scanner.reset()
            try:
                n = scanner.scan(buf, start + 4, stop, stop)
                if n < 0:
                    raise WireError("message overruns its %d-byte frame" % size)
            except WireError as e:
                header = scanner.header
                reader._consume(4 + size)
                raise e.at(header, fatal=header is None) from None
            at = start + 4
        else:  # Reader.next_message's twin
            if end - start < scanner.need:
                return None
            try:
                n = scanner.scan(buf, start, end, start + self.max_size)
                if n > self.max_size:
                    raise WireError("message of %d bytes (limit %d)" % (n, self.max_size))
            except WireError as e:
                raise e.at(scanner.header) from None
            if n < 0:
                return None
            at = start
            stop = start + n
        name, mtype, seqid, body_at = _taken(reader, scanner, buf, stop, end)
        return self._call(name, mtype, seqid, buf, at + body_at, at + n, None, None)

    cdef object _theader(self, reader, buf, scanner, Py_ssize_t start, Py_ssize_t end, Py_ssize_t size,
                         Py_ssize_t frame_end):
        """Reader._next_theader's twin, from a whole frame on."""
        try:
            header = _parse_header(buf, start + 4, frame_end, reader.persistent)
        except WireError as e:
            reader._consume(4 + size)
            raise reader._answer_in(e) from None
        cdef Py_ssize_t base, stop, n
        if not header.transforms and header.protocol is reader.wire.protocol:
            data = buf
            base = header.payload_at
            stop = frame_end
        else:
            try:
                data, base, stop = reader._payload(header, frame_end)
            except WireError:
                reader._consume(4 + size)
                raise
        scanner.reset()
        try:
            n = scanner.scan(data, base, stop, stop)
            if n < 0:
                raise WireError("message overruns its %d-byte THeader payload" % (stop - base))
        except WireError as e:
            reader._consume(4 + size)
            raise e.at(scanner.header or (b"", CALL, header.seqid, 0), fatal=False, theader=header) from None
        name, mtype, seqid, body_at = _taken(reader, scanner, buf, frame_end, end)
        return self._call(name, mtype, seqid, data, base + body_at, base + n, header, None)

    cdef object _call(self, bytes name, int mtype, int32_t seqid, data, Py_ssize_t start, Py_ssize_t stop,
                      header, msg):
        """Call.admit and Call.run_inline's twin for a plain call; what answer() returns."""
        method = self.methods.get(name)
        if method is None or mtype != CALL or method.route is not _SYNC or method.oneway:
            return self._message(msg, name, mtype, seqid, data, start, stop, header)
        cdef PlainCodec plain = self.plain
        cdef Shapes shapes = plain.shapes_of(method)
        args = shapes.new_args(method)
        try:
            if stop - start > 1:  # a lone STOP byte leaves every argument unset: nothing to decode
                if not plain.decode(data, start, stop, args):
                    return self._message(msg, name, mtype, seqid, data, start, stop, header)
                for required in method.required:
                    if getattr(args, required) is None:
                        return self._message(msg, name, mtype, seqid, data, start, stop, header)
            elif method.required:
                return self._message(msg, name, mtype, seqid, data, start, stop, header)
            call_args = shapes.values(args)
        finally:
            shapes.reset_args(args)
        deadline = None
        if header is not None and header.timeout is not None:
            deadline = _monotonic() + header.timeout
        cdef FastCall fast = FastCall.__new__(FastCall)
        fast.method = method
        fast.peer = self.peer
        fast.peer_cert = self.peer_cert
        fast.meta = header
        fast.deadline = deadline
        token = _current_set(fast)
        try:
            placement = method.placement
            if placement is None:
                value = method.fn(*call_args)
            elif method.skip:  # cheap so far: only one call in placement.SAMPLE is timed
                method.skip -= 1
                value = method.fn(*call_args)
            else:
                value = placement.timed(method, call_args)
        except (Exception, SystemExit) as e:
            return self._promote(msg, name, mtype, seqid, data, start, stop, header, method, call_args,
                                 fast).finish(error=e)
        finally:
            _current_reset(token)
        if value.__class__ is _CoroutineType:
            return (self._promote(msg, name, mtype, seqid, data, start, stop, header, method, call_args, fast),
                    value)
        result = shapes.new_result(method)
        result.success = value
        try:
            body = plain.encode(result)
        except Exception as e:
            shapes.reset_result(result)
            call = self._promote(msg, name, mtype, seqid, data, start, stop, header, method, call_args, fast)
            reply = call.value_failed(value, e)
            if header is not None:
                reply = call._in_header_frame(reply, header)
            return reply
        shapes.reset_result(result)
        reply = _reply(method.reply_name, seqid, body, self.framed)
        if header is not None:
            if fast._context is None:  # no response headers: a frame that cannot be too large
                reply = encode_frame(reply, header)
            else:
                reply = self._promote(msg, name, mtype, seqid, data, start, stop, header, method, call_args,
                                      fast)._in_header_frame(reply, header)
        return reply

    cdef object _message(self, msg, bytes name, int mtype, int32_t seqid, data, Py_ssize_t start,
                         Py_ssize_t stop, header):
        if msg is None:
            msg = Message(name, mtype, seqid, data[start:stop], header)
        return msg

    cdef object _promote(self, msg, bytes name, int mtype, int32_t seqid, data, Py_ssize_t start,
                         Py_ssize_t stop, header, method, call_args, FastCall fast):
        """The Call the general path would have had at this point (calls.promoted)."""
        msg = self._message(msg, name, mtype, seqid, data, start, stop, header)
        return promoted(self.state, msg, self.codec, self.framed, self.peer, self.loop, self.peer_cert, method,
                        call_args, fast.deadline, fast._context)
