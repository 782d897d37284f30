"""AMQP messaging for clients: addresses, distribution and the node's MessageRouter."""

from .addresses import DEFAULT_PREFIXES, AddressRefused, Distribution, check_address
from .router import SENDER_WINDOW, AddressStats, ClientPort, MessageRouter

__all__ = [
    "DEFAULT_PREFIXES",
    "SENDER_WINDOW",
    "AddressRefused",
    "AddressStats",
    "ClientPort",
    "Distribution",
    "MessageRouter",
    "check_address",
]
