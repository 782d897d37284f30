"""Client addresses: which are refused, how each is distributed, how it is advertised."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from ..addresses import CLIENT_ADDRESS_PREFIX, DYNAMIC_PREFIX, RESERVED_PREFIXES
from ..addressing import DistributionMode

#: Skupper's defaults: `mc/` multicast, `closest/` closest, everything else balanced.
DEFAULT_PREFIXES: Final[Mapping[str, DistributionMode]] = MappingProxyType(
    {"mc/": DistributionMode.MULTICAST, "closest/": DistributionMode.CLOSEST}
)
MAX_ADDRESS_LENGTH: Final = 1024
REFUSED: Final = "amqp:unauthorized-access"


class AddressRefused(Exception):
    """A client may not attach to this address; ``condition`` goes back in the detach."""

    def __init__(self, description: str, condition: str = REFUSED) -> None:
        super().__init__(description)
        self.condition = condition
        self.description = description


def check_address(address: str, *, sender: bool) -> None:
    """Raise AddressRefused for an address a client may not attach to."""
    if not address:
        raise AddressRefused("an empty address", "amqp:invalid-field")
    if len(address) > MAX_ADDRESS_LENGTH:
        raise AddressRefused(
            f"address longer than {MAX_ADDRESS_LENGTH} characters", "amqp:invalid-field"
        )
    if sender and is_dynamic(address):
        return  # a reply address: senders may send to it
    for prefix in RESERVED_PREFIXES:
        if address.startswith(prefix):
            raise AddressRefused(f"address {address!r} is reserved (prefix {prefix!r})")


def is_dynamic(address: str) -> bool:
    return address.startswith(DYNAMIC_PREFIX)


def dynamic_address(router_id: str, number: int) -> str:
    return f"{DYNAMIC_PREFIX}{router_id}/{number}"


def dynamic_router(address: str) -> str | None:
    """The router a dynamic address belongs to (None if it is not one)."""
    if not is_dynamic(address):
        return None
    router, _, number = address[len(DYNAMIC_PREFIX) :].rpartition("/")
    return router or None if number else None


def advertised(address: str) -> str:
    """The mobile address a client address is advertised as."""
    return CLIENT_ADDRESS_PREFIX + address


class Distribution:
    """The distribution mode of each address, by longest matching prefix."""

    def __init__(self, prefixes: Mapping[str, DistributionMode] = DEFAULT_PREFIXES) -> None:
        self._prefixes = sorted(prefixes.items(), key=lambda item: -len(item[0]))

    def mode(self, address: str) -> DistributionMode:
        for prefix, mode in self._prefixes:
            if address.startswith(prefix):
                return mode
        return DistributionMode.BALANCED
