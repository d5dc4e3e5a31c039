"""Handler for idl/pingpong.thrift: `dracula serve idl/pingpong.thrift:PingService examples.pingpong:PingHandler`."""


class PingHandler:
    def ping(self):
        return "pong"
