"""Who may connect: the `on_connect(peer, peer_cert)` hook, run once per connection before any
of its bytes are read, on both backends.

`peer` is the client's address (dracula.typedefs.Peer); `peer_cert` its TLS certificate as
`ssl.SSLSocket.getpeercert()` returns it (None without TLS or without a client certificate),
the same dict every call of the connection later finds in `dracula.current_call().peer_cert`.
The hook returns False to refuse the connection (True or None admit it); one that raises
refuses it too. A refused connection is closed at once, with one `dracula.refused` line and no
call read. An allow-list by address or by certificate is a few lines: examples/identity.py.

The hook is a plain function (or any callable object): on the reactor it runs on the event loop,
so it should decide from what it holds in memory; on the thread backend it runs on the
connection's own thread, after the TLS handshake.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Protocol

from dracula.typedefs import Peer, PeerCert

if TYPE_CHECKING:
    from dracula.ops.logs import RefusalLog


class OnConnect(Protocol):
    """A connection-level hook: False refuses the connection (so does raising)."""

    def __call__(self, peer: Peer, peer_cert: PeerCert | None, /) -> bool | None: ...


def checked_hook(hook: object) -> OnConnect | None:
    """`hook` as the server keeps it; TypeError (at start-up) for what cannot be one."""
    if hook is None:
        return None
    if not callable(hook):
        raise TypeError("on_connect must be callable as on_connect(peer, peer_cert), got %r" % (hook,))
    if inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(type(hook).__call__):
        raise TypeError(
            "on_connect must be a plain function: it decides before the connection is read, "
            "on the event loop (keep what it needs in memory)"
        )
    return hook  # callable: its signature is the caller's promise (a wrong one raises, and refuses)


def connection_admitted(hook: OnConnect, refusals: RefusalLog, peer: Peer, peer_cert: PeerCert | None) -> bool:
    """Ask the hook about a new connection; False (logged as a refusal) when it must close."""
    try:
        verdict = hook(peer, peer_cert)
    except Exception as e:
        refusals(peer, "on_connect raised %s: %s (closing the connection)" % (type(e).__name__, e))
        return False
    if verdict is None or verdict:
        return True
    refusals(peer, "refused by on_connect%s (closing the connection)" % _subject(peer_cert))
    return False


def _subject(peer_cert: PeerCert | None) -> str:
    """The certificate's common name for a refusal line (' for CN=NAME'; '' without one)."""
    for rdn in (peer_cert or {}).get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return " for CN=%s" % value
    return ""
