"""Which router a peer's certificate speaks for (docs/adr/0013, router identity bound to
certificate).

The site CA issues three kinds of certificate, and each names a router differently:

- a router's own certificate (serverAuth and clientAuth): its subject CN is the router id;
- a grant's link certificate (clientAuth only): CN ``<redeemer>-via-<grant>``, bound to
  the redeeming router (the part before the last ``-via-``);
- a ``skupper link generate`` certificate (clientAuth only): CN is the Link's name,
  which names no router: it is *unbound*, and may claim only a router id that has no
  live link.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from skupper_actors.security.credentials import common_name_of

GRANT_SEPARATOR = "-via-"


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerIdentity:
    """What a peer's certificate says; ``router`` is None for an unbound certificate."""

    common_name: str | None
    router: str | None

    def refusal(self, claimed: str) -> str | None:
        """Why ``claimed`` (the router id in the peer's open) is refused, or None."""
        if self.router is None or self.router == claimed:
            return None
        return (
            f"peer claims router id {claimed!r} but its certificate "
            f"(CN {self.common_name!r}) belongs to router {self.router!r}"
        )


UNKNOWN = PeerIdentity(common_name=None, router=None)


def peer_identity(der: bytes | None) -> PeerIdentity:
    """The identity in a peer certificate (DER), as verified by the TLS handshake."""
    if not der:
        return UNKNOWN
    try:
        certificate = x509.load_der_x509_certificate(der)
        name = common_name_of(certificate)
    except ValueError:
        return UNKNOWN
    if name is None:
        return UNKNOWN
    if _is_router_certificate(certificate):
        return PeerIdentity(common_name=name, router=name)
    owner, separator, grant = name.rpartition(GRANT_SEPARATOR)
    if separator and owner and grant:
        return PeerIdentity(common_name=name, router=owner)
    return PeerIdentity(common_name=name, router=None)


def _is_router_certificate(certificate: x509.Certificate) -> bool:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True  # no restriction: it could serve as a router's own certificate
    return ExtendedKeyUsageOID.SERVER_AUTH in usage


__all__ = ["GRANT_SEPARATOR", "UNKNOWN", "PeerIdentity", "peer_identity"]
