"""One blocking connection to one host, for one thread's call at a time (the pool's checkout):
the request is written, the reply read into a reused buffer and fed to the connection's Wire.

Anything but a clean reply leaves the connection unusable (the pool closes it). As the pool hands
it out, a non-blocking peek tells whether the server closed the connection while it sat idle:
then it is discarded before a request is written into a dead socket.
"""

from __future__ import annotations

import select
import socket
import time

from dracula.client.addresses import Endpoint
from dracula.client.errors import BadReply, CallTimeout, ConnectFailed, CutOff, NotSent
from dracula.client.messages import Reply, Wire

READ_SIZE = 64 * 1024
_PEEK = socket.MSG_PEEK | socket.MSG_DONTWAIT


class SyncConnection:
    def __init__(self, sock: socket.socket, wire: Wire, endpoint: Endpoint) -> None:
        self.sock = sock
        self.wire = wire
        self.endpoint = endpoint
        self.opened_at = self.last_used = time.monotonic()
        self.broken = False
        self.seqid = 0
        self._buf = bytearray(READ_SIZE)
        self._timeout: float | None = sock.gettimeout()  # what the socket is set to now
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)

    @classmethod
    def open(cls, endpoint: Endpoint, wire: Wire, timeout: float | None) -> SyncConnection:
        try:
            sock = socket.create_connection(endpoint, timeout)
        except TimeoutError:
            raise ConnectFailed("connecting to %s:%d timed out" % endpoint) from None
        except OSError as e:
            raise ConnectFailed("cannot connect to %s:%d: %s" % (endpoint[0], endpoint[1], e.strerror or e)) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock, wire, endpoint)

    @property
    def usable(self) -> bool:
        """Not broken, and not closed by the server while idle (a non-blocking peek)."""
        if self.broken:
            return False
        if not self._poll.poll(0):
            return True  # open, and nothing unasked-for to read: one system call, the usual case
        try:
            self._check_open()
        except (NotSent, BadReply):
            return False
        return True

    def next_seqid(self) -> int:
        self.seqid = (self.seqid + 1) & 0x7FFFFFFF
        return self.seqid

    def _check_open(self) -> None:
        if not self.broken:
            if not self._poll.poll(0):
                return  # open, and nothing unasked-for to read: one system call, the usual case
            self._set_timeout(0.0)  # with a timeout set, Python would poll before the peek
            try:
                waiting = self.sock.recv(1, _PEEK)
            except (BlockingIOError, InterruptedError):
                return  # open, and nothing unasked-for to read
            except OSError:
                pass
            else:
                if waiting:  # bytes nobody asked for: not a connection to trust
                    self.close()
                    raise BadReply("bytes arrived on %s:%d with no call waiting" % self.endpoint)
        self.close()
        raise NotSent("the connection to %s:%d had ended" % self.endpoint)

    def send(self, data: bytes, timeout: float | None = None) -> None:
        """Write a request (the pool checked, as it handed the connection out, that the server
        had not closed it while idle)."""
        if self.broken:
            raise NotSent("the connection to %s:%d had ended" % self.endpoint)
        self._set_timeout(timeout)
        try:
            self.sock.sendall(data)
        except TimeoutError:
            self.close()
            raise CallTimeout("writing the request to %s:%d timed out" % self.endpoint) from None
        except OSError as e:
            self.close()
            raise CutOff("writing the request to %s:%d failed: %s" % (*self.endpoint, e)) from None

    def call(self, data: bytes, timeout: float | None) -> Reply:
        sock, buf, wire = self.sock, self._buf, self.wire
        if timeout is None:
            deadline = None
            if self.broken or self._timeout is not None:
                self.send(data, timeout)
            else:  # send() for the usual case: a socket already blocking, no deadline
                try:
                    sock.sendall(data)
                except OSError as e:
                    self.close()
                    raise CutOff("writing the request to %s:%d failed: %s" % (*self.endpoint, e)) from None
        else:
            deadline = time.monotonic() + timeout
            self.send(data, timeout)
        view: memoryview | None = None
        try:
            n = sock.recv_into(buf)  # the first read waits the timeout send() set
            if n:
                # The usual case: the whole reply in this one read, vetted where it lies.
                reply = wire.whole(buf, n)
                if reply is not None:
                    return reply
            view = memoryview(buf)
            while True:
                if not n:
                    if wire.received:
                        raise BadReply("%s:%d closed the connection in the middle of a reply" % self.endpoint)
                    raise CutOff(
                        "%s:%d closed the connection after the request was written, before any reply" % self.endpoint
                    )
                reply = wire.feed(view[:n])
                if reply is not None:
                    return reply
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError
                    self._set_timeout(remaining)
                n = sock.recv_into(buf)
        except TimeoutError:
            self.close()
            raise CallTimeout("no reply from %s:%d within %.3fs" % (*self.endpoint, timeout or 0)) from None
        except OSError as e:
            self.close()
            if wire.received:
                raise BadReply("reading the reply from %s:%d failed: %s" % (*self.endpoint, e)) from None
            raise CutOff("reading the reply from %s:%d failed: %s" % (*self.endpoint, e)) from None
        except BaseException:
            self.close()
            raise
        finally:
            if view is not None:
                view.release()

    def _set_timeout(self, timeout: float | None) -> None:
        """Set the socket's timeout unless it is that already (each setting is a system call)."""
        if timeout != self._timeout:
            self.sock.settimeout(timeout)
            self._timeout = timeout

    def close(self) -> None:
        self.broken = True
        self.sock.close()
