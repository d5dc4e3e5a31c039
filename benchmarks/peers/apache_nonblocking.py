"""Apache Thrift's Python `TNonblockingServer` (thrift 0.x, `thrift.server`): one thread polls
every socket and hands complete frames to a pool of worker threads (10, its default).

TNonblockingServer only speaks *framed* transport, so the load generator sends framed pings to
this server and unframed ones to every other. Protocol: binary, with Apache's C accelerator
(`TBinaryProtocolAcceleratedFactory`, fastbinary) when it is built, as a tuned deployment would.
The listen backlog is the harness's (TServerSocket defaults to 128).

There is no thrift compiler here, so the code the compiler would generate for
`service PingService { string ping() }` (`thrift --gen py`) is written out below: the args and
result structs with their thrift_spec (which the accelerator reads) and the Processor.
"""
from __future__ import annotations

import logging

import _common
from thrift.protocol.TBinaryProtocol import TBinaryProtocolAcceleratedFactory
from thrift.server.TNonblockingServer import TNonblockingServer
from thrift.Thrift import TApplicationException, TMessageType, TProcessor, TType
from thrift.transport import TSocket, TTransport


class ping_args:
    thrift_spec = ()

    def read(self, iprot):
        if (iprot._fast_decode is not None and isinstance(iprot.trans, TTransport.CReadableTransport)
                and self.thrift_spec is not None):
            iprot._fast_decode(self, iprot, [self.__class__, self.thrift_spec])
            return
        iprot.readStructBegin()
        while True:
            (fname, ftype, fid) = iprot.readFieldBegin()
            if ftype == TType.STOP:
                break
            iprot.skip(ftype)
            iprot.readFieldEnd()
        iprot.readStructEnd()

    def write(self, oprot):
        if oprot._fast_encode is not None and self.thrift_spec is not None:
            oprot.trans.write(oprot._fast_encode(self, [self.__class__, self.thrift_spec]))
            return
        oprot.writeStructBegin("ping_args")
        oprot.writeFieldStop()
        oprot.writeStructEnd()


class ping_result:
    thrift_spec = ((0, TType.STRING, "success", "UTF8", None),)

    def __init__(self, success=None):
        self.success = success

    def read(self, iprot):
        if (iprot._fast_decode is not None and isinstance(iprot.trans, TTransport.CReadableTransport)
                and self.thrift_spec is not None):
            iprot._fast_decode(self, iprot, [self.__class__, self.thrift_spec])
            return
        iprot.readStructBegin()
        while True:
            (fname, ftype, fid) = iprot.readFieldBegin()
            if ftype == TType.STOP:
                break
            if fid == 0 and ftype == TType.STRING:
                self.success = iprot.readString()
            else:
                iprot.skip(ftype)
            iprot.readFieldEnd()
        iprot.readStructEnd()

    def write(self, oprot):
        if oprot._fast_encode is not None and self.thrift_spec is not None:
            oprot.trans.write(oprot._fast_encode(self, [self.__class__, self.thrift_spec]))
            return
        oprot.writeStructBegin("ping_result")
        if self.success is not None:
            oprot.writeFieldBegin("success", TType.STRING, 0)
            oprot.writeString(self.success)
            oprot.writeFieldEnd()
        oprot.writeFieldStop()
        oprot.writeStructEnd()


class Processor(TProcessor):
    """PingService.Processor as `thrift --gen py` writes it."""

    def __init__(self, handler):
        self._handler = handler
        self._processMap = {"ping": Processor.process_ping}

    def process(self, iprot, oprot):
        (name, type, seqid) = iprot.readMessageBegin()
        if name not in self._processMap:
            iprot.skip(TType.STRUCT)
            iprot.readMessageEnd()
            x = TApplicationException(TApplicationException.UNKNOWN_METHOD, "Unknown function %s" % name)
            oprot.writeMessageBegin(name, TMessageType.EXCEPTION, seqid)
            x.write(oprot)
            oprot.writeMessageEnd()
            oprot.trans.flush()
            return
        self._processMap[name](self, seqid, iprot, oprot)
        return True

    def process_ping(self, seqid, iprot, oprot):
        args = ping_args()
        args.read(iprot)
        iprot.readMessageEnd()
        result = ping_result()
        try:
            result.success = self._handler.ping()
            msg_type = TMessageType.REPLY
        except TTransport.TTransportException:
            raise
        except TApplicationException as ex:
            logging.exception("TApplication exception in handler")
            msg_type = TMessageType.EXCEPTION
            result = ex
        except Exception:
            logging.exception("Unexpected exception in handler")
            msg_type = TMessageType.EXCEPTION
            result = TApplicationException(TApplicationException.INTERNAL_ERROR, "Internal error")
        oprot.writeMessageBegin("ping", msg_type, seqid)
        result.write(oprot)
        oprot.writeMessageEnd()
        oprot.trans.flush()


def main() -> None:
    args = _common.parse_args(__doc__)
    logging.basicConfig(level=logging.WARNING)
    sock = TSocket.TServerSocket(host=args.host, port=args.port)
    sock.setBacklog(args.backlog)
    server = TNonblockingServer(Processor(_common.ping_handler()), sock,
                                inputProtocolFactory=TBinaryProtocolAcceleratedFactory())
    server.serve()


if __name__ == "__main__":
    main()
