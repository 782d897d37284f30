"""Errors the AMQP wrapper raises for local misuse (never for what the peer sends)."""

from __future__ import annotations


class AmqpUsageError(RuntimeError):
    """The caller asked for something the link or stream cannot do (a programming error)."""


class AmqpDecodeError(ValueError):
    """Bytes from the peer did not decode as the message layout we expect."""
