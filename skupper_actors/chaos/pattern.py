"""Seeded stream content that a receiver checks byte by byte as it arrives, and the exchange header.

Content is addressable by offset: block ``k`` of a stream direction is a 16-byte label
(stream id, direction, block index) followed by a slice of a 1 MiB pool drawn from
``random.Random(pool_seed)``, at an offset that depends on the label. So any byte can be
regenerated without replaying the stream, reordered or duplicated blocks differ, and
making content costs a slice, not a PRNG call per byte.
"""

from __future__ import annotations

import random
import struct
import zlib
from dataclasses import dataclass

BLOCK = 16 * 1024
POOL = 1 << 20
_LABEL = struct.Struct("!QB3xI")
UP, DOWN = 0, 1

_pools: dict[int, bytes] = {}


def _pool(seed: int) -> bytes:
    pool = _pools.get(seed)
    if pool is None:
        if len(_pools) > 64:
            _pools.clear()
        pool = _pools[seed] = random.Random(seed).randbytes(POOL + BLOCK)
    return pool


class Pattern:
    """The content of every stream of one traffic source (one pool seed)."""

    __slots__ = ("_pool", "seed")

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._pool = _pool(seed)

    def block(self, stream_id: int, direction: int, index: int) -> bytes:
        label = _LABEL.pack(stream_id & (2**64 - 1), direction, index & 0xFFFFFFFF)
        start = (stream_id * 7919 + direction * 104729 + index * 8191) % POOL
        return label + self._pool[start : start + BLOCK - _LABEL.size]

    def read(self, stream_id: int, direction: int, offset: int, count: int) -> bytes:
        """Bytes [offset, offset + count) of one direction of a stream."""
        parts = []
        while count > 0:
            index, within = divmod(offset, BLOCK)
            take = min(count, BLOCK - within)
            parts.append(self.block(stream_id, direction, index)[within : within + take])
            offset += take
            count -= take
        return b"".join(parts)

    def chunks(self, stream_id: int, direction: int, size: int, chunk: int = 4 * BLOCK):
        """The whole direction, ``chunk`` bytes at a time (a generator)."""
        offset = 0
        while offset < size:
            take = min(chunk, size - offset)
            yield self.read(stream_id, direction, offset, take)
            offset += take


class Verifier:
    """Compares arriving bytes with the expected content; remembers the first bad offset."""

    __slots__ = ("_direction", "_pattern", "_stream_id", "expected", "first_bad", "received")

    def __init__(self, pattern: Pattern, stream_id: int, direction: int, expected: int) -> None:
        self._pattern = pattern
        self._stream_id = stream_id
        self._direction = direction
        self.expected = expected
        self.received = 0
        #: offset of the first byte that differed (or arrived past the expected end)
        self.first_bad: int | None = None

    @property
    def verified(self) -> int:
        """Bytes received and found correct (all of them until the first bad one)."""
        return self.received if self.first_bad is None else self.first_bad

    @property
    def complete(self) -> bool:
        return self.first_bad is None and self.received == self.expected

    def feed(self, data: bytes) -> bool:
        """Check ``data`` (the next bytes); False once any byte so far was wrong."""
        if self.first_bad is not None:
            self.received += len(data)
            return False
        start = self.received
        self.received += len(data)
        good = min(len(data), max(0, self.expected - start))
        want = self._pattern.read(self._stream_id, self._direction, start, good)
        if data[:good] != want:
            self.first_bad = start + _first_difference(data, want)
            return False
        if good < len(data):
            self.first_bad = start + good  # bytes past the end are corruption too
            return False
        return True


def _first_difference(data: bytes, want: bytes) -> int:
    for index, (got, expected) in enumerate(zip(data, want, strict=False)):
        if got != expected:
            return index
    return min(len(data), len(want))


# --- the exchange header -----------------------------------------------------------------

STREAM = 1  #: one exchange, both directions at once, ended by EOF each way
REQUEST = 2  #: request then response; more exchanges may follow on the connection
_HEADER = struct.Struct("!4sB3xQQQQ")
_MAGIC = b"SKCH"
HEADER_SIZE = _HEADER.size + 4


class HeaderError(ValueError):
    """An exchange header that did not arrive intact."""


_EXCHANGE_BITS = 24


def content_key(connection: int, exchange: int = 0) -> int:
    """The stream id that selects the content of one exchange on one connection."""
    return (connection << _EXCHANGE_BITS) | (exchange & ((1 << _EXCHANGE_BITS) - 1))


def connection_of(key: int) -> int:
    return key >> _EXCHANGE_BITS


@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeHeader:
    """What the client tells the server before an exchange: who it is, what to expect."""

    kind: int
    stream_id: int  #: the content key (see ``content_key``)
    pool_seed: int
    up: int  #: bytes the client sends
    down: int  #: bytes the server answers with

    def encode(self) -> bytes:
        body = _HEADER.pack(_MAGIC, self.kind, self.stream_id, self.pool_seed, self.up, self.down)
        return body + struct.pack("!I", zlib.crc32(body))

    @classmethod
    def decode(cls, raw: bytes) -> ExchangeHeader:
        if len(raw) != HEADER_SIZE:
            raise HeaderError(f"header of {len(raw)} bytes, not {HEADER_SIZE}")
        body, (crc,) = raw[: _HEADER.size], struct.unpack("!I", raw[_HEADER.size :])
        if zlib.crc32(body) != crc:
            raise HeaderError("header checksum mismatch")
        magic, kind, stream_id, pool_seed, up, down = _HEADER.unpack(body)
        if magic != _MAGIC or kind not in (STREAM, REQUEST):
            raise HeaderError("not a chaos exchange header")
        return cls(kind=kind, stream_id=stream_id, pool_seed=pool_seed, up=up, down=down)
