"""Sequence numbers that wrap: 32-bit serial-number arithmetic after RFC 1982."""

from __future__ import annotations

SEQ_BITS = 32
SEQ_MODULUS = 1 << SEQ_BITS
_HALF = 1 << (SEQ_BITS - 1)


def seq_next(seq: int) -> int:
    """The sequence number after ``seq``, wrapping to 0 after 2**32 - 1."""
    return (seq + 1) % SEQ_MODULUS


def seq_newer(a: int, b: int) -> bool:
    """True when ``a`` comes after ``b``.

    Two numbers exactly half the space apart are undefined in RFC 1982; here neither
    is newer, so such an update is treated as stale rather than flip-flopping.
    """
    distance = (a - b) % SEQ_MODULUS
    return 0 < distance < _HALF


def seq_follows(a: int, b: int) -> bool:
    """True when ``a`` is exactly the successor of ``b`` (a differential update applies)."""
    return a == seq_next(b)


def is_seq(value: int) -> bool:
    """True for a value that fits the sequence space."""
    return 0 <= value < SEQ_MODULUS
