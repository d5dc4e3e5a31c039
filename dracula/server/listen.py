"""The listening socket: TCP, a Unix domain socket, or one inherited from a supervisor."""

from __future__ import annotations

import errno
import os
import socket
import stat
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dracula.config import Config


class BindError(OSError):
    """The address cannot be bound (in use, not permitted, not an address of this host)."""


def listen(config: Config) -> socket.socket:
    if config.worker_fd is not None:
        sock = socket.socket(fileno=config.worker_fd)
        sock.setblocking(False)
        return sock
    if config.uds:
        return _listen_unix(config)
    return _listen_tcp(config)


def address_of(sock: socket.socket) -> tuple[str, int | None]:
    """(host, port) for TCP; (path, None) for a Unix socket."""
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return name, None
    return name[0], name[1]


def _listen_tcp(config: Config) -> socket.socket:
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((config.host, config.port))
        sock.listen(config.backlog)
    except OSError as e:
        sock.close()
        raise BindError(e.errno, "cannot listen on %s:%s: %s" % (config.host, config.port, e.strerror)) from e
    return sock


def _listen_unix(config: Config) -> socket.socket:
    path = config.uds
    assert path  # listen() serves a Unix socket only when --uds names one
    _remove_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, config.uds_mode)
        sock.listen(config.backlog)
    except OSError as e:
        sock.close()
        raise BindError(e.errno, "cannot listen on %s: %s" % (path, e.strerror)) from e
    return sock


def _remove_stale(path: str) -> None:
    """A socket file left by a server that died is removed; one a live server answers on, or
    a path that is not a socket, is an error."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise BindError(errno.EEXIST, "cannot listen on %s: it exists and is not a socket" % path)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)  # nobody listens: stale
        return
    except OSError:
        return  # let bind() report what is wrong
    finally:
        probe.close()
    raise BindError(errno.EADDRINUSE, "cannot listen on %s: a server is already listening there" % path)
