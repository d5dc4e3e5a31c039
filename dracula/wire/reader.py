"""A connection's receive buffer, and the messages split out of it.

Both backends read into `get_buffer()` (the uv backend hands it to libuv, the thread backend to
recv_into) and then pull whole messages with `next_message()`. Memory follows what the client
actually sent: the buffer starts small, doubles only when filled, and shrinks back once a large
message has been consumed; a declared frame length alone allocates nothing.

THeader frames are split like framed ones; theader.py parses each frame's header (and inflates
a zlib payload within the size limit), and the message inside is scanned like a framed body.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from dracula.typedefs import ArgSpecs, Body
from dracula.wire.compiled import BinaryScanner, CompactScanner, Scanner
from dracula.wire.detect import BINARY, HEAD_BYTES, Wire, detect
from dracula.wire.errors import WireError
from dracula.wire.theader import parse_header, untransform

if TYPE_CHECKING:
    from dracula.config import Config
    from dracula.ops.budget import Budget, Ticket
    from dracula.wire.theader_frame import HeaderFrame

_i32 = struct.Struct("!i").unpack_from

CALL = 1
INITIAL_SIZE = 8 * 1024
MIN_FREE = 2 * 1024
SHRINK_ABOVE = 64 * 1024


class RequestMeta(Protocol):
    """What a transport says about a call besides the message: its headers (str -> str, what
    `current_call().headers` shows) and the client's timeout in seconds (None: no deadline).
    A THeader frame (theader_frame.HeaderFrame) and an HTTP request (http/request.py) are both."""

    headers: dict[str, str]
    timeout: float | None


class Message:
    """One decoded message header and the undecoded bytes of its arguments struct; `header` is
    the theader.HeaderFrame it came in (None unless THeader), which its reply must go back in;
    `meta` is where its headers and deadline come from: that frame, or the HTTP request that
    carried it (None: the transport carries none)."""

    __slots__ = ("name", "mtype", "seqid", "body", "header", "meta")

    def __init__(
        self,
        name: bytes,
        mtype: int,
        seqid: int,
        body: Body,
        header: HeaderFrame | None = None,
        meta: RequestMeta | None = None,
    ) -> None:
        self.name = name
        self.mtype = mtype
        self.seqid = seqid
        self.body = body
        self.header = header
        self.meta = header if meta is None else meta


class Reader:
    __slots__ = (
        "buf",
        "start",
        "end",
        "wire",
        "scanner",
        "max_size",
        "max_depth",
        "max_container",
        "max_string",
        "specs",
        "persistent",
        "budget",
        "charged",
        "ticket",
    )
    # None until the first bytes arrive (buf) and until they show the protocol (wire, scanner).
    buf: bytearray | None
    wire: Wire | None
    scanner: Scanner | None
    persistent: dict[str, str] | None
    budget: Budget | None  # None: no memory budget
    ticket: Ticket | None

    def __init__(
        self,
        max_size: int,
        max_depth: int,
        max_container: int,
        max_string: int | None = None,
        specs: ArgSpecs | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.buf = None  # allocated on the first read: idle connections cost no buffer
        self.start = 0
        self.end = 0
        self.wire = None
        self.scanner = None
        self.max_size = max_size
        self.max_depth = max_depth
        self.max_container = max_container
        self.max_string = max_size if max_string is None else max_string
        self.specs = specs  # method name (bytes) -> arguments thrift_spec, for the scanners
        self.persistent = None  # a THeader connection's persistent headers
        self.budget = budget  # budget.Budget: growth past INITIAL_SIZE is charged to it
        self.charged = 0
        self.ticket = None  # the budget's answer to a growth still waiting for memory

    @classmethod
    def for_config(cls, config: Config, specs: ArgSpecs | None = None, budget: Budget | None = None) -> Reader:
        return cls(
            config.max_frame_size, config.max_depth, config.max_container_size, config.string_limit, specs, budget
        )

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a returned message."""
        return self.end - self.start

    def get_buffer(self) -> memoryview:
        """Free space to receive into; call `received(n)` after writing n bytes to it."""
        buf = self.buf
        if buf is None:
            buf = self.buf = bytearray(INITIAL_SIZE)
        elif len(buf) - self.end < MIN_FREE:
            kept = self.end - self.start
            if self.start and kept < len(buf) // 2:
                buf[:kept] = buf[self.start : self.end]
            else:
                if self.budget is not None:
                    self._charge(self.budget, len(buf))
                # A new buffer twice the size, not extend(): a large calloc comes zeroed from
                # the kernel for free, where extend() would zero a temporary and copy it in.
                grown = bytearray(2 * len(buf))
                grown[:kept] = buf[self.start : self.end]
                buf = self.buf = grown
            self.start = 0
            self.end = kept
        return memoryview(buf)[self.end :]

    def make_room(self, wake: Callable[[], None]) -> bool:
        """Before the next read: True when get_buffer() can receive without growing past the
        budget. False when the buffer must double and the budget cannot give the bytes yet:
        wake() is called (from the thread that gave memory back) once they are granted; then
        call again. Only buffer growth asks, so small requests never wait."""
        buf = self.buf
        if self.budget is None or buf is None or len(buf) - self.end >= MIN_FREE:
            return True
        if self.start and self.end - self.start < len(buf) // 2:
            return True  # get_buffer() makes room by moving the bytes to the front
        ticket = self.ticket
        if ticket is None:
            ticket = self.ticket = self.budget.request(len(buf), wake)
        return ticket.granted  # get_buffer() grows into it (the buffer may be exported now)

    def _charge(self, budget: Budget, size: int) -> None:
        ticket = self.ticket
        if ticket is not None and ticket.granted and ticket.size == size:
            self.ticket = None  # granted by make_room()
        else:  # make_room() was not asked first: count it anyway
            budget.force(size)
        self.charged += size

    def release(self) -> None:
        """The connection closed: give its memory back to the budget."""
        budget = self.budget
        if budget is None:
            return
        if self.ticket is not None:
            budget.cancel(self.ticket)
            self.ticket = None
        if self.charged:
            budget.give(self.charged)
            self.charged = 0

    def received(self, n: int) -> None:
        self.end += n

    def next_message(self) -> Message | None:
        """The next complete message, or None until more bytes arrive. Raises WireError."""
        start = self.start
        end = self.end
        if start == end:
            return None
        scanner = self.scanner
        if scanner is None:
            if not self._detect():
                return None
            scanner = self.scanner
        wire, buf = self.wire, self.buf
        assert scanner is not None and wire is not None and buf is not None  # bytes arrived, _detect() ran
        if wire.framed:
            if wire.theader:
                return self._next_theader()
            return self._next_frame()
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
        # Taken here, not in a helper: this is the per-request path of thriftpy2's default transport.
        header = scanner.header
        assert header is not None  # a complete message has a header
        name, mtype, seqid, body_at = header
        scanner.header = None
        scanner.pos = scanner.need = 0
        body = buf[start + body_at : start + n]
        start += n
        if start != end:
            self.start = start
        elif len(buf) > SHRINK_ABOVE:
            self._rewind()
        else:  # _rewind()'s common case, without the call
            self.start = self.end = 0
        return Message(name, mtype, seqid, body)

    def _detect(self) -> bool:
        assert self.buf is not None  # bytes arrived
        self.wire = wire = detect(self.buf[self.start : min(self.end, self.start + HEAD_BYTES)])
        if wire is None:
            return False
        if wire.theader:
            self.persistent = {}
        scanner = BinaryScanner if wire.protocol == BINARY else CompactScanner
        self.scanner = scanner(self.max_depth, self.max_container, self.max_string, self.specs)
        return True

    def _next_frame(self) -> Message | None:
        # Split here, not in helpers: the per-request path of framed clients. A size past the
        # limit is refused on the 4-byte header, before any of the body is buffered.
        start, end, buf, scanner = self.start, self.end, self.buf, self.scanner
        assert buf is not None and scanner is not None  # bytes arrived, _detect() ran
        if end - start < 4:
            return None
        size = _i32(buf, start)[0]
        if size <= 0 or size > self.max_size:
            raise WireError("frame of %d bytes (limit %d)" % (size, self.max_size))
        stop = start + 4 + size
        if end < stop:
            return None
        scanner.reset()
        try:
            n = scanner.scan(buf, start + 4, stop, stop)
            if n < 0:
                raise WireError("message overruns its %d-byte frame" % size)
        except WireError as e:
            # The frame boundary still holds: a message refused after its header was read is
            # answered and the connection goes on with the next frame. One whose header cannot
            # be read cannot be answered (no seqid), so the connection closes: a refusal always
            # ends in a reply or a close, never in silence.
            header = scanner.header
            self._consume(4 + size)
            raise e.at(header, fatal=header is None) from None
        header = scanner.header
        assert header is not None  # a complete message has a header
        name, mtype, seqid, body_at = header
        scanner.header = None
        scanner.pos = scanner.need = 0
        body = buf[start + 4 + body_at : start + 4 + n]
        if stop != end:
            self.start = stop
        elif len(buf) > SHRINK_ABOVE:
            self._rewind()
        else:  # _rewind()'s common case, without the call
            self.start = self.end = 0
        return Message(name, mtype, seqid, body)

    def _next_theader(self) -> Message | None:
        # The frame's size checked as in _next_frame().
        start, buf, scanner, wire = self.start, self.buf, self.scanner, self.wire
        assert buf is not None and scanner is not None and wire is not None  # bytes arrived, _detect() ran
        if self.end - start < 4:
            return None
        size = _i32(buf, start)[0]
        if size <= 0 or size > self.max_size:
            raise WireError("frame of %d bytes (limit %d)" % (size, self.max_size))
        frame_end = start + 4 + size
        if self.end < frame_end:
            return None
        try:
            header = parse_header(buf, start + 4, frame_end, self.persistent)
        except WireError as e:
            self._consume(4 + size)
            raise self._answer_in(e) from None
        # The payload lies in the receive buffer, unless a transform must be undone first.
        if not header.transforms and header.protocol is wire.protocol:
            data: Body = buf
            base, stop = header.payload_at, frame_end
        else:
            try:
                data, base, stop = self._payload(header, frame_end)
            except WireError:
                self._consume(4 + size)
                raise
        scanner.reset()
        try:
            n = scanner.scan(data, base, stop, stop)
            if n < 0:
                raise WireError("message overruns its %d-byte THeader payload" % (stop - base))
        except WireError as e:
            self._consume(4 + size)
            # The frame boundary still holds: answered, in a THeader frame, and the connection goes on.
            raise e.at(scanner.header or (b"", CALL, header.seqid, 0), fatal=False, theader=header) from None
        assert scanner.header is not None  # a complete message has a header
        name, mtype, seqid, body_at = scanner.header
        scanner.header = None
        scanner.pos = scanner.need = 0
        body = data[base + body_at : base + n]
        if frame_end != self.end:
            self.start = frame_end
        elif len(buf) > SHRINK_ABOVE:
            self._rewind()
        else:  # _rewind()'s common case, without the call
            self.start = self.end = 0
        return Message(name, mtype, seqid, body, header)

    def _answer_in(self, e: WireError) -> WireError:
        """A frame whose header was refused is answered in a THeader frame when its fixed
        header was read (its sequence id is known); without it there is no one to answer:
        the connection closes, never silence."""
        frame = e.theader
        if frame is None:
            return e.at(None, fatal=True)
        if frame.protocol is None:
            assert self.wire is not None  # _detect() ran
            frame.protocol = self.wire.protocol
        return e.at((b"", CALL, frame.seqid, 0))

    def _payload(self, header: HeaderFrame, end: int) -> tuple[Body, int, int]:
        """Where the payload lies for the scanner: (data, start, end), in the receive buffer or,
        once its transforms are undone, in the inflated bytes (the limits apply to those)."""
        wire, buf = self.wire, self.buf
        assert buf is not None and wire is not None  # bytes arrived, _detect() ran
        if not header.transforms and header.protocol is wire.protocol:
            return buf, header.payload_at, end
        if header.protocol != wire.protocol:
            # The codec was chosen by the connection's first frame: nothing to answer in.
            raise WireError("THeader frame in %s on a %s connection" % (header.protocol, wire))
        try:
            data = untransform(header, buf[header.payload_at : end], self.max_size)
        except WireError as e:
            raise e.at((b"", CALL, header.seqid, 0), theader=header) from None
        return data, 0, len(data)

    def _consume(self, n: int) -> None:
        self.start += n
        if self.start == self.end:
            self._rewind()

    def _rewind(self) -> None:
        """Everything received was consumed: receive at the front again (and give back a
        buffer that grew for a large message)."""
        self.start = self.end = 0
        if self.buf is not None and len(self.buf) > SHRINK_ABOVE:
            self.buf = bytearray(INITIAL_SIZE)
            if self.budget is not None:
                self.release()
