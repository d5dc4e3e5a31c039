"""The hosts a client calls: "host:port", (host, port), or a list of them; a name that is not an
IP literal is looked up (all its addresses) and looked up again every `resolve_interval`."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from typing import Union

Address = Union[str, "tuple[str, int]"]
Endpoint = tuple[str, int]


def parse(address: Address) -> Endpoint:
    if isinstance(address, tuple):
        host, port = address
        return str(host), int(port)
    if not isinstance(address, str):
        raise TypeError("an address is 'host:port' or (host, port), not %r" % (address,))
    host, sep, digits = address.rpartition(":")
    if not sep or not digits.isdigit():
        raise ValueError("address %r: 'host:port'" % (address,))
    return host.strip("[]"), int(digits)


def parse_all(addresses: Address | Sequence[Address]) -> list[Endpoint]:
    if isinstance(addresses, (str, tuple)):
        addresses = [addresses]
    endpoints = [parse(a) for a in addresses]
    if not endpoints:
        raise ValueError("no address to call")
    return endpoints


def is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def needs_lookup(endpoints: Sequence[Endpoint]) -> bool:
    return any(not is_literal(host) for host, _ in endpoints)


def resolve(endpoints: Sequence[Endpoint]) -> list[Endpoint]:
    """Every endpoint with its name replaced by each address it resolves to (blocking). A name
    that does not resolve is left out; OSError when none resolves."""
    found: list[Endpoint] = []
    error: OSError | None = None
    for host, port in endpoints:
        if is_literal(host):
            found.append((host, port))
            continue
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            error = e
            continue
        for info in infos:
            endpoint = (str(info[4][0]), port)
            if endpoint not in found:
                found.append(endpoint)
    if not found:
        raise error or OSError("no address resolved")
    return found
