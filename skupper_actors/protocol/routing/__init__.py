"""Link-state routing after skupper-router: HELLO, RA, LSU/LSR, MAU/MAR, shortest paths."""

from __future__ import annotations

from .effects import (
    AddressesChanged,
    Effect,
    LimitExceeded,
    LinkState,
    Neighbour,
    NeighbourAdded,
    NeighbourLost,
    ProtocolRefused,
    Route,
    RouterAdded,
    RouterLost,
    RoutesChanged,
    RoutingSettings,
    SendControl,
)
from .engine import RoutingEngine
from .messages import (
    ControlMessage,
    ControlMessageError,
    ControlMessageTooLarge,
    Hello,
    LinkStateRequest,
    LinkStateUpdate,
    MobileAddressRequest,
    MobileAddressUpdate,
    RouterAdvertisement,
    decode,
    encode,
    op_name,
)
from .paths import shortest_paths
from .serial import SEQ_MODULUS, seq_newer, seq_next

__all__ = [
    "SEQ_MODULUS",
    "AddressesChanged",
    "ControlMessage",
    "ControlMessageError",
    "ControlMessageTooLarge",
    "Effect",
    "Hello",
    "LimitExceeded",
    "LinkState",
    "LinkStateRequest",
    "LinkStateUpdate",
    "MobileAddressRequest",
    "MobileAddressUpdate",
    "Neighbour",
    "NeighbourAdded",
    "NeighbourLost",
    "ProtocolRefused",
    "Route",
    "RouterAdded",
    "RouterAdvertisement",
    "RouterLost",
    "RoutesChanged",
    "RoutingEngine",
    "RoutingSettings",
    "SendControl",
    "decode",
    "encode",
    "op_name",
    "seq_newer",
    "seq_next",
    "shortest_paths",
]
