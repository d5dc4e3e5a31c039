"""What every connection of a server shares, whichever backend runs it: the method table, the
per-call policy's settings, the refusal log, the open connections and the drain flag.

Connections see this object, not their backend."""
from __future__ import annotations

import threading

from thriftpy2.thrift import TApplicationException

from .calls import Call
from .logs import RefusalLog
from .wire.codec import make_codec
from .wire.reader import Message, Reader


class ServerState:
    def __init__(self, config, dispatcher, observer=None):
        self.config = config
        self.methods = dispatcher.methods
        self.arg_specs = dispatcher.arg_specs
        self.observer = observer  # observe.CallObserver, or None when nothing is logged or measured
        self.refusals = RefusalLog()
        self.connections = set()
        self.connection_limit = config.connection_limit
        self.draining = False
        # Set by the backend: the loop coroutine handlers run on, the pool for @blocking ones.
        self.loop = None
        self.pool = None
        # A coarse clock (the reactor's sweeper advances it), so no per-read path asks the time.
        self.tick = 0.0
        # Early in a drain a connection that has sent nothing yet may be about to: it gets
        # FIRST_REQUEST_GRACE before it is closed as idle.
        self.fresh_grace_over = False
        self.on_all_closed = None  # the reactor's drain waits for this
        # Codecs reuse their buffers, so each thread has its own (the reactor: one for all).
        self._codecs = threading.local()

    def new_reader(self) -> Reader:
        return Reader.for_config(self.config, self.arg_specs)

    def codec_for(self, protocol: str):
        codecs = self._codecs.__dict__
        codec = codecs.get(protocol)
        if codec is None:
            codec = codecs[protocol] = make_codec(protocol, self.config.max_depth)
        return codec

    def room_for(self, peer) -> bool:
        """Whether a new connection from `peer` may be served (it is logged if not)."""
        if len(self.connections) < self.connection_limit:
            return True
        self.refusals(peer, "connection limit of %d reached" % self.connection_limit)
        return False

    def connection_closed(self, conn) -> None:
        self.connections.discard(conn)
        if not self.connections and self.on_all_closed is not None:
            self.on_all_closed()

    def refuse_wire(self, error, wire, peer):
        """Log bytes the wire layer refused; the reply telling the client why where the message
        header was read (None otherwise, or for oneway)."""
        self.refusals(peer, error.reason)
        if error.reply_to is None:
            return None
        name, mtype, seqid, _ = error.reply_to
        call = Call(self, Message(name, mtype, seqid, None), self.codec_for(wire.protocol), wire.framed, peer)
        call.refuse(TApplicationException.PROTOCOL_ERROR, error.reason)
        return call.reply
