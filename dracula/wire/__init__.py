"""The wire: detecting a connection's transport and protocol, splitting messages out of its
byte stream, and the guarded decode/encode around thriftpy2's codec."""
