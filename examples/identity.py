"""Knowing who is calling: TLS client certificates, an allow-list of connections and the methods
each identity may call, from one JSON file.

    IDENTITY_POLICY=examples/identities.json dracula serve \\
        idl/showcase.thrift:Showcase examples.showcase:ShowcaseHandler \\
        --ssl-certfile server.pem --ssl-keyfile server.key --ssl-ca-certs clients-ca.pem \\
        --on-connect examples.identity:AllowList --middleware examples.identity:MethodsByIdentity

The policy file (IDENTITY_POLICY, by default ./identities.json; examples/identities.json):

    {
      "networks": ["10.1.0.0/16"],
      "identities": {
        "billing.example.internal": ["Showcase.lookup", "ping"],
        "spiffe://example.internal/ops": ["*"]
      }
    }

A certificate's identities are its subject's common name and every subjectAltName value (DNS
name, URI, e-mail address, IP address). Methods are listed as "name", "Service.name" or "*".

- `AllowList` (`--on-connect`) admits a connection whose address is in one of `networks` or
  whose certificate carries an identity listed in `identities`; any other is closed before a
  byte of it is read, with one `dracula.refused` line.
- `MethodsByIdentity` (`--middleware`) lets a call through when one of its certificate's
  identities lists its method; any other call is answered with a TApplicationException and its
  handler never runs (a connection without a certificate has no identity).

Each reads the file once, when it is made: `dracula serve --workers N` re-reads it on SIGHUP,
with the handler code. `dracula.current_call().peer_cert` gives a handler the same certificate.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Iterable, Mapping

from thriftpy2.thrift import TApplicationException

ANY_METHOD = "*"


def identities_of(peer_cert):
    """The names a certificate (as ssl's getpeercert() returns it) vouches for: its subject's
    common name and its subjectAltName values; [] for None (no TLS, or no certificate)."""
    if not peer_cert:
        return []
    names = [value for rdn in peer_cert.get("subject", ()) for key, value in rdn if key == "commonName"]
    names.extend(value for _kind, value in peer_cert.get("subjectAltName", ()))
    return names


class Policy:
    """Who may connect (`networks`, and every identity listed) and what each identity may call."""

    def __init__(self, identities: Mapping[str, Iterable[str]], networks: Iterable[str] = ()) -> None:
        self.identities = {name: frozenset(methods) for name, methods in identities.items()}
        self.networks = [ipaddress.ip_network(network) for network in networks]

    @classmethod
    def load(cls, path: str | None = None) -> Policy:
        path = path or os.environ.get("IDENTITY_POLICY", "identities.json")
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return cls(data.get("identities", {}), data.get("networks", ()))

    def allowed_methods(self, peer_cert) -> frozenset[str]:
        """Every method the certificate's identities may call (empty: an unknown identity)."""
        methods: frozenset[str] = frozenset()
        for name in identities_of(peer_cert):
            methods |= self.identities.get(name, frozenset())
        return methods

    def known(self, peer_cert) -> bool:
        return any(name in self.identities for name in identities_of(peer_cert))

    def from_network(self, peer) -> bool:
        if not (isinstance(peer, tuple) and self.networks):  # a Unix socket's peer has no address
            return False
        try:
            address = ipaddress.ip_address(peer[0].partition("%")[0])  # an IPv6 scope id dropped
        except ValueError:
            return False
        return any(address in network for network in self.networks)


class AllowList:
    """on_connect(peer, peer_cert): admit a listed network or a listed identity, nothing else."""

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy if policy is not None else Policy.load()

    def __call__(self, peer, peer_cert) -> bool:
        return self.policy.from_network(peer) or self.policy.known(peer_cert)


class MethodsByIdentity:
    """Middleware: a call runs only if its certificate's identities allow its method."""

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy if policy is not None else Policy.load()

    def before(self, call):
        allowed = self.policy.allowed_methods(call.peer_cert)
        if ANY_METHOD in allowed or call.method in allowed or "%s.%s" % (call.service, call.method) in allowed:
            return
        who = ", ".join(identities_of(call.peer_cert)) or "a client without a certificate"
        raise TApplicationException(
            TApplicationException.UNKNOWN, "%s may not call %s.%s" % (who, call.service, call.method)
        )
