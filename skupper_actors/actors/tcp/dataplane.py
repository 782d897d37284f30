"""The data plane's forwarding table: moved to ``skupper_actors.protocol.forwarding``."""

from skupper_actors.protocol.forwarding import (
    Ack,
    AckHandler,
    ConnectorBinding,
    EgressSink,
    Forwarder,
    LocalStream,
    OutStream,
    Port,
    ReverseSink,
    Sink,
    StreamOwner,
    StreamRefused,
)

DataPlane = Forwarder

__all__ = [
    "Ack",
    "AckHandler",
    "ConnectorBinding",
    "DataPlane",
    "EgressSink",
    "Forwarder",
    "LocalStream",
    "OutStream",
    "Port",
    "ReverseSink",
    "Sink",
    "StreamOwner",
    "StreamRefused",
]
