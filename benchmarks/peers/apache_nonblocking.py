"""Apache Thrift's Python `TNonblockingServer` (thrift 0.x, `thrift.server`): one thread polls
every socket and hands complete frames to a pool of worker threads (10, its default).

TNonblockingServer only speaks *framed* transport, so the load generator sends framed calls to
this server and unframed ones to every other. Protocol: binary, with Apache's C accelerator
(`TBinaryProtocolAcceleratedFactory`, fastbinary) when it is built, as a tuned deployment would.
The listen backlog is the harness's (TServerSocket defaults to 128).

There is no thrift compiler here: the structs `thrift --gen py:dynamic` would generate are
written out in apache_generated.py, and the Processor below does what the generated one does,
for any of those services, from its method table.
"""

from __future__ import annotations

import logging

from thrift.protocol.TBinaryProtocol import TBinaryProtocolAcceleratedFactory
from thrift.server.TNonblockingServer import TNonblockingServer
from thrift.Thrift import TApplicationException, TMessageType, TProcessor, TType
from thrift.transport import TSocket, TTransport

import _common
from apache_generated import SERVICES

log = logging.getLogger(__name__)


class Processor(TProcessor):
    """Service.Processor as `thrift --gen py` writes it, driven by a method table."""

    def __init__(self, handler, methods):
        self._handler = handler
        self._methods = methods  # name -> (args class, result class)

    def process(self, iprot, oprot):
        (name, _type, seqid) = iprot.readMessageBegin()
        if name not in self._methods:
            iprot.skip(TType.STRUCT)
            iprot.readMessageEnd()
            x = TApplicationException(TApplicationException.UNKNOWN_METHOD, "Unknown function %s" % name)
            oprot.writeMessageBegin(name, TMessageType.EXCEPTION, seqid)
            x.write(oprot)
            oprot.writeMessageEnd()
            oprot.trans.flush()
            return
        self._process_call(name, seqid, iprot, oprot)
        return True

    def _process_call(self, name, seqid, iprot, oprot):
        args_cls, result_cls = self._methods[name]
        args = args_cls()
        args.read(iprot)
        iprot.readMessageEnd()
        result = result_cls()
        try:
            result.success = getattr(self._handler, name)(
                *[getattr(args, spec[2]) for spec in args_cls.thrift_spec if spec is not None]
            )
            msg_type = TMessageType.REPLY
        except TTransport.TTransportException:
            raise
        except TApplicationException as ex:
            log.exception("TApplication exception in handler")
            msg_type = TMessageType.EXCEPTION
            result = ex
        except Exception:
            log.exception("Unexpected exception in handler")
            msg_type = TMessageType.EXCEPTION
            result = TApplicationException(TApplicationException.INTERNAL_ERROR, "Internal error")
        oprot.writeMessageBegin(name, msg_type, seqid)
        result.write(oprot)
        oprot.writeMessageEnd()
        oprot.trans.flush()


def main() -> None:
    args = _common.parse_args(__doc__)
    logging.basicConfig(level=logging.WARNING)
    sock = TSocket.TServerSocket(host=args.host, port=args.port)
    sock.setBacklog(args.backlog)
    processor = Processor(_common.make_handler(args), SERVICES[_common.service_name(args)])
    server = TNonblockingServer(processor, sock, inputProtocolFactory=TBinaryProtocolAcceleratedFactory())
    server.serve()


if __name__ == "__main__":
    main()
