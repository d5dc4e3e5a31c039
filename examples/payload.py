"""Handler for idl/payload.thrift: `dracula serve idl/payload.thrift:PayloadService examples.payload:PayloadHandler`."""


class PayloadHandler:
    def count(self, shape):
        return len(shape.points)
