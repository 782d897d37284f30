"""What a fault proxy does to a link's bytes: the modes (data) and the byte transformers."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Pass:
    """Relay every byte unchanged."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Cut:
    """Reset every connection and refuse new ones (the listening socket is closed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Blackhole:
    """Accept bytes and connections, deliver nothing (not even a close)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Latency:
    """Deliver each chunk ``delay`` seconds after it arrived (throughput is kept)."""

    delay: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Bandwidth:
    """At most ``rate`` bytes per second in each direction."""

    rate: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Flap:
    """Cut for ``period`` seconds, pass for ``period`` seconds, and so on."""

    period: float


@dataclass(frozen=True, slots=True, kw_only=True)
class FlipBits:
    """Flip one bit about every ``every`` bytes, positions from a PRNG seeded with ``seed``."""

    every: int
    seed: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CorruptAfterTls:
    """Test-only: flip the last byte of every AMQP frame of ``min_frame`` bytes or more.

    On a plaintext link this corrupts stream payload while leaving AMQP framing intact,
    which is what corruption after TLS decryption would look like; the harness must then
    report corrupted bytes. On a TLS link it would only break records.
    """

    min_frame: int = 1024


ProxyMode = Pass | Cut | Blackhole | Latency | Bandwidth | Flap | FlipBits | CorruptAfterTls


def describe(mode: ProxyMode) -> str:
    name = type(mode).__name__
    fields = {key: getattr(mode, key) for key in getattr(mode, "__slots__", ())}
    return name if not fields else f"{name}({', '.join(f'{k}={v}' for k, v in fields.items())})"


class BitFlipper:
    """Flips one bit at seeded positions, on average one per ``every`` bytes."""

    __slots__ = ("_every", "_next", "_offset", "_rng")

    def __init__(self, every: int, rng: random.Random) -> None:
        self._every = max(1, every)
        self._rng = rng
        self._offset = 0
        self._next = rng.randint(1, 2 * self._every)

    def apply(self, data: bytes) -> tuple[bytes, int]:
        end = self._offset + len(data)
        if self._next >= end:
            self._offset = end
            return data, 0
        out = bytearray(data)
        flips = 0
        while self._next < end:
            out[self._next - self._offset] ^= 1 << self._rng.randrange(8)
            flips += 1
            self._next += self._rng.randint(1, 2 * self._every)
        self._offset = end
        return bytes(out), flips


_PROTOCOL_HEADER = b"AMQP"
_FRAME_HEADER = 8


class AmqpPayloadCorrupter:
    """Follows AMQP framing in one direction and flips the last byte of each large frame.

    The protocol header (``AMQP`` + 4 bytes) and frame headers are left alone; a frame's
    last byte is stream payload except in the rare frame that ends inside a section head.
    """

    __slots__ = ("_eligible", "_head", "_lost", "_min_frame", "_remaining")

    def __init__(self, min_frame: int = 1024) -> None:
        self._min_frame = min_frame
        self._head = bytearray()
        self._remaining = 0
        self._eligible = False
        self._lost = False  # framing we do not understand: stop touching bytes

    def apply(self, data: bytes) -> tuple[bytes, int]:
        if self._lost:
            return data, 0
        out = bytearray(data)
        position, size, corrupted = 0, len(out), 0
        while position < size:
            if self._remaining == 0:
                take = min(_FRAME_HEADER - len(self._head), size - position)
                self._head += out[position : position + take]
                position += take
                if len(self._head) < _FRAME_HEADER:
                    break
                head, self._head = bytes(self._head), bytearray()
                if head[:4] == _PROTOCOL_HEADER:
                    continue
                frame_size = int.from_bytes(head[:4], "big")
                if frame_size < _FRAME_HEADER:
                    self._lost = True
                    break
                self._remaining = frame_size - _FRAME_HEADER
                self._eligible = frame_size >= self._min_frame
                continue
            take = min(self._remaining, size - position)
            position += take
            self._remaining -= take
            if self._remaining == 0 and self._eligible:
                out[position - 1] ^= 0x01
                corrupted += 1
        return bytes(out), corrupted
