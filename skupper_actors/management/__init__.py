"""The node's local management endpoint: typed requests and replies over ZeroMQ (ipc)."""

from __future__ import annotations

from .client import ManagementClient, ManagementError, NodeUnreachable
from .schema import (
    REQUEST_KINDS,
    AdaptorInfo,
    AddressInfo,
    HealthInfo,
    LinkInfo,
    NodeStatus,
    PeerLink,
    RouteInfo,
    RouterInfo,
    SiteView,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
)

SOCKET_NAME = "management.sock"

__all__ = [
    "REQUEST_KINDS",
    "SOCKET_NAME",
    "AdaptorInfo",
    "AddressInfo",
    "HealthInfo",
    "LinkInfo",
    "ManagementClient",
    "ManagementError",
    "NodeStatus",
    "NodeUnreachable",
    "PeerLink",
    "RouteInfo",
    "RouterInfo",
    "SiteView",
    "decode_reply",
    "decode_request",
    "encode_reply",
    "encode_request",
]
