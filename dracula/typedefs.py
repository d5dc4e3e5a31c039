"""Names for the types that cross dracula's seams and have no one Python class (as aiohttp's
typedefs.py names its own): aliases only, nothing runs here per call.

thriftpy2 builds service, struct and exception classes at run time from an IDL, so no static type
knows their fields or methods: they are `Any` under a name that says which thriftpy2 object is
meant, in this one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from thriftpy2.thrift import TProcessor

# A client's address as the socket gives it: (host, port) for IPv4, (host, port, flowinfo,
# scope id) for IPv6, a path (often "") for a Unix socket; None before it is known.
Peer: TypeAlias = tuple[str, int] | tuple[str, int, int, int] | str | None
# A client's TLS certificate as ssl.SSLSocket.getpeercert() returns it: "subject" and "issuer"
# (tuples of RDNs, each a tuple of (name, value) pairs), "subjectAltName" ((kind, value) pairs),
# "serialNumber", "notBefore", "notAfter"...; typeshed's _PeerCertRetDictType, named here.
PeerCert: TypeAlias = dict[str, Any]

# Bytes received: the receive buffer (a bytearray), a slice of it or of an inflated payload, or a
# memoryview of either. The scanners and the THeader parser read any of them.
Buffer: TypeAlias = bytes | bytearray | memoryview
# A message's undecoded arguments struct, as the reader splits it out of what was received.
Body: TypeAlias = bytes | bytearray

# An instance of a struct, union or exception class thriftpy2 generated from an IDL (a
# thriftpy2.thrift.TPayload whose fields exist only at run time): `_args`, `_result`, user structs.
ThriftStruct: TypeAlias = Any

# A service class thriftpy2 generated from an IDL: `thrift_services` (its method names) and, per
# method, the classes `NAME_args` and `NAME_result`.
ThriftService: TypeAlias = Any

# The user's object whose methods answer a service's calls, by the IDL's method names.
Handler: TypeAlias = Any

# What make_server and dracula.serving serve (thriftpy2_api.services_of): a ThriftService (with
# its Handler beside it), a thriftpy2 TProcessor or TMultiplexedProcessor, or several services
# as {name: (service, handler) or processor}. As ThriftService is Any, this says, it checks nothing.
Services: TypeAlias = "ThriftService | TProcessor | Mapping[str, tuple[ThriftService, Handler] | TProcessor]"

# A client-side thriftpy2 protocol and transport (dracula call): thriftpy2's factories, its
# multiplexed protocol and its socket are not annotated.
ThriftProtocol: TypeAlias = Any
ThriftTransport: TypeAlias = Any

# A thriftpy2 field spec, a value of a struct class's `thrift_spec`: (ttype, name, required) or
# (ttype, name, sub, required), sub being an enum or struct class or a container's element spec.
FieldSpec: TypeAlias = tuple[Any, ...]
# A struct class's `thrift_spec`: field id -> FieldSpec.
StructSpec: TypeAlias = dict[int, FieldSpec]
# What the scanners follow the IDL by: method name (bytes, as on the wire) -> its arguments'
# StructSpec (dispatch.Dispatcher.arg_specs).
ArgSpecs: TypeAlias = Mapping[bytes, StructSpec]
# A JSON value as json.loads gives it and json.dumps takes it (dracula call's arguments and replies).
Json: TypeAlias = "dict[str, Json] | list[Json] | str | int | float | bool | None"

# A container's element, key or value spec: a bare ttype (int), or (ttype, sub); a map's own
# sub is (key spec, value spec). Tested by class on the scanners' path, so left open here.
ElementSpec: TypeAlias = Any
