"""The AMQP client endpoint: a listener per site and an actor per client connection."""

from .endpoint import AmqpEndpointActor

__all__ = ["AmqpEndpointActor"]
